/*
 * Pipeline compilation errors (exact messages naming node index, type and parameter), type
 * flow, spec copies, names, and the runner's buffer ownership when a node replaces the buffer.
 */
#include "dataplane/pipeline.h"
#include "dataplane/req.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#define g_pools g_test_pools

#define P(k, v)                                                                                    \
	{                                                                                          \
		.key = (char *)(k), .value = (char *)(v)                                           \
	}

static struct dp_param g_db6[] = {P("db", "6")};
static struct dp_param g_f32[] = {P("format", "f32le")};
static struct dp_param g_s16[] = {P("format", "s16le")};

static void
expect_error(struct dp_node_spec *nodes, unsigned n, unsigned max, const char *msg)
{
	struct dp_spec s = {.name = "x", .n_nodes = n, .nodes = nodes};
	struct dp_err err = {0};

	assert_null(dp_pipeline_compile(&s, max, &err));
	assert_int_equal(err.status, DP_INVALID_ARGUMENT);
	assert_string_equal(err.msg, msg);
}

static void
test_compile_unknown_type(void **state)
{
	struct dp_node_spec n[] = {{.type = "passthrough"}, {.type = "nope"}};

	(void)state;
	expect_error(n, 2, 32, "node 1 (nope): unknown node type");
}

static void
test_compile_unknown_param(void **state)
{
	struct dp_param p[] = {P("db", "1"), P("x", "2")};
	struct dp_node_spec n[] = {{.type = "gain", .n_params = 2, .params = p}};

	(void)state;
	expect_error(n, 1, 32, "node 0 (gain): unknown param 'x'");
}

static void
test_compile_missing_required_param(void **state)
{
	struct dp_node_spec n[] = {{.type = "crc32c"}, {.type = "gain"}};

	(void)state;
	expect_error(n, 2, 32, "node 1 (gain): param db: required");
}

static void
test_compile_bad_value(void **state)
{
	struct dp_param p[] = {P("db", "loud")};
	struct dp_node_spec n[] = {{.type = "passthrough"},
				   {.type = "passthrough"},
				   {.type = "gain", .n_params = 1, .params = p}};

	(void)state;
	expect_error(n, 3, 32, "node 2 (gain): param db: not a number: 'loud'");
}

static void
test_compile_node_count_limits(void **state)
{
	struct dp_node_spec n[5];

	(void)state;
	for (int i = 0; i < 5; i++)
		n[i] = (struct dp_node_spec){.type = "passthrough"};
	expect_error(n, 0, 32, "pipeline has no nodes");
	expect_error(n, 5, 4, "pipeline has 5 nodes, more than the limit 4");
}

/* Finding 16: a parameter given twice is ambiguous ({db: "6", db: "-200"} ran 6 while
 * GetPipeline showed both): refused, naming it. */
static void
test_compile_duplicate_param_key(void **state)
{
	struct dp_param p[] = {P("db", "6"), P("db", "-200")};
	struct dp_node_spec n[] = {{.type = "passthrough"},
				   {.type = "gain", .n_params = 2, .params = p}};

	(void)state;
	expect_error(n, 2, 32, "node 1 (gain): param 'db' given twice");
}

/* Finding 1/15: the size of what a client stores is bounded before anything is allocated:
 * parameter count and lengths, and the spec's text in all. */
static void
test_compile_spec_bounds(void **state)
{
	static char big[DP_PARAM_TEXT_MAX + 1], val[200];
	struct dp_param many[DP_PARAMS_MAX + 1], longv[] = {P("db", big)}, longk[] = {P(big, "1")};
	struct dp_param empty[] = {P("", "1")};
	struct dp_node_spec n[DP_NODES_HARD_MAX];
	struct dp_param fat[DP_NODES_HARD_MAX];
	struct dp_spec s = {.name = "x", .nodes = n};
	struct dp_err err;

	(void)state;
	memset(big, 'a', DP_PARAM_TEXT_MAX);
	for (unsigned i = 0; i <= DP_PARAMS_MAX; i++)
		many[i] = (struct dp_param)P("db", "1");
	n[0] = (struct dp_node_spec){.type = "gain", .n_params = DP_PARAMS_MAX + 1, .params = many};
	expect_error(n, 1, 32, "node 0 (gain): more than 16 params");
	n[0] = (struct dp_node_spec){.type = "gain", .n_params = 1, .params = longv};
	expect_error(n, 1, 32, "node 0 (gain): param db: longer than 255 bytes");
	n[0] = (struct dp_node_spec){.type = "gain", .n_params = 1, .params = longk};
	assert_null(dp_pipeline_compile(&(struct dp_spec){.name = "x", .n_nodes = 1, .nodes = n},
					32, &err));
	assert_non_null(strstr(err.msg, "param key 'aaaa"));
	n[0] = (struct dp_node_spec){.type = "gain", .n_params = 1, .params = empty};
	expect_error(n, 1, 32, "node 0 (gain): param 0: empty key");
	/* 100 nodes with a 199-byte value each: ~20 KiB of text, over DP_SPEC_BYTES_MAX. */
	memset(val, '1', sizeof(val) - 1);
	for (unsigned i = 0; i < 100; i++) {
		fat[i] = (struct dp_param)P("max_bytes", val);
		n[i] = (struct dp_node_spec){
		    .type = "zstd_decompress", .n_params = 1, .params = &fat[i]};
	}
	s.n_nodes = 100;
	assert_null(dp_pipeline_compile(&s, DP_NODES_HARD_MAX, &err));
	assert_int_equal(err.status, DP_INVALID_ARGUMENT);
	assert_non_null(strstr(err.msg, "exceeds 16384 bytes"));
	assert_true(dp_spec_bytes(&s) > DP_SPEC_BYTES_MAX);
	s.n_nodes = 50; /* ~10 KiB: fits (the values fail later, as numbers) */
	assert_int_equal(dp_spec_check(&s, DP_NODES_HARD_MAX, &err), 0);
}

static void
test_compile_type_flow_is_tracked(void **state)
{
	struct dp_node_spec ok[] = {{.type = "convert", .n_params = 1, .params = g_f32},
				    {.type = "gain", .n_params = 1, .params = g_db6},
				    {.type = "convert", .n_params = 1, .params = g_s16},
				    {.type = "crc32c"}};
	struct dp_spec s = {.name = "flow", .n_nodes = 4, .nodes = ok};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);

	(void)state;
	assert_non_null(p);
	assert_int_equal(p->n_nodes, 4);
	assert_int_equal(p->out_hint.kind, DP_KIND_AUDIO);
	assert_int_equal(p->out_hint.fmt, DP_FMT_S16LE);
	/* The compiled pipeline owns a copy of its spec. */
	assert_ptr_not_equal(p->spec->nodes, ok);
	assert_string_equal(p->spec->nodes[1].params[0].value, "6");
	dp_pipeline_unref(p);
}

static void
test_spec_dup_is_deep(void **state)
{
	struct dp_node_spec n[] = {{.type = "gain", .n_params = 1, .params = g_db6}};
	struct dp_spec s = {.name = "orig", .n_nodes = 1, .nodes = n};
	struct dp_spec *d = dp_spec_dup(&s);

	(void)state;
	assert_non_null(d);
	assert_string_equal(d->name, "orig");
	assert_ptr_not_equal(d->name, s.name);
	assert_string_equal(d->nodes[0].params[0].key, "db");
	assert_ptr_not_equal(d->nodes[0].params[0].value, g_db6[0].value);
	dp_spec_free(d);
	dp_spec_free(NULL);
}

static void
test_pipeline_name_valid(void **state)
{
	char long_name[80];

	(void)state;
	assert_true(dp_pipeline_name_valid("a"));
	assert_true(dp_pipeline_name_valid("Voice_v2.1-beta"));
	assert_false(dp_pipeline_name_valid(""));
	assert_false(dp_pipeline_name_valid(NULL));
	assert_false(dp_pipeline_name_valid("has space"));
	assert_false(dp_pipeline_name_valid("slash/name"));
	assert_false(dp_pipeline_name_valid("é"));
	memset(long_name, 'a', 63);
	long_name[63] = '\0';
	assert_true(dp_pipeline_name_valid(long_name));
	long_name[63] = 'a';
	long_name[64] = '\0';
	assert_false(dp_pipeline_name_valid(long_name));
}

static void
test_run_rejects_partial_frames_and_frees_nothing_twice(void **state)
{
	struct dp_node_spec n[] = {{.type = "passthrough"}};
	struct dp_spec s = {.name = "r", .n_nodes = 1, .nodes = n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);
	struct dp_result res = {0};
	struct dp_exec x = {.pools = g_pools, .res = &res};

	(void)state;
	x.fmt = (struct dp_format){
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 2, .rate = 48000};
	x.buf = dp_pools_get(g_pools, 12); /* 1.5 frames of stereo f32 */
	assert_int_equal(dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME), DP_INVALID_ARGUMENT);
	assert_non_null(strstr(res.err.msg, "not a whole number of 8-byte frames"));
	dp_buf_free(x.buf);
	dp_pipeline_unref(p);
}

static void
test_run_widening_replaces_buffer_and_frees_input(void **state)
{
	struct dp_node_spec n[] = {{.type = "convert", .n_params = 1, .params = g_f32}};
	struct dp_spec s = {.name = "w", .n_nodes = 1, .nodes = n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);
	struct dp_result res = {0};
	struct dp_exec x = {.pools = g_pools, .res = &res};
	unsigned small_before = dp_pools_in_use(g_pools, 0);
	struct dp_buf *in;

	(void)state;
	x.fmt = (struct dp_format){
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 8000};
	in = x.buf = dp_pools_get(g_pools, 200); /* 256 B class; output 400 B needs 4 KiB */
	memset(in->data, 0, 200);
	assert_int_equal(dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME), DP_OK);
	assert_ptr_not_equal(x.buf, in);
	assert_int_equal(x.buf->len, 400);
	assert_int_equal(x.buf->cap, 4096);
	assert_int_equal(dp_pools_in_use(g_pools, 0), small_before); /* input returned */
	dp_buf_free(x.buf);
	dp_pipeline_unref(p);
}

/* Take every free buffer of every class into @p held (at most @p max). @return how many. */
static unsigned
drain_pools(struct dp_buf **held, unsigned max)
{
	unsigned n = 0;

	while (n < max && (held[n] = dp_pools_get(g_pools, 1)) != NULL)
		n++;
	return n;
}

/*
 * A stream frame's kit (dp_pipeline_out_plan's sizes, taken before it runs) covers every
 * buffer its nodes take: with every pool empty the frame still runs through widening,
 * up-mixing, compression and decompression, and without the kit the same run fails.
 */
static void
test_kit_covers_every_buffer_the_nodes_take(void **state)
{
	struct dp_param up[] = {P("count", "2")};
	struct dp_node_spec n[] = {{.type = "convert", .n_params = 1, .params = g_f32},
				   {.type = "channels", .n_params = 1, .params = up},
				   {.type = "zstd_compress"},
				   {.type = "zstd_decompress"}};
	struct dp_spec s = {.name = "k", .n_nodes = 4, .nodes = n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);
	const struct dp_format in = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 8000};
	uint32_t sizes[DP_NODES_HARD_MAX];
	struct dp_buf *held[128], *kit = NULL;
	unsigned n_held;
	int n_kit;

	(void)state;
	assert_non_null(p);
	for (int with_kit = 1; with_kit >= 0; with_kit--) {
		struct dp_result res = {0};
		struct dp_exec x;
		struct dp_buf *b = dp_pools_get(g_pools, 2000);

		for (unsigned i = 0; i < 2000; i++)
			b->data[i] = (uint8_t)(i * 7);
		n_kit = dp_pipeline_out_plan(p, &in, 2000, b->data, dp_pools_max_size(g_pools),
					     sizes, DP_NODES_HARD_MAX);
		/* widen 4000, up-mix 8000, zstd's bound for 8000, decompress: its bound + 1 */
		assert_int_equal(n_kit, 4);
		assert_int_equal(sizes[0], 4000);
		assert_int_equal(sizes[1], 8000);
		assert_int_equal(sizes[2], ZSTD_compressBound(8000));
		assert_int_equal(sizes[3], dp_pools_max_size(g_pools));
		{
			/* The stream's one-inference plan gives the same sizes and estimate. */
			uint32_t fsizes[DP_NODES_HARD_MAX];
			uint64_t mem = 0;

			assert_int_equal(dp_pipeline_frame_plan(p, &in, 2000, b->data,
								dp_pools_max_size(g_pools), &mem,
								fsizes, DP_NODES_HARD_MAX),
					 n_kit);
			assert_memory_equal(fsizes, sizes, (size_t)n_kit * sizeof(sizes[0]));
			assert_int_equal(mem, dp_pipeline_mem_estimate(p, &in, 2000));
		}
		kit = NULL;
		for (int i = 0; with_kit && i < n_kit; i++) {
			struct dp_buf *k = dp_pools_get(g_pools, sizes[i]);

			assert_non_null(k);
			k->next = kit;
			kit = k;
		}
		n_held = drain_pools(held, 128);
		dp_exec_init(&x, b, &in, g_pools, &res, &kit);
		if (with_kit) {
			assert_int_equal(dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME), DP_OK);
			assert_int_equal(x.buf->len, 8000);
			assert_null(kit); /* every buffer of it was used */
		} else {
			assert_int_equal(dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME),
					 DP_RESOURCE_EXHAUSTED);
			assert_non_null(strstr(res.err.msg, "pool empty"));
		}
		dp_buf_free(x.buf);
		for (unsigned i = 0; i < n_held; i++)
			dp_buf_free(held[i]);
	}
	dp_pipeline_unref(p);
}

/* A first-node decompressor whose input is known is planned at the size its frame declares. */
static void
test_plan_reads_a_declared_zstd_size(void **state)
{
	struct dp_node_spec n[] = {{.type = "zstd_decompress"}};
	struct dp_spec s = {.name = "d", .n_nodes = 1, .nodes = n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);
	const struct dp_format in = {.kind = DP_KIND_BYTES};
	static uint8_t raw[3000], z[4096];
	uint32_t sizes[4];
	size_t zl;

	(void)state;
	memset(raw, 'a', sizeof(raw));
	zl = ZSTD_compress(z, sizeof(z), raw, sizeof(raw), 3);
	assert_false(ZSTD_isError(zl));
	assert_int_equal(dp_pipeline_out_plan(p, &in, (uint32_t)zl, z, 1u << 20, sizes, 4), 1);
	assert_int_equal(sizes[0], 3000);
	/* Not known (a later node's input): the bound and its spare byte, capped. */
	assert_int_equal(dp_pipeline_out_plan(p, &in, (uint32_t)zl, NULL, 1u << 20, sizes, 4), 1);
	assert_int_equal(sizes[0], 1u << 20);
	/* More sizes than room: -E2BIG. */
	assert_int_equal(dp_pipeline_out_plan(p, &in, (uint32_t)zl, z, 1u << 20, sizes, 0), -E2BIG);
	dp_pipeline_unref(p);
}

static void
test_run_output_larger_than_largest_class_is_out_of_range(void **state)
{
	struct dp_node_spec n[] = {{.type = "convert", .n_params = 1, .params = g_f32}};
	struct dp_spec s = {.name = "big", .n_nodes = 1, .nodes = n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);
	struct dp_result res = {0};
	struct dp_exec x = {.pools = g_pools, .res = &res};

	(void)state;
	x.fmt = (struct dp_format){
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 8000};
	x.buf = dp_pools_get(g_pools, 1 << 20); /* 1 MiB in, 2 MiB out: no class that large */
	assert_non_null(x.buf);
	assert_int_equal(dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME), DP_OUT_OF_RANGE);
	assert_non_null(strstr(res.err.msg, "node 0 (convert): output of 2097152 bytes"));
	dp_buf_free(x.buf);
	dp_pipeline_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compile_unknown_type),
	    cmocka_unit_test(test_compile_unknown_param),
	    cmocka_unit_test(test_compile_duplicate_param_key),
	    cmocka_unit_test(test_compile_spec_bounds),
	    cmocka_unit_test(test_compile_missing_required_param),
	    cmocka_unit_test(test_compile_bad_value),
	    cmocka_unit_test(test_compile_node_count_limits),
	    cmocka_unit_test(test_compile_type_flow_is_tracked),
	    cmocka_unit_test(test_spec_dup_is_deep),
	    cmocka_unit_test(test_pipeline_name_valid),
	    cmocka_unit_test(test_run_rejects_partial_frames_and_frees_nothing_twice),
	    cmocka_unit_test(test_run_widening_replaces_buffer_and_frees_input),
	    cmocka_unit_test(test_run_output_larger_than_largest_class_is_out_of_range),
	    cmocka_unit_test(test_kit_covers_every_buffer_the_nodes_take),
	    cmocka_unit_test(test_plan_reads_a_declared_zstd_size),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}

/*
 * Resumable nodes (the bulk lane, docs/ARCHITECTURE.md "Fair execution"): every node with a
 * slice() hook, run in slices of random sizes, gives the output and annotations of its
 * one-shot process(), byte for byte; dp_pipeline_step() over a chain equals dp_pipeline_run();
 * abandoning a run between slices returns every buffer (the group teardown checks the pools).
 */
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/node_run.h"
#include "tests/fakes/test_env.h"

#include <math.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IN_MAX	(200u * 1024)
#define OUT_CAP (1u << 20)

static uint32_t g_seed = 12345;

static uint32_t
rnd(void)
{
	g_seed = g_seed * 1664525u + 1013904223u;
	return g_seed >> 8;
}

/* Run @p p over @p data like tnr_run, but every node with a slice() hook in random slices. */
static int
sliced_run(const struct dp_pipeline *p, struct dp_stream *s, unsigned flags, struct dp_format f,
	   const void *data, uint32_t len, struct dp_result *res, uint8_t *out, size_t *out_len,
	   unsigned *n_slices)
{
	struct dp_exec x = {.pools = g_test_pools, .res = res, .fmt = f};
	alignas(16) uint8_t sl[DP_SLICE_MAX];
	int rc = DP_OK;

	memset(res, 0, sizeof(*res));
	x.buf = dp_pools_get(g_test_pools, len);
	assert_non_null(x.buf);
	memcpy(x.buf->data, data, len);
	*n_slices = 0;
	for (unsigned i = 0; i < p->n_nodes && rc == DP_OK; i++) {
		const struct dp_node_type *t = p->nodes[i].type;

		x.node_idx = i;
		x.node_name = t->name;
		x.state = t->state_size ? s->state + p->nodes[i].state_off : NULL;
		if (t->slice != NULL) {
			uint32_t pos = 0;

			memset(sl, 0, sizeof(sl));
			do {
				/* Mostly small (down to 1 byte), sometimes large. */
				uint32_t b = rnd() % 4 ? 1 + rnd() % 3000 : 1 + rnd() % 70000;
				uint32_t before = pos;

				rc = t->slice(p->nodes[i].conf, &x, sl, &pos, b);
				(*n_slices)++;
				if (rc == DP_PENDING)
					assert_true(pos >= before && pos <= x.buf->len);
			} while (rc == DP_PENDING);
		} else {
			rc = t->process(p->nodes[i].conf, &x);
		}
		if (rc == DP_OK && (flags & DP_RUN_FLUSH) && t->flush != NULL)
			rc = t->flush(p->nodes[i].conf, x.state, &x);
	}
	if (rc == DP_OK) {
		memcpy(out, x.buf->data, x.buf->len);
		*out_len = x.buf->len;
	}
	dp_buf_free(x.buf);
	return rc;
}

static void
assert_same_result(const struct dp_result *a, const struct dp_result *b)
{
	assert_int_equal(a->n_annot, b->n_annot);
	for (unsigned i = 0; i < a->n_annot; i++) {
		assert_string_equal(a->annot[i].key, b->annot[i].key);
		assert_string_equal(a->annot[i].val, b->annot[i].val);
	}
}

/* One node description on one input: one-shot == sliced, over several random splits. */
static void
check_node(const char *node, struct dp_format f, const void *data, uint32_t len)
{
	struct dp_err err = {0};
	struct dp_pipeline *p = tnr_compile(&err, 1, &node);
	uint8_t *one = malloc(OUT_CAP), *sli = malloc(OUT_CAP);
	struct dp_result r1, r2;
	size_t n1 = 0, n2 = 0;
	unsigned slices = 0;

	if (p == NULL)
		fail_msg("compile '%s': %s", node, err.msg);
	for (int round = 0; round < 3; round++) {
		struct dp_stream *s1 = NULL, *s2 = NULL;

		if (p->state_size) {
			s1 = tnr_stream(p, &f, &err);
			s2 = tnr_stream(p, &f, &err);
			assert_non_null(s1);
			assert_non_null(s2);
		}
		n1 = n2 = 0;
		assert_int_equal(
		    tnr_run(p, s1, DP_RUN_FLUSH, f, data, len, &r1, one, OUT_CAP, &n1, NULL),
		    DP_OK);
		assert_int_equal(
		    sliced_run(p, s2, DP_RUN_FLUSH, f, data, len, &r2, sli, &n2, &slices), DP_OK);
		if (n1 != n2 || memcmp(one, sli, n1) != 0)
			fail_msg("%s: sliced output (%zu bytes, %u slices) differs from one-shot "
				 "(%zu bytes)",
				 node, n2, slices, n1);
		assert_same_result(&r1, &r2);
		if (len > 70000)
			assert_true(slices > 1);
		if (s1) {
			tnr_stream_free(s1);
			tnr_stream_free(s2);
		}
	}
	free(one);
	free(sli);
	dp_pipeline_unref(p);
}

static uint8_t *g_bytes; /* IN_MAX bytes: text-like, compressible, with noise */
static int16_t *g_s16;	 /* IN_MAX / 2 samples: tone + noise, stereo when read as 2 ch */
static float *g_f32;	 /* IN_MAX / 4 samples */

static int
setup(void **state)
{
	(void)state;
	g_bytes = malloc(IN_MAX);
	g_s16 = malloc(IN_MAX);
	g_f32 = malloc(IN_MAX);
	for (uint32_t i = 0; i < IN_MAX; i++)
		g_bytes[i] = rnd() % 7 ? (uint8_t) "the quick brown fox "[i % 20] : (uint8_t)rnd();
	for (uint32_t i = 0; i < IN_MAX / 2; i++)
		g_s16[i] = (int16_t)(12000 * sin(i * 0.05) + (double)(rnd() % 2000) - 1000);
	for (uint32_t i = 0; i < IN_MAX / 4; i++)
		g_f32[i] = (float)(0.4 * sin(i * 0.031) + ((double)(rnd() % 1000) - 500) / 5000.0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(g_bytes);
	free(g_s16);
	free(g_f32);
	return 0;
}

static const struct dp_format BYTES = {.kind = DP_KIND_BYTES};

static struct dp_format
pcm(uint8_t fmt, uint16_t ch)
{
	return (struct dp_format){.kind = DP_KIND_AUDIO, .fmt = fmt, .channels = ch, .rate = 16000};
}

static void
test_bytes_nodes(void **state)
{
	(void)state;
	check_node("crc32c", BYTES, g_bytes, IN_MAX);
	check_node("crc32c", BYTES, g_bytes, 77);
	check_node("sha256", BYTES, g_bytes, IN_MAX);
	check_node("sha256", BYTES, g_bytes, 1);
	check_node("zstd_compress level=3", BYTES, g_bytes, IN_MAX);
	check_node("zstd_compress level=19", BYTES, g_bytes, 150000);
	check_node("zstd_compress", BYTES, g_bytes, 5);
}

static void
test_audio_nodes(void **state)
{
	(void)state;
	check_node("gain db=-6", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX);
	check_node("gain db=9", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX); /* saturates */
	check_node("gain db=-3", pcm(DP_FMT_F32LE, 1), g_f32, IN_MAX);
	check_node("convert format=f32le", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX / 2);
	check_node("convert format=s16le", pcm(DP_FMT_F32LE, 1), g_f32, IN_MAX);
	check_node("convert format=s16le", pcm(DP_FMT_S16LE, 1), g_s16, 70000); /* no-op */
	check_node("channels count=1", pcm(DP_FMT_S16LE, 2), g_s16, IN_MAX);
	check_node("channels count=1", pcm(DP_FMT_F32LE, 2), g_f32, IN_MAX);
	check_node("channels count=2", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX / 2);
	check_node("channels count=2", pcm(DP_FMT_F32LE, 1), g_f32, IN_MAX / 2);
	check_node("vad", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX);
	check_node("resample rate=48000", pcm(DP_FMT_F32LE, 1), g_f32, IN_MAX / 4);
	check_node("resample rate=8000", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX);
	check_node("resample rate=16000", pcm(DP_FMT_S16LE, 1), g_s16, 70000); /* same rate */
	check_node("vad mode=gate", pcm(DP_FMT_F32LE, 1), g_f32, IN_MAX - 4 * 37);
}

/* dp_pipeline_step() with a quantum that ends at once (one slice per call) over a chain that
 * mixes resumable and whole nodes equals dp_pipeline_run(). */
static void
test_step_equals_run(void **state)
{
	const char *nodes[] = {"convert format=f32le",
			       "gain db=-2",
			       "channels count=2",
			       "meter",
			       "convert format=s16le",
			       "zstd_compress level=5",
			       "sha256",
			       "crc32c"};
	struct dp_err err = {0};
	struct dp_pipeline *p = tnr_compile(&err, 8, nodes);
	struct dp_format f = pcm(DP_FMT_S16LE, 1);
	uint8_t *one = malloc(OUT_CAP);
	struct dp_result r1, r2;
	struct dp_exec x = {.pools = g_test_pools, .res = &r2, .fmt = f};
	struct dp_run run;
	size_t n1 = 0;
	unsigned steps = 0;
	int rc;

	(void)state;
	assert_non_null(p);
	assert_int_equal(
	    tnr_run(p, NULL, DP_RUN_FRAME, f, g_s16, IN_MAX / 4, &r1, one, OUT_CAP, &n1, NULL),
	    DP_OK);
	memset(&r2, 0, sizeof(r2));
	x.buf = dp_pools_get(g_test_pools, IN_MAX / 4);
	memcpy(x.buf->data, g_s16, IN_MAX / 4);
	dp_run_init(&run);
	do {
		rc = dp_pipeline_step(p, &x, NULL, DP_RUN_FRAME, &run, 0);
		steps++;
	} while (rc == DP_PENDING && steps < 100000);
	assert_int_equal(rc, DP_OK);
	assert_true(steps > 8);
	assert_int_equal(x.buf->len, n1);
	assert_memory_equal(x.buf->data, one, n1);
	assert_same_result(&r1, &r2);
	dp_buf_free(x.buf);
	free(one);
	dp_pipeline_unref(p);
}

/* A run abandoned between slices, inside a node that holds an output buffer (convert
 * widening, zstd): the abort returns it; the input stays valid; nothing leaks. */
static void
test_abort_returns_buffers(void **state)
{
	const char *chains[][2] = {{"convert format=f32le", "crc32c"},
				   {"zstd_compress level=19", "crc32c"},
				   {"channels count=2", "sha256"}};

	(void)state;
	for (unsigned k = 0; k < 3; k++) {
		struct dp_err err = {0};
		struct dp_pipeline *p = tnr_compile(&err, 2, chains[k]);
		struct dp_format f = k == 1 ? BYTES : pcm(DP_FMT_S16LE, 1);
		struct dp_result res = {0};
		struct dp_exec x = {.pools = g_test_pools, .res = &res, .fmt = f};
		struct dp_run run;

		assert_non_null(p);
		x.buf = dp_pools_get(g_test_pools, IN_MAX / 2);
		memcpy(x.buf->data, g_s16, IN_MAX / 2);
		dp_run_init(&run);
		assert_int_equal(dp_pipeline_step(p, &x, NULL, DP_RUN_FRAME, &run, 0), DP_PENDING);
		assert_int_equal(run.node, 0);
		assert_true(run.in_slice);
		dp_pipeline_step_abort(p, &x, &run);
		assert_false(run.in_slice);
		assert_int_equal(x.buf->len, IN_MAX / 2);
		dp_buf_free(x.buf);
		dp_pipeline_unref(p);
	}
}

/* The admission estimate: the peak input + output of a node, scaled by the formats. */
static void
test_mem_estimate(void **state)
{
	const char *widen[] = {"convert format=f32le", "channels count=2", "resample rate=8000"};
	const char *bytes[] = {"crc32c", "zstd_decompress"};
	struct dp_err err = {0};
	struct dp_pipeline *p = tnr_compile(&err, 3, widen);
	struct dp_format f = pcm(DP_FMT_S16LE, 1);

	(void)state;
	assert_non_null(p);
	/* 1000 B -> 2064 (f32, +64 slack) -> 4192 (stereo) -> 2160 (half rate): the peak is the
	 * resampler's input and output. */
	assert_int_equal(dp_pipeline_mem_estimate(p, &f, 1000), 4192 + 2160);
	dp_pipeline_unref(p);
	p = tnr_compile(&err, 2, bytes);
	assert_non_null(p);
	/* An expanding node counts its bound. */
	assert_int_equal(dp_pipeline_mem_estimate(p, &BYTES, 1000),
			 1000 + (uint64_t)dp_node_max_message_bytes);
	dp_pipeline_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes_nodes),	    cmocka_unit_test(test_audio_nodes),
	    cmocka_unit_test(test_step_equals_run), cmocka_unit_test(test_abort_returns_buffers),
	    cmocka_unit_test(test_mem_estimate),
	};
	int rc;

	setup(NULL);
	rc = cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
	teardown(NULL);
	return rc;
}

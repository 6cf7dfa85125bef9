/*
 * Resumable nodes (the bulk lane, docs/ARCHITECTURE.md "Fair execution"): every node with a
 * slice() hook, run in slices of random sizes, gives the output and annotations of its
 * one-shot process(), byte for byte, and fails as it does (zstd_decompress's bound and
 * errors); dp_pipeline_step() over a chain equals dp_pipeline_run();
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
#include <zstd.h>

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

/* One node description on one input: one-shot == sliced, over several random splits.
 * @return the number of slices of the last split. */
static unsigned
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
	return slices;
}

/* One node description on an input it refuses: one-shot and sliced fail alike (status, and
 * the message when @p same_msg), over several random splits, and both return every buffer. */
static void
check_node_fails(const char *node, struct dp_format f, const void *data, uint32_t len, int status,
		 bool same_msg)
{
	struct dp_err err = {0};
	struct dp_pipeline *p = tnr_compile(&err, 1, &node);
	uint8_t *out = malloc(OUT_CAP);
	struct dp_result r1, r2;
	size_t n = 0;
	unsigned slices = 0;

	if (p == NULL)
		fail_msg("compile '%s': %s", node, err.msg);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(
		    tnr_run(p, NULL, DP_RUN_FRAME, f, data, len, &r1, out, OUT_CAP, &n, NULL),
		    status);
		assert_int_equal(
		    sliced_run(p, NULL, DP_RUN_FRAME, f, data, len, &r2, out, &n, &slices), status);
		if (same_msg)
			assert_string_equal(r1.err.msg, r2.err.msg);
	}
	free(out);
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

/* A zstd frame of @p src into @p dst (capacity @p cap): level @p level, with or without the
 * content size in its header. @return its length. */
static uint32_t
zframe(void *dst, size_t cap, const void *src, size_t len, int level, bool sized)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t n;

	assert_non_null(cc);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, sized ? 1 : 0);
	n = ZSTD_compress2(cc, dst, cap, src, len);
	ZSTD_freeCCtx(cc);
	assert_false(ZSTD_isError(n));
	return (uint32_t)n;
}

static void
test_meter(void **state)
{
	(void)state;
	check_node("meter", pcm(DP_FMT_S16LE, 1), g_s16, IN_MAX);
	check_node("meter", pcm(DP_FMT_S16LE, 2), g_s16, IN_MAX - 4 * 11);
	check_node("meter", pcm(DP_FMT_F32LE, 1), g_f32, IN_MAX); /* double sums, in order */
	check_node("meter", pcm(DP_FMT_F32LE, 1), g_f32, 4);
	check_node("meter", pcm(DP_FMT_S16LE, 1), g_s16, 2);
}

/* zstd_decompress sliced: frames with and without a declared size, several frames, a frame
 * that inflates a lot per input byte (cut by the output bound of a slice); refusals (the
 * bound, a bomb, corrupt and truncated input) are the one-shot ones. */
static void
test_zstd_decompress(void **state)
{
	const size_t cap = ZSTD_compressBound(IN_MAX) * 2 + 64;
	uint8_t *z = malloc(cap), *zeros = calloc(1, 900 * 1024);
	uint32_t n1, n2, nz;

	(void)state;
	assert_non_null(z);
	assert_non_null(zeros);
	n1 = zframe(z, cap, g_bytes, IN_MAX, 3, true);
	check_node("zstd_decompress", BYTES, z, n1);
	n1 = zframe(z, cap, g_bytes, IN_MAX, 19, false); /* unknown size: the bounded loop */
	check_node("zstd_decompress", BYTES, z, n1);
	n2 = zframe(z + n1, cap - n1, g_s16, IN_MAX / 2, 1, true); /* two frames */
	check_node("zstd_decompress", BYTES, z, n1 + n2);
	n1 = zframe(z, cap, g_bytes, 1, 3, true);
	check_node("zstd_decompress", BYTES, z, n1);

	/* 900 KiB of zeros in a few dozen bytes: one input slice, many output slices. */
	nz = zframe(z, cap, zeros, 900 * 1024, 3, false);
	assert_true(nz < 1000);
	assert_true(check_node("zstd_decompress", BYTES, z, nz) > 900 * 1024 / (64 * 1024));
	nz = zframe(z, cap, zeros, 900 * 1024, 3, true);
	assert_true(check_node("zstd_decompress", BYTES, z, nz) > 900 * 1024 / (64 * 1024));

	/* The bomb stops at the same bound, with the same error, declared or not. */
	nz = zframe(z, cap, zeros, 900 * 1024, 3, false);
	check_node_fails("zstd_decompress max_bytes=100000", BYTES, z, nz, DP_INVALID_ARGUMENT,
			 true);
	nz = zframe(z, cap, zeros, 900 * 1024, 3, true);
	check_node_fails("zstd_decompress max_bytes=100000", BYTES, z, nz, DP_INVALID_ARGUMENT,
			 true);
	/* Over the largest buffer (1 MiB in the test pools): OUT_OF_RANGE either way. */
	n1 = zframe(z, cap, zeros, 900 * 1024, 3, false);
	n2 = zframe(z + n1, cap - n1, zeros, 900 * 1024, 3, false);
	check_node_fails("zstd_decompress", BYTES, z, n1 + n2, DP_OUT_OF_RANGE, true);

	/* Truncated and corrupt input. */
	n1 = zframe(z, cap, g_bytes, IN_MAX, 3, false);
	check_node_fails("zstd_decompress", BYTES, z, n1 - 100, DP_INVALID_ARGUMENT, true);
	n1 = zframe(z, cap, g_bytes, IN_MAX, 3, true);
	check_node_fails("zstd_decompress", BYTES, z, n1 - 100, DP_INVALID_ARGUMENT, true);
	for (uint32_t i = n1 / 2; i < n1 / 2 + 64; i++)
		z[i] ^= 0x5a;
	check_node_fails("zstd_decompress", BYTES, z, n1, DP_INVALID_ARGUMENT, false);
	check_node_fails("zstd_decompress", BYTES, g_bytes, 5000, DP_INVALID_ARGUMENT, true);
	free(z);
	free(zeros);
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
				   {"channels count=2", "sha256"},
				   {"zstd_decompress", "crc32c"},
				   {"meter", "crc32c"}};
	uint8_t *z = malloc(IN_MAX);
	uint32_t nz;

	(void)state;
	assert_non_null(z);
	/* The decompressor's input: 100 KiB of audio in a frame of unknown size, more than one
	 * slice's output, so the first slice cannot finish it. */
	nz = zframe(z, IN_MAX, g_s16, IN_MAX / 2, 1, false);
	for (unsigned k = 0; k < 5; k++) {
		struct dp_err err = {0};
		struct dp_pipeline *p = tnr_compile(&err, 2, chains[k]);
		struct dp_format f = k == 1 || k == 3 ? BYTES : pcm(DP_FMT_S16LE, 1);
		const void *in = k == 3 ? (const void *)z : g_s16;
		uint32_t len = k == 3 ? nz : IN_MAX / 2;
		struct dp_result res = {0};
		struct dp_exec x = {.pools = g_test_pools, .res = &res, .fmt = f};
		struct dp_run run;

		assert_non_null(p);
		x.buf = dp_pools_get(g_test_pools, len);
		memcpy(x.buf->data, in, len);
		dp_run_init(&run);
		assert_int_equal(dp_pipeline_step(p, &x, NULL, DP_RUN_FRAME, &run, 0), DP_PENDING);
		assert_int_equal(run.node, 0);
		assert_true(run.in_slice);
		dp_pipeline_step_abort(p, &x, &run);
		assert_false(run.in_slice);
		assert_int_equal(x.buf->len, len);
		dp_buf_free(x.buf);
		dp_pipeline_unref(p);
	}
	free(z);
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
	    cmocka_unit_test(test_mem_estimate),    cmocka_unit_test(test_meter),
	    cmocka_unit_test(test_zstd_decompress),
	};
	int rc;

	setup(NULL);
	rc = cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
	teardown(NULL);
	return rc;
}

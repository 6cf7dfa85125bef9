/*
 * Byte nodes: sha256 against the FIPS 180-4 example vectors, zstd_compress/zstd_decompress
 * round trips on random and structured data, and rejection of corrupt, truncated, foreign and
 * over-limit input (max_bytes, decompression bombs, frames without a declared size), checked
 * against libzstd called directly here.
 */
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/node_run.h"
#include "tests/fakes/test_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static const struct dp_format BYTES = {.kind = DP_KIND_BYTES};

static struct dp_pipeline *
compile(unsigned n, const char *const *nodes)
{
	struct dp_err err = {0};
	struct dp_pipeline *p = tnr_compile(&err, n, nodes);

	if (p == NULL)
		fail_msg("compile '%s': %s", nodes[0], err.msg);
	return p;
}

static void
test_sha256_fips_vectors(void **state)
{
	const char *node = "sha256";
	struct dp_pipeline *p = compile(1, &node);
	const char *msg2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	struct dp_result res;
	size_t n = 0;
	char out[64];

	(void)state;
	assert_int_equal(
	    tnr_run(p, NULL, DP_RUN_FRAME, BYTES, "abc", 3, &res, out, sizeof(out), &n, NULL),
	    DP_OK);
	assert_string_equal(tnr_annot(&res, "sha256"),
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(n, 3); /* payload passes through */
	assert_memory_equal(out, "abc", 3);
	assert_int_equal(tnr_run(p, NULL, DP_RUN_FRAME, BYTES, "", 0, &res, NULL, 0, &n, NULL),
			 DP_OK);
	assert_string_equal(tnr_annot(&res, "sha256"),
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(tnr_run(p, NULL, DP_RUN_FRAME, BYTES, msg2, (uint32_t)strlen(msg2), &res,
				 NULL, 0, &n, NULL),
			 DP_OK);
	assert_string_equal(tnr_annot(&res, "sha256"),
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	dp_pipeline_unref(p);
}

static uint8_t *
random_bytes(size_t n, uint32_t seed)
{
	uint8_t *b = malloc(n);

	for (size_t i = 0; i < n; i++) {
		seed = seed * 1664525u + 1013904223u;
		b[i] = (uint8_t)(seed >> 24);
	}
	return b;
}

static uint8_t *
structured_bytes(size_t n)
{
	uint8_t *b = malloc(n);

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)("timestamp=2026-11-27 level=info msg=ok\n"[i % 39]);
	return b;
}

static void
round_trip(const uint8_t *in, size_t n, const char *level, size_t *compressed)
{
	char c[64];
	const char *nodes[2] = {c, "zstd_decompress"};
	struct dp_pipeline *both, *one;
	struct dp_result res;
	static uint8_t out[1 << 20];
	size_t got = 0;
	struct dp_format of;

	snprintf(c, sizeof(c), "zstd_compress level=%s", level);
	both = compile(2, nodes);
	one = compile(1, nodes);
	assert_int_equal(tnr_run(both, NULL, DP_RUN_FRAME, BYTES, in, (uint32_t)n, &res, out,
				 sizeof(out), &got, &of),
			 DP_OK);
	assert_int_equal(got, n);
	assert_memory_equal(out, in, n);
	assert_int_equal(of.kind, DP_KIND_BYTES);
	/* The compressed form is a valid zstd frame libzstd itself decodes to the input. */
	got = 0;
	assert_int_equal(tnr_run(one, NULL, DP_RUN_FRAME, BYTES, in, (uint32_t)n, &res, out,
				 sizeof(out), &got, NULL),
			 DP_OK);
	assert_int_equal(ZSTD_getFrameContentSize(out, got), n);
	if (n > 0) { /* the checksum flag: bit 2 of the frame header descriptor */
		assert_true(got > 4);
		assert_true(out[4] & 0x04);
	}
	{
		uint8_t *chk = malloc(n + 1);

		assert_int_equal(ZSTD_decompress(chk, n + 1, out, got), n);
		assert_memory_equal(chk, in, n);
		free(chk);
	}
	*compressed = got;
	dp_pipeline_unref(both);
	dp_pipeline_unref(one);
}

static void
test_zstd_round_trips(void **state)
{
	size_t sizes[] = {0, 1, 100, 4096, 60000, 500000};
	size_t c;

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *r = random_bytes(sizes[i], (uint32_t)i + 7);
		uint8_t *s = structured_bytes(sizes[i]);

		round_trip(r, sizes[i], "3", &c);
		round_trip(s, sizes[i], "1", &c);
		if (sizes[i] >= 4096)
			assert_true(c < sizes[i] / 10); /* structured data does compress */
		round_trip(s, sizes[i], "19", &c);
		free(r);
		free(s);
	}
}

static int
decompress(const char *node, const void *in, size_t n, struct dp_result *res)
{
	struct dp_pipeline *p = compile(1, &node);
	size_t got = 0;
	int st = tnr_run(p, NULL, DP_RUN_FRAME, BYTES, in, (uint32_t)n, res, NULL, 0, &got, NULL);

	dp_pipeline_unref(p);
	return st;
}

static void
test_zstd_rejects_corrupt_and_oversized(void **state)
{
	uint8_t *plain = structured_bytes(200000);
	size_t cap = ZSTD_compressBound(200000);
	uint8_t *frame = malloc(cap), *bad = malloc(cap);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	struct dp_result res;
	size_t n;

	(void)state;
	/* With a checksum, as zstd_compress writes them (checked by test_zstd_round_trips). */
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	n = ZSTD_compress2(cc, frame, cap, plain, 200000);
	ZSTD_freeCCtx(cc);
	assert_false(ZSTD_isError(n));
	/* Baseline: the frame decodes with a big enough limit. */
	assert_int_equal(decompress("zstd_decompress max_bytes=200000", frame, n, &res), DP_OK);
	/* One byte over the limit: refused from the header, before any work. */
	assert_int_equal(decompress("zstd_decompress max_bytes=199999", frame, n, &res),
			 DP_INVALID_ARGUMENT);
	assert_non_null(strstr(res.err.msg, "max_bytes"));
	/* Not zstd at all. */
	assert_int_equal(decompress("zstd_decompress", plain, 1000, &res), DP_INVALID_ARGUMENT);
	assert_int_equal(decompress("zstd_decompress", "", 0, &res), DP_INVALID_ARGUMENT);
	{
		/* A stream's end (flush) has no input: nothing to inflate, not an error. */
		const char *node = "zstd_decompress";
		struct dp_pipeline *p = compile(1, &node);
		size_t got = 0; /* appended to */

		assert_int_equal(
		    tnr_run(p, NULL, DP_RUN_FLUSH, BYTES, "", 0, &res, NULL, 0, &got, NULL), DP_OK);
		assert_int_equal(got, 0);
		dp_pipeline_unref(p);
	}
	/* Truncated. */
	assert_int_equal(decompress("zstd_decompress", frame, n / 2, &res), DP_INVALID_ARGUMENT);
	/* Corrupted in the middle (checksum or block structure breaks). */
	memcpy(bad, frame, n);
	for (size_t i = n / 3; i < n / 3 + 16; i++)
		bad[i] ^= 0x5a;
	assert_int_equal(decompress("zstd_decompress", bad, n, &res), DP_INVALID_ARGUMENT);
	free(plain);
	free(frame);
	free(bad);
}

/* A bomb: 800 KB of zeros streamed into a frame with no declared content size, so only the
 * streaming bound can stop it. */
static void
test_zstd_bomb_without_declared_size(void **state)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	uint8_t *zeros = calloc(800000, 1), out[4096];
	ZSTD_inBuffer in = {zeros, 800000, 0};
	ZSTD_outBuffer ob = {out, sizeof(out), 0};
	struct dp_result res;
	size_t rem;

	(void)state;
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	do
		rem = ZSTD_compressStream2(cc, &ob, &in, ZSTD_e_end);
	while (rem != 0 && !ZSTD_isError(rem));
	assert_false(ZSTD_isError(rem));
	assert_int_equal(ZSTD_getFrameContentSize(out, ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
	assert_int_equal(decompress("zstd_decompress max_bytes=100000", out, ob.pos, &res),
			 DP_INVALID_ARGUMENT);
	assert_non_null(strstr(res.err.msg, "max_bytes 100000"));
	/* Within the limit it decodes. */
	assert_int_equal(decompress("zstd_decompress max_bytes=800000", out, ob.pos, &res), DP_OK);
	/* Larger than the largest test buffer (1 MiB) but allowed by max_bytes: OUT_OF_RANGE. */
	{
		uint8_t *big = calloc(3u << 20, 1), *z = malloc(ZSTD_compressBound(3u << 20));
		size_t zn = ZSTD_compress(z, ZSTD_compressBound(3u << 20), big, 3u << 20, 1);

		assert_int_equal(decompress("zstd_decompress max_bytes=4000000", z, zn, &res),
				 DP_OUT_OF_RANGE);
		free(big);
		free(z);
	}
	ZSTD_freeCCtx(cc);
	free(zeros);
}

static void
test_zstd_params(void **state)
{
	struct dp_err err = {0};
	const char *bad[] = {"zstd_compress level=0", "zstd_compress level=20",
			     "zstd_compress level=x", "zstd_decompress max_bytes=0",
			     "zstd_decompress max_bytes=-5"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(tnr_compile(&err, 1, &bad[i]));
		assert_int_equal(err.status, DP_INVALID_ARGUMENT);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_fips_vectors),
	    cmocka_unit_test(test_zstd_round_trips),
	    cmocka_unit_test(test_zstd_rejects_corrupt_and_oversized),
	    cmocka_unit_test(test_zstd_bomb_without_declared_size),
	    cmocka_unit_test(test_zstd_params),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}

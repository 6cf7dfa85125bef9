/*
 * Node arithmetic, checked against values computed here independently: gain (rounding,
 * saturation, F32 without clipping), convert both ways (edges, NaN), crc32c check value and
 * published vectors. Nodes run through dp_pipeline_compile/run, the path workers use.
 */
#include "dataplane/pipeline.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define g_pools g_test_pools

/* One-node pipeline with at most one parameter. */
static struct dp_pipeline *
node1(const char *type, const char *key, const char *val, struct dp_err *err)
{
	struct dp_param prm = {.key = (char *)key, .value = (char *)val};
	struct dp_node_spec n = {.type = (char *)type, .n_params = key ? 1 : 0, .params = &prm};
	struct dp_spec s = {.name = "t", .n_nodes = 1, .nodes = &n};

	return dp_pipeline_compile(&s, 32, err);
}

/* Run p over len bytes of data in format f; returns status, output copied to out. */
static int
run(const struct dp_pipeline *p, struct dp_format f, const void *data, uint32_t len,
    struct dp_result *res, void *out, uint32_t *out_len, struct dp_format *out_fmt)
{
	struct dp_exec x = {.pools = g_pools, .res = res, .fmt = f};
	int st;

	memset(res, 0, sizeof(*res));
	x.buf = dp_pools_get(g_pools, len);
	assert_non_null(x.buf);
	memcpy(x.buf->data, data, len);
	st = dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME);
	if (out != NULL) {
		memcpy(out, x.buf->data, x.buf->len);
		*out_len = x.buf->len;
	}
	if (out_fmt)
		*out_fmt = x.fmt;
	dp_buf_free(x.buf);
	return st;
}

static const struct dp_format S16 = {
    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 16000};
static const struct dp_format F32 = {
    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 1, .rate = 16000};
static const struct dp_format BYTES = {.kind = DP_KIND_BYTES};

/* Independent reference: round half to even, saturate. */
static int16_t
ref_round_sat(double v)
{
	double r = nearbyint(v); /* default rounding mode: ties to even */

	return r > 32767 ? 32767 : r < -32768 ? -32768 : (int16_t)r;
}

static void
test_gain_s16_matches_reference(void **state)
{
	static const int16_t in[] = {0,	     1,	    -1,	    3,	   -3,	   1000,  -1000, 12345,
				     -23456, 16384, -16384, 32767, -32768, 20000, -20000};
	const double dbs[] = {6.0, -6.0, 0.0, 20.0, -60.0, 6.0206};
	int16_t out[32];
	uint32_t olen;
	struct dp_result res;
	struct dp_err err;

	(void)state;
	for (size_t d = 0; d < sizeof(dbs) / sizeof(dbs[0]); d++) {
		char db[32];
		float factor = (float)pow(10.0, dbs[d] / 20.0);
		struct dp_pipeline *p;

		snprintf(db, sizeof(db), "%g", dbs[d]);
		p = node1("gain", "db", db, &err);
		assert_non_null(p);
		assert_int_equal(run(p, S16, in, sizeof(in), &res, out, &olen, NULL), DP_OK);
		assert_int_equal(olen, sizeof(in));
		for (size_t i = 0; i < sizeof(in) / 2; i++)
			assert_int_equal(out[i], ref_round_sat((double)((float)in[i] * factor)));
		dp_pipeline_unref(p);
	}
}

static void
test_gain_s16_saturates_both_ends(void **state)
{
	static const int16_t in[] = {20000, -20000, 32767, -32768};
	int16_t out[4];
	uint32_t olen;
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("gain", "db", "20", &err);

	(void)state;
	assert_int_equal(run(p, S16, in, sizeof(in), &res, out, &olen, NULL), DP_OK);
	assert_int_equal(out[0], 32767);
	assert_int_equal(out[1], -32768);
	assert_int_equal(out[2], 32767);
	assert_int_equal(out[3], -32768);
	dp_pipeline_unref(p);
}

static void
test_gain_f32_does_not_clip(void **state)
{
	static const float in[] = {0.0f, 0.5f, -0.75f, 1.0f, -1.0f, 2.0f};
	float out[6];
	uint32_t olen;
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("gain", "db", "12", &err);
	float factor = (float)pow(10.0, 12.0 / 20.0);

	(void)state;
	assert_int_equal(run(p, F32, in, sizeof(in), &res, out, &olen, NULL), DP_OK);
	for (int i = 0; i < 6; i++)
		assert_true(out[i] == in[i] * factor);
	assert_true(out[5] > 7.9f); /* 2.0 * 3.98: well above full scale, not clipped */
	dp_pipeline_unref(p);
}

static void
test_gain_compile_rejects_bad_db(void **state)
{
	const char *bad[] = {"loud", "", "6dB", "nan", "inf", "1e9", "-201"};
	struct dp_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(node1("gain", "db", bad[i], &err));
		assert_int_equal(err.status, DP_INVALID_ARGUMENT);
		assert_non_null(strstr(err.msg, "node 0 (gain): param db"));
	}
	assert_null(node1("gain", "db", "loud", &err));
	assert_string_equal(err.msg, "node 0 (gain): param db: not a number: 'loud'");
	assert_null(node1("gain", NULL, NULL, &err));
	assert_string_equal(err.msg, "node 0 (gain): param db: required");
}

static void
test_gain_rejects_bytes_at_run_time(void **state)
{
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("gain", "db", "1", &err);

	(void)state;
	assert_int_equal(run(p, BYTES, "abcd", 4, &res, NULL, NULL, NULL), DP_INVALID_ARGUMENT);
	assert_string_equal(res.err.msg, "node 0 (gain): needs audio input, got bytes");
	dp_pipeline_unref(p);
}

static void
test_convert_s16_to_f32_exact(void **state)
{
	static const int16_t in[] = {0, 1, -1, 16384, -16384, 32767, -32768};
	float out[8];
	uint32_t olen;
	struct dp_format of;
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("convert", "format", "f32le", &err);

	(void)state;
	assert_int_equal(run(p, S16, in, sizeof(in), &res, out, &olen, &of), DP_OK);
	assert_int_equal(olen, sizeof(in) * 2);
	assert_int_equal(of.fmt, DP_FMT_F32LE);
	assert_int_equal(of.rate, 16000);
	for (int i = 0; i < 7; i++)
		assert_true(out[i] == (float)in[i] / 32768.0f);
	assert_true(out[4] == -0.5f);
	assert_true(out[6] == -1.0f);
	dp_pipeline_unref(p);
}

static void
test_convert_f32_to_s16_rounds_and_saturates(void **state)
{
	const float in[] = {0.0f,  0.5f,	 -0.5f,	       1.0f,	      -1.0f, 1.5f,
			    -1.5f, 1.0f / 65536, 3.0f / 65536, -3.0f / 65536, NAN,   0.25f};
	const int16_t want[] = {0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 2, -2, 0, 8192};
	int16_t out[16];
	uint32_t olen;
	struct dp_format of;
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("convert", "format", "s16le", &err);

	(void)state;
	assert_int_equal(run(p, F32, in, sizeof(in), &res, out, &olen, &of), DP_OK);
	assert_int_equal(olen, sizeof(in) / 2);
	assert_int_equal(of.fmt, DP_FMT_S16LE);
	for (size_t i = 0; i < sizeof(want) / 2; i++)
		assert_int_equal(out[i], want[i]);
	dp_pipeline_unref(p);
}

static void
test_convert_rejects_bad_format(void **state)
{
	struct dp_err err;

	(void)state;
	assert_null(node1("convert", "format", "s24le", &err));
	assert_non_null(strstr(err.msg, "node 0 (convert): param format"));
	assert_null(node1("convert", NULL, NULL, &err));
	assert_non_null(strstr(err.msg, "param format: required"));
}

static void
test_crc32c_check_value_and_vectors(void **state)
{
	uint8_t zeros[32] = {0}, ones[32], inc[32];
	struct {
		const void *data;
		uint32_t len;
		const char *want;
	} v[] = {
	    {"123456789", 9, "e3069283"}, {zeros, 32, "8a9136aa"}, /* RFC 3720 B.4 */
	    {ones, 32, "62a8ab43"},	  {inc, 32, "46dd794e"},   {"", 0, "00000000"},
	};
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("crc32c", NULL, NULL, &err);
	uint8_t out[64];
	uint32_t olen;

	(void)state;
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(run(p, BYTES, v[i].data, v[i].len, &res, out, &olen, NULL), DP_OK);
		assert_int_equal(res.n_annot, 1);
		assert_string_equal(res.annot[0].key, "crc32c");
		assert_string_equal(res.annot[0].val, v[i].want);
		assert_int_equal(olen, v[i].len);
		assert_memory_equal(out, v[i].data, v[i].len);
	}
	dp_pipeline_unref(p);
}

static void
test_passthrough_keeps_bytes(void **state)
{
	struct dp_result res;
	struct dp_err err;
	struct dp_pipeline *p = node1("passthrough", NULL, NULL, &err);
	char out[16];
	uint32_t olen;

	(void)state;
	assert_int_equal(run(p, BYTES, "hello", 5, &res, out, &olen, NULL), DP_OK);
	assert_int_equal(olen, 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(res.n_annot, 0);
	dp_pipeline_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gain_s16_matches_reference),
	    cmocka_unit_test(test_gain_s16_saturates_both_ends),
	    cmocka_unit_test(test_gain_f32_does_not_clip),
	    cmocka_unit_test(test_gain_compile_rejects_bad_db),
	    cmocka_unit_test(test_gain_rejects_bytes_at_run_time),
	    cmocka_unit_test(test_convert_s16_to_f32_exact),
	    cmocka_unit_test(test_convert_f32_to_s16_rounds_and_saturates),
	    cmocka_unit_test(test_convert_rejects_bad_format),
	    cmocka_unit_test(test_crc32c_check_value_and_vectors),
	    cmocka_unit_test(test_passthrough_keeps_bytes),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}

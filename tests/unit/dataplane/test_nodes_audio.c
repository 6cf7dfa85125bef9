/*
 * The audio node library: resample (length, frequency, streaming == one-shot, tail on flush),
 * channels arithmetic, meter on signals whose level is known by construction, and vad on
 * silence, white noise and a synthetic voiced signal (real speech: test_vad_speech.c).
 * Expected values are computed here from the signal definitions, not taken from the nodes.
 */
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/node_run.h"
#include "tests/fakes/test_env.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct dp_format F32_48K = {
    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 1, .rate = 48000};
static const struct dp_format S16_48K = {
    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 48000};

static struct dp_pipeline *
compile1(const char *node)
{
	struct dp_err err = {0};
	struct dp_pipeline *p = tnr_compile(&err, 1, &node);

	if (p == NULL)
		fail_msg("compile '%s': %s", node, err.msg);
	return p;
}

/* Frequency by counting rising zero crossings over the middle of the signal (edges skipped:
 * filter onset and tail). */
static double
zc_frequency(const float *x, size_t n, double rate)
{
	size_t a = n / 10, b = n - n / 10, first = 0, last = 0, count = 0;

	for (size_t i = a + 1; i < b; i++) {
		if (x[i - 1] < 0 && x[i] >= 0) {
			if (count == 0)
				first = i;
			last = i;
			count++;
		}
	}
	if (count < 2)
		return 0;
	return (double)(count - 1) * rate / (double)(last - first);
}

/* Goertzel power of frequency f in x, normalised by n^2. */
static double
goertzel(const float *x, size_t n, double f, double rate)
{
	double w = 2 * M_PI * f / rate, c = 2 * cos(w), s1 = 0, s2 = 0;

	for (size_t i = 0; i < n; i++) {
		double s0 = x[i] + c * s1 - s2;

		s2 = s1;
		s1 = s0;
	}
	return (s1 * s1 + s2 * s2 - c * s1 * s2) / ((double)n * n);
}

static float *
sine(size_t n, double f, double rate, double amp)
{
	float *x = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		x[i] = (float)(amp * sin(2 * M_PI * f * (double)i / rate));
	return x;
}

static void
test_resample_sine_48k_to_16k_streamed_equals_oneshot(void **state)
{
	const size_t n_in = 48000, frame = 480; /* 1 s, 10 ms frames */
	struct dp_pipeline *p = compile1("resample rate=16000");
	float *in = sine(n_in, 1000, 48000, 0.5);
	float *one = calloc(20000, sizeof(float)), *str = calloc(20000, sizeof(float));
	size_t one_len = 0, str_len = 0;
	struct dp_result res;
	struct dp_format of;
	struct dp_err err;
	struct dp_stream *s;

	(void)state;
	/* One call: the whole signal plus the flush. */
	s = tnr_stream(p, &F32_48K, &err);
	assert_non_null(s);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FLUSH, F32_48K, in, n_in * 4, &res, one, 20000 * 4, &one_len, &of),
	    DP_OK);
	assert_int_equal(of.rate, 16000);
	assert_int_equal(of.fmt, DP_FMT_F32LE);
	tnr_stream_free(s);

	/* Streamed: 100 frames of 10 ms, then the flush alone. */
	s = tnr_stream(p, &F32_48K, &err);
	assert_non_null(s);
	for (size_t off = 0; off < n_in; off += frame)
		assert_int_equal(tnr_run(p, s, DP_RUN_FRAME, F32_48K, in + off, frame * 4, &res,
					 str, 20000 * 4, &str_len, &of),
				 DP_OK);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FLUSH, F32_48K, NULL, 0, &res, str, 20000 * 4, &str_len, &of),
	    DP_OK);
	tnr_stream_free(s);

	one_len /= 4;
	str_len /= 4;
	/* Length: within one 10 ms output frame (160 samples) of 16000. */
	assert_true(labs((long)one_len - 16000) <= 160);
	assert_int_equal(str_len, one_len);
	/* Same samples, to float tolerance. */
	for (size_t i = 0; i < one_len; i++)
		if (fabsf(one[i] - str[i]) > 1e-6f)
			fail_msg("sample %zu: one-shot %.9g, streamed %.9g", i, one[i], str[i]);
	/* Frequency preserved: zero crossings say 1 kHz within 0.5%, and the Goertzel power at
	 * 1 kHz is the sine's (amp^2/4) while 2 kHz and 3 kHz carry almost nothing. */
	double f = zc_frequency(one, one_len, 16000);
	assert_true(fabs(f - 1000) < 5);
	double p1 = goertzel(one + 1000, 14000, 1000, 16000);
	assert_true(fabs(p1 - 0.25 * 0.25) < 0.01);
	assert_true(goertzel(one + 1000, 14000, 3000, 16000) < p1 * 1e-4);
	assert_true(goertzel(one + 1000, 14000, 2000, 16000) < p1 * 1e-4);
	free(in);
	free(one);
	free(str);
	dp_pipeline_unref(p);
}

static void
test_resample_s16_and_up(void **state)
{
	const size_t n_in = 8000; /* 0.5 s at 16 kHz -> 48 kHz */
	struct dp_pipeline *p = compile1("resample rate=48000 quality=very_high");
	struct dp_format in_f = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 16000};
	int16_t *in = malloc(n_in * 2), *out = calloc(30000, 2);
	float *fo = calloc(30000, sizeof(float));
	size_t out_len = 0;
	struct dp_result res;
	struct dp_format of;
	struct dp_err err;
	struct dp_stream *s;

	(void)state;
	for (size_t i = 0; i < n_in; i++)
		in[i] = (int16_t)lrint(10000 * sin(2 * M_PI * 440 * (double)i / 16000));
	s = tnr_stream(p, &in_f, &err);
	assert_non_null(s);
	for (size_t off = 0; off < n_in; off += 160)
		assert_int_equal(tnr_run(p, s, DP_RUN_FRAME, in_f, in + off, 320, &res, out,
					 30000 * 2, &out_len, &of),
				 DP_OK);
	assert_int_equal(of.fmt, DP_FMT_S16LE);
	assert_int_equal(of.rate, 48000);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FLUSH, in_f, NULL, 0, &res, out, 30000 * 2, &out_len, &of), DP_OK);
	tnr_stream_free(s);
	out_len /= 2;
	assert_true(labs((long)out_len - 24000) <= 480);
	for (size_t i = 0; i < out_len; i++)
		fo[i] = out[i] / 32768.0f;
	assert_true(fabs(zc_frequency(fo, out_len, 48000) - 440) < 2.5);
	free(in);
	free(out);
	free(fo);
	dp_pipeline_unref(p);
}

static void
test_resample_params_and_same_rate(void **state)
{
	struct dp_err err = {0};
	const char *bad[] = {"resample", "resample rate=abc", "resample rate=10",
			     "resample rate=16000 quality=ultra"};
	struct dp_pipeline *p;
	float in[480] = {0.25f}, out[600];
	size_t n = 0;
	struct dp_result res;
	struct dp_format of;
	struct dp_stream *s;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		assert_null(tnr_compile(&err, 1, &bad[i]));
		assert_int_equal(err.status, DP_INVALID_ARGUMENT);
		assert_non_null(strstr(err.msg, "resample"));
	}
	/* Same rate: a pass-through that still reports the rate. */
	p = compile1("resample rate=48000");
	s = tnr_stream(p, &F32_48K, &err);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FLUSH, F32_48K, in, sizeof(in), &res, out, sizeof(out), &n, &of),
	    DP_OK);
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(in, out, sizeof(in));
	tnr_stream_free(s);
	dp_pipeline_unref(p);
}

static void
test_resample_reset_restarts_signal(void **state)
{
	struct dp_pipeline *p = compile1("resample rate=16000");
	float *in = sine(4800, 1000, 48000, 0.5);
	float a[3000], b[3000];
	size_t na = 0, nb = 0;
	struct dp_result res;
	struct dp_err err;
	struct dp_stream *s;

	(void)state;
	s = tnr_stream(p, &F32_48K, &err);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FRAME, F32_48K, in, 4800 * 4, &res, a, sizeof(a), &na, NULL),
	    DP_OK);
	dp_stream_reset(s);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FRAME, F32_48K, in, 4800 * 4, &res, b, sizeof(b), &nb, NULL),
	    DP_OK);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	tnr_stream_free(s);
	free(in);
	dp_pipeline_unref(p);
}

/* Finding 1: what a client controls is bounded before libsoxr is asked for anything: the
 * 60-byte request with 65535 channels at 1 Hz -> 384 kHz (seconds of soxr_create, gigabytes)
 * and its milder cousins are INVALID_ARGUMENT at stream init, with the reason. */
static void
test_resample_bounds_checked_before_soxr(void **state)
{
	static const struct {
		const char *node;
		uint16_t channels;
		uint32_t rate;
		const char *msg;
	} bad[] = {
	    {"resample rate=384000 quality=very_high", 65535, 1, "sample_rate 1 Hz out of range"},
	    {"resample rate=384000", 1, 999, "out of range [1000, 384000]"},
	    {"resample rate=8000", 16384, 16000, "more than the 32 supported"},
	    {"resample rate=8000", 33, 16000, "more than the 32 supported"},
	    {"resample rate=384000 quality=very_high", 1, 1000, "factor of 48"},
	    {"resample rate=1000", 2, 48001, "factor of 48"},
	    {"resample rate=16000 quality=very_high", 5, 48000,
	     "quality very_high takes at most 4"},
	    {"resample rate=16000 quality=high", 9, 48000, "quality high takes at most 8"},
	    {"resample rate=16000 quality=low", 9, 48000, "quality low takes at most 8"},
	};
	static const struct {
		const char *node;
		uint16_t channels;
		uint32_t rate;
	} good[] = {
	    {"resample rate=384000 quality=very_high", 4, 8000},
	    {"resample rate=1000 quality=high", 8, 48000},
	    {"resample rate=48000 quality=quick", 32, 8000},
	};
	struct dp_err err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dp_pipeline *p = compile1(bad[i].node);
		struct dp_format f = {.kind = DP_KIND_AUDIO,
				      .fmt = DP_FMT_S16LE,
				      .channels = bad[i].channels,
				      .rate = bad[i].rate};

		memset(&err, 0, sizeof(err));
		assert_null(tnr_stream(p, &f, &err));
		assert_int_equal(err.status, DP_INVALID_ARGUMENT);
		if (strstr(err.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
		dp_pipeline_unref(p);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct dp_pipeline *p = compile1(good[i].node);
		struct dp_format f = {.kind = DP_KIND_AUDIO,
				      .fmt = DP_FMT_F32LE,
				      .channels = good[i].channels,
				      .rate = good[i].rate};
		struct dp_stream *s = tnr_stream(p, &f, &err);

		if (s == NULL)
			fail_msg("case %zu refused: %s", i, err.msg);
		tnr_stream_free(s);
		dp_pipeline_unref(p);
	}
	/* Known at compile time already: the type flow checks it before any stream exists. */
	{
		const char *nodes[] = {"resample rate=7000", "resample rate=384000"};

		assert_null(tnr_compile(&err, 2, nodes));
		assert_non_null(strstr(err.msg, "node 1 (resample): 7000 Hz -> 384000 Hz"));
	}
}

static void
test_channels(void **state)
{
	struct dp_pipeline *down = compile1("channels count=1"), *up = compile1("channels count=2");
	struct dp_format st16 = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 2, .rate = 8000};
	struct dp_format m32 = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 1, .rate = 8000};
	struct dp_format f6 = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 6, .rate = 8000};
	const int16_t lr[] = {100, 300, -32768, -32768, 32767, 32767, -3, 0, 7, -8, 32767, -32768};
	int16_t mono[6];
	const float m[] = {0.5f, -1.0f, 0.125f};
	float st[6];
	size_t n = 0;
	struct dp_result res;
	struct dp_format of;
	struct dp_err err = {0};
	const char *bad = "channels count=3";

	(void)state;
	assert_int_equal(tnr_run(down, NULL, DP_RUN_FRAME, st16, lr, sizeof(lr), &res, mono,
				 sizeof(mono), &n, &of),
			 DP_OK);
	assert_int_equal(n, sizeof(mono));
	assert_int_equal(of.channels, 1);
	for (int i = 0; i < 6; i++)
		assert_int_equal(mono[i], (int16_t)(((int32_t)lr[2 * i] + lr[2 * i + 1]) / 2));
	n = 0;
	assert_int_equal(
	    tnr_run(up, NULL, DP_RUN_FRAME, m32, m, sizeof(m), &res, st, sizeof(st), &n, &of),
	    DP_OK);
	assert_int_equal(n, sizeof(st));
	assert_int_equal(of.channels, 2);
	for (int i = 0; i < 3; i++) {
		assert_true(st[2 * i] == m[i]);
		assert_true(st[2 * i + 1] == m[i]);
	}
	n = 0;
	assert_int_equal(tnr_run(down, NULL, DP_RUN_FRAME, f6, lr, sizeof(lr), &res, mono,
				 sizeof(mono), &n, &of),
			 DP_INVALID_ARGUMENT);
	assert_non_null(strstr(res.err.msg, "6 channels"));
	assert_null(tnr_compile(&err, 1, &bad));
	dp_pipeline_unref(down);
	dp_pipeline_unref(up);
}

static void
meter_of(const struct dp_pipeline *p, struct dp_format f, const void *d, uint32_t len, char *rms,
	 char *peak)
{
	struct dp_result res;
	size_t n = 0;

	assert_int_equal(tnr_run(p, NULL, DP_RUN_FRAME, f, d, len, &res, NULL, 0, &n, NULL), DP_OK);
	assert_non_null(tnr_annot(&res, "meter.rms_dbfs"));
	strcpy(rms, tnr_annot(&res, "meter.rms_dbfs"));
	strcpy(peak, tnr_annot(&res, "meter.peak_dbfs"));
}

static void
test_meter_known_signals(void **state)
{
	struct dp_pipeline *p = compile1("meter");
	struct dp_format s16 = S16_48K;
	int16_t sq[480], sil[480] = {0};
	float *sn = sine(4800, 1000, 48000, 0.5);
	char rms[32], peak[32], want[32];

	(void)state;
	/* Full scale (-32768 throughout): 0 dBFS both. */
	for (int i = 0; i < 480; i++)
		sq[i] = -32768;
	meter_of(p, s16, sq, sizeof(sq), rms, peak);
	assert_string_equal(rms, "0.00");
	assert_string_equal(peak, "0.00");
	/* Half-scale square wave (+-16384): -6.02 dBFS both. */
	for (int i = 0; i < 480; i++)
		sq[i] = (i / 24) % 2 ? 16384 : -16384;
	meter_of(p, s16, sq, sizeof(sq), rms, peak);
	snprintf(want, sizeof(want), "%.2f", 20 * log10(0.5));
	assert_string_equal(rms, want);
	assert_string_equal(peak, want);
	/* Half-scale sine over whole periods: RMS 0.5/sqrt(2), peak 0.5. */
	meter_of(p, F32_48K, sn, 4800 * 4, rms, peak);
	snprintf(want, sizeof(want), "%.2f", 20 * log10(0.5 / sqrt(2)));
	assert_string_equal(rms, want);
	snprintf(want, sizeof(want), "%.2f", 20 * log10(0.5));
	assert_string_equal(peak, want);
	/* Silence and empty: -inf. */
	meter_of(p, s16, sil, sizeof(sil), rms, peak);
	assert_string_equal(rms, "-inf");
	assert_string_equal(peak, "-inf");
	meter_of(p, s16, sil, 0, rms, peak);
	assert_string_equal(rms, "-inf");
	free(sn);
	dp_pipeline_unref(p);
}

/* ---- vad ---------------------------------------------------------------------------------- */

/* Fill n samples of white noise at RMS level db (dBFS), deterministic LCG. */
static void
noise(float *x, size_t n, double db, uint32_t *seed)
{
	double a = pow(10, db / 20) * sqrt(3.0); /* uniform [-a, a] has RMS a/sqrt(3) */

	for (size_t i = 0; i < n; i++) {
		*seed = *seed * 1664525u + 1013904223u;
		x[i] += (float)(a * ((*seed >> 8) / 8388608.0 - 1.0));
	}
}

/* Run vad over x in 10 ms frames at 16 kHz; speech[i] = decision of frame i. */
static void
vad_frames(const char *node, const float *x, size_t frames, bool *speech, bool *gated_empty)
{
	struct dp_format f = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 1, .rate = 16000};
	struct dp_pipeline *p = compile1(node);
	struct dp_err err;
	struct dp_stream *s = tnr_stream(p, &f, &err);
	static float out[160];

	assert_non_null(s);
	for (size_t i = 0; i < frames; i++) {
		struct dp_result res;
		size_t n = 0;
		const char *v;

		assert_int_equal(tnr_run(p, s, DP_RUN_FRAME, f, x + 160 * i, 640, &res, out,
					 sizeof(out), &n, NULL),
				 DP_OK);
		v = tnr_annot(&res, "vad.speech");
		assert_non_null(v);
		speech[i] = strcmp(v, "true") == 0;
		if (gated_empty)
			gated_empty[i] = n == 0;
	}
	tnr_stream_free(s);
	dp_pipeline_unref(p);
}

static void
test_vad_silence_noise_and_tone_bursts(void **state)
{
	const size_t frames = 600; /* 6 s */
	float *x = calloc(frames * 160, sizeof(float));
	bool *sp = calloc(frames, 1), *empty = calloc(frames, 1);
	uint32_t seed = 1;
	size_t fp = 0, hit = 0, on = 0;

	(void)state;
	/* Digital silence: never speech. */
	vad_frames("vad", x, 100, sp, NULL);
	for (size_t i = 0; i < 100; i++)
		assert_false(sp[i]);
	/* Steady white noise at -30 dBFS (above the -45 threshold): the floor tracks it, so no
	 * frame is speech. */
	noise(x, frames * 160, -30, &seed);
	vad_frames("vad", x, frames, sp, NULL);
	for (size_t i = 0; i < frames; i++)
		fp += sp[i];
	/* The first frame has no floor yet and -30 dBFS is over threshold + 9 dB: that frame
	 * alone is speech (it starts no hangover). */
	assert_true(sp[0]);
	assert_int_equal(fp, 1);
	/* "Syllables": 200 ms bursts of a 200 Hz harmonic tone 25 dB over the noise, 300 ms
	 * apart, from 2 s to 5 s. Every burst frame is speech; frames more than the 200 ms
	 * hangover after a burst are not. */
	for (size_t b = 0; b < 6; b++) {
		size_t start = 200 + b * 50;

		for (size_t i = start * 160; i < (start + 20) * 160; i++)
			x[i] += (float)(0.3 * sin(2 * M_PI * 200 * i / 16000.0) +
					0.1 * sin(2 * M_PI * 600 * i / 16000.0));
	}
	vad_frames("vad mode=gate", x, frames, sp, empty);
	for (size_t b = 0; b < 6; b++)
		for (size_t i = 200 + b * 50; i < 220 + b * 50; i++, on++)
			hit += sp[i];
	assert_int_equal(hit, on);
	for (size_t i = 1; i < 200; i++) /* frame 0: no floor yet, see above */
		assert_false(sp[i]);
	for (size_t i = 200 + 5 * 50 + 20 + 21; i < frames; i++)
		assert_false(sp[i]);
	for (size_t i = 0; i < frames; i++)
		assert_int_equal(empty[i], !sp[i]);
	free(x);
	free(sp);
	free(empty);
}

/* The synthetic test signal: 6 s of -30 dBFS noise with six 200 ms "syllables" (above). */
static float *
vad_signal(size_t frames)
{
	float *x = calloc(frames * 160, sizeof(float));
	uint32_t seed = 3;

	noise(x, frames * 160, -30, &seed);
	for (size_t b = 0; b < 6; b++)
		for (size_t i = (200 + b * 50) * 160; i < (220 + b * 50) * 160; i++)
			x[i] += (float)(0.3 * sin(2 * M_PI * 200 * i / 16000.0) +
					0.1 * sin(2 * M_PI * 600 * i / 16000.0));
	return x;
}

/* Summary of decisions sp[0..n): what a unary call over those frames must annotate. */
static void
vad_summary(const bool *sp, size_t n, char *ratio, char *span, char *segs)
{
	size_t k = 0, first = 0, last = 0, runs = 0;

	for (size_t i = 0; i < n; i++) {
		if (!sp[i])
			continue;
		if (k++ == 0)
			first = i;
		last = i;
		runs += i == 0 || !sp[i - 1];
	}
	sprintf(ratio, "%.4f", (double)k / (double)n);
	if (k)
		sprintf(span, "%zu-%zu", first, last);
	else
		strcpy(span, "none");
	sprintf(segs, "%zu", runs);
}

/* A unary call over a whole signal decides every 10 ms frame as streaming it does: its
 * summary equals the one computed from the streamed decisions, and gating keeps exactly the
 * streamed speech frames; streaming in random 10 ms multiples gives the same gated output. */
static void
test_vad_unary_equals_streamed(void **state)
{
	const size_t frames = 600;
	struct dp_format f = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 1, .rate = 16000};
	float *x = vad_signal(frames);
	bool *sp = calloc(frames, 1);
	float *gated = calloc(frames * 160, sizeof(float)), *one = calloc(frames * 160, 4);
	float *rnd = calloc(frames * 160, 4);
	size_t n_gated = 0, n_one = 0, n_rnd = 0, n_sp = 0;
	char ratio[32], span[48], segs[32], v[32];
	struct dp_pipeline *p = compile1("vad mode=gate");
	struct dp_result res;
	struct dp_stream *s;
	struct dp_err err;
	uint32_t seed = 11;

	(void)state;
	vad_frames("vad", x, frames, sp, NULL);
	for (size_t i = 0; i < frames; i++) {
		n_sp += sp[i];
		if (sp[i]) {
			memcpy(gated + n_gated, x + 160 * i, 640);
			n_gated += 160;
		}
	}
	assert_true(n_sp > 120 && n_sp < frames / 2);
	vad_summary(sp, frames, ratio, span, segs);

	/* Unary: one buffer, DP_RUN_FLUSH, as a worker runs Execute. */
	s = tnr_stream(p, &f, &err);
	assert_non_null(s);
	assert_int_equal(
	    tnr_run(p, s, DP_RUN_FLUSH, f, x, frames * 640, &res, one, frames * 640, &n_one, NULL),
	    DP_OK);
	tnr_stream_free(s);
	assert_string_equal(tnr_annot(&res, "vad.speech"), "true");
	snprintf(v, sizeof(v), "%zu", frames);
	assert_string_equal(tnr_annot(&res, "vad.frames"), v);
	assert_string_equal(tnr_annot(&res, "vad.speech_ratio"), ratio);
	assert_string_equal(tnr_annot(&res, "vad.speech_span"), span);
	assert_string_equal(tnr_annot(&res, "vad.segments"), segs);
	assert_int_equal(n_one, n_gated * 4);
	assert_memory_equal(one, gated, n_one);

	/* Streamed in random multiples of 10 ms (1..37 frames): the same gated samples. */
	s = tnr_stream(p, &f, &err);
	assert_non_null(s);
	for (size_t at = 0; at < frames;) {
		size_t k;

		seed = seed * 1664525u + 1013904223u;
		k = 1 + (seed >> 8) % 37;
		if (k > frames - at)
			k = frames - at;
		assert_int_equal(tnr_run(p, s, DP_RUN_FRAME, f, x + 160 * at, (uint32_t)k * 640,
					 &res, rnd, frames * 640, &n_rnd, NULL),
				 DP_OK);
		at += k;
	}
	tnr_stream_free(s);
	assert_int_equal(n_rnd, n_one);
	assert_memory_equal(rnd, one, n_one);
	dp_pipeline_unref(p);
	free(x);
	free(sp);
	free(gated);
	free(one);
	free(rnd);
}

/* A lone 10 ms frame of a loud tone is speech (it used to be its own noise floor), a lone
 * quiet frame is not, and a buffer shorter than 10 ms decides nothing. */
static void
test_vad_single_frame(void **state)
{
	struct dp_format f = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 16000};
	struct dp_pipeline *p = compile1("vad");
	int16_t fr[160];
	struct dp_result res;
	struct dp_stream *s;
	struct dp_err err;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < 160; i++)
		fr[i] = (int16_t)(8000 * sin(2 * M_PI * 200 * i / 16000.0)); /* about -15 dBFS */
	s = tnr_stream(p, &f, &err);
	assert_int_equal(tnr_run(p, s, DP_RUN_FLUSH, f, fr, 320, &res, NULL, 0, &n, NULL), DP_OK);
	assert_string_equal(tnr_annot(&res, "vad.speech"), "true");
	assert_null(tnr_annot(&res, "vad.frames")); /* one frame: no summary */
	tnr_stream_free(s);
	for (size_t i = 0; i < 160; i++)
		fr[i] = (int16_t)(fr[i] / 300); /* about -65 dBFS, under the threshold */
	s = tnr_stream(p, &f, &err);
	assert_int_equal(tnr_run(p, s, DP_RUN_FLUSH, f, fr, 320, &res, NULL, 0, &n, NULL), DP_OK);
	assert_string_equal(tnr_annot(&res, "vad.speech"), "false");
	tnr_stream_free(s);
	s = tnr_stream(p, &f, &err);
	assert_int_equal(tnr_run(p, s, DP_RUN_FLUSH, f, fr, 100, &res, NULL, 0, &n, NULL), DP_OK);
	assert_string_equal(tnr_annot(&res, "vad.speech"), "false");
	tnr_stream_free(s);
	dp_pipeline_unref(p);
}

static void
test_vad_formats_checked(void **state)
{
	struct dp_pipeline *p = compile1("vad");
	struct dp_format f = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 44100};
	struct dp_err err = {0};
	const char *bad[] = {"vad mode=loud", "vad threshold_db=3", "vad hangover_ms=-1"};

	(void)state;
	assert_null(tnr_stream(p, &f, &err));
	assert_non_null(strstr(err.msg, "44100"));
	f.rate = 16000;
	f.channels = 2;
	assert_null(tnr_stream(p, &f, &err));
	assert_non_null(strstr(err.msg, "mono"));
	for (size_t i = 0; i < 3; i++)
		assert_null(tnr_compile(&err, 1, &bad[i]));
	dp_pipeline_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resample_sine_48k_to_16k_streamed_equals_oneshot),
	    cmocka_unit_test(test_resample_s16_and_up),
	    cmocka_unit_test(test_resample_params_and_same_rate),
	    cmocka_unit_test(test_resample_reset_restarts_signal),
	    cmocka_unit_test(test_resample_bounds_checked_before_soxr),
	    cmocka_unit_test(test_channels),
	    cmocka_unit_test(test_meter_known_signals),
	    cmocka_unit_test(test_vad_silence_noise_and_tone_bursts),
	    cmocka_unit_test(test_vad_unary_equals_streamed),
	    cmocka_unit_test(test_vad_single_frame),
	    cmocka_unit_test(test_vad_formats_checked),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}

/*
 * corepipectl's WAV reader and writer: headers written for s16 and f32 parse back to the same
 * format, rate, channels and length; extensible headers, odd chunks, truncated data and
 * unsupported encodings are handled as documented.
 */
#include "client/ctl/wav.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <string.h>

static void
test_wav_header_round_trip_s16_and_f32(void **state)
{
	uint8_t buf[CTL_WAV_HEADER_MAX + 64];
	struct ctl_wav w;
	char err[128];
	size_t h;

	(void)state;
	for (int f = CTL_WAV_S16; f <= CTL_WAV_F32; f++) {
		memset(buf, 0, sizeof(buf));
		h = ctl_wav_header(buf, (enum ctl_wav_fmt)f, 16000, 2, 64);
		assert_int_equal(h, f == CTL_WAV_S16 ? 44 : 58);
		for (size_t i = 0; i < 64; i++)
			buf[h + i] = (uint8_t)i;
		assert_true(ctl_wav_detect(buf, h + 64));
		assert_int_equal(ctl_wav_parse(buf, h + 64, &w, err, sizeof(err)), 0);
		assert_int_equal(w.fmt, f);
		assert_int_equal(w.rate, 16000);
		assert_int_equal(w.channels, 2);
		assert_int_equal(w.len, 64);
		assert_ptr_equal(w.data, buf + h);
		assert_int_equal(ctl_wav_frame_bytes(&w), f == CTL_WAV_S16 ? 4 : 8);
	}
}

static void
test_wav_unknown_length_is_read_to_the_end(void **state)
{
	uint8_t buf[44 + 10];
	struct ctl_wav w;
	char err[128];

	(void)state;
	ctl_wav_header(buf, CTL_WAV_S16, 8000, 1, SIZE_MAX); /* a stream's header */
	assert_int_equal(ctl_wav_parse(buf, sizeof(buf), &w, err, sizeof(err)), 0);
	assert_int_equal(w.len, 10); /* what is there */
	/* A partial trailing frame is dropped. */
	ctl_wav_header(buf, CTL_WAV_S16, 8000, 2, 10);
	assert_int_equal(ctl_wav_parse(buf, sizeof(buf), &w, err, sizeof(err)), 0);
	assert_int_equal(w.len, 8);
}

static void
test_wav_extensible_and_extra_chunks(void **state)
{
	uint8_t buf[128];
	struct ctl_wav w;
	char err[128];
	size_t o = 0;

	(void)state;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "RIFF", 4);
	memcpy(buf + 8, "WAVE", 4);
	o = 12;
	memcpy(buf + o, "LIST", 4); /* an odd-sized chunk first: padded to even */
	buf[o + 4] = 3;
	o += 8 + 4;
	memcpy(buf + o, "fmt ", 4);
	buf[o + 4] = 40;
	buf[o + 8] = 0xFE; /* WAVE_FORMAT_EXTENSIBLE */
	buf[o + 9] = 0xFF;
	buf[o + 10] = 1;    /* mono */
	buf[o + 12] = 0x80; /* 48000 = 0xBB80 */
	buf[o + 13] = 0xBB;
	buf[o + 22] = 32;    /* bits */
	buf[o + 8 + 24] = 3; /* sub-format: IEEE float */
	o += 8 + 40;
	memcpy(buf + o, "data", 4);
	buf[o + 4] = 8;
	o += 8 + 8;
	assert_int_equal(ctl_wav_parse(buf, o, &w, err, sizeof(err)), 0);
	assert_int_equal(w.fmt, CTL_WAV_F32);
	assert_int_equal(w.rate, 48000);
	assert_int_equal(w.len, 8);
}

static void
test_wav_refuses_what_corepipe_cannot_take(void **state)
{
	uint8_t buf[64];
	struct ctl_wav w;
	char err[160];

	(void)state;
	assert_false(ctl_wav_detect((const uint8_t *)"hello world!", 12));
	assert_int_equal(ctl_wav_parse((const uint8_t *)"hello world!", 12, &w, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "not a WAV"));
	/* 8-bit PCM */
	ctl_wav_header(buf, CTL_WAV_S16, 8000, 1, 4);
	buf[34] = 8;
	assert_int_equal(ctl_wav_parse(buf, 48, &w, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "16-bit PCM or 32-bit float"));
	/* Zero channels */
	ctl_wav_header(buf, CTL_WAV_S16, 8000, 0, 4);
	assert_int_equal(ctl_wav_parse(buf, 48, &w, err, sizeof(err)), -EINVAL);
	/* No data chunk */
	ctl_wav_header(buf, CTL_WAV_S16, 8000, 1, 0);
	assert_int_equal(ctl_wav_parse(buf, 36, &w, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "without a data chunk"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wav_header_round_trip_s16_and_f32),
	    cmocka_unit_test(test_wav_unknown_length_is_read_to_the_end),
	    cmocka_unit_test(test_wav_extensible_and_extra_chunks),
	    cmocka_unit_test(test_wav_refuses_what_corepipe_cannot_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

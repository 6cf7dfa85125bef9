/*
 * UDP wire protocol v1 (dataplane/wire.h): request and response parsing against bytes written
 * by hand from the layout tables in wire.h, every truncation, drops and rejects, hostile
 * length fields, builder round trips and the annotation iterator's bounds.
 */
#include "dataplane/wire.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <string.h>

/* ==== Hand-written datagrams (from the tables in wire.h) =================================== */

/* pipeline 7, request_id 0x0102030405060708, deadline 1000 us, payload "abc". */
static const uint8_t REQ_BYTES[] = {
    0x43, 0x50, 0x01, 0x00,			    /* magic, version 1, flags 0 */
    0x07, 0x00, 0x00, 0x00,			    /* pipeline_id 7 */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* request_id */
    0xe8, 0x03, 0x00, 0x00,			    /* deadline_us 1000 */
    0x00, 0x00,					    /* reserved */
    'a',  'b',	'c',				    /* payload */
};

/* pipeline 2, request_id 5, no deadline, s16le 2 channels 16000 Hz, two frames. */
static const uint8_t REQ_AUDIO[] = {
    0x43, 0x50, 0x01, 0x02,			    /* magic, version 1, flags AUDIO */
    0x02, 0x00, 0x00, 0x00,			    /* pipeline_id 2 */
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* request_id 5 */
    0x00, 0x00, 0x00, 0x00,			    /* deadline_us 0 */
    0x00, 0x00,					    /* reserved */
    0x01, 0x00, 0x02, 0x00,			    /* s16le, reserved, channels 2 */
    0x80, 0x3e, 0x00, 0x00,			    /* rate 16000 */
    0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x04, 0x00, /* 2 frames x 2 ch x s16 */
};

/* OK, one annotation crc32c=e3069283, hint 0, request_id 0x0102030405060708, output "abc". */
static const uint8_t RESP_BYTES[] = {
    0x43, 0x50, 0x01, 0x01,			    /* magic, version 1, flags RESPONSE */
    0x00, 0x01,					    /* status OK, n_annot 1 */
    0x00, 0x00, 0x00, 0x00,			    /* hint */
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* request_id */
    0x03, 0x00, 0x00, 0x00,			    /* output_len 3 */
    'a',  'b',	'c',				    /* output */
    0x06, 0x08, 'c',  'r',  'c',  '3',	'2',  'c',  /* key_len 6, val_len 8, key */
    'e',  '3',	'0',  '6',  '9',  '2',	'8',  '3',  /* value */
};

/* OK audio: f32le 1 channel 48000 Hz, one frame, no annotations, request_id 9. */
static const uint8_t RESP_AUDIO[] = {
    0x43, 0x50, 0x01, 0x03,			    /* flags RESPONSE | AUDIO */
    0x00, 0x00,					    /* status OK, n_annot 0 */
    0x00, 0x00, 0x00, 0x00,			    /* hint */
    0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* request_id 9 */
    0x04, 0x00, 0x00, 0x00,			    /* output_len 4 */
    0x02, 0x00, 0x01, 0x00,			    /* f32le, reserved, channels 1 */
    0x80, 0xbb, 0x00, 0x00,			    /* rate 48000 */
    0x00, 0x00, 0x80, 0x3f,			    /* 1.0f */
};

/* A scratch copy to mutate; large enough for every test datagram. */
static uint8_t buf[512];

static size_t
copy_of(const uint8_t *src, size_t len)
{
	assert_true(len <= sizeof(buf));
	memcpy(buf, src, len);
	return len;
}

static enum dp_wire_verdict
parse_req(const uint8_t *p, size_t len, struct dp_wire_req *r, enum dp_wire_drop *d,
	  const char **why)
{
	memset(r, 0xa5, sizeof(*r)); /* the parser must not leave stale fields behind */
	*d = DP_WIRE_DROP_MAX;
	*why = NULL;
	return dp_wire_req_parse(p, len, r, d, why);
}

/* ==== Request parsing ====================================================================== */

static void
test_req_parse_bytes_request(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;

	(void)state;
	assert_int_equal(parse_req(REQ_BYTES, sizeof(REQ_BYTES), &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(d, DP_WIRE_DROP_NONE);
	assert_null(why);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.pipeline_id, 7);
	assert_true(r.request_id == 0x0102030405060708ull);
	assert_int_equal(r.deadline_us, 1000);
	assert_int_equal(r.kind, DP_WIRE_KIND_BYTES);
	assert_int_equal(r.fmt, 0);
	assert_int_equal(r.channels, 0);
	assert_int_equal(r.rate, 0);
	assert_int_equal(r.payload_off, 22);
	assert_int_equal(r.payload_len, 3);
	assert_memory_equal(REQ_BYTES + r.payload_off, "abc", 3);
}

static void
test_req_parse_audio_request(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;

	(void)state;
	assert_int_equal(parse_req(REQ_AUDIO, sizeof(REQ_AUDIO), &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.flags, DP_WIRE_F_AUDIO);
	assert_int_equal(r.pipeline_id, 2);
	assert_true(r.request_id == 5);
	assert_int_equal(r.deadline_us, 0);
	assert_int_equal(r.kind, DP_WIRE_KIND_AUDIO);
	assert_int_equal(r.fmt, 1);
	assert_int_equal(r.channels, 2);
	assert_int_equal(r.rate, 16000);
	assert_int_equal(r.payload_off, 30);
	assert_int_equal(r.payload_len, 8);
}

static void
test_req_parse_empty_payloads_are_valid(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;

	(void)state;
	assert_int_equal(parse_req(REQ_BYTES, 22, &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.payload_len, 0);
	assert_int_equal(parse_req(REQ_AUDIO, 30, &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.payload_off, 30);
	assert_int_equal(r.payload_len, 0);
}

static void
test_req_parse_every_truncation_of_bytes_request(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;

	(void)state;
	for (size_t len = 0; len <= sizeof(REQ_BYTES); len++) {
		/* A copy of exactly len bytes: ASan sees any read past it. */
		uint8_t *p = test_malloc(len ? len : 1);
		enum dp_wire_verdict v;

		memcpy(p, REQ_BYTES, len);
		v = parse_req(p, len, &r, &d, &why);
		if (len < 22) {
			assert_int_equal(v, DP_WIRE_DROP);
			assert_int_equal(d, DP_WIRE_DROP_SHORT);
			assert_non_null(why);
		} else {
			assert_int_equal(v, DP_WIRE_OK);
			assert_int_equal(r.payload_off, 22);
			assert_int_equal(r.payload_len, len - 22);
		}
		test_free(p);
	}
}

static void
test_req_parse_every_truncation_of_audio_request(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;

	(void)state;
	for (size_t len = 0; len <= sizeof(REQ_AUDIO); len++) {
		uint8_t *p = test_malloc(len ? len : 1);
		enum dp_wire_verdict v;

		memcpy(p, REQ_AUDIO, len);
		v = parse_req(p, len, &r, &d, &why);
		if (len < 22) {
			assert_int_equal(v, DP_WIRE_DROP);
			assert_int_equal(d, DP_WIRE_DROP_SHORT);
		} else if (len < 30) {
			assert_int_equal(v, DP_WIRE_REJECT);
			assert_string_equal(why, "audio header truncated");
			assert_true(r.request_id == 5);
			assert_int_equal(r.flags, DP_WIRE_F_AUDIO);
			assert_int_equal(r.payload_off, 0);
		} else if ((len - 30) % 4 != 0) {
			/* 2 channels x 2 bytes: a frame is 4 bytes */
			assert_int_equal(v, DP_WIRE_REJECT);
			assert_string_equal(why, "payload is not a whole number of frames");
		} else {
			assert_int_equal(v, DP_WIRE_OK);
			assert_int_equal(r.payload_len, len - 30);
		}
		test_free(p);
	}
}

static void
test_req_parse_wrong_magic_drops(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;
	size_t len;

	(void)state;
	len = copy_of(REQ_BYTES, sizeof(REQ_BYTES));
	buf[0] = 'c';
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_DROP);
	assert_int_equal(d, DP_WIRE_DROP_MAGIC);
	assert_non_null(why);
	len = copy_of(REQ_BYTES, sizeof(REQ_BYTES));
	buf[1] = 0x51;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_DROP);
	assert_int_equal(d, DP_WIRE_DROP_MAGIC);
	/* byte-swapped magic "PC" */
	len = copy_of(REQ_BYTES, sizeof(REQ_BYTES));
	buf[0] = 0x50;
	buf[1] = 0x43;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_DROP);
	assert_int_equal(d, DP_WIRE_DROP_MAGIC);
}

static void
test_req_parse_response_bit_drops(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;
	size_t len;

	(void)state;
	len = copy_of(REQ_BYTES, sizeof(REQ_BYTES));
	buf[3] = DP_WIRE_F_RESPONSE;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_DROP);
	assert_int_equal(d, DP_WIRE_DROP_RESPONSE);
	/* even together with bits that would otherwise be rejected */
	buf[3] = 0xff;
	buf[2] = 9;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_DROP);
	assert_int_equal(d, DP_WIRE_DROP_RESPONSE);
	/* a real response datagram fed to the request parser */
	assert_int_equal(parse_req(RESP_BYTES, sizeof(RESP_BYTES), &r, &d, &why), DP_WIRE_DROP);
	assert_int_equal(d, DP_WIRE_DROP_RESPONSE);
}

static void
test_req_parse_null_out_params_are_allowed(void **state)
{
	(void)state;
	assert_int_equal(dp_wire_req_parse(REQ_BYTES, sizeof(REQ_BYTES), NULL, NULL, NULL),
			 DP_WIRE_OK);
	assert_int_equal(dp_wire_req_parse(REQ_BYTES, 3, NULL, NULL, NULL), DP_WIRE_DROP);
	assert_int_equal(dp_wire_req_parse(NULL, 0, NULL, NULL, NULL), DP_WIRE_DROP);
}

/* One mutation of a valid request and the rejection message it must produce. */
struct reject_case {
	const uint8_t *base;
	size_t len;
	size_t off;
	uint8_t val;
	const char *why;
};

static void
test_req_parse_every_reject_case(void **state)
{
	static const struct reject_case cases[] = {
	    {REQ_BYTES, sizeof(REQ_BYTES), 2, 0, "unsupported version"},
	    {REQ_BYTES, sizeof(REQ_BYTES), 2, 2, "unsupported version"},
	    {REQ_BYTES, sizeof(REQ_BYTES), 3, 0x80, "unknown flags"},
	    {REQ_BYTES, sizeof(REQ_BYTES), 3, 0x04, "unknown flags"},
	    {REQ_BYTES, sizeof(REQ_BYTES), 20, 1, "reserved field is not 0"},
	    {REQ_BYTES, sizeof(REQ_BYTES), 21, 0x80, "reserved field is not 0"},
	    {REQ_BYTES, sizeof(REQ_BYTES), 4, 0, "pipeline id 0"},
	    {REQ_AUDIO, sizeof(REQ_AUDIO), 23, 1, "audio reserved byte is not 0"},
	    {REQ_AUDIO, sizeof(REQ_AUDIO), 22, 0, "unknown sample format"},
	    {REQ_AUDIO, sizeof(REQ_AUDIO), 22, 3, "unknown sample format"},
	    {REQ_AUDIO, sizeof(REQ_AUDIO), 22, 7, "unknown sample format"},
	    {REQ_AUDIO, sizeof(REQ_AUDIO), 24, 0, "audio channels 0"}, /* channels 0x0000 */
	    {REQ_AUDIO, sizeof(REQ_AUDIO), 27, 0, "audio rate 0"},     /* rate 0x00000000 */
	    /* f32le x 2 channels = 8-byte frames; the 8-byte payload is one frame: OK, so cut it */
	    {REQ_AUDIO, sizeof(REQ_AUDIO) - 1, 22, 2, "payload is not a whole number of frames"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct reject_case *c = &cases[i];
		struct dp_wire_req r;
		enum dp_wire_drop d;
		const char *why;
		size_t len = copy_of(c->base, c->len);

		buf[c->off] = c->val;
		if (c->off == 24)
			buf[25] = 0; /* channels: both bytes */
		if (c->off == 27) {
			buf[26] = 0; /* rate: all four bytes (26..29) */
			buf[28] = 0;
			buf[29] = 0;
		}
		if (c->off == 4)
			buf[5] = buf[6] = buf[7] = 0;
		print_message("case %zu: %s\n", i, c->why);
		assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_REJECT);
		assert_string_equal(why, c->why);
		/* the response needs these: */
		assert_true(r.request_id == (c->base == REQ_BYTES ? 0x0102030405060708ull : 5));
		assert_int_equal(r.flags, buf[3]);
		assert_int_equal(d, DP_WIRE_DROP_NONE);
		/* only a valid request has a payload */
		assert_int_equal(r.payload_off, 0);
		assert_int_equal(r.payload_len, 0);
	}
}

static void
test_req_parse_frame_sizes_per_format(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;
	size_t len;

	(void)state;
	/* f32le, 1 channel: 4-byte frames; the 8-byte payload is two of them. */
	len = copy_of(REQ_AUDIO, sizeof(REQ_AUDIO));
	buf[22] = 2;
	buf[24] = 1;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.payload_len, 8);
	/* f32le, 3 channels: 12-byte frames; 8 bytes is not a whole frame. */
	buf[24] = 3;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_REJECT);
	/* s16le, 65535 channels: a 131070-byte frame; 8 bytes is not whole. */
	buf[22] = 1;
	buf[24] = 0xff;
	buf[25] = 0xff;
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_REJECT);
	assert_string_equal(why, "payload is not a whole number of frames");
	/* ...but an empty payload is zero frames of any size */
	assert_int_equal(parse_req(buf, 30, &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.channels, 65535);
	/* s16le, 1 channel, rate 0xffffffff: big values are the server's business, not the parser's
	 */
	buf[24] = 1;
	buf[25] = 0;
	memset(buf + 26, 0xff, 4);
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.rate, 0xffffffffu);
}

static void
test_req_parse_high_pipeline_and_deadline_values(void **state)
{
	struct dp_wire_req r;
	enum dp_wire_drop d;
	const char *why;
	size_t len;

	(void)state;
	len = copy_of(REQ_BYTES, sizeof(REQ_BYTES));
	memset(buf + 4, 0xff, 4);
	memset(buf + 8, 0xff, 8);
	memset(buf + 16, 0xff, 4);
	assert_int_equal(parse_req(buf, len, &r, &d, &why), DP_WIRE_OK);
	assert_int_equal(r.pipeline_id, 0xffffffffu);
	assert_true(r.request_id == UINT64_MAX);
	assert_int_equal(r.deadline_us, 0xffffffffu);
}

/* ==== Request building ===================================================================== */

static void
test_req_write_matches_hand_written_bytes(void **state)
{
	struct dp_wire_req r = {.pipeline_id = 7,
				.request_id = 0x0102030405060708ull,
				.deadline_us = 1000,
				.kind = DP_WIRE_KIND_BYTES,
				.version = 9,	    /* ignored */
				.payload_len = 77}; /* ignored */
	struct dp_wire_req a = {.pipeline_id = 2,
				.request_id = 5,
				.kind = DP_WIRE_KIND_AUDIO,
				.fmt = 1,
				.channels = 2,
				.rate = 16000};

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(dp_wire_req_write(buf, 22, &r), 22);
	assert_memory_equal(buf, REQ_BYTES, 22);
	assert_int_equal(buf[22], 0xee); /* nothing written past the header */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(dp_wire_req_write(buf, sizeof(buf), &a), 30);
	assert_memory_equal(buf, REQ_AUDIO, 30);
	assert_int_equal(buf[30], 0xee);
}

static void
test_req_write_refuses_small_room_and_bad_kind(void **state)
{
	struct dp_wire_req r = {.pipeline_id = 1, .kind = DP_WIRE_KIND_BYTES};

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(dp_wire_req_write(buf, 21, &r), 0);
	r.kind = DP_WIRE_KIND_AUDIO;
	assert_int_equal(dp_wire_req_write(buf, 29, &r), 0);
	r.kind = 0;
	assert_int_equal(dp_wire_req_write(buf, sizeof(buf), &r), 0);
	r.kind = 3;
	assert_int_equal(dp_wire_req_write(buf, sizeof(buf), &r), 0);
	assert_int_equal(dp_wire_req_write(NULL, 100, &r), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);
}

static void
test_req_write_then_parse_round_trips(void **state)
{
	static const uint8_t s[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	struct dp_wire_req in = {.pipeline_id = 4096,
				 .request_id = 0xfedcba9876543210ull,
				 .deadline_us = 250000,
				 .kind = DP_WIRE_KIND_AUDIO,
				 .fmt = 2,
				 .channels = 3,
				 .rate = 44100};
	struct dp_wire_req out;
	enum dp_wire_drop d;
	const char *why;
	size_t h;

	(void)state;
	h = dp_wire_req_write(buf, sizeof(buf), &in);
	assert_int_equal(h, 30);
	memcpy(buf + h, s, sizeof(s)); /* one f32le frame of 3 channels */
	assert_int_equal(parse_req(buf, h + sizeof(s), &out, &d, &why), DP_WIRE_OK);
	assert_int_equal(out.version, 1);
	assert_int_equal(out.flags, DP_WIRE_F_AUDIO);
	assert_int_equal(out.pipeline_id, in.pipeline_id);
	assert_true(out.request_id == in.request_id);
	assert_int_equal(out.deadline_us, in.deadline_us);
	assert_int_equal(out.kind, in.kind);
	assert_int_equal(out.fmt, in.fmt);
	assert_int_equal(out.channels, in.channels);
	assert_int_equal(out.rate, in.rate);
	assert_int_equal(out.payload_off, 30);
	assert_int_equal(out.payload_len, sizeof(s));
	assert_memory_equal(buf + out.payload_off, s, sizeof(s));

	/* bytes: the audio bit in flags is derived from the kind, so it is cleared */
	in.kind = DP_WIRE_KIND_BYTES;
	in.flags = DP_WIRE_F_AUDIO;
	h = dp_wire_req_write(buf, sizeof(buf), &in);
	assert_int_equal(h, 22);
	assert_int_equal(buf[3], 0);
	assert_int_equal(parse_req(buf, h, &out, &d, &why), DP_WIRE_OK);
	assert_int_equal(out.kind, DP_WIRE_KIND_BYTES);
	assert_int_equal(out.payload_len, 0);
}

/* ==== Response parsing ===================================================================== */

static int
parse_resp(const uint8_t *p, size_t len, struct dp_wire_resp *r, const uint8_t **out,
	   const uint8_t **annot, size_t *alen, const char **why)
{
	memset(r, 0xa5, sizeof(*r));
	*why = NULL;
	return dp_wire_resp_parse(p, len, r, out, annot, alen, why);
}

static void
test_resp_parse_bytes_response_with_annotation(void **state)
{
	struct dp_wire_resp r;
	const uint8_t *out, *annot;
	size_t alen;
	const char *why;

	(void)state;
	assert_int_equal(parse_resp(RESP_BYTES, sizeof(RESP_BYTES), &r, &out, &annot, &alen, &why),
			 0);
	assert_null(why);
	assert_int_equal(r.flags, DP_WIRE_F_RESPONSE);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.n_annot, 1);
	assert_int_equal(r.hint, 0);
	assert_true(r.request_id == 0x0102030405060708ull);
	assert_int_equal(r.output_len, 3);
	assert_int_equal(r.kind, DP_WIRE_KIND_BYTES);
	assert_ptr_equal(out, RESP_BYTES + 22);
	assert_ptr_equal(annot, RESP_BYTES + 25);
	assert_int_equal(alen, 16);
}

static void
test_resp_parse_audio_response(void **state)
{
	struct dp_wire_resp r;
	const uint8_t *out, *annot;
	size_t alen;
	const char *why;

	(void)state;
	assert_int_equal(parse_resp(RESP_AUDIO, sizeof(RESP_AUDIO), &r, &out, &annot, &alen, &why),
			 0);
	assert_int_equal(r.kind, DP_WIRE_KIND_AUDIO);
	assert_int_equal(r.fmt, 2);
	assert_int_equal(r.channels, 1);
	assert_int_equal(r.rate, 48000);
	assert_int_equal(r.output_len, 4);
	assert_true(r.request_id == 9);
	assert_ptr_equal(out, RESP_AUDIO + 30);
	assert_int_equal(alen, 0);
}

static void
test_resp_parse_every_truncation_fails(void **state)
{
	struct dp_wire_resp r;
	const uint8_t *out, *annot;
	size_t alen;
	const char *why;

	(void)state;
	for (size_t len = 0; len < sizeof(RESP_BYTES); len++) {
		uint8_t *p = test_malloc(len ? len : 1);

		memcpy(p, RESP_BYTES, len);
		assert_int_equal(parse_resp(p, len, &r, &out, &annot, &alen, &why), -EBADMSG);
		assert_non_null(why);
		assert_null(out);
		assert_null(annot);
		test_free(p);
	}
	for (size_t len = 0; len < sizeof(RESP_AUDIO); len++) {
		uint8_t *p = test_malloc(len ? len : 1);

		memcpy(p, RESP_AUDIO, len);
		assert_int_equal(parse_resp(p, len, &r, &out, &annot, &alen, &why), -EBADMSG);
		if (len >= 22 && len < 30)
			assert_string_equal(why, "audio header truncated");
		test_free(p);
	}
}

static void
test_resp_parse_rejects_bad_headers(void **state)
{
	struct dp_wire_resp r;
	const uint8_t *out, *annot;
	size_t alen, len;
	const char *why;

	(void)state;
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[1] = 0;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "bad magic");
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[2] = 2;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "unsupported version");
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[3] = 0;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "not a response");
	/* a request is not a response */
	assert_int_equal(parse_resp(REQ_BYTES, sizeof(REQ_BYTES), &r, &out, &annot, &alen, &why),
			 -EBADMSG);
	assert_string_equal(why, "not a response");
	/* trailing byte */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[len++] = 0;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "trailing bytes after the annotations");
	/* n_annot 0 with the annotation still there: trailing bytes */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[5] = 0;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "trailing bytes after the annotations");
}

static void
test_resp_parse_hostile_lengths(void **state)
{
	struct dp_wire_resp r;
	const uint8_t *out, *annot;
	size_t alen, len;
	const char *why;

	(void)state;
	/* output_len one past the end, and 0xffffffff */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[18] = 3 + 16 + 1;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "output runs past the end of the datagram");
	memset(buf + 18, 0xff, 4);
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "output runs past the end of the datagram");
	/* output_len covering everything: then the annotation is missing */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[18] = 3 + 16;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "annotations truncated");
	/* n_annot 255 with one entry */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[5] = 255;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "annotations truncated");
	/* key_len 255 over a 14-byte remainder */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[25] = 255;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "annotations truncated");
	/* val_len 255 */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[26] = 255;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	/* one byte short of the value */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[26] = 9;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "annotations truncated");
	/* a lone length byte at the end */
	len = copy_of(RESP_BYTES, sizeof(RESP_BYTES));
	buf[5] = 2;
	buf[len++] = 0;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), -EBADMSG);
	assert_string_equal(why, "annotations truncated");
	/* ...and with its second byte: an empty key and value is a valid entry */
	buf[len++] = 0;
	assert_int_equal(parse_resp(buf, len, &r, &out, &annot, &alen, &why), 0);
	assert_int_equal(alen, 18);
}

static void
test_resp_parse_null_out_params_are_allowed(void **state)
{
	(void)state;
	assert_int_equal(
	    dp_wire_resp_parse(RESP_BYTES, sizeof(RESP_BYTES), NULL, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(dp_wire_resp_parse(RESP_BYTES, 5, NULL, NULL, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(dp_wire_resp_parse(NULL, 0, NULL, NULL, NULL, NULL, NULL), -EBADMSG);
}

/* ==== Response building ==================================================================== */

static void
test_resp_write_matches_hand_written_bytes(void **state)
{
	struct dp_wire_resp r = {.status = 0,
				 .n_annot = 1,
				 .request_id = 0x0102030405060708ull,
				 .output_len = 3,
				 .kind = DP_WIRE_KIND_BYTES};
	struct dp_wire_resp a = {.request_id = 9,
				 .output_len = 4,
				 .kind = DP_WIRE_KIND_AUDIO,
				 .fmt = 2,
				 .channels = 1,
				 .rate = 48000};
	size_t n;

	(void)state;
	memset(buf, 0xee, sizeof(buf));
	n = dp_wire_resp_write(buf, sizeof(buf), &r);
	assert_int_equal(n, 22);
	memcpy(buf + n, "abc", 3);
	n += 3;
	assert_int_equal(dp_wire_annot_write(buf + n, sizeof(buf) - n, "crc32c", 6, "e3069283", 8),
			 16);
	n += 16;
	assert_int_equal(n, sizeof(RESP_BYTES));
	assert_memory_equal(buf, RESP_BYTES, n);
	assert_int_equal(buf[n], 0xee);

	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(dp_wire_resp_write(buf, 30, &a), 30);
	assert_memory_equal(buf, RESP_AUDIO, 30);
	assert_int_equal(buf[30], 0xee);
}

static void
test_resp_write_error_with_hint(void **state)
{
	/* RESOURCE_EXHAUSTED (8), retry after 250 ms, request_id 1, no output, no annotations */
	static const uint8_t want[] = {0x43, 0x50, 0x01, 0x01, 0x08, 0x00, 0xfa, 0x00,
				       0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
				       0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	/* kind 0 (error) with a stray audio flag: written as bytes, audio bit cleared */
	struct dp_wire_resp r = {
	    .flags = DP_WIRE_F_AUDIO, .status = 8, .hint = 250, .request_id = 1, .kind = 0};
	struct dp_wire_resp p;
	const char *why;

	(void)state;
	assert_int_equal(dp_wire_resp_write(buf, sizeof(buf), &r), 22);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(dp_wire_resp_parse(buf, 22, &p, NULL, NULL, NULL, &why), 0);
	assert_int_equal(p.status, 8);
	assert_int_equal(p.hint, 250);
}

static void
test_resp_write_refuses_small_room(void **state)
{
	struct dp_wire_resp r = {.kind = DP_WIRE_KIND_BYTES};

	(void)state;
	assert_int_equal(dp_wire_resp_write(buf, 21, &r), 0);
	r.kind = DP_WIRE_KIND_AUDIO;
	assert_int_equal(dp_wire_resp_write(buf, 29, &r), 0);
	assert_int_equal(dp_wire_resp_write(NULL, 30, &r), 0);
}

static void
test_resp_write_over_request_in_place(void **state)
{
	/* The server's passthrough: response header over the request header, output = payload. */
	static const uint8_t want[] = {0x43, 0x50, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
				       0x00, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
				       0x03, 0x00, 0x00, 0x00, 'a',  'b',  'c'};
	struct dp_wire_req q;
	struct dp_wire_resp r = {.kind = DP_WIRE_KIND_BYTES};
	size_t len = copy_of(REQ_BYTES, sizeof(REQ_BYTES));

	(void)state;
	assert_int_equal(dp_wire_req_parse(buf, len, &q, NULL, NULL), DP_WIRE_OK);
	r.request_id = q.request_id;
	r.output_len = q.payload_len;
	assert_int_equal(dp_wire_resp_write(buf, q.payload_off, &r), 22);
	assert_memory_equal(buf, want, sizeof(want));
}

static void
test_annot_write_bounds(void **state)
{
	char big[256];

	(void)state;
	memset(big, 'k', sizeof(big));
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(dp_wire_annot_write(buf, sizeof(buf), big, 256, "v", 1), 0);
	assert_int_equal(dp_wire_annot_write(buf, sizeof(buf), "k", 1, big, 256), 0);
	assert_int_equal(dp_wire_annot_write(buf, 4, "ab", 2, "c", 1), 0); /* needs 5 */
	assert_int_equal(dp_wire_annot_write(buf, 1, "", 0, "", 0), 0);
	assert_int_equal(dp_wire_annot_write(NULL, 100, "a", 1, "b", 1), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);
	assert_int_equal(dp_wire_annot_write(buf, 5, "ab", 2, "c", 1), 5);
	assert_memory_equal(buf,
			    "\x02\x01"
			    "abc",
			    5);
	assert_int_equal(dp_wire_annot_write(buf, 2, NULL, 0, NULL, 0), 2);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[1], 0);
	assert_int_equal(dp_wire_annot_write(buf, sizeof(buf), big, 255, big, 255), 512);
	assert_int_equal(buf[0], 255);
	assert_int_equal(buf[1], 255);
}

static void
test_resp_round_trip_with_annotations(void **state)
{
	struct dp_wire_resp in = {.status = 0,
				  .n_annot = 3,
				  .request_id = 77,
				  .output_len = 5,
				  .kind = DP_WIRE_KIND_BYTES};
	struct dp_wire_resp out;
	struct dp_wire_annot_it it;
	const uint8_t *o, *annot;
	const char *k, *v, *why;
	size_t alen, kl, vl, n;

	(void)state;
	n = dp_wire_resp_write(buf, sizeof(buf), &in);
	memcpy(buf + n, "hello", 5);
	n += 5;
	n += dp_wire_annot_write(buf + n, sizeof(buf) - n, "crc32c", 6, "e3069283", 8);
	n += dp_wire_annot_write(buf + n, sizeof(buf) - n, "empty", 5, "", 0);
	n += dp_wire_annot_write(buf + n, sizeof(buf) - n, "vad", 3, "speech", 6);
	assert_int_equal(n, 22 + 5 + 16 + 7 + 11);
	assert_int_equal(dp_wire_resp_parse(buf, n, &out, &o, &annot, &alen, &why), 0);
	assert_true(out.request_id == 77);
	assert_int_equal(out.n_annot, 3);
	assert_int_equal(out.output_len, 5);
	assert_memory_equal(o, "hello", 5);
	assert_int_equal(alen, 34);

	dp_wire_annot_begin(&it, annot, alen, out.n_annot);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 1);
	assert_int_equal(kl, 6);
	assert_memory_equal(k, "crc32c", 6);
	assert_int_equal(vl, 8);
	assert_memory_equal(v, "e3069283", 8);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 1);
	assert_memory_equal(k, "empty", 5);
	assert_int_equal(vl, 0);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 1);
	assert_memory_equal(k, "vad", 3);
	assert_memory_equal(v, "speech", 6);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 0);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 0);
}

/* ==== Annotation iterator bounds =========================================================== */

static void
test_annot_iterator_bounds(void **state)
{
	/* two entries: "a"="bc", ""="" */
	static const uint8_t blk[] = {0x01, 0x02, 'a', 'b', 'c', 0x00, 0x00};
	struct dp_wire_annot_it it;
	const char *k, *v;
	size_t kl, vl;

	(void)state;
	/* empty */
	dp_wire_annot_begin(&it, NULL, 0, 0);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 0);
	/* exact */
	dp_wire_annot_begin(&it, blk, sizeof(blk), 2);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 1);
	assert_int_equal(kl, 1);
	assert_int_equal(vl, 2);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 1);
	assert_int_equal(kl, 0);
	assert_int_equal(vl, 0);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 0);
	/* claims more entries than the block holds: the error repeats */
	dp_wire_annot_begin(&it, blk, sizeof(blk), 3);
	assert_int_equal(dp_wire_annot_next(&it, NULL, NULL, NULL, NULL), 1);
	assert_int_equal(dp_wire_annot_next(&it, NULL, NULL, NULL, NULL), 1);
	assert_int_equal(dp_wire_annot_next(&it, NULL, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(dp_wire_annot_next(&it, NULL, NULL, NULL, NULL), -EBADMSG);
	/* fewer entries than bytes: leftover bytes are malformed */
	dp_wire_annot_begin(&it, blk, sizeof(blk), 1);
	assert_int_equal(dp_wire_annot_next(&it, NULL, NULL, NULL, NULL), 1);
	assert_int_equal(dp_wire_annot_next(&it, NULL, NULL, NULL, NULL), -EBADMSG);
	/* every short block length */
	for (size_t len = 0; len < sizeof(blk); len++) {
		uint8_t *p = test_malloc(len ? len : 1);
		int rc1, rc2;

		memcpy(p, blk, len);
		dp_wire_annot_begin(&it, p, len, 2);
		rc1 = dp_wire_annot_next(&it, &k, &kl, &v, &vl);
		rc2 = rc1 == 1 ? dp_wire_annot_next(&it, &k, &kl, &v, &vl) : rc1;
		assert_int_equal(len < 5 ? rc1 : rc2, -EBADMSG);
		test_free(p);
	}
	/* key_len 255 in a 2-byte block, NULL block claiming entries */
	dp_wire_annot_begin(&it, (const uint8_t *)"\xff\x00", 2, 1);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), -EBADMSG);
	dp_wire_annot_begin(&it, NULL, 0, 1);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), -EBADMSG);
	/* the largest entry, exactly */
	memset(buf, 'x', sizeof(buf));
	buf[0] = 255;
	buf[1] = 255;
	dp_wire_annot_begin(&it, buf, 512, 1);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 1);
	assert_int_equal(kl, 255);
	assert_int_equal(vl, 255);
	assert_ptr_equal(v, (const char *)buf + 257);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), 0);
	dp_wire_annot_begin(&it, buf, 511, 1);
	assert_int_equal(dp_wire_annot_next(&it, &k, &kl, &v, &vl), -EBADMSG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_req_parse_bytes_request),
	    cmocka_unit_test(test_req_parse_audio_request),
	    cmocka_unit_test(test_req_parse_empty_payloads_are_valid),
	    cmocka_unit_test(test_req_parse_every_truncation_of_bytes_request),
	    cmocka_unit_test(test_req_parse_every_truncation_of_audio_request),
	    cmocka_unit_test(test_req_parse_wrong_magic_drops),
	    cmocka_unit_test(test_req_parse_response_bit_drops),
	    cmocka_unit_test(test_req_parse_null_out_params_are_allowed),
	    cmocka_unit_test(test_req_parse_every_reject_case),
	    cmocka_unit_test(test_req_parse_frame_sizes_per_format),
	    cmocka_unit_test(test_req_parse_high_pipeline_and_deadline_values),
	    cmocka_unit_test(test_req_write_matches_hand_written_bytes),
	    cmocka_unit_test(test_req_write_refuses_small_room_and_bad_kind),
	    cmocka_unit_test(test_req_write_then_parse_round_trips),
	    cmocka_unit_test(test_resp_parse_bytes_response_with_annotation),
	    cmocka_unit_test(test_resp_parse_audio_response),
	    cmocka_unit_test(test_resp_parse_every_truncation_fails),
	    cmocka_unit_test(test_resp_parse_rejects_bad_headers),
	    cmocka_unit_test(test_resp_parse_hostile_lengths),
	    cmocka_unit_test(test_resp_parse_null_out_params_are_allowed),
	    cmocka_unit_test(test_resp_write_matches_hand_written_bytes),
	    cmocka_unit_test(test_resp_write_error_with_hint),
	    cmocka_unit_test(test_resp_write_refuses_small_room),
	    cmocka_unit_test(test_resp_write_over_request_in_place),
	    cmocka_unit_test(test_annot_write_bounds),
	    cmocka_unit_test(test_resp_round_trip_with_annotations),
	    cmocka_unit_test(test_annot_iterator_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

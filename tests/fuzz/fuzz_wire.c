/*
 * libFuzzer target: the UDP wire protocol v1 parsers (dataplane/wire.h) on arbitrary bytes.
 * The same input is parsed as a request and as a response; the parsers' promises are checked
 * (every offset and length inside the datagram, annotations that walk exactly the block), and
 * what parsed is rebuilt with the writers and parsed again to the same fields.
 */
#include "dataplane/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static uint8_t scratch[65536 + 64];

static void
check_request(const uint8_t *data, size_t size)
{
	struct dp_wire_req r, r2;
	enum dp_wire_drop drop;
	const char *why;
	enum dp_wire_verdict v;
	size_t h;

	v = dp_wire_req_parse(data, size, &r, &drop, &why);
	switch (v) {
	case DP_WIRE_OK:
		CHECK(why == NULL && drop == DP_WIRE_DROP_NONE);
		CHECK(r.version == DP_WIRE_VERSION && r.pipeline_id != 0);
		CHECK((r.flags & ~DP_WIRE_F_KNOWN) == 0 && !(r.flags & DP_WIRE_F_RESPONSE));
		CHECK(r.payload_off == dp_wire_req_hdr_len(r.kind == DP_WIRE_KIND_AUDIO));
		CHECK((size_t)r.payload_off + r.payload_len == size);
		if (r.kind == DP_WIRE_KIND_AUDIO) {
			CHECK(r.fmt == 1 || r.fmt == 2);
			CHECK(r.channels > 0 && r.rate > 0);
			CHECK(r.payload_len % (r.channels * (r.fmt == 1 ? 2u : 4u)) == 0);
		} else {
			CHECK(r.kind == DP_WIRE_KIND_BYTES);
		}
		/* Rebuild the header: it must equal the input's header byte for byte. */
		if (size <= sizeof(scratch)) {
			h = dp_wire_req_write(scratch, sizeof(scratch), &r);
			CHECK(h == r.payload_off);
			CHECK(memcmp(scratch, data, h) == 0);
			memcpy(scratch + h, data + h, r.payload_len);
			CHECK(dp_wire_req_parse(scratch, size, &r2, NULL, NULL) == DP_WIRE_OK);
			CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
		}
		break;
	case DP_WIRE_DROP:
		CHECK(why != NULL);
		CHECK(drop > DP_WIRE_DROP_NONE && drop < DP_WIRE_DROP_MAX);
		CHECK((drop == DP_WIRE_DROP_SHORT) == (size < DP_WIRE_HDR_LEN));
		break;
	case DP_WIRE_REJECT:
		CHECK(why != NULL && drop == DP_WIRE_DROP_NONE);
		CHECK(size >= DP_WIRE_HDR_LEN);
		CHECK(r.flags == data[3] && !(r.flags & DP_WIRE_F_RESPONSE));
		CHECK(r.payload_off == 0 && r.payload_len == 0);
		break;
	default:
		abort();
	}
}

static void
check_response(const uint8_t *data, size_t size)
{
	struct dp_wire_resp r, r2;
	struct dp_wire_annot_it it;
	const uint8_t *out, *annot, *out2, *annot2;
	const char *why, *k, *v;
	size_t alen, alen2, kl, vl, walked = 0, h;
	unsigned n = 0;
	int rc;

	rc = dp_wire_resp_parse(data, size, &r, &out, &annot, &alen, &why);
	if (rc != 0) {
		CHECK(rc == -EBADMSG && why != NULL && out == NULL && annot == NULL);
		return;
	}
	CHECK(why == NULL && (r.flags & DP_WIRE_F_RESPONSE));
	h = dp_wire_resp_hdr_len(r.kind == DP_WIRE_KIND_AUDIO);
	CHECK(out == data + h);
	CHECK(h + r.output_len <= size);
	CHECK(annot == out + r.output_len);
	CHECK(annot + alen == data + size);

	dp_wire_annot_begin(&it, annot, alen, r.n_annot);
	while ((rc = dp_wire_annot_next(&it, &k, &kl, &v, &vl)) == 1) {
		CHECK(n < r.n_annot);
		CHECK((const uint8_t *)k == annot + walked + 2);
		CHECK((const uint8_t *)v == (const uint8_t *)k + kl);
		CHECK(kl <= DP_WIRE_ANNOT_KEY_MAX && vl <= DP_WIRE_ANNOT_VAL_MAX);
		walked += dp_wire_annot_size(kl, vl);
		CHECK(walked <= alen);
		n++;
	}
	/* The parser checked the block, so the iterator must walk all of it without error. */
	CHECK(rc == 0 && n == r.n_annot && walked == alen);

	/* Rebuild the header over a copy: the copy parses to the same fields and pointers. */
	if (size <= sizeof(scratch)) {
		memcpy(scratch, data, size);
		CHECK(dp_wire_resp_write(scratch, size, &r) == h);
		CHECK(dp_wire_resp_parse(scratch, size, &r2, &out2, &annot2, &alen2, NULL) == 0);
		CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
		CHECK(out2 - scratch == out - data && annot2 - scratch == annot - data);
		CHECK(alen2 == alen);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy of exactly size bytes, so ASan sees any read past the datagram. */
	uint8_t *p = malloc(size ? size : 1);
	struct dp_wire_annot_it it;
	int rc;

	if (!p)
		return 0;
	memcpy(p, data, size);
	check_request(p, size);
	check_response(p, size);
	/* The raw input as an annotation block too: the iterator alone must stay in bounds. */
	dp_wire_annot_begin(&it, p, size, size ? p[0] : 0);
	for (unsigned i = 0; i < 300 && (rc = dp_wire_annot_next(&it, NULL, NULL, NULL, NULL)) == 1;
	     i++)
		;
	free(p);
	return 0;
}

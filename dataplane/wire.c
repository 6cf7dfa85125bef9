/*
 * The UDP wire protocol v1 (dataplane/wire.h): request parser and builder, response builder and
 * parser, annotations. Pure functions over (bytes, length): no DPDK, no allocation, no global
 * state, so the same object serves the server, the kernel client library and the fuzzer.
 *
 * Every multi-byte field is read and written through memcpy plus an explicit little-endian
 * conversion: the header sits at odd offsets inside a frame (pipeline_id at 4, request_id at 8
 * or 10), and a pointer cast would be an unaligned access (UBSan) and wrong on big endian.
 */
#include "dataplane/wire.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* ==== Little-endian loads and stores ======================================================= */

static inline uint16_t
ld16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t
ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t
ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void
st16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void
st32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void
st64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* ==== Requests ============================================================================= */

/* Request field offsets (wire.h, request table). */
#define RQ_MAGIC    0
#define RQ_VERSION  2
#define RQ_FLAGS    3
#define RQ_PIPELINE 4
#define RQ_ID	    8
#define RQ_DEADLINE 16
#define RQ_RESERVED 20

/* Audio header offsets, relative to DP_WIRE_HDR_LEN (same in requests and responses). */
#define AU_FMT	    0
#define AU_RESERVED 1
#define AU_CHANNELS 2
#define AU_RATE	    4

static enum dp_wire_verdict
drop_as(enum dp_wire_drop *drop, enum dp_wire_drop d, const char **why, const char *msg)
{
	if (drop)
		*drop = d;
	if (why)
		*why = msg;
	return DP_WIRE_DROP;
}

static enum dp_wire_verdict
reject(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return DP_WIRE_REJECT;
}

enum dp_wire_verdict
dp_wire_req_parse(const uint8_t *p, size_t len, struct dp_wire_req *out, enum dp_wire_drop *drop,
		  const char **why)
{
	struct dp_wire_req scratch;
	const uint8_t *au;
	uint32_t frame;
	size_t off;

	if (!out)
		out = &scratch;
	memset(out, 0, sizeof(*out));
	if (drop)
		*drop = DP_WIRE_DROP_NONE;
	if (why)
		*why = NULL;

	/* Drops first: nothing here is known to be a corepipe request, so nothing is answered. */
	if (!p || len < DP_WIRE_HDR_LEN)
		return drop_as(drop, DP_WIRE_DROP_SHORT, why, "shorter than the 22-byte header");
	if (p[RQ_MAGIC] != DP_WIRE_MAGIC0 || p[RQ_MAGIC + 1] != DP_WIRE_MAGIC1)
		return drop_as(drop, DP_WIRE_DROP_MAGIC, why, "bad magic");
	if (p[RQ_FLAGS] & DP_WIRE_F_RESPONSE)
		return drop_as(drop, DP_WIRE_DROP_RESPONSE, why, "a response, not a request");

	/* From here on the request can be answered: fill in what the response needs first. */
	out->version = p[RQ_VERSION];
	out->flags = p[RQ_FLAGS];
	out->pipeline_id = ld32(p + RQ_PIPELINE);
	out->request_id = ld64(p + RQ_ID);
	out->deadline_us = ld32(p + RQ_DEADLINE);
	out->kind = (out->flags & DP_WIRE_F_AUDIO) ? DP_WIRE_KIND_AUDIO : DP_WIRE_KIND_BYTES;

	if (out->version != DP_WIRE_VERSION)
		return reject(why, "unsupported version");
	if (out->flags & ~DP_WIRE_F_KNOWN)
		return reject(why, "unknown flags");
	if (ld16(p + RQ_RESERVED) != 0)
		return reject(why, "reserved field is not 0");
	if (out->pipeline_id == 0)
		return reject(why, "pipeline id 0");

	off = DP_WIRE_HDR_LEN;
	if (out->kind == DP_WIRE_KIND_AUDIO) {
		if (len < DP_WIRE_HDR_LEN + DP_WIRE_AUDIO_LEN)
			return reject(why, "audio header truncated");
		au = p + DP_WIRE_HDR_LEN;
		out->fmt = au[AU_FMT];
		out->channels = ld16(au + AU_CHANNELS);
		out->rate = ld32(au + AU_RATE);
		if (au[AU_RESERVED] != 0)
			return reject(why, "audio reserved byte is not 0");
		if (out->fmt != 1 && out->fmt != 2)
			return reject(why, "unknown sample format");
		if (out->rate == 0)
			return reject(why, "audio rate 0");
		if (out->channels == 0)
			return reject(why, "audio channels 0");
		off = DP_WIRE_HDR_LEN + DP_WIRE_AUDIO_LEN;
	}

	/* A UDP datagram is far below 4 GiB; the check keeps payload_len exact for any len. */
	if (len - off > UINT32_MAX)
		return reject(why, "payload too large");
	if (out->kind == DP_WIRE_KIND_AUDIO) {
		frame = (uint32_t)out->channels * (out->fmt == 1 ? 2u : 4u);
		if ((len - off) % frame != 0)
			return reject(why, "payload is not a whole number of frames");
	}
	/* payload_* stay 0 on REJECT: only a valid request has a payload. */
	out->payload_off = (uint32_t)off;
	out->payload_len = (uint32_t)(len - off);
	return DP_WIRE_OK;
}

/*
 * The audio bit is derived from r->kind; every other flag bit is written as given, so that
 * tests and fuzzers can build requests a server must reject. Version 1 is always written.
 */
size_t
dp_wire_req_write(uint8_t *dst, size_t room, const struct dp_wire_req *r)
{
	bool audio;
	size_t hlen;
	uint8_t flags;

	if (!dst || !r || (r->kind != DP_WIRE_KIND_BYTES && r->kind != DP_WIRE_KIND_AUDIO))
		return 0;
	audio = r->kind == DP_WIRE_KIND_AUDIO;
	hlen = dp_wire_req_hdr_len(audio);
	if (room < hlen)
		return 0;
	flags = (uint8_t)((r->flags & ~DP_WIRE_F_AUDIO) | (audio ? DP_WIRE_F_AUDIO : 0));

	dst[RQ_MAGIC] = DP_WIRE_MAGIC0;
	dst[RQ_MAGIC + 1] = DP_WIRE_MAGIC1;
	dst[RQ_VERSION] = DP_WIRE_VERSION;
	dst[RQ_FLAGS] = flags;
	st32(dst + RQ_PIPELINE, r->pipeline_id);
	st64(dst + RQ_ID, r->request_id);
	st32(dst + RQ_DEADLINE, r->deadline_us);
	st16(dst + RQ_RESERVED, 0);
	if (audio) {
		uint8_t *au = dst + DP_WIRE_HDR_LEN;

		au[AU_FMT] = r->fmt;
		au[AU_RESERVED] = 0;
		st16(au + AU_CHANNELS, r->channels);
		st32(au + AU_RATE, r->rate);
	}
	return hlen;
}

/* ==== Responses ============================================================================ */

/* Response field offsets (wire.h, response table). */
#define RS_MAGIC   0
#define RS_VERSION 2
#define RS_FLAGS   3
#define RS_STATUS  4
#define RS_NANNOT  5
#define RS_HINT	   6
#define RS_ID	   10
#define RS_OUTLEN  18

/*
 * Writes only dst[0 .. hdr): the server builds the response over the request's header, in
 * the buffer where the request arrived, with the output where the payload was.
 */
size_t
dp_wire_resp_write(uint8_t *dst, size_t room, const struct dp_wire_resp *r)
{
	bool audio;
	size_t hlen;

	if (!dst || !r)
		return 0;
	audio = r->kind == DP_WIRE_KIND_AUDIO;
	hlen = dp_wire_resp_hdr_len(audio);
	if (room < hlen)
		return 0;

	dst[RS_MAGIC] = DP_WIRE_MAGIC0;
	dst[RS_MAGIC + 1] = DP_WIRE_MAGIC1;
	dst[RS_VERSION] = DP_WIRE_VERSION;
	dst[RS_FLAGS] = (uint8_t)((r->flags & ~DP_WIRE_F_AUDIO) | DP_WIRE_F_RESPONSE |
				  (audio ? DP_WIRE_F_AUDIO : 0));
	dst[RS_STATUS] = r->status;
	dst[RS_NANNOT] = r->n_annot;
	st32(dst + RS_HINT, r->hint);
	st64(dst + RS_ID, r->request_id);
	st32(dst + RS_OUTLEN, r->output_len);
	if (audio) {
		uint8_t *au = dst + DP_WIRE_HDR_LEN;

		au[AU_FMT] = r->fmt;
		au[AU_RESERVED] = 0;
		st16(au + AU_CHANNELS, r->channels);
		st32(au + AU_RATE, r->rate);
	}
	return hlen;
}

size_t
dp_wire_annot_write(uint8_t *dst, size_t room, const char *key, size_t klen, const char *val,
		    size_t vlen)
{
	size_t n;

	if (!dst || klen > DP_WIRE_ANNOT_KEY_MAX || vlen > DP_WIRE_ANNOT_VAL_MAX)
		return 0;
	if ((klen && !key) || (vlen && !val))
		return 0;
	n = dp_wire_annot_size(klen, vlen);
	if (room < n)
		return 0;
	dst[0] = (uint8_t)klen;
	dst[1] = (uint8_t)vlen;
	/* memmove: a caller may pass a key or value that already sits in the same buffer. */
	if (klen)
		memmove(dst + 2, key, klen);
	if (vlen)
		memmove(dst + 2 + klen, val, vlen);
	return n;
}

static int
bad(const char **why, const char *msg)
{
	if (why)
		*why = msg;
	return -EBADMSG;
}

/*
 * Strict: a response must account for every byte of its datagram. Flag bits this version does
 * not know are ignored (a server only sets bits its client's request asked for).
 */
int
dp_wire_resp_parse(const uint8_t *p, size_t len, struct dp_wire_resp *out, const uint8_t **output,
		   const uint8_t **annot, size_t *annot_len, const char **why)
{
	struct dp_wire_resp scratch;
	size_t off, pos;

	if (!out)
		out = &scratch;
	memset(out, 0, sizeof(*out));
	if (output)
		*output = NULL;
	if (annot)
		*annot = NULL;
	if (annot_len)
		*annot_len = 0;
	if (why)
		*why = NULL;

	if (!p || len < DP_WIRE_HDR_LEN)
		return bad(why, "shorter than the 22-byte header");
	if (p[RS_MAGIC] != DP_WIRE_MAGIC0 || p[RS_MAGIC + 1] != DP_WIRE_MAGIC1)
		return bad(why, "bad magic");
	if (p[RS_VERSION] != DP_WIRE_VERSION)
		return bad(why, "unsupported version");
	if (!(p[RS_FLAGS] & DP_WIRE_F_RESPONSE))
		return bad(why, "not a response");

	out->flags = p[RS_FLAGS];
	out->status = p[RS_STATUS];
	out->n_annot = p[RS_NANNOT];
	out->hint = ld32(p + RS_HINT);
	out->request_id = ld64(p + RS_ID);
	out->output_len = ld32(p + RS_OUTLEN);
	out->kind = DP_WIRE_KIND_BYTES;
	off = DP_WIRE_HDR_LEN;
	if (out->flags & DP_WIRE_F_AUDIO) {
		const uint8_t *au = p + DP_WIRE_HDR_LEN;

		if (len < DP_WIRE_HDR_LEN + DP_WIRE_AUDIO_LEN)
			return bad(why, "audio header truncated");
		out->kind = DP_WIRE_KIND_AUDIO;
		out->fmt = au[AU_FMT];
		out->channels = ld16(au + AU_CHANNELS);
		out->rate = ld32(au + AU_RATE);
		off += DP_WIRE_AUDIO_LEN;
	}

	/* len - off cannot wrap: off <= len was checked above. */
	if (out->output_len > len - off)
		return bad(why, "output runs past the end of the datagram");
	pos = off + out->output_len;
	for (unsigned i = 0; i < out->n_annot; i++) {
		size_t entry;

		if (len - pos < 2)
			return bad(why, "annotations truncated");
		entry = dp_wire_annot_size(p[pos], p[pos + 1]);
		if (entry > len - pos)
			return bad(why, "annotations truncated");
		pos += entry;
	}
	if (pos != len)
		return bad(why, "trailing bytes after the annotations");

	if (output)
		*output = p + off;
	if (annot)
		*annot = p + off + out->output_len;
	if (annot_len)
		*annot_len = pos - (off + out->output_len);
	return 0;
}

/* ==== Annotation iteration ================================================================= */

void
dp_wire_annot_begin(struct dp_wire_annot_it *it, const uint8_t *annot, size_t annot_len, unsigned n)
{
	/* Taken as given: next() checks every entry against annot_len. */
	it->p = annot;
	it->left = annot_len;
	it->remaining = n;
}

/* Errors leave the iterator unchanged, so a malformed block keeps returning -EBADMSG. */
int
dp_wire_annot_next(struct dp_wire_annot_it *it, const char **key, size_t *klen, const char **val,
		   size_t *vlen)
{
	size_t k, v;

	if (it->remaining == 0)
		return it->left == 0 ? 0 : -EBADMSG;
	if (!it->p || it->left < 2)
		return -EBADMSG;
	k = it->p[0];
	v = it->p[1];
	if (k + v > it->left - 2)
		return -EBADMSG;
	if (key)
		*key = (const char *)(it->p + 2);
	if (klen)
		*klen = k;
	if (val)
		*val = (const char *)(it->p + 2 + k);
	if (vlen)
		*vlen = v;
	it->p += 2 + k + v;
	it->left -= 2 + k + v;
	it->remaining--;
	return 1;
}

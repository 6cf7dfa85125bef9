/**
 * @file
 * The corepipe UDP wire protocol, version 1: parser and builder as pure functions over
 * (bytes, length). No DPDK, no allocation, no global state: the same file is compiled into
 * the server (dataplane/udp.c) and into the kernel-socket client library (client/udp/).
 *
 * One request per datagram, one response per request. All integers are little endian. The
 * offsets below are within the UDP payload; with Ethernet (14) + IPv4 without options (20) +
 * UDP (8) in front, the 22-byte header ends at frame offset 64, so a bytes payload starts on a
 * cache line and audio samples (after the 8-byte audio header) on an 8-byte boundary: the
 * server processes them in the mbuf where they arrived.
 *
 * Request:
 *
 *     off len field
 *       0   2 magic        'C' 'P' (0x43 0x50)
 *       2   1 version      1
 *       3   1 flags        DP_WIRE_F_AUDIO; DP_WIRE_F_RESPONSE must be clear; others 0
 *       4   4 pipeline_id  the stable id from Admin/PutPipeline and ListPipelines (1..4096)
 *       8   8 request_id   chosen by the client, echoed in the response
 *      16   4 deadline_us  budget from arrival at the server; 0: none
 *      20   2 reserved     0
 *      22   8 audio header (only with DP_WIRE_F_AUDIO): format u8 (1 s16le, 2 f32le),
 *                          reserved u8 (0), channels u16, rate u32 (Hz)
 *   22/30   - payload      raw bytes, or interleaved samples
 *
 * Response (flags has DP_WIRE_F_RESPONSE; DP_WIRE_F_AUDIO when the output is audio):
 *
 *     off len field
 *       0   2 magic        'C' 'P'
 *       2   1 version      1
 *       3   1 flags
 *       4   1 status       gRPC status numbering (dataplane/status.h)
 *       5   1 n_annot      annotations after the output
 *       6   4 hint         RESOURCE_EXHAUSTED: retry after this many ms (pushback); else 0
 *      10   8 request_id
 *      18   4 output_len   bytes of output (0 on error)
 *      22   8 audio header (only with DP_WIRE_F_AUDIO), as in the request
 *   22/30   - output       output_len bytes: where the request's payload was
 *       -   - annotations  n_annot times: key_len u8, val_len u8, key, value (no NULs)
 *
 * An error response carries no output; it may carry one annotation "error" with the message,
 * truncated so that the whole response is never longer than the request that caused it.
 *
 * Context: any thread; every function is reentrant and bounds-checked against its length
 * arguments. Ownership: nothing is allocated; pointers returned point into the caller's
 * buffer.
 */
#ifndef COREPIPE_DP_WIRE_H
#define COREPIPE_DP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_WIRE_MAGIC0	      0x43 /* 'C' */
#define DP_WIRE_MAGIC1	      0x50 /* 'P' */
#define DP_WIRE_VERSION	      1
#define DP_WIRE_HDR_LEN	      22 /**< request and response fixed header */
#define DP_WIRE_AUDIO_LEN     8	 /**< audio header after the fixed header */
#define DP_WIRE_F_RESPONSE    0x01
#define DP_WIRE_F_AUDIO	      0x02
#define DP_WIRE_F_KNOWN	      (DP_WIRE_F_RESPONSE | DP_WIRE_F_AUDIO)
#define DP_WIRE_ANNOT_KEY_MAX 255
#define DP_WIRE_ANNOT_VAL_MAX 255

/** Payload kinds, numbered as enum dp_kind (dataplane/status.h). */
#define DP_WIRE_KIND_BYTES 1
#define DP_WIRE_KIND_AUDIO 2

/** A parsed request header. */
struct dp_wire_req {
	uint8_t version;
	uint8_t flags;
	uint32_t pipeline_id;
	uint64_t request_id;
	uint32_t deadline_us;
	uint8_t kind;	      /**< DP_WIRE_KIND_BYTES or DP_WIRE_KIND_AUDIO */
	uint8_t fmt;	      /**< audio: 1 s16le, 2 f32le; 0 for bytes */
	uint16_t channels;    /**< audio only */
	uint32_t rate;	      /**< audio only */
	uint32_t payload_off; /**< from the start of the datagram: 22 or 30 */
	uint32_t payload_len;
};

/** What the parser says of a datagram. */
enum dp_wire_verdict {
	DP_WIRE_OK = 0,	   /**< a valid request: *out filled in */
	DP_WIRE_DROP = 1,  /**< not ours or unverified: never answered (*why says why) */
	DP_WIRE_REJECT = 2 /**< a corepipe request, but malformed: answer INVALID_ARGUMENT with
			    *why; out->request_id (and flags) are valid */
};

/** Why a datagram was dropped (counters are indexed by this). */
enum dp_wire_drop {
	DP_WIRE_DROP_NONE = 0,
	DP_WIRE_DROP_SHORT,    /**< shorter than the fixed header */
	DP_WIRE_DROP_MAGIC,    /**< wrong magic */
	DP_WIRE_DROP_RESPONSE, /**< a response (never answer one: no loops between servers) */
	DP_WIRE_DROP_MAX
};

/**
 * Parse a request datagram of @p len bytes.
 *
 * @param out  filled in on DP_WIRE_OK; on DP_WIRE_REJECT at least request_id and flags
 * @param drop set on DP_WIRE_DROP (may be NULL)
 * @param why  set to a static message on DROP and REJECT (may be NULL), e.g. "unsupported
 *             version 2", "unknown flags 0x80", "reserved field is not 0", "audio header
 *             truncated", "unknown sample format 7", "audio rate 0", "audio channels 0",
 *             "payload of 7 bytes is not a whole number of 4-byte frames", "pipeline id 0"
 * @return the verdict.
 * Context: any. Reads only p[0 .. len).
 */
enum dp_wire_verdict dp_wire_req_parse(const uint8_t *p, size_t len, struct dp_wire_req *out,
				       enum dp_wire_drop *drop, const char **why);

/** Bytes of request header for @p audio (22 or 30). */
static inline size_t
dp_wire_req_hdr_len(bool audio)
{
	return DP_WIRE_HDR_LEN + (audio ? DP_WIRE_AUDIO_LEN : 0);
}

/**
 * Write a request header (22 or 30 bytes, by r->kind) into @p dst; the payload follows it.
 * r->version and r->payload_* are ignored (version 1 is written).
 * @return the header length, or 0 when @p room is too small or r is invalid (kind not bytes
 * or audio).
 */
size_t dp_wire_req_write(uint8_t *dst, size_t room, const struct dp_wire_req *r);

/** A response header. */
struct dp_wire_resp {
	uint8_t flags;	/**< DP_WIRE_F_RESPONSE is always written; DP_WIRE_F_AUDIO by kind */
	uint8_t status; /**< gRPC numbering */
	uint8_t n_annot;
	uint32_t hint; /**< pushback ms for RESOURCE_EXHAUSTED */
	uint64_t request_id;
	uint32_t output_len;
	uint8_t kind; /**< of the output: DP_WIRE_KIND_BYTES or _AUDIO (0 on error: bytes) */
	uint8_t fmt;
	uint16_t channels;
	uint32_t rate;
};

/** Bytes of response header for @p audio output (22 or 30). */
static inline size_t
dp_wire_resp_hdr_len(bool audio)
{
	return DP_WIRE_HDR_LEN + (audio ? DP_WIRE_AUDIO_LEN : 0);
}

/**
 * Write the response header (22 or 30 bytes, by r->kind == DP_WIRE_KIND_AUDIO) at @p dst.
 * @return bytes written, or 0 when @p room is too small.
 */
size_t dp_wire_resp_write(uint8_t *dst, size_t room, const struct dp_wire_resp *r);

/** Encoded size of one annotation (2 + key length + value length). */
static inline size_t
dp_wire_annot_size(size_t klen, size_t vlen)
{
	return 2 + klen + vlen;
}

/**
 * Append one annotation at @p dst. Key and value are taken as @p klen / @p vlen bytes.
 * @return bytes written, or 0 when @p room is too small or a length exceeds 255.
 */
size_t dp_wire_annot_write(uint8_t *dst, size_t room, const char *key, size_t klen, const char *val,
			   size_t vlen);

/**
 * Parse a response datagram (client side).
 * @param output set to the output bytes (inside @p p), length out->output_len
 * @param annot  set to the first annotation byte (inside @p p) and @p annot_len to the bytes
 *               of the annotation block (exactly what the n_annot entries occupy)
 * @return 0, or -EBADMSG with @p why (short, magic, version, not a response, truncated
 * output or annotations, trailing bytes).
 */
int dp_wire_resp_parse(const uint8_t *p, size_t len, struct dp_wire_resp *out,
		       const uint8_t **output, const uint8_t **annot, size_t *annot_len,
		       const char **why);

/** Iterate annotations of a parsed response. */
struct dp_wire_annot_it {
	const uint8_t *p;
	size_t left;
	unsigned remaining;
};

/** Start iterating @p n annotations over @p annot_len bytes at @p annot. */
void dp_wire_annot_begin(struct dp_wire_annot_it *it, const uint8_t *annot, size_t annot_len,
			 unsigned n);

/**
 * Next annotation: @p key/@p klen, @p val/@p vlen point into the datagram (not NUL-ended).
 * @return 1 with an annotation, 0 at the end, -EBADMSG when the block is malformed.
 */
int dp_wire_annot_next(struct dp_wire_annot_it *it, const char **key, size_t *klen,
		       const char **val, size_t *vlen);

#endif

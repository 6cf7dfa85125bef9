/*
 * zstd_decompress: decompress zstd frames (one or several, concatenated) into bytes.
 *
 * Bounded by construction, never by trust in the input:
 *   - the output buffer is at most max_bytes (default: server.max_message_bytes), at most
 *     the largest buffer class, and at most what the answer may carry (x->out_max: over UDP,
 *     three times the request, so a 171-byte datagram cannot make a worker inflate 4 MiB); a
 *     frame whose declared content size exceeds it is refused
 *     before any work, and a frame without a declared size is decompressed in a streaming loop
 *     that stops with INVALID_ARGUMENT the moment the output would pass max_bytes
 *     (decompression bombs fail fast);
 *   - the decoder's window is limited to 2^24 bytes (ZSTD_d_windowLogMax), so a frame cannot
 *     make libzstd allocate more than that for history;
 *   - corrupt, truncated or non-zstd input is INVALID_ARGUMENT with libzstd's reason.
 * Each thread keeps one decompression context (thread-local, created on its first use), and
 * a second one for the bulk lane's sliced runs (zd_slice: ZSTD_decompressStream over a budget of
 * input and at most ZD_SLICE_OUT bytes of output per slice, with the same checks and bound).
 */
#include "dataplane/node.h"

#include <errno.h>
#include <zstd.h>

#define WINDOW_LOG_MAX 24

struct zd_conf {
	uint64_t max_bytes; /* 0: server.max_message_bytes at run time */
};

static const struct dp_param_def zd_params[] = {
    {"max_bytes",
     "Largest decompressed output accepted; larger is INVALID_ARGUMENT. Default: the "
     "server's max message size (server.max_message_bytes).",
     false, NULL},
};

static int
zd_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct zd_conf *c = conf;

	c->max_bytes = 0;
	if (dp_node_arg(args, "max_bytes") != NULL &&
	    dp_node_arg_u64(args, "max_bytes", 1, UINT32_MAX, &c->max_bytes, err) != 0)
		return -EINVAL;
	return 0;
}

static int
zd_infer(const void *conf, const struct dp_format *in, struct dp_format *out, struct dp_err *err)
{
	(void)conf;
	(void)in;
	(void)err;
	*out = (struct dp_format){.kind = DP_KIND_BYTES};
	return 0;
}

static __thread ZSTD_DCtx *tls_dctx;

/* The content size @p d declares: ZSTD_CONTENTSIZE_ERROR (not a zstd frame), _UNKNOWN (not
 * declared, or more than one frame: the declaration then sizes only the first), or the size. */
static unsigned long long
zd_declared(const uint8_t *d, size_t len)
{
	unsigned long long declared = ZSTD_getFrameContentSize(d, len);

	if (declared != ZSTD_CONTENTSIZE_ERROR && declared != ZSTD_CONTENTSIZE_UNKNOWN &&
	    ZSTD_findFrameCompressedSize(d, len) != len)
		declared = ZSTD_CONTENTSIZE_UNKNOWN;
	return declared;
}

/* The output buffer (dp_node_type.out_bytes): the declared size of a single frame whose
 * bytes are known, else what an unknown size takes (the bound and its spare byte, capped at
 * the largest buffer by the runner). */
static uint64_t
zd_out_bytes(const void *conf, const struct dp_format *in, uint64_t len, const uint8_t *data)
{
	const struct zd_conf *c = conf;
	uint64_t limit = c->max_bytes ? c->max_bytes : dp_node_max_message_bytes;

	(void)in;
	if (data != NULL && len != 0) {
		unsigned long long d = zd_declared(data, len);

		if (d == ZSTD_CONTENTSIZE_ERROR || (d != ZSTD_CONTENTSIZE_UNKNOWN && d > limit))
			return 0; /* fails before it takes anything */
		if (d != ZSTD_CONTENTSIZE_UNKNOWN)
			return d != 0 ? d : 1;
	}
	return limit + 1;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls or logging; allocation only the
 * first time a thread decompresses (its context and window), see the file comment. */

/* Output larger than the bound: which limit was hit decides the status. */
static int
too_large(struct dp_exec *x, uint64_t limit, uint32_t pool_max)
{
	if (limit <= pool_max)
		return dp_exec_fail(x, DP_INVALID_ARGUMENT,
				    "decompressed size exceeds max_bytes %llu",
				    (unsigned long long)limit);
	if (pool_max < dp_pools_max_size(x->pools))
		return dp_exec_fail(
		    x, DP_OUT_OF_RANGE,
		    "decompressed output exceeds the %u bytes this answer may carry", pool_max);
	return dp_exec_fail(x, DP_OUT_OF_RANGE,
			    "decompressed output exceeds the largest buffer (%u bytes)", pool_max);
}

/* The thread's context, created on first use. NULL after failing the node. */
static ZSTD_DCtx *
zd_ctx(struct dp_exec *x, ZSTD_DCtx **dcp)
{
	if (unlikely(*dcp == NULL)) {
		*dcp = ZSTD_createDCtx();
		if (*dcp == NULL) {
			dp_exec_fail(x, DP_RESOURCE_EXHAUSTED,
				     "out of memory for a decompression context");
			return NULL;
		}
		ZSTD_DCtx_setParameter(*dcp, ZSTD_d_windowLogMax, WINDOW_LOG_MAX);
	}
	return *dcp;
}

/* Progress of one buffer's decompression: the output buffer and how much of it is written.
 * The whole run (zd_process) and the bulk lane's slices (zd_slice) share it. */
struct zd_slice {
	struct dp_buf *out;
	size_t out_pos;
	size_t out_size; /* the most the output may reach: the frame's size, or bound + 1 */
	uint64_t bound;	 /* the most we may return */
	uint64_t limit;	 /* max_bytes (or the server's), for the message */
	uint32_t pool_max;
	uint8_t declared; /* one frame of declared size: out_size is that size */
	uint8_t slot;	  /* sliced runs: 1 + index in tls_slice_dctx, 0 before the first */
};

/* Release the output buffer and the session (a failure or an abandoned run). */
static void
zd_release(ZSTD_DCtx *dc, struct zd_slice *z)
{
	dp_buf_free(z->out);
	z->out = NULL;
	if (dc != NULL)
		ZSTD_DCtx_reset(dc, ZSTD_reset_session_only);
}

/*
 * Checks before any work, and the output buffer. @return DP_PENDING (z->out taken), DP_OK
 * (nothing to inflate: a stream's end) or a failure; in any case nothing held on failure.
 */
static int
zd_begin(const struct zd_conf *c, struct dp_exec *x, struct zd_slice *z)
{
	unsigned long long declared;
	uint64_t want;

	z->limit = c->max_bytes ? c->max_bytes : dp_node_max_message_bytes;
	z->pool_max = dp_exec_out_max(x); /* largest buffer, or what the answer may carry */
	z->bound = z->limit < z->pool_max ? z->limit : z->pool_max;
	if (x->buf->len == 0 && x->flushing)
		return DP_OK; /* a stream's end: nothing more to inflate */
	if (x->buf->len == 0)
		return dp_exec_fail(x, DP_INVALID_ARGUMENT, "empty input is not a zstd frame");
	declared = zd_declared(x->buf->data, x->buf->len);
	if (declared == ZSTD_CONTENTSIZE_ERROR)
		return dp_exec_fail(x, DP_INVALID_ARGUMENT, "not a valid zstd frame");
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
		if (declared > z->bound)
			return too_large(x, z->limit, z->pool_max);
		z->out = dp_exec_take_out(x, declared);
		z->out_size = declared;
		z->declared = 1;
	} else {
		want = z->bound;
		/* One spare byte when the pools allow: filling it proves the output is too
		 * large. */
		z->out = dp_exec_take_out(x, want < z->pool_max ? want + 1 : want);
		if (z->out != NULL)
			z->out_size = z->out->cap < z->bound + 1 ? z->out->cap : z->bound + 1;
	}
	if (z->out == NULL)
		return x->res->err.status;
	z->out_pos = 0;
	return DP_PENDING;
}

/*
 * Streaming decompression of input [*pos, in_end) into z->out, producing at most @p out_room
 * more bytes (the bulk lane's bound on one slice's work: one input byte can inflate to much
 * more). @return DP_PENDING (input or output room of this call used up), DP_OK (x->buf is the
 * output) or a failure (z released). The bound and the errors are the same whatever the
 * split: the output is full only at z->out_size, never at a slice's room.
 */
static int
zd_stream(ZSTD_DCtx *dc, struct dp_exec *x, struct zd_slice *z, uint32_t *pos, uint32_t in_end,
	  size_t out_room)
{
	struct dp_format f = {.kind = DP_KIND_BYTES};
	size_t len = x->buf->len;
	size_t room_end = out_room < z->out_size - z->out_pos ? z->out_pos + out_room : z->out_size;
	ZSTD_inBuffer in = {x->buf->data, in_end, *pos};
	ZSTD_outBuffer ob = {z->out->data, room_end, z->out_pos};

	for (;;) {
		size_t in0 = in.pos, out0 = ob.pos;
		size_t rc = ZSTD_decompressStream(dc, &ob, &in);

		z->out_pos = ob.pos;
		*pos = (uint32_t)in.pos;
		if (ZSTD_isError(rc)) {
			zd_release(dc, z);
			return dp_exec_fail(x, DP_INVALID_ARGUMENT, "zstd: %s",
					    ZSTD_getErrorName(rc));
		}
		if (ob.pos > z->bound || (ob.pos == z->out_size && (rc != 0 || in.pos < len))) {
			zd_release(dc, z);
			if (z->declared) /* more than the frame said: not a bomb, a bad frame */
				return dp_exec_fail(x, DP_INVALID_ARGUMENT,
						    "zstd: frame longer than its declared size");
			return too_large(x, z->limit, z->pool_max);
		}
		if (rc == 0 && in.pos == len)
			break;
		if (ob.pos == ob.size || (in.pos == in_end && in_end < len))
			return DP_PENDING; /* this call's room or input is used up */
		if (in.pos == in0 && ob.pos == out0) {
			/* No progress and the input is all consumed: the last frame is cut. */
			zd_release(dc, z);
			return dp_exec_fail(x, DP_INVALID_ARGUMENT,
					    "truncated zstd frame (input ended mid-frame)");
		}
	}
	if (z->declared && z->out_pos != z->out_size) {
		zd_release(dc, z);
		return dp_exec_fail(x, DP_INVALID_ARGUMENT,
				    "zstd: frame shorter than its declared size");
	}
	z->out->len = (uint32_t)z->out_pos;
	dp_exec_commit_out(x, z->out, &f);
	z->out = NULL;
	return DP_OK;
}

static int
zd_process(const void *conf, struct dp_exec *x)
{
	struct dp_format f = {.kind = DP_KIND_BYTES};
	struct zd_slice z = {0};
	uint32_t pos = 0;
	size_t n;
	int rc;

	if (zd_ctx(x, &tls_dctx) == NULL)
		return x->res->err.status;
	rc = zd_begin(conf, x, &z);
	if (rc != DP_PENDING)
		return rc;
	if (!z.declared) {
		ZSTD_DCtx_reset(tls_dctx, ZSTD_reset_session_only);
		return zd_stream(tls_dctx, x, &z, &pos, x->buf->len, SIZE_MAX);
	}
	/* One frame of known size (what zstd_compress writes): decode in one call into a buffer
	 * of exactly that size; one-shot decoding needs no window beyond it. */
	n = ZSTD_decompressDCtx(tls_dctx, z.out->data, z.out_size, x->buf->data, x->buf->len);
	if (ZSTD_isError(n) || n != z.out_size) {
		dp_buf_free(z.out);
		return dp_exec_fail(x, DP_INVALID_ARGUMENT, "zstd: %s",
				    ZSTD_isError(n) ? ZSTD_getErrorName(n)
						    : "frame shorter than its declared size");
	}
	z.out->len = (uint32_t)n;
	dp_exec_commit_out(x, z.out, &f);
	return DP_OK;
}

/*
 * Sliced (bulk lane): the streaming loop on the lane's own context, about @p budget input
 * bytes and at most ZD_SLICE_OUT output bytes per slice (so a slice of a highly compressed
 * frame is not a whole 16 MiB inflation). Same checks, same buffer, same bound and errors as
 * the whole run; the output is the frame's content either way.
 */
#define ZD_SLICE_OUT (64u * 1024)

/* The bulk lane's contexts: one per sliced run the lcore holds (a parked run keeps its frame
 * in its own), and a whole-buffer run on the same lcore (inline, between quanta) must not
 * disturb them. */
static __thread ZSTD_DCtx *tls_slice_dctx[DP_SLICE_RUNS_MAX];
static __thread uint8_t tls_slice_busy; /* bit i: tls_slice_dctx[i] holds a run */

_Static_assert(sizeof(struct zd_slice) <= DP_SLICE_MAX, "zstd_decompress progress fits a slice");

static void
zd_slot_free(struct zd_slice *z)
{
	dp_slice_slot_give(&tls_slice_busy, &z->slot);
}

static int
zd_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	struct zd_slice *z = sl;
	uint32_t left = x->buf->len - *pos;
	ZSTD_DCtx *dc;
	int rc;

	if (z->slot == 0) {
		z->slot = dp_slice_slot_take(&tls_slice_busy);
		if (unlikely(z->slot == 0))
			return dp_exec_fail(x, DP_INTERNAL, "more than %u sliced runs at once",
					    DP_SLICE_RUNS_MAX);
		dc = zd_ctx(x, &tls_slice_dctx[z->slot - 1]);
		rc = dc == NULL ? (int)x->res->err.status : zd_begin(conf, x, z);
		if (rc != DP_PENDING) {
			zd_slot_free(z);
			return rc;
		}
		/* A frame of declared size is decoded whole by process(), whatever its window;
		 * streaming keeps at most that size of history (libzstd sizes its buffer by the
		 * smaller of window and content), so only frames of unknown size are held to
		 * WINDOW_LOG_MAX here: the same frames pass either way. */
		ZSTD_DCtx_reset(dc, ZSTD_reset_session_only);
		ZSTD_DCtx_setParameter(dc, ZSTD_d_windowLogMax,
				       z->declared
					   ? ZSTD_dParam_getBounds(ZSTD_d_windowLogMax).upperBound
					   : WINDOW_LOG_MAX);
	}
	rc = zd_stream(tls_slice_dctx[z->slot - 1], x, z, pos,
		       *pos + (budget < left ? budget : left), ZD_SLICE_OUT);
	if (rc != DP_PENDING)
		zd_slot_free(z);
	return rc;
}

static void
zd_slice_abort(const void *conf, void *sl)
{
	struct zd_slice *z = sl;

	(void)conf;
	if (z->slot == 0)
		return;
	zd_release(tls_slice_dctx[z->slot - 1], z);
	zd_slot_free(z);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_zstd_decompress = {
    .expands = true,
    .name = "zstd_decompress",
    .summary = "Decompress zstd frames (bounded by max_bytes; corrupt input is "
	       "INVALID_ARGUMENT).",
    .params = zd_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_ANY,
    .conf_size = sizeof(struct zd_conf),
    .compile = zd_compile,
    .infer = zd_infer,
    .process = zd_process,
    .out_bytes = zd_out_bytes,
    .slice = zd_slice,
    .slice_abort = zd_slice_abort,
};

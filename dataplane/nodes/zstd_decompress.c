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
 * Each thread keeps one decompression context (thread-local, created on its first use).
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

static int
zd_process(const void *conf, struct dp_exec *x)
{
	const struct zd_conf *c = conf;
	uint64_t limit = c->max_bytes ? c->max_bytes : dp_node_max_message_bytes;
	uint32_t pool_max = dp_exec_out_max(x); /* largest buffer, or what the answer may carry */
	uint64_t bound = limit < pool_max ? limit : pool_max; /* most we may return */
	struct dp_format f = {.kind = DP_KIND_BYTES};
	ZSTD_inBuffer in = {x->buf->data, x->buf->len, 0};
	unsigned long long declared;
	ZSTD_outBuffer ob;
	struct dp_buf *out;
	uint64_t want;

	if (unlikely(tls_dctx == NULL)) {
		tls_dctx = ZSTD_createDCtx();
		if (tls_dctx == NULL)
			return dp_exec_fail(x, DP_RESOURCE_EXHAUSTED,
					    "out of memory for a decompression context");
		ZSTD_DCtx_setParameter(tls_dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX);
	}
	if (x->buf->len == 0 && x->flushing)
		return DP_OK; /* a stream's end: nothing more to inflate */
	if (x->buf->len == 0)
		return dp_exec_fail(x, DP_INVALID_ARGUMENT, "empty input is not a zstd frame");
	declared = zd_declared(x->buf->data, x->buf->len);
	if (declared == ZSTD_CONTENTSIZE_ERROR)
		return dp_exec_fail(x, DP_INVALID_ARGUMENT, "not a valid zstd frame");
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
		if (declared > bound)
			return too_large(x, limit, pool_max);
		want = declared;
	} else {
		want = bound;
	}
	if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
		/* One frame of known size (what zstd_compress writes): decode in one call into
		 * a buffer of exactly that size; one-shot decoding needs no window beyond it. */
		size_t n;

		out = dp_exec_take_out(x, declared);
		if (out == NULL)
			return x->res->err.status;
		n = ZSTD_decompressDCtx(tls_dctx, out->data, declared, x->buf->data, x->buf->len);
		if (ZSTD_isError(n) || n != declared) {
			dp_buf_free(out);
			return dp_exec_fail(x, DP_INVALID_ARGUMENT, "zstd: %s",
					    ZSTD_isError(n)
						? ZSTD_getErrorName(n)
						: "frame shorter than its declared size");
		}
		out->len = (uint32_t)n;
		dp_exec_commit_out(x, out, &f);
		return DP_OK;
	}
	/* One spare byte when the pools allow: filling it proves the output is too large. */
	out = dp_exec_take_out(x, want < pool_max ? want + 1 : want);
	if (out == NULL)
		return x->res->err.status;
	ob = (ZSTD_outBuffer){out->data, out->cap < bound + 1 ? out->cap : bound + 1, 0};
	ZSTD_DCtx_reset(tls_dctx, ZSTD_reset_session_only);
	for (;;) {
		size_t in0 = in.pos, out0 = ob.pos;
		size_t rc = ZSTD_decompressStream(tls_dctx, &ob, &in);

		if (ZSTD_isError(rc)) {
			dp_buf_free(out);
			return dp_exec_fail(x, DP_INVALID_ARGUMENT, "zstd: %s",
					    ZSTD_getErrorName(rc));
		}
		if (ob.pos > bound || (ob.pos == ob.size && (rc != 0 || in.pos < in.size))) {
			dp_buf_free(out);
			return too_large(x, limit, pool_max);
		}
		if (rc == 0 && in.pos == in.size)
			break;
		if (in.pos == in0 && ob.pos == out0) {
			/* No progress and the input is all consumed: the last frame is cut. */
			dp_buf_free(out);
			return dp_exec_fail(x, DP_INVALID_ARGUMENT,
					    "truncated zstd frame (input ended mid-frame)");
		}
	}
	out->len = (uint32_t)ob.pos;
	dp_exec_commit_out(x, out, &f);
	return DP_OK;
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
};

/*
 * zstd_compress: compress the payload bytes into one zstd frame (libzstd), with the content
 * size recorded in the frame header (so zstd_decompress can size its output exactly) and a
 * content checksum (4 bytes), so corruption anywhere in the frame is detected on the way back.
 *
 * The output is bytes, whatever the input kind. Each thread that runs the node keeps one
 * compression context (thread-local, created on its first use and reused for every buffer and
 * pipeline after that; libzstd grows its workspace only when a higher level or a larger input
 * needs it), so the steady state allocates nothing. An output that would not fit in the
 * largest buffer class is OUT_OF_RANGE.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <zstd.h>
#include <zstd_errors.h>

struct zc_conf {
	int level;
};

static const struct dp_param_def zc_params[] = {
    {"level", "Compression level, 1 (fastest) to 19 (smallest).", false, "3"},
};

static int
zc_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct zc_conf *c = conf;
	uint64_t v;

	if (dp_node_arg_u64(args, "level", 1, 19, &v, err) != 0)
		return -EINVAL;
	c->level = (int)v;
	return 0;
}

static int
zc_infer(const void *conf, const struct dp_format *in, struct dp_format *out, struct dp_err *err)
{
	(void)conf;
	(void)in;
	(void)err;
	*out = (struct dp_format){.kind = DP_KIND_BYTES};
	return 0;
}

static __thread ZSTD_CCtx *tls_cctx;

/* Hot path: per buffer, worker lcores. No locks, syscalls or logging; allocation only the
 * first time a thread compresses (its context), see the file comment. */

static int
zc_process(const void *conf, struct dp_exec *x)
{
	const struct zc_conf *c = conf;
	size_t bound = ZSTD_compressBound(x->buf->len);
	uint32_t max = dp_exec_out_max(x); /* the largest buffer, or what the answer may carry */
	struct dp_format f = {.kind = DP_KIND_BYTES};
	struct dp_buf *out;
	size_t n;

	if (unlikely(tls_cctx == NULL)) {
		tls_cctx = ZSTD_createCCtx();
		if (tls_cctx == NULL)
			return dp_exec_fail(x, DP_RESOURCE_EXHAUSTED,
					    "out of memory for a compression context");
	}
	out = dp_exec_take_out(x, bound < max ? bound : max);
	if (out == NULL)
		return x->res->err.status;
	/* Parameters stick to the context; setting them is a few stores. */
	ZSTD_CCtx_setParameter(tls_cctx, ZSTD_c_compressionLevel, c->level);
	ZSTD_CCtx_setParameter(tls_cctx, ZSTD_c_checksumFlag, 1);
	n = ZSTD_compress2(tls_cctx, out->data, out->cap, x->buf->data, x->buf->len);
	if (unlikely(ZSTD_isError(n))) {
		dp_buf_free(out);
		if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
			return dp_exec_fail(
			    x, DP_OUT_OF_RANGE,
			    "compressed output exceeds the largest buffer or answer (%u bytes)",
			    max);
		return dp_exec_fail(x, DP_INTERNAL, "zstd: %s", ZSTD_getErrorName(n));
	}
	out->len = (uint32_t)n;
	dp_exec_commit_out(x, out, &f);
	return DP_OK;
}

/*
 * Sliced (bulk lane): libzstd's streaming API on a second thread-local context (the lane runs
 * one request at a time per lcore, and the whole-buffer path keeps its own context between
 * slices), input fed DP_SLICE_BYTES at a time, the content size pledged so the header is the
 * one-shot call's. libzstd compresses whenever it holds a full block (128 KiB of input), so a
 * slice that completes a block does that block's work: at level 19 that is tens of ms, the
 * coarsest grain of any node.
 */
static __thread ZSTD_CCtx *tls_slice_cctx;

struct zc_slice {
	struct dp_buf *out;
	size_t out_pos;
};

static void
zc_slice_abort(const void *conf, void *sl)
{
	struct zc_slice *z = sl;

	(void)conf;
	dp_buf_free(z->out);
	z->out = NULL;
	if (tls_slice_cctx != NULL)
		ZSTD_CCtx_reset(tls_slice_cctx, ZSTD_reset_session_only);
}

static int
zc_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct zc_conf *c = conf;
	struct zc_slice *z = sl;
	uint32_t max = dp_exec_out_max(x), end = x->buf->len;
	struct dp_format f = {.kind = DP_KIND_BYTES};
	ZSTD_inBuffer in;
	ZSTD_outBuffer ob;
	size_t r;

	if (z->out == NULL) {
		size_t bound = ZSTD_compressBound(x->buf->len);

		if (unlikely(tls_slice_cctx == NULL)) {
			tls_slice_cctx = ZSTD_createCCtx();
			if (tls_slice_cctx == NULL)
				return dp_exec_fail(x, DP_RESOURCE_EXHAUSTED,
						    "out of memory for a compression context");
		}
		z->out = dp_exec_take_out(x, bound < max ? bound : max);
		if (z->out == NULL)
			return x->res->err.status;
		ZSTD_CCtx_reset(tls_slice_cctx, ZSTD_reset_session_only);
		ZSTD_CCtx_setParameter(tls_slice_cctx, ZSTD_c_compressionLevel, c->level);
		ZSTD_CCtx_setParameter(tls_slice_cctx, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setPledgedSrcSize(tls_slice_cctx, x->buf->len);
	}
	if (end - *pos > budget)
		end = *pos + budget;
	in = (ZSTD_inBuffer){.src = x->buf->data, .size = end, .pos = *pos};
	ob = (ZSTD_outBuffer){.dst = z->out->data, .size = z->out->cap, .pos = z->out_pos};
	r = ZSTD_compressStream2(tls_slice_cctx, &ob, &in,
				 end == x->buf->len ? ZSTD_e_end : ZSTD_e_continue);
	if (unlikely(ZSTD_isError(r))) {
		zc_slice_abort(conf, sl);
		return dp_exec_fail(x, DP_INTERNAL, "zstd: %s", ZSTD_getErrorName(r));
	}
	*pos = (uint32_t)in.pos;
	z->out_pos = ob.pos;
	if (end < x->buf->len || in.pos < end)
		return DP_PENDING;
	if (r != 0) { /* the frame's end is still inside libzstd */
		if (ob.pos < ob.size)
			return DP_PENDING;
		zc_slice_abort(conf, sl);
		return dp_exec_fail(
		    x, DP_OUT_OF_RANGE,
		    "compressed output exceeds the largest buffer or answer (%u bytes)", max);
	}
	z->out->len = (uint32_t)ob.pos;
	dp_exec_commit_out(x, z->out, &f);
	z->out = NULL;
	return DP_OK;
}

static const struct dp_node_type zc_node = {
    .name = "zstd_compress",
    .summary = "Compress the payload into one zstd frame (output: bytes).",
    .params = zc_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_ANY,
    .conf_size = sizeof(struct zc_conf),
    .compile = zc_compile,
    .infer = zc_infer,
    .process = zc_process,
    .slice = zc_slice,
    .slice_abort = zc_slice_abort,
};

DP_NODE_REGISTER(zc_node)

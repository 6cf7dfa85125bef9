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
 *
 * Blocks: the input is compressed in blocks of ZC_BLOCK (8 KiB) input bytes (ZSTD_e_flush
 * at every multiple of it, ZSTD_e_end at the end), whether the node runs whole or in slices of
 * the bulk lane, so both give the same bytes and no slice does more than one block's work
 * (libzstd otherwise compresses 128 KiB at a time: about 30 ms at level 19, about 2 ms per
 * 8 KiB block). The history window is kept across blocks; the cost is a block header and
 * entropy tables per 8 KiB: +0.46% output at level 19 and +0.55% at level 3 on 3 MiB of noisy
 * audio, and no loss of speed (docs/performance.md, "Fair execution").
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

#define ZC_BLOCK (8u * 1024) /* input bytes per zstd block */

static __thread ZSTD_CCtx *tls_cctx;
/* The bulk lane's context: one sliced run per lcore at a time, and a whole-buffer run on the
 * same lcore (inline, between quanta) must not disturb it. */
static __thread ZSTD_CCtx *tls_slice_cctx;

/* Progress of one buffer: the output buffer and how much of it is written. */
struct zc_slice {
	struct dp_buf *out;
	size_t out_pos;
};

/* Hot path: per buffer, worker lcores. No locks, syscalls or logging; allocation only the
 * first time a thread compresses (its contexts), see the file comment. */

static void
zc_release(ZSTD_CCtx *cc, struct zc_slice *z)
{
	dp_buf_free(z->out);
	z->out = NULL;
	if (cc != NULL)
		ZSTD_CCtx_reset(cc, ZSTD_reset_session_only);
}

/* The frame's buffer (dp_node_type.out_bytes): zstd's bound for the input (the runner caps it
 * at the largest buffer, as zc_run does). */
static uint64_t
zc_out_bytes(const void *conf, const struct dp_format *in, uint64_t len, const uint8_t *data)
{
	(void)conf, (void)in, (void)data;
	return ZSTD_compressBound(len);
}

/*
 * Compress input bytes [*pos, *pos + budget) (at least up to the next block end) of x->buf
 * with @p cc, starting the frame when z->out is NULL. @return DP_PENDING, DP_OK (x->buf is the
 * frame) or a failure (z released).
 */
static int
zc_run(const struct zc_conf *c, ZSTD_CCtx **ccp, struct dp_exec *x, struct zc_slice *z,
       uint32_t *pos, uint32_t budget)
{
	uint32_t max = dp_exec_out_max(x), len = x->buf->len;
	struct dp_format f = {.kind = DP_KIND_BYTES};
	uint64_t stop = (uint64_t)*pos + budget;

	if (z->out == NULL) {
		size_t bound = ZSTD_compressBound(len);

		if (unlikely(*ccp == NULL)) {
			*ccp = ZSTD_createCCtx();
			if (*ccp == NULL)
				return dp_exec_fail(x, DP_RESOURCE_EXHAUSTED,
						    "out of memory for a compression context");
		}
		z->out = dp_exec_take_out(x, bound < max ? bound : max);
		if (z->out == NULL)
			return x->res->err.status;
		z->out_pos = 0;
		/* Parameters stick to the context; setting them is a few stores. */
		ZSTD_CCtx_reset(*ccp, ZSTD_reset_session_only);
		ZSTD_CCtx_setParameter(*ccp, ZSTD_c_compressionLevel, c->level);
		ZSTD_CCtx_setParameter(*ccp, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setPledgedSrcSize(*ccp, len);
	}
	do {
		uint32_t end = (*pos / ZC_BLOCK + 1) * ZC_BLOCK;
		ZSTD_EndDirective mode = ZSTD_e_flush;
		ZSTD_inBuffer in;
		ZSTD_outBuffer ob;
		size_t r;

		if (end >= len) {
			end = len;
			mode = ZSTD_e_end;
		}
		in = (ZSTD_inBuffer){.src = x->buf->data, .size = end, .pos = *pos};
		ob = (ZSTD_outBuffer){.dst = z->out->data, .size = z->out->cap, .pos = z->out_pos};
		r = ZSTD_compressStream2(*ccp, &ob, &in, mode);
		z->out_pos = ob.pos;
		*pos = (uint32_t)in.pos;
		if (unlikely(ZSTD_isError(r))) {
			zc_release(*ccp, z);
			return dp_exec_fail(x, DP_INTERNAL, "zstd: %s", ZSTD_getErrorName(r));
		}
		/* Flush and end finish in one call unless the output is full: the bound fits,
		 * so a full output means the answer's limit (out_max) was reached. */
		if (unlikely(r != 0 || in.pos < end)) {
			zc_release(*ccp, z);
			return dp_exec_fail(
			    x, DP_OUT_OF_RANGE,
			    "compressed output exceeds the largest buffer or answer (%u bytes)",
			    max);
		}
		if (mode == ZSTD_e_end) {
			z->out->len = (uint32_t)z->out_pos;
			dp_exec_commit_out(x, z->out, &f);
			z->out = NULL;
			return DP_OK;
		}
	} while (*pos < stop);
	return DP_PENDING;
}

static int
zc_process(const void *conf, struct dp_exec *x)
{
	struct zc_slice z = {0};
	uint32_t pos = 0;

	return zc_run(conf, &tls_cctx, x, &z, &pos, UINT32_MAX);
}

/* Sliced (bulk lane): the same blocks, one or more per slice, on the lane's own context. */
static int
zc_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	return zc_run(conf, &tls_slice_cctx, x, sl, pos, budget);
}

static void
zc_slice_abort(const void *conf, void *sl)
{
	(void)conf;
	zc_release(tls_slice_cctx, sl);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_zstd_compress = {
    .name = "zstd_compress",
    .summary = "Compress the payload into one zstd frame (output: bytes).",
    .params = zc_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_ANY,
    .conf_size = sizeof(struct zc_conf),
    .compile = zc_compile,
    .infer = zc_infer,
    .process = zc_process,
    .out_bytes = zc_out_bytes,
    .slice = zc_slice,
    .slice_abort = zc_slice_abort,
};

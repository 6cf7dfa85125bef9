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
 * Blocks: the input is compressed in blocks whose ends are fixed by the level and the data
 * (ZSTD_e_flush at each, ZSTD_e_end at the end), whether the node runs whole or in slices of
 * the bulk lane, so both give the same bytes and a slice never does less than one block. The
 * block is chosen so that one is about a quantum of work (docs/ARCHITECTURE.md, "Fair
 * execution", with the measurements): libzstd's own 128 KiB at the fast strategy (level 1:
 * no extra block end, so no cost), smaller as the strategy gets slower per byte, down to
 * 1 KiB for btultra/btultra2 (levels 18-19, about 0.1 ms per KiB: libzstd's 128 KiB would be
 * 10-30 ms of work in one piece). Data that compresses to less than 1/32 of its size is cheap
 * to compress at any level (long matches), so after such a block the next one doubles, up to
 * 16 times the level's block; any other block sets it back. The input is given to libzstd in
 * place (ZSTD_c_stableInBuffer: x->buf does not move or change during a run), which saves the
 * copy into libzstd's own input buffer that streaming otherwise makes.
 */
#include "dataplane/node.h"

#include <errno.h>
/* ZSTD_getCParams (the level's strategy) and ZSTD_c_stableInBuffer: in libzstd since 1.4.
 * They are "experimental" only in that their ABI may change; libzstd exports them. */
#define ZSTD_STATIC_LINKING_ONLY
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

/* Input bytes per block by libzstd's strategy (ZSTD_strategy: 1 fast .. 9 btultra2). */
static const uint32_t zc_block_by_strategy[10] = {
    [0] = 128u << 10, [1] = 128u << 10, /* fast: libzstd's own block size */
    [2] = 64u << 10,			/* dfast (levels 2-5) */
    [3] = 32u << 10,			/* greedy */
    [4] = 16u << 10,			/* lazy */
    [5] = 8u << 10,			/* lazy2 */
    [6] = 4u << 10,			/* btlazy2 */
    [7] = 2u << 10,			/* btopt */
    [8] = 1u << 10,   [9] = 1u << 10,	/* btultra, btultra2 */
};
/* Growth after a block that compressed below 1/ZC_CHEAP_RATIO of its input. */
#define ZC_CHEAP_RATIO 32u
#define ZC_GROW_MAX    16u
#define ZC_BLOCK_MAX   (128u << 10)

static __thread ZSTD_CCtx *tls_cctx;
/* The bulk lane's contexts: one per sliced run the lcore holds (a parked run keeps its frame
 * in its own), and a whole-buffer run on the same lcore (inline, between quanta) must not
 * disturb them. */
static __thread ZSTD_CCtx *tls_slice_cctx[DP_SLICE_RUNS_MAX];
static __thread uint8_t tls_slice_busy; /* bit i: tls_slice_cctx[i] holds a run */

/* Progress of one buffer: the output buffer and how much of it is written, and the blocks. */
struct zc_slice {
	struct dp_buf *out;
	size_t out_pos;
	uint32_t block_end; /* input offset where the current block ends */
	uint32_t block;	    /* its size */
	uint32_t base;	    /* the level's block size */
	uint8_t slot;	    /* sliced runs: 1 + index in tls_slice_cctx, 0 before the first */
};

/* The block after the current one, which compressed to @p out bytes. */
static inline uint32_t
next_block(const struct zc_slice *z, size_t out)
{
	uint32_t b = z->block * 2;

	if (out * ZC_CHEAP_RATIO >= z->block)
		return z->base;
	return b > z->base * ZC_GROW_MAX || b > ZC_BLOCK_MAX ? z->block : b;
}

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
 * Compress input bytes [*pos, *pos + budget) (at least up to the current block's end) of x->buf
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
		z->base = zc_block_by_strategy[ZSTD_getCParams(c->level, len, 0).strategy];
		z->block = z->base;
		z->block_end = z->block < len ? z->block : len;
		/* Parameters stick to the context; setting them is a few stores. */
		ZSTD_CCtx_reset(*ccp, ZSTD_reset_session_only);
		ZSTD_CCtx_setParameter(*ccp, ZSTD_c_compressionLevel, c->level);
		ZSTD_CCtx_setParameter(*ccp, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(*ccp, ZSTD_c_stableInBuffer, 1);
		ZSTD_CCtx_setPledgedSrcSize(*ccp, len);
	}
	do {
		uint32_t end = z->block_end;
		ZSTD_EndDirective mode = end >= len ? ZSTD_e_end : ZSTD_e_flush;
		size_t out0 = z->out_pos;
		ZSTD_inBuffer in;
		ZSTD_outBuffer ob;
		size_t r;

		/* Stable input: the same src every call, only size grows; pos is libzstd's. */
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
		z->block = next_block(z, z->out_pos - out0);
		z->block_end = len - end > z->block ? end + z->block : len;
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
_Static_assert(sizeof(struct zc_slice) <= DP_SLICE_MAX, "zstd_compress progress fits a slice");
static int
zc_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	struct zc_slice *z = sl;
	int rc;

	if (z->slot == 0) {
		z->slot = dp_slice_slot_take(&tls_slice_busy);
		if (unlikely(z->slot == 0))
			return dp_exec_fail(x, DP_INTERNAL, "more than %u sliced runs at once",
					    DP_SLICE_RUNS_MAX);
	}
	rc = zc_run(conf, &tls_slice_cctx[z->slot - 1], x, z, pos, budget);
	if (rc != DP_PENDING) {
		dp_slice_slot_give(&tls_slice_busy, &z->slot);
	}
	return rc;
}

static void
zc_slice_abort(const void *conf, void *sl)
{
	struct zc_slice *z = sl;

	(void)conf;
	if (z->slot == 0)
		return;
	zc_release(tls_slice_cctx[z->slot - 1], z);
	dp_slice_slot_give(&tls_slice_busy, &z->slot);
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

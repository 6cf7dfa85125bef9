/*
 * bench_nodes: the cost of the node framework, per node, against the same library call in a
 * tight loop.
 *
 * For each node and each size (one 10 ms frame of 48 kHz mono f32 = 1920 bytes, and 1 MiB),
 * two loops run interleaved, five rounds each, and the median time per buffer is reported:
 *   corepipe: what a worker does per buffer: take a pool buffer, copy the input in (the CQ
 *             thread's copy), dp_pipeline_run() on a one-node pipeline (with a stream state
 *             for stateful nodes, carried across buffers as in a stream), free the output;
 *   direct:   the same memory traffic without the framework: the input copied into a buffer
 *             from the same pools, the library call the node makes (libsoxr soxr_process,
 *             libsodium crypto_hash_sha256, libzstd ZSTD_compress2 (at the node's level) /
 *             ZSTD_decompressDCtx,
 *             DPDK rte_hash_crc) with its output in another pool buffer of the size the node
 *             would take, both freed. So both sides touch the same (rotating) buffers and the
 *             difference is the runner, the node's checks, annotations and buffer hand-offs.
 * ratio = direct / corepipe: 1.00 means the framework costs nothing; the goal is >= 0.95.
 * Nodes that are their own loop (gain, convert, channels, meter, vad) have no library call to
 * compare with; their absolute cost is reported.
 *
 * Runs in-process with the EAL (no hugepages); no server needed.
 */
#include "perf/common.h"
#include "perf/node_harness.h"

#include <inttypes.h>
#include <math.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_hash_crc.h>
#include <sodium.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define ROUNDS 5

static struct dp_pools *g_pools;
static uint8_t *g_in;
static size_t g_len;
static uint64_t g_iters;

/* ---- the corepipe side: perf/node_harness.h (shared with perf/micro/micro_nodes.c) ---- */

static struct dp_pipeline *
compile(const char *type, const char *k, const char *v)
{
	return nh_compile(type, k ? 1 : 0, &k, &v);
}

static double
run_corepipe(const struct dp_pipeline *p, struct dp_stream *st, struct dp_format f)
{
	return nh_run(g_pools, p, st, f, g_in, g_len, g_iters);
}

/* ---- the direct side ---- */

enum direct { D_NONE, D_SOXR, D_SHA256, D_ZC, D_ZD, D_CRC };

static soxr_t g_soxr;
static ZSTD_CCtx *g_cctx;
static ZSTD_DCtx *g_dctx;
static int g_zlevel = 3; /* D_ZC's level: the node's */

static double
run_direct(enum direct d)
{
	uint64_t t0 = rte_rdtsc();
	volatile uint32_t sink = 0;

	for (uint64_t i = 0; i < g_iters; i++) {
		struct dp_buf *in = dp_pools_get(g_pools, (uint32_t)g_len), *ob = NULL;
		uint8_t *g_work = in->data, *g_out;

		memcpy(g_work, g_in, g_len);
		switch (d) {
		case D_SOXR:
			ob = dp_pools_get(g_pools, (uint32_t)(g_len / 3 + 64 * 4));
			break;
		case D_ZC:
			ob = dp_pools_get(g_pools, (uint32_t)ZSTD_compressBound(g_len));
			break;
		case D_ZD:
			ob = dp_pools_get(g_pools,
					  (uint32_t)ZSTD_getFrameContentSize(g_work, g_len));
			break;
		default:
			break;
		}
		g_out = ob ? ob->data : NULL;
		switch (d) {
		case D_SOXR: {
			size_t idone, odone, n = g_len / 4;

			soxr_process(g_soxr, g_work, n, &idone, g_out, ob->cap / 4, &odone);
			sink += (uint32_t)odone;
			break;
		}
		case D_SHA256: {
			unsigned char md[32];
			char hex[65];

			crypto_hash_sha256(md, g_work, g_len);
			sodium_bin2hex(hex, sizeof(hex), md, sizeof(md));
			sink += (uint8_t)hex[0];
			break;
		}
		case D_ZC:
			ZSTD_CCtx_setParameter(g_cctx, ZSTD_c_compressionLevel, g_zlevel);
			ZSTD_CCtx_setParameter(g_cctx, ZSTD_c_checksumFlag, 1);
			sink += (uint32_t)ZSTD_compress2(g_cctx, g_out, ob->cap, g_work, g_len);
			break;
		case D_ZD:
			sink +=
			    (uint32_t)ZSTD_decompressDCtx(g_dctx, g_out, ob->cap, g_work, g_len);
			break;
		case D_CRC: {
			char hex[9];

			snprintf(hex, sizeof(hex), "%08x",
				 rte_hash_crc(g_work, (uint32_t)g_len, 0));
			sink += (uint8_t)hex[0];
			break;
		}
		default:
			break;
		}
		dp_buf_free(ob);
		dp_buf_free(in);
	}
	(void)sink;
	return (double)(rte_rdtsc() - t0) / (double)g_iters;
}

static void
bench(const char *label, const char *type, const char *k, const char *v, enum direct d, size_t len,
      const uint8_t *input, struct dp_format f)
{
	struct dp_pipeline *p = compile(type, k, v);
	struct dp_stream *st = nh_stream(p, &f);
	double cp[ROUNDS], dr[ROUNDS], hz = (double)rte_get_tsc_hz();

	g_len = len;
	memcpy(g_in, input, len);
	g_iters = len > 100000 ? 40 : 20000;
	if (d == D_ZC && k != NULL) {
		g_zlevel = atoi(v);
		if (g_zlevel >= 19)
			g_iters = len > 100000 ? 1 : 20;
	}
	if (d == D_SOXR) {
		soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
		soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
		soxr_runtime_spec_t rt = soxr_runtime_spec(1);

		io.flags |= SOXR_NO_DITHER;
		g_soxr = soxr_create(48000, 16000, 1, NULL, &io, &q, &rt);
	}
	/* Warm both (caches, lazily created contexts), then interleave the rounds. */
	run_corepipe(p, st, f);
	run_direct(d);
	for (int r = 0; r < ROUNDS; r++) {
		cp[r] = run_corepipe(p, st, f);
		dr[r] = d == D_NONE ? 0 : run_direct(d);
	}
	qsort(cp, ROUNDS, sizeof(double), cmp_double);
	qsort(dr, ROUNDS, sizeof(double), cmp_double);
	if (d == D_NONE)
		printf("| %-16s | %9zu | %12.2f | %12s | %6s |\n", label, len, cp[2] / hz * 1e6,
		       "—", "—");
	else
		printf("| %-16s | %9zu | %12.2f | %12.2f | %6.3f |\n", label, len, cp[2] / hz * 1e6,
		       dr[2] / hz * 1e6, dr[2] / cp[2]);
	nh_stream_free(st);
	if (g_soxr != NULL) {
		soxr_delete(g_soxr);
		g_soxr = NULL;
	}
	dp_pipeline_unref(p);
}

int
main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
		       "-m",	"512",	     "-l",	 "0",		"--log-level",
		       "1"};
	struct dp_pool_conf pc = {.n_classes = 3,
				  .classes = {{8192, 64}, {1u << 20, 16}, {4u << 20, 8}}};
	const size_t frame = 1920, mib = 1u << 20;
	struct dp_format f32 = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_F32LE, .channels = 1, .rate = 48000};
	struct dp_format st32 = f32, bytes = {.kind = DP_KIND_BYTES};
	uint8_t *sig = malloc(mib), *text = malloc(mib), *z = malloc(mib + 4096);
	size_t zf, zm;

	(void)argc;
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0 || sodium_init() < 0)
		return 1;
	g_pools = dp_pools_create("bn", &pc, SOCKET_ID_ANY);
	g_in = malloc(4u << 20);
	g_cctx = ZSTD_createCCtx();
	g_dctx = ZSTD_createDCtx();
	nh_fill_tone(sig, mib / 4);
	nh_fill_text(text, mib);
	st32.channels = 2;
	printf("command: %s (one run; median of %d interleaved rounds; us per buffer)\n\n", argv[0],
	       ROUNDS);
	printf("| node             |     bytes | corepipe us  | library us   | ratio  |\n");
	printf("|---|---|---|---|---|\n");
	for (int s = 0; s < 2; s++) {
		size_t len = s ? mib : frame;

		bench("resample 48k>16k", "resample", "rate", "16000", D_SOXR, len, sig, f32);
		bench("sha256", "sha256", NULL, NULL, D_SHA256, len, text, bytes);
		bench("crc32c", "crc32c", NULL, NULL, D_CRC, len, text, bytes);
		bench("zstd_compress", "zstd_compress", NULL, NULL, D_ZC, len, text, bytes);
		/* The block ends by level (zstd_compress.c): level 1 (none), 19 (1 KiB blocks). */
		bench("zstd_compress 1", "zstd_compress", "level", "1", D_ZC, len, text, bytes);
		bench("zstd_compress 3", "zstd_compress", "level", "3", D_ZC, len, sig, bytes);
		bench("zstd_compress 19", "zstd_compress", "level", "19", D_ZC, len, sig, bytes);
		g_zlevel = 3;
		{
			size_t n = ZSTD_compress(z, mib + 4096, text, len, 3);

			if (s == 0)
				zf = n;
			else
				zm = n;
			bench("zstd_decompress", "zstd_decompress", "max_bytes", "4194304", D_ZD, n,
			      z, bytes);
		}
		bench("gain", "gain", "db", "-6", D_NONE, len, sig, f32);
		bench("convert f32>s16", "convert", "format", "s16le", D_NONE, len, sig, f32);
		bench("channels 2>1", "channels", "count", "1", D_NONE, len, sig, st32);
		bench("meter", "meter", NULL, NULL, D_NONE, len, sig, f32);
		bench("vad", "vad", NULL, NULL, D_NONE, len, sig, f32);
	}
	printf("\n(zstd_decompress input: the %zu- and %zu-byte zstd frames of the text buffers; "
	       "its bytes column is the compressed size)\n",
	       zf, zm);
	return 0;
}

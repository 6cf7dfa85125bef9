/*
 * micro_nodes: TSC cycles per frame for every node type in the node table, the per-frame view of
 * perf/bench_nodes.c (which compares a fixed list of nodes against their library calls in
 * microseconds). Both run the same loop, perf/node_harness.h: take a pool buffer, copy the
 * frame in, dp_pipeline_run() a one-node pipeline (stateful nodes carry a stream state from
 * frame to frame, set up with dp_stream_init as the control thread does), free the output.
 *
 * Node types come from the node table (dp_node_table_count/dp_node_table_at), so a new node
 * shows up here without editing this file; test-only types are not listed (this tool never
 * calls dp_node_table_enable_test). Inputs:
 *   audio-only nodes: one 10 ms frame of 48 kHz f32 (480 samples a channel: mono, or stereo
 *                     for channels count=1);
 *   nodes that take bytes: 1 KiB and 64 KiB of log-like text (zstd_decompress: the zstd
 *                     frames of those, so its bytes column is the compressed size).
 * Required parameters take the values in k_params (a node with a required parameter not
 * listed there is reported as skipped).
 */
#include "dataplane/node_table.h"
#include "perf/micro/micro.h"
#include "perf/node_harness.h"

#include <zstd.h>

#define MAX_CASES     (2 * DP_NODE_TYPES_MAX)
#define ROUND_TARGET  0.01 /* seconds per round and case */
#define AUDIO_SAMPLES 480  /* 10 ms at 48 kHz */

/* Values for required parameters (benchmark inputs, not defaults). */
static const struct {
	const char *type, *key, *val;
	unsigned channels; /* audio input channels for this node */
} k_params[] = {
    {"resample", "rate", "16000", 1},
    {"convert", "format", "s16le", 1},
    {"channels", "count", "1", 2},
    {"gain", "db", "-6", 1},
};

struct node_case {
	char label[48];
	char input[40];
	struct dp_pipeline *p;
	struct dp_stream *st;
	struct dp_format f;
	const uint8_t *in;
	size_t len;
	uint64_t iters;
};

static struct dp_pools *g_pools;

static double
run_case(void *arg)
{
	struct node_case *c = arg;

	return nh_run(g_pools, c->p, c->st, c->f, c->in, c->len, c->iters);
}

/* Parameters for @p t; returns how many, or -1 naming the missing one in @p missing. */
static int
params_for(const struct dp_node_type *t, const char **keys, const char **vals, unsigned *chans,
	   const char **missing)
{
	int n = 0;

	*chans = 1;
	for (unsigned i = 0; i < sizeof(k_params) / sizeof(k_params[0]); i++)
		if (strcmp(k_params[i].type, t->name) == 0)
			*chans = k_params[i].channels;
	for (unsigned j = 0; j < t->n_params; j++) {
		const char *v = NULL;

		if (!t->params[j].required)
			continue;
		for (unsigned i = 0; i < sizeof(k_params) / sizeof(k_params[0]); i++)
			if (strcmp(k_params[i].type, t->name) == 0 &&
			    strcmp(k_params[i].key, t->params[j].name) == 0)
				v = k_params[i].val;
		if (v == NULL || n == 8) {
			*missing = t->params[j].name;
			return -1;
		}
		keys[n] = t->params[j].name;
		vals[n++] = v;
	}
	return n;
}

/* Set up case @p c for pipeline @p p on input @p in, with iterations sized to the target. */
static void
prepare(struct node_case *c, struct dp_pipeline *p, struct dp_format f, const uint8_t *in,
	size_t len)
{
	double est;

	c->p = p;
	c->f = f;
	c->in = in;
	c->len = len;
	c->st = nh_stream(p, &f);
	est = nh_run(g_pools, p, c->st, f, in, len, 10);
	est = ROUND_TARGET * (double)rte_get_tsc_hz() / (est > 1 ? est : 1);
	c->iters = est < 10 ? 10 : est > 20000 ? 20000 : (uint64_t)est;
}

int
main(int argc, char **argv)
{
	static uint8_t tone[AUDIO_SAMPLES * 2 * 4], text[2][64 << 10], ztext[2][(64 << 10) + 512];
	static const size_t text_len[2] = {1 << 10, 64 << 10};
	static struct node_case nc[MAX_CASES];
	struct micro_case mc[MAX_CASES];
	struct dp_pool_conf pc = {.n_classes = 2, .classes = {{8192, 64}, {1u << 18, 16}}};
	size_t zlen[2];
	unsigned n = 0;
	double hz;

	micro_init(argc, argv,
		   "micro_nodes: TSC cycles per frame, every node type in the node table");
	hz = (double)rte_get_tsc_hz();
	g_pools = dp_pools_create("mn", &pc, SOCKET_ID_ANY);
	if (g_pools == NULL)
		return 1;
	nh_fill_tone(tone, AUDIO_SAMPLES * 2);
	for (int s = 0; s < 2; s++) {
		nh_fill_text(text[s], text_len[s]);
		zlen[s] = ZSTD_compress(ztext[s], sizeof(ztext[s]), text[s], text_len[s], 3);
		if (ZSTD_isError(zlen[s]))
			return 1;
	}
	for (unsigned i = 0; i < dp_node_table_count() && n + 2 <= MAX_CASES; i++) {
		const struct dp_node_type *t = dp_node_table_at(i);
		const char *keys[8], *vals[8], *missing = NULL;
		unsigned chans;
		int np;

		np = params_for(t, keys, vals, &chans, &missing);
		if (np < 0) {
			printf("skipped: %s (required parameter %s has no benchmark value)\n",
			       t->name, missing);
			continue;
		}
		if (t->accepts & DP_ACCEPT_BYTES) {
			int zd = strcmp(t->name, "zstd_decompress") == 0;

			for (int s = 0; s < 2; s++) {
				struct node_case *c = &nc[n];
				struct dp_format f = {.kind = DP_KIND_BYTES};

				prepare(c, nh_compile(t->name, (unsigned)np, keys, vals), f,
					zd ? ztext[s] : text[s], zd ? zlen[s] : text_len[s]);
				snprintf(c->input, sizeof(c->input), "%s%zu KiB text%s",
					 zd ? "zstd of " : "", text_len[s] >> 10, "");
				snprintf(c->label, sizeof(c->label), "%s", t->name);
				mc[n] = (struct micro_case){c->label, run_case, c, {0}};
				n++;
			}
		} else if (t->accepts & DP_ACCEPT_F32) {
			struct node_case *c = &nc[n];
			struct dp_format f = {.kind = DP_KIND_AUDIO,
					      .fmt = DP_FMT_F32LE,
					      .channels = (uint16_t)chans,
					      .rate = 48000};

			prepare(c, nh_compile(t->name, (unsigned)np, keys, vals), f, tone,
				(size_t)AUDIO_SAMPLES * chans * 4);
			snprintf(c->input, sizeof(c->input), "10 ms f32 48 kHz %s",
				 chans == 1 ? "mono" : "stereo");
			snprintf(c->label, sizeof(c->label), "%s", t->name);
			for (int k = 0; k < np; k++)
				snprintf(c->label + strlen(c->label),
					 sizeof(c->label) - strlen(c->label), " %s=%s", keys[k],
					 vals[k]);
			mc[n] = (struct micro_case){c->label, run_case, c, {0}};
			n++;
		}
	}
	micro_measure(mc, n);
	printf("\nper frame: pool buffer + copy in + dp_pipeline_run (one node) + free\n\n");
	printf("| %-28s | %-24s | %8s | %12s | %10s | %8s | %-19s |\n", "node", "input", "bytes",
	       "cycles/frame", "us/frame", "cyc/byte", "min..max cycles");
	printf("|---|---|---:|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < n; i++) {
		double lo = NAN, hi = NAN, m = micro_median(mc[i].v, MICRO_ROUNDS, &lo, &hi);

		printf("| %-28s | %-24s | %8zu | %12.0f | %10.2f | %8.2f | %8.0f..%-9.0f |\n",
		       nc[i].label, nc[i].input, nc[i].len, m, m / hz * 1e6, m / (double)nc[i].len,
		       lo, hi);
	}
	for (unsigned i = 0; i < n; i++) {
		nh_stream_free(nc[i].st);
		dp_pipeline_unref(nc[i].p);
	}
	dp_pools_destroy(g_pools);
	rte_eal_cleanup();
	return 0;
}

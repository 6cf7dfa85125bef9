/*
 * bench_worker: cycles per request through one worker iteration, with the per-pipeline metrics
 * on and off, side by side.
 *
 * One thread plays all three roles on one core, so what is measured is the work itself, not
 * hand-off latency: submit a burst of 32 Execute(passthrough, 64 B) descriptors (pipeline by
 * reference, as the gRPC path does) to the worker's ingress ring, run dp_worker_poll_once(),
 * take the completions back and free them. Rounds alternate metrics on (the worker's metrics
 * block) and off (the block detached), nine rounds each; the medians are compared.
 *
 * Runs in-process with the EAL (no hugepages); no server needed.
 */
#include "dataplane/dataplane.h"
#include "perf/common.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST  32
#define ROUNDS 9
#define ITERS  20000

static struct dp_link *g_link;

static double
run(struct dp_dataplane *dp, struct dp_worker *w, struct dp_pipeline *p)
{
	struct dp_req *reqs[BURST];
	uint64_t t0 = rte_rdtsc();

	for (unsigned it = 0; it < ITERS; it++) {
		unsigned n;

		for (unsigned i = 0; i < BURST; i++) {
			if (dp_req_alloc(dp, 64, &reqs[i]) != 0)
				abort();
			memset(reqs[i]->buf->data, 'x', 64);
			reqs[i]->fmt.kind = DP_KIND_BYTES;
			dp_pipeline_ref(p);
			reqs[i]->pipeline = p;
			if (dp_link_submit(g_link, w, reqs[i]) != 0)
				abort();
		}
		if (dp_worker_poll(w) != BURST)
			abort();
		dp_rcu_quiescent_state();
		n = dp_link_collect(g_link, reqs, BURST);
		for (unsigned i = 0; i < n; i++) {
			if (reqs[i]->status != DP_OK)
				abort();
			dp_req_free(dp, reqs[i]);
		}
	}
	return (double)(rte_rdtsc() - t0) / ((double)ITERS * BURST);
}

int
main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
		       "-m",	"256",	     "-l",	 "0",		"--log-level",
		       "1"};
	static struct dp_dataplane dp;
	static struct dp_worker w;
	struct dp_worker_conf wc = {.idle = DP_IDLE_SPIN, .ring_size = 256};
	struct dp_pool_conf pc = {.n_classes = 1, .classes = {{512, 1024}}};
	struct dp_node_spec ns = {.type = "passthrough"};
	struct dp_spec spec = {.name = "passthrough", .n_nodes = 1, .nodes = &ns};
	struct dp_registry_info info;
	struct dp_pipeline *p;
	struct dp_metrics *met;
	struct dp_err err;
	double on[ROUNDS], off[ROUNDS];

	(void)argc;
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0)
		return 1;
	dp.pools = dp_pools_create("bw", &pc, SOCKET_ID_ANY);
	dp.req_pool = rte_mempool_create("bw_req", 512, sizeof(struct dp_req), 64, 0, NULL, NULL,
					 NULL, NULL, SOCKET_ID_ANY, 0);
	dp.reg = dp_registry_create();
	dp.conf.worker = wc;
	dp.conf.max_in_flight = 512;
	dp.tsc_hz = rte_get_tsc_hz();
	if (dp.pools == NULL || dp.req_pool == NULL || dp.reg == NULL ||
	    dp_worker_init(&w, 0, 0, &wc, dp.reg, dp.pools) != 0)
		return 1;
	g_link = dp_link_create(&w, 0);
	if (g_link == NULL)
		return 1;
	dp.workers[0] = &w;
	dp.n_workers = 1;
	urcu_qsbr_register_thread();
	p = dp_pipeline_compile(&spec, 4, &err);
	dp_pipeline_ref(p);
	if (p == NULL || dp_registry_put(dp.reg, p, &info) != 0)
		return 1;
	met = w.lc.met;
	run(&dp, &w, p); /* warm */
	for (int r = 0; r < ROUNDS; r++) {
		w.lc.met = met;
		on[r] = run(&dp, &w, p);
		w.lc.met = NULL;
		off[r] = run(&dp, &w, p);
	}
	w.lc.met = met;
	qsort(on, ROUNDS, sizeof(double), cmp_double);
	qsort(off, ROUNDS, sizeof(double), cmp_double);
	printf("command: %s (one run; median of %d interleaved rounds of %d x %d requests)\n",
	       argv[0], ROUNDS, ITERS, BURST);
	printf(
	    "submit + worker iteration + completion, Execute(passthrough, 64 B), per request:\n");
	printf("  metrics off: %.1f cycles (%.1f ns)\n", off[ROUNDS / 2],
	       off[ROUNDS / 2] * 1e9 / (double)dp.tsc_hz);
	printf("  metrics on:  %.1f cycles (%.1f ns)\n", on[ROUNDS / 2],
	       on[ROUNDS / 2] * 1e9 / (double)dp.tsc_hz);
	printf("  cost of metrics: %+.1f cycles per request (%+.1f%% of this loop)\n",
	       on[ROUNDS / 2] - off[ROUNDS / 2], 100.0 * (on[ROUNDS / 2] / off[ROUNDS / 2] - 1));
	dp_pipeline_unref(p);
	return 0;
}

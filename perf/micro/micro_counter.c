/*
 * micro_counter: TSC cycles per counter increment, the project's per-worker statistics pattern
 * against a shared atomic counter.
 *
 * per-worker:  each thread owns a cache-line-aligned counter and adds with a relaxed load and a
 *              relaxed store (DP_MET_ADD in dataplane/metrics.h: single writer, readers use
 *              relaxed loads, no read-modify-write).
 * shared relaxed / seq_cst: one counter for all threads, __atomic_fetch_add with
 *              __ATOMIC_RELAXED or __ATOMIC_SEQ_CST (a locked add on x86 either way; seq_cst
 *              also forbids the compiler from moving other accesses across it).
 * false sharing (reference): per-worker counters that share one cache line.
 *
 * One thread runs on lcore 0; two threads run on lcores 0 and 1 (CPUs 0 and 1), started
 * together, and the figure is wall cycles / increments per thread, so a counter that bounces
 * a cache line between the CPUs shows as more cycles per increment.
 */
#include "dataplane/metrics.h"
#include "perf/micro/micro.h"

#define INCS (1u << 22)

enum kind { PER_WORKER, FALSE_SHARED, SHARED_RELAXED, SHARED_SEQ_CST };

struct counter_case {
	enum kind kind;
	int threads;
};

static struct {
	alignas(RTE_CACHE_LINE_SIZE) uint64_t own[2][RTE_CACHE_LINE_SIZE / sizeof(uint64_t)];
	alignas(RTE_CACHE_LINE_SIZE) uint64_t adjacent[2];
	alignas(RTE_CACHE_LINE_SIZE) uint64_t shared;
} g_c;

static int g_go; /* release by the main lcore; acquire in helper() */

static void
count(enum kind k, unsigned self)
{
	uint64_t *own = &g_c.own[self][0], *adj = &g_c.adjacent[self];

	switch (k) {
	case PER_WORKER:
		for (unsigned i = 0; i < INCS; i++)
			DP_MET_ADD(*own, 1);
		break;
	case FALSE_SHARED:
		for (unsigned i = 0; i < INCS; i++)
			DP_MET_ADD(*adj, 1);
		break;
	case SHARED_RELAXED:
		for (unsigned i = 0; i < INCS; i++)
			__atomic_fetch_add(&g_c.shared, 1, __ATOMIC_RELAXED);
		break;
	case SHARED_SEQ_CST:
		for (unsigned i = 0; i < INCS; i++)
			__atomic_fetch_add(&g_c.shared, 1, __ATOMIC_SEQ_CST);
		break;
	}
}

static int
helper(void *arg)
{
	const struct counter_case *c = arg;
	uint64_t dl = micro_deadline();

	/* Acquire: pairs with the release of g_go in run_case(). */
	while (!__atomic_load_n(&g_go, __ATOMIC_ACQUIRE))
		if (rte_rdtsc() > dl)
			return -1;
	count(c->kind, 1);
	return 0;
}

static uint64_t
total(enum kind k)
{
	switch (k) {
	case PER_WORKER:
		return g_c.own[0][0] + g_c.own[1][0];
	case FALSE_SHARED:
		return g_c.adjacent[0] + g_c.adjacent[1];
	default:
		return g_c.shared;
	}
}

static double
run_case(void *arg)
{
	const struct counter_case *c = arg;
	unsigned lc = 0;
	uint64_t t0;
	int rc = 0;

	memset(&g_c, 0, sizeof(g_c));
	__atomic_store_n(&g_go, 0, __ATOMIC_RELAXED);
	if (c->threads == 2) {
		lc = micro_helper_lcore();
		if (rte_eal_remote_launch(helper, (void *)c, lc) != 0)
			return NAN;
	}
	t0 = rte_rdtsc();
	/* Release: pairs with the acquire in helper(). */
	__atomic_store_n(&g_go, 1, __ATOMIC_RELEASE);
	count(c->kind, 0);
	if (c->threads == 2)
		rc = rte_eal_wait_lcore(lc);
	t0 = rte_rdtsc() - t0;
	/* Every increment must have landed, or the figure measures a broken counter. */
	if (rc != 0 || total(c->kind) != (uint64_t)INCS * (unsigned)c->threads)
		return NAN;
	return (double)t0 / INCS;
}

int
main(int argc, char **argv)
{
	static struct counter_case one[] = {
	    {PER_WORKER, 1}, {SHARED_RELAXED, 1}, {SHARED_SEQ_CST, 1}};
	static struct counter_case two[] = {
	    {PER_WORKER, 2}, {SHARED_RELAXED, 2}, {SHARED_SEQ_CST, 2}, {FALSE_SHARED, 2}};
	struct micro_case m1[] = {
	    {"per-worker (relaxed load+store, DP_MET_ADD)", run_case, &one[0], {0}},
	    {"shared, relaxed fetch_add", run_case, &one[1], {0}},
	    {"shared, seq_cst fetch_add", run_case, &one[2], {0}},
	};
	struct micro_case m2[] = {
	    {"per-worker (own cache line each)", run_case, &two[0], {0}},
	    {"shared, relaxed fetch_add", run_case, &two[1], {0}},
	    {"shared, seq_cst fetch_add", run_case, &two[2], {0}},
	    {"per-worker, same cache line (false sharing)", run_case, &two[3], {0}},
	};

	micro_init(argc, argv, "micro_counter: TSC cycles per counter increment");
	micro_run("one thread (lcore 0, CPU 0)", m1, 3, "inc");
	micro_run("two threads (lcores 0 and 1, CPUs 0 and 1), cycles per increment per thread", m2,
		  4, "inc");
	rte_eal_cleanup();
	return 0;
}

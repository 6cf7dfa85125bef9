/*
 * micro_ring: TSC cycles per object handed off through a DPDK rte_ring, the primitive between
 * the CQ thread and the workers (dataplane/worker.h).
 *
 * Producer/consumer sync modes: SP/SC (one producer, one consumer: plain loads and stores
 * plus the ring's acquire/release on head and tail), MP/SC (the producer side takes a CAS on
 * the head, as the ingress ring of a worker fed by several threads would), MP/MC for
 * reference. Each is run with single-object calls (rte_ring_sp_enqueue, ...) and with bursts
 * of 32 (rte_ring_sp_enqueue_burst, ...).
 *
 * same core:  one thread enqueues then dequeues (1 or 32 objects), repeatedly: the cost of the
 *             ring operations themselves, with every cache line already local.
 * cross core: a producer on lcore 1 (CPU 1) enqueues, the consumer on lcore 0 (CPU 0)
 *             dequeues; cycles are the consumer's from start to the last object, divided by
 *             the objects. Each hand-off moves the ring's cache lines between the CPUs, which
 *             bursts amortise.
 */
#include "perf/micro/micro.h"

#include <rte_ring.h>

#define RING_SIZE  1024
#define BURST	   32
#define SAME_OPS   (1u << 18)
#define CROSS_OBJS (1u << 18)

enum mode { SPSC, MPSC, MPMC };

struct ring_case {
	struct rte_ring *r;
	enum mode mode;
	unsigned burst; /* 1: single-object calls */
	int cross;
};

/* Hand-off state for the cross-core producer. */
static int g_go;	/* release by the consumer; acquire in producer() */
static int g_prod_fail; /* producer hit the deadline */

static inline unsigned
enq(struct rte_ring *r, enum mode m, void **objs, unsigned n)
{
	if (n == 1) {
		if (m == SPSC)
			return rte_ring_sp_enqueue(r, objs[0]) == 0;
		return rte_ring_mp_enqueue(r, objs[0]) == 0;
	}
	if (m == SPSC)
		return rte_ring_sp_enqueue_burst(r, objs, n, NULL);
	return rte_ring_mp_enqueue_burst(r, objs, n, NULL);
}

static inline unsigned
deq(struct rte_ring *r, enum mode m, void **objs, unsigned n)
{
	if (n == 1) {
		if (m == MPMC)
			return rte_ring_mc_dequeue(r, &objs[0]) == 0;
		return rte_ring_sc_dequeue(r, &objs[0]) == 0;
	}
	if (m == MPMC)
		return rte_ring_mc_dequeue_burst(r, objs, n, NULL);
	return rte_ring_sc_dequeue_burst(r, objs, n, NULL);
}

static int
producer(void *arg)
{
	struct ring_case *c = arg;
	void *objs[BURST];
	uint64_t dl = micro_deadline();
	unsigned sent = 0;

	for (unsigned i = 0; i < BURST; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	/* Acquire: pairs with the consumer's release of g_go once it has started its clock. */
	while (!__atomic_load_n(&g_go, __ATOMIC_ACQUIRE))
		if (rte_rdtsc() > dl)
			goto fail;
	while (sent < CROSS_OBJS) {
		unsigned want = CROSS_OBJS - sent < c->burst ? CROSS_OBJS - sent : c->burst;

		sent += enq(c->r, c->mode, objs, want);
		if (unlikely((sent & 0xfff) == 0 && rte_rdtsc() > dl))
			goto fail;
	}
	return 0;
fail:
	__atomic_store_n(&g_prod_fail, 1, __ATOMIC_RELAXED);
	return -1;
}

static double
run_same(struct ring_case *c)
{
	void *objs[BURST];
	unsigned n = c->burst, ops = SAME_OPS / n;
	uint64_t t0;

	for (unsigned i = 0; i < BURST; i++)
		objs[i] = (void *)(uintptr_t)(i + 1);
	t0 = rte_rdtsc();
	for (unsigned i = 0; i < ops; i++) {
		if (enq(c->r, c->mode, objs, n) != n || deq(c->r, c->mode, objs, n) != n)
			return NAN;
	}
	return (double)(rte_rdtsc() - t0) / ((double)ops * n);
}

static double
run_cross(struct ring_case *c)
{
	unsigned lc = micro_helper_lcore(), got = 0;
	void *objs[BURST];
	uint64_t t0, dl;

	__atomic_store_n(&g_go, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&g_prod_fail, 0, __ATOMIC_RELAXED);
	if (rte_eal_remote_launch(producer, c, lc) != 0)
		return NAN;
	dl = micro_deadline();
	t0 = rte_rdtsc();
	/* Release: pairs with the acquire in producer(). */
	__atomic_store_n(&g_go, 1, __ATOMIC_RELEASE);
	while (got < CROSS_OBJS) {
		got += deq(c->r, c->mode, objs, c->burst);
		if (unlikely(rte_rdtsc() > dl))
			break;
	}
	t0 = rte_rdtsc() - t0;
	rte_eal_wait_lcore(lc);
	if (got < CROSS_OBJS || g_prod_fail) {
		/* Drain what a timed-out round left behind for the next one. */
		while (deq(c->r, c->mode, objs, BURST) != 0)
			;
		return NAN;
	}
	return (double)t0 / CROSS_OBJS;
}

static double
run_case(void *arg)
{
	struct ring_case *c = arg;

	return c->cross ? run_cross(c) : run_same(c);
}

int
main(int argc, char **argv)
{
	static const char *const mname[] = {"SP/SC", "MP/SC", "MP/MC"};
	struct ring_case rc[2][6];
	struct micro_case mc[2][6];
	char labels[2][6][64];
	struct rte_ring *r;

	micro_init(argc, argv,
		   "micro_ring: rte_ring hand-off, TSC cycles per object (enqueue + dequeue)");
	/* Flags 0: the sync mode is chosen per call (rte_ring_sp_* / _mp_* / _sc_* / _mc_*). */
	r = rte_ring_create("micro_ring", RING_SIZE, SOCKET_ID_ANY, 0);
	if (r == NULL)
		return 1;
	for (int cross = 0; cross < 2; cross++) {
		for (int i = 0; i < 6; i++) {
			struct ring_case *c = &rc[cross][i];

			c->r = r;
			c->mode = (enum mode)(i / 2);
			c->burst = i % 2 ? BURST : 1;
			c->cross = cross;
			snprintf(labels[cross][i], sizeof(labels[cross][i]), "%s %s, %s",
				 mname[i / 2], c->burst == 1 ? "single" : "burst 32",
				 cross ? "cross core (CPU1 -> CPU0)" : "same core");
			mc[cross][i] = (struct micro_case){labels[cross][i], run_case, c, {0}};
		}
	}
	micro_run("same core: one thread enqueues then dequeues", mc[0], 6, "obj");
	micro_run("cross core: producer on lcore 1 (CPU 1), consumer on lcore 0 (CPU 0)", mc[1], 6,
		  "obj");
	rte_ring_free(r);
	rte_eal_cleanup();
	return 0;
}

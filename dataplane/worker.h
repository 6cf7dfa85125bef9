/**
 * @file
 * Worker lcores: one polling, run-to-completion loop per lcore.
 *
 * Each iteration takes a burst of descriptors from the worker's ingress ring (single producer:
 * the control plane's submit thread; single consumer: this worker), looks each pipeline up in
 * the registry, runs its nodes, puts the descriptors on the worker's completion ring (single
 * producer: this worker; single consumer: the responder), wakes the responder's event count,
 * reports an RCU quiescent state and applies the idle policy.
 *
 * Idle policy: `spin` polls forever; `sleep` sleeps as soon as the ring is empty; `adaptive`
 * (default) keeps polling for spin_us after the last work, then goes RCU-offline and sleeps on
 * its ingress event count (a futex) until the submitter bumps it or sleep_max_us passes. The
 * submitter only makes the wake-up system call when the worker has announced that it sleeps, so
 * under load nobody pays for it.
 *
 * Context: dp_worker_run on its own lcore; the rest as documented. Ownership: the dataplane
 * (dataplane.h) creates and frees workers; a worker owns the descriptors between its two rings.
 */
#ifndef COREPIPE_DP_WORKER_H
#define COREPIPE_DP_WORKER_H

#include "dataplane/metrics.h"
#include "dataplane/pool.h"
#include "dataplane/registry.h"
#include "dataplane/req.h"

#include <ck_ec.h>
#include <rte_common.h>
#include <rte_ring.h>
#include <stdatomic.h>
#include <stdint.h>

/** Descriptors taken per ring poll. */
#define DP_WORKER_BURST 32

enum dp_idle_policy {
	DP_IDLE_ADAPTIVE = 0,
	DP_IDLE_SPIN = 1,
	DP_IDLE_SLEEP = 2,
};

/** Parse "spin" / "adaptive" / "sleep". @return 0 or -EINVAL. */
int dp_idle_policy_parse(const char *s, enum dp_idle_policy *out);
const char *dp_idle_policy_name(enum dp_idle_policy p);

/** Worker statistics. Written only by the worker (relaxed stores), read by anyone. */
struct dp_worker_stats {
	uint64_t requests;     /**< descriptors completed */
	uint64_t busy_cycles;  /**< TSC cycles spent on iterations that did work */
	uint64_t total_cycles; /**< TSC cycles since the loop started */
	uint64_t sleeps;       /**< times the idle policy slept */
	uint64_t bursts;       /**< non-empty polls */
} __rte_cache_aligned;

/** Event count with its futex ops; shared by a waiter and its wakers. */
struct dp_wake {
	struct ck_ec32 ec;
	struct ck_ec_mode mode;
} __rte_cache_aligned;

/** Initialise @p w; @p single_producer when exactly one thread ever bumps it. */
void dp_wake_init(struct dp_wake *w, bool single_producer);

/**
 * Wake whoever sleeps on @p w (no system call when nobody does).
 * Context: any thread; with single_producer, only the one producer.
 */
static inline void
dp_wake_bump(struct dp_wake *w)
{
	ck_ec32_inc(&w->ec, &w->mode);
}

/** Current value, to be passed to dp_wake_wait() after re-checking for work. */
static inline uint32_t
dp_wake_value(struct dp_wake *w)
{
	return ck_ec32_value(&w->ec);
}

/**
 * Sleep until @p w moves past @p seen or @p timeout_ns passes.
 * Context: the one waiter of @p w. Blocks: not for the hot path.
 */
void dp_wake_wait(struct dp_wake *w, uint32_t seen, uint64_t timeout_ns);

/** Worker configuration. */
struct dp_worker_conf {
	enum dp_idle_policy idle;
	uint32_t spin_us;      /**< adaptive: keep polling this long after the last work */
	uint32_t sleep_max_us; /**< longest sleep before looking again */
	uint32_t ring_size;    /**< ingress and completion ring capacity (power of two) */
};

struct dp_udp_wk;

struct dp_worker {
	/* Read-only after creation. */
	unsigned index;
	unsigned lcore;
	struct rte_ring *ingress;    /**< SP (submitter) / SC (this worker) */
	struct rte_ring *completion; /**< SP (this worker) / SC (responder) */
	struct dp_registry *reg;
	const struct dp_pools *pools;
	struct dp_wake *done_wake; /**< the responder's event count, shared by all workers */
	struct dp_worker_conf conf;
	uint64_t tsc_hz;
	struct dp_udp_wk *udp; /**< this worker's share of the UDP front end, or NULL */

	/* Written by the submitter only. */
	alignas(RTE_CACHE_LINE_SIZE) uint64_t submitted;

	/* Written by the completion side only. */
	alignas(RTE_CACHE_LINE_SIZE) uint64_t completed;

	/* Written by the control plane to stop the loop; read by the worker. */
	alignas(RTE_CACHE_LINE_SIZE) atomic_bool stop;
	atomic_bool running; /**< set by the worker while its loop runs */
	/** Set by the control plane's load shedding (control/shed.c): UDP requests are
	 * answered RESOURCE_EXHAUSTED while it holds. Relaxed: advisory. */
	atomic_bool shedding;

	/* The submitter bumps it after enqueueing; the worker sleeps on it. */
	struct dp_wake wake;

	/* Written by the worker only. */
	struct dp_worker_stats stats;
	struct dp_metrics *met; /**< per-pipeline counters and histogram; this worker writes */
};

/**
 * Completions by status code since start, summed over the worker's per-pipeline metrics rows
 * (the one place a completion is counted). Walks every row: for GetStats and tests, not for
 * anything periodic. Context: any.
 */
void dp_worker_codes_read(const struct dp_worker *w, uint64_t out[DP_STATUS_MAX]);

/**
 * Create a worker's rings. @return 0, -EINVAL or -ENOMEM.
 * Context: control plane, after rte_eal_init().
 */
int dp_worker_init(struct dp_worker *w, unsigned index, unsigned lcore,
		   const struct dp_worker_conf *conf, struct dp_registry *reg,
		   const struct dp_pools *pools, struct dp_wake *done_wake);

/** Free a worker's rings (must be stopped and drained). Context: control plane. */
void dp_worker_fini(struct dp_worker *w);

/**
 * One loop iteration without idling: poll the ingress ring and the UDP queues, run, complete,
 * quiescent state.
 * @return descriptors and frames processed.
 * Context: the worker's thread, a registered online urcu-qsbr reader.
 */
unsigned dp_worker_poll_once(struct dp_worker *w);

/**
 * Run one descriptor to completion: deadline check, pipeline lookup, nodes. Sets req->status
 * and, on error, req->res.err. Exposed for tests.
 * Context: worker, online RCU reader.
 */
void dp_worker_exec(struct dp_worker *w, struct dp_req *req);

/**
 * The lcore entry point (lcore_function_t): registers with urcu-qsbr, loops until stop, drains
 * the ingress ring, unregisters. @p arg is the struct dp_worker.
 */
int dp_worker_run(void *arg);

/** Descriptors submitted to @p w and not yet completed. Context: any. */
static inline uint64_t
dp_worker_in_flight(const struct dp_worker *w)
{
	return __atomic_load_n(&w->submitted, __ATOMIC_RELAXED) -
	       __atomic_load_n(&w->completed, __ATOMIC_RELAXED);
}

/** Copy @p w's statistics (relaxed loads). Context: any. */
void dp_worker_stats_read(const struct dp_worker *w, struct dp_worker_stats *out);

#endif

/**
 * @file
 * Pipeline work: the poller that runs requests handed to an lcore, and the one function that
 * runs a request, wherever it runs.
 *
 * Every lcore has a struct dp_worker. A front end runs small requests itself, inline, through
 * its own lcore's worker (dp_worker_exec); larger ones it hands over through a link: a pair of
 * single-producer/single-consumer rings between that front end and one worker, the request going
 * in on `in` and coming back, run, on `done`, which the front end polls itself. A front end's
 * own worker has a link from that front end only (its queue of larger work, run between the
 * front end's polls); a worker on an lcore without a front end has a link from every front end.
 *
 * Each pass of the poller takes a burst from each link's `in` (one request from a front end's
 * own queue, so its front end runs between them), runs it, and puts it on that link's `done`. At
 * most `ring_size` requests are in flight on a link (the front end counts them both ways,
 * dp_link_in_flight), so `done` can never be full: the worker never waits or drops. Once every 10
 * ms it re-evaluates its own load shedding (shed.h) and publishes it.
 *
 * Fair execution (docs/ARCHITECTURE.md, "Fair execution"): a request taken from a link whose
 * input is more than one slice (DP_SLICE_BYTES) and whose estimated cost (dp_req.est_cycles)
 * is above one quantum (conf.quantum_us), or whose input is DP_BULK_BYTES or more, or of low
 * priority, does not run at once: it joins the worker's bulk
 * lane (one FIFO per priority: high, normal, low), and the poller advances the running one by
 * one quantum per pass (dp_pipeline_step), so the links (and, on a front end's lcore, the front
 * end) are served between quanta: small work gets up to conf.lane_share times the time of
 * the last bulk quantum per pass (the latency lane; at least lane_share quanta), then the bulk
 * lane one: the share holds in time also when a node's slice overruns the quantum. Between quanta,
 * a running request is parked (its slice state kept) when work of a higher priority waits in the
 * lane, and resumes once no higher-priority work is left. Smaller requests run whole as before,
 * with no extra cost. Between quanta the head's deadline and its call's cancellation are checked:
 * expired or cancelled running work stops there, its buffers go back, and it answers
 * DEADLINE_EXCEEDED / CANCELLED ("... while running, after N of M bytes"). A stream's frames queue
 * behind its earlier frames in the lane, so they still run in order.
 *
 * Context: dp_worker_poll and dp_worker_exec on the lcore's thread (an online urcu-qsbr
 * reader); the rest as documented. Ownership: the dataplane (dataplane.h) creates and frees
 * workers; a worker owns a request between dequeue from `in` and enqueue on `done`.
 */
#ifndef COREPIPE_DP_WORKER_H
#define COREPIPE_DP_WORKER_H

#include "dataplane/lcore.h"
#include "dataplane/reactor.h"
#include "dataplane/req.h"
#include "dataplane/shed.h"

#include <rte_common.h>
#include <rte_ring.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** Requests taken from one link per pass. */
#define DP_WORKER_BURST 32

/** Most front ends (links into one worker). */
#define DP_FRONTENDS_MAX 16

/** Worker configuration. */
struct dp_worker_conf {
	enum dp_idle_policy idle;
	uint32_t spin_us;      /**< adaptive: keep polling this long after the last work */
	uint32_t yield_us;     /**< no work this long: yield the CPU between polls (dp_reactor) */
	uint32_t sleep_max_us; /**< longest sleep before looking again */
	uint32_t ring_size;    /**< capacity of each link's rings (power of two) */
	uint32_t quantum_us;   /**< bulk lane quantum; 0: every request runs whole at once */
	uint32_t lane_share;   /**< while bulk work waits: quanta of small work per bulk quantum */
};

/** Inputs of this many bytes or more go to the bulk lane even when their cost is unknown. */
#define DP_BULK_BYTES (64u * 1024)

/**
 * Worker statistics. Written only by the worker's lcore (relaxed stores), read by anyone.
 * Nothing but uint64_t counters, one control/counters.c row each (cp_worker_stats_desc, in
 * field order): a field added here needs its row there.
 */
struct dp_worker_stats {
	uint64_t requests;	   /**< requests run (inline or handed over) */
	uint64_t bursts;	   /**< non-empty passes over the links */
	uint64_t bulk_runs;	   /**< requests that went through the bulk lane */
	uint64_t quanta;	   /**< bulk lane quanta run */
	uint64_t parked;	   /**< running bulk work parked for a higher priority */
	uint64_t stopped_deadline; /**< running work stopped: deadline passed */
	uint64_t stopped_cancel;   /**< running work stopped: call cancelled */
	struct dp_reactor_stats r; /**< the lcore's reactor: busy, total, sleeps */
} __rte_cache_aligned;

/* The counters end with r: what follows is the cache-line padding alone. */
_Static_assert(RTE_ALIGN_CEIL(offsetof(struct dp_worker_stats, r) + sizeof(struct dp_reactor_stats),
			      RTE_CACHE_LINE_SIZE) == sizeof(struct dp_worker_stats),
	       "dp_worker_stats: r is the last field (add a cp_worker_stats_desc row)");

/** One front end -> one worker. */
struct dp_link {
	struct rte_ring *in;   /**< SP (the front end) / SC (the worker) */
	struct rte_ring *done; /**< SP (the worker) / SC (the front end) */
	unsigned fe;	       /**< front-end index */
	unsigned worker;       /**< worker index */
	/* Written by the front end only (it produces `in` and consumes `done`). */
	alignas(RTE_CACHE_LINE_SIZE) uint64_t submitted;
	uint64_t completed;
	uint64_t cost_cycles; /**< estimated cycles of the requests in flight on this link */
};

/** Requests in flight on @p l. Context: any (relaxed loads). */
static inline uint64_t
dp_link_in_flight(const struct dp_link *l)
{
	return __atomic_load_n(&l->submitted, __ATOMIC_RELAXED) -
	       __atomic_load_n(&l->completed, __ATOMIC_RELAXED);
}

/** A bulk request's run between quanta (worker.c): the running one, or one parked. Parking and
 * resuming copy the whole struct. */
struct dp_bulk_run {
	struct dp_req *req;	     /**< NULL: none */
	bool started;		     /**< begun: x, p, state and run are live */
	uint32_t in_len;	     /**< its input length */
	uint64_t cycles;	     /**< cycles it ran so far */
	const struct dp_pipeline *p; /**< its pipeline (referenced by the request) */
	void *state;		     /**< its stream state, or NULL */
	struct dp_exec x;	     /**< its execution context */
	struct dp_run run;	     /**< its resumable state */
};

struct dp_worker {
	struct dp_lcore lc; /**< what the lcore's pollers share */

	/* Read-only after set-up. */
	struct dp_worker_conf conf;
	unsigned n_links;
	struct dp_link *link[DP_FRONTENDS_MAX]; /**< links into this worker */

	/* Written by the control plane to stop the loop; read by the worker. */
	alignas(RTE_CACHE_LINE_SIZE) atomic_bool stop;
	atomic_bool running; /**< set by the worker while its loop runs */

	/* The worker's own. */
	alignas(RTE_CACHE_LINE_SIZE) struct dp_shed shed;
	/** The dataplane's shedding configuration, published with RCU (NULL: defaults). */
	struct dp_shed_conf *const *shed_conf;
	struct dp_shed_conf shed_conf_default;
	uint64_t shed_next_tsc;
	uint64_t exec_end_tsc; /**< when the last request dp_worker_exec ran ended */
	uint32_t wake_seen;    /**< dp_wake_value() read before the idle re-check */

	/* The bulk lane: one FIFO per priority through dp_req.next; the running request (cur,
	 * taken from the highest non-empty FIFO) runs one quantum per pass. A running request
	 * with newer work of a higher priority waiting is parked in park[its priority] (one at
	 * most each: a parked run resumes before its FIFO's next starts); a parked one whose
	 * deadline passes or whose call is cancelled is stopped where it is. */
	struct dp_req *bulk_head[DP_PRIO_MAX], *bulk_tail[DP_PRIO_MAX];
	uint32_t n_bulk;	   /**< requests in the lane (cur and parked included) */
	uint32_t n_parked;	   /**< park[] slots in use */
	uint32_t lane_share;	   /**< conf.lane_share (0 there: 3) */
	uint64_t bulk_last_cycles; /**< how long the last bulk quantum ran */
	uint64_t bulk_pass_cycles; /**< this pass's bulk quantum (0: none ran) */
	uint64_t bulk_cycles;	   /**< bulk quanta's cycles up to the last pass (shed_tick), as the
				    * reactor's busy_cycles: it adds a pass after it ends */
	uint64_t quantum_cycles;   /**< conf.quantum_us in TSC cycles (0: no lane) */
	struct dp_bulk_run cur;	   /**< the running request */
	struct dp_bulk_run park[DP_PRIO_MAX]; /**< parked runs, by priority */
	struct dp_worker_stats stats;
};

/**
 * How long small work may run in a pass while bulk work waits: conf.lane_share times the last
 * bulk quantum's time, and at least lane_share quanta (a slice, zstd level 19's block, may
 * overrun the quantum several times; the share is of time, not of passes).
 * Context: the worker's lcore (any thread for a test).
 */
static inline uint64_t
dp_worker_share_cycles(const struct dp_worker *w)
{
	uint64_t q =
	    w->bulk_last_cycles > w->quantum_cycles ? w->bulk_last_cycles : w->quantum_cycles;

	return q * w->lane_share;
}

/**
 * Initialise @p w (not its links: dp_link_create). @return 0, -EINVAL or -ENOMEM.
 * Context: control plane, after rte_eal_init().
 */
int dp_worker_init(struct dp_worker *w, unsigned index, unsigned lcore,
		   const struct dp_worker_conf *conf, struct dp_registry *reg,
		   const struct dp_pools *pools);

/** Free what dp_worker_init made. Context: control plane, worker stopped. */
void dp_worker_fini(struct dp_worker *w);

/**
 * Create the link from front end @p fe into @p w, rings on @p w's socket.
 * @return the link or NULL (errno ENOMEM, ENOSPC when @p w has DP_FRONTENDS_MAX links).
 * Ownership: @p w owns it (dp_worker_fini frees it).
 */
struct dp_link *dp_link_create(struct dp_worker *w, unsigned fe);

/**
 * Run one request to completion on @p w's lcore: deadline and cancel checks, pipeline lookup
 * (by name when req->pipeline and req->stream are NULL), nodes. Sets req->status, req->worker,
 * req->dp_ns and on error req->res.err; counts it in the lcore's metrics and cost model.
 * Context: @p w's lcore (a front end running inline, or the worker's poller), online RCU reader.
 */
void dp_worker_exec(struct dp_worker *w, struct dp_req *req);

/**
 * The poller (struct dp_poller): one burst from each link's `in`, run, put on `done`; the
 * shedding evaluation when due. @return requests run. Context: @p arg's lcore.
 */
unsigned dp_worker_poll(void *arg);

/** The poller's idle limit: 0 if a link holds work, else sleep_max_us (a worker lcore) or
 * forever (a front end's own worker, fed by its own lcore). */
uint64_t dp_worker_idle(void *arg);

/** The reactor's wait on a worker lcore: its event count (reactor.h). */
void dp_worker_wait_prepare(void *arg);
unsigned dp_worker_wait(void *arg, uint64_t timeout_ns);

/** Drain: run everything left on the links and in the bulk lane (after the front ends
 * stopped submitting). */
void dp_worker_drain(struct dp_worker *w);

/** Requests handed to @p w and not yet collected, over all its links. Context: any. */
uint64_t dp_worker_in_flight(const struct dp_worker *w);

/** Copy @p w's statistics (relaxed loads). Context: any. */
void dp_worker_stats_read(const struct dp_worker *w, struct dp_worker_stats *out);

/**
 * Completions by status code since start, summed over the lcore's per-pipeline metrics rows
 * (the one place a completion is counted). Walks every row: for GetStats and tests.
 */
void dp_worker_codes_read(const struct dp_worker *w, uint64_t out[DP_STATUS_MAX]);

#endif

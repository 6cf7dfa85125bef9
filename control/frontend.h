/**
 * @file
 * A gRPC front end: a completion queue of its own on the one grpc_server, polled by a reactor
 * poller on its own lcore, that answers its own calls.
 *
 * A call arrives on one of the front end's armed request_call slots. The handler decodes and
 * validates it and decides where it runs (cp_fe_place): a request whose estimated cost (the
 * pipeline's learned cost model, dataplane/metrics.h) is at most server.inline_max_us runs at
 * once, inline, on this lcore (run to completion: no hand-off, no wake-up, the answer goes out
 * before the next event is looked at); a larger one is handed over a link to the worker where it
 * delays the least estimated work (a worker-only lcore; this lcore's own queue when there is
 * none). While requests are out on links the front end polls its completion queue without
 * blocking and collects the links' `done` rings itself, so an answer goes out with no sleep and
 * no wake-up in between; after server.frontend_spin_us without progress it waits in its
 * completion queue 1 ms at a time instead (a long request does not burn the core). With nothing
 * out it blocks in its completion queue and the lcore idles.
 *
 * ExecuteStream calls are owned by the front end that received them: reads, sends, node-state
 * set-up and the responses queue are all on its thread; no lock.
 *
 * Context: everything on the front end's lcore, except cp_fe_create/destroy (main lcore).
 * Ownership: a front end owns its completion queue, calls and streams.
 */
#ifndef COREPIPE_CP_FRONTEND_H
#define COREPIPE_CP_FRONTEND_H

#include "control/grpc_server.h"
#include "dataplane/dataplane.h"
#include "dataplane/reactor.h"

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

/**
 * A front end's counters: one writer (its thread), read by anyone with relaxed loads; summed
 * over front ends with cp_fe_stats_sum (control/counters.h), or one of them with
 * cp_server_stat_sum(offsetof(struct cp_fe_stats, field)). Nothing but uint64_t counters, one
 * control/counters.c row each (cp_fe_stats_desc, in field order): a field added here needs its
 * row there.
 */
struct cp_fe_stats {
	uint64_t live_calls;   /**< calls received and not yet freed */
	uint64_t answered;     /**< answers sent for pipeline work (unary + stream frames) */
	uint64_t inline_runs;  /**< requests run inline on the front end's lcore */
	uint64_t handed_over;  /**< requests handed to a worker */
	uint64_t streams_open; /**< ExecuteStream calls bound to a worker */
	uint64_t rejected[CP_REJECT_MAX];
	uint64_t auth_failures[2];   /**< [0] unauthenticated, [1] permission denied */
	uint64_t resp_bytes;	     /**< reply bytes held now (budget) */
	uint64_t waits;		     /**< completion-queue waits while work was out */
	uint64_t grace_cancelled;    /**< calls cancelled when the drain's grace ended */
	uint64_t client_cancels;     /**< calls the client cancelled (RST_STREAM, deadline) */
	uint64_t conns_closed_abuse; /**< connections closed for cancelling too many calls */
	uint64_t mem_in_use;	     /**< estimated memory of the requests out now (gauge) */
	uint64_t buffer_waits;	     /**< stream frames that waited for their buffers */
};

/* The counters end with buffer_waits: nothing follows (no padding to describe). */
_Static_assert(offsetof(struct cp_fe_stats, buffer_waits) + sizeof(uint64_t) ==
		   sizeof(struct cp_fe_stats),
	       "cp_fe_stats: buffer_waits is the last counter (add a cp_fe_stats_desc row)");

/** Where a request runs: inline here, or (>= 0) a candidate; CP_PLACE_SHED when every
 * candidate for handed-over work is shedding load. */
#define CP_PLACE_INLINE (-1)
#define CP_PLACE_SHED	(-2)

/** A message run on a front end's thread (cp_fe_post). */
struct cp_watch;
struct cp_rst_win;
struct rte_hash;

struct cp_fe_msg {
	void (*fn)(struct cp_frontend *fe, void *arg);
	void *arg;
	struct cp_fe_msg *next;
};

struct cp_frontend {
	unsigned index;
	struct cp_server *srv;
	struct dp_dataplane *dp;
	struct dp_worker *own; /**< this lcore's worker */
	grpc_completion_queue *cq;
	struct dp_reactor reactor;
	atomic_bool stop;

	/* Candidate workers for handed-over work: [0] is this lcore's own queue. */
	unsigned n_cand;
	struct dp_link *cand_link[DP_WORKERS_MAX];
	struct dp_worker *cand[DP_WORKERS_MAX];
	const struct dp_metrics *cand_met[DP_WORKERS_MAX]; /**< their cost models, [0] own */
	uint64_t out;		  /**< requests out on links, not yet collected */
	uint64_t last_progress;	  /**< TSC of the last event or collected answer */
	uint64_t spin_cycles;	  /**< conf.frontend_spin_us in TSC cycles */
	uint64_t spin_max_cycles; /**< conf.frontend_spin_max_us in TSC cycles */
	uint64_t inline_cycles;	  /**< conf.inline_max_us in TSC cycles */
	unsigned rr;		  /**< the last candidate chosen (ties go round) */

	struct cp_call *live_head; /**< calls received and not yet freed */
	struct cp_call *free_list; /**< recycled call contexts */
	/* Work parked by handler modules, and the hook that takes it up: set by the module that
	 * parks it (the front end names no handler module). */
	struct cp_stream *blocked; /**< streams waiting for dataplane capacity (rpc_stream.c) */
	void (*retry_blocked)(struct cp_frontend *fe); /**< polled while `blocked` is set */
	uint64_t blocked_retry_tsc;
	unsigned health_gen;	  /**< last health generation pushed to Watch calls */
	struct cp_watch *watches; /**< open Health/Watch calls (rpc_health.c) */
	/** Push a health change to `watches` (ending them when @p draining), from the tick. */
	void (*watches_update)(struct cp_frontend *fe, bool draining);
	uint64_t tick_tsc; /**< next periodic check (Watch, drain) */

	/* Messages from other threads (cp_fe_post), run by the poller. */
	pthread_mutex_t mbox_lock;
	struct cp_fe_msg *mbox;
	atomic_uint mbox_n;

	/* Client cancels per connection (rapid reset): peer -> window (rst_win). */
	struct rte_hash *rst;
	struct cp_rst_win *rst_win;
	uint64_t rst_log_ns, rst_suppressed;

	/* Rate limit of auth failure logs. */
	uint64_t auth_log_ns, auth_suppressed;

	struct dp_metrics *e2e; /**< server time per pipeline, in ns; written here */
	alignas(64) struct cp_fe_stats st;
};

/**
 * Create front end @p index on lcore worker @p own: its completion queue (registered on
 * srv->server, which must not be started yet), its reactor (front-end poller, then the lcore's
 * dataplane pollers) and its candidate links. @return the front end or NULL (errno).
 * Context: main lcore.
 */
struct cp_frontend *cp_fe_create(struct cp_server *srv, unsigned index);

/** Arm the request_call slots (after grpc_server_start). */
void cp_fe_start(struct cp_frontend *fe);

/** Free a front end whose reactor has stopped (its queue shut down and drained). */
void cp_fe_destroy(struct cp_frontend *fe);

/**
 * Drop a reference a handler took on the call (c->refs++ for a batch of its own); the last
 * frees the call (its method's gone() hook, then back to the front end's free list).
 * Context: the call's front end.
 */
void cp_call_release(struct cp_call *c);

/**
 * Where a request of pipeline @p id over @p len input bytes should run: CP_PLACE_INLINE, an
 * index into fe->cand[], or CP_PLACE_SHED. Sets *@p est to the estimated cycles (0: unknown).
 */
int cp_fe_place(struct cp_frontend *fe, uint32_t id, uint32_t len, const struct dp_pipeline *p,
		uint64_t *est);

/** cp_fe_place() for a request of priority @p prio (DP_PRIO_*): low never runs inline. */
int cp_fe_place_prio(struct cp_frontend *fe, uint32_t id, uint32_t len, uint8_t prio,
		     uint64_t *est);

/**
 * Memory admission: estimate what a run of @p p over @p len bytes of @p fmt holds at its peak
 * (dp_pipeline_mem_estimate) into *@p est, check it against limits.max_request_memory_mb and,
 * with what every front end's handed-over requests hold, against limits.memory_budget_mb.
 * @return 0, or -1 after answering RESOURCE_EXHAUSTED (naming the limit and the figures; the
 * budget refusal carries a pushback hint). Both limits 0: no estimate, *est = 0.
 */
int cp_fe_admit_memory(struct cp_frontend *fe, struct cp_call *c, const struct cp_live *live,
		       const struct dp_pipeline *p, const struct dp_format *fmt, uint32_t len,
		       uint64_t *est);

/**
 * The call's priority from its `corepipe-priority` metadata (high, normal, low; absent:
 * normal) into *@p prio. @return 0, or -1 after answering INVALID_ARGUMENT (another value) or
 * PERMISSION_DENIED (high, and the caller's token is not in auth.high_priority_tokens).
 * Context: the call's front end.
 */
int cp_call_priority(struct cp_call *c, const struct cp_live *live, uint8_t *prio);

/** cp_call_priority() without the answer: @return DP_OK, DP_INVALID_ARGUMENT or
 * DP_PERMISSION_DENIED with @p msg saying why (streams end with it themselves). */
int cp_call_priority_parse(const struct cp_call *c, const struct cp_live *live, uint8_t *prio,
			   char *msg, size_t msg_len);

/**
 * Hand @p req to candidate @p k; req->cookie points at the submitter's struct cp_work
 * (call.h), which the front end calls when it collects the answer. @return 0, or -ENOBUFS (its
 * link is full). Ownership: passed on success.
 */
int cp_fe_submit(struct cp_frontend *fe, unsigned k, struct dp_req *req, uint64_t est);

/** Count a reply's bytes against the front end's budget (released when the call ends). */
void cp_fe_charge(struct cp_frontend *fe, struct cp_call *c, uint64_t bytes);

/**
 * Is this front end's reply memory (server.max_response_bytes) spent? Streams stop reading at
 * three quarters of it (@p stream), unary calls are refused at all of it: streams that do not
 * read their answers can never lock unary calls out. Context: the front end.
 */
bool cp_fe_over_budget(const struct cp_frontend *fe, bool stream);

/**
 * May a stream frame whose answer can be up to @p bytes be run now? Yes while the reply memory
 * held (reservations included) stays within the streams' three quarters, or when nothing is
 * held at all. Context: the front end.
 */
bool cp_fe_stream_room(const struct cp_frontend *fe, uint64_t bytes);

/**
 * Run @p m->fn on @p fe's thread soon (within its tick when it sleeps). @p m is owned by the
 * caller until fn runs. Context: any thread.
 */
void cp_fe_post(struct cp_frontend *fe, struct cp_fe_msg *m);

/**
 * Handle an event drained from the queue after the server was destroyed: unused slots are
 * recycled, last batches release their calls. Context: main lcore, reactors stopped.
 */
void cp_fe_drain_event(struct cp_frontend *fe, grpc_event *ev);

/** Front end @p fe's lcore function (EAL): its reactor until the server is done. */
int cp_fe_main(void *fe);

#endif

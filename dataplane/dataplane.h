/**
 * @file
 * The dataplane as a whole: pools, registry, descriptor pool, workers on their lcores, and the
 * submit/complete interface the control plane uses.
 *
 *     control (submit thread) --ingress ring (SP/SC)--> worker lcore N --completion ring
 *     (SP/SC)--> responder thread (dp_dataplane_poll) --> answer, free
 *
 * Context: create/launch/stop/destroy on the main lcore (control plane), after rte_eal_init().
 * dp_dataplane_submit() from one thread only (the submit thread: its rings are single
 * producer); dp_dataplane_poll()/dp_dataplane_wait() from one thread only (the responder).
 * Ownership: the dataplane owns workers, pools and registry; descriptors move as in req.h.
 */
#ifndef COREPIPE_DP_DATAPLANE_H
#define COREPIPE_DP_DATAPLANE_H

#include "dataplane/pool.h"
#include "dataplane/registry.h"
#include "dataplane/req.h"
#include "dataplane/stream.h"
#include "dataplane/udp.h"
#include "dataplane/worker.h"

#include <stdint.h>

/** Most workers. */
#define DP_WORKERS_MAX 64
_Static_assert(DP_WORKERS_MAX == DP_UDP_WORKERS_MAX, "udp.h sizes its worker table alike");

struct dp_dataplane_conf {
	struct dp_worker_conf worker;
	struct dp_pool_conf pools;
	uint32_t max_in_flight; /**< descriptors in the system at once (descriptor pool size) */
	uint32_t max_streams_per_worker; /**< stream slots per worker (stream.h) */
};

/** Built-in defaults (adaptive idle, 1024-deep rings, 256 streams per worker,
 * dp_pool_conf_default()). */
void dp_dataplane_conf_default(struct dp_dataplane_conf *conf);

struct dp_dataplane {
	struct dp_dataplane_conf conf;
	struct dp_pools *pools;
	struct rte_mempool *req_pool;
	struct dp_registry *reg;
	unsigned n_workers;
	struct dp_worker *workers[DP_WORKERS_MAX];
	struct rte_mempool *stream_pool[DP_WORKERS_MAX]; /**< per worker, on its socket */
	struct dp_wake done_wake; /**< workers bump (multi producer); the responder sleeps */
	struct dp_udp *udp;	  /**< the UDP front end (ports), or NULL */
	uint64_t tsc_hz;
	int launched;
};

/**
 * Create pools, registry and one worker per worker lcore (every enabled lcore but the main
 * one). Workers are not started.
 * @return the dataplane or NULL with errno (EINVAL: no worker lcore or bad conf; ENOMEM).
 */
struct dp_dataplane *dp_dataplane_create(const struct dp_dataplane_conf *conf);

/**
 * Open the UDP front end's ports (dataplane/udp.h) and attach them to the workers. Nothing to
 * do when @p conf has no ports.
 * @return 0, or -errno with @p err (the dataplane is unchanged then).
 * Context: main lcore, after create and before launch.
 */
int dp_dataplane_attach_udp(struct dp_dataplane *dp, const struct dp_udp_conf *conf, char *err,
			    size_t errlen);

/** Start every worker on its lcore. @return 0 or -errno. */
int dp_dataplane_launch(struct dp_dataplane *dp);

/** Are all workers in their loops? Context: any. */
bool dp_dataplane_running(const struct dp_dataplane *dp);

/**
 * Ask workers to stop, wait for their lcores (each drains its ingress ring first, so every
 * submitted descriptor reaches the completion ring). Context: main lcore.
 */
void dp_dataplane_stop(struct dp_dataplane *dp);

/** Free everything (workers stopped, descriptors all returned). Accepts NULL. */
void dp_dataplane_destroy(struct dp_dataplane *dp);

/**
 * Take a descriptor with a payload buffer of @p len bytes.
 * @return 0, -ENOBUFS (descriptor pool empty: in-flight limit), -ENOMEM (no buffer of that
 * size free) or -E2BIG (larger than the largest buffer class).
 * Context: submit thread. Ownership: the caller owns *out until submit or dp_req_free.
 */
int dp_req_alloc(struct dp_dataplane *dp, uint32_t len, struct dp_req **out);

/**
 * Release a descriptor: its buffer, its inline pipeline reference, the stream slot it owns
 * (a stateful unary request), the descriptor.
 * Context: any thread. Ownership: consumes @p req. Accepts NULL.
 */
void dp_req_free(struct dp_dataplane *dp, struct dp_req *req);

/**
 * Hand @p req to the least-loaded worker (fewest in flight).
 * @return 0 (ownership passed), or -ENOBUFS when every worker's ring is full (the caller keeps
 * @p req).
 * Context: the submit thread only.
 */
int dp_dataplane_submit(struct dp_dataplane *dp, struct dp_req *req);

/**
 * Same as dp_dataplane_submit(), among the workers whose bit (1 << index) is set in
 * @p allowed only (e.g. those not shedding load).
 * @return 0, or -ENOBUFS when every allowed worker's ring is full (or none is allowed).
 * Context: the submit thread only.
 */
int dp_dataplane_submit_mask(struct dp_dataplane *dp, struct dp_req *req, uint64_t allowed);

/**
 * Hand @p req to worker @p worker (a stream's frames go to the worker holding its state).
 * @return 0, or -ENOBUFS when that worker already has ring_size requests in flight.
 * Context: the submit thread only.
 */
int dp_dataplane_submit_to(struct dp_dataplane *dp, struct dp_req *req, unsigned worker);

/**
 * Collect up to @p max completed descriptors from all workers.
 * @return how many were stored in @p out; the caller owns them.
 * Context: the responder thread only.
 */
unsigned dp_dataplane_poll(struct dp_dataplane *dp, struct dp_req **out, unsigned max);

/**
 * Sleep until a worker completes something or @p timeout_ns passes. Call with the value of
 * dp_wake_value(&dp->done_wake) read before the last empty dp_dataplane_poll().
 * Context: the responder thread only.
 */
void dp_dataplane_wait(struct dp_dataplane *dp, uint32_t seen, uint64_t timeout_ns);

/** Convert a timeout in ns to a TSC deadline from now (0 timeout: no deadline). */
uint64_t dp_dataplane_deadline_tsc(const struct dp_dataplane *dp, uint64_t timeout_ns);

#endif

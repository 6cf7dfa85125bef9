/**
 * @file
 * The dataplane as a whole: pools, registry, descriptor pool, one worker per lcore, the links
 * between front ends and workers, and the UDP front end's ports.
 *
 *     front end f --link f->w: in (SP/SC)--> worker w's lcore --done (SP/SC)--> front end f
 *
 * Lcores are numbered 0..n_workers-1: the first n_frontends run a gRPC front end (lcore 0 is
 * the EAL main lcore) and the rest only pipeline work (and UDP queues). Every lcore has a worker.
 * A front end's own worker has one link, from that front end (its queue of larger work); every
 * other worker has a link from each front end. The reactors of the worker-only lcores are built
 * and launched here; the front ends' reactors belong to the control plane (control/frontend.h).
 *
 * Context: create/attach/launch/stop/destroy on the main lcore, after rte_eal_init().
 * Ownership: the dataplane owns workers, links, pools, registry and reactors of worker lcores;
 * descriptors move as in req.h.
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

/** Most lcores (workers). */
#define DP_WORKERS_MAX 64
_Static_assert(DP_WORKERS_MAX == DP_UDP_WORKERS_MAX, "udp.h sizes its worker table alike");

struct dp_dataplane_conf {
	struct dp_worker_conf worker;
	struct dp_pool_conf pools;
	struct dp_shed_conf shed;	 /**< load shedding (live: dp_dataplane_set_shed_conf) */
	uint32_t max_in_flight;		 /**< descriptors in the system at once (pool size) */
	uint32_t max_streams_per_worker; /**< stream slots per worker (stream.h) */
	unsigned n_frontends;		 /**< lcores 0..n_frontends-1 run a front end (>= 1) */
};

/** Built-in defaults (adaptive idle, 1024-deep rings, 256 streams per worker, one front end,
 * dp_pool_conf_default(), dp_shed_conf_default()). */
void dp_dataplane_conf_default(struct dp_dataplane_conf *conf);

struct dp_dataplane {
	struct dp_dataplane_conf conf;
	struct dp_pools *pools;
	struct rte_mempool *req_pool;
	struct dp_registry *reg;
	unsigned n_workers;   /**< every lcore */
	unsigned n_frontends; /**< the first n_frontends lcores run a front end */
	struct dp_worker *workers[DP_WORKERS_MAX];
	/** link[f][w]: front end f into worker w; NULL where there is none. */
	struct dp_link *link[DP_FRONTENDS_MAX][DP_WORKERS_MAX];
	struct rte_mempool *stream_pool[DP_WORKERS_MAX]; /**< per worker, on its socket */
	/** Reactors of the worker-only lcores (index >= n_frontends). */
	struct dp_reactor reactor[DP_WORKERS_MAX];
	struct dp_shed_conf *shed_conf; /**< RCU-published (not owned); workers read it */
	struct dp_udp *udp;		/**< the UDP front end (ports), or NULL */
	/** udp_wk[w]: worker w's share of the UDP front end, or NULL. */
	struct dp_udp_wk *udp_wk[DP_WORKERS_MAX];
	uint64_t tsc_hz;
	int launched;
};

/**
 * Create pools, registry and one worker per enabled lcore (the main lcore first), with the
 * links between front ends and workers. Nothing is started.
 * @return the dataplane or NULL with errno (EINVAL: bad conf or fewer lcores than front
 * ends; ENOMEM).
 */
struct dp_dataplane *dp_dataplane_create(const struct dp_dataplane_conf *conf);

/**
 * Open the UDP front end's ports (dataplane/udp.h) and give their queues to the worker-only
 * lcores, or to the front-end lcores when there are none. Nothing to do when @p conf has no
 * ports.
 * @return 0, or -errno with @p err (the dataplane is unchanged then).
 * Context: main lcore, after create and before launch.
 */
int dp_dataplane_attach_udp(struct dp_dataplane *dp, const struct dp_udp_conf *conf, char *err,
			    size_t errlen);

/**
 * The pollers of worker @p w's lcore that belong to the dataplane (pipeline work, then UDP)
 * added to @p r. Used for the worker-only reactors here and by the control plane for the
 * front ends' reactors. @return 0 or -ENOSPC.
 */
int dp_dataplane_add_pollers(struct dp_dataplane *dp, unsigned w, struct dp_reactor *r);

/** Start the worker-only lcores' reactors. @return 0 or -errno. */
int dp_dataplane_launch(struct dp_dataplane *dp);

/** Are all worker-only lcores in their loops? Context: any. */
bool dp_dataplane_running(const struct dp_dataplane *dp);

/**
 * Ask the worker-only lcores to stop and wait for them (each drains its links and UDP rings
 * first, so every request handed over reaches a `done` ring). Context: main lcore, after
 * every front end stopped handing work over.
 */
void dp_dataplane_stop(struct dp_dataplane *dp);

/** Free everything (workers stopped, descriptors all returned). Accepts NULL. */
void dp_dataplane_destroy(struct dp_dataplane *dp);

/**
 * Publish a new load-shedding configuration (RCU; workers pick it up within 10 ms).
 * Ownership: @p c stays the caller's, and valid until a grace period after it is replaced
 * (the control plane keeps it in its RCU-freed live settings). Context: any thread.
 */
void dp_dataplane_set_shed_conf(struct dp_dataplane *dp, const struct dp_shed_conf *c);

/**
 * Take a descriptor with a payload buffer of @p len bytes.
 * @return 0, -ENOBUFS (descriptor pool empty: in-flight limit), -ENOMEM (no buffer of that
 * size free) or -E2BIG (larger than the largest buffer class).
 * Context: submit thread. Ownership: the caller owns *out until submit or dp_req_free.
 */
int dp_req_alloc(struct dp_dataplane *dp, uint32_t len, struct dp_req **out);

/** Most buffers in a request's kit (dp_req_take_kit). */
#define DP_KIT_MAX 16

/** The buffer sizes a request's kit needs (dp_req_take_kit, dp_kit_may_fit). */
struct dp_kit_plan {
	unsigned n;
	uint32_t size[DP_KIT_MAX];
};

/**
 * What a stream frame needs before it runs, from one inference of @p p's formats over its input
 * (@p len bytes of format @p in at @p data): its memory estimate into *@p mem
 * (dp_pipeline_mem_estimate) and the buffers its nodes take into @p kit
 * (dp_pipeline_out_plan; kit->n = 0 for a plan that does not fit DP_KIT_MAX or cannot be
 * made: its nodes take as they run). Context: any (pure); @p p referenced by the caller.
 */
void dp_req_plan(const struct dp_dataplane *dp, const struct dp_pipeline *p,
		 const struct dp_format *in, const uint8_t *data, uint32_t len, uint64_t *mem,
		 struct dp_kit_plan *kit);

/**
 * Take, all or none, the buffers of @p plan (dp_req_plan) into req->kit. The nodes then take
 * from the kit (dp_exec_take_out), so the request never fails halfway for an empty pool; what
 * they do not use goes back with the request. Stream frames use it: a frame that cannot have
 * its buffers waits unrun instead of failing (docs/api.md, "Streams and backpressure").
 * @return 0, or -ENOMEM (some class empty: nothing held; retry later, and then, when @p missed
 * is not NULL, it holds the plan that did not fit: see dp_kit_may_fit).
 * Context: the request's owner (a front end), before submit.
 */
int dp_req_take_kit(struct dp_dataplane *dp, struct dp_req *req, const struct dp_kit_plan *plan,
		    struct dp_kit_plan *missed);

/**
 * Whether the buffers of @p plan look free now (dp_pools_may_give): a frame waiting for its kit
 * checks this before it is decoded and copied again. An estimate, either way: a yes may still
 * miss (take the kit then), a no is retried later. Context: any; not for the hot path.
 */
bool dp_kit_may_fit(const struct dp_dataplane *dp, const struct dp_kit_plan *plan);

/** Return the unused buffers of @p req's kit. Context: the request's owner. */
void dp_req_drop_kit(struct dp_req *req);

/**
 * Release a descriptor: its buffer, its kit, its inline pipeline reference, the stream slot
 * it owns (a stateful unary request), the descriptor.
 * Context: any thread. Ownership: consumes @p req. Accepts NULL.
 */
void dp_req_free(struct dp_dataplane *dp, struct dp_req *req);

/**
 * Hand @p req to a worker over link @p l and wake the worker if it sleeps.
 * @return 0 (ownership passed), or -ENOBUFS when ring_size requests are already in flight on
 * the link (the caller keeps @p req).
 * Context: the link's front end only.
 */
int dp_link_submit(struct dp_link *l, struct dp_worker *w, struct dp_req *req);

/**
 * Collect up to @p max run requests from link @p l. @return how many were stored in @p out;
 * the caller owns them. Context: the link's front end only.
 */
unsigned dp_link_collect(struct dp_link *l, struct dp_req **out, unsigned max);

/** Convert a timeout in ns to a TSC deadline from now (0 timeout: no deadline). */
uint64_t dp_dataplane_deadline_tsc(const struct dp_dataplane *dp, uint64_t timeout_ns);

#endif

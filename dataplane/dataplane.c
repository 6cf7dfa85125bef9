/*
 * The dataplane object: owns pools, registry, descriptor pool and workers; implements the
 * submit (control) and completion (responder) sides of the hand-off.
 */
#include "dataplane/dataplane.h"

#include <errno.h>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <stdlib.h>
#include <string.h>

void
dp_dataplane_conf_default(struct dp_dataplane_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->worker.idle = DP_IDLE_ADAPTIVE;
	conf->worker.spin_us = 1000;
	conf->worker.sleep_max_us = 100000;
	conf->worker.ring_size = 1024;
	conf->max_in_flight = 4096;
	conf->max_streams_per_worker = 256;
	dp_pool_conf_default(&conf->pools);
}

struct dp_dataplane *
dp_dataplane_create(const struct dp_dataplane_conf *conf)
{
	struct dp_dataplane *dp;
	char name[RTE_MEMPOOL_NAMESIZE];
	unsigned lcore;
	int rc;

	if (rte_lcore_count() < 2 || conf->max_in_flight == 0 ||
	    conf->max_streams_per_worker == 0) {
		errno = EINVAL;
		return NULL;
	}
	dp = calloc(1, sizeof(*dp));
	if (dp == NULL)
		return NULL;
	dp->conf = *conf;
	dp->tsc_hz = rte_get_tsc_hz();
	dp_wake_init(&dp->done_wake, false);

	dp->pools = dp_pools_create("dp_buf", &conf->pools, SOCKET_ID_ANY);
	if (dp->pools == NULL)
		goto err_free;
	dp->req_pool = rte_mempool_create("dp_req", conf->max_in_flight, sizeof(struct dp_req), 0,
					  0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (dp->req_pool == NULL) {
		errno = ENOMEM;
		goto err_free;
	}
	dp->reg = dp_registry_create();
	if (dp->reg == NULL)
		goto err_free;

	RTE_LCORE_FOREACH_WORKER (lcore) {
		struct dp_worker *w;

		if (dp->n_workers == DP_WORKERS_MAX)
			break;
		w = rte_zmalloc_socket("dp_worker", sizeof(*w), RTE_CACHE_LINE_SIZE,
				       rte_lcore_to_socket_id(lcore));
		if (w == NULL) {
			errno = ENOMEM;
			goto err_free;
		}
		rc = dp_worker_init(w, dp->n_workers, lcore, &conf->worker, dp->reg, dp->pools,
				    &dp->done_wake);
		if (rc != 0) {
			rte_free(w);
			errno = -rc;
			goto err_free;
		}
		dp->workers[dp->n_workers] = w;
		snprintf(name, sizeof(name), "dp_stream_%u", dp->n_workers);
		/* No per-lcore cache: slots are taken and returned by control threads. */
		dp->stream_pool[dp->n_workers] = rte_mempool_create(
		    name, conf->max_streams_per_worker, sizeof(struct dp_stream), 0, 0, NULL, NULL,
		    NULL, NULL, (int)rte_lcore_to_socket_id(lcore), 0);
		dp->n_workers++;
		if (dp->stream_pool[dp->n_workers - 1] == NULL) {
			errno = ENOMEM;
			goto err_free;
		}
	}
	return dp;

err_free:
	rc = errno;
	dp_dataplane_destroy(dp);
	errno = rc;
	return NULL;
}

int
dp_dataplane_attach_udp(struct dp_dataplane *dp, const struct dp_udp_conf *conf, char *err,
			size_t errlen)
{
	if (conf->n_ports == 0)
		return 0;
	if (dp->launched || dp->udp != NULL)
		return -EBUSY;
	dp->udp = dp_udp_create(conf, dp->workers, dp->n_workers, err, errlen);
	return dp->udp != NULL ? 0 : -errno;
}

int
dp_dataplane_launch(struct dp_dataplane *dp)
{
	for (unsigned i = 0; i < dp->n_workers; i++) {
		int rc =
		    rte_eal_remote_launch(dp_worker_run, dp->workers[i], dp->workers[i]->lcore);

		if (rc != 0)
			return rc;
	}
	dp->launched = 1;
	return 0;
}

bool
dp_dataplane_running(const struct dp_dataplane *dp)
{
	for (unsigned i = 0; i < dp->n_workers; i++)
		if (!atomic_load_explicit(&dp->workers[i]->running, memory_order_acquire))
			return false;
	return dp->n_workers > 0;
}

void
dp_dataplane_stop(struct dp_dataplane *dp)
{
	if (!dp->launched)
		return;
	for (unsigned i = 0; i < dp->n_workers; i++) {
		atomic_store_explicit(&dp->workers[i]->stop, true, memory_order_relaxed);
		dp_wake_bump(&dp->workers[i]->wake);
	}
	for (unsigned i = 0; i < dp->n_workers; i++)
		rte_eal_wait_lcore(dp->workers[i]->lcore);
	dp->launched = 0;
}

void
dp_dataplane_destroy(struct dp_dataplane *dp)
{
	if (dp == NULL)
		return;
	dp_dataplane_stop(dp);
	/* After the workers stopped (and drained their hand-off rings): ports and rings. */
	dp_udp_destroy(dp->udp);
	dp->udp = NULL;
	for (unsigned i = 0; i < dp->n_workers; i++) {
		dp_worker_fini(dp->workers[i]);
		rte_free(dp->workers[i]);
		rte_mempool_free(dp->stream_pool[i]);
	}
	dp_registry_destroy(dp->reg);
	rte_mempool_free(dp->req_pool);
	dp_pools_destroy(dp->pools);
	free(dp);
}

uint64_t
dp_dataplane_deadline_tsc(const struct dp_dataplane *dp, uint64_t timeout_ns)
{
	if (timeout_ns == 0)
		return 0;
	return rte_rdtsc() + (uint64_t)((double)timeout_ns * (double)dp->tsc_hz / 1e9);
}

/* ==== Submit and complete =================================================================== */
/* Hot path: per request, control submit thread and responder. No locks or allocation. */

int
dp_req_alloc(struct dp_dataplane *dp, uint32_t len, struct dp_req **out)
{
	struct dp_req *req;
	void *obj;

	if (len > dp_pools_max_size(dp->pools))
		return -E2BIG;
	if (rte_mempool_get(dp->req_pool, &obj) != 0)
		return -ENOBUFS;
	req = obj;
	req->buf = dp_pools_get(dp->pools, len);
	if (req->buf == NULL) {
		rte_mempool_put(dp->req_pool, obj);
		return -ENOMEM;
	}
	req->cookie = NULL;
	req->pipeline = NULL;
	req->stream = NULL;
	req->owns_stream = 0;
	req->run_flags = DP_RUN_FRAME;
	req->seq = 0;
	req->deadline_tsc = 0;
	req->submit_tsc = 0;
	req->cancelled = NULL;
	req->hash = 0;
	req->name[0] = '\0';
	memset(&req->fmt, 0, sizeof(req->fmt));
	req->status = DP_UNKNOWN;
	req->worker = 0;
	req->dp_ns = 0;
	req->res.n_annot = 0;
	req->res.err.status = 0;
	req->res.err.msg[0] = '\0';
	*out = req;
	return 0;
}

void
dp_req_free(struct dp_dataplane *dp, struct dp_req *req)
{
	if (req == NULL)
		return;
	dp_buf_free(req->buf);
	dp_pipeline_unref(req->pipeline);
	if (req->owns_stream)
		dp_stream_close(req->stream);
	rte_mempool_put(dp->req_pool, req);
}

static inline int
enqueue(struct dp_worker *w, struct dp_req *req)
{
	/* At most ring_size in flight per worker: then neither of its rings can overflow. */
	if (dp_worker_in_flight(w) >= w->conf.ring_size)
		return -ENOBUFS;
	req->submit_tsc = rte_rdtsc();
	if (unlikely(rte_ring_sp_enqueue(w->ingress, req) != 0))
		return -ENOBUFS;
	/* Only the submit thread writes `submitted`. */
	__atomic_store_n(&w->submitted, w->submitted + 1, __ATOMIC_RELAXED);
	/* After the enqueue's release: pairs with the worker's value read in idle_sleep(). */
	dp_wake_bump(&w->wake);
	return 0;
}

int
dp_dataplane_submit(struct dp_dataplane *dp, struct dp_req *req)
{
	return dp_dataplane_submit_mask(dp, req, UINT64_MAX);
}

int
dp_dataplane_submit_mask(struct dp_dataplane *dp, struct dp_req *req, uint64_t allowed)
{
	struct dp_worker *best = NULL;
	uint64_t best_load = UINT64_MAX;

	for (unsigned i = 0; i < dp->n_workers; i++) {
		uint64_t load = dp_worker_in_flight(dp->workers[i]);

		if ((allowed & (1ull << i)) == 0)
			continue;
		if (load < best_load) {
			best_load = load;
			best = dp->workers[i];
		}
	}
	if (best == NULL)
		return -ENOBUFS;
	return enqueue(best, req);
}

int
dp_dataplane_submit_to(struct dp_dataplane *dp, struct dp_req *req, unsigned worker)
{
	if (worker >= dp->n_workers)
		return -EINVAL;
	return enqueue(dp->workers[worker], req);
}

unsigned
dp_dataplane_poll(struct dp_dataplane *dp, struct dp_req **out, unsigned max)
{
	unsigned total = 0;

	for (unsigned i = 0; i < dp->n_workers && total < max; i++) {
		struct dp_worker *w = dp->workers[i];
		unsigned n = rte_ring_sc_dequeue_burst(w->completion, (void **)out + total,
						       max - total, NULL);

		if (n != 0) {
			/* Only the responder writes `completed`. */
			__atomic_store_n(&w->completed, w->completed + n, __ATOMIC_RELAXED);
			total += n;
		}
	}
	return total;
}

void
dp_dataplane_wait(struct dp_dataplane *dp, uint32_t seen, uint64_t timeout_ns)
{
	dp_wake_wait(&dp->done_wake, seen, timeout_ns);
}

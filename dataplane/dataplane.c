/*
 * The dataplane object: owns pools, registry, descriptor pool, workers and links; implements
 * both ends of a link (a front end submits and collects, a worker runs).
 */
#include "dataplane/dataplane.h"

#include <errno.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <stdlib.h>
#include <string.h>

/* What a worker-only lcore drains when its loop ends. */
struct dp_lcore_exit {
	struct dp_worker *w;
	struct dp_udp_wk *wk;
};

static struct dp_lcore_exit g_exit[DP_WORKERS_MAX];

void
dp_dataplane_conf_default(struct dp_dataplane_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->worker.idle = DP_IDLE_ADAPTIVE;
	conf->worker.spin_us = 1000;
	conf->worker.yield_us = 20;
	conf->worker.sleep_max_us = 100000;
	conf->worker.ring_size = 1024;
	conf->worker.quantum_us = 50;
	conf->worker.lane_share = 3;
	conf->max_in_flight = 4096;
	conf->max_streams_per_worker = 256;
	conf->n_frontends = 1;
	dp_pool_conf_default(&conf->pools);
	dp_shed_conf_default(&conf->shed);
}

/* The worker of the lcore at @p index, on EAL lcore @p lcore, and its stream slots. */
static int
add_worker(struct dp_dataplane *dp, unsigned lcore)
{
	unsigned i = dp->n_workers;
	char name[RTE_MEMPOOL_NAMESIZE];
	struct dp_worker *w;
	int rc;

	w = rte_zmalloc_socket("dp_worker", sizeof(*w), RTE_CACHE_LINE_SIZE,
			       rte_lcore_to_socket_id(lcore));
	if (w == NULL)
		return -ENOMEM;
	rc = dp_worker_init(w, i, lcore, &dp->conf.worker, dp->reg, dp->pools);
	if (rc != 0) {
		rte_free(w);
		return rc;
	}
	if (i < dp->n_frontends)
		w->lc.roles |= DP_ROLE_FRONTEND;
	if (i == 0)
		w->lc.roles |= DP_ROLE_CONTROL;
	w->shed_conf = &dp->shed_conf;
	dp->workers[i] = w;
	dp->n_workers++;
	snprintf(name, sizeof(name), "dp_stream_%u", i);
	/* No per-lcore cache: slots are taken and returned by front ends. */
	dp->stream_pool[i] =
	    rte_mempool_create(name, dp->conf.max_streams_per_worker, sizeof(struct dp_stream), 0,
			       0, NULL, NULL, NULL, NULL, (int)rte_lcore_to_socket_id(lcore), 0);
	return dp->stream_pool[i] != NULL ? 0 : -ENOMEM;
}

/* Links: a front end into its own worker and into every worker-only lcore. */
static int
make_links(struct dp_dataplane *dp)
{
	for (unsigned f = 0; f < dp->n_frontends; f++) {
		for (unsigned w = 0; w < dp->n_workers; w++) {
			if (w < dp->n_frontends && w != f)
				continue;
			dp->link[f][w] = dp_link_create(dp->workers[w], f);
			if (dp->link[f][w] == NULL)
				return -errno;
		}
	}
	return 0;
}

struct dp_dataplane *
dp_dataplane_create(const struct dp_dataplane_conf *conf)
{
	struct dp_dataplane *dp;
	unsigned lcore;
	int rc;

	if (conf->max_in_flight == 0 || conf->max_streams_per_worker == 0 ||
	    conf->n_frontends == 0 || conf->n_frontends > DP_FRONTENDS_MAX ||
	    conf->n_frontends > rte_lcore_count()) {
		errno = EINVAL;
		return NULL;
	}
	dp = calloc(1, sizeof(*dp));
	if (dp == NULL)
		return NULL;
	dp->conf = *conf;
	dp->n_frontends = conf->n_frontends;
	dp->tsc_hz = rte_get_tsc_hz();
	dp->shed_conf = &dp->conf.shed; /* until the control plane publishes its own */

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

	/* The main lcore first: it is front end 0 (and the control poller's home). */
	rc = add_worker(dp, rte_get_main_lcore());
	RTE_LCORE_FOREACH_WORKER (lcore) {
		if (rc != 0 || dp->n_workers == DP_WORKERS_MAX)
			break;
		rc = add_worker(dp, lcore);
	}
	if (rc == 0)
		rc = make_links(dp);
	if (rc != 0) {
		errno = -rc;
		goto err_free;
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
	struct dp_lcore *lcs[DP_WORKERS_MAX];
	unsigned first, n = 0;

	if (conf->n_ports == 0)
		return 0;
	if (dp->launched || dp->udp != NULL)
		return -EBUSY;
	/* Port queues belong to the worker-only lcores, which can sleep briefly and poll; only
	 * when every lcore runs a front end do the front ends poll them too. */
	first = dp->n_workers > dp->n_frontends ? dp->n_frontends : 0;
	for (unsigned w = first; w < dp->n_workers; w++)
		lcs[n++] = &dp->workers[w]->lc;
	dp->udp = dp_udp_create(conf, lcs, n, err, errlen);
	if (dp->udp == NULL)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		dp->udp_wk[first + i] = dp->udp->wk[i];
		dp->workers[first + i]->lc.roles |= DP_ROLE_UDP;
	}
	return 0;
}

/* UDP poller adapters (struct dp_poller): RX on while the reactor runs. */
static unsigned
udp_poll(void *arg)
{
	return dp_udp_poll(arg, true);
}

static uint64_t
udp_idle(void *arg)
{
	struct dp_udp_wk *wk = arg;

	if (dp_udp_pending(wk))
		return 0;
	/* A NIC queue cannot wake us: a lcore that polls ports looks again soon. */
	return wk->owns_queue ? (uint64_t)wk->udp->conf.idle_poll_us * 1000u : DP_SLEEP_FOREVER;
}

int
dp_dataplane_add_pollers(struct dp_dataplane *dp, unsigned w, struct dp_reactor *r)
{
	struct dp_poller wp = {.name = "worker",
			       .poll = dp_worker_poll,
			       .idle = dp_worker_idle,
			       .arg = dp->workers[w]};
	int rc = dp_reactor_add(r, &wp);

	if (rc == 0 && dp->udp_wk[w] != NULL) {
		struct dp_poller up = {
		    .name = "udp", .poll = udp_poll, .idle = udp_idle, .arg = dp->udp_wk[w]};

		rc = dp_reactor_add(r, &up);
	}
	return rc;
}

/* A worker-only lcore's last act: everything handed over is run and handed back. */
static void
worker_exit(void *arg)
{
	struct dp_lcore_exit *e = arg;
	struct dp_worker *w = e->w;
	struct dp_udp_wk *wk = e->wk;

	dp_worker_drain(w);
	if (wk != NULL)
		while (dp_udp_poll(wk, false) != 0)
			;
	atomic_store_explicit(&w->running, false, memory_order_release);
}

static int
worker_main(void *arg)
{
	struct dp_reactor *r = arg;
	struct dp_worker *w = r->wait_arg;
	char name[16];

	snprintf(name, sizeof(name), "dp-worker-%u", w->lc.index);
	pthread_setname_np(pthread_self(), name);
	atomic_store_explicit(&w->running, true, memory_order_release);
	return dp_reactor_run(r);
}

int
dp_dataplane_launch(struct dp_dataplane *dp)
{
	for (unsigned i = dp->n_frontends; i < dp->n_workers; i++) {
		struct dp_worker *w = dp->workers[i];
		struct dp_reactor *r = &dp->reactor[i];
		int rc;

		memset(r, 0, sizeof(*r));
		rc = dp_dataplane_add_pollers(dp, i, r);
		if (rc != 0)
			return rc;
		r->wait = dp_worker_wait;
		r->wait_prepare = dp_worker_wait_prepare;
		r->wait_arg = w;
		r->idle = w->conf.idle;
		r->spin_us = w->conf.spin_us;
		r->yield_us = w->conf.yield_us;
		r->stats = &w->stats.r;
		r->stop = &w->stop;
		g_exit[i].w = w;
		g_exit[i].wk = dp->udp_wk[i];
		r->on_exit = worker_exit;
		r->on_exit_arg = &g_exit[i];
		rc = rte_eal_remote_launch(worker_main, r, w->lc.lcore);
		if (rc != 0)
			return rc;
	}
	dp->launched = 1;
	return 0;
}

bool
dp_dataplane_running(const struct dp_dataplane *dp)
{
	for (unsigned i = dp->n_frontends; i < dp->n_workers; i++)
		if (!atomic_load_explicit(&dp->workers[i]->running, memory_order_acquire))
			return false;
	return true;
}

void
dp_dataplane_stop(struct dp_dataplane *dp)
{
	if (!dp->launched)
		return;
	for (unsigned i = dp->n_frontends; i < dp->n_workers; i++) {
		atomic_store_explicit(&dp->workers[i]->stop, true, memory_order_relaxed);
		dp_wake_bump(&dp->workers[i]->lc.wake);
	}
	for (unsigned i = dp->n_frontends; i < dp->n_workers; i++)
		rte_eal_wait_lcore(dp->workers[i]->lc.lcore);
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

void
dp_dataplane_set_shed_conf(struct dp_dataplane *dp, const struct dp_shed_conf *c)
{
	/* Release: the values before the pointer; pairs with rcu_dereference in the workers'
	 * shed_tick(). */
	rcu_assign_pointer(dp->shed_conf, (struct dp_shed_conf *)c);
}

uint64_t
dp_dataplane_deadline_tsc(const struct dp_dataplane *dp, uint64_t timeout_ns)
{
	if (timeout_ns == 0)
		return 0;
	return rte_rdtsc() + (uint64_t)((double)timeout_ns * (double)dp->tsc_hz / 1e9);
}

/* ==== Submit and complete =================================================================== */
/* Hot path: per request, front ends and workers. No locks or allocation. */

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
	req->kit = NULL;
	req->cookie = NULL;
	req->pipeline = NULL;
	req->stream = NULL;
	req->owns_stream = 0;
	req->prio = DP_PRIO_NORMAL;
	req->run_flags = DP_RUN_FRAME;
	req->seq = 0;
	req->deadline_tsc = 0;
	req->submit_tsc = 0;
	req->est_cycles = 0;
	req->mem_est = 0;
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
	dp_req_drop_kit(req);
	dp_pipeline_unref(req->pipeline);
	if (req->owns_stream)
		dp_stream_close(req->stream);
	rte_mempool_put(dp->req_pool, req);
}

void
dp_req_drop_kit(struct dp_req *req)
{
	while (req->kit != NULL) {
		struct dp_buf *b = req->kit;

		req->kit = b->next;
		dp_buf_free(b);
	}
}

void
dp_req_plan(const struct dp_dataplane *dp, const struct dp_pipeline *p, const struct dp_format *in,
	    const uint8_t *data, uint32_t len, uint64_t *mem, struct dp_kit_plan *kit)
{
	int n = dp_pipeline_frame_plan(p, in, len, data, dp_pools_max_size(dp->pools), mem,
				       kit->size, DP_KIT_MAX);

	/* More than a kit holds, or not planned: the nodes take as they run. */
	kit->n = n < 0 ? 0 : (unsigned)n;
}

int
dp_req_take_kit(struct dp_dataplane *dp, struct dp_req *req, const struct dp_kit_plan *plan,
		struct dp_kit_plan *missed)
{
	for (unsigned i = 0; i < plan->n; i++) {
		struct dp_buf *b = dp_pools_get(dp->pools, plan->size[i]);

		if (b == NULL) {
			/* All or nothing: a frame never holds some buffers while it waits for
			 * others (two such frames could each hold what the other needs). */
			dp_req_drop_kit(req);
			if (missed != NULL)
				*missed = *plan;
			return -ENOMEM;
		}
		b->next = req->kit;
		req->kit = b;
	}
	return 0;
}

bool
dp_kit_may_fit(const struct dp_dataplane *dp, const struct dp_kit_plan *plan)
{
	return dp_pools_may_give(dp->pools, plan->size, plan->n);
}

int
dp_link_submit(struct dp_link *l, struct dp_worker *w, struct dp_req *req)
{
	/* At most ring_size in flight per link: then neither of its rings can overflow. */
	if (dp_link_in_flight(l) >= w->conf.ring_size)
		return -ENOBUFS;
	req->submit_tsc = rte_rdtsc();
	if (unlikely(rte_ring_sp_enqueue(l->in, req) != 0))
		return -ENOBUFS;
	/* Only the link's front end writes `submitted`. */
	__atomic_store_n(&l->submitted, l->submitted + 1, __ATOMIC_RELAXED);
	/* After the enqueue's release: pairs with the worker's value read in
	 * dp_worker_wait_prepare() before its idle re-check. A front end's own worker runs on
	 * the same lcore and never sleeps on it. */
	if (!(w->lc.roles & DP_ROLE_FRONTEND))
		dp_wake_bump(&w->lc.wake);
	return 0;
}

unsigned
dp_link_collect(struct dp_link *l, struct dp_req **out, unsigned max)
{
	unsigned n = rte_ring_sc_dequeue_burst(l->done, (void **)out, max, NULL);

	/* Only the link's front end writes `completed`. */
	if (n != 0)
		__atomic_store_n(&l->completed, l->completed + n, __ATOMIC_RELAXED);
	return n;
}

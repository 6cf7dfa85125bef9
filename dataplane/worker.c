/*
 * Pipeline work on an lcore (see worker.h): the request runner shared by every path, and the
 * poller over the links front ends hand requests through.
 */
#include "dataplane/worker.h"

#include "dataplane/stat.h"

#include <errno.h>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <stdio.h>
#include <string.h>

/* Prefetch the descriptor this many slots ahead of the one being run. */
#define PREFETCH_OFFSET 2

const char *
dp_role_names(unsigned roles, char *buf, size_t len)
{
	static const char *const names[] = {"frontend", "worker", "udp", "control"};
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((roles & (1u << i)) && off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "+" : "",
						names[i]);
	return buf;
}

/* The CPU lcore @p lcore runs on: the first of its EAL cpuset (--lcores 0@1 puts lcore 0 on CPU
 * 1; rte_lcore_to_cpu_id() gives the lcore's "core id", which is not that CPU). */
static unsigned
first_cpu(unsigned lcore)
{
	rte_cpuset_t set = rte_lcore_cpuset(lcore);

	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	return 0;
}

int
dp_worker_init(struct dp_worker *w, unsigned index, unsigned lcore,
	       const struct dp_worker_conf *conf, struct dp_registry *reg,
	       const struct dp_pools *pools)
{
	if (conf->ring_size == 0 || (conf->ring_size & (conf->ring_size - 1)) != 0)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->lc.index = index;
	w->lc.lcore = lcore;
	w->lc.cpu = lcore < RTE_MAX_LCORE ? first_cpu(lcore) : 0;
	w->lc.socket = (int)rte_lcore_to_socket_id(lcore);
	w->lc.roles = DP_ROLE_WORKER;
	w->lc.tsc_hz = rte_get_tsc_hz();
	w->lc.reg = reg;
	w->lc.pools = pools;
	/* Multi producer: several front ends, and UDP hand-offs, may bump it. */
	dp_wake_init(&w->lc.wake, false);
	atomic_init(&w->lc.shedding, false);
	atomic_init(&w->lc.pushback_ms, 1);
	w->conf = *conf;
	atomic_init(&w->stop, false);
	atomic_init(&w->running, false);
	dp_shed_conf_default(&w->shed_conf_default);
	w->shed_conf = NULL;
	w->quantum_cycles = (uint64_t)conf->quantum_us * (w->lc.tsc_hz / 1000000);
	w->lane_share = conf->lane_share ? conf->lane_share : 3;
	w->lc.met = dp_metrics_create(w->lc.tsc_hz, w->lc.socket);
	if (w->lc.met == NULL)
		return -ENOMEM;
	return 0;
}

struct dp_link *
dp_link_create(struct dp_worker *w, unsigned fe)
{
	char name[RTE_RING_NAMESIZE];
	struct dp_link *l;

	if (w->n_links == DP_FRONTENDS_MAX) {
		errno = ENOSPC;
		return NULL;
	}
	l = rte_zmalloc_socket("dp_link", sizeof(*l), RTE_CACHE_LINE_SIZE, w->lc.socket);
	if (l == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	l->fe = fe;
	l->worker = w->lc.index;
	/* EXACT_SZ: capacity is ring_size itself, which the in-flight accounting relies on. */
	snprintf(name, sizeof(name), "dp_in_%u_%u", fe, w->lc.index);
	l->in = rte_ring_create(name, w->conf.ring_size, w->lc.socket,
				RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
	snprintf(name, sizeof(name), "dp_done_%u_%u", fe, w->lc.index);
	l->done = rte_ring_create(name, w->conf.ring_size, w->lc.socket,
				  RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (l->in == NULL || l->done == NULL) {
		rte_ring_free(l->in);
		rte_ring_free(l->done);
		rte_free(l);
		errno = ENOMEM;
		return NULL;
	}
	w->link[w->n_links++] = l;
	return l;
}

void
dp_worker_fini(struct dp_worker *w)
{
	for (unsigned i = 0; i < w->n_links; i++) {
		rte_ring_free(w->link[i]->in);
		rte_ring_free(w->link[i]->done);
		rte_free(w->link[i]);
		w->link[i] = NULL;
	}
	w->n_links = 0;
	dp_metrics_free(w->lc.met);
	w->lc.met = NULL;
}

uint64_t
dp_worker_in_flight(const struct dp_worker *w)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < w->n_links; i++)
		n += dp_link_in_flight(w->link[i]);
	return n;
}

void
dp_worker_stats_read(const struct dp_worker *w, struct dp_worker_stats *out)
{
	const struct dp_worker_stats *s = &w->stats;

	out->requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
	out->bursts = __atomic_load_n(&s->bursts, __ATOMIC_RELAXED);
	out->bulk_runs = __atomic_load_n(&s->bulk_runs, __ATOMIC_RELAXED);
	out->quanta = __atomic_load_n(&s->quanta, __ATOMIC_RELAXED);
	out->parked = __atomic_load_n(&s->parked, __ATOMIC_RELAXED);
	out->stopped_deadline = __atomic_load_n(&s->stopped_deadline, __ATOMIC_RELAXED);
	out->stopped_cancel = __atomic_load_n(&s->stopped_cancel, __ATOMIC_RELAXED);
	out->r.busy_cycles = __atomic_load_n(&s->r.busy_cycles, __ATOMIC_RELAXED);
	out->r.total_cycles = __atomic_load_n(&s->r.total_cycles, __ATOMIC_RELAXED);
	out->r.sleeps = __atomic_load_n(&s->r.sleeps, __ATOMIC_RELAXED);
}

void
dp_worker_codes_read(const struct dp_worker *w, uint64_t out[DP_STATUS_MAX])
{
	struct dp_met_row r;

	memset(&r, 0, sizeof(r));
	if (w->lc.met != NULL)
		for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
			dp_metrics_read_row(w->lc.met, id, &r);
	memcpy(out, r.by_code, sizeof(r.by_code));
}

/* ==== Hot path ============================================================================== */
/* Hot path: per request, the lcore that runs it. No locks, syscalls, allocation or logging. */

static inline uint64_t
cycles_to_ns(const struct dp_worker *w, uint64_t cycles)
{
	return (uint64_t)((double)cycles * 1e9 / (double)w->lc.tsc_hz);
}

/* Metrics: this lcore's own rows, plain stores (metrics.h). NULL only in the metrics-off arm
 * of perf/bench_worker. */
static inline void
met_count(struct dp_worker *w, uint32_t id, unsigned status)
{
	if (likely(w->lc.met != NULL))
		dp_metrics_count(w->lc.met, id, status);
}

/*
 * Everything before the nodes run: the pipeline (its stream's, its own reference, or by name
 * from the registry), then the deadline and cancellation checks. @return the pipeline, or
 * NULL when the request is answered already (req->status set and counted).
 */
static inline const struct dp_pipeline *
exec_prepare(struct dp_worker *w, struct dp_req *req, uint64_t now, void **state)
{
	const struct dp_pipeline *p;

	req->worker = (uint16_t)w->lc.index;
	req->res.n_annot = 0;
	req->res.err.msg[0] = '\0';
	req->dp_ns = 0;
	*state = NULL;
	/* The version this request runs on: its stream's, its own reference, or (by name) the
	 * registry's, read on the RCU read side and valid until this lcore's next quiescent
	 * state, which is after the whole pass (dp_reactor_poll_once). */
	if (req->stream != NULL) {
		p = req->stream->p;
		*state = req->stream->state;
	} else if ((p = req->pipeline) == NULL) {
		p = dp_registry_lookup(w->lc.reg, req->name, req->hash);
		if (unlikely(p == NULL)) {
			req->status = dp_err_set(&req->res.err, DP_NOT_FOUND,
						 "pipeline '%s' not found", req->name);
			met_count(w, 0, req->status);
			return NULL;
		}
	}

	/* Never start work nobody waits for any more: the deadline covers queueing too. */
	if (unlikely(req->deadline_tsc != 0 && now >= req->deadline_tsc)) {
		req->status =
		    dp_err_set(&req->res.err, DP_DEADLINE_EXCEEDED,
			       "deadline expired after %llu us in queue; not run",
			       (unsigned long long)cycles_to_ns(w, now - req->submit_tsc) / 1000);
		met_count(w, p->id, req->status);
		return NULL;
	}
	/* Acquire: pairs with the release store when the call's cancellation was seen. */
	if (unlikely(req->cancelled != NULL &&
		     atomic_load_explicit(req->cancelled, memory_order_acquire))) {
		req->status = dp_err_set(&req->res.err, DP_CANCELLED,
					 "call cancelled before it ran; not run");
		met_count(w, p->id, req->status);
		return NULL;
	}
	return p;
}

static inline void
exec_context(struct dp_worker *w, struct dp_req *req, struct dp_exec *x)
{
	dp_exec_init(x, req->buf, &req->fmt, w->lc.pools, &req->res, &req->kit);
}

/* After the nodes: output back into the request, time, metrics and the cost model. */
static inline void
exec_finish(struct dp_worker *w, struct dp_req *req, const struct dp_pipeline *p,
	    const struct dp_exec *x, uint32_t in_len, uint64_t cycles)
{
	req->buf = x->buf;
	req->fmt = x->fmt;
	req->dp_ns = cycles_to_ns(w, cycles);
	met_count(w, p->id, req->status);
	if (likely(w->lc.met != NULL)) {
		dp_metrics_observe(w->lc.met, p->id, cycles);
		/* Only whole runs teach the cost model (stopped work ran part of its cost). */
		if (req->status == DP_OK)
			dp_metrics_learn_cost(w->lc.met, p->id, in_len, cycles);
		dp_metrics_bytes(w->lc.met, p->id, in_len,
				 req->status == DP_OK ? req->buf->len : 0);
	}
	dp_stat_add(&w->stats.requests, 1);
}

void
dp_worker_exec(struct dp_worker *w, struct dp_req *req)
{
	const struct dp_pipeline *p;
	struct dp_exec x;
	void *state;
	uint64_t t0 = rte_rdtsc();
	uint32_t in_len;

	p = exec_prepare(w, req, t0, &state);
	if (p == NULL)
		return;
	in_len = req->buf->len;
	exec_context(w, req, &x);
	req->status = (uint16_t)dp_pipeline_run(p, &x, state, req->run_flags);
	w->exec_end_tsc = rte_rdtsc();
	exec_finish(w, req, p, &x, in_len, w->exec_end_tsc - t0);
}

/* ---- The bulk lane ---- */

/* Hand a finished request back on its link. `done` cannot be full (poll_link). */
static inline void
hand_back(struct dp_link *l, struct dp_req *req)
{
	while (unlikely(rte_ring_sp_enqueue(l->done, req) != 0))
		rte_pause();
}

/* Does @p req go to the bulk lane? Its cost, its size, its priority, or its stream's earlier
 * frames (a stream's frames keep one priority, so they stay in order in one FIFO). */
static inline bool
goes_bulk(const struct dp_worker *w, const struct dp_req *req)
{
	if (w->quantum_cycles == 0)
		return false;
	if (req->stream != NULL && req->stream->deferred != 0)
		return true;
	/* An input of one slice or less cannot be cut by the nodes' slices anyway, and a noisy
	 * cost estimate (a preempted run teaches a high cost) must not send a 64-byte call to
	 * wait behind a running big one: such requests go by priority only. */
	if (req->buf->len <= DP_SLICE_BYTES)
		return req->prio == DP_PRIO_LOW;
	return req->est_cycles > w->quantum_cycles || req->buf->len >= DP_BULK_BYTES ||
	       req->prio == DP_PRIO_LOW;
}

/* The lane's FIFO (and park slot) for @p req. */
static inline unsigned
prio_q(const struct dp_req *req)
{
	return req->prio < DP_PRIO_MAX ? req->prio : DP_PRIO_NORMAL;
}

static inline void
bulk_push(struct dp_worker *w, struct dp_link *l, struct dp_req *req)
{
	unsigned q = prio_q(req);

	req->link = l;
	req->next = NULL;
	if (w->bulk_tail[q] != NULL)
		w->bulk_tail[q]->next = req;
	else
		w->bulk_head[q] = req;
	w->bulk_tail[q] = req;
	w->n_bulk++;
	if (req->stream != NULL)
		req->stream->deferred++;
	dp_stat_add(&w->stats.bulk_runs, 1);
}

/* Park the running request (started) in its priority's slot: its run moves with it. */
static void
bulk_park(struct dp_worker *w)
{
	w->park[prio_q(w->cur.req)] = w->cur;
	w->cur.req = NULL;
	w->cur.started = false;
	w->n_parked++;
	dp_stat_add(&w->stats.parked, 1);
}

/* Is newer work of a higher priority than the running @p req waiting? (A parked one cannot
 * be: it would have resumed before @p req started.) */
static inline bool
bulk_outranked(const struct dp_worker *w, const struct dp_req *req)
{
	for (unsigned q = 0; q < prio_q(req); q++)
		if (w->bulk_head[q] != NULL)
			return true;
	return false;
}

/* The next request to run, into w->cur: a parked one of the highest priority (it is older
 * than its FIFO's head; it comes back started), else the oldest of the highest priority.
 * @return false: the lane is empty. */
static inline bool
bulk_take(struct dp_worker *w)
{
	for (unsigned q = 0; q < DP_PRIO_MAX; q++) {
		struct dp_req *req = w->bulk_head[q];

		if (w->park[q].req != NULL) {
			w->cur = w->park[q];
			w->park[q].req = NULL;
			w->n_parked--;
			return true;
		}
		if (req == NULL)
			continue;
		w->bulk_head[q] = req->next;
		if (w->bulk_head[q] == NULL)
			w->bulk_tail[q] = NULL;
		w->cur.req = req;
		w->cur.started = false;
		return true;
	}
	return false;
}

/* @p r (running or parked) is answered: out of the lane, back on its link. */
static void
bulk_pop(struct dp_worker *w, struct dp_bulk_run *r)
{
	struct dp_req *req = r->req;

	r->req = NULL;
	r->started = false;
	w->n_bulk--;
	if (req->stream != NULL)
		req->stream->deferred--;
	hand_back(req->link, req);
}

/* Must a started run stop between quanta? @return DP_DEADLINE_EXCEEDED, DP_CANCELLED or 0. */
static inline int
bulk_must_stop(const struct dp_req *req, uint64_t now)
{
	if (unlikely(req->deadline_tsc != 0 && now >= req->deadline_tsc))
		return DP_DEADLINE_EXCEEDED;
	if (unlikely(req->cancelled != NULL &&
		     /* Acquire: pairs with the release store of the cancellation. */
		     atomic_load_explicit(req->cancelled, memory_order_acquire)))
		return DP_CANCELLED;
	return 0;
}

/* Stop the started run @p r (running or parked; @p status from bulk_must_stop): its buffers go
 * back, and it is answered and leaves the lane. */
static void __attribute__((cold)) bulk_stop(struct dp_worker *w, struct dp_bulk_run *r, int status)
{
	struct dp_req *req = r->req;
	const struct dp_pipeline *p = r->p;
	unsigned node = r->run.node;
	uint32_t pos = r->run.pos, len = r->run.node_len;

	/* Between nodes: the last one finished (or none started: 0 of the input). */
	if (!r->run.in_slice && node > 0)
		node--;
	else if (!r->run.in_slice)
		pos = 0, len = r->x.buf->len;
	dp_pipeline_step_abort(p, &r->x, &r->run);
	req->status = (uint16_t)dp_err_set(
	    &req->res.err, status, "%s while running, after %u of %u bytes (node %u, %s)",
	    status == DP_DEADLINE_EXCEEDED ? "deadline passed" : "call cancelled", pos, len, node,
	    p->nodes[node].type->name);
	req->res.n_annot = 0;
	if (status == DP_DEADLINE_EXCEEDED)
		dp_stat_add(&w->stats.stopped_deadline, 1);
	else
		dp_stat_add(&w->stats.stopped_cancel, 1);
	exec_finish(w, req, p, &r->x, r->in_len, r->cycles);
	bulk_pop(w, r);
}

/* Stop the parked runs whose deadline passed or whose call was cancelled, instead of letting
 * them wait for the work that outranked them. @return how many stopped. */
static unsigned __attribute__((cold)) bulk_reap_parked(struct dp_worker *w, uint64_t now)
{
	unsigned n = 0;

	for (unsigned q = 0; q < DP_PRIO_MAX; q++) {
		int st;

		if (w->park[q].req == NULL || (st = bulk_must_stop(w->park[q].req, now)) == 0)
			continue;
		bulk_stop(w, &w->park[q], st);
		w->n_parked--;
		n++;
	}
	return n;
}

/* One quantum of the lane's head. @return >= 1 (work done) or 0 (lane empty). */
static unsigned
bulk_advance(struct dp_worker *w)
{
	struct dp_bulk_run *r = &w->cur;
	struct dp_req *req;
	unsigned n = 0;
	uint64_t t0, t1;
	int rc;

	if (r->req != NULL && r->started && unlikely(bulk_outranked(w, r->req)))
		bulk_park(w);
	t0 = rte_rdtsc();
	if (unlikely(w->n_parked != 0))
		n = bulk_reap_parked(w, t0);
	if (r->req == NULL && !bulk_take(w))
		return n;
	req = r->req;
	if (!r->started) {
		const struct dp_pipeline *p = exec_prepare(w, req, t0, &r->state);

		if (p == NULL) {
			bulk_pop(w, r);
			return n + 1;
		}
		/* It runs over several passes, past this lcore's quiescent states: a pipeline
		 * found by name needs a reference of its own (dp_req_free drops it). */
		if (req->pipeline == NULL && req->stream == NULL) {
			dp_pipeline_ref((struct dp_pipeline *)p);
			req->pipeline = (struct dp_pipeline *)p;
		}
		r->p = p;
		r->cycles = 0;
		r->in_len = req->buf->len;
		exec_context(w, req, &r->x);
		dp_run_init(&r->run);
		r->started = true;
	} else if (unlikely((rc = bulk_must_stop(req, t0)) != 0)) {
		bulk_stop(w, r, rc);
		return n + 1;
	}
	rc = dp_pipeline_step(r->p, &r->x, r->state, req->run_flags, &r->run,
			      t0 + w->quantum_cycles);
	t1 = rte_rdtsc();
	r->cycles += t1 - t0;
	w->bulk_last_cycles = t1 - t0;
	w->bulk_pass_cycles = t1 - t0;
	dp_stat_add(&w->stats.quanta, 1);
	if (rc == DP_PENDING)
		return n + 1;
	req->status = (uint16_t)rc;
	exec_finish(w, req, r->p, &r->x, r->in_len, r->cycles);
	bulk_pop(w, r);
	return n + 1;
}

static void shed_tick(struct dp_worker *w, uint64_t now);

/* One link: a burst (at most @p max) from `in`; small requests run and go onto `done`, large
 * ones join the bulk lane. */
static inline unsigned
poll_link(struct dp_worker *w, struct dp_link *l, unsigned max)
{
	struct dp_req *reqs[DP_WORKER_BURST];
	unsigned n, done, i, k = 0;

	/* A front end's own queue holds its larger work: one request per pass, so the front
	 * end polls its completion queue between them (small calls are not held behind a
	 * burst of large ones). */
	n = rte_ring_sc_dequeue_burst(l->in, (void **)reqs,
				      (w->lc.roles & DP_ROLE_FRONTEND) ? 1 : max, NULL);
	if (n == 0)
		return 0;
	for (i = 0; i < n && i < PREFETCH_OFFSET; i++)
		rte_prefetch0(reqs[i]);
	for (i = 0; i < n; i++) {
		if (i + PREFETCH_OFFSET < n)
			rte_prefetch0(reqs[i + PREFETCH_OFFSET]);
		if (unlikely(goes_bulk(w, reqs[i]))) {
			bulk_push(w, l, reqs[i]);
			continue;
		}
		dp_worker_exec(w, reqs[i]);
		reqs[k++] = reqs[i];
		/* Requests whose cost is not known yet run whole, and a burst of them can take
		 * long (32 x 20 ms): shedding is evaluated on time between them too, not only
		 * between passes (it missed a whole overload that way). */
		if (unlikely(w->exec_end_tsc >= w->shed_next_tsc))
			shed_tick(w, w->exec_end_tsc);
	}
	/*
	 * `done` cannot be full: the front end keeps at most ring_size requests in flight on a
	 * link until it has taken them off this ring (dp_link_in_flight). Looping keeps "every
	 * request gets one answer" even if that invariant were broken, at the price of waiting.
	 * The front end polls `done` itself while it has work in flight: no wake-up needed.
	 */
	done = 0;
	while (done < k) {
		done += rte_ring_sp_enqueue_burst(l->done, (void **)reqs + done, k - done, NULL);
		if (unlikely(done < k))
			rte_pause();
	}
	dp_stat_add(&w->stats.bursts, 1);
	return n;
}

/* Every 10 ms: this worker's own shedding state and retry hint, from its own counters. */
static void
shed_tick(struct dp_worker *w, uint64_t now)
{
	const struct dp_shed_conf *c;
	uint64_t depth = dp_worker_in_flight(w);
	double svc_ns, ms;
	uint64_t reqs;

	w->shed_next_tsc = now + w->lc.tsc_hz / (1000000000ull / DP_SHED_INTERVAL_NS);
	/* The configuration is published with RCU (dp_dataplane_set_shed_conf): read on this
	 * lcore's read side, used only within this pass. */
	c = w->shed_conf != NULL ? rcu_dereference(*w->shed_conf) : NULL;
	if (c == NULL)
		c = &w->shed_conf_default;
	/* Busy with bulk quanta is not overload: that work only takes the time small work leaves
	 * (and its share), so it counts as idle here; a bulk backlog shows in the queue depth. */
	dp_shed_eval(&w->shed, c, (uint64_t)((double)now * 1e9 / (double)w->lc.tsc_hz), depth,
		     w->conf.ring_size, w->stats.r.busy_cycles - w->bulk_cycles,
		     w->stats.r.total_cycles);
	atomic_store_explicit(&w->lc.shedding, w->shed.active, memory_order_relaxed);
	/* Retry hint: this worker's queue times its mean service time; clamped to [1, 5000]. */
	reqs = w->stats.requests;
	svc_ns = reqs ? (double)w->stats.r.busy_cycles * 1e9 / (double)w->lc.tsc_hz / (double)reqs
		      : 100e3;
	ms = (double)depth * svc_ns / 1e6;
	atomic_store_explicit(&w->lc.pushback_ms,
			      ms < 1	  ? 1
			      : ms > 5000 ? 5000
					  : (unsigned)ms,
			      memory_order_relaxed);
}

unsigned
dp_worker_poll(void *arg)
{
	struct dp_worker *w = arg;
	unsigned n = 0;

	if (likely(w->n_bulk == 0)) {
		for (unsigned i = 0; i < w->n_links; i++)
			n += poll_link(w, w->link[i], DP_WORKER_BURST);
	} else {
		/* Bulk work waits: small work first, one request per link at a time, for at
		 * most lane_share times the bulk quantum's time; then one quantum of bulk work. */
		uint64_t end = rte_rdtsc() + dp_worker_share_cycles(w);
		unsigned got;

		do {
			got = 0;
			for (unsigned i = 0; i < w->n_links; i++)
				got += poll_link(w, w->link[i], 1);
			n += got;
		} while (got != 0 && rte_rdtsc() < end);
		n += bulk_advance(w);
		if (unlikely(w->n_links != 0 && rte_rdtsc() >= w->shed_next_tsc))
			shed_tick(w, rte_rdtsc());
		/* After the tick: it sets bulk_cycles against busy_cycles, which the reactor
		 * only adds this pass to when the pass has ended. */
		w->bulk_cycles += w->bulk_pass_cycles;
		w->bulk_pass_cycles = 0;
		return n;
	}
	if (unlikely(w->n_links != 0 && rte_rdtsc() >= w->shed_next_tsc))
		shed_tick(w, rte_rdtsc());
	return n;
}

uint64_t
dp_worker_idle(void *arg)
{
	struct dp_worker *w = arg;

	/* The re-check after the event count was read (dp_worker_wait_prepare): a hand-off
	 * between the last pass and here either shows in a ring now or has moved the count. */
	if (w->n_bulk != 0)
		return 0;
	for (unsigned i = 0; i < w->n_links; i++)
		if (!rte_ring_empty(w->link[i]->in))
			return 0;
	if (w->lc.roles & DP_ROLE_FRONTEND)
		return DP_SLEEP_FOREVER; /* fed by its own front end, on this lcore */
	/* Re-evaluate shedding (it decays when idle) at least this often. */
	return (uint64_t)w->conf.sleep_max_us * 1000u;
}

void
dp_worker_wait_prepare(void *arg)
{
	struct dp_worker *w = arg;

	w->wake_seen = dp_wake_value(&w->lc.wake);
}

unsigned
dp_worker_wait(void *arg, uint64_t timeout_ns)
{
	struct dp_worker *w = arg;

	dp_wake_wait(&w->lc.wake, w->wake_seen, timeout_ns);
	return 0;
}

void
dp_worker_drain(struct dp_worker *w)
{
	unsigned n;

	do {
		n = 0;
		for (unsigned i = 0; i < w->n_links; i++)
			n += poll_link(w, w->link[i], DP_WORKER_BURST);
		n += bulk_advance(w);
		dp_rcu_quiescent_state();
	} while (n != 0);
}

/*
 * The worker lcore loop.
 *
 * dp_worker_run() is a thin loop around dp_worker_poll_once() plus the idle policy, so tests
 * drive one iteration at a time on their own thread. Everything a worker writes is either in
 * a descriptor it owns at that moment or in its own cache-aligned statistics block.
 */
#include "dataplane/worker.h"

#include "dataplane/udp.h"

#include <errno.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Single-writer counter update: a relaxed load and store, never a read-modify-write, since
 * only the owning worker writes; readers use relaxed loads (dp_worker_stats_read). */
#define STAT_ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

/* Prefetch the descriptor this many slots ahead of the one being run. */
#define PREFETCH_OFFSET 2

int
dp_idle_policy_parse(const char *s, enum dp_idle_policy *out)
{
	if (strcmp(s, "adaptive") == 0)
		*out = DP_IDLE_ADAPTIVE;
	else if (strcmp(s, "spin") == 0)
		*out = DP_IDLE_SPIN;
	else if (strcmp(s, "sleep") == 0)
		*out = DP_IDLE_SLEEP;
	else
		return -EINVAL;
	return 0;
}

const char *
dp_idle_policy_name(enum dp_idle_policy p)
{
	switch (p) {
	case DP_IDLE_SPIN:
		return "spin";
	case DP_IDLE_SLEEP:
		return "sleep";
	default:
		return "adaptive";
	}
}

int
dp_worker_init(struct dp_worker *w, unsigned index, unsigned lcore,
	       const struct dp_worker_conf *conf, struct dp_registry *reg,
	       const struct dp_pools *pools, struct dp_wake *done_wake)
{
	char name[RTE_RING_NAMESIZE];
	int socket = rte_lcore_to_socket_id(lcore);

	if (conf->ring_size == 0 || (conf->ring_size & (conf->ring_size - 1)) != 0)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->index = index;
	w->lcore = lcore;
	w->conf = *conf;
	w->reg = reg;
	w->pools = pools;
	w->done_wake = done_wake;
	w->tsc_hz = rte_get_tsc_hz();
	atomic_init(&w->stop, false);
	atomic_init(&w->running, false);
	dp_wake_init(&w->wake, true);

	/* EXACT_SZ: capacity is ring_size itself, which the in-flight accounting relies on. */
	w->met = dp_metrics_create(w->tsc_hz, socket);
	if (w->met == NULL)
		return -ENOMEM;
	snprintf(name, sizeof(name), "dp_in_%u", index);
	w->ingress = rte_ring_create(name, conf->ring_size, socket,
				     RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (w->ingress == NULL) {
		dp_metrics_free(w->met);
		w->met = NULL;
		return -ENOMEM;
	}
	snprintf(name, sizeof(name), "dp_done_%u", index);
	w->completion = rte_ring_create(name, conf->ring_size, socket,
					RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (w->completion == NULL) {
		rte_ring_free(w->ingress);
		w->ingress = NULL;
		dp_metrics_free(w->met);
		w->met = NULL;
		return -ENOMEM;
	}
	return 0;
}

void
dp_worker_fini(struct dp_worker *w)
{
	rte_ring_free(w->ingress);
	rte_ring_free(w->completion);
	w->ingress = w->completion = NULL;
	dp_metrics_free(w->met);
	w->met = NULL;
}

void
dp_worker_stats_read(const struct dp_worker *w, struct dp_worker_stats *out)
{
	const struct dp_worker_stats *s = &w->stats;

	out->requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
	out->busy_cycles = __atomic_load_n(&s->busy_cycles, __ATOMIC_RELAXED);
	out->total_cycles = __atomic_load_n(&s->total_cycles, __ATOMIC_RELAXED);
	out->sleeps = __atomic_load_n(&s->sleeps, __ATOMIC_RELAXED);
	out->bursts = __atomic_load_n(&s->bursts, __ATOMIC_RELAXED);
}

void
dp_worker_codes_read(const struct dp_worker *w, uint64_t out[DP_STATUS_MAX])
{
	struct dp_met_row r;

	memset(&r, 0, sizeof(r));
	if (w->met != NULL)
		for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
			dp_metrics_read_row(w->met, id, &r);
	memcpy(out, r.by_code, sizeof(r.by_code));
}

/* ==== Hot path ============================================================================== */
/* Hot path: per request, worker lcores. No locks, syscalls, allocation or logging. */

static inline uint64_t
cycles_to_ns(const struct dp_worker *w, uint64_t cycles)
{
	return (uint64_t)((double)cycles * 1e9 / (double)w->tsc_hz);
}

/* Metrics: this worker's own rows, plain stores (metrics.h). NULL only in the metrics-off
 * arm of perf/bench_worker. */
static inline void
met_count(struct dp_worker *w, uint32_t id, unsigned status)
{
	if (likely(w->met != NULL))
		dp_metrics_count(w->met, id, status);
}

void
dp_worker_exec(struct dp_worker *w, struct dp_req *req)
{
	const struct dp_pipeline *p;
	struct dp_exec x;
	void *state = NULL;
	uint64_t t0 = rte_rdtsc(), t1;
	uint32_t in_len;

	req->worker = (uint16_t)w->index;
	req->res.n_annot = 0;
	req->res.err.msg[0] = '\0';
	req->dp_ns = 0;
	/* The version this request runs on: its stream's, its own reference, or (by name) the
	 * registry's, read on the RCU read side and valid until this worker's next quiescent
	 * state, which is after the whole burst (dp_worker_poll_once). */
	if (req->stream != NULL) {
		p = req->stream->p;
		state = req->stream->state;
	} else if ((p = req->pipeline) == NULL) {
		p = dp_registry_lookup(w->reg, req->name, req->hash);
		if (unlikely(p == NULL)) {
			req->status = dp_err_set(&req->res.err, DP_NOT_FOUND,
						 "pipeline '%s' not found", req->name);
			met_count(w, 0, req->status);
			return;
		}
	}

	/* Never start work nobody waits for any more: the deadline covers queueing too. */
	if (unlikely(req->deadline_tsc != 0 && t0 >= req->deadline_tsc)) {
		req->status =
		    dp_err_set(&req->res.err, DP_DEADLINE_EXCEEDED,
			       "deadline expired after %llu us in queue; not run",
			       (unsigned long long)cycles_to_ns(w, t0 - req->submit_tsc) / 1000);
		met_count(w, p->id, req->status);
		return;
	}
	/* Acquire: pairs with the release store when the call's cancellation was seen. */
	if (unlikely(req->cancelled != NULL &&
		     atomic_load_explicit(req->cancelled, memory_order_acquire))) {
		req->status = dp_err_set(&req->res.err, DP_CANCELLED,
					 "call cancelled before it ran; not run");
		met_count(w, p->id, req->status);
		return;
	}
	x.buf = req->buf;
	x.fmt = req->fmt;
	x.pools = w->pools;
	x.res = &req->res;
	x.node_idx = 0;
	x.node_name = NULL;
	x.state = NULL;
	in_len = req->buf->len;
	req->status = (uint16_t)dp_pipeline_run(p, &x, state, req->run_flags);
	req->buf = x.buf;
	req->fmt = x.fmt;
	t1 = rte_rdtsc();
	req->dp_ns = cycles_to_ns(w, t1 - t0);
	met_count(w, p->id, req->status);
	if (likely(w->met != NULL)) {
		dp_metrics_observe(w->met, p->id, t1 - t0);
		dp_metrics_bytes(w->met, p->id, in_len, req->status == DP_OK ? req->buf->len : 0);
	}
}

/* The ingress ring: a burst of descriptors run and put on the completion ring. */
static inline unsigned
poll_ring(struct dp_worker *w)
{
	struct dp_req *reqs[DP_WORKER_BURST];
	struct dp_worker_stats *s = &w->stats;
	unsigned n, done, i;

	n = rte_ring_sc_dequeue_burst(w->ingress, (void **)reqs, DP_WORKER_BURST, NULL);
	if (n == 0)
		return 0;
	for (i = 0; i < n && i < PREFETCH_OFFSET; i++)
		rte_prefetch0(reqs[i]);
	for (i = 0; i < n; i++) {
		if (i + PREFETCH_OFFSET < n)
			rte_prefetch0(reqs[i + PREFETCH_OFFSET]);
		dp_worker_exec(w, reqs[i]); /* counts the completion in w->met */
	}
	/*
	 * The completion ring cannot be full: the submitter admits at most ring_size
	 * descriptors per worker until the responder has taken them off this ring
	 * (dp_dataplane_submit). Looping keeps "every request gets one answer" even if that
	 * invariant were broken, at the price of waiting for the responder.
	 */
	done = 0;
	while (done < n) {
		done +=
		    rte_ring_sp_enqueue_burst(w->completion, (void **)reqs + done, n - done, NULL);
		if (unlikely(done < n))
			rte_pause();
	}
	/* Release (ring tail store above) then wake: pairs with the acquire value read in
	 * the responder before it re-checks the rings (control/responder.c). */
	dp_wake_bump(w->done_wake);
	STAT_ADD(s->requests, n);
	STAT_ADD(s->bursts, 1);
	return n;
}

/* One iteration: ring, then ports (RX only when @rx: the final drain takes no new frames). */
static inline unsigned
poll(struct dp_worker *w, bool rx)
{
	unsigned n = poll_ring(w);

	if (w->udp != NULL)
		n += dp_udp_poll(w->udp, rx);
	/* Quiescent state: every pipeline pointer looked up in this iteration is dead now. */
	dp_rcu_quiescent_state();
	return n;
}

unsigned
dp_worker_poll_once(struct dp_worker *w)
{
	return poll(w, true);
}

/* ==== The loop ============================================================================== */

static void
idle_sleep(struct dp_worker *w)
{
	uint32_t seen = dp_wake_value(&w->wake);
	uint64_t sleep_us = w->conf.sleep_max_us;

	/* Re-check after reading the event count: a submit (or a hand-off from another
	 * worker) between the last poll and here either shows up in a ring now or has moved
	 * the count past `seen`. */
	if (!rte_ring_empty(w->ingress) || atomic_load_explicit(&w->stop, memory_order_relaxed) ||
	    (w->udp != NULL && dp_udp_pending(w->udp)))
		return;
	/* A NIC queue cannot wake us: a worker that polls ports looks again soon. */
	if (w->udp != NULL && w->udp->owns_queue && w->udp->udp->conf.idle_poll_us < sleep_us)
		sleep_us = w->udp->udp->conf.idle_poll_us;
	/* Offline while asleep, so grace periods (pipeline replaces) need not wait for us. */
	dp_rcu_thread_offline();
	dp_wake_wait(&w->wake, seen, sleep_us * 1000);
	urcu_qsbr_thread_online();
	STAT_ADD(w->stats.sleeps, 1);
}

int
dp_worker_run(void *arg)
{
	struct dp_worker *w = arg;
	uint64_t spin_cycles = w->tsc_hz / 1000000 * w->conf.spin_us;
	uint64_t start, last_work, t0, t1;
	unsigned n;

	/* net_tap signals packet arrival with SIGRTMIN+1 (O_ASYNC; control/main.c blocks it on
	 * the control threads): a signal per arrival would interrupt this loop at packet rate.
	 * Blocked here too, so the EAL interrupt thread, which never blocks it, takes them. */
	{
		sigset_t s;

		sigemptyset(&s);
		sigaddset(&s, SIGRTMIN + 1);
		sigaddset(&s, SIGIO);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
	}
	urcu_qsbr_register_thread();
	atomic_store_explicit(&w->running, true, memory_order_release);
	start = last_work = rte_rdtsc();

	/* Relaxed: stop only needs to be seen eventually; the rings order the data. */
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		t0 = rte_rdtsc();
		n = dp_worker_poll_once(w);
		t1 = rte_rdtsc();
		__atomic_store_n(&w->stats.total_cycles, t1 - start, __ATOMIC_RELAXED);
		if (n != 0) {
			STAT_ADD(w->stats.busy_cycles, t1 - t0);
			last_work = t1;
			continue;
		}
		switch (w->conf.idle) {
		case DP_IDLE_SPIN:
			rte_pause();
			break;
		case DP_IDLE_ADAPTIVE:
			if (t1 - last_work < spin_cycles) {
				rte_pause();
				break;
			}
			/* fall through */
		case DP_IDLE_SLEEP:
			idle_sleep(w);
			/* After a wake-up more work usually follows: spin again first. */
			last_work = rte_rdtsc();
			break;
		}
	}
	/* Drain: the control plane stopped submitting before it set stop, so everything
	 * already submitted is answered. */
	while (poll(w, false) != 0)
		;
	atomic_store_explicit(&w->running, false, memory_order_release);
	dp_rcu_thread_offline();
	urcu_qsbr_unregister_thread();
	return 0;
}

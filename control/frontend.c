/*
 * A gRPC front end on its lcore (see frontend.h): request_call slots, the completion-queue
 * poller, placement of work, collection of handed-over work, and the wait policy.
 */
#include "control/frontend.h"

#include "control/config.h"
#include "control/log.h"
#include "dataplane/stat.h"

#include <errno.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Completion-queue events handled per pass (then the links and the other pollers get a turn). */
#define CQ_BATCH 64
/* Answers collected per link per pass. */
#define COLLECT_BURST 64
/* Generic (unregistered method) slots kept armed. */
#define GENERIC_SLOTS 8
/* With work out and no progress for frontend_spin_us, wait in the queue this long at a time:
 * the C core's poller sleeps in whole milliseconds. */
#define OUT_WAIT_NS 1000000ull
/* Longest blocking wait with nothing to do: periodic checks (Watch, drain) run this often. */
#define TICK_NS 20000000ull
/* Streams waiting for dataplane capacity are retried this often. */
#define BLOCKED_RETRY_NS 1000000ull
/* Inputs up to this size run inline while a pipeline's cost is still unknown. */
#define UNKNOWN_INLINE_BYTES 65536u

/* Connections whose client cancels are tracked at once (a table entry each). */
#define RST_PEERS 4096
/* Key: the peer as grpc_call_get_peer() spells it ("ipv4:127.0.0.1:50000"). */
#define RST_KEY 64

/* One connection's client cancels in the current one-second window. */
struct cp_rst_win {
	uint64_t start_ns;
	uint32_t count;
	bool closed;
};

/* ==== Call contexts ========================================================================= */

static struct cp_call *
call_get(struct cp_frontend *fe, const struct cp_method *m)
{
	struct cp_call *c = fe->free_list;

	if (c != NULL) {
		fe->free_list = c->free_next;
		memset(c, 0, sizeof(*c));
	} else {
		c = calloc(1, sizeof(*c));
		if (c == NULL)
			return NULL;
	}
	c->fe = fe;
	c->method = m;
	c->new_tag = (struct cp_tag){.kind = CP_TAG_NEW_CALL, .owner = c};
	c->recv_tag = (struct cp_tag){.kind = CP_TAG_RECV, .owner = c};
	c->done_tag = (struct cp_tag){.kind = CP_TAG_DONE, .owner = c};
	c->close_tag = (struct cp_tag){.kind = CP_TAG_CLOSE, .owner = c};
	c->send_tag = (struct cp_tag){.kind = CP_TAG_SEND, .owner = c};
	atomic_init(&c->cancelled_flag, false);
	grpc_metadata_array_init(&c->md);
	if (m == NULL)
		grpc_call_details_init(&c->details);
	return c;
}

static void
call_put(struct cp_frontend *fe, struct cp_call *c)
{
	if (c->peer != NULL) {
		gpr_free(c->peer);
		c->peer = NULL;
	}
	if (c->call != NULL)
		grpc_call_unref(c->call);
	if (c->payload != NULL)
		grpc_byte_buffer_destroy(c->payload);
	if (c->send != NULL)
		grpc_byte_buffer_destroy(c->send);
	if (c->status_details_set)
		grpc_slice_unref(c->status_details);
	if (c->trailer_set) {
		grpc_slice_unref(c->trailer.key);
		grpc_slice_unref(c->trailer.value);
	}
	grpc_metadata_array_destroy(&c->md);
	if (c->method == NULL)
		grpc_call_details_destroy(&c->details);
	cp_alog_free(&c->alog);
	c->free_next = fe->free_list;
	fe->free_list = c;
}

/*
 * A call the client cancelled (RST_STREAM, or its deadline): HTTP/2 rapid reset (CVE-2023-44487)
 * is a flood of them, and Debian's gRPC 1.51 predates the core's own defence. More than
 * server.max_cancels_per_second on one connection within a second: that connection is closed
 * (its other calls end too; the client may reconnect and starts from zero). Well-behaved
 * clients never come close; the table forgets everything when it fills up.
 */
static void
count_client_cancel(struct cp_frontend *fe, struct cp_call *c)
{
	uint32_t limit = fe->srv->conf.cfg->max_cancels_per_second;
	alignas(8) char key[RST_KEY] = {0}; /* rte_hash_crc reads 8 bytes at a time */
	struct cp_rst_win *w;
	char *peer;
	uint64_t now;
	int pos;

	dp_stat_add(&fe->st.client_cancels, 1);
	if (limit == 0 || fe->rst == NULL || c->peer == NULL)
		return;
	peer = c->peer;
	snprintf(key, sizeof(key), "%s", peer);
	pos = rte_hash_add_key(fe->rst, key);
	if (pos < 0) {
		rte_hash_reset(fe->rst);
		pos = rte_hash_add_key(fe->rst, key);
		memset(fe->rst_win, 0, RST_PEERS * sizeof(*fe->rst_win));
	}
	if (pos < 0 || (unsigned)pos >= RST_PEERS)
		goto out;
	w = &fe->rst_win[pos];
	now = cp_now_ns();
	if (now - w->start_ns >= 1000000000ull) {
		w->start_ns = now;
		w->count = 0;
	}
	if (++w->count <= limit || w->closed)
		goto out;
	w->closed = true;
	dp_stat_add(&fe->st.conns_closed_abuse, 1);
	cp_server_kill_peer(fe->srv, peer);
	if (now - fe->rst_log_ns >= 1000000000ull) {
		cp_log(CP_LOG_WARN, "closing a connection: too many cancelled calls",
		       CP_LF_STR("peer", peer), CP_LF_U64("cancelled_in_1s", w->count),
		       CP_LF_U64("limit", limit),
		       CP_LF_U64("suppressed_since_last", fe->rst_suppressed));
		fe->rst_log_ns = now;
		fe->rst_suppressed = 0;
	} else {
		fe->rst_suppressed++;
	}
out:
	return;
}

/* Unlink a finished call from the live list and recycle it. */
static void
live_free(struct cp_frontend *fe, struct cp_call *c)
{
	if (c->cancelled && !c->server_cancelled)
		count_client_cancel(fe, c);
	if (c->live_prev != NULL)
		c->live_prev->live_next = c->live_next;
	else
		fe->live_head = c->live_next;
	if (c->live_next != NULL)
		c->live_next->live_prev = c->live_prev;
	dp_stat_add(&fe->st.live_calls, -1);
	if (c->resp_bytes != 0)
		dp_stat_add(&fe->st.resp_bytes, -c->resp_bytes);
	if (c->method != NULL && c->method->gone != NULL)
		c->method->gone(c);
	call_put(fe, c);
}

void
cp_call_release(struct cp_call *c)
{
	if (--c->refs == 0)
		live_free(c->fe, c);
}

/* Arm one request_call slot for @m (NULL: generic). */
static void
arm(struct cp_frontend *fe, const struct cp_method *m)
{
	struct cp_server *srv = fe->srv;
	struct cp_call *c;
	grpc_call_error e;

	if (atomic_load_explicit(&srv->phase, memory_order_relaxed) >= CP_PHASE_SHUTDOWN)
		return;
	c = call_get(fe, m);
	if (c == NULL) {
		cp_log(CP_LOG_ERROR, "out of memory arming a call slot");
		return;
	}
	if (m != NULL)
		e = grpc_server_request_registered_call(srv->server, m->handle, &c->call,
							&c->deadline, &c->md, NULL, fe->cq, fe->cq,
							&c->new_tag);
	else
		e = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, fe->cq,
					     fe->cq, &c->new_tag);
	if (e != GRPC_CALL_OK) {
		cp_log(CP_LOG_ERROR, "request_call failed", CP_LF_INT("grpc_call_error", e));
		call_put(fe, c);
	}
}

void
cp_fe_start(struct cp_frontend *fe)
{
	for (unsigned s = 0; s < fe->srv->n_services; s++)
		for (const struct cp_method *m = fe->srv->services[s]; m->path != NULL; m++)
			for (unsigned i = 0; i < m->prealloc; i++)
				arm(fe, m);
	for (unsigned i = 0; i < GENERIC_SLOTS; i++)
		arm(fe, NULL);
}

/* ==== Arrival =============================================================================== */

static void
unimplemented(struct cp_call *c)
{
	cp_call_reply(c, GRPC_STATUS_UNIMPLEMENTED, NULL, "unknown method %.*s",
		      (int)GRPC_SLICE_LENGTH(c->details.method),
		      (const char *)GRPC_SLICE_START_PTR(c->details.method));
}

/*
 * Bearer-token check at arrival. @return true to go on, false after answering
 * UNAUTHENTICATED / PERMISSION_DENIED. The token is never logged or echoed.
 */
static bool
authorize(struct cp_frontend *fe, struct cp_call *c)
{
	const struct cp_live *live = cp_server_live(fe->srv);
	const char *val = NULL, *who = NULL;
	size_t vlen = 0;
	unsigned need;
	enum cp_auth_result r;

	c->token[0] = '\0';
	if (!live->auth.enabled)
		return true;
	/* Unknown methods need the execute permission: no probing without a token. */
	need = c->method != NULL ? c->method->perm : CP_PERM_EXECUTE;
	if (need == 0) {
		if (live->auth.health_open)
			return true;
		need = CP_PERM_EXECUTE;
	}
	for (size_t i = 0; i < c->md.count; i++) {
		if (grpc_slice_str_cmp(c->md.metadata[i].key, "authorization") == 0) {
			val = (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
			vlen = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
			break;
		}
	}
	r = cp_auth_check(&live->auth, val, vlen, (enum cp_perm)need, &who);
	if (r == CP_AUTH_OK) {
		if (who != NULL) /* for corepipe-priority: high (cp_call_priority) */
			snprintf(c->token, sizeof(c->token), "%s", who);
		return true;
	}
	dp_stat_add(&fe->st.auth_failures[r == CP_AUTH_DENIED], 1);
	/* At most one log line per second per front end; the count of the others goes with
	 * it. */
	if (cp_now_ns() - fe->auth_log_ns >= 1000000000u) {
		char *peer = grpc_call_get_peer(c->call);

		cp_log(CP_LOG_WARN, "auth failure",
		       CP_LF_STR("reason",
				 r == CP_AUTH_DENIED ? "permission_denied" : "unauthenticated"),
		       CP_LF_STR("token", who ? who : "-"), CP_LF_STR("peer", peer),
		       CP_LF_U64("suppressed_since_last", fe->auth_suppressed));
		gpr_free(peer);
		fe->auth_log_ns = cp_now_ns();
		fe->auth_suppressed = 0;
	} else {
		fe->auth_suppressed++;
	}
	if (r == CP_AUTH_DENIED)
		cp_call_reply(c, GRPC_STATUS_PERMISSION_DENIED, NULL,
			      "token '%s' has the execute permission; Admin RPCs need admin", who);
	else
		cp_call_reply(c, GRPC_STATUS_UNAUTHENTICATED, NULL,
			      "missing or invalid bearer token (authorization: Bearer <token>)");
	return false;
}

/* Read the request message of a unary call (the call was matched on its headers). */
static void
post_recv(struct cp_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->payload;
	c->refs++;
	if (grpc_call_start_batch(c->call, &op, 1, &c->recv_tag, NULL) != GRPC_CALL_OK) {
		c->refs--;
		cp_call_reply(c, GRPC_STATUS_INTERNAL, NULL, "cannot read the request");
	}
}

static void
on_new_call(struct cp_frontend *fe, struct cp_call *c, int ok)
{
	struct cp_server *srv = fe->srv;

	if (!ok) {
		/* Shutdown: the slot comes back unused. */
		call_put(fe, c);
		return;
	}
	dp_stat_add(&fe->st.live_calls, 1);
	c->live_next = fe->live_head;
	if (fe->live_head != NULL)
		fe->live_head->live_prev = c;
	fe->live_head = c;
	c->start_ns = cp_now_ns();
	/* The peer while the call is whole: a call the client reset early has lost it by the
	 * time it ends ("unknown"). One small allocation per call, only with the defence on. */
	if (srv->conf.cfg->max_cancels_per_second != 0)
		c->peer = grpc_call_get_peer(c->call);
	cp_alog_begin(&c->alog, &c->md, NULL); /* request size: when it arrives (on_recv) */
	c->refs = 1; /* held until the first batch below is posted; dropped at the end */
	/* Keep the same number of slots armed. */
	arm(fe, c->method);
	if (authorize(fe, c)) {
		/* Acquire: pairs with the control poller's release store of the phase, which
		 * follows cp_server_request_handover()'s store of `handover`. */
		if (atomic_load_explicit(&srv->phase, memory_order_acquire) >= CP_PHASE_DRAINING &&
		    !atomic_load_explicit(&srv->handover, memory_order_relaxed)) {
			/* Draining: retryable, and the request is not even read. After a
			 * handover (takeover.h) calls that still come on a connection to us,
			 * racing the GOAWAY, are served: this process is whole, and a client
			 * without a retry policy would see the UNAVAILABLE. */
			dp_stat_add(&fe->st.rejected[CP_REJECT_DRAINING], 1);
			atomic_store_explicit(&srv->drain_last_refused_ns, c->start_ns,
					      memory_order_relaxed);
			cp_call_reply(c, GRPC_STATUS_UNAVAILABLE, NULL,
				      "server is shutting down; retry on another instance");
		} else if (c->method == NULL) {
			unimplemented(c);
		} else if (c->method->kind == CP_STREAMING) {
			c->method->handler(srv, c);
		} else {
			post_recv(c);
		}
	}
	cp_call_release(c);
}

static void
on_recv(struct cp_frontend *fe, struct cp_call *c, int ok)
{
	(void)fe;
	if (!ok) {
		/* The call died before its message arrived (cancel, deadline, disconnect): end
		 * it; nobody reads this status. */
		cp_call_reply(c, GRPC_STATUS_CANCELLED, NULL, "call ended before its request");
	} else if (c->payload == NULL) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL, "missing request message");
	} else {
		c->alog.req_bytes = grpc_byte_buffer_length(c->payload);
		c->method->handler(fe->srv, c);
	}
	cp_call_release(c); /* the receive batch's reference */
}

/* ==== Placement and hand-over =============================================================== */

/* The candidate worker for handed-over work (see below), or CP_PLACE_SHED. */
static int
pick_worker(struct cp_frontend *fe)
{
	uint64_t best_cost = UINT64_MAX;
	unsigned first, n;
	int best = CP_PLACE_SHED;

	/*
	 * Larger work (or work of unknown cost, learnt from its first runs) goes where it delays
	 * the least estimated work: a worker-only lcore when there is one (this lcore's own queue
	 * would delay its gRPC I/O), else our own queue. Ties go round, starting after the last
	 * choice, so work spreads even when calls never overlap.
	 */
	first = fe->n_cand > 1 ? 1 : 0;
	n = fe->n_cand - first;
	for (unsigned i = 0; i < n; i++) {
		unsigned k = first + (fe->rr + 1 + i) % n;
		uint64_t cost;

		if (atomic_load_explicit(&fe->cand[k]->lc.shedding, memory_order_relaxed))
			continue;
		cost = __atomic_load_n(&fe->cand_link[k]->cost_cycles, __ATOMIC_RELAXED);
		if (cost < best_cost) {
			best_cost = cost;
			best = (int)k;
		}
	}
	if (best >= 0)
		fe->rr = (unsigned)best - first;
	return best;
}

int
cp_fe_place_prio(struct cp_frontend *fe, uint32_t id, uint32_t len, uint8_t prio, uint64_t *est)
{
	/* The cost model is per lcore: the lowest estimate of this one's and the candidates'
	 * (what this lcore has not run yet, or ran once while preempted, another may know). */
	uint64_t e = dp_metrics_estimate_min(fe->cand_met, fe->n_cand, id, len);

	*est = e;
	/* Low priority never runs inline: it waits in a worker's bulk lane (worker.h). */
	if (prio != DP_PRIO_LOW &&
	    (e != 0 ? e <= fe->inline_cycles : fe->n_cand == 1 && len <= UNKNOWN_INLINE_BYTES))
		return CP_PLACE_INLINE;
	return pick_worker(fe);
}

int
cp_fe_place(struct cp_frontend *fe, uint32_t id, uint32_t len, const struct dp_pipeline *p,
	    uint64_t *est)
{
	(void)p;
	return cp_fe_place_prio(fe, id, len, DP_PRIO_NORMAL, est);
}

int
cp_fe_admit_memory(struct cp_frontend *fe, struct cp_call *c, const struct cp_live *live,
		   const struct dp_pipeline *p, const struct dp_format *fmt, uint32_t len,
		   uint64_t *est)
{
	uint64_t in_use = 0;

	*est = 0;
	if (live->max_request_memory == 0 && live->memory_budget == 0)
		return 0;
	*est = dp_pipeline_mem_estimate(p, fmt, len);
	if (live->max_request_memory != 0 && *est > live->max_request_memory) {
		/* Never fits: no pushback, retrying cannot help. */
		dp_stat_add(&fe->st.rejected[CP_REJECT_REQUEST_MEMORY], 1);
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL,
			      "request needs an estimated %.1f MiB (%u input bytes through the "
			      "pipeline's growth), over limits.max_request_memory_mb (%llu MiB)",
			      (double)*est / (1 << 20), len,
			      (unsigned long long)(live->max_request_memory >> 20));
		return -1;
	}
	if (live->memory_budget == 0)
		return 0;
	for (unsigned i = 0; i < fe->srv->n_fe; i++)
		in_use += dp_stat_load(&fe->srv->fe[i]->st.mem_in_use);
	if (in_use + *est > live->memory_budget) {
		dp_stat_add(&fe->st.rejected[CP_REJECT_MEMORY_BUDGET], 1);
		cp_call_reply_exhausted(
		    c, cp_server_pushback_ms(fe->srv),
		    "memory budget: %.1f MiB of limits.memory_budget_mb (%llu MiB) "
		    "in use, this request needs an estimated %.1f MiB",
		    (double)in_use / (1 << 20), (unsigned long long)(live->memory_budget >> 20),
		    (double)*est / (1 << 20));
		return -1;
	}
	return 0;
}

int
cp_call_priority_parse(const struct cp_call *c, const struct cp_live *live, uint8_t *prio,
		       char *msg, size_t msg_len)
{
	static const char *const names[DP_PRIO_MAX] = {"high", "normal", "low"};

	*prio = DP_PRIO_NORMAL;
	for (size_t i = 0; i < c->md.count; i++) {
		const char *v;
		size_t n;
		bool known = false;

		if (grpc_slice_str_cmp(c->md.metadata[i].key, "corepipe-priority") != 0)
			continue;
		v = (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
		n = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
		for (unsigned k = 0; k < DP_PRIO_MAX; k++)
			if (n == strlen(names[k]) && memcmp(v, names[k], n) == 0) {
				*prio = (uint8_t)k;
				known = true;
			}
		if (!known) {
			snprintf(
			    msg, msg_len,
			    "metadata corepipe-priority: expected high, normal or low, got '%.*s'",
			    (int)(n > 32 ? 32 : n), v);
			return DP_INVALID_ARGUMENT;
		}
		break;
	}
	if (*prio == DP_PRIO_HIGH && !cp_auth_may_high(&live->auth, c->token)) {
		snprintf(msg, msg_len,
			 "token '%s' may not ask for corepipe-priority: high (allowed: "
			 "auth.high_priority_tokens '%s')",
			 c->token, live->auth.high_priority);
		return DP_PERMISSION_DENIED;
	}
	return DP_OK;
}

int
cp_call_priority(struct cp_call *c, const struct cp_live *live, uint8_t *prio)
{
	char msg[CP_AUTH_HIGH_MAX + 128];
	int st = cp_call_priority_parse(c, live, prio, msg, sizeof(msg));

	if (st == DP_OK)
		return 0;
	cp_call_reply(c, (grpc_status_code)st, NULL, "%s", msg);
	return -1;
}

int
cp_fe_submit(struct cp_frontend *fe, unsigned k, struct dp_req *req, uint64_t est)
{
	struct dp_link *l = fe->cand_link[k];
	int rc;

	if (est == 0)
		est = fe->inline_cycles + 1; /* unknown: at least the inline threshold */
	req->est_cycles = est;
	rc = dp_link_submit(l, fe->cand[k], req);
	if (rc != 0)
		return rc;
	/* The front end is the only writer of its links' counters. */
	__atomic_store_n(&l->cost_cycles, l->cost_cycles + est, __ATOMIC_RELAXED);
	if (fe->out++ == 0)
		fe->last_progress = rte_rdtsc();
	dp_stat_add(&fe->st.handed_over, 1);
	return 0;
}

void
cp_fe_charge(struct cp_frontend *fe, struct cp_call *c, uint64_t bytes)
{
	c->resp_bytes += bytes;
	dp_stat_add(&fe->st.resp_bytes, bytes);
}

bool
cp_fe_stream_room(const struct cp_frontend *fe, uint64_t bytes)
{
	uint64_t held = fe->st.resp_bytes;

	return held == 0 || held + bytes <= fe->srv->conf.cfg->max_response_bytes / 4 * 3;
}

bool
cp_fe_over_budget(const struct cp_frontend *fe, bool stream)
{
	uint64_t budget = fe->srv->conf.cfg->max_response_bytes;

	return fe->st.resp_bytes >= (stream ? budget / 4 * 3 : budget);
}

/* Answers of handed-over work, from every link with work out. */
static unsigned
collect(struct cp_frontend *fe)
{
	struct dp_req *reqs[COLLECT_BURST];
	unsigned total = 0;

	for (unsigned k = 0; k < fe->n_cand && fe->out != 0; k++) {
		struct dp_link *l = fe->cand_link[k];
		uint64_t cost = l->cost_cycles;
		unsigned n;

		if (l->submitted == l->completed)
			continue;
		n = dp_link_collect(l, reqs, COLLECT_BURST);
		for (unsigned i = 0; i < n; i++) {
			struct dp_req *req = reqs[i];

			cost -= req->est_cycles < cost ? req->est_cycles : cost;
			/* Single writer: this front end (cp_fe_admit_memory added it). */
			dp_stat_add(&fe->st.mem_in_use, -req->mem_est);
			/* Its submitter's completion (struct cp_work): frees the descriptor. */
			((const struct cp_work *)req->cookie)->complete(fe, req);
		}
		if (n != 0) {
			__atomic_store_n(&l->cost_cycles, cost, __ATOMIC_RELAXED);
			fe->out -= n;
			total += n;
		}
	}
	if (total != 0)
		fe->last_progress = rte_rdtsc();
	return total;
}

/* ==== Events ================================================================================ */

static void
handle(struct cp_frontend *fe, grpc_event *ev)
{
	struct cp_tag *tag = ev->tag;

	switch (tag->kind) {
	case CP_TAG_NEW_CALL:
		on_new_call(fe, tag->owner, ev->success);
		break;
	case CP_TAG_RECV:
		on_recv(fe, tag->owner, ev->success);
		break;
	case CP_TAG_CLOSE: {
		struct cp_call *c = tag->owner;

		/* Release: pairs with the worker's acquire load of dp_req.cancelled. */
		if (c->cancelled)
			atomic_store_explicit(&c->cancelled_flag, true, memory_order_release);
		if (c->method != NULL && c->method->closed != NULL)
			c->method->closed(c);
		cp_call_release(c);
		break;
	}
	case CP_TAG_DONE:
		cp_call_release(tag->owner);
		break;
	case CP_TAG_SEND: {
		struct cp_call *c = tag->owner;

		c->method->sent(c, ev->success);
		break;
	}
	case CP_TAG_CALLBACK:
		tag->fn(tag->owner, ev->success);
		break;
	case CP_TAG_SHUTDOWN:
		atomic_store_explicit(&fe->srv->shutdown_tag_seen, true, memory_order_release);
		break;
	}
}

/* Periodic work of a front end: Watch updates, the drain's grace period. */
static void
tick(struct cp_frontend *fe, uint64_t now)
{
	struct cp_server *srv = fe->srv;
	unsigned gen = atomic_load_explicit(&srv->health_gen, memory_order_acquire);
	int phase = atomic_load_explicit(&srv->phase, memory_order_acquire);

	fe->tick_tsc = now + fe->own->lc.tsc_hz / (1000000000ull / TICK_NS);
	if (gen != fe->health_gen || phase >= CP_PHASE_DRAINING) {
		fe->health_gen = gen;
		if (fe->watches_update != NULL)
			fe->watches_update(fe, phase >= CP_PHASE_DRAINING);
	}
	if (phase >= CP_PHASE_DRAINING && srv->grace_deadline_ns != 0 &&
	    cp_now_ns() > srv->grace_deadline_ns) {
		/* UNAVAILABLE tells clients to retry elsewhere; their queued work is skipped
		 * (RECV_CLOSE sets the flag the workers check). Once per call is enough. */
		for (struct cp_call *c = fe->live_head; c != NULL; c = c->live_next) {
			if (c->cancelled)
				continue;
			c->cancelled = 1;
			c->server_cancelled = true;
			dp_stat_add(&fe->st.grace_cancelled, 1);
			grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
						     "server shutting down: grace period over",
						     NULL);
		}
	}
}

void
cp_fe_post(struct cp_frontend *fe, struct cp_fe_msg *m)
{
	pthread_mutex_lock(&fe->mbox_lock);
	m->next = fe->mbox;
	fe->mbox = m;
	pthread_mutex_unlock(&fe->mbox_lock);
	/* Release: the message before the count; pairs with the acquire in fe_poll(). */
	atomic_fetch_add_explicit(&fe->mbox_n, 1, memory_order_release);
}

static unsigned
run_mbox(struct cp_frontend *fe)
{
	struct cp_fe_msg *m, *next;
	unsigned n = 0;

	pthread_mutex_lock(&fe->mbox_lock);
	m = fe->mbox;
	fe->mbox = NULL;
	pthread_mutex_unlock(&fe->mbox_lock);
	for (; m != NULL; m = next) {
		next = m->next; /* fn may free m */
		m->fn(fe, m->arg);
		n++;
	}
	atomic_fetch_sub_explicit(&fe->mbox_n, n, memory_order_relaxed);
	return n;
}

static unsigned
fe_poll(void *arg)
{
	struct cp_frontend *fe = arg;
	gpr_timespec now = gpr_inf_past(GPR_CLOCK_MONOTONIC);
	unsigned n = 0;
	uint64_t t;

	/* Acquire: pairs with the release in cp_fe_post(). */
	if (unlikely(atomic_load_explicit(&fe->mbox_n, memory_order_acquire) != 0))
		n += run_mbox(fe);
	if (fe->out != 0)
		n += collect(fe);
	/*
	 * A completion queue kicked while nobody polled it (our own batches complete while this
	 * lcore runs work) answers its next poll with nothing, without looking at the sockets
	 * (the C core's kicked_without_poller): so an empty answer is asked again once, which
	 * polls for real. Without it, a front end busy with its own queue would never read new
	 * calls until the queue is empty.
	 */
	for (unsigned i = 0, empty = 0; i < CQ_BATCH && empty < 2; i++) {
		grpc_event ev = grpc_completion_queue_next(fe->cq, now, NULL);

		if (ev.type != GRPC_OP_COMPLETE) {
			empty++;
			continue;
		}
		handle(fe, &ev);
		n++;
	}
	t = rte_rdtsc();
	if (n != 0)
		fe->last_progress = t;
	if (fe->blocked != NULL && t >= fe->blocked_retry_tsc) {
		fe->retry_blocked(fe);
		/* From the end of the pass: however long the retries took, the loop serves its
		 * calls and completions for a whole period before the next pass. */
		t = rte_rdtsc();
		fe->blocked_retry_tsc = t + fe->own->lc.tsc_hz / (1000000000ull / BLOCKED_RETRY_NS);
	}
	if (t >= fe->tick_tsc)
		tick(fe, t);
	return n;
}

/* When the work out is due: the most estimated work in flight on one link (a worker runs its
 * link's requests one after another), up to spin_max_cycles. */
static uint64_t
out_due(const struct cp_frontend *fe)
{
	uint64_t due = 0;

	for (unsigned k = 0; k < fe->n_cand; k++)
		if (fe->cand_link[k]->cost_cycles > due)
			due = fe->cand_link[k]->cost_cycles;
	return due < fe->spin_max_cycles ? due : fe->spin_max_cycles;
}

static uint64_t
fe_idle(void *arg)
{
	struct cp_frontend *fe = arg;
	uint64_t t = rte_rdtsc(), limit = TICK_NS;

	if (fe->out != 0) {
		/* Work out on a link: keep polling until it is due and frontend_spin_us more
		 * (an answer then goes out with no wake-up), then wait briefly: the core's
		 * poller sleeps in whole milliseconds, which a 300 µs request would otherwise
		 * pay in full (docs/ARCHITECTURE.md, "Sleeping and waking"). */
		if (t - fe->last_progress < fe->spin_cycles + out_due(fe))
			return 0;
		limit = OUT_WAIT_NS;
	}
	if (fe->blocked != NULL && limit > BLOCKED_RETRY_NS)
		limit = BLOCKED_RETRY_NS;
	if (atomic_load_explicit(&fe->mbox_n, memory_order_relaxed) != 0)
		return 0;
	return limit;
}

/* The lcore's blocking point: the completion queue, woken by the network (or the limit). */
static unsigned
fe_wait(void *arg, uint64_t timeout_ns)
{
	struct cp_frontend *fe = arg;
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_nanos((int64_t)timeout_ns, GPR_TIMESPAN));
	grpc_event ev = grpc_completion_queue_next(fe->cq, dl, NULL);

	if (fe->out != 0)
		dp_stat_add(&fe->st.waits, 1);
	if (ev.type != GRPC_OP_COMPLETE)
		return 0;
	urcu_qsbr_thread_online(); /* handlers read the registry and the live settings */
	handle(fe, &ev);
	dp_rcu_thread_offline();
	fe->last_progress = rte_rdtsc();
	return 1;
}

/* ==== Life ================================================================================== */

struct cp_frontend *
cp_fe_create(struct cp_server *srv, unsigned index)
{
	struct dp_dataplane *dp = srv->dp;
	struct cp_frontend *fe;
	struct dp_poller p = {.name = "frontend", .poll = fe_poll, .idle = fe_idle};

	fe = calloc(1, sizeof(*fe));
	if (fe == NULL)
		return NULL;
	fe->index = index;
	fe->srv = srv;
	fe->dp = dp;
	fe->own = dp->workers[index];
	atomic_init(&fe->stop, false);
	atomic_init(&fe->mbox_n, 0);
	pthread_mutex_init(&fe->mbox_lock, NULL);
	fe->e2e = dp_metrics_create(1000000000ull, SOCKET_ID_ANY); /* a 1 GHz clock: ns */
	{
		char name[RTE_HASH_NAMESIZE];
		struct rte_hash_parameters hp = {
		    .name = name,
		    .entries = RST_PEERS,
		    .key_len = RST_KEY,
		    .hash_func = rte_hash_crc,
		    .socket_id = fe->own->lc.socket,
		};

		snprintf(name, sizeof(name), "cp_rst_%u", index);
		fe->rst = rte_hash_create(&hp);
		fe->rst_win = calloc(RST_PEERS, sizeof(*fe->rst_win));
		if (fe->rst == NULL || fe->rst_win == NULL)
			goto err;
	}
	fe->cq = grpc_completion_queue_create_for_next(NULL);
	if (fe->e2e == NULL || fe->cq == NULL)
		goto err;
	grpc_server_register_completion_queue(srv->server, fe->cq, NULL);
	/* Candidates: [0] our own lcore's queue, then every worker-only lcore. */
	fe->cand[0] = fe->own;
	fe->cand_link[0] = dp->link[index][index];
	fe->n_cand = 1;
	for (unsigned w = dp->n_frontends; w < dp->n_workers; w++) {
		fe->cand[fe->n_cand] = dp->workers[w];
		fe->cand_link[fe->n_cand++] = dp->link[index][w];
	}
	for (unsigned k = 0; k < fe->n_cand; k++)
		fe->cand_met[k] = fe->cand[k]->lc.met;
	fe->spin_cycles = fe->own->lc.tsc_hz / 1000000 * srv->conf.cfg->frontend_spin_us;
	fe->spin_max_cycles = fe->own->lc.tsc_hz / 1000000 * srv->conf.cfg->frontend_spin_max_us;
	fe->inline_cycles = fe->own->lc.tsc_hz / 1000000 * srv->conf.cfg->inline_max_us;
	/* The reactor: the front end first (new calls, answers), then this lcore's dataplane
	 * pollers (its queue of larger work; UDP queues when no worker-only lcore has them). */
	p.arg = fe;
	dp_reactor_add(&fe->reactor, &p);
	if (dp_dataplane_add_pollers(dp, index, &fe->reactor) != 0)
		goto err;
	fe->reactor.wait = fe_wait;
	fe->reactor.wait_arg = fe;
	/* No spin after work when idle: a lone call is answered as fast as by a plain server
	 * and the lcore sleeps in the completion queue right after (see fe_idle for work out). */
	fe->reactor.idle = DP_IDLE_SLEEP;
	/* Polling for handed-over work yields like the workers do; never under `spin`. */
	fe->reactor.yield_us =
	    fe->own->conf.idle == DP_IDLE_SPIN ? UINT32_MAX : fe->own->conf.yield_us;
	fe->reactor.stats = &fe->own->stats.r;
	fe->reactor.stop = &fe->stop;
	return fe;
err:
	if (fe->cq != NULL)
		grpc_completion_queue_destroy(fe->cq);
	dp_metrics_free(fe->e2e);
	rte_hash_free(fe->rst);
	free(fe->rst_win);
	free(fe);
	errno = ENOMEM;
	return NULL;
}

void
cp_fe_destroy(struct cp_frontend *fe)
{
	if (fe == NULL)
		return;
	while (fe->free_list != NULL) {
		struct cp_call *c = fe->free_list;

		fe->free_list = c->free_next;
		free(c);
	}
	dp_metrics_free(fe->e2e);
	rte_hash_free(fe->rst);
	free(fe->rst_win);
	free(fe);
}

int
cp_fe_main(void *arg)
{
	struct cp_frontend *fe = arg;
	char name[16];

	snprintf(name, sizeof(name), "cp-frontend-%u", fe->index);
	pthread_setname_np(pthread_self(), name);
	return dp_reactor_run(&fe->reactor);
}

void
cp_fe_drain_event(struct cp_frontend *fe, grpc_event *ev)
{
	struct cp_tag *tag = ev->tag;

	switch (tag->kind) {
	case CP_TAG_NEW_CALL:
		call_put(fe, tag->owner);
		break;
	case CP_TAG_DONE:
	case CP_TAG_CLOSE:
	case CP_TAG_RECV:
	case CP_TAG_SEND:
		cp_call_release(tag->owner);
		break;
	case CP_TAG_CALLBACK:
	case CP_TAG_SHUTDOWN:
		handle(fe, ev);
		break;
	}
}

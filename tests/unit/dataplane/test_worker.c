/*
 * The worker poller and a link, on one thread (no lcore launched): descriptors are submitted
 * over a link (dp_link_submit, the front end's side) to a hand-built worker, the test runs the
 * worker's poller itself (poll_once: dp_worker_poll plus the quiescent state, as its reactor
 * does), and collects them from the link (dp_link_collect). The reactor loop body is tested
 * with a fake poller.
 */
#include "dataplane/dataplane.h"
#include "dataplane/node_table.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <errno.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#define RING 64

struct env {
	struct dp_dataplane dp;
	struct dp_worker w;
	struct dp_link *l;
};

static unsigned
poll_once(struct dp_worker *w)
{
	unsigned n = dp_worker_poll(w);

	dp_rcu_quiescent_state();
	return n;
}

static int
setup(void **state)
{
	static struct env e;
	struct dp_worker_conf wc = {.idle = DP_IDLE_SLEEP,
				    .spin_us = 0,
				    .sleep_max_us = 1000,
				    .ring_size = RING,
				    .quantum_us = 50,
				    .lane_share = 1};
	struct dp_param lvl = {.key = "level", .value = "19"};
	struct dp_node_spec zc = {.type = "zstd_compress", .n_params = 1, .params = &lvl};
	struct dp_spec s3 = {.name = "zc", .n_nodes = 1, .nodes = &zc};
	struct dp_param db = {.key = "db", .value = "6"};
	struct dp_node_spec gain = {.type = "gain", .n_params = 1, .params = &db};
	struct dp_node_spec crc = {.type = "crc32c"};
	struct dp_spec s1 = {.name = "crc", .n_nodes = 1, .nodes = &crc};
	struct dp_spec s2 = {.name = "loud", .n_nodes = 1, .nodes = &gain};
	struct dp_registry_info info;
	struct dp_err err;

	memset(&e, 0, sizeof(e));
	e.dp.pools = test_pools_create("tw");
	e.dp.req_pool = rte_mempool_create("tw_req", 256, sizeof(struct dp_req), 0, 0, NULL, NULL,
					   NULL, NULL, SOCKET_ID_ANY, 0);
	e.dp.reg = dp_registry_create();
	e.dp.conf.max_in_flight = 256;
	e.dp.conf.worker = wc;
	e.dp.tsc_hz = rte_get_tsc_hz();
	if (!e.dp.pools || !e.dp.req_pool || !e.dp.reg)
		return -1;
	if (dp_worker_init(&e.w, 0, 0, &wc, e.dp.reg, e.dp.pools) != 0)
		return -1;
	e.l = dp_link_create(&e.w, 0);
	if (e.l == NULL)
		return -1;
	e.dp.workers[0] = &e.w;
	e.dp.n_workers = 1;
	urcu_qsbr_register_thread();
	if (dp_registry_put(e.dp.reg, dp_pipeline_compile(&s1, 32, &err), &info) != 0 ||
	    dp_registry_put(e.dp.reg, dp_pipeline_compile(&s2, 32, &err), &info) != 0 ||
	    dp_registry_put(e.dp.reg, dp_pipeline_compile(&s3, 32, &err), &info) != 0)
		return -1;
	*state = &e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	/* Everything handed out came back. */
	assert_int_equal(rte_mempool_in_use_count(e->dp.req_pool), 0);
	for (unsigned i = 0; i < e->dp.pools->n_classes; i++)
		assert_int_equal(dp_pools_in_use(e->dp.pools, i), 0);
	dp_worker_fini(&e->w);
	urcu_qsbr_thread_offline();
	dp_registry_destroy(e->dp.reg);
	urcu_qsbr_unregister_thread();
	rte_mempool_free(e->dp.req_pool);
	dp_pools_destroy(e->dp.pools);
	return 0;
}

static struct dp_req *
named(struct env *e, const char *name, const void *data, uint32_t len, struct dp_format f)
{
	struct dp_req *r;

	assert_int_equal(dp_req_alloc(&e->dp, len, &r), 0);
	memcpy(r->buf->data, data, len);
	r->fmt = f;
	strcpy(r->name, name);
	r->hash = dp_name_hash(name, strlen(name));
	return r;
}

static const struct dp_format BYTES = {.kind = DP_KIND_BYTES};

static void
test_worker_poll_once_runs_and_completes(void **state)
{
	struct env *e = *state;
	struct dp_req *out[4];

	assert_int_equal(dp_link_submit(e->l, &e->w, named(e, "crc", "123456789", 9, BYTES)), 0);
	assert_int_equal(dp_worker_in_flight(&e->w), 1);
	assert_int_equal(dp_link_collect(e->l, out, 4), 0); /* not run yet */
	assert_int_equal(poll_once(&e->w), 1);
	assert_int_equal(poll_once(&e->w), 0);
	assert_int_equal(dp_link_collect(e->l, out, 4), 1);
	assert_int_equal(dp_worker_in_flight(&e->w), 0);
	assert_int_equal(out[0]->status, DP_OK);
	assert_string_equal(out[0]->res.annot[0].val, "e3069283");
	assert_true(out[0]->dp_ns > 0);
	dp_req_free(&e->dp, out[0]);
}

static void
test_worker_unknown_pipeline_not_found(void **state)
{
	struct env *e = *state;
	struct dp_req *out[1];

	assert_int_equal(dp_link_submit(e->l, &e->w, named(e, "ghost", "x", 1, BYTES)), 0);
	assert_int_equal(poll_once(&e->w), 1);
	assert_int_equal(dp_link_collect(e->l, out, 1), 1);
	assert_int_equal(out[0]->status, DP_NOT_FOUND);
	assert_string_equal(out[0]->res.err.msg, "pipeline 'ghost' not found");
	dp_req_free(&e->dp, out[0]);
}

static void
test_worker_expired_deadline_is_not_run(void **state)
{
	struct env *e = *state;
	int16_t s[2] = {1000, -1000};
	struct dp_format f = {
	    .kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .channels = 1, .rate = 8000};
	struct dp_req *r = named(e, "loud", s, sizeof(s), f), *out[1];
	uint64_t codes[DP_STATUS_MAX];

	r->deadline_tsc = 1; /* long past */
	assert_int_equal(dp_link_submit(e->l, &e->w, r), 0);
	assert_int_equal(poll_once(&e->w), 1);
	assert_int_equal(dp_link_collect(e->l, out, 1), 1);
	assert_int_equal(out[0]->status, DP_DEADLINE_EXCEEDED);
	assert_non_null(strstr(out[0]->res.err.msg, "not run"));
	/* Not run: the samples are untouched (gain would have doubled them). */
	assert_memory_equal(out[0]->buf->data, s, sizeof(s));
	dp_worker_codes_read(&e->w, codes);
	assert_true(codes[DP_DEADLINE_EXCEEDED] >= 1);
	dp_req_free(&e->dp, out[0]);

	/* A future deadline runs normally. */
	r = named(e, "loud", s, sizeof(s), f);
	r->deadline_tsc = dp_dataplane_deadline_tsc(&e->dp, 10ull * 1000000000ull);
	assert_int_equal(dp_link_submit(e->l, &e->w, r), 0);
	assert_int_equal(poll_once(&e->w), 1);
	assert_int_equal(dp_link_collect(e->l, out, 1), 1);
	assert_int_equal(out[0]->status, DP_OK);
	assert_int_equal(((int16_t *)out[0]->buf->data)[0], 1995);
	dp_req_free(&e->dp, out[0]);
}

static void
test_worker_ring_full_is_enobufs_and_burst_drains(void **state)
{
	struct env *e = *state;
	struct dp_req *extra, *out[RING];
	struct dp_worker_stats before, after;
	unsigned got = 0;

	dp_worker_stats_read(&e->w, &before);
	for (int i = 0; i < RING; i++)
		assert_int_equal(dp_link_submit(e->l, &e->w, named(e, "crc", "ab", 2, BYTES)), 0);
	extra = named(e, "crc", "ab", 2, BYTES);
	assert_int_equal(dp_link_submit(e->l, &e->w, extra), -ENOBUFS);
	dp_req_free(&e->dp, extra); /* the caller kept ownership */
	/* Bursts of DP_WORKER_BURST. */
	assert_int_equal(poll_once(&e->w), DP_WORKER_BURST);
	assert_int_equal(poll_once(&e->w), DP_WORKER_BURST);
	assert_int_equal(poll_once(&e->w), 0);
	/* Still in flight until the front end collects them. */
	assert_int_equal(dp_worker_in_flight(&e->w), RING);
	while (got < RING) {
		unsigned n = dp_link_collect(e->l, out, RING);

		assert_true(n > 0);
		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(out[i]->status, DP_OK);
			dp_req_free(&e->dp, out[i]);
		}
		got += n;
	}
	dp_worker_stats_read(&e->w, &after);
	assert_int_equal(after.requests - before.requests, RING);
	assert_int_equal(after.bursts - before.bursts, 2);
}

static void
test_req_alloc_limits(void **state)
{
	struct env *e = *state;
	struct dp_req *r;

	assert_int_equal(dp_req_alloc(&e->dp, (1 << 20) + 1, &r), -E2BIG);
	/* The 1 MiB class has two buffers. */
	struct dp_req *a, *b;

	assert_int_equal(dp_req_alloc(&e->dp, 1 << 20, &a), 0);
	assert_int_equal(dp_req_alloc(&e->dp, 1 << 20, &b), 0);
	assert_int_equal(dp_req_alloc(&e->dp, 1 << 20, &r), -ENOMEM);
	dp_req_free(&e->dp, a);
	dp_req_free(&e->dp, b);
	dp_req_free(&e->dp, NULL);
}

/* A poller that reports `work` once, then idles with `limit`. */
struct fake {
	unsigned work, polls;
	uint64_t limit;
};

static unsigned
fake_poll(void *arg)
{
	struct fake *f = arg;
	unsigned n = f->work;

	f->polls++;
	f->work = 0;
	return n;
}

static uint64_t
fake_idle(void *arg)
{
	return ((struct fake *)arg)->limit;
}

static void
test_reactor_polls_all_and_takes_the_shortest_idle_limit(void **state)
{
	struct fake a = {.work = 3, .limit = 5000}, b = {.work = 0, .limit = 700};
	struct dp_poller pa = {.name = "a", .poll = fake_poll, .idle = fake_idle, .arg = &a};
	struct dp_poller pb = {.name = "b", .poll = fake_poll, .idle = fake_idle, .arg = &b};
	struct dp_poller none = {.name = "c", .poll = fake_poll, .arg = &b};
	struct dp_reactor r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(dp_reactor_add(&r, &pa), 0);
	assert_int_equal(dp_reactor_add(&r, &pb), 0);
	assert_int_equal(dp_reactor_poll_once(&r), 3);
	assert_int_equal(dp_reactor_poll_once(&r), 0);
	assert_int_equal(a.polls, 2);
	assert_int_equal(b.polls, 2);
	assert_int_equal(dp_reactor_idle_limit(&r), 700);
	b.limit = 0; /* work waiting: no sleep at all */
	assert_int_equal(dp_reactor_idle_limit(&r), 0);
	/* A poller without an idle function never limits the sleep. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(dp_reactor_add(&r, &none), 0);
	assert_true(dp_reactor_idle_limit(&r) == DP_SLEEP_FOREVER);
	for (unsigned i = 1; i < DP_REACTOR_POLLERS_MAX; i++)
		assert_int_equal(dp_reactor_add(&r, &none), 0);
	assert_int_equal(dp_reactor_add(&r, &none), -ENOSPC);
}

/* The yield test: a reactor that may not sleep (a front end waiting for an answer) and another
 * thread on the same CPU that counts and yields. */
struct yield_probe {
	atomic_uint other; /* bumped by the other thread */
	atomic_bool stop;  /* the reactor's stop flag; also ends the other thread */
	unsigned last, passes, seen;
	int cpu;
};

static unsigned
probe_poll(void *arg)
{
	struct yield_probe *p = arg;
	unsigned o = atomic_load(&p->other);

	if (o != p->last)
		p->seen++;
	p->last = o;
	if (++p->passes == 2000)
		atomic_store(&p->stop, true);
	return 0;
}

static uint64_t
probe_idle(void *arg)
{
	(void)arg;
	return 0;
}

static unsigned
probe_wait(void *arg, uint64_t ns)
{
	(void)arg;
	(void)ns;
	fail_msg("a reactor whose poller allows no sleep slept");
	return 0;
}

static void
pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
}

static void *
probe_other(void *arg)
{
	struct yield_probe *p = arg;

	pin_self(p->cpu);
	while (!atomic_load(&p->stop)) {
		atomic_fetch_add(&p->other, 1);
		sched_yield();
	}
	return NULL;
}

static void *
probe_reactor(void *arg)
{
	struct dp_reactor *r = arg;

	pin_self(((struct yield_probe *)r->p[0].arg)->cpu);
	dp_reactor_run(r);
	return NULL;
}

static void
test_reactor_polling_without_work_yields_its_cpu(void **state)
{
	struct yield_probe p = {.cpu = sched_getcpu()};
	struct dp_poller pp = {.name = "probe", .poll = probe_poll, .idle = probe_idle, .arg = &p};
	struct dp_reactor r;
	pthread_t a, b;

	(void)state;
	assert_true(p.cpu >= 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(dp_reactor_add(&r, &pp), 0);
	r.wait = probe_wait;
	r.idle = DP_IDLE_SLEEP;
	r.yield_us = 0;
	r.stop = &p.stop;
	assert_int_equal(pthread_create(&b, NULL, probe_other, &p), 0);
	assert_int_equal(pthread_create(&a, NULL, probe_reactor, &r), 0);
	assert_int_equal(pthread_join(a, NULL), 0);
	assert_int_equal(pthread_join(b, NULL), 0);
	/* Both threads on one CPU: the other thread ran between most of the reactor's passes.
	 * Pausing instead of yielding, it would run only when the scheduler preempts the reactor
	 * (a tick, milliseconds: after all 2000 passes, which take microseconds). */
	assert_int_equal(p.passes, 2000);
	assert_true(p.seen >= p.passes / 4);
}

static void
test_worker_idle_limit_rechecks_its_links(void **state)
{
	struct env *e = *state;

	/* A worker-only lcore wakes at least every sleep_max_us; with work queued, not at all. */
	assert_int_equal(dp_worker_idle(&e->w), 1000ull * 1000);
	assert_int_equal(dp_link_submit(e->l, &e->w, named(e, "crc", "a", 1, BYTES)), 0);
	assert_int_equal(dp_worker_idle(&e->w), 0);
	assert_int_equal(poll_once(&e->w), 1);
	{
		struct dp_req *out[1];

		assert_int_equal(dp_link_collect(e->l, out, 1), 1);
		dp_req_free(&e->dp, out[0]);
	}
	/* A front end's own worker is fed by its own lcore: it never needs to wake up. */
	e->w.lc.roles |= DP_ROLE_FRONTEND;
	assert_true(dp_worker_idle(&e->w) == DP_SLEEP_FOREVER);
	e->w.lc.roles &= ~DP_ROLE_FRONTEND;
}

static void
test_idle_policy_parse(void **state)
{
	enum dp_idle_policy p;

	(void)state;
	assert_int_equal(dp_idle_policy_parse("spin", &p), 0);
	assert_int_equal(p, DP_IDLE_SPIN);
	assert_int_equal(dp_idle_policy_parse("adaptive", &p), 0);
	assert_int_equal(p, DP_IDLE_ADAPTIVE);
	assert_int_equal(dp_idle_policy_parse("sleep", &p), 0);
	assert_int_equal(p, DP_IDLE_SLEEP);
	assert_int_equal(dp_idle_policy_parse("nap", &p), -EINVAL);
	assert_string_equal(dp_idle_policy_name(DP_IDLE_SLEEP), "sleep");
}

/* Bulk lane inputs: 30000 bytes of noisy text (level 19: many 1 KiB blocks, many quanta). */
#define BULK_LEN 30000u

static struct dp_req *
bulk_req(struct env *e, const char *name, const uint8_t *data, uint8_t prio)
{
	struct dp_req *r = named(e, name, data, BULK_LEN, BYTES);

	r->prio = prio;
	r->est_cycles = UINT64_MAX / 2; /* the front end's estimate: far above one quantum */
	return r;
}

/* Poll until @p n requests are collected (bounded in polls and time), in completion order. */
static void
collect_all(struct env *e, struct dp_req **order, unsigned n)
{
	uint64_t end = rte_rdtsc() + 60 * rte_get_tsc_hz();
	unsigned got = 0;

	for (unsigned i = 0; i < 10000000 && got < n && rte_rdtsc() < end; i++) {
		poll_once(&e->w);
		got += dp_link_collect(e->l, order + got, n - got);
	}
	assert_int_equal(got, n);
}

static void
assert_zstd_of(const struct dp_req *r, const uint8_t *data)
{
	static uint8_t back[BULK_LEN];

	assert_int_equal(r->status, DP_OK);
	assert_int_equal(ZSTD_decompress(back, sizeof(back), r->buf->data, r->buf->len), BULK_LEN);
	assert_memory_equal(back, data, BULK_LEN);
}

/* A running low-priority bulk request is parked when a high one arrives: the high one runs
 * its quanta first, then the waiting normal one, then the low one resumes where it was. Both
 * compressions (zstd's lcore-wide slice contexts) come out whole: decompressed, they are
 * their inputs. */
static void
test_worker_bulk_high_parks_running_low(void **state)
{
	struct env *e = *state;
	static uint8_t a[BULK_LEN], b[BULK_LEN];
	struct dp_req *low, *normal, *high, *order[3];
	struct dp_worker_stats s0, s1;
	uint32_t seed = 7;

	for (unsigned i = 0; i < BULK_LEN; i++) {
		seed = seed * 1664525u + 1013904223u;
		a[i] = (seed >> 20) % 5 ? (uint8_t) "lorem ipsum dolor "[i % 18]
					: (uint8_t)(seed >> 8);
		b[i] = (uint8_t)(a[i] ^ 0x21);
	}
	dp_worker_stats_read(&e->w, &s0);
	low = bulk_req(e, "zc", a, DP_PRIO_LOW);
	assert_int_equal(dp_link_submit(e->l, &e->w, low), 0);
	assert_int_equal(poll_once(&e->w), 1); /* joins the lane */
	assert_int_equal(poll_once(&e->w), 1); /* runs its first quantum */
	assert_ptr_equal(e->w.cur.req, low);
	assert_true(e->w.cur.started);
	assert_int_equal(dp_link_collect(e->l, order, 3), 0);

	normal = bulk_req(e, "crc", a, DP_PRIO_NORMAL);
	high = bulk_req(e, "zc", b, DP_PRIO_HIGH);
	assert_int_equal(dp_link_submit(e->l, &e->w, normal), 0);
	assert_int_equal(dp_link_submit(e->l, &e->w, high), 0);
	collect_all(e, order, 3);
	assert_ptr_equal(order[0], high);
	assert_ptr_equal(order[1], normal);
	assert_ptr_equal(order[2], low);
	dp_worker_stats_read(&e->w, &s1);
	assert_int_equal(s1.parked - s0.parked, 1);
	assert_int_equal(s1.bulk_runs - s0.bulk_runs, 3);
	assert_zstd_of(high, b);
	assert_zstd_of(low, a);
	assert_int_equal(normal->status, DP_OK);
	assert_int_equal(normal->res.n_annot, 1);
	for (unsigned i = 0; i < 3; i++)
		dp_req_free(&e->dp, order[i]);
}

/* Newer work of the same priority does not park the running one: FIFO. */
static void
test_worker_bulk_same_priority_is_not_parked(void **state)
{
	struct env *e = *state;
	static uint8_t a[BULK_LEN];
	struct dp_req *first, *second, *order[2];
	struct dp_worker_stats s0, s1;

	for (unsigned i = 0; i < BULK_LEN; i++)
		a[i] = (uint8_t)(i * 2654435761u >> 24);
	dp_worker_stats_read(&e->w, &s0);
	first = bulk_req(e, "zc", a, DP_PRIO_HIGH);
	assert_int_equal(dp_link_submit(e->l, &e->w, first), 0);
	assert_int_equal(poll_once(&e->w), 1); /* joins the lane */
	assert_int_equal(poll_once(&e->w), 1); /* runs its first quantum */
	assert_ptr_equal(e->w.cur.req, first);
	second = bulk_req(e, "zc", a, DP_PRIO_HIGH);
	assert_int_equal(dp_link_submit(e->l, &e->w, second), 0);
	collect_all(e, order, 2);
	assert_ptr_equal(order[0], first);
	assert_ptr_equal(order[1], second);
	dp_worker_stats_read(&e->w, &s1);
	assert_int_equal(s1.parked - s0.parked, 0);
	assert_zstd_of(first, a);
	assert_zstd_of(second, a);
	dp_req_free(&e->dp, order[0]);
	dp_req_free(&e->dp, order[1]);
}

/* A parked run whose deadline passes, or whose call is cancelled, is stopped where it waits
 * (its answer does not wait for the work that outranked it); the work that parked it
 * completes after it, untouched. */
static void
parked_run_stops(struct env *e, bool by_deadline)
{
	static uint8_t a[BULK_LEN], b[BULK_LEN];
	static atomic_bool cancelled;
	struct dp_req *low, *high, *order[2];
	struct dp_worker_stats s0, s1;

	for (unsigned i = 0; i < BULK_LEN; i++) {
		a[i] = (uint8_t)(i * 2654435761u >> 24);
		b[i] = (uint8_t)(a[i] ^ 0x5a);
	}
	atomic_store(&cancelled, false);
	dp_worker_stats_read(&e->w, &s0);
	low = bulk_req(e, "zc", a, DP_PRIO_LOW);
	low->cancelled = &cancelled;
	assert_int_equal(dp_link_submit(e->l, &e->w, low), 0);
	assert_int_equal(poll_once(&e->w), 1); /* joins the lane */
	assert_int_equal(poll_once(&e->w), 1); /* runs its first quantum */
	assert_ptr_equal(e->w.cur.req, low);

	high = bulk_req(e, "zc", b, DP_PRIO_HIGH);
	assert_int_equal(dp_link_submit(e->l, &e->w, high), 0);
	assert_int_equal(poll_once(&e->w), 2); /* high joins; low parks; high runs a quantum */
	assert_ptr_equal(e->w.park[DP_PRIO_LOW].req, low);
	assert_ptr_equal(e->w.cur.req, high);
	assert_int_equal(dp_link_collect(e->l, order, 2), 0);

	if (by_deadline)
		low->deadline_tsc = 1; /* long past */
	else
		atomic_store(&cancelled, true);
	assert_int_equal(poll_once(&e->w), 2); /* low stopped; high runs a quantum */
	/* Answered in that pass, ahead of the high run (which may have finished in it too). */
	assert_int_equal(dp_link_collect(e->l, order, 1), 1);
	assert_ptr_equal(order[0], low);
	assert_int_equal(low->status, by_deadline ? DP_DEADLINE_EXCEEDED : DP_CANCELLED);
	assert_non_null(strstr(low->res.err.msg, by_deadline
						     ? "deadline passed while running, after "
						     : "call cancelled while running, after "));
	assert_null(e->w.park[DP_PRIO_LOW].req);
	assert_int_equal(e->w.n_parked, 0);

	collect_all(e, order + 1, 1);
	assert_ptr_equal(order[1], high);
	assert_zstd_of(high, b);
	assert_int_equal(e->w.n_bulk, 0);
	dp_worker_stats_read(&e->w, &s1);
	assert_int_equal(s1.parked - s0.parked, 1);
	if (by_deadline)
		assert_int_equal(s1.stopped_deadline - s0.stopped_deadline, 1);
	else
		assert_int_equal(s1.stopped_cancel - s0.stopped_cancel, 1);
	low->cancelled = NULL;
	dp_req_free(&e->dp, low);
	dp_req_free(&e->dp, high);
}

static void
test_worker_parked_run_past_its_deadline_is_stopped_while_parked(void **state)
{
	parked_run_stops(*state, true);
}

static void
test_worker_parked_run_cancelled_is_stopped_while_parked(void **state)
{
	parked_run_stops(*state, false);
}

/* While bulk work waits, small work gets lane_share times the bulk quantum's actual time (a
 * slice may overrun the quantum), and at least lane_share quanta. */
static void
test_worker_share_is_of_time(void **state)
{
	struct env *e = *state;
	struct dp_worker w = {.quantum_cycles = 100, .lane_share = 3};

	assert_int_equal(dp_worker_share_cycles(&w), 300); /* no bulk quantum yet */
	w.bulk_last_cycles = 50;
	assert_int_equal(dp_worker_share_cycles(&w), 300);
	w.bulk_last_cycles = 1000; /* a slice ran ten quanta */
	assert_int_equal(dp_worker_share_cycles(&w), 3000);
	/* The running worker's configuration and its record of the last quantum. */
	assert_int_equal(e->w.lane_share, 1);	/* setup()'s */
	assert_true(e->w.bulk_last_cycles > 0); /* the bulk tests above ran quanta */
}

/* A burst of requests of not-yet-known cost that turn out long (32 x 2 ms) is one pass: the
 * worker still evaluates its overload every DP_SHED_INTERVAL_NS between them, so it starts
 * shedding during the burst, not only once the burst is over (when the calls it should have
 * refused have been queued long since). Before the fix the single evaluation after the burst
 * only started the window: not shedding. */
static void
test_worker_sheds_during_a_long_burst(void **state)
{
	struct env *e = *state;
	struct dp_param us = {.key = "us", .value = "2000"};
	struct dp_node_spec delay = {.type = "test_delay", .n_params = 1, .params = &us};
	struct dp_spec sd = {.name = "slow", .n_nodes = 1, .nodes = &delay};
	struct dp_registry_info info;
	struct dp_req *reqs[DP_WORKER_BURST];
	struct dp_err err;
	unsigned got = 0;

	dp_node_table_enable_test();
	assert_int_equal(dp_registry_put(e->dp.reg, dp_pipeline_compile(&sd, 32, &err), &info), 0);
	/* Over from the first request on (queue >= 1% of the ring), for at least 1 ms. */
	e->w.shed_conf_default.high_pct = 1;
	e->w.shed_conf_default.window_ms = 1;
	memset(&e->w.shed, 0, sizeof(e->w.shed));
	e->w.shed_next_tsc = 0;
	for (unsigned i = 0; i < DP_WORKER_BURST; i++) {
		reqs[i] = named(e, "slow", "x", 1, BYTES);
		assert_int_equal(dp_link_submit(e->l, &e->w, reqs[i]), 0);
	}
	assert_int_equal(poll_once(&e->w), DP_WORKER_BURST); /* one pass: the whole burst */
	assert_true(atomic_load_explicit(&e->w.lc.shedding, memory_order_relaxed));
	for (unsigned i = 0; i < 1000 && got < DP_WORKER_BURST; i++)
		got += dp_link_collect(e->l, reqs + got, DP_WORKER_BURST - got);
	assert_int_equal(got, DP_WORKER_BURST);
	for (unsigned i = 0; i < got; i++) {
		assert_int_equal(reqs[i]->status, DP_OK);
		dp_req_free(&e->dp, reqs[i]);
	}
	dp_shed_conf_default(&e->w.shed_conf_default);
	memset(&e->w.shed, 0, sizeof(e->w.shed));
	atomic_store(&e->w.lc.shedding, false);
}

/* A worker busy only with bulk quanta for longer than the shedding window does not shed: that
 * work takes only the time small work leaves. The reactor's busy/total accounting is done here
 * as dp_reactor_run does it; the worker evaluates shedding every 10 ms, five times here. */
static void
test_worker_busy_with_bulk_work_does_not_shed(void **state)
{
	struct env *e = *state;
	static uint8_t a[BULK_LEN];
	struct dp_req *r;
	uint64_t start = rte_rdtsc(), end = start + rte_get_tsc_hz() / 20; /* 50 ms */
	uint32_t seed = 11;
	unsigned done = 0;

	for (unsigned i = 0; i < BULK_LEN; i++) {
		seed = seed * 1103515245u + 12345u;
		a[i] = (uint8_t)('a' + (seed >> 16) % 26);
	}
	e->w.shed_conf_default.high_pct = 100; /* the queue trigger out of the way */
	e->w.shed_conf_default.busy_pct = 50;
	e->w.shed_conf_default.window_ms = 1;
	memset(&e->w.shed, 0, sizeof(e->w.shed));
	memset(&e->w.stats.r, 0, sizeof(e->w.stats.r));
	e->w.bulk_cycles = 0;	/* counted from the same start as the reactor's */
	e->w.shed_next_tsc = 0; /* then every 10 ms, as the worker does */
	r = bulk_req(e, "zc", a, DP_PRIO_NORMAL);
	assert_int_equal(dp_link_submit(e->l, &e->w, r), 0);
	for (unsigned i = 0; i < 1000000 && rte_rdtsc() < end; i++) {
		uint64_t t0 = rte_rdtsc(), t1;
		unsigned n;

		n = poll_once(&e->w);
		t1 = rte_rdtsc();
		e->w.stats.r.busy_cycles += n != 0 ? t1 - t0 : 0;
		e->w.stats.r.total_cycles = t1 - start;
		assert_false(atomic_load_explicit(&e->w.lc.shedding, memory_order_relaxed));
		if (dp_link_collect(e->l, &r, 1) == 1) { /* keep one bulk job running throughout */
			assert_int_equal(r->status, DP_OK);
			dp_req_free(&e->dp, r);
			done++;
			r = bulk_req(e, "zc", a, DP_PRIO_NORMAL);
			assert_int_equal(dp_link_submit(e->l, &e->w, r), 0);
		}
	}
	/* Drain the last one. */
	collect_all(e, &r, 1);
	dp_req_free(&e->dp, r);
	assert_true(done >= 5); /* it ran jobs back to back throughout, over the 1 ms window */
	dp_shed_conf_default(&e->w.shed_conf_default);
	memset(&e->w.shed, 0, sizeof(e->w.shed));
	atomic_store(&e->w.lc.shedding, false);
}

/* Placement's estimate: the lowest of several lcores' cost models. One whose only run was slow
 * (preempted) does not keep a microsecond pipeline off the inline path once another lcore has
 * learnt its cost; models that know nothing (or are absent) do not count. */
static void
test_metrics_estimate_min_takes_the_lowest_known(void **state)
{
	struct dp_metrics *slow = dp_metrics_create(rte_get_tsc_hz(), SOCKET_ID_ANY);
	struct dp_metrics *fast = dp_metrics_create(rte_get_tsc_hz(), SOCKET_ID_ANY);
	struct dp_metrics *none = dp_metrics_create(rte_get_tsc_hz(), SOCKET_ID_ANY);
	const struct dp_metrics *m[4] = {slow, none, NULL, fast};

	(void)state;
	assert_non_null(slow);
	assert_non_null(fast);
	assert_non_null(none);
	assert_int_equal(dp_metrics_estimate_min(m, 4, 5, 64), 0); /* nobody has run it */
	dp_metrics_learn_cost(slow, 5, 64, 5000000);		   /* one preempted run */
	assert_int_equal(dp_metrics_estimate_min(m, 4, 5, 64), 5000000);
	for (unsigned i = 0; i < 32; i++)
		dp_metrics_learn_cost(fast, 5, 64, 2000);
	assert_int_equal(dp_metrics_estimate(slow, 5, 64), 5000000); /* stuck where it was */
	assert_int_equal(dp_metrics_estimate_min(m, 4, 5, 64), 2000);
	assert_int_equal(dp_metrics_estimate_min(m, 1, 5, 64), 5000000); /* only the first */
	assert_int_equal(dp_metrics_estimate_min(m, 4, 6, 64), 0);	 /* another pipeline */
	dp_metrics_free(slow);
	dp_metrics_free(fast);
	dp_metrics_free(none);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worker_poll_once_runs_and_completes),
	    cmocka_unit_test(test_worker_unknown_pipeline_not_found),
	    cmocka_unit_test(test_worker_expired_deadline_is_not_run),
	    cmocka_unit_test(test_worker_ring_full_is_enobufs_and_burst_drains),
	    cmocka_unit_test(test_req_alloc_limits),
	    cmocka_unit_test(test_idle_policy_parse),
	    cmocka_unit_test(test_reactor_polls_all_and_takes_the_shortest_idle_limit),
	    cmocka_unit_test(test_reactor_polling_without_work_yields_its_cpu),
	    cmocka_unit_test(test_worker_idle_limit_rechecks_its_links),
	    cmocka_unit_test(test_worker_bulk_high_parks_running_low),
	    cmocka_unit_test(test_worker_bulk_same_priority_is_not_parked),
	    cmocka_unit_test(test_worker_parked_run_past_its_deadline_is_stopped_while_parked),
	    cmocka_unit_test(test_worker_parked_run_cancelled_is_stopped_while_parked),
	    cmocka_unit_test(test_worker_share_is_of_time),
	    cmocka_unit_test(test_worker_sheds_during_a_long_burst),
	    cmocka_unit_test(test_worker_busy_with_bulk_work_does_not_shed),
	    cmocka_unit_test(test_metrics_estimate_min_takes_the_lowest_known),
	};
	int rc;

	if (test_eal_up() != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, setup, teardown);
	test_eal_down();
	return rc;
}

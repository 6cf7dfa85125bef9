/*
 * The worker poller and a link, on one thread (no lcore launched): descriptors are submitted
 * over a link (dp_link_submit, the front end's side) to a hand-built worker, the test runs the
 * worker's poller itself (poll_once: dp_worker_poll plus the quiescent state, as its reactor
 * does), and collects them from the link (dp_link_collect). The reactor loop body is tested
 * with a fake poller.
 */
#include "dataplane/dataplane.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <errno.h>
#include <rte_cycles.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
	struct dp_worker_conf wc = {
	    .idle = DP_IDLE_SLEEP, .spin_us = 0, .sleep_max_us = 1000, .ring_size = RING};
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
	    dp_registry_put(e.dp.reg, dp_pipeline_compile(&s2, 32, &err), &info) != 0)
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
	    cmocka_unit_test(test_worker_idle_limit_rechecks_its_links),
	};
	int rc;

	if (test_eal_up() != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, setup, teardown);
	test_eal_down();
	return rc;
}

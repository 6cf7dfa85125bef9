/*
 * Registry: put/replace/delete, ids and versions, unknown lookups, and the grace period: a
 * replaced pipeline is released only after every registered reader has passed a quiescent
 * state. No EAL: the registry and pipelines use malloc and liburcu only.
 */
#include "dataplane/registry.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <urcu/static/urcu-qsbr.h> /* urcu_qsbr_gp: see gp_waits_on_reader() */

static struct dp_pipeline *
make(const char *name, const char *type, const char *db)
{
	struct dp_param prm = {.key = "db", .value = (char *)db};
	struct dp_node_spec n = {.type = (char *)type, .n_params = db ? 1 : 0, .params = &prm};
	struct dp_spec s = {.name = (char *)name, .n_nodes = 1, .nodes = &n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);

	assert_non_null(p);
	return p;
}

static int
setup(void **state)
{
	urcu_qsbr_register_thread();
	*state = dp_registry_create();
	return *state ? 0 : -1;
}

static int
teardown(void **state)
{
	urcu_qsbr_thread_offline();
	dp_registry_destroy(*state);
	urcu_qsbr_unregister_thread();
	return 0;
}

static void
test_registry_lookup_unknown_name_returns_null(void **state)
{
	struct dp_registry *r = *state;

	urcu_qsbr_thread_online();
	assert_null(dp_registry_lookup(r, "nope", dp_name_hash("nope", 4)));
	assert_null(dp_registry_lookup_id(r, 1));
	assert_null(dp_registry_lookup_id(r, 0));
	assert_null(dp_registry_lookup_id(r, DP_REGISTRY_MAX + 1));
	assert_null(dp_registry_get(r, "nope"));
	assert_int_equal(dp_registry_delete(r, "nope"), -ENOENT);
}

static void
test_registry_put_replace_keeps_id_and_bumps_version(void **state)
{
	struct dp_registry *r = *state;
	struct dp_registry_info a, b, c;
	const struct dp_pipeline *p;

	assert_int_equal(dp_registry_put(r, make("alpha", "passthrough", NULL), &a), 0);
	assert_int_equal(dp_registry_put(r, make("beta", "passthrough", NULL), &b), 0);
	assert_int_not_equal(a.id, b.id);
	assert_false(a.replaced);
	assert_int_equal(dp_registry_put(r, make("alpha", "gain", "3"), &c), 0);
	assert_true(c.replaced);
	assert_int_equal(c.id, a.id);
	assert_true(c.version > b.version && b.version > a.version);

	urcu_qsbr_thread_online();
	p = dp_registry_lookup(r, "alpha", dp_name_hash("alpha", 5));
	assert_non_null(p);
	assert_string_equal(p->nodes[0].type->name, "gain");
	assert_int_equal(p->version, c.version);
	assert_ptr_equal(dp_registry_lookup_id(r, a.id), p);
	urcu_qsbr_thread_offline();
}

static void
test_registry_delete_frees_id_for_reuse(void **state)
{
	struct dp_registry *r = *state;
	struct dp_registry_info a, b, c;

	assert_int_equal(dp_registry_put(r, make("one", "passthrough", NULL), &a), 0);
	assert_int_equal(dp_registry_put(r, make("two", "passthrough", NULL), &b), 0);
	assert_int_equal(dp_registry_delete(r, "one"), 0);
	assert_int_equal(dp_registry_delete(r, "one"), -ENOENT);
	urcu_qsbr_thread_online();
	assert_null(dp_registry_lookup(r, "one", dp_name_hash("one", 3)));
	assert_null(dp_registry_lookup_id(r, a.id));
	urcu_qsbr_thread_offline();
	assert_int_equal(dp_registry_put(r, make("three", "passthrough", NULL), &c), 0);
	assert_int_equal(c.id, a.id); /* lowest free id */
}

static void
test_registry_put_invalid_name_fails(void **state)
{
	struct dp_registry_info i;

	assert_int_equal(dp_registry_put(*state, make("bad name", "passthrough", NULL), &i),
			 -EINVAL);
	assert_int_equal(dp_registry_put(*state, make("", "passthrough", NULL), &i), -EINVAL);
}

static int
count_cb(struct dp_pipeline *p, void *arg)
{
	(void)p;
	(*(int *)arg)++;
	return 0;
}

static void
test_registry_for_each_visits_all(void **state)
{
	struct dp_registry_info i;
	char name[16];
	int n = 0;

	for (int k = 0; k < 100; k++) {
		snprintf(name, sizeof(name), "p%d", k);
		assert_int_equal(dp_registry_put(*state, make(name, "passthrough", NULL), &i), 0);
	}
	assert_int_equal(dp_registry_for_each(*state, count_cb, &n), 0);
	assert_int_equal(n, 100);
}

/* ---- grace period ------------------------------------------------------------------------ */

struct reader {
	struct dp_registry *r;
	const struct dp_pipeline *seen;
	int phase; /* 0 start, 1 looked up, 2 told to pass a quiescent state, 3 done */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void
wait_phase(struct reader *rd, int phase)
{
	pthread_mutex_lock(&rd->mu);
	while (rd->phase < phase)
		pthread_cond_wait(&rd->cv, &rd->mu);
	pthread_mutex_unlock(&rd->mu);
}

static void
set_phase(struct reader *rd, int phase)
{
	pthread_mutex_lock(&rd->mu);
	rd->phase = phase;
	pthread_cond_broadcast(&rd->cv);
	pthread_mutex_unlock(&rd->mu);
}

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;

	urcu_qsbr_register_thread();
	rd->seen = dp_registry_lookup(rd->r, "gp", dp_name_hash("gp", 2));
	set_phase(rd, 1);
	/* Stay online without a quiescent state until told: the grace period must wait. */
	pthread_mutex_lock(&rd->mu);
	while (rd->phase < 2)
		pthread_cond_wait(&rd->cv, &rd->mu);
	pthread_mutex_unlock(&rd->mu);
	urcu_qsbr_quiescent_state();
	urcu_qsbr_unregister_thread();
	set_phase(rd, 3);
	return NULL;
}

/*
 * Whether a grace period is blocked on a reader: liburcu's writer (here the call_rcu thread's
 * synchronize_rcu), having spun without every reader passing a quiescent state, sets
 * urcu_qsbr_gp.futex to -1 and sleeps on it; a reader's quiescent state or offline reads it
 * (urcu/static/urcu-qsbr.h: wake_up_gp) and resets it. Polled a bounded number of times:
 * GP_POLL_MAX polls of GP_POLL_NS, a hang guard only.
 */
#define GP_POLL_NS  1000000L
#define GP_POLL_MAX 30000

static bool
gp_waits_on_reader(void)
{
	const struct timespec step = {.tv_nsec = GP_POLL_NS};

	for (int i = 0; i < GP_POLL_MAX; i++) {
		if (uatomic_read(&urcu_qsbr_gp.futex) == -1)
			return true;
		nanosleep(&step, NULL);
	}
	return false;
}

static void
test_registry_replace_frees_old_only_after_grace_period(void **state)
{
	struct reader rd = {.r = *state};
	struct dp_registry_info i;
	struct dp_pipeline *old = make("gp", "passthrough", NULL);
	pthread_t t;

	/* Offline: only the reader thread may hold the grace period up. */
	urcu_qsbr_thread_offline();
	pthread_mutex_init(&rd.mu, NULL);
	pthread_cond_init(&rd.cv, NULL);
	/* Our own reference lets us watch the registry's reference go away. */
	dp_pipeline_ref(old);
	assert_int_equal(dp_registry_put(rd.r, old, &i), 0);
	assert_int_equal(atomic_load(&old->refcnt), 2);
	/* Earlier tests' callbacks run now: the only grace period from here on is the replace's. */
	urcu_qsbr_barrier();

	pthread_create(&t, NULL, reader_main, &rd);
	wait_phase(&rd, 1);
	assert_ptr_equal(rd.seen, old);

	assert_int_equal(dp_registry_put(rd.r, make("gp", "gain", "1"), &i), 0);
	/* The replace's grace period has started and waits on the reader, which has not passed a
	 * quiescent state: the old version is still referenced (no sleep: that state is read). */
	assert_true(gp_waits_on_reader());
	assert_int_equal(atomic_load(&old->refcnt), 2);
	assert_string_equal(rd.seen->name, "gp");

	set_phase(&rd, 2);
	wait_phase(&rd, 3);
	pthread_join(t, NULL);
	urcu_qsbr_barrier(); /* run pending call_rcu callbacks */
	assert_int_equal(atomic_load(&old->refcnt), 1);
	dp_pipeline_unref(old);
	pthread_cond_destroy(&rd.cv);
	pthread_mutex_destroy(&rd.mu);
}

static struct dp_pipeline *
make_file(const char *name, const char *type)
{
	struct dp_pipeline *p = make(name, type, NULL);

	p->from_file = true;
	return p;
}

static void
removed_count(const char *name, void *arg)
{
	(void)name;
	(*(unsigned *)arg)++;
}

/* Finding 6: syncing the file's pipelines is all or nothing. With the registry one name short,
 * nothing is published, removed or replaced, and the references stay the caller's. */
static void
test_registry_sync_file_full_changes_nothing(void **state)
{
	struct dp_registry *r = *state;
	struct dp_registry_info info;
	struct dp_pipeline *ps[3], *cur;
	uint8_t outcome[3];
	unsigned removed = 0;
	char name[32];

	/* 4093 API pipelines + 2 file pipelines: one id left. */
	for (unsigned i = 0; i < DP_REGISTRY_MAX - 3; i++) {
		snprintf(name, sizeof(name), "api%u", i);
		assert_int_equal(dp_registry_put(r, make(name, "passthrough", NULL), &info), 0);
	}
	assert_int_equal(dp_registry_put(r, make_file("f_keep", "crc32c"), &info), 0);
	assert_int_equal(dp_registry_put(r, make_file("f_gone", "crc32c"), &info), 0);
	assert_int_equal(r->count, DP_REGISTRY_MAX - 1);
	/* The new file: f_keep changed, f_gone removed, n1..n2 new: 4095 - 1 + 2 = 4096 fits;
	 * with n3 too it does not. */
	ps[0] = make_file("f_keep", "passthrough");
	ps[1] = make_file("n1", "passthrough");
	ps[2] = make_file("n2", "passthrough");
	assert_int_equal(dp_registry_sync_file(r, ps, 3, true, NULL, NULL, NULL), 0);
	{
		struct dp_pipeline *more[4] = {ps[0], ps[1], ps[2], make_file("n3", "passthrough")};
		uint8_t oc[4] = {9, 9, 9, 9};

		assert_int_equal(
		    dp_registry_sync_file(r, more, 4, false, oc, removed_count, &removed), -ENOSPC);
		assert_int_equal(removed, 0);
		assert_int_equal(oc[0], 9); /* not written */
		dp_pipeline_unref(more[3]); /* still ours */
	}
	/* Nothing changed: f_gone is there, f_keep is the old crc32c, no n1. */
	assert_int_equal(r->count, DP_REGISTRY_MAX - 1);
	cur = dp_registry_get(r, "f_keep");
	assert_string_equal(cur->nodes[0].type->name, "crc32c");
	dp_pipeline_unref(cur);
	cur = dp_registry_get(r, "f_gone");
	assert_non_null(cur);
	dp_pipeline_unref(cur);
	assert_null(dp_registry_get(r, "n1"));
	/* The one that fits: applied whole. */
	assert_int_equal(dp_registry_sync_file(r, ps, 3, false, outcome, removed_count, &removed),
			 0);
	assert_int_equal(removed, 1);
	assert_int_equal(outcome[0], DP_REG_REPLACED);
	assert_int_equal(outcome[1], DP_REG_ADDED);
	assert_int_equal(outcome[2], DP_REG_ADDED);
	assert_int_equal(r->count, DP_REGISTRY_MAX);
	assert_null(dp_registry_get(r, "f_gone"));
	/* The same list again: unchanged, versions kept, the references dropped by the call. */
	cur = dp_registry_get(r, "n1");
	{
		uint64_t v = cur->version;
		struct dp_pipeline *again[3] = {make_file("f_keep", "passthrough"),
						make_file("n1", "passthrough"),
						make_file("n2", "passthrough")};

		dp_pipeline_unref(cur);
		assert_int_equal(
		    dp_registry_sync_file(r, again, 3, false, outcome, removed_count, &removed), 0);
		assert_int_equal(outcome[0], DP_REG_UNCHANGED);
		assert_int_equal(outcome[1], DP_REG_UNCHANGED);
		cur = dp_registry_get(r, "n1");
		assert_int_equal(cur->version, v);
		dp_pipeline_unref(cur);
	}
}

static void
test_registry_put_at_given_id_and_version_and_plan(void **state)
{
	struct dp_registry *r = *state;
	struct dp_registry_info a, b, c;
	uint32_t id;
	uint64_t v;

	assert_int_equal(dp_registry_plan(r, "alpha", &id, &v), 0);
	assert_int_equal(id, 1);
	assert_int_equal(dp_registry_put_at(r, make("alpha", "passthrough", NULL), 7, 40, &a), 0);
	assert_int_equal(a.id, 7);
	assert_int_equal(a.version, 40);
	/* Versions move past the one given; the plan says what a put gets. */
	assert_int_equal(dp_registry_plan(r, "beta", &id, &v), 0);
	assert_int_equal(id, 1);
	assert_int_equal(v, 41);
	assert_int_equal(dp_registry_put(r, make("beta", "passthrough", NULL), &b), 0);
	assert_int_equal(b.id, id);
	assert_int_equal(b.version, v);
	assert_int_equal(dp_registry_plan(r, "alpha", &id, &v), 0);
	assert_int_equal(id, 7); /* a replace keeps the name's id */
	/* An id held by another name, or another id for an existing name: -EEXIST. */
	assert_int_equal(dp_registry_put_at(r, make("gamma", "passthrough", NULL), 7, 0, &c),
			 -EEXIST);
	assert_int_equal(dp_registry_put_at(r, make("alpha", "passthrough", NULL), 3, 0, &c),
			 -EEXIST);
	assert_int_equal(dp_registry_put_at(r, make("alpha", "gain", "1"), 7, 0, &c), 0);
	assert_int_equal(c.id, 7);
	assert_true(c.replaced);
	assert_int_equal(c.version, 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_registry_lookup_unknown_name_returns_null, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_registry_put_replace_keeps_id_and_bumps_version,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registry_delete_frees_id_for_reuse, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_registry_put_invalid_name_fails, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registry_for_each_visits_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registry_sync_file_full_changes_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_registry_replace_frees_old_only_after_grace_period,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registry_put_at_given_id_and_version_and_plan,
					    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

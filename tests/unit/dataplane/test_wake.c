/*
 * Event-count wake-ups (dp_wake, ck_ec over futex): a sleeper wakes when bumped, a wait with a
 * stale value returns at once (no lost wake-up), and an unbumped wait ends at its timeout and
 * not before. Waits run on a fake clock (dp_wake_set_clock) that advances a fixed step at every
 * reading: no test sleeps, and what is asserted is readings of that clock, never wall time.
 */
#include "dataplane/wake.h"
#include "tests/fakes/cmocka_inc.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define S	   1000000000ull /* ns */
#define MS	   1000000ull
#define START	   (1000 * S) /* ck_ec treats deadlines at or before second 0 as already past */
#define SPIN_MAX   100000000u /* bound on a wait for the other thread (sched_yield calls) */
#define JOIN_MAX_S 60	      /* only a hang guard: a sleeper that never wakes fails the test */

static _Atomic uint64_t g_now = START; /* the fake clock */
static _Atomic uint64_t g_step;	       /* advance per reading */
static _Atomic unsigned g_reads;

static int
fake_clock(struct timespec *now)
{
	uint64_t t = atomic_fetch_add(&g_now, atomic_load(&g_step));

	atomic_fetch_add(&g_reads, 1);
	now->tv_sec = (time_t)(t / S);
	now->tv_nsec = (long)(t % S);
	return 0;
}

static void
fake_clock_set(uint64_t step)
{
	atomic_store(&g_now, START);
	atomic_store(&g_step, step);
	atomic_store(&g_reads, 0);
}

static int
setup(void **state)
{
	(void)state;
	dp_wake_set_clock(fake_clock);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	dp_wake_set_clock(NULL);
	return 0;
}

struct sleeper {
	struct dp_wake *w;
	uint32_t seen, after;
	atomic_bool done;
};

static void *
sleeper_main(void *arg)
{
	struct sleeper *s = arg;

	s->seen = dp_wake_value(s->w);
	dp_wake_wait(s->w, s->seen, 10 * S);
	s->after = dp_wake_value(s->w);
	atomic_store(&s->done, true);
	return NULL;
}

static void
test_wake_bump_wakes_sleeper(void **state)
{
	struct dp_wake w;
	struct sleeper s = {.w = &w};
	struct timespec guard;
	pthread_t t;
	unsigned spins = 0;

	(void)state;
	/* 1 us a reading: the 10 s deadline is ten million readings away. */
	fake_clock_set(1000);
	dp_wake_init(&w, true);
	assert_int_equal(pthread_create(&t, NULL, sleeper_main, &s), 0);
	/* The sleeper flags the counter ("I sleep") before its futex wait: only then can the bump
	 * be the thing that wakes it. */
	while (!ck_ec32_has_waiters(&w.ec) && !atomic_load(&s.done) && spins++ < SPIN_MAX)
		sched_yield();
	assert_true(ck_ec32_has_waiters(&w.ec));
	assert_false(atomic_load(&s.done));
	dp_wake_bump(&w);
	clock_gettime(CLOCK_REALTIME, &guard);
	guard.tv_sec += JOIN_MAX_S;
	assert_int_equal(pthread_timedjoin_np(t, NULL, &guard), 0);
	/* Woken by the bump: it saw the new value, and its clock never reached the deadline. */
	assert_int_equal(s.after & 0x7fffffff, (s.seen & 0x7fffffff) + 1);
	assert_true(atomic_load(&g_now) < START + 10 * S);
	/* The bump cleared the flag: the next bump needs no system call. */
	assert_false(ck_ec32_has_waiters(&w.ec));
}

static void
test_wake_stale_value_returns_at_once(void **state)
{
	struct dp_wake w;
	uint32_t seen;

	(void)state;
	/* 1 s a reading: were the wait to wait, it would end after ten readings. */
	fake_clock_set(S);
	dp_wake_init(&w, false);
	seen = dp_wake_value(&w);
	dp_wake_bump(&w); /* work arrived between the check and the wait */
	dp_wake_wait(&w, seen, 10 * S);
	/* One reading (the deadline's), no clock check of a sleep. */
	assert_int_equal(atomic_load(&g_reads), 1);
	assert_int_equal(dp_wake_value(&w) & 0x7fffffff, seen + 1);
}

static void
test_wake_timeout_without_bump(void **state)
{
	struct dp_wake w;
	uint32_t seen;
	uint64_t last;
	unsigned reads;

	(void)state;
	/* 30 ms a reading, a 100 ms timeout set from the first: the readings at +30, +60 and +90
	 * are before the deadline. (ck_ec's futex slices end 1 ms and 64 ms after its first check;
	 * each is already past when the futex would be called: nothing really sleeps.) */
	fake_clock_set(30 * MS);
	dp_wake_init(&w, true);
	seen = dp_wake_value(&w);
	dp_wake_wait(&w, seen, 100 * MS);
	reads = atomic_load(&g_reads);
	last = atomic_load(&g_now) - 30 * MS;
	/* It ended on a reading at or past the deadline, after every earlier one kept it waiting
	 * (the deadline's, +30, +60, +90, then the one past it), ... */
	assert_true(last >= START + 100 * MS);
	assert_true(reads >= 5);
	/* ... and at most one reading after the first past it (a futex slice's own reading may be
	 * the first: the check that ends the wait follows it). */
	assert_true(last < START + 100 * MS + 2 * 30 * MS);
	/* Nobody bumped: the value is the one it started from. */
	assert_int_equal(dp_wake_value(&w) & 0x7fffffff, seen & 0x7fffffff);
}

static void
test_wake_timeout_zero(void **state)
{
	struct dp_wake w;

	(void)state;
	fake_clock_set(MS);
	dp_wake_init(&w, true);
	/* A zero timeout is a poll: its deadline is its first reading, past at the next one. */
	dp_wake_wait(&w, dp_wake_value(&w), 0);
	assert_true(atomic_load(&g_reads) <= 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wake_bump_wakes_sleeper),
	    cmocka_unit_test(test_wake_stale_value_returns_at_once),
	    cmocka_unit_test(test_wake_timeout_without_bump),
	    cmocka_unit_test(test_wake_timeout_zero),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

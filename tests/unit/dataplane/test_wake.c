/*
 * Event-count wake-ups (dp_wake, ck_ec over futex): a sleeper wakes promptly when bumped, a wait
 * with a stale value returns at once (no lost wake-up), and an unbumped wait ends at its timeout.
 * Times are only bounded loosely (seconds vs. milliseconds): this checks behaviour, not speed.
 */
#include "dataplane/worker.h"
#include "tests/fakes/cmocka_inc.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sleeper {
	struct dp_wake *w;
	double woke_after;
};

static void *
sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	uint32_t seen = dp_wake_value(s->w);
	double t0 = now_s();

	dp_wake_wait(s->w, seen, 10ull * 1000000000ull); /* 10 s unless bumped */
	s->woke_after = now_s() - t0;
	return NULL;
}

static void
test_wake_bump_wakes_sleeper(void **state)
{
	struct dp_wake w;
	struct sleeper s = {.w = &w};
	pthread_t t;

	(void)state;
	dp_wake_init(&w, true);
	pthread_create(&t, NULL, sleeper_main, &s);
	usleep(100 * 1000); /* let it go to sleep */
	dp_wake_bump(&w);
	pthread_join(t, NULL);
	assert_true(s.woke_after < 5.0);
	assert_true(s.woke_after >= 0.05); /* it did sleep until the bump */
}

static void
test_wake_stale_value_returns_at_once(void **state)
{
	struct dp_wake w;
	uint32_t seen;
	double t0;

	(void)state;
	dp_wake_init(&w, false);
	seen = dp_wake_value(&w);
	dp_wake_bump(&w); /* work arrived between the check and the wait */
	t0 = now_s();
	dp_wake_wait(&w, seen, 10ull * 1000000000ull);
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(dp_wake_value(&w) & 0x7fffffff, seen + 1);
}

static void
test_wake_timeout_without_bump(void **state)
{
	struct dp_wake w;
	double t0, dt;

	(void)state;
	dp_wake_init(&w, true);
	t0 = now_s();
	dp_wake_wait(&w, dp_wake_value(&w), 50ull * 1000000ull); /* 50 ms */
	dt = now_s() - t0;
	assert_true(dt >= 0.04);
	assert_true(dt < 5.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wake_bump_wakes_sleeper),
	    cmocka_unit_test(test_wake_stale_value_returns_at_once),
	    cmocka_unit_test(test_wake_timeout_without_bump),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * shed: the load-shedding state machine, driven with time and counters passed in (no clock, no
 * worker): the defaults; overload by queue depth and by busy ratio, each only after the window;
 * a dip below the mark restarting the window; hysteresis between the high and low marks; the
 * busy ratio measured per interval (and zero for an idle worker whose loop has not advanced);
 * disabled shedding; episodes counted once per start.
 */
#include "dataplane/shed.h"
#include "tests/fakes/cmocka_inc.h"

#include <string.h>

#define MS   1000000ull /* ns */
#define RING 1000u

/* A worker's state and cumulative reactor counters, evaluated every 10 ms of fake time. */
struct sim {
	struct dp_shed s;
	struct dp_shed_conf c;
	uint64_t now, busy, total;
};

static void
sim_init(struct sim *m)
{
	memset(m, 0, sizeof(*m));
	dp_shed_conf_default(&m->c);
	m->c.window_ms = 100;
	m->now = 1000 * MS; /* not 0: over_since_ns uses 0 for "not overloaded" */
}

/* One interval of @p ms with the reactor busy @p busy_pct % of it and @p depth queued. */
static bool
sim_step(struct sim *m, uint64_t ms, uint64_t depth, uint64_t busy_pct)
{
	m->now += ms * MS;
	m->total += ms * 1000;
	m->busy += ms * 10 * busy_pct;
	return dp_shed_eval(&m->s, &m->c, m->now, depth, RING, m->busy, m->total);
}

static void
test_defaults(void **state)
{
	struct dp_shed_conf c;

	(void)state;
	memset(&c, 0xff, sizeof(c));
	dp_shed_conf_default(&c);
	assert_true(c.enabled);
	assert_int_equal(c.high_pct, 80);
	assert_int_equal(c.low_pct, 20);
	assert_int_equal(c.busy_pct, 90);
	assert_int_equal(c.window_ms, 5000);
}

static void
test_queue_over_high_mark_sheds_after_window(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	/* At the high-water mark (80 % of 1000): overloaded from the first evaluation. */
	assert_false(sim_step(&m, 10, 800, 0));
	/* The window runs from that first evaluation: 90 ms later, still not shedding. */
	for (int i = 0; i < 9; i++)
		assert_false(sim_step(&m, 10, 800, 0));
	assert_int_equal(m.s.episodes, 0);
	/* 100 ms (the window) after the first over evaluation: shedding. */
	assert_true(sim_step(&m, 10, 800, 0));
	assert_true(m.s.active);
	assert_int_equal(m.s.episodes, 1);
}

static void
test_queue_just_under_high_mark_never_sheds(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	for (int i = 0; i < 100; i++)
		assert_false(sim_step(&m, 10, 799, 0));
	assert_int_equal(m.s.over_since_ns, 0);
	assert_int_equal(m.s.episodes, 0);
}

static void
test_dip_restarts_window(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	for (int i = 0; i < 9; i++)
		assert_false(sim_step(&m, 10, 900, 0));
	/* One calm evaluation: the overload is not continuous, the window starts again. */
	assert_false(sim_step(&m, 10, 100, 0));
	assert_int_equal(m.s.over_since_ns, 0);
	for (int i = 0; i < 10; i++)
		assert_false(sim_step(&m, 10, 900, 0));
	assert_true(sim_step(&m, 10, 900, 0));
	assert_int_equal(m.s.episodes, 1);
}

static void
test_busy_ratio_alone_sheds(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	/* An empty queue but a reactor busy 95 % of every interval (threshold 90 %). */
	assert_false(sim_step(&m, 10, 0, 95));
	assert_true(m.s.busy > 0.94 && m.s.busy < 0.96);
	for (int i = 0; i < 9; i++)
		assert_false(sim_step(&m, 10, 0, 95));
	assert_true(sim_step(&m, 10, 0, 95));
	/* Busy 89 %: under the threshold, and the queue is empty: calm, shedding stops. */
	assert_false(sim_step(&m, 10, 0, 89));
	assert_int_equal(m.s.episodes, 1);
}

static void
test_busy_ratio_is_per_interval(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	/* A long idle history does not dilute a busy interval: the ratio is of the last one. */
	assert_false(sim_step(&m, 1000, 0, 0));
	assert_false(sim_step(&m, 10, 0, 100));
	assert_true(m.s.busy > 0.99);
	assert_int_not_equal(m.s.over_since_ns, 0);
}

static void
test_asleep_worker_reads_idle(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	assert_false(sim_step(&m, 10, 0, 100));
	assert_true(m.s.busy > 0.99);
	/* The reactor slept (its counters did not move) with nothing queued: idle, not busy. */
	m.now += 10 * MS;
	assert_false(dp_shed_eval(&m.s, &m.c, m.now, 0, RING, m.busy, m.total));
	assert_true(m.s.busy == 0);
	assert_int_equal(m.s.over_since_ns, 0);
	/* Counters frozen but requests queued: the last ratio stands (its loop is stuck). */
	assert_false(sim_step(&m, 10, 0, 100));
	m.now += 10 * MS;
	assert_false(dp_shed_eval(&m.s, &m.c, m.now, 5, RING, m.busy, m.total));
	assert_true(m.s.busy > 0.99);
}

static void
test_hysteresis_between_marks(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	for (int i = 0; i < 11; i++)
		sim_step(&m, 10, 1000, 0);
	assert_true(m.s.active);
	/* Between the marks (20 % < depth < 80 %): keeps shedding, however long. */
	for (int i = 0; i < 100; i++)
		assert_true(sim_step(&m, 10, 500, 0));
	assert_true(sim_step(&m, 10, 201, 0));
	/* At the low-water mark: stops. */
	assert_false(sim_step(&m, 10, 200, 0));
	assert_int_equal(m.s.over_since_ns, 0);
	/* Back between the marks: not over, so no new episode starts. */
	for (int i = 0; i < 20; i++)
		assert_false(sim_step(&m, 10, 500, 0));
	assert_int_equal(m.s.episodes, 1);
}

static void
test_busy_keeps_shedding_under_low_mark(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	for (int i = 0; i < 11; i++)
		sim_step(&m, 10, 1000, 0);
	assert_true(m.s.active);
	/* An empty queue is not calm while the reactor is over the busy threshold. */
	assert_true(sim_step(&m, 10, 0, 95));
	assert_false(sim_step(&m, 10, 0, 10));
}

static void
test_episodes_counted_per_start(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	for (unsigned ep = 1; ep <= 3; ep++) {
		for (int i = 0; i < 11; i++)
			sim_step(&m, 10, 900, 0);
		assert_true(m.s.active);
		assert_int_equal(m.s.episodes, ep);
		/* Staying over does not count again. */
		for (int i = 0; i < 50; i++)
			assert_true(sim_step(&m, 10, 900, 0));
		assert_int_equal(m.s.episodes, ep);
		assert_false(sim_step(&m, 10, 0, 0));
	}
}

static void
test_disabled_never_sheds_and_resets(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	for (int i = 0; i < 11; i++)
		sim_step(&m, 10, 1000, 100);
	assert_true(m.s.active);
	/* Disabled (a reload): off at once, and the window is forgotten. */
	m.c.enabled = false;
	for (int i = 0; i < 100; i++)
		assert_false(sim_step(&m, 10, 1000, 100));
	assert_int_equal(m.s.over_since_ns, 0);
	/* The busy ratio is still measured while disabled. */
	assert_true(m.s.busy > 0.99);
	/* Enabled again: a whole window before shedding again. */
	m.c.enabled = true;
	for (int i = 0; i < 10; i++)
		assert_false(sim_step(&m, 10, 1000, 100));
	assert_true(sim_step(&m, 10, 1000, 100));
	assert_int_equal(m.s.episodes, 2);
}

static void
test_busy_threshold_over_100_disables_busy(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	m.c.busy_pct = 101;
	for (int i = 0; i < 100; i++)
		assert_false(sim_step(&m, 10, 0, 100));
	/* The queue still counts. */
	for (int i = 0; i < 10; i++)
		assert_false(sim_step(&m, 10, 800, 100));
	assert_true(sim_step(&m, 10, 800, 100));
}

static void
test_zero_window_sheds_at_once(void **state)
{
	struct sim m;

	(void)state;
	sim_init(&m);
	m.c.window_ms = 0;
	assert_true(sim_step(&m, 10, 800, 0));
	assert_int_equal(m.s.episodes, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_queue_over_high_mark_sheds_after_window),
	    cmocka_unit_test(test_queue_just_under_high_mark_never_sheds),
	    cmocka_unit_test(test_dip_restarts_window),
	    cmocka_unit_test(test_busy_ratio_alone_sheds),
	    cmocka_unit_test(test_busy_ratio_is_per_interval),
	    cmocka_unit_test(test_asleep_worker_reads_idle),
	    cmocka_unit_test(test_hysteresis_between_marks),
	    cmocka_unit_test(test_busy_keeps_shedding_under_low_mark),
	    cmocka_unit_test(test_episodes_counted_per_start),
	    cmocka_unit_test(test_disabled_never_sheds_and_resets),
	    cmocka_unit_test(test_busy_threshold_over_100_disables_busy),
	    cmocka_unit_test(test_zero_window_sheds_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * ctl: the control thread's job queue, with a server that has no takeover socket and a signal
 * set the test never raises: every job runs exactly once, on the control thread (not the
 * submitter's), oldest first; jobs submitted from several threads all run; a job may submit
 * another; cp_ctl_stop runs what is still queued before it returns, also a job queued while
 * the last pass runs; stop without start is a
 * no-op. Signals reach the program's handlers on the control thread: SIGHUP its reload (each
 * one), the first SIGTERM its shutdown, and the takeover offer is asked for before each poll.
 * Waits are joins (cp_ctl_stop, pthread_join) or bounded spins on what the handlers recorded,
 * never sleeps. The test links no gRPC: the control thread knows no server.
 */
#include "control/ctl.h"
#include "tests/fakes/cmocka_inc.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_JOBS	  1000
#define N_THREADS 4
#define SPIN_MAX  100000000u /* bound on waiting for the control thread (sched_yield calls) */

struct rec_job {
	struct cp_ctl_job job;
	unsigned id;
	atomic_uint runs;
	pthread_t ran_on;
	unsigned order; /* position in the order of running */
};

static atomic_uint g_next_order;
static struct cp_ctl g_ctl;

static void
rec_run(struct cp_ctl_job *j)
{
	struct rec_job *r = (struct rec_job *)j;

	r->ran_on = pthread_self();
	r->order = atomic_fetch_add(&g_next_order, 1);
	atomic_fetch_add(&r->runs, 1);
}

static void
start(void)
{
	sigset_t none;

	sigemptyset(&none);
	atomic_store(&g_next_order, 0);
	/* No handlers: no takeover offer, and no signal is in the set. */
	assert_int_equal(cp_ctl_start(&g_ctl, &(struct cp_ctl_handlers){0}, &none), 0);
}

static void
stop(void)
{
	cp_ctl_stop(&g_ctl);
}

static void
test_jobs_run_once_in_order_on_the_control_thread(void **state)
{
	struct rec_job *jobs = calloc(N_JOBS, sizeof(*jobs));

	(void)state;
	assert_non_null(jobs);
	start();
	for (unsigned i = 0; i < N_JOBS; i++) {
		jobs[i].job.run = rec_run;
		jobs[i].id = i;
		cp_ctl_submit(&g_ctl, &jobs[i].job);
	}
	stop(); /* runs what is still queued, then joins */
	for (unsigned i = 0; i < N_JOBS; i++) {
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
		assert_int_equal(jobs[i].order, i); /* one submitter: oldest first */
		assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
		assert_true(pthread_equal(jobs[i].ran_on, jobs[0].ran_on));
	}
	free(jobs);
}

static void *
submitter(void *arg)
{
	struct rec_job *jobs = arg;

	for (unsigned i = 0; i < N_JOBS; i++)
		cp_ctl_submit(&g_ctl, &jobs[i].job);
	return NULL;
}

static void
test_many_submitters(void **state)
{
	struct rec_job *jobs = calloc(N_THREADS * N_JOBS, sizeof(*jobs));
	pthread_t t[N_THREADS];

	(void)state;
	assert_non_null(jobs);
	start();
	for (unsigned i = 0; i < N_THREADS * N_JOBS; i++) {
		jobs[i].job.run = rec_run;
		jobs[i].id = i;
	}
	for (unsigned k = 0; k < N_THREADS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, submitter, jobs + k * N_JOBS), 0);
	for (unsigned k = 0; k < N_THREADS; k++)
		pthread_join(t[k], NULL);
	stop();
	for (unsigned i = 0; i < N_THREADS * N_JOBS; i++)
		assert_int_equal(atomic_load(&jobs[i].runs), 1);
	/* Each submitter's own jobs ran in the order it submitted them. */
	for (unsigned k = 0; k < N_THREADS; k++)
		for (unsigned i = 1; i < N_JOBS; i++)
			assert_true(jobs[k * N_JOBS + i - 1].order < jobs[k * N_JOBS + i].order);
	assert_int_equal(atomic_load(&g_next_order), N_THREADS * N_JOBS);
	free(jobs);
}

struct chain_job {
	struct cp_ctl_job job;
	unsigned left;
	atomic_uint *ran;
};

static void
chain_run(struct cp_ctl_job *j)
{
	struct chain_job *c = (struct chain_job *)j;

	atomic_fetch_add(c->ran, 1);
	if (c->left-- > 0)
		cp_ctl_submit(&g_ctl, &c->job); /* from the control thread itself */
}

static void
test_job_submits_job(void **state)
{
	atomic_uint ran = 0;
	struct chain_job c = {.job.run = chain_run, .left = 99, .ran = &ran};
	struct rec_job last = {.job.run = rec_run};

	(void)state;
	start();
	cp_ctl_submit(&g_ctl, &c.job);
	/* The chain resubmits itself 99 times; then one more job, queued behind it. */
	for (unsigned spins = 0; atomic_load(&ran) < 100 && spins < SPIN_MAX; spins++)
		sched_yield();
	assert_int_equal(atomic_load(&ran), 100);
	cp_ctl_submit(&g_ctl, &last.job);
	stop();
	assert_int_equal(atomic_load(&ran), 100);
	assert_int_equal(atomic_load(&last.runs), 1);
}

/*
 * A job queued while the control thread is inside its last pass (it has taken the list, and
 * cp_ctl_stop is called before that pass ends) still runs before cp_ctl_stop returns. The
 * running job holds the pass open until it sees the stop flag, so the interleaving is forced,
 * not hoped for.
 */
struct hold_job {
	struct cp_ctl_job job;
	atomic_bool started;
};

static void
hold_run(struct cp_ctl_job *j)
{
	struct hold_job *h = (struct hold_job *)j;

	atomic_store(&h->started, true);
	for (unsigned spins = 0;
	     !__atomic_load_n(&g_ctl.stop, __ATOMIC_ACQUIRE) && spins < SPIN_MAX; spins++)
		sched_yield();
}

static void
test_job_queued_during_the_last_pass_runs(void **state)
{
	struct hold_job hold = {.job.run = hold_run};
	struct rec_job late = {.job.run = rec_run};

	(void)state;
	start();
	cp_ctl_submit(&g_ctl, &hold.job);
	for (unsigned spins = 0; !atomic_load(&hold.started) && spins < SPIN_MAX; spins++)
		sched_yield();
	assert_true(atomic_load(&hold.started));
	cp_ctl_submit(&g_ctl, &late.job); /* the pass running hold has already taken the list */
	stop();
	assert_true(__atomic_load_n(&g_ctl.stop, __ATOMIC_ACQUIRE));
	assert_int_equal(atomic_load(&late.runs), 1);
}

static void
test_stop_without_start(void **state)
{
	struct cp_ctl ctl;

	(void)state;
	memset(&ctl, 0, sizeof(ctl));
	cp_ctl_stop(&ctl); /* not started: nothing to join, no descriptor closed */
	assert_false(ctl.started);
}

/* ---- Signals and handlers ---- */

static struct {
	atomic_uint reloads, shutdowns, offers;
	atomic_int last_sig;
	pthread_t on;
} g_h;

static void
h_reload(void *arg)
{
	assert_ptr_equal(arg, &g_h);
	g_h.on = pthread_self();
	atomic_fetch_add(&g_h.reloads, 1);
}

static void
h_shutdown(void *arg, int sig)
{
	assert_ptr_equal(arg, &g_h);
	atomic_store(&g_h.last_sig, sig);
	atomic_fetch_add(&g_h.shutdowns, 1);
}

static struct cp_takeover_offer *
h_offer(void *arg)
{
	assert_ptr_equal(arg, &g_h);
	atomic_fetch_add(&g_h.offers, 1);
	return NULL;
}

static void
wait_count(atomic_uint *c, unsigned want)
{
	for (unsigned spins = 0; atomic_load(c) < want && spins < SPIN_MAX; spins++)
		sched_yield();
	assert_int_equal(atomic_load(c), want);
}

static void
test_signals_reach_the_handlers_on_the_control_thread(void **state)
{
	struct cp_ctl_handlers h = {
	    .reload = h_reload, .shutdown = h_shutdown, .offer = h_offer, .arg = &g_h};
	struct rec_job after = {.job.run = rec_run};
	sigset_t sigs;

	(void)state;
	/* Blocked here before the thread starts (it inherits the mask), as main.c does: the
	 * signals sent to the process stay pending for the control thread's signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &sigs, NULL), 0);
	assert_int_equal(cp_ctl_start(&g_ctl, &h, &sigs), 0);
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	wait_count(&g_h.reloads, 1);
	assert_true(pthread_equal(g_h.on, g_ctl.thread));
	/* One at a time: two pending SIGHUPs would be one. */
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	wait_count(&g_h.reloads, 2);
	assert_int_equal(atomic_load(&g_h.shutdowns), 0);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	wait_count(&g_h.shutdowns, 1);
	assert_int_equal(atomic_load(&g_h.last_sig), SIGTERM);
	/* The thread keeps serving jobs while the program drains. */
	cp_ctl_submit(&g_ctl, &after.job);
	cp_ctl_stop(&g_ctl);
	assert_int_equal(atomic_load(&after.runs), 1);
	assert_int_equal(atomic_load(&g_h.reloads), 2);
	assert_true(atomic_load(&g_h.offers) >= 3); /* before each poll: one per event at least */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_run_once_in_order_on_the_control_thread),
	    cmocka_unit_test(test_many_submitters),
	    cmocka_unit_test(test_job_submits_job),
	    cmocka_unit_test(test_job_queued_during_the_last_pass_runs),
	    cmocka_unit_test(test_stop_without_start),
	    cmocka_unit_test(test_signals_reach_the_handlers_on_the_control_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

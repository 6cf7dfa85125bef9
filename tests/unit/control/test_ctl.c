/*
 * ctl: the control thread's job queue, with a server that has no takeover socket and a signal
 * set the test never raises: every job runs exactly once, on the control thread (not the
 * submitter's), oldest first; jobs submitted from several threads all run; a job may submit
 * another; cp_ctl_stop runs what is still queued before it returns, also a job queued while
 * the last pass runs; stop without start is a
 * no-op. Waits are joins (cp_ctl_stop, pthread_join), never sleeps.
 */
#include "control/ctl.h"
#include "control/grpc_server.h"
#include "tests/fakes/cmocka_inc.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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
static struct cp_server *g_srv;

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
	g_srv = calloc(1, sizeof(*g_srv)); /* no takeover offer: srv->takeover is NULL */
	assert_non_null(g_srv);
	assert_int_equal(cp_ctl_start(&g_ctl, g_srv, &none), 0);
}

static void
stop(void)
{
	cp_ctl_stop(&g_ctl);
	free(g_srv);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jobs_run_once_in_order_on_the_control_thread),
	    cmocka_unit_test(test_many_submitters),
	    cmocka_unit_test(test_job_submits_job),
	    cmocka_unit_test(test_job_queued_during_the_last_pass_runs),
	    cmocka_unit_test(test_stop_without_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The reactor loop (see reactor.h): a thin loop around dp_reactor_poll_once() plus the idle
 * policy, so tests drive one iteration at a time on their own thread.
 */
#include "dataplane/reactor.h"

#include "dataplane/registry.h"
#include "dataplane/stat.h"

#include <errno.h>
#include <pthread.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

/* Single-writer counter update (only the reactor's lcore writes its statistics). */

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
dp_reactor_add(struct dp_reactor *r, const struct dp_poller *p)
{
	if (r->n == DP_REACTOR_POLLERS_MAX)
		return -ENOSPC;
	r->p[r->n++] = *p;
	return 0;
}

unsigned
dp_reactor_poll_once(struct dp_reactor *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->n; i++)
		n += r->p[i].poll(r->p[i].arg);
	/* Every pointer a poller read on the RCU read side in this iteration is dead now. */
	dp_rcu_quiescent_state();
	return n;
}

uint64_t
dp_reactor_idle_limit(struct dp_reactor *r)
{
	uint64_t limit = DP_SLEEP_FOREVER;

	if (r->wait_prepare != NULL)
		r->wait_prepare(r->wait_arg);
	for (unsigned i = 0; i < r->n && limit != 0; i++) {
		if (r->p[i].idle != NULL) {
			uint64_t l = r->p[i].idle(r->p[i].arg);

			if (l < limit)
				limit = l;
		}
	}
	return limit;
}

/* Sleep in the lcore's blocking point for the shortest limit any poller allows. @return false
 * when a poller allows no sleep now (or the loop is stopping): the caller polls on. */
static bool
sleep_once(struct dp_reactor *r)
{
	uint64_t limit = dp_reactor_idle_limit(r);

	if (limit == 0 || atomic_load_explicit(r->stop, memory_order_relaxed))
		return false;
	/* Offline while asleep, so grace periods (pipeline replaces) need not wait for us. */
	dp_rcu_thread_offline();
	(void)r->wait(r->wait_arg, limit); /* the next pass runs either way */
	urcu_qsbr_thread_online();
	if (r->stats != NULL)
		dp_stat_add(&r->stats->sleeps, 1);
	return true;
}

/* Between two passes that found nothing, @p idle cycles after the last work: pause, or give
 * the CPU to whatever else wants it once that has lasted yield_cycles (reactor.h). */
static inline void
relax(uint64_t idle, uint64_t yield_cycles)
{
	if (idle >= yield_cycles)
		sched_yield();
	else
		rte_pause();
}

int
dp_reactor_run(void *arg)
{
	struct dp_reactor *r = arg;
	uint64_t spin_cycles = rte_get_tsc_hz() / 1000000 * r->spin_us;
	uint64_t yield_cycles = r->yield_us == UINT32_MAX || r->idle == DP_IDLE_SPIN
				    ? UINT64_MAX
				    : rte_get_tsc_hz() / 1000000 * r->yield_us;
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
	start = last_work = rte_rdtsc();

	/* Relaxed: stop only needs to be seen eventually; rings and batches order the data. */
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		t0 = rte_rdtsc();
		n = dp_reactor_poll_once(r);
		t1 = rte_rdtsc();
		if (r->stats != NULL) {
			__atomic_store_n(&r->stats->total_cycles, t1 - start, __ATOMIC_RELAXED);
			if (n != 0)
				dp_stat_add(&r->stats->busy_cycles, t1 - t0);
		}
		if (n != 0) {
			last_work = t1;
			continue;
		}
		switch (r->idle) {
		case DP_IDLE_SPIN:
			rte_pause();
			break;
		case DP_IDLE_ADAPTIVE:
			if (t1 - last_work < spin_cycles) {
				relax(t1 - last_work, yield_cycles);
				break;
			}
			/* fall through */
		case DP_IDLE_SLEEP:
			/* Work done inside the wait (a front end's event) is not timed as busy:
			 * the wait's own blocking would be counted with it. After a wake-up more
			 * work usually follows, so the spin starts again either way. */
			if (sleep_once(r))
				last_work = rte_rdtsc();
			else
				relax(t1 - last_work, yield_cycles);
			break;
		}
	}
	if (r->on_exit != NULL)
		r->on_exit(r->on_exit_arg);
	dp_rcu_thread_offline();
	urcu_qsbr_unregister_thread();
	return 0;
}

/*
 * The responder thread (see responder.h for the design and docs/ARCHITECTURE.md for the
 * measured alternatives).
 */
#include "control/responder.h"

#include "control/log.h"
#include "control/rpc.h"

#include <errno.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <sched.h>

#define RESPONDER_BURST 64
/* Longest sleep before looking again: only a safety net, wake-ups are explicit. */
#define RESPONDER_SLEEP_NS (100ull * 1000000ull)

static unsigned
answer_burst(struct cp_responder *r)
{
	struct dp_req *reqs[RESPONDER_BURST];
	unsigned n = dp_dataplane_poll(r->dp, reqs, RESPONDER_BURST);

	for (unsigned i = 0; i < n; i++)
		/* A stream frame points at a slot it does not own (a stateful unary request
		 * owns its slot); each completion frees the descriptor. */
		if (reqs[i]->stream != NULL && !reqs[i]->owns_stream)
			cp_stream_complete(r->srv, reqs[i]);
		else
			cp_execute_complete(r->srv, reqs[i]);
	__atomic_store_n(&r->answered, r->answered + n, __ATOMIC_RELAXED);
	return n;
}

static void *
responder_main(void *arg)
{
	struct cp_responder *r = arg;
	uint64_t spin_cycles = rte_get_tsc_hz() / 1000000 * r->spin_us;
	uint64_t last = rte_rdtsc();

	pthread_setname_np(pthread_self(), "cp-responder");
	for (;;) {
		uint32_t seen;

		if (answer_burst(r) != 0) {
			last = rte_rdtsc();
			continue;
		}
		if (rte_rdtsc() - last < spin_cycles) {
			/* Yield, not pause: this thread shares the main lcore's CPU with the
			 * completion-queue thread, which must keep running while we poll. */
			sched_yield();
			continue;
		}
		/* Read the count, then re-check the rings: a completion after the check moves
		 * the count past `seen` (acquire here pairs with the bump's release in
		 * dp_worker_poll_once), so the wait below returns at once. */
		seen = dp_wake_value(&r->dp->done_wake);
		if (answer_burst(r) != 0) {
			last = rte_rdtsc();
			continue;
		}
		if (atomic_load_explicit(&r->stop, memory_order_acquire))
			break;
		dp_dataplane_wait(r->dp, seen, RESPONDER_SLEEP_NS);
		__atomic_store_n(&r->sleeps, r->sleeps + 1, __ATOMIC_RELAXED);
		last = rte_rdtsc();
	}
	return NULL;
}

int
cp_responder_start(struct cp_responder *r, struct cp_server *srv, struct dp_dataplane *dp,
		   uint32_t spin_us)
{
	int rc;

	r->srv = srv;
	r->dp = dp;
	r->spin_us = spin_us;
	r->answered = 0;
	r->sleeps = 0;
	atomic_init(&r->stop, false);
	rc = pthread_create(&r->thread, NULL, responder_main, r);
	if (rc != 0)
		return -rc;
	r->started = 1;
	return 0;
}

void
cp_responder_stop(struct cp_responder *r)
{
	if (!r->started)
		return;
	/* Release: pairs with the acquire load in responder_main(). */
	atomic_store_explicit(&r->stop, true, memory_order_release);
	dp_wake_bump(&r->dp->done_wake);
	pthread_join(r->thread, NULL);
	r->started = 0;
}

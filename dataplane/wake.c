/*
 * Futex-backed operations for Concurrency Kit's event counts (ck_ec), used wherever a thread
 * sleeps until another produces work: a worker-only lcore on its links' `in` rings.
 *
 * ck_ec keeps a "waiters" flag in the counter word, so ck_ec_inc() issues the wake-up system
 * call only when the other side has declared that it sleeps; a busy consumer costs the
 * producer one store (single producer) or one locked add (multi producer) per burst.
 */
#include "dataplane/lcore.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int
ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return clock_gettime(CLOCK_MONOTONIC, out);
}

static void
ec_wait32(const struct ck_ec_wait_state *st, const uint32_t *addr, uint32_t expected,
	  const struct timespec *deadline)
{
	struct timespec rel, *relp = NULL;

	if (deadline != NULL) {
		struct timespec now;
		int64_t ns;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ns = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000 +
		     (deadline->tv_nsec - now.tv_nsec);
		if (ns <= 0)
			return;
		rel.tv_sec = ns / 1000000000;
		rel.tv_nsec = ns % 1000000000;
		relp = &rel;
	}
	(void)st;
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, relp, NULL, 0);
}

static void
ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
	(void)ops;
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static const struct ck_ec_ops g_ec_ops = {
    .gettime = ec_gettime,
    .wait32 = ec_wait32,
    .wake32 = ec_wake32,
    /* The caller already spun according to its idle policy: go to the futex promptly. */
    .busy_loop_iter = 1,
    /* Exponential back-off of futex timeouts is only a safety net; wake-ups are explicit. */
    .initial_wait_ns = 1000000,
};

void
dp_wake_init(struct dp_wake *w, bool single_producer)
{
	ck_ec32_init(&w->ec, 0);
	w->mode.ops = &g_ec_ops;
	w->mode.single_producer = single_producer;
}

void
dp_wake_wait(struct dp_wake *w, uint32_t seen, uint64_t timeout_ns)
{
	struct timespec rel = {
	    .tv_sec = (time_t)(timeout_ns / 1000000000u),
	    .tv_nsec = (long)(timeout_ns % 1000000000u),
	};
	struct timespec deadline;

	if (ck_ec_deadline(&deadline, &w->mode, &rel) != 0)
		return;
	ck_ec32_wait(&w->ec, &w->mode, seen, &deadline);
}

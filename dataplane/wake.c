/*
 * Futex-backed operations for Concurrency Kit's event counts (ck_ec), and the wake clock (see
 * wake.h).
 */
#include "dataplane/wake.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int
monotonic_now(struct timespec *now)
{
	return clock_gettime(CLOCK_MONOTONIC, now);
}

/* Read only on the way to sleep (ck_ec's slow path), never by a bump. */
static dp_wake_clock_fn g_clock = monotonic_now;

void
dp_wake_set_clock(dp_wake_clock_fn now)
{
	g_clock = now != NULL ? now : monotonic_now;
}

static int
ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return g_clock(out);
}

static void
ec_wait32(const struct ck_ec_wait_state *st, const uint32_t *addr, uint32_t expected,
	  const struct timespec *deadline)
{
	struct timespec rel, *relp = NULL;

	if (deadline != NULL) {
		struct timespec now;
		int64_t ns;

		(void)g_clock(&now);
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

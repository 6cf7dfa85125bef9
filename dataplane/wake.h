/**
 * @file
 * Wake-ups: an event count (Concurrency Kit's ck_ec over a futex) on which one thread sleeps
 * until another produces work for it; a worker-only lcore sleeps on its links' `in` rings.
 *
 * ck_ec keeps a "waiters" flag in the counter word, so dp_wake_bump() issues the wake-up system
 * call only when the other side has declared that it sleeps; a busy consumer costs the
 * producer one store (single producer) or one locked add (multi producer) per burst.
 *
 * Every deadline is measured on one clock, CLOCK_MONOTONIC, read through dp_wake_set_clock()'s
 * seam so that a test can run waits on a clock it sets (tests/unit/dataplane/test_wake.c); the
 * clock is read only on the way to sleep, never by dp_wake_bump() or dp_wake_value().
 *
 * Context: one waiter per struct dp_wake, any number of wakers (one with single_producer).
 * Ownership: embedded by its owner (struct dp_lcore); nothing to free.
 */
#ifndef COREPIPE_DP_WAKE_H
#define COREPIPE_DP_WAKE_H

#include <ck_ec.h>
#include <rte_common.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/** Event count with its futex ops; shared by a waiter and its wakers. */
struct dp_wake {
	struct ck_ec32 ec;
	struct ck_ec_mode mode;
} __rte_cache_aligned;

/** Initialise @p w; @p single_producer when exactly one thread ever bumps it. */
void dp_wake_init(struct dp_wake *w, bool single_producer);

/**
 * Wake whoever sleeps on @p w (no system call when nobody does).
 * Context: any thread; with single_producer, only the one producer.
 */
static inline void
dp_wake_bump(struct dp_wake *w)
{
	ck_ec32_inc(&w->ec, &w->mode);
}

/** Current value, to be passed to dp_wake_wait() after re-checking for work. */
static inline uint32_t
dp_wake_value(struct dp_wake *w)
{
	return ck_ec32_value(&w->ec);
}

/**
 * Sleep until @p w moves past @p seen or @p timeout_ns passes on the wake clock. The futex
 * sleeps in slices (ck_ec's back-off), each ending by the clock, so the wait ends at the first
 * reading at or past the deadline.
 * Context: the one waiter of @p w. Blocks: not for the hot path.
 */
void dp_wake_wait(struct dp_wake *w, uint32_t seen, uint64_t timeout_ns);

/** A clock for deadlines: 0 and the time in @p now, or -1. */
typedef int (*dp_wake_clock_fn)(struct timespec *now);

/**
 * Measure every later wait's deadline on @p now (NULL: CLOCK_MONOTONIC again). A test seam:
 * corepiped never calls it.
 * Context: while no thread waits on any struct dp_wake (the pointer is read unsynchronised).
 */
void dp_wake_set_clock(dp_wake_clock_fn now);

#endif

/**
 * @file
 * Reactors: one polling loop per lcore over the pollers registered on it (SPDK's reactors and
 * pollers; Seastar's shard per core).
 *
 * Every lcore runs exactly one reactor. A poller does one bounded pass of its work and reports
 * how much it did; when asked, it also says how long its lcore may sleep before it must run
 * again (0: not at all, for example because work is already waiting). One iteration runs every
 * poller once, then reports an RCU quiescent state: a pointer a poller read on the RCU read side
 * is dead at the end of the iteration.
 *
 * When an iteration did no work the reactor applies its idle policy: `spin` polls on; `adaptive`
 * polls on for spin_us after the last work, then sleeps; `sleep` sleeps at once. While it polls
 * on without work (a poller may also forbid sleeping: a front end waiting for an answer), it
 * pauses between passes for the first yield_us and then yields its CPU (sched_yield) between
 * passes: a thread that shares the CPU (a client, the kernel's network work) runs at once
 * instead of at the end of the poller's time slice, and on a CPU of its own the yield costs
 * only its system call. `spin` never yields (isolated cores). To sleep it
 * asks every poller for its limit (after wait_prepare(), so that work handed over after the
 * question is not missed: see dp_wake in worker.h) and calls the lcore's one blocking point,
 * wait(), for the shortest limit. On a worker lcore that is its event count, which producers
 * bump; on a front-end lcore it is the gRPC completion queue, which the network wakes. The lcore
 * is RCU-offline while it sleeps, so it never holds up a grace period.
 *
 * Context: dp_reactor_run() and dp_reactor_poll_once() on the reactor's lcore (a registered
 * urcu-qsbr reader while running); dp_reactor_add() before the reactor runs.
 * Ownership: a reactor borrows its pollers' arguments and its statistics block.
 */
#ifndef COREPIPE_DP_REACTOR_H
#define COREPIPE_DP_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/** Pollers one reactor can hold. */
#define DP_REACTOR_POLLERS_MAX 8

/** An idle limit meaning "as long as you like". */
#define DP_SLEEP_FOREVER UINT64_MAX

enum dp_idle_policy {
	DP_IDLE_ADAPTIVE = 0,
	DP_IDLE_SPIN = 1,
	DP_IDLE_SLEEP = 2,
};

/** Parse "spin" / "adaptive" / "sleep". @return 0 or -EINVAL. */
int dp_idle_policy_parse(const char *s, enum dp_idle_policy *out);
const char *dp_idle_policy_name(enum dp_idle_policy p);

struct dp_poller {
	const char *name; /**< "frontend", "worker", "udp", "control" */
	/** One bounded pass. @return work done (0: none). */
	unsigned (*poll)(void *arg);
	/**
	 * Longest this lcore may sleep now, in ns: 0 when work is waiting (the re-check after
	 * wait_prepare), DP_SLEEP_FOREVER when only a wake-up can bring work. NULL: forever.
	 */
	uint64_t (*idle)(void *arg);
	void *arg;
};

/** Busy and total TSC cycles of a reactor; written by its lcore only (relaxed stores). */
struct dp_reactor_stats {
	uint64_t busy_cycles;  /**< cycles of iterations that did work */
	uint64_t total_cycles; /**< cycles since the loop started */
	uint64_t sleeps;       /**< calls of wait() */
};

struct dp_reactor {
	unsigned n;
	struct dp_poller p[DP_REACTOR_POLLERS_MAX];
	/**
	 * The lcore's blocking point: sleep up to @p timeout_ns or until woken. Called
	 * RCU-offline. @return work done while blocked (a front end handles the completion-queue
	 * event that woke it).
	 */
	unsigned (*wait)(void *arg, uint64_t timeout_ns);
	/** Read the wake-up count before the pollers' idle re-check (NULL: nothing to read). */
	void (*wait_prepare)(void *arg);
	void *wait_arg;
	enum dp_idle_policy idle;
	uint32_t spin_us;  /**< adaptive: keep polling this long after the last work */
	uint32_t yield_us; /**< polling on without work this long: yield between passes */
	struct dp_reactor_stats *stats; /**< written by the reactor (may be NULL) */
	const atomic_bool *stop;	/**< the loop ends when it reads true */
	void (*on_exit)(void *arg);	/**< after the loop, before unregistering (drains) */
	void *on_exit_arg;
};

/** Add a poller. @return 0, or -ENOSPC when the reactor is full. Context: before it runs. */
int dp_reactor_add(struct dp_reactor *r, const struct dp_poller *p);

/**
 * One iteration: every poller once, then an RCU quiescent state.
 * @return work done. Context: the reactor's thread, an online urcu-qsbr reader.
 */
unsigned dp_reactor_poll_once(struct dp_reactor *r);

/**
 * The loop (an EAL lcore_function_t): registers with urcu-qsbr, iterates and idles until *stop,
 * runs on_exit, unregisters. @p arg is the struct dp_reactor. @return 0.
 */
int dp_reactor_run(void *arg);

/**
 * Shortest idle limit of the pollers, after wait_prepare (exposed for tests).
 * Context: the reactor's thread.
 */
uint64_t dp_reactor_idle_limit(struct dp_reactor *r);

#endif

/**
 * @file
 * Load shedding: whether a worker refuses new unary work early, decided by the worker itself.
 *
 * A worker is overloaded when its queue (requests handed to it and not yet collected) is at or
 * above the high-water mark (a percentage of its ring) or its busy ratio (busy TSC cycles over
 * total cycles of its reactor, over the last evaluation interval; the caller leaves out its bulk
 * lane's quanta, which only take the time small work leaves) is at or above the busy
 * threshold. Overloaded continuously for the window, it starts shedding: front ends send new
 * requests to other workers, and when every candidate sheds they answer RESOURCE_EXHAUSTED with
 * a retry pushback at once instead of queueing. It stops once its queue is at or below the
 * low-water mark and it is no longer over the busy threshold (hysteresis). Streams are never
 * shed.
 *
 * This module is pure logic (time and counters passed in); each worker evaluates its own state
 * every 10 ms (worker.c) and publishes it in its lcore's `shedding` flag, which front ends and
 * the UDP path read and the control poller logs when it changes.
 *
 * Context: the owning worker's lcore. Ownership: embedded in struct dp_worker.
 */
#ifndef COREPIPE_DP_SHED_H
#define COREPIPE_DP_SHED_H

#include <stdbool.h>
#include <stdint.h>

/** Evaluation interval. */
#define DP_SHED_INTERVAL_NS 10000000ull

struct dp_shed_conf {
	bool enabled;	    /**< false: never shed */
	uint32_t high_pct;  /**< queue high-water mark, % of the ring (default 80) */
	uint32_t low_pct;   /**< queue low-water mark, % of the ring (default 20) */
	uint32_t busy_pct;  /**< busy-ratio threshold, % (default 90; 101 disables it) */
	uint32_t window_ms; /**< how long overload must last before shedding (default 5000) */
};

/** Built-in defaults: enabled, 80 / 20 / 90 %, 5000 ms. */
void dp_shed_conf_default(struct dp_shed_conf *c);

struct dp_shed {
	bool active;
	uint64_t over_since_ns; /**< 0: not overloaded at the last evaluation */
	uint64_t last_busy, last_total;
	double busy;	   /**< busy ratio over the last interval */
	uint64_t episodes; /**< times shedding started (read by others: relaxed) */
};

/**
 * One evaluation at @p now_ns with the worker's queue @p depth out of @p ring and its reactor's
 * cumulative @p busy_cycles / @p total_cycles. @return the new state (also in s->active).
 */
bool dp_shed_eval(struct dp_shed *s, const struct dp_shed_conf *c, uint64_t now_ns, uint64_t depth,
		  uint64_t ring, uint64_t busy_cycles, uint64_t total_cycles);

#endif

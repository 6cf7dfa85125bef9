/**
 * @file
 * Load shedding: decides, per worker, whether new unary work is refused early.
 *
 * A worker is overloaded when its queue (requests in flight) is at or above the high-water mark
 * (a percentage of its ring) or its busy ratio (busy TSC cycles over total cycles, measured by
 * the worker itself, here over the last evaluation interval) is at or above the busy threshold.
 * Overloaded continuously for the window, it starts shedding: new requests go to the other
 * workers, and when every worker sheds they are answered RESOURCE_EXHAUSTED with a retry
 * pushback at once instead of queueing. It stops shedding once its queue is at or below the
 * low-water mark and it is no longer over the busy threshold (hysteresis). Streams, when they
 * exist, are never shed.
 *
 * Context: the CQ thread only (the state is plain fields). Ownership: embedded in cp_server.
 */
#ifndef COREPIPE_CP_SHED_H
#define COREPIPE_CP_SHED_H

#include "dataplane/dataplane.h"

#include <stdbool.h>
#include <stdint.h>

struct cp_shed_conf {
	uint32_t high_pct;  /**< queue high-water mark, % of the ring (default 80) */
	uint32_t low_pct;   /**< queue low-water mark, % of the ring (default 20) */
	uint32_t busy_pct;  /**< busy-ratio threshold, % (default 90) */
	uint32_t window_ms; /**< how long overload must last before shedding (default 5000) */
	bool disabled;	    /**< limits.shed_enabled: false: never shed (busy still measured) */
};

struct cp_shed_worker {
	bool active;
	uint64_t over_since_ns; /**< 0: not overloaded at the last evaluation */
	uint64_t last_busy, last_total;
	double busy;	   /**< busy ratio over the last interval */
	uint64_t episodes; /**< times shedding started */
};

struct cp_shed {
	struct cp_shed_conf conf;
	struct cp_shed_worker w[DP_WORKERS_MAX];
	uint64_t last_eval_ns;
	uint64_t allowed; /**< bit i set: worker i takes new unary work */
};

/** Initialise (no worker shedding). */
void cp_shed_init(struct cp_shed *s, const struct cp_shed_conf *conf);

/**
 * Re-evaluate every worker if at least 10 ms passed since the last evaluation (or @p force),
 * logging transitions. @return the mask of workers that take new work (0: all shed).
 */
uint64_t cp_shed_update(struct cp_shed *s, const struct dp_dataplane *dp, uint64_t now_ns,
			bool force);

#endif

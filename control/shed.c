/*
 * Load-shedding state machine (see shed.h). Runs on the CQ thread when it admits a request and
 * on every turn of its loop, at most every 10 ms, so its cost does not grow with the request
 * rate and the UDP front end (which has no CQ-thread step) is covered too.
 */
#include "control/shed.h"

#include "control/log.h"

#include <string.h>

#define EVAL_INTERVAL_NS 10000000ull

void
cp_shed_init(struct cp_shed *s, const struct cp_shed_conf *conf)
{
	memset(s, 0, sizeof(*s));
	s->conf = *conf;
	s->allowed = UINT64_MAX;
}

uint64_t
cp_shed_update(struct cp_shed *s, const struct dp_dataplane *dp, uint64_t now_ns, bool force)
{
	uint64_t allowed = 0;

	if (!force && now_ns - s->last_eval_ns < EVAL_INTERVAL_NS)
		return s->allowed;
	s->last_eval_ns = now_ns;
	for (unsigned i = 0; i < dp->n_workers; i++) {
		const struct dp_worker *w = dp->workers[i];
		struct cp_shed_worker *sw = &s->w[i];
		struct dp_worker_stats st;
		uint64_t depth = dp_worker_in_flight(w), ring = w->conf.ring_size;
		bool over, calm;

		dp_worker_stats_read(w, &st);
		if (st.total_cycles > sw->last_total)
			sw->busy = (double)(st.busy_cycles - sw->last_busy) /
				   (double)(st.total_cycles - sw->last_total);
		else if (depth == 0)
			sw->busy = 0; /* asleep: its loop has not advanced */
		sw->last_busy = st.busy_cycles;
		sw->last_total = st.total_cycles;

		over = depth * 100 >= (uint64_t)s->conf.high_pct * ring ||
		       sw->busy * 100 >= s->conf.busy_pct;
		calm = depth * 100 <= (uint64_t)s->conf.low_pct * ring &&
		       sw->busy * 100 < s->conf.busy_pct;
		if (s->conf.disabled) {
			over = false;
			calm = true; /* switched off live: a shedding worker stops */
		}
		if (!sw->active) {
			if (!over) {
				sw->over_since_ns = 0;
			} else if (sw->over_since_ns == 0) {
				sw->over_since_ns = now_ns;
			}
			if (over &&
			    now_ns - sw->over_since_ns >= (uint64_t)s->conf.window_ms * 1000000u) {
				__atomic_store_n(&sw->active, true, __ATOMIC_RELAXED);
				sw->episodes++;
				cp_log(CP_LOG_WARN, "load shedding on", CP_LF_INT("worker", i),
				       CP_LF_U64("queue_depth", depth),
				       CP_LF_U64("ring_size", ring),
				       CP_LF_DBL("busy_ratio", sw->busy));
			}
		} else if (calm) {
			__atomic_store_n(&sw->active, false, __ATOMIC_RELAXED);
			sw->over_since_ns = 0;
			cp_log(CP_LOG_INFO, "load shedding off", CP_LF_INT("worker", i),
			       CP_LF_U64("queue_depth", depth), CP_LF_DBL("busy_ratio", sw->busy));
		}
		if (!sw->active)
			allowed |= 1ull << i;
		/* The UDP front end refuses work on a shedding worker by itself (udp.c). */
		atomic_store_explicit(&dp->workers[i]->shedding, sw->active, memory_order_relaxed);
	}
	s->allowed = allowed;
	return allowed;
}

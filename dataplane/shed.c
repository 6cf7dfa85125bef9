/*
 * Load-shedding state machine (see shed.h).
 */
#include "dataplane/shed.h"

#include <string.h>

void
dp_shed_conf_default(struct dp_shed_conf *c)
{
	c->enabled = true;
	c->high_pct = 80;
	c->low_pct = 20;
	c->busy_pct = 90;
	c->window_ms = 5000;
}

bool
dp_shed_eval(struct dp_shed *s, const struct dp_shed_conf *c, uint64_t now_ns, uint64_t depth,
	     uint64_t ring, uint64_t busy_cycles, uint64_t total_cycles)
{
	bool over, calm;

	if (total_cycles > s->last_total)
		s->busy =
		    (double)(busy_cycles - s->last_busy) / (double)(total_cycles - s->last_total);
	else if (depth == 0)
		s->busy = 0; /* asleep: its loop has not advanced */
	s->last_busy = busy_cycles;
	s->last_total = total_cycles;
	if (!c->enabled) {
		s->active = false;
		s->over_since_ns = 0;
		return false;
	}
	over = depth * 100 >= (uint64_t)c->high_pct * ring || s->busy * 100 >= c->busy_pct;
	calm = depth * 100 <= (uint64_t)c->low_pct * ring && s->busy * 100 < c->busy_pct;
	if (!s->active) {
		if (!over)
			s->over_since_ns = 0;
		else if (s->over_since_ns == 0)
			s->over_since_ns = now_ns;
		if (over && now_ns - s->over_since_ns >= (uint64_t)c->window_ms * 1000000u) {
			s->active = true;
			__atomic_store_n(&s->episodes, s->episodes + 1, __ATOMIC_RELAXED);
		}
	} else if (calm) {
		s->active = false;
		s->over_since_ns = 0;
	}
	return s->active;
}

/*
 * Per-pipeline request metrics (see metrics.h).
 */
#include "dataplane/metrics.h"

#include <rte_malloc.h>

const double dp_met_bounds_s[DP_MET_BOUNDS] = {
    1e-6, 2.5e-6, 5e-6,	  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
    5e-3, 1e-2,	  2.5e-2, 5e-2, 0.1,	0.25, 0.5,  1.0,    2.5,  5.0,	10.0,
};

struct dp_metrics *
dp_metrics_create(uint64_t tsc_hz, int socket)
{
	struct dp_metrics *m =
	    rte_zmalloc_socket("dp_metrics", sizeof(*m), RTE_CACHE_LINE_SIZE, socket);

	if (m == NULL)
		return NULL;
	m->tsc_hz = tsc_hz;
	for (unsigned i = 0; i < DP_MET_BOUNDS; i++)
		m->bound_cycles[i] = (uint64_t)(dp_met_bounds_s[i] * (double)tsc_hz);
	return m;
}

void
dp_metrics_free(struct dp_metrics *m)
{
	rte_free(m);
}

void
dp_metrics_read_row(const struct dp_metrics *m, uint32_t id, struct dp_met_row *out)
{
	const struct dp_met_row *r = &m->row[id];

	for (unsigned k = 0; k < DP_STATUS_MAX; k++)
		out->by_code[k] += __atomic_load_n(&r->by_code[k], __ATOMIC_RELAXED);
	for (unsigned b = 0; b <= DP_MET_BOUNDS; b++) {
		uint64_t v = __atomic_load_n(&r->bucket[b], __ATOMIC_RELAXED);

		out->bucket[b] += v;
		out->count += v;
	}
	out->sum_cycles += __atomic_load_n(&r->sum_cycles, __ATOMIC_RELAXED);
	out->bytes_in += __atomic_load_n(&r->bytes_in, __ATOMIC_RELAXED);
	out->bytes_out += __atomic_load_n(&r->bytes_out, __ATOMIC_RELAXED);
}

/**
 * @file
 * Per-pipeline request metrics: completions by status code, bytes in and out, and a latency
 * histogram, in blocks
 * written by exactly one thread each (a worker for data-plane time, the responder for server
 * time) and merged by whoever scrapes them.
 *
 * A block holds one row per pipeline id (0 = inline pipelines, 1..DP_REGISTRY_MAX registered
 * ones), about 1.3 MiB, allocated once. The writer updates its own row with relaxed loads and
 * stores (never a read-modify-write and never a lock: nobody else writes the block), so a
 * request costs a few stores to memory the writer already owns; readers load relaxed and may
 * see a row mid-update (a bucket one ahead of the count), which a scrape tolerates.
 *
 * Buckets are in TSC cycles, converted from fixed bounds in seconds (1 us .. 10 s, 1-2.5-5
 * steps) when the block is made: 10 s is above the default call deadline's order of magnitude,
 * so a slow pipeline shows up in a bucket rather than only in +Inf.
 *
 * Context: dp_metrics_record by the block's single writer (hot path); reads from any thread.
 * Ownership: the creator frees with dp_metrics_free().
 */
#ifndef COREPIPE_DP_METRICS_H
#define COREPIPE_DP_METRICS_H

#include "dataplane/registry.h"
#include "dataplane/status.h"

#include <rte_common.h>
#include <stdint.h>

/** Finite histogram bounds (the +Inf bucket is one more). */
#define DP_MET_BOUNDS 22

/** Upper bounds of the buckets, in seconds. */
extern const double dp_met_bounds_s[DP_MET_BOUNDS];

struct dp_met_row {
	uint64_t by_code[DP_STATUS_MAX];
	uint64_t bucket[DP_MET_BOUNDS + 1]; /**< non-cumulative counts; last is +Inf */
	uint64_t sum_cycles;
	uint64_t bytes_in;  /**< input bytes of the requests the pipeline ran */
	uint64_t bytes_out; /**< output bytes of those that succeeded */
	uint64_t count;	    /**< observations: not stored by writers, summed from buckets on read */
};

struct dp_metrics {
	uint64_t bound_cycles[DP_MET_BOUNDS];
	uint64_t tsc_hz;
	struct dp_met_row row[DP_REGISTRY_MAX + 1];
};

/** Allocate a zeroed block for a clock of @p tsc_hz on NUMA @p socket. NULL: no memory. */
struct dp_metrics *dp_metrics_create(uint64_t tsc_hz, int socket);

/** Free a block. Accepts NULL. */
void dp_metrics_free(struct dp_metrics *m);

/* Hot path: per request, the block's writer. No locks, atomics RMW, syscalls or allocation. */

#define DP_MET_ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

/** Count one completion of pipeline @p id with @p status. */
static inline void
dp_metrics_count(struct dp_metrics *m, uint32_t id, unsigned status)
{
	struct dp_met_row *r = &m->row[id <= DP_REGISTRY_MAX ? id : 0];

	DP_MET_ADD(r->by_code[status < DP_STATUS_MAX ? status : DP_UNKNOWN], 1);
}

/** Add one observation of @p cycles to pipeline @p id's histogram. */
static inline void
dp_metrics_observe(struct dp_metrics *m, uint32_t id, uint64_t cycles)
{
	struct dp_met_row *r = &m->row[id <= DP_REGISTRY_MAX ? id : 0];
	unsigned b = 0;

	while (b < DP_MET_BOUNDS && cycles > m->bound_cycles[b])
		b++;
	DP_MET_ADD(r->bucket[b], 1);
	DP_MET_ADD(r->sum_cycles, cycles);
}

/** Count the bytes of one run of pipeline @p id: @p in taken, @p out produced. */
static inline void
dp_metrics_bytes(struct dp_metrics *m, uint32_t id, uint64_t in, uint64_t out)
{
	struct dp_met_row *r = &m->row[id <= DP_REGISTRY_MAX ? id : 0];

	DP_MET_ADD(r->bytes_in, in);
	DP_MET_ADD(r->bytes_out, out);
}

/** Relaxed copy of row @p id into @p out, added to what @p out holds (for merging). */
void dp_metrics_read_row(const struct dp_metrics *m, uint32_t id, struct dp_met_row *out);

#endif

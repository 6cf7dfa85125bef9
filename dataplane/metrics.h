/**
 * @file
 * Per-pipeline request metrics: completions by status code, bytes in and out, and a latency
 * histogram, in blocks
 * written by exactly one thread each (an lcore's worker for data-plane time, a front end for server
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

/**
 * The cost model of one pipeline on one lcore, learned from the requests it ran (EWMA, weight
 * 1/8): cycles of a small request (<= DP_COST_SMALL bytes in) and cycles per KiB above that.
 * Front ends read it to decide where a request runs (inline, or handed to a worker).
 */
struct dp_met_cost {
	uint64_t base_cycles;	 /**< small requests; 0 with n_small == 0 */
	uint64_t cycles_per_kib; /**< large requests, beyond the base */
	uint32_t n_small, n_large;
};

/** Inputs up to this many bytes count as small in the cost model. */
#define DP_COST_SMALL 1024u

struct dp_metrics {
	uint64_t bound_cycles[DP_MET_BOUNDS];
	uint64_t tsc_hz;
	struct dp_met_row row[DP_REGISTRY_MAX + 1];
	struct dp_met_cost cost[DP_REGISTRY_MAX + 1];
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

/** Learn from one run of pipeline @p id over @p len input bytes that took @p cycles. */
static inline void
dp_metrics_learn_cost(struct dp_metrics *m, uint32_t id, uint32_t len, uint64_t cycles)
{
	struct dp_met_cost *c = &m->cost[id <= DP_REGISTRY_MAX ? id : 0];

	if (len <= DP_COST_SMALL) {
		uint64_t b = c->n_small ? c->base_cycles - c->base_cycles / 8 + cycles / 8 : cycles;

		__atomic_store_n(&c->base_cycles, b, __ATOMIC_RELAXED);
		__atomic_store_n(&c->n_small, c->n_small + 1, __ATOMIC_RELAXED);
	} else {
		uint64_t net = cycles > c->base_cycles ? cycles - c->base_cycles : 0;
		uint64_t k = net * 1024 / len;

		k = c->n_large ? c->cycles_per_kib - c->cycles_per_kib / 8 + k / 8 : k;
		__atomic_store_n(&c->cycles_per_kib, k, __ATOMIC_RELAXED);
		__atomic_store_n(&c->n_large, c->n_large + 1, __ATOMIC_RELAXED);
	}
}

/**
 * Estimated cycles for pipeline @p id over @p len bytes from this block's cost model, or 0 when
 * it has not seen enough of that size to say. Context: any (relaxed loads).
 */
static inline uint64_t
dp_metrics_estimate(const struct dp_metrics *m, uint32_t id, uint32_t len)
{
	const struct dp_met_cost *c = &m->cost[id <= DP_REGISTRY_MAX ? id : 0];
	uint64_t base = __atomic_load_n(&c->base_cycles, __ATOMIC_RELAXED);

	if (len <= DP_COST_SMALL)
		return __atomic_load_n(&c->n_small, __ATOMIC_RELAXED) ? (base ? base : 1) : 0;
	if (__atomic_load_n(&c->n_large, __ATOMIC_RELAXED) == 0)
		return 0;
	return base + __atomic_load_n(&c->cycles_per_kib, __ATOMIC_RELAXED) * len / 1024 + 1;
}

/**
 * The lowest estimate any of @p n cost models (@p m, entries may be NULL) gives pipeline @p id
 * over @p len bytes, 0 when none has seen enough. Each lcore learns only from what it runs, so
 * one lcore's estimate stays wherever its last run left it: a front end whose inline run was
 * preempted (milliseconds for a microsecond pipeline) would hand that pipeline over for good and
 * never learn otherwise, while the lcore that now runs it keeps learning. The lowest is the
 * pipeline's own cost with the least interference in it. Context: any (relaxed loads).
 */
static inline uint64_t
dp_metrics_estimate_min(const struct dp_metrics *const *m, unsigned n, uint32_t id, uint32_t len)
{
	uint64_t best = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t e = m[i] != NULL ? dp_metrics_estimate(m[i], id, len) : 0;

		if (e != 0 && (best == 0 || e < best))
			best = e;
	}
	return best;
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

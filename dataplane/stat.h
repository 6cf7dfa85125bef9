/**
 * @file
 * Statistics counters: the one counter primitive, and the descriptor rows (DPDK's ethdev
 * xstats name/offset strings are the model) from which every reader of a stats struct derives
 * its fields: /metrics, GetStats and the sums over writers all walk the same rows.
 *
 * **The counter contract.** A counter is a uint64_t with exactly one writer thread (a worker
 * lcore, a front end, the control thread), which updates it with dp_stat_add(): a plain load and
 * a relaxed atomic store, never a read-modify-write (no locked instruction on the hot path),
 * correct only because nobody else writes it. Any thread reads it with dp_stat_load(), a
 * relaxed load: it sees each counter whole (never a torn value) but the counters of one struct
 * at slightly different moments, and in no order with any other memory. Counters order nothing;
 * code that needs ordering uses its own release/acquire pair. Subtracting is adding the two's
 * complement (dp_stat_add(&c, -n)), which wraps exactly as uint64_t arithmetic does.
 *
 * **Descriptor rows.** A stats struct made only of uint64_t counters (scalars and arrays) has one
 * table of struct dp_stat_desc rows covering each of its counters exactly once, in field order;
 * dp_stat_table_check() proves that (and the family rule below) in a unit test, and the struct's
 * header static-asserts what it can at compile time. Rows of one Prometheus family are adjacent;
 * the first carries the help.
 *
 * Context: dp_stat_add() on the counter's writer only; everything else on any thread.
 * Ownership: none (counters live in their owner's structs; tables are static constants).
 */
#ifndef COREPIPE_DP_STAT_H
#define COREPIPE_DP_STAT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/**
 * Add @p v to the single-writer counter @p c (a relaxed store, no read-modify-write).
 * Context: the counter's one writer thread.
 */
static inline void
dp_stat_add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

/** Read counter @p c written by another thread (relaxed load). Context: any. */
static inline uint64_t
dp_stat_load(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/** Prometheus metric type of a row. */
enum dp_stat_type {
	DP_STAT_COUNTER = 0,
	DP_STAT_GAUGE,
};

/** /metrics prints the family once per worker (a `worker` label), not summed over workers. */
#define DP_STAT_PER_WORKER 0x1u
/** /metrics prints an array's element 0 always and the others only when non-zero. */
#define DP_STAT_SPARSE 0x2u
/** The counter is TSC cycles: /metrics prints it in seconds (a `_seconds_total` family). */
#define DP_STAT_TSC 0x4u

/** One counter field (a scalar, or an array of counters) of a stats struct. */
struct dp_stat_desc {
	const char *metric; /**< Prometheus family ("corepipe_udp_packets_total"); NULL: none */
	const char *label;  /**< this row's fixed label (`dir="rx"`), or NULL */
	const char *key;    /**< an array's element label name ("code"); NULL for a scalar */
	const char *(*key_name)(unsigned k); /**< element @p k's label value and map key */
	const char *rpc;		     /**< GetStats field name; NULL: not in GetStats */
	const char *help;		     /**< HELP text: on a family's first row only */
	enum dp_stat_type type;
	unsigned flags; /**< DP_STAT_PER_WORKER, DP_STAT_SPARSE, DP_STAT_TSC */
	size_t offset;	/**< of the field in its struct */
	unsigned n;	/**< counters in the field: 1, or the array's length */
};

/** A row's offset and length, both derived from the field of struct type @p T itself. */
#define DP_STAT_FIELD(T, field)                                                                    \
	.offset = offsetof(T, field), .n = sizeof(((T *)0)->field) / sizeof(uint64_t)

/** Counter @p k of row @p d in stats struct @p s. */
static inline const uint64_t *
dp_stat_at(const struct dp_stat_desc *d, const void *s, unsigned k)
{
	return (const uint64_t *)((const char *)s + d->offset) + k;
}

/**
 * Add every counter of @p src (a struct described by the @p n rows of @p t) into @p dst, with
 * relaxed loads of @p src (dp_stat_load). Context: any.
 */
static inline void
dp_stat_sum(const struct dp_stat_desc *t, unsigned n, void *dst, const void *src)
{
	for (unsigned r = 0; r < n; r++) {
		uint64_t *d = (uint64_t *)((char *)dst + t[r].offset);

		for (unsigned k = 0; k < t[r].n; k++)
			d[k] += dp_stat_load(dp_stat_at(&t[r], src, k));
	}
}

/**
 * Do the @p n rows of @p t cover the first @p counted bytes of their struct with uint64_t
 * counters, each exactly once, in field order, and is each /metrics family's rows adjacent,
 * with the help on its first row? For unit tests (a field added without a row, a row naming
 * the wrong field, or a family split or without help, fails it).
 * @return 0, or -EINVAL with the first bad row's index in @p *bad.
 */
static inline int
dp_stat_table_check(const struct dp_stat_desc *t, unsigned n, size_t counted, unsigned *bad)
{
	size_t at = 0;

	for (unsigned r = 0; r < n; r++) {
		bool first = t[r].metric != NULL && (r == 0 || t[r - 1].metric == NULL ||
						     strcmp(t[r - 1].metric, t[r].metric) != 0);
		bool split = false;

		for (unsigned q = 0; first && q + 1 < r; q++)
			split |= t[q].metric != NULL && strcmp(t[q].metric, t[r].metric) == 0;
		if (t[r].offset != at || t[r].n == 0 || (t[r].n > 1) != (t[r].key != NULL) ||
		    (first && t[r].help == NULL) || split) {
			*bad = r;
			return -EINVAL;
		}
		at += t[r].n * sizeof(uint64_t);
	}
	*bad = n;
	return at == counted ? 0 : -EINVAL;
}

#endif

/**
 * @file
 * Log-linear latency histogram for the load generators: 64 linear sub-buckets per power of
 * two, so a recorded value is reported with a relative error below 1/64 (1.6%), over the whole
 * uint64 range, in 32 KiB per histogram. One per client thread, merged at the end.
 *
 * Context: one thread per histogram (merge after joining). Ownership: plain value type.
 */
#ifndef COREPIPE_PERF_HIST_H
#define COREPIPE_PERF_HIST_H

#include <stdint.h>

#define SUB_BITS    6
#define SUB_BUCKETS (1u << SUB_BITS)
#define HIST_SIZE   (64 * SUB_BUCKETS)

struct hist {
	uint64_t count[HIST_SIZE];
	uint64_t n, min, max;
	double sum;
};

static inline unsigned
hist_index(uint64_t v)
{
	unsigned msb;

	if (v < SUB_BUCKETS)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return (msb - SUB_BITS + 1) * SUB_BUCKETS +
	       (unsigned)((v >> (msb - SUB_BITS)) & (SUB_BUCKETS - 1));
}

/* Lower bound of bucket i (the value reported for it: errs low by < 1/64). */
static inline uint64_t
hist_value(unsigned i)
{
	unsigned e = i / SUB_BUCKETS, m = i % SUB_BUCKETS;

	if (e == 0)
		return m;
	return (uint64_t)(SUB_BUCKETS + m) << (e - 1);
}

static inline void
hist_add(struct hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += (double)v;
}

static inline void
hist_merge(struct hist *d, const struct hist *s)
{
	for (unsigned i = 0; i < HIST_SIZE; i++)
		d->count[i] += s->count[i];
	if (s->n && (d->n == 0 || s->min < d->min))
		d->min = s->min;
	if (s->max > d->max)
		d->max = s->max;
	d->n += s->n;
	d->sum += s->sum;
}

static inline uint64_t
hist_pct(const struct hist *h, double p)
{
	uint64_t rank = (uint64_t)(p / 100.0 * (double)h->n), seen = 0;

	if (rank >= h->n)
		rank = h->n ? h->n - 1 : 0;
	for (unsigned i = 0; i < HIST_SIZE; i++) {
		seen += h->count[i];
		if (seen > rank)
			return hist_value(i);
	}
	return h->max;
}

#endif

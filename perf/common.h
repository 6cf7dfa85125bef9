/**
 * @file
 * What the load generators share: clocks, the command line as run, client CPU time, and a
 * log-linear latency histogram: 128 linear sub-buckets per power of two, each reported at its
 * midpoint, so a recorded value is reported with a relative error of at most 1/256 (0.4%,
 * HIST_REL_ERROR) over the whole uint64 range; values below 256 are exact. 64 KiB per
 * histogram; one per client thread, merged at the end.
 *
 * Context: clocks from any thread; one thread per histogram (merge after joining).
 * Ownership: plain value types.
 */
#ifndef COREPIPE_PERF_COMMON_H
#define COREPIPE_PERF_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double
now_s(void)
{
	return (double)now_ns() / 1e9;
}

/** User + system CPU seconds between two getrusage(RUSAGE_SELF) readings. */
static inline double
cpu_seconds(const struct rusage *a, const struct rusage *b)
{
	return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec + b->ru_stime.tv_sec -
			a->ru_stime.tv_sec) +
	       (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec + b->ru_stime.tv_usec -
			a->ru_stime.tv_usec) /
		   1e6;
}

/** qsort() comparator for doubles (medians of benchmark rounds). */
static inline int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/**
 * The command line as run, space-joined into @p out (for the report), each argument that a
 * shell would split or expand in single quotes, so that it can be pasted back. The value of an
 * `authorization` metadata argument is replaced by `<redacted>`: results files are committed.
 */
static inline void
join_command(int argc, char **argv, char *out, size_t n)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < argc && off < n - 1; i++) {
		const char *a = argv[i];
		bool plain = *a != '\0';

		for (const char *p = a; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "-_./:=,+@%",
				    *p))
				plain = false;
		if (strncasecmp(a, "authorization:", 14) == 0)
			a = "authorization:<redacted>";
		if (plain || strncmp(a, "authorization:", 14) == 0) {
			off += (size_t)snprintf(out + off, n - off, "%s%s", i ? " " : "", a);
			continue;
		}
		off += (size_t)snprintf(out + off, n - off, "%s'", i ? " " : "");
		for (const char *p = a; *p && off < n - 5; p++)
			off += (size_t)(*p == '\'' ? snprintf(out + off, n - off, "'\\''")
						   : snprintf(out + off, n - off, "%c", *p));
		off += (size_t)snprintf(out + off, n - off, "'");
	}
	if (off >= n)
		out[n - 1] = '\0';
}

#define SUB_BITS       7
#define SUB_BUCKETS    (1u << SUB_BITS)
#define HIST_SIZE      (64 * SUB_BUCKETS)
#define HIST_REL_ERROR (1.0 / (2 * SUB_BUCKETS)) /* half a bucket over its lower bound */

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

/* The value reported for bucket i: its midpoint. Bucket e >= 1 spans
 * [(SUB_BUCKETS + m) << (e - 1), (SUB_BUCKETS + m + 1) << (e - 1)), so the midpoint is within
 * half a width, 2^(e-2), of any value in it: a relative error of at most 1 / (2 SUB_BUCKETS). */
static inline uint64_t
hist_value(unsigned i)
{
	unsigned e = i / SUB_BUCKETS, m = i % SUB_BUCKETS;

	if (e <= 1)
		return e == 0 ? m : SUB_BUCKETS + m;
	return ((uint64_t)(SUB_BUCKETS + m) << (e - 1)) + (1ull << (e - 2));
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
		if (seen > rank) {
			uint64_t v = hist_value(i);

			/* The midpoint may lie outside what was recorded: clamp. */
			return v < h->min ? h->min : v > h->max ? h->max : v;
		}
	}
	return h->max;
}

#endif

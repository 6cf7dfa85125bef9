/**
 * @file
 * The Prometheus text exposition format, read back (corepipectl top scrapes /metrics), and
 * quantiles from histogram buckets the way PromQL's histogram_quantile() computes them.
 *
 * Context: any thread; pure functions. Ownership: a parsed scrape owns its strings; free with
 * ctl_prom_free().
 */
#ifndef COREPIPE_CTL_PROM_H
#define COREPIPE_CTL_PROM_H

#include <stddef.h>

#define CTL_PROM_MAX_LABELS 4

struct ctl_prom_sample {
	char *name;
	unsigned n_labels;
	char *key[CTL_PROM_MAX_LABELS], *val[CTL_PROM_MAX_LABELS];
	double value;
};

struct ctl_prom {
	struct ctl_prom_sample *s;
	size_t n;
};

/**
 * Parse a scrape. Comment lines are skipped; a sample line that does not parse is skipped too
 * (it is counted in the return value).
 * @return the number of lines skipped as malformed (>= 0), or -ENOMEM.
 */
int ctl_prom_parse(const char *text, size_t len, struct ctl_prom *p);

/** Free a scrape (and zero it). */
void ctl_prom_free(struct ctl_prom *p);

/** Value of label @p key of @p s, or NULL. */
const char *ctl_prom_label(const struct ctl_prom_sample *s, const char *key);

/**
 * Sum of the samples named @p name whose label @p key is @p val (every sample of that name
 * when @p key is NULL).
 * @return the sum, or -1 when there is no such sample.
 */
double ctl_prom_sum(const struct ctl_prom *p, const char *name, const char *key, const char *val);

/**
 * The @p q quantile (0..1) of a histogram given as cumulative counts @p cum at upper bounds
 * @p le (ascending; the last may be +Inf), as histogram_quantile() does: linear interpolation
 * inside the bucket that holds the rank, the lowest bucket starting at 0, and the highest finite
 * bound when the rank falls in the +Inf bucket.
 * @return the quantile, or -1 when the histogram is empty.
 */
double ctl_hist_quantile(double q, const double *le, const double *cum, size_t n);

#endif

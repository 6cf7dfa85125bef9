/**
 * @file
 * What the microbenchmarks share: EAL start-up (no hugepages, two lcores 0@0 and 1@1 for the
 * cross-core cases), interleaved rounds with medians, a second lcore to run a helper on, and
 * the table every micro_* binary prints.
 *
 * A benchmark is a list of cases; each case is a function that runs one round and returns
 * TSC cycles per operation (rte_rdtsc). micro_run() warms every case once, then runs
 * MICRO_ROUNDS rounds with the cases interleaved (case 1, 2, ..., n, case 1, ...), so a noisy
 * neighbour on this shared machine hits all cases alike, and prints the median, min and max
 * per case and the ratio of each median to the first case's.
 *
 * Context: the EAL main lcore (0); helpers run on lcore 1 through rte_eal_remote_launch.
 * Ownership: cases and their arguments belong to the caller.
 */
#ifndef COREPIPE_PERF_MICRO_H
#define COREPIPE_PERF_MICRO_H

#include "perf/common.h"

#include <math.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Rounds per case; the median is reported. */
#define MICRO_ROUNDS 7

/** Longest a single round may spin waiting for the other lcore (seconds). */
#define MICRO_ROUND_LIMIT_S 2.0

/** One case: @c fn runs one round over @c arg and returns cycles per operation (NAN: failed). */
struct micro_case {
	const char *label;
	double (*fn)(void *arg);
	void *arg;
	double v[MICRO_ROUNDS];
};

/**
 * Start the EAL for a microbenchmark and print its header: what it measures and the command
 * that reproduces it. Exits on failure (these are stand-alone programs).
 */
static inline void
micro_init(int argc, char **argv, const char *what)
{
	char *eal[] = {argv[0],		 "--no-huge",	"--no-pci", "--no-shconf",
		       "--no-telemetry", "-m",		"256",	    "--lcores",
		       "0@0,1@1",	 "--log-level", "1"};
	char cmd[512];

	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0) {
		fprintf(stderr, "%s: EAL init failed\n", argv[0]);
		exit(1);
	}
	join_command(argc, argv, cmd, sizeof(cmd));
	printf("== %s\n", what);
	printf("command: %s (no arguments; TSC %.2f GHz; median of %d interleaved rounds)\n", cmd,
	       (double)rte_get_tsc_hz() / 1e9, MICRO_ROUNDS);
}

/** The lcore helpers run on, or exits when the EAL has only one. */
static inline unsigned
micro_helper_lcore(void)
{
	unsigned lc = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);

	if (lc >= RTE_MAX_LCORE) {
		fprintf(stderr, "need two lcores for the cross-core cases\n");
		exit(1);
	}
	return lc;
}

/** TSC deadline MICRO_ROUND_LIMIT_S from now (spin loops give up after it). */
static inline uint64_t
micro_deadline(void)
{
	return rte_rdtsc() + (uint64_t)(MICRO_ROUND_LIMIT_S * (double)rte_get_tsc_hz());
}

static inline double
micro_median(const double *v, unsigned n, double *min, double *max)
{
	double s[MICRO_ROUNDS];
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		if (!isnan(v[i]))
			s[k++] = v[i];
	if (k == 0)
		return NAN;
	qsort(s, k, sizeof(double), cmp_double);
	*min = s[0];
	*max = s[k - 1];
	return k % 2 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
}

/** Warm each of @p n cases once, then run MICRO_ROUNDS rounds with the cases interleaved. */
static inline void
micro_measure(struct micro_case *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		(void)c[i].fn(c[i].arg); /* warm: caches, lazily built state, page faults */
	for (unsigned r = 0; r < MICRO_ROUNDS; r++)
		for (unsigned i = 0; i < n; i++)
			c[i].v[r] = c[i].fn(c[i].arg);
}

/**
 * Run @p n cases interleaved and print one table under @p title: median cycles and ns per
 * @p unit (e.g. "obj"), min..max of the rounds, and each median over the first case's.
 */
static inline void
micro_run(const char *title, struct micro_case *c, unsigned n, const char *unit)
{
	double hz = (double)rte_get_tsc_hz(), base = NAN;

	micro_measure(c, n);
	printf("\n%s\n\n", title);
	printf("| %-44s | cycles/%-6s | ns/%-6s | min..max cycles | vs first |\n", "case", unit,
	       unit);
	printf("|---|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < n; i++) {
		double lo = NAN, hi = NAN, m = micro_median(c[i].v, MICRO_ROUNDS, &lo, &hi);

		if (i == 0)
			base = m;
		if (isnan(m)) {
			printf("| %-44s | %13s | %9s | %15s | %8s |\n", c[i].label, "timed out",
			       "-", "-", "-");
			continue;
		}
		printf("| %-44s | %13.1f | %9.1f | %7.1f..%-7.1f | %7.2fx |\n", c[i].label, m,
		       m / hz * 1e9, lo, hi, m / base);
	}
	fflush(stdout);
}

#endif

/*
 * bench_resample_init: what a resample node's state creation (its init(), i.e. libsoxr's
 * soxr_create) costs, by quality, channel count and rate ratio: the numbers behind the
 * channel and rate bounds of dataplane/nodes/resample.c (docs/operations.md, "Limits and
 * hardening").
 *
 * For each quality, the channel counts 1, 2, 4, 8, 16, 32 and 64 and the rate pairs below, the
 * node's own init() and fini() run ROUNDS times on this thread and the median and the 90th
 * percentile of the thread CPU time of init() are printed (CPU time, not wall time: a busy
 * machine preempts the thread, which says nothing about the work). The worst pair per
 * (quality, channels) is the figure that matters: a client picks the rates.
 *
 * Runs without the EAL (compile and init need none); no server.
 *     build/release/perf/bench_resample_init [max_channels]
 */
#include "dataplane/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 31

static const uint32_t g_pairs[][2] = {
    {1000, 384000}, {384000, 1000}, {8000, 384000}, {384000, 8000},
    {44100, 48000}, {48000, 16000}, {16000, 48000},
};
static const char *const g_quality[] = {"quick", "low", "medium", "high", "very_high"};

static double
cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct dp_pipeline *
compile(const char *quality, uint32_t rate)
{
	char r[16];
	struct dp_param p[2] = {{.key = "rate", .value = r},
				{.key = "quality", .value = (char *)quality}};
	struct dp_node_spec n = {.type = "resample", .n_params = 2, .params = p};
	struct dp_spec s = {.name = "bench", .n_nodes = 1, .nodes = &n};
	struct dp_err err;
	struct dp_pipeline *pl;

	snprintf(r, sizeof(r), "%u", rate);
	pl = dp_pipeline_compile(&s, 1, &err);
	if (pl == NULL) {
		fprintf(stderr, "compile: %s\n", err.msg);
		exit(1);
	}
	return pl;
}

/* Median and p90 of init() for one configuration; -1 when init() refuses it. */
static int
measure(const char *quality, uint32_t in, uint32_t out, unsigned ch, double *med, double *p90)
{
	struct dp_pipeline *pl = compile(quality, out);
	const struct dp_node_inst *ni = &pl->nodes[0];
	struct dp_format f = {.kind = DP_KIND_AUDIO, .fmt = DP_FMT_S16LE, .rate = in};
	double t[ROUNDS];
	void *state = calloc(1, DP_STATE_MAX);

	f.channels = (uint16_t)ch;
	for (unsigned i = 0; i < ROUNDS; i++) {
		struct dp_err err;
		double t0 = cpu_ms();
		int rc = ni->type->init(ni->conf, state, &f, &err);

		t[i] = cpu_ms() - t0;
		if (rc != 0) {
			free(state);
			dp_pipeline_unref(pl);
			return -1;
		}
		ni->type->fini(ni->conf, state);
	}
	qsort(t, ROUNDS, sizeof(t[0]), cmp);
	*med = t[ROUNDS / 2];
	*p90 = t[ROUNDS * 9 / 10];
	free(state);
	dp_pipeline_unref(pl);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned max_ch = argc > 1 ? (unsigned)atoi(argv[1]) : 64;

	printf("# resample init() (soxr_create): thread CPU ms, median / p90 of %d, worst rate "
	       "pair\n",
	       ROUNDS);
	printf("%-10s %4s %10s %10s  %s\n", "quality", "ch", "median", "p90", "worst pair");
	for (unsigned q = 0; q < sizeof(g_quality) / sizeof(g_quality[0]); q++) {
		for (unsigned ch = 1; ch <= max_ch; ch *= 2) {
			double wmed = 0, wp90 = 0;
			unsigned wi = 0;
			bool refused = false;

			for (unsigned i = 0; i < sizeof(g_pairs) / sizeof(g_pairs[0]); i++) {
				double med, p90;

				if (measure(g_quality[q], g_pairs[i][0], g_pairs[i][1], ch, &med,
					    &p90) != 0) {
					refused = true;
					continue;
				}
				if (med > wmed) {
					wmed = med;
					wp90 = p90;
					wi = i;
				}
			}
			if (wmed == 0 && refused)
				printf("%-10s %4u %10s %10s  refused by init()\n", g_quality[q], ch,
				       "-", "-");
			else
				printf("%-10s %4u %10.3f %10.3f  %u -> %u%s\n", g_quality[q], ch,
				       wmed, wp90, g_pairs[wi][0], g_pairs[wi][1],
				       refused ? " (pairs over 48x refused)" : "");
		}
	}
	return 0;
}

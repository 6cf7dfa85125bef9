/*
 * Metrics blocks under concurrent scrapes: writer threads (standing in for workers) each own a
 * block and count and observe into it with plain relaxed stores, while a reader thread (the
 * scrape) merges every block over and over. The reader checks that merged counters never go
 * backwards; at the end the merged totals equal exactly what the writers did. Under TSan
 * (make tsan) any access that is not the single-writer relaxed pattern would be reported.
 * Bounded: STRESS_SECONDS (default 2) and a per-writer cap. No EAL: blocks are calloc'd.
 */
#include "dataplane/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WRITERS	   2
#define IDS	   5
#define MAX_WRITES 2000000

static struct dp_metrics *g_blocks[WRITERS];
static atomic_bool g_stop;
static atomic_ulong g_errors;
static unsigned long g_done[WRITERS];

static void *
writer(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg;
	struct dp_metrics *m = g_blocks[w];
	unsigned long n = 0;

	while (!atomic_load_explicit(&g_stop, memory_order_relaxed) && n < MAX_WRITES) {
		uint32_t id = (uint32_t)(n % IDS);

		dp_metrics_count(m, id, n % 7 == 0 ? DP_INVALID_ARGUMENT : DP_OK);
		dp_metrics_observe(m, id, (n * 2654435761u) % 5000000u);
		n++;
	}
	g_done[w] = n;
	return NULL;
}

static uint64_t
merged_total(void)
{
	uint64_t t = 0;

	for (uint32_t id = 0; id < IDS; id++) {
		struct dp_met_row r;

		memset(&r, 0, sizeof(r));
		for (unsigned w = 0; w < WRITERS; w++)
			dp_metrics_read_row(g_blocks[w], id, &r);
		for (unsigned k = 0; k < DP_STATUS_MAX; k++)
			t += r.by_code[k];
	}
	return t;
}

static void *
reader(void *arg)
{
	uint64_t last = 0;
	unsigned long scrapes = 0;

	(void)arg;
	while (!atomic_load_explicit(&g_stop, memory_order_acquire)) {
		uint64_t t = merged_total();

		if (t < last)
			atomic_fetch_add(&g_errors, 1);
		last = t;
		scrapes++;
	}
	*(unsigned long *)arg = scrapes;
	return NULL;
}

int
main(void)
{
	pthread_t wt[WRITERS], rt;
	unsigned long scrapes = 0, expect = 0;
	const char *env = getenv("STRESS_SECONDS");
	struct timespec ts = {.tv_sec = env ? atoi(env) : 2};
	uint64_t got;

	for (unsigned w = 0; w < WRITERS; w++) {
		g_blocks[w] = calloc(1, sizeof(struct dp_metrics));
		if (g_blocks[w] == NULL)
			return 1;
		g_blocks[w]->tsc_hz = 1000000000ull;
		for (unsigned i = 0; i < DP_MET_BOUNDS; i++)
			g_blocks[w]->bound_cycles[i] = (uint64_t)(dp_met_bounds_s[i] * 1e9);
	}
	pthread_create(&rt, NULL, reader, &scrapes);
	for (unsigned w = 0; w < WRITERS; w++)
		pthread_create(&wt[w], NULL, writer, (void *)(uintptr_t)w);
	nanosleep(&ts, NULL);
	atomic_store_explicit(&g_stop, true, memory_order_release);
	for (unsigned w = 0; w < WRITERS; w++)
		pthread_join(wt[w], NULL);
	pthread_join(rt, NULL);
	for (unsigned w = 0; w < WRITERS; w++)
		expect += g_done[w];
	got = merged_total();
	if (got != expect)
		atomic_fetch_add(&g_errors, 1);
	printf("stress_metrics: %lu counts by %d writers, %lu scrapes, merged %llu, %lu errors\n",
	       expect, WRITERS, scrapes, (unsigned long long)got, atomic_load(&g_errors));
	for (unsigned w = 0; w < WRITERS; w++)
		free(g_blocks[w]);
	return atomic_load(&g_errors) ? 1 : 0;
}

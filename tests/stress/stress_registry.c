/*
 * Registry torture (urcu-torture style): reader threads look pipelines up in a tight loop while
 * a writer replaces and deletes them. Readers check every pipeline they find is whole (name,
 * node count matching its spec, node types set, version non-zero) and that versions of a name
 * never go backwards for one reader; freed memory being read would be flagged by ASan/TSan
 * (make asan / make tsan run this binary). Bounded: STRESS_SECONDS (default 2) and a write cap.
 *
 * No EAL: registry and pipelines are plain malloc + liburcu.
 */
#include "dataplane/registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READERS	   3
#define NAMES	   8
#define MAX_WRITES 200000

static struct dp_registry *g_reg;
static atomic_bool g_stop;
static atomic_ulong g_errors;

struct reader_stats {
	unsigned long lookups, hits;
};

static struct dp_pipeline *
make(const char *name, unsigned n_nodes)
{
	struct dp_node_spec nodes[4];
	struct dp_param db = {.key = "db", .value = "1.5"};
	struct dp_spec s = {.name = (char *)name, .n_nodes = n_nodes, .nodes = nodes};
	struct dp_err err;

	for (unsigned i = 0; i < n_nodes; i++)
		nodes[i] = (i % 2)
			       ? (struct dp_node_spec){.type = "gain", .n_params = 1, .params = &db}
			       : (struct dp_node_spec){.type = "crc32c"};
	return dp_pipeline_compile(&s, 32, &err);
}

static void
check(const struct dp_pipeline *p, const char *name, uint64_t *last_version)
{
	bool ok = strcmp(p->name, name) == 0 && p->n_nodes >= 1 && p->n_nodes <= 4 &&
		  p->spec != NULL && p->spec->n_nodes == p->n_nodes && p->version != 0 &&
		  p->id != 0 && atomic_load_explicit(&p->refcnt, memory_order_relaxed) > 0;

	for (unsigned i = 0; ok && i < p->n_nodes; i++)
		ok = p->nodes[i].type != NULL &&
		     strcmp(p->nodes[i].type->name, p->spec->nodes[i].type) == 0;
	if (ok && p->version < *last_version)
		ok = false;
	if (!ok)
		atomic_fetch_add(&g_errors, 1);
	*last_version = p->version;
}

static void *
reader_main(void *arg)
{
	struct reader_stats *st = arg;
	uint64_t last[NAMES] = {0};
	char names[NAMES][16];
	uint32_t hashes[NAMES];

	for (int i = 0; i < NAMES; i++) {
		snprintf(names[i], sizeof(names[i]), "p%d", i);
		hashes[i] = dp_name_hash(names[i], strlen(names[i]));
	}
	urcu_qsbr_register_thread();
	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		for (int i = 0; i < NAMES; i++) {
			const struct dp_pipeline *p =
			    dp_registry_lookup(g_reg, names[i], hashes[i]);

			st->lookups++;
			if (p != NULL) {
				st->hits++;
				check(p, names[i], &last[i]);
			}
		}
		dp_rcu_quiescent_state();
	}
	dp_rcu_thread_offline();
	urcu_qsbr_unregister_thread();
	return NULL;
}

int
main(void)
{
	const char *env = getenv("STRESS_SECONDS");
	double seconds = env ? atof(env) : 2.0;
	struct reader_stats st[READERS] = {0};
	pthread_t t[READERS];
	struct timespec t0, now;
	unsigned long writes = 0, deletes = 0;
	unsigned seed = 12345;
	struct dp_registry_info info;
	char name[16];

	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	g_reg = dp_registry_create();
	for (int i = 0; i < READERS; i++)
		pthread_create(&t[i], NULL, reader_main, &st[i]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int k = (int)(rand_r(&seed) % NAMES);

		snprintf(name, sizeof(name), "p%d", k);
		if (rand_r(&seed) % 4 == 0) {
			deletes += dp_registry_delete(g_reg, name) == 0;
		} else if (dp_registry_put(g_reg, make(name, 1 + rand_r(&seed) % 4), &info) != 0) {
			atomic_fetch_add(&g_errors, 1);
		}
		writes++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (writes < MAX_WRITES &&
		 (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 <
		     seconds);
	atomic_store(&g_stop, true);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	dp_registry_destroy(g_reg);
	urcu_qsbr_unregister_thread();

	unsigned long lookups = 0, hits = 0;

	for (int i = 0; i < READERS; i++) {
		lookups += st[i].lookups;
		hits += st[i].hits;
	}
	printf("stress_registry: %lu writes (%lu deletes), %d readers, %lu lookups (%lu hits), "
	       "%lu errors\n",
	       writes, deletes, READERS, lookups, hits, atomic_load(&g_errors));
	if (atomic_load(&g_errors) != 0 || hits == 0 || writes < 1000) {
		printf("1 failed\n");
		return 1;
	}
	printf("stress_registry: 1 passed, 0 failed\n");
	return 0;
}

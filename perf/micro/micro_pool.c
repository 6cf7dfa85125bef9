/*
 * micro_pool: TSC cycles per buffer taken and returned, the payload pools against the
 * alternatives.
 *
 * dp_pools:        dp_pools_get() + dp_buf_free() (dataplane/pool.h) on a 2 KiB class, which
 *                  has a per-lcore cache of 64 (POOL_CACHE_SMALL), as the workers use it;
 * rte_mempool, no cache: rte_mempool_get/put (and _get_bulk/_put_bulk for bursts) on a
 *                  mempool of the same element size created with cache_size 0, so every
 *                  operation goes to the shared ring;
 * rte_mempool, cache 64, bulk: the same with the cache, as the floor dp_pools sits on;
 * malloc/free:     glibc, the same size.
 *
 * single:   take one, return it. burst 32: take 32, then return the 32 (dp_pools has no bulk
 * call, so that is 32 dp_pools_get then 32 dp_buf_free). One thread, lcore 0.
 */
#include "dataplane/pool.h"
#include "perf/micro/micro.h"

#include <rte_mempool.h>

#define BUF_SIZE 2048
#define N_BUFS	 1024
#define BURST	 32
#define OPS	 (1u << 18)

enum kind { DP_POOLS, MP_NOCACHE, MP_CACHE, MALLOC };

struct pool_case {
	enum kind kind;
	unsigned burst;
};

static struct dp_pools *g_pools;
static struct rte_mempool *g_nocache, *g_cache;

/* Keeps the compiler from proving a malloc/free pair dead and removing it. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static double
run_case(void *arg)
{
	const struct pool_case *c = arg;
	struct rte_mempool *mp = c->kind == MP_CACHE ? g_cache : g_nocache;
	void *objs[BURST];
	unsigned rounds = OPS / c->burst;
	uint64_t t0 = rte_rdtsc();

	for (unsigned r = 0; r < rounds; r++) {
		switch (c->kind) {
		case DP_POOLS:
			for (unsigned i = 0; i < c->burst; i++)
				if ((objs[i] = dp_pools_get(g_pools, BUF_SIZE)) == NULL)
					return NAN;
			for (unsigned i = 0; i < c->burst; i++)
				dp_buf_free(objs[i]);
			break;
		case MP_NOCACHE:
		case MP_CACHE:
			if (c->burst == 1) {
				if (rte_mempool_get(mp, &objs[0]) != 0)
					return NAN;
				rte_mempool_put(mp, objs[0]);
			} else {
				if (rte_mempool_get_bulk(mp, objs, c->burst) != 0)
					return NAN;
				rte_mempool_put_bulk(mp, objs, c->burst);
			}
			break;
		case MALLOC:
			for (unsigned i = 0; i < c->burst; i++) {
				objs[i] = malloc(sizeof(struct dp_buf) + BUF_SIZE);
				if (objs[i] == NULL)
					return NAN;
				ESCAPE(objs[i]);
			}
			for (unsigned i = 0; i < c->burst; i++)
				free(objs[i]);
			break;
		}
	}
	return (double)(rte_rdtsc() - t0) / ((double)rounds * c->burst);
}

int
main(int argc, char **argv)
{
	struct dp_pool_conf pc = {.n_classes = 1, .classes = {{BUF_SIZE, N_BUFS}}};
	static struct pool_case pcs[] = {
	    {DP_POOLS, 1},	 {MP_NOCACHE, 1},   {MALLOC, 1},     {DP_POOLS, BURST},
	    {MP_NOCACHE, BURST}, {MP_CACHE, BURST}, {MALLOC, BURST},
	};
	struct micro_case single[] = {
	    {"dp_pools_get + dp_buf_free (lcore cache 64)", run_case, &pcs[0], {0}},
	    {"rte_mempool_get + put, no cache", run_case, &pcs[1], {0}},
	    {"malloc + free", run_case, &pcs[2], {0}},
	};
	struct micro_case burst[] = {
	    {"dp_pools_get x32 + dp_buf_free x32 (cache)", run_case, &pcs[3], {0}},
	    {"rte_mempool_get_bulk + put_bulk, no cache", run_case, &pcs[4], {0}},
	    {"rte_mempool_get_bulk + put_bulk, cache 64", run_case, &pcs[5], {0}},
	    {"malloc x32 + free x32", run_case, &pcs[6], {0}},
	};
	size_t elt = sizeof(struct dp_buf) + BUF_SIZE;

	micro_init(argc, argv, "micro_pool: TSC cycles per buffer get + put (2 KiB buffers)");
	g_pools = dp_pools_create("mp_dp", &pc, SOCKET_ID_ANY);
	g_nocache = rte_mempool_create("mp_nc", N_BUFS, (unsigned)elt, 0, 0, NULL, NULL, NULL, NULL,
				       SOCKET_ID_ANY, 0);
	g_cache = rte_mempool_create("mp_c", N_BUFS, (unsigned)elt, 64, 0, NULL, NULL, NULL, NULL,
				     SOCKET_ID_ANY, 0);
	if (g_pools == NULL || g_nocache == NULL || g_cache == NULL) {
		fprintf(stderr, "pool create failed\n");
		return 1;
	}
	micro_run("single: take one buffer, return it (lcore 0)", single, 3, "buf");
	micro_run("burst of 32: take 32, return 32 (lcore 0)", burst, 4, "buf");
	dp_pools_destroy(g_pools);
	rte_mempool_free(g_nocache);
	rte_mempool_free(g_cache);
	rte_eal_cleanup();
	return 0;
}

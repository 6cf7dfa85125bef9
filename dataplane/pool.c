/*
 * Size-class buffer pools on rte_mempool. Creation validates the whole configuration before
 * creating anything, and unwinds what it created when a later class fails.
 */
#include "dataplane/pool.h"

#include <errno.h>
#include <rte_errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Per-lcore cache depth for classes small enough that caching costs little memory. */
#define POOL_CACHE_SMALL    64
#define POOL_CACHE_MAX_SIZE (64 * 1024)

void
dp_pool_conf_default(struct dp_pool_conf *conf)
{
	static const struct dp_pool_class def[] = {
	    {512, 8192},    /* 4 MiB: small records and 10 ms audio frames */
	    {8192, 2048},   /* 16 MiB */
	    {65536, 512},   /* 32 MiB */
	    {1 << 20, 32},  /* 32 MiB */
	    {16u << 20, 5}, /* 80 MiB: a 4 MiB message grown 4x (s16 mono to f32 stereo) */
	};

	conf->n_classes = RTE_DIM(def);
	for (unsigned i = 0; i < RTE_DIM(def); i++)
		conf->classes[i] = def[i];
}

static void
buf_init(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
	struct dp_buf *b = obj;
	uint32_t size = (uint32_t)(uintptr_t)arg;

	(void)idx;
	b->mp = mp;
	b->data = b->room;
	b->cap = size;
	b->len = 0;
}

struct dp_pools *
dp_pools_create(const char *name, const struct dp_pool_conf *conf, int socket)
{
	struct dp_pools *p;
	unsigned i;

	if (conf->n_classes == 0 || conf->n_classes > DP_POOL_MAX_CLASSES) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < conf->n_classes; i++) {
		if (conf->classes[i].size == 0 || conf->classes[i].count == 0 ||
		    (i > 0 && conf->classes[i].size <= conf->classes[i - 1].size)) {
			errno = EINVAL;
			return NULL;
		}
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;

	for (i = 0; i < conf->n_classes; i++) {
		char mpname[RTE_MEMPOOL_NAMESIZE];
		uint32_t size = conf->classes[i].size;
		uint32_t count = conf->classes[i].count;
		unsigned cache = size <= POOL_CACHE_MAX_SIZE ? POOL_CACHE_SMALL : 0;

		if (cache > count / 2)
			cache = 0;
		snprintf(mpname, sizeof(mpname), "%s_%u", name, i);
		p->mp[i] =
		    rte_mempool_create(mpname, count, sizeof(struct dp_buf) + size, cache, 0, NULL,
				       NULL, buf_init, (void *)(uintptr_t)size, socket, 0);
		if (p->mp[i] == NULL) {
			int e = rte_errno;

			p->n_classes = i;
			dp_pools_destroy(p);
			errno = e == EEXIST ? EEXIST : ENOMEM;
			return NULL;
		}
		p->size[i] = size;
		p->count[i] = count;
	}
	p->n_classes = conf->n_classes;
	return p;
}

void
dp_pools_destroy(struct dp_pools *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->n_classes; i++)
		rte_mempool_free(p->mp[i]);
	free(p);
}

bool
dp_pools_may_give(const struct dp_pools *p, const uint32_t *sizes, unsigned n)
{
	unsigned avail[DP_POOL_MAX_CLASSES];

	for (unsigned i = 0; i < p->n_classes; i++)
		avail[i] = rte_mempool_avail_count(p->mp[i]);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = 0;

		while (i < p->n_classes && (p->size[i] < sizes[k] || avail[i] == 0))
			i++;
		if (i == p->n_classes)
			return false;
		avail[i]--;
	}
	return true;
}

unsigned
dp_pools_in_use(const struct dp_pools *p, unsigned i)
{
	if (i >= p->n_classes)
		return 0;
	return rte_mempool_in_use_count(p->mp[i]);
}

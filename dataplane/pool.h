/**
 * @file
 * Preallocated payload buffers in size classes, one rte_mempool per class.
 *
 * Every payload the dataplane touches lives in a struct dp_buf taken from these pools: the
 * control plane copies a request's input into one, workers take more when a node's output does
 * not fit in place, and whoever finishes with a buffer puts it back. Nothing on a worker calls
 * malloc. Each mempool has a per-lcore cache for the small classes, so a worker's get/put is a
 * few loads and stores on its own cache; threads without an lcore id (the control thread) go
 * straight to the mempool's ring, which is multi-producer/multi-consumer safe.
 *
 * Context: dp_pools_create/destroy on the control thread after rte_eal_init(); get/put from
 * any thread. Ownership: a buffer from dp_pools_get() is owned by the caller until it is put
 * back with dp_buf_free() or handed on (documented at each hand-off).
 */
#ifndef COREPIPE_DP_POOL_H
#define COREPIPE_DP_POOL_H

#include <rte_common.h>
#include <rte_mempool.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

/** Most size classes a pool set may have. */
#define DP_POOL_MAX_CLASSES 8

/**
 * A payload buffer. A pool buffer's header shares its mempool object and data points at room[],
 * which starts on a cache line. A *view* (mp == NULL) describes bytes that live elsewhere, e.g.
 * the payload of a received mbuf that the UDP path processes where it arrived; dp_buf_free()
 * leaves a view alone (its owner frees the memory), so nodes treat both alike.
 */
struct dp_buf {
	struct rte_mempool *mp; /**< the class this buffer returns to; NULL: a view */
	uint8_t *data;		/**< first byte of the payload */
	uint32_t cap;		/**< bytes available at data */
	uint32_t len;		/**< bytes in use */
	/** Next buffer of a request's kit (dp_req.kit), while the buffer sits there unused;
	 * free for the owner's use otherwise. It fits in the header's padding. */
	struct dp_buf *next;
	alignas(RTE_CACHE_LINE_SIZE) uint8_t room[];
};

/** One size class: buffers of @c size bytes, @c count of them. */
struct dp_pool_class {
	uint32_t size;
	uint32_t count;
};

/** Pool set configuration; classes sorted by ascending size. */
struct dp_pool_conf {
	unsigned n_classes;
	struct dp_pool_class classes[DP_POOL_MAX_CLASSES];
};

/** The pool set. */
struct dp_pools {
	unsigned n_classes;
	uint32_t size[DP_POOL_MAX_CLASSES];
	uint32_t count[DP_POOL_MAX_CLASSES];
	struct rte_mempool *mp[DP_POOL_MAX_CLASSES];
};

/** The built-in default classes, sized for a 2-core host with -m 512 (about 180 MiB). */
void dp_pool_conf_default(struct dp_pool_conf *conf);

/**
 * Create one mempool per class.
 *
 * @param name   prefix for the mempool names (unique per process)
 * @param conf   classes, ascending sizes, each size > 0 and count > 0
 * @param socket NUMA socket or SOCKET_ID_ANY
 * @return the pools, or NULL with errno EINVAL (bad conf) or ENOMEM.
 * Context: control thread, after rte_eal_init(). Ownership: free with dp_pools_destroy().
 */
struct dp_pools *dp_pools_create(const char *name, const struct dp_pool_conf *conf, int socket);

/**
 * Free every mempool. Accepts NULL. All buffers must have been returned.
 * Context: control thread, once no thread uses the pools.
 */
void dp_pools_destroy(struct dp_pools *p);

/** Largest buffer the pools can hand out. */
static inline uint32_t
dp_pools_max_size(const struct dp_pools *p)
{
	return p->n_classes ? p->size[p->n_classes - 1] : 0;
}

/**
 * Buffers of class @p i currently taken (counting those parked in lcore caches as free).
 * Context: any; walks the caches, so not for the hot path.
 */
unsigned dp_pools_in_use(const struct dp_pools *p, unsigned i);

/**
 * Whether the pools could give, now, a buffer for each of the @p n sizes (as dp_pools_get
 * would: the smallest class that fits, else a larger one). An estimate: other threads take and
 * return buffers meanwhile, so the answer only says whether an attempt is worth making.
 * Context: any; walks the lcore caches, so not for the hot path.
 */
bool dp_pools_may_give(const struct dp_pools *p, const uint32_t *sizes, unsigned n);

/* Hot path: per request, worker lcores and control. No locks, syscalls, allocation or logging. */

/**
 * Take a buffer with room for at least @p len bytes: the smallest class that fits, or a larger
 * one when that class is empty.
 *
 * @return a buffer with len set to @p len, or NULL when @p len exceeds the largest class or
 * every class that fits is empty.
 * Context: any thread. Ownership: the caller owns the buffer.
 */
static inline struct dp_buf *
dp_pools_get(const struct dp_pools *p, uint32_t len)
{
	for (unsigned i = 0; i < p->n_classes; i++) {
		void *obj;

		if (p->size[i] < len)
			continue;
		if (rte_mempool_get(p->mp[i], &obj) == 0) {
			struct dp_buf *b = obj;

			b->len = len;
			return b;
		}
	}
	return NULL;
}

/**
 * Return a buffer to its pool. Accepts NULL, and leaves a view (mp == NULL) alone.
 * Context: any thread. Ownership: consumes @p b.
 */
static inline void
dp_buf_free(struct dp_buf *b)
{
	if (b != NULL && b->mp != NULL)
		rte_mempool_put(b->mp, b);
}

/**
 * Make @p b a view of @p len bytes at @p data with room for @p cap.
 * Context: any. Ownership: @p b and the bytes stay the caller's.
 */
static inline void
dp_buf_view(struct dp_buf *b, uint8_t *data, uint32_t len, uint32_t cap)
{
	b->mp = NULL;
	b->data = data;
	b->len = len;
	b->cap = cap;
}

#endif

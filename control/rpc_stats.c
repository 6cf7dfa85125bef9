/*
 * Per-thread sharded counters of answered gRPC calls (see rpc_stats.h).
 */
#include "control/rpc_stats.h"

#include <pthread.h>
#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct method {
	const char *path; /* NULL for slot 0 ("unknown") */
	bool streaming;
	char service[96];
	char name[64];
};

struct shard {
	uint64_t n[CP_RPC_STATS_METHODS][CP_RPC_STATS_CODES];
} __rte_cache_aligned;

static struct method g_methods[CP_RPC_STATS_METHODS] = {
    {.path = NULL, .service = "unknown", .name = "unknown"},
};
/* Methods published; release store after a slot is filled, acquire loads before reading. */
static atomic_uint g_n_methods = 1;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct shard g_shards[CP_RPC_STATS_SHARDS];
static atomic_uint g_n_shards;
static struct shard g_shared; /* threads without a shard of their own: atomic adds */
static __thread struct shard *t_shard;
static __thread bool t_shared;

static unsigned
lookup(const char *path)
{
	unsigned n = atomic_load_explicit(&g_n_methods, memory_order_acquire);

	if (path == NULL)
		return 0;
	for (unsigned i = 1; i < n; i++)
		if (g_methods[i].path == path)
			return i;
	return CP_RPC_STATS_METHODS;
}

void
cp_rpc_stats_register(const char *path, bool streaming)
{
	const char *slash;
	unsigned n;

	if (path == NULL || lookup(path) != CP_RPC_STATS_METHODS)
		return;
	pthread_mutex_lock(&g_lock);
	n = atomic_load_explicit(&g_n_methods, memory_order_relaxed);
	if (lookup(path) == CP_RPC_STATS_METHODS && n < CP_RPC_STATS_METHODS) {
		struct method *m = &g_methods[n];

		/* "/corepipe.v1.Pipeline/Execute": service, then method. */
		slash = strrchr(path, '/');
		snprintf(m->service, sizeof(m->service), "%.*s",
			 slash && slash > path ? (int)(slash - path - 1) : 0, path + 1);
		snprintf(m->name, sizeof(m->name), "%s", slash ? slash + 1 : path);
		m->streaming = streaming;
		m->path = path;
		/* Release: the slot's contents before the count that makes it visible. */
		atomic_store_explicit(&g_n_methods, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&g_lock);
}

/* This thread's shard, taken on first use; NULL: use the shared one. */
static struct shard *
my_shard(void)
{
	unsigned i;

	if (likely(t_shard != NULL) || t_shared)
		return t_shard;
	i = atomic_fetch_add_explicit(&g_n_shards, 1, memory_order_relaxed);
	if (i < CP_RPC_STATS_SHARDS)
		t_shard = &g_shards[i];
	else
		t_shared = true;
	return t_shard;
}

void
cp_rpc_stats_handled(const char *path, bool streaming, grpc_status_code code)
{
	unsigned m = lookup(path);
	unsigned c = (unsigned)code < CP_RPC_STATS_CODES ? (unsigned)code : GRPC_STATUS_UNKNOWN;
	struct shard *s;

	if (m == CP_RPC_STATS_METHODS) {
		/* First call of a method nobody registered: register it (once, under the lock). */
		cp_rpc_stats_register(path, streaming);
		m = lookup(path);
		if (m == CP_RPC_STATS_METHODS)
			m = 0; /* table full */
	}
	s = my_shard();
	if (s != NULL)
		/* Single writer per shard: relaxed load and store; readers load relaxed. */
		__atomic_store_n(&s->n[m][c], s->n[m][c] + 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&g_shared.n[m][c], 1, __ATOMIC_RELAXED);
}

static uint64_t
sum(unsigned m, unsigned c)
{
	unsigned ns = atomic_load_explicit(&g_n_shards, memory_order_relaxed);
	uint64_t v = __atomic_load_n(&g_shared.n[m][c], __ATOMIC_RELAXED);

	if (ns > CP_RPC_STATS_SHARDS)
		ns = CP_RPC_STATS_SHARDS;
	for (unsigned i = 0; i < ns; i++)
		v += __atomic_load_n(&g_shards[i].n[m][c], __ATOMIC_RELAXED);
	return v;
}

void
cp_rpc_stats_for_each(cp_rpc_stats_fn fn, void *arg)
{
	unsigned n = atomic_load_explicit(&g_n_methods, memory_order_acquire);

	for (unsigned m = 0; m < n; m++) {
		const struct method *me = &g_methods[m];

		for (unsigned c = 0; c < CP_RPC_STATS_CODES; c++) {
			uint64_t v = sum(m, c);

			/* Slot 0 (unknown methods) only once it has calls. */
			if (v != 0 || (c == GRPC_STATUS_OK && m != 0))
				fn(me->service, me->name, me->streaming ? "bidi_stream" : "unary",
				   (grpc_status_code)c, v, arg);
		}
	}
}

uint64_t
cp_rpc_stats_total(const char *path)
{
	unsigned m = lookup(path);
	uint64_t v = 0;

	if (m == CP_RPC_STATS_METHODS)
		return 0;
	for (unsigned c = 0; c < CP_RPC_STATS_CODES; c++)
		v += sum(m, c);
	return v;
}

/**
 * @file
 * The pipeline registry: names to compiled pipelines, in an RCU-protected lock-free hash table
 * (liburcu urcu-qsbr + rculfhash).
 *
 * Readers (workers) look a name up with no lock, no atomic read-modify-write and no store to
 * shared memory: in the QSBR flavour the read side is free, and a pointer found stays valid
 * until the reader's next quiescent state (urcu_qsbr_quiescent_state(), or going offline).
 * Writers (control plane) serialise among themselves with a mutex, publish a new version with
 * cds_lfht_add_replace() (readers see the old or the new pipeline, never neither), and drop the
 * registry's reference on the old one from call_rcu(), after a grace period.
 *
 * Each name also has a small integer id, stable while the name exists (a replace keeps it;
 * delete frees it for reuse), with an id-indexed table for the UDP front end.
 *
 * Context: see each function. Every thread that calls a lookup must be a registered urcu-qsbr
 * reader and online. Ownership: the registry holds one reference on each published pipeline.
 */
#ifndef COREPIPE_DP_REGISTRY_H
#define COREPIPE_DP_REGISTRY_H

#include "dataplane/pipeline.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <urcu-qsbr.h> /* before rculfhash.h: selects the QSBR flavour */
#include <urcu/rculfhash.h>

/*
 * ThreadSanitizer cannot see the ordering that liburcu provides inside its (uninstrumented)
 * library: rcu_assign_pointer/rcu_dereference in rculfhash, and grace periods. Under
 * COREPIPE_TSAN these annotations state those edges explicitly; otherwise they compile to
 * nothing. Publication: release on the pipeline before it is published, acquire after a
 * lookup returns it. Grace period: every reader releases a shared token at each quiescent
 * state; the call_rcu callback acquires it before it drops the registry's reference.
 */
#ifdef COREPIPE_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define DP_TSAN_ACQUIRE(a) __tsan_acquire((void *)(a))
#define DP_TSAN_RELEASE(a) __tsan_release((void *)(a))
#else
#define DP_TSAN_ACQUIRE(a) ((void)0)
#define DP_TSAN_RELEASE(a) ((void)0)
#endif
extern int dp_rcu_qs_token;

/**
 * Report a quiescent state: every pointer this thread looked up is dead after it.
 * Context: registered, online urcu-qsbr reader.
 */
static inline void
dp_rcu_quiescent_state(void)
{
	DP_TSAN_RELEASE(&dp_rcu_qs_token);
	urcu_qsbr_quiescent_state();
}

/** Go offline (an extended quiescent state) before blocking. */
static inline void
dp_rcu_thread_offline(void)
{
	DP_TSAN_RELEASE(&dp_rcu_qs_token);
	urcu_qsbr_thread_offline();
}

/** Most pipelines a registry holds; ids are 1..DP_REGISTRY_MAX. */
#define DP_REGISTRY_MAX 4096

struct dp_registry {
	struct cds_lfht *ht;
	/* Written by writers under lock; read by readers through rcu_dereference. */
	struct dp_pipeline *by_id[DP_REGISTRY_MAX + 1];
	pthread_mutex_t lock;  /**< serialises writers; never taken by readers */
	uint64_t next_version; /**< under lock */
	unsigned count;	       /**< under lock */
};

/** What a put did. */
struct dp_registry_info {
	uint32_t id;
	uint64_t version;
	int replaced; /**< 1 when an older version was replaced */
};

/**
 * Call @p fn with the id and name of every published pipeline, under the writer lock (so no
 * RCU read side is needed: a pipeline in the id table is not released while the lock is held).
 * @p fn must not call into the registry. Context: control threads (metrics scrape).
 */
void dp_registry_names(struct dp_registry *r, void (*fn)(uint32_t id, const char *name, void *arg),
		       void *arg);

/**
 * Create an empty registry.
 * @return the registry or NULL with errno ENOMEM.
 * Context: control plane. Ownership: destroy with dp_registry_destroy().
 */
struct dp_registry *dp_registry_create(void);

/**
 * Unpublish everything and free the registry. Accepts NULL. Waits for pending call_rcu
 * callbacks (rcu_barrier), so the caller must be offline or unregistered.
 * Context: control plane, after workers stopped.
 */
void dp_registry_destroy(struct dp_registry *r);

/**
 * Publish @p p under p->spec->name, replacing any pipeline of that name atomically. A new
 * name gets the lowest free id; a replace keeps the id. Versions increase on every put.
 *
 * @return 0 with @p info filled in, or -ENOSPC (DP_REGISTRY_MAX names) or -EINVAL (bad name).
 * Context: control plane; the caller need not be an RCU reader.
 * Ownership: consumes the caller's reference on @p p, on success and on failure.
 */
int dp_registry_put(struct dp_registry *r, struct dp_pipeline *p, struct dp_registry_info *info);

/**
 * dp_registry_put() with the id and version chosen by the caller (a registry restored from a
 * state file, or versions that come from an external store).
 *
 * @param id      0: the registry picks (the name's id, or the lowest free one); else the id the
 *                pipeline must have: free, or already the name's own id
 * @param version 0: the next version; else this version, and the registry's next version
 *                moves past it (versions never go back)
 * @return 0 with @p info filled in, -EEXIST (@p id held by another name, or the name holds
 * another id), -ENOSPC or -EINVAL.
 * Context: control plane; the caller need not be an RCU reader.
 * Ownership: consumes the caller's reference on @p p, on success and on failure.
 */
int dp_registry_put_at(struct dp_registry *r, struct dp_pipeline *p, uint32_t id, uint64_t version,
		       struct dp_registry_info *info);

/**
 * The id and version a dp_registry_put() of @p name would get now. Exact only while no other
 * writer runs between this call and the put (a store that writes ahead of the registry is the
 * registry's only writer: control/store.h).
 * @return 0, -ENOSPC (a new name and no free id) or -EINVAL (bad name).
 * Context: control plane; the caller need not be an RCU reader.
 */
int dp_registry_plan(struct dp_registry *r, const char *name, uint32_t *id, uint64_t *version);

/** What dp_registry_sync_file() did with one pipeline of its list. */
enum dp_registry_outcome {
	DP_REG_UNCHANGED = 0, /**< a file pipeline with the same spec was there: kept as it was */
	DP_REG_ADDED = 1,     /**< a new name */
	DP_REG_REPLACED = 2,  /**< replaced the pipeline of that name (file or API) */
};

/**
 * Make the registry's file pipelines (from_file) the @p n pipelines @p ps, all or nothing, in
 * one hold of the writer lock (so no other writer interleaves with the check):
 *   - a name whose published pipeline is a file pipeline with an equal spec stays as it is;
 *   - other names are published (added, or replacing whatever had the name: the file wins);
 *   - file pipelines whose name is not in @p ps are unpublished (@p removed_fn is called
 *     with each name, under the lock: it must not call into the registry).
 * The capacity is checked first: when the names left after the removals plus the new ones
 * would exceed DP_REGISTRY_MAX, nothing changes and -ENOSPC is returned. With @p dry_run only
 * that check runs (nothing changes, nothing is consumed, @p outcome is not written).
 * Readers see each name switch atomically, one after the other (not the whole set at once).
 *
 * @param ps      distinct names, each p->from_file set; valid names (checked: -EINVAL)
 * @param outcome n entries, filled in on success
 * @return 0, -ENOSPC (registry full: nothing changed), -EINVAL (an invalid name: nothing
 * changed) or -ENOMEM.
 * Context: control plane; the caller need not be an RCU reader.
 * Ownership: on success (not a dry run) every reference in @p ps is consumed (published, or
 * dropped for the unchanged ones); on failure none is.
 */
int dp_registry_sync_file(struct dp_registry *r, struct dp_pipeline *const *ps, unsigned n,
			  bool dry_run, uint8_t *outcome,
			  void (*removed_fn)(const char *name, void *arg), void *arg);

/**
 * Unpublish @p name; its pipeline is released after a grace period.
 * @return 0, or -ENOENT when no such name.
 * Context: control plane.
 */
int dp_registry_delete(struct dp_registry *r, const char *name);

/**
 * Call @p fn for each published pipeline, in no particular order, holding a reference on each
 * during the call (so @p fn may block or allocate).
 * @return 0, or the first non-zero value @p fn returned (iteration stops there).
 * Context: control plane, RCU reader registered (online or offline; this goes online itself).
 */
int dp_registry_for_each(struct dp_registry *r, int (*fn)(struct dp_pipeline *p, void *arg),
			 void *arg);

/**
 * Find a pipeline by name and take a reference to it.
 * @return the pipeline (caller must dp_pipeline_unref) or NULL.
 * Context: control plane, RCU reader registered (this goes online itself).
 */
struct dp_pipeline *dp_registry_get(struct dp_registry *r, const char *name);

/* Hot path: per request, worker lcores. No locks, syscalls, allocation or logging. */

static inline int
dp_registry_match(struct cds_lfht_node *node, const void *key)
{
	const struct dp_pipeline *p = caa_container_of(node, struct dp_pipeline, node);

	/* rculfhash hands us a node it found with rcu_dereference: see DP_TSAN_ACQUIRE. */
	DP_TSAN_ACQUIRE(p);
	return strcmp(p->name, (const char *)key) == 0;
}

/**
 * Look @p name (hash @p hash = dp_name_hash(name)) up.
 * @return the published pipeline, valid until the caller's next quiescent state, or NULL.
 * Context: registered, online urcu-qsbr reader (a worker). No reference is taken.
 */
static inline const struct dp_pipeline *
dp_registry_lookup(struct dp_registry *r, const char *name, uint32_t hash)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	cds_lfht_lookup(r->ht, hash, dp_registry_match, name, &it);
	n = cds_lfht_iter_get_node(&it);
	if (n == NULL)
		return NULL;
	DP_TSAN_ACQUIRE(caa_container_of(n, struct dp_pipeline, node));
	return caa_container_of(n, struct dp_pipeline, node);
}

/**
 * Look a pipeline up by id. Same validity rules as dp_registry_lookup().
 */
static inline const struct dp_pipeline *
dp_registry_lookup_id(struct dp_registry *r, uint32_t id)
{
	if (id == 0 || id > DP_REGISTRY_MAX)
		return NULL;
	/* Consume: pairs with rcu_assign_pointer() in dp_registry_put(). */
	const struct dp_pipeline *p = rcu_dereference(r->by_id[id]);

	if (p != NULL)
		DP_TSAN_ACQUIRE(p);
	return p;
}

#endif

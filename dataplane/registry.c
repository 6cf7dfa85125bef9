/*
 * The RCU-protected pipeline registry.
 *
 * Writers hold r->lock, so at most one writer changes the table or the id array at a time; the
 * lock-free hash table then only has to be safe against concurrent readers, which is what
 * rculfhash gives. Publication order: a pipeline is fully built (compiled, linked fields set)
 * before cds_lfht_add_replace() publishes it; rculfhash's publication is a release that pairs
 * with the reader's rcu_dereference in cds_lfht_lookup(), so a reader never sees a half-built
 * pipeline. Unpublished pipelines are released from call_rcu(), i.e. after every reader has
 * passed a quiescent state, so a reader's pointer stays valid for the rest of its iteration.
 */
#include "dataplane/registry.h"

#include <errno.h>
#include <stdlib.h>

struct dp_registry *
dp_registry_create(void)
{
	struct dp_registry *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->ht = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (r->ht == NULL) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->next_version = 1;
	return r;
}

int dp_rcu_qs_token;

static void
release_cb(struct rcu_head *head)
{
	/* After a grace period: every reader's quiescent state happened before this. */
	DP_TSAN_ACQUIRE(&dp_rcu_qs_token);
	dp_pipeline_unref(caa_container_of(head, struct dp_pipeline, rcu));
}

static unsigned
lowest_free_id(const struct dp_registry *r)
{
	for (unsigned id = 1; id <= DP_REGISTRY_MAX; id++)
		if (r->by_id[id] == NULL)
			return id;
	return 0;
}

/* Caller holds r->lock and is an online reader (for the hash table walk). */
static struct dp_pipeline *
find_locked(struct dp_registry *r, const char *name, uint32_t hash)
{
	return (struct dp_pipeline *)dp_registry_lookup(r, name, hash);
}

/*
 * Publish @p p (name and hash set) under the lock, online. @return 0, -ENOSPC (no free id) or
 * -EEXIST (@p want_id given and held by another name, or the name holds another id); p
 * untouched on failure. @p want_id / @p want_version 0: the registry picks (the name's id or
 * the lowest free one; the next version). *old is the pipeline it replaced, for call_rcu after
 * the unlock, or NULL.
 */
static int
put_locked(struct dp_registry *r, struct dp_pipeline *p, uint32_t want_id, uint64_t want_version,
	   struct dp_pipeline **old_out)
{
	struct dp_pipeline *old = find_locked(r, p->name, p->hash);
	struct cds_lfht_node *ret;

	if (want_id != 0 && (want_id > DP_REGISTRY_MAX || (old != NULL && old->id != want_id) ||
			     (old == NULL && r->by_id[want_id] != NULL)))
		return -EEXIST;
	if (old != NULL) {
		p->id = old->id;
	} else {
		p->id = want_id != 0 ? want_id : lowest_free_id(r);
		if (p->id == 0)
			return -ENOSPC;
		r->count++;
	}
	if (want_version != 0) {
		p->version = want_version;
		if (want_version >= r->next_version)
			r->next_version = want_version + 1;
	} else {
		p->version = r->next_version++;
	}
	/* Publish: add_replace's release pairs with the lookup's rcu_dereference. */
	DP_TSAN_RELEASE(p);
	ret = cds_lfht_add_replace(r->ht, p->hash, dp_registry_match, p->name, &p->node);
	rcu_assign_pointer(r->by_id[p->id], p);
	*old_out = ret != NULL ? caa_container_of(ret, struct dp_pipeline, node) : NULL;
	return 0;
}

static void
set_name(struct dp_pipeline *p)
{
	strcpy(p->name, p->spec->name);
	p->hash = dp_name_hash(p->name, strlen(p->name));
}

int
dp_registry_put_at(struct dp_registry *r, struct dp_pipeline *p, uint32_t id, uint64_t version,
		   struct dp_registry_info *info)
{
	struct dp_pipeline *old = NULL;
	int was_online = urcu_qsbr_read_ongoing();
	int rc;

	if (!dp_pipeline_name_valid(p->spec->name)) {
		dp_pipeline_unref(p);
		return -EINVAL;
	}
	set_name(p);

	pthread_mutex_lock(&r->lock);
	if (!was_online)
		urcu_qsbr_thread_online();
	rc = put_locked(r, p, id, version, &old);
	if (!was_online)
		dp_rcu_thread_offline();
	if (rc == 0) {
		info->id = p->id;
		info->version = p->version;
		info->replaced = old != NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc != 0) {
		dp_pipeline_unref(p);
		return rc;
	}
	if (old != NULL)
		urcu_qsbr_call_rcu(&old->rcu, release_cb);
	return 0;
}

int
dp_registry_put(struct dp_registry *r, struct dp_pipeline *p, struct dp_registry_info *info)
{
	return dp_registry_put_at(r, p, 0, 0, info);
}

int
dp_registry_plan(struct dp_registry *r, const char *name, uint32_t *id, uint64_t *version)
{
	int was_online = urcu_qsbr_read_ongoing();
	const struct dp_pipeline *old;
	int rc = 0;

	if (!dp_pipeline_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (!was_online)
		urcu_qsbr_thread_online();
	old = find_locked(r, name, dp_name_hash(name, strlen(name)));
	*id = old != NULL ? old->id : lowest_free_id(r);
	*version = r->next_version;
	if (*id == 0)
		rc = -ENOSPC;
	if (!was_online)
		dp_rcu_thread_offline();
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- Syncing the file's pipelines ---------------------------------------------------------- */

static int
cmp_name(const void *a, const void *b)
{
	const struct dp_pipeline *x = *(struct dp_pipeline *const *)a;
	const struct dp_pipeline *y = *(struct dp_pipeline *const *)b;

	return strcmp(x->name, y->name);
}

/* Is @p name among the @p n pipelines of @p sorted (by name)? */
static bool
in_sorted(struct dp_pipeline *const *sorted, unsigned n, const char *name)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = strcmp(sorted[mid]->name, name);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int
dp_registry_sync_file(struct dp_registry *r, struct dp_pipeline *const *ps, unsigned n,
		      bool dry_run, uint8_t *outcome,
		      void (*removed_fn)(const char *name, void *arg), void *arg)
{
	struct dp_pipeline **sorted = NULL, **dead = NULL;
	unsigned n_dead = 0, removable = 0, fresh = 0;
	int was_online = urcu_qsbr_read_ongoing();
	int rc = 0;

	for (unsigned i = 0; i < n; i++)
		if (!dp_pipeline_name_valid(ps[i]->spec->name))
			return -EINVAL;
	sorted = calloc(n + 1, sizeof(*sorted));
	/* Everything that may be released: the removed ones and the replaced ones. */
	dead = calloc((size_t)DP_REGISTRY_MAX + n + 1, sizeof(*dead));
	if (sorted == NULL || dead == NULL) {
		free(sorted);
		free(dead);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		set_name(ps[i]);
		sorted[i] = ps[i];
	}
	qsort(sorted, n, sizeof(*sorted), cmp_name);

	pthread_mutex_lock(&r->lock);
	if (!was_online)
		urcu_qsbr_thread_online();
	/* 1. Capacity, before anything changes: names that stay + new names <= the maximum. */
	for (uint32_t id = 1; id <= DP_REGISTRY_MAX; id++) {
		const struct dp_pipeline *p = r->by_id[id];

		if (p != NULL && p->from_file && !in_sorted(sorted, n, p->name))
			removable++;
	}
	for (unsigned i = 0; i < n; i++)
		if (find_locked(r, ps[i]->name, ps[i]->hash) == NULL)
			fresh++;
	if ((uint64_t)r->count - removable + fresh > DP_REGISTRY_MAX)
		rc = -ENOSPC;
	if (rc != 0 || dry_run)
		goto out_unlock;
	/* 2. Removals first: their ids are free for the new names. */
	for (uint32_t id = 1; id <= DP_REGISTRY_MAX; id++) {
		struct dp_pipeline *p = r->by_id[id];

		if (p == NULL || !p->from_file || in_sorted(sorted, n, p->name))
			continue;
		if (cds_lfht_del(r->ht, &p->node) != 0)
			continue;
		rcu_assign_pointer(r->by_id[id], NULL);
		r->count--;
		if (removed_fn != NULL)
			removed_fn(p->name, arg);
		dead[n_dead++] = p;
	}
	/* 3. Puts: cannot run out of ids now (checked in 1 under the same lock hold). */
	for (unsigned i = 0; i < n; i++) {
		struct dp_pipeline *cur = find_locked(r, ps[i]->name, ps[i]->hash);
		struct dp_pipeline *old = NULL;

		if (cur != NULL && cur->from_file && dp_spec_equal(cur->spec, ps[i]->spec)) {
			outcome[i] = DP_REG_UNCHANGED;
			continue;
		}
		if (put_locked(r, ps[i], 0, 0, &old) != 0) {
			/* Not reachable (capacity checked); keep the invariant anyway. */
			outcome[i] = DP_REG_UNCHANGED;
			continue;
		}
		outcome[i] = old != NULL ? DP_REG_REPLACED : DP_REG_ADDED;
		if (old != NULL)
			dead[n_dead++] = old;
	}
out_unlock:
	if (!was_online)
		dp_rcu_thread_offline();
	pthread_mutex_unlock(&r->lock);
	if (rc == 0 && !dry_run) {
		for (unsigned i = 0; i < n_dead; i++)
			urcu_qsbr_call_rcu(&dead[i]->rcu, release_cb);
		/* The unchanged ones' references were not taken by the table. */
		for (unsigned i = 0; i < n; i++)
			if (outcome[i] == DP_REG_UNCHANGED)
				dp_pipeline_unref(ps[i]);
	}
	free(sorted);
	free(dead);
	return rc;
}

int
dp_registry_delete(struct dp_registry *r, const char *name)
{
	struct dp_pipeline *old;
	int was_online = urcu_qsbr_read_ongoing();
	int rc = 0;

	if (!dp_pipeline_name_valid(name))
		return -ENOENT;
	pthread_mutex_lock(&r->lock);
	if (!was_online)
		urcu_qsbr_thread_online();
	old = find_locked(r, name, dp_name_hash(name, strlen(name)));
	if (old == NULL || cds_lfht_del(r->ht, &old->node) != 0) {
		rc = -ENOENT;
	} else {
		rcu_assign_pointer(r->by_id[old->id], NULL);
		r->count--;
	}
	if (!was_online)
		dp_rcu_thread_offline();
	pthread_mutex_unlock(&r->lock);
	if (rc == 0)
		urcu_qsbr_call_rcu(&old->rcu, release_cb);
	return rc;
}

struct dp_pipeline *
dp_registry_get(struct dp_registry *r, const char *name)
{
	struct dp_pipeline *p;
	int was_online = urcu_qsbr_read_ongoing();

	if (!dp_pipeline_name_valid(name))
		return NULL;
	if (!was_online)
		urcu_qsbr_thread_online();
	p = (struct dp_pipeline *)dp_registry_lookup(r, name, dp_name_hash(name, strlen(name)));
	/* The reference is taken before our next quiescent state, so p cannot have been
	 * released yet: its release waits for a grace period that includes us. */
	if (p != NULL)
		dp_pipeline_ref(p);
	if (!was_online)
		dp_rcu_thread_offline();
	return p;
}

void
dp_registry_names(struct dp_registry *r, void (*fn)(uint32_t id, const char *name, void *arg),
		  void *arg)
{
	pthread_mutex_lock(&r->lock);
	for (uint32_t id = 1; id <= DP_REGISTRY_MAX; id++)
		if (r->by_id[id] != NULL)
			fn(id, r->by_id[id]->name, arg);
	pthread_mutex_unlock(&r->lock);
}

int
dp_registry_for_each(struct dp_registry *r, int (*fn)(struct dp_pipeline *p, void *arg), void *arg)
{
	struct dp_pipeline **snap;
	struct cds_lfht_iter it;
	struct dp_pipeline *p;
	unsigned n = 0, cap;
	int rc = 0;

	/* Snapshot under the writer lock (so the count is exact), with references, then call
	 * fn outside both the lock and the read side. */
	pthread_mutex_lock(&r->lock);
	cap = r->count;
	snap = calloc(cap ? cap : 1, sizeof(*snap));
	if (snap == NULL) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	if (!urcu_qsbr_read_ongoing()) {
		urcu_qsbr_thread_online();
		cds_lfht_for_each_entry (r->ht, &it, p, node) {
			if (n < cap) {
				dp_pipeline_ref(p);
				snap[n++] = p;
			}
		}
		dp_rcu_thread_offline();
	} else {
		cds_lfht_for_each_entry (r->ht, &it, p, node) {
			if (n < cap) {
				dp_pipeline_ref(p);
				snap[n++] = p;
			}
		}
	}
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < n; i++) {
		if (rc == 0)
			rc = fn(snap[i], arg);
		dp_pipeline_unref(snap[i]);
	}
	free(snap);
	return rc;
}

void
dp_registry_destroy(struct dp_registry *r)
{
	struct cds_lfht_iter it;
	struct dp_pipeline *p;
	int was_online;

	if (r == NULL)
		return;
	was_online = urcu_qsbr_read_ongoing();
	if (!was_online)
		urcu_qsbr_thread_online();
	cds_lfht_for_each_entry (r->ht, &it, p, node) {
		if (cds_lfht_del(r->ht, &p->node) == 0)
			urcu_qsbr_call_rcu(&p->rcu, release_cb);
	}
	dp_rcu_thread_offline();
	/* Every callback, ours and rculfhash's, has run once this returns. */
	urcu_qsbr_barrier();
	cds_lfht_destroy(r->ht, NULL);
	if (was_online)
		urcu_qsbr_thread_online();
	pthread_mutex_destroy(&r->lock);
	free(r);
}

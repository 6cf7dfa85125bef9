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

int
dp_registry_put(struct dp_registry *r, struct dp_pipeline *p, struct dp_registry_info *info)
{
	struct dp_pipeline *old;
	struct cds_lfht_node *ret;
	const char *name = p->spec->name;
	int was_online = urcu_qsbr_read_ongoing();

	if (!dp_pipeline_name_valid(name)) {
		dp_pipeline_unref(p);
		return -EINVAL;
	}
	strcpy(p->name, name);
	p->hash = dp_name_hash(p->name, strlen(p->name));

	pthread_mutex_lock(&r->lock);
	if (!was_online)
		urcu_qsbr_thread_online();
	old = find_locked(r, p->name, p->hash);
	if (old != NULL) {
		p->id = old->id;
	} else {
		p->id = lowest_free_id(r);
		if (p->id == 0) {
			if (!was_online)
				dp_rcu_thread_offline();
			pthread_mutex_unlock(&r->lock);
			dp_pipeline_unref(p);
			return -ENOSPC;
		}
		r->count++;
	}
	p->version = r->next_version++;
	/* Publish: add_replace's release pairs with the lookup's rcu_dereference. */
	DP_TSAN_RELEASE(p);
	ret = cds_lfht_add_replace(r->ht, p->hash, dp_registry_match, p->name, &p->node);
	rcu_assign_pointer(r->by_id[p->id], p);
	if (!was_online)
		dp_rcu_thread_offline();
	info->id = p->id;
	info->version = p->version;
	info->replaced = ret != NULL;
	pthread_mutex_unlock(&r->lock);
	if (ret != NULL)
		urcu_qsbr_call_rcu(&caa_container_of(ret, struct dp_pipeline, node)->rcu,
				   release_cb);
	return 0;
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

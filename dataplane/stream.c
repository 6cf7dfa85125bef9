/*
 * Stream slots (see stream.h).
 */
#include "dataplane/stream.h"

#include "dataplane/dataplane.h"

#include <errno.h>
#include <string.h>

int
dp_stream_open(struct dp_dataplane *dp, struct dp_pipeline *p, int worker, uint64_t allowed,
	       struct dp_stream **out)
{
	struct dp_stream *s;
	void *obj;
	int best = -1;

	if (worker >= 0) {
		best = worker < (int)dp->n_workers ? worker : -1;
	} else {
		unsigned best_free = 0;
		uint64_t best_load = UINT64_MAX;

		for (unsigned i = 0; i < dp->n_workers; i++) {
			unsigned avail = rte_mempool_avail_count(dp->stream_pool[i]);
			uint64_t load = dp_worker_in_flight(dp->workers[i]);

			if ((allowed & (1ull << i)) == 0 || avail == 0)
				continue;
			if (avail > best_free || (avail == best_free && load < best_load)) {
				best = (int)i;
				best_free = avail;
				best_load = load;
			}
		}
	}
	if (best < 0 || rte_mempool_get(dp->stream_pool[best], &obj) != 0)
		return -ENOSPC;
	s = obj;
	s->mp = dp->stream_pool[best];
	s->p = p;
	dp_pipeline_ref(p);
	memset(&s->in, 0, sizeof(s->in));
	s->worker = (uint16_t)best;
	s->n_inited = 0;
	s->deferred = 0;
	*out = s;
	return 0;
}

static void
fini_nodes(struct dp_stream *s)
{
	const struct dp_pipeline *p = s->p;

	for (unsigned i = s->n_inited; i-- > 0;) {
		const struct dp_node_type *t = p->nodes[i].type;

		if (t->state_size != 0 && t->fini != NULL)
			t->fini(p->nodes[i].conf, s->state + p->nodes[i].state_off);
	}
	s->n_inited = 0;
}

int
dp_stream_init(struct dp_stream *s, const struct dp_format *in, struct dp_err *err)
{
	const struct dp_pipeline *p = s->p;
	struct dp_format fmts[DP_NODES_HARD_MAX + 1];

	if (dp_format_check(in, 0, err) != DP_OK)
		return -EINVAL;
	if (dp_pipeline_formats(p, in, fmts, err) != 0)
		return -EINVAL;
	s->in = *in;
	if (p->state_size == 0)
		return 0;
	memset(s->state, 0, p->state_size);
	for (unsigned i = 0; i < p->n_nodes; i++) {
		const struct dp_node_type *t = p->nodes[i].type;
		struct dp_err nerr = {0};
		int rc;

		if (t->state_size != 0) {
			rc = t->init(p->nodes[i].conf, s->state + p->nodes[i].state_off, &fmts[i],
				     &nerr);
			if (rc != 0) {
				fini_nodes(s);
				dp_err_set(err,
					   rc == -ENOMEM ? DP_RESOURCE_EXHAUSTED
							 : DP_INVALID_ARGUMENT,
					   "node %u (%s): %s", i, t->name, nerr.msg);
				return rc;
			}
		}
		s->n_inited = (uint16_t)(i + 1);
	}
	return 0;
}

void
dp_stream_reset(struct dp_stream *s)
{
	const struct dp_pipeline *p = s->p;

	for (unsigned i = 0; i < s->n_inited; i++) {
		const struct dp_node_type *t = p->nodes[i].type;

		if (t->state_size != 0 && t->reset != NULL)
			t->reset(p->nodes[i].conf, s->state + p->nodes[i].state_off);
	}
}

void
dp_stream_fini(struct dp_stream *s)
{
	fini_nodes(s);
	dp_pipeline_unref(s->p);
	s->p = NULL;
}

void
dp_stream_close(struct dp_stream *s)
{
	if (s == NULL)
		return;
	dp_stream_fini(s);
	rte_mempool_put(s->mp, s);
}

unsigned
dp_stream_count(const struct dp_dataplane *dp, unsigned worker)
{
	return rte_mempool_in_use_count(dp->stream_pool[worker]);
}

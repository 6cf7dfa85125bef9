/*
 * protobuf-c <-> dataplane conversions. Views borrow strings instead of copying them: the
 * compiler (dp_pipeline_compile) takes its own deep copy, and replies are packed before the
 * borrowed-from objects are released.
 */
#include "control/pbconv.h"

#include <errno.h>
#include <stdlib.h>

int
cp_spec_view(const Corepipe__V1__PipelineSpec *in, struct dp_spec *out)
{
	out->name = in->name;
	out->n_nodes = 0;
	out->nodes = NULL;
	if (in->n_nodes == 0)
		return 0;
	out->nodes = calloc(in->n_nodes, sizeof(*out->nodes));
	if (out->nodes == NULL)
		return -ENOMEM;
	out->n_nodes = (unsigned)in->n_nodes;
	for (size_t i = 0; i < in->n_nodes; i++) {
		const Corepipe__V1__NodeSpec *n = in->nodes[i];
		struct dp_node_spec *d = &out->nodes[i];

		d->type = n->type;
		if (n->n_params == 0)
			continue;
		d->params = calloc(n->n_params, sizeof(*d->params));
		if (d->params == NULL) {
			cp_spec_view_free(out);
			return -ENOMEM;
		}
		d->n_params = (unsigned)n->n_params;
		for (size_t j = 0; j < n->n_params; j++) {
			d->params[j].key = n->params[j]->key;
			d->params[j].value = n->params[j]->value;
		}
	}
	return 0;
}

void
cp_spec_view_free(struct dp_spec *v)
{
	for (unsigned i = 0; i < v->n_nodes; i++)
		free(v->nodes[i].params);
	free(v->nodes);
	v->nodes = NULL;
	v->n_nodes = 0;
}

int
cp_pb_spec_from(const struct dp_spec *s, Corepipe__V1__PipelineSpec *out)
{
	corepipe__v1__pipeline_spec__init(out);
	out->name = s->name;
	if (s->n_nodes == 0)
		return 0;
	out->nodes = calloc(s->n_nodes, sizeof(*out->nodes));
	if (out->nodes == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < s->n_nodes; i++) {
		const struct dp_node_spec *n = &s->nodes[i];
		/* One allocation per node: the message, its entry pointers and its entries. */
		size_t sz = sizeof(Corepipe__V1__NodeSpec) +
			    n->n_params * (sizeof(Corepipe__V1__NodeSpec__ParamsEntry *) +
					   sizeof(Corepipe__V1__NodeSpec__ParamsEntry));
		Corepipe__V1__NodeSpec *m = calloc(1, sz);
		Corepipe__V1__NodeSpec__ParamsEntry **ptrs;
		Corepipe__V1__NodeSpec__ParamsEntry *ents;

		if (m == NULL) {
			out->n_nodes = i;
			cp_pb_spec_free(out);
			return -ENOMEM;
		}
		corepipe__v1__node_spec__init(m);
		ptrs = (void *)(m + 1);
		ents = (void *)(ptrs + n->n_params);
		m->type = n->type;
		m->n_params = n->n_params;
		m->params = n->n_params ? ptrs : NULL;
		for (unsigned j = 0; j < n->n_params; j++) {
			corepipe__v1__node_spec__params_entry__init(&ents[j]);
			ents[j].key = n->params[j].key;
			ents[j].value = n->params[j].value;
			ptrs[j] = &ents[j];
		}
		out->nodes[i] = m;
	}
	out->n_nodes = s->n_nodes;
	return 0;
}

void
cp_pb_spec_free(Corepipe__V1__PipelineSpec *m)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		free(m->nodes[i]);
	free(m->nodes);
	m->nodes = NULL;
	m->n_nodes = 0;
}

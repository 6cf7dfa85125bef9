/*
 * protobuf-c <-> dataplane conversions. Views borrow strings instead of copying them: the
 * compiler (dp_pipeline_compile) takes its own deep copy, and replies are packed before the
 * borrowed-from objects are released.
 */
#include "control/pbconv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== Strict unpacking ====================================================================== */

struct rec {
	void *p;
	size_t n;
};

struct recorder {
	struct rec *v;
	size_t n, cap;
	bool lost; /* an allocation could not be recorded: the check cannot be trusted */
};

static void *
rec_alloc(void *data, size_t size)
{
	struct recorder *r = data;
	void *p = malloc(size);

	if (p == NULL)
		return NULL;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct rec *v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL) {
			r->lost = true;
			return p;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = (struct rec){p, size};
	return p;
}

static void
rec_free(void *data, void *p)
{
	struct recorder *r = data;

	/* Rare during an unpack (a repeated scalar string field, or the unwind of a failure). */
	for (size_t i = r->n; i-- > 0;)
		if (r->v[i].p == p) {
			r->v[i] = r->v[--r->n];
			break;
		}
	free(p);
}

static int
rec_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct rec *)a)->p,
		  y = (uintptr_t)((const struct rec *)b)->p;

	return x < y ? -1 : x > y;
}

/* Allocation size of @p p, or 0 when it was not allocated by the unpack (a default). */
static size_t
rec_size(const struct recorder *r, const void *p)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->v[mid].p == p)
			return r->v[mid].n;
		if ((uintptr_t)r->v[mid].p < (uintptr_t)p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Path of the field being checked, for the error message. */
struct walk {
	const struct recorder *r;
	char path[192];
	char *err;
	size_t errlen;
};

static int
check_string(struct walk *w, const char *s, size_t plen)
{
	size_t n = rec_size(w->r, s);
	const char *nul;

	if (s == NULL || n == 0)
		return 0;
	nul = memchr(s, '\0', n - 1);
	if (nul == NULL)
		return 0;
	w->path[plen] = '\0';
	snprintf(w->err, w->errlen, "%s: a NUL byte at offset %zu (text fields may not hold one)",
		 w->path, (size_t)(nul - s));
	return -EINVAL;
}

static int walk_message(struct walk *w, const ProtobufCMessage *m, size_t plen, unsigned depth);

/* Append ".name" or ".name[i]" to the path at @p plen; returns the new length. */
static size_t
path_push(struct walk *w, size_t plen, const char *name, long idx)
{
	int k;

	if (idx < 0)
		k = snprintf(w->path + plen, sizeof(w->path) - plen, "%s%s", plen ? "." : "", name);
	else
		k = snprintf(w->path + plen, sizeof(w->path) - plen, "%s%s[%ld]", plen ? "." : "",
			     name, idx);
	if (k < 0 || (size_t)k >= sizeof(w->path) - plen)
		return sizeof(w->path) - 1;
	return plen + (size_t)k;
}

static int
walk_value(struct walk *w, const ProtobufCFieldDescriptor *f, const void *v, size_t plen,
	   unsigned depth)
{
	if (f->type == PROTOBUF_C_TYPE_STRING)
		return check_string(w, *(char *const *)v, plen);
	if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage *const *)v != NULL)
		return walk_message(w, *(ProtobufCMessage *const *)v, plen, depth + 1);
	return 0;
}

static int
walk_message(struct walk *w, const ProtobufCMessage *m, size_t plen, unsigned depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (depth > 32) /* protobuf-c bounds nesting itself; stay bounded anyway */
		return 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m;
		int rc;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const char *arr = *(const char *const *)(base + f->offset);

			for (size_t j = 0; j < n; j++) {
				rc = walk_value(w, f, arr + j * sizeof(void *),
						path_push(w, plen, f->name, (long)j), depth);
				if (rc != 0)
					return rc;
			}
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
			continue;
		rc = walk_value(w, f, base + f->offset, path_push(w, plen, f->name, -1), depth);
		if (rc != 0)
			return rc;
	}
	return 0;
}

ProtobufCMessage *
cp_pb_unpack(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data, char *err,
	     size_t errlen)
{
	struct recorder r = {0};
	ProtobufCAllocator a = {.alloc = rec_alloc, .free = rec_free, .allocator_data = &r};
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, len, data);
	struct walk w = {.r = &r, .err = err, .errlen = errlen};

	if (m == NULL) {
		snprintf(err, errlen, "malformed request: not a valid %s message", desc->name);
		goto out;
	}
	if (r.lost) {
		snprintf(err, errlen, "out of memory");
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
		goto out;
	}
	qsort(r.v, r.n, sizeof(*r.v), rec_cmp);
	if (walk_message(&w, m, 0, 0) != 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		m = NULL;
	}
out:
	free(r.v);
	return m;
}

/* ==== Specs ================================================================================= */

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

/*
 * The node type table and the execution helpers nodes call.
 *
 * Node types register from constructors (DP_NODE_REGISTER) before main() runs, on one thread,
 * so the table needs no lock: it is written only then and read-only afterwards.
 */
#include "dataplane/node.h"

#include <stdio.h>
#include <string.h>

static const struct dp_node_type *g_types[DP_NODE_TYPES_MAX];
static unsigned g_n_types;

void
dp_node_type_register(const struct dp_node_type *t)
{
	unsigned i;

	if (g_n_types == DP_NODE_TYPES_MAX) {
		fprintf(stderr, "corepipe: too many node types, '%s' not registered\n", t->name);
		return;
	}
	/* Keep the table sorted by name: ListNodeTypes and docs list them in that order. */
	for (i = g_n_types; i > 0 && strcmp(g_types[i - 1]->name, t->name) > 0; i--)
		g_types[i] = g_types[i - 1];
	g_types[i] = t;
	g_n_types++;
}

const struct dp_node_type *
dp_node_type_find(const char *name)
{
	for (unsigned i = 0; i < g_n_types; i++)
		if (strcmp(g_types[i]->name, name) == 0)
			return g_types[i];
	return NULL;
}

unsigned
dp_node_type_count(void)
{
	return g_n_types;
}

const struct dp_node_type *
dp_node_type_at(unsigned i)
{
	return i < g_n_types ? g_types[i] : NULL;
}

/* ==== Execution helpers (worker lcores) ===================================================== */

int
dp_exec_fail(struct dp_exec *x, int status, const char *fmt, ...)
{
	char msg[DP_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return dp_err_set(&x->res->err, status, "node %u (%s): %s", x->node_idx,
			  x->node_name ? x->node_name : "?", msg);
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

int
dp_exec_annotate(struct dp_exec *x, const char *key, const char *val)
{
	struct dp_result *r = x->res;
	size_t kl = strlen(key), vl = strlen(val);
	struct dp_annot *a = NULL;

	if (unlikely(kl >= DP_ANNOT_KEY_MAX || vl >= DP_ANNOT_VAL_MAX))
		return dp_exec_fail(x, DP_INTERNAL, "annotation '%s' too long", key);
	/* A later node annotating the same key overwrites the earlier value. */
	for (unsigned i = 0; i < r->n_annot; i++)
		if (strcmp(r->annot[i].key, key) == 0)
			a = &r->annot[i];
	if (a == NULL) {
		if (unlikely(r->n_annot == DP_ANNOT_MAX))
			return dp_exec_fail(x, DP_INTERNAL, "more than %d annotations",
					    DP_ANNOT_MAX);
		a = &r->annot[r->n_annot++];
	}
	memcpy(a->key, key, kl + 1);
	memcpy(a->val, val, vl + 1);
	return DP_OK;
}

struct dp_buf *
dp_exec_take_out(struct dp_exec *x, uint64_t len)
{
	struct dp_buf *b;

	if (unlikely(len > dp_pools_max_size(x->pools))) {
		dp_exec_fail(x, DP_OUT_OF_RANGE,
			     "output of %llu bytes exceeds the largest buffer (%u bytes)",
			     (unsigned long long)len, dp_pools_max_size(x->pools));
		return NULL;
	}
	b = dp_pools_get(x->pools, (uint32_t)len);
	if (unlikely(b == NULL))
		dp_exec_fail(x, DP_RESOURCE_EXHAUSTED, "no free buffer of %llu bytes (pool empty)",
			     (unsigned long long)len);
	return b;
}

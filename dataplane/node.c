/*
 * The execution helpers nodes call (worker lcores) and their parameter parsers (compile time).
 * The node types themselves are listed by dataplane/node_table.c.
 */
#include "dataplane/node.h"

#include "dataplane/pipeline.h" /* struct dp_node_spec (dp_node_arg) */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

	if (unlikely(len > dp_exec_out_max(x))) {
		if (x->out_max != 0 && x->out_max < dp_pools_max_size(x->pools))
			dp_exec_fail(x, DP_OUT_OF_RANGE,
				     "output of %llu bytes exceeds the %u bytes this answer may "
				     "carry",
				     (unsigned long long)len, x->out_max);
		else
			dp_exec_fail(x, DP_OUT_OF_RANGE,
				     "output of %llu bytes exceeds the largest buffer (%u bytes)",
				     (unsigned long long)len, dp_pools_max_size(x->pools));
		return NULL;
	}
	if (x->kit != NULL && *x->kit != NULL) {
		/* The request's kit (a stream frame's buffers, taken before it was submitted):
		 * the smallest that fits. A few entries at most. */
		struct dp_buf **best = NULL;

		for (struct dp_buf **pp = x->kit; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->cap >= len && (best == NULL || (*pp)->cap < (*best)->cap))
				best = pp;
		if (best != NULL) {
			b = *best;
			*best = b->next;
			b->next = NULL;
			b->len = (uint32_t)len;
			return b;
		}
	}
	b = dp_pools_get(x->pools, (uint32_t)len);
	if (unlikely(b == NULL))
		dp_exec_fail(x, DP_RESOURCE_EXHAUSTED, "no free buffer of %llu bytes (pool empty)",
			     (unsigned long long)len);
	return b;
}

uint8_t *
dp_exec_reserve(struct dp_exec *x, uint64_t extra)
{
	uint64_t need = (uint64_t)x->buf->len + extra;
	struct dp_buf *b;

	if (likely(need <= x->buf->cap))
		return x->buf->data + x->buf->len;
	b = dp_exec_take_out(x, need);
	if (unlikely(b == NULL))
		return NULL;
	memcpy(b->data, x->buf->data, x->buf->len);
	b->len = x->buf->len;
	dp_buf_free(x->buf);
	x->buf = b;
	return b->data + b->len;
}

/* ==== Parameter parsing (compile time) ====================================================== */

uint32_t dp_node_max_message_bytes = 4u << 20;

const char *
dp_node_arg(const struct dp_node_args *args, const char *name)
{
	for (unsigned i = 0; i < args->spec->n_params; i++)
		if (strcmp(args->spec->params[i].key, name) == 0)
			return args->spec->params[i].value;
	for (unsigned i = 0; i < args->type->n_params; i++)
		if (strcmp(args->type->params[i].name, name) == 0)
			return args->type->params[i].default_value;
	return NULL;
}

int
dp_node_arg_double(const struct dp_node_args *args, const char *name, double min, double max,
		   double *out, struct dp_err *err)
{
	const char *s = dp_node_arg(args, name);
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
		return dp_err_set(err, DP_INVALID_ARGUMENT, "param %s: not a number: '%.40s'", name,
				  s),
		       -EINVAL;
	if (v < min || v > max)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "param %s: %.40s out of range [%g, %g]",
				  name, s, min, max),
		       -EINVAL;
	*out = v;
	return 0;
}

int
dp_node_arg_u64(const struct dp_node_args *args, const char *name, uint64_t min, uint64_t max,
		uint64_t *out, struct dp_err *err)
{
	const char *s = dp_node_arg(args, name);
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *end != '\0' || errno == ERANGE || s[0] == '-' || s[0] == '+' ||
	    s[0] == ' ')
		return dp_err_set(err, DP_INVALID_ARGUMENT, "param %s: not a whole number: '%.40s'",
				  name, s),
		       -EINVAL;
	if (v < min || v > max)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "param %s: %.40s out of range [%llu, %llu]", name, s,
				  (unsigned long long)min, (unsigned long long)max),
		       -EINVAL;
	*out = v;
	return 0;
}

int
dp_node_arg_choice(const struct dp_node_args *args, const char *name, const char *const *choices,
		   unsigned n_choices, unsigned *out, struct dp_err *err)
{
	const char *s = dp_node_arg(args, name);
	char list[128];
	size_t off = 0;

	for (unsigned i = 0; i < n_choices; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (unsigned i = 0; i < n_choices && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? "|" : "",
					choices[i]);
	return dp_err_set(err, DP_INVALID_ARGUMENT, "param %s: expected %s, got '%.40s'", name,
			  list, s),
	       -EINVAL;
}

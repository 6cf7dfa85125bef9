/*
 * Pipeline specs, compilation and the per-buffer runner.
 *
 * Compilation does all the checking a request could otherwise fail on late: node types exist,
 * parameter names are known, required ones are present, values parse (each node's compile()),
 * and the format produced by each node is one the next node accepts as far as it is known
 * before run time. What can only be known at run time (the input's actual kind and format) is
 * checked by the runner against each node's accepts mask, one bit test per node.
 */
#include "dataplane/pipeline.h"

#include "dataplane/node_table.h"

#include <errno.h>
#include <rte_cycles.h>
#include <rte_hash_crc.h>
#include <stdlib.h>
#include <string.h>

/* ==== Specs ================================================================================= */

void
dp_spec_free(struct dp_spec *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n_nodes; i++) {
		struct dp_node_spec *n = &s->nodes[i];

		for (unsigned j = 0; j < n->n_params; j++) {
			free(n->params[j].key);
			free(n->params[j].value);
		}
		free(n->params);
		free(n->type);
	}
	free(s->nodes);
	free(s->name);
	free(s);
}

static char *
dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

bool
dp_spec_equal(const struct dp_spec *a, const struct dp_spec *b)
{
	if (a->n_nodes != b->n_nodes)
		return false;
	for (unsigned i = 0; i < a->n_nodes; i++) {
		const struct dp_node_spec *x = &a->nodes[i], *y = &b->nodes[i];

		if (strcmp(x->type, y->type) != 0 || x->n_params != y->n_params)
			return false;
		/* Parameters are a map: same keys with the same values, in any order. */
		for (unsigned k = 0; k < x->n_params; k++) {
			unsigned j;

			for (j = 0; j < y->n_params; j++)
				if (strcmp(x->params[k].key, y->params[j].key) == 0)
					break;
			if (j == y->n_params || strcmp(x->params[k].value, y->params[j].value) != 0)
				return false;
		}
	}
	return true;
}

struct dp_spec *
dp_spec_dup(const struct dp_spec *s)
{
	struct dp_spec *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->name = dup_or_empty(s->name);
	if (d->name == NULL)
		goto err_free;
	if (s->n_nodes > 0) {
		d->nodes = calloc(s->n_nodes, sizeof(*d->nodes));
		if (d->nodes == NULL)
			goto err_free;
	}
	for (unsigned i = 0; i < s->n_nodes; i++) {
		const struct dp_node_spec *sn = &s->nodes[i];
		struct dp_node_spec *dn = &d->nodes[i];

		d->n_nodes = i + 1;
		dn->type = dup_or_empty(sn->type);
		if (dn->type == NULL)
			goto err_free;
		if (sn->n_params == 0)
			continue;
		dn->params = calloc(sn->n_params, sizeof(*dn->params));
		if (dn->params == NULL)
			goto err_free;
		for (unsigned j = 0; j < sn->n_params; j++) {
			dn->n_params = j + 1;
			dn->params[j].key = dup_or_empty(sn->params[j].key);
			dn->params[j].value = dup_or_empty(sn->params[j].value);
			if (dn->params[j].key == NULL || dn->params[j].value == NULL)
				goto err_free;
		}
	}
	return d;

err_free:
	dp_spec_free(d);
	errno = ENOMEM;
	return NULL;
}

/* Length of @p s, at most @p max + 1 (so "longer than max" is seen without reading on). */
static size_t
len_upto(const char *s, size_t max)
{
	return s == NULL ? 0 : strnlen(s, max + 1);
}

size_t
dp_spec_bytes(const struct dp_spec *s)
{
	size_t n = len_upto(s->name, DP_SPEC_BYTES_MAX);

	for (unsigned i = 0; i < s->n_nodes; i++) {
		const struct dp_node_spec *ns = &s->nodes[i];

		n += len_upto(ns->type, DP_SPEC_BYTES_MAX);
		for (unsigned j = 0; j < ns->n_params; j++)
			n += len_upto(ns->params[j].key, DP_SPEC_BYTES_MAX) +
			     len_upto(ns->params[j].value, DP_SPEC_BYTES_MAX);
	}
	return n;
}

int
dp_spec_check(const struct dp_spec *spec, unsigned max_nodes, struct dp_err *err)
{
	size_t total = len_upto(spec->name, DP_SPEC_BYTES_MAX);

	if (spec->n_nodes == 0)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "pipeline has no nodes"), -EINVAL;
	if (spec->n_nodes > max_nodes)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "pipeline has %u nodes, more than the limit %u", spec->n_nodes,
				  max_nodes),
		       -EINVAL;
	for (unsigned i = 0; i < spec->n_nodes; i++) {
		const struct dp_node_spec *ns = &spec->nodes[i];

		if (ns->type == NULL || ns->type[0] == '\0')
			return dp_err_set(err, DP_INVALID_ARGUMENT, "node %u: missing type", i),
			       -EINVAL;
		total += len_upto(ns->type, DP_SPEC_BYTES_MAX);
		if (ns->n_params > DP_PARAMS_MAX)
			return dp_err_set(err, DP_INVALID_ARGUMENT,
					  "node %u (%.40s): more than %d params", i, ns->type,
					  DP_PARAMS_MAX),
			       -EINVAL;
		for (unsigned j = 0; j < ns->n_params; j++) {
			const struct dp_param *p = &ns->params[j];
			size_t kl = len_upto(p->key, DP_PARAM_TEXT_MAX);
			size_t vl = len_upto(p->value, DP_PARAM_TEXT_MAX);

			if (kl == 0)
				return dp_err_set(err, DP_INVALID_ARGUMENT,
						  "node %u (%.40s): param %u: empty key", i,
						  ns->type, j),
				       -EINVAL;
			if (kl >= DP_PARAM_TEXT_MAX)
				return dp_err_set(err, DP_INVALID_ARGUMENT,
						  "node %u (%.40s): param key '%.40s...' longer "
						  "than %d bytes",
						  i, ns->type, p->key, DP_PARAM_TEXT_MAX - 1),
				       -EINVAL;
			if (vl >= DP_PARAM_TEXT_MAX)
				return dp_err_set(err, DP_INVALID_ARGUMENT,
						  "node %u (%.40s): param %.40s: longer than %d "
						  "bytes",
						  i, ns->type, p->key, DP_PARAM_TEXT_MAX - 1),
				       -EINVAL;
			/* A map has each key once: a second value would be ambiguous (which one
			 * runs, which one GetPipeline shows). */
			for (unsigned k = 0; k < j; k++)
				if (strcmp(ns->params[k].key, p->key) == 0)
					return dp_err_set(err, DP_INVALID_ARGUMENT,
							  "node %u (%.40s): param '%.40s' given "
							  "twice",
							  i, ns->type, p->key),
					       -EINVAL;
			total += kl + vl;
		}
		if (total > DP_SPEC_BYTES_MAX)
			return dp_err_set(err, DP_INVALID_ARGUMENT,
					  "node %u (%.40s): the pipeline's text (name, types, "
					  "params) exceeds %d bytes",
					  i, ns->type, DP_SPEC_BYTES_MAX),
			       -EINVAL;
	}
	if (total > DP_SPEC_BYTES_MAX)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "the pipeline's text (name, types, params) exceeds %d bytes",
				  DP_SPEC_BYTES_MAX),
		       -EINVAL;
	return 0;
}

bool
dp_pipeline_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL)
		return false;
	for (const char *c = name; *c; c++, n++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '-'))
			return false;
	}
	return n >= 1 && n < DP_NAME_MAX;
}

uint32_t
dp_name_hash(const char *name, size_t len)
{
	uint64_t aligned[DP_NAME_MAX / 8];

	/* rte_hash_crc reads 8 bytes at a time through a uint64_t pointer: give it an
	 * aligned copy (a name is at most 63 bytes) rather than an unaligned load. */
	if (((uintptr_t)name & 7) != 0 && len <= sizeof(aligned)) {
		memcpy(aligned, name, len);
		name = (const char *)aligned;
	}
	return rte_hash_crc(name, (uint32_t)len, 0xffffffffu);
}

/* ==== Compilation =========================================================================== */

static uint32_t
accept_bit(const struct dp_format *f)
{
	if (f->kind == DP_KIND_BYTES)
		return DP_ACCEPT_BYTES;
	if (f->kind == DP_KIND_AUDIO) {
		if (f->fmt == DP_FMT_S16LE)
			return DP_ACCEPT_S16;
		if (f->fmt == DP_FMT_F32LE)
			return DP_ACCEPT_F32;
		return DP_ACCEPT_AUDIO;
	}
	return DP_ACCEPT_ANY;
}

static const char *
accept_text(uint32_t accepts)
{
	switch (accepts) {
	case DP_ACCEPT_BYTES:
		return "bytes";
	case DP_ACCEPT_S16:
		return "s16le audio";
	case DP_ACCEPT_F32:
		return "f32le audio";
	case DP_ACCEPT_AUDIO:
		return "audio";
	default:
		return "any payload";
	}
}

static const char *
format_text(const struct dp_format *f)
{
	if (f->kind == DP_KIND_AUDIO && f->fmt != DP_FMT_ANY)
		return f->fmt == DP_FMT_S16LE ? "s16le audio" : "f32le audio";
	return dp_kind_name(f->kind);
}

static int
compile_node(const struct dp_node_spec *ns, unsigned idx, struct dp_node_inst *inst,
	     struct dp_format *cur, struct dp_err *err)
{
	const struct dp_node_type *t;
	struct dp_node_args args;
	struct dp_format out;
	uint32_t bit;

	/* Counts, lengths and duplicates were checked by dp_spec_check(). */
	t = dp_node_table_find(ns->type);
	if (t == NULL)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "node %u (%.40s): unknown node type",
				  idx, ns->type);
	for (unsigned i = 0; i < ns->n_params; i++) {
		const struct dp_param *p = &ns->params[i];
		unsigned k;

		for (k = 0; k < t->n_params; k++)
			if (strcmp(t->params[k].name, p->key) == 0)
				break;
		if (k == t->n_params)
			return dp_err_set(err, DP_INVALID_ARGUMENT,
					  "node %u (%s): unknown param '%.40s'", idx, t->name,
					  p->key);
	}
	for (unsigned k = 0; k < t->n_params; k++) {
		bool found = false;

		if (!t->params[k].required)
			continue;
		for (unsigned i = 0; i < ns->n_params; i++)
			found |= strcmp(ns->params[i].key, t->params[k].name) == 0;
		if (!found)
			return dp_err_set(err, DP_INVALID_ARGUMENT,
					  "node %u (%s): param %s: required", idx, t->name,
					  t->params[k].name);
	}

	/* Type flow: what reaches this node must be something it accepts, when known. */
	bit = accept_bit(cur);
	if ((bit & t->accepts) == 0)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "node %u (%s): needs %s input, but node %u outputs %s", idx,
				  t->name, accept_text(t->accepts), idx - 1, format_text(cur));

	if ((t->state_size != 0) != (t->init != NULL))
		return dp_err_set(err, DP_INTERNAL, "node %u (%s): state without init", idx,
				  t->name);
	inst->type = t;
	if (t->conf_size > 0) {
		inst->conf = calloc(1, t->conf_size);
		if (inst->conf == NULL)
			return dp_err_set(err, DP_RESOURCE_EXHAUSTED, "out of memory");
	}
	args.type = t;
	args.spec = ns;
	if (t->compile != NULL) {
		struct dp_err nerr = {0};

		if (t->compile(inst->conf, &args, &nerr) != 0)
			return dp_err_set(err, DP_INVALID_ARGUMENT, "node %u (%s): %s", idx,
					  t->name, nerr.msg);
	}
	out = *cur;
	if (t->infer != NULL) {
		struct dp_err nerr = {0};

		if (t->infer(inst->conf, cur, &out, &nerr) != 0)
			return dp_err_set(err, DP_INVALID_ARGUMENT, "node %u (%s): %s", idx,
					  t->name, nerr.msg);
	}
	*cur = out;
	return 0;
}

struct dp_pipeline *
dp_pipeline_compile(const struct dp_spec *spec, unsigned max_nodes, struct dp_err *err)
{
	struct dp_pipeline *p;
	struct dp_format cur = {.kind = DP_KIND_ANY};

	/* Everything a client controls is bounded before the first allocation. */
	if (dp_spec_check(spec, max_nodes, err) != 0)
		return NULL;
	p = calloc(1, sizeof(*p) + spec->n_nodes * sizeof(p->nodes[0]));
	if (p == NULL) {
		dp_err_set(err, DP_RESOURCE_EXHAUSTED, "out of memory");
		return NULL;
	}
	atomic_init(&p->refcnt, 1);
	cds_lfht_node_init(&p->node);
	p->spec = dp_spec_dup(spec);
	if (p->spec == NULL) {
		dp_err_set(err, DP_RESOURCE_EXHAUSTED, "out of memory");
		goto err_free;
	}
	if (spec->name != NULL && strlen(spec->name) < DP_NAME_MAX)
		strcpy(p->name, spec->name);
	for (unsigned i = 0; i < spec->n_nodes; i++) {
		p->n_nodes = i + 1; /* so the unwind frees what compile_node allocated */
		if (compile_node(&spec->nodes[i], i, &p->nodes[i], &cur, err) != 0)
			goto err_free;
	}
	p->out_hint = cur;
	/* State layout: each stateful node's block on its own cache line(s). */
	for (unsigned i = 0; i < p->n_nodes; i++) {
		size_t sz = p->nodes[i].type->state_size;

		if (sz == 0)
			continue;
		p->nodes[i].state_off = p->state_size;
		if (p->state_size + RTE_ALIGN_CEIL(sz, RTE_CACHE_LINE_SIZE) > DP_STATE_MAX) {
			dp_err_set(err, DP_INVALID_ARGUMENT,
				   "node %u (%s): the pipeline's node state exceeds %d bytes", i,
				   p->nodes[i].type->name, DP_STATE_MAX);
			goto err_free;
		}
		p->state_size += (uint32_t)RTE_ALIGN_CEIL(sz, RTE_CACHE_LINE_SIZE);
	}
	return p;

err_free:
	dp_pipeline_unref(p);
	return NULL;
}

void
dp_pipeline_unref(struct dp_pipeline *p)
{
	if (p == NULL)
		return;
	/* Acq_rel: our uses of p happen before the free (release), and the thread that drops
	 * the last reference sees everyone else's uses (acquire). Control plane only. */
	if (atomic_fetch_sub_explicit(&p->refcnt, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < p->n_nodes; i++)
		free(p->nodes[i].conf);
	dp_spec_free(p->spec);
	free(p);
}

int
dp_pipeline_formats(const struct dp_pipeline *p, const struct dp_format *in, struct dp_format *fmts,
		    struct dp_err *err)
{
	fmts[0] = *in;
	for (unsigned i = 0; i < p->n_nodes; i++) {
		const struct dp_node_type *t = p->nodes[i].type;
		struct dp_err nerr = {0};

		if ((accept_bit(&fmts[i]) & t->accepts) == 0)
			return dp_err_set(err, DP_INVALID_ARGUMENT,
					  "node %u (%s): needs %s input, got %s", i, t->name,
					  accept_text(t->accepts), format_text(&fmts[i])),
			       -EINVAL;
		fmts[i + 1] = fmts[i];
		if (t->infer != NULL &&
		    t->infer(p->nodes[i].conf, &fmts[i], &fmts[i + 1], &nerr) != 0)
			return dp_err_set(err, DP_INVALID_ARGUMENT, "node %u (%s): %s", i, t->name,
					  nerr.msg),
			       -EINVAL;
	}
	return 0;
}

/* ==== Runner ================================================================================ */

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

/* One node: the type check the compiler could not do (ANY fields), then process(). */
static inline int
run_node(const struct dp_node_inst *n, struct dp_exec *x)
{
	if (unlikely((accept_bit(&x->fmt) & n->type->accepts) == 0))
		return dp_exec_fail(x, DP_INVALID_ARGUMENT, "needs %s input, got %s",
				    accept_text(n->type->accepts), format_text(&x->fmt));
	return n->type->process(n->conf, x);
}

/* The general runner: state, flush. Kept out of line so the stateless loop stays small. */
static int __attribute__((noinline))
run_stateful(const struct dp_pipeline *p, struct dp_exec *x, uint8_t *state, unsigned flags)
{
	int rc;

	if (unlikely(state == NULL))
		return dp_err_set(&x->res->err, DP_FAILED_PRECONDITION,
				  "stateful pipeline (resample, vad) needs a stream slot");
	for (unsigned i = 0; i < p->n_nodes; i++) {
		const struct dp_node_type *t = p->nodes[i].type;

		x->node_idx = i;
		x->node_name = t->name;
		x->state = t->state_size ? state + p->nodes[i].state_off : NULL;
		/* On a flush alone the buffer starts empty; every node still runs, on what the
		 * earlier nodes flushed (possibly nothing), so the last response's format and
		 * annotations are like any other's. */
		rc = run_node(&p->nodes[i], x);
		if (unlikely(rc != DP_OK))
			return rc;
		if ((flags & DP_RUN_FLUSH) && t->flush != NULL) {
			rc = t->flush(p->nodes[i].conf, x->state, x);
			if (unlikely(rc != DP_OK))
				return rc;
		}
	}
	x->state = NULL;
	return DP_OK;
}

int
dp_pipeline_run(const struct dp_pipeline *p, struct dp_exec *x, void *state, unsigned flags)
{
	return dp_pipeline_run_capped(p, x, state, flags, 0);
}

int
dp_pipeline_run_capped(const struct dp_pipeline *p, struct dp_exec *x, void *state, unsigned flags,
		       uint32_t out_max)
{
	int rc;

	x->out_max = out_max;
	x->flushing = (flags & DP_RUN_FLUSH) != 0;
	if (unlikely(dp_format_check(&x->fmt, x->buf->len, &x->res->err) != DP_OK))
		return DP_INVALID_ARGUMENT;
	if (p->state_size != 0 || state != NULL)
		return run_stateful(p, x, state, flags);
	x->state = NULL;
	for (unsigned i = 0; i < p->n_nodes; i++) {
		const struct dp_node_type *t = p->nodes[i].type;

		x->node_idx = i;
		x->node_name = t->name;
		rc = run_node(&p->nodes[i], x);
		if (unlikely(rc != DP_OK))
			return rc;
	}
	return DP_OK;
}

/* ==== Resumable runner (the bulk lane) ====================================================== */

/* Hot path: per quantum, worker lcores. No locks, syscalls, allocation or logging. */

int
dp_pipeline_step(const struct dp_pipeline *p, struct dp_exec *x, void *state, unsigned flags,
		 struct dp_run *r, uint64_t end_tsc)
{
	uint8_t *st = state;
	int rc;

	if (!r->checked) {
		if (unlikely(dp_format_check(&x->fmt, x->buf->len, &x->res->err) != DP_OK))
			return DP_INVALID_ARGUMENT;
		if (unlikely(p->state_size != 0 && state == NULL))
			return dp_err_set(&x->res->err, DP_FAILED_PRECONDITION,
					  "stateful pipeline (resample, vad) needs a stream slot");
		r->checked = 1;
	}
	while (r->node < p->n_nodes) {
		const struct dp_node_inst *n = &p->nodes[r->node];
		const struct dp_node_type *t = n->type;

		x->node_idx = r->node;
		x->node_name = t->name;
		x->state = t->state_size != 0 && st != NULL ? st + n->state_off : NULL;
		if (t->slice != NULL) {
			if (!r->in_slice) {
				if (unlikely((accept_bit(&x->fmt) & t->accepts) == 0))
					return run_node(n, x); /* fails, naming the kinds */
				memset(r->sl, 0, sizeof(r->sl));
				r->pos = 0;
				r->node_len = x->buf->len;
				r->in_slice = 1;
			}
			do
				rc = t->slice(n->conf, x, r->sl, &r->pos, DP_SLICE_BYTES);
			while (rc == DP_PENDING && rte_rdtsc() < end_tsc);
			if (rc == DP_PENDING)
				return DP_PENDING;
			r->in_slice = 0;
		} else {
			r->node_len = x->buf->len;
			rc = run_node(n, x);
		}
		if (unlikely(rc != DP_OK))
			return rc;
		if ((flags & DP_RUN_FLUSH) && t->flush != NULL) {
			rc = t->flush(n->conf, x->state, x);
			if (unlikely(rc != DP_OK))
				return rc;
		}
		r->pos = r->node_len;
		r->node++;
		if (r->node < p->n_nodes && rte_rdtsc() >= end_tsc)
			return DP_PENDING;
	}
	x->state = NULL;
	return DP_OK;
}

void
dp_pipeline_step_abort(const struct dp_pipeline *p, struct dp_exec *x, struct dp_run *r)
{
	(void)x;
	if (r->in_slice && r->node < p->n_nodes && p->nodes[r->node].type->slice_abort != NULL)
		p->nodes[r->node].type->slice_abort(p->nodes[r->node].conf, r->sl);
	r->in_slice = 0;
	x->state = NULL;
}

/* ==== Buffer plan and memory estimate (admission) ============================================ */

/* Bytes per second of audio format @p f, 0 when a field is not known. */
static uint64_t
audio_rate_bytes(const struct dp_format *f)
{
	if (f->kind != DP_KIND_AUDIO || f->fmt == 0 || f->channels == 0 || f->rate == 0)
		return 0;
	return (uint64_t)dp_fmt_sample_size(f->fmt) * f->channels * f->rate;
}

/* dp_pipeline_out_plan over the inferred formats @p fmts. */
static int
plan_walk(const struct dp_pipeline *p, const struct dp_format *fmts, uint32_t len,
	  const uint8_t *data, uint32_t pool_max, uint32_t *sizes, unsigned max)
{
	uint64_t cur = len;
	unsigned n = 0;

	for (unsigned i = 0; i < p->n_nodes; i++) {
		const struct dp_node_type *t = p->nodes[i].type;
		uint64_t out = t->out_bytes != NULL ? t->out_bytes(p->nodes[i].conf, &fmts[i], cur,
								   i == 0 ? data : NULL)
						    : 0;
		uint64_t a = audio_rate_bytes(&fmts[i]), b = audio_rate_bytes(&fmts[i + 1]);

		if (out != 0) {
			if (n == max)
				return -E2BIG;
			sizes[n++] = (uint32_t)(out < pool_max ? out : pool_max);
		}
		/* The next node's input: what this one outputs at most. */
		if (out != 0)
			cur = out;
		else if (t->expands)
			cur = dp_node_max_message_bytes;
		else if (a != 0 && b != 0)
			cur = cur * b / a;
		if (cur > pool_max)
			cur = pool_max;
	}
	return (int)n;
}

/* dp_pipeline_mem_estimate over the inferred formats @p fmts. */
static uint64_t
mem_walk(const struct dp_pipeline *p, const struct dp_format *fmts, uint32_t len)
{
	uint64_t cur = len, peak = len;

	for (unsigned i = 0; i < p->n_nodes; i++) {
		uint64_t a = audio_rate_bytes(&fmts[i]), b = audio_rate_bytes(&fmts[i + 1]);
		uint64_t out = cur;

		if (p->nodes[i].type->expands)
			out = dp_node_max_message_bytes;
		else if (a != 0 && b != 0)
			out = cur * b / a + 64; /* a resampler's filter tail and rounding */
		if (cur + out > peak)
			peak = cur + out;
		cur = out;
	}
	return peak;
}

/* The formats along @p p for input @p in into @p fmts (p->n_nodes + 1 entries). */
static int
infer(const struct dp_pipeline *p, const struct dp_format *in, struct dp_format *fmts)
{
	struct dp_err err;

	if (p->n_nodes > DP_NODES_HARD_MAX || dp_pipeline_formats(p, in, fmts, &err) != 0)
		return -EINVAL;
	return 0;
}

int
dp_pipeline_out_plan(const struct dp_pipeline *p, const struct dp_format *in, uint32_t len,
		     const uint8_t *data, uint32_t pool_max, uint32_t *sizes, unsigned max)
{
	struct dp_format fmts[DP_NODES_HARD_MAX + 1];

	if (infer(p, in, fmts) != 0)
		return -EINVAL;
	return plan_walk(p, fmts, len, data, pool_max, sizes, max);
}

uint64_t
dp_pipeline_mem_estimate(const struct dp_pipeline *p, const struct dp_format *in, uint32_t len)
{
	struct dp_format fmts[DP_NODES_HARD_MAX + 1];

	if (infer(p, in, fmts) != 0)
		return 2 * (uint64_t)len;
	return mem_walk(p, fmts, len);
}

int
dp_pipeline_frame_plan(const struct dp_pipeline *p, const struct dp_format *in, uint32_t len,
		       const uint8_t *data, uint32_t pool_max, uint64_t *mem, uint32_t *sizes,
		       unsigned max)
{
	struct dp_format fmts[DP_NODES_HARD_MAX + 1];

	if (infer(p, in, fmts) != 0) {
		*mem = 2 * (uint64_t)len;
		return -EINVAL;
	}
	*mem = mem_walk(p, fmts, len);
	return plan_walk(p, fmts, len, data, pool_max, sizes, max);
}

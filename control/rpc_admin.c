/*
 * corepipe.v1.Admin: node types and the pipeline registry. Handled synchronously on the CQ
 * thread: each is a compile or a registry update of microseconds, and writers are serialised
 * by the registry's lock anyway. With a registry store other than memory (control/store.h),
 * PutPipeline and DeletePipeline are compiled here and then written by the control thread,
 * which may block on the store; the answer comes back to this front end (as ReloadConfig's).
 */
#include "control/counters.h"
#include "control/ctl.h"
#include "control/frontend.h"
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/pbconv.h"
#include "control/store.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/node_table.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== ListNodeTypes ========================================================================= */

static void
list_node_types(struct cp_server *srv, struct cp_call *c)
{
	Corepipe__V1__ListNodeTypesResponse resp = COREPIPE__V1__LIST_NODE_TYPES_RESPONSE__INIT;
	unsigned n = dp_node_table_count(), np = 0;
	Corepipe__V1__NodeType *types, **tptr;
	Corepipe__V1__ParamInfo *params, **pptr;
	ProtobufCMessage *rq;

	(void)srv;
	rq = cp_call_unpack(c, &corepipe__v1__list_node_types_request__descriptor);
	if (rq == NULL)
		return;
	protobuf_c_message_free_unpacked(rq, NULL);
	for (unsigned i = 0; i < n; i++)
		np += dp_node_table_at(i)->n_params;
	types = calloc(n + 1, sizeof(*types));
	tptr = calloc(n + 1, sizeof(*tptr));
	params = calloc(np + 1, sizeof(*params));
	pptr = calloc(np + 1, sizeof(*pptr));
	if (types == NULL || tptr == NULL || params == NULL || pptr == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto out;
	}
	np = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct dp_node_type *t = dp_node_table_at(i);

		corepipe__v1__node_type__init(&types[i]);
		types[i].type = (char *)t->name;
		types[i].summary = (char *)t->summary;
		types[i].params = &pptr[np];
		types[i].n_params = t->n_params;
		for (unsigned j = 0; j < t->n_params; j++, np++) {
			corepipe__v1__param_info__init(&params[np]);
			params[np].name = (char *)t->params[j].name;
			params[np].summary = (char *)t->params[j].summary;
			params[np].required = t->params[j].required;
			params[np].default_value =
			    (char *)(t->params[j].default_value ? t->params[j].default_value : "");
			pptr[np] = &params[np];
		}
		tptr[i] = &types[i];
	}
	resp.n_types = n;
	resp.types = tptr;
	cp_call_reply(c, GRPC_STATUS_OK, &resp.base, NULL);
out:
	free(types);
	free(tptr);
	free(params);
	free(pptr);
}

/* ==== PutPipeline / GetPipeline / ListPipelines / DeletePipeline ========================== */

static void
reply_info(struct cp_call *c, const struct dp_pipeline *p)
{
	Corepipe__V1__PipelineInfo info = COREPIPE__V1__PIPELINE_INFO__INIT;
	Corepipe__V1__PipelineSpec spec;

	if (cp_pb_spec_from(p->spec, &spec) != 0) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	info.spec = &spec;
	info.id = p->id;
	info.version = p->version;
	cp_call_reply(c, GRPC_STATUS_OK, &info.base, NULL);
	cp_pb_spec_free(&spec);
}

/* The answer to a put of @p p (still referenced by the caller) that returned @p rc. */
static void
put_answer(struct cp_call *c, const struct dp_pipeline *p, int rc,
	   const struct dp_registry_info *ri, const char *store_err)
{
	if (rc == 0) {
		cp_log(CP_LOG_INFO, ri->replaced ? "pipeline replaced" : "pipeline added",
		       CP_LF_STR("pipeline", p->name), CP_LF_U64("id", ri->id),
		       CP_LF_U64("version", ri->version), CP_LF_STR("source", "api"));
		reply_info(c, p);
	} else if (rc == -ENOSPC || rc == -EINVAL) {
		cp_call_reply(c,
			      rc == -ENOSPC ? GRPC_STATUS_RESOURCE_EXHAUSTED
					    : GRPC_STATUS_INVALID_ARGUMENT,
			      NULL, "pipeline '%s': %s", p->spec->name,
			      rc == -ENOSPC ? "registry full" : "invalid name");
	} else {
		/* The store could not record it: nothing changed, the client may retry. */
		cp_call_reply(c, GRPC_STATUS_UNAVAILABLE, NULL,
			      "pipeline '%s' not changed: registry store: %s", p->spec->name,
			      store_err ? store_err : strerror(-rc));
	}
}

/*
 * A Put or Delete through a store other than memory: written by the control thread (it may
 * block on a disk or a network), answered back on the call's front end.
 */
struct store_job {
	struct cp_ctl_job job;
	struct cp_fe_msg msg;
	struct cp_call *c;
	struct dp_pipeline *p; /* put: referenced until the answer; NULL for a delete */
	char name[DP_NAME_MAX];
	struct dp_registry_info ri;
	int rc;
	char err[512];
};

static void
store_answer(struct cp_frontend *fe, void *arg)
{
	struct store_job *j = arg;
	Corepipe__V1__DeletePipelineResponse resp = COREPIPE__V1__DELETE_PIPELINE_RESPONSE__INIT;

	(void)fe;
	if (j->p != NULL) {
		put_answer(j->c, j->p, j->rc, &j->ri, j->err[0] ? j->err : NULL);
		dp_pipeline_unref(j->p);
	} else if (j->rc == -ENOENT) {
		cp_call_reply(j->c, GRPC_STATUS_NOT_FOUND, NULL, "pipeline '%.64s' not found",
			      j->name);
	} else if (j->rc != 0) {
		cp_call_reply(j->c, GRPC_STATUS_UNAVAILABLE, NULL,
			      "pipeline '%.64s' not deleted: registry store: %s", j->name,
			      j->err[0] ? j->err : strerror(-j->rc));
	} else {
		cp_log(CP_LOG_INFO, "pipeline deleted", CP_LF_STR("pipeline", j->name),
		       CP_LF_STR("source", "api"));
		cp_call_reply(j->c, GRPC_STATUS_OK, &resp.base, NULL);
	}
	cp_call_release(j->c); /* the reference held while the job ran */
	free(j);
}

static void
store_run(struct cp_ctl_job *job)
{
	struct store_job *j = caa_container_of(job, struct store_job, job);
	struct cp_store *st = j->c->fe->srv->store;

	if (j->p != NULL) {
		dp_pipeline_ref(j->p); /* the store consumes one; the answer keeps ours */
		j->rc = cp_store_put(st, j->p, &j->ri, j->err, sizeof(j->err));
	} else {
		j->rc = cp_store_delete(st, j->name, j->err, sizeof(j->err));
	}
	cp_fe_post(j->c->fe, &j->msg);
}

/* Hand a put of @p p (consumed) or a delete of @p name to the control thread. */
static void
store_submit(struct cp_call *c, struct dp_pipeline *p, const char *name)
{
	struct store_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		dp_pipeline_unref(p);
		return;
	}
	j->c = c;
	j->p = p;
	if (name != NULL)
		snprintf(j->name, sizeof(j->name), "%s", name);
	j->job.run = store_run;
	j->msg.fn = store_answer;
	j->msg.arg = j;
	c->refs++; /* until store_answer */
	cp_ctl_submit(c->fe->srv->ctl, &j->job);
}

static void
put_pipeline(struct cp_server *srv, struct cp_call *c)
{
	Corepipe__V1__PutPipelineRequest *rq;
	struct dp_registry_info ri;
	struct dp_pipeline *p;
	struct dp_spec view;
	struct dp_err err;
	int rc;

	rq = (Corepipe__V1__PutPipelineRequest *)cp_call_unpack(
	    c, &corepipe__v1__put_pipeline_request__descriptor);
	if (rq == NULL)
		return;
	if (rq->pipeline == NULL) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL, "pipeline: missing");
		goto out;
	}
	if (!dp_pipeline_name_valid(rq->pipeline->name)) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
			      "pipeline name '%.64s' is not valid ([A-Za-z0-9_.-]{1,63})",
			      rq->pipeline->name);
		goto out;
	}
	if (cp_spec_view(rq->pipeline, &view) != 0) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto out;
	}
	p = dp_pipeline_compile(&view, cp_server_live(srv)->max_nodes, &err);
	cp_spec_view_free(&view);
	if (p == NULL) {
		cp_call_reply(c, (grpc_status_code)err.status, NULL, "pipeline '%s': %s",
			      rq->pipeline->name, err.msg);
		goto out;
	}
	if (srv->store != NULL && srv->store->kind != CP_STORE_MEMORY) {
		store_submit(c, p, NULL);
		goto out;
	}
	/* Keep a reference for the reply: the registry may replace it meanwhile. */
	dp_pipeline_ref(p);
	rc = dp_registry_put(srv->dp->reg, p, &ri);
	put_answer(c, p, rc, &ri, NULL);
	dp_pipeline_unref(p);
out:
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void
get_pipeline(struct cp_server *srv, struct cp_call *c)
{
	Corepipe__V1__GetPipelineRequest *rq;
	struct dp_pipeline *p;

	rq = (Corepipe__V1__GetPipelineRequest *)cp_call_unpack(
	    c, &corepipe__v1__get_pipeline_request__descriptor);
	if (rq == NULL)
		return;
	p = dp_registry_get(srv->dp->reg, rq->name);
	if (p == NULL) {
		cp_call_reply(c, GRPC_STATUS_NOT_FOUND, NULL, "pipeline '%.64s' not found",
			      rq->name);
	} else {
		reply_info(c, p);
		dp_pipeline_unref(p);
	}
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/*
 * ListPipelines is paged (AIP-158): name order, at most page_size entries (default and maximum
 * CP_LIST_PAGE_MAX) and at most CP_LIST_RESPONSE_BYTES of message, so neither the registry's
 * size nor its specs' make one answer large (a spec is at most DP_SPEC_BYTES_MAX of text, so a
 * page always holds one). The token is opaque to clients: base64url of "1/" + the last name
 * returned; the next page starts after that name, so pipelines put or deleted between pages
 * are seen or not, but none is returned twice.
 */
#define CP_LIST_PAGE_MAX       1000
#define CP_LIST_RESPONSE_BYTES (1u << 20)
#define CP_LIST_TOKEN_PREFIX   "1/"

struct list_ctx {
	size_t n, cap;
	struct dp_pipeline **all; /* referenced */
};

static int
collect(struct dp_pipeline *p, void *arg)
{
	struct list_ctx *l = arg;

	if (l->n == l->cap)
		return 0;
	dp_pipeline_ref(p);
	l->all[l->n++] = p;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(struct dp_pipeline *const *)a)->name,
		      (*(struct dp_pipeline *const *)b)->name);
}

/* @return 0 with @p after set ("" for none), or -EINVAL. */
static int
token_decode(const char *tok, char after[DP_NAME_MAX])
{
	unsigned char bin[DP_NAME_MAX + 8];
	size_t n = 0, pl = sizeof(CP_LIST_TOKEN_PREFIX) - 1;

	after[0] = '\0';
	if (tok == NULL || tok[0] == '\0')
		return 0;
	if (strlen(tok) >
		sodium_base64_ENCODED_LEN(sizeof(bin), sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    sodium_base642bin(bin, sizeof(bin) - 1, tok, strlen(tok), NULL, &n, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n <= pl || memcmp(bin, CP_LIST_TOKEN_PREFIX, pl) != 0)
		return -EINVAL;
	bin[n] = '\0';
	if (!dp_pipeline_name_valid((const char *)bin + pl))
		return -EINVAL;
	memcpy(after, bin + pl, n - pl + 1);
	return 0;
}

static void
token_encode(const char *name, char *out, size_t outlen)
{
	char raw[DP_NAME_MAX + 8];
	int n = snprintf(raw, sizeof(raw), CP_LIST_TOKEN_PREFIX "%s", name);

	sodium_bin2base64(out, outlen, (const unsigned char *)raw, (size_t)n,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Bytes one entry adds to the response: tag, length prefix, message. */
static size_t
entry_bytes(const Corepipe__V1__PipelineInfo *info)
{
	size_t n = protobuf_c_message_get_packed_size(&info->base);

	return 1 + (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 5) + n;
}

static void
list_pipelines(struct cp_server *srv, struct cp_call *c)
{
	Corepipe__V1__ListPipelinesResponse resp = COREPIPE__V1__LIST_PIPELINES_RESPONSE__INIT;
	Corepipe__V1__ListPipelinesRequest *rq;
	Corepipe__V1__PipelineInfo *infos = NULL, **ptrs = NULL;
	Corepipe__V1__PipelineSpec *specs = NULL;
	char after[DP_NAME_MAX];
	char token[sodium_base64_ENCODED_LEN(DP_NAME_MAX + 8,
					     sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	struct list_ctx l = {0};
	size_t first = 0, k = 0, bytes = 0, page;
	int rc;

	rq = (Corepipe__V1__ListPipelinesRequest *)cp_call_unpack(
	    c, &corepipe__v1__list_pipelines_request__descriptor);
	if (rq == NULL)
		return;
	if (rq->page_size < 0) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
			      "page_size %d: must be >= 0 (0: the default, %d)", rq->page_size,
			      CP_LIST_PAGE_MAX);
		goto out;
	}
	page = rq->page_size == 0 || rq->page_size > CP_LIST_PAGE_MAX ? CP_LIST_PAGE_MAX
								      : (size_t)rq->page_size;
	if (token_decode(rq->page_token, after) != 0) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
			      "page_token: not a next_page_token of ListPipelines");
		goto out;
	}
	l.cap = DP_REGISTRY_MAX;
	l.all = calloc(l.cap, sizeof(*l.all));
	infos = calloc(page, sizeof(*infos));
	specs = calloc(page, sizeof(*specs));
	ptrs = calloc(page, sizeof(*ptrs));
	if (l.all == NULL || infos == NULL || specs == NULL || ptrs == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto out;
	}
	rc = dp_registry_for_each(srv->dp->reg, collect, &l);
	if (rc != 0) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		goto out;
	}
	qsort(l.all, l.n, sizeof(*l.all), by_name);
	while (first < l.n && after[0] != '\0' && strcmp(l.all[first]->name, after) <= 0)
		first++;
	for (size_t i = first; i < l.n && k < page; i++) {
		const struct dp_pipeline *p = l.all[i];
		size_t add;

		if (cp_pb_spec_from(p->spec, &specs[k]) != 0) {
			cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
			goto out;
		}
		corepipe__v1__pipeline_info__init(&infos[k]);
		infos[k].spec = &specs[k];
		infos[k].id = p->id;
		infos[k].version = p->version;
		add = entry_bytes(&infos[k]);
		if (k > 0 && bytes + add > CP_LIST_RESPONSE_BYTES) {
			cp_pb_spec_free(&specs[k]);
			break;
		}
		bytes += add;
		ptrs[k] = &infos[k];
		k++;
	}
	if (first + k < l.n) {
		token_encode(l.all[first + k - 1]->name, token, sizeof(token));
		resp.next_page_token = token;
	}
	resp.n_pipelines = k;
	resp.pipelines = ptrs;
	cp_call_reply(c, GRPC_STATUS_OK, &resp.base, NULL);
out:
	for (size_t i = 0; i < k; i++)
		cp_pb_spec_free(&specs[i]);
	for (size_t i = 0; i < l.n; i++)
		dp_pipeline_unref(
		    l.all[i]); /* after the reply: the message borrowed their strings */
	free(l.all);
	free(infos);
	free(specs);
	free(ptrs);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

static void
delete_pipeline(struct cp_server *srv, struct cp_call *c)
{
	Corepipe__V1__DeletePipelineRequest *rq;
	Corepipe__V1__DeletePipelineResponse resp = COREPIPE__V1__DELETE_PIPELINE_RESPONSE__INIT;

	rq = (Corepipe__V1__DeletePipelineRequest *)cp_call_unpack(
	    c, &corepipe__v1__delete_pipeline_request__descriptor);
	if (rq == NULL)
		return;
	if (srv->store != NULL && srv->store->kind != CP_STORE_MEMORY) {
		if (!dp_pipeline_name_valid(rq->name))
			cp_call_reply(c, GRPC_STATUS_NOT_FOUND, NULL, "pipeline '%.64s' not found",
				      rq->name);
		else
			store_submit(c, NULL, rq->name);
	} else if (dp_registry_delete(srv->dp->reg, rq->name) != 0) {
		cp_call_reply(c, GRPC_STATUS_NOT_FOUND, NULL, "pipeline '%.64s' not found",
			      rq->name);
	} else {
		cp_log(CP_LOG_INFO, "pipeline deleted", CP_LF_STR("pipeline", rq->name),
		       CP_LF_STR("source", "api"));
		cp_call_reply(c, GRPC_STATUS_OK, &resp.base, NULL);
	}
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ==== GetStats ============================================================================== */

typedef Corepipe__V1__WorkerStats__ByCodeEntry code_entry;
typedef Corepipe__V1__Stats__RejectedEntry reject_entry;

/* A protobuf-c map<string, uint64> entry, as protoc-c lays out every one of them (checked
 * against the entry's descriptor before use). */
struct map_entry {
	ProtobufCMessage base;
	char *key;
	uint64_t value;
};

/* Counters in one struct dp_udp_stats: enough entries for every map of one port. */
#define UDP_COUNTERS (sizeof(struct dp_udp_stats) / sizeof(uint64_t))

/* GetStats' UDP part: storage for every port's message and maps. */
struct udp_stats_msgs {
	Corepipe__V1__UdpPortStats m[DP_PORTS_MAX];
	Corepipe__V1__UdpPortStats *mp[DP_PORTS_MAX];
	struct map_entry ent[DP_PORTS_MAX][UDP_COUNTERS];
	struct map_entry *entp[DP_PORTS_MAX][UDP_COUNTERS];
	char addr[DP_PORTS_MAX][24];
	char mac[DP_PORTS_MAX][RTE_ETHER_ADDR_FMT_SIZE];
};

/* Set uint64 field d->rpc of message @p m from scalar row @p d of stats @p s. */
static void
fill_stat_u64(ProtobufCMessage *m, const struct dp_stat_desc *d, const void *s)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, d->rpc);

	assert(f != NULL && f->label != PROTOBUF_C_LABEL_REPEATED &&
	       f->type == PROTOBUF_C_TYPE_UINT64 && d->n == 1);
	*(uint64_t *)((char *)m + f->offset) = *dp_stat_at(d, s, 0);
}

/* Every scalar field of message @p m that the @p n rows of @p t name, from stats @p s. */
static void
fill_stat_u64s(ProtobufCMessage *m, const struct dp_stat_desc *t, unsigned n, const void *s)
{
	for (unsigned r = 0; r < n; r++)
		if (t[r].rpc != NULL)
			fill_stat_u64(m, &t[r], s);
}

/* Set field d->rpc of message @p m from row @p d of stats @p s: a uint64, or a
 * map<string, uint64> of the row's non-zero elements, built in @p ent / @p entp.
 * @return map entries used. */
static unsigned
fill_stat_field(ProtobufCMessage *m, const struct dp_stat_desc *d, const void *s,
		struct map_entry *ent, struct map_entry **entp)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor, d->rpc);
	const ProtobufCMessageDescriptor *ed;
	unsigned n = 0;
	char *base = (char *)m;

	assert(f != NULL);
	if (f->label != PROTOBUF_C_LABEL_REPEATED) {
		fill_stat_u64(m, d, s);
		return 0;
	}
	ed = f->descriptor;
	assert(f->type == PROTOBUF_C_TYPE_MESSAGE &&
	       ed->sizeof_message == sizeof(struct map_entry) &&
	       protobuf_c_message_descriptor_get_field_by_name(ed, "key")->offset ==
		   offsetof(struct map_entry, key) &&
	       protobuf_c_message_descriptor_get_field_by_name(ed, "value")->offset ==
		   offsetof(struct map_entry, value));
	for (unsigned k = 0; k < d->n; k++) {
		uint64_t v = *dp_stat_at(d, s, k);

		if (v == 0)
			continue;
		protobuf_c_message_init(ed, &ent[n]);
		ent[n].key = (char *)d->key_name(k);
		ent[n].value = v;
		entp[n] = &ent[n];
		n++;
	}
	*(size_t *)(base + f->quantifier_offset) = n;
	*(struct map_entry ***)(base + f->offset) = entp;
	return n;
}

static void
fill_udp(const struct dp_udp *u, Corepipe__V1__Stats *st, struct udp_stats_msgs *x)
{
	if (u == NULL)
		return;
	for (unsigned i = 0; i < u->n_ports; i++) {
		const struct dp_port *p = &u->port[i];
		Corepipe__V1__UdpPortStats *m = &x->m[i];
		struct dp_udp_stats s;
		struct dp_port_link l;
		struct dp_port_dev_stats d;
		char ip[16];
		unsigned n = 0;

		corepipe__v1__udp_port_stats__init(m);
		dp_udp_stats_read(u, i, &s);
		dp_port_link(p, &l);
		dp_port_dev_stats(p, &d);
		dp_ipv4_format(p->conf.ip, ip);
		snprintf(x->addr[i], sizeof(x->addr[i]), "%s/%u", ip, p->conf.prefix_len);
		rte_ether_format_addr(x->mac[i], sizeof(x->mac[i]), &p->mac);
		m->name = (char *)p->conf.name;
		m->device = (char *)p->conf.devargs;
		m->driver = (char *)p->driver;
		m->address = x->addr[i];
		m->mac = x->mac[i];
		m->udp_port = p->conf.udp_port;
		m->queues = p->n_queues;
		m->link_up = l.up;
		m->imissed = d.imissed;
		for (unsigned r = 0; r < dp_udp_stats_n_desc; r++)
			if (dp_udp_stats_desc[r].rpc != NULL)
				n += fill_stat_field(&m->base, &dp_udp_stats_desc[r], &s,
						     &x->ent[i][n], &x->entp[i][n]);
		x->mp[i] = m;
	}
	st->n_udp_ports = u->n_ports;
	st->udp_ports = x->mp;
}

/* GetStats' per-pipeline part (the rows /metrics reads), in storage that outlives the pack. */
struct pipe_stats_msgs {
	char (*name)[DP_NAME_MAX];	      /* by id; "" when not registered */
	struct dp_met_row *dp, *e2e;	      /* by id */
	Corepipe__V1__PipelineStats *m, **mp; /* emitted */
	Corepipe__V1__PipelineStats__ByCodeEntry (*ce)[DP_STATUS_MAX];
	Corepipe__V1__PipelineStats__ByCodeEntry *(*cep)[DP_STATUS_MAX];
};

static void
pipe_name_cb(uint32_t id, const char *name, void *arg)
{
	struct pipe_stats_msgs *x = arg;

	snprintf(x->name[id], DP_NAME_MAX, "%s", name);
}

static void
pipe_stats_free(struct pipe_stats_msgs *x)
{
	free(x->name);
	free(x->dp);
	free(x->e2e);
	free(x->m);
	free(x->mp);
	free(x->ce);
	free(x->cep);
}

/* A registered pipeline, or an id with completions or answers. */
static bool
row_shown(const struct pipe_stats_msgs *x, uint32_t id)
{
	uint64_t reqs = 0;

	for (unsigned c = 0; c < DP_STATUS_MAX; c++)
		reqs += x->dp[id].by_code[c];
	return x->name[id][0] != '\0' || reqs != 0 || x->e2e[id].count != 0;
}

/* Fill st->pipelines: registered pipelines (also at zero), inline and deleted ids with work.
 * @return 0 or -ENOMEM. */
static int
fill_pipelines(struct cp_server *srv, Corepipe__V1__Stats *st, struct pipe_stats_msgs *x)
{
	const struct dp_dataplane *dp = srv->dp;
	const size_t n = DP_REGISTRY_MAX + 1;
	unsigned k = 0;

	unsigned emit = 0;

	x->name = calloc(n, sizeof(*x->name));
	x->dp = calloc(n, sizeof(*x->dp));
	x->e2e = calloc(n, sizeof(*x->e2e));
	if (!x->name || !x->dp || !x->e2e)
		return -ENOMEM;
	dp_registry_names(dp->reg, pipe_name_cb, x);
	for (unsigned w = 0; w < dp->n_workers; w++)
		for (uint32_t id = 0; id < n; id++)
			dp_metrics_read_row(dp->workers[w]->lc.met, id, &x->dp[id]);
	for (unsigned f = 0; f < srv->n_fe; f++)
		for (uint32_t id = 0; id < n; id++)
			dp_metrics_read_row(srv->fe[f]->e2e, id, &x->e2e[id]);
	for (uint32_t id = 0; id < n; id++)
		emit += row_shown(x, id);
	/* Messages for the rows shown only (a few, not the registry's 4097). */
	x->m = calloc(emit + 1, sizeof(*x->m));
	x->mp = calloc(emit + 1, sizeof(*x->mp));
	x->ce = calloc(emit + 1, sizeof(*x->ce));
	x->cep = calloc(emit + 1, sizeof(*x->cep));
	if (!x->m || !x->mp || !x->ce || !x->cep)
		return -ENOMEM;
	for (uint32_t id = 0; id < n; id++) {
		Corepipe__V1__PipelineStats *m = &x->m[k];
		const struct dp_met_row *r = &x->dp[id];
		unsigned nc = 0;
		uint64_t reqs = 0;

		for (unsigned c = 0; c < DP_STATUS_MAX; c++)
			reqs += r->by_code[c];
		if (!row_shown(x, id))
			continue;
		if (k == emit)
			break; /* a row that moved between the passes waits for the next call */
		corepipe__v1__pipeline_stats__init(m);
		m->name = id == 0 ? "_inline" : x->name[id][0] ? x->name[id] : "_deleted";
		m->id = id;
		m->requests = reqs;
		m->bytes_in = r->bytes_in;
		m->bytes_out = r->bytes_out;
		m->dataplane_seconds = (double)r->sum_cycles / (double)dp->tsc_hz;
		m->server_seconds = (double)x->e2e[id].sum_cycles / 1e9; /* a 1 GHz "clock" */
		m->answered = x->e2e[id].count;
		for (unsigned c = 0; c < DP_STATUS_MAX; c++) {
			if (r->by_code[c] == 0)
				continue;
			corepipe__v1__pipeline_stats__by_code_entry__init(&x->ce[k][nc]);
			x->ce[k][nc].key = (char *)dp_status_name((int)c);
			x->ce[k][nc].value = r->by_code[c];
			x->cep[k][nc] = &x->ce[k][nc];
			nc++;
		}
		m->n_by_code = nc;
		m->by_code = x->cep[k];
		x->mp[k] = m;
		k++;
	}
	st->n_pipelines = k;
	st->pipelines = x->mp;
	return 0;
}

static void
get_stats(struct cp_server *srv, struct cp_call *c)
{
	const struct dp_dataplane *dp = srv->dp;
	Corepipe__V1__Stats st = COREPIPE__V1__STATS__INIT;
	Corepipe__V1__WorkerStats ws[DP_WORKERS_MAX], *wsp[DP_WORKERS_MAX];
	code_entry codes[DP_WORKERS_MAX][DP_STATUS_MAX], *codep[DP_WORKERS_MAX][DP_STATUS_MAX];
	reject_entry rej[CP_REJECT_MAX + 4], *rejp[CP_REJECT_MAX + 4];
	Corepipe__V1__PoolStats ps[DP_POOL_MAX_CLASSES + 1 + DP_WORKERS_MAX];
	Corepipe__V1__PoolStats *psp[DP_POOL_MAX_CLASSES + 1 + DP_WORKERS_MAX];
	char pnames[DP_POOL_MAX_CLASSES + DP_WORKERS_MAX][32];
	uint64_t deadline = 0, cancelled = 0, in_flight = 0, stopped_deadline = 0,
		 stopped_cancel = 0;
	char roles[DP_WORKERS_MAX][48];
	struct udp_stats_msgs udp;
	struct pipe_stats_msgs pipes = {0};
	struct cp_fe_stats fes;
	ProtobufCMessage *rq;
	unsigned np = 0;

	rq = cp_call_unpack(c, &corepipe__v1__get_stats_request__descriptor);
	if (rq == NULL)
		return;
	protobuf_c_message_free_unpacked(rq, NULL);
	for (unsigned i = 0; i < dp->n_workers; i++) {
		const struct dp_worker *w = dp->workers[i];
		struct dp_worker_stats s;
		uint64_t by_status[DP_STATUS_MAX];
		unsigned nc = 0;

		dp_worker_stats_read(w, &s);
		corepipe__v1__worker_stats__init(&ws[i]);
		ws[i].index = w->lc.index;
		ws[i].lcore = w->lc.lcore;
		ws[i].cpu = w->lc.cpu;
		ws[i].roles = (char *)dp_role_names(w->lc.roles, roles[i], sizeof(roles[i]));
		for (unsigned k = 0; k < w->n_links; k++)
			ws[i].queue_depth += rte_ring_count(w->link[k]->in);
		ws[i].in_flight = dp_worker_in_flight(w);
		ws[i].busy_ratio =
		    s.r.total_cycles ? (double)s.r.busy_cycles / (double)s.r.total_cycles : 0.0;
		fill_stat_u64s(&ws[i].base, cp_worker_stats_desc, cp_worker_stats_n_desc, &s);
		stopped_deadline += s.stopped_deadline;
		stopped_cancel += s.stopped_cancel;
		ws[i].shedding = atomic_load_explicit(&w->lc.shedding, memory_order_relaxed);
		ws[i].streams_open = dp_stream_count(dp, i);
		dp_worker_codes_read(w, by_status);
		for (unsigned k = 0; k < DP_STATUS_MAX; k++) {
			if (by_status[k] == 0)
				continue;
			corepipe__v1__worker_stats__by_code_entry__init(&codes[i][nc]);
			codes[i][nc].key = (char *)dp_status_name((int)k);
			codes[i][nc].value = by_status[k];
			codep[i][nc] = &codes[i][nc];
			nc++;
		}
		ws[i].n_by_code = nc;
		ws[i].by_code = codep[i];
		deadline += by_status[DP_DEADLINE_EXCEEDED];
		cancelled += by_status[DP_CANCELLED];
		in_flight += ws[i].in_flight;
		wsp[i] = &ws[i];
	}
	st.n_workers = dp->n_workers;
	st.workers = wsp;
	cp_fe_stats_sum(srv,
			&fes); /* after the workers', as each answer is counted after its run */
	for (unsigned k = 0; k < CP_REJECT_MAX + 4; k++) {
		corepipe__v1__stats__rejected_entry__init(&rej[k]);
		rejp[k] = &rej[k];
		if (k < CP_REJECT_MAX) {
			rej[k].key = (char *)cp_reject_name((enum cp_reject)k);
			rej[k].value = fes.rejected[k];
		}
	}
	/* Skipped by the workers: expired, or cancelled by the client, before they ran; and
	 * running work they stopped for the same reasons (between quanta of the bulk lane). */
	rej[CP_REJECT_MAX].key = "deadline";
	rej[CP_REJECT_MAX].value = deadline - stopped_deadline;
	rej[CP_REJECT_MAX + 1].key = "cancelled";
	rej[CP_REJECT_MAX + 1].value = cancelled - stopped_cancel;
	rej[CP_REJECT_MAX + 2].key = "deadline_running";
	rej[CP_REJECT_MAX + 2].value = stopped_deadline;
	rej[CP_REJECT_MAX + 3].key = "cancelled_running";
	rej[CP_REJECT_MAX + 3].value = stopped_cancel;
	st.n_rejected = CP_REJECT_MAX + 4;
	st.memory_budget_bytes = cp_server_live(srv)->memory_budget;
	st.rejected = rejp;
	for (unsigned i = 0; i < dp->pools->n_classes; i++, np++) {
		corepipe__v1__pool_stats__init(&ps[np]);
		snprintf(pnames[i], sizeof(pnames[i]), "buf_%u", dp->pools->size[i]);
		ps[np].name = pnames[i];
		ps[np].buffer_bytes = dp->pools->size[i];
		ps[np].capacity = dp->pools->count[i];
		ps[np].in_use = dp_pools_in_use(dp->pools, i);
		psp[np] = &ps[np];
	}
	corepipe__v1__pool_stats__init(&ps[np]);
	ps[np].name = "descriptors";
	ps[np].buffer_bytes = sizeof(struct dp_req);
	ps[np].capacity = dp->req_pool->size;
	ps[np].in_use = rte_mempool_in_use_count(dp->req_pool);
	psp[np] = &ps[np];
	np++;
	for (unsigned i = 0; i < dp->n_workers; i++, np++) {
		corepipe__v1__pool_stats__init(&ps[np]);
		snprintf(pnames[DP_POOL_MAX_CLASSES + i], 32, "stream_slots_w%u", i);
		ps[np].name = pnames[DP_POOL_MAX_CLASSES + i];
		ps[np].buffer_bytes = sizeof(struct dp_stream);
		ps[np].capacity = dp->stream_pool[i]->size;
		ps[np].in_use = dp_stream_count(dp, i);
		psp[np] = &ps[np];
	}
	st.n_pools = np;
	st.pools = psp;
	st.in_flight = in_flight;
	/* answered, streams (this GetStats call included), pipeline_streams, memory_in_use_bytes */
	fill_stat_u64s(&st.base, cp_fe_stats_desc, cp_fe_stats_n_desc, &fes);
	cp_server_connections(srv, &st.connections, &st.connections_refused);
	fill_udp(dp->udp, &st, &udp);
	if (fill_pipelines(srv, &st, &pipes) != 0)
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
	else
		cp_call_reply(c, GRPC_STATUS_OK, &st.base, NULL);
	pipe_stats_free(&pipes);
}

static void
fill_list(char **out, const struct cp_reload_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		out[i] = (char *)l->name[i];
}

/* A reload asked for by a call: run on the control thread (files are read there, never on a
 * front end), answered back on the call's front end. */
struct reload_job {
	struct cp_ctl_job job;
	struct cp_fe_msg msg;
	struct cp_call *c;
	int rc;
	struct cp_reload_report rep;
};

static void
reload_answer(struct cp_frontend *fe, void *arg)
{
	struct reload_job *j = arg;
	struct cp_call *c = j->c;
	Corepipe__V1__ReloadConfigResponse r = COREPIPE__V1__RELOAD_CONFIG_RESPONSE__INIT;
	char *lists[5][CP_RELOAD_LIST_MAX];

	(void)fe;
	if (j->rc != 0) {
		/* Registry full is a resource; a file that would weaken security without saying
		 * so is valid YAML the running state rules out; the rest is a bad file. */
		cp_call_reply(c,
			      j->rc == -ENOSPC	? GRPC_STATUS_RESOURCE_EXHAUSTED
			      : j->rc == -EPERM ? GRPC_STATUS_FAILED_PRECONDITION
						: GRPC_STATUS_INVALID_ARGUMENT,
			      NULL, "config not reloaded, nothing changed: %s", j->rep.error);
	} else {
		fill_list(lists[0], &j->rep.added);
		fill_list(lists[1], &j->rep.replaced);
		fill_list(lists[2], &j->rep.removed);
		fill_list(lists[3], &j->rep.applied);
		fill_list(lists[4], &j->rep.needs_restart);
		r.n_added = j->rep.added.n;
		r.added = lists[0];
		r.n_replaced = j->rep.replaced.n;
		r.replaced = lists[1];
		r.n_removed = j->rep.removed.n;
		r.removed = lists[2];
		r.n_applied = j->rep.applied.n;
		r.applied = lists[3];
		r.n_needs_restart = j->rep.needs_restart.n;
		r.needs_restart = lists[4];
		r.path = (char *)c->fe->srv->reload.path;
		cp_call_reply(c, GRPC_STATUS_OK, &r.base, NULL);
	}
	cp_call_release(c); /* the reference held while the job ran */
	free(j);
}

static void
reload_run(struct cp_ctl_job *job)
{
	struct reload_job *j = caa_container_of(job, struct reload_job, job);

	j->rc = cp_reload_run(j->c->fe->srv, &j->rep);
	cp_fe_post(j->c->fe, &j->msg);
}

static void
reload_config(struct cp_server *srv, struct cp_call *c)
{
	ProtobufCMessage *rq = cp_call_unpack(c, &corepipe__v1__reload_config_request__descriptor);
	struct reload_job *j;

	if (rq == NULL)
		return;
	protobuf_c_message_free_unpacked(rq, NULL);
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	j->c = c;
	j->job.run = reload_run;
	j->msg.fn = reload_answer;
	j->msg.arg = j;
	c->refs++; /* until reload_answer */
	cp_ctl_submit(srv->ctl, &j->job);
}

struct cp_method cp_admin_methods[] = {
#define ADMIN(name, fn, n)                                                                         \
	{                                                                                          \
		.path = "/corepipe.v1.Admin/" name, .handler = fn, .prealloc = n,                  \
		.perm = CP_PERM_ADMIN                                                              \
	}
    ADMIN("ListNodeTypes", list_node_types, 2),
    ADMIN("PutPipeline", put_pipeline, 4),
    ADMIN("GetPipeline", get_pipeline, 4),
    ADMIN("ListPipelines", list_pipelines, 2),
    ADMIN("DeletePipeline", delete_pipeline, 2),
    ADMIN("GetStats", get_stats, 2),
    ADMIN("ReloadConfig", reload_config, 2),
#undef ADMIN
    {.path = NULL},
};

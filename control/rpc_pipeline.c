/*
 * corepipe.v1.Pipeline: Execute.
 *
 * The front end that received the call decodes and validates it, resolves the pipeline to a
 * reference (a named one on its RCU read side: a concurrent replace never fails a request, it
 * runs on the version it found; an inline one by compiling it), copies the input into a pool
 * buffer and either runs it at once on its own lcore or hands it to a worker
 * (control/frontend.h); either way it answers the call itself (execute_complete, reached through
 * the call's struct cp_work).
 */
#include "control/config.h"
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/pbconv.h"
#include "control/rpc.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/stat.h"

#include <errno.h>
#include <grpc/support/time.h>
#include <rte_cycles.h>
#include <stdio.h>
#include <string.h>

int
cp_decode_payload(const Corepipe__V1__Payload *in, struct dp_format *fmt, const uint8_t **data,
		  size_t *len, char *msg, size_t msg_size)
{
	const Corepipe__V1__AudioBuffer *a;
	struct dp_err err;

	memset(fmt, 0, sizeof(*fmt));
	if (in == NULL || in->kind_case == COREPIPE__V1__PAYLOAD__KIND__NOT_SET) {
		snprintf(msg, msg_size, "missing payload (set data or audio)");
		return -EINVAL;
	}
	if (in->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA) {
		fmt->kind = DP_KIND_BYTES;
		*data = in->data.data;
		*len = in->data.len;
		return 0;
	}
	a = in->audio;
	if (a->channels > UINT16_MAX) {
		snprintf(msg, msg_size, "audio: channels %u out of range (1..65535)", a->channels);
		return -EINVAL;
	}
	fmt->kind = DP_KIND_AUDIO;
	fmt->fmt = (uint8_t)(a->format <= 0xff ? a->format : 0xff);
	fmt->rate = a->sample_rate;
	fmt->channels = (uint16_t)a->channels;
	*data = a->samples.data;
	*len = a->samples.len;
	if (dp_format_check(fmt, *len, &err) != DP_OK) {
		snprintf(msg, msg_size, "%s", err.msg);
		return -EINVAL;
	}
	return 0;
}

/*
 * Time left for this call: the client's deadline, or the server default when it set none,
 * never more than the server maximum. An already expired deadline gives 1 ns, so the request
 * is answered DEADLINE_EXCEEDED without running.
 */
static uint64_t
timeout_ns(const struct cp_live *live, const struct cp_call *c)
{
	uint64_t max = (uint64_t)live->max_timeout_ms * 1000000u;
	uint64_t ns = (uint64_t)live->default_timeout_ms * 1000000u;

	if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) != 0) {
		gpr_timespec left =
		    gpr_time_sub(gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC),
				 gpr_now(GPR_CLOCK_MONOTONIC));
		int64_t l = left.tv_sec * 1000000000ll + left.tv_nsec;

		ns = l > 0 ? (uint64_t)l : 1;
	}
	return ns < max ? ns : max;
}

struct dp_pipeline *
cp_resolve_pipeline(struct cp_frontend *fe, const char *name,
		    const Corepipe__V1__PipelineSpec *inline_spec, const char *what, int *status,
		    char *msg, size_t msg_len)
{
	const struct cp_live *live = cp_server_live(fe->srv);
	struct dp_pipeline *p;

	if (name == NULL && inline_spec == NULL) {
		*status = DP_INVALID_ARGUMENT;
		snprintf(msg, msg_len, "%spipeline: set either name or inline", what);
		return NULL;
	}
	if (inline_spec == NULL) {
		const struct dp_pipeline *found;

		if (!dp_pipeline_name_valid(name)) {
			*status = DP_INVALID_ARGUMENT;
			snprintf(msg, msg_len,
				 "%spipeline name '%.64s' is not valid ([A-Za-z0-9_.-]{1,63})",
				 what, name);
			return NULL;
		}
		/* RCU read side of this front end's lcore; the reference taken here keeps the
		 * version for the request's whole life (a replace meanwhile does not touch it,
		 * and a stateful pipeline's slot matches its layout). */
		found = dp_registry_lookup(fe->dp->reg, name, dp_name_hash(name, strlen(name)));
		if (found == NULL) {
			dp_stat_add(&fe->st.rejected[CP_REJECT_NOT_FOUND], 1);
			*status = DP_NOT_FOUND;
			snprintf(msg, msg_len, "%spipeline '%s' not found", what, name);
			return NULL;
		}
		p = (struct dp_pipeline *)found;
		dp_pipeline_ref(p);
		return p;
	} else {
		struct dp_spec view;
		struct dp_err err;

		if (cp_spec_view(inline_spec, &view) != 0) {
			*status = DP_RESOURCE_EXHAUSTED;
			snprintf(msg, msg_len, "%sout of memory", what);
			return NULL;
		}
		p = dp_pipeline_compile(&view, live->max_nodes, &err);
		cp_spec_view_free(&view);
		if (p == NULL) {
			*status = err.status;
			snprintf(msg, msg_len, "%sinline pipeline: %s", what, err.msg);
		}
		return p;
	}
}

/* ==== Execute, step by step ================================================================= */

/*
 * One Execute call on its way in. Each step below either moves it on (returns 0) or answers
 * the call itself and returns -1; exec_release() then gives back whatever the call still holds.
 */
struct exec {
	struct cp_frontend *fe;
	struct cp_call *c;
	const struct cp_live *live;
	Corepipe__V1__ExecuteRequest *rq;
	struct dp_format fmt;
	const uint8_t *data; /* the input's bytes, in rq (NULL for an empty payload) */
	size_t len;
	struct dp_pipeline *pl;	   /* a reference until the descriptor takes it */
	struct dp_stream *slot;	   /* a stateful pipeline's slot until the descriptor takes it */
	uint8_t prio;		   /* DP_PRIO_* */
	uint64_t mem;		   /* admission estimate of its peak memory */
	uint64_t est;		   /* placement's cost estimate (cycles) */
	int where;		   /* CP_PLACE_INLINE or a candidate */
	char msg[DP_ERR_MAX + 96]; /* a step's error text */
};

/* Refuse with pushback, counted by reason. */
#define REFUSE(fe, c, why, ...)                                                                    \
	do {                                                                                       \
		dp_stat_add(&(fe)->st.rejected[why], 1);                                           \
		cp_call_reply_exhausted(c, cp_server_pushback_ms((fe)->srv), __VA_ARGS__);         \
	} while (0)

/* Decode and validate: the request message and its input payload. */
static int
exec_decode(struct exec *x)
{
	x->rq = (Corepipe__V1__ExecuteRequest *)cp_call_unpack(
	    x->c, &corepipe__v1__execute_request__descriptor);
	if (x->rq == NULL)
		return -1;
	/* Access log (access_log.h): the pipeline this call names, "_inline" for an inline one. */
	cp_alog_pipeline(&x->c->alog,
			 x->rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME
			     ? x->rq->name
			     : NULL);
	if (cp_decode_payload(x->rq->input, &x->fmt, &x->data, &x->len, x->msg, sizeof(x->msg)) !=
	    0) {
		cp_call_reply(x->c, GRPC_STATUS_INVALID_ARGUMENT, NULL, "input: %s", x->msg);
		return -1;
	}
	return 0;
}

/* Resolve: a reference on the named or inline pipeline (cp_resolve_pipeline). */
static int
exec_resolve(struct exec *x)
{
	const Corepipe__V1__ExecuteRequest *rq = x->rq;
	int status;

	x->pl = cp_resolve_pipeline(
	    x->fe,
	    rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME ? rq->name : NULL,
	    rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_INLINE ? rq->inline_
										: NULL,
	    "", &status, x->msg, sizeof(x->msg));
	if (x->pl == NULL) {
		cp_call_reply(x->c, (grpc_status_code)status, NULL, "%s", x->msg);
		return -1;
	}
	return 0;
}

/* Admit: reply memory, priority, memory admission, placement (or shedding), in-flight cap. */
static int
exec_admit(struct exec *x)
{
	struct cp_frontend *fe = x->fe;
	const struct cp_live *live = x->live;

	/* Reply memory: the bytes this front end holds for answers not yet sent. */
	if (cp_fe_over_budget(fe, false)) {
		REFUSE(fe, x->c, CP_REJECT_MEMORY,
		       "reply memory budget in use (%u bytes, server.max_response_bytes): clients "
		       "are not reading their answers",
		       fe->srv->conf.cfg->max_response_bytes);
		return -1;
	}
	if (cp_call_priority(x->c, live, &x->prio) != 0)
		return -1;
	if (cp_fe_admit_memory(fe, x->c, live, x->pl, &x->fmt, (uint32_t)x->len, &x->mem) != 0)
		return -1;
	x->where = cp_fe_place_prio(fe, x->pl->id, (uint32_t)x->len, x->prio, &x->est);
	if (x->where == CP_PLACE_SHED) {
		const struct dp_shed_conf *sc = rcu_dereference(fe->dp->shed_conf);

		REFUSE(fe, x->c, CP_REJECT_SHEDDING,
		       "load shedding: every worker has been over its queue high-water mark (%u%%) "
		       "or busy (%u%%) for %u ms",
		       sc->high_pct, sc->busy_pct, sc->window_ms);
		return -1;
	}
	if (x->where != CP_PLACE_INLINE && live->inflight_cap != 0) {
		/* limits.max_in_flight: a live cap on handed-over work below the pool's size. */
		uint64_t n = 0;

		for (unsigned k = 0; k < fe->n_cand; k++)
			n += dp_worker_in_flight(fe->cand[k]);
		if (n >= live->inflight_cap) {
			REFUSE(fe, x->c, CP_REJECT_INFLIGHT_LIMIT,
			       "in-flight limit reached (%u requests, limits.max_in_flight)",
			       live->inflight_cap);
			return -1;
		}
	}
	return 0;
}

/* Reserve: a stateful pipeline's slot on the chosen worker, then a descriptor and its buffer
 * into *@p out. */
static int
exec_reserve(struct exec *x, struct dp_req **out)
{
	struct cp_frontend *fe = x->fe;
	int rc;

	if (x->pl->state_size != 0) {
		/* Stateful (resample, vad): a slot on the chosen worker for this request. */
		struct dp_err err;
		int w = x->where == CP_PLACE_INLINE ? (int)fe->own->lc.index
						    : (int)fe->cand[x->where]->lc.index;

		if (dp_stream_open(fe->dp, x->pl, w, UINT64_MAX, &x->slot) != 0) {
			REFUSE(fe, x->c, CP_REJECT_STREAMS,
			       "every worker has all its %u stream slots in use",
			       fe->dp->conf.max_streams_per_worker);
			return -1;
		}
		if (dp_stream_init(x->slot, &x->fmt, &err) != 0) {
			cp_call_reply(x->c, (grpc_status_code)err.status, NULL, "%s", err.msg);
			return -1;
		}
	}
	rc = dp_req_alloc(fe->dp, (uint32_t)x->len, out);
	if (rc == -E2BIG) {
		dp_stat_add(&fe->st.rejected[CP_REJECT_TOO_LARGE], 1);
		cp_call_reply(x->c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL,
			      "payload of %zu bytes exceeds the largest buffer (%u bytes)", x->len,
			      dp_pools_max_size(fe->dp->pools));
	} else if (rc == -ENOBUFS) {
		REFUSE(fe, x->c, CP_REJECT_INFLIGHT_LIMIT, "in-flight limit reached (%u requests)",
		       fe->dp->conf.max_in_flight);
	} else if (rc != 0) {
		REFUSE(fe, x->c, CP_REJECT_POOL_EMPTY, "buffer pool empty for a %zu-byte payload",
		       x->len);
	}
	return rc == 0 ? 0 : -1;
}

/* Fill descriptor @p req: the input's copy, and the pipeline and slot references it takes. */
static void execute_complete(struct cp_frontend *fe, struct dp_req *req);

static void
exec_fill(struct exec *x, struct dp_req *req)
{
	struct cp_call *c = x->c;

	if (x->len != 0) /* data may be NULL for an empty payload */
		memcpy(req->buf->data, x->data, x->len);
	req->buf->len = (uint32_t)x->len;
	req->fmt = x->fmt;
	c->work.complete = execute_complete;
	req->cookie = &c->work;
	req->cancelled = &c->cancelled_flag;
	req->prio = x->prio;
	req->pipeline = x->pl; /* the descriptor owns the pipeline reference now */
	x->pl = NULL;
	if (x->rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME)
		memcpy(req->name, x->rq->name, strlen(x->rq->name) + 1); /* valid: < DP_NAME_MAX */
	req->deadline_tsc = dp_dataplane_deadline_tsc(x->fe->dp, timeout_ns(x->live, c));
	if (x->slot != NULL) {
		req->stream = x->slot; /* the descriptor owns the slot now */
		req->owns_stream = 1;
		req->run_flags = DP_RUN_FLUSH;
		x->slot = NULL;
	}
}

/* Place and submit @p req (owned): run it here and answer now, or hand it to the chosen worker
 * (answered when collected), or answer RESOURCE_EXHAUSTED when its link is full. */
static void
exec_submit(struct exec *x, struct dp_req *req)
{
	struct cp_frontend *fe = x->fe;
	struct cp_call *c = x->c;

	if (x->where == CP_PLACE_INLINE) {
		/* The request never leaves this lcore. */
		req->submit_tsc = rte_rdtsc();
		dp_worker_exec(fe->own, req);
		dp_stat_add(&fe->st.inline_runs, 1);
		execute_complete(fe, req);
		return;
	}
	/* Handed over: learn of cancellation (client cancel, deadline, disconnect) while it
	 * waits, so queued work for a dead call is skipped. */
	cp_call_watch_close(c);
	/* The call stays alive until its answer: the reply's batch holds it then. */
	c->refs++;
	req->mem_est = x->mem;
	if (cp_fe_submit(fe, (unsigned)x->where, req, x->est) == 0) {
		/* Held until collected (collect() gives it back). */
		dp_stat_add(&fe->st.mem_in_use, x->mem);
	} else {
		c->refs--;
		dp_stat_add(&fe->st.rejected[CP_REJECT_RING_FULL], 1);
		dp_req_free(fe->dp, req);
		cp_call_reply_exhausted(c, cp_server_pushback_ms(fe->srv),
					"all worker queues are full (%u deep)",
					fe->dp->conf.worker.ring_size);
	}
}

/* What the call still holds after its last step: a slot, a pipeline reference, the message. */
static void
exec_release(struct exec *x)
{
	dp_stream_close(x->slot);
	dp_pipeline_unref(x->pl);
	if (x->rq != NULL)
		protobuf_c_message_free_unpacked(&x->rq->base, NULL);
}

/* Pipeline/Execute: decode, resolve, admit, reserve, fill, submit; each step that stops the
 * call has answered it. */
static void
execute(struct cp_server *srv, struct cp_call *c)
{
	struct exec x = {.fe = c->fe, .c = c, .live = cp_server_live(srv)};
	struct dp_req *req;

	if (exec_decode(&x) == 0 && exec_resolve(&x) == 0 && exec_admit(&x) == 0 &&
	    exec_reserve(&x, &req) == 0) {
		exec_fill(&x, req);
		exec_submit(&x, req);
	}
	exec_release(&x);
}

/* ==== Completion (the front end, inline or collected) ======================================= */

void
cp_output_view(const struct dp_req *req, Corepipe__V1__Payload *out,
	       Corepipe__V1__AudioBuffer *audio)
{
	corepipe__v1__payload__init(out);
	corepipe__v1__audio_buffer__init(audio);
	if (req->fmt.kind == DP_KIND_AUDIO) {
		audio->format = (Corepipe__V1__SampleFormat)req->fmt.fmt;
		audio->sample_rate = req->fmt.rate;
		audio->channels = req->fmt.channels;
		audio->samples.data = req->buf->data;
		audio->samples.len = req->buf->len;
		out->kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
		out->audio = audio;
	} else {
		out->kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
		out->data.data = req->buf->data;
		out->data.len = req->buf->len;
	}
}

/* Answer the call behind a run Execute request (its work), inline or handed over. Consumes
 * @p req (freed before the answer is sent). */
static void
execute_complete(struct cp_frontend *fe, struct dp_req *req)
{
	struct cp_call *c = caa_container_of(req->cookie, struct cp_call, work);
	bool handed_over = c->close_posted;
	Corepipe__V1__ExecuteResponse resp;
	Corepipe__V1__Payload out;
	Corepipe__V1__AudioBuffer audio;
	Corepipe__V1__ExecuteResponse__AnnotationsEntry ents[DP_ANNOT_MAX];
	Corepipe__V1__ExecuteResponse__AnnotationsEntry *eptr[DP_ANNOT_MAX];
	grpc_status_code st = (grpc_status_code)req->status;
	char msg[DP_ERR_MAX + DP_NAME_MAX + 16];
	grpc_slice s;
	size_t n;

	uint32_t id = req->pipeline	    ? req->pipeline->id
		      : req->stream != NULL ? req->stream->p->id
					    : 0;

	dp_stat_add(&fe->st.answered, 1);
	dp_metrics_observe(fe->e2e, id, cp_now_ns() - c->start_ns);
	if (c->alog.log) {
		/* Access log: time waiting on a worker (submit to now, less the nodes). */
		uint64_t in_dp = (uint64_t)((double)(rte_rdtsc() - req->submit_tsc) * 1e9 /
					    (double)fe->dp->tsc_hz);

		cp_alog_work(&c->alog, in_dp > req->dp_ns ? in_dp - req->dp_ns : 0, req->dp_ns);
	}
	/*
	 * The descriptor and its buffer go back to their pools before the answer leaves: once
	 * a client has its answer, nothing of its request is held any more (tests and GetStats
	 * rely on that ordering).
	 */
	if (req->status != DP_OK) {
		/* Name the pipeline when a node of a registered one failed. */
		if (req->name[0] != '\0' && req->status != DP_NOT_FOUND &&
		    req->status != DP_DEADLINE_EXCEEDED && req->status != DP_CANCELLED)
			snprintf(msg, sizeof(msg), "pipeline '%s': %s", req->name,
				 req->res.err.msg);
		else
			snprintf(msg, sizeof(msg), "%s", req->res.err.msg);
		dp_req_free(fe->dp, req);
		if (st == GRPC_STATUS_RESOURCE_EXHAUSTED) {
			/* A node found no free buffer: retryable, said so and counted. */
			dp_stat_add(&fe->st.rejected[CP_REJECT_POOL_EMPTY], 1);
			cp_call_reply_exhausted(c, cp_server_pushback_ms(fe->srv), "%s", msg);
		} else {
			cp_call_reply(c, st, NULL, "%s", msg);
		}
	} else {
		corepipe__v1__execute_response__init(&resp);
		cp_output_view(req, &out, &audio);
		resp.output = &out;
		for (unsigned i = 0; i < req->res.n_annot; i++) {
			corepipe__v1__execute_response__annotations_entry__init(&ents[i]);
			ents[i].key = req->res.annot[i].key;
			ents[i].value = req->res.annot[i].val;
			eptr[i] = &ents[i];
		}
		resp.n_annotations = req->res.n_annot;
		resp.annotations = eptr;
		resp.dataplane_ns = req->dp_ns;
		/* Pack straight into the slice gRPC sends: the output's only copy. */
		n = corepipe__v1__execute_response__get_packed_size(&resp);
		s = grpc_slice_malloc(n);
		corepipe__v1__execute_response__pack(&resp, GRPC_SLICE_START_PTR(s));
		dp_req_free(fe->dp, req);
		cp_fe_charge(fe, c, n);
		cp_call_reply_slice(c, s);
	}
	if (handed_over)
		cp_call_release(c); /* the reference held while it was out (execute) */
}

struct cp_method cp_pipeline_methods[] = {
    {.path = "/corepipe.v1.Pipeline/Execute",
     .handler = execute,
     .prealloc = 256,
     .perm = CP_PERM_EXECUTE},
    {.path = "/corepipe.v1.Pipeline/ExecuteStream",
     .handler = cp_execute_stream,
     .prealloc = 32,
     .kind = CP_STREAMING,
     .perm = CP_PERM_EXECUTE,
     .closed = cp_stream_closed,
     .gone = cp_stream_gone},
    {.path = NULL},
};

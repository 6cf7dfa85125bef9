/*
 * corepipe.v1.Pipeline: Execute.
 *
 * The CQ thread decodes and validates the request, copies the input into a pool buffer,
 * resolves an inline pipeline by compiling it, and submits a descriptor to the least-loaded
 * worker. The worker looks a named pipeline up itself (RCU read side), so a concurrent replace
 * never fails a request: it runs on whichever version it found. The responder thread turns the
 * completed descriptor into the reply (cp_execute_complete).
 */
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/pbconv.h"
#include "control/rpc.h"
#include "corepipe/v1/corepipe.pb-c.h"

#include <errno.h>
#include <grpc/support/time.h>
#include <rte_cycles.h>
#include <stdio.h>
#include <string.h>

static grpc_status_code
to_grpc(int st)
{
	return (grpc_status_code)st;
}

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
 * never more than the server maximum. An already expired deadline gives 1 ns, so the worker
 * answers DEADLINE_EXCEEDED without running it.
 */
static uint64_t
timeout_ns(const struct cp_server *srv, const struct cp_call *c)
{
	uint64_t max = (uint64_t)srv->conf.max_timeout_ms * 1000000u;
	uint64_t ns = (uint64_t)srv->conf.default_timeout_ms * 1000000u;

	if (gpr_time_cmp(c->deadline, gpr_inf_future(c->deadline.clock_type)) != 0) {
		gpr_timespec left =
		    gpr_time_sub(gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC),
				 gpr_now(GPR_CLOCK_MONOTONIC));
		int64_t l = left.tv_sec * 1000000000ll + left.tv_nsec;

		ns = l > 0 ? (uint64_t)l : 1;
	}
	return ns < max ? ns : max;
}

static void
execute(struct cp_server *srv, struct cp_call *c)
{
	Corepipe__V1__ExecuteRequest *rq;
	struct dp_pipeline *pl = NULL;
	struct dp_stream *slot = NULL;
	struct dp_format fmt;
	char msg[DP_ERR_MAX + 64];
	const uint8_t *data = NULL;
	size_t len = 0;
	struct dp_req *req;
	uint64_t allowed;
	int rc;

	rq = (Corepipe__V1__ExecuteRequest *)cp_call_unpack(
	    c, &corepipe__v1__execute_request__descriptor);
	if (rq == NULL)
		return;
	/* Access log (access_log.h): the pipeline this call names, "_inline" for an inline one. */
	cp_alog_pipeline(&c->alog, rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME
				       ? rq->name
				       : NULL);
	if (cp_decode_payload(rq->input, &fmt, &data, &len, msg, sizeof(msg)) != 0) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL, "input: %s", msg);
		goto out;
	}

	switch (rq->pipeline_case) {
	case COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME:
		if (!dp_pipeline_name_valid(rq->name)) {
			cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
				      "pipeline name '%.64s' is not valid ([A-Za-z0-9_.-]{1,63})",
				      rq->name);
			goto out;
		}
		/* A reference to the version current now: a replace while the request waits
		 * does not affect it, and a stateful pipeline's slot matches its layout. */
		pl = dp_registry_get(srv->dp->reg, rq->name);
		if (pl == NULL) {
			CP_STAT_INC(srv->rejected[CP_REJECT_NOT_FOUND]);
			cp_call_reply(c, GRPC_STATUS_NOT_FOUND, NULL, "pipeline '%s' not found",
				      rq->name);
			goto out;
		}
		break;
	case COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_INLINE: {
		struct dp_spec view;
		struct dp_err err;

		if (cp_spec_view(rq->inline_, &view) != 0) {
			cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
			goto out;
		}
		pl = dp_pipeline_compile(&view, srv->conf.max_nodes, &err);
		cp_spec_view_free(&view);
		if (pl == NULL) {
			cp_call_reply(c, to_grpc(err.status), NULL, "inline pipeline: %s", err.msg);
			goto out;
		}
		break;
	}
	default:
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
			      "pipeline: set either name or inline");
		goto out;
	}

	allowed = cp_shed_update(&srv->shed, srv->dp, cp_now_ns(), false);
	if (allowed == 0) {
		CP_STAT_INC(srv->rejected[CP_REJECT_SHEDDING]);
		cp_call_reply_exhausted(c, cp_server_pushback_ms(srv),
					"load shedding: every worker has been over its queue "
					"high-water mark (%u%%) or busy (%u%%) for %u ms",
					srv->shed.conf.high_pct, srv->shed.conf.busy_pct,
					srv->shed.conf.window_ms);
		goto out;
	}
	if (srv->conf.inflight_cap != 0) {
		/* limits.max_in_flight: a live cap below the descriptor pool's size. */
		uint64_t n = 0;

		for (unsigned i = 0; i < srv->dp->n_workers; i++)
			n += dp_worker_in_flight(srv->dp->workers[i]);
		if (n >= srv->conf.inflight_cap) {
			CP_STAT_INC(srv->rejected[CP_REJECT_INFLIGHT_LIMIT]);
			cp_call_reply_exhausted(c, cp_server_pushback_ms(srv),
						"in-flight limit reached (%u requests, "
						"limits.max_in_flight)",
						srv->conf.inflight_cap);
			goto out;
		}
	}
	if (pl->state_size != 0) {
		/* Stateful (resample, vad): a slot on the chosen worker for this request. */
		struct dp_err err;

		rc = dp_stream_open(srv->dp, pl, -1, allowed, &slot);
		if (rc != 0) {
			CP_STAT_INC(srv->rejected[CP_REJECT_STREAMS]);
			cp_call_reply_exhausted(c, cp_server_pushback_ms(srv),
						"every worker has all its %u stream slots in use",
						srv->dp->conf.max_streams_per_worker);
			goto out;
		}
		if (dp_stream_init(slot, &fmt, &err) != 0) {
			cp_call_reply(c, to_grpc(err.status), NULL, "%s", err.msg);
			goto out;
		}
	}
	rc = dp_req_alloc(srv->dp, (uint32_t)len, &req);
	if (rc != 0) {
		uint32_t pb = cp_server_pushback_ms(srv);

		CP_STAT_INC(srv->rejected[rc == -ENOBUFS ? CP_REJECT_INFLIGHT_LIMIT
					  : rc == -E2BIG ? CP_REJECT_TOO_LARGE
							 : CP_REJECT_POOL_EMPTY]);
		if (rc == -ENOBUFS)
			cp_call_reply_exhausted(c, pb, "in-flight limit reached (%u requests)",
						srv->dp->conf.max_in_flight);
		else if (rc == -E2BIG)
			cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL,
				      "payload of %zu bytes exceeds the largest buffer (%u bytes)",
				      len, dp_pools_max_size(srv->dp->pools));
		else
			cp_call_reply_exhausted(c, pb, "buffer pool empty for a %zu-byte payload",
						len);
		goto out;
	}
	if (len != 0) /* data may be NULL for an empty payload */
		memcpy(req->buf->data, data, len);
	req->fmt = fmt;
	req->cookie = c;
	req->cancelled = &c->cancelled_flag;
	req->pipeline = pl; /* the descriptor owns the pipeline reference now */
	pl = NULL;
	if (rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME)
		memcpy(req->name, rq->name, strlen(rq->name) + 1); /* valid: < DP_NAME_MAX */
	req->deadline_tsc = dp_dataplane_deadline_tsc(srv->dp, timeout_ns(srv, c));
	if (slot != NULL) {
		req->stream = slot; /* the descriptor owns the slot now */
		req->owns_stream = 1;
		req->run_flags = DP_RUN_FLUSH;
		slot = NULL;
		rc = dp_dataplane_submit_to(srv->dp, req, req->stream->worker);
	} else {
		rc = dp_dataplane_submit_mask(srv->dp, req, allowed);
	}
	if (rc != 0) {
		CP_STAT_INC(srv->rejected[CP_REJECT_RING_FULL]);
		dp_req_free(srv->dp, req);
		cp_call_reply_exhausted(c, cp_server_pushback_ms(srv),
					"all worker queues are full (%u deep)",
					srv->dp->conf.worker.ring_size);
	}
out:
	dp_stream_close(slot);
	dp_pipeline_unref(pl);
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* ==== Completion (responder thread) ========================================================= */

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

void
cp_execute_complete(struct cp_server *srv, struct dp_req *req)
{
	struct cp_call *c = req->cookie;
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

	/* Single writer (the responder): a relaxed load and store, no read-modify-write. */
	__atomic_store_n(&srv->answered, srv->answered + 1, __ATOMIC_RELAXED);
	dp_metrics_observe(srv->e2e, id, cp_now_ns() - c->start_ns);
	if (c->alog.log) {
		/* Access log: time in the dataplane's rings (submit to now, less the nodes). */
		uint64_t in_dp = (uint64_t)((double)(rte_rdtsc() - req->submit_tsc) * 1e9 /
					    (double)srv->dp->tsc_hz);

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
		dp_req_free(srv->dp, req);
		cp_call_reply(c, st, NULL, "%s", msg);
		return;
	}
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
	dp_req_free(srv->dp, req);
	cp_call_reply_slice(c, s);
}

struct cp_method cp_pipeline_methods[] = {
    {.path = "/corepipe.v1.Pipeline/Execute", .handler = execute, .prealloc = 256},
    {.path = "/corepipe.v1.Pipeline/ExecuteStream",
     .handler = cp_execute_stream,
     .prealloc = 32,
     .streaming = true},
    {.path = NULL},
};

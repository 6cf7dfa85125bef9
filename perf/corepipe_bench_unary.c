/*
 * corepipe-bench, unary: corepipe.v1.Pipeline/Execute, one call per slot (-c slots spread over
 * the threads), closed loop (the next call when the last one finishes, after --pause-ms) or
 * open loop (every call at its scheduled time, while a slot is free).
 */
#include "perf/corepipe_bench_grpc.h"
#include "perf/corepipe_bench_input.h"

#include <grpc/support/time.h>
#include <stdlib.h>
#include <string.h>

/* What every thread sends. */
struct unary {
	struct cb_grpc g;
	struct cb_frame req;
};

/* One slot's call. */
struct call {
	struct cb_worker *w;
	unsigned ch;
	grpc_call *call;
	grpc_metadata_array md_init, md_trail;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
	uint64_t t0;
};

/* ==== Set-up ================================================================================ */

static grpc_slice
pack_execute(Corepipe__V1__ExecuteRequest *rq)
{
	grpc_slice s = grpc_slice_malloc(corepipe__v1__execute_request__get_packed_size(rq));

	corepipe__v1__execute_request__pack(rq, GRPC_SLICE_START_PTR(s));
	return s;
}

static void
unary_setup(struct cb_run *run)
{
	struct unary *u = cb_xcalloc(1, sizeof(*u));
	Corepipe__V1__PipelineSpec *spec = cb_spec_make(run->o);
	Corepipe__V1__ExecuteRequest rq;
	Corepipe__V1__Payload p;
	Corepipe__V1__AudioBuffer a;

	corepipe__v1__execute_request__init(&rq);
	if (spec) {
		rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_INLINE;
		rq.inline_ = spec;
	} else {
		rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
		rq.name = (char *)run->o->pipeline;
	}
	cb_payload_fill(&p, &a, run->in, run->in->bytes, run->in->len);
	rq.input = &p;
	u->req = (struct cb_frame){pack_execute(&rq), run->in->bytes, run->in->len};
	cb_grpc_setup(&u->g, run->o);
	run->proto_state = u;
}

static unsigned
unary_connect(struct cb_run *run, struct cb_worker *w, unsigned n)
{
	const struct unary *u = run->proto_state;

	return cb_grpc_connect(&u->g, w, n, "/corepipe.v1.Pipeline/Execute");
}

/* ==== Calls ================================================================================= */

static void
call_start(struct call *c, uint64_t t0)
{
	struct cb_worker *w = c->w;
	const struct unary *u = w->run->proto_state;
	struct cb_grpc_conn *conn = w->conn;
	grpc_op ops[6];
	gpr_timespec dl = cb_grpc_deadline_ms(w->run->o->timeout_ms);

	memset(ops, 0, sizeof(ops));
	c->call = grpc_channel_create_registered_call(
	    conn->ch[c->ch], NULL, GRPC_PROPAGATE_DEFAULTS, conn->cq, conn->reg[c->ch], dl, NULL);
	grpc_metadata_array_init(&c->md_init);
	grpc_metadata_array_init(&c->md_trail);
	c->send = grpc_raw_byte_buffer_create((grpc_slice *)&u->req.packed, 1);
	c->recv = NULL;
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = u->g.n_md;
	ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)u->g.md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = c->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &c->md_init;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &c->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &c->md_trail;
	ops[5].data.recv_status_on_client.status = &c->status;
	ops[5].data.recv_status_on_client.status_details = &c->details;
	c->t0 = t0;
	if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK)
		cb_die("grpc_call_start_batch failed");
}

/* --check-output: the answer's output must be the request's input. */
static void
check_output(struct cb_worker *w, const struct unary *u, grpc_byte_buffer *recv)
{
	grpc_slice s = cb_grpc_read_all(recv);
	Corepipe__V1__ExecuteResponse *r = corepipe__v1__execute_response__unpack(
	    NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));

	grpc_slice_unref(s);
	if (r == NULL || !cb_payload_equal(r->output, u->req.raw, u->req.raw_len))
		w->bad_output++;
	else
		w->ok_checked++;
	if (r)
		corepipe__v1__execute_response__free_unpacked(r, NULL);
}

static void
call_finish(struct call *c)
{
	struct cb_worker *w = c->w;
	uint64_t t1 = now_ns();

	if (cb_reported(w->run, c->t0, t1)) {
		hist_add(&w->hist, t1 - c->t0);
		cb_count_status(w, (int)c->status, (const char *)GRPC_SLICE_START_PTR(c->details),
				GRPC_SLICE_LENGTH(c->details));
		w->last_done_ns = t1;
		if (c->status == GRPC_STATUS_OK && w->run->o->check_output)
			check_output(w, w->run->proto_state, c->recv);
	}
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	grpc_byte_buffer_destroy(c->send);
	grpc_metadata_array_destroy(&c->md_init);
	grpc_metadata_array_destroy(&c->md_trail);
	grpc_slice_unref(c->details);
	grpc_call_unref(c->call);
}

/* How long the completion queue may block: in an open loop with a free slot, until the next
 * send (or the end); with --pause-ms, until the slot resumes; otherwise until a completion. */
static gpr_timespec
wait_until(const struct cb_run *run, uint64_t now, uint64_t due, uint64_t resume, bool can_start)
{
	gpr_timespec dl = gpr_inf_future(GPR_CLOCK_MONOTONIC);

	if (run->o->open_loop && can_start) {
		uint64_t wake = due < run->t_end_ns ? due : run->t_end_ns;

		dl = gpr_time_add(
		    gpr_now(GPR_CLOCK_MONOTONIC),
		    gpr_time_from_nanos(wake > now ? (int64_t)(wake - now) : 0, GPR_TIMESPAN));
	}
	if (resume != 0 && can_start && resume > now)
		dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				  gpr_time_from_nanos((int64_t)(resume - now), GPR_TIMESPAN));
	return dl;
}

static void *
unary_thread(void *arg)
{
	struct cb_worker *w = arg;
	struct cb_run *run = w->run;
	const struct cb_opts *o = run->o;
	struct cb_grpc_conn *conn = w->conn;
	struct call *calls = cb_xcalloc(w->n_slots, sizeof(*calls));
	struct call **free_list = cb_xcalloc(w->n_slots, sizeof(*free_list));
	unsigned live = 0, n_free;
	uint64_t due = run->t_start_ns;
	uint64_t pause_ns = (uint64_t)(o->pause_ms * 1e6), resume = 0;

	for (unsigned i = 0; i < w->n_slots; i++) {
		calls[i].w = w;
		calls[i].ch = i % w->n_ch;
		free_list[i] = &calls[i];
	}
	n_free = w->n_slots;
	for (;;) {
		uint64_t now = now_ns();
		bool stop = cb_should_stop(run, now);

		/* Start what may start: in a closed loop every free slot, in an open loop every
		 * call whose scheduled time has come, while a slot is free. */
		while (!stop && n_free > 0 && (!o->open_loop || due <= now) &&
		       (pause_ns == 0 || resume <= now)) {
			uint64_t t0 = o->open_loop ? due : now;

			if (!cb_claim(run, t0)) {
				stop = true;
				break;
			}
			call_start(free_list[--n_free], t0);
			live++;
			if (o->open_loop)
				due = cb_sched_next(w, due);
		}
		if (live == 0 && (stop || (!o->open_loop && pause_ns == 0)))
			break;

		grpc_event ev = grpc_completion_queue_next(
		    conn->cq, wait_until(run, now, due, pause_ns ? resume : 0, !stop && n_free > 0),
		    NULL);

		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		call_finish(ev.tag);
		free_list[n_free++] = ev.tag;
		live--;
		if (pause_ns != 0)
			resume = now_ns() + pause_ns;
	}
	if (o->open_loop)
		cb_count_backlog(w, due);
	free(free_list);
	free(calls);
	return NULL;
}

const struct cb_proto cb_proto_unary = {
    .setup = unary_setup,
    .connect = unary_connect,
    .thread = unary_thread,
};

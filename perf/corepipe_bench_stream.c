/*
 * corepipe-bench, stream: corepipe.v1.Pipeline/ExecuteStream, every message timed (not only
 * whole calls). Each slot keeps one stream open: the open message, then --stream-frames
 * frames with up to --depth in flight (paced at --frame-interval if given), then the
 * half-close; a new stream follows until the run ends. Responses must come in seq order.
 */
#include "perf/corepipe_bench_grpc.h"
#include "perf/corepipe_bench_input.h"

#include <grpc/support/time.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 4096 /* a WAV cut into more frames is cut short */

/* What every thread sends: the open message, then the frames, cycled. */
struct streams {
	struct cb_grpc g;
	struct cb_frame open;
	struct cb_frame frames[MAX_FRAMES];
	unsigned n_frames;
};

enum tag_kind { T_SEND, T_RECV, T_STATUS };

struct stream;

struct tag {
	enum tag_kind kind;
	struct stream *s;
};

struct stream {
	struct cb_worker *w;
	unsigned ch;
	grpc_call *call;
	struct tag send_tag, recv_tag, status_tag;
	grpc_metadata_array md_init, md_trail;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
	unsigned sent, received; /* frames sent, responses received */
	bool sending, closed_send, live;
	bool recv_pending, status_done; /* a RECV_MESSAGE is out; the status has come */
	uint64_t next_due_ns;
	uint64_t t_send[CB_MAX_DEPTH];
};

/* ==== Set-up ================================================================================ */

static grpc_slice
pack_stream(Corepipe__V1__StreamRequest *rq)
{
	grpc_slice s = grpc_slice_malloc(corepipe__v1__stream_request__get_packed_size(rq));

	corepipe__v1__stream_request__pack(rq, GRPC_SLICE_START_PTR(s));
	return s;
}

static void
stream_setup(struct cb_run *run)
{
	struct streams *st = cb_xcalloc(1, sizeof(*st));
	const struct cb_input *in = run->in;
	Corepipe__V1__PipelineSpec *spec = cb_spec_make(run->o);
	Corepipe__V1__StreamRequest rq;
	Corepipe__V1__StreamOpen op;
	Corepipe__V1__Payload p;
	Corepipe__V1__AudioBuffer a;
	size_t fb;

	corepipe__v1__stream_request__init(&rq);
	corepipe__v1__stream_open__init(&op);
	if (spec) {
		op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_INLINE;
		op.inline_ = spec;
	} else {
		op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME;
		op.name = (char *)run->o->pipeline;
	}
	rq.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_OPEN;
	rq.open = &op;
	st->open = (struct cb_frame){pack_stream(&rq), NULL, 0};

	/* A WAV is cut into --frame-ms frames (the last partial one dropped); generated audio and
	 * bytes are one frame, sent again and again. */
	fb = in->len;
	if (run->o->wav) {
		fb = (size_t)llround((double)in->rate * run->o->frame_ms / 1000.0) * in->channels *
		     in->sample_bytes;
		if (fb == 0 || fb > in->len)
			fb = in->len;
	}
	st->n_frames = (unsigned)(in->len / fb < MAX_FRAMES ? in->len / fb : MAX_FRAMES);
	for (unsigned i = 0; i < st->n_frames; i++) {
		corepipe__v1__stream_request__init(&rq);
		cb_payload_fill(&p, &a, in, in->bytes + i * fb, fb);
		rq.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_FRAME;
		rq.frame = &p;
		st->frames[i] = (struct cb_frame){pack_stream(&rq), in->bytes + i * fb, fb};
	}
	cb_grpc_setup(&st->g, run->o);
	run->proto_state = st;
}

static unsigned
stream_connect(struct cb_run *run, struct cb_worker *w, unsigned n)
{
	const struct streams *st = run->proto_state;

	return cb_grpc_connect(&st->g, w, n, "/corepipe.v1.Pipeline/ExecuteStream");
}

/* ==== One stream ============================================================================ */

static void
stream_batch(struct stream *s, grpc_op *ops, size_t n, struct tag *t)
{
	if (grpc_call_start_batch(s->call, ops, n, t, NULL) != GRPC_CALL_OK)
		cb_die("grpc_call_start_batch failed (stream)");
}

static void
stream_post_recv(struct stream *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv;
	s->recv = NULL;
	s->recv_pending = true;
	stream_batch(s, &op, 1, &s->recv_tag);
}

/* Send the next frame, or the half-close, if the depth, pacing and -n allow. */
static void
stream_maybe_send(struct stream *s)
{
	struct cb_run *run = s->w->run;
	const struct cb_opts *o = run->o;
	const struct streams *st = run->proto_state;
	uint64_t now = now_ns(), t0;
	grpc_op op;

	if (s->sending || s->closed_send || s->status_done)
		return;
	memset(&op, 0, sizeof(op));
	if (s->sent == o->stream_frames || cb_should_stop(run, now)) {
		op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		s->closed_send = true;
		s->sending = true;
		stream_batch(s, &op, 1, &s->send_tag);
		return;
	}
	if (s->sent - s->received >= o->depth)
		return;
	if (o->frame_interval_ms > 0 && now < s->next_due_ns)
		return;
	/* Paced: the frame's latency counts from when it was due, not when it left. */
	t0 = o->frame_interval_ms > 0 ? s->next_due_ns : now;
	if (!cb_claim(run, t0)) {
		stream_maybe_send(s); /* -n reached: half-close */
		return;
	}
	s->send = grpc_raw_byte_buffer_create(
	    (grpc_slice *)&st->frames[s->sent % st->n_frames].packed, 1);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->send;
	s->t_send[s->sent % CB_MAX_DEPTH] = t0;
	s->next_due_ns += (uint64_t)(o->frame_interval_ms * 1e6);
	s->sent++;
	s->sending = true;
	stream_batch(s, &op, 1, &s->send_tag);
}

static void
stream_start(struct stream *s)
{
	struct cb_worker *w = s->w;
	const struct cb_opts *o = w->run->o;
	const struct streams *st = w->run->proto_state;
	struct cb_grpc_conn *conn = w->conn;
	unsigned ch = s->ch;
	grpc_op ops[3];
	gpr_timespec dl = o->timeout_set ? cb_grpc_deadline_ms(o->timeout_ms)
					 : gpr_inf_future(GPR_CLOCK_MONOTONIC);

	memset(s, 0, offsetof(struct stream, t_send));
	s->w = w;
	s->ch = ch;
	s->send_tag = (struct tag){T_SEND, s};
	s->recv_tag = (struct tag){T_RECV, s};
	s->status_tag = (struct tag){T_STATUS, s};
	s->call = grpc_channel_create_registered_call(
	    conn->ch[s->ch], NULL, GRPC_PROPAGATE_DEFAULTS, conn->cq, conn->reg[s->ch], dl, NULL);
	grpc_metadata_array_init(&s->md_init);
	grpc_metadata_array_init(&s->md_trail);
	s->live = true;
	s->next_due_ns = now_ns();
	/* Initial metadata arrives with the first response: receive it with the status, so the
	 * open's send batch completes without waiting for the server. */
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->md_init;
	ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[1].data.recv_status_on_client.trailing_metadata = &s->md_trail;
	ops[1].data.recv_status_on_client.status = &s->status;
	ops[1].data.recv_status_on_client.status_details = &s->details;
	stream_batch(s, ops, 2, &s->status_tag);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = st->g.n_md;
	ops[0].data.send_initial_metadata.metadata = (grpc_metadata *)st->g.md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	s->send = grpc_raw_byte_buffer_create((grpc_slice *)&st->open.packed, 1);
	ops[1].data.send_message.send_message = s->send;
	s->sending = true;
	stream_batch(s, ops, 2, &s->send_tag);
	stream_post_recv(s);
}

static void
stream_on_recv(struct stream *s)
{
	struct cb_worker *w = s->w;
	const struct streams *st = w->run->proto_state;
	Corepipe__V1__StreamResponse *r;
	grpc_slice sl;
	uint64_t now = now_ns();

	if (s->recv == NULL)
		return; /* end of the response stream; the status follows */
	sl = cb_grpc_read_all(s->recv);
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	r = corepipe__v1__stream_response__unpack(NULL, GRPC_SLICE_LENGTH(sl),
						  GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	if (r == NULL || r->seq != s->received)
		w->bad_seq++;
	/* Responses past the last frame (the flush after the half-close) are not messages. */
	if (s->received < s->sent) {
		uint64_t t0 = s->t_send[s->received % CB_MAX_DEPTH];

		if (cb_reported(w->run, t0, now)) {
			const struct cb_frame *f = &st->frames[s->received % st->n_frames];

			hist_add(&w->hist, now - t0);
			w->last_done_ns = now;
			if (w->run->o->check_output) {
				if (r && cb_payload_equal(r->output, f->raw, f->raw_len))
					w->ok_checked++;
				else
					w->bad_output++;
			}
		}
	}
	if (r != NULL)
		corepipe__v1__stream_response__free_unpacked(r, NULL);
	s->received++;
	stream_post_recv(s);
	stream_maybe_send(s);
}

static void
stream_on_status(struct stream *s)
{
	struct cb_worker *w = s->w;

	s->status_done = true;
	cb_count_status(w, (int)s->status, (const char *)GRPC_SLICE_START_PTR(s->details),
			GRPC_SLICE_LENGTH(s->details));
	w->streams_done++;
	if (s->status != GRPC_STATUS_OK) {
		w->unanswered += s->sent - s->received;
		/* A stream that failed before sending a frame counts one against -n (its frames,
		 * when it sent some, were counted when sent). */
		if (s->sent == 0)
			cb_count_unclaimed_failure(w->run);
	}
}

/*
 * A stream's call is over when its status has come and neither its send nor its receive is
 * still out: the three complete in any order, and a late completion must not land on the
 * next call of the same slot. Returns true when the stream ended (and was restarted unless
 * the run is over: then it is no longer live).
 */
static bool
stream_end_if_idle(struct stream *s)
{
	struct cb_run *run = s->w->run;

	if (!s->status_done || s->sending || s->recv_pending)
		return false;
	grpc_metadata_array_destroy(&s->md_init);
	grpc_metadata_array_destroy(&s->md_trail);
	grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
	s->live = false;
	/* No new stream once -n is used up (its half-close would still count a failed open). */
	if (!cb_should_stop(run, now_ns()) && !cb_total_reached(run))
		stream_start(s);
	return true;
}

/* ==== The thread ============================================================================ */

static void
on_event(struct stream *s, enum tag_kind kind, bool success)
{
	switch (kind) {
	case T_SEND:
		s->sending = false;
		if (s->send != NULL) {
			grpc_byte_buffer_destroy(s->send);
			s->send = NULL;
		}
		if (success)
			stream_maybe_send(s);
		break;
	case T_RECV:
		s->recv_pending = false;
		if (success && !s->status_done)
			stream_on_recv(s);
		else if (s->recv != NULL) {
			grpc_byte_buffer_destroy(s->recv);
			s->recv = NULL;
		}
		break;
	case T_STATUS:
		stream_on_status(s);
		break;
	}
}

static void *
stream_thread(void *arg)
{
	struct cb_worker *w = arg;
	struct cb_run *run = w->run;
	struct cb_grpc_conn *conn = w->conn;
	struct stream *ss = cb_xcalloc(w->n_slots, sizeof(*ss));
	/* Pacing needs a look at every stream often; otherwise only the end of the run does. */
	int64_t poll_us = run->o->frame_interval_ms > 0 ? 200 : 50000;
	unsigned live = 0;

	for (unsigned i = 0; i < w->n_slots; i++) {
		ss[i].w = w;
		ss[i].ch = i % w->n_ch;
		stream_start(&ss[i]);
		live++;
	}
	while (live > 0) {
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					       gpr_time_from_micros(poll_us, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(conn->cq, dl, NULL);

		cb_should_stop(run, now_ns());
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			/* Pacing (and the end of the run for a stream whose frames all wait on
			 * the server) needs a look at every stream. */
			for (unsigned i = 0; i < w->n_slots; i++)
				if (ss[i].live)
					stream_maybe_send(&ss[i]);
			continue;
		}
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *t = ev.tag;
		struct stream *s = t->s;

		on_event(s, t->kind, ev.success);
		if (stream_end_if_idle(s) && !s->live)
			live--;
	}
	free(ss);
	return NULL;
}

const struct cb_proto cb_proto_stream = {
    .setup = stream_setup,
    .connect = stream_connect,
    .thread = stream_thread,
};

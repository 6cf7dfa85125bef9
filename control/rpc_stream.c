/*
 * corepipe.v1.Pipeline/ExecuteStream: bidirectional streaming with per-stream state.
 *
 * A stream belongs to the front end that received it: receiving (one RECV_MESSAGE outstanding
 * at a time), opening (pipeline reference + a slot on the worker it is bound to,
 * dataplane/stream.h), node-state set-up at the first frame, submitting frames, packing
 * responses, the send queue (one SEND_MESSAGE at a time, as gRPC requires) all run on that
 * front end's lcore: no lock, no atomic. A stream whose frames are cheap is bound to the front
 * end's own lcore and its frames run inline as they arrive; an expensive one is bound to a
 * worker, and its frames go over the front end's link to it in order (one SP/SC ring), so they
 * run in order on one core.
 *
 * Flow control and memory: at most `window` frames are in flight or queued for sending per
 * stream, and the front end stops reading every stream while its reply memory
 * (server.max_response_bytes) is spent; a client that does not read its responses stops being
 * read, and HTTP/2 flow control holds it back: neither one stream nor all of them together grow
 * memory past their bounds. When the dataplane is out of capacity (in-flight limit, pool,
 * ring), the frame waits on the front end's blocked list and is retried every millisecond:
 * streams are never shed. A frame waiting for its kit holds nothing (all or none), keeps its
 * undecoded message, and is decoded and copied again only once its kit looks free.
 *
 * Errors: the first error (bad frame, format change, node failure, cancel) ends the stream.
 * Responses of frames before the failing one are still sent, then the status. A cancelled or
 * disconnected client frees everything at once: queued responses are dropped, frames still
 * queued on the worker are skipped (cancelled flag), and the slot returns to its pool when the
 * last descriptor comes back.
 *
 * Life of a struct cp_stream: refs = 1 for the call + 1 per descriptor in flight + 1 per send
 * batch outstanding; the last reference closes the slot and frees the stream.
 */
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/pbconv.h"
#include "control/rpc.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/stat.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <rte_cycles.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MAX 256

struct q_entry {
	grpc_slice msg;
	bool final; /* the flush response: sent together with status OK */
};

struct cp_stream {
	struct cp_tag recv_tag, send_tag;
	struct cp_work work; /* its frames' completion (req->cookie = &work): stream_complete */
	struct cp_frontend *fe;
	int refs;
	struct dp_stream *slot; /* NULL until open */
	int cand;		/* CP_PLACE_INLINE, or the front end's candidate for frames */
	uint8_t prio;		/* DP_PRIO_*: corepipe-priority of the call, for every frame */

	grpc_byte_buffer *recv_buf;
	struct dp_req *pending;	      /* a frame that waits for ring space */
	grpc_byte_buffer *pending_bb; /* or a message that waits for a descriptor */
	struct cp_stream *blocked_next;
	bool blocked;
	bool kit_waiting;	       /* the pending frame waits for its buffers (counted once) */
	struct dp_kit_plan kit_missed; /* while kit_waiting: the buffers it waits for */
	bool opened, format_set, half_closed;
	uint64_t next_seq;

	struct cp_call *c; /* NULL once the call is freed */
	grpc_byte_buffer *send_buf;
	struct q_entry q[WINDOW_MAX];
	unsigned q_head, q_len;
	uint64_t q_bytes; /* queued and in-flight response bytes, in the front end's budget */
	uint64_t resv[WINDOW_MAX]; /* reply memory reserved by frame seq % WINDOW_MAX, in q_bytes */
	uint64_t send_bytes;	   /* of those, the message being sent */
	bool sending, recv_posted, final_sent;
	uint64_t submitted, completed, acked;
	bool err_set;
	int err_status;
	uint64_t err_seq;
	char err_msg[DP_ERR_MAX + 64];
	bool counted; /* in fe->st.streams_open */
};

/* Reply memory accounting: queued and sending response bytes. */
static void
charge(struct cp_stream *st, int64_t bytes)
{
	st->q_bytes += (uint64_t)bytes;
	dp_stat_add(&st->fe->st.resp_bytes, (uint64_t)bytes);
}

static void
stream_unref(struct cp_stream *st)
{
	if (--st->refs != 0)
		return;
	if (st->slot != NULL)
		dp_stream_close(st->slot);
	if (st->counted)
		dp_stat_add(&st->fe->st.streams_open, -1);
	if (st->q_bytes != 0)
		charge(st, -(int64_t)st->q_bytes);
	for (unsigned i = 0; i < st->q_len; i++)
		grpc_slice_unref(st->q[(st->q_head + i) % WINDOW_MAX].msg);
	if (st->recv_buf != NULL)
		grpc_byte_buffer_destroy(st->recv_buf);
	if (st->pending_bb != NULL)
		grpc_byte_buffer_destroy(st->pending_bb);
	if (st->send_buf != NULL)
		grpc_byte_buffer_destroy(st->send_buf);
	free(st);
}

/* Record the first error; frames from @p seq on are not answered. */
static void set_error(struct cp_stream *st, int status, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
set_error(struct cp_stream *st, int status, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (st->err_set)
		return;
	st->err_set = true;
	st->err_status = status;
	st->err_seq = seq;
	va_start(ap, fmt);
	vsnprintf(st->err_msg, sizeof(st->err_msg), fmt, ap);
	va_end(ap);
}

/*
 * Start whatever send is due: the next queued response, or the final status once nothing is
 * left to answer.
 */
static void
pump(struct cp_stream *st)
{
	struct cp_call *c = st->c;

	if (st->final_sent || st->sending || c == NULL)
		return;
	if (st->q_len > 0) {
		struct q_entry *e = &st->q[st->q_head];
		grpc_op ops[2];
		unsigned n = 0;

		st->q_head = (st->q_head + 1) % WINDOW_MAX;
		st->q_len--;
		if (e->final) {
			st->final_sent = true;
			/* The final message's bytes are the call's from here (released when it
			 * is freed). */
			charge(st, -(int64_t)GRPC_SLICE_LENGTH(e->msg));
			cp_fe_charge(st->fe, c, GRPC_SLICE_LENGTH(e->msg));
			cp_call_finish(c, GRPC_STATUS_OK, &e->msg, NULL);
			return;
		}
		memset(ops, 0, sizeof(ops));
		if (!c->initial_md_sent) {
			ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
			c->initial_md_sent = true;
		}
		st->send_bytes = GRPC_SLICE_LENGTH(e->msg);
		st->send_buf = grpc_raw_byte_buffer_create(&e->msg, 1);
		grpc_slice_unref(e->msg);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = st->send_buf;
		st->sending = true;
		st->refs++;
		if (grpc_call_start_batch(c->call, ops, n, &st->send_tag, NULL) != GRPC_CALL_OK) {
			st->sending = false;
			st->refs--;
			set_error(st, DP_INTERNAL, 0, "cannot send a response");
		}
		return;
	}
	/* Nothing queued: end with the error once every submitted frame came back. */
	if (st->err_set && st->completed == st->submitted) {
		st->final_sent = true;
		cp_call_finish(c, (grpc_status_code)st->err_status, NULL, "%s", st->err_msg);
	}
}

static void block(struct cp_stream *st);

/* Post the next RECV_MESSAGE if the window and the front end's reply memory allow. */
static void
post_recv(struct cp_stream *st)
{
	struct cp_call *c = st->c;
	grpc_op op;

	if (st->recv_posted || st->half_closed || st->err_set || st->final_sent || c == NULL ||
	    st->blocked || st->submitted - st->acked >= cp_server_live(st->fe->srv)->stream_window)
		return;
	if (cp_fe_over_budget(st->fe, true)) {
		/* Reply memory spent (clients not reading): read again once it drains. */
		block(st);
		return;
	}
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &st->recv_buf;
	st->recv_posted = true;
	c->refs++; /* the call stays alive until this batch completes (CQ thread) */
	if (grpc_call_start_batch(c->call, &op, 1, &st->recv_tag, NULL) != GRPC_CALL_OK) {
		st->recv_posted = false;
		c->refs--;
		set_error(st, DP_INTERNAL, st->next_seq, "cannot receive");
	}
}

static void retry_blocked(struct cp_frontend *fe);
static void on_recv(void *owner, int ok);
static void on_send(void *owner, int ok);
static void stream_complete(struct cp_frontend *fe, struct dp_req *req);

static void
block(struct cp_stream *st)
{
	if (st->blocked)
		return;
	st->blocked = true;
	st->fe->retry_blocked = retry_blocked;
	st->blocked_next = st->fe->blocked;
	st->fe->blocked = st;
}

/* ---- Messages ------------------------------------------------------------------------------ */

/* The worker a new stream is bound to: cheap frames stay on this lcore, run inline. */
static int
bind_stream(struct cp_stream *st, struct dp_pipeline *p)
{
	struct cp_frontend *fe = st->fe;
	uint64_t est;
	int where = cp_fe_place_prio(fe, p->id, 4096, st->prio, &est);
	int order[DP_WORKERS_MAX + 1], n = 0;

	/*
	 * A stateless pipeline whose cost is not known yet stays here: its frames are usually
	 * small, and a large one still goes to the bulk lane of this lcore's queue. (Binding it
	 * to a worker would make every frame of a cheap stream cross two cores: 16 passthrough
	 * streams moved 0.6x the messages of unary calls that way.)
	 */
	if (est == 0 && p->state_size == 0 && st->prio != DP_PRIO_LOW)
		where = CP_PLACE_INLINE;

	/* The preferred place first, then any other: streams are never refused for load. */
	order[n++] = where == CP_PLACE_INLINE ? 0 : where >= 0 ? where : (fe->n_cand > 1 ? 1 : 0);
	for (unsigned k = 0; k < fe->n_cand; k++)
		if ((int)k != order[0])
			order[n++] = (int)k;
	for (int i = 0; i < n; i++) {
		int k = order[i];

		if (dp_stream_open(fe->dp, p, (int)fe->cand[k]->lc.index, UINT64_MAX, &st->slot) ==
		    0) {
			st->cand = k == 0 && where == CP_PLACE_INLINE ? CP_PLACE_INLINE : k;
			return 0;
		}
	}
	return -ENOSPC;
}

static int
open_stream(struct cp_stream *st, const Corepipe__V1__StreamOpen *o)
{
	struct cp_frontend *fe = st->fe;
	struct dp_pipeline *p;
	char msg[DP_ERR_MAX + 96];
	int status;

	if (st->c != NULL) /* access log: the stream's pipeline */
		cp_alog_pipeline(
		    &st->c->alog,
		    o->pipeline_case == COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME ? o->name : NULL);
	p = cp_resolve_pipeline(
	    fe, o->pipeline_case == COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME ? o->name : NULL,
	    o->pipeline_case == COREPIPE__V1__STREAM_OPEN__PIPELINE_INLINE ? o->inline_ : NULL,
	    "open: ", &status, msg, sizeof(msg));
	if (p == NULL) {
		set_error(st, status, 0, "%s", msg);
		return -1;
	}
	if (st->c != NULL) {
		/* corepipe-priority on the ExecuteStream call: every frame's. */
		status = cp_call_priority_parse(st->c, cp_server_live(fe->srv), &st->prio, msg,
						sizeof(msg));
		if (status != DP_OK) {
			dp_pipeline_unref(p);
			set_error(st, status, 0, "open: %s", msg);
			return -1;
		}
	}
	if (bind_stream(st, p) != 0) {
		dp_pipeline_unref(p);
		dp_stat_add(&fe->st.rejected[CP_REJECT_STREAMS], 1);
		set_error(st, DP_RESOURCE_EXHAUSTED, 0,
			  "too many open streams: every worker has its %u stream slots in use "
			  "(dataplane.max_streams_per_worker)",
			  fe->dp->conf.max_streams_per_worker);
		return -1;
	}
	dp_pipeline_unref(p); /* the slot holds its own reference */
	dp_stat_add(&fe->st.streams_open, 1);
	st->counted = true;
	st->opened = true;
	return 0;
}

static bool
same_format(const struct dp_format *a, const struct dp_format *b)
{
	return a->kind == b->kind && a->fmt == b->fmt && a->rate == b->rate &&
	       a->channels == b->channels;
}

static const char *
format_text(const struct dp_format *f, char *buf, size_t n)
{
	if (f->kind == DP_KIND_BYTES)
		snprintf(buf, n, "bytes");
	else
		snprintf(buf, n, "audio %s %u Hz %u ch", dp_fmt_name(f->fmt), f->rate, f->channels);
	return buf;
}

/*
 * Submit a frame (or the flush when @p frame is NULL). @return 0, -EAGAIN when the
 * dataplane has no capacity now (retry later), or -1 after set_error.
 */
static int
submit(struct cp_stream *st, const Corepipe__V1__Payload *frame)
{
	struct cp_frontend *fe = st->fe;
	struct dp_format fmt = st->slot->in;
	const uint8_t *data = NULL;
	size_t len = 0;
	struct dp_req *req;
	char msg[DP_ERR_MAX + 64], a[64], b[64];
	struct dp_kit_plan kit;
	uint64_t est;
	int rc;

	if (frame != NULL) {
		if (cp_decode_payload(frame, &fmt, &data, &len, msg, sizeof(msg)) != 0) {
			set_error(st, DP_INVALID_ARGUMENT, st->next_seq, "frame %llu: %s",
				  (unsigned long long)st->next_seq, msg);
			return -1;
		}
		if (!st->format_set) {
			struct dp_err err;

			if (dp_stream_init(st->slot, &fmt, &err) != 0) {
				set_error(st, err.status, st->next_seq, "frame %llu: %s",
					  (unsigned long long)st->next_seq, err.msg);
				return -1;
			}
			st->format_set = true;
		} else if (!same_format(&fmt, &st->slot->in)) {
			set_error(st, DP_INVALID_ARGUMENT, st->next_seq,
				  "frame %llu: format (%s) differs from the stream's first frame "
				  "(%s)",
				  (unsigned long long)st->next_seq, format_text(&fmt, a, sizeof(a)),
				  format_text(&st->slot->in, b, sizeof(b)));
			return -1;
		}
	}
	/*
	 * Reply memory is reserved before the frame runs, at the most its answer can be (the
	 * compiled pipeline's bound: a zstd bomb of a few hundred bytes reserves its 4 MiB), so
	 * frames in flight cannot take the budget past its stream share whatever their answers
	 * turn out to be. Over it, the frame waits unrun (-EAGAIN: retried with the blocked
	 * streams once clients read); one frame always fits when nothing at all is held.
	 */
	dp_req_plan(fe->dp, st->slot->p, &fmt, data, (uint32_t)len, &est, &kit);
	if (!cp_fe_stream_room(fe, est))
		return -EAGAIN;
	rc = dp_req_alloc(fe->dp, (uint32_t)len, &req);
	if (rc == -E2BIG) {
		set_error(st, DP_RESOURCE_EXHAUSTED, st->next_seq,
			  "frame %llu: %zu bytes exceed the largest buffer (%u bytes)",
			  (unsigned long long)st->next_seq, len, dp_pools_max_size(fe->dp->pools));
		return -1;
	}
	if (rc != 0)
		return -EAGAIN;
	if (len != 0)
		memcpy(req->buf->data, data, len);
	req->fmt = fmt;
	/*
	 * The buffers its nodes take, all or none, before it is submitted: a frame that runs
	 * never finds a pool empty halfway (which would end the stream), and one that cannot
	 * have them waits unrun, as for the budget above, holding nothing.
	 */
	if (len != 0 && dp_req_take_kit(fe->dp, req, &kit, &st->kit_missed) != 0) {
		dp_req_free(fe->dp, req);
		if (!st->kit_waiting) {
			st->kit_waiting = true;
			dp_stat_add(&fe->st.buffer_waits, 1);
		}
		return -EAGAIN;
	}
	st->kit_waiting = false;
	req->cookie = &st->work;
	req->cancelled = &st->c->cancelled_flag;
	req->stream = st->slot;
	req->seq = st->next_seq++;
	req->run_flags = frame != NULL ? DP_RUN_FRAME : DP_RUN_FLUSH;
	st->resv[req->seq % WINDOW_MAX] = est;
	charge(st, (int64_t)est);
	req->prio = st->prio;
	st->pending = req;
	return 0;
}

/*
 * Run the prepared descriptor inline, or hand it to the stream's worker. @return 0 or
 * -EAGAIN (its link is full: retry later).
 */
static int
push_pending(struct cp_stream *st)
{
	struct cp_frontend *fe = st->fe;
	struct dp_req *req = st->pending;
	/* An inline stream's large frame (and any frame behind one still out) goes to this
	 * lcore's own worker queue instead: its bulk lane runs it in quanta, in order, with the
	 * front end serving its calls between them (worker.h). */
	bool inl = st->cand == CP_PLACE_INLINE && req->buf->len < DP_BULK_BYTES &&
		   st->submitted == st->completed && req->prio != DP_PRIO_LOW;

	/* The descriptor's reference, taken before it can complete. */
	st->refs++;
	st->pending = NULL;
	st->submitted++;
	if (inl) {
		req->submit_tsc = rte_rdtsc();
		dp_worker_exec(fe->own, req);
		dp_stat_add(&fe->st.inline_runs, 1);
		stream_complete(fe, req);
		return 0;
	}
	if (cp_fe_submit(fe, st->cand == CP_PLACE_INLINE ? 0 : (unsigned)st->cand, req, 0) != 0) {
		st->refs--;
		st->pending = req;
		st->submitted--;
		return -EAGAIN;
	}
	return 0;
}

/* Handle one received message (owned: @p bb is destroyed here or kept as pending_bb). */
static void
handle_message(struct cp_stream *st, grpc_byte_buffer *bb)
{
	Corepipe__V1__StreamRequest *m = NULL;
	grpc_byte_buffer_reader rd;
	grpc_slice s;
	char why[256];
	int rc;

	if (!grpc_byte_buffer_reader_init(&rd, bb)) {
		set_error(st, DP_INVALID_ARGUMENT, st->next_seq,
			  "message could not be decompressed");
		grpc_byte_buffer_destroy(bb);
		return;
	}
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	/* Strict: a string with a NUL byte inside is refused (pbconv.h). */
	m = (Corepipe__V1__StreamRequest *)cp_pb_unpack(&corepipe__v1__stream_request__descriptor,
							GRPC_SLICE_LENGTH(s),
							GRPC_SLICE_START_PTR(s), why, sizeof(why));
	grpc_slice_unref(s);
	if (m == NULL) {
		set_error(st, DP_INVALID_ARGUMENT, st->next_seq, "%s", why);
		grpc_byte_buffer_destroy(bb);
		return;
	}
	if (!st->opened) {
		if (m->msg_case != COREPIPE__V1__STREAM_REQUEST__MSG_OPEN)
			set_error(st, DP_INVALID_ARGUMENT, 0,
				  "the first message of a stream must be 'open'");
		else
			open_stream(st, m->open);
		grpc_byte_buffer_destroy(bb);
	} else if (m->msg_case != COREPIPE__V1__STREAM_REQUEST__MSG_FRAME) {
		set_error(st, DP_INVALID_ARGUMENT, st->next_seq,
			  "message %llu: expected a frame (the stream is already open)",
			  (unsigned long long)st->next_seq);
		grpc_byte_buffer_destroy(bb);
	} else {
		rc = submit(st, m->frame);
		if (rc == -EAGAIN) {
			st->pending_bb = bb; /* decoded again on retry */
			block(st);
		} else {
			grpc_byte_buffer_destroy(bb);
			if (rc == 0 && push_pending(st) != 0)
				block(st);
		}
	}
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* The client half-closed: flush the nodes (one last response), or end now. */
static void
half_close(struct cp_stream *st)
{
	st->half_closed = true;
	if (!st->opened) {
		set_error(st, DP_INVALID_ARGUMENT, 0,
			  "stream closed before an 'open' message was sent");
		return;
	}
	if (!st->format_set) {
		/* No frame ever came: nothing to flush; answer an empty final response. */
		Corepipe__V1__StreamResponse r;
		size_t n;
		grpc_slice s;

		corepipe__v1__stream_response__init(&r);
		r.seq = 0;
		n = corepipe__v1__stream_response__get_packed_size(&r);
		s = grpc_slice_malloc(n);
		corepipe__v1__stream_response__pack(&r, GRPC_SLICE_START_PTR(s));
		st->q[(st->q_head + st->q_len) % WINDOW_MAX] = (struct q_entry){s, true};
		st->q_len++;
		charge(st, (int64_t)n);
		return;
	}
	if (submit(st, NULL) != 0 || push_pending(st) != 0)
		block(st);
}

/* ---- Entry points ---------------------------------------------------------------------------- */

/*
 * The stream of call @p c: not yet open (no pipeline, no slot; open_stream binds it at the
 * 'open' message), holding the call's reference, and no gRPC operation posted (the caller
 * starts it). @return NULL when out of memory.
 */
static struct cp_stream *
stream_new(struct cp_call *c)
{
	struct cp_stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->recv_tag = (struct cp_tag){.kind = CP_TAG_CALLBACK, .owner = st, .fn = on_recv};
	st->send_tag = (struct cp_tag){.kind = CP_TAG_CALLBACK, .owner = st, .fn = on_send};
	st->work.complete = stream_complete;
	st->fe = c->fe;
	st->c = c;
	st->cand = CP_PLACE_INLINE;
	st->refs = 1; /* the call's */
	c->stream = st;
	return st;
}

void
cp_execute_stream(struct cp_server *srv, struct cp_call *c)
{
	struct cp_stream *st = stream_new(c);

	(void)srv;
	if (st == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	/* Learn of cancellation and the call's end at once (frames queued on a worker for a
	 * dead call are skipped). */
	cp_call_watch_close(c);
	post_recv(st);
	pump(st);
}

/* A RECV_MESSAGE completed (st->recv_tag). */
static void
on_recv(void *owner, int ok)
{
	struct cp_stream *st = owner;
	struct cp_call *c;
	grpc_byte_buffer *bb;

	st->recv_posted = false;
	bb = st->recv_buf;
	st->recv_buf = NULL;
	c = st->c;  /* alive: this batch holds a reference (post_recv) */
	st->refs++; /* st survives until the end of this function */
	if (st->final_sent) {
		if (bb != NULL)
			grpc_byte_buffer_destroy(bb);
	} else if (!ok) {
		if (bb != NULL)
			grpc_byte_buffer_destroy(bb);
		set_error(st, DP_CANCELLED, st->next_seq, "stream cancelled");
	} else if (bb == NULL) {
		half_close(st);
	} else {
		handle_message(st, bb);
	}
	post_recv(st);
	pump(st);
	/* Freeing the call unlinks the stream (cp_stream_gone). */
	cp_call_release(c);
	stream_unref(st);
}

/* A SEND_MESSAGE completed (st->send_tag). */
static void
on_send(void *owner, int ok)
{
	struct cp_stream *st = owner;

	st->sending = false;
	st->acked++;
	charge(st, -(int64_t)st->send_bytes);
	st->send_bytes = 0;
	if (st->send_buf != NULL) {
		grpc_byte_buffer_destroy(st->send_buf);
		st->send_buf = NULL;
	}
	if (!ok)
		set_error(st, DP_CANCELLED, 0, "stream cancelled");
	pump(st);
	post_recv(st);
	stream_unref(st);
}

void
cp_stream_closed(struct cp_call *c)
{
	struct cp_stream *st = c->stream;

	if (st == NULL)
		return;
	if (c->cancelled) {
		/* Drop queued responses at once: nobody will read them. */
		while (st->q_len > 0) {
			charge(st, -(int64_t)GRPC_SLICE_LENGTH(st->q[st->q_head].msg));
			grpc_slice_unref(st->q[st->q_head].msg);
			st->q_head = (st->q_head + 1) % WINDOW_MAX;
			st->q_len--;
		}
		set_error(st, DP_CANCELLED, 0, "stream cancelled");
	}
	pump(st);
}

void
cp_stream_gone(struct cp_call *c)
{
	struct cp_stream *st = c->stream;
	struct cp_frontend *fe;

	if (st == NULL)
		return;
	fe = st->fe;
	st->c = NULL;
	/* A frame still waiting for capacity will never be sent: take it off the list. */
	if (st->blocked) {
		for (struct cp_stream **pp = &fe->blocked; *pp != NULL; pp = &(*pp)->blocked_next) {
			if (*pp == st) {
				*pp = st->blocked_next;
				break;
			}
		}
		st->blocked = false;
	}
	if (st->pending != NULL) {
		dp_req_free(fe->dp, st->pending);
		st->pending = NULL;
	}
	stream_unref(st);
}

/* Retry frames of streams that waited for dataplane capacity or reply memory (the front end's
 * retry_blocked hook, set by block()). */
static void
retry_blocked(struct cp_frontend *fe)
{
	struct cp_stream *list = fe->blocked;

	fe->blocked = NULL;
	while (list != NULL) {
		struct cp_stream *st = list;
		int rc = 0;

		list = st->blocked_next;
		st->blocked = false;
		st->refs++;
		if (st->err_set || st->c == NULL) {
			if (st->pending != NULL) {
				dp_req_free(fe->dp, st->pending);
				st->pending = NULL;
			}
		} else if (st->pending_bb != NULL && st->kit_waiting &&
			   !dp_kit_may_fit(fe->dp, &st->kit_missed)) {
			/* Its buffers are still out: not worth decoding and copying it again. */
			block(st);
		} else if (st->pending_bb != NULL) {
			grpc_byte_buffer *bb = st->pending_bb;

			st->pending_bb = NULL;
			handle_message(st, bb); /* may block again */
		} else if (st->pending == NULL && st->half_closed) {
			/* The flush could not get a descriptor. */
			rc = submit(st, NULL);
			if (rc == 0)
				rc = push_pending(st);
			if (rc == -EAGAIN)
				block(st);
		} else if (st->pending != NULL) {
			rc = push_pending(st);
			if (rc != 0)
				block(st);
		}
		post_recv(st);
		pump(st);
		stream_unref(st);
	}
}

/* ---- Completion (the front end: inline, or collected from the stream's worker) ------------- */

/* A frame or flush came back (st->work): queue its answer. Consumes @p req. */
static void
stream_complete(struct cp_frontend *fe, struct dp_req *req)
{
	struct cp_stream *st = caa_container_of(req->cookie, struct cp_stream, work);
	Corepipe__V1__StreamResponse r;
	Corepipe__V1__Payload out;
	Corepipe__V1__AudioBuffer audio;
	Corepipe__V1__StreamResponse__AnnotationsEntry ents[DP_ANNOT_MAX];
	Corepipe__V1__StreamResponse__AnnotationsEntry *eptr[DP_ANNOT_MAX];
	bool final = (req->run_flags & DP_RUN_FLUSH) != 0;
	grpc_slice s;
	size_t n;

	dp_stat_add(&fe->st.answered, 1);
	dp_metrics_observe(
	    fe->e2e, st->slot->p->id,
	    (uint64_t)((double)(rte_rdtsc() - req->submit_tsc) * 1e9 / (double)fe->dp->tsc_hz));
	st->completed++;
	/* The frame's reservation goes; its real answer (if any) is charged below. */
	charge(st, -(int64_t)st->resv[req->seq % WINDOW_MAX]);
	st->resv[req->seq % WINDOW_MAX] = 0;
	if (req->status != DP_OK) {
		set_error(st, req->status, req->seq, "frame %llu: %s", (unsigned long long)req->seq,
			  req->res.err.msg);
	} else if (!st->final_sent && !(st->err_set && req->seq >= st->err_seq)) {
		corepipe__v1__stream_response__init(&r);
		cp_output_view(req, &out, &audio);
		r.seq = req->seq;
		r.output = &out;
		for (unsigned i = 0; i < req->res.n_annot; i++) {
			corepipe__v1__stream_response__annotations_entry__init(&ents[i]);
			ents[i].key = req->res.annot[i].key;
			ents[i].value = req->res.annot[i].val;
			eptr[i] = &ents[i];
		}
		r.n_annotations = req->res.n_annot;
		r.annotations = eptr;
		n = corepipe__v1__stream_response__get_packed_size(&r);
		s = grpc_slice_malloc(n);
		corepipe__v1__stream_response__pack(&r, GRPC_SLICE_START_PTR(s));
		/* Never more than the window: the front end stops reading before that. */
		st->q[(st->q_head + st->q_len) % WINDOW_MAX] = (struct q_entry){s, final};
		st->q_len++;
		charge(st, (int64_t)n);
	}
	dp_req_free(fe->dp, req);
	pump(st);
	post_recv(st);
	stream_unref(st);
}

/*
 * corepipe-bench: a ghz-style load generator for corepipe, on the gRPC C core client API.
 *
 * Calls: unary corepipe.v1.Pipeline/Execute, or ExecuteStream (--stream) timing every message
 * of a stream (not only whole calls), with a named (--pipeline) or inline (--inline-json,
 * --node) pipeline and a payload of raw bytes (--size), generated audio (--audio-format,
 * --audio-rate, --audio-channels, --frame-ms) or a WAV file (--wav).
 *
 * Threads: each client thread owns a completion queue, its share of the connections (one TCP
 * connection per channel, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL) and its share of the concurrency
 * (-c: calls or streams kept outstanding). All connections are made and READY before the clock
 * starts.
 *
 * Load: closed loop by default (a slot starts its next call when the last one finishes).
 * With --rps or --load-schedule step|line the load is open: every call has a scheduled send
 * time computed from the rate, and its latency is measured from that scheduled time, not from
 * when a free slot let it go. A server that stalls therefore shows its stall in the latency of
 * every call that should have been sent meanwhile (no coordinated omission).
 *
 * Checks: every answer's status is counted by code; --check-output compares each output with
 * its input (a passthrough pipeline must give back what it got); stream responses must come in
 * seq order.
 *
 * Latency: per-thread log-linear histograms (perf/common.h: 128 linear sub-buckets per power of
 * two, reported at the bucket's midpoint, relative error at most 1/256 = 0.4%), merged at the
 * end. The report gives client CPU time: a C-core client costs about as much CPU per call as
 * the server, so on a 2-core machine the client can be the bottleneck, and this shows when.
 *
 * Transport: --proto grpc, or udp: the server's UDP data path through libcorepipe-udp, batched
 * (udp_main()). Both fill the same per-thread counters, so the report is shared.
 */
#include "client/udp/corepipe_udp.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "perf/common.h"
#include "perf/corepipe_report.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_THREADS 64
#define MAX_MD	    16
#define MAX_NODES   64
#define MAX_PARAMS  16
#define MAX_DEPTH   256
#define MAX_FRAMES  4096
#define N_CODES	    BR_N_CODES
#define CONNECT_S   20

/* ==== Options =============================================================================== */

enum proto { PROTO_GRPC, PROTO_UDP };
enum sched { SCHED_CONST, SCHED_STEP, SCHED_LINE };
enum afmt { AF_NONE, AF_S16, AF_F32 };

struct node_arg {
	char *type;
	unsigned n_params;
	char *key[MAX_PARAMS], *val[MAX_PARAMS];
};

struct opts {
	const char *target;
	enum proto proto;
	const char *udp_addr;
	unsigned pipeline_id, udp_batch;
	unsigned concurrency, connections, threads;
	uint64_t total;
	double duration, warmup;
	bool open_loop;
	double rps;
	double pause_ms; /* closed loop: a slot waits this long after each answer */
	enum sched sched;
	double load_start, load_end, load_step, load_step_dur;
	unsigned timeout_ms;
	bool timeout_set;
	unsigned n_md;
	char *md_key[MAX_MD], *md_val[MAX_MD];
	const char *cacert, *cert, *key, *server_name;
	bool insecure;
	const char *pipeline, *inline_json;
	unsigned n_nodes;
	struct node_arg nodes[MAX_NODES];
	size_t size;
	enum afmt audio_fmt;
	unsigned audio_rate, audio_channels;
	double frame_ms;
	const char *wav;
	bool stream;
	unsigned stream_frames, depth;
	double frame_interval_ms;
	bool check_output, allow_errors;
	enum br_format format;
	const char *out_path;
};

static const char g_usage[] =
    "usage: corepipe-bench [options] [HOST:PORT]\n"
    "\n"
    "Target and transport\n"
    "  --target HOST:PORT       gRPC server (default 127.0.0.1:50051; or a positional argument)\n"
    "  --proto grpc|udp         transport (default grpc); udp needs --udp and --pipeline-id\n"
    "  --udp HOST:PORT          the server's UDP data-path address (--proto udp)\n"
    "  --pipeline-id N          pipeline id on the UDP path (--proto udp; ListPipelines)\n"
    "  --udp-batch N            UDP: requests per sendmmsg / results per recvmmsg (default 32);\n"
    "                           one socket per thread (4 MiB buffers asked for); an answer\n"
    "                           lost or later than -t (UDP default 1000) = DEADLINE_EXCEEDED\n"
    "  --insecure               plaintext HTTP/2 (the default unless --cacert or --cert)\n"
    "  --cacert FILE            TLS: trust this CA (PEM); turns TLS on\n"
    "  --cert FILE --key FILE   TLS: client certificate and key (PEM), for mTLS\n"
    "  --server-name NAME       TLS: name to verify in the server certificate\n"
    "  -m, --metadata KEY:VALUE request metadata, repeatable (e.g. 'authorization:Bearer TOK')\n"
    "\n"
    "Load\n"
    "  -c, --concurrency N      calls (or streams) kept outstanding in total (default 1)\n"
    "  --connections N          TCP connections, spread over threads (default = threads)\n"
    "  --threads N              client threads (default min(concurrency, CPUs))\n"
    "  -n, --total N            stop after N measured calls (stream frames with --stream)\n"
    "  -z, --duration S         or after S seconds (default 5; with -n: the upper bound)\n"
    "  --warmup S               answers in the first S seconds are not reported (with -n:\n"
    "                           calls started in them); default 1\n"
    "  --pause-ms MS            closed loop, each slot idle MS after every answer before its\n"
    "                           next call; latency from the actual send (a call after idle)\n"
    "  --rps R                  open loop at R calls/s in total, sends scheduled; latency is\n"
    "                           measured from the scheduled time (-c caps calls in flight)\n"
    "  --load-schedule const|step|line   open-loop rate over time (default const = --rps):\n"
    "                           step: start + step * floor(t / step-duration);\n"
    "                           line: start + step * t / step-duration; both stop at --load-end\n"
    "  --load-start R --load-end R --load-step R --load-step-duration S\n"
    "  -t, --timeout MS         per-call deadline (default 10000; streams: only if given)\n"
    "\n";
/* Two strings: one over 4095 bytes is more than ISO C promises to support (-Wpedantic). */
static const char g_usage_more[] =
    "What is called\n"
    "  --pipeline NAME          a registered pipeline (default passthrough)\n"
    "  --inline-json JSON       an inline pipeline: {\"nodes\":[{\"type\":T,\"params\":{K:V}}]} "
    "or\n"
    "                           just the nodes array\n"
    "  --node TYPE[:k=v,...]    an inline pipeline node, repeatable (in order)\n"
    "  --size BYTES             raw data payload of BYTES (default 64)\n"
    "  --audio-format s16le|f32le  send generated audio (a 440 Hz sine) instead of bytes\n"
    "  --audio-rate HZ          sample rate (default 48000)\n"
    "  --audio-channels N       channels (default 1)\n"
    "  --frame-ms MS            audio per call / per stream frame (default 10)\n"
    "  --wav FILE               send this WAV (PCM s16 or float32): the whole file per unary\n"
    "                           call, or cut into --frame-ms frames for a stream\n"
    "  --stream                 ExecuteStream instead of Execute: per-message latency\n"
    "  --stream-frames N        frames per stream before it half-closes (default 1000)\n"
    "  --depth N                frames in flight per stream, 1 = ping-pong (default 1)\n"
    "  --frame-interval MS      pace each stream at one frame per MS (real time: 10);\n"
    "                           latency then counts from the scheduled send time\n"
    "\n"
    "Checks and output\n"
    "  --check-output           output must equal input (passthrough pipelines)\n"
    "  --allow-errors           exit 0 even if calls failed\n"
    "  --format text|json|csv|html  summary (default), one JSON object, section,key,value CSV\n"
    "                           rows, or a self-contained HTML page with its charts (inline\n"
    "                           SVG drawn by inline JavaScript; nothing fetched); each has the\n"
    "                           status and the error distribution (by code and message)\n"
    "  -o, --output FILE        write the report there instead of stdout\n"
    "  -h, --help               this text\n"
    "\n"
    "Exit status: 0 all OK, 1 some call failed or a check failed, 2 usage or setup error.\n";

static struct opts g_o;

/* ==== Shared state ========================================================================== */

/* One payload unit: the packed message and the raw bytes it carries (for --check-output). */
struct frame {
	grpc_slice packed;
	const uint8_t *raw;
	size_t raw_len;
};

struct worker {
	pthread_t tid;
	unsigned idx, n_slots, n_ch;
	grpc_channel **ch;
	void **reg;
	grpc_completion_queue *cq;
	struct hist hist;
	uint64_t codes[N_CODES];
	uint64_t ok_checked, bad_output, bad_seq, streams_done, backlog;
	uint64_t last_done_ns;
	uint64_t unanswered; /* stream frames sent on streams that failed before answering */
	struct br_errors errs;
	double rate_share;
	struct corepipe_udp_stats udp; /* --proto udp: the client library's counters */
};

static struct frame g_req;		  /* unary request */
static struct frame g_open;		  /* stream: the open message */
static struct frame g_frames[MAX_FRAMES]; /* stream: frames, cycled */
static unsigned g_n_frames;
static grpc_metadata g_md[MAX_MD];
static uint64_t g_t_start_ns, g_t_measure_ns, g_t_end_ns;
static atomic_uint_fast64_t g_issued;
static atomic_bool g_stop;

/* ==== Small helpers ========================================================================= */

static void
die(const char *msg)
{
	fprintf(stderr, "corepipe-bench: %s\n", msg);
	exit(2);
}

static void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (p == NULL)
		die("out of memory");
	return p;
}

static bool
measured(uint64_t t0)
{
	return t0 >= g_t_measure_ns;
}

/*
 * Whether a call (or message) started (or scheduled) at @p t0 and answered at @p t1 is in the
 * report. With -n: the N started after the warm-up, exactly. Otherwise: every answer that
 * arrives after the warm-up, including answers to calls sent during it, so that calls stuck
 * across the warm-up (a stalled server) are reported with their full latency and status.
 */
static bool
reported(uint64_t t0, uint64_t t1)
{
	return g_o.total ? measured(t0) : t1 >= g_t_measure_ns;
}

/* Claim one measured call (or frame) against -n; false when the total is reached. */
static bool
claim(uint64_t t0)
{
	if (!g_o.total || !measured(t0))
		return true;
	if (atomic_fetch_add(&g_issued, 1) >= g_o.total) {
		atomic_store(&g_stop, true);
		return false;
	}
	return true;
}

static bool
should_stop(uint64_t now)
{
	if (now >= g_t_end_ns)
		atomic_store(&g_stop, true);
	return atomic_load_explicit(&g_stop, memory_order_relaxed);
}

static void
count_status(struct worker *w, grpc_status_code st, grpc_slice details)
{
	w->codes[(unsigned)st < N_CODES ? (unsigned)st : 2]++;
	if (st != GRPC_STATUS_OK)
		br_errors_add(&w->errs, (int)st, (const char *)GRPC_SLICE_START_PTR(details),
			      GRPC_SLICE_LENGTH(details), 1);
}

/* Open-loop rate (calls/s in total) @p s seconds into the measured run. */
static double
sched_rate(double s)
{
	double r;

	if (s < 0)
		s = 0;
	switch (g_o.sched) {
	case SCHED_STEP:
		r = g_o.load_start + g_o.load_step * floor(s / g_o.load_step_dur);
		break;
	case SCHED_LINE:
		r = g_o.load_start + g_o.load_step * s / g_o.load_step_dur;
		break;
	default:
		return g_o.rps;
	}
	if (g_o.load_end > 0 && g_o.load_step > 0 && r > g_o.load_end)
		r = g_o.load_end;
	if (g_o.load_end > 0 && g_o.load_step < 0 && r < g_o.load_end)
		r = g_o.load_end;
	return r;
}

/* The next scheduled send time of a worker whose last one was @p due. */
static uint64_t
sched_next(const struct worker *w, uint64_t due)
{
	double s = ((double)due - (double)g_t_measure_ns) / 1e9;
	double r = sched_rate(s) * w->rate_share;

	if (r <= 0)
		return due + 1000000; /* paused: look again in 1 ms */
	return due + (uint64_t)(1e9 / r);
}

/* Decode a payload's bytes (data, or audio samples). */
static bool
payload_equal(const Corepipe__V1__Payload *p, const struct frame *f)
{
	const uint8_t *d;
	size_t n;

	if (p == NULL)
		return f->raw_len == 0;
	if (p->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA) {
		d = p->data.data;
		n = p->data.len;
	} else if (p->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO && p->audio) {
		d = p->audio->samples.data;
		n = p->audio->samples.len;
	} else {
		return f->raw_len == 0;
	}
	return n == f->raw_len && (n == 0 || memcmp(d, f->raw, n) == 0);
}

static grpc_slice
read_all(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	grpc_slice s = grpc_empty_slice();

	if (bb && grpc_byte_buffer_reader_init(&rd, bb)) {
		s = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
	}
	return s;
}

/* ==== Unary Execute ========================================================================= */

struct call {
	struct worker *w;
	unsigned ch;
	bool busy;
	grpc_call *call;
	grpc_metadata_array md_init, md_trail;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
	uint64_t t0;
};

static void
call_start(struct call *c, uint64_t t0)
{
	struct worker *w = c->w;
	grpc_op ops[6];
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_millis(g_o.timeout_ms, GPR_TIMESPAN));

	memset(ops, 0, sizeof(ops));
	c->call = grpc_channel_create_registered_call(w->ch[c->ch], NULL, GRPC_PROPAGATE_DEFAULTS,
						      w->cq, w->reg[c->ch], dl, NULL);
	grpc_metadata_array_init(&c->md_init);
	grpc_metadata_array_init(&c->md_trail);
	c->send = grpc_raw_byte_buffer_create(&g_req.packed, 1);
	c->recv = NULL;
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = g_o.n_md;
	ops[0].data.send_initial_metadata.metadata = g_md;
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
	c->busy = true;
	if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK)
		die("grpc_call_start_batch failed");
}

static void
call_finish(struct call *c)
{
	struct worker *w = c->w;
	uint64_t t1 = now_ns();

	if (reported(c->t0, t1)) {
		hist_add(&w->hist, t1 - c->t0);
		count_status(w, c->status, c->details);
		w->last_done_ns = t1;
		if (c->status == GRPC_STATUS_OK && g_o.check_output) {
			grpc_slice s = read_all(c->recv);
			Corepipe__V1__ExecuteResponse *r = corepipe__v1__execute_response__unpack(
			    NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));

			grpc_slice_unref(s);
			if (r == NULL || !payload_equal(r->output, &g_req))
				w->bad_output++;
			else
				w->ok_checked++;
			if (r)
				corepipe__v1__execute_response__free_unpacked(r, NULL);
		}
	}
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	grpc_byte_buffer_destroy(c->send);
	grpc_metadata_array_destroy(&c->md_init);
	grpc_metadata_array_destroy(&c->md_trail);
	grpc_slice_unref(c->details);
	grpc_call_unref(c->call);
	c->busy = false;
}

static void *
unary_main(void *arg)
{
	struct worker *w = arg;
	struct call *calls = xcalloc(w->n_slots, sizeof(*calls));
	unsigned live = 0, n_free;
	struct call **free_list = xcalloc(w->n_slots, sizeof(*free_list));
	uint64_t due = g_t_start_ns;
	uint64_t pause_ns = (uint64_t)(g_o.pause_ms * 1e6), resume = 0;

	for (unsigned i = 0; i < w->n_slots; i++) {
		calls[i].w = w;
		calls[i].ch = i % w->n_ch;
		free_list[i] = &calls[i];
	}
	n_free = w->n_slots;
	for (;;) {
		uint64_t now = now_ns();
		bool stop = should_stop(now);
		gpr_timespec dl = gpr_inf_future(GPR_CLOCK_MONOTONIC);

		/* Start what may start: in a closed loop every free slot, in an open loop every
		 * call whose scheduled time has come, while a slot is free. */
		while (!stop && n_free > 0 && (!g_o.open_loop || due <= now) &&
		       (pause_ns == 0 || resume <= now)) {
			uint64_t t0 = g_o.open_loop ? due : now;

			if (!claim(t0)) {
				stop = true;
				break;
			}
			call_start(free_list[--n_free], t0);
			live++;
			if (g_o.open_loop)
				due = sched_next(w, due);
		}
		if (live == 0 && (stop || (!g_o.open_loop && pause_ns == 0)))
			break;
		if (g_o.open_loop && !stop && n_free > 0) {
			/* Wake at the next send time (or at the end), whichever is first. With
			 * every slot busy, only a completion can let the next call go. */
			uint64_t wake = due < g_t_end_ns ? due : g_t_end_ns;

			dl =
			    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					 gpr_time_from_nanos(wake > now ? (int64_t)(wake - now) : 0,
							     GPR_TIMESPAN));
		}
		if (pause_ns != 0 && !stop && n_free > 0 && resume > now)
			dl = gpr_time_add(
			    gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_nanos((int64_t)(resume - now), GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(w->cq, dl, NULL);

		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		call_finish(ev.tag);
		free_list[n_free++] = ev.tag;
		live--;
		if (pause_ns != 0)
			resume = now_ns() + pause_ns;
	}
	/* Calls that were due but never sent (every slot busy until the end). */
	if (g_o.open_loop)
		for (uint64_t now = now_ns(); due < now && due < g_t_end_ns;
		     due = sched_next(w, due))
			w->backlog++;
	free(free_list);
	free(calls);
	return NULL;
}

/* ==== ExecuteStream ========================================================================= */

enum tag_kind { T_SEND, T_RECV, T_STATUS };

struct stream;

struct tag {
	enum tag_kind kind;
	struct stream *s;
};

struct stream {
	struct worker *w;
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
	uint64_t t_send[MAX_DEPTH];
};

static void
stream_batch(struct stream *s, grpc_op *ops, size_t n, struct tag *t)
{
	if (grpc_call_start_batch(s->call, ops, n, t, NULL) != GRPC_CALL_OK)
		die("grpc_call_start_batch failed (stream)");
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
	uint64_t now = now_ns(), t0;
	grpc_op op;

	if (s->sending || s->closed_send || s->status_done)
		return;
	memset(&op, 0, sizeof(op));
	if (s->sent == g_o.stream_frames || should_stop(now)) {
		op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		s->closed_send = true;
		s->sending = true;
		stream_batch(s, &op, 1, &s->send_tag);
		return;
	}
	if (s->sent - s->received >= g_o.depth)
		return;
	if (g_o.frame_interval_ms > 0 && now < s->next_due_ns)
		return;
	/* Paced: the frame's latency counts from when it was due, not when it left. */
	t0 = g_o.frame_interval_ms > 0 ? s->next_due_ns : now;
	if (!claim(t0)) {
		stream_maybe_send(s); /* -n reached: half-close */
		return;
	}
	s->send = grpc_raw_byte_buffer_create(&g_frames[s->sent % g_n_frames].packed, 1);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->send;
	s->t_send[s->sent % MAX_DEPTH] = t0;
	s->next_due_ns += (uint64_t)(g_o.frame_interval_ms * 1e6);
	s->sent++;
	s->sending = true;
	stream_batch(s, &op, 1, &s->send_tag);
}

static void
stream_start(struct stream *s)
{
	struct worker *w = s->w;
	unsigned ch = s->ch;
	grpc_op ops[3];
	gpr_timespec dl = g_o.timeout_set
			      ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					     gpr_time_from_millis(g_o.timeout_ms, GPR_TIMESPAN))
			      : gpr_inf_future(GPR_CLOCK_MONOTONIC);

	memset(s, 0, offsetof(struct stream, t_send));
	s->w = w;
	s->ch = ch;
	s->send_tag = (struct tag){T_SEND, s};
	s->recv_tag = (struct tag){T_RECV, s};
	s->status_tag = (struct tag){T_STATUS, s};
	s->call = grpc_channel_create_registered_call(w->ch[s->ch], NULL, GRPC_PROPAGATE_DEFAULTS,
						      w->cq, w->reg[s->ch], dl, NULL);
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
	ops[0].data.send_initial_metadata.count = g_o.n_md;
	ops[0].data.send_initial_metadata.metadata = g_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	s->send = grpc_raw_byte_buffer_create(&g_open.packed, 1);
	ops[1].data.send_message.send_message = s->send;
	s->sending = true;
	stream_batch(s, ops, 2, &s->send_tag);
	stream_post_recv(s);
}

static void
stream_on_recv(struct stream *s)
{
	struct worker *w = s->w;
	Corepipe__V1__StreamResponse *r;
	grpc_slice sl;
	uint64_t now = now_ns();

	if (s->recv == NULL)
		return; /* end of the response stream; the status follows */
	sl = read_all(s->recv);
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	r = corepipe__v1__stream_response__unpack(NULL, GRPC_SLICE_LENGTH(sl),
						  GRPC_SLICE_START_PTR(sl));
	grpc_slice_unref(sl);
	if (r == NULL || r->seq != s->received)
		w->bad_seq++;
	/* Responses past the last frame (the flush after the half-close) are not messages. */
	if (s->received < s->sent) {
		uint64_t t0 = s->t_send[s->received % MAX_DEPTH];

		if (reported(t0, now)) {
			hist_add(&w->hist, now - t0);
			w->last_done_ns = now;
			if (g_o.check_output) {
				if (r &&
				    payload_equal(r->output, &g_frames[s->received % g_n_frames]))
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

/*
 * A stream's call is over when its status has come and neither its send nor its receive is
 * still out: the three complete in any order, and a late completion must not land on the
 * next call of the same slot. Returns true when the stream ended (and was restarted unless
 * the run is over: then it is no longer live).
 */
static bool
stream_end_if_idle(struct stream *s)
{
	if (!s->status_done || s->sending || s->recv_pending)
		return false;
	grpc_metadata_array_destroy(&s->md_init);
	grpc_metadata_array_destroy(&s->md_trail);
	grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
	s->live = false;
	/* No new stream once -n is used up (its half-close would still count a failed open). */
	if (!should_stop(now_ns()) && !(g_o.total && atomic_load(&g_issued) >= g_o.total))
		stream_start(s);
	return true;
}

static void *
stream_main(void *arg)
{
	struct worker *w = arg;
	struct stream *ss = xcalloc(w->n_slots, sizeof(*ss));
	unsigned live = 0;

	for (unsigned i = 0; i < w->n_slots; i++) {
		ss[i].w = w;
		ss[i].ch = i % w->n_ch;
		stream_start(&ss[i]);
		live++;
	}
	while (live > 0) {
		gpr_timespec dl = g_o.frame_interval_ms > 0
				      ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						     gpr_time_from_micros(200, GPR_TIMESPAN))
				      : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						     gpr_time_from_millis(50, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(w->cq, dl, NULL);

		should_stop(now_ns());
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

		switch (t->kind) {
		case T_SEND:
			s->sending = false;
			if (s->send != NULL) {
				grpc_byte_buffer_destroy(s->send);
				s->send = NULL;
			}
			if (ev.success)
				stream_maybe_send(s);
			break;
		case T_RECV:
			s->recv_pending = false;
			if (ev.success && !s->status_done)
				stream_on_recv(s);
			else if (s->recv != NULL) {
				grpc_byte_buffer_destroy(s->recv);
				s->recv = NULL;
			}
			break;
		case T_STATUS:
			s->status_done = true;
			count_status(w, s->status, s->details);
			w->streams_done++;
			if (s->status != GRPC_STATUS_OK) {
				w->unanswered += s->sent - s->received;
				/* A stream that failed before sending a frame counts one against
				 * -n (its frames, when it sent some, were counted when sent), so
				 * that a run whose every stream fails ends after at most n. */
				if (s->sent == 0 && g_o.total &&
				    atomic_fetch_add(&g_issued, 1) + 1 >= g_o.total)
					atomic_store(&g_stop, true);
			}
			break;
		}
		if (stream_end_if_idle(s) && !s->live)
			live--;
	}
	free(ss);
	return NULL;
}

/* Raw input: the bytes, and how to wrap them. */
struct input {
	bool audio;
	Corepipe__V1__SampleFormat fmt;
	unsigned rate, channels, sample_bytes;
	uint8_t *bytes;
	size_t len;
};

/* ==== UDP path ============================================================================== */

/*
 * --proto udp: Execute through the server's UDP data path (wire protocol v1) with
 * libcorepipe-udp: one client (one connect()ed socket) per thread, requests sent in batches of
 * up to --udp-batch with one sendmmsg(), results collected with recvmmsg(). The same closed or
 * open loop as the gRPC arm, the same counters: a request without an answer within -t counts
 * as DEADLINE_EXCEEDED (with -t as its latency). Each request carries its start (scheduled)
 * time in its user pointer.
 */
static struct input g_in;
static struct corepipe_udp_audio g_udp_audio;
static char g_udp_host[256];
static uint16_t g_udp_port;

static void
udp_result(struct worker *w, const struct corepipe_udp_resp *r, uint64_t now)
{
	uint64_t t0 = (uint64_t)(uintptr_t)r->user;
	int st = r->err == 0 ? r->status : GRPC_STATUS_DEADLINE_EXCEEDED;

	if (!reported(t0, now))
		return;
	hist_add(&w->hist, now - t0);
	w->last_done_ns = now;
	w->codes[(unsigned)st < N_CODES ? (unsigned)st : 2]++;
	if (st != GRPC_STATUS_OK) {
		const char *m = r->err ? "no answer in time (-t)" : "the server answered an error";

		br_errors_add(&w->errs, st, m, strlen(m), 1);
	}
	if (st == GRPC_STATUS_OK && g_o.check_output) {
		if (r->output_len == g_req.raw_len &&
		    (r->output_len == 0 || memcmp(r->output, g_req.raw, r->output_len) == 0))
			w->ok_checked++;
		else
			w->bad_output++;
	}
}

static void *
udp_main(void *arg)
{
	struct worker *w = arg;
	struct corepipe_udp_opts uo;
	struct corepipe_udp *c;
	struct corepipe_udp_req *reqs;
	struct corepipe_udp_resp *res;
	unsigned outstanding = 0, batch;
	uint64_t due = g_t_start_ns;

	corepipe_udp_opts_init(&uo);
	/* A lost datagram holds its slot until the timeout: 1 s unless -t says otherwise. */
	uo.timeout_ms = g_o.timeout_set ? (int)g_o.timeout_ms : 1000;
	uo.batch = g_o.udp_batch;
	/* Bursts of answers overflow a default-sized receive buffer (the kernel caps this at
	 * net.core.rmem_max / wmem_max). */
	uo.rcvbuf = 4 << 20;
	uo.sndbuf = 4 << 20;
	/* Ids take window slots by id % window, and answers come back out of order: a window of
	 * 4x the calls in flight (at least the library's 1024) keeps collisions rare. */
	while (uo.window < 4 * w->n_slots && uo.window < 65536)
		uo.window <<= 1;
	uo.max_datagram = g_in.len + 4096 < COREPIPE_UDP_MAX_DATAGRAM ? g_in.len + 4096
								      : COREPIPE_UDP_MAX_DATAGRAM;
	c = corepipe_udp_create(g_udp_host, g_udp_port, &uo);
	if (c == NULL) {
		fprintf(stderr, "corepipe-bench: UDP client for %s:%u: %s\n", g_udp_host,
			g_udp_port, strerror(errno));
		exit(2);
	}
	batch = uo.batch;
	reqs = xcalloc(batch, sizeof(*reqs));
	res = xcalloc(batch, sizeof(*res));
	for (;;) {
		uint64_t now = now_ns();
		bool stop = should_stop(now);
		unsigned k = 0;
		int n, wait_ms;

		while (!stop && outstanding + k < w->n_slots && k < batch &&
		       (!g_o.open_loop || due <= now)) {
			uint64_t t0 = g_o.open_loop ? due : now;

			if (!claim(t0)) {
				stop = true;
				break;
			}
			reqs[k] =
			    (struct corepipe_udp_req){.pipeline_id = g_o.pipeline_id,
						      .payload = g_in.bytes,
						      .len = g_in.len,
						      .audio = g_in.audio ? &g_udp_audio : NULL,
						      .user = (void *)(uintptr_t)t0};
			k++;
			if (g_o.open_loop)
				due = sched_next(w, due);
		}
		if (k > 0) {
			n = corepipe_udp_send_batch(c, reqs, k, NULL);
			if (n == -ENOBUFS)
				n = 0; /* window slot still taken by a late request: results first
					*/
			if (n < 0) {
				fprintf(stderr, "corepipe-bench: UDP send: %s\n", strerror(-n));
				exit(2);
			}
			/* Requests not taken: an open loop has missed their time (counted as not
			 * sent); a closed loop gives their claims back and sends them again. */
			for (unsigned i = (unsigned)n; i < k; i++) {
				if (g_o.open_loop)
					w->backlog++;
				else if (g_o.total && measured((uint64_t)(uintptr_t)reqs[i].user))
					atomic_fetch_sub(&g_issued, 1);
			}
			outstanding += (unsigned)n;
		}
		if (outstanding == 0 && stop)
			break;
		/* Wait for a result; in an open loop with a free slot, only until the next send. */
		wait_ms = 50;
		if (g_o.open_loop && !stop && outstanding < w->n_slots)
			wait_ms = due > now ? (int)((due - now) / 1000000) : 0;
		if (outstanding == 0 && wait_ms > 0) {
			usleep((useconds_t)(wait_ms * 1000)); /* nothing can arrive */
			continue;
		}
		if (outstanding == 0)
			continue;
		n = corepipe_udp_recv_batch(c, res, batch, wait_ms);
		if (n < 0) {
			fprintf(stderr, "corepipe-bench: UDP receive: %s\n", strerror(-n));
			exit(2);
		}
		now = now_ns();
		for (int i = 0; i < n; i++)
			udp_result(w, &res[i], now);
		outstanding -= (unsigned)n;
	}
	if (g_o.open_loop)
		for (uint64_t now = now_ns(); due < now && due < g_t_end_ns;
		     due = sched_next(w, due))
			w->backlog++;
	corepipe_udp_stats(c, &w->udp);
	free(res);
	free(reqs);
	corepipe_udp_destroy(c);
	return NULL;
}

static int
udp_setup(void)
{
	const char *a = g_o.udp_addr, *colon = strrchr(a, ':');
	size_t hl;
	char *end;
	unsigned long port;

	if (colon == NULL)
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return -1;
	if (*a == '[' && colon > a && colon[-1] == ']') { /* [v6]:port */
		a++;
		hl = (size_t)(colon - 1 - a);
	} else {
		hl = (size_t)(colon - a);
	}
	if (hl == 0 || hl >= sizeof(g_udp_host))
		return -1;
	memcpy(g_udp_host, a, hl);
	g_udp_host[hl] = '\0';
	g_udp_port = (uint16_t)port;
	g_udp_audio = (struct corepipe_udp_audio){
	    .fmt = g_in.fmt == COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE
		       ? COREPIPE_UDP_F32LE
		       : COREPIPE_UDP_S16LE,
	    .channels = (uint16_t)g_in.channels,
	    .rate = g_in.rate};
	return 0;
}

/* ==== Requests ============================================================================== */

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
load_wav(struct input *in)
{
	FILE *f = fopen(g_o.wav, "rb");
	uint8_t *buf;
	long n;
	size_t off = 12;
	bool have_fmt = false;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 12 ||
	    fseek(f, 0, SEEK_SET) != 0)
		die("--wav: cannot read the file");
	buf = xcalloc((size_t)n, 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("--wav: short read");
	fclose(f);
	if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
		die("--wav: not a RIFF/WAVE file");
	while (off + 8 <= (size_t)n) {
		uint32_t len = le32(buf + off + 4);
		const uint8_t *b = buf + off + 8;

		if (len > (size_t)n - off - 8)
			len = (uint32_t)((size_t)n - off - 8);
		if (memcmp(buf + off, "fmt ", 4) == 0 && len >= 16) {
			unsigned tag = b[0] | b[1] << 8, bits = b[14] | b[15] << 8;

			in->channels = b[2] | b[3] << 8;
			in->rate = le32(b + 4);
			if (tag == 0xFFFE && len >= 26)
				tag = b[24] | b[25] << 8; /* WAVE_FORMAT_EXTENSIBLE sub-format */
			if (tag == 1 && bits == 16)
				in->fmt = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE;
			else if (tag == 3 && bits == 32)
				in->fmt = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE;
			else
				die("--wav: only 16-bit PCM and 32-bit float WAV are supported");
			in->sample_bytes = bits / 8;
			have_fmt = true;
		} else if (memcmp(buf + off, "data", 4) == 0 && have_fmt) {
			in->audio = true;
			in->len = len - len % (in->sample_bytes * in->channels);
			in->bytes = xcalloc(in->len, 1);
			memcpy(in->bytes, b, in->len);
			free(buf);
			if (in->len == 0 || in->rate == 0 || in->channels == 0)
				die("--wav: no samples");
			return;
		}
		off += 8 + len + (len & 1);
	}
	die("--wav: no fmt/data chunk");
}

static void
make_input(struct input *in)
{
	memset(in, 0, sizeof(*in));
	if (g_o.wav) {
		load_wav(in);
		return;
	}
	if (g_o.audio_fmt == AF_NONE) {
		in->len = g_o.size;
		in->bytes = xcalloc(in->len, 1);
		for (size_t i = 0; i < in->len; i++)
			in->bytes[i] = (uint8_t)(i * 31);
		return;
	}
	size_t frames = (size_t)llround((double)g_o.audio_rate * g_o.frame_ms / 1000.0);

	in->audio = true;
	in->rate = g_o.audio_rate;
	in->channels = g_o.audio_channels;
	in->sample_bytes = g_o.audio_fmt == AF_S16 ? 2 : 4;
	in->fmt = g_o.audio_fmt == AF_S16 ? COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE
					  : COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE;
	in->len = frames * in->channels * in->sample_bytes;
	in->bytes = xcalloc(in->len, 1);
	for (size_t i = 0; i < frames; i++) {
		double v = 0.25 * sin(2 * M_PI * 440 * (double)i / g_o.audio_rate);

		for (unsigned c = 0; c < in->channels; c++) {
			uint8_t *p = in->bytes + (i * in->channels + c) * in->sample_bytes;

			if (g_o.audio_fmt == AF_S16) {
				int16_t s = (int16_t)(v * 32767);

				memcpy(p, &s, 2);
			} else {
				float s = (float)v;

				memcpy(p, &s, 4);
			}
		}
	}
}

/* Wrap @p len bytes at @p b as a payload (audio keeps the input's format). */
static void
fill_payload(Corepipe__V1__Payload *p, Corepipe__V1__AudioBuffer *a, const struct input *in,
	     const uint8_t *b, size_t len)
{
	corepipe__v1__payload__init(p);
	corepipe__v1__audio_buffer__init(a);
	if (in->audio) {
		a->format = in->fmt;
		a->sample_rate = in->rate;
		a->channels = in->channels;
		a->samples.data = (uint8_t *)b;
		a->samples.len = len;
		p->kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
		p->audio = a;
	} else {
		p->kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
		p->data.data = (uint8_t *)b;
		p->data.len = len;
	}
}

static const char *
yaml_scalar(yaml_document_t *d, yaml_node_t *n)
{
	(void)d;
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *
yaml_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const char *k = yaml_scalar(d, yaml_document_get_node(d, p->key));

		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* --inline-json: JSON is YAML, so libyaml (already a dependency) parses it. The document is
 * kept until exit: the node strings point into it. */
static void
parse_inline_json(void)
{
	static yaml_document_t doc;
	yaml_parser_t p;
	yaml_node_t *root, *list;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)g_o.inline_json,
				     strlen(g_o.inline_json));
	if (!yaml_parser_load(&p, &doc) || (root = yaml_document_get_root_node(&doc)) == NULL)
		die("--inline-json: not valid JSON");
	yaml_parser_delete(&p);
	list = root->type == YAML_SEQUENCE_NODE ? root : yaml_get(&doc, root, "nodes");
	if (list == NULL || list->type != YAML_SEQUENCE_NODE)
		die("--inline-json: expected {\"nodes\": [...]} or [...]");
	for (yaml_node_item_t *it = list->data.sequence.items.start;
	     it < list->data.sequence.items.top; it++) {
		yaml_node_t *n = yaml_document_get_node(&doc, *it), *params;
		struct node_arg *na;

		if (g_o.n_nodes == MAX_NODES)
			die("--inline-json: too many nodes");
		na = &g_o.nodes[g_o.n_nodes++];
		na->type = (char *)yaml_scalar(&doc, yaml_get(&doc, n, "type"));
		if (na->type == NULL)
			die("--inline-json: every node needs a \"type\"");
		params = yaml_get(&doc, n, "params");
		if (params == NULL)
			continue;
		if (params->type != YAML_MAPPING_NODE)
			die("--inline-json: \"params\" must be an object");
		for (yaml_node_pair_t *pp = params->data.mapping.pairs.start;
		     pp < params->data.mapping.pairs.top; pp++) {
			if (na->n_params == MAX_PARAMS)
				die("--inline-json: too many params");
			na->key[na->n_params] =
			    (char *)yaml_scalar(&doc, yaml_document_get_node(&doc, pp->key));
			na->val[na->n_params] =
			    (char *)yaml_scalar(&doc, yaml_document_get_node(&doc, pp->value));
			if (!na->key[na->n_params] || !na->val[na->n_params])
				die("--inline-json: param keys and values must be scalars");
			na->n_params++;
		}
	}
}

/* The inline pipeline of --node / --inline-json, or NULL for a named one. Lives until exit. */
static Corepipe__V1__PipelineSpec *
make_spec(void)
{
	static Corepipe__V1__PipelineSpec spec;
	static Corepipe__V1__NodeSpec ns[MAX_NODES], *nsp[MAX_NODES];
	static Corepipe__V1__NodeSpec__ParamsEntry pe[MAX_NODES][MAX_PARAMS];
	static Corepipe__V1__NodeSpec__ParamsEntry *pep[MAX_NODES][MAX_PARAMS];

	if (g_o.inline_json)
		parse_inline_json();
	if (g_o.n_nodes == 0)
		return NULL;
	corepipe__v1__pipeline_spec__init(&spec);
	for (unsigned i = 0; i < g_o.n_nodes; i++) {
		corepipe__v1__node_spec__init(&ns[i]);
		ns[i].type = g_o.nodes[i].type;
		for (unsigned k = 0; k < g_o.nodes[i].n_params; k++) {
			corepipe__v1__node_spec__params_entry__init(&pe[i][k]);
			pe[i][k].key = g_o.nodes[i].key[k];
			pe[i][k].value = g_o.nodes[i].val[k];
			pep[i][k] = &pe[i][k];
		}
		ns[i].n_params = g_o.nodes[i].n_params;
		ns[i].params = pep[i];
		nsp[i] = &ns[i];
	}
	spec.n_nodes = g_o.n_nodes;
	spec.nodes = nsp;
	return &spec;
}

static grpc_slice
pack_execute(Corepipe__V1__ExecuteRequest *rq)
{
	grpc_slice s = grpc_slice_malloc(corepipe__v1__execute_request__get_packed_size(rq));

	corepipe__v1__execute_request__pack(rq, GRPC_SLICE_START_PTR(s));
	return s;
}

static grpc_slice
pack_stream(Corepipe__V1__StreamRequest *rq)
{
	grpc_slice s = grpc_slice_malloc(corepipe__v1__stream_request__get_packed_size(rq));

	corepipe__v1__stream_request__pack(rq, GRPC_SLICE_START_PTR(s));
	return s;
}

static void
build_messages(void)
{
	Corepipe__V1__PipelineSpec *spec = make_spec();
	Corepipe__V1__Payload p;
	Corepipe__V1__AudioBuffer a;

	make_input(&g_in);
	if (!g_o.stream) {
		Corepipe__V1__ExecuteRequest rq;

		corepipe__v1__execute_request__init(&rq);
		if (spec) {
			rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_INLINE;
			rq.inline_ = spec;
		} else {
			rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
			rq.name = (char *)g_o.pipeline;
		}
		fill_payload(&p, &a, &g_in, g_in.bytes, g_in.len);
		rq.input = &p;
		g_req = (struct frame){pack_execute(&rq), g_in.bytes, g_in.len};
		return;
	}

	Corepipe__V1__StreamRequest rq;
	Corepipe__V1__StreamOpen op;
	size_t fb;

	corepipe__v1__stream_request__init(&rq);
	corepipe__v1__stream_open__init(&op);
	if (spec) {
		op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_INLINE;
		op.inline_ = spec;
	} else {
		op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME;
		op.name = (char *)g_o.pipeline;
	}
	rq.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_OPEN;
	rq.open = &op;
	g_open = (struct frame){pack_stream(&rq), NULL, 0};

	/* A WAV is cut into --frame-ms frames (the last partial one dropped); generated audio and
	 * bytes are one frame, sent again and again. */
	fb = g_in.len;
	if (g_o.wav) {
		fb = (size_t)llround((double)g_in.rate * g_o.frame_ms / 1000.0) * g_in.channels *
		     g_in.sample_bytes;
		if (fb == 0 || fb > g_in.len)
			fb = g_in.len;
	}
	g_n_frames = (unsigned)(g_in.len / fb < MAX_FRAMES ? g_in.len / fb : MAX_FRAMES);
	for (unsigned i = 0; i < g_n_frames; i++) {
		corepipe__v1__stream_request__init(&rq);
		fill_payload(&p, &a, &g_in, g_in.bytes + i * fb, fb);
		rq.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_FRAME;
		rq.frame = &p;
		g_frames[i] = (struct frame){pack_stream(&rq), g_in.bytes + i * fb, fb};
	}
}

/* ==== Channels ============================================================================== */

static grpc_channel_credentials *
make_creds(void)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_channel_credentials *c;

	if (g_o.insecure || (!g_o.cacert && !g_o.cert))
		return grpc_insecure_credentials_create();
	if (g_o.cacert) {
		FILE *f = fopen(g_o.cacert, "rb");
		long n;

		if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET))
			die("--cacert: cannot read the file");
		ca = xcalloc((size_t)n + 1, 1);
		if (fread(ca, 1, (size_t)n, f) != (size_t)n)
			die("--cacert: short read");
		fclose(f);
	}
	if (g_o.cert || g_o.key) {
		FILE *f;
		long n;
		char **dst[2] = {&cert, &key};
		const char *src[2] = {g_o.cert, g_o.key};

		if (!g_o.cert || !g_o.key)
			die("--cert and --key go together");
		for (int i = 0; i < 2; i++) {
			f = fopen(src[i], "rb");
			if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 ||
			    fseek(f, 0, SEEK_SET))
				die("--cert/--key: cannot read the file");
			*dst[i] = xcalloc((size_t)n + 1, 1);
			if (fread(*dst[i], 1, (size_t)n, f) != (size_t)n)
				die("--cert/--key: short read");
			fclose(f);
		}
		pair.private_key = key;
		pair.cert_chain = cert;
	}
	c = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
	if (c == NULL)
		die("TLS credentials could not be created");
	return c;
}

/* Connect every channel and wait until all are READY (or @p dl passes), so that
 * connection set-up is not in the measurement. Returns the number ready. */
static unsigned
connect_all(grpc_channel **chs, unsigned n, gpr_timespec dl)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	unsigned ready = 0, pending = 0;

	for (unsigned i = 0; i < n; i++) {
		grpc_connectivity_state st = grpc_channel_check_connectivity_state(chs[i], 1);

		if (st == GRPC_CHANNEL_READY) {
			ready++;
			continue;
		}
		grpc_channel_watch_connectivity_state(chs[i], st, dl, cq, (void *)(uintptr_t)i);
		pending++;
	}
	while (pending > 0) {
		grpc_event ev =
		    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		unsigned i = (unsigned)(uintptr_t)ev.tag;
		grpc_connectivity_state st;

		if (ev.type != GRPC_OP_COMPLETE)
			break;
		pending--;
		st = grpc_channel_check_connectivity_state(chs[i], 1);
		if (st == GRPC_CHANNEL_READY)
			ready++;
		else if (ev.success && st != GRPC_CHANNEL_TRANSIENT_FAILURE) {
			/* changed, not ready yet (and not refused): watch again until the deadline
			 */
			grpc_channel_watch_connectivity_state(chs[i], st, dl, cq,
							      (void *)(uintptr_t)i);
			pending++;
		}
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return ready;
}

/* ==== Command line ========================================================================== */

static double
num(const char *flag, const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "corepipe-bench: %s: '%s' is not a number in [%g, %g]\n", flag, s,
			lo, hi);
		exit(2);
	}
	return v;
}

static void
add_metadata(const char *arg)
{
	char *kv = strdup(arg), *colon = kv ? strchr(kv, ':') : NULL;

	if (colon == NULL || colon == kv)
		die("-m: expected KEY:VALUE");
	if (g_o.n_md == MAX_MD)
		die("-m: too many");
	*colon = '\0';
	for (char *p = kv; *p; p++) /* gRPC metadata keys are lowercase */
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	colon++;
	while (*colon == ' ')
		colon++;
	g_o.md_key[g_o.n_md] = kv;
	g_o.md_val[g_o.n_md] = colon;
	g_md[g_o.n_md].key = grpc_slice_from_static_string(kv);
	g_md[g_o.n_md].value = grpc_slice_from_static_string(colon);
	g_o.n_md++;
}

/* --node TYPE[:k=v,...] */
static void
add_node(const char *arg)
{
	char *s = strdup(arg), *params, *tok, *save = NULL;
	struct node_arg *na;

	if (s == NULL || *s == '\0' || *s == ':')
		die("--node: expected TYPE[:k=v,...]");
	if (g_o.n_nodes == MAX_NODES)
		die("--node: too many");
	na = &g_o.nodes[g_o.n_nodes++];
	params = strchr(s, ':');
	if (params)
		*params++ = '\0';
	na->type = s;
	for (tok = params ? strtok_r(params, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL || eq == tok)
			die("--node: params are k=v");
		if (na->n_params == MAX_PARAMS)
			die("--node: too many params");
		*eq = '\0';
		na->key[na->n_params] = tok;
		na->val[na->n_params] = eq + 1;
		na->n_params++;
	}
}

enum {
	O_TARGET = 256,
	O_PROTO,
	O_UDP,
	O_PIPELINE_ID,
	O_UDP_BATCH,
	O_INSECURE,
	O_CACERT,
	O_CERT,
	O_KEY,
	O_SERVER_NAME,
	O_CONNECTIONS,
	O_THREADS,
	O_WARMUP,
	O_RPS,
	O_PAUSE,
	O_SCHED,
	O_LSTART,
	O_LEND,
	O_LSTEP,
	O_LSTEPDUR,
	O_PIPELINE,
	O_INLINE,
	O_NODE,
	O_SIZE,
	O_AFMT,
	O_ARATE,
	O_ACH,
	O_FRAME_MS,
	O_WAV,
	O_STREAM,
	O_SFRAMES,
	O_DEPTH,
	O_INTERVAL,
	O_CHECK,
	O_ALLOW,
	O_FORMAT,
};

static void
parse(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"target", 1, 0, O_TARGET},
	    {"proto", 1, 0, O_PROTO},
	    {"udp", 1, 0, O_UDP},
	    {"pipeline-id", 1, 0, O_PIPELINE_ID},
	    {"udp-batch", 1, 0, O_UDP_BATCH},
	    {"insecure", 0, 0, O_INSECURE},
	    {"cacert", 1, 0, O_CACERT},
	    {"cert", 1, 0, O_CERT},
	    {"key", 1, 0, O_KEY},
	    {"server-name", 1, 0, O_SERVER_NAME},
	    {"metadata", 1, 0, 'm'},
	    {"concurrency", 1, 0, 'c'},
	    {"connections", 1, 0, O_CONNECTIONS},
	    {"threads", 1, 0, O_THREADS},
	    {"total", 1, 0, 'n'},
	    {"duration", 1, 0, 'z'},
	    {"warmup", 1, 0, O_WARMUP},
	    {"rps", 1, 0, O_RPS},
	    {"pause-ms", 1, 0, O_PAUSE},
	    {"load-schedule", 1, 0, O_SCHED},
	    {"load-start", 1, 0, O_LSTART},
	    {"load-end", 1, 0, O_LEND},
	    {"load-step", 1, 0, O_LSTEP},
	    {"load-step-duration", 1, 0, O_LSTEPDUR},
	    {"timeout", 1, 0, 't'},
	    {"pipeline", 1, 0, O_PIPELINE},
	    {"inline-json", 1, 0, O_INLINE},
	    {"node", 1, 0, O_NODE},
	    {"size", 1, 0, O_SIZE},
	    {"audio-format", 1, 0, O_AFMT},
	    {"audio-rate", 1, 0, O_ARATE},
	    {"audio-channels", 1, 0, O_ACH},
	    {"frame-ms", 1, 0, O_FRAME_MS},
	    {"wav", 1, 0, O_WAV},
	    {"stream", 0, 0, O_STREAM},
	    {"stream-frames", 1, 0, O_SFRAMES},
	    {"depth", 1, 0, O_DEPTH},
	    {"frame-interval", 1, 0, O_INTERVAL},
	    {"check-output", 0, 0, O_CHECK},
	    {"allow-errors", 0, 0, O_ALLOW},
	    {"format", 1, 0, O_FORMAT},
	    {"output", 1, 0, 'o'},
	    {"help", 0, 0, 'h'},
	    {0, 0, 0, 0},
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool sched_set = false;
	int o;

	g_o = (struct opts){.target = "127.0.0.1:50051",
			    .concurrency = 1,
			    .duration = 5,
			    .warmup = 1,
			    .timeout_ms = 10000,
			    .pipeline = "passthrough",
			    .size = 64,
			    .audio_rate = 48000,
			    .audio_channels = 1,
			    .frame_ms = 10,
			    .stream_frames = 1000,
			    .udp_batch = 32,
			    .depth = 1,
			    .load_step_dur = 1};
	while ((o = getopt_long(argc, argv, "c:n:z:t:m:o:h", lo, NULL)) != -1) {
		switch (o) {
		case O_TARGET:
			g_o.target = optarg;
			break;
		case O_PROTO:
			if (strcmp(optarg, "grpc") == 0)
				g_o.proto = PROTO_GRPC;
			else if (strcmp(optarg, "udp") == 0)
				g_o.proto = PROTO_UDP;
			else
				die("--proto: grpc or udp");
			break;
		case O_UDP:
			g_o.udp_addr = optarg;
			break;
		case O_PIPELINE_ID:
			g_o.pipeline_id = (unsigned)num("--pipeline-id", optarg, 0, 4294967295.0);
			break;
		case O_UDP_BATCH:
			g_o.udp_batch = (unsigned)num("--udp-batch", optarg, 1, 1024);
			break;
		case O_INSECURE:
			g_o.insecure = true;
			break;
		case O_CACERT:
			g_o.cacert = optarg;
			break;
		case O_CERT:
			g_o.cert = optarg;
			break;
		case O_KEY:
			g_o.key = optarg;
			break;
		case O_SERVER_NAME:
			g_o.server_name = optarg;
			break;
		case 'm':
			add_metadata(optarg);
			break;
		case 'c':
			g_o.concurrency = (unsigned)num("-c", optarg, 1, 1000000);
			break;
		case O_CONNECTIONS:
			g_o.connections = (unsigned)num("--connections", optarg, 1, 100000);
			break;
		case O_THREADS:
			g_o.threads = (unsigned)num("--threads", optarg, 1, MAX_THREADS);
			break;
		case 'n':
			g_o.total = (uint64_t)num("-n", optarg, 1, 1e15);
			break;
		case 'z':
			g_o.duration = num("-z", optarg, 0.001, 1e7);
			break;
		case O_WARMUP:
			g_o.warmup = num("--warmup", optarg, 0, 3600);
			break;
		case O_PAUSE:
			g_o.pause_ms = num("--pause-ms", optarg, 0, 1e6);
			break;
		case O_RPS:
			g_o.rps = num("--rps", optarg, 0.001, 1e9);
			g_o.open_loop = true;
			break;
		case O_SCHED:
			sched_set = true;
			if (strcmp(optarg, "const") == 0)
				g_o.sched = SCHED_CONST;
			else if (strcmp(optarg, "step") == 0)
				g_o.sched = SCHED_STEP;
			else if (strcmp(optarg, "line") == 0)
				g_o.sched = SCHED_LINE;
			else
				die("--load-schedule: const, step or line");
			break;
		case O_LSTART:
			g_o.load_start = num("--load-start", optarg, 0, 1e9);
			break;
		case O_LEND:
			g_o.load_end = num("--load-end", optarg, 0, 1e9);
			break;
		case O_LSTEP:
			g_o.load_step = num("--load-step", optarg, -1e9, 1e9);
			break;
		case O_LSTEPDUR:
			g_o.load_step_dur = num("--load-step-duration", optarg, 0.001, 1e6);
			break;
		case 't':
			g_o.timeout_ms = (unsigned)num("-t", optarg, 1, 86400000);
			g_o.timeout_set = true;
			break;
		case O_PIPELINE:
			g_o.pipeline = optarg;
			break;
		case O_INLINE:
			g_o.inline_json = optarg;
			break;
		case O_NODE:
			add_node(optarg);
			break;
		case O_SIZE:
			g_o.size = (size_t)num("--size", optarg, 0, 1 << 30);
			break;
		case O_AFMT:
			if (strcmp(optarg, "s16le") == 0)
				g_o.audio_fmt = AF_S16;
			else if (strcmp(optarg, "f32le") == 0)
				g_o.audio_fmt = AF_F32;
			else
				die("--audio-format: s16le or f32le");
			break;
		case O_ARATE:
			g_o.audio_rate = (unsigned)num("--audio-rate", optarg, 1, 1e7);
			break;
		case O_ACH:
			g_o.audio_channels = (unsigned)num("--audio-channels", optarg, 1, 256);
			break;
		case O_FRAME_MS:
			g_o.frame_ms = num("--frame-ms", optarg, 0.01, 1e6);
			break;
		case O_WAV:
			g_o.wav = optarg;
			break;
		case O_STREAM:
			g_o.stream = true;
			break;
		case O_SFRAMES:
			g_o.stream_frames = (unsigned)num("--stream-frames", optarg, 1, 4e9);
			break;
		case O_DEPTH:
			g_o.depth = (unsigned)num("--depth", optarg, 1, MAX_DEPTH);
			break;
		case O_INTERVAL:
			g_o.frame_interval_ms = num("--frame-interval", optarg, 0, 1e6);
			break;
		case O_CHECK:
			g_o.check_output = true;
			break;
		case O_ALLOW:
			g_o.allow_errors = true;
			break;
		case O_FORMAT:
			if (br_format_parse(optarg, &g_o.format) != 0)
				die("--format: text, json, csv or html");
			break;
		case 'o':
			g_o.out_path = optarg;
			break;
		case 'h':
			fputs(g_usage, stdout);
			fputs(g_usage_more, stdout);
			exit(0);
		default:
			fputs(g_usage, stderr);
			fputs(g_usage_more, stderr);
			exit(2);
		}
	}
	if (optind < argc)
		g_o.target = argv[optind++];
	if (optind < argc)
		die("one target only (see --help)");
	if (sched_set && g_o.sched != SCHED_CONST) {
		if (g_o.load_start <= 0 && g_o.load_step <= 0)
			die("--load-schedule step|line needs --load-start and --load-step");
		g_o.open_loop = true;
	} else if (sched_set && !g_o.open_loop) {
		die("--load-schedule const needs --rps");
	}
	if (g_o.open_loop && g_o.stream)
		die("--rps and --load-schedule are for unary calls; pace streams with "
		    "--frame-interval");
	if (g_o.inline_json && g_o.n_nodes)
		die("--inline-json or --node, not both");
	if (g_o.wav && (g_o.audio_fmt != AF_NONE))
		die("--wav or --audio-format, not both");
	if (g_o.proto == PROTO_UDP &&
	    (!g_o.udp_addr || g_o.stream || !g_o.pipeline_id || g_o.n_nodes || g_o.inline_json))
		die("--proto udp needs --udp HOST:PORT and --pipeline-id N (named pipelines, unary "
		    "only)");
	if (g_o.threads == 0)
		g_o.threads =
		    (unsigned)(ncpu > 0 && (unsigned)ncpu < g_o.concurrency ? (unsigned)ncpu
									    : g_o.concurrency);
	if (g_o.threads > MAX_THREADS)
		g_o.threads = MAX_THREADS;
	if (g_o.threads > g_o.concurrency)
		die("--threads must not exceed -c");
	if (g_o.connections == 0 || g_o.proto == PROTO_UDP)
		g_o.connections = g_o.threads; /* UDP: one socket per thread */
	if (g_o.connections < g_o.threads)
		die("--connections must be at least --threads");
	if (g_o.connections > g_o.concurrency)
		die("--connections must not exceed -c (a connection without calls measures "
		    "nothing)");
}

/* ==== Report ================================================================================ */

struct totals {
	struct hist h;
	uint64_t codes[N_CODES];
	uint64_t errors, ok_checked, bad_output, bad_seq, streams_done, backlog, last_done_ns;
	uint64_t unanswered;
	struct br_errors errs;
	struct corepipe_udp_stats udp;
	double elapsed, cpu;
	unsigned ready;
	double connect_s;
};

/* ==== Main ================================================================================== */

int
main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	static struct totals t;
	grpc_channel_credentials *creds = NULL;
	grpc_arg args[3];
	grpc_channel_args cargs = {.num_args = 0, .args = args};
	struct rusage ru0, ru1;
	uint64_t t_conn;
	gpr_timespec connect_dl;
	char cmd[4096];
	void *(*body)(void *);

	parse(argc, argv);
	{
		/* One fd per connection: allow as many as the hard limit permits. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	join_command(argc, argv, cmd, sizeof(cmd));
	grpc_init();
	build_messages();
	if (g_o.proto == PROTO_UDP) {
		if (udp_setup() != 0)
			die("--udp: expected HOST:PORT (IPv6: [ADDR]:PORT)");
		body = udp_main;
		t.ready = g_o.threads;
	} else {
		body = g_o.stream ? stream_main : unary_main;
		creds = make_creds();
		args[cargs.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
						    .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
						    .value.integer = 1};
		args[cargs.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
						    .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
						    .value.integer = -1};
		if (g_o.server_name)
			args[cargs.num_args++] =
			    (grpc_arg){.type = GRPC_ARG_STRING,
				       .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
				       .value.string = (char *)g_o.server_name};
	}
	t_conn = now_ns();
	connect_dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				  gpr_time_from_seconds(CONNECT_S, GPR_TIMESPAN));
	for (unsigned i = 0; i < g_o.threads; i++) {
		w[i].idx = i;
		w[i].n_slots =
		    g_o.concurrency / g_o.threads + (i < g_o.concurrency % g_o.threads ? 1 : 0);
		w[i].n_ch = g_o.connections / g_o.threads + (i < g_o.connections % g_o.threads);
		w[i].rate_share = 1.0 / g_o.threads;
		if (g_o.proto != PROTO_GRPC)
			continue;
		w[i].ch = xcalloc(w[i].n_ch, sizeof(*w[i].ch));
		w[i].reg = xcalloc(w[i].n_ch, sizeof(*w[i].reg));
		w[i].cq = grpc_completion_queue_create_for_next(NULL);
		for (unsigned k = 0; k < w[i].n_ch; k++) {
			w[i].ch[k] = grpc_channel_create(g_o.target, creds, &cargs);
			w[i].reg[k] = grpc_channel_register_call(
			    w[i].ch[k],
			    g_o.stream ? "/corepipe.v1.Pipeline/ExecuteStream"
				       : "/corepipe.v1.Pipeline/Execute",
			    NULL, NULL);
		}
		t.ready += connect_all(w[i].ch, w[i].n_ch, connect_dl);
	}
	t.connect_s = (double)(now_ns() - t_conn) / 1e9;
	if (g_o.proto == PROTO_GRPC && t.ready < g_o.connections)
		fprintf(stderr, "corepipe-bench: only %u of %u connections ready after %.1f s\n",
			t.ready, g_o.connections, t.connect_s);

	getrusage(RUSAGE_SELF, &ru0);
	g_t_start_ns = now_ns();
	g_t_measure_ns = g_t_start_ns + (uint64_t)(g_o.warmup * 1e9);
	g_t_end_ns = g_t_measure_ns + (uint64_t)(g_o.duration * 1e9);
	for (unsigned i = 0; i < g_o.threads; i++)
		pthread_create(&w[i].tid, NULL, body, &w[i]);
	for (unsigned i = 0; i < g_o.threads; i++) {
		pthread_join(w[i].tid, NULL);
		hist_merge(&t.h, &w[i].hist);
		for (int k = 0; k < N_CODES; k++)
			t.codes[k] += w[i].codes[k];
		t.ok_checked += w[i].ok_checked;
		t.bad_output += w[i].bad_output;
		t.bad_seq += w[i].bad_seq;
		t.streams_done += w[i].streams_done;
		t.backlog += w[i].backlog;
		t.unanswered += w[i].unanswered;
		br_errors_merge(&t.errs, &w[i].errs);
		t.udp.sent += w[i].udp.sent;
		t.udp.received += w[i].udp.received;
		t.udp.stale += w[i].udp.stale;
		t.udp.bad += w[i].udp.bad;
		t.udp.timeouts += w[i].udp.timeouts;
		if (w[i].last_done_ns > t.last_done_ns)
			t.last_done_ns = w[i].last_done_ns;
	}
	getrusage(RUSAGE_SELF, &ru1);
	t.cpu = cpu_seconds(&ru0, &ru1);
	/* Rate over the measured window: from its start to the last measured answer. */
	t.elapsed =
	    t.last_done_ns > g_t_measure_ns ? (double)(t.last_done_ns - g_t_measure_ns) / 1e9 : 0;
	for (int k = 1; k < N_CODES; k++)
		t.errors += t.codes[k];
	{
		struct br_result r = {
		    .command = cmd,
		    .stream = g_o.stream,
		    .udp = g_o.proto == PROTO_UDP,
		    .open_loop = g_o.open_loop,
		    .check_output = g_o.check_output,
		    .concurrency = g_o.concurrency,
		    .connections = g_o.connections,
		    .threads = g_o.threads,
		    .ready = t.ready,
		    .udp_batch = g_o.udp_batch,
		    .pipeline_id = g_o.pipeline_id,
		    .connect_s = t.connect_s,
		    .elapsed_s = t.elapsed,
		    .warmup_s = g_o.warmup,
		    .cpu_s = t.cpu,
		    .ncpu = sysconf(_SC_NPROCESSORS_ONLN),
		    .h = &t.h,
		    .ok_checked = t.ok_checked,
		    .bad_output = t.bad_output,
		    .bad_seq = t.bad_seq,
		    .streams_done = t.streams_done,
		    .backlog = t.backlog,
		    .unanswered = t.unanswered,
		    .udp_sent = t.udp.sent,
		    .udp_received = t.udp.received,
		    .udp_stale = t.udp.stale,
		    .udp_bad = t.udp.bad,
		    .udp_timeouts = t.udp.timeouts,
		    .errors = &t.errs,
		};
		FILE *out = g_o.out_path ? fopen(g_o.out_path, "w") : stdout;

		memcpy(r.codes, t.codes, sizeof(r.codes));
		if (out == NULL) {
			fprintf(stderr, "corepipe-bench: -o %s: %s\n", g_o.out_path,
				strerror(errno));
			return 2;
		}
		if (br_write(out, g_o.format, &r) != 0 || (out != stdout && fclose(out) != 0)) {
			fprintf(stderr, "corepipe-bench: cannot write the report\n");
			return 2;
		}
		if (g_o.out_path && g_o.format != BR_TEXT)
			fprintf(stderr, "corepipe-bench: report written to %s\n", g_o.out_path);
	}
	return (t.errors || t.bad_output || t.bad_seq || t.h.n == 0) && !g_o.allow_errors ? 1 : 0;
}

/*
 * bench_stream: load generator for corepipe.v1.Pipeline/ExecuteStream on the gRPC C core client
 * API, timing every message of a stream (not just whole calls).
 *
 * Each client thread owns a completion queue and its share of the streams (-c); streams are
 * spread over --connections channels. A stream sends `open`, then --frames frames, keeping at
 * most --depth frames sent and not yet answered (pipelining; depth 1 = ping-pong), optionally
 * paced at one frame per --frame-interval ms (real-time audio: 10 ms), then half-closes and
 * reads the flush response and the status. When a stream ends, a new one starts until the
 * duration is over. One SEND_MESSAGE and one RECV_MESSAGE are outstanding per stream at a time,
 * as gRPC requires. Per-message latency (frame sent -> its response received, matched by seq)
 * goes into a log-linear histogram; every response's seq is checked to be the next one, and
 * every final status is counted by code.
 *
 * Frames are S16LE mono audio (--rate, --frame-ms) or raw bytes (--size). Client CPU is
 * reported: on a 2-core machine the client shares the CPUs with the server.
 */
#include "corepipe/v1/corepipe.pb-c.h"
#include "perf/common.h"

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

#define MAX_THREADS 64
#define MAX_DEPTH   256
#define N_CODES	    17

struct opts {
	const char *target, *pipeline;
	unsigned streams, connections, threads, depth, frames, rate;
	double duration, warmup, frame_ms, interval_ms;
	size_t size;
	int json;
};

static struct opts g_o = {.target = "127.0.0.1:50051",
			  .pipeline = "passthrough",
			  .streams = 1,
			  .threads = 1,
			  .depth = 8,
			  .frames = 1000,
			  .rate = 16000,
			  .duration = 5,
			  .warmup = 1,
			  .frame_ms = 10};

static const char g_usage[] =
    "usage: bench_stream [options]\n"
    "  --target HOST:PORT     server (default 127.0.0.1:50051)\n"
    "  -c, --streams N        streams kept open at once (default 1)\n"
    "  --connections N        TCP connections (default = threads)\n"
    "  --threads N            client threads (default 1)\n"
    "  --pipeline NAME        pipeline to open (default passthrough)\n"
    "  --frames N             frames per stream before it half-closes (default 1000)\n"
    "  --depth N              frames in flight per stream, 1 = ping-pong (default 8)\n"
    "  --frame-interval MS    pace frames (real time: 10); default 0 = as fast as possible\n"
    "  --rate HZ              S16LE mono audio at this rate (default 16000)\n"
    "  --frame-ms MS          audio per frame (default 10)\n"
    "  --size BYTES           send raw bytes frames of this size instead of audio\n"
    "  -z, --duration S       measure for S seconds (default 5)\n"
    "  --warmup S             unmeasured seconds first (default 1)\n"
    "  --format text|json     output format (default text)\n";

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
	unsigned sent, received, opened; /* frames sent, responses received */
	bool sending, closed_send, done_recv, live;
	uint64_t t_send[MAX_DEPTH];
	uint64_t next_due_ns;
};

struct worker {
	pthread_t tid;
	unsigned n_streams, n_ch;
	grpc_channel **ch;
	void **reg;
	grpc_completion_queue *cq;
	struct hist hist;
	uint64_t msgs, streams_done, codes[N_CODES], bad_seq;
};

static grpc_slice g_open, g_frame;
static double g_t_measure, g_t_end;
static atomic_bool g_stop;

static void
start_batch(struct stream *s, grpc_op *ops, size_t n, struct tag *t)
{
	if (grpc_call_start_batch(s->call, ops, n, t, NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "bench_stream: start_batch failed\n");
		exit(2);
	}
}

static void
post_recv(struct stream *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv;
	s->recv = NULL;
	start_batch(s, &op, 1, &s->recv_tag);
}

/* Send the next frame, or the half-close, if the depth and pacing allow. */
static void
maybe_send(struct stream *s)
{
	grpc_op op;

	if (s->sending || s->closed_send)
		return;
	memset(&op, 0, sizeof(op));
	if (s->sent == g_o.frames || atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		s->closed_send = true;
		s->sending = true;
		start_batch(s, &op, 1, &s->send_tag);
		return;
	}
	if (s->sent - s->received >= g_o.depth)
		return;
	if (g_o.interval_ms > 0 && now_ns() < s->next_due_ns)
		return;
	s->send = grpc_raw_byte_buffer_create(&g_frame, 1);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->send;
	s->t_send[s->sent % MAX_DEPTH] = now_ns();
	s->next_due_ns += (uint64_t)(g_o.interval_ms * 1e6);
	s->sent++;
	s->sending = true;
	start_batch(s, &op, 1, &s->send_tag);
}

static void
stream_start(struct stream *s)
{
	struct worker *w = s->w;
	grpc_op ops[3];

	memset(s, 0, offsetof(struct stream, t_send));
	s->w = w;
	s->send_tag = (struct tag){T_SEND, s};
	s->recv_tag = (struct tag){T_RECV, s};
	s->status_tag = (struct tag){T_STATUS, s};
	s->call = grpc_channel_create_registered_call(w->ch[s->ch], NULL, GRPC_PROPAGATE_DEFAULTS,
						      w->cq, w->reg[s->ch],
						      gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
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
	start_batch(s, ops, 2, &s->status_tag);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	s->send = grpc_raw_byte_buffer_create(&g_open, 1);
	ops[1].data.send_message.send_message = s->send;
	s->sending = true;
	start_batch(s, ops, 2, &s->send_tag);
	post_recv(s);
}

static void
on_recv(struct stream *s)
{
	struct worker *w = s->w;
	Corepipe__V1__StreamResponse *r = NULL;
	grpc_byte_buffer_reader rd;
	grpc_slice sl;

	if (s->recv == NULL) {
		s->done_recv = true;
		return;
	}
	if (grpc_byte_buffer_reader_init(&rd, s->recv)) {
		sl = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
		r = corepipe__v1__stream_response__unpack(NULL, GRPC_SLICE_LENGTH(sl),
							  GRPC_SLICE_START_PTR(sl));
		grpc_slice_unref(sl);
	}
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	if (r == NULL || r->seq != s->received)
		w->bad_seq++;
	if (s->received < s->sent && now_s() >= g_t_measure && now_s() < g_t_end) {
		hist_add(&w->hist, now_ns() - s->t_send[s->received % MAX_DEPTH]);
		w->msgs++;
	}
	if (r != NULL)
		corepipe__v1__stream_response__free_unpacked(r, NULL);
	s->received++;
	post_recv(s);
	maybe_send(s);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct stream *ss = calloc(w->n_streams, sizeof(*ss));
	unsigned live = 0;

	for (unsigned i = 0; i < w->n_streams; i++) {
		ss[i].w = w;
		ss[i].ch = i % w->n_ch;
		stream_start(&ss[i]);
		live++;
	}
	while (live > 0) {
		gpr_timespec dl = g_o.interval_ms > 0
				      ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						     gpr_time_from_micros(500, GPR_TIMESPAN))
				      : gpr_inf_future(GPR_CLOCK_MONOTONIC);
		grpc_event ev = grpc_completion_queue_next(w->cq, dl, NULL);

		if (now_s() >= g_t_end)
			atomic_store(&g_stop, true);
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			for (unsigned i = 0; i < w->n_streams; i++)
				if (ss[i].live)
					maybe_send(&ss[i]);
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
				maybe_send(s);
			break;
		case T_RECV:
			if (ev.success)
				on_recv(s);
			else
				s->done_recv = true;
			break;
		case T_STATUS:
			w->codes[(unsigned)s->status < N_CODES ? s->status : 2]++;
			w->streams_done++;
			if (s->status != GRPC_STATUS_OK) {
				char *d = grpc_slice_to_c_string(s->details);

				fprintf(stderr, "bench_stream: stream ended %d: %s\n", s->status,
					d);
				gpr_free(d);
			}
			grpc_metadata_array_destroy(&s->md_init);
			grpc_metadata_array_destroy(&s->md_trail);
			grpc_slice_unref(s->details);
			grpc_call_unref(s->call);
			s->live = false;
			live--;
			if (!atomic_load(&g_stop)) {
				stream_start(s);
				live++;
			}
			break;
		}
	}
	free(ss);
	return NULL;
}

static void
build_messages(void)
{
	Corepipe__V1__StreamRequest rq;
	Corepipe__V1__StreamOpen op;
	Corepipe__V1__Payload in;
	Corepipe__V1__AudioBuffer a;
	size_t n;
	uint8_t *data;

	corepipe__v1__stream_request__init(&rq);
	corepipe__v1__stream_open__init(&op);
	op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME;
	op.name = (char *)g_o.pipeline;
	rq.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_OPEN;
	rq.open = &op;
	g_open = grpc_slice_malloc(corepipe__v1__stream_request__get_packed_size(&rq));
	corepipe__v1__stream_request__pack(&rq, GRPC_SLICE_START_PTR(g_open));

	corepipe__v1__stream_request__init(&rq);
	corepipe__v1__payload__init(&in);
	corepipe__v1__audio_buffer__init(&a);
	rq.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_FRAME;
	rq.frame = &in;
	if (g_o.size) {
		n = g_o.size;
		data = malloc(n);
		for (size_t i = 0; i < n; i++)
			data[i] = (uint8_t)(i * 31);
		in.kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
		in.data.data = data;
		in.data.len = n;
	} else {
		size_t samples = (size_t)((double)g_o.rate * g_o.frame_ms / 1000.0);

		n = samples * 2;
		data = malloc(n ? n : 1);
		for (size_t i = 0; i < samples; i++) {
			int16_t v = (int16_t)(8000 * sin(2 * M_PI * 440 * (double)i / g_o.rate));

			memcpy(data + 2 * i, &v, 2);
		}
		a.format = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE;
		a.sample_rate = g_o.rate;
		a.channels = 1;
		a.samples.data = data;
		a.samples.len = n;
		in.kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
		in.audio = &a;
	}
	g_frame = grpc_slice_malloc(corepipe__v1__stream_request__get_packed_size(&rq));
	corepipe__v1__stream_request__pack(&rq, GRPC_SLICE_START_PTR(g_frame));
	free(data);
}

static int
parse(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"target", 1, 0, 'T'},	{"streams", 1, 0, 'c'},
	    {"connections", 1, 0, 'C'}, {"threads", 1, 0, 'j'},
	    {"pipeline", 1, 0, 'p'},	{"frames", 1, 0, 'f'},
	    {"depth", 1, 0, 'd'},	{"frame-interval", 1, 0, 'i'},
	    {"rate", 1, 0, 'r'},	{"frame-ms", 1, 0, 'm'},
	    {"size", 1, 0, 's'},	{"duration", 1, 0, 'z'},
	    {"warmup", 1, 0, 'w'},	{"format", 1, 0, 'F'},
	    {"help", 0, 0, 'h'},	{0, 0, 0, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "c:z:h", lo, NULL)) != -1) {
		switch (o) {
		case 'T':
			g_o.target = optarg;
			break;
		case 'c':
			g_o.streams = (unsigned)atoi(optarg);
			break;
		case 'C':
			g_o.connections = (unsigned)atoi(optarg);
			break;
		case 'j':
			g_o.threads = (unsigned)atoi(optarg);
			break;
		case 'p':
			g_o.pipeline = optarg;
			break;
		case 'f':
			g_o.frames = (unsigned)atoi(optarg);
			break;
		case 'd':
			g_o.depth = (unsigned)atoi(optarg);
			break;
		case 'i':
			g_o.interval_ms = atof(optarg);
			break;
		case 'r':
			g_o.rate = (unsigned)atoi(optarg);
			break;
		case 'm':
			g_o.frame_ms = atof(optarg);
			break;
		case 's':
			g_o.size = (size_t)atol(optarg);
			break;
		case 'z':
			g_o.duration = atof(optarg);
			break;
		case 'w':
			g_o.warmup = atof(optarg);
			break;
		case 'F':
			g_o.json = strcmp(optarg, "json") == 0;
			break;
		default:
			fputs(g_usage, o == 'h' ? stdout : stderr);
			return o == 'h' ? 1 : 2;
		}
	}
	if (g_o.connections == 0)
		g_o.connections = g_o.threads;
	if (g_o.streams == 0 || g_o.threads == 0 || g_o.threads > MAX_THREADS || g_o.depth == 0 ||
	    g_o.depth > MAX_DEPTH || g_o.frames == 0 || g_o.connections < g_o.threads ||
	    g_o.rate == 0) {
		fputs(g_usage, stderr);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	static struct hist all;
	uint64_t codes[N_CODES] = {0}, msgs = 0, done = 0, bad = 0, errors = 0;
	grpc_arg arg = {.type = GRPC_ARG_INTEGER,
			.key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
			.value.integer = 1};
	grpc_channel_args args = {.num_args = 1, .args = &arg};
	grpc_channel_credentials *creds;
	struct rusage ru0, ru1;
	char cmd[2048];
	double cpu, us = 1e3;
	int rc = parse(argc, argv);

	if (rc != 0)
		return rc == 1 ? 0 : rc;
	join_command(argc, argv, cmd, sizeof(cmd));
	grpc_init();
	build_messages();
	creds = grpc_insecure_credentials_create();
	for (unsigned t = 0; t < g_o.threads; t++) {
		w[t].n_streams = g_o.streams / g_o.threads + (t < g_o.streams % g_o.threads);
		w[t].n_ch = g_o.connections / g_o.threads + (t < g_o.connections % g_o.threads);
		w[t].ch = calloc(w[t].n_ch, sizeof(*w[t].ch));
		w[t].reg = calloc(w[t].n_ch, sizeof(*w[t].reg));
		w[t].cq = grpc_completion_queue_create_for_next(NULL);
		for (unsigned k = 0; k < w[t].n_ch; k++) {
			w[t].ch[k] = grpc_channel_create(g_o.target, creds, &args);
			w[t].reg[k] = grpc_channel_register_call(
			    w[t].ch[k], "/corepipe.v1.Pipeline/ExecuteStream", NULL, NULL);
		}
	}
	getrusage(RUSAGE_SELF, &ru0);
	g_t_measure = now_s() + g_o.warmup;
	g_t_end = g_t_measure + g_o.duration;
	for (unsigned t = 0; t < g_o.threads; t++)
		pthread_create(&w[t].tid, NULL, worker_main, &w[t]);
	for (unsigned t = 0; t < g_o.threads; t++) {
		pthread_join(w[t].tid, NULL);
		hist_merge(&all, &w[t].hist);
		for (int k = 0; k < N_CODES; k++)
			codes[k] += w[t].codes[k];
		msgs += w[t].msgs;
		done += w[t].streams_done;
		bad += w[t].bad_seq;
	}
	getrusage(RUSAGE_SELF, &ru1);
	cpu = cpu_seconds(&ru0, &ru1);
	for (int k = 1; k < N_CODES; k++)
		errors += codes[k];
	if (g_o.json)
		printf("{\"command\":\"%s\",\"messages\":%" PRIu64 ",\"duration_s\":%.3f,"
		       "\"msgs_per_s\":%.1f,\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,"
		       "\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f},"
		       "\"streams_done\":%" PRIu64 ",\"stream_errors\":%" PRIu64
		       ",\"bad_seq\":%" PRIu64 ",\"client_cpu_s\":%.3f}\n",
		       cmd, msgs, g_o.duration, (double)msgs / g_o.duration, (double)all.min / us,
		       all.n ? all.sum / (double)all.n / us : 0, (double)hist_pct(&all, 50) / us,
		       (double)hist_pct(&all, 90) / us, (double)hist_pct(&all, 99) / us,
		       (double)hist_pct(&all, 99.9) / us, (double)all.max / us, done, errors, bad,
		       cpu);
	else {
		printf("command:     %s\n", cmd);
		printf("messages:    %" PRIu64 " in %.2f s = %.0f msgs/s (%u streams, depth %u)\n",
		       msgs, g_o.duration, (double)msgs / g_o.duration, g_o.streams, g_o.depth);
		printf(
		    "latency us:  min %.1f  mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
		    "max %.1f\n",
		    (double)all.min / us, all.n ? all.sum / (double)all.n / us : 0,
		    (double)hist_pct(&all, 50) / us, (double)hist_pct(&all, 90) / us,
		    (double)hist_pct(&all, 99) / us, (double)hist_pct(&all, 99.9) / us,
		    (double)all.max / us);
		printf("streams:     %" PRIu64 " ended, %" PRIu64 " with an error; %" PRIu64
		       " responses out of order\n",
		       done, errors, bad);
		printf("client cpu:  %.2f s (%.0f%% of one core)\n", cpu,
		       100 * cpu / (g_o.duration + g_o.warmup));
	}
	return errors || bad ? 1 : 0;
}

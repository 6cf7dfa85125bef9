/*
 * bench_execute: closed-loop load generator for corepipe.v1.Pipeline/Execute on the gRPC C core
 * client API.
 *
 * Each client thread owns a completion queue, its share of the channels (one TCP connection
 * each, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL) and its share of the concurrency: that many calls
 * are kept outstanding, each call one batch (send metadata + message + close, receive metadata +
 * message + status). Latency is measured per call from just before grpc_call_start_batch to
 * the completion, recorded in a per-thread log-linear histogram (64 linear sub-buckets per
 * power of two: relative error below 1.6%), merged at the end. Every status is checked and
 * counted by code; for passthrough the output length can be checked (--check).
 *
 * A C-core client spends about as much CPU per call as the server: on a 2-core machine the
 * client can be the bottleneck. Client CPU time is reported so that this is visible.
 */
#include "corepipe/v1/corepipe.pb-c.h"
#include "perf/common.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_THREADS 64
#define N_CODES	    17

/* ==== Options =============================================================================== */

struct opts {
	const char *target;
	unsigned concurrency, connections, threads;
	uint64_t total;
	double duration, warmup;
	const char *pipeline;
	size_t size;
	unsigned audio_frames;
	unsigned timeout_ms;
	int json, check, allow_errors;
};

static const char g_usage[] =
    "usage: bench_execute [options]\n"
    "  --target HOST:PORT     server (default 127.0.0.1:50051)\n"
    "  -c, --concurrency N    calls kept outstanding in total (default 1)\n"
    "  --connections N        TCP connections, spread over threads (default = threads)\n"
    "  --threads N            client threads (default 1)\n"
    "  -n, --total N          stop after N measured calls\n"
    "  -z, --duration S       or after S seconds (default 5)\n"
    "  --warmup S             unmeasured seconds first (default 1)\n"
    "  --pipeline NAME        pipeline (default passthrough)\n"
    "  --size BYTES           raw data payload size (default 64)\n"
    "  --audio-frames N       send S16LE mono 16 kHz audio of N frames instead\n"
    "  -t, --timeout MS       per-call deadline (default 10000)\n"
    "  --check                check the output length equals the input (passthrough)\n"
    "  --allow-errors         exit 0 even if calls failed\n"
    "  --format text|json     output format (default text)\n";

/* ==== Client threads ======================================================================== */

struct call {
	struct worker *w;
	unsigned ch;
	grpc_call *call;
	grpc_metadata_array md_init, md_trail;
	grpc_byte_buffer *send, *recv;
	grpc_status_code status;
	grpc_slice details;
	uint64_t t0;
};

struct worker {
	pthread_t tid;
	unsigned idx, n_calls, n_ch;
	grpc_channel **ch;
	void **reg;
	grpc_completion_queue *cq;
	struct hist hist;
	uint64_t codes[N_CODES];
	uint64_t bad_output;
};

static struct opts g_o;
static grpc_slice g_req;
static size_t g_expect_len;
static double g_t_start, g_t_measure, g_t_end;
static atomic_uint_fast64_t g_issued;
static atomic_bool g_stop;

static int
start_call(struct call *c)
{
	struct worker *w = c->w;
	grpc_op ops[6];
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_millis(g_o.timeout_ms, GPR_TIMESPAN));

	if (atomic_load(&g_stop))
		return 0;
	if (g_o.total && now_s() >= g_t_measure && atomic_fetch_add(&g_issued, 1) >= g_o.total) {
		atomic_store(&g_stop, true);
		return 0;
	}
	memset(ops, 0, sizeof(ops));
	c->call = grpc_channel_create_registered_call(w->ch[c->ch], NULL, GRPC_PROPAGATE_DEFAULTS,
						      w->cq, w->reg[c->ch], dl, NULL);
	grpc_metadata_array_init(&c->md_init);
	grpc_metadata_array_init(&c->md_trail);
	c->send = grpc_raw_byte_buffer_create(&g_req, 1);
	c->recv = NULL;
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
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
	c->t0 = now_ns();
	if (grpc_call_start_batch(c->call, ops, 6, c, NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "bench_execute: start_batch failed\n");
		exit(2);
	}
	return 1;
}

static void
finish_call(struct call *c)
{
	struct worker *w = c->w;
	uint64_t t1 = now_ns();
	double t = now_s();

	if (t >= g_t_measure) {
		hist_add(&w->hist, t1 - c->t0);
		w->codes[(unsigned)c->status < N_CODES ? c->status : 2]++;
		if (c->status == GRPC_STATUS_OK && g_o.check) {
			grpc_byte_buffer_reader rd;
			grpc_slice s;
			Corepipe__V1__ExecuteResponse *r = NULL;

			if (c->recv && grpc_byte_buffer_reader_init(&rd, c->recv)) {
				s = grpc_byte_buffer_reader_readall(&rd);
				grpc_byte_buffer_reader_destroy(&rd);
				r = corepipe__v1__execute_response__unpack(
				    NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
				grpc_slice_unref(s);
			}
			if (r == NULL || r->output == NULL ||
			    (r->output->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA
				 ? r->output->data.len
				 : r->output->audio->samples.len) != g_expect_len)
				w->bad_output++;
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
	if (!g_o.total && t >= g_t_end)
		atomic_store(&g_stop, true);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct call *calls = calloc(w->n_calls, sizeof(*calls));
	unsigned live = 0;

	for (unsigned i = 0; i < w->n_calls; i++) {
		calls[i].w = w;
		calls[i].ch = i % w->n_ch;
		live += (unsigned)start_call(&calls[i]);
	}
	while (live > 0) {
		grpc_event ev =
		    grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		struct call *c = ev.tag;

		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		finish_call(c);
		live--;
		live += (unsigned)start_call(c);
	}
	free(calls);
	return NULL;
}

/* ==== Main ================================================================================== */

static void
build_request(void)
{
	Corepipe__V1__ExecuteRequest rq;
	Corepipe__V1__Payload in;
	Corepipe__V1__AudioBuffer a;
	uint8_t *data;
	size_t n;

	corepipe__v1__execute_request__init(&rq);
	corepipe__v1__payload__init(&in);
	corepipe__v1__audio_buffer__init(&a);
	rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
	rq.name = (char *)g_o.pipeline;
	rq.input = &in;
	if (g_o.audio_frames) {
		n = (size_t)g_o.audio_frames * 2;
		data = malloc(n);
		for (size_t i = 0; i < n / 2; i++)
			((int16_t *)data)[i] = (int16_t)((i * 2654435761u) >> 16);
		a.format = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE;
		a.sample_rate = 16000;
		a.channels = 1;
		a.samples.data = data;
		a.samples.len = n;
		in.kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
		in.audio = &a;
	} else {
		n = g_o.size;
		data = malloc(n ? n : 1);
		for (size_t i = 0; i < n; i++)
			data[i] = (uint8_t)(i * 31);
		in.kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
		in.data.data = data;
		in.data.len = n;
	}
	g_expect_len = n;
	g_req = grpc_slice_malloc(corepipe__v1__execute_request__get_packed_size(&rq));
	corepipe__v1__execute_request__pack(&rq, GRPC_SLICE_START_PTR(g_req));
	free(data);
}

static int
parse(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"target", required_argument, NULL, 'T'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"connections", required_argument, NULL, 'C'},
	    {"threads", required_argument, NULL, 'j'},
	    {"total", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, 'z'},
	    {"warmup", required_argument, NULL, 'W'},
	    {"pipeline", required_argument, NULL, 'p'},
	    {"size", required_argument, NULL, 's'},
	    {"audio-frames", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'},
	    {"check", no_argument, NULL, 'k'},
	    {"allow-errors", no_argument, NULL, 'e'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	g_o = (struct opts){.target = "127.0.0.1:50051",
			    .concurrency = 1,
			    .threads = 1,
			    .duration = 5,
			    .warmup = 1,
			    .pipeline = "passthrough",
			    .size = 64,
			    .timeout_ms = 10000};
	while ((ch = getopt_long(argc, argv, "c:n:z:t:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'T':
			g_o.target = optarg;
			break;
		case 'c':
			g_o.concurrency = (unsigned)atoi(optarg);
			break;
		case 'C':
			g_o.connections = (unsigned)atoi(optarg);
			break;
		case 'j':
			g_o.threads = (unsigned)atoi(optarg);
			break;
		case 'n':
			g_o.total = strtoull(optarg, NULL, 10);
			break;
		case 'z':
			g_o.duration = atof(optarg);
			break;
		case 'W':
			g_o.warmup = atof(optarg);
			break;
		case 'p':
			g_o.pipeline = optarg;
			break;
		case 's':
			g_o.size = strtoull(optarg, NULL, 10);
			break;
		case 'a':
			g_o.audio_frames = (unsigned)atoi(optarg);
			break;
		case 't':
			g_o.timeout_ms = (unsigned)atoi(optarg);
			break;
		case 'k':
			g_o.check = 1;
			break;
		case 'e':
			g_o.allow_errors = 1;
			break;
		case 'f':
			g_o.json = strcmp(optarg, "json") == 0;
			break;
		case 'h':
			fputs(g_usage, stdout);
			exit(0);
		default:
			fputs(g_usage, stderr);
			return -1;
		}
	}
	if (g_o.threads < 1 || g_o.threads > MAX_THREADS || g_o.concurrency < g_o.threads) {
		fprintf(stderr,
			"bench_execute: need 1 <= threads <= %d and concurrency >= threads\n",
			MAX_THREADS);
		return -1;
	}
	if (g_o.connections == 0)
		g_o.connections = g_o.threads;
	if (g_o.connections < g_o.threads)
		g_o.connections = g_o.threads;
	return 0;
}

int
main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	static struct hist all;
	uint64_t codes[N_CODES] = {0}, bad = 0, errors = 0;
	struct rusage ru0, ru1;
	grpc_channel_credentials *creds;
	grpc_arg arg = {.type = GRPC_ARG_INTEGER,
			.key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
			.value.integer = 1};
	grpc_channel_args args = {.num_args = 1, .args = &arg};
	char cmd[2048];
	double elapsed, cpu;

	if (parse(argc, argv) != 0)
		return 2;
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
	build_request();
	creds = grpc_insecure_credentials_create();
	for (unsigned t = 0; t < g_o.threads; t++) {
		w[t].idx = t;
		w[t].n_calls =
		    g_o.concurrency / g_o.threads + (t < g_o.concurrency % g_o.threads ? 1 : 0);
		w[t].n_ch = g_o.connections / g_o.threads + (t < g_o.connections % g_o.threads);
		w[t].ch = calloc(w[t].n_ch, sizeof(*w[t].ch));
		w[t].reg = calloc(w[t].n_ch, sizeof(*w[t].reg));
		w[t].cq = grpc_completion_queue_create_for_next(NULL);
		for (unsigned k = 0; k < w[t].n_ch; k++) {
			w[t].ch[k] = grpc_channel_create(g_o.target, creds, &args);
			w[t].reg[k] = grpc_channel_register_call(
			    w[t].ch[k], "/corepipe.v1.Pipeline/Execute", NULL, NULL);
		}
	}
	getrusage(RUSAGE_SELF, &ru0);
	g_t_start = now_s();
	g_t_measure = g_t_start + g_o.warmup;
	g_t_end = g_t_measure + g_o.duration;
	for (unsigned t = 0; t < g_o.threads; t++)
		pthread_create(&w[t].tid, NULL, worker_main, &w[t]);
	for (unsigned t = 0; t < g_o.threads; t++) {
		pthread_join(w[t].tid, NULL);
		hist_merge(&all, &w[t].hist);
		for (int k = 0; k < N_CODES; k++)
			codes[k] += w[t].codes[k];
		bad += w[t].bad_output;
	}
	elapsed = now_s() - g_t_measure;
	getrusage(RUSAGE_SELF, &ru1);
	cpu = cpu_seconds(&ru0, &ru1);
	for (int k = 1; k < N_CODES; k++)
		errors += codes[k];

	double us = 1e3;
	if (g_o.json) {
		printf("{\"command\":\"%s\",\"count\":%" PRIu64 ",\"duration_s\":%.3f,\"rps\":%.1f,"
		       "\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
		       "\"p95\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f},"
		       "\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"bad_output\":%" PRIu64 ","
		       "\"client_cpu_s\":%.3f,\"concurrency\":%u,\"connections\":%u,"
		       "\"threads\":%u}\n",
		       cmd, all.n, elapsed, (double)all.n / elapsed, (double)all.min / us,
		       all.n ? all.sum / (double)all.n / us : 0, (double)hist_pct(&all, 50) / us,
		       (double)hist_pct(&all, 90) / us, (double)hist_pct(&all, 95) / us,
		       (double)hist_pct(&all, 99) / us, (double)hist_pct(&all, 99.9) / us,
		       (double)all.max / us, codes[0], errors, bad, cpu, g_o.concurrency,
		       g_o.connections, g_o.threads);
	} else {
		printf("command:    %s\n", cmd);
		printf("count:      %" PRIu64 " in %.2f s = %.0f req/s\n", all.n, elapsed,
		       (double)all.n / elapsed);
		printf("latency us: min %.1f  mean %.1f  p50 %.1f  p90 %.1f  p95 %.1f  p99 %.1f  "
		       "p99.9 %.1f  max %.1f\n",
		       (double)all.min / us, all.n ? all.sum / (double)all.n / us : 0,
		       (double)hist_pct(&all, 50) / us, (double)hist_pct(&all, 90) / us,
		       (double)hist_pct(&all, 95) / us, (double)hist_pct(&all, 99) / us,
		       (double)hist_pct(&all, 99.9) / us, (double)all.max / us);
		printf("status:     OK %" PRIu64, codes[0]);
		for (int k = 1; k < N_CODES; k++)
			if (codes[k])
				printf("  code%d %" PRIu64, k, codes[k]);
		printf("%s\n", bad ? "  (bad output!)" : "");
		printf("client cpu: %.2f s (%.0f%% of one core)\n", cpu, 100 * cpu / elapsed);
	}
	return (errors || bad) && !g_o.allow_errors ? 1 : 0;
}

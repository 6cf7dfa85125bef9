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
 * Transport: --proto grpc, or udp: the server's UDP data path through libcorepipe-udp, batched.
 * Both fill the same per-thread counters, so the report is shared.
 *
 * Layout (h2load's and wrk's): this file is the core (the run, its threads and clock, the
 * open-loop schedule, the merged counters and the report); each protocol is one file behind
 * struct cb_proto (corepipe_bench.h says which).
 */
#include "perf/corepipe_bench.h"

#include "perf/corepipe_bench_input.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ==== Helpers =============================================================================== */

void
cb_die(const char *msg)
{
	fprintf(stderr, "corepipe-bench: %s\n", msg);
	exit(2);
}

void *
cb_xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (p == NULL)
		cb_die("out of memory");
	return p;
}

void
cb_count_status(struct cb_worker *w, int status, const char *msg, size_t len)
{
	w->codes[(unsigned)status < CB_N_CODES ? (unsigned)status : 2]++;
	if (status != 0)
		br_errors_add(&w->errs, status, msg, len, 1);
}

/* ==== Open-loop schedule ==================================================================== */

/* Open-loop rate (calls/s in total) @p s seconds into the measured run. */
static double
sched_rate(const struct cb_opts *o, double s)
{
	double r;

	if (s < 0)
		s = 0;
	switch (o->sched) {
	case CB_SCHED_STEP:
		r = o->load_start + o->load_step * floor(s / o->load_step_dur);
		break;
	case CB_SCHED_LINE:
		r = o->load_start + o->load_step * s / o->load_step_dur;
		break;
	default:
		return o->rps;
	}
	if (o->load_end > 0 && o->load_step > 0 && r > o->load_end)
		r = o->load_end;
	if (o->load_end > 0 && o->load_step < 0 && r < o->load_end)
		r = o->load_end;
	return r;
}

uint64_t
cb_sched_next(const struct cb_worker *w, uint64_t due)
{
	double s = ((double)due - (double)w->run->t_measure_ns) / 1e9;
	double r = sched_rate(w->run->o, s) * w->rate_share;

	if (r <= 0)
		return due + 1000000; /* paused: look again in 1 ms */
	return due + (uint64_t)(1e9 / r);
}

void
cb_count_backlog(struct cb_worker *w, uint64_t due)
{
	for (uint64_t now = now_ns(); due < now && due < w->run->t_end_ns;
	     due = cb_sched_next(w, due))
		w->backlog++;
}

/* ==== The run =============================================================================== */

/* Every worker's counters, merged after the join. */
struct totals {
	struct hist h;
	uint64_t codes[CB_N_CODES];
	uint64_t errors, ok_checked, bad_output, bad_seq, streams_done, backlog, last_done_ns;
	uint64_t unanswered;
	struct br_errors errs;
	struct corepipe_udp_stats udp;
	double elapsed, cpu;
	unsigned ready;
	double connect_s;
};

/* One fd per connection: allow as many as the hard limit permits. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Share the slots (-c), connections and rate out over the threads, then connect them all
 * before the clock starts. */
static void
connect_workers(struct cb_run *run, struct cb_worker *w, struct totals *t)
{
	const struct cb_opts *o = run->o;
	uint64_t t0 = now_ns();

	for (unsigned i = 0; i < o->threads; i++) {
		w[i].run = run;
		w[i].idx = i;
		w[i].n_slots = o->concurrency / o->threads + (i < o->concurrency % o->threads);
		w[i].n_ch = o->connections / o->threads + (i < o->connections % o->threads);
		w[i].rate_share = 1.0 / o->threads;
	}
	t->ready = run->proto->connect(run, w, o->threads);
	t->connect_s = (double)(now_ns() - t0) / 1e9;
	if (t->ready < o->connections)
		fprintf(stderr, "corepipe-bench: only %u of %u connections ready after %.1f s\n",
			t->ready, o->connections, t->connect_s);
}

static void
merge(struct totals *t, const struct cb_worker *w)
{
	hist_merge(&t->h, &w->hist);
	for (int k = 0; k < CB_N_CODES; k++)
		t->codes[k] += w->codes[k];
	t->ok_checked += w->ok_checked;
	t->bad_output += w->bad_output;
	t->bad_seq += w->bad_seq;
	t->streams_done += w->streams_done;
	t->backlog += w->backlog;
	t->unanswered += w->unanswered;
	br_errors_merge(&t->errs, &w->errs);
	t->udp.sent += w->udp.sent;
	t->udp.received += w->udp.received;
	t->udp.stale += w->udp.stale;
	t->udp.bad += w->udp.bad;
	t->udp.timeouts += w->udp.timeouts;
	if (w->last_done_ns > t->last_done_ns)
		t->last_done_ns = w->last_done_ns;
}

/* Start the clock and the client threads; merge their counters when they are done. */
static void
run_threads(struct cb_run *run, struct cb_worker *w, struct totals *t)
{
	const struct cb_opts *o = run->o;
	struct rusage ru0, ru1;

	getrusage(RUSAGE_SELF, &ru0);
	run->t_start_ns = now_ns();
	run->t_measure_ns = run->t_start_ns + (uint64_t)(o->warmup * 1e9);
	run->t_end_ns = run->t_measure_ns + (uint64_t)(o->duration * 1e9);
	for (unsigned i = 0; i < o->threads; i++)
		pthread_create(&w[i].tid, NULL, run->proto->thread, &w[i]);
	for (unsigned i = 0; i < o->threads; i++) {
		pthread_join(w[i].tid, NULL);
		merge(t, &w[i]);
	}
	getrusage(RUSAGE_SELF, &ru1);
	t->cpu = cpu_seconds(&ru0, &ru1);
	/* Rate over the measured window: from its start to the last measured answer. */
	t->elapsed = t->last_done_ns > run->t_measure_ns
			 ? (double)(t->last_done_ns - run->t_measure_ns) / 1e9
			 : 0;
	for (int k = 1; k < CB_N_CODES; k++)
		t->errors += t->codes[k];
}

/* ==== Report ================================================================================ */

/* Write the report (-o, --format). @return 0, or 2 when it could not be written. */
static int
report(const struct cb_opts *o, const struct totals *t, const char *cmd)
{
	struct br_result r = {
	    .command = cmd,
	    .stream = o->stream,
	    .udp = o->proto == CB_UDP,
	    .open_loop = o->open_loop,
	    .check_output = o->check_output,
	    .concurrency = o->concurrency,
	    .connections = o->connections,
	    .threads = o->threads,
	    .ready = t->ready,
	    .udp_batch = o->udp_batch,
	    .pipeline_id = o->pipeline_id,
	    .connect_s = t->connect_s,
	    .elapsed_s = t->elapsed,
	    .warmup_s = o->warmup,
	    .cpu_s = t->cpu,
	    .ncpu = sysconf(_SC_NPROCESSORS_ONLN),
	    .h = &t->h,
	    .ok_checked = t->ok_checked,
	    .bad_output = t->bad_output,
	    .bad_seq = t->bad_seq,
	    .streams_done = t->streams_done,
	    .backlog = t->backlog,
	    .unanswered = t->unanswered,
	    .udp_sent = t->udp.sent,
	    .udp_received = t->udp.received,
	    .udp_stale = t->udp.stale,
	    .udp_bad = t->udp.bad,
	    .udp_timeouts = t->udp.timeouts,
	    .errors = &t->errs,
	};
	FILE *out = o->out_path ? fopen(o->out_path, "w") : stdout;

	memcpy(r.codes, t->codes, sizeof(r.codes));
	if (out == NULL) {
		fprintf(stderr, "corepipe-bench: -o %s: %s\n", o->out_path, strerror(errno));
		return 2;
	}
	if (br_write(out, (enum br_format)o->format, &r) != 0 ||
	    (out != stdout && fclose(out) != 0)) {
		fprintf(stderr, "corepipe-bench: cannot write the report\n");
		return 2;
	}
	if (o->out_path && o->format != BR_TEXT)
		fprintf(stderr, "corepipe-bench: report written to %s\n", o->out_path);
	return 0;
}

/* ==== Main ================================================================================== */

int
main(int argc, char **argv)
{
	struct cb_opts o;
	struct cb_input in;
	struct cb_run run = {.o = &o, .in = &in};
	struct cb_worker *w;
	struct totals *t;
	char cmd[4096];
	int rc;

	cb_opts_parse(&o, argc, argv);
	raise_fd_limit();
	join_command(argc, argv, cmd, sizeof(cmd));
	cb_input_make(&o, &in);
	run.proto = o.proto == CB_UDP ? &cb_proto_udp
		    : o.stream	      ? &cb_proto_stream
				      : &cb_proto_unary;
	run.proto->setup(&run);
	w = cb_xcalloc(o.threads, sizeof(*w));
	t = cb_xcalloc(1, sizeof(*t));
	connect_workers(&run, w, t);
	run_threads(&run, w, t);
	rc = report(&o, t, cmd);
	if (rc == 0)
		rc = (t->errors || t->bad_output || t->bad_seq || t->h.n == 0) && !o.allow_errors;
	free(t);
	free(w);
	return rc;
}

/**
 * @file
 * corepipe-bench's core and the interface of its protocols, laid out like h2load's and wrk's:
 * the core (corepipe_bench.c) owns the run (threads, the clock, scheduling, -n, the merged
 * counters and the report); each protocol or mode is one file behind struct cb_proto:
 *
 *   corepipe_bench_unary.c   gRPC Execute, one call per slot
 *   corepipe_bench_stream.c  gRPC ExecuteStream, every message timed
 *   corepipe_bench_udp.c     the server's UDP data path through libcorepipe-udp
 *
 * with the gRPC channels the first two share (corepipe_bench_grpc.c), what is sent
 * (corepipe_bench_input.c) and the command line (corepipe_bench_opts.c). There is no
 * file-scope state: everything a run has is in struct cb_run, which every thread reaches
 * through its struct cb_worker.
 *
 * Context: cb_opts_parse, the set-up and the report on the main thread; a protocol's thread
 * function on one client thread per worker, which writes only its own worker (and the run's
 * two atomics). Ownership: the run owns its workers and the protocol's state.
 */
#ifndef COREPIPE_PERF_COREPIPE_BENCH_H
#define COREPIPE_PERF_COREPIPE_BENCH_H

#include "client/udp/corepipe_udp.h"
#include "perf/common.h"
#include "perf/corepipe_report.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CB_MAX_THREADS 64
#define CB_MAX_MD      16
#define CB_MAX_NODES   64
#define CB_MAX_PARAMS  16
#define CB_MAX_DEPTH   256 /* stream frames in flight (--depth) */
#define CB_N_CODES     BR_N_CODES

/* ==== Options (corepipe_bench_opts.c) ======================================================= */

/* Choice options hold the index of the word given (perf_opt.h), so these follow the words. */
enum cb_transport { CB_GRPC, CB_UDP };				/* --proto grpc|udp */
enum cb_sched { CB_SCHED_CONST, CB_SCHED_STEP, CB_SCHED_LINE }; /* --load-schedule */
enum cb_afmt { CB_AF_NONE = -1, CB_AF_S16, CB_AF_F32 };		/* --audio-format */

/** A node of an inline pipeline (--node, or one of --inline-json's). */
struct cb_node_arg {
	char *type;
	unsigned n_params;
	char *key[CB_MAX_PARAMS], *val[CB_MAX_PARAMS];
};

/** The command line, parsed and checked. */
struct cb_opts {
	const char *target;
	int proto; /**< enum cb_transport */
	const char *udp_addr;
	unsigned pipeline_id, udp_batch;
	unsigned concurrency, connections, threads;
	uint64_t total;
	double duration, warmup;
	bool open_loop; /**< --rps, or --load-schedule step|line */
	double rps;
	double pause_ms; /**< closed loop: a slot waits this long after each answer */
	int sched;	 /**< enum cb_sched */
	bool sched_set;
	double load_start, load_end, load_step, load_step_dur;
	unsigned timeout_ms;
	bool timeout_set; /**< -t given (streams have no deadline otherwise; UDP: 1 s) */
	unsigned n_md;
	char *md_key[CB_MAX_MD], *md_val[CB_MAX_MD];
	const char *cacert, *cert, *key, *server_name;
	const char *service_config; /**< --service-config FILE, or NULL */
	bool insecure;
	const char *pipeline, *inline_json;
	unsigned n_nodes; /**< --node only: --inline-json's are parsed with the messages */
	struct cb_node_arg nodes[CB_MAX_NODES];
	size_t size;
	int audio_fmt; /**< enum cb_afmt */
	unsigned audio_rate, audio_channels;
	double frame_ms;
	const char *wav;
	bool stream;
	unsigned stream_frames, depth;
	double frame_interval_ms;
	bool check_output, allow_errors;
	int format; /**< enum br_format */
	const char *out_path;
};

/** Parse and check the command line into @p o; prints --help or exits 2 on a usage error. */
void cb_opts_parse(struct cb_opts *o, int argc, char **argv);

/* ==== The run =============================================================================== */

struct cb_proto;
struct cb_input;

/** What a run shares between its threads. */
struct cb_run {
	const struct cb_opts *o;
	const struct cb_proto *proto;
	const struct cb_input *in;
	void *proto_state; /**< the protocol's, read-only once the threads start */
	uint64_t t_start_ns, t_measure_ns, t_end_ns;
	atomic_uint_fast64_t issued; /**< measured calls (or frames) claimed against -n */
	atomic_bool stop;
};

/** One client thread: its share of the load and what it counted (merged after the join). */
struct cb_worker {
	struct cb_run *run;
	pthread_t tid;
	unsigned idx, n_slots, n_ch;
	double rate_share;
	void *conn; /**< the protocol's per-thread transport (gRPC channels, ...) */
	struct hist hist;
	uint64_t codes[CB_N_CODES];
	uint64_t ok_checked, bad_output, bad_seq, streams_done, backlog;
	uint64_t last_done_ns;
	uint64_t unanswered; /**< stream frames sent on streams that failed before answering */
	struct br_errors errs;
	struct corepipe_udp_stats udp; /**< --proto udp: the client library's counters */
};

/** A protocol or mode: what the core calls, in this order. */
struct cb_proto {
	/** Build what every thread shares (messages, addresses) into run->proto_state; exits 2
	 * on a setup error. */
	void (*setup)(struct cb_run *run);
	/** Open the connections of @p n workers (w[i].n_ch each) before the clock starts.
	 * @return how many are ready. */
	unsigned (*connect)(struct cb_run *run, struct cb_worker *w, unsigned n);
	/** One client thread's load, until the run stops; @p arg is its struct cb_worker. */
	void *(*thread)(void *arg);
};

extern const struct cb_proto cb_proto_unary, cb_proto_stream, cb_proto_udp;

/* Hot path: every call or message, client threads. */

/** Whether a call (or frame) started at @p t0 is in the measured window. */
static inline bool
cb_measured(const struct cb_run *run, uint64_t t0)
{
	return t0 >= run->t_measure_ns;
}

/**
 * Whether a call (or message) started (or scheduled) at @p t0 and answered at @p t1 is in the
 * report. With -n: the N started after the warm-up, exactly. Otherwise: every answer that
 * arrives after the warm-up, including answers to calls sent during it, so that calls stuck
 * across the warm-up (a stalled server) are reported with their full latency and status.
 */
static inline bool
cb_reported(const struct cb_run *run, uint64_t t0, uint64_t t1)
{
	return run->o->total ? cb_measured(run, t0) : t1 >= run->t_measure_ns;
}

/** Claim one measured call (or frame) against -n; false when the total is reached. */
static inline bool
cb_claim(struct cb_run *run, uint64_t t0)
{
	if (!run->o->total || !cb_measured(run, t0))
		return true;
	if (atomic_fetch_add(&run->issued, 1) >= run->o->total) {
		atomic_store(&run->stop, true);
		return false;
	}
	return true;
}

/** Give back the claim of a call started at @p t0 that was not sent after all. */
static inline void
cb_unclaim(struct cb_run *run, uint64_t t0)
{
	if (run->o->total && cb_measured(run, t0))
		atomic_fetch_sub(&run->issued, 1);
}

/** Whether -n is used up (nothing new may start, not even a stream's open). */
static inline bool
cb_total_reached(struct cb_run *run)
{
	return run->o->total && atomic_load(&run->issued) >= run->o->total;
}

/** Count a call that failed before it could claim anything (a stream that failed before its
 * first frame) against -n, so that a run whose every call fails still ends after n. */
static inline void
cb_count_unclaimed_failure(struct cb_run *run)
{
	if (run->o->total && atomic_fetch_add(&run->issued, 1) + 1 >= run->o->total)
		atomic_store(&run->stop, true);
}

/** Whether the run is over: the end time passed at @p now (this call ends it), or -n was
 * reached. */
static inline bool
cb_should_stop(struct cb_run *run, uint64_t now)
{
	if (now >= run->t_end_ns)
		atomic_store(&run->stop, true);
	return atomic_load_explicit(&run->stop, memory_order_relaxed);
}

/** The next scheduled send time of @p w (open loop) whose last one was @p due. */
uint64_t cb_sched_next(const struct cb_worker *w, uint64_t due);

/** Count the backlog of an open loop at its end: sends due from @p due on that were never
 * made (every slot busy until the end). */
void cb_count_backlog(struct cb_worker *w, uint64_t due);

/** Count one final status (@p msg: the error message, @p len bytes, for non-OK codes). */
void cb_count_status(struct cb_worker *w, int status, const char *msg, size_t len);

/* Set-up helpers (main thread). */

/** Print "corepipe-bench: @p msg" on stderr and exit 2. */
_Noreturn void cb_die(const char *msg);

/** calloc, or cb_die. */
void *cb_xcalloc(size_t n, size_t sz);

#endif

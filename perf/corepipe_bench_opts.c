/*
 * corepipe-bench's command line: its option table (perf/perf_opt.h) with the defaults in one
 * initialiser, and the checks of options that depend on each other.
 */
#include "perf/corepipe_bench.h"
#include "perf/perf_opt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ==== Options with composite values ========================================================= */

/* -m KEY:VALUE: the key lowercased (gRPC metadata keys are), blanks before the value dropped. */
static const char *
add_metadata(void *opts, const struct perf_opt *row, const char *arg)
{
	struct cb_opts *o = opts;
	char *kv = strdup(arg), *colon = kv ? strchr(kv, ':') : NULL;

	(void)row;
	if (colon == NULL || colon == kv)
		return "expected KEY:VALUE";
	if (o->n_md == CB_MAX_MD)
		return "too many";
	*colon = '\0';
	for (char *p = kv; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	colon++;
	while (*colon == ' ')
		colon++;
	o->md_key[o->n_md] = kv;
	o->md_val[o->n_md] = colon;
	o->n_md++;
	return NULL;
}

/* --node TYPE[:k=v,...] */
static const char *
add_node(void *opts, const struct perf_opt *row, const char *arg)
{
	struct cb_opts *o = opts;
	char *s = strdup(arg), *params, *tok, *save = NULL;
	struct cb_node_arg *na;

	(void)row;
	if (s == NULL || *s == '\0' || *s == ':')
		return "expected TYPE[:k=v,...]";
	if (o->n_nodes == CB_MAX_NODES)
		return "too many";
	na = &o->nodes[o->n_nodes++];
	params = strchr(s, ':');
	if (params)
		*params++ = '\0';
	na->type = s;
	for (tok = params ? strtok_r(params, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq == NULL || eq == tok)
			return "params are k=v";
		if (na->n_params == CB_MAX_PARAMS)
			return "too many params";
		*eq = '\0';
		na->key[na->n_params] = tok;
		na->val[na->n_params] = eq + 1;
		na->n_params++;
	}
	return NULL;
}

/* ==== The table ============================================================================= */

#define AT(field, ctype) PERF_OPT_AT(struct cb_opts, field, ctype)
#define SEEN(field)	 PERF_OPT_SEEN(struct cb_opts, field)

static const char *const g_protos[] = {"grpc", "udp", NULL};
static const char *const g_scheds[] = {"const", "step", "line", NULL};
static const char *const g_afmts[] = {"s16le", "f32le", NULL};
static const char *const g_formats[] = {"text", "json", "csv", "html", NULL};

static const struct perf_opt g_table[] = {
    {.type = PERF_OPT_SECTION, .help = "Target and transport"},
    {"target", 0, PERF_OPT_STR, AT(target, const char *), .arg = "HOST:PORT",
     .help = "gRPC server, also a positional argument", .show_default = true},
    {"proto", 0, PERF_OPT_CHOICE, AT(proto, int), .choices = g_protos, .arg = "grpc|udp",
     .help = "transport; udp needs --udp and --pipeline-id", .show_default = true},
    {"udp", 0, PERF_OPT_STR, AT(udp_addr, const char *), .arg = "HOST:PORT",
     .help = "the server's UDP data-path address (--proto udp)"},
    {"pipeline-id", 0, PERF_OPT_UINT, AT(pipeline_id, unsigned), 0, 4294967295.0, .arg = "N",
     .help = "pipeline id on the UDP path (--proto udp; ListPipelines)"},
    {"udp-batch", 0, PERF_OPT_UINT, AT(udp_batch, unsigned), 1, 1024, .arg = "N",
     .help = "UDP: requests per sendmmsg / results per recvmmsg;\n"
	     "one socket per thread (4 MiB buffers asked for); an answer\n"
	     "lost or later than -t (UDP default 1000) = DEADLINE_EXCEEDED",
     .show_default = true},
    {"insecure", 0, PERF_OPT_FLAG, AT(insecure, bool),
     .help = "plaintext HTTP/2 (the default unless --cacert or --cert)"},
    {"cacert", 0, PERF_OPT_STR, AT(cacert, const char *), .arg = "FILE",
     .help = "TLS: trust this CA (PEM); turns TLS on"},
    {"cert", 0, PERF_OPT_STR, AT(cert, const char *), .arg = "FILE",
     .help = "TLS: client certificate (PEM), with --key, for mTLS"},
    {"key", 0, PERF_OPT_STR, AT(key, const char *), .arg = "FILE",
     .help = "TLS: client key (PEM), with --cert"},
    {"server-name", 0, PERF_OPT_STR, AT(server_name, const char *), .arg = "NAME",
     .help = "TLS: name to verify in the server certificate"},
    {"service-config", 0, PERF_OPT_STR, AT(service_config, const char *), .arg = "FILE",
     .help = "gRPC service config (JSON) of every channel, e.g. clients/service-config.json:\n"
	     "round_robin over a target naming several servers (ipv4:H:P1,H:P2)"},
    {"metadata", 'm', PERF_OPT_FUNC, .fn = add_metadata, .arg = "KEY:VALUE",
     .help = "request metadata, repeatable (e.g. 'authorization:Bearer TOK')"},

    {.type = PERF_OPT_SECTION, .help = "Load"},
    {"concurrency", 'c', PERF_OPT_UINT, AT(concurrency, unsigned), 1, 1000000, .arg = "N",
     .help = "calls (or streams) kept outstanding in total", .show_default = true},
    {"connections", 0, PERF_OPT_UINT, AT(connections, unsigned), 1, 100000, .arg = "N",
     .help = "TCP connections, spread over threads (default = threads)"},
    {"threads", 0, PERF_OPT_UINT, AT(threads, unsigned), 1, CB_MAX_THREADS, .arg = "N",
     .help = "client threads (default min(concurrency, CPUs))"},
    {"total", 'n', PERF_OPT_U64, AT(total, uint64_t), 1, 1e15, .arg = "N",
     .help = "stop after N measured calls (stream frames with --stream)"},
    {"duration", 'z', PERF_OPT_DOUBLE, AT(duration, double), 0.001, 1e7, .arg = "S",
     .help = "or after S seconds; with -n: the upper bound", .show_default = true},
    {"warmup", 0, PERF_OPT_DOUBLE, AT(warmup, double), 0, 3600, .arg = "S",
     .help = "answers in the first S seconds are not reported;\n"
	     "with -n: the calls started in them",
     .show_default = true},
    {"pause-ms", 0, PERF_OPT_DOUBLE, AT(pause_ms, double), 0, 1e6, .arg = "MS",
     .help = "closed loop, each slot idle MS after every answer before its\n"
	     "next call; latency from the actual send (a call after idle)"},
    {"rps", 0, PERF_OPT_DOUBLE, AT(rps, double), 0.001, 1e9, .arg = "R",
     .help = "open loop at R calls/s in total, sends scheduled; latency is\n"
	     "measured from the scheduled time (-c caps calls in flight)",
     .seen = SEEN(open_loop)},
    {"load-schedule", 0, PERF_OPT_CHOICE, AT(sched, int), .choices = g_scheds,
     .arg = "const|step|line",
     .help = "open-loop rate over time:\n"
	     "const: --rps; step: start + step * floor(t / step-duration);\n"
	     "line: start + step * t / step-duration; both stop at --load-end",
     .show_default = true, .seen = SEEN(sched_set)},
    {"load-start", 0, PERF_OPT_DOUBLE, AT(load_start, double), 0, 1e9, .arg = "R",
     .help = "step|line: the rate at the start"},
    {"load-end", 0, PERF_OPT_DOUBLE, AT(load_end, double), 0, 1e9, .arg = "R",
     .help = "step|line: the rate where the schedule stops"},
    {"load-step", 0, PERF_OPT_DOUBLE, AT(load_step, double), -1e9, 1e9, .arg = "R",
     .help = "step|line: the rate added per --load-step-duration"},
    {"load-step-duration", 0, PERF_OPT_DOUBLE, AT(load_step_dur, double), 0.001, 1e6, .arg = "S",
     .help = "step|line: seconds per step", .show_default = true},
    {"timeout", 't', PERF_OPT_UINT, AT(timeout_ms, unsigned), 1, 86400000, .arg = "MS",
     .help = "per-call deadline; streams: only if given", .show_default = true,
     .seen = SEEN(timeout_set)},

    {.type = PERF_OPT_SECTION, .help = "What is called"},
    {"pipeline", 0, PERF_OPT_STR, AT(pipeline, const char *), .arg = "NAME",
     .help = "a registered pipeline", .show_default = true},
    {"inline-json", 0, PERF_OPT_STR, AT(inline_json, const char *), .arg = "JSON",
     .help = "an inline pipeline: {\"nodes\":[{\"type\":T,\"params\":{K:V}}]} or\n"
	     "just the nodes array"},
    {"node", 0, PERF_OPT_FUNC, .fn = add_node, .arg = "TYPE[:k=v,...]",
     .help = "an inline pipeline node, repeatable (in order)"},
    {"size", 0, PERF_OPT_U64, AT(size, size_t), 0, 1 << 30, .arg = "BYTES",
     .help = "raw data payload of BYTES", .show_default = true},
    {"audio-format", 0, PERF_OPT_CHOICE, AT(audio_fmt, int), .choices = g_afmts,
     .arg = "s16le|f32le", .help = "send generated audio (a 440 Hz sine) instead of bytes"},
    {"audio-rate", 0, PERF_OPT_UINT, AT(audio_rate, unsigned), 1, 1e7, .arg = "HZ",
     .help = "sample rate", .show_default = true},
    {"audio-channels", 0, PERF_OPT_UINT, AT(audio_channels, unsigned), 1, 256, .arg = "N",
     .help = "channels", .show_default = true},
    {"frame-ms", 0, PERF_OPT_DOUBLE, AT(frame_ms, double), 0.01, 1e6, .arg = "MS",
     .help = "audio per call / per stream frame", .show_default = true},
    {"wav", 0, PERF_OPT_STR, AT(wav, const char *), .arg = "FILE",
     .help = "send this WAV (PCM s16 or float32): the whole file per unary\n"
	     "call, or cut into --frame-ms frames for a stream"},
    {"stream", 0, PERF_OPT_FLAG, AT(stream, bool),
     .help = "ExecuteStream instead of Execute: per-message latency"},
    {"stream-frames", 0, PERF_OPT_UINT, AT(stream_frames, unsigned), 1, 4e9, .arg = "N",
     .help = "frames per stream before it half-closes", .show_default = true},
    {"depth", 0, PERF_OPT_UINT, AT(depth, unsigned), 1, CB_MAX_DEPTH, .arg = "N",
     .help = "frames in flight per stream, 1 = ping-pong", .show_default = true},
    {"frame-interval", 0, PERF_OPT_DOUBLE, AT(frame_interval_ms, double), 0, 1e6, .arg = "MS",
     .help = "pace each stream at one frame per MS (real time: 10);\n"
	     "latency then counts from the scheduled send time"},

    {.type = PERF_OPT_SECTION, .help = "Checks and output"},
    {"check-output", 0, PERF_OPT_FLAG, AT(check_output, bool),
     .help = "output must equal input (passthrough pipelines)"},
    {"allow-errors", 0, PERF_OPT_FLAG, AT(allow_errors, bool),
     .help = "exit 0 even if calls failed"},
    {"format", 0, PERF_OPT_CHOICE, AT(format, int), .choices = g_formats,
     .arg = "text|json|csv|html",
     .help = "the report:\n"
	     "text: the summary; json: one object; csv: section,key,value\n"
	     "rows; html: a self-contained page with its charts (inline\n"
	     "SVG drawn by inline JavaScript; nothing fetched). Each has the\n"
	     "status and the error distribution (by code and message)",
     .show_default = true},
    {"output", 'o', PERF_OPT_STR, AT(out_path, const char *), .arg = "FILE",
     .help = "write the report there instead of stdout"},
    {"help", 'h', PERF_OPT_HELP, .help = "this text"},
    {.type = PERF_OPT_END},
};

static const struct perf_opt_cmd g_cmd = {
    .prog = "corepipe-bench",
    .synopsis = "usage: corepipe-bench [options] [HOST:PORT]\n",
    .epilogue = "Exit status: 0 all OK, 1 some call failed or a check failed, 2 usage or setup "
		"error.\n",
    .opts = g_table,
    .size = sizeof(struct cb_opts),
};

/* ==== Checks ================================================================================ */

/* --rps, --load-schedule and --stream together. */
static void
check_load(struct cb_opts *o)
{
	if (o->sched_set && o->sched != CB_SCHED_CONST) {
		if (o->load_start <= 0 && o->load_step <= 0)
			cb_die("--load-schedule step|line needs --load-start and --load-step");
		o->open_loop = true;
	} else if (o->sched_set && !o->open_loop) {
		cb_die("--load-schedule const needs --rps");
	}
	if (o->open_loop && o->stream)
		cb_die("--rps and --load-schedule are for unary calls; pace streams with "
		       "--frame-interval");
}

/* What is sent, and over which transport. */
static void
check_request(const struct cb_opts *o)
{
	if (o->inline_json && o->n_nodes)
		cb_die("--inline-json or --node, not both");
	if (o->wav && (o->audio_fmt != CB_AF_NONE))
		cb_die("--wav or --audio-format, not both");
	if (o->proto == CB_UDP &&
	    (!o->udp_addr || o->stream || !o->pipeline_id || o->n_nodes || o->inline_json))
		cb_die("--proto udp needs --udp HOST:PORT and --pipeline-id N (named pipelines, "
		       "unary only)");
}

/* Threads and connections: defaults from -c and the CPUs, then their bounds. */
static void
check_spread(struct cb_opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (o->threads == 0)
		o->threads =
		    (unsigned)(ncpu > 0 && (unsigned)ncpu < o->concurrency ? (unsigned)ncpu
									   : o->concurrency);
	if (o->threads > CB_MAX_THREADS)
		o->threads = CB_MAX_THREADS;
	if (o->threads > o->concurrency)
		cb_die("--threads must not exceed -c");
	if (o->connections == 0 || o->proto == CB_UDP)
		o->connections = o->threads; /* UDP: one socket per thread */
	if (o->connections < o->threads)
		cb_die("--connections must be at least --threads");
	if (o->connections > o->concurrency)
		cb_die("--connections must not exceed -c (a connection without calls measures "
		       "nothing)");
}

void
cb_opts_parse(struct cb_opts *o, int argc, char **argv)
{
	int argi, rc;

	*o = (struct cb_opts){.target = "127.0.0.1:50051",
			      .proto = CB_GRPC,
			      .concurrency = 1,
			      .duration = 5,
			      .warmup = 1,
			      .sched = CB_SCHED_CONST,
			      .timeout_ms = 10000,
			      .pipeline = "passthrough",
			      .size = 64,
			      .audio_fmt = CB_AF_NONE,
			      .audio_rate = 48000,
			      .audio_channels = 1,
			      .frame_ms = 10,
			      .stream_frames = 1000,
			      .udp_batch = 32,
			      .depth = 1,
			      .load_step_dur = 1,
			      .format = BR_TEXT};
	rc = perf_opt_parse(&g_cmd, argc, argv, o, &argi);
	if (rc != 0)
		exit(rc > 0 ? 0 : 2);
	if (argi < argc)
		o->target = argv[argi++];
	if (argi < argc)
		cb_die("one target only (see --help)");
	check_load(o);
	check_request(o);
	check_spread(o);
}

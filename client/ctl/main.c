/*
 * corepipectl: command line, dispatch, usage. See docs/cli.md and corepipectl(1).
 */
#include "client/ctl/ctl.h"

#include <getopt.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char g_usage[] =
    "usage: corepipectl [options] COMMAND [ARGS]\n"
    "\n"
    "Commands\n"
    "  pipelines list                  registered pipelines (name, id, version, nodes)\n"
    "  pipelines get NAME              one pipeline, as YAML that `pipelines put` reads back\n"
    "  pipelines put FILE              create or replace the pipelines in FILE (YAML or JSON;\n"
    "                                  - for stdin): {name, nodes} or the config's pipelines:\n"
    "  pipelines delete NAME           remove a pipeline\n"
    "  nodes                           node types with their parameters and defaults\n"
    "  exec PIPELINE IN [OUT]          run one file through a pipeline: a WAV in (format, rate,\n"
    "  exec --inline FILE IN [OUT]     channels from its header) gives a WAV out; other bytes\n"
    "                                  give bytes; annotations printed (- = stdin/stdout)\n"
    "  stream PIPELINE IN.wav [OUT.wav]  ExecuteStream frame by frame: annotations per frame as\n"
    "  stream --inline FILE IN.wav [OUT.wav]   they arrive, output written as it streams\n"
    "  stats                           workers, pools, refusals, connections (Admin/GetStats)\n"
    "  health [SERVICE]                grpc.health.v1 Check: exit 0 when SERVING\n"
    "  reload                          re-read the server's config file (Admin/ReloadConfig)\n"
    "  top                             live dashboard from GetStats and /metrics (q quits)\n"
    "\n"
    "Connection\n"
    "  -t, --target HOST:PORT    server (default $COREPIPE_TARGET or 127.0.0.1:50051;\n"
    "                            unix:PATH works too)\n"
    "  --token TOKEN             bearer token (default $COREPIPE_TOKEN)\n"
    "  -m, --metadata KEY:VALUE  extra request metadata, repeatable\n"
    "  --cacert FILE             TLS: trust this CA (PEM); turns TLS on\n"
    "  --cert FILE --key FILE    TLS: client certificate and key (mTLS)\n"
    "  --server-name NAME        TLS: name to verify in the server's certificate\n"
    "  --insecure                plaintext even if TLS files are given\n"
    "  --timeout MS              per-call deadline (default 10000; streams: none unless given)\n"
    "  --connect-timeout MS      how long to wait for the connection (default 5000)\n"
    "\n"
    "Output\n"
    "  --json                    one JSON object (stream, top: one per line) on stdout\n"
    "\n"
    "exec, stream\n"
    "  --inline FILE             an inline pipeline from a pipeline file instead of a name\n"
    "  --frame-ms MS             stream: frame length (default 20)\n"
    "  --realtime                stream: send frames at the audio's own pace (a live source)\n"
    "\n"
    "top\n"
    "  --metrics HOST:PORT|URL   the server's /metrics (default: the target's host, port 9090)\n"
    "  --interval S              refresh period (default 1)\n"
    "  --count N                 exit after N refreshes (default: until q or Ctrl-C)\n"
    "\n"
    "Exit status: 0 done; 1 a check failed (health NOT_SERVING); 2 usage; 3 a local file could\n"
    "not be read or is invalid; 4 an output could not be written; 5 no connection to the server;\n"
    "64+N the server answered gRPC status N (69 NOT_FOUND, 67 INVALID_ARGUMENT, 80\n"
    "UNAUTHENTICATED, ...).\n";

enum {
	O_TOKEN = 256,
	O_CACERT,
	O_CERT,
	O_KEY,
	O_SERVER_NAME,
	O_INSECURE,
	O_TIMEOUT,
	O_CONNECT_TIMEOUT,
	O_JSON,
	O_INLINE,
	O_FRAME_MS,
	O_REALTIME,
	O_METRICS,
	O_INTERVAL,
	O_COUNT,
};

static int
num(const struct ctl_opts *o, const char *flag, const char *s, double lo, double hi, double *v)
{
	char *end;

	*v = strtod(s, &end);
	if (end == s || *end != '\0' || !(*v >= lo && *v <= hi))
		return ctl_err(o, CTL_EXIT_USAGE, "%s: '%s' is not a number in [%g, %g]", flag, s,
			       lo, hi);
	return 0;
}

static int
add_md(struct ctl_opts *o, const char *arg)
{
	char *kv = strdup(arg), *colon = kv ? strchr(kv, ':') : NULL;

	if (colon == NULL || colon == kv) {
		free(kv);
		return ctl_err(o, CTL_EXIT_USAGE, "-m: expected KEY:VALUE, got '%s'", arg);
	}
	if (o->n_md == CTL_MAX_MD) {
		free(kv);
		return ctl_err(o, CTL_EXIT_USAGE, "-m: at most %d", CTL_MAX_MD);
	}
	*colon++ = '\0';
	for (char *p = kv; *p; p++) /* gRPC metadata keys are lowercase */
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	while (*colon == ' ')
		colon++;
	o->md_key[o->n_md] = kv; /* main() frees it (free_md) */
	o->md_val[o->n_md] = colon;
	o->n_md++;
	return 0;
}

static int
parse(struct ctl_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"target", 1, 0, 't'},
	    {"token", 1, 0, O_TOKEN},
	    {"metadata", 1, 0, 'm'},
	    {"cacert", 1, 0, O_CACERT},
	    {"cert", 1, 0, O_CERT},
	    {"key", 1, 0, O_KEY},
	    {"server-name", 1, 0, O_SERVER_NAME},
	    {"insecure", 0, 0, O_INSECURE},
	    {"timeout", 1, 0, O_TIMEOUT},
	    {"connect-timeout", 1, 0, O_CONNECT_TIMEOUT},
	    {"json", 0, 0, O_JSON},
	    {"inline", 1, 0, O_INLINE},
	    {"frame-ms", 1, 0, O_FRAME_MS},
	    {"realtime", 0, 0, O_REALTIME},
	    {"metrics", 1, 0, O_METRICS},
	    {"interval", 1, 0, O_INTERVAL},
	    {"count", 1, 0, O_COUNT},
	    {"help", 0, 0, 'h'},
	    {0, 0, 0, 0},
	};
	double v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "t:m:h", lo, NULL)) != -1) {
		rc = 0;
		switch (c) {
		case 't':
			o->target = optarg;
			break;
		case O_TOKEN:
			o->token = optarg;
			break;
		case 'm':
			rc = add_md(o, optarg);
			break;
		case O_CACERT:
			o->cacert = optarg;
			break;
		case O_CERT:
			o->cert = optarg;
			break;
		case O_KEY:
			o->key = optarg;
			break;
		case O_SERVER_NAME:
			o->server_name = optarg;
			break;
		case O_INSECURE:
			o->insecure = true;
			break;
		case O_TIMEOUT:
			rc = num(o, "--timeout", optarg, 1, 86400000, &v);
			o->timeout_ms = (unsigned)v;
			o->timeout_set = true;
			break;
		case O_CONNECT_TIMEOUT:
			rc = num(o, "--connect-timeout", optarg, 1, 3600000, &v);
			o->connect_timeout_ms = (unsigned)v;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_INLINE:
			o->inline_file = optarg;
			break;
		case O_FRAME_MS:
			rc = num(o, "--frame-ms", optarg, 1, 10000, &o->frame_ms);
			break;
		case O_REALTIME:
			o->realtime = true;
			break;
		case O_METRICS:
			o->metrics = optarg;
			break;
		case O_INTERVAL:
			rc = num(o, "--interval", optarg, 0.05, 3600, &o->interval_s);
			break;
		case O_COUNT:
			rc = num(o, "--count", optarg, 1, 1e9, &v);
			o->count = (unsigned)v;
			break;
		case 'h':
			fputs(g_usage, stdout);
			exit(0);
		default:
			fprintf(stderr, "Run '%s --help' for the commands and options.\n",
				o->progname);
			return CTL_EXIT_USAGE;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The command named by argv[optind], given the words after it. */
static int
run(const struct ctl_opts *o, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(const struct ctl_opts *, int, char **);
	} cmds[] = {
	    {"pipelines", ctl_cmd_pipelines},
	    {"pipeline", ctl_cmd_pipelines},
	    {"nodes", ctl_cmd_nodes},
	    {"exec", ctl_cmd_exec},
	    {"stream", ctl_cmd_stream},
	    {"stats", ctl_cmd_stats},
	    {"health", ctl_cmd_health},
	    {"reload", ctl_cmd_reload},
	    {"top", ctl_cmd_top},
	};
	int rc;

	if (optind >= argc) {
		fputs(g_usage, stderr);
		return CTL_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[optind], cmds[i].name) != 0)
			continue;
		grpc_init();
		rc = cmds[i].fn(o, argc - optind - 1, argv + optind + 1);
		grpc_shutdown_blocking();
		if (fflush(stdout) != 0 && rc == 0)
			rc = ctl_err(o, CTL_EXIT_OUTPUT, "cannot write to stdout");
		return rc;
	}
	return ctl_err(o, CTL_EXIT_USAGE, "unknown command '%s' (see --help)", argv[optind]);
}

/* The -m strings add_md() kept (md_val[i] points into md_key[i]'s). */
static void
free_md(struct ctl_opts *o)
{
	for (unsigned i = 0; i < o->n_md; i++)
		free((char *)o->md_key[i]);
	o->n_md = 0;
}

int
main(int argc, char **argv)
{
	struct ctl_opts o = {
	    .target = getenv("COREPIPE_TARGET") ? getenv("COREPIPE_TARGET") : "127.0.0.1:50051",
	    .token = getenv("COREPIPE_TOKEN"),
	    .timeout_ms = 10000,
	    .connect_timeout_ms = 5000,
	    .frame_ms = 20,
	    .metrics = getenv("COREPIPE_METRICS"),
	    .interval_s = 1,
	    .progname = "corepipectl",
	};
	int rc;

	if (o.token != NULL && o.token[0] == '\0')
		o.token = NULL;
	rc = parse(&o, argc, argv);
	if (rc == 0)
		rc = run(&o, argc, argv);
	free_md(&o);
	return rc;
}

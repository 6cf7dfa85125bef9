/*
 * corepiped: process start, EAL and lcore layout, start-up order, signals and shutdown.
 * The only file that exits the process.
 *
 * Start-up: parse flags and config -> lcore map (the CPUs sched_getaffinity allows) -> EAL ->
 * dataplane (pools, registry, an lcore's worker each) -> config pipelines compiled and
 * published -> gRPC server and its front ends (one completion queue each) -> listeners ->
 * reactors launched -> serving. Shutdown on SIGINT/SIGTERM (the control thread): lame duck,
 * drain, gRPC shutdown (grpc_server.h), then reactors stopped and everything torn down in
 * reverse order. A second signal exits at once.
 */
#include "control/access_log.h"
#include "control/config.h"
#include "control/ctl.h"
#include "control/frontend.h"
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/log_grpc.h"
#include "control/metrics_http.h"
#include "control/notify.h"
#include "control/store.h"
#include "control/store_etcd.h"
#include "control/takeover.h"
#include "control/version.h"
#include "dataplane/dataplane.h"
#include "dataplane/node_table.h"

#include <errno.h>
#include <getopt.h>
#include <grpc/grpc.h>
#include <malloc.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define EAL_ARGS_MAX 64
/* How long start-up waits for the worker lcores to enter their loops. */
#define WORKER_START_WAIT_MS 5000

/* A printf format: %s is the installed default configuration file. */
static const char g_usage[] =
    "usage: corepiped [options] [-- EAL args...]\n"
    "\n"
    "  -c, --config FILE        YAML config file; without it: $COREPIPE_CONFIG, else\n"
    "                           %s\n"
    "                           if it exists, else ./config/corepipe.yaml if it exists, else\n"
    "                           built-in defaults without pipelines\n"
    "      --check-config FILE  validate FILE (schema, environment overrides, every pipeline\n"
    "                           compiled) and exit: 0 if valid, 2 with the errors if not\n"
    "      --print-config       print the effective configuration (defaults < file <\n"
    "                           environment < flags) as YAML and exit\n"
    "      --print-config-reference\n"
    "                           print every setting (type, bounds, default, live or restart on\n"
    "                           reload, meaning) as the Markdown table of docs/configuration.md\n"
    "                           and exit\n"
    "  -g, --grpc-listen ADDR   gRPC listen address, overrides the file (e.g. 127.0.0.1:50051;\n"
    "                           port 0 picks a free port, logged in the \"serving\" line)\n"
    "  -f, --frontends N        front-end lcores: each serves gRPC from its own completion\n"
    "                           queue and runs small requests itself (default: server.frontends,\n"
    "                           0 = one per 8 usable CPUs, at least one)\n"
    "  -w, --workers N          worker-only lcores besides the front ends; 0: none, everything\n"
    "                           runs on the front ends (default: every usable CPU left)\n"
    "  -l, --lcores LIST        EAL lcore map instead (e.g. 0@2,1@3): the first --frontends\n"
    "                           lcores are front ends (lcore 0 also runs control), the rest\n"
    "                           workers\n"
    "The default map uses the CPUs the process may run on (sched_getaffinity: taskset, cpuset\n"
    "cgroups, systemd AllowedCPUs=), one lcore per CPU; with one CPU a single lcore does it all.\n"
    "  -L, --log-level LEVEL    debug|info|warn|error (default: info, or the file's)\n"
    "      --takeover PATH      hitless restart: take the listening sockets over from the\n"
    "                           corepiped offering them at PATH, then offer ours there\n"
    "                           (server.takeover_socket; docs/operations.md)\n"
    "  -V, --version            print the version and build details and exit\n"
    "  -h, --help               this text\n"
    "\n"
    "Every scalar key can be overridden from the environment as COREPIPE_<SECTION>_<KEY>,\n"
    "e.g. COREPIPE_SERVER_GRPC_LISTEN=127.0.0.1:6000 (docs/configuration.md); an unknown\n"
    "COREPIPE_* variable is an error.\n"
    "\n"
    "EAL args after -- are passed to rte_eal_init() after the built-in ones\n"
    "(by default --no-huge --no-pci --no-shconf --no-telemetry -m 512; dataplane.hugepages,\n"
    "memory_mb and ports change them), e.g. -- --vdev=net_null0.\n";

struct opts {
	const char *config;
	const char *grpc_listen;
	int workers;   /* -1: not given */
	int frontends; /* 0: not given */
	const char *lcores;
	const char *log_level;
	const char *takeover;
	const char *check_config;
	int print_config;
	int n_eal;
	char **eal;
};

static struct cp_server g_srv;
static struct cp_metrics_http g_metrics;
static struct cp_takeover_offer g_offer = {.lfd = -1, .conn = -1};
static char g_metrics_listen[128];

/* What a successor gets (takeover.h): the gRPC listeners and the metrics endpoint's socket.
 * Control thread; nothing while shutting down (the listeners may be closing). */
static bool
offer_collect(void *arg, struct cp_takeover_offer_set *set)
{
	struct cp_server *srv = arg;

	if (atomic_load(&srv->shutdown_requested))
		return false;
	for (unsigned i = 0; i < srv->n_listeners && set->n < CP_TAKEOVER_FDS_MAX; i++) {
		if (srv->listener[i].fd < 0)
			continue;
		snprintf(set->socks[set->n].kind, sizeof(set->socks[0].kind), "grpc");
		snprintf(set->socks[set->n].addr, sizeof(set->socks[0].addr), "%s",
			 srv->listener[i].addr);
		set->socks[set->n++].fd = srv->listener[i].fd;
	}
	if (g_metrics.started && set->n < CP_TAKEOVER_FDS_MAX) {
		snprintf(set->socks[set->n].kind, sizeof(set->socks[0].kind), "metrics");
		snprintf(set->socks[set->n].addr, sizeof(set->socks[0].addr), "%s",
			 g_metrics_listen);
		set->socks[set->n++].fd = g_metrics.fd;
	}
	return true;
}

static void
offer_taken(void *arg, pid_t pid)
{
	struct cp_server *srv = arg;

	cp_log(CP_LOG_INFO, "taken over: the new process serves, draining",
	       CP_LF_INT("new_pid", pid));
	cp_notify_stopping("taken over by pid %d: draining", (int)pid);
	cp_server_request_handover(srv);
}

/* Offer at the path from the control thread itself (it polls srv->takeover). */
struct offer_job {
	struct cp_ctl_job job;
	struct cp_server *srv;
	char path[108];
};

static void
offer_run(struct cp_ctl_job *job)
{
	struct offer_job *j = caa_container_of(job, struct offer_job, job);
	int rc = cp_takeover_offer_open(&g_offer, j->path);

	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "takeover: cannot offer: no hitless restart from this process",
		       CP_LF_STR("takeover_socket", j->path), CP_LF_STR("error", strerror(-rc)));
	} else {
		g_offer.collect = offer_collect;
		g_offer.taken = offer_taken;
		g_offer.arg = j->srv;
		j->srv->takeover = &g_offer;
	}
	free(j);
}

/* ---- The control thread's handlers (ctl.h): @p arg is the server ---------------------------- */

static void
ctl_reload(void *arg)
{
	struct cp_reload_report *rep = malloc(sizeof(*rep));

	if (rep != NULL)
		cp_reload_run(arg, rep);
	free(rep);
}

static void
ctl_shutdown(void *arg, int sig)
{
	struct cp_server *srv = arg;

	(void)sig;
	cp_notify_stopping(
	    "draining: %llu calls open",
	    (unsigned long long)cp_server_stat_sum(srv, offsetof(struct cp_fe_stats, live_calls)));
	cp_server_request_shutdown(srv);
}

static struct cp_takeover_offer *
ctl_offer(void *arg)
{
	return ((struct cp_server *)arg)->takeover;
}

static struct opts g_opts; /* the command line, re-applied on every reload */

static const char *
env_get(const char *name)
{
	return getenv(name);
}

/* Flags beat the file and the environment, at start and on every reload. */
static void
apply_flags(struct cp_config *cfg)
{
	const struct opts *o = &g_opts;
	enum cp_log_level lvl;

	if (o->grpc_listen != NULL)
		snprintf(cfg->grpc_listen, sizeof(cfg->grpc_listen), "%s", o->grpc_listen);
	if (o->workers >= 0) {
		cfg->workers = (unsigned)o->workers;
		cfg->workers_set = true;
	}
	if (o->frontends > 0)
		cfg->frontends = (unsigned)o->frontends;
	if (o->lcores != NULL)
		snprintf(cfg->lcores, sizeof(cfg->lcores), "%s", o->lcores);
	if (o->log_level != NULL && cp_log_level_parse(o->log_level, &lvl) == 0)
		cfg->log_level = lvl;
	if (o->takeover != NULL)
		snprintf(cfg->takeover_socket, sizeof(cfg->takeover_socket), "%s", o->takeover);
}

/* --check-config: the file, the environment, and every pipeline compiled; no EAL needed. */
static int
check_config(const char *path)
{
	extern char **environ;
	struct cp_config cfg;
	char err[4096];
	int bad = 0;

	cp_config_init(&cfg);
	if (cp_config_check_env(environ, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		bad = 1;
	}
	if (cp_config_load_file(&cfg, path, err, sizeof(err)) != 0 ||
	    cp_config_apply_env(&cfg, env_get, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		cp_config_free(&cfg);
		return 2;
	}
	for (unsigned i = 0; i < cfg.n_pipelines; i++) {
		struct dp_err e;
		struct dp_pipeline *p =
		    dp_pipeline_compile(&cfg.pipelines[i].spec, cfg.max_nodes, &e);

		if (p == NULL) {
			fprintf(stderr, "%s:%d: pipeline '%s': %s\n", path, cfg.pipelines[i].line,
				cfg.pipelines[i].spec.name, e.msg);
			bad = 1;
		}
		dp_pipeline_unref(p);
	}
	if (!bad)
		printf("%s: valid (%u pipelines)\n", path, cfg.n_pipelines);
	cp_config_free(&cfg);
	return bad ? 2 : 0;
}
static sigset_t g_sigs;

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"grpc-listen", required_argument, NULL, 'g'},
	    {"workers", required_argument, NULL, 'w'},
	    {"frontends", required_argument, NULL, 'f'},
	    {"lcores", required_argument, NULL, 'l'},
	    {"log-level", required_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {"check-config", required_argument, NULL, 'K'},
	    {"print-config", no_argument, NULL, 'P'},
	    {"print-config-reference", no_argument, NULL, 'R'},
	    {"version", no_argument, NULL, 'V'},
	    {"takeover", required_argument, NULL, 'T'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->workers = -1;
	while ((ch = getopt_long(argc, argv, "c:g:w:f:l:L:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'g':
			o->grpc_listen = optarg;
			break;
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end != '\0' || optarg[0] == '\0' || v < 0 || v >= DP_WORKERS_MAX) {
				fprintf(stderr, "corepiped: --workers: expected 0..%d, got '%s'\n",
					DP_WORKERS_MAX - 1, optarg);
				return 2;
			}
			o->workers = (int)v;
			break;
		}
		case 'f': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end != '\0' || optarg[0] == '\0' || v < 1 || v > DP_FRONTENDS_MAX) {
				fprintf(stderr,
					"corepiped: --frontends: expected 1..%d, got '%s'\n",
					DP_FRONTENDS_MAX, optarg);
				return 2;
			}
			o->frontends = (int)v;
			break;
		}
		case 'l':
			o->lcores = optarg;
			break;
		case 'L':
			o->log_level = optarg;
			break;
		case 'K':
			o->check_config = optarg;
			break;
		case 'T':
			if (strlen(optarg) == 0 || strlen(optarg) >= 108) {
				fprintf(stderr,
					"corepiped: --takeover: a unix socket path of 1..107 "
					"characters\n");
				return 2;
			}
			o->takeover = optarg;
			break;
		case 'P':
			o->print_config = 1;
			break;
		case 'R':
			cp_config_print_reference(stdout);
			return 1;
		case 'V':
			cp_version_print(stdout);
			return 1;
		case 'h':
			fprintf(stdout, g_usage, cp_default_config_path());
			return 1;
		default:
			fprintf(stderr, g_usage, cp_default_config_path());
			return 2;
		}
	}
	o->n_eal = argc - optind;
	o->eal = argv + optind;
	return 0;
}

/* The CPUs this process may run on (taskset, cpuset cgroup, AllowedCPUs=), ascending. */
static unsigned
usable_cpus(unsigned *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		cpus[0] = 0;
		return 1;
	}
	for (unsigned c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n ? n : (cpus[0] = 0, 1);
}

/*
 * The default lcore map: front ends first (lcore 0, the EAL main lcore, also runs control),
 * then worker-only lcores, one per usable CPU in order; more lcores than CPUs wrap around.
 * @return the number of lcores.
 */
static unsigned
default_lcores(const struct cp_config *cfg, unsigned *frontends, char *out, size_t len)
{
	unsigned cpus[DP_WORKERS_MAX * 2];
	unsigned n = usable_cpus(cpus, DP_WORKERS_MAX * 2);
	unsigned fe = cfg->frontends ? cfg->frontends : (n / 8 ? n / 8 : 1);
	unsigned w, total;
	size_t off = 0;

	if (fe > DP_FRONTENDS_MAX)
		fe = DP_FRONTENDS_MAX;
	w = cfg->workers_set || cfg->workers ? cfg->workers : (n > fe ? n - fe : 0);
	total = fe + w;
	if (total > DP_WORKERS_MAX)
		total = DP_WORKERS_MAX;
	out[0] = '\0';
	for (unsigned i = 0; i < total && off < len; i++)
		off +=
		    (size_t)snprintf(out + off, len - off, "%s%u@%u", i ? "," : "", i, cpus[i % n]);
	*frontends = fe;
	return total;
}

/* Does some configured port use the net_memif driver? */
static bool
has_memif_port(const struct cp_config *cfg)
{
	for (unsigned i = 0; i < cfg->udp.n_ports; i++)
		if (strncmp(cfg->udp.ports[i].devargs, "net_memif", 9) == 0)
			return true;
	return false;
}

/* "lcore@cpu:roles,...", for the serving line. */
static void
roles_text(const struct dp_dataplane *dp, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < dp->n_workers && off < len; i++) {
		const struct dp_lcore *lc = &dp->workers[i]->lc;
		char r[48];

		off += (size_t)snprintf(out + off, len - off, "%s%u@%u:%s", i ? "," : "", lc->lcore,
					lc->cpu, dp_role_names(lc->roles, r, sizeof(r)));
	}
}

/*
 * net_tap puts its queues' file descriptors in O_ASYNC mode with a real-time signal
 * (SIGRTMIN + 1) whose handler only bumps the counter its RX burst looks at: one signal per
 * packet arrival, and any thread may run the handler. Left to the kernel's choice, they land
 * on the main thread, which polls the gRPC completion queue: thousands of EINTR wakeups per
 * second under UDP traffic, and a SIGTERM drain that took ~4 s instead of ~0.1 s to complete
 * the gRPC shutdown. Blocked in the main thread after rte_eal_init(), so the control-plane
 * threads created from then on (gRPC, listener, metrics, control) inherit the mask, and by
 * each lcore as its reactor starts (reactor.c): the EAL interrupt thread, started unblocked
 * during rte_eal_init(), takes them.
 */
static void
block_port_signals(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	sigaddset(&s, SIGIO);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/*
 * Messages are copied through malloc'd memory on a front end (the gRPC core's receive slices,
 * the contiguous message, the decoded request, the packed answer). glibc serves requests over
 * its dynamic mmap threshold (128 KiB at first) with fresh mappings and gives freed heap tops
 * over its trim threshold back to the kernel, so every large message paid a page fault per
 * 4 KiB page, each time: a 3 MiB request cost its front end ~2,000 faults and 60 ms of CPU,
 * 22 ms without them (docs/performance.md, "Large messages and malloc"). Up to 32 MiB (glibc's
 * largest threshold) now comes from the heap, and up to 64 MiB of freed heap stays mapped for
 * the next message. GLIBC_TUNABLES with glibc.malloc settings wins: an operator's choice.
 */
#define MALLOC_MMAP_THRESHOLD (32u << 20)
#define MALLOC_TRIM_THRESHOLD (64u << 20)

static void
tune_malloc(void)
{
	const char *t = getenv("GLIBC_TUNABLES");

	if (t != NULL && strstr(t, "glibc.malloc.") != NULL)
		return;
	(void)mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
	(void)mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
}

/* Each connection is a file descriptor: allow as many as the hard limit permits. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
load_pipelines(const struct cp_config *cfg, struct dp_dataplane *dp)
{
	for (unsigned i = 0; i < cfg->n_pipelines; i++) {
		const struct cp_config_pipeline *cp = &cfg->pipelines[i];
		struct dp_registry_info info;
		struct dp_pipeline *p;
		struct dp_err err;
		int rc;

		p = dp_pipeline_compile(&cp->spec, cfg->max_nodes, &err);
		if (p == NULL) {
			cp_log(CP_LOG_ERROR, "config: invalid pipeline",
			       CP_LF_STR("file", cfg->path), CP_LF_INT("line", cp->line),
			       CP_LF_STR("pipeline", cp->spec.name), CP_LF_STR("error", err.msg));
			return -EINVAL;
		}
		p->from_file = true; /* reloads own it (control/reload.h) */
		rc = dp_registry_put(dp->reg, p, &info);
		if (rc != 0) {
			cp_log(CP_LOG_ERROR, "config: cannot publish pipeline",
			       CP_LF_STR("pipeline", cp->spec.name), CP_LF_INT("errno", -rc));
			return rc;
		}
		cp_log(CP_LOG_INFO, "pipeline added", CP_LF_STR("pipeline", cp->spec.name),
		       CP_LF_U64("id", info.id), CP_LF_U64("version", info.version),
		       CP_LF_STR("source", "config"));
	}
	return 0;
}

/* ==== Start-up and shutdown, step by step ================================================= */

/* How far start-up got: shutdown() undoes the steps from there back. */
enum stage {
	ST_CONFIG,    /* the configuration is loaded */
	ST_EAL,	      /* rte_eal_init() done */
	ST_DP_EARLY,  /* the dataplane exists (its ports may not) */
	ST_DP,	      /* ports open, this thread an RCU reader */
	ST_CONTROL,   /* grpc_init(), the registry store, the gRPC server */
	ST_WORKERS,   /* the lcores launched */
	ST_LISTENING, /* the access log and the metrics endpoint (if any) started */
	ST_SERVED,    /* served until shutdown */
};

/* What start-up builds, for the steps below. */
struct daemon {
	struct opts o;
	struct cp_config cfg;
	char lcores[256];
	unsigned frontends;
	struct dp_dataplane *dp;
	struct cp_takeover_client tk;
	struct offer_job *oj;
	struct cp_ctl ctl;
	struct cp_store store;
	uint64_t answered;
};

/*
 * Flags, file, environment, flags again (apply_flags), validation; --check-config and
 * --print-config end here. @return -1 to go on, else the exit code.
 */
static int
load_config(struct daemon *d, int argc, char **argv)
{
	extern char **environ;
	enum cp_log_level lvl;
	char err[512];
	int rc = parse_opts(argc, argv, &d->o);

	if (rc != 0)
		return rc == 1 ? 0 : 2;
	if (d->o.check_config != NULL)
		return check_config(d->o.check_config);
	if (cp_config_check_env(environ, err, sizeof(err)) != 0) {
		cp_log(CP_LOG_ERROR, "config: bad environment", CP_LF_STR("error", err));
		return 2;
	}
	d->o.config = cp_config_locate(d->o.config, env_get, cp_default_config_path());
	if (d->o.config != NULL &&
	    cp_config_load_file(&d->cfg, d->o.config, err, sizeof(err)) != 0) {
		cp_log(CP_LOG_ERROR, "config: cannot load", CP_LF_STR("error", err));
		return 2;
	}
	if (cp_config_apply_env(&d->cfg, env_get, err, sizeof(err)) != 0) {
		cp_log(CP_LOG_ERROR, "config: bad environment override", CP_LF_STR("error", err));
		return 2;
	}
	if (d->o.log_level != NULL && cp_log_level_parse(d->o.log_level, &lvl) != 0) {
		fprintf(stderr, "corepiped: --log-level: expected debug|info|warn|error\n");
		return 2;
	}
	g_opts = d->o;
	apply_flags(&d->cfg);
	if (cp_config_validate(&d->cfg, err, sizeof(err)) != 0) {
		cp_log(CP_LOG_ERROR, "config: invalid command line", CP_LF_STR("error", err));
		return 2;
	}
	if (d->o.print_config) {
		cp_config_print(stdout, &d->cfg);
		return 0;
	}
	cp_log_set_level(d->cfg.log_level);
	return -1;
}

/*
 * The EAL's arguments from the configuration (docs/configuration.md, "Command line"), then
 * dataplane.eal_args, then those after "--". @return their number; eal[n] is NULL.
 */
static int
eal_args(struct daemon *d, char *argv0, char **eal, char *mem, size_t mem_len, char *prefix,
	 size_t prefix_len)
{
	const struct cp_config *cfg = &d->cfg;
	bool pci = false;
	int n = 0;

	snprintf(mem, mem_len, "%u", cfg->memory_mb);
	eal[n++] = argv0;
	eal[n++] = "--lcores";
	eal[n++] = d->lcores;
	if (!cfg->hugepages)
		eal[n++] = "--no-huge";
	/* Ports: virtual devices by --vdev; PCI NICs by -a, and only then a PCI scan. */
	for (unsigned i = 0; i < cfg->udp.n_ports && n < EAL_ARGS_MAX - 8; i++) {
		const char *dev = cfg->udp.ports[i].devargs;

		if (dp_port_devargs_is_vdev(dev)) {
			eal[n++] = "--vdev";
		} else {
			eal[n++] = "-a";
			pci = true;
		}
		eal[n++] = (char *)dev;
	}
	if (!pci)
		eal[n++] = "--no-pci";
	/* net_memif registers an EAL IPC action when it probes, and --no-shconf disables EAL
	 * IPC (the probe fails with ENOTSUP): with a memif port the EAL keeps its shared files,
	 * under a prefix of our own (corepiped-PID) so that instances stay independent. */
	if (has_memif_port(cfg)) {
		snprintf(prefix, prefix_len, "corepiped-%ld", (long)getpid());
		eal[n++] = "--file-prefix";
		eal[n++] = prefix;
	} else {
		eal[n++] = "--no-shconf";
	}
	eal[n++] = "--no-telemetry"; /* no socket under /var/run/dpdk: instances stay independent */
	eal[n++] = "-m";
	eal[n++] = mem;
	eal[n++] =
	    cfg->log_level == CP_LOG_DEBUG ? "--log-level=lib.*:info" : "--log-level=lib.*:warning";
	for (unsigned i = 0; i < cfg->n_eal_args && n < EAL_ARGS_MAX - 1; i++)
		eal[n++] = cfg->eal_args[i];
	for (int i = 0; i < d->o.n_eal && n < EAL_ARGS_MAX - 1; i++)
		eal[n++] = d->o.eal[i];
	eal[n] = NULL;
	return n;
}

/* The lcore map and rte_eal_init(). @return 0, or the exit code with *st how far it got. */
static int
start_eal(struct daemon *d, char *argv0, enum stage *st)
{
	char *eal[EAL_ARGS_MAX];
	char mem[16], prefix[32];
	int n;

	/* EAL: DPDK's own log lines become JSON lines too. */
	rte_openlog_stream(cp_log_stream("dpdk"));
	if (d->cfg.lcores[0] != '\0') {
		snprintf(d->lcores, sizeof(d->lcores), "%s", d->cfg.lcores);
		d->frontends = d->cfg.frontends ? d->cfg.frontends : 1;
	} else {
		default_lcores(&d->cfg, &d->frontends, d->lcores, sizeof(d->lcores));
	}
	n = eal_args(d, argv0, eal, mem, sizeof(mem), prefix, sizeof(prefix));
	if (rte_eal_init(n, eal) < 0) {
		cp_log(CP_LOG_ERROR, "EAL init failed", CP_LF_STR("error", rte_strerror(rte_errno)),
		       CP_LF_STR("lcores", d->lcores));
		return 1;
	}
	*st = ST_EAL;
	block_port_signals();
	if (d->frontends > rte_lcore_count()) {
		cp_log(CP_LOG_ERROR, "more front ends than lcores",
		       CP_LF_INT("frontends", d->frontends), CP_LF_STR("lcores", d->lcores));
		return 2;
	}
	return 0;
}

/* Pools, registry, workers, UDP ports, the file's pipelines. @return 0 or the exit code. */
static int
start_dataplane(struct daemon *d, enum stage *st)
{
	char err[512];

	/* Default bound of expanding nodes (zstd_decompress max_bytes); set before any compile. */
	dp_node_max_message_bytes = d->cfg.max_message_bytes;
	d->cfg.dp.n_frontends = d->frontends;
	d->dp = dp_dataplane_create(&d->cfg.dp);
	if (d->dp == NULL) {
		cp_log(CP_LOG_ERROR, "dataplane init failed", CP_LF_STR("error", strerror(errno)));
		return 1;
	}
	*st = ST_DP_EARLY;
	if (dp_dataplane_attach_udp(d->dp, &d->cfg.udp, err, sizeof(err)) != 0) {
		cp_log(CP_LOG_ERROR, "UDP ports: cannot open", CP_LF_STR("error", err));
		return 2;
	}
	for (unsigned i = 0; d->dp->udp != NULL && i < d->dp->udp->n_ports; i++) {
		const struct dp_port *pt = &d->dp->udp->port[i];
		char ip[16], mac[RTE_ETHER_ADDR_FMT_SIZE];

		dp_ipv4_format(pt->conf.ip, ip);
		rte_ether_format_addr(mac, sizeof(mac), &pt->mac);
		cp_log(CP_LOG_INFO, "UDP port ready", CP_LF_STR("port", pt->conf.name),
		       CP_LF_STR("device", pt->conf.devargs), CP_LF_STR("driver", pt->driver),
		       CP_LF_STR("mac", mac), CP_LF_STR("address", ip),
		       CP_LF_INT("prefix_len", pt->conf.prefix_len),
		       CP_LF_INT("udp_port", pt->conf.udp_port), CP_LF_INT("queues", pt->n_queues),
		       CP_LF_INT("mtu", pt->mtu), CP_LF_BOOL("rss", pt->off.rss),
		       CP_LF_BOOL("rx_cksum_offload", pt->off.rx_ip_cksum && pt->off.rx_udp_cksum),
		       CP_LF_BOOL("tx_cksum_offload", pt->off.tx_ip_cksum && pt->off.tx_udp_cksum));
	}
	/* The main thread publishes the config's pipelines: a registered RCU thread (offline)
	 * until it becomes front end 0's reactor, which registers on its own. */
	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	*st = ST_DP;
	return load_pipelines(&d->cfg, d->dp) != 0 ? 2 : 0;
}

/* The API's pipelines (registry.store, control/store.h), after the config file's. */
static int
open_store(struct daemon *d)
{
	const struct cp_config *cfg = &d->cfg;
	unsigned n_loaded = 0;
	char serr[1024] = "registry.state_file: too long";

	int rc = cp_store_open(&d->store, cfg->registry_store, cfg->state_file, d->dp->reg,
			       cfg->max_nodes);

	if (rc == 0) {
		cp_store_set_etcd(&d->store, &cfg->etcd);
		/* The store reaches etcd only through this table (control/store.h): what links
		 * the store without it (the unit tests) does not link the gRPC C core. */
		if (cfg->registry_store == CP_STORE_ETCD)
			cp_store_set_backend(&d->store, &cp_store_etcd_backend);
		rc = cp_store_load(&d->store, &n_loaded, serr, sizeof(serr));
	}
	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "registry store: cannot start",
		       CP_LF_STR("store", cp_store_kind_name(cfg->registry_store)),
		       CP_LF_STR("file", cfg->state_file), CP_LF_STR("error", serr));
		return -EINVAL;
	}
	if (cfg->registry_store == CP_STORE_FILE)
		cp_log(CP_LOG_INFO, "registry store ready", CP_LF_STR("store", "file"),
		       CP_LF_STR("file", cfg->state_file), CP_LF_INT("pipelines", n_loaded));
	else if (cfg->registry_store == CP_STORE_ETCD)
		cp_log(CP_LOG_INFO, "registry store ready", CP_LF_STR("store", "etcd"),
		       CP_LF_STR("endpoints", cfg->etcd.endpoints),
		       CP_LF_STR("prefix", cfg->etcd.prefix),
		       CP_LF_BOOL("tls", cfg->etcd.ca_file[0]), CP_LF_STR("user", cfg->etcd.user),
		       CP_LF_INT("pipelines", n_loaded));
	return 0;
}

/* gRPC, the registry store, a predecessor's sockets, the server. @return 0 or the exit code. */
static int
start_control(struct daemon *d, enum stage *st)
{
	const struct cp_config *cfg = &d->cfg;
	struct cp_server_conf sconf = {.cfg = cfg, .takeover = &d->tk};
	char err[512];
	int rc;

	/* gRPC's own threads inherit this (front end 0's) CPU affinity. */
	cp_log_grpc_hook();
	grpc_init();
	/* After grpc_init(): the etcd store speaks gRPC. */
	if (open_store(d) != 0) {
		cp_store_close(&d->store);
		grpc_shutdown_blocking();
		return 2;
	}
	*st = ST_CONTROL;
	if (cfg->auth.enabled)
		cp_log(CP_LOG_INFO, "auth: bearer tokens required",
		       CP_LF_INT("tokens", (long)cfg->auth.n),
		       CP_LF_BOOL("health_open", cfg->auth.health_open));
	/* Hitless restart: a running corepiped's listening sockets, if one offers them. */
	if (cfg->takeover_socket[0] != '\0') {
		rc = cp_takeover_fetch(&d->tk, cfg->takeover_socket, err, sizeof(err));
		if (rc != 0) {
			cp_log(CP_LOG_ERROR, "takeover: failed, not starting",
			       CP_LF_STR("takeover_socket", cfg->takeover_socket),
			       CP_LF_STR("error", err));
			return 2;
		}
		if (d->tk.conn >= 0)
			cp_log(CP_LOG_INFO, "takeover: listening sockets received",
			       CP_LF_INT("old_pid", d->tk.peer_pid), CP_LF_INT("sockets", d->tk.n));
		d->oj = calloc(1, sizeof(*d->oj));
		if (d->oj == NULL)
			return 1;
		d->oj->job.run = offer_run;
		d->oj->srv = &g_srv;
		snprintf(d->oj->path, sizeof(d->oj->path), "%s", cfg->takeover_socket);
	}
	rc = cp_server_create(&g_srv, &sconf, d->dp);
	if (rc != 0)
		return rc == -EADDRINUSE ? 3 : 2;
	g_srv.reload.live = &d->cfg;
	g_srv.reload.path = d->o.config;
	g_srv.reload.apply_flags = apply_flags;
	g_srv.reload.getenv = env_get;
	g_srv.ctl = &d->ctl;
	g_srv.store = &d->store;
	return 0;
}

/* Workers, access log, metrics, control thread, store watch: then serving, until a shutdown.
 * @return 0 or the exit code. */
static int
serve(struct daemon *d, enum stage *st)
{
	const struct cp_config *cfg = &d->cfg;
	struct cp_metrics_http *const metrics = &g_metrics;
	char roles[512];
	int rc;

	if (d->dp == NULL) /* start_dataplane() runs first and fails without one */
		return 1;
	rc = dp_dataplane_launch(d->dp);
	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "cannot launch workers", CP_LF_INT("rc", rc));
		return 1;
	}
	*st = ST_WORKERS;
	for (int i = 0; i < WORKER_START_WAIT_MS && !dp_dataplane_running(d->dp); i++)
		usleep(1000);
	rc = cp_alog_start(cfg->access_log, cfg->access_log_sample, cfg->access_log_ring);
	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "cannot start the access log",
		       CP_LF_STR("error", strerror(-rc)));
		return 1;
	}
	if (cfg->metrics_listen[0] != '\0') {
		snprintf(g_metrics_listen, sizeof(g_metrics_listen), "%s", cfg->metrics_listen);
		rc =
		    cp_metrics_http_adopt(metrics, cfg->metrics_listen,
					  cp_takeover_adopt(&d->tk, "metrics", cfg->metrics_listen),
					  &cfg->http, &g_srv, d->dp);
		if (rc != 0) {
			cp_log(CP_LOG_ERROR, "cannot listen for metrics",
			       CP_LF_STR("metrics_listen", cfg->metrics_listen),
			       CP_LF_STR("error", strerror(-rc)));
			return rc == -EADDRINUSE ? 3 : 2;
		}
	}
	*st = ST_LISTENING;
	/* Signals and reloads: a signal that arrived during start-up stays pending until here. */
	rc = cp_ctl_start(
	    &d->ctl,
	    &(struct cp_ctl_handlers){
		.reload = ctl_reload, .shutdown = ctl_shutdown, .offer = ctl_offer, .arg = &g_srv},
	    &g_sigs);
	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "cannot start the control thread", CP_LF_INT("rc", rc));
		return 1;
	}
	rc = cp_store_start(&d->store, &d->ctl);
	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "registry store: cannot start its thread",
		       CP_LF_STR("error", strerror(-rc)));
		cp_ctl_stop(&d->ctl);
		return 1;
	}
	cp_server_start(&g_srv);
	/* Relaxed: a health answer needs only a recent value (front ends and the metrics thread
	 * read it so); nothing else is published through it. */
	atomic_store_explicit(&g_srv.serving, true, memory_order_relaxed);
	roles_text(d->dp, roles, sizeof(roles));
	cp_log(CP_LOG_INFO, "serving", CP_LF_STR("version", cp_version()),
	       CP_LF_STR("grpc_listen", cfg->grpc_listen), CP_LF_INT("grpc_port", g_srv.port),
	       CP_LF_INT("metrics_port", metrics->port),
	       CP_LF_BOOL("tls", cfg->tls.cert_file[0] != '\0'),
	       CP_LF_INT("plaintext_port", g_srv.plaintext_port),
	       CP_LF_INT("frontends", d->dp->n_frontends), CP_LF_INT("workers", d->dp->n_workers),
	       CP_LF_STR("lcores", d->lcores), CP_LF_STR("roles", roles),
	       CP_LF_INT("udp_ports", d->dp->udp ? (long)d->dp->udp->n_ports : 0),
	       CP_LF_STR("idle_policy", dp_idle_policy_name(cfg->dp.worker.idle)),
	       CP_LF_STR("config", cfg->path[0] ? cfg->path : "built-in defaults"),
	       CP_LF_INT("pid", getpid()));
	cp_notify_ready("serving: gRPC %s (port %d), metrics port %d, %u workers", cfg->grpc_listen,
			g_srv.port, metrics->port, d->dp->n_workers);
	/* Serving: the predecessor may drain now; then offer the sockets to our successor. */
	if (d->tk.conn >= 0) {
		pid_t old_pid = d->tk.peer_pid;

		rc = cp_takeover_ready(&d->tk);
		cp_log(rc == 0 ? CP_LOG_INFO : CP_LOG_WARN,
		       rc == 0 ? "takeover: done, the old process drains"
			       : "takeover: the old process is gone",
		       CP_LF_INT("old_pid", old_pid));
	}
	cp_takeover_client_close(&d->tk); /* sockets not adopted */
	if (d->oj != NULL) {
		cp_ctl_submit(&d->ctl, &d->oj->job);
		d->oj = NULL;
	}

	urcu_qsbr_unregister_thread(); /* front end 0's reactor registers this thread itself */
	cp_server_run(&g_srv);
	d->answered = cp_server_stat_sum(&g_srv, offsetof(struct cp_fe_stats, answered));
	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	*st = ST_SERVED;
	return 0;
}

/* Undo start-up from stage @p st back, in reverse order. @return @p exit_code. */
static int
shutdown_from(struct daemon *d, enum stage st, int exit_code)
{
	switch (st) {
	case ST_SERVED:
		cp_store_close(&d->store); /* its watch thread submits control jobs: first */
		cp_ctl_stop(&d->ctl);
		cp_takeover_offer_close(&g_offer, true);
		/* fall through */
	case ST_LISTENING:
		cp_metrics_http_stop(&g_metrics);
		/* fall through */
	case ST_WORKERS:
		dp_dataplane_stop(d->dp);
		/* fall through */
	case ST_CONTROL:
		cp_takeover_client_close(&d->tk); /* a failed start: the old process serves on */
		free(d->oj);
		cp_store_close(&d->store);
		cp_server_destroy(&g_srv);
		cp_alog_stop(); /* after every call is freed: no hook runs any more */
		grpc_shutdown_blocking();
		/* fall through */
	case ST_DP:
		cp_log(CP_LOG_INFO, "stopped", CP_LF_U64("answered", d->answered));
		dp_dataplane_destroy(d->dp);
		d->dp = NULL;
		urcu_qsbr_unregister_thread();
		/* fall through */
	case ST_DP_EARLY:
		dp_dataplane_destroy(d->dp);
		/* fall through */
	case ST_EAL:
		rte_eal_cleanup();
		/* fall through */
	case ST_CONFIG:
		cp_config_free(&d->cfg);
	}
	return exit_code;
}

int
main(int argc, char **argv)
{
	static struct daemon d = {.tk = {.conn = -1}, .frontends = 1};
	enum stage st = ST_CONFIG;
	int rc;

	/* Block the shutdown signals before any thread exists (EAL, gRPC, ours), so only the
	 * signal thread receives them, synchronously, with sigwait(). */
	sigemptyset(&g_sigs);
	sigaddset(&g_sigs, SIGINT);
	sigaddset(&g_sigs, SIGTERM);
	sigaddset(&g_sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &g_sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	tune_malloc();
	raise_fd_limit();
	/* The test-only node types (test_delay) exist when COREPIPE_TEST_NODES is set at start:
	 * before any pipeline is compiled (--check-config too) and before any thread exists. */
	if (getenv("COREPIPE_TEST_NODES") != NULL)
		dp_node_table_enable_test();

	cp_config_init(&d.cfg);
	rc = load_config(&d, argc, argv);
	if (rc >= 0)
		return shutdown_from(&d, st, rc);
	rc = start_eal(&d, argv[0], &st);
	if (rc == 0)
		rc = start_dataplane(&d, &st);
	if (rc == 0)
		rc = start_control(&d, &st);
	if (rc == 0)
		rc = serve(&d, &st);
	return shutdown_from(&d, st, rc);
}

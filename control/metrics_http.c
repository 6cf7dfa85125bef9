/*
 * /metrics, /healthz and /readyz over libmicrohttpd (see metrics_http.h).
 */
#include "control/metrics_http.h"

#include "control/access_log.h"
#include "control/counters.h"
#include "control/frontend.h"
#include "control/log.h"
#include "control/procstat.h"
#include "control/rpc_stats.h"
#include "control/store.h"
#include "control/version.h"
#include "dataplane/stat.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <rte_version.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- A growing text buffer ---------------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	int oom;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = (o->cap + (size_t)n + 1) * 2;
		char *q = realloc(o->p, cap);

		if (q == NULL) {
			o->oom = 1;
			return;
		}
		o->p = q;
		o->cap = cap;
	}
}

static void
help(struct out *o, const char *name, const char *type, const char *text)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A family of one unlabelled sample. */
static void
scalar(struct out *o, const char *name, const char *type, const char *text, uint64_t v)
{
	help(o, name, type, text);
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void
scalar_f(struct out *o, const char *name, const char *type, const char *text, double v)
{
	help(o, name, type, text);
	put(o, "%s %.2f\n", name, v);
}

/* ---- Pipeline names by id ------------------------------------------------------------------ */

struct names {
	char name[DP_REGISTRY_MAX + 1][DP_NAME_MAX];
};

static void
name_cb(uint32_t id, const char *name, void *arg)
{
	struct names *n = arg;

	snprintf(n->name[id], DP_NAME_MAX, "%s", name);
}

/* Label value for pipeline id @p id: its name, "_inline" for 0, "_deleted" when gone. */
static const char *
pipe_label(const struct names *n, uint32_t id)
{
	if (id == 0)
		return "_inline";
	return n->name[id][0] ? n->name[id] : "_deleted";
}

static void
histogram(struct out *o, const char *name, const char *label, const struct dp_met_row *r,
	  double unit_s)
{
	uint64_t cum = 0;

	for (unsigned b = 0; b < DP_MET_BOUNDS; b++) {
		cum += r->bucket[b];
		put(o, "%s_bucket{pipeline=\"%s\",le=\"%g\"} %llu\n", name, label,
		    dp_met_bounds_s[b], (unsigned long long)cum);
	}
	cum += r->bucket[DP_MET_BOUNDS];
	put(o, "%s_bucket{pipeline=\"%s\",le=\"+Inf\"} %llu\n", name, label,
	    (unsigned long long)cum);
	put(o, "%s_sum{pipeline=\"%s\"} %.9f\n", name, label, (double)r->sum_cycles * unit_s);
	put(o, "%s_count{pipeline=\"%s\"} %llu\n", name, label, (unsigned long long)cum);
}

/* process_*: the names, types and units of the official client libraries' process collector. */
static void
render_process(struct out *o)
{
	struct cp_procstat ps;

	cp_procstat_read(&ps);
	scalar_f(o, "process_cpu_seconds_total", "counter",
		 "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
	scalar(o, "process_open_fds", "gauge", "Number of open file descriptors.", ps.open_fds);
	scalar(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
	       ps.max_fds);
	scalar(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
	       ps.virtual_bytes);
	scalar(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	       ps.resident_bytes);
	scalar_f(o, "process_start_time_seconds", "gauge",
		 "Start time of the process since unix epoch in seconds.", ps.start_time_seconds);
}

/* grpc_code values as the gRPC Prometheus interceptors (and their dashboards) spell them. */
static const char *
grpc_code_label(grpc_status_code code)
{
	static const char *const names[] = {
	    "OK",
	    "Canceled",
	    "Unknown",
	    "InvalidArgument",
	    "DeadlineExceeded",
	    "NotFound",
	    "AlreadyExists",
	    "PermissionDenied",
	    "ResourceExhausted",
	    "FailedPrecondition",
	    "Aborted",
	    "OutOfRange",
	    "Unimplemented",
	    "Internal",
	    "Unavailable",
	    "DataLoss",
	    "Unauthenticated",
	};

	return (unsigned)code < sizeof(names) / sizeof(names[0]) ? names[code] : "Unknown";
}

static void
rpc_line(const char *service, const char *method, const char *type, grpc_status_code code,
	 uint64_t count, void *arg)
{
	put(arg,
	    "grpc_server_handled_total{grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\","
	    "grpc_code=\"%s\"} %llu\n",
	    type, service, method, grpc_code_label(code), (unsigned long long)count);
}

/* Every gRPC call answered (control/rpc_stats.h); each registered method shows at zero. */
static void
render_rpc(struct out *o)
{
	const struct cp_method *const tables[] = {cp_pipeline_methods, cp_admin_methods,
						  cp_health_methods, cp_reflection_methods};

	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (const struct cp_method *m = tables[t]; m->path != NULL; m++)
			cp_rpc_stats_register(m->path, m->kind != CP_UNARY);
	help(o, "grpc_server_handled_total", "counter",
	     "gRPC calls answered by the server, by service, method and status code (every "
	     "call: Pipeline, Admin and Health, validation and authentication errors included).");
	cp_rpc_stats_for_each(rpc_line, o);
}

static const char *
stat_type_name(enum dp_stat_type t)
{
	return t == DP_STAT_GAUGE ? "gauge" : "counter";
}

/* Rows [@p r, end) of table @p t (@p n rows) name the same family; @return end. */
static unsigned
family_end(const struct dp_stat_desc *t, unsigned n, unsigned r)
{
	unsigned e = r + 1;

	while (e < n && t[r].metric != NULL && t[e].metric != NULL &&
	       strcmp(t[e].metric, t[r].metric) == 0)
		e++;
	return e;
}

/* The lines of rows [@p r, @p e) of a stats table (one family) for stats struct @p s. Labels:
 * @p labels (the instance's: a port, a worker; "" for none), the row's own, the element's. A
 * DP_STAT_TSC row prints seconds, @p tsc_s a cycle. */
static void
stat_lines(struct out *o, const struct dp_stat_desc *t, unsigned r, unsigned e, const void *s,
	   const char *labels, double tsc_s)
{
	for (; r < e; r++) {
		for (unsigned k = 0; k < t[r].n; k++) {
			uint64_t v = *dp_stat_at(&t[r], s, k);
			char sep = '{';

			if ((t[r].flags & DP_STAT_SPARSE) && k != 0 && v == 0)
				continue;
			put(o, "%s", t[r].metric);
			if (labels[0] != '\0') {
				put(o, "%c%s", sep, labels);
				sep = ',';
			}
			if (t[r].label != NULL) {
				put(o, "%c%s", sep, t[r].label);
				sep = ',';
			}
			if (t[r].key != NULL) {
				put(o, "%c%s=\"%s\"", sep, t[r].key, t[r].key_name(k));
				sep = ',';
			}
			if (sep == ',')
				put(o, "}");
			if (t[r].flags & DP_STAT_TSC)
				put(o, " %.9f\n", (double)v * tsc_s);
			else
				put(o, " %llu\n", (unsigned long long)v);
		}
	}
}

/* HELP and TYPE of the family whose first row is @p d. */
static void
family_help(struct out *o, const struct dp_stat_desc *d)
{
	help(o, d->metric, stat_type_name(d->type), d->help);
}

/* The UDP front end: the link, every family of dp_udp_stats_desc per port (summed over
 * workers) or per worker queue, and the device's own counters. Each family's lines stay
 * together, as the text format wants; the sums are read once per scrape. */
static void
render_udp(struct out *o, const struct dp_udp *u)
{
	static const char *const dev_names[] = {"imissed", "ierrors", "oerrors", "rx_nombuf"};
	const struct dp_stat_desc *t = dp_udp_stats_desc;
	struct dp_udp_stats st[DP_PORTS_MAX];
	uint64_t dev[DP_PORTS_MAX][4];
	const char *pn[DP_PORTS_MAX];
	char lab[DP_PORT_NAME_MAX + 32];
	/* Read once: every loop below covers the same ports (fixed at set-up). */
	const unsigned n_ports = u->n_ports < DP_PORTS_MAX ? u->n_ports : DP_PORTS_MAX;

	for (unsigned i = 0; i < n_ports; i++) {
		struct dp_port_dev_stats d;

		pn[i] = u->port[i].conf.name;
		dp_udp_stats_read(u, i, &st[i]);
		dp_port_dev_stats(&u->port[i], &d);
		dev[i][0] = d.imissed;
		dev[i][1] = d.ierrors;
		dev[i][2] = d.oerrors;
		dev[i][3] = d.rx_nombuf;
	}
	help(o, "corepipe_udp_link_up", "gauge", "1 when the port's link is up.");
	for (unsigned i = 0; i < n_ports; i++) {
		struct dp_port_link l;

		dp_port_link(&u->port[i], &l);
		put(o, "corepipe_udp_link_up{port=\"%s\"} %d\n", pn[i], l.up);
	}
	for (unsigned r = 0, e; r < dp_udp_stats_n_desc; r = e) {
		e = family_end(t, dp_udp_stats_n_desc, r);
		if (t[r].metric == NULL)
			continue;
		family_help(o, &t[r]);
		for (unsigned i = 0; i < n_ports; i++) {
			if (!(t[r].flags & DP_STAT_PER_WORKER)) {
				snprintf(lab, sizeof(lab), "port=\"%s\"", pn[i]);
				stat_lines(o, t, r, e, &st[i], lab, 0);
				continue;
			}
			for (unsigned w = 0; w < u->n_workers; w++) {
				struct dp_udp_stats s;

				dp_udp_stats_read_one(u, w, i, &s);
				snprintf(lab, sizeof(lab), "port=\"%s\",worker=\"%u\"", pn[i], w);
				stat_lines(o, t, r, e, &s, lab, 0);
			}
		}
	}
	help(o, "corepipe_udp_device_errors_total", "counter",
	     "The device's own counters: imissed (RX ring full), ierrors, oerrors, rx_nombuf.");
	for (unsigned i = 0; i < n_ports; i++)
		for (unsigned k = 0; k < 4; k++)
			put(o,
			    "corepipe_udp_device_errors_total{port=\"%s\",counter=\"%s\"} %llu\n",
			    pn[i], dev_names[k], (unsigned long long)dev[i][k]);
}

static void
render_http(struct out *o, const struct cp_http_guard *g)
{
	help(o, "corepipe_http_connections_refused_total", "counter",
	     "Connections to this endpoint closed at once: total limit, per-peer limit, or only "
	     "the reserve for new peers left.");
	put(o, "corepipe_http_connections_refused_total{reason=\"total\"} %llu\n",
	    (unsigned long long)g->refused[CP_HTTP_REFUSED_TOTAL]);
	put(o, "corepipe_http_connections_refused_total{reason=\"peer\"} %llu\n",
	    (unsigned long long)g->refused[CP_HTTP_REFUSED_PEER]);
	put(o, "corepipe_http_connections_refused_total{reason=\"reserve\"} %llu\n",
	    (unsigned long long)g->refused[CP_HTTP_REFUSED_RESERVE]);
	help(o, "corepipe_http_deadline_closed_total", "counter",
	     "Connections to this endpoint closed at a deadline: request headers not complete in "
	     "time, or the connection open too long.");
	put(o, "corepipe_http_deadline_closed_total{deadline=\"headers\"} %llu\n",
	    (unsigned long long)g->expired_headers);
	put(o, "corepipe_http_deadline_closed_total{deadline=\"request\"} %llu\n",
	    (unsigned long long)g->expired_request);
	scalar(o, "corepipe_http_connections", "gauge", "Connections open to this endpoint.", g->n);
}

/* ---- The scrape, family by family ----------------------------------------------------------- */

/* What one scrape reads once and several families use. */
struct scrape {
	struct names *names;	 /* pipeline names by id */
	struct dp_met_row *rows; /* by pipeline id: the workers' runs, summed */
	struct dp_met_row *e2e;	 /* by pipeline id: the front ends' answers, summed */
	struct dp_worker_stats ws[DP_WORKERS_MAX];
	struct cp_fe_stats fe; /* summed over front ends */
	double tsc_s;	       /* one TSC cycle in seconds */
};

static void
render_build(struct out *o)
{
	help(o, "corepipe_build_info", "gauge", "Build information; the value is always 1.");
	put(o,
	    "corepipe_build_info{version=\"%s\",revision=\"%s\",dpdk=\"%s\",grpc_core=\"%s\"} 1\n",
	    cp_version(), cp_revision(), rte_version(), grpc_version_string());
}

/* Per pipeline: requests by code, the two duration histograms, bytes in and out. */
static void
render_pipelines(struct out *o, const struct scrape *sc)
{
	const struct dp_met_row *rows = sc->rows, *e2e = sc->e2e;

	help(o, "corepipe_requests_total", "counter",
	     "Requests (unary calls and stream frames) completed by the workers, by pipeline and "
	     "status code.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		for (unsigned k = 0; k < DP_STATUS_MAX; k++)
			if (rows[id].by_code[k] != 0)
				put(o,
				    "corepipe_requests_total{pipeline=\"%s\",code=\"%s\"} %llu\n",
				    pipe_label(sc->names, id), dp_status_name((int)k),
				    (unsigned long long)rows[id].by_code[k]);
	help(o, "corepipe_request_duration_seconds", "histogram",
	     "Data-plane time: a worker running the pipeline's nodes on one request or frame.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		if (rows[id].count != 0)
			histogram(o, "corepipe_request_duration_seconds", pipe_label(sc->names, id),
				  &rows[id], sc->tsc_s);
	help(o, "corepipe_server_duration_seconds", "histogram",
	     "Server time: call arrival (unary) or frame submit (streams) to the answer handed to "
	     "gRPC.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		if (e2e[id].count != 0)
			histogram(o, "corepipe_server_duration_seconds", pipe_label(sc->names, id),
				  &e2e[id], 1e-9);
	help(o, "corepipe_processed_bytes_total", "counter",
	     "Bytes a pipeline took in (every run) and gave out (successful runs), unary, stream "
	     "and UDP requests alike.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++) {
		if (rows[id].count == 0 && rows[id].bytes_in == 0)
			continue;
		put(o, "corepipe_processed_bytes_total{pipeline=\"%s\",direction=\"in\"} %llu\n",
		    pipe_label(sc->names, id), (unsigned long long)rows[id].bytes_in);
		put(o, "corepipe_processed_bytes_total{pipeline=\"%s\",direction=\"out\"} %llu\n",
		    pipe_label(sc->names, id), (unsigned long long)rows[id].bytes_out);
	}
}

/* Per worker: queue depth, busy ratio, the counters of cp_worker_stats_desc, shedding, stream
 * slots; and the requests inside the dataplane. */
static void
render_workers(struct out *o, const struct dp_dataplane *dp, const struct scrape *sc)
{
	const struct dp_stat_desc *t = cp_worker_stats_desc;
	uint64_t in_flight = 0;
	char lab[32];

	help(o, "corepipe_queue_depth", "gauge",
	     "Requests waiting in a worker's queues (handed over by front ends).");
	for (unsigned w = 0; w < dp->n_workers; w++) {
		unsigned q = 0;

		for (unsigned k = 0; k < dp->workers[w]->n_links; k++)
			q += rte_ring_count(dp->workers[w]->link[k]->in);
		put(o, "corepipe_queue_depth{worker=\"%u\"} %u\n", w, q);
	}
	help(o, "corepipe_worker_busy_ratio", "gauge",
	     "Deprecated (averaged since start, cannot alert): use "
	     "rate(corepipe_worker_busy_seconds_total[1m]). Busy cycles / all cycles since start.");
	for (unsigned w = 0; w < dp->n_workers; w++) {
		const struct dp_reactor_stats *r = &sc->ws[w].r;

		in_flight += dp_worker_in_flight(dp->workers[w]);
		put(o, "corepipe_worker_busy_ratio{worker=\"%u\"} %.6f\n", w,
		    r->total_cycles ? (double)r->busy_cycles / (double)r->total_cycles : 0.0);
	}
	for (unsigned r = 0, e; r < cp_worker_stats_n_desc; r = e) {
		e = family_end(t, cp_worker_stats_n_desc, r);
		if (t[r].metric == NULL)
			continue;
		family_help(o, &t[r]);
		for (unsigned w = 0; w < dp->n_workers; w++) {
			snprintf(lab, sizeof(lab), "worker=\"%u\"", w);
			stat_lines(o, t, r, e, &sc->ws[w], lab, sc->tsc_s);
		}
	}
	help(o, "corepipe_load_shedding_active", "gauge",
	     "1 while a worker sheds new unary work (limits.shed_*).");
	for (unsigned w = 0; w < dp->n_workers; w++)
		put(o, "corepipe_load_shedding_active{worker=\"%u\"} %d\n", w,
		    atomic_load_explicit(&dp->workers[w]->lc.shedding, memory_order_relaxed) ? 1
											     : 0);
	help(o, "corepipe_streams_open", "gauge",
	     "Stream slots in use on a worker (ExecuteStream streams and stateful unary calls).");
	for (unsigned w = 0; w < dp->n_workers; w++)
		put(o, "corepipe_streams_open{worker=\"%u\"} %u\n", w, dp_stream_count(dp, w));
	scalar(o, "corepipe_inflight", "gauge", "Requests inside the dataplane.", in_flight);
}

/* corepipe_rejected_total's lines for what the workers skipped: expired or cancelled before
 * they ran, and running work they stopped for the same reasons between quanta of the bulk lane
 * (worker.h). */
static void
render_worker_skips(struct out *o, unsigned n_workers, const struct scrape *sc)
{
	uint64_t deadline = 0, cancelled = 0, stopped_deadline = 0, stopped_cancel = 0;

	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++) {
		deadline += sc->rows[id].by_code[DP_DEADLINE_EXCEEDED];
		cancelled += sc->rows[id].by_code[DP_CANCELLED];
	}
	for (unsigned w = 0; w < n_workers; w++) {
		stopped_deadline += sc->ws[w].stopped_deadline;
		stopped_cancel += sc->ws[w].stopped_cancel;
	}
	put(o, "corepipe_rejected_total{reason=\"deadline\"} %llu\n",
	    (unsigned long long)(deadline - stopped_deadline));
	put(o, "corepipe_rejected_total{reason=\"cancelled\"} %llu\n",
	    (unsigned long long)(cancelled - stopped_cancel));
	put(o, "corepipe_rejected_total{reason=\"deadline_running\"} %llu\n",
	    (unsigned long long)stopped_deadline);
	put(o, "corepipe_rejected_total{reason=\"cancelled_running\"} %llu\n",
	    (unsigned long long)stopped_cancel);
}

/* The front ends' counters (cp_fe_stats_desc, summed) and the live memory budget. */
static void
render_frontends(struct out *o, struct cp_server *srv, const struct scrape *sc)
{
	const struct dp_stat_desc *t = cp_fe_stats_desc;
	uint64_t budget;

	for (unsigned r = 0, e; r < cp_fe_stats_n_desc; r = e) {
		e = family_end(t, cp_fe_stats_n_desc, r);
		if (t[r].metric == NULL)
			continue;
		family_help(o, &t[r]);
		stat_lines(o, t, r, e, &sc->fe, "", 0);
		if (t[r].offset == offsetof(struct cp_fe_stats, rejected))
			render_worker_skips(o, srv->dp->n_workers, sc);
	}
	pthread_mutex_lock(&srv->live_lock);
	budget = srv->live->memory_budget;
	pthread_mutex_unlock(&srv->live_lock);
	scalar(o, "corepipe_memory_budget_bytes", "gauge",
	       "limits.memory_budget_mb in bytes (0: no budget).", budget);
}

static void
render_access_log(struct out *o)
{
	uint64_t written, dropped;

	cp_alog_counts(&written, &dropped);
	scalar(o, "corepipe_access_log_lines_total", "counter",
	       "Access log lines written (logging.access_log).", written);
	scalar(o, "corepipe_access_log_dropped_total", "counter",
	       "Access log records dropped because the log's ring was full (stderr slower than "
	       "the calls).",
	       dropped);
}

/* gRPC connections: open, refused on accept (by reason), closed by the server. */
static void
render_connections(struct out *o, const struct cp_server *srv)
{
	uint64_t open, refused, lim = 0, peer = 0, fds = 0, killed = 0;

	cp_server_connections(srv, &open, &refused);
	scalar(o, "corepipe_grpc_connections", "gauge",
	       "Open gRPC client connections, on every listener (TLS included).", open);
	help(o, "corepipe_grpc_connections_refused_total", "counter",
	     "Connections closed on accept, by reason: server.max_connections (limit), "
	     "server.max_connections_per_peer (peer), out of file descriptors (fds).");
	for (unsigned i = 0; i < srv->n_listeners; i++) {
		const struct cp_listener *l = &srv->listener[i];

		lim += atomic_load_explicit(&l->refused, memory_order_relaxed);
		peer += atomic_load_explicit(&l->refused_peer, memory_order_relaxed);
		fds += atomic_load_explicit(&l->emfile, memory_order_relaxed);
		killed += atomic_load_explicit(&l->killed, memory_order_relaxed);
	}
	(void)refused; /* lim + peer + fds */
	put(o, "corepipe_grpc_connections_refused_total{reason=\"limit\"} %llu\n",
	    (unsigned long long)lim);
	put(o, "corepipe_grpc_connections_refused_total{reason=\"peer\"} %llu\n",
	    (unsigned long long)peer);
	put(o, "corepipe_grpc_connections_refused_total{reason=\"fds\"} %llu\n",
	    (unsigned long long)fds);
	help(o, "corepipe_grpc_connections_closed_total", "counter",
	     "Open connections the server closed, by reason: cancel_flood (the client cancelled "
	     "more than server.max_cancels_per_second calls in a second).");
	put(o, "corepipe_grpc_connections_closed_total{reason=\"cancel_flood\"} %llu\n",
	    (unsigned long long)killed);
}

/* Configuration reloads, and the registry store's writes when it persists. */
static void
render_reloads(struct out *o, const struct cp_server *srv)
{
	help(o, "corepipe_config_reloads_total", "counter",
	     "Configuration reloads (SIGHUP, Admin/ReloadConfig) by result.");
	put(o, "corepipe_config_reloads_total{result=\"success\"} %llu\n",
	    (unsigned long long)dp_stat_load(&srv->reload.ok));
	put(o, "corepipe_config_reloads_total{result=\"failure\"} %llu\n",
	    (unsigned long long)dp_stat_load(&srv->reload.failed));
	help(o, "corepipe_config_last_reload_success_timestamp_seconds", "gauge",
	     "Unix time of the last successful reload (0: none since start).");
	put(o, "corepipe_config_last_reload_success_timestamp_seconds %.3f\n",
	    (double)dp_stat_load(&srv->reload.last_success_unix_ns) / 1e9);
	if (srv->store != NULL && srv->store->kind != CP_STORE_MEMORY) {
		help(o, "corepipe_registry_store_writes_total", "counter",
		     "State writes of the registry store (registry.store) by result; an error "
		     "refused the Admin change.");
		put(o, "corepipe_registry_store_writes_total{result=\"ok\"} %llu\n",
		    (unsigned long long)dp_stat_load(&srv->store->writes));
		put(o, "corepipe_registry_store_writes_total{result=\"error\"} %llu\n",
		    (unsigned long long)dp_stat_load(&srv->store->write_errors));
	}
}

static void
render_pools(struct out *o, const struct dp_dataplane *dp)
{
	help(o, "corepipe_pool_in_use", "gauge",
	     "Buffers taken from a pool (payload size classes, descriptors).");
	for (unsigned i = 0; i < dp->pools->n_classes; i++)
		put(o, "corepipe_pool_in_use{pool=\"buf_%u\"} %u\n", dp->pools->size[i],
		    dp_pools_in_use(dp->pools, i));
	put(o, "corepipe_pool_in_use{pool=\"descriptors\"} %u\n",
	    rte_mempool_in_use_count(dp->req_pool));
	help(o, "corepipe_pool_capacity", "gauge", "Buffers in a pool.");
	for (unsigned i = 0; i < dp->pools->n_classes; i++)
		put(o, "corepipe_pool_capacity{pool=\"buf_%u\"} %u\n", dp->pools->size[i],
		    dp->pools->count[i]);
	put(o, "corepipe_pool_capacity{pool=\"descriptors\"} %u\n", dp->req_pool->size);
}

/* Read what several families use, once: names, per-pipeline rows, workers, front ends. */
static int
scrape_read(struct scrape *sc, struct cp_server *srv, const struct dp_dataplane *dp)
{
	sc->names = calloc(1, sizeof(*sc->names));
	sc->rows = calloc(DP_REGISTRY_MAX + 1, sizeof(*sc->rows));
	sc->e2e = calloc(DP_REGISTRY_MAX + 1, sizeof(*sc->e2e));
	if (sc->names == NULL || sc->rows == NULL || sc->e2e == NULL)
		return -ENOMEM;
	sc->tsc_s = 1.0 / (double)dp->tsc_hz;
	dp_registry_names(dp->reg, name_cb, sc->names);
	for (unsigned w = 0; w < dp->n_workers; w++)
		for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
			dp_metrics_read_row(dp->workers[w]->lc.met, id, &sc->rows[id]);
	for (unsigned f = 0; f < srv->n_fe; f++)
		for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
			dp_metrics_read_row(srv->fe[f]->e2e, id, &sc->e2e[id]);
	for (unsigned w = 0; w < dp->n_workers; w++)
		dp_worker_stats_read(dp->workers[w], &sc->ws[w]);
	cp_fe_stats_sum(srv, &sc->fe);
	return 0;
}

static void
scrape_free(struct scrape *sc)
{
	free(sc->names);
	free(sc->rows);
	free(sc->e2e);
	free(sc);
}

char *
cp_metrics_render(struct cp_server *srv, struct dp_dataplane *dp, const struct cp_http_guard *http,
		  size_t *len)
{
	struct scrape *sc = calloc(1, sizeof(*sc));
	struct out o = {0};

	if (sc == NULL)
		return NULL;
	if (scrape_read(sc, srv, dp) != 0) {
		scrape_free(sc);
		return NULL;
	}
	render_build(&o);
	render_process(&o);
	render_pipelines(&o, sc);
	render_workers(&o, dp, sc);
	render_frontends(&o, srv, sc);
	render_rpc(&o);
	render_access_log(&o);
	render_connections(&o, srv);
	render_reloads(&o, srv);
	render_pools(&o, dp);
	if (dp->udp != NULL)
		render_udp(&o, dp->udp);
	if (http != NULL)
		render_http(&o, http);
	scrape_free(sc);
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned code, const char *type, char *body, size_t len,
      enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	/* One request per connection: its deadlines (http_guard.h) cover all it does. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_len, void **con_cls)
{
	struct cp_metrics_http *m = cls;
	static const char text[] = "text/plain; charset=utf-8";
	const union MHD_ConnectionInfo *ci;

	(void)version;
	(void)upload;
	(void)con_cls;
	/* The headers are complete: only the connection's total deadline applies now. */
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL)
		cp_http_guard_headers_done(m->guard, ci->socket_context);
	if (*upload_len != 0)
		return MHD_NO;
	switch (cp_http_route(method, url)) {
	case CP_HTTP_BAD_METHOD:
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, "GET only\n", 9,
			     MHD_RESPMEM_PERSISTENT);
	case CP_HTTP_HEALTHZ:
		return reply(conn, MHD_HTTP_OK, text, "ok\n", 3, MHD_RESPMEM_PERSISTENT);
	case CP_HTTP_READYZ: {
		bool ready = dp_dataplane_running(m->dp) &&
			     atomic_load_explicit(&m->srv->serving, memory_order_relaxed);

		return ready ? reply(conn, MHD_HTTP_OK, text, "ready\n", 6, MHD_RESPMEM_PERSISTENT)
			     : reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text,
				     "not ready (starting or draining)\n", 33,
				     MHD_RESPMEM_PERSISTENT);
	}
	case CP_HTTP_METRICS: {
		size_t len = 0;
		char *body;
		bool denied = false;

		pthread_mutex_lock(&m->srv->live_lock);
		if (m->srv->live->auth.enabled && m->srv->live->auth.metrics) {
			const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								    MHD_HTTP_HEADER_AUTHORIZATION);
			const char *who;

			denied = cp_auth_check(&m->srv->live->auth, v, v ? strlen(v) : 0,
					       CP_PERM_EXECUTE, &who) != CP_AUTH_OK;
		}
		pthread_mutex_unlock(&m->srv->live_lock);
		if (denied) {
			dp_stat_add(&m->denied, 1);
			return reply(conn, MHD_HTTP_UNAUTHORIZED, text,
				     "missing or invalid bearer token\n", 32,
				     MHD_RESPMEM_PERSISTENT);
		}
		body = cp_metrics_render(m->srv, m->dp, m->guard, &len);
		__atomic_store_n(&m->scrapes, m->scrapes + 1, __ATOMIC_RELAXED);
		if (body == NULL)
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "out of memory\n",
				     14, MHD_RESPMEM_PERSISTENT);
		return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
			     len, MHD_RESPMEM_MUST_FREE);
	}
	default:
		return reply(conn, MHD_HTTP_NOT_FOUND, text,
			     "not found (/metrics, /healthz, /readyz)\n", 40,
			     MHD_RESPMEM_PERSISTENT);
	}
}

/* Admission, before libmicrohttpd creates the connection (its accept policy callback). */
static enum MHD_Result
admit(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct cp_metrics_http *m = cls;
	struct cp_http_peer peer;

	cp_http_peer_of(addr, addrlen, &peer);
	return cp_http_guard_admit(m->guard, &peer) == CP_HTTP_ADMITTED ? MHD_YES : MHD_NO;
}

/* Connections start and end: tracked for the per-peer counts and the deadlines. */
static void
notify(void *cls, struct MHD_Connection *conn, void **socket_context,
       enum MHD_ConnectionNotificationCode toe)
{
	struct cp_metrics_http *m = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *a =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const union MHD_ConnectionInfo *f =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct cp_http_peer peer;

		cp_http_peer_of(a ? a->client_addr : NULL, sizeof(struct sockaddr_in6), &peer);
		*socket_context =
		    cp_http_guard_add(m->guard, &peer, f ? f->connect_fd : -1, now_ns());
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		cp_http_guard_remove(m->guard, *socket_context);
		*socket_context = NULL;
	}
}

/* The path as sent: no percent-decoding, so "/metrics%00" is not "/metrics" (404). */
static size_t
no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* A connection past its deadline: shut its socket down; libmicrohttpd then sees the end, closes
 * it and tells notify(). Same thread as MHD_run(), between its calls: the fd is still open. */
static void
close_expired(int fd, void *arg)
{
	(void)arg;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void *
http_main(void *arg)
{
	struct cp_metrics_http *m = arg;
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd pfd[2] = {{.fd = di ? di->epoll_fd : -1, .events = POLLIN},
				{.fd = m->wake_fd, .events = POLLIN}};

	pthread_setname_np(pthread_self(), "cp-http");
	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
		uint64_t now, next;
		int wait_ms = -1;

		MHD_run(m->d);
		now = now_ns();
		next = cp_http_guard_expire(m->guard, now, close_expired, NULL);
		if (next != UINT64_MAX)
			wait_ms = (int)((next - now) / 1000000u) + 1;
		if (MHD_get_timeout(m->d, &mhd_ms) == MHD_YES &&
		    (wait_ms < 0 || mhd_ms < (MHD_UNSIGNED_LONG_LONG)wait_ms))
			wait_ms = (int)(mhd_ms < 60000 ? mhd_ms : 60000);
		poll(pfd, 2, wait_ms);
	}
	return NULL;
}

int
cp_metrics_http_start(struct cp_metrics_http *m, const char *addr, const struct cp_http_limits *lim,
		      struct cp_server *srv, struct dp_dataplane *dp)
{
	return cp_metrics_http_adopt(m, addr, -1, lim, srv, dp);
}

int
cp_metrics_http_adopt(struct cp_metrics_http *m, const char *addr, int fd,
		      const struct cp_http_limits *lim, struct cp_server *srv,
		      struct dp_dataplane *dp)
{
	struct cp_http_limits def;

	memset(m, 0, sizeof(*m));
	m->wake_fd = -1;
	m->srv = srv;
	m->dp = dp;
	if (lim == NULL) {
		cp_http_limits_default(&def);
		lim = &def;
	}
	m->guard = malloc(sizeof(*m->guard));
	if (m->guard == NULL) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	cp_http_guard_init(m->guard, lim);
	if (fd >= 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		/* A predecessor's socket (control/takeover.h), bound and listening. */
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			m->port =
			    ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	} else {
		fd = cp_tcp_listen(addr, 64, &m->port);
	}
	if (fd < 0) {
		free(m->guard);
		m->guard = NULL;
		return fd == -EINVAL ? -EINVAL : -EADDRINUSE;
	}
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* External epoll mode: our thread runs it (http_main) and enforces the deadlines. The
	 * inactivity timeout stays as a backstop; the guard's deadlines are the real bound. */
	m->d = MHD_start_daemon(
	    MHD_USE_EPOLL, 0, admit, m, handle, m, MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)m->guard->lim.max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_NOTIFY_CONNECTION, notify, m,
	    MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, m, MHD_OPTION_END);
	if (m->d == NULL || m->wake_fd < 0 || pthread_create(&m->thread, NULL, http_main, m) != 0) {
		if (m->d != NULL)
			MHD_stop_daemon(m->d);
		m->d = NULL;
		close(fd);
		if (m->wake_fd >= 0)
			close(m->wake_fd);
		free(m->guard);
		m->guard = NULL;
		return -EADDRINUSE;
	}
	m->fd = fd;
	m->started = true;
	return 0;
}

void
cp_metrics_http_stop(struct cp_metrics_http *m)
{
	uint64_t one = 1;
	int fd;

	if (m->d == NULL)
		return;
	atomic_store(&m->stop, true);
	if (write(m->wake_fd, &one, sizeof(one)) < 0) {
		/* An eventfd write fails only when the counter would overflow: already woken. */
	}
	pthread_join(m->thread, NULL);
	/* The listening socket was ours: quiesce first, then stop and close it. */
	fd = (int)MHD_quiesce_daemon(m->d);
	MHD_stop_daemon(m->d);
	if (fd >= 0)
		close(fd);
	close(m->wake_fd);
	free(m->guard);
	m->guard = NULL;
	m->d = NULL;
}

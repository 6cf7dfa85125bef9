/*
 * /metrics, /healthz and /readyz over libmicrohttpd (see metrics_http.h).
 */
#include "control/metrics_http.h"

#include "control/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <rte_version.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef COREPIPE_VERSION
#define COREPIPE_VERSION "0.3.0"
#endif

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

/* The standard process metrics of Prometheus client libraries (resident memory, CPU time, start
 * time), read from /proc/self. */
static void
process_metrics(struct out *o)
{
	long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);
	unsigned long long size = 0, rss = 0, ut = 0, st = 0, start = 0;
	struct timespec now, mono;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	f = fopen("/proc/self/stat", "r");
	if (f != NULL) {
		/* Fields 14, 15 (utime, stime) and 22 (starttime), after the ")" of the comm. */
		char buf[1024], *p = NULL;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);

		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p == NULL ||
		    sscanf(p + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
			   "%*d %*d %*d %*d %llu",
			   &ut, &st, &start) != 3)
			ut = st = start = 0;
		fclose(f);
	}
	help(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	put(o, "process_resident_memory_bytes %llu\n", rss * (unsigned long long)page);
	help(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	put(o, "process_virtual_memory_bytes %llu\n", size * (unsigned long long)page);
	help(o, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.");
	put(o, "process_cpu_seconds_total %.2f\n", (double)(ut + st) / (double)tck);
	/* starttime is in ticks since boot: boot time = now (realtime) - uptime (boottime). */
	clock_gettime(CLOCK_REALTIME, &now);
	clock_gettime(CLOCK_BOOTTIME, &mono);
	help(o, "process_start_time_seconds", "gauge",
	     "Start time of the process since the Unix epoch in seconds.");
	put(o, "process_start_time_seconds %.2f\n",
	    (double)now.tv_sec - (double)mono.tv_sec +
		((double)now.tv_nsec - (double)mono.tv_nsec) / 1e9 + (double)start / (double)tck);
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

/* The UDP front end: per port (summed over workers) and per worker queue. Each family's lines
 * stay together, as the text format wants; the counters are read once per scrape. */
static void
render_udp(struct out *o, const struct dp_udp *u)
{
	static const char *const dev_names[] = {"imissed", "ierrors", "oerrors", "rx_nombuf"};
	struct dp_udp_stats st[DP_PORTS_MAX];
	uint64_t dev[DP_PORTS_MAX][4];
	const char *pn[DP_PORTS_MAX];

	for (unsigned i = 0; i < u->n_ports; i++) {
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
	for (unsigned i = 0; i < u->n_ports; i++) {
		struct dp_port_link l;

		dp_port_link(&u->port[i], &l);
		put(o, "corepipe_udp_link_up{port=\"%s\"} %d\n", pn[i], l.up);
	}
	help(o, "corepipe_udp_packets_total", "counter",
	     "Frames taken off (rx) and handed to (tx) a port's queues, by worker.");
	for (unsigned i = 0; i < u->n_ports; i++) {
		for (unsigned w = 0; w < u->n_workers; w++) {
			struct dp_udp_stats s;

			dp_udp_stats_read_one(u, w, i, &s);
			put(o,
			    "corepipe_udp_packets_total{port=\"%s\",worker=\"%u\",dir=\"rx\"} "
			    "%llu\n",
			    pn[i], w, (unsigned long long)s.rx_pkts);
			put(o,
			    "corepipe_udp_packets_total{port=\"%s\",worker=\"%u\",dir=\"tx\"} "
			    "%llu\n",
			    pn[i], w, (unsigned long long)s.tx_pkts);
		}
	}
	help(o, "corepipe_udp_bytes_total", "counter", "Bytes of the frames counted above.");
	for (unsigned i = 0; i < u->n_ports; i++)
		put(o,
		    "corepipe_udp_bytes_total{port=\"%s\",dir=\"rx\"} %llu\n"
		    "corepipe_udp_bytes_total{port=\"%s\",dir=\"tx\"} %llu\n",
		    pn[i], (unsigned long long)st[i].rx_bytes, pn[i],
		    (unsigned long long)st[i].tx_bytes);
	help(o, "corepipe_udp_responses_total", "counter",
	     "corepipe responses sent on a port, by status code.");
	for (unsigned i = 0; i < u->n_ports; i++)
		for (unsigned k = 0; k < DP_STATUS_MAX; k++)
			if (st[i].by_code[k] != 0 || k == DP_OK)
				put(o,
				    "corepipe_udp_responses_total{port=\"%s\",code=\"%s\"} %llu\n",
				    pn[i], dp_status_name((int)k),
				    (unsigned long long)st[i].by_code[k]);
	help(o, "corepipe_udp_dropped_total", "counter",
	     "Frames dropped without an answer, by reason.");
	for (unsigned i = 0; i < u->n_ports; i++)
		for (unsigned k = 0; k < DP_UDP_DROP_MAX; k++)
			put(o, "corepipe_udp_dropped_total{port=\"%s\",reason=\"%s\"} %llu\n",
			    pn[i], dp_udp_drop_name(k), (unsigned long long)st[i].drops[k]);
	help(o, "corepipe_udp_replies_total", "counter", "ARP and ICMP echo replies sent.");
	for (unsigned i = 0; i < u->n_ports; i++)
		put(o,
		    "corepipe_udp_replies_total{port=\"%s\",kind=\"arp\"} %llu\n"
		    "corepipe_udp_replies_total{port=\"%s\",kind=\"icmp\"} %llu\n",
		    pn[i], (unsigned long long)st[i].arp_replies, pn[i],
		    (unsigned long long)st[i].icmp_replies);
	help(o, "corepipe_udp_handoff_total", "counter",
	     "Requests a queue owner handed to another worker (single-queue devices).");
	for (unsigned i = 0; i < u->n_ports; i++)
		put(o, "corepipe_udp_handoff_total{port=\"%s\"} %llu\n", pn[i],
		    (unsigned long long)st[i].handoff_out);
	help(o, "corepipe_udp_copied_total", "counter",
	     "Requests whose payload was not aligned in the frame and was copied to a buffer.");
	for (unsigned i = 0; i < u->n_ports; i++)
		put(o, "corepipe_udp_copied_total{port=\"%s\"} %llu\n", pn[i],
		    (unsigned long long)st[i].copied);
	help(o, "corepipe_udp_device_errors_total", "counter",
	     "The device's own counters: imissed (RX ring full), ierrors, oerrors, rx_nombuf.");
	for (unsigned i = 0; i < u->n_ports; i++)
		for (unsigned k = 0; k < 4; k++)
			put(o,
			    "corepipe_udp_device_errors_total{port=\"%s\",counter=\"%s\"} %llu\n",
			    pn[i], dev_names[k], (unsigned long long)dev[i][k]);
}

char *
cp_metrics_render(struct cp_server *srv, struct dp_dataplane *dp, size_t *len)
{
	struct out o = {0};
	struct names *names = calloc(1, sizeof(*names));
	struct dp_met_row *rows = calloc(DP_REGISTRY_MAX + 1, sizeof(*rows));
	struct dp_met_row *e2e = calloc(DP_REGISTRY_MAX + 1, sizeof(*e2e));
	uint64_t in_flight = 0, deadline = 0, cancelled = 0;
	double tsc_s = 1.0 / (double)dp->tsc_hz;

	if (names == NULL || rows == NULL || e2e == NULL)
		goto oom;
	dp_registry_names(dp->reg, name_cb, names);
	for (unsigned w = 0; w < dp->n_workers; w++)
		for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
			dp_metrics_read_row(dp->workers[w]->met, id, &rows[id]);
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		dp_metrics_read_row(srv->e2e, id, &e2e[id]);

	help(&o, "corepipe_build_info", "gauge", "Build information; the value is always 1.");
	put(&o, "corepipe_build_info{version=\"%s\",dpdk=\"%s\"} 1\n", COREPIPE_VERSION,
	    rte_version());

	help(&o, "corepipe_requests_total", "counter",
	     "Requests (unary calls and stream frames) completed by the workers, by pipeline and "
	     "status code.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++) {
		for (unsigned k = 0; k < DP_STATUS_MAX; k++) {
			if (rows[id].by_code[k] == 0)
				continue;
			put(&o, "corepipe_requests_total{pipeline=\"%s\",code=\"%s\"} %llu\n",
			    pipe_label(names, id), dp_status_name((int)k),
			    (unsigned long long)rows[id].by_code[k]);
			if (k == DP_DEADLINE_EXCEEDED)
				deadline += rows[id].by_code[k];
		}
	}
	help(&o, "corepipe_request_duration_seconds", "histogram",
	     "Data-plane time: a worker running the pipeline's nodes on one request or frame.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		if (rows[id].count != 0)
			histogram(&o, "corepipe_request_duration_seconds", pipe_label(names, id),
				  &rows[id], tsc_s);
	help(&o, "corepipe_server_duration_seconds", "histogram",
	     "Server time: call arrival (unary) or frame submit (streams) to the answer handed to "
	     "gRPC.");
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		if (e2e[id].count != 0)
			histogram(&o, "corepipe_server_duration_seconds", pipe_label(names, id),
				  &e2e[id], 1e-9);

	help(&o, "corepipe_queue_depth", "gauge", "Requests waiting in a worker's ingress ring.");
	for (unsigned w = 0; w < dp->n_workers; w++)
		put(&o, "corepipe_queue_depth{worker=\"%u\"} %u\n", w,
		    rte_ring_count(dp->workers[w]->ingress));
	help(&o, "corepipe_worker_busy_ratio", "gauge",
	     "Busy TSC cycles / all cycles of a worker's loop since it started.");
	for (unsigned w = 0; w < dp->n_workers; w++) {
		struct dp_worker_stats s;

		dp_worker_stats_read(dp->workers[w], &s);
		in_flight += dp_worker_in_flight(dp->workers[w]);
		put(&o, "corepipe_worker_busy_ratio{worker=\"%u\"} %.6f\n", w,
		    s.total_cycles ? (double)s.busy_cycles / (double)s.total_cycles : 0.0);
	}
	/* The same as counters, so that a reader can take the ratio over its own interval (rate
	 * of busy / rate of loop): corepipectl top does. */
	help(&o, "corepipe_worker_busy_seconds_total", "counter",
	     "Time a worker's loop spent on work (busy TSC cycles).");
	for (unsigned w = 0; w < dp->n_workers; w++) {
		struct dp_worker_stats s;

		dp_worker_stats_read(dp->workers[w], &s);
		put(&o, "corepipe_worker_busy_seconds_total{worker=\"%u\"} %.6f\n", w,
		    (double)s.busy_cycles * tsc_s);
	}
	help(&o, "corepipe_worker_loop_seconds_total", "counter",
	     "Time a worker's loop has run (all TSC cycles since it started).");
	for (unsigned w = 0; w < dp->n_workers; w++) {
		struct dp_worker_stats s;

		dp_worker_stats_read(dp->workers[w], &s);
		put(&o, "corepipe_worker_loop_seconds_total{worker=\"%u\"} %.6f\n", w,
		    (double)s.total_cycles * tsc_s);
	}
	help(&o, "corepipe_load_shedding_active", "gauge",
	     "1 while a worker sheds new unary work (limits.shed_*).");
	for (unsigned w = 0; w < dp->n_workers; w++)
		put(&o, "corepipe_load_shedding_active{worker=\"%u\"} %d\n", w,
		    __atomic_load_n(&srv->shed.w[w].active, __ATOMIC_RELAXED) ? 1 : 0);
	help(&o, "corepipe_streams_open", "gauge",
	     "Stream slots in use on a worker (ExecuteStream streams and stateful unary calls).");
	for (unsigned w = 0; w < dp->n_workers; w++)
		put(&o, "corepipe_streams_open{worker=\"%u\"} %u\n", w, dp_stream_count(dp, w));
	help(&o, "corepipe_inflight", "gauge", "Requests inside the dataplane.");
	put(&o, "corepipe_inflight %llu\n", (unsigned long long)in_flight);

	help(&o, "corepipe_rejected_total", "counter",
	     "Requests refused or skipped before a worker ran them, by reason.");
	for (unsigned k = 0; k < CP_REJECT_MAX; k++)
		put(&o, "corepipe_rejected_total{reason=\"%s\"} %llu\n",
		    cp_reject_name((enum cp_reject)k),
		    (unsigned long long)CP_STAT_LOAD(srv->rejected[k]));
	for (uint32_t id = 0; id <= DP_REGISTRY_MAX; id++)
		cancelled += rows[id].by_code[DP_CANCELLED];
	put(&o, "corepipe_rejected_total{reason=\"deadline\"} %llu\n",
	    (unsigned long long)deadline);
	put(&o, "corepipe_rejected_total{reason=\"cancelled\"} %llu\n",
	    (unsigned long long)cancelled);

	help(&o, "corepipe_grpc_connections", "gauge", "Established gRPC client connections.");
	put(&o, "corepipe_grpc_connections %ld\n",
	    srv->own_listener ? cp_listener_count_established(srv->listener.port) : 0);
	help(&o, "corepipe_grpc_connections_refused_total", "counter",
	     "Connections closed at server.max_connections.");
	put(&o, "corepipe_grpc_connections_refused_total %llu\n",
	    (unsigned long long)atomic_load(&srv->listener.refused));
	help(&o, "corepipe_grpc_streams_active", "gauge",
	     "gRPC calls (HTTP/2 streams) in progress on the server.");
	put(&o, "corepipe_grpc_streams_active %ld\n", CP_STAT_LOAD(srv->live_calls));

	help(&o, "corepipe_auth_failures_total", "counter",
	     "Calls refused by bearer-token authentication, by reason.");
	put(&o, "corepipe_auth_failures_total{reason=\"unauthenticated\"} %llu\n",
	    (unsigned long long)CP_STAT_LOAD(srv->auth_failures[0]));
	put(&o, "corepipe_auth_failures_total{reason=\"permission_denied\"} %llu\n",
	    (unsigned long long)CP_STAT_LOAD(srv->auth_failures[1]));
	help(&o, "corepipe_config_reloads_total", "counter",
	     "Configuration reloads (SIGHUP, Admin/ReloadConfig) by result.");
	put(&o, "corepipe_config_reloads_total{result=\"success\"} %llu\n",
	    (unsigned long long)CP_STAT_LOAD(srv->reload.ok));
	put(&o, "corepipe_config_reloads_total{result=\"failure\"} %llu\n",
	    (unsigned long long)CP_STAT_LOAD(srv->reload.failed));
	help(&o, "corepipe_config_last_reload_success_timestamp_seconds", "gauge",
	     "Unix time of the last successful reload (0: none since start).");
	put(&o, "corepipe_config_last_reload_success_timestamp_seconds %.3f\n",
	    (double)CP_STAT_LOAD(srv->reload.last_success_unix_ns) / 1e9);
	help(&o, "corepipe_pool_in_use", "gauge",
	     "Buffers taken from a pool (payload size classes, descriptors).");
	for (unsigned i = 0; i < dp->pools->n_classes; i++)
		put(&o, "corepipe_pool_in_use{pool=\"buf_%u\"} %u\n", dp->pools->size[i],
		    dp_pools_in_use(dp->pools, i));
	put(&o, "corepipe_pool_in_use{pool=\"descriptors\"} %u\n",
	    rte_mempool_in_use_count(dp->req_pool));
	help(&o, "corepipe_pool_capacity", "gauge", "Buffers in a pool.");
	for (unsigned i = 0; i < dp->pools->n_classes; i++)
		put(&o, "corepipe_pool_capacity{pool=\"buf_%u\"} %u\n", dp->pools->size[i],
		    dp->pools->count[i]);
	put(&o, "corepipe_pool_capacity{pool=\"descriptors\"} %u\n", dp->req_pool->size);
	if (dp->udp != NULL)
		render_udp(&o, dp->udp);
	process_metrics(&o);

	free(names);
	free(rows);
	free(e2e);
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
oom:
	free(names);
	free(rows);
	free(e2e);
	return NULL;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned code, const char *type, char *body, size_t len,
      enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
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

	(void)version;
	(void)upload;
	(void)con_cls;
	if (*upload_len != 0)
		return MHD_NO;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, "GET only\n", 9,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/healthz") == 0)
		return reply(conn, MHD_HTTP_OK, text, "ok\n", 3, MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/readyz") == 0) {
		bool ready = dp_dataplane_running(m->dp) &&
			     atomic_load_explicit(&m->srv->serving, memory_order_relaxed);

		return ready ? reply(conn, MHD_HTTP_OK, text, "ready\n", 6, MHD_RESPMEM_PERSISTENT)
			     : reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, text,
				     "not ready (starting or draining)\n", 33,
				     MHD_RESPMEM_PERSISTENT);
	}
	if (strcmp(url, "/metrics") == 0) {
		size_t len = 0;
		char *body;
		bool denied = false;

		pthread_mutex_lock(&m->srv->auth_lock);
		if (m->srv->conf.auth != NULL && m->srv->conf.auth->enabled &&
		    m->srv->conf.auth->metrics) {
			const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								    MHD_HTTP_HEADER_AUTHORIZATION);
			const char *who;

			denied = cp_auth_check(m->srv->conf.auth, v, v ? strlen(v) : 0,
					       CP_PERM_EXECUTE, &who) != CP_AUTH_OK;
		}
		pthread_mutex_unlock(&m->srv->auth_lock);
		if (denied) {
			CP_STAT_INC(m->denied);
			return reply(conn, MHD_HTTP_UNAUTHORIZED, text,
				     "missing or invalid bearer token\n", 32,
				     MHD_RESPMEM_PERSISTENT);
		}
		body = cp_metrics_render(m->srv, m->dp, &len);
		__atomic_store_n(&m->scrapes, m->scrapes + 1, __ATOMIC_RELAXED);
		if (body == NULL)
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "out of memory\n",
				     14, MHD_RESPMEM_PERSISTENT);
		return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
			     len, MHD_RESPMEM_MUST_FREE);
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, text, "not found (/metrics, /healthz, /readyz)\n",
		     40, MHD_RESPMEM_PERSISTENT);
}

int
cp_metrics_http_start(struct cp_metrics_http *m, const char *addr, struct cp_server *srv,
		      struct dp_dataplane *dp)
{
	int fd;

	memset(m, 0, sizeof(*m));
	m->srv = srv;
	m->dp = dp;
	fd = cp_tcp_listen(addr, 64, &m->port);
	if (fd < 0)
		return fd == -EINVAL ? -EINVAL : -EADDRINUSE;
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
				handle, m, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (m->d == NULL) {
		close(fd);
		return -EADDRINUSE;
	}
	return 0;
}

void
cp_metrics_http_stop(struct cp_metrics_http *m)
{
	if (m->d == NULL)
		return;
	/* The listening socket was ours: quiesce first, then stop and close it. */
	int fd = (int)MHD_quiesce_daemon(m->d);

	MHD_stop_daemon(m->d);
	if (fd >= 0)
		close(fd);
	m->d = NULL;
}

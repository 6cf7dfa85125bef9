/**
 * @file
 * The operator HTTP endpoint (libmicrohttpd): /metrics in the Prometheus text exposition format
 * (0.0.4), /healthz (the process is up) and /readyz (workers running and not draining).
 *
 * A scrape merges what each writer keeps for itself (docs/ARCHITECTURE.md, "Metrics"): the
 * workers' per-pipeline counters and data-plane histograms, the front ends' server-time
 * histograms, and the control plane's single-writer counters, all read with relaxed loads. It
 * takes no lock a worker could ever wait on.
 *
 * Defences (control/http_guard.h): a total and a per-peer connection limit with a reserve for
 * new peers, a deadline for the request headers and one for the whole connection that no byte
 * resets, one request per connection, and exact path matching on the undecoded path.
 *
 * Context: start/stop on the main thread; requests are served on the endpoint's own thread
 * ("cp-http", a control thread off the worker cores: it inherits the main lcore's affinity),
 * which runs libmicrohttpd in external-epoll mode so that it also enforces the deadlines.
 * Ownership: the endpoint reads the server and dataplane, which must outlive it.
 */
#ifndef COREPIPE_CP_METRICS_HTTP_H
#define COREPIPE_CP_METRICS_HTTP_H

#include "control/grpc_server.h"
#include "control/http_guard.h"

#include <pthread.h>
#include <stdatomic.h>

struct MHD_Daemon;

struct cp_metrics_http {
	struct MHD_Daemon *d;
	struct cp_server *srv;
	struct dp_dataplane *dp;
	int port; /**< bound port */
	int fd;	  /**< the listening socket (MHD's; offered to a successor: takeover.h) */
	uint64_t scrapes;
	uint64_t denied; /**< /metrics requests refused (auth.metrics); endpoint thread */
	struct cp_http_guard *guard; /**< endpoint thread only (counters: relaxed loads) */
	pthread_t thread;
	int wake_fd; /**< eventfd: stop */
	atomic_bool stop;
	bool started;
};

/**
 * Listen on @p addr ("127.0.0.1:9090", "[::1]:9090"; port 0 picks a free one) and serve, with
 * the limits @p lim (NULL: cp_http_limits_default()).
 * @return 0, -EINVAL (bad address), -EADDRINUSE (cannot bind) or -ENOMEM.
 */
int cp_metrics_http_start(struct cp_metrics_http *m, const char *addr,
			  const struct cp_http_limits *lim, struct cp_server *srv,
			  struct dp_dataplane *dp);

/**
 * cp_metrics_http_start() on @p fd, a listening socket bound to @p addr already (a
 * predecessor's, control/takeover.h); @p fd < 0 binds @p addr. Consumes @p fd.
 * @return as cp_metrics_http_start().
 */
int cp_metrics_http_adopt(struct cp_metrics_http *m, const char *addr, int fd,
			  const struct cp_http_limits *lim, struct cp_server *srv,
			  struct dp_dataplane *dp);

/** Stop serving (joins libmicrohttpd's thread). Accepts a never-started endpoint. */
void cp_metrics_http_stop(struct cp_metrics_http *m);

/**
 * Render the metrics text into a malloc'd buffer (what /metrics returns); @p http (may be
 * NULL) adds the endpoint's own refusals and deadline closes (read on its thread).
 * @return the text (free it) or NULL on allocation failure.
 * Context: any control thread (names are read under the registry's writer lock, no RCU).
 */
char *cp_metrics_render(struct cp_server *srv, struct dp_dataplane *dp,
			const struct cp_http_guard *http, size_t *len);

#endif

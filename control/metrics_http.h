/**
 * @file
 * The operator HTTP endpoint (libmicrohttpd): /metrics in the Prometheus text exposition format
 * (0.0.4), /healthz (the process is up) and /readyz (workers running and not draining).
 *
 * A scrape merges what each writer keeps for itself (docs/ARCHITECTURE.md, "Metrics"): the
 * workers' per-pipeline counters and data-plane histograms, the responder's server-time
 * histogram, and the control plane's single-writer counters, all read with relaxed loads. It
 * takes no lock a worker could ever wait on.
 *
 * Context: start/stop on the main thread; requests are served on libmicrohttpd's own polling
 * thread (a control thread, off the worker cores: it inherits the main lcore's affinity).
 * Ownership: the endpoint reads the server and dataplane, which must outlive it.
 */
#ifndef COREPIPE_CP_METRICS_HTTP_H
#define COREPIPE_CP_METRICS_HTTP_H

#include "control/grpc_server.h"

struct MHD_Daemon;

struct cp_metrics_http {
	struct MHD_Daemon *d;
	struct cp_server *srv;
	struct dp_dataplane *dp;
	int port; /**< bound port */
	uint64_t scrapes;
	uint64_t denied; /**< /metrics requests refused (auth.metrics); MHD thread writes */
};

/**
 * Listen on @p addr ("127.0.0.1:9090", "[::1]:9090"; port 0 picks a free one) and serve.
 * @return 0, -EINVAL (bad address) or -EADDRINUSE (cannot bind).
 */
int cp_metrics_http_start(struct cp_metrics_http *m, const char *addr, struct cp_server *srv,
			  struct dp_dataplane *dp);

/** Stop serving (joins libmicrohttpd's thread). Accepts a never-started endpoint. */
void cp_metrics_http_stop(struct cp_metrics_http *m);

/**
 * Render the metrics text into a malloc'd buffer (what /metrics returns).
 * @return the text (free it) or NULL on allocation failure.
 * Context: any control thread (names are read under the registry's writer lock, no RCU).
 */
char *cp_metrics_render(struct cp_server *srv, struct dp_dataplane *dp, size_t *len);

#endif

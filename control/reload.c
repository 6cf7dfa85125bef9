/*
 * Configuration hot reload (see reload.h).
 */
#include "control/reload.h"

#include "control/grpc_server.h"
#include "control/log.h"
#include "control/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
list_add(struct cp_reload_list *l, const char *fmt, ...)
{
	va_list ap;

	if (l->n == CP_RELOAD_LIST_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(l->name[l->n++], sizeof(l->name[0]), fmt, ap);
	va_end(ap);
}

static void
err_add(struct cp_reload_report *rep, const char *msg)
{
	size_t off = strlen(rep->error);

	snprintf(rep->error + off, sizeof(rep->error) - off, "%s%s", off ? "; " : "", msg);
}

/* ---- Which settings changed ---------------------------------------------------------------- */

#define DIFF_U(field, key, list)                                                                   \
	do {                                                                                       \
		if (old->field != neu->field)                                                      \
			list_add(list, "%s", key);                                                 \
	} while (0)
#define DIFF_S(field, key, list)                                                                   \
	do {                                                                                       \
		if (strcmp(old->field, neu->field) != 0)                                           \
			list_add(list, "%s", key);                                                 \
	} while (0)

static void
diff_settings(const struct cp_config *old, const struct cp_config *neu,
	      struct cp_reload_report *rep)
{
	struct cp_reload_list *live = &rep->applied, *rs = &rep->needs_restart;
	bool eal_same = old->n_eal_args == neu->n_eal_args;

	/* Live. */
	DIFF_U(default_timeout_ms, "limits.default_timeout_ms", live);
	DIFF_U(max_timeout_ms, "limits.max_timeout_ms", live);
	DIFF_U(max_nodes, "limits.max_nodes", live);
	DIFF_U(shed_high_water_pct, "limits.shed_high_water_pct", live);
	DIFF_U(shed_low_water_pct, "limits.shed_low_water_pct", live);
	DIFF_U(shed_busy_pct, "limits.shed_busy_pct", live);
	DIFF_U(shed_window_ms, "limits.shed_window_ms", live);
	DIFF_U(shed_enabled, "limits.shed_enabled", live);
	DIFF_U(access_log, "logging.access_log", live);
	DIFF_U(access_log_sample, "logging.access_log_sample", live);
	DIFF_U(stream_window, "limits.stream_window", live);
	DIFF_U(inflight_cap, "limits.max_in_flight", live);
	DIFF_U(shutdown_grace_ms, "server.shutdown_grace_ms", live);
	DIFF_U(log_level, "logging.level", live);
	DIFF_U(auth.enabled, "auth.enabled", live);
	DIFF_U(auth.health_open, "auth.health_open", live);
	DIFF_U(auth.metrics, "auth.metrics", live);
	{
		bool same = old->auth.n == neu->auth.n;

		for (unsigned i = 0; same && i < old->auth.n; i++)
			same = memcmp(&old->auth.tokens[i], &neu->auth.tokens[i],
				      sizeof(old->auth.tokens[i])) == 0;
		if (!same)
			list_add(live, "auth.tokens");
	}
	/* Restart. */
	DIFF_S(grpc_listen, "server.grpc_listen", rs);
	DIFF_S(metrics_listen, "server.metrics_listen", rs);
	DIFF_U(max_message_bytes, "server.max_message_bytes", rs);
	DIFF_U(responder_spin_us, "server.responder_spin_us", rs);
	DIFF_U(max_concurrent_streams, "server.max_concurrent_streams", rs);
	DIFF_U(max_connections, "server.max_connections", rs);
	DIFF_U(max_connection_idle_ms, "server.max_connection_idle_ms", rs);
	DIFF_U(max_connection_age_ms, "server.max_connection_age_ms", rs);
	DIFF_U(keepalive.time_ms, "server.keepalive_time_ms", rs);
	DIFF_U(keepalive.timeout_ms, "server.keepalive_timeout_ms", rs);
	DIFF_U(keepalive.permit_without_calls, "server.keepalive_permit_without_calls", rs);
	DIFF_U(keepalive.min_ping_interval_ms, "server.keepalive_min_ping_interval_ms", rs);
	DIFF_U(access_log_ring, "logging.access_log_ring", rs);
	DIFF_U(workers, "dataplane.workers", rs);
	DIFF_S(lcores, "dataplane.lcores", rs);
	DIFF_U(dp.worker.idle, "dataplane.idle_policy", rs);
	DIFF_U(dp.worker.spin_us, "dataplane.spin_us", rs);
	DIFF_U(dp.worker.sleep_max_us, "dataplane.sleep_max_us", rs);
	DIFF_U(dp.worker.ring_size, "dataplane.ring_size", rs);
	DIFF_U(dp.max_in_flight, "dataplane.max_in_flight", rs);
	DIFF_U(dp.max_streams_per_worker, "dataplane.max_streams_per_worker", rs);
	if (old->dp.pools.n_classes != neu->dp.pools.n_classes ||
	    memcmp(old->dp.pools.classes, neu->dp.pools.classes,
		   neu->dp.pools.n_classes * sizeof(neu->dp.pools.classes[0])) != 0)
		list_add(rs, "dataplane.pools");
	if (old->udp.n_ports != neu->udp.n_ports ||
	    memcmp(old->udp.ports, neu->udp.ports, neu->udp.n_ports * sizeof(neu->udp.ports[0])) !=
		0)
		list_add(rs, "dataplane.ports");
	DIFF_U(udp.ring_size, "dataplane.port_ring_size", rs);
	DIFF_U(udp.tx_drain_us, "dataplane.port_tx_drain_us", rs);
	DIFF_U(udp.idle_poll_us, "dataplane.port_idle_poll_us", rs);
	DIFF_U(hugepages, "dataplane.hugepages", rs);
	DIFF_U(memory_mb, "dataplane.memory_mb", rs);
	DIFF_S(tls.cert_file, "tls.cert_file", rs);
	DIFF_S(tls.key_file, "tls.key_file", rs);
	DIFF_S(tls.client_ca_file, "tls.client_ca_file", rs);
	DIFF_U(tls.require_client_cert, "tls.require_client_cert", rs);
	DIFF_U(tls.required, "tls.required", rs);
	DIFF_S(tls.plaintext_listen, "tls.plaintext_listen", rs);
	for (unsigned i = 0; eal_same && i < old->n_eal_args; i++)
		eal_same = strcmp(old->eal_args[i], neu->eal_args[i]) == 0;
	if (!eal_same)
		list_add(rs, "dataplane.eal_args");
}

/* ---- Pipelines ------------------------------------------------------------------------------ */

struct removed_ctx {
	const struct cp_config *neu;
	struct dp_pipeline *gone[DP_REGISTRY_MAX];
	unsigned n;
};

static int
collect_removed(struct dp_pipeline *p, void *arg)
{
	struct removed_ctx *r = arg;

	if (!p->from_file)
		return 0;
	for (unsigned i = 0; i < r->neu->n_pipelines; i++)
		if (strcmp(r->neu->pipelines[i].spec.name, p->name) == 0)
			return 0;
	if (r->n < DP_REGISTRY_MAX) {
		dp_pipeline_ref(p);
		r->gone[r->n++] = p;
	}
	return 0;
}

int
cp_reload_run(struct cp_server *srv, struct cp_reload_report *rep)
{
	struct cp_reload *rl = &srv->reload;
	struct dp_registry *reg = srv->dp->reg;
	struct cp_config neu;
	struct dp_pipeline **compiled = NULL;
	struct removed_ctx *rm = NULL;
	unsigned n_compiled = 0;
	char err[512];
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	cp_notify_reloading(); /* notify.h: RELOADING=1 ... READY=1 around the reload */
	cp_config_init(&neu);
	if (rl->path == NULL || rl->path[0] == '\0') {
		err_add(rep, "no config file to reload (corepiped was started without one)");
		rc = -EINVAL;
		goto out;
	}
	/* 1. Read and validate everything: file, environment, flags. */
	if (cp_config_load_file(&neu, rl->path, err, sizeof(err)) != 0 ||
	    cp_config_apply_env(&neu, rl->getenv, err, sizeof(err)) != 0) {
		err_add(rep, err);
		rc = -EINVAL;
		goto out;
	}
	if (rl->apply_flags != NULL)
		rl->apply_flags(&neu);
	/* 2. Compile every pipeline before touching anything; report all errors. */
	compiled = calloc(neu.n_pipelines + 1, sizeof(*compiled));
	n_compiled = neu.n_pipelines;
	rm = calloc(1, sizeof(*rm));
	if (compiled == NULL || rm == NULL) {
		err_add(rep, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < neu.n_pipelines; i++) {
		struct dp_err e;

		compiled[i] = dp_pipeline_compile(&neu.pipelines[i].spec, neu.max_nodes, &e);
		if (compiled[i] == NULL) {
			snprintf(err, sizeof(err), "%s:%d: pipeline '%s': %s", rl->path,
				 neu.pipelines[i].line, neu.pipelines[i].spec.name, e.msg);
			err_add(rep, err);
			rc = -EINVAL;
		} else {
			compiled[i]->from_file = true;
		}
	}
	if (rc != 0)
		goto out;

	/* 3. Commit. Pipelines: new and changed ones, then the ones that left the file. */
	for (unsigned i = 0; i < neu.n_pipelines; i++) {
		struct dp_pipeline *cur = dp_registry_get(reg, neu.pipelines[i].spec.name);
		struct dp_registry_info info;
		bool same = cur != NULL && cur->from_file &&
			    dp_spec_equal(cur->spec, &neu.pipelines[i].spec);

		dp_pipeline_unref(cur);
		if (same)
			continue;
		if (dp_registry_put(reg, compiled[i], &info) != 0) {
			/* Registry full: everything compiled, so this is the only way to fail
			 * half-way; say so loudly. */
			snprintf(err, sizeof(err), "pipeline '%s': registry full",
				 neu.pipelines[i].spec.name);
			err_add(rep, err);
			continue;
		}
		compiled[i] = NULL; /* the registry owns it */
		list_add(info.replaced ? &rep->replaced : &rep->added, "%s",
			 neu.pipelines[i].spec.name);
	}
	rm->neu = &neu;
	dp_registry_for_each(reg, collect_removed, rm);
	for (unsigned i = 0; i < rm->n; i++) {
		if (dp_registry_delete(reg, rm->gone[i]->name) == 0)
			list_add(&rep->removed, "%s", rm->gone[i]->name);
		dp_pipeline_unref(rm->gone[i]);
	}
	/* Settings: report, then swap the live ones (all read on this thread only). */
	diff_settings(rl->live, &neu, rep);
	rl->live->default_timeout_ms = srv->conf.default_timeout_ms = neu.default_timeout_ms;
	rl->live->max_timeout_ms = srv->conf.max_timeout_ms = neu.max_timeout_ms;
	rl->live->max_nodes = srv->conf.max_nodes = neu.max_nodes;
	rl->live->stream_window = srv->stream_window = neu.stream_window;
	rl->live->inflight_cap = srv->conf.inflight_cap = neu.inflight_cap;
	rl->live->shutdown_grace_ms = srv->conf.shutdown_grace_ms = neu.shutdown_grace_ms;
	rl->live->shed_high_water_pct = srv->shed.conf.high_pct = neu.shed_high_water_pct;
	rl->live->shed_low_water_pct = srv->shed.conf.low_pct = neu.shed_low_water_pct;
	rl->live->shed_busy_pct = srv->shed.conf.busy_pct = neu.shed_busy_pct;
	rl->live->shed_window_ms = srv->shed.conf.window_ms = neu.shed_window_ms;
	rl->live->shed_enabled = neu.shed_enabled;
	srv->shed.conf.disabled = !neu.shed_enabled;
	rl->live->access_log = neu.access_log;
	rl->live->access_log_sample = neu.access_log_sample;
	cp_alog_configure(neu.access_log, neu.access_log_sample);
	rl->live->log_level = neu.log_level;
	cp_log_set_level(neu.log_level);
	pthread_mutex_lock(&srv->auth_lock); /* the metrics thread reads the table */
	cp_auth_free(&rl->live->auth);
	rl->live->auth = neu.auth; /* moved: srv->conf.auth points at rl->live->auth */
	pthread_mutex_unlock(&srv->auth_lock);
	memset(&neu.auth, 0, sizeof(neu.auth));
	/* Keep the running config's pipelines in step (for --print-config style reports). */
	{
		unsigned n = rl->live->n_pipelines;
		struct cp_config_pipeline *p = rl->live->pipelines;

		rl->live->pipelines = neu.pipelines;
		rl->live->n_pipelines = neu.n_pipelines;
		neu.pipelines = p;
		neu.n_pipelines = n;
	}
	if (rep->error[0] != '\0')
		rc = -EINVAL;
out:
	if (compiled != NULL)
		for (unsigned i = 0; i < n_compiled; i++)
			dp_pipeline_unref(compiled[i]);
	free(compiled);
	free(rm);
	cp_config_free(&neu);
	cp_notify_reloaded(rc == 0, rep->error);
	if (rc == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		CP_STAT_INC(rl->ok);
		__atomic_store_n(&rl->last_success_unix_ns,
				 (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
				 __ATOMIC_RELAXED);
		cp_log(CP_LOG_INFO, "config reloaded", CP_LF_STR("file", rl->path),
		       CP_LF_INT("added", rep->added.n), CP_LF_INT("replaced", rep->replaced.n),
		       CP_LF_INT("removed", rep->removed.n), CP_LF_INT("applied", rep->applied.n),
		       CP_LF_INT("needs_restart", rep->needs_restart.n));
		for (unsigned i = 0; i < rep->needs_restart.n; i++)
			cp_log(CP_LOG_WARN, "config reload: setting changed, needs a restart",
			       CP_LF_STR("key", rep->needs_restart.name[i]));
	} else {
		CP_STAT_INC(rl->failed);
		cp_log(CP_LOG_ERROR, "config reload rejected: nothing changed",
		       CP_LF_STR("file", rl->path ? rl->path : ""), CP_LF_STR("error", rep->error));
	}
	return rc;
}

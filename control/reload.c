/*
 * Configuration hot reload (see reload.h).
 */
#include "control/reload.h"

#include "control/file.h"
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/notify.h"
#include "control/store.h"

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
	DIFF_U(max_request_memory_mb, "limits.max_request_memory_mb", live);
	DIFF_U(memory_budget_mb, "limits.memory_budget_mb", live);
	DIFF_U(shutdown_grace_ms, "server.shutdown_grace_ms", live);
	DIFF_U(shutdown_delay_ms, "server.shutdown_delay_ms", live);
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
	DIFF_U(http.max_connections, "server.metrics_max_connections", rs);
	DIFF_U(http.max_per_peer, "server.metrics_max_connections_per_peer", rs);
	DIFF_U(http.header_timeout_ms, "server.metrics_header_timeout_ms", rs);
	DIFF_U(http.request_timeout_ms, "server.metrics_request_timeout_ms", rs);
	DIFF_U(max_message_bytes, "server.max_message_bytes", rs);
	DIFF_U(responder_spin_us, "server.responder_spin_us", rs);
	DIFF_U(frontends, "server.frontends", rs);
	DIFF_U(inline_max_us, "server.inline_max_us", rs);
	DIFF_U(frontend_spin_us, "server.frontend_spin_us", rs);
	DIFF_U(max_response_bytes, "server.max_response_bytes", rs);
	DIFF_U(max_connections_per_peer, "server.max_connections_per_peer", rs);
	DIFF_U(handshake_timeout_ms, "server.handshake_timeout_ms", rs);
	DIFF_U(max_cancels_per_second, "server.max_cancels_per_second", rs);
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
	DIFF_U(dp.worker.quantum_us, "dataplane.quantum_us", rs);
	DIFF_U(dp.worker.lane_share, "dataplane.lane_share", rs);
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
	DIFF_S(takeover_socket, "server.takeover_socket", rs);
	DIFF_U(registry_store, "registry.store", rs);
	DIFF_S(state_file, "registry.state_file", rs);
	DIFF_S(etcd_endpoint, "registry.etcd_endpoint", rs);
	DIFF_S(etcd_prefix, "registry.etcd_prefix", rs);
	for (unsigned i = 0; eal_same && i < old->n_eal_args; i++)
		eal_same = strcmp(old->eal_args[i], neu->eal_args[i]) == 0;
	if (!eal_same)
		list_add(rs, "dataplane.eal_args");
}

/* ---- Planning: everything that can fail, with no effect on the server ---------------------- */

void
cp_reload_plan_free(struct cp_reload_plan *pl)
{
	if (pl->compiled != NULL)
		for (unsigned i = 0; i < pl->n_compiled; i++)
			dp_pipeline_unref(pl->compiled[i]);
	free(pl->compiled);
	pl->compiled = NULL;
	pl->n_compiled = 0;
	cp_config_free(&pl->neu);
}

int
cp_reload_prepare(struct cp_reload_plan *pl, const struct cp_config *live, const char *name,
		  const void *data, size_t len, const char *(*getenv_fn)(const char *name),
		  void (*apply_flags)(struct cp_config *c), struct dp_registry *reg,
		  struct cp_reload_report *rep)
{
	char err[512];
	int rc = 0;

	memset(pl, 0, sizeof(*pl));
	cp_config_init(&pl->neu);
	/* 1. The file (never empty: defaults would turn authentication off), the environment
	 * and the flags, as at start. */
	if (cp_config_load_buffer_ex(&pl->neu, name, data, len, CP_CONFIG_NONEMPTY, err,
				     sizeof(err)) != 0 ||
	    (getenv_fn != NULL &&
	     cp_config_apply_env(&pl->neu, getenv_fn, err, sizeof(err)) != 0)) {
		err_add(rep, err);
		return -EINVAL;
	}
	if (apply_flags != NULL)
		apply_flags(&pl->neu);
	if (cp_config_validate(&pl->neu, err, sizeof(err)) != 0) {
		err_add(rep, err);
		return -EINVAL;
	}
	/* 2. Security fails closed: weakening needs the key written in the file (or env). */
	if (cp_config_security_check(live, &pl->neu, pl->weakened, &pl->n_weakened, err,
				     sizeof(err)) != 0) {
		err_add(rep, err);
		return -EPERM;
	}
	/* 3. Every pipeline compiled; every error reported. */
	pl->compiled = calloc(pl->neu.n_pipelines + 1, sizeof(*pl->compiled));
	if (pl->compiled == NULL) {
		err_add(rep, "out of memory");
		return -ENOMEM;
	}
	pl->n_compiled = pl->neu.n_pipelines;
	for (unsigned i = 0; i < pl->neu.n_pipelines; i++) {
		struct dp_err e;

		pl->compiled[i] =
		    dp_pipeline_compile(&pl->neu.pipelines[i].spec, pl->neu.max_nodes, &e);
		if (pl->compiled[i] == NULL) {
			snprintf(err, sizeof(err), "%s:%d: pipeline '%s': %s", name,
				 pl->neu.pipelines[i].line, pl->neu.pipelines[i].spec.name, e.msg);
			err_add(rep, err);
			rc = -EINVAL;
		} else {
			pl->compiled[i]->from_file = true;
		}
	}
	if (rc != 0)
		return rc;
	/* 4. Room in the registry for the new names (checked again, atomically, at commit). */
	if (reg != NULL) {
		rc = dp_registry_sync_file(reg, pl->compiled, pl->n_compiled, true, NULL, NULL,
					   NULL);
		if (rc == -ENOSPC) {
			snprintf(
			    err, sizeof(err),
			    "registry full: the file's %u pipelines and the API's do not fit in "
			    "%d names",
			    pl->n_compiled, DP_REGISTRY_MAX);
			err_add(rep, err);
		} else if (rc != 0) {
			err_add(rep, "cannot check the registry (out of memory)");
		}
	}
	return rc;
}

/* ---- Commit -------------------------------------------------------------------------------- */

static void
removed_cb(const char *name, void *arg)
{
	list_add(&((struct cp_reload_report *)arg)->removed, "%s", name);
}

int
cp_reload_run(struct cp_server *srv, struct cp_reload_report *rep)
{
	struct cp_reload *rl = &srv->reload;
	struct dp_registry *reg = srv->dp->reg;
	struct cp_reload_plan pl;
	struct cp_live *live = NULL;
	uint8_t *outcome = NULL;
	char err[512], *buf = NULL;
	size_t len = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	cp_notify_reloading(); /* notify.h: RELOADING=1 ... READY=1 around the reload */
	memset(&pl, 0, sizeof(pl));
	cp_config_init(&pl.neu);
	if (rl->path == NULL || rl->path[0] == '\0') {
		err_add(rep, "no config file to reload (corepiped was started without one)");
		rc = -EINVAL;
		goto out;
	}
	/* Never blocks (a FIFO is refused), regular files only, bounded size. */
	rc = cp_file_read(rl->path, CP_CONFIG_FILE_MAX, &buf, &len, err, sizeof(err));
	if (rc != 0) {
		err_add(rep, err);
		rc = -EINVAL;
		goto out;
	}
	cp_config_free(&pl.neu);
	rc = cp_reload_prepare(&pl, rl->live, rl->path, buf, len, rl->getenv, rl->apply_flags, reg,
			       rep);
	if (rc != 0)
		goto out;
	outcome = calloc(pl.n_compiled + 1, 1);
	/* The live settings are made now, so that nothing can fail after the commit. */
	live = cp_server_live_prepare(srv, &pl.neu);
	if (outcome == NULL || live == NULL) {
		err_add(rep, "out of memory");
		rc = -ENOMEM;
		goto out;
	}

	/* Commit. The registry first, all or nothing (the only step that can still fail: a
	 * writer may have taken the last names since the check); then the settings, which
	 * cannot fail. */
	rc =
	    dp_registry_sync_file(reg, pl.compiled, pl.n_compiled, false, outcome, removed_cb, rep);
	if (rc != 0) {
		err_add(rep, rc == -ENOSPC ? "registry full" : "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < pl.n_compiled; i++) {
		pl.compiled[i] = NULL; /* consumed */
		if (outcome[i] != DP_REG_UNCHANGED)
			list_add(outcome[i] == DP_REG_REPLACED ? &rep->replaced : &rep->added, "%s",
				 pl.neu.pipelines[i].spec.name);
	}
	/* Settings: report, then publish the ones prepared above (RCU: front ends pick them up
	 * at their next call; cannot fail) and keep the running configuration in step. */
	diff_settings(rl->live, &pl.neu, rep);
	for (unsigned i = 0; i < pl.n_weakened; i++)
		cp_log(CP_LOG_WARN, "config reload weakens security, as the file says",
		       CP_LF_STR("file", rl->path), CP_LF_STR("change", pl.weakened[i]));
	cp_server_live_publish(srv, live);
	live = NULL;
	rl->live->default_timeout_ms = pl.neu.default_timeout_ms;
	rl->live->max_timeout_ms = pl.neu.max_timeout_ms;
	rl->live->max_nodes = pl.neu.max_nodes;
	rl->live->stream_window = pl.neu.stream_window;
	rl->live->inflight_cap = pl.neu.inflight_cap;
	rl->live->max_request_memory_mb = pl.neu.max_request_memory_mb;
	rl->live->memory_budget_mb = pl.neu.memory_budget_mb;
	rl->live->shutdown_grace_ms = pl.neu.shutdown_grace_ms;
	rl->live->shutdown_delay_ms = pl.neu.shutdown_delay_ms;
	rl->live->shed_high_water_pct = pl.neu.shed_high_water_pct;
	rl->live->shed_low_water_pct = pl.neu.shed_low_water_pct;
	rl->live->shed_busy_pct = pl.neu.shed_busy_pct;
	rl->live->shed_window_ms = pl.neu.shed_window_ms;
	rl->live->log_level = pl.neu.log_level;
	cp_log_set_level(pl.neu.log_level);
	rl->live->shed_enabled = pl.neu.shed_enabled;
	rl->live->access_log = pl.neu.access_log;
	rl->live->access_log_sample = pl.neu.access_log_sample;
	cp_alog_configure(pl.neu.access_log, pl.neu.access_log_sample);
	cp_auth_free(&rl->live->auth);
	rl->live->auth = pl.neu.auth; /* moved: the server published its own copy */
	memset(&pl.neu.auth, 0, sizeof(pl.neu.auth));
	/* What later reloads compare against: the keys this file set explicitly, too. */
	rl->live->explicit_keys = pl.neu.explicit_keys;
	/* Keep the running config's pipelines in step (for --print-config style reports). */
	{
		unsigned n = rl->live->n_pipelines;
		struct cp_config_pipeline *p = rl->live->pipelines;

		rl->live->pipelines = pl.neu.pipelines;
		rl->live->n_pipelines = pl.neu.n_pipelines;
		pl.neu.pipelines = p;
		pl.neu.n_pipelines = n;
	}
out:
	cp_server_live_discard(live);
	cp_reload_plan_free(&pl);
	free(outcome);
	free(buf);
	if (rc == 0 && srv->store != NULL) {
		char serr[512];

		/* A file pipeline may have replaced an API one of the same name: the state
		 * file follows the registry (an error is logged by the store; the reload
		 * stands). */
		cp_store_save(srv->store, serr, sizeof(serr));
	}
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
	cp_notify_reloaded(rc == 0, rep->error);
	return rc;
}

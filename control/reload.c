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

/* "a,b,c" for the log line (cut with "..." when it does not fit). */
static void
list_join(const struct cp_reload_list *l, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < l->n; i++) {
		int w = snprintf(out + off, len - off, "%s%s", i ? "," : "", l->name[i]);

		if (w < 0 || (size_t)w >= len - off) {
			snprintf(out + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
			return;
		}
		off += (size_t)w;
	}
}

static void
err_add(struct cp_reload_report *rep, const char *msg)
{
	size_t off = strlen(rep->error);

	snprintf(rep->error + off, sizeof(rep->error) - off, "%s%s", off ? "; " : "", msg);
}

/* ---- Which settings changed ---------------------------------------------------------------- */

/* cp_config_diff() callback: the key table says which settings a reload applies live. */
static void
diff_one(const char *key, bool live, void *arg)
{
	struct cp_reload_report *rep = arg;

	list_add(live ? &rep->applied : &rep->needs_restart, "%s", key);
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
	cp_config_diff(rl->live, &pl.neu, diff_one, rep);
	for (unsigned i = 0; i < pl.n_weakened; i++)
		cp_log(CP_LOG_WARN, "config reload weakens security, as the file says",
		       CP_LF_STR("file", rl->path), CP_LF_STR("change", pl.weakened[i]));
	cp_server_live_publish(srv, live);
	live = NULL;
	/* The running configuration takes the live settings (the key table's live rows); the
	 * modules that read them outside the published cp_live are told here. */
	cp_config_copy_live(rl->live, &pl.neu);
	cp_log_set_level(pl.neu.log_level);
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
		dp_stat_add(&rl->ok, 1);
		__atomic_store_n(&rl->last_success_unix_ns,
				 (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
				 __ATOMIC_RELAXED);
		char lists[5][512];

		list_join(&rep->added, lists[0], sizeof(lists[0]));
		list_join(&rep->replaced, lists[1], sizeof(lists[1]));
		list_join(&rep->removed, lists[2], sizeof(lists[2]));
		list_join(&rep->applied, lists[3], sizeof(lists[3]));
		list_join(&rep->needs_restart, lists[4], sizeof(lists[4]));
		cp_log(CP_LOG_INFO, "config reloaded", CP_LF_STR("file", rl->path),
		       CP_LF_STR("added", lists[0]), CP_LF_STR("replaced", lists[1]),
		       CP_LF_STR("removed", lists[2]), CP_LF_STR("applied", lists[3]),
		       CP_LF_STR("needs_restart", lists[4]));
		for (unsigned i = 0; i < rep->needs_restart.n; i++)
			cp_log(CP_LOG_WARN, "config reload: setting changed, needs a restart",
			       CP_LF_STR("key", rep->needs_restart.name[i]));
	} else {
		dp_stat_add(&rl->failed, 1);
		cp_log(CP_LOG_ERROR, "config reload rejected: nothing changed",
		       CP_LF_STR("file", rl->path ? rl->path : ""), CP_LF_STR("error", rep->error));
	}
	cp_notify_reloaded(rc == 0, rep->error);
	return rc;
}

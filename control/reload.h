/**
 * @file
 * Configuration hot reload, as a transaction (SIGHUP and Admin/ReloadConfig).
 *
 * A reload re-reads the config file, applies the environment and the command-line flags on
 * top (the same precedence as at start), validates everything and compiles every pipeline.
 * Only when all of it is valid is anything changed: the pipelines are published to the RCU
 * registry in one pass under its writer lock (each name switches atomically; requests already
 * running finish on the version they found), and the live settings are swapped on the CQ
 * thread, which is the only thread that reads them. Otherwise nothing changes and the errors
 * (file:line, pipeline, node, parameter) are logged and returned.
 *
 * Pipelines from the file are marked as such: file wins for the names it defines (a file
 * pipeline replaces an API one of the same name), pipelines put through the Admin API under
 * other names survive reloads, and file pipelines that left the file are deleted. A file
 * pipeline whose spec did not change is not republished (its version stays).
 *
 * Which settings a reload applies live and which it reports as "needs restart" (left as they
 * run) is a column of the key table (control/config.c; docs/configuration.md, "Keys"), as is
 * the copy into the running configuration (cp_config_copy_live). The log line "config
 * reloaded" names the pipelines added, replaced and removed and the settings applied and
 * needing a restart.
 *
 * Context: the control thread only (control/ctl.h). Ownership: the live config (struct
 * cp_reload.live) belongs to main(); a reload moves the new token table into it and frees the old
 * one.
 */
#ifndef COREPIPE_CP_RELOAD_H
#define COREPIPE_CP_RELOAD_H

#include "control/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cp_server;

#define CP_RELOAD_LIST_MAX 64

/** A list of names, for the report. */
struct cp_reload_list {
	unsigned n;
	char name[CP_RELOAD_LIST_MAX][DP_NAME_MAX + 32];
};

struct cp_reload_report {
	struct cp_reload_list added, replaced, removed, applied, needs_restart;
	char error[1024]; /**< when it failed: every error, '; '-separated */
};

/** Reload context, set up by main() and kept in the server. */
struct cp_reload {
	struct cp_config *live; /**< the running configuration */
	const char *path;	/**< the file to re-read ("" or NULL: none, nothing to reload) */
	void (*apply_flags)(struct cp_config *c); /**< command-line overrides, re-applied */
	const char *(*getenv)(const char *name);
	uint64_t ok, failed;	       /**< reloads by result; CQ writes, scrape loads */
	uint64_t last_success_unix_ns; /**< wall clock of the last good reload (0: none) */
};

/**
 * Reload now: read the file (control/file.h: never blocks; a FIFO, device or directory is an
 * error), prepare (below), then commit: the registry first, all or nothing
 * (dp_registry_sync_file), then the live settings, which cannot fail. On any error nothing has
 * changed.
 * @return 0 (applied; @p rep says what changed), or, with nothing changed and rep->error
 * saying why: -EINVAL (unreadable or invalid file), -EPERM (it would weaken security without
 * saying so: cp_config_security_check), -ENOSPC (the registry cannot take the new names),
 * -ENOMEM. Logs the outcome either way; each explicit weakening at warn.
 * Context: the control thread (control/ctl.h).
 */
int cp_reload_run(struct cp_server *srv, struct cp_reload_report *rep);

/** Everything a reload will apply, checked and compiled. */
struct cp_reload_plan {
	struct cp_config neu;	       /**< file + environment + flags */
	struct dp_pipeline **compiled; /**< neu.pipelines, compiled, from_file set */
	unsigned n_compiled;
	const char *weakened[CP_CONFIG_WEAKEN_MAX]; /**< explicit weakenings, for warnings */
	unsigned n_weakened;
};

/**
 * The part of a reload that can fail, with no effect on anything running: load @p data (the
 * file's @p len bytes, named @p name; an empty document is an error), apply the environment
 * (@p getenv_fn, may be NULL) and the flags (@p apply_flags, may be NULL), validate, check the
 * security rules against @p live, compile every pipeline, and (with @p reg) check that the
 * registry can take the new names (a dry run of dp_registry_sync_file).
 * @return 0 with @p pl filled in, or the cp_reload_run() errors with rep->error set.
 * Ownership: free @p pl with cp_reload_plan_free() in every case.
 * Context: control thread; pure but for the registry's read (tests and fuzzing call it).
 */
int cp_reload_prepare(struct cp_reload_plan *pl, const struct cp_config *live, const char *name,
		      const void *data, size_t len, const char *(*getenv_fn)(const char *name),
		      void (*apply_flags)(struct cp_config *c), struct dp_registry *reg,
		      struct cp_reload_report *rep);

/** Free a plan (what prepare did not hand over). */
void cp_reload_plan_free(struct cp_reload_plan *pl);

#endif

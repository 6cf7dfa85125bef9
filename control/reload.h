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
 * Live: limits.* (timeouts, max_nodes, shedding thresholds, stream_window),
 * server.shutdown_grace_ms, auth.* (tokens, enabled, health_open), logging.level, pipelines.
 * Everything else (listen addresses, lcores/workers, rings, pools, message size, connection
 * limits, EAL args) is reported as "needs restart" and left as it runs.
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
 * Reload now. @return 0 (applied; @p rep says what changed) or -EINVAL (nothing changed;
 * rep->error says why). Logs the outcome either way.
 * Context: the control thread.
 */
int cp_reload_run(struct cp_server *srv, struct cp_reload_report *rep);

#endif

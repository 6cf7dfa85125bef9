/**
 * @file
 * The descriptor rows (dataplane/stat.h) of the counters the control plane exports: a
 * worker's (struct dp_worker_stats) and a front end's (struct cp_fe_stats). Each counter is
 * named here once, with its /metrics family, labels, help and type and its GetStats field;
 * /metrics (metrics_http.c) and GetStats (rpc_admin.c) both walk these rows, and the sum over
 * front ends is derived from them. tests/unit/control/test_counters.c proves each table covers
 * its struct, field by field.
 *
 * Context: any thread (the tables are constants; cp_fe_stats_sum reads with relaxed loads).
 * Ownership: none.
 */
#ifndef COREPIPE_CP_COUNTERS_H
#define COREPIPE_CP_COUNTERS_H

#include "control/frontend.h"
#include "dataplane/stat.h"
#include "dataplane/worker.h"

/** The fields of struct dp_worker_stats, in field order; /metrics prints them per worker. */
extern const struct dp_stat_desc cp_worker_stats_desc[];
/** Rows in cp_worker_stats_desc. */
extern const unsigned cp_worker_stats_n_desc;

/** The fields of struct cp_fe_stats, in field order; /metrics prints them summed. */
extern const struct dp_stat_desc cp_fe_stats_desc[];
/** Rows in cp_fe_stats_desc. */
extern const unsigned cp_fe_stats_n_desc;

/** Name of a refusal reason ("ring_full", ...), the `reason` key of GetStats and /metrics. */
const char *cp_reject_name(enum cp_reject r);

/**
 * Every front end's counters of @p srv, summed into @p out (zeroed first).
 * Context: any thread. Ownership: the caller's @p out.
 */
void cp_fe_stats_sum(const struct cp_server *srv, struct cp_fe_stats *out);

#endif

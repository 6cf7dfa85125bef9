/*
 * The descriptor rows of a worker's and a front end's counters (see counters.h).
 */
#include "control/counters.h"

#include <string.h>

#define ROW(field) DP_STAT_FIELD(struct dp_worker_stats, field)

const struct dp_stat_desc cp_worker_stats_desc[] = {
    {.rpc = "requests", ROW(requests)},
    {ROW(bursts)},
    {.metric = "corepipe_bulk_runs_total",
     .rpc = "bulk_runs",
     .help = "Requests a worker ran in its bulk lane, one quantum at a time "
	     "(dataplane.quantum_us).",
     ROW(bulk_runs)},
    {.metric = "corepipe_bulk_quanta_total",
     .rpc = "quanta",
     .help = "Bulk lane quanta a worker ran.",
     ROW(quanta)},
    {.metric = "corepipe_bulk_parked_total",
     .rpc = "parked",
     .help = "Bulk runs a worker parked between quanta because newer work of a higher "
	     "priority was waiting (they resume after it).",
     ROW(parked)},
    /* In corepipe_rejected_total{reason="deadline_running"|"cancelled_running"}. */
    {ROW(stopped_deadline)},
    {ROW(stopped_cancel)},
    {.metric = "corepipe_worker_busy_seconds_total",
     .help = "Time a worker spent on loop iterations that did work; rate() is its utilisation "
	     "(0..1).",
     .flags = DP_STAT_TSC,
     ROW(r.busy_cycles)},
    /* With busy seconds, the loop's own time: a reader takes the ratio over its own interval
     * (rate of busy / rate of loop), as corepipectl top does. */
    {.metric = "corepipe_worker_loop_seconds_total",
     .help = "Time a worker's loop has run (all TSC cycles since it started).",
     .flags = DP_STAT_TSC,
     ROW(r.total_cycles)},
    {.rpc = "sleeps", ROW(r.sleeps)},
};

const unsigned cp_worker_stats_n_desc =
    sizeof(cp_worker_stats_desc) / sizeof(cp_worker_stats_desc[0]);

#undef ROW

const char *
cp_reject_name(enum cp_reject r)
{
	static const char *const names[CP_REJECT_MAX] = {
	    [CP_REJECT_INFLIGHT_LIMIT] = "inflight_limit",
	    [CP_REJECT_POOL_EMPTY] = "pool_empty",
	    [CP_REJECT_TOO_LARGE] = "too_large",
	    [CP_REJECT_RING_FULL] = "ring_full",
	    [CP_REJECT_SHEDDING] = "shedding",
	    [CP_REJECT_STREAMS] = "stream_slots",
	    [CP_REJECT_NOT_FOUND] = "not_found",
	    [CP_REJECT_MEMORY] = "reply_memory",
	    [CP_REJECT_DRAINING] = "draining",
	    [CP_REJECT_REQUEST_MEMORY] = "request_memory",
	    [CP_REJECT_MEMORY_BUDGET] = "memory_budget",
	};

	return (unsigned)r < CP_REJECT_MAX ? names[r] : "unknown";
}

static const char *
reject_key(unsigned k)
{
	return cp_reject_name((enum cp_reject)k);
}

static const char *
auth_key(unsigned k)
{
	return k == 0 ? "unauthenticated" : "permission_denied";
}

#define ROW(field) DP_STAT_FIELD(struct cp_fe_stats, field)

const struct dp_stat_desc cp_fe_stats_desc[] = {
    {.metric = "corepipe_grpc_streams_active",
     .rpc = "streams", /* GetStats' own call included */
     .help = "gRPC calls (HTTP/2 streams) in progress on the server.",
     .type = DP_STAT_GAUGE,
     ROW(live_calls)},
    {.rpc = "answered", ROW(answered)},
    {ROW(inline_runs)},
    {ROW(handed_over)},
    {.rpc = "pipeline_streams", ROW(streams_open)},
    /* Followed by the workers' skips (deadline, cancelled and their _running kinds):
     * metrics_http.c and rpc_admin.c add them to this family. */
    {.metric = "corepipe_rejected_total",
     .key = "reason",
     .key_name = reject_key,
     .help = "Requests refused or skipped before a worker ran them, by reason.",
     ROW(rejected)},
    {.metric = "corepipe_auth_failures_total",
     .key = "reason",
     .key_name = auth_key,
     .help = "Calls refused by bearer-token authentication, by reason.",
     ROW(auth_failures)},
    {.metric = "corepipe_grpc_reply_bytes_held",
     .help = "Reply bytes packed and not yet sent (stream responses their clients have not "
	     "read included), over every front end; each is bounded by "
	     "server.max_response_bytes.",
     .type = DP_STAT_GAUGE,
     ROW(resp_bytes)},
    {ROW(waits)},
    {.metric = "corepipe_grpc_calls_cancelled_at_grace_total",
     .help = "Calls still open when the shutdown grace (server.shutdown_grace_ms) ended.",
     ROW(grace_cancelled)},
    {.metric = "corepipe_grpc_client_cancels_total",
     .help = "Calls the client cancelled (RST_STREAM, deadline, disconnect) before their "
	     "answer.",
     ROW(client_cancels)},
    /* Not exported: /metrics' corepipe_grpc_connections_closed_total reads the listeners'. */
    {ROW(conns_closed_abuse)},
    {.metric = "corepipe_memory_estimated_bytes",
     .rpc = "memory_in_use_bytes",
     .help = "Estimated peak memory of the requests handed to workers now (admission "
	     "estimate).",
     .type = DP_STAT_GAUGE,
     ROW(mem_in_use)},
    {.metric = "corepipe_grpc_stream_buffer_waits_total",
     .help = "Stream frames that waited unrun for their payload buffers (a pool class empty) "
	     "instead of failing; each runs once the buffers are back.",
     ROW(buffer_waits)},
};

const unsigned cp_fe_stats_n_desc = sizeof(cp_fe_stats_desc) / sizeof(cp_fe_stats_desc[0]);

#undef ROW

void
cp_fe_stats_sum(const struct cp_server *srv, struct cp_fe_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < srv->n_fe; i++)
		dp_stat_sum(cp_fe_stats_desc, cp_fe_stats_n_desc, out, &srv->fe[i]->st);
}

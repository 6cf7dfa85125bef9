/**
 * @file
 * gRPC calls answered, by service, method and status code: the counters behind
 * grpc_server_handled_total (the name and labels of the official gRPC Prometheus
 * interceptors), for every call the server answers: Pipeline, Admin and Health RPCs,
 * validation errors, authentication failures and unknown methods alike.
 *
 * Each thread that answers calls (each front end, the control thread) gets its own shard of
 * counters on first use and is its only writer (a relaxed load and store, no read-modify-write, no
 * shared cache line); a scrape sums the shards with relaxed loads. Threads beyond
 * CP_RPC_STATS_SHARDS share one shard with atomic adds, so no count is ever lost.
 *
 * Methods are identified by their path string's address (the method tables' static strings):
 * the hook costs a short pointer scan. Unregistered methods (client-chosen paths) are counted
 * together as service "unknown", method "unknown", so a client cannot grow the label set.
 *
 * Context: cp_rpc_stats_handled on any thread; reads on any thread. Ownership: static state.
 */
#ifndef COREPIPE_CP_RPC_STATS_H
#define COREPIPE_CP_RPC_STATS_H

#include <grpc/grpc.h>
#include <stdbool.h>
#include <stdint.h>

/** Methods counted separately (more are counted as "unknown"). */
#define CP_RPC_STATS_METHODS 32
/** Threads with a shard of their own. */
#define CP_RPC_STATS_SHARDS 16
/** gRPC status codes 0..16. */
#define CP_RPC_STATS_CODES 17

/**
 * Make @p path known (so a scrape shows it at zero before its first call). @p path must be a
 * string that lives as long as the process (a method table's). Idempotent.
 */
void cp_rpc_stats_register(const char *path, bool streaming);

/**
 * Count one answered call of @p path (NULL: an unregistered method) with @p code.
 * Context: any thread; the hook where a call's final status is sent.
 */
void cp_rpc_stats_handled(const char *path, bool streaming, grpc_status_code code);

/** One series of the sum over all shards. */
typedef void (*cp_rpc_stats_fn)(const char *service, const char *method, const char *type,
				grpc_status_code code, uint64_t count, void *arg);

/**
 * Call @p fn for every known method with code OK (even at zero) and for every other code whose
 * count is not zero, in method order then code order.
 */
void cp_rpc_stats_for_each(cp_rpc_stats_fn fn, void *arg);

/** Sum over all codes for @p path (tests, GetStats-style checks). */
uint64_t cp_rpc_stats_total(const char *path);

#endif

/**
 * @file
 * What the pollers of one lcore share: its identity and roles, the registry and pools it reads,
 * its metrics block (one writer: this lcore), its event count, and its load-shedding state.
 *
 * Every lcore of corepiped runs one reactor (reactor.h) with some of these pollers: a gRPC front
 * end (control/frontend.h), pipeline work (worker.h), UDP port queues (udp.h) and control work.
 * They never reach into each other's state; what they have in common is a struct dp_lcore.
 *
 * Context: set up on the main lcore before launch; read-only afterwards except the fields
 * marked otherwise. Ownership: the dataplane (dataplane.h) owns lcores.
 */
#ifndef COREPIPE_DP_LCORE_H
#define COREPIPE_DP_LCORE_H

#include "dataplane/metrics.h"
#include "dataplane/pool.h"
#include "dataplane/registry.h"
#include "dataplane/wake.h"

#include <rte_common.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/** What an lcore does (bits of dp_lcore.roles). */
enum dp_role {
	DP_ROLE_FRONTEND = 1u << 0, /**< serves gRPC from a completion queue of its own */
	DP_ROLE_WORKER = 1u << 1,   /**< runs pipeline work (every lcore does) */
	DP_ROLE_UDP = 1u << 2,	    /**< polls UDP port queues */
	DP_ROLE_CONTROL = 1u << 3,  /**< control work: ticks, drain, reload results */
};

/** "frontend+worker+control" for @p roles, into @p buf. @return buf. */
const char *dp_role_names(unsigned roles, char *buf, size_t len);

struct dp_lcore {
	/* Read-only after set-up. */
	unsigned index;	 /**< 0..n-1: front-end lcores first, the main lcore is 0 */
	unsigned lcore;	 /**< EAL lcore id */
	unsigned cpu;	 /**< the CPU it is pinned to */
	int socket;	 /**< NUMA socket */
	unsigned roles;	 /**< enum dp_role bits */
	uint64_t tsc_hz; /**< rte_get_tsc_hz() */
	struct dp_registry *reg;
	const struct dp_pools *pools;
	struct dp_metrics *met; /**< per-pipeline counters and histograms: this lcore writes */

	/** Bumped by whoever hands this lcore work from another lcore (front ends, UDP
	 * hand-offs); a worker lcore sleeps on it. */
	struct dp_wake wake;

	/* Written by this lcore only; read by anyone (relaxed). */
	alignas(RTE_CACHE_LINE_SIZE) atomic_bool shedding; /**< refusing new unary work */
	atomic_uint pushback_ms; /**< retry hint for refused work, from its own backlog */
};

#endif

/**
 * @file
 * The request descriptor handed between the control plane and a worker.
 *
 * A struct dp_req comes from the dataplane's descriptor mempool. A front end fills the "in"
 * part, including a payload buffer, and either runs it itself or hands it over a link; from
 * then on the worker owns it until it puts it on the link's `done` ring; then the front end
 * owns it again, answers the call, and frees buffer and descriptor. Exactly one thread owns a
 * descriptor at any time, and the rings' release/acquire ordering is what hands it over, so its
 * fields need no atomics.
 *
 * Context: any. Ownership: as above; dp_req_free() releases everything a descriptor holds.
 */
#ifndef COREPIPE_DP_REQ_H
#define COREPIPE_DP_REQ_H

#include "dataplane/node.h"
#include "dataplane/pipeline.h"
#include "dataplane/stream.h"

#include <rte_common.h>
#include <stdatomic.h>
#include <stdint.h>

/** Request priorities (metadata corepipe-priority): the order of the bulk lanes' work. */
enum dp_prio {
	DP_PRIO_HIGH = 0,
	DP_PRIO_NORMAL = 1, /**< the default */
	DP_PRIO_LOW = 2,    /**< always the bulk lane, after high and normal work */
	DP_PRIO_MAX = 3,
};

struct dp_req {
	/* In: written by the submitter before submit, read-only for the worker. */
	void *cookie;		      /**< submitter's context (a cp_work), opaque here */
	struct dp_pipeline *pipeline; /**< owned reference for inline pipelines, else NULL */
	uint64_t deadline_tsc;	      /**< rte_rdtsc() value after which it is not run; 0: none */
	uint64_t submit_tsc;	      /**< when it was submitted */
	uint64_t est_cycles;	      /**< estimated cost (the front end's link accounting) */
	uint64_t mem_est;	      /**< estimated memory (the front end's budget accounting) */
	/** Set by the submitter's side when nobody waits for the answer any more (client cancel,
	 * deadline); NULL if that cannot happen. The flag outlives the descriptor's answer. */
	const atomic_bool *cancelled;
	struct dp_stream *stream; /**< stream slot: its pipeline and node state; else NULL */
	uint64_t seq;		  /**< frame number within the stream */
	uint8_t run_flags;	  /**< DP_RUN_FRAME (0) or DP_RUN_FLUSH (pipeline.h) */
	uint8_t owns_stream;	  /**< dp_req_free closes the slot (stateful unary request) */
	uint8_t prio;		  /**< DP_PRIO_* (corepipe-priority metadata) */
	uint32_t hash;		  /**< dp_name_hash(name) when pipeline is NULL */
	char name[DP_NAME_MAX];	  /**< registered pipeline name when pipeline is NULL */

	/* The worker's, while the request waits or runs in its bulk lane (worker.h). */
	struct dp_req *next;  /**< next in the worker's bulk FIFO */
	struct dp_link *link; /**< the link it came on and goes back on */

	/* In/out: payload buffer and its format; the worker replaces them with the output. */
	struct dp_buf *buf;
	struct dp_format fmt;
	/** Buffers its nodes take, taken before submit (dp_req_take_kit), linked through
	 * dp_buf.next; the nodes take from here first, dp_req_free returns what is left. */
	struct dp_buf *kit;

	/* Out: written by the worker. */
	uint16_t status; /**< enum dp_status */
	uint16_t worker; /**< index of the worker that ran it */
	uint64_t dp_ns;	 /**< time spent running nodes */
	struct dp_result res;
} __rte_cache_aligned;

#endif

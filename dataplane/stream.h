/**
 * @file
 * Stream slots: the per-stream state of a stateful pipeline, in the memory of the worker the
 * stream is bound to.
 *
 * Each worker has a mempool of slots (dataplane.conf.max_streams_per_worker of them, on the
 * worker's NUMA socket), so "max open streams per worker" is the slot count and opening a
 * stream never calls malloc. A slot holds the pipeline reference the stream opened with (so a
 * replace or delete of the name does not affect it), the input format fixed by the first frame,
 * and the node state area laid out by dp_pipeline_compile(). A unary request on a stateful
 * pipeline uses a slot too, for the duration of the request.
 *
 * Life: dp_stream_open (control) -> dp_stream_init at the first frame (control: runs each
 * stateful node's init(), which may allocate inside a library, e.g. libsoxr) -> frames run on
 * the bound worker -> dp_stream_close (control: fini() each node, drop the pipeline, return
 * the slot) once no frame of the stream is in flight.
 *
 * Context: control threads; the worker only reads p/state through a descriptor it owns.
 * Ownership: dp_stream_open's caller owns the slot until dp_stream_close; while a descriptor
 * that points at it is in flight, the worker uses the state and nobody else touches it (the
 * rings' release/acquire orders the hand-offs).
 */
#ifndef COREPIPE_DP_STREAM_H
#define COREPIPE_DP_STREAM_H

#include "dataplane/pipeline.h"

#include <rte_common.h>
#include <rte_mempool.h>
#include <stdalign.h>
#include <stdint.h>

struct dp_dataplane;

struct dp_stream {
	struct rte_mempool *mp; /**< the worker's slot pool it returns to */
	struct dp_pipeline *p;	/**< reference held for the stream's life */
	struct dp_format in;	/**< input format; kind ANY until dp_stream_init */
	uint16_t worker;	/**< index of the worker it is bound to */
	uint16_t n_inited;	/**< nodes whose init() ran (for fini/unwind) */
	/** Frames of this stream waiting or running in its worker's bulk lane; later frames
	 * queue behind them, so frames run in order. Written only by that worker. */
	uint32_t deferred;
	alignas(RTE_CACHE_LINE_SIZE) uint8_t state[DP_STATE_MAX];
};

/**
 * Bind a stream of pipeline @p p to a worker and take a slot there. @p worker < 0 picks the
 * worker with the most free slots (then the fewest requests in flight) among @p allowed
 * (bit i = worker i).
 * @return 0 with *out set (a new reference on @p p is held), or -ENOSPC when every allowed
 * worker's slots are taken.
 * Context: control thread.
 */
int dp_stream_open(struct dp_dataplane *dp, struct dp_pipeline *p, int worker, uint64_t allowed,
		   struct dp_stream **out);

/**
 * Fix the stream's input format and run init() of each stateful node with its own input
 * format (inferred through the pipeline from @p in).
 * @return 0, or -EINVAL/-ENOMEM with @p err naming the node; the nodes already initialised
 * are released again.
 * Context: control thread, before the first frame is submitted.
 */
int dp_stream_init(struct dp_stream *s, const struct dp_format *in, struct dp_err *err);

/** Reset every stateful node to its just-initialised state. Context: owner, none in flight. */
void dp_stream_reset(struct dp_stream *s);

/**
 * fini() the nodes and drop the pipeline reference, keeping the memory (for a struct
 * dp_stream the caller placed itself, as the unit tests do: set p (with a reference of its
 * own) and n_inited = 0, then dp_stream_init/run/dp_stream_fini).
 */
void dp_stream_fini(struct dp_stream *s);

/** fini() the nodes, drop the pipeline reference, return the slot. Accepts NULL. */
void dp_stream_close(struct dp_stream *s);

/** Slots in use on worker @p worker (open streams plus stateful unary requests running). */
unsigned dp_stream_count(const struct dp_dataplane *dp, unsigned worker);

#endif

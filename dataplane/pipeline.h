/**
 * @file
 * Pipelines: a spec (names and strings) compiled into an immutable chain of nodes, and the
 * runner that pushes one buffer through it on a worker.
 *
 * A compiled struct dp_pipeline never changes after dp_pipeline_compile() returns. It is
 * shared by reference: the registry holds one reference while the pipeline is published, an
 * inline (per-request) pipeline is held by its request, and (later) a stream holds one for its
 * life. A worker that found a pipeline in the registry uses it without a reference until its
 * next RCU quiescent state.
 *
 * Context: compile/destroy/ref on the control plane; dp_pipeline_run on a worker (hot path).
 * Ownership: dp_pipeline_compile returns a pipeline with one reference, owned by the caller;
 * dp_pipeline_unref drops one and frees on the last. The pipeline owns a deep copy of its spec.
 */
#ifndef COREPIPE_DP_PIPELINE_H
#define COREPIPE_DP_PIPELINE_H

#include "dataplane/node.h"
#include "dataplane/status.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <urcu-qsbr.h> /* before rculfhash.h: selects the QSBR flavour */
#include <urcu/rculfhash.h>

/** Longest pipeline name, with its NUL. Names match [A-Za-z0-9_.-]{1,63}. */
#define DP_NAME_MAX 64
/** Default limit on nodes per pipeline (configurable up to DP_NODES_HARD_MAX). */
#define DP_NODES_DEFAULT_MAX 32
#define DP_NODES_HARD_MAX    256
/** Limits on parameters: count per node and text lengths. */
#define DP_PARAMS_MAX	  16
#define DP_PARAM_TEXT_MAX 256
/**
 * Most bytes of text in one spec: its name, node types, parameter keys and values added up.
 * Bounds what a stored pipeline costs and what one GetPipeline or ListPipelines entry carries
 * (the 16-parameter, 256-byte limits alone would allow 1 MiB for a 256-node pipeline).
 */
#define DP_SPEC_BYTES_MAX 16384

/** One parameter of a node spec. */
struct dp_param {
	char *key;
	char *value;
};

/** One node of a spec. */
struct dp_node_spec {
	char *type;
	unsigned n_params;
	struct dp_param *params;
};

/** A pipeline as a user wrote it. Plain C: protobuf types never enter the dataplane. */
struct dp_spec {
	char *name;
	unsigned n_nodes;
	struct dp_node_spec *nodes;
};

/** Do two specs describe the same pipeline (same nodes, types and parameters, in order)? */
bool dp_spec_equal(const struct dp_spec *a, const struct dp_spec *b);

/** Deep-copy a spec. @return the copy, or NULL with errno ENOMEM. Free with dp_spec_free. */
struct dp_spec *dp_spec_dup(const struct dp_spec *s);

/** Free a spec made by dp_spec_dup() or by a builder using malloc'd strings. Accepts NULL. */
void dp_spec_free(struct dp_spec *s);

/**
 * Check @p spec against the bounds every pipeline has, before anything is allocated for it:
 * 1..@p max_nodes nodes, each with a type, at most DP_PARAMS_MAX parameters per node, no key
 * twice in a node, keys and values shorter than DP_PARAM_TEXT_MAX, and at most
 * DP_SPEC_BYTES_MAX bytes of text in all. The work is bounded by those limits whatever the
 * spec holds (string lengths are measured with strnlen).
 * @return 0, or -EINVAL with @p err (INVALID_ARGUMENT, naming the node and parameter).
 * Context: any.
 */
int dp_spec_check(const struct dp_spec *spec, unsigned max_nodes, struct dp_err *err);

/** Bytes of text in @p s (name, types, keys, values), as dp_spec_check() counts them. */
size_t dp_spec_bytes(const struct dp_spec *s);

/** Is @p name a valid pipeline name? */
bool dp_pipeline_name_valid(const char *name);

/** A node as compiled: its type and parsed parameters. */
struct dp_node_inst {
	const struct dp_node_type *type;
	void *conf;	    /**< type->conf_size bytes, or NULL */
	uint32_t state_off; /**< offset of this node's state in a stream's state area */
};

/** Most bytes of node state one stream (or stateful unary request) may need. */
#define DP_STATE_MAX 4096

/** dp_pipeline_run() flags. Every run processes x->buf through every node (a frame). */
#define DP_RUN_FRAME 0u	       /**< just the frame (named for readability at call sites) */
#define DP_RUN_FLUSH (1u << 0) /**< end of input: then each stateful node's flush() */

/** A compiled, immutable pipeline. */
struct dp_pipeline {
	/* Registry linkage: written by the registry before publication, then read-only. */
	struct cds_lfht_node node; /**< in the registry's hash table */
	struct rcu_head rcu;	   /**< deferred unref after unpublish */
	uint32_t hash;		   /**< dp_name_hash(name) */
	uint32_t id;		   /**< registry id, 0 for inline pipelines */
	uint64_t version;	   /**< registry version, 0 for inline pipelines */
	char name[DP_NAME_MAX];

	atomic_uint refcnt;
	struct dp_spec *spec;	   /**< owned deep copy, for GetPipeline */
	struct dp_format out_hint; /**< output format as far as known at compile time */
	uint32_t state_size;	   /**< bytes of node state per stream; 0: stateless pipeline */
	bool from_file;		   /**< published from the config file (reload owns it) */
	unsigned n_nodes;
	struct dp_node_inst nodes[];
};

/**
 * Compile @p spec: the bounds of dp_spec_check() (checked first, before any allocation),
 * every node type known, every parameter known and valid, required ones present, and the type
 * flow between nodes consistent.
 *
 * @return the pipeline with one reference, or NULL with @p err set: INVALID_ARGUMENT with a
 * message naming the node index, type and parameter ("node 2 (gain): param db: not a number:
 * 'loud'"), or RESOURCE_EXHAUSTED when memory ran out.
 * Context: control plane. Ownership: the spec is copied; the caller keeps @p spec.
 */
struct dp_pipeline *dp_pipeline_compile(const struct dp_spec *spec, unsigned max_nodes,
					struct dp_err *err);

/** Take a reference. Context: any. */
static inline void
dp_pipeline_ref(struct dp_pipeline *p)
{
	atomic_fetch_add_explicit(&p->refcnt, 1, memory_order_relaxed);
}

/**
 * Drop a reference; the last one frees the pipeline. Accepts NULL.
 * Context: any thread that does not run nodes of @p p afterwards.
 */
void dp_pipeline_unref(struct dp_pipeline *p);

/**
 * Estimated peak payload memory of one run of @p p over @p len input bytes of format @p in:
 * the largest input + output of any node (every node is assumed to take a new buffer), sizes
 * scaled through the pipeline by the formats (sample size x channels x rate; a field not known
 * counts as unchanged), an expanding node's output counted at dp_node_max_message_bytes.
 * A pipeline whose formats do not check counts 2 x @p len. Context: any.
 */
uint64_t dp_pipeline_mem_estimate(const struct dp_pipeline *p, const struct dp_format *in,
				  uint32_t len);

/**
 * The buffers @p p's nodes take (dp_node_type.out_bytes) when they run over the input @p data
 * (@p len bytes in format @p in; NULL: any input of that length): one size per node that does not
 * work in place, in node order, each at most @p pool_max (the largest buffer; a node never takes
 * more). The end of a stream (flush) is not planned: what a flush appends is taken as it runs.
 * @return how many sizes were written to @p sizes (0..@p max), or -E2BIG (more than @p max)
 * or -EINVAL (the formats do not check: the run will fail on its own).
 * Context: any (pure); @p p referenced by the caller.
 */
int dp_pipeline_out_plan(const struct dp_pipeline *p, const struct dp_format *in, uint32_t len,
			 const uint8_t *data, uint32_t pool_max, uint32_t *sizes, unsigned max);

/**
 * Both of the above for one stream frame, from one inference of the formats: the memory
 * estimate into *@p mem (dp_pipeline_mem_estimate's value) and the buffer sizes into @p sizes
 * (dp_pipeline_out_plan's return). Context: any (pure); @p p referenced by the caller.
 */
int dp_pipeline_frame_plan(const struct dp_pipeline *p, const struct dp_format *in, uint32_t len,
			   const uint8_t *data, uint32_t pool_max, uint64_t *mem, uint32_t *sizes,
			   unsigned max);

/** Hash of a pipeline name (CRC-32C via rte_hash_crc), as used by the registry. */
uint32_t dp_name_hash(const char *name, size_t len);

/**
 * Run @p p over x->buf (format x->fmt). On return x->buf is the output (possibly a different
 * buffer) and x->fmt its format, or the status is not DP_OK and x->res->err says why; x->buf
 * is always a valid buffer owned by the caller.
 *
 * @p state is the stream's state area (p->state_size bytes, initialised by dp_stream_init)
 * and must be non-NULL exactly when the pipeline is stateful. Every node's process() runs on
 * x->buf; with DP_RUN_FLUSH each stateful node then appends what it holds, which the later
 * nodes process. A stream's end is DP_RUN_FLUSH over an empty buffer in the stream's input
 * format; a unary request on a stateful pipeline is DP_RUN_FLUSH over its input.
 *
 * Context: worker lcore, hot path; @p p valid until the caller's next quiescent state (or
 * referenced).
 */
int dp_pipeline_run(const struct dp_pipeline *p, struct dp_exec *x, void *state, unsigned flags);

/**
 * Resumable execution state of one request (the bulk lane's running slot): which node runs,
 * how far it got, and that node's slice state. Zero it (dp_run_init) before the first step.
 */
struct dp_run {
	uint16_t node;	   /**< node in progress */
	uint8_t in_slice;  /**< that node's slice state is live (abandon must release it) */
	uint8_t checked;   /**< the run's input format was checked */
	uint32_t pos;	   /**< input bytes of that node already handled */
	uint32_t node_len; /**< that node's input length */
	alignas(16) uint8_t sl[DP_SLICE_MAX];
};

static inline void
dp_run_init(struct dp_run *r)
{
	r->node = 0;
	r->in_slice = 0;
	r->checked = 0;
	r->pos = 0;
	r->node_len = 0;
}

/** Input bytes handled per slice call in dp_pipeline_step(). */
#define DP_SLICE_BYTES 8192

/**
 * Advance a resumable run of @p p over x->buf until it ends or rte_rdtsc() passes @p end_tsc
 * (checked after every slice of DP_SLICE_BYTES input bytes and after every node). Nodes
 * with a slice() hook run in slices; others run whole (process()).
 * Flags and state as dp_pipeline_run(); the output equals dp_pipeline_run()'s.
 * @return DP_PENDING (call again with the same @p x and @p r), DP_OK, or the failure status
 * (x->res->err says why). Context: as dp_pipeline_run(); @p p referenced by the caller.
 */
int dp_pipeline_step(const struct dp_pipeline *p, struct dp_exec *x, void *state, unsigned flags,
		     struct dp_run *r, uint64_t end_tsc);

/**
 * Abandon a run that returned DP_PENDING: the node in progress releases its slice state;
 * x->buf stays a valid buffer owned by the caller. Context: as dp_pipeline_step().
 */
void dp_pipeline_step_abort(const struct dp_pipeline *p, struct dp_exec *x, struct dp_run *r);

/**
 * dp_pipeline_run() with every node's output bounded by @p out_max bytes (x->out_max; 0: only
 * the largest buffer class): a node that would take a larger buffer fails with OUT_OF_RANGE
 * before doing the work (zstd_decompress stops inflating at the bound).
 * Context: as dp_pipeline_run().
 */
int dp_pipeline_run_capped(const struct dp_pipeline *p, struct dp_exec *x, void *state,
			   unsigned flags, uint32_t out_max);

/**
 * Output format of every node for the concrete input @p in: fmts[i] is node i's input, and
 * fmts[n_nodes] the pipeline's output.
 * @return 0, or -EINVAL with @p err (a node cannot take that format).
 * Context: control plane.
 */
int dp_pipeline_formats(const struct dp_pipeline *p, const struct dp_format *in,
			struct dp_format *fmts, struct dp_err *err);

#endif

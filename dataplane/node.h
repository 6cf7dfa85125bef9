/**
 * @file
 * The node interface: what a node type provides, and the execution context it works in.
 *
 * A node type is one file, dataplane/nodes/<name>.c, that defines
 * `const struct dp_node_type dp_node_<name>` with .name = "<name>", and one row in the node
 * table, dataplane/node_table.c (in name order; test-only types say so there): nothing
 * registers itself at start, and nothing else in the tree names the type. The Makefile picks
 * the file up by its directory; tests/unit/dataplane/test_node_table.c fails until the row is
 * there. The control plane compiles a node's string parameters once (compile), checks the type
 * flow (infer), and workers call process() per buffer. Parameters are parsed only at compile time,
 * into the node's conf struct, so process() never parses text.
 *
 * Stateful nodes (a resampler, a VAD) also declare state_size and the init/flush/reset/fini
 * hooks. Their state lives in a stream's slot (dataplane/stream.h), one per stream (or one per
 * unary request), in the memory of the worker the stream is bound to: init() fills it when the
 * stream's first frame fixes the input format, process() carries it from frame to frame,
 * flush() emits what it still holds when the input ends, fini() releases what init() took.
 * Stateless nodes leave all of it zero/NULL and pay nothing: the runner only looks at a node's
 * state when the pipeline has any.
 *
 * Context: compile/infer/init/reset/fini on control threads; process/flush on a worker lcore
 * (hot path: no locks, syscalls or logging; allocation only inside a library's state that
 * init() created, see resample.c). Ownership: conf memory is allocated and freed by the
 * pipeline module, state memory by the stream module; hooks own nothing beyond the call
 * except what init() stores in the state, which fini() releases.
 */
#ifndef COREPIPE_DP_NODE_H
#define COREPIPE_DP_NODE_H

#include "dataplane/pool.h"
#include "dataplane/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Most annotations one request can carry. */
#define DP_ANNOT_MAX 8
/** Longest annotation key, with its NUL. */
#define DP_ANNOT_KEY_MAX 24
/** Longest annotation value, with its NUL. */
#define DP_ANNOT_VAL_MAX 72

/** One key/value annotation produced by a node (e.g. "crc32c" = "e3069283"). */
struct dp_annot {
	char key[DP_ANNOT_KEY_MAX];
	char val[DP_ANNOT_VAL_MAX];
};

/** Results a node writes besides the payload. Lives in the request descriptor. */
struct dp_result {
	uint8_t n_annot;
	struct dp_annot annot[DP_ANNOT_MAX];
	struct dp_err err; /**< set when a node fails */
};

/** Parameter description, published by Admin/ListNodeTypes. */
struct dp_param_def {
	const char *name;
	const char *summary;
	bool required;
	const char *default_value; /**< NULL when required */
};

/** Input kinds a node accepts (bit mask); checked by the runner before process(). */
#define DP_ACCEPT_BYTES (1u << 0)
#define DP_ACCEPT_S16	(1u << 1)
#define DP_ACCEPT_F32	(1u << 2)
#define DP_ACCEPT_AUDIO (DP_ACCEPT_S16 | DP_ACCEPT_F32)
#define DP_ACCEPT_ANY	(DP_ACCEPT_BYTES | DP_ACCEPT_AUDIO)

struct dp_exec;

struct dp_node_spec;
struct dp_node_type;

/**
 * A node's parameters during compile(): filled in by the pipeline compiler (pipeline.c), read by
 * nodes only through dp_node_arg*() below.
 */
struct dp_node_args {
	const struct dp_node_type *type;
	const struct dp_node_spec *spec;
};

/** Looks up a parameter's value during compile(); returns the default for unset optionals. */
const char *dp_node_arg(const struct dp_node_args *args, const char *name);

/**
 * Parameter parsers for compile(): the whole text must be a number in [min, max] (or one of
 * @p choices). @return 0, or -EINVAL with @p err = "param NAME: what is wrong".
 */
int dp_node_arg_double(const struct dp_node_args *args, const char *name, double min, double max,
		       double *out, struct dp_err *err);
int dp_node_arg_u64(const struct dp_node_args *args, const char *name, uint64_t min, uint64_t max,
		    uint64_t *out, struct dp_err *err);
int dp_node_arg_choice(const struct dp_node_args *args, const char *name,
		       const char *const *choices, unsigned n_choices, unsigned *out,
		       struct dp_err *err);

/**
 * Largest message the server accepts (server.max_message_bytes), the default bound of nodes
 * that expand their input (zstd_decompress). Set by the control plane before compiling.
 */
extern uint32_t dp_node_max_message_bytes;

/** A node type. */
struct dp_node_type {
	const char *name;    /**< [a-z0-9_]+, unique */
	const char *summary; /**< one line, for ListNodeTypes and docs */
	const struct dp_param_def *params;
	unsigned n_params;
	uint32_t accepts; /**< DP_ACCEPT_* */
	size_t conf_size; /**< bytes of compiled parameters (0: none) */

	/**
	 * Parse parameters into @p conf (zeroed, conf_size bytes). Unknown and missing
	 * required parameters are rejected before this is called.
	 * @return 0, or -EINVAL with @p err saying "param NAME: what is wrong" (the caller
	 * prefixes the node index and type). NULL when the node has no parameters.
	 * Context: control thread.
	 */
	int (*compile)(void *conf, const struct dp_node_args *args, struct dp_err *err);

	/**
	 * Output format for input @p in (fields may be ANY = not known until run time).
	 * NULL means "output format = input format". @return 0 or -EINVAL with @p err.
	 * Context: control thread.
	 */
	int (*infer)(const void *conf, const struct dp_format *in, struct dp_format *out,
		     struct dp_err *err);

	/**
	 * Process the buffer in @p x. In-place nodes edit x->buf; nodes whose output differs
	 * in size take a new buffer with dp_exec_swap_out().
	 * @return DP_OK, or a status set with dp_exec_fail().
	 * Context: worker lcore, hot path.
	 */
	int (*process)(const void *conf, struct dp_exec *x);

	/**
	 * The largest buffer process() (or slice()) takes for an input of @p len bytes in
	 * format @p in (concrete), the same size the node asks dp_exec_take_out() for; 0 when
	 * it works in place. @p data is the input when known (the first node's), else NULL
	 * (size it for any input of that length). NULL hook: always in place. A stream frame's
	 * buffers are taken before it is submitted, from these sizes (dp_pipeline_out_plan,
	 * dp_req_take_kit), so a frame that runs has them. Context: any (pure).
	 */
	uint64_t (*out_bytes)(const void *conf, const struct dp_format *in, uint64_t len,
			      const uint8_t *data);

	/* ---- Stateful nodes only (all zero/NULL for stateless ones) ---- */

	/** The output may be much larger than the input, up to dp_node_max_message_bytes
	 * (zstd_decompress): the memory estimate counts that bound (dp_pipeline_mem_estimate). */
	bool expands;

	/** Bytes of per-stream state (0: stateless). The runner passes it as x->state. */
	size_t state_size;

	/**
	 * Initialise @p state (state_size zeroed bytes) for input format @p in (concrete).
	 * @return 0, or -EINVAL/-ENOMEM with @p err ("rate 0 not supported", "out of memory").
	 * Context: control thread, before the first frame is submitted.
	 */
	int (*init)(const void *conf, void *state, const struct dp_format *in, struct dp_err *err);

	/**
	 * End of input: append whatever the state still holds to x->buf (which holds this node's
	 * output for the last input, possibly empty). NULL: nothing is ever held back.
	 * @return DP_OK or a status set with dp_exec_fail(). Context: worker lcore.
	 */
	int (*flush)(const void *conf, void *state, struct dp_exec *x);

	/**
	 * Return @p state to what init() left, for reuse on a new signal with the same format.
	 * Context: the thread that owns the state at that moment (no frame in flight).
	 */
	void (*reset)(const void *conf, void *state);

	/** Release what init() acquired. NULL: nothing to release. Context: control thread. */
	void (*fini)(const void *conf, void *state);

	/* ---- Resumable nodes only (NULL: process() always runs whole) ---- */

	/**
	 * Process x->buf in slices, for the bulk lane (docs/ARCHITECTURE.md, "Fair execution"):
	 * continue from input byte *@p pos (0 on the first call for this buffer, when @p sl, a
	 * DP_SLICE_MAX-byte area, has been zeroed), handle about @p budget more input bytes
	 * (at least one, at most what is left) and advance *@p pos by what was handled. x->buf
	 * is this node's input and is not touched by anyone else between calls; the node keeps
	 * its progress (an output buffer it took, a hash state) in @p sl.
	 * @return DP_PENDING (more to do), DP_OK (done: x->buf and x->fmt are the output, as
	 * process() would leave them, byte for byte, whatever the budgets were), or a failure
	 * set with dp_exec_fail() after releasing what @p sl holds.
	 * Context: worker lcore, hot path.
	 */
	int (*slice)(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget);

	/** The run was abandoned between slices (deadline, cancel): release what @p sl holds.
	 * NULL: it holds nothing. Context: worker lcore. */
	void (*slice_abort)(const void *conf, void *sl);
};

/** Not a status: dp_node_type.slice / dp_pipeline_step have more to do. */
#define DP_PENDING 0x100

/** Bytes of a node's slice state (dp_node_type.slice). */
#define DP_SLICE_MAX 192

/** Most sliced runs one lcore holds at once: the running one and those parked by newer work of
 * a higher priority (worker.c, one per priority). A node whose slices use an lcore-wide library
 * context (zstd) keeps this many and gives each run its own. */
#define DP_SLICE_RUNS_MAX 3

/**
 * Claim one of a node's DP_SLICE_RUNS_MAX per-lcore contexts for a sliced run: @p busy has a bit
 * per context (bit i: context i holds a run). @return the slot, 1..DP_SLICE_RUNS_MAX (context
 * slot - 1), or 0 when every context holds a run. Context: the lcore that owns @p busy.
 */
static inline uint8_t
dp_slice_slot_take(uint8_t *busy)
{
	for (unsigned i = 0; i < DP_SLICE_RUNS_MAX; i++)
		if (!(*busy & (1u << i))) {
			*busy |= (uint8_t)(1u << i);
			return (uint8_t)(i + 1);
		}
	return 0;
}

/** Give back the context of @p *slot (taken by dp_slice_slot_take) and clear it. */
static inline void
dp_slice_slot_give(uint8_t *busy, uint8_t *slot)
{
	*busy &= (uint8_t) ~(1u << (*slot - 1));
	*slot = 0;
}

/** Execution state of one payload going through a pipeline on a worker. */
struct dp_exec {
	struct dp_buf *buf;	      /**< current payload, owned by the runner */
	struct dp_format fmt;	      /**< what buf holds */
	const struct dp_pools *pools; /**< where replacement buffers come from */
	struct dp_result *res;	      /**< annotations and error */
	unsigned node_idx;	      /**< node being run, for error messages */
	const char *node_name;
	void *state; /**< this node's stream state (stateful nodes), else NULL */
	/** Most bytes any node may output (0: the largest buffer class). Set by the runner
	 * (dp_pipeline_run_capped): the UDP front end bounds every node by what its answer may
	 * carry, so a small datagram cannot make a worker produce (inflate) much more. */
	uint32_t out_max;
	/** The stream's end (DP_RUN_FLUSH): the input may be empty, and a node that needs input
	 * (a decompressor) passes nothing through instead of failing. */
	bool flushing;
	/** Buffers taken for this run before it started (the request's kit, linked through
	 * dp_buf.next), or NULL: dp_exec_take_out() takes the smallest that fits from here
	 * before it tries the pools. */
	struct dp_buf **kit;
};

/**
 * Set every field of @p x for a run over @p buf (format @p fmt), taking buffers from @p pools
 * (after @p kit's, when not NULL) and recording into @p res. Context: any.
 */
static inline void
dp_exec_init(struct dp_exec *x, struct dp_buf *buf, const struct dp_format *fmt,
	     const struct dp_pools *pools, struct dp_result *res, struct dp_buf **kit)
{
	x->buf = buf;
	x->fmt = *fmt;
	x->pools = pools;
	x->res = res;
	x->node_idx = 0;
	x->node_name = NULL;
	x->state = NULL;
	x->out_max = 0;
	x->flushing = false;
	x->kit = kit;
}

/** Most bytes a node may output now: out_max when set, never more than the largest buffer. */
static inline uint32_t
dp_exec_out_max(const struct dp_exec *x)
{
	uint32_t pool = dp_pools_max_size(x->pools);

	return x->out_max != 0 && x->out_max < pool ? x->out_max : pool;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

/**
 * Fail the current node: records "node N (type): <message>" and returns @p status.
 * Context: worker. Cold path.
 */
int dp_exec_fail(struct dp_exec *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), cold));

/**
 * Add an annotation; a full table or an over-long key/value fails the node with INTERNAL.
 * @return DP_OK or the failure status.
 */
int dp_exec_annotate(struct dp_exec *x, const char *key, const char *val);

/**
 * Take an output buffer of @p len bytes: the smallest of x->kit that fits, else from the
 * pools. The node writes it from x->buf, then calls dp_exec_commit_out() to make it current
 * (the input buffer is freed).
 * @return the buffer, or NULL after failing the node with RESOURCE_EXHAUSTED (pools empty) or
 * OUT_OF_RANGE (larger than the largest class, or than x->out_max).
 */
struct dp_buf *dp_exec_take_out(struct dp_exec *x, uint64_t len);

/**
 * Make room for @p extra more bytes after x->buf->len, moving the payload to a larger buffer
 * when it does not fit (flush() appending a tail, a resampler's output growing).
 * @return where to write the extra bytes (x->buf->len is not changed: add to it after
 * writing), or NULL after failing the node (see dp_exec_take_out).
 */
uint8_t *dp_exec_reserve(struct dp_exec *x, uint64_t extra);

/** Make @p out the current payload with format @p fmt; frees the previous buffer. */
static inline void
dp_exec_commit_out(struct dp_exec *x, struct dp_buf *out, const struct dp_format *fmt)
{
	dp_buf_free(x->buf);
	x->buf = out;
	x->fmt = *fmt;
}

#endif

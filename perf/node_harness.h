/**
 * @file
 * Running one node the way a worker does, for the node benchmarks (perf/bench_nodes.c, the
 * framework-vs-library view in microseconds, and perf/micro/micro_nodes.c, the per-frame cycles
 * view of every node type in the node table). Both use these helpers, so the two measure the same
 * loop: take a pool buffer, copy the input in (the CQ thread's copy), dp_pipeline_run() on a
 * one-node pipeline (with a stream state for stateful nodes, carried across buffers as in a
 * stream), free the output.
 *
 * Context: an EAL lcore (the pools' per-lcore caches), one thread. Ownership: nh_compile()
 * returns a pipeline reference (dp_pipeline_unref), nh_stream() a stream (nh_stream_free).
 * Failures exit: these are stand-alone benchmarks.
 */
#ifndef COREPIPE_PERF_NODE_HARNESS_H
#define COREPIPE_PERF_NODE_HARNESS_H

#include "dataplane/pipeline.h"
#include "dataplane/stream.h"

#include <math.h>
#include <rte_cycles.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Compile a one-node pipeline of @p type with @p n parameters @p keys = @p vals. */
static inline struct dp_pipeline *
nh_compile(const char *type, unsigned n, const char *const *keys, const char *const *vals)
{
	struct dp_param prm[8];
	struct dp_node_spec ns = {.type = (char *)type, .n_params = n, .params = prm};
	struct dp_spec s = {.name = "b", .n_nodes = 1, .nodes = &ns};
	struct dp_err err;
	struct dp_pipeline *p;

	for (unsigned i = 0; i < n && i < 8; i++)
		prm[i] = (struct dp_param){.key = (char *)keys[i], .value = (char *)vals[i]};
	p = dp_pipeline_compile(&s, 4, &err);
	if (p == NULL) {
		fprintf(stderr, "compile %s: %s\n", type, err.msg);
		exit(1);
	}
	return p;
}

/** A stream state for @p p on input @p f (its stateful nodes' init() run), or NULL if none. */
static inline struct dp_stream *
nh_stream(struct dp_pipeline *p, const struct dp_format *f)
{
	struct dp_stream *st;
	struct dp_err err;

	if (p->state_size == 0)
		return NULL;
	st = aligned_alloc(64, sizeof(*st));
	if (st == NULL)
		exit(1);
	memset(st, 0, sizeof(*st));
	dp_pipeline_ref(p);
	st->p = p;
	if (dp_stream_init(st, f, &err) != 0) {
		fprintf(stderr, "init %s: %s\n", p->spec->nodes[0].type, err.msg);
		exit(1);
	}
	return st;
}

/** fini() the stream's nodes and free it. Accepts NULL. */
static inline void
nh_stream_free(struct dp_stream *st)
{
	if (st == NULL)
		return;
	dp_stream_fini(st);
	free(st);
}

/**
 * Run @p iters buffers of @p len bytes from @p in through @p p (format @p f, stream @p st or
 * NULL). @return TSC cycles per buffer.
 */
static inline double
nh_run(const struct dp_pools *pools, const struct dp_pipeline *p, struct dp_stream *st,
       struct dp_format f, const uint8_t *in, size_t len, uint64_t iters)
{
	uint64_t t0 = rte_rdtsc();

	for (uint64_t i = 0; i < iters; i++) {
		struct dp_result res;
		struct dp_buf *b = dp_pools_get(pools, (uint32_t)len);
		struct dp_exec x;

		res.n_annot = 0;
		dp_exec_init(&x, b, &f, pools, &res, NULL);
		if (x.buf == NULL) {
			fprintf(stderr, "pools empty for %zu bytes\n", len);
			exit(1);
		}
		memcpy(x.buf->data, in, len);
		if (dp_pipeline_run(p, &x, st ? st->state : NULL, DP_RUN_FRAME) != DP_OK) {
			fprintf(stderr, "run failed: %s\n", res.err.msg);
			exit(1);
		}
		dp_buf_free(x.buf);
	}
	return (double)(rte_rdtsc() - t0) / (double)iters;
}

/** Fill @p n bytes with log-like text (compressible, as the zstd nodes would see). */
static inline void
nh_fill_text(uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)("level=info msg=ok request_id=12345 took_us=42\n"[i % 46] +
				   (i % 977 == 0));
}

/** Fill @p n f32 samples with a 440 Hz tone at 48 kHz plus a little noise-like ripple. */
static inline void
nh_fill_tone(uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = (float)(0.3 * sin(2 * M_PI * 440 * (double)i / 48000) +
				  0.01 * sin((double)i * 1.7));

		memcpy(out + 4 * i, &v, 4);
	}
}

#endif

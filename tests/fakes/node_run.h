/**
 * @file
 * Helpers for node unit tests: compile a pipeline from "type k=v k=v" strings and run it on a
 * buffer the way a worker does, with a stream state area for stateful pipelines.
 *
 * Context: test thread. Ownership: results are copied into caller buffers; every pool buffer
 * taken is returned before the helpers return.
 */
#ifndef COREPIPE_TEST_NODE_RUN_H
#define COREPIPE_TEST_NODE_RUN_H

#include "dataplane/pipeline.h"
#include "dataplane/stream.h"

/** Compile a pipeline from node descriptions like "resample rate=16000 quality=high". */
struct dp_pipeline *tnr_compile(struct dp_err *err, unsigned n, const char *const *nodes);

/** A stream state for @p p (dp_stream_init with @p in); NULL with @p err on failure. */
struct dp_stream *tnr_stream(struct dp_pipeline *p, const struct dp_format *in, struct dp_err *err);
void tnr_stream_free(struct dp_stream *s);

/**
 * Run @p p over @p len bytes in format @p f (state: @p s or NULL; flags DP_RUN_*).
 * Output is appended to @p out (capacity @p cap, *out_len updated), format in *out_fmt,
 * annotations and error in @p res. @return the status.
 */
int tnr_run(const struct dp_pipeline *p, struct dp_stream *s, unsigned flags, struct dp_format f,
	    const void *data, uint32_t len, struct dp_result *res, void *out, size_t cap,
	    size_t *out_len, struct dp_format *out_fmt);

/** Value of annotation @p key in @p res, or NULL. */
const char *tnr_annot(const struct dp_result *res, const char *key);

#endif

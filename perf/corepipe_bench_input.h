/**
 * @file
 * What corepipe-bench sends: the input (raw bytes, generated audio or a WAV file's samples),
 * the inline pipeline (--node, --inline-json) and the payload messages that carry them.
 *
 * Context: the main thread, before the client threads start; cb_payload_equal() on any.
 * Ownership: what is made here lives until exit (the packed messages point into it).
 */
#ifndef COREPIPE_PERF_COREPIPE_BENCH_INPUT_H
#define COREPIPE_PERF_COREPIPE_BENCH_INPUT_H

#include "corepipe/v1/corepipe.pb-c.h"
#include "perf/corepipe_bench.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Raw input: the bytes, and how to wrap them. */
struct cb_input {
	bool audio;
	Corepipe__V1__SampleFormat fmt;
	unsigned rate, channels, sample_bytes;
	uint8_t *bytes;
	size_t len;
};

/** Make the input the options ask for (--wav, --audio-format or --size); exits 2 on a bad
 * WAV. */
void cb_input_make(const struct cb_opts *o, struct cb_input *in);

/** The inline pipeline of --node / --inline-json, or NULL for a named one; exits 2 on bad
 * JSON. */
Corepipe__V1__PipelineSpec *cb_spec_make(const struct cb_opts *o);

/** Wrap @p len bytes at @p b as payload @p p (audio in @p a, in the input's format). */
void cb_payload_fill(Corepipe__V1__Payload *p, Corepipe__V1__AudioBuffer *a,
		     const struct cb_input *in, const uint8_t *b, size_t len);

/** Whether payload @p p (data, or audio samples) carries exactly @p len bytes at @p raw. */
bool cb_payload_equal(const Corepipe__V1__Payload *p, const uint8_t *raw, size_t len);

#endif

/**
 * @file
 * Status codes, payload formats and error text shared by every dataplane module.
 *
 * Status values use the gRPC status numbering so that the gRPC and UDP front ends report the
 * same number for the same failure without a translation table. The dataplane does not include
 * any gRPC header: this file is the only place the numbering is written down.
 *
 * Context: any thread. Ownership: plain values, nothing to free.
 */
#ifndef COREPIPE_DP_STATUS_H
#define COREPIPE_DP_STATUS_H

#include <stdarg.h>
#include <stdint.h>

/** Request status, numbered as gRPC status codes. */
enum dp_status {
	DP_OK = 0,
	DP_CANCELLED = 1,
	DP_UNKNOWN = 2,
	DP_INVALID_ARGUMENT = 3,
	DP_DEADLINE_EXCEEDED = 4,
	DP_NOT_FOUND = 5,
	DP_PERMISSION_DENIED = 7,
	DP_RESOURCE_EXHAUSTED = 8,
	DP_FAILED_PRECONDITION = 9,
	DP_OUT_OF_RANGE = 11,
	DP_UNIMPLEMENTED = 12,
	DP_INTERNAL = 13,
	DP_UNAVAILABLE = 14,
	DP_STATUS_MAX = 17, /**< number of codes, for per-code counter arrays */
};

/** Payload kind. */
enum dp_kind {
	DP_KIND_ANY = 0, /**< compile-time only: not yet known */
	DP_KIND_BYTES = 1,
	DP_KIND_AUDIO = 2,
};

/** PCM sample format; numbered as corepipe.v1.SampleFormat. */
enum dp_sample_fmt {
	DP_FMT_ANY = 0, /**< compile-time only: not yet known */
	DP_FMT_S16LE = 1,
	DP_FMT_F32LE = 2,
};

/**
 * Bounds on audio a client may send (checked by dp_format_check() before anything is done with
 * the payload). 32 channels covers every common layout (22.2 is 24, third-order ambisonics
 * 16); 1000..384000 Hz covers telephony to the highest rate of studio converters. Nodes may
 * be narrower (resample: dataplane/nodes/resample.c). docs/operations.md, "Limits and
 * hardening", lists them with what a client sees.
 */
#define DP_AUDIO_CHANNELS_MAX 32
#define DP_AUDIO_RATE_MIN     1000
#define DP_AUDIO_RATE_MAX     384000

/**
 * What a buffer holds. At run time every field is concrete (kind != ANY, and for audio
 * fmt != ANY, rate in [DP_AUDIO_RATE_MIN, DP_AUDIO_RATE_MAX], channels in
 * [1, DP_AUDIO_CHANNELS_MAX]). During compilation a zero field means "not known yet".
 */
struct dp_format {
	uint8_t kind;	   /**< enum dp_kind */
	uint8_t fmt;	   /**< enum dp_sample_fmt, audio only */
	uint16_t channels; /**< audio only */
	uint32_t rate;	   /**< Hz, audio only */
};

/** Bytes per sample of @p fmt, 0 for DP_FMT_ANY. */
static inline uint32_t
dp_fmt_sample_size(uint8_t fmt)
{
	return fmt == DP_FMT_S16LE ? 2 : fmt == DP_FMT_F32LE ? 4 : 0;
}

/** Lower-case name of a sample format ("s16le", "f32le", "any"). */
const char *dp_fmt_name(uint8_t fmt);

/** Lower-case name of a payload kind ("bytes", "audio", "any"). */
const char *dp_kind_name(uint8_t kind);

/** Upper-case gRPC name of a status ("INVALID_ARGUMENT"). */
const char *dp_status_name(int status);

/** Longest error message carried with a request or returned by compilation, with its NUL. */
#define DP_ERR_MAX 192

/** An error: a status and a message saying what was wrong. */
struct dp_err {
	int status;	      /**< enum dp_status */
	char msg[DP_ERR_MAX]; /**< NUL-terminated, truncated if longer */
};

/**
 * Record an error in @p err (which may be NULL) and return @p status.
 *
 * Context: any. Allocates nothing; used on worker error paths too.
 */
int dp_err_set(struct dp_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** va_list form of dp_err_set(). */
int dp_err_vset(struct dp_err *err, int status, const char *fmt, va_list ap);

/**
 * Check that a concrete payload of @p len bytes is well formed for @p f: audio needs a known
 * format, a rate in [DP_AUDIO_RATE_MIN, DP_AUDIO_RATE_MAX], 1..DP_AUDIO_CHANNELS_MAX channels
 * and a whole number of frames. Every front end calls it (directly or through
 * dp_pipeline_run()) before any work on the payload.
 *
 * @return DP_OK, or DP_INVALID_ARGUMENT with @p err filled in.
 * Context: any.
 */
int dp_format_check(const struct dp_format *f, uint64_t len, struct dp_err *err);

#endif

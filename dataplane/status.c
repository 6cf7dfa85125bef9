/*
 * Names of status codes and formats, and the error helpers. Nothing here allocates or takes a
 * lock: dp_err_set() is used on worker error paths.
 */
#include "dataplane/status.h"

#include <stdio.h>

const char *
dp_fmt_name(uint8_t fmt)
{
	switch (fmt) {
	case DP_FMT_S16LE:
		return "s16le";
	case DP_FMT_F32LE:
		return "f32le";
	default:
		return "any";
	}
}

const char *
dp_kind_name(uint8_t kind)
{
	switch (kind) {
	case DP_KIND_BYTES:
		return "bytes";
	case DP_KIND_AUDIO:
		return "audio";
	default:
		return "any";
	}
}

const char *
dp_status_name(int status)
{
	static const char *const names[DP_STATUS_MAX] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	    "DATA_LOSS",
	    "UNAUTHENTICATED",
	};
	if (status < 0 || status >= DP_STATUS_MAX)
		return "UNKNOWN";
	return names[status];
}

int
dp_err_vset(struct dp_err *err, int status, const char *fmt, va_list ap)
{
	if (err != NULL) {
		err->status = status;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return status;
}

int
dp_err_set(struct dp_err *err, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dp_err_vset(err, status, fmt, ap);
	va_end(ap);
	return status;
}

int
dp_format_check(const struct dp_format *f, uint64_t len, struct dp_err *err)
{
	uint32_t frame;

	if (f->kind == DP_KIND_BYTES)
		return DP_OK;
	if (f->kind != DP_KIND_AUDIO)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "payload: no data and no audio");
	if (f->fmt != DP_FMT_S16LE && f->fmt != DP_FMT_F32LE)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "audio: format must be S16LE or F32LE, got %u", f->fmt);
	if (f->rate == 0)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "audio: sample_rate must be > 0");
	if (f->rate < DP_AUDIO_RATE_MIN || f->rate > DP_AUDIO_RATE_MAX)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "audio: sample_rate %u Hz out of range [%u, %u]", f->rate,
				  DP_AUDIO_RATE_MIN, DP_AUDIO_RATE_MAX);
	if (f->channels == 0)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "audio: channels must be > 0");
	if (f->channels > DP_AUDIO_CHANNELS_MAX)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "audio: %u channels, more than the %u supported", f->channels,
				  DP_AUDIO_CHANNELS_MAX);
	frame = dp_fmt_sample_size(f->fmt) * f->channels;
	if (len % frame != 0)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "audio: %llu bytes is not a whole number of %u-byte frames "
				  "(%s, %u channels)",
				  (unsigned long long)len, frame, dp_fmt_name(f->fmt), f->channels);
	return DP_OK;
}

/*
 * channels: mono <-> stereo.
 *
 * count=1 on stereo input averages the two channels: S16LE (l + r) / 2 truncated toward zero
 * (exact in int32, never clips), F32LE (l + r) * 0.5f. count=2 on mono duplicates each sample
 * into both channels. Input with the requested count passes unchanged; input with any other
 * channel count than 1 or 2 is INVALID_ARGUMENT. Down-mixing works in place; up-mixing takes
 * a buffer twice the size.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <string.h>

struct channels_conf {
	uint16_t count;
};

static const struct dp_param_def channels_params[] = {
    {"count", "Output channels: 1 (average stereo to mono) or 2 (duplicate mono).", true, NULL},
};

static int
channels_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct channels_conf *c = conf;
	uint64_t v;

	if (dp_node_arg_u64(args, "count", 1, 2, &v, err) != 0)
		return -EINVAL;
	c->count = (uint16_t)v;
	return 0;
}

static int
channels_infer(const void *conf, const struct dp_format *in, struct dp_format *out,
	       struct dp_err *err)
{
	const struct channels_conf *c = conf;

	if (in->channels > 2)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "input has %u channels; only 1 or 2 are supported", in->channels),
		       -EINVAL;
	*out = *in;
	out->kind = DP_KIND_AUDIO;
	out->channels = c->count;
	return 0;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static int
channels_process(const void *conf, struct dp_exec *x)
{
	const struct channels_conf *c = conf;
	uint32_t ss = dp_fmt_sample_size(x->fmt.fmt);
	uint8_t *p = x->buf->data;
	uint32_t frames;

	if (x->fmt.channels == c->count)
		return DP_OK;
	if (unlikely(x->fmt.channels > 2))
		return dp_exec_fail(x, DP_INVALID_ARGUMENT,
				    "input has %u channels; only 1 or 2 are supported",
				    x->fmt.channels);
	frames = x->buf->len / (ss * x->fmt.channels);
	if (c->count == 1) {
		/* Frame i is read at 2*i*ss and written at i*ss: never ahead of the reads. */
		if (ss == 2) {
			for (uint32_t i = 0; i < frames; i++) {
				int16_t l, r, m;

				memcpy(&l, p + 4 * i, 2);
				memcpy(&r, p + 4 * i + 2, 2);
				m = (int16_t)(((int32_t)l + r) / 2);
				memcpy(p + 2 * i, &m, 2);
			}
		} else {
			for (uint32_t i = 0; i < frames; i++) {
				float l, r, m;

				memcpy(&l, p + 8 * i, 4);
				memcpy(&r, p + 8 * i + 4, 4);
				m = (l + r) * 0.5f;
				memcpy(p + 4 * i, &m, 4);
			}
		}
		x->buf->len = frames * ss;
		x->fmt.channels = 1;
		return DP_OK;
	}
	{
		struct dp_buf *out = dp_exec_take_out(x, (uint64_t)frames * ss * 2);
		struct dp_format f = x->fmt;

		if (out == NULL)
			return x->res->err.status;
		for (uint32_t i = 0; i < frames; i++) {
			memcpy(out->data + 2 * i * ss, p + i * ss, ss);
			memcpy(out->data + (2 * i + 1) * ss, p + i * ss, ss);
		}
		f.channels = 2;
		dp_exec_commit_out(x, out, &f);
	}
	return DP_OK;
}

static const struct dp_node_type channels_node = {
    .name = "channels",
    .summary = "Mono <-> stereo: count=1 averages the two channels, count=2 duplicates mono.",
    .params = channels_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_AUDIO,
    .conf_size = sizeof(struct channels_conf),
    .compile = channels_compile,
    .infer = channels_infer,
    .process = channels_process,
};

DP_NODE_REGISTER(channels_node)

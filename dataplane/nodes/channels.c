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

/* Frames [from, to): down-mix in place (frame i read at 2*i*ss, written at i*ss, never ahead
 * of the reads, so ranges must come in order) or up-mix into out. */
static void
channels_range(uint16_t count, uint32_t ss, uint8_t *p, uint8_t *out, uint32_t from, uint32_t to)
{
	if (count == 1 && ss == 2) {
		for (uint32_t i = from; i < to; i++) {
			int16_t l, r, m;

			memcpy(&l, p + 4 * i, 2);
			memcpy(&r, p + 4 * i + 2, 2);
			m = (int16_t)(((int32_t)l + r) / 2);
			memcpy(p + 2 * i, &m, 2);
		}
	} else if (count == 1) {
		for (uint32_t i = from; i < to; i++) {
			float l, r, m;

			memcpy(&l, p + 8 * i, 4);
			memcpy(&r, p + 8 * i + 4, 4);
			m = (l + r) * 0.5f;
			memcpy(p + 4 * i, &m, 4);
		}
	} else {
		for (uint32_t i = from; i < to; i++) {
			memcpy(out + 2 * i * ss, p + i * ss, ss);
			memcpy(out + (2 * i + 1) * ss, p + i * ss, ss);
		}
	}
}

/* The buffer an up-mix takes (a down-mix works in place): dp_node_type.out_bytes. */
static uint64_t
channels_out_bytes(const void *conf, const struct dp_format *in, uint64_t len, const uint8_t *data)
{
	(void)data;
	const struct channels_conf *c = conf;
	uint32_t ss = dp_fmt_sample_size(in->fmt);

	if (c->count != 2 || in->channels != 1 || ss == 0)
		return 0;
	return len / ss * ss * 2;
}

static int
channels_process(const void *conf, struct dp_exec *x)
{
	const struct channels_conf *c = conf;
	uint32_t ss = dp_fmt_sample_size(x->fmt.fmt);
	uint32_t frames;

	if (x->fmt.channels == c->count)
		return DP_OK;
	if (unlikely(x->fmt.channels > 2))
		return dp_exec_fail(x, DP_INVALID_ARGUMENT,
				    "input has %u channels; only 1 or 2 are supported",
				    x->fmt.channels);
	frames = x->buf->len / (ss * x->fmt.channels);
	if (c->count == 1) {
		channels_range(1, ss, x->buf->data, NULL, 0, frames);
		x->buf->len = frames * ss;
		x->fmt.channels = 1;
		return DP_OK;
	}
	{
		struct dp_buf *out =
		    dp_exec_take_out(x, channels_out_bytes(conf, &x->fmt, x->buf->len, NULL));
		struct dp_format f = x->fmt;

		if (out == NULL)
			return x->res->err.status;
		channels_range(2, ss, x->buf->data, out->data, 0, frames);
		f.channels = 2;
		dp_exec_commit_out(x, out, &f);
	}
	return DP_OK;
}

/* Sliced (bulk lane): the same loops over consecutive frame ranges; an up-mix keeps its output
 * buffer here until the last slice commits it. */
struct channels_slice {
	struct dp_buf *out;
};

static int
channels_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct channels_conf *c = conf;
	struct channels_slice *cs = sl;
	uint32_t ss = dp_fmt_sample_size(x->fmt.fmt), fb, frames, from, to, per;
	struct dp_format f = x->fmt;

	if (x->fmt.channels == c->count || x->fmt.channels > 2) {
		*pos = x->buf->len;
		return channels_process(conf, x); /* passes, or fails naming the channels */
	}
	fb = ss * x->fmt.channels;
	frames = x->buf->len / fb;
	from = *pos / fb;
	per = budget / fb ? budget / fb : 1;
	to = frames - from > per ? from + per : frames;
	if (c->count == 2 && cs->out == NULL) {
		cs->out = dp_exec_take_out(x, channels_out_bytes(conf, &x->fmt, x->buf->len, NULL));
		if (cs->out == NULL)
			return x->res->err.status;
	}
	channels_range(c->count, ss, x->buf->data, cs->out ? cs->out->data : NULL, from, to);
	*pos = to * fb;
	if (to < frames)
		return DP_PENDING;
	*pos = x->buf->len;
	if (cs->out != NULL) {
		f.channels = 2;
		dp_exec_commit_out(x, cs->out, &f);
		cs->out = NULL;
	} else {
		x->buf->len = frames * ss;
		x->fmt.channels = 1;
	}
	return DP_OK;
}

static void
channels_slice_abort(const void *conf, void *sl)
{
	struct channels_slice *cs = sl;

	(void)conf;
	dp_buf_free(cs->out);
	cs->out = NULL;
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_channels = {
    .name = "channels",
    .summary = "Mono <-> stereo: count=1 averages the two channels, count=2 duplicates mono.",
    .params = channels_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_AUDIO,
    .conf_size = sizeof(struct channels_conf),
    .compile = channels_compile,
    .infer = channels_infer,
    .process = channels_process,
    .out_bytes = channels_out_bytes,
    .slice = channels_slice,
    .slice_abort = channels_slice_abort,
};

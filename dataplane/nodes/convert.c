/*
 * convert: change the sample format of audio.
 *
 * S16LE -> F32LE is x / 32768 (exact). F32LE -> S16LE is round-to-nearest (ties to even) of
 * x * 32768, saturated to [-32768, 32767], NaN -> 0. Rate and channels are unchanged.
 * Widening takes a new buffer twice the size; narrowing is done in place (each 2-byte write
 * lands below the 4-byte read it comes from). Same format in and out is a no-op.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <math.h>
#include <string.h>

struct convert_conf {
	uint8_t to; /* enum dp_sample_fmt */
};

static const struct dp_param_def convert_params[] = {
    {"format", "Output sample format: s16le or f32le.", true, NULL},
};

static int
convert_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct convert_conf *c = conf;
	const char *s = dp_node_arg(args, "format");

	if (strcmp(s, "s16le") == 0)
		c->to = DP_FMT_S16LE;
	else if (strcmp(s, "f32le") == 0)
		c->to = DP_FMT_F32LE;
	else
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "param format: expected s16le or f32le, got '%.40s'", s),
		       -EINVAL;
	return 0;
}

static int
convert_infer(const void *conf, const struct dp_format *in, struct dp_format *out,
	      struct dp_err *err)
{
	const struct convert_conf *c = conf;

	(void)err;
	*out = *in;
	out->kind = DP_KIND_AUDIO;
	out->fmt = c->to;
	return 0;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static inline int16_t
f32_to_s16(float x)
{
	float v = x * 32768.0f;

	if (v != v)
		return 0;
	if (v >= 32767.0f)
		return 32767;
	if (v <= -32768.0f)
		return -32768;
	return (int16_t)lrintf(v);
}

/* Samples [from, to) of src: widening into out, or narrowing in place (sample i is read at
 * 4i and written at 2i, never ahead of the reads, so ranges must come in order). */
static void
convert_range(uint8_t to_fmt, const uint8_t *src, uint8_t *out, uint32_t from, uint32_t to)
{
	if (to_fmt == DP_FMT_F32LE) {
		for (uint32_t i = from; i < to; i++) {
			int16_t s;
			float v;

			memcpy(&s, src + 2 * i, 2);
			v = (float)s / 32768.0f;
			memcpy(out + 4 * i, &v, 4);
		}
	} else {
		for (uint32_t i = from; i < to; i++) {
			float v;
			int16_t s;

			memcpy(&v, src + 4 * i, 4);
			s = f32_to_s16(v);
			memcpy(out + 2 * i, &s, 2);
		}
	}
}

/* The buffer a widening run takes (narrowing works in place): dp_node_type.out_bytes. */
static uint64_t
convert_out_bytes(const void *conf, const struct dp_format *in, uint64_t len, const uint8_t *data)
{
	(void)data;
	const struct convert_conf *c = conf;

	return in->fmt != c->to && c->to == DP_FMT_F32LE ? len / 2 * 4 : 0;
}

static int
convert_process(const void *conf, struct dp_exec *x)
{
	const struct convert_conf *c = conf;
	uint32_t len = x->buf->len;

	if (x->fmt.fmt == c->to)
		return DP_OK;
	if (c->to == DP_FMT_F32LE) {
		uint32_t n = len / 2;
		struct dp_buf *out =
		    dp_exec_take_out(x, convert_out_bytes(conf, &x->fmt, len, NULL));
		struct dp_format f = x->fmt;

		if (out == NULL)
			return x->res->err.status;
		convert_range(c->to, x->buf->data, out->data, 0, n);
		out->len = n * 4;
		f.fmt = DP_FMT_F32LE;
		dp_exec_commit_out(x, out, &f);
	} else {
		uint32_t n = len / 4;

		convert_range(c->to, x->buf->data, x->buf->data, 0, n);
		x->buf->len = n * 2;
		x->fmt.fmt = DP_FMT_S16LE;
	}
	return DP_OK;
}

/* Sliced (bulk lane): the same loops over consecutive sample ranges; a widening run keeps its
 * output buffer here until the last slice commits it. */
struct convert_slice {
	struct dp_buf *out;
};

static int
convert_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct convert_conf *c = conf;
	struct convert_slice *cs = sl;
	uint32_t in_ss = dp_fmt_sample_size(x->fmt.fmt), n = x->buf->len / in_ss;
	uint32_t from = *pos / in_ss, to = n, per = budget / in_ss ? budget / in_ss : 1;
	struct dp_format f = x->fmt;

	if (x->fmt.fmt == c->to) {
		*pos = x->buf->len;
		return DP_OK;
	}
	if (c->to == DP_FMT_F32LE && cs->out == NULL) {
		cs->out = dp_exec_take_out(x, convert_out_bytes(conf, &x->fmt, x->buf->len, NULL));
		if (cs->out == NULL)
			return x->res->err.status;
	}
	if (to - from > per)
		to = from + per;
	convert_range(c->to, x->buf->data, cs->out ? cs->out->data : x->buf->data, from, to);
	*pos = to * in_ss;
	if (to < n)
		return DP_PENDING;
	*pos = x->buf->len;
	if (cs->out != NULL) {
		cs->out->len = n * 4;
		f.fmt = DP_FMT_F32LE;
		dp_exec_commit_out(x, cs->out, &f);
		cs->out = NULL;
	} else {
		x->buf->len = n * 2;
		x->fmt.fmt = DP_FMT_S16LE;
	}
	return DP_OK;
}

static void
convert_slice_abort(const void *conf, void *sl)
{
	struct convert_slice *cs = sl;

	(void)conf;
	dp_buf_free(cs->out);
	cs->out = NULL;
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_convert = {
    .name = "convert",
    .summary = "Convert audio between s16le and f32le (x/32768; round and saturate back).",
    .params = convert_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_AUDIO,
    .conf_size = sizeof(struct convert_conf),
    .compile = convert_compile,
    .infer = convert_infer,
    .process = convert_process,
    .out_bytes = convert_out_bytes,
    .slice = convert_slice,
    .slice_abort = convert_slice_abort,
};

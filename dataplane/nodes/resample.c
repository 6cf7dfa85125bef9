/*
 * resample: change the sample rate of audio with libsoxr, as a stream.
 *
 * Stateful: one soxr resampler per stream (created by init() on a control thread when the
 * first frame fixes the input rate, channels and format; deleted by fini()). Frames go
 * through soxr_process() one after the other, so a signal streamed frame by frame gives the
 * same samples as the whole signal in one call, and flush() (end of input) drains the
 * filter's tail. A unary Execute is one frame plus the flush.
 *
 * S16LE in gives S16LE out (no dither: SOXR_NO_DITHER, so the output is deterministic);
 * F32LE gives F32LE. Channels are unchanged. Output length per frame varies by a sample or so
 * around frames * out_rate / in_rate, and the first frames are shorter by the filter's delay
 * (e.g. at 48 kHz -> 16 kHz, quality high, about 1 ms); the flush returns it.
 *
 * Allocation: libsoxr allocates its filter in soxr_create (control thread). Its FIFOs may grow
 * on a worker during the first frames of a stream (inside soxr_process) and then stay put;
 * reset() is soxr_clear(), which re-allocates, so it runs on control threads only.
 *
 * Bounds: what soxr_create costs grows with the channel count and the quality (the filter is
 * designed per resampler, and its state is per channel), and the flush of a stream costs about
 * a filter block per channel whatever the input. So a resampler takes at most RS_RATIO_MAX as
 * the ratio between the rates (either way: 8 kHz <-> 384 kHz), and at most
 * rs_channels_max[quality] channels: with them init() costs about a millisecond of CPU at the
 * worst rate pair and a stream about 1.5 MiB at most (perf/bench_resample_init measures it;
 * the figures are in docs/performance.md). Both are checked before soxr_create is called, at
 * compile time already when the input format is known there.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <soxr.h>
#include <string.h>

/* Largest ratio between input and output rate, either way. */
#define RS_RATIO_MAX 48

struct rs_conf {
	uint32_t rate;
	unsigned long recipe;
	uint8_t quality; /* index into rs_quality_names */
};

struct rs_state {
	soxr_t soxr;	      /* NULL: same rate in and out, nothing to do */
	double ratio;	      /* out_rate / in_rate */
	uint32_t frame_bytes; /* channels * sample size */
};

static const char *const rs_quality_names[] = {"quick", "low", "medium", "high", "very_high"};
static const unsigned long rs_recipes[] = {SOXR_QQ, SOXR_LQ, SOXR_MQ, SOXR_HQ, SOXR_VHQ};
/* Most channels per quality: quick is cubic interpolation (no filter to design), the others
 * design a filter whose cost is per channel, very_high's about twice high's. */
static const uint16_t rs_channels_max[] = {DP_AUDIO_CHANNELS_MAX, 8, 8, 8, 4};

static const struct dp_param_def rs_params[] = {
    {"rate",
     "Output sample rate in Hz (1000..384000; at most 48 times the input rate or 1/48 of it).",
     true, NULL},
    {"quality",
     "libsoxr recipe: quick, low, medium, high or very_high (at most 32, 8, 8, 8 and 4 "
     "channels).",
     false, "high"},
};

static int
rs_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct rs_conf *c = conf;
	uint64_t rate;
	unsigned q;

	if (dp_node_arg_u64(args, "rate", 1000, 384000, &rate, err) != 0 ||
	    dp_node_arg_choice(args, "quality", rs_quality_names, 5, &q, err) != 0)
		return -EINVAL;
	c->rate = (uint32_t)rate;
	c->recipe = rs_recipes[q];
	c->quality = (uint8_t)q;
	return 0;
}

/* The bounds of the file comment, for input @p in (fields 0: not known yet, not checked). */
static int
rs_check(const struct rs_conf *c, const struct dp_format *in, struct dp_err *err)
{
	if (in->rate != 0 && ((uint64_t)c->rate > (uint64_t)in->rate * RS_RATIO_MAX ||
			      (uint64_t)in->rate > (uint64_t)c->rate * RS_RATIO_MAX))
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "%u Hz -> %u Hz: the rates may differ by a factor of %d at most",
				  in->rate, c->rate, RS_RATIO_MAX),
		       -EINVAL;
	if (in->channels > rs_channels_max[c->quality])
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "%u channels: quality %s takes at most %u", in->channels,
				  rs_quality_names[c->quality], rs_channels_max[c->quality]),
		       -EINVAL;
	return 0;
}

static int
rs_infer(const void *conf, const struct dp_format *in, struct dp_format *out, struct dp_err *err)
{
	const struct rs_conf *c = conf;

	*out = *in;
	out->kind = DP_KIND_AUDIO;
	out->rate = c->rate;
	return rs_check(c, in, err);
}

static int
rs_init(const void *conf, void *state, const struct dp_format *in, struct dp_err *err)
{
	const struct rs_conf *c = conf;
	struct rs_state *st = state;
	soxr_datatype_t t = in->fmt == DP_FMT_S16LE ? SOXR_INT16_I : SOXR_FLOAT32_I;
	soxr_io_spec_t io = soxr_io_spec(t, t);
	soxr_quality_spec_t q = soxr_quality_spec(c->recipe, 0);
	soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* no threads of its own */
	soxr_error_t e = NULL;

	/* Before anything is allocated: what soxr_create would cost is bounded here. */
	if (rs_check(c, in, err) != 0)
		return -EINVAL;
	st->frame_bytes = dp_fmt_sample_size(in->fmt) * in->channels;
	st->ratio = (double)c->rate / (double)in->rate;
	st->soxr = NULL;
	if (in->rate == c->rate)
		return 0;
	io.flags |= SOXR_NO_DITHER;
	st->soxr = soxr_create(in->rate, c->rate, in->channels, &e, &io, &q, &rt);
	if (st->soxr == NULL)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "libsoxr: %s", soxr_strerror(e)),
		       -EINVAL;
	return 0;
}

static void
rs_reset(const void *conf, void *state)
{
	struct rs_state *st = state;

	(void)conf;
	if (st->soxr != NULL)
		soxr_clear(st->soxr);
}

static void
rs_fini(const void *conf, void *state)
{
	struct rs_state *st = state;

	(void)conf;
	soxr_delete(st->soxr);
	st->soxr = NULL;
}

/* Hot path: per frame, worker lcores. No locks, syscalls or logging (see the file comment
 * for libsoxr's own allocation). */

/* Output frames a run over @p n_in input frames starts with room for: the ratio, plus the
 * filter's tail and rounding (more is rare: the buffer then doubles). */
static inline size_t
rs_out_frames(double ratio, size_t n_in)
{
	return (size_t)((double)n_in * ratio) + 64;
}

/* The buffer a frame's run takes first (dp_node_type.out_bytes); 0 at the same rate. */
static uint64_t
rs_out_bytes(const void *conf, const struct dp_format *in, uint64_t len, const uint8_t *data)
{
	(void)data;
	const struct rs_conf *c = conf;
	uint32_t fb = dp_fmt_sample_size(in->fmt) * in->channels;

	if (in->rate == 0 || in->rate == c->rate || fb == 0)
		return 0;
	return (uint64_t)rs_out_frames((double)c->rate / (double)in->rate, len / fb) * fb;
}

/*
 * Push @p n_in frames at @p in (NULL: end of input) through soxr and write the output in a new
 * buffer (the input buffer stays valid until then: soxr reads it during the call).
 */
static int
rs_run(struct rs_state *st, struct dp_exec *x, const uint8_t *in, size_t n_in, uint32_t rate)
{
	uint32_t fb = st->frame_bytes;
	size_t est = rs_out_frames(st->ratio, n_in), done_in = 0;
	struct dp_buf *out = dp_exec_take_out(x, (uint64_t)est * fb);
	struct dp_format f = x->fmt;

	if (out == NULL)
		return x->res->err.status;
	out->len = 0;
	for (;;) {
		size_t room = (out->cap - out->len) / fb, idone = 0, odone = 0;
		soxr_error_t e;

		e = soxr_process(st->soxr, in ? in + done_in * fb : NULL, in ? n_in - done_in : 0,
				 &idone, out->data + out->len, room, &odone);
		if (unlikely(e != NULL)) {
			dp_buf_free(out);
			return dp_exec_fail(x, DP_INTERNAL, "libsoxr: %s", e);
		}
		done_in += idone;
		out->len += (uint32_t)(odone * fb);
		if (done_in == n_in && odone < room)
			break;
		if (unlikely(out->cap - out->len < fb)) {
			/* Output full and more to come: move to a buffer twice the size. */
			struct dp_buf *b = dp_exec_take_out(x, (uint64_t)out->cap * 2);

			if (b == NULL) {
				dp_buf_free(out);
				return x->res->err.status;
			}
			memcpy(b->data, out->data, out->len);
			b->len = out->len;
			dp_buf_free(out);
			out = b;
		}
	}
	f.rate = rate;
	dp_exec_commit_out(x, out, &f);
	return DP_OK;
}

static int
rs_process(const void *conf, struct dp_exec *x)
{
	const struct rs_conf *c = conf;
	struct rs_state *st = x->state;

	if (st->soxr == NULL) {
		x->fmt.rate = c->rate;
		return DP_OK;
	}
	return rs_run(st, x, x->buf->data, x->buf->len / st->frame_bytes, c->rate);
}

/*
 * Sliced (bulk lane): the input frames go through soxr_process() a chunk at a time into one
 * output buffer kept in the slice area; soxr keeps its own FIFO between calls, so the output
 * is the one-shot call's, sample for sample, and the last slice drains what soxr has ready as
 * rs_run() does.
 */
struct rs_slice {
	struct dp_buf *out;
};

static int
rs_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct rs_conf *c = conf;
	struct rs_state *st = x->state;
	struct rs_slice *s = sl;
	struct dp_format f = x->fmt;
	uint32_t fb, n_in, done, to, per;

	if (st->soxr == NULL)
		return *pos = x->buf->len, rs_process(conf, x);
	fb = st->frame_bytes;
	n_in = x->buf->len / fb;
	done = *pos / fb;
	per = budget / fb ? budget / fb : 1;
	to = n_in - done > per ? done + per : n_in;
	if (s->out == NULL) {
		size_t est = rs_out_frames(st->ratio, n_in);

		s->out = dp_exec_take_out(x, (uint64_t)est * fb);
		if (s->out == NULL)
			return x->res->err.status;
		s->out->len = 0;
	}
	for (;;) {
		size_t room = (s->out->cap - s->out->len) / fb, idone = 0, odone = 0;
		soxr_error_t e;

		e = soxr_process(st->soxr, x->buf->data + (size_t)done * fb, to - done, &idone,
				 s->out->data + s->out->len, room, &odone);
		if (unlikely(e != NULL)) {
			dp_buf_free(s->out);
			s->out = NULL;
			return dp_exec_fail(x, DP_INTERNAL, "libsoxr: %s", e);
		}
		done += (uint32_t)idone;
		s->out->len += (uint32_t)(odone * fb);
		if (done == to && (to < n_in || odone < room))
			break;
		if (unlikely(s->out->cap - s->out->len < fb)) {
			struct dp_buf *b = dp_exec_take_out(x, (uint64_t)s->out->cap * 2);

			if (b == NULL) {
				dp_buf_free(s->out);
				s->out = NULL;
				return x->res->err.status;
			}
			memcpy(b->data, s->out->data, s->out->len);
			b->len = s->out->len;
			dp_buf_free(s->out);
			s->out = b;
		}
	}
	*pos = to * fb;
	if (to < n_in)
		return DP_PENDING;
	*pos = x->buf->len;
	f.rate = c->rate;
	dp_exec_commit_out(x, s->out, &f);
	s->out = NULL;
	return DP_OK;
}

static void
rs_slice_abort(const void *conf, void *sl)
{
	struct rs_slice *s = sl;

	(void)conf;
	dp_buf_free(s->out);
	s->out = NULL;
}

static int
rs_flush(const void *conf, void *state, struct dp_exec *x)
{
	struct rs_state *st = state;
	struct dp_buf *prev;
	uint32_t prev_len;
	int rc;

	if (st->soxr == NULL)
		return DP_OK;
	/* The tail goes after this node's output for the last frame (x->buf). */
	prev = x->buf;
	prev_len = prev->len;
	x->buf = dp_exec_take_out(x, 0);
	if (x->buf == NULL) {
		x->buf = prev;
		return x->res->err.status;
	}
	x->buf->len = 0;
	rc = rs_run(st, x, NULL, 0, ((const struct rs_conf *)conf)->rate);
	if (rc != DP_OK) {
		dp_buf_free(x->buf);
		x->buf = prev;
		return rc;
	}
	/* x->buf is the tail now; put it behind prev. */
	if (prev_len != 0) {
		struct dp_buf *tail = x->buf;
		uint8_t *dst;

		x->buf = prev;
		dst = dp_exec_reserve(x, tail->len);
		if (dst == NULL) {
			dp_buf_free(tail);
			return x->res->err.status;
		}
		memcpy(dst, tail->data, tail->len);
		x->buf->len += tail->len;
		dp_buf_free(tail);
	} else {
		dp_buf_free(prev);
	}
	return DP_OK;
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_resample = {
    .name = "resample",
    .summary = "Resample audio to `rate` Hz with libsoxr (streaming state per stream; "
	       "s16le or f32le, same format out).",
    .params = rs_params,
    .n_params = 2,
    .accepts = DP_ACCEPT_AUDIO,
    .conf_size = sizeof(struct rs_conf),
    .compile = rs_compile,
    .infer = rs_infer,
    .process = rs_process,
    .out_bytes = rs_out_bytes,
    .state_size = sizeof(struct rs_state),
    .init = rs_init,
    .flush = rs_flush,
    .reset = rs_reset,
    .fini = rs_fini,
    .slice = rs_slice,
    .slice_abort = rs_slice_abort,
};

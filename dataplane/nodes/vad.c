/*
 * vad: voice activity detection by energy against a tracked noise floor, decided per 10 ms
 * analysis frame whatever the size of the buffers it arrives in.
 *
 * Algorithm (per analysis frame of rate/100 samples, counted from the start of the signal):
 *   1. level = 20 log10(RMS) in dBFS (full scale 1.0; digital silence counts as -120 dB).
 *   2. The noise floor is the minimum level of the EARLIER frames of the last second (minimum
 *      statistics: ten 100 ms blocks in a ring, so the window slides without storing frames).
 *      The frame being judged is not part of its own floor (it used to be, which made a lone
 *      frame, or a unary call's whole buffer, never speech). Speech has gaps between syllables
 *      and words well inside a second, so the minimum follows the background, not the voice.
 *   3. A frame is active when level > threshold_db AND level > floor + 9 dB. The very first
 *      frame has no floor yet: it is active when level > threshold_db + 9 dB, and it starts no
 *      hangover (a stream that opens in loud noise costs one frame, not a hangover's worth).
 *   4. Hangover: after the last active frame, frames stay "speech" for hangover_ms of audio,
 *      which bridges the short dips inside words and the fall-off at their ends.
 *
 * A buffer (a stream frame or a unary request) is split into analysis frames; a frame that
 * straddles two buffers is carried in the state and decided in the buffer that completes it.
 * So a unary call over a whole signal makes the same decisions as streaming it, in any frame
 * size. Annotations per buffer: vad.speech = "true" when any frame decided in it is speech
 * (a buffer that completes no frame repeats the last decision); a buffer that decides more
 * than one frame also gets a summary: vad.frames (frames decided), vad.speech_ratio (speech
 * frames / frames, four decimals), vad.speech_span ("first-last" speech frame, indices in this
 * buffer, or "none") and vad.segments (runs of speech frames). mode=gate keeps only the samples
 * of speech frames (a 10 ms stream frame is kept whole or emptied; samples of a frame the
 * buffer does not complete follow the last decision).
 *
 * The work runs as begin / range / end over the samples (vad_begin, vad_range, vad_end), so a
 * buffer can be processed in slices with the same result: sums are accumulated in sample
 * order (S16 exactly, in 64-bit integers), and every per-buffer counter lives in the state.
 *
 * Input: mono S16LE or F32LE at 8, 16, 32 or 48 kHz (others are INVALID_ARGUMENT at the first
 * frame). Cost: one pass over the samples plus a few operations per 10 ms; no allocation.
 *
 * Limits (documented in docs/api.md): it detects energy, not voice, so a loud non-speech
 * sound (a door, music) above the floor counts as speech; after the background gets louder
 * (quiet -> noisy) frames count as speech for up to the one-second window until the floor
 * catches up; speech less than 9 dB above the background (SNR < 9 dB) is missed; a trailing
 * part of a signal shorter than 10 ms is never decided.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define VAD_BLOCKS     10	/* ring of block minima: 10 x 100 ms = 1 s window */
#define VAD_MARGIN_DB  9.0	/* active: this far above the floor */
#define VAD_SILENCE_DB (-120.0) /* level of digital silence */

struct vad_conf {
	double threshold_db;
	uint32_t hangover_ms;
	bool gate;
};

struct vad_state {
	/* Signal state, carried from buffer to buffer. */
	uint32_t frame_samples; /* samples per 10 ms analysis frame */
	uint32_t block_frames;	/* analysis frames per 100 ms block (10) */
	uint32_t hang_frames;	/* hangover in analysis frames */
	uint32_t in_block;	/* frames seen in the current block */
	uint32_t n_blocks;	/* valid entries in ring (up to VAD_BLOCKS) */
	uint32_t head;		/* next ring slot */
	uint32_t hang_left;	/* frames of hangover still to give */
	uint32_t acc_n;		/* samples of the frame in progress */
	bool seen;		/* a frame was decided: the floor is defined */
	bool last;		/* decision of the last decided frame */
	int64_t acc_s16;	/* sum of squares of the frame in progress (S16) */
	double acc_f32;		/* same, F32 */
	double block_min;	/* minimum level in the current block */
	double ring[VAD_BLOCKS];
	/* Per-buffer state (vad_begin .. vad_end). */
	uint32_t b_frames;  /* frames decided in this buffer */
	uint32_t b_speech;  /* of which speech */
	uint32_t b_first;   /* first speech frame (valid when b_speech > 0) */
	uint32_t b_last;    /* last speech frame */
	uint32_t b_segs;    /* runs of speech frames */
	bool b_prev;	    /* decision of the previous frame of this buffer */
	uint32_t b_wr;	    /* gate: bytes kept so far (write offset) */
	uint32_t b_pend;    /* gate: bytes of the frame in progress not yet written */
	uint32_t b_pend_at; /* gate: where those bytes start in the buffer */
};

static const char *const vad_modes[] = {"annotate", "gate"};

static const struct dp_param_def vad_params[] = {
    {"threshold_db", "Frames quieter than this (dBFS RMS, -120..0) are never speech.", false,
     "-45"},
    {"hangover_ms", "Keep reporting speech this long after the last active frame (0..10000).",
     false, "200"},
    {"mode", "annotate (vad.speech only) or gate (also drop the samples of non-speech frames).",
     false, "annotate"},
};

static int
vad_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct vad_conf *c = conf;
	uint64_t hang;
	unsigned mode;

	if (dp_node_arg_double(args, "threshold_db", -120, 0, &c->threshold_db, err) != 0 ||
	    dp_node_arg_u64(args, "hangover_ms", 0, 10000, &hang, err) != 0 ||
	    dp_node_arg_choice(args, "mode", vad_modes, 2, &mode, err) != 0)
		return -EINVAL;
	c->hangover_ms = (uint32_t)hang;
	c->gate = mode == 1;
	return 0;
}

static int
check_format(const struct dp_format *in, struct dp_err *err)
{
	if (in->channels > 1)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "needs mono input, got %u channels (add channels count=1 first)",
				  in->channels),
		       -EINVAL;
	if (in->rate != 0 && in->rate != 8000 && in->rate != 16000 && in->rate != 32000 &&
	    in->rate != 48000)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "needs 8000, 16000, 32000 or 48000 Hz input, got %u Hz (add "
				  "resample first)",
				  in->rate),
		       -EINVAL;
	return 0;
}

static int
vad_infer(const void *conf, const struct dp_format *in, struct dp_format *out, struct dp_err *err)
{
	(void)conf;
	*out = *in;
	return check_format(in, err);
}

static void
vad_reset(const void *conf, void *state)
{
	const struct vad_conf *c = conf;
	struct vad_state *st = state;
	uint32_t frame = st->frame_samples;

	memset(st, 0, sizeof(*st));
	st->frame_samples = frame;
	st->block_frames = 10;
	/* Rounded up: hangover_ms=15 still bridges a 10 ms dip. */
	st->hang_frames = (c->hangover_ms + 9) / 10;
	st->block_min = INFINITY;
}

static int
vad_init(const void *conf, void *state, const struct dp_format *in, struct dp_err *err)
{
	struct vad_state *st = state;

	if (check_format(in, err) != 0)
		return -EINVAL;
	st->frame_samples = in->rate / 100;
	vad_reset(conf, state);
	return 0;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

/* Floor over the earlier frames of the last second: the ring and the block in progress. */
static double
floor_db(const struct vad_state *st)
{
	double f = st->block_min;

	for (uint32_t i = 0; i < st->n_blocks; i++)
		f = st->ring[i] < f ? st->ring[i] : f;
	return f;
}

/* Decide the frame just completed (acc_* hold its sums) and fold it into the floor. */
static bool
decide(const struct vad_conf *c, struct vad_state *st, bool s16)
{
	double sum = s16 ? (double)st->acc_s16 / (32768.0 * 32768.0) : st->acc_f32;
	double level = VAD_SILENCE_DB;
	bool active, speech;

	sum /= st->acc_n;
	if (sum >= 1e-12)
		level = 10.0 * log10(sum);
	if (st->seen)
		active = level > c->threshold_db && level > floor_db(st) + VAD_MARGIN_DB;
	else
		active = level > c->threshold_db + VAD_MARGIN_DB;
	if (active && st->seen) {
		speech = true;
		st->hang_left = st->hang_frames;
	} else if (active) {
		speech = true; /* the first frame: no hangover from a floor we never measured */
	} else if (st->hang_left > 0) {
		speech = true;
		st->hang_left--;
	} else {
		speech = false;
	}
	/* Only now does this frame join the floor (for the frames after it). */
	if (level < st->block_min)
		st->block_min = level;
	if (++st->in_block >= st->block_frames) {
		st->ring[st->head] = st->block_min;
		st->head = (st->head + 1) % VAD_BLOCKS;
		if (st->n_blocks < VAD_BLOCKS)
			st->n_blocks++;
		st->in_block = 0;
		st->block_min = INFINITY;
	}
	st->seen = true;
	st->last = speech;
	st->acc_n = 0;
	st->acc_s16 = 0;
	st->acc_f32 = 0.0;
	return speech;
}

static void
vad_begin(struct vad_state *st)
{
	st->b_frames = st->b_speech = st->b_segs = 0;
	st->b_first = st->b_last = 0;
	st->b_prev = false; /* a run that continues from the last buffer counts here too */
	st->b_wr = st->b_pend = st->b_pend_at = 0;
}

/* Gate: keep or drop the @p len bytes at @p at (they are at or after the write offset). */
static void
gate_bytes(struct vad_state *st, uint8_t *data, uint32_t at, uint32_t len, bool keep)
{
	if (!keep || len == 0)
		return;
	if (st->b_wr != at)
		memmove(data + st->b_wr, data + at, len);
	st->b_wr += len;
}

/*
 * Samples [from, to) of x->buf (sample indices): accumulate, decide every frame completed,
 * gate. Ranges of one buffer must come in order and cover it without gaps.
 */
static void
vad_range(const struct vad_conf *c, struct vad_state *st, struct dp_exec *x, uint32_t from,
	  uint32_t to)
{
	uint8_t *p = x->buf->data;
	bool s16 = x->fmt.fmt == DP_FMT_S16LE;
	uint32_t bps = s16 ? 2 : 4;
	uint32_t i = from;

	while (i < to) {
		uint32_t take = st->frame_samples - st->acc_n;
		uint32_t end;

		if (take > to - i)
			take = to - i;
		end = i + take;
		if (s16) {
			int64_t acc = 0;

			for (uint32_t k = i; k < end; k++) {
				int16_t s;

				memcpy(&s, p + 2 * k, 2);
				acc += (int64_t)s * s;
			}
			st->acc_s16 += acc;
		} else {
			double acc = st->acc_f32;

			for (uint32_t k = i; k < end; k++) {
				float f;

				memcpy(&f, p + 4 * k, 4);
				acc += (double)f * f;
			}
			st->acc_f32 = acc;
		}
		if (st->b_pend == 0)
			st->b_pend_at = i * bps;
		st->b_pend += take * bps;
		st->acc_n += take;
		i = end;
		if (st->acc_n == st->frame_samples) {
			bool sp = decide(c, st, s16);

			if (sp) {
				if (st->b_speech == 0)
					st->b_first = st->b_frames;
				st->b_last = st->b_frames;
				st->b_speech++;
				if (!st->b_prev)
					st->b_segs++;
			}
			st->b_prev = sp;
			st->b_frames++;
			if (c->gate)
				gate_bytes(st, p, st->b_pend_at, st->b_pend, sp);
			st->b_pend = 0;
		}
	}
}

static int
vad_end(const struct vad_conf *c, struct vad_state *st, struct dp_exec *x)
{
	bool any = st->b_frames > 0 ? st->b_speech > 0 : st->last;
	char v[DP_ANNOT_VAL_MAX];
	int rc;

	if (c->gate) {
		/* The tail of a frame this buffer does not complete follows the last decision. */
		gate_bytes(st, x->buf->data, st->b_pend_at, st->b_pend, st->last);
		st->b_pend = 0;
		x->buf->len = st->b_wr;
	}
	rc = dp_exec_annotate(x, "vad.speech", any ? "true" : "false");
	if (rc != DP_OK || st->b_frames <= 1)
		return rc;
	snprintf(v, sizeof(v), "%u", st->b_frames);
	rc = dp_exec_annotate(x, "vad.frames", v);
	if (rc != DP_OK)
		return rc;
	snprintf(v, sizeof(v), "%.4f", (double)st->b_speech / st->b_frames);
	rc = dp_exec_annotate(x, "vad.speech_ratio", v);
	if (rc != DP_OK)
		return rc;
	if (st->b_speech > 0)
		snprintf(v, sizeof(v), "%u-%u", st->b_first, st->b_last);
	else
		snprintf(v, sizeof(v), "none");
	rc = dp_exec_annotate(x, "vad.speech_span", v);
	if (rc != DP_OK)
		return rc;
	snprintf(v, sizeof(v), "%u", st->b_segs);
	return dp_exec_annotate(x, "vad.segments", v);
}

static int
vad_process(const void *conf, struct dp_exec *x)
{
	const struct vad_conf *c = conf;
	struct vad_state *st = x->state;
	uint32_t n = x->buf->len / (x->fmt.fmt == DP_FMT_S16LE ? 2 : 4);

	vad_begin(st);
	vad_range(c, st, x, 0, n);
	return vad_end(c, st, x);
}
/* Sliced (bulk lane): begin on the first slice, ranges of whole samples, end on the last. */
static int
vad_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct vad_conf *c = conf;
	struct vad_state *st = x->state;
	uint32_t ss = x->fmt.fmt == DP_FMT_S16LE ? 2 : 4, n = x->buf->len / ss;
	uint32_t from = *pos / ss, per = budget / ss ? budget / ss : 1;
	uint32_t to = n - from > per ? from + per : n;

	(void)sl;
	if (*pos == 0)
		vad_begin(st);
	vad_range(c, st, x, from, to);
	*pos = to * ss;
	if (to < n)
		return DP_PENDING;
	*pos = x->buf->len;
	return vad_end(c, st, x);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_vad = {
    .name = "vad",
    .summary = "Voice activity detection (energy over a tracked noise floor, with hangover); "
	       "annotates vad.speech, mode=gate empties non-speech frames.",
    .params = vad_params,
    .n_params = 3,
    .accepts = DP_ACCEPT_AUDIO,
    .conf_size = sizeof(struct vad_conf),
    .compile = vad_compile,
    .infer = vad_infer,
    .process = vad_process,
    .state_size = sizeof(struct vad_state),
    .init = vad_init,
    .reset = vad_reset,
    .slice = vad_slice,
};

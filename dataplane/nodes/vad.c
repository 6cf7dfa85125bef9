/*
 * vad: frame-level voice activity detection by energy against a tracked noise floor.
 *
 * Algorithm (per frame, i.e. per buffer of a stream or per unary request):
 *   1. level = 20 log10(RMS) in dBFS (full scale 1.0; digital silence counts as -120 dB).
 *   2. The noise floor is the minimum frame level over the last second (minimum statistics:
 *      ten 100 ms blocks in a ring, so the window slides without storing frames). Speech
 *      has gaps between syllables and words well inside a second, so the minimum follows
 *      the background, not the voice; the first frame seeds it.
 *   3. A frame is active when level > threshold_db AND level > floor + 9 dB.
 *   4. Hangover: after the last active frame, frames stay "speech" for hangover_ms of audio,
 *      which bridges the short dips inside words and the fall-off at their ends.
 * Annotation vad.speech = "true" | "false" on every frame; mode=gate also empties the payload
 * of non-speech frames (the frame still gets its response, with an empty output).
 *
 * Input: mono S16LE or F32LE at 8, 16, 32 or 48 kHz (others are INVALID_ARGUMENT at the first
 * frame). Cost: one pass over the samples plus a few operations per frame; no allocation.
 *
 * Limits (documented in docs/api.md): it detects energy, not voice, so a loud non-speech
 * sound (a door, music) above the floor counts as speech; after the background gets louder
 * (quiet -> noisy) frames count as speech for up to the one-second window until the floor
 * catches up; speech less than 9 dB above the background (SNR < 9 dB) is missed; a frame
 * gets one decision, so frames much longer than 30 ms smear onsets.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define VAD_BLOCKS     10     /* ring of block minima: 10 x 100 ms = 1 s window */
#define VAD_MARGIN_DB  9.0    /* active: this far above the floor */
#define VAD_SILENCE_DB -120.0 /* level of digital silence */

struct vad_conf {
	double threshold_db;
	uint32_t hangover_ms;
	bool gate;
};

struct vad_state {
	uint32_t block_samples; /* samples per 100 ms block */
	uint32_t hang_samples;	/* hangover in samples */
	uint32_t in_block;	/* samples seen in the current block */
	uint32_t n_blocks;	/* valid entries in ring (up to VAD_BLOCKS) */
	uint32_t head;		/* next ring slot */
	uint64_t hang_left;	/* samples of hangover still to give */
	double block_min;	/* minimum level in the current block */
	double ring[VAD_BLOCKS];
};

static const char *const vad_modes[] = {"annotate", "gate"};

static const struct dp_param_def vad_params[] = {
    {"threshold_db", "Frames quieter than this (dBFS RMS, -120..0) are never speech.", false,
     "-45"},
    {"hangover_ms", "Keep reporting speech this long after the last active frame (0..10000).",
     false, "200"},
    {"mode", "annotate (vad.speech only) or gate (also empty the payload of non-speech frames).",
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
	uint32_t block = st->block_samples;

	memset(st, 0, sizeof(*st));
	st->block_samples = block;
	st->hang_samples = (uint32_t)((uint64_t)block * 10 * c->hangover_ms / 1000);
	st->block_min = INFINITY;
}

static int
vad_init(const void *conf, void *state, const struct dp_format *in, struct dp_err *err)
{
	struct vad_state *st = state;

	if (check_format(in, err) != 0)
		return -EINVAL;
	st->block_samples = in->rate / 10;
	vad_reset(conf, state);
	return 0;
}

/* Hot path: per frame, worker lcores. No locks, syscalls, allocation or logging. */

static double
frame_level_db(const struct dp_exec *x, uint32_t *n_out)
{
	const uint8_t *p = x->buf->data;
	double sum = 0.0;
	uint32_t n;

	if (x->fmt.fmt == DP_FMT_S16LE) {
		int64_t acc = 0;

		n = x->buf->len / 2;
		for (uint32_t i = 0; i < n; i++) {
			int16_t s;

			memcpy(&s, p + 2 * i, 2);
			acc += (int64_t)s * s;
		}
		sum = (double)acc / (32768.0 * 32768.0);
	} else {
		n = x->buf->len / 4;
		for (uint32_t i = 0; i < n; i++) {
			float f;

			memcpy(&f, p + 4 * i, 4);
			sum += (double)f * f;
		}
	}
	*n_out = n;
	if (n == 0 || sum <= 0.0)
		return VAD_SILENCE_DB;
	sum /= n;
	return sum < 1e-12 ? VAD_SILENCE_DB : 10.0 * log10(sum);
}

static int
vad_process(const void *conf, struct dp_exec *x)
{
	const struct vad_conf *c = conf;
	struct vad_state *st = x->state;
	double level, floor_db;
	uint32_t n;
	bool speech;

	level = frame_level_db(x, &n);
	if (n == 0) /* an empty frame says nothing about the background */
		return dp_exec_annotate(x, "vad.speech", st->hang_left > 0 ? "true" : "false");
	/* Floor: the minimum over the ring and the block in progress (this frame included). */
	if (level < st->block_min)
		st->block_min = level;
	floor_db = st->block_min;
	for (uint32_t i = 0; i < st->n_blocks; i++)
		floor_db = st->ring[i] < floor_db ? st->ring[i] : floor_db;
	st->in_block += n;
	if (st->in_block >= st->block_samples) {
		st->ring[st->head] = st->block_min;
		st->head = (st->head + 1) % VAD_BLOCKS;
		if (st->n_blocks < VAD_BLOCKS)
			st->n_blocks++;
		st->in_block = 0;
		st->block_min = INFINITY;
	}

	if (level > c->threshold_db && level > floor_db + VAD_MARGIN_DB) {
		speech = true;
		st->hang_left = st->hang_samples;
	} else if (st->hang_left > 0) {
		speech = true;
		st->hang_left = st->hang_left > n ? st->hang_left - n : 0;
	} else {
		speech = false;
	}
	if (c->gate && !speech)
		x->buf->len = 0;
	return dp_exec_annotate(x, "vad.speech", speech ? "true" : "false");
}

static const struct dp_node_type vad_node = {
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
};

DP_NODE_REGISTER(vad_node)

/**
 * @file
 * WAV (RIFF/WAVE) files for corepipectl: reading the header of a PCM s16 or IEEE float32 file
 * (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, or WAVE_FORMAT_EXTENSIBLE with either), and writing
 * one, also as a stream whose sizes are patched at the end (or left at their maximum when the
 * output cannot seek, which readers take as "until the end of the file").
 *
 * Context: any thread; pure functions over buffers. Ownership: views borrow the caller's bytes.
 */
#ifndef COREPIPE_CTL_WAV_H
#define COREPIPE_CTL_WAV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctl_wav_fmt {
	CTL_WAV_S16 = 1, /**< = corepipe.v1.SampleFormat S16LE */
	CTL_WAV_F32 = 2, /**< = F32LE */
};

/** A parsed WAV: its format and a view of its samples. */
struct ctl_wav {
	enum ctl_wav_fmt fmt;
	uint32_t rate;
	uint32_t channels;
	const uint8_t *data; /**< interleaved samples (borrowed) */
	size_t len;	     /**< bytes: a whole number of frames */
};

/** Bytes per frame (all channels) of @p w. */
static inline size_t
ctl_wav_frame_bytes(const struct ctl_wav *w)
{
	return (size_t)w->channels * (w->fmt == CTL_WAV_S16 ? 2u : 4u);
}

/** Whether @p buf starts like a WAV file ("RIFF" .... "WAVE"). */
bool ctl_wav_detect(const uint8_t *buf, size_t n);

/**
 * Parse a WAV file held in memory.
 * @return 0, or -EINVAL with @p err saying what is wrong (not RIFF/WAVE, no fmt or data chunk,
 * an encoding other than 16-bit PCM or 32-bit float, zero rate or channels). A data chunk that
 * runs past the end of the file is truncated to what is there (a stream that was cut off);
 * a trailing partial frame is dropped.
 */
int ctl_wav_parse(const uint8_t *buf, size_t n, struct ctl_wav *w, char *err, size_t errlen);

/** Largest header ctl_wav_header() writes. */
#define CTL_WAV_HEADER_MAX 58

/**
 * Write a header for @p data_len bytes of samples (UINT32_MAX-ish sizes when @p data_len is
 * SIZE_MAX: unknown length). s16: a 44-byte PCM header; f32: IEEE float with a fact chunk
 * (58 bytes), as the format asks of non-PCM data.
 * @return the header's length.
 */
size_t ctl_wav_header(uint8_t *out, enum ctl_wav_fmt fmt, uint32_t rate, uint32_t channels,
		      size_t data_len);

#endif

/*
 * WAV files (see wav.h). Little-endian fields, read and written byte by byte.
 */
#include "client/ctl/wav.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TAG_PCM	       1
#define TAG_FLOAT      3
#define TAG_EXTENSIBLE 0xFFFE

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned
le16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

bool
ctl_wav_detect(const uint8_t *buf, size_t n)
{
	return n >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WAVE", 4) == 0;
}

int
ctl_wav_parse(const uint8_t *buf, size_t n, struct ctl_wav *w, char *err, size_t errlen)
{
	size_t off = 12;
	bool have_fmt = false;
	unsigned bits = 0;

	memset(w, 0, sizeof(*w));
	if (!ctl_wav_detect(buf, n)) {
		snprintf(err, errlen, "not a WAV file (no RIFF/WAVE header)");
		return -EINVAL;
	}
	while (off + 8 <= n) {
		size_t len = le32(buf + off + 4);
		const uint8_t *b = buf + off + 8;

		if (len > n - off - 8)
			len = n - off - 8;
		if (memcmp(buf + off, "fmt ", 4) == 0) {
			unsigned tag;

			if (len < 16) {
				snprintf(err, errlen, "fmt chunk too short (%zu bytes)", len);
				return -EINVAL;
			}
			tag = le16(b);
			w->channels = le16(b + 2);
			w->rate = le32(b + 4);
			bits = le16(b + 14);
			if (tag == TAG_EXTENSIBLE && len >= 26)
				tag = le16(b + 24); /* the sub-format GUID's first two bytes */
			if (tag == TAG_PCM && bits == 16) {
				w->fmt = CTL_WAV_S16;
			} else if (tag == TAG_FLOAT && bits == 32) {
				w->fmt = CTL_WAV_F32;
			} else {
				snprintf(
				    err, errlen,
				    "unsupported WAV encoding (format tag %u, %u bits): corepipe "
				    "takes 16-bit PCM or 32-bit float (sox in.wav -b 16 out.wav)",
				    tag, bits);
				return -EINVAL;
			}
			if (w->rate == 0 || w->channels == 0) {
				snprintf(err, errlen, "WAV header says %u Hz, %u channels", w->rate,
					 w->channels);
				return -EINVAL;
			}
			have_fmt = true;
		} else if (memcmp(buf + off, "data", 4) == 0) {
			if (!have_fmt) {
				snprintf(err, errlen, "WAV data chunk before its fmt chunk");
				return -EINVAL;
			}
			w->data = b;
			w->len = len - len % ctl_wav_frame_bytes(w);
			return 0;
		}
		off += 8 + len + (len & 1);
	}
	snprintf(err, errlen,
		 have_fmt ? "WAV file without a data chunk" : "WAV file without a fmt chunk");
	return -EINVAL;
}

size_t
ctl_wav_header(uint8_t *out, enum ctl_wav_fmt fmt, uint32_t rate, uint32_t channels,
	       size_t data_len)
{
	unsigned sb = fmt == CTL_WAV_S16 ? 2 : 4;
	bool f = fmt == CTL_WAV_F32;
	size_t hdr = f ? 58 : 44;
	uint32_t dl =
	    data_len > 0xFFFFFFFFu - hdr ? 0xFFFFFFFFu - (uint32_t)hdr : (uint32_t)data_len;
	uint8_t *p = out;

	memcpy(p, "RIFF", 4);
	put32(p + 4, (uint32_t)(hdr - 8) + dl);
	memcpy(p + 8, "WAVE", 4);
	memcpy(p + 12, "fmt ", 4);
	put32(p + 16, f ? 18 : 16);
	put16(p + 20, f ? TAG_FLOAT : TAG_PCM);
	put16(p + 22, channels);
	put32(p + 24, rate);
	put32(p + 28, rate * channels * sb);
	put16(p + 32, channels * sb);
	put16(p + 34, sb * 8);
	p += 36;
	if (f) {
		put16(p, 0); /* cbSize */
		memcpy(p + 2, "fact", 4);
		put32(p + 6, 4);
		put32(p + 10, dl / (channels * sb)); /* frames */
		p += 14;
	}
	memcpy(p, "data", 4);
	put32(p + 4, dl);
	return hdr;
}

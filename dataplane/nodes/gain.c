/*
 * gain: multiplies every audio sample by 10^(db/20).
 *
 * S16LE: the product is rounded to nearest with ties to even (lrintf under the default
 * rounding mode) and saturated to [-32768, 32767]. F32LE: plain float multiplication, no
 * clipping (float audio may exceed full scale between nodes). In place. The factor is computed
 * once at compile time, in double, then used as float: float has 24 bits of mantissa, so the
 * S16 products are exact before rounding.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GAIN_DB_MAX 200.0

struct gain_conf {
	float factor;
};

static const struct dp_param_def gain_params[] = {
    {"db",
     "Gain in decibels (a finite number in [-200, 200]); each sample is multiplied "
     "by 10^(db/20).",
     true, NULL},
};

static int
gain_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct gain_conf *c = conf;
	const char *s = dp_node_arg(args, "db");
	char *end;
	double db;

	errno = 0;
	db = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE)
		return dp_err_set(err, DP_INVALID_ARGUMENT, "param db: not a number: '%.40s'", s),
		       -EINVAL;
	if (!isfinite(db) || db < -GAIN_DB_MAX || db > GAIN_DB_MAX)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "param db: %.40s out of range [-200, 200]", s),
		       -EINVAL;
	c->factor = (float)pow(10.0, db / 20.0);
	return 0;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

/* Samples in bytes [from, to) of p (both multiples of the sample size), in place. */
static void
gain_range(float f, uint8_t fmt, uint8_t *p, uint32_t from, uint32_t to)
{
	if (fmt == DP_FMT_S16LE) {
		for (uint32_t i = from; i + 2 <= to; i += 2) {
			int16_t s;
			long v;

			memcpy(&s, p + i, 2);
			v = lrintf((float)s * f);
			if (v > 32767)
				v = 32767;
			else if (v < -32768)
				v = -32768;
			s = (int16_t)v;
			memcpy(p + i, &s, 2);
		}
	} else {
		for (uint32_t i = from; i + 4 <= to; i += 4) {
			float s;

			memcpy(&s, p + i, 4);
			s *= f;
			memcpy(p + i, &s, 4);
		}
	}
}

static int
gain_process(const void *conf, struct dp_exec *x)
{
	const struct gain_conf *c = conf;

	gain_range(c->factor, x->fmt.fmt, x->buf->data, 0, x->buf->len);
	return DP_OK;
}

/* Sliced (bulk lane): the same loop over consecutive ranges of whole samples. */
static int
gain_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct gain_conf *c = conf;
	uint32_t ss = dp_fmt_sample_size(x->fmt.fmt), end = x->buf->len;

	(void)sl;
	if (end - *pos > budget)
		end = *pos + (budget / ss > 0 ? budget / ss * ss : ss);
	if (end > x->buf->len)
		end = x->buf->len;
	gain_range(c->factor, x->fmt.fmt, x->buf->data, *pos, end);
	*pos = end;
	return end < x->buf->len ? DP_PENDING : DP_OK;
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_gain = {
    .name = "gain",
    .summary = "Multiply audio samples by 10^(db/20); S16LE rounds and saturates, F32LE does "
	       "not clip.",
    .params = gain_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_AUDIO,
    .conf_size = sizeof(struct gain_conf),
    .compile = gain_compile,
    .process = gain_process,
    .slice = gain_slice,
};

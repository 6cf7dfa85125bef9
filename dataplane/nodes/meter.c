/*
 * meter: level of an audio buffer, as annotations.
 *
 * meter.rms_dbfs = 20 log10(sqrt(mean(x^2))) and meter.peak_dbfs = 20 log10(max |x|) over
 * every sample of every channel, with x scaled so that full scale is 1.0 (S16LE: x / 32768;
 * F32LE as is). Full scale is 0 dBFS, so a full-scale square wave reads 0.00 / 0.00 and a
 * full-scale sine -3.01 / 0.00. Two decimals; silence (or an empty buffer) is "-inf".
 * The payload passes through unchanged. Sums are in double, so a 16 MiB buffer loses nothing.
 * In the bulk lane it runs in slices of whole samples (meter_slice), with the same figures.
 */
#include "dataplane/node.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static void
db_text(char *out, size_t n, double v)
{
	if (v <= 0.0)
		snprintf(out, n, "-inf");
	else
		snprintf(out, n, "%.2f", 20.0 * log10(v));
}

/*
 * The sums, over every sample seen so far. S16LE sums are integers and F32LE sums are added in
 * sample order, so any split into ranges gives the one-shot figures bit for bit.
 */
struct meter_acc {
	int64_t acc; /* S16LE: sum of s^2 */
	int32_t pk;  /* S16LE: max |s| */
	double sum;  /* F32LE: sum of x^2, in sample order */
	double peak; /* F32LE: max |x| */
	uint64_t n;  /* samples */
};

/* Add samples [from, to) of @p p (format @p fmt) to @p m. */
static void
meter_range(struct meter_acc *m, uint8_t fmt, const uint8_t *p, uint64_t from, uint64_t to)
{
	if (fmt == DP_FMT_S16LE) {
		int64_t acc = m->acc;
		int32_t pk = m->pk;

		for (uint64_t i = from; i < to; i++) {
			int16_t s;
			int32_t a;

			memcpy(&s, p + 2 * i, 2);
			acc += (int64_t)s * s;
			a = s < 0 ? -(int32_t)s : s;
			pk = a > pk ? a : pk;
		}
		m->acc = acc;
		m->pk = pk;
	} else {
		double sum = m->sum, peak = m->peak;

		for (uint64_t i = from; i < to; i++) {
			float f;
			double a;

			memcpy(&f, p + 4 * i, 4);
			sum += (double)f * f;
			a = fabs((double)f);
			peak = a > peak ? a : peak;
		}
		m->sum = sum;
		m->peak = peak;
	}
	m->n += to - from;
}

/* The two annotations from the sums of every sample. */
static int
meter_annotate(struct dp_exec *x, const struct meter_acc *m)
{
	double sum = m->sum, peak = m->peak;
	char rms_s[24], peak_s[24];
	int rc;

	if (x->fmt.fmt == DP_FMT_S16LE) {
		sum = (double)m->acc / (32768.0 * 32768.0);
		peak = m->pk / 32768.0;
	}
	db_text(rms_s, sizeof(rms_s), m->n ? sqrt(sum / (double)m->n) : 0.0);
	db_text(peak_s, sizeof(peak_s), peak);
	rc = dp_exec_annotate(x, "meter.rms_dbfs", rms_s);
	if (rc != DP_OK)
		return rc;
	return dp_exec_annotate(x, "meter.peak_dbfs", peak_s);
}

static inline uint32_t
sample_bytes(const struct dp_exec *x)
{
	return x->fmt.fmt == DP_FMT_S16LE ? 2 : 4;
}

static int
meter_process(const void *conf, struct dp_exec *x)
{
	struct meter_acc m = {0};

	(void)conf;
	meter_range(&m, x->fmt.fmt, x->buf->data, 0, x->buf->len / sample_bytes(x));
	return meter_annotate(x, &m);
}

/* Sliced (bulk lane): the sums in the slice area, a range of whole samples per slice. */
_Static_assert(sizeof(struct meter_acc) <= DP_SLICE_MAX, "meter sums fit a slice");

static int
meter_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	struct meter_acc *m = sl; /* zeroed before the first slice: empty sums */
	uint32_t ss = sample_bytes(x), n = x->buf->len / ss, from = *pos / ss;
	uint32_t k = budget / ss ? budget / ss : 1;

	(void)conf;
	if (k > n - from)
		k = n - from;
	meter_range(m, x->fmt.fmt, x->buf->data, from, from + k);
	*pos = (from + k) * ss;
	if (from + k < n)
		return DP_PENDING;
	*pos = x->buf->len; /* a trailing partial sample is not a sample (as in process) */
	return meter_annotate(x, m);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_meter = {
    .name = "meter",
    .summary = "Annotate the RMS and peak level of audio in dBFS (meter.rms_dbfs, "
	       "meter.peak_dbfs; -inf for silence).",
    .accepts = DP_ACCEPT_AUDIO,
    .process = meter_process,
    .slice = meter_slice,
};

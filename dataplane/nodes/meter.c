/*
 * meter: level of an audio buffer, as annotations.
 *
 * meter.rms_dbfs = 20 log10(sqrt(mean(x^2))) and meter.peak_dbfs = 20 log10(max |x|) over
 * every sample of every channel, with x scaled so that full scale is 1.0 (S16LE: x / 32768;
 * F32LE as is). Full scale is 0 dBFS, so a full-scale square wave reads 0.00 / 0.00 and a
 * full-scale sine -3.01 / 0.00. Two decimals; silence (or an empty buffer) is "-inf".
 * The payload passes through unchanged. Sums are in double, so a 16 MiB buffer loses nothing.
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

static int
meter_process(const void *conf, struct dp_exec *x)
{
	const uint8_t *p = x->buf->data;
	uint32_t len = x->buf->len;
	double sum = 0.0, peak = 0.0;
	uint64_t n;
	char rms_s[24], peak_s[24];
	int rc;

	(void)conf;
	if (x->fmt.fmt == DP_FMT_S16LE) {
		int64_t acc = 0;
		int32_t pk = 0;

		n = len / 2;
		for (uint64_t i = 0; i < n; i++) {
			int16_t s;
			int32_t a;

			memcpy(&s, p + 2 * i, 2);
			acc += (int64_t)s * s;
			a = s < 0 ? -(int32_t)s : s;
			pk = a > pk ? a : pk;
		}
		sum = (double)acc / (32768.0 * 32768.0);
		peak = pk / 32768.0;
	} else {
		n = len / 4;
		for (uint64_t i = 0; i < n; i++) {
			float f;
			double a;

			memcpy(&f, p + 4 * i, 4);
			sum += (double)f * f;
			a = fabs((double)f);
			peak = a > peak ? a : peak;
		}
	}
	db_text(rms_s, sizeof(rms_s), n ? sqrt(sum / (double)n) : 0.0);
	db_text(peak_s, sizeof(peak_s), peak);
	rc = dp_exec_annotate(x, "meter.rms_dbfs", rms_s);
	if (rc != DP_OK)
		return rc;
	return dp_exec_annotate(x, "meter.peak_dbfs", peak_s);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_meter = {
    .name = "meter",
    .summary = "Annotate the RMS and peak level of audio in dBFS (meter.rms_dbfs, "
	       "meter.peak_dbfs; -inf for silence).",
    .accepts = DP_ACCEPT_AUDIO,
    .process = meter_process,
};

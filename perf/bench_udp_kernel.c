/*
 * bench_udp_kernel: a kernel-socket load client for the corepipe UDP wire protocol, built on
 * libcorepipe-udp (sendmmsg/recvmmsg batches). It keeps --window requests outstanding
 * (closed loop) on one socket for -z seconds, after --warmup seconds, and reports
 * requests/s, answer latency percentiles and the status counts. The same client drives
 * corepiped's tap port and perf/udp_echo (the kernel baseline), so the two are compared under
 * the same load.
 *
 *   bench_udp_kernel --target HOST:PORT [-c|--window N] [-z|--duration SECONDS]
 *       [--warmup SECONDS] [--size BYTES] [--pipeline ID] [--batch N] [--sockets N]
 *       [--label NAME]
 *
 * --sockets N spreads the window over N sockets (N flows: distinct source ports), served
 * round robin from the one thread. It prints a human summary and one line "RESULT {json}".
 *
 * Context: one thread. Ownership: the clients are created and destroyed here.
 */
#include "client/udp/corepipe_udp.h"
#include "perf/common.h"
#include "perf/perf_opt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOCKETS_MAX 64
#define STATUS_MAX  17

struct opts {
	char host[256];
	uint16_t port;
	unsigned window, batch, sockets, size;
	uint32_t pipeline;
	double seconds, warmup;
	const char *label;
};

/* ==== Options =============================================================================== */

/* --target HOST:PORT (the host as given: a name or an address). */
static const char *
parse_target(void *opts, const struct perf_opt *row, const char *arg)
{
	struct opts *o = opts;
	const char *colon = strrchr(arg, ':');
	size_t hl;
	char *end;
	unsigned long port;

	(void)row;
	if (colon == NULL || (hl = (size_t)(colon - arg)) == 0 || hl >= sizeof(o->host))
		return "expected HOST:PORT";
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return "expected HOST:PORT with a port in [1, 65535]";
	memcpy(o->host, arg, hl);
	o->host[hl] = '\0';
	o->port = (uint16_t)port;
	return NULL;
}

#define AT(field, ctype) PERF_OPT_AT(struct opts, field, ctype)

static const struct perf_opt g_table[] = {
    {"target", 0, PERF_OPT_FUNC, .fn = parse_target, .arg = "HOST:PORT",
     .help = "the server's UDP address (required)"},
    {"window", 'c', PERF_OPT_UINT, AT(window, unsigned), 1, 4294967295.0, .arg = "N",
     .help = "requests outstanding in total (closed loop)", .show_default = true},
    {"duration", 'z', PERF_OPT_DOUBLE, AT(seconds, double), 0.001, 1e6, .arg = "SECONDS",
     .help = "seconds counted, after the warm-up", .show_default = true},
    {"warmup", 0, PERF_OPT_DOUBLE, AT(warmup, double), 0, 1e6, .arg = "S",
     .help = "seconds of load before counting", .show_default = true},
    {"size", 0, PERF_OPT_UINT, AT(size, unsigned), 0, 1400, .arg = "BYTES",
     .help = "payload bytes per request", .show_default = true},
    {"pipeline", 0, PERF_OPT_UINT, AT(pipeline, uint32_t), 1, 4294967295.0, .arg = "ID",
     .help = "pipeline id", .show_default = true},
    {"batch", 0, PERF_OPT_UINT, AT(batch, unsigned), 1, 1024, .arg = "N",
     .help = "requests per sendmmsg / results per recvmmsg", .show_default = true},
    {"sockets", 0, PERF_OPT_UINT, AT(sockets, unsigned), 1, SOCKETS_MAX, .arg = "N",
     .help = "sockets (flows) the window is spread over", .show_default = true},
    {"label", 0, PERF_OPT_STR, AT(label, const char *), .arg = "NAME",
     .help = "label of the RESULT line"},
    {"help", 'h', PERF_OPT_HELP, .help = "this text"},
    {.type = PERF_OPT_END},
};

static const struct perf_opt_cmd g_cmd = {
    .prog = "bench_udp_kernel",
    .synopsis = "usage: bench_udp_kernel --target HOST:PORT [options]\n\n",
    .opts = g_table,
    .size = sizeof(struct opts),
};

/* @return 0, 1 (--help printed) or -EINVAL (reported). */
static int
parse_opts(int argc, char **argv, struct opts *o)
{
	int argi, rc;

	*o = (struct opts){.window = 64,
			   .batch = 32,
			   .sockets = 1,
			   .size = 64,
			   .pipeline = 1,
			   .seconds = 5,
			   .warmup = 1,
			   .label = ""};
	rc = perf_opt_parse(&g_cmd, argc, argv, o, &argi);
	if (rc != 0)
		return rc;
	if (argi != argc) {
		fprintf(stderr, "bench_udp_kernel: unexpected argument '%s'\n", argv[argi]);
		return -EINVAL;
	}
	if (o->host[0] == '\0') {
		fprintf(stderr, "bench_udp_kernel: --target HOST:PORT is required\n");
		return -EINVAL;
	}
	if (o->window < o->sockets) {
		fprintf(stderr, "bench_udp_kernel: --window must be at least --sockets\n");
		return -EINVAL;
	}
	return 0;
}

/* The window of one socket: a power of two, at least its share of --window and the batch. */
static unsigned
pow2_at_least(unsigned v)
{
	unsigned p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

int
main(int argc, char **argv)
{
	struct corepipe_udp *cl[SOCKETS_MAX];
	unsigned out[SOCKETS_MAX], share[SOCKETS_MAX];
	struct corepipe_udp_opts co;
	struct corepipe_udp_req *reqs;
	struct corepipe_udp_resp *res;
	struct hist *lat;
	struct opts o;
	uint8_t *payload;
	uint64_t by_status[STATUS_MAX] = {0}, timeouts = 0, bad_output = 0, answered = 0, sent = 0;
	uint64_t t_start, t_meas, t_end, ans_meas = 0, sent_meas = 0, ans_end = 0, sent_end = 0;
	uint64_t errors = 0;
	bool measuring = false;
	double secs;
	int rc;

	rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		return rc == 1 ? 0 : 2;
	payload = malloc(o.size + 1);
	reqs = calloc(o.batch, sizeof(*reqs));
	res = calloc(o.batch, sizeof(*res));
	lat = calloc(1, sizeof(*lat));
	if (payload == NULL || reqs == NULL || res == NULL || lat == NULL)
		return 1;
	for (unsigned i = 0; i < o.size; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	corepipe_udp_opts_init(&co);
	co.batch = o.batch;
	co.timeout_ms = 1000;
	co.max_datagram = 2048;
	co.rcvbuf = 4 << 20;
	co.sndbuf = 4 << 20;
	for (unsigned s = 0; s < o.sockets; s++) {
		share[s] = o.window / o.sockets + (s < o.window % o.sockets ? 1 : 0);
		co.window = pow2_at_least(share[s] > o.batch ? share[s] : o.batch);
		out[s] = 0;
		cl[s] = corepipe_udp_create(o.host, o.port, &co);
		if (cl[s] == NULL) {
			fprintf(stderr, "bench_udp_kernel: %s:%u: %s\n", o.host, o.port,
				strerror(errno));
			return 1;
		}
	}

	t_start = now_ns();
	t_meas = t_start + (uint64_t)(o.warmup * 1e9);
	t_end = t_meas + (uint64_t)(o.seconds * 1e9);
	for (;;) {
		uint64_t now = now_ns();
		bool any = false;

		if (!measuring && now >= t_meas) {
			measuring = true;
			ans_meas = answered;
			sent_meas = sent;
			t_meas = now;
		}
		if (now >= t_end)
			break;
		for (unsigned s = 0; s < o.sockets; s++) {
			unsigned room = share[s] - out[s];
			int n;

			if (room > o.batch)
				room = o.batch;
			if (room != 0) {
				for (unsigned i = 0; i < room; i++) {
					reqs[i].pipeline_id = o.pipeline;
					reqs[i].payload = payload;
					reqs[i].len = o.size;
					reqs[i].user = (void *)(uintptr_t)now;
				}
				n = corepipe_udp_send_batch(cl[s], reqs, room, NULL);
				if (n > 0) {
					out[s] += (unsigned)n;
					sent += (uint64_t)n;
				} else if (n < 0 && n != -ENOBUFS) {
					errors++;
				}
			}
			/* Wait a little only when this socket has everything outstanding. */
			n = corepipe_udp_recv_batch(cl[s], res, o.batch,
						    out[s] >= share[s] && o.sockets == 1 ? 10 : 0);
			if (n < 0) {
				errors++;
				continue;
			}
			any |= n > 0;
			now = now_ns();
			for (int i = 0; i < n; i++) {
				const struct corepipe_udp_resp *r = &res[i];

				out[s]--;
				if (r->err == -ETIMEDOUT) {
					timeouts++;
					continue;
				}
				answered++;
				by_status[r->status >= 0 && r->status < STATUS_MAX ? r->status
										   : 2]++;
				if (r->status == COREPIPE_UDP_OK &&
				    (r->output_len != o.size ||
				     memcmp(r->output, payload, o.size) != 0))
					bad_output++;
				if (measuring && now < t_end)
					hist_add(lat, now - (uint64_t)(uintptr_t)r->user);
			}
		}
		(void)any;
	}
	ans_end = answered;
	sent_end = sent;
	secs = (double)(now_ns() - t_meas) / 1e9;
	{
		double rps = (double)(ans_end - ans_meas) / secs;

		printf("bench_udp_kernel %s: %s:%u pipeline %u, %u B, window %u over %u socket(s), "
		       "batch %u, %.2f s\n",
		       o.label, o.host, o.port, o.pipeline, o.size, o.window, o.sockets, o.batch,
		       secs);
		printf("  answers/s %.0f  requests/s %.0f\n", rps,
		       (double)(sent_end - sent_meas) / secs);
		printf("  total: sent %" PRIu64 " answered %" PRIu64 " timeouts %" PRIu64
		       " bad_output %" PRIu64 " socket errors %" PRIu64 "\n",
		       sent, answered, timeouts, bad_output, errors);
		printf("  status:");
		for (unsigned k = 0; k < STATUS_MAX; k++)
			if (by_status[k] != 0)
				printf(" %s=%" PRIu64, corepipe_udp_status_name((int)k),
				       by_status[k]);
		printf("\n  latency us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f (%" PRIu64
		       " samples)\n",
		       (double)hist_pct(lat, 50) / 1e3, (double)hist_pct(lat, 90) / 1e3,
		       (double)hist_pct(lat, 99) / 1e3, (double)hist_pct(lat, 99.9) / 1e3,
		       (double)lat->max / 1e3, lat->n);
		printf("RESULT {\"label\":\"%s\",\"target\":\"%s:%u\",\"pipeline\":%u,\"size\":%u,"
		       "\"window\":%u,\"sockets\":%u,\"batch\":%u,\"seconds\":%.3f,"
		       "\"answers_per_s\":%.0f,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
		       ",\"ok\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"bad_output\":%" PRIu64
		       ",\"errors\":%" PRIu64 ",\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
		       "\"p999_us\":%.2f}\n",
		       o.label, o.host, o.port, o.pipeline, o.size, o.window, o.sockets, o.batch,
		       secs, rps, sent, answered, by_status[0], timeouts, bad_output, errors,
		       (double)hist_pct(lat, 50) / 1e3, (double)hist_pct(lat, 90) / 1e3,
		       (double)hist_pct(lat, 99) / 1e3, (double)hist_pct(lat, 99.9) / 1e3);
	}
	for (unsigned s = 0; s < o.sockets; s++)
		corepipe_udp_destroy(cl[s]);
	free(payload);
	free(reqs);
	free(res);
	free(lat);
	return 0;
}

/*
 * corepipe-bench, --proto udp: Execute through the server's UDP data path (wire protocol v1)
 * with libcorepipe-udp: one client (one connect()ed socket) per thread, requests sent in
 * batches of up to --udp-batch with one sendmmsg(), results collected with recvmmsg(). The
 * same closed or open loop as the gRPC arm, the same counters: a request without an answer
 * within -t counts as DEADLINE_EXCEEDED (with -t as its latency). Each request carries its
 * start (scheduled) time in its user pointer.
 */
#include "perf/corepipe_bench_input.h"

#include <errno.h>
#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UDP_TIMEOUT_MS 1000 /* without -t: a lost datagram holds its slot this long */

/* Where and what every thread sends. */
struct udp {
	char host[256];
	uint16_t port;
	struct corepipe_udp_audio audio;
};

/* ==== Set-up ================================================================================ */

/* --udp HOST:PORT or [ADDR6]:PORT into @p u. @return 0 or -EINVAL. */
static int
parse_addr(const char *a, struct udp *u)
{
	const char *colon = strrchr(a, ':');
	size_t hl;
	char *end;
	unsigned long port;

	if (colon == NULL)
		return -EINVAL;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		return -EINVAL;
	if (*a == '[' && colon > a && colon[-1] == ']') { /* [v6]:port */
		a++;
		hl = (size_t)(colon - 1 - a);
	} else {
		hl = (size_t)(colon - a);
	}
	if (hl == 0 || hl >= sizeof(u->host))
		return -EINVAL;
	memcpy(u->host, a, hl);
	u->host[hl] = '\0';
	u->port = (uint16_t)port;
	return 0;
}

static void
udp_setup(struct cb_run *run)
{
	struct udp *u = cb_xcalloc(1, sizeof(*u));
	const struct cb_input *in = run->in;

	if (parse_addr(run->o->udp_addr, u) != 0)
		cb_die("--udp: expected HOST:PORT (IPv6: [ADDR]:PORT)");
	u->audio = (struct corepipe_udp_audio){
	    .fmt = in->fmt == COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE ? COREPIPE_UDP_F32LE
									       : COREPIPE_UDP_S16LE,
	    .channels = (uint16_t)in->channels,
	    .rate = in->rate};
	run->proto_state = u;
}

/* Sockets need no handshake: each thread makes its own, and all count as ready. */
static unsigned
udp_connect(struct cb_run *run, struct cb_worker *w, unsigned n)
{
	(void)run;
	(void)w;
	return n;
}

static struct corepipe_udp *
client_create(const struct cb_worker *w)
{
	const struct cb_run *run = w->run;
	const struct udp *u = run->proto_state;
	struct corepipe_udp_opts uo;
	struct corepipe_udp *c;

	corepipe_udp_opts_init(&uo);
	uo.timeout_ms = run->o->timeout_set ? (int)run->o->timeout_ms : UDP_TIMEOUT_MS;
	uo.batch = run->o->udp_batch;
	/* Bursts of answers overflow a default-sized receive buffer (the kernel caps this at
	 * net.core.rmem_max / wmem_max). */
	uo.rcvbuf = 4 << 20;
	uo.sndbuf = 4 << 20;
	/* Ids take window slots by id % window, and answers come back out of order: a window of
	 * 4x the calls in flight (at least the library's 1024) keeps collisions rare. */
	while (uo.window < 4 * w->n_slots && uo.window < 65536)
		uo.window <<= 1;
	uo.max_datagram = run->in->len + 4096 < COREPIPE_UDP_MAX_DATAGRAM
			      ? run->in->len + 4096
			      : COREPIPE_UDP_MAX_DATAGRAM;
	c = corepipe_udp_create(u->host, u->port, &uo);
	if (c == NULL) {
		fprintf(stderr, "corepipe-bench: UDP client for %s:%u: %s\n", u->host, u->port,
			strerror(errno));
		exit(2);
	}
	return c;
}

/* ==== Requests and results ================================================================== */

static void
udp_result(struct cb_worker *w, const struct corepipe_udp_resp *r, uint64_t now)
{
	const struct cb_input *in = w->run->in;
	uint64_t t0 = (uint64_t)(uintptr_t)r->user;
	int st = r->err == 0 ? r->status : GRPC_STATUS_DEADLINE_EXCEEDED;
	const char *m = r->err ? "no answer in time (-t)" : "the server answered an error";

	if (!cb_reported(w->run, t0, now))
		return;
	hist_add(&w->hist, now - t0);
	w->last_done_ns = now;
	cb_count_status(w, st, m, strlen(m));
	if (st == GRPC_STATUS_OK && w->run->o->check_output) {
		if (r->output_len == in->len &&
		    (r->output_len == 0 || memcmp(r->output, in->bytes, r->output_len) == 0))
			w->ok_checked++;
		else
			w->bad_output++;
	}
}

/* Send up to @p k requests of @p reqs; what the client does not take is, in an open loop, a
 * missed send (backlog), in a closed loop a claim given back (sent again later).
 * @return how many were taken. */
static unsigned
send_batch(struct cb_worker *w, struct corepipe_udp *c, struct corepipe_udp_req *reqs, unsigned k)
{
	int n = corepipe_udp_send_batch(c, reqs, k, NULL);

	if (n == -ENOBUFS)
		n = 0; /* window slot still taken by a late request: results first */
	if (n < 0) {
		fprintf(stderr, "corepipe-bench: UDP send: %s\n", strerror(-n));
		exit(2);
	}
	for (unsigned i = (unsigned)n; i < k; i++) {
		if (w->run->o->open_loop)
			w->backlog++;
		else
			cb_unclaim(w->run, (uint64_t)(uintptr_t)reqs[i].user);
	}
	return (unsigned)n;
}

static void *
udp_thread(void *arg)
{
	struct cb_worker *w = arg;
	struct cb_run *run = w->run;
	const struct cb_opts *o = run->o;
	const struct cb_input *in = run->in;
	const struct udp *u = run->proto_state;
	struct corepipe_udp *c = client_create(w);
	unsigned outstanding = 0, batch = o->udp_batch;
	struct corepipe_udp_req *reqs = cb_xcalloc(batch, sizeof(*reqs));
	struct corepipe_udp_resp *res = cb_xcalloc(batch, sizeof(*res));
	uint64_t due = run->t_start_ns;

	for (;;) {
		uint64_t now = now_ns();
		bool stop = cb_should_stop(run, now);
		unsigned k = 0;
		int n, wait_ms;

		while (!stop && outstanding + k < w->n_slots && k < batch &&
		       (!o->open_loop || due <= now)) {
			uint64_t t0 = o->open_loop ? due : now;

			if (!cb_claim(run, t0)) {
				stop = true;
				break;
			}
			reqs[k++] = (struct corepipe_udp_req){.pipeline_id = o->pipeline_id,
							      .payload = in->bytes,
							      .len = in->len,
							      .audio = in->audio ? &u->audio : NULL,
							      .user = (void *)(uintptr_t)t0};
			if (o->open_loop)
				due = cb_sched_next(w, due);
		}
		if (k > 0)
			outstanding += send_batch(w, c, reqs, k);
		if (outstanding == 0 && stop)
			break;
		/* Wait for a result; in an open loop with a free slot, only until the next send. */
		wait_ms = 50;
		if (o->open_loop && !stop && outstanding < w->n_slots)
			wait_ms = due > now ? (int)((due - now) / 1000000) : 0;
		if (outstanding == 0 && wait_ms > 0) {
			usleep((useconds_t)(wait_ms * 1000)); /* nothing can arrive */
			continue;
		}
		if (outstanding == 0)
			continue;
		n = corepipe_udp_recv_batch(c, res, batch, wait_ms);
		if (n < 0) {
			fprintf(stderr, "corepipe-bench: UDP receive: %s\n", strerror(-n));
			exit(2);
		}
		now = now_ns();
		for (int i = 0; i < n; i++)
			udp_result(w, &res[i], now);
		outstanding -= (unsigned)n;
	}
	if (o->open_loop)
		cb_count_backlog(w, due);
	corepipe_udp_stats(c, &w->udp);
	free(res);
	free(reqs);
	corepipe_udp_destroy(c);
	return NULL;
}

const struct cb_proto cb_proto_udp = {
    .setup = udp_setup,
    .connect = udp_connect,
    .thread = udp_thread,
};

/*
 * libcorepipe-udp against a fake server thread on 127.0.0.1 that answers with the wire builder.
 * The request's pipeline id says how it answers (see fake_answer()): an echo with an
 * annotation, an error status, a duplicate, a stale id first, garbage first, pushback, or no
 * answer at all. Checks matching by request id, counters, timeouts and argument errors.
 * Every wait is bounded (the client's timeouts are 200 ms; the fake server polls every 20 ms),
 * and none stands for an event: a late answer is sent when the test says so (release_late).
 */
#include "client/udp/corepipe_udp.h"
#include "dataplane/wire.h"
#include "tests/fakes/cmocka_inc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How the fake server answers, by pipeline id. */
enum {
	P_ECHO = 1,	 /* OK, output = payload, annotation echo=yes */
	P_ERROR = 2,	 /* INVALID_ARGUMENT, no output, annotation error=bad */
	P_DUP = 3,	 /* the echo, twice */
	P_DROP = 4,	 /* no answer */
	P_STALE = 5,	 /* an echo for another id first, then the echo */
	P_GARBAGE = 6,	 /* a datagram that is no response first, then the echo */
	P_EXHAUSTED = 7, /* RESOURCE_EXHAUSTED with hint 250 */
	P_LATE = 8,	 /* the echo, once the test sets release_late (after its timeout) */
};

#define TIMEOUT_MS     200
#define LATE_WAITS_MAX 100 /* waits of TIMEOUT_MS for the late answer: a hang guard */

struct fake {
	int fd;
	uint16_t port;
	pthread_t thread;
	atomic_int stop;
	atomic_uint requests;
	atomic_int release_late; /* P_LATE's answer may go (the test saw the call time out) */
};

static struct fake g_fake;

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait (bounded: a hang guard) until the test releases P_LATE's answer; consumes the release. */
static bool
late_released(void)
{
	for (uint64_t give_up = mono_ms() + 30000; mono_ms() < give_up;) {
		if (atomic_exchange(&g_fake.release_late, 0))
			return true;
		poll(NULL, 0, 1);
	}
	return false;
}

/* Build the response to request @p q (in @p req of @p len) into @p out; returns its length. */
static size_t
fake_response(const uint8_t *req, size_t len, const struct dp_wire_req *q, uint8_t status,
	      uint64_t id, uint8_t *out, size_t room)
{
	struct dp_wire_resp r = {.status = status, .request_id = id};
	size_t n;

	(void)len;
	if (status == 0) {
		r.kind = q->kind;
		r.fmt = q->fmt;
		r.channels = q->channels;
		r.rate = q->rate;
		r.output_len = q->payload_len;
		r.n_annot = 1;
		n = dp_wire_resp_write(out, room, &r);
		memcpy(out + n, req + q->payload_off, q->payload_len);
		n += q->payload_len;
		n += dp_wire_annot_write(out + n, room - n, "echo", 4, "yes", 3);
		return n;
	}
	r.n_annot = 1;
	r.hint = status == 8 ? 250 : 0;
	n = dp_wire_resp_write(out, room, &r);
	n += dp_wire_annot_write(out + n, room - n, "error", 5, "bad", 3);
	return n;
}

static void
fake_answer(int fd, const uint8_t *req, size_t len, const struct sockaddr_in *peer)
{
	static uint8_t out[70000];
	struct dp_wire_req q;
	socklen_t pl = sizeof(*peer);
	size_t n;

	if (dp_wire_req_parse(req, len, &q, NULL, NULL) != DP_WIRE_OK)
		return;
	switch (q.pipeline_id) {
	case P_LATE:
		if (!late_released())
			break; /* the test gave up: its own assertions say why */
			       /* fall through */
	case P_ECHO:
	case P_DUP:
		n = fake_response(req, len, &q, 0, q.request_id, out, sizeof(out));
		sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		if (q.pipeline_id == P_DUP)
			sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		break;
	case P_ERROR:
		n = fake_response(req, len, &q, 3, q.request_id, out, sizeof(out));
		sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		break;
	case P_STALE:
		n = fake_response(req, len, &q, 0, q.request_id ^ 0x8000000000000000ull, out,
				  sizeof(out));
		sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		n = fake_response(req, len, &q, 0, q.request_id, out, sizeof(out));
		sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		break;
	case P_GARBAGE:
		sendto(fd, "CP\x01\x01garbage", 11, 0, (const struct sockaddr *)peer, pl);
		n = fake_response(req, len, &q, 0, q.request_id, out, sizeof(out));
		sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		break;
	case P_EXHAUSTED:
		n = fake_response(req, len, &q, 8, q.request_id, out, sizeof(out));
		sendto(fd, out, n, 0, (const struct sockaddr *)peer, pl);
		break;
	default: /* P_DROP and anything else */
		break;
	}
}

static void *
fake_main(void *arg)
{
	static uint8_t req[70000];
	struct fake *f = arg;
	uint64_t give_up = mono_ms() + 60000; /* a hung test must not hang the build */

	while (!atomic_load(&f->stop) && mono_ms() < give_up) {
		struct pollfd pfd = {.fd = f->fd, .events = POLLIN};
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		ssize_t n;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		n = recvfrom(f->fd, req, sizeof(req), MSG_DONTWAIT, (struct sockaddr *)&peer, &pl);
		if (n < 0)
			continue;
		atomic_fetch_add(&f->requests, 1);
		fake_answer(f->fd, req, (size_t)n, &peer);
	}
	return NULL;
}

static int
group_setup(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);

	(void)state;
	g_fake.fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (g_fake.fd < 0 || bind(g_fake.fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(g_fake.fd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	g_fake.port = ntohs(a.sin_port);
	atomic_store(&g_fake.stop, 0);
	return pthread_create(&g_fake.thread, NULL, fake_main, &g_fake) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	atomic_store(&g_fake.stop, 1);
	pthread_join(g_fake.thread, NULL);
	close(g_fake.fd);
	return 0;
}

/* A client with short timeouts; the test owns it through *state. */
static int
client_setup(void **state)
{
	struct corepipe_udp_opts o;

	corepipe_udp_opts_init(&o);
	o.timeout_ms = TIMEOUT_MS;
	o.batch = 16;
	o.window = 64;
	o.max_datagram = 4096;
	*state = corepipe_udp_create("127.0.0.1", g_fake.port, &o);
	return *state ? 0 : -1;
}

static int
client_teardown(void **state)
{
	corepipe_udp_destroy(*state);
	return 0;
}

static struct corepipe_udp_req
req_of(uint32_t pipeline, const char *payload)
{
	struct corepipe_udp_req r = {
	    .pipeline_id = pipeline, .payload = payload, .len = payload ? strlen(payload) : 0};

	return r;
}

/* ==== Synchronous calls ==================================================================== */

static void
test_call_echo_returns_output_and_annotation(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_ECHO, "hello");
	struct corepipe_udp_resp r;
	struct corepipe_udp_stats s;
	const char *k, *v;
	size_t kl, vl;

	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.status, COREPIPE_UDP_OK);
	assert_int_equal(r.output_len, 5);
	assert_memory_equal(r.output, "hello", 5);
	assert_false(r.is_audio);
	assert_int_equal(r.n_annot, 1);
	assert_int_equal(corepipe_udp_resp_annot(&r, "echo", &v, &vl), 0);
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "yes", 3);
	assert_int_equal(corepipe_udp_resp_annot(&r, "ech", &v, &vl), -ENOENT);
	assert_int_equal(corepipe_udp_resp_annot(&r, "echoo", &v, &vl), -ENOENT);
	assert_int_equal(corepipe_udp_resp_annot_at(&r, 0, &k, &kl, &v, &vl), 0);
	assert_int_equal(kl, 4);
	assert_memory_equal(k, "echo", 4);
	assert_int_equal(corepipe_udp_resp_annot_at(&r, 1, &k, &kl, &v, &vl), -ENOENT);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.sent, 1);
	assert_int_equal(s.matched, 1);
	assert_int_equal(s.outstanding, 0);
}

static void
test_call_empty_payload(void **state)
{
	struct corepipe_udp_req q = req_of(P_ECHO, NULL);
	struct corepipe_udp_resp r;

	assert_int_equal(corepipe_udp_call(*state, &q, &r), 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.output_len, 0);
	assert_null(r.output);
}

static void
test_call_audio_round_trips_format(void **state)
{
	static const int16_t s[6] = {1, -1, 2, -2, 3, -3};
	struct corepipe_udp_audio a = {.fmt = COREPIPE_UDP_S16LE, .channels = 2, .rate = 16000};
	struct corepipe_udp_req q = {
	    .pipeline_id = P_ECHO, .payload = s, .len = sizeof(s), .audio = &a};
	struct corepipe_udp_resp r;

	assert_int_equal(corepipe_udp_call(*state, &q, &r), 0);
	assert_true(r.is_audio);
	assert_int_equal(r.audio.fmt, COREPIPE_UDP_S16LE);
	assert_int_equal(r.audio.channels, 2);
	assert_int_equal(r.audio.rate, 16000);
	assert_int_equal(r.output_len, sizeof(s));
	assert_memory_equal(r.output, s, sizeof(s));
}

static void
test_call_error_status_with_message(void **state)
{
	struct corepipe_udp_req q = req_of(P_ERROR, "x");
	struct corepipe_udp_resp r;
	const char *v;
	size_t vl;

	assert_int_equal(corepipe_udp_call(*state, &q, &r), 0);
	assert_int_equal(r.status, COREPIPE_UDP_INVALID_ARGUMENT);
	assert_string_equal(corepipe_udp_status_name(r.status), "INVALID_ARGUMENT");
	assert_int_equal(r.output_len, 0);
	assert_null(r.output);
	assert_int_equal(corepipe_udp_resp_annot(&r, "error", &v, &vl), 0);
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "bad", 3);
}

static void
test_call_resource_exhausted_carries_hint(void **state)
{
	struct corepipe_udp_req q = req_of(P_EXHAUSTED, "x");
	struct corepipe_udp_resp r;

	assert_int_equal(corepipe_udp_call(*state, &q, &r), 0);
	assert_int_equal(r.status, COREPIPE_UDP_RESOURCE_EXHAUSTED);
	assert_int_equal(r.hint, 250);
}

static void
test_call_dropped_request_times_out(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_DROP, "lost");
	struct corepipe_udp_resp r;
	struct corepipe_udp_stats s;
	uint64_t t0 = mono_ms(), dt;

	assert_int_equal(corepipe_udp_call(c, &q, &r), -ETIMEDOUT);
	/* Not before its time (ms clocks: 1 of rounding); no upper bound, which a busy machine
	 * could pass. */
	dt = mono_ms() - t0;
	assert_true(dt >= TIMEOUT_MS - 1);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.timeouts, 1);
	assert_int_equal(s.outstanding, 0);
	/* the client is usable afterwards */
	q = req_of(P_ECHO, "again");
	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "again", 5);
}

static void
test_call_duplicate_response_is_counted_stale(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_DUP, "twice");
	struct corepipe_udp_resp r;
	struct corepipe_udp_stats s;

	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "twice", 5);
	/* The duplicate is read with this call's response or during the next call. */
	q = req_of(P_ECHO, "next");
	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "next", 4);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.matched, 2);
	assert_int_equal(s.stale, 1);
	assert_int_equal(s.received, 3);
}

static void
test_call_late_response_after_timeout_is_stale(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_LATE, "late");
	struct corepipe_udp_resp r;
	struct corepipe_udp_stats s;

	assert_int_equal(corepipe_udp_call(c, &q, &r), -ETIMEDOUT);
	/* Nothing is outstanding; the answer, sent only now, must not match: each wait returns
	 * no result, until the answer has been read (and counted stale). */
	atomic_store(&g_fake.release_late, 1);
	for (int i = 0; i < LATE_WAITS_MAX; i++) {
		assert_int_equal(corepipe_udp_recv_batch(c, &r, 1, TIMEOUT_MS), 0);
		corepipe_udp_stats(c, &s);
		if (s.received != 0)
			break;
	}
	assert_int_equal(s.timeouts, 1);
	assert_int_equal(s.received, 1);
	assert_int_equal(s.stale, 1);
	assert_int_equal(s.matched, 0);
	q = req_of(P_ECHO, "after");
	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "after", 5);
}

static void
test_call_unknown_id_is_skipped(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_STALE, "mine");
	struct corepipe_udp_resp r;
	struct corepipe_udp_stats s;

	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "mine", 4);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.stale, 1);
	assert_int_equal(s.matched, 1);
}

static void
test_call_garbage_is_counted_bad(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_GARBAGE, "ok");
	struct corepipe_udp_resp r;
	struct corepipe_udp_stats s;

	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "ok", 2);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.bad, 1);
	assert_int_equal(s.matched, 1);
}

static void
test_call_rejects_invalid_requests(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_audio a = {.fmt = COREPIPE_UDP_F32LE, .channels = 1, .rate = 8000};
	struct corepipe_udp_req q = req_of(0, "x");
	struct corepipe_udp_resp r;
	static char big[4096];
	struct corepipe_udp_stats s;

	assert_int_equal(corepipe_udp_call(c, &q, &r), -EINVAL); /* pipeline id 0 */
	q = req_of(P_ECHO, "abc");
	q.audio = &a;
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EINVAL); /* 3 bytes of f32 */
	a.fmt = 3;
	q.len = 4;
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EINVAL); /* format */
	a.fmt = COREPIPE_UDP_F32LE;
	a.rate = 0;
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EINVAL);
	a.rate = 8000;
	a.channels = 0;
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EINVAL);
	q = (struct corepipe_udp_req){.pipeline_id = P_ECHO, .payload = NULL, .len = 3};
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EINVAL);
	/* max_datagram is 4096: 4074 bytes of payload fit, 4075 do not */
	q = (struct corepipe_udp_req){.pipeline_id = P_ECHO, .payload = big, .len = 4075};
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EMSGSIZE);
	/* ...and a response longer than max_datagram is truncated by the kernel: counted bad */
	q.len = 4074; /* echo: 22 + 4074 + annotation 9 = 4105 bytes */
	assert_int_equal(corepipe_udp_call(c, &q, &r), -ETIMEDOUT);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.bad, 1);
	q.len = 4065; /* a response of exactly 4096 bytes */
	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_int_equal(r.output_len, 4065);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.sent, 2);
}

/* ==== Batches ============================================================================== */

static void
test_batch_matches_each_response_to_its_request(void **state)
{
	struct corepipe_udp *c = *state;
	char payloads[16][16];
	struct corepipe_udp_req q[16];
	struct corepipe_udp_resp r[16];
	uint64_t ids[16];
	int seen[16] = {0};
	unsigned got = 0, timeouts = 0;
	uint64_t give_up = mono_ms() + 3000;
	struct corepipe_udp_stats s;

	for (int i = 0; i < 16; i++) {
		snprintf(payloads[i], sizeof(payloads[i]), "req%02d", i);
		/* every fourth request is dropped by the server */
		q[i] = req_of(i % 4 == 3 ? P_DROP : P_ECHO, payloads[i]);
		q[i].user = &seen[i];
	}
	assert_int_equal(corepipe_udp_send_batch(c, q, 16, ids), 16);
	for (int i = 1; i < 16; i++)
		assert_true(ids[i] == ids[i - 1] + 1);

	while (got < 16 && mono_ms() < give_up) {
		int n = corepipe_udp_recv_batch(c, r, 16, 100);

		assert_true(n >= 0);
		for (int j = 0; j < n; j++) {
			int i = (int *)r[j].user - seen;

			assert_true(i >= 0 && i < 16);
			assert_true(r[j].request_id == ids[i]);
			assert_int_equal(seen[i], 0);
			seen[i] = 1;
			if (i % 4 == 3) {
				assert_int_equal(r[j].err, -ETIMEDOUT);
				timeouts++;
			} else {
				assert_int_equal(r[j].err, 0);
				assert_int_equal(r[j].status, 0);
				assert_int_equal(r[j].output_len, 5);
				assert_memory_equal(r[j].output, payloads[i], 5);
			}
			got++;
		}
	}
	assert_int_equal(got, 16);
	assert_int_equal(timeouts, 4);
	corepipe_udp_stats(c, &s);
	assert_int_equal(s.matched, 12);
	assert_int_equal(s.timeouts, 4);
	assert_int_equal(s.outstanding, 0);
	/* nothing outstanding: returns at once */
	assert_int_equal(corepipe_udp_recv_batch(c, r, 16, -1), 0);
}

static void
test_batch_timeout_and_call_is_busy_meanwhile(void **state)
{
	struct corepipe_udp *c = *state;
	struct corepipe_udp_req q = req_of(P_DROP, "x");
	struct corepipe_udp_resp r;
	uint64_t id, give_up = mono_ms() + 2000;
	int n = 0;

	assert_int_equal(corepipe_udp_send_batch(c, &q, 1, &id), 1);
	/* call() refuses while a pipelined request is outstanding */
	assert_int_equal(corepipe_udp_call(c, &q, &r), -EBUSY);
	while (n == 0 && mono_ms() < give_up)
		n = corepipe_udp_recv_batch(c, &r, 1, -1);
	assert_int_equal(n, 1);
	assert_int_equal(r.err, -ETIMEDOUT);
	assert_true(r.request_id == id);
}

static void
test_batch_rejects_bad_arguments_and_full_window(void **state)
{
	struct corepipe_udp_opts o;
	struct corepipe_udp *c;
	struct corepipe_udp_req q[5];
	struct corepipe_udp_resp r[4];
	uint64_t give_up;
	unsigned got = 0;

	(void)state;
	corepipe_udp_opts_init(&o);
	o.timeout_ms = 100;
	o.batch = 4;
	o.window = 4;
	o.max_datagram = 256;
	c = corepipe_udp_create("127.0.0.1", g_fake.port, &o);
	assert_non_null(c);
	for (int i = 0; i < 5; i++)
		q[i] = req_of(P_DROP, "w");
	assert_int_equal(corepipe_udp_send_batch(c, q, 0, NULL), -EINVAL);
	assert_int_equal(corepipe_udp_send_batch(c, q, 5, NULL), -EINVAL); /* above batch */
	/* an invalid request stops the batch before it */
	q[2].pipeline_id = 0;
	assert_int_equal(corepipe_udp_send_batch(c, q, 4, NULL), 2);
	q[2].pipeline_id = P_DROP;
	assert_int_equal(corepipe_udp_send_batch(c, q, 4, NULL), 2); /* window 4: 2 fit */
	assert_int_equal(corepipe_udp_send_batch(c, q, 1, NULL), -ENOBUFS);
	give_up = mono_ms() + 2000;
	while (got < 4 && mono_ms() < give_up) {
		int n = corepipe_udp_recv_batch(c, r, 4, 50);

		assert_true(n >= 0);
		for (int j = 0; j < n; j++)
			assert_int_equal(r[j].err, -ETIMEDOUT);
		got += (unsigned)n;
	}
	assert_int_equal(got, 4);
	assert_int_equal(corepipe_udp_send_batch(c, q, 4, NULL), 4); /* room again */
	corepipe_udp_destroy(c);				     /* with requests outstanding */
}

/* ==== Creation ============================================================================= */

static void
test_create_rejects_bad_options(void **state)
{
	struct corepipe_udp_opts o;

	(void)state;
	corepipe_udp_opts_init(&o);
	assert_int_equal(o.timeout_ms, 1000);
	assert_int_equal(o.batch, 32);
	errno = 0;
	assert_null(corepipe_udp_create(NULL, 1, &o));
	assert_int_equal(errno, EINVAL);
	assert_null(corepipe_udp_create("127.0.0.1", 0, &o));
	o.window = 1000; /* not a power of two */
	assert_null(corepipe_udp_create("127.0.0.1", 1, &o));
	assert_int_equal(errno, EINVAL);
	corepipe_udp_opts_init(&o);
	o.batch = 0;
	assert_null(corepipe_udp_create("127.0.0.1", 1, &o));
	corepipe_udp_opts_init(&o);
	o.timeout_ms = 0;
	assert_null(corepipe_udp_create("127.0.0.1", 1, &o));
	corepipe_udp_opts_init(&o);
	o.max_datagram = 70000;
	assert_null(corepipe_udp_create("127.0.0.1", 1, &o));
	errno = 0;
	assert_null(corepipe_udp_create("not an address!", 1, NULL));
	assert_int_equal(errno, EHOSTUNREACH);
	corepipe_udp_destroy(NULL);
}

static void
test_create_with_defaults_and_buffers(void **state)
{
	struct corepipe_udp_opts o;
	struct corepipe_udp *c;
	struct corepipe_udp_req q = req_of(P_ECHO, "d");
	struct corepipe_udp_resp r;

	(void)state;
	corepipe_udp_opts_init(&o);
	o.sndbuf = 1 << 18;
	o.rcvbuf = 1 << 18;
	c = corepipe_udp_create("127.0.0.1", g_fake.port, &o);
	assert_non_null(c);
	assert_true(corepipe_udp_fd(c) >= 0);
	assert_int_equal(corepipe_udp_call(c, &q, &r), 0);
	assert_memory_equal(r.output, "d", 1);
	corepipe_udp_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_call_echo_returns_output_and_annotation,
					    client_setup, client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_empty_payload, client_setup, client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_audio_round_trips_format, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_error_status_with_message, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_resource_exhausted_carries_hint, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_dropped_request_times_out, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_duplicate_response_is_counted_stale,
					    client_setup, client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_late_response_after_timeout_is_stale,
					    client_setup, client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_unknown_id_is_skipped, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_garbage_is_counted_bad, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_call_rejects_invalid_requests, client_setup,
					    client_teardown),
	    cmocka_unit_test_setup_teardown(test_batch_matches_each_response_to_its_request,
					    client_setup, client_teardown),
	    cmocka_unit_test_setup_teardown(test_batch_timeout_and_call_is_busy_meanwhile,
					    client_setup, client_teardown),
	    cmocka_unit_test(test_batch_rejects_bad_arguments_and_full_window),
	    cmocka_unit_test(test_create_rejects_bad_options),
	    cmocka_unit_test(test_create_with_defaults_and_buffers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

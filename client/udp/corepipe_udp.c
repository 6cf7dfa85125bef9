/*
 * libcorepipe-udp (client/udp/corepipe_udp.h): the corepipe UDP wire protocol v1 over a
 * connect()ed, non-blocking kernel UDP socket, with sendmmsg()/recvmmsg() batches and a window
 * of outstanding requests.
 *
 * The window is a ring indexed by request_id & (window - 1). Ids are handed out sequentially,
 * so the requests that may still be outstanding are exactly the ids in [tail_id, next_id), at
 * most `window` of them, and no two of them share a slot: a response's id is matched with one
 * subtraction and one compare. Every request has the same timeout and is registered in send
 * order with a monotonic clock, so deadlines grow with the id and the oldest outstanding
 * request (at tail_id) is always the next to time out: expiry costs O(1) per request.
 *
 * All arithmetic on ids is modulo 2^64 (differences, never '<'), since the first id is random.
 */
#include "client/udp/corepipe_udp.h"

#include "dataplane/wire.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull
#define NS_PER_S  1000000000ull

/* ==== Types ================================================================================ */

/* One outstanding request. */
struct slot {
	uint64_t id;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	void *user;
	uint8_t used;
};

struct corepipe_udp {
	int fd;
	struct corepipe_udp_opts o;
	uint8_t *tx; /* batch datagrams of max_datagram bytes */
	uint8_t *rx;
	struct mmsghdr *txm;
	struct mmsghdr *rxm;
	struct iovec *txv;
	struct iovec *rxv;
	struct slot *win; /* o.window slots */
	uint64_t next_id; /* the id of the next request */
	uint64_t tail_id; /* ids in [tail_id, next_id) may be outstanding */
	struct corepipe_udp_stats st;
};

/* ==== Private helpers ====================================================================== */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Milliseconds from @p now to @p until for poll(), rounded up so that we never wake early. */
static int
ms_until(uint64_t now, uint64_t until)
{
	uint64_t ms;

	if (until <= now)
		return 0;
	ms = (until - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static uint64_t
random_id(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		/* No entropy yet (early boot): mix the clock and pid (splitmix64 finaliser). */
		v = now_ns() ^ ((uint64_t)getpid() << 32);
		v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ull;
		v = (v ^ (v >> 27)) * 0x94d049bb133111ebull;
		v ^= v >> 31;
	}
	return v;
}

static struct slot *
slot_of(struct corepipe_udp *c, uint64_t id)
{
	return &c->win[id & (c->o.window - 1)];
}

/* Move tail_id past answered and expired requests. */
static void
advance_tail(struct corepipe_udp *c)
{
	while (c->tail_id != c->next_id && !slot_of(c, c->tail_id)->used)
		c->tail_id++;
}

/* Validate @p r and write it at @p dst with id @p id. Returns the datagram length or -errno. */
static ssize_t
build(const struct corepipe_udp *c, const struct corepipe_udp_req *r, uint64_t id, uint8_t *dst)
{
	struct dp_wire_req h = {.pipeline_id = r->pipeline_id,
				.request_id = id,
				.deadline_us = r->deadline_us,
				.kind = DP_WIRE_KIND_BYTES};
	size_t hlen;

	if (r->pipeline_id == 0 || (r->len && !r->payload))
		return -EINVAL;
	if (r->audio) {
		const struct corepipe_udp_audio *a = r->audio;
		size_t frame = (size_t)a->channels * (a->fmt == COREPIPE_UDP_S16LE ? 2 : 4);

		if ((a->fmt != COREPIPE_UDP_S16LE && a->fmt != COREPIPE_UDP_F32LE) ||
		    a->channels == 0 || a->rate == 0 || r->len % frame != 0)
			return -EINVAL;
		h.kind = DP_WIRE_KIND_AUDIO;
		h.fmt = a->fmt;
		h.channels = a->channels;
		h.rate = a->rate;
	}
	hlen = dp_wire_req_hdr_len(r->audio != NULL);
	if (r->len > c->o.max_datagram - hlen)
		return -EMSGSIZE;
	if (dp_wire_req_write(dst, c->o.max_datagram, &h) != hlen)
		return -EINVAL;
	if (r->len)
		memcpy(dst + hlen, r->payload, r->len);
	return (ssize_t)(hlen + r->len);
}

/* Receive what is ready (at most @p room datagrams) and match it; returns results or -errno. */
static int
drain(struct corepipe_udp *c, struct corepipe_udp_resp *out, unsigned room)
{
	int got, n = 0;

	if (room == 0)
		return 0;
	for (unsigned i = 0; i < room; i++) {
		c->rxv[i].iov_base = c->rx + (size_t)i * c->o.max_datagram;
		c->rxv[i].iov_len = c->o.max_datagram;
		memset(&c->rxm[i].msg_hdr, 0, sizeof(c->rxm[i].msg_hdr));
		c->rxm[i].msg_hdr.msg_iov = &c->rxv[i];
		c->rxm[i].msg_hdr.msg_iovlen = 1;
		c->rxm[i].msg_len = 0;
	}
	got = recvmmsg(c->fd, c->rxm, room, MSG_DONTWAIT, NULL);
	if (got < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;

	for (int i = 0; i < got; i++) {
		const uint8_t *p = c->rxv[i].iov_base, *output, *annot;
		struct corepipe_udp_resp *o = &out[n];
		struct dp_wire_resp h;
		size_t annot_len;
		struct slot *s;

		c->st.received++;
		if ((c->rxm[i].msg_hdr.msg_flags & MSG_TRUNC) ||
		    dp_wire_resp_parse(p, c->rxm[i].msg_len, &h, &output, &annot, &annot_len,
				       NULL) != 0) {
			c->st.bad++;
			continue;
		}
		s = slot_of(c, h.request_id);
		if (h.request_id - c->tail_id >= c->next_id - c->tail_id || !s->used ||
		    s->id != h.request_id) {
			c->st.stale++;
			continue;
		}
		memset(o, 0, sizeof(*o));
		o->status = h.status;
		o->hint = h.hint;
		o->request_id = h.request_id;
		o->user = s->user;
		o->is_audio = h.kind == DP_WIRE_KIND_AUDIO;
		if (o->is_audio) {
			o->audio.fmt = h.fmt;
			o->audio.channels = h.channels;
			o->audio.rate = h.rate;
		}
		o->output = h.output_len ? output : NULL;
		o->output_len = h.output_len;
		o->n_annot = h.n_annot;
		o->annot_ = annot;
		o->annot_len_ = annot_len;
		s->used = 0;
		c->st.matched++;
		c->st.outstanding--;
		n++;
	}
	advance_tail(c);
	return n;
}

/* Report requests whose deadline has passed, oldest first, into at most @p room results. */
static unsigned
expire(struct corepipe_udp *c, struct corepipe_udp_resp *out, unsigned room, uint64_t now)
{
	unsigned n = 0;

	advance_tail(c);
	while (n < room && c->tail_id != c->next_id) {
		struct slot *s = slot_of(c, c->tail_id);

		if (s->deadline_ns > now)
			break;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].err = -ETIMEDOUT;
		out[n].request_id = s->id;
		out[n].user = s->user;
		s->used = 0;
		c->st.timeouts++;
		c->st.outstanding--;
		n++;
		advance_tail(c);
	}
	return n;
}

/* ==== API ================================================================================== */

void
corepipe_udp_opts_init(struct corepipe_udp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = 1000;
	o->batch = 32;
	o->window = 1024;
	o->max_datagram = COREPIPE_UDP_MAX_DATAGRAM;
}

static int
opts_valid(const struct corepipe_udp_opts *o)
{
	return o->timeout_ms > 0 && o->batch >= 1 && o->batch <= 1024 && o->window >= o->batch &&
	       o->window <= 65536 && (o->window & (o->window - 1)) == 0 && o->max_datagram >= 64 &&
	       o->max_datagram <= COREPIPE_UDP_MAX_DATAGRAM && o->sndbuf >= 0 && o->rcvbuf >= 0;
}

/* A connect()ed non-blocking UDP socket to host:port, or -errno. */
static int
open_socket(const char *host, uint16_t port, const struct corepipe_udp_opts *o)
{
	struct addrinfo hints = {
	    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	char service[8];
	int fd = -1, err = -EHOSTUNREACH;

	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if ((o->sndbuf &&
		     setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(o->sndbuf)) != 0) ||
		    (o->rcvbuf &&
		     setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf)) != 0) ||
		    connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

struct corepipe_udp *
corepipe_udp_create(const char *host, uint16_t port, const struct corepipe_udp_opts *opts)
{
	struct corepipe_udp *c;
	struct corepipe_udp_opts o;
	size_t arena;
	int fd;

	if (opts)
		o = *opts;
	else
		corepipe_udp_opts_init(&o);
	if (!host || port == 0 || !opts_valid(&o)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_nomem;
	c->o = o;
	c->fd = -1;
	arena = (size_t)o.batch * o.max_datagram;
	c->tx = malloc(arena);
	c->rx = malloc(arena);
	c->txm = calloc(o.batch, sizeof(*c->txm));
	c->rxm = calloc(o.batch, sizeof(*c->rxm));
	c->txv = calloc(o.batch, sizeof(*c->txv));
	c->rxv = calloc(o.batch, sizeof(*c->rxv));
	c->win = calloc(o.window, sizeof(*c->win));
	if (!c->tx || !c->rx || !c->txm || !c->rxm || !c->txv || !c->rxv || !c->win)
		goto err_free;
	fd = open_socket(host, port, &o);
	if (fd < 0) {
		corepipe_udp_destroy(c);
		errno = -fd;
		return NULL;
	}
	c->fd = fd;
	c->next_id = c->tail_id = random_id();
	return c;

err_free:
	corepipe_udp_destroy(c);
err_nomem:
	errno = ENOMEM;
	return NULL;
}

void
corepipe_udp_destroy(struct corepipe_udp *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->tx);
	free(c->rx);
	free(c->txm);
	free(c->rxm);
	free(c->txv);
	free(c->rxv);
	free(c->win);
	free(c);
}

int
corepipe_udp_fd(const struct corepipe_udp *c)
{
	return c->fd;
}

int
corepipe_udp_send_batch(struct corepipe_udp *c, const struct corepipe_udp_req *reqs, unsigned n,
			uint64_t *ids)
{
	unsigned built = 0, sent = 0;
	uint64_t now, space_deadline;
	int err = 0;

	if (!reqs || n == 0 || n > c->o.batch)
		return -EINVAL;
	advance_tail(c);
	for (; built < n; built++) {
		uint8_t *dst = c->tx + (size_t)built * c->o.max_datagram;
		ssize_t len;

		if (c->next_id + built - c->tail_id >= c->o.window) {
			err = -ENOBUFS;
			break;
		}
		len = build(c, &reqs[built], c->next_id + built, dst);
		if (len < 0) {
			err = (int)len;
			break;
		}
		c->txv[built].iov_base = dst;
		c->txv[built].iov_len = (size_t)len;
		memset(&c->txm[built], 0, sizeof(c->txm[built]));
		c->txm[built].msg_hdr.msg_iov = &c->txv[built];
		c->txm[built].msg_hdr.msg_iovlen = 1;
	}
	if (built == 0)
		return err;

	err = 0;
	space_deadline = now_ns() + (uint64_t)c->o.timeout_ms * NS_PER_MS;
	while (sent < built) {
		int r = sendmmsg(c->fd, c->txm + sent, built - sent, 0);

		if (r > 0) {
			sent += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			err = -errno;
			break;
		}
		/* Socket buffer full: wait for room, bounded by the request timeout. */
		now = now_ns();
		if (now >= space_deadline) {
			err = -ETIMEDOUT;
			break;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
		(void)poll(&pfd, 1, ms_until(now, space_deadline));
	}

	now = now_ns();
	for (unsigned i = 0; i < sent; i++) {
		uint64_t id = c->next_id + i;
		struct slot *s = slot_of(c, id);

		s->id = id;
		s->deadline_ns = now + (uint64_t)c->o.timeout_ms * NS_PER_MS;
		s->user = reqs[i].user;
		s->used = 1;
		if (ids)
			ids[i] = id;
	}
	c->next_id += sent;
	c->st.sent += sent;
	c->st.outstanding += sent;
	return sent ? (int)sent : err;
}

int
corepipe_udp_recv_batch(struct corepipe_udp *c, struct corepipe_udp_resp *out, unsigned max,
			int wait_ms)
{
	uint64_t now = now_ns(), end;
	unsigned n;

	if (!out || max == 0)
		return -EINVAL;
	if (max > c->o.batch)
		max = c->o.batch;
	advance_tail(c);
	if (wait_ms >= 0)
		end = now + (uint64_t)wait_ms * NS_PER_MS;
	else if (c->tail_id != c->next_id)
		end = slot_of(c, c->tail_id)->deadline_ns;
	else
		return 0;

	/* Bounded by end: each pass either returns or sleeps in poll() until end at most. */
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		uint64_t until = end;
		int r = drain(c, out, max);

		if (r < 0)
			return r;
		n = (unsigned)r;
		now = now_ns();
		n += expire(c, out + n, max - n, now);
		if (n > 0)
			return (int)n;
		if (now >= end)
			return 0;
		if (c->tail_id != c->next_id && slot_of(c, c->tail_id)->deadline_ns < until)
			until = slot_of(c, c->tail_id)->deadline_ns;
		if (poll(&pfd, 1, ms_until(now, until)) < 0 && errno != EINTR)
			return -errno;
	}
}

int
corepipe_udp_call(struct corepipe_udp *c, const struct corepipe_udp_req *req,
		  struct corepipe_udp_resp *resp)
{
	/* Set by send_batch, which never returns 0 (clang-tidy's analyzer cannot see that). */
	uint64_t id = 0;
	int rc;

	if (!req || !resp)
		return -EINVAL;
	if (c->st.outstanding != 0)
		return -EBUSY;
	rc = corepipe_udp_send_batch(c, req, 1, &id);
	if (rc < 0)
		return rc;
	/* Only this request is outstanding, so the first result is its own. */
	for (;;) {
		rc = corepipe_udp_recv_batch(c, resp, 1, -1);
		if (rc == 1)
			return resp->err;
		if (rc < 0) {
			/* A socket error: the request will not be matched; forget it. */
			struct slot *s = slot_of(c, id);

			if (s->used && s->id == id) {
				s->used = 0;
				c->st.outstanding--;
				advance_tail(c);
			}
			return rc;
		}
		/* rc == 0: woke at the deadline a little early; the next pass expires it. */
	}
}

int
corepipe_udp_resp_annot_at(const struct corepipe_udp_resp *r, unsigned i, const char **key,
			   size_t *klen, const char **val, size_t *vlen)
{
	struct dp_wire_annot_it it;
	int rc;

	if (i >= r->n_annot)
		return -ENOENT;
	dp_wire_annot_begin(&it, r->annot_, r->annot_len_, r->n_annot);
	for (unsigned j = 0; j <= i; j++) {
		rc = dp_wire_annot_next(&it, key, klen, val, vlen);
		if (rc != 1)
			return rc < 0 ? rc : -EBADMSG;
	}
	return 0;
}

int
corepipe_udp_resp_annot(const struct corepipe_udp_resp *r, const char *key, const char **val,
			size_t *vlen)
{
	struct dp_wire_annot_it it;
	size_t want = key ? strlen(key) : 0, kl, vl;
	const char *k, *v;
	int rc;

	if (!key)
		return -EINVAL;
	dp_wire_annot_begin(&it, r->annot_, r->annot_len_, r->n_annot);
	while ((rc = dp_wire_annot_next(&it, &k, &kl, &v, &vl)) == 1) {
		if (kl == want && memcmp(k, key, kl) == 0) {
			if (val)
				*val = v;
			if (vlen)
				*vlen = vl;
			return 0;
		}
	}
	return rc < 0 ? rc : -ENOENT;
}

void
corepipe_udp_stats(const struct corepipe_udp *c, struct corepipe_udp_stats *s)
{
	*s = c->st;
}

const char *
corepipe_udp_status_name(int status)
{
	switch (status) {
	case 0:
		return "OK";
	case 1:
		return "CANCELLED";
	case 3:
		return "INVALID_ARGUMENT";
	case 4:
		return "DEADLINE_EXCEEDED";
	case 5:
		return "NOT_FOUND";
	case 8:
		return "RESOURCE_EXHAUSTED";
	case 9:
		return "FAILED_PRECONDITION";
	case 11:
		return "OUT_OF_RANGE";
	case 12:
		return "UNIMPLEMENTED";
	case 13:
		return "INTERNAL";
	case 14:
		return "UNAVAILABLE";
	default:
		return "UNKNOWN";
	}
}

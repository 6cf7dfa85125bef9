/*
 * udp_echo: the corepipe UDP wire protocol v1 served from a kernel socket, the way a user would
 * write it without DPDK: recvmmsg() a batch, answer every valid request as the passthrough
 * pipeline does (the response header written in place over the request's, output = payload,
 * status OK), drop everything else (drops, rejects, truncated datagrams), sendmmsg() the
 * answers. It is the kernel baseline for the DPDK front end, and the server of the wire
 * protocol's integration test.
 *
 *   udp_echo [--bind ADDR:PORT] [--batch N] [--rcvbuf BYTES] [--help]
 *
 * ADDR is numeric IPv4 or IPv6 ([::1]:9000); PORT 0 picks a free port. At start it prints
 * "udp_echo: listening on ADDR:PORT" (the real port) on stderr; on SIGTERM or SIGINT it prints
 * the rx/tx/drop counts and exits 0.
 *
 * Context: one thread. SIGTERM/SIGINT are blocked except inside ppoll(), so a signal can only
 * arrive while we wait, and the stop flag is never missed between a check and a sleep.
 */
#include "dataplane/wire.h"
#include "perf/perf_opt.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOT_BYTES 65536 /* any UDP payload */
#define BATCH_MAX  1024

/* Written by the signal handler, read by the loop: sig_atomic_t is what C allows there. */
static volatile sig_atomic_t g_stop;

static void
on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

struct opts {
	const char *bind_to;
	unsigned batch, rcvbuf;
};

#define AT(field, ctype) PERF_OPT_AT(struct opts, field, ctype)

static const struct perf_opt g_table[] = {
    {"bind", 0, PERF_OPT_STR, AT(bind_to, const char *), .arg = "ADDR:PORT",
     .help = "numeric; IPv6 as [ADDR]:PORT; port 0: any free one", .show_default = true},
    {"batch", 0, PERF_OPT_UINT, AT(batch, unsigned), 1, BATCH_MAX, .arg = "N",
     .help = "datagrams per recvmmsg / sendmmsg", .show_default = true},
    {"rcvbuf", 0, PERF_OPT_UINT, AT(rcvbuf, unsigned), 0, INT_MAX, .arg = "BYTES",
     .help = "SO_RCVBUF to ask for; 0: the kernel's default", .show_default = true},
    {"help", 'h', PERF_OPT_HELP, .help = "this text"},
    {.type = PERF_OPT_END},
};

static const struct perf_opt_cmd g_cmd = {
    .prog = "udp_echo",
    .synopsis = "usage: udp_echo [options]\n\n",
    .opts = g_table,
    .size = sizeof(struct opts),
};

/* Split "ADDR:PORT" or "[ADDR6]:PORT" into @p host and @p port (both NUL-terminated copies). */
static int
split_host_port(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon, *h = s;
	size_t hl;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hcap || strlen(colon + 1) == 0 || strlen(colon + 1) >= pcap)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

static int
open_bound(const char *bind_to, int rcvbuf)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], port[8], nh[64], np[8];
	struct addrinfo *res;
	int fd, rc;

	if (split_host_port(bind_to, host, sizeof(host), port, sizeof(port)) != 0) {
		fprintf(stderr, "udp_echo: bad --bind '%s' (want ADDR:PORT or [ADDR6]:PORT)\n",
			bind_to);
		return -1;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "udp_echo: --bind %s: %s\n", bind_to, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, nh, sizeof(nh), np, sizeof(np),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		fprintf(stderr, "udp_echo: bind %s: %s\n", bind_to, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	if (ss.ss_family == AF_INET6)
		fprintf(stderr, "udp_echo: listening on [%s]:%s\n", nh, np);
	else
		fprintf(stderr, "udp_echo: listening on %s:%s\n", nh, np);
	return fd;
}

/*
 * Answer one datagram in place. Returns 1 when @p p now holds a response of the same length
 * (the bytes and audio response headers are as long as the request headers, and the output
 * is the payload, where it was), 0 when the datagram is dropped.
 */
static int
answer_in_place(uint8_t *p, size_t len)
{
	struct dp_wire_req q;
	struct dp_wire_resp r = {0};

	if (dp_wire_req_parse(p, len, &q, NULL, NULL) != DP_WIRE_OK)
		return 0;
	r.status = 0;
	r.request_id = q.request_id;
	r.output_len = q.payload_len;
	r.kind = q.kind;
	r.fmt = q.fmt;
	r.channels = q.channels;
	r.rate = q.rate;
	return dp_wire_resp_write(p, q.payload_off, &r) == q.payload_off;
}

int
main(int argc, char **argv)
{
	struct opts o = {.bind_to = "127.0.0.1:0", .batch = 32, .rcvbuf = 0};
	unsigned long long rx = 0, tx = 0, drop = 0;
	struct sockaddr_storage *peers;
	struct mmsghdr *in, *out;
	struct iovec *iov;
	struct sigaction sa;
	sigset_t block, waitmask;
	uint8_t *arena;
	int batch, argi, rc, fd;

	rc = perf_opt_parse(&g_cmd, argc, argv, &o, &argi);
	if (rc == 0 && argi < argc) {
		fprintf(stderr, "udp_echo: unexpected argument '%s'\n", argv[argi]);
		rc = -EINVAL;
	}
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	batch = (int)o.batch;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	arena = calloc((size_t)batch, SLOT_BYTES);
	peers = calloc((size_t)batch, sizeof(*peers));
	in = calloc((size_t)batch, sizeof(*in));
	out = calloc((size_t)batch, sizeof(*out));
	iov = calloc((size_t)batch, sizeof(*iov));
	if (!arena || !peers || !in || !out || !iov) {
		fprintf(stderr, "udp_echo: out of memory\n");
		return 1;
	}
	fd = open_bound(o.bind_to, (int)o.rcvbuf);
	if (fd < 0)
		return 1;

	while (!g_stop) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n, n_out = 0, done = 0;

		if (ppoll(&pfd, 1, NULL, &waitmask) < 0)
			continue; /* EINTR: the signal set g_stop */
		for (int i = 0; i < batch; i++) {
			iov[i].iov_base = arena + (size_t)i * SLOT_BYTES;
			iov[i].iov_len = SLOT_BYTES;
			memset(&in[i].msg_hdr, 0, sizeof(in[i].msg_hdr));
			in[i].msg_hdr.msg_name = &peers[i];
			in[i].msg_hdr.msg_namelen = sizeof(peers[i]);
			in[i].msg_hdr.msg_iov = &iov[i];
			in[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, in, (unsigned)batch, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			rx++;
			if ((in[i].msg_hdr.msg_flags & MSG_TRUNC) ||
			    !answer_in_place(iov[i].iov_base, in[i].msg_len)) {
				drop++;
				continue;
			}
			iov[i].iov_len = in[i].msg_len;
			out[n_out].msg_hdr = in[i].msg_hdr; /* same peer, same buffer */
			out[n_out].msg_len = 0;
			n_out++;
		}
		while (done < n_out) {
			int s = sendmmsg(fd, out + done, (unsigned)(n_out - done), 0);

			if (s < 0) {
				if (errno == EINTR)
					continue;
				/* e.g. a peer's ICMP error surfacing here: count the answer lost */
				drop++;
				done++;
				continue;
			}
			tx += (unsigned)s;
			done += s;
		}
	}

	fprintf(stderr, "udp_echo: rx %llu tx %llu drop %llu\n", rx, tx, drop);
	close(fd);
	free(iov);
	free(out);
	free(in);
	free(peers);
	free(arena);
	return 0;
}

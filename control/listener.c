/*
 * Listening sockets, their accept thread and the connection count (see listener.h for why
 * corepipe owns them).
 */
#include "control/listener.h"

#include "control/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096
#define EPOLL_BATCH    64
/* At most one "out of file descriptors" line per this many ns (with a count). */
#define EMFILE_LOG_NS 1000000000ull

void cp_grpc_handoff(void *handler, int listener_fd, int fd); /* grpc_handoff.cc */

/* A client's address: the per-peer key. */
struct peer_key {
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
};

/* A client's address and port: one connection. */
/* 8-byte aligned: rte_hash_crc() reads keys 8 bytes at a time. */
struct conn_key {
	alignas(8) uint8_t addr[16];
	uint16_t port; /* network order */
	uint16_t pad;
};

/* One open connection: our duplicate of its socket. */
struct conn {
	struct conn *prev, *next; /* the listener's list (l->conn_list) */
	int dup;
	bool has_peer; /* TCP: counted in `peers` under `key` */
	struct conn_key key;
};

/* ==== Addresses ============================================================================= */

static int
split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;

	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (end == NULL || end[1] != ':' || (size_t)(end - addr - 1) >= hlen)
			return -EINVAL;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		host[end - addr - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || (size_t)(colon - addr) >= hlen)
			return -EINVAL;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= plen)
		return -EINVAL;
	strcpy(port, colon + 1);
	/* Digits only, 0..65535: "117537" must not wrap to another port. */
	for (const char *p = port; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	if (strtoul(port, NULL, 10) > 65535 || strlen(port) > 5)
		return -EINVAL;
	return 0;
}

int
cp_listen_port_check(const char *addr)
{
	char host[256], port[16];

	if (strncmp(addr, "unix:", 5) == 0)
		return addr[5] != '\0' ? 0 : -EINVAL;
	return split_addr(addr, host, sizeof(host), port, sizeof(port));
}

static int
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

/* A bound, listening TCP socket for "host:port" (flags: SOCK_NONBLOCK or 0). */
static int
tcp_listen(const char *addr, int backlog, int flags, int *port_out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	char host[256], port[16];
	int one = 1, fd, rc;

	rc = split_addr(addr, host, sizeof(host), port, sizeof(port));
	if (rc != 0)
		return rc;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0)
		return -EINVAL;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
		rc = -errno;
		freeaddrinfo(res);
		close(fd);
		return rc;
	}
	freeaddrinfo(res);
	*port_out = bound_port(fd);
	return fd;
}

int
cp_tcp_listen(const char *addr, int backlog, int *port_out)
{
	return tcp_listen(addr, backlog, 0, port_out);
}

static int
unix_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path) || path[0] == '\0')
		return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* a stale socket file from an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static void
key_from_sockaddr(const struct sockaddr_storage *ss, struct conn_key *k)
{
	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		memcpy(k->addr, &s6->sin6_addr, 16);
		k->port = s6->sin6_port;
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		k->addr[10] = k->addr[11] = 0xff;
		memcpy(k->addr + 12, &s4->sin_addr, 4);
		k->port = s4->sin_port;
	}
}

/* "ipv4:1.2.3.4:5678" / "ipv6:[::1]:5678" (grpc_call_get_peer) into a connection key. */
static int
key_from_peer(const char *peer, struct conn_key *k)
{
	char host[64], port[16];
	const char *a;

	memset(k, 0, sizeof(*k));
	if (strncmp(peer, "ipv4:", 5) == 0)
		a = peer + 5;
	else if (strncmp(peer, "ipv6:", 5) == 0)
		a = peer + 5;
	else
		return -EINVAL;
	if (split_addr(a, host, sizeof(host), port, sizeof(port)) != 0)
		return -EINVAL;
	/* gRPC percent-encodes IPv6 zone ids; not a TCP peer we would see here. */
	if (inet_pton(AF_INET, host, k->addr + 12) == 1)
		k->addr[10] = k->addr[11] = 0xff;
	else if (inet_pton(AF_INET6, host, k->addr) != 1)
		return -EINVAL;
	k->port = htons((uint16_t)strtoul(port, NULL, 10));
	return 0;
}

/* ==== Set-up ================================================================================ */

int
cp_listener_open(struct cp_listener *l, unsigned index, const char *addr,
		 const struct cp_listener_conf *conf)
{
	return cp_listener_adopt(l, index, addr, -1, conf);
}

int
cp_listener_adopt(struct cp_listener *l, unsigned index, const char *addr, int fd,
		  const struct cp_listener_conf *conf)
{
	struct rte_hash_parameters hp = {
	    .hash_func = rte_hash_crc,
	    .socket_id = SOCKET_ID_ANY,
	};
	char name[RTE_HASH_NAMESIZE];
	struct epoll_event ev = {.events = EPOLLIN};
	int rc;

	memset(l, 0, sizeof(*l));
	l->fd = l->wake_fd = l->ep = l->reserve_fd = -1;
	l->conf = *conf;
	pthread_mutex_init(&l->kill_lock, NULL);
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	snprintf(l->arg_key, sizeof(l->arg_key), "external:corepipe.listener.%u", index);
	l->is_unix = strncmp(addr, "unix:", 5) == 0;
	if (fd >= 0) {
		/* A predecessor's socket (control/takeover.h): already bound and listening, and
		 * non-blocking (the flag belongs to the shared open file). */
		rc = fd;
		if (!l->is_unix)
			l->port = bound_port(fd);
	} else if (l->is_unix) {
		rc = unix_listen(addr + 5);
	} else {
		rc = tcp_listen(addr, LISTEN_BACKLOG, SOCK_NONBLOCK, &l->port);
	}
	if (rc < 0)
		return rc;
	l->fd = rc;
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (l->wake_fd < 0 || l->ep < 0) {
		rc = -errno;
		goto err;
	}
	ev.data.ptr = &l->fd;
	epoll_ctl(l->ep, EPOLL_CTL_ADD, l->fd, &ev);
	ev.data.ptr = &l->wake_fd;
	epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake_fd, &ev);
	hp.entries = conf->max_connections * 2 > 64 ? conf->max_connections * 2 : 64;
	hp.key_len = sizeof(struct conn_key);
	snprintf(name, sizeof(name), "cp_conns_%u", index);
	hp.name = name;
	l->conns = rte_hash_create(&hp);
	hp.key_len = sizeof(struct peer_key);
	snprintf(name, sizeof(name), "cp_peers_%u", index);
	hp.name = name;
	l->peers = rte_hash_create(&hp);
	if (l->conns == NULL || l->peers == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	return 0;
err:
	cp_listener_close(l);
	return rc;
}

static void *
arg_copy(void *p)
{
	return p;
}

static void
arg_destroy(void *p)
{
	(void)p;
}

static int
arg_cmp(void *a, void *b)
{
	return a < b ? -1 : a > b;
}

static const grpc_arg_pointer_vtable g_arg_vtable = {arg_copy, arg_destroy, arg_cmp};

grpc_arg
cp_listener_arg(struct cp_listener *l)
{
	grpc_arg a;

	a.type = GRPC_ARG_POINTER;
	a.key = l->arg_key;
	a.value.pointer.p = &l->handler;
	a.value.pointer.vtable = &g_arg_vtable;
	return a;
}

int
cp_listener_add_port(struct cp_listener *l, grpc_server *server, grpc_server_credentials *creds)
{
	/* An external port has no port number of its own: 0 is its success. */
	grpc_server_add_http2_port(server, l->arg_key, creds);
	return l->handler != NULL ? 0 : -EINVAL;
}

/* ==== The accept thread ===================================================================== */

/* Count a connection in (+1) or out (-1) of its peer's total. @return the new total. */
static long
peer_add(struct cp_listener *l, const struct conn_key *k, long d)
{
	struct peer_key pk;
	void *v = NULL;
	long n;

	memcpy(pk.addr, k->addr, 16);
	if (rte_hash_lookup_data(l->peers, &pk, &v) < 0)
		v = NULL;
	n = (long)(uintptr_t)v + d;
	if (n <= 0)
		rte_hash_del_key(l->peers, &pk);
	else
		rte_hash_add_key_data(l->peers, &pk, (void *)(uintptr_t)n);
	return n;
}

static long
peer_count(struct cp_listener *l, const struct conn_key *k)
{
	struct peer_key pk;
	void *v = NULL;

	memcpy(pk.addr, k->addr, 16);
	return rte_hash_lookup_data(l->peers, &pk, &v) < 0 ? 0 : (long)(uintptr_t)v;
}

static void
conn_gone(struct cp_listener *l, struct conn *c)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->dup, NULL);
	close(c->dup);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->conn_list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->has_peer) {
		peer_add(l, &c->key, -1);
		rte_hash_del_key(l->conns, &c->key);
	}
	atomic_fetch_sub_explicit(&l->open, 1, memory_order_relaxed);
	free(c);
}

/* A connection closed for lack of file descriptors: counted, and logged once a second. */
static void
emfile_note(struct cp_listener *l, int err)
{
	struct timespec ts;
	uint64_t now;

	atomic_fetch_add_explicit(&l->emfile, 1, memory_order_relaxed);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (now - l->emfile_log_ns >= EMFILE_LOG_NS) {
		cp_log(CP_LOG_ERROR, "accept: out of file descriptors; connection closed",
		       CP_LF_STR("listen", l->addr), CP_LF_STR("error", strerror(err)),
		       CP_LF_U64("suppressed_since_last", l->emfile_suppressed));
		l->emfile_log_ns = now;
		l->emfile_suppressed = 0;
	} else {
		l->emfile_suppressed++;
	}
}

/* Out of file descriptors: accept with the reserve and close, so the backlog drains instead of
 * waking us forever. */
static void
emfile(struct cp_listener *l, int err)
{
	int fd;

	if (l->reserve_fd >= 0) {
		close(l->reserve_fd);
		l->reserve_fd = -1;
	}
	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		emfile_note(l, err);
	}
	l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Accept until the backlog is empty; @return false when accepting must stop for now. */
static void
accept_all(struct cp_listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = {.events = 0};
		struct conn *c;
		int fd, one = 1;

		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				emfile(l, errno);
				if (l->reserve_fd < 0)
					return; /* even the reserve is gone: try at the next event
						 */
				continue;
			}
			return; /* EAGAIN, or an error for which waiting is all we can do */
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		/* Count first, close second: a client that sees the close and then asks
		 * GetStats must find it counted. */
		if (atomic_load_explicit(&l->open, memory_order_relaxed) >=
		    l->conf.max_connections) {
			atomic_fetch_add_explicit(&l->refused, 1, memory_order_relaxed);
			close(fd);
			free(c);
			continue;
		}
		if (!l->is_unix && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
			key_from_sockaddr(&ss, &c->key);
			if (l->conf.max_per_peer != 0 &&
			    peer_count(l, &c->key) >= (long)l->conf.max_per_peer) {
				atomic_fetch_add_explicit(&l->refused_peer, 1,
							  memory_order_relaxed);
				close(fd);
				free(c);
				continue;
			}
			c->has_peer = true;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		c->dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (c->dup < 0) {
			int err = errno;

			close(fd);
			if (err == EMFILE || err == ENFILE)
				emfile_note(l, err);
			free(c);
			continue;
		}
		/* events 0: epoll still reports EPOLLHUP/EPOLLERR, which is all we want. */
		ev.data.ptr = c;
		epoll_ctl(l->ep, EPOLL_CTL_ADD, c->dup, &ev);
		if (c->has_peer) {
			peer_add(l, &c->key, +1);
			rte_hash_add_key_data(l->conns, &c->key, c);
		}
		c->next = l->conn_list;
		if (c->next != NULL)
			c->next->prev = c;
		l->conn_list = c;
		atomic_fetch_add_explicit(&l->open, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&l->accepted, 1, memory_order_relaxed);
		cp_grpc_handoff(l->handler, l->fd, fd);
	}
}

static void
run_kills(struct cp_listener *l)
{
	char peers[8][64];
	unsigned n;

	pthread_mutex_lock(&l->kill_lock);
	n = l->n_kill;
	memcpy(peers, l->kill_peer, sizeof(peers));
	l->n_kill = 0;
	pthread_mutex_unlock(&l->kill_lock);
	for (unsigned i = 0; i < n; i++) {
		struct conn_key k;
		void *v;

		if (key_from_peer(peers[i], &k) != 0 || rte_hash_lookup_data(l->conns, &k, &v) < 0)
			continue;
		/* gRPC's copy of the socket sees the end too and cleans up; the hang-up then
		 * comes back here as for any other close. */
		shutdown(((struct conn *)v)->dup, SHUT_RDWR);
		atomic_fetch_add_explicit(&l->killed, 1, memory_order_relaxed);
	}
}

static void *
accept_main(void *arg)
{
	struct cp_listener *l = arg;
	bool stopping = false;

	pthread_setname_np(pthread_self(), "cp-accept");
	while (!stopping) {
		struct epoll_event ev[EPOLL_BATCH];
		int n = epoll_wait(l->ep, ev, EPOLL_BATCH, -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &l->fd) {
				accept_all(l);
			} else if (ev[i].data.ptr == &l->wake_fd) {
				uint64_t v;

				if (read(l->wake_fd, &v, sizeof(v)) < 0) {
					/* nothing: the counter was reset by another read */
				}
				run_kills(l);
				if (l->fd < 0 ||
				    __atomic_load_n(&l->started, __ATOMIC_ACQUIRE) == 0)
					stopping = true;
			} else if (ev[i].events & (EPOLLHUP | EPOLLERR)) {
				conn_gone(l, ev[i].data.ptr);
			}
		}
	}
	return NULL;
}

int
cp_listener_start(struct cp_listener *l)
{
	int rc;

	__atomic_store_n(&l->started, true, __ATOMIC_RELEASE);
	rc = pthread_create(&l->thread, NULL, accept_main, l);
	if (rc != 0) {
		l->started = false;
		return -rc;
	}
	return 0;
}

void
cp_listener_stop(struct cp_listener *l)
{
	/* Not accepting any more: new connection attempts are refused at once instead of
	 * waiting in the kernel's backlog. The accept thread keeps counting closes. */
	if (l->fd >= 0) {
		epoll_ctl(l->ep, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
		l->fd = -1;
		if (l->is_unix && !l->handed_over) {
			/* The socket file goes with the listener (unless a successor has it). */
			unlink(l->addr + 5);
		}
	}
}

int
cp_listener_kill(struct cp_listener *l, const char *peer)
{
	uint64_t one = 1;
	struct conn_key k;

	if (key_from_peer(peer, &k) != 0)
		return -EINVAL;
	pthread_mutex_lock(&l->kill_lock);
	if (l->n_kill == sizeof(l->kill_peer) / sizeof(l->kill_peer[0])) {
		pthread_mutex_unlock(&l->kill_lock);
		return -EAGAIN;
	}
	snprintf(l->kill_peer[l->n_kill++], sizeof(l->kill_peer[0]), "%s", peer);
	pthread_mutex_unlock(&l->kill_lock);
	if (write(l->wake_fd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

void
cp_listener_close(struct cp_listener *l)
{
	uint64_t one = 1;

	cp_listener_stop(l);
	if (l->started) {
		__atomic_store_n(&l->started, false, __ATOMIC_RELEASE);
		if (write(l->wake_fd, &one, sizeof(one)) < 0)
			cp_log(CP_LOG_WARN, "listener: cannot wake the accept thread");
		pthread_join(l->thread, NULL);
	}
	/* Every duplicate still open: gRPC has its own copy of those sockets. */
	while (l->conn_list != NULL) {
		struct conn *c = l->conn_list;

		l->conn_list = c->next;
		close(c->dup);
		free(c);
	}
	if (l->ep >= 0)
		close(l->ep);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	if (l->reserve_fd >= 0)
		close(l->reserve_fd);
	rte_hash_free(l->conns);
	rte_hash_free(l->peers);
	l->conns = l->peers = NULL;
	l->wake_fd = l->ep = l->reserve_fd = -1;
}

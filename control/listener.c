/*
 * Listening socket and accept thread (see listener.h for why corepipe owns them).
 */
#include "control/listener.h"

#include "control/log.h"

#include <errno.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

static int
split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;

	if (strncmp(addr, "unix:", 5) == 0)
		return -EINVAL;
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
	return 0;
}

int
cp_tcp_listen(const char *addr, int backlog, int *port_out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16];
	int one = 1, fd, rc;

	rc = split_addr(addr, host, sizeof(host), port, sizeof(port));
	if (rc != 0)
		return rc;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0)
		return -EINVAL;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		rc = -errno;
		freeaddrinfo(res);
		close(fd);
		return rc;
	}
	freeaddrinfo(res);
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

int
cp_listener_open(struct cp_listener *l, const char *addr, uint32_t max_connections)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16];
	int one = 1, rc;

	memset(l, 0, sizeof(*l));
	l->fd = l->wake_fd = -1;
	l->max_connections = max_connections;
	rc = split_addr(addr, host, sizeof(host), port, sizeof(port));
	if (rc != 0)
		return rc;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0)
		return -EINVAL;
	l->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		rc = -errno;
		goto err;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, res->ai_addr, res->ai_addrlen) != 0 || listen(l->fd, LISTEN_BACKLOG) != 0 ||
	    getsockname(l->fd, (struct sockaddr *)&ss, &sl) != 0) {
		rc = -errno;
		goto err;
	}
	l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0) {
		rc = -errno;
		goto err;
	}
	freeaddrinfo(res);
	return 0;
err:
	freeaddrinfo(res);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	return rc;
}

static long
count_table(const char *path, int port)
{
	char line[512];
	long n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return errno == ENOENT ? 0 : -errno;
	if (fgets(line, sizeof(line), f) == NULL) { /* header */
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		/* "  sl  local_address rem_address   st ..." with addresses as HEX:PORT */
		char local[128], remote[128];
		unsigned st;
		const char *colon;

		if (sscanf(line, "%*s %127s %127s %x", local, remote, &st) != 3)
			continue;
		colon = strrchr(local, ':');
		if (st == 0x01 /* TCP_ESTABLISHED */ && colon != NULL &&
		    strtol(colon + 1, NULL, 16) == port)
			n++;
	}
	fclose(f);
	return n;
}

long
cp_listener_count_established(int port)
{
	long a = count_table("/proc/net/tcp", port);
	long b = count_table("/proc/net/tcp6", port);

	if (a < 0)
		return a;
	if (b < 0)
		return b;
	return a + b;
}

static void *
accept_main(void *arg)
{
	struct cp_listener *l = arg;
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();

	/* Counting reads the kernel's socket tables: do it only when the count known at the
	 * last reading plus the connections accepted since could reach the limit. */
	long known = 0, since = 0;

	pthread_setname_np(pthread_self(), "cp-accept");
	for (;;) {
		struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN},
				      {.fd = l->wake_fd, .events = POLLIN}};
		int fd, one = 1;
		long n;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				cp_log(CP_LOG_ERROR, "accept: out of file descriptors",
				       CP_LF_STR("error", strerror(errno)));
			continue;
		}
		/* The new connection is already in the table: more than the limit means it
		 * is one too many. */
		since++;
		if (known + since > (long)l->max_connections) {
			n = cp_listener_count_established(l->port);
			known = n < 0 ? 0 : n;
			since = 0;
			if (n > (long)l->max_connections) {
				/* Count first, close second: a client that sees the close and then
				 * asks GetStats must find it counted (the test caught the reverse
				 * order once). */
				atomic_fetch_add(&l->refused, 1);
				close(fd);
				continue;
			}
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		grpc_server_add_channel_from_fd(l->server, fd, creds);
		atomic_fetch_add(&l->accepted, 1);
	}
	/* Closed here, not later: once accepting stops, new connection attempts must be
	 * refused at once rather than wait in the kernel's backlog. */
	close(l->fd);
	l->fd = -1;
	grpc_server_credentials_release(creds);
	return NULL;
}

int
cp_listener_start(struct cp_listener *l, grpc_server *server)
{
	int rc;

	l->server = server;
	rc = pthread_create(&l->thread, NULL, accept_main, l);
	if (rc != 0)
		return -rc;
	l->started = 1;
	return 0;
}

void
cp_listener_stop(struct cp_listener *l)
{
	uint64_t one = 1;

	if (l->wake_fd >= 0 && write(l->wake_fd, &one, sizeof(one)) < 0)
		cp_log(CP_LOG_WARN, "listener: cannot wake the accept thread");
}

void
cp_listener_close(struct cp_listener *l)
{
	if (l->started) {
		cp_listener_stop(l);
		pthread_join(l->thread, NULL);
		l->started = 0;
	}
	if (l->fd >= 0)
		close(l->fd);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->fd = l->wake_fd = -1;
}

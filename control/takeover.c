/*
 * Hitless restart: listening sockets passed from the running corepiped to its successor over a
 * unix socket with SCM_RIGHTS (control/takeover.h has the protocol).
 */
#include "control/takeover.h"

#include "control/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST "takeover 1\n"
#define READY	"ready\n"
#define MSG_MAX 2048

static void
set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = CP_TAKEOVER_IO_TIMEOUT_MS / 1000,
			     .tv_usec = (CP_TAKEOVER_IO_TIMEOUT_MS % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static pid_t
peer_pid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 ? cr.pid : 0;
}

static int
unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (path[0] == '\0' || strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* ==== The new process ======================================================================= */

/* Parse "fds <n>\n" and n lines "<kind> <addr>\n" into c->socks[].kind/addr. */
static int
parse_offer(struct cp_takeover_client *c, char *text, unsigned n_fds)
{
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	unsigned n;

	if (line == NULL || sscanf(line, "fds %u", &n) != 1 || n != n_fds ||
	    n > CP_TAKEOVER_FDS_MAX)
		return -EPROTO;
	for (unsigned i = 0; i < n; i++) {
		char *sp;

		line = strtok_r(NULL, "\n", &save);
		if (line == NULL || (sp = strchr(line, ' ')) == NULL ||
		    (size_t)(sp - line) >= sizeof(c->socks[i].kind) ||
		    strlen(sp + 1) >= sizeof(c->socks[i].addr))
			return -EPROTO;
		memcpy(c->socks[i].kind, line, (size_t)(sp - line));
		c->socks[i].kind[sp - line] = '\0';
		strcpy(c->socks[i].addr, sp + 1);
	}
	return 0;
}

int
cp_takeover_fetch(struct cp_takeover_client *c, const char *path, char *err, size_t errlen)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CP_TAKEOVER_FDS_MAX)];
	} cm;
	char text[MSG_MAX + 1];
	struct iovec iov = {.iov_base = text, .iov_len = MSG_MAX};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	struct sockaddr_un sa;
	unsigned n_fds = 0;
	ssize_t got;
	int rc;

	memset(c, 0, sizeof(*c));
	c->conn = -1;
	for (unsigned i = 0; i < CP_TAKEOVER_FDS_MAX; i++)
		c->socks[i].fd = -1;
	rc = unix_addr(path, &sa);
	if (rc != 0) {
		snprintf(err, errlen, "takeover socket %s: path too long", path);
		return rc;
	}
	c->conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->conn < 0)
		return -errno;
	set_timeouts(c->conn);
	if (connect(c->conn, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = -errno;
		close(c->conn);
		c->conn = -1;
		if (rc == -ENOENT || rc == -ECONNREFUSED)
			return 0; /* nobody to take over from: a first start */
		snprintf(err, errlen, "takeover socket %s: connect: %s", path, strerror(-rc));
		return rc;
	}
	c->peer_pid = peer_pid(c->conn);
	if (send(c->conn, REQUEST, strlen(REQUEST), MSG_NOSIGNAL) != (ssize_t)strlen(REQUEST)) {
		rc = -errno;
		snprintf(err, errlen, "takeover socket %s: send: %s", path, strerror(errno));
		goto fail;
	}
	got = recvmsg(c->conn, &mh, MSG_CMSG_CLOEXEC);
	if (got == 0) {
		/* The old process is shutting down and refused: bind as on a first start. */
		cp_takeover_client_close(c);
		return 0;
	}
	if (got < 0) {
		rc = -errno;
		snprintf(err, errlen, "takeover socket %s: no answer from pid %d: %s", path,
			 (int)c->peer_pid, strerror(errno));
		goto fail;
	}
	text[got] = '\0';
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h != NULL; h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		n_fds = (unsigned)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (n_fds > CP_TAKEOVER_FDS_MAX)
			n_fds = CP_TAKEOVER_FDS_MAX;
		for (unsigned i = 0; i < n_fds; i++)
			memcpy(&c->socks[i].fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
		c->n = n_fds; /* ours from now on, closed on every path */
	}
	if ((mh.msg_flags & MSG_CTRUNC) || parse_offer(c, text, n_fds) != 0) {
		rc = -EPROTO;
		snprintf(err, errlen, "takeover socket %s: malformed answer from pid %d", path,
			 (int)c->peer_pid);
		goto fail;
	}
	return 0;
fail:
	cp_takeover_client_close(c);
	return rc;
}

int
cp_takeover_adopt(struct cp_takeover_client *c, const char *kind, const char *addr)
{
	if (c == NULL)
		return -1;
	for (unsigned i = 0; i < c->n; i++) {
		struct cp_takeover_sock *s = &c->socks[i];

		if (s->fd >= 0 && strcmp(s->kind, kind) == 0 && strcmp(s->addr, addr) == 0) {
			int fd = s->fd;

			s->fd = -1;
			return fd;
		}
	}
	return -1;
}

void
cp_takeover_client_close(struct cp_takeover_client *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		if (c->socks[i].fd >= 0)
			close(c->socks[i].fd);
		c->socks[i].fd = -1;
	}
	c->n = 0;
	if (c->conn >= 0)
		close(c->conn);
	c->conn = -1;
}

int
cp_takeover_ready(struct cp_takeover_client *c)
{
	int rc = 0;

	if (c->conn < 0)
		return 0;
	if (send(c->conn, READY, strlen(READY), MSG_NOSIGNAL) != (ssize_t)strlen(READY))
		rc = -errno;
	cp_takeover_client_close(c);
	return rc;
}

/* ==== The running process =================================================================== */

int
cp_takeover_offer_open(struct cp_takeover_offer *o, const char *path)
{
	struct sockaddr_un sa;
	int rc;

	o->lfd = o->conn = -1;
	o->sent = false;
	rc = unix_addr(path, &sa);
	if (rc != 0)
		return rc;
	snprintf(o->path, sizeof(o->path), "%s", path);
	o->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (o->lfd < 0)
		return -errno;
	unlink(path); /* a stale file, or the predecessor's (it no longer accepts there) */
	if (bind(o->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(o->lfd, 4) != 0) {
		rc = -errno;
		close(o->lfd);
		o->lfd = -1;
		return rc;
	}
	return 0;
}

unsigned
cp_takeover_offer_fds(const struct cp_takeover_offer *o, int fds[2])
{
	unsigned n = 0;

	if (o->lfd >= 0)
		fds[n++] = o->lfd;
	if (o->conn >= 0)
		fds[n++] = o->conn;
	return n;
}

static void
drop_conn(struct cp_takeover_offer *o, const char *why)
{
	if (why != NULL)
		cp_log(CP_LOG_WARN, "takeover abandoned: still serving", CP_LF_STR("reason", why),
		       CP_LF_INT("pid", o->peer_pid));
	close(o->conn);
	o->conn = -1;
	o->sent = false;
}

static void
answer_request(struct cp_takeover_offer *o)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CP_TAKEOVER_FDS_MAX)];
	} cm;
	struct cp_takeover_offer_set set = {0};
	char req[sizeof(REQUEST)], text[MSG_MAX];
	struct iovec iov = {.iov_base = text};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *h;
	ssize_t got = recv(o->conn, req, sizeof(req) - 1, 0);
	size_t off;

	if (got != (ssize_t)strlen(REQUEST) || memcmp(req, REQUEST, strlen(REQUEST)) != 0) {
		drop_conn(o, "no takeover request");
		return;
	}
	if (!o->collect(o->arg, &set) || set.n == 0) {
		drop_conn(o, "shutting down: nothing to hand over");
		return;
	}
	off = (size_t)snprintf(text, sizeof(text), "fds %u\n", set.n);
	for (unsigned i = 0; i < set.n && off < sizeof(text); i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s %s\n",
					set.socks[i].kind, set.socks[i].addr);
	if (off >= sizeof(text)) {
		drop_conn(o, "offer too long");
		return;
	}
	iov.iov_len = off;
	memset(&cm, 0, sizeof(cm));
	mh.msg_control = cm.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * set.n);
	h = CMSG_FIRSTHDR(&mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int) * set.n);
	for (unsigned i = 0; i < set.n; i++)
		memcpy(CMSG_DATA(h) + i * sizeof(int), &set.socks[i].fd, sizeof(int));
	if (sendmsg(o->conn, &mh, MSG_NOSIGNAL) != (ssize_t)off) {
		drop_conn(o, strerror(errno));
		return;
	}
	o->sent = true;
	cp_log(CP_LOG_INFO, "takeover: listening sockets sent, waiting for the new process",
	       CP_LF_INT("pid", o->peer_pid), CP_LF_INT("sockets", set.n));
}

void
cp_takeover_offer_event(struct cp_takeover_offer *o, int fd)
{
	if (fd == o->lfd) {
		int c = accept4(o->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			return;
		if (o->conn >= 0) {
			close(c); /* one takeover at a time */
			return;
		}
		o->conn = c;
		o->peer_pid = peer_pid(c);
		set_timeouts(c);
		answer_request(o);
		return;
	}
	if (fd == o->conn && o->sent) {
		char buf[16];
		ssize_t got = recv(o->conn, buf, sizeof(buf), 0);
		pid_t pid = o->peer_pid;

		if (got != (ssize_t)strlen(READY) || memcmp(buf, READY, strlen(READY)) != 0) {
			drop_conn(o, got == 0 ? "the new process went away before serving"
					      : "unexpected message");
			return;
		}
		drop_conn(o, NULL);
		/* The successor serves and will offer at the path itself: stop offering,
		 * leaving the path to it. */
		cp_takeover_offer_close(o, false);
		o->taken(o->arg, pid);
	}
}

void
cp_takeover_offer_close(struct cp_takeover_offer *o, bool unlink_path)
{
	if (o->conn >= 0)
		close(o->conn);
	o->conn = -1;
	if (o->lfd >= 0) {
		close(o->lfd);
		if (unlink_path)
			unlink(o->path);
	}
	o->lfd = -1;
}

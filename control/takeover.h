/**
 * @file
 * Hitless restart: a new corepiped takes over the listening sockets of the running one
 * (server.takeover_socket), as HAProxy's `-x` does, then the old one drains.
 *
 * Protocol, on a unix stream socket at the configured path, which the running process listens
 * on (the "offer"):
 *   1. the new process connects and sends "takeover 1\n";
 *   2. the old one answers with one message: the text "fds <n>\n" then one line per socket,
 *      "<kind> <listen address>\n" (kind: grpc, metrics), with the n sockets attached
 *      (SCM_RIGHTS): the same open sockets, so connections waiting in their backlogs and those
 *      arriving from now on reach whichever process accepts first;
 *   3. the new process adopts the sockets whose kind and configured address match its own
 *      (others it binds itself, the unused ones it closes), starts, and once it serves sends
 *      "ready\n" and closes the connection;
 *   4. on "ready" the old process stops accepting (its copies are closed; a unix socket's file
 *      is left to the new owner), answers NOT_SERVING, sends GOAWAY at once and lets the calls
 *      and streams open on it finish (within server.shutdown_grace_ms), then exits 0. The new
 *      process then offers at the path itself (unlink, bind) for the next restart.
 * If the new process dies or closes the connection before "ready", the old one logs it and
 * goes on serving and offering. Nobody listening at the path (first start): the new process
 * binds its sockets itself.
 *
 * Context: fetch/adopt/ready on the main thread during start-up; the offer side's
 * cp_takeover_offer_* on the control thread (ctl.h), which polls its descriptors.
 * Ownership: a fetched socket belongs to the client until adopted (then to the caller) or
 * closed by cp_takeover_ready()/cp_takeover_client_close().
 */
#ifndef COREPIPE_CP_TAKEOVER_H
#define COREPIPE_CP_TAKEOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CP_TAKEOVER_FDS_MAX  4
#define CP_TAKEOVER_ADDR_MAX 128
/** How long either side waits for the other's next message before giving up. */
#define CP_TAKEOVER_IO_TIMEOUT_MS 5000

struct cp_takeover_sock {
	char kind[16]; /**< "grpc" or "metrics" */
	char addr[CP_TAKEOVER_ADDR_MAX];
	int fd; /**< -1 once adopted or closed */
};

/** The new process's side. */
struct cp_takeover_client {
	int conn; /**< to the old process until ready; -1: none */
	pid_t peer_pid;
	unsigned n;
	struct cp_takeover_sock socks[CP_TAKEOVER_FDS_MAX];
};

/**
 * Connect to @p path and fetch the running process's listening sockets.
 * @return 0 (with c->n sockets; c->n = 0 and c->conn = -1 when nobody listens there), or
 * -errno (protocol error, timeout) with @p err saying what.
 * Context: main thread, before the listeners are opened.
 */
int cp_takeover_fetch(struct cp_takeover_client *c, const char *path, char *err, size_t errlen);

/**
 * Take the fetched socket of @p kind whose address is @p addr (the new configuration's).
 * @return the socket (now the caller's) or -1 when none matches. @p c may be NULL.
 */
int cp_takeover_adopt(struct cp_takeover_client *c, const char *kind, const char *addr);

/**
 * Serving: close the sockets not adopted, tell the old process ("ready") and close the
 * connection. @return 0 or -errno (the old process is gone: nothing to tell).
 */
int cp_takeover_ready(struct cp_takeover_client *c);

/** Close everything without telling the old process (start-up failed). Accepts c->conn < 0. */
void cp_takeover_client_close(struct cp_takeover_client *c);

/** What the running process offers: filled by the caller before each exchange. */
struct cp_takeover_offer_set {
	unsigned n;
	struct cp_takeover_sock socks[CP_TAKEOVER_FDS_MAX]; /**< borrowed descriptors */
};

/** The running process's side. */
struct cp_takeover_offer {
	char path[108];
	int lfd;  /**< listening unix socket, or -1 */
	int conn; /**< the takeover in progress, or -1 */
	pid_t peer_pid;
	bool sent; /**< sockets sent, waiting for "ready" */
	/** Fill @p set with the sockets to hand over; return false to refuse (shutting down). */
	bool (*collect)(void *arg, struct cp_takeover_offer_set *set);
	/** "ready" arrived: the new process serves; start draining. */
	void (*taken)(void *arg, pid_t pid);
	void *arg;
};

/**
 * Listen at @p path (a stale file is replaced). @return 0 or -errno.
 * Context: main thread before the control thread starts.
 */
int cp_takeover_offer_open(struct cp_takeover_offer *o, const char *path);

/**
 * The descriptors the control thread polls (POLLIN): up to 2, the listening socket and the
 * connection in progress. @return how many were written to @p fds.
 */
unsigned cp_takeover_offer_fds(const struct cp_takeover_offer *o, int fds[2]);

/**
 * One of those descriptors is readable: accept, answer the request, or read "ready".
 * Context: the control thread (it blocks at most CP_TAKEOVER_IO_TIMEOUT_MS on a peer).
 */
void cp_takeover_offer_event(struct cp_takeover_offer *o, int fd);

/** Stop offering; the socket file is removed only when @p unlink_path. Idempotent. */
void cp_takeover_offer_close(struct cp_takeover_offer *o, bool unlink_path);

#endif

/**
 * @file
 * corepipe's own listening sockets: every connection is accepted, counted and bounded here, then
 * handed to gRPC, which runs its handshake (TLS when configured, the HTTP/2 preface and
 * SETTINGS within server.handshake_timeout_ms) and serves it.
 *
 * The gRPC C core (1.51) has no connection limit and no way to learn when a connection ends. So
 * corepipe binds and listens itself, and its accept thread, for each connection:
 *   - refuses it (closes it at once: the client sees a reset, and its channel UNAVAILABLE) when
 *     the listener already holds max_connections, or its peer address max_per_peer;
 *   - keeps a duplicate of the socket (dup) in an epoll set, which reports the hang-up once gRPC
 *     has shut the connection down (it shuts down both directions before closing): the exact
 *     count of the connections open on this listener, per peer address too;
 *   - hands the socket to gRPC through the listener's external-connection acceptor (the server
 *     port "external:<name>", the mechanism behind gRPC's C++ ExternalConnectionAcceptor), so
 *     the connection gets the server's credentials (TLS or not) and handshake deadline.
 * When accept() fails for lack of file descriptors, a reserved descriptor is released to accept
 * and close the connections waiting (libuv's and nginx's trick), instead of spinning, and that is
 * logged once a second with a count.
 *
 * cp_listener_kill() closes one connection by its peer address (a client flooding the server
 * with cancelled streams): shutting the duplicate down ends gRPC's copy too.
 *
 * Context: open/args/add_port/start/close on the main thread; the accept thread runs on the
 * main lcore's CPU; kill and the counters from any thread.
 * Ownership: the listener owns its socket, its duplicates and its thread; accepted sockets
 * belong to gRPC once handed over.
 */
#ifndef COREPIPE_CP_LISTENER_H
#define COREPIPE_CP_LISTENER_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rte_hash;
struct conn;

struct cp_listener_conf {
	uint32_t max_connections; /**< open at once on this listener */
	uint32_t max_per_peer;	  /**< from one client address (0: no limit) */
};

struct cp_listener {
	char addr[128];
	char arg_key[48]; /**< "external:corepipe.listener.N": the channel arg and the port */
	void *handler;	  /**< grpc_core::TcpServerFdHandler *, set by gRPC at add_port */
	int fd;		  /**< listening socket */
	int wake_fd;	  /**< eventfd: stop, kill requests */
	int ep;		  /**< epoll: listening socket, wake, connection duplicates */
	int reserve_fd;	  /**< released when accept() runs out of descriptors */
	int port;	  /**< bound port (0 for unix sockets) */
	bool is_unix;
	bool handed_over; /**< a successor took the socket: stop leaves a unix socket's file */
	struct cp_listener_conf conf;
	pthread_t thread;
	bool started;
	struct rte_hash *peers; /**< client address -> connections open */
	struct rte_hash *conns; /**< client address and port -> connection */
	struct conn *conn_list; /**< every open connection (accept thread) */
	pthread_mutex_t kill_lock;
	char kill_peer[8][64]; /**< pending kill requests (peer strings) */
	unsigned n_kill;
	uint64_t emfile_log_ns, emfile_suppressed; /**< accept thread only */
	/* Counters, relaxed everywhere (atomic read-modify-writes, so no count is lost): no other
	 * memory is published through them, and their readers (metrics, GetStats, the accept
	 * loop's limit check) need only a recent value. */
	atomic_uint_fast64_t open;	   /**< connections open now */
	atomic_uint_fast64_t accepted;	   /**< handed to gRPC */
	atomic_uint_fast64_t refused;	   /**< closed at max_connections */
	atomic_uint_fast64_t refused_peer; /**< closed at max_per_peer */
	atomic_uint_fast64_t emfile;	   /**< closed for lack of file descriptors */
	atomic_uint_fast64_t killed;	   /**< closed by cp_listener_kill */
};

/**
 * Bind and listen on @p addr ("host:port", "[v6addr]:port", "unix:/path"; port 0 picks one).
 * @p index names the listener's channel arg. The port must be 0..65535.
 * @return 0, -EINVAL (bad address or port), -errno of getaddrinfo/bind/listen.
 */
int cp_listener_open(struct cp_listener *l, unsigned index, const char *addr,
		     const struct cp_listener_conf *conf);

/**
 * cp_listener_open() on @p fd, a listening socket bound to @p addr already (a predecessor's,
 * control/takeover.h), instead of binding; @p fd < 0 binds. Ownership: consumes @p fd (also
 * on failure, through cp_listener_close()).
 * @return as cp_listener_open().
 */
int cp_listener_adopt(struct cp_listener *l, unsigned index, const char *addr, int fd,
		      const struct cp_listener_conf *conf);

/** The channel arg grpc_server_create() must get for this listener (points into @p l). */
grpc_arg cp_listener_arg(struct cp_listener *l);

/**
 * Add the listener's external port to @p server with @p creds (insecure or TLS).
 * @return 0 or -EINVAL. Context: before grpc_server_start.
 */
int cp_listener_add_port(struct cp_listener *l, grpc_server *server,
			 grpc_server_credentials *creds);

/** Start accepting (after grpc_server_start). @return 0 or -errno. */
int cp_listener_start(struct cp_listener *l);

/** Stop accepting and close the listening socket; open connections stay (idempotent). */
void cp_listener_stop(struct cp_listener *l);

/**
 * Close the connection whose peer is @p peer (grpc_call_get_peer()'s "ipv4:a.b.c.d:port" or
 * "ipv6:[addr]:port"), asynchronously. @return 0, -EINVAL (not parseable), -EAGAIN (too many
 * requests pending). Context: any thread.
 */
int cp_listener_kill(struct cp_listener *l, const char *peer);

/** Join the accept thread, close every duplicate and free everything (after stop). */
void cp_listener_close(struct cp_listener *l);

/** Parse a listen address's port: 0..65535. @return 0 or -EINVAL. */
int cp_listen_port_check(const char *addr);

/**
 * Bind and listen on a blocking TCP socket at @p addr ("host:port", "[v6]:port"; port 0 picks
 * one, returned in *port_out). Used by the HTTP endpoint.
 * @return the socket, or -EINVAL (bad address) / -errno (bind or listen failed).
 */
int cp_tcp_listen(const char *addr, int backlog, int *port_out);

#endif

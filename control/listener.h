/**
 * @file
 * The gRPC listening socket, owned by corepipe so that the number of connections is bounded.
 *
 * The gRPC C core (1.51) has no max-connections setting. corepipe therefore binds and listens
 * itself, and an accept thread hands each accepted connection to the server with
 * grpc_server_add_channel_from_fd(). Before handing over it counts the established connections
 * on the port (from the kernel's socket table, /proc/net/tcp{,6}: exact, and it includes
 * connections gRPC closed on its own), and closes the new one at once when the limit is
 * reached: the client sees the connection refused/reset (UNAVAILABLE) and nothing is queued.
 *
 * Limits of the approach: TCP only ("host:port", "[v6]:port"; "unix:" paths go through gRPC's
 * own listener, unbounded), and add_channel_from_fd takes insecure credentials only, so TLS
 * listeners (a later issue) need another bound.
 *
 * Context: open/start/stop on the main thread; the accept thread runs on the main lcore's CPU.
 * Ownership: the listener owns its socket and thread; accepted fds belong to gRPC once handed
 * over.
 */
#ifndef COREPIPE_CP_LISTENER_H
#define COREPIPE_CP_LISTENER_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct cp_listener {
	int fd;	     /**< listening socket */
	int wake_fd; /**< eventfd that stops the accept thread */
	int port;    /**< bound port */
	uint32_t max_connections;
	grpc_server *server;
	pthread_t thread;
	int started;
	atomic_uint_fast64_t accepted; /**< connections handed to gRPC */
	atomic_uint_fast64_t refused;  /**< connections closed at the limit */
};

/**
 * Bind and listen on @p addr ("host:port" or "[v6addr]:port"; port 0 picks one).
 * @return 0, -EINVAL (not a TCP address), -errno of getaddrinfo/bind/listen.
 */
int cp_listener_open(struct cp_listener *l, const char *addr, uint32_t max_connections);

/**
 * Bind and listen on a blocking TCP socket at @p addr ("host:port", "[v6]:port"; port 0 picks
 * one, returned in *port_out).
 * @return the socket, or -EINVAL (bad address) / -errno (bind or listen failed).
 */
int cp_tcp_listen(const char *addr, int backlog, int *port_out);

/** Start accepting for @p server (started). @return 0 or -errno. */
int cp_listener_start(struct cp_listener *l, grpc_server *server);

/** Stop accepting and close the listening socket (idempotent). Context: any thread. */
void cp_listener_stop(struct cp_listener *l);

/** Join the accept thread and free everything (after stop). */
void cp_listener_close(struct cp_listener *l);

/**
 * Established TCP connections whose local port is @p port, from /proc/net/tcp and tcp6.
 * @return the count, or -errno when the tables cannot be read.
 */
long cp_listener_count_established(int port);

#endif

/**
 * @file
 * The HTTP endpoint's defences, as pure policy the endpoint (metrics_http.c) applies and tests
 * and the fuzzer drive directly: which path a request names, which connections are admitted,
 * and which have overstayed their deadline.
 *
 * Admission (what nginx' limit_conn and HAProxy's maxconn do, plus a reserve): at most
 * max_connections at once and max_per_peer from one peer (an IPv4 address, or an IPv6 /64:
 * one host's addresses); and the last quarter of max_connections is kept for peers that have
 * no connection yet, so a few peers holding their share cannot lock the probes (/healthz,
 * /readyz, /metrics from the kubelet or Prometheus) out while the reserve lasts.
 *
 * Deadlines (nginx' client_header_timeout, HAProxy's timeout http-request): a connection must
 * complete its request headers within header_timeout_ms of being accepted, and is closed
 * request_timeout_ms after it was accepted whatever it does. Neither is reset by a byte
 * arriving, unlike libmicrohttpd's inactivity timeout, so a client that sends one header byte
 * every few seconds (slowloris) is closed like an idle one. Each connection serves one request
 * (responses say Connection: close).
 *
 * Context: one thread (the endpoint's); nothing here locks. Ownership: plain values.
 */
#ifndef COREPIPE_CP_HTTP_GUARD_H
#define COREPIPE_CP_HTTP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** Most connections a guard can track (the bound of server.metrics_max_connections). */
#define CP_HTTP_CONN_MAX 1024

/** Limits (config: server.metrics_*). */
struct cp_http_limits {
	uint32_t max_connections;    /**< at once, all peers */
	uint32_t max_per_peer;	     /**< at once, from one peer */
	uint32_t header_timeout_ms;  /**< accept -> request headers complete */
	uint32_t request_timeout_ms; /**< accept -> closed, whatever happens */
};

/** Defaults: 64 connections, 8 per peer, 5 s for the headers, 30 s in all. */
void cp_http_limits_default(struct cp_http_limits *l);

/** Connections kept for new peers: a quarter of max_connections (at least 1). */
unsigned cp_http_reserve(const struct cp_http_limits *l);

/** A peer: an IPv4 address, or the /64 of an IPv6 one (v4-mapped IPv6 is IPv4). */
struct cp_http_peer {
	uint8_t family; /**< 4 or 6; 0: unknown (all unknown peers are one peer) */
	uint8_t addr[8];
};

/** The peer of @p sa (@p len bytes; NULL or unknown families give family 0). */
void cp_http_peer_of(const struct sockaddr *sa, socklen_t len, struct cp_http_peer *out);

/** What a request asks for. */
enum cp_http_route {
	CP_HTTP_HEALTHZ = 0,
	CP_HTTP_READYZ,
	CP_HTTP_METRICS,
	CP_HTTP_NOT_FOUND,  /**< 404 */
	CP_HTTP_BAD_METHOD, /**< 405: only GET and HEAD */
};

/**
 * Route @p method and @p url (the path as sent, not percent-decoded: "/metrics%00" or
 * "/metric%73" name no route; the query string is not part of it). Exact matches only.
 * Context: any; pure.
 */
enum cp_http_route cp_http_route(const char *method, const char *url);

/** Why a connection was refused. */
enum cp_http_refusal {
	CP_HTTP_ADMITTED = 0,
	CP_HTTP_REFUSED_TOTAL,	 /**< max_connections reached */
	CP_HTTP_REFUSED_PEER,	 /**< max_per_peer reached for that peer */
	CP_HTTP_REFUSED_RESERVE, /**< only the reserve is left, and the peer has a connection */
	CP_HTTP_REFUSAL_MAX,
};

struct cp_http_conn {
	bool used;
	bool headers_done;
	bool expired; /**< closed at its deadline; waiting for the endpoint to forget it */
	int fd;
	struct cp_http_peer peer;
	uint64_t start_ns;
	uint64_t deadline_ns;
};

struct cp_http_guard {
	struct cp_http_limits lim;
	unsigned n; /**< connections tracked */
	uint64_t refused[CP_HTTP_REFUSAL_MAX];
	uint64_t expired_headers; /**< closed: headers not complete in header_timeout_ms */
	uint64_t expired_request; /**< closed: still open request_timeout_ms after accept */
	struct cp_http_conn conn[CP_HTTP_CONN_MAX];
};

/** Start with no connection (limits clamped to CP_HTTP_CONN_MAX). */
void cp_http_guard_init(struct cp_http_guard *g, const struct cp_http_limits *lim);

/** Would a new connection from @p peer be admitted? Counts a refusal by reason. */
enum cp_http_refusal cp_http_guard_admit(struct cp_http_guard *g, const struct cp_http_peer *peer);

/**
 * Track an admitted connection accepted at @p now_ns. @return its entry, or NULL when the table
 * is full (cannot happen after cp_http_guard_admit() said yes).
 */
struct cp_http_conn *cp_http_guard_add(struct cp_http_guard *g, const struct cp_http_peer *peer,
				       int fd, uint64_t now_ns);

/** The request's headers are complete: from now on only request_timeout_ms applies. */
void cp_http_guard_headers_done(struct cp_http_guard *g, struct cp_http_conn *c);

/** The connection closed. Accepts NULL. */
void cp_http_guard_remove(struct cp_http_guard *g, struct cp_http_conn *c);

/**
 * Call @p close_fn once for each connection past its deadline at @p now_ns (marked expired, and
 * counted by which deadline it missed).
 * @return the next deadline of a connection not yet expired (UINT64_MAX: none).
 */
uint64_t cp_http_guard_expire(struct cp_http_guard *g, uint64_t now_ns,
			      void (*close_fn)(int fd, void *arg), void *arg);

#endif

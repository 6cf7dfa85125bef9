/*
 * The HTTP endpoint's admission, routing and deadlines (see http_guard.h).
 */
#include "control/http_guard.h"

#include <netinet/in.h>
#include <string.h>

void
cp_http_limits_default(struct cp_http_limits *l)
{
	l->max_connections = 64;
	l->max_per_peer = 8;
	l->header_timeout_ms = 5000;
	l->request_timeout_ms = 30000;
}

unsigned
cp_http_reserve(const struct cp_http_limits *l)
{
	unsigned r = l->max_connections / 4;

	return r ? r : 1;
}

void
cp_http_peer_of(const struct sockaddr *sa, socklen_t len, struct cp_http_peer *out)
{
	memset(out, 0, sizeof(*out));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		out->family = 4;
		memcpy(out->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			out->family = 4;
			memcpy(out->addr, a->s6_addr + 12, 4);
		} else {
			out->family = 6;
			memcpy(out->addr, a->s6_addr, 8); /* the /64 */
		}
	}
}

enum cp_http_route
cp_http_route(const char *method, const char *url)
{
	if (method == NULL || url == NULL)
		return CP_HTTP_NOT_FOUND;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return CP_HTTP_BAD_METHOD;
	if (strcmp(url, "/healthz") == 0)
		return CP_HTTP_HEALTHZ;
	if (strcmp(url, "/readyz") == 0)
		return CP_HTTP_READYZ;
	if (strcmp(url, "/metrics") == 0)
		return CP_HTTP_METRICS;
	return CP_HTTP_NOT_FOUND;
}

void
cp_http_guard_init(struct cp_http_guard *g, const struct cp_http_limits *lim)
{
	memset(g, 0, sizeof(*g));
	g->lim = *lim;
	if (g->lim.max_connections > CP_HTTP_CONN_MAX)
		g->lim.max_connections = CP_HTTP_CONN_MAX;
	if (g->lim.max_connections == 0)
		g->lim.max_connections = 1;
	if (g->lim.max_per_peer == 0)
		g->lim.max_per_peer = 1;
}

static bool
same_peer(const struct cp_http_peer *a, const struct cp_http_peer *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

enum cp_http_refusal
cp_http_guard_admit(struct cp_http_guard *g, const struct cp_http_peer *peer)
{
	unsigned mine = 0, seen = 0;
	enum cp_http_refusal r = CP_HTTP_ADMITTED;

	for (unsigned i = 0; i < CP_HTTP_CONN_MAX && seen < g->n; i++) {
		if (!g->conn[i].used)
			continue;
		seen++;
		mine += same_peer(&g->conn[i].peer, peer);
	}
	if (g->n >= g->lim.max_connections)
		r = CP_HTTP_REFUSED_TOTAL;
	else if (mine >= g->lim.max_per_peer)
		r = CP_HTTP_REFUSED_PEER;
	else if (g->n >= g->lim.max_connections - cp_http_reserve(&g->lim) && mine > 0)
		r = CP_HTTP_REFUSED_RESERVE;
	g->refused[r]++; /* refused[CP_HTTP_ADMITTED] counts admissions */
	return r;
}

struct cp_http_conn *
cp_http_guard_add(struct cp_http_guard *g, const struct cp_http_peer *peer, int fd, uint64_t now_ns)
{
	if (g->n >= CP_HTTP_CONN_MAX)
		return NULL;
	for (unsigned i = 0; i < CP_HTTP_CONN_MAX; i++) {
		struct cp_http_conn *c = &g->conn[i];

		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->fd = fd;
		c->peer = *peer;
		c->start_ns = now_ns;
		c->deadline_ns = now_ns + (uint64_t)g->lim.header_timeout_ms * 1000000u;
		g->n++;
		return c;
	}
	return NULL;
}

void
cp_http_guard_headers_done(struct cp_http_guard *g, struct cp_http_conn *c)
{
	if (c == NULL || c->headers_done)
		return;
	c->headers_done = true;
	c->deadline_ns = c->start_ns + (uint64_t)g->lim.request_timeout_ms * 1000000u;
}

void
cp_http_guard_remove(struct cp_http_guard *g, struct cp_http_conn *c)
{
	if (c == NULL || !c->used)
		return;
	c->used = false;
	g->n--;
}

uint64_t
cp_http_guard_expire(struct cp_http_guard *g, uint64_t now_ns, void (*close_fn)(int fd, void *arg),
		     void *arg)
{
	uint64_t next = UINT64_MAX;
	unsigned seen = 0;

	for (unsigned i = 0; i < CP_HTTP_CONN_MAX && seen < g->n; i++) {
		struct cp_http_conn *c = &g->conn[i];

		if (!c->used)
			continue;
		seen++;
		if (c->expired)
			continue;
		if (now_ns >= c->deadline_ns) {
			c->expired = true;
			if (c->headers_done)
				g->expired_request++;
			else
				g->expired_headers++;
			close_fn(c->fd, arg);
		} else if (c->deadline_ns < next) {
			next = c->deadline_ns;
		}
	}
	return next;
}

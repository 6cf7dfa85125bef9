/*
 * libFuzzer target: the HTTP endpoint's request routing and connection policy
 * (control/http_guard.h) on arbitrary input.
 *
 * The first byte splits the input: a method and a path (routed, with the oracle that a route
 * is only ever the exact path), then a stream of 3-byte operations on a guard with small
 * limits: admit-and-add a connection from one of 16 peers, remove one, mark its headers done,
 * advance the clock and expire. After every operation the invariants are checked: no more
 * connections than the total limit nor than the per-peer limit from one peer; the count
 * matches the table; a connection is closed at its deadline exactly once; and the reserve is
 * only ever taken by a peer's first connection.
 */
#include "control/http_guard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cp_http_guard g_guard;
static unsigned g_closed[CP_HTTP_CONN_MAX];

static void
on_close(int fd, void *arg)
{
	(void)arg;
	if (fd < 0 || fd >= CP_HTTP_CONN_MAX || ++g_closed[fd] > 1)
		abort(); /* a connection closed twice, or one that is not ours */
}

static void
check(const struct cp_http_guard *g)
{
	unsigned per_peer[16] = {0}, used = 0;

	for (unsigned i = 0; i < CP_HTTP_CONN_MAX; i++) {
		if (!g->conn[i].used)
			continue;
		used++;
		per_peer[g->conn[i].peer.addr[3] & 15]++;
	}
	if (used != g->n || g->n > g->lim.max_connections)
		abort();
	for (unsigned p = 0; p < 16; p++)
		if (per_peer[p] > g->lim.max_per_peer)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_http_limits lim = {.max_connections = 12,
				     .max_per_peer = 3,
				     .header_timeout_ms = 5,
				     .request_timeout_ms = 20};
	struct cp_http_conn *conns[CP_HTTP_CONN_MAX] = {0};
	size_t split, off;
	uint64_t now = 0;
	char method[16], *url;

	if (size < 1)
		return 0;
	/* Routing. */
	split = 1 + (size_t)data[0] % (size < 64 ? size : 64);
	if (split > size)
		split = size;
	url = malloc(split + 1);
	if (url == NULL)
		return 0;
	memcpy(url, data + 1, split - 1);
	url[split - 1] = '\0';
	strcpy(method, (data[0] & 0x80) ? "GET" : "HEAD");
	switch (cp_http_route(method, url)) {
	case CP_HTTP_HEALTHZ:
		if (strcmp(url, "/healthz") != 0)
			abort();
		break;
	case CP_HTTP_READYZ:
		if (strcmp(url, "/readyz") != 0)
			abort();
		break;
	case CP_HTTP_METRICS:
		if (strcmp(url, "/metrics") != 0)
			abort();
		break;
	case CP_HTTP_BAD_METHOD:
		abort(); /* GET and HEAD only were tried */
	default:
		break;
	}
	(void)cp_http_route(url, url); /* any text as a method: never a crash */
	free(url);

	/* The connection policy. */
	cp_http_guard_init(&g_guard, &lim);
	memset(g_closed, 0, sizeof(g_closed));
	for (off = split; off + 3 <= size; off += 3) {
		uint8_t op = data[off] & 3, a = data[off + 1], b = data[off + 2];
		struct cp_http_peer peer = {.family = 4, .addr = {10, 0, 0, (uint8_t)(a & 15)}};

		switch (op) {
		case 0: { /* a new connection from peer a */
			unsigned before = 0;

			for (unsigned i = 0; i < CP_HTTP_CONN_MAX; i++)
				before += conns[i] != NULL && conns[i]->used &&
					  conns[i]->peer.addr[3] == peer.addr[3];
			if (cp_http_guard_admit(&g_guard, &peer) == CP_HTTP_ADMITTED) {
				unsigned fd;

				/* In the reserve only a peer's first connection gets in. */
				if (g_guard.n >= lim.max_connections - cp_http_reserve(&lim) &&
				    before > 0)
					abort();
				for (fd = 0; fd < CP_HTTP_CONN_MAX && conns[fd] != NULL; fd++)
					;
				if (fd == CP_HTTP_CONN_MAX)
					abort();
				conns[fd] = cp_http_guard_add(&g_guard, &peer, (int)fd, now);
				if (conns[fd] == NULL)
					abort();
			}
			break;
		}
		case 1: /* connection b closes */
			if (conns[b] != NULL) {
				cp_http_guard_remove(&g_guard, conns[b]);
				conns[b] = NULL;
				g_closed[b] = 0; /* the fd may be reused */
			}
			break;
		case 2: /* connection b's headers are complete */
			cp_http_guard_headers_done(&g_guard, conns[b]);
			break;
		default: { /* time passes */
			uint64_t next;

			now += (uint64_t)a * 1000000u / 8;
			next = cp_http_guard_expire(&g_guard, now, on_close, NULL);
			if (next != UINT64_MAX && next <= now)
				abort();
			break;
		}
		}
		check(&g_guard);
	}
	return 0;
}

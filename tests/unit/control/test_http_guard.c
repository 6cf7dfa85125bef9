/*
 * The HTTP endpoint's policy: exact routes on the undecoded path, peers (IPv4, IPv6 /64,
 * v4-mapped), admission (total, per peer, the reserve for new peers) and deadlines that no
 * activity resets (headers, then the whole connection).
 */
#include "control/http_guard.h"
#include "tests/fakes/cmocka_inc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static struct cp_http_peer
v4(const char *a)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct cp_http_peer p;

	assert_int_equal(inet_pton(AF_INET, a, &sa.sin_addr), 1);
	cp_http_peer_of((struct sockaddr *)&sa, sizeof(sa), &p);
	return p;
}

static struct cp_http_peer
v6(const char *a)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	struct cp_http_peer p;

	assert_int_equal(inet_pton(AF_INET6, a, &sa.sin6_addr), 1);
	cp_http_peer_of((struct sockaddr *)&sa, sizeof(sa), &p);
	return p;
}

static void
test_http_route_exact_on_the_raw_path(void **state)
{
	(void)state;
	assert_int_equal(cp_http_route("GET", "/healthz"), CP_HTTP_HEALTHZ);
	assert_int_equal(cp_http_route("HEAD", "/readyz"), CP_HTTP_READYZ);
	assert_int_equal(cp_http_route("GET", "/metrics"), CP_HTTP_METRICS);
	assert_int_equal(cp_http_route("POST", "/metrics"), CP_HTTP_BAD_METHOD);
	assert_int_equal(cp_http_route("get", "/metrics"), CP_HTTP_BAD_METHOD);
	/* Finding 18: "/metrics%00" is not "/metrics". */
	assert_int_equal(cp_http_route("GET", "/metrics%00"), CP_HTTP_NOT_FOUND);
	assert_int_equal(cp_http_route("GET", "/metric%73"), CP_HTTP_NOT_FOUND);
	assert_int_equal(cp_http_route("GET", "/metrics/"), CP_HTTP_NOT_FOUND);
	assert_int_equal(cp_http_route("GET", ""), CP_HTTP_NOT_FOUND);
	assert_int_equal(cp_http_route(NULL, "/metrics"), CP_HTTP_NOT_FOUND);
}

static void
test_http_peers(void **state)
{
	struct cp_http_peer a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"),
			    c = v6("2001:db8:1:3::1"), d = v6("::ffff:10.0.0.1"),
			    e = v4("10.0.0.1");

	(void)state;
	assert_memory_equal(&a, &b, sizeof(a)); /* one /64: one peer */
	assert_memory_not_equal(&a, &c, sizeof(a));
	assert_memory_equal(&d, &e, sizeof(d)); /* v4-mapped is the v4 address */
	cp_http_peer_of(NULL, 0, &a);
	assert_int_equal(a.family, 0);
}

static void
test_http_admission_total_peer_reserve(void **state)
{
	static struct cp_http_guard g;
	struct cp_http_limits lim = {.max_connections = 16,
				     .max_per_peer = 4,
				     .header_timeout_ms = 1000,
				     .request_timeout_ms = 5000};
	struct cp_http_peer p;
	char a[32];

	(void)state;
	cp_http_guard_init(&g, &lim);
	assert_int_equal(cp_http_reserve(&lim), 4);
	/* Three peers fill 12 (16 minus the reserve of 4) with 4 each. */
	for (int i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
		p = v4(a);
		for (int k = 0; k < 4; k++) {
			assert_int_equal(cp_http_guard_admit(&g, &p), CP_HTTP_ADMITTED);
			assert_non_null(cp_http_guard_add(&g, &p, 100 + i * 4 + k, 0));
		}
		assert_int_equal(cp_http_guard_admit(&g, &p), CP_HTTP_REFUSED_PEER);
	}
	/* Into the reserve: a new peer gets one, not two. */
	p = v4("10.0.1.1");
	assert_int_equal(cp_http_guard_admit(&g, &p), CP_HTTP_ADMITTED);
	assert_non_null(cp_http_guard_add(&g, &p, 200, 0));
	assert_int_equal(cp_http_guard_admit(&g, &p), CP_HTTP_REFUSED_RESERVE);
	for (int i = 2; i <= 4; i++) {
		snprintf(a, sizeof(a), "10.0.1.%d", i);
		p = v4(a);
		assert_int_equal(cp_http_guard_admit(&g, &p), CP_HTTP_ADMITTED);
		assert_non_null(cp_http_guard_add(&g, &p, 200 + i, 0));
	}
	p = v4("10.0.2.1");
	assert_int_equal(cp_http_guard_admit(&g, &p), CP_HTTP_REFUSED_TOTAL);
	assert_int_equal(g.n, 16);
	assert_int_equal(g.refused[CP_HTTP_REFUSED_PEER], 3);
	assert_int_equal(g.refused[CP_HTTP_REFUSED_RESERVE], 1);
	assert_int_equal(g.refused[CP_HTTP_REFUSED_TOTAL], 1);
}

static unsigned g_closed[8], g_n_closed;

static void
record(int fd, void *arg)
{
	(void)arg;
	g_closed[g_n_closed++] = (unsigned)fd;
}

/* Finding 8: the deadlines run from accept; nothing a client sends moves them. */
static void
test_http_deadlines_from_accept(void **state)
{
	static struct cp_http_guard g;
	struct cp_http_limits lim;
	struct cp_http_peer p = v4("127.0.0.2");
	struct cp_http_conn *slow, *done;
	const uint64_t ms = 1000000;

	(void)state;
	cp_http_limits_default(&lim); /* 5 s headers, 30 s in all */
	cp_http_guard_init(&g, &lim);
	slow = cp_http_guard_add(&g, &p, 7, 0);
	done = cp_http_guard_add(&g, &p, 8, 0);
	cp_http_guard_headers_done(&g, done);
	assert_int_equal(cp_http_guard_expire(&g, 4999 * ms, record, NULL), 5000 * ms);
	assert_int_equal(g_n_closed, 0);
	assert_int_equal(cp_http_guard_expire(&g, 5000 * ms, record, NULL), 30000 * ms);
	assert_int_equal(g_n_closed, 1);
	assert_int_equal(g_closed[0], 7);
	assert_true(slow->expired);
	/* Closed once only, however often the loop looks. */
	cp_http_guard_expire(&g, 6000 * ms, record, NULL);
	assert_int_equal(g_n_closed, 1);
	assert_int_equal(cp_http_guard_expire(&g, 30000 * ms, record, NULL), UINT64_MAX);
	assert_int_equal(g_closed[1], 8);
	assert_int_equal(g.expired_headers, 1);
	assert_int_equal(g.expired_request, 1);
	cp_http_guard_remove(&g, slow);
	cp_http_guard_remove(&g, done);
	cp_http_guard_remove(&g, NULL);
	assert_int_equal(g.n, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_route_exact_on_the_raw_path),
	    cmocka_unit_test(test_http_peers),
	    cmocka_unit_test(test_http_admission_total_peer_reserve),
	    cmocka_unit_test(test_http_deadlines_from_accept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Takeover (control/takeover.c): the offer and the fetch in one process, the offer side on a
 * thread (as on the control thread): sockets arrive as the same open sockets, matched by kind
 * and address; "ready" reaches the offer's taken(); nobody listening is a first start; a
 * refusing offer (shutting down) hands nothing over; a client gone before "ready" leaves the
 * offer open for the next one.
 */
#include "control/takeover.h"
#include "tests/fakes/cmocka_inc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx {
	char dir[64], path[128];
	struct cp_takeover_offer o;
	int lsock[2]; /* two listening TCP sockets offered */
	bool refuse;
	pid_t taken_pid;
	int events; /* offer events to run on the thread */
	pthread_t t;
};

static int
tcp_listener(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int
port_of(int fd)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	return ntohs(sa.sin_port);
}

static bool
collect(void *arg, struct cp_takeover_offer_set *set)
{
	struct fx *f = arg;

	if (f->refuse)
		return false;
	set->n = 2;
	snprintf(set->socks[0].kind, sizeof(set->socks[0].kind), "grpc");
	snprintf(set->socks[0].addr, sizeof(set->socks[0].addr), "127.0.0.1:0");
	set->socks[0].fd = f->lsock[0];
	snprintf(set->socks[1].kind, sizeof(set->socks[1].kind), "metrics");
	snprintf(set->socks[1].addr, sizeof(set->socks[1].addr), "127.0.0.1:0");
	set->socks[1].fd = f->lsock[1];
	return true;
}

static void
taken(void *arg, pid_t pid)
{
	((struct fx *)arg)->taken_pid = pid;
}

/* The control thread's part: wait for and run f->events offer events (bounded waits). */
static void *
offer_thread(void *arg)
{
	struct fx *f = arg;

	for (int done = 0; done < f->events;) {
		int fds[2];
		unsigned n = cp_takeover_offer_fds(&f->o, fds);
		struct pollfd p[2];

		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++)
			p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		if (poll(p, n, 10000) <= 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			if (p[i].revents) {
				cp_takeover_offer_event(&f->o, fds[i]);
				done++;
				break;
			}
		}
	}
	return NULL;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int port;

	snprintf(f->dir, sizeof(f->dir), "/tmp/cp-takeover-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	f->lsock[0] = tcp_listener(&port);
	f->lsock[1] = tcp_listener(&port);
	assert_int_equal(cp_takeover_offer_open(&f->o, f->path), 0);
	f->o.collect = collect;
	f->o.taken = taken;
	f->o.arg = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	cp_takeover_offer_close(&f->o, true);
	close(f->lsock[0]);
	close(f->lsock[1]);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_takeover_fetch_adopt_ready(void **state)
{
	struct fx *f = *state;
	struct cp_takeover_client c;
	char err[256];
	int fd;

	f->events = 2; /* the request, then "ready" */
	pthread_create(&f->t, NULL, offer_thread, f);
	assert_int_equal(cp_takeover_fetch(&c, f->path, err, sizeof(err)), 0);
	assert_true(c.conn >= 0);
	assert_int_equal(c.peer_pid, getpid());
	assert_int_equal(c.n, 2);
	assert_int_equal(cp_takeover_adopt(&c, "grpc", "127.0.0.1:1"), -1); /* other address */
	fd = cp_takeover_adopt(&c, "grpc", "127.0.0.1:0");
	assert_true(fd >= 0);
	assert_int_equal(port_of(fd), port_of(f->lsock[0]));		    /* the same socket */
	assert_int_equal(cp_takeover_adopt(&c, "grpc", "127.0.0.1:0"), -1); /* taken once */
	assert_int_equal(cp_takeover_ready(&c), 0);
	assert_int_equal(c.conn, -1);
	pthread_join(f->t, NULL);
	assert_int_equal(f->taken_pid, getpid());
	assert_int_equal(f->o.lfd, -1);		    /* stopped offering */
	assert_int_equal(access(f->path, F_OK), 0); /* the path is left to the successor */
	unlink(f->path);
	close(fd);
}

static void
test_takeover_nobody_listening_is_a_first_start(void **state)
{
	struct fx *f = *state;
	struct cp_takeover_client c;
	char err[256], path[160];

	snprintf(path, sizeof(path), "%s/none", f->dir);
	assert_int_equal(cp_takeover_fetch(&c, path, err, sizeof(err)), 0);
	assert_int_equal(c.conn, -1);
	assert_int_equal(c.n, 0);
	assert_int_equal(cp_takeover_adopt(&c, "grpc", "127.0.0.1:0"), -1);
	assert_int_equal(cp_takeover_ready(&c), 0);
}

static void
test_takeover_refused_while_shutting_down(void **state)
{
	struct fx *f = *state;
	struct cp_takeover_client c;
	char err[256];

	f->refuse = true;
	f->events = 1;
	pthread_create(&f->t, NULL, offer_thread, f);
	assert_int_equal(cp_takeover_fetch(&c, f->path, err, sizeof(err)), 0);
	pthread_join(f->t, NULL);
	assert_int_equal(c.conn, -1);
	assert_int_equal(c.n, 0);
	assert_int_equal(f->taken_pid, 0);
	assert_true(f->o.lfd >= 0); /* still offering */
}

static void
test_takeover_client_gone_before_ready_keeps_offering(void **state)
{
	struct fx *f = *state;
	struct cp_takeover_client c;
	char err[256];

	f->events = 2; /* the request, then the hang-up */
	pthread_create(&f->t, NULL, offer_thread, f);
	assert_int_equal(cp_takeover_fetch(&c, f->path, err, sizeof(err)), 0);
	assert_int_equal(c.n, 2);
	cp_takeover_client_close(&c); /* start-up failed */
	pthread_join(f->t, NULL);
	assert_int_equal(f->taken_pid, 0);
	assert_true(f->o.lfd >= 0);
	assert_int_equal(f->o.conn, -1);
	/* The next successor gets the sockets. */
	f->events = 2;
	pthread_create(&f->t, NULL, offer_thread, f);
	assert_int_equal(cp_takeover_fetch(&c, f->path, err, sizeof(err)), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(cp_takeover_ready(&c), 0);
	pthread_join(f->t, NULL);
	assert_int_equal(f->taken_pid, getpid());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_takeover_fetch_adopt_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_takeover_nobody_listening_is_a_first_start, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_takeover_refused_while_shutting_down, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_takeover_client_gone_before_ready_keeps_offering,
					    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

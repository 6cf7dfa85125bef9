/*
 * notify: the sd_notify datagrams corepiped sends, received on a real AF_UNIX datagram socket
 * named by $NOTIFY_SOCKET (what systemd does for Type=notify), and silence without it.
 */
#include "control/notify.h"
#include "tests/fakes/cmocka_inc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int g_fd = -1;
static char g_path[108];

static int
setup(void **state)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};

	(void)state;
	snprintf(g_path, sizeof(g_path), "/tmp/cp_test_notify_%d.sock", (int)getpid());
	unlink(g_path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", g_path);
	g_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (g_fd < 0 || bind(g_fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	setsockopt(g_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", g_path, 1);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	close(g_fd);
	unlink(g_path);
	return 0;
}

static void
expect(const char *want)
{
	char buf[512];
	ssize_t n = recv(g_fd, buf, sizeof(buf) - 1, 0);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void
test_notify_sequence(void **state)
{
	(void)state;
	cp_notify_ready("serving on %s", "127.0.0.1:50051");
	expect("READY=1\nSTATUS=serving on 127.0.0.1:50051");
	cp_notify_reloading();
	expect("RELOADING=1\nSTATUS=reloading the configuration");
	cp_notify_reloaded(true, NULL);
	expect("READY=1\nSTATUS=serving (configuration reloaded)");
	cp_notify_reloading();
	expect("RELOADING=1\nSTATUS=reloading the configuration");
	/* A multi-line error: STATUS= keeps its first line. */
	cp_notify_reloaded(false, "c.yaml:3:1: bad\nc.yaml:4:1: worse");
	expect("READY=1\nSTATUS=serving (reload rejected, nothing changed: c.yaml:3:1: bad)");
	cp_notify_status("draining");
	expect("STATUS=draining");
	cp_notify_stopping("draining: %d calls open", 2);
	expect("STOPPING=1\nSTATUS=draining: 2 calls open");
}

static void
test_notify_without_socket_is_silent(void **state)
{
	char buf[64];

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	cp_notify_ready("x");
	cp_notify_stopping("y");
	assert_true(recv(g_fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	setenv("NOTIFY_SOCKET", g_path, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_notify_sequence),
	    cmocka_unit_test(test_notify_without_socket_is_silent),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * file: cp_file_read on real files in a scratch directory: a regular file read whole and
 * NUL-terminated (empty, and exactly at the limit), and every refusal with its -errno and a
 * message naming the path and the reason: missing, one byte over the limit, a directory, a
 * FIFO with no writer (which must not block), a character device, a socket.
 */
#include "control/file.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char g_dir[64];
static char g_path[100]; /* fits sockaddr_un.sun_path */
static char g_err[256];

static int
setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/cp_test_file_XXXXXX");
	return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *
scratch(const char *name)
{
	snprintf(g_path, sizeof(g_path), "%s/%s", g_dir, name);
	return g_path;
}

static void
write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The call refused @p path with @p rc and a message "path: ...what...". */
static void
assert_refused(const char *path, size_t max, int rc, const char *what)
{
	char *out = (char *)1;
	size_t len = 7;

	g_err[0] = '\0';
	assert_int_equal(cp_file_read(path, max, &out, &len, g_err, sizeof(g_err)), rc);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_int_equal(strncmp(g_err, path, strlen(path)), 0);
	assert_non_null(strstr(g_err, what));
}

static void
test_regular_file_read_whole(void **state)
{
	const char data[] = "a: 1\nb: \"two\"\n";
	const char *p = scratch("ok.yaml");
	char *out = NULL;
	size_t len = 0;

	(void)state;
	write_file(p, data, sizeof(data) - 1);
	assert_int_equal(cp_file_read(p, 1024, &out, &len, g_err, sizeof(g_err)), 0);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(out, data, len);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void
test_binary_and_empty(void **state)
{
	const char data[] = {'x', '\0', 'y'};
	const char *p = scratch("bin");
	char *out = NULL;
	size_t len = 99;

	(void)state;
	write_file(p, data, sizeof(data));
	assert_int_equal(cp_file_read(p, 3, &out, &len, g_err, sizeof(g_err)), 0);
	assert_int_equal(len, 3); /* exactly at the limit; the NUL inside is kept */
	assert_memory_equal(out, data, 3);
	free(out);
	p = scratch("empty");
	write_file(p, "", 0);
	assert_int_equal(cp_file_read(p, 0, &out, &len, g_err, sizeof(g_err)), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
}

static void
test_missing(void **state)
{
	(void)state;
	assert_refused(scratch("nope"), 10, -ENOENT, strerror(ENOENT));
}

static void
test_over_limit(void **state)
{
	const char *p = scratch("big");

	(void)state;
	write_file(p, "12345", 5);
	assert_refused(p, 4, -EFBIG, "5 bytes, more than the 4 a file may have");
}

static void
test_directory(void **state)
{
	(void)state;
	assert_refused(g_dir, 10, -EINVAL, "a directory, not a regular file");
}

static void
test_fifo_does_not_block(void **state)
{
	const char *p = scratch("fifo");

	(void)state;
	assert_int_equal(mkfifo(p, 0600), 0);
	/* No writer: opening it to read would wait forever without O_NONBLOCK. */
	assert_refused(p, 10, -EINVAL, "a FIFO, not a regular file");
}

static void
test_character_device(void **state)
{
	(void)state;
	assert_refused("/dev/null", 10, -EINVAL, "a character device, not a regular file");
}

static void
test_socket(void **state)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	const char *p = scratch("sock");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)state;
	assert_true(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	/* A bound socket file cannot be opened at all (ENXIO): refused before any read. */
	assert_refused(p, 10, -ENXIO, strerror(ENXIO));
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_regular_file_read_whole),
	    cmocka_unit_test(test_binary_and_empty),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_over_limit),
	    cmocka_unit_test(test_directory),
	    cmocka_unit_test(test_fifo_does_not_block),
	    cmocka_unit_test(test_character_device),
	    cmocka_unit_test(test_socket),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

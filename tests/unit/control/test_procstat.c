/*
 * procstat: the /proc/<pid>/stat parser on a line whose command name holds spaces and
 * parentheses, and live values that move with what the process does (open fds).
 */
#include "control/procstat.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
test_procstat_parse_fields(void **state)
{
	/* utime 250, stime 150 ticks; starttime 1000 ticks; vsize 123456789; rss 300 pages. */
	static const char line[] =
	    "4242 (odd) name (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 "
	    "1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
	struct cp_procstat ps;

	(void)state;
	memset(&ps, 0, sizeof(ps));
	assert_int_equal(cp_procstat_parse(line, 100, 4096, 1700000000, &ps), 0);
	assert_true(ps.cpu_seconds > 3.999 && ps.cpu_seconds < 4.001);
	assert_int_equal(ps.virtual_bytes, 123456789);
	assert_int_equal(ps.resident_bytes, 300 * 4096);
	assert_true(ps.start_time_seconds > 1700000009.999 &&
		    ps.start_time_seconds < 1700000010.001);
	assert_int_equal(cp_procstat_parse("garbage", 100, 4096, 0, &ps), -EINVAL);
	assert_int_equal(cp_procstat_parse("1 (x) S 1 2", 100, 4096, 0, &ps), -EINVAL);
}

static void
test_procstat_read_live(void **state)
{
	struct cp_procstat a, b;
	int fd;

	(void)state;
	assert_int_equal(cp_procstat_read(&a), 0);
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(cp_procstat_read(&b), 0);
	close(fd);
	assert_int_equal(b.open_fds, a.open_fds + 1);
	assert_true(a.max_fds >= a.open_fds);
	assert_true(a.resident_bytes > 0 && a.virtual_bytes >= a.resident_bytes);
	/* Started in the past, not before 2020. */
	assert_true(a.start_time_seconds > 1577836800.0 &&
		    a.start_time_seconds <= (double)time(NULL) + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_procstat_parse_fields),
	    cmocka_unit_test(test_procstat_read_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

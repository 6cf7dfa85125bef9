/*
 * JSON-lines logger: each line is one valid JSON object (checked with Python's json module, an
 * independent parser), strings are escaped, invalid UTF-8 is replaced, levels filter, and long
 * values are cut without breaking the JSON.
 */
#include "control/log.h"
#include "tests/fakes/cmocka_inc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run Python's json parser over @p text (lines) and evaluate @p check on each object @c o;
 * returns its exit status. */
static int
python_json_ok(const char *text, const char *check)
{
	char script[] = "/tmp/cp_test_log_XXXXXX";
	char cmd[128];
	FILE *p;
	int fd = mkstemp(script), rc;

	assert_true(fd >= 0);
	p = fdopen(fd, "w");
	fprintf(p, "import json, sys\nfor l in sys.stdin:\n    o = json.loads(l)\n    %s\n", check);
	fclose(p);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s", script);
	p = popen(cmd, "w");
	assert_non_null(p);
	fputs(text, p);
	rc = pclose(p);
	unlink(script);
	return rc;
}

static void
test_log_format_is_valid_json_with_fields(void **state)
{
	char buf[4096];
	size_t n;

	(void)state;
	n = cp_log_format(buf, sizeof(buf), CP_LOG_WARN, "hello \"world\"\n\ttab",
			  (const struct cp_log_field[]){CP_LF_STR("pipeline", "p\\1"),
							CP_LF_INT("worker", -3),
							CP_LF_U64("big", 18446744073709551615ull),
							CP_LF_DBL("ratio", 0.25),
							CP_LF_BOOL("ok", true),
							CP_LF_STR("ctl", "\x01\x7f"),
							{.key = NULL}});
	buf[n] = '\0';
	assert_int_equal(buf[n - 1], '\n');
	assert_non_null(strstr(buf, "\"level\":\"warn\""));
	assert_int_equal(python_json_ok(buf,
					"assert o['msg']=='hello \"world\"\\n\\ttab' and "
					"o['pipeline']=='p\\\\1' and o['worker']==-3 and "
					"o['big']==18446744073709551615 and o['ratio']==0.25 and "
					"o['ok'] is True and o['ctl']=='\\x01\\x7f' and "
					"o['ts'].endswith('Z')"),
			 0);
}

static void
test_log_format_replaces_invalid_utf8(void **state)
{
	char buf[512];
	size_t n;

	(void)state;
	n = cp_log_format(buf, sizeof(buf), CP_LOG_INFO, "bad \xff\xfe ok \xc3\xa9",
			  (const struct cp_log_field[]){{.key = NULL}});
	buf[n] = '\0';
	assert_int_equal(python_json_ok(buf, "assert o['msg']=='bad \\ufffd\\ufffd ok \\u00e9'"),
			 0);
}

static void
test_log_format_truncates_and_stays_json(void **state)
{
	char buf[256], big[1000];
	size_t n;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = cp_log_format(buf, sizeof(buf), CP_LOG_INFO, "m",
			  (const struct cp_log_field[]){
			      CP_LF_STR("v", big), CP_LF_INT("after", 1), {.key = NULL}});
	assert_true(n <= sizeof(buf));
	buf[n - 1] = '\n';
	buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
	assert_int_equal(python_json_ok(buf, "assert o['v'].endswith('...')"), 0);
}

static void
test_log_level_filter_and_parse(void **state)
{
	enum cp_log_level l;
	int fds[2], saved;
	char out[4096] = {0};
	ssize_t n;

	(void)state;
	assert_int_equal(cp_log_level_parse("warning", &l), 0);
	assert_int_equal(l, CP_LOG_WARN);
	assert_int_equal(cp_log_level_parse("DEBUG", &l), 0);
	assert_int_equal(l, CP_LOG_DEBUG);
	assert_int_equal(cp_log_level_parse("loud", &l), -22);

	assert_int_equal(pipe(fds), 0);
	saved = dup(2);
	dup2(fds[1], 2);
	cp_log_set_level(CP_LOG_WARN);
	cp_log(CP_LOG_INFO, "hidden");
	cp_log(CP_LOG_ERROR, "shown", CP_LF_INT("n", 1));
	cp_log(CP_LOG_WARN, "shown too");
	cp_log_set_level(CP_LOG_INFO);
	dup2(saved, 2);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	assert_true(n > 0);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "\"msg\":\"shown\""));
	assert_int_equal(python_json_ok(out, "assert o['level'] in ('error','warn')"), 0);
}

/* Finding 12: at most one line per kind per interval, the others counted and reported with
 * the next line; kinds are independent; more kinds than slots share the overflow slot. */
static void
test_log_limit_one_per_interval_per_kind(void **state)
{
	static struct cp_log_limit l;
	const uint64_t s = 1000000000ull;
	uint64_t sup = 99;
	unsigned passed = 0;

	(void)state;
	assert_true(cp_log_limit_pass(&l, 7, 5 * s, s, &sup));
	assert_int_equal(sup, 0);
	for (unsigned i = 1; i <= 1000; i++) /* 1000 more within the second */
		passed += cp_log_limit_pass(&l, 7, 5 * s + i * 999000, s, &sup);
	assert_int_equal(passed, 0);
	assert_true(cp_log_limit_pass(&l, 8, 5 * s + 1, s, &sup)); /* another kind */
	assert_int_equal(sup, 0);
	assert_true(cp_log_limit_pass(&l, 7, 6 * s, s, &sup));
	assert_int_equal(sup, 1000);
	assert_false(cp_log_limit_pass(&l, 7, 6 * s + 1, s, &sup));
	/* 100 kinds in a 64-slot table: none lost, the extra ones share one slot. */
	passed = 0;
	for (uint64_t k = 100; k < 200; k++)
		passed += cp_log_limit_pass(&l, k, 10 * s, s, &sup);
	assert_true(passed >= CP_LOG_LIMIT_KINDS - 2 && passed <= CP_LOG_LIMIT_KINDS + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_limit_one_per_interval_per_kind),
	    cmocka_unit_test(test_log_format_is_valid_json_with_fields),
	    cmocka_unit_test(test_log_format_replaces_invalid_utf8),
	    cmocka_unit_test(test_log_format_truncates_and_stays_json),
	    cmocka_unit_test(test_log_level_filter_and_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

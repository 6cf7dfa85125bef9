/*
 * corepipe-bench's report module: errors grouped by code and message (and counted apart past
 * the table's size), the verdict when all, some or none of the calls failed, and each format's
 * shape (CSV rows, JSON fields, HTML with its data and script, text sections).
 */
#include "perf/corepipe_report.h"
#include "tests/fakes/cmocka_inc.h"

#include <stdlib.h>
#include <string.h>

static struct hist g_h;

static char *
render(enum br_format f, const struct br_result *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);

	assert_int_equal(br_write(o, f, r), 0);
	fclose(o);
	return buf;
}

static void
test_errors_grouped_by_code_and_message(void **state)
{
	struct br_errors e = {0}, m = {0};

	(void)state;
	br_errors_add(&e, 5, "not found xyz", 9, 1); /* only the first 9 bytes */
	br_errors_add(&e, 5, "not found", 9, 2);
	br_errors_add(&e, 3, "not found", 9, 1);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.e[0].count, 3);
	assert_string_equal(e.e[0].msg, "not found");
	for (int i = 0; i < BR_MAX_ERRORS + 3; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "m%d", i);
		br_errors_add(&m, 13, msg, strlen(msg), 1);
	}
	assert_int_equal(m.n, BR_MAX_ERRORS);
	assert_int_equal(m.other, 3);
	br_errors_merge(&e, &m);
	assert_int_equal(e.n, BR_MAX_ERRORS);
	assert_int_equal(e.other, 3 + 2); /* of m's 32 pairs, 30 fit beside e's 2 */
}

static void
test_all_failed_verdict_in_every_format(void **state)
{
	struct br_errors e = {0};
	struct br_result r = {
	    .command = "corepipe-bench -n 5", .stream = true, .h = &g_h, .errors = &e};
	char *s;

	(void)state;
	memset(&g_h, 0, sizeof(g_h));
	r.codes[5] = 5;
	br_errors_add(&e, 5, "open: pipeline 'x' not found", 28, 5);
	s = render(BR_TEXT, &r);
	assert_non_null(strstr(s, "Result:\tall 5 streams failed"));
	assert_non_null(strstr(s, "[5]\tNOT_FOUND: open: pipeline 'x' not found"));
	assert_null(strstr(s, "[OK]"));
	assert_null(strstr(s, "Response time histogram")); /* nothing measured */
	free(s);
	s = render(BR_JSON, &r);
	assert_non_null(strstr(s, "\"verdict\":\"all 5 streams failed\""));
	assert_non_null(strstr(s, "\"error_distribution\":[{\"code\":\"NOT_FOUND\",\"message\":"
				  "\"open: pipeline 'x' not found\",\"count\":5}]"));
	assert_non_null(strstr(s, "\"ok\":0,\"errors\":5,\"calls\":5"));
	free(s);
	s = render(BR_CSV, &r);
	assert_non_null(strstr(s, "section,key,value\n"));
	assert_non_null(strstr(s, "error,\"NOT_FOUND: open: pipeline 'x' not found\",5\n"));
	free(s);
	s = render(BR_HTML, &r);
	assert_non_null(strstr(s, "<table id=\"errors\">"));
	assert_non_null(strstr(s, "pipeline 'x' not found"));
	assert_non_null(strstr(s, "id=\"report-data\""));
	/* Nothing is fetched (the SVG namespace URI is a name, not a request). */
	assert_null(strstr(s, "src="));
	assert_null(strstr(s, "href="));
	free(s);
}

static void
test_some_and_none_failed(void **state)
{
	struct br_errors e = {0};
	struct br_result r = {.command = "x", .h = &g_h, .errors = &e, .elapsed_s = 1};
	char *s;

	(void)state;
	memset(&g_h, 0, sizeof(g_h));
	for (uint64_t v = 1000; v < 101000; v += 1000)
		hist_add(&g_h, v);
	r.codes[0] = 100;
	s = render(BR_TEXT, &r);
	assert_non_null(strstr(s, "Result:\tall 100 calls OK"));
	assert_non_null(strstr(s, "Response time histogram"));
	assert_null(strstr(s, "Error distribution"));
	free(s);
	r.codes[14] = 2;
	br_errors_add(&e, 14, "<html> & co", 11, 2);
	s = render(BR_JSON, &r);
	assert_non_null(strstr(s, "\"verdict\":\"2 of 102 calls failed\""));
	/* Escaped so that the JSON can sit inside the HTML page's script element. */
	assert_non_null(strstr(s, "\\u003chtml\\u003e \\u0026 co"));
	free(s);
	s = render(BR_HTML, &r);
	assert_non_null(strstr(s, "&lt;html&gt; &amp; co"));
	free(s);
}

static void
test_format_parse(void **state)
{
	enum br_format f;

	(void)state;
	assert_int_equal(br_format_parse("csv", &f), 0);
	assert_int_equal(f, BR_CSV);
	assert_int_equal(br_format_parse("html", &f), 0);
	assert_int_equal(f, BR_HTML);
	assert_int_equal(br_format_parse("xml", &f), -1);
	assert_string_equal(br_code_name(16), "UNAUTHENTICATED");
	assert_string_equal(br_code_name(99), "UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errors_grouped_by_code_and_message),
	    cmocka_unit_test(test_all_failed_verdict_in_every_format),
	    cmocka_unit_test(test_some_and_none_failed),
	    cmocka_unit_test(test_format_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

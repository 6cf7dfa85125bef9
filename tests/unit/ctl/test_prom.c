/*
 * corepipectl top's Prometheus reader: samples with escaped labels, sums by label, malformed
 * lines skipped and counted; quantiles from cumulative buckets as histogram_quantile() gives
 * them (interpolation, +Inf bucket, empty histogram).
 */
#include "client/ctl/prom.h"
#include "tests/fakes/cmocka_inc.h"

#include <math.h>
#include <string.h>

static void
test_prom_parse_and_sum(void **state)
{
	const char *t = "# HELP x y\n# TYPE x counter\n"
			"corepipe_requests_total{pipeline=\"a\",code=\"OK\"} 10\n"
			"corepipe_requests_total{pipeline=\"a\",code=\"NOT_FOUND\"} 2\n"
			"corepipe_requests_total{pipeline=\"b\\\"q\",code=\"OK\"} 5\n"
			"process_resident_memory_bytes 1.5e+07\n"
			"broken{pipeline=\"a\" 1\n"
			"\n";
	struct ctl_prom p;

	(void)state;
	assert_int_equal(ctl_prom_parse(t, strlen(t), &p), 1);
	assert_int_equal(p.n, 4);
	assert_true(ctl_prom_sum(&p, "corepipe_requests_total", "pipeline", "a") == 12);
	assert_true(ctl_prom_sum(&p, "corepipe_requests_total", "code", "OK") == 15);
	assert_true(ctl_prom_sum(&p, "corepipe_requests_total", NULL, NULL) == 17);
	assert_true(ctl_prom_sum(&p, "corepipe_requests_total", "pipeline", "b\"q") == 5);
	assert_true(ctl_prom_sum(&p, "process_resident_memory_bytes", NULL, NULL) == 1.5e7);
	assert_true(ctl_prom_sum(&p, "nope", NULL, NULL) == -1);
	assert_string_equal(ctl_prom_label(&p.s[1], "code"), "NOT_FOUND");
	assert_null(ctl_prom_label(&p.s[3], "code"));
	ctl_prom_free(&p);
	assert_int_equal(p.n, 0);
}

static void
test_hist_quantile_interpolates_like_promql(void **state)
{
	/* 100 observations: 50 in (0, 1], 40 in (1, 2], 10 in (2, 4]. */
	const double le[] = {1, 2, 4, INFINITY}, cum[] = {50, 90, 100, 100};

	(void)state;
	assert_true(fabs(ctl_hist_quantile(0.5, le, cum, 4) - 1.0) < 1e-9);
	assert_true(fabs(ctl_hist_quantile(0.25, le, cum, 4) - 0.5) < 1e-9);
	assert_true(fabs(ctl_hist_quantile(0.7, le, cum, 4) - 1.5) < 1e-9);
	assert_true(fabs(ctl_hist_quantile(0.95, le, cum, 4) - 3.0) < 1e-9);
	assert_true(fabs(ctl_hist_quantile(1.0, le, cum, 4) - 4.0) < 1e-9);
}

static void
test_hist_quantile_inf_bucket_and_empty(void **state)
{
	const double le[] = {1, 2, INFINITY}, cum[] = {0, 10, 20}, zero[] = {0, 0, 0};

	(void)state;
	/* The rank falls in +Inf: the highest finite bound. */
	assert_true(ctl_hist_quantile(0.99, le, cum, 3) == 2.0);
	/* Empty buckets below the rank are skipped: the first 10 lie in (1, 2]. */
	assert_true(fabs(ctl_hist_quantile(0.25, le, cum, 3) - 1.5) < 1e-9);
	assert_true(ctl_hist_quantile(0.5, le, zero, 3) == -1);
	assert_true(ctl_hist_quantile(0.5, le, cum, 0) == -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prom_parse_and_sum),
	    cmocka_unit_test(test_hist_quantile_interpolates_like_promql),
	    cmocka_unit_test(test_hist_quantile_inf_bucket_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

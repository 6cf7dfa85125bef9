/*
 * rpc_stats: answered calls counted by method and code; per-thread shards sum exactly, also
 * with more threads than shards (the shared atomic shard); unregistered methods are one
 * "unknown" series; registered methods show at zero with code OK.
 */
#include "control/rpc_stats.h"
#include "tests/fakes/cmocka_inc.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static const char g_exec[] = "/corepipe.v1.Pipeline/Execute";
static const char g_stream[] = "/corepipe.v1.Pipeline/ExecuteStream";
static const char g_stats[] = "/corepipe.v1.Admin/GetStats";

struct seen {
	char line[64][160];
	unsigned n;
};

static void
collect(const char *service, const char *method, const char *type, grpc_status_code code,
	uint64_t count, void *arg)
{
	struct seen *s = arg;

	if (s->n < 64)
		snprintf(s->line[s->n++], sizeof(s->line[0]), "%s %s %s %d %llu", service, method,
			 type, (int)code, (unsigned long long)count);
}

static bool
has(const struct seen *s, const char *line)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->line[i], line) == 0)
			return true;
	return false;
}

static void
test_rpc_stats_counts_by_method_and_code(void **state)
{
	struct seen s = {0};

	(void)state;
	cp_rpc_stats_register(g_stats, false);
	for (int i = 0; i < 3; i++)
		cp_rpc_stats_handled(g_exec, false, GRPC_STATUS_OK);
	cp_rpc_stats_handled(g_exec, false, GRPC_STATUS_INVALID_ARGUMENT);
	cp_rpc_stats_handled(g_stream, true, GRPC_STATUS_CANCELLED);
	cp_rpc_stats_handled(NULL, false, GRPC_STATUS_UNIMPLEMENTED);
	cp_rpc_stats_handled(NULL, false, GRPC_STATUS_UNIMPLEMENTED);
	cp_rpc_stats_for_each(collect, &s);
	assert_true(has(&s, "corepipe.v1.Pipeline Execute unary 0 3"));
	assert_true(has(&s, "corepipe.v1.Pipeline Execute unary 3 1"));
	assert_true(has(&s, "corepipe.v1.Pipeline ExecuteStream bidi_stream 1 1"));
	/* Registered and never called: shown at zero with OK; the stream's OK too. */
	assert_true(has(&s, "corepipe.v1.Admin GetStats unary 0 0"));
	assert_true(has(&s, "corepipe.v1.Pipeline ExecuteStream bidi_stream 0 0"));
	assert_true(has(&s, "unknown unknown unary 12 2"));
	/* Zero counts of other codes are not listed. */
	assert_false(has(&s, "corepipe.v1.Pipeline Execute unary 5 0"));
	assert_int_equal(cp_rpc_stats_total(g_exec), 4);
}

#define THREADS 24 /* more than CP_RPC_STATS_SHARDS: some share the atomic shard */
#define PER	20000

static void *
hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER; i++)
		cp_rpc_stats_handled(g_stats, false, (grpc_status_code)(i % 2 ? 0 : 14));
	return NULL;
}

static void
test_rpc_stats_threads_sum_exactly(void **state)
{
	pthread_t t[THREADS];
	uint64_t before = cp_rpc_stats_total(g_stats);
	struct seen s = {0};
	char want[160];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(cp_rpc_stats_total(g_stats) - before, (uint64_t)THREADS * PER);
	cp_rpc_stats_for_each(collect, &s);
	snprintf(want, sizeof(want), "corepipe.v1.Admin GetStats unary 14 %d", THREADS * PER / 2);
	assert_true(has(&s, want));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rpc_stats_counts_by_method_and_code),
	    cmocka_unit_test(test_rpc_stats_threads_sum_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

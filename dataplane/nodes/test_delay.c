/*
 * test_delay: busy-waits `us` microseconds on the worker, then passes the payload through.
 *
 * For tests of deadlines, cancellation and overload, which need work that takes a known time.
 * A test-only row of the node table (dataplane/node_table.c): it exists only when the
 * environment variable COREPIPE_TEST_NODES is set when corepiped starts (the integration tests
 * set it); production servers never list or accept it.
 */
#include "dataplane/node.h"

#include <errno.h>
#include <rte_cycles.h>
#include <stdlib.h>

#define TEST_DELAY_MAX_US 1000000

struct test_delay_conf {
	uint64_t cycles;
};

static const struct dp_param_def test_delay_params[] = {
    {"us", "Microseconds to busy-wait (0..1000000).", true, NULL},
};

static int
test_delay_compile(void *conf, const struct dp_node_args *args, struct dp_err *err)
{
	struct test_delay_conf *c = conf;
	const char *s = dp_node_arg(args, "us");
	char *end;
	long us;

	errno = 0;
	us = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || us < 0 || us > TEST_DELAY_MAX_US)
		return dp_err_set(err, DP_INVALID_ARGUMENT,
				  "param us: expected 0..1000000, got '%.40s'", s),
		       -EINVAL;
	c->cycles = (uint64_t)us * (rte_get_tsc_hz() / 1000000);
	return 0;
}

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static int
test_delay_process(const void *conf, struct dp_exec *x)
{
	const struct test_delay_conf *c = conf;
	uint64_t end = rte_rdtsc() + c->cycles;

	(void)x;
	while (rte_rdtsc() < end)
		rte_pause();
	return DP_OK;
}

/*
 * Sliced (bulk lane): the wait is cut into pieces of at most 100 us, so the lane can stop it
 * between quanta; progress is reported as the share of the wait done times the input length.
 */
struct test_delay_slice {
	uint64_t waited; /* cycles waited so far */
};

static int
test_delay_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	const struct test_delay_conf *c = conf;
	struct test_delay_slice *s = sl;
	uint64_t piece = c->cycles - s->waited, t0 = rte_rdtsc(), max;

	(void)x;
	(void)budget;
	max = 100 * (rte_get_tsc_hz() / 1000000);
	if (piece > max)
		piece = max;
	while (rte_rdtsc() - t0 < piece)
		rte_pause();
	s->waited += piece;
	/* Progress in input bytes: the share of the wait done, over the input's length. */
	*pos = c->cycles ? (uint32_t)((double)x->buf->len * (double)s->waited / (double)c->cycles)
			 : x->buf->len;
	return s->waited >= c->cycles ? DP_OK : DP_PENDING;
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_test_delay = {
    .name = "test_delay",
    .summary = "Test only: busy-wait `us` microseconds, then pass the payload through.",
    .params = test_delay_params,
    .n_params = 1,
    .accepts = DP_ACCEPT_ANY,
    .conf_size = sizeof(struct test_delay_conf),
    .compile = test_delay_compile,
    .process = test_delay_process,
    .slice = test_delay_slice,
};

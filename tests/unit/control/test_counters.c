/*
 * counters: the worker and front-end descriptor tables cover their structs field by field (a
 * counter added without a row fails here), each /metrics family has its help once and is never
 * split, every GetStats name is a uint64 field of its message; cp_fe_stats_sum adds every
 * counter of every front end.
 */
#include "control/counters.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "tests/fakes/cmocka_inc.h"

#include <string.h>

/* dp_stat_table_check's rules, and every GetStats name a uint64 field of message @p msg. */
static void
check_table(const struct dp_stat_desc *t, unsigned n, size_t counted,
	    const ProtobufCMessageDescriptor *msg)
{
	unsigned bad;

	assert_int_equal(dp_stat_table_check(t, n, counted, &bad), 0);
	for (unsigned r = 0; r < n; r++) {
		const ProtobufCFieldDescriptor *f;

		if (t[r].key != NULL)
			for (unsigned k = 0; k < t[r].n; k++)
				assert_non_null(t[r].key_name(k));
		if (t[r].rpc == NULL)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(msg, t[r].rpc);
		assert_non_null(f);
		assert_int_equal(t[r].n, 1);
		assert_true(f->label != PROTOBUF_C_LABEL_REPEATED &&
			    f->type == PROTOBUF_C_TYPE_UINT64);
	}
}

static void
test_worker_table_covers_every_counter(void **state)
{
	(void)state;
	check_table(cp_worker_stats_desc, cp_worker_stats_n_desc,
		    offsetof(struct dp_worker_stats, r) + sizeof(struct dp_reactor_stats),
		    &corepipe__v1__worker_stats__descriptor);
}

static void
test_fe_table_covers_every_counter(void **state)
{
	(void)state;
	check_table(cp_fe_stats_desc, cp_fe_stats_n_desc, sizeof(struct cp_fe_stats),
		    &corepipe__v1__stats__descriptor);
}

/* A table that misses a field, names one twice, splits a family or lacks its help fails. */
static void
test_table_check_catches_bad_rows(void **state)
{
	struct dp_stat_desc t[64];
	unsigned bad;

	(void)state;
	assert_true(cp_fe_stats_n_desc <= 64);
	memcpy(t, cp_fe_stats_desc, cp_fe_stats_n_desc * sizeof(t[0]));
	/* Drop the last row. */
	assert_int_equal(
	    dp_stat_table_check(t, cp_fe_stats_n_desc - 1, sizeof(struct cp_fe_stats), &bad),
	    -EINVAL);
	/* A family split: the rejected row (first of its family) moved after another family. */
	memcpy(t, cp_fe_stats_desc, cp_fe_stats_n_desc * sizeof(t[0]));
	t[cp_fe_stats_n_desc - 1].metric = cp_fe_stats_desc[0].metric;
	assert_int_equal(
	    dp_stat_table_check(t, cp_fe_stats_n_desc, sizeof(struct cp_fe_stats), &bad), -EINVAL);
	assert_int_equal(bad, cp_fe_stats_n_desc - 1);
	/* A family without its help. */
	memcpy(t, cp_fe_stats_desc, cp_fe_stats_n_desc * sizeof(t[0]));
	t[0].help = NULL;
	assert_int_equal(
	    dp_stat_table_check(t, cp_fe_stats_n_desc, sizeof(struct cp_fe_stats), &bad), -EINVAL);
	assert_int_equal(bad, 0);
	memcpy(t, cp_fe_stats_desc, cp_fe_stats_n_desc * sizeof(t[0]));
	/* Row 2 names row 1's field again. */
	t[2] = t[1];
	assert_int_equal(
	    dp_stat_table_check(t, cp_fe_stats_n_desc, sizeof(struct cp_fe_stats), &bad), -EINVAL);
	assert_int_equal(bad, 2);
}

static void
test_fe_stats_sum_adds_every_counter(void **state)
{
	static struct cp_frontend fe[2];
	static struct cp_server srv;
	struct cp_fe_stats sum;
	uint64_t *a = (uint64_t *)&fe[0].st, *b = (uint64_t *)&fe[1].st, *s = (uint64_t *)&sum;
	const unsigned n = sizeof(struct cp_fe_stats) / sizeof(uint64_t);

	(void)state;
	memset(&srv, 0, sizeof(srv));
	for (unsigned i = 0; i < n; i++) {
		a[i] = i + 1;
		b[i] = 1000 * (i + 1);
	}
	srv.fe[0] = &fe[0];
	srv.fe[1] = &fe[1];
	srv.n_fe = 2;
	memset(&sum, 0xff, sizeof(sum)); /* zeroed by the sum */
	cp_fe_stats_sum(&srv, &sum);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(s[i], 1001 * (i + 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_worker_table_covers_every_counter),
	    cmocka_unit_test(test_fe_table_covers_every_counter),
	    cmocka_unit_test(test_table_check_catches_bad_rows),
	    cmocka_unit_test(test_fe_stats_sum_adds_every_counter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

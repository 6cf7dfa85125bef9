/*
 * Size-class pools: configuration checks, class choice, fallback, exhaustion, accounting, and
 * the availability estimate.
 */
#include "dataplane/pool.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

static int
group_setup(void **state)
{
	(void)state;
	return test_eal_up();
}

static int
group_teardown(void **state)
{
	(void)state;
	test_eal_down();
	return 0;
}

static void
test_pools_create_rejects_bad_conf(void **state)
{
	struct dp_pool_conf none = {.n_classes = 0};
	struct dp_pool_conf zero = {.n_classes = 1, .classes = {{0, 4}}};
	struct dp_pool_conf unsorted = {.n_classes = 2, .classes = {{4096, 4}, {256, 4}}};
	struct dp_pool_conf empty = {.n_classes = 1, .classes = {{256, 0}}};

	(void)state;
	errno = 0;
	assert_null(dp_pools_create("b1", &none, SOCKET_ID_ANY));
	assert_int_equal(errno, EINVAL);
	assert_null(dp_pools_create("b2", &zero, SOCKET_ID_ANY));
	assert_null(dp_pools_create("b3", &unsorted, SOCKET_ID_ANY));
	assert_null(dp_pools_create("b4", &empty, SOCKET_ID_ANY));
	dp_pools_destroy(NULL);
}

static void
test_pools_get_picks_smallest_fitting_class(void **state)
{
	struct dp_pools *p = test_pools_create("pk");
	struct dp_buf *a, *b, *c;

	(void)state;
	assert_non_null(p);
	a = dp_pools_get(p, 0);
	b = dp_pools_get(p, 256);
	c = dp_pools_get(p, 257);
	assert_int_equal(a->cap, 256);
	assert_int_equal(b->cap, 256);
	assert_int_equal(c->cap, 4096);
	assert_int_equal(c->len, 257);
	assert_int_equal((uintptr_t)c->data % RTE_CACHE_LINE_SIZE, 0);
	assert_int_equal(dp_pools_in_use(p, 0), 2);
	assert_int_equal(dp_pools_in_use(p, 1), 1);
	dp_buf_free(a);
	dp_buf_free(b);
	dp_buf_free(c);
	dp_buf_free(NULL);
	assert_int_equal(dp_pools_in_use(p, 0), 0);
	assert_int_equal(dp_pools_in_use(p, 1), 0);
	dp_pools_destroy(p);
}

static void
test_pools_get_falls_back_then_exhausts(void **state)
{
	struct dp_pool_conf c = {.n_classes = 2, .classes = {{256, 3}, {1024, 2}}};
	struct dp_pools *p = dp_pools_create("fb", &c, SOCKET_ID_ANY);
	struct dp_buf *b[5];

	(void)state;
	assert_non_null(p);
	for (int i = 0; i < 5; i++) {
		b[i] = dp_pools_get(p, 100);
		assert_non_null(b[i]);
		assert_int_equal(b[i]->cap, i < 3 ? 256 : 1024);
	}
	assert_null(dp_pools_get(p, 100));  /* everything taken: NULL, not a crash */
	assert_null(dp_pools_get(p, 1025)); /* larger than any class */
	assert_int_equal(dp_pools_max_size(p), 1024);
	for (int i = 0; i < 5; i++)
		dp_buf_free(b[i]);
	assert_int_equal(dp_pools_in_use(p, 0) + dp_pools_in_use(p, 1), 0);
	assert_non_null(b[0] = dp_pools_get(p, 1024));
	dp_buf_free(b[0]);
	dp_pools_destroy(p);
}

/* dp_pools_may_give counts as dp_pools_get takes: smallest fitting class, then larger ones. */
static void
test_pools_may_give_follows_get(void **state)
{
	struct dp_pool_conf c = {.n_classes = 2, .classes = {{256, 2}, {1024, 1}}};
	struct dp_pools *p = dp_pools_create("mg", &c, SOCKET_ID_ANY);
	const uint32_t three_small[] = {100, 100, 100}, two_big[] = {1000, 1000};
	const uint32_t big_small[] = {1000, 100}, too_big[] = {1025};
	struct dp_buf *b;

	(void)state;
	assert_non_null(p);
	assert_true(dp_pools_may_give(p, NULL, 0));
	assert_true(dp_pools_may_give(p, three_small, 3)); /* the third falls back to 1024 */
	assert_false(dp_pools_may_give(p, two_big, 2));	   /* one 1024 buffer only */
	assert_false(dp_pools_may_give(p, too_big, 1));
	b = dp_pools_get(p, 1000); /* the 1024 buffer taken */
	assert_non_null(b);
	assert_false(dp_pools_may_give(p, big_small, 2));
	assert_false(dp_pools_may_give(p, three_small, 3));
	assert_true(dp_pools_may_give(p, three_small, 2));
	dp_buf_free(b); /* given back: the same question now says yes */
	assert_true(dp_pools_may_give(p, big_small, 2));
	dp_pools_destroy(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pools_create_rejects_bad_conf),
	    cmocka_unit_test(test_pools_get_picks_smallest_fitting_class),
	    cmocka_unit_test(test_pools_get_falls_back_then_exhausts),
	    cmocka_unit_test(test_pools_may_give_follows_get),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

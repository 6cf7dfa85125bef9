/*
 * The node table (dataplane/node_table.c) is complete and consistent: every file in
 * dataplane/nodes/ has a row whose type carries the file's stem as its name, every row has a
 * file, names are unique and in order, each type's description holds together, and test-only
 * types stay hidden until enabled.
 *
 * The file list is DP_NODE_FILES in build/gen/dp_node_files.h, which the Makefile writes from
 * the .c files of dataplane/nodes/ on every build: a node file added without its row fails
 * here.
 */
#include "dataplane/node_table.h"
#include "dp_node_files.h"
#include "tests/fakes/cmocka_inc.h"

#include <string.h>

static const char *const g_files[] = {DP_NODE_FILES};
#define N_FILES (sizeof(g_files) / sizeof(g_files[0]))

static bool
is_file_stem(const char *name)
{
	for (unsigned i = 0; i < N_FILES; i++)
		if (strcmp(g_files[i], name) == 0)
			return true;
	return false;
}

/* Runs first (cmocka keeps the order): enabling cannot be undone. */
static void
test_node_table_test_only_types_hidden_until_enabled(void **state)
{
	unsigned n;

	(void)state;
	n = dp_node_table_count();
	assert_null(dp_node_table_find("test_delay"));
	for (unsigned i = 0; i < n; i++)
		assert_string_not_equal(dp_node_table_at(i)->name, "test_delay");
	assert_non_null(dp_node_table_find("passthrough"));

	dp_node_table_enable_test();
	assert_int_equal(dp_node_table_count(), n + 1);
	assert_non_null(dp_node_table_find("test_delay"));
	assert_string_equal(dp_node_table_find("test_delay")->name, "test_delay");
}

static void
test_node_table_every_node_file_has_its_type(void **state)
{
	(void)state;
	dp_node_table_enable_test();
	assert_true(N_FILES > 1);
	for (unsigned i = 0; i < N_FILES; i++) {
		const struct dp_node_type *t = dp_node_table_find(g_files[i]);

		if (t == NULL)
			fail_msg("dataplane/nodes/%s.c has no row in dataplane/node_table.c",
				 g_files[i]);
		assert_string_equal(t->name, g_files[i]);
	}
}

static void
test_node_table_every_type_has_its_file(void **state)
{
	(void)state;
	dp_node_table_enable_test();
	assert_int_equal(dp_node_table_count(), N_FILES);
	for (unsigned i = 0; i < dp_node_table_count(); i++)
		if (!is_file_stem(dp_node_table_at(i)->name))
			fail_msg("type '%s' is not defined in dataplane/nodes/%s.c",
				 dp_node_table_at(i)->name, dp_node_table_at(i)->name);
	assert_null(dp_node_table_at(dp_node_table_count()));
}

static void
test_node_table_names_unique_and_in_order(void **state)
{
	const char *prev = "";

	(void)state;
	dp_node_table_enable_test();
	for (unsigned i = 0; i < dp_node_table_count(); i++) {
		const char *name = dp_node_table_at(i)->name;

		assert_true(name[0] != '\0');
		assert_true(strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(name));
		if (strcmp(prev, name) >= 0)
			fail_msg("'%s' after '%s': rows must be in name order, names unique", name,
				 prev);
		prev = name;
	}
}

/* Fails naming the type and the broken rule. */
#define CHECK(t, cond)                                                                             \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail_msg("node type '%s': not %s", (t)->name, #cond);                      \
	} while (0)

static void
test_node_table_types_are_consistent(void **state)
{
	(void)state;
	dp_node_table_enable_test();
	for (unsigned i = 0; i < dp_node_table_count(); i++) {
		const struct dp_node_type *t = dp_node_table_at(i);

		CHECK(t, t->summary != NULL && t->summary[0] != '\0');
		CHECK(t, t->process != NULL);
		CHECK(t, t->accepts != 0);
		/* Parameters are parsed by compile() (which may also run without any). */
		CHECK(t, t->n_params == 0 || (t->params != NULL && t->compile != NULL));
		CHECK(t, t->conf_size == 0 || t->compile != NULL);
		for (unsigned p = 0; p < t->n_params; p++) {
			CHECK(t, t->params[p].name != NULL && t->params[p].summary != NULL);
			for (unsigned q = 0; q < p; q++)
				CHECK(t, strcmp(t->params[p].name, t->params[q].name) != 0);
		}
		/* State hooks only with state; stateful types are set up by init(). */
		if (t->state_size == 0)
			CHECK(t, t->init == NULL && t->flush == NULL && t->reset == NULL &&
				     t->fini == NULL);
		else
			CHECK(t, t->init != NULL);
		CHECK(t, t->slice_abort == NULL || t->slice != NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_node_table_test_only_types_hidden_until_enabled),
	    cmocka_unit_test(test_node_table_every_node_file_has_its_type),
	    cmocka_unit_test(test_node_table_every_type_has_its_file),
	    cmocka_unit_test(test_node_table_names_unique_and_in_order),
	    cmocka_unit_test(test_node_table_types_are_consistent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

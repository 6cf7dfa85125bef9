/*
 * version: what corepiped --version prints, line by line and in order (the version, the
 * revision, the DPDK and gRPC core it runs on, the default configuration path), and the
 * accessors it is made of: a dotted version, a revision that is never empty, and a default
 * configuration path under the configuration directory the build compiled in.
 */
#include "control/version.h"
#include "tests/fakes/cmocka_inc.h"

#include <grpc/grpc.h>
#include <rte_version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_accessors(void **state)
{
	const char *v = cp_version(), *p = cp_default_config_path();
	unsigned a, b, c;
	char tail;

	(void)state;
	/* MAJOR.MINOR.PATCH and nothing after it. */
	assert_int_equal(sscanf(v, "%u.%u.%u%c", &a, &b, &c, &tail), 3);
	assert_true(cp_revision()[0] != '\0');
	assert_true(p[0] == '/');
	assert_true(strlen(p) > strlen("/corepipe/corepipe.yaml"));
	assert_string_equal(p + strlen(p) - strlen("/corepipe/corepipe.yaml"),
			    "/corepipe/corepipe.yaml");
}

static void
test_print(void **state)
{
	/* Each line: its label and its value; in this order, and nothing more. */
	const char *labels[] = {"corepiped ",
				"revision: ", "dpdk: ", "grpc core: ", "default config: "};
	const char *values[] = {cp_version(), cp_revision(), rte_version(), grpc_version_string(),
				cp_default_config_path()};
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0, i = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	cp_version_print(f);
	assert_int_equal(fclose(f), 0);
	assert_true(len > 0 && buf[len - 1] == '\n');
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		assert_true(i < 5);
		assert_int_equal(strncmp(line, labels[i], strlen(labels[i])), 0);
		assert_string_equal(line + strlen(labels[i]), values[i]);
		i++;
	}
	assert_int_equal(i, 5);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accessors),
	    cmocka_unit_test(test_print),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

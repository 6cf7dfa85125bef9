/* Shared unit-test environment (see test_env.h). */
#include "tests/fakes/test_env.h"

#include <rte_eal.h>

int
test_eal_up(void)
{
	char *argv[] = {"unit",
			"--no-huge",
			"--no-pci",
			"--no-shconf",
			"--no-telemetry",
			"-m",
			"256",
			"--log-level=lib.*:error",
			"-l",
			"0",
			NULL};

	return rte_eal_init(10, argv) < 0 ? -1 : 0;
}

void
test_eal_down(void)
{
	rte_eal_cleanup();
}

struct dp_pools *
test_pools_create(const char *name)
{
	struct dp_pool_conf c = {
	    .n_classes = 4,
	    .classes = {{256, 64}, {4096, 16}, {65536, 4}, {1 << 20, 2}},
	};

	return dp_pools_create(name, &c, SOCKET_ID_ANY);
}

struct dp_pools *g_test_pools;

int
test_group_setup(void **state)
{
	(void)state;
	if (test_eal_up() != 0)
		return -1;
	g_test_pools = test_pools_create("tg");
	return g_test_pools ? 0 : -1;
}

int
test_group_teardown(void **state)
{
	int leaked = 0;

	(void)state;
	for (unsigned i = 0; i < g_test_pools->n_classes; i++)
		leaked += dp_pools_in_use(g_test_pools, i) != 0;
	dp_pools_destroy(g_test_pools);
	test_eal_down();
	return leaked ? -1 : 0; /* a failing teardown fails the group */
}

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

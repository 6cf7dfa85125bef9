/**
 * @file
 * Shared set-up for unit tests: EAL without hugepages, PCI or worker lcores, and small pools.
 *
 * Context: a test binary's main thread. Ownership: test_eal_up/down pair per binary.
 */
#ifndef COREPIPE_TEST_ENV_H
#define COREPIPE_TEST_ENV_H

#include "dataplane/pool.h"

/** rte_eal_init with --no-huge --no-pci --no-shconf -m 256 -l 0. @return 0 or -1. */
int test_eal_up(void);

/** rte_eal_cleanup. */
void test_eal_down(void);

/** Small pools for tests: 256 B x 64, 4 KiB x 16, 64 KiB x 4, 1 MiB x 2. */
struct dp_pools *test_pools_create(const char *name);

/** The pools made by test_group_setup(). */
extern struct dp_pools *g_test_pools;

/**
 * cmocka group setup/teardown: EAL up and test pools created; teardown checks that every
 * buffer came back, then frees the pools and shuts the EAL down.
 */
int test_group_setup(void **state);
int test_group_teardown(void **state);

#endif

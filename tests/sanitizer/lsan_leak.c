/*
 * A program that leaks on purpose, built with the asan variant's flags (make asan): its
 * LeakSanitizer report is the expected outcome (tests/sanitizer/lsan_expect_leak.sh). It proves
 * that the options `make asan` runs every test with (LSAN_OPTIONS, tests/lsan.supp) let a real
 * leak through as a report naming the allocating function, rather than a missing-file error
 * or silence.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Stores keep the allocation from being optimised away; cleared before the thread ends. */
static void *volatile g_sink;

/*
 * The frame the report must name. It runs on a thread of its own that is joined before exit:
 * LeakSanitizer scans only live threads' stacks and registers, so no stale copy of the pointer
 * (a spilled register, a dead frame) can make the block look reachable at any -O.
 */
static void *
lsan_leak_canary(void *arg)
{
	size_t n = *(const size_t *)arg;
	char *p = malloc(n);

	if (p != NULL)
		memset(p, 0xa5, n);
	g_sink = p;
	g_sink = NULL;
	return NULL;
}

int
main(void)
{
	size_t n = 4242;
	pthread_t t;

	if (pthread_create(&t, NULL, lsan_leak_canary, &n) != 0)
		return 2;
	pthread_join(t, NULL);
	return 0;
}

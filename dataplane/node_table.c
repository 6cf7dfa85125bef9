/*
 * The node table: the one place that names every built-in node type.
 *
 * One row per file in dataplane/nodes/: its stem, which is also the type's .name and the
 * `dp_node_<stem>` variable the file defines, and whether the type is test-only. Rows are in
 * name order, so dp_node_table_at() lists types sorted with no sorting at run time.
 * tests/unit/dataplane/test_node_table.c fails when a node file has no row (or a row no file),
 * when a type's name is not its file's stem, or when names repeat or are out of order; the
 * link fails when a row names a variable no file defines.
 */
#include "dataplane/node_table.h"

#include <stdbool.h>
#include <string.h>

/* X(stem, test_only) */
#define NODE_TABLE(X)                                                                              \
	X(channels, false)                                                                         \
	X(convert, false)                                                                          \
	X(crc32c, false)                                                                           \
	X(gain, false)                                                                             \
	X(meter, false)                                                                            \
	X(passthrough, false)                                                                      \
	X(resample, false)                                                                         \
	X(sha256, false)                                                                           \
	X(test_delay, true)                                                                        \
	X(vad, false)                                                                              \
	X(zstd_compress, false)                                                                    \
	X(zstd_decompress, false)

#define DECLARE(stem, test_only) extern const struct dp_node_type dp_node_##stem;
NODE_TABLE(DECLARE)
#undef DECLARE

static const struct row {
	const struct dp_node_type *type;
	bool test_only;
} g_rows[] = {
#define ROW(stem, test_only) {&dp_node_##stem, (test_only)},
    NODE_TABLE(ROW)
#undef ROW
};

#define N_ROWS (sizeof(g_rows) / sizeof(g_rows[0]))
_Static_assert(N_ROWS <= DP_NODE_TYPES_MAX, "raise DP_NODE_TYPES_MAX");

/* Written once by main before other threads start (node_table.h), read-only afterwards. */
static bool g_test_enabled;

static bool
visible(const struct row *r)
{
	return !r->test_only || g_test_enabled;
}

/* ==== API ==================================================================================== */

void
dp_node_table_enable_test(void)
{
	g_test_enabled = true;
}

const struct dp_node_type *
dp_node_table_find(const char *name)
{
	for (unsigned i = 0; i < N_ROWS; i++)
		if (visible(&g_rows[i]) && strcmp(g_rows[i].type->name, name) == 0)
			return g_rows[i].type;
	return NULL;
}

unsigned
dp_node_table_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < N_ROWS; i++)
		n += visible(&g_rows[i]);
	return n;
}

const struct dp_node_type *
dp_node_table_at(unsigned i)
{
	for (unsigned r = 0; r < N_ROWS; r++)
		if (visible(&g_rows[r]) && i-- == 0)
			return g_rows[r].type;
	return NULL;
}

/**
 * @file
 * The node table: every built-in node type, named in one place (dataplane/node_table.c), and
 * the lookups over it.
 *
 * Nothing registers itself at start: the table is constant data that refers to each node
 * type's `const struct dp_node_type dp_node_<name>` (dataplane/nodes/<name>.c), so a program
 * that looks a type up links the table and, through it, every node; a program that does not
 * (a test of one module) links none. How to add a node type: dataplane/node.h.
 *
 * Test-only node types (test_delay) are rows of the table too, but lookups skip them until
 * dp_node_table_enable_test() is called; corepiped calls it when COREPIPE_TEST_NODES is set
 * at start, so production servers never list or accept them.
 *
 * Context: any thread; the table is read-only, and the one flag is written before any thread
 * that reads it exists. Ownership: the types are static data, never freed.
 */
#ifndef COREPIPE_DP_NODE_TABLE_H
#define COREPIPE_DP_NODE_TABLE_H

#include "dataplane/node.h"

/** Most node types in the table (a compile-time check in node_table.c); callers may size
 * arrays by it. */
#define DP_NODE_TYPES_MAX 64

/**
 * Make the test-only node types findable and listed from now on (not undone).
 * Context: main thread, before other threads start and before any pipeline is compiled.
 */
void dp_node_table_enable_test(void);

/** The node type named @p name, or NULL (unknown, or test-only and not enabled). Context: any. */
const struct dp_node_type *dp_node_table_find(const char *name);

/** Number of node types a lookup sees (test-only ones only when enabled). Context: any. */
unsigned dp_node_table_count(void);

/** The @p i-th of those in name order (ListNodeTypes lists them so), or NULL when @p i is out
 * of range. Context: any. */
const struct dp_node_type *dp_node_table_at(unsigned i);

#endif

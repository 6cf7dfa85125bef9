/*
 * passthrough: output = input, for any payload. The identity pipeline is the baseline every
 * benchmark compares against: its cost is the framework's cost.
 */
#include "dataplane/node.h"

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static int
passthrough_process(const void *conf, struct dp_exec *x)
{
	(void)conf;
	(void)x;
	return DP_OK;
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_passthrough = {
    .name = "passthrough",
    .summary = "Output = input; any payload.",
    .accepts = DP_ACCEPT_ANY,
    .process = passthrough_process,
};

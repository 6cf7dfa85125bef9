/*
 * crc32c: annotate the payload with its CRC-32C (Castagnoli), as 8 lowercase hex digits;
 * the payload is unchanged. Uses DPDK's rte_hash_crc (SSE4.2 crc32 instructions when the CPU
 * has them, a table otherwise) with the standard initial value and final inversion, so
 * "123456789" gives e3069283.
 */
#include "dataplane/node.h"

#include <rte_hash_crc.h>

/* Hot path: per buffer, worker lcores. No locks, syscalls, allocation or logging. */

static int
crc32c_process(const void *conf, struct dp_exec *x)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t crc = rte_hash_crc(x->buf->data, x->buf->len, 0xffffffffu) ^ 0xffffffffu;
	char s[9];

	(void)conf;
	for (int i = 7; i >= 0; i--) {
		s[i] = hex[crc & 0xf];
		crc >>= 4;
	}
	s[8] = '\0';
	return dp_exec_annotate(x, "crc32c", s);
}

static const struct dp_node_type crc32c_node = {
    .name = "crc32c",
    .summary = "Annotate 'crc32c' with the CRC-32C of the payload bytes; output unchanged.",
    .accepts = DP_ACCEPT_ANY,
    .process = crc32c_process,
};

DP_NODE_REGISTER(crc32c_node)

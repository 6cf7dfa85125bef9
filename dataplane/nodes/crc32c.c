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
annotate_crc(struct dp_exec *x, uint32_t crc)
{
	static const char hex[] = "0123456789abcdef";
	char s[9];

	for (int i = 7; i >= 0; i--) {
		s[i] = hex[crc & 0xf];
		crc >>= 4;
	}
	s[8] = '\0';
	return dp_exec_annotate(x, "crc32c", s);
}

/*
 * rte_hash_crc() over @p n bytes from @p p, chained from @p crc. It reads 8 bytes at a time, so
 * the bytes before the first 8-byte boundary go one by one (a slice may start anywhere).
 */
static inline uint32_t
crc_chain(const uint8_t *p, uint32_t n, uint32_t crc)
{
	while (n != 0 && ((uintptr_t)p & 7u) != 0) {
		crc = rte_hash_crc_1byte(*p++, crc);
		n--;
	}
	return rte_hash_crc(p, n, crc);
}

static int
crc32c_process(const void *conf, struct dp_exec *x)
{
	(void)conf;
	return annotate_crc(x, crc_chain(x->buf->data, x->buf->len, 0xffffffffu) ^ 0xffffffffu);
}

/* Sliced (bulk lane): rte_hash_crc() chains (its result is the next call's initial value, the
 * final inversion is ours), so any split gives the same CRC. */
struct crc32c_slice {
	uint32_t crc;
};

static int
crc32c_slice(const void *conf, struct dp_exec *x, void *sl, uint32_t *pos, uint32_t budget)
{
	struct crc32c_slice *c = sl;
	uint32_t n = x->buf->len - *pos;

	(void)conf;
	if (*pos == 0)
		c->crc = 0xffffffffu;
	if (n > budget)
		n = budget;
	c->crc = crc_chain(x->buf->data + *pos, n, c->crc);
	*pos += n;
	if (*pos < x->buf->len)
		return DP_PENDING;
	return annotate_crc(x, c->crc ^ 0xffffffffu);
}

/* Named by the node table (dataplane/node_table.c). */
const struct dp_node_type dp_node_crc32c = {
    .name = "crc32c",
    .summary = "Annotate 'crc32c' with the CRC-32C of the payload bytes; output unchanged.",
    .accepts = DP_ACCEPT_ANY,
    .process = crc32c_process,
    .slice = crc32c_slice,
};

/*
 * libFuzzer target: the zstd_decompress node on untrusted bytes, run through the real runner
 * with real pools (EAL without hugepages), with max_bytes = 256 KiB. Whatever the input, the
 * node must answer OK or a clean error, never read or write out of bounds, never return more
 * than max_bytes, and never leak a pool buffer. When it succeeds, zstd_compress of the output
 * must decompress back to it (round trip through both nodes).
 *
 * Build and run: make fuzz (FUZZ_SECONDS per target).
 */
#include "dataplane/pipeline.h"

#include <rte_eal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES (256u << 10)

static struct dp_pools *pools;
static struct dp_pipeline *dec, *rt;

static struct dp_pipeline *
compile(unsigned n, struct dp_node_spec *ns)
{
	struct dp_spec s = {.name = "f", .n_nodes = n, .nodes = ns};
	struct dp_err err;

	return dp_pipeline_compile(&s, 8, &err);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *eal[] = {"fuzz", "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
		       "-m",   "256",	    "-l",	"0",	       "--log-level",
		       "1"};
	struct dp_pool_conf pc = {.n_classes = 3,
				  .classes = {{4096, 16}, {65536, 8}, {1u << 20, 4}}};
	struct dp_param mb = {.key = "max_bytes", .value = "262144"};
	struct dp_node_spec d = {.type = "zstd_decompress", .n_params = 1, .params = &mb};
	struct dp_node_spec both[2] = {{.type = "zstd_compress"}, d};

	(void)argc;
	(void)argv;
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0)
		abort();
	pools = dp_pools_create("fz", &pc, SOCKET_ID_ANY);
	dec = compile(1, &d);
	rt = compile(2, both);
	if (pools == NULL || dec == NULL || rt == NULL)
		abort();
	return 0;
}

static int
run(const struct dp_pipeline *p, const void *in, size_t n, struct dp_buf **out)
{
	struct dp_result res;
	struct dp_exec x = {.pools = pools, .res = &res, .fmt = {.kind = DP_KIND_BYTES}};
	int st;

	memset(&res, 0, sizeof(res));
	x.buf = dp_pools_get(pools, (uint32_t)n);
	if (x.buf == NULL)
		abort();
	memcpy(x.buf->data, in, n);
	st = dp_pipeline_run(p, &x, NULL, DP_RUN_FRAME);
	if (st != DP_OK && res.err.msg[0] == '\0')
		abort(); /* every failure says why */
	*out = x.buf;
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_buf *out, *back;

	if (size > 65536)
		return 0;
	if (run(dec, data, size, &out) == DP_OK) {
		if (out->len > MAX_BYTES)
			abort();
		if (run(rt, out->data, out->len, &back) != DP_OK || back->len != out->len ||
		    memcmp(back->data, out->data, out->len) != 0)
			abort();
		dp_buf_free(back);
	}
	dp_buf_free(out);
	for (unsigned i = 0; i < pools->n_classes; i++)
		if (dp_pools_in_use(pools, i) != 0)
			abort(); /* a leaked buffer */
	return 0;
}

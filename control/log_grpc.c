/*
 * gRPC core's log routed into cp_log (control/log_grpc.h), rate-limited per call site.
 */
#include "control/log_grpc.h"

#include "control/log.h"

#include <grpc/support/log.h>
#include <rte_hash_crc.h>
#include <string.h>
#include <time.h>

static struct cp_log_limit g_grpc_limit;

static void
grpc_log(gpr_log_func_args *a)
{
	enum cp_log_level lvl = a->severity == GPR_LOG_SEVERITY_ERROR  ? CP_LOG_ERROR
				: a->severity == GPR_LOG_SEVERITY_INFO ? CP_LOG_INFO
								       : CP_LOG_DEBUG;
	enum cp_log_level level = cp_log_get_level();
	uint64_t suppressed = 0;

	if (lvl < level)
		return;
	if (level != CP_LOG_DEBUG) {
		/* The kind: the call site, file name and line hashed with DPDK's CRC-32C. */
		const char *file = a->file ? a->file : "";
		uint64_t aligned[32]; /* rte_hash_crc reads 8 bytes at a time: an aligned copy */
		size_t n = strnlen(file, sizeof(aligned));
		uint64_t key;
		struct timespec ts;

		memcpy(aligned, file, n);
		key = rte_hash_crc_4byte((uint32_t)a->line, rte_hash_crc(aligned, (uint32_t)n, 0)) |
		      (uint64_t)(uint32_t)a->line << 32;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (!cp_log_limit_pass(&g_grpc_limit, key ? key : 1,
				       (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec,
				       1000000000ull, &suppressed))
			return;
	}
	cp_log(lvl, a->message, CP_LF_STR("component", "grpc"), CP_LF_STR("file", a->file),
	       CP_LF_INT("line", a->line), CP_LF_U64("suppressed_since_last", suppressed));
}

void
cp_log_grpc_hook(void)
{
	gpr_set_log_function(grpc_log);
	gpr_set_log_verbosity(cp_log_get_level() == CP_LOG_DEBUG ? GPR_LOG_SEVERITY_DEBUG
								 : GPR_LOG_SEVERITY_ERROR);
}

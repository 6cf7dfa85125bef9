/**
 * @file
 * Structured logging: one JSON object per line on stderr.
 *
 * Each line has "ts" (RFC 3339, UTC, microseconds), "level", "msg", then typed fields:
 *
 *     cp_log(CP_LOG_INFO, "pipeline added", CP_LF_STR("pipeline", name), CP_LF_U64("id", id));
 *
 * A line is formatted in a stack buffer and written with one write(2), so lines from different
 * threads never interleave and no lock is taken. Workers never log: the dataplane returns
 * errors and counts; the control plane logs.
 *
 * Context: any control thread. Ownership: nothing is retained after a call returns.
 */
#ifndef COREPIPE_CP_LOG_H
#define COREPIPE_CP_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum cp_log_level {
	CP_LOG_DEBUG = 0,
	CP_LOG_INFO = 1,
	CP_LOG_WARN = 2,
	CP_LOG_ERROR = 3,
};

enum cp_log_type {
	CP_LT_END = 0,
	CP_LT_STR,
	CP_LT_INT,
	CP_LT_U64,
	CP_LT_DBL,
	CP_LT_BOOL,
};

/** One typed field. Arrays of fields end with a zeroed entry (key NULL). */
struct cp_log_field {
	const char *key;
	enum cp_log_type type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
		double d;
		bool b;
	};
};

#define CP_LF_STR(k, v)	 ((struct cp_log_field){.key = (k), .type = CP_LT_STR, .s = (v)})
#define CP_LF_INT(k, v)	 ((struct cp_log_field){.key = (k), .type = CP_LT_INT, .i = (int64_t)(v)})
#define CP_LF_U64(k, v)	 ((struct cp_log_field){.key = (k), .type = CP_LT_U64, .u = (uint64_t)(v)})
#define CP_LF_DBL(k, v)	 ((struct cp_log_field){.key = (k), .type = CP_LT_DBL, .d = (double)(v)})
#define CP_LF_BOOL(k, v) ((struct cp_log_field){.key = (k), .type = CP_LT_BOOL, .b = (bool)(v)})

/** Log @p msg with fields, if @p level is enabled. */
#define cp_log(level, msg, ...)                                                                    \
	cp_log_fields((level), (msg),                                                              \
		      (const struct cp_log_field[]){__VA_ARGS__ __VA_OPT__(, ){.key = NULL}})

/**
 * Format and write one line. @p fields ends with a NULL key.
 * Context: any thread. Never blocks on a lock; one write(2).
 */
void cp_log_fields(enum cp_log_level level, const char *msg, const struct cp_log_field *fields);

/** Set/get the minimum level written (default info). Context: any (relaxed atomic). */
void cp_log_set_level(enum cp_log_level level);
enum cp_log_level cp_log_get_level(void);

/** Parse "debug|info|warn|error" (also "warning"). @return 0 or -EINVAL. */
int cp_log_level_parse(const char *s, enum cp_log_level *out);

/** Name of a level ("info"). */
const char *cp_log_level_name(enum cp_log_level level);

/**
 * Format one line into @p buf (for tests and for the writers here).
 * @return the line length including the trailing newline (truncated to @p len - 1).
 */
size_t cp_log_format(char *buf, size_t len, enum cp_log_level level, const char *msg,
		     const struct cp_log_field *fields);

/**
 * A stdio stream whose text lines become JSON lines with field "component" = @p component
 * (level info, or the level DPDK's "LEVEL:" prefixes imply). For rte_openlog_stream().
 * @return the stream, or NULL with errno. Ownership: lives for the process.
 */
FILE *cp_log_stream(const char *component);

/** Route gRPC core's log (gpr_log) into JSON lines, component "grpc". */
void cp_log_grpc_hook(void);

#endif

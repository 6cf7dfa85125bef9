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

/**
 * Log a message and optional fields, if @p level is enabled:
 * cp_log(level, msg [, CP_LF_*(...)]...). The terminator is appended as the last variadic
 * argument, so a call with no fields is ISO C (no GNU comma swallowing, no __VA_OPT__).
 */
#define cp_log(level, ...) CP_LOG_FIELDS_((level), __VA_ARGS__, {.key = NULL})
#define CP_LOG_FIELDS_(level, msg, ...)                                                            \
	cp_log_fields((level), (msg), (const struct cp_log_field[]){__VA_ARGS__})

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

/** Kinds a rate limiter tells apart; later kinds share one slot. */
#define CP_LOG_LIMIT_KINDS 64

/** A lock-free limiter: at most one pass per kind per interval. Zero-initialise it. */
struct cp_log_limit {
	struct {
		_Atomic uint64_t key; /**< 0: free */
		_Atomic uint64_t last_ns;
		_Atomic uint64_t suppressed;
	} slot[CP_LOG_LIMIT_KINDS + 1];
};

/**
 * May a line of kind @p key (non-zero, e.g. a hash of file:line) be written at @p now_ns,
 * given at most one per @p interval_ns per kind? @return true (write it; *suppressed = lines
 * of that kind refused since the last one written), or false (counted as suppressed).
 * Context: any thread, concurrently (atomics only).
 */
bool cp_log_limit_pass(struct cp_log_limit *l, uint64_t key, uint64_t now_ns, uint64_t interval_ns,
		       uint64_t *suppressed);

#endif

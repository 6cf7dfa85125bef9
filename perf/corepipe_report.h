/**
 * @file
 * corepipe-bench's report, ghz-style, in four formats: text (the summary), json (one object),
 * csv (long form: section,key,value rows) and html (one self-contained page: tables, and a
 * latency histogram and CDF drawn as SVG by inline JavaScript from the embedded data; nothing
 * is fetched). Every format carries the status distribution and the error distribution (by code
 * and message), and says plainly when nothing succeeded or nothing was measured.
 *
 * Context: the main thread after the run. Ownership: the result borrows everything.
 */
#ifndef COREPIPE_PERF_COREPIPE_REPORT_H
#define COREPIPE_PERF_COREPIPE_REPORT_H

#include "perf/common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BR_N_CODES    17
#define BR_MAX_ERRORS 32
#define BR_MSG_MAX    200

/** Distinct (code, message) pairs with counts; the ones past BR_MAX_ERRORS are counted apart. */
struct br_errors {
	struct {
		int code;
		char msg[BR_MSG_MAX];
		uint64_t count;
	} e[BR_MAX_ERRORS];
	unsigned n;
	uint64_t other; /**< errors whose pair did not fit */
};

enum br_format { BR_TEXT, BR_JSON, BR_CSV, BR_HTML };

/** What a run measured. */
struct br_result {
	const char *command;
	bool stream, udp, open_loop, check_output;
	unsigned concurrency, connections, threads, ready, udp_batch, pipeline_id;
	double connect_s, elapsed_s, warmup_s, cpu_s;
	long ncpu;
	const struct hist *h;	    /**< latency of measured calls (stream: messages), ns */
	uint64_t codes[BR_N_CODES]; /**< calls (stream: streams) by final status */
	uint64_t ok_checked, bad_output, bad_seq, streams_done, backlog;
	uint64_t unanswered; /**< stream frames sent whose stream failed before answering them */
	uint64_t udp_sent, udp_received, udp_stale, udp_bad, udp_timeouts;
	const struct br_errors *errors;
};

/** Count one error (@p msg need not be NUL-terminated). */
void br_errors_add(struct br_errors *t, int code, const char *msg, size_t len, uint64_t n);

/** Add @p from's counts into @p into. */
void br_errors_merge(struct br_errors *into, const struct br_errors *from);

/** "NOT_FOUND", ... */
const char *br_code_name(int code);

/** Parse "text", "json", "csv", "html". @return 0 or -1. */
int br_format_parse(const char *s, enum br_format *f);

/** Write the report. @return 0, or -1 when writing failed. */
int br_write(FILE *out, enum br_format f, const struct br_result *r);

#endif

/**
 * @file
 * The access log: one JSON line per answered gRPC call, off by default.
 *
 * A call's front end fills a small per-call record (struct cp_alog_call, embedded in the call):
 * cp_alog_begin() when the call arrives (request id from `x-request-id` metadata, or one
 * generated here; request size; whether this call is sampled), cp_alog_pipeline() and
 * cp_alog_work() as the call learns its pipeline and dataplane times, and cp_alog_end() with the
 * final status, which copies the record into a fixed-size multi-producer ring (rte_ring with
 * 256-byte elements). A logger thread takes records off the ring, formats them and writes them
 * to stderr. A full ring drops the record and counts it (corepipe_access_log_dropped_total):
 * the threads that answer calls never wait for the log, whatever happens to stderr.
 *
 * Modes: off (default), all, errors (status != OK), sampled (one call in N, counted at arrival
 * on the thread that accepts calls, so exactly every Nth call is logged). The request id is
 * returned in trailing metadata (`x-request-id`) whenever the client sent one, and, with the
 * log on, for every call (generated: 16 hex digits, unique within the process run).
 *
 * Context: cp_alog_start/stop on the main thread; cp_alog_begin on the thread that accepts
 * calls (one at a time per call); cp_alog_pipeline/work/end from whichever thread owns the call
 * at that moment (the call's ownership hand-over orders them); cp_alog_configure from the CQ
 * thread (reload). Every hook is a no-op before cp_alog_start() and after cp_alog_stop().
 * Ownership: the record lives in the call; the ring and thread belong to this module.
 */
#ifndef COREPIPE_CP_ACCESS_LOG_H
#define COREPIPE_CP_ACCESS_LOG_H

#include <errno.h>
#include <grpc/grpc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum cp_alog_mode {
	CP_ALOG_OFF = 0,
	CP_ALOG_ALL,
	CP_ALOG_ERRORS,
	CP_ALOG_SAMPLED,
	CP_ALOG_MODE_N,
};

/** Longest request id kept (longer client ids are cut). */
#define CP_ALOG_RID_MAX 64
/** Longest pipeline name kept (DP_NAME_MAX). */
#define CP_ALOG_NAME_MAX 64

/** Per-call record; zeroed with the call. */
struct cp_alog_call {
	char rid[CP_ALOG_RID_MAX];
	char pipeline[CP_ALOG_NAME_MAX];
	uint8_t rid_len;
	bool log;	 /**< this call may be logged (mode and sampling) */
	bool rid_return; /**< return rid in trailing metadata */
	uint64_t req_bytes;
	uint64_t queue_ns, worker_ns; /**< dataplane queueing and node time (unary Execute) */
	grpc_metadata trailer;	      /**< x-request-id (value owned while trailer_set) */
	bool trailer_set;
};

/**
 * Name of a mode ("off"), spelled here only. Inline, so the config parses and prints
 * access_log.mode without linking the access log (which links the gRPC C core).
 */
static inline const char *
cp_alog_mode_name(enum cp_alog_mode m)
{
	static const char *const names[CP_ALOG_MODE_N] = {
	    [CP_ALOG_OFF] = "off",
	    [CP_ALOG_ALL] = "all",
	    [CP_ALOG_ERRORS] = "errors",
	    [CP_ALOG_SAMPLED] = "sampled",
	};

	return (unsigned)m < CP_ALOG_MODE_N ? names[m] : names[CP_ALOG_OFF];
}

/** Parse a cp_alog_mode_name() ("off|all|errors|sampled"). @return 0 or -EINVAL. */
static inline int
cp_alog_mode_parse(const char *s, enum cp_alog_mode *out)
{
	for (unsigned m = 0; m < CP_ALOG_MODE_N; m++)
		if (strcmp(s, cp_alog_mode_name((enum cp_alog_mode)m)) == 0) {
			*out = (enum cp_alog_mode)m;
			return 0;
		}
	return -EINVAL;
}

/**
 * Create the ring (@p ring_size records, a power of two) and start the logger thread, in
 * @p mode, logging one call in @p sample_n when sampled. Needs the EAL.
 * @return 0, -EINVAL (ring size), -ENOMEM, or -errno from pthread_create.
 */
int cp_alog_start(enum cp_alog_mode mode, uint32_t sample_n, uint32_t ring_size);

/** Change mode and sampling live (reload). Context: any (relaxed atomics). */
void cp_alog_configure(enum cp_alog_mode mode, uint32_t sample_n);

/** Write what is still in the ring, stop the thread, free the ring. Accepts never-started. */
void cp_alog_stop(void);

/**
 * A call arrived: take `x-request-id` from @p md (or generate one when the log is on), note
 * the request size from @p payload (NULL for streaming calls) and decide whether it is logged.
 */
void cp_alog_begin(struct cp_alog_call *a, const grpc_metadata_array *md,
		   grpc_byte_buffer *payload);

/** The call's pipeline: a registered name, or NULL for an inline one ("_inline"). */
void cp_alog_pipeline(struct cp_alog_call *a, const char *name);

/** Dataplane times of a unary call: waiting in rings, and running nodes. */
void cp_alog_work(struct cp_alog_call *a, uint64_t queue_ns, uint64_t worker_ns);

/**
 * The call is answered with @p status: queue the line (when logged) and return the number of
 * trailing metadata entries to add (0 or 1), written to @p trailer.
 * @p method is the call's path (NULL: an unregistered method), @p resp the response message
 * (NULL: none), @p start_ns its arrival (cp_now_ns clock).
 */
unsigned cp_alog_end(struct cp_alog_call *a, const char *method, grpc_status_code status,
		     grpc_byte_buffer *resp, uint64_t start_ns, grpc_metadata *trailer);

/** Release what the record holds (the trailer's slice). Context: where the call is freed. */
void cp_alog_free(struct cp_alog_call *a);

/** Counters for /metrics: lines written, records dropped (ring full). Context: any. */
void cp_alog_counts(uint64_t *written, uint64_t *dropped);

#endif

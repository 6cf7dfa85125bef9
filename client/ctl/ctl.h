/**
 * @file
 * corepipectl: the command-line client of corepiped (docs/cli.md, corepipectl(1)), on the gRPC
 * C core and protobuf-c like the server. This header is what the command files share: the
 * options, the exit codes, the connection (one channel, one completion queue) and output.
 *
 * Context: single-threaded program. Ownership: as noted per function.
 */
#ifndef COREPIPE_CTL_H
#define COREPIPE_CTL_H

#include "corepipe/v1/corepipe.pb-c.h"

#include <grpc/grpc.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ==== Exit codes (docs/cli.md; grpcurl's convention for server statuses) ==================== */

#define CTL_EXIT_OK	     0 /**< done */
#define CTL_EXIT_FAILURE     1 /**< a check failed: health NOT_SERVING, a frame error in a stream */
#define CTL_EXIT_USAGE	     2 /**< bad command line */
#define CTL_EXIT_INPUT	     3 /**< a local file could not be read or is invalid */
#define CTL_EXIT_OUTPUT	     4 /**< an output file could not be written */
#define CTL_EXIT_CONNECT     5 /**< no connection to the server (refused, TLS, timeout) */
#define CTL_EXIT_STATUS_BASE 64 /**< the server answered status N: exit 64 + N */

#define CTL_MAX_MD 16

/** Command-line options (every command reads the ones it needs). */
struct ctl_opts {
	const char *target;	 /**< HOST:PORT (default 127.0.0.1:50051, $COREPIPE_TARGET) */
	const char *token;	 /**< bearer token ($COREPIPE_TOKEN) */
	const char *cacert;	 /**< TLS: trust this CA; turns TLS on */
	const char *cert, *key;	 /**< TLS: client certificate (mTLS) */
	const char *server_name; /**< TLS: name to verify */
	bool insecure;		 /**< plaintext even with TLS files given */
	unsigned n_md;
	const char *md_key[CTL_MAX_MD], *md_val[CTL_MAX_MD];
	unsigned timeout_ms;	     /**< per call (default 10000; streams: none unless given) */
	bool timeout_set;	     /**< --timeout given */
	unsigned connect_timeout_ms; /**< wait for the connection (default 5000) */
	bool json;		     /**< machine-readable output */
	/* exec / stream */
	const char *inline_file; /**< --inline FILE */
	bool realtime;		 /**< stream: pace frames at the audio's own rate */
	double frame_ms;	 /**< stream: frame length (default 20) */
	/* top */
	const char *metrics;  /**< HOST:PORT or URL of /metrics (default: target host, 9090) */
	double interval_s;    /**< refresh period (default 1) */
	unsigned count;	      /**< refreshes before exiting (0: until q or a signal) */
	const char *service;  /**< health: the service name */
	const char *progname; /**< for messages */
};

/** What a call ended with. */
struct ctl_status {
	grpc_status_code code;
	char msg[512];
	uint32_t pushback_ms; /**< grpc-retry-pushback-ms trailer, 0 if none */
};

/** The connection: one channel and one completion queue (next). */
struct ctl_conn {
	const struct ctl_opts *o;
	grpc_channel *ch;
	grpc_completion_queue *cq;
	grpc_metadata md[CTL_MAX_MD + 1];
	size_t n_md;
};

/**
 * Open the channel and wait until it is connected (o->connect_timeout_ms).
 * @return 0, or CTL_EXIT_CONNECT / CTL_EXIT_INPUT (TLS files) after printing why.
 */
int ctl_connect(struct ctl_conn *c, const struct ctl_opts *o);

/** Close the channel and drain the queue. */
void ctl_disconnect(struct ctl_conn *c);

/**
 * One unary call.
 * @param method    "/corepipe.v1.Admin/GetStats"
 * @param req       the request
 * @param resp_desc the response type
 * @param resp      set to the unpacked response when the status is OK (free with
 *                  protobuf_c_message_free_unpacked), else NULL
 * @param st        the call's status
 * @return 0 when the call ended (whatever its status), -1 when it could not be started.
 */
int ctl_unary(struct ctl_conn *c, const char *method, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
	      struct ctl_status *st);

/** Deadline of a call from the options (infinite when @p stream and none was given). */
gpr_timespec ctl_deadline(const struct ctl_opts *o, bool stream);

/** Print "PROG: METHOD failed: CODE: message" (or the JSON error object) and return the exit
 * code 64 + code. */
int ctl_status_fail(const struct ctl_opts *o, const char *what, const struct ctl_status *st);

/** Name of a gRPC status code ("NOT_FOUND"). */
const char *ctl_code_name(int code);

/** Print an error line "PROG: message" to stderr (and nothing to stdout). */
void ctl_errf(const struct ctl_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** ctl_errf(), then the value @p rc: `return ctl_err(o, CTL_EXIT_USAGE, "...", ...)`. A macro
 * so that callers (and make analyze, which does not follow variadic calls) see the exit code
 * it gives: a caller's `rc != 0` test after a failure is then known to hold. */
#define ctl_err(o, rc, ...) (ctl_errf((o), __VA_ARGS__), (rc))

/** Print @p j to stdout (compact, one line) and free it. */
void ctl_json_print(json_t *j);

/* ==== Commands (argv: the words after the command's name) =================================== */

int ctl_cmd_pipelines(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_nodes(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_stats(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_health(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_reload(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_exec(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_stream(const struct ctl_opts *o, int argc, char **argv);
int ctl_cmd_top(const struct ctl_opts *o, int argc, char **argv);

/* ==== Files ================================================================================= */

/**
 * Read a whole file ("-" = stdin) into a malloc'd, NUL-terminated buffer.
 * @return 0 or -errno.
 */
int ctl_read_file(const char *path, uint8_t **buf, size_t *len);

#endif

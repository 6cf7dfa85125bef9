/**
 * @file
 * The gRPC server on the gRPC C core: one completion-queue thread (the main lcore) that
 * accepts calls, decodes them and either answers at once (admin, health, errors) or submits
 * work to the dataplane; answers for dataplane work are sent by the responder thread
 * (responder.h), since grpc_call_start_batch() is thread-safe.
 *
 * Call life: a struct cp_call is allocated when a request_call is armed, handed to a method
 * handler when the call arrives, and freed on the completion queue thread when the final batch
 * (status + RECV_CLOSE_ON_SERVER) completes. Every call gets exactly one cp_call_reply*().
 *
 * Context: cp_server_* on the main thread unless noted. Ownership: the server owns its calls;
 * a handler that submits work passes the call to the dataplane (req->cookie) and the responder
 * replies; after cp_call_reply*() returns, nobody but the CQ thread touches the call.
 */
#ifndef COREPIPE_CP_GRPC_SERVER_H
#define COREPIPE_CP_GRPC_SERVER_H

#include "control/auth.h"
#include "control/listener.h"
#include "control/port_watch.h"
#include "control/reload.h"
#include "control/shed.h"
#include "dataplane/dataplane.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cp_server;
struct cp_call;

/* Counters with one writer thread that other threads read (GetStats, the metrics scrape): a
 * relaxed load and store by the writer, relaxed loads by readers; no read-modify-write. */
#define CP_STAT_ADD(x, v) __atomic_store_n(&(x), (x) + (v), __ATOMIC_RELAXED)
#define CP_STAT_INC(x)	  CP_STAT_ADD(x, 1)
#define CP_STAT_LOAD(x)	  __atomic_load_n(&(x), __ATOMIC_RELAXED)

/** Handles one call; must reply exactly once, now or later (from any thread). */
typedef void (*cp_handler_fn)(struct cp_server *srv, struct cp_call *call);

enum cp_tag_kind {
	CP_TAG_NEW_CALL = 1,
	CP_TAG_DONE = 2,
	CP_TAG_SHUTDOWN = 3,
	CP_TAG_CLOSE = 4,	/**< RECV_CLOSE_ON_SERVER: the call ended (or was cancelled) */
	CP_TAG_STREAM_RECV = 5, /**< ExecuteStream: a RECV_MESSAGE completed (owner: cp_stream) */
	CP_TAG_STREAM_SEND = 6, /**< ExecuteStream: a SEND_MESSAGE completed (owner: cp_stream) */
	CP_TAG_CALLBACK = 7,	/**< a handler's own batch completed: fn(owner, success) */
};

/** A completion queue tag: the address of one of these inside its owner. */
struct cp_tag {
	enum cp_tag_kind kind;
	void *owner;
	void (*fn)(void *owner, int ok); /**< CP_TAG_CALLBACK only; called on the CQ thread */
};

/** A registered method. */
struct cp_method {
	const char *path; /**< "/corepipe.v1.Pipeline/Execute" */
	cp_handler_fn handler;
	unsigned prealloc; /**< request_call slots kept armed */
	bool streaming;	   /**< client-streaming: the handler reads messages itself */
	void *handle;	   /**< from grpc_server_register_method */
};

struct cp_stream;

struct cp_call {
	struct cp_tag new_tag;
	struct cp_tag done_tag;
	struct cp_tag close_tag;
	int refs; /**< outstanding batches (close + final reply); CQ thread only */
	struct cp_call *live_prev, *live_next; /**< the server's live-call list; CQ thread */
	struct cp_server *srv;
	const struct cp_method *method; /**< NULL: unregistered method (generic slot) */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_call_details details; /**< generic slot only */
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	/* Reply state, kept alive until the final batch completes. */
	grpc_byte_buffer *send;
	grpc_slice status_details;
	int status_details_set;
	int cancelled; /**< from RECV_CLOSE_ON_SERVER */
	/* Set (release) by the CQ thread when the client cancelled or the deadline passed;
	 * read by workers (dp_req.cancelled) to skip queued work. */
	atomic_bool cancelled_flag;
	grpc_metadata trailer; /**< grpc-retry-pushback-ms, when set */
	int trailer_set;
	uint64_t start_ns;
	/* Set (release) once initial metadata went out with a streamed message, so the final
	 * batch does not send it again; read by whichever thread sends the final batch. */
	atomic_bool initial_md_sent;
	struct cp_stream *stream; /**< ExecuteStream state; the CQ thread unlinks it at free */
};

/** Server settings. */
struct cp_server_conf {
	const char *listen;		 /**< "127.0.0.1:50051"; port 0 picks a free port */
	uint32_t max_message_bytes;	 /**< max receive message size */
	unsigned max_nodes;		 /**< inline pipeline node limit */
	uint32_t default_timeout_ms;	 /**< deadline for calls that set none */
	uint32_t max_timeout_ms;	 /**< cap on any call's deadline */
	uint32_t max_concurrent_streams; /**< per connection (HTTP/2 SETTINGS) */
	uint32_t shutdown_grace_ms; /**< calls still open this long after SIGTERM are cancelled */
	struct cp_shed_conf shed;   /**< load-shedding thresholds */
	uint32_t max_connections;   /**< TCP connections at once (listener.h) */
	uint32_t max_connection_idle_ms; /**< close connections idle this long (0: never) */
	uint32_t max_connection_age_ms;	 /**< recycle connections this old (0: never) */
	uint32_t
	    stream_window; /**< frames in flight + responses queued per stream (flow control) */
	const struct cp_auth *auth; /**< bearer tokens (NULL or !enabled: no authentication) */
	uint32_t inflight_cap;	    /**< limits.max_in_flight: live cap on unary work (0: none) */
	const struct cp_tls_conf *tls; /**< NULL or no cert_file: plaintext only */
};

/** Why a request was refused before it reached a worker (GetStats "rejected"). */
enum cp_reject {
	CP_REJECT_INFLIGHT_LIMIT = 0, /**< descriptor pool empty: max_in_flight reached */
	CP_REJECT_POOL_EMPTY,	      /**< no payload buffer of that size free */
	CP_REJECT_TOO_LARGE,	      /**< payload larger than the largest buffer class */
	CP_REJECT_RING_FULL,	      /**< every worker's queue full */
	CP_REJECT_SHEDDING,	      /**< every worker shedding load */
	CP_REJECT_STREAMS,	      /**< every worker's stream slots in use */
	CP_REJECT_NOT_FOUND,	      /**< unknown pipeline name (looked up before submit) */
	CP_REJECT_MAX,
};

struct cp_server {
	struct cp_server_conf conf;
	char listen[128];
	int port; /**< bound port */
	grpc_server *server;
	grpc_completion_queue *cq;
	struct dp_dataplane *dp;
	struct cp_tag shutdown_tag;
	atomic_bool serving; /**< health: SERVING vs NOT_SERVING */
	atomic_bool shutdown_requested;
	bool started;
	bool shutdown_done;
	long live_calls;		  /**< CQ thread writes (CP_STAT_ADD); others load */
	struct cp_call *live_head;	  /**< calls received and not yet freed; CQ thread only */
	uint64_t rejected[CP_REJECT_MAX]; /**< CQ thread writes (CP_STAT_INC); others load */
	struct cp_shed shed;		  /**< CQ thread only */
	struct cp_port_watch port_watch;  /**< CQ thread only: UDP port link changes */
	uint64_t udp_tick_ns;		  /**< CQ thread only: last UDP shedding refresh */
	struct cp_listener listener;	  /**< our own TCP listener (bounded connections) */
	int own_listener;		  /**< 0: gRPC listens (unix: addresses, TLS) */
	int plaintext_port;		  /**< TLS with tls.plaintext_listen: its port */
	uint64_t answered; /**< dataplane answers sent; responder writes, others load relaxed */
	uint64_t grace_deadline_ns;
	/* Drain accounting (CQ thread): what was open at the signal, what got cancelled. */
	uint64_t drain_start_ns;
	long drain_live_at_start;
	uint64_t drain_answered_at_start;
	long drain_cancelled;
	struct cp_stream *blocked; /**< streams waiting for dataplane capacity; CQ thread */
	uint64_t streams_open;	   /**< ExecuteStream calls bound to a worker; atomic */
	uint32_t stream_window;	   /**< responses queued or in flight per stream */
	/** Server time per pipeline (call arrival or frame submit -> answer handed to gRPC), in
	 * ns; written by the responder only. */
	struct dp_metrics *e2e;
	struct cp_reload reload; /**< hot reload context (reload.h); CQ thread */
	/* Taken by the metrics thread to read the token table, and by the CQ thread (the only
	 * writer) while a reload swaps it; the CQ thread's own reads need no lock. */
	pthread_mutex_t auth_lock;
	atomic_bool reload_requested; /**< SIGHUP seen; the CQ loop reloads */
	uint64_t auth_failures[2];    /**< [0] unauthenticated, [1] permission denied; CQ writes */
	uint64_t auth_log_ns;	      /**< last auth failure log line (rate limit); CQ thread */
	uint64_t auth_suppressed;     /**< failures not logged since then; CQ thread */
};

/**
 * Create the server, register methods, bind the port (not started).
 * @return 0, -EADDRINUSE/-EINVAL when the address cannot be bound, -ENOMEM.
 */
int cp_server_create(struct cp_server *srv, const struct cp_server_conf *conf,
		     struct dp_dataplane *dp);

/** Start serving: arm request_call slots. */
void cp_server_start(struct cp_server *srv);

/**
 * Run the completion queue until shutdown completes (cp_server_request_shutdown() was called
 * and every call is answered).
 */
void cp_server_run(struct cp_server *srv);

/**
 * Begin a graceful shutdown: health NOT_SERVING, the listener closes, calls in flight finish.
 * Context: any thread (the signal thread); idempotent.
 */
void cp_server_request_shutdown(struct cp_server *srv);

/** Ask the CQ thread to reload the configuration (SIGHUP). Context: any thread. */
void cp_server_request_reload(struct cp_server *srv);

/** Destroy the server and its completion queue (after cp_server_run returned). */
void cp_server_destroy(struct cp_server *srv);

/* ==== Replies (any thread; exactly one per call) ============================================ */

/**
 * Answer with a status and, when @p status is OK, the packed message @p resp.
 * @p fmt describes the error for non-OK statuses (NULL for none).
 */
void cp_call_reply(struct cp_call *c, grpc_status_code status, const ProtobufCMessage *resp,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/**
 * Answer RESOURCE_EXHAUSTED with a grpc-retry-pushback-ms trailer of @p pushback_ms (the gRPC
 * retry-pushback convention: a client should wait that long before retrying).
 */
void cp_call_reply_exhausted(struct cp_call *c, uint32_t pushback_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Retry pushback for a refused request, from the current backlog: the requests in flight times
 * the mean service time per request, spread over the workers; clamped to [1, 5000] ms.
 * Context: CQ thread.
 */
uint32_t cp_server_pushback_ms(const struct cp_server *srv);

/**
 * End a call with @p status after streamed messages: optional last message @p msg (consumed;
 * 0-length slice for none) and, for errors, a message made from @p fmt.
 * Context: any thread; once per call.
 */
void cp_call_finish(struct cp_call *c, grpc_status_code status, grpc_slice *msg, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

/**
 * Drop a reference a handler took on the call (c->refs++ for a batch of its own); the last
 * frees the call. Context: CQ thread.
 */
void cp_call_release(struct cp_call *c);

/** Answer OK with an already serialised message (consumes @p msg). */
void cp_call_reply_slice(struct cp_call *c, grpc_slice msg);

/**
 * Read the call's request message and unpack it as @p desc.
 * @return the message (free with protobuf_c_message_free_unpacked(msg, NULL)), or NULL after
 * replying INVALID_ARGUMENT ("missing" or "malformed").
 * Context: CQ thread.
 */
ProtobufCMessage *cp_call_unpack(struct cp_call *c, const ProtobufCMessageDescriptor *desc);

/** Name of a refusal reason ("ring_full", ...), as in GetStats and /metrics. */
const char *cp_reject_name(enum cp_reject r);

/** Monotonic clock in ns. */
uint64_t cp_now_ns(void);

/* Method tables, one per service file. */
extern struct cp_method cp_pipeline_methods[];
extern struct cp_method cp_admin_methods[];
extern struct cp_method cp_health_methods[];
extern struct cp_method cp_reflection_methods[];

#endif

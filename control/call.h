/**
 * @file
 * A gRPC call on a front end and the operations on it alone: its tags, the method it arrived
 * for, its one final reply (cp_call_reply*), reading its request (cp_call_unpack) and learning
 * of its end (cp_call_watch_close). The bottom of the control plane's call path: it calls no
 * front end, handler or server function (docs/ARCHITECTURE.md, "Layering").
 *
 * Call life: a struct cp_call is taken from its front end's free list when a request_call slot
 * is armed, handed to a method handler when the call arrives, and returned when its last batch
 * completes (cp_call_release, frontend.h). Every call gets exactly one final reply
 * (cp_call_reply*), on its front end's thread (the one exception, Admin/ReloadConfig, is
 * answered by the control thread: grpc_call_start_batch is thread-safe and the completion
 * still comes back to the front end).
 *
 * Context: the call's front end unless noted. Ownership: a front end owns its calls; a reply
 * keeps what it sends alive in the call until the final batch completes.
 */
#ifndef COREPIPE_CP_CALL_H
#define COREPIPE_CP_CALL_H

#include "control/access_log.h"
#include "control/auth.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct cp_server;
struct cp_call;
struct cp_frontend;
struct dp_req;

/** Handles one call; must reply exactly once, now or later. Context: the call's front end. */
typedef void (*cp_handler_fn)(struct cp_server *srv, struct cp_call *c);

enum cp_tag_kind {
	CP_TAG_NEW_CALL = 1,
	CP_TAG_RECV = 2,     /**< unary: the request message arrived (or the call died) */
	CP_TAG_DONE = 3,     /**< the final batch completed */
	CP_TAG_SHUTDOWN = 4, /**< grpc_server_shutdown_and_notify finished */
	CP_TAG_CLOSE = 5,    /**< RECV_CLOSE_ON_SERVER alone: cancellation of queued work */
	CP_TAG_SEND = 8,     /**< c->send_tag's batch completed: method->sent (owner: the call) */
	CP_TAG_CALLBACK = 9, /**< a handler's own batch completed: fn(owner, success) */
};

/** A completion queue tag: the address of one of these inside its owner. */
struct cp_tag {
	enum cp_tag_kind kind;
	void *owner;
	void (*fn)(void *owner, int ok); /**< CP_TAG_CALLBACK only; called on the CQ thread */
};

/** How a method's calls arrive. */
enum cp_method_kind {
	CP_UNARY = 0,	      /**< one request message, read before the handler runs */
	CP_STREAMING = 1,     /**< the handler reads messages itself (ExecuteStream) */
	CP_SERVER_STREAM = 2, /**< one request, then the handler sends messages (Watch) */
};

/** A registered method. */
struct cp_method {
	const char *path; /**< "/corepipe.v1.Pipeline/Execute" */
	cp_handler_fn handler;
	unsigned prealloc; /**< request_call slots kept armed per front end */
	enum cp_method_kind kind;
	unsigned perm; /**< 0: health (may be open), else an enum cp_perm */
	void *handle;  /**< from grpc_server_register_method */
	/*
	 * The front end's calls into the handler module for this method's calls, set in its
	 * method table (NULL: nothing to do). The front end names no handler module: these, the
	 * request completions (struct cp_work) and the front end's parked-work hooks
	 * (frontend.h) are how it reaches them.
	 */
	void (*closed)(struct cp_call *c); /**< RECV_CLOSE_ON_SERVER completed (c->cancelled) */
	void (*sent)(struct cp_call *c, int ok); /**< a c->send_tag batch completed */
	void (*gone)(struct cp_call *c);	 /**< the call is being freed */
};

/**
 * Where a request handed to the dataplane is answered: req->cookie points at one of these,
 * inside the submitter's state (the call for Execute, the stream for a stream frame), filled in
 * by the handler module that submitted it. The front end calls complete() for every request it
 * collects (or the handler itself for a request it ran inline): one indirect call, no lookup.
 * Ownership: complete() consumes @p req.
 */
struct cp_work {
	void (*complete)(struct cp_frontend *fe, struct dp_req *req);
};

struct cp_stream;

struct cp_call {
	struct cp_tag new_tag, recv_tag, done_tag, close_tag, send_tag;
	int refs; /**< batches outstanding; the front end's thread only */
	struct cp_call *live_prev, *live_next; /**< the front end's live calls */
	struct cp_call *free_next;	       /**< the front end's free list */
	struct cp_frontend *fe;
	const struct cp_method *method; /**< NULL: unregistered method (generic slot) */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_call_details details; /**< generic slot only */
	grpc_metadata_array md;
	grpc_byte_buffer *payload; /**< the request message (unary), once received */
	/* Reply state, kept alive until the final batch completes. */
	grpc_byte_buffer *send;
	grpc_slice status_details;
	bool status_details_set;
	bool close_posted;     /**< RECV_CLOSE_ON_SERVER already posted on its own */
	bool initial_md_sent;  /**< initial metadata already went out (streams, Watch) */
	bool replied;	       /**< the final batch was started */
	int cancelled;	       /**< from RECV_CLOSE_ON_SERVER */
	bool server_cancelled; /**< cancelled by the server (grace period), not the client */
	/* Set (release) by the front end when the client cancelled or the deadline passed;
	 * read by workers (dp_req.cancelled) to skip queued work. */
	atomic_bool cancelled_flag;
	grpc_metadata trailer; /**< grpc-retry-pushback-ms, when set */
	bool trailer_set;
	uint64_t start_ns;
	char *peer;	     /**< "ipv4:a.b.c.d:port" at arrival (rapid-reset count), or NULL */
	uint64_t resp_bytes; /**< reply bytes counted in the front end's budget */
	struct cp_work work; /**< Execute's request out (req->cookie = &work), rpc_pipeline.c */
	struct cp_stream *stream;     /**< ExecuteStream state; unlinked when the call is freed */
	void *ctx;		      /**< a handler's own state (Watch) */
	struct cp_alog_call alog;     /**< access log record and x-request-id (access_log.h) */
	char token[CP_AUTH_NAME_MAX]; /**< the caller's token name ("" without one) */
};

/* ==== Replies (the call's front end; exactly one per call) ================================= */

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
 * End a call with @p status after streamed messages: optional last message @p msg (consumed;
 * NULL for none) and, for errors, a message made from @p fmt.
 */
void cp_call_finish(struct cp_call *c, grpc_status_code status, grpc_slice *msg, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

/** Answer OK with an already serialised message (consumes @p msg). */
void cp_call_reply_slice(struct cp_call *c, grpc_slice msg);

/**
 * Learn of the call's end (client cancel, deadline, disconnect) at once: post
 * RECV_CLOSE_ON_SERVER on its own (c->close_tag, setting c->cancelled), for a call whose work
 * or stream outlives its handler. Sets c->close_posted when posted; the batch holds a
 * reference until it completes. Context: the call's front end.
 */
void cp_call_watch_close(struct cp_call *c);

/**
 * Unpack the call's request message as @p desc.
 * @return the message (free with protobuf_c_message_free_unpacked(msg, NULL)), or NULL after
 * replying INVALID_ARGUMENT ("missing" or "malformed").
 */
ProtobufCMessage *cp_call_unpack(struct cp_call *c, const ProtobufCMessageDescriptor *desc);

/** Monotonic clock in ns (the calls' start_ns, the access log, the drain's deadlines). */
static inline uint64_t
cp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif

/**
 * @file
 * Entry points shared between the RPC handlers and the front end that runs them.
 *
 * Context: the front end's lcore unless noted. Ownership: as noted.
 */
#ifndef COREPIPE_CP_RPC_H
#define COREPIPE_CP_RPC_H

#include "control/frontend.h"
#include "control/grpc_server.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/req.h"

/**
 * Answer the call behind a run Execute request (req->cookie), inline or handed over.
 * Ownership: consumes @p req (freed before the answer is sent).
 */
void cp_execute_complete(struct cp_frontend *fe, struct dp_req *req);

/**
 * Answer a run ExecuteStream frame or flush (req->cookie is the cp_stream).
 * Ownership: consumes @p req.
 */
void cp_stream_complete(struct cp_frontend *fe, struct dp_req *req);

/** ExecuteStream handler (rpc_stream.c). */
void cp_execute_stream(struct cp_server *srv, struct cp_call *c);

/* ExecuteStream events (rpc_stream.c). */
void cp_stream_on_recv(struct cp_stream *st, int ok);
void cp_stream_on_send(struct cp_stream *st, int ok);
void cp_stream_on_close(struct cp_stream *st, int cancelled);
/** The call was freed: drop the stream's reference to it. */
void cp_stream_call_gone(struct cp_stream *st);
/** Retry frames of streams that waited for dataplane capacity or reply memory. */
void cp_stream_retry_blocked(struct cp_frontend *fe);

/* grpc.health.v1.Health/Watch (rpc_health.c). */
/** Push the current status to the front end's Watch calls; end them when @p draining. */
void cp_health_watch_update(struct cp_frontend *fe, bool draining);
/** A Watch update was sent. */
void cp_health_watch_sent(struct cp_call *c, int ok);
/** A Watch call is being freed: unlink it. */
void cp_health_watch_gone(struct cp_call *c);

/** Fill @p out (and @p audio for audio) to describe @p req's output buffer (no copy). */
void cp_output_view(const struct dp_req *req, Corepipe__V1__Payload *out,
		    Corepipe__V1__AudioBuffer *audio);

/**
 * Decode a request payload into a format and a view of its bytes.
 * @return 0, or -EINVAL with @p msg saying what is wrong.
 */
int cp_decode_payload(const Corepipe__V1__Payload *in, struct dp_format *fmt, const uint8_t **data,
		      size_t *len, char *msg, size_t msg_size);

/**
 * The pipeline a request names (@p name) or carries inline (@p inline_spec); the caller passes
 * the one its oneof holds and NULL for the other. @return a new reference, or NULL after
 * setting @p status and @p msg: INVALID_ARGUMENT when neither is set or for a bad name or spec,
 * NOT_FOUND, RESOURCE_EXHAUSTED. @p what prefixes messages ("" or "open: "). The one
 * resolution of Execute and ExecuteStream, and the one statement of its errors.
 * Context: a front end's lcore (an RCU reader). Ownership: the caller owns the reference.
 */
struct dp_pipeline *cp_resolve_pipeline(struct cp_frontend *fe, const char *name,
					const Corepipe__V1__PipelineSpec *inline_spec,
					const char *what, int *status, char *msg, size_t msg_len);

#endif

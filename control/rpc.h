/**
 * @file
 * Entry points shared between the RPC handlers and the responder.
 *
 * Context: as noted. Ownership: as noted.
 */
#ifndef COREPIPE_CP_RPC_H
#define COREPIPE_CP_RPC_H

#include "control/grpc_server.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/req.h"

/**
 * Answer the call behind a completed Execute descriptor (req->cookie).
 * Context: responder thread. Ownership: consumes @p req (freed before the answer is sent).
 */
void cp_execute_complete(struct cp_server *srv, struct dp_req *req);

/**
 * Answer a completed ExecuteStream frame or flush (req->cookie is the cp_stream).
 * Context: responder thread. Ownership: consumes @p req.
 */
void cp_stream_complete(struct cp_server *srv, struct dp_req *req);

/** ExecuteStream handler (rpc_stream.c). */
void cp_execute_stream(struct cp_server *srv, struct cp_call *c);

/* ExecuteStream events on the CQ thread (rpc_stream.c). */
void cp_stream_on_recv(struct cp_stream *st, int ok);
void cp_stream_on_send(struct cp_stream *st, int ok);
void cp_stream_on_close(struct cp_stream *st, int cancelled);
/** The call was freed: drop the stream's reference to it. */
void cp_stream_call_gone(struct cp_stream *st);
/** Retry frames of streams that waited for dataplane capacity. */
void cp_stream_retry_blocked(struct cp_server *srv);

/** Fill @p out (and @p audio for audio) to describe @p req's output buffer (no copy). */
void cp_output_view(const struct dp_req *req, Corepipe__V1__Payload *out,
		    Corepipe__V1__AudioBuffer *audio);

/**
 * Decode a request payload into a format and a view of its bytes.
 * @return 0, or -EINVAL with @p msg saying what is wrong.
 */
int cp_decode_payload(const Corepipe__V1__Payload *in, struct dp_format *fmt, const uint8_t **data,
		      size_t *len, char *msg, size_t msg_size);

#endif

/**
 * @file
 * Entry points shared between the pipeline handler modules (rpc_pipeline.c, rpc_stream.c). The
 * front end does not include it: it reaches handlers only through their method tables' hooks,
 * struct cp_work and its own parked-work hooks (call.h, frontend.h).
 *
 * Context: the front end's lcore unless noted. Ownership: as noted.
 */
#ifndef COREPIPE_CP_RPC_H
#define COREPIPE_CP_RPC_H

#include "control/frontend.h"
#include "control/grpc_server.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/req.h"

/** ExecuteStream handler (rpc_stream.c; in cp_pipeline_methods). */
void cp_execute_stream(struct cp_server *srv, struct cp_call *c);
/** ExecuteStream's closed hook (struct cp_method): the call ended; a cancel drops its queue. */
void cp_stream_closed(struct cp_call *c);
/** ExecuteStream's gone hook: the call is being freed; the stream drops its reference to it. */
void cp_stream_gone(struct cp_call *c);

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

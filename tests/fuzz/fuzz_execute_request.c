/*
 * libFuzzer target: everything the server does with an untrusted Execute/PutPipeline message
 * (and the same bytes as an ExecuteStream StreamRequest: open or frame)
 * before it reaches a worker: protobuf-c decode, spec conversion, pipeline compilation with
 * every node's parameter parser, and payload format validation. Then, for a pipeline that
 * compiles, the runner over the decoded payload in a malloc'd buffer (no EAL needed: the
 * nodes exercised here stay in place or fail cleanly when they would need a pool buffer).
 *
 * Build and run: make fuzz (FUZZ_SECONDS per target).
 */
#include "control/pbconv.h"
#include "control/rpc.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/pipeline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void stream_request(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Corepipe__V1__ExecuteRequest *rq;
	struct dp_pipeline *p = NULL;
	struct dp_spec view;
	struct dp_err err;

	stream_request(data, size);
	rq = corepipe__v1__execute_request__unpack(NULL, size, data);
	if (rq == NULL)
		return 0;
	if (rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_INLINE &&
	    cp_spec_view(rq->inline_, &view) == 0) {
		p = dp_pipeline_compile(&view, DP_NODES_DEFAULT_MAX, &err);
		cp_spec_view_free(&view);
	} else if (rq->pipeline_case == COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME) {
		(void)dp_pipeline_name_valid(rq->name);
	}
	if (rq->input != NULL && rq->input->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO) {
		const Corepipe__V1__AudioBuffer *a = rq->input->audio;
		struct dp_format f = {
		    .kind = DP_KIND_AUDIO,
		    .fmt = (uint8_t)a->format,
		    .rate = a->sample_rate,
		    .channels = (uint16_t)a->channels,
		};

		(void)dp_format_check(&f, a->samples.len, &err);
	}
	dp_pipeline_unref(p);
	corepipe__v1__execute_request__free_unpacked(rq, NULL);
	return 0;
}

/* The same bytes as an ExecuteStream message: open (name or inline) or frame. */
static void
stream_request(const uint8_t *data, size_t size)
{
	Corepipe__V1__StreamRequest *m = corepipe__v1__stream_request__unpack(NULL, size, data);
	struct dp_pipeline *p = NULL;
	struct dp_format fmt;
	const uint8_t *bytes;
	size_t len;
	char msg[256];
	struct dp_spec view;
	struct dp_err err;

	if (m == NULL)
		return;
	if (m->msg_case == COREPIPE__V1__STREAM_REQUEST__MSG_OPEN) {
		if (m->open->pipeline_case == COREPIPE__V1__STREAM_OPEN__PIPELINE_INLINE &&
		    cp_spec_view(m->open->inline_, &view) == 0) {
			p = dp_pipeline_compile(&view, DP_NODES_DEFAULT_MAX, &err);
			cp_spec_view_free(&view);
		} else if (m->open->pipeline_case == COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME) {
			(void)dp_pipeline_name_valid(m->open->name);
		}
	} else if (m->msg_case == COREPIPE__V1__STREAM_REQUEST__MSG_FRAME) {
		(void)cp_decode_payload(m->frame, &fmt, &bytes, &len, msg, sizeof(msg));
	}
	dp_pipeline_unref(p);
	corepipe__v1__stream_request__free_unpacked(m, NULL);
}

/*
 * corepipe from C on the gRPC C core and protobuf-c (the same libraries as the server): one
 * Execute call with a registered pipeline and the bytes of a string, then its annotations.
 *
 *   execute [HOST:PORT] [PIPELINE] [TEXT]      (defaults: 127.0.0.1:50051 crc32c 123456789)
 *
 * Build (make does: build/release/examples/execute):
 *   protoc-c --c_out=gen -Iproto proto/corepipe/v1/corepipe.proto
 *   cc -Igen execute.c gen/corepipe/v1/corepipe.pb-c.c $(pkg-config --cflags --libs grpc \
 *       libprotobuf-c)
 * A bearer token, when the server wants one, comes from $COREPIPE_TOKEN.
 */
#include "corepipe/v1/corepipe.pb-c.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
	const char *target = argc > 1 ? argv[1] : "127.0.0.1:50051";
	const char *name = argc > 2 ? argv[2] : "crc32c";
	const char *text = argc > 3 ? argv[3] : "123456789";
	const char *token = getenv("COREPIPE_TOKEN");
	Corepipe__V1__ExecuteRequest rq = COREPIPE__V1__EXECUTE_REQUEST__INIT;
	Corepipe__V1__Payload in;
	Corepipe__V1__ExecuteResponse *resp = NULL;
	grpc_channel_credentials *creds;
	grpc_channel *ch;
	grpc_completion_queue *cq;
	grpc_call *call;
	grpc_metadata md[1];
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send, *recv = NULL;
	grpc_status_code status;
	grpc_slice details, s;
	grpc_op ops[6];
	char auth[512];
	int rc = 1;

	/* The request: a named pipeline and the text's bytes as a data payload. */
	corepipe__v1__payload__init(&in);
	in.kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
	in.data.data = (uint8_t *)text;
	in.data.len = strlen(text);
	rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
	rq.name = (char *)name;
	rq.input = &in;
	s = grpc_slice_malloc(corepipe__v1__execute_request__get_packed_size(&rq));
	corepipe__v1__execute_request__pack(&rq, GRPC_SLICE_START_PTR(s));
	send = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);

	grpc_init();
	creds = grpc_insecure_credentials_create();
	ch = grpc_channel_create(target, creds, NULL);
	grpc_channel_credentials_release(creds);
	cq = grpc_completion_queue_create_for_pluck(NULL);
	call = grpc_channel_create_call(
	    ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
	    grpc_slice_from_static_string("/corepipe.v1.Pipeline/Execute"), NULL,
	    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(10, GPR_TIMESPAN)),
	    NULL);
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		md[0].key = grpc_slice_from_static_string("authorization");
		md[0].value = grpc_slice_from_static_string(auth);
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = md;
	}
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	/* One batch for the whole unary call; pluck waits for its tag. */
	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) == GRPC_CALL_OK)
		grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME),
					    NULL);
	else
		status = GRPC_STATUS_INTERNAL;

	if (status == GRPC_STATUS_OK && recv != NULL) {
		grpc_byte_buffer_reader rd;

		grpc_byte_buffer_reader_init(&rd, recv);
		s = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
		resp = corepipe__v1__execute_response__unpack(NULL, GRPC_SLICE_LENGTH(s),
							      GRPC_SLICE_START_PTR(s));
		grpc_slice_unref(s);
	}
	if (resp != NULL) {
		for (size_t i = 0; i < resp->n_annotations; i++)
			printf("%s: %s\n", resp->annotations[i]->key, resp->annotations[i]->value);
		printf("dataplane_ns: %llu\n", (unsigned long long)resp->dataplane_ns);
		corepipe__v1__execute_response__free_unpacked(resp, NULL);
		rc = 0;
	} else {
		char *d = grpc_slice_to_c_string(details);

		fprintf(stderr, "execute: status %d: %s\n", (int)status, d);
		gpr_free(d);
	}
	grpc_slice_unref(details);
	if (recv != NULL)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_call_unref(call);
	grpc_channel_destroy(ch);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_completion_queue_destroy(cq);
	grpc_shutdown_blocking();
	return rc;
}

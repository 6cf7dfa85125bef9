/*
 * A call's own operations (see call.h): its final reply, reading its request, learning of its
 * end. Calls nothing in the front end, the handlers or the server.
 */
#include "control/call.h"

#include "control/log.h"
#include "control/pbconv.h"
#include "control/rpc_stats.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ==== Replies =============================================================================== */

static void
send_final(struct cp_call *c, grpc_status_code status)
{
	grpc_op ops[4];
	grpc_op *op = ops;
	grpc_call_error e;
	grpc_metadata trailers[2];
	size_t n_trailers = 0;
	const char *path = c->method != NULL ? c->method->path : NULL;

	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		op->op = GRPC_OP_SEND_INITIAL_METADATA;
		op++;
	}
	if (c->send != NULL) {
		op->op = GRPC_OP_SEND_MESSAGE;
		op->data.send_message.send_message = c->send;
		op++;
	}
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = status;
	op->data.send_status_from_server.status_details =
	    c->status_details_set ? &c->status_details : NULL;
	/* Every answer counted (rpc_stats.h) and logged (access_log.h, which adds x-request-id
	 * to the trailers). */
	cp_rpc_stats_handled(path, c->method != NULL && c->method->kind != CP_UNARY, status);
	if (c->trailer_set)
		trailers[n_trailers++] = c->trailer;
	n_trailers +=
	    cp_alog_end(&c->alog, path, status, c->send, c->start_ns, &trailers[n_trailers]);
	op->data.send_status_from_server.trailing_metadata_count = n_trailers;
	op->data.send_status_from_server.trailing_metadata = n_trailers ? trailers : NULL;
	op++;
	/* The call's end, in the same batch unless it was posted on its own earlier (to see
	 * cancellation while the request waited on a worker). */
	if (!c->close_posted) {
		op->op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		op->data.recv_close_on_server.cancelled = &c->cancelled;
		op++;
	}
	c->replied = true;
	c->refs++;
	e = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), &c->done_tag, NULL);
	if (e != GRPC_CALL_OK) {
		c->refs--;
		cp_log(CP_LOG_ERROR, "start_batch failed", CP_LF_INT("grpc_call_error", e));
	}
}

/* The status message of the final batch, formatted now, kept until the call is freed. */
static void
set_details(struct cp_call *c, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	c->status_details = grpc_slice_from_copied_string(msg);
	c->status_details_set = true;
}

/* The final batch: @p msg as the message (consumed; NULL: none), on failure the details from
 * @p fmt (NULL: none). */
static void
finish_v(struct cp_call *c, grpc_status_code status, grpc_slice *msg, const char *fmt, va_list ap)
{
	if (msg != NULL) {
		c->send = grpc_raw_byte_buffer_create(msg, 1);
		grpc_slice_unref(*msg);
	}
	if (fmt != NULL && status != GRPC_STATUS_OK)
		set_details(c, fmt, ap);
	send_final(c, status);
}

void
cp_call_reply(struct cp_call *c, grpc_status_code status, const ProtobufCMessage *resp,
	      const char *fmt, ...)
{
	grpc_slice s, *msg = NULL;
	va_list ap;

	if (status == GRPC_STATUS_OK && resp != NULL) {
		s = grpc_slice_malloc(protobuf_c_message_get_packed_size(resp));
		protobuf_c_message_pack(resp, GRPC_SLICE_START_PTR(s));
		msg = &s;
	}
	va_start(ap, fmt);
	finish_v(c, status, msg, fmt, ap);
	va_end(ap);
}

void
cp_call_finish(struct cp_call *c, grpc_status_code status, grpc_slice *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	finish_v(c, status, msg, fmt, ap);
	va_end(ap);
}

void
cp_call_reply_exhausted(struct cp_call *c, uint32_t pushback_ms, const char *fmt, ...)
{
	char msg[512], val[16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(val, sizeof(val), "%u", pushback_ms);
	c->trailer.key = grpc_slice_from_static_string("grpc-retry-pushback-ms");
	c->trailer.value = grpc_slice_from_copied_string(val);
	c->trailer_set = true;
	c->status_details = grpc_slice_from_copied_string(msg);
	c->status_details_set = true;
	send_final(c, GRPC_STATUS_RESOURCE_EXHAUSTED);
}

void
cp_call_reply_slice(struct cp_call *c, grpc_slice msg)
{
	c->send = grpc_raw_byte_buffer_create(&msg, 1);
	grpc_slice_unref(msg);
	send_final(c, GRPC_STATUS_OK);
}

void
cp_call_watch_close(struct cp_call *c)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	c->refs++; /* the batch's, given back when close_tag completes */
	if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) == GRPC_CALL_OK)
		c->close_posted = true;
	else
		c->refs--;
}

ProtobufCMessage *
cp_call_unpack(struct cp_call *c, const ProtobufCMessageDescriptor *desc)
{
	grpc_byte_buffer_reader rd;
	ProtobufCMessage *m;
	grpc_slice s;
	char why[256];

	if (c->payload == NULL) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL, "missing request message");
		return NULL;
	}
	if (!grpc_byte_buffer_reader_init(&rd, c->payload)) {
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
			      "request message could not be decompressed");
		return NULL;
	}
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	/* Strict: a string with a NUL byte inside is refused (pbconv.h). */
	m = cp_pb_unpack(desc, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s), why, sizeof(why));
	grpc_slice_unref(s);
	if (m == NULL)
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL, "%s", why);
	return m;
}

/*
 * grpc.reflection.v1 and v1alpha ServerReflection/ServerReflectionInfo: the streaming glue
 * around control/reflection.c (which does the protocol). One message at a time: receive a
 * request, send its answer, receive the next; the client's half-close ends the call with OK.
 * A request that is not a ServerReflectionRequest ends it with INVALID_ARGUMENT, a cancelled
 * call with CANCELLED. The answers need no dataplane: everything runs on the call's front end.
 *
 * Batches: at most one of ours is outstanding (RECV_MESSAGE or SEND_MESSAGE), each holding a
 * reference on the call (c->refs, its front end) that its completion drops; the final status
 * (cp_call_finish) takes its own.
 */
#include "control/frontend.h" /* cp_call_release */
#include "control/grpc_server.h"
#include "control/log.h"
#include "control/reflection.h"

#include <grpc/byte_buffer_reader.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct refl_call {
	struct cp_tag recv_tag, send_tag;
	struct cp_call *c;
	grpc_byte_buffer *recv_buf, *send_buf;
};

/* The index of the embedded descriptor set, built once at the first call (any front end);
 * read-only afterwards. */
static struct cp_reflection *g_index;
static pthread_once_t g_index_once = PTHREAD_ONCE_INIT;

static void
build_index(void)
{
	g_index = cp_reflection_create(cp_protoset, (size_t)(cp_protoset_end - cp_protoset));
}

static void on_recv(void *owner, int ok);
static void on_send(void *owner, int ok);

/* End the call and free our state; @p c stays alive until the caller's cp_call_release(). */
static void
finish(struct refl_call *rc, grpc_status_code st, const char *msg)
{
	if (msg != NULL)
		cp_call_finish(rc->c, st, NULL, "%s", msg);
	else
		cp_call_finish(rc->c, st, NULL, NULL);
	free(rc);
}

static void
post(struct refl_call *rc, grpc_op *ops, size_t n, struct cp_tag *tag)
{
	rc->c->refs++;
	if (grpc_call_start_batch(rc->c->call, ops, n, tag, NULL) != GRPC_CALL_OK) {
		rc->c->refs--;
		if (rc->send_buf != NULL) {
			grpc_byte_buffer_destroy(rc->send_buf);
			rc->send_buf = NULL;
		}
		finish(rc, GRPC_STATUS_INTERNAL, "reflection: cannot start a batch");
	}
}

static void
post_recv(struct refl_call *rc)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &rc->recv_buf;
	post(rc, &op, 1, &rc->recv_tag);
}

static void
on_recv(void *owner, int ok)
{
	struct refl_call *rc = owner;
	struct cp_call *c = rc->c; /* alive: this batch holds a reference */
	grpc_byte_buffer *bb = rc->recv_buf;
	grpc_byte_buffer_reader rd;
	grpc_slice in, out;
	uint8_t *ans = NULL;
	size_t ans_len = 0;
	grpc_op ops[2];
	size_t n = 0;
	int r = -EINVAL;

	rc->recv_buf = NULL;
	if (!ok || bb == NULL) {
		/* Cancelled, or the client half-closed: every request was answered. */
		if (bb != NULL)
			grpc_byte_buffer_destroy(bb);
		finish(rc, ok ? GRPC_STATUS_OK : GRPC_STATUS_CANCELLED,
		       ok ? NULL : "reflection stream cancelled");
		cp_call_release(c);
		return;
	}
	if (grpc_byte_buffer_reader_init(&rd, bb)) {
		in = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
		r = cp_reflection_answer(g_index, GRPC_SLICE_START_PTR(in), GRPC_SLICE_LENGTH(in),
					 &ans, &ans_len);
		grpc_slice_unref(in);
	}
	grpc_byte_buffer_destroy(bb);
	if (r != 0) {
		finish(rc,
		       r == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT,
		       r == -ENOMEM ? "reflection: out of memory"
				    : "malformed message: not a valid "
				      "grpc.reflection.v1.ServerReflectionRequest");
		cp_call_release(c);
		return;
	}
	out = grpc_slice_new(ans, ans_len, free);
	rc->send_buf = grpc_raw_byte_buffer_create(&out, 1);
	grpc_slice_unref(out);
	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->initial_md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = rc->send_buf;
	post(rc, ops, n, &rc->send_tag);
	cp_call_release(c);
}

static void
on_send(void *owner, int ok)
{
	struct refl_call *rc = owner;
	struct cp_call *c = rc->c;

	grpc_byte_buffer_destroy(rc->send_buf);
	rc->send_buf = NULL;
	if (ok)
		post_recv(rc);
	else
		finish(rc, GRPC_STATUS_CANCELLED, "reflection stream cancelled");
	cp_call_release(c);
}

static void
reflection_info(struct cp_server *srv, struct cp_call *c)
{
	struct refl_call *rc;

	(void)srv;
	pthread_once(&g_index_once, build_index);
	{
		if (g_index == NULL) {
			cp_log(CP_LOG_ERROR,
			       "reflection: the embedded descriptor set does not parse");
			cp_call_reply(c, GRPC_STATUS_INTERNAL, NULL, "reflection unavailable");
			return;
		}
	}
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		return;
	}
	rc->c = c;
	rc->recv_tag = (struct cp_tag){.kind = CP_TAG_CALLBACK, .owner = rc, .fn = on_recv};
	rc->send_tag = (struct cp_tag){.kind = CP_TAG_CALLBACK, .owner = rc, .fn = on_send};
	post_recv(rc);
}

struct cp_method cp_reflection_methods[] = {
    {.path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
     .handler = reflection_info,
     .prealloc = 2,
     .kind = CP_STREAMING},
    {.path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
     .handler = reflection_info,
     .prealloc = 2,
     .kind = CP_STREAMING},
    {.path = NULL},
};

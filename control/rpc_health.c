/*
 * grpc.health.v1.Health: Check and Watch.
 *
 * SERVING once every worker runs its loop, NOT_SERVING from the first shutdown signal on (the
 * lame duck still serves calls, so load balancers move away first). The empty service name and
 * corepipe's own services are known; any other name is NOT_FOUND for Check and SERVICE_UNKNOWN
 * for Watch, as the health protocol specifies.
 *
 * Watch sends the current status at once and again whenever it changes (the front end checks
 * the server's health generation on every tick); when the server starts draining, a Watch call
 * gets NOT_SERVING and then ends UNAVAILABLE, so it never holds the drain up. Each Watch call
 * belongs to the front end that received it (its list, its thread).
 */
#include "control/frontend.h"
#include "control/rpc.h"
#include "grpc/health/v1/health.pb-c.h"

#include <stdlib.h>
#include <string.h>

static const char *const g_known[] = {"", "corepipe.v1.Pipeline", "corepipe.v1.Admin"};

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus health_status;

/* One open Watch call (c->ctx). */
struct cp_watch {
	struct cp_call *c;
	struct cp_watch *prev, *next; /* the front end's list */
	bool known;		      /* the service exists */
	bool sending;		      /* a SEND_MESSAGE is outstanding */
	bool ending;		      /* drain: finish after the last update */
	int sent;		      /* last status sent (-1: none) */
	grpc_byte_buffer *buf;
};

static bool
known_service(const char *name)
{
	for (size_t i = 0; i < sizeof(g_known) / sizeof(g_known[0]); i++)
		if (strcmp(name, g_known[i]) == 0)
			return true;
	return false;
}

static health_status
current(const struct cp_server *srv)
{
	bool up = atomic_load_explicit(&srv->serving, memory_order_relaxed) &&
		  dp_dataplane_running(srv->dp);

	return up ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
		  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void
check(struct cp_server *srv, struct cp_call *c)
{
	Grpc__Health__V1__HealthCheckRequest *rq;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	rq = (Grpc__Health__V1__HealthCheckRequest *)cp_call_unpack(
	    c, &grpc__health__v1__health_check_request__descriptor);
	if (rq == NULL)
		return;
	if (!known_service(rq->service)) {
		cp_call_reply(c, GRPC_STATUS_NOT_FOUND, NULL, "unknown service '%.100s'",
			      rq->service);
	} else {
		resp.status = current(srv);
		cp_call_reply(c, GRPC_STATUS_OK, &resp.base, NULL);
	}
	protobuf_c_message_free_unpacked(&rq->base, NULL);
}

/* Send the current status if it changed and nothing is being sent; end when draining. */
static void
watch_pump(struct cp_watch *w)
{
	struct cp_call *c = w->c;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	health_status now;
	grpc_op ops[2];
	unsigned n = 0;
	grpc_slice s;

	if (w->sending || c->replied)
		return;
	now = w->known ? current(c->fe->srv)
		       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	if ((int)now == w->sent) {
		if (w->ending)
			cp_call_reply(c, GRPC_STATUS_UNAVAILABLE, NULL, "server is shutting down");
		return;
	}
	resp.status = now;
	s = grpc_slice_malloc(grpc__health__v1__health_check_response__get_packed_size(&resp));
	grpc__health__v1__health_check_response__pack(&resp, GRPC_SLICE_START_PTR(s));
	w->buf = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->initial_md_sent = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = w->buf;
	w->sending = true;
	w->sent = (int)now;
	c->refs++;
	if (grpc_call_start_batch(c->call, ops, n, &c->send_tag, NULL) != GRPC_CALL_OK) {
		c->refs--;
		w->sending = false;
		grpc_byte_buffer_destroy(w->buf);
		w->buf = NULL;
		cp_call_reply(c, GRPC_STATUS_INTERNAL, NULL, "cannot send");
	}
}

static void watches_update(struct cp_frontend *fe, bool draining);

static void
watch(struct cp_server *srv, struct cp_call *c)
{
	struct cp_frontend *fe = c->fe;
	Grpc__Health__V1__HealthCheckRequest *rq;
	struct cp_watch *w;

	(void)srv;
	rq = (Grpc__Health__V1__HealthCheckRequest *)cp_call_unpack(
	    c, &grpc__health__v1__health_check_request__descriptor);
	if (rq == NULL)
		return;
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		cp_call_reply(c, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory");
		protobuf_c_message_free_unpacked(&rq->base, NULL);
		return;
	}
	w->c = c;
	w->known = known_service(rq->service);
	w->sent = -1;
	protobuf_c_message_free_unpacked(&rq->base, NULL);
	/* Its end (cancel, disconnect) is learnt at once; the final batch has no close. */
	cp_call_watch_close(c);
	c->ctx = w;
	fe->watches_update = watches_update;
	w->next = fe->watches;
	if (w->next != NULL)
		w->next->prev = w;
	fe->watches = w;
	w->ending =
	    atomic_load_explicit(&fe->srv->phase, memory_order_relaxed) >= CP_PHASE_DRAINING;
	watch_pump(w);
}

/* A Watch update was sent (the method's sent hook). */
static void
watch_sent(struct cp_call *c, int ok)
{
	struct cp_watch *w = c->ctx;

	w->sending = false;
	if (w->buf != NULL) {
		grpc_byte_buffer_destroy(w->buf);
		w->buf = NULL;
	}
	if (!ok && !c->replied)
		cp_call_reply(c, GRPC_STATUS_CANCELLED, NULL, "watch ended");
	else
		watch_pump(w);
	cp_call_release(c);
}

/* Push the current status to the front end's Watch calls; end them when @p draining (the
 * front end's watches_update hook, set with its first watch). */
static void
watches_update(struct cp_frontend *fe, bool draining)
{
	for (struct cp_watch *w = fe->watches; w != NULL; w = w->next) {
		w->ending |= draining;
		watch_pump(w);
	}
}

/* A Watch call is being freed: unlink it (the method's gone hook). */
static void
watch_gone(struct cp_call *c)
{
	struct cp_watch *w = c->ctx;
	struct cp_frontend *fe = c->fe;

	if (w == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		fe->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	if (w->buf != NULL)
		grpc_byte_buffer_destroy(w->buf);
	free(w);
	c->ctx = NULL;
}

struct cp_method cp_health_methods[] = {
    {.path = "/grpc.health.v1.Health/Check", .handler = check, .prealloc = 4},
    {.path = "/grpc.health.v1.Health/Watch",
     .handler = watch,
     .prealloc = 4,
     .kind = CP_SERVER_STREAM,
     .sent = watch_sent,
     .gone = watch_gone},
    {.path = NULL},
};

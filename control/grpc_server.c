/*
 * The completion-queue thread of the gRPC server.
 *
 * One thread (the main lcore) drives the completion queue: all HTTP/2 and socket work of the
 * gRPC C core happens inside grpc_completion_queue_next() on this thread. Calls arrive on
 * request_call slots kept armed per registered method (plus a generic slot pool for unknown
 * methods, answered UNIMPLEMENTED). The C core has no cross-thread wake-up, so answers for
 * dataplane work are not routed back through this thread: the responder thread sends them with
 * grpc_call_start_batch() directly, and only the final batch's completion (to free the call)
 * comes back here. See docs/ARCHITECTURE.md.
 */
#include "control/grpc_server.h"

#include "control/log.h"
#include "control/rpc.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest the CQ loop blocks before it looks for a pending reload. */
#define RELOAD_POLL_MS 200
/* How often the CQ loop refreshes the UDP front end's shedding state and pushback. */
#define UDP_TICK_NS 10000000ull

/* Generic (unregistered method) slots kept armed. */
#define GENERIC_SLOTS 4
/* How long in-flight calls may take to finish after shutdown began. */

uint64_t
cp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct cp_method *const g_services[] = {
    cp_pipeline_methods,
    cp_admin_methods,
    cp_health_methods,
    cp_reflection_methods,
};

/* ==== Call slots ============================================================================ */

static struct cp_call *
call_new(struct cp_server *srv, const struct cp_method *m)
{
	struct cp_call *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->srv = srv;
	c->method = m;
	c->new_tag.kind = CP_TAG_NEW_CALL;
	c->new_tag.owner = c;
	c->done_tag.kind = CP_TAG_DONE;
	c->done_tag.owner = c;
	c->close_tag.kind = CP_TAG_CLOSE;
	c->close_tag.owner = c;
	atomic_init(&c->cancelled_flag, false);
	atomic_init(&c->initial_md_sent, false);
	grpc_metadata_array_init(&c->md);
	if (m == NULL)
		grpc_call_details_init(&c->details);
	return c;
}

static void
call_free(struct cp_call *c)
{
	if (c->call != NULL)
		grpc_call_unref(c->call);
	if (c->payload != NULL)
		grpc_byte_buffer_destroy(c->payload);
	if (c->send != NULL)
		grpc_byte_buffer_destroy(c->send);
	if (c->status_details_set)
		grpc_slice_unref(c->status_details);
	if (c->trailer_set)
		grpc_slice_unref(c->trailer.value);
	grpc_metadata_array_destroy(&c->md);
	if (c->method == NULL)
		grpc_call_details_destroy(&c->details);
	free(c);
}

/* Unlink a finished call from the live list and free it. CQ thread. */
static void
live_free(struct cp_server *srv, struct cp_call *c)
{
	if (c->live_prev != NULL)
		c->live_prev->live_next = c->live_next;
	else
		srv->live_head = c->live_next;
	if (c->live_next != NULL)
		c->live_next->live_prev = c->live_prev;
	CP_STAT_ADD(srv->live_calls, -1);
	if (c->stream != NULL)
		cp_stream_call_gone(c->stream);
	call_free(c);
}

void
cp_call_release(struct cp_call *c)
{
	if (--c->refs == 0)
		live_free(c->srv, c);
}

/* Arm one request_call slot for @m (NULL: generic). Returns 0 or -1. */
static int
arm(struct cp_server *srv, const struct cp_method *m)
{
	struct cp_call *c;
	grpc_call_error e;

	if (atomic_load_explicit(&srv->shutdown_requested, memory_order_relaxed))
		return 0;
	c = call_new(srv, m);
	if (c == NULL) {
		cp_log(CP_LOG_ERROR, "out of memory arming a call slot");
		return -1;
	}
	if (m != NULL)
		e = grpc_server_request_registered_call(
		    srv->server, m->handle, &c->call, &c->deadline, &c->md,
		    m->streaming ? NULL : &c->payload, srv->cq, srv->cq, &c->new_tag);
	else
		e = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, srv->cq,
					     srv->cq, &c->new_tag);
	if (e != GRPC_CALL_OK) {
		cp_log(CP_LOG_ERROR, "request_call failed", CP_LF_INT("grpc_call_error", e));
		call_free(c);
		return -1;
	}
	return 0;
}

/* ==== Replies =============================================================================== */

static void
send_final(struct cp_call *c, grpc_status_code status)
{
	grpc_op ops[3];
	grpc_op *op = ops;
	grpc_call_error e;

	memset(ops, 0, sizeof(ops));
	/* Acquire: pairs with the release store by the thread that sent it with a message. */
	if (!atomic_load_explicit(&c->initial_md_sent, memory_order_acquire)) {
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
	if (c->trailer_set) {
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata = &c->trailer;
	}
	op++;
	/* RECV_CLOSE_ON_SERVER was posted when the call arrived (on_new_call). */
	/* After this call the CQ thread may free c at any moment: touch nothing after. */
	e = grpc_call_start_batch(c->call, ops, (size_t)(op - ops), &c->done_tag, NULL);
	if (e != GRPC_CALL_OK)
		cp_log(CP_LOG_ERROR, "start_batch failed; call leaked",
		       CP_LF_INT("grpc_call_error", e));
}

/* The status message of the final batch, formatted now, kept until the call is freed. */
static void
set_details(struct cp_call *c, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	c->status_details = grpc_slice_from_copied_string(msg);
	c->status_details_set = 1;
}

const char *
cp_reject_name(enum cp_reject r)
{
	static const char *const names[CP_REJECT_MAX] = {
	    [CP_REJECT_INFLIGHT_LIMIT] = "inflight_limit",
	    [CP_REJECT_POOL_EMPTY] = "pool_empty",
	    [CP_REJECT_TOO_LARGE] = "too_large",
	    [CP_REJECT_RING_FULL] = "ring_full",
	    [CP_REJECT_SHEDDING] = "shedding",
	    [CP_REJECT_STREAMS] = "stream_slots",
	    [CP_REJECT_NOT_FOUND] = "not_found",
	};

	return (unsigned)r < CP_REJECT_MAX ? names[r] : "unknown";
}

void
cp_call_reply(struct cp_call *c, grpc_status_code status, const ProtobufCMessage *resp,
	      const char *fmt, ...)
{
	if (status == GRPC_STATUS_OK && resp != NULL) {
		size_t n = protobuf_c_message_get_packed_size(resp);
		grpc_slice s = grpc_slice_malloc(n);

		protobuf_c_message_pack(resp, GRPC_SLICE_START_PTR(s));
		c->send = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
	}
	if (fmt != NULL && status != GRPC_STATUS_OK) {
		va_list ap;

		va_start(ap, fmt);
		set_details(c, fmt, ap);
		va_end(ap);
	}
	send_final(c, status);
}

void
cp_call_finish(struct cp_call *c, grpc_status_code status, grpc_slice *msg, const char *fmt, ...)
{
	if (msg != NULL) {
		c->send = grpc_raw_byte_buffer_create(msg, 1);
		grpc_slice_unref(*msg);
	}
	if (fmt != NULL && status != GRPC_STATUS_OK) {
		va_list ap;

		va_start(ap, fmt);
		set_details(c, fmt, ap);
		va_end(ap);
	}
	send_final(c, status);
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
	c->trailer_set = 1;
	c->status_details = grpc_slice_from_copied_string(msg);
	c->status_details_set = 1;
	send_final(c, GRPC_STATUS_RESOURCE_EXHAUSTED);
}

uint32_t
cp_server_pushback_ms(const struct cp_server *srv)
{
	const struct dp_dataplane *dp = srv->dp;
	uint64_t busy = 0, reqs = 0, in_flight = 0;
	double service_ns, ms;

	for (unsigned i = 0; i < dp->n_workers; i++) {
		struct dp_worker_stats st;

		dp_worker_stats_read(dp->workers[i], &st);
		busy += st.busy_cycles;
		reqs += st.requests;
		in_flight += dp_worker_in_flight(dp->workers[i]);
	}
	/* Mean worker time per request; before any data, assume 100 us. */
	service_ns = reqs ? (double)busy * 1e9 / (double)dp->tsc_hz / (double)reqs : 100e3;
	ms = (double)in_flight * service_ns / (double)(dp->n_workers ? dp->n_workers : 1) / 1e6;
	return ms < 1 ? 1 : ms > 5000 ? 5000 : (uint32_t)ms;
}

void
cp_call_reply_slice(struct cp_call *c, grpc_slice msg)
{
	c->send = grpc_raw_byte_buffer_create(&msg, 1);
	grpc_slice_unref(msg);
	send_final(c, GRPC_STATUS_OK);
}

ProtobufCMessage *
cp_call_unpack(struct cp_call *c, const ProtobufCMessageDescriptor *desc)
{
	grpc_byte_buffer_reader rd;
	ProtobufCMessage *m;
	grpc_slice s;

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
	m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
	grpc_slice_unref(s);
	if (m == NULL)
		cp_call_reply(c, GRPC_STATUS_INVALID_ARGUMENT, NULL,
			      "malformed request: not a valid %s message", desc->name);
	return m;
}

/* ==== Dispatch ============================================================================== */

static void
unimplemented(struct cp_server *srv, struct cp_call *c)
{
	(void)srv;
	cp_call_reply(c, GRPC_STATUS_UNIMPLEMENTED, NULL, "unknown method %.*s",
		      (int)GRPC_SLICE_LENGTH(c->details.method),
		      (const char *)GRPC_SLICE_START_PTR(c->details.method));
}

/* What a call to @p path needs: 0 (nothing), or a permission. */
static int
needed_perm(const struct cp_server *srv, const char *path, size_t len)
{
	static const char admin[] = "/corepipe.v1.Admin/", health[] = "/grpc.health.v1.Health/";

	if (len >= sizeof(admin) - 1 && memcmp(path, admin, sizeof(admin) - 1) == 0)
		return CP_PERM_ADMIN;
	if (srv->conf.auth->health_open && len >= sizeof(health) - 1 &&
	    memcmp(path, health, sizeof(health) - 1) == 0)
		return 0;
	return CP_PERM_EXECUTE; /* Pipeline, and unknown methods (no probing without a token) */
}

/*
 * Bearer-token check at arrival. @return true to go on, false after answering
 * UNAUTHENTICATED / PERMISSION_DENIED. The token is never logged or echoed.
 */
static bool
authorize(struct cp_server *srv, struct cp_call *c)
{
	const char *path;
	size_t plen;
	const char *val = NULL, *who = NULL;
	size_t vlen = 0;
	int need;
	enum cp_auth_result r;

	if (srv->conf.auth == NULL || !srv->conf.auth->enabled)
		return true;
	if (c->method != NULL) {
		path = c->method->path;
		plen = strlen(path);
	} else {
		path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
		plen = GRPC_SLICE_LENGTH(c->details.method);
	}
	need = needed_perm(srv, path, plen);
	if (need == 0)
		return true;
	for (size_t i = 0; i < c->md.count; i++) {
		if (grpc_slice_str_cmp(c->md.metadata[i].key, "authorization") == 0) {
			val = (const char *)GRPC_SLICE_START_PTR(c->md.metadata[i].value);
			vlen = GRPC_SLICE_LENGTH(c->md.metadata[i].value);
			break;
		}
	}
	r = cp_auth_check(srv->conf.auth, val, vlen, (enum cp_perm)need, &who);
	if (r == CP_AUTH_OK)
		return true;
	CP_STAT_INC(srv->auth_failures[r == CP_AUTH_DENIED]);
	/* At most one log line per second; the count of the others goes with it. */
	if (cp_now_ns() - srv->auth_log_ns >= 1000000000u) {
		char *peer = grpc_call_get_peer(c->call);

		cp_log(CP_LOG_WARN, "auth failure",
		       CP_LF_STR("reason",
				 r == CP_AUTH_DENIED ? "permission_denied" : "unauthenticated"),
		       CP_LF_STR("token", who ? who : "-"), CP_LF_STR("peer", peer),
		       CP_LF_U64("suppressed_since_last", srv->auth_suppressed));
		gpr_free(peer);
		srv->auth_log_ns = cp_now_ns();
		srv->auth_suppressed = 0;
	} else {
		srv->auth_suppressed++;
	}
	if (r == CP_AUTH_DENIED)
		cp_call_reply(c, GRPC_STATUS_PERMISSION_DENIED, NULL,
			      "token '%s' has the execute permission; Admin RPCs need admin", who);
	else
		cp_call_reply(c, GRPC_STATUS_UNAUTHENTICATED, NULL,
			      "missing or invalid bearer token (authorization: Bearer <token>)");
	return false;
}

static void
on_new_call(struct cp_server *srv, struct cp_call *c, int ok)
{
	if (!ok) {
		/* Shutdown: the slot comes back unused. */
		call_free(c);
		return;
	}
	CP_STAT_ADD(srv->live_calls, 1);
	c->live_next = srv->live_head;
	if (srv->live_head != NULL)
		srv->live_head->live_prev = c;
	srv->live_head = c;
	c->start_ns = cp_now_ns();
	/* Learn of cancellation (client cancel, deadline, disconnect) as soon as it happens,
	 * so queued work for a dead call is skipped. Two batches are now outstanding: this
	 * one and the final reply; the call is freed when both have completed. */
	c->refs = 2;
	{
		grpc_op op;

		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		op.data.recv_close_on_server.cancelled = &c->cancelled;
		if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK)
			c->refs = 1;
	}
	/* Keep the same number of slots armed. */
	arm(srv, c->method);
	if (!authorize(srv, c))
		return;
	if (c->method != NULL)
		c->method->handler(srv, c);
	else
		unimplemented(srv, c);
}

/* Read a whole PEM file into a NUL-terminated malloc'd string, or NULL (logged). */
static char *
read_pem(const char *what, const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		cp_log(CP_LOG_ERROR, "tls: cannot read file", CP_LF_STR("setting", what),
		       CP_LF_STR("path", path), CP_LF_STR("error", strerror(errno)));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			char *b = realloc(buf, cap + 65536);

			if (b == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0 && len < (1u << 20));
	fclose(f);
	buf[len] = '\0';
	if (strstr(buf, "-----BEGIN") == NULL) {
		cp_log(CP_LOG_ERROR, "tls: not a PEM file", CP_LF_STR("setting", what),
		       CP_LF_STR("path", path));
		free(buf);
		return NULL;
	}
	return buf;
}

/* SSL server credentials from the tls section, or NULL (logged). Key material is wiped. */
static grpc_server_credentials *
tls_credentials(const struct cp_tls_conf *t)
{
	grpc_ssl_pem_key_cert_pair pair;
	char *cert = read_pem("tls.cert_file", t->cert_file);
	char *key = read_pem("tls.key_file", t->key_file);
	char *ca = t->client_ca_file[0] ? read_pem("tls.client_ca_file", t->client_ca_file) : NULL;
	grpc_server_credentials *creds = NULL;

	if (cert != NULL && key != NULL && (t->client_ca_file[0] == '\0' || ca != NULL)) {
		pair.private_key = key;
		pair.cert_chain = cert;
		creds = grpc_ssl_server_credentials_create_ex(
		    ca, &pair, 1,
		    t->require_client_cert
			? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
		    : ca != NULL ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
				 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		    NULL);
	}
	if (key != NULL) {
		volatile char *v = key;

		for (size_t i = 0; v[i] != '\0'; i++)
			v[i] = 0;
	}
	free(cert);
	free(key);
	free(ca);
	return creds;
}

static void
int_arg(grpc_arg *a, const char *key, int value)
{
	a->type = GRPC_ARG_INTEGER;
	a->key = (char *)key;
	a->value.integer = value;
}

int
cp_server_create(struct cp_server *srv, const struct cp_server_conf *conf, struct dp_dataplane *dp)
{
	grpc_arg args[16];
	grpc_channel_args chargs;
	grpc_server_credentials *creds;
	size_t n;
	int rc;

	memset(srv, 0, sizeof(*srv));
	srv->conf = *conf;
	snprintf(srv->listen, sizeof(srv->listen), "%s", conf->listen);
	srv->conf.listen = srv->listen;
	srv->dp = dp;
	cp_shed_init(&srv->shed, &conf->shed);
	srv->stream_window = conf->stream_window ? conf->stream_window : 8;
	/* A "clock" of 1 GHz: the block's cycles are nanoseconds. */
	srv->e2e = dp_metrics_create(1000000000ull, SOCKET_ID_ANY);
	if (srv->e2e == NULL)
		return -ENOMEM;
	srv->shutdown_tag.kind = CP_TAG_SHUTDOWN;
	srv->shutdown_tag.owner = srv;
	atomic_init(&srv->serving, false);
	atomic_init(&srv->shutdown_requested, false);
	atomic_init(&srv->reload_requested, false);
	pthread_mutex_init(&srv->auth_lock, NULL);

	n = 0;
	int_arg(&args[n++], GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)conf->max_message_bytes);
	/* Outputs may legitimately be larger than inputs. */
	int_arg(&args[n++], GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
	/* A second server on the same port must fail, not share it. */
	int_arg(&args[n++], GRPC_ARG_ALLOW_REUSEPORT, 0);
	/* Clients may ping to keep connections alive, but not more often than every 10 s
	 * without data (keepalive enforcement: abusive pingers get GOAWAY). */
	int_arg(&args[n++], GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
	int_arg(&args[n++], GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
	int_arg(&args[n++], GRPC_ARG_MAX_CONCURRENT_STREAMS, (int)conf->max_concurrent_streams);
	/* The server's own keepalive pings find dead peers. */
	int_arg(&args[n++], GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
	int_arg(&args[n++], GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
	/* Idle connections are closed; old ones are recycled (clients reconnect, which lets a
	 * load balancer rebalance), with a grace period for calls still running on them. */
	int_arg(&args[n++], GRPC_ARG_MAX_CONNECTION_IDLE_MS,
		conf->max_connection_idle_ms ? (int)conf->max_connection_idle_ms : INT_MAX);
	int_arg(&args[n++], GRPC_ARG_MAX_CONNECTION_AGE_MS,
		conf->max_connection_age_ms ? (int)conf->max_connection_age_ms : INT_MAX);
	int_arg(&args[n++], GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30000);
	chargs.num_args = n;
	chargs.args = args;

	srv->server = grpc_server_create(&chargs, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
	for (size_t s = 0; s < sizeof(g_services) / sizeof(g_services[0]); s++) {
		for (struct cp_method *m = g_services[s]; m->path != NULL; m++) {
			m->handle = grpc_server_register_method(
			    srv->server, m->path, NULL,
			    m->streaming ? GRPC_SRM_PAYLOAD_NONE
					 : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
			    0);
			if (m->handle == NULL) {
				cp_log(CP_LOG_ERROR, "cannot register method",
				       CP_LF_STR("method", m->path));
				return -EINVAL;
			}
		}
	}
	if (conf->tls != NULL && conf->tls->cert_file[0] != '\0') {
		/* TLS: the C core's own listener with SSL credentials (grpc_server_add_channel_
		 * from_fd takes insecure credentials only, so TLS connections are not bounded by
		 * server.max_connections). A plaintext listener, when asked for, is ours. */
		creds = tls_credentials(conf->tls);
		if (creds == NULL)
			return -EINVAL;
		srv->port = grpc_server_add_http2_port(srv->server, srv->listen, creds);
		grpc_server_credentials_release(creds);
		if (srv->port == 0) {
			cp_log(CP_LOG_ERROR, "cannot listen (TLS)",
			       CP_LF_STR("grpc_listen", srv->listen));
			return -EADDRINUSE;
		}
		cp_log(CP_LOG_INFO, "TLS on the gRPC port", CP_LF_STR("grpc_listen", srv->listen),
		       CP_LF_BOOL("client_cert_required", conf->tls->require_client_cert),
		       CP_LF_BOOL("plaintext_refused", conf->tls->required));
		if (!conf->tls->required && conf->tls->plaintext_listen[0] != '\0') {
			rc = cp_listener_open(&srv->listener, conf->tls->plaintext_listen,
					      conf->max_connections);
			if (rc != 0) {
				cp_log(CP_LOG_ERROR, "cannot listen (plaintext)",
				       CP_LF_STR("plaintext_listen", conf->tls->plaintext_listen),
				       CP_LF_STR("error", strerror(-rc)));
				return rc == -EINVAL ? -EINVAL : -EADDRINUSE;
			}
			srv->own_listener = 1;
			srv->plaintext_port = srv->listener.port;
		}
		return 0;
	}
	rc = cp_listener_open(&srv->listener, srv->listen, conf->max_connections);
	if (rc == 0) {
		srv->own_listener = 1;
		srv->port = srv->listener.port;
	} else if (rc == -EINVAL && strncmp(srv->listen, "unix:", 5) == 0) {
		/* Unix sockets: gRPC's own listener, without a connection limit. */
		creds = grpc_insecure_server_credentials_create();
		srv->port = grpc_server_add_http2_port(srv->server, srv->listen, creds);
		grpc_server_credentials_release(creds);
		if (srv->port == 0) {
			cp_log(CP_LOG_ERROR, "cannot listen",
			       CP_LF_STR("grpc_listen", srv->listen));
			return -EADDRINUSE;
		}
		cp_log(CP_LOG_WARN, "unix socket listener: server.max_connections not enforced",
		       CP_LF_STR("grpc_listen", srv->listen));
	} else {
		cp_log(CP_LOG_ERROR, "cannot listen", CP_LF_STR("grpc_listen", srv->listen),
		       CP_LF_STR("error", strerror(-rc)));
		return rc == -EINVAL ? -EINVAL : -EADDRINUSE;
	}
	return 0;
}

void
cp_server_start(struct cp_server *srv)
{
	grpc_server_start(srv->server);
	srv->started = true;
	if (srv->own_listener && cp_listener_start(&srv->listener, srv->server) != 0)
		cp_log(CP_LOG_ERROR, "cannot start the accept thread");
	for (size_t s = 0; s < sizeof(g_services) / sizeof(g_services[0]); s++)
		for (struct cp_method *m = g_services[s]; m->path != NULL; m++)
			for (unsigned i = 0; i < m->prealloc; i++)
				arm(srv, m);
	for (unsigned i = 0; i < GENERIC_SLOTS; i++)
		arm(srv, NULL);
}

void
cp_server_request_shutdown(struct cp_server *srv)
{
	bool expected = false;

	atomic_store(&srv->serving, false);
	if (!atomic_compare_exchange_strong(&srv->shutdown_requested, &expected, true))
		return;
	/* UDP requests from now on are answered UNAVAILABLE, like new gRPC calls. */
	if (srv->dp->udp != NULL)
		atomic_store_explicit(&srv->dp->udp->draining, true, memory_order_relaxed);
	/* Stop accepting first: the accept thread closes our listening socket. */
	if (srv->own_listener)
		cp_listener_stop(&srv->listener);
	/* Thread-safe: the listener closes now; the tag arrives once no call is left. */
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
}

void
cp_server_request_reload(struct cp_server *srv)
{
	/* Relaxed: the CQ loop looks at least every RELOAD_POLL_MS. */
	atomic_store_explicit(&srv->reload_requested, true, memory_order_relaxed);
}

void
cp_server_run(struct cp_server *srv)
{
	bool cancelled_all = false;

	for (;;) {
		/* Never block for long: a SIGHUP reload waits for this loop (the C core has no
		 * public way to wake a completion queue from another thread). */
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					       gpr_time_from_millis(RELOAD_POLL_MS, GPR_TIMESPAN));
		grpc_event ev;

		/* Shedding state and pushback for the UDP front end, which never passes here:
		 * every 10 ms (the shedding evaluation's own interval), not every event. */
		if (srv->dp->udp != NULL && cp_now_ns() - srv->udp_tick_ns >= UDP_TICK_NS) {
			srv->udp_tick_ns = cp_now_ns();
			cp_port_watch(&srv->port_watch, srv->dp->udp, srv->udp_tick_ns);
			cp_shed_update(&srv->shed, srv->dp, srv->udp_tick_ns, false);
			atomic_store_explicit(&srv->dp->udp->pushback_ms,
					      cp_server_pushback_ms(srv), memory_order_relaxed);
		}
		if (atomic_exchange_explicit(&srv->reload_requested, false, memory_order_relaxed)) {
			struct cp_reload_report *rep = malloc(sizeof(*rep));

			if (rep != NULL)
				cp_reload_run(srv, rep);
			free(rep);
		}

		if (atomic_load(&srv->shutdown_requested)) {
			if (srv->grace_deadline_ns == 0) {
				srv->drain_start_ns = cp_now_ns();
				srv->grace_deadline_ns =
				    srv->drain_start_ns +
				    (uint64_t)srv->conf.shutdown_grace_ms * 1000000u;
				srv->drain_live_at_start = srv->live_calls;
				srv->drain_answered_at_start =
				    __atomic_load_n(&srv->answered, __ATOMIC_RELAXED);
				cp_log(CP_LOG_INFO, "draining",
				       CP_LF_INT("calls_open", srv->live_calls),
				       CP_LF_U64("grace_ms", srv->conf.shutdown_grace_ms));
			}
			if (srv->shutdown_done && srv->live_calls == 0) {
				cp_log(CP_LOG_INFO, "drained",
				       CP_LF_INT("calls_open_at_signal", srv->drain_live_at_start),
				       CP_LF_U64("answered_during_drain",
						 __atomic_load_n(&srv->answered, __ATOMIC_RELAXED) -
						     srv->drain_answered_at_start),
				       CP_LF_INT("cancelled_after_grace", srv->drain_cancelled),
				       CP_LF_U64("drain_ms",
						 (cp_now_ns() - srv->drain_start_ns) / 1000000u));
				break;
			}
			/* Every call is answered, but the shutdown tag also waits for clients to
			 * close their connections after the GOAWAY, which idle clients may never
			 * do: 100 ms after the GOAWAY, disconnect them (cancel_all_calls forces
			 * channels closed; there is no call left to cancel). */
			if (!cancelled_all && srv->live_calls == 0 &&
			    cp_now_ns() > srv->drain_start_ns + 100000000u) {
				grpc_server_cancel_all_calls(srv->server);
				cancelled_all = true;
			}
			if (!cancelled_all && cp_now_ns() > srv->grace_deadline_ns) {
				cp_log(CP_LOG_WARN, "grace period over: cancelling calls",
				       CP_LF_INT("live_calls", srv->live_calls));
				srv->drain_cancelled = srv->live_calls;
				/* UNAVAILABLE tells clients to retry elsewhere; their queued work
				 * is skipped (RECV_CLOSE sets the flag the workers check). */
				for (struct cp_call *c = srv->live_head; c != NULL;
				     c = c->live_next)
					grpc_call_cancel_with_status(
					    c->call, GRPC_STATUS_UNAVAILABLE,
					    "server shutting down: grace period over", NULL);
				grpc_server_cancel_all_calls(srv->server);
				cancelled_all = true;
			}
			/* Tick so the grace deadline is checked. */
			dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					  gpr_time_from_millis(100, GPR_TIMESPAN));
		}
		/* Streams waiting for dataplane capacity are retried every millisecond. */
		if (srv->blocked != NULL)
			dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					  gpr_time_from_millis(1, GPR_TIMESPAN));
		ev = grpc_completion_queue_next(srv->cq, dl, NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			if (srv->blocked != NULL)
				cp_stream_retry_blocked(srv);
			continue;
		}
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		struct cp_tag *tag = ev.tag;

		switch (tag->kind) {
		case CP_TAG_NEW_CALL:
			on_new_call(srv, tag->owner, ev.success);
			break;
		case CP_TAG_CLOSE: {
			struct cp_call *c = tag->owner;

			/* Release: pairs with the worker's load of dp_req.cancelled. */
			if (c->cancelled)
				atomic_store_explicit(&c->cancelled_flag, true,
						      memory_order_release);
			if (c->stream != NULL)
				cp_stream_on_close(c->stream, c->cancelled);
			if (--c->refs == 0)
				live_free(srv, c);
			break;
		}
		case CP_TAG_DONE: {
			struct cp_call *c = tag->owner;

			if (--c->refs == 0)
				live_free(srv, c);
			break;
		}
		case CP_TAG_STREAM_RECV:
			cp_stream_on_recv(tag->owner, ev.success);
			break;
		case CP_TAG_STREAM_SEND:
			cp_stream_on_send(tag->owner, ev.success);
			break;
		case CP_TAG_CALLBACK:
			tag->fn(tag->owner, ev.success);
			break;
		case CP_TAG_SHUTDOWN:
			srv->shutdown_done = true;
			break;
		}
		if (srv->blocked != NULL)
			cp_stream_retry_blocked(srv);
	}
}

void
cp_server_destroy(struct cp_server *srv)
{
	grpc_event ev;

	if (srv->own_listener) {
		cp_listener_close(&srv->listener); /* joins the accept thread */
		srv->own_listener = 0;
	} else if (srv->listener.fd > 0) {
		cp_listener_close(&srv->listener);
	}
	if (srv->server != NULL) {
		if (srv->started && !atomic_load(&srv->shutdown_requested)) {
			cp_server_request_shutdown(srv);
			grpc_server_cancel_all_calls(srv->server);
			cp_server_run(srv);
		}
		grpc_server_destroy(srv->server);
		srv->server = NULL;
	}
	if (srv->cq != NULL) {
		grpc_completion_queue_shutdown(srv->cq);
		do {
			ev = grpc_completion_queue_next(srv->cq,
							gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
			if (ev.type == GRPC_OP_COMPLETE) {
				struct cp_tag *tag = ev.tag;

				struct cp_call *c = tag->owner;

				if (tag->kind == CP_TAG_NEW_CALL)
					call_free(c);
				else if ((tag->kind == CP_TAG_DONE || tag->kind == CP_TAG_CLOSE) &&
					 --c->refs == 0)
					live_free(srv, c);
			}
		} while (ev.type != GRPC_QUEUE_SHUTDOWN);
		grpc_completion_queue_destroy(srv->cq);
		srv->cq = NULL;
	}
	dp_metrics_free(srv->e2e);
	srv->e2e = NULL;
}

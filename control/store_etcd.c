/*
 * The etcd registry store (control/store_etcd.h): etcd's gRPC API through the gRPC C core.
 */
#include "control/store_etcd.h"

#include "control/ctl.h"
#include "control/file.h"
#include "control/log.h"
#include "control/pbconv.h"
#include "etcd/etcdserverpb/rpc.pb-c.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Deadline of each unary call to etcd (Range, Txn, Authenticate). */
#define ETCD_CALL_MS 3000
/* Compare-and-swap attempts when another writer changes the key in between. */
#define CAS_ATTEMPTS 5
/* Watch reconnect backoff. */
#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 2000
/* The shortest connection attempt (see cp_store_etcd_load), under ETCD_CALL_MS. */
#define CONNECT_MIN_MS 2000
/* Start-up: etcd unreachable is retried this often, this many times (then start fails). */
#define LOAD_ATTEMPTS 10
#define LOAD_RETRY_MS 500
/* How often the watch thread looks at its stop flag while waiting. */
#define WATCH_POLL_MS 200
/* Under the prefix: the fleet's ids (id_key()). */
#define ID_KEYS "#id/"
/* registry.etcd_endpoint: at most this many, each at most ENDPOINT_MAX - 1 bytes. */
#define ENDPOINTS_MAX 8
#define ENDPOINT_MAX  128
/* An auth token (etcd's simple tokens are 16 characters and a counter; JWTs a few hundred). */
#define TOKEN_MAX 2048
/* A TLS call failed as unavailable: how long the TCP probe may wait (tcp_answers). */
#define PROBE_MS 500
/* The password file: its first line, at most this long. */
#define PASSWORD_MAX 256

/* One member of registry.etcd_endpoint, with its own channel. */
struct endpoint {
	char addr[ENDPOINT_MAX];
	grpc_channel *ch;
};

struct cp_store_etcd {
	struct endpoint ep[ENDPOINTS_MAX];
	unsigned n_ep;
	/* The endpoint in use. Moved on (compare-and-swap, so one failure moves it once) by the
	 * thread that saw it fail: the control thread (Put, Delete), the watch thread. Relaxed:
	 * an index into ep[], which is set before either thread starts (pthread_create orders it).
	 */
	atomic_uint cur;
	bool tls;
	char password[PASSWORD_MAX]; /* "" without auth; wiped at close, never logged */
	/* The token every call carries (auth): set by whichever thread authenticated last,
	 * dropped when etcd refuses it. */
	pthread_mutex_t token_lock;
	char token[TOKEN_MAX];
	pthread_t thread;
	bool started;
	/* Relaxed: only asks the watch thread to end; what it then frees is ordered by the join. */
	atomic_bool stop;
	struct cp_ctl *ctl;
	int64_t rev; /* last revision applied or queued (watch thread; set by load first) */
	bool up;     /* the watch's view of etcd (watch thread) */
};

static void sleep_ms(unsigned ms);

/* ==== Calls ================================================================================= */

/* etcd's answers that mean "this call's token is missing, expired or unknown". */
static bool
token_refused(grpc_status_code code, const char *details)
{
	return code == GRPC_STATUS_UNAUTHENTICATED ||
	       strstr(details, "invalid auth token") != NULL ||
	       strstr(details, "user name is empty") != NULL;
}

/* " (TLS)" on a TLS channel: every error names how etcd was reached. */
static const char *
tls_tag(const struct cp_store_etcd *e)
{
	return e->tls ? " (TLS)" : "";
}

/*
 * Does something accept TCP connections at @p addr ("host:port", "[v6]:port")? Asked when a
 * TLS call failed as unavailable: gRPC's own message ("handshaker shutdown") does not say
 * whether the TLS handshake or the connection failed. Bounded by PROBE_MS.
 */
static bool
tcp_answers(const char *addr)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
	const char *colon = strrchr(addr, ':');
	char host[ENDPOINT_MAX];
	bool ok = false;
	size_t hl;

	if (colon == NULL || strchr(addr, '/') != NULL || strncmp(addr, "ipv", 3) == 0)
		return false;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return false;
	for (struct addrinfo *a = ai; a != NULL && !ok; a = a->ai_next) {
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			ok = true;
		else if (errno == EINPROGRESS && poll(&pfd, 1, PROBE_MS) == 1 &&
			 getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
			ok = true;
		close(fd);
	}
	freeaddrinfo(ai);
	return ok;
}

/*
 * @p err: what etcd endpoint @p i answered (@p code, gRPC's @p details): the endpoint, "(TLS)"
 * on TLS, and, when a TLS call found etcd unavailable although it accepts connections, that
 * the TLS handshake failed (gRPC's details say only "handshaker shutdown").
 */
static void
describe(const struct cp_store *s, unsigned i, grpc_status_code code, const char *details,
	 char *err, size_t errlen)
{
	const struct cp_store_etcd *e = s->etcd;

	if (e->tls && code == GRPC_STATUS_UNAVAILABLE && tcp_answers(e->ep[i].addr))
		snprintf(err, errlen,
			 "etcd %s (TLS): unavailable: the TLS handshake failed (etcd accepts "
			 "connections: is its certificate signed by registry.etcd_ca_file, does it "
			 "name %s, does etcd want a client certificate, registry.etcd_cert_file?): "
			 "%s",
			 e->ep[i].addr,
			 s->etcd_conf.server_name[0] != '\0' ? s->etcd_conf.server_name
							     : "the endpoint's host",
			 details);
	else
		snprintf(err, errlen, "etcd %s%s: %s: %s", e->ep[i].addr, tls_tag(e),
			 code == GRPC_STATUS_UNAVAILABLE	 ? "unavailable"
			 : code == GRPC_STATUS_DEADLINE_EXCEEDED ? "no answer in time"
								 : "error",
			 details);
}

/*
 * One unary call to endpoint @p i, carrying @p token ("": none).
 * @return 0 with *resp, -EAGAIN (etcd unreachable, too slow or the TLS handshake refused: err
 * names it), -EKEYREJECTED (etcd refused the token, or wants one), -EPERM (etcd auth: the
 * user may not do that), -EIO (another error from etcd), -EPROTO (an answer that does not
 * parse); *code is etcd's status.
 */
static int
call_ep(struct cp_store *s, unsigned i, const char *token, const char *method,
	const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
	ProtobufCMessage **resp, grpc_status_code *code, char *err, size_t errlen)
{
	struct cp_store_etcd *e = s->etcd;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_millis(ETCD_CALL_MS, GPR_TIMESPAN));
	size_t n = protobuf_c_message_get_packed_size(req);
	grpc_slice sl = grpc_slice_malloc(n);
	grpc_byte_buffer *send, *recv = NULL;
	grpc_metadata_array md_init, md_trail;
	grpc_metadata md = {.key = grpc_slice_from_static_string("token"),
			    .value = grpc_slice_from_copied_string(token)};
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	grpc_call *c;
	int rc = 0;

	*resp = NULL;
	*code = GRPC_STATUS_UNKNOWN;
	protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(sl));
	send = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	c = grpc_channel_create_call(e->ep[i].ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
				     grpc_slice_from_static_string(method), NULL, dl, NULL);
	grpc_metadata_array_init(&md_init);
	grpc_metadata_array_init(&md_trail);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = token[0] != '\0' ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = &md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_init;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
	ops[5].data.recv_status_on_client.status = code;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(c, ops, 6, c, NULL) != GRPC_CALL_OK) {
		snprintf(err, errlen, "etcd %s%s: cannot start a call", e->ep[i].addr, tls_tag(e));
		rc = -EIO;
	} else {
		/* The deadline bounds the wait. */
		grpc_completion_queue_pluck(cq, c, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (*code != GRPC_STATUS_OK) {
			char *d = grpc_slice_to_c_string(details);
			bool gone = *code == GRPC_STATUS_UNAVAILABLE ||
				    *code == GRPC_STATUS_DEADLINE_EXCEEDED;

			describe(s, i, *code, d, err, errlen);
			rc = gone				      ? -EAGAIN
			     : token_refused(*code, d)		      ? -EKEYREJECTED
			     : *code == GRPC_STATUS_PERMISSION_DENIED ? -EPERM
								      : -EIO;
			gpr_free(d);
		} else {
			grpc_byte_buffer_reader rd;

			if (recv != NULL && grpc_byte_buffer_reader_init(&rd, recv)) {
				grpc_slice all = grpc_byte_buffer_reader_readall(&rd);

				grpc_byte_buffer_reader_destroy(&rd);
				*resp = protobuf_c_message_unpack(
				    desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
				grpc_slice_unref(all);
			}
			if (*resp == NULL) {
				snprintf(err, errlen, "etcd %s%s: an answer that is not a %s",
					 e->ep[i].addr, tls_tag(e), desc->name);
				rc = -EPROTO;
			}
		}
	}
	grpc_slice_unref(details);
	grpc_slice_unref(md.value);
	if (recv != NULL)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&md_init);
	grpc_metadata_array_destroy(&md_trail);
	grpc_call_unref(c);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_destroy(cq);
	return rc;
}

/*
 * Authenticate (registry.etcd_user) on endpoint @p i: the token it gives is kept for every
 * later call, on every thread. @return 0, -EAGAIN (etcd unreachable), -EACCES (refused: err
 * names etcd auth and the user, never the password), or as call_ep().
 */
static int
authenticate(struct cp_store *s, unsigned i, char *err, size_t errlen)
{
	struct cp_store_etcd *e = s->etcd;
	Etcdserverpb__AuthenticateRequest rq = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
	Etcdserverpb__AuthenticateResponse *r;
	grpc_status_code code;
	char why[512];
	int rc;

	rq.name = s->etcd_conf.user;
	rq.password = e->password;
	rc = call_ep(s, i, "", "/etcdserverpb.Auth/Authenticate", &rq.base,
		     &etcdserverpb__authenticate_response__descriptor, (ProtobufCMessage **)&r,
		     &code, why, sizeof(why));
	if (rc == -EAGAIN) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	if (rc != 0) {
		snprintf(err, errlen, "etcd auth: user '%s' refused by %s", s->etcd_conf.user, why);
		return -EACCES;
	}
	if (r->token == NULL || r->token[0] == '\0' || strlen(r->token) >= TOKEN_MAX) {
		snprintf(err, errlen, "etcd auth: etcd %s%s gave user '%s' no usable token",
			 e->ep[i].addr, tls_tag(e), s->etcd_conf.user);
		rc = -EACCES;
	} else {
		pthread_mutex_lock(&e->token_lock);
		snprintf(e->token, sizeof(e->token), "%s", r->token);
		pthread_mutex_unlock(&e->token_lock);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

/*
 * The token to send on endpoint @p i (authenticating first when there is none), copied into
 * @p out ("" without auth). @return 0 or as authenticate().
 */
static int
token_get(struct cp_store *s, unsigned i, char out[TOKEN_MAX], char *err, size_t errlen)
{
	struct cp_store_etcd *e = s->etcd;
	int rc;

	out[0] = '\0';
	if (s->etcd_conf.user[0] == '\0')
		return 0;
	pthread_mutex_lock(&e->token_lock);
	memcpy(out, e->token, TOKEN_MAX);
	pthread_mutex_unlock(&e->token_lock);
	if (out[0] != '\0')
		return 0;
	rc = authenticate(s, i, err, errlen);
	if (rc == 0) {
		pthread_mutex_lock(&e->token_lock);
		memcpy(out, e->token, TOKEN_MAX);
		pthread_mutex_unlock(&e->token_lock);
	}
	return rc;
}

/* Forget @p token (etcd refused it) unless another thread has a newer one already. */
static void
token_drop(struct cp_store_etcd *e, const char *token)
{
	pthread_mutex_lock(&e->token_lock);
	if (strcmp(e->token, token) == 0)
		e->token[0] = '\0';
	pthread_mutex_unlock(&e->token_lock);
}

/* Endpoint @p i failed (@p why): the next one is used from now on (logged once per move). */
static void
next_endpoint(struct cp_store *s, unsigned i, const char *why)
{
	struct cp_store_etcd *e = s->etcd;
	unsigned want = i;

	if (e->n_ep > 1 &&
	    atomic_compare_exchange_strong_explicit(&e->cur, &want, (i + 1) % e->n_ep,
						    memory_order_relaxed, memory_order_relaxed))
		cp_log(CP_LOG_WARN, "registry store: etcd endpoint failed, using the next one",
		       CP_LF_STR("failed", e->ep[i].addr),
		       CP_LF_STR("next", e->ep[(i + 1) % e->n_ep].addr), CP_LF_STR("error", why));
}

/*
 * One unary call to etcd: to the endpoint in use, with the auth token (authenticating again,
 * once, when etcd refuses it); an unreachable endpoint hands over to the next, each tried once.
 * @return 0 with *resp, -EAGAIN (no endpoint answered: err names the last one tried), -EACCES
 * (etcd auth refused), -EIO (another error from etcd), -EPROTO (an answer that does not parse).
 */
static int
unary(struct cp_store *s, const char *method, const ProtobufCMessage *req,
      const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, char *err, size_t errlen)
{
	struct cp_store_etcd *e = s->etcd;
	char token[TOKEN_MAX];
	grpc_status_code code;
	int rc = -EAGAIN;

	*resp = NULL;
	for (unsigned k = 0; k < e->n_ep && rc == -EAGAIN; k++) {
		unsigned i = atomic_load_explicit(&e->cur, memory_order_relaxed);

		rc = token_get(s, i, token, err, errlen);
		if (rc == 0)
			rc = call_ep(s, i, token, method, req, desc, resp, &code, err, errlen);
		if (rc == -EKEYREJECTED && s->etcd_conf.user[0] != '\0') {
			/* Expired or unknown (etcd restarted): once more with a new one. */
			token_drop(e, token);
			rc = token_get(s, i, token, err, errlen);
			if (rc == 0)
				rc = call_ep(s, i, token, method, req, desc, resp, &code, err,
					     errlen);
		}
		if (rc == -EAGAIN)
			next_endpoint(s, i, err);
	}
	if (rc == -EKEYREJECTED || rc == -EPERM) {
		char why[512];

		snprintf(why, sizeof(why), "%s", err);
		if (s->etcd_conf.user[0] == '\0')
			snprintf(err, errlen,
				 "etcd auth: %s (etcd has auth enabled: set registry.etcd_user and "
				 "registry.etcd_password_file)",
				 why);
		else if (rc == -EPERM)
			snprintf(err, errlen,
				 "etcd auth: %s (user '%s' needs a role granting readwrite on "
				 "registry.etcd_prefix)",
				 why, s->etcd_conf.user);
		else
			snprintf(err, errlen, "etcd auth: %s", why);
		rc = -EACCES;
	}
	return rc;
}

/* The key of @p name, or the prefix itself (name NULL). */
static size_t
key_of(const struct cp_store *s, const char *name, char *out, size_t len)
{
	return (size_t)snprintf(out, len, "%s%s", s->etcd_conf.prefix, name ? name : "");
}

/* The end of the prefix's range: the prefix with its last byte plus one. */
static void
prefix_end(const struct cp_store *s, char *out, size_t len)
{
	size_t n = strlen(s->etcd_conf.prefix);

	snprintf(out, len, "%s", s->etcd_conf.prefix);
	if (n > 0 && n < len)
		out[n - 1]++;
}

static ProtobufCBinaryData
bin(const char *s)
{
	return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)s};
}

/* @p c: "@p key's mod_revision is @p mod" (0: the key does not exist). @p key is borrowed. */
static void
cmp_mod(Etcdserverpb__Compare *c, const char *key, int64_t mod)
{
	c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	c->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
	c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
	c->key = bin(key);
	c->mod_revision = mod;
}

/* Send Txn @p rq. @return 0 with *@p committed its revision (0: a compare failed, nothing
 * done), or call_ep()'s errors. */
static int
txn_send(struct cp_store *s, Etcdserverpb__TxnRequest *rq, int64_t *committed, char *err,
	 size_t errlen)
{
	Etcdserverpb__TxnResponse *r;
	int rc =
	    unary(s, "/etcdserverpb.KV/Txn", &rq->base, &etcdserverpb__txn_response__descriptor,
		  (ProtobufCMessage **)&r, err, errlen);

	if (rc != 0)
		return rc;
	*committed = r->succeeded && r->header != NULL ? r->header->revision : 0;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

/* Range one key (@p name) or the whole prefix (NULL). */
static int
range(struct cp_store *s, const char *name, Etcdserverpb__RangeResponse **out, char *err,
      size_t errlen)
{
	Etcdserverpb__RangeRequest rq = ETCDSERVERPB__RANGE_REQUEST__INIT;
	char key[256], end[256];

	key_of(s, name, key, sizeof(key));
	rq.key = bin(key);
	if (name == NULL) {
		prefix_end(s, end, sizeof(end));
		rq.range_end = bin(end);
	}
	return unary(s, "/etcdserverpb.KV/Range", &rq.base,
		     &etcdserverpb__range_response__descriptor, (ProtobufCMessage **)out, err,
		     errlen);
}

/*
 * The key holding id @p id for the fleet: prefix + "#id/" + the id (its value: the name). '#'
 * is not in a pipeline name, so the load, the sync and the watch skip these keys.
 */
static void
id_key(const struct cp_store *s, uint32_t id, char *out, size_t len)
{
	snprintf(out, len, "%s" ID_KEYS "%u", s->etcd_conf.prefix, id);
}

/*
 * Put @p value at @p name (or delete it: @p value NULL) if its mod_revision is still @p mod;
 * with @p claim, also take id @p claim for it (only if no name holds it: its key is absent);
 * with @p release, also delete id @p release's key. One Txn: all of it or nothing.
 * @return 0 with *committed (the revision of the change; 0: a compare failed), or as unary().
 */
static int
txn(struct cp_store *s, const char *name, int64_t mod, const ProtobufCBinaryData *value,
    uint32_t claim, uint32_t release, int64_t *committed, char *err, size_t errlen)
{
	Etcdserverpb__TxnRequest rq = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__Compare cmp[2] = {ETCDSERVERPB__COMPARE__INIT, ETCDSERVERPB__COMPARE__INIT};
	Etcdserverpb__Compare *cmps[2] = {&cmp[0], &cmp[1]};
	Etcdserverpb__RequestOp op[2] = {ETCDSERVERPB__REQUEST_OP__INIT,
					 ETCDSERVERPB__REQUEST_OP__INIT};
	Etcdserverpb__RequestOp *ops[2] = {&op[0], &op[1]};
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutRequest idput = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__DeleteRangeRequest iddel = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	char key[256], ikey[300];

	key_of(s, name, key, sizeof(key));
	cmp_mod(&cmp[0], key, mod);
	rq.n_compare = 1;
	rq.n_success = 1;
	if (value != NULL) {
		put.key = bin(key);
		put.value = *value;
		op[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		op[0].request_put = &put;
	} else {
		del.key = bin(key);
		op[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
		op[0].request_delete_range = &del;
	}
	if (claim != 0) {
		/* The id is free in the fleet: its key does not exist (mod_revision 0). */
		id_key(s, claim, ikey, sizeof(ikey));
		cmp_mod(&cmp[1], ikey, 0);
		rq.n_compare = 2;
		idput.key = bin(ikey);
		idput.value = bin(name);
		op[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		op[1].request_put = &idput;
		rq.n_success = 2;
	} else if (release != 0) {
		id_key(s, release, ikey, sizeof(ikey));
		iddel.key = bin(ikey);
		op[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
		op[1].request_delete_range = &iddel;
		rq.n_success = 2;
	}
	rq.compare = cmps;
	rq.success = ops;
	return txn_send(s, &rq, committed, err, errlen);
}

/*
 * A key's value: a corepipe.v1.PipelineInfo (spec and the fleet's id; its version is unused,
 * the key's mod_revision is the version). @return it (free with
 * corepipe__v1__pipeline_info__free_unpacked) when it holds a spec named @p name, else NULL.
 */
static Corepipe__V1__PipelineInfo *
decode(const ProtobufCBinaryData *value, const char *name)
{
	Corepipe__V1__PipelineInfo *pi =
	    corepipe__v1__pipeline_info__unpack(NULL, value->len, value->data);

	if (pi != NULL && (pi->spec == NULL || strcmp(pi->spec->name, name) != 0)) {
		corepipe__v1__pipeline_info__free_unpacked(pi, NULL);
		pi = NULL;
	}
	return pi;
}

/* The key's mod_revision now (0: no such key) and the id its value holds (0: none). */
static int
current(struct cp_store *s, const char *name, int64_t *mod, uint32_t *id, char *err, size_t errlen)
{
	Etcdserverpb__RangeResponse *r;
	int rc = range(s, name, &r, err, errlen);

	if (rc != 0)
		return rc;
	*mod = 0;
	*id = 0;
	if (r->n_kvs > 0) {
		Corepipe__V1__PipelineInfo *pi = decode(&r->kvs[0]->value, name);

		*mod = r->kvs[0]->mod_revision;
		if (pi != NULL) {
			*id = pi->id <= DP_REGISTRY_MAX ? pi->id : 0;
			corepipe__v1__pipeline_info__free_unpacked(pi, NULL);
		}
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return 0;
}

/* taken[] in free_id(): who holds an id. */
#define HELD_FLEET 1u
#define HELD_HERE  2u

static int
mark_local(struct dp_pipeline *p, void *arg)
{
	uint8_t *taken = arg;

	if (p->id <= DP_REGISTRY_MAX)
		taken[p->id] |= HELD_HERE;
	return 0;
}

/*
 * An id for @p name, new to the fleet: the id @p name has here already (a config file
 * pipeline: with the same config file everywhere, it has that id everywhere) when no name of
 * the fleet holds it; else the lowest id no name of the fleet holds (no id key in etcd) and
 * no pipeline of this instance has. @return 0 with *id, -ENOSPC, or as unary().
 */
static int
free_id(struct cp_store *s, const char *name, uint32_t *id, char *err, size_t errlen)
{
	struct dp_pipeline *here = dp_registry_get(s->reg, name);
	uint32_t mine = here != NULL ? here->id : 0;
	Etcdserverpb__RangeRequest rq = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *r;
	uint8_t *taken = calloc(DP_REGISTRY_MAX + 1, 1);
	char key[256], end[256];
	size_t kl;
	int rc;

	dp_pipeline_unref(here);
	if (taken == NULL)
		return -ENOMEM;
	kl = (size_t)snprintf(key, sizeof(key), "%s" ID_KEYS, s->etcd_conf.prefix);
	snprintf(end, sizeof(end), "%s", key);
	end[kl - 1]++; /* "#id/" -> "#id0": every key under "#id/" */
	rq.key = bin(key);
	rq.range_end = bin(end);
	rq.keys_only = true;
	rc = unary(s, "/etcdserverpb.KV/Range", &rq.base, &etcdserverpb__range_response__descriptor,
		   (ProtobufCMessage **)&r, err, errlen);
	if (rc != 0) {
		free(taken);
		return rc;
	}
	for (size_t i = 0; i < r->n_kvs; i++) {
		const ProtobufCBinaryData *k = &r->kvs[i]->key;
		char num[16];
		size_t n = k->len - kl;
		unsigned long v;

		if (k->len <= kl || n >= sizeof(num))
			continue;
		memcpy(num, k->data + kl, n);
		num[n] = '\0';
		v = strtoul(num, NULL, 10);
		if (v >= 1 && v <= DP_REGISTRY_MAX)
			taken[v] |= HELD_FLEET;
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	dp_registry_for_each(s->reg, mark_local, taken);
	*id = mine != 0 && mine <= DP_REGISTRY_MAX && !(taken[mine] & HELD_FLEET) ? mine : 0;
	for (uint32_t i = 1; i <= DP_REGISTRY_MAX && *id == 0; i++)
		if (!taken[i])
			*id = i;
	free(taken);
	if (*id == 0) {
		snprintf(err, errlen, "etcd: every pipeline id (1..%d) is taken in the fleet",
			 DP_REGISTRY_MAX);
		return -ENOSPC;
	}
	return 0;
}

/* ==== Applying changes ====================================================================== */

/* The name in @p key (after the prefix), or NULL when it is not a pipeline name. */
static const char *
name_of(const struct cp_store *s, const ProtobufCBinaryData *key, char out[DP_NAME_MAX])
{
	size_t pl = strlen(s->etcd_conf.prefix);

	if (key->len <= pl || key->len - pl >= DP_NAME_MAX ||
	    memcmp(key->data, s->etcd_conf.prefix, pl) != 0)
		return NULL;
	memcpy(out, key->data + pl, key->len - pl);
	out[key->len - pl] = '\0';
	return dp_pipeline_name_valid(out) ? out : NULL;
}

/*
 * Delete id key @p id (@p id_mod: its mod_revision) if it and @p name's key (@p name_mod: its
 * mod_revision, 0: absent) are still as they were. @return 0 with *committed (0: a compare
 * failed, someone changed either key meanwhile), or as unary().
 */
static int
txn_free_id(struct cp_store *s, const char *name, int64_t name_mod, uint32_t id, int64_t id_mod,
	    int64_t *committed, char *err, size_t errlen)
{
	Etcdserverpb__TxnRequest rq = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__Compare cmp[2] = {ETCDSERVERPB__COMPARE__INIT, ETCDSERVERPB__COMPARE__INIT};
	Etcdserverpb__Compare *cmps[2] = {&cmp[0], &cmp[1]};
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
	Etcdserverpb__RequestOp *ops[1] = {&op};
	Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	char key[256], ikey[300];

	key_of(s, name, key, sizeof(key));
	id_key(s, id, ikey, sizeof(ikey));
	cmp_mod(&cmp[0], key, name_mod);
	cmp_mod(&cmp[1], ikey, id_mod);
	del.key = bin(ikey);
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	op.request_delete_range = &del;
	rq.n_compare = 2;
	rq.compare = cmps;
	rq.n_success = 1;
	rq.success = ops;
	return txn_send(s, &rq, committed, err, errlen);
}

/*
 * Is id key @p kv (prefix + "#id/<id>", value: a name) an orphan in the Range @p r of the whole
 * prefix: its name has no key (*name_mod 0), or a key whose value holds another id (*name_mod:
 * that key's mod_revision)? A value without an id (written before ids were the fleet's) is
 * not judged. @p name gets the name, *id the id.
 */
static bool
orphan_id(const struct cp_store *s, const Etcdserverpb__RangeResponse *r,
	  const Mvccpb__KeyValue *kv, char name[DP_NAME_MAX], uint32_t *id, int64_t *name_mod)
{
	size_t kl = strlen(s->etcd_conf.prefix) + strlen(ID_KEYS);
	char num[16], n[DP_NAME_MAX];
	unsigned long v;

	if (kv->key.len <= kl || kv->key.len - kl >= sizeof(num) ||
	    memcmp(kv->key.data, s->etcd_conf.prefix, kl - strlen(ID_KEYS)) != 0 ||
	    memcmp(kv->key.data + kl - strlen(ID_KEYS), ID_KEYS, strlen(ID_KEYS)) != 0 ||
	    kv->value.len == 0 || kv->value.len >= DP_NAME_MAX)
		return false;
	memcpy(num, kv->key.data + kl, kv->key.len - kl);
	num[kv->key.len - kl] = '\0';
	v = strtoul(num, NULL, 10);
	memcpy(name, kv->value.data, kv->value.len);
	name[kv->value.len] = '\0';
	if (v == 0 || v > DP_REGISTRY_MAX || !dp_pipeline_name_valid(name))
		return false;
	*id = (uint32_t)v;
	*name_mod = 0;
	for (size_t i = 0; i < r->n_kvs; i++) {
		Corepipe__V1__PipelineInfo *pi;
		bool other;

		if (name_of(s, &r->kvs[i]->key, n) == NULL || strcmp(n, name) != 0)
			continue;
		pi = decode(&r->kvs[i]->value, name);
		other = pi != NULL && pi->id != 0 && pi->id != *id;
		if (pi != NULL)
			corepipe__v1__pipeline_info__free_unpacked(pi, NULL);
		*name_mod = r->kvs[i]->mod_revision;
		return other;
	}
	return true;
}

/*
 * Free the ids that pipelines deleted outside corepipe left held (etcdctl del prefix + name
 * deletes the name's key only, and its "#id/<id>" key would keep the id from every other name
 * for ever): every orphan id key of the Range @p r of the whole prefix (orphan_id()) is deleted
 * by a Txn comparing that it and its name's key are still as @p r saw them. Several instances
 * doing it at once: one Txn succeeds, the others' compares fail (nothing to do); a name put
 * again meanwhile keeps its new id. The main thread (load) or the watch thread.
 */
static void
free_orphan_ids(struct cp_store *s, const Etcdserverpb__RangeResponse *r)
{
	for (size_t i = 0; i < r->n_kvs; i++) {
		char name[DP_NAME_MAX], err[256];
		int64_t name_mod, committed = 0;
		uint32_t id;

		if (!orphan_id(s, r, r->kvs[i], name, &id, &name_mod))
			continue;
		if (txn_free_id(s, name, name_mod, id, r->kvs[i]->mod_revision, &committed, err,
				sizeof(err)) != 0)
			cp_log(CP_LOG_WARN,
			       "registry store: cannot free the id of a pipeline deleted outside "
			       "corepipe (retried at the next such delete or start)",
			       CP_LF_STR("pipeline", name), CP_LF_U64("id", id),
			       CP_LF_STR("error", err));
		else if (committed != 0)
			cp_log(
			    CP_LOG_INFO,
			    "registry store: freed the id of a pipeline deleted outside corepipe",
			    CP_LF_STR("pipeline", name), CP_LF_U64("id", id),
			    CP_LF_U64("revision", (uint64_t)committed));
	}
}

/*
 * Does watch batch @p w delete a pipeline key without its id key in the same revision (a
 * corepipe Delete's Txn deletes both: etcd never splits a revision's events over batches)?
 */
static bool
foreign_delete(const struct cp_store *s, const Etcdserverpb__WatchResponse *w)
{
	size_t kl = strlen(s->etcd_conf.prefix) + strlen(ID_KEYS);

	for (size_t i = 0; i < w->n_events; i++) {
		const Mvccpb__Event *ev = w->events[i];
		char name[DP_NAME_MAX];
		bool paired = false;

		if (ev->type != MVCCPB__EVENT__EVENT_TYPE__DELETE || ev->kv == NULL ||
		    name_of(s, &ev->kv->key, name) == NULL)
			continue;
		for (size_t j = 0; j < w->n_events && !paired; j++) {
			const Mvccpb__KeyValue *k = w->events[j]->kv;

			paired =
			    w->events[j]->type == MVCCPB__EVENT__EVENT_TYPE__DELETE && k != NULL &&
			    k->mod_revision == ev->kv->mod_revision && k->key.len > kl &&
			    memcmp(k->key.data + kl - strlen(ID_KEYS), ID_KEYS, strlen(ID_KEYS)) ==
				0;
		}
		if (!paired)
			return true;
	}
	return false;
}

/*
 * Compile the spec in @p value (which must be named @p name); *id is the fleet's id it holds
 * (0: none, a value written before ids were the fleet's: a plain PipelineSpec). NULL with
 * @p err.
 */
static struct dp_pipeline *
compile(struct cp_store *s, const char *name, const ProtobufCBinaryData *value, uint32_t *id,
	char *err, size_t errlen)
{
	Corepipe__V1__PipelineInfo *pi = decode(value, name);
	Corepipe__V1__PipelineSpec *legacy =
	    pi != NULL ? NULL : corepipe__v1__pipeline_spec__unpack(NULL, value->len, value->data);
	Corepipe__V1__PipelineSpec *spec = pi != NULL ? pi->spec : legacy;
	struct dp_pipeline *p = NULL;
	struct dp_spec view;
	struct dp_err e;

	*id = pi != NULL && pi->id <= DP_REGISTRY_MAX ? pi->id : 0;
	if (spec == NULL || strcmp(spec->name, name) != 0) {
		snprintf(err, errlen, "not a PipelineInfo or PipelineSpec named '%s'", name);
	} else if (cp_spec_view(spec, &view) != 0) {
		snprintf(err, errlen, "out of memory");
	} else {
		p = dp_pipeline_compile(&view, s->max_nodes, &e);
		cp_spec_view_free(&view);
		if (p == NULL)
			snprintf(err, errlen, "%s", e.msg);
	}
	if (pi != NULL)
		corepipe__v1__pipeline_info__free_unpacked(pi, NULL);
	if (legacy != NULL)
		corepipe__v1__pipeline_spec__free_unpacked(legacy, NULL);
	return p;
}

/*
 * Publish @p p at the fleet's @p id (0: the registry picks) and version @p rev. The id taken
 * here by another name (a config file pipeline of this instance only), or the name holding a
 * local id (its config file pipeline): a local id, with a warning. Consumes @p p.
 */
static int
publish(struct cp_store *s, struct dp_pipeline *p, uint32_t id, int64_t rev,
	struct dp_registry_info *info)
{
	int rc;

	dp_pipeline_ref(p);
	rc = dp_registry_put_at(s->reg, p, id, (uint64_t)rev, info);
	if (rc == -EEXIST && id != 0) {
		cp_log(CP_LOG_WARN,
		       "registry store: the fleet's id of this pipeline is taken here, it gets a "
		       "local one (UDP clients of this instance must use GetPipeline's id)",
		       CP_LF_STR("pipeline", p->spec->name), CP_LF_U64("fleet_id", id));
		dp_pipeline_ref(p);
		rc = dp_registry_put_at(s->reg, p, 0, (uint64_t)rev, info);
	}
	dp_pipeline_unref(p);
	return rc;
}

/*
 * Publish @p name at revision @p rev (value NULL: delete it) unless the registry has it at that
 * revision or later already. The config file's pipelines give way to a put, never to a delete.
 */
static void
apply(struct cp_store *s, const char *name, const ProtobufCBinaryData *value, int64_t rev)
{
	struct dp_pipeline *cur = dp_registry_get(s->reg, name);
	bool newer = cur == NULL || cur->from_file || cur->version < (uint64_t)rev;
	struct dp_registry_info info;
	char err[256];

	if (value == NULL) {
		if (cur != NULL && !cur->from_file && cur->version < (uint64_t)rev &&
		    dp_registry_delete(s->reg, name) == 0)
			cp_log(CP_LOG_INFO, "pipeline deleted", CP_LF_STR("pipeline", name),
			       CP_LF_U64("revision", (uint64_t)rev), CP_LF_STR("source", "etcd"));
	} else if (newer) {
		uint32_t id;
		struct dp_pipeline *p = compile(s, name, value, &id, err, sizeof(err));

		if (p == NULL)
			cp_log(CP_LOG_ERROR,
			       "registry store: etcd holds a pipeline that does not "
			       "compile here: skipped",
			       CP_LF_STR("pipeline", name), CP_LF_U64("revision", (uint64_t)rev),
			       CP_LF_STR("error", err));
		else if (publish(s, p, id, rev, &info) == 0)
			cp_log(CP_LOG_INFO, info.replaced ? "pipeline replaced" : "pipeline added",
			       CP_LF_STR("pipeline", name), CP_LF_U64("id", info.id),
			       CP_LF_U64("version", info.version), CP_LF_STR("source", "etcd"));
		else
			cp_log(CP_LOG_ERROR, "registry store: cannot publish a pipeline from etcd",
			       CP_LF_STR("pipeline", name));
	}
	dp_pipeline_unref(cur);
}

/* ==== Load, put, delete ===================================================================== */

static int
collect_names(struct dp_pipeline *p, void *arg)
{
	Etcdserverpb__RangeResponse *r = ((void **)arg)[0];
	struct cp_store *s = ((void **)arg)[1];
	char n[DP_NAME_MAX];

	if (p->from_file)
		return 0;
	for (size_t i = 0; i < r->n_kvs; i++) {
		const char *name = name_of(s, &r->kvs[i]->key, n);

		if (name != NULL && strcmp(name, p->name) == 0)
			return 0;
	}
	/* Not in etcd at the sync's revision: deleted meanwhile (a compacted watch missed it). */
	if (p->version < (uint64_t)r->header->revision && dp_registry_delete(s->reg, p->name) == 0)
		cp_log(CP_LOG_INFO, "pipeline deleted", CP_LF_STR("pipeline", p->name),
		       CP_LF_STR("source", "etcd resync"));
	return 0;
}

/* Make the registry's API pipelines what the Range @p r says. */
static unsigned
sync_all(struct cp_store *s, Etcdserverpb__RangeResponse *r)
{
	void *arg[2] = {r, s};
	unsigned n = 0;

	for (size_t i = 0; i < r->n_kvs; i++) {
		char name[DP_NAME_MAX];

		if (name_of(s, &r->kvs[i]->key, name) == NULL)
			continue;
		apply(s, name, &r->kvs[i]->value, r->kvs[i]->mod_revision);
		n++;
	}
	dp_registry_for_each(s->reg, collect_names, arg);
	return n;
}

/* Split registry.etcd_endpoint ("a:1, b:2") into e->ep. @return 0 or -EINVAL with @p err. */
static int
parse_endpoints(struct cp_store *s, char *err, size_t errlen)
{
	struct cp_store_etcd *e = s->etcd;
	const char *p = s->etcd_conf.endpoints;

	while (*p != '\0') {
		size_t skip = strspn(p, " ,"), len;

		p += skip;
		len = strcspn(p, " ,");
		if (len == 0)
			break;
		if (e->n_ep == ENDPOINTS_MAX || len >= ENDPOINT_MAX) {
			snprintf(err, errlen,
				 "registry.etcd_endpoint: at most %d endpoints of at most %d bytes",
				 ENDPOINTS_MAX, ENDPOINT_MAX - 1);
			return -EINVAL;
		}
		memcpy(e->ep[e->n_ep].addr, p, len);
		e->ep[e->n_ep++].addr[len] = '\0';
		p += len;
	}
	if (e->n_ep == 0) {
		snprintf(err, errlen, "registry.etcd_endpoint: no endpoint");
		return -EINVAL;
	}
	return 0;
}

/*
 * Read @p path (setting @p what; @p pem: it must be PEM) into *out (free it; NULL: the setting
 * is empty). @return 0 or -errno with @p err naming the setting and the file.
 */
static int
read_setting(const char *what, const char *path, bool pem, char **out, char *err, size_t errlen)
{
	char why[512];
	size_t len;
	int rc;

	*out = NULL;
	if (path[0] == '\0')
		return 0;
	rc = cp_file_read(path, 1u << 20, out, &len, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", what, why);
	else if (pem && strstr(*out, "-----BEGIN") == NULL) {
		snprintf(err, errlen, "%s: %s: not a PEM file", what, path);
		free(*out);
		*out = NULL;
		rc = -EINVAL;
	}
	return rc;
}

/* Wipe and free a buffer that held a secret. */
static void
free_secret(char *p)
{
	if (p != NULL)
		sodium_memzero(p, strlen(p));
	free(p);
}

/* The password: registry.etcd_password_file's first line. @return 0 or -errno with @p err. */
static int
read_password(struct cp_store *s, char *err, size_t errlen)
{
	char *buf;
	size_t n;
	int rc = read_setting("registry.etcd_password_file", s->etcd_conf.password_file, false,
			      &buf, err, errlen);

	if (rc != 0 || buf == NULL)
		return rc;
	n = strcspn(buf, "\r\n");
	if (n == 0 || n >= sizeof(s->etcd->password)) {
		snprintf(err, errlen, "registry.etcd_password_file: %s: %s",
			 s->etcd_conf.password_file,
			 n == 0 ? "empty first line" : "first line too long");
		rc = -EINVAL;
	} else {
		memcpy(s->etcd->password, buf, n);
		s->etcd->password[n] = '\0';
	}
	free_secret(buf);
	return rc;
}

/* The channel credentials: TLS (registry.etcd_ca_file set) or plaintext. NULL with @p err. */
static grpc_channel_credentials *
credentials(struct cp_store *s, char *err, size_t errlen)
{
	const struct cp_store_etcd_conf *c = &s->etcd_conf;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_channel_credentials *creds = NULL;
	char *ca = NULL, *cert = NULL, *key = NULL;

	if (c->ca_file[0] == '\0')
		return grpc_insecure_credentials_create();
	if (read_setting("registry.etcd_ca_file", c->ca_file, true, &ca, err, errlen) == 0 &&
	    read_setting("registry.etcd_cert_file", c->cert_file, true, &cert, err, errlen) == 0 &&
	    read_setting("registry.etcd_key_file", c->key_file, true, &key, err, errlen) == 0) {
		pair.cert_chain = cert;
		pair.private_key = key;
		creds = grpc_ssl_credentials_create(ca, cert != NULL ? &pair : NULL, NULL, NULL);
		if (creds == NULL)
			snprintf(err, errlen, "registry.etcd_*_file: gRPC refused the TLS files");
	}
	free(ca);
	free(cert);
	free_secret(key);
	return creds;
}

static int
etcd_load(struct cp_store *s, unsigned *n_loaded, char *err, size_t errlen)
{
	/* etcd back after an outage is seen within WATCH_BACKOFF_MAX_MS (the core's default
	 * reconnect backoff grows to 120 s); a silent peer within the keepalive. */
	grpc_arg args[] = {
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
	     .value.integer = WATCH_BACKOFF_MIN_MS},
	    /* The core also takes this as its minimum connect timeout (TCP, TLS and etcd's
	     * SETTINGS in one attempt): at 100 ms a loaded machine timed attempts out "before
	     * receiving SETTINGS frame" until the start-up read gave up. */
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
	     .value.integer = CONNECT_MIN_MS},
	    {.type = GRPC_ARG_INTEGER,
	     .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
	     .value.integer = WATCH_BACKOFF_MAX_MS},
	    {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 10000},
	    {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 5000},
	    /* No retry filter: in gRPC 1.51 it asserts (aborting the process) on trailing
	     * metadata without a status, which a TLS handshake refused mid-run produced here
	     * twice in CI (grpc/grpc#34683, fixed upstream in 2026). The store retries on its
	     * own: the watch re-opens with backoff, a failed write answers UNAVAILABLE. */
	    {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
	    /* Last: only with registry.etcd_server_name. */
	    {.type = GRPC_ARG_STRING,
	     .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
	     .value.string = s->etcd_conf.server_name},
	};
	grpc_channel_args cargs = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
	grpc_channel_credentials *creds;
	Etcdserverpb__RangeResponse *r;
	int rc;

	s->etcd = calloc(1, sizeof(*s->etcd));
	if (s->etcd == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->etcd->token_lock, NULL);
	s->etcd->tls = s->etcd_conf.ca_file[0] != '\0';
	if (s->etcd_conf.server_name[0] == '\0')
		cargs.num_args--;
	rc = parse_endpoints(s, err, errlen);
	if (rc == 0)
		rc = read_password(s, err, errlen);
	if (rc != 0)
		return rc;
	creds = credentials(s, err, errlen);
	if (creds == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < s->etcd->n_ep; i++)
		s->etcd->ep[i].ch = grpc_channel_create(s->etcd->ep[i].addr, creds, &cargs);
	grpc_channel_credentials_release(creds);
	/* etcd starting at the same time as we do: a few seconds' grace, then refuse start. */
	for (int i = 0; (rc = range(s, NULL, &r, err, errlen)) == -EAGAIN && i < LOAD_ATTEMPTS;
	     i++) {
		if (i == 0)
			cp_log(CP_LOG_WARN, "registry store: etcd does not answer yet, retrying",
			       CP_LF_STR("error", err), CP_LF_INT("attempts", LOAD_ATTEMPTS));
		sleep_ms(LOAD_RETRY_MS);
	}
	if (rc != 0)
		return rc;
	*n_loaded = sync_all(s, r);
	free_orphan_ids(s, r);
	s->etcd->rev = r->header != NULL ? r->header->revision : 0;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	cp_log(
	    CP_LOG_INFO, "registry store: etcd read",
	    CP_LF_STR("endpoint",
		      s->etcd->ep[atomic_load_explicit(&s->etcd->cur, memory_order_relaxed)].addr),
	    CP_LF_BOOL("tls", s->etcd->tls), CP_LF_STR("user", s->etcd_conf.user),
	    CP_LF_STR("prefix", s->etcd_conf.prefix), CP_LF_INT("pipelines", *n_loaded),
	    CP_LF_U64("revision", (uint64_t)s->etcd->rev));
	return 0;
}

/* @p spec with @p id as a key's value (a PipelineInfo: decode()). @return 0 or -ENOMEM. */
static int
encode(const Corepipe__V1__PipelineSpec *spec, uint32_t id, ProtobufCBinaryData *value)
{
	Corepipe__V1__PipelineInfo pi = COREPIPE__V1__PIPELINE_INFO__INIT;

	pi.spec = (Corepipe__V1__PipelineSpec *)spec;
	pi.id = id;
	value->len = protobuf_c_message_get_packed_size(&pi.base);
	value->data = malloc(value->len + 1);
	if (value->data == NULL)
		return -ENOMEM;
	protobuf_c_message_pack(&pi.base, value->data);
	return 0;
}

static int
etcd_put(struct cp_store *s, struct dp_pipeline *p, struct dp_registry_info *info, char *err,
	 size_t errlen)
{
	Corepipe__V1__PipelineSpec spec;
	int64_t committed = 0;
	uint32_t id = 0;
	int rc = 0;

	if (cp_pb_spec_from(p->spec, &spec) != 0) {
		dp_pipeline_unref(p);
		return -ENOMEM;
	}
	/* The name's id in the fleet, or a free one claimed in the same Txn as the put. */
	for (int i = 0; i < CAS_ATTEMPTS && committed == 0 && rc == 0; i++) {
		ProtobufCBinaryData value;
		uint32_t claim = 0;
		int64_t mod;

		rc = current(s, p->spec->name, &mod, &id, err, errlen);
		if (rc == 0 && id == 0) {
			rc = free_id(s, p->spec->name, &claim, err, errlen);
			id = claim;
		}
		if (rc == 0)
			rc = encode(&spec, id, &value);
		if (rc == 0) {
			rc = txn(s, p->spec->name, mod, &value, claim, 0, &committed, err, errlen);
			free(value.data);
		}
	}
	cp_pb_spec_free(&spec);
	if (rc == 0 && committed == 0) {
		snprintf(err, errlen, "etcd: the key kept changing under %d attempts",
			 CAS_ATTEMPTS);
		rc = -EBUSY;
	}
	if (rc != 0) {
		dp_pipeline_unref(p);
		return rc;
	}
	{
		struct dp_pipeline *cur = dp_registry_get(s->reg, p->spec->name);

		if (cur != NULL && !cur->from_file && cur->version >= (uint64_t)committed) {
			/* The watch applied it (or a later one) already. */
			info->id = p->id = cur->id;
			info->version = p->version = cur->version;
			info->replaced = 1;
			dp_pipeline_unref(cur);
			dp_pipeline_unref(p);
			return 0;
		}
		dp_pipeline_unref(cur);
	}
	return publish(s, p, id, committed, info);
}

static int
etcd_delete(struct cp_store *s, const char *name, char *err, size_t errlen)
{
	int64_t committed = 0;
	int rc = 0;

	for (int i = 0; i < CAS_ATTEMPTS && committed == 0 && rc == 0; i++) {
		int64_t mod;
		uint32_t id;

		rc = current(s, name, &mod, &id, err, errlen);
		if (rc == 0 && mod == 0)
			return -ENOENT;
		if (rc == 0) /* the name and its id go together */
			rc = txn(s, name, mod, NULL, 0, id, &committed, err, errlen);
	}
	if (rc == 0 && committed == 0) {
		snprintf(err, errlen, "etcd: the key kept changing under %d attempts",
			 CAS_ATTEMPTS);
		rc = -EBUSY;
	}
	if (rc != 0)
		return rc;
	apply(s, name, NULL, committed);
	return 0;
}

/* ==== The watch ============================================================================= */

/* A batch of events (or a full Range, for a resync) applied on the control thread. */
struct watch_job {
	struct cp_ctl_job job;
	struct cp_store *s;
	Etcdserverpb__WatchResponse *w; /* events; or NULL */
	Etcdserverpb__RangeResponse *r; /* resync; or NULL */
};

static void
watch_job_run(struct cp_ctl_job *job)
{
	struct watch_job *j = caa_container_of(job, struct watch_job, job);

	if (j->r != NULL) {
		sync_all(j->s, j->r);
		protobuf_c_message_free_unpacked(&j->r->base, NULL);
	}
	for (size_t i = 0; j->w != NULL && i < j->w->n_events; i++) {
		const Mvccpb__Event *ev = j->w->events[i];
		char name[DP_NAME_MAX];

		if (ev->kv == NULL || name_of(j->s, &ev->kv->key, name) == NULL)
			continue;
		apply(j->s, name,
		      ev->type == MVCCPB__EVENT__EVENT_TYPE__PUT ? &ev->kv->value : NULL,
		      ev->kv->mod_revision);
	}
	if (j->w != NULL)
		protobuf_c_message_free_unpacked(&j->w->base, NULL);
	free(j);
}

static void
submit(struct cp_store *s, Etcdserverpb__WatchResponse *w, Etcdserverpb__RangeResponse *r)
{
	struct watch_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		if (w != NULL)
			protobuf_c_message_free_unpacked(&w->base, NULL);
		if (r != NULL)
			protobuf_c_message_free_unpacked(&r->base, NULL);
		return;
	}
	j->job.run = watch_job_run;
	j->s = s;
	j->w = w;
	j->r = r;
	cp_ctl_submit(s->etcd->ctl, &j->job);
}

/* The watch call's batches: which have completed, and how. */
struct tags {
	char send, recv, status; /* their addresses are the tags */
	bool done[3], ok[3];
};

static int
tag_index(struct tags *t, void *tag)
{
	return tag == &t->send ? 0 : tag == &t->recv ? 1 : 2;
}

/*
 * Wait for @p tag on @p cq, cancelling @p call when asked to stop; completions of the other
 * batches seen meanwhile are recorded, not lost. @return the batch's success.
 */
static bool
wait_tag(struct cp_store_etcd *e, grpc_completion_queue *cq, grpc_call *call, struct tags *t,
	 void *tag)
{
	int want = tag_index(t, tag);
	bool cancelled = false;

	while (!t->done[want]) {
		grpc_event ev = grpc_completion_queue_next(
		    cq,
		    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				 gpr_time_from_millis(WATCH_POLL_MS, GPR_TIMESPAN)),
		    NULL);

		if (ev.type == GRPC_OP_COMPLETE) {
			int i = tag_index(t, ev.tag);

			t->done[i] = true;
			t->ok[i] = ev.success != 0;
		}
		if (!cancelled && atomic_load_explicit(&e->stop, memory_order_relaxed)) {
			grpc_call_cancel(call, NULL);
			cancelled = true;
		}
	}
	t->done[want] = false; /* the recv batch is started again */
	return t->ok[want];
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The watch lost etcd (@p why): logged once per outage, the data plane keeps its registry. */
static void
went_down(struct cp_store *s, unsigned i, int status, const char *why)
{
	struct cp_store_etcd *e = s->etcd;

	if (!e->up || atomic_load_explicit(&e->stop, memory_order_relaxed))
		return;
	e->up = false;
	cp_log(CP_LOG_WARN, "registry store: etcd unreachable, serving the last registry known",
	       CP_LF_STR("endpoint", e->ep[i].addr), CP_LF_BOOL("tls", e->tls),
	       CP_LF_INT("status", status), CP_LF_STR("error", why),
	       CP_LF_U64("revision", (uint64_t)e->rev));
}

/* A pipeline was deleted outside corepipe: free the ids left held (free_orphan_ids()). */
static void
sweep_ids(struct cp_store *s)
{
	Etcdserverpb__RangeResponse *r;
	char err[256];

	if (range(s, NULL, &r, err, sizeof(err)) != 0) {
		cp_log(CP_LOG_WARN,
		       "registry store: cannot free the id of a pipeline deleted outside corepipe "
		       "(retried at the next such delete or start)",
		       CP_LF_STR("error", err));
		return;
	}
	free_orphan_ids(s, r);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/*
 * One watch stream on endpoint @p ep with @p token, from e->rev + 1, until it breaks or we
 * stop. A stream that breaks hands over to the next endpoint; one etcd cancels (its token
 * expired) drops the token, so the next stream authenticates again.
 */
static void
watch_stream(struct cp_store *s, unsigned ep, const char *token)
{
	struct cp_store_etcd *e = s->etcd;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	Etcdserverpb__WatchRequest rq = ETCDSERVERPB__WATCH_REQUEST__INIT;
	Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	grpc_metadata_array md_init, md_trail;
	grpc_metadata md;
	grpc_status_code code = GRPC_STATUS_OK;
	grpc_slice details = grpc_empty_slice();
	char key[256], end[256];
	struct tags t = {0};
	grpc_byte_buffer *send, *recv = NULL;
	grpc_op ops[3];
	grpc_call *call;
	grpc_slice sl;
	bool broken = true;

	memset(&md, 0, sizeof(md));
	md.key = grpc_slice_from_static_string("token");
	md.value = grpc_slice_from_copied_string(token);
	key_of(s, NULL, key, sizeof(key));
	prefix_end(s, end, sizeof(end));
	cr.key = bin(key);
	cr.range_end = bin(end);
	cr.start_revision = e->rev + 1;
	rq.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	rq.create_request = &cr;
	sl = grpc_slice_malloc(protobuf_c_message_get_packed_size(&rq.base));
	protobuf_c_message_pack(&rq.base, GRPC_SLICE_START_PTR(sl));
	send = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	call = grpc_channel_create_call(e->ep[ep].ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
					grpc_slice_from_static_string("/etcdserverpb.Watch/Watch"),
					NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&md_init);
	grpc_metadata_array_init(&md_trail);
	/* The status first (it completes when the stream ends), then the create request. */
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &md_trail;
	ops[0].data.recv_status_on_client.status = &code;
	ops[0].data.recv_status_on_client.status_details = &details;
	grpc_call_start_batch(call, ops, 1, &t.status, NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = token[0] != '\0' ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = &md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[2].data.recv_initial_metadata.recv_initial_metadata = &md_init;
	grpc_call_start_batch(call, ops, 3, &t.send, NULL);
	if (wait_tag(e, cq, call, &t, &t.send)) {
		for (;;) {
			Etcdserverpb__WatchResponse *w;
			grpc_byte_buffer_reader rd;
			grpc_slice all;

			memset(ops, 0, sizeof(ops));
			ops[0].op = GRPC_OP_RECV_MESSAGE;
			ops[0].data.recv_message.recv_message = &recv;
			recv = NULL;
			if (grpc_call_start_batch(call, ops, 1, &t.recv, NULL) != GRPC_CALL_OK ||
			    !wait_tag(e, cq, call, &t, &t.recv) || recv == NULL)
				break;
			grpc_byte_buffer_reader_init(&rd, recv);
			all = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
			grpc_byte_buffer_destroy(recv);
			recv = NULL;
			w = etcdserverpb__watch_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
								 GRPC_SLICE_START_PTR(all));
			grpc_slice_unref(all);
			if (w == NULL)
				break;
			if (w->created && !e->up) {
				e->up = true;
				cp_log(CP_LOG_INFO, "registry store: watching etcd",
				       CP_LF_STR("endpoint", e->ep[ep].addr),
				       CP_LF_U64("from_revision", (uint64_t)e->rev + 1));
			}
			if (w->compact_revision != 0) {
				Etcdserverpb__RangeResponse *r;
				char err[256];

				/* The revisions we missed are gone: read everything again. */
				cp_log(
				    CP_LOG_WARN,
				    "registry store: etcd compacted past our revision, "
				    "re-reading",
				    CP_LF_U64("revision", (uint64_t)e->rev),
				    CP_LF_U64("compact_revision", (uint64_t)w->compact_revision));
				protobuf_c_message_free_unpacked(&w->base, NULL);
				if (range(s, NULL, &r, err, sizeof(err)) == 0) {
					e->rev = r->header != NULL ? r->header->revision : e->rev;
					free_orphan_ids(s, r);
					submit(s, NULL, r);
				}
				broken = false;
				break;
			}
			if (w->canceled) {
				/* e.g. "permission denied": the token expired meanwhile (or the
				 * user may not read the prefix: then the backoff grows). */
				char why[300];

				snprintf(why, sizeof(why), "etcd cancelled the watch: %s",
					 w->cancel_reason);
				went_down(s, ep, 0, why);
				protobuf_c_message_free_unpacked(&w->base, NULL);
				token_drop(e, token);
				broken = false;
				break;
			}
			for (size_t i = 0; i < w->n_events; i++)
				if (w->events[i]->kv != NULL &&
				    w->events[i]->kv->mod_revision > e->rev)
					e->rev = w->events[i]->kv->mod_revision;
			if (w->n_events > 0) {
				bool foreign = foreign_delete(s, w);

				submit(s, w, NULL);
				if (foreign)
					sweep_ids(s);
			} else {
				protobuf_c_message_free_unpacked(&w->base, NULL);
			}
		}
	}
	grpc_call_cancel(call, NULL);
	wait_tag(e, cq, call, &t, &t.status);
	if (broken && !atomic_load_explicit(&e->stop, memory_order_relaxed)) {
		char *d = grpc_slice_to_c_string(details), why[1024];

		describe(s, ep, code, d, why, sizeof(why));
		went_down(s, ep, code, why);
		if (token_refused(code, d))
			token_drop(e, token);
		else
			next_endpoint(s, ep, d);
		gpr_free(d);
	}
	grpc_slice_unref(details);
	grpc_slice_unref(md.value);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&md_init);
	grpc_metadata_array_destroy(&md_trail);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

/* One watch stream on the endpoint in use, authenticated first (registry.etcd_user). */
static void
watch_once(struct cp_store *s)
{
	struct cp_store_etcd *e = s->etcd;
	unsigned ep = atomic_load_explicit(&e->cur, memory_order_relaxed);
	char token[TOKEN_MAX], why[512];
	int rc = token_get(s, ep, token, why, sizeof(why));

	if (rc == 0) {
		watch_stream(s, ep, token);
		return;
	}
	went_down(s, ep, 0, why);
	if (rc == -EAGAIN)
		next_endpoint(s, ep, why);
}

static void *
watch_main(void *arg)
{
	struct cp_store *s = arg;
	struct cp_store_etcd *e = s->etcd;
	unsigned backoff = WATCH_BACKOFF_MIN_MS;

	pthread_setname_np(pthread_self(), "cp-etcd-watch");
	e->up = true; /* the load just read it */
	while (!atomic_load_explicit(&e->stop, memory_order_relaxed)) {
		bool was_up;

		watch_once(s);
		was_up = e->up;
		if (atomic_load_explicit(&e->stop, memory_order_relaxed))
			break;
		/* Broken: back off (bounded, doubling while etcd stays away). */
		for (unsigned waited = 0;
		     waited < backoff && !atomic_load_explicit(&e->stop, memory_order_relaxed);
		     waited += WATCH_POLL_MS / 4)
			sleep_ms(WATCH_POLL_MS / 4);
		backoff = was_up ? WATCH_BACKOFF_MIN_MS
				 : (backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS
								       : backoff * 2);
	}
	return NULL;
}

static int
etcd_start(struct cp_store *s, struct cp_ctl *ctl)
{
	int rc;

	s->etcd->ctl = ctl;
	rc = pthread_create(&s->etcd->thread, NULL, watch_main, s);
	if (rc != 0)
		return -rc;
	s->etcd->started = true;
	return 0;
}

static void
etcd_close(struct cp_store *s)
{
	struct cp_store_etcd *e = s->etcd;

	if (e == NULL)
		return;
	if (e->started) {
		atomic_store_explicit(&e->stop, true, memory_order_relaxed);
		pthread_join(e->thread, NULL);
	}
	for (unsigned i = 0; i < e->n_ep; i++)
		if (e->ep[i].ch != NULL)
			grpc_channel_destroy(e->ep[i].ch);
	sodium_memzero(e->password, sizeof(e->password));
	sodium_memzero(e->token, sizeof(e->token));
	pthread_mutex_destroy(&e->token_lock);
	free(e);
	s->etcd = NULL;
}

const struct cp_store_backend cp_store_etcd_backend = {
    .load = etcd_load,
    .start = etcd_start,
    .close = etcd_close,
    .put = etcd_put,
    .del = etcd_delete,
};

/*
 * corepipectl's connection: one channel, one completion queue; unary calls wait for their one
 * batch. Also the helpers every command uses for errors and output.
 */
#include "client/ctl/ctl.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const g_codes[] = {
    "OK",	 "CANCELLED",	   "UNKNOWN",		"INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",	 "OUT_OF_RANGE",   "UNIMPLEMENTED",	"INTERNAL",	      "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

const char *
ctl_code_name(int code)
{
	return code >= 0 && code < (int)(sizeof(g_codes) / sizeof(g_codes[0])) ? g_codes[code]
									       : "UNKNOWN";
}

void
ctl_errf(const struct ctl_opts *o, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", o->progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
ctl_json_print(json_t *j)
{
	if (j == NULL) {
		fprintf(stderr, "corepipectl: out of memory\n");
		return;
	}
	json_dumpf(j, stdout, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
	fputc('\n', stdout);
	fflush(stdout);
	json_decref(j);
}

int
ctl_status_fail(const struct ctl_opts *o, const char *what, const struct ctl_status *st)
{
	int rc = CTL_EXIT_STATUS_BASE + (int)st->code;

	if (o->json) {
		json_t *j = json_pack("{s:{s:s,s:s,s:i,s:s}}", "error", "call", what, "code",
				      ctl_code_name(st->code), "code_number", (int)st->code,
				      "message", st->msg);

		if (st->pushback_ms && j != NULL)
			json_object_set_new(json_object_get(j, "error"), "retry_pushback_ms",
					    json_integer(st->pushback_ms));
		ctl_json_print(j);
	}
	fprintf(stderr, "%s: %s: %s: %s", o->progname, what, ctl_code_name(st->code), st->msg);
	if (st->pushback_ms)
		fprintf(stderr, " (retry after %u ms)", st->pushback_ms);
	if (st->code == GRPC_STATUS_UNAUTHENTICATED || st->code == GRPC_STATUS_PERMISSION_DENIED)
		fprintf(stderr, "\n%s: hint: pass a token with --token or $COREPIPE_TOKEN",
			o->progname);
	fputc('\n', stderr);
	return rc;
}

int
ctl_read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	uint8_t *b;
	int rc = 0;

	if (f == NULL)
		return -errno;
	b = malloc(cap + 1);
	while (b != NULL) {
		size_t r = fread(b + n, 1, cap - n, f);

		n += r;
		if (r == 0) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
		if (n == cap) {
			uint8_t *nb = realloc(b, 2 * cap + 1);

			if (nb == NULL) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	if (f != stdin)
		fclose(f);
	if (b == NULL)
		return -ENOMEM;
	if (rc != 0) {
		free(b);
		return rc;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

/* A PEM file into a string, or NULL (errno). */
static char *
read_pem(const char *path)
{
	uint8_t *b = NULL; /* for make analyze: fopen()'s failure always sets errno, so rc != 0 */
	size_t n;
	int rc = ctl_read_file(path, &b, &n);

	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	return (char *)b;
}

gpr_timespec
ctl_deadline(const struct ctl_opts *o, bool stream)
{
	if (stream && !o->timeout_set)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(o->timeout_ms, GPR_TIMESPAN));
}

int
ctl_connect(struct ctl_conn *c, const struct ctl_opts *o)
{
	grpc_channel_credentials *creds;
	grpc_arg args[2];
	grpc_channel_args cargs = {.num_args = 0, .args = args};
	gpr_timespec dl;
	grpc_connectivity_state st;
	static char auth[1024];

	memset(c, 0, sizeof(*c));
	c->o = o;
	if (!o->insecure && (o->cacert || o->cert)) {
		char *ca = NULL, *cert = NULL, *key = NULL;
		grpc_ssl_pem_key_cert_pair pair;

		if ((o->cert == NULL) != (o->key == NULL))
			return ctl_err(o, CTL_EXIT_USAGE, "--cert and --key go together");
		if (o->cacert && (ca = read_pem(o->cacert)) == NULL)
			return ctl_err(o, CTL_EXIT_INPUT, "--cacert %s: %s", o->cacert,
				       strerror(errno));
		if (o->cert &&
		    ((cert = read_pem(o->cert)) == NULL || (key = read_pem(o->key)) == NULL))
			return ctl_err(o, CTL_EXIT_INPUT, "--cert/--key: %s", strerror(errno));
		pair.private_key = key;
		pair.cert_chain = cert;
		creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
		free(ca);
		free(cert);
		free(key);
		if (creds == NULL)
			return ctl_err(o, CTL_EXIT_INPUT, "TLS credentials could not be created");
		if (o->server_name)
			args[cargs.num_args++] =
			    (grpc_arg){.type = GRPC_ARG_STRING,
				       .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
				       .value.string = (char *)o->server_name};
	} else {
		creds = grpc_insecure_credentials_create();
	}
	args[cargs.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
					    .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
					    .value.integer = -1};
	c->ch = grpc_channel_create(o->target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_next(NULL);
	for (unsigned i = 0; i < o->n_md; i++) {
		c->md[c->n_md].key = grpc_slice_from_static_string(o->md_key[i]);
		c->md[c->n_md].value = grpc_slice_from_static_string(o->md_val[i]);
		c->n_md++;
	}
	if (o->token != NULL) {
		snprintf(auth, sizeof(auth), "Bearer %s", o->token);
		c->md[c->n_md].key = grpc_slice_from_static_string("authorization");
		c->md[c->n_md].value = grpc_slice_from_static_string(auth);
		c->n_md++;
	}
	/* Wait for the connection, so that "cannot connect" is told apart from a server's
	 * UNAVAILABLE answer. */
	dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			  gpr_time_from_millis(o->connect_timeout_ms, GPR_TIMESPAN));
	for (;;) {
		grpc_event ev;

		st = grpc_channel_check_connectivity_state(c->ch, 1);
		if (st == GRPC_CHANNEL_READY)
			return 0;
		if (st == GRPC_CHANNEL_TRANSIENT_FAILURE)
			break; /* refused or failed handshake: no point in waiting for the retry */
		if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), dl) >= 0)
			break;
		grpc_channel_watch_connectivity_state(c->ch, st, dl, c->cq, NULL);
		ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			break; /* the deadline passed */
	}
	ctl_errf(o, "cannot connect to %s (%s)%s", o->target,
		 st == GRPC_CHANNEL_TRANSIENT_FAILURE ? "connection failed"
						      : "no connection within --connect-timeout",
		 (o->cacert || o->cert) && !o->insecure
		     ? ": is the server speaking TLS with a certificate your --cacert trusts?"
		     : ": is corepiped running there (plaintext; --cacert for TLS)?");
	if (o->json) {
		json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", "CONNECT", "message",
				      "cannot connect");

		json_object_set_new(json_object_get(j, "error"), "target", json_string(o->target));
		ctl_json_print(j);
	}
	ctl_disconnect(c);
	return CTL_EXIT_CONNECT;
}

void
ctl_disconnect(struct ctl_conn *c)
{
	if (c->ch != NULL) {
		grpc_channel_destroy(c->ch);
		c->ch = NULL;
	}
	if (c->cq != NULL) {
		grpc_completion_queue_shutdown(c->cq);
		while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
			   .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(c->cq);
		c->cq = NULL;
	}
}

int
ctl_unary(struct ctl_conn *c, const char *method, const ProtobufCMessage *req,
	  const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
	  struct ctl_status *st)
{
	grpc_op ops[6];
	grpc_metadata_array md_init, md_trail;
	grpc_byte_buffer *send, *recv = NULL;
	grpc_slice details, s;
	grpc_call *call;
	grpc_event ev;
	size_t n = protobuf_c_message_get_packed_size(req);
	char *d;

	*resp = NULL;
	memset(st, 0, sizeof(*st));
	s = grpc_slice_malloc(n);
	protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(s));
	send = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
					grpc_slice_from_static_string(method), NULL,
					ctl_deadline(c->o, false), NULL);
	grpc_metadata_array_init(&md_init);
	grpc_metadata_array_init(&md_trail);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->n_md;
	ops[0].data.send_initial_metadata.metadata = c->md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_init;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &md_trail;
	ops[5].data.recv_status_on_client.status = &st->code;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
		grpc_byte_buffer_destroy(send);
		grpc_call_unref(call);
		grpc_metadata_array_destroy(&md_init);
		grpc_metadata_array_destroy(&md_trail);
		return -1;
	}
	do
		ev = grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	while (ev.type == GRPC_OP_COMPLETE && ev.tag != call);
	d = grpc_slice_to_c_string(details);
	snprintf(st->msg, sizeof(st->msg), "%s", d);
	gpr_free(d);
	grpc_slice_unref(details);
	for (size_t i = 0; i < md_trail.count; i++)
		if (grpc_slice_str_cmp(md_trail.metadata[i].key, "grpc-retry-pushback-ms") == 0) {
			char *v = grpc_slice_to_c_string(md_trail.metadata[i].value);

			st->pushback_ms = (uint32_t)strtoul(v, NULL, 10);
			gpr_free(v);
		}
	if (st->code == GRPC_STATUS_OK) {
		grpc_byte_buffer_reader rd;

		if (recv != NULL && grpc_byte_buffer_reader_init(&rd, recv)) {
			s = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
			*resp = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(s),
							  GRPC_SLICE_START_PTR(s));
			grpc_slice_unref(s);
		}
		if (*resp == NULL) {
			st->code = GRPC_STATUS_INTERNAL;
			snprintf(st->msg, sizeof(st->msg), "the answer is not a valid %s",
				 resp_desc->name);
		}
	}
	if (recv != NULL)
		grpc_byte_buffer_destroy(recv);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&md_init);
	grpc_metadata_array_destroy(&md_trail);
	grpc_call_unref(call);
	return 0;
}

/*
 * corepipe-bench's gRPC channels: credentials, channel arguments, metadata, connecting (see
 * corepipe_bench_grpc.h).
 */
#include "perf/corepipe_bench_grpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>

#define CONNECT_S 20 /* every channel READY within this, or the run starts without it */

/* ==== Set-up ================================================================================ */

/* The whole of file @p path, NUL-terminated; exits 2 naming @p what when it cannot. */
static char *
read_whole(const char *path, const char *what)
{
	FILE *f = fopen(path, "rb");
	char msg[96];
	char *s;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
		snprintf(msg, sizeof(msg), "%s: cannot read the file", what);
		cb_die(msg);
	}
	s = cb_xcalloc((size_t)n + 1, 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		snprintf(msg, sizeof(msg), "%s: short read", what);
		cb_die(msg);
	}
	fclose(f);
	return s;
}

static grpc_channel_credentials *
make_creds(const struct cb_opts *o)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_ssl_pem_key_cert_pair pair;
	grpc_channel_credentials *c;

	if (o->insecure || (!o->cacert && !o->cert))
		return grpc_insecure_credentials_create();
	if (o->cacert)
		ca = read_whole(o->cacert, "--cacert");
	if (o->cert || o->key) {
		if (!o->cert || !o->key)
			cb_die("--cert and --key go together");
		cert = read_whole(o->cert, "--cert/--key");
		key = read_whole(o->key, "--cert/--key");
		pair.private_key = key;
		pair.cert_chain = cert;
	}
	c = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
	if (c == NULL)
		cb_die("TLS credentials could not be created");
	return c;
}

void
cb_grpc_setup(struct cb_grpc *g, const struct cb_opts *o)
{
	grpc_init();
	for (unsigned i = 0; i < o->n_md; i++) {
		g->md[i].key = grpc_slice_from_static_string(o->md_key[i]);
		g->md[i].value = grpc_slice_from_static_string(o->md_val[i]);
	}
	g->n_md = o->n_md;
	g->creds = make_creds(o);
	g->cargs = (grpc_channel_args){.num_args = 0, .args = g->args};
	g->args[g->cargs.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
						  .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
						  .value.integer = 1};
	g->args[g->cargs.num_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER,
						  .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
						  .value.integer = -1};
	if (o->server_name)
		g->args[g->cargs.num_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
							  .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
							  .value.string = (char *)o->server_name};
	/* Kept for the run (the channels are created per thread, later). */
	if (o->service_config)
		g->args[g->cargs.num_args++] =
		    (grpc_arg){.type = GRPC_ARG_STRING,
			       .key = GRPC_ARG_SERVICE_CONFIG,
			       .value.string = read_whole(o->service_config, "--service-config")};
}

/* ==== Connecting ============================================================================ */

/* Connect every channel and wait until all are READY (or @p dl passes), so that
 * connection set-up is not in the measurement. Returns the number ready. */
static unsigned
connect_all(grpc_channel **chs, unsigned n, gpr_timespec dl)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	unsigned ready = 0, pending = 0;

	for (unsigned i = 0; i < n; i++) {
		grpc_connectivity_state st = grpc_channel_check_connectivity_state(chs[i], 1);

		if (st == GRPC_CHANNEL_READY) {
			ready++;
			continue;
		}
		grpc_channel_watch_connectivity_state(chs[i], st, dl, cq, (void *)(uintptr_t)i);
		pending++;
	}
	while (pending > 0) {
		grpc_event ev =
		    grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		unsigned i = (unsigned)(uintptr_t)ev.tag;
		grpc_connectivity_state st;

		if (ev.type != GRPC_OP_COMPLETE)
			break;
		pending--;
		st = grpc_channel_check_connectivity_state(chs[i], 1);
		if (st == GRPC_CHANNEL_READY)
			ready++;
		else if (ev.success && st != GRPC_CHANNEL_TRANSIENT_FAILURE) {
			/* changed, not ready yet (and not refused): watch again until the deadline
			 */
			grpc_channel_watch_connectivity_state(chs[i], st, dl, cq,
							      (void *)(uintptr_t)i);
			pending++;
		}
	}
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return ready;
}

unsigned
cb_grpc_connect(const struct cb_grpc *g, struct cb_worker *w, unsigned n, const char *method)
{
	gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
				       gpr_time_from_seconds(CONNECT_S, GPR_TIMESPAN));
	unsigned ready = 0;

	for (unsigned i = 0; i < n; i++) {
		struct cb_grpc_conn *c = cb_xcalloc(1, sizeof(*c));

		c->ch = cb_xcalloc(w[i].n_ch, sizeof(*c->ch));
		c->reg = cb_xcalloc(w[i].n_ch, sizeof(*c->reg));
		c->cq = grpc_completion_queue_create_for_next(NULL);
		for (unsigned k = 0; k < w[i].n_ch; k++) {
			c->ch[k] = grpc_channel_create(w[i].run->o->target, g->creds, &g->cargs);
			c->reg[k] = grpc_channel_register_call(c->ch[k], method, NULL, NULL);
		}
		w[i].conn = c;
		ready += connect_all(c->ch, w[i].n_ch, dl);
	}
	return ready;
}

/* ==== Messages ============================================================================== */

grpc_slice
cb_grpc_read_all(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	grpc_slice s = grpc_empty_slice();

	if (bb && grpc_byte_buffer_reader_init(&rd, bb)) {
		s = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
	}
	return s;
}

gpr_timespec
cb_grpc_deadline_ms(unsigned ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

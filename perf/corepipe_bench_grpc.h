/**
 * @file
 * What corepipe-bench's gRPC protocols (unary, stream) share: credentials, channel arguments,
 * the request metadata, one completion queue and its channels per client thread (one TCP
 * connection per channel, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL), all READY before the clock
 * starts, and a message's bytes.
 *
 * Context: cb_grpc_setup and cb_grpc_connect on the main thread; the rest on client threads.
 * Ownership: the channels and queues live until exit.
 */
#ifndef COREPIPE_PERF_COREPIPE_BENCH_GRPC_H
#define COREPIPE_PERF_COREPIPE_BENCH_GRPC_H

#include "perf/corepipe_bench.h"

#include <grpc/grpc.h>

/** One payload unit: the packed message and the raw bytes it carries (for --check-output). */
struct cb_frame {
	grpc_slice packed;
	const uint8_t *raw;
	size_t raw_len;
};

/** What every gRPC client thread shares. */
struct cb_grpc {
	grpc_channel_credentials *creds;
	grpc_arg args[4];
	grpc_channel_args cargs;
	grpc_metadata md[CB_MAX_MD];
	size_t n_md;
};

/** A client thread's connections (struct cb_worker's conn). */
struct cb_grpc_conn {
	grpc_channel **ch;
	void **reg; /**< the method, registered on each channel */
	grpc_completion_queue *cq;
};

/** grpc_init(), then the credentials (--insecure, --cacert, --cert/--key), the channel
 * arguments and the metadata (-m) into @p g; exits 2 on a setup error. */
void cb_grpc_setup(struct cb_grpc *g, const struct cb_opts *o);

/** Make every worker's channels for @p method and wait until they are READY (at most
 * CB_CONNECT_S); says so on stderr when some are not. @return how many are ready. */
unsigned cb_grpc_connect(const struct cb_grpc *g, struct cb_worker *w, unsigned n,
			 const char *method);

/** The bytes of a received message (empty for NULL); the caller unrefs them. */
grpc_slice cb_grpc_read_all(grpc_byte_buffer *bb);

/** A deadline @p ms from now. */
gpr_timespec cb_grpc_deadline_ms(unsigned ms);

#endif

/**
 * @file
 * The responder thread: collects completed descriptors from every worker's completion ring and
 * sends the gRPC answers.
 *
 * It polls while completions keep coming, spins briefly (spin_us) when they stop, then sleeps
 * on the dataplane's completion event count (a futex, via ck_ec), which workers bump after each
 * burst; they make the wake-up system call only while the responder sleeps. So an idle server
 * costs no CPU here, and a loaded one costs no system call per request.
 *
 * Context: cp_responder_start/stop on the main thread. Ownership: the responder owns completed
 * descriptors and frees them after answering.
 */
#ifndef COREPIPE_CP_RESPONDER_H
#define COREPIPE_CP_RESPONDER_H

#include "control/grpc_server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct cp_responder {
	pthread_t thread;
	struct cp_server *srv;
	struct dp_dataplane *dp;
	uint32_t spin_us;
	atomic_bool stop;
	int started;
	uint64_t answered; /**< written by the responder thread only */
	uint64_t sleeps;   /**< written by the responder thread only */
};

/** Start the thread. @return 0 or -errno. */
int cp_responder_start(struct cp_responder *r, struct cp_server *srv, struct dp_dataplane *dp,
		       uint32_t spin_us);

/** Stop the thread after it has answered everything completed so far. */
void cp_responder_stop(struct cp_responder *r);

#endif

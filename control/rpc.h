/**
 * @file
 * Entry points shared between the RPC handlers and the responder.
 *
 * Context: as noted. Ownership: as noted.
 */
#ifndef COREPIPE_CP_RPC_H
#define COREPIPE_CP_RPC_H

#include "control/grpc_server.h"
#include "dataplane/req.h"

/**
 * Answer the call behind a completed Execute descriptor (req->cookie).
 * Context: responder thread. Ownership: consumes @p req (freed before the answer is sent).
 */
void cp_execute_complete(struct cp_server *srv, struct dp_req *req);

#endif

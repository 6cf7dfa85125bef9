/**
 * @file
 * gRPC core's log (gpr_log) as corepipe's JSON lines (control/log.h), component "grpc". Its own
 * module so that what logs (nearly everything) does not link gRPC's libraries: only the
 * program, which runs gRPC, calls it.
 *
 * Context: main thread, before grpc_init(). Ownership: none.
 */
#ifndef COREPIPE_CP_LOG_GRPC_H
#define COREPIPE_CP_LOG_GRPC_H

/**
 * Route gRPC core's log into JSON lines. Unless the level is debug, each call site of gpr_log
 * (its file:line: one kind of message, e.g. "handshake failed") writes at most one line a
 * second, with "suppressed_since_last" = the lines of that kind dropped since its last one:
 * per-connection errors (a TLS handshake failing, a peer resetting) cannot flood the log, as
 * auth failures cannot.
 */
void cp_log_grpc_hook(void);

#endif

/**
 * @file
 * Link-state watch of the UDP front end's ports: logs every change (up/down, speed) once.
 *
 * Context: the CQ thread (cp_server_run calls it every turn; it looks at most once a second).
 * Ownership: plain state embedded in struct cp_server; nothing allocated.
 */
#ifndef COREPIPE_CP_PORT_WATCH_H
#define COREPIPE_CP_PORT_WATCH_H

#include "dataplane/udp.h"

#include <stdbool.h>
#include <stdint.h>

struct cp_port_watch {
	uint64_t last_ns;
	bool known[DP_PORTS_MAX];
	struct dp_port_link link[DP_PORTS_MAX];
};

/** Check every port of @p u (NULL: nothing) if a second passed since the last look. */
void cp_port_watch(struct cp_port_watch *pw, const struct dp_udp *u, uint64_t now_ns);

#endif

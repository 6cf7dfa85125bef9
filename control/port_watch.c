/*
 * Port link watch: a poll from the CQ loop rather than an LSC interrupt callback, because not
 * every virtual device raises LSC interrupts and the EAL's interrupt thread should not log.
 */
#include "control/port_watch.h"

#include "control/log.h"

#define WATCH_INTERVAL_NS 1000000000ull

void
cp_port_watch(struct cp_port_watch *pw, const struct dp_udp *u, uint64_t now_ns)
{
	if (u == NULL || now_ns - pw->last_ns < WATCH_INTERVAL_NS)
		return;
	pw->last_ns = now_ns;
	for (unsigned i = 0; i < u->n_ports; i++) {
		struct dp_port_link l;

		dp_port_link(&u->port[i], &l);
		if (pw->known[i] && l.up == pw->link[i].up &&
		    l.speed_mbps == pw->link[i].speed_mbps)
			continue;
		cp_log(l.up ? CP_LOG_INFO : CP_LOG_WARN,
		       l.up ? "UDP port link up" : "UDP port link down",
		       CP_LF_STR("port", u->port[i].conf.name),
		       CP_LF_U64("speed_mbps", l.speed_mbps),
		       CP_LF_BOOL("full_duplex", l.full_duplex));
		pw->known[i] = true;
		pw->link[i] = l;
	}
}

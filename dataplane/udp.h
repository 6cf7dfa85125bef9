/**
 * @file
 * The UDP front end: pipelines served straight off DPDK ports by the workers (kernel bypass).
 *
 * Each worker polls the RX queues it owns (queue q of every port belongs to worker q), and for
 * every frame in a burst: answers ARP requests for the port's address and ICMP echo requests,
 * drops (and counts) everything else not addressed to the port's UDP port, validates the IPv4
 * header and UDP checksums (device offload when offered, software otherwise), drops fragments,
 * parses the corepipe request (dataplane/wire.h), looks the pipeline up by id in the registry
 * on its RCU read side, runs it over the payload where it lies in the mbuf, and turns that
 * same mbuf into the response (addresses swapped, header rewritten, annotations appended),
 * which goes to the queue's TX buffer. TX buffers are flushed when they fill, when an RX poll
 * comes back short (nothing more to batch with), and at least every tx_drain_us.
 *
 * With fewer queues than workers (a single-queue device), the queue owner keeps the requests
 * whose flow hashes to it and hands the others to their worker's hand-off ring (MP/SC: every
 * queue owner may produce); a worker without a queue on that port gives its responses back to
 * a queue owner's TX ring (MP/SC). Both rings carry mbufs; ownership moves with them.
 *
 * Nothing here locks, allocates, logs or makes a system call per packet (the PMD itself may:
 * net_tap and net_af_packet are kernel interfaces). Every frame taken from a queue is either
 * transmitted or freed, and counted once.
 *
 * Context: dp_udp_create/start/stop/destroy on the control thread; dp_udp_poll and
 * dp_udp_frame on the owning worker (a registered, online urcu-qsbr reader); stats readers on
 * any thread (relaxed loads). Ownership: struct dp_udp owns its ports, rings and per-worker
 * state; a worker owns each mbuf from RX (or dequeue) until TX, enqueue or free.
 */
#ifndef COREPIPE_DP_UDP_H
#define COREPIPE_DP_UDP_H

#include "dataplane/port.h"
#include "dataplane/stat.h"
#include "dataplane/status.h"

#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dp_lcore;

/** Most workers (DP_WORKERS_MAX in dataplane.h, which includes this header; checked there). */
#define DP_UDP_WORKERS_MAX 64

/** Frames taken per RX poll, and TX batch size. */
#define DP_UDP_BURST 32

/** Why a frame was dropped without an answer. */
enum dp_udp_drop {
	DP_UDP_DROP_RUNT = 0,	     /**< shorter than its headers say */
	DP_UDP_DROP_SEGMENTED,	     /**< multi-segment mbuf (jumbo chain): not served */
	DP_UDP_DROP_L2_OTHER,	     /**< not to our MAC (or broadcast for ARP) */
	DP_UDP_DROP_ETHERTYPE,	     /**< neither IPv4 nor ARP (IPv6, VLAN, ...) */
	DP_UDP_DROP_ARP_OTHER,	     /**< ARP that is not a request for our address */
	DP_UDP_DROP_IP_BAD,	     /**< bad version, header length or total length */
	DP_UDP_DROP_IP_CKSUM,	     /**< IPv4 header checksum wrong */
	DP_UDP_DROP_IP_FRAGMENT,     /**< a fragment: not reassembled */
	DP_UDP_DROP_IP_NOT_US,	     /**< IPv4 to another address */
	DP_UDP_DROP_IP_PROTO,	     /**< neither UDP nor ICMP */
	DP_UDP_DROP_ICMP_OTHER,	     /**< ICMP that is not an echo request */
	DP_UDP_DROP_UDP_BAD,	     /**< UDP length inconsistent */
	DP_UDP_DROP_UDP_CKSUM,	     /**< UDP checksum wrong */
	DP_UDP_DROP_UDP_PORT,	     /**< UDP to another port */
	DP_UDP_DROP_SRC_DENIED,	     /**< request from outside the port's allow_from network */
	DP_UDP_DROP_WIRE_SHORT,	     /**< shorter than the corepipe header */
	DP_UDP_DROP_WIRE_MAGIC,	     /**< not a corepipe datagram */
	DP_UDP_DROP_WIRE_RESPONSE,   /**< a corepipe response: never answered */
	DP_UDP_DROP_TX_FULL,	     /**< answer dropped: TX queue or hand-back ring full */
	DP_UDP_DROP_DST_NOT_UNICAST, /**< IPv4 to a broadcast or multicast MAC or IP address */
	DP_UDP_DROP_SRC_BOGUS,	     /**< from a group MAC, or an IP no host sends from: 0/8,
				      * 127/8, 224/4, 240/4, ours, our subnet's network or
				      * broadcast address */
	DP_UDP_DROP_SRC_PORT_ZERO,   /**< UDP from source port 0 (no reply can go there) */
	DP_UDP_DROP_MAX
};

/**
 * A successful answer's IPv4 datagram is at most this many times the request's (bytes on the
 * network, headers included), and every node's output is held to what that leaves while the
 * pipeline runs (dp_pipeline_run_capped): the UDP path never amplifies more than this toward a
 * source address it cannot verify (QUIC's anti-amplification factor, RFC 9000 8.1). Over it,
 * the answer is OUT_OF_RANGE with no output, no longer than the request.
 */
#define DP_UDP_ANSWER_FACTOR 3

/** Lower-case name of a drop reason ("ip_cksum"), for metrics. */
const char *dp_udp_drop_name(unsigned reason);

/**
 * Counters of one (worker, port): dataplane/stat.h counters, written only by that worker, read
 * by anyone. Nothing but uint64_t counters, in the order of their rows in dp_udp_stats_desc
 * (which is the order /metrics prints them in); a field added here needs its row there.
 */
struct dp_udp_stats {
	uint64_t rx_pkts; /**< frames taken off this worker's queue of the port */
	uint64_t tx_pkts; /**< frames handed to the device by this worker */
	uint64_t rx_bytes, tx_bytes;
	uint64_t by_code[DP_STATUS_MAX]; /**< corepipe responses sent, by status */
	uint64_t drops[DP_UDP_DROP_MAX];
	uint64_t arp_replies, icmp_replies;
	uint64_t handoff_out; /**< requests handed to another worker */
	uint64_t copied;      /**< payloads processed in a pool buffer (misaligned in the mbuf) */
	uint64_t cycles;      /**< TSC cycles of the requests whose pipeline ran: each burst's time
			       * (RX to the last answer queued) shared equally by its requests */
} __rte_cache_aligned;

/* The counters end at cycles: what follows is the cache-line padding alone. */
_Static_assert(RTE_ALIGN_CEIL(offsetof(struct dp_udp_stats, cycles) + sizeof(uint64_t),
			      RTE_CACHE_LINE_SIZE) == sizeof(struct dp_udp_stats),
	       "dp_udp_stats: cycles is the last counter (add a dp_udp_stats_desc row)");

/**
 * The fields of struct dp_udp_stats, one row each in field order (dataplane/stat.h): their
 * /metrics families, labels, help and types, and their GetStats (UdpPortStats) names.
 */
extern const struct dp_stat_desc dp_udp_stats_desc[];
/** Rows in dp_udp_stats_desc. */
extern const unsigned dp_udp_stats_n_desc;

/** Front-end configuration (dataplane.ports and dataplane.udp). */
struct dp_udp_conf {
	unsigned n_ports;
	struct dp_port_conf ports[DP_PORTS_MAX];
	uint32_t ring_size;    /**< hand-off and hand-back ring capacity (power of two) */
	uint32_t tx_drain_us;  /**< longest time a response waits in a TX buffer */
	uint32_t idle_poll_us; /**< longest idle sleep of a worker that polls ports */
};

/** Defaults: no ports, 1024-deep rings, 100 us drain, 200 us idle poll. */
void dp_udp_conf_default(struct dp_udp_conf *c);

/** Per-worker state. Written by its worker only, but for the rings' producer sides. */
struct dp_udp_wk {
	unsigned index;
	struct dp_lcore *lc; /**< the lcore that polls it: registry, pools, metrics, wake */
	struct dp_udp *udp;
	int16_t txq[DP_PORTS_MAX]; /**< this worker's queue of port i, or -1 */
	bool owns_queue;	   /**< some txq[i] >= 0: it polls a device (its idle limit) */
	struct rte_eth_dev_tx_buffer *txb[DP_PORTS_MAX]; /**< for txq[i] */
	struct rte_ring *handoff; /**< MP (queue owners) / SC (this worker): requests */
	struct rte_ring *txback;  /**< MP (workers without a queue) / SC (this worker) */
	uint64_t last_flush;
	uint64_t t_mark; /**< TSC when the requests in ran[] started (one read per burst) */
	unsigned n_ran;	 /**< requests whose pipeline ran since t_mark */
	uint16_t ran[DP_UDP_BURST];	/**< their pipeline ids, for the duration histogram */
	uint8_t ran_port[DP_UDP_BURST]; /**< and ports, for the cycles counter */
	uint64_t pending_tx;		/**< frames sitting in txb[] */
	struct dp_udp_stats st[DP_PORTS_MAX];
};

struct dp_udp {
	struct dp_udp_conf conf;
	unsigned n_ports;
	struct dp_port port[DP_PORTS_MAX];
	uint16_t port_idx[RTE_MAX_ETHPORTS]; /**< ethdev port id -> index in port[] */
	unsigned n_workers;
	struct dp_udp_wk *wk[DP_UDP_WORKERS_MAX];
	bool handoff; /**< some port has fewer queues than there are workers */
	uint64_t drain_cycles;
	uint64_t tsc_hz;
	int tsc_dynfield; /**< mbuf dynamic field: arrival TSC (for deadlines after hand-off) */
	/* Written by the control plane at shutdown, read by the lcores (relaxed: a command). */
	alignas(RTE_CACHE_LINE_SIZE) atomic_bool draining; /**< answer UNAVAILABLE */
};

/**
 * Open every configured port and attach per-lcore state to the @p n_workers lcores that poll
 * them (queue q of every port belongs to lcores[q]).
 * @return the front end (NULL when @p conf has no ports: nothing to do, errno 0), or NULL
 * with errno and @p err on failure (every port opened so far is closed again).
 * Context: control thread, after the workers exist and before they launch.
 */
struct dp_udp *dp_udp_create(const struct dp_udp_conf *conf, struct dp_lcore **lcores,
			     unsigned n_workers, char *err, size_t errlen);

/**
 * Free rings and state and close the ports; mbufs still in rings are freed. Accepts NULL.
 * Context: control thread, workers stopped.
 */
void dp_udp_destroy(struct dp_udp *u);

/** Sum the counters of port @p i over every worker (relaxed loads). Context: any. */
void dp_udp_stats_read(const struct dp_udp *u, unsigned i, struct dp_udp_stats *out);

/** The same for one worker @p wk of port @p i. */
void dp_udp_stats_read_one(const struct dp_udp *u, unsigned wk, unsigned i,
			   struct dp_udp_stats *out);

/**
 * One poll of worker @p wk's share of the front end: RX bursts of its queues (when @p rx),
 * its hand-off and hand-back rings, TX flushes.
 * @return frames handled.
 * Context: the worker's lcore, online RCU reader. Hot path.
 */
unsigned dp_udp_poll(struct dp_udp_wk *wk, bool rx);

/** Does worker @p wk have frames waiting in its rings (for the idle re-check)? */
bool dp_udp_pending(const struct dp_udp_wk *wk);

/**
 * Handle one frame received on port index @p port at TSC @p now: answer it (into the TX path)
 * or drop it (counted). Consumes @p m. Exposed for tests.
 * Context: as dp_udp_poll.
 */
void dp_udp_frame(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m, uint64_t now);

/** Flush every TX buffer of @p wk. Context: as dp_udp_poll. */
void dp_udp_flush(struct dp_udp_wk *wk);

#endif

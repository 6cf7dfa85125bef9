/**
 * @file
 * DPDK ports for the UDP front end: configuration, queue layout, start and stop, link state.
 *
 * A port is any DPDK ethdev named by its devargs: a PCI NIC ("0000:01:00.0") or a virtual
 * device ("net_tap0,iface=cp0", "net_af_packet0,iface=veth0", "net_memif0,role=client",
 * "net_pcap0,...", "net_ring0"). corepiped hands the devargs to the EAL (-a / --vdev) and then
 * finds the ethdev by its name (the devargs up to the first comma). Each port has an IPv4
 * address and prefix, a UDP port, an MTU and a queue count: queue pair q (one RX and one TX
 * queue) belongs to worker q, so a worker polls and transmits on its own queues with no
 * locking. With fewer queues than workers (a single-queue device), the queue owners hand
 * requests to the other workers over rings (dataplane/udp.h).
 *
 * Context: open/close on the control thread (after rte_eal_init(), before the workers
 * launch / after they stop); dp_port_link() and dp_port_xstats from any control thread.
 * Ownership: a struct dp_port is embedded in struct dp_udp and owns its mbuf pool.
 */
#ifndef COREPIPE_DP_PORT_H
#define COREPIPE_DP_PORT_H

#include <rte_ether.h>
#include <rte_mempool.h>
#include <stdbool.h>
#include <stdint.h>

/** Most ports. */
#define DP_PORTS_MAX 8
/** Longest port label and devargs, with their NUL. */
#define DP_PORT_NAME_MAX    32
#define DP_PORT_DEVARGS_MAX 256

/** One port as configured (dataplane.ports[i]). */
struct dp_port_conf {
	char name[DP_PORT_NAME_MAX];	   /**< label for logs and metrics */
	char devargs[DP_PORT_DEVARGS_MAX]; /**< EAL device arguments */
	uint32_t ip;			   /**< IPv4 address, host byte order */
	uint8_t prefix_len;		   /**< netmask as a prefix length, 1..32 */
	uint16_t udp_port;		   /**< UDP port served */
	uint16_t mtu;			   /**< 0: 1500 */
	uint16_t queues;		   /**< queue pairs; 0: one per worker */
	uint16_t rx_desc, tx_desc;	   /**< ring sizes; 0: 1024 */
	bool allow_set;	      /**< allow_ip/allow_prefix given; else the port's subnet */
	uint32_t allow_ip;    /**< requests only from this network (host order) */
	uint8_t allow_prefix; /**< 0..32; 0 with allow_set: any source */
};

/** Is @p devargs a virtual device (net_xxx), which the EAL takes with --vdev? */
bool dp_port_devargs_is_vdev(const char *devargs);

/** Offloads a port uses (what the device offers and corepipe asked for). */
struct dp_port_offloads {
	bool rx_ip_cksum, rx_udp_cksum; /**< RX checksum flags are set by the device */
	bool tx_ip_cksum, tx_udp_cksum; /**< TX checksums computed by the device */
	bool rss;			/**< RSS spreads flows over the queues */
};

struct dp_port {
	struct dp_port_conf conf;
	uint16_t port_id;
	uint16_t n_queues;    /**< queue pairs configured: workers 0..n_queues-1 own one each */
	uint16_t mtu;	      /**< the device's IP MTU, as set */
	uint16_t max_payload; /**< largest UDP payload that fits in one datagram */
	uint32_t ip_be;	      /**< conf.ip, network order (what the hot path compares) */
	uint32_t allow_net_be, allow_mask_be; /**< sources served: (src & mask) == net */
	uint32_t net_be,
	    bcast_be; /**< the port's subnet address and its broadcast (network
		       * order; both 0 for /0, /31 and /32, which have neither, RFC 3021) */
	uint16_t udp_port_be;
	struct rte_ether_addr mac;
	struct dp_port_offloads off;
	struct rte_mempool *mbufs; /**< RX buffers, owned */
	char driver[32];
	bool started;
};

/**
 * Find the ethdev of @p conf (probed by the EAL from its devargs), configure min(queues,
 * device limits, @p n_workers) queue pairs with RSS and checksum offloads where offered, set
 * the MTU, create the mbuf pool (sized for every RX/TX ring, the hand-off rings and caches:
 * @p extra_mbufs more) and start it.
 * @return 0, or -errno with @p err (ENODEV: no such device; EINVAL: bad conf; ENOMEM;
 * other: what the driver returned).
 * Context: control thread, before the workers launch.
 */
int dp_port_open(struct dp_port *p, const struct dp_port_conf *conf, unsigned n_workers,
		 unsigned extra_mbufs, char *err, size_t errlen);

/**
 * Set @p p's addresses from @p conf: ip_be, the allowed sources (allow_ip/allow_prefix, else the
 * port's own subnet; prefix 0 allows every source) and the subnet's network and broadcast
 * addresses. Any prefix length 0..32 is defined. Context: any (pure; dp_port_open calls it).
 */
void dp_port_set_addrs(struct dp_port *p, const struct dp_port_conf *conf);

/** Stop and close the device and free its pool. Accepts a port never opened. */
void dp_port_close(struct dp_port *p);

/** Link state now. Context: control threads. */
struct dp_port_link {
	bool up;
	uint32_t speed_mbps;
	bool full_duplex;
};
void dp_port_link(const struct dp_port *p, struct dp_port_link *out);

/** Device counters (rte_eth_stats). Context: control threads. */
struct dp_port_dev_stats {
	uint64_t ipackets, opackets, ibytes, obytes;
	uint64_t imissed;   /**< dropped by the device: RX ring full (workers too slow) */
	uint64_t ierrors;   /**< erroneous packets received */
	uint64_t oerrors;   /**< failed transmits */
	uint64_t rx_nombuf; /**< RX mbuf allocation failures */
};
void dp_port_dev_stats(const struct dp_port *p, struct dp_port_dev_stats *out);

/** "a.b.c.d" of @p ip (host order) into @p out (16 bytes). */
void dp_ipv4_format(uint32_t ip, char out[16]);

/** Parse "a.b.c.d" or "a.b.c.d/len" with len 0..32 (host order). @return 0 or -EINVAL. */
int dp_ipv4_parse(const char *s, uint32_t *ip, uint8_t *prefix_len);

#endif

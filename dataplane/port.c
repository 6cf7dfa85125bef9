/*
 * Port set-up: everything here runs once on the control thread, so it may log through the
 * caller (error text), allocate and wait for the device.
 */
#include "dataplane/port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MTU  1500
#define DEFAULT_DESC 1024
#define MBUF_CACHE   256

bool
dp_port_devargs_is_vdev(const char *devargs)
{
	return strncmp(devargs, "net_", 4) == 0;
}

void
dp_ipv4_format(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

int
dp_ipv4_parse(const char *s, uint32_t *ip, uint8_t *prefix_len)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	if (prefix_len != NULL) {
		*prefix_len = 32;
		if (slash != NULL) {
			char *end;
			long v = strtol(slash + 1, &end, 10);

			if (slash[1] == '\0' || *end != '\0' || v < 0 || v > 32)
				return -EINVAL;
			*prefix_len = (uint8_t)v;
		}
	} else if (slash != NULL) {
		return -EINVAL;
	}
	return 0;
}

static int
fail(char *err, size_t errlen, int rc, const char *fmt, const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return rc;
}

void
dp_port_set_addrs(struct dp_port *p, const struct dp_port_conf *conf)
{
	uint8_t len = conf->allow_set ? conf->allow_prefix : conf->prefix_len;
	uint32_t net = conf->allow_set ? conf->allow_ip : conf->ip;
	uint32_t mask = len == 0 ? 0 : ~0u << (32 - len); /* << 32 is undefined: /0 apart */

	p->ip_be = rte_cpu_to_be_32(conf->ip);
	p->allow_mask_be = rte_cpu_to_be_32(mask);
	p->allow_net_be = rte_cpu_to_be_32(net & mask);
	if (conf->prefix_len >= 1 && conf->prefix_len <= 30) {
		mask = ~0u << (32 - conf->prefix_len);
		p->net_be = rte_cpu_to_be_32(conf->ip & mask);
		p->bcast_be = rte_cpu_to_be_32(conf->ip | ~mask);
	} else {
		p->net_be = p->bcast_be = 0;
	}
}

int
dp_port_open(struct dp_port *p, const struct dp_port_conf *conf, unsigned n_workers,
	     unsigned extra_mbufs, char *err, size_t errlen)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf ec;
	char devname[RTE_ETH_NAME_MAX_LEN], poolname[RTE_MEMPOOL_NAMESIZE];
	const char *comma = strchr(conf->devargs, ',');
	size_t n = comma ? (size_t)(comma - conf->devargs) : strlen(conf->devargs);
	unsigned nq, n_mbufs;
	uint16_t mtu, rxd, txd;
	uint32_t room;
	int rc, socket;

	memset(p, 0, sizeof(*p));
	p->conf = *conf;
	if (n == 0 || n >= sizeof(devname) || n_workers == 0)
		return fail(err, errlen, -EINVAL, "port %s: bad devargs '%s'", conf->name,
			    conf->devargs);
	memcpy(devname, conf->devargs, n);
	devname[n] = '\0';
	if (rte_eth_dev_get_port_by_name(devname, &p->port_id) != 0)
		return fail(err, errlen, -ENODEV, "port %s: no ethdev named '%s' (was it probed?)",
			    conf->name, devname);
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0)
		return fail(err, errlen, rc, "port %s: %s: cannot read device info", conf->name,
			    devname);
	snprintf(p->driver, sizeof(p->driver), "%s", info.driver_name ? info.driver_name : "?");

	mtu = conf->mtu ? conf->mtu : DEFAULT_MTU;
	if (mtu < 576 || (info.max_mtu != 0 && mtu > info.max_mtu)) {
		char m[16];

		snprintf(m, sizeof(m), "%u", mtu);
		return fail(err, errlen, -EINVAL, "port %s: MTU %s not supported by the device",
			    conf->name, m);
	}
	nq = conf->queues ? conf->queues : n_workers;
	if (nq > n_workers)
		nq = n_workers;
	if (nq > info.max_rx_queues)
		nq = info.max_rx_queues;
	if (nq > info.max_tx_queues)
		nq = info.max_tx_queues;
	if (nq == 0)
		return fail(err, errlen, -EINVAL, "port %s: %s has no RX/TX queues", conf->name,
			    devname);
	p->n_queues = (uint16_t)nq;

	memset(&ec, 0, sizeof(ec));
	if (nq > 1 && (info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP)) != 0) {
		ec.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		ec.rx_adv_conf.rss_conf.rss_hf =
		    info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
		p->off.rss = true;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
		ec.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
		p->off.rx_ip_cksum = true;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) {
		ec.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
		p->off.rx_udp_cksum = true;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
		ec.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
		p->off.tx_ip_cksum = true;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) {
		ec.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
		p->off.tx_udp_cksum = true;
	}
	rc = rte_eth_dev_configure(p->port_id, (uint16_t)nq, (uint16_t)nq, &ec);
	if (rc != 0)
		return fail(err, errlen, rc, "port %s: %s: rte_eth_dev_configure failed",
			    conf->name, devname);
	/* Some virtual devices have no MTU to set (net_ring): they take any frame size. */
	rc = rte_eth_dev_set_mtu(p->port_id, mtu);
	if (rc != 0 && rc != -ENOTSUP)
		return fail(err, errlen, rc, "port %s: %s: cannot set the MTU", conf->name,
			    devname);
	p->mtu = (uint16_t)mtu;
	p->max_payload = (uint16_t)(mtu - sizeof(struct rte_ipv4_hdr) - sizeof(struct rte_udp_hdr));

	rxd = conf->rx_desc ? conf->rx_desc : DEFAULT_DESC;
	txd = conf->tx_desc ? conf->tx_desc : DEFAULT_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &rxd, &txd);
	if (rc != 0)
		return fail(err, errlen, rc, "port %s: %s: descriptor counts not supported",
			    conf->name, devname);

	/* Every RX and TX descriptor may hold an mbuf, plus the per-lcore caches, a burst per
	 * queue in flight and what the hand-off rings may hold. */
	socket = rte_eth_dev_socket_id(p->port_id);
	if (socket < 0)
		socket = SOCKET_ID_ANY;
	n_mbufs = nq * (rxd + txd + 64) + (n_workers + 1) * MBUF_CACHE + extra_mbufs;
	room = RTE_PKTMBUF_HEADROOM + mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 8;
	if (room < RTE_MBUF_DEFAULT_BUF_SIZE)
		room = RTE_MBUF_DEFAULT_BUF_SIZE;
	snprintf(poolname, sizeof(poolname), "dp_mbuf_%u", p->port_id);
	p->mbufs =
	    rte_pktmbuf_pool_create(poolname, n_mbufs, MBUF_CACHE, 0, (uint16_t)room, socket);
	if (p->mbufs == NULL)
		return fail(err, errlen, -ENOMEM, "port %s: %s: cannot create the mbuf pool",
			    conf->name, rte_strerror(rte_errno));
	for (unsigned q = 0; q < nq; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;
		struct rte_eth_txconf txc = info.default_txconf;

		rxc.offloads = ec.rxmode.offloads;
		txc.offloads = ec.txmode.offloads;
		rc = rte_eth_rx_queue_setup(p->port_id, (uint16_t)q, rxd, (unsigned)socket, &rxc,
					    p->mbufs);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->port_id, (uint16_t)q, txd, (unsigned)socket,
						    &txc);
		if (rc != 0) {
			dp_port_close(p);
			return fail(err, errlen, rc, "port %s: %s: queue set-up failed", conf->name,
				    devname);
		}
	}
	rte_eth_macaddr_get(p->port_id, &p->mac);
	dp_port_set_addrs(p, conf);
	p->udp_port_be = rte_cpu_to_be_16(conf->udp_port);
	rc = rte_eth_dev_start(p->port_id);
	if (rc != 0) {
		dp_port_close(p);
		return fail(err, errlen, rc, "port %s: %s: cannot start the device", conf->name,
			    devname);
	}
	p->started = true;
	return 0;
}

void
dp_port_close(struct dp_port *p)
{
	if (p->mbufs == NULL)
		return;
	if (p->started)
		rte_eth_dev_stop(p->port_id);
	rte_eth_dev_close(p->port_id);
	p->started = false;
	rte_mempool_free(p->mbufs);
	p->mbufs = NULL;
}

void
dp_port_link(const struct dp_port *p, struct dp_port_link *out)
{
	struct rte_eth_link l;

	memset(out, 0, sizeof(*out));
	if (p->mbufs == NULL || rte_eth_link_get_nowait(p->port_id, &l) != 0)
		return;
	out->up = l.link_status == RTE_ETH_LINK_UP;
	out->speed_mbps = l.link_speed;
	out->full_duplex = l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
}

void
dp_port_dev_stats(const struct dp_port *p, struct dp_port_dev_stats *out)
{
	struct rte_eth_stats s;

	memset(out, 0, sizeof(*out));
	if (p->mbufs == NULL || rte_eth_stats_get(p->port_id, &s) != 0)
		return;
	out->ipackets = s.ipackets;
	out->opackets = s.opackets;
	out->ibytes = s.ibytes;
	out->obytes = s.obytes;
	out->imissed = s.imissed;
	out->ierrors = s.ierrors;
	out->oerrors = s.oerrors;
	out->rx_nombuf = s.rx_nombuf;
}

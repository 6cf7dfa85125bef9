/*
 * The UDP front end on the workers: L2/L3 (ARP, ICMP echo, IPv4 and UDP checks), the corepipe
 * request, the pipeline run in the mbuf, and the response built in place.
 */
#include "dataplane/udp.h"

#include "dataplane/cksum.h"
#include "dataplane/lcore.h"
#include "dataplane/registry.h"
#include "dataplane/wire.h"

#include <errno.h>
#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf_dyn.h>
#include <rte_prefetch.h>
#include <rte_udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prefetch the frame this many ahead of the one being handled. */
#define PREFETCH_OFFSET 3

static const char *const g_drop_names[DP_UDP_DROP_MAX] = {
    [DP_UDP_DROP_RUNT] = "runt",
    [DP_UDP_DROP_SEGMENTED] = "segmented",
    [DP_UDP_DROP_L2_OTHER] = "l2_other",
    [DP_UDP_DROP_ETHERTYPE] = "ethertype",
    [DP_UDP_DROP_ARP_OTHER] = "arp_other",
    [DP_UDP_DROP_IP_BAD] = "ip_bad",
    [DP_UDP_DROP_IP_CKSUM] = "ip_cksum",
    [DP_UDP_DROP_IP_FRAGMENT] = "ip_fragment",
    [DP_UDP_DROP_IP_NOT_US] = "ip_not_us",
    [DP_UDP_DROP_IP_PROTO] = "ip_proto",
    [DP_UDP_DROP_ICMP_OTHER] = "icmp_other",
    [DP_UDP_DROP_UDP_BAD] = "udp_bad",
    [DP_UDP_DROP_UDP_CKSUM] = "udp_cksum",
    [DP_UDP_DROP_UDP_PORT] = "udp_port",
    [DP_UDP_DROP_SRC_DENIED] = "src_denied",
    [DP_UDP_DROP_WIRE_SHORT] = "wire_short",
    [DP_UDP_DROP_WIRE_MAGIC] = "wire_magic",
    [DP_UDP_DROP_WIRE_RESPONSE] = "wire_response",
    [DP_UDP_DROP_TX_FULL] = "tx_full",
    [DP_UDP_DROP_DST_NOT_UNICAST] = "dst_not_unicast",
    [DP_UDP_DROP_SRC_BOGUS] = "src_bogus",
    [DP_UDP_DROP_SRC_PORT_ZERO] = "src_port_zero",
};

const char *
dp_udp_drop_name(unsigned reason)
{
	return reason < DP_UDP_DROP_MAX ? g_drop_names[reason] : "unknown";
}

static const char *
status_key(unsigned code)
{
	return dp_status_name((int)code);
}

#define ROW(field) DP_STAT_FIELD(struct dp_udp_stats, field)

const struct dp_stat_desc dp_udp_stats_desc[] = {
    {.metric = "corepipe_udp_packets_total",
     .label = "dir=\"rx\"",
     .rpc = "rx_packets",
     .help = "Frames taken off (rx) and handed to (tx) a port's queues, by worker.",
     .flags = DP_STAT_PER_WORKER,
     ROW(rx_pkts)},
    {.metric = "corepipe_udp_packets_total",
     .label = "dir=\"tx\"",
     .rpc = "tx_packets",
     .flags = DP_STAT_PER_WORKER,
     ROW(tx_pkts)},
    {.metric = "corepipe_udp_bytes_total",
     .label = "dir=\"rx\"",
     .help = "Bytes of the frames counted above.",
     ROW(rx_bytes)},
    {.metric = "corepipe_udp_bytes_total", .label = "dir=\"tx\"", ROW(tx_bytes)},
    {.metric = "corepipe_udp_responses_total",
     .key = "code",
     .key_name = status_key,
     .rpc = "responses",
     .help = "corepipe responses sent on a port, by status code.",
     .flags = DP_STAT_SPARSE,
     ROW(by_code)},
    {.metric = "corepipe_udp_dropped_total",
     .key = "reason",
     .key_name = dp_udp_drop_name,
     .rpc = "dropped",
     .help = "Frames dropped without an answer, by reason.",
     ROW(drops)},
    {.metric = "corepipe_udp_replies_total",
     .label = "kind=\"arp\"",
     .rpc = "arp_replies",
     .help = "ARP and ICMP echo replies sent.",
     ROW(arp_replies)},
    {.metric = "corepipe_udp_replies_total",
     .label = "kind=\"icmp\"",
     .rpc = "icmp_replies",
     ROW(icmp_replies)},
    {.metric = "corepipe_udp_handoff_total",
     .rpc = "handoff",
     .help = "Requests a queue owner handed to another worker (single-queue devices).",
     ROW(handoff_out)},
    {.metric = "corepipe_udp_copied_total",
     .help = "Requests whose payload was not aligned in the frame and was copied to a buffer.",
     ROW(copied)},
    {ROW(cycles)}, /* summed, not exported */
};

const unsigned dp_udp_stats_n_desc = sizeof(dp_udp_stats_desc) / sizeof(dp_udp_stats_desc[0]);

#undef ROW

void
dp_udp_conf_default(struct dp_udp_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->ring_size = 1024;
	c->tx_drain_us = 100;
	c->idle_poll_us = 200;
}

/* ==== Set-up (control thread) =============================================================== */

/* TX buffer error callback: the device took fewer than offered; free and count the rest. */
static void
tx_unsent(struct rte_mbuf **pkts, uint16_t unsent, void *arg)
{
	uint64_t *drops = arg;

	rte_pktmbuf_free_bulk(pkts, unsent);
	dp_stat_add(drops, unsent);
}

static void
free_ring(struct rte_ring *r)
{
	void *m;

	if (r == NULL)
		return;
	while (rte_ring_dequeue(r, &m) == 0)
		rte_pktmbuf_free(m);
	rte_ring_free(r);
}

struct dp_udp *
dp_udp_create(const struct dp_udp_conf *conf, struct dp_lcore **lcores, unsigned n_workers,
	      char *err, size_t errlen)
{
	static const struct rte_mbuf_dynfield tsc_field = {
	    .name = "corepipe_rx_tsc",
	    .size = sizeof(uint64_t),
	    .align = __alignof__(uint64_t),
	};
	struct dp_udp *u;
	int rc = 0;

	errno = 0;
	if (conf->n_ports == 0)
		return NULL;
	if (n_workers == 0 || n_workers > DP_UDP_WORKERS_MAX || conf->n_ports > DP_PORTS_MAX ||
	    conf->ring_size == 0 || (conf->ring_size & (conf->ring_size - 1)) != 0) {
		snprintf(err, errlen, "udp: bad configuration");
		errno = EINVAL;
		return NULL;
	}
	u = rte_zmalloc("dp_udp", sizeof(*u), RTE_CACHE_LINE_SIZE);
	if (u == NULL) {
		snprintf(err, errlen, "udp: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	u->conf = *conf;
	u->n_workers = n_workers;
	u->tsc_hz = rte_get_tsc_hz();
	u->drain_cycles = u->tsc_hz / 1000000 * (conf->tx_drain_us ? conf->tx_drain_us : 1);
	atomic_init(&u->draining, false);
	u->tsc_dynfield = rte_mbuf_dynfield_register(&tsc_field);
	if (u->tsc_dynfield < 0) {
		snprintf(err, errlen, "udp: cannot register the mbuf field: %s",
			 rte_strerror(rte_errno));
		rc = ENOMEM;
		goto err_free;
	}
	for (unsigned i = 0; i < conf->n_ports; i++) {
		/* The hand-off and hand-back rings may hold mbufs of any port. */
		unsigned extra = n_workers * 2 * conf->ring_size;

		rc = dp_port_open(&u->port[i], &conf->ports[i], n_workers, extra, err, errlen);
		if (rc != 0) {
			rc = -rc;
			goto err_free;
		}
		u->n_ports = i + 1;
		u->port_idx[u->port[i].port_id] = (uint16_t)i;
		if (u->port[i].n_queues < n_workers)
			u->handoff = true;
	}
	for (unsigned wi = 0; wi < n_workers; wi++) {
		struct dp_lcore *lc = lcores[wi];
		struct dp_udp_wk *wk;
		char name[RTE_RING_NAMESIZE];
		int socket = lc->socket;

		wk = rte_zmalloc_socket("dp_udp_wk", sizeof(*wk), RTE_CACHE_LINE_SIZE, socket);
		if (wk == NULL) {
			snprintf(err, errlen, "udp: out of memory");
			rc = ENOMEM;
			goto err_free;
		}
		u->wk[wi] = wk;
		wk->index = wi;
		wk->lc = lc;
		wk->udp = u;
		for (unsigned i = 0; i < DP_PORTS_MAX; i++)
			wk->txq[i] = -1;
		for (unsigned i = 0; i < u->n_ports; i++) {
			if (wi >= u->port[i].n_queues)
				continue;
			wk->txq[i] = (int16_t)wi;
			wk->owns_queue = true;
			wk->txb[i] = rte_zmalloc_socket(
			    "dp_udp_txb", RTE_ETH_TX_BUFFER_SIZE(DP_UDP_BURST), 0, socket);
			if (wk->txb[i] == NULL) {
				snprintf(err, errlen, "udp: out of memory");
				rc = ENOMEM;
				goto err_free;
			}
			rte_eth_tx_buffer_init(wk->txb[i], DP_UDP_BURST);
			rte_eth_tx_buffer_set_err_callback(wk->txb[i], tx_unsent,
							   &wk->st[i].drops[DP_UDP_DROP_TX_FULL]);
		}
		if (u->handoff) {
			snprintf(name, sizeof(name), "dp_uh_%u", wi);
			wk->handoff = rte_ring_create(name, conf->ring_size, socket,
						      RING_F_SC_DEQ | RING_F_EXACT_SZ);
			snprintf(name, sizeof(name), "dp_ub_%u", wi);
			wk->txback = rte_ring_create(name, conf->ring_size, socket,
						     RING_F_SC_DEQ | RING_F_EXACT_SZ);
			if (wk->handoff == NULL || wk->txback == NULL) {
				snprintf(err, errlen, "udp: cannot create hand-off rings: %s",
					 rte_strerror(rte_errno));
				rc = ENOMEM;
				goto err_free;
			}
		}
	}
	/* Hand-offs make every queue owner a producer of the other lcores' event counts, which
	 * are multi-producer already (several front ends bump them too). */
	return u;

err_free:
	dp_udp_destroy(u);
	errno = rc ? rc : EINVAL;
	return NULL;
}

void
dp_udp_destroy(struct dp_udp *u)
{
	if (u == NULL)
		return;
	for (unsigned wi = 0; wi < DP_UDP_WORKERS_MAX; wi++) {
		struct dp_udp_wk *wk = u->wk[wi];

		if (wk == NULL)
			continue;
		free_ring(wk->handoff);
		free_ring(wk->txback);
		for (unsigned i = 0; i < DP_PORTS_MAX; i++) {
			if (wk->txb[i] == NULL)
				continue;
			rte_pktmbuf_free_bulk(wk->txb[i]->pkts, wk->txb[i]->length);
			rte_free(wk->txb[i]);
		}
		rte_free(wk);
	}
	for (unsigned i = 0; i < u->n_ports; i++)
		dp_port_close(&u->port[i]);
	rte_free(u);
}

static void
stats_add(struct dp_udp_stats *out, const struct dp_udp_stats *s)
{
	dp_stat_sum(dp_udp_stats_desc, dp_udp_stats_n_desc, out, s);
}

void
dp_udp_stats_read_one(const struct dp_udp *u, unsigned wk, unsigned i, struct dp_udp_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (wk < u->n_workers && i < u->n_ports)
		stats_add(out, &u->wk[wk]->st[i]);
}

void
dp_udp_stats_read(const struct dp_udp *u, unsigned i, struct dp_udp_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= u->n_ports)
		return;
	for (unsigned wi = 0; wi < u->n_workers; wi++)
		stats_add(out, &u->wk[wi]->st[i]);
}

/* ==== Hot path ============================================================================== */
/* Hot path: per packet, worker lcores. No locks, syscalls, allocation or logging. */

/*
 * Verdicts (l3fwd's classifiers return one): a frame's handling is a chain of steps, each
 * returning a drop reason (< DP_UDP_DROP_MAX: dp_udp_frame() drops and counts the frame) or one
 * of these.
 */
enum udp_verdict {
	UDP_DONE = DP_UDP_DROP_MAX, /**< consumed: answered or handed to another worker */
	UDP_NEXT,		    /**< serve()'s step passed the request to the next */
	UDP_ARP,		    /**< classify(): an ARP frame for us */
	UDP_ICMP,		    /**< classify(): ICMP to our address; l2_len, l3_len set */
	UDP_SERVE,		    /**< classify(): UDP to our port, checked; l2_len, l3_len set */
};

static inline void
drop(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m, unsigned reason)
{
	dp_stat_add(&wk->st[port].drops[reason], 1);
	rte_pktmbuf_free(m);
}

/* Send @m out of port @port: through this worker's own queue, or a queue owner's ring. */
static inline void
tx(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m)
{
	struct dp_udp *u = wk->udp;
	struct dp_udp_stats *st = &wk->st[port];
	uint32_t bytes = m->pkt_len;
	int16_t q = wk->txq[port];

	if (likely(q >= 0)) {
		/* A frame the device later refuses is counted by tx_unsent() as tx_full. */
		rte_eth_tx_buffer(u->port[port].port_id, (uint16_t)q, wk->txb[port], m);
		wk->pending_tx++;
	} else {
		struct dp_udp_wk *owner = u->wk[wk->index % u->port[port].n_queues];

		m->port = u->port[port].port_id; /* the owner looks the port up by it */
		if (unlikely(rte_ring_mp_enqueue(owner->txback, m) != 0)) {
			drop(wk, port, m, DP_UDP_DROP_TX_FULL);
			return;
		}
		/* After the enqueue's release: pairs with the owner's idle re-check. */
		dp_wake_bump(&owner->lc->wake);
	}
	dp_stat_add(&st->tx_pkts, 1);
	dp_stat_add(&st->tx_bytes, bytes);
}

/* The frame goes back where it came from: Ethernet addresses swapped. */
static inline void
eth_turn(struct rte_ether_hdr *eth, const struct dp_port *p)
{
	rte_ether_addr_copy(&eth->src_addr, &eth->dst_addr);
	rte_ether_addr_copy(&p->mac, &eth->src_addr);
}

/*
 * IPv4 header back to the sender, total length @tot, checksum by device or software. The
 * software checksum is updated from the request's (RFC 1624: HC' = ~(~HC + ~m + m') for each
 * changed word; swapping the addresses leaves the sum alone), which was verified on arrival:
 * re-summing a header just rewritten with narrow stores costs store-forwarding stalls.
 */
static inline void
ip_turn(struct rte_mbuf *m, struct rte_ipv4_hdr *ip, const struct dp_port *p, uint16_t tot)
{
	uint16_t old_ttl, new_ttl, new_len = rte_cpu_to_be_16(tot);
	uint32_t delta;

	memcpy(&old_ttl, &ip->time_to_live, 2); /* time_to_live and next_proto_id */
	new_ttl = (uint16_t)(64 | ip->next_proto_id << 8);
	delta = dp_cksum_delta(old_ttl, new_ttl) + dp_cksum_delta(ip->total_length, new_len) +
		dp_cksum_delta(ip->fragment_offset, 0);
	ip->dst_addr = ip->src_addr;
	ip->src_addr = p->ip_be;
	ip->time_to_live = 64;
	ip->fragment_offset = 0;
	ip->total_length = new_len;
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = rte_ipv4_hdr_len(ip);
	if (p->off.tx_ip_cksum) {
		ip->hdr_checksum = 0;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
	} else {
		ip->hdr_checksum = dp_cksum_update(ip->hdr_checksum, delta);
	}
}

/* An ARP frame for us or broadcast: a request for our address is answered in place. */
static unsigned
arp_reply(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m)
{
	const struct dp_port *p = &wk->udp->port[port];
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);
	struct rte_arp_ipv4 *d;

	if (unlikely(m->data_len < RTE_ETHER_HDR_LEN + sizeof(*a)))
		return DP_UDP_DROP_RUNT;
	d = &a->arp_data;
	if (a->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
	    a->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || a->arp_hlen != 6 ||
	    a->arp_plen != 4 || a->arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) ||
	    d->arp_tip != p->ip_be)
		return DP_UDP_DROP_ARP_OTHER;
	/* Reply in place: to the asker, from us. */
	a->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
	rte_ether_addr_copy(&d->arp_sha, &d->arp_tha);
	d->arp_tip = d->arp_sip;
	rte_ether_addr_copy(&p->mac, &d->arp_sha);
	d->arp_sip = p->ip_be;
	rte_ether_addr_copy(&d->arp_tha, &eth->dst_addr);
	rte_ether_addr_copy(&p->mac, &eth->src_addr);
	m->ol_flags = 0;
	dp_stat_add(&wk->st[port].arp_replies, 1);
	tx(wk, port, m);
	return UDP_DONE;
}

/* ICMP to our address (classify() checked the IPv4 header): an echo request is answered. */
static unsigned
icmp_reply(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	uint16_t ihl = (uint16_t)m->l3_len, tot = rte_be_to_cpu_16(ip->total_length);
	struct rte_icmp_hdr *ic = (struct rte_icmp_hdr *)((uint8_t *)ip + ihl);
	uint16_t len = (uint16_t)(tot - ihl);
	uint32_t sum;

	if (unlikely(len < sizeof(*ic)))
		return DP_UDP_DROP_RUNT;
	if (ic->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || ic->icmp_code != 0)
		return DP_UDP_DROP_ICMP_OTHER;
	if (unlikely(dp_cksum_raw(ic, len) != 0xffff))
		return DP_UDP_DROP_ICMP_OTHER;
	ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	ic->icmp_cksum = 0;
	sum = dp_cksum_raw(ic, len);
	ic->icmp_cksum = (uint16_t)~sum;
	m->ol_flags = 0;
	ip_turn(m, ip, &wk->udp->port[port], tot);
	eth_turn(eth, &wk->udp->port[port]);
	m->data_len = m->pkt_len = (uint32_t)(RTE_ETHER_HDR_LEN + tot); /* no Ethernet padding */
	dp_stat_add(&wk->st[port].icmp_replies, 1);
	tx(wk, port, m);
	return UDP_DONE;
}

/*
 * The UDP checksum of an answer is summed from values, not re-read from the frame: the
 * pseudo-header, the UDP header and the response header were all just written with narrow
 * stores, and wide loads over them stall on store forwarding (about 100 cycles a request in
 * perf/bench_udp_ring). Only the output is summed from memory (it is where the node left it).
 * Sums are of 16-bit words in memory order, as dp_cksum_raw() makes them.
 */
static inline uint32_t
sum64(uint64_t v)
{
	return (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) +
	       (uint32_t)((v >> 32) & 0xffff) + (uint32_t)(v >> 48);
}

/* Sum of the response header dp_wire_resp_write() lays out (little-endian fields). */
static inline uint32_t
resp_hdr_sum(const struct dp_wire_resp *r)
{
	bool audio = r->kind == DP_WIRE_KIND_AUDIO;
	uint8_t flags = (uint8_t)((r->flags & ~DP_WIRE_F_AUDIO) | DP_WIRE_F_RESPONSE |
				  (audio ? DP_WIRE_F_AUDIO : 0));
	uint32_t s = (DP_WIRE_MAGIC0 | DP_WIRE_MAGIC1 << 8) + (DP_WIRE_VERSION | flags << 8) +
		     (uint32_t)(r->status | r->n_annot << 8) + sum64(r->hint) +
		     sum64(r->request_id) + sum64(r->output_len);

	if (audio)
		s += r->fmt + (uint32_t)r->channels + sum64(r->rate);
	return s;
}

/* Sum of @n bytes at @p placed at datagram offset @off (an odd offset swaps the bytes). */
static inline uint32_t
sum_at(const void *p, size_t n, size_t off)
{
	uint16_t v = dp_cksum_raw(p, n);

	return (off & 1) ? rte_bswap16(v) : v;
}

/* Sum of one encoded annotation [klen][vlen] key value at datagram offset @off. */
static inline uint32_t
annot_sum(const char *k, size_t kl, const char *v, size_t vl, size_t off)
{
	uint32_t lens = (off & 1) ? (uint32_t)(kl << 8) + (uint32_t)vl : (uint32_t)(kl | vl << 8);

	return lens + sum_at(k, kl, off + 2) + sum_at(v, vl, off + 2 + kl);
}

/* The answer to a request: header at @dgram, output (already in place) and annotations after
 * it, whose sum is @body_sum; then UDP, IPv4 and Ethernet turned around. */
static void
send_response(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m, uint8_t *dgram,
	      const struct dp_wire_resp *r, size_t total, uint32_t body_sum)
{
	const struct dp_port *p = &wk->udp->port[port];
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)((uint8_t *)eth + m->l2_len);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)((uint8_t *)ip + m->l3_len);
	uint16_t ihl = (uint16_t)m->l3_len;
	uint16_t port_tmp;

	dp_wire_resp_write(dgram, total, r);
	dp_stat_add(&wk->st[port].by_code[r->status < DP_STATUS_MAX ? r->status : DP_UNKNOWN], 1);
	m->ol_flags = 0;
	port_tmp = udp->src_port;
	udp->src_port = udp->dst_port;
	udp->dst_port = port_tmp;
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + total));
	udp->dgram_cksum = 0;
	ip_turn(m, ip, p, (uint16_t)(ihl + sizeof(*udp) + total));
	eth_turn(eth, p);
	m->data_len = m->pkt_len = (uint32_t)(RTE_ETHER_HDR_LEN + ihl + sizeof(*udp) + total);
	if (p->off.tx_udp_cksum) {
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
		udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	} else {
		/* Pseudo-header + UDP header (ports, length) + the datagram, all from values. */
		uint16_t ulen = (uint16_t)(sizeof(*udp) + total);

		udp->dgram_cksum = dp_cksum_udp_field(
		    dp_cksum_pseudo_udp(ip, ulen) + udp->src_port + udp->dst_port + udp->dgram_len +
		    dp_cksum_fold(resp_hdr_sum(r)) + dp_cksum_fold(body_sum));
	}
	tx(wk, port, m);
}

/* An answer with a status and no output. The message goes in an "error" annotation only as
 * far as it keeps the response no longer than the request (no amplification). */
static void
send_error(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m, uint8_t *dgram, size_t req_len,
	   uint64_t request_id, int status, uint32_t hint, const char *msg)
{
	struct dp_wire_resp r = {
	    .status = (uint8_t)status,
	    .hint = hint,
	    .request_id = request_id,
	    .kind = DP_WIRE_KIND_BYTES,
	};
	size_t total = DP_WIRE_HDR_LEN;
	size_t fixed = DP_WIRE_HDR_LEN + dp_wire_annot_size(5, 0);
	uint32_t body = 0;

	if (msg != NULL && req_len > fixed) {
		size_t vlen = strlen(msg), room = req_len - fixed;

		if (vlen > room)
			vlen = room;
		if (vlen > DP_WIRE_ANNOT_VAL_MAX)
			vlen = DP_WIRE_ANNOT_VAL_MAX;
		if (vlen > 0) {
			body = annot_sum("error", 5, msg, vlen, total);
			total += dp_wire_annot_write(dgram + total, req_len - total, "error", 5,
						     msg, vlen);
			r.n_annot = 1;
		}
	}
	send_response(wk, port, m, dgram, &r, total, body);
}

static inline uint64_t *
rx_tsc(const struct dp_udp *u, struct rte_mbuf *m)
{
	return RTE_MBUF_DYNFIELD(m, u->tsc_dynfield, uint64_t *);
}

/* Most bytes of corepipe answer (UDP payload) for a request of @len bytes: its IPv4 datagram at
 * most DP_UDP_ANSWER_FACTOR times the request's (the IPv4 and UDP headers are the same size
 * both ways). */
static inline size_t
answer_max(const struct rte_mbuf *m, size_t len)
{
	size_t hdrs = m->l3_len + sizeof(struct rte_udp_hdr);

	return DP_UDP_ANSWER_FACTOR * (hdrs + len) - hdrs;
}

/*
 * A request on its way through serve()'s steps: parse -> steer -> admit -> place -> run ->
 * respond. Each step returns UDP_NEXT to pass it on, or ends it: UDP_DONE (answered, handed
 * off) or a drop reason. Lives on serve()'s stack, as does the view.
 */
struct udp_rq {
	struct dp_udp_wk *wk;
	unsigned port;
	struct rte_mbuf *m; /**< L2..L4 checked, m->l2_len/l3_len set */
	uint64_t arrival;   /**< TSC at RX */
	const struct rte_udp_hdr *udp;
	uint8_t *dgram; /**< the UDP payload: the corepipe datagram */
	size_t len;	/**< its length */
	uint8_t *end;	/**< end of the mbuf's buffer: the room the answer has */
	struct dp_wire_req req;
	const struct dp_pipeline *p; /**< admit(): RCU read side, valid until the burst ends */
	struct dp_buf *view;	     /**< place(): storage for a view of the payload in the mbuf */
	struct dp_exec x;	     /**< run(): x.buf is the output */
	struct dp_result res;
};

/* Answer @p q with @p status and no output (send_error): the request is done. */
static inline unsigned
refuse(struct udp_rq *q, int status, uint32_t hint, const char *msg)
{
	send_error(q->wk, q->port, q->m, q->dgram, q->len, q->req.request_id, status, hint, msg);
	return UDP_DONE;
}

/* The corepipe request header: a datagram not ours is dropped, a malformed one refused. */
static inline unsigned
parse(struct udp_rq *q)
{
	enum dp_wire_drop why_drop;
	const char *why;

	switch (dp_wire_req_parse(q->dgram, q->len, &q->req, &why_drop, &why)) {
	case DP_WIRE_DROP:
		return why_drop == DP_WIRE_DROP_MAGIC	   ? DP_UDP_DROP_WIRE_MAGIC
		       : why_drop == DP_WIRE_DROP_RESPONSE ? DP_UDP_DROP_WIRE_RESPONSE
							   : DP_UDP_DROP_WIRE_SHORT;
	case DP_WIRE_REJECT:
		return refuse(q, DP_INVALID_ARGUMENT, 0, why);
	case DP_WIRE_OK:
		break;
	}
	return UDP_NEXT;
}

/* Hand-off: requests whose flow belongs to another worker go there (single-queue device).
 * The flow hash keeps one client's requests in order on one worker. */
static inline unsigned
steer(struct udp_rq *q)
{
	struct dp_udp_wk *wk = q->wk;
	struct dp_udp *u = wk->udp;
	const struct dp_port *pt = &u->port[q->port];
	const struct rte_ipv4_hdr *ip =
	    rte_pktmbuf_mtod_offset(q->m, struct rte_ipv4_hdr *, q->m->l2_len);
	struct dp_udp_wk *t;
	unsigned target;

	if (!(u->handoff && pt->n_queues < u->n_workers && wk->index < pt->n_queues))
		return UDP_NEXT;
	target = rte_hash_crc_4byte(ip->src_addr, q->udp->src_port) % u->n_workers;
	if (target == wk->index)
		return UDP_NEXT;
	t = u->wk[target];
	*rx_tsc(u, q->m) = q->arrival;
	q->m->port = pt->port_id; /* not every PMD sets it (net_ring does not) */
	if (unlikely(rte_ring_mp_enqueue(t->handoff, q->m) != 0))
		return refuse(q, DP_RESOURCE_EXHAUSTED,
			      atomic_load_explicit(&wk->lc->pushback_ms, memory_order_relaxed),
			      "worker hand-off ring full: retry later");
	dp_stat_add(&wk->st[q->port].handoff_out, 1);
	/* After the enqueue's release: pairs with the target's re-check in its reactor's idle
	 * re-check (dp_udp_pending). */
	dp_wake_bump(&t->lc->wake);
	return UDP_DONE;
}

/* Whether this worker runs the request now: not draining or shedding, the pipeline known,
 * stateless, and the deadline not passed in the queue. */
static inline unsigned
admit(struct udp_rq *q)
{
	struct dp_udp *u = q->wk->udp;
	struct dp_lcore *w = q->wk->lc;
	struct dp_err e;

	if (unlikely(atomic_load_explicit(&u->draining, memory_order_relaxed)))
		return refuse(q, DP_UNAVAILABLE, 0, "server is shutting down");
	if (unlikely(atomic_load_explicit(&w->shedding, memory_order_relaxed)))
		return refuse(q, DP_RESOURCE_EXHAUSTED,
			      atomic_load_explicit(&w->pushback_ms, memory_order_relaxed),
			      "load shedding: worker overloaded");
	/* RCU read side: valid until this worker's next quiescent state, after the burst. */
	q->p = dp_registry_lookup_id(w->reg, q->req.pipeline_id);
	if (unlikely(q->p == NULL)) {
		dp_err_set(&e, DP_NOT_FOUND, "pipeline id %u not found", q->req.pipeline_id);
		dp_metrics_count(w->met, 0, DP_NOT_FOUND);
		return refuse(q, DP_NOT_FOUND, 0, e.msg);
	}
	if (unlikely(q->req.deadline_us != 0 &&
		     rte_rdtsc() - q->arrival >
			 (uint64_t)q->req.deadline_us * (u->tsc_hz / 1000000))) {
		dp_metrics_count(w->met, q->p->id, DP_DEADLINE_EXCEEDED);
		return refuse(q, DP_DEADLINE_EXCEEDED, 0, "deadline expired in queue; not run");
	}
	if (unlikely(q->p->state_size != 0)) {
		dp_metrics_count(w->met, q->p->id, DP_FAILED_PRECONDITION);
		return refuse(q, DP_FAILED_PRECONDITION, 0,
			      "stateful pipeline: use ExecuteStream over gRPC");
	}
	return UDP_NEXT;
}

/* The payload where it arrived (zero copy) when it is 8-byte aligned, as it is behind
 * Ethernet + IPv4 without options; otherwise in a pool buffer. Sets q->x.buf. */
static inline unsigned
place(struct udp_rq *q)
{
	struct dp_lcore *w = q->wk->lc;
	uint8_t *payload = q->dgram + q->req.payload_off;
	struct dp_buf *b = q->view;

	if (likely(((uintptr_t)payload & 7) == 0)) {
		dp_buf_view(b, payload, q->req.payload_len, (uint32_t)(q->end - payload));
	} else {
		b = dp_pools_get(w->pools, q->req.payload_len);
		if (unlikely(b == NULL)) {
			dp_metrics_count(w->met, q->p->id, DP_RESOURCE_EXHAUSTED);
			return refuse(q, DP_RESOURCE_EXHAUSTED, 1, "no buffer free");
		}
		memcpy(b->data, payload, q->req.payload_len);
		dp_stat_add(&q->wk->st[q->port].copied, 1);
	}
	q->x.buf = b;
	return UDP_NEXT;
}

/* Run the pipeline over q->x.buf, counted; a failure is answered with its status. */
static inline unsigned
run(struct udp_rq *q)
{
	struct dp_udp_wk *wk = q->wk;
	struct dp_lcore *w = wk->lc;
	struct dp_exec *x = &q->x;
	int rc;

	q->res.n_annot = 0;
	q->res.err.msg[0] = '\0';
	dp_exec_init(x, x->buf,
		     &(struct dp_format){.kind = q->req.kind,
					 .fmt = q->req.fmt,
					 .channels = q->req.channels,
					 .rate = q->req.rate},
		     w->pools, &q->res, NULL);
	/* Every node's output bounded by what the answer may carry (DP_UDP_ANSWER_FACTOR): the
	 * work a datagram causes is proportional to it (a zstd bomb stops inflating there). */
	rc = dp_pipeline_run_capped(q->p, x, NULL, DP_RUN_FRAME,
				    (uint32_t)(answer_max(q->m, q->len) - DP_WIRE_HDR_LEN));
	dp_metrics_count(w->met, q->p->id, (unsigned)rc);
	dp_metrics_bytes(w->met, q->p->id, q->req.payload_len, rc == DP_OK ? x->buf->len : 0);
	/* Timed per burst (one TSC read for all of it, rdtsc is slow on some VMs): see
	 * observe_burst(). */
	if (likely(wk->n_ran < DP_UDP_BURST)) {
		wk->ran_port[wk->n_ran] = (uint8_t)q->port;
		wk->ran[wk->n_ran++] = (uint16_t)q->p->id;
	}
	if (unlikely(rc != DP_OK)) {
		dp_buf_free(x->buf);
		return refuse(q, rc, 0, q->res.err.msg);
	}
	return UDP_NEXT;
}

/* The answer, built where the request was: output at the payload's offset (same offset for
 * the same kind of header), annotations after it; refused OUT_OF_RANGE when it would exceed
 * the amplification bound or one datagram. */
static inline unsigned
respond(struct udp_rq *q)
{
	const struct dp_port *pt = &q->wk->udp->port[q->port];
	const struct dp_exec *x = &q->x;
	const struct dp_result *res = &q->res;
	uint8_t klen[DP_ANNOT_MAX], vlen[DP_ANNOT_MAX];
	struct dp_wire_resp r;
	struct dp_err e;
	size_t out_off, total;
	uint8_t *out;
	uint32_t body;

	memset(&r, 0, sizeof(r));
	r.kind = x->fmt.kind == DP_KIND_AUDIO ? DP_WIRE_KIND_AUDIO : DP_WIRE_KIND_BYTES;
	out_off = dp_wire_resp_hdr_len(r.kind == DP_WIRE_KIND_AUDIO);
	total = out_off + x->buf->len;
	for (unsigned i = 0; i < res->n_annot; i++) {
		klen[i] = (uint8_t)strlen(res->annot[i].key); /* < DP_ANNOT_KEY_MAX */
		vlen[i] = (uint8_t)strlen(res->annot[i].val); /* < DP_ANNOT_VAL_MAX */
		total += dp_wire_annot_size(klen[i], vlen[i]);
	}
	if (unlikely(total > answer_max(q->m, q->len))) {
		dp_err_set(&e, DP_OUT_OF_RANGE,
			   "answer of %zu bytes would be more than %d times the request (%zu "
			   "bytes, IPv4 datagram)",
			   total, DP_UDP_ANSWER_FACTOR,
			   q->len + q->m->l3_len + sizeof(struct rte_udp_hdr));
		dp_buf_free(x->buf);
		return refuse(q, DP_OUT_OF_RANGE, 0, e.msg);
	}
	if (unlikely(total > pt->max_payload || q->dgram + total > q->end)) {
		dp_err_set(&e, DP_OUT_OF_RANGE,
			   "response of %zu bytes does not fit in one datagram (%u max)", total,
			   pt->max_payload);
		dp_buf_free(x->buf);
		return refuse(q, DP_OUT_OF_RANGE, 0, e.msg);
	}
	out = q->dgram + out_off;
	if (x->buf->data != out)
		memmove(out, x->buf->data, x->buf->len); /* a node's new buffer, or a kind change */
	r.output_len = x->buf->len;
	r.request_id = q->req.request_id;
	r.status = DP_OK;
	r.n_annot = res->n_annot;
	r.fmt = x->fmt.fmt;
	r.channels = x->fmt.channels;
	r.rate = x->fmt.rate;
	body = dp_cksum_raw(out, x->buf->len); /* out_off is even */
	out += x->buf->len;
	dp_buf_free(x->buf);
	for (unsigned i = 0; i < res->n_annot; i++) {
		const char *k = res->annot[i].key, *v = res->annot[i].val;

		body += annot_sum(k, klen[i], v, vlen[i], (size_t)(out - q->dgram));
		out += dp_wire_annot_write(out, (size_t)(q->end - out), k, klen[i], v, vlen[i]);
	}
	send_response(q->wk, q->port, q->m, q->dgram, &r, total, body);
	return UDP_DONE;
}

/* A validated UDP datagram to our port (classify() said UDP_SERVE): the request, through its
 * steps. @return UDP_DONE, or the reason to drop the frame. */
static unsigned
serve(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m, uint64_t arrival)
{
	struct rte_udp_hdr *udp =
	    rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, m->l2_len + m->l3_len);
	struct udp_rq q; /* not zeroed: each step writes what the next reads */
	struct dp_buf view;
	unsigned v;

	q.wk = wk;
	q.port = port;
	q.m = m;
	q.arrival = arrival;
	q.udp = udp;
	q.dgram = (uint8_t *)(udp + 1);
	q.len = rte_be_to_cpu_16(udp->dgram_len) - sizeof(*udp);
	q.end = (uint8_t *)m->buf_addr + m->buf_len;
	q.view = &view;
	v = parse(&q);
	if (v == UDP_NEXT)
		v = steer(&q);
	if (v == UDP_NEXT)
		v = admit(&q);
	if (v == UDP_NEXT)
		v = place(&q);
	if (v == UDP_NEXT)
		v = run(&q);
	if (v == UDP_NEXT)
		v = respond(&q);
	return v;
}

/* A broadcast or multicast IPv4 address (as a destination: not one of ours to answer). */
static inline bool
ip_group(const struct dp_port *p, uint32_t a_be)
{
	uint32_t a = rte_be_to_cpu_32(a_be);

	return (a >> 28) == 0xe || a == 0xffffffffu || (p->bcast_be != 0 && a_be == p->bcast_be);
}

/* An address no host sends from: "this network" 0/8, loopback 127/8, multicast 224/4,
 * reserved and limited broadcast 240/4, our own, and our subnet's network and broadcast
 * addresses (RFC 1122 3.2.1.3, RFC 1812 5.3.7). */
static inline bool
src_bogus(const struct dp_port *p, uint32_t a_be)
{
	uint32_t a = rte_be_to_cpu_32(a_be);

	return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 0xe || a_be == p->ip_be ||
	       (p->bcast_be != 0 && (a_be == p->net_be || a_be == p->bcast_be));
}

/*
 * L2 to L4 of a frame received on port @p p, checked without touching it (but l2_len and
 * l3_len): what to do with it, or why to drop it. @return UDP_ARP, UDP_ICMP, UDP_SERVE, or a
 * drop reason.
 */
static inline unsigned
classify(const struct dp_port *p, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;
	uint16_t ihl, tot, ulen;
	uint64_t fl;

	if (unlikely(m->nb_segs != 1))
		return DP_UDP_DROP_SEGMENTED;
	if (unlikely(m->data_len < RTE_ETHER_HDR_LEN))
		return DP_UDP_DROP_RUNT;
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	/* A group address (multicast, broadcast) never sends a frame: a forged one would make us
	 * answer every host at once. */
	if (unlikely(rte_is_multicast_ether_addr(&eth->src_addr)))
		return DP_UDP_DROP_SRC_BOGUS;
	if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
		if (!rte_is_same_ether_addr(&eth->dst_addr, &p->mac) &&
		    !rte_is_broadcast_ether_addr(&eth->dst_addr))
			return DP_UDP_DROP_L2_OTHER;
		return UDP_ARP;
	}
	if (unlikely(eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4)))
		return DP_UDP_DROP_ETHERTYPE;
	if (unlikely(!rte_is_same_ether_addr(&eth->dst_addr, &p->mac)))
		return rte_is_multicast_ether_addr(&eth->dst_addr) ? DP_UDP_DROP_DST_NOT_UNICAST
								   : DP_UDP_DROP_L2_OTHER;
	if (unlikely(m->data_len < RTE_ETHER_HDR_LEN + sizeof(*ip)))
		return DP_UDP_DROP_RUNT;
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	ihl = (uint16_t)((ip->version_ihl & 0x0f) * 4);
	tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || tot < ihl ||
		     RTE_ETHER_HDR_LEN + (uint32_t)tot > m->data_len))
		return DP_UDP_DROP_IP_BAD;
	fl = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (p->off.rx_ip_cksum && fl == RTE_MBUF_F_RX_IP_CKSUM_BAD)
		return DP_UDP_DROP_IP_CKSUM;
	if (!(p->off.rx_ip_cksum && fl == RTE_MBUF_F_RX_IP_CKSUM_GOOD) &&
	    unlikely(!dp_cksum_ipv4_ok(ip, ihl)))
		return DP_UDP_DROP_IP_CKSUM;
	if (unlikely((ip->fragment_offset &
		      RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0))
		return DP_UDP_DROP_IP_FRAGMENT;
	if (unlikely(ip->dst_addr != p->ip_be))
		return ip_group(p, ip->dst_addr) ? DP_UDP_DROP_DST_NOT_UNICAST
						 : DP_UDP_DROP_IP_NOT_US;
	/* Echo and UDP answers go to the source: never to one no host sends from. */
	if (unlikely(src_bogus(p, ip->src_addr)))
		return DP_UDP_DROP_SRC_BOGUS;
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = ihl;
	if (ip->next_proto_id == IPPROTO_ICMP)
		return UDP_ICMP;
	if (unlikely(ip->next_proto_id != IPPROTO_UDP))
		return DP_UDP_DROP_IP_PROTO;
	if (unlikely(tot < ihl + sizeof(*udp)))
		return DP_UDP_DROP_UDP_BAD;
	udp = (struct rte_udp_hdr *)((uint8_t *)ip + ihl);
	ulen = rte_be_to_cpu_16(udp->dgram_len);
	if (unlikely(ulen < sizeof(*udp) || ulen > tot - ihl))
		return DP_UDP_DROP_UDP_BAD;
	if (unlikely(udp->dst_port != p->udp_port_be))
		return DP_UDP_DROP_UDP_PORT;
	if (unlikely(udp->src_port == 0))
		return DP_UDP_DROP_SRC_PORT_ZERO;
	/* The UDP path has no tokens: the network it serves is its access control. */
	if (unlikely((ip->src_addr & p->allow_mask_be) != p->allow_net_be))
		return DP_UDP_DROP_SRC_DENIED;
	/* A zero UDP checksum means "none" in IPv4. */
	if (udp->dgram_cksum != 0) {
		fl = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
		if (p->off.rx_udp_cksum && fl == RTE_MBUF_F_RX_L4_CKSUM_BAD)
			return DP_UDP_DROP_UDP_CKSUM;
		if (!(p->off.rx_udp_cksum && fl == RTE_MBUF_F_RX_L4_CKSUM_GOOD) &&
		    unlikely(!dp_cksum_udp_ok(ip, udp, ulen)))
			return DP_UDP_DROP_UDP_CKSUM;
	}
	return UDP_SERVE;
}

void
dp_udp_frame(struct dp_udp_wk *wk, unsigned port, struct rte_mbuf *m, uint64_t now)
{
	unsigned v = classify(&wk->udp->port[port], m);

	if (likely(v == UDP_SERVE))
		v = serve(wk, port, m, now);
	else if (v == UDP_ARP)
		v = arp_reply(wk, port, m);
	else if (v == UDP_ICMP)
		v = icmp_reply(wk, port, m);
	if (v != UDP_DONE)
		drop(wk, port, m, v);
}

/* The duration histogram and cycles counter for the requests of one burst: one TSC read, the
 * burst's time shared equally (per-request reads cost more than the requests on some VMs). */
static inline void
observe_burst(struct dp_udp_wk *wk)
{
	uint64_t t, per;

	if (wk->n_ran == 0)
		return;
	t = rte_rdtsc();
	per = (t - wk->t_mark) / wk->n_ran;
	for (unsigned i = 0; i < wk->n_ran; i++) {
		dp_metrics_observe(wk->lc->met, wk->ran[i], per);
		dp_stat_add(&wk->st[wk->ran_port[i]].cycles, per);
	}
	wk->t_mark = t;
	wk->n_ran = 0;
}

void
dp_udp_flush(struct dp_udp_wk *wk)
{
	struct dp_udp *u = wk->udp;

	for (unsigned i = 0; i < u->n_ports; i++)
		if (wk->txq[i] >= 0)
			rte_eth_tx_buffer_flush(u->port[i].port_id, (uint16_t)wk->txq[i],
						wk->txb[i]);
	wk->pending_tx = 0;
}

bool
dp_udp_pending(const struct dp_udp_wk *wk)
{
	return (wk->handoff != NULL && !rte_ring_empty(wk->handoff)) ||
	       (wk->txback != NULL && !rte_ring_empty(wk->txback)) || wk->pending_tx != 0;
}

unsigned
dp_udp_poll(struct dp_udp_wk *wk, bool rx)
{
	struct dp_udp *u = wk->udp;
	struct rte_mbuf *pkts[DP_UDP_BURST];
	uint64_t now = rte_rdtsc();
	unsigned total = 0, n;
	bool full = false;

	wk->t_mark = now;
	wk->n_ran = 0;
	for (unsigned i = 0; rx && i < u->n_ports; i++) {
		struct dp_udp_stats *st = &wk->st[i];
		uint64_t bytes = 0;

		if (wk->txq[i] < 0)
			continue;
		n = rte_eth_rx_burst(u->port[i].port_id, (uint16_t)wk->txq[i], pkts, DP_UDP_BURST);
		if (n == 0)
			continue;
		full |= n == DP_UDP_BURST;
		for (unsigned j = 0; j < n && j < PREFETCH_OFFSET; j++)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[j], void *));
		for (unsigned j = 0; j < n; j++) {
			if (j + PREFETCH_OFFSET < n)
				rte_prefetch0(rte_pktmbuf_mtod(pkts[j + PREFETCH_OFFSET], void *));
			bytes += pkts[j]->pkt_len;
			dp_udp_frame(wk, i, pkts[j], now);
		}
		dp_stat_add(&st->rx_pkts, n);
		dp_stat_add(&st->rx_bytes, bytes);
		total += n;
		observe_burst(wk);
	}
	if (wk->handoff != NULL) {
		/* Requests other workers took off their queues for us. */
		n = rte_ring_sc_dequeue_burst(wk->handoff, (void **)pkts, DP_UDP_BURST, NULL);
		for (unsigned j = 0; j < n; j++)
			serve(wk, u->port_idx[pkts[j]->port], pkts[j], *rx_tsc(u, pkts[j]));
		total += n;
		observe_burst(wk);
		/* Responses other workers made for our queues. */
		n = rte_ring_sc_dequeue_burst(wk->txback, (void **)pkts, DP_UDP_BURST, NULL);
		for (unsigned j = 0; j < n; j++) {
			unsigned i = u->port_idx[pkts[j]->port];

			rte_eth_tx_buffer(u->port[i].port_id, (uint16_t)wk->txq[i], wk->txb[i],
					  pkts[j]);
			wk->pending_tx++;
		}
		total += n;
	}
	/* Flush when nothing more is coming to batch with, or the drain time passed. */
	if (wk->pending_tx != 0 && (!full || now - wk->last_flush >= u->drain_cycles)) {
		dp_udp_flush(wk);
		wk->last_flush = now;
	}
	return total;
}

/*
 * bench_udp_gen: a DPDK traffic generator for the UDP front end. It builds valid corepipe
 * requests (Ethernet / IPv4 / UDP with correct checksums, wire v1, one pipeline id, a fixed
 * payload size, --flows source ports so that flows spread), sends them on the first ethdev of
 * its EAL as fast as the device takes them (or at --rate), receives the answers, validates
 * them and reports requests/s, answers/s, drops and answer latency percentiles. Each request
 * id is the TSC at send, so the latency of an answer is the TSC at receipt minus its id.
 *
 *   bench_udp_gen EAL-ARGS -- [--pipeline ID[,ID...]] [--size BYTES] [--flows N] [--rate PPS]
 *       [-z|--duration SECONDS] [--warmup SECONDS] [--window N] [--reflect] [--crc ID] [--src-ip A]
 *       [--dst-ip A] [--dst-port P] [--dst-mac MAC] [--label NAME]
 *
 * Two kinds of peer:
 *   - corepiped (default): the generator resolves --dst-ip by ARP, and every answer must be a
 *     v1 response: counted by status; an OK answer must carry the payload back unchanged
 *     (passthrough) and, for pipeline --crc ID, a "crc32c" annotation equal to the payload's
 * CRC-32C.
 *   - --reflect: a peer that sends every frame back unchanged (dpdk-testpmd
 *     --forward-mode=io): a returned request of ours counts as an answer. No ARP.
 *
 * Pipeline ids given as a list are measured one after the other in the same process (the
 * device stays connected). Each measurement: a probe (one request every 10 ms until one is
 * answered, at most 10 s), --warmup seconds of load, then -z seconds counted, then 200 ms of
 * draining. It prints a human summary and one line "RESULT {json}" per pipeline.
 *
 * --peer-schedstat names the schedstat file of the peer's forwarding thread (read at the start
 * and end of the counted seconds, if it exists by then): its on-CPU time gives the peer's
 * cycles per answer and answers per on-CPU second, figures that hold on a shared machine where
 * the scheduler gives each contender a different share of its CPU. --hold keeps the port up
 * that long after the last result (read and stop the peer first, then the generator).
 *
 * --window N bounds outstanding requests (closed loop, for latency at a given load); 0 (the
 * default) sends as fast as the device accepts (open loop: the peer's queues fill, latency is
 * then queueing). Outstanding requests unanswered for 100 ms are written off as lost.
 *
 * Context: one lcore (the main one) does everything. Ownership: every mbuf allocated is sent
 * or freed; every mbuf received is freed.
 */
#include "dataplane/wire.h"
#include "perf/common.h"
#include "perf/perf_opt.h"

#include <errno.h>
#include <inttypes.h>
#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST		    32
#define FLOWS_MAX	    4096
#define PIPELINES_MAX	    8
#define NB_MBUFS	    16383
#define NB_DESC		    1024
#define HDRS_LEN	    (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr))
#define LOST_MS		    100
#define DP_STATUS_COUNT_MAX 17 /* gRPC status numbers 0..16 */

struct opts {
	const char *pipeline_list; /* --pipeline ID[,ID...], parsed into pipelines[] */
	uint32_t pipelines[PIPELINES_MAX];
	unsigned n_pipelines;
	unsigned size;
	unsigned flows;
	uint64_t rate;
	double seconds, warmup;
	unsigned window;
	bool reflect;
	uint32_t crc; /* pipeline whose answers must carry the crc32c annotation; 0: none */
	const char *src_ip_str, *dst_ip_str; /* parsed into src_ip, dst_ip */
	uint32_t src_ip, dst_ip;	     /* network order */
	uint16_t src_port0, dst_port;
	bool have_dst_mac;
	struct rte_ether_addr dst_mac;
	const char *label;
	const char *peer_schedstat; /* /proc/PID/task/TID/schedstat of the peer's lcore */
	double hold;		    /* seconds to keep the port up after the last result */
};

/* Counters of one measurement. */
struct counts {
	uint64_t sent;	   /* requests the device accepted */
	uint64_t refused;  /* tx_burst calls that took less than offered (backpressure) */
	uint64_t answered; /* answers to our requests (any status) */
	uint64_t by_status[DP_STATUS_COUNT_MAX];
	uint64_t bad_output; /* OK answers whose output or crc annotation is wrong */
	uint64_t bad;	     /* frames that are neither a valid answer nor ignorable */
	uint64_t other;	     /* ARP and other frames not for the measurement */
	uint64_t lost;	     /* written off by the window's 100 ms rule */
};

struct gen {
	struct opts o;
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_ether_addr mac;
	uint64_t hz;
	/* Frame templates, one per flow, request id 0 and UDP checksum 0. */
	uint8_t *tmpl;
	unsigned frame_len;
	uint32_t *cksum_base; /* per flow: unfolded sum of pseudo-header, UDP header, datagram */
	char crc_hex[9];      /* expected crc32c annotation */
	uint8_t *payload;     /* the payload every request carries */
	/* Measurement state. */
	uint32_t pipeline;
	struct counts c;
	struct hist *lat; /* cycles */
	uint64_t meas_start, meas_end;
	bool measuring;
	uint64_t last_answer;
};

/* ==== Options =============================================================================== */

static int
parse_ip(const char *s, uint32_t *out)
{
	unsigned a, b, c, d;
	char tail;

	if (sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
	    c > 255 || d > 255)
		return -EINVAL;
	*out = rte_cpu_to_be_32(RTE_IPV4(a, b, c, d));
	return 0;
}

/* --pipeline ID[,ID...]: ids in [1, 4096], at most PIPELINES_MAX (the rest are ignored). */
static int
parse_pipelines(const char *s, struct opts *o)
{
	char *end;

	o->n_pipelines = 0;
	while (*s != '\0' && o->n_pipelines < PIPELINES_MAX) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0 || v > 4096)
			return -EINVAL;
		o->pipelines[o->n_pipelines++] = (uint32_t)v;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return -EINVAL;
	}
	return o->n_pipelines > 0 ? 0 : -EINVAL;
}

static const char *
parse_mac(void *opts, const struct perf_opt *row, const char *arg)
{
	struct opts *o = opts;

	(void)row;
	if (rte_ether_unformat_addr(arg, &o->dst_mac) != 0)
		return "expected a MAC address (aa:bb:cc:dd:ee:ff)";
	o->have_dst_mac = true;
	return NULL;
}

#define AT(field, ctype) PERF_OPT_AT(struct opts, field, ctype)

static const struct perf_opt g_table[] = {
    {"pipeline", 0, PERF_OPT_STR, AT(pipeline_list, const char *), .arg = "ID[,ID...]",
     .help = "pipeline ids, measured one after the other", .show_default = true},
    {"size", 0, PERF_OPT_UINT, AT(size, unsigned), 0, 1400, .arg = "BYTES",
     .help = "payload bytes per request", .show_default = true},
    {"flows", 0, PERF_OPT_UINT, AT(flows, unsigned), 1, FLOWS_MAX, .arg = "N",
     .help = "source ports, so that flows spread", .show_default = true},
    {"rate", 0, PERF_OPT_U64, AT(rate, uint64_t), 0, 1e12, .arg = "PPS",
     .help = "requests/s; 0: as fast as the device takes them", .show_default = true},
    {"duration", 'z', PERF_OPT_DOUBLE, AT(seconds, double), 0.001, 1e6, .arg = "SECONDS",
     .help = "seconds counted per pipeline", .show_default = true},
    {"warmup", 0, PERF_OPT_DOUBLE, AT(warmup, double), 0, 1e6, .arg = "SECONDS",
     .help = "seconds of load before counting", .show_default = true},
    {"window", 0, PERF_OPT_UINT, AT(window, unsigned), 0, 4294967295.0, .arg = "N",
     .help = "requests outstanding at most; 0: open loop", .show_default = true},
    {"reflect", 0, PERF_OPT_FLAG, AT(reflect, bool),
     .help = "the peer sends every frame back unchanged (no ARP)"},
    {"crc", 0, PERF_OPT_UINT, AT(crc, uint32_t), 0, 4294967295.0, .arg = "ID",
     .help = "answers of this pipeline must carry a crc32c annotation"},
    {"src-ip", 0, PERF_OPT_STR, AT(src_ip_str, const char *), .arg = "A",
     .help = "our IPv4 address", .show_default = true},
    {"dst-ip", 0, PERF_OPT_STR, AT(dst_ip_str, const char *), .arg = "A",
     .help = "the peer's IPv4 address", .show_default = true},
    {"dst-port", 0, PERF_OPT_U16, AT(dst_port, uint16_t), 1, 65535, .arg = "P",
     .help = "the peer's UDP port", .show_default = true},
    {"dst-mac", 0, PERF_OPT_FUNC, .fn = parse_mac, .arg = "MAC",
     .help = "the peer's MAC (default: by ARP; ff:ff:ff:ff:ff:ff with --reflect)"},
    {"label", 0, PERF_OPT_STR, AT(label, const char *), .arg = "NAME",
     .help = "label of the RESULT lines"},
    {"peer-schedstat", 0, PERF_OPT_STR, AT(peer_schedstat, const char *),
     .arg = "/proc/PID/task/TID/schedstat", .help = "\nthe peer's forwarding thread's schedstat"},
    {"hold", 0, PERF_OPT_DOUBLE, AT(hold, double), 0, 600, .arg = "SECONDS",
     .help = "keep the port up this long after the last result"},
    {"help", 'h', PERF_OPT_HELP, .help = "this text"},
    {.type = PERF_OPT_END},
};

static const struct perf_opt_cmd g_cmd = {
    .prog = "bench_udp_gen",
    .synopsis = "usage: bench_udp_gen EAL-ARGS -- [options]\n\n",
    .opts = g_table,
    .size = sizeof(struct opts),
};

/* @return 0, 1 (--help printed) or -EINVAL (reported). */
static int
parse_opts(int argc, char **argv, struct opts *o)
{
	int argi, rc;

	*o = (struct opts){.pipeline_list = "1",
			   .size = 64,
			   .flows = 256,
			   .seconds = 5,
			   .warmup = 1,
			   .src_port0 = 10000,
			   .dst_port = 9000,
			   .label = "",
			   .src_ip_str = "10.99.0.2",
			   .dst_ip_str = "10.99.0.1"};
	rc = perf_opt_parse(&g_cmd, argc, argv, o, &argi);
	if (rc != 0)
		return rc;
	if (argi != argc) {
		fprintf(stderr, "bench_udp_gen: unexpected argument '%s'\n", argv[argi]);
		return -EINVAL;
	}
	if (parse_pipelines(o->pipeline_list, o) != 0) {
		fprintf(stderr, "bench_udp_gen: --pipeline: '%s' is not ID[,ID...] (1..4096)\n",
			o->pipeline_list);
		return -EINVAL;
	}
	if (parse_ip(o->src_ip_str, &o->src_ip) != 0 || parse_ip(o->dst_ip_str, &o->dst_ip) != 0) {
		fprintf(stderr, "bench_udp_gen: --src-ip, --dst-ip: expected A.B.C.D\n");
		return -EINVAL;
	}
	return 0;
}

/* ==== Port ================================================================================== */

static int
port_open(struct gen *g)
{
	struct rte_eth_conf conf;
	struct rte_eth_link link;
	int rc;

	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "bench_udp_gen: no ethdev (give one with --vdev)\n");
		return -ENODEV;
	}
	g->port = 0;
	g->pool = rte_pktmbuf_pool_create("gen_mbufs", NB_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					  (int)rte_socket_id());
	if (g->pool == NULL)
		return -rte_errno;
	memset(&conf, 0, sizeof(conf));
	rc = rte_eth_dev_configure(g->port, 1, 1, &conf);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(g->port, 0, NB_DESC, (unsigned)rte_socket_id(), NULL,
					    g->pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(g->port, 0, NB_DESC, (unsigned)rte_socket_id(), NULL);
	if (rc == 0)
		rc = rte_eth_dev_start(g->port);
	if (rc != 0) {
		fprintf(stderr, "bench_udp_gen: port setup: %s\n", rte_strerror(-rc));
		return rc;
	}
	rte_eth_macaddr_get(g->port, &g->mac);
	/* A memif server's link comes up when the peer connects: wait up to 60 s. */
	for (int i = 0; i < 6000; i++) {
		if (rte_eth_link_get_nowait(g->port, &link) == 0 && link.link_status)
			return 0;
		rte_delay_ms(10);
	}
	fprintf(stderr, "bench_udp_gen: link did not come up in 60 s\n");
	return -ETIMEDOUT;
}

static void
drain_rx(struct gen *g, void (*fn)(struct gen *, struct rte_mbuf *, uint64_t))
{
	struct rte_mbuf *pkts[BURST];
	uint16_t n = rte_eth_rx_burst(g->port, 0, pkts, BURST);
	uint64_t now = rte_rdtsc();

	for (uint16_t i = 0; i < n; i++) {
		if (fn != NULL)
			fn(g, pkts[i], now);
		rte_pktmbuf_free(pkts[i]);
	}
}

/* ARP for --dst-ip, one request every 100 ms, at most 10 s. */
static bool g_arp_done;

static void
arp_rx(struct gen *g, struct rte_mbuf *m, uint64_t now)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *a = (struct rte_arp_hdr *)(eth + 1);

	(void)now;
	if (m->data_len < sizeof(*eth) + sizeof(*a) ||
	    eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_ARP) ||
	    a->arp_opcode != RTE_BE16(RTE_ARP_OP_REPLY) || a->arp_data.arp_sip != g->o.dst_ip)
		return;
	rte_ether_addr_copy(&a->arp_data.arp_sha, &g->o.dst_mac);
	g_arp_done = true;
}

static int
arp_resolve(struct gen *g)
{
	for (int tries = 0; tries < 100 && !g_arp_done; tries++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(g->pool);
		struct rte_ether_hdr *eth;
		struct rte_arp_hdr *a;
		uint64_t until;

		if (m == NULL)
			return -ENOMEM;
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		a = (struct rte_arp_hdr *)(eth + 1);
		memset(eth, 0xff, sizeof(eth->dst_addr));
		rte_ether_addr_copy(&g->mac, &eth->src_addr);
		eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
		memset(a, 0, sizeof(*a));
		a->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
		a->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
		a->arp_hlen = 6;
		a->arp_plen = 4;
		a->arp_opcode = RTE_BE16(RTE_ARP_OP_REQUEST);
		rte_ether_addr_copy(&g->mac, &a->arp_data.arp_sha);
		a->arp_data.arp_sip = g->o.src_ip;
		a->arp_data.arp_tip = g->o.dst_ip;
		m->data_len = m->pkt_len = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;
		if (rte_eth_tx_burst(g->port, 0, &m, 1) != 1)
			rte_pktmbuf_free(m);
		until = rte_rdtsc() + g->hz / 10;
		while (!g_arp_done && rte_rdtsc() < until)
			drain_rx(g, arp_rx);
	}
	if (!g_arp_done) {
		fprintf(stderr, "bench_udp_gen: no ARP reply for the destination in 10 s\n");
		return -EHOSTUNREACH;
	}
	return 0;
}

/* ==== Frames ================================================================================ */

static void
build_templates(struct gen *g)
{
	unsigned dlen = dp_wire_req_hdr_len(false) + g->o.size;
	uint32_t crc;

	g->frame_len = (unsigned)HDRS_LEN + dlen;
	g->tmpl = calloc(g->o.flows, g->frame_len);
	g->cksum_base = calloc(g->o.flows, sizeof(uint32_t));
	g->payload = malloc(g->o.size + 1);
	if (g->tmpl == NULL || g->cksum_base == NULL || g->payload == NULL)
		abort();
	for (unsigned i = 0; i < g->o.size; i++)
		g->payload[i] = (uint8_t)(i * 7 + 1);
	crc = rte_hash_crc(g->payload, g->o.size, 0xffffffffu) ^ 0xffffffffu;
	snprintf(g->crc_hex, sizeof(g->crc_hex), "%08x", crc);
	for (unsigned f = 0; f < g->o.flows; f++) {
		uint8_t *p = g->tmpl + (size_t)f * g->frame_len;
		struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
		uint8_t *dgram = (uint8_t *)(udp + 1);
		struct dp_wire_req r = {
		    .flags = 0,
		    .pipeline_id = g->pipeline,
		    .kind = DP_WIRE_KIND_BYTES,
		};

		rte_ether_addr_copy(&g->o.dst_mac, &eth->dst_addr);
		rte_ether_addr_copy(&g->mac, &eth->src_addr);
		eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(g->frame_len - RTE_ETHER_HDR_LEN));
		ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
		ip->time_to_live = 64;
		ip->next_proto_id = IPPROTO_UDP;
		ip->src_addr = g->o.src_ip;
		ip->dst_addr = g->o.dst_ip;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		udp->src_port = rte_cpu_to_be_16((uint16_t)(g->o.src_port0 + f));
		udp->dst_port = rte_cpu_to_be_16(g->o.dst_port);
		udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + dlen));
		udp->dgram_cksum = 0;
		dp_wire_req_write(dgram, dlen, &r);
		memcpy(dgram + dp_wire_req_hdr_len(false), g->payload, g->o.size);
		/* Unfolded ones' complement sum without the request id (zero here): the id is
		 * added per frame. */
		g->cksum_base[f] =
		    __rte_raw_cksum(udp, sizeof(*udp) + dlen, rte_ipv4_phdr_cksum(ip, 0));
	}
}

/* Offsets within the frame. */
#define DGRAM_OFF   HDRS_LEN
#define REQ_ID_OFF  (DGRAM_OFF + 8)
#define RESP_ID_OFF (DGRAM_OFF + 10)

static inline void
fill_frame(struct gen *g, struct rte_mbuf *m, unsigned flow, uint64_t id)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_udp_hdr *udp =
	    (struct rte_udp_hdr *)(p + RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr));
	uint16_t ck;

	memcpy(p, g->tmpl + (size_t)flow * g->frame_len, g->frame_len);
	memcpy(p + REQ_ID_OFF, &id, sizeof(id)); /* little endian on x86, as the wire says */
	ck = (uint16_t)~__rte_raw_cksum_reduce(
	    __rte_raw_cksum(p + REQ_ID_OFF, 8, g->cksum_base[flow]));
	udp->dgram_cksum = ck == 0 ? 0xffff : ck;
	m->data_len = m->pkt_len = g->frame_len;
}

/* ==== Answers =============================================================================== */

static void
record(struct gen *g, uint64_t id, uint64_t now)
{
	g->c.answered++;
	g->last_answer = now;
	if (g->measuring && id >= g->meas_start && now < g->meas_end && now >= id)
		hist_add(g->lat, now - id);
}

static void
answer_rx(struct gen *g, struct rte_mbuf *m, uint64_t now)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint8_t *dgram = p + DGRAM_OFF;
	struct dp_wire_resp r;
	const uint8_t *out, *annot;
	size_t annot_len, dlen;
	const char *why;
	uint64_t id;

	if (m->data_len < DGRAM_OFF || eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
		g->c.other++;
		return;
	}
	if (ip->version_ihl != RTE_IPV4_VHL_DEF || ip->next_proto_id != IPPROTO_UDP) {
		g->c.bad++;
		return;
	}
	dlen = rte_be_to_cpu_16(udp->dgram_len);
	if (dlen < sizeof(*udp) || DGRAM_OFF + dlen - sizeof(*udp) > m->data_len) {
		g->c.bad++;
		return;
	}
	dlen -= sizeof(*udp);
	if (g->o.reflect) {
		/* Our own request, back unchanged. */
		if (dlen != dp_wire_req_hdr_len(false) + g->o.size || dgram[0] != DP_WIRE_MAGIC0 ||
		    dgram[1] != DP_WIRE_MAGIC1 || (dgram[3] & DP_WIRE_F_RESPONSE) != 0) {
			g->c.bad++;
			return;
		}
		memcpy(&id, p + REQ_ID_OFF, sizeof(id));
		g->c.by_status[0]++;
		record(g, id, now);
		return;
	}
	if (dp_wire_resp_parse(dgram, dlen, &r, &out, &annot, &annot_len, &why) != 0) {
		g->c.bad++;
		return;
	}
	g->c.by_status[r.status < DP_STATUS_COUNT_MAX ? r.status : DP_STATUS_COUNT_MAX - 1]++;
	if (r.status == 0) {
		bool ok = r.output_len == g->o.size && memcmp(out, g->payload, g->o.size) == 0;

		if (ok && g->o.crc == g->pipeline) {
			struct dp_wire_annot_it it;
			const char *k, *v;
			size_t kl, vl;
			bool found = false;

			dp_wire_annot_begin(&it, annot, annot_len, r.n_annot);
			while (dp_wire_annot_next(&it, &k, &kl, &v, &vl) == 1)
				if (kl == 6 && memcmp(k, "crc32c", 6) == 0)
					found = vl == 8 && memcmp(v, g->crc_hex, 8) == 0;
			ok = found;
		}
		if (!ok)
			g->c.bad_output++;
	}
	record(g, r.request_id, now);
}

/* ==== Load ================================================================================== */

/* Send one request (probe) every 10 ms until one is answered, at most 10 s. */
static int
probe(struct gen *g)
{
	for (int tries = 0; tries < 1000; tries++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(g->pool);
		uint64_t until;

		if (m == NULL)
			return -ENOMEM;
		fill_frame(g, m, 0, rte_rdtsc());
		if (rte_eth_tx_burst(g->port, 0, &m, 1) != 1)
			rte_pktmbuf_free(m);
		until = rte_rdtsc() + g->hz / 100;
		while (g->c.answered == 0 && rte_rdtsc() < until)
			drain_rx(g, answer_rx);
		if (g->c.answered != 0)
			return 0;
	}
	fprintf(stderr, "bench_udp_gen: no answer to a probe in 10 s\n");
	return -ETIMEDOUT;
}

struct snap {
	uint64_t sent, answered, tsc;
	double peer_run, peer_wait, self_run, self_wait; /* schedstat seconds; -1: unknown */
};

/* On-CPU and runnable-but-waiting seconds of a thread, from its schedstat (-1: unknown). */
static void
schedstat(const char *path, double *run, double *wait)
{
	unsigned long long r, w;
	FILE *f;

	*run = *wait = -1;
	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return;
	if (fscanf(f, "%llu %llu", &r, &w) == 2) {
		*run = (double)r / 1e9;
		*wait = (double)w / 1e9;
	}
	fclose(f);
}

static void
snap_sched(const struct gen *g, struct snap *s)
{
	schedstat(g->o.peer_schedstat, &s->peer_run, &s->peer_wait);
	schedstat("/proc/thread-self/schedstat", &s->self_run, &s->self_wait);
}

/* Delta of a schedstat figure, -1 when either end is unknown. */
static double
sdelta(double a, double b)
{
	return a < 0 || b < 0 ? -1 : b - a;
}

static void
run_one(struct gen *g, uint32_t pipeline)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t warm, t0, t_end, budget_base, lost_cycles = g->hz / 1000 * LOST_MS;
	uint64_t lost_before = 0;
	struct snap s0, s1;
	unsigned flow = 0, n_pending = 0, first = 0;
	double secs, req_s, ans_s;
	uint64_t outstanding_base = 0;

	g->pipeline = pipeline;
	free(g->tmpl);
	free(g->cksum_base);
	free(g->payload);
	build_templates(g);
	memset(&g->c, 0, sizeof(g->c));
	memset(g->lat, 0, sizeof(*g->lat));
	g->measuring = false;
	if (probe(g) != 0) {
		printf("RESULT {\"label\":\"%s\",\"pipeline\":%u,\"error\":\"no answer\"}\n",
		       g->o.label, pipeline);
		return;
	}
	memset(&g->c, 0, sizeof(g->c));
	t0 = rte_rdtsc();
	warm = t0 + (uint64_t)(g->o.warmup * (double)g->hz);
	g->meas_start = warm;
	g->meas_end = warm + (uint64_t)(g->o.seconds * (double)g->hz);
	g->last_answer = t0;
	t_end = g->meas_end;
	budget_base = warm;
	memset(&s0, 0, sizeof(s0));
	for (;;) {
		uint64_t now = rte_rdtsc();
		unsigned want = BURST;
		uint16_t sent;

		if (now >= t_end)
			break;
		if (!g->measuring && now >= warm) {
			g->measuring = true;
			s0.sent = g->c.sent;
			s0.answered = g->c.answered;
			s0.tsc = now;
			snap_sched(g, &s0);
			budget_base = now;
			outstanding_base = g->c.sent;
		}
		if (g->o.rate != 0) {
			uint64_t since = now - (g->measuring ? budget_base : t0);
			uint64_t allowed =
			    (uint64_t)((double)since / (double)g->hz * (double)g->o.rate);
			uint64_t done = g->c.sent - (g->measuring ? outstanding_base : 0);

			want =
			    allowed > done ? (unsigned)RTE_MIN(allowed - done, (uint64_t)BURST) : 0;
		}
		if (g->o.window != 0) {
			uint64_t out = g->c.sent - g->c.answered - g->c.lost;

			if (out >= g->o.window) {
				want = 0;
				if (now - g->last_answer > lost_cycles) {
					g->c.lost += out;
					g->last_answer = now;
				}
			} else if (want > g->o.window - out) {
				want = (unsigned)(g->o.window - out);
			}
		}
		/* Frames the device refused last time go first (no rebuilding while the peer
		 * is full); their id keeps the time they were built. */
		if (n_pending == 0 && want != 0 &&
		    rte_pktmbuf_alloc_bulk(g->pool, pkts, want) == 0) {
			for (unsigned i = 0; i < want; i++) {
				fill_frame(g, pkts[i], flow, now);
				if (++flow == g->o.flows)
					flow = 0;
			}
			n_pending = want;
			first = 0;
		}
		if (n_pending != 0) {
			sent = rte_eth_tx_burst(g->port, 0, pkts + first, (uint16_t)n_pending);
			g->c.sent += sent;
			first += sent;
			n_pending -= sent;
			if (n_pending != 0)
				g->c.refused++;
		}
		drain_rx(g, answer_rx);
	}
	rte_pktmbuf_free_bulk(pkts + first, n_pending);
	s1.sent = g->c.sent;
	s1.answered = g->c.answered;
	s1.tsc = rte_rdtsc();
	snap_sched(g, &s1);
	g->measuring = false;
	/* Answers still on their way: 200 ms. */
	for (uint64_t until = rte_rdtsc() + g->hz / 5; rte_rdtsc() < until;)
		drain_rx(g, answer_rx);
	lost_before = g->c.lost;

	secs = (double)(s1.tsc - s0.tsc) / (double)g->hz;
	req_s = (double)(s1.sent - s0.sent) / secs;
	ans_s = (double)(s1.answered - s0.answered) / secs;
	{
		double us = 1e6 / (double)g->hz;
		uint64_t drops = g->c.sent > g->c.answered ? g->c.sent - g->c.answered : 0;
		double prun = sdelta(s0.peer_run, s1.peer_run);
		double pwait = sdelta(s0.peer_wait, s1.peer_wait);
		double srun = sdelta(s0.self_run, s1.self_run);
		double swait = sdelta(s0.self_wait, s1.self_wait);
		double cyc =
		    prun > 0 ? prun * (double)g->hz / (double)(s1.answered - s0.answered) : -1;

		printf("bench_udp_gen %s: pipeline %u, %u B payload, %u flows, %s%s, %.2f s\n",
		       g->o.label, pipeline, g->o.size, g->o.flows,
		       g->o.reflect ? "reflect" : "corepipe",
		       g->o.crc == pipeline ? " +crc check" : "", secs);
		printf("  requests/s %.0f  answers/s %.0f  (device took less than offered %" PRIu64
		       " times: backpressure)\n",
		       req_s, ans_s, g->c.refused);
		printf("  total: sent %" PRIu64 " answered %" PRIu64 " unanswered %" PRIu64
		       " (written off %" PRIu64 ") bad %" PRIu64 " bad_output %" PRIu64
		       " other %" PRIu64 "\n",
		       g->c.sent, g->c.answered, drops, lost_before, g->c.bad, g->c.bad_output,
		       g->c.other);
		printf("  status:");
		for (unsigned k = 0; k < DP_STATUS_COUNT_MAX; k++)
			if (g->c.by_status[k] != 0)
				printf(" %u=%" PRIu64, k, g->c.by_status[k]);
		printf("\n  latency us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f (%" PRIu64
		       " samples)\n",
		       (double)hist_pct(g->lat, 50) * us, (double)hist_pct(g->lat, 90) * us,
		       (double)hist_pct(g->lat, 99) * us, (double)hist_pct(g->lat, 99.9) * us,
		       (double)g->lat->max * us, g->lat->n);
		printf("  on CPU: peer lcore %.2f s (runnable, waiting %.2f s), generator %.2f s "
		       "(waiting %.2f s); peer cycles per answer on CPU %.0f\n",
		       prun, pwait, srun, swait, cyc);
		printf("RESULT {\"label\":\"%s\",\"pipeline\":%u,\"size\":%u,\"flows\":%u,"
		       "\"mode\":\"%s\",\"crc\":%s,\"window\":%u,\"rate\":%" PRIu64
		       ",\"seconds\":%.3f,\"tsc_hz\":%" PRIu64 ",\"requests_per_s\":%.0f,"
		       "\"answers_per_s\":%.0f,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
		       ",\"unanswered\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"ok\":%" PRIu64
		       ",\"not_ok\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"bad_output\":%" PRIu64
		       ",\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,"
		       "\"peer_cpu_s\":%.4f,\"peer_wait_s\":%.4f,\"gen_cpu_s\":%.4f,"
		       "\"gen_wait_s\":%.4f,\"peer_cycles_per_answer\":%.1f}\n",
		       g->o.label, pipeline, g->o.size, g->o.flows,
		       g->o.reflect ? "reflect" : "corepipe",
		       g->o.crc == pipeline ? "true" : "false", g->o.window, g->o.rate, secs, g->hz,
		       req_s, ans_s, g->c.sent, g->c.answered, drops, g->c.refused,
		       g->c.by_status[0], g->c.answered - g->c.by_status[0], g->c.bad,
		       g->c.bad_output, (double)hist_pct(g->lat, 50) * us,
		       (double)hist_pct(g->lat, 90) * us, (double)hist_pct(g->lat, 99) * us,
		       (double)hist_pct(g->lat, 99.9) * us, prun, pwait, srun, swait, cyc);
		fflush(stdout);
	}
}

int
main(int argc, char **argv)
{
	struct gen g;
	int n, rc;

	memset(&g, 0, sizeof(g));
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "bench_udp_gen: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= n;
	argv += n;
	argv[0] = "bench_udp_gen";
	rc = parse_opts(argc, argv, &g.o);
	if (rc != 0) {
		rte_eal_cleanup();
		return rc == 1 ? 0 : 2;
	}
	g.hz = rte_get_tsc_hz();
	g.lat = calloc(1, sizeof(*g.lat));
	if (g.lat == NULL)
		return 1;
	rc = port_open(&g);
	if (rc == 0 && !g.o.have_dst_mac) {
		if (g.o.reflect)
			memset(&g.o.dst_mac, 0xff, sizeof(g.o.dst_mac));
		else
			rc = arp_resolve(&g);
	}
	for (unsigned i = 0; rc == 0 && i < g.o.n_pipelines; i++)
		run_one(&g, g.o.pipelines[i]);
	/* Hold the link so that the peer can be read and stopped first: a memif peer going
	 * away while the other side polls is where DPDK 22.11's memif has been seen to crash. */
	if (g.o.hold > 0)
		rte_delay_us_sleep((unsigned)(g.o.hold * 1e6));
	if (g.port < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port(g.port)) {
		rte_eth_dev_stop(g.port);
		rte_eth_dev_close(g.port);
	}
	free(g.tmpl);
	free(g.cksum_base);
	free(g.payload);
	free(g.lat);
	rte_eal_cleanup();
	return rc == 0 ? 0 : 1;
}

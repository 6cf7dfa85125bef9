/*
 * bench_udp_ring: cycles per request of the UDP front end on one worker, in-process, over a
 * net_ring port (rte_eth_from_rings: one ring in, one ring out), side by side with what
 * dpdk-testpmd's io-forward does per packet on the same port (rte_eth_rx_burst then
 * rte_eth_tx_burst, frames untouched).
 *
 * One thread plays every role, so what is measured is the work itself: it builds 32 valid
 * requests (Ethernet / IPv4 / UDP with checksums, wire v1, 64 B payload by default, 32 flows)
 * outside the timed region, enqueues them on the port's RX ring, then times one
 * dp_worker_poll_once() (RX burst, L2-L4 checks with software checksums, the pipeline in the
 * mbuf, the response built in place, TX) or one io-forward burst; the answers are taken off
 * the TX ring, checked (status OK, output and crc32c annotation) and freed, untimed. Rounds
 * interleave passthrough, crc32c and io-forward; medians of the rounds are reported, so a
 * preemption on the shared machine spoils a round, not the figure.
 *
 *   bench_udp_ring [--size BYTES] [--rounds N] [--bursts N] [--help]
 *
 * Runs with the EAL (no hugepages); no server needed. Prints a table and a line
 * "RESULT {json}".
 */
#include "dataplane/dataplane.h"
#include "dataplane/udp.h"
#include "dataplane/wire.h"
#include "perf/common.h"
#include "perf/perf_opt.h"

#include <errno.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-qsbr.h>

#define BURST	   32
#define ROUNDS_MAX 99

struct bench {
	uint16_t port;
	struct rte_ring *rx, *tx; /* the port's RX ring (we produce), TX ring (we consume) */
	struct rte_mempool *pool;
	struct rte_ether_addr mac;
	unsigned size;
	uint8_t payload[1500];
	char crc_hex[9];
	uint64_t bad;
};

/* A request of @p pipeline from flow @p flow into @p m. */
static void
build(struct bench *b, struct rte_mbuf *m, uint32_t pipeline, unsigned flow, uint64_t id)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint8_t *dgram = (uint8_t *)(udp + 1);
	unsigned dlen = DP_WIRE_HDR_LEN + b->size;
	struct dp_wire_req r = {
	    .pipeline_id = pipeline, .request_id = id, .kind = DP_WIRE_KIND_BYTES};

	rte_ether_addr_copy(&b->mac, &eth->dst_addr);
	memset(&eth->src_addr, 0x02, sizeof(eth->src_addr));
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + dlen));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = rte_cpu_to_be_32(RTE_IPV4(10, 99, 0, 2));
	ip->dst_addr = rte_cpu_to_be_32(RTE_IPV4(10, 99, 0, 1));
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16((uint16_t)(10000 + flow));
	udp->dst_port = RTE_BE16(9000);
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + dlen));
	udp->dgram_cksum = 0;
	dp_wire_req_write(dgram, dlen, &r);
	memcpy(dgram + DP_WIRE_HDR_LEN, b->payload, b->size);
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	m->data_len = m->pkt_len =
	    (uint32_t)(RTE_ETHER_HDR_LEN + sizeof(*ip) + sizeof(*udp) + dlen);
}

/* Take what the port transmitted: check @p want answers (0: frames forwarded unchanged). */
static void
collect(struct bench *b, unsigned n, uint32_t crc_pipeline, uint32_t pipeline)
{
	struct rte_mbuf *pkts[BURST];
	unsigned got = rte_ring_dequeue_burst(b->tx, (void **)pkts, BURST, NULL);

	if (got != n)
		b->bad += n > got ? n - got : got - n;
	for (unsigned i = 0; i < got; i++) {
		uint8_t *p = rte_pktmbuf_mtod(pkts[i], uint8_t *) + RTE_ETHER_HDR_LEN +
			     sizeof(struct rte_ipv4_hdr) + sizeof(struct rte_udp_hdr);
		size_t len = pkts[i]->data_len - (RTE_ETHER_HDR_LEN + sizeof(struct rte_ipv4_hdr) +
						  sizeof(struct rte_udp_hdr));
		struct dp_wire_resp r;
		const uint8_t *out, *annot;
		size_t alen;
		const char *why;

		if (pipeline != 0) {
			if (dp_wire_resp_parse(p, len, &r, &out, &annot, &alen, &why) != 0 ||
			    r.status != 0 || r.output_len != b->size ||
			    memcmp(out, b->payload, b->size) != 0)
				b->bad++;
			else if (pipeline == crc_pipeline &&
				 (r.n_annot != 1 || alen != 2 + 6 + 8 ||
				  memcmp(annot + 8, b->crc_hex, 8) != 0))
				b->bad++;
		}
		rte_pktmbuf_free(pkts[i]);
	}
}

/* One round of @p bursts bursts: median-able cycles per request. pipeline 0: io-forward. */
static double
round_run(struct bench *b, struct dp_reactor *w, uint32_t pipeline, uint32_t crc_pipeline,
	  unsigned bursts)
{
	struct rte_mbuf *pkts[BURST];
	uint64_t cycles = 0;

	for (unsigned it = 0; it < bursts; it++) {
		uint64_t t0;
		unsigned n;

		if (rte_pktmbuf_alloc_bulk(b->pool, pkts, BURST) != 0)
			abort();
		for (unsigned i = 0; i < BURST; i++)
			build(b, pkts[i], pipeline ? pipeline : 1, i, it * BURST + i);
		if (rte_ring_enqueue_bulk(b->rx, (void **)pkts, BURST, NULL) != BURST)
			abort();
		t0 = rte_rdtsc();
		if (pipeline != 0) {
			n = dp_reactor_poll_once(w); /* the worker lcore's iteration */
		} else {
			struct rte_mbuf *f[BURST];
			uint16_t nr = rte_eth_rx_burst(b->port, 0, f, BURST);
			uint16_t nt = rte_eth_tx_burst(b->port, 0, f, nr);

			if (nt < nr)
				rte_pktmbuf_free_bulk(f + nt, nr - nt);
			n = nr;
		}
		cycles += rte_rdtsc() - t0;
		collect(b, n, crc_pipeline, pipeline);
	}
	return (double)cycles / ((double)bursts * BURST);
}

/* ==== Options =============================================================================== */

struct opts {
	unsigned size, rounds, bursts;
};

#define AT(field, ctype) PERF_OPT_AT(struct opts, field, ctype)

static const struct perf_opt g_table[] = {
    {"size", 0, PERF_OPT_UINT, AT(size, unsigned), 0, 1400, .arg = "BYTES",
     .help = "payload bytes per request", .show_default = true},
    {"rounds", 0, PERF_OPT_UINT, AT(rounds, unsigned), 1, ROUNDS_MAX, .arg = "N",
     .help = "interleaved rounds (medians reported)", .show_default = true},
    {"bursts", 0, PERF_OPT_UINT, AT(bursts, unsigned), 1, 4294967295.0, .arg = "N",
     .help = "bursts of 32 requests per round and case", .show_default = true},
    {"help", 'h', PERF_OPT_HELP, .help = "this text"},
    {.type = PERF_OPT_END},
};

static const struct perf_opt_cmd g_cmd = {
    .prog = "bench_udp_ring",
    .synopsis = "usage: bench_udp_ring [options]\n\n",
    .opts = g_table,
    .size = sizeof(struct opts),
};

static struct dp_pipeline *
put_pipeline(struct dp_registry *reg, char *name, char *type, uint32_t *id)
{
	struct dp_node_spec ns = {.type = type};
	struct dp_spec spec = {.name = name, .n_nodes = 1, .nodes = &ns};
	struct dp_registry_info info;
	struct dp_pipeline *p;
	struct dp_err err;

	p = dp_pipeline_compile(&spec, 4, &err);
	if (p == NULL)
		return NULL;
	dp_pipeline_ref(p);
	if (dp_registry_put(reg, p, &info) != 0)
		return NULL;
	*id = info.id;
	return p;
}

int
main(int argc, char **argv)
{
	char *eal[] = {argv[0], "--no-huge", "--no-pci", "--no-shconf", "--no-telemetry",
		       "-m",	"256",	     "-l",	 "0",		"--log-level",
		       "1"};
	static struct dp_dataplane dp;
	static struct dp_worker w;
	static struct bench b;
	struct dp_worker_conf wc = {.idle = DP_IDLE_SPIN, .ring_size = 256};
	struct dp_pool_conf pc = {.n_classes = 1, .classes = {{2048, 1024}}};
	struct dp_udp_conf uc;
	struct dp_lcore *workers[1] = {&w.lc};
	static struct dp_reactor reactor;
	struct dp_udp *u;
	struct dp_pipeline *pt, *pc32;
	uint32_t id_pt = 0, id_crc = 0;
	struct opts o = {.size = 64, .rounds = 9, .bursts = 2000};
	unsigned rounds, bursts;
	double fwd[ROUNDS_MAX], pas[ROUNDS_MAX], crc[ROUNDS_MAX];
	char err[256], cmd[256], name[RTE_ETH_NAME_MAX_LEN];
	int argi, ch;

	join_command(argc, argv, cmd, sizeof(cmd));
	ch = perf_opt_parse(&g_cmd, argc, argv, &o, &argi);
	if (ch == 0 && argi < argc) {
		fprintf(stderr, "bench_udp_ring: unexpected argument '%s'\n", argv[argi]);
		ch = -EINVAL;
	}
	if (ch != 0)
		return ch > 0 ? 0 : 2;
	b.size = o.size;
	rounds = o.rounds;
	bursts = o.bursts;
	if (rte_eal_init((int)(sizeof(eal) / sizeof(eal[0])), eal) < 0)
		return 1;
	for (unsigned i = 0; i < b.size; i++)
		b.payload[i] = (uint8_t)(i * 7 + 1);
	snprintf(b.crc_hex, sizeof(b.crc_hex), "%08x",
		 rte_hash_crc(b.payload, b.size, 0xffffffffu) ^ 0xffffffffu);

	/* The dataplane pieces one worker needs (as perf/bench_worker.c). */
	dp.pools = dp_pools_create("bu", &pc, SOCKET_ID_ANY);
	dp.reg = dp_registry_create();
	dp.conf.worker = wc;
	dp.tsc_hz = rte_get_tsc_hz();
	if (dp.pools == NULL || dp.reg == NULL ||
	    dp_worker_init(&w, 0, 0, &wc, dp.reg, dp.pools) != 0)
		return 1;
	urcu_qsbr_register_thread();
	pt = put_pipeline(dp.reg, (char[]){"passthrough"}, (char[]){"passthrough"}, &id_pt);
	pc32 = put_pipeline(dp.reg, (char[]){"crc"}, (char[]){"crc32c"}, &id_crc);
	if (pt == NULL || pc32 == NULL)
		return 1;

	/* The port: frames we enqueue on rx come in; what the worker sends lands on tx. */
	b.rx = rte_ring_create("bu_rx", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	b.tx = rte_ring_create("bu_tx", 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	b.pool = rte_pktmbuf_pool_create("bu_req", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					 SOCKET_ID_ANY);
	if (b.rx == NULL || b.tx == NULL || b.pool == NULL)
		return 1;
	ch = rte_eth_from_rings("cpring0", &b.rx, 1, &b.tx, 1, SOCKET_ID_ANY);
	if (ch < 0 || rte_eth_dev_get_name_by_port((uint16_t)ch, name) != 0)
		return 1;
	dp_udp_conf_default(&uc);
	uc.n_ports = 1;
	snprintf(uc.ports[0].name, sizeof(uc.ports[0].name), "ring0");
	snprintf(uc.ports[0].devargs, sizeof(uc.ports[0].devargs), "%s", name); /* net_ring_... */
	uc.ports[0].ip = RTE_IPV4(10, 99, 0, 1);
	uc.ports[0].prefix_len = 24;
	uc.ports[0].udp_port = 9000;
	uc.ports[0].queues = 1;
	u = dp_udp_create(&uc, workers, 1, err, sizeof(err));
	if (u == NULL) {
		fprintf(stderr, "bench_udp_ring: %s\n", err);
		return 1;
	}
	b.port = u->port[0].port_id;
	b.mac = u->port[0].mac;
	/* The worker lcore's reactor: its pipeline-work and UDP pollers, as corepiped builds it. */
	dp.workers[0] = &w;
	dp.n_workers = 1;
	dp.udp = u;
	dp.udp_wk[0] = u->wk[0];
	if (dp_dataplane_add_pollers(&dp, 0, &reactor) != 0)
		return 1;

	round_run(&b, &reactor, id_pt, id_crc, bursts / 4 + 1); /* warm */
	round_run(&b, &reactor, 0, id_crc, bursts / 4 + 1);
	b.bad = 0;
	for (unsigned r = 0; r < rounds; r++) {
		fwd[r] = round_run(&b, &reactor, 0, id_crc, bursts);
		pas[r] = round_run(&b, &reactor, id_pt, id_crc, bursts);
		crc[r] = round_run(&b, &reactor, id_crc, id_crc, bursts);
	}
	qsort(fwd, rounds, sizeof(double), cmp_double);
	qsort(pas, rounds, sizeof(double), cmp_double);
	qsort(crc, rounds, sizeof(double), cmp_double);
	{
		double f = fwd[rounds / 2], p = pas[rounds / 2], c = crc[rounds / 2];
		double ns = 1e9 / (double)dp.tsc_hz;

		printf("command: %s (one run; medians of %u interleaved rounds of %u x %d "
		       "requests, %u B payload, net_ring, one thread)\n",
		       cmd, rounds, bursts, BURST, b.size);
		printf("  io-forward (rx_burst + tx_burst):  %7.1f cycles/packet  (%.1f ns)\n", f,
		       f * ns);
		printf("  corepipe passthrough (worker poll): %7.1f cycles/request (%.1f ns), "
		       "%.2fx io-forward\n",
		       p, p * ns, p / f);
		printf("  corepipe crc32c (worker poll):      %7.1f cycles/request (%.1f ns), "
		       "%.2fx io-forward\n",
		       c, c * ns, c / f);
		printf("  answers not as expected: %llu\n", (unsigned long long)b.bad);
		printf("RESULT {\"label\":\"ring\",\"size\":%u,\"rounds\":%u,\"bursts\":%u,"
		       "\"tsc_hz\":%llu,\"iofwd_cycles\":%.1f,\"passthrough_cycles\":%.1f,"
		       "\"crc32c_cycles\":%.1f,\"bad\":%llu}\n",
		       b.size, rounds, bursts, (unsigned long long)dp.tsc_hz, f, p, c,
		       (unsigned long long)b.bad);
	}
	dp_udp_destroy(u);
	dp_pipeline_unref(pt);
	dp_pipeline_unref(pc32);
	return b.bad == 0 ? 0 : 1;
}

/*
 * The UDP front end in process: a net_ring port (rte_eth_from_rings) whose RX ring the test
 * fills with hand-built frames and whose TX ring it reads back, with the workers' loop bodies
 * (dp_udp_poll) driven on the test thread. Frames and expected answers are built here
 * byte by byte from RFC 791/768/826/792 and docs/wire-protocol.md, with an independent
 * checksum, not with the code under test.
 */
#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/dataplane.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVER_IP  0x0a4d0001u /* 10.77.0.1 */
#define CLIENT_IP  0x0a4d0002u /* 10.77.0.2 */
#define UDP_PORT   9000
#define CLIENT_MAC "\x02\x00\x00\x00\x00\x02"

struct env {
	struct dp_dataplane dp;
	struct dp_worker w[2];
	struct rte_ring *rx, *tx;
	struct rte_mempool *pkts;
	uint8_t mac[6];
	unsigned n_workers;
};

static struct env g_env;
static unsigned g_seq;

/* ==== Frames, by hand ======================================================================= */

static void
put16(uint8_t *p, uint16_t v) /* big endian */
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* RFC 1071 one's-complement sum. */
static uint32_t
sum16(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	return s;
}

static uint16_t
fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t
udp_csum(const uint8_t *ip, const uint8_t *udp, size_t ulen)
{
	uint8_t ph[12];
	uint16_t c;

	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	put16(ph + 10, (uint16_t)ulen);
	c = (uint16_t)~fold(sum16(udp, ulen, sum16(ph, 12, 0)));
	return c == 0 ? 0xffff : c;
}

/* Little-endian wire fields. */
static void
le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
	le16(p, (uint16_t)v);
	le16(p + 2, (uint16_t)(v >> 16));
}

static void
le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

/* A corepipe v1 request: 22-byte header (+ 8-byte audio header) + payload. */
static size_t
wire_req(uint8_t *d, uint32_t pipeline, uint64_t id, uint32_t deadline_us, const uint8_t *audio,
	 const void *payload, size_t len)
{
	size_t off = 22;

	d[0] = 'C';
	d[1] = 'P';
	d[2] = 1;
	d[3] = audio ? 0x02 : 0;
	le32(d + 4, pipeline);
	le64(d + 8, id);
	le32(d + 16, deadline_us);
	le16(d + 20, 0);
	if (audio) {
		memcpy(d + 22, audio, 8);
		off = 30;
	}
	memcpy(d + off, payload, len);
	return off + len;
}

struct frame_opt {
	uint32_t dst_ip;
	uint32_t src_ip;
	uint16_t dst_port;
	uint16_t src_port;
	bool no_udp_csum, bad_udp_csum, bad_ip_csum, fragment;
	bool src_ip_zero, src_port_zero; /* 0.0.0.0 / port 0 (a 0 above means the default) */
	uint8_t proto;
	const uint8_t *dst_mac;
	const uint8_t *src_mac;
};

/* A frame of @len zero bytes; *f points at it. */
static struct rte_mbuf *
raw_frame(uint16_t len, uint8_t **f)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(g_env.pkts);
	char *p;

	assert_non_null(m);
	p = rte_pktmbuf_append(m, len);
	assert_non_null(p);
	*f = (uint8_t *)p;
	for (uint16_t i = 0; i < len; i++)
		(*f)[i] = 0;
	return m;
}

static struct rte_mbuf *
udp_frame(const struct frame_opt *o, const uint8_t *dgram, size_t dlen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(g_env.pkts);
	uint8_t *f;
	size_t ulen = 8 + dlen, tot = 20 + ulen;

	assert_non_null(m);
	f = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(14 + tot));
	assert_non_null(f);
	memcpy(f, o->dst_mac ? o->dst_mac : g_env.mac, 6);
	memcpy(f + 6, o->src_mac ? o->src_mac : (const uint8_t *)CLIENT_MAC, 6);
	put16(f + 12, 0x0800);
	f[14] = 0x45;
	f[15] = 0;
	put16(f + 16, (uint16_t)tot);
	put16(f + 18, (uint16_t)g_seq++);
	put16(f + 20, o->fragment ? 0x2000 : 0x4000); /* MF, or DF */
	f[22] = 64;
	f[23] = o->proto ? o->proto : 17;
	put16(f + 24, 0);
	put32(f + 26, o->src_ip_zero ? 0 : o->src_ip ? o->src_ip : CLIENT_IP);
	put32(f + 30, o->dst_ip ? o->dst_ip : SERVER_IP);
	put16(f + 24, (uint16_t)~fold(sum16(f + 14, 20, 0)));
	if (o->bad_ip_csum)
		f[25] ^= 1;
	put16(f + 34, o->src_port_zero ? 0 : o->src_port ? o->src_port : 40000);
	put16(f + 36, o->dst_port ? o->dst_port : UDP_PORT);
	put16(f + 38, (uint16_t)ulen);
	put16(f + 40, 0);
	memcpy(f + 42, dgram, dlen);
	if (!o->no_udp_csum)
		put16(f + 40, udp_csum(f + 14, f + 34, ulen));
	if (o->bad_udp_csum)
		f[41] ^= 0x10;
	return m;
}

/* ==== Environment =========================================================================== */

static void
put_pipeline(const char *name, const char *type, const char *key, const char *val)
{
	struct dp_param p = {.key = (char *)key, .value = (char *)val};
	struct dp_node_spec n = {.type = (char *)type, .n_params = key ? 1 : 0, .params = &p};
	struct dp_spec s = {.name = (char *)name, .n_nodes = 1, .nodes = &n};
	struct dp_registry_info info;
	struct dp_err err;
	struct dp_pipeline *pl = dp_pipeline_compile(&s, 32, &err);

	assert_non_null(pl);
	assert_int_equal(dp_registry_put(g_env.dp.reg, pl, &info), 0);
}

static int
env_up(unsigned n_workers, unsigned queues)
{
	static unsigned k;
	struct env *e = &g_env;
	struct dp_worker_conf wc = {
	    .idle = DP_IDLE_SLEEP, .spin_us = 0, .sleep_max_us = 1000, .ring_size = 64};
	struct dp_udp_conf uc;
	struct dp_lcore *ws[2];
	char name[32], err[256];
	int port;

	memset(e, 0, sizeof(*e));
	e->n_workers = n_workers;
	snprintf(name, sizeof(name), "tu_rx%u", k);
	e->rx = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "tu_tx%u", k);
	e->tx = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(name, sizeof(name), "tu_pk%u", k);
	e->pkts =
	    rte_pktmbuf_pool_create(name, 2048, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!e->rx || !e->tx || !e->pkts)
		return -1;
	snprintf(name, sizeof(name), "tu%u", k++);
	port = rte_eth_from_rings(name, &e->rx, 1, &e->tx, 1, SOCKET_ID_ANY);
	if (port < 0)
		return -1;
	snprintf(name, sizeof(name), "net_ring_tu%u", k - 1); /* the ethdev's name */
	e->dp.pools = g_test_pools;
	e->dp.reg = dp_registry_create();
	for (unsigned i = 0; i < n_workers; i++) {
		if (dp_worker_init(&e->w[i], i, 0, &wc, e->dp.reg, e->dp.pools) != 0)
			return -1;
		ws[i] = &e->w[i].lc;
	}
	dp_udp_conf_default(&uc);
	uc.n_ports = 1;
	snprintf(uc.ports[0].name, sizeof(uc.ports[0].name), "ring0");
	snprintf(uc.ports[0].devargs, sizeof(uc.ports[0].devargs), "%s", name);
	uc.ports[0].ip = SERVER_IP;
	uc.ports[0].prefix_len = 24;
	uc.ports[0].udp_port = UDP_PORT;
	uc.ports[0].queues = (uint16_t)queues;
	uc.ports[0].rx_desc = uc.ports[0].tx_desc = 256;
	uc.ring_size = 64;
	e->dp.udp = dp_udp_create(&uc, ws, n_workers, err, sizeof(err));
	if (e->dp.udp == NULL) {
		fprintf(stderr, "dp_udp_create: %s\n", err);
		return -1;
	}
	memcpy(e->mac, e->dp.udp->port[0].mac.addr_bytes, 6);
	urcu_qsbr_register_thread();
	put_pipeline("passthrough", "passthrough", NULL, NULL); /* id 1 */
	put_pipeline("crc", "crc32c", NULL, NULL);		/* id 2 */
	put_pipeline("zc", "zstd_compress", NULL, NULL);	/* id 3 */
	put_pipeline("zd", "zstd_decompress", NULL, NULL);	/* id 4 */
	put_pipeline("vad", "vad", NULL, NULL);			/* id 5: stateful */
	put_pipeline("loud", "gain", "db", "6");		/* id 6 */
	return 0;
}

static int
setup1(void **state)
{
	*state = &g_env;
	return env_up(1, 0);
}

static int
setup_handoff(void **state)
{
	*state = &g_env;
	return env_up(2, 1); /* a single-queue device and two workers */
}

static int
teardown(void **state)
{
	struct env *e = *state;
	unsigned in_use;
	void *m;

	while (rte_ring_dequeue(e->tx, &m) == 0)
		rte_pktmbuf_free(m);
	while (rte_ring_dequeue(e->rx, &m) == 0)
		rte_pktmbuf_free(m);
	dp_udp_destroy(e->dp.udp);
	/* Every frame the test made came back: transmitted (freed above) or dropped. */
	in_use = rte_mempool_in_use_count(e->pkts);
	for (unsigned i = 0; i < e->n_workers; i++)
		dp_worker_fini(&e->w[i]);
	urcu_qsbr_thread_offline();
	dp_registry_destroy(e->dp.reg);
	urcu_qsbr_unregister_thread();
	rte_mempool_free(e->pkts);
	rte_ring_free(e->rx);
	rte_ring_free(e->tx);
	assert_int_equal(in_use, 0);
	return 0;
}

/* One pass of lcore @p i's UDP poller, then its quiescent state (as its reactor does). */
static unsigned
poll_lcore(unsigned i)
{
	unsigned n = dp_udp_poll(g_env.dp.udp->wk[i], true);

	dp_rcu_quiescent_state();
	return n;
}

/* Inject @m, run worker 0's loop body, return what it transmitted (NULL: nothing). */
static struct rte_mbuf *
roundtrip(struct rte_mbuf *m)
{
	void *out = NULL;

	assert_int_equal(rte_ring_enqueue(g_env.rx, m), 0);
	poll_lcore(0);
	if (rte_ring_dequeue(g_env.tx, &out) != 0)
		return NULL;
	return out;
}

static struct dp_udp_stats
stats(void)
{
	struct dp_udp_stats s;

	dp_udp_stats_read(g_env.dp.udp, 0, &s);
	return s;
}

/* Check the L2-L4 turn-around of a UDP answer; return its datagram and length. */
static const uint8_t *
check_udp_answer(struct rte_mbuf *m, size_t *dlen)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	size_t ulen;

	assert_int_equal(m->nb_segs, 1);
	assert_memory_equal(f, CLIENT_MAC, 6);
	assert_memory_equal(f + 6, g_env.mac, 6);
	assert_int_equal(get16(f + 12), 0x0800);
	assert_int_equal(f[14], 0x45);
	assert_int_equal(fold(sum16(f + 14, 20, 0)), 0xffff); /* IPv4 header checksum */
	assert_int_equal(((uint32_t)get16(f + 26) << 16) | get16(f + 28), SERVER_IP);
	assert_int_equal(((uint32_t)get16(f + 30) << 16) | get16(f + 32), CLIENT_IP);
	assert_int_equal(get16(f + 34), UDP_PORT);
	assert_int_equal(get16(f + 16), m->data_len - 14);
	ulen = get16(f + 38);
	assert_int_equal(ulen + 20 + 14, m->data_len);
	assert_int_not_equal(get16(f + 40), 0);
	assert_int_equal(fold(sum16(f + 34, ulen, sum16(f + 26, 8, 17 + (uint32_t)ulen))),
			 0xffff); /* UDP checksum with the pseudo-header */
	*dlen = ulen - 8;
	return f + 42;
}

/* The fixed response header, as docs/wire-protocol.md lays it out. */
static void
check_resp_hdr(const uint8_t *d, uint8_t flags, uint8_t status, uint8_t n_annot, uint64_t id,
	       uint32_t out_len)
{
	uint8_t want[22] = {'C', 'P', 1, flags, status, n_annot};

	le64(want + 10, id);
	le32(want + 18, out_len);
	assert_memory_equal(d, want, 6);
	assert_memory_equal(d + 10, want + 10, 12);
}

/* ==== Tests ================================================================================= */

static void
test_udp_passthrough_answered_byte_for_byte(void **state)
{
	uint8_t req[64], pay[33];
	struct frame_opt o = {0};
	struct rte_mbuf *r;
	const uint8_t *d;
	size_t n, dlen;

	(void)state;
	for (size_t i = 0; i < sizeof(pay); i++)
		pay[i] = (uint8_t)(i * 7);
	n = wire_req(req, 1, 0x1122334455667788ull, 0, NULL, pay, sizeof(pay));
	r = roundtrip(udp_frame(&o, req, n));
	assert_non_null(r);
	d = check_udp_answer(r, &dlen);
	assert_int_equal(dlen, 22 + sizeof(pay));
	check_resp_hdr(d, 0x01, 0, 0, 0x1122334455667788ull, sizeof(pay));
	assert_memory_equal(d + 22, pay, sizeof(pay));
	rte_pktmbuf_free(r);
	assert_int_equal(stats().by_code[DP_OK], 1);
	assert_int_equal(stats().copied, 0); /* processed in the mbuf */
}

static void
test_udp_crc32c_annotation_and_zero_udp_checksum(void **state)
{
	uint8_t req[64];
	struct frame_opt o = {.no_udp_csum = true};
	struct rte_mbuf *r;
	const uint8_t *d;
	size_t n, dlen;
	static const uint8_t annot[] = "\x06\x08"
				       "crc32c"
				       "e3069283";

	(void)state;
	n = wire_req(req, 2, 7, 0, NULL, "123456789", 9);
	r = roundtrip(udp_frame(&o, req, n));
	assert_non_null(r);
	d = check_udp_answer(r, &dlen);
	check_resp_hdr(d, 0x01, 0, 1, 7, 9);
	assert_memory_equal(d + 22, "123456789", 9);
	assert_int_equal(dlen, 22 + 9 + 16);
	assert_memory_equal(d + 31, annot, 16);
	rte_pktmbuf_free(r);
}

static void
test_udp_audio_gain_keeps_audio_header(void **state)
{
	uint8_t req[128], audio[8] = {1, 0};
	int16_t s[8] = {100, -100, 1000, -1000, 0, 1, -1, 2000};
	struct frame_opt o = {0};
	struct rte_mbuf *r;
	const uint8_t *d;
	size_t n, dlen;
	int16_t got[8];

	(void)state;
	le16(audio + 2, 2);	/* channels */
	le32(audio + 4, 48000); /* rate */
	n = wire_req(req, 6, 9, 0, audio, s, sizeof(s));
	r = roundtrip(udp_frame(&o, req, n));
	assert_non_null(r);
	d = check_udp_answer(r, &dlen);
	check_resp_hdr(d, 0x03, 0, 0, 9, sizeof(s));
	assert_memory_equal(d + 22, audio, 8);
	memcpy(got, d + 30, sizeof(got));
	for (unsigned i = 0; i < 8; i++) /* +6 dB: x 1.995 */
		assert_true(abs(got[i] - (int)(s[i] * 1.9953)) <= 1);
	rte_pktmbuf_free(r);
}

static void
test_udp_new_buffer_output_copied_back(void **state)
{
	uint8_t req[1100], pay[1000];
	struct frame_opt o = {0};
	struct rte_mbuf *r;
	const uint8_t *d;
	size_t n, dlen;
	uint32_t olen;

	(void)state;
	memset(pay, 'a', sizeof(pay));
	n = wire_req(req, 3, 11, 0, NULL, pay, sizeof(pay));
	r = roundtrip(udp_frame(&o, req, n));
	assert_non_null(r);
	d = check_udp_answer(r, &dlen);
	olen = (uint32_t)d[18] | (uint32_t)d[19] << 8;
	assert_int_equal(d[4], 0);
	assert_true(olen > 8 && olen < 100); /* 1000 'a' compress to a few dozen bytes */
	assert_memory_equal(d + 22, "\x28\xb5\x2f\xfd", 4); /* zstd frame magic */
	rte_pktmbuf_free(r);
}

/* An error answer: status, request id, no output; never longer than the request. */
static void
check_error(struct rte_mbuf *r, size_t req_len, uint64_t id, uint8_t status, const char *msg)
{
	const uint8_t *d;
	size_t dlen;

	assert_non_null(r);
	d = check_udp_answer(r, &dlen);
	assert_int_equal(d[4], status);
	assert_int_equal((uint64_t)d[10] | (uint64_t)d[11] << 8, id & 0xffff);
	assert_int_equal(d[18] | d[19] | d[20] | d[21], 0); /* output_len 0 */
	assert_true(dlen <= req_len);
	if (msg != NULL) {
		assert_int_equal(d[5], 1);
		assert_int_equal(d[22], 5);
		assert_memory_equal(d + 24, "error", 5);
		size_t k = strlen(msg) < d[23] ? strlen(msg) : d[23];

		assert_true(d[23] > 0 && memcmp(d + 29, msg, k) == 0);
	}
	rte_pktmbuf_free(r);
}

static void
test_udp_errors_answered_with_status(void **state)
{
	uint8_t req[1500], pay[100] = {0}, big[1400];
	struct frame_opt o = {0};
	size_t n;

	(void)state;
	n = wire_req(req, 99, 21, 0, NULL, pay, sizeof(pay));
	check_error(roundtrip(udp_frame(&o, req, n)), n, 21, DP_NOT_FOUND,
		    "pipeline id 99 not found");
	n = wire_req(req, 5, 22, 0, NULL, pay, sizeof(pay));
	check_error(roundtrip(udp_frame(&o, req, n)), n, 22, DP_FAILED_PRECONDITION,
		    "stateful pipeline");
	n = wire_req(req, 1, 23, 0, NULL, pay, sizeof(pay));
	req[2] = 2; /* version 2 */
	check_error(roundtrip(udp_frame(&o, req, n)), n, 23, DP_INVALID_ARGUMENT, NULL);
	/* A short request gets the status but not the (longer) message: no amplification. */
	n = wire_req(req, 77, 24, 0, NULL, "", 0);
	check_error(roundtrip(udp_frame(&o, req, n)), n, 24, DP_NOT_FOUND, NULL);
	/* Output larger than a datagram: 64 KiB of zeros, compressed. */
	{
		struct rte_mbuf *zm, *r;
		const uint8_t *d;
		size_t dl, clen;
		uint8_t zeros[1400];

		memset(zeros, 0, sizeof(zeros));
		n = wire_req(req, 3, 25, 0, NULL, zeros, sizeof(zeros) - 200);
		r = roundtrip(udp_frame(&o, req, n));
		d = check_udp_answer(r, &dl);
		clen = (size_t)d[18] | (size_t)d[19] << 8;
		memcpy(big, d + 22, clen); /* a zstd frame of 1200 zeros */
		rte_pktmbuf_free(r);
		/* 1200 bytes would fit in the datagram, but not in 3 times the request. */
		n = wire_req(req, 4, 26, 0, NULL, big, clen);
		zm = udp_frame(&o, req, n);
		check_error(roundtrip(zm), n, 26, DP_OUT_OF_RANGE, NULL);
	}
	assert_int_equal(stats().by_code[DP_NOT_FOUND], 2);
	assert_int_equal(stats().by_code[DP_FAILED_PRECONDITION], 1);
	assert_int_equal(stats().by_code[DP_INVALID_ARGUMENT], 1);
	assert_int_equal(stats().by_code[DP_OUT_OF_RANGE], 1);
}

/* A zstd frame of @p size zero bytes as RLE blocks of 128 KiB (RFC 8878), with the content
 * size in the header or not. */
static size_t
rle_bomb(uint8_t *f, uint32_t size, bool declared)
{
	size_t n = 0;

	memcpy(f, "\x28\xb5\x2f\xfd", 4);
	n = 4;
	if (declared) {
		f[n++] = 0xa0; /* FCS 4 bytes, single segment */
		le32(f + n, size);
		n += 4;
	} else {
		f[n++] = 0x00; /* no FCS, window descriptor follows */
		f[n++] = 0x58; /* window 2^(10+11) = 2 MiB */
	}
	for (uint32_t left = size; left > 0;) {
		uint32_t b = left < (128u << 10) ? left : (128u << 10);
		uint32_t h = b << 3 | 2 | (left == b ? 1 : 0); /* RLE, last */

		f[n++] = (uint8_t)h;
		f[n++] = (uint8_t)(h >> 8);
		f[n++] = (uint8_t)(h >> 16);
		f[n++] = 0;
		left -= b;
	}
	return n;
}

/* Finding 14: an answer is at most DP_UDP_ANSWER_FACTOR (3) times its request, and the nodes
 * are held to it while they run: a ~170-byte datagram that decompresses to 4 MiB is refused
 * at the answer's bound (the node says so), never inflated first. */
static void
test_udp_answers_bounded_by_3x_the_request(void **state)
{
	uint8_t req[512], bomb[256], pay[100];
	struct frame_opt o = {0};
	struct rte_mbuf *r;
	const uint8_t *d;
	size_t n, blen, dlen;

	(void)state;
	for (int declared = 1; declared >= 0; declared--) {
		blen = rle_bomb(bomb, 4u << 20, declared);
		assert_true(blen < 160);
		n = wire_req(req, 4, 70 + (uint64_t)declared, 0, NULL, bomb, blen);
		r = roundtrip(udp_frame(&o, req, n));
		assert_non_null(r);
		d = check_udp_answer(r, &dlen);
		assert_int_equal(d[4], DP_OUT_OF_RANGE);
		assert_true(dlen <= n);
		/* The node's own message: stopped at what the answer may carry. */
		assert_int_equal(d[5], 1);
		assert_non_null(memmem(d + 29, d[23], "answer may c", d[23] < 12 ? d[23] : 12));
		rte_pktmbuf_free(r);
	}
	/* Within the bound is answered: crc32c of 100 bytes (28 + 138 <= 3 x (28 + 122)). */
	memset(pay, 7, sizeof(pay));
	n = wire_req(req, 2, 72, 0, NULL, pay, sizeof(pay));
	r = roundtrip(udp_frame(&o, req, n));
	d = check_udp_answer(r, &dlen);
	assert_int_equal(d[4], DP_OK);
	assert_true(dlen <= 3 * n);
	rte_pktmbuf_free(r);
	/* A 1-byte payload compressed: a ~13-byte zstd frame fits in 3 x (28 + 23) - 28. */
	n = wire_req(req, 3, 73, 0, NULL, "a", 1);
	r = roundtrip(udp_frame(&o, req, n));
	d = check_udp_answer(r, &dlen);
	assert_int_equal(d[4], DP_OK);
	rte_pktmbuf_free(r);
	assert_int_equal(stats().by_code[DP_OUT_OF_RANGE], 2);
}

/* Finding 14: frames no answer may go to are dropped and counted by reason: group source MACs,
 * broadcast and multicast destinations (MAC or IP), sources no host sends from, port 0. */
static void
test_udp_non_unicast_and_bogus_sources_dropped(void **state)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			     mcast[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01},
			     group_src[6] = {0x03, 0, 0, 0, 0, 2};
	struct {
		struct frame_opt o;
		unsigned reason;
	} cases[] = {
	    {{.dst_mac = bcast}, DP_UDP_DROP_DST_NOT_UNICAST},
	    {{.dst_mac = mcast}, DP_UDP_DROP_DST_NOT_UNICAST},
	    {{.dst_ip = 0xffffffffu}, DP_UDP_DROP_DST_NOT_UNICAST},
	    {{.dst_ip = 0x0a4d00ffu}, DP_UDP_DROP_DST_NOT_UNICAST}, /* 10.77.0.255 */
	    {{.dst_ip = 0xe0000001u}, DP_UDP_DROP_DST_NOT_UNICAST}, /* 224.0.0.1 */
	    {{.src_mac = bcast}, DP_UDP_DROP_SRC_BOGUS},
	    {{.src_mac = group_src}, DP_UDP_DROP_SRC_BOGUS},
	    {{.src_ip_zero = true}, DP_UDP_DROP_SRC_BOGUS},
	    {{.src_ip = 0x7f000001u}, DP_UDP_DROP_SRC_BOGUS}, /* 127.0.0.1 */
	    {{.src_ip = 0xe0000001u}, DP_UDP_DROP_SRC_BOGUS}, /* multicast */
	    {{.src_ip = 0xffffffffu}, DP_UDP_DROP_SRC_BOGUS}, /* limited broadcast */
	    {{.src_ip = 0xf0000001u}, DP_UDP_DROP_SRC_BOGUS}, /* 240/4 */
	    {{.src_ip = SERVER_IP}, DP_UDP_DROP_SRC_BOGUS},   /* our own */
	    {{.src_ip = 0x0a4d0000u}, DP_UDP_DROP_SRC_BOGUS}, /* our network's address */
	    {{.src_ip = 0x0a4d00ffu}, DP_UDP_DROP_SRC_BOGUS}, /* our broadcast address */
	    {{.src_port_zero = true}, DP_UDP_DROP_SRC_PORT_ZERO},
	    {{.proto = 1, .src_ip = 0x0a4d00ffu}, DP_UDP_DROP_SRC_BOGUS}, /* ICMP echo: smurf */
	};
	uint8_t req[64];

	(void)state;
	for (unsigned i = 0; i < RTE_DIM(cases); i++) {
		size_t n = wire_req(req, 1, 80 + i, 0, NULL, "abcd", 4);
		struct dp_udp_stats before = stats(), after;
		struct rte_mbuf *m = udp_frame(&cases[i].o, req, n);

		if (cases[i].o.proto == 1) { /* a valid echo request as the IPv4 payload */
			uint8_t *ic = rte_pktmbuf_mtod_offset(m, uint8_t *, 34);
			size_t il = 8 + n;

			memset(ic, 0, il);
			ic[0] = 8;
			put16(ic + 4, 0x4350);
			put16(ic + 2, (uint16_t)~fold(sum16(ic, il, 0)));
		}
		if (roundtrip(m) != NULL)
			fail_msg("case %u answered", i);
		after = stats();
		if (after.drops[cases[i].reason] != before.drops[cases[i].reason] + 1)
			fail_msg("case %u: not counted as %s", i,
				 dp_udp_drop_name(cases[i].reason));
	}
	/* ARP from a group MAC: not answered either. */
	{
		uint8_t *f;
		struct rte_mbuf *m = raw_frame(60, &f);

		memset(f, 0xff, 6);
		memcpy(f + 6, group_src, 6);
		put16(f + 12, 0x0806);
		put16(f + 14, 1);
		put16(f + 16, 0x0800);
		f[18] = 6;
		f[19] = 4;
		put16(f + 20, 1);
		memcpy(f + 22, group_src, 6);
		put32(f + 28, CLIENT_IP);
		put32(f + 38, SERVER_IP);
		assert_null(roundtrip(m));
	}
	assert_int_equal(stats().arp_replies, 0);
	assert_int_equal(stats().icmp_replies, 0);
	for (unsigned k = 0; k < DP_STATUS_MAX; k++)
		assert_int_equal(stats().by_code[k], 0);
	/* And an ordinary request is still answered. */
	{
		struct frame_opt o = {0};
		size_t n = wire_req(req, 1, 99, 0, NULL, "abcd", 4);
		struct rte_mbuf *r = roundtrip(udp_frame(&o, req, n));

		assert_non_null(r);
		rte_pktmbuf_free(r);
	}
}

static void
test_udp_output_too_large_is_out_of_range(void **state)
{
	uint8_t req[256];
	struct frame_opt o = {0};
	struct rte_mbuf *r;
	size_t n, clen = 0;
	uint8_t frame[64];

	(void)state;
	/* 11 bytes that decompress to 3000: more than one 1500-MTU datagram holds. */
	{
		/* Hand-made zstd frame: RLE block of 3000 zeros (RFC 8878 3.1.1.2). */
		uint8_t *f = frame;

		memcpy(f, "\x28\xb5\x2f\xfd", 4);
		f[4] = 0x60; /* FHD: single segment, FCS 2 bytes */
		f[5] = (uint8_t)((3000 - 256) & 0xff);
		f[6] = (uint8_t)((3000 - 256) >> 8);
		/* Block header: last=1, type=RLE(1), size=3000 -> (3000<<3)|(1<<1)|1 */
		f[7] = (uint8_t)(((3000 << 3) | 2 | 1) & 0xff);
		f[8] = (uint8_t)(((3000 << 3) | 2 | 1) >> 8);
		f[9] = (uint8_t)(((3000 << 3) | 2 | 1) >> 16);
		f[10] = 0; /* the byte repeated */
		clen = 11;
	}
	n = wire_req(req, 4, 31, 0, NULL, frame, clen);
	r = roundtrip(udp_frame(&o, req, n));
	check_error(r, n, 31, DP_OUT_OF_RANGE, NULL);
	assert_int_equal(stats().by_code[DP_OUT_OF_RANGE], 1);
}

static void
test_udp_deadline_draining_shedding(void **state)
{
	uint8_t req[128], pay[64] = {0};
	struct frame_opt o = {0};
	struct rte_mbuf *m;
	void *out = NULL;
	size_t n;

	(void)state;
	/* Arrived a second ago with a 1 ms budget. */
	n = wire_req(req, 1, 41, 1000, NULL, pay, sizeof(pay));
	m = udp_frame(&o, req, n);
	dp_udp_frame(g_env.dp.udp->wk[0], 0, m, rte_rdtsc() - rte_get_tsc_hz());
	dp_udp_flush(g_env.dp.udp->wk[0]);
	assert_int_equal(rte_ring_dequeue(g_env.tx, &out), 0);
	check_error(out, n, 41, DP_DEADLINE_EXCEEDED, "deadline");

	atomic_store(&g_env.w[0].lc.shedding, true);
	atomic_store(&g_env.w[0].lc.pushback_ms, 250);
	n = wire_req(req, 1, 42, 0, NULL, pay, sizeof(pay));
	m = roundtrip(udp_frame(&o, req, n));
	assert_non_null(m);
	assert_int_equal(rte_pktmbuf_mtod_offset(m, uint8_t *, 42)[6], 250); /* hint, LE */
	check_error(m, n, 42, DP_RESOURCE_EXHAUSTED, "load shedding");
	atomic_store(&g_env.w[0].lc.shedding, false);

	atomic_store(&g_env.dp.udp->draining, true);
	n = wire_req(req, 1, 43, 0, NULL, pay, sizeof(pay));
	check_error(roundtrip(udp_frame(&o, req, n)), n, 43, DP_UNAVAILABLE, "server is shutting");
	atomic_store(&g_env.dp.udp->draining, false);
}

static void
test_udp_unanswered_frames_dropped_and_counted(void **state)
{
	uint8_t req[64], other_mac[6] = {2, 9, 9, 9, 9, 9};
	struct {
		struct frame_opt o;
		unsigned reason;
		int corrupt; /* 1: bad magic, 2: response bit, 3: short */
	} cases[] = {
	    {{.bad_ip_csum = true}, DP_UDP_DROP_IP_CKSUM, 0},
	    {{.bad_udp_csum = true}, DP_UDP_DROP_UDP_CKSUM, 0},
	    {{.fragment = true}, DP_UDP_DROP_IP_FRAGMENT, 0},
	    {{.dst_port = 9001}, DP_UDP_DROP_UDP_PORT, 0},
	    {{.dst_ip = 0x0a4d0009u}, DP_UDP_DROP_IP_NOT_US, 0},
	    {{.dst_mac = other_mac}, DP_UDP_DROP_L2_OTHER, 0},
	    {{.proto = 6}, DP_UDP_DROP_IP_PROTO, 0},
	    {{.src_ip = 0x0a4e0002u}, DP_UDP_DROP_SRC_DENIED, 0}, /* off the port's /24 */
	    {{0}, DP_UDP_DROP_WIRE_MAGIC, 1},
	    {{0}, DP_UDP_DROP_WIRE_RESPONSE, 2},
	    {{0}, DP_UDP_DROP_WIRE_SHORT, 3},
	};

	(void)state;
	for (unsigned i = 0; i < RTE_DIM(cases); i++) {
		size_t n = wire_req(req, 1, 50 + i, 0, NULL, "abcd", 4);
		struct dp_udp_stats before = stats(), after;

		if (cases[i].corrupt == 1)
			req[1] = 'X';
		if (cases[i].corrupt == 2)
			req[3] = 0x01;
		if (cases[i].corrupt == 3)
			n = 21;
		assert_null(roundtrip(udp_frame(&cases[i].o, req, n)));
		after = stats();
		assert_int_equal(after.drops[cases[i].reason], before.drops[cases[i].reason] + 1);
	}
	/* IPv6 and runts. */
	{
		uint8_t *f;
		struct rte_mbuf *m = raw_frame(60, &f);

		for (unsigned i = 0; i < 6; i++)
			f[i] = g_env.mac[i];
		put16(f + 12, 0x86dd);
		assert_null(roundtrip(m));
		assert_int_equal(stats().drops[DP_UDP_DROP_ETHERTYPE], 1);
		m = raw_frame(10, &f);
		assert_null(roundtrip(m));
		assert_int_equal(stats().drops[DP_UDP_DROP_RUNT], 1);
	}
}

static void
test_udp_arp_request_for_us_is_answered(void **state)
{
	uint8_t *f, *a;
	struct rte_mbuf *m = raw_frame(60, &f), *r;

	(void)state;
	memset(f, 0xff, 6);
	memcpy(f + 6, CLIENT_MAC, 6);
	put16(f + 12, 0x0806);
	a = f + 14;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);
	memcpy(a + 8, CLIENT_MAC, 6);
	put32(a + 14, CLIENT_IP);
	put32(a + 24, SERVER_IP);
	r = roundtrip(m);
	assert_non_null(r);
	f = rte_pktmbuf_mtod(r, uint8_t *);
	a = f + 14;
	assert_memory_equal(f, CLIENT_MAC, 6);
	assert_memory_equal(f + 6, g_env.mac, 6);
	assert_int_equal(get16(a + 6), 2); /* reply */
	assert_memory_equal(a + 8, g_env.mac, 6);
	assert_int_equal(((uint32_t)get16(a + 14) << 16) | get16(a + 16), SERVER_IP);
	assert_memory_equal(a + 18, CLIENT_MAC, 6);
	assert_int_equal(((uint32_t)get16(a + 24) << 16) | get16(a + 26), CLIENT_IP);
	rte_pktmbuf_free(r);

	/* For somebody else: not answered. */
	m = raw_frame(60, &f);
	memset(f, 0xff, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	put32(f + 38, 0x0a4d0063u);
	assert_null(roundtrip(m));
	assert_int_equal(stats().arp_replies, 1);
	assert_int_equal(stats().drops[DP_UDP_DROP_ARP_OTHER], 1);
}

static void
test_udp_icmp_echo_is_answered(void **state)
{
	uint8_t body[8 + 24];
	struct frame_opt o = {.proto = 1, .no_udp_csum = true};
	struct rte_mbuf *m, *r;
	uint8_t *f;

	(void)state;
	memset(body, 0, sizeof(body));
	body[0] = 8; /* echo request */
	put16(body + 4, 0x1234);
	put16(body + 6, 7);
	memcpy(body + 8, "ping payload 0123456789ab", 24);
	put16(body + 2, (uint16_t)~fold(sum16(body, sizeof(body), 0)));
	/* udp_frame lays out IPv4 with proto 1; the "UDP" part is the ICMP message. */
	m = udp_frame(&o, body + 8, 24);
	f = rte_pktmbuf_mtod(m, uint8_t *);
	memcpy(f + 34, body, sizeof(body));
	r = roundtrip(m);
	assert_non_null(r);
	f = rte_pktmbuf_mtod(r, uint8_t *);
	assert_memory_equal(f, CLIENT_MAC, 6);
	assert_int_equal(fold(sum16(f + 14, 20, 0)), 0xffff);
	assert_int_equal(((uint32_t)get16(f + 30) << 16) | get16(f + 32), CLIENT_IP);
	assert_int_equal(f[34], 0); /* echo reply */
	assert_int_equal(fold(sum16(f + 34, sizeof(body), 0)), 0xffff);
	assert_memory_equal(f + 38, body + 4, sizeof(body) - 4);
	rte_pktmbuf_free(r);
	assert_int_equal(stats().icmp_replies, 1);
}

static void
test_udp_pipeline_replace_keeps_id(void **state)
{
	uint8_t req[64];
	struct frame_opt o = {0};
	struct rte_mbuf *r;
	const uint8_t *d;
	size_t n, dlen;

	(void)state;
	/* "passthrough" (id 1) becomes a crc32c pipeline: same id, new behaviour. */
	put_pipeline("passthrough", "crc32c", NULL, NULL);
	n = wire_req(req, 1, 61, 0, NULL, "123456789", 9);
	r = roundtrip(udp_frame(&o, req, n));
	d = check_udp_answer(r, &dlen);
	check_resp_hdr(d, 0x01, 0, 1, 61, 9);
	rte_pktmbuf_free(r);
}

static void
test_udp_single_queue_hands_off_to_other_worker(void **state)
{
	uint8_t req[64];
	unsigned sent = 0, got = 0, ok = 0;
	void *out[64];

	(void)state;
	/* 40 flows (source ports); worker 0 owns the only queue. */
	for (unsigned i = 0; i < 40; i++) {
		struct frame_opt o = {.src_port = (uint16_t)(41000 + i)};
		size_t n = wire_req(req, 2, 100 + i, 0, NULL, "123456789", 9);

		assert_int_equal(rte_ring_enqueue(g_env.rx, udp_frame(&o, req, n)), 0);
		sent++;
	}
	for (unsigned round = 0; round < 8; round++) {
		poll_lcore(0); /* RX, its share, flush */
		poll_lcore(1); /* the hand-offs, answers given back */
		poll_lcore(0); /* transmits the given-back answers */
	}
	for (unsigned n; (n = rte_ring_dequeue_burst(g_env.tx, out, 64, NULL)) != 0;) {
		for (unsigned i = 0; i < n; i++) {
			size_t dlen;
			const uint8_t *d = check_udp_answer(out[i], &dlen);

			ok += d[4] == DP_OK && d[5] == 1;
			rte_pktmbuf_free(out[i]);
		}
		got += n;
	}
	assert_int_equal(got, sent);
	assert_int_equal(ok, sent);
	{
		struct dp_udp_stats w0, w1;

		dp_udp_stats_read_one(g_env.dp.udp, 0, 0, &w0);
		dp_udp_stats_read_one(g_env.dp.udp, 1, 0, &w1);
		assert_int_equal(w0.rx_pkts, 40);
		assert_int_equal(w0.handoff_out, w1.by_code[DP_OK]);
		assert_true(w1.by_code[DP_OK] > 5 && w0.by_code[DP_OK] > 5); /* both served */
		assert_int_equal(w0.by_code[DP_OK] + w1.by_code[DP_OK], 40);
	}
}

/* A port's addresses for every kind of prefix (make asan's UBSan traps a shift by 32). */
static void
test_port_addrs_every_prefix(void **state)
{
	struct dp_port p;
	struct dp_port_conf c = {.ip = 0x0a000105}; /* 10.0.1.5 */

	(void)state;
	c.prefix_len = 24;
	dp_port_set_addrs(&p, &c);
	assert_int_equal(rte_be_to_cpu_32(p.ip_be), 0x0a000105);
	assert_int_equal(rte_be_to_cpu_32(p.net_be), 0x0a000100);
	assert_int_equal(rte_be_to_cpu_32(p.bcast_be), 0x0a0001ff);
	assert_int_equal(rte_be_to_cpu_32(p.allow_mask_be), 0xffffff00);
	assert_int_equal(rte_be_to_cpu_32(p.allow_net_be), 0x0a000100);
	c.prefix_len = 0; /* every source allowed; no subnet broadcast */
	dp_port_set_addrs(&p, &c);
	assert_int_equal(p.allow_mask_be, 0);
	assert_int_equal(p.allow_net_be, 0);
	assert_int_equal(p.net_be, 0);
	assert_int_equal(p.bcast_be, 0);
	for (uint8_t len = 31; len <= 32; len++) { /* RFC 3021: no network or broadcast */
		c.prefix_len = len;
		dp_port_set_addrs(&p, &c);
		assert_int_equal(p.net_be, 0);
		assert_int_equal(p.bcast_be, 0);
		assert_int_equal(rte_be_to_cpu_32(p.allow_mask_be),
				 len == 32 ? 0xffffffffu : 0xfffffffeu);
	}
	c.prefix_len = 24; /* allow_from overrides the subnet, /0 included */
	c.allow_set = true;
	c.allow_ip = 0xc0a80000;
	c.allow_prefix = 16;
	dp_port_set_addrs(&p, &c);
	assert_int_equal(rte_be_to_cpu_32(p.allow_net_be), 0xc0a80000);
	assert_int_equal(rte_be_to_cpu_32(p.allow_mask_be), 0xffff0000);
	assert_int_equal(rte_be_to_cpu_32(p.bcast_be), 0x0a0001ff);
	c.allow_prefix = 0;
	dp_port_set_addrs(&p, &c);
	assert_int_equal(p.allow_mask_be, 0);
}

/* The stats table names every counter once, in field order, each family's rows together,
 * and every GetStats name is a UdpPortStats uint64 (scalar rows) or map (array rows). */
static void
test_udp_stats_desc_covers_every_counter(void **state)
{
	const struct dp_stat_desc *t = dp_udp_stats_desc;
	unsigned bad;

	(void)state;
	assert_int_equal(
	    dp_stat_table_check(t, dp_udp_stats_n_desc,
				offsetof(struct dp_udp_stats, cycles) + sizeof(uint64_t), &bad),
	    0);
	for (unsigned r = 0; r < dp_udp_stats_n_desc; r++) {
		const ProtobufCFieldDescriptor *f;

		if (t[r].rpc == NULL)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(
		    &corepipe__v1__udp_port_stats__descriptor, t[r].rpc);
		assert_non_null(f);
		if (t[r].n == 1)
			assert_true(f->label != PROTOBUF_C_LABEL_REPEATED &&
				    f->type == PROTOBUF_C_TYPE_UINT64);
		else
			assert_true(f->label == PROTOBUF_C_LABEL_REPEATED &&
				    f->type == PROTOBUF_C_TYPE_MESSAGE);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_udp_stats_desc_covers_every_counter),
	    cmocka_unit_test(test_port_addrs_every_prefix),
	    cmocka_unit_test_setup_teardown(test_udp_passthrough_answered_byte_for_byte, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_crc32c_annotation_and_zero_udp_checksum,
					    setup1, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_audio_gain_keeps_audio_header, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_new_buffer_output_copied_back, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_errors_answered_with_status, setup1, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_output_too_large_is_out_of_range, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_answers_bounded_by_3x_the_request, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_non_unicast_and_bogus_sources_dropped, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_deadline_draining_shedding, setup1, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_unanswered_frames_dropped_and_counted, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_arp_request_for_us_is_answered, setup1,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_udp_icmp_echo_is_answered, setup1, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_pipeline_replace_keeps_id, setup1, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_single_queue_hands_off_to_other_worker,
					    setup_handoff, teardown),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}

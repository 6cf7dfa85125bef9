/*
 * dataplane/cksum.h against DPDK's own checksum functions (the oracle): every length 0..300 at
 * every alignment 0..7 of random bytes, and IPv4 header and UDP checksums of random headers.
 */
#include "dataplane/cksum.h"
#include "tests/fakes/cmocka_inc.h"

#include <stdlib.h>
#include <string.h>

static void
fill(uint8_t *p, size_t n, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

static void
test_cksum_raw_matches_rte_raw_cksum(void **state)
{
	uint8_t buf[320];

	(void)state;
	for (unsigned seed = 1; seed <= 4; seed++) {
		fill(buf, sizeof(buf), seed);
		for (size_t off = 0; off < 8; off++)
			for (size_t len = 0; len <= 300; len++)
				assert_int_equal(dp_cksum_raw(buf + off, len),
						 rte_raw_cksum(buf + off, len));
	}
	/* All ones: the sum that needs every carry folded back. */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = 0xff;
	assert_int_equal(dp_cksum_raw(buf, 301), rte_raw_cksum(buf, 301));
	assert_int_equal(dp_cksum_raw(buf, 0), 0);
}

static void
test_cksum_ipv4_and_udp_match_dpdk(void **state)
{
	uint8_t pkt[20 + 8 + 200];
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)pkt;
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(pkt + 20);

	(void)state;
	for (unsigned seed = 1; seed <= 64; seed++) {
		uint16_t plen = (uint16_t)(seed * 3 % 200), ulen = (uint16_t)(8 + plen);

		fill(pkt, sizeof(pkt), seed);
		ip->version_ihl = 0x45;
		ip->next_proto_id = IPPROTO_UDP;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(20 + ulen));
		ip->hdr_checksum = 0;
		udp->dgram_len = rte_cpu_to_be_16(ulen);
		udp->dgram_cksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		assert_true(dp_cksum_ipv4_ok(ip, 20));
		ip->time_to_live ^= 1;
		assert_false(dp_cksum_ipv4_ok(ip, 20));
		ip->time_to_live ^= 1;
		/* RFC 1624 update of TTL and total length = DPDK's full recomputation. */
		{
			uint16_t old_w, new_w, old_len = ip->total_length, hc = ip->hdr_checksum;
			uint16_t new_len = rte_cpu_to_be_16((uint16_t)(20 + ulen + seed));
			uint32_t delta;

			memcpy(&old_w, &ip->time_to_live, 2);
			ip->time_to_live = (uint8_t)(seed * 7);
			memcpy(&new_w, &ip->time_to_live, 2);
			ip->total_length = new_len;
			delta = dp_cksum_delta(old_w, new_w) + dp_cksum_delta(old_len, new_len);
			ip->hdr_checksum = 0;
			assert_int_equal(dp_cksum_update(hc, delta), rte_ipv4_cksum(ip));
			ip->hdr_checksum = dp_cksum_update(hc, delta);
			assert_true(dp_cksum_ipv4_ok(ip, 20));
			ip->total_length = old_len;
			ip->time_to_live = (uint8_t)old_w;
			ip->hdr_checksum = 0;
			ip->hdr_checksum = rte_ipv4_cksum(ip);
		}
		assert_int_equal(
		    dp_cksum_udp_field(dp_cksum_pseudo_udp(ip, ulen) + dp_cksum_raw(udp, ulen)),
		    rte_ipv4_udptcp_cksum(ip, udp));
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
		assert_true(dp_cksum_udp_ok(ip, udp, ulen));
		pkt[28 + plen / 2] ^= 0x40; /* one payload bit */
		if (plen > 0)
			assert_false(dp_cksum_udp_ok(ip, udp, ulen));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cksum_raw_matches_rte_raw_cksum),
	    cmocka_unit_test(test_cksum_ipv4_and_udp_match_dpdk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

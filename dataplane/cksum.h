/**
 * @file
 * Internet checksums (RFC 1071) for the UDP front end's software path, when the device offers
 * no checksum offload (net_memif, net_ring, net_af_packet).
 *
 * Why not rte_raw_cksum(): in DPDK 22.11 it adds one 16-bit word per iteration, and on a
 * datagram answered in place the sums over the request and the answer were the largest cost of
 * the whole request (perf annotate of perf/bench_udp_ring: the add loops in dp_udp_frame and
 * send_response). This sum adds 32-bit words into a 64-bit accumulator, four per iteration,
 * and folds once, which is the same arithmetic (one's-complement addition is associative and
 * byte order is fixed up at the end, RFC 1071 section 2), the way DPDK 23.07 rewrote it.
 * tests/unit/dataplane/test_cksum.c checks it against rte_raw_cksum() on every length and
 * alignment.
 *
 * Context: any. Ownership: nothing allocated.
 */
#ifndef COREPIPE_DP_CKSUM_H
#define COREPIPE_DP_CKSUM_H

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Hot path: per packet, worker lcores. No locks, syscalls, allocation or logging. */

/**
 * One's-complement sum of @p len bytes at @p p, as 16-bit words in memory (network) order,
 * folded to 16 bits but not complemented (like rte_raw_cksum()).
 */
static inline uint16_t
dp_cksum_raw(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t s = 0;
	uint32_t w[4];

	for (; len >= 16; len -= 16, b += 16) {
		memcpy(w, b, 16); /* no alignment assumed; compiles to plain loads */
		s += (uint64_t)w[0] + w[1] + w[2] + w[3];
	}
	for (; len >= 4; len -= 4, b += 4) {
		memcpy(w, b, 4);
		s += w[0];
	}
	if (len >= 2) {
		uint16_t h;

		memcpy(&h, b, 2);
		s += h;
		b += 2;
		len -= 2;
	}
	if (len == 1) {
		uint16_t h = 0;

		memcpy(&h, b, 1); /* the odd byte is the high-order byte of a zero-padded word */
		s += h;
	}
	/* Fold 64 -> 16 bits with end-around carry. */
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/** Fold a sum of 16-bit words (at most 2^16 of them) to 16 bits, end-around carry. */
static inline uint16_t
dp_cksum_fold(uint32_t s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/** Is the IPv4 header of @p ihl bytes at @p ip intact? */
static inline int
dp_cksum_ipv4_ok(const struct rte_ipv4_hdr *ip, unsigned ihl)
{
	return dp_cksum_raw(ip, ihl) == 0xffff;
}

/**
 * Incremental update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')): dp_cksum_delta() gives the
 * term for one 16-bit word changing from @p old to @p neu; dp_cksum_update() applies the sum
 * of such terms to the checksum @p hc. Words as they lie in memory.
 */
static inline uint32_t
dp_cksum_delta(uint16_t old, uint16_t neu)
{
	return (uint32_t)(uint16_t)~old + neu;
}

static inline uint16_t
dp_cksum_update(uint16_t hc, uint32_t delta)
{
	return (uint16_t)~dp_cksum_fold((uint32_t)(uint16_t)~hc + delta);
}

/**
 * Sum of the IPv4 pseudo-header of a UDP datagram of @p ulen bytes, from the values (a
 * pseudo-header built in memory and summed back stalls on store forwarding).
 */
static inline uint32_t
dp_cksum_pseudo_udp(const struct rte_ipv4_hdr *ip, uint16_t ulen)
{
	return (ip->src_addr & 0xffff) + (ip->src_addr >> 16) + (ip->dst_addr & 0xffff) +
	       (ip->dst_addr >> 16) + (uint32_t)(IPPROTO_UDP << 8) + rte_cpu_to_be_16(ulen);
}

/** Is the UDP checksum of the @p ulen-byte datagram at @p udp (non-zero field) right? */
static inline int
dp_cksum_udp_ok(const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp, uint16_t ulen)
{
	return dp_cksum_fold(dp_cksum_pseudo_udp(ip, ulen) + dp_cksum_raw(udp, ulen)) == 0xffff;
}

/** The UDP checksum field for a datagram whose words (pseudo-header included) sum to @p sum;
 * 0 is sent as 0xffff (RFC 768). */
static inline uint16_t
dp_cksum_udp_field(uint32_t sum)
{
	uint16_t c = (uint16_t)~dp_cksum_fold(sum);

	return c == 0 ? 0xffff : c;
}

#endif

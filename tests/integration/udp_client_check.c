/*
 * udp_client_check: libcorepipe-udp against a real server, for tests/integration/test_udp.py.
 *
 *   udp_client_check HOST PORT PIPELINE_ID N [--window W] [--size BYTES] [--timeout-ms MS]
 *                    [--crc32c]
 *
 * Sends N bytes requests to pipeline PIPELINE_ID at HOST:PORT, pipelined: up to W (default 64)
 * outstanding, sent with corepipe_udp_send_batch() and collected with
 * corepipe_udp_recv_batch(). Request i carries 1..BYTES (default 256) bytes of a pattern
 * derived from i, so that every answer can be checked against its own request. With --crc32c
 * every answer must also carry the annotation crc32c=<the CRC-32C of the payload, 8 hex
 * digits>.
 *
 * Exits 0 only if every request was answered OK with output equal to its input (and the
 * right crc32c); 1 when some were not (the first few failures are printed); 2 on bad usage or
 * a client error. The last line on stdout is always
 *   udp_client_check: sent S ok K failed F timeouts T stale X bad B
 *
 * Linked only with libcorepipe-udp.a (and libc). Bounded: N requests, each resolved within
 * the timeout (default 2000 ms), so the run ends after at most about N/W * timeout.
 */
#include "client/udp/corepipe_udp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZE	1400 /* payload bytes at most: a request fits one 1500-byte frame */
#define MAX_WINDOW	1024
#define BATCH		32
#define SHOW_FAILS	5
#define MAX_NO_PROGRESS 1000 /* rounds with nothing sent or resolved: give up (bounded) */

static unsigned g_size = 256;

static uint32_t
crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

/* The payload of request @p i: 1..g_size bytes, a pattern of i. */
static size_t
payload(uint64_t i, uint8_t *out)
{
	size_t n = 1 + (size_t)((i * 2654435761u) % g_size);
	uint32_t x = (uint32_t)(i * 2246822519u + 1);

	for (size_t k = 0; k < n; k++) {
		x = x * 1103515245u + 12345u;
		out[k] = (uint8_t)(x >> 16);
	}
	return n;
}

static int
usage(void)
{
	fprintf(stderr, "usage: udp_client_check HOST PORT PIPELINE_ID N [--window W] "
			"[--size BYTES] [--timeout-ms MS] [--crc32c]\n");
	return 2;
}

static bool
parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
	struct corepipe_udp_opts o;
	struct corepipe_udp_stats st;
	struct corepipe_udp *c;
	static uint8_t bufs[BATCH][MAX_SIZE];
	struct corepipe_udp_req reqs[BATCH];
	struct corepipe_udp_resp res[BATCH];
	uint8_t want[MAX_SIZE];
	uint64_t port, pid, n, window = 64, timeout_ms = 2000, v;
	uint64_t next = 0, done = 0, ok = 0, failed = 0;
	bool want_crc = false, progress;
	unsigned no_progress = 0;
	int rc = 0;

	if (argc < 5)
		return usage();
	if (!parse_u64(argv[2], 1, 65535, &port) || !parse_u64(argv[3], 1, 4096, &pid) ||
	    !parse_u64(argv[4], 1, 100000000, &n))
		return usage();
	for (int a = 5; a < argc; a++) {
		if (strcmp(argv[a], "--crc32c") == 0) {
			want_crc = true;
		} else if (a + 1 < argc && strcmp(argv[a], "--window") == 0 &&
			   parse_u64(argv[a + 1], 1, MAX_WINDOW, &window)) {
			a++;
		} else if (a + 1 < argc && strcmp(argv[a], "--size") == 0 &&
			   parse_u64(argv[a + 1], 1, MAX_SIZE, &v)) {
			g_size = (unsigned)v;
			a++;
		} else if (a + 1 < argc && strcmp(argv[a], "--timeout-ms") == 0 &&
			   parse_u64(argv[a + 1], 1, 60000, &timeout_ms)) {
			a++;
		} else {
			return usage();
		}
	}

	corepipe_udp_opts_init(&o);
	o.timeout_ms = (int)timeout_ms;
	o.batch = BATCH;
	o.window = MAX_WINDOW; /* >= any --window: our own limit is what bounds the flight */
	o.max_datagram = 2048;
	o.rcvbuf =
	    4 << 20; /* a window of answers must not overflow the socket (rmem_max caps it) */
	c = corepipe_udp_create(argv[1], (uint16_t)port, &o);
	if (c == NULL) {
		fprintf(stderr, "udp_client_check: corepipe_udp_create(%s, %s): %s\n", argv[1],
			argv[2], strerror(errno));
		return 2;
	}

	while (done < n) {
		uint64_t inflight = next - done;
		unsigned k = 0;
		int got;

		/* Fill the window. */
		while (next + k < n && inflight + k < window && k < BATCH) {
			reqs[k] = (struct corepipe_udp_req){
			    .pipeline_id = (uint32_t)pid,
			    .payload = bufs[k],
			    .len = payload(next + k, bufs[k]),
			    .user = (void *)(uintptr_t)(next + k),
			};
			k++;
		}
		progress = false;
		if (k > 0) {
			int sent = corepipe_udp_send_batch(c, reqs, k, NULL);

			if (sent < 0 && sent != -ENOBUFS) {
				fprintf(stderr, "udp_client_check: send_batch: %s\n",
					strerror(-sent));
				rc = 2;
				break;
			}
			if (sent > 0) {
				next += (uint64_t)sent;
				progress = true;
			}
		}
		/* Collect what is ready; wait (100 ms at most) when nothing more can be sent. */
		got = corepipe_udp_recv_batch(
		    c, res, BATCH, progress && next - done < window && next < n ? 0 : 100);
		if (got < 0) {
			fprintf(stderr, "udp_client_check: recv_batch: %s\n", strerror(-got));
			rc = 2;
			break;
		}
		no_progress = got == 0 && !progress ? no_progress + 1 : 0;
		if (no_progress > MAX_NO_PROGRESS) {
			fprintf(stderr, "udp_client_check: no progress\n");
			rc = 2;
			break;
		}
		for (int i = 0; i < got; i++) {
			const struct corepipe_udp_resp *r = &res[i];
			uint64_t idx = (uint64_t)(uintptr_t)r->user;
			size_t wn = payload(idx, want);
			const char *why = NULL, *val;
			char hex[9];
			size_t vlen;

			done++;
			if (r->err != 0)
				why = r->err == -ETIMEDOUT ? "timed out" : "client error";
			else if (r->status != COREPIPE_UDP_OK)
				why = corepipe_udp_status_name(r->status);
			else if (r->is_audio)
				why = "audio output";
			else if (r->output_len != wn || memcmp(r->output, want, wn) != 0)
				why = "output differs from input";
			if (why == NULL && want_crc) {
				snprintf(hex, sizeof(hex), "%08" PRIx32, crc32c(want, wn));
				if (corepipe_udp_resp_annot(r, "crc32c", &val, &vlen) != 0)
					why = "no crc32c annotation";
				else if (vlen != 8 || memcmp(val, hex, 8) != 0)
					why = "wrong crc32c";
			}
			if (why == NULL) {
				ok++;
				continue;
			}
			if (failed++ < SHOW_FAILS)
				printf("udp_client_check: request %" PRIu64 " (id %" PRIu64
				       ", %zu bytes): %s\n",
				       idx, r->request_id, wn, why);
		}
	}

	corepipe_udp_stats(c, &st);
	printf("udp_client_check: sent %" PRIu64 " ok %" PRIu64 " failed %" PRIu64
	       " timeouts %" PRIu64 " stale %" PRIu64 " bad %" PRIu64 "\n",
	       st.sent, ok, failed, st.timeouts, st.stale, st.bad);
	corepipe_udp_destroy(c);
	if (rc != 0)
		return rc;
	return ok == n && failed == 0 ? 0 : 1;
}

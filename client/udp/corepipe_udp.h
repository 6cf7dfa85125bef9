/**
 * @file
 * libcorepipe-udp: a client for the corepipe UDP wire protocol v1 (docs/wire-protocol.md) over
 * kernel sockets. No DPDK, no threads, links with nothing but libc.
 *
 * A client owns one connect()ed, non-blocking UDP socket to one server (IPv4 or IPv6), a
 * transmit arena and a receive arena of `batch` datagrams each, allocated once at creation,
 * and a window of outstanding requests indexed by request_id % window.
 *
 * Two ways to use it:
 *   - corepipe_udp_call(): one request, wait for its response or the timeout.
 *   - corepipe_udp_send_batch() / corepipe_udp_recv_batch(): pipelined. send_batch builds up
 *     to `batch` requests in the arena and sends them with one sendmmsg(); recv_batch reads
 *     responses with recvmmsg(), parses each, and matches it to its outstanding request by
 *     request id. Every request sent yields exactly one result from recv_batch: its response,
 *     or a timeout (err -ETIMEDOUT) once it has been outstanding for timeout_ms. Responses with
 *     an unknown, already answered (duplicate) or timed-out (stale) id are counted and dropped;
 *     datagrams that do not parse are counted and dropped.
 *
 * Request ids are chosen by the client: sequential from a random start, so that responses
 * meant for an earlier client on the same port are not taken for ours.
 *
 * Context: a client is used by one thread at a time (no internal locking); distinct clients
 * are independent. Ownership: the client owns its socket and arenas (corepipe_udp_destroy);
 * a result's output and annotations point into the client's receive arena and are valid until
 * the next corepipe_udp_call() or corepipe_udp_recv_batch() on the same client.
 */
#ifndef COREPIPE_UDP_H
#define COREPIPE_UDP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status values a server sends (gRPC numbering). */
#define COREPIPE_UDP_OK			 0
#define COREPIPE_UDP_INVALID_ARGUMENT	 3
#define COREPIPE_UDP_DEADLINE_EXCEEDED	 4
#define COREPIPE_UDP_NOT_FOUND		 5
#define COREPIPE_UDP_RESOURCE_EXHAUSTED	 8
#define COREPIPE_UDP_FAILED_PRECONDITION 9
#define COREPIPE_UDP_OUT_OF_RANGE	 11
#define COREPIPE_UDP_INTERNAL		 13
#define COREPIPE_UDP_UNAVAILABLE	 14

/** Sample formats of audio payloads. */
#define COREPIPE_UDP_S16LE 1
#define COREPIPE_UDP_F32LE 2

/** Largest UDP payload over IPv4; the default max_datagram. */
#define COREPIPE_UDP_MAX_DATAGRAM 65507

/** Client options; corepipe_udp_opts_init() sets the defaults. */
struct corepipe_udp_opts {
	int timeout_ms;	     /**< per request, from its send; default 1000, > 0 */
	unsigned batch;	     /**< requests per send_batch, results per recv_batch; default 32,
				  1..1024 */
	unsigned window;     /**< outstanding requests at most; power of two >= batch, <= 65536;
				  default 1024 */
	size_t max_datagram; /**< largest request or response in bytes; default 65507, >= 64;
				  memory is 2 * batch * max_datagram */
	int sndbuf;	     /**< SO_SNDBUF bytes; 0 keeps the system default */
	int rcvbuf;	     /**< SO_RCVBUF bytes; 0 keeps the system default */
};

/** Audio parameters of a request or response payload. */
struct corepipe_udp_audio {
	uint8_t fmt;	   /**< COREPIPE_UDP_S16LE or COREPIPE_UDP_F32LE */
	uint16_t channels; /**< > 0 */
	uint32_t rate;	   /**< Hz, > 0 */
};

/** One request to send. */
struct corepipe_udp_req {
	uint32_t pipeline_id; /**< the pipeline's stable id (ListPipelines), 1..4096 */
	uint32_t deadline_us; /**< server-side budget from arrival; 0: none */
	const void *payload;  /**< bytes or interleaved samples; copied at send */
	size_t len;
	const struct corepipe_udp_audio *audio; /**< NULL: a bytes payload */
	void *user;				/**< returned with the result, untouched */
};

/** The result for one request. */
struct corepipe_udp_resp {
	int err;	     /**< 0: a response arrived (see status); -ETIMEDOUT: none in time */
	int status;	     /**< gRPC status from the server (valid when err == 0) */
	uint32_t hint;	     /**< RESOURCE_EXHAUSTED: retry after this many ms */
	uint64_t request_id; /**< as returned by send_batch */
	void *user;	     /**< the request's user pointer */
	int is_audio;	     /**< the output is audio (then audio is set) */
	struct corepipe_udp_audio audio;
	const uint8_t *output; /**< output_len bytes in the receive arena; NULL when none */
	size_t output_len;
	unsigned n_annot;      /**< annotations, read with corepipe_udp_resp_annot*() */
	const uint8_t *annot_; /**< private: the annotation block */
	size_t annot_len_;     /**< private */
};

/** Counters since creation (corepipe_udp_stats()). */
struct corepipe_udp_stats {
	uint64_t sent;	      /**< requests handed to the kernel */
	uint64_t received;    /**< datagrams received */
	uint64_t matched;     /**< responses matched to an outstanding request */
	uint64_t stale;	      /**< valid responses for no outstanding request (duplicates,
				   late after a timeout, unknown ids) */
	uint64_t bad;	      /**< datagrams that are not a valid v1 response */
	uint64_t timeouts;    /**< requests that timed out */
	uint64_t outstanding; /**< requests sent and not yet resolved, now */
};

/**
 * Fill @p o with the defaults.
 * Context: any. Ownership: @p o is the caller's.
 */
void corepipe_udp_opts_init(struct corepipe_udp_opts *o);

/**
 * Create a client for @p host (numeric IPv4 or IPv6 address, or a name resolved with
 * getaddrinfo) and @p port: a UDP socket connect()ed there, and its arenas.
 * @param opts NULL for the defaults
 * @return the client, or NULL with errno: EINVAL (bad option, host or port), ENOMEM, or the
 * errno of socket()/setsockopt()/connect(); EHOSTUNREACH when the name does not resolve.
 * Context: any. Ownership: the caller owns the client; free it with corepipe_udp_destroy().
 */
struct corepipe_udp *corepipe_udp_create(const char *host, uint16_t port,
					 const struct corepipe_udp_opts *opts);

/**
 * Close the socket and free the arenas. Outstanding requests are forgotten. NULL is a no-op.
 * Context: the thread using @p c. Ownership: consumes @p c.
 */
void corepipe_udp_destroy(struct corepipe_udp *c);

/**
 * The socket, for the caller's own poll loop (readable: call corepipe_udp_recv_batch()).
 * Do not read from it or close it.
 * Context: any. Ownership: the client keeps the descriptor.
 */
int corepipe_udp_fd(const struct corepipe_udp *c);

/**
 * Send one request and wait for its response, at most timeout_ms.
 * @param resp filled in on 0; its output and annotations point into the client's receive
 *             arena until the next call()/recv_batch()
 * @return 0 when a response arrived (resp->status says how the request went); -ETIMEDOUT;
 * -EBUSY when pipelined requests are outstanding; -EINVAL (bad request: pipeline id 0, bad
 * audio parameters, not whole frames); -EMSGSIZE (larger than max_datagram); or a socket
 * -errno such as -ECONNREFUSED (the server's port is closed: ICMP port unreachable).
 * Responses for other ids that arrive meanwhile are counted as stale and dropped.
 * Context: the thread using @p c. Ownership: @p req is only read during the call.
 */
int corepipe_udp_call(struct corepipe_udp *c, const struct corepipe_udp_req *req,
		      struct corepipe_udp_resp *resp);

/**
 * Build @p n requests (at most batch) into the transmit arena and send them with sendmmsg(),
 * waiting up to timeout_ms for socket buffer space.
 * @param ids set to each sent request's id (may be NULL)
 * @return the number of requests sent (the first ones; the rest were not sent and have no
 * result coming), or: -EINVAL (n is 0 or above batch, or the first request is invalid: as
 * in corepipe_udp_call()), -EMSGSIZE (the first request is too large), -ENOBUFS (the
 * window cannot take the first request: collect results with recv_batch first), -ETIMEDOUT
 * (no buffer space in time), or a socket -errno. A later invalid, oversized or window-full
 * request stops the batch before it: the return value says how many went out.
 * Context: the thread using @p c. Ownership: payloads are copied; @p reqs is only read.
 */
int corepipe_udp_send_batch(struct corepipe_udp *c, const struct corepipe_udp_req *reqs, unsigned n,
			    uint64_t *ids);

/**
 * Collect results: responses received (recvmmsg), matched to outstanding requests, and
 * timeouts of requests outstanding for longer than timeout_ms. Waits up to @p wait_ms (-1:
 * until the oldest outstanding request would time out) for the first result, then takes what
 * else is ready without waiting.
 * @param out  room for @p max results (at most batch are returned)
 * @return the number of results (0 when nothing arrived in time or nothing is outstanding),
 * or a socket -errno (e.g. -ECONNREFUSED).
 * Context: the thread using @p c. Ownership: outputs point into the receive arena until the
 * next recv_batch()/call().
 */
int corepipe_udp_recv_batch(struct corepipe_udp *c, struct corepipe_udp_resp *out, unsigned max,
			    int wait_ms);

/**
 * Find the annotation @p key in @p r.
 * @param val  set to its value (not NUL-terminated; inside the receive arena)
 * @return 0, -ENOENT when there is none, -EBADMSG when the block is malformed.
 * Context: any. Ownership: nothing is allocated.
 */
int corepipe_udp_resp_annot(const struct corepipe_udp_resp *r, const char *key, const char **val,
			    size_t *vlen);

/**
 * The @p i-th annotation of @p r (0-based), key and value not NUL-terminated.
 * @return 0, -ENOENT when i >= n_annot, -EBADMSG when the block is malformed.
 * Context: any. Ownership: nothing is allocated.
 */
int corepipe_udp_resp_annot_at(const struct corepipe_udp_resp *r, unsigned i, const char **key,
			       size_t *klen, const char **val, size_t *vlen);

/**
 * Copy the counters.
 * Context: the thread using @p c. Ownership: @p s is the caller's.
 */
void corepipe_udp_stats(const struct corepipe_udp *c, struct corepipe_udp_stats *s);

/** Upper-case name of a gRPC status number ("RESOURCE_EXHAUSTED"); "UNKNOWN" otherwise. */
const char *corepipe_udp_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif

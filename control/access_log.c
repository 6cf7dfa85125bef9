/*
 * The access log (see access_log.h): per-call records in a bounded multi-producer ring, and a
 * logger thread that formats them as JSON lines.
 *
 * The threads that answer calls only copy a record into the ring (rte_ring_mp_enqueue_elem, a
 * few hundred bytes) or, when it is full, count a drop: nothing they do depends on how fast
 * stderr drains. The logger writes lines in batches of at most PIPE_BUF bytes, so a batch
 * never interleaves with the single-write lines of control/log.c.
 */
#include "control/access_log.h"

#include "control/log.h"
#include "dataplane/status.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Records taken off the ring per pass. */
#define BURST 32
/* The logger's sleep when the ring is empty: lines appear at most this late. */
#define IDLE_SLEEP_NS 5000000L
/* ... and with the log off (nothing is enqueued): 10 wake-ups a second instead of 200, on
 * the main lcore's CPU; the first lines after a reload turns it on wait at most this long. */
#define OFF_SLEEP_NS 100000000L
/* At most one "records dropped" warning per this interval. */
#define DROP_REPORT_NS 1000000000ull

/* One ring element: what a line needs, copied out of the call. 4-byte multiple (rte_ring). */
struct rec {
	uint64_t dur_ns;
	uint64_t queue_ns, worker_ns;
	uint64_t req_bytes, resp_bytes;
	const char *method; /* the method table's static path, or NULL */
	int32_t status;
	uint8_t rid_len;
	char rid[CP_ALOG_RID_MAX];
	char pipeline[CP_ALOG_NAME_MAX];
} __attribute__((aligned(8)));

static struct {
	struct rte_ring *ring; /* NULL: not started */
	pthread_t thread;
	atomic_bool stop;
	atomic_int mode;
	atomic_uint sample_n;
	atomic_uint_fast64_t seq;     /* calls seen at arrival (sampling) */
	atomic_uint_fast64_t rid_seq; /* generated request ids */
	uint64_t rid_base;	      /* random per process run */
	atomic_uint_fast64_t dropped; /* ring full; any producer */
	uint64_t written;	      /* logger thread writes (relaxed store); others load */
} g_alog;

/* ==== Logger thread ========================================================================= */

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whole microseconds, rounded up: a time that is not zero never shows as 0. */
static uint64_t
us_ceil(uint64_t ns)
{
	return (ns + 999) / 1000;
}

/* Format @p r as one JSON line into @p buf. @return its length. */
static size_t
format_rec(char *buf, size_t len, const struct rec *r)
{
	char rid[CP_ALOG_RID_MAX + 1];

	memcpy(rid, r->rid, r->rid_len);
	rid[r->rid_len] = '\0';
	return cp_log_format(buf, len, CP_LOG_INFO, "access",
			     (const struct cp_log_field[]){
				 CP_LF_STR("request_id", rid),
				 CP_LF_STR("method", r->method ? r->method : "(unregistered)"),
				 CP_LF_STR("pipeline", r->pipeline[0] ? r->pipeline : "-"),
				 CP_LF_STR("code", dp_status_name(r->status)),
				 CP_LF_INT("status", r->status),
				 CP_LF_U64("request_bytes", r->req_bytes),
				 CP_LF_U64("response_bytes", r->resp_bytes),
				 CP_LF_U64("queue_us", us_ceil(r->queue_ns)),
				 CP_LF_U64("worker_us", us_ceil(r->worker_ns)),
				 CP_LF_U64("duration_us", us_ceil(r->dur_ns)),
				 {.key = NULL},
			     });
}

static void
write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* stderr gone: the lines are lost, serving is not affected */
		p += w;
		n -= (size_t)w;
	}
}

/* Take one burst off the ring and write it. @return records taken. */
static unsigned
drain_once(void)
{
	struct rec recs[BURST];
	char out[PIPE_BUF], line[1024];
	size_t used = 0;
	unsigned n =
	    rte_ring_sc_dequeue_burst_elem(g_alog.ring, recs, sizeof(recs[0]), BURST, NULL);

	for (unsigned i = 0; i < n; i++) {
		size_t l = format_rec(line, sizeof(line), &recs[i]);

		if (used + l > sizeof(out)) {
			write_all(out, used);
			used = 0;
		}
		memcpy(out + used, line, l);
		used += l;
	}
	if (used != 0)
		write_all(out, used);
	/* Single writer: a relaxed load and store. */
	__atomic_store_n(&g_alog.written, g_alog.written + n, __ATOMIC_RELAXED);
	return n;
}

static void *
logger_main(void *arg)
{
	uint64_t reported = 0, last_report = 0;

	(void)arg;
	pthread_setname_np(pthread_self(), "cp-access-log");
	for (;;) {
		uint64_t d;
		bool off;

		if (drain_once() != 0)
			continue;
		/* Acquire: pairs with the release in cp_alog_stop(); records enqueued before it
		 * are visible to the final drain below. */
		if (atomic_load_explicit(&g_alog.stop, memory_order_acquire))
			break;
		d = atomic_load_explicit(&g_alog.dropped, memory_order_relaxed);
		if (d != reported && mono_ns() - last_report >= DROP_REPORT_NS) {
			cp_log(CP_LOG_WARN, "access log: ring full, records dropped",
			       CP_LF_U64("dropped", d - reported), CP_LF_U64("dropped_total", d));
			reported = d;
			last_report = mono_ns();
		}
		off = atomic_load_explicit(&g_alog.mode, memory_order_relaxed) == CP_ALOG_OFF;
		nanosleep(&(struct timespec){.tv_nsec = off ? OFF_SLEEP_NS : IDLE_SLEEP_NS}, NULL);
	}
	while (drain_once() != 0)
		;
	return NULL;
}

/* ==== Control =============================================================================== */

int
cp_alog_start(enum cp_alog_mode mode, uint32_t sample_n, uint32_t ring_size)
{
	int rc;

	if (ring_size == 0 || (ring_size & (ring_size - 1)) != 0)
		return -EINVAL;
	if (g_alog.ring != NULL)
		return -EALREADY;
	if (getrandom(&g_alog.rid_base, sizeof(g_alog.rid_base), 0) !=
	    (ssize_t)sizeof(g_alog.rid_base))
		g_alog.rid_base = mono_ns() * 0x9e3779b97f4a7c15ull;
	g_alog.ring = rte_ring_create_elem("cp_access_log", sizeof(struct rec), ring_size,
					   SOCKET_ID_ANY, RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (g_alog.ring == NULL)
		return rte_errno == EINVAL ? -EINVAL : -ENOMEM;
	cp_alog_configure(mode, sample_n);
	atomic_store_explicit(&g_alog.stop, false, memory_order_relaxed);
	rc = pthread_create(&g_alog.thread, NULL, logger_main, NULL);
	if (rc != 0) {
		rte_ring_free(g_alog.ring);
		g_alog.ring = NULL;
		return -rc;
	}
	return 0;
}

void
cp_alog_configure(enum cp_alog_mode mode, uint32_t sample_n)
{
	atomic_store_explicit(&g_alog.sample_n, sample_n ? sample_n : 1, memory_order_relaxed);
	atomic_store_explicit(&g_alog.mode, (int)mode, memory_order_relaxed);
}

void
cp_alog_stop(void)
{
	if (g_alog.ring == NULL)
		return;
	/* Release: pairs with the acquire in logger_main(). */
	atomic_store_explicit(&g_alog.stop, true, memory_order_release);
	pthread_join(g_alog.thread, NULL);
	atomic_store_explicit(&g_alog.mode, CP_ALOG_OFF, memory_order_relaxed);
	rte_ring_free(g_alog.ring);
	g_alog.ring = NULL;
}

void
cp_alog_counts(uint64_t *written, uint64_t *dropped)
{
	*written = __atomic_load_n(&g_alog.written, __ATOMIC_RELAXED);
	*dropped = atomic_load_explicit(&g_alog.dropped, memory_order_relaxed);
}

/* ==== Per-call hooks ======================================================================== */

void
cp_alog_begin(struct cp_alog_call *a, const grpc_metadata_array *md, grpc_byte_buffer *payload)
{
	enum cp_alog_mode mode =
	    (enum cp_alog_mode)atomic_load_explicit(&g_alog.mode, memory_order_relaxed);

	if (g_alog.ring == NULL)
		mode = CP_ALOG_OFF;
	a->log = mode == CP_ALOG_ALL || mode == CP_ALOG_ERRORS;
	if (mode == CP_ALOG_SAMPLED) {
		uint64_t n = atomic_fetch_add_explicit(&g_alog.seq, 1, memory_order_relaxed);

		a->log = n % atomic_load_explicit(&g_alog.sample_n, memory_order_relaxed) == 0;
	}
	a->rid_len = 0;
	for (size_t i = 0; md != NULL && i < md->count; i++) {
		if (grpc_slice_str_cmp(md->metadata[i].key, "x-request-id") == 0) {
			size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);

			a->rid_len = (uint8_t)(n < CP_ALOG_RID_MAX ? n : CP_ALOG_RID_MAX);
			memcpy(a->rid, GRPC_SLICE_START_PTR(md->metadata[i].value), a->rid_len);
			break;
		}
	}
	a->rid_return = a->rid_len != 0 || mode != CP_ALOG_OFF;
	if (a->rid_len == 0 && mode != CP_ALOG_OFF) {
		uint64_t id = g_alog.rid_base +
			      atomic_fetch_add_explicit(&g_alog.rid_seq, 1, memory_order_relaxed);

		a->rid_len =
		    (uint8_t)snprintf(a->rid, sizeof(a->rid), "%016llx", (unsigned long long)id);
	}
	a->req_bytes = payload != NULL ? grpc_byte_buffer_length(payload) : 0;
	a->pipeline[0] = '\0';
	a->queue_ns = a->worker_ns = 0;
}

void
cp_alog_pipeline(struct cp_alog_call *a, const char *name)
{
	snprintf(a->pipeline, sizeof(a->pipeline), "%s", name ? name : "_inline");
}

void
cp_alog_work(struct cp_alog_call *a, uint64_t queue_ns, uint64_t worker_ns)
{
	a->queue_ns = queue_ns;
	a->worker_ns = worker_ns;
}

unsigned
cp_alog_end(struct cp_alog_call *a, const char *method, grpc_status_code status,
	    grpc_byte_buffer *resp, uint64_t start_ns, grpc_metadata *trailer)
{
	enum cp_alog_mode mode =
	    (enum cp_alog_mode)atomic_load_explicit(&g_alog.mode, memory_order_relaxed);

	if (a->log && g_alog.ring != NULL && (mode != CP_ALOG_ERRORS || status != GRPC_STATUS_OK)) {
		struct rec r;

		r.dur_ns = mono_ns() - start_ns;
		r.queue_ns = a->queue_ns;
		r.worker_ns = a->worker_ns;
		r.req_bytes = a->req_bytes;
		r.resp_bytes = resp != NULL ? grpc_byte_buffer_length(resp) : 0;
		r.method = method;
		r.status = (int32_t)status;
		r.rid_len = a->rid_len;
		memcpy(r.rid, a->rid, a->rid_len);
		memcpy(r.pipeline, a->pipeline, sizeof(r.pipeline));
		if (rte_ring_mp_enqueue_elem(g_alog.ring, &r, sizeof(r)) != 0)
			atomic_fetch_add_explicit(&g_alog.dropped, 1, memory_order_relaxed);
	}
	if (!a->rid_return)
		return 0;
	/* A reference-counted copy: the core may keep it past the batch; cp_alog_free() drops
	 * ours when the call is freed. */
	if (!a->trailer_set) {
		a->trailer.key = grpc_slice_from_static_string("x-request-id");
		a->trailer.value = grpc_slice_from_copied_buffer(a->rid, a->rid_len);
		a->trailer_set = true;
	}
	*trailer = a->trailer;
	return 1;
}

void
cp_alog_free(struct cp_alog_call *a)
{
	if (a->trailer_set)
		grpc_slice_unref(a->trailer.value);
	a->trailer_set = false;
}

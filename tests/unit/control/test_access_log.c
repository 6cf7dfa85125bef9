/*
 * access_log: the line's fields, the request id taken from x-request-id or generated and
 * returned as a trailer, the modes (all, errors, sampled 1/N, off), and boundedness: with
 * stderr blocked (a pipe nobody reads), thousands of calls end without waiting, every record
 * is either written or counted as dropped, and nothing is lost from the count.
 */
#include "control/access_log.h"
#include "tests/fakes/cmocka_inc.h"
#include "tests/fakes/test_env.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char g_exec[] = "/corepipe.v1.Pipeline/Execute";

/* stderr captured into a pipe, drained by a thread into a buffer. */
static struct {
	int saved, rd;
	pthread_t t;
	char *buf;
	size_t len;
} g_cap;

static void *
capture_main(void *arg)
{
	char chunk[4096];
	ssize_t n;

	(void)arg;
	while ((n = read(g_cap.rd, chunk, sizeof(chunk))) > 0) {
		g_cap.buf = realloc(g_cap.buf, g_cap.len + (size_t)n + 1);
		memcpy(g_cap.buf + g_cap.len, chunk, (size_t)n);
		g_cap.len += (size_t)n;
		g_cap.buf[g_cap.len] = '\0';
	}
	return NULL;
}

/* Redirect stderr to a pipe; with @p read_now the pipe is drained at once. */
static void
capture_start(bool read_now)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	g_cap.saved = dup(2);
	dup2(fds[1], 2);
	close(fds[1]);
	g_cap.rd = fds[0];
	free(g_cap.buf);
	g_cap.buf = calloc(1, 1);
	g_cap.len = 0;
	if (read_now)
		pthread_create(&g_cap.t, NULL, capture_main, NULL);
}

static void
capture_read_now(void)
{
	pthread_create(&g_cap.t, NULL, capture_main, NULL);
}

/* Restore stderr and wait for everything written so far. */
static void
capture_stop(void)
{
	dup2(g_cap.saved, 2);
	close(g_cap.saved);
	pthread_join(g_cap.t, NULL);
	close(g_cap.rd);
}

static unsigned
count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* One call through the hooks. @return trailers added. */
static unsigned
call(const char *rid, grpc_status_code st, const char *pipeline, grpc_metadata *trailer)
{
	struct cp_alog_call a;
	grpc_metadata m[2];
	grpc_metadata_array md = {.count = 0, .capacity = 2, .metadata = m};
	grpc_slice in = grpc_slice_from_static_string("0123456789");
	grpc_slice out = grpc_slice_from_static_string("abc");
	grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&in, 1);
	grpc_byte_buffer *resp = grpc_raw_byte_buffer_create(&out, 1);
	unsigned n;

	memset(&a, 0, sizeof(a));
	m[md.count].key = grpc_slice_from_static_string("user-agent");
	m[md.count++].value = grpc_slice_from_static_string("test");
	if (rid != NULL) {
		m[md.count].key = grpc_slice_from_static_string("x-request-id");
		m[md.count++].value = grpc_slice_from_static_string(rid);
	}
	cp_alog_begin(&a, &md, req);
	cp_alog_pipeline(&a, pipeline);
	cp_alog_work(&a, 1500, 2500);
	n = cp_alog_end(&a, g_exec, st, st == GRPC_STATUS_OK ? resp : NULL, 0,
			trailer != NULL ? trailer : &m[0]);
	if (n == 1 && trailer != NULL) {
		/* The caller's copy must outlive the record's: take a reference. */
		trailer->value = grpc_slice_ref(trailer->value);
	}
	cp_alog_free(&a);
	grpc_byte_buffer_destroy(req);
	grpc_byte_buffer_destroy(resp);
	return n;
}

static bool
trailer_is(const grpc_metadata *t, const char *key, const char *value)
{
	bool ok = grpc_slice_str_cmp(t->key, key) == 0 &&
		  (value == NULL || grpc_slice_str_cmp(t->value, value) == 0);

	grpc_slice_unref(t->value);
	return ok;
}

static void
test_access_log_fields_and_request_id(void **state)
{
	grpc_metadata t;
	uint64_t written, dropped;

	(void)state;
	capture_start(true);
	assert_int_equal(cp_alog_start(CP_ALOG_ALL, 1, 256), 0);
	assert_int_equal(call("req-42", GRPC_STATUS_OK, "crc", &t), 1);
	assert_true(trailer_is(&t, "x-request-id", "req-42"));
	assert_int_equal(call(NULL, GRPC_STATUS_NOT_FOUND, NULL, &t), 1);
	assert_true(grpc_slice_str_cmp(t.key, "x-request-id") == 0);
	assert_int_equal(GRPC_SLICE_LENGTH(t.value), 16); /* generated: 16 hex digits */
	grpc_slice_unref(t.value);
	cp_alog_stop();
	capture_stop();
	cp_alog_counts(&written, &dropped);
	assert_int_equal(dropped, 0);
	assert_non_null(strstr(g_cap.buf,
			       "\"msg\":\"access\",\"request_id\":\"req-42\","
			       "\"method\":\"/corepipe.v1.Pipeline/Execute\","
			       "\"pipeline\":\"crc\",\"code\":\"OK\",\"status\":0,"
			       "\"request_bytes\":10,\"response_bytes\":3,\"queue_us\":2,"
			       "\"worker_us\":3,"));
	assert_non_null(strstr(g_cap.buf,
			       "\"pipeline\":\"_inline\",\"code\":\"NOT_FOUND\","
			       "\"status\":5,\"request_bytes\":10,\"response_bytes\":0"));
	assert_int_equal(count(g_cap.buf, "\"duration_us\":"), 2);
}

static void
test_access_log_modes(void **state)
{
	grpc_metadata t;

	(void)state;
	/* errors: only non-OK answers. */
	capture_start(true);
	assert_int_equal(cp_alog_start(CP_ALOG_ERRORS, 1, 256), 0);
	for (int i = 0; i < 5; i++)
		call(NULL, i % 2 ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_OK, "p", NULL);
	/* sampled 1/3, switched live: exactly one call in three. */
	cp_alog_configure(CP_ALOG_SAMPLED, 3);
	for (int i = 0; i < 9; i++)
		call("s", GRPC_STATUS_OK, "sampled", NULL);
	/* off: nothing logged, no id generated, but a client's id is still returned. */
	cp_alog_configure(CP_ALOG_OFF, 1);
	assert_int_equal(call(NULL, GRPC_STATUS_OK, "off", &t), 0);
	assert_int_equal(call("keep", GRPC_STATUS_INTERNAL, "off", &t), 1);
	assert_true(trailer_is(&t, "x-request-id", "keep"));
	cp_alog_stop();
	capture_stop();
	assert_int_equal(count(g_cap.buf, "\"msg\":\"access\""), 2 + 3);
	assert_int_equal(count(g_cap.buf, "\"code\":\"INVALID_ARGUMENT\""), 2);
	assert_int_equal(count(g_cap.buf, "\"pipeline\":\"sampled\""), 3);
	assert_int_equal(count(g_cap.buf, "\"pipeline\":\"off\""), 0);
}

static void
test_access_log_bounded_under_flood(void **state)
{
	enum { CALLS = 20000 };
	uint64_t w0, d0, written, dropped;

	(void)state;
	cp_alog_counts(&w0, &d0);
	capture_start(false); /* nobody reads: the logger blocks once the pipe is full */
	assert_int_equal(cp_alog_start(CP_ALOG_ALL, 1, 64), 0);
	for (int i = 0; i < CALLS; i++)
		call("flood", GRPC_STATUS_OK, "f", NULL);
	cp_alog_counts(&written, &dropped);
	/* The ring (64) and the pipe (64 KiB) hold far fewer than 20000 lines. */
	assert_true(dropped - d0 > 0);
	capture_read_now();
	cp_alog_stop(); /* drains what the ring still holds */
	capture_stop();
	cp_alog_counts(&written, &dropped);
	assert_int_equal((written - w0) + (dropped - d0), CALLS);
	assert_int_equal(count(g_cap.buf, "\"request_id\":\"flood\""), written - w0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_access_log_fields_and_request_id),
	    cmocka_unit_test(test_access_log_modes),
	    cmocka_unit_test(test_access_log_bounded_under_flood),
	};

	return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}

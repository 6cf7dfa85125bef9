/*
 * corepipectl --json's protobuf-c -> JSON: proto field names, defaults present, maps as
 * objects, enums by name, oneofs only when set, nested and repeated messages, bytes as base64.
 */
#include "client/ctl/pbjson.h"
#include "corepipe/v1/corepipe.pb-c.h"
#include "tests/fakes/cmocka_inc.h"

#include <stdlib.h>
#include <string.h>

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(j);
	return s;
}

static void
test_pbjson_maps_enums_oneofs_bytes(void **state)
{
	Corepipe__V1__ExecuteRequest rq = COREPIPE__V1__EXECUTE_REQUEST__INIT;
	Corepipe__V1__Payload p;
	Corepipe__V1__AudioBuffer a = COREPIPE__V1__AUDIO_BUFFER__INIT;
	char *s;

	(void)state;
	corepipe__v1__payload__init(&p);
	rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
	rq.name = "crc";
	a.format = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE;
	a.sample_rate = 16000;
	a.channels = 1;
	a.samples.data = (uint8_t *)"ab";
	a.samples.len = 2;
	p.kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
	p.audio = &a;
	rq.input = &p;
	s = dump(ctl_pb_to_json(&rq.base));
	assert_string_equal(s,
			    "{\"input\":{\"audio\":{\"channels\":1,\"format\":"
			    "\"SAMPLE_FORMAT_F32LE\",\"sample_rate\":16000,\"samples\":\"YWI=\"}},"
			    "\"name\":\"crc\"}");
	free(s);
}

static void
test_pbjson_stats_defaults_and_maps(void **state)
{
	Corepipe__V1__Stats st = COREPIPE__V1__STATS__INIT;
	Corepipe__V1__WorkerStats w = COREPIPE__V1__WORKER_STATS__INIT, *wp = &w;
	Corepipe__V1__WorkerStats__ByCodeEntry e = COREPIPE__V1__WORKER_STATS__BY_CODE_ENTRY__INIT,
					       *ep = &e;
	json_t *j;

	(void)state;
	e.key = "OK";
	e.value = 18446744073709551615ull; /* beyond int64: a real */
	w.n_by_code = 1;
	w.by_code = &ep;
	w.busy_ratio = 0.5;
	w.shedding = 1;
	st.n_workers = 1;
	st.workers = &wp;
	st.connections = 3;
	j = ctl_pb_to_json(&st.base);
	assert_int_equal(json_integer_value(json_object_get(j, "connections")), 3);
	assert_int_equal(json_integer_value(json_object_get(j, "in_flight")), 0); /* default */
	assert_int_equal(json_array_size(json_object_get(j, "pools")), 0);
	json_t *w0 = json_array_get(json_object_get(j, "workers"), 0);
	assert_true(json_is_true(json_object_get(w0, "shedding")));
	assert_true(json_real_value(json_object_get(w0, "busy_ratio")) == 0.5);
	assert_true(json_is_real(json_object_get(json_object_get(w0, "by_code"), "OK")));
	assert_int_equal(json_object_size(json_object_get(j, "rejected")), 0);
	json_decref(j);
}

static void
test_base64_padding(void **state)
{
	const char *in[] = {"", "f", "fo", "foo", "foob"},
		   *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg=="};

	(void)state;
	for (int i = 0; i < 5; i++) {
		json_t *j = ctl_base64((const uint8_t *)in[i], strlen(in[i]));

		assert_string_equal(json_string_value(j), out[i]);
		json_decref(j);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pbjson_maps_enums_oneofs_bytes),
	    cmocka_unit_test(test_pbjson_stats_defaults_and_maps),
	    cmocka_unit_test(test_base64_padding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

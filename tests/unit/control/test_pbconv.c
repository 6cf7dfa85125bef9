/*
 * protobuf <-> dataplane spec conversion: a PipelineSpec survives the round trip through
 * struct dp_spec and back (including params), views borrow instead of copying, and the
 * converted spec compiles exactly like one written by hand.
 */
#include "control/pbconv.h"
#include "tests/fakes/cmocka_inc.h"

#include <string.h>

static void
test_spec_round_trip_through_dp_spec(void **state)
{
	Corepipe__V1__NodeSpec__ParamsEntry db = COREPIPE__V1__NODE_SPEC__PARAMS_ENTRY__INIT;
	Corepipe__V1__NodeSpec__ParamsEntry *dbp[] = {&db};
	Corepipe__V1__NodeSpec gain = COREPIPE__V1__NODE_SPEC__INIT,
			       crc = COREPIPE__V1__NODE_SPEC__INIT;
	Corepipe__V1__NodeSpec *nodes[] = {&gain, &crc};
	Corepipe__V1__PipelineSpec in = COREPIPE__V1__PIPELINE_SPEC__INIT, back;
	struct dp_spec view;
	struct dp_pipeline *p;
	struct dp_err err;
	uint8_t a[256], b[256];
	size_t na, nb;

	(void)state;
	db.key = "db";
	db.value = "-6";
	gain.type = "gain";
	gain.n_params = 1;
	gain.params = dbp;
	crc.type = "crc32c";
	in.name = "rt";
	in.n_nodes = 2;
	in.nodes = nodes;

	assert_int_equal(cp_spec_view(&in, &view), 0);
	assert_int_equal(view.n_nodes, 2);
	assert_ptr_equal(view.name, in.name); /* borrowed */
	assert_string_equal(view.nodes[0].params[0].value, "-6");
	assert_int_equal(view.nodes[1].n_params, 0);
	p = dp_pipeline_compile(&view, 32, &err);
	assert_non_null(p);
	cp_spec_view_free(&view);

	/* Back from the pipeline's own copy: serialises to the same bytes. */
	assert_int_equal(cp_pb_spec_from(p->spec, &back), 0);
	na = corepipe__v1__pipeline_spec__pack(&in, a);
	nb = corepipe__v1__pipeline_spec__pack(&back, b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	cp_pb_spec_free(&back);
	dp_pipeline_unref(p);
}

static void
test_spec_view_of_empty_spec(void **state)
{
	Corepipe__V1__PipelineSpec in = COREPIPE__V1__PIPELINE_SPEC__INIT;
	struct dp_spec view;
	struct dp_err err;

	(void)state;
	assert_int_equal(cp_spec_view(&in, &view), 0);
	assert_int_equal(view.n_nodes, 0);
	assert_null(dp_pipeline_compile(&view, 32, &err));
	assert_string_equal(err.msg, "pipeline has no nodes");
	cp_spec_view_free(&view);
}

/* Pack @p m, then turn the first "@" of the wire bytes into a NUL (protobuf strings may hold
 * one; C strings cannot be built with one). */
static size_t
pack_with_nul(const ProtobufCMessage *m, uint8_t *buf)
{
	size_t n = protobuf_c_message_pack(m, buf);
	uint8_t *at = memchr(buf, '@', n);

	assert_non_null(at);
	*at = 0;
	return n;
}

/* Finding 16: a NUL inside any string of a request is INVALID_ARGUMENT, naming the field;
 * protobuf-c would hand "passthrough\0zz" over as "passthrough". */
static void
test_unpack_refuses_nul_in_strings(void **state)
{
	Corepipe__V1__NodeSpec__ParamsEntry db = COREPIPE__V1__NODE_SPEC__PARAMS_ENTRY__INIT;
	Corepipe__V1__NodeSpec__ParamsEntry *dbp[] = {&db};
	Corepipe__V1__NodeSpec n0 = COREPIPE__V1__NODE_SPEC__INIT,
			       n1 = COREPIPE__V1__NODE_SPEC__INIT;
	Corepipe__V1__NodeSpec *nodes[] = {&n0, &n1};
	Corepipe__V1__PipelineSpec ps = COREPIPE__V1__PIPELINE_SPEC__INIT;
	Corepipe__V1__PutPipelineRequest put = COREPIPE__V1__PUT_PIPELINE_REQUEST__INIT;
	Corepipe__V1__ExecuteRequest ex;
	Corepipe__V1__Payload pay;
	static const struct {
		const char *name, *type, *key, *value, *want;
	} cases[] = {
	    {"p@x", "passthrough", "db", "6", "pipeline.name: a NUL byte at offset 1"},
	    {"p", "passthrough@zz", "db", "6", "pipeline.nodes[0].type: a NUL byte at offset 11"},
	    {"p", "passthrough", "d@b", "6", "pipeline.nodes[1].params[0].key: a NUL byte"},
	    {"p", "passthrough", "db", "6@-200", "pipeline.nodes[1].params[0].value: a NUL byte"},
	};
	uint8_t buf[512], zeros[16] = {0};
	char err[256];
	ProtobufCMessage *m;
	size_t n;

	(void)state;
	corepipe__v1__execute_request__init(&ex);
	corepipe__v1__payload__init(&pay);
	ps.nodes = nodes;
	ps.n_nodes = 2;
	n1.type = "gain";
	n1.params = dbp;
	n1.n_params = 1;
	put.pipeline = &ps;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ps.name = (char *)cases[i].name;
		n0.type = (char *)cases[i].type;
		db.key = (char *)cases[i].key;
		db.value = (char *)cases[i].value;
		n = pack_with_nul(&put.base, buf);
		/* Plain protobuf-c takes it, cut short. */
		m = protobuf_c_message_unpack(&corepipe__v1__put_pipeline_request__descriptor, NULL,
					      n, buf);
		assert_non_null(m);
		protobuf_c_message_free_unpacked(m, NULL);
		assert_null(cp_pb_unpack(&corepipe__v1__put_pipeline_request__descriptor, n, buf,
					 err, sizeof(err)));
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
	}
	/* A oneof string (Execute by name); bytes may hold zeros. */
	ex.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
	ex.name = "passthrough@zz";
	pay.kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
	pay.data.data = zeros;
	pay.data.len = sizeof(zeros);
	ex.input = &pay;
	n = pack_with_nul(&ex.base, buf);
	assert_null(
	    cp_pb_unpack(&corepipe__v1__execute_request__descriptor, n, buf, err, sizeof(err)));
	assert_non_null(strstr(err, "name: a NUL byte at offset 11"));
	ex.name = "passthrough";
	n = protobuf_c_message_pack(&ex.base, buf);
	m = cp_pb_unpack(&corepipe__v1__execute_request__descriptor, n, buf, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(((Corepipe__V1__ExecuteRequest *)m)->input->data.len, sizeof(zeros));
	protobuf_c_message_free_unpacked(m, NULL);
	/* Not a message at all. */
	assert_null(cp_pb_unpack(&corepipe__v1__execute_request__descriptor, 3,
				 (const uint8_t *)"\xff\xff\xff", err, sizeof(err)));
	assert_non_null(strstr(err, "malformed request: not a valid corepipe.v1.ExecuteRequest"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unpack_refuses_nul_in_strings),
	    cmocka_unit_test(test_spec_round_trip_through_dp_spec),
	    cmocka_unit_test(test_spec_view_of_empty_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

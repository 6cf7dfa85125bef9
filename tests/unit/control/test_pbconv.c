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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_round_trip_through_dp_spec),
	    cmocka_unit_test(test_spec_view_of_empty_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * corepipectl's pipeline files: the three accepted shapes in YAML and JSON, params as strings
 * whatever their scalar type, the YAML it writes read back unchanged, and every error naming
 * file:line:column.
 */
#include "client/ctl/pipefile.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
parse(const char *text, bool need_names, struct ctl_pipefile *pf, char *err)
{
	return ctl_pipefile_parse("f", (const uint8_t *)text, strlen(text), need_names, pf, err,
				  256);
}

static void
test_pipefile_spec_shape_yaml_and_json(void **state)
{
	const char *texts[] = {
	    "name: loud\nnodes:\n  - type: gain\n    params: { db: 6 }\n  - type: crc32c\n",
	    "{\"name\":\"loud\",\"nodes\":[{\"type\":\"gain\",\"params\":{\"db\":6}},"
	    "{\"type\":\"crc32c\"}]}",
	    /* what `pipelines get --json` prints */
	    "{\"spec\":{\"name\":\"loud\",\"nodes\":[{\"type\":\"gain\",\"params\":{\"db\":\"6\"}},"
	    "{\"type\":\"crc32c\",\"params\":{}}]},\"id\":3,\"version\":7}",
	};
	struct ctl_pipefile pf;
	char err[256];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(parse(texts[i], true, &pf, err), 0);
		assert_int_equal(pf.n, 1);
		assert_string_equal(pf.specs[0]->name, "loud");
		assert_int_equal(pf.specs[0]->n_nodes, 2);
		assert_string_equal(pf.specs[0]->nodes[0]->type, "gain");
		assert_int_equal(pf.specs[0]->nodes[0]->n_params, 1);
		assert_string_equal(pf.specs[0]->nodes[0]->params[0]->key, "db");
		assert_string_equal(pf.specs[0]->nodes[0]->params[0]->value, "6");
		assert_string_equal(pf.specs[0]->nodes[1]->type, "crc32c");
		ctl_pipefile_free(&pf);
	}
}

static void
test_pipefile_config_shape_skips_other_sections(void **state)
{
	const char *text = "server:\n  grpc_listen: \"127.0.0.1:1\"\n"
			   "pipelines:\n  a:\n    - type: passthrough\n"
			   "  b:\n    - type: convert\n      params: { format: f32le }\n";
	struct ctl_pipefile pf;
	char err[256];

	(void)state;
	assert_int_equal(parse(text, true, &pf, err), 0);
	assert_int_equal(pf.n, 2);
	assert_string_equal(pf.specs[0]->name, "a");
	assert_string_equal(pf.specs[1]->name, "b");
	assert_string_equal(pf.specs[1]->nodes[0]->params[0]->value, "f32le");
	ctl_pipefile_free(&pf);
}

static void
test_pipefile_written_yaml_reads_back(void **state)
{
	const char *text = "name: q\nnodes:\n  - type: gain\n    params: { db: \"-6\", \"we:ird\": "
			   "\"a \\\"quoted\\\" \\\\ value\" }\n";
	struct ctl_pipefile pf, back;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_int_equal(parse(text, true, &pf, err), 0);
	f = open_memstream(&buf, &len);
	ctl_pipefile_write_yaml(f, pf.specs, pf.n);
	fclose(f);
	assert_int_equal(ctl_pipefile_parse("w", (uint8_t *)buf, len, true, &back, err, 256), 0);
	assert_int_equal(back.n, 1);
	assert_string_equal(back.specs[0]->name, "q");
	assert_int_equal(back.specs[0]->nodes[0]->n_params, 2);
	assert_string_equal(back.specs[0]->nodes[0]->params[1]->key, "we:ird");
	assert_string_equal(back.specs[0]->nodes[0]->params[1]->value, "a \"quoted\" \\ value");
	assert_string_equal(back.specs[0]->nodes[0]->params[0]->value, "-6");
	free(buf);
	ctl_pipefile_free(&pf);
	ctl_pipefile_free(&back);
}

static void
test_pipefile_inline_needs_no_name(void **state)
{
	struct ctl_pipefile pf;
	char err[256];

	(void)state;
	assert_int_equal(parse("nodes: [{type: crc32c}]", false, &pf, err), 0);
	assert_int_equal(pf.n, 1);
	assert_string_equal(pf.specs[0]->name, "");
	ctl_pipefile_free(&pf);
	assert_int_equal(parse("nodes: [{type: crc32c}]", true, &pf, err), -EINVAL);
	assert_non_null(strstr(err, "no name"));
}

static void
test_pipefile_errors_name_line_and_column(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"name: x\nnodes:\n  - type: gain\n    parms: {}\n",
	     "f:4:5: nodes[0]: unknown key 'parms'"},
	    {"name: x\nnodes:\n  - params: {db: 1}\n", "f:3:5: nodes[0]: missing 'type'"},
	    {"name: \"bad name\"\nnodes: [{type: a}]\n", "invalid pipeline name 'bad name'"},
	    {"name: x\nnodes: {type: a}\n", "f:2:8: nodes: expected a list of nodes"},
	    {"name: x\nnodes: []\n", "at least one node"},
	    {"pipelines:\n  a: [{type: x}]\nextra: 1\n", "f:3:1: unknown key 'extra'"},
	    {"pipelines:\n  a: [{type: x}]\n  a: [{type: y}]\n", "duplicate pipeline 'a'"},
	    {"name: x\nnodes: [{type: g, params: {k: [1]}}]\n", "keys and values must be scalars"},
	    {"name: x\nnodes: [{type: g, params: {k: 1, k: 2}}]\n", "duplicate key 'k'"},
	    {"{\"name\": \"x\", \"nodes\": [}", "f:1:25: JSON syntax error"},
	    {"- just\n- a list\n", "expected a mapping"},
	    {"{\"name\":\"x\",\"nodes\":[{\"type\":\"\\ud83d\\ude00\"}]}", "surrogate"},
	};
	struct ctl_pipefile pf;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].text, true, &pf, err), -EINVAL);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].want);
		assert_int_equal(pf.n, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipefile_spec_shape_yaml_and_json),
	    cmocka_unit_test(test_pipefile_config_shape_skips_other_sections),
	    cmocka_unit_test(test_pipefile_written_yaml_reads_back),
	    cmocka_unit_test(test_pipefile_inline_needs_no_name),
	    cmocka_unit_test(test_pipefile_errors_name_line_and_column),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

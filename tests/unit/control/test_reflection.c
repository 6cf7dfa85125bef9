/*
 * Server reflection as a pure function (control/reflection.c): the embedded descriptor set is
 * indexed, every request kind gets the right answer (files with their transitive dependencies,
 * each once, the requested one first; services sorted; extensions), unknown names and empty
 * requests are answered in band, malformed requests and malformed sets are refused.
 */
#include "control/reflection.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Grpc__Reflection__V1__ServerReflectionRequest Req;
typedef Grpc__Reflection__V1__ServerReflectionResponse Resp;

static int
setup(void **state)
{
	*state = cp_reflection_create(cp_protoset, (size_t)(cp_protoset_end - cp_protoset));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	cp_reflection_destroy(*state);
	return 0;
}

/* Pack @p rq, answer it, unpack the answer (free with free_unpacked). */
static Resp *
ask(const struct cp_reflection *r, const Req *rq)
{
	uint8_t buf[1024], *out = NULL;
	size_t n = grpc__reflection__v1__server_reflection_request__pack(rq, buf), out_len = 0;
	Resp *resp;

	assert_int_equal(cp_reflection_answer(r, buf, n, &out, &out_len), 0);
	resp = grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(resp);
	return resp;
}

static Resp *
ask_symbol(const struct cp_reflection *r, const char *sym)
{
	Req rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
	rq.file_containing_symbol = (char *)sym;
	return ask(r, &rq);
}

/* The name of the @p i-th file of a file_descriptor_response. */
static char *
file_name(const Resp *resp, size_t i, char *buf, size_t n)
{
	Google__Protobuf__FileDescriptorProto *fd;

	assert_int_equal(
	    resp->message_response_case,
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
	assert_true(i < resp->file_descriptor_response->n_file_descriptor_proto);
	fd = google__protobuf__file_descriptor_proto__unpack(
	    NULL, resp->file_descriptor_response->file_descriptor_proto[i].len,
	    resp->file_descriptor_response->file_descriptor_proto[i].data);
	assert_non_null(fd);
	snprintf(buf, n, "%s", fd->name);
	google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
	return buf;
}

static void
test_reflection_list_services_sorted_with_host_echoed(void **state)
{
	Req rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	const char *want[] = {"corepipe.v1.Admin", "corepipe.v1.Pipeline", "grpc.health.v1.Health",
			      "grpc.reflection.v1.ServerReflection",
			      "grpc.reflection.v1alpha.ServerReflection"};
	Resp *resp;

	assert_int_equal(cp_reflection_n_services(*state), 5);
	rq.host = "example:1";
	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
	rq.list_services = "*";
	resp = ask(*state, &rq);
	assert_int_equal(
	    resp->message_response_case,
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
	assert_int_equal(resp->list_services_response->n_service, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(resp->list_services_response->service[i]->name, want[i]);
	assert_string_equal(resp->valid_host, "example:1");
	assert_non_null(resp->original_request);
	assert_string_equal(resp->original_request->list_services, "*");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void
test_reflection_symbol_kinds_found_in_their_file(void **state)
{
	const char *syms[] = {"corepipe.v1.Pipeline",
			      "corepipe.v1.Admin.ReloadConfig",
			      "corepipe.v1.ExecuteRequest",
			      "corepipe.v1.ExecuteRequest.pipeline", /* a oneof */
			      "corepipe.v1.ExecuteRequest.inline",   /* a field */
			      "corepipe.v1.NodeSpec.ParamsEntry",    /* a nested (map) type */
			      "corepipe.v1.SampleFormat",
			      "corepipe.v1.SAMPLE_FORMAT_S16LE", /* an enum value */
			      ".corepipe.v1.Stats"};		 /* leading dot */
	char name[128];

	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		Resp *resp = ask_symbol(*state, syms[i]);

		assert_string_equal(file_name(resp, 0, name, sizeof(name)),
				    "corepipe/v1/corepipe.proto");
		/* corepipe.proto imports nothing. */
		assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 1);
		grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	}
	/* Nested enum values are scoped by their message. */
	Resp *resp = ask_symbol(*state, "grpc.health.v1.HealthCheckResponse.SERVING");

	assert_string_equal(file_name(resp, 0, name, sizeof(name)), "grpc/health/v1/health.proto");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void
test_reflection_unknown_symbol_not_found_in_band(void **state)
{
	const char *bad[] = {"corepipe.v1", "corepipe.v1.Nope", "corepipe.v1.Pipeline.Nope", "",
			     "Pipeline"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Resp *resp = ask_symbol(*state, bad[i]);

		assert_int_equal(
		    resp->message_response_case,
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
		assert_int_equal(resp->error_response->error_code, 5); /* NOT_FOUND */
		assert_non_null(strstr(resp->error_response->error_message, bad[i]));
		assert_string_equal(resp->original_request->file_containing_symbol, bad[i]);
		grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	}
}

static void
test_reflection_file_by_filename(void **state)
{
	Req rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	char name[128];
	Resp *resp;

	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
	rq.file_by_filename = "grpc/reflection/v1alpha/reflection.proto";
	resp = ask(*state, &rq);
	assert_string_equal(file_name(resp, 0, name, sizeof(name)), rq.file_by_filename);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	rq.file_by_filename = "corepipe.proto"; /* names are paths as protoc saw them */
	resp = ask(*state, &rq);
	assert_int_equal(resp->error_response->error_code, 5);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void
test_reflection_extensions(void **state)
{
	Req rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
	Resp *resp;

	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
	rq.all_extension_numbers_of_type = "corepipe.v1.Stats";
	resp = ask(*state, &rq);
	assert_string_equal(resp->all_extension_numbers_response->base_type_name,
			    "corepipe.v1.Stats");
	assert_int_equal(resp->all_extension_numbers_response->n_extension_number, 0);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	/* A service is not a message type. */
	rq.all_extension_numbers_of_type = "corepipe.v1.Admin";
	resp = ask(*state, &rq);
	assert_int_equal(resp->error_response->error_code, 5);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);

	ext.containing_type = "corepipe.v1.Stats";
	ext.extension_number = 100;
	rq.message_request_case =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
	rq.file_containing_extension = &ext;
	resp = ask(*state, &rq);
	assert_int_equal(resp->error_response->error_code, 5);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void
test_reflection_empty_request_invalid_argument_in_band(void **state)
{
	Req rq = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
	Resp *resp = ask(*state, &rq);

	assert_int_equal(resp->error_response->error_code, 3); /* INVALID_ARGUMENT */
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
}

static void
test_reflection_malformed_request_refused(void **state)
{
	const uint8_t junk[] = {0xff, 0xff, 0xff};
	uint8_t *out = NULL;
	size_t n = 0;

	assert_int_equal(cp_reflection_answer(*state, junk, sizeof(junk), &out, &n), -EINVAL);
	assert_null(out);
}

/* ---- Synthetic sets ------------------------------------------------------------------------ */

/* Append a file named @p name importing @p deps (NULL-terminated) with one message @p msg. */
static size_t
add_file(uint8_t *set, size_t off, const char *name, const char **deps, const char *msg)
{
	Google__Protobuf__FileDescriptorProto fd = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto *mp = &m;
	size_t n = 0, len;

	while (deps != NULL && deps[n] != NULL)
		n++;
	fd.name = (char *)name;
	fd.package = "t";
	fd.n_dependency = n;
	fd.dependency = (char **)deps;
	m.name = (char *)msg;
	fd.n_message_type = 1;
	fd.message_type = &mp;
	len = google__protobuf__file_descriptor_proto__get_packed_size(&fd);
	assert_true(len < 127);
	set[off] = 0x0a; /* field 1, length-delimited */
	set[off + 1] = (uint8_t)len;
	google__protobuf__file_descriptor_proto__pack(&fd, set + off + 2);
	return off + 2 + len;
}

static void
test_reflection_transitive_dependencies_once_requested_first(void **state)
{
	uint8_t set[1024];
	const char *a_deps[] = {"b.proto", "c.proto", NULL}, *b_deps[] = {"c.proto", NULL};
	size_t n = 0;
	struct cp_reflection *r;
	char name[64];
	Resp *resp;

	(void)state;
	n = add_file(set, n, "c.proto", NULL, "C");
	n = add_file(set, n, "b.proto", b_deps, "B");
	n = add_file(set, n, "a.proto", a_deps, "A");
	r = cp_reflection_create(set, n);
	assert_non_null(r);
	assert_int_equal(cp_reflection_n_services(r), 0);
	resp = ask_symbol(r, "t.A");
	assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 3);
	assert_string_equal(file_name(resp, 0, name, sizeof(name)), "a.proto");
	assert_string_equal(file_name(resp, 1, name, sizeof(name)), "b.proto");
	assert_string_equal(file_name(resp, 2, name, sizeof(name)), "c.proto");
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	resp = ask_symbol(r, "t.B");
	assert_int_equal(resp->file_descriptor_response->n_file_descriptor_proto, 2);
	grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
	cp_reflection_destroy(r);
}

static void
test_reflection_create_refuses_bad_sets(void **state)
{
	uint8_t set[1024];
	const char *deps[] = {"missing.proto", NULL};
	const uint8_t junk[] = {0x0a, 0x05, 0x01};
	size_t n;

	(void)state;
	/* A dependency not in the set (protoc run without --include_imports). */
	n = add_file(set, 0, "a.proto", deps, "A");
	errno = 0;
	assert_null(cp_reflection_create(set, n));
	assert_int_equal(errno, EINVAL);
	/* The same file twice. */
	n = add_file(set, 0, "a.proto", NULL, "A");
	n = add_file(set, n, "a.proto", NULL, "A2");
	assert_null(cp_reflection_create(set, n));
	/* Truncated. */
	assert_null(cp_reflection_create(junk, sizeof(junk)));
	assert_int_equal(errno, EINVAL);
	/* An empty set is valid and lists nothing. */
	struct cp_reflection *r = cp_reflection_create(set, 0);

	assert_non_null(r);
	assert_int_equal(cp_reflection_n_services(r), 0);
	cp_reflection_destroy(r);
	cp_reflection_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reflection_list_services_sorted_with_host_echoed,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reflection_symbol_kinds_found_in_their_file, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reflection_unknown_symbol_not_found_in_band, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_reflection_file_by_filename, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reflection_extensions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reflection_empty_request_invalid_argument_in_band,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reflection_malformed_request_refused, setup,
					    teardown),
	    cmocka_unit_test(test_reflection_transitive_dependencies_once_requested_first),
	    cmocka_unit_test(test_reflection_create_refuses_bad_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

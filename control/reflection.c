/*
 * Server reflection over a FileDescriptorSet (see reflection.h).
 *
 * The set is walked once at create: each `file` entry (field 1, length-delimited) keeps its
 * original bytes, which are what a response carries, and is unpacked (descriptor.proto in
 * protobuf-c) only to learn its name, dependencies and the full names of its declarations. The
 * names go into one sorted array searched with bsearch; dependencies become file indices.
 */
#include "control/reflection.h"

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* gRPC status codes used in error_response (grpc/status.h; not included: no gRPC here). */
#define ST_INVALID_ARGUMENT 3
#define ST_NOT_FOUND	    5

struct refl_file {
	const char *name; /* in fd */
	ProtobufCBinaryData bytes;
	Google__Protobuf__FileDescriptorProto *fd;
	unsigned *deps; /* indices of the direct dependencies */
	unsigned n_deps;
};

struct refl_sym {
	char *name;
	unsigned file;
	bool message; /* a message type (all_extension_numbers_of_type) */
};

struct cp_reflection {
	struct refl_file *files;
	unsigned n_files;
	struct refl_sym *syms;
	size_t n_syms, cap_syms;
	char **services;
	unsigned n_services;
};

/* ==== Building the index ==================================================================== */

/* Read a varint at *p (< end). @return 0 or -1. */
static int
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static int
add_sym(struct cp_reflection *r, const char *scope, const char *name, unsigned file, bool message)
{
	size_t n = strlen(scope) + strlen(name) + 2;
	char *full = malloc(n);

	if (full == NULL)
		return -ENOMEM;
	if (scope[0] != '\0')
		snprintf(full, n, "%s.%s", scope, name);
	else
		snprintf(full, n, "%s", name);
	if (r->n_syms == r->cap_syms) {
		size_t cap = r->cap_syms ? 2 * r->cap_syms : 256;
		struct refl_sym *s = realloc(r->syms, cap * sizeof(*s));

		if (s == NULL) {
			free(full);
			return -ENOMEM;
		}
		r->syms = s;
		r->cap_syms = cap;
	}
	r->syms[r->n_syms++] = (struct refl_sym){full, file, message};
	return 0;
}

/* Enum @p e declared in @p scope: the enum, and its values as siblings of it (protobuf's
 * C++-style scoping: corepipe.v1.SAMPLE_FORMAT_S16LE). */
static int
add_enum(struct cp_reflection *r, const char *scope, const Google__Protobuf__EnumDescriptorProto *e,
	 unsigned file)
{
	int rc = add_sym(r, scope, e->name, file, false);

	for (size_t i = 0; rc == 0 && i < e->n_value; i++)
		rc = add_sym(r, scope, e->value[i]->name, file, false);
	return rc;
}

static int
add_message(struct cp_reflection *r, const char *scope, const Google__Protobuf__DescriptorProto *m,
	    unsigned file)
{
	char *full;
	size_t n = strlen(scope) + strlen(m->name) + 2;
	int rc = add_sym(r, scope, m->name, file, true);

	if (rc != 0)
		return rc;
	full = malloc(n);
	if (full == NULL)
		return -ENOMEM;
	snprintf(full, n, "%s%s%s", scope, scope[0] ? "." : "", m->name);
	for (size_t i = 0; rc == 0 && i < m->n_field; i++)
		rc = add_sym(r, full, m->field[i]->name, file, false);
	for (size_t i = 0; rc == 0 && i < m->n_extension; i++)
		rc = add_sym(r, full, m->extension[i]->name, file, false);
	for (size_t i = 0; rc == 0 && i < m->n_oneof_decl; i++)
		rc = add_sym(r, full, m->oneof_decl[i]->name, file, false);
	for (size_t i = 0; rc == 0 && i < m->n_enum_type; i++)
		rc = add_enum(r, full, m->enum_type[i], file);
	for (size_t i = 0; rc == 0 && i < m->n_nested_type; i++)
		rc = add_message(r, full, m->nested_type[i], file);
	free(full);
	return rc;
}

static int
index_file(struct cp_reflection *r, unsigned idx)
{
	const Google__Protobuf__FileDescriptorProto *fd = r->files[idx].fd;
	const char *pkg = fd->package ? fd->package : "";
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < fd->n_message_type; i++)
		rc = add_message(r, pkg, fd->message_type[i], idx);
	for (size_t i = 0; rc == 0 && i < fd->n_enum_type; i++)
		rc = add_enum(r, pkg, fd->enum_type[i], idx);
	for (size_t i = 0; rc == 0 && i < fd->n_extension; i++)
		rc = add_sym(r, pkg, fd->extension[i]->name, idx, false);
	for (size_t i = 0; rc == 0 && i < fd->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
		char **sv;

		rc = add_sym(r, pkg, s->name, idx, false);
		if (rc != 0)
			break;
		sv = realloc(r->services, (r->n_services + 1) * sizeof(*sv));
		if (sv == NULL)
			return -ENOMEM;
		r->services = sv;
		/* The symbol just added is the service's full name. */
		r->services[r->n_services] = strdup(r->syms[r->n_syms - 1].name);
		if (r->services[r->n_services] == NULL)
			return -ENOMEM;
		r->n_services++;
		for (size_t k = 0; rc == 0 && k < s->n_method; k++)
			rc = add_sym(r, r->services[r->n_services - 1], s->method[k]->name, idx,
				     false);
	}
	return rc;
}

static int
sym_cmp(const void *a, const void *b)
{
	return strcmp(((const struct refl_sym *)a)->name, ((const struct refl_sym *)b)->name);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
find_file(const struct cp_reflection *r, const char *name)
{
	for (unsigned i = 0; i < r->n_files; i++)
		if (strcmp(r->files[i].name, name) == 0)
			return (int)i;
	return -1;
}

struct cp_reflection *
cp_reflection_create(const uint8_t *set, size_t len)
{
	struct cp_reflection *r = calloc(1, sizeof(*r));
	const uint8_t *p = set, *end = set + len;
	int rc = -EINVAL;

	if (r == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	/* FileDescriptorSet: only `repeated FileDescriptorProto file = 1`. */
	while (p < end) {
		uint64_t key, n;
		struct refl_file *f;

		if (varint(&p, end, &key) != 0 || key != ((1u << 3) | 2) ||
		    varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
			goto err;
		f = realloc(r->files, (r->n_files + 1) * sizeof(*f));
		if (f == NULL) {
			rc = -ENOMEM;
			goto err;
		}
		r->files = f;
		f = &r->files[r->n_files];
		memset(f, 0, sizeof(*f));
		f->bytes.data = (uint8_t *)p;
		f->bytes.len = (size_t)n;
		f->fd = google__protobuf__file_descriptor_proto__unpack(NULL, (size_t)n, p);
		if (f->fd == NULL || f->fd->name == NULL)
			goto err_count;
		f->name = f->fd->name;
		r->n_files++;
		if (find_file(r, f->name) != (int)r->n_files - 1)
			goto err; /* duplicate name */
		p += n;
		continue;
	err_count:
		r->n_files++; /* so that destroy frees what was unpacked */
		goto err;
	}
	for (unsigned i = 0; i < r->n_files; i++) {
		struct refl_file *f = &r->files[i];

		f->deps = calloc(f->fd->n_dependency + 1, sizeof(*f->deps));
		if (f->deps == NULL) {
			rc = -ENOMEM;
			goto err;
		}
		for (size_t k = 0; k < f->fd->n_dependency; k++) {
			int d = find_file(r, f->fd->dependency[k]);

			if (d < 0)
				goto err; /* not built with --include_imports */
			f->deps[f->n_deps++] = (unsigned)d;
		}
		rc = index_file(r, i);
		if (rc != 0)
			goto err;
		rc = -EINVAL;
	}
	/* An empty set has no arrays (qsort and bsearch must not see NULL). */
	if (r->n_syms > 0)
		qsort(r->syms, r->n_syms, sizeof(*r->syms), sym_cmp);
	if (r->n_services > 0)
		qsort(r->services, r->n_services, sizeof(*r->services), str_cmp);
	return r;
err:
	cp_reflection_destroy(r);
	errno = -rc;
	return NULL;
}

void
cp_reflection_destroy(struct cp_reflection *r)
{
	if (r == NULL)
		return;
	for (unsigned i = 0; i < r->n_files; i++) {
		if (r->files[i].fd != NULL)
			google__protobuf__file_descriptor_proto__free_unpacked(r->files[i].fd,
									       NULL);
		free(r->files[i].deps);
	}
	for (size_t i = 0; i < r->n_syms; i++)
		free(r->syms[i].name);
	for (unsigned i = 0; i < r->n_services; i++)
		free(r->services[i]);
	free(r->services);
	free(r->syms);
	free(r->files);
	free(r);
}

unsigned
cp_reflection_n_services(const struct cp_reflection *r)
{
	return r->n_services;
}

/* ==== Answering ============================================================================= */

static const struct refl_sym *
find_sym(const struct cp_reflection *r, const char *name)
{
	struct refl_sym key = {.name = (char *)name};

	/* A leading dot (".corepipe.v1.Stats", as type references are written) is allowed. */
	if (name[0] == '.')
		key.name++;
	if (r->n_syms == 0)
		return NULL;
	return bsearch(&key, r->syms, r->n_syms, sizeof(*r->syms), sym_cmp);
}

/* The file @p idx, then its transitive dependencies (depth first, each once). */
static void
closure(const struct cp_reflection *r, unsigned idx, bool *seen, unsigned *order, unsigned *n)
{
	if (seen[idx])
		return;
	seen[idx] = true;
	order[(*n)++] = idx;
	for (unsigned k = 0; k < r->files[idx].n_deps; k++)
		closure(r, r->files[idx].deps[k], seen, order, n);
}

int
cp_reflection_answer(const struct cp_reflection *r, const uint8_t *req, size_t len, uint8_t **out,
		     size_t *out_len)
{
	Grpc__Reflection__V1__ServerReflectionRequest *rq;
	Grpc__Reflection__V1__ServerReflectionResponse resp =
	    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
	Grpc__Reflection__V1__FileDescriptorResponse fdr =
	    GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
	Grpc__Reflection__V1__ListServiceResponse lsr =
	    GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
	Grpc__Reflection__V1__ExtensionNumberResponse enr =
	    GRPC__REFLECTION__V1__EXTENSION_NUMBER_RESPONSE__INIT;
	Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
	Grpc__Reflection__V1__ServiceResponse *svc = NULL, **svcp = NULL;
	ProtobufCBinaryData *blobs = NULL;
	unsigned *order = NULL;
	bool *seen = NULL;
	char msg[512];
	int file = -1, rc = 0;

	rq = grpc__reflection__v1__server_reflection_request__unpack(NULL, len, req);
	if (rq == NULL)
		return -EINVAL;
	resp.valid_host = rq->host;
	resp.original_request = rq;
	msg[0] = '\0';

	switch (rq->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		svc = calloc(r->n_services + 1, sizeof(*svc));
		svcp = calloc(r->n_services + 1, sizeof(*svcp));
		if (svc == NULL || svcp == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		for (unsigned i = 0; i < r->n_services; i++) {
			grpc__reflection__v1__service_response__init(&svc[i]);
			svc[i].name = r->services[i];
			svcp[i] = &svc[i];
		}
		lsr.n_service = r->n_services;
		lsr.service = svcp;
		resp.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
		resp.list_services_response = &lsr;
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		file = find_file(r, rq->file_by_filename);
		if (file < 0)
			snprintf(msg, sizeof(msg), "file '%.400s' not found", rq->file_by_filename);
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
		const struct refl_sym *s = find_sym(r, rq->file_containing_symbol);

		if (s != NULL)
			file = (int)s->file;
		else
			snprintf(msg, sizeof(msg), "symbol '%.400s' not found",
				 rq->file_containing_symbol);
		break;
	}
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		snprintf(
		    msg, sizeof(msg), "extension %d of '%.400s' not found (no extensions)",
		    rq->file_containing_extension ? rq->file_containing_extension->extension_number
						  : 0,
		    rq->file_containing_extension && rq->file_containing_extension->containing_type
			? rq->file_containing_extension->containing_type
			: "");
		break;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
		const struct refl_sym *s = find_sym(r, rq->all_extension_numbers_of_type);

		if (s == NULL || !s->message) {
			snprintf(msg, sizeof(msg), "message type '%.400s' not found",
				 rq->all_extension_numbers_of_type);
			break;
		}
		enr.base_type_name = s->name;
		resp.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
		resp.all_extension_numbers_response = &enr;
		break;
	}
	default:
		er.error_code = ST_INVALID_ARGUMENT;
		er.error_message = "empty request: set one of file_by_filename, "
				   "file_containing_symbol, file_containing_extension, "
				   "all_extension_numbers_of_type, list_services";
		resp.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		resp.error_response = &er;
		break;
	}
	if (file >= 0) {
		unsigned n = 0;

		seen = calloc(r->n_files, sizeof(*seen));
		order = calloc(r->n_files, sizeof(*order));
		blobs = calloc(r->n_files, sizeof(*blobs));
		if (seen == NULL || order == NULL || blobs == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		closure(r, (unsigned)file, seen, order, &n);
		for (unsigned i = 0; i < n; i++)
			blobs[i] = r->files[order[i]].bytes;
		fdr.n_file_descriptor_proto = n;
		fdr.file_descriptor_proto = blobs;
		resp.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
		resp.file_descriptor_response = &fdr;
	} else if (msg[0] != '\0') {
		er.error_code = ST_NOT_FOUND;
		er.error_message = msg;
		resp.message_response_case =
		    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
		resp.error_response = &er;
	}
	*out_len = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
	*out = malloc(*out_len ? *out_len : 1);
	if (*out == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	grpc__reflection__v1__server_reflection_response__pack(&resp, *out);
out:
	free(blobs);
	free(order);
	free(seen);
	free(svcp);
	free(svc);
	grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
	return rc;
}

/**
 * @file
 * gRPC server reflection (grpc.reflection.v1 and v1alpha, which are the same on the wire) as a
 * pure function: one ServerReflectionRequest in, one ServerReflectionResponse out, answered
 * from a FileDescriptorSet (the one protoc wrote at build time with --include_imports, embedded
 * in the server as cp_protoset; control/protoset.S).
 *
 * Answers: list_services (every service in the set), file_by_filename and
 * file_containing_symbol (the file, then its transitive dependencies, each a serialized
 * FileDescriptorProto exactly as protoc wrote it), all_extension_numbers_of_type (the set
 * declares no extensions: an empty list for a known message, NOT_FOUND otherwise),
 * file_containing_extension (NOT_FOUND). Symbols are every declaration protobuf names: messages
 * (nested too), fields, oneofs, enums, enum values, extensions, services and methods. Unknown
 * names and an empty request are answered in band with an error_response (NOT_FOUND,
 * INVALID_ARGUMENT), as the protocol specifies; the stream goes on. Every response echoes the
 * request (original_request) and its host (valid_host).
 *
 * The streaming glue (one response per request, in order) is control/rpc_reflection.c.
 *
 * Context: any thread; an index is read-only once created. Ownership: the index borrows the
 * descriptor set's bytes, which must outlive it.
 */
#ifndef COREPIPE_CP_REFLECTION_H
#define COREPIPE_CP_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

struct cp_reflection;

/** The embedded FileDescriptorSet of corepiped's services (control/protoset.S). */
extern const uint8_t cp_protoset[];
extern const uint8_t cp_protoset_end[];

/**
 * Index a serialized FileDescriptorSet.
 * @param set  the set's bytes (borrowed: must outlive the index)
 * @param len  their length
 * @return the index, or NULL with errno EINVAL (not a FileDescriptorSet, a file that does not
 * parse, a duplicate file name, a dependency missing from the set) or ENOMEM.
 * Context: any thread. Ownership: free with cp_reflection_destroy().
 */
struct cp_reflection *cp_reflection_create(const uint8_t *set, size_t len);

/** Free an index (NULL is a no-op). */
void cp_reflection_destroy(struct cp_reflection *r);

/**
 * Answer one serialized ServerReflectionRequest.
 * @param r        the index
 * @param req      the request's bytes
 * @param len      their length
 * @param out      set to the serialized ServerReflectionResponse (malloc'd)
 * @param out_len  set to its length
 * @return 0 (also for in-band errors: unknown symbol, empty request), -EINVAL when @p req is not
 * a ServerReflectionRequest (the caller ends the call INVALID_ARGUMENT), -ENOMEM.
 * Context: any thread. Ownership: the caller frees *out.
 */
int cp_reflection_answer(const struct cp_reflection *r, const uint8_t *req, size_t len,
			 uint8_t **out, size_t *out_len);

/** Number of services the index lists (for logs and tests). */
unsigned cp_reflection_n_services(const struct cp_reflection *r);

#endif

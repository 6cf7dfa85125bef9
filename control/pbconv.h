/**
 * @file
 * Conversions between protobuf-c messages and the dataplane's plain C types.
 *
 * The dataplane never sees protobuf types: specs are converted to struct dp_spec here, and
 * compiled pipelines' specs back to messages for GetPipeline/ListPipelines.
 *
 * Context: control threads. Ownership: as noted per function.
 */
#ifndef COREPIPE_CP_PBCONV_H
#define COREPIPE_CP_PBCONV_H

#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/pipeline.h"

/**
 * Unpack @p len bytes as @p desc, like protobuf_c_message_unpack(), and refuse any string
 * field (at any depth) that holds a NUL byte: protobuf-c hands strings over NUL-terminated, so
 * "passthrough\0zz" would otherwise read as "passthrough" everywhere after. Bytes fields may
 * hold anything.
 *
 * How: the unpack runs with an allocator that records each allocation's size (protobuf-c
 * allocates every string as its wire length + 1), and a walk over the message's descriptor
 * compares each string's strlen with its allocation.
 *
 * @return the message (free with protobuf_c_message_free_unpacked(m, NULL): it is malloc'd as
 * usual), or NULL with @p err: "malformed" (not a valid message) or "FIELD: a NUL byte at
 * offset N" (e.g. "pipeline.nodes[1].params[0].key: ...").
 * Context: any thread.
 */
ProtobufCMessage *cp_pb_unpack(const ProtobufCMessageDescriptor *desc, size_t len,
			       const uint8_t *data, char *err, size_t errlen);

/**
 * Build a struct dp_spec view of @p in. The view borrows @p in's strings; only its arrays are
 * allocated. @return 0 or -ENOMEM. Ownership: free with cp_spec_view_free (not dp_spec_free).
 */
int cp_spec_view(const Corepipe__V1__PipelineSpec *in, struct dp_spec *out);

/** Free the arrays of a view made by cp_spec_view(). */
void cp_spec_view_free(struct dp_spec *v);

/**
 * Build a PipelineSpec message borrowing @p s's strings.
 * @return 0 or -ENOMEM. Ownership: free with cp_pb_spec_free(); @p s must outlive the message.
 */
int cp_pb_spec_from(const struct dp_spec *s, Corepipe__V1__PipelineSpec *out);

/** Free the arrays allocated by cp_pb_spec_from(). */
void cp_pb_spec_free(Corepipe__V1__PipelineSpec *m);

#endif

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

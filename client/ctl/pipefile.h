/**
 * @file
 * Pipeline files for corepipectl (pipelines put, exec/stream --inline): YAML or JSON (libyaml
 * reads both: JSON is YAML, except \uD800-\uDFFF surrogate-pair escapes, which libyaml
 * refuses; write such characters as themselves). Three shapes are accepted:
 *
 *   1. One pipeline, the API's PipelineSpec:   {name: N, nodes: [{type: T, params: {k: v}}]}
 *   2. What `pipelines get --json` prints (PipelineInfo):   {spec: {...}, id: 1, version: 2}
 *   3. The configuration file's schema:   pipelines: {N: [{type: T, params: {k: v}}], ...};
 *      a whole corepipe.yaml works (its other sections are skipped).
 *
 * Nodes have a type and optionally params, whose values may be any scalars (6 and "6" are
 * the same: params are strings in the API). Unknown keys are errors; every error names
 * file:line:column, like the server's config loader.
 *
 * Context: any thread. Ownership: a parsed file owns its specs; free with ctl_pipefile_free().
 */
#ifndef COREPIPE_CTL_PIPEFILE_H
#define COREPIPE_CTL_PIPEFILE_H

#include "corepipe/v1/corepipe.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ctl_pipefile {
	size_t n;
	Corepipe__V1__PipelineSpec **specs; /**< n specs, each malloc'd with its strings */
};

/**
 * Parse a pipeline file held in memory.
 * @param name        the file's name, for error messages
 * @param need_names  every pipeline must have a valid name (put); else names are optional
 * @return 0, or -EINVAL with @p err "name:line:col: message", -ENOMEM.
 */
int ctl_pipefile_parse(const char *name, const uint8_t *text, size_t len, bool need_names,
		       struct ctl_pipefile *pf, char *err, size_t errlen);

/** Free what a parse made (and zero @p pf). */
void ctl_pipefile_free(struct ctl_pipefile *pf);

/** Whether @p s is a valid pipeline name: [A-Za-z0-9_.-]{1,63}. */
bool ctl_pipeline_name_valid(const char *s);

/**
 * Print pipelines in the configuration file's schema (shape 3), which ctl_pipefile_parse()
 * and corepiped's config loader both read back.
 */
void ctl_pipefile_write_yaml(FILE *out, Corepipe__V1__PipelineSpec *const *specs, size_t n);

#endif

/*
 * libFuzzer target: the YAML config loader (libyaml + the schema walk) and compilation of every
 * pipeline a config defines, on arbitrary bytes.
 */
#include "control/config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_config c;
	char err[512];

	cp_config_init(&c);
	if (cp_config_load_buffer(&c, "fuzz.yaml", data, size, err, sizeof(err)) == 0) {
		for (unsigned i = 0; i < c.n_pipelines; i++) {
			struct dp_err e;

			dp_pipeline_unref(
			    dp_pipeline_compile(&c.pipelines[i].spec, c.max_nodes, &e));
		}
	}
	cp_config_free(&c);
	return 0;
}

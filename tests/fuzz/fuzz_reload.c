/*
 * libFuzzer target: a configuration reload with arbitrary file contents, up to the commit
 * (cp_reload_prepare: load with "an empty document is an error", validate, the security rules
 * against a running config with authentication, tokens, /metrics auth and mTLS on, compile
 * every pipeline, and the registry dry run).
 *
 * Oracles: a file that prepare accepts never weakens a security setting unless the file sets
 * that key; the dry run never changes the registry; and nothing leaks (ASan).
 */
#include "control/reload.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char g_live_text[] =
    "auth:\n  enabled: true\n  metrics: true\n  health_open: false\n"
    "  tokens:\n    - { name: ops, sha256: "
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, permission: admin }\n"
    "tls:\n  cert_file: /c.pem\n  key_file: /k.pem\n  client_ca_file: /ca.pem\n"
    "  require_client_cert: true\n"
    "pipelines:\n  p:\n    - type: gain\n      params: { db: '6' }\n";

static struct cp_config g_live;
static struct dp_registry *g_reg;

static void
setup(void)
{
	char err[512];

	cp_config_init(&g_live);
	if (cp_config_load_buffer(&g_live, "live.yaml", g_live_text, strlen(g_live_text), err,
				  sizeof(err)) != 0)
		abort();
	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	g_reg = dp_registry_create();
	if (g_reg == NULL)
		abort();
	cp_log_set_level(CP_LOG_ERROR);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_reload_report *rep = calloc(1, sizeof(*rep));
	struct cp_reload_plan pl;
	const struct cp_config *n = &pl.neu;

	if (g_reg == NULL)
		setup();
	if (rep == NULL)
		return 0;
	if (cp_reload_prepare(&pl, &g_live, "fuzz.yaml", data, size, NULL, NULL, g_reg, rep) == 0) {
		if ((!n->auth.enabled && !(n->explicit_keys & CP_KEY_AUTH_ENABLED)) ||
		    (!n->auth.metrics && !(n->explicit_keys & CP_KEY_AUTH_METRICS)) ||
		    (n->auth.health_open && !(n->explicit_keys & CP_KEY_AUTH_HEALTH_OPEN)) ||
		    (n->tls.cert_file[0] == '\0' && !(n->explicit_keys & CP_KEY_TLS_CERT)) ||
		    (!n->tls.require_client_cert && !(n->explicit_keys & CP_KEY_TLS_CLIENT_CERT)))
			abort(); /* weakened without saying so */
		if (pl.n_compiled != n->n_pipelines)
			abort();
	}
	if (g_reg->count != 0)
		abort(); /* the dry run published something */
	cp_reload_plan_free(&pl);
	free(rep);
	return 0;
}

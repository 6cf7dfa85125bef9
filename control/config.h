/**
 * @file
 * Configuration: built-in defaults, the YAML file, and the command line on top.
 *
 * The file is parsed with libyaml into a document, then walked with declarative tables (one
 * row per key: name, type, offset, bounds, default, live or restart on reload, documentation),
 * nginx style: a new setting is a new row, and the defaults, the environment overrides,
 * printing, the reload report and the reference in docs/configuration.md follow from it. Every
 * error names file:line:column and what is wrong; unknown keys are errors. Loading is
 * all-or-nothing: on error the target config is unchanged.
 *
 * Context: control plane, single-threaded use. Ownership: a struct cp_config owns its strings,
 * arrays and pipeline specs; free with cp_config_free().
 */
#ifndef COREPIPE_CP_CONFIG_H
#define COREPIPE_CP_CONFIG_H

#include "control/access_log.h"
#include "control/auth.h"
#include "control/http_guard.h"
#include "control/log.h"
#include "control/store.h"
#include "dataplane/dataplane.h"
#include "dataplane/pipeline.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Largest config (or token) file read: a config file, not a disk image. */
#define CP_CONFIG_FILE_MAX (16u << 20)

/** Listen-address checks (cp_config_listen_check): what else than host:port is allowed. */
#define CP_LISTEN_EMPTY 1u /**< "" (the listener is off) */
#define CP_LISTEN_UNIX	2u /**< "unix:/path" (served by gRPC's own listener) */

/**
 * Security-relevant keys, recorded in cp_config.explicit_keys when the file or the environment
 * sets them: a reload may weaken a security setting only when its key is set explicitly
 * (cp_config_security_check).
 */
enum cp_config_key {
	CP_KEY_AUTH_ENABLED = 1u << 0,
	CP_KEY_AUTH_TOKENS = 1u << 1, /**< auth.tokens or auth.token_file */
	CP_KEY_AUTH_METRICS = 1u << 2,
	CP_KEY_AUTH_HEALTH_OPEN = 1u << 3,
	CP_KEY_TLS_CERT = 1u << 4,
	CP_KEY_TLS_REQUIRED = 1u << 5,
	CP_KEY_TLS_CLIENT_CERT = 1u << 6,
	CP_KEY_TLS_CLIENT_CA = 1u << 7,
};

/** Loader flags. */
#define CP_CONFIG_NONEMPTY 1u /**< an empty document (or only comments) is an error */

/** Most weakened settings cp_config_security_check() reports. */
#define CP_CONFIG_WEAKEN_MAX 8

/** A pipeline from the file, with the line it starts on (for error messages). */
struct cp_config_pipeline {
	struct dp_spec spec; /**< strings malloc'd, owned by the config */
	int line;
};

/** server.keepalive_*: HTTP/2 keepalive, both directions (gRPC channel arguments). */
struct cp_keepalive_conf {
	uint32_t time_ms;	       /**< server pings an idle connection this often (0: never) */
	uint32_t timeout_ms;	       /**< and closes it when the ping is not acked in time */
	bool permit_without_calls;     /**< pings with no call open allowed (both ways) */
	uint32_t min_ping_interval_ms; /**< clients may not ping more often (else GOAWAY) */
};

struct cp_config {
	/* server */
	char grpc_listen[128];
	char metrics_listen[128];   /**< HTTP /metrics /healthz /readyz; "" disables */
	struct cp_http_limits http; /**< server.metrics_*: that endpoint's limits */
	uint32_t max_message_bytes;
	uint32_t responder_spin_us;    /**< deprecated, ignored (there is no responder thread) */
	unsigned frontends;	       /**< server.frontends: front-end lcores (0: auto) */
	uint32_t inline_max_us;	       /**< run requests estimated up to this inline */
	uint32_t frontend_spin_us;     /**< front end polls this long for handed-over work */
	uint32_t frontend_spin_max_us; /**< ... plus its estimated cost, up to this */
	uint32_t max_response_bytes;   /**< reply bytes one front end holds at once */
	uint32_t max_connections_per_peer; /**< per client address (0: no limit) */
	uint32_t handshake_timeout_ms;	   /**< TLS + HTTP/2 preface/SETTINGS deadline */
	uint32_t shutdown_delay_ms;	   /**< lame duck after SIGTERM */
	char takeover_socket[108];	   /**< server.takeover_socket: hitless restart ("" off) */
	uint32_t max_cancels_per_second;   /**< per connection, then it is closed (0: off) */
	/* dataplane */
	unsigned workers; /**< worker-only lcores; 0: every usable CPU but the front ends' */
	bool workers_set; /**< workers given explicitly (file, environment or flag) */
	char lcores[128]; /**< EAL lcore map; "" derives it from workers */
	struct dp_dataplane_conf dp;
	struct dp_udp_conf udp; /**< dataplane.ports and the port_* tuning keys */
	bool hugepages;		/**< dataplane.hugepages: EAL on hugepages (real NICs) */
	uint32_t memory_mb;	/**< dataplane.memory_mb: EAL memory (-m) */
	char **eal_args;
	unsigned n_eal_args;
	uint32_t max_concurrent_streams;
	uint32_t stream_window; /**< limits.stream_window: ExecuteStream flow-control window */
	uint32_t shutdown_grace_ms;
	uint32_t max_connections;
	uint32_t max_connection_idle_ms;
	uint32_t max_connection_age_ms;
	struct cp_keepalive_conf keepalive;
	/* limits */
	unsigned max_nodes;
	uint32_t max_request_memory_mb; /**< limits.max_request_memory_mb (0: no limit) */
	uint32_t memory_budget_mb;	/**< limits.memory_budget_mb (0: no budget) */
	uint32_t default_timeout_ms;
	uint32_t max_timeout_ms;
	uint32_t shed_high_water_pct;
	uint32_t shed_low_water_pct;
	uint32_t shed_busy_pct;
	uint32_t shed_window_ms;
	bool shed_enabled;     /**< limits.shed_enabled: load shedding on (default) or off */
	uint32_t inflight_cap; /**< limits.max_in_flight: live cap on unary work, 0 = the pool */
	/* auth */
	struct cp_auth auth;	  /**< enabled, health_open and the token table (owned) */
	unsigned n_inline_tokens; /**< auth.tokens from the file (the table's first entries) */
	char token_file[256];	  /**< auth.token_file, merged into auth at load */
	/* tls */
	struct cp_tls_conf tls;
	/* logging */
	enum cp_log_level log_level;
	enum cp_alog_mode access_log; /**< logging.access_log */
	uint32_t access_log_sample;   /**< logging.access_log_sample: one call in N */
	uint32_t access_log_ring;     /**< logging.access_log_ring: records buffered */
	/* registry */
	enum cp_store_kind registry_store;  /**< registry.store (control/store.h) */
	char state_file[CP_STORE_PATH_MAX]; /**< registry.state_file */
	struct cp_store_etcd_conf etcd;	    /**< registry.etcd_* */
	/* pipelines */
	unsigned n_pipelines;
	struct cp_config_pipeline *pipelines;
	/* where it came from ("" for built-in defaults) */
	char path[512];
	uint32_t explicit_keys; /**< CP_KEY_* set by the file or the environment */
};

/** Fill @p c with the built-in defaults (the embedded configuration). */
void cp_config_init(struct cp_config *c);

/**
 * Which file to read: @p flag (--config) if given, else the environment's COREPIPE_CONFIG,
 * else @p installed (the compiled-in $(SYSCONFDIR)/corepipe/corepipe.yaml) if it exists, else
 * ./config/corepipe.yaml if it exists, else none (built-in defaults).
 * @return the path (@p flag, the variable's value or a static string; NULL: none). A path that
 * was named explicitly (flag or variable) is returned even if it does not exist: loading it
 * then fails, rather than silently falling back.
 */
const char *cp_config_locate(const char *flag, const char *(*get)(const char *name),
			     const char *installed);

/**
 * Reject COREPIPE_* variables in @p envp ("NAME=value" strings, NULL-terminated, e.g. environ)
 * that corepiped does not know: a misspelt override must not be silently ignored. Known: every
 * COREPIPE_<SECTION>_<KEY> of a scalar setting, COREPIPE_CONFIG, and the few tool variables
 * listed in config.c.
 * @return 0, or -EINVAL with @p err naming every unknown variable and the closest valid name.
 */
int cp_config_check_env(char *const *envp, char *err, size_t errlen);

/**
 * Load @p path over the current values of @p c (keys absent from the file keep theirs).
 * @return 0, or -ENOENT/-EACCES (cannot read), -EINVAL (invalid: @p err holds
 * "path:line:col: message", one line per error: every schema error of the file is reported,
 * not only the first). On error @p c is unchanged.
 */
int cp_config_load_file(struct cp_config *c, const char *path, char *err, size_t errlen);

/** cp_config_load_file() with CP_CONFIG_* @p flags. */
int cp_config_load_file_ex(struct cp_config *c, const char *path, unsigned flags, char *err,
			   size_t errlen);

/**
 * Same as cp_config_load_file() for YAML text in memory; @p name is used in error messages.
 * Zero bytes change nothing.
 */
int cp_config_load_buffer(struct cp_config *c, const char *name, const void *data, size_t len,
			  char *err, size_t errlen);

/** cp_config_load_buffer() with CP_CONFIG_* @p flags (zero bytes are an empty document). */
int cp_config_load_buffer_ex(struct cp_config *c, const char *name, const void *data, size_t len,
			     unsigned flags, char *err, size_t errlen);

/**
 * Check a listen address: "" (only with CP_LISTEN_EMPTY), "unix:/path" (only with
 * CP_LISTEN_UNIX), "host:port" or "[v6]:port" with a decimal port in [0, 65535] (0 picks a
 * free port). Used by the config loader (file and environment) and for the command line
 * (cp_config_validate); the listener may call it too.
 * @return 0, or -EINVAL with @p msg saying what is wrong.
 * Context: any.
 */
int cp_config_listen_check(const char *addr, unsigned flags, char *msg, size_t n);

/**
 * Check what the command line may have changed after loading: the listen addresses. Call it
 * after applying the flags (corepiped does, at start and on every reload).
 * @return 0, or -EINVAL with @p err "server.grpc_listen: 'x': port ... out of range".
 */
int cp_config_validate(const struct cp_config *c, char *err, size_t errlen);

/**
 * May @p neu replace @p live as far as security goes? A change that weakens a security setting
 * (authentication off, every token dropped, /metrics or health opened, TLS off, plaintext
 * allowed, client certificates no longer required) is allowed only when @p neu's file or
 * environment sets that key explicitly (explicit_keys): an empty, truncated or partial file
 * never weakens security by falling back to a default.
 * @param weakened   filled with up to CP_CONFIG_WEAKEN_MAX descriptions of the (explicit)
 *                   weakenings, for a warning each (may be NULL)
 * @return 0, or -EPERM with @p err naming the setting and how to change it on purpose.
 * Context: any; pure.
 */
int cp_config_security_check(const struct cp_config *live, const struct cp_config *neu,
			     const char **weakened, unsigned *n_weakened, char *err, size_t errlen);

/**
 * Apply environment overrides: every scalar key as COREPIPE_<SECTION>_<KEY> (upper case, e.g.
 * COREPIPE_SERVER_GRPC_LISTEN, COREPIPE_LIMITS_MAX_NODES), parsed and bounded as in the file.
 * @p get looks a variable up (getenv in corepiped). Lists (dataplane.eal_args) and pipelines
 * come from the file only.
 * @return 0, or -EINVAL with @p err "environment COREPIPE_X: message"; @p c is unchanged then.
 */
int cp_config_apply_env(struct cp_config *c, const char *(*get)(const char *name), char *err,
			size_t errlen);

/**
 * Print @p c as YAML (the file's schema), for --print-config. The output loads back to the
 * same configuration: strings are quoted and escaped, token digests are printed (they are
 * digests, not tokens; a token_file's entries stay in that file).
 */
void cp_config_print(FILE *out, const struct cp_config *c);

/**
 * Print the settings reference (docs/configuration.md's key table, `make docs`) as Markdown:
 * one row per setting with its type and bounds, its built-in default, whether a reload applies
 * it live, and its meaning. Context: any.
 */
void cp_config_print_reference(FILE *out);

/** Called by cp_config_diff() for each setting that differs; @p key is "section.name". */
typedef void (*cp_config_diff_fn)(const char *key, bool live, void *arg);

/**
 * Compare two configurations setting by setting (every row of the key table, in table order;
 * lists and the token table included; pipelines are not settings) and call @p fn (may be NULL)
 * for each that differs, with whether a reload applies it live or it needs a restart.
 * @return the number of settings that differ. Context: any; pure.
 */
unsigned cp_config_diff(const struct cp_config *a, const struct cp_config *b, cp_config_diff_fn fn,
			void *arg);

/**
 * Copy the live scalar settings (the rows marked live that are not lists) from @p src into
 * @p dst: what a reload changes in the running configuration. The token table (auth.tokens)
 * is a list and is moved by the caller. Context: any.
 */
void cp_config_copy_live(struct cp_config *dst, const struct cp_config *src);

/** One setting, as cp_config_key_at() describes it (for tests and tools). */
struct cp_config_setting {
	char name[64]; /**< "section.name" */
	bool live;     /**< a reload applies it at once (else it needs a restart) */
	bool list;     /**< a list (file only); else a scalar member at off, size bytes */
	size_t off, size;
};

/** Describe the @p i-th setting of the table. @return 0, or -ENOENT past the last. */
int cp_config_key_at(unsigned i, struct cp_config_setting *k);

/** Free what @p c owns and reset it to zero. */
void cp_config_free(struct cp_config *c);

#endif

/*
 * YAML configuration loader (libyaml document API + declarative key tables).
 *
 * Adding a setting: add a field to struct cp_config, a row to its section's table, a default in
 * cp_config_init(), and a line in docs/configuration.md. Types are parsed by one function each;
 * bounds live in the rows.
 */
#include "control/config.h"

#include "control/file.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

enum ftype {
	F_STR,	    /* char[size] */
	F_U32,	    /* uint32_t / unsigned, [min, max] */
	F_POW2,	    /* uint32_t, power of two in [min, max] */
	F_IDLE,	    /* enum dp_idle_policy */
	F_LOGLEVEL, /* enum cp_log_level */
	F_STRLIST,  /* eal_args */
	F_BOOL,	    /* bool: true/false */
	F_TOKENS,   /* auth.tokens: list of {name, sha256, permission} */
	F_POOLS,    /* dataplane.pools: list of {size, count} */
	F_PORTS,    /* dataplane.ports: list of {name, device, address, udp_port, ...} */
	F_LISTEN,   /* char[size]: a listen address (cp_config_listen_check); min = CP_LISTEN_* */
	F_ALOG,	    /* enum cp_alog_mode */
	F_STORE,    /* enum cp_store_kind */
};

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	size_t size;
	uint64_t min, max;
	uint32_t key; /* CP_KEY_* bit recorded in explicit_keys when the file or env sets it */
};

#define CFG(f) offsetof(struct cp_config, f), sizeof(((struct cp_config *)0)->f)

static const struct field server_fields[] = {
    {"grpc_listen", F_LISTEN, CFG(grpc_listen), CP_LISTEN_UNIX, 0, 0},
    {"metrics_listen", F_LISTEN, CFG(metrics_listen), CP_LISTEN_EMPTY, 0, 0},
    {"metrics_max_connections", F_U32, CFG(http.max_connections), 1, CP_HTTP_CONN_MAX, 0},
    {"metrics_max_connections_per_peer", F_U32, CFG(http.max_per_peer), 1, CP_HTTP_CONN_MAX, 0},
    {"metrics_header_timeout_ms", F_U32, CFG(http.header_timeout_ms), 100, 600000, 0},
    {"metrics_request_timeout_ms", F_U32, CFG(http.request_timeout_ms), 100, 3600000, 0},
    {"max_message_bytes", F_U32, CFG(max_message_bytes), 1024, 64u << 20, 0},
    {"responder_spin_us", F_U32, CFG(responder_spin_us), 0, 1000000, 0},
    {"frontends", F_U32, CFG(frontends), 0, DP_FRONTENDS_MAX, 0},
    {"inline_max_us", F_U32, CFG(inline_max_us), 0, 1000000, 0},
    {"frontend_spin_us", F_U32, CFG(frontend_spin_us), 0, 1000000, 0},
    {"max_response_bytes", F_U32, CFG(max_response_bytes), 1u << 20, 4095u << 20, 0},
    {"max_connections_per_peer", F_U32, CFG(max_connections_per_peer), 0, 1000000, 0},
    {"handshake_timeout_ms", F_U32, CFG(handshake_timeout_ms), 100, 600000, 0},
    {"shutdown_delay_ms", F_U32, CFG(shutdown_delay_ms), 0, 600000, 0},
    {"takeover_socket", F_STR, CFG(takeover_socket), 0, 0, 0},
    {"max_cancels_per_second", F_U32, CFG(max_cancels_per_second), 0, 10000000, 0},
    {"max_concurrent_streams", F_U32, CFG(max_concurrent_streams), 1, 1000000, 0},
    {"shutdown_grace_ms", F_U32, CFG(shutdown_grace_ms), 0, 3600000, 0},
    {"max_connections", F_U32, CFG(max_connections), 1, 1000000, 0},
    {"max_connection_idle_ms", F_U32, CFG(max_connection_idle_ms), 0, 2000000000, 0},
    {"max_connection_age_ms", F_U32, CFG(max_connection_age_ms), 0, 2000000000, 0},
    {"keepalive_time_ms", F_U32, CFG(keepalive.time_ms), 0, 2000000000, 0},
    {"keepalive_timeout_ms", F_U32, CFG(keepalive.timeout_ms), 1000, 600000, 0},
    {"keepalive_permit_without_calls", F_BOOL, CFG(keepalive.permit_without_calls), 0, 0, 0},
    {"keepalive_min_ping_interval_ms", F_U32, CFG(keepalive.min_ping_interval_ms), 0, 2000000000,
     0},
    {.name = NULL},
};

static const struct field dataplane_fields[] = {
    {"workers", F_U32, CFG(workers), 0, DP_WORKERS_MAX, 0},
    {"lcores", F_STR, CFG(lcores), 0, 0, 0},
    {"idle_policy", F_IDLE, CFG(dp.worker.idle), 0, 0, 0},
    {"spin_us", F_U32, CFG(dp.worker.spin_us), 0, 1000000, 0},
    {"sleep_max_us", F_U32, CFG(dp.worker.sleep_max_us), 10, 10000000, 0},
    {"ring_size", F_POW2, CFG(dp.worker.ring_size), 64, 65536, 0},
    {"quantum_us", F_U32, CFG(dp.worker.quantum_us), 0, 100000, 0},
    {"lane_share", F_U32, CFG(dp.worker.lane_share), 1, 64, 0},
    {"max_in_flight", F_U32, CFG(dp.max_in_flight), 16, 1u << 20, 0},
    {"max_streams_per_worker", F_U32, CFG(dp.max_streams_per_worker), 1, 65536, 0},
    {"eal_args", F_STRLIST, CFG(eal_args), 0, 0, 0},
    {"pools", F_POOLS, 0, 0, 0, 0, 0},
    {"hugepages", F_BOOL, CFG(hugepages), 0, 0, 0},
    {"memory_mb", F_U32, CFG(memory_mb), 256, 1u << 20, 0},
    {"ports", F_PORTS, 0, 0, 0, 0, 0},
    {"port_ring_size", F_POW2, CFG(udp.ring_size), 64, 65536, 0},
    {"port_tx_drain_us", F_U32, CFG(udp.tx_drain_us), 1, 100000, 0},
    {"port_idle_poll_us", F_U32, CFG(udp.idle_poll_us), 10, 1000000, 0},
    {.name = NULL},
};

static const struct field limits_fields[] = {
    {"max_nodes", F_U32, CFG(max_nodes), 1, DP_NODES_HARD_MAX, 0},
    {"default_timeout_ms", F_U32, CFG(default_timeout_ms), 1, 86400000, 0},
    {"max_timeout_ms", F_U32, CFG(max_timeout_ms), 1, 86400000, 0},
    {"shed_high_water_pct", F_U32, CFG(shed_high_water_pct), 1, 100, 0},
    {"shed_low_water_pct", F_U32, CFG(shed_low_water_pct), 0, 99, 0},
    {"shed_busy_pct", F_U32, CFG(shed_busy_pct), 1, 101, 0},
    {"shed_window_ms", F_U32, CFG(shed_window_ms), 0, 600000, 0},
    {"stream_window", F_U32, CFG(stream_window), 1, 256, 0},
    {"max_in_flight", F_U32, CFG(inflight_cap), 0, 1u << 20, 0},
    {"max_request_memory_mb", F_U32, CFG(max_request_memory_mb), 0, 1u << 20, 0},
    {"memory_budget_mb", F_U32, CFG(memory_budget_mb), 0, 1u << 24, 0},
    {"shed_enabled", F_BOOL, CFG(shed_enabled), 0, 0, 0},
    {.name = NULL},
};

static const struct field auth_fields[] = {
    {"enabled", F_BOOL, CFG(auth.enabled), 0, 0, CP_KEY_AUTH_ENABLED},
    {"health_open", F_BOOL, CFG(auth.health_open), 0, 0, CP_KEY_AUTH_HEALTH_OPEN},
    {"metrics", F_BOOL, CFG(auth.metrics), 0, 0, CP_KEY_AUTH_METRICS},
    {"token_file", F_STR, CFG(token_file), 0, 0, CP_KEY_AUTH_TOKENS},
    {"tokens", F_TOKENS, 0, 0, 0, 0, CP_KEY_AUTH_TOKENS},
    {"high_priority_tokens", F_STR, CFG(auth.high_priority), 0, 0, 0},
    {.name = NULL},
};

static const struct field tls_fields[] = {
    {"cert_file", F_STR, CFG(tls.cert_file), 0, 0, CP_KEY_TLS_CERT},
    {"key_file", F_STR, CFG(tls.key_file), 0, 0, 0},
    {"client_ca_file", F_STR, CFG(tls.client_ca_file), 0, 0, CP_KEY_TLS_CLIENT_CA},
    {"require_client_cert", F_BOOL, CFG(tls.require_client_cert), 0, 0, CP_KEY_TLS_CLIENT_CERT},
    {"required", F_BOOL, CFG(tls.required), 0, 0, CP_KEY_TLS_REQUIRED},
    {"plaintext_listen", F_LISTEN, CFG(tls.plaintext_listen), CP_LISTEN_EMPTY, 0, 0},
    {.name = NULL},
};

static const struct field logging_fields[] = {
    {"level", F_LOGLEVEL, CFG(log_level), 0, 0, 0},
    {"access_log", F_ALOG, CFG(access_log), 0, 0, 0},
    {"access_log_sample", F_U32, CFG(access_log_sample), 1, 1000000, 0},
    {"access_log_ring", F_POW2, CFG(access_log_ring), 64, 1u << 20, 0},
    {.name = NULL},
};

static const struct field registry_fields[] = {
    {"store", F_STORE, CFG(registry_store), 0, 0, 0},
    {"state_file", F_STR, CFG(state_file), 0, 0, 0},
    {"etcd_endpoint", F_STR, CFG(etcd_endpoint), 0, 0, 0},
    {"etcd_prefix", F_STR, CFG(etcd_prefix), 0, 0, 0},
    {.name = NULL},
};

struct section {
	const char *name;
	const struct field *fields; /* NULL: handled specially (pipelines) */
};

static const struct section sections[] = {
    {"server", server_fields},	   {"dataplane", dataplane_fields},
    {"limits", limits_fields},	   {"auth", auth_fields},
    {"tls", tls_fields},	   {"logging", logging_fields},
    {"registry", registry_fields}, {"pipelines", NULL},
};

void
cp_config_init(struct cp_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->grpc_listen, sizeof(c->grpc_listen), "127.0.0.1:50051");
	snprintf(c->metrics_listen, sizeof(c->metrics_listen), "127.0.0.1:29051");
	cp_http_limits_default(&c->http);
	c->max_message_bytes = 4u << 20;
	c->responder_spin_us = 0;
	c->workers = 0;
	dp_dataplane_conf_default(&c->dp);
	dp_udp_conf_default(&c->udp);
	c->memory_mb = 512;
	c->max_nodes = DP_NODES_DEFAULT_MAX;
	c->max_concurrent_streams = 256;
	c->stream_window = 8;
	c->shutdown_grace_ms = 30000;
	c->frontends = 0;
	c->inline_max_us = 20;
	c->frontend_spin_us = 200;
	c->max_response_bytes = 256u << 20;
	c->max_connections_per_peer = 0;
	c->handshake_timeout_ms = 10000;
	c->shutdown_delay_ms = 0;
	c->max_cancels_per_second = 1000;
	c->max_connections = 2048;
	c->max_connection_idle_ms = 600000; /* 10 min */
	c->max_connection_age_ms = 3600000; /* 1 h */
	c->keepalive.time_ms = 60000;
	c->keepalive.timeout_ms = 20000;
	c->keepalive.permit_without_calls = false;
	c->keepalive.min_ping_interval_ms = 10000;
	c->default_timeout_ms = 30000;
	c->max_timeout_ms = 300000;
	c->shed_high_water_pct = 80;
	c->shed_low_water_pct = 20;
	c->shed_busy_pct = 90;
	c->shed_window_ms = 5000;
	c->shed_enabled = true;
	c->log_level = CP_LOG_INFO;
	c->access_log = CP_ALOG_OFF;
	c->access_log_sample = 100;
	c->access_log_ring = 4096;
	snprintf(c->etcd_endpoint, sizeof(c->etcd_endpoint), "127.0.0.1:2379");
	snprintf(c->etcd_prefix, sizeof(c->etcd_prefix), "/corepipe/pipelines/");
	c->auth.health_open = true;
	c->tls.required = true;
}

static void
free_pipelines(struct cp_config_pipeline *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct dp_spec *s = &p[i].spec;

		for (unsigned j = 0; j < s->n_nodes; j++) {
			for (unsigned k = 0; k < s->nodes[j].n_params; k++) {
				free(s->nodes[j].params[k].key);
				free(s->nodes[j].params[k].value);
			}
			free(s->nodes[j].params);
			free(s->nodes[j].type);
		}
		free(s->nodes);
		free(s->name);
	}
	free(p);
}

static void
free_strlist(char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
cp_config_free(struct cp_config *c)
{
	free_pipelines(c->pipelines, c->n_pipelines);
	free_strlist(c->eal_args, c->n_eal_args);
	cp_auth_free(&c->auth);
	memset(c, 0, sizeof(*c));
}

/* ==== Loading =============================================================================== */

struct loader {
	const char *path;
	yaml_document_t doc;
	char *err;
	size_t errlen;
	struct cp_config *c;
	bool have_eal, have_pipelines, have_tokens, have_pools, have_ports;
	struct dp_pool_conf pools; /* dataplane.pools of this file */
	struct dp_udp_conf ports;  /* dataplane.ports of this file (n_ports, ports[]) */
	struct cp_auth tokens;	   /* auth.tokens of this file */
	unsigned n_err;		   /* errors reported so far */
	unsigned n_err_cut;	   /* errors that did not fit in err */
};

/* Room kept at the end of err for the "(N more errors)" line. */
#define ERR_TAIL 32

/*
 * Report one error: a line "path:line:col: message" (or "path: message" without a node) added
 * to err, which collects every error of a load. Callers go on with the next key, list item or
 * section, so one run names them all. @return -EINVAL.
 */
static int __attribute__((format(printf, 3, 0)))
vreport(struct loader *l, const yaml_node_t *n, const char *fmt, va_list ap)
{
	char msg[384], line[512];
	size_t off = l->n_err ? strlen(l->err) : 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n != NULL)
		snprintf(line, sizeof(line), "%s:%zu:%zu: %s", l->path, n->start_mark.line + 1,
			 n->start_mark.column + 1, msg);
	else
		snprintf(line, sizeof(line), "%s: %s", l->path, msg);
	if (l->n_err == 0 && l->errlen > 0)
		snprintf(l->err, l->errlen, "%s", line); /* the first always, even cut */
	else if (off + 1 + strlen(line) + ERR_TAIL < l->errlen)
		snprintf(l->err + off, l->errlen - off, "\n%s", line);
	else
		l->n_err_cut++;
	l->n_err++;
	return -EINVAL;
}

static int __attribute__((format(printf, 3, 4)))
fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(l, n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An error about the file as a whole (cross-key checks): "path: message". */
static int __attribute__((format(printf, 2, 3))) fail_file(struct loader *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(l, NULL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *
scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static const char *
node_kind(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE    ? "a mapping"
	       : n->type == YAML_SEQUENCE_NODE ? "a list"
					       : "a scalar";
}

/* Parse scalar text @p s for field @p f into @p c. @return 0 or -EINVAL with @p msg. */
static int
parse_value(const struct field *f, const char *s, struct cp_config *c, char *msg, size_t n)
{
	char *dst = (char *)c + f->off;

	switch (f->type) {
	case F_STR:
		if (strlen(s) >= f->size)
			return snprintf(msg, n, "longer than %zu characters", f->size - 1), -EINVAL;
		memcpy(dst, s, strlen(s) + 1);
		return 0;
	case F_LISTEN:
		if (strlen(s) >= f->size)
			return snprintf(msg, n, "longer than %zu characters", f->size - 1), -EINVAL;
		if (cp_config_listen_check(s, (unsigned)f->min, msg, n) != 0)
			return -EINVAL;
		memcpy(dst, s, strlen(s) + 1);
		return 0;
	case F_U32:
	case F_POW2: {
		char *end;
		unsigned long long x;

		errno = 0;
		x = strtoull(s, &end, 0);
		if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0)
			return snprintf(msg, n, "expected a non-negative integer, got '%s'", s),
			       -EINVAL;
		if (x < f->min || x > f->max)
			return snprintf(msg, n, "%llu out of range [%llu, %llu]", x,
					(unsigned long long)f->min, (unsigned long long)f->max),
			       -EINVAL;
		if (f->type == F_POW2 && (x & (x - 1)) != 0)
			return snprintf(msg, n, "%llu is not a power of two", x), -EINVAL;
		*(uint32_t *)dst = (uint32_t)x;
		return 0;
	}
	case F_IDLE: {
		enum dp_idle_policy p;

		if (dp_idle_policy_parse(s, &p) != 0)
			return snprintf(msg, n, "expected spin, adaptive or sleep, got '%s'", s),
			       -EINVAL;
		*(enum dp_idle_policy *)dst = p;
		return 0;
	}
	case F_LOGLEVEL: {
		enum cp_log_level lv;

		if (cp_log_level_parse(s, &lv) != 0)
			return snprintf(msg, n, "expected debug, info, warn or error, got '%s'", s),
			       -EINVAL;
		*(enum cp_log_level *)dst = lv;
		return 0;
	}
	case F_ALOG: {
		enum cp_alog_mode m;

		if (cp_alog_mode_parse(s, &m) != 0)
			return snprintf(msg, n, "expected off, all, errors or sampled, got '%s'",
					s),
			       -EINVAL;
		*(enum cp_alog_mode *)dst = m;
		return 0;
	}
	case F_STORE: {
		enum cp_store_kind k;

		if (cp_store_kind_parse(s, &k) != 0)
			return snprintf(msg, n, "expected memory, file or etcd, got '%s'", s),
			       -EINVAL;
		*(enum cp_store_kind *)dst = k;
		return 0;
	}
	case F_BOOL:
		if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
			*(bool *)dst = true;
		else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
			*(bool *)dst = false;
		else
			return snprintf(msg, n, "expected true or false, got '%s'", s), -EINVAL;
		return 0;
	default:
		return snprintf(msg, n, "internal: bad field type"), -EINVAL;
	}
}

/* One auth.tokens entry. The digest is never echoed. */
static int
parse_token(struct loader *l, const yaml_node_t *e)
{
	const char *name = NULL, *hex = NULL, *perm = NULL;
	char msg[256];

	{
		if (e->type != YAML_MAPPING_NODE)
			return fail(l, e,
				    "auth.tokens: each token is a mapping {name, sha256, "
				    "permission}");
		for (yaml_node_pair_t *p = e->data.mapping.pairs.start;
		     p < e->data.mapping.pairs.top; p++) {
			const char *ks = scalar(yaml_document_get_node(&l->doc, p->key));
			yaml_node_t *pv = yaml_document_get_node(&l->doc, p->value);

			if (ks == NULL || scalar(pv) == NULL)
				return fail(l, pv, "auth.tokens: keys and values must be scalars");
			if (strcmp(ks, "name") == 0)
				name = scalar(pv);
			else if (strcmp(ks, "sha256") == 0)
				hex = scalar(pv);
			else if (strcmp(ks, "permission") == 0)
				perm = scalar(pv);
			else
				return fail(l, pv,
					    "auth.tokens: unknown key '%s' (expected name, sha256, "
					    "permission)",
					    ks);
		}
		if (cp_auth_add(&l->tokens, name, hex, perm, msg, sizeof(msg)) != 0)
			return fail(l, e, "auth.tokens: %s", msg);
	}
	return 0;
}

/* auth.tokens: a list of {name, sha256, permission}; every bad entry is reported. */
static int
parse_tokens(struct loader *l, const yaml_node_t *v)
{
	int rc = 0;

	if (v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, "auth.tokens: expected a list of {name, sha256, permission}");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++)
		if (parse_token(l, yaml_document_get_node(&l->doc, *it)) != 0)
			rc = -EINVAL;
	l->have_tokens = rc == 0;
	return rc;
}

/* dataplane.pools: a list of {size, count}, ascending sizes. */
static int
parse_pools(struct loader *l, const yaml_node_t *v)
{
	struct dp_pool_conf pc = {0};
	uint64_t total = 0;
	int bad = 0;

	if (v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, "dataplane.pools: expected a list of {size, count}");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = yaml_document_get_node(&l->doc, *it);
		unsigned long long size = 0, count = 0;
		int rc = 0;

		if (e->type != YAML_MAPPING_NODE) {
			bad = fail(l, e, "dataplane.pools: each class is a mapping {size, count}");
			continue;
		}
		if (pc.n_classes == DP_POOL_MAX_CLASSES)
			return fail(l, e, "dataplane.pools: at most %d classes",
				    DP_POOL_MAX_CLASSES);
		for (yaml_node_pair_t *p = e->data.mapping.pairs.start;
		     p < e->data.mapping.pairs.top; p++) {
			const char *ks = scalar(yaml_document_get_node(&l->doc, p->key));
			yaml_node_t *pv = yaml_document_get_node(&l->doc, p->value);
			const char *vs = scalar(pv);
			char *end;
			unsigned long long x;

			if (ks == NULL || vs == NULL) {
				rc =
				    fail(l, pv, "dataplane.pools: keys and values must be scalars");
				continue;
			}
			errno = 0;
			x = strtoull(vs, &end, 0);
			if (*vs == '\0' || *vs == '-' || *end != '\0' || errno != 0)
				rc = fail(l, pv,
					  "dataplane.pools: %s: expected an integer, got '%s'", ks,
					  vs);
			else if (strcmp(ks, "size") == 0)
				size = x;
			else if (strcmp(ks, "count") == 0)
				count = x;
			else
				rc = fail(
				    l, pv,
				    "dataplane.pools: unknown key '%s' (expected size, count)", ks);
		}
		if (rc != 0) {
			bad = rc;
			continue;
		}
		if (size < 64 || size > (64ull << 20))
			rc = fail(l, e, "dataplane.pools: size %llu out of range [64, 67108864]",
				  size);
		if (count < 1 || count > 1000000)
			rc = fail(l, e, "dataplane.pools: count %llu out of range [1, 1000000]",
				  count);
		if (pc.n_classes > 0 && size <= pc.classes[pc.n_classes - 1].size)
			rc = fail(l, e, "dataplane.pools: sizes must ascend (%llu after %u)", size,
				  pc.classes[pc.n_classes - 1].size);
		if (rc != 0) {
			bad = rc;
			continue;
		}
		total += size * count;
		pc.classes[pc.n_classes].size = (uint32_t)size;
		pc.classes[pc.n_classes].count = (uint32_t)count;
		pc.n_classes++;
	}
	if (bad != 0)
		return bad;
	if (pc.n_classes == 0)
		return fail(l, v, "dataplane.pools: at least one class");
	/* The EAL gets 512 MiB (-m 512); leave room for rings, descriptors and metrics. */
	if (total > (384ull << 20))
		return fail(l, v,
			    "dataplane.pools: %llu MiB of buffers, more than the 384 MiB the "
			    "dataplane can give them",
			    (unsigned long long)(total >> 20));
	l->pools = pc;
	l->have_pools = true;
	return 0;
}

/* One dataplane.ports entry: {name, device, address, udp_port, mtu, queues, rx_desc, tx_desc}. */
static int
parse_port(struct loader *l, const yaml_node_t *e, unsigned idx, struct dp_port_conf *pc)
{
	bool have_addr = false;

	if (e->type != YAML_MAPPING_NODE)
		return fail(l, e,
			    "dataplane.ports[%u]: expected a mapping {name, device, address, "
			    "udp_port}",
			    idx);
	memset(pc, 0, sizeof(*pc));
	for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top;
	     p++) {
		const char *ks = scalar(yaml_document_get_node(&l->doc, p->key));
		yaml_node_t *pv = yaml_document_get_node(&l->doc, p->value);
		const char *vs = scalar(pv);
		unsigned long long x = 0;
		char *end;

		if (ks == NULL || vs == NULL)
			return fail(l, pv, "dataplane.ports[%u]: keys and values must be scalars",
				    idx);
		if (strcmp(ks, "name") == 0) {
			if (!dp_pipeline_name_valid(vs) || strlen(vs) >= sizeof(pc->name))
				return fail(
				    l, pv,
				    "dataplane.ports[%u].name: expected [A-Za-z0-9_.-]{1,31}, "
				    "got '%s'",
				    idx, vs);
			snprintf(pc->name, sizeof(pc->name), "%s", vs);
			continue;
		}
		if (strcmp(ks, "device") == 0) {
			if (vs[0] == '\0' || strlen(vs) >= sizeof(pc->devargs) || vs[0] == ',')
				return fail(l, pv,
					    "dataplane.ports[%u].device: expected DPDK devargs "
					    "(net_tap0,iface=cp0 or a PCI address), got '%s'",
					    idx, vs);
			snprintf(pc->devargs, sizeof(pc->devargs), "%s", vs);
			continue;
		}
		if (strcmp(ks, "address") == 0) {
			if (dp_ipv4_parse(vs, &pc->ip, &pc->prefix_len) != 0 || pc->ip == 0 ||
			    pc->prefix_len == 0)
				return fail(l, pv,
					    "dataplane.ports[%u].address: expected an IPv4 address "
					    "with prefix (10.0.0.1/24), got '%s'",
					    idx, vs);
			have_addr = true;
			continue;
		}
		if (strcmp(ks, "allow_from") == 0) {
			if (dp_ipv4_parse(vs, &pc->allow_ip, &pc->allow_prefix) != 0)
				return fail(l, pv,
					    "dataplane.ports[%u].allow_from: expected a network "
					    "(10.0.0.0/8, 0.0.0.0/0 for any), got '%s'",
					    idx, vs);
			pc->allow_set = true;
			continue;
		}
		errno = 0;
		x = strtoull(vs, &end, 10);
		if (*vs == '\0' || *vs == '-' || *end != '\0' || errno != 0)
			return fail(l, pv, "dataplane.ports[%u].%s: expected an integer, got '%s'",
				    idx, ks, vs);
		if (strcmp(ks, "udp_port") == 0) {
			if (x < 1 || x > 65535)
				return fail(l, pv,
					    "dataplane.ports[%u].udp_port: %llu out of range "
					    "[1, 65535]",
					    idx, x);
			pc->udp_port = (uint16_t)x;
		} else if (strcmp(ks, "mtu") == 0) {
			if (x < 576 || x > 9600)
				return fail(l, pv,
					    "dataplane.ports[%u].mtu: %llu out of range "
					    "[576, 9600]",
					    idx, x);
			pc->mtu = (uint16_t)x;
		} else if (strcmp(ks, "queues") == 0) {
			if (x > DP_WORKERS_MAX)
				return fail(l, pv,
					    "dataplane.ports[%u].queues: %llu out of range "
					    "[0, %d] (0: one per worker)",
					    idx, x, DP_WORKERS_MAX);
			pc->queues = (uint16_t)x;
		} else if (strcmp(ks, "rx_desc") == 0 || strcmp(ks, "tx_desc") == 0) {
			if (x < 64 || x > 16384)
				return fail(l, pv,
					    "dataplane.ports[%u].%s: %llu out of range "
					    "[64, 16384]",
					    idx, ks, x);
			if (ks[0] == 'r')
				pc->rx_desc = (uint16_t)x;
			else
				pc->tx_desc = (uint16_t)x;
		} else {
			return fail(l, pv,
				    "dataplane.ports[%u]: unknown key '%s' (expected name, device, "
				    "address, udp_port, mtu, queues, rx_desc, tx_desc, allow_from)",
				    idx, ks);
		}
	}
	if (pc->name[0] == '\0' || pc->devargs[0] == '\0' || !have_addr || pc->udp_port == 0)
		return fail(l, e,
			    "dataplane.ports[%u]: name, device, address and udp_port are required",
			    idx);
	return 0;
}

static int
parse_ports(struct loader *l, const yaml_node_t *v)
{
	struct dp_udp_conf *u = &l->ports;
	unsigned idx = 0;
	int bad = 0;

	u->n_ports = 0;
	if (v->type == YAML_SCALAR_NODE && scalar(v)[0] == '\0')
		goto done; /* "ports:" with nothing */
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(l, v, "dataplane.ports: expected a list of ports");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = yaml_document_get_node(&l->doc, *it);
		struct dp_port_conf *pc = &u->ports[u->n_ports];
		int rc;

		if (u->n_ports == DP_PORTS_MAX)
			return fail(l, e, "dataplane.ports: at most %d ports", DP_PORTS_MAX);
		rc = parse_port(l, e, idx++, pc);
		for (unsigned j = 0; rc == 0 && j < u->n_ports; j++) {
			if (strcmp(u->ports[j].name, pc->name) == 0)
				rc = fail(l, e, "dataplane.ports: duplicate name '%s'", pc->name);
			else if (strcmp(u->ports[j].devargs, pc->devargs) == 0)
				rc = fail(l, e, "dataplane.ports: device '%s' used twice",
					  pc->devargs);
		}
		if (rc != 0) {
			bad = rc;
			continue;
		}
		u->n_ports++;
	}
	if (bad != 0)
		return bad;
done:
	l->have_ports = true;
	return 0;
}

static int
parse_field(struct loader *l, const struct field *f, const yaml_node_t *v, const char *sect)
{
	const char *s = scalar(v);

	if (f->type == F_STRLIST) {
		char **list;
		unsigned n = 0;

		if (v->type != YAML_SEQUENCE_NODE)
			return fail(l, v, "%s.%s: expected a list of strings, got %s", sect,
				    f->name, node_kind(v));
		list =
		    calloc((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) + 1,
			   sizeof(*list));
		if (list == NULL)
			return -ENOMEM;
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(&l->doc, *it);

			if (scalar(e) == NULL) {
				free_strlist(list, n);
				return fail(l, e, "%s.%s: list items must be strings", sect,
					    f->name);
			}
			list[n++] = strdup(scalar(e));
		}
		if (l->have_eal) /* a duplicate key is rejected earlier; stay safe anyway */
			free_strlist(l->c->eal_args, l->c->n_eal_args);
		l->c->eal_args = list;
		l->c->n_eal_args = n;
		l->have_eal = true;
		return 0;
	}
	if (f->type == F_TOKENS)
		return parse_tokens(l, v);
	if (f->type == F_POOLS)
		return parse_pools(l, v);
	if (f->type == F_PORTS)
		return parse_ports(l, v);
	if (s == NULL)
		return fail(l, v, "%s.%s: expected a scalar, got %s", sect, f->name, node_kind(v));
	{
		char msg[256];

		if (parse_value(f, s, l->c, msg, sizeof(msg)) != 0)
			return fail(l, v, "%s.%s: %s", sect, f->name, msg);
	}
	return 0;
}

static int
parse_section(struct loader *l, const struct section *sec, const yaml_node_t *m)
{
	uint64_t seen = 0;
	int bad = 0;

	if (m->type != YAML_MAPPING_NODE)
		return fail(l, m, "%s: expected a mapping, got %s", sec->name, node_kind(m));
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
		const char *ks = scalar(k);
		unsigned i;
		int rc;

		if (ks == NULL) {
			bad = fail(l, k, "%s: keys must be scalars", sec->name);
			continue;
		}
		for (i = 0; sec->fields[i].name != NULL; i++)
			if (strcmp(sec->fields[i].name, ks) == 0)
				break;
		if (sec->fields[i].name == NULL) {
			bad = fail(l, k, "%s: unknown key '%s'", sec->name, ks);
			continue;
		}
		if (seen & (1ull << i)) {
			bad = fail(l, k, "%s: duplicate key '%s'", sec->name, ks);
			continue;
		}
		seen |= 1ull << i;
		rc = parse_field(l, &sec->fields[i], v, sec->name);
		if (rc == -ENOMEM)
			return rc;
		if (rc != 0)
			bad = rc;
		l->c->explicit_keys |= sec->fields[i].key;
	}
	return bad;
}

static int
parse_node(struct loader *l, const char *pname, unsigned idx, const yaml_node_t *m,
	   struct dp_node_spec *out)
{
	bool have_type = false, have_params = false;

	if (m->type != YAML_MAPPING_NODE)
		return fail(l, m, "pipelines.%s[%u]: expected a mapping with type and params",
			    pname, idx);
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
		const char *ks = scalar(k);

		if (ks != NULL && strcmp(ks, "type") == 0) {
			if (have_type)
				return fail(l, k, "pipelines.%s[%u]: duplicate key 'type'", pname,
					    idx);
			if (scalar(v) == NULL)
				return fail(l, v, "pipelines.%s[%u].type: expected a string", pname,
					    idx);
			out->type = strdup(scalar(v));
			have_type = true;
		} else if (ks != NULL && strcmp(ks, "params") == 0) {
			size_t n;

			if (have_params)
				return fail(l, k, "pipelines.%s[%u]: duplicate key 'params'", pname,
					    idx);
			have_params = true;
			if (v->type == YAML_SCALAR_NODE && scalar(v)[0] == '\0')
				continue; /* "params:" with nothing */
			if (v->type != YAML_MAPPING_NODE)
				return fail(l, v, "pipelines.%s[%u].params: expected a mapping",
					    pname, idx);
			n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
			out->params = calloc(n + 1, sizeof(*out->params));
			if (out->params == NULL)
				return -ENOMEM;
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
			     q < v->data.mapping.pairs.top; q++) {
				yaml_node_t *pk = yaml_document_get_node(&l->doc, q->key);
				yaml_node_t *pv = yaml_document_get_node(&l->doc, q->value);

				if (scalar(pk) == NULL || scalar(pv) == NULL)
					return fail(l, pv,
						    "pipelines.%s[%u].params: keys and values must "
						    "be scalars",
						    pname, idx);
				for (unsigned j = 0; j < out->n_params; j++)
					if (strcmp(out->params[j].key, scalar(pk)) == 0)
						return fail(l, pk,
							    "pipelines.%s[%u].params: duplicate "
							    "key '%s'",
							    pname, idx, scalar(pk));
				out->params[out->n_params].key = strdup(scalar(pk));
				out->params[out->n_params].value = strdup(scalar(pv));
				out->n_params++;
			}
		} else {
			return fail(l, k,
				    "pipelines.%s[%u]: unknown key '%s' (expected type, params)",
				    pname, idx, ks ? ks : "?");
		}
	}
	if (!have_type)
		return fail(l, m, "pipelines.%s[%u]: missing 'type'", pname, idx);
	return 0;
}

static int
parse_pipelines(struct loader *l, const yaml_node_t *m, struct cp_config_pipeline **out,
		unsigned *n_out)
{
	struct cp_config_pipeline *ps;
	unsigned n = 0;
	size_t cap;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (m->type == YAML_SCALAR_NODE && scalar(m)[0] == '\0')
		return 0; /* "pipelines:" with nothing */
	if (m->type != YAML_MAPPING_NODE)
		return fail(l, m, "pipelines: expected a mapping of name to node list");
	cap = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
	ps = calloc(cap + 1, sizeof(*ps));
	if (ps == NULL)
		return -ENOMEM;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
		const char *name = scalar(k);
		struct cp_config_pipeline *cp = &ps[n];
		size_t nn;

		bool dup = false;

		/* Every bad pipeline and node is reported; the load fails at the end. */
		if (name == NULL || !dp_pipeline_name_valid(name)) {
			rc = fail(l, k, "pipelines: invalid name '%s' ([A-Za-z0-9_.-]{1,63})",
				  name ? name : "?");
			continue;
		}
		for (unsigned j = 0; j < n && !dup; j++)
			dup = strcmp(ps[j].spec.name, name) == 0;
		if (dup) {
			rc = fail(l, k, "pipelines: duplicate pipeline '%s'", name);
			continue;
		}
		if (v->type != YAML_SEQUENCE_NODE) {
			rc = fail(l, v, "pipelines.%s: expected a list of nodes, got %s", name,
				  node_kind(v));
			continue;
		}
		n++;
		cp->line = (int)k->start_mark.line + 1;
		cp->spec.name = strdup(name);
		nn = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
		cp->spec.nodes = calloc(nn + 1, sizeof(*cp->spec.nodes));
		if (cp->spec.name == NULL || cp->spec.nodes == NULL) {
			rc = -ENOMEM;
			goto err;
		}
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			unsigned idx = cp->spec.n_nodes++;
			int r = parse_node(l, name, idx, yaml_document_get_node(&l->doc, *it),
					   &cp->spec.nodes[idx]);

			if (r == -ENOMEM) {
				rc = r;
				goto err;
			}
			if (r != 0)
				rc = r;
		}
	}
	if (rc != 0)
		goto err;
	*out = ps;
	*n_out = n;
	return 0;
err:
	free_pipelines(ps, n);
	return rc;
}

/*
 * A scalar with a NUL byte inside (YAML's "\0" escape) would be cut short by every C string
 * function after it: "passthrough\0zz" would name passthrough. Refused wherever it is.
 */
static int
check_no_nul(struct loader *l)
{
	for (yaml_node_t *n = l->doc.nodes.start; n < l->doc.nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE &&
		    memchr(n->data.scalar.value, '\0', n->data.scalar.length) != NULL)
			return fail(l, n,
				    "a NUL byte inside '%s...' (names, keys and values are text)",
				    (const char *)n->data.scalar.value);
	return 0;
}

static int
load_stream(struct cp_config *c, const void *data, size_t len, const char *path, unsigned flags,
	    char *err, size_t errlen)
{
	struct cp_config tmp = *c;
	struct loader l = {.path = path, .err = err, .errlen = errlen, .c = &tmp};
	struct cp_config_pipeline *pipes = NULL;
	unsigned n_pipes = 0;
	yaml_parser_t parser;
	yaml_node_t *root;
	uint32_t seen = 0;
	unsigned n_inline;
	int rc = 0;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, data, len);
	if (!yaml_parser_load(&parser, &l.doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: YAML syntax error: %s", path,
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "unknown");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&l.doc);
	if (root == NULL || (root->type == YAML_SCALAR_NODE && scalar(root)[0] == '\0')) {
		/* Empty (or only comments): defaults, unless the caller needs content (a reload
		 * must never fall back to defaults: they turn authentication off). */
		if (flags & CP_CONFIG_NONEMPTY) {
			snprintf(err, errlen,
				 "%s: the file is empty (no settings); an empty or truncated file "
				 "is never taken for the defaults",
				 path);
			rc = -EINVAL;
		}
		goto done;
	}
	rc = check_no_nul(&l);
	if (rc != 0)
		goto done;
	if (root->type != YAML_MAPPING_NODE) {
		rc = fail(&l, root, "expected a mapping of sections at the top level");
		goto done;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top && rc != -ENOMEM; p++) {
		yaml_node_t *k = yaml_document_get_node(&l.doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&l.doc, p->value);
		const char *ks = scalar(k);
		unsigned i;

		for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
			if (ks && strcmp(ks, sections[i].name) == 0)
				break;
		int r;

		if (i == sizeof(sections) / sizeof(sections[0])) {
			rc = fail(&l, k,
				  "unknown section '%s' (expected server, dataplane, limits, "
				  "auth, tls, logging, registry, pipelines)",
				  ks ? ks : "?");
			continue;
		}
		if (seen & (1u << i)) {
			rc = fail(&l, k, "duplicate section '%s'", ks);
			continue;
		}
		seen |= 1u << i;
		if (sections[i].fields == NULL) {
			r = parse_pipelines(&l, v, &pipes, &n_pipes);
			l.have_pipelines = r == 0;
		} else if (v->type == YAML_SCALAR_NODE && scalar(v)[0] == '\0') {
			continue; /* "server:" with nothing under it */
		} else {
			r = parse_section(&l, &sections[i], v);
		}
		if (r != 0 && rc != -ENOMEM)
			rc = r;
	}
done:
	yaml_document_delete(&l.doc);
	yaml_parser_delete(&parser);
	/* Checks across keys, each reported: only when every key parsed (else they would judge
	 * values the file did not set). */
	if (rc == 0) {
		if (tmp.shed_low_water_pct >= tmp.shed_high_water_pct)
			rc = fail_file(&l,
				       "limits.shed_low_water_pct (%u) must be below "
				       "shed_high_water_pct (%u)",
				       tmp.shed_low_water_pct, tmp.shed_high_water_pct);
		if (tmp.default_timeout_ms > tmp.max_timeout_ms)
			rc = fail_file(
			    &l,
			    "limits.default_timeout_ms (%u) exceeds limits.max_timeout_ms "
			    "(%u)",
			    tmp.default_timeout_ms, tmp.max_timeout_ms);
		if ((tmp.tls.cert_file[0] != '\0') != (tmp.tls.key_file[0] != '\0'))
			rc = fail_file(&l, "tls.cert_file and tls.key_file go together");
		if (tmp.tls.cert_file[0] == '\0' &&
		    (tmp.tls.client_ca_file[0] != '\0' || tmp.tls.plaintext_listen[0] != '\0'))
			rc = fail_file(
			    &l, "tls.client_ca_file and tls.plaintext_listen need tls.cert_file");
		if (tmp.tls.require_client_cert && tmp.tls.client_ca_file[0] == '\0')
			rc = fail_file(&l, "tls.require_client_cert needs tls.client_ca_file");
		if (tmp.tls.required && tmp.tls.plaintext_listen[0] != '\0')
			rc = fail_file(&l, "tls.plaintext_listen is set but tls.required is true "
					   "(plaintext would be refused); set required: false to "
					   "serve both");
	}
	/* Tokens: this file's list plus its token file replace the table; without either, the
	 * table stays as it was. */
	n_inline = l.have_tokens ? l.tokens.n : 0;
	if (rc == 0 && tmp.token_file[0] != '\0') {
		char msg[512];

		if (cp_auth_load_file(&l.tokens, tmp.token_file, msg, sizeof(msg)) != 0)
			rc = fail_file(&l, "auth.token_file: %s", msg);
		else
			l.have_tokens = true;
	}
	if (rc == 0 && tmp.auth.enabled && (l.have_tokens ? l.tokens.n : tmp.auth.n) == 0)
		rc = fail_file(&l, "auth.enabled is true but no token is configured (set "
				   "auth.tokens or auth.token_file)");
	if (l.n_err_cut != 0) {
		size_t off = strlen(err);

		snprintf(err + off, errlen - off, "\n(%u more errors)", l.n_err_cut);
	}
	if (rc != 0) {
		if (l.have_eal)
			free_strlist(tmp.eal_args, tmp.n_eal_args);
		free_pipelines(pipes, n_pipes);
		cp_auth_free(&l.tokens);
		return rc;
	}
	/* Commit: tmp's scalars, and the lists the file set (the old ones freed). */
	if (l.have_eal)
		free_strlist(c->eal_args, c->n_eal_args);
	if (l.have_pipelines) {
		free_pipelines(c->pipelines, c->n_pipelines);
		tmp.pipelines = pipes;
		tmp.n_pipelines = n_pipes;
	}
	if (l.have_pools)
		tmp.dp.pools = l.pools;
	if (l.have_ports) {
		tmp.udp.n_ports = l.ports.n_ports;
		memcpy(tmp.udp.ports, l.ports.ports, sizeof(tmp.udp.ports));
	}
	if (l.have_tokens) {
		bool en = tmp.auth.enabled, ho = tmp.auth.health_open, me = tmp.auth.metrics;
		char hp[CP_AUTH_HIGH_MAX];

		memcpy(hp, tmp.auth.high_priority, sizeof(hp));
		cp_auth_free(&c->auth);
		tmp.n_inline_tokens = n_inline;
		tmp.auth = l.tokens;
		tmp.auth.enabled = en;
		tmp.auth.health_open = ho;
		tmp.auth.metrics = me;
		memcpy(tmp.auth.high_priority, hp, sizeof(hp));
	}
	*c = tmp;
	snprintf(c->path, sizeof(c->path), "%s", path);
	return 0;
}

int
cp_config_load_file_ex(struct cp_config *c, const char *path, unsigned flags, char *err,
		       size_t errlen)
{
	char *buf;
	size_t len;
	int rc;

	rc = cp_file_read(path, CP_CONFIG_FILE_MAX, &buf, &len, err, errlen);
	if (rc != 0)
		return rc == -EFBIG || rc == -EAGAIN ? -EINVAL : rc;
	rc = load_stream(c, buf, len, path, flags, err, errlen);
	free(buf);
	return rc;
}

int
cp_config_load_file(struct cp_config *c, const char *path, char *err, size_t errlen)
{
	return cp_config_load_file_ex(c, path, 0, err, errlen);
}

int
cp_config_load_buffer_ex(struct cp_config *c, const char *name, const void *data, size_t len,
			 unsigned flags, char *err, size_t errlen)
{
	return load_stream(c, data, len, name, flags, err, errlen);
}

int
cp_config_load_buffer(struct cp_config *c, const char *name, const void *data, size_t len,
		      char *err, size_t errlen)
{
	if (len == 0)
		return 0;
	return load_stream(c, data, len, name, 0, err, errlen);
}

/* ==== Checks shared with the command line and reloads ======================================= */

int
cp_config_listen_check(const char *addr, unsigned flags, char *msg, size_t n)
{
	const char *port, *p;
	unsigned long v = 0;

	if (addr[0] == '\0') {
		if (flags & CP_LISTEN_EMPTY)
			return 0;
		return snprintf(msg, n, "an empty address (expected host:port)"), -EINVAL;
	}
	if (strncmp(addr, "unix:", 5) == 0) {
		if (!(flags & CP_LISTEN_UNIX))
			return snprintf(msg, n, "'%.64s': unix sockets are not served here", addr),
			       -EINVAL;
		if (addr[5] == '\0')
			return snprintf(msg, n, "'unix:' needs a path"), -EINVAL;
		return 0;
	}
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (end == NULL || end == addr + 1 || end[1] != ':')
			return snprintf(msg, n, "'%.64s': expected [IPv6 address]:port", addr),
			       -EINVAL;
		port = end + 2;
	} else {
		const char *colon = strchr(addr, ':');

		if (colon == NULL)
			return snprintf(msg, n, "'%.64s': expected host:port", addr), -EINVAL;
		if (strchr(colon + 1, ':') != NULL)
			return snprintf(msg, n,
					"'%.64s': an IPv6 address goes in brackets ([::1]:port)",
					addr),
			       -EINVAL;
		port = colon + 1;
	}
	if (*port == '\0')
		return snprintf(msg, n, "'%.64s': the port is missing", addr), -EINVAL;
	/* Digits only, at most 65535: getaddrinfo() would take "117537" and wrap it (to 52001)
	 * and a service name would depend on /etc/services. */
	for (p = port; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return snprintf(msg, n, "'%.64s': port '%.16s' is not a number", addr,
					port),
			       -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return snprintf(msg, n,
					"'%.64s': port %.16s out of range [0, 65535] (0 picks a "
					"free port)",
					addr, port),
			       -EINVAL;
	}
	return 0;
}

int
cp_config_validate(const struct cp_config *c, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
		unsigned flags;
	} addrs[] = {
	    {"server.grpc_listen", offsetof(struct cp_config, grpc_listen), CP_LISTEN_UNIX},
	    {"server.metrics_listen", offsetof(struct cp_config, metrics_listen), CP_LISTEN_EMPTY},
	    {"tls.plaintext_listen", offsetof(struct cp_config, tls.plaintext_listen),
	     CP_LISTEN_EMPTY},
	};
	char msg[256];

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		const char *a = (const char *)c + addrs[i].off;

		if (cp_config_listen_check(a, addrs[i].flags, msg, sizeof(msg)) != 0) {
			snprintf(err, errlen, "%s: %s", addrs[i].key, msg);
			return -EINVAL;
		}
	}
	if (c->registry_store == CP_STORE_ETCD &&
	    (c->etcd_endpoint[0] == '\0' || c->etcd_prefix[0] == '\0')) {
		snprintf(err, errlen,
			 "registry.store: etcd needs registry.etcd_endpoint and "
			 "registry.etcd_prefix");
		return -EINVAL;
	}
	if (c->registry_store == CP_STORE_FILE && c->state_file[0] == '\0') {
		snprintf(err, errlen, "registry.store: file needs registry.state_file (a path)");
		return -EINVAL;
	}
	return 0;
}

/*
 * Settings whose change weakens security, with the key that must say so. Each is checked as
 * "was on in the running config, would be off in the new one".
 */
struct weaken_rule {
	const char *what;
	uint32_t key;
	bool (*weakens)(const struct cp_config *live, const struct cp_config *neu);
};

static bool
w_auth_off(const struct cp_config *a, const struct cp_config *b)
{
	return a->auth.enabled && !b->auth.enabled;
}

/* Every token gone: implied (not a weakening of its own) when authentication is turned off
 * explicitly, since the table is then unused. */
static bool
w_tokens_gone(const struct cp_config *a, const struct cp_config *b)
{
	bool auth_off_said = (b->explicit_keys & CP_KEY_AUTH_ENABLED) && !b->auth.enabled;

	return a->auth.n > 0 && b->auth.n == 0 && !auth_off_said;
}

static bool
w_metrics_open(const struct cp_config *a, const struct cp_config *b)
{
	return a->auth.metrics && !b->auth.metrics;
}

static bool
w_health_open(const struct cp_config *a, const struct cp_config *b)
{
	return !a->auth.health_open && b->auth.health_open;
}

static bool
w_tls_off(const struct cp_config *a, const struct cp_config *b)
{
	return a->tls.cert_file[0] != '\0' && b->tls.cert_file[0] == '\0';
}

static bool
w_plaintext_on(const struct cp_config *a, const struct cp_config *b)
{
	return a->tls.required && !b->tls.required;
}

static bool
w_client_cert_off(const struct cp_config *a, const struct cp_config *b)
{
	return a->tls.require_client_cert && !b->tls.require_client_cert;
}

static bool
w_client_ca_off(const struct cp_config *a, const struct cp_config *b)
{
	return a->tls.client_ca_file[0] != '\0' && b->tls.client_ca_file[0] == '\0';
}

static const struct weaken_rule g_weaken[] = {
    {"turns authentication off (auth.enabled: false)", CP_KEY_AUTH_ENABLED, w_auth_off},
    {"drops every token (auth.tokens / auth.token_file)", CP_KEY_AUTH_TOKENS, w_tokens_gone},
    {"opens /metrics without a token (auth.metrics: false)", CP_KEY_AUTH_METRICS, w_metrics_open},
    {"opens health checks without a token (auth.health_open: true)", CP_KEY_AUTH_HEALTH_OPEN,
     w_health_open},
    {"disables TLS (tls.cert_file: \"\")", CP_KEY_TLS_CERT, w_tls_off},
    {"allows plaintext (tls.required: false)", CP_KEY_TLS_REQUIRED, w_plaintext_on},
    {"stops requiring client certificates (tls.require_client_cert: false)", CP_KEY_TLS_CLIENT_CERT,
     w_client_cert_off},
    {"drops the client CA (tls.client_ca_file: \"\")", CP_KEY_TLS_CLIENT_CA, w_client_ca_off},
};

int
cp_config_security_check(const struct cp_config *live, const struct cp_config *neu,
			 const char **weakened, unsigned *n_weakened, char *err, size_t errlen)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(g_weaken) / sizeof(g_weaken[0]); i++) {
		const struct weaken_rule *r = &g_weaken[i];

		if (!r->weakens(live, neu))
			continue;
		if (!(neu->explicit_keys & r->key)) {
			snprintf(
			    err, errlen,
			    "%s: the new configuration %s without saying so; a file that "
			    "does not set it (empty, truncated, section missing) never weakens "
			    "security: set the key explicitly to do that",
			    neu->path[0] ? neu->path : "config", r->what);
			return -EPERM;
		}
		if (weakened != NULL && n < CP_CONFIG_WEAKEN_MAX)
			weakened[n] = r->what;
		n++;
	}
	if (n_weakened != NULL)
		*n_weakened = n < CP_CONFIG_WEAKEN_MAX ? n : CP_CONFIG_WEAKEN_MAX;
	return 0;
}

/* ==== Environment and printing ============================================================== */

int
cp_config_apply_env(struct cp_config *c, const char *(*get)(const char *name), char *err,
		    size_t errlen)
{
	struct cp_config tmp = *c;
	size_t off = 0;
	int rc = 0;

	for (const struct section *sec = sections;
	     sec < sections + sizeof(sections) / sizeof(sections[0]); sec++) {
		if (sec->fields == NULL)
			continue;
		for (const struct field *f = sec->fields; f->name != NULL; f++) {
			char var[96], msg[256];
			const char *v;
			size_t k = 0;

			if (f->type == F_STRLIST || f->type == F_TOKENS || f->type == F_POOLS ||
			    f->type == F_PORTS)
				continue; /* lists only from the file */
			k += (size_t)snprintf(var, sizeof(var), "COREPIPE_%s_%s", sec->name,
					      f->name);
			for (size_t j = 0; j < k && j < sizeof(var); j++)
				var[j] = (char)toupper((unsigned char)var[j]);
			v = get(var);
			if (v == NULL)
				continue;
			if (parse_value(f, v, &tmp, msg, sizeof(msg)) != 0) {
				/* Every bad variable, one per line. */
				if (off < errlen)
					off += (size_t)snprintf(err + off, errlen - off,
								"%senvironment %s: %s",
								rc ? "\n" : "", var, msg);
				rc = -EINVAL;
			}
			tmp.explicit_keys |= f->key;
		}
	}
	if (rc != 0)
		return rc;
	/* Scalars only: tmp shares c's arrays, so copying back moves nothing that is owned. */
	*c = tmp;
	return 0;
}

/* COREPIPE_* variables that are not settings: the config file's name, the test-only node
 * switch (dataplane/nodes/test_delay.c) and perf/flamegraph.sh's cache directory. */
static const char *const g_env_other[] = {
    "COREPIPE_CONFIG",
    "COREPIPE_TEST_NODES",
    "COREPIPE_FLAMEGRAPH_HOME",
};

/* The variable name of setting @p f of section @p sec, upper case. */
static void
env_name(const struct section *sec, const struct field *f, char *out, size_t len)
{
	size_t k = (size_t)snprintf(out, len, "COREPIPE_%s_%s", sec->name, f->name);

	for (size_t j = 0; j < k && j < len; j++)
		out[j] = (char)toupper((unsigned char)out[j]);
}

/* Levenshtein distance, for "did you mean"; names are short (< 64). */
static unsigned
edit_distance(const char *a, size_t la, const char *b)
{
	unsigned row[96];
	size_t lb = strlen(b);

	if (la >= 95 || lb >= 95)
		return 1000;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

int
cp_config_check_env(char *const *envp, char *err, size_t errlen)
{
	size_t off = 0;
	int rc = 0;

	for (char *const *e = envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
		char best[96] = "", var[96];
		unsigned best_d = 1000;
		bool known = false, list = false;

		if (strncmp(*e, "COREPIPE_", 9) != 0)
			continue;
		for (size_t i = 0; i < sizeof(g_env_other) / sizeof(g_env_other[0]); i++) {
			unsigned d = edit_distance(*e, len, g_env_other[i]);

			known |= d == 0;
			if (d < best_d) {
				best_d = d;
				snprintf(best, sizeof(best), "%s", g_env_other[i]);
			}
		}
		for (const struct section *sec = sections;
		     !known && sec < sections + sizeof(sections) / sizeof(sections[0]); sec++) {
			for (const struct field *f = sec->fields; f && f->name != NULL; f++) {
				unsigned d;

				env_name(sec, f, var, sizeof(var));
				d = edit_distance(*e, len, var);
				if (d == 0 && (f->type == F_STRLIST || f->type == F_TOKENS ||
					       f->type == F_POOLS || f->type == F_PORTS))
					list = true;
				known |= d == 0;
				if (d < best_d) {
					best_d = d;
					snprintf(best, sizeof(best), "%s", var);
				}
			}
		}
		if (known && !list)
			continue;
		if (off < errlen) {
			if (list)
				off += (size_t)snprintf(err + off, errlen - off,
							"%senvironment %.*s: a list, set in the "
							"config file only",
							rc ? "\n" : "", (int)len, *e);
			else
				off += (size_t)snprintf(err + off, errlen - off,
							"%senvironment %.*s: unknown variable "
							"(did you mean %s?)",
							rc ? "\n" : "", (int)len, *e, best);
		}
		rc = -EINVAL;
	}
	return rc;
}

const char *
cp_config_locate(const char *flag, const char *(*get)(const char *name), const char *installed)
{
	const char *env = get != NULL ? get("COREPIPE_CONFIG") : NULL;

	if (flag != NULL)
		return flag;
	if (env != NULL && env[0] != '\0')
		return env;
	if (installed != NULL && access(installed, F_OK) == 0)
		return installed;
	if (access("config/corepipe.yaml", F_OK) == 0)
		return "config/corepipe.yaml";
	return NULL;
}

/* A YAML double-quoted scalar: the printed file must load back whatever the string holds. */
static void
print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void
print_field(FILE *out, const struct field *f, const struct cp_config *c)
{
	const char *src = (const char *)c + f->off;

	fprintf(out, "  %s: ", f->name);
	switch (f->type) {
	case F_STR:
	case F_LISTEN:
		print_quoted(out, src);
		fputc('\n', out);
		break;
	case F_U32:
	case F_POW2:
		fprintf(out, "%u\n", *(const uint32_t *)src);
		break;
	case F_IDLE:
		fprintf(out, "%s\n", dp_idle_policy_name(*(const enum dp_idle_policy *)src));
		break;
	case F_LOGLEVEL:
		fprintf(out, "%s\n", cp_log_level_name(*(const enum cp_log_level *)src));
		break;
	case F_BOOL:
		fprintf(out, "%s\n", *(const bool *)src ? "true" : "false");
		break;
	case F_ALOG:
		fprintf(out, "%s\n", cp_alog_mode_name(*(const enum cp_alog_mode *)src));
		break;
	case F_STORE:
		fprintf(out, "%s\n", cp_store_kind_name(*(const enum cp_store_kind *)src));
		break;
	case F_TOKENS:
		/* The file's own entries, digests included: they are SHA-256 digests, not tokens,
		 * and without them the output would not load back. Entries from auth.token_file
		 * stay there (token_file is printed and re-read). */
		fprintf(out, "[");
		for (unsigned i = 0; i < c->n_inline_tokens && i < c->auth.n; i++) {
			fprintf(out, "%s{ name: ", i ? ", " : "");
			print_quoted(out, c->auth.tokens[i].name);
			fprintf(out, ", sha256: \"");
			for (unsigned k = 0; k < CP_AUTH_DIGEST; k++)
				fprintf(out, "%02x", c->auth.tokens[i].digest[k]);
			fprintf(out, "\", permission: %s }",
				c->auth.tokens[i].perm == CP_PERM_ADMIN ? "admin" : "execute");
		}
		fprintf(out, "]\n");
		break;
	case F_POOLS:
		fprintf(out, "[");
		for (unsigned i = 0; i < c->dp.pools.n_classes; i++)
			fprintf(out, "%s{ size: %u, count: %u }", i ? ", " : "",
				c->dp.pools.classes[i].size, c->dp.pools.classes[i].count);
		fprintf(out, "]\n");
		break;
	case F_PORTS:
		fprintf(out, "[");
		for (unsigned i = 0; i < c->udp.n_ports; i++) {
			const struct dp_port_conf *p = &c->udp.ports[i];
			char ip[16];

			char allow[16];

			dp_ipv4_format(p->ip, ip);
			dp_ipv4_format(p->allow_set ? p->allow_ip : p->ip, allow);
			fprintf(out, "%s{ name: ", i ? ", " : "");
			print_quoted(out, p->name);
			fprintf(out, ", device: ");
			print_quoted(out, p->devargs);
			fprintf(out,
				", address: \"%s/%u\", "
				"udp_port: %u, mtu: %u, queues: %u, rx_desc: %u, tx_desc: %u, "
				"allow_from: \"%s/%u\" }",
				ip, p->prefix_len, p->udp_port, p->mtu ? p->mtu : 1500, p->queues,
				p->rx_desc ? p->rx_desc : 1024, p->tx_desc ? p->tx_desc : 1024,
				allow, p->allow_set ? p->allow_prefix : p->prefix_len);
		}
		fprintf(out, "]\n");
		break;
	case F_STRLIST:
		fprintf(out, "[");
		for (unsigned i = 0; i < c->n_eal_args; i++) {
			fputs(i ? ", " : "", out);
			print_quoted(out, c->eal_args[i]);
		}
		fprintf(out, "]\n");
		break;
	}
}

void
cp_config_print(FILE *out, const struct cp_config *c)
{
	fprintf(out, "# effective configuration (defaults < file%s%s < environment < flags)\n",
		c->path[0] ? " " : "", c->path);
	for (const struct section *sec = sections;
	     sec < sections + sizeof(sections) / sizeof(sections[0]); sec++) {
		if (sec->fields == NULL)
			continue;
		fprintf(out, "%s:\n", sec->name);
		for (const struct field *f = sec->fields; f->name != NULL; f++)
			print_field(out, f, c);
	}
	fprintf(out, "pipelines:%s\n", c->n_pipelines ? "" : " {}");
	for (unsigned i = 0; i < c->n_pipelines; i++) {
		const struct dp_spec *s = &c->pipelines[i].spec;

		fprintf(out, "  %s:\n", s->name);
		for (unsigned j = 0; j < s->n_nodes; j++) {
			fprintf(out, "    - type: ");
			print_quoted(out, s->nodes[j].type);
			fputc('\n', out);
			if (s->nodes[j].n_params == 0)
				continue;
			fprintf(out, "      params: {");
			for (unsigned k = 0; k < s->nodes[j].n_params; k++) {
				fputs(k ? ", " : " ", out);
				print_quoted(out, s->nodes[j].params[k].key);
				fputs(": ", out);
				print_quoted(out, s->nodes[j].params[k].value);
			}
			fprintf(out, " }\n");
		}
	}
}

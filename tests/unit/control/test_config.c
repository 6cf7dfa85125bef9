/*
 * Config loader: defaults, a full file, the shipped example, and errors with file:line:col for
 * unknown keys, wrong types, out-of-range values, bad enums, duplicates and bad pipelines. A
 * failed load leaves the config unchanged.
 */
#include "control/config.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_path[64];

static const char *
write_tmp(const char *text)
{
	int fd;

	snprintf(g_path, sizeof(g_path), "/tmp/cp_test_config_XXXXXX");
	fd = mkstemp(g_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return g_path;
}

static void
expect_error(const char *yaml, const char *fragment, int line)
{
	struct cp_config c;
	char err[512], where[128];
	const char *path = write_tmp(yaml);

	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, path, err, sizeof(err)), -EINVAL);
	if (strstr(err, fragment) == NULL)
		fail_msg("error '%s' lacks '%s'", err, fragment);
	snprintf(where, sizeof(where), "%s:%d:", path, line);
	if (strncmp(err, where, strlen(where)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, where);
	/* Unchanged on error. */
	assert_string_equal(c.grpc_listen, "127.0.0.1:50051");
	assert_int_equal(c.n_pipelines, 0);
	cp_config_free(&c);
	unlink(path);
}

static void
test_config_init_defaults(void **state)
{
	struct cp_config c;

	(void)state;
	cp_config_init(&c);
	assert_string_equal(c.grpc_listen, "127.0.0.1:50051");
	assert_int_equal(c.max_message_bytes, 4u << 20);
	assert_int_equal(c.max_nodes, 32);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.dp.worker.idle, DP_IDLE_ADAPTIVE);
	assert_int_equal(c.dp.worker.ring_size, 1024);
	assert_int_equal(c.log_level, CP_LOG_INFO);
	assert_int_equal(c.n_pipelines, 0);
	cp_config_free(&c);
}

static void
test_config_load_full_file(void **state)
{
	static const char yaml[] = "server:\n"
				   "  grpc_listen: \"0.0.0.0:6000\"\n"
				   "  max_message_bytes: 1048576\n"
				   "dataplane:\n"
				   "  workers: 3\n"
				   "  idle_policy: spin\n"
				   "  spin_us: 7\n"
				   "  ring_size: 256\n"
				   "  max_in_flight: 100\n"
				   "  eal_args: [\"--vdev=net_null0\", \"--log-level=7\"]\n"
				   "limits: { max_nodes: 8 }\n"
				   "logging: { level: warn }\n"
				   "pipelines:\n"
				   "  first:\n"
				   "    - type: gain\n"
				   "      params: { db: 6 }\n"
				   "    - type: crc32c\n"
				   "  second:\n"
				   "    - type: convert\n"
				   "      params:\n"
				   "        format: f32le\n";
	struct cp_config c;
	char err[256];
	const char *path = write_tmp(yaml);

	(void)state;
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.grpc_listen, "0.0.0.0:6000");
	assert_int_equal(c.max_message_bytes, 1048576);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.dp.worker.idle, DP_IDLE_SPIN);
	assert_int_equal(c.dp.worker.spin_us, 7);
	assert_int_equal(c.dp.worker.ring_size, 256);
	assert_int_equal(c.dp.max_in_flight, 100);
	assert_int_equal(c.dp.worker.sleep_max_us, 100000); /* absent: default kept */
	assert_int_equal(c.n_eal_args, 2);
	assert_string_equal(c.eal_args[1], "--log-level=7");
	assert_int_equal(c.max_nodes, 8);
	assert_int_equal(c.log_level, CP_LOG_WARN);
	assert_int_equal(c.n_pipelines, 2);
	assert_string_equal(c.pipelines[0].spec.name, "first");
	assert_int_equal(c.pipelines[0].line, 14);
	assert_int_equal(c.pipelines[0].spec.n_nodes, 2);
	assert_string_equal(c.pipelines[0].spec.nodes[0].type, "gain");
	assert_string_equal(c.pipelines[0].spec.nodes[0].params[0].key, "db");
	assert_string_equal(c.pipelines[0].spec.nodes[0].params[0].value, "6");
	assert_int_equal(c.pipelines[0].spec.nodes[1].n_params, 0);
	assert_string_equal(c.pipelines[1].spec.nodes[0].params[0].value, "f32le");
	assert_string_equal(c.path, path);
	cp_config_free(&c);
	unlink(path);
}

static void
test_config_load_shipped_example(void **state)
{
	struct cp_config c;
	char err[256];

	(void)state;
	cp_config_init(&c);
	if (cp_config_load_file(&c, "config/corepipe.yaml", err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(c.n_pipelines >= 4);
	for (unsigned i = 0; i < c.n_pipelines; i++) {
		struct dp_err e;
		struct dp_pipeline *p = dp_pipeline_compile(&c.pipelines[i].spec, c.max_nodes, &e);

		if (p == NULL)
			fail_msg("pipeline %s: %s", c.pipelines[i].spec.name, e.msg);
		dp_pipeline_unref(p);
	}
	cp_config_free(&c);
}

static void
test_config_load_empty_file_keeps_defaults(void **state)
{
	struct cp_config c;
	char err[256];
	const char *path = write_tmp("# nothing\n");

	(void)state;
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.grpc_listen, "127.0.0.1:50051");
	cp_config_free(&c);
	unlink(path);
}

static void
test_config_load_missing_file(void **state)
{
	struct cp_config c;
	char err[256];

	(void)state;
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, "/nonexistent/x.yaml", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x.yaml"));
	cp_config_free(&c);
}

static void
test_config_load_errors_name_file_and_line(void **state)
{
	(void)state;
	expect_error("server:\n  grpc_listen: \"h:1\"\n  bogus: 1\n", "server: unknown key 'bogus'",
		     3);
	expect_error("servr:\n  grpc_listen: x\n", "unknown section 'servr'", 1);
	expect_error("dataplane:\n  workers: many\n", "dataplane.workers: expected a non-negative",
		     2);
	expect_error("dataplane:\n  workers: -1\n", "expected a non-negative integer", 2);
	expect_error("dataplane:\n  ring_size: 1000\n", "not a power of two", 2);
	expect_error("dataplane:\n  ring_size: 32\n", "out of range [64, 65536]", 2);
	expect_error("dataplane:\n  idle_policy: nap\n", "expected spin, adaptive or sleep", 2);
	expect_error("logging:\n  level: loud\n", "expected debug, info, warn or error", 2);
	expect_error("limits:\n  max_nodes: 0\n", "out of range [1, 256]", 2);
	expect_error("server:\n  grpc_listen: [a]\n", "expected a scalar, got a list", 2);
	expect_error("server: 5\n", "server: expected a mapping", 1);
	expect_error("server:\n  max_message_bytes: 2048\n  max_message_bytes: 4096\n",
		     "duplicate key 'max_message_bytes'", 3);
	expect_error("pipelines:\n  a:\n    - type: gain\n  a:\n    - type: crc32c\n",
		     "duplicate pipeline 'a'", 4);
	expect_error("pipelines:\n  'bad name':\n    - type: gain\n", "invalid name 'bad name'", 2);
	expect_error("pipelines:\n  p:\n    - typ: gain\n", "unknown key 'typ'", 3);
	expect_error("pipelines:\n  p:\n    - params: {db: 1}\n", "missing 'type'", 3);
	expect_error("pipelines:\n  p: gain\n", "expected a list of nodes", 2);
	expect_error("pipelines:\n  p:\n    - type: gain\n      params: [1]\n",
		     "params: expected a mapping", 4);
	expect_error("server: {\n", "YAML syntax error", 2);
}

/* A fake environment for cp_config_apply_env. */
static const char *const *g_env;

static const char *
fake_get(const char *name)
{
	for (const char *const *e = g_env; e && *e; e += 2)
		if (strcmp(e[0], name) == 0)
			return e[1];
	return NULL;
}

static void
test_config_env_overrides_file(void **state)
{
	static const char *const env[] = {"COREPIPE_SERVER_GRPC_LISTEN",
					  "127.0.0.1:6001",
					  "COREPIPE_LIMITS_MAX_NODES",
					  "7",
					  "COREPIPE_DATAPLANE_IDLE_POLICY",
					  "sleep",
					  "COREPIPE_LOGGING_LEVEL",
					  "warn",
					  "COREPIPE_DATAPLANE_RING_SIZE",
					  "0x100",
					  NULL};
	static const char *const bad[] = {"COREPIPE_DATAPLANE_RING_SIZE", "1000", NULL};
	struct cp_config c;
	char err[256];

	(void)state;
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c,
					     write_tmp("server: { grpc_listen: \"h:1\" }\n"
						       "limits: { max_nodes: 9, "
						       "default_timeout_ms: 1234 }\n"),
					     err, sizeof(err)),
			 0);
	unlink(g_path);
	g_env = env;
	assert_int_equal(cp_config_apply_env(&c, fake_get, err, sizeof(err)), 0);
	/* Environment beats the file; the file beats the defaults. */
	assert_string_equal(c.grpc_listen, "127.0.0.1:6001");
	assert_int_equal(c.max_nodes, 7);
	assert_int_equal(c.default_timeout_ms, 1234);
	assert_int_equal(c.dp.worker.idle, DP_IDLE_SLEEP);
	assert_int_equal(c.log_level, CP_LOG_WARN);
	assert_int_equal(c.dp.worker.ring_size, 256);
	assert_int_equal(c.max_timeout_ms, 300000);
	/* A bad value names the variable and leaves everything as it was. */
	g_env = bad;
	assert_int_equal(cp_config_apply_env(&c, fake_get, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "COREPIPE_DATAPLANE_RING_SIZE"));
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(c.dp.worker.ring_size, 256);
	cp_config_free(&c);
}

static void
test_config_print_round_trips(void **state)
{
	struct cp_config a, b;
	char err[256], *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	cp_config_init(&a);
	assert_int_equal(cp_config_load_file(&a, "config/corepipe.yaml", err, sizeof(err)), 0);
	a.max_nodes = 11;
	a.dp.worker.idle = DP_IDLE_SPIN;
	f = open_memstream(&text, &len);
	cp_config_print(f, &a);
	fclose(f);
	/* What --print-config prints is a valid config that loads to the same values. */
	cp_config_init(&b);
	assert_int_equal(cp_config_load_buffer(&b, "printed", text, len, err, sizeof(err)), 0);
	assert_int_equal(b.max_nodes, 11);
	assert_int_equal(b.dp.worker.idle, DP_IDLE_SPIN);
	assert_int_equal(b.dp.pools.n_classes, a.dp.pools.n_classes);
	assert_memory_equal(b.dp.pools.classes, a.dp.pools.classes, sizeof(a.dp.pools.classes));
	assert_string_equal(b.grpc_listen, a.grpc_listen);
	assert_int_equal(b.n_pipelines, a.n_pipelines);
	for (unsigned i = 0; i < a.n_pipelines; i++) {
		assert_string_equal(b.pipelines[i].spec.name, a.pipelines[i].spec.name);
		assert_int_equal(b.pipelines[i].spec.n_nodes, a.pipelines[i].spec.n_nodes);
	}
	free(text);
	cp_config_free(&a);
	cp_config_free(&b);
}

static void
test_config_reports_every_schema_error(void **state)
{
	struct cp_config c;
	char err[2048];
	const char *path = write_tmp("server:\n"
				     "  colour: blue\n"
				     "  max_connections: 0\n"
				     "limits:\n"
				     "  max_nodes: many\n"
				     "  shed_enabled: maybe\n"
				     "flavour: x\n"
				     "auth:\n"
				     "  tokens:\n"
				     "    - { name: a, sha256: zz }\n"
				     "    - { name: b, bogus: 1 }\n"
				     "pipelines:\n"
				     "  p1:\n"
				     "    - { type: gain, extra: 1 }\n"
				     "  p2: 3\n");
	char want[64];

	(void)state;
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, path, err, sizeof(err)), -EINVAL);
	/* One line per error, in file order, each with its line. */
	static const struct {
		int line;
		const char *what;
	} errs[] = {
	    {2, "server: unknown key 'colour'"},
	    {3, "server.max_connections: 0 out of range"},
	    {5, "limits.max_nodes: expected a non-negative integer"},
	    {6, "limits.shed_enabled: expected true or false"},
	    {7, "unknown section 'flavour'"},
	    {10, "auth.tokens:"},
	    {11, "auth.tokens: unknown key 'bogus'"},
	    {14, "pipelines.p1[0]: unknown key 'extra'"},
	    {15, "pipelines.p2: expected a list of nodes"},
	};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		snprintf(want, sizeof(want), "%s:%d:", path, errs[i].line);
		if (strstr(err, want) == NULL || strstr(err, errs[i].what) == NULL)
			fail_msg("errors lack line %d '%s':\n%s", errs[i].line, errs[i].what, err);
	}
	{
		unsigned lines = 1;

		for (const char *p = err; *p; p++)
			lines += *p == '\n';
		assert_int_equal(lines, sizeof(errs) / sizeof(errs[0]));
	}
	/* Unchanged. */
	assert_int_equal(c.max_connections, 2048);
	cp_config_free(&c);
	unlink(path);
}

static void
test_config_errors_beyond_the_buffer_are_counted(void **state)
{
	struct cp_config c;
	char err[200], text[4096];
	size_t off = 0;

	(void)state;
	off += (size_t)snprintf(text + off, sizeof(text) - off, "server:\n");
	for (int i = 0; i < 40; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "  bad_key_%d: 1\n", i);
	cp_config_init(&c);
	assert_int_equal(cp_config_load_file(&c, write_tmp(text), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad_key_0"));
	assert_non_null(strstr(err, "more errors)"));
	assert_true(strlen(err) < sizeof(err));
	cp_config_free(&c);
	unlink(g_path);
}

static void
test_config_unknown_environment_is_an_error(void **state)
{
	char *ok[] = {"PATH=/bin",
		      "COREPIPE_SERVER_GRPC_LISTEN=x:1",
		      "COREPIPE_CONFIG=/x.yaml",
		      "COREPIPE_TEST_NODES=1",
		      "COREPIPE_LOGGING_ACCESS_LOG=all",
		      NULL};
	char *bad[] = {"COREPIPE_LIMITS_MAX_NODE=3", "HOME=/root",
		       "COREPIPE_SERVER_KEEPALIVE_TIME=5", "COREPIPE_DATAPLANE_POOLS=x", NULL};
	char err[512];

	(void)state;
	assert_int_equal(cp_config_check_env(ok, err, sizeof(err)), 0);
	assert_int_equal(cp_config_check_env(bad, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "environment COREPIPE_LIMITS_MAX_NODE: unknown variable (did "
				    "you mean COREPIPE_LIMITS_MAX_NODES?)"));
	assert_non_null(strstr(err, "COREPIPE_SERVER_KEEPALIVE_TIME: unknown variable (did you "
				    "mean COREPIPE_SERVER_KEEPALIVE_TIME_MS?)"));
	assert_non_null(strstr(err, "COREPIPE_DATAPLANE_POOLS: a list, set in the config file"));
	assert_null(strstr(err, "HOME"));
}

static const char *g_cfg_env;

static const char *
config_env(const char *name)
{
	return strcmp(name, "COREPIPE_CONFIG") == 0 ? g_cfg_env : NULL;
}

static void
test_config_locate_search_order(void **state)
{
	const char *installed = write_tmp("");

	(void)state;
	/* The test runs from the tree root, where config/corepipe.yaml exists. */
	g_cfg_env = "/env.yaml";
	assert_string_equal(cp_config_locate("/flag.yaml", config_env, installed), "/flag.yaml");
	assert_string_equal(cp_config_locate(NULL, config_env, installed), "/env.yaml");
	g_cfg_env = NULL;
	assert_string_equal(cp_config_locate(NULL, config_env, installed), installed);
	assert_string_equal(cp_config_locate(NULL, config_env, "/nonexistent/corepipe.yaml"),
			    "config/corepipe.yaml");
	unlink(installed);
}

static void
test_config_keepalive_shed_and_access_log(void **state)
{
	struct cp_config c;
	char err[512];

	(void)state;
	cp_config_init(&c);
	assert_int_equal(c.keepalive.time_ms, 60000);
	assert_true(c.shed_enabled);
	assert_int_equal(c.access_log, CP_ALOG_OFF);
	assert_int_equal(
	    cp_config_load_file(&c,
				write_tmp("server:\n  keepalive_time_ms: 0\n"
					  "  keepalive_timeout_ms: 5000\n"
					  "  keepalive_permit_without_calls: true\n"
					  "  keepalive_min_ping_interval_ms: 1000\n"
					  "limits: { shed_enabled: false }\n"
					  "logging: { access_log: sampled, access_log_sample: 7, "
					  "access_log_ring: 128 }\n"),
				err, sizeof(err)),
	    0);
	unlink(g_path);
	assert_int_equal(c.keepalive.time_ms, 0);
	assert_int_equal(c.keepalive.timeout_ms, 5000);
	assert_true(c.keepalive.permit_without_calls);
	assert_int_equal(c.keepalive.min_ping_interval_ms, 1000);
	assert_false(c.shed_enabled);
	assert_int_equal(c.access_log, CP_ALOG_SAMPLED);
	assert_int_equal(c.access_log_sample, 7);
	assert_int_equal(c.access_log_ring, 128);
	cp_config_free(&c);
	expect_error("logging: { access_log: loud }\n", "expected off, all, errors or sampled", 1);
	expect_error("logging: { access_log_ring: 100 }\n", "not a power of two", 1);
}

static void
test_config_print_round_trips_tokens_and_strings(void **state)
{
	static const char digest[] =
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	struct cp_config a, b;
	char err[512], *text = NULL, yaml[1024];
	size_t len = 0;
	FILE *f;

	(void)state;
	snprintf(yaml, sizeof(yaml),
		 "auth:\n  enabled: true\n  tokens:\n"
		 "    - { name: ci, sha256: \"%s\", permission: admin }\n"
		 "dataplane:\n  eal_args: [\"--vdev=net_null0,a=\\\"b\\\"\"]\n"
		 "pipelines:\n  q:\n    - type: gain\n      params: { db: \"-6 \\\\ x\" }\n",
		 digest);
	cp_config_init(&a);
	assert_int_equal(cp_config_load_file(&a, write_tmp(yaml), err, sizeof(err)), 0);
	unlink(g_path);
	f = open_memstream(&text, &len);
	cp_config_print(f, &a);
	fclose(f);
	cp_config_init(&b);
	if (cp_config_load_buffer(&b, "printed", text, len, err, sizeof(err)) != 0)
		fail_msg("printed config does not load: %s\n%s", err, text);
	assert_true(b.auth.enabled);
	assert_int_equal(b.auth.n, 1);
	assert_memory_equal(b.auth.tokens[0].digest, a.auth.tokens[0].digest,
			    sizeof(a.auth.tokens[0].digest));
	assert_int_equal(b.auth.tokens[0].perm, CP_PERM_ADMIN);
	assert_int_equal(b.n_eal_args, 1);
	assert_string_equal(b.eal_args[0], "--vdev=net_null0,a=\"b\"");
	assert_string_equal(b.pipelines[0].spec.nodes[0].params[0].value, "-6 \\ x");
	free(text);
	cp_config_free(&a);
	cp_config_free(&b);
}

static void
test_config_pools(void **state)
{
	struct cp_config c;
	char err[512];

	(void)state;
	cp_config_init(&c);
	assert_int_equal(c.dp.pools.n_classes, 5); /* the built-in classes */
	assert_int_equal(
	    cp_config_load_file(&c,
				write_tmp("dataplane:\n  pools:\n    - { size: 1024, count: 100 }\n"
					  "    - { size: 0x10000, count: 8 }\n"),
				err, sizeof(err)),
	    0);
	unlink(g_path);
	assert_int_equal(c.dp.pools.n_classes, 2);
	assert_int_equal(c.dp.pools.classes[1].size, 65536);
	assert_int_equal(c.dp.pools.classes[1].count, 8);
	cp_config_free(&c);
	expect_error("dataplane:\n  pools:\n    - { size: 4096, count: 1 }\n"
		     "    - { size: 1024, count: 1 }\n",
		     "sizes must ascend", 4);
	expect_error("dataplane:\n  pools:\n    - { size: 16777216, count: 100 }\n",
		     "more than the 384 MiB", 3);
	expect_error("dataplane:\n  pools:\n    - { size: 512, cnt: 1 }\n", "unknown key 'cnt'", 3);
}

static void
test_config_ports(void **state)
{
	struct cp_config c;
	char err[512];

	(void)state;
	cp_config_init(&c);
	assert_int_equal(c.udp.n_ports, 0);
	assert_int_equal(
	    cp_config_load_file(
		&c,
		write_tmp(
		    "dataplane:\n  ports:\n"
		    "    - { name: tap0, device: \"net_tap0,iface=cp0\", address: 10.1.2.3/24,"
		    " udp_port: 9000 }\n"
		    "    - name: nic\n      device: \"0000:03:00.0\"\n"
		    "      address: 192.0.2.7\n      udp_port: 9001\n      mtu: 9000\n"
		    "      queues: 2\n      rx_desc: 2048\n"),
		err, sizeof(err)),
	    0);
	unlink(g_path);
	assert_int_equal(c.udp.n_ports, 2);
	assert_string_equal(c.udp.ports[0].name, "tap0");
	assert_string_equal(c.udp.ports[0].devargs, "net_tap0,iface=cp0");
	assert_int_equal(c.udp.ports[0].ip, 0x0a010203u);
	assert_int_equal(c.udp.ports[0].prefix_len, 24);
	assert_int_equal(c.udp.ports[0].udp_port, 9000);
	assert_int_equal(c.udp.ports[0].mtu, 0); /* default, 1500, applied by the port */
	assert_int_equal(c.udp.ports[1].ip, 0xc0000207u);
	assert_int_equal(c.udp.ports[1].prefix_len, 32);
	assert_int_equal(c.udp.ports[1].mtu, 9000);
	assert_int_equal(c.udp.ports[1].queues, 2);
	assert_int_equal(c.udp.ports[1].rx_desc, 2048);
	assert_true(dp_port_devargs_is_vdev(c.udp.ports[0].devargs));
	assert_false(dp_port_devargs_is_vdev(c.udp.ports[1].devargs));
	cp_config_free(&c);
	expect_error("dataplane:\n  ports:\n    - { name: a, device: net_tap0, udp_port: 9 }\n",
		     "name, device, address and udp_port are required", 3);
	expect_error(
	    "dataplane:\n  ports:\n    - { name: a, device: net_tap0, address: 10.0.0.1/33,"
	    " udp_port: 9 }\n",
	    "expected an IPv4 address", 3);
	expect_error("dataplane:\n  ports:\n    - { name: a, device: net_tap0, address: 10.0.0.1,"
		     " udp_port: 70000 }\n",
		     "udp_port: 70000 out of range", 3);
	expect_error("dataplane:\n  ports:\n    - { name: a, device: net_tap0, address: 10.0.0.1,"
		     " udp_port: 9, speed: 10 }\n",
		     "unknown key 'speed'", 3);
	expect_error("dataplane:\n  ports:\n"
		     "    - { name: a, device: net_tap0, address: 10.0.0.1, udp_port: 9 }\n"
		     "    - { name: a, device: net_tap1, address: 10.0.0.2, udp_port: 9 }\n",
		     "duplicate name 'a'", 4);
	expect_error("dataplane:\n  ports: 3\n", "expected a list of ports", 2);
}

/* Finding 17: a port above 65535 is an error in the file, the environment and after the flags
 * (getaddrinfo would wrap 117537 to 52001). */
static void
test_config_listen_ports_validated(void **state)
{
	static const char *const env_bad[] = {"COREPIPE_SERVER_GRPC_LISTEN", "127.0.0.1:117537",
					      NULL};
	static const char *const good[] = {"127.0.0.1:0",  "127.0.0.1:65535", "[::1]:50051",
					   ":8080",	   "localhost:1",     "unix:/tmp/cp.sock",
					   "0.0.0.0:00080"};
	static const char *const bad[] = {"127.0.0.1:117537",
					  "127.0.0.1:65536",
					  "[::1]:70000",
					  "127.0.0.1:",
					  "127.0.0.1",
					  "::1:80",
					  "localhost:http",
					  "h:-1",
					  "h:1 ",
					  "unix:",
					  "[::1]80",
					  ""};
	struct cp_config c;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (cp_config_listen_check(good[i], CP_LISTEN_UNIX, err, sizeof(err)) != 0)
			fail_msg("'%s' refused: %s", good[i], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cp_config_listen_check(bad[i], CP_LISTEN_UNIX, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(cp_config_listen_check("", CP_LISTEN_EMPTY, err, sizeof(err)), 0);
	assert_int_equal(cp_config_listen_check("unix:/x", CP_LISTEN_EMPTY, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(cp_config_listen_check("h:117537", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "port 117537 out of range [0, 65535]"));

	expect_error("server:\n  grpc_listen: \"127.0.0.1:117537\"\n", "out of range [0, 65535]",
		     2);
	expect_error("server:\n  metrics_listen: \"127.0.0.1:99999\"\n", "out of range", 2);
	expect_error("tls:\n  plaintext_listen: \"127.0.0.1:70000\"\n", "out of range", 2);
	cp_config_init(&c);
	g_env = env_bad;
	assert_int_equal(cp_config_apply_env(&c, fake_get, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "COREPIPE_SERVER_GRPC_LISTEN"));
	assert_string_equal(c.grpc_listen, "127.0.0.1:50051");
	/* What the command line set (corepiped -g) is checked after the flags. */
	snprintf(c.grpc_listen, sizeof(c.grpc_listen), "127.0.0.1:117537");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "server.grpc_listen"));
	snprintf(c.grpc_listen, sizeof(c.grpc_listen), "127.0.0.1:0");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	cp_config_free(&c);
}

static void
test_config_registry_store_needs_a_state_file(void **state)
{
	struct cp_config c;
	char err[256];
	const char *path;

	(void)state;
	expect_error("registry:\n  store: etcetera\n", "expected memory, file or etcd", 2);
	path = write_tmp("registry:\n  store: file\n  state_file: /tmp/x.state\n");
	cp_config_init(&c);
	assert_int_equal(c.registry_store, CP_STORE_MEMORY);
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(cp_config_load_file(&c, path, err, sizeof(err)), 0);
	assert_int_equal(c.registry_store, CP_STORE_FILE);
	assert_string_equal(c.state_file, "/tmp/x.state");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	c.state_file[0] = '\0';
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "registry.state_file"));
	c.registry_store = CP_STORE_ETCD;
	assert_string_equal(c.etcd.endpoints, "127.0.0.1:2379");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	c.etcd.endpoints[0] = '\0';
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "registry.etcd_endpoint"));
	snprintf(c.etcd.endpoints, sizeof(c.etcd.endpoints), "10.0.0.1:2379,10.0.0.2:2379");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	/* TLS to etcd: a client certificate goes with its key, and both with a CA. */
	snprintf(c.etcd.cert_file, sizeof(c.etcd.cert_file), "/x/client.pem");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "registry.etcd_key_file"));
	snprintf(c.etcd.key_file, sizeof(c.etcd.key_file), "/x/client.key");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "registry.etcd_ca_file"));
	snprintf(c.etcd.ca_file, sizeof(c.etcd.ca_file), "/x/ca.pem");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	/* Auth: a user goes with a password file. */
	snprintf(c.etcd.user, sizeof(c.etcd.user), "root");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "registry.etcd_password_file"));
	snprintf(c.etcd.password_file, sizeof(c.etcd.password_file), "/x/pw");
	assert_int_equal(cp_config_validate(&c, err, sizeof(err)), 0);
	cp_config_free(&c);
	unlink(path);
}

/* Finding 16: "passthrough\0zz" must not name passthrough. */
static void
test_config_nul_byte_in_a_scalar_is_an_error(void **state)
{
	(void)state;
	expect_error("pipelines:\n  p:\n    - type: \"passthrough\\0zz\"\n", "a NUL byte", 3);
	expect_error("pipelines:\n  p:\n    - type: gain\n      params: { \"db\\0x\": 1 }\n",
		     "a NUL byte", 4);
	expect_error("server:\n  grpc_listen: \"127.0.0.1:1\\0junk\"\n", "a NUL byte", 2);
	expect_error("auth:\n  tokens:\n    - { name: \"a\\0b\", sha256: x }\n", "a NUL byte", 3);
}

/* Finding 7: a FIFO (or directory, or device) is an error naming it, at once: opening a FIFO
 * for reading used to wait for a writer. The alarm turns a hang into a failure. */
static void
test_config_load_refuses_fifo_directory_device(void **state)
{
	struct cp_config c;
	char err[256], fifo[] = "/tmp/cp_test_fifo_XXXXXX";
	int fd;

	(void)state;
	fd = mkstemp(fifo);
	assert_true(fd >= 0);
	close(fd);
	unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	cp_config_init(&c);
	alarm(20);
	assert_int_equal(cp_config_load_file(&c, fifo, err, sizeof(err)), -EINVAL);
	alarm(0);
	assert_non_null(strstr(err, fifo));
	assert_non_null(strstr(err, "a FIFO, not a regular file"));
	assert_int_equal(cp_config_load_file(&c, "/tmp", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a directory"));
	assert_int_equal(cp_config_load_file(&c, "/dev/zero", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a character device"));
	assert_string_equal(c.grpc_listen, "127.0.0.1:50051");
	cp_config_free(&c);
	unlink(fifo);
}

/* Finding 3: what a reload loads must have content; at start an empty file still means the
 * defaults (the documented embedded configuration). */
static void
test_config_nonempty_flag_refuses_empty_documents(void **state)
{
	static const char *const empty[] = {"", "\n", "# only a comment\n", "---\n", "  \n# x\n"};
	struct cp_config c;
	char err[256];

	(void)state;
	cp_config_init(&c);
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		if (cp_config_load_buffer_ex(&c, "r.yaml", empty[i], strlen(empty[i]),
					     CP_CONFIG_NONEMPTY, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", empty[i]);
		assert_non_null(strstr(err, "the file is empty"));
		assert_int_equal(cp_config_load_buffer_ex(&c, "r.yaml", empty[i], strlen(empty[i]),
							  0, err, sizeof(err)),
				 0);
	}
	cp_config_free(&c);
}

static void
load_text(struct cp_config *c, const char *text)
{
	char err[512];

	cp_config_init(c);
	if (cp_config_load_buffer_ex(c, "new.yaml", text, strlen(text), CP_CONFIG_NONEMPTY, err,
				     sizeof(err)) != 0)
		fail_msg("%s", err);
}

#define DIGEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

/* Finding 3: weakening security needs the key written down; a file that is merely missing it
 * (empty, truncated, section gone) is refused. */
static void
test_config_security_check_fails_closed(void **state)
{
	static const char live_text[] =
	    "auth:\n  enabled: true\n  metrics: true\n  health_open: false\n"
	    "  tokens:\n    - { name: ops, sha256: " DIGEST ", permission: admin }\n"
	    "tls:\n  cert_file: /c.pem\n  key_file: /k.pem\n  client_ca_file: /ca.pem\n"
	    "  require_client_cert: true\n";
	static const struct {
		const char *text;
		int rc;
		const char *what;
	} cases[] = {
	    {"logging: { level: info }\n", -EPERM, "turns authentication off"},
	    {"pipelines:\n  p:\n    - type: passthrough\n", -EPERM, "turns authentication off"},
	    {"auth:\n  health_open: false\n", -EPERM, "turns authentication off"},
	    {"auth:\n  enabled: false\n  metrics: true\n  health_open: false\n", -EPERM,
	     "disables TLS"},

	    {"auth:\n  enabled: false\n  tokens: []\n  metrics: true\n  health_open: false\n",
	     -EPERM, "disables TLS"},
	    {live_text, 0, NULL},
	};
	const char *weak[CP_CONFIG_WEAKEN_MAX];
	struct cp_config live, neu;
	unsigned n;
	char err[512];

	(void)state;
	load_text(&live, live_text);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_text(&neu, cases[i].text);
		assert_int_equal(cp_config_security_check(&live, &neu, weak, &n, err, sizeof(err)),
				 cases[i].rc);
		if (cases[i].what != NULL && strstr(err, cases[i].what) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].what);
		cp_config_free(&neu);
	}
	/* Everything off, each said explicitly: allowed, and every weakening reported. */
	load_text(&neu, "auth:\n  enabled: false\n  tokens: []\n  metrics: false\n"
			"  health_open: true\n"
			"tls:\n  cert_file: \"\"\n  key_file: \"\"\n  client_ca_file: \"\"\n"
			"  require_client_cert: false\n");
	assert_int_equal(cp_config_security_check(&live, &neu, weak, &n, err, sizeof(err)), 0);
	/* All but tls.required (stayed true) and the tokens (implied by auth off). */
	assert_int_equal(n, 6);
	cp_config_free(&neu);
	/* From the environment counts as explicit too. */
	{
		static const char *const env[] = {"COREPIPE_AUTH_ENABLED", "false", NULL};

		load_text(&neu, "auth:\n  metrics: true\n");
		g_env = env;
		assert_int_equal(cp_config_apply_env(&neu, fake_get, err, sizeof(err)), 0);
		assert_true(neu.explicit_keys & CP_KEY_AUTH_ENABLED);
		cp_config_free(&neu);
	}
	cp_config_free(&live);
}

/* ---- The key table drives reload classification, the live copy and the reference -------- */

struct diff_seen {
	unsigned n;
	char key[64];
	bool live;
};

static void
diff_record(const char *key, bool live, void *arg)
{
	struct diff_seen *d = arg;

	d->n++;
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->live = live;
}

/* What a reload applies live: every other setting needs a restart (reload.h). */
static const char *const g_live_keys[] = {
    "server.shutdown_delay_ms",
    "server.shutdown_grace_ms",
    "limits.max_nodes",
    "limits.default_timeout_ms",
    "limits.max_timeout_ms",
    "limits.shed_high_water_pct",
    "limits.shed_low_water_pct",
    "limits.shed_busy_pct",
    "limits.shed_window_ms",
    "limits.stream_window",
    "limits.max_in_flight",
    "limits.max_request_memory_mb",
    "limits.memory_budget_mb",
    "limits.shed_enabled",
    "auth.enabled",
    "auth.health_open",
    "auth.metrics",
    "auth.token_file",
    "auth.tokens",
    "auth.high_priority_tokens",
    "logging.level",
    "logging.access_log",
    "logging.access_log_sample",
};

static bool
is_live_key(const char *name)
{
	for (size_t i = 0; i < sizeof(g_live_keys) / sizeof(g_live_keys[0]); i++)
		if (strcmp(g_live_keys[i], name) == 0)
			return true;
	return false;
}

/* Change setting @p k of @p b (a shallow copy of a default config; lists point at statics). */
static void
mutate(struct cp_config *b, const struct cp_config_setting *k)
{
	static char *eal[] = {"--vdev=net_null0"};
	static struct cp_auth_token tok = {.name = "t"};

	if (!k->list) {
		((unsigned char *)b)[k->off] ^= 1; /* a number, bool, enum or string's first byte */
	} else if (strcmp(k->name, "dataplane.eal_args") == 0) {
		b->eal_args = eal;
		b->n_eal_args = 1;
	} else if (strcmp(k->name, "auth.tokens") == 0) {
		b->auth.tokens = &tok;
		b->auth.n = 1;
	} else if (strcmp(k->name, "dataplane.pools") == 0) {
		b->dp.pools.n_classes--;
	} else if (strcmp(k->name, "dataplane.ports") == 0) {
		b->udp.n_ports = 1;
	} else {
		fail_msg("a list setting the test does not know: %s", k->name);
	}
}

static void
test_config_diff_reports_every_key_with_its_class(void **state)
{
	struct cp_config a;
	struct cp_config_setting k;
	unsigned i, n_live = 0;

	(void)state;
	cp_config_init(&a);
	assert_int_equal(cp_config_diff(&a, &a, diff_record, NULL), 0);
	for (i = 0; cp_config_key_at(i, &k) == 0; i++) {
		struct cp_config b = a;
		struct diff_seen d = {0};

		mutate(&b, &k);
		/* Exactly this key, in the class the table gives it, both ways round. */
		assert_int_equal(cp_config_diff(&a, &b, diff_record, &d), 1);
		assert_string_equal(d.key, k.name);
		assert_int_equal(d.live, k.live);
		assert_int_equal(cp_config_diff(&b, &a, NULL, NULL), 1);
		if (k.live != is_live_key(k.name))
			fail_msg("%s: the table says %s", k.name, k.live ? "live" : "restart");
		n_live += k.live;
	}
	assert_true(i >= 70); /* every section's keys (76 today), not an empty table */
	assert_int_equal(n_live, sizeof(g_live_keys) / sizeof(g_live_keys[0]));
	assert_int_equal(cp_config_key_at(i, &k), -ENOENT);
	cp_config_free(&a);
}

static void
test_config_copy_live_copies_only_live_scalars(void **state)
{
	struct cp_config def, neu, run;
	struct cp_config_setting k;

	(void)state;
	cp_config_init(&def);
	neu = def;
	run = def;
	for (unsigned i = 0; cp_config_key_at(i, &k) == 0; i++)
		if (!k.list)
			((unsigned char *)&neu)[k.off] ^= 1;
	cp_config_copy_live(&run, &neu);
	for (unsigned i = 0; cp_config_key_at(i, &k) == 0; i++) {
		const struct cp_config *want = k.live && !k.list ? &neu : &def;

		if (!k.list &&
		    memcmp((char *)&run + k.off, (const char *)want + k.off, k.size) != 0)
			fail_msg("%s: %s", k.name,
				 k.live ? "live but not copied" : "needs a restart but was copied");
	}
	cp_config_free(&def);
}

static void
test_config_reference_has_one_row_per_key(void **state)
{
	struct cp_config_setting k;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	cp_config_print_reference(f);
	fclose(f);
	for (unsigned i = 0; cp_config_key_at(i, &k) == 0; i++) {
		char row[96];
		const char *at, *end;

		snprintf(row, sizeof(row), "\n| `%s` | ", k.name);
		at = strstr(text, row);
		if (at == NULL)
			fail_msg("no reference row for %s", k.name);
		assert_null(strstr(at + 1, row)); /* once */
		end = strchr(at + 1, '\n');
		snprintf(row, sizeof(row), "` | %s | ", k.live ? "live" : "restart");
		if (strstr(at, row) == NULL || strstr(at, row) > end)
			fail_msg("%s: the reference row lacks '%s'", k.name, row);
	}
	/* A default taken from the module that owns it (dataplane.ring_size: 1024). */
	assert_non_null(
	    strstr(text, "| `dataplane.ring_size` | power of two 64..65536 | `1024` |"));
	free(text);
}

/*
 * The server reads its restart-only settings in place from the running configuration
 * (control/grpc_server.h, struct cp_server_conf): a reload must never write them, so none of
 * them may be live. Making one live needs it moved to cp_live first.
 */
static void
test_config_server_read_in_place_keys_are_not_live(void **state)
{
	static const struct {
		size_t off, size;
	} in_place[] = {
#define M(f) {offsetof(struct cp_config, f), sizeof(((struct cp_config *)0)->f)}
	    M(grpc_listen),
	    M(max_message_bytes),
	    M(max_concurrent_streams),
	    M(max_connections),
	    M(max_connections_per_peer),
	    M(handshake_timeout_ms),
	    M(max_connection_idle_ms),
	    M(max_connection_age_ms),
	    M(inline_max_us),
	    M(frontend_spin_us),
	    M(max_response_bytes),
	    M(max_cancels_per_second),
	    M(keepalive),
	    M(tls),
#undef M
	};
	struct cp_config_setting k;
	unsigned seen = 0;

	(void)state;
	for (unsigned i = 0; cp_config_key_at(i, &k) == 0; i++) {
		if (k.list)
			continue;
		for (size_t j = 0; j < sizeof(in_place) / sizeof(in_place[0]); j++) {
			if (k.off < in_place[j].off || k.off >= in_place[j].off + in_place[j].size)
				continue;
			seen++;
			if (k.live)
				fail_msg("%s: live, but the server reads it in place", k.name);
		}
	}
	/* The twelve scalars, the keepalive keys and the tls keys were all found. */
	assert_true(seen >= sizeof(in_place) / sizeof(in_place[0]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_init_defaults),
	    cmocka_unit_test(test_config_load_full_file),
	    cmocka_unit_test(test_config_load_shipped_example),
	    cmocka_unit_test(test_config_load_empty_file_keeps_defaults),
	    cmocka_unit_test(test_config_load_missing_file),
	    cmocka_unit_test(test_config_load_errors_name_file_and_line),
	    cmocka_unit_test(test_config_env_overrides_file),
	    cmocka_unit_test(test_config_print_round_trips),
	    cmocka_unit_test(test_config_pools),
	    cmocka_unit_test(test_config_ports),
	    cmocka_unit_test(test_config_listen_ports_validated),
	    cmocka_unit_test(test_config_nul_byte_in_a_scalar_is_an_error),
	    cmocka_unit_test(test_config_load_refuses_fifo_directory_device),
	    cmocka_unit_test(test_config_nonempty_flag_refuses_empty_documents),
	    cmocka_unit_test(test_config_security_check_fails_closed),
	    cmocka_unit_test(test_config_reports_every_schema_error),
	    cmocka_unit_test(test_config_errors_beyond_the_buffer_are_counted),
	    cmocka_unit_test(test_config_unknown_environment_is_an_error),
	    cmocka_unit_test(test_config_locate_search_order),
	    cmocka_unit_test(test_config_keepalive_shed_and_access_log),
	    cmocka_unit_test(test_config_print_round_trips_tokens_and_strings),
	    cmocka_unit_test(test_config_registry_store_needs_a_state_file),
	    cmocka_unit_test(test_config_diff_reports_every_key_with_its_class),
	    cmocka_unit_test(test_config_copy_live_copies_only_live_scalars),
	    cmocka_unit_test(test_config_server_read_in_place_keys_are_not_live),
	    cmocka_unit_test(test_config_reference_has_one_row_per_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

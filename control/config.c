/*
 * YAML configuration loader (libyaml document API + declarative key tables).
 *
 * One row per setting is the single source of what a setting is: its name, type, bounds,
 * default, whether a reload applies it live, and its documentation. The defaults
 * (cp_config_init), the loader, the environment overrides, --print-config, the reload report
 * (cp_config_diff), the live part of a reload (cp_config_copy_live) and the reference table of
 * docs/configuration.md (cp_config_print_reference, `make docs`) are all derived from the rows.
 *
 * Adding a setting: add a field to struct cp_config and a row to its section's table; run
 * `make docs`. Types are parsed by one function each; bounds live in the rows.
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

/* Lists: set in the file only (no environment override), compared and printed specially. */
#define F_IS_LIST(t) ((t) == F_STRLIST || (t) == F_TOKENS || (t) == F_POOLS || (t) == F_PORTS)

struct field {
	const char *name;
	enum ftype type;
	size_t off, size; /* the member of struct cp_config (lists: 0, handled by type) */
	uint64_t min, max;
	uint32_t key;	  /* CP_KEY_* bit recorded in explicit_keys when the file or env sets it */
	uint64_t def;	  /* default of a number, bool or enum */
	const char *sdef; /* default of a string (NULL: "") */
	bool module_default; /* the default is the owning module's (dp_dataplane_conf_default,
				dp_udp_conf_default, cp_http_limits_default), not def/sdef */
	bool live;	     /* a reload applies a change at once (else: reported, needs restart) */
	const char *doc;     /* the reference's "meaning" column (Markdown) */
};

#define CFG(f) .off = offsetof(struct cp_config, f), .size = sizeof(((struct cp_config *)0)->f)

static const struct field server_fields[] = {
    {.name = "grpc_listen",
     .type = F_LISTEN,
     CFG(grpc_listen),
     .min = CP_LISTEN_UNIX,
     .sdef = "127.0.0.1:50051",
     .doc = "gRPC listen address (`host:port`, `[::1]:port`, `unix:/path`); the port is a decimal "
	    "number 0..65535 (file, environment and `-g` alike: `127.0.0.1:117537` stops corepiped "
	    "with exit code 2, it is never wrapped); port 0 picks a free port, reported in the "
	    "`serving` log line as `grpc_port`"},
    {.name = "metrics_listen",
     .type = F_LISTEN,
     CFG(metrics_listen),
     .min = CP_LISTEN_EMPTY,
     .sdef = "127.0.0.1:29051",
     .doc =
	 "HTTP endpoint for `/metrics` (Prometheus), `/healthz`, `/readyz` (docs/operations.md); "
	 "`\"\"` disables it; `host:port` with a port 0..65535 as for `grpc_listen`; port 0 picks "
	 "a free port, reported in the `serving` log line as `metrics_port`"},
    {.name = "metrics_max_connections",
     .type = F_U32,
     CFG(http.max_connections),
     .min = 1,
     .max = CP_HTTP_CONN_MAX,
     .module_default = true,
     .doc = "connections to the HTTP endpoint at once; the last quarter is kept for peers that "
	    "have none yet (docs/operations.md, \"Metrics and probes\")"},
    {.name = "metrics_max_connections_per_peer",
     .type = F_U32,
     CFG(http.max_per_peer),
     .min = 1,
     .max = CP_HTTP_CONN_MAX,
     .module_default = true,
     .doc = "connections to the HTTP endpoint from one peer (IPv4 address, or IPv6 /64) at once"},
    {.name = "metrics_header_timeout_ms",
     .type = F_U32,
     CFG(http.header_timeout_ms),
     .min = 100,
     .max = 600000,
     .module_default = true,
     .doc = "an HTTP request's headers must be complete this long after its connection was "
	    "accepted (no byte resets it), else the connection is closed"},
    {.name = "metrics_request_timeout_ms",
     .type = F_U32,
     CFG(http.request_timeout_ms),
     .min = 100,
     .max = 3600000,
     .module_default = true,
     .doc = "an HTTP connection is closed this long after it was accepted, whatever it does (one "
	    "request per connection)"},
    {.name = "max_message_bytes",
     .type = F_U32,
     CFG(max_message_bytes),
     .min = 1024,
     .max = 64u << 20,
     .def = 4u << 20,
     .doc = "largest request message (a stream's frames included); larger ones get "
	    "`RESOURCE_EXHAUSTED` from gRPC. Also the default `max_bytes` of `zstd_decompress`"},
    {.name = "responder_spin_us",
     .type = F_U32,
     CFG(responder_spin_us),
     .max = 1000000,
     .doc = "deprecated and ignored (there is no responder thread since the front ends answer "
	    "their own calls); accepted so that old files still load"},
    {.name = "frontends",
     .type = F_U32,
     CFG(frontends),
     .max = DP_FRONTENDS_MAX,
     .doc = "front-end lcores: each serves gRPC from a completion queue of its own and runs small "
	    "requests itself (docs/ARCHITECTURE.md, \"Reactors\"); 0 = one per 8 usable CPUs, at "
	    "least 1. `--frontends` overrides it"},
    {.name = "inline_max_us",
     .type = F_U32,
     CFG(inline_max_us),
     .max = 1000000,
     .def = 20,
     .doc = "a request whose estimated cost (the pipeline's learned cost per byte × its size) is "
	    "at most this runs inline on the front end that received it; larger ones are handed to "
	    "a worker lcore. 0: hand over everything that can be"},
    {.name = "frontend_spin_us",
     .type = F_U32,
     CFG(frontend_spin_us),
     .max = 1000000,
     .def = 200,
     .doc = "a front end with requests out at workers keeps polling (no sleep, no wake-up) this "
	    "long without progress, plus the estimated cost of the work it has out (up to "
	    "`frontend_spin_max_us`), then waits in its completion queue 1 ms at a time"},
    {.name = "frontend_spin_max_us",
     .type = F_U32,
     CFG(frontend_spin_max_us),
     .max = 1000000,
     .def = 2000,
     .doc = "the most of the estimated cost of the work a front end has out at workers that it "
	    "polls for beyond `frontend_spin_us`: an answer due within it goes out with no "
	    "millisecond wait; longer work is waited for 1 ms at a time (0: `frontend_spin_us` "
	    "only)"},
    {.name = "max_response_bytes",
     .type = F_U32,
     CFG(max_response_bytes),
     .min = 1u << 20,
     .max = 4095u << 20,
     .def = 256u << 20,
     .doc = "reply bytes held at once per front end (stream responses not yet read by their "
	    "clients included): at three quarters of it the front end stops reading streams until "
	    "their clients read, at all of it new unary calls get `RESOURCE_EXHAUSTED` with "
	    "pushback; memory stays bounded however many clients do not read, and streams that do "
	    "not read cannot lock unary calls out"},
    {.name = "max_connections_per_peer",
     .type = F_U32,
     CFG(max_connections_per_peer),
     .max = 1000000,
     .doc = "client TCP connections from one IP address at once (0: no limit beyond "
	    "`max_connections`); over it a connection is closed on accept and counted"},
    {.name = "handshake_timeout_ms",
     .type = F_U32,
     CFG(handshake_timeout_ms),
     .min = 100,
     .max = 600000,
     .def = 10000,
     .doc = "a new connection must complete its TLS and HTTP/2 handshake within this time, else it "
	    "is closed (bare TCP connections that send nothing do not hold a slot)"},
    {.name = "shutdown_delay_ms",
     .type = F_U32,
     CFG(shutdown_delay_ms),
     .max = 600000,
     .live = true,
     .doc = "lame duck: after SIGTERM, health says `NOT_SERVING` at once but everything is served "
	    "for this long, so load balancers stop sending first (Kubernetes: a little more than "
	    "the readiness probe period)"},
    {.name = "takeover_socket",
     .type = F_STR,
     CFG(takeover_socket),
     .doc = "hitless restart: a unix socket path. At start corepiped asks a running corepiped "
	    "listening there for its listening sockets (gRPC and metrics; those whose configured "
	    "address is the same string are adopted, the others bound) and, once it serves, tells "
	    "it to drain; then it offers its own sockets there for the next restart. `\"\"`: off "
	    "(docs/operations.md, \"Running a fleet\")"},
    {.name = "max_cancels_per_second",
     .type = F_U32,
     CFG(max_cancels_per_second),
     .max = 10000000,
     .def = 1000,
     .doc = "rapid-reset defence: a connection whose client cancels more calls than this within a "
	    "second is closed (logged at most once a second, counted in "
	    "`corepipe_connections_closed_total{reason=\"cancel_flood\"}`); 0: no limit"},
    {.name = "max_concurrent_streams",
     .type = F_U32,
     CFG(max_concurrent_streams),
     .min = 1,
     .max = 1000000,
     .def = 256,
     .doc = "concurrent calls per HTTP/2 connection (advertised in SETTINGS)"},
    {.name = "shutdown_grace_ms",
     .type = F_U32,
     CFG(shutdown_grace_ms),
     .max = 3600000,
     .def = 30000,
     .live = true,
     .doc = "after SIGTERM/SIGINT, calls still open this long are cancelled "
	    "(`UNAVAILABLE`/`CANCELLED` to the client)"},
    {.name = "max_connections",
     .type = F_U32,
     CFG(max_connections),
     .min = 1,
     .max = 1000000,
     .def = 2048,
     .doc = "client TCP connections at once; further connections are closed on accept (the client "
	    "sees UNAVAILABLE). Not enforced for `unix:` addresses"},
    {.name = "max_connection_idle_ms",
     .type = F_U32,
     CFG(max_connection_idle_ms),
     .max = 2000000000,
     .def = 600000,
     .doc = "close connections with no call for this long (0: never)"},
    {.name = "max_connection_age_ms",
     .type = F_U32,
     CFG(max_connection_age_ms),
     .max = 2000000000,
     .def = 3600000,
     .doc = "send GOAWAY to connections this old (calls on them get 30 s to finish; clients "
	    "reconnect, which lets load balancers rebalance; 0: never)"},
    {.name = "keepalive_time_ms",
     .type = F_U32,
     CFG(keepalive.time_ms),
     .max = 2000000000,
     .def = 60000,
     .doc = "the server pings a connection idle this long, to find dead peers (0: never)"},
    {.name = "keepalive_timeout_ms",
     .type = F_U32,
     CFG(keepalive.timeout_ms),
     .min = 1000,
     .max = 600000,
     .def = 20000,
     .doc = "... and closes it when the ping is not acknowledged within this time"},
    {.name = "keepalive_permit_without_calls",
     .type = F_BOOL,
     CFG(keepalive.permit_without_calls),
     .doc = "pings on a connection with no call open are allowed: clients may send them (else they "
	    "count as abuse) and the server sends its own"},
    {.name = "keepalive_min_ping_interval_ms",
     .type = F_U32,
     CFG(keepalive.min_ping_interval_ms),
     .max = 2000000000,
     .def = 10000,
     .doc = "clients may not ping more often than this without data (two strikes, then GOAWAY "
	    "`too_many_pings`); a client's keepalive time must be at least this"},
    {.name = NULL},
};

static const struct field dataplane_fields[] = {
    {.name = "workers",
     .type = F_U32,
     CFG(workers),
     .max = DP_WORKERS_MAX,
     .doc = "worker-only lcores besides the front ends; 0 = every usable CPU the front ends leave "
	    "(only `--workers 0` means none)"},
    {.name = "lcores",
     .type = F_STR,
     CFG(lcores),
     .doc = "explicit EAL lcore map (`--lcores` syntax, e.g. `0@0,1@1,2@1`); the first "
	    "`server.frontends` lcores are front ends (lcore 0 also runs control), the rest "
	    "workers. Overrides `workers`"},
    {.name = "idle_policy",
     .type = F_IDLE,
     CFG(dp.worker.idle),
     .module_default = true,
     .doc = "what a worker does when its ring is empty (docs/ARCHITECTURE.md)"},
    {.name = "spin_us",
     .type = F_U32,
     CFG(dp.worker.spin_us),
     .max = 1000000,
     .module_default = true,
     .doc = "adaptive: keep polling this long after the last work before sleeping"},
    {.name = "yield_us",
     .type = F_U32,
     CFG(dp.worker.yield_us),
     .max = 1000000,
     .module_default = true,
     .doc = "a polling lcore (worker, or front end waiting for handed-over work) that has found "
	    "no work for this long yields its CPU between polls (`sched_yield`), so a thread "
	    "sharing the CPU runs at once; 0: yield at once. Not under `idle_policy: spin`"},
    {.name = "sleep_max_us",
     .type = F_U32,
     CFG(dp.worker.sleep_max_us),
     .min = 10,
     .max = 10000000,
     .module_default = true,
     .doc =
	 "longest sleep before a worker looks again (wake-ups are explicit; this is a safety net)"},
    {.name = "ring_size",
     .type = F_POW2,
     CFG(dp.worker.ring_size),
     .min = 64,
     .max = 65536,
     .module_default = true,
     .doc = "per-worker ingress and completion ring depth, and the per-worker in-flight limit"},
    {.name = "quantum_us",
     .type = F_U32,
     CFG(dp.worker.quantum_us),
     .max = 100000,
     .module_default = true,
     .doc = "bulk lane quantum: a request whose estimated cost is above it (or whose input is 64 "
	    "KiB or more) runs one quantum per worker pass, with small work and the front end "
	    "served between quanta, and its deadline and cancel checked (docs/ARCHITECTURE.md, "
	    "\"Fair execution\"); 0 turns the lane off (every request runs whole)"},
    {.name = "lane_share",
     .type = F_U32,
     CFG(dp.worker.lane_share),
     .min = 1,
     .max = 64,
     .module_default = true,
     .doc = "while bulk work waits, small work (the latency lane) gets up to this many quanta of a "
	    "worker's time per bulk quantum: 3 small : 1 large"},
    {.name = "max_in_flight",
     .type = F_U32,
     CFG(dp.max_in_flight),
     .min = 16,
     .max = 1u << 20,
     .module_default = true,
     .doc = "requests inside the dataplane at once (descriptor pool size)"},
    {.name = "max_streams_per_worker",
     .type = F_U32,
     CFG(dp.max_streams_per_worker),
     .min = 1,
     .max = 65536,
     .module_default = true,
     .doc =
	 "stream slots per worker (4.2 KiB each, on the worker's NUMA socket): open ExecuteStream "
	 "streams plus stateful unary calls running; beyond it `open` is `RESOURCE_EXHAUSTED`"},
    {.name = "eal_args",
     .type = F_STRLIST,
     CFG(eal_args),
     .doc = "extra EAL arguments, after the built-in ones"},
    {.name = "pools",
     .type = F_POOLS,
     .module_default = true,
     .doc = "payload buffer classes, `[{ size: BYTES, count: N }, ...]`: sizes ascending, 1..8 "
	    "classes, at most 384 MiB in all (the EAL has 512 MiB); a list, file only. A request "
	    "takes the smallest class that fits (a larger one when that class is empty); the "
	    "largest class is the largest payload or node output the server can hold, so keep it "
	    "at least `server.max_message_bytes` (times the growth of your pipelines: s16 mono to "
	    "f32 stereo is 4x)"},
    {.name = "hugepages",
     .type = F_BOOL,
     CFG(hugepages),
     .doc = "run the EAL on hugepages (drop the built-in `--no-huge`); real NICs need it for DMA"},
    {.name = "memory_mb",
     .type = F_U32,
     CFG(memory_mb),
     .min = 256,
     .max = 1u << 20,
     .def = 512,
     .doc = "EAL memory (`-m`)"},
    {.name = "ports",
     .type = F_PORTS,
     .module_default = true,
     .doc = "DPDK ports of the UDP front end (below)"},
    {.name = "port_ring_size",
     .type = F_POW2,
     CFG(udp.ring_size),
     .min = 64,
     .max = 65536,
     .module_default = true,
     .doc = "per-worker hand-off and hand-back rings (single-queue devices)"},
    {.name = "port_tx_drain_us",
     .type = F_U32,
     CFG(udp.tx_drain_us),
     .min = 1,
     .max = 100000,
     .module_default = true,
     .doc = "longest time an answer waits in a TX batch under steady load (a short RX poll flushes "
	    "at once)"},
    {.name = "port_idle_poll_us",
     .type = F_U32,
     CFG(udp.idle_poll_us),
     .min = 10,
     .max = 1000000,
     .module_default = true,
     .doc = "longest idle sleep of a worker that polls ports (a NIC queue cannot wake it): the "
	    "worst first-packet delay after idleness with the `adaptive`/`sleep` policies; `spin` "
	    "never sleeps"},
    {.name = NULL},
};

static const struct field limits_fields[] = {
    {.name = "max_nodes",
     .type = F_U32,
     CFG(max_nodes),
     .min = 1,
     .max = DP_NODES_HARD_MAX,
     .def = DP_NODES_DEFAULT_MAX,
     .live = true,
     .doc = "nodes per pipeline (registered and inline)"},
    {.name = "default_timeout_ms",
     .type = F_U32,
     CFG(default_timeout_ms),
     .min = 1,
     .max = 86400000,
     .def = 30000,
     .live = true,
     .doc = "deadline of a unary call whose client set none (streams have none by default)"},
    {.name = "max_timeout_ms",
     .type = F_U32,
     CFG(max_timeout_ms),
     .min = 1,
     .max = 86400000,
     .def = 300000,
     .live = true,
     .doc = "cap on any call's deadline (a client may ask for less, never more); must be >= the "
	    "default"},
    {.name = "shed_high_water_pct",
     .type = F_U32,
     CFG(shed_high_water_pct),
     .min = 1,
     .max = 100,
     .def = 80,
     .live = true,
     .doc = "load shedding: a worker whose queue is at or above this % of its ring ..."},
    {.name = "shed_low_water_pct",
     .type = F_U32,
     CFG(shed_low_water_pct),
     .max = 99,
     .def = 20,
     .live = true,
     .doc = "it stops once its queue is at or below this % of its ring and it is under the busy "
	    "threshold; must be below the high-water mark"},
    {.name = "shed_busy_pct",
     .type = F_U32,
     CFG(shed_busy_pct),
     .min = 1,
     .max = 101,
     .def = 90,
     .live = true,
     .doc = "... or whose busy ratio (bulk-lane quanta not counted) is at or above this % (101 "
	    "disables the busy trigger) ..."},
    {.name = "shed_window_ms",
     .type = F_U32,
     CFG(shed_window_ms),
     .max = 600000,
     .def = 5000,
     .live = true,
     .doc = "... continuously for this long starts shedding new unary work"},
    {.name = "stream_window",
     .type = F_U32,
     CFG(stream_window),
     .min = 1,
     .max = 256,
     .def = 8,
     .live = true,
     .doc = "ExecuteStream flow control: frames per stream in flight on the worker or waiting to "
	    "be sent; when full, the server stops reading that stream"},
    {.name = "max_in_flight",
     .type = F_U32,
     CFG(inflight_cap),
     .max = 1u << 20,
     .live = true,
     .doc = "live cap on unary requests inside the dataplane (`RESOURCE_EXHAUSTED: in-flight limit "
	    "reached ... limits.max_in_flight` with pushback); 0 = only the descriptor pool "
	    "(`dataplane.max_in_flight`) bounds it. Lower it on a reload to protect a struggling "
	    "backend"},
    {.name = "max_request_memory_mb",
     .type = F_U32,
     CFG(max_request_memory_mb),
     .max = 1u << 20,
     .live = true,
     .doc = "largest estimated memory of one Execute (its input through the pipeline's growth: the "
	    "peak input + output of any node, sizes scaled by the sample formats, channels and "
	    "rates; `zstd_decompress` at its bound); over it: `RESOURCE_EXHAUSTED: request needs "
	    "an estimated 5.3 MiB (921600 input bytes through the pipeline's growth), over "
	    "limits.max_request_memory_mb (3 MiB)`, no pushback. 0 = no limit"},
    {.name = "memory_budget_mb",
     .type = F_U32,
     CFG(memory_budget_mb),
     .max = 1u << 24,
     .live = true,
     .doc = "process-wide budget for the estimated memory of the Execute requests handed to "
	    "workers (GetStats `memory_in_use_bytes`, `corepipe_memory_estimated_bytes`); a "
	    "request that would take the total over it is `RESOURCE_EXHAUSTED: memory budget: 1.2 "
	    "MiB of limits.memory_budget_mb (2 MiB) in use, this request needs an estimated 1.2 "
	    "MiB` with a pushback hint. 0 = no budget (the buffer pools still bound memory)"},
    {.name = "shed_enabled",
     .type = F_BOOL,
     CFG(shed_enabled),
     .def = true,
     .live = true,
     .doc = "`false` switches load shedding off (live: a shedding worker stops at once); queues, "
	    "pools, `max_in_flight` and deadlines still bound the work"},
    {.name = NULL},
};

static const struct field auth_fields[] = {
    {.name = "enabled",
     .type = F_BOOL,
     CFG(auth.enabled),
     .key = CP_KEY_AUTH_ENABLED,
     .live = true,
     .doc = "require `authorization: Bearer <token>` on every gRPC call (docs/operations.md, "
	    "\"Authentication\")"},
    {.name = "health_open",
     .type = F_BOOL,
     CFG(auth.health_open),
     .key = CP_KEY_AUTH_HEALTH_OPEN,
     .def = true,
     .live = true,
     .doc = "`grpc.health.v1.Health` without a token"},
    {.name = "metrics",
     .type = F_BOOL,
     CFG(auth.metrics),
     .key = CP_KEY_AUTH_METRICS,
     .live = true,
     .doc = "`/metrics` needs `Authorization: Bearer <token>` too (any valid token); `/healthz` "
	    "and `/readyz` stay open"},
    {.name = "token_file",
     .type = F_STR,
     CFG(token_file),
     .key = CP_KEY_AUTH_TOKENS,
     .live = true,
     .doc = "file of `name:sha256hex[:permission]` lines (`#` comments), added to `auth.tokens`, "
	    "for secrets mounted from elsewhere"},
    {.name = "tokens",
     .type = F_TOKENS,
     .key = CP_KEY_AUTH_TOKENS,
     .live = true,
     .doc = "`{ name: N, sha256: <64 hex digits>, permission: execute \\| admin }`; the SHA-256 of "
	    "the token, never the token"},
    {.name = "high_priority_tokens",
     .type = F_STR,
     CFG(auth.high_priority),
     .live = true,
     .doc = "comma-separated token names that may send `corepipe-priority: high` (docs/api.md), "
	    "`\"*\"` for every caller; with `auth.enabled: false` anyone may"},
    {.name = NULL},
};

static const struct field tls_fields[] = {
    {.name = "cert_file",
     .type = F_STR,
     CFG(tls.cert_file),
     .key = CP_KEY_TLS_CERT,
     .doc = "PEM certificate chain; with `tls.key_file`, the gRPC port (`server.grpc_listen`) "
	    "serves TLS"},
    {.name = "key_file",
     .type = F_STR,
     CFG(tls.key_file),
     .doc = "PEM private key of `tls.cert_file` (the two go together)"},
    {.name = "client_ca_file",
     .type = F_STR,
     CFG(tls.client_ca_file),
     .key = CP_KEY_TLS_CLIENT_CA,
     .doc = "PEM CA bundle; client certificates are requested and verified against it"},
    {.name = "require_client_cert",
     .type = F_BOOL,
     CFG(tls.require_client_cert),
     .key = CP_KEY_TLS_CLIENT_CERT,
     .doc = "mTLS: refuse clients without a certificate from `client_ca_file`"},
    {.name = "required",
     .type = F_BOOL,
     CFG(tls.required),
     .key = CP_KEY_TLS_REQUIRED,
     .def = true,
     .doc = "no plaintext at all; `false` with `tls.plaintext_listen` also serves plaintext there"},
    {.name = "plaintext_listen",
     .type = F_LISTEN,
     CFG(tls.plaintext_listen),
     .min = CP_LISTEN_EMPTY,
     .doc = "second, plaintext listener (only with `required: false`), e.g. loopback for local "
	    "agents"},
    {.name = NULL},
};

static const struct field logging_fields[] = {
    {.name = "level",
     .type = F_LOGLEVEL,
     CFG(log_level),
     .def = CP_LOG_INFO,
     .live = true,
     .doc = "minimum level logged"},
    {.name = "access_log",
     .type = F_ALOG,
     CFG(access_log),
     .def = CP_ALOG_OFF,
     .live = true,
     .doc = "one JSON line per answered gRPC call on stderr (docs/operations.md, \"Access log\"): "
	    "every call, only non-OK ones, or one call in `access_log_sample`"},
    {.name = "access_log_sample",
     .type = F_U32,
     CFG(access_log_sample),
     .min = 1,
     .max = 1000000,
     .def = 100,
     .live = true,
     .doc = "`sampled`: log one call in N (counted at arrival)"},
    {.name = "access_log_ring",
     .type = F_POW2,
     CFG(access_log_ring),
     .min = 64,
     .max = 1u << 20,
     .def = 4096,
     .doc =
	 "records buffered between the threads that answer calls and the logger thread; when full, "
	 "records are dropped and counted (`corepipe_access_log_dropped_total`), never waited for"},
    {.name = NULL},
};

static const struct field registry_fields[] = {
    {.name = "store",
     .type = F_STORE,
     CFG(registry_store),
     .doc = "where the pipelines put through `Admin/PutPipeline` live besides memory: `memory` (a "
	    "restart keeps only the file's pipelines), `file` (`registry.state_file`) or `etcd` "
	    "(shared by a fleet: `registry.etcd_*`); docs/operations.md, \"Running a fleet\""},
    {.name = "state_file",
     .type = F_STR,
     CFG(state_file),
     .doc = "`file` store: the state file (its directory must exist and be writable: the file is "
	    "replaced atomically through `<path>.tmp`). Required with `store: file`"},
    {.name = "etcd_endpoint",
     .type = F_STR,
     CFG(etcd.endpoints),
     .sdef = "127.0.0.1:2379",
     .doc = "`etcd` store: etcd's client address (`host:port`), or several separated by commas "
	    "(members of one cluster): the first is used, the next one when it fails"},
    {.name = "etcd_prefix",
     .type = F_STR,
     CFG(etcd.prefix),
     .sdef = "/corepipe/pipelines/",
     .doc = "`etcd` store: the keys' prefix (a pipeline is the key prefix + name); instances with "
	    "the same prefix share their pipelines"},
    {.name = "etcd_ca_file",
     .type = F_STR,
     CFG(etcd.ca_file),
     .doc = "`etcd` store: PEM CA certificate(s) etcd's server certificate is checked against; "
	    "set, corepiped speaks TLS to etcd (etcd's `--cert-file`), empty: plaintext"},
    {.name = "etcd_cert_file",
     .type = F_STR,
     CFG(etcd.cert_file),
     .doc = "`etcd` store: client certificate (PEM) for mutual TLS (etcd's "
	    "`--client-cert-auth`); with `registry.etcd_key_file`, needs `registry.etcd_ca_file`"},
    {.name = "etcd_key_file",
     .type = F_STR,
     CFG(etcd.key_file),
     .doc = "`etcd` store: the private key (PEM) of `registry.etcd_cert_file`"},
    {.name = "etcd_server_name",
     .type = F_STR,
     CFG(etcd.server_name),
     .doc = "`etcd` store: the name etcd's certificate must carry, when it is not the endpoint's "
	    "host (e.g. endpoints given as addresses, a certificate for a DNS name)"},
    {.name = "etcd_user",
     .type = F_STR,
     CFG(etcd.user),
     .doc =
	 "`etcd` store: etcd user (etcd auth enabled); with `registry.etcd_password_file`. "
	 "Every call carries the token etcd's `Authenticate` gives, renewed when etcd refuses it"},
    {.name = "etcd_password_file",
     .type = F_STR,
     CFG(etcd.password_file),
     .doc = "`etcd` store: a file holding `registry.etcd_user`'s password (its first line; read "
	    "at start, never logged)"},
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

#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

/* Store row @p f's default (def or sdef) in @p c. */
static void
store_default(const struct field *f, struct cp_config *c)
{
	char *dst = (char *)c + f->off;

	switch (f->type) {
	case F_STR:
	case F_LISTEN:
		snprintf(dst, f->size, "%s", f->sdef != NULL ? f->sdef : "");
		break;
	case F_U32:
	case F_POW2:
		*(uint32_t *)dst = (uint32_t)f->def;
		break;
	case F_BOOL:
		*(bool *)dst = f->def != 0;
		break;
	case F_IDLE:
		*(enum dp_idle_policy *)dst = (enum dp_idle_policy)f->def;
		break;
	case F_LOGLEVEL:
		*(enum cp_log_level *)dst = (enum cp_log_level)f->def;
		break;
	case F_ALOG:
		*(enum cp_alog_mode *)dst = (enum cp_alog_mode)f->def;
		break;
	case F_STORE:
		*(enum cp_store_kind *)dst = (enum cp_store_kind)f->def;
		break;
	case F_STRLIST:
	case F_TOKENS:
	case F_POOLS:
	case F_PORTS:
		break; /* empty lists (pools and ports: the dataplane's defaults) */
	}
}

void
cp_config_init(struct cp_config *c)
{
	memset(c, 0, sizeof(*c));
	/* The modules own the defaults of their structs; the rows say so (module_default). */
	cp_http_limits_default(&c->http);
	dp_dataplane_conf_default(&c->dp);
	dp_udp_conf_default(&c->udp);
	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++)
		for (const struct field *f = sec->fields; f != NULL && f->name != NULL; f++)
			if (!f->module_default)
				store_default(f, c);
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

		for (i = 0; i < N_SECTIONS; i++)
			if (ks && strcmp(ks, sections[i].name) == 0)
				break;
		int r;

		if (i == N_SECTIONS) {
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
	    (c->etcd.endpoints[0] == '\0' || c->etcd.prefix[0] == '\0')) {
		snprintf(err, errlen,
			 "registry.store: etcd needs registry.etcd_endpoint and "
			 "registry.etcd_prefix");
		return -EINVAL;
	}
	if ((c->etcd.cert_file[0] != '\0') != (c->etcd.key_file[0] != '\0')) {
		snprintf(err, errlen,
			 "registry.etcd_cert_file and registry.etcd_key_file go together");
		return -EINVAL;
	}
	if (c->etcd.ca_file[0] == '\0' &&
	    (c->etcd.cert_file[0] != '\0' || c->etcd.server_name[0] != '\0')) {
		snprintf(err, errlen,
			 "registry.etcd_cert_file and registry.etcd_server_name need "
			 "registry.etcd_ca_file (TLS to etcd)");
		return -EINVAL;
	}
	if ((c->etcd.user[0] != '\0') != (c->etcd.password_file[0] != '\0')) {
		snprintf(err, errlen,
			 "registry.etcd_user and registry.etcd_password_file go together");
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

/* The variable name of setting @p f of section @p sec, upper case. */
static void
env_name(const struct section *sec, const struct field *f, char *out, size_t len)
{
	size_t k = (size_t)snprintf(out, len, "COREPIPE_%s_%s", sec->name, f->name);

	for (size_t j = 0; j < k && j < len; j++)
		out[j] = (char)toupper((unsigned char)out[j]);
}

int
cp_config_apply_env(struct cp_config *c, const char *(*get)(const char *name), char *err,
		    size_t errlen)
{
	struct cp_config tmp = *c;
	size_t off = 0;
	int rc = 0;

	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++) {
		if (sec->fields == NULL)
			continue;
		for (const struct field *f = sec->fields; f->name != NULL; f++) {
			char var[96], msg[256];
			const char *v;

			if (F_IS_LIST(f->type))
				continue; /* lists only from the file */
			env_name(sec, f, var, sizeof(var));
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
 * switch (control/main.c: dp_node_table_enable_test) and perf/flamegraph.sh's cache
 * directory. */
static const char *const g_env_other[] = {
    "COREPIPE_CONFIG",
    "COREPIPE_TEST_NODES",
    "COREPIPE_FLAMEGRAPH_HOME",
};

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
		for (const struct section *sec = sections; !known && sec < sections + N_SECTIONS;
		     sec++) {
			for (const struct field *f = sec->fields; f && f->name != NULL; f++) {
				unsigned d;

				env_name(sec, f, var, sizeof(var));
				d = edit_distance(*e, len, var);
				if (d == 0 && F_IS_LIST(f->type))
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

/* Row @p f's value in @p c as YAML (one line, no newline): what --print-config and the
 * reference's default column show. */
static void
print_value(FILE *out, const struct field *f, const struct cp_config *c)
{
	const char *src = (const char *)c + f->off;

	switch (f->type) {
	case F_STR:
	case F_LISTEN:
		print_quoted(out, src);
		break;
	case F_U32:
	case F_POW2:
		fprintf(out, "%u", *(const uint32_t *)src);
		break;
	case F_IDLE:
		fprintf(out, "%s", dp_idle_policy_name(*(const enum dp_idle_policy *)src));
		break;
	case F_LOGLEVEL:
		fprintf(out, "%s", cp_log_level_name(*(const enum cp_log_level *)src));
		break;
	case F_BOOL:
		fprintf(out, "%s", *(const bool *)src ? "true" : "false");
		break;
	case F_ALOG:
		fprintf(out, "%s", cp_alog_mode_name(*(const enum cp_alog_mode *)src));
		break;
	case F_STORE:
		fprintf(out, "%s", cp_store_kind_name(*(const enum cp_store_kind *)src));
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
		fprintf(out, "]");
		break;
	case F_POOLS:
		fprintf(out, "[");
		for (unsigned i = 0; i < c->dp.pools.n_classes; i++)
			fprintf(out, "%s{ size: %u, count: %u }", i ? ", " : "",
				c->dp.pools.classes[i].size, c->dp.pools.classes[i].count);
		fprintf(out, "]");
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
		fprintf(out, "]");
		break;
	case F_STRLIST:
		fprintf(out, "[");
		for (unsigned i = 0; i < c->n_eal_args; i++) {
			fputs(i ? ", " : "", out);
			print_quoted(out, c->eal_args[i]);
		}
		fprintf(out, "]");
		break;
	}
}

void
cp_config_print(FILE *out, const struct cp_config *c)
{
	fprintf(out, "# effective configuration (defaults < file%s%s < environment < flags)\n",
		c->path[0] ? " " : "", c->path);
	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++) {
		if (sec->fields == NULL)
			continue;
		fprintf(out, "%s:\n", sec->name);
		for (const struct field *f = sec->fields; f->name != NULL; f++) {
			fprintf(out, "  %s: ", f->name);
			print_value(out, f, c);
			fputc('\n', out);
		}
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

/* ==== Reload classification and the reference =============================================== */

/* Does row @p f hold the same value in @p a and @p b? */
static bool
field_equal(const struct field *f, const struct cp_config *a, const struct cp_config *b)
{
	const char *x = (const char *)a + f->off, *y = (const char *)b + f->off;

	switch (f->type) {
	case F_STR:
	case F_LISTEN:
		return strcmp(x, y) == 0;
	case F_STRLIST:
		if (a->n_eal_args != b->n_eal_args)
			return false;
		for (unsigned i = 0; i < a->n_eal_args; i++)
			if (strcmp(a->eal_args[i], b->eal_args[i]) != 0)
				return false;
		return true;
	case F_TOKENS:
		/* The table (auth.tokens and auth.token_file's entries alike). */
		return a->auth.n == b->auth.n &&
		       (a->auth.n == 0 || memcmp(a->auth.tokens, b->auth.tokens,
						 a->auth.n * sizeof(a->auth.tokens[0])) == 0);
	case F_POOLS:
		return a->dp.pools.n_classes == b->dp.pools.n_classes &&
		       memcmp(a->dp.pools.classes, b->dp.pools.classes,
			      a->dp.pools.n_classes * sizeof(a->dp.pools.classes[0])) == 0;
	case F_PORTS:
		return a->udp.n_ports == b->udp.n_ports &&
		       memcmp(a->udp.ports, b->udp.ports,
			      a->udp.n_ports * sizeof(a->udp.ports[0])) == 0;
	default:
		return memcmp(x, y, f->size) == 0; /* numbers, bools and enums */
	}
}

unsigned
cp_config_diff(const struct cp_config *a, const struct cp_config *b, cp_config_diff_fn fn,
	       void *arg)
{
	unsigned n = 0;

	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++)
		for (const struct field *f = sec->fields; f != NULL && f->name != NULL; f++) {
			char key[96];

			if (field_equal(f, a, b))
				continue;
			snprintf(key, sizeof(key), "%s.%s", sec->name, f->name);
			if (fn != NULL)
				fn(key, f->live, arg);
			n++;
		}
	return n;
}

void
cp_config_copy_live(struct cp_config *dst, const struct cp_config *src)
{
	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++)
		for (const struct field *f = sec->fields; f != NULL && f->name != NULL; f++)
			if (f->live && !F_IS_LIST(f->type))
				memcpy((char *)dst + f->off, (const char *)src + f->off, f->size);
}

int
cp_config_key_at(unsigned i, struct cp_config_setting *k)
{
	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++)
		for (const struct field *f = sec->fields; f != NULL && f->name != NULL; f++) {
			if (i-- != 0)
				continue;
			snprintf(k->name, sizeof(k->name), "%s.%s", sec->name, f->name);
			k->live = f->live;
			k->list = F_IS_LIST(f->type);
			k->off = f->off;
			k->size = f->size;
			return 0;
		}
	return -ENOENT;
}

/* The reference's type column. */
static void
print_type(FILE *out, const struct field *f)
{
	switch (f->type) {
	case F_STR:
		fputs("string", out);
		break;
	case F_LISTEN:
		fputs("address", out);
		break;
	case F_U32:
		fprintf(out, "integer %llu..%llu", (unsigned long long)f->min,
			(unsigned long long)f->max);
		break;
	case F_POW2:
		fprintf(out, "power of two %llu..%llu", (unsigned long long)f->min,
			(unsigned long long)f->max);
		break;
	case F_BOOL:
		fputs("bool", out);
		break;
	case F_IDLE:
		fputs("`spin` \\| `adaptive` \\| `sleep`", out);
		break;
	case F_LOGLEVEL:
		fputs("`debug` \\| `info` \\| `warn` \\| `error`", out);
		break;
	case F_ALOG:
		fputs("`off` \\| `all` \\| `errors` \\| `sampled`", out);
		break;
	case F_STORE:
		fputs("`memory` \\| `file` \\| `etcd`", out);
		break;
	case F_STRLIST:
		fputs("list of strings", out);
		break;
	case F_TOKENS:
	case F_POOLS:
	case F_PORTS:
		fputs("list", out);
		break;
	}
}

void
cp_config_print_reference(FILE *out)
{
	struct cp_config d;

	cp_config_init(&d);
	fputs("| key | type | default | on reload | meaning |\n", out);
	fputs("|---|---|---|---|---|\n", out);
	for (const struct section *sec = sections; sec < sections + N_SECTIONS; sec++)
		for (const struct field *f = sec->fields; f != NULL && f->name != NULL; f++) {
			fprintf(out, "| `%s.%s` | ", sec->name, f->name);
			print_type(out, f);
			fputs(" | `", out);
			print_value(out, f, &d);
			fprintf(out, "` | %s | %s |\n", f->live ? "live" : "restart", f->doc);
		}
	cp_config_free(&d);
}

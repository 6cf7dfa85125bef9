/*
 * The gRPC server as a whole (see grpc_server.h): creation, listeners, live settings, replies,
 * the control poller and the shutdown sequence. The per-lcore part is control/frontend.c.
 */
#include "control/grpc_server.h"

#include "control/config.h"
#include "control/frontend.h"
#include "control/log.h"
#include "control/pbconv.h"
#include "control/rpc_stats.h"
#include "control/takeover.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <rte_launch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the control poller does its work. */
#define CTL_TICK_NS 10000000ull
/* After the GOAWAY, idle clients may never close their connections: this long after it,
 * disconnect them (cancel_all_calls forces channels closed; no call is left to cancel). */
#define GOAWAY_GRACE_NS 100000000ull
/*
 * The GOAWAY waits until draining has gone on, and no new call has been refused, for this long
 * (at most DRAIN_QUIET_MAX_NS after draining began). A call that reaches the core after
 * grpc_server_shutdown_and_notify() is killed by the core with CANCELLED, not UNAVAILABLE: while
 * clients still send new calls on their connections, they are answered UNAVAILABLE by us instead,
 * and they stop (or move to another instance) before the GOAWAY goes out.
 */
#define DRAIN_QUIET_NS	   200000000ull
#define DRAIN_QUIET_MAX_NS 2000000000ull

static struct cp_method *const g_services[] = {
    cp_pipeline_methods,
    cp_admin_methods,
    cp_health_methods,
    cp_reflection_methods,
};

/* ==== Live settings ========================================================================= */

struct cp_live_rcu {
	struct cp_live live; /* first: srv->live points here */
	struct rcu_head head;
};

static void
live_free(struct rcu_head *h)
{
	struct cp_live_rcu *l = caa_container_of(h, struct cp_live_rcu, head);

	cp_auth_free(&l->live.auth);
	free(l);
}

struct cp_live *
cp_server_live_prepare(const struct cp_server *srv, const struct cp_config *c)
{
	struct cp_live_rcu *n = calloc(1, sizeof(*n));

	(void)srv;
	if (n == NULL)
		return NULL;
	n->live.default_timeout_ms = c->default_timeout_ms;
	n->live.max_timeout_ms = c->max_timeout_ms;
	n->live.max_nodes = c->max_nodes;
	n->live.stream_window = c->stream_window;
	n->live.inflight_cap = c->inflight_cap;
	n->live.max_request_memory = (uint64_t)c->max_request_memory_mb << 20;
	n->live.memory_budget = (uint64_t)c->memory_budget_mb << 20;
	n->live.shutdown_grace_ms = c->shutdown_grace_ms;
	n->live.shutdown_delay_ms = c->shutdown_delay_ms;
	dp_shed_conf_default(&n->live.shed);
	n->live.shed.high_pct = c->shed_high_water_pct;
	n->live.shed.low_pct = c->shed_low_water_pct;
	n->live.shed.busy_pct = c->shed_busy_pct;
	n->live.shed.window_ms = c->shed_window_ms;
	n->live.shed.enabled = c->shed_enabled;
	if (cp_auth_copy(&n->live.auth, &c->auth) != 0) {
		free(n);
		return NULL;
	}
	return &n->live;
}

void
cp_server_live_discard(struct cp_live *live)
{
	if (live == NULL)
		return;
	cp_auth_free(&live->auth);
	free(caa_container_of(live, struct cp_live_rcu, live));
}

void
cp_server_live_publish(struct cp_server *srv, struct cp_live *live)
{
	struct cp_live *old;

	/* Workers read the shedding part on their RCU read side; it lives in `live` and goes
	 * with it, after the grace period that follows the next publish. */
	if (srv->dp != NULL)
		dp_dataplane_set_shed_conf(srv->dp, &live->shed);
	/* The metrics thread reads the token table under live_lock; front ends read the
	 * pointer on their RCU read side (release here pairs with rcu_dereference there). */
	pthread_mutex_lock(&srv->live_lock);
	old = rcu_xchg_pointer(&srv->live, live);
	pthread_mutex_unlock(&srv->live_lock);
	if (old != NULL)
		call_rcu(&caa_container_of(old, struct cp_live_rcu, live)->head, live_free);
}

int
cp_server_apply_live(struct cp_server *srv, const struct cp_config *c)
{
	struct cp_live *l = cp_server_live_prepare(srv, c);

	if (l == NULL)
		return -ENOMEM;
	cp_server_live_publish(srv, l);
	return 0;
}

/* ==== Counters ============================================================================== */

uint64_t
cp_server_stat_sum(const struct cp_server *srv, size_t off)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < srv->n_fe; i++)
		sum += __atomic_load_n((const uint64_t *)((const char *)&srv->fe[i]->st + off),
				       __ATOMIC_RELAXED);
	return sum;
}

void
cp_server_connections(const struct cp_server *srv, uint64_t *open, uint64_t *refused)
{
	*open = *refused = 0;
	for (unsigned i = 0; i < srv->n_listeners; i++) {
		const struct cp_listener *l = &srv->listener[i];

		*open += atomic_load_explicit(&l->open, memory_order_relaxed);
		*refused += atomic_load_explicit(&l->refused, memory_order_relaxed) +
			    atomic_load_explicit(&l->refused_peer, memory_order_relaxed) +
			    atomic_load_explicit(&l->emfile, memory_order_relaxed);
	}
}

/* ==== TLS =================================================================================== */

/* Read a whole PEM file into a NUL-terminated malloc'd string, or NULL (logged). */
static char *
read_pem(const char *what, const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		cp_log(CP_LOG_ERROR, "tls: cannot read file", CP_LF_STR("setting", what),
		       CP_LF_STR("path", path), CP_LF_STR("error", strerror(errno)));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			char *b = realloc(buf, cap + 65536);

			if (b == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0 && len < (1u << 20));
	fclose(f);
	buf[len] = '\0';
	if (strstr(buf, "-----BEGIN") == NULL) {
		cp_log(CP_LOG_ERROR, "tls: not a PEM file", CP_LF_STR("setting", what),
		       CP_LF_STR("path", path));
		free(buf);
		return NULL;
	}
	return buf;
}

/* SSL server credentials from the tls section, or NULL (logged). Key material is wiped. */
static grpc_server_credentials *
tls_credentials(const struct cp_tls_conf *t)
{
	grpc_ssl_pem_key_cert_pair pair;
	char *cert = read_pem("tls.cert_file", t->cert_file);
	char *key = read_pem("tls.key_file", t->key_file);
	char *ca = t->client_ca_file[0] ? read_pem("tls.client_ca_file", t->client_ca_file) : NULL;
	grpc_server_credentials *creds = NULL;

	if (cert != NULL && key != NULL && (t->client_ca_file[0] == '\0' || ca != NULL)) {
		pair.private_key = key;
		pair.cert_chain = cert;
		creds = grpc_ssl_server_credentials_create_ex(
		    ca, &pair, 1,
		    t->require_client_cert
			? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
		    : ca != NULL ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
				 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
		    NULL);
	}
	if (key != NULL) {
		volatile char *v = key;

		for (size_t i = 0; v[i] != '\0'; i++)
			v[i] = 0;
	}
	free(cert);
	free(key);
	free(ca);
	return creds;
}

/* ==== Creation ============================================================================== */

static void
int_arg(grpc_arg *a, const char *key, int value)
{
	a->type = GRPC_ARG_INTEGER;
	a->key = (char *)key;
	a->value.integer = value;
}

static int
open_listener(struct cp_server *srv, const char *addr, bool tls)
{
	struct cp_listener_conf lc = {
	    .max_connections = srv->conf.cfg->max_connections,
	    .max_per_peer = srv->conf.cfg->max_connections_per_peer,
	};
	struct cp_listener *l = &srv->listener[srv->n_listeners];
	int fd = cp_takeover_adopt(srv->conf.takeover, "grpc", addr);
	int rc = cp_listener_adopt(l, srv->n_listeners, addr, fd, &lc);

	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "cannot listen", CP_LF_STR("listen", addr),
		       CP_LF_BOOL("tls", tls), CP_LF_STR("error", strerror(-rc)));
		return rc == -EINVAL ? -EINVAL : -EADDRINUSE;
	}
	if (fd >= 0)
		cp_log(CP_LOG_INFO, "takeover: listening socket adopted", CP_LF_STR("listen", addr),
		       CP_LF_INT("port", l->port), CP_LF_BOOL("tls", tls));
	srv->n_listeners++;
	return 0;
}

static int
register_methods(struct cp_server *srv)
{
	srv->services = g_services;
	srv->n_services = sizeof(g_services) / sizeof(g_services[0]);
	for (size_t s = 0; s < sizeof(g_services) / sizeof(g_services[0]); s++) {
		for (struct cp_method *m = g_services[s]; m->path != NULL; m++) {
			/* Every call is matched when its headers arrive (its message is read
			 * by the front end): the core never holds a call corepipe does not know
			 * of, so a shutdown cannot cancel one whose bytes are still arriving. */
			m->handle = grpc_server_register_method(srv->server, m->path, NULL,
								GRPC_SRM_PAYLOAD_NONE, 0);
			if (m->handle == NULL) {
				cp_log(CP_LOG_ERROR, "cannot register method",
				       CP_LF_STR("method", m->path));
				return -EINVAL;
			}
		}
	}
	return 0;
}

int
cp_server_create(struct cp_server *srv, const struct cp_server_conf *conf, struct dp_dataplane *dp)
{
	const struct cp_config *cfg = conf->cfg;
	grpc_arg args[24];
	grpc_channel_args chargs;
	grpc_server_credentials *creds;
	bool tls = cfg->tls.cert_file[0] != '\0';
	const struct cp_keepalive_conf *ka = &cfg->keepalive;
	size_t n;
	int rc;

	memset(srv, 0, sizeof(*srv));
	srv->conf = *conf;
	snprintf(srv->listen, sizeof(srv->listen), "%s", cfg->grpc_listen);
	srv->dp = dp;
	srv->shutdown_tag.kind = CP_TAG_SHUTDOWN;
	srv->shutdown_tag.owner = srv;
	atomic_init(&srv->serving, false);
	atomic_init(&srv->health_gen, 0);
	atomic_init(&srv->phase, CP_PHASE_SERVING);
	atomic_init(&srv->shutdown_requested, false);
	atomic_init(&srv->shutdown_tag_seen, false);
	pthread_mutex_init(&srv->live_lock, NULL);
	rc = cp_server_apply_live(srv, cfg);
	if (rc != 0)
		return rc;

	/* Listeners first: their channel args go into grpc_server_create. */
	rc = open_listener(srv, srv->listen, tls);
	if (rc == 0 && tls && !cfg->tls.required && cfg->tls.plaintext_listen[0] != '\0')
		rc = open_listener(srv, cfg->tls.plaintext_listen, false);
	if (rc != 0)
		return rc;
	srv->port = srv->listener[0].port;
	srv->plaintext_port = srv->n_listeners > 1 ? srv->listener[1].port : 0;

	n = 0;
	int_arg(&args[n++], GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)cfg->max_message_bytes);
	/* Outputs may legitimately be larger than inputs. */
	int_arg(&args[n++], GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
	/* Clients may ping to keep connections alive, but not more often than
	 * server.keepalive_min_ping_interval_ms without data (keepalive enforcement: abusive
	 * pingers get GOAWAY). */
	int_arg(&args[n++], GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
		(int)ka->min_ping_interval_ms);
	int_arg(&args[n++], GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
	int_arg(&args[n++], GRPC_ARG_MAX_CONCURRENT_STREAMS, (int)cfg->max_concurrent_streams);
	/* Headers are small for this API: a bound on what one stream's metadata may cost. */
	int_arg(&args[n++], GRPC_ARG_MAX_METADATA_SIZE, 16384);
	/* The TLS handshake and the HTTP/2 preface + SETTINGS must arrive within this, or the
	 * connection is closed: a bare TCP connection cannot hold a slot. */
	int_arg(&args[n++], GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, (int)cfg->handshake_timeout_ms);
	/* The server's own keepalive pings find dead peers (server.keepalive_*; 0: never). */
	int_arg(&args[n++], GRPC_ARG_KEEPALIVE_TIME_MS, ka->time_ms ? (int)ka->time_ms : INT_MAX);
	int_arg(&args[n++], GRPC_ARG_KEEPALIVE_TIMEOUT_MS, (int)ka->timeout_ms);
	int_arg(&args[n++], GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, ka->permit_without_calls);
	/* Idle connections are closed; old ones are recycled (clients reconnect, which lets a
	 * load balancer rebalance), with a grace period for calls still running on them. */
	int_arg(&args[n++], GRPC_ARG_MAX_CONNECTION_IDLE_MS,
		cfg->max_connection_idle_ms ? (int)cfg->max_connection_idle_ms : INT_MAX);
	int_arg(&args[n++], GRPC_ARG_MAX_CONNECTION_AGE_MS,
		cfg->max_connection_age_ms ? (int)cfg->max_connection_age_ms : INT_MAX);
	int_arg(&args[n++], GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30000);
	for (unsigned i = 0; i < srv->n_listeners; i++)
		args[n++] = cp_listener_arg(&srv->listener[i]);
	chargs.num_args = n;
	chargs.args = args;

	srv->server = grpc_server_create(&chargs, NULL);
	rc = register_methods(srv);
	if (rc != 0)
		return rc;
	srv->n_fe = dp->n_frontends;
	for (unsigned i = 0; i < srv->n_fe; i++) {
		srv->fe[i] = cp_fe_create(srv, i);
		if (srv->fe[i] == NULL)
			return -ENOMEM;
	}
	/* Ports: the main listener with TLS or not, the extra plaintext one without. */
	creds = tls ? tls_credentials(&cfg->tls) : grpc_insecure_server_credentials_create();
	if (creds == NULL)
		return -EINVAL;
	rc = cp_listener_add_port(&srv->listener[0], srv->server, creds);
	grpc_server_credentials_release(creds);
	if (rc == 0 && srv->n_listeners > 1) {
		creds = grpc_insecure_server_credentials_create();
		rc = cp_listener_add_port(&srv->listener[1], srv->server, creds);
		grpc_server_credentials_release(creds);
	}
	if (rc != 0) {
		cp_log(CP_LOG_ERROR, "gRPC refused the listener's external port");
		return -EINVAL;
	}
	if (tls)
		cp_log(CP_LOG_INFO, "TLS on the gRPC port", CP_LF_STR("grpc_listen", srv->listen),
		       CP_LF_BOOL("client_cert_required", cfg->tls.require_client_cert),
		       CP_LF_BOOL("plaintext_refused", cfg->tls.required));
	return 0;
}

void
cp_server_start(struct cp_server *srv)
{
	grpc_server_start(srv->server);
	srv->started = true;
	for (unsigned i = 0; i < srv->n_fe; i++)
		cp_fe_start(srv->fe[i]);
	for (unsigned i = 0; i < srv->n_listeners; i++)
		if (cp_listener_start(&srv->listener[i]) != 0)
			cp_log(CP_LOG_ERROR, "cannot start the accept thread",
			       CP_LF_STR("listen", srv->listener[i].addr));
}

/* ==== The control poller (front end 0's lcore) ============================================= */

static long
live_calls(const struct cp_server *srv)
{
	return (long)cp_server_stat_sum(srv, offsetof(struct cp_fe_stats, live_calls));
}

/* Shedding is decided by each worker; the control poller only says so in the log. */
static void
log_shedding(struct cp_server *srv)
{
	const struct dp_dataplane *dp = srv->dp;

	for (unsigned i = 0; i < dp->n_workers; i++) {
		const struct dp_worker *w = dp->workers[i];
		bool on = atomic_load_explicit(&w->lc.shedding, memory_order_relaxed);

		if (on == srv->shed_logged[i])
			continue;
		srv->shed_logged[i] = on;
		cp_log(on ? CP_LOG_WARN : CP_LOG_INFO,
		       on ? "load shedding on" : "load shedding off", CP_LF_INT("worker", i),
		       CP_LF_U64("queue_depth", dp_worker_in_flight(w)),
		       CP_LF_U64("ring_size", w->conf.ring_size),
		       CP_LF_DBL("busy_ratio", w->shed.busy));
	}
}

static void
begin_drain(struct cp_server *srv, uint64_t now, const struct cp_live *live)
{
	srv->drain_start_ns = now;
	srv->grace_deadline_ns = now + (uint64_t)live->shutdown_grace_ms * 1000000u;
	srv->drain_begin_ns = now;
	srv->drain_live_at_start = live_calls(srv);
	srv->drain_answered_at_start =
	    cp_server_stat_sum(srv, offsetof(struct cp_fe_stats, answered));
	/* No new connections; open ones stay until their calls are done. */
	for (unsigned i = 0; i < srv->n_listeners; i++)
		cp_listener_stop(&srv->listener[i]);
	/* UDP requests from now on are answered UNAVAILABLE, like new gRPC calls. */
	if (srv->dp->udp != NULL)
		atomic_store_explicit(&srv->dp->udp->draining, true, memory_order_relaxed);
	atomic_store_explicit(&srv->phase, CP_PHASE_DRAINING, memory_order_release);
	cp_log(CP_LOG_INFO, "draining", CP_LF_INT("calls_open", srv->drain_live_at_start),
	       CP_LF_U64("grace_ms", live->shutdown_grace_ms));
}

static void
shutdown_step(struct cp_server *srv, uint64_t now)
{
	const struct cp_live *live = cp_server_live(srv);
	int phase = atomic_load_explicit(&srv->phase, memory_order_relaxed);
	long open;

	if (phase == CP_PHASE_SERVING) {
		srv->signal_ns = now;
		/* Handed over: the successor accepts every new connection from now on; the lame
		 * duck below still gives health-checking clients the time to stop sending here
		 * before the GOAWAY (calls racing it are what the core cannot drain cleanly). */
		if (atomic_load_explicit(&srv->handover, memory_order_relaxed))
			for (unsigned i = 0; i < srv->n_listeners; i++)
				cp_listener_stop(&srv->listener[i]);
		if (live->shutdown_delay_ms != 0) {
			atomic_store_explicit(&srv->phase, CP_PHASE_LAME_DUCK,
					      memory_order_release);
			cp_log(CP_LOG_INFO, "lame duck: NOT_SERVING, still serving",
			       CP_LF_U64("shutdown_delay_ms", live->shutdown_delay_ms));
			return;
		}
		phase = CP_PHASE_LAME_DUCK;
	}
	if (phase == CP_PHASE_LAME_DUCK) {
		if (now - srv->signal_ns < (uint64_t)live->shutdown_delay_ms * 1000000u)
			return;
		begin_drain(srv, now, live);
		return;
	}
	open = live_calls(srv);
	if (phase == CP_PHASE_DRAINING) {
		/* Every call we were given is answered (calls are matched on their headers, so
		 * none is hidden in the core): now the GOAWAY. Past the grace period too, with
		 * whatever is left (new calls that keep arriving) cancelled by the core. */
		uint64_t last =
		    atomic_load_explicit(&srv->drain_last_refused_ns, memory_order_relaxed);
		bool handover = atomic_load_explicit(&srv->handover, memory_order_relaxed);
		bool quiet;

		if (last < srv->drain_begin_ns)
			last = srv->drain_begin_ns;
		quiet = (now > last && now - last >= DRAIN_QUIET_NS) ||
			now - srv->drain_begin_ns >= DRAIN_QUIET_MAX_NS;
		/* A hitless restart's old process sends its GOAWAY at once: its successor already
		 * serves, and clients move there while open calls finish here. */
		if (!handover && (open != 0 || !quiet) &&
		    now <= srv->grace_deadline_ns + GOAWAY_GRACE_NS)
			return;
		if (open != 0) {
			cp_log(CP_LOG_WARN, "grace period over: cancelling calls",
			       CP_LF_INT("live_calls", open));
		}
		grpc_server_shutdown_and_notify(srv->server, srv->fe[0]->cq, &srv->shutdown_tag);
		srv->drain_start_ns = srv->drain_start_ns ? srv->drain_start_ns : now;
		srv->ctl_next_ns = now;
		atomic_store_explicit(&srv->phase, CP_PHASE_SHUTDOWN, memory_order_release);
		srv->signal_ns = now; /* from now: the GOAWAY's own grace */
		return;
	}
	if (phase == CP_PHASE_SHUTDOWN) {
		if (atomic_load_explicit(&srv->shutdown_tag_seen, memory_order_acquire) &&
		    open == 0) {
			cp_log(
			    CP_LOG_INFO, "drained",
			    CP_LF_INT("calls_open_at_signal", srv->drain_live_at_start),
			    CP_LF_U64(
				"answered_during_drain",
				cp_server_stat_sum(srv, offsetof(struct cp_fe_stats, answered)) -
				    srv->drain_answered_at_start),
			    CP_LF_INT("cancelled_after_grace",
				      srv->drain_cancelled +
					  (long)cp_server_stat_sum(
					      srv, offsetof(struct cp_fe_stats, grace_cancelled))),
			    CP_LF_U64("drain_ms", (now - srv->drain_start_ns) / 1000000u));
			atomic_store_explicit(&srv->phase, CP_PHASE_DONE, memory_order_release);
			for (unsigned i = 0; i < srv->n_fe; i++)
				atomic_store_explicit(&srv->fe[i]->stop, true,
						      memory_order_relaxed);
			return;
		}
		/* Calls still open after the GOAWAY (a handover sends it with calls open; so may
		 * a call that raced it) may finish until the grace period ends. After a handover
		 * nothing is forced before then: clients close their connections once they have
		 * seen the GOAWAY and their calls are done (cancelling "idle" connections would
		 * cancel the calls racing the GOAWAY on them). */
		if (!srv->cancelled_all && now > srv->signal_ns + GOAWAY_GRACE_NS &&
		    ((open == 0 && !atomic_load_explicit(&srv->handover, memory_order_relaxed)) ||
		     now > srv->grace_deadline_ns)) {
			grpc_server_cancel_all_calls(srv->server);
			srv->cancelled_all = true;
		}
	}
}

static unsigned
ctl_poll(void *arg)
{
	struct cp_server *srv = arg;
	uint64_t now = cp_now_ns();

	if (now < srv->ctl_next_ns)
		return 0;
	srv->ctl_next_ns = now + CTL_TICK_NS;
	if (atomic_load_explicit(&srv->shutdown_requested, memory_order_acquire))
		shutdown_step(srv, now);
	log_shedding(srv);
	if (srv->dp->udp != NULL)
		cp_port_watch(&srv->port_watch, srv->dp->udp, now);
	return 0;
}

static uint64_t
ctl_idle(void *arg)
{
	struct cp_server *srv = arg;
	uint64_t now = cp_now_ns();
	int phase = atomic_load_explicit(&srv->phase, memory_order_relaxed);

	/* Ticks matter while shutting down or when ports are watched; otherwise a signal
	 * is seen within the front end's own tick. */
	if (phase == CP_PHASE_SERVING && srv->dp->udp == NULL &&
	    !atomic_load_explicit(&srv->shutdown_requested, memory_order_relaxed))
		return DP_SLEEP_FOREVER;
	return srv->ctl_next_ns > now ? srv->ctl_next_ns - now : 0;
}

/* ==== Run, shutdown, destroy ================================================================ */

void
cp_server_run(struct cp_server *srv)
{
	struct dp_poller ctl = {.name = "control", .poll = ctl_poll, .idle = ctl_idle, .arg = srv};

	dp_reactor_add(&srv->fe[0]->reactor, &ctl);
	for (unsigned i = 1; i < srv->n_fe; i++)
		rte_eal_remote_launch(cp_fe_main, srv->fe[i], srv->dp->workers[i]->lc.lcore);
	/* Front end 0 runs on the main thread, which keeps the process's name (corepiped). */
	dp_reactor_run(&srv->fe[0]->reactor);
	for (unsigned i = 1; i < srv->n_fe; i++)
		rte_eal_wait_lcore(srv->dp->workers[i]->lc.lcore);
}

void
cp_server_request_shutdown(struct cp_server *srv)
{
	bool expected = false;

	if (!atomic_compare_exchange_strong(&srv->shutdown_requested, &expected, true))
		return;
	/* Health first: load balancers stop sending while we still serve. */
	/* Relaxed: the release on health_gen below publishes it (its partner: the acquire in
	 * frontend.c that reads health_gen before it answers Watch calls). */
	atomic_store_explicit(&srv->serving, false, memory_order_relaxed);
	atomic_fetch_add_explicit(&srv->health_gen, 1, memory_order_release);
	/* The control poller ticks every 10 ms while shutting down; it may be asleep in
	 * front end 0's completion queue for up to a front-end tick until it sees this. */
}

void
cp_server_request_handover(struct cp_server *srv)
{
	/* Before the shutdown request: published by its seq_cst compare-exchange, which pairs
	 * with the control poller's acquire load of shutdown_requested in ctl_poll(). */
	atomic_store_explicit(&srv->handover, true, memory_order_relaxed);
	for (unsigned i = 0; i < srv->n_listeners; i++)
		srv->listener[i].handed_over = true;
	cp_server_request_shutdown(srv);
}

void
cp_server_destroy(struct cp_server *srv)
{
	for (unsigned i = 0; i < srv->n_listeners; i++)
		cp_listener_close(&srv->listener[i]);
	srv->n_listeners = 0;
	if (srv->server != NULL) {
		if (srv->fe[0] != NULL && atomic_load(&srv->phase) < CP_PHASE_SHUTDOWN) {
			/* Never served to the end (start-up failed half-way, also before the
			 * start: the core asserts that a server with ports was shut down). */
			grpc_server_shutdown_and_notify(srv->server, srv->fe[0]->cq,
							&srv->shutdown_tag);
			grpc_server_cancel_all_calls(srv->server);
		}
		grpc_server_destroy(srv->server);
		srv->server = NULL;
	}
	for (unsigned i = 0; i < srv->n_fe; i++) {
		struct cp_frontend *fe = srv->fe[i];
		grpc_event ev;

		if (fe == NULL)
			continue;
		grpc_completion_queue_shutdown(fe->cq);
		do {
			ev = grpc_completion_queue_next(fe->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
							NULL);
			/* Slots armed and never used come back now; anything else is a call
			 * whose last batch completes at destruction. */
			if (ev.type == GRPC_OP_COMPLETE)
				cp_fe_drain_event(fe, &ev);
		} while (ev.type != GRPC_QUEUE_SHUTDOWN);
		grpc_completion_queue_destroy(fe->cq);
		cp_fe_destroy(fe);
		srv->fe[i] = NULL;
	}
	if (srv->live != NULL) {
		struct cp_live_rcu *l = caa_container_of(srv->live, struct cp_live_rcu, live);

		cp_auth_free(&l->live.auth);
		free(l);
		srv->live = NULL;
	}
}

/**
 * @file
 * The gRPC server: one grpc_server, served by one or more front ends (control/frontend.h), each
 * with a completion queue of its own on its own lcore; the listeners that feed it; the live
 * settings; the shutdown sequence. The calls and their replies are control/call.h; the server is
 * the top of the control plane's call path (docs/ARCHITECTURE.md, "Layering"): it creates the
 * front ends and owns the method tables, and nothing below it calls it. What the front ends and
 * handlers read of it are the static inline accessors below.
 *
 * Shutdown (SIGTERM): health goes NOT_SERVING at once (Check, Watch, /readyz); for
 * server.shutdown_delay_ms (lame duck) everything is still served; then new calls are answered
 * UNAVAILABLE while the calls already in progress finish (their request bytes may still be
 * arriving: calls are matched when their headers arrive, so the core never holds one we do not
 * know of); once none is left the grpc_server is shut down (GOAWAY) and the process exits. After
 * server.shutdown_grace_ms the calls still open are cancelled with UNAVAILABLE.
 *
 * Context: cp_server_* on the main lcore unless noted. Ownership: the server owns its front ends,
 * listeners and live settings; each front end owns its calls.
 */
#ifndef COREPIPE_CP_GRPC_SERVER_H
#define COREPIPE_CP_GRPC_SERVER_H

#include "control/access_log.h"
#include "control/auth.h"
#include "control/call.h"
#include "control/listener.h"
#include "control/port_watch.h"
#include "control/reload.h"
#include "dataplane/dataplane.h"
#include "dataplane/stat.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cp_server;
struct cp_call;
struct cp_frontend;
struct cp_config;
struct cp_ctl;

/**
 * Settings a reload may change, published with RCU: front ends read them on their RCU read
 * side (valid for the rest of the iteration), the metrics thread under live_lock.
 */
struct cp_live {
	uint32_t default_timeout_ms; /**< deadline for calls that set none */
	uint32_t max_timeout_ms;     /**< cap on any call's deadline */
	unsigned max_nodes;	     /**< inline pipeline node limit */
	uint32_t stream_window;	     /**< frames in flight + responses queued per stream */
	uint32_t inflight_cap;	     /**< limits.max_in_flight: cap on handed-over work (0: none) */
	uint64_t max_request_memory; /**< limits.max_request_memory_mb in bytes (0: none) */
	uint64_t memory_budget;	     /**< limits.memory_budget_mb in bytes (0: none) */
	uint32_t shutdown_grace_ms;  /**< calls still open this long after SIGTERM are cancelled */
	uint32_t shutdown_delay_ms;  /**< lame duck: serve this long after SIGTERM, NOT_SERVING */
	struct dp_shed_conf shed;    /**< published to the workers with these settings */
	struct cp_auth auth;	     /**< owned */
};

/**
 * What a server is created with. Its restart-only server.* settings (grpc_listen,
 * max_message_bytes, max_concurrent_streams, the connection limits and timeouts,
 * inline_max_us, frontend_spin_us, max_response_bytes, max_cancels_per_second, keepalive_*,
 * tls.*) are read in place from @p cfg, the running configuration: none of them is live, so a
 * reload never writes them (cp_config_copy_live copies the live keys only), and each is stated
 * once, in struct cp_config. The live ones are copied into cp_live (cp_server_apply_live).
 */
struct cp_server_conf {
	const struct cp_config *cfg;	     /**< the running configuration; outlives the server */
	struct cp_takeover_client *takeover; /**< a predecessor's sockets to adopt, or NULL */
};

/** Why a request was refused before it ran (GetStats "rejected"). */
enum cp_reject {
	CP_REJECT_INFLIGHT_LIMIT = 0, /**< descriptor pool empty: max_in_flight reached */
	CP_REJECT_POOL_EMPTY,	      /**< no payload buffer of that size free */
	CP_REJECT_TOO_LARGE,	      /**< payload larger than the largest buffer class */
	CP_REJECT_RING_FULL,	      /**< every worker's queue full */
	CP_REJECT_SHEDDING,	      /**< every worker shedding load */
	CP_REJECT_STREAMS,	      /**< every worker's stream slots in use */
	CP_REJECT_NOT_FOUND,	      /**< unknown pipeline name (looked up before submit) */
	CP_REJECT_MEMORY,	      /**< reply memory budget (server.max_response_bytes) */
	CP_REJECT_DRAINING,	      /**< the server is shutting down */
	CP_REJECT_REQUEST_MEMORY,     /**< estimated memory over limits.max_request_memory_mb */
	CP_REJECT_MEMORY_BUDGET,      /**< process-wide estimate over limits.memory_budget_mb */
	CP_REJECT_MAX,
};

/** Phases of the server's life (cp_server.phase). */
enum cp_phase {
	CP_PHASE_SERVING = 0,
	CP_PHASE_LAME_DUCK = 1, /**< signalled: NOT_SERVING, still serving */
	CP_PHASE_DRAINING = 2,	/**< new calls UNAVAILABLE, open calls finish */
	CP_PHASE_SHUTDOWN = 3,	/**< grpc_server shut down (GOAWAY) */
	CP_PHASE_DONE = 4,	/**< every call freed and the shutdown tag seen: reactors stop */
};

struct cp_server {
	struct cp_server_conf conf;
	char listen[128];
	int port;	    /**< bound port of the main listener */
	int plaintext_port; /**< TLS with tls.plaintext_listen: its port */
	grpc_server *server;
	struct dp_dataplane *dp;
	unsigned n_fe;
	struct cp_frontend *fe[DP_FRONTENDS_MAX];
	/** The method tables the front ends arm slots for (g_services, grpc_server.c). */
	struct cp_method *const *services;
	unsigned n_services;
	struct cp_listener listener[2]; /**< [0] main (TLS or plaintext), [1] plaintext extra */
	unsigned n_listeners;
	struct cp_live *live;	   /**< RCU; cp_server_live() */
	pthread_mutex_t live_lock; /**< for readers outside RCU (the metrics thread) */
	struct cp_tag shutdown_tag;
	atomic_bool serving;		/**< health: SERVING vs NOT_SERVING */
	atomic_uint health_gen;		/**< bumped when `serving` changes (Watch) */
	atomic_int phase;		/**< enum cp_phase; written by the control poller */
	atomic_bool shutdown_requested; /**< SIGTERM/SIGINT seen */
	atomic_bool handover;		/**< a successor serves (takeover.h): GOAWAY at once */
	atomic_bool shutdown_tag_seen;	/**< the grpc_server finished shutting down */
	bool started;
	/* Drain accounting (control poller). */
	uint64_t signal_ns, drain_begin_ns, drain_start_ns, grace_deadline_ns;
	long drain_live_at_start;
	uint64_t drain_answered_at_start;
	long drain_cancelled;
	bool cancelled_all;
	/** cp_now_ns() of the last call refused UNAVAILABLE while draining; any front end
	 * stores it (relaxed), the control poller reads it before the GOAWAY. */
	_Atomic uint64_t drain_last_refused_ns;
	struct cp_reload reload; /**< hot reload context (reload.h); the control thread */
	struct cp_ctl *ctl;	 /**< the control thread (ctl.h): reloads, signals */
	struct cp_store *store;	 /**< registry.store (store.h); Admin writes go through it */
	struct cp_takeover_offer *takeover; /**< server.takeover_socket (takeover.h), or NULL */
	struct cp_port_watch port_watch;    /**< UDP port link changes (control poller) */
	bool shed_logged[DP_WORKERS_MAX];   /**< last logged shedding state (control poller) */
	uint64_t ctl_next_ns;		    /**< next control tick */
};

/**
 * Create the server and its front ends, register methods, bind the listeners (not started).
 * @p conf->cfg is the initial configuration (its live settings are copied).
 * @return 0, -EADDRINUSE/-EINVAL when the address cannot be bound, -ENOMEM.
 */
int cp_server_create(struct cp_server *srv, const struct cp_server_conf *conf,
		     struct dp_dataplane *dp);

/** Start serving: listeners accept, request_call slots armed on every front end. */
void cp_server_start(struct cp_server *srv);

/**
 * Run front end 0's reactor on this thread (the main lcore) and launch the others on theirs;
 * returns when the server is done (every call answered after a shutdown request).
 */
void cp_server_run(struct cp_server *srv);

/**
 * Begin a graceful shutdown (see the file comment). Context: any thread; idempotent.
 */
void cp_server_request_shutdown(struct cp_server *srv);

/**
 * A successor took the listening sockets over (control/takeover.h): shut down as on SIGTERM
 * (health NOT_SERVING, the server.shutdown_delay_ms lame duck), except that accepting stops at
 * once (the successor accepts every new connection), calls still arriving are served rather
 * than refused, and the GOAWAY follows the lame duck at once, the calls and streams open here
 * finishing within server.shutdown_grace_ms.
 * Context: any thread (the control thread); idempotent with cp_server_request_shutdown().
 */
void cp_server_request_handover(struct cp_server *srv);

/** Destroy the server, its front ends and completion queues (after cp_server_run). */
void cp_server_destroy(struct cp_server *srv);

/**
 * Make the live settings of @p c (with a copy of its auth table), not yet published.
 * @return them, or NULL (no memory). Context: any control thread.
 */
struct cp_live *cp_server_live_prepare(const struct cp_server *srv, const struct cp_config *c);

/**
 * Publish @p live (consumed) and the dataplane's shedding configuration in it; the old
 * settings are freed after a grace period. Cannot fail.
 * Context: a thread registered with urcu-qsbr (main or control thread).
 */
void cp_server_live_publish(struct cp_server *srv, struct cp_live *live);

/** Free settings that were prepared and not published. Accepts NULL. */
void cp_server_live_discard(struct cp_live *live);

/** cp_server_live_prepare() then publish. @return 0 or -ENOMEM (nothing changed then). */
int cp_server_apply_live(struct cp_server *srv, const struct cp_config *c);

/** Sum of every front end's counter at byte offset @p off of struct cp_fe_stats. */
uint64_t cp_server_stat_sum(const struct cp_server *srv, size_t off);

/** Connections open and refused, over every listener. Context: any. */
void cp_server_connections(const struct cp_server *srv, uint64_t *open, uint64_t *refused);

/*
 * Accessors the front ends and handlers use: static inline, so that nothing below the server
 * calls into grpc_server.c (the layering, docs/ARCHITECTURE.md).
 */

/** The live settings. Context: a front end (online RCU reader); valid for this iteration. */
static inline const struct cp_live *
cp_server_live(const struct cp_server *srv)
{
	return rcu_dereference(srv->live);
}

/**
 * Close the connection of @p peer (grpc_call_get_peer form) on whichever listener has it.
 * Context: any thread.
 */
static inline void
cp_server_kill_peer(struct cp_server *srv, const char *peer)
{
	for (unsigned i = 0; i < srv->n_listeners; i++)
		cp_listener_kill(&srv->listener[i], peer);
}

/**
 * Retry pushback for a refused request, from the backlog of the workers: clamped to
 * [1, 5000] ms. Context: any.
 */
static inline uint32_t
cp_server_pushback_ms(const struct cp_server *srv)
{
	const struct dp_dataplane *dp = srv->dp;
	uint32_t best = 5000;

	/* The soonest any worker expects to have room: each computes its own hint from its
	 * queue and mean service time (worker.c). */
	for (unsigned i = 0; i < dp->n_workers; i++) {
		uint32_t ms =
		    atomic_load_explicit(&dp->workers[i]->lc.pushback_ms, memory_order_relaxed);

		if (ms < best)
			best = ms;
	}
	return best ? best : 1;
}

/* Method tables, one per service file. */
extern struct cp_method cp_pipeline_methods[];
extern struct cp_method cp_admin_methods[];
extern struct cp_method cp_health_methods[];
extern struct cp_method cp_reflection_methods[];

#endif

/**
 * @file
 * The registry store (registry.store): where the pipelines put through the Admin API live
 * besides the process's memory.
 *
 *   - memory: nowhere else (a restart keeps only the config file's pipelines).
 *   - file:   a state file (registry.state_file) holding every API pipeline with its id and
 *             version. Each PutPipeline/DeletePipeline writes the whole new state atomically
 *             (temporary file, fsync, rename over the old one, fsync of the directory) *before*
 *             the registry publishes the change, so a change that was answered OK is durable
 *             and a change that is visible was written. At start the file is read after the
 *             config file's pipelines are published; a torn, corrupt or unreadable file (or a
 *             pipeline in it that no longer compiles) refuses start, naming the file: nothing
 *             of it is applied.
 *   - etcd:   shared by a fleet (control/store_etcd.h), reached through a backend (struct
 *             cp_store_backend) that the program installs: this module names no etcd symbol,
 *             so what links it (the unit tests, the config) does not link the gRPC C core.
 *
 * File format (version 1): one text line
 *   "corepipe-state 1 <payload bytes> <BLAKE2b-256 of the payload, hex>\n"
 * then the payload, a serialised corepipe.v1.ListPipelinesResponse whose pipelines are the
 * API pipelines (spec, id, version), so `protoc --decode corepipe.v1.ListPipelinesResponse`
 * reads it. The file ends exactly where the payload ends.
 *
 * Context: cp_store_open/load/start/close on the main thread; cp_store_put/delete/save on the
 * control thread (ctl.h) only, which makes the store the registry's only writer while serving
 * (front ends hand their Admin writes to it, etcd's watch its changes), so dp_registry_plan()
 * is exact.
 * Ownership: the store borrows the registry; it owns nothing that needs freeing.
 */
#ifndef COREPIPE_CP_STORE_H
#define COREPIPE_CP_STORE_H

#include "corepipe/v1/corepipe.pb-c.h"
#include "dataplane/registry.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cp_ctl;
struct cp_store;
struct cp_store_etcd;

/** registry.store */
enum cp_store_kind {
	CP_STORE_MEMORY = 0,
	CP_STORE_FILE = 1,
	CP_STORE_ETCD = 2, /**< shared by a fleet: control/store_etcd.h */
	CP_STORE_KIND_N,
};

/**
 * "memory" / "file" / "etcd": the kinds' names, spelled here only. Inline, so the config
 * parses and prints registry.store without linking the store (and what the store links).
 */
static inline const char *
cp_store_kind_name(enum cp_store_kind k)
{
	static const char *const names[CP_STORE_KIND_N] = {
	    [CP_STORE_MEMORY] = "memory",
	    [CP_STORE_FILE] = "file",
	    [CP_STORE_ETCD] = "etcd",
	};

	return (unsigned)k < CP_STORE_KIND_N ? names[k] : names[CP_STORE_MEMORY];
}

/** Parse a cp_store_kind_name(). @return 0 or -EINVAL. */
static inline int
cp_store_kind_parse(const char *s, enum cp_store_kind *out)
{
	for (unsigned k = 0; k < CP_STORE_KIND_N; k++)
		if (strcmp(s, cp_store_kind_name((enum cp_store_kind)k)) == 0) {
			*out = (enum cp_store_kind)k;
			return 0;
		}
	return -EINVAL;
}

/** Largest state file read: every registry slot with a spec of the largest size. */
#define CP_STORE_FILE_MAX ((size_t)DP_REGISTRY_MAX * (DP_SPEC_BYTES_MAX + 1024) + 4096)
#define CP_STORE_PATH_MAX 256

/** registry.etcd_*: how the etcd store reaches etcd (control/store_etcd.h). */
struct cp_store_etcd_conf {
	char endpoints[512]; /**< "host:port[,host:port...]": tried in order, next on failure */
	char prefix[128];    /**< the keys' prefix */
	char ca_file[CP_STORE_PATH_MAX];   /**< PEM roots etcd's certificate is checked against;
					      set: TLS to etcd, "": plaintext */
	char cert_file[CP_STORE_PATH_MAX]; /**< client certificate (mutual TLS), with key_file */
	char key_file[CP_STORE_PATH_MAX];
	char
	    server_name[128]; /**< name expected in etcd's certificate ("": each endpoint's host) */
	char user[64];	      /**< etcd auth user ("": no auth), with password_file */
	char password_file[CP_STORE_PATH_MAX]; /**< the password (first line); never logged */
};

/**
 * A store kept outside this module (registry.store: etcd): what cp_store_load/start/close/
 * put/delete do for it, each with that function's contract. The program installs it
 * (cp_store_set_backend()) for the kind that needs it, so store.o names none of the
 * backend's symbols: an ops table rather than a direct call (which linked gRPC into every
 * program that reaches the store or the config), a weak symbol (silent when the backend is
 * missing) or a link-time stub (a second definition to keep in step).
 */
struct cp_store_backend {
	int (*load)(struct cp_store *s, unsigned *n_loaded, char *err, size_t errlen);
	int (*start)(struct cp_store *s, struct cp_ctl *ctl);
	void (*close)(struct cp_store *s); /**< idempotent */
	int (*put)(struct cp_store *s, struct dp_pipeline *p, struct dp_registry_info *info,
		   char *err, size_t errlen);
	int (*del)(struct cp_store *s, const char *name, char *err, size_t errlen);
};

struct cp_store {
	enum cp_store_kind kind;
	const struct cp_store_backend *backend; /**< NULL: memory and file, done here */
	char path[CP_STORE_PATH_MAX];
	struct dp_registry *reg; /**< borrowed */
	uint32_t max_nodes;	 /**< limits.max_nodes for compiling the file's pipelines */
	uint64_t writes;	 /**< state files written (control thread; relaxed atomics) */
	uint64_t write_errors;	 /**< writes that failed: the change was refused */
	/* etcd (store_etcd.c) */
	struct cp_store_etcd_conf etcd_conf;
	struct cp_store_etcd *etcd; /**< client state, NULL until loaded */
};

/** One pipeline as the state file keeps it. */
struct cp_store_rec {
	const struct dp_spec *spec; /**< borrowed */
	uint32_t id;
	uint64_t version;
};

/**
 * Serialise @p n records as a state file (header line and payload).
 * @return 0 with *out (malloc'd; free it) and *len, or -ENOMEM.
 * Context: any thread.
 */
int cp_store_encode(const struct cp_store_rec *recs, unsigned n, uint8_t **out, size_t *len);

/**
 * Check and parse a state file's bytes: header, length (a torn file is shorter), digest (a
 * corrupt one differs), then the payload, each pipeline with a valid name, an id in
 * 1..DP_REGISTRY_MAX and a version > 0, no name or id twice.
 * @return the message (free with protobuf_c_message_free_unpacked) or NULL with @p err saying
 * what is wrong (without the path).
 * Context: any thread.
 */
Corepipe__V1__ListPipelinesResponse *cp_store_decode(const uint8_t *buf, size_t len, char *err,
						     size_t errlen);

/**
 * Write @p len bytes to @p path atomically: @p path.tmp is written and fsync'd, renamed over
 * @p path, and the directory fsync'd (the rename itself is durable). A crash at any point
 * leaves the old file or the new one, never a mix.
 * @return 0 or -errno (the temporary file is removed on failure).
 * Context: a thread that may block (control thread, or main before serving).
 */
int cp_store_write_atomic(const char *path, const void *buf, size_t len);

/** Set up @p s (nothing is read yet). @return 0 or -ENAMETOOLONG. */
int cp_store_open(struct cp_store *s, enum cp_store_kind kind, const char *path,
		  struct dp_registry *reg, uint32_t max_nodes);

/** The etcd store's settings (copied), before cp_store_load(). */
void cp_store_set_etcd(struct cp_store *s, const struct cp_store_etcd_conf *conf);

/**
 * Install @p b (borrowed: a static table, e.g. cp_store_etcd_backend) for a kind this module
 * does not implement itself (etcd), before cp_store_load(). Every call below then goes to it.
 * An etcd store without one refuses to load (-ENOTSUP).
 */
void cp_store_set_backend(struct cp_store *s, const struct cp_store_backend *b);

/**
 * Serving: start what runs beside the control thread (etcd: the watch thread, whose changes
 * are applied by jobs on @p ctl). Nothing for the other stores. @return 0 or -errno.
 * Context: main thread, after cp_ctl_start().
 */
int cp_store_start(struct cp_store *s, struct cp_ctl *ctl);

/** Stop what cp_store_start() started and free the client. Idempotent. Main thread. */
void cp_store_close(struct cp_store *s);

/**
 * The file store's start: read the state file (none yet: an empty state), compile every
 * pipeline in it, then publish them all with their ids and versions (over config pipelines
 * of the same name: the API's change was the later one). A name whose id another name took
 * meanwhile (the config file changed) gets a free id and a warning. Then the state is written
 * back, so an unwritable path refuses start rather than the first Put.
 * A memory store does nothing.
 * @return 0, or -EINVAL (torn, corrupt, or a pipeline that does not compile: nothing
 * applied), -ENOSPC, or -errno of the read or write; @p err names the file. -ENOTSUP: an
 * etcd store with no backend installed.
 * Context: main thread, before serving (a registered urcu-qsbr thread).
 */
int cp_store_load(struct cp_store *s, unsigned *n_loaded, char *err, size_t errlen);

/**
 * Put @p p: write the state with it (its id and version planned), then publish it.
 * @return 0 with @p info, -ENOSPC / -EINVAL (as dp_registry_put), or -errno of the write
 * (nothing published; @p err says what). A memory store only publishes.
 * Context: the control thread. Ownership: consumes @p p.
 */
int cp_store_put(struct cp_store *s, struct dp_pipeline *p, struct dp_registry_info *info,
		 char *err, size_t errlen);

/**
 * Delete @p name: write the state without it, then unpublish it.
 * @return 0, -ENOENT, or -errno of the write (nothing changed; @p err says what).
 * Context: the control thread.
 */
int cp_store_delete(struct cp_store *s, const char *name, char *err, size_t errlen);

/**
 * Write the state as the registry has it now (after a reload, whose file pipelines win over
 * API pipelines of the same name). A memory store does nothing.
 * @return 0 or -errno. Context: the control thread, or main before serving.
 */
int cp_store_save(struct cp_store *s, char *err, size_t errlen);

#endif

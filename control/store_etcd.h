/**
 * @file
 * The etcd registry store (registry.store: etcd), a backend of control/store.c (struct
 * cp_store_backend, which the program installs): pipelines kept in etcd under
 * registry.etcd_prefix (key: prefix + name; value: a serialised corepipe.v1.PipelineInfo, spec
 * and the fleet's id: below), spoken to over etcd's own gRPC API (proto/etcd: KV.Range, KV.Txn,
 * Watch.Watch, Auth.Authenticate) with the gRPC C core and protobuf-c.
 *
 *   - Reaching etcd (struct cp_store_etcd_conf): one channel per endpoint of
 *     registry.etcd_endpoint; the first is used, and a call or watch that finds the one in use
 *     unreachable moves every thread to the next (a unary call tries each endpoint once).
 *     registry.etcd_ca_file set: TLS (the core's ssl channel credentials, with the client
 *     certificate when given, registry.etcd_server_name as the target name override); a TLS
 *     call that fails while etcd accepts TCP is reported as a failed TLS handshake.
 *     registry.etcd_user: Auth.Authenticate gives a token every call carries as the `token`
 *     metadata; etcd refusing it (expired, or etcd restarted) means authenticate again, once
 *     per call; a refused password is an "etcd auth" error (-EACCES), never retried at start.
 *
 *   - Start: Range the prefix, compile everything, publish with version = the key's
 *     mod_revision (all instances agree on it); then a watch thread watches the prefix from the
 *     next revision.
 *   - Put / Delete (the control thread): Range the key for its mod_revision, then a Txn that
 *     puts (deletes) only if the mod_revision is still that one (compare-and-swap; retried a
 *     few times when another writer got there first); published locally at the revision the
 *     Txn committed. etcd unreachable: -EAGAIN with the error naming etcd, the endpoint and
 *     "(TLS)" on TLS; refused by etcd auth: -EACCES naming etcd auth (either way the call
 *     answers UNAVAILABLE), nothing changed.
 *   - Watch (its own thread, never a front end): every batch of events becomes a control-thread
 *     job that applies them through the registry's RCU publish (dp_registry_put_at with the
 *     event's mod_revision; deletes), skipping what the registry already has at that revision
 *     or later (this instance's own writes). The stream broken (etcd down): the data plane
 *     keeps the registry it has, the thread reconnects (to the next endpoint) with backoff and
 *     resumes from the last revision seen; a compacted revision means a full re-read (Range)
 *     and a sync.
 *   - Ids (the UDP path's addresses) are the fleet's: a key's value is a corepipe.v1.PipelineInfo
 *     (spec and id; its version unused), and each id a name holds has a key prefix + "#id/<id>"
 *     (value: the name; '#' is never in a name, so loads and watches skip these keys). A new
 *     name claims an id in the Txn that puts it (the id key must not exist: two instances
 *     claiming one id, one Txn fails and retries with another): the id the name has here
 *     already (a config file pipeline) when the fleet does not hold it, else the lowest id
 *     neither the fleet nor this instance holds. A replace keeps the id; a delete frees it in
 *     the same Txn. Every instance publishes the pipeline at that id; one where the id is
 *     taken (only by a config file pipeline of its own) gives a local one and warns. A value
 *     without an id (a plain PipelineSpec, written before) gets one at its next put. A name's
 *     key deleted outside corepipe (etcdctl del) leaves its id key: the watch seeing such a
 *     delete (no id key deleted in the same revision), and every load and re-read, frees
 *     each orphan id key by a Txn comparing it and its name's key unchanged (once in the
 *     fleet however many instances race; a name put again meanwhile keeps its new id).
 *
 * Context: see each function. Ownership: the store owns its channels, its watch thread, the
 * password (read once at load, wiped at close) and the token.
 */
#ifndef COREPIPE_CP_STORE_ETCD_H
#define COREPIPE_CP_STORE_ETCD_H

#include "control/store.h"

/**
 * The etcd store's entry points, each with the contract of the cp_store_ function it stands
 * for (control/store.h); control/main.c installs it with cp_store_set_backend() for
 * `registry.store: etcd`. load: connect (lazily) and read the prefix, main thread. start: the
 * watch thread, whose jobs run on the control thread. close: stop the watch thread and close
 * the channels, idempotent, main thread. put (consumes the pipeline) and del: through etcd, on
 * the control thread.
 */
extern const struct cp_store_backend cp_store_etcd_backend;

#endif

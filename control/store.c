/*
 * The registry store: the API's pipelines kept in a state file (control/store.h).
 *
 * Write-ahead: a Put or Delete first writes the whole new state (the registry's API pipelines
 * with the change applied, the new one under the id and version dp_registry_plan() says it will
 * get), then publishes. The store is the registry's only writer while serving (the control
 * thread runs every Admin write and every reload), so the plan holds. A failed write leaves
 * the registry as it was and the caller answers the call with the error.
 *
 * The etcd store is not here: it is a backend (struct cp_store_backend, control/store_etcd.c)
 * the program installs, and each entry point below hands it the call when one is installed.
 */
#include "control/store.h"

#include "control/file.h"
#include "control/log.h"
#include "control/pbconv.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC	   "corepipe-state"
#define FORMAT	   1
#define DIGEST_LEN 32 /* BLAKE2b-256 (libsodium crypto_generichash) */
#define HEADER_MAX 128

/* ==== Codec ================================================================================= */

int
cp_store_encode(const struct cp_store_rec *recs, unsigned n, uint8_t **out, size_t *len)
{
	Corepipe__V1__ListPipelinesResponse msg = COREPIPE__V1__LIST_PIPELINES_RESPONSE__INIT;
	Corepipe__V1__PipelineInfo *infos = calloc(n + 1, sizeof(*infos));
	Corepipe__V1__PipelineInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
	Corepipe__V1__PipelineSpec *specs = calloc(n + 1, sizeof(*specs));
	unsigned char digest[DIGEST_LEN];
	char hex[DIGEST_LEN * 2 + 1];
	unsigned made = 0;
	size_t plen, hlen;
	uint8_t *buf = NULL;
	int rc = -ENOMEM;

	if (infos == NULL || ptrs == NULL || specs == NULL)
		goto out;
	for (; made < n; made++) {
		if (cp_pb_spec_from(recs[made].spec, &specs[made]) != 0)
			goto out;
		corepipe__v1__pipeline_info__init(&infos[made]);
		infos[made].spec = &specs[made];
		infos[made].id = recs[made].id;
		infos[made].version = recs[made].version;
		ptrs[made] = &infos[made];
	}
	msg.n_pipelines = n;
	msg.pipelines = ptrs;
	plen = protobuf_c_message_get_packed_size(&msg.base);
	buf = malloc(HEADER_MAX + plen);
	if (buf == NULL)
		goto out;
	protobuf_c_message_pack(&msg.base, buf + HEADER_MAX);
	crypto_generichash(digest, sizeof(digest), buf + HEADER_MAX, plen, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	hlen = (size_t)snprintf((char *)buf, HEADER_MAX, MAGIC " %d %zu %s\n", FORMAT, plen, hex);
	memmove(buf + hlen, buf + HEADER_MAX, plen);
	*out = buf;
	*len = hlen + plen;
	buf = NULL;
	rc = 0;
out:
	for (unsigned i = 0; i < made; i++)
		cp_pb_spec_free(&specs[i]);
	free(buf);
	free(infos);
	free(ptrs);
	free(specs);
	return rc;
}

Corepipe__V1__ListPipelinesResponse *
cp_store_decode(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	Corepipe__V1__ListPipelinesResponse *m;
	unsigned char want[DIGEST_LEN], got[DIGEST_LEN];
	char line[HEADER_MAX + 1], hex[DIGEST_LEN * 2 + 2], magic[16];
	const uint8_t *nl = memchr(buf, '\n', len < HEADER_MAX ? len : HEADER_MAX);
	unsigned long long plen;
	size_t hlen, bin_len = 0;
	int format, used = 0;

	if (nl == NULL) {
		snprintf(err, errlen, "no header line (not a corepipe state file, or torn)");
		return NULL;
	}
	hlen = (size_t)(nl - buf) + 1;
	memcpy(line, buf, hlen - 1);
	line[hlen - 1] = '\0';
	if (sscanf(line, "%15s %d %llu %65s%n", magic, &format, &plen, hex, &used) != 4 ||
	    (size_t)used != hlen - 1 || strcmp(magic, MAGIC) != 0) {
		snprintf(err, errlen, "bad header line (not a corepipe state file)");
		return NULL;
	}
	if (format != FORMAT) {
		snprintf(err, errlen, "format %d, this corepiped reads format %d", format, FORMAT);
		return NULL;
	}
	if (plen != len - hlen) {
		snprintf(err, errlen, "%zu payload bytes, the header says %llu (torn or appended)",
			 len - hlen, plen);
		return NULL;
	}
	if (strlen(hex) != DIGEST_LEN * 2 ||
	    sodium_hex2bin(want, sizeof(want), hex, strlen(hex), NULL, &bin_len, NULL) != 0 ||
	    bin_len != DIGEST_LEN) {
		snprintf(err, errlen, "bad digest in the header");
		return NULL;
	}
	crypto_generichash(got, sizeof(got), buf + hlen, (size_t)plen, NULL, 0);
	if (sodium_memcmp(want, got, sizeof(got)) != 0) {
		snprintf(err, errlen, "digest mismatch (corrupt)");
		return NULL;
	}
	m = (Corepipe__V1__ListPipelinesResponse *)protobuf_c_message_unpack(
	    &corepipe__v1__list_pipelines_response__descriptor, NULL, (size_t)plen, buf + hlen);
	if (m == NULL) {
		snprintf(err, errlen, "payload is not a ListPipelinesResponse");
		return NULL;
	}
	for (size_t i = 0; i < m->n_pipelines; i++) {
		const Corepipe__V1__PipelineInfo *a = m->pipelines[i];

		if (a->spec == NULL || !dp_pipeline_name_valid(a->spec->name) || a->id == 0 ||
		    a->id > DP_REGISTRY_MAX || a->version == 0) {
			snprintf(err, errlen, "entry %zu: bad name, id or version", i);
			goto bad;
		}
		for (size_t j = 0; j < i; j++) {
			const Corepipe__V1__PipelineInfo *b = m->pipelines[j];

			if (strcmp(a->spec->name, b->spec->name) == 0 || a->id == b->id) {
				snprintf(err, errlen, "entries %zu and %zu: same name or id", j, i);
				goto bad;
			}
		}
	}
	return m;
bad:
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return NULL;
}

/* ==== Atomic write ========================================================================== */

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
cp_store_write_atomic(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int fd, dfd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	/* The rename is in the directory: sync it too, or a crash may bring the old file back. */
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	rc = fsync(dfd) != 0 ? -errno : 0;
	close(dfd);
	return rc;
}

/* ==== The store ============================================================================= */

int
cp_store_open(struct cp_store *s, enum cp_store_kind kind, const char *path,
	      struct dp_registry *reg, uint32_t max_nodes)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->reg = reg;
	s->max_nodes = max_nodes;
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s", path ? path : "") >= sizeof(s->path))
		return -ENAMETOOLONG;
	return 0;
}

void
cp_store_set_etcd(struct cp_store *s, const struct cp_store_etcd_conf *conf)
{
	s->etcd_conf = *conf;
}

void
cp_store_set_backend(struct cp_store *s, const struct cp_store_backend *b)
{
	s->backend = b;
}

int
cp_store_start(struct cp_store *s, struct cp_ctl *ctl)
{
	return s->backend != NULL ? s->backend->start(s, ctl) : 0;
}

void
cp_store_close(struct cp_store *s)
{
	if (s->backend != NULL)
		s->backend->close(s);
}

/* The registry's API pipelines (not the config file's), referenced. */
struct snap {
	struct dp_pipeline **p;
	unsigned n;
};

static int
snap_add(struct dp_pipeline *p, void *arg)
{
	struct snap *sn = arg;

	if (p->from_file || sn->n == DP_REGISTRY_MAX)
		return 0;
	dp_pipeline_ref(p);
	sn->p[sn->n++] = p;
	return 0;
}

static void
snap_free(struct snap *sn)
{
	for (unsigned i = 0; i < sn->n; i++)
		dp_pipeline_unref(sn->p[i]);
	free(sn->p);
}

/*
 * Write the registry's API pipelines, without @p drop (NULL: none) and with @p add (NULL:
 * none; its id and version are the planned ones) in place of its name's.
 */
static int
write_state(struct cp_store *s, const char *drop, const struct cp_store_rec *add, char *err,
	    size_t errlen)
{
	struct snap sn = {.p = calloc(DP_REGISTRY_MAX + 1, sizeof(struct dp_pipeline *))};
	struct cp_store_rec *recs = calloc(DP_REGISTRY_MAX + 2, sizeof(*recs));
	unsigned n = 0;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -ENOMEM;

	if (sn.p == NULL || recs == NULL)
		goto out;
	rc = dp_registry_for_each(s->reg, snap_add, &sn);
	if (rc != 0)
		goto out;
	for (unsigned i = 0; i < sn.n; i++) {
		const struct dp_pipeline *p = sn.p[i];

		if ((drop != NULL && strcmp(p->name, drop) == 0) ||
		    (add != NULL && strcmp(p->name, add->spec->name) == 0))
			continue;
		recs[n++] =
		    (struct cp_store_rec){.spec = p->spec, .id = p->id, .version = p->version};
	}
	if (add != NULL)
		recs[n++] = *add;
	rc = cp_store_encode(recs, n, &buf, &len);
	if (rc != 0)
		goto out;
	rc = cp_store_write_atomic(s->path, buf, len);
out:
	/* Relaxed: counters the metrics thread reads (cp_metrics_http). */
	if (rc != 0) {
		__atomic_fetch_add(&s->write_errors, 1, __ATOMIC_RELAXED);
		snprintf(err, errlen, "state file %s: cannot write: %s", s->path, strerror(-rc));
		cp_log(CP_LOG_ERROR, "registry store: cannot write the state file",
		       CP_LF_STR("file", s->path), CP_LF_STR("error", strerror(-rc)));
	} else {
		__atomic_fetch_add(&s->writes, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	free(recs);
	snap_free(&sn);
	return rc;
}

int
cp_store_save(struct cp_store *s, char *err, size_t errlen)
{
	if (s->kind != CP_STORE_FILE)
		return 0;
	return write_state(s, NULL, NULL, err, errlen);
}

int
cp_store_put(struct cp_store *s, struct dp_pipeline *p, struct dp_registry_info *info, char *err,
	     size_t errlen)
{
	struct cp_store_rec rec = {.spec = p->spec};
	int rc;

	if (s->backend != NULL)
		return s->backend->put(s, p, info, err, errlen);
	if (s->kind != CP_STORE_FILE)
		return dp_registry_put(s->reg, p, info);
	rc = dp_registry_plan(s->reg, p->spec->name, &rec.id, &rec.version);
	if (rc == 0)
		rc = write_state(s, NULL, &rec, err, errlen);
	if (rc != 0) {
		dp_pipeline_unref(p);
		return rc;
	}
	return dp_registry_put_at(s->reg, p, rec.id, rec.version, info);
}

int
cp_store_delete(struct cp_store *s, const char *name, char *err, size_t errlen)
{
	struct dp_pipeline *p;
	int rc;

	if (s->backend != NULL)
		return s->backend->del(s, name, err, errlen);
	if (s->kind != CP_STORE_FILE)
		return dp_registry_delete(s->reg, name);
	p = dp_registry_get(s->reg, name);
	if (p == NULL)
		return -ENOENT;
	dp_pipeline_unref(p);
	rc = write_state(s, name, NULL, err, errlen);
	return rc != 0 ? rc : dp_registry_delete(s->reg, name);
}

int
cp_store_load(struct cp_store *s, unsigned *n_loaded, char *err, size_t errlen)
{
	Corepipe__V1__ListPipelinesResponse *m = NULL;
	struct dp_pipeline **ps = NULL;
	char what[256];
	char *buf = NULL;
	size_t len = 0, n = 0;
	int rc;

	*n_loaded = 0;
	if (s->backend != NULL)
		return s->backend->load(s, n_loaded, err, errlen);
	if (s->kind == CP_STORE_ETCD) {
		snprintf(err, errlen, "registry.store: etcd: no etcd backend in this program");
		return -ENOTSUP;
	}
	if (s->kind != CP_STORE_FILE)
		return 0;
	if (access(s->path, F_OK) != 0 && errno == ENOENT) {
		cp_log(CP_LOG_INFO, "registry store: no state file yet, starting empty",
		       CP_LF_STR("file", s->path));
		return cp_store_save(s, err, errlen);
	}
	rc = cp_file_read(s->path, CP_STORE_FILE_MAX, &buf, &len, what, sizeof(what));
	if (rc != 0) {
		snprintf(err, errlen, "state file %s", what);
		return rc;
	}
	m = cp_store_decode((const uint8_t *)buf, len, what, sizeof(what));
	if (m == NULL) {
		snprintf(err, errlen,
			 "state file %s: %s; refusing to start (move it away to start without "
			 "the API's pipelines)",
			 s->path, what);
		rc = -EINVAL;
		goto out;
	}
	/* Compile everything before publishing anything: all or nothing. */
	ps = calloc(m->n_pipelines + 1, sizeof(*ps));
	if (ps == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "state file %s: out of memory", s->path);
		goto out;
	}
	for (n = 0; n < m->n_pipelines; n++) {
		struct dp_spec view;
		struct dp_err e;

		if (cp_spec_view(m->pipelines[n]->spec, &view) != 0) {
			rc = -ENOMEM;
			snprintf(err, errlen, "state file %s: out of memory", s->path);
			goto out;
		}
		ps[n] = dp_pipeline_compile(&view, s->max_nodes, &e);
		cp_spec_view_free(&view);
		if (ps[n] == NULL) {
			rc = -EINVAL;
			snprintf(err, errlen, "state file %s: pipeline '%s' does not compile: %s",
				 s->path, m->pipelines[n]->spec->name, e.msg);
			goto out;
		}
	}
	/* Publish: each with its own id first; a name whose id was taken (the config file
	 * changed since) gets a free one in the second pass. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const Corepipe__V1__PipelineInfo *a = m->pipelines[i];
			struct dp_registry_info info;

			if (ps[i] == NULL)
				continue;
			if (pass == 0) {
				dp_pipeline_ref(ps[i]); /* kept in case the id is taken */
				rc = dp_registry_put_at(s->reg, ps[i], a->id, a->version, &info);
				if (rc == -EEXIST)
					continue;
				dp_pipeline_unref(ps[i]);
			} else {
				rc = dp_registry_put_at(s->reg, ps[i], 0, a->version, &info);
				if (rc == 0)
					cp_log(CP_LOG_WARN,
					       "registry store: pipeline's id is taken, given a "
					       "new one",
					       CP_LF_STR("pipeline", a->spec->name),
					       CP_LF_U64("stored_id", a->id),
					       CP_LF_U64("id", info.id));
			}
			ps[i] = NULL; /* consumed */
			if (rc != 0) {
				snprintf(err, errlen,
					 "state file %s: pipeline '%s': cannot publish: %s",
					 s->path, a->spec->name, strerror(-rc));
				goto out;
			}
			(*n_loaded)++;
			cp_log(CP_LOG_INFO, "pipeline added", CP_LF_STR("pipeline", a->spec->name),
			       CP_LF_U64("id", info.id), CP_LF_U64("version", info.version),
			       CP_LF_STR("source", "state_file"));
		}
	}
	/* Written back at once: a path that cannot be written refuses start, not the first
	 * Put (and the ids given out in the second pass are kept). */
	rc = cp_store_save(s, err, errlen);
out:
	for (size_t i = 0; ps != NULL && i < n; i++)
		dp_pipeline_unref(ps[i]);
	free(ps);
	if (m != NULL)
		protobuf_c_message_free_unpacked(&m->base, NULL);
	free(buf);
	return rc;
}

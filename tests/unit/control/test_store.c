/*
 * Registry store (control/store.c): the state file's codec (round trip; torn, corrupt,
 * appended and foreign files refused), the atomic write, and the file store against a real
 * registry: put and delete are written before they are published, a load restores names,
 * ids and versions, a corrupt file changes nothing, and a taken id is replaced by a free one.
 * The kinds' names, and a backend (etcd's place) getting every call once installed. This test
 * links no etcd client and no gRPC: the store reaches etcd only through the backend table.
 * No EAL: the registry and pipelines use malloc and liburcu only.
 */
#include "control/store.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
	struct dp_registry *reg;
	char dir[64];
	char path[128];
	struct cp_store st;
};

static struct dp_pipeline *
make(const char *name, const char *type, const char *db)
{
	struct dp_param prm = {.key = "db", .value = (char *)db};
	struct dp_node_spec n = {.type = (char *)type, .n_params = db ? 1 : 0, .params = &prm};
	struct dp_spec s = {.name = (char *)name, .n_nodes = 1, .nodes = &n};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 32, &err);

	assert_non_null(p);
	return p;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	urcu_qsbr_register_thread();
	urcu_qsbr_thread_offline();
	f->reg = dp_registry_create();
	snprintf(f->dir, sizeof(f->dir), "/tmp/cp-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state", f->dir);
	assert_int_equal(cp_store_open(&f->st, CP_STORE_FILE, f->path, f->reg, 32), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char tmp[160];

	dp_registry_destroy(f->reg);
	unlink(f->path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	unlink(tmp);
	rmdir(f->dir);
	urcu_qsbr_unregister_thread();
	free(f);
	return 0;
}

static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 20);

	assert_non_null(fp);
	*len = fread(buf, 1, 1 << 20, fp);
	fclose(fp);
	return buf;
}

static void
write_raw(const char *path, const uint8_t *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

/* ==== Codec ================================================================================= */

static void
test_store_encode_decode_round_trip(void **state)
{
	struct dp_pipeline *a = make("alpha", "gain", "3"), *b = make("beta", "passthrough", NULL);
	struct cp_store_rec recs[2] = {{a->spec, 7, 42}, {b->spec, 1, 9}};
	Corepipe__V1__ListPipelinesResponse *m;
	uint8_t *buf;
	size_t len;
	char err[128];

	(void)state;
	assert_int_equal(cp_store_encode(recs, 2, &buf, &len), 0);
	assert_memory_equal(buf, "corepipe-state 1 ", 17);
	m = cp_store_decode(buf, len, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->n_pipelines, 2);
	assert_string_equal(m->pipelines[0]->spec->name, "alpha");
	assert_int_equal(m->pipelines[0]->id, 7);
	assert_int_equal(m->pipelines[0]->version, 42);
	assert_string_equal(m->pipelines[0]->spec->nodes[0]->type, "gain");
	assert_string_equal(m->pipelines[1]->spec->name, "beta");
	assert_int_equal(m->pipelines[1]->id, 1);
	protobuf_c_message_free_unpacked(&m->base, NULL);
	free(buf);
	dp_pipeline_unref(a);
	dp_pipeline_unref(b);
}

static void
test_store_decode_refuses_torn_corrupt_appended_and_foreign(void **state)
{
	struct dp_pipeline *a = make("alpha", "gain", "3");
	struct cp_store_rec rec = {a->spec, 1, 1};
	uint8_t *buf, *copy;
	size_t len;
	char err[128];

	(void)state;
	assert_int_equal(cp_store_encode(&rec, 1, &buf, &len), 0);
	copy = malloc(len + 1);
	/* Torn: every shorter prefix is refused. */
	for (size_t n = 0; n < len; n++) {
		memcpy(copy, buf, n);
		assert_null(cp_store_decode(copy, n, err, sizeof(err)));
	}
	/* Corrupt: a flipped bit in the payload. */
	memcpy(copy, buf, len);
	copy[len - 2] ^= 0x10;
	assert_null(cp_store_decode(copy, len, err, sizeof(err)));
	assert_non_null(strstr(err, "digest mismatch"));
	/* Appended. */
	memcpy(copy, buf, len);
	copy[len] = 'x';
	assert_null(cp_store_decode(copy, len + 1, err, sizeof(err)));
	assert_non_null(strstr(err, "torn or appended"));
	/* Foreign. */
	assert_null(
	    cp_store_decode((const uint8_t *)"pipelines:\n  - name: x\n", 23, err, sizeof(err)));
	assert_non_null(strstr(err, "not a corepipe state file"));
	free(copy);
	free(buf);
	dp_pipeline_unref(a);
}

static void
test_store_decode_refuses_duplicate_ids(void **state)
{
	struct dp_pipeline *a = make("alpha", "gain", "3"), *b = make("beta", "passthrough", NULL);
	struct cp_store_rec recs[2] = {{a->spec, 3, 1}, {b->spec, 3, 2}};
	uint8_t *buf;
	size_t len;
	char err[128];

	(void)state;
	assert_int_equal(cp_store_encode(recs, 2, &buf, &len), 0);
	assert_null(cp_store_decode(buf, len, err, sizeof(err)));
	assert_non_null(strstr(err, "same name or id"));
	free(buf);
	dp_pipeline_unref(a);
	dp_pipeline_unref(b);
}

static void
test_store_write_atomic_replaces_and_leaves_no_temp(void **state)
{
	struct fx *f = *state;
	char tmp[160];
	uint8_t *got;
	size_t len;

	assert_int_equal(cp_store_write_atomic(f->path, "one", 3), 0);
	assert_int_equal(cp_store_write_atomic(f->path, "second", 6), 0);
	got = read_all(f->path, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(got, "second", 6);
	free(got);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(cp_store_write_atomic("/nonexistent-dir/x/state", "a", 1), -ENOENT);
}

/* ==== The file store ======================================================================== */

static void
test_store_put_delete_then_load_restores_ids_and_versions(void **state)
{
	struct fx *f = *state;
	struct dp_registry_info ia, ib, ic;
	struct dp_registry *r2;
	struct cp_store st2;
	struct dp_pipeline *p;
	unsigned n = 0;
	char err[256];

	assert_int_equal(cp_store_load(&f->st, &n, err, sizeof(err)), 0); /* no file yet */
	assert_int_equal(n, 0);
	assert_int_equal(access(f->path, F_OK), 0); /* written back at start */
	/* A config pipeline is not the store's. */
	p = make("cfg", "passthrough", NULL);
	p->from_file = true;
	assert_int_equal(dp_registry_put(f->reg, p, &ia), 0);
	assert_int_equal(cp_store_put(&f->st, make("a", "gain", "1"), &ia, err, sizeof(err)), 0);
	assert_int_equal(cp_store_put(&f->st, make("b", "gain", "2"), &ib, err, sizeof(err)), 0);
	assert_int_equal(cp_store_put(&f->st, make("a", "gain", "4"), &ic, err, sizeof(err)), 0);
	assert_int_equal(ic.id, ia.id);
	assert_true(ic.replaced);
	assert_int_equal(cp_store_delete(&f->st, "b", err, sizeof(err)), 0);
	assert_int_equal(cp_store_delete(&f->st, "b", err, sizeof(err)), -ENOENT);
	assert_int_equal(f->st.writes, 5);

	/* A new process: its config pipeline first, then the state file. */
	r2 = dp_registry_create();
	p = make("cfg", "passthrough", NULL);
	p->from_file = true;
	assert_int_equal(dp_registry_put(r2, p, &ia), 0);
	assert_int_equal(cp_store_open(&st2, CP_STORE_FILE, f->path, r2, 32), 0);
	assert_int_equal(cp_store_load(&st2, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	p = dp_registry_get(r2, "a");
	assert_non_null(p);
	assert_int_equal(p->id, ic.id);
	assert_int_equal(p->version, ic.version);
	assert_string_equal(p->spec->nodes[0].params[0].value, "4");
	assert_false(p->from_file);
	dp_pipeline_unref(p);
	assert_null(dp_registry_get(r2, "b"));
	/* Versions go on after the restored ones. */
	assert_int_equal(cp_store_put(&st2, make("c", "gain", "1"), &ib, err, sizeof(err)), 0);
	assert_true(ib.version > ic.version);
	dp_registry_destroy(r2);
}

static void
test_store_load_corrupt_file_changes_nothing(void **state)
{
	struct fx *f = *state;
	struct dp_registry_info info;
	struct dp_registry *r2;
	struct cp_store st2;
	uint8_t *buf;
	size_t len;
	unsigned n = 7;
	char err[512];

	assert_int_equal(cp_store_put(&f->st, make("a", "gain", "1"), &info, err, sizeof(err)), 0);
	assert_int_equal(cp_store_put(&f->st, make("b", "gain", "1"), &info, err, sizeof(err)), 0);
	buf = read_all(f->path, &len);
	write_raw(f->path, buf, len - 5); /* torn */
	r2 = dp_registry_create();
	assert_int_equal(cp_store_open(&st2, CP_STORE_FILE, f->path, r2, 32), 0);
	assert_int_equal(cp_store_load(&st2, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "torn"));
	assert_null(dp_registry_get(r2, "a"));
	/* The file is left as it was found, for the operator to look at. */
	{
		size_t now;
		uint8_t *again = read_all(f->path, &now);

		assert_int_equal(now, len - 5);
		assert_memory_equal(again, buf, now);
		free(again);
	}
	free(buf);
	dp_registry_destroy(r2);
}

static void
test_store_load_taken_id_gets_a_free_one(void **state)
{
	struct fx *f = *state;
	struct dp_registry_info ia, ib;
	struct dp_registry *r2;
	struct cp_store st2;
	struct dp_pipeline *p;
	unsigned n;
	char err[256];

	assert_int_equal(cp_store_put(&f->st, make("a", "gain", "1"), &ia, err, sizeof(err)), 0);
	assert_int_equal(ia.id, 1);
	r2 = dp_registry_create();
	p = make("other", "passthrough", NULL); /* takes id 1 first */
	p->from_file = true;
	assert_int_equal(dp_registry_put(r2, p, &ib), 0);
	assert_int_equal(ib.id, 1);
	assert_int_equal(cp_store_open(&st2, CP_STORE_FILE, f->path, r2, 32), 0);
	assert_int_equal(cp_store_load(&st2, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	p = dp_registry_get(r2, "a");
	assert_int_equal(p->id, 2);
	assert_int_equal(p->version, ia.version);
	dp_pipeline_unref(p);
	dp_registry_destroy(r2);
}

static void
test_store_write_failure_publishes_nothing(void **state)
{
	struct fx *f = *state;
	struct dp_registry_info info;
	struct cp_store bad;
	char err[256];

	assert_int_equal(cp_store_open(&bad, CP_STORE_FILE, "/nonexistent-dir/state", f->reg, 32),
			 0);
	assert_int_equal(cp_store_put(&bad, make("a", "gain", "1"), &info, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent-dir/state"));
	assert_null(dp_registry_get(f->reg, "a"));
	assert_int_equal(bad.write_errors, 1);
}

/* ==== Kinds and backends ==================================================================== */

static void
test_store_kind_names_round_trip(void **state)
{
	enum cp_store_kind k = CP_STORE_MEMORY;

	(void)state;
	for (unsigned i = 0; i < CP_STORE_KIND_N; i++) {
		assert_int_equal(cp_store_kind_parse(cp_store_kind_name((enum cp_store_kind)i), &k),
				 0);
		assert_int_equal(k, i);
	}
	assert_string_equal(cp_store_kind_name(CP_STORE_ETCD), "etcd");
	assert_int_equal(cp_store_kind_parse("etcetera", &k), -EINVAL);
	assert_int_equal(cp_store_kind_parse("", &k), -EINVAL);
	assert_int_equal(k, CP_STORE_KIND_N - 1); /* unchanged by a refused name */
}

/* A backend that counts its calls and answers with fake_rc. */
static struct {
	unsigned load, start, close, put, del;
	int rc;
} fake;

static int
fake_load(struct cp_store *s, unsigned *n_loaded, char *err, size_t errlen)
{
	(void)s, (void)err, (void)errlen;
	fake.load++;
	*n_loaded = 7;
	return fake.rc;
}

static int
fake_start(struct cp_store *s, struct cp_ctl *ctl)
{
	(void)s, (void)ctl;
	fake.start++;
	return fake.rc;
}

static void
fake_close(struct cp_store *s)
{
	(void)s;
	fake.close++;
}

static int
fake_put(struct cp_store *s, struct dp_pipeline *p, struct dp_registry_info *info, char *err,
	 size_t errlen)
{
	(void)s, (void)info, (void)err, (void)errlen;
	fake.put++;
	dp_pipeline_unref(p); /* consumed, as cp_store_put's contract says */
	return fake.rc;
}

static int
fake_del(struct cp_store *s, const char *name, char *err, size_t errlen)
{
	(void)s, (void)name, (void)err, (void)errlen;
	fake.del++;
	return fake.rc;
}

static const struct cp_store_backend fake_backend = {
    .load = fake_load,
    .start = fake_start,
    .close = fake_close,
    .put = fake_put,
    .del = fake_del,
};

static void
test_store_etcd_without_backend_refuses_to_load(void **state)
{
	struct fx *f = *state;
	struct cp_store st;
	unsigned n = 1;
	char err[256] = "";

	assert_int_equal(cp_store_open(&st, CP_STORE_ETCD, NULL, f->reg, 32), 0);
	assert_int_equal(cp_store_load(&st, &n, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, "etcd"));
	assert_int_equal(cp_store_start(&st, NULL), 0); /* nothing to start or close */
	cp_store_close(&st);
}

static void
test_store_backend_gets_every_call(void **state)
{
	struct fx *f = *state;
	struct dp_registry_info info;
	struct cp_store st;
	unsigned n = 0;
	char err[256];

	memset(&fake, 0, sizeof(fake));
	assert_int_equal(cp_store_open(&st, CP_STORE_ETCD, NULL, f->reg, 32), 0);
	cp_store_set_backend(&st, &fake_backend);
	assert_int_equal(cp_store_load(&st, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 7);
	assert_int_equal(cp_store_start(&st, NULL), 0);
	assert_int_equal(cp_store_put(&st, make("a", "gain", "1"), &info, err, sizeof(err)), 0);
	assert_int_equal(cp_store_delete(&st, "a", err, sizeof(err)), 0);
	fake.rc = -EAGAIN; /* the backend's errors are the caller's */
	assert_int_equal(cp_store_put(&st, make("b", "gain", "1"), &info, err, sizeof(err)),
			 -EAGAIN);
	assert_int_equal(cp_store_delete(&st, "b", err, sizeof(err)), -EAGAIN);
	assert_int_equal(cp_store_save(&st, err, sizeof(err)), 0); /* not a file store */
	cp_store_close(&st);
	assert_int_equal(fake.load, 1);
	assert_int_equal(fake.start, 1);
	assert_int_equal(fake.put, 2);
	assert_int_equal(fake.del, 2);
	assert_int_equal(fake.close, 1);
	/* The registry is the backend's to change: store.c published nothing itself. */
	assert_null(dp_registry_get(f->reg, "a"));
	assert_null(dp_registry_get(f->reg, "b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_store_encode_decode_round_trip),
	    cmocka_unit_test(test_store_decode_refuses_torn_corrupt_appended_and_foreign),
	    cmocka_unit_test(test_store_decode_refuses_duplicate_ids),
	    cmocka_unit_test_setup_teardown(test_store_write_atomic_replaces_and_leaves_no_temp,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_store_put_delete_then_load_restores_ids_and_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_load_corrupt_file_changes_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_load_taken_id_gets_a_free_one, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_write_failure_publishes_nothing, setup,
					    teardown),
	    cmocka_unit_test(test_store_kind_names_round_trip),
	    cmocka_unit_test_setup_teardown(test_store_etcd_without_backend_refuses_to_load, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_backend_gets_every_call, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * micro_lookup: TSC cycles per pipeline lookup, the RCU registry a worker reads for every
 * request against the alternatives, with and without a writer replacing pipelines.
 *
 * hard-wired:  the pipeline pointer read from an array (no lookup at all: the floor);
 * registry:    dp_registry_lookup(name, hash) (liburcu rculfhash) on an online urcu-qsbr
 *              reader with a quiescent state every 32 lookups, as a worker per burst; the
 *              hash is precomputed (the control thread computes it once per request);
 * registry id: dp_registry_lookup_id(id), the by-reference path (one rcu_dereference);
 * rwlock:      the same pipelines in an open-addressing table keyed by the same hash
 *              (dp_name_hash, CRC-32C) with strcmp on a match, the lookup inside a
 *              Concurrency Kit ck_rwlock read lock.
 * Every case reads p->id of what it found, so the pipeline's cache line is touched alike.
 *
 * Lookups visit the N registered names (16 and 1024) in a shuffled order. With a writer, a
 * thread on lcore 1 (CPU 1) loops compiling a passthrough pipeline and publishing it under an
 * existing name: dp_registry_put() (replace, old one freed after a grace period) for the
 * hard-wired and registry cases, ck_rwlock write lock + pointer swap for the rwlock case.
 * The writer runs paced (one publication every PACE_US = 10 us: 100,000/s, far more than any
 * configuration reload) and flat out (millions per second: a stress case, where even RCU
 * readers miss in cache on the nodes the writer keeps replacing). A last table has no writer
 * but a second reader on lcore 1 running the same lookups: readers that write shared state
 * (the rwlock's reader count) slow each other down; RCU readers write nothing shared. Its
 * control row runs dp_registry_lookup against a second reader doing hard-wired reads, which
 * shares no data: what that row loses is the machine (two busy vCPUs), not the registry.
 */
#include "dataplane/registry.h"
#include "perf/micro/micro.h"

#include <ck_rwlock.h>
#include <inttypes.h>

#define N_MAX	      1024
#define LOOKUPS	      (1u << 16)
#define QS_EVERY      32
#define PACE_US	      10
#define SECOND_READER 3 /* no writer, a second reader on lcore 1 */

enum kind { HARD, REGISTRY, REGISTRY_ID, RWLOCK };

struct entry {
	uint32_t hash;
	const char *name;
	struct dp_pipeline *p;
};

struct lookup_case {
	enum kind kind;
	unsigned n; /* pipelines registered: a power of two */
	int writer; /* 0: none; 1: paced, one publication per PACE_US; 2: flat out; SECOND_READER */
	int other;  /* SECOND_READER: what the second reader runs, when not the same kind + 1 */
};

static struct dp_registry *g_reg;
static char g_names[N_MAX][16];
static uint32_t g_hash[N_MAX], g_id[N_MAX];
static struct dp_pipeline *g_ptr[N_MAX]; /* our own references: never freed while we run */
static unsigned g_order[N_MAX];
static struct entry g_tbl[2 * N_MAX];
static unsigned g_tbl_mask;
static ck_rwlock_t g_rw = CK_RWLOCK_INITIALIZER;

static int g_stop;		 /* release by the main reader; acquire in writer(), reader() */
static int g_go;		 /* release by the main reader; acquire in reader() */
static uint64_t g_writes;	 /* writer's count of publications in the last round */
static volatile uint32_t g_sink; /* keeps the found pointers live */

static struct dp_pipeline *
compile(const char *name)
{
	struct dp_node_spec ns = {.type = "passthrough"};
	struct dp_spec s = {.name = (char *)name, .n_nodes = 1, .nodes = &ns};
	struct dp_err err;
	struct dp_pipeline *p = dp_pipeline_compile(&s, 4, &err);

	if (p == NULL) {
		fprintf(stderr, "compile: %s\n", err.msg);
		exit(1);
	}
	return p;
}

/* ==== the rwlock table (writers hold the write lock; readers the read lock) ==== */

static struct entry *
tbl_find(const char *name, uint32_t hash)
{
	for (unsigned i = hash & g_tbl_mask;; i = (i + 1) & g_tbl_mask) {
		struct entry *e = &g_tbl[i];

		if (e->name == NULL)
			return NULL;
		if (e->hash == hash && strcmp(e->name, name) == 0)
			return e;
	}
}

static void
tbl_fill(unsigned n)
{
	for (unsigned i = 0; i < 2 * N_MAX; i++)
		if (g_tbl[i].p != NULL)
			dp_pipeline_unref(g_tbl[i].p);
	memset(g_tbl, 0, sizeof(g_tbl));
	g_tbl_mask = 2 * n - 1;
	for (unsigned k = 0; k < n; k++) {
		unsigned i = g_hash[k] & g_tbl_mask;

		while (g_tbl[i].name != NULL)
			i = (i + 1) & g_tbl_mask;
		g_tbl[i] = (struct entry){g_hash[k], g_names[k], g_ptr[k]};
		dp_pipeline_ref(g_ptr[k]);
	}
}

/* ==== the writer on lcore 1 ==== */

static int
writer(void *arg)
{
	const struct lookup_case *c = arg;
	uint64_t dl = micro_deadline(), w = 0, next = rte_rdtsc();
	uint64_t pace = c->writer == 1 ? rte_get_tsc_hz() / 1000000 * PACE_US : 0;

	urcu_qsbr_register_thread();
	while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE) && rte_rdtsc() < dl) {
		unsigned k = (unsigned)(w % c->n);
		struct dp_pipeline *p = compile(g_names[k]), *old;
		struct dp_registry_info info;

		next += pace;
		while (rte_rdtsc() < next)
			rte_pause();
		if (c->kind == RWLOCK) {
			ck_rwlock_write_lock(&g_rw);
			struct entry *e = tbl_find(g_names[k], g_hash[k]);

			old = e->p;
			e->p = p;
			ck_rwlock_write_unlock(&g_rw);
			dp_pipeline_unref(old);
		} else if (dp_registry_put(g_reg, p, &info) != 0) {
			break;
		}
		w++;
	}
	urcu_qsbr_unregister_thread();
	__atomic_store_n(&g_writes, w, __ATOMIC_RELAXED);
	return 0;
}

/* ==== the reader: one round ==== */

/* Hot path: per request, worker lcores (the loops below stand for a worker's lookups). */

/* @p c->n lookups of kind @p c->kind, LOOKUPS of them, as an online reader. */
static uint32_t
lookups(const struct lookup_case *c)
{
	unsigned mask = c->n - 1;
	uint32_t sink = 0;

	urcu_qsbr_thread_online();
	switch (c->kind) {
	case HARD:
		for (unsigned i = 0; i < LOOKUPS; i++)
			sink += g_ptr[g_order[i & mask]]->id;
		break;
	case REGISTRY:
		for (unsigned i = 0; i < LOOKUPS; i++) {
			unsigned k = g_order[i & mask];
			const struct dp_pipeline *p =
			    dp_registry_lookup(g_reg, g_names[k], g_hash[k]);

			sink += p->id;
			if ((i & (QS_EVERY - 1)) == QS_EVERY - 1)
				dp_rcu_quiescent_state();
		}
		break;
	case REGISTRY_ID:
		for (unsigned i = 0; i < LOOKUPS; i++) {
			const struct dp_pipeline *p =
			    dp_registry_lookup_id(g_reg, g_id[g_order[i & mask]]);

			sink += p->id;
			if ((i & (QS_EVERY - 1)) == QS_EVERY - 1)
				dp_rcu_quiescent_state();
		}
		break;
	case RWLOCK:
		for (unsigned i = 0; i < LOOKUPS; i++) {
			unsigned k = g_order[i & mask];

			ck_rwlock_read_lock(&g_rw);
			sink += tbl_find(g_names[k], g_hash[k])->p->id;
			ck_rwlock_read_unlock(&g_rw);
		}
		break;
	}
	dp_rcu_thread_offline();
	return sink;
}

/* A second reader on lcore 1: the same lookups (or c->other's), while the main one measures. */
static int
reader(void *arg)
{
	const struct lookup_case *c = arg;
	struct lookup_case mine = *c;
	uint64_t dl = micro_deadline();

	if (c->other)
		mine.kind = (enum kind)(c->other - 1);
	urcu_qsbr_register_thread();
	dp_rcu_thread_offline();
	/* Acquire: pairs with the release of g_go in run_case(). */
	while (!__atomic_load_n(&g_go, __ATOMIC_ACQUIRE) && rte_rdtsc() < dl)
		;
	/* Keep reading for as long as the main reader measures. */
	while (!__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE) && rte_rdtsc() < dl)
		g_sink = lookups(&mine);
	urcu_qsbr_unregister_thread();
	return 0;
}

static double
run_case(void *arg)
{
	const struct lookup_case *c = arg;
	unsigned lc = 0;
	uint32_t sink;
	uint64_t t0;

	if (c->kind == RWLOCK)
		tbl_fill(c->n);
	if (c->writer) {
		lc = micro_helper_lcore();
		__atomic_store_n(&g_stop, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&g_go, 0, __ATOMIC_RELAXED);
		if (rte_eal_remote_launch(c->writer == SECOND_READER ? reader : writer, (void *)c,
					  lc) != 0)
			return NAN;
	}
	t0 = rte_rdtsc();
	/* Release: pairs with the acquire in reader(). */
	__atomic_store_n(&g_go, 1, __ATOMIC_RELEASE);
	sink = lookups(c);
	t0 = rte_rdtsc() - t0;
	if (c->writer) {
		/* Release: pairs with the acquire in writer() and reader(). */
		__atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
		if (rte_eal_wait_lcore(lc) != 0)
			return NAN;
	}
	g_sink = sink;
	return (double)t0 / LOOKUPS;
}

static void
setup(unsigned n)
{
	struct dp_registry_info info;

	dp_registry_destroy(g_reg);
	for (unsigned k = 0; k < N_MAX; k++) {
		if (g_ptr[k] != NULL)
			dp_pipeline_unref(g_ptr[k]);
		g_ptr[k] = NULL;
	}
	g_reg = dp_registry_create();
	if (g_reg == NULL)
		exit(1);
	for (unsigned k = 0; k < n; k++) {
		snprintf(g_names[k], sizeof(g_names[k]), "pipe%04u", k);
		g_hash[k] = dp_name_hash(g_names[k], strlen(g_names[k]));
		g_ptr[k] = compile(g_names[k]);
		dp_pipeline_ref(g_ptr[k]); /* one for us, one the registry consumes */
		if (dp_registry_put(g_reg, g_ptr[k], &info) != 0)
			exit(1);
		g_id[k] = info.id;
		g_order[k] = k;
	}
	/* Shuffle (fixed seed, so every run visits the names in the same order). */
	srand(7);
	for (unsigned k = n - 1; k > 0; k--) {
		unsigned j = (unsigned)rand() % (k + 1), t = g_order[k];

		g_order[k] = g_order[j];
		g_order[j] = t;
	}
}

int
main(int argc, char **argv)
{
	static const unsigned sizes[] = {16, 1024};
	static const char *const kname[] = {"hard-wired", "dp_registry_lookup",
					    "registry_lookup_id", "ck_rwlock table"};
	static const char *const wname[] = {"", ", paced writer", ", flat-out writer",
					    ", 2nd reader"};
	/* 4 kinds x 4 conditions, plus the control row. */
	static struct lookup_case lcs[17];
	static struct micro_case mcs[17];
	static char labels[17][64];
	char title[160];

	micro_init(argc, argv,
		   "micro_lookup: TSC cycles per pipeline lookup (RCU registry vs alternatives)");
	urcu_qsbr_register_thread();
	dp_rcu_thread_offline();
	for (int s = 0; s < 2; s++) {
		unsigned n = 0;

		setup(sizes[s]);
		for (int w = 0; w < 4; w++) {
			for (int k = 0; k < 4; k++, n++) {
				lcs[n] = (struct lookup_case){(enum kind)k, sizes[s], w, 0};
				snprintf(labels[n], sizeof(labels[n]), "%s%s", kname[k], wname[w]);
			}
		}
		/* Control: the second reader does hard-wired reads (shares no data with the
		 * registry), which separates contention for the machine (both CPUs busy) from
		 * contention for the data. */
		lcs[n] = (struct lookup_case){REGISTRY, sizes[s], SECOND_READER, HARD + 1};
		snprintf(labels[n++], sizeof(labels[0]),
			 "dp_registry_lookup, 2nd reads hard-wired");
		for (unsigned i = 0; i < n; i++)
			mcs[i] = (struct micro_case){labels[i], run_case, &lcs[i], {0}};
		snprintf(
		    title, sizeof(title),
		    "%u pipelines; paced writer: one replacement every %d us on CPU 1; flat-out "
		    "writer: as fast as it can; 2nd reader: the same lookups on CPU 1",
		    sizes[s], PACE_US);
		micro_run(title, mcs, n, "lkp");
		printf("(last flat-out writer round: %" PRIu64 " publications)\n", g_writes);
	}
	urcu_qsbr_unregister_thread();
	return 0;
}

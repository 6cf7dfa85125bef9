/*
 * corepipectl top: a live dashboard refreshed every --interval seconds from Admin/GetStats and
 * the server's /metrics (Prometheus text, fetched with libcurl). Rates and percentiles are over
 * the last interval: counter deltas divided by the time between the two scrapes, quantiles
 * from the delta of the histogram buckets (as PromQL's histogram_quantile over a rate); the
 * first screen uses everything since the server started.
 *
 * On a terminal it redraws in place (alternate screen) and q quits; otherwise (a pipe) it
 * prints one screen after another. --json prints one object per refresh instead.
 */
#include "client/ctl/ctl.h"
#include "client/ctl/prom.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIPES  64
#define MAX_BOUNDS 32
#define SERVER_H   "corepipe_server_duration_seconds"

static volatile sig_atomic_t g_quit;
static struct termios g_saved_tty;
static bool g_tty_raw, g_alt_screen;

static void
on_signal(int sig)
{
	(void)sig;
	g_quit = 1;
}

static void
restore_tty(void)
{
	if (g_tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_tty);
	if (g_alt_screen)
		fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	g_tty_raw = g_alt_screen = false;
}

/* ==== /metrics ============================================================================== */

struct buf {
	char *p;
	size_t n;
};

static size_t
on_data(char *d, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	char *p = realloc(b->p, b->n + sz * nm + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->n, d, sz * nm);
	b->p = p;
	b->n += sz * nm;
	b->p[b->n] = '\0';
	return sz * nm;
}

/* The /metrics URL from --metrics, or the target's host with port 9090. */
static void
metrics_url(const struct ctl_opts *o, char *url, size_t n)
{
	const char *m = o->metrics, *t = o->target;
	char host[256];
	const char *colon;
	size_t hl;

	if (m != NULL) {
		if (strstr(m, "://") != NULL)
			snprintf(url, n, "%s%s", m,
				 strchr(strstr(m, "://") + 3, '/') ? "" : "/metrics");
		else
			snprintf(url, n, "http://%s/metrics", m);
		return;
	}
	if (strncmp(t, "dns:///", 7) == 0)
		t += 7;
	if (strncmp(t, "unix:", 5) == 0) {
		snprintf(url, n, "http://127.0.0.1:9090/metrics");
		return;
	}
	colon = strrchr(t, ':');
	hl = colon && !(t[0] == '[' && colon < strchr(t, ']')) ? (size_t)(colon - t) : strlen(t);
	if (hl >= sizeof(host))
		hl = sizeof(host) - 1;
	memcpy(host, t, hl);
	host[hl] = '\0';
	snprintf(url, n, "http://%s:9090/metrics", host);
}

/* GET the scrape. @return 0, or -1 with @p err set. */
static int
scrape(CURL *cu, const char *url, const char *token, struct ctl_prom *p, char *err, size_t n)
{
	struct buf b = {0};
	struct curl_slist *h = NULL;
	char auth[1024];
	long code = 0;
	CURLcode rc;

	curl_easy_reset(cu);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
		curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	}
	rc = curl_easy_perform(cu);
	curl_slist_free_all(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK || code != 200) {
		if (rc != CURLE_OK)
			snprintf(err, n, "%.400s: %s", url, curl_easy_strerror(rc));
		else
			snprintf(err, n, "%.400s: HTTP %ld%s", url, code,
				 code == 401 ? " (auth.metrics: pass --token)" : "");
		free(b.p);
		return -1;
	}
	if (ctl_prom_parse(b.p ? b.p : "", b.n, p) < 0) {
		snprintf(err, n, "%.400s: out of memory", url);
		free(b.p);
		return -1;
	}
	free(b.p);
	return 0;
}

/* ==== One sample of everything ============================================================== */

struct pipe_row {
	char name[64];
	double total, ok;	/* requests (all codes), OK */
	double le[MAX_BOUNDS];	/* server-duration bucket bounds */
	double cum[MAX_BOUNDS]; /* cumulative counts */
	size_t n_bounds;
};

struct sample {
	double t;
	Corepipe__V1__Stats *stats;
	bool have_metrics;
	struct ctl_prom prom;
	struct pipe_row pipes[MAX_PIPES];
	size_t n_pipes;
};

static struct pipe_row *
pipe_get(struct sample *s, const char *name)
{
	for (size_t i = 0; i < s->n_pipes; i++)
		if (strcmp(s->pipes[i].name, name) == 0)
			return &s->pipes[i];
	if (s->n_pipes == MAX_PIPES)
		return NULL;
	snprintf(s->pipes[s->n_pipes].name, sizeof(s->pipes[0].name), "%s", name);
	return &s->pipes[s->n_pipes++];
}

static void
index_pipes(struct sample *s)
{
	for (size_t i = 0; i < s->prom.n; i++) {
		const struct ctl_prom_sample *x = &s->prom.s[i];
		const char *pn = ctl_prom_label(x, "pipeline");
		struct pipe_row *r;

		if (pn == NULL)
			continue;
		if (strcmp(x->name, "corepipe_requests_total") == 0) {
			const char *code = ctl_prom_label(x, "code");

			if ((r = pipe_get(s, pn)) == NULL)
				continue;
			r->total += x->value;
			if (code && strcmp(code, "OK") == 0)
				r->ok += x->value;
		} else if (strcmp(x->name, SERVER_H "_bucket") == 0) {
			const char *le = ctl_prom_label(x, "le");

			if ((r = pipe_get(s, pn)) == NULL || le == NULL ||
			    r->n_bounds == MAX_BOUNDS)
				continue;
			r->le[r->n_bounds] = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
			r->cum[r->n_bounds++] = x->value;
		}
	}
}

static void
sample_free(struct sample *s)
{
	if (s->stats)
		protobuf_c_message_free_unpacked(&s->stats->base, NULL);
	ctl_prom_free(&s->prom);
	memset(s, 0, sizeof(*s));
}

/* Counter value of @p name{key=val} in @p s, 0 when absent. */
static double
ctr(const struct sample *s, const char *name, const char *key, const char *val)
{
	double v = s->have_metrics ? ctl_prom_sum(&s->prom, name, key, val) : -1;

	return v < 0 ? 0 : v;
}

/* ==== Rendering ============================================================================= */

struct view {
	FILE *f;
	json_t *j;
};

static const struct pipe_row *
find_pipe(const struct sample *s, const char *name)
{
	for (size_t i = 0; s && i < s->n_pipes; i++)
		if (strcmp(s->pipes[i].name, name) == 0)
			return &s->pipes[i];
	return NULL;
}

static uint64_t
worker_requests(const Corepipe__V1__Stats *st, uint32_t idx)
{
	for (size_t i = 0; st && i < st->n_workers; i++)
		if (st->workers[i]->index == idx)
			return st->workers[i]->requests;
	return 0;
}

static void
fmt_ms(char *b, size_t n, double s)
{
	if (s < 0)
		snprintf(b, n, "-");
	else
		snprintf(b, n, "%.3f", s * 1e3);
}

/* Build one screen (text into v->f, or the JSON object v->j) from @p cur and @p prev. */
static void
render(const struct ctl_opts *o, struct view *v, const struct sample *cur,
       const struct sample *prev, const char *url, const char *merr, uint32_t *peak)
{
	const Corepipe__V1__Stats *st = cur->stats;
	double dt = prev ? cur->t - prev->t : 0;
	FILE *f = v->f;
	time_t now = time(NULL);
	char tbuf[32];
	json_t *jp = json_array(), *jw = json_array(), *jpool = json_array();
	double rss = cur->have_metrics
			 ? ctl_prom_sum(&cur->prom, "process_resident_memory_bytes", NULL, NULL)
			 : -1;
	double cpu = prev && prev->have_metrics && cur->have_metrics && dt > 0
			 ? (ctr(cur, "process_cpu_seconds_total", NULL, NULL) -
			    ctr(prev, "process_cpu_seconds_total", NULL, NULL)) /
			       dt
			 : -1;
	double desc_rate = 0;

	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&now));
	if (f) {
		fprintf(f, "corepipectl top  %s  %s  every %.3g s%s\n", o->target, tbuf,
			o->interval_s, isatty(STDIN_FILENO) && !o->json ? "  (q quits)" : "");
		fprintf(f, "server: RSS %s", rss >= 0 ? "" : "n/a");
		if (rss >= 0)
			fprintf(f, "%.1f MiB", rss / 1048576.0);
		if (cpu >= 0)
			fprintf(f, "  CPU %.0f%%", 100 * cpu);
		fprintf(f,
			"  connections %llu  calls %llu  streams %llu  in flight %llu  answered "
			"%llu\n",
			(unsigned long long)st->connections, (unsigned long long)st->streams,
			(unsigned long long)st->pipeline_streams, (unsigned long long)st->in_flight,
			(unsigned long long)st->answered);
		if (merr)
			fprintf(f, "metrics: %s (pipelines, percentiles, busy%% and RSS need it)\n",
				merr);
		fprintf(f, "\n%-20s %9s %8s %9s %9s %9s  %s\n", "PIPELINE", "REQ/S", "ERR/S",
			"P50 ms", "P95 ms", "P99 ms", "ERRORS (since start)");
	}
	for (size_t i = 0; i < cur->n_pipes; i++) {
		const struct pipe_row *r = &cur->pipes[i], *pr = find_pipe(prev, r->name);
		double rate = pr && dt > 0 ? (r->total - pr->total) / dt : -1;
		double erate = pr && dt > 0 ? ((r->total - r->ok) - (pr->total - pr->ok)) / dt : -1;
		double cum[MAX_BOUNDS], q[3];
		static const double qs[3] = {0.5, 0.95, 0.99};
		char b[3][32], rs[32] = "-", es[32] = "-", errs[256] = "";
		size_t eo = 0;
		json_t *je = json_object();

		for (size_t k = 0; k < r->n_bounds; k++)
			cum[k] = r->cum[k] - (pr && pr->n_bounds == r->n_bounds ? pr->cum[k] : 0);
		for (int k = 0; k < 3; k++) {
			q[k] = ctl_hist_quantile(qs[k], r->le, cum, r->n_bounds);
			fmt_ms(b[k], sizeof(b[k]), q[k]);
		}
		for (size_t k = 0; k < cur->prom.n; k++) {
			const struct ctl_prom_sample *x = &cur->prom.s[k];
			const char *pn = ctl_prom_label(x, "pipeline"),
				   *code = ctl_prom_label(x, "code");

			if (strcmp(x->name, "corepipe_requests_total") != 0 || pn == NULL ||
			    code == NULL || strcmp(pn, r->name) != 0 || strcmp(code, "OK") == 0)
				continue;
			if (eo < sizeof(errs))
				eo += (size_t)snprintf(errs + eo, sizeof(errs) - eo, "%s%s %.0f",
						       eo ? ", " : "", code, x->value);
			json_object_set_new(je, code, json_integer((json_int_t)x->value));
		}
		if (rate >= 0)
			snprintf(rs, sizeof(rs), "%.1f", rate);
		if (erate >= 0)
			snprintf(es, sizeof(es), "%.1f", erate);
		if (f)
			fprintf(f, "%-20.20s %9s %8s %9s %9s %9s  %s\n", r->name, rs, es, b[0],
				b[1], b[2], errs[0] ? errs : "-");
		json_array_append_new(
		    jp, json_pack("{s:s,s:f,s:f,s:f,s:o,s:o,s:o,s:o}", "name", r->name, "requests",
				  r->total, "rps", rate, "err_rps", erate, "p50_ms",
				  q[0] >= 0 ? json_real(q[0] * 1e3) : json_null(), "p95_ms",
				  q[1] >= 0 ? json_real(q[1] * 1e3) : json_null(), "p99_ms",
				  q[2] >= 0 ? json_real(q[2] * 1e3) : json_null(), "errors", je));
	}
	if (f && cur->n_pipes == 0)
		fprintf(f, "%-20s\n", cur->have_metrics ? "(no requests yet)" : "(no /metrics)");

	if (f)
		fprintf(f, "\n%-6s %5s %6s %6s %9s %7s %8s %9s\n", "WORKER", "LCORE", "BUSY%",
			"QUEUE", "IN-FLIGHT", "STREAMS", "SHEDDING", "REQ/S");
	for (size_t i = 0; i < st->n_workers; i++) {
		const Corepipe__V1__WorkerStats *w = st->workers[i];
		char wl[16], rs[32] = "-";
		double busy = w->busy_ratio, rps = -1;

		snprintf(wl, sizeof(wl), "%u", w->index);
		if (prev && prev->have_metrics && cur->have_metrics) {
			double lb = ctr(cur, "corepipe_worker_loop_seconds_total", "worker", wl) -
				    ctr(prev, "corepipe_worker_loop_seconds_total", "worker", wl);

			if (lb > 0)
				busy =
				    (ctr(cur, "corepipe_worker_busy_seconds_total", "worker", wl) -
				     ctr(prev, "corepipe_worker_busy_seconds_total", "worker",
					 wl)) /
				    lb;
		}
		if (prev && dt > 0) {
			rps = (double)(w->requests - worker_requests(prev->stats, w->index)) / dt;
			desc_rate += rps;
			snprintf(rs, sizeof(rs), "%.1f", rps);
		}
		if (f)
			fprintf(f, "%-6u %5u %6.1f %6llu %9llu %7llu %8s %9s\n", w->index, w->lcore,
				100 * busy, (unsigned long long)w->queue_depth,
				(unsigned long long)w->in_flight,
				(unsigned long long)w->streams_open, w->shedding ? "YES" : "no",
				rs);
		json_array_append_new(
		    jw, json_pack("{s:i,s:i,s:f,s:I,s:I,s:I,s:b,s:f,s:I}", "index", (int)w->index,
				  "lcore", (int)w->lcore, "busy", busy, "queue_depth",
				  (json_int_t)w->queue_depth, "in_flight", (json_int_t)w->in_flight,
				  "streams", (json_int_t)w->streams_open, "shedding", w->shedding,
				  "rps", rps, "requests", (json_int_t)w->requests));
	}

	if (f)
		fprintf(f, "\n%-16s %9s %9s %6s %9s %12s\n", "POOL", "IN USE", "CAPACITY", "USE%",
			"PEAK", "REUSE/S");
	for (size_t i = 0; i < st->n_pools && i < 16; i++) {
		const Corepipe__V1__PoolStats *p = st->pools[i];
		bool desc = strcmp(p->name, "descriptors") == 0;

		if (p->in_use > peak[i])
			peak[i] = p->in_use;
		if (f) {
			fprintf(f, "%-16s %9u %9u %6.1f %9u ", p->name, p->in_use, p->capacity,
				p->capacity ? 100.0 * p->in_use / p->capacity : 0.0, peak[i]);
			/* Every request takes one descriptor and gives it back: its reuse rate is
			 * the request rate (per buffer: divided by the capacity). Payload classes
			 * have no allocation counter. */
			if (desc && prev && dt > 0)
				fprintf(f, "%12.1f (%.2f/buffer)\n", desc_rate,
					p->capacity ? desc_rate / p->capacity : 0);
			else
				fprintf(f, "%12s\n", "-");
		}
		json_array_append_new(
		    jpool, json_pack("{s:s,s:i,s:i,s:i,s:i,s:o}", "name", p->name, "buffer_bytes",
				     (int)p->buffer_bytes, "in_use", (int)p->in_use, "capacity",
				     (int)p->capacity, "peak", (int)peak[i], "reuse_per_s",
				     desc && prev && dt > 0 ? json_real(desc_rate) : json_null()));
	}
	if (f) {
		fprintf(f, "\nrejected:");
		for (size_t i = 0; i < st->n_rejected; i++)
			fprintf(f, " %s %llu", st->rejected[i]->key,
				(unsigned long long)st->rejected[i]->value);
		fprintf(f, "\n");
	}
	if (v->j != NULL) {
		json_t *srv =
		    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "connections",
			      (json_int_t)st->connections, "calls", (json_int_t)st->streams,
			      "pipeline_streams", (json_int_t)st->pipeline_streams, "in_flight",
			      (json_int_t)st->in_flight, "answered", (json_int_t)st->answered,
			      "connections_refused", (json_int_t)st->connections_refused);
		json_t *rej = json_object();

		json_object_set_new(srv, "rss_bytes", rss >= 0 ? json_real(rss) : json_null());
		json_object_set_new(srv, "cpu", cpu >= 0 ? json_real(cpu) : json_null());
		for (size_t i = 0; i < st->n_rejected; i++)
			json_object_set_new(rej, st->rejected[i]->key,
					    json_integer((json_int_t)st->rejected[i]->value));
		json_object_set_new(v->j, "time", json_integer((json_int_t)now));
		json_object_set_new(v->j, "interval_s", json_real(dt));
		json_object_set_new(v->j, "metrics_url", json_string(url));
		json_object_set_new(v->j, "metrics_error", merr ? json_string(merr) : json_null());
		json_object_set_new(v->j, "server", srv);
		json_object_set_new(v->j, "pipelines", jp);
		json_object_set_new(v->j, "workers", jw);
		json_object_set_new(v->j, "pools", jpool);
		json_object_set_new(v->j, "rejected", rej);
	} else {
		json_decref(jp);
		json_decref(jw);
		json_decref(jpool);
	}
}

/* Wait up to @p s seconds; true when q was pressed (or a signal came). */
static bool
wait_key(double s)
{
	double end;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + s;
	while (!g_quit) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		double left;
		int n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		left = end - ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
		if (left <= 0)
			return false;
		n = poll(g_tty_raw ? &pfd : NULL, g_tty_raw ? 1 : 0, (int)(left * 1000) + 1);
		if (n > 0 && (pfd.revents & POLLIN)) {
			char ch;

			if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q' || ch == 3))
				return true;
		}
	}
	return true;
}

int
ctl_cmd_top(const struct ctl_opts *o, int argc, char **argv)
{
	Corepipe__V1__GetStatsRequest rq = COREPIPE__V1__GET_STATS_REQUEST__INIT;
	struct sample a = {0}, b = {0}, *cur = &a, *prev = NULL;
	struct ctl_conn c;
	char url[512], merr[512];
	uint32_t peak[16] = {0};
	bool tty = isatty(STDOUT_FILENO) && !o->json;
	CURL *cu;
	int rc;

	(void)argv;
	if (argc != 0)
		return ctl_err(o, CTL_EXIT_USAGE,
			       "usage: top [--interval S] [--count N] [--metrics HOST:PORT]");
	metrics_url(o, url, sizeof(url));
	if ((rc = ctl_connect(&c, o)) != 0)
		return rc;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cu = curl_easy_init();
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (tty) {
		if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &g_saved_tty) == 0) {
			struct termios raw = g_saved_tty;

			raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
			raw.c_cc[VMIN] = 0;
			raw.c_cc[VTIME] = 0;
			if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
				g_tty_raw = true;
		}
		fputs("\033[?1049h\033[?25l", stdout);
		g_alt_screen = true;
		atexit(restore_tty);
	}
	for (unsigned n = 0; !g_quit; n++) {
		struct ctl_status st;
		struct timespec ts;
		struct view v = {0};
		char *text = NULL;
		size_t tlen = 0;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		cur->t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
		if (ctl_unary(&c, "/corepipe.v1.Admin/GetStats", &rq.base,
			      &corepipe__v1__stats__descriptor, (ProtobufCMessage **)&cur->stats,
			      &st) != 0 ||
		    st.code != GRPC_STATUS_OK) {
			restore_tty();
			rc = ctl_status_fail(o, "GetStats", &st);
			sample_free(cur);
			break;
		}
		merr[0] = '\0';
		cur->have_metrics = scrape(cu, url, o->token, &cur->prom, merr, sizeof(merr)) == 0;
		if (cur->have_metrics)
			index_pipes(cur);
		if (o->json) {
			v.j = json_object();
			render(o, &v, cur, prev, url, merr[0] ? merr : NULL, peak);
			ctl_json_print(v.j);
		} else {
			v.f = open_memstream(&text, &tlen);
			render(o, &v, cur, prev, url, merr[0] ? merr : NULL, peak);
			fclose(v.f);
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (n > 0)
				fputs("\n", stdout);
			fwrite(text, 1, tlen, stdout);
			fflush(stdout);
			free(text);
		}
		if (prev)
			sample_free(prev);
		prev = cur;
		cur = cur == &a ? &b : &a;
		if (o->count && n + 1 >= o->count)
			break;
		if (wait_key(o->interval_s))
			break;
	}
	if (prev)
		sample_free(prev);
	restore_tty();
	curl_easy_cleanup(cu);
	curl_global_cleanup();
	ctl_disconnect(&c);
	return rc;
}

/*
 * Prometheus text format reader and histogram quantiles (see prom.h).
 */
#include "client/ctl/prom.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void
sample_free(struct ctl_prom_sample *s)
{
	free(s->name);
	for (unsigned i = 0; i < s->n_labels; i++) {
		free(s->key[i]);
		free(s->val[i]);
	}
}

void
ctl_prom_free(struct ctl_prom *p)
{
	for (size_t i = 0; i < p->n; i++)
		sample_free(&p->s[i]);
	free(p->s);
	p->s = NULL;
	p->n = 0;
}

static char *
dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* One sample line [s, e). @return 0, 1 (malformed), -ENOMEM. */
static int
parse_line(const char *s, const char *e, struct ctl_prom_sample *out)
{
	const char *p = s;
	char *end, num[64];
	size_t n;

	memset(out, 0, sizeof(*out));
	while (p < e && (p[0] == '_' || p[0] == ':' || (p[0] >= 'a' && p[0] <= 'z') ||
			 (p[0] >= 'A' && p[0] <= 'Z') || (p > s && p[0] >= '0' && p[0] <= '9')))
		p++;
	if (p == s)
		return 1;
	if ((out->name = dup_n(s, (size_t)(p - s))) == NULL)
		return -ENOMEM;
	if (p < e && *p == '{') {
		p++;
		while (p < e && *p != '}') {
			const char *k = p;
			char *v;
			size_t vn = 0;

			while (p < e && *p != '=')
				p++;
			if (p + 1 >= e || p[1] != '"' || out->n_labels == CTL_PROM_MAX_LABELS)
				return 1;
			if ((out->key[out->n_labels] = dup_n(k, (size_t)(p - k))) == NULL)
				return -ENOMEM;
			p += 2;
			v = malloc((size_t)(e - p) + 1);
			if (v == NULL)
				return -ENOMEM;
			out->val[out->n_labels++] = v;
			while (p < e && *p != '"') {
				if (*p == '\\' && p + 1 < e) {
					p++;
					v[vn++] = *p == 'n' ? '\n' : *p;
				} else {
					v[vn++] = *p;
				}
				p++;
			}
			v[vn] = '\0';
			if (p >= e)
				return 1;
			p++; /* closing quote */
			if (p < e && *p == ',')
				p++;
		}
		if (p >= e)
			return 1;
		p++;
	}
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	n = 0;
	while (p < e && *p != ' ' && n < sizeof(num) - 1)
		num[n++] = *p++;
	num[n] = '\0';
	if (n == 0)
		return 1;
	out->value = strtod(num, &end);
	if (*end != '\0')
		return 1;
	return 0;
}

int
ctl_prom_parse(const char *text, size_t len, struct ctl_prom *p)
{
	const char *s = text, *end = text + len;
	size_t cap = 0;
	int bad = 0;

	p->s = NULL;
	p->n = 0;
	while (s < end) {
		const char *e = memchr(s, '\n', (size_t)(end - s));
		int rc;

		if (e == NULL)
			e = end;
		if (e > s && *s != '#') {
			if (p->n == cap) {
				struct ctl_prom_sample *v;

				cap = cap ? 2 * cap : 256;
				v = realloc(p->s, cap * sizeof(*v));
				if (v == NULL) {
					ctl_prom_free(p);
					return -ENOMEM;
				}
				p->s = v;
			}
			rc = parse_line(s, e, &p->s[p->n]);
			if (rc == 0) {
				p->n++;
			} else {
				sample_free(&p->s[p->n]);
				if (rc < 0) {
					ctl_prom_free(p);
					return rc;
				}
				bad++;
			}
		}
		s = e + 1;
	}
	return bad;
}

const char *
ctl_prom_label(const struct ctl_prom_sample *s, const char *key)
{
	for (unsigned i = 0; i < s->n_labels; i++)
		if (strcmp(s->key[i], key) == 0)
			return s->val[i];
	return NULL;
}

double
ctl_prom_sum(const struct ctl_prom *p, const char *name, const char *key, const char *val)
{
	double sum = 0;
	int found = 0;

	for (size_t i = 0; i < p->n; i++) {
		const char *v;

		if (strcmp(p->s[i].name, name) != 0)
			continue;
		if (key != NULL &&
		    ((v = ctl_prom_label(&p->s[i], key)) == NULL || strcmp(v, val) != 0))
			continue;
		sum += p->s[i].value;
		found = 1;
	}
	return found ? sum : -1;
}

double
ctl_hist_quantile(double q, const double *le, const double *cum, size_t n)
{
	double total, rank, lo = 0, below = 0;

	if (n == 0 || (total = cum[n - 1]) <= 0)
		return -1;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	rank = q * total;
	for (size_t i = 0; i < n; i++) {
		if (cum[i] >= rank && cum[i] > 0) {
			if (isinf(le[i]))
				return i > 0 ? le[i - 1] : 0; /* the highest finite bound */
			if (cum[i] == below)
				return le[i];
			return lo + (le[i] - lo) * (rank - below) / (cum[i] - below);
		}
		lo = le[i];
		below = cum[i];
	}
	return le[n - 1];
}

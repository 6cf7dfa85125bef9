/*
 * Node test helpers (see node_run.h).
 */
#include "tests/fakes/node_run.h"

#include "tests/fakes/test_env.h"

#include <stdlib.h>
#include <string.h>

struct dp_pipeline *
tnr_compile(struct dp_err *err, unsigned n, const char *const *nodes)
{
	struct dp_node_spec ns[16];
	struct dp_param prm[16][8];
	char text[16][256];
	struct dp_spec spec = {.name = "t", .n_nodes = n, .nodes = ns};

	if (n > 16)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		char *save = NULL, *tok;

		snprintf(text[i], sizeof(text[i]), "%s", nodes[i]);
		ns[i].type = strtok_r(text[i], " ", &save);
		ns[i].n_params = 0;
		ns[i].params = prm[i];
		while ((tok = strtok_r(NULL, " ", &save)) != NULL && ns[i].n_params < 8) {
			char *eq = strchr(tok, '=');

			if (eq == NULL)
				continue;
			*eq = '\0';
			prm[i][ns[i].n_params].key = tok;
			prm[i][ns[i].n_params].value = eq + 1;
			ns[i].n_params++;
		}
	}
	return dp_pipeline_compile(&spec, 32, err);
}

struct dp_stream *
tnr_stream(struct dp_pipeline *p, const struct dp_format *in, struct dp_err *err)
{
	struct dp_stream *s = aligned_alloc(RTE_CACHE_LINE_SIZE, sizeof(*s));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	dp_pipeline_ref(p);
	s->p = p;
	if (dp_stream_init(s, in, err) != 0) {
		dp_stream_fini(s);
		free(s);
		return NULL;
	}
	return s;
}

void
tnr_stream_free(struct dp_stream *s)
{
	if (s == NULL)
		return;
	dp_stream_fini(s);
	free(s);
}

int
tnr_run(const struct dp_pipeline *p, struct dp_stream *s, unsigned flags, struct dp_format f,
	const void *data, uint32_t len, struct dp_result *res, void *out, size_t cap,
	size_t *out_len, struct dp_format *out_fmt)
{
	struct dp_buf *b = dp_pools_get(g_test_pools, len);
	struct dp_exec x;
	int st;

	memset(res, 0, sizeof(*res));
	if (b == NULL)
		return -1;
	dp_exec_init(&x, b, &f, g_test_pools, res, NULL);
	if (len)
		memcpy(x.buf->data, data, len);
	st = dp_pipeline_run(p, &x, s ? s->state : NULL, flags);
	if (st == DP_OK && out != NULL) {
		size_t n = x.buf->len;

		if (*out_len + n > cap)
			n = cap - *out_len;
		memcpy((uint8_t *)out + *out_len, x.buf->data, n);
		*out_len += n;
	}
	if (out_fmt != NULL)
		*out_fmt = x.fmt;
	dp_buf_free(x.buf);
	return st;
}

const char *
tnr_annot(const struct dp_result *res, const char *key)
{
	for (unsigned i = 0; i < res->n_annot; i++)
		if (strcmp(res->annot[i].key, key) == 0)
			return res->annot[i].val;
	return NULL;
}

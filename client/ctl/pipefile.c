/*
 * Pipeline files (see pipefile.h): libyaml's document API, walked by hand.
 */
#include "client/ctl/pipefile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct ld {
	const char *name;
	yaml_document_t doc;
	char *err;
	size_t errlen;
	bool need_names;
	struct ctl_pipefile *pf;
};

static int fail(struct ld *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct ld *l, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(l->err, l->errlen, "%s:%zu:%zu: %s", l->name, n ? n->start_mark.line + 1 : 0,
		 n ? n->start_mark.column + 1 : 0, msg);
	return -EINVAL;
}

static const char *
scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *
node(struct ld *l, int id)
{
	return yaml_document_get_node(&l->doc, id);
}

static const char *
kind(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE    ? "a mapping"
	       : n->type == YAML_SEQUENCE_NODE ? "a list"
					       : "a scalar";
}

bool
ctl_pipeline_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

static void
spec_free(Corepipe__V1__PipelineSpec *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_nodes; i++) {
		Corepipe__V1__NodeSpec *ns = s->nodes[i];

		for (size_t k = 0; k < ns->n_params; k++) {
			free(ns->params[k]->key);
			free(ns->params[k]->value);
			free(ns->params[k]);
		}
		free(ns->params);
		free(ns->type);
		free(ns);
	}
	free(s->nodes);
	if (s->name != protobuf_c_empty_string)
		free(s->name);
	free(s);
}

void
ctl_pipefile_free(struct ctl_pipefile *pf)
{
	for (size_t i = 0; i < pf->n; i++)
		spec_free(pf->specs[i]);
	free(pf->specs);
	memset(pf, 0, sizeof(*pf));
}

/* One node: {type: T, params: {k: v}}. */
static int
parse_node(struct ld *l, const char *where, unsigned idx, const yaml_node_t *m,
	   Corepipe__V1__NodeSpec **out)
{
	Corepipe__V1__NodeSpec *ns;
	bool have_params = false;

	if (m->type != YAML_MAPPING_NODE)
		return fail(l, m, "%s[%u]: expected a mapping with type and params, got %s", where,
			    idx, kind(m));
	ns = calloc(1, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	corepipe__v1__node_spec__init(ns);
	/* Its values already; said again because the init is in another file, which make analyze
	 * cannot see (it took n_params for any count when filling params[]). */
	ns->type = NULL;
	ns->n_params = 0;
	*out = ns;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
		const char *ks = scalar(k);

		if (ks != NULL && strcmp(ks, "type") == 0) {
			if (ns->type != NULL)
				return fail(l, k, "%s[%u]: duplicate key 'type'", where, idx);
			if (scalar(v) == NULL || scalar(v)[0] == '\0')
				return fail(l, v, "%s[%u].type: expected a node type name", where,
					    idx);
			ns->type = strdup(scalar(v));
			if (ns->type == NULL)
				return -ENOMEM;
		} else if (ks != NULL && strcmp(ks, "params") == 0) {
			size_t n;

			if (have_params)
				return fail(l, k, "%s[%u]: duplicate key 'params'", where, idx);
			have_params = true;
			if (v->type == YAML_SCALAR_NODE &&
			    (scalar(v)[0] == '\0' || strcmp(scalar(v), "null") == 0))
				continue; /* "params:" with nothing */
			if (v->type != YAML_MAPPING_NODE)
				return fail(l, v, "%s[%u].params: expected a mapping, got %s",
					    where, idx, kind(v));
			n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
			ns->params = calloc(n + 1, sizeof(*ns->params));
			if (ns->params == NULL)
				return -ENOMEM;
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
			     q < v->data.mapping.pairs.top; q++) {
				yaml_node_t *pk = node(l, q->key), *pv = node(l, q->value);
				Corepipe__V1__NodeSpec__ParamsEntry *e;

				if (scalar(pk) == NULL || scalar(pv) == NULL)
					return fail(
					    l, scalar(pk) ? pv : pk,
					    "%s[%u].params: keys and values must be scalars", where,
					    idx);
				for (size_t j = 0; j < ns->n_params; j++)
					if (strcmp(ns->params[j]->key, scalar(pk)) == 0)
						return fail(l, pk,
							    "%s[%u].params: duplicate key '%s'",
							    where, idx, scalar(pk));
				e = calloc(1, sizeof(*e));
				if (e == NULL)
					return -ENOMEM;
				corepipe__v1__node_spec__params_entry__init(e);
				ns->params[ns->n_params++] = e;
				e->key = strdup(scalar(pk));
				e->value = strdup(scalar(pv));
				if (e->key == NULL || e->value == NULL)
					return -ENOMEM;
			}
		} else {
			return fail(l, k, "%s[%u]: unknown key '%s' (expected type, params)", where,
				    idx, ks ? ks : "?");
		}
	}
	if (ns->type == NULL)
		return fail(l, m, "%s[%u]: missing 'type'", where, idx);
	return 0;
}

/* A node list into a new spec appended to the file's list. */
static int
add_spec(struct ld *l, const char *name, const yaml_node_t *list, const yaml_node_t *at,
	 bool config)
{
	struct ctl_pipefile *pf = l->pf;
	Corepipe__V1__PipelineSpec *s, **v;
	char where[96];
	size_t n;
	int rc;

	if (name != NULL && !ctl_pipeline_name_valid(name))
		return fail(l, at, "invalid pipeline name '%.64s' ([A-Za-z0-9_.-]{1,63})", name);
	if (name == NULL && l->need_names)
		return fail(l, at,
			    "the pipeline has no name: add 'name: NAME' (or use the "
			    "'pipelines: {NAME: [...]}' form)");
	for (size_t i = 0; name != NULL && i < pf->n; i++)
		if (strcmp(pf->specs[i]->name, name) == 0)
			return fail(l, at, "duplicate pipeline '%s'", name);
	/* Errors name the path as written: pipelines.NAME[i] in the config shape, nodes[i]. */
	snprintf(where, sizeof(where), "%s%s", config ? "pipelines." : "nodes", config ? name : "");
	if (list == NULL)
		return fail(l, at, "%s: missing 'nodes'", name ? name : "pipeline");
	if (list->type != YAML_SEQUENCE_NODE)
		return fail(l, list, "%s: expected a list of nodes, got %s", where, kind(list));
	v = realloc(pf->specs, (pf->n + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	pf->specs = v;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	corepipe__v1__pipeline_spec__init(s);
	pf->specs[pf->n++] = s;
	if (name != NULL && (s->name = strdup(name)) == NULL)
		return -ENOMEM;
	n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	s->nodes = calloc(n + 1, sizeof(*s->nodes));
	if (s->nodes == NULL)
		return -ENOMEM;
	for (yaml_node_item_t *it = list->data.sequence.items.start;
	     it < list->data.sequence.items.top; it++) {
		unsigned idx = (unsigned)s->n_nodes;

		rc = parse_node(l, where, idx, node(l, *it), &s->nodes[idx]);
		if (s->nodes[idx] != NULL)
			s->n_nodes++;
		if (rc != 0)
			return rc;
	}
	if (s->n_nodes == 0)
		return fail(l, list, "%s: a pipeline needs at least one node", where);
	return 0;
}

static yaml_node_t *
get(struct ld *l, const yaml_node_t *m, const char *key, const yaml_node_t **keynode)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		const char *k = scalar(node(l, p->key));

		if (k != NULL && strcmp(k, key) == 0) {
			if (keynode)
				*keynode = node(l, p->key);
			return node(l, p->value);
		}
	}
	return NULL;
}

/* Shapes 1 and 2: {name, nodes} or {spec: {name, nodes}, id, version}. */
static int
parse_one(struct ld *l, const yaml_node_t *m)
{
	const yaml_node_t *name = NULL, *nodes = NULL;

	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
		const char *ks = scalar(k);

		if (ks != NULL && strcmp(ks, "name") == 0) {
			if (scalar(v) == NULL)
				return fail(l, v, "name: expected a string");
			name = v;
		} else if (ks != NULL && strcmp(ks, "nodes") == 0) {
			nodes = v;
		} else if (ks != NULL && strcmp(ks, "spec") == 0) {
			if (v->type != YAML_MAPPING_NODE)
				return fail(l, v, "spec: expected a mapping with name and nodes");
			return parse_one(l, v);
		} else if (ks != NULL && (strcmp(ks, "id") == 0 || strcmp(ks, "version") == 0)) {
			continue; /* from `pipelines get --json`: the server assigns them */
		} else {
			return fail(l, k,
				    "unknown key '%s' (expected name and nodes, or a 'pipelines' "
				    "mapping as in the config file)",
				    ks ? ks : "?");
		}
	}
	/* An empty name is no name (the API's default for inline pipelines). */
	return add_spec(l, name && scalar(name)[0] ? scalar(name) : NULL, nodes, name ? name : m,
			false);
}

/* Shape 3: the config file's pipelines section (other config sections skipped). */
static int
parse_config(struct ld *l, const yaml_node_t *root)
{
	static const char *const sections[] = {"server", "dataplane", "limits", "auth",
					       "tls",	 "logging",   NULL};
	const yaml_node_t *kn = NULL, *m = get(l, root, "pipelines", &kn);
	int rc;

	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		const char *ks = scalar(node(l, p->key));
		bool known = ks != NULL && strcmp(ks, "pipelines") == 0;

		for (unsigned i = 0; !known && ks != NULL && sections[i]; i++)
			known = strcmp(ks, sections[i]) == 0;
		if (!known)
			return fail(l, node(l, p->key),
				    "unknown key '%s' next to 'pipelines' (a config file's "
				    "sections are server, dataplane, limits, auth, tls, logging)",
				    ks ? ks : "?");
	}
	if (m->type == YAML_SCALAR_NODE && scalar(m)[0] == '\0')
		return fail(l, kn, "pipelines: no pipeline in the file");
	if (m->type != YAML_MAPPING_NODE)
		return fail(l, m, "pipelines: expected a mapping of name to node list, got %s",
			    kind(m));
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(l, p->key);

		if (scalar(k) == NULL)
			return fail(l, k, "pipelines: names must be strings");
		rc = add_spec(l, scalar(k), node(l, p->value), k, true);
		if (rc != 0)
			return rc;
	}
	if (l->pf->n == 0)
		return fail(l, m, "pipelines: no pipeline in the file");
	return 0;
}

int
ctl_pipefile_parse(const char *name, const uint8_t *text, size_t len, bool need_names,
		   struct ctl_pipefile *pf, char *err, size_t errlen)
{
	struct ld l = {
	    .name = name, .err = err, .errlen = errlen, .need_names = need_names, .pf = pf};
	yaml_parser_t parser;
	yaml_node_t *root;
	int rc;

	memset(pf, 0, sizeof(*pf));
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, text, len);
	if (!yaml_parser_load(&parser, &l.doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s syntax error: %s%s", name,
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 len > 0 && (text[0] == '{' || text[0] == '[') ? "JSON" : "YAML",
			 parser.problem ? parser.problem : "unknown",
			 parser.problem && strstr(parser.problem, "Unicode")
			     ? " (write the character itself instead of a \\u surrogate pair)"
			     : "");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&l.doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE)
		rc = fail(&l, root,
			  "expected a mapping: {name: N, nodes: [...]} or {pipelines: {N: [...]}}");
	else if (get(&l, root, "pipelines", NULL) != NULL)
		rc = parse_config(&l, root);
	else
		rc = parse_one(&l, root);
	yaml_document_delete(&l.doc);
	yaml_parser_delete(&parser);
	if (rc != 0) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "%s: out of memory", name);
		ctl_pipefile_free(pf);
	}
	return rc;
}

/* A YAML double-quoted scalar. */
static void
quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void
ctl_pipefile_write_yaml(FILE *out, Corepipe__V1__PipelineSpec *const *specs, size_t n)
{
	fprintf(out, "pipelines:\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "  %s:\n", specs[i]->name);
		for (size_t k = 0; k < specs[i]->n_nodes; k++) {
			const Corepipe__V1__NodeSpec *ns = specs[i]->nodes[k];

			fprintf(out, "    - type: %s\n", ns->type);
			if (ns->n_params == 0)
				continue;
			fprintf(out, "      params: {");
			for (size_t j = 0; j < ns->n_params; j++) {
				fprintf(out, "%s%s: ", j ? ", " : " ", ns->params[j]->key);
				quoted(out, ns->params[j]->value);
			}
			fprintf(out, " }\n");
		}
	}
}

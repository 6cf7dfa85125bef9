/*
 * corepipe-bench's input: bytes, generated audio or a WAV file's samples, and the inline
 * pipeline, as protobuf-c messages (see corepipe_bench_input.h).
 */
#include "perf/corepipe_bench_input.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ==== Input ================================================================================= */

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
load_wav(const char *path, struct cb_input *in)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;
	size_t off = 12;
	bool have_fmt = false;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 12 ||
	    fseek(f, 0, SEEK_SET) != 0)
		cb_die("--wav: cannot read the file");
	buf = cb_xcalloc((size_t)n, 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		cb_die("--wav: short read");
	fclose(f);
	if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
		cb_die("--wav: not a RIFF/WAVE file");
	while (off + 8 <= (size_t)n) {
		uint32_t len = le32(buf + off + 4);
		const uint8_t *b = buf + off + 8;

		if (len > (size_t)n - off - 8)
			len = (uint32_t)((size_t)n - off - 8);
		if (memcmp(buf + off, "fmt ", 4) == 0 && len >= 16) {
			unsigned tag = b[0] | b[1] << 8, bits = b[14] | b[15] << 8;

			in->channels = b[2] | b[3] << 8;
			in->rate = le32(b + 4);
			if (tag == 0xFFFE && len >= 26)
				tag = b[24] | b[25] << 8; /* WAVE_FORMAT_EXTENSIBLE sub-format */
			if (tag == 1 && bits == 16)
				in->fmt = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE;
			else if (tag == 3 && bits == 32)
				in->fmt = COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE;
			else
				cb_die("--wav: only 16-bit PCM and 32-bit float WAV are supported");
			in->sample_bytes = bits / 8;
			have_fmt = true;
		} else if (memcmp(buf + off, "data", 4) == 0 && have_fmt) {
			in->audio = true;
			in->len = len - len % (in->sample_bytes * in->channels);
			in->bytes = cb_xcalloc(in->len, 1);
			memcpy(in->bytes, b, in->len);
			free(buf);
			if (in->len == 0 || in->rate == 0 || in->channels == 0)
				cb_die("--wav: no samples");
			return;
		}
		off += 8 + len + (len & 1);
	}
	cb_die("--wav: no fmt/data chunk");
}

/* --frame-ms of a 440 Hz sine at a quarter of full scale. */
static void
make_audio(const struct cb_opts *o, struct cb_input *in)
{
	size_t frames = (size_t)llround((double)o->audio_rate * o->frame_ms / 1000.0);

	in->audio = true;
	in->rate = o->audio_rate;
	in->channels = o->audio_channels;
	in->sample_bytes = o->audio_fmt == CB_AF_S16 ? 2 : 4;
	in->fmt = o->audio_fmt == CB_AF_S16 ? COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE
					    : COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE;
	in->len = frames * in->channels * in->sample_bytes;
	in->bytes = cb_xcalloc(in->len, 1);
	for (size_t i = 0; i < frames; i++) {
		double v = 0.25 * sin(2 * M_PI * 440 * (double)i / o->audio_rate);

		for (unsigned c = 0; c < in->channels; c++) {
			uint8_t *p = in->bytes + (i * in->channels + c) * in->sample_bytes;

			if (o->audio_fmt == CB_AF_S16) {
				int16_t s = (int16_t)(v * 32767);

				memcpy(p, &s, 2);
			} else {
				float s = (float)v;

				memcpy(p, &s, 4);
			}
		}
	}
}

void
cb_input_make(const struct cb_opts *o, struct cb_input *in)
{
	memset(in, 0, sizeof(*in));
	if (o->wav) {
		load_wav(o->wav, in);
		return;
	}
	if (o->audio_fmt != CB_AF_NONE) {
		make_audio(o, in);
		return;
	}
	in->len = o->size;
	in->bytes = cb_xcalloc(in->len, 1);
	for (size_t i = 0; i < in->len; i++)
		in->bytes[i] = (uint8_t)(i * 31);
}

/* ==== Payloads ============================================================================== */

void
cb_payload_fill(Corepipe__V1__Payload *p, Corepipe__V1__AudioBuffer *a, const struct cb_input *in,
		const uint8_t *b, size_t len)
{
	corepipe__v1__payload__init(p);
	corepipe__v1__audio_buffer__init(a);
	if (in->audio) {
		a->format = in->fmt;
		a->sample_rate = in->rate;
		a->channels = in->channels;
		a->samples.data = (uint8_t *)b;
		a->samples.len = len;
		p->kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
		p->audio = a;
	} else {
		p->kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
		p->data.data = (uint8_t *)b;
		p->data.len = len;
	}
}

bool
cb_payload_equal(const Corepipe__V1__Payload *p, const uint8_t *raw, size_t len)
{
	const uint8_t *d;
	size_t n;

	if (p == NULL)
		return len == 0;
	if (p->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA) {
		d = p->data.data;
		n = p->data.len;
	} else if (p->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO && p->audio) {
		d = p->audio->samples.data;
		n = p->audio->samples.len;
	} else {
		return len == 0;
	}
	return n == len && (n == 0 || memcmp(d, raw, n) == 0);
}

/* ==== Inline pipelines ====================================================================== */

/* An inline pipeline: its nodes (from --node, or parsed from --inline-json, whose document the
 * strings point into) and the message made of them. Lives until exit. */
struct spec_store {
	yaml_document_t doc;
	unsigned n_nodes;
	struct cb_node_arg nodes[CB_MAX_NODES];
	Corepipe__V1__PipelineSpec spec;
	Corepipe__V1__NodeSpec ns[CB_MAX_NODES], *nsp[CB_MAX_NODES];
	Corepipe__V1__NodeSpec__ParamsEntry pe[CB_MAX_NODES][CB_MAX_PARAMS];
	Corepipe__V1__NodeSpec__ParamsEntry *pep[CB_MAX_NODES][CB_MAX_PARAMS];
};

static const char *
yaml_scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *
yaml_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const char *k = yaml_scalar(yaml_document_get_node(d, p->key));

		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* One node of --inline-json: {"type": T, "params": {K: V, ...}}. */
static void
json_node(yaml_document_t *doc, yaml_node_t *n, struct cb_node_arg *na)
{
	yaml_node_t *params;

	na->type = (char *)yaml_scalar(yaml_get(doc, n, "type"));
	if (na->type == NULL)
		cb_die("--inline-json: every node needs a \"type\"");
	params = yaml_get(doc, n, "params");
	if (params == NULL)
		return;
	if (params->type != YAML_MAPPING_NODE)
		cb_die("--inline-json: \"params\" must be an object");
	for (yaml_node_pair_t *pp = params->data.mapping.pairs.start;
	     pp < params->data.mapping.pairs.top; pp++) {
		if (na->n_params == CB_MAX_PARAMS)
			cb_die("--inline-json: too many params");
		na->key[na->n_params] = (char *)yaml_scalar(yaml_document_get_node(doc, pp->key));
		na->val[na->n_params] = (char *)yaml_scalar(yaml_document_get_node(doc, pp->value));
		if (!na->key[na->n_params] || !na->val[na->n_params])
			cb_die("--inline-json: param keys and values must be scalars");
		na->n_params++;
	}
}

/* --inline-json: JSON is YAML, so libyaml (already a dependency) parses it. */
static void
parse_inline_json(const char *json, struct spec_store *st)
{
	yaml_parser_t p;
	yaml_node_t *root, *list;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)json, strlen(json));
	if (!yaml_parser_load(&p, &st->doc) ||
	    (root = yaml_document_get_root_node(&st->doc)) == NULL)
		cb_die("--inline-json: not valid JSON");
	yaml_parser_delete(&p);
	list = root->type == YAML_SEQUENCE_NODE ? root : yaml_get(&st->doc, root, "nodes");
	if (list == NULL || list->type != YAML_SEQUENCE_NODE)
		cb_die("--inline-json: expected {\"nodes\": [...]} or [...]");
	for (yaml_node_item_t *it = list->data.sequence.items.start;
	     it < list->data.sequence.items.top; it++) {
		if (st->n_nodes == CB_MAX_NODES)
			cb_die("--inline-json: too many nodes");
		json_node(&st->doc, yaml_document_get_node(&st->doc, *it),
			  &st->nodes[st->n_nodes++]);
	}
}

Corepipe__V1__PipelineSpec *
cb_spec_make(const struct cb_opts *o)
{
	struct spec_store *st;

	if (o->inline_json == NULL && o->n_nodes == 0)
		return NULL;
	st = cb_xcalloc(1, sizeof(*st));
	if (o->inline_json) {
		parse_inline_json(o->inline_json, st);
	} else {
		st->n_nodes = o->n_nodes;
		memcpy(st->nodes, o->nodes, sizeof(st->nodes));
	}
	if (st->n_nodes == 0)
		return NULL; /* "[]": the named pipeline after all */
	corepipe__v1__pipeline_spec__init(&st->spec);
	for (unsigned i = 0; i < st->n_nodes; i++) {
		const struct cb_node_arg *na = &st->nodes[i];

		corepipe__v1__node_spec__init(&st->ns[i]);
		st->ns[i].type = na->type;
		for (unsigned k = 0; k < na->n_params; k++) {
			corepipe__v1__node_spec__params_entry__init(&st->pe[i][k]);
			st->pe[i][k].key = na->key[k];
			st->pe[i][k].value = na->val[k];
			st->pep[i][k] = &st->pe[i][k];
		}
		st->ns[i].n_params = na->n_params;
		st->ns[i].params = st->pep[i];
		st->nsp[i] = &st->ns[i];
	}
	st->spec.n_nodes = st->n_nodes;
	st->spec.nodes = st->nsp;
	return &st->spec;
}

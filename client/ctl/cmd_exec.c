/*
 * corepipectl exec (one Execute call on a file) and stream (ExecuteStream over a WAV, frame by
 * frame, with the output written as it arrives).
 */
#include "client/ctl/ctl.h"
#include "client/ctl/pbjson.h"
#include "client/ctl/pipefile.h"
#include "client/ctl/wav.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ==== Shared ================================================================================ */

/* The pipeline of a call: a name, or an inline spec read from --inline FILE. */
struct target_pipe {
	const char *name;
	struct ctl_pipefile pf;
};

static int
load_pipe(const struct ctl_opts *o, const char *name, struct target_pipe *t)
{
	uint8_t *text;
	size_t len;
	char err[512];
	int rc;

	memset(t, 0, sizeof(*t));
	if (o->inline_file == NULL) {
		if (!ctl_pipeline_name_valid(name))
			return ctl_err(o, CTL_EXIT_USAGE,
				       "'%s' is not a pipeline name ([A-Za-z0-9_.-]{1,63})", name);
		t->name = name;
		return 0;
	}
	rc = ctl_read_file(o->inline_file, &text, &len);
	if (rc != 0)
		return ctl_err(o, CTL_EXIT_INPUT, "--inline %s: %s", o->inline_file, strerror(-rc));
	rc = ctl_pipefile_parse(o->inline_file, text, len, false, &t->pf, err, sizeof(err));
	free(text);
	if (rc != 0)
		return ctl_err(o, CTL_EXIT_INPUT, "%s", err);
	if (t->pf.n != 1) {
		ctl_pipefile_free(&t->pf);
		return ctl_err(o, CTL_EXIT_INPUT, "--inline %s: holds %zu pipelines; give one",
			       o->inline_file, t->pf.n);
	}
	t->name = NULL;
	return 0;
}

static const char *
fmt_name(int f)
{
	return f == COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE   ? "s16le"
	       : f == COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_F32LE ? "f32le"
								       : "unspecified";
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Annotations of a response as a JSON object. */
static json_t *
annot_json(Corepipe__V1__ExecuteResponse__AnnotationsEntry **e, size_t n)
{
	json_t *j = json_object();

	for (size_t i = 0; i < n; i++)
		json_object_set_new(j, e[i]->key, json_string(e[i]->value));
	return j;
}

/* An output file: raw bytes, or a WAV whose header is written at the first audio output and
 * patched with the real sizes at the end when the file can seek. */
struct outfile {
	const char *path;
	FILE *f;
	bool wav_started, audio;
	int fmt;
	uint32_t rate, channels;
	size_t bytes;
};

static int
out_open(const struct ctl_opts *o, struct outfile *of, const char *path)
{
	memset(of, 0, sizeof(*of));
	of->path = path;
	if (path == NULL)
		return 0;
	of->f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
	if (of->f == NULL)
		return ctl_err(o, CTL_EXIT_OUTPUT, "%s: %s", path, strerror(errno));
	return 0;
}

/* Append a payload's bytes. @return 0 or CTL_EXIT_OUTPUT. */
static int
out_write(const struct ctl_opts *o, struct outfile *of, const Corepipe__V1__Payload *p)
{
	const uint8_t *d = NULL;
	size_t n = 0;

	if (p == NULL)
		return 0;
	if (p->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO && p->audio != NULL) {
		if (!of->audio) {
			of->audio = true;
			of->fmt = p->audio->format;
			of->rate = p->audio->sample_rate;
			of->channels = p->audio->channels;
		}
		if (!of->wav_started && of->f != NULL) {
			uint8_t hdr[CTL_WAV_HEADER_MAX];
			size_t h;

			h = ctl_wav_header(hdr, (enum ctl_wav_fmt)of->fmt, of->rate, of->channels,
					   SIZE_MAX);
			if (fwrite(hdr, 1, h, of->f) != h)
				return ctl_err(o, CTL_EXIT_OUTPUT, "%s: %s", of->path,
					       strerror(errno));
			of->wav_started = true;
		}
		d = p->audio->samples.data;
		n = p->audio->samples.len;
	} else if (p->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA) {
		d = p->data.data;
		n = p->data.len;
	}
	if (n > 0 && of->f != NULL && fwrite(d, 1, n, of->f) != n)
		return ctl_err(o, CTL_EXIT_OUTPUT, "%s: %s", of->path, strerror(errno));
	of->bytes += n;
	return 0;
}

/* Finish the file: real sizes in the WAV header when it can seek. */
static int
out_close(const struct ctl_opts *o, struct outfile *of)
{
	int rc = 0;

	if (of->f == NULL)
		return 0;
	if (of->wav_started && of->f != stdout && fseek(of->f, 0, SEEK_SET) == 0) {
		uint8_t hdr[CTL_WAV_HEADER_MAX];
		size_t h = ctl_wav_header(hdr, (enum ctl_wav_fmt)of->fmt, of->rate, of->channels,
					  of->bytes);

		if (fwrite(hdr, 1, h, of->f) != h)
			rc = CTL_EXIT_OUTPUT;
	}
	if ((of->f == stdout ? fflush(of->f) : fclose(of->f)) != 0)
		rc = CTL_EXIT_OUTPUT;
	of->f = NULL;
	if (rc != 0)
		return ctl_err(o, rc, "%s: %s", of->path, strerror(errno));
	return 0;
}

static json_t *
out_json(const struct outfile *of, const Corepipe__V1__Payload *p)
{
	json_t *j = json_object();

	if (of->audio || (p && p->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO && p->audio)) {
		int fmt = of->audio ? of->fmt : (int)p->audio->format;
		uint32_t rate = of->audio ? of->rate : p->audio->sample_rate;
		uint32_t ch = of->audio ? of->channels : p->audio->channels;
		size_t bytes = of->audio ? of->bytes : p->audio->samples.len;
		size_t fb =
		    (size_t)ch * (fmt == COREPIPE__V1__SAMPLE_FORMAT__SAMPLE_FORMAT_S16LE ? 2 : 4);

		json_object_set_new(j, "kind", json_string("audio"));
		json_object_set_new(j, "format", json_string(fmt_name(fmt)));
		json_object_set_new(j, "sample_rate", json_integer(rate));
		json_object_set_new(j, "channels", json_integer(ch));
		json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
		json_object_set_new(j, "frames", json_integer((json_int_t)(fb ? bytes / fb : 0)));
		json_object_set_new(j, "seconds",
				    json_real(rate && fb ? (double)bytes / fb / rate : 0));
	} else {
		json_object_set_new(j, "kind", json_string("bytes"));
		json_object_set_new(
		    j, "bytes",
		    json_integer((json_int_t)(p == NULL ? of->bytes
					      : p->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA
						  ? p->data.len
						  : 0)));
	}
	if (of->path)
		json_object_set_new(j, "file", json_string(of->path));
	return j;
}

/* The input: a WAV (audio) or raw bytes. */
struct input {
	uint8_t *buf;
	size_t len;
	bool audio;
	struct ctl_wav wav;
};

static int
load_input(const struct ctl_opts *o, const char *path, struct input *in, bool need_wav)
{
	char err[256];
	int rc;

	memset(in, 0, sizeof(*in));
	rc = ctl_read_file(path, &in->buf, &in->len);
	if (rc != 0)
		return ctl_err(o, CTL_EXIT_INPUT, "%s: %s", path, strerror(-rc));
	if (ctl_wav_detect(in->buf, in->len)) {
		if (ctl_wav_parse(in->buf, in->len, &in->wav, err, sizeof(err)) != 0) {
			free(in->buf);
			return ctl_err(o, CTL_EXIT_INPUT, "%s: %s", path, err);
		}
		in->audio = true;
	} else if (need_wav) {
		free(in->buf);
		return ctl_err(o, CTL_EXIT_INPUT, "%s: not a WAV file (stream takes a WAV)", path);
	}
	return 0;
}

static void
fill_payload(Corepipe__V1__Payload *p, Corepipe__V1__AudioBuffer *a, const struct input *in,
	     const uint8_t *d, size_t n)
{
	corepipe__v1__payload__init(p);
	corepipe__v1__audio_buffer__init(a);
	if (in->audio) {
		a->format = (Corepipe__V1__SampleFormat)in->wav.fmt;
		a->sample_rate = in->wav.rate;
		a->channels = in->wav.channels;
		a->samples.data = (uint8_t *)d;
		a->samples.len = n;
		p->kind_case = COREPIPE__V1__PAYLOAD__KIND_AUDIO;
		p->audio = a;
	} else {
		p->kind_case = COREPIPE__V1__PAYLOAD__KIND_DATA;
		p->data.data = (uint8_t *)d;
		p->data.len = n;
	}
}

/* Positional arguments: PIPELINE IN [OUT], or IN [OUT] with --inline. */
static int
positional(const struct ctl_opts *o, int argc, char **argv, const char *usage, const char **name,
	   const char **in, const char **out)
{
	int k = o->inline_file ? 0 : 1;

	if (argc < k + 1 || argc > k + 2)
		return ctl_err(o, CTL_EXIT_USAGE, "usage: %s", usage);
	*name = k ? argv[0] : NULL;
	*in = argv[k];
	*out = argc == k + 2 ? argv[k + 1] : NULL;
	if (*out && strcmp(*out, "-") == 0 && o->json)
		return ctl_err(o, CTL_EXIT_USAGE,
			       "--json prints to stdout: write the output to a file, not -");
	return 0;
}

/* ==== exec ================================================================================== */

int
ctl_cmd_exec(const struct ctl_opts *o, int argc, char **argv)
{
	const char *name, *inpath, *outpath;
	Corepipe__V1__ExecuteRequest rq = COREPIPE__V1__EXECUTE_REQUEST__INIT;
	Corepipe__V1__ExecuteResponse *r;
	Corepipe__V1__Payload p;
	Corepipe__V1__AudioBuffer a;
	struct target_pipe tp;
	struct input in;
	struct outfile of;
	struct ctl_conn c;
	struct ctl_status st;
	FILE *info;
	int rc;

	rc = positional(o, argc, argv, "exec PIPELINE IN [OUT] | exec --inline FILE IN [OUT]",
			&name, &inpath, &outpath);
	if (rc != 0)
		return rc;
	if ((rc = load_pipe(o, name, &tp)) != 0)
		return rc;
	if ((rc = load_input(o, inpath, &in, false)) != 0)
		goto out_pipe;
	if (o->inline_file == NULL) { /* load_pipe() took the name, else the file */
		rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_NAME;
		rq.name = (char *)tp.name;
	} else {
		rq.pipeline_case = COREPIPE__V1__EXECUTE_REQUEST__PIPELINE_INLINE;
		rq.inline_ = tp.pf.specs[0];
	}
	fill_payload(&p, &a, &in, in.audio ? in.wav.data : in.buf, in.audio ? in.wav.len : in.len);
	rq.input = &p;
	if ((rc = ctl_connect(&c, o)) != 0)
		goto out_in;
	if (ctl_unary(&c, "/corepipe.v1.Pipeline/Execute", &rq.base,
		      &corepipe__v1__execute_response__descriptor, (ProtobufCMessage **)&r,
		      &st) != 0) {
		rc = ctl_err(o, CTL_EXIT_CONNECT, "Execute could not be started");
		goto out_conn;
	}
	if (st.code != GRPC_STATUS_OK) {
		rc = ctl_status_fail(o, "Execute", &st);
		goto out_conn;
	}
	rc = out_open(o, &of, outpath);
	if (rc == 0)
		rc = out_write(o, &of, r->output);
	if (rc == 0)
		rc = out_close(o, &of);
	if (rc == 0 && o->json) {
		json_t *j = json_object();

		json_object_set_new(j, "pipeline", json_string(tp.name ? tp.name : "(inline)"));
		json_object_set_new(j, "output", out_json(&of, r->output));
		json_object_set_new(j, "annotations", annot_json(r->annotations, r->n_annotations));
		json_object_set_new(j, "dataplane_ns", json_integer((json_int_t)r->dataplane_ns));
		ctl_json_print(j);
	} else if (rc == 0) {
		/* With the output on stdout, the rest goes to stderr. */
		info = outpath && strcmp(outpath, "-") == 0 ? stderr : stdout;
		for (size_t i = 0; i < r->n_annotations; i++)
			fprintf(info, "%s: %s\n", r->annotations[i]->key, r->annotations[i]->value);
		if (r->output && r->output->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO &&
		    r->output->audio) {
			const Corepipe__V1__AudioBuffer *oa = r->output->audio;
			size_t fb = (size_t)oa->channels * (oa->format == 1 ? 2 : 4);

			fprintf(info, "output: audio %s %u Hz %u ch, %zu frames (%.3f s)%s%s\n",
				fmt_name(oa->format), oa->sample_rate, oa->channels,
				fb ? oa->samples.len / fb : 0,
				fb && oa->sample_rate
				    ? (double)oa->samples.len / fb / oa->sample_rate
				    : 0.0,
				outpath ? " -> " : "", outpath ? outpath : "");
		} else if (r->output && r->output->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA) {
			fprintf(info, "output: %zu bytes%s%s\n", r->output->data.len,
				outpath ? " -> " : "", outpath ? outpath : "");
		}
		fprintf(info, "dataplane: %.3f ms\n", (double)r->dataplane_ns / 1e6);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
out_conn:
	ctl_disconnect(&c);
out_in:
	free(in.buf);
out_pipe:
	ctl_pipefile_free(&tp.pf);
	return rc;
}

/* ==== stream ================================================================================ */

enum stag { TAG_SEND = 1, TAG_RECV, TAG_STATUS };

struct sstate {
	const struct ctl_opts *o;
	struct ctl_conn *c;
	grpc_call *call;
	int tags[4]; /* addresses used as tags: &tags[TAG_*] */
	grpc_byte_buffer *send_buf, *recv_buf;
	grpc_metadata_array md_init, md_trail;
	grpc_status_code status;
	grpc_slice details;
	bool sending, closed, recv_pending, status_done;
	/* frames */
	const struct input *in;
	size_t frame_bytes, n_frames, next;
	double frame_s, t0;
	/* responses */
	uint64_t responses, frames_out, bad_seq;
	struct outfile *of;
	int out_rc;
};

static void
ss_batch(struct sstate *s, grpc_op *ops, size_t n, enum stag t)
{
	if (grpc_call_start_batch(s->call, ops, n, &s->tags[t], NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "corepipectl: grpc_call_start_batch failed\n");
		exit(CTL_EXIT_CONNECT);
	}
}

static void
ss_send_msg(struct sstate *s, const Corepipe__V1__StreamRequest *m, bool first)
{
	grpc_op ops[2];
	size_t n = 0, len = corepipe__v1__stream_request__get_packed_size(m);
	grpc_slice sl = grpc_slice_malloc(len);

	corepipe__v1__stream_request__pack(m, GRPC_SLICE_START_PTR(sl));
	s->send_buf = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	memset(ops, 0, sizeof(ops));
	if (first) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].data.send_initial_metadata.count = s->c->n_md;
		ops[n++].data.send_initial_metadata.metadata = s->c->md;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = s->send_buf;
	s->sending = true;
	ss_batch(s, ops, n, TAG_SEND);
}

static void
ss_post_recv(struct sstate *s)
{
	grpc_op op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv_buf;
	s->recv_buf = NULL;
	s->recv_pending = true;
	ss_batch(s, &op, 1, TAG_RECV);
}

/* When the next frame is due (--realtime), in seconds on the monotonic clock. */
static double
ss_due(const struct sstate *s)
{
	return s->o->realtime ? s->t0 + (double)s->next * s->frame_s : 0;
}

static void
ss_maybe_send(struct sstate *s)
{
	Corepipe__V1__StreamRequest m = COREPIPE__V1__STREAM_REQUEST__INIT;
	Corepipe__V1__Payload p;
	Corepipe__V1__AudioBuffer a;
	size_t off, n;

	if (s->sending || s->closed || s->status_done)
		return;
	if (s->next == s->n_frames) {
		grpc_op op;

		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		s->closed = true;
		s->sending = true;
		ss_batch(s, &op, 1, TAG_SEND);
		return;
	}
	if (s->o->realtime && now_s() < ss_due(s))
		return;
	off = s->next * s->frame_bytes;
	n = s->in->wav.len - off < s->frame_bytes ? s->in->wav.len - off : s->frame_bytes;
	fill_payload(&p, &a, s->in, s->in->wav.data + off, n);
	m.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_FRAME;
	m.frame = &p;
	s->next++;
	ss_send_msg(s, &m, false);
}

static void
ss_on_response(struct sstate *s, const Corepipe__V1__StreamResponse *r)
{
	double total =
	    (double)s->in->wav.len / (double)ctl_wav_frame_bytes(&s->in->wav) / s->in->wav.rate;
	double at = now_s() - s->t0, a0 = (double)r->seq * s->frame_s, a1;
	bool flush = r->seq >= s->n_frames;
	size_t out_len = 0;

	if (r->seq != s->responses)
		s->bad_seq++;
	s->responses++;
	if (s->out_rc == 0)
		s->out_rc = out_write(s->o, s->of, r->output);
	if (r->output && r->output->kind_case == COREPIPE__V1__PAYLOAD__KIND_AUDIO &&
	    r->output->audio)
		out_len = r->output->audio->samples.len;
	else if (r->output && r->output->kind_case == COREPIPE__V1__PAYLOAD__KIND_DATA)
		out_len = r->output->data.len;
	if (flush)
		a0 = total;
	a1 = flush ? a0 : a0 + s->frame_s;
	if (a1 > total)
		a1 = total;
	if (s->o->json) {
		json_t *j = json_object();

		json_object_set_new(j, "seq", json_integer((json_int_t)r->seq));
		json_object_set_new(j, "flush", json_boolean(flush));
		json_object_set_new(j, "audio_start_s", json_real(a0));
		json_object_set_new(j, "audio_end_s", json_real(a1));
		json_object_set_new(j, "arrival_s", json_real(at));
		json_object_set_new(j, "output_bytes", json_integer((json_int_t)out_len));
		json_object_set_new(
		    j, "annotations",
		    annot_json((Corepipe__V1__ExecuteResponse__AnnotationsEntry **)r->annotations,
			       r->n_annotations));
		ctl_json_print(j);
		return;
	}
	if (flush)
		printf("%8.3f s  flush            ", at);
	else
		printf("%8.3f s  frame %-5llu %6.3f-%6.3f s ", at, (unsigned long long)r->seq, a0,
		       a1);
	printf(" %6zu B", out_len);
	for (size_t i = 0; i < r->n_annotations; i++)
		printf("  %s=%s", r->annotations[i]->key, r->annotations[i]->value);
	putchar('\n');
	fflush(stdout);
}

int
ctl_cmd_stream(const struct ctl_opts *o, int argc, char **argv)
{
	const char *name, *inpath, *outpath;
	Corepipe__V1__StreamRequest m = COREPIPE__V1__STREAM_REQUEST__INIT;
	Corepipe__V1__StreamOpen op = COREPIPE__V1__STREAM_OPEN__INIT;
	struct target_pipe tp;
	struct input in;
	struct outfile of;
	struct ctl_conn c;
	struct sstate s;
	grpc_op ops[2];
	size_t frames;
	int rc;

	rc = positional(o, argc, argv,
			"stream PIPELINE IN.wav [OUT.wav] | stream --inline FILE IN.wav [OUT.wav]",
			&name, &inpath, &outpath);
	if (rc != 0)
		return rc;
	if ((rc = load_pipe(o, name, &tp)) != 0)
		return rc;
	if ((rc = load_input(o, inpath, &in, true)) != 0)
		goto out_pipe;
	if (o->inline_file == NULL) { /* load_pipe() took the name, else the file */
		op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_NAME;
		op.name = (char *)tp.name;
	} else {
		op.pipeline_case = COREPIPE__V1__STREAM_OPEN__PIPELINE_INLINE;
		op.inline_ = tp.pf.specs[0];
	}
	if ((rc = out_open(o, &of, outpath)) != 0)
		goto out_in;
	if ((rc = ctl_connect(&c, o)) != 0) {
		out_close(o, &of);
		goto out_in;
	}
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.c = &c;
	s.in = &in;
	s.of = &of;
	frames = (size_t)llround(in.wav.rate * o->frame_ms / 1000.0); /* whole frames a message */
	if (frames == 0)
		frames = 1;
	s.frame_bytes = frames * ctl_wav_frame_bytes(&in.wav);
	s.frame_s = (double)frames / in.wav.rate;
	s.n_frames = (in.wav.len + s.frame_bytes - 1) / s.frame_bytes;
	grpc_metadata_array_init(&s.md_init);
	grpc_metadata_array_init(&s.md_trail);
	s.call = grpc_channel_create_call(
	    c.ch, NULL, GRPC_PROPAGATE_DEFAULTS, c.cq,
	    grpc_slice_from_static_string("/corepipe.v1.Pipeline/ExecuteStream"), NULL,
	    ctl_deadline(o, true), NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &s.md_init;
	ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[1].data.recv_status_on_client.trailing_metadata = &s.md_trail;
	ops[1].data.recv_status_on_client.status = &s.status;
	ops[1].data.recv_status_on_client.status_details = &s.details;
	ss_batch(&s, ops, 2, TAG_STATUS);
	m.msg_case = COREPIPE__V1__STREAM_REQUEST__MSG_OPEN;
	m.open = &op;
	s.t0 = now_s();
	ss_send_msg(&s, &m, true);
	ss_post_recv(&s);
	if (!o->json)
		printf("%10s  %-26s %8s  %s\n", "ARRIVAL", "FRAME (AUDIO TIME)", "OUTPUT",
		       "ANNOTATIONS");
	while (!s.status_done || s.sending || s.recv_pending) {
		gpr_timespec dl = gpr_inf_future(GPR_CLOCK_MONOTONIC);
		grpc_event ev;

		if (o->realtime && !s.sending && !s.closed && !s.status_done) {
			double wait = ss_due(&s) - now_s();

			dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					  gpr_time_from_micros(wait > 0 ? (int64_t)(wait * 1e6) : 0,
							       GPR_TIMESPAN));
		}
		ev = grpc_completion_queue_next(c.cq, dl, NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			ss_maybe_send(&s);
			continue;
		}
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		switch ((enum stag)((int *)ev.tag - s.tags)) {
		case TAG_SEND:
			s.sending = false;
			if (s.send_buf) {
				grpc_byte_buffer_destroy(s.send_buf);
				s.send_buf = NULL;
			}
			if (ev.success)
				ss_maybe_send(&s);
			break;
		case TAG_RECV:
			s.recv_pending = false;
			if (ev.success && s.recv_buf != NULL) {
				grpc_byte_buffer_reader rd;
				grpc_slice sl = grpc_empty_slice();
				Corepipe__V1__StreamResponse *r = NULL;

				if (grpc_byte_buffer_reader_init(&rd, s.recv_buf)) {
					sl = grpc_byte_buffer_reader_readall(&rd);
					grpc_byte_buffer_reader_destroy(&rd);
					r = corepipe__v1__stream_response__unpack(
					    NULL, GRPC_SLICE_LENGTH(sl), GRPC_SLICE_START_PTR(sl));
				}
				grpc_slice_unref(sl);
				grpc_byte_buffer_destroy(s.recv_buf);
				s.recv_buf = NULL;
				if (r != NULL) {
					ss_on_response(&s, r);
					corepipe__v1__stream_response__free_unpacked(r, NULL);
				} else {
					s.bad_seq++;
				}
				ss_post_recv(&s);
			} else if (s.recv_buf != NULL) {
				grpc_byte_buffer_destroy(s.recv_buf);
				s.recv_buf = NULL;
			}
			break;
		case TAG_STATUS:
			s.status_done = true;
			break;
		default:
			break;
		}
	}
	{
		struct ctl_status st = {.code = s.status};
		char *d = grpc_slice_to_c_string(s.details);
		int orc = out_close(o, &of);

		snprintf(st.msg, sizeof(st.msg), "%s", d);
		gpr_free(d);
		if (s.status != GRPC_STATUS_OK) {
			if (!o->json)
				fprintf(stderr,
					"%s: %llu of %zu frames answered before the error\n",
					o->progname, (unsigned long long)s.responses, s.n_frames);
			rc = ctl_status_fail(o, "ExecuteStream", &st);
		} else if (s.out_rc != 0 || orc != 0) {
			rc = CTL_EXIT_OUTPUT;
		} else if (s.bad_seq != 0) {
			rc = ctl_err(o, CTL_EXIT_FAILURE, "%llu responses out of order",
				     (unsigned long long)s.bad_seq);
		} else if (o->json) {
			json_t *j = json_object();

			json_object_set_new(j, "frames", json_integer((json_int_t)s.n_frames));
			json_object_set_new(j, "responses", json_integer((json_int_t)s.responses));
			json_object_set_new(j, "frame_ms", json_real(s.frame_s * 1e3));
			json_object_set_new(j, "realtime", json_boolean(o->realtime));
			json_object_set_new(j, "seconds", json_real(now_s() - s.t0));
			json_object_set_new(j, "output", out_json(&of, NULL));
			json_object_set_new(j, "status", json_string("OK"));
			ctl_json_print(json_pack("{s:o}", "summary", j));
		} else {
			printf("%zu frames of %.1f ms, %llu responses in %.3f s, status OK",
			       s.n_frames, s.frame_s * 1e3, (unsigned long long)s.responses,
			       now_s() - s.t0);
			if (outpath)
				printf("; %zu bytes of output -> %s", of.bytes, outpath);
			putchar('\n');
		}
		grpc_slice_unref(s.details);
	}
	grpc_metadata_array_destroy(&s.md_init);
	grpc_metadata_array_destroy(&s.md_trail);
	grpc_call_unref(s.call);
	ctl_disconnect(&c);
out_in:
	free(in.buf);
out_pipe:
	ctl_pipefile_free(&tp.pf);
	return rc;
}

/*
 * corepipe-bench reports (see bench_report.h).
 */
#include "perf/corepipe_report.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char *const g_code_name[BR_N_CODES] = {
    "OK",	 "CANCELLED",	   "UNKNOWN",		"INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",	 "OUT_OF_RANGE",   "UNIMPLEMENTED",	"INTERNAL",	      "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

static const double g_pcts[] = {10, 25, 50, 75, 90, 95, 99, 99.9, 99.99};
#define N_PCTS (sizeof(g_pcts) / sizeof(g_pcts[0]))
/* ghz-style histogram: 10 equal-width buckets from fastest to slowest. */
#define N_MARKS 11

const char *
br_code_name(int code)
{
	return code >= 0 && code < BR_N_CODES ? g_code_name[code] : "UNKNOWN";
}

int
br_format_parse(const char *s, enum br_format *f)
{
	static const char *const names[] = {"text", "json", "csv", "html"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*f = (enum br_format)i;
			return 0;
		}
	return -1;
}

void
br_errors_add(struct br_errors *t, int code, const char *msg, size_t len, uint64_t n)
{
	if (len >= BR_MSG_MAX)
		len = BR_MSG_MAX - 1;
	for (unsigned i = 0; i < t->n; i++)
		if (t->e[i].code == code && strncmp(t->e[i].msg, msg, len) == 0 &&
		    t->e[i].msg[len] == '\0') {
			t->e[i].count += n;
			return;
		}
	if (t->n == BR_MAX_ERRORS) {
		t->other += n;
		return;
	}
	t->e[t->n].code = code;
	memcpy(t->e[t->n].msg, msg, len);
	t->e[t->n].msg[len] = '\0';
	t->e[t->n].count = n;
	t->n++;
}

void
br_errors_merge(struct br_errors *into, const struct br_errors *from)
{
	for (unsigned i = 0; i < from->n; i++)
		br_errors_add(into, from->e[i].code, from->e[i].msg, strlen(from->e[i].msg),
			      from->e[i].count);
	into->other += from->other;
}

/* ==== Derived figures ======================================================================= */

struct figs {
	uint64_t ok, failed, calls;
	double rate, mark[N_MARKS];
	uint64_t cnt[N_MARKS];
	const char *unit, *calls_unit;
	/* Error pairs sorted by count (indices into errors->e). */
	unsigned order[BR_MAX_ERRORS];
};

static void
derive(const struct br_result *r, struct figs *f)
{
	const struct hist *h = r->h;
	double lo = (double)h->min, hi = (double)h->max, w = (hi - lo) / (N_MARKS - 1);

	memset(f, 0, sizeof(*f));
	for (int k = 0; k < BR_N_CODES; k++)
		f->calls += r->codes[k];
	f->ok = r->codes[0];
	f->failed = f->calls - f->ok;
	f->rate = r->elapsed_s > 0 ? (double)h->n / r->elapsed_s : 0;
	f->unit = r->stream ? "messages" : "requests";
	f->calls_unit = r->stream ? "streams" : "calls";
	for (int i = 0; i < N_MARKS; i++)
		f->mark[i] = lo + w * i;
	for (unsigned i = 0; i < HIST_SIZE; i++) {
		int k;

		if (!h->count[i])
			continue;
		k = w > 0 ? (int)ceil(((double)hist_value(i) - lo) / w) : 0;
		f->cnt[k < 0 ? 0 : k >= N_MARKS ? N_MARKS - 1 : k] += h->count[i];
	}
	for (unsigned i = 0; i < r->errors->n; i++)
		f->order[i] = i;
	for (unsigned i = 1; i < r->errors->n; i++) /* insertion sort, largest first */
		for (unsigned k = i;
		     k > 0 && r->errors->e[f->order[k]].count > r->errors->e[f->order[k - 1]].count;
		     k--) {
			unsigned t = f->order[k];

			f->order[k] = f->order[k - 1];
			f->order[k - 1] = t;
		}
}

static double
cpu_pct(const struct br_result *r)
{
	double t = r->elapsed_s + r->warmup_s;

	return t > 0 ? 100 * r->cpu_s / t : 0;
}

/* A one-line verdict: what every format says first. */
static void
verdict(const struct br_result *r, const struct figs *f, char *buf, size_t n)
{
	if (f->calls == 0 && r->h->n == 0)
		snprintf(buf, n, "nothing was measured: no call ended after the warm-up");
	else if (f->ok == 0 && f->failed > 0)
		snprintf(buf, n, "all %" PRIu64 " %s failed", f->failed, f->calls_unit);
	else if (f->failed > 0)
		snprintf(buf, n, "%" PRIu64 " of %" PRIu64 " %s failed", f->failed, f->calls,
			 f->calls_unit);
	else if (r->bad_output || r->bad_seq)
		snprintf(buf, n,
			 "every %s ended OK, but %" PRIu64 " outputs and %" PRIu64
			 " sequence numbers were wrong",
			 r->stream ? "stream" : "call", r->bad_output, r->bad_seq);
	else
		snprintf(buf, n, "all %" PRIu64 " %s OK", f->calls, f->calls_unit);
}

/* ==== JSON ================================================================================== */

static void
json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(o, "\\%c", c);
		else if (c < 0x20)
			fprintf(o, "\\u%04x", c);
		else if (c == '<' || c == '>' || c == '&')
			fprintf(o, "\\u%04x", c); /* also safe inside an HTML <script> */
		else
			fputc(c, o);
	}
	fputc('"', o);
}

static void
write_json(FILE *o, const struct br_result *r, const struct figs *f)
{
	const struct hist *h = r->h;
	double us = 1e3;
	char v[256];

	verdict(r, f, v, sizeof(v));
	fprintf(o, "{\"command\":");
	json_str(o, r->command);
	fprintf(o, ",\"verdict\":");
	json_str(o, v);
	fprintf(o,
		",\"mode\":\"%s\",\"proto\":\"%s\",\"count\":%" PRIu64
		",\"duration_s\":%.3f,\"rps\":%.1f",
		r->stream ? "stream" : "unary", r->udp ? "udp" : "grpc", h->n, r->elapsed_s,
		f->rate);
	fprintf(o,
		",\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
		"\"p95\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f}",
		(double)h->min / us, h->n ? h->sum / (double)h->n / us : 0,
		(double)hist_pct(h, 50) / us, (double)hist_pct(h, 90) / us,
		(double)hist_pct(h, 95) / us, (double)hist_pct(h, 99) / us,
		(double)hist_pct(h, 99.9) / us, (double)h->max / us);
	fprintf(o, ",\"percentiles_us\":{");
	for (size_t i = 0; i < N_PCTS; i++)
		fprintf(o, "%s\"%g\":%.1f", i ? "," : "", g_pcts[i],
			(double)hist_pct(h, g_pcts[i]) / us);
	fprintf(o, "},\"histogram\":[");
	for (int i = 0; i < N_MARKS; i++)
		fprintf(o, "%s{\"mark_us\":%.1f,\"count\":%" PRIu64 "}", i ? "," : "",
			f->mark[i] / us, f->cnt[i]);
	/* The log-linear buckets themselves (value, count): enough for any CDF. */
	fprintf(o, "],\"buckets\":[");
	for (unsigned i = 0, first = 1; i < HIST_SIZE; i++)
		if (h->count[i]) {
			fprintf(o, "%s[%.3f,%" PRIu64 "]", first ? "" : ",",
				(double)hist_value(i) / us, h->count[i]);
			first = 0;
		}
	fprintf(o, "],\"status\":{");
	for (int k = 0, first = 1; k < BR_N_CODES; k++)
		if (r->codes[k]) {
			fprintf(o, "%s\"%s\":%" PRIu64, first ? "" : ",", g_code_name[k],
				r->codes[k]);
			first = 0;
		}
	fprintf(o, "},\"error_distribution\":[");
	for (unsigned i = 0; i < r->errors->n; i++) {
		unsigned k = f->order[i];

		fprintf(o, "%s{\"code\":\"%s\",\"message\":", i ? "," : "",
			br_code_name(r->errors->e[k].code));
		json_str(o, r->errors->e[k].msg);
		fprintf(o, ",\"count\":%" PRIu64 "}", r->errors->e[k].count);
	}
	fprintf(o,
		"],\"errors_not_itemised\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64
		",\"calls\":%" PRIu64 ",\"checked_ok\":%" PRIu64 ",\"bad_output\":%" PRIu64
		",\"bad_seq\":%" PRIu64 ",\"streams_done\":%" PRIu64 ",\"unanswered\":%" PRIu64
		",\"backlog_at_end\":%" PRIu64,
		r->errors->other, f->ok, f->failed, f->calls, r->ok_checked, r->bad_output,
		r->bad_seq, r->streams_done, r->unanswered, r->backlog);
	if (r->udp)
		fprintf(o,
			",\"udp\":{\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"stale\":%" PRIu64
			",\"bad\":%" PRIu64 ",\"timeouts\":%" PRIu64 "}",
			r->udp_sent, r->udp_received, r->udp_stale, r->udp_bad, r->udp_timeouts);
	fprintf(o,
		",\"client_cpu_s\":%.3f,\"client_cpu_pct\":%.1f,\"concurrency\":%u,"
		"\"connections\":%u,\"connections_ready\":%u,\"connect_s\":%.3f,"
		"\"threads\":%u,\"open_loop\":%s,\"histogram_rel_error\":%.5f}\n",
		r->cpu_s, cpu_pct(r), r->concurrency, r->connections, r->ready, r->connect_s,
		r->threads, r->open_loop ? "true" : "false", HIST_REL_ERROR);
}

/* ==== CSV =================================================================================== */

static void
csv_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', o);
		fputc(*s == '\n' || *s == '\r' ? ' ' : *s, o);
	}
	fputc('"', o);
}

static void
write_csv(FILE *o, const struct br_result *r, const struct figs *f)
{
	const struct hist *h = r->h;
	char v[256];

	verdict(r, f, v, sizeof(v));
	fprintf(o, "section,key,value\n");
	fprintf(o, "summary,command,");
	csv_str(o, r->command);
	fprintf(o, "\nsummary,verdict,");
	csv_str(o, v);
	fprintf(o, "\nsummary,mode,%s\nsummary,proto,%s\n", r->stream ? "stream" : "unary",
		r->udp ? "udp" : "grpc");
	fprintf(o, "summary,count,%" PRIu64 "\nsummary,duration_s,%.3f\nsummary,rps,%.1f\n", h->n,
		r->elapsed_s, f->rate);
	fprintf(o,
		"summary,calls,%" PRIu64 "\nsummary,ok,%" PRIu64 "\nsummary,errors,%" PRIu64 "\n",
		f->calls, f->ok, f->failed);
	fprintf(o, "summary,concurrency,%u\nsummary,connections,%u\nsummary,client_cpu_s,%.3f\n",
		r->concurrency, r->connections, r->cpu_s);
	if (r->check_output)
		fprintf(o, "summary,checked_ok,%" PRIu64 "\nsummary,bad_output,%" PRIu64 "\n",
			r->ok_checked, r->bad_output);
	if (r->stream)
		fprintf(o, "summary,bad_seq,%" PRIu64 "\nsummary,unanswered,%" PRIu64 "\n",
			r->bad_seq, r->unanswered);
	fprintf(o, "latency_us,min,%.3f\nlatency_us,mean,%.3f\nlatency_us,max,%.3f\n",
		(double)h->min / 1e3, h->n ? h->sum / (double)h->n / 1e3 : 0, (double)h->max / 1e3);
	for (size_t i = 0; i < N_PCTS; i++)
		fprintf(o, "latency_us,p%g,%.3f\n", g_pcts[i],
			(double)hist_pct(h, g_pcts[i]) / 1e3);
	for (int i = 0; i < N_MARKS; i++)
		fprintf(o, "histogram_us,%.3f,%" PRIu64 "\n", f->mark[i] / 1e3, f->cnt[i]);
	for (int k = 0; k < BR_N_CODES; k++)
		if (r->codes[k])
			fprintf(o, "status,%s,%" PRIu64 "\n", g_code_name[k], r->codes[k]);
	for (unsigned i = 0; i < r->errors->n; i++) {
		unsigned k = f->order[i];
		char key[BR_MSG_MAX + 32];

		snprintf(key, sizeof(key), "%s: %s", br_code_name(r->errors->e[k].code),
			 r->errors->e[k].msg);
		fprintf(o, "error,");
		csv_str(o, key);
		fprintf(o, ",%" PRIu64 "\n", r->errors->e[k].count);
	}
	if (r->errors->other)
		fprintf(o, "error,\"(other messages)\",%" PRIu64 "\n", r->errors->other);
}

/* ==== Text ================================================================================== */

static void
write_errors_text(FILE *o, const struct br_result *r, const struct figs *f)
{
	if (r->errors->n == 0)
		return;
	fprintf(o, "\nError distribution:\n");
	for (unsigned i = 0; i < r->errors->n; i++) {
		unsigned k = f->order[i];

		fprintf(o, "  [%" PRIu64 "]\t%s: %s\n", r->errors->e[k].count,
			br_code_name(r->errors->e[k].code), r->errors->e[k].msg);
	}
	if (r->errors->other)
		fprintf(o, "  [%" PRIu64 "]\t(other messages)\n", r->errors->other);
}

static void
write_text(FILE *o, const struct br_result *r, const struct figs *f)
{
	const struct hist *h = r->h;
	double ms = 1e6;
	uint64_t peak = 1;
	char v[256];

	verdict(r, f, v, sizeof(v));
	fprintf(o, "\nSummary:\n");
	fprintf(o, "  Command:\t%s\n", r->command);
	if (r->udp)
		fprintf(
		    o,
		    "  Mode:\t\tExecute over UDP (pipeline id %u), %u concurrent, %u sockets, %u "
		    "threads, batches of %u%s\n",
		    r->pipeline_id, r->concurrency, r->threads, r->threads, r->udp_batch,
		    r->open_loop ? ", open loop" : ", closed loop");
	else
		fprintf(o,
			"  Mode:\t\t%s over gRPC, %u %s, %u connections (%u ready in %.2f s), %u "
			"threads%s\n",
			r->stream ? "ExecuteStream" : "Execute", r->concurrency,
			r->stream ? "streams" : "concurrent", r->connections, r->ready,
			r->connect_s, r->threads, r->open_loop ? ", open loop" : ", closed loop");
	fprintf(o, "  Result:\t%s\n", v);
	fprintf(o, "  Count:\t%" PRIu64 " %s%s\n", h->n, f->unit, r->stream ? " answered" : "");
	if (r->stream)
		fprintf(o, "  Streams:\t%" PRIu64 " OK, %" PRIu64 " failed%s\n", f->ok, f->failed,
			"");
	if (r->unanswered)
		fprintf(o, "  Unanswered:\t%" PRIu64 " frames sent on streams that failed first\n",
			r->unanswered);
	fprintf(o, "  Total:\t%.2f s\n", r->elapsed_s);
	if (h->n == 0) {
		fprintf(o, "  Latency:\tnone measured (no %s answered after the warm-up)\n",
			r->stream ? "message was" : "call was");
	} else {
		fprintf(o, "  Slowest:\t%.3f ms\n", (double)h->max / ms);
		fprintf(o, "  Fastest:\t%.3f ms\n", (double)h->min / ms);
		fprintf(o, "  Average:\t%.3f ms\n", h->sum / (double)h->n / ms);
	}
	fprintf(o, "  %s/sec:\t%.1f\n", r->stream ? "Messages" : "Requests", f->rate);
	fprintf(o, "  Client CPU:\t%.2f s = %.0f%% of one core (%ld CPUs here)\n", r->cpu_s,
		cpu_pct(r), r->ncpu);
	if (r->backlog)
		fprintf(o,
			"  Not sent:\t%" PRIu64 " scheduled calls found no free slot (-c) before "
			"the end\n",
			r->backlog);
	if (h->n > 0) {
		fprintf(o, "\nResponse time histogram (ms):\n");
		for (int i = 0; i < N_MARKS; i++)
			peak = f->cnt[i] > peak ? f->cnt[i] : peak;
		for (int i = 0; i < N_MARKS; i++) {
			fprintf(o, "  %9.3f [%" PRIu64 "]\t|", f->mark[i] / ms, f->cnt[i]);
			for (uint64_t k = 0; k < f->cnt[i] * 40 / peak; k++)
				fputc('#', o);
			fputc('\n', o);
		}
		fprintf(o, "\nLatency distribution (histogram error <= %.1f%%):\n",
			100 * HIST_REL_ERROR);
		for (size_t i = 0; i < N_PCTS; i++)
			fprintf(o, "  %g %% in %.3f ms\n", g_pcts[i],
				(double)hist_pct(h, g_pcts[i]) / ms);
	}
	fprintf(o, "\nStatus code distribution%s:\n", r->stream ? " (streams)" : "");
	if (f->calls == 0)
		fprintf(o, "  (none)\n");
	for (int k = 0; k < BR_N_CODES; k++)
		if (r->codes[k])
			fprintf(o, "  [%s]\t%" PRIu64 " %s\n", g_code_name[k], r->codes[k],
				r->stream ? "streams" : "responses");
	write_errors_text(o, r, f);
	if (r->check_output)
		fprintf(o, "\nOutput check: %" PRIu64 " equal to their input, %" PRIu64 " not\n",
			r->ok_checked, r->bad_output);
	if (r->udp)
		fprintf(o,
			"\nUDP datagrams (warm-up included): %" PRIu64 " requests sent, %" PRIu64
			" received, %" PRIu64 " stale or duplicate, %" PRIu64
			" not a valid response, %" PRIu64 " timed out\n",
			r->udp_sent, r->udp_received, r->udp_stale, r->udp_bad, r->udp_timeouts);
	if (r->stream)
		fprintf(o, "Stream order: %" PRIu64 " responses out of seq order\n", r->bad_seq);
}

/* ==== HTML ================================================================================== */

static void
html_str(FILE *o, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", o);
			break;
		case '>':
			fputs("&gt;", o);
			break;
		case '&':
			fputs("&amp;", o);
			break;
		case '"':
			fputs("&quot;", o);
			break;
		default:
			fputc(*s, o);
		}
	}
}

/* The page's script: draws the two charts as SVG from the embedded report (no network). */
static const char g_html_js[] =
    "(function(){\n"
    "var d=JSON.parse(document.getElementById('report-data').textContent);\n"
    "var NS='http://www.w3.org/2000/svg';\n"
    "function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,"
    "a[k]);if(p)p.appendChild(e);return e;}\n"
    "function txt(p,x,y,s,a){var t=el('text',Object.assign({x:x,y:y,'font-size':11,"
    "'font-family':'sans-serif'},a||{}),p);t.textContent=s;return t;}\n"
    "function chart(id,title,xl,yl){var W=640,H=300,L=60,R=20,T=30,B=45;var s=el('svg',"
    "{id:id,width:W,height:H,viewBox:'0 0 '+W+' '+H,role:'img'},document.getElementById("
    "'charts'));el('rect',{x:0,y:0,width:W,height:H,fill:'#fff',stroke:'#ccc'},s);"
    "txt(s,W/2,18,title,{'text-anchor':'middle','font-size':13,'font-weight':'bold'});"
    "txt(s,W/2,H-8,xl,{'text-anchor':'middle'});txt(s,14,H/2,yl,{'text-anchor':'middle',"
    "transform:'rotate(-90 14 '+H/2+')'});return {svg:s,x0:L,y0:H-B,w:W-L-R,h:H-T-B};}\n"
    "function axes(c,xmin,xmax,ymax,fy){el('line',{x1:c.x0,y1:c.y0,x2:c.x0+c.w,y2:c.y0,"
    "stroke:'#000'},c.svg);el('line',{x1:c.x0,y1:c.y0,x2:c.x0,y2:c.y0-c.h,stroke:'#000'},"
    "c.svg);for(var i=0;i<=4;i++){var y=c.y0-c.h*i/4;txt(c.svg,c.x0-4,y+4,fy(ymax*i/4),"
    "{'text-anchor':'end'});var x=c.x0+c.w*i/4;txt(c.svg,x,c.y0+14,(xmin+(xmax-xmin)*i/4)."
    "toPrecision(3),{'text-anchor':'middle'});}}\n"
    "var h=d.histogram||[];var n=d.count||0;\n"
    "if(n>0&&h.length){var c=chart('chart-histogram','Response time histogram',"
    "'latency (ms)','count');var ymax=Math.max.apply(null,h.map(function(b){return b.count}))"
    "||1;var xmax=h[h.length-1].mark_us/1000||1;axes(c,h[0].mark_us/1000,xmax,ymax,"
    "function(v){return Math.round(v)});var bw=c.w/h.length;h.forEach(function(b,i){var "
    "bh=c.h*b.count/ymax;"
    "var r=el('rect',{x:c.x0+i*bw+1,y:c.y0-bh,width:Math.max(bw-2,1),height:bh,fill:"
    "'#4a7ebb','class':'bar'},c.svg);el('title',{},r).textContent=(b.mark_us/1000).toFixed(3)+"
    "' ms: '+b.count;});}\n"
    "var bk=d.buckets||[];if(n>0&&bk.length){var c2=chart('chart-cdf','Latency CDF',"
    "'latency (ms)','fraction of '+(d.mode=='stream'?'messages':'requests'));var xmax2="
    "bk[bk.length-1][0]/1000||1;axes(c2,0,xmax2,1,function(v){return v.toFixed(2)});var "
    "cum=0,pts=[];bk.forEach(function(b){cum+=b[1];pts.push((c2.x0+c2.w*(b[0]/1000)/xmax2)."
    "toFixed(1)+','+(c2.y0-c2.h*cum/n).toFixed(1));});el('polyline',{points:pts.join(' '),"
    "fill:'none',stroke:'#c0392b','stroke-width':2,'class':'cdf'},c2.svg);}\n"
    "if(n==0){var p=document.createElement('p');p.id='no-charts';p.textContent="
    "'No latency to chart: nothing was answered in the measured window.';document."
    "getElementById('charts').appendChild(p);}\n"
    "document.body.setAttribute('data-charts-drawn','yes');\n"
    "})();\n";

static void
write_html(FILE *o, const struct br_result *r, const struct figs *f)
{
	const struct hist *h = r->h;
	char v[256];

	verdict(r, f, v, sizeof(v));
	fprintf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<title>corepipe-bench report</title>\n<style>\n"
		   "body{font-family:sans-serif;margin:2em;max-width:1400px}"
		   "table{border-collapse:collapse;margin:1em 0}"
		   "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
		   "th{background:#f3f3f3}.bad{color:#b00}.good{color:#070}"
		   "#charts svg{margin:0 1em 1em 0}code{background:#f6f6f6}\n"
		   "</style></head><body>\n<h1>corepipe-bench</h1>\n<p><code>");
	html_str(o, r->command);
	fprintf(o, "</code></p>\n<p id=\"verdict\" class=\"%s\"><b>", f->failed ? "bad" : "good");
	html_str(o, v);
	fprintf(o, "</b></p>\n<h2>Summary</h2>\n<table id=\"summary\">\n");
	fprintf(o,
		"<tr><th>Mode</th><td>%s over %s, %u %s, %u connections, %u threads, %s loop"
		"</td></tr>\n",
		r->stream ? "ExecuteStream" : "Execute", r->udp ? "UDP" : "gRPC", r->concurrency,
		r->stream ? "streams" : "concurrent", r->connections, r->threads,
		r->open_loop ? "open" : "closed");
	fprintf(o, "<tr><th>Count</th><td>%" PRIu64 " %s</td></tr>\n", h->n, f->unit);
	fprintf(o, "<tr><th>Total</th><td>%.2f s</td></tr>\n", r->elapsed_s);
	fprintf(o, "<tr><th>%s/sec</th><td>%.1f</td></tr>\n", r->stream ? "Messages" : "Requests",
		f->rate);
	if (h->n) {
		fprintf(o, "<tr><th>Fastest</th><td>%.3f ms</td></tr>\n", (double)h->min / 1e6);
		fprintf(o, "<tr><th>Average</th><td>%.3f ms</td></tr>\n",
			h->sum / (double)h->n / 1e6);
		fprintf(o, "<tr><th>Slowest</th><td>%.3f ms</td></tr>\n", (double)h->max / 1e6);
	}
	fprintf(o, "<tr><th>Client CPU</th><td>%.2f s</td></tr>\n</table>\n", r->cpu_s);
	if (h->n) {
		fprintf(o, "<h2>Latency distribution</h2>\n<table id=\"percentiles\"><tr>");
		for (size_t i = 0; i < N_PCTS; i++)
			fprintf(o, "<th>p%g</th>", g_pcts[i]);
		fprintf(o, "</tr><tr>");
		for (size_t i = 0; i < N_PCTS; i++)
			fprintf(o, "<td>%.3f ms</td>", (double)hist_pct(h, g_pcts[i]) / 1e6);
		fprintf(o, "</tr></table>\n");
	}
	fprintf(o, "<h2>Charts</h2>\n<div id=\"charts\"></div>\n");
	fprintf(o,
		"<h2>Status code distribution%s</h2>\n<table id=\"status\">"
		"<tr><th>Status</th><th>Count</th></tr>\n",
		r->stream ? " (streams)" : "");
	for (int k = 0; k < BR_N_CODES; k++)
		if (r->codes[k])
			fprintf(o, "<tr><td>%s</td><td>%" PRIu64 "</td></tr>\n", g_code_name[k],
				r->codes[k]);
	fprintf(o, "</table>\n<h2>Error distribution</h2>\n");
	if (r->errors->n == 0) {
		fprintf(o, "<p id=\"errors\">No errors.</p>\n");
	} else {
		fprintf(o, "<table id=\"errors\"><tr><th>Count</th><th>Status</th><th>Message</th>"
			   "</tr>\n");
		for (unsigned i = 0; i < r->errors->n; i++) {
			unsigned k = f->order[i];

			fprintf(o, "<tr><td>%" PRIu64 "</td><td>%s</td><td>", r->errors->e[k].count,
				br_code_name(r->errors->e[k].code));
			html_str(o, r->errors->e[k].msg);
			fprintf(o, "</td></tr>\n");
		}
		if (r->errors->other)
			fprintf(o,
				"<tr><td>%" PRIu64 "</td><td></td><td>(other messages)</td></tr>\n",
				r->errors->other);
		fprintf(o, "</table>\n");
	}
	fprintf(o, "<script type=\"application/json\" id=\"report-data\">");
	write_json(o, r, f); /* < > & are escaped as \\u00XX: safe in a script element */
	fprintf(o, "</script>\n<script>\n%s</script>\n</body></html>\n", g_html_js);
}

int
br_write(FILE *out, enum br_format fmt, const struct br_result *r)
{
	struct figs f;

	derive(r, &f);
	switch (fmt) {
	case BR_JSON:
		write_json(out, r, &f);
		break;
	case BR_CSV:
		write_csv(out, r, &f);
		break;
	case BR_HTML:
		write_html(out, r, &f);
		break;
	default:
		write_text(out, r, &f);
		break;
	}
	return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

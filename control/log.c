/*
 * JSON-lines logger. Formatting happens in a 4 KiB stack buffer; values that do not fit are
 * cut and marked with "..."; the line is written with a single write(2) to fd 2, which the
 * kernel keeps whole for pipes and files, so concurrent lines never interleave.
 */
#include "control/log.h"

#include <errno.h>
#include <rte_log.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static atomic_int g_level = CP_LOG_INFO;

void
cp_log_set_level(enum cp_log_level level)
{
	atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
}

enum cp_log_level
cp_log_get_level(void)
{
	return (enum cp_log_level)atomic_load_explicit(&g_level, memory_order_relaxed);
}

int
cp_log_level_parse(const char *s, enum cp_log_level *out)
{
	if (strcasecmp(s, "debug") == 0)
		*out = CP_LOG_DEBUG;
	else if (strcasecmp(s, "info") == 0)
		*out = CP_LOG_INFO;
	else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		*out = CP_LOG_WARN;
	else if (strcasecmp(s, "error") == 0)
		*out = CP_LOG_ERROR;
	else
		return -EINVAL;
	return 0;
}

const char *
cp_log_level_name(enum cp_log_level level)
{
	switch (level) {
	case CP_LOG_DEBUG:
		return "debug";
	case CP_LOG_WARN:
		return "warn";
	case CP_LOG_ERROR:
		return "error";
	default:
		return "info";
	}
}

/* ==== Formatting ============================================================================ */

/* Room always kept at the end of a line for `,"truncated":true` and "}\n". */
#define TRAILER ",\"truncated\":true"
#define RESERVE (sizeof(TRAILER) - 1 + 2)

struct out {
	char *buf;
	size_t len, pos; /* pos <= len - RESERVE */
	bool full;	 /* something was cut: the trailer is added */
};

static size_t
room(const struct out *o)
{
	return o->len - RESERVE - o->pos;
}

static void
put(struct out *o, const char *s, size_t n)
{
	size_t room = o->len - RESERVE - o->pos;

	if (n > room) {
		n = room;
		o->full = true;
	}
	memcpy(o->buf + o->pos, s, n);
	o->pos += n;
}

static void
puts_raw(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/*
 * JSON string with escapes; invalid UTF-8 bytes become U+FFFD. Each unit (a character, an
 * escape, a UTF-8 sequence) is written whole or not at all, always leaving room for `..."`, so
 * a cut string still closes as valid JSON.
 */
static void
put_json_str(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	if (room(o) < 5) {
		o->full = true;
		return;
	}
	put(o, "\"", 1);
	while (*p) {
		unsigned char c = *p;
		char e[8];
		const char *u = e;
		size_t n, adv = 1;

		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			n = 2;
		} else if (c == '\n' || c == '\r' || c == '\t') {
			e[0] = '\\';
			e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(e, "\\u00", 4);
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			n = 6;
		} else if (c < 0x80) {
			u = (const char *)p;
			n = 1;
		} else {
			/* One UTF-8 sequence, validated; anything else is U+FFFD. */
			int len = c >= 0xf0 && c <= 0xf4  ? 4
				  : c >= 0xe0 && c < 0xf0 ? 3
				  : c >= 0xc2 && c < 0xe0 ? 2
							  : 0;
			int i;

			for (i = 1; i < len && (p[i] & 0xc0) == 0x80; i++)
				;
			if (len == 0 || i < len) {
				u = "\\ufffd";
				n = 6;
			} else {
				u = (const char *)p;
				n = (size_t)len;
				adv = (size_t)len;
			}
		}
		if (n + 4 > room(o)) {
			o->full = true;
			put(o, "...\"", 4);
			return;
		}
		put(o, u, n);
		p += adv;
	}
	put(o, "\"", 1);
}

size_t
cp_log_format(char *buf, size_t len, enum cp_log_level level, const char *msg,
	      const struct cp_log_field *fields)
{
	struct out o = {.buf = buf, .len = len, .pos = 0, .full = false};
	struct timeval tv;
	struct tm tm;
	char ts[64], num[64];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(num, sizeof(num), ".%06ldZ", (long)tv.tv_usec);
	puts_raw(&o, "{\"ts\":\"");
	puts_raw(&o, ts);
	puts_raw(&o, num);
	puts_raw(&o, "\",\"level\":\"");
	puts_raw(&o, cp_log_level_name(level));
	puts_raw(&o, "\",\"msg\":");
	put_json_str(&o, msg);
	for (const struct cp_log_field *f = fields; f && f->key && !o.full; f++) {
		/* A key and a number always fit whole, or the field is left out. */
		if (room(&o) < strlen(f->key) + 48) {
			o.full = true;
			break;
		}
		put(&o, ",", 1);
		put_json_str(&o, f->key);
		put(&o, ":", 1);
		switch (f->type) {
		case CP_LT_STR:
			put_json_str(&o, f->s);
			break;
		case CP_LT_INT:
			snprintf(num, sizeof(num), "%lld", (long long)f->i);
			puts_raw(&o, num);
			break;
		case CP_LT_U64:
			snprintf(num, sizeof(num), "%llu", (unsigned long long)f->u);
			puts_raw(&o, num);
			break;
		case CP_LT_DBL:
			if (f->d != f->d || f->d > 1e308 || f->d < -1e308)
				puts_raw(&o, "null"); /* JSON has no NaN or infinities */
			else {
				snprintf(num, sizeof(num), "%.17g", f->d);
				puts_raw(&o, num);
			}
			break;
		case CP_LT_BOOL:
			puts_raw(&o, f->b ? "true" : "false");
			break;
		default:
			puts_raw(&o, "null");
			break;
		}
	}
	if (o.full) {
		memcpy(buf + o.pos, TRAILER, sizeof(TRAILER) - 1);
		o.pos += sizeof(TRAILER) - 1;
	}
	buf[o.pos++] = '}';
	buf[o.pos++] = '\n';
	return o.pos;
}

void
cp_log_fields(enum cp_log_level level, const char *msg, const struct cp_log_field *fields)
{
	char buf[LINE_MAX_BYTES];
	size_t n;
	ssize_t w;

	if ((int)level < atomic_load_explicit(&g_level, memory_order_relaxed))
		return;
	n = cp_log_format(buf, sizeof(buf), level, msg, fields);
	do
		w = write(STDERR_FILENO, buf, n);
	while (w < 0 && errno == EINTR);
}

/* ==== Foreign log sources =================================================================== */

struct stream_ctx {
	const char *component;
	char line[LINE_MAX_BYTES / 2];
	size_t len;
};

static void
stream_flush_line(struct stream_ctx *c)
{
	/* DPDK tells the level of the message being written (RTE_LOG_EMERG=1..DEBUG=8). */
	int rl = rte_log_cur_msg_loglevel();
	const int err = RTE_LOG_ERR, warn = RTE_LOG_WARNING, dbg = RTE_LOG_DEBUG;
	enum cp_log_level lvl = rl <= err    ? CP_LOG_ERROR
				: rl == warn ? CP_LOG_WARN
				: rl == dbg  ? CP_LOG_DEBUG
					     : CP_LOG_INFO;
	char *s = c->line;

	c->line[c->len] = '\0';
	if (c->len > 0)
		cp_log(lvl, s, CP_LF_STR("component", c->component));
	c->len = 0;
}

static ssize_t
stream_write(void *cookie, const char *buf, size_t size)
{
	struct stream_ctx *c = cookie;

	for (size_t i = 0; i < size; i++) {
		if (buf[i] == '\n' || c->len == sizeof(c->line) - 1)
			stream_flush_line(c);
		if (buf[i] != '\n')
			c->line[c->len++] = buf[i];
	}
	return (ssize_t)size;
}

FILE *
cp_log_stream(const char *component)
{
	static struct stream_ctx ctx;
	cookie_io_functions_t fns = {.write = stream_write};
	FILE *f;

	ctx.component = component;
	f = fopencookie(&ctx, "w", fns);
	if (f != NULL)
		setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

bool
cp_log_limit_pass(struct cp_log_limit *l, uint64_t key, uint64_t now_ns, uint64_t interval_ns,
		  uint64_t *suppressed)
{
	unsigned i, h = (unsigned)(key ^ (key >> 32)) % CP_LOG_LIMIT_KINDS;
	uint64_t last;

	/* Find the kind's slot (linear probing; a slot's key is claimed once, by CAS, and never
	 * released); when the table is full, the last slot takes every other kind. */
	for (i = 0; i < CP_LOG_LIMIT_KINDS; i++) {
		unsigned k = (h + i) % CP_LOG_LIMIT_KINDS;
		uint64_t cur = atomic_load_explicit(&l->slot[k].key, memory_order_relaxed);

		if (cur == 0 && atomic_compare_exchange_strong_explicit(&l->slot[k].key, &cur, key,
									memory_order_relaxed,
									memory_order_relaxed))
			cur = key;
		if (cur == key)
			break;
	}
	i = i < CP_LOG_LIMIT_KINDS ? (h + i) % CP_LOG_LIMIT_KINDS : CP_LOG_LIMIT_KINDS;
	last = atomic_load_explicit(&l->slot[i].last_ns, memory_order_relaxed);
	/* One winner per interval: the thread whose CAS moves last_ns. Relaxed is enough: the
	 * counters are advisory and nothing else is published through them. */
	if ((last == 0 || now_ns - last >= interval_ns) &&
	    atomic_compare_exchange_strong_explicit(&l->slot[i].last_ns, &last, now_ns ? now_ns : 1,
						    memory_order_relaxed, memory_order_relaxed)) {
		*suppressed =
		    atomic_exchange_explicit(&l->slot[i].suppressed, 0, memory_order_relaxed);
		return true;
	}
	atomic_fetch_add_explicit(&l->slot[i].suppressed, 1, memory_order_relaxed);
	return false;
}

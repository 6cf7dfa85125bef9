/*
 * perf_opt: the perf tools' option tables (see perf_opt.h). The table is turned into
 * getopt_long's arrays (long options get values past 255, short ones their character), each
 * argument is parsed by its row's type, and --help is printed from the same rows.
 */
#include "perf/perf_opt.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LONG_BASE 256 /* getopt_long values of long-only options: past every char */
#define HELP_COL  27  /* --help: column of the help text ("  " + 24 + " ") */

/* ==== Values ================================================================================ */

static void *
field(void *opts, const struct perf_opt *o)
{
	return (char *)opts + o->off;
}

static const void *
cfield(const void *opts, const struct perf_opt *o)
{
	return (const char *)opts + o->off;
}

static bool
is_integer(enum perf_opt_type t)
{
	return t == PERF_OPT_UINT || t == PERF_OPT_U16 || t == PERF_OPT_U64;
}

/* Parse a number for @p o and check its bounds. @return 0 or -EINVAL (reported). */
static int
parse_number(const struct perf_opt_cmd *cmd, const struct perf_opt *o, const char *arg, void *opts)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end != '\0' || !(v >= o->lo && v <= o->hi) ||
	    (is_integer(o->type) && v != floor(v))) {
		fprintf(stderr, "%s: --%s: '%s' is not %s in [%.15g, %.15g]\n", cmd->prog, o->name,
			arg, is_integer(o->type) ? "an integer" : "a number", o->lo, o->hi);
		return -EINVAL;
	}
	switch (o->type) {
	case PERF_OPT_UINT:
		*(unsigned *)field(opts, o) = (unsigned)v;
		break;
	case PERF_OPT_U16:
		*(uint16_t *)field(opts, o) = (uint16_t)v;
		break;
	case PERF_OPT_U64:
		*(uint64_t *)field(opts, o) = (uint64_t)v;
		break;
	default:
		*(double *)field(opts, o) = v;
		break;
	}
	return 0;
}

static int
parse_choice(const struct perf_opt_cmd *cmd, const struct perf_opt *o, const char *arg, void *opts)
{
	for (int i = 0; o->choices[i] != NULL; i++) {
		if (strcmp(arg, o->choices[i]) == 0) {
			*(int *)field(opts, o) = i;
			return 0;
		}
	}
	fprintf(stderr, "%s: --%s: '%s' is not one of", cmd->prog, o->name, arg);
	for (int i = 0; o->choices[i] != NULL; i++)
		fprintf(stderr, "%s %s", i ? "," : "", o->choices[i]);
	fputc('\n', stderr);
	return -EINVAL;
}

/* Store @p arg (NULL for a flag) as row @p o says. @return 0 or -EINVAL (reported). */
static int
apply(const struct perf_opt_cmd *cmd, const struct perf_opt *o, const char *arg, void *opts)
{
	const char *err;

	switch (o->type) {
	case PERF_OPT_FLAG:
		*(bool *)field(opts, o) = true;
		return 0;
	case PERF_OPT_STR:
		*(const char **)field(opts, o) = arg;
		return 0;
	case PERF_OPT_CHOICE:
		return parse_choice(cmd, o, arg, opts);
	case PERF_OPT_FUNC:
		err = o->fn(opts, o, arg);
		if (err == NULL)
			return 0;
		fprintf(stderr, "%s: --%s: %s\n", cmd->prog, o->name, err);
		return -EINVAL;
	default:
		return parse_number(cmd, o, arg, opts);
	}
}

/* ==== Usage ================================================================================= */

static bool
takes_arg(const struct perf_opt *o)
{
	return o->type != PERF_OPT_FLAG && o->type != PERF_OPT_HELP;
}

/* " (default V)" for row @p o from @p opts into @p buf; "" when it shows none. */
static void
format_default(const struct perf_opt *o, const void *opts, char *buf, size_t n)
{
	const void *p = cfield(opts, o);

	buf[0] = '\0';
	if (!o->show_default)
		return;
	switch (o->type) {
	case PERF_OPT_STR:
		if (*(const char *const *)p != NULL)
			snprintf(buf, n, " (default %s)", *(const char *const *)p);
		break;
	case PERF_OPT_UINT:
		snprintf(buf, n, " (default %u)", *(const unsigned *)p);
		break;
	case PERF_OPT_U16:
		snprintf(buf, n, " (default %u)", (unsigned)*(const uint16_t *)p);
		break;
	case PERF_OPT_U64:
		snprintf(buf, n, " (default %llu)", (unsigned long long)*(const uint64_t *)p);
		break;
	case PERF_OPT_DOUBLE:
		snprintf(buf, n, " (default %g)", *(const double *)p);
		break;
	case PERF_OPT_CHOICE:
		snprintf(buf, n, " (default %s)", o->choices[*(const int *)p]);
		break;
	default:
		break;
	}
}

static void
print_row(const struct perf_opt *o, const void *opts, FILE *f)
{
	const char *h = o->help ? o->help : "", *nl = strchr(h, '\n');
	size_t first = nl ? (size_t)(nl - h) : strlen(h);
	char spec[128], def[160];
	int len;

	if (o->short_name)
		len = snprintf(spec, sizeof(spec), "-%c, --%s", o->short_name, o->name);
	else
		len = snprintf(spec, sizeof(spec), "--%s", o->name);
	if (takes_arg(o) && o->arg)
		len += snprintf(spec + len, sizeof(spec) - (size_t)len, " %s", o->arg);
	/* The default ends the first line, before its closing ';' or ':' if it has one. */
	format_default(o, opts, def, sizeof(def));
	if (def[0] != '\0' && first > 0 && (h[first - 1] == ';' || h[first - 1] == ':'))
		first--;
	/* A spec too long for its column pushes the text two spaces past it (or, when the text
	 * starts with a newline, below it). */
	if (first == 0 && nl != NULL)
		fprintf(f, "  %s%s", spec, def);
	else
		fprintf(f, "  %-*s%s%.*s%s", HELP_COL - 3, spec, len > HELP_COL - 3 ? "  " : " ",
			(int)first, h, def);
	for (h += first; *h; h++) {
		fputc(*h, f);
		if (*h == '\n')
			fprintf(f, "%*s", HELP_COL, "");
	}
	fputc('\n', f);
}

void
perf_opt_usage(const struct perf_opt_cmd *cmd, const void *opts, FILE *f)
{
	fputs(cmd->synopsis, f);
	for (const struct perf_opt *o = cmd->opts; o->type != PERF_OPT_END; o++) {
		if (o->type == PERF_OPT_SECTION)
			fprintf(f, "\n%s\n", o->help);
		else
			print_row(o, opts, f);
	}
	if (cmd->epilogue)
		fprintf(f, "\n%s", cmd->epilogue);
}

/* ==== Parsing =============================================================================== */

int
perf_opt_parse(const struct perf_opt_cmd *cmd, int argc, char **argv, void *opts, int *argi)
{
	size_t n = 0, k = 0, s = 0;
	struct option *lo;
	char *shorts;
	void *defaults;
	int ch, rc = 0;

	for (const struct perf_opt *o = cmd->opts; o->type != PERF_OPT_END; o++)
		n++;
	lo = calloc(n + 1, sizeof(*lo));
	shorts = calloc(2 * n + 1, 1);
	defaults = malloc(cmd->size);
	if (lo == NULL || shorts == NULL || defaults == NULL) {
		fprintf(stderr, "%s: out of memory\n", cmd->prog);
		rc = -ENOMEM;
		goto out;
	}
	memcpy(defaults, opts, cmd->size); /* --help shows these, whatever came before it */
	for (size_t i = 0; i < n; i++) {
		const struct perf_opt *o = &cmd->opts[i];

		if (o->type == PERF_OPT_SECTION)
			continue;
		lo[k++] = (struct option){o->name, takes_arg(o) ? required_argument : no_argument,
					  NULL, o->short_name ? o->short_name : LONG_BASE + (int)i};
		if (o->short_name) {
			shorts[s++] = o->short_name;
			if (takes_arg(o))
				shorts[s++] = ':';
		}
	}
	optind = 0; /* glibc: a full reset (the EAL may have run getopt before us) */
	while (rc == 0 && (ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const struct perf_opt *o = NULL;

		if (ch >= LONG_BASE)
			o = &cmd->opts[ch - LONG_BASE];
		for (size_t i = 0; o == NULL && ch != '?' && ch != ':' && i < n; i++)
			if (cmd->opts[i].short_name == ch && cmd->opts[i].type != PERF_OPT_SECTION)
				o = &cmd->opts[i];
		if (o == NULL) { /* getopt said what is wrong */
			perf_opt_usage(cmd, defaults, stderr);
			rc = -EINVAL;
		} else if (o->type == PERF_OPT_HELP) {
			perf_opt_usage(cmd, defaults, stdout);
			rc = 1;
		} else {
			rc = apply(cmd, o, optarg, opts);
			if (rc == 0 && o->seen)
				*(bool *)((char *)opts + o->seen - 1) = true;
		}
	}
	*argi = optind;
out:
	free(defaults);
	free(shorts);
	free(lo);
	return rc;
}

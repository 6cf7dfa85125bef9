/*
 * The perf tools' option tables (perf/perf_opt.c): every type parsed into its field, bounds and
 * integers checked with a message naming the option, unknown options answered with the usage,
 * --help printed with the defaults as initialised (not as changed by options before it), a
 * seen flag set only when its option is given, and the --help layout.
 */
#include "perf/perf_opt.h"
#include "tests/fakes/cmocka_inc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct topts {
	bool flag, level_seen;
	const char *name;
	unsigned count;
	uint16_t port;
	uint64_t total;
	double level;
	int mode;
	unsigned n_items;
	const char *items[4];
};

static const char *
add_item(void *opts, const struct perf_opt *row, const char *arg)
{
	struct topts *o = opts;

	(void)row;
	if (strchr(arg, ',') != NULL)
		return "one item at a time";
	if (o->n_items == 4)
		return "too many";
	o->items[o->n_items++] = arg;
	return NULL;
}

#define AT(field, ctype) PERF_OPT_AT(struct topts, field, ctype)

static const char *const g_modes[] = {"slow", "fast", NULL};

static const struct perf_opt g_table[] = {
    {.type = PERF_OPT_SECTION, .help = "Things"},
    {"flag", 'f', PERF_OPT_FLAG, AT(flag, bool), .help = "a flag"},
    {"name", 0, PERF_OPT_STR, AT(name, const char *), .arg = "NAME", .help = "a name",
     .show_default = true},
    {"count", 'c', PERF_OPT_UINT, AT(count, unsigned), 1, 100, .arg = "N",
     .help = "how many;\nsecond line", .show_default = true},
    {"port", 0, PERF_OPT_U16, AT(port, uint16_t), 1, 65535, .arg = "P", .help = "a port"},
    {"total", 'n', PERF_OPT_U64, AT(total, uint64_t), 0, 1e15, .arg = "N", .help = "a total"},
    {"level", 0, PERF_OPT_DOUBLE, AT(level, double), -1, 1, .arg = "X", .help = "a level",
     .show_default = true, .seen = PERF_OPT_SEEN(struct topts, level_seen)},
    {"mode", 0, PERF_OPT_CHOICE, AT(mode, int), .choices = g_modes, .arg = "slow|fast",
     .help = "a mode", .show_default = true},
    {"item", 'i', PERF_OPT_FUNC, .fn = add_item, .arg = "ITEM", .help = "repeatable"},
    {"help", 'h', PERF_OPT_HELP, .help = "this text"},
    {.type = PERF_OPT_END},
};

static const struct perf_opt_cmd g_cmd = {
    .prog = "tool",
    .synopsis = "usage: tool [options] [FILE]\n",
    .epilogue = "Exit status: 0.\n",
    .opts = g_table,
    .size = sizeof(struct topts),
};

static const struct topts g_defaults = {.name = "dflt", .count = 3, .level = 0.5};

/* Captured output of one perf_opt_parse() run. */
struct run {
	char *argv[32]; /* as perf_opt_parse() left it (permuted) */
	int rc, argi;
	struct topts o;
	char out[8192], err[8192];
};

static void
slurp(FILE *f, char *buf, size_t n)
{
	size_t got;

	rewind(f);
	got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
}

/* Parse the NULL-terminated @p args (argv[0] added) with stdout and stderr captured. */
static void
parse(struct run *r, const char *const *args)
{
	char **argv = r->argv;
	int argc = 0, saved_out, saved_err;
	FILE *out = tmpfile(), *err = tmpfile();

	assert_non_null(out);
	assert_non_null(err);
	argv[argc++] = (char *)"tool";
	while (*args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	r->o = g_defaults;
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(fileno(out), 1);
	dup2(fileno(err), 2);
	r->rc = perf_opt_parse(&g_cmd, argc, argv, &r->o, &r->argi);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	slurp(out, r->out, sizeof(r->out));
	slurp(err, r->err, sizeof(r->err));
}

static void
test_perf_opt_parse_every_type_into_its_field(void **state)
{
	static struct run r;
	const char *args[] = {"-f",   "--name=x", "FILE", "-c",	     "7",     "--port",
			      "9000", "-n",	  "1e6",  "--level", "-0.25", "--mode",
			      "fast", "-i",	  "a",	  "--item",  "b",     NULL};

	(void)state;
	parse(&r, args);
	assert_int_equal(r.rc, 0);
	assert_true(r.o.flag);
	assert_string_equal(r.o.name, "x");
	assert_int_equal(r.o.count, 7);
	assert_int_equal(r.o.port, 9000);
	assert_int_equal(r.o.total, 1000000);
	assert_true(r.o.level == -0.25);
	assert_true(r.o.level_seen);
	assert_int_equal(r.o.mode, 1);
	assert_int_equal(r.o.n_items, 2);
	assert_string_equal(r.o.items[0], "a");
	assert_string_equal(r.o.items[1], "b");
	/* GNU permutation: the positional argument comes after the options. */
	assert_int_equal(r.argi, 17);
	assert_string_equal(r.argv[r.argi], "FILE");
	assert_string_equal(r.err, "");
	assert_string_equal(r.out, "");
}

static void
test_perf_opt_parse_defaults_kept_and_seen_unset(void **state)
{
	static struct run r;
	const char *args[] = {NULL};

	(void)state;
	parse(&r, args);
	assert_int_equal(r.rc, 0);
	assert_false(r.o.flag);
	assert_string_equal(r.o.name, "dflt");
	assert_int_equal(r.o.count, 3);
	assert_true(r.o.level == 0.5);
	assert_false(r.o.level_seen);
	assert_int_equal(r.argi, 1);
}

static void
test_perf_opt_parse_out_of_bounds_names_option_and_bounds(void **state)
{
	static struct run r;
	const char *args[] = {"-c", "101", NULL};

	(void)state;
	parse(&r, args);
	assert_int_equal(r.rc, -EINVAL);
	assert_int_equal(r.o.count, 3);
	assert_string_equal(r.err, "tool: --count: '101' is not an integer in [1, 100]\n");
}

static void
test_perf_opt_parse_integer_rejects_fraction_and_garbage(void **state)
{
	static struct run r;
	const char *frac[] = {"--port", "80.5", NULL}, *junk[] = {"--total", "12abc", NULL};
	const char *dbl[] = {"--level", "2", NULL};

	(void)state;
	parse(&r, frac);
	assert_int_equal(r.rc, -EINVAL);
	assert_non_null(strstr(r.err, "--port: '80.5' is not an integer"));
	parse(&r, junk);
	assert_int_equal(r.rc, -EINVAL);
	assert_non_null(strstr(r.err, "--total: '12abc'"));
	parse(&r, dbl);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.err, "tool: --level: '2' is not a number in [-1, 1]\n");
	assert_false(r.o.level_seen);
}

static void
test_perf_opt_parse_choice_lists_the_words(void **state)
{
	static struct run r;
	const char *args[] = {"--mode", "medium", NULL};

	(void)state;
	parse(&r, args);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.err, "tool: --mode: 'medium' is not one of slow, fast\n");
}

static void
test_perf_opt_parse_func_error_reported(void **state)
{
	static struct run r;
	const char *args[] = {"-i", "a,b", NULL};

	(void)state;
	parse(&r, args);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.err, "tool: --item: one item at a time\n");
}

static void
test_perf_opt_parse_unknown_or_missing_argument_prints_usage(void **state)
{
	static struct run r;
	const char *unknown[] = {"--bogus", NULL}, *missing[] = {"--count", NULL};

	(void)state;
	parse(&r, unknown);
	assert_int_equal(r.rc, -EINVAL);
	assert_non_null(strstr(r.err, "unrecognized option '--bogus'"));
	assert_non_null(strstr(r.err, "usage: tool"));
	parse(&r, missing);
	assert_int_equal(r.rc, -EINVAL);
	assert_non_null(strstr(r.err, "requires an argument"));
	assert_non_null(strstr(r.err, "usage: tool"));
	assert_string_equal(r.out, "");
}

static void
test_perf_opt_help_shows_initial_defaults(void **state)
{
	static struct run r;
	const char *args[] = {"-c", "50", "--mode", "fast", "--help", "-c", "60", NULL};

	(void)state;
	parse(&r, args);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "");
	/* The defaults as initialised, not as the options before --help changed them. */
	assert_non_null(strstr(r.out, "how many (default 3);\n"));
	assert_non_null(strstr(r.out, "a mode (default slow)\n"));
	assert_null(strstr(r.out, "default 50"));
	assert_int_equal(r.o.count, 50); /* parsing stopped at --help */
}

static void
test_perf_opt_usage_layout(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	perf_opt_usage(&g_cmd, &g_defaults, f);
	fclose(f);
	assert_string_equal(buf, "usage: tool [options] [FILE]\n"
				 "\n"
				 "Things\n"
				 "  -f, --flag               a flag\n"
				 "  --name NAME              a name (default dflt)\n"
				 "  -c, --count N            how many (default 3);\n"
				 "                           second line\n"
				 "  --port P                 a port\n"
				 "  -n, --total N            a total\n"
				 "  --level X                a level (default 0.5)\n"
				 "  --mode slow|fast         a mode (default slow)\n"
				 "  -i, --item ITEM          repeatable\n"
				 "  -h, --help               this text\n"
				 "\n"
				 "Exit status: 0.\n");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_perf_opt_parse_every_type_into_its_field),
	    cmocka_unit_test(test_perf_opt_parse_defaults_kept_and_seen_unset),
	    cmocka_unit_test(test_perf_opt_parse_out_of_bounds_names_option_and_bounds),
	    cmocka_unit_test(test_perf_opt_parse_integer_rejects_fraction_and_garbage),
	    cmocka_unit_test(test_perf_opt_parse_choice_lists_the_words),
	    cmocka_unit_test(test_perf_opt_parse_func_error_reported),
	    cmocka_unit_test(test_perf_opt_parse_unknown_or_missing_argument_prints_usage),
	    cmocka_unit_test(test_perf_opt_help_shows_initial_defaults),
	    cmocka_unit_test(test_perf_opt_usage_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/**
 * @file
 * The perf tools' command lines, declared as tables (nginx's command tables are the model): one
 * row per option gives its long and short name, its type (which says whether it takes an
 * argument), where it is stored (an offset into the tool's options struct, type-checked at
 * compile time by PERF_OPT_AT), its bounds, its argument's name and its help text. From the
 * table, perf_opt_parse() parses (getopt_long underneath: GNU permutation, `--name=value`,
 * clustered short flags), checks every number against its bounds with one clear message, and
 * prints --help: sections, aligned help text, and each default read from the options struct
 * as the tool initialised it, so a default is written once, in the tool's initialiser.
 *
 * What a table cannot say (options that depend on each other, positional arguments) the tool
 * checks after perf_opt_parse() returns.
 *
 * Context: the main thread, before any other starts (getopt's state is global).
 * Ownership: the table and the command are borrowed; string options point into argv.
 */
#ifndef COREPIPE_PERF_PERF_OPT_H
#define COREPIPE_PERF_PERF_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** What an option stores; every type but PERF_OPT_FLAG and PERF_OPT_HELP takes an argument. */
enum perf_opt_type {
	PERF_OPT_END,	  /**< ends a table */
	PERF_OPT_SECTION, /**< not an option: a heading in --help (`help` is its text) */
	PERF_OPT_HELP,	  /**< -h/--help: print the usage on stdout, perf_opt_parse() returns 1 */
	PERF_OPT_FLAG,	  /**< bool, set to true */
	PERF_OPT_STR,	  /**< const char *: the argument itself */
	PERF_OPT_UINT,	  /**< unsigned: an integer in [lo, hi] */
	PERF_OPT_U16,	  /**< uint16_t: an integer in [lo, hi] */
	PERF_OPT_U64,	  /**< uint64_t: an integer in [lo, hi] */
	PERF_OPT_DOUBLE,  /**< double: a number in [lo, hi] */
	PERF_OPT_CHOICE,  /**< int: the index of the argument in `choices` */
	PERF_OPT_FUNC,	  /**< `fn` parses the argument (lists, addresses, repeatable options) */
};

struct perf_opt;

/**
 * Parses @p arg of option @p o into @p opts (the whole options struct: a function may fill
 * several fields, or append to a list).
 * @return NULL, or what is wrong, printed as "PROG: --NAME: <it>".
 */
typedef const char *(*perf_opt_fn)(void *opts, const struct perf_opt *o, const char *arg);

/** One row of a table. Numbers are read with strtod (so 1e6 is a million); integers must be
 * whole. */
struct perf_opt {
	const char *name; /**< long name without "--"; NULL for a section */
	char short_name;  /**< 0: none */
	enum perf_opt_type type;
	size_t off;		    /**< PERF_OPT_AT(): where in the options struct */
	double lo, hi;		    /**< numbers: inclusive bounds */
	const char *const *choices; /**< PERF_OPT_CHOICE: NULL-terminated words */
	perf_opt_fn fn;		    /**< PERF_OPT_FUNC */
	const char *arg;	    /**< the argument's name in --help ("N", "HOST:PORT") */
	const char *help;	    /**< may hold '\n': continuation lines are indented */
	bool show_default;	    /**< --help appends "(default V)" from the struct */
	size_t seen;		    /**< PERF_OPT_SEEN(): a bool set when given; 0: none */
};

/** A tool's command line: its name (for messages), the table and the text around it. */
struct perf_opt_cmd {
	const char *prog;	     /**< "corepipe-bench" */
	const char *synopsis;	     /**< "usage: ..." lines, printed first */
	const char *epilogue;	     /**< printed after the options; may be NULL */
	const struct perf_opt *opts; /**< ends with a PERF_OPT_END row */
	size_t size;		     /**< sizeof the options struct (--help shows its defaults) */
};

/*
 * The offset of @p field in @p type, which must be of C type @p ctype: a table row that
 * names the wrong type fails to compile instead of writing the wrong width.
 */
#define PERF_OPT_AT(type, field, ctype)                                                            \
	(offsetof(type, field) +                                                                   \
	 0 * sizeof(struct {                                                                       \
		 _Static_assert(_Generic(((type *)0)->field, ctype : 1, default : 0),              \
				#field " is not " #ctype);                                         \
		 int unused;                                                                       \
	 }))

/* A bool @p field of @p type that perf_opt_parse() sets when the row's option is given (nginx's
 * NGX_CONF_UNSET, for an option whose default depends on whether it was given). Stored plus
 * one, so that 0 means none. */
#define PERF_OPT_SEEN(type, field) (PERF_OPT_AT(type, field, bool) + 1)

/**
 * Parse @p argv by @p cmd into @p opts, which holds the defaults on entry.
 *
 * @param argi set to the index of the first positional argument (argv is permuted so that
 *        positional arguments come last); the tool decides how many it takes.
 * @return 0 parsed; 1 --help was printed (the tool exits 0); -EINVAL a bad option or value:
 *         the reason is printed on stderr (an unknown option or a missing argument: getopt's
 *         message and the usage), the tool exits 2.
 */
int perf_opt_parse(const struct perf_opt_cmd *cmd, int argc, char **argv, void *opts, int *argi);

/** Print the usage of @p cmd with the defaults in @p opts to @p f. */
void perf_opt_usage(const struct perf_opt_cmd *cmd, const void *opts, FILE *f);

#endif

/*
 * test_cli.c - the command grammar (src/cli/cli.c, src/cli/compat.c).
 *
 * Covers cli_match() (exact words, Bucardo aliases, unique prefixes,
 * ambiguous / unknown / missing words, required and optional
 * placeholders), cli_parse_args() (key=value, --key=value, --key VALUE,
 * bare flags, Bucardo option aliases, required / unknown / duplicate
 * options, flags given a value, positionals, "--"), args_get(),
 * args_has(), cli_args_free(), compat_option_key() and compat_strategy().
 * Every path frees its args so that LeakSanitizer checks cli_args_free().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

#define assert_contains(hay, needle)                                                        \
	do {                                                                                \
		const char *h_ = (hay), *n_ = (needle);                                     \
		if (h_ == NULL || strstr(h_, n_) == NULL)                                   \
			fail_msg("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
	} while (0)

#define assert_prefix(hay, pre)                                                                \
	do {                                                                                   \
		const char *h_ = (hay), *p_ = (pre);                                           \
		if (h_ == NULL || strncmp(h_, p_, strlen(p_)) != 0)                            \
			fail_msg("\"%s\" does not start with \"%s\"", h_ ? h_ : "(null)", p_); \
	} while (0)

/* What one command line gave: the matched command, its args, the error. */
struct run {
	char line[512];
	char *argv[32];
	int argc;
	const struct cmd *cmd;
	struct args args;
	int consumed;
	int rc; /* 0 ok, -1 cli_match failed, -2 cli_parse_args failed */
	char err[2048];
};

/* Split line at single spaces into r->argv (an empty line gives argc 0). */
static void
split(struct run *r, const char *line)
{
	char *p;

	memset(r, 0, sizeof(*r));
	r->consumed = -1;
	snprintf(r->line, sizeof(r->line), "%s", line);
	p = r->line;
	while (*p) {
		assert_true(r->argc < 32);
		r->argv[r->argc++] = p;
		p = strchr(p, ' ');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
}

/* Match only. */
static const struct cmd *
match(struct run *r, const char *line)
{
	split(r, line);
	r->cmd = cli_match(r->argc, r->argv, &r->args, &r->consumed, r->err, sizeof(r->err));
	r->rc = r->cmd ? 0 : -1;
	return r->cmd;
}

/* Match, then parse what follows the words, as cli_dispatch() does. */
static int
run(struct run *r, const char *line)
{
	if (match(r, line) == NULL)
		return r->rc;
	if (cli_parse_args(r->cmd, r->argc - r->consumed, r->argv + r->consumed, &r->args, r->err,
		sizeof(r->err)) < 0)
		r->rc = -2;
	return r->rc;
}

static void
done(struct run *r)
{
	cli_args_free(&r->args);
	assert_null(r->args.words);
	assert_null(r->args.pos);
	assert_null(r->args.opts);
	assert_int_equal(r->args.nwords, 0);
	assert_int_equal(r->args.npos, 0);
	assert_int_equal(r->args.nopts, 0);
}

/* Expect line to match pattern, consuming n entries, with the given word. */
static void
expect_match(const char *line, const char *pattern, int consumed, const char *word0)
{
	struct run r;

	if (match(&r, line) == NULL)
		fail_msg("'%s' did not match: %s", line, r.err);
	assert_string_equal(r.cmd->pattern, pattern);
	assert_int_equal(r.consumed, consumed);
	if (word0) {
		assert_int_equal(r.args.nwords, 1);
		assert_string_equal(r.args.words[0], word0);
	} else {
		assert_int_equal(r.args.nwords, 0);
	}
	done(&r);
}

/* ---- cli_match ---- */

static void
test_match_exact(void **state)
{
	struct run r;

	(void)state;
	assert_non_null(match(&r, "add database x dbname=d"));
	assert_string_equal(r.cmd->pattern, "add database|db <name>");
	assert_int_equal(r.consumed, 3);
	assert_int_equal(r.args.nwords, 1);
	assert_string_equal(r.args.words[0], "x");
	done(&r);

	expect_match("add table s.t --herd=h --db=n", "add table <table>", 3, "s.t");
	expect_match("add all tables --herd=h", "add all tables", 3, NULL);
	expect_match("add herd h", "add herd|relgroup <name>", 3, "h");
	expect_match("add sync s herd=h", "add sync <name>", 3, "s");
	expect_match("remove table t", "remove table <table>", 3, "t");
	expect_match("remove sync s", "remove sync <name>", 3, "s");
	expect_match("list tables", "list tables|table", 2, NULL);
	expect_match("update database n host=h", "update database|db <name>", 3, "n");
	expect_match("update sync s", "update sync <name>", 3, "s");
	expect_match("version", "version", 1, NULL);
	expect_match("config", "config", 1, NULL);
	expect_match("install", "install", 1, NULL);
	expect_match("help", "help [<command>]", 1, NULL);
}

static void
test_match_aliases(void **state)
{
	(void)state;
	expect_match("add db x", "add database|db <name>", 3, "x");
	expect_match("list dbs", "list databases|dbs|database|db|nodes", 2, NULL);
	expect_match("list nodes", "list databases|dbs|database|db|nodes", 2, NULL);
	expect_match("list relgroups", "list herds|relgroups|herd|relgroup", 2, NULL);
	expect_match("list herd", "list herds|relgroups|herd|relgroup", 2, NULL);
	expect_match("list sync", "list syncs|sync", 2, NULL);
	expect_match("add relgroup h", "add herd|relgroup <name>", 3, "h");
	expect_match("remove db x", "remove database|db <name>", 3, "x");
	expect_match("remove relgroup h", "remove herd|relgroup <name>", 3, "h");
	expect_match("update db x", "update database|db <name>", 3, "x");
}

static void
test_match_prefixes(void **state)
{
	(void)state;
	expect_match("ad dat x", "add database|db <name>", 3, "x");
	expect_match("l sy", "list syncs|sync", 2, NULL);
	expect_match("stat", "status [<sync>]", 1, NULL);
	expect_match("li rel", "list herds|relgroups|herd|relgroup", 2, NULL);
	expect_match("ad a t", "add all tables", 3, NULL);
	expect_match("vers", "version", 1, NULL);
	expect_match("va", "validate [<sync>]", 1, NULL);
	/* an exact alternative wins over a longer word it is a prefix of */
	expect_match("list db", "list databases|dbs|database|db|nodes", 2, NULL);
}

static void
test_match_ambiguous(void **state)
{
	struct run r;

	(void)state;
	assert_null(match(&r, "v"));
	assert_prefix(r.err, "ambiguous word 'v'");
	assert_contains(r.err, "version");
	assert_contains(r.err, "validate");
	/* words that do not start with 'v' are not offered */
	assert_true(strstr(r.err, "status") == NULL);
	assert_true(strstr(r.err, "install") == NULL);
	done(&r);
}

static void
test_match_unknown(void **state)
{
	struct run r;

	(void)state;
	assert_null(match(&r, "add databse x"));
	assert_prefix(r.err, "unknown word 'databse' after 'add'; valid words: ");
	assert_contains(r.err, "database");
	assert_contains(r.err, "table");
	assert_contains(r.err, "herd");
	assert_contains(r.err, "sync");
	done(&r);

	assert_null(match(&r, "frobnicate"));
	assert_prefix(r.err, "unknown word 'frobnicate'; valid words: ");
	assert_contains(r.err, "add");
	assert_contains(r.err, "status");
	done(&r);

	/* the context is what the user typed */
	assert_null(match(&r, "li foo"));
	assert_prefix(r.err, "unknown word 'foo' after 'li'; valid words: ");
	assert_contains(r.err, "databases");
	done(&r);
}

static void
test_match_missing_word(void **state)
{
	struct run r;
	static const char *const add_words[] = { "database", "table", "all", "herd", "sync" };
	static const char *const list_words[] = { "databases", "herds", "tables", "syncs" };
	size_t i;

	(void)state;
	assert_null(match(&r, "add"));
	assert_prefix(r.err, "missing word after 'add'; expected one of: ");
	for (i = 0; i < sizeof(add_words) / sizeof(add_words[0]); i++)
		assert_contains(r.err, add_words[i]);
	done(&r);

	assert_null(match(&r, "list"));
	assert_prefix(r.err, "missing word after 'list'; expected one of: ");
	for (i = 0; i < sizeof(list_words) / sizeof(list_words[0]); i++)
		assert_contains(r.err, list_words[i]);
	done(&r);

	/* an option where a word belongs is a missing word too */
	assert_null(match(&r, "list --json"));
	assert_prefix(r.err, "missing word after 'list'; expected one of: ");
	done(&r);

	assert_null(match(&r, "add all"));
	assert_prefix(r.err, "missing word after 'add all'; expected one of: tables");
	done(&r);

	assert_null(match(&r, ""));
	assert_prefix(r.err, "missing word; expected one of: ");
	assert_contains(r.err, "version");
	done(&r);
}

static void
test_match_missing_placeholder(void **state)
{
	struct run r;

	(void)state;
	assert_null(match(&r, "add database"));
	assert_prefix(r.err, "'add database' needs a name; usage: repctl add database ");
	assert_contains(r.err, "dbname=");
	assert_int_equal(r.args.nwords, 0);
	assert_null(r.args.words);
	done(&r);

	/* an option is not taken for the name */
	assert_null(match(&r, "add db dbname=d"));
	assert_prefix(r.err, "'add database' needs a name; ");
	done(&r);

	assert_null(match(&r, "remove table --herd=h"));
	assert_prefix(r.err, "'remove table' needs a table; usage: repctl remove table ");
	done(&r);

	assert_null(match(&r, "add sync"));
	assert_prefix(r.err, "'add sync' needs a name; usage: repctl add sync ");
	done(&r);
}

static void
test_match_optional_placeholder(void **state)
{
	struct run r;

	(void)state;
	expect_match("validate", "validate [<sync>]", 1, NULL);
	expect_match("validate s1", "validate [<sync>]", 2, "s1");
	expect_match("status s1", "status [<sync>]", 2, "s1");

	assert_int_equal(run(&r, "status --json"), 0);
	assert_string_equal(r.cmd->pattern, "status [<sync>]");
	assert_int_equal(r.consumed, 1);
	assert_int_equal(r.args.nwords, 0);
	assert_int_equal(r.args.nopts, 1);
	assert_true(args_has(&r.args, "json"));
	assert_null(args_get(&r.args, "json"));
	assert_int_equal(r.args.opts[0].used, 1);
	done(&r);

	assert_int_equal(run(&r, "status s1 --json"), 0);
	assert_int_equal(r.consumed, 2);
	assert_string_equal(r.args.words[0], "s1");
	assert_true(args_has(&r.args, "json"));
	done(&r);

	/* help takes the command words as word and positionals */
	assert_int_equal(run(&r, "help add database"), 0);
	assert_string_equal(r.cmd->pattern, "help [<command>]");
	assert_string_equal(r.args.words[0], "add");
	assert_int_equal(r.args.npos, 1);
	assert_string_equal(r.args.pos[0], "database");
	done(&r);
}

/* ---- cli_parse_args ---- */

static void
test_args_forms(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "add all tables herd=h --db=n --schema S --exclude=a%,b%"), 0);
	assert_int_equal(r.args.nopts, 4);
	assert_string_equal(r.args.opts[0].key, "herd");
	assert_string_equal(args_get(&r.args, "herd"), "h");
	assert_string_equal(args_get(&r.args, "db"), "n");
	assert_string_equal(args_get(&r.args, "schema"), "S");
	assert_string_equal(args_get(&r.args, "exclude"), "a%,b%");
	assert_null(args_get(&r.args, "conflict_column"));
	assert_false(args_has(&r.args, "conflict_column"));
	assert_int_equal(r.args.npos, 0);
	done(&r);

	/* --herd H takes the next argument as the value */
	assert_int_equal(run(&r, "add all tables --herd H --db N"), 0);
	assert_string_equal(args_get(&r.args, "herd"), "H");
	assert_string_equal(args_get(&r.args, "db"), "N");
	assert_int_equal(r.args.nopts, 2);
	done(&r);

	/* single dash works as well; a value may contain '=' */
	assert_int_equal(run(&r, "add database x -dbname=d conn=host=a"), 0);
	assert_string_equal(args_get(&r.args, "dbname"), "d");
	assert_string_equal(args_get(&r.args, "conn"), "host=a");
	done(&r);

	/* bare flag */
	assert_int_equal(run(&r, "list syncs --json"), 0);
	assert_int_equal(r.args.nopts, 1);
	assert_string_equal(r.args.opts[0].key, "json");
	assert_null(r.args.opts[0].value);
	assert_int_equal(r.args.opts[0].used, 0);
	assert_true(args_has(&r.args, "json"));
	assert_int_equal(r.args.opts[0].used, 0); /* args_has does not mark */
	done(&r);

	/* empty value is kept as "" */
	assert_int_equal(run(&r, "add database x dbname=d host="), 0);
	assert_string_equal(args_get(&r.args, "host"), "");
	done(&r);
}

static void
test_args_aliases(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r,
			     "add sync s relgroup=h dbs=a:source,b:target "
			     "conflict_strategy=bucardo_latest"),
	    0);
	assert_string_equal(args_get(&r.args, "herd"), "h");
	assert_null(args_get(&r.args, "relgroup"));
	assert_string_equal(args_get(&r.args, "dbs"), "a:source,b:target");
	assert_string_equal(args_get(&r.args, "conflict_strategy"), "bucardo_latest");
	done(&r);

	assert_int_equal(run(&r, "add all tables --relgroup=h --database=n"), 0);
	assert_string_equal(args_get(&r.args, "herd"), "h");
	assert_string_equal(args_get(&r.args, "db"), "n");
	done(&r);

	assert_int_equal(run(&r, "add db x dbname=d password=secret"), 0);
	assert_string_equal(args_get(&r.args, "pass"), "secret");
	assert_null(args_get(&r.args, "password"));
	done(&r);

	assert_int_equal(run(&r, "update sync s standard_conflict=source"), 0);
	assert_string_equal(args_get(&r.args, "conflict_strategy"), "source");
	done(&r);

	assert_int_equal(run(&r, "update sync s strategy=skip"), 0);
	assert_string_equal(args_get(&r.args, "conflict_strategy"), "skip");
	done(&r);

	assert_int_equal(run(&r, "add sync s herd=h databases=a,b"), 0);
	assert_string_equal(args_get(&r.args, "dbs"), "a,b");
	done(&r);
}

static void
test_compat_option_key(void **state)
{
	(void)state;
	assert_string_equal(compat_option_key("relgroup"), "herd");
	assert_string_equal(compat_option_key("password"), "pass");
	assert_string_equal(compat_option_key("strategy"), "conflict_strategy");
	assert_string_equal(compat_option_key("standard_conflict"), "conflict_strategy");
	assert_string_equal(compat_option_key("database"), "db");
	assert_string_equal(compat_option_key("databases"), "dbs");
	assert_string_equal(compat_option_key("conflict_strategy"), "conflict_strategy");
	assert_string_equal(compat_option_key("herd"), "herd");
	assert_string_equal(compat_option_key("bogus"), "bogus");
	assert_string_equal(compat_option_key(""), "");
}

static void
test_args_required_missing(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "add all tables --herd=h"), -2);
	assert_prefix(r.err, "'add all tables' needs db=...; usage: repctl add all tables ");
	done(&r);

	assert_int_equal(run(&r, "add all tables"), -2);
	assert_prefix(r.err, "'add all tables' needs herd=...; ");
	done(&r);

	/* an empty value does not satisfy a required option */
	assert_int_equal(run(&r, "add sync s herd= dbs=a,b"), -2);
	assert_prefix(r.err, "'add sync' needs herd=...; ");
	done(&r);

	assert_int_equal(run(&r, "add sync s herd=h"), -2);
	assert_prefix(r.err, "'add sync' needs dbs=...; ");
	done(&r);
}

static void
test_args_unknown_option(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "add all tables --herd=h --db=n --bogus=1"), -2);
	assert_prefix(r.err, "unknown option 'bogus' for 'add all tables'; valid options: ");
	assert_contains(r.err, "herd=");
	assert_contains(r.err, "db=");
	assert_contains(r.err, "schema=");
	assert_contains(r.err, "exclude=");
	done(&r);

	/* a flag is listed without '=', the positional marker not at all */
	assert_int_equal(run(&r, "list tables --bogus"), -2);
	assert_prefix(r.err, "unknown option 'bogus' for 'list tables'; valid options: ");
	assert_contains(r.err, "json, ");
	assert_contains(r.err, "herd=");
	done(&r);

	assert_int_equal(run(&r, "add table t --herd=h --db=n --x=1"), -2);
	assert_prefix(r.err, "unknown option 'x' for 'add table'; valid options: ");
	assert_true(strstr(r.err, "*") == NULL);
	done(&r);

	assert_int_equal(run(&r, "version --json"), -2);
	assert_string_equal(r.err, "unknown option 'json' for 'version'; it takes no options");
	done(&r);

	/* '*' is not an option name */
	assert_int_equal(run(&r, "add table t --*"), -2);
	assert_prefix(r.err, "unknown option '*' for 'add table'");
	done(&r);

	/* the name of an option, not a prefix of one */
	assert_int_equal(run(&r, "add database x db=d"), -2);
	assert_prefix(r.err, "unknown option 'db' for 'add database'");
	done(&r);
}

static void
test_args_duplicate(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "add all tables herd=a relgroup=b db=n"), -2);
	assert_string_equal(r.err, "option 'relgroup' given twice");
	done(&r);

	assert_int_equal(run(&r, "list syncs --json --json"), -2);
	assert_string_equal(r.err, "option 'json' given twice");
	done(&r);

	assert_int_equal(run(&r, "add db x dbname=a --dbname b"), -2);
	assert_string_equal(r.err, "option 'dbname' given twice");
	done(&r);
}

static void
test_args_flag_value(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "status --json=1"), -2);
	assert_string_equal(r.err, "option 'json' takes no value (write --json alone)");
	done(&r);

	assert_int_equal(run(&r, "list dbs json=yes"), -2);
	assert_string_equal(r.err, "option 'json' takes no value (write --json alone)");
	done(&r);
}

static void
test_args_needs_value(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "add all tables --db=n --herd"), -2);
	assert_string_equal(r.err, "option 'herd' needs a value (herd=VALUE)");
	done(&r);

	/* the next argument is not a value when it is an option */
	assert_int_equal(run(&r, "add all tables --herd --db=n"), -2);
	assert_string_equal(r.err, "option 'herd' needs a value (herd=VALUE)");
	done(&r);

	assert_int_equal(run(&r, "add all tables --db=n --relgroup"), -2);
	assert_string_equal(r.err, "option 'relgroup' needs a value (herd=VALUE)");
	done(&r);
}

static void
test_args_positional(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "list syncs extra"), -2);
	assert_string_equal(
	    r.err, "unexpected argument 'extra'; usage: repctl list syncs [--json]");
	done(&r);

	assert_int_equal(run(&r, "add herd h more"), -2);
	assert_string_equal(r.err, "unexpected argument 'more'; usage: repctl add herd NAME");
	done(&r);

	assert_int_equal(run(&r, "add table a b c --herd=h --db=n"), 0);
	assert_string_equal(r.cmd->pattern, "add table <table>");
	assert_int_equal(r.consumed, 3);
	assert_int_equal(r.args.nwords, 1);
	assert_string_equal(r.args.words[0], "a");
	assert_int_equal(r.args.npos, 2);
	assert_string_equal(r.args.pos[0], "b");
	assert_string_equal(r.args.pos[1], "c");
	assert_string_equal(args_get(&r.args, "herd"), "h");
	assert_string_equal(args_get(&r.args, "db"), "n");
	done(&r);

	/* positionals and options may be mixed */
	assert_int_equal(run(&r, "remove table a --herd h b"), 0);
	assert_string_equal(r.args.words[0], "a");
	assert_string_equal(args_get(&r.args, "herd"), "h");
	assert_int_equal(r.args.npos, 1);
	assert_string_equal(r.args.pos[0], "b");
	done(&r);

	/* a lone "-" is a positional */
	assert_int_equal(run(&r, "remove table a -"), 0);
	assert_int_equal(r.args.npos, 1);
	assert_string_equal(r.args.pos[0], "-");
	done(&r);
}

static void
test_args_double_dash(void **state)
{
	struct run r;

	(void)state;
	assert_int_equal(run(&r, "remove table a --herd=h -- --db=x k=v -y"), 0);
	assert_string_equal(args_get(&r.args, "herd"), "h");
	assert_false(args_has(&r.args, "db"));
	assert_int_equal(r.args.nopts, 1);
	assert_int_equal(r.args.npos, 3);
	assert_string_equal(r.args.pos[0], "--db=x");
	assert_string_equal(r.args.pos[1], "k=v");
	assert_string_equal(r.args.pos[2], "-y");
	done(&r);

	/* "--" at the end is harmless */
	assert_int_equal(run(&r, "list syncs --json --"), 0);
	assert_int_equal(r.args.npos, 0);
	assert_true(args_has(&r.args, "json"));
	done(&r);
}

static void
test_args_get_marks_used(void **state)
{
	struct run r;
	int i;

	(void)state;
	assert_int_equal(run(&r, "add database x dbname=d host=h"), 0);
	for (i = 0; i < r.args.nopts; i++)
		assert_int_equal(r.args.opts[i].used, 0);
	assert_string_equal(args_get(&r.args, "host"), "h");
	for (i = 0; i < r.args.nopts; i++)
		assert_int_equal(r.args.opts[i].used, strcmp(r.args.opts[i].key, "host") == 0);
	assert_null(args_get(&r.args, "port"));
	done(&r);
}

static void
test_args_free_empty(void **state)
{
	struct args a;

	(void)state;
	memset(&a, 0, sizeof(a));
	cli_args_free(&a);
	assert_null(a.words);
	assert_int_equal(a.nwords, 0);
}

/* ---- compat_strategy ---- */

static void
test_compat_strategy(void **state)
{
	static const char *const names[] = { "latest", "first", "source", "target", "skip",
		"abort" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char bucardo[64];

		assert_string_equal(compat_strategy(names[i]), names[i]);
		snprintf(bucardo, sizeof(bucardo), "bucardo_%s", names[i]);
		if (compat_strategy(bucardo) == NULL)
			fail_msg("'%s' is not accepted", bucardo);
		assert_string_equal(compat_strategy(bucardo), names[i]);
		/* the message lists both spellings */
		assert_contains(compat_strategy_words, names[i]);
		assert_contains(compat_strategy_words, bucardo);
	}
	assert_string_equal(compat_strategy("bucardo_latest_all_tables"), "latest");
	assert_null(compat_strategy("newest"));
	assert_null(compat_strategy("bucardo_newest"));
	assert_null(compat_strategy(""));
	assert_null(compat_strategy("LATEST"));
	assert_null(compat_strategy("bucardo_"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_exact),
		cmocka_unit_test(test_match_aliases),
		cmocka_unit_test(test_match_prefixes),
		cmocka_unit_test(test_match_ambiguous),
		cmocka_unit_test(test_match_unknown),
		cmocka_unit_test(test_match_missing_word),
		cmocka_unit_test(test_match_missing_placeholder),
		cmocka_unit_test(test_match_optional_placeholder),
		cmocka_unit_test(test_args_forms),
		cmocka_unit_test(test_args_aliases),
		cmocka_unit_test(test_compat_option_key),
		cmocka_unit_test(test_args_required_missing),
		cmocka_unit_test(test_args_unknown_option),
		cmocka_unit_test(test_args_duplicate),
		cmocka_unit_test(test_args_flag_value),
		cmocka_unit_test(test_args_needs_value),
		cmocka_unit_test(test_args_positional),
		cmocka_unit_test(test_args_double_dash),
		cmocka_unit_test(test_args_get_marks_used),
		cmocka_unit_test(test_args_free_empty),
		cmocka_unit_test(test_compat_strategy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

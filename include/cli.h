/*
 * cli.h - the command grammar of repctl.
 *
 * One table (cli_commands[]) maps word patterns such as
 * "add database <name>" to handlers.  The matcher walks argv against the
 * table: literal words may be abbreviated to a unique prefix, Bucardo's
 * spellings are alternatives inside the pattern ("database|db"), and an
 * unknown, ambiguous or missing word is reported with the valid words.
 * What follows the words is parsed into options (key=value, --key=value,
 * --flag) and positional arguments, checked against the command's option
 * list, and normalised by compat.c (relgroup= -> herd=, password= -> pass=).
 */
#ifndef REPCTL_CLI_H
#define REPCTL_CLI_H

#include <libpq-fe.h>
#include <stddef.h>

struct config;

/* What the dispatcher sets up before calling a handler. */
#define CMD_META 0x01      /* open the metadata database */
#define CMD_INSTALLED 0x02 /* ... and require `repctl install` to have run */
#define CMD_CONFIG 0x04    /* load the configuration */

struct opt {
	char *key;   /* normalised ("herd"), no leading dashes */
	char *value; /* NULL for a bare --flag */
	int used;
};

struct args {
	char **words; /* values of <placeholders>, in pattern order */
	int nwords;
	char **pos; /* positional arguments after the words */
	int npos;
	struct opt *opts;
	int nopts;
};

struct cli_ctx {
	const char *config_path; /* -c, or NULL */
	struct config *cfg;
	PGconn *meta; /* with CMD_META */
	const char *argv0;
	int json; /* --json was given */
};

struct cmd {
	const char *pattern; /* "add database <name>", "validate [<sync>]" */
	int (*fn)(struct cli_ctx *, struct args *);
	unsigned flags;
	/*
	 * Options the command takes, space separated: "herd!" is required,
	 * "json" is a flag, "*" allows positional arguments after the words.
	 */
	const char *opts;
	const char *usage; /* the arguments, for help */
	const char *help;  /* one or more lines */
};

extern const struct cmd cli_commands[];

/*
 * Find the command for argv.  Returns it and fills *consumed with the
 * number of argv entries taken by literal words and placeholders, and args
 * words.  NULL with a message in err when nothing matches.
 */
const struct cmd *cli_match(
    int argc, char **argv, struct args *args, int *consumed, char *err, size_t errlen);

/*
 * Parse what follows the command words into args (options, positionals),
 * normalising Bucardo spellings and checking them against cmd->opts.
 * 0, or -1 with a message in err.
 */
int cli_parse_args(const struct cmd *cmd, int argc, char **argv, struct args *args, char *err,
    size_t errlen) __attribute__((warn_unused_result));
void cli_args_free(struct args *args);

/* Value of an option or NULL; marks it used. */
const char *args_get(struct args *args, const char *key);
int args_has(struct args *args, const char *key);

/* Print help: all commands, or the commands starting with the given words. */
int cli_help(int nwords, char **words);

/* The whole program after global options: match, set up, run.  Exit code. */
int cli_dispatch(struct cli_ctx *ctx, int argc, char **argv);

/* compat.c: Bucardo spellings. */
/* Normalised option key for what the user typed (dashes already removed). */
const char *compat_option_key(const char *key);
/* Native strategy for a user-given name ("bucardo_latest" -> "latest"), or NULL. */
const char *compat_strategy(const char *name);
/* The list of accepted strategy names, for messages. */
extern const char *const compat_strategy_words;

#endif

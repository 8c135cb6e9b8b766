/*
 * cli.c - the grammar table, the matcher, argument parsing and dispatch.
 *
 * Data flow: main.c strips the global options and calls cli_dispatch();
 * cli_match() picks the command from the words, cli_parse_args() checks
 * the options against the command's list (after compat.c has mapped
 * Bucardo's spellings), the dispatcher loads the configuration and opens
 * the metadata database as the command's flags ask, then calls the
 * handler.  Handlers never parse argv themselves.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "xmalloc.h"

#define M (CMD_CONFIG | CMD_META | CMD_INSTALLED)

const struct cmd cli_commands[] = {
	{ "help [<command>]", cmd_help, 0, "*", "[COMMAND WORDS...]",
	    "Show all commands, or the usage of the commands starting with the given words." },
	{ "version", cmd_version, 0, "", "", "Print the version." },
	{ "config", cmd_config, CMD_CONFIG, "", "",
	    "Check the configuration file and print every key with its effective value." },
	{ "install", cmd_install, CMD_CONFIG | CMD_META, "", "",
	    "Create the metadata schema 'repctl' in the metadata database, or upgrade\n"
	    "it to this version of repctl.  Safe to run again." },
	{ "add database|db <name>", cmd_add_database, M,
	    "dbname= host= port= user= pass= sslmode= sslrootcert= sslcert= sslkey= service= conn= "
	    "ssh= agent=",
	    "NAME dbname=DB [host=H] [port=P] [user=U] [pass=PW] [sslmode=M] [service=S]\n"
	    "      [ssh=USER@HOST:PORT] [agent=PATH]",
	    "Register a node.  Connects and checks the server before recording it.  A\n"
	    "password (pass= or Bucardo's password=) goes to the secrets file (pgpass\n"
	    "format, mode 0600), never to the metadata tables.  conn= takes a whole\n"
	    "libpq connection string instead of the separate keys.  ssh= is how the node\n"
	    "is reached for file sync, agent= where repctl lives there (default: repctl\n"
	    "on its PATH)." },
	{ "add table <table>", cmd_add_table, M, "herd=! db=! conflict_column= *",
	    "SCHEMA.TABLE... --herd=HERD --db=NODE [--conflict_column=COL]",
	    "Add tables of node NODE to a herd (created when new) and install their\n"
	    "change capture on NODE.  Tables without a primary key are refused, naming\n"
	    "each; on any error nothing is recorded or installed." },
	{ "add all tables", cmd_add_all_tables, M, "herd=! db=! schema= exclude= conflict_column=",
	    "--herd=HERD --db=NODE [--schema=S] [--exclude=PATTERN]",
	    "Add every table of node NODE (all user schemas, or --schema) to HERD.\n"
	    "--exclude takes shell glob patterns (ar_*, public.schema_*) matched against\n"
	    "TABLE and SCHEMA.TABLE, comma separated for several.  Capture is installed\n"
	    "on NODE for every table added.\n"
	    "Tables without a primary key are skipped with a warning naming each.  Run it\n"
	    "once per node, as the archive guide does; running it again changes nothing." },
	{ "add herd|relgroup <name>", cmd_add_herd, M, "", "NAME", "Create an empty herd." },
	{ "add sync <name>", cmd_add_sync, M,
	    "herd=! dbs=! conflict_strategy= conflict_column= interval= onetimecopy= status=",
	    "NAME herd=HERD dbs=A:source,B:target[,C:source...] [conflict_strategy=latest]\n"
	    "      [conflict_column=updated_at] [interval=SECONDS] [onetimecopy=0|1|2]\n"
	    "      [status=active|inactive]",
	    "Create a sync: HERD replicated between the nodes in dbs=.  relgroup= is\n"
	    "accepted for herd=.  With two or more sources every source is also a\n"
	    "target (multi-source, full mesh).  Strategies: latest, first, source,\n"
	    "target, skip, abort; Bucardo's bucardo_* names are accepted." },
	{ "remove table <table>", cmd_remove_table, M, "herd= db= *",
	    "SCHEMA.TABLE... [--db=NODE] [--herd=HERD]",
	    "Remove tables from herds (all, or --herd) on all nodes, or only on --db." },
	{ "remove database|db <name>", cmd_remove_database, M, "", "NAME",
	    "Forget a node.  Refused while a sync uses it (remove the sync first)." },
	{ "remove herd|relgroup <name>", cmd_remove_herd, M, "", "NAME",
	    "Remove a herd and its table list.  Refused while a sync uses it." },
	{ "remove sync <name>", cmd_remove_sync, M, "", "NAME", "Remove a sync and its history." },
	{ "list databases|dbs|database|db|nodes", cmd_list_databases, M, "json", "[--json]",
	    "List the nodes (passwords never shown)." },
	{ "list herds|relgroups|herd|relgroup", cmd_list_herds, M, "json", "[--json]",
	    "List the herds with their table counts per node." },
	{ "list tables|table", cmd_list_tables, M, "json herd= db=", "[--herd=H] [--db=N] [--json]",
	    "List the tables of the herds, per node." },
	{ "list syncs|sync", cmd_list_syncs, M, "json", "[--json]", "List the syncs." },
	{ "update database|db <name>", cmd_update_database, M,
	    "dbname= host= port= user= pass= sslmode= sslrootcert= sslcert= sslkey= service= conn= "
	    "status= ssh= agent=",
	    "NAME key=value...",
	    "Change a node's connection settings (checked before they are stored),\n"
	    "status=active|inactive, or ssh=USER@HOST:PORT / agent=PATH for file sync\n"
	    "(an empty value clears it)." },
	{ "update sync <name>", cmd_update_sync, M,
	    "conflict_strategy= conflict_column= interval= onetimecopy= status= herd=",
	    "NAME key=value...",
	    "Change a sync's conflict_strategy, conflict_column, interval, onetimecopy,\n"
	    "status (active, inactive, paused) or herd." },
	{ "validate [<sync>]", cmd_validate, M, "", "[SYNC]",
	    "Connect to every node of every sync (or SYNC) and check that each herd\n"
	    "table exists on each node with the same primary key and columns, and the\n"
	    "privileges the engine needs.  Exit 0 only when all is well." },
	{ "start", cmd_start, CMD_CONFIG, "foreground", "[--foreground]",
	    "Start the coordinator: one worker per sync, woken by NOTIFY from the\n"
	    "sources, by kicks and by the interval.  Returns once it is up (or says\n"
	    "why not).  --foreground stays attached and logs to stderr (containers)." },
	{ "stop", cmd_stop, CMD_CONFIG, "", "",
	    "Stop the coordinator and wait until it has exited." },
	{ "reload", cmd_reload, CMD_CONFIG, "", "",
	    "Make the coordinator reread its syncs, tables and reloadable settings (SIGHUP)." },
	{ "kick <sync>", cmd_kick, M, "wait timeout=", "SYNC [--wait] [--timeout=SECONDS]",
	    "Ask the running coordinator to run SYNC now; --wait waits for that run and\n"
	    "prints its result (exit 1 when it failed)." },
	{ "pause <sync>", cmd_pause, M, "", "SYNC", "Pause a sync (its worker stops running it)." },
	{ "resume <sync>", cmd_resume, M, "", "SYNC", "Resume a paused sync." },
	{ "conflicts [<sync>]", cmd_conflicts, M, "json since=", "[SYNC] [--since=TIME] [--json]",
	    "Show the conflict log: every conflict with the winner and the rule; with\n"
	    "--json both versions of the row as well." },
	{ "keygen", cmd_keygen, CMD_CONFIG, "", "",
	    "Create the coordinator's SSH key (ed25519, ssh.identity, default\n"
	    "<state_dir>/ssh/id_ed25519) when missing, and print its public key line\n"
	    "for the nodes' authorized_keys." },
	{ "trust <node>", cmd_trust, M, "fingerprint= replace",
	    "NODE [--fingerprint=SHA256:...] [--replace]",
	    "Record NODE's SSH host key (from its ssh= setting) in the known-hosts file.\n"
	    "The fingerprint is shown; with --fingerprint it must match, on a terminal\n"
	    "you are asked to confirm, otherwise --fingerprint is required.  A changed\n"
	    "key is refused unless --replace is given." },
	{ "add folder <name>", cmd_add_folder, M, "nodes=! ignore= type= interval=",
	    "NAME nodes=NODE:/path,NODE:/path [ignore='tmp/,log/,.git/'] [type=NODE:send-only]\n"
	    "      [interval=SECONDS]",
	    "Share a folder between nodes (two-way file sync over SSH).  The folder\n"
	    "marker .repctl/folder is created on every node whose directory exists.\n"
	    "Types: send-receive (default), send-only, receive-only." },
	{ "remove folder <name>", cmd_remove_folder, M, "", "NAME",
	    "Stop syncing a folder (its files stay on the nodes)." },
	{ "list folders|folder", cmd_list_folders, M, "json", "[--json]", "List the folders." },
	{ "sync folder <name>", cmd_sync_folder, M, "wait", "NAME [--wait]",
	    "Sync a folder once now, in this process, with a progress line on a terminal.\n"
	    "--wait waits when another run of it is under way instead of failing." },
	{ "agent", cmd_agent, 0, "root=", "[--root=DIR]",
	    "The node side of the file sync, speaking the framed protocol on stdin and\n"
	    "stdout; started over SSH by the coordinator.  --root refuses folders outside\n"
	    "DIR (use it in authorized_keys: command=\"repctl agent --root=/data/music\")." },
	{ "conflicts resolve <id>", cmd_conflicts_resolve, M, "keep=! dry-run",
	    "ID keep=incoming|existing [--dry-run]",
	    "Settle a quarantined row (one a target refused: another unique index, a\n"
	    "check).  keep=existing deletes the incoming row on its source (the delete\n"
	    "replicates); keep=incoming deletes the target's rows that collide with it\n"
	    "on the violated unique index or constraint, and the next run applies it.\n"
	    "The colliders are found with the index itself: its expressions (lower(email)),\n"
	    "its predicate (a partial index: WHERE deleted_at IS NULL; rows outside it are\n"
	    "kept), its collation and equality.  The rows deleted are printed; --dry-run\n"
	    "prints the rows that would be deleted and changes nothing." },
	{ "partition sequences <sync>", cmd_partition_sequences, M, "step=", "SYNC [--step=N]",
	    "Give every node of SYNC its own residue for every sequence that fills a\n"
	    "primary key of the sync's tables (serial, bigserial, identity, nextval):\n"
	    "INCREMENT BY the fleet's step (default 10, --step the first time) and values\n"
	    "equal to the node's residue modulo the step, above the largest id on any node,\n"
	    "so two nodes never hand out the same id.  A node keeps its residue; a new\n"
	    "node gets a free one.  Every node of the sync must be reachable." },
	{ "compare <herd-or-sync>", cmd_compare, M, "table=", "HERD|SYNC [--table=T]",
	    "Check that the nodes hold the same rows: ordered checksums over key ranges,\n"
	    "narrowed into the ranges that differ down to single keys.  Prints every\n"
	    "differing key per table and node; exit 0 when all are equal, 1 otherwise." },
	{ "repair <herd-or-sync>", cmd_repair, M,
	    "from=! table=", "HERD|SYNC --from NODE [--table=T]",
	    "Make every node hold NODE's version of the rows compare finds differing:\n"
	    "they are re-captured on NODE (keys it lacks as deletes) and the syncs are\n"
	    "run, so the change goes through the normal, logged apply; then compares\n"
	    "again.  Exit 0 when the nodes are equal afterwards." },
	{ "onboard <name>", cmd_onboard, M,
	    "host= port= dbname= user= pass= sslmode= ssh= agent= from= mesh folder= path= "
	    "accept-host-key= dry-run",
	    "NAME host=ADDRESS [port=5432] [dbname=DB] [user=U] [pass=PW] [ssh=USER@HOST:PORT]\n"
	    "      [agent=PATH] --from PRIMARY [--mesh] [--folder=FOLDER path=/DIR]\n"
	    "      [--accept-host-key=SHA256:...] [--dry-run]",
	    "Add a client to the fleet in one command: check that its database can be\n"
	    "reached (saying why not: no route, port closed, timeout, authentication with\n"
	    "the pg_hba.conf line to add, no such database), record its SSH host key once\n"
	    "accepted, create the herd tables it lacks with the primary's schema\n"
	    "(pg_dump --schema-only), register it and its tables, fill its empty tables\n"
	    "from the primary (initial copy, with progress on a terminal), add the pair of\n"
	    "syncs PRIMARY_to_NAME / NAME_to_PRIMARY (conflict_strategy latest) or, with\n"
	    "--mesh, make it a source of the primary's multi-source syncs, add it to\n"
	    "--folder with its path= and run the folder once, and reload a running\n"
	    "coordinator.  Every step skips what exists, so after a failure the same\n"
	    "command continues; --dry-run prints each step as done or to do." },
	{ "offboard <name>", cmd_offboard, M, "", "NAME",
	    "Take a client out of the fleet: remove its syncs (and its membership of\n"
	    "multi-source syncs), its folder memberships, its table registrations and the\n"
	    "capture on it (triggers, schema repctl), and the node.  Its data stays." },
	{ "client-kit <name>", cmd_client_kit, M,
	    "out= force from= host= port= dbname= user= pass=",
	    "NAME [--out DIR] [--force] [from=PRIMARY_ADDRESS] [host=CLIENT_ADDRESS]\n"
	    "      [dbname=DB] [user=U] [pass=PW]",
	    "Write the files a client's operator needs before onboarding: docker-compose.yml\n"
	    "(PostgreSQL 15 and the SSH endpoint of the file sync), .env, the pg_hba.conf\n"
	    "line for this coordinator (from=, or how the client sees it), authorized_keys\n"
	    "with the coordinator's key restricted to 'repctl agent --root=/music', a\n"
	    "repctl.conf, the repctl binary and a README.txt with the onboard command.\n"
	    "Existing files are not overwritten without --force." },
	{ "run <sync>", cmd_run, M, "", "SYNC",
	    "Run SYNC once now in this process, without the coordinator, and print the\n"
	    "result (I/U/D, conflicts).  Exit 0 when every edge succeeded." },
	{ "status [<sync>]", cmd_status, 0, "json health", "[SYNC] [--json] [--health]",
	    "Show each sync: state, last good run and its time and I/U/D, last bad run,\n"
	    "pending keys and lag (counted on the sources), conflicts, circuit breaker and\n"
	    "health (green/yellow/red/gray); then each node's last contact, failures,\n"
	    "circuit and clock offset.  With SYNC, one sync in detail with its last error.\n"
	    "--health prints one line (the worst health of the syncs and folders, with the\n"
	    "reason; no coordinator running is red) and exits 0 green, 1 yellow, 2 red,\n"
	    "3 unknown (metadata database unreachable, schema not installed): for\n"
	    "monitoring and Docker's HEALTHCHECK." },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};

/* ---- pattern tokens ---- */

struct token {
	char text[128];
	int literal;  /* word (with |alternatives) or placeholder */
	int optional; /* [<x>] */
};

/* Split pattern into tokens; returns count. */
/*
 * The handlers' error line ("repctl: error: what\nhint: ..."), through the
 * one logger: stderr in the CLI, the log file in a daemon's process.
 */
void
cmd_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
}

int
cmd_confirm(const char *question)
{
	char answer[64];

	printf("%s", question);
	fflush(stdout);
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return 0;
	answer[strcspn(answer, "\r\n")] = '\0';
	return strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0;
}

void
cmd_lookup_error(const char *kind, const char *name, const char *err)
{
	if (err != NULL)
		cmd_error("%s", err);
	else if (strcmp(kind, "node") == 0)
		cmd_error("no node '%s'\nhint: 'repctl list databases' shows the nodes", name);
	else
		cmd_error("no %s '%s'\nhint: 'repctl list %ss' shows them", kind, name, kind);
}

static int
tokenize(const char *pattern, struct token *t, int max)
{
	int n = 0;
	const char *p = pattern;

	while (*p && n < max) {
		size_t len = strcspn(p, " ");
		size_t cp = len < sizeof(t[n].text) - 1 ? len : sizeof(t[n].text) - 1;

		memcpy(t[n].text, p, cp);
		t[n].text[cp] = '\0';
		t[n].optional = t[n].text[0] == '[';
		t[n].literal = t[n].text[0] != '<' && !t[n].optional;
		n++;
		p += len;
		while (*p == ' ')
			p++;
	}
	return n;
}

/* Canonical (first) spelling of a literal token into out. */
static void
canonical(const struct token *t, char *out, size_t len)
{
	size_t n = strcspn(t->text, "|");

	if (n >= len)
		n = len - 1;
	memcpy(out, t->text, n);
	out[n] = '\0';
}

/* 2: exact match of one alternative, 1: prefix of one, 0: none. */
static int
word_matches(const struct token *t, const char *word)
{
	char alt[128];
	const char *p = t->text;
	int best = 0;
	size_t wl = strlen(word);

	while (*p) {
		size_t n = strcspn(p, "|");

		if (n < sizeof(alt)) {
			memcpy(alt, p, n);
			alt[n] = '\0';
			if (strcmp(alt, word) == 0)
				return 2;
			if (wl > 0 && strncmp(alt, word, wl) == 0)
				best = 1;
		}
		p += n;
		if (*p == '|')
			p++;
	}
	return best;
}

static int
looks_like_option(const char *a)
{
	return a[0] == '-' || strchr(a, '=') != NULL;
}

/* The canonical literal words of a command ("add database"), for messages. */
static void
cmd_words(struct buf *b, const struct cmd *c)
{
	struct token t[16];
	int n = tokenize(c->pattern, t, 16), i;

	for (i = 0; i < n && t[i].literal; i++) {
		char w[128];

		canonical(&t[i], w, sizeof(w));
		buf_printf(b, "%s%s", i ? " " : "", w);
	}
}

/* The literal words typed so far, for messages. */
static void
words_so_far(struct buf *b, char **argv, int n)
{
	int i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s", i ? " " : "", argv[i]);
}

const struct cmd *
cli_match(int argc, char **argv, struct args *args, int *consumed, char *err, size_t errlen)
{
	enum { MAXC = 64 };
	int alive[MAXC], nalive = 0, level, i;
	const struct cmd *c, *found = NULL;
	struct token toks[16];
	int ntok;

	for (c = cli_commands; c->pattern && nalive < MAXC; c++)
		alive[nalive++] = (int)(c - cli_commands);

	for (level = 0;; level++) {
		int next[MAXC], nnext = 0, nexact = 0, complete = -1;
		char cands[MAXC][128];
		int ncands = 0, j;
		const char *word = level < argc ? argv[level] : NULL;

		/* which alive commands still have a literal at this level */
		for (i = 0; i < nalive; i++) {
			ntok = tokenize(cli_commands[alive[i]].pattern, toks, 16);
			if (level >= ntok || !toks[level].literal) {
				complete = alive[i];
				continue;
			}
			canonical(&toks[level], cands[ncands], sizeof(cands[0]));
			for (j = 0; j < ncands; j++)
				if (strcmp(cands[j], cands[ncands]) == 0)
					break;
			if (j == ncands)
				ncands++;
		}
		if (ncands == 0)
			break;
		if (word == NULL || looks_like_option(word)) {
			if (complete >= 0) {
				alive[0] = complete;
				nalive = 1;
				break;
			}
			goto missing;
		}
		for (i = 0; i < nalive; i++) {
			int m;

			ntok = tokenize(cli_commands[alive[i]].pattern, toks, 16);
			if (level >= ntok || !toks[level].literal)
				continue;
			m = word_matches(&toks[level], word);
			if (m == 2) {
				if (nexact == 0)
					nnext = 0;
				nexact = 1;
				next[nnext++] = alive[i];
			} else if (m == 1 && !nexact) {
				next[nnext++] = alive[i];
			}
		}
		if (nnext == 0) {
			if (complete >= 0 && level > 0) {
				alive[0] = complete;
				nalive = 1;
				break;
			}
			goto unknown;
		}
		if (!nexact) {
			/* prefix: all survivors must share one canonical word */
			char first[128];

			ntok = tokenize(cli_commands[next[0]].pattern, toks, 16);
			canonical(&toks[level], first, sizeof(first));
			for (i = 1; i < nnext; i++) {
				char other[128];

				ntok = tokenize(cli_commands[next[i]].pattern, toks, 16);
				canonical(&toks[level], other, sizeof(other));
				if (strcmp(first, other) != 0)
					goto ambiguous;
			}
		}
		memcpy(alive, next, sizeof(int) * (size_t)nnext);
		nalive = nnext;
		continue;

missing:
unknown:
ambiguous : {
	struct buf b = BUF_INIT, ctx = BUF_INIT;
	int k;

	words_so_far(&ctx, argv, level);
	for (k = 0; k < ncands; k++) {
		if (word && !looks_like_option(word) &&
		    strncmp(cands[k], word, strlen(word)) != 0 && nnext > 0)
			continue;
		buf_printf(&b, "%s%s", b.len ? ", " : "", cands[k]);
	}
	if (word == NULL || looks_like_option(word))
		snprintf(err, errlen, "missing word%s%s%s; expected one of: %s",
		    level ? " after '" : "", ctx.data ? ctx.data : "", level ? "'" : "", b.data);
	else if (nnext == 0)
		snprintf(err, errlen, "unknown word '%s'%s%s%s; valid words: %s", word,
		    level ? " after '" : "", ctx.data ? ctx.data : "", level ? "'" : "", b.data);
	else
		snprintf(err, errlen, "ambiguous word '%s'%s%s%s: it could be %s", word,
		    level ? " after '" : "", ctx.data ? ctx.data : "", level ? "'" : "", b.data);
	buf_free(&b);
	buf_free(&ctx);
	return NULL;
}
	}

	found = &cli_commands[alive[0]];
	/* placeholders */
	ntok = tokenize(found->pattern, toks, 16);
	args->words = xcalloc((size_t)ntok + 1, sizeof(char *));
	for (i = level; i < ntok; i++) {
		const char *a = i < argc ? argv[i] : NULL;

		if (a == NULL || looks_like_option(a)) {
			if (toks[i].optional)
				break;
			{
				struct buf ctx = BUF_INIT;
				char name[128];
				size_t n = strlen(toks[i].text);

				cmd_words(&ctx, found);
				snprintf(name, sizeof(name), "%.*s", (int)(n > 2 ? n - 2 : 0),
				    toks[i].text + 1);
				snprintf(err, errlen, "'%s' needs a %s; usage: repctl %s %s",
				    ctx.data, name, ctx.data, found->usage);
				buf_free(&ctx);
			}
			cli_args_free(args);
			return NULL;
		}
		args->words[args->nwords++] = xstrdup(a);
	}
	*consumed = level + args->nwords;
	return found;
}

/* ---- options ---- */

/* Look key up in spec ("herd=! db= json *"): 0 absent, 1 flag, 2 takes value; *req. */
static int
spec_find(const char *spec, const char *key, int *required)
{
	const char *p = spec;
	size_t kl = strlen(key);

	while (*p) {
		size_t n = strcspn(p, " ");

		if (n >= kl && strncmp(p, key, kl) == 0 && (n == kl || p[kl] == '=')) {
			*required = n > kl + 1 && p[kl + 1] == '!';
			return n == kl ? 1 : 2;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

static void
spec_describe(const char *spec, struct buf *b)
{
	const char *p = spec;

	while (*p) {
		size_t n = strcspn(p, " ");
		size_t kl = strcspn(p, "= ");

		if (!(n == 1 && *p == '*'))
			buf_printf(
			    b, "%s%.*s%s", b->len ? ", " : "", (int)kl, p, kl < n ? "=" : "");
		p += n;
		while (*p == ' ')
			p++;
	}
}

int
cli_parse_args(
    const struct cmd *cmd, int argc, char **argv, struct args *args, char *err, size_t errlen)
{
	int i, j, req;
	const char *spec = cmd->opts;
	int allow_pos = strchr(spec, '*') != NULL;

	args->opts = xcalloc((size_t)argc + 1, sizeof(struct opt));
	args->pos = xcalloc((size_t)argc + 1, sizeof(char *));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *eq;
		char *key;
		const char *nkey;
		int kind, dashed = 0;

		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				args->pos[args->npos++] = xstrdup(argv[i]);
			break;
		}
		if (a[0] == '-' && a[1] != '\0') {
			dashed = 1;
			a += a[1] == '-' ? 2 : 1;
		} else if (strchr(a, '=') == NULL) {
			if (!allow_pos) {
				struct buf w = BUF_INIT;

				cmd_words(&w, cmd);
				snprintf(err, errlen,
				    "unexpected argument '%s'; usage: repctl %s %s", argv[i],
				    w.data, cmd->usage);
				buf_free(&w);
				return -1;
			}
			args->pos[args->npos++] = xstrdup(a);
			continue;
		}
		eq = strchr(a, '=');
		key = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
		nkey = compat_option_key(key);
		kind = spec_find(spec, nkey, &req);
		if (kind == 0 || strcmp(nkey, "*") == 0) {
			struct buf b = BUF_INIT;
			struct buf w = BUF_INIT;

			cmd_words(&w, cmd);
			spec_describe(spec, &b);
			snprintf(err, errlen, "unknown option '%s' for '%s'; %s%s", key, w.data,
			    b.len ? "valid options: " : "it takes no options", b.len ? b.data : "");
			buf_free(&b);
			buf_free(&w);
			free(key);
			return -1;
		}
		for (j = 0; j < args->nopts; j++) {
			if (strcmp(args->opts[j].key, nkey) == 0) {
				snprintf(err, errlen, "option '%s' given twice", key);
				free(key);
				return -1;
			}
		}
		if (kind == 1 && eq) {
			snprintf(err, errlen, "option '%s' takes no value (write --%s alone)", key,
			    nkey);
			free(key);
			return -1;
		}
		args->opts[args->nopts].key = xstrdup(nkey);
		if (kind == 2) {
			if (eq)
				args->opts[args->nopts].value = xstrdup(eq + 1);
			else if (dashed && i + 1 < argc && argv[i + 1][0] != '-')
				args->opts[args->nopts].value = xstrdup(argv[++i]);
			else {
				snprintf(
				    err, errlen, "option '%s' needs a value (%s=VALUE)", key, nkey);
				free(args->opts[args->nopts].key);
				free(key);
				return -1;
			}
		}
		args->nopts++;
		free(key);
	}
	/* required options */
	{
		const char *p = spec;

		while (*p) {
			size_t n = strcspn(p, " ");

			if (n > 2 && p[n - 1] == '!') {
				char name[64];
				int have = 0;

				snprintf(name, sizeof(name), "%.*s", (int)(n - 2), p);
				for (j = 0; j < args->nopts; j++)
					if (strcmp(args->opts[j].key, name) == 0)
						have = args->opts[j].value && *args->opts[j].value;
				if (!have) {
					struct buf w = BUF_INIT;

					cmd_words(&w, cmd);
					snprintf(err, errlen,
					    "'%s' needs %s=...; usage: repctl %s %s", w.data, name,
					    w.data, cmd->usage);
					buf_free(&w);
					return -1;
				}
			}
			p += n;
			while (*p == ' ')
				p++;
		}
	}
	return 0;
}

void
cli_args_free(struct args *args)
{
	int i;

	for (i = 0; i < args->nwords; i++)
		free(args->words[i]);
	free(args->words);
	for (i = 0; i < args->npos; i++)
		free(args->pos[i]);
	free(args->pos);
	for (i = 0; i < args->nopts; i++) {
		free(args->opts[i].key);
		free(args->opts[i].value);
	}
	free(args->opts);
	memset(args, 0, sizeof(*args));
}

const char *
args_get(struct args *args, const char *key)
{
	int i;

	for (i = 0; i < args->nopts; i++) {
		if (strcmp(args->opts[i].key, key) == 0) {
			args->opts[i].used = 1;
			return args->opts[i].value;
		}
	}
	return NULL;
}

int
args_has(struct args *args, const char *key)
{
	int i;

	for (i = 0; i < args->nopts; i++)
		if (strcmp(args->opts[i].key, key) == 0)
			return 1;
	return 0;
}

/* ---- help ---- */

static void
print_pattern(const char *pattern)
{
	struct token t[16];
	int n = tokenize(pattern, t, 16), i;

	for (i = 0; i < n; i++) {
		char w[128];

		if (t[i].literal) {
			canonical(&t[i], w, sizeof(w));
			printf("%s%s", i ? " " : "", w);
		} else {
			printf("%s%s", i ? " " : "", t[i].text);
		}
	}
}

int
cli_help(int nwords, char **words)
{
	const struct cmd *c;
	int shown = 0;

	if (nwords == 0) {
		printf("usage: repctl [-c CONFIG] [-v|-q] [-h] [-V] COMMAND [ARGS]\n\ncommands:\n");
		for (c = cli_commands; c->pattern; c++) {
			printf("  ");
			print_pattern(c->pattern);
			printf("\n");
		}
		printf("\n'repctl help COMMAND' shows a command's arguments.\n"
		       "Environment: REPCTL_CONFIG, REPCTL_META, REPCTL_STATE_DIR, REPCTL_NODE.\n");
		return 0;
	}
	for (c = cli_commands; c->pattern; c++) {
		struct token t[16];
		int n = tokenize(c->pattern, t, 16), i, ok = 1;

		for (i = 0; i < nwords && ok; i++)
			ok = i < n && t[i].literal && word_matches(&t[i], words[i]) > 0;
		if (!ok)
			continue;
		{
			struct buf w = BUF_INIT;

			cmd_words(&w, c);
			printf("%susage: repctl %s%s%s\n\n%s\n", shown ? "\n" : "", w.data,
			    *c->usage ? " " : "", c->usage, c->help);
			buf_free(&w);
		}
		shown++;
	}
	if (!shown) {
		struct buf b = BUF_INIT;
		int i;

		for (i = 0; i < nwords; i++)
			buf_printf(&b, "%s%s", i ? " " : "", words[i]);
		fprintf(
		    stderr, "repctl: error: no command '%s'; 'repctl help' lists them\n", b.data);
		buf_free(&b);
		return 2;
	}
	return 0;
}

/* ---- dispatch ---- */

int
cli_dispatch(struct cli_ctx *ctx, int argc, char **argv)
{
	char err[ERRLEN];
	struct args args;
	const struct cmd *cmd;
	int consumed = 0, rc = 1;

	memset(&args, 0, sizeof(args));
	if (argc == 0) {
		cli_help(0, NULL);
		return 2;
	}
	cmd = cli_match(argc, argv, &args, &consumed, err, sizeof(err));
	if (cmd == NULL) {
		cmd_error("%s\nhint: 'repctl help' lists the commands", err);
		cli_args_free(&args);
		return 2;
	}
	if (cli_parse_args(cmd, argc - consumed, argv + consumed, &args, err, sizeof(err)) < 0) {
		cmd_error("%s", err);
		rc = 2;
		goto out;
	}
	ctx->json = args_has(&args, "json");
	if (cmd->flags & CMD_CONFIG && ctx->cfg == NULL) {
		ctx->cfg = config_load(ctx->config_path, getenv, err, sizeof(err));
		if (ctx->cfg == NULL) {
			cmd_error("%s", err);
			goto out;
		}
		db_use_config(ctx->cfg);
	}
	if (cmd->flags & CMD_META) {
		ctx->meta = meta_connect(ctx->cfg, err, sizeof(err));
		if (ctx->meta == NULL) {
			cmd_error("%s", err);
			goto out;
		}
		if (cmd->flags & CMD_INSTALLED &&
		    meta_check_installed(ctx->meta, ctx->cfg, err, sizeof(err)) < 0) {
			cmd_error("%s", err);
			goto out;
		}
	}
	rc = cmd->fn(ctx, &args);
out:
	cli_args_free(&args);
	return rc;
}

/*
 * cmd_sync.c - add, update, remove and list syncs.
 *
 * A sync is a herd replicated between nodes with roles.  Bucardo's
 * spelling is accepted whole: `relgroup=H dbs=a:source,b:target
 * conflict_strategy=bucardo_latest`.  With two or more sources every source
 * is also a target (multi-source: full mesh).  The sync is checked against
 * the metadata before it is recorded: the herd exists and has tables, every
 * node exists, the roles make sense; tables a node of the sync has not
 * registered are named in a warning, since they will not replicate there,
 * and so are primary keys filled from sequences that are not partitioned
 * across the nodes (two nodes would hand out the same id): `repctl
 * partition sequences` or UUID keys are the remedies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "keyseq.h"
#include "meta.h"
#include "output.h"
#include "parse.h"
#include "xmalloc.h"

/* Settings shared by add and update: checked into normalised text. */
struct sync_settings {
	const char *strategy; /* native name */
	const char *conflict_column;
	const char *interval;
	const char *onetimecopy;
	const char *status;
};

static int
check_settings(struct args *args, struct sync_settings *s, int updating)
{
	const char *strat = args_get(args, "conflict_strategy");
	const char *status = args_get(args, "status");
	long v;

	memset(s, 0, sizeof(*s));
	if (strat) {
		s->strategy = compat_strategy(strat);
		if (s->strategy == NULL) {
			cmd_error("unknown conflict_strategy '%s'; use one of: %s\nnothing was "
				  "changed",
			    strat, compat_strategy_words);
			return -1;
		}
	}
	s->conflict_column = args_get(args, "conflict_column");
	if (s->conflict_column && *s->conflict_column == '\0') {
		cmd_error("conflict_column= needs a column name (default updated_at)");
		return -1;
	}
	s->interval = args_get(args, "interval");
	if (s->interval && parse_long(s->interval, 1, 86400, &v) < 0) {
		cmd_error("interval=%s: give a number of seconds from 1 to 86400", s->interval);
		return -1;
	}
	s->onetimecopy = args_get(args, "onetimecopy");
	if (s->onetimecopy && parse_long(s->onetimecopy, 0, 2, &v) < 0) {
		cmd_error("onetimecopy=%s: use 0 (never), 1 (always copy the tables of new "
			  "targets) or 2 (copy only into empty tables)",
		    s->onetimecopy);
		return -1;
	}
	if (status && strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0 &&
	    !(updating && strcmp(status, "paused") == 0)) {
		cmd_error(
		    "status=%s: use active or inactive%s", status, updating ? " (or paused)" : "");
		return -1;
	}
	s->status = status;
	return 0;
}

/* Warn about herd tables that some node of the sync has not registered. */
static void
warn_unregistered(PGconn *meta, const char *sync)
{
	char err[ERRLEN];
	const char *params[1] = { sync };
	PGresult *r = db_query(meta,
	    "SELECT format('%I.%I', t.schema_name, t.table_name), sn.node, "
	    "  string_agg(DISTINCT t.node, ', '), s.herd "
	    "FROM repctl.sync s JOIN repctl.sync_node sn ON sn.sync = s.name "
	    "JOIN repctl.herd_table t ON t.herd = s.herd "
	    "WHERE s.name = $1 AND NOT EXISTS (SELECT 1 FROM repctl.herd_table u "
	    "  WHERE u.herd = s.herd AND u.node = sn.node "
	    "  AND u.schema_name = t.schema_name AND u.table_name = t.table_name) "
	    "GROUP BY 1, 2, 4 ORDER BY 2, 1",
	    1, params, err, sizeof(err));
	int i;

	if (r == NULL)
		return;
	for (i = 0; i < PQntuples(r); i++)
		log_warnx(
		    "table %s is registered on %s but not on node '%s': it will "
		    "not replicate to or from '%s'\nhint: run 'repctl add all tables --herd=%s "
		    "--db=%s' (or add table)",
		    PQgetvalue(r, i, 0), PQgetvalue(r, i, 2), PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 1), PQgetvalue(r, i, 3), PQgetvalue(r, i, 1));
	PQclear(r);
}

struct warn_ctx {
	struct cli_ctx *ctx;
	const char *sync;
	PGconn **conns;
	char **names;
	int n;
};

static PGconn *
warn_conn(void *ud, const char *node)
{
	struct warn_ctx *w = ud;
	char err[ERRLEN];
	struct node n;
	PGconn *c = NULL;
	int i;

	for (i = 0; i < w->n; i++)
		if (strcmp(w->names[i], node) == 0)
			return w->conns[i];
	if (meta_node_get(w->ctx->meta, node, &n, err, sizeof(err)) == 0)
		c = node_connect(w->ctx->cfg, &n, err, sizeof(err));
	node_clear(&n);
	if (c == NULL)
		log_warnx("cannot check the primary keys of node '%s': %s\nhint: run "
			  "'repctl validate %s' once it is reachable",
		    node, err, w->sync);
	w->conns = xrealloc(w->conns, sizeof(PGconn *) * (size_t)(w->n + 1));
	w->names = xrealloc(w->names, sizeof(char *) * (size_t)(w->n + 1));
	w->conns[w->n] = c;
	w->names[w->n++] = xstrdup(node);
	return c;
}

static void
warn_key(const char *what, void *ud)
{
	struct warn_ctx *w = ud;

	log_warnx(
	    "%s\nhint: run 'repctl partition sequences %s' (each node its own "
	    "residue: INCREMENT BY a step, a distinct start per node), or make the key a UUID "
	    "(uuid DEFAULT gen_random_uuid(), which no two nodes repeat)",
	    what, w->sync);
}

/* Warn about primary keys filled from sequences that are not partitioned. */
static void
warn_key_sequences(struct cli_ctx *ctx, const char *sync)
{
	char err[ERRLEN];
	struct warn_ctx w = { ctx, sync, NULL, NULL, 0 };
	struct keyseq_set ks = { NULL, 0 };
	char *skipped = NULL;
	int i;

	if (keyseq_collect_sync(ctx->meta, sync, warn_conn, &w, &ks, &skipped, err, sizeof(err)) <
	    0)
		log_warnx("cannot check the primary keys: %s", err);
	else {
		if (skipped)
			log_warnx("cannot check the primary keys: %s\nhint: 'repctl "
				  "validate %s' says what is missing",
			    skipped, sync);
		keyseq_hazards(&ks, warn_key, &w);
	}
	free(skipped);
	keyseq_set_free(&ks);
	for (i = 0; i < w.n; i++) {
		db_close(w.conns[i]);
		free(w.names[i]);
	}
	free(w.conns);
	free(w.names);
}

CMD_HANDLER(cmd_add_sync)
{
	char err[ERRLEN], ord[16];
	const char *name = args->words[0];
	const char *herd = args_get(args, "herd"), *dbs = args_get(args, "dbs");
	struct sync_settings s;
	struct member *m = NULL;
	int nm = 0, i, e, rc = 1;

	if (!parse_valid_name(name)) {
		cmd_error("'%s' is not a valid sync name: use letters, digits, '_', '.' or '-', "
			  "starting with a letter",
		    name);
		return 1;
	}
	if (check_settings(args, &s, 0) < 0)
		return 1;
	if (parse_dbs(dbs, &m, &nm, err, sizeof(err)) < 0) {
		cmd_error("add sync %s: %s\nnothing was changed", name, err);
		return 1;
	}
	e = meta_exists(
	    ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", name, err, sizeof(err));
	if (e != 0) {
		if (e < 0)
			cmd_error("%s", err);
		else
			cmd_error(
			    "sync '%s' already exists\nhint: 'repctl update sync %s ...' changes "
			    "it, 'repctl remove sync %s' removes it",
			    name, name, name);
		goto out;
	}
	e = meta_exists(
	    ctx->meta, "SELECT 1 FROM repctl.herd WHERE name = $1", herd, err, sizeof(err));
	if (e != 1) {
		if (e < 0)
			cmd_error("%s", err);
		else
			cmd_error("no herd '%s'\nhint: create it with 'repctl add all tables "
				  "--herd=%s --db=NODE' for each node; nothing was changed",
			    herd, herd);
		goto out;
	}
	e = meta_exists(
	    ctx->meta, "SELECT 1 FROM repctl.herd_table WHERE herd = $1", herd, err, sizeof(err));
	if (e != 1) {
		if (e < 0)
			cmd_error("%s", err);
		else
			cmd_error("herd '%s' has no tables\nhint: 'repctl add all tables --herd=%s "
				  "--db=NODE'; nothing was changed",
			    herd, herd);
		goto out;
	}
	for (i = 0; i < nm; i++) {
		e = meta_exists(ctx->meta, "SELECT 1 FROM repctl.node WHERE name = $1", m[i].node,
		    err, sizeof(err));
		if (e != 1) {
			if (e < 0)
				cmd_error("%s", err);
			else
				cmd_error(
				    "dbs=: no node '%s'\nhint: add it with 'repctl add database "
				    "%s dbname=... host=...'; nothing was changed",
				    m[i].node, m[i].node);
			goto out;
		}
	}
	{
		const char *p[6] = { name, herd, s.strategy ? s.strategy : "latest",
			s.conflict_column ? s.conflict_column : "updated_at", s.interval,
			s.onetimecopy ? s.onetimecopy : "0" };
		const char *pst[2] = { name, s.status ? s.status : "active" };

		if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
		    db_execp(ctx->meta,
			"INSERT INTO repctl.sync (name, herd, strategy, conflict_column, interval_s, "
			"onetimecopy) VALUES ($1, $2, $3, $4, $5::int, $6::int)",
			6, p, err, sizeof(err)) < 0 ||
		    db_execp(ctx->meta, "UPDATE repctl.sync SET status = $2 WHERE name = $1", 2,
			pst, err, sizeof(err)) < 0)
			goto fail;
	}
	for (i = 0; i < nm; i++) {
		const char *p[4] = { name, m[i].node, role_name(m[i].role), ord };

		snprintf(ord, sizeof(ord), "%d", i);
		if (db_execp(ctx->meta,
			"INSERT INTO repctl.sync_node (sync, node, role, ord) VALUES ($1, $2, $3, "
			"$4::int)",
			4, p, err, sizeof(err)) < 0)
			goto fail;
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	printf("sync '%s' added: herd '%s', %s, conflict_strategy %s\n", name, herd, dbs,
	    s.strategy ? s.strategy : "latest");
	warn_unregistered(ctx->meta, name);
	warn_key_sequences(ctx, name);
	cmd_tell_reload(ctx);
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("add sync %s: %s\nnothing was changed", name, err);
out:
	members_free(m, nm);
	return rc;
}

CMD_HANDLER(cmd_update_sync)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *herd = args_get(args, "herd");
	struct sync_settings s;
	int e;

	if (args->nopts == 0) {
		cmd_error("update sync %s: nothing to change; give key=value pairs, e.g. "
			  "conflict_strategy=first or interval=30",
		    name);
		return 1;
	}
	if (check_settings(args, &s, 1) < 0)
		return 1;
	e = meta_exists(
	    ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", name, err, sizeof(err));
	if (e != 1) {
		cmd_lookup_error("sync", name, e < 0 ? err : NULL);
		return 1;
	}
	if (herd) {
		e = meta_exists(
		    ctx->meta, "SELECT 1 FROM repctl.herd WHERE name = $1", herd, err, sizeof(err));
		if (e != 1) {
			cmd_error("no herd '%s'%s%s", herd, e < 0 ? ": " : "", e < 0 ? err : "");
			return 1;
		}
	}
	{
		const char *p[7] = { name, s.strategy, s.conflict_column, s.interval, s.onetimecopy,
			s.status, herd };

		if (db_execp(ctx->meta,
			"UPDATE repctl.sync SET strategy = coalesce($2, strategy), "
			"conflict_column = coalesce($3, conflict_column), "
			"interval_s = coalesce($4::int, interval_s), "
			"onetimecopy = coalesce($5::int, onetimecopy), "
			"status = coalesce($6, status), herd = coalesce($7, herd), "
			"updated_at = now() WHERE name = $1",
			7, p, err, sizeof(err)) < 0) {
			cmd_error("update sync %s: %s\nnothing was changed", name, err);
			return 1;
		}
	}
	printf("sync '%s' updated\n", name);
	cmd_tell_reload(ctx);
	return 0;
}

CMD_HANDLER(cmd_remove_sync)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *params[1] = { name };
	PGresult *r;

	r = db_query(ctx->meta, "DELETE FROM repctl.sync WHERE name = $1 RETURNING 1", 1, params,
	    err, sizeof(err));
	if (r == NULL) {
		cmd_error("remove sync %s: %s", name, err);
		return 1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		cmd_lookup_error("sync", name, NULL);
		return 1;
	}
	PQclear(r);
	printf("sync '%s' removed\n", name);
	cmd_tell_reload(ctx);
	return 0;
}

CMD_HANDLER(cmd_list_syncs)
{
	(void)args;
	return output_query(ctx->meta,
		   "SELECT s.name, s.status, s.herd, "
		   "(SELECT string_agg(n.node || ':' || n.role, ',' ORDER BY n.ord) "
		   "  FROM repctl.sync_node n WHERE n.sync = s.name) AS dbs, "
		   "s.strategy AS conflict_strategy, s.conflict_column, "
		   "s.interval_s AS interval, s.onetimecopy FROM repctl.sync s ORDER BY s.name",
		   0, NULL, ctx->json) < 0
	    ? 1
	    : 0;
}

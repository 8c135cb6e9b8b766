/*
 * cmd_herd.c - herds (Bucardo's relgroups) and their tables.
 *
 * Tables are registered per node, as Bucardo does: the archive guide runs
 * `add all tables --herd=H --db=N` once for each node, and running it again
 * changes nothing.  The primary key of each table is read from the node and
 * recorded; a table without one is refused (add table) or skipped with a
 * warning naming it (add all tables), because state-based replication needs
 * a key to find a row.  Everything a command registers is one transaction.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "capture.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "output.h"
#include "parse.h"
#include "xmalloc.h"

/* Tables of a node with their primary key (NULL when none), as text[]. */
#define NODE_TABLES_SQL                                                                         \
	"SELECT n.nspname::text, c.relname::text, c.relkind::text, "                            \
	"(SELECT array_agg(a.attname::text ORDER BY k.ord) "                                    \
	"   FROM pg_catalog.pg_index i "                                                        \
	"   CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "     \
	"   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum " \
	"  WHERE i.indrelid = c.oid AND i.indisprimary)::text AS pk "                           \
	"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "  \
	"WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition "                \
	"  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'repctl') "                \
	"  AND n.nspname NOT LIKE 'pg\\_%' "

/* Open node db; on failure print and return NULL. */
static PGconn *
open_node(struct cli_ctx *ctx, const char *name, struct node *n)
{
	char err[ERRLEN];
	int found = meta_node_get(ctx->meta, name, n, err, sizeof(err));
	PGconn *c;

	if (found != 0) {
		if (found < 0)
			cmd_error("%s", err);
		else
			cmd_error("no node '%s'\nhint: add it first with 'repctl add database %s "
				  "dbname=... host=...'",
			    name, name);
		return NULL;
	}
	c = node_connect(ctx->cfg, n, err, sizeof(err));
	if (c == NULL) {
		const char *hint = db_connect_hint(err);

		cmd_error(
		    "%s%s%s\nnothing was changed", err, hint ? "\nhint: " : "", hint ? hint : "");
	}
	return c;
}

static int
excluded(const char *patterns, const char *schema, const char *table)
{
	char *copy, *p, *save = NULL, full[512];
	int hit = 0;

	if (patterns == NULL)
		return 0;
	snprintf(full, sizeof(full), "%s.%s", schema, table);
	copy = xstrdup(patterns);
	for (p = strtok_r(copy, ",", &save); p && !hit; p = strtok_r(NULL, ",", &save))
		hit = fnmatch(p, full, 0) == 0 || fnmatch(p, table, 0) == 0;
	free(copy);
	return hit;
}

static const char *
kind_word(const char *relkind)
{
	switch (relkind[0]) {
	case 'v': return "a view";
	case 'm': return "a materialized view";
	case 'f': return "a foreign table";
	default: return "not a table";
	}
}

/*
 * Register rows (schema, table, pk) of res in herd for node, in the
 * metadata transaction already open.  Counts into *added / *present.
 */
static int
register_table(PGconn *meta, const char *herd, const char *node, const char *schema,
    const char *table, const char *pk, const char *conflict_column, int *added, int *present,
    char *err, size_t errlen)
{
	const char *params[6] = { herd, node, schema, table, pk, conflict_column };
	PGresult *r = db_query(meta,
	    "INSERT INTO repctl.herd_table (herd, node, schema_name, table_name, pk_columns, "
	    "conflict_column) VALUES ($1, $2, $3, $4, $5::text[], $6) "
	    "ON CONFLICT (herd, node, schema_name, table_name) DO UPDATE "
	    "SET pk_columns = EXCLUDED.pk_columns, "
	    "conflict_column = coalesce(EXCLUDED.conflict_column, repctl.herd_table.conflict_column) "
	    "RETURNING (xmax = 0)",
	    6, params, err, errlen);

	if (r == NULL)
		return -1;
	if (PQgetvalue(r, 0, 0)[0] == 't')
		(*added)++;
	else
		(*present)++;
	PQclear(r);
	return 0;
}

/* Tables whose capture this command installed, to take off again on failure. */
struct installed {
	char **schema, **table;
	int n;
};

static int
install_capture(PGconn *c, const char *node, const char *schema, const char *table,
    struct installed *done, char *err, size_t errlen)
{
	char *had = capture_shadow(c, schema, table, err, errlen);

	if (capture_install(c, node, schema, table, err, errlen) < 0) {
		char *msg = xasprintf(
		    "installing capture of %s.%s on node '%s': %s", schema, table, node, err);

		snprintf(err, errlen, "%s", msg);
		free(msg);
		free(had);
		return -1;
	}
	if (had == NULL) {
		done->schema = xrealloc(done->schema, sizeof(char *) * (size_t)(done->n + 1));
		done->table = xrealloc(done->table, sizeof(char *) * (size_t)(done->n + 1));
		done->schema[done->n] = xstrdup(schema);
		done->table[done->n] = xstrdup(table);
		done->n++;
	}
	free(had);
	return 0;
}

/* Undo (failed) or forget (succeeded) what install_capture() did. */
static void
installed_finish(PGconn *c, struct installed *done, int undo)
{
	char err[ERRLEN];
	int i;

	for (i = 0; i < done->n; i++) {
		if (undo && c &&
		    capture_remove(c, done->schema[i], done->table[i], err, sizeof(err)) < 0)
			log_warnx("could not take capture of %s.%s off again: %s", done->schema[i],
			    done->table[i], err);
		free(done->schema[i]);
		free(done->table[i]);
	}
	free(done->schema);
	free(done->table);
	memset(done, 0, sizeof(*done));
}

static int
ensure_herd(PGconn *meta, const char *herd, char *err, size_t errlen)
{
	const char *params[1] = { herd };

	return db_execp(meta, "INSERT INTO repctl.herd (name) VALUES ($1) ON CONFLICT DO NOTHING",
	    1, params, err, errlen);
}

static int
check_herd_name(const char *herd)
{
	if (parse_valid_name(herd))
		return 0;
	cmd_error("'%s' is not a valid herd name: use letters, digits, '_', '.' or '-', "
		  "starting with a letter",
	    herd);
	return -1;
}

CMD_HANDLER(cmd_add_all_tables)
{
	char err[ERRLEN];
	const char *herd = args_get(args, "herd"), *db = args_get(args, "db");
	const char *schema = args_get(args, "schema"), *exclude = args_get(args, "exclude");
	const char *ccol = args_get(args, "conflict_column");
	const char *params[1] = { schema };
	struct node n;
	struct installed done;
	PGconn *c = NULL;
	PGresult *r = NULL;
	int i, added = 0, present = 0, skipped = 0, rc = 1;

	memset(&n, 0, sizeof(n));
	memset(&done, 0, sizeof(done));
	if (check_herd_name(herd) < 0)
		return 1;
	c = open_node(ctx, db, &n);
	if (c == NULL)
		goto out;
	r = db_query(c,
	    NODE_TABLES_SQL "AND c.relkind IN ('r', 'p') AND ($1::text IS NULL OR n.nspname = $1) "
			    "ORDER BY 1, 2",
	    1, params, err, sizeof(err));
	if (r == NULL) {
		cmd_error("node '%s': %s", db, err);
		goto out;
	}
	if (PQntuples(r) == 0) {
		cmd_error("node '%s' has no tables%s%s%s\nhint: create the schema there first (or "
			  "check --schema); nothing was changed",
		    db, schema ? " in schema '" : "", schema ? schema : "", schema ? "'" : "");
		goto out;
	}
	if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
	    ensure_herd(ctx->meta, herd, err, sizeof(err)) < 0)
		goto fail;
	for (i = 0; i < PQntuples(r); i++) {
		const char *s = PQgetvalue(r, i, 0), *t = PQgetvalue(r, i, 1);

		if (excluded(exclude, s, t))
			continue;
		if (PQgetisnull(r, i, 3)) {
			log_warnx(
			    "skipping table %s.%s on node '%s': it has no primary "
			    "key (add one with ALTER TABLE ... ADD PRIMARY KEY, then run this again)",
			    s, t, db);
			skipped++;
			continue;
		}
		if (register_table(ctx->meta, herd, db, s, t, PQgetvalue(r, i, 3), ccol, &added,
			&present, err, sizeof(err)) < 0)
			goto fail;
		if (install_capture(c, db, s, t, &done, err, sizeof(err)) < 0)
			goto fail;
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	printf("herd '%s' on node '%s': %d table(s) added, %d already present, %d skipped "
	       "without a primary key\n",
	    herd, db, added, present, skipped);
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("add all tables: %s\nnothing was changed", err);
out:
	installed_finish(c, &done, rc != 0);
	PQclear(r);
	db_close(c);
	node_clear(&n);
	return rc;
}

CMD_HANDLER(cmd_add_table)
{
	char err[ERRLEN];
	const char *herd = args_get(args, "herd"), *db = args_get(args, "db");
	const char *ccol = args_get(args, "conflict_column");
	struct node n;
	struct installed done;
	PGconn *c = NULL;
	int i, added = 0, present = 0, rc = 1, ntables = args->nwords + args->npos;

	memset(&n, 0, sizeof(n));
	memset(&done, 0, sizeof(done));
	if (check_herd_name(herd) < 0)
		return 1;
	c = open_node(ctx, db, &n);
	if (c == NULL)
		goto out;
	if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
	    ensure_herd(ctx->meta, herd, err, sizeof(err)) < 0)
		goto fail;
	for (i = 0; i < ntables; i++) {
		const char *arg = i == 0 ? args->words[0] : args->pos[i - 1];
		char *s = NULL, *t = NULL;
		const char *params[2];
		PGresult *r;

		if (parse_qualified(arg, &s, &t, err, sizeof(err)) < 0) {
			db_rollback(ctx->meta);
			cmd_error("add table: %s\nnothing was changed", err);
			goto out;
		}
		params[0] = s;
		params[1] = t;
		r = db_query(c, NODE_TABLES_SQL "AND n.nspname = $1 AND c.relname = $2", 2, params,
		    err, sizeof(err));
		if (r == NULL || PQntuples(r) == 0 ||
		    strchr("rp", PQgetvalue(r, 0, 2)[0]) == NULL || PQgetisnull(r, 0, 3)) {
			db_rollback(ctx->meta);
			if (r == NULL)
				cmd_error("node '%s': %s", db, err);
			else if (PQntuples(r) == 0)
				cmd_error(
				    "table %s.%s does not exist on node '%s'\nhint: check the "
				    "name (quote mixed case as '\"Name\"'); nothing was changed",
				    s, t, db);
			else if (strchr("rp", PQgetvalue(r, 0, 2)[0]) == NULL)
				cmd_error(
				    "%s.%s on node '%s' is %s; only tables replicate\nnothing "
				    "was changed",
				    s, t, db, kind_word(PQgetvalue(r, 0, 2)));
			else
				cmd_error(
				    "table %s.%s on node '%s' has no primary key\nhint: add one "
				    "(ALTER TABLE ... ADD PRIMARY KEY); nothing was changed",
				    s, t, db);
			PQclear(r);
			free(s);
			free(t);
			goto out;
		}
		if (register_table(ctx->meta, herd, db, s, t, PQgetvalue(r, 0, 3), ccol, &added,
			&present, err, sizeof(err)) < 0 ||
		    install_capture(c, db, s, t, &done, err, sizeof(err)) < 0) {
			PQclear(r);
			free(s);
			free(t);
			goto fail;
		}
		PQclear(r);
		free(s);
		free(t);
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	printf("herd '%s' on node '%s': %d table(s) added, %d already present\n", herd, db, added,
	    present);
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("add table: %s\nnothing was changed", err);
out:
	installed_finish(c, &done, rc != 0);
	db_close(c);
	node_clear(&n);
	return rc;
}

CMD_HANDLER(cmd_add_herd)
{
	char err[ERRLEN];
	const char *herd = args->words[0];
	const char *params[1] = { herd };
	PGresult *r;

	if (check_herd_name(herd) < 0)
		return 1;
	r = db_query(ctx->meta,
	    "INSERT INTO repctl.herd (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1", 1,
	    params, err, sizeof(err));
	if (r == NULL) {
		cmd_error("add herd %s: %s", herd, err);
		return 1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		cmd_error(
		    "herd '%s' already exists\nhint: 'repctl list herds' shows the herds", herd);
		return 1;
	}
	PQclear(r);
	printf("herd '%s' created\n", herd);
	return 0;
}

/* Print an error and return -1 unless the named object exists. */
static int
must_exist(PGconn *meta, const char *what, const char *sql, const char *name, const char *listcmd)
{
	char err[ERRLEN];
	int e = meta_exists(meta, sql, name, err, sizeof(err));

	if (e < 0)
		cmd_error("%s", err);
	else if (e == 0)
		cmd_error(
		    "no %s '%s'\nhint: '%s' shows them; nothing was changed", what, name, listcmd);
	return e == 1 ? 0 : -1;
}

CMD_HANDLER(cmd_remove_table)
{
	char err[ERRLEN];
	const char *herd = args_get(args, "herd"), *db = args_get(args, "db");
	int i, ntables = args->nwords + args->npos, total = 0, removed_capture = 0;

	if (db &&
	    must_exist(ctx->meta, "node", "SELECT 1 FROM repctl.node WHERE name = $1", db,
		"repctl list databases") < 0)
		return 1;
	if (herd &&
	    must_exist(ctx->meta, "herd", "SELECT 1 FROM repctl.herd WHERE name = $1", herd,
		"repctl list herds") < 0)
		return 1;
	if (db_begin(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	for (i = 0; i < ntables; i++) {
		const char *arg = i == 0 ? args->words[0] : args->pos[i - 1];
		char *s = NULL, *t = NULL;
		const char *params[4];
		PGresult *r;
		int nrows;

		if (parse_qualified(arg, &s, &t, err, sizeof(err)) < 0)
			goto fail;
		params[0] = s;
		params[1] = t;
		params[2] = db;
		params[3] = herd;
		r = db_query(ctx->meta,
		    "WITH d AS (DELETE FROM repctl.herd_table WHERE schema_name = $1 "
		    "AND table_name = $2 AND ($3::text IS NULL OR node = $3) "
		    "AND ($4::text IS NULL OR herd = $4) RETURNING herd, node) "
		    "SELECT d.node, NOT EXISTS (SELECT 1 FROM repctl.herd_table t "
		    "WHERE t.node = d.node AND t.schema_name = $1 AND t.table_name = $2 "
		    "AND NOT (t.herd, t.node) IN (SELECT herd, node FROM d)) FROM d ORDER BY 1",
		    4, params, err, sizeof(err));
		if (r == NULL) {
			free(s);
			free(t);
			goto fail;
		}
		nrows = PQntuples(r);
		{
			/* nodes where no herd captures the table any more */
			int k;

			for (k = 0; k < PQntuples(r); k++) {
				struct node n;
				PGconn *c;

				if (PQgetvalue(r, k, 1)[0] != 't')
					continue;
				c = open_node(ctx, PQgetvalue(r, k, 0), &n);
				int drc;

				drc = c ? capture_remove(c, s, t, err, sizeof(err)) : -1;

				db_close(c);
				node_clear(&n);
				if (drc < 0) {
					PQclear(r);
					free(s);
					free(t);
					db_rollback(ctx->meta);
					if (c)
						cmd_error("removing capture of %s: %s\nnothing was "
							  "changed",
						    arg, err);
					return 1;
				}
				removed_capture++;
			}
		}
		PQclear(r);
		if (nrows == 0) {
			db_rollback(ctx->meta);
			cmd_error("table %s.%s is not in %s%s%s%s%s\nhint: 'repctl list tables' "
				  "shows them; nothing was changed",
			    s, t, herd ? "herd '" : "any herd", herd ? herd : "", herd ? "'" : "",
			    db ? " on node " : "", db ? db : "");
			free(s);
			free(t);
			return 1;
		}
		total += nrows;
		free(s);
		free(t);
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	printf("removed %d table registration(s)%s%s; capture removed from %d node table(s)\n",
	    total, db ? " on node " : " on all nodes", db ? db : "", removed_capture);
	printf("hint: a running coordinator picks this up on 'repctl reload'\n");
	return 0;
fail:
	db_rollback(ctx->meta);
	cmd_error("remove table: %s\nnothing was changed", err);
	return 1;
}

CMD_HANDLER(cmd_remove_herd)
{
	char err[ERRLEN];
	const char *herd = args->words[0];
	const char *params[1] = { herd };
	PGresult *r;

	if (must_exist(ctx->meta, "herd", "SELECT 1 FROM repctl.herd WHERE name = $1", herd,
		"repctl list herds") < 0)
		return 1;
	r = db_query(ctx->meta,
	    "SELECT string_agg(name, ', ' ORDER BY name) FROM repctl.sync WHERE herd = $1", 1,
	    params, err, sizeof(err));
	if (r == NULL) {
		cmd_error("%s", err);
		return 1;
	}
	if (!PQgetisnull(r, 0, 0)) {
		cmd_error(
		    "herd '%s' is used by sync(s) %s\nhint: remove those syncs first; nothing "
		    "was changed",
		    herd, PQgetvalue(r, 0, 0));
		PQclear(r);
		return 1;
	}
	PQclear(r);
	if (db_execp(ctx->meta, "DELETE FROM repctl.herd WHERE name = $1", 1, params, err,
		sizeof(err)) < 0) {
		cmd_error("remove herd %s: %s", herd, err);
		return 1;
	}
	printf("herd '%s' removed\n", herd);
	return 0;
}

CMD_HANDLER(cmd_list_herds)
{
	(void)args;
	return output_query(ctx->meta,
		   "SELECT h.name AS herd, "
		   "(SELECT count(DISTINCT (schema_name, table_name)) FROM repctl.herd_table t "
		   "  WHERE t.herd = h.name) AS tables, "
		   "(SELECT string_agg(x.node || ':' || x.n, ', ' ORDER BY x.node) FROM "
		   "  (SELECT node, count(*) AS n FROM repctl.herd_table t WHERE t.herd = h.name "
		   "   GROUP BY node) x) AS nodes, "
		   "(SELECT string_agg(s.name, ', ' ORDER BY s.name) FROM repctl.sync s "
		   "  WHERE s.herd = h.name) AS syncs "
		   "FROM repctl.herd h ORDER BY h.name",
		   0, NULL, ctx->json) < 0
	    ? 1
	    : 0;
}

CMD_HANDLER(cmd_list_tables)
{
	const char *params[2] = { args_get(args, "herd"), args_get(args, "db") };

	return output_query(ctx->meta,
		   "SELECT herd, node, format('%I.%I', schema_name, table_name) AS \"table\", "
		   "array_to_string(pk_columns, ',') AS key, conflict_column "
		   "FROM repctl.herd_table WHERE ($1::text IS NULL OR herd = $1) "
		   "AND ($2::text IS NULL OR node = $2) ORDER BY herd, schema_name, table_name, node",
		   2, params, ctx->json) < 0
	    ? 1
	    : 0;
}

/*
 * cmd_quarantine.c - conflicts resolve ID keep=incoming|existing: settle a
 * quarantined row.
 *
 * A row is quarantined when its target refused it for a reason of the
 * target's own data (another unique index, a check constraint): two nodes
 * inserted different rows with the same email, say.  The operator picks:
 *   keep=existing  the incoming row goes: it is deleted on the node it came
 *                  from, as an ordinary change, so the deletion replicates
 *                  everywhere and the quarantine is resolved;
 *   keep=incoming  the rows of the target that collide with it on the
 *                  violated unique constraint are deleted there, as an
 *                  ordinary change; the next run applies the incoming row
 *                  and resolves the quarantine.
 * Either way every node converges through the normal apply path, and the
 * choice is recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "parse.h"
#include "xmalloc.h"

/* "k1 = ($1::jsonb->>'k1')::type AND ..." over the table's key columns. */
static char *
pk_condition(PGconn *c, const char *qtable, const char *json_param, char *err, size_t errlen)
{
	const char *p[1] = { qtable };
	PGresult *r = db_query(c,
	    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
	    "FROM pg_catalog.pg_index i "
	    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
	    "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	    "WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord",
	    1, p, err, errlen);
	struct buf b = BUF_INIT;
	int i;

	if (r == NULL)
		return NULL;
	for (i = 0; i < PQntuples(r); i++) {
		char *id = db_ident(c, PQgetvalue(r, i, 0));
		char *lit = db_literal(c, PQgetvalue(r, i, 0));

		buf_printf(&b, "%s%s = (%s::jsonb ->> %s)::%s", i ? " AND " : "", id, json_param,
		    lit, PQgetvalue(r, i, 1));
		free(id);
		free(lit);
	}
	PQclear(r);
	return buf_steal(&b);
}

static PGconn *
connect_node(struct cli_ctx *ctx, const char *name, char *err, size_t errlen)
{
	struct node n;
	PGconn *c = NULL;

	if (meta_node_get(ctx->meta, name, &n, err, errlen) == 0)
		c = node_connect(ctx->cfg, &n, err, errlen);
	else if (!err[0])
		snprintf(err, errlen, "node '%s' is not in the metadata", name);
	node_clear(&n);
	return c;
}

CMD_HANDLER(cmd_conflicts_resolve)
{
	char err[ERRLEN];
	const char *id = args->words[0], *keep = args_get(args, "keep");
	const char *p1[1] = { id };
	PGresult *q = NULL;
	PGconn *c = NULL;
	char *qtable = NULL, *cond = NULL, *sql = NULL;
	long v;
	int rc = 1;

	err[0] = '\0';
	if (parse_long(id, 1, 0x7fffffffffffffffL, &v) < 0) {
		cmd_error("'%s' is not a quarantine id; 'repctl conflicts' lists them", id);
		return 1;
	}
	if (strcmp(keep, "incoming") != 0 && strcmp(keep, "existing") != 0) {
		cmd_error(
		    "keep=%s: use keep=incoming (the refused row wins) or keep=existing (it is "
		    "dropped everywhere)",
		    keep);
		return 1;
	}
	q = db_query(ctx->meta,
	    "SELECT source, target, schema_name, table_name, pk::text, row_data::text, "
	    "constraint_name, resolved_at IS NOT NULL FROM repctl.quarantine WHERE id = $1::bigint",
	    1, p1, err, sizeof(err));
	if (q == NULL) {
		cmd_error("%s", err);
		return 1;
	}
	if (PQntuples(q) == 0) {
		cmd_error("no quarantined row %s; 'repctl conflicts' lists them", id);
		goto out;
	}
	if (PQgetvalue(q, 0, 7)[0] == 't') {
		cmd_error("quarantined row %s is resolved already", id);
		goto out;
	}
	if (strcmp(keep, "existing") == 0) {
		/* drop the incoming row where it came from: the delete replicates */
		const char *p[1] = { PQgetvalue(q, 0, 4) };

		c = connect_node(ctx, PQgetvalue(q, 0, 0), err, sizeof(err));
		if (c == NULL)
			goto fail;
		qtable = db_qualified(c, PQgetvalue(q, 0, 2), PQgetvalue(q, 0, 3));
		cond = pk_condition(c, qtable, "$1", err, sizeof(err));
		if (cond == NULL)
			goto fail;
		sql = xasprintf("DELETE FROM %s WHERE %s", qtable, cond);
		if (db_execp(c, sql, 1, p, err, sizeof(err)) < 0)
			goto fail;
		{
			const char *pr[2] = { id,
				"kept existing: the incoming row was deleted on its "
				"source" };

			if (db_execp(ctx->meta,
				"UPDATE repctl.quarantine SET resolved_at = now(), resolution = $2 "
				"WHERE id = $1::bigint",
				2, pr, err, sizeof(err)) < 0)
				goto fail;
		}
		printf(
		    "quarantined row %s: the incoming row %s was deleted on node '%s'; the deletion "
		    "replicates with the next runs\n",
		    id, PQgetvalue(q, 0, 4), PQgetvalue(q, 0, 0));
		rc = 0;
		goto out;
	}
	/* keep=incoming: delete the target's rows colliding on the violated constraint */
	if (PQgetisnull(q, 0, 6)) {
		cmd_error(
		    "quarantined row %s was refused by a check on the target, not by another "
		    "row: fix the row on node '%s' (the next run retries it) or use keep=existing",
		    id, PQgetvalue(q, 0, 0));
		goto out;
	}
	c = connect_node(ctx, PQgetvalue(q, 0, 1), err, sizeof(err));
	if (c == NULL)
		goto fail;
	qtable = db_qualified(c, PQgetvalue(q, 0, 2), PQgetvalue(q, 0, 3));
	{
		const char *p[2] = { qtable, PQgetvalue(q, 0, 6) };
		PGresult *cols = db_query(c,
		    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
		    "con.contype::text FROM pg_catalog.pg_constraint con "
		    "JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid "
		    "AND a.attnum = ANY (con.conkey) WHERE con.conrelid = $1::regclass "
		    "AND con.conname = $2 UNION ALL "
		    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), 'u' "
		    "FROM pg_catalog.pg_class ic JOIN pg_catalog.pg_index i ON i.indexrelid = ic.oid "
		    "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
		    "AND a.attnum = ANY (i.indkey::int2[]) WHERE i.indrelid = $1::regclass "
		    "AND ic.relname = $2 AND i.indisunique AND NOT EXISTS (SELECT 1 FROM "
		    "pg_catalog.pg_constraint x WHERE x.conrelid = $1::regclass AND x.conname = $2)",
		    2, p, err, sizeof(err));
		struct buf w = BUF_INIT;
		int i;

		if (cols == NULL)
			goto fail;
		if (PQntuples(cols) == 0 || strchr("up", PQgetvalue(cols, 0, 2)[0]) == NULL) {
			PQclear(cols);
			cmd_error(
			    "constraint \"%s\" of %s is not a unique key: fix the row on node '%s' "
			    "(the next run retries it) or use keep=existing",
			    PQgetvalue(q, 0, 6), qtable, PQgetvalue(q, 0, 0));
			goto out;
		}
		for (i = 0; i < PQntuples(cols); i++) {
			char *idc = db_ident(c, PQgetvalue(cols, i, 0));
			char *lit = db_literal(c, PQgetvalue(cols, i, 0));

			buf_printf(&w, "%s%s = ($1::jsonb ->> %s)::%s", i ? " AND " : "", idc, lit,
			    PQgetvalue(cols, i, 1));
			free(idc);
			free(lit);
		}
		PQclear(cols);
		cond = pk_condition(c, qtable, "$2", err, sizeof(err));
		if (cond == NULL) {
			buf_free(&w);
			goto fail;
		}
		sql = xasprintf("WITH d AS (DELETE FROM %s WHERE %s AND NOT (%s) RETURNING 1) "
				"SELECT count(*) FROM d",
		    qtable, w.data, cond);
		buf_free(&w);
	}
	{
		const char *p[2] = { PQgetvalue(q, 0, 5), PQgetvalue(q, 0, 4) };
		char *n = db_value(c, sql, 2, p, err, sizeof(err));
		const char *pr[2] = { id,
			"keep incoming: colliding rows deleted on the target; "
			"applied by the next run" };

		if (n == NULL)
			goto fail;
		if (db_execp(ctx->meta,
			"UPDATE repctl.quarantine SET resolution = $2 WHERE id = $1::bigint", 2, pr,
			err, sizeof(err)) < 0) {
			free(n);
			goto fail;
		}
		printf(
		    "quarantined row %s: %s colliding row(s) deleted on node '%s'; the next run of "
		    "the sync applies the incoming row (repctl kick SYNC --wait)\n",
		    id, n, PQgetvalue(q, 0, 1));
		free(n);
	}
	rc = 0;
	goto out;
fail:
	cmd_error("conflicts resolve %s: %s\nnothing was changed", id, err);
out:
	PQclear(q);
	db_close(c);
	free(qtable);
	free(cond);
	free(sql);
	return rc;
}

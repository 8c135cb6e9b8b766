/*
 * quarantine.c - settle a quarantined row (`repctl conflicts resolve ID
 * keep=incoming|existing [--dry-run]`, and the web console).
 *
 * A row is quarantined when its target refused it for a reason of the
 * target's own data (another unique index, a check constraint): two nodes
 * inserted different rows with the same email, say.  The operator picks:
 *   keep=existing  the incoming row goes: it is deleted on the node it came
 *                  from, as an ordinary change, so the deletion replicates
 *                  everywhere and the quarantine is resolved;
 *   keep=incoming  the rows of the target that collide with it on the
 *                  violated unique index are deleted there, as an ordinary
 *                  change; the next run applies the incoming row and
 *                  resolves the quarantine.
 * Either way every node converges through the normal apply path, and the
 * choice is recorded.  --dry-run shows the rows that would be deleted and
 * changes nothing.
 *
 * Which rows collide is decided on the target by the violated index itself,
 * never by its column names alone: each key of the index (a column or an
 * expression such as lower(email), with the index's collation and its
 * operator class's equality operator) is evaluated on the incoming row
 * (built from its recorded values with jsonb_populate_record) and on each
 * target row, and only rows inside the index's predicate (a partial index:
 * WHERE deleted_at IS NULL) count, the incoming row's included: one outside
 * the predicate collides with nothing.  NULL keys never collide unless the
 * index says NULLS NOT DISTINCT.  A unique constraint (DEFERRABLE or not) is
 * found through its index; the target's row with the incoming row's primary
 * key is never a collider (the incoming row updates it).
 *
 * quarantine_resolve() (actions.h) is what the CLI handler
 * (cmd_quarantine.c) and the web console call; it writes what it did to the
 * FILE it is given and never exits or prints errors: its callers do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "buf.h"
#include "capture.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "parse.h"
#include "xmalloc.h"

/*
 * Over the table's primary key columns: *cond "k1 = (PARAM::jsonb->>'k1')::type
 * AND ..." (unqualified names) and, when pkjson is not NULL, *pkjson
 * "jsonb_build_object('k1', ALIAS.k1, ...)", the shape of a quarantined key.
 * 0, or -1 with a message in err.
 */
static int
pk_exprs(PGconn *c, const char *qtable, const char *json_param, const char *alias, char **cond,
    char **pkjson, char *err, size_t errlen)
{
	PGresult *r = capture_pk_columns(c, qtable, err, errlen);
	struct buf b = BUF_INIT, j = BUF_INIT;
	int i;

	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		snprintf(err, errlen, "%s has no primary key on this node", qtable);
		return -1;
	}
	buf_puts(&j, "pg_catalog.jsonb_build_object(");
	for (i = 0; i < PQntuples(r); i++) {
		char *id = db_ident(c, PQgetvalue(r, i, 0));
		char *lit = db_literal(c, PQgetvalue(r, i, 0));

		buf_printf(&b, "%s%s = (%s::jsonb ->> %s)::%s", i ? " AND " : "", id, json_param,
		    lit, PQgetvalue(r, i, 1));
		buf_printf(&j, "%s%s, %s.%s", i ? ", " : "", lit, alias ? alias : "", id);
		free(id);
		free(lit);
	}
	buf_putc(&j, ')');
	PQclear(r);
	*cond = buf_steal(&b);
	if (pkjson != NULL)
		*pkjson = buf_steal(&j);
	buf_free(&j);
	return 0;
}

static PGconn *
connect_node(const struct config *cfg, PGconn *meta, const char *name, char *err, size_t errlen)
{
	struct node n;
	PGconn *c = NULL;

	if (meta_node_get(meta, name, &n, err, errlen) == 0)
		c = node_connect(cfg, &n, err, errlen);
	else if (!err[0])
		snprintf(err, errlen, "node '%s' is not in the metadata", name);
	node_clear(&n);
	return c;
}

/* The violated unique index, as SQL evaluating it. */
struct uindex {
	char *def;    /* pg_get_indexdef: CREATE UNIQUE INDEX ... */
	char *pred;   /* its predicate, "true" for a full index */
	int partial;  /* it has a predicate */
	char *inkeys; /* "(k1) COLLATE c AS repctl_ik_1, ..." */
	char *match;  /* repctl_i.repctl_ik_1 OP ((k1) COLLATE c) AND ... */
	char *from;   /* "ONLY schema.table" or "schema.table" */
};

static void
uindex_free(struct uindex *u)
{
	free(u->def);
	free(u->pred);
	free(u->inkeys);
	free(u->match);
	free(u->from);
	memset(u, 0, sizeof(*u));
}

/*
 * Find the unique index behind constraint or index name con of qtable on c
 * and build the SQL that evaluates its keys and predicate.  0; 1 when it is
 * not a unique index (why in err, for the user); -1 on error.
 */
static int
uindex_load(
    PGconn *c, const char *qtable, const char *con, struct uindex *u, char *err, size_t errlen)
{
	const char *p[2] = { qtable, con };
	PGresult *r = NULL, *k = NULL;
	struct buf ik = BUF_INIT, m = BUF_INIT;
	int i, nnd, rc = -1;

	memset(u, 0, sizeof(*u));
	/* an index of that name, or the index of a constraint of that name */
	r = db_query(c,
	    "SELECT i.indexrelid::text, i.indisunique, "
	    "pg_catalog.pg_get_indexdef(i.indexrelid), "
	    "pg_catalog.pg_get_expr(i.indpred, i.indrelid, true), "
	    "coalesce(pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct', 'false'), "
	    "(SELECT t.relkind::text FROM pg_catalog.pg_class t WHERE t.oid = i.indrelid), "
	    "con.contype::text "
	    "FROM pg_catalog.pg_index i "
	    "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
	    "LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid "
	    "AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x') "
	    "WHERE i.indrelid = $1::regclass AND (ic.relname = $2 OR con.conname = $2) "
	    "ORDER BY ic.relname = $2 DESC LIMIT 1",
	    2, p, err, errlen);
	if (r == NULL)
		goto out;
	if (PQntuples(r) == 0) {
		PGresult *t = db_query(c,
		    "SELECT CASE contype WHEN 'c' THEN 'a check constraint' "
		    "WHEN 'f' THEN 'a foreign key' WHEN 'n' THEN 'a not-null constraint' "
		    "WHEN 't' THEN 'a constraint trigger' ELSE 'a constraint of type ' || "
		    "contype::text END FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass "
		    "AND conname = $2 LIMIT 1",
		    2, p, err, errlen);

		if (t == NULL)
			goto out;
		if (PQntuples(t) > 0)
			snprintf(err, errlen, "constraint \"%s\" of %s is %s, not a unique key",
			    con, qtable, PQgetvalue(t, 0, 0));
		else
			snprintf(err, errlen,
			    "%s has no unique index or constraint \"%s\" on the target (any more)",
			    qtable, con);
		PQclear(t);
		rc = 1;
		goto out;
	}
	if (PQgetvalue(r, 0, 1)[0] != 't') {
		snprintf(err, errlen,
		    "\"%s\" of %s is %s, not a unique key: keep=incoming only settles rows "
		    "refused by a unique index or constraint",
		    con, qtable,
		    strcmp(PQgetvalue(r, 0, 6), "x") == 0 ? "an exclusion constraint"
							  : "not a unique index");
		rc = 1;
		goto out;
	}
	u->def = xstrdup(PQgetvalue(r, 0, 2));
	u->partial = !PQgetisnull(r, 0, 3);
	u->pred = xstrdup(u->partial ? PQgetvalue(r, 0, 3) : "true");
	nnd = strcmp(PQgetvalue(r, 0, 4), "true") == 0;
	/* a unique index of a plain table covers its own rows, not its children's */
	u->from = xasprintf("%s%s", strcmp(PQgetvalue(r, 0, 5), "r") == 0 ? "ONLY " : "", qtable);
	{
		const char *pi[1] = { PQgetvalue(r, 0, 0) };

		/*
		 * Per key column (INCLUDE columns do not count): its expression as
		 * the index deparses it (the column name, or lower(email)), the
		 * index's collation for it, and the equality operator of its
		 * operator class (citext's, not text's, under the empty search_path).
		 */
		k = db_query(c,
		    "SELECT pg_catalog.pg_get_indexdef(i.indexrelid, n, true), "
		    "(SELECT pg_catalog.quote_ident(cn.nspname) || '.' || "
		    "pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co "
		    "JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace "
		    "WHERE co.oid = i.indcollation[n - 1]), "
		    "(SELECT 'OPERATOR(' || pg_catalog.quote_ident(onsp.nspname) || '.' || "
		    "o.oprname || ')' FROM pg_catalog.pg_opclass opc "
		    "JOIN pg_catalog.pg_amop am ON am.amopfamily = opc.opcfamily "
		    "AND am.amopmethod = opc.opcmethod AND am.amoplefttype = opc.opcintype "
		    "AND am.amoprighttype = opc.opcintype AND am.amopstrategy = 3 "
		    "JOIN pg_catalog.pg_operator o ON o.oid = am.amopopr "
		    "JOIN pg_catalog.pg_namespace onsp ON onsp.oid = o.oprnamespace "
		    "WHERE opc.oid = i.indclass[n - 1] LIMIT 1) "
		    "FROM pg_catalog.pg_index i, "
		    "LATERAL pg_catalog.generate_series(1, i.indnkeyatts) AS n "
		    "WHERE i.indexrelid = $1::oid ORDER BY n",
		    1, pi, err, errlen);
	}
	if (k == NULL)
		goto out;
	for (i = 0; i < PQntuples(k); i++) {
		char *key = PQgetisnull(k, i, 1)
		    ? xasprintf("(%s)", PQgetvalue(k, i, 0))
		    : xasprintf("((%s) COLLATE %s)", PQgetvalue(k, i, 0), PQgetvalue(k, i, 1));
		const char *op = PQgetisnull(k, i, 2) ? "=" : PQgetvalue(k, i, 2);

		buf_printf(&ik, "%s%s AS repctl_ik_%d", i ? ", " : "", key, i + 1);
		if (nnd)
			buf_printf(&m,
			    "%s(repctl_i.repctl_ik_%d %s %s OR (repctl_i.repctl_ik_%d IS NULL AND "
			    "%s IS NULL))",
			    i ? " AND " : "", i + 1, op, key, i + 1, key);
		else
			buf_printf(
			    &m, "%srepctl_i.repctl_ik_%d %s %s", i ? " AND " : "", i + 1, op, key);
		free(key);
	}
	if (PQntuples(k) == 0) {
		snprintf(err, errlen, "index \"%s\" of %s has no key columns", con, qtable);
		goto out;
	}
	u->inkeys = buf_steal(&ik);
	u->match = buf_steal(&m);
	rc = 0;
out:
	PQclear(r);
	PQclear(k);
	buf_free(&ik);
	buf_free(&m);
	if (rc != 0)
		uindex_free(u);
	return rc;
}

/*
 * Print the rows of r (key, row) indented to out; append them to rows (when
 * not NULL) as {"node": node, "key": KEY, "row": ROW}, comma separated.
 * Returns how many.
 */
static int
print_rows(FILE *out, struct buf *rows, const char *node, PGresult *r)
{
	int i;

	for (i = 0; i < PQntuples(r); i++) {
		fprintf(out, "  %s  %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		if (rows == NULL)
			continue;
		if (rows->len)
			buf_puts(rows, ", ");
		buf_puts(rows, "{\"node\": ");
		buf_json_str(rows, node);
		/* both are the server's jsonb text: JSON already */
		buf_printf(
		    rows, ", \"key\": %s, \"row\": %s}", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	}
	return PQntuples(r);
}

/*
 * resolve_existing and resolve_incoming return ACT_OK, ACT_REFUSED (err says
 * why), -1 (an error, err; nothing was changed) or RESOLVE_PARTIAL (err says
 * what was changed and what failed).
 */
#define RESOLVE_PARTIAL (-2)

/* keep=existing: delete the incoming row on its source (the delete replicates). */
static int
resolve_existing(const struct config *cfg, PGconn *meta, const char *id, PGresult *q, int dry,
    FILE *out, struct buf *rows, char *err, size_t errlen)
{
	const char *p[1] = { PQgetvalue(q, 0, 4) };
	const char *source = PQgetvalue(q, 0, 0);
	PGconn *c = NULL;
	PGresult *r = NULL;
	char *qtable = NULL, *cond = NULL, *pkjson = NULL, *sql = NULL;
	int rc = -1, intx = 0;

	c = connect_node(cfg, meta, source, err, errlen);
	if (c == NULL)
		goto out;
	qtable = db_qualified(c, PQgetvalue(q, 0, 2), PQgetvalue(q, 0, 3));
	if (pk_exprs(c, qtable, "$1", "repctl_t", &cond, &pkjson, err, errlen) < 0)
		goto out;
	if (dry)
		sql = xasprintf("SELECT %s::text, pg_catalog.to_jsonb(repctl_t)::text FROM %s AS "
				"repctl_t WHERE %s",
		    pkjson, qtable, cond);
	else
		sql = xasprintf("DELETE FROM %s AS repctl_t WHERE %s RETURNING %s::text, "
				"pg_catalog.to_jsonb(repctl_t)::text",
		    qtable, cond, pkjson);
	if (!dry) {
		/* the source commits only once the decision is recorded */
		intx = 1;
		if (db_begin(meta, err, errlen) < 0 || db_begin(c, err, errlen) < 0)
			goto out;
	}
	r = db_query(c, sql, 1, p, err, errlen);
	if (r == NULL)
		goto out;
	if (dry) {
		fprintf(out,
		    "quarantined row %s: keep=existing would delete %d row of %s on node '%s' "
		    "(the deletion would replicate)%s\n",
		    id, PQntuples(r), qtable, source, PQntuples(r) ? ":" : "");
		print_rows(out, rows, source, r);
		fprintf(out, "dry run: nothing was changed\n");
		rc = 0;
		goto out;
	}
	{
		const char *pr[2] = { id,
			"kept existing: the incoming row was deleted on its source" };

		if (db_execp(meta,
			"UPDATE repctl.quarantine SET resolved_at = now(), resolution = $2 "
			"WHERE id = $1::bigint",
			2, pr, err, errlen) < 0 ||
		    db_commit(c, err, errlen) < 0)
			goto out;
		intx = 0;
		if (db_commit(meta, err, errlen) < 0) {
			char why[ERRLEN];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen,
			    "conflicts resolve %s: the incoming row was deleted on node '%s' but "
			    "the decision could not be recorded: %s",
			    id, source, why);
			rc = RESOLVE_PARTIAL;
			goto out;
		}
	}
	fprintf(out,
	    "quarantined row %s: the incoming row %s was deleted on node '%s'; the deletion "
	    "replicates with the next runs\n",
	    id, PQgetvalue(q, 0, 4), source);
	print_rows(out, rows, source, r);
	rc = 0;
out:
	if (intx) {
		db_rollback(c);
		db_rollback(meta);
	}
	PQclear(r);
	db_close(c);
	free(qtable);
	free(cond);
	free(pkjson);
	free(sql);
	return rc;
}

/*
 * keep=incoming: delete the target's rows that collide with the incoming row
 * on the violated unique index.
 */
static int
resolve_incoming(const struct config *cfg, PGconn *meta, const char *id, PGresult *q, int dry,
    FILE *out, struct buf *rows, char *err, size_t errlen)
{
	const char *source = PQgetvalue(q, 0, 0), *target = PQgetvalue(q, 0, 1);
	const char *con = PQgetvalue(q, 0, 6);
	const char *p[2] = { PQgetvalue(q, 0, 5), PQgetvalue(q, 0, 4) };
	struct uindex u;
	PGconn *c = NULL;
	PGresult *r = NULL;
	char *qtable = NULL, *cond = NULL, *pkjson = NULL, *where = NULL, *sql = NULL;
	char *inside = NULL, *incoming = NULL;
	int rc = -1, n, intx = 0;

	memset(&u, 0, sizeof(u));
	if (PQgetisnull(q, 0, 6)) {
		snprintf(err, errlen,
		    "quarantined row %s was refused by a check on the target, not by another "
		    "row: fix the row on node '%s' (the next run retries it) or use "
		    "keep=existing",
		    id, source);
		return ACT_REFUSED;
	}
	if (PQgetisnull(q, 0, 5)) {
		snprintf(err, errlen,
		    "quarantined row %s has no recorded values to compare with the target's "
		    "rows: run its sync once (the row is retried and recorded) and resolve "
		    "again, or use keep=existing",
		    id);
		return ACT_REFUSED;
	}
	c = connect_node(cfg, meta, target, err, errlen);
	if (c == NULL)
		goto out;
	qtable = db_qualified(c, PQgetvalue(q, 0, 2), PQgetvalue(q, 0, 3));
	switch (uindex_load(c, qtable, con, &u, err, errlen)) {
	case 0: break;
	case 1: {
		char why[ERRLEN];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen,
		    "quarantined row %s: %s; fix the row on node '%s' (the next run retries "
		    "it) or use keep=existing",
		    id, why, source);
		rc = ACT_REFUSED;
		goto out;
	}
	default: goto out;
	}
	if (pk_exprs(c, qtable, "$2", "repctl_t", &cond, &pkjson, err, errlen) < 0)
		goto out;
	/* does the incoming row fall inside the index's predicate at all? */
	if (u.partial) {
		sql =
		    xasprintf("SELECT (%s) IS TRUE FROM pg_catalog.jsonb_populate_record(NULL::%s, "
			      "$1::jsonb) AS repctl_n",
			u.pred, qtable);
		inside = db_value(c, sql, 1, p, err, errlen);
		if (inside == NULL)
			goto out;
		free(sql);
		sql = NULL;
	}
	/*
	 * The target's rows inside the predicate, other than the incoming row's
	 * own key, whose index keys equal the incoming row's (which exist only
	 * when that row is inside the predicate too).  Column names in the
	 * index's expressions are unqualified: in repctl_i's subquery they are
	 * the incoming row's, outside it the target row's (repctl_i only has
	 * repctl_ik_N columns).
	 */
	incoming = xasprintf("(SELECT %s FROM pg_catalog.jsonb_populate_record(NULL::%s, "
			     "$1::jsonb) AS repctl_n WHERE (%s)) AS repctl_i",
	    u.inkeys, qtable, u.pred);
	where = xasprintf("(%s) AND NOT (%s) AND %s", u.pred, cond, u.match);
	if (dry)
		sql = xasprintf("SELECT %s::text, pg_catalog.to_jsonb(repctl_t)::text FROM %s AS "
				"repctl_t, %s WHERE %s ORDER BY 1",
		    pkjson, u.from, incoming, where);
	else
		sql =
		    xasprintf("WITH repctl_del AS (DELETE FROM %s AS repctl_t USING %s WHERE %s "
			      "RETURNING %s::text AS k, pg_catalog.to_jsonb(repctl_t)::text AS r) "
			      "SELECT k, r FROM repctl_del ORDER BY 1",
			u.from, incoming, where, pkjson);
	if (!dry) {
		/* the target commits only once the decision is recorded */
		intx = 1;
		if (db_begin(meta, err, errlen) < 0 || db_begin(c, err, errlen) < 0)
			goto out;
	}
	r = db_query(c, sql, 2, p, err, errlen);
	if (r == NULL)
		goto out;
	n = PQntuples(r);
	fprintf(out,
	    "quarantined row %s: incoming row %s from node '%s', refused on node '%s' by\n  %s\n",
	    id, PQgetvalue(q, 0, 4), source, target, u.def);
	if (inside != NULL && inside[0] != 't')
		fprintf(out,
		    "the incoming row is outside this index's predicate (WHERE %s): it collides "
		    "with no row on it\n",
		    u.pred);
	if (dry) {
		fprintf(out, "keep=incoming would delete %d colliding row(s) on node '%s'%s\n", n,
		    target, n ? ":" : "");
		print_rows(out, rows, target, r);
		fprintf(out, "dry run: nothing was changed\n");
		rc = 0;
		goto out;
	}
	{
		const char *pr[2] = { id,
			"keep incoming: colliding rows deleted on the target; "
			"applied by the next run" };

		if (db_execp(meta,
			"UPDATE repctl.quarantine SET resolution = $2 WHERE id = $1::bigint", 2, pr,
			err, errlen) < 0 ||
		    db_commit(c, err, errlen) < 0)
			goto out;
		intx = 0;
		if (db_commit(meta, err, errlen) < 0) {
			/* the delete is done: say so rather than "nothing was changed" */
			char why[ERRLEN];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen,
			    "conflicts resolve %s: %d colliding row(s) were deleted on node "
			    "'%s' but the decision could not be recorded: %s",
			    id, n, target, why);
			print_rows(out, rows, target, r);
			rc = RESOLVE_PARTIAL;
			goto out;
		}
	}
	fprintf(out, "%d colliding row(s) deleted on node '%s'%s\n", n, target, n ? ":" : "");
	print_rows(out, rows, target, r);
	fprintf(out, "the next run of sync '%s' applies the incoming row (repctl kick %s --wait)\n",
	    PQgetvalue(q, 0, 8), PQgetvalue(q, 0, 8));
	rc = 0;
out:
	if (intx) {
		db_rollback(c);
		db_rollback(meta);
	}
	uindex_free(&u);
	PQclear(r);
	db_close(c);
	free(qtable);
	free(cond);
	free(pkjson);
	free(where);
	free(incoming);
	free(sql);
	free(inside);
	return rc;
}

int
quarantine_resolve(const struct config *cfg, PGconn *meta, const char *id, const char *keep,
    int dry, FILE *out, struct buf *rows, char *err, size_t errlen)
{
	const char *p1[1] = { id };
	PGresult *q = NULL;
	long v;
	int r;

	err[0] = '\0';
	if (parse_long(id, 1, 0x7fffffffffffffffL, &v) < 0) {
		snprintf(
		    err, errlen, "'%s' is not a quarantine id; 'repctl conflicts' lists them", id);
		return ACT_INVALID;
	}
	if (keep == NULL || (strcmp(keep, "incoming") != 0 && strcmp(keep, "existing") != 0)) {
		snprintf(err, errlen,
		    "keep=%s: use keep=incoming (the refused row wins) or keep=existing (it is "
		    "dropped everywhere)",
		    keep ? keep : "");
		return ACT_INVALID;
	}
	q = db_query(meta,
	    "SELECT source, target, schema_name, table_name, pk::text, row_data::text, "
	    "constraint_name, resolved_at IS NOT NULL, sync FROM repctl.quarantine "
	    "WHERE id = $1::bigint",
	    1, p1, err, errlen);
	if (q == NULL)
		return ACT_ERROR;
	if (PQntuples(q) == 0) {
		snprintf(err, errlen, "no quarantined row %s; 'repctl conflicts' lists them", id);
		r = ACT_NOTFOUND;
	} else if (PQgetvalue(q, 0, 7)[0] == 't') {
		snprintf(err, errlen, "quarantined row %s is resolved already", id);
		r = ACT_REFUSED;
	} else {
		if (strcmp(keep, "existing") == 0)
			r = resolve_existing(cfg, meta, id, q, dry, out, rows, err, errlen);
		else
			r = resolve_incoming(cfg, meta, id, q, dry, out, rows, err, errlen);
		if (r == -1) {
			char why[ERRLEN];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(
			    err, errlen, "conflicts resolve %s: %s\nnothing was changed", id, why);
			r = ACT_ERROR;
		} else if (r == RESOLVE_PARTIAL) {
			r = ACT_ERROR;
		}
	}
	PQclear(q);
	return r;
}

/*
 * capture.c - install and remove change capture on a node.
 *
 * Where it sits: `add table` / `add all tables` call capture_install() on
 * the node for each table; the coordinator's sync runs (sync.c) read what
 * it records.  For each table we create, in schema repctl on the node:
 *
 *   s_<oid>      the shadow table: the primary key columns (same types),
 *                repctl_vv (version vector {node: counter}), repctl_txid
 *                (xid8 of the last writer), repctl_origin (NULL: local),
 *                repctl_changed_at (change time at the origin) and
 *                repctl_deleted (tombstone).  Indexed on repctl_txid, which
 *                is how a batch finds what changed.
 *   cap_<oid>()  one PL/pgSQL trigger function with the column lists
 *                compiled in (no dynamic SQL per statement).
 *   triggers     AFTER INSERT / UPDATE / DELETE FOR EACH STATEMENT with
 *                transition tables (one set-based upsert per statement, not
 *                one call per row) and BEFORE TRUNCATE (tombstones for every
 *                key about to vanish, so TRUNCATE replicates as deletes,
 *                CASCADE included), all ENABLE ALWAYS so they also fire
 *                under session_replication_role = replica.
 *
 * The trigger function is SECURITY DEFINER (with a pinned search_path): it
 * writes the shadow table as the role that installed the capture (the
 * replication role, owner of schema repctl), so the application's own
 * roles need no privilege on schema repctl to go on writing their tables.
 *
 * A local write bumps this node's counter in the row's vector, to the
 * larger of its old value plus one and the current time in microseconds:
 * a counter is then never handed out twice, even when the shadow table is
 * recreated (remove and add table again, offboard and onboard) or when
 * committed transactions are lost in a crash (synchronous_commit = off), so
 * a later edit is never taken for one the other nodes have already seen.
 * A write by
 * the applier (repctl.origin set) is skipped by the trigger: the applier
 * writes the shadow row itself with the merged vector, in the same
 * transaction.  Each writing transaction sends one NOTIFY repctl (identical
 * notifications in a transaction are folded into one by PostgreSQL).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "capture.h"
#include "db.h"
#include "sql_embed.h"
#include "xmalloc.h"

char *
capture_shadow(PGconn *conn, const char *schema, const char *table, char *err, size_t errlen)
{
	const char *params[2] = { schema, table };
	PGresult *r;
	char *s = NULL, *has;

	has = db_value(conn, "SELECT pg_catalog.to_regclass('repctl.captured') IS NOT NULL", 0,
	    NULL, err, errlen);
	if (has == NULL)
		return NULL;
	if (has[0] != 't') {
		free(has);
		err[0] = '\0';
		return NULL;
	}
	free(has);
	r = db_query(conn,
	    "SELECT shadow FROM repctl.captured WHERE schema_name = $1 AND table_name = $2", 2,
	    params, err, errlen);
	if (r == NULL)
		return NULL;
	if (PQntuples(r) == 1)
		s = xstrdup(PQgetvalue(r, 0, 0));
	else
		err[0] = '\0';
	PQclear(r);
	return s;
}

/* "n.k1, n.k2" with the given alias. */
static void
keylist(PGconn *c, struct buf *b, PGresult *pk, const char *alias)
{
	int i;

	for (i = 0; i < PQntuples(pk); i++) {
		char *q = db_ident(c, PQgetvalue(pk, i, 0));

		buf_printf(b, "%s%s%s%s", i ? ", " : "", alias ? alias : "", alias ? "." : "", q);
		free(q);
	}
}

/* Build the trigger function for one table. free(). */
static char *
trigger_function(PGconn *c, const char *func, const char *shadow, const char *qtable,
    const char *self, PGresult *pk)
{
	struct buf b = BUF_INIT, keys = BUF_INIT, nkeys = BUF_INIT, okeys = BUF_INIT,
		   tkeys = BUF_INIT, keyeq = BUF_INIT;
	char *lself = db_literal(c, self);
	const char *branch[4][2];
	char *sub[4];
	int i;

	keylist(c, &keys, pk, NULL);
	keylist(c, &nkeys, pk, "n");
	keylist(c, &okeys, pk, "o");
	keylist(c, &tkeys, pk, "t");
	for (i = 0; i < PQntuples(pk); i++) {
		char *q = db_ident(c, PQgetvalue(pk, i, 0));

		buf_printf(&keyeq, "%sn.%s = o.%s", i ? " AND " : "", q, q);
		free(q);
	}
	/* each branch yields (key columns..., deleted) */
	sub[0] = xasprintf("SELECT %s, false FROM repctl_new n", nkeys.data);
	/*
	 * An update that changed a key tombstones the old key.  Key columns are
	 * NOT NULL, so "=" is exact here, and it lets the planner hash the
	 * anti-join: IS NOT DISTINCT FROM would make a bulk UPDATE quadratic.
	 */
	sub[1] = xasprintf("SELECT %s, false FROM repctl_new n UNION ALL "
			   "SELECT %s, true FROM repctl_old o WHERE NOT EXISTS "
			   "(SELECT 1 FROM repctl_new n WHERE %s)",
	    nkeys.data, okeys.data, keyeq.data);
	sub[2] = xasprintf("SELECT %s, true FROM repctl_old o", okeys.data);
	/* TRUNCATE reads the table that fired (a partition truncated on its own) */
	sub[3] = xasprintf("SELECT %s, true FROM \x01 t", tkeys.data);
	(void)qtable;
	branch[0][0] = "IF TG_OP = 'INSERT'";
	branch[1][0] = "ELSIF TG_OP = 'UPDATE'";
	branch[2][0] = "ELSIF TG_OP = 'DELETE'";
	branch[3][0] = "ELSIF TG_OP = 'TRUNCATE'";
	for (i = 0; i < 4; i++)
		branch[i][1] = sub[i];

	buf_printf(&b,
	    "CREATE OR REPLACE FUNCTION repctl.%s() RETURNS trigger LANGUAGE plpgsql "
	    "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $repctl$\n"
	    "DECLARE tick bigint;\n"
	    "BEGIN\n"
	    "  IF pg_catalog.current_setting('repctl.origin', true) <> '' THEN RETURN NULL; END IF;\n"
	    "  tick := (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint;\n",
	    func);
	for (i = 0; i < 4; i++) {
		struct buf st = BUF_INIT;

		buf_printf(&st,
		    "INSERT INTO repctl.%s AS s (%s, repctl_deleted, repctl_vv, repctl_txid, "
		    "repctl_origin, repctl_changed_at) "
		    "SELECT x.*, jsonb_build_object(%s, %s), pg_current_xact_id(), NULL, "
		    "clock_timestamp() FROM (%s) x "
		    "ON CONFLICT (%s) DO UPDATE SET repctl_vv = s.repctl_vv || "
		    "jsonb_build_object(%s, greatest(coalesce((s.repctl_vv ->> %s)::bigint, 0) + 1, "
		    "%s)), "
		    "repctl_txid = EXCLUDED.repctl_txid, repctl_origin = NULL, repctl_dot = NULL, "
		    "repctl_changed_at = EXCLUDED.repctl_changed_at, "
		    "repctl_deleted = EXCLUDED.repctl_deleted",
		    shadow, keys.data, lself, i == 3 ? "$1" : "tick", branch[i][1], keys.data,
		    lself, lself, i == 3 ? "$1" : "tick");
		if (i < 3) {
			buf_printf(&b, "  %s THEN\n    %s;\n", branch[i][0], st.data);
		} else {
			/*
			 * dynamic: % in names doubled for format(), which puts the
			 * firing table where the \x01 marker is (no name holds a \x01)
			 */
			struct buf fmt = BUF_INIT;
			const char *ch;

			for (ch = st.data; *ch; ch++)
				if (*ch == '%')
					buf_puts(&fmt, "%%");
				else if (*ch == '\x01')
					buf_puts(&fmt, "%I.%I");
				else
					buf_putc(&fmt, *ch);
			buf_printf(&b,
			    "  %s THEN\n    EXECUTE pg_catalog.format($repctl_q$%s$repctl_q$, "
			    "TG_TABLE_SCHEMA, TG_TABLE_NAME) USING tick;\n",
			    branch[i][0], fmt.data);
			buf_free(&fmt);
		}
		buf_free(&st);
	}
	buf_puts(&b,
	    "  END IF;\n"
	    "  PERFORM pg_notify('repctl', '');\n"
	    "  RETURN NULL;\n"
	    "END\n$repctl$");
	for (i = 0; i < 4; i++)
		free(sub[i]);
	buf_free(&keys);
	buf_free(&nkeys);
	buf_free(&okeys);
	buf_free(&tkeys);
	buf_free(&keyeq);
	free(lself);
	return buf_steal(&b);
}

PGresult *
capture_pk_columns(PGconn *c, const char *rel, char *err, size_t errlen)
{
	const char *params[1] = { rel };

	return db_query(c,
	    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
	    "a.attcollation <> 0 FROM pg_catalog.pg_index i "
	    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
	    "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	    "WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.ord",
	    1, params, err, errlen);
}

int
capture_install(
    PGconn *c, const char *self, const char *schema, const char *table, char *err, size_t errlen)
{
	const char *params[5];
	char *qtable = db_qualified(c, schema, table);
	char *relid = NULL, *shadow = NULL, *func = NULL, *fsql = NULL, *existing = NULL;
	PGresult *pk = NULL, *r;
	struct buf sql = BUF_INIT, keys = BUF_INIT, arr = BUF_INIT;
	int i, rc = -1;
	static const char *const trig[4][2] = {
		{ "repctl_capture_ins", "AFTER INSERT ON %s REFERENCING NEW TABLE AS repctl_new" },
		{ "repctl_capture_upd",
		    "AFTER UPDATE ON %s REFERENCING OLD TABLE AS repctl_old NEW TABLE AS repctl_new" },
		{ "repctl_capture_del", "AFTER DELETE ON %s REFERENCING OLD TABLE AS repctl_old" },
		{ "repctl_capture_trunc", "BEFORE TRUNCATE ON %s" },
	};

	if (db_begin(c, err, errlen) < 0)
		goto out;
	if (db_exec(c, sql_get("node_schema.sql"), err, errlen) < 0)
		goto fail;
	params[0] = schema;
	params[1] = table;
	relid = db_value(c,
	    "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	    "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
	    2, params, err, errlen);
	if (relid == NULL) {
		snprintf(err, errlen, "table %s does not exist", qtable);
		goto fail;
	}
	pk = capture_pk_columns(c, qtable, err, errlen);
	if (pk == NULL)
		goto fail;
	if (PQntuples(pk) == 0) {
		snprintf(err, errlen, "table %s has no primary key", qtable);
		goto fail;
	}
	keylist(c, &keys, pk, NULL);
	buf_putc(&arr, '{');
	for (i = 0; i < PQntuples(pk); i++) {
		buf_printf(&arr, "%s", i ? "," : "");
		buf_json_str(&arr, PQgetvalue(pk, i, 0));
	}
	buf_putc(&arr, '}');
	existing = capture_shadow(c, schema, table, err, errlen);
	shadow = existing ? xstrdup(existing) : xasprintf("s_%s", relid);
	func = xasprintf("cap_%s", shadow + 2);
	if (existing == NULL) {
		char *qshadow = db_ident(c, shadow);

		buf_printf(&sql,
		    "CREATE TABLE repctl.%s AS SELECT %s FROM %s WITH NO DATA;\n"
		    "ALTER TABLE repctl.%s ADD COLUMN repctl_vv jsonb NOT NULL DEFAULT '{}', "
		    "ADD COLUMN repctl_txid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(), "
		    "ADD COLUMN repctl_origin text, "
		    "ADD COLUMN repctl_changed_at timestamptz NOT NULL DEFAULT "
		    "pg_catalog.clock_timestamp(), "
		    "ADD COLUMN repctl_deleted boolean NOT NULL DEFAULT false, "
		    "ADD PRIMARY KEY (%s);\n"
		    "CREATE INDEX ON repctl.%s (repctl_txid);\n",
		    qshadow, keys.data, qtable, qshadow, keys.data, qshadow);
		free(qshadow);
	}
	{
		/*
		 * repctl_dot: the node whose counter names this version when it is
		 * not its origin (a conflict decided on a node is a new version of
		 * that node's); NULL for a local change.  Added to older shadows.
		 */
		char *qshadow = db_ident(c, shadow);

		buf_printf(&sql,
		    "ALTER TABLE repctl.%s ADD COLUMN IF NOT EXISTS repctl_dot text;\n", qshadow);
		free(qshadow);
	}
	fsql = trigger_function(c, func, shadow, qtable, self, pk);
	buf_puts(&sql, fsql);
	buf_puts(&sql, ";\n");
	for (i = 0; i < 4; i++) {
		buf_printf(&sql, "DROP TRIGGER IF EXISTS %s ON %s;\nCREATE TRIGGER %s ", trig[i][0],
		    qtable, trig[i][0]);
		buf_printf(&sql, trig[i][1], qtable);
		buf_printf(&sql,
		    " FOR EACH STATEMENT EXECUTE FUNCTION repctl.%s();\n"
		    "ALTER TABLE %s ENABLE ALWAYS TRIGGER %s;\n",
		    func, qtable, trig[i][0]);
	}
	if (db_exec(c, sql.data, err, errlen) < 0)
		goto fail;
	/*
	 * A partitioned table: the same triggers on every partition, and (as a
	 * superuser) an event trigger for the partitions created later.
	 */
	params[0] = relid;
	params[1] = func;
	r = db_query(
	    c, "SELECT repctl.capture_partitions($1::oid::regclass, $2)", 2, params, err, errlen);
	if (r == NULL)
		goto fail;
	PQclear(r);
	r = db_query(c,
	    "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_roles u "
	    "ON u.rolname = current_user WHERE c.oid = $1::oid AND c.relkind = 'p' AND u.rolsuper "
	    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger "
	    "WHERE evtname = 'repctl_partitions')",
	    1, params, err, errlen);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 1 &&
	    db_exec(c,
		"CREATE EVENT TRIGGER repctl_partitions ON ddl_command_end WHEN TAG IN "
		"('CREATE TABLE', 'ALTER TABLE') EXECUTE FUNCTION repctl.capture_new_partitions()",
		err, errlen) < 0) {
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	params[0] = schema;
	params[1] = table;
	params[2] = shadow;
	params[3] = arr.data;
	params[4] = self;
	r = db_query(c,
	    "INSERT INTO repctl.captured (schema_name, table_name, shadow, pk_columns, self) "
	    "VALUES ($1, $2, $3, $4::text[], $5) ON CONFLICT (schema_name, table_name) DO UPDATE "
	    "SET pk_columns = EXCLUDED.pk_columns, self = EXCLUDED.self",
	    5, params, err, errlen);
	if (r == NULL)
		goto fail;
	PQclear(r);
	if (db_commit(c, err, errlen) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	db_rollback(c);
out:
	PQclear(pk);
	buf_free(&sql);
	buf_free(&keys);
	buf_free(&arr);
	free(qtable);
	free(relid);
	free(shadow);
	free(existing);
	free(func);
	free(fsql);
	return rc;
}

/* SQL that drops the capture of one table (inside a transaction). */
static int
drop_one(
    PGconn *c, const char *schema, const char *table, const char *shadow, char *err, size_t errlen)
{
	const char *params[2] = { schema, table };
	char *qshadow = db_ident(c, shadow);
	char *qfunc = NULL, *sql;
	char *exists;
	int rc;

	exists = db_value(c,
	    "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) "
	    "IS NOT NULL",
	    2, params, err, errlen);
	if (exists == NULL)
		return -1;
	{
		char *f = xasprintf("cap_%s", shadow + 2);

		qfunc = db_ident(c, f);
		free(f);
	}
	if (exists[0] == 't') {
		char *qtable = db_qualified(c, schema, table);

		sql = xasprintf(
		    "DROP TRIGGER IF EXISTS repctl_capture_ins ON %s;"
		    "DROP TRIGGER IF EXISTS repctl_capture_upd ON %s;"
		    "DROP TRIGGER IF EXISTS repctl_capture_del ON %s;"
		    "DROP TRIGGER IF EXISTS repctl_capture_trunc ON %s;"
		    "DROP FUNCTION IF EXISTS repctl.%s() CASCADE;" /* partitions' triggers */
		    "DROP TABLE IF EXISTS repctl.%s;",
		    qtable, qtable, qtable, qtable, qfunc, qshadow);
		free(qtable);
	} else {
		sql = xasprintf("DROP FUNCTION IF EXISTS repctl.%s() CASCADE;"
				"DROP TABLE IF EXISTS repctl.%s;",
		    qfunc, qshadow);
	}
	rc = db_exec(c, sql, err, errlen);
	if (rc == 0)
		rc = db_execp(c,
		    "DELETE FROM repctl.captured WHERE schema_name = $1 AND table_name = $2", 2,
		    params, err, errlen);
	free(sql);
	free(exists);
	free(qshadow);
	free(qfunc);
	return rc;
}

int
capture_remove(PGconn *c, const char *schema, const char *table, char *err, size_t errlen)
{
	char *shadow;

	err[0] = '\0';
	shadow = capture_shadow(c, schema, table, err, errlen);
	if (shadow == NULL)
		return err[0] ? -1 : 0;
	if (db_begin(c, err, errlen) < 0 || drop_one(c, schema, table, shadow, err, errlen) < 0 ||
	    db_commit(c, err, errlen) < 0) {
		db_rollback(c);
		free(shadow);
		return -1;
	}
	free(shadow);
	return 0;
}

int
capture_remove_all(PGconn *c, char *err, size_t errlen)
{
	PGresult *r;
	char *has = db_value(c, "SELECT pg_catalog.to_regclass('repctl.captured') IS NOT NULL", 0,
	    NULL, err, errlen);
	int i;

	if (has == NULL)
		return -1;
	if (has[0] != 't') {
		free(has);
		return 0;
	}
	free(has);
	if (db_begin(c, err, errlen) < 0)
		return -1;
	r = db_query(
	    c, "SELECT schema_name, table_name, shadow FROM repctl.captured", 0, NULL, err, errlen);
	if (r == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r); i++) {
		if (drop_one(c, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), err,
			errlen) < 0) {
			PQclear(r);
			goto fail;
		}
	}
	PQclear(r);
	if (db_exec(c, "DROP SCHEMA repctl CASCADE", err, errlen) < 0 ||
	    db_commit(c, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	db_rollback(c);
	return -1;
}

/*
 * cmd_compare.c - compare HERD|SYNC [--table=T]: do the nodes hold the same
 * rows?  repair HERD|SYNC --from NODE [--table=T]: make them hold NODE's.
 *
 * compare, per table, among the nodes that registered it (for a sync: its
 * nodes; for a herd: every node with the table), each node read in one
 * REPEATABLE READ snapshot:
 *
 *   1. one ordered checksum of the whole table per node: the row count and
 *      md5 over md5(row) in primary-key order (columns by name, so column
 *      order does not matter).  Equal everywhere: done, one query per node.
 *   2. otherwise split the key range into up to 16 ranges by row count (key
 *      boundaries taken from the node with the most rows in the range, so
 *      the same key values bound the range on every node), checksum each
 *      range on each node, and narrow into the differing ranges only, until
 *      a range holds at most 64 rows;
 *   3. there, read key and md5(row) from each node and name every key
 *      missing on a node or whose row differs.
 *
 * Key text columns are ordered and compared with COLLATE "C", so nodes with
 * different collations still agree on the ranges.
 *
 * Then, on each node, the constraints the apply (session_replication_role =
 * replica) does not get checked by PostgreSQL: the orphan rows of every
 * foreign key whose child is a compared table, and the duplicated values of
 * every DEFERRABLE unique constraint of those tables (run_integrity).
 *
 * Exit 0 when every table is equal and every constraint holds, 1 when any
 * key differs, a constraint is violated (or a node cannot be read).
 *
 * repair takes NODE's version of exactly the differing keys through the
 * normal change path, so the apply is logged and versioned like any other
 * change: on NODE, in one transaction (session_replication_role = replica,
 * so user triggers do not fire; the capture triggers are ENABLE ALWAYS):
 *
 *   - a key NODE has: UPDATE t SET key = key WHERE key IN (...), which fires
 *     capture and bumps NODE's counter in the key's version vector, so
 *     NODE's version dominates what the other nodes hold;
 *   - a key NODE lacks: a tombstone in NODE's shadow table, written by the
 *     very statement capture's DELETE trigger runs (NODE's counter bumped,
 *     deleted = true), so the other nodes delete the row.
 *
 * then it runs the syncs involved (the sync, or every active sync of the
 * herd, round after round until one writes nothing, so a change crosses a
 * hub), and compares again.  A node that changed one of those keys
 * meanwhile, without having seen NODE's version, makes it a true conflict,
 * decided by the sync's strategy and logged like any other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "capture.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "parse.h"
#include "sync.h"
#include "xmalloc.h"

#define FANOUT 16 /* ranges a differing range is split into */
#define LEAF 64   /* rows per node at most, below which keys are compared one by one */
#define MAXDEPTH 40

struct cnode {
	char *name;
	PGconn *c;
};

struct ktable {
	char *schema, *table, *qtable;
	char *display; /* schema.table, quoted only where needed */
	int *nodes;    /* indexes into cmp.nodes */
	int nn;
	char **kcol, **ktype; /* quoted column, type */
	int *kcoll;           /* collatable */
	int nk;
	char *order;   /* t.k1 COLLATE "C", t.k2 */
	char *rowhash; /* md5(ROW(t.a, t.b, ...)::text) */
	char *keyjson; /* jsonb_build_object('k1', t.k1, ...)::text */
	char *keytext; /* t.k1::text AS repctl_k0, ... */
	int ndiff;
	long rows; /* rows on the first node, for the summary */
	int failed;
};

struct diff {
	int table;
	char *keyjson;
	char **keytext; /* nk */
	char **hash;    /* per table node: md5 of the row, NULL when missing */
};

struct cmp {
	struct cli_ctx *ctx;
	struct node_pool *pool;
	struct cnode *nodes;
	int nn;
	struct ktable *t;
	int nt;
	struct diff *d;
	int nd;
	long checksums;
	int quiet; /* repair's second compare: summary only */
};

static int
cmp_node(struct cmp *c, const char *name)
{
	int i;

	for (i = 0; i < c->nn; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return i;
	c->nodes = xrealloc(c->nodes, sizeof(*c->nodes) * (size_t)(c->nn + 1));
	c->nodes[c->nn].name = xstrdup(name);
	c->nodes[c->nn].c = NULL;
	return c->nn++;
}

static void
cmp_free(struct cmp *c)
{
	int i, j;

	for (i = 0; i < c->nd; i++) {
		struct diff *d = &c->d[i];

		free(d->keyjson);
		for (j = 0; j < c->t[d->table].nk; j++)
			free(d->keytext[j]);
		free(d->keytext);
		for (j = 0; j < c->t[d->table].nn; j++)
			free(d->hash[j]);
		free(d->hash);
	}
	free(c->d);
	for (i = 0; i < c->nt; i++) {
		struct ktable *t = &c->t[i];

		free(t->schema);
		free(t->table);
		free(t->qtable);
		free(t->display);
		free(t->nodes);
		for (j = 0; j < t->nk; j++) {
			free(t->kcol[j]);
			free(t->ktype[j]);
		}
		free(t->kcol);
		free(t->ktype);
		free(t->kcoll);
		free(t->order);
		free(t->rowhash);
		free(t->keyjson);
		free(t->keytext);
	}
	free(c->t);
	for (i = 0; i < c->nn; i++)
		free(c->nodes[i].name);
	free(c->nodes);
	memset(c, 0, sizeof(*c));
}

/*
 * The tables to compare and their nodes: a sync's tables among its nodes,
 * or a herd's among every node that registered them.  *is_sync tells which.
 */
static int
load_scope(struct cmp *c, const char *name, const char *only, int *is_sync)
{
	char err[ERRLEN];
	char *oschema = NULL, *otable = NULL;
	const char *p[3];
	PGresult *r;
	int i, e;

	if (only && parse_qualified(only, &oschema, &otable, err, sizeof(err)) < 0) {
		cmd_error("--table=%s: %s", only, err);
		return -1;
	}
	e = meta_exists(
	    c->ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", name, err, sizeof(err));
	if (e < 0) {
		cmd_error("%s", err);
		goto fail;
	}
	*is_sync = e;
	if (!e) {
		e = meta_exists(c->ctx->meta, "SELECT 1 FROM repctl.herd WHERE name = $1", name,
		    err, sizeof(err));
		if (e != 1) {
			if (e < 0)
				cmd_error("%s", err);
			else
				cmd_error("no sync or herd '%s'\nhint: 'repctl list syncs' and "
					  "'repctl list herds' show them",
				    name);
			goto fail;
		}
	}
	p[0] = name;
	p[1] = oschema;
	p[2] = otable;
	r = db_query(c->ctx->meta,
	    *is_sync ? "SELECT t.schema_name, t.table_name, t.node, "
		       "format('%I.%I', t.schema_name, t.table_name) FROM repctl.sync s "
		       "JOIN repctl.sync_node sn ON sn.sync = s.name "
		       "JOIN repctl.herd_table t ON t.herd = s.herd AND t.node = sn.node "
		       "WHERE s.name = $1 AND ($2::text IS NULL OR (t.schema_name = $2 AND "
		       "t.table_name = $3)) ORDER BY 1, 2, sn.ord"
		     : "SELECT t.schema_name, t.table_name, t.node, "
		       "format('%I.%I', t.schema_name, t.table_name) FROM repctl.herd_table t "
		       "WHERE t.herd = $1 AND ($2::text IS NULL OR (t.schema_name = $2 AND "
		       "t.table_name = $3)) ORDER BY 1, 2, 3",
	    3, p, err, sizeof(err));
	if (r == NULL) {
		cmd_error("%s", err);
		goto fail;
	}
	for (i = 0; i < PQntuples(r);) {
		struct ktable *t;
		int j, n = 0;

		for (j = i;
		     j < PQntuples(r) && strcmp(PQgetvalue(r, j, 0), PQgetvalue(r, i, 0)) == 0 &&
		     strcmp(PQgetvalue(r, j, 1), PQgetvalue(r, i, 1)) == 0;
		     j++)
			n++;
		if (n >= 2) {
			c->t = xrealloc(c->t, sizeof(*c->t) * (size_t)(c->nt + 1));
			t = &c->t[c->nt++];
			memset(t, 0, sizeof(*t));
			t->schema = xstrdup(PQgetvalue(r, i, 0));
			t->table = xstrdup(PQgetvalue(r, i, 1));
			t->display = xstrdup(PQgetvalue(r, i, 3));
			t->nodes = xcalloc((size_t)n, sizeof(int));
			for (j = 0; j < n; j++)
				t->nodes[t->nn++] = cmp_node(c, PQgetvalue(r, i + j, 2));
		}
		i += n;
	}
	PQclear(r);
	if (c->nt == 0) {
		if (only)
			cmd_error(
			    "table %s is not registered on two or more nodes of %s '%s'\nhint: "
			    "'repctl list tables' shows the tables per node",
			    only, *is_sync ? "sync" : "herd", name);
		else
			cmd_error(
			    "%s '%s' has no table registered on two or more nodes: nothing to "
			    "compare\nhint: 'repctl list tables' shows the tables per node",
			    *is_sync ? "sync" : "herd", name);
		goto fail;
	}
	free(oschema);
	free(otable);
	return 0;
fail:
	free(oschema);
	free(otable);
	return -1;
}

/* Key columns, their types, and the row hash of one table, read on its first node. */
static int
table_setup(struct cmp *c, struct ktable *t, char *err, size_t errlen)
{
	PGconn *conn = c->nodes[t->nodes[0]].c;
	const char *p[1];
	PGresult *r;
	struct buf order = BUF_INIT, row = BUF_INIT, kj = BUF_INIT, kt = BUF_INIT;
	int i;

	t->qtable = db_qualified(conn, t->schema, t->table);
	p[0] = t->qtable;
	r = capture_pk_columns(conn, p[0], err, errlen);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		snprintf(err, errlen, "no primary key on node '%s'", c->nodes[t->nodes[0]].name);
		return -1;
	}
	t->nk = PQntuples(r);
	t->kcol = xcalloc((size_t)t->nk, sizeof(char *));
	t->ktype = xcalloc((size_t)t->nk, sizeof(char *));
	t->kcoll = xcalloc((size_t)t->nk, sizeof(int));
	buf_puts(&kj, "jsonb_build_object(");
	for (i = 0; i < t->nk; i++) {
		char *lit = db_literal(conn, PQgetvalue(r, i, 0));

		t->kcol[i] = db_ident(conn, PQgetvalue(r, i, 0));
		t->ktype[i] = xstrdup(PQgetvalue(r, i, 1));
		t->kcoll[i] = PQgetvalue(r, i, 2)[0] == 't';
		buf_printf(&order, "%st.%s%s", i ? ", " : "", t->kcol[i],
		    t->kcoll[i] ? " COLLATE \"C\"" : "");
		buf_printf(&kj, "%s%s, t.%s", i ? ", " : "", lit, t->kcol[i]);
		buf_printf(&kt, "%st.%s::text AS repctl_k%d", i ? ", " : "", t->kcol[i], i);
		free(lit);
	}
	buf_puts(&kj, ")::text");
	PQclear(r);
	r = db_query(conn,
	    "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND "
	    "attnum > 0 AND NOT attisdropped ORDER BY attname COLLATE \"C\"",
	    1, p, err, errlen);
	if (r == NULL) {
		buf_free(&order);
		buf_free(&kj);
		buf_free(&kt);
		return -1;
	}
	buf_puts(&row, "md5(ROW(");
	for (i = 0; i < PQntuples(r); i++) {
		char *q = db_ident(conn, PQgetvalue(r, i, 0));

		buf_printf(&row, "%st.%s", i ? ", " : "", q);
		free(q);
	}
	buf_puts(&row, ")::text)");
	PQclear(r);
	t->order = buf_steal(&order);
	t->rowhash = buf_steal(&row);
	t->keyjson = buf_steal(&kj);
	t->keytext = buf_steal(&kt);
	return 0;
}

/* " WHERE (key) >= (lo) AND (key) < (hi)" with the bounds as parameters. */
static char *
range_where(const struct ktable *t, char **lo, char **hi, const char **params, int *np)
{
	struct buf w = BUF_INIT;
	int b, i;

	for (b = 0; b < 2; b++) {
		char **v = b ? hi : lo;

		if (v == NULL)
			continue;
		buf_puts(&w, w.len ? " AND (" : " WHERE (");
		for (i = 0; i < t->nk; i++)
			buf_printf(&w, "%st.%s%s", i ? ", " : "", t->kcol[i],
			    t->kcoll[i] ? " COLLATE \"C\"" : "");
		buf_printf(&w, ") %s (", b ? "<" : ">=");
		for (i = 0; i < t->nk; i++) {
			params[*np] = v[i];
			(*np)++;
			buf_printf(&w, "%s$%d::%s%s", i ? ", " : "", *np, t->ktype[i],
			    t->kcoll[i] ? " COLLATE \"C\"" : "");
		}
		buf_putc(&w, ')');
	}
	return w.len ? buf_steal(&w) : xstrdup("");
}

/* Read and compare the rows of one range key by key. */
static int
compare_leaf(struct cmp *c, int ti, char **lo, char **hi)
{
	struct ktable *t = &c->t[ti];
	char err[ERRLEN];
	const char *params[128];
	int np = 0, n, i, j;
	char *where = range_where(t, lo, hi, params, &np);
	char *sql = xasprintf("SELECT %s, %s, %s FROM %s t%s ORDER BY %s", t->keyjson, t->rowhash,
	    t->keytext, t->qtable, where, t->order);
	PGresult **res = xcalloc((size_t)t->nn, sizeof(PGresult *));
	/* groups of equal keys, in the order first seen */
	struct grp {
		const char *key;
		int row0, node0; /* where its key texts are */
		const char **hash;
	} *g = NULL;
	int ng = 0, rc = -1;

	for (n = 0; n < t->nn; n++) {
		res[n] = db_query(c->nodes[t->nodes[n]].c, sql, np, params, err, sizeof(err));
		if (res[n] == NULL) {
			cmd_error("table %s on node '%s': %s", t->display,
			    c->nodes[t->nodes[n]].name, err);
			goto out;
		}
		for (i = 0; i < PQntuples(res[n]); i++) {
			const char *key = PQgetvalue(res[n], i, 0);

			for (j = ng - 1; j >= 0; j--)
				if (strcmp(g[j].key, key) == 0)
					break;
			if (j < 0) {
				g = xrealloc(g, sizeof(*g) * (size_t)(ng + 1));
				g[ng].key = key;
				g[ng].row0 = i;
				g[ng].node0 = n;
				g[ng].hash = xcalloc((size_t)t->nn, sizeof(char *));
				j = ng++;
			}
			g[j].hash[n] = PQgetvalue(res[n], i, 1);
		}
	}
	for (j = 0; j < ng; j++) {
		int same = 1;
		struct diff *d;

		for (n = 0; n < t->nn && same; n++)
			same = g[j].hash[n] && strcmp(g[j].hash[n], g[j].hash[0]) == 0;
		if (same)
			continue;
		c->d = xrealloc(c->d, sizeof(*c->d) * (size_t)(c->nd + 1));
		d = &c->d[c->nd++];
		d->table = ti;
		d->keyjson = xstrdup(g[j].key);
		d->keytext = xcalloc((size_t)t->nk, sizeof(char *));
		for (i = 0; i < t->nk; i++)
			d->keytext[i] = xstrdup(PQgetvalue(res[g[j].node0], g[j].row0, 2 + i));
		d->hash = xcalloc((size_t)t->nn, sizeof(char *));
		for (n = 0; n < t->nn; n++)
			d->hash[n] = g[j].hash[n] ? xstrdup(g[j].hash[n]) : NULL;
		t->ndiff++;
	}
	rc = 0;
out:
	for (j = 0; j < ng; j++)
		free(g[j].hash);
	free(g);
	for (n = 0; n < t->nn; n++)
		PQclear(res[n]);
	free(res);
	free(sql);
	free(where);
	return rc;
}

static void
free_bounds(char ***b, int nb, int nk)
{
	int i, j;

	for (i = 0; i < nb; i++) {
		for (j = 0; j < nk; j++)
			free(b[i][j]);
		free(b[i]);
	}
	free(b);
}

/* Compare one key range [lo, hi) of table ti (NULL bounds: unbounded). */
static int
compare_range(struct cmp *c, int ti, char **lo, char **hi, int depth)
{
	struct ktable *t = &c->t[ti];
	char err[ERRLEN];
	const char *params[128];
	int np = 0, n, i, all_same = 1, most = 0, rc = -1, nb = 0;
	long maxc = 0;
	char *where = range_where(t, lo, hi, params, &np);
	char *sql = xasprintf(
	    "SELECT count(*), md5(coalesce(string_agg(%s, '' ORDER BY %s), '')) FROM %s t%s",
	    t->rowhash, t->order, t->qtable, where);
	char **sums = xcalloc((size_t)t->nn, sizeof(char *));
	char ***bounds = NULL;

	for (n = 0; n < t->nn; n++) {
		PGresult *r = db_query(c->nodes[t->nodes[n]].c, sql, np, params, err, sizeof(err));
		long cnt;

		if (r == NULL) {
			cmd_error("table %s on node '%s': %s", t->display,
			    c->nodes[t->nodes[n]].name, err);
			goto out;
		}
		c->checksums++;
		cnt = atol(PQgetvalue(r, 0, 0));
		sums[n] = xasprintf("%ld:%s", cnt, PQgetvalue(r, 0, 1));
		PQclear(r);
		if (depth == 0 && n == 0)
			t->rows = cnt;
		if (cnt > maxc) {
			maxc = cnt;
			most = n;
		}
		if (strcmp(sums[n], sums[0]) != 0)
			all_same = 0;
	}
	if (all_same) {
		rc = 0;
		goto out;
	}
	if (maxc <= LEAF || depth >= MAXDEPTH) {
		rc = compare_leaf(c, ti, lo, hi);
		goto out;
	}
	/* split by row count on the node holding the most rows in this range */
	{
		char step[24];
		char *bsql;
		PGresult *r;
		const char *bp[129];

		snprintf(step, sizeof(step), "%ld", (maxc + FANOUT - 1) / FANOUT);
		for (i = 0; i < np; i++)
			bp[i] = params[i];
		bp[np] = step;
		{
			struct buf cols = BUF_INIT;

			for (i = 0; i < t->nk; i++)
				buf_printf(&cols, "%sx.repctl_k%d", i ? ", " : "", i);
			bsql =
			    xasprintf("SELECT %s FROM (SELECT %s, row_number() OVER (ORDER BY %s) "
				      "AS repctl_rn FROM %s t%s) x WHERE x.repctl_rn > 1 AND "
				      "(x.repctl_rn - 1) %% $%d = 0 ORDER BY x.repctl_rn",
				cols.data, t->keytext, t->order, t->qtable, where, np + 1);
			buf_free(&cols);
		}
		r = db_query(c->nodes[t->nodes[most]].c, bsql, np + 1, bp, err, sizeof(err));
		free(bsql);
		if (r == NULL) {
			cmd_error("table %s on node '%s': %s", t->display,
			    c->nodes[t->nodes[most]].name, err);
			goto out;
		}
		nb = PQntuples(r);
		bounds = xcalloc((size_t)nb + 1, sizeof(char **));
		for (i = 0; i < nb; i++) {
			int k;

			bounds[i] = xcalloc((size_t)t->nk, sizeof(char *));
			for (k = 0; k < t->nk; k++)
				bounds[i][k] = xstrdup(PQgetvalue(r, i, k));
		}
		PQclear(r);
	}
	if (nb == 0) {
		rc = compare_leaf(c, ti, lo, hi);
		goto out;
	}
	for (i = 0; i <= nb; i++) {
		if (compare_range(c, ti, i == 0 ? lo : bounds[i - 1], i == nb ? hi : bounds[i],
			depth + 1) < 0)
			goto out;
	}
	rc = 0;
out:
	free_bounds(bounds, nb, t->nk);
	for (n = 0; n < t->nn; n++)
		free(sums[n]);
	free(sums);
	free(sql);
	free(where);
	return rc;
}

static void
print_table(struct cmp *c, int ti)
{
	struct ktable *t = &c->t[ti];
	struct buf names = BUF_INIT;
	int i, n;

	for (n = 0; n < t->nn; n++)
		buf_printf(&names, "%s%s", n ? ", " : "", c->nodes[t->nodes[n]].name);
	if (t->failed)
		printf("%s: not compared (see the error above)\n", t->display);
	else if (t->ndiff == 0)
		printf("%s: equal on %s (%ld row(s))\n", t->display, names.data, t->rows);
	else if (!c->quiet) {
		printf("%s: %d key(s) differ among %s\n", t->display, t->ndiff, names.data);
		for (i = 0; i < c->nd; i++) {
			struct diff *d = &c->d[i];

			if (d->table != ti)
				continue;
			printf("  %s %s:", t->display, d->keyjson);
			for (n = 0; n < t->nn; n++) {
				if (d->hash[n])
					printf(" %s=%.8s", c->nodes[t->nodes[n]].name, d->hash[n]);
				else
					printf(" %s=missing", c->nodes[t->nodes[n]].name);
			}
			printf("\n");
		}
	} else
		printf("%s: %d key(s) still differ among %s\n", t->display, t->ndiff, names.data);
	buf_free(&names);
}

/* Connect, snapshot, compare every table, print.  Differing keys or -1 on error. */
static int
run_compare(struct cmp *c)
{
	char err[ERRLEN];
	int i, ndiff = 0, failed = 0;

	for (i = 0; i < c->nn; i++) {
		c->nodes[i].c = pool_get(c->pool, c->nodes[i].name, err, sizeof(err));
		if (c->nodes[i].c == NULL) {
			const char *hint = db_connect_hint(err);

			cmd_error("%s%s%s\nthe node must be reachable to compare its tables", err,
			    hint ? "\nhint: " : "", hint ? hint : "");
			return -1;
		}
	}
	for (i = 0; i < c->nn; i++)
		if (db_exec(c->nodes[i].c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
			sizeof(err)) < 0) {
			cmd_error("node '%s': %s", c->nodes[i].name, err);
			failed = 1;
			goto out;
		}
	for (i = 0; i < c->nt; i++) {
		if (table_setup(c, &c->t[i], err, sizeof(err)) < 0) {
			cmd_error("table %s: %s", c->t[i].display, err);
			c->t[i].failed = 1;
			failed = 1;
		} else if (compare_range(c, i, NULL, NULL, 0) < 0) {
			c->t[i].failed = 1;
			failed = 1;
		}
		/* a failed query aborts the snapshot: start a new one for the next table */
		if (c->t[i].failed) {
			int n;

			for (n = 0; n < c->nn; n++) {
				db_rollback(c->nodes[n].c);
				if (db_exec(c->nodes[n].c,
					"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
					sizeof(err)) < 0)
					goto out;
			}
		}
		print_table(c, i);
		ndiff += c->t[i].ndiff;
	}
out:
	for (i = 0; i < c->nn; i++)
		if (c->nodes[i].c)
			db_rollback(c->nodes[i].c);
	return failed ? -1 : ndiff;
}

static void
summary(struct cmp *c, const char *name, int ndiff)
{
	int i, tables = 0;
	struct buf names = BUF_INIT;

	for (i = 0; i < c->nt; i++)
		tables += c->t[i].ndiff > 0;
	for (i = 0; i < c->nn; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", c->nodes[i].name);
	if (ndiff == 0)
		printf("compare %s: all %d table(s) equal on %s (%ld range checksum(s))\n", name,
		    c->nt, names.data, c->checksums);
	else
		printf("compare %s: %d differing key(s) in %d of %d table(s) (%ld range "
		       "checksum(s))\n",
		    name, ndiff, tables, c->nt, c->checksums);
	buf_free(&names);
}

/* ---- integrity: foreign keys and deferrable unique constraints ---- */

/*
 * The apply runs with session_replication_role = replica, so PostgreSQL
 * neither checks foreign keys nor rechecks DEFERRABLE unique constraints
 * for the rows it writes.  compare also checks, on each node, every foreign
 * key whose child is a compared table (MATCH SIMPLE: a row with a NULL in
 * the key is not checked; MATCH FULL: all NULL or none) and every
 * DEFERRABLE unique or primary key constraint of those tables.
 *
 * INTEG_OWN: a constraint of the table itself: not one PostgreSQL derived from the
 * table's own for each partition of a referenced partitioned table (same
 * table, conparentid set); a partition's copy of its parent's constraint
 * counts, for a partition registered on its own.
 */
#define INTEG_OWN                                                                        \
	"(con.conparentid = 0 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint pc " \
	"WHERE pc.oid = con.conparentid AND pc.conrelid = con.conrelid)) "

struct integ {
	char **seen; /* "table|constraint" checked, for the summary */
	int nseen, nfk, nuq;
	int bad_fk, bad_uq; /* (node, constraint) pairs violated */
	long orphans, dups;
	char **bad_nodes;
	int nbad_nodes;
	int failed;
};

static void
integ_note(char ***list, int *n, const char *s, int *counter)
{
	int i;

	for (i = 0; i < *n; i++)
		if (strcmp((*list)[i], s) == 0)
			return;
	*list = xrealloc(*list, sizeof(char *) * (size_t)(*n + 1));
	(*list)[(*n)++] = xstrdup(s);
	if (counter)
		(*counter)++;
}

static void
integ_free(struct integ *g)
{
	int i;

	for (i = 0; i < g->nseen; i++)
		free(g->seen[i]);
	free(g->seen);
	for (i = 0; i < g->nbad_nodes; i++)
		free(g->bad_nodes[i]);
	free(g->bad_nodes);
}

/* Print the example lines (one per line in ex) under a violation. */
static void
integ_examples(const struct ktable *t, const char *ex, const char *more, const char *node)
{
	char *copy = xstrdup(ex), *line, *save = NULL;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("  %s %s on %s\n", t->display, line, node);
	if (more)
		printf("  %s ... %s\n", t->display, more);
	free(copy);
}

/* Orphans of every foreign key of table t on node n. */
static void
check_fks(struct cmp *c, struct integ *g, const struct ktable *t, int n)
{
	char err[ERRLEN];
	const char *node = c->nodes[t->nodes[n]].name;
	PGconn *conn = c->nodes[t->nodes[n]].c;
	const char *p[1] = { t->qtable };
	PGresult *r;
	int i;

	r = db_query(conn,
	    "SELECT pg_catalog.quote_ident(con.conname), con.confrelid::pg_catalog.regclass::text, "
	    " con.confmatchtype = 'f', x.anynull, x.anynotnull, x.joincond, x.cols, x.vals, "
	    " pr.relkind = 'p', ch.relkind = 'p' "
	    "FROM pg_catalog.pg_constraint con "
	    "JOIN pg_catalog.pg_class pr ON pr.oid = con.confrelid "
	    "JOIN pg_catalog.pg_class ch ON ch.oid = con.conrelid "
	    "CROSS JOIN LATERAL (SELECT "
	    " string_agg(format('t.%I IS NULL', ca.attname), ' OR ' ORDER BY k.ord) AS anynull, "
	    " string_agg(format('t.%I IS NOT NULL', ca.attname), ' OR ' ORDER BY k.ord) AS anynotnull, "
	    " string_agg(format('p.%I = t.%I', pa.attname, ca.attname), ' AND ' ORDER BY k.ord) "
	    "  AS joincond, "
	    " string_agg(pg_catalog.quote_ident(ca.attname), ', ' ORDER BY k.ord) AS cols, "
	    " string_agg(format('coalesce(t.%I::text, ''NULL'')', ca.attname), ', ' ORDER BY k.ord) "
	    "  AS vals "
	    " FROM unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(ck, pk, ord) "
	    " JOIN pg_catalog.pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.ck "
	    " JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pk) x "
	    "WHERE con.conrelid = $1::pg_catalog.regclass AND con.contype = 'f' AND " INTEG_OWN
	    "ORDER BY con.conname",
	    1, p, err, sizeof(err));
	if (r == NULL) {
		cmd_error("table %s on node '%s': cannot list its foreign keys: %s", t->display,
		    node, err);
		g->failed = 1;
		return;
	}
	for (i = 0; i < PQntuples(r); i++) {
		const char *con = PQgetvalue(r, i, 0), *parent = PQgetvalue(r, i, 1);
		int full = PQgetvalue(r, i, 2)[0] == 't';
		char *key = xasprintf("%s|%s", t->display, con), *cond, *sql;
		const char *cp[1] = { PQgetvalue(r, i, 6) };
		PGresult *o;
		long cnt;

		integ_note(&g->seen, &g->nseen, key, &g->nfk);
		free(key);
		/* MATCH SIMPLE: any NULL, no check; MATCH FULL: all NULL or none */
		if (full)
			cond = xasprintf(
			    "(%s) AND ((%s) OR NOT EXISTS (SELECT 1 FROM %s%s p WHERE %s))",
			    PQgetvalue(r, i, 4), PQgetvalue(r, i, 3),
			    PQgetvalue(r, i, 8)[0] == 't' ? "" : "ONLY ", parent,
			    PQgetvalue(r, i, 5));
		else
			cond = xasprintf("NOT (%s) AND NOT EXISTS (SELECT 1 FROM %s%s p WHERE %s)",
			    PQgetvalue(r, i, 3), PQgetvalue(r, i, 8)[0] == 't' ? "" : "ONLY ",
			    parent, PQgetvalue(r, i, 5));
		sql = xasprintf(
		    "SELECT count(*), string_agg(o.e, E'\\n' ORDER BY o.rn) FILTER "
		    "(WHERE o.rn <= 3) FROM (SELECT %s || ': (' || $1 || ')=(' || "
		    "concat_ws(', ', %s) || ')' AS e, row_number() OVER (ORDER BY %s) AS rn "
		    "FROM %s%s t WHERE %s) o",
		    t->keyjson, PQgetvalue(r, i, 7), t->order,
		    PQgetvalue(r, i, 9)[0] == 't' ? "" : "ONLY ", t->qtable, cond);
		o = db_query(conn, sql, 1, cp, err, sizeof(err));
		free(sql);
		free(cond);
		if (o == NULL) {
			cmd_error("table %s on node '%s': cannot check foreign key %s: %s",
			    t->display, node, con, err);
			g->failed = 1;
			continue;
		}
		cnt = atol(PQgetvalue(o, 0, 0));
		if (cnt > 0) {
			char more[64];

			snprintf(more, sizeof(more), "and %ld more", cnt - 3);
			printf(
			    "%s: foreign key %s violated on node '%s': %ld row(s) whose (%s) is not "
			    "present in %s\n",
			    t->display, con, node, cnt, PQgetvalue(r, i, 6), parent);
			integ_examples(t, PQgetvalue(o, 0, 1), cnt > 3 ? more : NULL, node);
			g->bad_fk++;
			g->orphans += cnt;
			integ_note(&g->bad_nodes, &g->nbad_nodes, node, NULL);
		}
		PQclear(o);
	}
	PQclear(r);
}

/* Values held by more than one row under every DEFERRABLE unique constraint of t on node n. */
static void
check_deferrable(struct cmp *c, struct integ *g, const struct ktable *t, int n)
{
	char err[ERRLEN];
	const char *node = c->nodes[t->nodes[n]].name;
	PGconn *conn = c->nodes[t->nodes[n]].c;
	const char *p[1] = { t->qtable };
	PGresult *r;
	int i;

	r = db_query(conn,
	    "SELECT pg_catalog.quote_ident(con.conname), x.grp, x.cols, x.notnull, x.vals, "
	    " coalesce((pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false), "
	    " ch.relkind = 'p', CASE con.contype WHEN 'p' THEN 'primary key' "
	    " ELSE 'unique constraint' END "
	    "FROM pg_catalog.pg_constraint con "
	    "JOIN pg_catalog.pg_index i ON i.indexrelid = con.conindid "
	    "JOIN pg_catalog.pg_class ch ON ch.oid = con.conrelid "
	    "CROSS JOIN LATERAL (SELECT "
	    " string_agg(format('t.%I', a.attname), ', ' ORDER BY k.ord) AS grp, "
	    " string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord) AS cols, "
	    " string_agg(format('t.%I IS NOT NULL', a.attname), ' AND ' ORDER BY k.ord) AS notnull, "
	    " string_agg(format('coalesce(t.%I::text, ''NULL'')', a.attname), ', ' ORDER BY k.ord) "
	    "  AS vals "
	    " FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
	    " JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) x "
	    "WHERE con.conrelid = $1::pg_catalog.regclass AND con.contype IN ('u', 'p') "
	    "AND con.condeferrable AND " INTEG_OWN "ORDER BY con.conname",
	    1, p, err, sizeof(err));
	if (r == NULL) {
		cmd_error("table %s on node '%s': cannot list its deferrable constraints: %s",
		    t->display, node, err);
		g->failed = 1;
		return;
	}
	for (i = 0; i < PQntuples(r); i++) {
		const char *con = PQgetvalue(r, i, 0);
		char *key = xasprintf("%s|%s", t->display, con), *sql;
		const char *cp[1] = { PQgetvalue(r, i, 2) };
		PGresult *o;
		long groups;

		integ_note(&g->seen, &g->nseen, key, &g->nuq);
		free(key);
		/* NULLs never collide unless the index is NULLS NOT DISTINCT */
		sql = xasprintf(
		    "SELECT count(*), coalesce(sum(d.n), 0), string_agg(d.e, E'\\n' ORDER BY d.rn) "
		    "FILTER (WHERE d.rn <= 3) FROM (SELECT count(*) AS n, '(' || $1 || ')=(' || "
		    "concat_ws(', ', %s) || '): ' || array_to_string((array_agg(%s ORDER BY %s))[1:4], "
		    "', ') || CASE WHEN count(*) > 4 THEN ', ...' ELSE '' END AS e, "
		    "row_number() OVER (ORDER BY %s) AS rn FROM %s%s t%s%s GROUP BY %s "
		    "HAVING count(*) > 1) d",
		    PQgetvalue(r, i, 4), t->keyjson, t->order, PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 6)[0] == 't' ? "" : "ONLY ", t->qtable,
		    PQgetvalue(r, i, 5)[0] == 't' ? "" : " WHERE ",
		    PQgetvalue(r, i, 5)[0] == 't' ? "" : PQgetvalue(r, i, 3), PQgetvalue(r, i, 1));
		o = db_query(conn, sql, 1, cp, err, sizeof(err));
		free(sql);
		if (o == NULL) {
			cmd_error("table %s on node '%s': cannot check constraint %s: %s",
			    t->display, node, con, err);
			g->failed = 1;
			continue;
		}
		groups = atol(PQgetvalue(o, 0, 0));
		if (groups > 0) {
			char more[64];

			snprintf(more, sizeof(more), "and %ld more value(s)", groups - 3);
			printf(
			    "%s: deferrable %s %s violated on node '%s': %ld value(s) of (%s) held "
			    "by more than one row (%s row(s))\n",
			    t->display, PQgetvalue(r, i, 7), con, node, groups, PQgetvalue(r, i, 2),
			    PQgetvalue(o, 0, 1));
			integ_examples(t, PQgetvalue(o, 0, 2), groups > 3 ? more : NULL, node);
			g->bad_uq++;
			g->dups += groups;
			integ_note(&g->bad_nodes, &g->nbad_nodes, node, NULL);
		}
		PQclear(o);
	}
	PQclear(r);
}

/*
 * Check the constraints replication does not enforce, on every node of
 * every compared table; print each violation and a summary.  Returns the
 * number of (node, constraint) pairs violated, or -1 when a check failed.
 */
static int
run_integrity(struct cmp *c, const char *name)
{
	struct integ g;
	struct buf names = BUF_INIT;
	int i, n, rc;

	memset(&g, 0, sizeof(g));
	for (i = 0; i < c->nt; i++) {
		struct ktable *t = &c->t[i];

		if (t->failed || t->keyjson == NULL)
			continue;
		for (n = 0; n < t->nn; n++) {
			if (c->nodes[t->nodes[n]].c == NULL)
				continue;
			check_fks(c, &g, t, n);
			check_deferrable(c, &g, t, n);
		}
	}
	for (i = 0; i < c->nn; i++)
		buf_printf(&names, "%s%s", i ? ", " : "", c->nodes[i].name);
	if (g.bad_fk + g.bad_uq > 0) {
		struct buf bad = BUF_INIT;

		for (i = 0; i < g.nbad_nodes; i++)
			buf_printf(&bad, "%s%s", i ? ", " : "", g.bad_nodes[i]);
		printf("compare %s: %d constraint violation(s) on %s: ", name, g.bad_fk + g.bad_uq,
		    bad.data);
		if (g.bad_fk)
			printf("%d foreign key(s) with %ld orphan row(s)%s", g.bad_fk, g.orphans,
			    g.bad_uq ? ", " : "");
		if (g.bad_uq)
			printf("%d deferrable unique constraint(s) with %ld duplicated value(s)",
			    g.bad_uq, g.dups);
		printf("\n");
		printf(
		    "hint: replication does not check these constraints (it applies with "
		    "session_replication_role = replica): on the node named, delete or re-parent "
		    "the orphan rows (or restore their parents) and make the duplicated values "
		    "unique; the changes replicate like any other\n");
		buf_free(&bad);
	} else if (g.nfk + g.nuq > 0 && !g.failed)
		printf("compare %s: every foreign key (%d) and deferrable unique constraint (%d) "
		       "holds on %s\n",
		    name, g.nfk, g.nuq, names.data);
	rc = g.failed ? -1 : g.bad_fk + g.bad_uq;
	buf_free(&names);
	integ_free(&g);
	return rc;
}

CMD_HANDLER(cmd_compare)
{
	const char *name = args->words[0];
	struct cmp c;
	int is_sync, n, i, bad = 0;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	if (load_scope(&c, name, args_get(args, "table"), &is_sync) < 0) {
		cmp_free(&c);
		return 1;
	}
	c.pool = pool_new(ctx->cfg, ctx->meta);
	n = run_compare(&c);
	if (n >= 0)
		summary(&c, name, n);
	/* constraints the apply does not enforce: even equal nodes can violate them */
	for (i = 0; i < c.nn && c.nodes[i].c; i++)
		;
	if (i == c.nn)
		bad = run_integrity(&c, name);
	pool_free(c.pool);
	cmp_free(&c);
	return n == 0 && bad == 0 ? 0 : 1;
}

/* ---- repair ---- */

/* JSON array of the differing keys' texts: [["k1", "k2"], ...]. */
static char *
keys_json(struct cmp *c, int ti, int fi, int present)
{
	struct buf b = BUF_INIT;
	int i, k, n = 0;

	buf_putc(&b, '[');
	for (i = 0; i < c->nd; i++) {
		struct diff *d = &c->d[i];

		if (d->table != ti || (d->hash[fi] != NULL) != present)
			continue;
		buf_puts(&b, n++ ? ",[" : "[");
		for (k = 0; k < c->t[ti].nk; k++) {
			if (k)
				buf_putc(&b, ',');
			buf_json_str(&b, d->keytext[k]);
		}
		buf_putc(&b, ']');
	}
	buf_putc(&b, ']');
	if (n == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* Touch and tombstone NODE's versions of the differing keys of table ti (in its transaction). */
static int
repair_table(
    struct cmp *c, int ti, int fi, PGconn *fc, long *touched, long *tombs, char *err, size_t errlen)
{
	struct ktable *t = &c->t[ti];
	char *present = keys_json(c, ti, fi, 1), *missing = keys_json(c, ti, fi, 0);
	struct buf sel = BUF_INIT, keys = BUF_INIT, xk = BUF_INIT, tk = BUF_INIT, set = BUF_INIT;
	int k, rc = -1;
	PGresult *r;

	for (k = 0; k < t->nk; k++) {
		buf_printf(&sel, "%s(e->>%d)::%s AS %s", k ? ", " : "", k, t->ktype[k], t->kcol[k]);
		buf_printf(&keys, "%s%s", k ? ", " : "", t->kcol[k]);
		buf_printf(&xk, "%sx.%s", k ? ", " : "", t->kcol[k]);
		buf_printf(&tk, "%st.%s", k ? ", " : "", t->kcol[k]);
	}
	buf_printf(&set, "%s = t.%s", t->kcol[0], t->kcol[0]);
	if (present) {
		const char *p[1] = { present };
		char *sql = xasprintf(
		    "UPDATE %s t SET %s FROM (SELECT %s FROM pg_catalog.jsonb_array_elements($1::jsonb) "
		    "e) x WHERE (%s) = (%s)",
		    t->qtable, set.data, sel.data, tk.data, xk.data);

		r = db_query(fc, sql, 1, p, err, errlen);
		free(sql);
		if (r == NULL)
			goto out;
		*touched += atol(PQcmdTuples(r));
		PQclear(r);
	}
	if (missing) {
		char *shadow = capture_shadow(fc, t->schema, t->table, err, errlen), *self, *sql;
		const char *sp[2] = { t->schema, t->table };
		const char *p[2];

		if (shadow == NULL) {
			if (!err[0])
				snprintf(err, errlen, "table %s is not captured on node '%s'",
				    t->display, c->nodes[t->nodes[fi]].name);
			goto out;
		}
		self = db_value(fc,
		    "SELECT self FROM repctl.captured WHERE schema_name = $1 AND table_name = $2",
		    2, sp, err, errlen);
		if (self == NULL) {
			free(shadow);
			goto out;
		}
		p[0] = missing;
		p[1] = self;
		/* the statement capture's DELETE trigger runs, for keys NODE does not hold */
		sql = xasprintf(
		    "INSERT INTO repctl.%s AS s (%s, repctl_deleted, repctl_vv, repctl_txid, "
		    "repctl_origin, repctl_changed_at) "
		    "SELECT %s, true, jsonb_build_object($2::text, (extract(epoch FROM clock_timestamp()) "
		    "* 1000000)::bigint), pg_current_xact_id(), NULL, "
		    "clock_timestamp() FROM (SELECT %s FROM pg_catalog.jsonb_array_elements($1::jsonb) "
		    "e) x WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE (%s) = (%s)) "
		    "ON CONFLICT (%s) DO UPDATE SET repctl_vv = s.repctl_vv || "
		    "jsonb_build_object($2::text, greatest(coalesce((s.repctl_vv ->> $2::text)::bigint, "
		    "0) + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)), "
		    "repctl_txid = EXCLUDED.repctl_txid, repctl_origin = NULL, repctl_dot = NULL, "
		    "repctl_changed_at = EXCLUDED.repctl_changed_at, repctl_deleted = true",
		    shadow, keys.data, xk.data, sel.data, t->qtable, tk.data, xk.data, keys.data);
		r = db_query(fc, sql, 2, p, err, errlen);
		free(sql);
		free(shadow);
		free(self);
		if (r == NULL)
			goto out;
		*tombs += atol(PQcmdTuples(r));
		PQclear(r);
	}
	rc = 0;
out:
	free(present);
	free(missing);
	buf_free(&sel);
	buf_free(&keys);
	buf_free(&xk);
	buf_free(&tk);
	buf_free(&set);
	return rc;
}

/* Run the syncs round after round until one writes nothing (at most max rounds). */
static int
run_syncs(struct cli_ctx *ctx, struct node_pool *pool, PGresult *syncs, int max)
{
	char err[ERRLEN];
	int round, i, failed = 0;

	for (round = 1; round <= max; round++) {
		long written = 0;

		failed = 0;
		for (i = 0; i < PQntuples(syncs); i++) {
			struct sync_def s;
			struct run_stats st;
			int rc;

			if (sync_load(ctx->meta, PQgetvalue(syncs, i, 0), &s, err, sizeof(err)) !=
			    0) {
				cmd_error("sync '%s': %s", PQgetvalue(syncs, i, 0), err);
				failed = 1;
				continue;
			}
			memset(&st, 0, sizeof(st));
			if (sync_lock(ctx->meta, s.name, 1, err, sizeof(err)) < 0) {
				rc = -1;
			} else {
				rc = sync_run(pool, ctx->meta, &s, ctx->cfg, &st, err, sizeof(err));
				sync_unlock(ctx->meta, s.name);
			}
			printf("run %s: %s, I/U/D %ld/%ld/%ld, %ld conflict(s)\n", s.name,
			    rc == 0 ? "good" : "bad", st.inserts, st.updates, st.deletes,
			    st.conflicts);
			if (rc < 0) {
				cmd_error("sync '%s' failed: %s", s.name, err);
				failed = 1;
			}
			written += st.inserts + st.updates + st.deletes + st.conflicts;
			sync_def_free(&s);
		}
		if (written == 0)
			break;
	}
	return failed ? -1 : 0;
}

CMD_HANDLER(cmd_repair)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *from = args_get(args, "from");
	const char *table = args_get(args, "table");
	struct cmp c;
	PGresult *syncs = NULL;
	PGconn *fc;
	long touched = 0, tombs = 0;
	int is_sync, n, i, fi = -1, rc = 1, sources = 0;

	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	if (load_scope(&c, name, table, &is_sync) < 0) {
		cmp_free(&c);
		return 1;
	}
	for (i = 0; i < c.nn; i++)
		if (strcmp(c.nodes[i].name, from) == 0)
			fi = i;
	if (fi < 0) {
		cmd_error("--from=%s: no such node among those of %s '%s'\nnothing was changed",
		    from, is_sync ? "sync" : "herd", name);
		cmp_free(&c);
		return 1;
	}
	/* the syncs that carry NODE's versions to the others */
	{
		const char *p[2] = { name, from };

		syncs = db_query(ctx->meta,
		    is_sync
			? "SELECT s.name, EXISTS (SELECT 1 FROM repctl.sync_node n WHERE n.sync = "
			  "s.name AND n.node = $2 AND (n.role = 'source')) FROM repctl.sync s "
			  "WHERE s.name = $1"
			: "SELECT s.name, EXISTS (SELECT 1 FROM repctl.sync_node n WHERE n.sync = "
			  "s.name AND n.node = $2 AND (n.role = 'source')) FROM repctl.sync s "
			  "WHERE s.herd = $1 AND s.status = 'active' ORDER BY s.name",
		    2, p, err, sizeof(err));
		if (syncs == NULL) {
			cmd_error("%s", err);
			goto out;
		}
		for (i = 0; i < PQntuples(syncs); i++)
			sources += PQgetvalue(syncs, i, 1)[0] == 't';
		if (sources == 0) {
			cmd_error(
			    "node '%s' is not a source of %s '%s', so its versions cannot flow "
			    "to the other nodes\nhint: repair through a sync in which '%s' is a "
			    "source; nothing was changed",
			    from, is_sync ? "sync" : "any active sync of herd", name, from);
			goto out;
		}
	}
	c.pool = pool_new(ctx->cfg, ctx->meta);
	n = run_compare(&c);
	if (n < 0)
		goto out;
	if (n == 0) {
		summary(&c, name, 0);
		printf("repair %s: nothing to repair\n", name);
		rc = 0;
		goto out;
	}
	summary(&c, name, n);
	fc = c.nodes[fi].c;
	if (db_exec(fc, "BEGIN; SET LOCAL session_replication_role = replica", err, sizeof(err)) <
	    0) {
		cmd_error("node '%s': %s\nnothing was changed", from, err);
		goto out;
	}
	for (i = 0; i < c.nt; i++) {
		int k, tfi = -1;

		if (c.t[i].ndiff == 0)
			continue;
		for (k = 0; k < c.t[i].nn; k++)
			if (c.t[i].nodes[k] == fi)
				tfi = k;
		if (tfi < 0) {
			printf("%s: not registered on '%s', left as it is\n", c.t[i].display, from);
			continue;
		}
		if (repair_table(&c, i, tfi, fc, &touched, &tombs, err, sizeof(err)) < 0) {
			db_rollback(fc);
			cmd_error("table %s on node '%s': %s\nnothing was changed", c.t[i].display,
			    from, err);
			goto out;
		}
	}
	if (db_exec(fc, "SELECT pg_catalog.pg_notify('repctl', '')", err, sizeof(err)) < 0 ||
	    db_commit(fc, err, sizeof(err)) < 0) {
		db_rollback(fc);
		cmd_error("node '%s': %s\nnothing was changed", from, err);
		goto out;
	}
	printf("repair %s: %ld row(s) of '%s' touched and %ld tombstone(s) written on '%s'; "
	       "running the syncs\n",
	    name, touched, from, tombs, from);
	if (run_syncs(ctx, c.pool, syncs, 2 + PQntuples(syncs)) < 0)
		printf("repair %s: a sync run failed (see above)\n", name);
	{
		struct cmp again;
		int m;

		memset(&again, 0, sizeof(again));
		again.ctx = ctx;
		again.quiet = 1;
		if (load_scope(&again, name, table, &is_sync) < 0) {
			cmp_free(&again);
			goto out;
		}
		again.pool = c.pool;
		printf("comparing again:\n");
		m = run_compare(&again);
		if (m >= 0)
			summary(&again, name, m);
		if (m == 0) {
			printf("repair %s: every node now holds '%s''s version\n", name, from);
			rc = 0;
		} else if (m > 0)
			cmd_error(
			    "repair %s: %d key(s) still differ\nhint: see 'repctl status' and "
			    "'repctl conflicts' (a node that changed a key meanwhile makes it a "
			    "conflict), then run repair again",
			    name, m);
		cmp_free(&again);
	}
out:
	PQclear(syncs);
	pool_free(c.pool);
	cmp_free(&c);
	return rc;
}

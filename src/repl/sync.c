/*
 * sync.c - one run of one sync.
 *
 * Where it sits: the coordinator's worker (or `repctl run`) calls
 * sync_run(); capture.c's triggers have filled the shadow tables on each
 * source.  For each edge source S -> target T of the sync:
 *
 *  1. On S, in one REPEATABLE READ transaction: take the snapshot; the
 *     batch of a table is the shadow rows whose writer xid is visible now
 *     and was not visible in the edge's previous snapshot (repctl.position).
 *     A transaction open across a run commits later with an older xid: it
 *     was not visible then and is visible the next time, so it is never
 *     skipped.
 *  2. On T, in one transaction with session_replication_role = replica and
 *     repctl.origin set: stream the current state of those keys from S
 *     (COPY out of S, COPY into a temporary staging table on T; memory
 *     stays bounded whatever the batch size), lock the existing target and
 *     shadow rows (table first, then shadow: the same order as a local
 *     writer and its trigger, so no deadlock), and classify every key
 *     set-based by comparing version vectors: older or equal -> skip (old
 *     news and echoes stop here), newer -> apply, concurrent -> a true
 *     conflict, decided row by row by conflict_decide() and logged.
 *  3. Apply set-based: one upsert that writes nothing where the target row
 *     is already equal, one delete, one upsert of the shadow rows with the
 *     merged vectors (whose new xid feeds T's own outgoing edges: that is
 *     how a change crosses a hub).  Commit T.
 *  4. Only then advance the edge's position in the metadata.  A crash
 *     between 3 and 4 reruns the batch, which finds the vectors equal and
 *     writes nothing: apply is idempotent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "capture.h"
#include "config.h"
#include "conflict.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "sync.h"
#include "xmalloc.h"

/* ---- node connection pool ---- */

struct pool_entry {
	char *node;
	PGconn *conn;
	unsigned long used; /* pool tick of the last pool_get */
	char *failed;       /* fail-fast pools: why connecting failed */
};

struct node_pool {
	const struct config *cfg;
	PGconn *meta;
	struct pool_entry *e;
	int n;
	int nolisten;       /* runners: the coordinator's watcher listens for them */
	int max;            /* open connections kept at most (0: no limit) */
	int fail_fast;      /* a node that failed to connect is not tried again */
	unsigned long tick; /* counts pool_get calls */
};

/*
 * Measure the node's clock against ours (midpoint of the round trip) and
 * record it; latest/first trust the nodes' clocks, so status warns when an
 * offset exceeds clock.skew_warn_ms.
 */
static void
clock_measure(PGconn *meta, PGconn *node, const char *name, const struct config *cfg)
{
	char err[ERRLEN], off[64];
	double offset;
	const char *p[2] = { name, off };

	if (db_clock_offset_ms(node, &offset, err, sizeof(err)) < 0)
		return;
	snprintf(off, sizeof(off), "%.1f", offset);
	if (fabs(offset) > cfg->clock_skew_warn_ms)
		log_warnx(
		    "node '%s' clock is off by %.0f ms from the coordinator's: conflict "
		    "resolution by time (latest/first) may pick the wrong winner; sync the clocks "
		    "(NTP)",
		    name, offset);
	if (db_execp(meta,
		"INSERT INTO repctl.node_state (node, clock_offset_ms, last_contact) "
		"VALUES ($1, $2::float8, now()) ON CONFLICT (node) DO UPDATE SET "
		"clock_offset_ms = EXCLUDED.clock_offset_ms, last_contact = now(), updated_at = now()",
		2, p, err, sizeof(err)) < 0)
		log_debug("cannot record the clock offset of node '%s': %s", name, err);
}

struct node_pool *
pool_new(const struct config *cfg, PGconn *meta)
{
	struct node_pool *p = xcalloc(1, sizeof(*p));

	p->cfg = cfg;
	p->meta = meta;
	return p;
}

void
pool_set_fail_fast(struct node_pool *p)
{
	p->fail_fast = 1;
}

void
pool_set_limits(struct node_pool *p, int listen, int max)
{
	p->nolisten = !listen;
	p->max = max;
}

void
pool_free(struct node_pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		db_close(p->e[i].conn);
		free(p->e[i].node);
		free(p->e[i].failed);
	}
	free(p->e);
	free(p);
}

static struct pool_entry *
pool_entry(struct node_pool *p, const char *node)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->e[i].node, node) == 0)
			return &p->e[i];
	p->e = xrealloc(p->e, sizeof(*p->e) * (size_t)(p->n + 1));
	memset(&p->e[p->n], 0, sizeof(p->e[p->n]));
	p->e[p->n].node = xstrdup(node);
	return &p->e[p->n++];
}

void
pool_drop(struct node_pool *p, const char *node)
{
	struct pool_entry *e = pool_entry(p, node);

	db_close(e->conn);
	e->conn = NULL;
}

void
pool_failed(struct node_pool *p, const char *node, const char *why)
{
	struct pool_entry *e = pool_entry(p, node);

	db_close(e->conn);
	e->conn = NULL;
	if (p->fail_fast && e->failed == NULL)
		e->failed = xstrdup(why);
}

PGconn *
pool_get(struct node_pool *p, const char *node, char *err, size_t errlen)
{
	struct pool_entry *e = pool_entry(p, node);
	struct node n;
	int found;

	if (e->conn && PQstatus(e->conn) == CONNECTION_OK &&
	    PQtransactionStatus(e->conn) == PQTRANS_IDLE) {
		e->used = ++p->tick;
		return e->conn;
	}
	if (p->fail_fast && e->failed) {
		snprintf(err, errlen, "%s", e->failed);
		return NULL;
	}
	db_close(e->conn);
	e->conn = NULL;
	e->used = ++p->tick;
	if (p->max > 0) {
		/* at the limit: close the connection used least recently (never the ones of
		 * the edge at work, which were asked for last) */
		int i, open = 0;
		struct pool_entry *lru = NULL;

		for (i = 0; i < p->n; i++)
			if (p->e[i].conn) {
				open++;
				if (lru == NULL || p->e[i].used < lru->used)
					lru = &p->e[i];
			}
		if (open >= p->max && lru) {
			db_close(lru->conn);
			lru->conn = NULL;
		}
	}
	found = meta_node_get(p->meta, node, &n, err, errlen);
	if (found != 0) {
		if (found > 0)
			snprintf(err, errlen, "node '%s' is not in the metadata", node);
		node_clear(&n);
		return NULL;
	}
	e->conn = node_connect(p->cfg, &n, err, errlen);
	node_clear(&n);
	if (e->conn && !p->nolisten && db_exec(e->conn, "LISTEN repctl", err, errlen) < 0) {
		db_close(e->conn);
		e->conn = NULL;
	}
	if (e->conn)
		clock_measure(p->meta, e->conn, node, p->cfg);
	else if (p->fail_fast)
		e->failed = xstrdup(err);
	return e->conn;
}

/* ---- sync definition ---- */

void
sync_def_free(struct sync_def *s)
{
	int i;

	free(s->name);
	free(s->herd);
	free(s->strategy);
	free(s->conflict_column);
	free(s->status);
	for (i = 0; i < s->nm; i++)
		free(s->m[i].node);
	free(s->m);
	for (i = 0; i < s->nrank; i++)
		free(s->rank[i].node);
	free(s->rank);
	memset(s, 0, sizeof(*s));
}

int
sync_load(PGconn *meta, const char *name, struct sync_def *out, char *err, size_t errlen)
{
	const char *params[1] = { name };
	PGresult *r;
	int i, nsrc = 0;

	memset(out, 0, sizeof(*out));
	r = db_query(meta,
	    "SELECT herd, strategy, conflict_column, status, coalesce(interval_s, 0), onetimecopy "
	    "FROM repctl.sync WHERE name = $1",
	    1, params, err, errlen);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	out->name = xstrdup(name);
	out->herd = xstrdup(PQgetvalue(r, 0, 0));
	out->strategy = xstrdup(PQgetvalue(r, 0, 1));
	out->conflict_column = xstrdup(PQgetvalue(r, 0, 2));
	out->status = xstrdup(PQgetvalue(r, 0, 3));
	out->interval = atoi(PQgetvalue(r, 0, 4));
	out->onetimecopy = atoi(PQgetvalue(r, 0, 5));
	PQclear(r);
	r = db_query(meta, "SELECT node, role FROM repctl.sync_node WHERE sync = $1 ORDER BY ord",
	    1, params, err, errlen);
	if (r == NULL) {
		sync_def_free(out);
		return -1;
	}
	out->nm = PQntuples(r);
	out->m = xcalloc((size_t)out->nm + 1, sizeof(*out->m));
	for (i = 0; i < out->nm; i++) {
		out->m[i].node = xstrdup(PQgetvalue(r, i, 0));
		out->m[i].source = strcmp(PQgetvalue(r, i, 1), "source") == 0;
		nsrc += out->m[i].source;
	}
	/* multi-source: every source is also a target */
	for (i = 0; i < out->nm; i++)
		out->m[i].target = !out->m[i].source || nsrc >= 2;
	PQclear(r);
	/*
	 * The rank of a node for source/target: its smallest dbs= position over
	 * every sync of the herd, so the two one-way syncs of a pair, and every
	 * edge of a mesh, rank a version's origin the same way.
	 */
	{
		const char *hp[1] = { out->herd };

		r = db_query(meta,
		    "SELECT sn.node, min(sn.ord) FROM repctl.sync_node sn JOIN repctl.sync s "
		    "ON s.name = sn.sync WHERE s.herd = $1 GROUP BY 1 ORDER BY 1",
		    1, hp, err, errlen);
	}
	if (r == NULL) {
		sync_def_free(out);
		return -1;
	}
	out->nrank = PQntuples(r);
	out->rank = xcalloc((size_t)out->nrank + 1, sizeof(*out->rank));
	for (i = 0; i < out->nrank; i++) {
		out->rank[i].node = xstrdup(PQgetvalue(r, i, 0));
		out->rank[i].rank = atoi(PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return 0;
}

/* A node's rank in the herd's syncs (see sync_load); large when it has none. */
static int
node_rank(const struct sync_def *s, const char *node)
{
	int i;

	for (i = 0; i < s->nrank; i++)
		if (strcmp(s->rank[i].node, node) == 0)
			return s->rank[i].rank;
	return 1 << 20;
}

/* ---- one table of one edge ---- */

/* How the conflict column becomes a float8 (cc_for). */
enum { CC_FORM_NONE, CC_FORM_EPOCH, CC_FORM_DATE, CC_FORM_NUMBER };

struct table_ctx {
	const char *schema, *table;
	char *qtable;       /* "schema"."table" */
	char *sshadow;      /* repctl."s_..." on the source */
	char *tshadow;      /* on the target */
	struct buf cols;    /* all replicated columns, target order, quoted */
	struct buf keys;    /* key columns, quoted */
	struct buf nonkeys; /* non-key columns */
	int nkeys, nnonkeys;
	int idx;     /* the table's index in the edge */
	char *cc_q;  /* the conflict column, quoted; NULL when it cannot decide */
	int cc_form; /* how cc_for() reads it as float8: CC_FORM_* */
	char *cc_name;
	enum cc_kind cc_kind;
	struct buf dcols; /* every replicated column as repctl_d.col */
	struct buf tcols; /* every replicated column as repctl_t.col */
	PGresult *tcolsr; /* columns_of() on the target, kept for copy_batch() */
	int keep;         /* built-in column types and collations: kept staging tables (edge_run) */
	unsigned long long sig; /* the table and its target columns, names and types */
};

static void
table_ctx_free(struct table_ctx *t)
{
	free(t->qtable);
	PQclear(t->tcolsr);
	free(t->sshadow);
	free(t->tshadow);
	buf_free(&t->cols);
	buf_free(&t->keys);
	buf_free(&t->nonkeys);
	free(t->cc_q);
	free(t->cc_name);
	buf_free(&t->dcols);
	buf_free(&t->tcols);
	memset(t, 0, sizeof(*t));
}

/* "a.k1, a.k2" */
static char *
key_list(PGconn *c, PGresult *pk, const char *a)
{
	struct buf j = BUF_INIT;
	int i;

	for (i = 0; i < PQntuples(pk); i++) {
		char *q = db_ident(c, PQgetvalue(pk, i, 0));

		buf_printf(&j, "%s%s.%s", i ? ", " : "", a, q);
		free(q);
	}
	return buf_steal(&j);
}

/* "a.k1 = b.k1 AND a.k2 = b.k2" */
static char *
key_join(PGconn *c, PGresult *pk, const char *a, const char *b)
{
	struct buf j = BUF_INIT;
	int i;

	for (i = 0; i < PQntuples(pk); i++) {
		char *q = db_ident(c, PQgetvalue(pk, i, 0));

		buf_printf(&j, "%s%s.%s = %s.%s", i ? " AND " : "", a, q, b, q);
		free(q);
	}
	return buf_steal(&j);
}

/*
 * Columns of a table as "name type" rows in attnum order (generated ones
 * excluded): name, type, is a key, type category, "TYPEOID:COLLOID" with
 * 't' or 'f' first: whether both are built in (below FirstNormalObjectId),
 * which a kept staging table needs (edge_run), and the table's oid.
 */
static PGresult *
columns_of(PGconn *c, const char *qtable, char *err, size_t errlen)
{
	const char *params[1] = { qtable };

	return db_query(c,
	    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
	    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND "
	    "i.indisprimary AND a.attnum = ANY (i.indkey::int2[])), "
	    "t.typcategory, "
	    "CASE WHEN a.atttypid < 16384 AND a.attcollation < 16384 THEN 't' ELSE 'f' END || "
	    "a.atttypid::text || ':' || a.attcollation::text, a.attrelid::text "
	    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
	    "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped "
	    "AND a.attgenerated = '' ORDER BY a.attnum",
	    1, params, err, errlen);
}

/*
 * Prepare the column lists of one table for an edge; -1 with err on drift
 * (columns differ between source and target) or a missing capture.
 */
static int
table_prepare(PGconn *sc, PGconn *tc, const struct sync_def *s, const char *snode,
    const char *tnode, const char *ccol_override, const char *sshadow, struct table_ctx *t,
    char *err, size_t errlen)
{
	PGresult *tcols = NULL, *scols = NULL;
	int i, j, rc = -1;
	const char *ccol = ccol_override ? ccol_override : s->conflict_column;

	t->qtable = db_qualified(tc, t->schema, t->table);
	t->sshadow =
	    sshadow ? xstrdup(sshadow) : capture_shadow(sc, t->schema, t->table, err, errlen);
	if (t->sshadow == NULL) {
		if (!*err)
			snprintf(err, errlen,
			    "table %s is not captured on node '%s'; run 'repctl add "
			    "all tables --herd=%s --db=%s'",
			    t->qtable, snode, s->herd, snode);
		goto out;
	}
	t->tshadow = capture_shadow(tc, t->schema, t->table, err, errlen);
	if (t->tshadow == NULL) {
		if (!*err)
			snprintf(err, errlen,
			    "table %s is not captured on node '%s'; run 'repctl add "
			    "all tables --herd=%s --db=%s'",
			    t->qtable, tnode, s->herd, tnode);
		goto out;
	}
	tcols = columns_of(tc, t->qtable, err, errlen);
	if (tcols == NULL) {
		char *m = xasprintf("table %s on node '%s': %s", t->qtable, tnode, err);

		snprintf(err, errlen, "%s", m);
		free(m);
		goto out;
	}
	scols = columns_of(sc, t->qtable, err, errlen);
	if (scols == NULL) {
		char *m = xasprintf("table %s on node '%s': %s", t->qtable, snode, err);

		snprintf(err, errlen, "%s", m);
		free(m);
		goto out;
	}
	{
		/* name every difference: drift pauses the table with this message */
		struct buf d = BUF_INIT;
		int k;

		for (i = 0; i < PQntuples(tcols); i++) {
			for (k = 0; k < PQntuples(scols); k++)
				if (strcmp(PQgetvalue(scols, k, 0), PQgetvalue(tcols, i, 0)) == 0)
					break;
			if (k == PQntuples(scols))
				buf_printf(&d, "%scolumn \"%s\" exists on '%s' but not on '%s'",
				    d.len ? "; " : "", PQgetvalue(tcols, i, 0), tnode, snode);
			else if (strcmp(PQgetvalue(scols, k, 1), PQgetvalue(tcols, i, 1)) != 0)
				buf_printf(&d, "%scolumn \"%s\" is %s on '%s' but %s on '%s'",
				    d.len ? "; " : "", PQgetvalue(tcols, i, 0),
				    PQgetvalue(scols, k, 1), snode, PQgetvalue(tcols, i, 1), tnode);
		}
		for (k = 0; k < PQntuples(scols); k++) {
			for (i = 0; i < PQntuples(tcols); i++)
				if (strcmp(PQgetvalue(scols, k, 0), PQgetvalue(tcols, i, 0)) == 0)
					break;
			if (i == PQntuples(tcols))
				buf_printf(&d, "%scolumn \"%s\" exists on '%s' but not on '%s'",
				    d.len ? "; " : "", PQgetvalue(scols, k, 0), snode, tnode);
		}
		if (d.len) {
			snprintf(err, errlen,
			    "table %s differs between node '%s' and node '%s': %s; the table is paused "
			    "(the rest of the sync goes on) until the schemas match again",
			    t->qtable, snode, tnode, d.data);
			buf_free(&d);
			goto out;
		}
		buf_free(&d);
	}
	for (i = 0; i < PQntuples(tcols); i++) {
		const char *name = PQgetvalue(tcols, i, 0);
		char *q = db_ident(tc, name);

		for (j = 0; j < PQntuples(scols); j++)
			if (strcmp(PQgetvalue(scols, j, 0), name) == 0)
				break;
		buf_printf(&t->cols, "%s%s", t->cols.len ? ", " : "", q);
		buf_printf(&t->dcols, "%srepctl_d.%s", t->dcols.len ? ", " : "", q);
		buf_printf(&t->tcols, "%srepctl_t.%s", t->tcols.len ? ", " : "", q);
		if (PQgetvalue(tcols, i, 2)[0] == 't') {
			buf_printf(&t->keys, "%s%s", t->keys.len ? ", " : "", q);
			t->nkeys++;
		} else {
			buf_printf(&t->nonkeys, "%s%s", t->nonkeys.len ? ", " : "", q);
			t->nnonkeys++;
		}
		if (strcmp(name, ccol) == 0) {
			char cat = PQgetvalue(tcols, i, 3)[0];
			const char *type = PQgetvalue(tcols, i, 1);

			/*
			 * Compared in the column's own type: a timestamp without time
			 * zone (what Rails creates) or a date as its nominal value, never
			 * through the session's time zone; a timestamptz as an instant;
			 * a number as a number.
			 */
			t->cc_name = xstrdup(name);
			if (strncmp(type, "timestamp", 9) == 0 && strstr(type, "with time zone") &&
			    !strstr(type, "without")) {
				t->cc_kind = CC_TIME;
				t->cc_form = CC_FORM_EPOCH;
			} else if (strncmp(type, "timestamp", 9) == 0) {
				t->cc_kind = CC_NAIVE;
				t->cc_form = CC_FORM_EPOCH;
			} else if (strcmp(type, "date") == 0) {
				t->cc_kind = CC_NAIVE;
				t->cc_form = CC_FORM_DATE;
			} else if (cat == 'N') {
				t->cc_kind = CC_NUMBER;
				t->cc_form = CC_FORM_NUMBER;
			}
			if (t->cc_form != CC_FORM_NONE)
				t->cc_q = xstrdup(q);
		}
		free(q);
	}
	/*
	 * The staging tables' signature: the table's name, and its columns'
	 * names, types (with modifiers) and collations in the target's order
	 * (FNV-1a); a change of any of them names other staging tables.
	 */
	t->sig = 14695981039346656037ULL;
	t->keep = 1;
	{
		const char *part[4];
		int k;

		for (i = -1; i < PQntuples(tcols); i++) {
			part[0] = i < 0 ? t->qtable : PQgetvalue(tcols, i, 0);
			part[1] = i < 0 ? "" : PQgetvalue(tcols, i, 1);
			part[2] = i < 0 ? "" : PQgetvalue(tcols, i, 4);
			part[3] = NULL;
			if (i >= 0 && part[2][0] != 't')
				t->keep = 0;
			for (k = 0; part[k]; k++) {
				const unsigned char *c = (const unsigned char *)part[k];

				do {
					t->sig ^= *c;
					t->sig *= 1099511628211ULL;
				} while (*c++);
			}
		}
	}
	rc = 0;
	t->tcolsr = tcols; /* the same transaction: copy_batch() reads them again */
	tcols = NULL;
out:
	PQclear(tcols);
	PQclear(scols);
	return rc;
}

/*
 * The conflict column of alias as float8 (epoch seconds for times), or
 * NULL.  The column's name is an argument, never part of a format: a name
 * may hold a '%'.
 */
static char *
cc_for(const struct table_ctx *t, const char *alias)
{
	switch (t->cc_q ? t->cc_form : CC_FORM_NONE) {
	case CC_FORM_EPOCH: return xasprintf("extract(epoch FROM %s.%s)::float8", alias, t->cc_q);
	case CC_FORM_DATE:
		return xasprintf("extract(epoch FROM %s.%s::timestamp)::float8", alias, t->cc_q);
	case CC_FORM_NUMBER: return xasprintf("%s.%s::float8", alias, t->cc_q);
	default: return xstrdup("NULL::float8");
	}
}

/*
 * Relay one COPY ... TO STDOUT on sc into one COPY ... FROM STDIN on tc; rows or -1.
 * Every wait is bounded (db.c).  Rows go out in chunks of 64 kB.  When one
 * side fails the other is ended too: the target's COPY is aborted, and a
 * source left in the middle of its COPY is closed, never waited on.
 */
static long
copy_relay(PGconn *sc, const char *out_sql, PGconn *tc, const char *in_sql, long *bytes, char *err,
    size_t errlen)
{
	struct buf chunk = BUF_INIT;
	char inner[ERRLEN], *buf;
	long rows = 0;
	int n;

	inner[0] = '\0';
	if (db_copy_begin(tc, in_sql, inner, sizeof(inner)) < 0) {
		db_set_error(err, errlen, "starting COPY into the target", inner);
		return -1;
	}
	if (db_copy_begin(sc, out_sql, inner, sizeof(inner)) < 0) {
		db_set_error(err, errlen, "reading from the source", inner);
		(void)db_copy_end(tc, "source failed", inner, sizeof(inner));
		return -1;
	}
	while ((n = db_copy_recv(sc, &buf, inner, sizeof(inner))) > 0) {
		buf_add(&chunk, buf, (size_t)n);
		PQfreemem(buf);
		*bytes += n;
		rows++;
		if (chunk.len >= 65536) {
			if (db_copy_send(tc, chunk.data, chunk.len, inner, sizeof(inner)) < 0)
				break;
			chunk.len = 0;
		}
	}
	if (n < 0) {
		db_set_error(err, errlen, "reading from the source", inner);
		rows = -1;
	} else if (n > 0 ||
	    (chunk.len && db_copy_send(tc, chunk.data, chunk.len, inner, sizeof(inner)) < 0)) {
		db_set_error(err, errlen, "writing to the target", inner);
		if (n > 0)
			db_copy_abandon(sc); /* still sending: stop it rather than drain it */
		rows = -1;
	}
	buf_free(&chunk);
	if (rows < 0)
		(void)db_copy_end(tc, "aborted", inner, sizeof(inner));
	else if (db_copy_end(tc, NULL, inner, sizeof(inner)) < 0) {
		db_set_error(err, errlen, "copying into the target", inner);
		rows = -1;
	}
	return rows;
}

static char *key_json_args(PGconn *c, PGresult *pk, const char *alias);

/*
 * Stream the batch of one table from S into the staging table on T; rows
 * copied or -1.  raw: each row as JSON (the row, or only its key for a
 * delete) into a staging table of (repctl_row jsonb, vv, changed_at,
 * deleted, origin), for the row-by-row fallback when the target refuses a
 * value (stage_from_raw).
 */
static long
copy_batch(PGconn *sc, PGconn *tc, const struct table_ctx *t, PGresult *pk, const char *snode,
    const char *prev, const char *retry, const char *stage, int raw, char *err, size_t errlen)
{
	struct buf sel = BUF_INIT, cols = BUF_INIT, out = BUF_INIT;
	PGresult *tcols = NULL;
	char *join = key_join(sc, pk, "repctl_sh", "repctl_t");
	char *lnode = db_literal(sc, snode);
	char *lprev = prev ? db_literal(sc, prev) : NULL;
	char *first_key = db_ident(sc, PQgetvalue(pk, 0, 0));
	long rows = -1;
	int i;

	/* select list in the target's column order: keys from the shadow row */
	tcols = t->tcolsr ? NULL : columns_of(tc, t->qtable, err, errlen);
	if (tcols == NULL && t->tcolsr == NULL)
		goto out;
	if (tcols == NULL)
		tcols = t->tcolsr;
	for (i = 0; i < PQntuples(tcols); i++) {
		char *q = db_ident(sc, PQgetvalue(tcols, i, 0));

		buf_printf(&sel, "%s%s.%s", i ? ", " : "",
		    PQgetvalue(tcols, i, 2)[0] == 't' ? "repctl_sh" : "repctl_t", q);
		free(q);
	}
	if (raw) {
		char *kj = key_json_args(sc, pk, "repctl_sh");

		buf_reset(&sel);
		buf_printf(&sel,
		    "CASE WHEN repctl_t.%s IS NULL THEN jsonb_build_object(%s) ELSE "
		    "to_jsonb(repctl_t) END",
		    first_key, kj);
		free(kj);
	}
	buf_printf(&out,
	    "COPY (SELECT %s, repctl_sh.repctl_vv, repctl_sh.repctl_changed_at, "
	    "repctl_sh.repctl_deleted OR repctl_t.%s IS NULL, coalesce(repctl_sh.repctl_origin, %s), "
	    "coalesce(repctl_sh.repctl_dot, repctl_sh.repctl_origin, %s) "
	    "FROM repctl.%s repctl_sh LEFT JOIN %s repctl_t ON %s",
	    sel.data, first_key, lnode, lnode, t->sshadow, t->qtable, join);
	if (lprev) {
		buf_printf(&out,
		    " WHERE (repctl_sh.repctl_txid >= "
		    "pg_catalog.pg_snapshot_xmin(%s::pg_catalog.pg_snapshot) "
		    "AND NOT pg_catalog.pg_visible_in_snapshot(repctl_sh.repctl_txid, "
		    "%s::pg_catalog.pg_snapshot))",
		    lprev, lprev);
		if (retry) {
			/* quarantined rows are retried on every run */
			char *kj = key_json_args(sc, pk, "repctl_sh");
			char *lit = db_literal(sc, retry);

			buf_printf(&out, " OR jsonb_build_object(%s) = ANY (%s::jsonb[])", kj, lit);
			free(kj);
			free(lit);
		}
	}
	buf_puts(&out, ") TO STDOUT");
	buf_printf(&cols,
	    "COPY %s (%s, repctl_vv, repctl_changed_at, repctl_deleted, repctl_origin, repctl_dot) "
	    "FROM STDIN",
	    stage, raw ? "repctl_row" : t->cols.data);

	{
		long bytes = 0;

		rows = copy_relay(sc, out.data, tc, cols.data, &bytes, err, errlen);
	}
out:
	if (tcols != t->tcolsr)
		PQclear(tcols);
	buf_free(&sel);
	buf_free(&cols);
	buf_free(&out);
	free(join);
	free(lnode);
	free(lprev);
	free(first_key);
	return rows;
}

/* A row the target refused, kept until the target committed, then recorded. */
struct quar_rec {
	char *schema, *table, *pk, *row, *reason, *constraint;
};

/* A conflict decided, kept until the target committed, then logged. */
struct conflict_rec {
	char *table, *pk, *local_row, *remote_row, *winner, *rule;
	char *msg; /* the log line, written once the table went through */
};

struct edge_ctx {
	const struct sync_def *s;
	const struct config *cfg;
	const char *snode, *tnode;
	int srank, trank;
	struct run_stats *st;
	struct conflict_rec *conf;
	int nconf;
	long written;          /* shadow rows written on the target */
	struct buf warn;       /* tables paused on this edge, and why */
	const char *down;      /* the node that could not be reached, for the breaker */
	int target_contacted;  /* the edge connected to the target */
	struct quar_rec *quar; /* rows the target refused this run */
	int nquar;
	struct buf retried;  /* "schema\ttable\tpk\n" lines retried this run */
	struct buf applied;  /* "\tschema\ttable\n" of the tables applied this run */
	struct applied_tab { /* the tables applied in this pass, for integrity_check() */
		char *qtable, *schema, *table;
		char oid[16];
		char d[64];  /* its decision table */
		char **keys; /* quoted key column names */
		int nkeys, idx;
	} * at;
	int nat;
	struct excl {    /* rows not to apply (integrity), kept across passes */
		int idx; /* table index in the edge */
		char *pk, *reason, *constraint;
	} * excl;
	int nexcl;
};

static void applied_free(struct edge_ctx *e);
static void excl_free(struct edge_ctx *e);

static double
num_or(PGresult *r, int row, int col, double dflt, int *has)
{
	if (PQgetisnull(r, row, col)) {
		if (has)
			*has = 0;
		return dflt;
	}
	if (has)
		*has = 1;
	return strtod(PQgetvalue(r, row, col), NULL);
}

/* "'k1', repctl_d.k1, 'k2', repctl_d.k2" for jsonb_build_object. free(). */
static char *
key_json_args(PGconn *c, PGresult *pk, const char *alias)
{
	struct buf b = BUF_INIT;
	int i;

	for (i = 0; i < PQntuples(pk); i++) {
		char *lit = db_literal(c, PQgetvalue(pk, i, 0));
		char *id = db_ident(c, PQgetvalue(pk, i, 0));

		buf_printf(&b, "%s%s, %s.%s", i ? ", " : "", lit, alias, id);
		free(lit);
		free(id);
	}
	return buf_steal(&b);
}

/*
 * The incoming row of a decision table as JSON, without repctl's own
 * columns (for the conflict log and the quarantine).
 */
#define D_ROW_JSON                                                                              \
	"(to_jsonb(repctl_d) - 'repctl_vv' - 'repctl_changed_at' - 'repctl_deleted' - "         \
	"'repctl_origin' - 'repctl_t_vv' - 'repctl_t_changed' - 'repctl_t_deleted' - "          \
	"'repctl_t_origin' - 'repctl_t_exists' - 'repctl_cmp' - 'repctl_rid' - 'repctl_dot' - " \
	"'repctl_t_dot' - 'repctl_resolved')"

/* Remember a row the target refused (copies every string; row may be NULL). */
static void
quar_add(struct edge_ctx *e, const struct table_ctx *t, const char *pk, const char *row,
    const char *reason, const char *con)
{
	struct quar_rec *q;

	e->quar = xrealloc(e->quar, sizeof(*e->quar) * (size_t)(e->nquar + 1));
	q = &e->quar[e->nquar++];
	q->schema = xstrdup(t->schema);
	q->table = xstrdup(t->table);
	q->pk = xstrdup(pk);
	q->row = row ? xstrdup(row) : NULL;
	q->reason = xstrdup(reason);
	q->constraint = xstrdup(con);
}

/*
 * Remember a decided conflict; takes table, rule and msg (allocated by the
 * caller), copies the others (local_row, remote_row may be NULL).
 */
static void
conf_add(struct edge_ctx *e, char *table, const char *pk, const char *local_row,
    const char *remote_row, const char *winner, char *rule, char *msg)
{
	struct conflict_rec *c;

	e->conf = xrealloc(e->conf, sizeof(*e->conf) * (size_t)(e->nconf + 1));
	c = &e->conf[e->nconf++];
	c->table = table;
	c->pk = xstrdup(pk);
	c->local_row = local_row ? xstrdup(local_row) : NULL;
	c->remote_row = remote_row ? xstrdup(remote_row) : NULL;
	c->winner = xstrdup(winner);
	c->rule = rule;
	c->msg = msg;
	e->st->conflicts++;
}

/* Free the conflict and quarantine records from index nconf / nquar on. */
static void
records_truncate(struct edge_ctx *e, int nconf, int nquar)
{
	int i;

	for (i = nconf; i < e->nconf; i++) {
		free(e->conf[i].table);
		free(e->conf[i].pk);
		free(e->conf[i].local_row);
		free(e->conf[i].remote_row);
		free(e->conf[i].winner);
		free(e->conf[i].rule);
		free(e->conf[i].msg);
	}
	e->nconf = nconf;
	for (i = nquar; i < e->nquar; i++) {
		free(e->quar[i].schema);
		free(e->quar[i].table);
		free(e->quar[i].pk);
		free(e->quar[i].row);
		free(e->quar[i].reason);
		free(e->quar[i].constraint);
	}
	e->nquar = nquar;
}

/* One field of COPY's text format: NULL as \N, backslash, tab and newlines escaped. */
static void
copy_field(struct buf *b, const char *v)
{
	if (v == NULL) {
		buf_puts(b, "\\N");
		return;
	}
	for (; *v; v++) {
		switch (*v) {
		case '\\': buf_puts(b, "\\\\"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		default: buf_putc(b, *v);
		}
	}
}

/* Send data in COPY text format to "COPY ... FROM STDIN" on c; 0 or -1.  Bounded (db.c). */
static int
copy_in(PGconn *c, const char *sql, const char *data, size_t len, char *err, size_t errlen)
{
	char inner[ERRLEN];

	inner[0] = '\0';
	if (db_copy_begin(c, sql, inner, sizeof(inner)) < 0) {
		db_set_error(err, errlen, "starting COPY", inner);
		return -1;
	}
	if (db_copy_send(c, data, len, inner, sizeof(inner)) < 0) {
		db_set_error(err, errlen, "COPY", inner);
		(void)db_copy_end(c, "failed", inner, sizeof(inner));
		return -1;
	}
	if (db_copy_end(c, NULL, inner, sizeof(inner)) < 0) {
		db_set_error(err, errlen, "COPY", inner);
		return -1;
	}
	return 0;
}

/*
 * Decide the true conflicts of one table (repctl_cmp = 2 in the decision
 * table d), set-based: one query reads them, conflict_decide() decides each
 * in memory, one COPY and one join write every decision back (1 apply the
 * incoming version, 3 keep the target's, 4 skip).  -1 on error or abort.
 */
static int
resolve_conflicts(struct edge_ctx *e, PGconn *tc, struct table_ctx *t, PGresult *pk, const char *d,
    char *err, size_t errlen)
{
	struct buf q = BUF_INIT, dec = BUF_INIT;
	char *join = key_join(tc, pk, "repctl_d", "repctl_t");
	char *kj = key_json_args(tc, pk, "repctl_d");
	char *ccd = cc_for(t, "repctl_d"), *cct = cc_for(t, "repctl_t");
	PGresult *r;
	int i, rc = -1, ndec = 0;
	struct strategy strat;

	buf_printf(&q,
	    "SELECT repctl_d.repctl_rid, jsonb_build_object(%s)::text, "
	    "CASE WHEN repctl_d.repctl_deleted THEN NULL ELSE " D_ROW_JSON "::text END, "
	    "CASE WHEN repctl_d.repctl_t_exists THEN to_jsonb(repctl_t)::text END, "
	    "repctl_d.repctl_deleted, NOT repctl_d.repctl_t_exists, "
	    "extract(epoch FROM repctl_d.repctl_changed_at)::float8, "
	    "extract(epoch FROM repctl_d.repctl_t_changed)::float8, repctl_d.repctl_origin, "
	    "repctl_d.repctl_t_origin, %s, %s, "
	    "CASE WHEN repctl_d.repctl_deleted THEN '' ELSE md5(ROW(%s)::text) END, "
	    "CASE WHEN repctl_d.repctl_t_exists THEN md5(ROW(%s)::text) ELSE '' END "
	    "FROM %s repctl_d LEFT JOIN %s repctl_t ON %s WHERE repctl_d.repctl_cmp = 2",
	    kj, ccd, cct, t->dcols.data, t->tcols.data, d, t->qtable, join);
	r = db_query(tc, q.data, 0, NULL, err, errlen);
	if (r == NULL)
		goto out;
	memset(&strat, 0, sizeof(strat));
	strat.kind = strategy_parse(e->s->strategy);
	strat.cc = t->cc_kind;
	strat.future_limit = e->cfg->future_limit;
	for (i = 0; i < PQntuples(r); i++) {
		struct row_version local, remote;
		struct decision dec_;
		const char *winner;
		int code;

		memset(&local, 0, sizeof(local));
		memset(&remote, 0, sizeof(remote));
		remote.node = PQgetvalue(r, i, 8);
		remote.deleted = PQgetvalue(r, i, 4)[0] == 't';
		remote.changed_at = num_or(r, i, 6, 0, NULL);
		remote.value = num_or(r, i, 10, 0, &remote.has_value);
		remote.rank = node_rank(e->s, remote.node);
		remote.digest = PQgetvalue(r, i, 12);
		local.node = PQgetisnull(r, i, 9) ? e->tnode : PQgetvalue(r, i, 9);
		local.deleted = PQgetvalue(r, i, 5)[0] == 't';
		local.changed_at = num_or(r, i, 7, 0, NULL);
		local.value = num_or(r, i, 11, 0, &local.has_value);
		local.rank = node_rank(e->s, local.node);
		local.digest = PQgetvalue(r, i, 13);
		conflict_decide(&local, &remote, &strat, &dec_);
		if (dec_.res == RES_ABORT) {
			snprintf(err, errlen,
			    "conflict on %s key %s between node '%s' and node '%s' (%s): "
			    "conflict_strategy abort stops the run; resolve it by hand or change "
			    "the strategy",
			    t->qtable, PQgetvalue(r, i, 1), e->snode, e->tnode,
			    conflict_type_names[dec_.type]);
			PQclear(r);
			goto out;
		}
		code = dec_.res == RES_REMOTE ? 1 : dec_.res == RES_LOCAL ? 3 : 4;
		/*
		 * A decided conflict is a new version made here (resolved: its dot
		 * becomes this node's); two versions that agree are merged only,
		 * under the name (dot, origin, change time) of the one the strategy
		 * keeps: 3 keeps the target's, 1 takes the incoming one's.
		 */
		if ((dec_.same || dec_.type == CONFLICT_DELETE_DELETE) && dec_.merge_local)
			code = 3;
		buf_printf(&dec, "%s\t%d\t%s\n", PQgetvalue(r, i, 0), code,
		    dec_.same || dec_.type == CONFLICT_DELETE_DELETE ? "f" : "t");
		ndec++;
		if (dec_.type == CONFLICT_DELETE_DELETE || dec_.same)
			continue; /* vectors merged, nothing to decide or log */
		winner = dec_.res == RES_REMOTE ? remote.node
		    : dec_.res == RES_LOCAL     ? local.node
						: "none";
		conf_add(e, xasprintf("%s.%s", t->schema, t->table), PQgetvalue(r, i, 1),
		    local.deleted || PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3),
		    PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2), winner,
		    xasprintf("%s %s%s", conflict_type_names[dec_.type], dec_.rule,
			dec_.clamped ? " (future value clamped)" : ""),
		    xasprintf(
			"conflict on %s key %s: %s version from '%s' vs '%s': winner %s (%s%s)",
			t->qtable, PQgetvalue(r, i, 1), conflict_type_names[dec_.type], remote.node,
			local.node, winner, dec_.rule,
			dec_.clamped ? ", a future value was clamped" : ""));
	}
	PQclear(r);
	if (ndec > 0) {
		char *sql = xasprintf(
		    "CREATE TEMP TABLE %s_dec (rid bigint, code int, resolved boolean) ON COMMIT DROP",
		    d);

		if (db_exec(tc, sql, err, errlen) < 0) {
			free(sql);
			goto out;
		}
		free(sql);
		sql = xasprintf("COPY %s_dec FROM STDIN", d);
		if (copy_in(tc, sql, dec.data, dec.len, err, errlen) < 0) {
			free(sql);
			goto out;
		}
		free(sql);
		if (ndec > 1000) {
			sql = xasprintf("ANALYZE %s_dec", d);
			if (db_exec(tc, sql, err, errlen) < 0) {
				free(sql);
				goto out;
			}
			free(sql);
		}
		sql = xasprintf(
		    "UPDATE %s repctl_d SET repctl_cmp = x.code, repctl_resolved = x.resolved "
		    "FROM %s_dec x WHERE repctl_d.repctl_rid = x.rid",
		    d, d);
		if (db_exec(tc, sql, err, errlen) < 0) {
			free(sql);
			goto out;
		}
		free(sql);
	}
	rc = 0;
out:
	buf_free(&q);
	buf_free(&dec);
	free(join);
	free(kj);
	free(ccd);
	free(cct);
	return rc;
}

/*
 * The two statements that write the incoming live rows (repctl_cmp = 1):
 * an UPDATE of the rows the target held when the batch was classified
 * (locked then; nothing written where the row is already equal) and an
 * INSERT of the others, which does nothing where a row appeared since (a
 * local writer's, or another apply's): that row is the shadow check's to
 * find (apply_once).  filter narrows both to one key ($1) or is "".
 * Each returns one row: the number of rows written.
 */
static void
write_sql(
    struct table_ctx *t, const char *d, const char *jdt, const char *filter, char **upd, char **ins)
{
	struct buf set = BUF_INIT, ex = BUF_INIT, cur = BUF_INIT;
	const char *p = t->nonkeys.data;

	*upd = NULL;
	/* nonkeys is "a, b, c": build SET a = repctl_d.a, ... */
	while (p && *p) {
		const char *start = p;
		int inq = 0;

		while (*p && (inq || *p != ',')) {
			if (*p == '"')
				inq = !inq;
			p++;
		}
		buf_printf(&set, "%s%.*s = repctl_d.%.*s", set.len ? ", " : "", (int)(p - start),
		    start, (int)(p - start), start);
		buf_printf(&ex, "%srepctl_d.%.*s", ex.len ? ", " : "", (int)(p - start), start);
		buf_printf(&cur, "%srepctl_t.%.*s", cur.len ? ", " : "", (int)(p - start), start);
		if (*p == ',')
			p += 2;
	}
	if (t->nnonkeys)
		*upd =
		    xasprintf("WITH w AS (UPDATE %s repctl_t SET %s FROM %s repctl_d WHERE %s AND "
			      "repctl_d.repctl_cmp = 1 AND NOT repctl_d.repctl_deleted AND "
			      "repctl_d.repctl_t_exists%s AND ROW(%s)::text IS DISTINCT FROM "
			      "ROW(%s)::text RETURNING 1) SELECT count(*) FROM w",
			t->qtable, set.data, d, jdt, filter, cur.data, ex.data);
	*ins = xasprintf("WITH w AS (INSERT INTO %s AS repctl_t (%s) OVERRIDING SYSTEM VALUE "
			 "SELECT %s FROM %s repctl_d WHERE repctl_d.repctl_cmp = 1 AND NOT "
			 "repctl_d.repctl_deleted AND NOT repctl_d.repctl_t_exists%s "
			 "ON CONFLICT (%s) DO NOTHING RETURNING 1) SELECT count(*) FROM w",
	    t->qtable, t->cols.data, t->dcols.data, d, filter, t->keys.data);
	buf_free(&set);
	buf_free(&ex);
	buf_free(&cur);
}

/* Run one write_sql() statement; rows written or -1 (state holds the SQLSTATE). */
static long
write_run(PGconn *tc, const char *sql, int np, const char *const *p, char *err, size_t errlen,
    char state[6], char *con, size_t conlen)
{
	PGresult *r;
	long n;

	state[0] = '\0';
	if (sql == NULL)
		return 0;
	r = db_query_diag(tc, sql, np, p, err, errlen, state, con, conlen);
	if (r == NULL)
		return -1;
	n = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	return n;
}

/*
 * The set-based write broke a constraint: write the rows one by one, each
 * under a savepoint; a row refused with an integrity error (another unique
 * index, a check) is marked repctl_cmp = 5 (not applied, its version not
 * recorded) and remembered for the quarantine; the others go through.
 */
static int
quarantine_rows(struct edge_ctx *e, PGconn *tc, struct table_ctx *t, PGresult *pk, const char *d,
    const char *jdt, char *err, size_t errlen)
{
	char *kj = key_json_args(tc, pk, "repctl_d");
	char *filter = xasprintf(" AND jsonb_build_object(%s) = $1::jsonb", kj);
	char *list =
	    xasprintf("SELECT jsonb_build_object(%s)::text, " D_ROW_JSON "::text FROM %s repctl_d "
		      "WHERE repctl_cmp = 1 AND NOT repctl_deleted",
		kj, d);
	char *mark = xasprintf(
	    "UPDATE %s repctl_d SET repctl_cmp = 5 WHERE jsonb_build_object(%s) = $1::jsonb", d,
	    kj);
	char *upd, *ins;
	PGresult *rows = db_query(tc, list, 0, NULL, err, errlen);
	int i, rc = -1;

	write_sql(t, d, jdt, filter, &upd, &ins);
	if (rows == NULL)
		goto out;
	for (i = 0; i < PQntuples(rows); i++) {
		const char *p[1] = { PQgetvalue(rows, i, 0) };
		char state[6], con[128], rerr[ERRLEN];
		long nu, ni = -1;

		if (db_exec(tc, "SAVEPOINT repctl_row", err, errlen) < 0)
			goto out;
		nu = write_run(tc, upd, 1, p, rerr, sizeof(rerr), state, con, sizeof(con));
		if (nu >= 0)
			ni = write_run(tc, ins, 1, p, rerr, sizeof(rerr), state, con, sizeof(con));
		if (nu >= 0 && ni >= 0) {
			e->st->updates += nu;
			e->st->inserts += ni;
			if (db_exec(tc, "RELEASE SAVEPOINT repctl_row", err, errlen) < 0)
				goto out;
			continue;
		}
		if (strncmp(state, "23", 2) != 0) {
			snprintf(err, errlen, "%s", rerr);
			goto out;
		}
		if (db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_row", err, errlen) < 0 ||
		    db_execp(tc, mark, 1, p, err, errlen) < 0)
			goto out;
		quar_add(e, t, p[0], PQgetvalue(rows, i, 1), rerr, con);
	}
	rc = 0;
out:
	PQclear(rows);
	free(kj);
	free(filter);
	free(list);
	free(mark);
	free(upd);
	free(ins);
	return rc;
}

/*
 * Rows integrity_check() set aside in an earlier pass of this edge are not
 * applied (repctl_cmp = 5) and go to the quarantine with their reason.
 */
static int
exclude_rows(struct edge_ctx *e, PGconn *tc, struct table_ctx *t, PGresult *pk, const char *d,
    char *err, size_t errlen)
{
	struct buf arr = BUF_INIT;
	char *kj, *q;
	const char *p[1];
	PGresult *r;
	int i, k;

	for (i = 0; i < e->nexcl; i++)
		if (e->excl[i].idx == t->idx)
			buf_printf(&arr, "%s%s", arr.len ? "," : "[", e->excl[i].pk);
	if (arr.len == 0)
		return 0;
	buf_putc(&arr, ']');
	kj = key_json_args(tc, pk, "repctl_d");
	q = xasprintf(
	    "UPDATE %s repctl_d SET repctl_cmp = 5 WHERE repctl_cmp = 1 AND "
	    "jsonb_build_object(%s) IN (SELECT pg_catalog.jsonb_array_elements($1::jsonb)) "
	    "RETURNING jsonb_build_object(%s)::text, CASE WHEN repctl_deleted THEN NULL ELSE " D_ROW_JSON
	    "::text END",
	    d, kj, kj);
	p[0] = arr.data;
	r = db_query(tc, q, 1, p, err, errlen);
	free(q);
	free(kj);
	buf_free(&arr);
	if (r == NULL)
		return -1;
	for (k = 0; k < PQntuples(r); k++) {
		for (i = 0; i < e->nexcl; i++)
			if (e->excl[i].idx == t->idx &&
			    strcmp(e->excl[i].pk, PQgetvalue(r, k, 0)) == 0)
				break;
		quar_add(e, t, PQgetvalue(r, k, 0),
		    PQgetisnull(r, k, 1) ? NULL : PQgetvalue(r, k, 1),
		    i < e->nexcl ? e->excl[i].reason : "integrity",
		    i < e->nexcl ? e->excl[i].constraint : "");
	}
	PQclear(r);
	return 0;
}

/*
 * One attempt at classifying and applying one staged table on the target
 * (inside its transaction, under the caller's savepoint).  0 done, 1 a row
 * changed on the target while it was being applied (the caller rolls back
 * and decides again), -1 error.
 *
 * Why this cannot lose a local write: every committed change of a row on
 * the target, by the application or by another apply, also changes its
 * shadow row's vector in the same transaction.  The rows present are locked
 * before they are classified; a row that appears afterwards (an insert that
 * was not yet committed, whose key the INSERT then waits for) cannot be
 * locked in advance, so the shadow rows are written compare-and-swap: only
 * where the vector is still the one the decision was made against.  One
 * shadow row that moved means the decision may be stale, and the whole
 * table is decided again with what is now committed.
 */
static int
apply_once(struct edge_ctx *e, PGconn *tc, struct table_ctx *t, PGresult *pk, const char *stage,
    const char *d, long rows, char *err, size_t errlen)
{
	struct buf q = BUF_INIT, sel = BUF_INIT;
	char *jt = key_join(tc, pk, "repctl_t", "repctl_s"),
	     *jsh = key_join(tc, pk, "repctl_sh", "repctl_s");
	char *jdt = key_join(tc, pk, "repctl_t", "repctl_d"),
	     *jshd = key_join(tc, pk, "repctl_sh", "repctl_d"),
	     *first = db_ident(tc, PQgetvalue(pk, 0, 0));
	char *kt = key_list(tc, pk, "repctl_t");
	char *ltnode = db_literal(tc, e->tnode);
	char *upd = NULL, *ins = NULL;
	PGresult *r;
	int rc = -1;
	char state[6], con[128];
	long n;

	/*
	 * Lock the target rows of the batch (in key order, the table before its
	 * shadow row, as a local writer and its trigger take them), then
	 * classify every key against what is committed now.  A version is named
	 * by its dot: its origin node and that node's counter in its vector.
	 * The incoming version is old news when the target's vector already
	 * holds its dot, newer when its vector holds the target version's dot,
	 * a conflict otherwise.  Comparing whole vectors instead would take a
	 * later edit of a version that won a conflict for concurrent with the
	 * loser's counter, which the winner's vector keeps.
	 */
	/* the savepoint apply_table() rolls back to, in the same round trip */
	buf_printf(&q,
	    "SAVEPOINT repctl_try; "
	    "SELECT 1 FROM %s repctl_t JOIN %s repctl_s ON %s ORDER BY %s FOR UPDATE OF repctl_t;",
	    t->qtable, stage, jt, kt);
	buf_printf(&sel,
	    "SELECT repctl_s.*, repctl_sh.repctl_vv AS repctl_t_vv, "
	    "repctl_sh.repctl_changed_at AS repctl_t_changed, repctl_sh.repctl_deleted AS repctl_t_deleted, "
	    "repctl_sh.repctl_origin AS repctl_t_origin, (repctl_t.%s IS NOT NULL) AS repctl_t_exists, "
	    "coalesce(repctl_sh.repctl_dot, repctl_sh.repctl_origin, %s) AS repctl_t_dot, "
	    "false AS repctl_resolved, "
	    "CASE WHEN repctl_sh.repctl_vv IS NULL THEN 1 "
	    /* the target has seen the incoming version (its origin's counter): old news */
	    "WHEN coalesce((repctl_sh.repctl_vv ->> repctl_s.repctl_dot)::bigint, 0) >= "
	    "coalesce((repctl_s.repctl_vv ->> repctl_s.repctl_dot)::bigint, 0) THEN "
	    "CASE WHEN repctl_sh.repctl_vv = repctl_s.repctl_vv THEN 0 ELSE -1 END "
	    /* the incoming version has seen the target's: newer */
	    "WHEN coalesce((repctl_s.repctl_vv ->> coalesce(repctl_sh.repctl_dot, "
	    "repctl_sh.repctl_origin, %s))::bigint, 0) >= "
	    "coalesce((repctl_sh.repctl_vv ->> coalesce(repctl_sh.repctl_dot, repctl_sh.repctl_origin, "
	    "%s))::bigint, 0) "
	    "THEN 1 ELSE 2 END AS repctl_cmp, "
	    "row_number() OVER () AS repctl_rid "
	    "FROM %s repctl_s LEFT JOIN repctl.%s repctl_sh ON %s LEFT JOIN %s repctl_t ON %s",
	    first, ltnode, ltnode, ltnode, stage, t->tshadow, jsh, t->qtable, jt);
	/* a kept decision table (edge_run): created once, filled here */
	if (t->keep)
		buf_printf(&q,
		    "CREATE TEMP TABLE IF NOT EXISTS %s ON COMMIT DELETE ROWS AS %s WITH NO DATA;"
		    "INSERT INTO %s %s;",
		    d, sel.data, d, sel.data);
	else
		buf_printf(&q, "CREATE TEMP TABLE %s ON COMMIT DROP AS %s;", d, sel.data);
	if (rows > 5000)
		buf_printf(&q, "ANALYZE %s;", d);
	if (db_exec(tc, q.data, err, errlen) < 0)
		goto out;
	if (resolve_conflicts(e, tc, t, pk, d, err, errlen) < 0)
		goto out;
	if (exclude_rows(e, tc, t, pk, d, err, errlen) < 0)
		goto out;

	/* the incoming live rows: set-based, or row by row when one is refused */
	write_sql(t, d, jdt, "", &upd, &ins);
	if (db_exec(tc, "SAVEPOINT repctl_upsert", err, errlen) < 0)
		goto out;
	n = write_run(tc, upd, 0, NULL, err, errlen, state, con, sizeof(con));
	if (n >= 0) {
		e->st->updates += n;
		n = write_run(tc, ins, 0, NULL, err, errlen, state, con, sizeof(con));
		if (n >= 0)
			e->st->inserts += n;
	}
	if (n < 0 && strncmp(state, "23", 2) == 0) {
		/* one row breaks a constraint of the target: find it, set it aside */
		if (db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_upsert", err, errlen) < 0 ||
		    quarantine_rows(e, tc, t, pk, d, jdt, err, errlen) < 0)
			goto out;
	} else if (n < 0) {
		goto out;
	}
	buf_reset(&q);
	buf_printf(&q,
	    "RELEASE SAVEPOINT repctl_upsert; "
	    "WITH w AS (DELETE FROM %s repctl_t USING %s repctl_d WHERE %s AND "
	    "repctl_d.repctl_cmp = 1 AND repctl_d.repctl_deleted RETURNING 1) SELECT count(*) FROM w",
	    t->qtable, d, jdt);
	r = db_query_multi(tc, q.data, err, errlen);
	if (r == NULL)
		goto out;
	e->st->deletes += atol(PQgetvalue(r, 0, 0));
	PQclear(r);

	/*
	 * Shadow rows, compare-and-swap: merged vectors (never replaced) where
	 * the vector is still the one decided against; a new shadow row only
	 * where none has appeared.  A kept local version goes back out.
	 */
	buf_reset(&q);
	buf_printf(&q,
	    "WITH u AS (UPDATE repctl.%s repctl_sh SET "
	    "repctl_vv = repctl.vv_merge(repctl_sh.repctl_vv, repctl.vv_merge(repctl_d.repctl_vv, "
	    "repctl_d.repctl_t_vv)) || CASE WHEN repctl_d.repctl_resolved THEN "
	    "pg_catalog.jsonb_build_object(%s, GREATEST(coalesce((repctl_sh.repctl_vv ->> %s)::bigint, "
	    "0) + 1, coalesce((repctl_d.repctl_vv ->> %s)::bigint, 0) + 1, "
	    "(extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint)) "
	    "ELSE '{}'::jsonb END, "
	    "repctl_dot = CASE WHEN repctl_d.repctl_resolved THEN %s WHEN repctl_d.repctl_cmp = 3 "
	    "THEN repctl_d.repctl_t_dot ELSE repctl_d.repctl_dot END, "
	    "repctl_txid = pg_catalog.pg_current_xact_id(), "
	    "repctl_origin = CASE WHEN repctl_d.repctl_cmp = 3 THEN repctl_d.repctl_t_origin "
	    "ELSE repctl_d.repctl_origin END, "
	    "repctl_changed_at = CASE WHEN repctl_d.repctl_cmp = 3 THEN repctl_d.repctl_t_changed "
	    "ELSE repctl_d.repctl_changed_at END, "
	    "repctl_deleted = CASE WHEN repctl_d.repctl_cmp = 3 THEN NOT repctl_d.repctl_t_exists "
	    "ELSE repctl_d.repctl_deleted END "
	    "FROM %s repctl_d WHERE %s AND repctl_d.repctl_cmp IN (1, 3) AND "
	    "repctl_d.repctl_t_vv IS NOT NULL AND repctl_sh.repctl_vv = repctl_d.repctl_t_vv AND "
	    "repctl_sh.repctl_deleted = repctl_d.repctl_t_deleted RETURNING 1), "
	    "i AS (INSERT INTO repctl.%s (%s, repctl_vv, repctl_txid, repctl_origin, "
	    "repctl_changed_at, repctl_deleted, repctl_dot) SELECT %s, repctl_vv, "
	    "pg_catalog.pg_current_xact_id(), repctl_origin, repctl_changed_at, repctl_deleted, "
	    "repctl_dot "
	    "FROM %s WHERE repctl_cmp = 1 AND repctl_t_vv IS NULL ON CONFLICT (%s) DO NOTHING "
	    "RETURNING 1) "
	    "SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM i), "
	    "(SELECT count(*) FROM %s WHERE repctl_cmp IN (1, 3))",
	    t->tshadow, ltnode, ltnode, ltnode, ltnode, d, jshd, t->tshadow, t->keys.data,
	    t->keys.data, d, t->keys.data, d);
	r = db_query(tc, q.data, 0, NULL, err, errlen);
	if (r == NULL)
		goto out;
	n = atol(PQgetvalue(r, 0, 0));
	if (n < atol(PQgetvalue(r, 0, 1))) {
		log_info("%s -> %s: %s: %ld row(s) changed on '%s' while being applied: deciding "
			 "again",
		    e->snode, e->tnode, t->qtable, atol(PQgetvalue(r, 0, 1)) - n, e->tnode);
		PQclear(r);
		rc = 1;
		goto out;
	}
	PQclear(r);
	e->written += n;
	rc = 0;
out:
	buf_free(&q);
	buf_free(&sel);
	free(jt);
	free(jsh);
	free(jdt);
	free(jshd);
	free(first);
	free(kt);
	free(ltnode);
	free(upd);
	free(ins);
	return rc;
}

/*
 * Classify and apply one staged table on the target, deciding again (from a
 * savepoint) as long as rows change under the apply or a local writer
 * deadlocks with it.  The conflicts are logged once the table went through.
 */
static int
apply_table(struct edge_ctx *e, PGconn *tc, struct table_ctx *t, PGresult *pk, const char *stage,
    const char *d, long rows, char *err, size_t errlen)
{
	int attempt, rc, i;
	char rerr[ERRLEN];

	for (attempt = 1;; attempt++) {
		struct run_stats saved = *e->st;
		int nconf = e->nconf, nquar = e->nquar, retry, deadlock;
		long written = e->written;

		/* apply_once() sets SAVEPOINT repctl_try first */
		rc = apply_once(e, tc, t, pk, stage, d, rows, err, errlen);
		if (rc == 0) {
			if (db_exec(tc, "RELEASE SAVEPOINT repctl_try", err, errlen) < 0)
				return -1;
			for (i = nconf; i < e->nconf; i++)
				log_info("%s", e->conf[i].msg);
			for (i = nquar; i < e->nquar; i++)
				log_warnx("%s -> %s: %s key %s quarantined: %s", e->snode, e->tnode,
				    t->qtable, e->quar[i].pk, e->quar[i].reason);
			return 0;
		}
		/*
		 * A deadlock with a local writer is not retried here: the rows of
		 * the tables applied before this one stay locked, so it would form
		 * again; the caller rolls the whole target back and starts over.
		 */
		deadlock = strcmp(db_last_sqlstate(), "40P01") == 0 ||
		    strcmp(db_last_sqlstate(), "40001") == 0;
		retry = rc > 0;
		if (db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_try", rerr, sizeof(rerr)) < 0) {
			snprintf(err, errlen, "%s", rerr);
			return -1;
		}
		*e->st = saved;
		records_truncate(e, nconf, nquar);
		e->written = written;
		if (rc < 0 && deadlock)
			return -2;
		if (!retry)
			return -1;
		if (attempt >= 20) {
			snprintf(err, errlen,
			    "table %s: rows kept changing on node '%s' while they were applied (%d "
			    "attempts); nothing of this batch was lost: the next run tries again",
			    t->qtable, e->tnode, attempt);
			return -1;
		}
		{
			struct timespec ts = { 0, 10000000L * attempt };

			nanosleep(&ts, NULL);
		}
	}
}

static void
conflicts_free(struct edge_ctx *e)
{
	int i;

	for (i = 0; i < e->nconf; i++) {
		free(e->conf[i].table);
		free(e->conf[i].pk);
		free(e->conf[i].local_row);
		free(e->conf[i].remote_row);
		free(e->conf[i].winner);
		free(e->conf[i].rule);
		free(e->conf[i].msg);
	}
	free(e->conf);
	e->conf = NULL;
	e->nconf = 0;
	for (i = 0; i < e->nquar; i++) {
		free(e->quar[i].schema);
		free(e->quar[i].table);
		free(e->quar[i].pk);
		free(e->quar[i].row);
		free(e->quar[i].reason);
		free(e->quar[i].constraint);
	}
	free(e->quar);
	e->quar = NULL;
	e->nquar = 0;
	applied_free(e);
	excl_free(e);
	buf_free(&e->retried);
	buf_free(&e->applied);
}

/* Do two jsonb texts hold the same key? (compared by the server: order-free) */
static int
quar_same_key(PGconn *meta, const char *a, const char *b)
{
	char err[ERRLEN];
	const char *p[2] = { a, b };
	char *v = db_value(meta, "SELECT $1::jsonb = $2::jsonb", 2, p, err, sizeof(err));
	int same = v && v[0] == 't';

	free(v);
	return same;
}

/* One element of a text[] literal: double-quoted, '"' and '\\' escaped. */
static void
array_elem(struct buf *b, const char *v)
{
	buf_putc(b, '"');
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *v);
	}
	buf_putc(b, '"');
}

/*
 * After the target committed: log conflicts and advance the position of
 * every table of the edge that was not paused.
 */
static int
edge_record(PGconn *meta, struct edge_ctx *e, const char *snapshot, const char *epoch,
    PGresult *tables, const char *paused, char *err, size_t errlen)
{
	int i;

	if (db_begin(meta, err, errlen) < 0)
		return -1;
	if (e->nconf > 0) {
		/* one COPY for every conflict of the edge: linear however many there are */
		struct buf cp = BUF_INIT;
		int rc;

		for (i = 0; i < e->nconf; i++) {
			char *dot = strchr(e->conf[i].table, '.');
			char *schema = xstrndup(e->conf[i].table, (size_t)(dot - e->conf[i].table));
			const char *f[10] = { e->s->name, schema, dot + 1, e->conf[i].pk, e->tnode,
				e->conf[i].local_row, e->snode, e->conf[i].remote_row,
				e->conf[i].winner, e->conf[i].rule };
			int k;

			for (k = 0; k < 10; k++) {
				if (k)
					buf_putc(&cp, '\t');
				copy_field(&cp, f[k]);
			}
			buf_putc(&cp, '\n');
			free(schema);
		}
		rc = copy_in(meta,
		    "COPY repctl.conflict (sync, schema_name, table_name, pk, local_node, local_row, "
		    "remote_node, remote_row, winner, rule) FROM STDIN",
		    cp.data, cp.len, err, errlen);
		buf_free(&cp);
		if (rc < 0)
			goto fail;
	}
	/* rows retried and not refused again are resolved */
	if (e->retried.len) {
		char *copy = xstrdup(e->retried.data), *line, *save = NULL;

		for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *f[3], *p2 = line;
			int k, again = 0;

			for (k = 0; k < 3; k++)
				f[k] = strsep(&p2, "\t");
			if (f[2] == NULL)
				continue;
			{
				/* only a table that was applied this run can settle its rows */
				char *tag = xasprintf("\t%s\t%s\n", f[0], f[1]);
				int applied =
				    e->applied.len && strstr(e->applied.data, tag) != NULL;

				free(tag);
				if (!applied)
					continue;
			}
			for (k = 0; k < e->nquar; k++)
				if (strcmp(e->quar[k].schema, f[0]) == 0 &&
				    strcmp(e->quar[k].table, f[1]) == 0)
					again |= quar_same_key(meta, e->quar[k].pk, f[2]);
			if (!again) {
				const char *qp[6] = { e->s->name, e->snode, e->tnode, f[0], f[1],
					f[2] };

				if (db_execp(meta,
					"UPDATE repctl.quarantine SET resolved_at = now(), "
					"resolution = 'applied on retry' WHERE sync = $1 AND source = $2 "
					"AND target = $3 AND schema_name = $4 AND table_name = $5 "
					"AND pk = $6::jsonb AND resolved_at IS NULL",
					6, qp, err, errlen) < 0) {
					free(copy);
					goto fail;
				}
			}
		}
		free(copy);
	}
	for (i = 0; i < e->nquar; i++) {
		const char *qp[9] = { e->s->name, e->snode, e->tnode, e->quar[i].schema,
			e->quar[i].table, e->quar[i].pk, e->quar[i].row, e->quar[i].reason,
			e->quar[i].constraint[0] ? e->quar[i].constraint : NULL };

		if (db_execp(meta,
			"INSERT INTO repctl.quarantine (sync, source, target, schema_name, table_name, pk, "
			"row_data, reason, constraint_name) VALUES ($1, $2, $3, $4, $5, $6::jsonb, "
			"$7::jsonb, $8, $9) ON CONFLICT (sync, source, target, schema_name, table_name, "
			"pk) DO UPDATE SET attempts = repctl.quarantine.attempts + 1, last_at = now(), "
			"row_data = EXCLUDED.row_data, reason = EXCLUDED.reason, "
			"constraint_name = EXCLUDED.constraint_name, resolved_at = NULL, resolution = NULL",
			9, qp, err, errlen) < 0)
			goto fail;
	}
	{
		/* every table's position in one statement (the tables as two arrays) */
		struct buf sa = BUF_INIT, ta = BUF_INIT;
		int k = 0, rc;

		for (i = 0; i < PQntuples(tables); i++) {
			if (paused[i])
				continue;
			buf_puts(&sa, k ? "," : "{");
			buf_puts(&ta, k ? "," : "{");
			array_elem(&sa, PQgetvalue(tables, i, 0));
			array_elem(&ta, PQgetvalue(tables, i, 1));
			k++;
		}
		rc = 0;
		if (k) {
			const char *pp[7] = { e->s->name, e->snode, e->tnode, NULL, NULL, snapshot,
				epoch };

			buf_putc(&sa, '}');
			buf_putc(&ta, '}');
			pp[3] = sa.data;
			pp[4] = ta.data;
			rc = db_execp(meta,
			    "INSERT INTO repctl.position (sync, source, target, schema_name, table_name, "
			    "snapshot, source_epoch) SELECT $1, $2, $3, x.s, x.t, $6, $7 FROM "
			    "ROWS FROM (pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[])) AS x(s, t) "
			    "ON CONFLICT (sync, source, target, schema_name, table_name) DO UPDATE "
			    "SET snapshot = EXCLUDED.snapshot, source_epoch = EXCLUDED.source_epoch, "
			    "updated_at = now() "
			    "WHERE repctl.position.snapshot IS DISTINCT FROM EXCLUDED.snapshot "
			    "OR repctl.position.source_epoch IS DISTINCT FROM EXCLUDED.source_epoch",
			    7, pp, err, errlen);
		}
		buf_free(&sa);
		buf_free(&ta);
		if (rc < 0)
			goto fail;
	}
	return db_commit(meta, err, errlen);
fail:
	db_rollback(meta);
	return -1;
}

/*
 * The target refused a value of the batch while staging it (an enum label
 * it lacks, a stricter domain CHECK): stage the rows again from their JSON,
 * set-based, else one by one; a row the target cannot represent is set
 * aside for the quarantine with the server's message, the others go on.
 * raw is the JSON staging table (copy_batch raw).  Rows staged or -1.
 */
static long
stage_from_raw(struct edge_ctx *e, PGconn *tc, struct table_ctx *t, PGresult *pk, const char *raw,
    const char *stage, char *err, size_t errlen)
{
	struct buf kj = BUF_INIT, rc_ = BUF_INIT;
	char *ins = NULL, *one = NULL, *list = NULL;
	PGresult *rows = NULL, *r;
	long n = -1;
	int i;
	const char *p = t->cols.data;

	for (i = 0; i < PQntuples(pk); i++) {
		char *lit = db_literal(tc, PQgetvalue(pk, i, 0));

		buf_printf(&kj, "%s%s, x.repctl_row -> %s", i ? ", " : "", lit, lit);
		free(lit);
	}
	/* "r.a, r.b" from cols "a, b" */
	while (*p) {
		const char *start = p;
		int inq = 0;

		while (*p && (inq || *p != ',')) {
			if (*p == '"')
				inq = !inq;
			p++;
		}
		buf_printf(&rc_, "%sr.%.*s", rc_.len ? ", " : "", (int)(p - start), start);
		if (*p == ',')
			p += 2;
	}
	ins = xasprintf(
	    "INSERT INTO %s (%s, repctl_vv, repctl_changed_at, repctl_deleted, "
	    "repctl_origin, repctl_dot) SELECT %s, x.repctl_vv, x.repctl_changed_at, "
	    "x.repctl_deleted, x.repctl_origin, x.repctl_dot FROM %s x CROSS JOIN LATERAL "
	    "pg_catalog.jsonb_populate_record(NULL::%s, x.repctl_row) r",
	    stage, t->cols.data, rc_.data, raw, t->qtable);
	if (db_exec(tc, "SAVEPOINT repctl_raw", err, errlen) < 0)
		goto out;
	r = db_query(tc, ins, 0, NULL, err, errlen);
	if (r != NULL) {
		n = atol(PQcmdTuples(r));
		PQclear(r);
		if (db_exec(tc, "RELEASE SAVEPOINT repctl_raw", err, errlen) < 0)
			n = -1;
		goto out;
	}
	if (db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_raw", err, errlen) < 0)
		goto out;
	one = xasprintf("%s WHERE x.repctl_rid = $1::bigint", ins);
	list = xasprintf("SELECT x.repctl_rid, jsonb_build_object(%s)::text, x.repctl_row::text "
			 "FROM %s x ORDER BY x.repctl_rid",
	    kj.data, raw);
	rows = db_query(tc, list, 0, NULL, err, errlen);
	if (rows == NULL)
		goto out;
	n = 0;
	for (i = 0; i < PQntuples(rows); i++) {
		const char *pp[1] = { PQgetvalue(rows, i, 0) };
		char state[6], con[128], rerr[ERRLEN];

		if (db_exec(tc, "SAVEPOINT repctl_row", err, errlen) < 0) {
			n = -1;
			goto out;
		}
		r = db_query_diag(tc, one, 1, pp, rerr, sizeof(rerr), state, con, sizeof(con));
		if (r != NULL) {
			PQclear(r);
			n++;
			if (db_exec(tc, "RELEASE SAVEPOINT repctl_row", err, errlen) < 0) {
				n = -1;
				goto out;
			}
			continue;
		}
		if (PQstatus(tc) != CONNECTION_OK ||
		    db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_row", err, errlen) < 0) {
			snprintf(err, errlen, "%s", rerr);
			n = -1;
			goto out;
		}
		quar_add(e, t, PQgetvalue(rows, i, 1), PQgetvalue(rows, i, 2), rerr, con);
		log_warnx("%s -> %s: %s key %s quarantined: %s", e->snode, e->tnode, t->qtable,
		    PQgetvalue(rows, i, 1), rerr);
	}
out:
	PQclear(rows);
	buf_free(&kj);
	buf_free(&rc_);
	free(ins);
	free(one);
	free(list);
	return n;
}

/* ---- integrity on the target: foreign keys and deferrable uniques ---- */

/* Remember an applied table of this pass (its decision table d stays until commit). */
static int
applied_add(struct edge_ctx *e, PGconn *tc, const struct table_ctx *t, PGresult *pk, const char *d,
    char *err, size_t errlen)
{
	const char *p[1] = { t->qtable };
	/* the oid columns_of() read in this transaction, or asked for */
	char *oid = t->tcolsr && PQntuples(t->tcolsr) > 0
	    ? xstrdup(PQgetvalue(t->tcolsr, 0, 5))
	    : db_value(tc, "SELECT $1::regclass::oid::text", 1, p, err, errlen);
	struct applied_tab *a;
	int k;

	if (oid == NULL)
		return -1;
	e->at = xrealloc(e->at, sizeof(*e->at) * (size_t)(e->nat + 1));
	a = &e->at[e->nat++];
	memset(a, 0, sizeof(*a));
	a->qtable = xstrdup(t->qtable);
	a->schema = xstrdup(t->schema);
	a->table = xstrdup(t->table);
	snprintf(a->oid, sizeof(a->oid), "%s", oid);
	snprintf(a->d, sizeof(a->d), "%s", d);
	a->idx = t->idx;
	a->nkeys = PQntuples(pk);
	a->keys = xcalloc((size_t)a->nkeys + 1, sizeof(char *));
	for (k = 0; k < a->nkeys; k++)
		a->keys[k] = db_ident(tc, PQgetvalue(pk, k, 0));
	free(oid);
	return 0;
}

static void
applied_free(struct edge_ctx *e)
{
	int i, k;

	for (i = 0; i < e->nat; i++) {
		free(e->at[i].qtable);
		free(e->at[i].schema);
		free(e->at[i].table);
		for (k = 0; k < e->at[i].nkeys; k++)
			free(e->at[i].keys[k]);
		free(e->at[i].keys);
	}
	free(e->at);
	e->at = NULL;
	e->nat = 0;
}

static void
excl_free(struct edge_ctx *e)
{
	int i;

	for (i = 0; i < e->nexcl; i++) {
		free(e->excl[i].pk);
		free(e->excl[i].reason);
		free(e->excl[i].constraint);
	}
	free(e->excl);
	e->excl = NULL;
	e->nexcl = 0;
}

/* Remember a row not to apply (table index idx); 1 when it is new. */
static int
excl_add(struct edge_ctx *e, int idx, const char *pk, const char *reason, const char *con)
{
	int i;

	for (i = 0; i < e->nexcl; i++)
		if (e->excl[i].idx == idx && strcmp(e->excl[i].pk, pk) == 0)
			return 0;
	e->excl = xrealloc(e->excl, sizeof(*e->excl) * (size_t)(e->nexcl + 1));
	e->excl[e->nexcl].idx = idx;
	e->excl[e->nexcl].pk = xstrdup(pk);
	e->excl[e->nexcl].reason = xstrdup(reason);
	e->excl[e->nexcl].constraint = xstrdup(con);
	e->nexcl++;
	return 1;
}

/* The applied table with this oid, or NULL. */
static struct applied_tab *
applied_by_oid(struct edge_ctx *e, const char *oid)
{
	int i;

	for (i = 0; i < e->nat; i++)
		if (strcmp(e->at[i].oid, oid) == 0)
			return &e->at[i];
	return NULL;
}

/* Split "a\x1fb" into n quoted names (already quoted by the server). free each. */
static char **
split_names(const char *s, int *n)
{
	char **v = NULL, *copy = xstrdup(s), *p = copy, *tok;

	*n = 0;
	while ((tok = strsep(&p, "\x1f")) != NULL) {
		v = xrealloc(v, sizeof(char *) * (size_t)(*n + 1));
		v[(*n)++] = xstrdup(tok);
	}
	free(copy);
	return v;
}

static void
names_free(char **v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* "a.x = b.y AND ..." over two name lists */
static void
join_on(struct buf *b, const char *a, char **an, const char *bb, char **bn, int n)
{
	int i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s.%s = %s.%s", i ? " AND " : "", a, an[i], bb, bn[i]);
}

/* "'k', a.k, ..." for jsonb_build_object (names are quoted identifiers) */
static void
json_args(PGconn *c, struct buf *b, const char *a, char **names, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		/* the key of jsonb_build_object is the unquoted name */
		char *plain = xstrdup(names[i]), *lit;
		size_t len = strlen(plain);

		if (len >= 2 && plain[0] == '"') {
			char *w = plain;
			const char *r;

			for (r = names[i] + 1; *r && !(r[0] == '"' && r[1] == '\0'); r++) {
				*w++ = *r;
				if (r[0] == '"' && r[1] == '"')
					r++;
			}
			*w = '\0';
		}
		lit = db_literal(c, plain);
		buf_printf(b, "%s%s, %s.%s", i ? ", " : "", lit, a, names[i]);
		free(lit);
		free(plain);
	}
}

/* Run a query returning key texts in column 0 and add them as exclusions; count of new, -1. */
static int
excl_query(struct edge_ctx *e, PGconn *tc, const char *sql, int idx, const char *reason,
    const char *con, char *err, size_t errlen)
{
	PGresult *r = db_query(tc, sql, 0, NULL, err, errlen);
	int i, added = 0;

	if (r == NULL)
		return -1;
	for (i = 0; i < PQntuples(r); i++)
		added += excl_add(e, idx, PQgetvalue(r, i, 0), reason, con);
	PQclear(r);
	return added;
}

/*
 * After every table of the edge was applied, before the target commits:
 * the apply ran with session_replication_role = replica, so PostgreSQL
 * checked neither foreign keys nor deferrable unique constraints.  Check
 * them for what this batch touched, as they stand on the target:
 *
 *  - a parent row this batch deleted whose children remain, under ON
 *    DELETE CASCADE / SET NULL / SET DEFAULT: the action is carried out on
 *    the children as the target's own change (captured, so it replicates
 *    to every node), each child logged as a conflict naming the key;
 *  - an incoming child whose parent is not on the target, under those
 *    actions: the same (the parent's deletion wins and cascades);
 *  - under NO ACTION / RESTRICT: the incoming child without a parent, or
 *    the incoming delete of a parent that still has children, is set
 *    aside (quarantined with the constraint's name);
 *  - an incoming row that collides under a DEFERRABLE unique constraint is
 *    set aside like one refused by a plain unique index.
 *
 * Returns 1 when rows were set aside (the caller rolls the target back and
 * applies the edge again without them), 0 when everything holds, -1.
 */
static int
integrity_check(struct edge_ctx *e, PGconn *tc, char *err, size_t errlen)
{
	struct buf oids = BUF_INIT, q = BUF_INIT;
	PGresult *fk = NULL, *uq = NULL;
	int i, rc = -1, added = 0, has_fk, has_uq;
	const char *p[1];

	if (e->nat == 0)
		return 0;
	buf_putc(&oids, '{');
	for (i = 0; i < e->nat; i++)
		buf_printf(&oids, "%s%s", i ? "," : "", e->at[i].oid);
	buf_putc(&oids, '}');
	p[0] = oids.data;
	/*
	 * Does any foreign key or deferrable unique constraint touch these
	 * tables at all?  The target transaction flips session_replication_role,
	 * which empties PostgreSQL's plan cache (ResetPlanCache), so the two
	 * catalog queries below are planned again on every run even though they
	 * are prepared (4-5 ms for the foreign keys); this pre-check plans in
	 * ~0.1 ms and lets a batch of tables without such constraints skip them.
	 * Its conditions are those of the queries below, minus the joins that
	 * cannot remove a row: a false bit means that query returns nothing.
	 */
	{
		char *has = db_value(tc,
		    "SELECT (EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' "
		    "AND c.conparentid = 0 AND (c.conrelid = ANY ($1::oid[]) OR "
		    "c.confrelid = ANY ($1::oid[]))))::int + 2 * (EXISTS (SELECT 1 FROM "
		    "pg_catalog.pg_constraint c WHERE c.contype = 'u' AND c.condeferrable AND "
		    "c.conparentid = 0 AND c.conrelid = ANY ($1::oid[])))::int",
		    1, p, err, errlen);

		if (has == NULL)
			goto out;
		has_fk = (atoi(has) & 1) != 0;
		has_uq = (atoi(has) & 2) != 0;
		free(has);
	}
	if (!has_fk)
		goto unique;
	/* prepared (parsed once); still planned per run here: see the pre-check above */
	fk = db_query_prepared(tc, "repctl_fk",
	    "SELECT c.conname, c.conrelid::oid::text, c.confrelid::oid::text, c.confdeltype, "
	    "pg_catalog.string_agg(pg_catalog.quote_ident(ca.attname), E'\\x1f' ORDER BY k.ord), "
	    "pg_catalog.string_agg(pg_catalog.quote_ident(pa.attname), E'\\x1f' ORDER BY k.ord), "
	    "pg_catalog.format('%I.%I', cn.nspname, cr.relname), "
	    "pg_catalog.format('%I.%I', pn.nspname, pr.relname), cn.nspname, cr.relname, "
	    "EXISTS (SELECT 1 FROM pg_catalog.pg_index pi WHERE pi.indrelid = c.confrelid AND "
	    "pi.indisprimary AND pi.indnkeyatts = pg_catalog.array_length(c.confkey, 1) AND "
	    "pi.indkey::int2[] @> c.confkey), "
	    "(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), E'\\x1f' ORDER BY "
	    "x.o) FROM pg_catalog.pg_index i CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) "
	    "WITH ORDINALITY x(n, o) JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
	    "AND a.attnum = x.n WHERE i.indrelid = c.conrelid AND i.indisprimary) "
	    "FROM pg_catalog.pg_constraint c "
	    "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(ck, pk, ord) "
	    "JOIN pg_catalog.pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck "
	    "JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk "
	    "JOIN pg_catalog.pg_class cr ON cr.oid = c.conrelid "
	    "JOIN pg_catalog.pg_namespace cn ON cn.oid = cr.relnamespace "
	    "JOIN pg_catalog.pg_class pr ON pr.oid = c.confrelid "
	    "JOIN pg_catalog.pg_namespace pn ON pn.oid = pr.relnamespace "
	    "WHERE c.contype = 'f' AND c.conparentid = 0 AND (c.conrelid = ANY ($1::oid[]) OR "
	    "c.confrelid = ANY ($1::oid[])) "
	    "GROUP BY c.oid, c.conname, c.conrelid, c.confrelid, c.confdeltype, cn.nspname, "
	    "cr.relname, pn.nspname, pr.relname ORDER BY c.conname",
	    1, p, err, errlen);
	if (fk == NULL)
		goto out;
	for (i = 0; i < PQntuples(fk); i++) {
		const char *con = PQgetvalue(fk, i, 0), *act = PQgetvalue(fk, i, 3);
		const char *child = PQgetvalue(fk, i, 6), *parent = PQgetvalue(fk, i, 7);
		struct applied_tab *ca = applied_by_oid(e, PQgetvalue(fk, i, 1));
		struct applied_tab *pa = applied_by_oid(e, PQgetvalue(fk, i, 2));
		int refs_pk = PQgetvalue(fk, i, 10)[0] == 't', ncc, npc, nck = 0;
		char **cc = split_names(PQgetvalue(fk, i, 4), &ncc);
		char **pc = split_names(PQgetvalue(fk, i, 5), &npc);
		char **ck =
		    PQgetisnull(fk, i, 11) ? NULL : split_names(PQgetvalue(fk, i, 11), &nck);
		struct buf nn = BUF_INIT, jcp = BUF_INIT, jcy = BUF_INIT, w = BUF_INIT,
			   kx = BUF_INIT, kc = BUF_INIT, jxc = BUF_INIT;
		char *reason = NULL, *marker = NULL;
		int k, n = 0;

		for (k = 0; k < ncc; k++)
			buf_printf(&nn, "%srepctl_c.%s IS NOT NULL", k ? " AND " : "", cc[k]);
		join_on(&jcp, "repctl_c", cc, "repctl_p", pc, ncc);
		join_on(&jcy, "repctl_c", cc, "repctl_y", pc, ncc);
		if (ca) {
			char **akeys = ca->keys;

			json_args(tc, &kx, "repctl_x", akeys, ca->nkeys);
			join_on(&jxc, "repctl_x", akeys, "repctl_c", akeys, ca->nkeys);
		}
		if (ck)
			json_args(tc, &kc, "repctl_c", ck, nck);
		/* which children: incoming ones, and those of parents this batch deleted */
		if (ca)
			buf_printf(&w,
			    "EXISTS (SELECT 1 FROM %s repctl_x WHERE %s AND repctl_x.repctl_cmp = 1 AND "
			    "NOT repctl_x.repctl_deleted)",
			    ca->d, jxc.data);
		if (pa && refs_pk)
			buf_printf(&w,
			    "%sEXISTS (SELECT 1 FROM %s repctl_y WHERE %s AND repctl_y.repctl_cmp = 1 AND "
			    "repctl_y.repctl_deleted)",
			    w.len ? " OR " : "", pa->d, jcy.data);
		if (w.len == 0 || ncc != npc)
			goto next;
		if ((act[0] == 'c' || act[0] == 'n' || act[0] == 'd') && ck) {
			struct buf st = BUF_INIT, set = BUF_INIT;
			char state[6], cn[128], ferr[ERRLEN];
			PGresult *r;
			int acted;

			for (k = 0; k < ncc; k++)
				buf_printf(&set, "%s%s = %s", k ? ", " : "", cc[k],
				    act[0] == 'n' ? "NULL" : "DEFAULT");
			if (act[0] == 'c')
				buf_printf(&st, "DELETE FROM %s repctl_c", child);
			else
				buf_printf(&st, "UPDATE %s repctl_c SET %s", child, set.data);
			buf_printf(&st,
			    " WHERE %s AND NOT EXISTS (SELECT 1 FROM %s repctl_p WHERE %s) AND (%s) "
			    "RETURNING jsonb_build_object(%s)::text, to_jsonb(repctl_c)::text",
			    nn.data, parent, jcp.data, w.data, kc.data);
			/* the target's own change: PostgreSQL carries it out (deeper
			 * cascades included) and the capture records it */
			marker = db_value(
			    tc, "SELECT pg_catalog.clock_timestamp()::text", 0, NULL, err, errlen);
			if (marker == NULL ||
			    db_exec(tc,
				"SAVEPOINT repctl_fk; SET LOCAL session_replication_role = origin; "
				"SELECT pg_catalog.set_config('repctl.origin', '', true)",
				err, errlen) < 0) {
				buf_free(&st);
				buf_free(&set);
				goto fail_one;
			}
			r = db_query_diag(
			    tc, st.data, 0, NULL, ferr, sizeof(ferr), state, cn, sizeof(cn));
			if (r != NULL && PQntuples(r) > 0) {
				/* every row the cascade changed, at every depth, as captured */
				const char *mp[1] = { marker };
				PGresult *lc = db_query(tc,
				    "SELECT schema_name || '.' || table_name, pk::text, deleted FROM "
				    "repctl.local_changes_since($1::timestamptz) ORDER BY 1, 2",
				    1, mp, err, errlen);

				if (lc == NULL) {
					PQclear(r);
					buf_free(&st);
					buf_free(&set);
					goto fail_one;
				}
				for (k = 0; k < PQntuples(lc); k++) {
					conf_add(e, xstrdup(PQgetvalue(lc, k, 0)),
					    PQgetvalue(lc, k, 1), NULL, NULL, e->snode,
					    xasprintf("parent deleted: foreign key %s ON DELETE %s",
						con,
						act[0] == 'c'       ? "CASCADE"
						    : act[0] == 'n' ? "SET NULL"
								    : "SET DEFAULT"),
					    xasprintf(
						"%s key %s: a parent in %s is deleted: foreign key %s: %s",
						PQgetvalue(lc, k, 0), PQgetvalue(lc, k, 1), parent,
						con,
						PQgetvalue(lc, k, 2)[0] == 't'
						    ? "deleted too"
						    : "reference cleared"));
				}
				PQclear(lc);
			}
			acted = r != NULL;
			PQclear(r);
			buf_free(&st);
			buf_free(&set);
			{
				const char *op[1] = { e->snode };

				if ((!acted &&
					db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_fk", err,
					    errlen) < 0) ||
				    db_exec(tc,
					"SET LOCAL session_replication_role = replica; RELEASE "
					"SAVEPOINT repctl_fk",
					err, errlen) < 0 ||
				    db_execp(tc,
					"SELECT pg_catalog.set_config('repctl.origin', $1, true)",
					1, op, err, errlen) < 0)
					goto fail_one;
			}
			if (acted)
				goto next;
			/* the action itself was refused (a deeper RESTRICT): set the rows aside */
			reason = xstrdup(ferr);
		}
		/* NO ACTION / RESTRICT (or an action that failed): set the rows aside */
		if (reason == NULL)
			reason =
			    xasprintf("foreign key %s on node '%s': the row it references in %s "
				      "is not there",
				con, e->tnode, parent);
		if (ca) {
			buf_reset(&q);
			buf_printf(&q,
			    "SELECT DISTINCT jsonb_build_object(%s)::text FROM %s repctl_x JOIN %s "
			    "repctl_c ON %s WHERE repctl_x.repctl_cmp = 1 AND NOT repctl_x.repctl_deleted "
			    "AND %s AND NOT EXISTS (SELECT 1 FROM %s repctl_p WHERE %s)",
			    kx.data, ca->d, child, jxc.data, nn.data, parent, jcp.data);
			n = excl_query(e, tc, q.data, ca->idx, reason, con, err, errlen);
			if (n < 0)
				goto fail_one;
			added += n;
		}
		if (pa && refs_pk) {
			struct buf ky = BUF_INIT;
			char *preason = xasprintf("delete refused by foreign key %s on node '%s': "
						  "rows of %s still reference it",
			    con, e->tnode, child);

			json_args(tc, &ky, "repctl_y", pa->keys, pa->nkeys);
			buf_reset(&q);
			buf_printf(&q,
			    "SELECT DISTINCT jsonb_build_object(%s)::text FROM %s repctl_y JOIN %s "
			    "repctl_c ON %s WHERE repctl_y.repctl_cmp = 1 AND repctl_y.repctl_deleted "
			    "AND %s AND NOT EXISTS (SELECT 1 FROM %s repctl_p WHERE %s)",
			    ky.data, pa->d, child, jcy.data, nn.data, parent, jcp.data);
			n = excl_query(e, tc, q.data, pa->idx, preason, con, err, errlen);
			buf_free(&ky);
			free(preason);
			if (n < 0)
				goto fail_one;
			added += n;
		}
		n = 0;
		goto done_one;
fail_one:
		n = -1;
next:
done_one:
		free(reason);
		free(marker);
		names_free(cc, ncc);
		names_free(pc, npc);
		if (ck)
			names_free(ck, nck);
		buf_free(&nn);
		buf_free(&jcp);
		buf_free(&jcy);
		buf_free(&w);
		buf_free(&kx);
		buf_free(&kc);
		buf_free(&jxc);
		if (n < 0)
			goto out;
	}
unique:
	/* deferrable unique constraints: not checked under replica */
	if (!has_uq) {
		rc = added > 0;
		goto out;
	}
	uq = db_query_prepared(tc, "repctl_uq",
	    "SELECT c.conname, c.conrelid::oid::text, "
	    "pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), E'\\x1f' ORDER BY k.ord) "
	    "FROM pg_catalog.pg_constraint c CROSS JOIN LATERAL pg_catalog.unnest(c.conkey) "
	    "WITH ORDINALITY AS k(n, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid "
	    "AND a.attnum = k.n WHERE c.contype = 'u' AND c.condeferrable AND c.conparentid = 0 "
	    "AND c.conrelid = ANY ($1::oid[]) GROUP BY c.oid, c.conname, c.conrelid "
	    "ORDER BY c.conname",
	    1, p, err, errlen);
	if (uq == NULL)
		goto out;
	for (i = 0; i < PQntuples(uq); i++) {
		struct applied_tab *t = applied_by_oid(e, PQgetvalue(uq, i, 1));
		struct buf kx = BUF_INIT, jxt = BUF_INIT, ju = BUF_INIT, kt = BUF_INIT,
			   ko = BUF_INIT;
		char **uc, *reason;
		int nu, k, n;

		if (t == NULL)
			continue;
		uc = split_names(PQgetvalue(uq, i, 2), &nu);
		json_args(tc, &kx, "repctl_x", t->keys, t->nkeys);
		join_on(&jxt, "repctl_x", t->keys, "repctl_t", t->keys, t->nkeys);
		join_on(&ju, "repctl_o", uc, "repctl_t", uc, nu);
		for (k = 0; k < t->nkeys; k++) {
			buf_printf(&kt, "%srepctl_t.%s", k ? ", " : "", t->keys[k]);
			buf_printf(&ko, "%srepctl_o.%s", k ? ", " : "", t->keys[k]);
		}
		buf_reset(&q);
		buf_printf(&q,
		    "SELECT jsonb_build_object(%s)::text FROM %s repctl_x JOIN %s repctl_t ON %s "
		    "WHERE repctl_x.repctl_cmp = 1 AND NOT repctl_x.repctl_deleted AND EXISTS "
		    "(SELECT 1 FROM %s repctl_o WHERE %s AND ROW(%s) IS DISTINCT FROM ROW(%s))",
		    kx.data, t->d, t->qtable, jxt.data, t->qtable, ju.data, ko.data, kt.data);
		reason = xasprintf("duplicate key value violates unique constraint \"%s\" "
				   "(deferrable: checked by repctl)",
		    PQgetvalue(uq, i, 0));
		n = excl_query(e, tc, q.data, t->idx, reason, PQgetvalue(uq, i, 0), err, errlen);
		free(reason);
		names_free(uc, nu);
		buf_free(&kx);
		buf_free(&jxt);
		buf_free(&ju);
		buf_free(&kt);
		buf_free(&ko);
		if (n < 0)
			goto out;
		added += n;
	}
	rc = added > 0;
out:
	PQclear(fk);
	PQclear(uq);
	buf_free(&oids);
	buf_free(&q);
	return rc;
}

/* Which herd tables both nodes registered (schema, table, conflict column override). */
static PGresult *
edge_tables(
    PGconn *meta, const struct sync_def *s, const char *a, const char *b, char *err, size_t errlen)
{
	const char *p[3] = { s->herd, a, b };

	return db_query(meta,
	    "SELECT x.schema_name, x.table_name, coalesce(x.conflict_column, y.conflict_column) "
	    "FROM repctl.herd_table x JOIN repctl.herd_table y "
	    "ON y.herd = x.herd AND y.schema_name = x.schema_name AND y.table_name = x.table_name "
	    "WHERE x.herd = $1 AND x.node = $2 AND y.node = $3 ORDER BY 1, 2",
	    3, p, err, errlen);
}

/*
 * onetimecopy: fill the target's table from the source snapshot (rows and
 * version store), inside the target transaction.  With mode 2 a table that
 * already has rows is left alone and 1 is returned: its captured changes
 * then flow incrementally.  0 when copied, -1 on error.
 */
static int
full_copy(struct edge_ctx *e, PGconn *sc, PGconn *tc, struct table_ctx *t, char *err, size_t errlen)
{
	char *q, *in, *lnode = db_literal(sc, e->snode);
	long rows, srows, bytes = 0;
	char *has;
	int rc = -1;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	q = xasprintf("SELECT EXISTS (SELECT 1 FROM %s)", t->qtable);
	has = db_value(tc, q, 0, NULL, err, errlen);
	free(q);
	if (has == NULL)
		goto out;
	if (has[0] == 't' && e->s->onetimecopy == 2) {
		log_info("onetimecopy %s -> %s: %s is not empty: not copied, its captured changes "
			 "flow as usual",
		    e->snode, e->tnode, t->qtable);
		free(has);
		rc = 1;
		goto out;
	}
	if (has[0] == 't') {
		q = xasprintf("DELETE FROM %s", t->qtable);
		rc = db_exec(tc, q, err, errlen);
		free(q);
		if (rc < 0) {
			free(has);
			goto out;
		}
		rc = -1;
	}
	free(has);
	q = xasprintf("COPY (SELECT %s FROM %s) TO STDOUT", t->cols.data, t->qtable);
	in = xasprintf("COPY %s (%s) FROM STDIN", t->qtable, t->cols.data);
	rows = copy_relay(sc, q, tc, in, &bytes, err, errlen);
	free(q);
	free(in);
	if (rows < 0)
		goto out;
	/* the version store, so that causality is known from the first change */
	q = xasprintf("DELETE FROM repctl.%s", t->tshadow);
	if (db_exec(tc, q, err, errlen) < 0) {
		free(q);
		goto out;
	}
	free(q);
	q = xasprintf("COPY (SELECT %s, repctl_vv, coalesce(repctl_origin, %s), "
		      "coalesce(repctl_dot, repctl_origin, %s), repctl_changed_at, "
		      "repctl_deleted FROM repctl.%s) TO STDOUT",
	    t->keys.data, lnode, lnode, t->sshadow);
	in = xasprintf(
	    "COPY repctl.%s (%s, repctl_vv, repctl_origin, repctl_dot, repctl_changed_at, "
	    "repctl_deleted) FROM STDIN",
	    t->tshadow, t->keys.data);
	srows = copy_relay(sc, q, tc, in, &bytes, err, errlen);
	free(q);
	free(in);
	if (srows < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("onetimecopy %s -> %s: %s: %ld row(s), %.1f MB in %.2fs", e->snode, e->tnode,
	    t->qtable, rows, (double)bytes / 1e6,
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	e->st->inserts += rows;
	e->written += srows;
	rc = 0;
out:
	free(lnode);
	return rc;
}

/*
 * The source's shadow table of every table of the edge (NULL: not
 * captured there), in one query instead of two per table; 0, or -1 with err.
 */
static int
source_shadows(PGconn *sc, PGresult *tables, char **sshadow, char *err, size_t errlen)
{
	PGresult *r;
	char *has;
	int i, j, n = PQntuples(tables);

	has = db_value(sc, "SELECT pg_catalog.to_regclass('repctl.captured') IS NOT NULL", 0, NULL,
	    err, errlen);
	if (has == NULL)
		return -1;
	if (has[0] != 't') {
		free(has);
		return 0;
	}
	free(has);
	r = db_query(sc, "SELECT schema_name, table_name, shadow FROM repctl.captured", 0, NULL,
	    err, errlen);
	if (r == NULL)
		return -1;
	for (j = 0; j < PQntuples(r); j++)
		for (i = 0; i < n; i++)
			if (sshadow[i] == NULL &&
			    strcmp(PQgetvalue(r, j, 0), PQgetvalue(tables, i, 0)) == 0 &&
			    strcmp(PQgetvalue(r, j, 1), PQgetvalue(tables, i, 1)) == 0) {
				sshadow[i] = xstrdup(PQgetvalue(r, j, 2));
				break;
			}
	PQclear(r);
	return 0;
}

/*
 * Which of the candidate tables (cand[i]) have anything in their batch
 * (shadow rows beyond their position, or any shadow row when prev[i] is
 * NULL)?  One query for all of them; sets todo[i].  On a failed query every
 * candidate is taken as changed (what the per-table check did).
 */
static void
tables_with_changes(PGconn *sc, int n, const char *cand, char **sshadow, char **prev, char *todo,
    char *err, size_t errlen)
{
	struct buf q = BUF_INIT;
	PGresult *r;
	int i, k = 0;

	for (i = 0; i < n; i++) {
		if (!cand[i])
			continue;
		if (k++)
			buf_puts(&q, " UNION ALL ");
		if (prev[i]) {
			char *lprev = db_literal(sc, prev[i]);

			buf_printf(&q,
			    "SELECT %d WHERE EXISTS (SELECT 1 FROM repctl.%s sh WHERE "
			    "sh.repctl_txid >= pg_catalog.pg_snapshot_xmin(%s::pg_snapshot) AND "
			    "NOT pg_catalog.pg_visible_in_snapshot(sh.repctl_txid, %s::pg_snapshot))",
			    i, sshadow[i], lprev, lprev);
			free(lprev);
		} else {
			buf_printf(
			    &q, "SELECT %d WHERE EXISTS (SELECT 1 FROM repctl.%s)", i, sshadow[i]);
		}
	}
	if (k == 0) {
		buf_free(&q);
		return;
	}
	r = db_query(sc, q.data, 0, NULL, err, errlen);
	if (r == NULL) {
		for (i = 0; i < n; i++)
			if (cand[i])
				todo[i] = 1;
	} else {
		for (i = 0; i < PQntuples(r); i++) {
			int t = atoi(PQgetvalue(r, i, 0));

			if (t >= 0 && t < n)
				todo[t] = 1;
		}
		PQclear(r);
	}
	buf_free(&q);
}

/* The target was rolled back: forget everything of the pass, to start it again. */
static void
pass_reset(struct edge_ctx *e, char *paused, int n)
{
	records_truncate(e, 0, 0);
	memset(e->st, 0, sizeof(*e->st));
	e->written = 0;
	buf_reset(&e->applied);
	buf_reset(&e->warn);
	applied_free(e);
	memset(paused, 0, (size_t)n);
}

/*
 * Run one edge S -> T.  0 or -1 with err.  A table that cannot be applied
 * on its own account (schema drift, capture missing) is paused: it keeps
 * its position, its problem is added to e->warn, and the other tables go
 * on.
 */
static int
edge_run(struct node_pool *pool, PGconn *meta, struct edge_ctx *e, char *err, size_t errlen)
{
	PGconn *sc = NULL, *tc = NULL;
	PGresult *tables = NULL, *r;
	char **prev = NULL, **retry = NULL, **pepoch = NULL, **sshadow = NULL, *snap = NULL,
	     *epoch = NULL, *paused = NULL, *todo = NULL, *rescan = NULL;
	const char *pp[3] = { e->s->name, e->snode, e->tnode };
	int i, j, n = 0, rc = -1, any = 0, target_open = 0, all_same = 1, passes = 0, deadlocks = 0;
	char inner[ERRLEN];

	inner[0] = '\0';
	tables = edge_tables(meta, e->s, e->snode, e->tnode, err, errlen);
	if (tables == NULL)
		return -1;
	n = PQntuples(tables);
	if (n == 0) {
		PQclear(tables);
		return 0;
	}
	prev = xcalloc((size_t)n, sizeof(char *));
	pepoch = xcalloc((size_t)n, sizeof(char *));
	sshadow = xcalloc((size_t)n, sizeof(char *));
	rescan = xcalloc((size_t)n, 1);
	retry = xcalloc((size_t)n, sizeof(char *));
	paused = xcalloc((size_t)n, 1);
	todo = xcalloc((size_t)n, 1);
	r = db_query(meta,
	    "SELECT schema_name, table_name, snapshot, source_epoch FROM repctl.position "
	    "WHERE sync = $1 AND source = $2 AND target = $3",
	    3, pp, err, errlen);
	if (r == NULL)
		goto out;
	for (j = 0; j < PQntuples(r); j++)
		for (i = 0; i < n; i++)
			if (strcmp(PQgetvalue(r, j, 0), PQgetvalue(tables, i, 0)) == 0 &&
			    strcmp(PQgetvalue(r, j, 1), PQgetvalue(tables, i, 1)) == 0) {
				prev[i] = xstrdup(PQgetvalue(r, j, 2));
				if (!PQgetisnull(r, j, 3))
					pepoch[i] = xstrdup(PQgetvalue(r, j, 3));
			}
	PQclear(r);
	r = db_query(meta,
	    "SELECT schema_name, table_name, array_agg(pk ORDER BY id)::text, "
	    "string_agg(pk::text, E'\\n' ORDER BY id) FROM repctl.quarantine "
	    "WHERE sync = $1 AND source = $2 AND target = $3 AND resolved_at IS NULL GROUP BY 1, 2",
	    3, pp, err, errlen);
	if (r == NULL)
		goto out;
	for (j = 0; j < PQntuples(r); j++)
		for (i = 0; i < n; i++)
			if (strcmp(PQgetvalue(r, j, 0), PQgetvalue(tables, i, 0)) == 0 &&
			    strcmp(PQgetvalue(r, j, 1), PQgetvalue(tables, i, 1)) == 0) {
				char *lines = xstrdup(PQgetvalue(r, j, 3)), *l, *save = NULL;

				retry[i] = xstrdup(PQgetvalue(r, j, 2));
				for (l = strtok_r(lines, "\n", &save); l;
				     l = strtok_r(NULL, "\n", &save))
					buf_printf(&e->retried, "%s\t%s\t%s\n",
					    PQgetvalue(tables, i, 0), PQgetvalue(tables, i, 1), l);
				free(lines);
			}
	PQclear(r);

	sc = pool_get(pool, e->snode, inner, sizeof(inner));
	if (sc == NULL) {
		snprintf(err, errlen, "%s", inner);
		e->down = e->snode;
		goto out;
	}
	{
		/*
		 * Partitions created since the capture was installed (and no event
		 * trigger installed theirs): give them the capture before the
		 * snapshot.  A node with an older capture schema just skips this.
		 */
		char perr[ERRLEN];

		if (db_exec(sc,
			"SELECT count(repctl.capture_partitions(k.oid::regclass, 'cap_' || "
			"pg_catalog.substr(c.shadow, 3))) FROM repctl.captured c "
			"JOIN pg_catalog.pg_class k ON k.oid = pg_catalog.to_regclass("
			"pg_catalog.format('%I.%I', c.schema_name, c.table_name)) WHERE k.relkind = 'p'",
			perr, sizeof(perr)) < 0)
			log_debug("%s: partitions not checked: %s", e->snode, perr);
	}
	/*
	 * The transaction's snapshot (its first statement) and the source's
	 * incarnation: the postmaster's start time, and the time its statistics
	 * were last reset, which a crash recovery without a postmaster restart
	 * (a backend killed, the others reset) also changes.  One round trip.
	 */
	r = db_query_multi(sc,
	    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
	    "SELECT pg_catalog.pg_current_snapshot()::text, "
	    "pg_catalog.pg_postmaster_start_time()::text || ' ' || "
	    "coalesce((SELECT stats_reset::text FROM pg_catalog.pg_stat_bgwriter), '')",
	    err, errlen);
	if (r == NULL)
		goto source_fail;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || PQgetisnull(r, 0, 1)) {
		snprintf(err, errlen, "query returned no value");
		PQclear(r);
		goto source_fail;
	}
	snap = xstrdup(PQgetvalue(r, 0, 0));
	epoch = xstrdup(PQgetvalue(r, 0, 1));
	PQclear(r);
	for (i = 0; i < n; i++) {
		/*
		 * The source restarted since this position (or the position comes
		 * from a version that did not record it): it may have lost committed
		 * transactions whose xids are handed out again, so the snapshot
		 * cannot tell what is new.  Rescan the whole version store once.
		 */
		if (prev[i] && (pepoch[i] == NULL || strcmp(pepoch[i], epoch) != 0))
			rescan[i] = 1;
		if (prev[i] == NULL || strcmp(prev[i], snap) != 0 || retry[i] || rescan[i])
			all_same = 0;
	}
	for (i = 0; i < n; i++)
		if (rescan[i]) {
			log_info("%s -> %s: node '%s' restarted since the last batch (or the "
				 "position predates this version): rescanning its changes",
			    e->snode, e->tnode, e->snode);
			break;
		}
	if (all_same) {
		rc = 0; /* nothing committed since */
		goto out;
	}
	/* which tables have something to send?  Only then is the target touched. */
	if (source_shadows(sc, tables, sshadow, err, errlen) < 0)
		goto source_fail;
	{
		char *cand = xcalloc((size_t)n, 1), **from = xcalloc((size_t)n, sizeof(char *));

		for (i = 0; i < n; i++) {
			if (prev[i] && strcmp(prev[i], snap) == 0 && !retry[i] && !rescan[i])
				continue;
			if (retry[i] != NULL || (prev[i] == NULL && e->s->onetimecopy > 0) ||
			    sshadow[i] == NULL) /* not captured: table_prepare reports it */
				todo[i] = 1;
			else
				cand[i] = 1;
			from[i] = rescan[i] ? NULL : prev[i];
		}
		tables_with_changes(sc, n, cand, sshadow, from, todo, err, errlen);
		free(cand);
		free(from);
	}
	for (i = 0; i < n; i++)
		any |= todo[i];
	if (!any) {
		rc = 0;
		goto record;
	}

	tc = pool_get(pool, e->tnode, inner, sizeof(inner));
	if (tc == NULL) {
		snprintf(err, errlen, "%s", inner);
		e->down = e->tnode;
		goto out;
	}
	e->target_contacted = 1;
apply_pass : {
	/*
	 * synchronous_commit on, whatever the server's default: the edge's position
	 * advances once this commit returns, so the commit must survive a crash of
	 * the target (with it off, a crash right after loses the batch for good).
	 * One round trip: the origin is a quoted literal.
	 */
	char *lorigin = db_literal(tc, e->snode);
	char *q = xasprintf("BEGIN; SET LOCAL session_replication_role = replica; "
			    "SET LOCAL synchronous_commit = on; "
			    "SELECT pg_catalog.set_config('repctl.origin', %s, true)",
	    lorigin);
	int qrc = db_exec(tc, q, err, errlen);

	free(q);
	free(lorigin);
	if (qrc < 0)
		goto target_fail;
	target_open = 1;
}
	for (i = 0; i < n; i++) {
		struct table_ctx t;
		PGresult *pk;
		char stage[64], d[64];
		long rows;

		if (!todo[i])
			continue;
		memset(&t, 0, sizeof(t));
		t.schema = PQgetvalue(tables, i, 0);
		t.table = PQgetvalue(tables, i, 1);
		t.idx = i;
		err[0] = '\0';
		pk = NULL;
		/* a failing query of this table must not abort the edge's transactions */
		if (db_exec(tc, "SAVEPOINT repctl_table", err, errlen) < 0 ||
		    db_exec(sc, "SAVEPOINT repctl_table", err, errlen) < 0) {
			table_ctx_free(&t);
			goto target_fail;
		}
		if (table_prepare(sc, tc, e->s, e->snode, e->tnode,
			PQgetisnull(tables, i, 2) ? NULL : PQgetvalue(tables, i, 2), sshadow[i], &t,
			err, errlen) == 0)
			pk = capture_pk_columns(tc, t.qtable, err, errlen);
		if (pk == NULL || PQntuples(pk) == 0) {
			/* this table only: pause it, keep its position, go on */
			if (pk)
				snprintf(err, errlen, "table %s has no primary key on node '%s'",
				    t.qtable, e->tnode);
			log_warnx("%s -> %s: %s", e->snode, e->tnode, err);
			buf_printf(&e->warn, "%s%s", e->warn.len ? "; " : "", err);
			paused[i] = 1;
			PQclear(pk);
			table_ctx_free(&t);
			if (db_exec(tc, "ROLLBACK TO SAVEPOINT repctl_table", err, errlen) < 0 ||
			    db_exec(sc, "ROLLBACK TO SAVEPOINT repctl_table", err, errlen) < 0)
				goto target_fail;
			continue;
		}
		if (prev[i] == NULL && e->s->onetimecopy > 0) {
			int crc = full_copy(e, sc, tc, &t, err, errlen);

			if (crc <= 0) {
				PQclear(pk);
				table_ctx_free(&t);
				if (crc < 0 ||
				    db_exec(tc, "RELEASE SAVEPOINT repctl_table", err, errlen) <
					0 ||
				    db_exec(sc, "RELEASE SAVEPOINT repctl_table", err, errlen) < 0)
					goto target_fail;
				continue;
			}
		}
		/*
		 * The staging table and the decision table (apply_once) of this
		 * table.  Kept: created once per connection and
		 * signature, emptied by every commit (ON COMMIT DELETE ROWS), their
		 * rows of a rolled back transaction or savepoint gone with it.
		 * Otherwise (a column of a type or collation of the user's, which a
		 * kept table would hold on to): created and dropped by this
		 * transaction, as they always were.
		 */
		if (t.keep) {
			snprintf(stage, sizeof(stage), "repctl_s%d_%016llx", i, t.sig);
			snprintf(d, sizeof(d), "repctl_d%d_%016llx", i, t.sig);
		} else {
			snprintf(stage, sizeof(stage), "repctl_stage_%d", i);
			snprintf(d, sizeof(d), "repctl_batch_%d", i);
		}
		{
			char *q = xasprintf(
			    "CREATE TEMP TABLE %s%s %s AS SELECT %s, NULL::jsonb AS repctl_vv, "
			    "NULL::timestamptz AS repctl_changed_at, NULL::boolean AS repctl_deleted, "
			    "NULL::text AS repctl_origin, NULL::text AS repctl_dot FROM %s WITH NO DATA; "
			    "SAVEPOINT repctl_copy",
			    t.keep ? "IF NOT EXISTS " : "", stage,
			    t.keep ? "ON COMMIT DELETE ROWS" : "ON COMMIT DROP", t.cols.data,
			    t.qtable);
			int qrc = db_exec(tc, q, err, errlen);

			free(q);
			if (qrc < 0) {
				PQclear(pk);
				table_ctx_free(&t);
				goto target_fail;
			}
		}
		rows = copy_batch(sc, tc, &t, pk, e->snode, rescan[i] ? NULL : prev[i], retry[i],
		    stage, 0, err, errlen);
		if (rows < 0 && PQstatus(tc) == CONNECTION_OK && PQstatus(sc) == CONNECTION_OK &&
		    PQtransactionStatus(sc) != PQTRANS_ACTIVE) {
			/*
			 * The target refused a value (or another error of this table):
			 * stage its rows again from JSON, row by row where needed.
			 */
			char raw[40], *q;
			long staged;

			log_info("%s -> %s: %s: staging failed (%s): staging row by row", e->snode,
			    e->tnode, t.qtable, err);
			snprintf(raw, sizeof(raw), "repctl_raw_%d", i);
			q = xasprintf(
			    "ROLLBACK TO SAVEPOINT repctl_copy; "
			    "CREATE TEMP TABLE %s (repctl_rid bigserial, repctl_row jsonb, "
			    "repctl_vv jsonb, repctl_changed_at timestamptz, repctl_deleted "
			    "boolean, repctl_origin text, repctl_dot text) ON COMMIT DROP",
			    raw);
			rows = -1;
			if (db_exec(tc, q, err, errlen) == 0 &&
			    db_exec(sc,
				"ROLLBACK TO SAVEPOINT repctl_table; SAVEPOINT repctl_table", err,
				errlen) == 0 &&
			    copy_batch(sc, tc, &t, pk, e->snode, rescan[i] ? NULL : prev[i],
				retry[i], raw, 1, err, errlen) >= 0 &&
			    (staged = stage_from_raw(e, tc, &t, pk, raw, stage, err, errlen)) >= 0)
				rows = staged;
			free(q);
		}
		if (rows > 0) {
			int arc = apply_table(e, tc, &t, pk, stage, d, rows, err, errlen);

			if (arc == -2 && ++deadlocks <= 5) {
				/* a local writer deadlocked with the apply: start the edge over */
				struct timespec ts = { 0, 50000000L * deadlocks };

				log_info("%s -> %s: %s: %s: applying the batch again", e->snode,
				    e->tnode, t.qtable, err);
				PQclear(pk);
				table_ctx_free(&t);
				db_rollback(tc);
				target_open = 0;
				nanosleep(&ts, NULL);
				pass_reset(e, paused, n);
				if (db_exec(sc, "ROLLBACK TO SAVEPOINT repctl_table", err, errlen) <
				    0)
					goto source_fail;
				goto apply_pass;
			}
			if (arc < 0) {
				PQclear(pk);
				table_ctx_free(&t);
				goto target_fail;
			}
		}
		if (rows < 0) {
			PQclear(pk);
			table_ctx_free(&t);
			goto target_fail;
		}
		if (rows > 0) {
			log_debug("%s -> %s: %s: %ld key(s) in batch", e->snode, e->tnode, t.qtable,
			    rows);
			buf_printf(&e->applied, "\t%s\t%s\n", t.schema, t.table);
			if (applied_add(e, tc, &t, pk, d, err, errlen) < 0) {
				PQclear(pk);
				table_ctx_free(&t);
				goto target_fail;
			}
		}
		PQclear(pk);
		table_ctx_free(&t);
		if (db_exec(tc, "RELEASE SAVEPOINT repctl_table", err, errlen) < 0 ||
		    db_exec(sc, "RELEASE SAVEPOINT repctl_table", err, errlen) < 0)
			goto target_fail;
	}
	/* foreign keys and deferrable uniques, which replica mode does not check */
	switch (integrity_check(e, tc, err, errlen)) {
	case -1: goto target_fail;
	case 1:
		if (++passes > 8) {
			snprintf(err, errlen,
			    "rows kept breaking foreign keys or unique constraints on node '%s' "
			    "after %d passes; nothing was applied, the next run tries again",
			    e->tnode, passes);
			goto target_fail;
		}
		log_info("%s -> %s: %d row(s) set aside for integrity: applying the batch again "
			 "without them",
		    e->snode, e->tnode, e->nexcl);
		db_rollback(tc);
		target_open = 0;
		pass_reset(e, paused, n);
		goto apply_pass;
	default: break;
	}
	for (i = 0; i < e->nconf; i++)
		if (e->conf[i].msg && strstr(e->conf[i].rule, "parent deleted"))
			log_info("%s", e->conf[i].msg);
	/* wake the target's own outgoing syncs, saying where these changes came from:
	 * the coordinator does not wake a sync whose only target is that source (it
	 * would carry nothing but echoes); the target's own changes made here (foreign
	 * key actions) notify without a source through the capture trigger */
	if (e->written > 0) {
		const char *np[1] = { e->snode };

		if (db_execp(tc, "SELECT pg_catalog.pg_notify('repctl', 'from:' || $1)", 1, np, err,
			errlen) < 0)
			goto target_fail;
	}
	/* a conflict decided here is a new version of this node, which the source
	 * must get too: wake every outgoing sync */
	if (e->nconf > 0 &&
	    db_exec(tc, "SELECT pg_catalog.pg_notify('repctl', '')", err, errlen) < 0)
		goto target_fail;
	if (db_commit(tc, err, errlen) < 0)
		goto target_fail;
	target_open = 0;
record:
	db_rollback(sc); /* end the read-only snapshot */
	if (edge_record(meta, e, snap, epoch, tables, paused, err, errlen) < 0)
		goto out;
	rc = 0;
	goto out;
source_fail : {
	char *m = xasprintf("node '%s' (source): %s", e->snode, err);

	snprintf(err, errlen, "%s", m);
	free(m);
	if (PQstatus(sc) != CONNECTION_OK)
		e->down = e->snode;
	pool_drop(pool, e->snode);
	sc = NULL;
}
	goto out;
target_fail : {
	char *m = xasprintf("applying %s -> %s: %s", e->snode, e->tnode, err);

	snprintf(err, errlen, "%s", m);
	free(m);
}
	if (target_open)
		db_rollback(tc);
	if (tc && PQstatus(tc) != CONNECTION_OK) {
		e->down = e->tnode;
		pool_drop(pool, e->tnode);
	} else if (sc && PQstatus(sc) != CONNECTION_OK) {
		/* the source died while the target was being written (mid-COPY) */
		e->down = e->snode;
	}
out:
	if (sc && PQstatus(sc) == CONNECTION_OK)
		db_rollback(sc);
	else if (sc)
		pool_drop(pool, e->snode);
	for (i = 0; i < n; i++) {
		free(prev[i]);
		free(pepoch[i]);
		free(retry[i]);
		free(sshadow[i]);
	}
	free(prev);
	free(pepoch);
	free(sshadow);
	free(rescan);
	free(epoch);
	free(retry);
	free(paused);
	free(todo);
	PQclear(tables);
	free(snap);
	return rc;
}

/*
 * Circuit breaker: 1 when the circuit of node a or of node b is open (skip
 * the edge); one query for both.  An error reads as closed.
 */
static int
circuit_open(PGconn *meta, const char *a, const char *b)
{
	char err[ERRLEN];
	const char *p[2] = { a, b };
	PGresult *r = db_query(meta,
	    "SELECT 1 FROM repctl.node_state WHERE node IN ($1, $2) AND circuit_open_until > now() "
	    "LIMIT 1",
	    2, p, err, sizeof(err));
	int open = r && PQntuples(r) > 0;

	PQclear(r);
	return open;
}

/*
 * Record the outcome of an edge for node (and node2 when not NULL, with the
 * same error): one statement, one row per node.
 */
static void
node_result(
    PGconn *meta, const struct config *cfg, const char *node, const char *node2, const char *error)
{
	char err[ERRLEN], fails[16], reset[16];
	const char *p[5] = { node, error, fails, reset, node2 };

	snprintf(fails, sizeof(fails), "%d", cfg->circuit_failures);
	snprintf(reset, sizeof(reset), "%d", cfg->circuit_reset);
	if (db_execp(meta,
		"INSERT INTO repctl.node_state AS s (node, failures, last_contact, last_error) "
		"SELECT v.n, CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END, "
		"CASE WHEN $2::text IS NULL THEN now() END, $2 "
		"FROM (VALUES ($1::text), ($5::text)) v(n) WHERE v.n IS NOT NULL "
		"ON CONFLICT (node) DO UPDATE SET "
		"failures = CASE WHEN $2::text IS NULL THEN 0 ELSE s.failures + 1 END, "
		"last_contact = CASE WHEN $2::text IS NULL THEN now() ELSE s.last_contact END, "
		"last_error = $2, "
		"circuit_open_until = CASE WHEN $2::text IS NULL THEN NULL "
		"  WHEN s.failures + 1 >= $3::int THEN now() + make_interval(secs => $4::int) "
		"  ELSE s.circuit_open_until END, updated_at = now() "
		/* a success on a healthy node is written at most every 10 s: a fleet's
		 * runs would otherwise each commit (and flush) the same row */
		"WHERE $2::text IS NOT NULL OR s.failures <> 0 OR s.last_error IS NOT NULL "
		"OR s.circuit_open_until IS NOT NULL OR s.last_contact IS NULL "
		"OR s.last_contact < now() - interval '10 seconds'",
		5, p, err, sizeof(err)) < 0)
		log_warnx("cannot record the state of node '%s'%s%s%s: %s", node,
		    node2 ? " and node '" : "", node2 ? node2 : "", node2 ? "'" : "", err);
}

#define RUN_LOCK_KEY LOCK_SYNC_RUN ", pg_catalog.hashtext($1)"

int
sync_lock(PGconn *meta, const char *sync, int wait, char *err, size_t errlen)
{
	const char *p[1] = { sync };
	char *got = db_value(
	    meta, "SELECT pg_catalog.pg_try_advisory_lock(" RUN_LOCK_KEY ")", 1, p, err, errlen);
	int locked = got && got[0] == 't';
	char holder[512];
	PGresult *r;

	if (got == NULL)
		return -1;
	free(got);
	if (locked)
		return 1;
	r = db_query(meta,
	    "SELECT coalesce(nullif(a.application_name, ''), 'a session') || ' (server pid ' || "
	    "l.pid || coalesce(', from ' || host(a.client_addr), '') || ')' "
	    "FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
	    "WHERE l.locktype = 'advisory' AND l.classid = " LOCK_SYNC_RUN " AND l.objid = "
	    "pg_catalog.hashtext($1)::oid AND l.objsubid = 2 AND l.granted",
	    1, p, err, errlen);
	snprintf(holder, sizeof(holder), "%s",
	    r && PQntuples(r) ? PQgetvalue(r, 0, 0) : "a process that just finished");
	PQclear(r);
	if (!wait) {
		snprintf(err, errlen, "sync %s is being run by %s", sync, holder);
		return 0;
	}
	log_info("sync %s is being run by %s: waiting for that run to end", sync, holder);
	if (db_execp(meta, "SELECT pg_catalog.pg_advisory_lock(" RUN_LOCK_KEY ")", 1, p, err,
		errlen) < 0)
		return -1;
	return 1;
}

void
sync_unlock(PGconn *meta, const char *sync)
{
	char err[ERRLEN];
	const char *p[1] = { sync };

	if (PQstatus(meta) == CONNECTION_OK &&
	    db_execp(meta, "SELECT pg_catalog.pg_advisory_unlock(" RUN_LOCK_KEY ")", 1, p, err,
		sizeof(err)) < 0)
		log_warnx("cannot release the run lock of sync %s: %s", sync, err);
}

static int sync_run_locked(struct node_pool *pool, PGconn *meta, const struct sync_def *s,
    const struct config *cfg, struct run_stats *st, char *err, size_t errlen);

/*
 * One run under the sync's run lock.  Holding it, any run row of the sync
 * still open belongs to a process that died (or was stopped) in the middle:
 * it is closed as interrupted, before this run's row is written, so the
 * history never shows two runs of one sync at once.
 */
int
sync_run(struct node_pool *pool, PGconn *meta, const struct sync_def *s, const struct config *cfg,
    struct run_stats *st, char *err, size_t errlen)
{
	const char *p[1] = { s->name };
	int l = sync_lock(meta, s->name, 0, err, errlen), rc;

	memset(st, 0, sizeof(*st));
	if (l <= 0) {
		st->busy = l == 0;
		return -1;
	}
	if (db_execp(meta,
		"UPDATE repctl.run SET ended_at = clock_timestamp(), ok = false, error = "
		"'interrupted: the process running it ended (killed or stopped) before it finished' "
		"WHERE sync = $1 AND ended_at IS NULL",
		1, p, err, errlen) < 0) {
		sync_unlock(meta, s->name);
		return -1;
	}
	rc = sync_run_locked(pool, meta, s, cfg, st, err, errlen);
	sync_unlock(meta, s->name);
	return rc;
}

static int
sync_run_locked(struct node_pool *pool, PGconn *meta, const struct sync_def *s,
    const struct config *cfg, struct run_stats *st, char *err, size_t errlen)
{
	char rid[32], first_err[ERRLEN];
	struct buf warn = BUF_INIT;
	int i, j, rc = 0;
	const char *p1[1] = { s->name };
	char *id;

	memset(st, 0, sizeof(*st));
	first_err[0] = '\0';
	id = db_value(
	    meta, "INSERT INTO repctl.run (sync) VALUES ($1) RETURNING id", 1, p1, err, errlen);
	if (id == NULL)
		return -1;
	snprintf(rid, sizeof(rid), "%s", id);
	free(id);
	for (i = 0; i < s->nm; i++) {
		if (!s->m[i].source)
			continue;
		for (j = 0; j < s->nm; j++) {
			struct edge_ctx e;
			struct run_stats est; /* this edge's counts: kept only if it committed */
			char eerr[ERRLEN];
			if (i == j || !s->m[j].target)
				continue;
			if (circuit_open(meta, s->m[i].node, s->m[j].node)) {
				snprintf(eerr, sizeof(eerr),
				    "edge %s -> %s skipped: circuit open (node failed repeatedly; "
				    "next try after circuit.reset seconds)",
				    s->m[i].node, s->m[j].node);
				st->edges_failed++;
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "%s", eerr);
				rc = -1;
				continue;
			}
			memset(&e, 0, sizeof(e));
			e.s = s;
			e.cfg = cfg;
			e.snode = s->m[i].node;
			e.tnode = s->m[j].node;
			e.srank = i;
			e.trank = j;
			memset(&est, 0, sizeof(est));
			e.st = &est;
			eerr[0] = '\0';
			if (edge_run(pool, meta, &e, eerr, sizeof(eerr)) < 0) {
				st->edges_failed++;
				log_warnx("sync %s: %s", s->name, eerr);
				if (!first_err[0])
					snprintf(first_err, sizeof(first_err), "%s", eerr);
				rc = -1;
				if (e.down) /* the breaker counts unreachable nodes only */
					node_result(meta, cfg, e.down, NULL, eerr);
			} else {
				st->edges_ok++;
				st->inserts += est.inserts;
				st->updates += est.updates;
				st->deletes += est.deletes;
				st->conflicts += est.conflicts;
				/* an edge with nothing to send never reached the target */
				node_result(meta, cfg, s->m[i].node,
				    e.target_contacted && strcmp(s->m[i].node, s->m[j].node) != 0
					? s->m[j].node
					: NULL,
				    NULL);
			}
			if (e.warn.len) {
				buf_printf(&warn, "%s%s", warn.len ? "; " : "", e.warn.data);
				st->paused++;
			}
			buf_free(&e.warn);
			conflicts_free(&e);
		}
	}
	{
		char ins[24], upd[24], del[24], con[24], eo[16], ef[16];
		const char *p[10];

		if (warn.len && !first_err[0])
			snprintf(first_err, sizeof(first_err), "%s", warn.data);
		if (warn.len)
			rc = -1;
		p[0] = rid;
		p[1] = rc == 0 ? "true" : "false";
		p[2] = ins;
		p[3] = upd;
		p[4] = del;
		p[5] = con;
		p[6] = first_err[0] ? first_err : NULL;
		p[7] = eo;
		p[8] = ef;
		p[9] = warn.len ? warn.data : NULL;

		snprintf(ins, sizeof(ins), "%ld", st->inserts);
		snprintf(upd, sizeof(upd), "%ld", st->updates);
		snprintf(del, sizeof(del), "%ld", st->deletes);
		snprintf(con, sizeof(con), "%ld", st->conflicts);
		snprintf(eo, sizeof(eo), "%d", st->edges_ok);
		snprintf(ef, sizeof(ef), "%d", st->edges_failed);
		if (db_execp(meta,
			"UPDATE repctl.run SET ended_at = clock_timestamp(), ok = $2::boolean, "
			"inserts = $3::bigint, updates = $4::bigint, deletes = $5::bigint, "
			"conflicts = $6::bigint, error = $7, edges_ok = $8::int, edges_failed = $9::int, "
			"warning = $10 WHERE id = $1::bigint",
			10, p, err, errlen) < 0) {
			buf_free(&warn);
			return -1;
		}
		buf_free(&warn);
	}
	if (rc < 0)
		snprintf(err, errlen, "%s", first_err);
	return rc;
}

long
sync_pending(
    struct node_pool *pool, PGconn *meta, const struct sync_def *s, char *err, size_t errlen)
{
	long total = 0;
	int i, j, k;

	for (i = 0; i < s->nm; i++) {
		PGconn *sc;

		if (!s->m[i].source)
			continue;
		sc = pool_get(pool, s->m[i].node, err, errlen);
		if (sc == NULL)
			return -1;
		for (j = 0; j < s->nm; j++) {
			const char *pp[3] = { s->name, s->m[i].node, s->m[j].node };
			PGresult *tables, *r;
			char *prev = NULL;

			if (i == j || !s->m[j].target)
				continue;
			tables = edge_tables(meta, s, s->m[i].node, s->m[j].node, err, errlen);
			if (tables == NULL)
				return -1;
			for (k = 0; k < PQntuples(tables); k++) {
				const char *tp[5] = { pp[0], pp[1], pp[2], PQgetvalue(tables, k, 0),
					PQgetvalue(tables, k, 1) };

				free(prev);
				prev = NULL;
				r = db_query(meta,
				    "SELECT snapshot FROM repctl.position WHERE sync = $1 AND "
				    "source = $2 AND target = $3 AND schema_name = $4 AND "
				    "table_name = $5",
				    5, tp, err, errlen);
				if (r == NULL) {
					PQclear(tables);
					return -1;
				}
				if (PQntuples(r))
					prev = xstrdup(PQgetvalue(r, 0, 0));
				PQclear(r);
				char *sh = capture_shadow(sc, PQgetvalue(tables, k, 0),
				    PQgetvalue(tables, k, 1), err, errlen);
				char *q, *v;
				const char *qp[1] = { prev };

				if (sh == NULL) {
					if (err[0] == '\0')
						continue; /* not captured there: nothing to count */
					pool_failed(pool, s->m[i].node, err);
					PQclear(tables);
					free(prev);
					return -1;
				}
				q = xasprintf(
				    "SELECT count(*) FROM repctl.%s sh WHERE $1::text IS NULL OR "
				    "(sh.repctl_txid >= pg_catalog.pg_snapshot_xmin($1::pg_snapshot) "
				    "AND NOT pg_catalog.pg_visible_in_snapshot(sh.repctl_txid, "
				    "$1::pg_snapshot))",
				    sh);
				v = db_value(sc, q, 1, qp, err, errlen);
				free(q);
				free(sh);
				if (v == NULL) {
					/* a partial count would look like progress: none; and
					 * a node that hung once is not asked again by this
					 * status (fail-fast pool) */
					pool_failed(pool, s->m[i].node, err);
					PQclear(tables);
					free(prev);
					return -1;
				}
				total += atol(v);
				free(v);
			}
			PQclear(tables);
			free(prev);
		}
	}
	return total;
}

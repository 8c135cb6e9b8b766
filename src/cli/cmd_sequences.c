/*
 * cmd_sequences.c - partition sequences SYNC [--step=N]: distinct ids per
 * node for every primary key filled from a sequence.
 *
 * Each node's sequence counts on its own, so two nodes both hand out id 42.
 * This gives every node of the sync a residue r (1..step) and makes every
 * sequence that fills a key of the sync's tables, on every node, hand out
 * only values v = r (mod step): INCREMENT BY step, START WITH the first such
 * value (what TRUNCATE ... RESTART IDENTITY goes back to) and RESTART WITH
 * the first such value above the largest id any node of the sync holds or
 * has handed out, so no id already in use anywhere comes again.
 *
 * The step is the same for the whole fleet (default 10; --step sets it the
 * first time, and changes it only when every node that has a residue is in
 * this sync).  A node keeps its residue from one run to the next; a node
 * without one takes its position in the sync's dbs= list plus one when no
 * other node has that residue, else the smallest free one.  So after
 * `add database` of a new client and its syncs, running the command for
 * one of them gives the client a free residue and leaves the others alone
 * (their next values only move up when the new node holds larger ids).
 *
 * Every node must be reachable.  In a first phase each node's sequences are
 * altered (which locks them: nothing can call nextval meanwhile) and read,
 * with the largest key of every table they fill; the new values are then
 * set and all nodes commit; only then is the metadata (repctl.seq_partition)
 * written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "keyseq.h"
#include "meta.h"
#include "parse.h"
#include "sync.h"
#include "xmalloc.h"

#define DEFAULT_STEP 10

struct pnode {
	const char *name;
	int ord;
	PGconn *c;
	int residue;
	int had_residue;
	int open; /* transaction open */
};

/* One sequence on one node. */
struct pseq {
	int node;         /* index into the nodes */
	struct keyseq *k; /* the first key column it fills (sequence identity and state) */
	long long old_increment;
	long long high; /* largest id in use anywhere for the columns it fills */
	long long next, start;
	int changed;
};

struct pctx {
	struct pnode *nodes;
	int n;
};

static PGconn *
get_conn(void *ud, const char *node)
{
	struct pctx *p = ud;
	int i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->nodes[i].name, node) == 0)
			return p->nodes[i].c;
	return NULL;
}

static int
node_index(struct pctx *p, const char *node)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->nodes[i].name, node) == 0)
			return i;
	return -1;
}

/*
 * The largest value a sequence has handed out (read after the ALTER, so its
 * increment is the step): the last value, or when it was already stepped by
 * the step, the value before its next one (anything it handed out before it
 * was partitioned lay below the ids in use then, which the keys account for).
 */
static long long
handed_out(const struct pseq *p, int step)
{
	const struct keyseq *k = p->k;

	if (p->old_increment == step)
		return keyseq_next(k) - step;
	return k->is_called ? k->last_value : k->last_value - 1;
}

/* Residues taken by nodes outside this sync (fleet-wide), as a bitmap of size step+1. */
static int
taken_residues(PGconn *meta, const char *sync, char *taken, int step, char *err, size_t errlen)
{
	const char *p[1] = { sync };
	PGresult *r = db_query(meta,
	    "SELECT DISTINCT residue FROM repctl.seq_partition WHERE node NOT IN "
	    "(SELECT node FROM repctl.sync_node WHERE sync = $1)",
	    1, p, err, errlen);
	int i;

	if (r == NULL)
		return -1;
	for (i = 0; i < PQntuples(r); i++) {
		int v = atoi(PQgetvalue(r, i, 0));

		if (v >= 1 && v <= step)
			taken[v] = 1;
	}
	PQclear(r);
	return 0;
}

/* Decide the fleet step: recorded, or --step, or the default.  0 or -1 (printed). */
static int
choose_step(PGconn *meta, const char *sync, const char *opt, int nnodes, int *step)
{
	char err[ERRLEN];
	const char *p[1] = { sync };
	PGresult *r;
	long v = 0;
	int recorded = 0;

	if (opt && parse_long(opt, 2, 1000000, &v) < 0) {
		cmd_error(
		    "--step=%s: give a whole number from 2 to 1000000 (at least the number of "
		    "nodes, with room for the ones to come)",
		    opt);
		return -1;
	}
	r = db_query(meta,
	    "SELECT max(step), string_agg(DISTINCT node, ', ') FILTER (WHERE node NOT IN "
	    "(SELECT node FROM repctl.sync_node WHERE sync = $1)) FROM repctl.seq_partition",
	    1, p, err, sizeof(err));
	if (r == NULL) {
		cmd_error("%s", err);
		return -1;
	}
	if (!PQgetisnull(r, 0, 0))
		recorded = atoi(PQgetvalue(r, 0, 0));
	if (recorded && opt && v != recorded && !PQgetisnull(r, 0, 1)) {
		cmd_error("the fleet's sequences are partitioned with step %d (nodes %s, outside "
			  "sync '%s', use it); --step=%ld would let their ids collide\nhint: leave "
			  "out --step, or include those nodes; nothing was changed",
		    recorded, PQgetvalue(r, 0, 1), sync, v);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	*step = opt ? (int)v : recorded ? recorded : DEFAULT_STEP;
	if (*step < nnodes) {
		cmd_error("step %d is smaller than the %d nodes of sync '%s': each node needs its "
			  "own residue\nhint: --step=%d or more (leave room for nodes to come); "
			  "nothing was changed",
		    *step, nnodes, sync, nnodes < 10 ? 10 : nnodes * 2);
		return -1;
	}
	return 0;
}

static int
choose_residues(PGconn *meta, const char *sync, struct pctx *p, int step)
{
	char err[ERRLEN];
	char *taken = xcalloc((size_t)step + 1, 1);
	int i, rc = -1;

	if (taken_residues(meta, sync, taken, step, err, sizeof(err)) < 0) {
		cmd_error("%s", err);
		goto out;
	}
	/* the residues nodes already have (kept when free) */
	for (i = 0; i < p->n; i++) {
		const char *q[1] = { p->nodes[i].name };
		char *v =
		    db_value(meta, "SELECT min(residue) FROM repctl.seq_partition WHERE node = $1",
			1, q, err, sizeof(err));

		p->nodes[i].residue = v && *v ? atoi(v) : 0;
		free(v);
	}
	{
		int *res = xcalloc((size_t)p->n + 1, sizeof(int)), full;

		for (i = 0; i < p->n; i++)
			res[i] = p->nodes[i].residue;
		full = keyseq_assign_residues(p->n, res, taken, step);
		for (i = 0; i < p->n; i++) {
			p->nodes[i].had_residue = res[i] != 0 && res[i] == p->nodes[i].residue;
			p->nodes[i].residue = res[i];
		}
		free(res);
		if (full >= 0) {
			cmd_error(
			    "no residue is free for node '%s': every one of 1..%d is taken by "
			    "another node\nhint: remove nodes that are gone ('repctl remove "
			    "database'), or choose a larger step for the whole fleet; nothing was "
			    "changed",
			    p->nodes[full].name, step);
			goto out;
		}
	}
	rc = 0;
out:
	free(taken);
	return rc;
}

static void
rollback_all(struct pctx *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (p->nodes[i].open) {
			db_rollback(p->nodes[i].c);
			p->nodes[i].open = 0;
		}
}

/* Largest value of one key column on its node (inside the open transaction); 1 found. */
static int
column_max(PGconn *c, const struct keyseq *k, long long *out, char *err, size_t errlen)
{
	char *qt = db_qualified(c, k->schema, k->table), *qc = db_ident(c, k->column);
	char *sql = xasprintf("SELECT coalesce(max(%s)::bigint::text, '') FROM %s", qc, qt);
	char *v = db_value(c, sql, 0, NULL, err, errlen);
	int rc;

	free(sql);
	free(qt);
	free(qc);
	if (v == NULL)
		return -1;
	rc = *v ? 1 : 0;
	if (rc)
		*out = strtoll(v, NULL, 10);
	free(v);
	return rc;
}

CMD_HANDLER(cmd_partition_sequences)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *step_opt = args_get(args, "step");
	struct sync_def s;
	struct pctx p;
	struct keyseq_set ks = { NULL, 0 };
	struct pseq *ps = NULL;
	long long *high = NULL; /* per key column entry: largest id in use anywhere */
	int nps = 0, i, j, step = 0, rc = 1, found;

	memset(&p, 0, sizeof(p));
	found = sync_load(ctx->meta, name, &s, err, sizeof(err));
	if (found != 0) {
		cmd_lookup_error("sync", name, found < 0 ? err : NULL);
		return 1;
	}
	p.n = s.nm;
	p.nodes = xcalloc((size_t)s.nm + 1, sizeof(*p.nodes));
	for (i = 0; i < s.nm; i++) {
		struct node n;

		p.nodes[i].name = s.m[i].node;
		p.nodes[i].ord = i;
		found = meta_node_get(ctx->meta, s.m[i].node, &n, err, sizeof(err));
		if (found == 0)
			p.nodes[i].c = node_connect(ctx->cfg, &n, err, sizeof(err));
		else if (found > 0)
			snprintf(err, sizeof(err), "node '%s' is not in the metadata", s.m[i].node);
		node_clear(&n);
		if (p.nodes[i].c == NULL) {
			const char *hint = db_connect_hint(err);

			cmd_error(
			    "%s%s%s\nevery node of the sync must be reachable (the new values "
			    "must lie above the largest id on any of them); nothing was changed",
			    err, hint ? "\nhint: " : "", hint ? hint : "");
			goto out;
		}
	}
	if (keyseq_collect_sync(ctx->meta, name, get_conn, &p, &ks, NULL, err, sizeof(err)) < 0) {
		cmd_error("%s\nnothing was changed", err);
		goto out;
	}
	if (ks.n == 0) {
		printf("sync '%s': no primary key of its tables takes its values from a sequence; "
		       "nothing to partition\n",
		    name);
		rc = 0;
		goto out;
	}
	if (choose_step(ctx->meta, name, step_opt, s.nm, &step) < 0 ||
	    choose_residues(ctx->meta, name, &p, step) < 0)
		goto out;

	/* the distinct sequences per node */
	for (i = 0; i < ks.n; i++) {
		int ni = node_index(&p, ks.k[i].node);

		for (j = 0; j < nps; j++)
			if (ps[j].node == ni &&
			    strcmp(ps[j].k->seq_schema, ks.k[i].seq_schema) == 0 &&
			    strcmp(ps[j].k->seq_name, ks.k[i].seq_name) == 0)
				break;
		if (j < nps)
			continue;
		ps = xrealloc(ps, sizeof(*ps) * (size_t)(nps + 1));
		memset(&ps[nps], 0, sizeof(*ps));
		ps[nps].node = ni;
		ps[nps].k = &ks.k[i];
		nps++;
	}

	/* phase 1: lock (ALTER) every sequence, reread it, and the largest keys */
	for (i = 0; i < p.n; i++) {
		if (db_exec(p.nodes[i].c, "BEGIN", err, sizeof(err)) < 0)
			goto node_fail;
		p.nodes[i].open = 1;
	}
	for (j = 0; j < nps; j++) {
		struct pnode *pn = &p.nodes[ps[j].node];
		char *q = db_qualified(pn->c, ps[j].k->seq_schema, ps[j].k->seq_name);
		char *sql = xasprintf("ALTER SEQUENCE %s INCREMENT BY %d", q, step);
		int e;

		ps[j].old_increment = ps[j].k->increment;
		e = db_exec(pn->c, sql, err, sizeof(err));
		free(sql);
		free(q);
		if (e < 0 || keyseq_read(pn->c, ps[j].k, err, sizeof(err)) < 0) {
			i = ps[j].node;
			goto node_fail;
		}
	}
	high = xcalloc((size_t)ks.n, sizeof(*high));
	for (i = 0; i < ks.n; i++) {
		struct keyseq *k = &ks.k[i];
		int ni = node_index(&p, k->node);
		long long v;
		int got;

		/* the key column's own sequence state (read above when it is the first entry) */
		for (j = 0; j < nps; j++)
			if (ps[j].node == ni && strcmp(ps[j].k->seq_schema, k->seq_schema) == 0 &&
			    strcmp(ps[j].k->seq_name, k->seq_name) == 0)
				break;
		high[i] = handed_out(&ps[j], step);
		got = column_max(p.nodes[ni].c, k, &v, err, sizeof(err));
		if (got < 0) {
			i = ni;
			goto node_fail;
		}
		if (got && v > high[i])
			high[i] = v;
	}
	/* phase 2: the new values, above every id in use for the same column anywhere */
	for (j = 0; j < nps; j++) {
		struct pnode *pn = &p.nodes[ps[j].node];
		struct keyseq *k = ps[j].k;
		long long h = handed_out(&ps[j], step);
		long long cur = keyseq_next(k);
		char *q, *sql;
		int a, b;

		for (a = 0; a < ks.n; a++) {
			/* key columns this sequence fills on this node ... */
			if (node_index(&p, ks.k[a].node) != ps[j].node ||
			    strcmp(ks.k[a].seq_schema, k->seq_schema) != 0 ||
			    strcmp(ks.k[a].seq_name, k->seq_name) != 0)
				continue;
			/* ... and the same column on every node */
			for (b = 0; b < ks.n; b++)
				if (strcmp(ks.k[b].schema, ks.k[a].schema) == 0 &&
				    strcmp(ks.k[b].table, ks.k[a].table) == 0 &&
				    strcmp(ks.k[b].column, ks.k[a].column) == 0 && high[b] > h)
					h = high[b];
		}
		ps[j].high = h;
		keyseq_plan(h, cur, ps[j].old_increment, k->min_value, pn->residue, step,
		    &ps[j].start, &ps[j].next);
		if (ps[j].next > k->max_value) {
			snprintf(err, sizeof(err),
			    "sequence %s.%s would need the value %lld, above its MAXVALUE %lld "
			    "(use a bigint key)",
			    k->seq_schema, k->seq_name, ps[j].next, k->max_value);
			i = ps[j].node;
			goto node_fail;
		}
		ps[j].changed = ps[j].next != cur || ps[j].old_increment != step;
		q = db_qualified(pn->c, k->seq_schema, k->seq_name);
		sql =
		    xasprintf("ALTER SEQUENCE %s INCREMENT BY %d START WITH %lld RESTART WITH %lld",
			q, step, ps[j].start, ps[j].next);
		a = db_exec(pn->c, sql, err, sizeof(err));
		free(sql);
		free(q);
		if (a < 0) {
			i = ps[j].node;
			goto node_fail;
		}
	}
	for (i = 0; i < p.n; i++) {
		if (db_commit(p.nodes[i].c, err, sizeof(err)) < 0) {
			p.nodes[i].open = 0;
			if (i == 0)
				goto node_fail;
			rollback_all(&p);
			cmd_error(
			    "node '%s': %s\nthe nodes before it in dbs= were partitioned, the "
			    "others not; run the command again",
			    p.nodes[i].name, err);
			goto out;
		}
		p.nodes[i].open = 0;
	}

	/* record */
	if (db_begin(ctx->meta, err, sizeof(err)) < 0)
		goto meta_fail;
	for (i = 0; i < p.n; i++) {
		char st[16], res[16];
		const char *q[3] = { p.nodes[i].name, st, res };

		snprintf(st, sizeof(st), "%d", step);
		snprintf(res, sizeof(res), "%d", p.nodes[i].residue);
		if (db_execp(ctx->meta,
			"UPDATE repctl.seq_partition SET step = $2::int, residue = $3::int, "
			"set_at = now() WHERE node = $1",
			3, q, err, sizeof(err)) < 0)
			goto meta_fail;
	}
	for (j = 0; j < nps; j++) {
		char st[16], res[16], nx[32];
		const char *q[6] = { p.nodes[ps[j].node].name, ps[j].k->seq_schema,
			ps[j].k->seq_name, st, res, nx };

		snprintf(st, sizeof(st), "%d", step);
		snprintf(res, sizeof(res), "%d", p.nodes[ps[j].node].residue);
		snprintf(nx, sizeof(nx), "%lld", ps[j].next);
		if (db_execp(ctx->meta,
			"INSERT INTO repctl.seq_partition (node, schema_name, sequence_name, step, "
			"residue, next_value) VALUES ($1, $2, $3, $4::int, $5::int, $6::bigint) "
			"ON CONFLICT (node, schema_name, sequence_name) DO UPDATE SET "
			"step = EXCLUDED.step, residue = EXCLUDED.residue, "
			"next_value = EXCLUDED.next_value, set_at = now()",
			6, q, err, sizeof(err)) < 0)
			goto meta_fail;
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto meta_fail;

	printf("sync '%s': step %d (room for %d nodes in the fleet)\n", name, step, step);
	for (i = 0; i < p.n; i++) {
		int shown = 0;

		printf("node '%s': residue %d%s\n", p.nodes[i].name, p.nodes[i].residue,
		    p.nodes[i].had_residue ? " (kept)" : "");
		for (j = 0; j < nps; j++) {
			if (ps[j].node != i)
				continue;
			printf("  %s.%s: INCREMENT BY %d, next value %lld%s\n", ps[j].k->seq_schema,
			    ps[j].k->seq_name, step, ps[j].next,
			    ps[j].changed ? "" : " (unchanged)");
			shown++;
		}
		if (!shown)
			printf("  (no sequence fills a key of this node's tables)\n");
	}
	rc = 0;
	goto out;
node_fail:
	rollback_all(&p);
	cmd_error("node '%s': %s\nnothing was changed", p.nodes[i].name, err);
	goto out;
meta_fail:
	db_rollback(ctx->meta);
	cmd_error("the sequences were partitioned on the nodes, but recording it in the metadata "
		  "failed: %s\nhint: run the command again (it keeps the values set)",
	    err);
out:
	rollback_all(&p);
	for (i = 0; i < p.n; i++)
		db_close(p.nodes[i].c);
	free(p.nodes);
	free(ps);
	free(high);
	keyseq_set_free(&ks);
	sync_def_free(&s);
	return rc;
}

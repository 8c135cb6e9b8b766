/*
 * keyseq.c - find primary-key columns filled from a sequence, and tell
 * whether the nodes' sequences are partitioned.
 *
 * Where it sits: `add sync` (a warning), `validate` (a problem) and
 * `partition sequences` (which fixes it) call these on the nodes of a sync.
 * A key column takes its values from a sequence when its DEFAULT depends on
 * one (serial, bigserial, nextval('...')) or it is an identity column.
 * The nodes' sequences are partitioned when every node has the same
 * INCREMENT BY (the step), at least as large as the number of nodes, and
 * each node's next value has a residue (modulo the step) no other node has:
 * then the sets of ids the nodes can ever hand out are disjoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "keyseq.h"
#include "xmalloc.h"

#define FIND_SQL                                                                                      \
	"SELECT n.nspname, c.relname, a.attname, sn.nspname, s.relname, a.attidentity <> '' "         \
	"FROM pg_catalog.jsonb_array_elements($1::jsonb) j "                                          \
	"JOIN pg_catalog.pg_namespace n ON n.nspname = j->>0 "                                        \
	"JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = j->>1 "                 \
	"JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "                        \
	"JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[]) " \
	"JOIN LATERAL ("                                                                              \
	"  SELECT d.refobjid AS seq FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_depend d "       \
	"    ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid "                  \
	"   AND d.refclassid = 'pg_catalog.pg_class'::regclass "                                      \
	"  WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum "                                         \
	"  UNION "                                                                                    \
	"  SELECT d.objid FROM pg_catalog.pg_depend d "                                               \
	"  WHERE a.attidentity <> '' AND d.classid = 'pg_catalog.pg_class'::regclass "                \
	"    AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid "              \
	"    AND d.refobjsubid = a.attnum AND d.deptype = 'i') x ON true "                            \
	"JOIN pg_catalog.pg_class s ON s.oid = x.seq AND s.relkind = 'S' "                            \
	"JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace "                                 \
	"ORDER BY 1, 2, 3, 4, 5"

long long
keyseq_next(const struct keyseq *k)
{
	return k->is_called ? k->last_value + k->increment : k->last_value;
}

int
keyseq_read(PGconn *c, struct keyseq *k, char *err, size_t errlen)
{
	char *q = db_qualified(c, k->seq_schema, k->seq_name), *sql;
	const char *p[1] = { q };
	PGresult *r;
	int rc = -1;

	r = db_query(c,
	    "SELECT seqincrement, seqmin, seqmax FROM pg_catalog.pg_sequence "
	    "WHERE seqrelid = $1::regclass",
	    1, p, err, errlen);
	if (r == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "sequence %s not found", q);
		PQclear(r);
		goto out;
	}
	k->increment = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	k->min_value = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	k->max_value = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	PQclear(r);
	sql = xasprintf("SELECT last_value, is_called FROM %s", q);
	r = db_query(c, sql, 0, NULL, err, errlen);
	free(sql);
	if (r == NULL) {
		char *m = xasprintf("cannot read sequence %s: %s", q, err);

		snprintf(err, errlen, "%s", m);
		free(m);
		goto out;
	}
	k->last_value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	k->is_called = PQgetvalue(r, 0, 1)[0] == 't';
	PQclear(r);
	rc = 0;
out:
	free(q);
	return rc;
}

static void
keyseq_clear(struct keyseq *k)
{
	free(k->node);
	free(k->schema);
	free(k->table);
	free(k->column);
	free(k->seq_schema);
	free(k->seq_name);
}

void
keyseq_set_free(struct keyseq_set *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		keyseq_clear(&s->k[i]);
	free(s->k);
	s->k = NULL;
	s->n = 0;
}

int
keyseq_find(PGconn *c, const char *node, char *const *schemas, char *const *tables, int ntables,
    struct keyseq_set *out, char *err, size_t errlen)
{
	struct buf j = BUF_INIT;
	const char *p[1];
	PGresult *r;
	int i, rc = -1;

	buf_putc(&j, '[');
	for (i = 0; i < ntables; i++) {
		buf_puts(&j, i ? ",[" : "[");
		buf_json_str(&j, schemas[i]);
		buf_putc(&j, ',');
		buf_json_str(&j, tables[i]);
		buf_putc(&j, ']');
	}
	buf_putc(&j, ']');
	p[0] = j.data;
	r = db_query(c, FIND_SQL, 1, p, err, errlen);
	if (r == NULL)
		goto out;
	for (i = 0; i < PQntuples(r); i++) {
		struct keyseq *k;

		out->k = xrealloc(out->k, sizeof(*out->k) * (size_t)(out->n + 1));
		k = &out->k[out->n++];
		memset(k, 0, sizeof(*k));
		k->node = xstrdup(node);
		k->schema = xstrdup(PQgetvalue(r, i, 0));
		k->table = xstrdup(PQgetvalue(r, i, 1));
		k->column = xstrdup(PQgetvalue(r, i, 2));
		k->seq_schema = xstrdup(PQgetvalue(r, i, 3));
		k->seq_name = xstrdup(PQgetvalue(r, i, 4));
		k->identity = PQgetvalue(r, i, 5)[0] == 't';
		if (keyseq_read(c, k, err, errlen) < 0) {
			char *m = xasprintf("node '%s': %s", node, err);

			snprintf(err, errlen, "%s", m);
			free(m);
			PQclear(r);
			goto out;
		}
	}
	PQclear(r);
	rc = 0;
out:
	buf_free(&j);
	return rc;
}

static long long
pmod(long long v, long long m)
{
	long long r = v % m;

	return r < 0 ? r + m : r;
}

int
keyseq_hazards(const struct keyseq_set *s, void (*fn)(const char *what, void *ud), void *ud)
{
	char *done = xcalloc((size_t)s->n + 1, 1);
	int i, j, l, found = 0;

	for (i = 0; i < s->n; i++) {
		const struct keyseq *a = &s->k[i];
		int idx[256], n = 0, ok = 1;

		if (done[i])
			continue;
		for (j = i; j < s->n && n < 256; j++) {
			const struct keyseq *b = &s->k[j];

			if (!done[j] && strcmp(a->schema, b->schema) == 0 &&
			    strcmp(a->table, b->table) == 0 && strcmp(a->column, b->column) == 0) {
				done[j] = 1;
				idx[n++] = j;
			}
		}
		/* one node filling the key from a sequence cannot collide with itself */
		{
			int nodes = 0;

			for (j = 0; j < n; j++) {
				for (l = 0; l < j; l++)
					if (strcmp(s->k[idx[l]].node, s->k[idx[j]].node) == 0)
						break;
				nodes += l == j;
			}
			if (nodes < 2)
				continue;
			for (j = 0; j < n && ok; j++) {
				const struct keyseq *x = &s->k[idx[j]];

				if (x->increment != a->increment || x->increment < nodes)
					ok = 0;
				for (l = 0; l < j && ok; l++) {
					const struct keyseq *y = &s->k[idx[l]];

					if (strcmp(x->node, y->node) != 0 &&
					    pmod(keyseq_next(x), x->increment) ==
						pmod(keyseq_next(y), y->increment))
						ok = 0;
				}
			}
		}
		if (ok)
			continue;
		/* name the nodes in name order, so every sync says it the same way */
		for (j = 1; j < n; j++)
			for (l = j; l > 0 && strcmp(s->k[idx[l - 1]].node, s->k[idx[l]].node) > 0;
			     l--) {
				int tmp = idx[l];

				idx[l] = idx[l - 1];
				idx[l - 1] = tmp;
			}
		{
			struct buf w = BUF_INIT;

			buf_printf(&w, "table %s.%s: key column %s %s sequence %s.%s on ",
			    a->schema, a->table, a->column,
			    a->identity ? "is an identity column (generated by"
					: "takes its default from",
			    a->seq_schema, a->seq_name);
			for (j = 0; j < n; j++) {
				const struct keyseq *x = &s->k[idx[j]];

				buf_printf(&w, "%snode '%s' (INCREMENT BY %lld, next %lld)",
				    j == 0           ? ""
					: j == n - 1 ? " and "
						     : ", ",
				    x->node, x->increment, keyseq_next(x));
			}
			if (a->identity)
				buf_puts(&w, ")");
			buf_puts(&w,
			    ": the sequences are not partitioned, so two nodes hand out the same "
			    "ids and a row inserted on one collides with a different row inserted "
			    "on the other (one of them is lost as a conflict)");
			fn(w.data, ud);
			buf_free(&w);
			found++;
		}
	}
	free(done);
	return found;
}

int
keyseq_collect_sync(PGconn *meta, const char *sync, PGconn *(*get)(void *ud, const char *node),
    void *ud, struct keyseq_set *out, char **skipped, char *err, size_t errlen)
{
	const char *p[1] = { sync };
	PGresult *r;
	struct buf sk = BUF_INIT;
	int i, rc = -1;

	r = db_query(meta,
	    "SELECT sn.node, t.schema_name, t.table_name FROM repctl.sync s "
	    "JOIN repctl.sync_node sn ON sn.sync = s.name "
	    "JOIN repctl.herd_table t ON t.herd = s.herd AND t.node = sn.node "
	    "WHERE s.name = $1 ORDER BY sn.ord, 2, 3",
	    1, p, err, errlen);
	if (r == NULL)
		return -1;
	for (i = 0; i < PQntuples(r);) {
		const char *node = PQgetvalue(r, i, 0);
		char **schemas, **tables;
		int j, n = 0;
		PGconn *c;

		for (j = i; j < PQntuples(r) && strcmp(PQgetvalue(r, j, 0), node) == 0; j++)
			n++;
		c = get(ud, node);
		if (c == NULL) { /* unreachable: the getter reports it */
			i += n;
			continue;
		}
		schemas = xcalloc((size_t)n, sizeof(char *));
		tables = xcalloc((size_t)n, sizeof(char *));
		for (j = 0; j < n; j++) {
			schemas[j] = PQgetvalue(r, i + j, 1);
			tables[j] = PQgetvalue(r, i + j, 2);
		}
		j = keyseq_find(c, node, schemas, tables, n, out, err, errlen);
		free(schemas);
		free(tables);
		if (j < 0) {
			if (skipped == NULL)
				goto out;
			buf_printf(&sk, "%s%s", sk.len ? "\n" : "", err);
		}
		i += n;
	}
	rc = 0;
out:
	PQclear(r);
	if (skipped)
		*skipped = sk.len ? buf_steal(&sk) : NULL;
	buf_free(&sk);
	return rc;
}

/* ---- partitioning: pure arithmetic (tests/unit/test_keyseq.c) ---- */

long long
keyseq_first_at_or_above(long long from, long long r, long long step)
{
	long long m = ((r - from) % step + step) % step;

	return from + m;
}

int
keyseq_assign_residues(int n, int *residue, char *taken, int step)
{
	int i, r;

	/* keep the residues nodes already have, when free */
	for (i = 0; i < n; i++) {
		if (residue[i] >= 1 && residue[i] <= step && !taken[residue[i]])
			taken[residue[i]] = 1;
		else
			residue[i] = 0;
	}
	for (i = 0; i < n; i++) {
		if (residue[i])
			continue;
		if (i + 1 <= step && !taken[i + 1])
			r = i + 1;
		else
			for (r = 1; r <= step && taken[r]; r++)
				;
		if (r > step)
			return i;
		residue[i] = r;
		taken[r] = 1;
	}
	return -1;
}

void
keyseq_plan(long long high, long long cur, long long old_increment, long long min_value,
    int residue, int step, long long *start, long long *next)
{
	*start = keyseq_first_at_or_above(min_value > residue ? min_value : residue, residue, step);
	if (old_increment == step && cur > high && cur % step == residue % step)
		*next = cur; /* already partitioned: leave it */
	else
		*next = keyseq_first_at_or_above(high + 1, residue, step);
	if (*next < *start)
		*next = *start;
}

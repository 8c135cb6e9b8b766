/*
 * cmd_validate.c - check, before the first sync, what would break it.
 *
 * For each sync (or the one named): connect to every node; for every table
 * of the herd, check it exists on each node that registered it, with the
 * same primary key and the same column names and types on every node, types
 * by more than format_type where it hides a difference (an enum's labels and
 * their order, a domain's base type, NOT NULL and CHECK constraints: a value
 * one node stores and the other refuses is quarantined there); and check the
 * privileges the engine needs on each node.  It also reports the
 * hazards it can see before the first sync: capture triggers missing or
 * disabled (changes there would never replicate), a node clock off by more
 * than clock.skew_warn_ms (latest/first compare times), and primary keys
 * filled from sequences that are not partitioned across the nodes (two
 * nodes would hand out the same id).  Each problem is one line saying what,
 * where, and how to fix it; the exit status is 0 only when there is none.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "keyseq.h"
#include "meta.h"
#include "xmalloc.h"

struct vnode {
	char *name;
	PGconn *conn; /* NULL when unreachable */
	int version;
	int super;
	int privileges_checked;
};

struct vctx {
	struct cli_ctx *cli;
	struct vnode *nodes;
	int nnodes;
	int problems;
	char **checked; /* "schema.table|node,node" already checked (syncs share herds) */
	int nchecked;
};

/* 1 when this table on these nodes was checked already; else remember it. */
static int
seen(struct vctx *v, const char *key)
{
	int i;

	for (i = 0; i < v->nchecked; i++)
		if (strcmp(v->checked[i], key) == 0)
			return 1;
	v->checked = xrealloc(v->checked, sizeof(char *) * (size_t)(v->nchecked + 1));
	v->checked[v->nchecked++] = xstrdup(key);
	return 0;
}

static void problem(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(struct vctx *v, const char *fmt, ...)
{
	va_list ap;

	fputs("problem: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	v->problems++;
}

/* The node's clock against ours (midpoint of the round trip), as status measures it. */
static void
check_clock(struct vctx *v, struct vnode *vn)
{
	char err[ERRLEN];
	double offset;

	if (db_clock_offset_ms(vn->conn, &offset, err, sizeof(err)) < 0)
		return;
	if (fabs(offset) > v->cli->cfg->clock_skew_warn_ms)
		problem(v,
		    "node '%s': its clock is off by %.0f ms from this machine's (more than "
		    "clock.skew_warn_ms = %d): latest/first compare times, so the wrong version "
		    "of a row could win a conflict\n  hint: synchronise the clocks (NTP: chrony "
		    "or systemd-timesyncd on every node)",
		    vn->name, offset, v->cli->cfg->clock_skew_warn_ms);
}

/* Connect (once) to a node; NULL when it is unreachable (problem reported). */
static struct vnode *
vnode_get(struct vctx *v, const char *name)
{
	char err[ERRLEN];
	struct node n;
	struct vnode *vn;
	int i, found;

	for (i = 0; i < v->nnodes; i++)
		if (strcmp(v->nodes[i].name, name) == 0)
			return &v->nodes[i];
	v->nodes = xrealloc(v->nodes, sizeof(*v->nodes) * (size_t)(v->nnodes + 1));
	vn = &v->nodes[v->nnodes++];
	memset(vn, 0, sizeof(*vn));
	vn->name = xstrdup(name);
	found = meta_node_get(v->cli->meta, name, &n, err, sizeof(err));
	if (found != 0) {
		problem(v, "node '%s': %s", name, found < 0 ? err : "not in the metadata");
		node_clear(&n);
		return vn;
	}
	vn->conn = node_connect(v->cli->cfg, &n, err, sizeof(err));
	node_clear(&n);
	if (vn->conn == NULL) {
		const char *hint = db_connect_hint(err);

		problem(v, "%s%s%s", err, hint ? "\n  hint: " : "", hint ? hint : "");
		return vn;
	}
	vn->version = PQserverVersion(vn->conn);
	{
		char *s = db_value(vn->conn,
		    "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user", 0,
		    NULL, err, sizeof(err));

		vn->super = s && s[0] == 't';
		free(s);
	}
	check_clock(v, vn);
	return vn;
}

/* Node-wide privileges: create the repctl schema, set session_replication_role. */
static void
check_node_privileges(struct vctx *v, struct vnode *vn)
{
	char err[ERRLEN];
	char *s;

	if (vn->conn == NULL || vn->super)
		return;
	s = db_value(vn->conn,
	    "SELECT has_database_privilege(current_database(), 'CREATE') OR "
	    "(to_regnamespace('repctl') IS NOT NULL AND "
	    " has_schema_privilege('repctl', 'CREATE,USAGE'))",
	    0, NULL, err, sizeof(err));
	if (s == NULL || s[0] != 't')
		problem(v,
		    "node '%s': the replication user cannot create the schema 'repctl'\n"
		    "  hint: GRANT CREATE ON DATABASE <db> TO <user>; (or create schema repctl "
		    "owned by it)",
		    vn->name);
	free(s);
	if (vn->version < 150000) {
		problem(v,
		    "node '%s': PostgreSQL %d needs a superuser to set session_replication_role\n"
		    "  hint: use a superuser, or upgrade to PostgreSQL 15 and GRANT SET ON "
		    "PARAMETER session_replication_role TO <user>",
		    vn->name, vn->version / 10000);
		return;
	}
	s = db_value(vn->conn, "SELECT has_parameter_privilege('session_replication_role', 'SET')",
	    0, NULL, err, sizeof(err));
	if (s == NULL || s[0] != 't')
		problem(v,
		    "node '%s': the replication user may not set session_replication_role\n"
		    "  hint: GRANT SET ON PARAMETER session_replication_role TO <user>;",
		    vn->name);
	free(s);
}

/* Columns "name type" one per line, sorted; NULL when the table is missing. */
static PGresult *
table_info(PGconn *c, const char *schema, const char *table, char *err, size_t errlen)
{
	const char *params[2] = { schema, table };

	return db_query(c,
	    "SELECT (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), "
	    "  E'\\n' ORDER BY a.attname) FROM pg_catalog.pg_attribute a "
	    "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS cols, "
	    "(SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_catalog.pg_index i "
	    "  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
	    "  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
	    "  WHERE i.indrelid = c.oid AND i.indisprimary)::text AS pk, "
	    "has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'), "
	    "has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'), "
	    "has_table_privilege(c.oid, 'TRIGGER'), pg_has_role(c.relowner, 'USAGE'), "
	    "pg_get_userbyid(c.relowner), "
	    "(SELECT string_agg(t.tgname || '=' || t.tgenabled::text, ',' ORDER BY t.tgname) "
	    "  FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid "
	    "  AND t.tgname LIKE 'repctl\\_capture\\_%') "
	    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
	    2, params, err, errlen);
}

/* Report columns of a that b lacks, and (with types) those typed differently. */
static void
diff_columns(struct vctx *v, const char *tname, const char *an, const char *acols, const char *bn,
    const char *bcols, int types)
{
	char *copy = xstrdup(acols), *line, *save = NULL;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		struct buf key = BUF_INIT;
		const char *p;
		int found = 0;

		if (sp == NULL)
			continue;
		buf_add(&key, line, (size_t)(sp - line + 1));
		for (p = bcols; p && *p;) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);

			if (len >= key.len && strncmp(p, key.data, key.len) == 0) {
				found = 1;
				if (types && (len != strlen(line) || strncmp(p, line, len) != 0))
					problem(v,
					    "table %s: column '%.*s' is %s on node '%s' but %.*s on "
					    "node '%s'\n  hint: make the types equal (ALTER TABLE ... "
					    "ALTER COLUMN ... TYPE ...)",
					    tname, (int)(sp - line), line, sp + 1, an,
					    (int)(len - key.len), p + key.len, bn);
				break;
			}
			p = nl ? nl + 1 : NULL;
		}
		if (!found)
			problem(v,
			    "table %s: column '%.*s' (%s) exists on node '%s' but not on node '%s'\n"
			    "  hint: run the same migration on '%s' (ALTER TABLE ... ADD COLUMN)",
			    tname, (int)(sp - line), line, sp + 1, an, bn, bn);
		buf_free(&key);
	}
	free(copy);
}

/*
 * Enum and domain types of a table's columns, beyond format_type: one row
 * per fact of every enum or domain type a column reaches (through domains
 * and array elements): attname, type, item, name, value, ord; items are
 * 'type' (value: typtype e|d), 'label' (an enum label, ord: its place),
 * 'base' (a domain's base type), 'notnull' (t|f) and 'check' (a domain
 * CHECK: its name, quoted where needed, and pg_get_constraintdef).
 */
static PGresult *
type_info(PGconn *c, const char *schema, const char *table, char *err, size_t errlen)
{
	const char *params[2] = { schema, table };

	return db_query(c,
	    "WITH RECURSIVE ch(attname, typid, depth) AS ("
	    " SELECT a.attname::text, a.atttypid, 0 FROM pg_catalog.pg_attribute a"
	    " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
	    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')"
	    " AND a.attnum > 0 AND NOT a.attisdropped"
	    " UNION ALL"
	    " SELECT ch.attname, CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END,"
	    " ch.depth + 1 FROM ch JOIN pg_catalog.pg_type t ON t.oid = ch.typid"
	    " WHERE ch.depth < 16 AND (t.typtype = 'd' OR"
	    " (t.typcategory = 'A' AND t.typelem <> 0 AND t.typlen = -1)))"
	    " SELECT ch.attname, pg_catalog.format_type(t.oid, NULL), x.item, x.name, x.val"
	    " FROM ch JOIN pg_catalog.pg_type t ON t.oid = ch.typid"
	    " CROSS JOIN LATERAL ("
	    "  SELECT 'type'::text AS item, NULL::text AS name, t.typtype::text AS val,"
	    "   0::bigint AS ord"
	    "  UNION ALL SELECT 'label', NULL, e.enumlabel::text,"
	    "   row_number() OVER (ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e"
	    "   WHERE t.typtype = 'e' AND e.enumtypid = t.oid"
	    "  UNION ALL SELECT 'base', NULL, pg_catalog.format_type(t.typbasetype, t.typtypmod), 0"
	    "   WHERE t.typtype = 'd'"
	    "  UNION ALL SELECT 'notnull', NULL, t.typnotnull::text, 0 WHERE t.typtype = 'd'"
	    "  UNION ALL SELECT 'check', pg_catalog.quote_ident(co.conname), "
	    "   pg_catalog.pg_get_constraintdef(co.oid), 0"
	    "   FROM pg_catalog.pg_constraint co"
	    "   WHERE t.typtype = 'd' AND co.contypid = t.oid AND co.contype = 'c') x"
	    " WHERE t.typtype IN ('e', 'd')"
	    " ORDER BY 1, 2, 3, x.ord, 4",
	    2, params, err, errlen);
}

/* The values (and names) of one item of one column's type, in order. */
struct tlist {
	int n;
	const char **name, **val;
	int *used;
};

static void
tl_get(PGresult *r, const char *att, const char *typ, const char *item, struct tlist *l)
{
	int i;

	memset(l, 0, sizeof(*l));
	for (i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 0), att) != 0 ||
		    strcmp(PQgetvalue(r, i, 1), typ) != 0 || strcmp(PQgetvalue(r, i, 2), item) != 0)
			continue;
		l->name = xrealloc(l->name, sizeof(char *) * (size_t)(l->n + 1));
		l->val = xrealloc(l->val, sizeof(char *) * (size_t)(l->n + 1));
		l->name[l->n] = PQgetvalue(r, i, 3);
		l->val[l->n] = PQgetvalue(r, i, 4);
		l->n++;
	}
	l->used = xcalloc((size_t)l->n + 1, sizeof(int));
}

static void
tl_free(struct tlist *l)
{
	free(l->name);
	free(l->val);
	free(l->used);
	memset(l, 0, sizeof(*l));
}

static int
tl_find(const struct tlist *l, const char *val)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->val[i], val) == 0)
			return i;
	return -1;
}

/* "'a', 'b'": the values of l at the indexes where sel is set (NULL: all). */
static char *
tl_literals(PGconn *c, const struct tlist *l, const int *sel)
{
	struct buf b = BUF_INIT;
	int i, n = 0;

	for (i = 0; i < l->n; i++) {
		char *lit;

		if (sel && !sel[i])
			continue;
		lit = db_literal(c, l->val[i]);
		buf_printf(&b, "%s%s", n++ ? ", " : "", lit);
		free(lit);
	}
	return n ? buf_steal(&b) : xstrdup("(none)");
}

/* Labels node 'have' has and node 'lack' lacks: one problem, the ADD VALUEs in order. */
static void
enum_missing(struct vctx *v, PGconn *c, const char *tname, const char *att, const char *typ,
    const char *have, const struct tlist *hl, const char *lack, const struct tlist *ll)
{
	int *sel = xcalloc((size_t)hl->n + 1, sizeof(int));
	struct buf fix = BUF_INIT;
	int i, j, n = 0;

	for (i = 0; i < hl->n; i++) {
		char *lit;

		if (tl_find(ll, hl->val[i]) >= 0)
			continue;
		sel[i] = 1;
		n++;
		lit = db_literal(c, hl->val[i]);
		buf_printf(&fix, "%sALTER TYPE %s ADD VALUE %s", fix.len ? " " : "", typ, lit);
		free(lit);
		if (i > 0) {
			lit = db_literal(c, hl->val[i - 1]);
			buf_printf(&fix, " AFTER %s", lit);
			free(lit);
		} else {
			/* the first label: before the first later one the node has */
			for (j = 1; j < hl->n; j++)
				if (tl_find(ll, hl->val[j]) >= 0)
					break;
			if (j < hl->n) {
				lit = db_literal(c, hl->val[j]);
				buf_printf(&fix, " BEFORE %s", lit);
				free(lit);
			}
		}
		buf_putc(&fix, ';');
	}
	if (n) {
		char *labels = tl_literals(c, hl, sel);

		problem(v,
		    "table %s: column '%s' (enum %s): label%s %s exist%s on node '%s' but not on "
		    "node '%s'\n  hint: on node '%s': %s until then, rows using %s that replicate "
		    "to '%s' are quarantined there",
		    tname, att, typ, n > 1 ? "s" : "", labels, n > 1 ? "" : "s", have, lack, lack,
		    fix.data, n > 1 ? "them" : "it", lack);
		free(labels);
	}
	buf_free(&fix);
	free(sel);
}

static void
compare_enum(struct vctx *v, PGconn *c, const char *tname, const char *att, const char *typ,
    const char *an, PGresult *ar, const char *bn, PGresult *br)
{
	struct tlist al, bl;
	int *asel, *bsel, i, j, same = 1;

	tl_get(ar, att, typ, "label", &al);
	tl_get(br, att, typ, "label", &bl);
	enum_missing(v, c, tname, att, typ, an, &al, bn, &bl);
	enum_missing(v, c, tname, att, typ, bn, &bl, an, &al);
	/* the labels both have, in the same order? */
	asel = xcalloc((size_t)al.n + 1, sizeof(int));
	bsel = xcalloc((size_t)bl.n + 1, sizeof(int));
	for (i = 0; i < al.n; i++)
		asel[i] = tl_find(&bl, al.val[i]) >= 0;
	for (j = 0; j < bl.n; j++)
		bsel[j] = tl_find(&al, bl.val[j]) >= 0;
	for (i = 0, j = 0; same; i++, j++) {
		while (i < al.n && !asel[i])
			i++;
		while (j < bl.n && !bsel[j])
			j++;
		if (i >= al.n || j >= bl.n)
			break;
		same = strcmp(al.val[i], bl.val[j]) == 0;
	}
	if (!same) {
		char *a = tl_literals(c, &al, asel), *b = tl_literals(c, &bl, bsel);

		problem(v,
		    "table %s: column '%s' (enum %s): the labels are in a different order: %s on "
		    "node '%s' but %s on node '%s'\n  hint: the order decides comparisons, ORDER BY "
		    "and ranges on the column; an enum cannot be reordered in place: create the "
		    "type again on one node in the other's order",
		    tname, att, typ, a, an, b, bn);
		free(a);
		free(b);
	}
	free(asel);
	free(bsel);
	tl_free(&al);
	tl_free(&bl);
}

/* A CHECK constraint of a domain that node 'have' has and node 'lack' does not. */
static void
domain_check_missing(struct vctx *v, const char *tname, const char *att, const char *typ,
    const char *have, const char *con, const char *def, const char *lack)
{
	problem(v,
	    "table %s: column '%s' (domain %s): constraint %s %s exists on node '%s' but not on "
	    "node '%s'\n  hint: on node '%s': ALTER DOMAIN %s ADD CONSTRAINT %s %s; (or ALTER "
	    "DOMAIN %s DROP CONSTRAINT %s; on '%s'); until then, rows it refuses that replicate "
	    "to '%s' are quarantined there",
	    tname, att, typ, con, def, have, lack, lack, typ, con, def, typ, con, have, have);
}

static void
compare_domain(struct vctx *v, const char *tname, const char *att, const char *typ, const char *an,
    PGresult *ar, const char *bn, PGresult *br)
{
	struct tlist ab, bb, ann, bnn, ac, bc;
	int i, j;

	tl_get(ar, att, typ, "base", &ab);
	tl_get(br, att, typ, "base", &bb);
	if (ab.n == 1 && bb.n == 1 && strcmp(ab.val[0], bb.val[0]) != 0)
		problem(v,
		    "table %s: column '%s' (domain %s): its base type is %s on node '%s' but %s on "
		    "node '%s'\n  hint: make the domains equal (a domain's base type cannot be "
		    "altered: create it again on one node, ALTER TABLE ... ALTER COLUMN ... TYPE "
		    "to move the column)",
		    tname, att, typ, ab.val[0], an, bb.val[0], bn);
	tl_get(ar, att, typ, "notnull", &ann);
	tl_get(br, att, typ, "notnull", &bnn);
	if (ann.n == 1 && bnn.n == 1 && strcmp(ann.val[0], bnn.val[0]) != 0) {
		const char *has = ann.val[0][0] == 't' ? an : bn, *hasnt = has == an ? bn : an;

		problem(v,
		    "table %s: column '%s' (domain %s): NOT NULL on node '%s' but not on node "
		    "'%s'\n  hint: on node '%s': ALTER DOMAIN %s SET NOT NULL; (or ALTER DOMAIN %s "
		    "DROP NOT NULL; on '%s'); until then, rows with a NULL there that replicate to "
		    "'%s' are quarantined there",
		    tname, att, typ, has, hasnt, hasnt, typ, typ, has, has);
	}
	/* CHECK constraints: the same definitions, whatever their names */
	tl_get(ar, att, typ, "check", &ac);
	tl_get(br, att, typ, "check", &bc);
	for (i = 0; i < ac.n; i++)
		for (j = 0; j < bc.n; j++)
			if (!bc.used[j] && strcmp(ac.val[i], bc.val[j]) == 0) {
				ac.used[i] = bc.used[j] = 1;
				break;
			}
	for (i = 0; i < ac.n; i++) {
		if (ac.used[i])
			continue;
		for (j = 0; j < bc.n; j++)
			if (!bc.used[j] && strcmp(ac.name[i], bc.name[j]) == 0)
				break;
		if (j < bc.n) {
			bc.used[j] = 1;
			problem(v,
			    "table %s: column '%s' (domain %s): constraint %s is %s on node '%s' but "
			    "%s on node '%s'\n  hint: make them equal, e.g. on node '%s': ALTER DOMAIN "
			    "%s DROP CONSTRAINT %s; ALTER DOMAIN %s ADD CONSTRAINT %s %s; until then, "
			    "rows one node's constraint refuses are quarantined on that node when they "
			    "replicate there",
			    tname, att, typ, ac.name[i], ac.val[i], an, bc.val[j], bn, bn, typ,
			    ac.name[i], typ, ac.name[i], ac.val[i]);
		} else
			domain_check_missing(v, tname, att, typ, an, ac.name[i], ac.val[i], bn);
	}
	for (j = 0; j < bc.n; j++)
		if (!bc.used[j])
			domain_check_missing(v, tname, att, typ, bn, bc.name[j], bc.val[j], an);
	tl_free(&ab);
	tl_free(&bb);
	tl_free(&ann);
	tl_free(&bnn);
	tl_free(&ac);
	tl_free(&bc);
}

/* Compare the enum and domain types of the columns of a table on two nodes. */
static void
compare_types(struct vctx *v, PGconn *c, const char *tname, const char *an, PGresult *ar,
    const char *bn, PGresult *br)
{
	int i, j;

	for (i = 0; i < PQntuples(ar); i++) {
		const char *att = PQgetvalue(ar, i, 0), *typ = PQgetvalue(ar, i, 1);
		const char *ak = PQgetvalue(ar, i, 4);

		if (strcmp(PQgetvalue(ar, i, 2), "type") != 0)
			continue;
		for (j = 0; j < PQntuples(br); j++)
			if (strcmp(PQgetvalue(br, j, 0), att) == 0 &&
			    strcmp(PQgetvalue(br, j, 1), typ) == 0 &&
			    strcmp(PQgetvalue(br, j, 2), "type") == 0)
				break;
		if (j == PQntuples(br))
			continue; /* the column or its type differs: reported with the columns */
		if (strcmp(ak, PQgetvalue(br, j, 4)) != 0)
			problem(v,
			    "table %s: column '%s': %s is %s on node '%s' but %s on node '%s'\n"
			    "  hint: make the types equal on every node",
			    tname, att, typ, ak[0] == 'e' ? "an enum" : "a domain", an,
			    PQgetvalue(br, j, 4)[0] == 'e' ? "an enum" : "a domain", bn);
		else if (ak[0] == 'e')
			compare_enum(v, c, tname, att, typ, an, ar, bn, br);
		else
			compare_domain(v, tname, att, typ, an, ar, bn, br);
	}
}

/* The capture triggers are there and fire always: else changes there never replicate. */
static void
check_capture(
    struct vctx *v, const char *tname, const char *herd, const char *node, const char *states)
{
	static const char *const trig[] = { "repctl_capture_del", "repctl_capture_ins",
		"repctl_capture_trunc", "repctl_capture_upd" };
	int i;

	for (i = 0; i < 4; i++) {
		char *want = xasprintf("%s=", trig[i]);
		const char *p = strstr(states, want);

		if (p == NULL)
			problem(v,
			    "table %s on node '%s': the capture trigger %s is missing, so changes made "
			    "there are not captured and never replicate\n  hint: run 'repctl add table "
			    "%s --herd=%s --db=%s' again (it reinstalls the capture)",
			    tname, node, trig[i], tname, herd, node);
		else if (p[strlen(want)] != 'A')
			problem(v,
			    "table %s on node '%s': the capture trigger %s is disabled (or not ENABLE "
			    "ALWAYS), so changes made there are not captured and never replicate\n"
			    "  hint: ALTER TABLE %s ENABLE ALWAYS TRIGGER %s; then 'repctl compare' "
			    "finds the rows changed meanwhile and 'repctl repair' fixes them",
			    tname, node, trig[i], tname, trig[i]);
		free(want);
	}
}

static void
check_table(struct vctx *v, const char *schema, const char *table, const char *quoted,
    const char *reg_pk, const char *herd, char **nodes, int nn)
{
	char err[ERRLEN];
	char *tname = xstrdup(quoted);
	char *ref_cols = NULL, *ref_pk = NULL;
	const char *ref_node = NULL;
	PGresult *ref_types = NULL; /* enum and domain facts on ref_node */
	PGconn *ref_conn = NULL;
	const char *ref_tnode = NULL;
	int i;

	for (i = 0; i < nn; i++) {
		struct vnode *vn = vnode_get(v, nodes[i]);
		PGresult *r;
		static const char *const privs[] = { "SELECT", "INSERT", "UPDATE", "DELETE",
			"TRIGGER" };
		struct buf missing = BUF_INIT;
		int p;

		if (vn->conn == NULL)
			continue;
		r = table_info(vn->conn, schema, table, err, sizeof(err));
		if (r == NULL) {
			problem(v, "node '%s': %s", vn->name, err);
			continue;
		}
		if (PQntuples(r) == 0) {
			problem(v,
			    "table %s is in the herd but does not exist on node '%s'\n  hint: "
			    "create it there (same schema as the other nodes), or 'repctl remove "
			    "table %s --db=%s'",
			    tname, vn->name, tname, vn->name);
			PQclear(r);
			continue;
		}
		if (PQgetisnull(r, 0, 1))
			problem(v,
			    "table %s has no primary key on node '%s'\n  hint: ALTER TABLE %s "
			    "ADD PRIMARY KEY (%s)",
			    tname, vn->name, tname, reg_pk);
		else if (ref_pk == NULL) {
			ref_pk = xstrdup(PQgetvalue(r, 0, 1));
		} else if (strcmp(ref_pk, PQgetvalue(r, 0, 1)) != 0) {
			problem(v,
			    "table %s: primary key %s on node '%s' but %s on node '%s'\n  hint: "
			    "the key must be the same columns on every node",
			    tname, ref_pk, ref_node, PQgetvalue(r, 0, 1), vn->name);
		}
		if (ref_cols == NULL) {
			ref_cols = xstrdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
			ref_node = nodes[i];
		} else if (strcmp(ref_cols, PQgetvalue(r, 0, 0)) != 0) {
			diff_columns(
			    v, tname, ref_node, ref_cols, vn->name, PQgetvalue(r, 0, 0), 1);
			diff_columns(
			    v, tname, vn->name, PQgetvalue(r, 0, 0), ref_node, ref_cols, 0);
		}
		if (!vn->super) {
			for (p = 0; p < 5; p++)
				if (PQgetvalue(r, 0, 2 + p)[0] != 't')
					buf_printf(
					    &missing, "%s%s", missing.len ? ", " : "", privs[p]);
			if (missing.len)
				problem(v,
				    "node '%s': the replication user lacks %s on %s\n  hint: "
				    "GRANT %s ON %s TO <user>;",
				    vn->name, missing.data, tname, missing.data, tname);
			if (PQgetvalue(r, 0, 7)[0] != 't')
				problem(v,
				    "node '%s': the replication user must own %s (or be a member of "
				    "its owner '%s') to install capture triggers\n  hint: GRANT %s TO "
				    "<user>;",
				    vn->name, tname, PQgetvalue(r, 0, 8), PQgetvalue(r, 0, 8));
		}
		check_capture(
		    v, tname, herd, vn->name, PQgetisnull(r, 0, 9) ? "" : PQgetvalue(r, 0, 9));
		buf_free(&missing);
		PQclear(r);
		/* enum labels and domain constraints, which format_type does not show */
		r = type_info(vn->conn, schema, table, err, sizeof(err));
		if (r == NULL)
			problem(v, "node '%s': %s", vn->name, err);
		else if (ref_types == NULL) {
			ref_types = r;
			ref_conn = vn->conn;
			ref_tnode = vn->name;
		} else {
			compare_types(v, ref_conn, tname, ref_tnode, ref_types, vn->name, r);
			PQclear(r);
		}
	}
	PQclear(ref_types);
	free(tname);
	free(ref_cols);
	free(ref_pk);
}

static PGconn *
vnode_conn(void *ud, const char *node)
{
	return vnode_get(ud, node)->conn;
}

struct hazard_ctx {
	struct vctx *v;
	const char *sync;
};

static void
key_hazard(const char *what, void *ud)
{
	struct hazard_ctx *h = ud;
	char *key = xasprintf("keyseq|%s", what);

	if (!seen(h->v, key))
		problem(h->v,
		    "%s\n  hint: run 'repctl partition sequences %s' (each node its own residue: "
		    "INCREMENT BY a step, a distinct start per node), or make the key a UUID "
		    "(uuid DEFAULT gen_random_uuid(), which no two nodes repeat)",
		    what, h->sync);
	free(key);
}

/* Primary keys filled from sequences that are not partitioned across the nodes. */
static void
check_key_sequences(struct vctx *v, const char *sync)
{
	char err[ERRLEN];
	struct keyseq_set ks = { NULL, 0 };
	struct hazard_ctx h = { v, sync };
	char *skipped = NULL;

	if (keyseq_collect_sync(
		v->cli->meta, sync, vnode_conn, v, &ks, &skipped, err, sizeof(err)) < 0)
		problem(v, "sync '%s': cannot check the key sequences: %s", sync, err);
	else {
		if (skipped) {
			char *line, *save = NULL;

			for (line = strtok_r(skipped, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				problem(v,
				    "%s\n  hint: the replication user must own the sequences (be a "
				    "member of the tables' owner role) for 'repctl partition "
				    "sequences'",
				    line);
		}
		keyseq_hazards(&ks, key_hazard, &h);
	}
	free(skipped);
	keyseq_set_free(&ks);
}

static void
check_sync(struct vctx *v, const char *sync)
{
	char err[ERRLEN];
	const char *params[1] = { sync };
	PGresult *nodes, *tables;
	int i, j, before = v->problems;

	nodes =
	    db_query(v->cli->meta, "SELECT node FROM repctl.sync_node WHERE sync = $1 ORDER BY ord",
		1, params, err, sizeof(err));
	tables = db_query(v->cli->meta,
	    "SELECT t.schema_name, t.table_name, min(t.pk_columns::text), "
	    "  array_agg(t.node ORDER BY t.node)::text, s.herd, "
	    "  format('%I.%I', t.schema_name, t.table_name) "
	    "FROM repctl.sync s JOIN repctl.herd_table t ON t.herd = s.herd "
	    "JOIN repctl.sync_node sn ON sn.sync = s.name AND sn.node = t.node "
	    "WHERE s.name = $1 GROUP BY 1, 2, 5 ORDER BY 1, 2",
	    1, params, err, sizeof(err));
	if (nodes == NULL || tables == NULL) {
		problem(v, "sync '%s': %s", sync, err);
		goto out;
	}
	for (i = 0; i < PQntuples(nodes); i++) {
		struct vnode *vn = vnode_get(v, PQgetvalue(nodes, i, 0));

		if (vn->conn && !vn->privileges_checked) {
			vn->privileges_checked = 1;
			check_node_privileges(v, vn);
		}
	}
	if (PQntuples(tables) == 0)
		problem(v,
		    "sync '%s': no table of its herd is registered on its nodes\n  hint: "
		    "'repctl add all tables --herd=... --db=NODE' for each node",
		    sync);
	for (i = 0; i < PQntuples(tables); i++) {
		/* nodes of this sync that registered the table */
		char *list[64];
		int nn = 0;
		char *arr = xstrdup(PQgetvalue(tables, i, 3)), *tok, *save = NULL;

		for (tok = strtok_r(arr + 1, ",}", &save); tok && nn < 64;
		     tok = strtok_r(NULL, ",}", &save))
			list[nn++] = tok;
		if (nn < PQntuples(nodes)) {
			for (j = 0; j < PQntuples(nodes); j++) {
				int k, has = 0;

				for (k = 0; k < nn; k++)
					has |= strcmp(list[k], PQgetvalue(nodes, j, 0)) == 0;
				if (!has)
					problem(v,
					    "sync '%s': table %s is not registered on node '%s', so it "
					    "will not replicate there\n  hint: repctl add table '%s' "
					    "--herd=%s --db=%s (or leave it out on purpose)",
					    sync, PQgetvalue(tables, i, 5), PQgetvalue(nodes, j, 0),
					    PQgetvalue(tables, i, 5), PQgetvalue(tables, i, 4),
					    PQgetvalue(nodes, j, 0));
			}
		}
		{
			char *key = xasprintf("%s.%s|%s", PQgetvalue(tables, i, 0),
			    PQgetvalue(tables, i, 1), PQgetvalue(tables, i, 3));

			if (!seen(v, key))
				check_table(v, PQgetvalue(tables, i, 0), PQgetvalue(tables, i, 1),
				    PQgetvalue(tables, i, 5), PQgetvalue(tables, i, 2),
				    PQgetvalue(tables, i, 4), list, nn);
			free(key);
		}
		free(arr);
	}
	check_key_sequences(v, sync);
	if (v->problems == before)
		printf("sync '%s': OK (%d table(s) on %d node(s))\n", sync, PQntuples(tables),
		    PQntuples(nodes));
out:
	PQclear(nodes);
	PQclear(tables);
}

CMD_HANDLER(cmd_validate)
{
	char err[ERRLEN];
	const char *only = args->nwords > 0 ? args->words[0] : NULL;
	const char *params[1] = { only };
	struct vctx v;
	PGresult *r;
	int i;

	memset(&v, 0, sizeof(v));
	v.cli = ctx;
	printf("configuration %s: OK\n", ctx->cfg->path ? ctx->cfg->path : "(defaults)");
	r = db_query(ctx->meta,
	    "SELECT name FROM repctl.sync WHERE $1::text IS NULL OR name = $1 ORDER BY name", 1,
	    params, err, sizeof(err));
	if (r == NULL) {
		cmd_error("%s", err);
		return 1;
	}
	if (only && PQntuples(r) == 0) {
		cmd_lookup_error("sync", only, NULL);
		PQclear(r);
		return 1;
	}
	if (PQntuples(r) == 0)
		printf("no syncs yet: nothing else to check (add one with 'repctl add sync')\n");
	for (i = 0; i < PQntuples(r); i++)
		check_sync(&v, PQgetvalue(r, i, 0));
	PQclear(r);
	for (i = 0; i < v.nnodes; i++) {
		db_close(v.nodes[i].conn);
		free(v.nodes[i].name);
	}
	free(v.nodes);
	for (i = 0; i < v.nchecked; i++)
		free(v.checked[i]);
	free(v.checked);
	if (v.problems) {
		printf("%d problem(s) found\n", v.problems);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}

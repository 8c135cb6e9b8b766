/*
 * test_conflict.c - the conflict decision (src/repl/conflict.c).
 *
 * Covers conflict_decide() case by case, every case decided both ways round
 * (x local and y remote, then y local and x remote) and expected to keep the
 * same version with the mirrored conflict type and the same rule: latest
 * and first with trusted values (either version winning, in every column
 * type), equal values falling back to the change time, equal times to the
 * smaller origin name, then to the smaller content digest (a delete's is
 * empty, so it comes before a live version of the same origin and time);
 * update/delete and delete/update (the delete competes with its change
 * time: for a naive time or a number the update's column value is ignored
 * and the change times decide, for a timestamptz the update's value is an
 * instant and competes with it); has_value = 0 (the change time instead);
 * values more than future_limit past their version's own change time (not
 * trusted, the decision flagged clamped, exactly at the limit trusted,
 * CC_NAIVE allowed CC_NAIVE_SLACK more, CC_NUMBER never clamped); two live
 * versions with the same content (same = 1, RES_REMOTE, under every
 * strategy); source (lower origin rank, equal ranks the smaller name),
 * target (higher rank, equal ranks the greater name), skip, abort,
 * delete/delete under every strategy and column type; strategy_parse() and
 * the name tables.
 *
 * The property test decides 60000 pseudo-random pairs (three fixed seeds,
 * small ranges to force ties, random column type, limit, deletes, NULLs,
 * digests, ranks and names, equal names included) under every strategy.
 * Both ways round must keep the same version (the resolution flips between
 * RES_LOCAL and RES_REMOTE, or both say same content, or both deleted); the
 * decision must not change with copies of the versions at other addresses,
 * a dirty output struct, other decisions in between, or the fields the
 * strategy does not look at; and it must agree with a reference model of
 * the documented rules written independently here (latest, first, source,
 * target).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conflict.h"

#define T0 1700000000.0 /* a change time (there is no "now" any more) */
#define LIMIT 86400.0   /* clock.future_limit */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const enum strategy_kind all_kinds[] = { STRAT_LATEST, STRAT_FIRST, STRAT_SOURCE,
	STRAT_TARGET, STRAT_SKIP, STRAT_ABORT };
static const enum cc_kind all_ccs[] = { CC_TIME, CC_NAIVE, CC_NUMBER };

static const char *
cc_name(int cc)
{
	switch (cc) {
	case CC_TIME: return "timestamptz";
	case CC_NAIVE: return "naive";
	case CC_NUMBER: return "number";
	}
	return "(garbage)";
}

/* Names for messages, safe on the garbage of an unfilled decision. */
static const char *
sname(int k)
{
	return k >= STRAT_LATEST && k <= STRAT_ABORT ? strategy_names[k] : "(garbage)";
}

static const char *
tname(int t)
{
	return t >= CONFLICT_UPDATE_UPDATE && t <= CONFLICT_DELETE_DELETE ? conflict_type_names[t]
									  : "(garbage)";
}

static const char *
rname(int r)
{
	return r >= RES_REMOTE && r <= RES_ABORT ? resolution_names[r] : "(garbage)";
}

static const char *
nz(const char *s)
{
	return s ? s : "";
}

/* A live version whose conflict column holds value. */
static struct row_version
upd(const char *node, double value, double changed_at)
{
	struct row_version v;

	memset(&v, 0, sizeof(v));
	v.node = node;
	v.has_value = 1;
	v.value = value;
	v.changed_at = changed_at;
	v.digest = node; /* one content per origin unless a test says otherwise */
	return v;
}

/* A live version without the conflict column (or with NULL in it). */
static struct row_version
novalue(const char *node, double changed_at)
{
	struct row_version v = upd(node, 0, changed_at);

	v.has_value = 0;
	v.value = 1e18; /* must be ignored, and never clamped */
	return v;
}

/* A tombstone; its column value must be ignored. */
static struct row_version
del(const char *node, double changed_at)
{
	struct row_version v = upd(node, 1e18, changed_at);

	v.deleted = 1;
	v.digest = "";
	return v;
}

static struct row_version
ranked(struct row_version v, int rank)
{
	v.rank = rank;
	return v;
}

static struct row_version
content(struct row_version v, const char *digest)
{
	v.digest = digest;
	return v;
}

static struct strategy
strat(enum strategy_kind k, enum cc_kind cc)
{
	struct strategy s;

	memset(&s, 0, sizeof(s));
	s.kind = k;
	s.cc = cc;
	s.future_limit = LIMIT;
	return s;
}

static struct decision
decide_fill(const struct row_version *local, const struct row_version *remote,
    const struct strategy *s, int fill)
{
	struct decision d;

	memset(&d, fill, sizeof(d));
	assert_int_equal(conflict_decide(local, remote, s, &d), 0);
	assert_non_null(d.rule);
	return d;
}

static struct decision
decide(const struct row_version *local, const struct row_version *remote, const struct strategy *s)
{
	return decide_fill(local, remote, s, 0xa5);
}

/* The documented conflict type: what each side did. */
static enum conflict_type
type_of(const struct row_version *local, const struct row_version *remote)
{
	if (local->deleted)
		return remote->deleted ? CONFLICT_DELETE_DELETE : CONFLICT_DELETE_UPDATE;
	return remote->deleted ? CONFLICT_UPDATE_DELETE : CONFLICT_UPDATE_UPDATE;
}

/*
 * Decide x against y both ways round under s and expect w (x or y) to be
 * kept both times, with the documented type, clamped as given, not "same",
 * and the same rule (rule, when not NULL).
 */
static void
win_s(const struct row_version *x, const struct row_version *y, const struct strategy *s,
    const struct row_version *w, int clamped, const char *rule)
{
	const struct row_version *ls[2] = { x, y }, *rs[2] = { y, x };
	struct decision d[2];
	int i;

	assert_true(w == x || w == y);
	for (i = 0; i < 2; i++) {
		enum resolution want = w == rs[i] ? RES_REMOTE : RES_LOCAL;

		d[i] = decide(ls[i], rs[i], s);
		if (d[i].type != type_of(ls[i], rs[i]) || d[i].res != want ||
		    d[i].clamped != clamped || d[i].same != 0 ||
		    (rule != NULL && strcmp(d[i].rule, rule) != 0))
			fail_msg("%s/%s: local %s vs remote %s: got %s %s clamped=%d same=%d (%s); "
				 "want %s %s (keep %s) clamped=%d (%s)",
			    sname(s->kind), cc_name(s->cc), ls[i]->node, rs[i]->node,
			    tname(d[i].type), rname(d[i].res), d[i].clamped, d[i].same, d[i].rule,
			    tname(type_of(ls[i], rs[i])), rname(want), w->node, clamped,
			    rule ? rule : "any");
	}
	assert_string_equal(d[0].rule, d[1].rule);
	assert_int_equal(strncmp(d[0].rule, sname(s->kind), strlen(sname(s->kind))), 0);
}

static void
win(const struct row_version *x, const struct row_version *y, enum strategy_kind k, enum cc_kind cc,
    const struct row_version *w, int clamped, const char *rule)
{
	struct strategy s = strat(k, cc);

	win_s(x, y, &s, w, clamped, rule);
}

/* Decide x against y both ways round: res, same and rule both times, never clamped. */
static void
fixed(const struct row_version *x, const struct row_version *y, enum strategy_kind k,
    enum cc_kind cc, enum resolution res, int same, const char *rule)
{
	const struct row_version *ls[2] = { x, y }, *rs[2] = { y, x };
	struct strategy s = strat(k, cc);
	int i;

	for (i = 0; i < 2; i++) {
		struct decision d = decide(ls[i], rs[i], &s);

		if (d.type != type_of(ls[i], rs[i]) || d.res != res || d.same != same ||
		    d.clamped != 0 || strcmp(d.rule, rule) != 0)
			fail_msg("%s/%s: local %s vs remote %s: got %s %s clamped=%d same=%d (%s); "
				 "want %s %s clamped=0 same=%d (%s)",
			    sname(k), cc_name(cc), ls[i]->node, rs[i]->node, tname(d.type),
			    rname(d.res), d.clamped, d.same, d.rule, tname(type_of(ls[i], rs[i])),
			    rname(res), same, rule);
	}
}

/* ---- latest and first: values ---- */

static void
test_latest_value(void **state)
{
	struct row_version a = upd("a", T0 - 100, T0 - 50);
	struct row_version b = upd("b", T0 - 200, T0 - 10);
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		/* the greater value wins, whatever the change times say */
		win(&a, &b, STRAT_LATEST, all_ccs[c], &a, 0, "latest: greater conflict column");
		/* either version: now b's value is the greater */
		b.value = T0 - 99;
		win(&a, &b, STRAT_LATEST, all_ccs[c], &b, 0, "latest: greater conflict column");
		b.value = T0 - 200;
	}
	/* whatever the names say */
	a = upd("z", 10, 1);
	b = upd("a", 9, 1);
	win(&a, &b, STRAT_LATEST, CC_TIME, &a, 0, "latest: greater conflict column");
	win(&a, &b, STRAT_LATEST, CC_NUMBER, &a, 0, "latest: greater conflict column");
	/* a tiny difference still counts */
	a = upd("a", 1000.000001, 5);
	b = upd("b", 1000.0, 9);
	win(&a, &b, STRAT_LATEST, CC_TIME, &a, 0, "latest: greater conflict column");
	win(&a, &b, STRAT_LATEST, CC_NAIVE, &a, 0, "latest: greater conflict column");
}

static void
test_first_value(void **state)
{
	struct row_version a = upd("a", T0 - 100, T0 - 50);
	struct row_version b = upd("b", T0 - 200, T0 - 10);
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		/* the smaller value wins, whatever the change times say */
		win(&a, &b, STRAT_FIRST, all_ccs[c], &b, 0, "first: smaller conflict column");
		b.value = T0 - 99;
		win(&a, &b, STRAT_FIRST, all_ccs[c], &a, 0, "first: smaller conflict column");
		b.value = T0 - 200;
	}
	/* whatever the names say */
	a = upd("z", 9, 1);
	b = upd("a", 10, 1);
	win(&a, &b, STRAT_FIRST, CC_NUMBER, &a, 0, "first: smaller conflict column");
}

static void
test_equal_values_change_time(void **state)
{
	/* Rails' update_all left updated_at alone: the change time decides */
	struct row_version a = upd("a", 500, T0 - 50);
	struct row_version b = upd("b", 500, T0 - 10);
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		win(&a, &b, STRAT_LATEST, all_ccs[c], &b, 0,
		    "latest: equal values, later change time");
		win(&a, &b, STRAT_FIRST, all_ccs[c], &a, 0,
		    "first: equal values, earlier change time");
	}
	/* the later one wins even with the greater name; the earlier one under first */
	a = upd("z", 5, 200);
	b = upd("a", 5, 100);
	win(&a, &b, STRAT_LATEST, CC_NAIVE, &a, 0, "latest: equal values, later change time");
	win(&a, &b, STRAT_FIRST, CC_NAIVE, &b, 0, "first: equal values, earlier change time");
}

static void
test_equal_times_name_digest(void **state)
{
	struct row_version a = upd("node_a", 7, 3);
	struct row_version b = upd("node_b", 7, 3);
	struct row_version d, e;
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		/* the smaller origin name wins, under latest and first alike */
		win(&a, &b, STRAT_LATEST, all_ccs[c], &a, 0,
		    "latest: equal times, origin node name");
		win(&a, &b, STRAT_FIRST, all_ccs[c], &a, 0, "first: equal times, origin node name");
	}
	/* names compare bytewise: "B" < "a", "a" < "aa" */
	a = upd("a", 1, 1);
	b = upd("B", 1, 1);
	win(&a, &b, STRAT_LATEST, CC_TIME, &b, 0, "latest: equal times, origin node name");
	b = upd("aa", 1, 1);
	win(&a, &b, STRAT_FIRST, CC_TIME, &a, 0, "first: equal times, origin node name");
	/* without the column: equal change times, the name decides */
	a = novalue("y", 40);
	b = novalue("x", 40);
	win(&a, &b, STRAT_LATEST, CC_TIME, &b, 0, "latest: equal times, origin node name");
	win(&a, &b, STRAT_FIRST, CC_NAIVE, &b, 0, "first: equal times, origin node name");

	/* the same origin, the same times: the smaller content digest */
	a = content(upd("n", 7, 3), "9e107d9d372bb6826bd81d3542a419d6");
	b = content(upd("n", 7, 3), "0cc175b9c0f1b6a831c399e269772661");
	for (c = 0; c < NELEM(all_ccs); c++) {
		win(&a, &b, STRAT_LATEST, all_ccs[c], &b, 0,
		    "latest: equal times, origin node name");
		win(&a, &b, STRAT_FIRST, all_ccs[c], &b, 0, "first: equal times, origin node name");
	}
	/*
	 * A delete's digest is empty, so against a live version of the same
	 * origin and time it sorts first and wins (NULL counts as "").
	 */
	d = del("n", 3);
	e = novalue("n", 3);
	win(&d, &e, STRAT_LATEST, CC_NAIVE, &d, 0, "latest: equal times, origin node name");
	d.digest = NULL;
	win(&d, &e, STRAT_FIRST, CC_TIME, &d, 0, "first: equal times, origin node name");
}

/* ---- deletes against updates ---- */

static void
test_conflict_types(void **state)
{
	struct row_version u = upd("a", 1, 1), v = upd("b", 2, 2);
	struct row_version d = del("c", 3), e = del("d", 4);
	size_t k;

	(void)state;
	for (k = 0; k < NELEM(all_kinds); k++) {
		struct strategy s = strat(all_kinds[k], CC_TIME);

		assert_int_equal(decide(&u, &v, &s).type, CONFLICT_UPDATE_UPDATE);
		/* local changed it, remote deleted it */
		assert_int_equal(decide(&u, &d, &s).type, CONFLICT_UPDATE_DELETE);
		/* local deleted it, remote changed it */
		assert_int_equal(decide(&d, &u, &s).type, CONFLICT_DELETE_UPDATE);
		assert_int_equal(decide(&d, &e, &s).type, CONFLICT_DELETE_DELETE);
	}
}

static void
test_update_delete_change_times(void **state)
{
	static const enum cc_kind ccs[] = { CC_NAIVE, CC_NUMBER };
	struct row_version u, d;
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(ccs); c++) {
		/*
		 * A naive time or a number cannot be compared with a change
		 * time: the change times decide and the update's value is
		 * ignored.  The delete was made before the update (300 < 500):
		 * under latest it loses, although the update's value (100) is
		 * numerically smaller than the delete's change time.
		 */
		u = upd("a", 100, 500);
		d = del("b", 300);
		win(&u, &d, STRAT_LATEST, ccs[c], &u, 0, "latest: later change time");
		win(&u, &d, STRAT_FIRST, ccs[c], &d, 0, "first: earlier change time");
		/* made after the update, it wins, although the update's value is greater */
		u = upd("a", 700, 500);
		d = del("b", 600);
		win(&u, &d, STRAT_LATEST, ccs[c], &d, 0, "latest: later change time");
		win(&u, &d, STRAT_FIRST, ccs[c], &u, 0, "first: earlier change time");
		/* equal change times: the smaller origin name, whatever the value */
		u = upd("b", 100, 300);
		d = del("a", 300);
		win(&u, &d, STRAT_LATEST, ccs[c], &d, 0, "latest: equal times, origin node name");
		win(&u, &d, STRAT_FIRST, ccs[c], &d, 0, "first: equal times, origin node name");
		u = upd("a", 900, 300);
		d = del("b", 300);
		win(&u, &d, STRAT_LATEST, ccs[c], &u, 0, "latest: equal times, origin node name");
		/* an update without a value: change times as well */
		u = novalue("a", 400);
		win(&u, &d, STRAT_LATEST, ccs[c], &u, 0, "latest: later change time");
		win(&u, &d, STRAT_FIRST, ccs[c], &d, 0, "first: earlier change time");
	}

	/*
	 * A timestamptz holds instants, comparable with change times: the
	 * update competes with its trusted value, the delete with its change
	 * time.
	 */
	u = upd("a", 100, 500);
	d = del("b", 300);
	win(&u, &d, STRAT_LATEST, CC_TIME, &d, 0, "latest: later change time");
	win(&u, &d, STRAT_FIRST, CC_TIME, &u, 0, "first: earlier change time");
	u = upd("a", 700, 500);
	d = del("b", 600);
	win(&u, &d, STRAT_LATEST, CC_TIME, &u, 0, "latest: later change time");
	win(&u, &d, STRAT_FIRST, CC_TIME, &d, 0, "first: earlier change time");
	/* the value equal to the delete's change time: then the change times */
	u = upd("a", 300, 200);
	d = del("b", 300);
	win(&u, &d, STRAT_LATEST, CC_TIME, &d, 0, "latest: later change time");
	win(&u, &d, STRAT_FIRST, CC_TIME, &u, 0, "first: earlier change time");
	/* ... then the origin name */
	u = upd("b", 300, 300);
	d = del("c", 300);
	win(&u, &d, STRAT_LATEST, CC_TIME, &u, 0, "latest: equal times, origin node name");
}

static void
test_no_value_change_times(void **state)
{
	struct row_version a = novalue("a", T0 - 10);
	struct row_version b = novalue("b", T0 - 20);
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		/* neither has a value: the change times */
		win(&a, &b, STRAT_LATEST, all_ccs[c], &a, 0, "latest: later change time");
		win(&a, &b, STRAT_FIRST, all_ccs[c], &b, 0, "first: earlier change time");
	}
	/* a NULL on one side, a naive time or number on the other: change times only */
	a = novalue("a", 150);
	b = upd("b", 1000, 100);
	win(&a, &b, STRAT_LATEST, CC_NAIVE, &a, 0, "latest: later change time");
	win(&a, &b, STRAT_FIRST, CC_NAIVE, &b, 0, "first: earlier change time");
	win(&a, &b, STRAT_LATEST, CC_NUMBER, &a, 0, "latest: later change time");
	/* a timestamptz: the NULL's change time against the other's instant */
	win(&a, &b, STRAT_LATEST, CC_TIME, &b, 0, "latest: later change time");
	win(&a, &b, STRAT_FIRST, CC_TIME, &a, 0, "first: earlier change time");
	b = upd("b", 120, 100);
	win(&a, &b, STRAT_LATEST, CC_TIME, &a, 0, "latest: later change time");
	/* equal change times, no values: the name */
	a = novalue("b", 150);
	b = upd("a", 1000, 150);
	win(&a, &b, STRAT_LATEST, CC_NAIVE, &b, 0, "latest: equal times, origin node name");
}

/* ---- values in the future ---- */

static void
test_future_clamp(void **state)
{
	struct row_version bad = upd("a", 1000 + LIMIT + 1, 1000);
	struct row_version ok = upd("b", 5000, 900);
	struct row_version d, n;
	struct strategy s;
	size_t c, k;

	(void)state;
	/* timestamptz: the untrusted value is replaced by its change time, flagged */
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &ok, 1, "latest: later change time");
	win(&bad, &ok, STRAT_FIRST, CC_TIME, &bad, 1, "first: earlier change time");
	/* naive: beyond the limit and the slack, both compete by change times (1000 > 900) */
	bad.value = 1000 + LIMIT + CC_NAIVE_SLACK + 1;
	win(&bad, &ok, STRAT_LATEST, CC_NAIVE, &bad, 1, "latest: later change time");
	win(&bad, &ok, STRAT_FIRST, CC_NAIVE, &ok, 1, "first: earlier change time");

	/* exactly at the limit is trusted; one second more is not */
	bad.value = 1000 + LIMIT;
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &bad, 0, "latest: greater conflict column");
	win(&bad, &ok, STRAT_FIRST, CC_TIME, &ok, 0, "first: smaller conflict column");
	bad.value = 1000 + LIMIT + 1;
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &ok, 1, "latest: later change time");
	/* ... which a naive time is allowed: CC_NAIVE_SLACK more */
	win(&bad, &ok, STRAT_LATEST, CC_NAIVE, &bad, 0, "latest: greater conflict column");
	bad.value = 1000 + LIMIT + CC_NAIVE_SLACK;
	win(&bad, &ok, STRAT_LATEST, CC_NAIVE, &bad, 0, "latest: greater conflict column");
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &ok, 1, "latest: later change time");
	bad.value = 1000 + LIMIT + CC_NAIVE_SLACK + 1;
	win(&bad, &ok, STRAT_LATEST, CC_NAIVE, &bad, 1, "latest: later change time");
	/* a number is never clamped */
	bad.value = 1e15;
	win(&bad, &ok, STRAT_LATEST, CC_NUMBER, &bad, 0, "latest: greater conflict column");
	win(&bad, &ok, STRAT_FIRST, CC_NUMBER, &ok, 0, "first: smaller conflict column");

	/* a larger limit trusts it */
	bad.value = 1000 + LIMIT + 1;
	s = strat(STRAT_LATEST, CC_TIME);
	s.future_limit = 2 * LIMIT;
	win_s(&bad, &ok, &s, &bad, 0, "latest: greater conflict column");

	/*
	 * Relative to the version's own change time, not to any moment of the
	 * decision: a 1970 value more than the limit past its change time is
	 * not trusted, a value far in the future within the limit of its own
	 * change time is.
	 */
	bad = upd("a", LIMIT + 100, 0);
	ok = upd("b", LIMIT, 10);
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &ok, 1, "latest: later change time");
	bad = upd("a", 4e9 + LIMIT, 4e9);
	ok = upd("b", 4e9 + 5, 4e9 - 1);
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &bad, 0, "latest: greater conflict column");

	/* both untrusted: both compete by change times */
	bad = upd("a", 1e12, 20);
	ok = upd("b", 1e13, 30);
	win(&bad, &ok, STRAT_LATEST, CC_TIME, &ok, 1, "latest: later change time");
	win(&bad, &ok, STRAT_FIRST, CC_TIME, &bad, 1, "first: earlier change time");
	win(&bad, &ok, STRAT_LATEST, CC_NAIVE, &ok, 1, "latest: later change time");
	ok.changed_at = 20;
	win(&bad, &ok, STRAT_LATEST, CC_NAIVE, &bad, 1, "latest: equal times, origin node name");

	/* a number: 5 against 7, both changed at 0, no limit at all */
	bad = upd("a", 5, 0);
	ok = upd("b", 7, 0);
	s = strat(STRAT_LATEST, CC_NUMBER);
	s.future_limit = 0;
	win_s(&bad, &ok, &s, &ok, 0, "latest: greater conflict column");
	s.kind = STRAT_FIRST;
	win_s(&bad, &ok, &s, &bad, 0, "first: smaller conflict column");
	/* the same values as timestamptz are untrusted there: equal times, the name */
	s = strat(STRAT_LATEST, CC_TIME);
	s.future_limit = 0;
	win_s(&bad, &ok, &s, &bad, 1, "latest: equal times, origin node name");

	/* ignored values are never clamped: a delete's, a NULL's */
	d = del("a", 10);
	n = novalue("b", 5);
	for (c = 0; c < NELEM(all_ccs); c++) {
		win(&d, &n, STRAT_LATEST, all_ccs[c], &d, 0, "latest: later change time");
		win(&d, &n, STRAT_FIRST, all_ccs[c], &n, 0, "first: earlier change time");
	}

	/* only latest and first look at the column */
	bad = ranked(upd("a", 1e12, 10), 0);
	ok = ranked(upd("b", 5, 5), 1);
	for (k = 0; k < NELEM(all_kinds); k++) {
		if (all_kinds[k] == STRAT_LATEST || all_kinds[k] == STRAT_FIRST)
			continue;
		s = strat(all_kinds[k], CC_TIME);
		assert_int_equal(decide(&bad, &ok, &s).clamped, 0);
		assert_int_equal(decide(&ok, &bad, &s).clamped, 0);
	}
}

/* ---- the same content ---- */

static void
test_same_content(void **state)
{
	/* different origins, times, values (one untrusted) and ranks, one content */
	struct row_version a = ranked(content(upd("a", 100, 50), "c0ffee"), 0);
	struct row_version b = ranked(content(upd("b", 9e12, 70), "c0ffee"), 1);
	struct row_version d = del("b", 70);
	struct row_version n = ranked(content(upd("b", 100, 50), NULL), 1);
	size_t k, c;

	(void)state;
	for (k = 0; k < NELEM(all_kinds); k++)
		for (c = 0; c < NELEM(all_ccs); c++) {
			/* not a conflict: merge the vectors, nothing to log (even skip, abort) */
			fixed(&a, &b, all_kinds[k], all_ccs[c], RES_REMOTE, 1, "same content");
			b.node = "a"; /* the same origin too */
			fixed(&a, &b, all_kinds[k], all_ccs[c], RES_REMOTE, 1, "same content");
			b.node = "b";
		}
	/* another content is a conflict */
	b.digest = "c0ffef";
	win(&a, &b, STRAT_LATEST, CC_NUMBER, &b, 0, "latest: greater conflict column");
	win(&a, &b, STRAT_SOURCE, CC_TIME, &a, 0, "source: origin listed first wins");
	/* a delete is never the same content; nor is a missing digest */
	win(&a, &d, STRAT_LATEST, CC_NAIVE, &d, 0, "latest: later change time");
	win(&a, &n, STRAT_SOURCE, CC_TIME, &a, 0, "source: origin listed first wins");
	a.digest = NULL;
	win(&a, &n, STRAT_LATEST, CC_TIME, &a, 0, "latest: equal times, origin node name");
}

/* ---- source, target, skip, abort ---- */

static void
test_source(void **state)
{
	struct row_version a = ranked(upd("a", 1, 1), 1);
	struct row_version b = ranked(upd("b", 100, 100), 0);
	struct row_version u, d;
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		/* the lower origin rank (listed first) wins, whatever the values and times */
		win(&a, &b, STRAT_SOURCE, all_ccs[c], &b, 0, "source: origin listed first wins");
		b.rank = 2;
		win(&a, &b, STRAT_SOURCE, all_ccs[c], &a, 0, "source: origin listed first wins");
		b.rank = 0;
	}
	/* equal ranks: the smaller name, even the older and smaller version */
	a = ranked(upd("zed", 100, 100), 1);
	b = ranked(upd("amy", 1, 1), 1);
	win(&a, &b, STRAT_SOURCE, CC_TIME, &b, 0, "source: equal ranks, origin node name");
	/* equal ranks and names: the smaller digest */
	a = ranked(content(upd("n", 1, 1), "bb"), 3);
	b = ranked(content(upd("n", 9, 9), "ab"), 3);
	win(&a, &b, STRAT_SOURCE, CC_NAIVE, &b, 0, "source: equal ranks, origin node name");
	/* a delete against an update: ranks as well */
	u = ranked(upd("a", 100, 500), 1);
	d = ranked(del("b", 200), 0);
	win(&u, &d, STRAT_SOURCE, CC_TIME, &d, 0, "source: origin listed first wins");
	d.rank = 2;
	win(&u, &d, STRAT_SOURCE, CC_TIME, &u, 0, "source: origin listed first wins");
}

static void
test_target(void **state)
{
	struct row_version a = ranked(upd("a", 1, 1), 1);
	struct row_version b = ranked(upd("b", 100, 100), 0);
	struct row_version u, d;
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		/* the higher origin rank (listed last) wins, whatever the values and times */
		win(&a, &b, STRAT_TARGET, all_ccs[c], &a, 0, "target: origin listed last wins");
		b.rank = 2;
		win(&a, &b, STRAT_TARGET, all_ccs[c], &b, 0, "target: origin listed last wins");
		b.rank = 0;
	}
	/* equal ranks: the greater name, even the older and smaller version */
	a = ranked(upd("amy", 100, 100), 1);
	b = ranked(upd("zed", 1, 1), 1);
	win(&a, &b, STRAT_TARGET, CC_TIME, &b, 0, "target: equal ranks, origin node name");
	/* equal ranks and names: the mirror of source, the greater digest */
	a = ranked(content(upd("n", 1, 1), "bb"), 3);
	b = ranked(content(upd("n", 9, 9), "ab"), 3);
	win(&a, &b, STRAT_TARGET, CC_NAIVE, &a, 0, "target: equal ranks, origin node name");
	/* a delete against an update: ranks as well */
	u = ranked(upd("a", 100, 500), 1);
	d = ranked(del("b", 200), 0);
	win(&u, &d, STRAT_TARGET, CC_TIME, &u, 0, "target: origin listed last wins");
	d.rank = 2;
	win(&u, &d, STRAT_TARGET, CC_TIME, &d, 0, "target: origin listed last wins");
}

static void
test_skip_abort(void **state)
{
	struct row_version a = upd("a", 1, 1);
	struct row_version b = upd("b", 1e15, 100);
	struct row_version d = del("c", 50);
	size_t c;

	(void)state;
	for (c = 0; c < NELEM(all_ccs); c++) {
		fixed(&a, &b, STRAT_SKIP, all_ccs[c], RES_SKIP, 0, "skip: nothing applied");
		fixed(&a, &d, STRAT_SKIP, all_ccs[c], RES_SKIP, 0, "skip: nothing applied");
		fixed(&a, &b, STRAT_ABORT, all_ccs[c], RES_ABORT, 0, "abort: the run stops");
		fixed(&a, &d, STRAT_ABORT, all_ccs[c], RES_ABORT, 0, "abort: the run stops");
	}
}

/* ---- delete/delete ---- */

static void
test_delete_delete(void **state)
{
	struct row_version a = ranked(del("a", 10), 0);
	struct row_version b = ranked(del("b", 20), 1);
	size_t k, c;

	(void)state;
	/* both gone: take the remote vector, whatever the strategy, even skip and abort */
	for (k = 0; k < NELEM(all_kinds); k++)
		for (c = 0; c < NELEM(all_ccs); c++) {
			fixed(&a, &b, all_kinds[k], all_ccs[c], RES_REMOTE, 0, "both deleted");
			b.digest = NULL;
			b.node = "a";
			fixed(&a, &b, all_kinds[k], all_ccs[c], RES_REMOTE, 0, "both deleted");
			b.digest = "";
			b.node = "b";
		}
}

/*
 * Two versions that agree are merged under the name of the one the strategy
 * keeps, the same both ways round: a later version that saw only the other
 * one must be decided against it (a node's own later delete, merged into a
 * relayed earlier one, was lost otherwise).
 */
static void
merged_as(const struct row_version *x, const struct row_version *y, enum strategy_kind k,
    const struct row_version *w)
{
	struct strategy s = strat(k, CC_TIME);
	struct decision xy = decide(x, y, &s), yx = decide(y, x, &s);

	/* x local: keep x's name when x is kept */
	if (xy.merge_local != (w == x) || yx.merge_local != (w == y))
		fail_msg("%s: merge of %s and %s: merge_local %d/%d, want %s kept", sname(k),
		    x->node, y->node, xy.merge_local, yx.merge_local, w->node);
}

static void
test_merge_name(void **state)
{
	struct row_version a = ranked(del("a", 10), 1), b = ranked(del("b", 20), 0);
	struct row_version p = ranked(content(upd("a", 100, 10), "c0ffee"), 1);
	struct row_version q = ranked(content(upd("b", 100, 20), "c0ffee"), 0);

	(void)state;
	/* two deletes: latest keeps the later, first the earlier; skip and abort as latest */
	merged_as(&a, &b, STRAT_LATEST, &b);
	merged_as(&a, &b, STRAT_FIRST, &a);
	merged_as(&a, &b, STRAT_SKIP, &b);
	merged_as(&a, &b, STRAT_ABORT, &b);
	/* source the lower rank, target the higher */
	merged_as(&a, &b, STRAT_SOURCE, &b);
	merged_as(&a, &b, STRAT_TARGET, &a);
	/* the same content: equal values, then the change time */
	merged_as(&p, &q, STRAT_LATEST, &q);
	merged_as(&p, &q, STRAT_FIRST, &p);
	merged_as(&p, &q, STRAT_SOURCE, &q);
	merged_as(&p, &q, STRAT_TARGET, &p);
	/* equal times: the smaller origin name */
	b.changed_at = 10;
	merged_as(&a, &b, STRAT_LATEST, &a);
	merged_as(&a, &b, STRAT_FIRST, &a);
}

/* ---- names ---- */

static void
test_strategy_parse(void **state)
{
	static const struct {
		const char *name;
		int kind;
	} known[] = {
		{ "latest", STRAT_LATEST },
		{ "first", STRAT_FIRST },
		{ "source", STRAT_SOURCE },
		{ "target", STRAT_TARGET },
		{ "skip", STRAT_SKIP },
		{ "abort", STRAT_ABORT },
	};
	static const char *const unknown[] = { "", "newest", "Latest", "LATEST", "latest ",
		" latest", "lates", "latestx", "bucardo_latest", "none" };
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(known); i++) {
		assert_int_equal(strategy_parse(known[i].name), known[i].kind);
		assert_string_equal(strategy_names[known[i].kind], known[i].name);
	}
	for (i = 0; i < NELEM(all_kinds); i++)
		assert_int_equal(strategy_parse(strategy_names[all_kinds[i]]), (int)all_kinds[i]);
	for (i = 0; i < NELEM(unknown); i++)
		if (strategy_parse(unknown[i]) != -1)
			fail_msg("'%s' parsed as a strategy", unknown[i]);
}

static void
test_name_tables(void **state)
{
	static const enum conflict_type types[] = { CONFLICT_UPDATE_UPDATE, CONFLICT_UPDATE_DELETE,
		CONFLICT_DELETE_UPDATE, CONFLICT_DELETE_DELETE };
	static const enum resolution ress[] = { RES_REMOTE, RES_LOCAL, RES_SKIP, RES_ABORT };
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(all_kinds); i++) {
		assert_non_null(strategy_names[all_kinds[i]]);
		assert_true(strategy_names[all_kinds[i]][0] != '\0');
	}
	for (i = 0; i < NELEM(types); i++) {
		assert_non_null(conflict_type_names[types[i]]);
		assert_true(conflict_type_names[types[i]][0] != '\0');
	}
	for (i = 0; i < NELEM(ress); i++) {
		assert_non_null(resolution_names[ress[i]]);
		assert_true(resolution_names[ress[i]][0] != '\0');
	}
	assert_string_equal(conflict_type_names[CONFLICT_UPDATE_UPDATE], "update/update");
	assert_string_equal(conflict_type_names[CONFLICT_UPDATE_DELETE], "update/delete");
	assert_string_equal(conflict_type_names[CONFLICT_DELETE_UPDATE], "delete/update");
	assert_string_equal(conflict_type_names[CONFLICT_DELETE_DELETE], "delete/delete");
	assert_string_equal(resolution_names[RES_REMOTE], "remote");
	assert_string_equal(resolution_names[RES_LOCAL], "local");
	assert_string_equal(resolution_names[RES_SKIP], "skip");
	assert_string_equal(resolution_names[RES_ABORT], "abort");
}

/* ---- the reference model ---- */

enum m_kind { M_BOTH_DELETED, M_SAME, M_SKIP, M_ABORT, M_WINNER };

struct model {
	enum m_kind kind;
	const struct row_version *win; /* M_WINNER */
	const char *rule;
	int clamped;
};

/*
 * The last ties, in the order of the documentation: the smaller origin
 * name, then the smaller content digest (NULL as ""), then a live version
 * before a delete.  Returns the version that comes first.
 */
static const struct row_version *
model_first(const struct row_version *a, const struct row_version *b)
{
	int c = strcmp(a->node, b->node);

	if (c == 0)
		c = strcmp(nz(a->digest), nz(b->digest));
	if (c == 0)
		c = (a->deleted != 0) - (b->deleted != 0);
	/* nothing tells them apart: live ones would be the same content */
	assert_true(c != 0);
	return c < 0 ? a : b;
}

/* latest (later = 1) or first (later = 0), from the documentation. */
static void
model_time(const struct row_version *a, const struct row_version *b, const struct strategy *s,
    int later, struct model *m)
{
	static const char *const rules[2][4] = {
		{ "first: smaller conflict column", "first: equal values, earlier change time",
		    "first: earlier change time", "first: equal times, origin node name" },
		{ "latest: greater conflict column", "latest: equal values, later change time",
		    "latest: later change time", "latest: equal times, origin node name" },
	};
	double room = s->future_limit + (s->cc == CC_NAIVE ? CC_NAIVE_SLACK : 0.0);
	int has_a = !a->deleted && a->has_value, has_b = !b->deleted && b->has_value;
	int ok_a = has_a && (s->cc == CC_NUMBER || a->value - a->changed_at <= room);
	int ok_b = has_b && (s->cc == CC_NUMBER || b->value - b->changed_at <= room);
	int values = ok_a && ok_b;
	double ka, kb;

	m->kind = M_WINNER;
	m->clamped = has_a != ok_a || has_b != ok_b;
	if (values) {
		/* both trusted: the values, in their own domain */
		ka = a->value;
		kb = b->value;
	} else if (s->cc == CC_TIME) {
		/* instants: a trusted value, or else the change time */
		ka = ok_a ? a->value : a->changed_at;
		kb = ok_b ? b->value : b->changed_at;
	} else {
		/* a naive time or a number is never compared with a change time */
		ka = a->changed_at;
		kb = b->changed_at;
	}
	if (ka != kb) {
		m->win = (ka > kb) == later ? a : b;
		m->rule = rules[later][values ? 0 : 2];
	} else if (a->changed_at != b->changed_at) {
		m->win = (a->changed_at > b->changed_at) == later ? a : b;
		m->rule = rules[later][values ? 1 : 2];
	} else {
		m->win = model_first(a, b);
		m->rule = rules[later][3];
	}
}

static struct model
model_decide(const struct row_version *a, const struct row_version *b, const struct strategy *s)
{
	struct model m;

	memset(&m, 0, sizeof(m));
	if (a->deleted && b->deleted) {
		m.kind = M_BOTH_DELETED;
		m.rule = "both deleted";
	} else if (!a->deleted && !b->deleted && nz(a->digest)[0] != '\0' &&
	    strcmp(nz(a->digest), nz(b->digest)) == 0) {
		m.kind = M_SAME;
		m.rule = "same content";
	} else if (s->kind == STRAT_SKIP) {
		m.kind = M_SKIP;
		m.rule = "skip: nothing applied";
	} else if (s->kind == STRAT_ABORT) {
		m.kind = M_ABORT;
		m.rule = "abort: the run stops";
	} else if (s->kind == STRAT_LATEST || s->kind == STRAT_FIRST) {
		model_time(a, b, s, s->kind == STRAT_LATEST, &m);
	} else {
		const struct row_version *src;

		m.kind = M_WINNER;
		if (a->rank != b->rank) {
			src = a->rank < b->rank ? a : b;
			m.rule = s->kind == STRAT_SOURCE ? "source: origin listed first wins"
							 : "target: origin listed last wins";
		} else {
			src = model_first(a, b);
			m.rule = s->kind == STRAT_SOURCE ? "source: equal ranks, origin node name"
							 : "target: equal ranks, origin node name";
		}
		/* target is the mirror of source */
		m.win = s->kind == STRAT_SOURCE ? src : src == a ? b : a;
	}
	return m;
}

/* ---- the property test ---- */

static uint32_t rng_state;

static uint32_t
rng(uint32_t n)
{
	/* xorshift32: fixed seeds, the same sequence everywhere */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

static const char *const pnodes[] = { "a", "b", "B", "aa", "n1", "n10", "n2" };
static const char *const pdigests[] = { "d0", "d1", "d2" };

static struct row_version
random_version(void)
{
	struct row_version v;

	memset(&v, 0, sizeof(v));
	v.node = pnodes[rng(NELEM(pnodes))];
	v.deleted = rng(4) == 0;
	v.has_value = rng(4) != 0;
	/*
	 * 0..5 against change times 0..3 and limits 0..2: trusted, at the
	 * limit or beyond it; CC_NAIVE_SLACK + 0..7 straddles the naive
	 * boundary.
	 */
	v.value = rng(5) == 0 ? CC_NAIVE_SLACK + rng(8) : rng(6);
	v.changed_at = rng(4);
	v.rank = (int)rng(3);
	/* a live row's content is an md5, never empty; a delete's is "" or NULL */
	v.digest = !v.deleted ? pdigests[rng(NELEM(pdigests))] : rng(2) ? "" : NULL;
	return v;
}

/* v with the fields that strategy k must not look at changed. */
static struct row_version
scramble(const struct row_version *v, enum strategy_kind k)
{
	struct row_version w = *v;

	if (w.deleted) {
		w.has_value = (int)rng(2);
		w.value = rng(2) ? 1e18 : -(double)rng(9);
	}
	if (k == STRAT_LATEST || k == STRAT_FIRST) {
		w.rank = (int)rng(100) - 50;
		return w;
	}
	w.has_value = (int)rng(2);
	w.value = (double)rng(100000) - 1000;
	w.changed_at = (double)rng(100000);
	if (k == STRAT_SKIP || k == STRAT_ABORT) {
		w.rank = (int)rng(100) - 50;
		w.node = pnodes[rng(NELEM(pnodes))];
	}
	return w;
}

/* The version at other addresses, strings included. */
struct vcopy {
	struct row_version v;
	char node[16];
	char digest[16];
};

static void
vcopy(struct vcopy *c, const struct row_version *v)
{
	c->v = *v;
	snprintf(c->node, sizeof(c->node), "%s", v->node);
	c->v.node = c->node;
	if (v->digest != NULL) {
		snprintf(c->digest, sizeof(c->digest), "%s", v->digest);
		c->v.digest = c->digest;
	}
}

static int
same_decision(const struct decision *p, const struct decision *q)
{
	return p->type == q->type && p->res == q->res && p->clamped == q->clamped &&
	    p->same == q->same && strcmp(p->rule, q->rule) == 0;
}

static void
describe(char *buf, size_t len, const struct row_version *v)
{
	snprintf(buf, len, "%s(del=%d has=%d v=%g t=%g rank=%d digest=%s)", v->node, v->deleted,
	    v->has_value, v->value, v->changed_at, v->rank, v->digest ? v->digest : "NULL");
}

struct pctx {
	uint32_t seed;
	int pair;
	const struct row_version *x, *y;
	const struct strategy *s;
};

/* Fail with the pair, what went wrong and one or two decisions (d2 may be NULL). */
static void
pfail(const struct pctx *p, const char *what, const char *l1, const struct decision *d1,
    const char *l2, const struct decision *d2)
{
	char bx[128], by[128], second[256] = "";

	describe(bx, sizeof(bx), p->x);
	describe(by, sizeof(by), p->y);
	if (d2 != NULL)
		snprintf(second, sizeof(second), "; %s: %s %s clamped=%d same=%d (%s)", l2,
		    tname(d2->type), rname(d2->res), d2->clamped, d2->same, d2->rule);
	fail_msg("seed %u pair %d, %s/%s limit %g: x=%s y=%s: %s: %s: %s %s clamped=%d same=%d "
		 "(%s)%s",
	    (unsigned)p->seed, p->pair, sname(p->s->kind), cc_name(p->s->cc), p->s->future_limit,
	    bx, by, what, l1, tname(d1->type), rname(d1->res), d1->clamped, d1->same, d1->rule,
	    second);
}

/* Both ways round must keep the same version (xy: x local, yx: y local). */
static void
check_symmetric(const struct pctx *p, const struct decision *xy, const struct decision *yx)
{
	const struct row_version *x = p->x, *y = p->y;

	if (xy->type != type_of(x, y) || yx->type != type_of(y, x))
		pfail(p, "wrong conflict type", "x local", xy, "y local", yx);
	if (xy->clamped != yx->clamped || xy->same != yx->same || strcmp(xy->rule, yx->rule) != 0)
		pfail(p, "clamped, same or rule depends on the direction", "x local", xy, "y local",
		    yx);
	if (x->deleted && y->deleted) {
		if (xy->res != RES_REMOTE || yx->res != RES_REMOTE || xy->same)
			pfail(p, "delete/delete must take the remote vector", "x local", xy,
			    "y local", yx);
	} else if (xy->same) {
		if (xy->res != RES_REMOTE || yx->res != RES_REMOTE)
			pfail(p, "the same content must take the remote vector", "x local", xy,
			    "y local", yx);
	} else if (p->s->kind == STRAT_SKIP || p->s->kind == STRAT_ABORT) {
		if (xy->res != yx->res)
			pfail(
			    p, "skip/abort depends on the direction", "x local", xy, "y local", yx);
	} else if (!((xy->res == RES_LOCAL && yx->res == RES_REMOTE) ||
		       (xy->res == RES_REMOTE && yx->res == RES_LOCAL))) {
		pfail(p, "a different version wins each way round", "x local", xy, "y local", yx);
	}
}

/* d (local, remote) against the model's decision for the pair. */
static void
check_model(const struct pctx *p, const struct row_version *local, const struct row_version *remote,
    const struct decision *d, const struct model *m)
{
	enum resolution want;

	switch (m->kind) {
	case M_BOTH_DELETED:
	case M_SAME: want = RES_REMOTE; break;
	case M_SKIP: want = RES_SKIP; break;
	case M_ABORT: want = RES_ABORT; break;
	default: want = m->win == remote ? RES_REMOTE : RES_LOCAL; break;
	}
	if (d->res != want || d->same != (m->kind == M_SAME) || d->clamped != m->clamped ||
	    strcmp(d->rule, m->rule) != 0) {
		char what[320];

		snprintf(what, sizeof(what),
		    "the rules say %s local: %s (keep %s) clamped=%d same=%d (%s)",
		    local == p->x ? "x" : "y", rname(want),
		    m->kind == M_WINNER ? (m->win == p->x ? "x" : "y") : "-", m->clamped,
		    m->kind == M_SAME, m->rule);
		pfail(p, what, local == p->x ? "x local" : "y local", d, NULL, NULL);
	}
}

static const char *const all_rules[] = {
	"latest: greater conflict column",
	"latest: equal values, later change time",
	"latest: later change time",
	"latest: equal times, origin node name",
	"first: smaller conflict column",
	"first: equal values, earlier change time",
	"first: earlier change time",
	"first: equal times, origin node name",
	"source: origin listed first wins",
	"source: equal ranks, origin node name",
	"target: origin listed last wins",
	"target: equal ranks, origin node name",
	"skip: nothing applied",
	"abort: the run stops",
	"same content",
	"both deleted",
};

static void
test_property(void **state)
{
	static const uint32_t seeds[] = { 1u, 20240601u, 0xdeadbeefu };
	static const double limits[] = { 0, 1, 2 };
	int rule_hits[NELEM(all_rules)] = { 0 };
	int clamped[3] = { 0 }, digest_ties = 0, naive_slack = 0, upd_del = 0;
	struct row_version prev_x = upd("a", 1, 1), prev_y = upd("b", 2, 2);
	size_t si, k, r;
	int i;

	(void)state;
	for (si = 0; si < NELEM(seeds); si++) {
		rng_state = seeds[si];
		for (i = 0; i < 20000; i++) {
			struct row_version x = random_version(), y = random_version();
			struct strategy base = strat(STRAT_LATEST, all_ccs[rng(NELEM(all_ccs))]);

			base.future_limit = limits[rng(NELEM(limits))];
			for (k = 0; k < NELEM(all_kinds); k++) {
				struct strategy s = base, s2;
				struct pctx p = { seeds[si], i, &x, &y, &s };
				struct decision xy, yx, again, other;
				struct row_version x2, y2;
				struct vcopy cx, cy;
				struct model m;

				s.kind = all_kinds[k];
				xy = decide(&x, &y, &s);
				yx = decide(&y, &x, &s);

				/* 1. the same version both ways round */
				check_symmetric(&p, &xy, &yx);

				/* 2. nothing but the two versions and the strategy counts */
				(void)decide(&prev_x, &prev_y, &s);
				vcopy(&cx, &x);
				vcopy(&cy, &y);
				s2 = s;
				again = decide_fill(&cx.v, &cy.v, &s2, 0x00);
				if (!same_decision(&xy, &again))
					pfail(&p, "copies decided otherwise", "x local", &xy,
					    "copies", &again);
				again = decide_fill(&cy.v, &cx.v, &s2, 0xff);
				if (!same_decision(&yx, &again))
					pfail(&p, "copies decided otherwise", "y local", &yx,
					    "copies", &again);
				x2 = scramble(&x, s.kind);
				y2 = scramble(&y, s.kind);
				if (s.kind != STRAT_LATEST && s.kind != STRAT_FIRST) {
					s2.cc = all_ccs[rng(NELEM(all_ccs))];
					s2.future_limit = limits[rng(NELEM(limits))];
				}
				other = decide(&x2, &y2, &s2);
				if (!same_decision(&xy, &other)) {
					char what[512], b2x[128], b2y[128];

					describe(b2x, sizeof(b2x), &x2);
					describe(b2y, sizeof(b2y), &y2);
					snprintf(what, sizeof(what),
					    "a field the strategy ignores changed it (x=%s y=%s %s "
					    "limit %g)",
					    b2x, b2y, cc_name(s2.cc), s2.future_limit);
					pfail(&p, what, "x local", &xy, "changed", &other);
				}

				/* 3. the documented rules */
				m = model_decide(&x, &y, &s);
				check_model(&p, &x, &y, &xy, &m);
				check_model(&p, &y, &x, &yx, &m);

				/* how much of the rules the pairs exercised */
				for (r = 0; r < NELEM(all_rules); r++)
					if (strcmp(xy.rule, all_rules[r]) == 0)
						rule_hits[r]++;
				clamped[s.cc] += xy.clamped;
				if (m.kind == M_WINNER && strcmp(x.node, y.node) == 0 &&
				    (s.kind != STRAT_SOURCE && s.kind != STRAT_TARGET
					    ? strstr(xy.rule, "equal times") != NULL
					    : x.rank == y.rank))
					digest_ties++;
				if (s.kind == STRAT_LATEST && s.cc == CC_NAIVE && !x.deleted &&
				    x.has_value && x.value > x.changed_at + s.future_limit &&
				    !xy.clamped)
					naive_slack++;
				if (s.kind == STRAT_LATEST && x.deleted != y.deleted)
					upd_del++;
			}
			prev_x = x;
			prev_y = y;
		}
	}
	/* the ranges are small enough to reach every rule and branch */
	for (r = 0; r < NELEM(all_rules); r++)
		if (rule_hits[r] < 100)
			fail_msg("rule \"%s\" decided only %d pairs", all_rules[r], rule_hits[r]);
	assert_true(clamped[CC_TIME] > 100);
	assert_true(clamped[CC_NAIVE] > 100);
	assert_int_equal(clamped[CC_NUMBER], 0);
	assert_true(digest_ties > 100);
	assert_true(naive_slack > 100);
	assert_true(upd_del > 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latest_value),
		cmocka_unit_test(test_first_value),
		cmocka_unit_test(test_equal_values_change_time),
		cmocka_unit_test(test_equal_times_name_digest),
		cmocka_unit_test(test_conflict_types),
		cmocka_unit_test(test_update_delete_change_times),
		cmocka_unit_test(test_no_value_change_times),
		cmocka_unit_test(test_future_clamp),
		cmocka_unit_test(test_same_content),
		cmocka_unit_test(test_source),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_skip_abort),
		cmocka_unit_test(test_delete_delete),
		cmocka_unit_test(test_merge_name),
		cmocka_unit_test(test_strategy_parse),
		cmocka_unit_test(test_name_tables),
		cmocka_unit_test(test_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

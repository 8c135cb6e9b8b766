/*
 * test_conflict.c - the conflict decision (src/repl/conflict.c).
 *
 * Covers conflict_decide() case by case for every strategy: latest (greater
 * value wins either way round; equal values fall back to the later change
 * time, then to the smaller node name, symmetrically), first (the mirror),
 * deleted versions competing with their change time against the other's
 * column value (update/delete and delete/update, both outcomes), tables
 * without the column or with NULL in it (has_value = 0), values beyond
 * now + future_limit (clamped to the change time, flagged, and losing to a
 * sane newer one), source (lower rank, then node name), target, skip,
 * abort, delete/delete under every strategy; strategy_parse() and the name
 * tables.  A property test checks, over a few hundred pseudo-random pairs
 * (fixed seed, small ranges to force ties), that latest, first and source
 * pick the same winning version whichever side is local, and that latest
 * and first agree with a reference model of the documented rules.
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

#define NOW 1700000000.0
#define LIMIT 86400.0

#define assert_prefix(hay, pre)                                                                \
	do {                                                                                   \
		const char *h_ = (hay), *p_ = (pre);                                           \
		if (h_ == NULL || strncmp(h_, p_, strlen(p_)) != 0)                            \
			fail_msg("\"%s\" does not start with \"%s\"", h_ ? h_ : "(null)", p_); \
	} while (0)

static const enum strategy_kind all_kinds[] = { STRAT_LATEST, STRAT_FIRST, STRAT_SOURCE,
	STRAT_TARGET, STRAT_SKIP, STRAT_ABORT };
#define NKINDS (sizeof(all_kinds) / sizeof(all_kinds[0]))

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
	return v;
}

/* A live version without a conflict column (or with NULL in it). */
static struct row_version
novalue(const char *node, double changed_at)
{
	struct row_version v = upd(node, 0, changed_at);

	v.has_value = 0;
	v.value = 1e18; /* must be ignored */
	return v;
}

/* A tombstone; its column value, if any, must be ignored. */
static struct row_version
del(const char *node, double changed_at)
{
	struct row_version v = upd(node, 1e18, changed_at);

	v.deleted = 1;
	return v;
}

static struct row_version
ranked(struct row_version v, int rank)
{
	v.rank = rank;
	return v;
}

static struct strategy
strat(enum strategy_kind k)
{
	struct strategy s;

	memset(&s, 0, sizeof(s));
	s.kind = k;
	s.now = NOW;
	s.future_limit = LIMIT;
	return s;
}

static struct decision
decide(const struct row_version *local, const struct row_version *remote, enum strategy_kind k)
{
	struct strategy s = strat(k);
	struct decision d;

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(conflict_decide(local, remote, &s, &d), 0);
	assert_non_null(d.rule);
	return d;
}

/* The version a decision keeps: remote for RES_REMOTE, local for RES_LOCAL. */
static const struct row_version *
kept(const struct decision *d, const struct row_version *local, const struct row_version *remote)
{
	if (d->res == RES_REMOTE)
		return remote;
	if (d->res == RES_LOCAL)
		return local;
	fail_msg("resolution %d keeps no version", (int)d->res);
	return NULL;
}

static enum conflict_type
mirror_type(enum conflict_type t)
{
	if (t == CONFLICT_UPDATE_DELETE)
		return CONFLICT_DELETE_UPDATE;
	if (t == CONFLICT_DELETE_UPDATE)
		return CONFLICT_UPDATE_DELETE;
	return t;
}

/*
 * Decide (local, remote) under k: expect type, resolution and clamped; then
 * decide the other way round and expect the same version to win, with the
 * mirrored type and the same rule.
 */
static void
expect(const struct row_version *local, const struct row_version *remote, enum strategy_kind k,
    enum conflict_type type, enum resolution res, int clamped)
{
	struct decision d = decide(local, remote, k), m;

	if (d.type != type || d.res != res || d.clamped != clamped)
		fail_msg(
		    "%s: local %s vs remote %s: got %s/%s/clamped=%d (%s), want %s/%s/clamped=%d",
		    strategy_names[k], local->node, remote->node, conflict_type_names[d.type],
		    resolution_names[d.res], d.clamped, d.rule, conflict_type_names[type],
		    resolution_names[res], clamped);
	assert_prefix(d.rule, strategy_names[k]);

	m = decide(remote, local, k);
	assert_int_equal(m.type, mirror_type(type));
	assert_int_equal(m.clamped, clamped);
	assert_string_equal(m.rule, d.rule);
	if (res == RES_REMOTE || res == RES_LOCAL) {
		if (kept(&m, remote, local) != kept(&d, local, remote))
			fail_msg("%s: %s wins as remote but %s wins the other way round",
			    strategy_names[k], kept(&d, local, remote)->node,
			    kept(&m, remote, local)->node);
	} else {
		assert_int_equal(m.res, res);
	}
}

/* ---- latest ---- */

static void
test_latest_value(void **state)
{
	struct row_version a = upd("a", NOW - 100, NOW - 50);
	struct row_version b = upd("b", NOW - 200, NOW - 10);

	(void)state;
	/* the greater column value wins, whatever the change times say */
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_LATEST).rule, "latest: greater conflict column or change time");
	/* and whatever the names say */
	a = upd("z", 10, 1);
	b = upd("a", 9, 1);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	/* a tiny difference still counts */
	a = upd("a", 1000.000001, 5);
	b = upd("b", 1000.0, 9);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
}

static void
test_latest_equal_value(void **state)
{
	/* Rails' update_all left updated_at alone: the change time decides */
	struct row_version a = upd("a", NOW - 100, NOW - 50);
	struct row_version b = upd("b", NOW - 100, NOW - 10);

	(void)state;
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_LATEST).rule, "latest: equal values, later change time");
	/* the later one wins even with the greater node name */
	a = upd("z", 5, 200);
	b = upd("a", 5, 100);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
}

static void
test_latest_tie_node_name(void **state)
{
	struct row_version a = upd("node_a", 7, 3);
	struct row_version b = upd("node_b", 7, 3);
	struct decision d1, d2;

	(void)state;
	/* the smaller name wins, whichever side it is on */
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	d1 = decide(&a, &b, STRAT_LATEST);
	d2 = decide(&b, &a, STRAT_LATEST);
	assert_string_equal(kept(&d1, &a, &b)->node, "node_a");
	assert_string_equal(kept(&d2, &b, &a)->node, "node_a");
	assert_string_equal(d1.rule, "latest: equal values and times, node name");
	/* names compare bytewise: "B" < "a", "a" < "aa" */
	a = upd("a", 1, 1);
	b = upd("B", 1, 1);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	b = upd("aa", 1, 1);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	/* tie without a column: change times equal, name decides */
	a = novalue("y", 40);
	b = novalue("x", 40);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
}

/* ---- first ---- */

static void
test_first(void **state)
{
	struct row_version a = upd("a", NOW - 100, NOW - 50);
	struct row_version b = upd("b", NOW - 200, NOW - 10);

	(void)state;
	/* the smaller column value wins */
	expect(&a, &b, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&b, &a, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_FIRST).rule, "first: smaller conflict column or change time");
	/* equal values: the earlier change time */
	a = upd("a", 5, NOW - 50);
	b = upd("b", 5, NOW - 10);
	expect(&a, &b, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_FIRST).rule, "first: equal values, earlier change time");
	/* equal both: still the smaller node name (not mirrored) */
	a = upd("m", 5, 5);
	b = upd("k", 5, 5);
	expect(&a, &b, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&b, &a, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_FIRST).rule, "first: equal values and times, node name");
	/* no column: the earlier change time */
	a = novalue("a", 20);
	b = novalue("b", 10);
	expect(&a, &b, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
}

/* ---- deletes against updates ---- */

static void
test_delete_vs_update(void **state)
{
	struct row_version u = upd("a", 100, 50);
	struct row_version dl = del("b", 200);
	struct row_version de = del("b", 80);

	(void)state;
	/* update/delete: local changed it, remote deleted it */
	/* latest: the delete's change time 200 beats the column value 100 */
	expect(&u, &dl, STRAT_LATEST, CONFLICT_UPDATE_DELETE, RES_REMOTE, 0);
	/* ... 80 loses to 100 (the update's own change time 50 is not used) */
	expect(&u, &de, STRAT_LATEST, CONFLICT_UPDATE_DELETE, RES_LOCAL, 0);
	/* first: the other way round */
	expect(&u, &dl, STRAT_FIRST, CONFLICT_UPDATE_DELETE, RES_LOCAL, 0);
	expect(&u, &de, STRAT_FIRST, CONFLICT_UPDATE_DELETE, RES_REMOTE, 0);

	/* delete/update: local deleted it, remote changed it */
	expect(&dl, &u, STRAT_LATEST, CONFLICT_DELETE_UPDATE, RES_LOCAL, 0);
	expect(&de, &u, STRAT_LATEST, CONFLICT_DELETE_UPDATE, RES_REMOTE, 0);
	expect(&dl, &u, STRAT_FIRST, CONFLICT_DELETE_UPDATE, RES_REMOTE, 0);
	expect(&de, &u, STRAT_FIRST, CONFLICT_DELETE_UPDATE, RES_LOCAL, 0);

	/* the delete's change time equal to the column value: change times, then names */
	dl = del("b", 100);
	expect(&u, &dl, STRAT_LATEST, CONFLICT_UPDATE_DELETE, RES_REMOTE, 0);
	expect(&u, &dl, STRAT_FIRST, CONFLICT_UPDATE_DELETE, RES_LOCAL, 0);
	u = upd("c", 100, 100);
	expect(&u, &dl, STRAT_LATEST, CONFLICT_UPDATE_DELETE, RES_REMOTE, 0);
	expect(&dl, &u, STRAT_FIRST, CONFLICT_DELETE_UPDATE, RES_LOCAL, 0);

	/* a delete against a version without the column: change times */
	u = novalue("a", 300);
	dl = del("b", 200);
	expect(&u, &dl, STRAT_LATEST, CONFLICT_UPDATE_DELETE, RES_LOCAL, 0);
	expect(&dl, &u, STRAT_LATEST, CONFLICT_DELETE_UPDATE, RES_REMOTE, 0);
}

static void
test_delete_types_other_strategies(void **state)
{
	struct row_version u = ranked(upd("a", 100, 50), 1);
	struct row_version d = ranked(del("b", 200), 0);

	(void)state;
	expect(&u, &d, STRAT_SOURCE, CONFLICT_UPDATE_DELETE, RES_REMOTE, 0);
	expect(&d, &u, STRAT_SOURCE, CONFLICT_DELETE_UPDATE, RES_LOCAL, 0);
	assert_int_equal(decide(&u, &d, STRAT_TARGET).res, RES_LOCAL);
	assert_int_equal(decide(&d, &u, STRAT_TARGET).res, RES_LOCAL);
	assert_int_equal(decide(&d, &u, STRAT_TARGET).type, CONFLICT_DELETE_UPDATE);
	expect(&u, &d, STRAT_SKIP, CONFLICT_UPDATE_DELETE, RES_SKIP, 0);
	expect(&u, &d, STRAT_ABORT, CONFLICT_UPDATE_DELETE, RES_ABORT, 0);
	expect(&d, &u, STRAT_ABORT, CONFLICT_DELETE_UPDATE, RES_ABORT, 0);
}

/* ---- no conflict column ---- */

static void
test_no_value_uses_changed_at(void **state)
{
	struct row_version a = novalue("a", NOW - 10);
	struct row_version b = novalue("b", NOW - 20);

	(void)state;
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&a, &b, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_LATEST).rule, "latest: greater conflict column or change time");

	/* NULL on one side only: its change time against the other's value */
	a = novalue("a", 150);
	b = upd("b", 100, 400);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	b = upd("b", 160, 10);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&a, &b, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	/* equal: then the change times (150 vs 10) */
	b = upd("b", 150, 10);
	expect(&a, &b, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	assert_string_equal(
	    decide(&a, &b, STRAT_LATEST).rule, "latest: equal values, later change time");
}

/* ---- values in the future ---- */

static void
test_future_clamped(void **state)
{
	/* a bad clock wrote updated_at two days ahead, long ago */
	struct row_version bad = upd("a", NOW + 2 * LIMIT, NOW - 1000);
	struct row_version sane = upd("b", NOW - 10, NOW - 10);
	struct row_version older = upd("b", NOW - 5000, NOW - 5000);
	struct strategy s = strat(STRAT_LATEST);
	struct decision d;

	(void)state;
	/* clamped to its change time, it loses to a sane newer version */
	expect(&bad, &sane, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 1);
	expect(&sane, &bad, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 1);
	/* ... but still beats an older one */
	expect(&bad, &older, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 1);
	/* first: clamped too, it competes with its change time */
	expect(&bad, &sane, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 1);
	expect(&bad, &older, STRAT_FIRST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 1);

	/* without the limit it would have won */
	s.future_limit = 10 * LIMIT;
	assert_int_equal(conflict_decide(&bad, &sane, &s, &d), 0);
	assert_int_equal(d.res, RES_LOCAL);
	assert_int_equal(d.clamped, 0);

	/* exactly at the limit is trusted; just beyond it is not */
	bad = upd("a", NOW + LIMIT, NOW - 1000);
	expect(&bad, &sane, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	bad = upd("a", NOW + LIMIT + 1, NOW - 1000);
	expect(&bad, &sane, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 1);
	/* a little in the future (within the limit) is trusted */
	bad = upd("a", NOW + 60, NOW - 1000);
	expect(&bad, &sane, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);

	/* both in the future: both clamped, change times decide */
	bad = upd("a", NOW + 3 * LIMIT, NOW - 20);
	sane = upd("b", NOW + 5 * LIMIT, NOW - 30);
	expect(&bad, &sane, STRAT_LATEST, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 1);

	/* a tombstone's huge ignored value is not clamped; nor other strategies */
	bad = del("a", NOW - 1);
	sane = upd("b", NOW - 10, NOW - 10);
	expect(&bad, &sane, STRAT_LATEST, CONFLICT_DELETE_UPDATE, RES_LOCAL, 0);
	bad = upd("a", NOW + 2 * LIMIT, NOW - 1000);
	assert_int_equal(decide(&bad, &sane, STRAT_SOURCE).clamped, 0);
	assert_int_equal(decide(&bad, &sane, STRAT_TARGET).clamped, 0);
	assert_int_equal(decide(&bad, &sane, STRAT_SKIP).clamped, 0);
	assert_int_equal(decide(&bad, &sane, STRAT_ABORT).clamped, 0);
}

/* ---- source, target, skip, abort ---- */

static void
test_source(void **state)
{
	struct row_version a = ranked(upd("a", 1, 1), 1);
	struct row_version b = ranked(upd("b", 100, 100), 0);

	(void)state;
	/* the lower rank (listed first in dbs=) wins, whatever the values */
	expect(&a, &b, STRAT_SOURCE, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&b, &a, STRAT_SOURCE, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	a.rank = 0;
	b.rank = 2;
	expect(&a, &b, STRAT_SOURCE, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	expect(&b, &a, STRAT_SOURCE, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	/* equal ranks: the smaller name */
	a = ranked(upd("zed", 100, 100), 1);
	b = ranked(upd("amy", 1, 1), 1);
	expect(&a, &b, STRAT_SOURCE, CONFLICT_UPDATE_UPDATE, RES_REMOTE, 0);
	expect(&b, &a, STRAT_SOURCE, CONFLICT_UPDATE_UPDATE, RES_LOCAL, 0);
	assert_string_equal(decide(&a, &b, STRAT_SOURCE).rule, "source: first-listed source wins");
}

static void
test_target(void **state)
{
	struct row_version a = ranked(upd("a", 1, 1), 5);
	struct row_version b = ranked(upd("b", 100, 100), 0);
	struct row_version c = del("c", 1000);
	struct decision d;

	(void)state;
	d = decide(&a, &b, STRAT_TARGET);
	assert_int_equal(d.type, CONFLICT_UPDATE_UPDATE);
	assert_int_equal(d.res, RES_LOCAL);
	assert_int_equal(d.clamped, 0);
	assert_string_equal(d.rule, "target: the target keeps its version");
	assert_int_equal(decide(&b, &a, STRAT_TARGET).res, RES_LOCAL);
	d = decide(&a, &c, STRAT_TARGET);
	assert_int_equal(d.type, CONFLICT_UPDATE_DELETE);
	assert_int_equal(d.res, RES_LOCAL);
	d = decide(&c, &a, STRAT_TARGET);
	assert_int_equal(d.type, CONFLICT_DELETE_UPDATE);
	assert_int_equal(d.res, RES_LOCAL);
}

static void
test_skip_abort(void **state)
{
	struct row_version a = upd("a", 1, 1);
	struct row_version b = upd("b", 100, 100);
	struct decision d;

	(void)state;
	expect(&a, &b, STRAT_SKIP, CONFLICT_UPDATE_UPDATE, RES_SKIP, 0);
	expect(&b, &a, STRAT_SKIP, CONFLICT_UPDATE_UPDATE, RES_SKIP, 0);
	d = decide(&a, &b, STRAT_SKIP);
	assert_string_equal(d.rule, "skip: nothing applied");
	expect(&a, &b, STRAT_ABORT, CONFLICT_UPDATE_UPDATE, RES_ABORT, 0);
	expect(&b, &a, STRAT_ABORT, CONFLICT_UPDATE_UPDATE, RES_ABORT, 0);
	d = decide(&a, &b, STRAT_ABORT);
	assert_string_equal(d.rule, "abort: the run stops");
}

/* ---- delete/delete ---- */

static void
test_delete_delete(void **state)
{
	struct row_version a = ranked(del("a", 10), 0);
	struct row_version b = ranked(del("b", 20), 1);
	size_t i;

	(void)state;
	/* both gone: same outcome whatever the strategy, even abort and skip */
	for (i = 0; i < NKINDS; i++) {
		struct decision d = decide(&a, &b, all_kinds[i]);

		assert_int_equal(d.type, CONFLICT_DELETE_DELETE);
		assert_int_equal(d.res, RES_REMOTE);
		assert_int_equal(d.clamped, 0);
		assert_string_equal(d.rule, "both deleted");
		d = decide(&b, &a, all_kinds[i]);
		assert_int_equal(d.type, CONFLICT_DELETE_DELETE);
		assert_int_equal(d.res, RES_REMOTE);
	}
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
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		assert_int_equal(strategy_parse(known[i].name), known[i].kind);
		assert_string_equal(strategy_names[known[i].kind], known[i].name);
	}
	for (i = 0; i < NKINDS; i++)
		assert_int_equal(strategy_parse(strategy_names[all_kinds[i]]), (int)all_kinds[i]);
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
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
	for (i = 0; i < NKINDS; i++) {
		assert_non_null(strategy_names[all_kinds[i]]);
		assert_true(strategy_names[all_kinds[i]][0] != '\0');
	}
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		assert_non_null(conflict_type_names[types[i]]);
		assert_true(conflict_type_names[types[i]][0] != '\0');
	}
	for (i = 0; i < sizeof(ress) / sizeof(ress[0]); i++) {
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

/* ---- property: the same winner in both directions ---- */

static uint32_t rng_state;

static uint32_t
rng(uint32_t n)
{
	/* xorshift32: fixed seed, same sequence everywhere */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

static struct row_version
random_version(const char *node)
{
	struct row_version v;

	memset(&v, 0, sizeof(v));
	v.node = node;
	v.deleted = rng(4) == 0;
	v.has_value = rng(4) != 0;
	/* 0..3 are sane; 12..13 lie beyond now + limit (now 10, limit 1) */
	v.value = rng(5) == 0 ? 12 + rng(2) : rng(4);
	v.changed_at = rng(4);
	v.rank = (int)rng(3);
	return v;
}

/* The documented rule for latest (dir 1) and first (dir -1). */
static const struct row_version *
model_winner(
    const struct row_version *a, const struct row_version *b, const struct strategy *s, int dir)
{
	double ea, eb;

	ea = a->deleted || !a->has_value || a->value > s->now + s->future_limit ? a->changed_at
										: a->value;
	eb = b->deleted || !b->has_value || b->value > s->now + s->future_limit ? b->changed_at
										: b->value;
	if (ea != eb)
		return (ea - eb) * dir > 0 ? a : b;
	if (a->changed_at != b->changed_at)
		return (a->changed_at - b->changed_at) * dir > 0 ? a : b;
	return strcmp(a->node, b->node) < 0 ? a : b;
}

static void
test_property_both_directions(void **state)
{
	static const char *const nodes[] = { "a", "b", "c", "hub", "n1", "n10", "n2" };
	static const enum strategy_kind kinds[] = { STRAT_LATEST, STRAT_FIRST, STRAT_SOURCE };
	const size_t nn = sizeof(nodes) / sizeof(nodes[0]);
	int i, checked = 0, ties = 0, clamps = 0;

	(void)state;
	rng_state = 20240601u;
	for (i = 0; i < 600; i++) {
		uint32_t ia = rng((uint32_t)nn),
			 ib = (ia + 1 + rng((uint32_t)nn - 1)) % (uint32_t)nn;
		struct row_version a = random_version(nodes[ia]);
		struct row_version b = random_version(nodes[ib]);
		size_t k;

		assert_true(ia != ib);
		for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			struct strategy s = strat(kinds[k]);
			struct decision ab, ba;
			const struct row_version *w1, *w2;

			s.now = 10;
			s.future_limit = 1;
			assert_int_equal(conflict_decide(&a, &b, &s, &ab), 0);
			assert_int_equal(conflict_decide(&b, &a, &s, &ba), 0);
			assert_int_equal(ba.type, mirror_type(ab.type));
			assert_int_equal(ab.clamped, ba.clamped);
			assert_non_null(ab.rule);
			assert_string_equal(ab.rule, ba.rule);
			if (a.deleted && b.deleted) {
				/* nothing to pick: both take the incoming tombstone */
				assert_int_equal(ab.type, CONFLICT_DELETE_DELETE);
				assert_int_equal(ab.res, RES_REMOTE);
				assert_int_equal(ba.res, RES_REMOTE);
				continue;
			}
			w1 = kept(&ab, &a, &b);
			w2 = kept(&ba, &b, &a);
			if (w1 != w2)
				fail_msg("pair %d, %s: a=%s(del=%d has=%d v=%g t=%g r=%d) "
					 "b=%s(del=%d has=%d v=%g t=%g r=%d): "
					 "%s wins as local, %s as remote",
				    i, strategy_names[kinds[k]], a.node, a.deleted, a.has_value,
				    a.value, a.changed_at, a.rank, b.node, b.deleted, b.has_value,
				    b.value, b.changed_at, b.rank, w1->node, w2->node);
			if (kinds[k] != STRAT_SOURCE) {
				const struct row_version *want =
				    model_winner(&a, &b, &s, kinds[k] == STRAT_LATEST ? 1 : -1);

				if (w1 != want)
					fail_msg("pair %d, %s: %s won, the rules say %s", i,
					    strategy_names[kinds[k]], w1->node, want->node);
				if (strstr(ab.rule, "node name"))
					ties++;
				clamps += ab.clamped;
			}
			checked++;
		}
	}
	/* the ranges are small enough to exercise every branch */
	assert_true(checked > 1000);
	assert_true(ties > 20);
	assert_true(clamps > 50);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latest_value),
		cmocka_unit_test(test_latest_equal_value),
		cmocka_unit_test(test_latest_tie_node_name),
		cmocka_unit_test(test_first),
		cmocka_unit_test(test_delete_vs_update),
		cmocka_unit_test(test_delete_types_other_strategies),
		cmocka_unit_test(test_no_value_uses_changed_at),
		cmocka_unit_test(test_future_clamped),
		cmocka_unit_test(test_source),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_skip_abort),
		cmocka_unit_test(test_delete_delete),
		cmocka_unit_test(test_strategy_parse),
		cmocka_unit_test(test_name_tables),
		cmocka_unit_test(test_property_both_directions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

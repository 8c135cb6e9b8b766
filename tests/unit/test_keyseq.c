/*
 * test_keyseq.c - the arithmetic of `repctl partition sequences`
 * (src/repl/keyseq.c): case tables for
 *  - keyseq_first_at_or_above: every residue class, negative starts and
 *    residues, from already in the class, step 1;
 *  - keyseq_assign_residues: recorded residues kept, a recorded residue
 *    another node holds (outside, or an earlier node) given up, a recorded
 *    residue above a smaller step given up, position order, the smallest
 *    free one, a full set (the index of the node left without);
 *  - keyseq_plan: a fresh sequence, one already partitioned (a rerun
 *    changes nothing), one partitioned with another step or residue, a
 *    MINVALUE above the residue, ids in use above the sequence;
 * and a property: for every step 2..12 and every high/cur in a range, the
 * planned values lie in the residue class, above high, at or above start,
 * so two nodes with distinct residues never hand out the same id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keyseq.h"

static void
test_first_at_or_above(void **state)
{
	static const struct {
		long long from, r, step, want;
	} c[] = {
		{ 1, 1, 10, 1 },
		{ 2, 1, 10, 11 },
		{ 10, 1, 10, 11 },
		{ 11, 1, 10, 11 },
		{ 1, 10, 10, 10 },
		{ 0, 3, 10, 3 },
		{ 101, 3, 10, 103 },
		{ -5, 3, 10, 3 },
		{ -15, 3, 10, -7 },
		{ -7, 3, 10, -7 },
		{ 5, 0, 10, 10 },
		{ 7, 2, 1, 7 },
		{ 1000000000000LL, 7, 1000, 1000000000007LL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		long long got = keyseq_first_at_or_above(c[i].from, c[i].r, c[i].step);

		if (got != c[i].want)
			fail_msg("case %zu: first_at_or_above(%lld, %lld, %lld) = %lld, want %lld",
			    i, c[i].from, c[i].r, c[i].step, got, c[i].want);
	}
}

/* n nodes with recorded residues rec, outside residues out (0-terminated), step: want, full */
static void
assign_case(int line, int n, const int *rec, const int *out, int step, const int *want, int wfull)
{
	int res[8];
	char taken[64];
	int i, full;

	memset(taken, 0, sizeof(taken));
	for (i = 0; out[i]; i++)
		taken[out[i]] = 1;
	memcpy(res, rec, sizeof(int) * (size_t)n);
	full = keyseq_assign_residues(n, res, taken, step);
	if (full != wfull)
		fail_msg("line %d: full = %d, want %d", line, full, wfull);
	if (wfull >= 0)
		return;
	for (i = 0; i < n; i++) {
		if (res[i] != want[i])
			fail_msg(
			    "line %d: node %d got residue %d, want %d", line, i, res[i], want[i]);
		if (!taken[res[i]])
			fail_msg("line %d: residue %d not marked taken", line, res[i]);
	}
}
#define ASSIGN(n, rec, out, step, want, full) \
	assign_case(__LINE__, n, (const int[])rec, (const int[])out, step, (const int[])want, full)
#define L(...)              \
	{                   \
		__VA_ARGS__ \
	}

static void
test_assign_residues(void **state)
{
	(void)state;
	/* fresh: each node its position */
	ASSIGN(3, L(0, 0, 0), L(0), 10, L(1, 2, 3), -1);
	/* recorded residues kept, even out of order */
	ASSIGN(3, L(3, 1, 2), L(0), 10, L(3, 1, 2), -1);
	/* a new node among kept ones: its position if free, else the smallest free */
	ASSIGN(3, L(2, 0, 1), L(0), 10, L(2, 3, 1), -1);
	ASSIGN(3, L(0, 1, 2), L(0), 10, L(3, 1, 2), -1);
	/* residues held outside the sync are skipped */
	ASSIGN(2, L(0, 0), L(1, 2, 0), 10, L(3, 4), -1);
	/* a recorded residue someone outside now holds is given up */
	ASSIGN(2, L(1, 2), L(1, 0), 10, L(3, 2), -1);
	/* two nodes recording the same residue: the first keeps it */
	ASSIGN(2, L(4, 4), L(0), 10, L(4, 2), -1);
	/* a recorded residue above the step is given up */
	ASSIGN(2, L(7, 1), L(0), 5, L(2, 1), -1);
	/* exactly full */
	ASSIGN(3, L(0, 0, 0), L(0), 3, L(1, 2, 3), -1);
	/* too many: the first node left without */
	ASSIGN(3, L(0, 0, 0), L(2, 0), 3, L(0, 0, 0), 2);
	ASSIGN(2, L(0, 0), L(1, 2, 0), 2, L(0, 0), 0);
}

static void
test_plan(void **state)
{
	static const struct {
		long long high, cur, old_inc, min_value;
		int residue, step;
		long long start, next;
	} c[] = {
		/* fresh serial (increment 1), ids up to 57 in use: next in class above 57 */
		{ 57, 58, 1, 1, 2, 10, 2, 62 },
		{ 57, 58, 1, 1, 7, 10, 7, 67 },
		{ 60, 61, 1, 1, 10, 10, 10, 70 },
		/* nothing in use */
		{ 0, 1, 1, 1, 3, 10, 3, 3 },
		/* already partitioned with this step, next in class above high: kept */
		{ 72, 83, 10, 1, 3, 10, 3, 83 },
		/* partitioned, but another node's id went above its next: moved up */
		{ 95, 83, 10, 1, 3, 10, 3, 103 },
		/* partitioned with this step but another residue: moved to its class */
		{ 72, 84, 10, 1, 3, 10, 3, 73 },
		/* partitioned with another step */
		{ 72, 83, 5, 1, 3, 10, 3, 73 },
		/* MINVALUE above the residue: start is the first class value above it */
		{ 0, 100, 1, 100, 3, 10, 103, 103 },
		{ 150, 151, 1, 100, 3, 10, 103, 153 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		long long start = -1, next = -1;

		keyseq_plan(c[i].high, c[i].cur, c[i].old_inc, c[i].min_value, c[i].residue,
		    c[i].step, &start, &next);
		if (start != c[i].start || next != c[i].next)
			fail_msg("case %zu: start %lld next %lld, want %lld %lld", i, start, next,
			    c[i].start, c[i].next);
	}
}

static void
test_plan_property(void **state)
{
	int step, r;
	long long high, cur;

	(void)state;
	for (step = 2; step <= 12; step++)
		for (r = 1; r <= step; r++)
			for (high = 0; high < 60; high += 7)
				for (cur = 1; cur < 80; cur += 3) {
					long long start, next;
					long long inc = cur % 2 ? step : 1;

					keyseq_plan(high, cur, inc, 1, r, step, &start, &next);
					assert_true(next > high);
					assert_true(next >= start);
					assert_int_equal(((next - r) % step + step) % step, 0);
					assert_int_equal(((start - r) % step + step) % step, 0);
				}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_at_or_above),
		cmocka_unit_test(test_assign_residues),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_plan_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

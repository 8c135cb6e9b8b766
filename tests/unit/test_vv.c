/*
 * test_vv.c - version vectors (src/base/vv.c).
 *
 * Covers vv_parse() (NULL, "", "{}", whitespace around and inside, several
 * keys, an escaped quote or backslash in a key, a repeated key, and every
 * refusal: not an object, missing colon, negative counter, trailing junk,
 * non-numbers, empty or unterminated keys, trailing commas), vv_get(),
 * vv_compare() case by case (equal, including both empty and {"a":0} vs {};
 * dominates; dominated; concurrent with disjoint and overlapping keys; a
 * sequential update, merge + own bump, dominating what it saw), vv_merge()
 * (element-wise max, keys from both sides, the result dominating or equal
 * to both inputs) and vv_to_json() (sorted keys, escaping, round trip
 * through vv_parse).  Every vector is freed so that LeakSanitizer checks
 * vv_free().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vv.h"

static const char *
order_name(enum vv_order o)
{
	switch (o) {
	case VV_EQUAL: return "equal";
	case VV_DOMINATES: return "dominates";
	case VV_DOMINATED: return "dominated";
	case VV_CONCURRENT: return "concurrent";
	}
	return "?";
}

/* Parse json, which must be accepted. */
static void
parse_ok(const char *json, struct vv *v)
{
	if (vv_parse(json, v) != 0)
		fail_msg("vv_parse refused '%s'", json ? json : "(null)");
}

/* json must be refused, leaving an empty vector. */
static void
expect_refused(const char *json)
{
	struct vv v;

	memset(&v, 0xa5, sizeof(v));
	if (vv_parse(json, &v) != -1)
		fail_msg("vv_parse accepted '%s'", json);
	assert_null(v.e);
	assert_int_equal(v.n, 0);
	vv_free(&v);
}

/* json parses to a vector whose JSON form is want. */
static void
expect_json(const char *json, const char *want)
{
	struct vv v;
	char *s;

	parse_ok(json, &v);
	s = vv_to_json(&v);
	if (strcmp(s, want) != 0)
		fail_msg("'%s' -> '%s', want '%s'", json ? json : "(null)", s, want);
	free(s);
	vv_free(&v);
}

/* vv_compare(a, b) is want, and vv_compare(b, a) its mirror. */
static void
expect_order(const char *a, const char *b, enum vv_order want)
{
	struct vv va, vb;
	enum vv_order got, mirror;
	enum vv_order want_mirror = want == VV_DOMINATES ? VV_DOMINATED
	    : want == VV_DOMINATED                       ? VV_DOMINATES
							 : want;

	parse_ok(a, &va);
	parse_ok(b, &vb);
	got = vv_compare(&va, &vb);
	mirror = vv_compare(&vb, &va);
	vv_free(&va);
	vv_free(&vb);
	if (got != want)
		fail_msg(
		    "vv_compare(%s, %s) = %s, want %s", a, b, order_name(got), order_name(want));
	if (mirror != want_mirror)
		fail_msg("vv_compare(%s, %s) = %s, want %s", b, a, order_name(mirror),
		    order_name(want_mirror));
}

/* vv_merge(a, b) and vv_merge(b, a) are both want (as JSON). */
static void
expect_merge(const char *a, const char *b, const char *want)
{
	struct vv va, vb, m;
	char *s;
	int swap;

	parse_ok(a, &va);
	parse_ok(b, &vb);
	for (swap = 0; swap < 2; swap++) {
		enum vv_order o1, o2;

		memset(&m, 0xa5, sizeof(m));
		vv_merge(swap ? &vb : &va, swap ? &va : &vb, &m);
		s = vv_to_json(&m);
		if (strcmp(s, want) != 0)
			fail_msg(
			    "vv_merge(%s, %s) = %s, want %s", swap ? b : a, swap ? a : b, s, want);
		free(s);
		/* the merge has seen everything either side has */
		o1 = vv_compare(&m, &va);
		o2 = vv_compare(&m, &vb);
		assert_true(o1 == VV_EQUAL || o1 == VV_DOMINATES);
		assert_true(o2 == VV_EQUAL || o2 == VV_DOMINATES);
		vv_free(&m);
	}
	vv_free(&va);
	vv_free(&vb);
}

/* ---- vv_parse ---- */

static void
test_parse_empty(void **state)
{
	static const char *const empties[] = { "", "{}", "{ }", "  {}  ", "\t{\n}\n",
		" \r\n{ \t } " };
	struct vv v;
	size_t i;

	(void)state;
	memset(&v, 0xa5, sizeof(v));
	assert_int_equal(vv_parse(NULL, &v), 0);
	assert_null(v.e);
	assert_int_equal(v.n, 0);
	vv_free(&v);

	for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		memset(&v, 0xa5, sizeof(v));
		parse_ok(empties[i], &v);
		assert_int_equal(v.n, 0);
		assert_int_equal(vv_get(&v, "a"), 0);
		vv_free(&v);
	}
	/* vv_free is idempotent on what it leaves */
	vv_free(&v);
	assert_null(v.e);
	assert_int_equal(v.n, 0);
}

static void
test_parse_keys(void **state)
{
	struct vv v;

	(void)state;
	parse_ok("{\"a\": 2, \"b\": 1}", &v);
	assert_int_equal(v.n, 2);
	assert_int_equal(vv_get(&v, "a"), 2);
	assert_int_equal(vv_get(&v, "b"), 1);
	vv_free(&v);

	/* whitespace everywhere it may be, none where it may be omitted */
	parse_ok(" \n{ \"node1\" :\t7 ,\n\"node_2\":0,\"eu.west-1\"  :  123456789012 }\n ", &v);
	assert_int_equal(v.n, 3);
	assert_int_equal(vv_get(&v, "node1"), 7);
	assert_int_equal(vv_get(&v, "node_2"), 0);
	assert_int_equal(vv_get(&v, "eu.west-1"), 123456789012LL);
	vv_free(&v);

	parse_ok("{\"x\":1,\"y\":2,\"z\":3,\"w\":4}", &v);
	assert_int_equal(v.n, 4);
	assert_int_equal(vv_get(&v, "x") + vv_get(&v, "y") + vv_get(&v, "z") + vv_get(&v, "w"), 10);
	vv_free(&v);

	/* a repeated key: the last one counts, as in jsonb */
	parse_ok("{\"a\": 1, \"b\": 5, \"a\": 3}", &v);
	assert_int_equal(v.n, 2);
	assert_int_equal(vv_get(&v, "a"), 3);
	assert_int_equal(vv_get(&v, "b"), 5);
	vv_free(&v);
}

static void
test_parse_escapes(void **state)
{
	struct vv v;

	(void)state;
	parse_ok("{\"a\\\"b\": 4, \"c\": 1}", &v);
	assert_int_equal(v.n, 2);
	assert_int_equal(vv_get(&v, "a\"b"), 4);
	assert_int_equal(vv_get(&v, "ab"), 0);
	assert_int_equal(vv_get(&v, "a\\\"b"), 0);
	assert_int_equal(vv_get(&v, "c"), 1);
	vv_free(&v);

	/* a key that is only an escaped quote, and an escaped backslash */
	parse_ok("{\"\\\"\": 1, \"x\\\\y\": 2}", &v);
	assert_int_equal(v.n, 2);
	assert_int_equal(vv_get(&v, "\""), 1);
	assert_int_equal(vv_get(&v, "x\\y"), 2);
	vv_free(&v);
}

static void
test_parse_errors(void **state)
{
	static const char *const bad[] = {
		/* not an object */
		"[]",
		"[1]",
		"1",
		"\"a\"",
		"null",
		"true",
		"a",
		"}",
		"   ",
		"\n",
		/* missing colon */
		"{\"a\" 1}",
		"{\"a\"}",
		"{\"a\"",
		"{\"a\" = 1}",
		"{\"a\": 1, \"b\" 2}",
		/* negative counter */
		"{\"a\": -1}",
		"{\"a\": 1, \"b\": -5}",
		/* trailing junk */
		"{} x",
		"{}}",
		"{\"a\": 1} x",
		"{\"a\": 1}}",
		"{\"a\": 1},",
		"{\"a\": 1} {}",
		"{\"a\": 1x}",
		/* non-number */
		"{\"a\": \"1\"}",
		"{\"a\": true}",
		"{\"a\": null}",
		"{\"a\": {}}",
		"{\"a\": []}",
		"{\"a\": 1.5}",
		"{\"a\": }",
		"{\"a\":}",
		"{\"a\": x}",
		/* broken structure */
		"{",
		"{\"a\": 1",
		"{\"a\": 1,",
		"{\"a\": 1,}",
		"{,}",
		"{\"a\": 1,, \"b\": 2}",
		"{\"a\": 1 \"b\": 2}",
		"{a: 1}",
		"{'a': 1}",
		"{\"\": 1}",
		"{\"a",
		"{\"a\\",
		"{\"a\": 1; \"b\": 2}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i]);
}

/* A refusal after some keys were stored frees them (LeakSanitizer). */
static void
test_parse_error_frees(void **state)
{
	(void)state;
	expect_refused("{\"a\": 1, \"b\": 2, \"c\": -3}");
	expect_refused("{\"a\": 1, \"b\": 2} junk");
	expect_refused("{\"a\": 1, \"b\": 2, \"c\"}");
	expect_refused("{\"a\": 1, \"b\": 2,");
}

/* ---- vv_get ---- */

static void
test_get(void **state)
{
	struct vv v;

	(void)state;
	parse_ok("{\"a\": 3, \"bb\": 0, \"c\": 9223372036854775807}", &v);
	assert_int_equal(vv_get(&v, "a"), 3);
	assert_int_equal(vv_get(&v, "bb"), 0);
	assert_true(vv_get(&v, "c") == 9223372036854775807LL);
	/* absent keys are 0; names are exact (no prefixes, case-sensitive) */
	assert_int_equal(vv_get(&v, "b"), 0);
	assert_int_equal(vv_get(&v, "A"), 0);
	assert_int_equal(vv_get(&v, "aa"), 0);
	assert_int_equal(vv_get(&v, ""), 0);
	vv_free(&v);

	parse_ok(NULL, &v);
	assert_int_equal(vv_get(&v, "a"), 0);
	vv_free(&v);
}

/* ---- vv_compare ---- */

static void
test_compare_equal(void **state)
{
	(void)state;
	expect_order(NULL, NULL, VV_EQUAL);
	expect_order("", "{}", VV_EQUAL);
	expect_order("{}", "{}", VV_EQUAL);
	/* a zero counter is the same as no key */
	expect_order("{\"a\": 0}", "{}", VV_EQUAL);
	expect_order("{\"a\": 0}", NULL, VV_EQUAL);
	expect_order("{\"a\": 0, \"b\": 2}", "{\"b\": 2, \"c\": 0}", VV_EQUAL);
	expect_order("{\"a\": 1}", "{\"a\": 1}", VV_EQUAL);
	/* order of keys is irrelevant */
	expect_order("{\"a\": 1, \"b\": 2}", "{\"b\": 2, \"a\": 1}", VV_EQUAL);
}

static void
test_compare_dominates(void **state)
{
	(void)state;
	expect_order("{\"a\": 1}", "{}", VV_DOMINATES);
	expect_order("{\"a\": 1}", NULL, VV_DOMINATES);
	expect_order("{\"a\": 2}", "{\"a\": 1}", VV_DOMINATES);
	expect_order("{\"a\": 1, \"b\": 1}", "{\"a\": 1}", VV_DOMINATES);
	expect_order("{\"a\": 2, \"b\": 1}", "{\"a\": 1, \"b\": 1}", VV_DOMINATES);
	expect_order("{\"a\": 2, \"b\": 3}", "{\"a\": 1, \"b\": 3, \"c\": 0}", VV_DOMINATES);
	expect_order("{\"a\": 10, \"b\": 10, \"c\": 10}", "{\"a\": 9, \"b\": 10}", VV_DOMINATES);
}

static void
test_compare_dominated(void **state)
{
	(void)state;
	expect_order("{}", "{\"a\": 1}", VV_DOMINATED);
	expect_order(NULL, "{\"z\": 4}", VV_DOMINATED);
	expect_order("{\"a\": 1}", "{\"a\": 2}", VV_DOMINATED);
	expect_order("{\"a\": 1}", "{\"a\": 1, \"b\": 1}", VV_DOMINATED);
	expect_order("{\"a\": 1, \"b\": 0}", "{\"a\": 1, \"b\": 1}", VV_DOMINATED);
	expect_order("{\"a\": 3, \"b\": 2}", "{\"a\": 3, \"b\": 5, \"c\": 1}", VV_DOMINATED);
}

static void
test_compare_concurrent(void **state)
{
	(void)state;
	/* disjoint keys */
	expect_order("{\"a\": 1}", "{\"b\": 1}", VV_CONCURRENT);
	expect_order("{\"a\": 5, \"c\": 2}", "{\"b\": 1, \"d\": 7}", VV_CONCURRENT);
	/* overlapping keys */
	expect_order("{\"a\": 2, \"b\": 1}", "{\"a\": 1, \"b\": 2}", VV_CONCURRENT);
	expect_order("{\"a\": 2, \"b\": 1}", "{\"a\": 1, \"b\": 1, \"c\": 1}", VV_CONCURRENT);
	expect_order("{\"a\": 1, \"b\": 1, \"c\": 0}", "{\"b\": 1, \"c\": 1}", VV_CONCURRENT);
	expect_order("{\"a\": 3, \"b\": 3, \"c\": 1}", "{\"a\": 3, \"b\": 4}", VV_CONCURRENT);
}

/* out = base with node's counter bumped by one: a change made on node. */
static void
bump(const struct vv *base, const char *node, struct vv *out)
{
	char name[64];
	struct vv_entry e;
	struct vv one;

	snprintf(name, sizeof(name), "%s", node);
	e.node = name;
	e.counter = vv_get(base, node) + 1;
	one.e = &e;
	one.n = 1;
	vv_merge(base, &one, out);
	assert_true(vv_get(out, node) == e.counter);
}

/*
 * Node b receives a's version, merges it into its own and bumps its own
 * counter: the result dominates both, whatever they held, and a version
 * made meanwhile on a (a's own bump, without seeing b's) conflicts with it.
 */
static void
test_compare_sequential_update(void **state)
{
	static const char *const starts[][2] = {
		{ NULL, NULL },
		{ "{\"a\": 1}", "{}" },
		{ "{\"a\": 3, \"b\": 1}", "{\"a\": 2, \"b\": 4}" },
		{ "{\"a\": 1, \"c\": 9}", "{\"b\": 2}" },
		{ "{\"b\": 7}", "{\"b\": 7}" },
		{ "{\"a\": 2, \"b\": 1}", "{\"a\": 1, \"b\": 2}" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		struct vv a, b, m, upd, a2;
		char *s;

		parse_ok(starts[i][0], &a);
		parse_ok(starts[i][1], &b);
		vv_merge(&a, &b, &m);
		bump(&m, "b", &upd);
		s = vv_to_json(&upd);
		if (vv_compare(&upd, &a) != VV_DOMINATES)
			fail_msg("case %zu: %s does not dominate a", i, s);
		assert_int_equal(vv_compare(&a, &upd), VV_DOMINATED);
		if (vv_compare(&upd, &b) != VV_DOMINATES)
			fail_msg("case %zu: %s does not dominate b", i, s);

		/* a changes the row again without having seen b's update */
		bump(&a, "a", &a2);
		assert_int_equal(vv_compare(&a2, &a), VV_DOMINATES);
		if (vv_compare(&a2, &upd) != VV_CONCURRENT)
			fail_msg("case %zu: a's second change vs %s is not concurrent", i, s);
		/* and once b's update reaches a and a changes the row, it wins again */
		{
			struct vv seen, upd2;

			vv_merge(&a2, &upd, &seen);
			bump(&seen, "a", &upd2);
			assert_int_equal(vv_compare(&upd2, &upd), VV_DOMINATES);
			assert_int_equal(vv_compare(&upd2, &a2), VV_DOMINATES);
			vv_free(&seen);
			vv_free(&upd2);
		}

		free(s);
		vv_free(&a);
		vv_free(&a2);
		vv_free(&b);
		vv_free(&m);
		vv_free(&upd);
	}
}

/* ---- vv_merge ---- */

static void
test_merge(void **state)
{
	(void)state;
	expect_merge(NULL, NULL, "{}");
	expect_merge("{}", "{}", "{}");
	expect_merge("{\"a\": 1}", NULL, "{\"a\": 1}");
	expect_merge("{\"a\": 1}", "{\"a\": 1}", "{\"a\": 1}");
	expect_merge("{\"a\": 1}", "{\"a\": 3}", "{\"a\": 3}");
	/* keys from both sides */
	expect_merge("{\"a\": 1}", "{\"b\": 2}", "{\"a\": 1, \"b\": 2}");
	expect_merge("{\"c\": 4, \"a\": 1}", "{\"b\": 2, \"d\": 1}",
	    "{\"a\": 1, \"b\": 2, \"c\": 4, \"d\": 1}");
	/* element-wise max, each side winning some */
	expect_merge("{\"a\": 5, \"b\": 1, \"c\": 3}", "{\"a\": 2, \"b\": 7, \"d\": 1}",
	    "{\"a\": 5, \"b\": 7, \"c\": 3, \"d\": 1}");
	expect_merge("{\"a\": 9223372036854775807}", "{\"a\": 1}", "{\"a\": 9223372036854775807}");
}

/* The inputs are left as they were. */
static void
test_merge_inputs_untouched(void **state)
{
	struct vv a, b, m;
	char *sa, *sb;

	(void)state;
	parse_ok("{\"a\": 5, \"b\": 1}", &a);
	parse_ok("{\"a\": 2, \"b\": 7, \"c\": 1}", &b);
	vv_merge(&a, &b, &m);
	sa = vv_to_json(&a);
	sb = vv_to_json(&b);
	assert_string_equal(sa, "{\"a\": 5, \"b\": 1}");
	assert_string_equal(sb, "{\"a\": 2, \"b\": 7, \"c\": 1}");
	assert_int_equal(m.n, 3);
	assert_int_equal(vv_get(&m, "a"), 5);
	assert_int_equal(vv_get(&m, "b"), 7);
	assert_int_equal(vv_get(&m, "c"), 1);
	free(sa);
	free(sb);
	vv_free(&a);
	vv_free(&b);
	vv_free(&m);
}

/* ---- vv_to_json ---- */

static void
test_to_json(void **state)
{
	(void)state;
	expect_json(NULL, "{}");
	expect_json("", "{}");
	expect_json(" { } ", "{}");
	expect_json("{\"a\":1}", "{\"a\": 1}");
	/* keys sorted bytewise, whatever order they came in */
	expect_json("{\"c\": 3, \"a\": 1, \"b\": 2}", "{\"a\": 1, \"b\": 2, \"c\": 3}");
	expect_json("{\"node_b\": 1, \"B\": 2, \"aa\": 3, \"a\": 4, \"node-a\": 5}",
	    "{\"B\": 2, \"a\": 4, \"aa\": 3, \"node-a\": 5, \"node_b\": 1}");
	expect_json("{\"a\": 0}", "{\"a\": 0}");
	/* escaping */
	expect_json("{\"a\\\"b\": 4}", "{\"a\\\"b\": 4}");
	expect_json("{\"x\\\\y\": 2}", "{\"x\\\\y\": 2}");
}

static void
test_to_json_round_trip(void **state)
{
	static const char *const inputs[] = {
		NULL,
		"{}",
		"{\"a\": 1}",
		"{\"z\": 1, \"y\": 22, \"x\": 333, \"w\": 0}",
		"{\"a\\\"b\": 4, \"c\\\\d\": 5, \"e\": 9223372036854775807}",
		" {\"eu.west-1\":3,\"us-east-2\":1 } ",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct vv v, w;
		char *s1, *s2;
		int j;

		parse_ok(inputs[i], &v);
		s1 = vv_to_json(&v);
		parse_ok(s1, &w);
		assert_int_equal(w.n, v.n);
		for (j = 0; j < v.n; j++)
			assert_true(vv_get(&w, v.e[j].node) == v.e[j].counter);
		assert_int_equal(vv_compare(&v, &w), VV_EQUAL);
		s2 = vv_to_json(&w);
		assert_string_equal(s1, s2);
		free(s1);
		free(s2);
		vv_free(&v);
		vv_free(&w);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_keys),
		cmocka_unit_test(test_parse_escapes),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_error_frees),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_compare_equal),
		cmocka_unit_test(test_compare_dominates),
		cmocka_unit_test(test_compare_dominated),
		cmocka_unit_test(test_compare_concurrent),
		cmocka_unit_test(test_compare_sequential_update),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_merge_inputs_untouched),
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_to_json_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

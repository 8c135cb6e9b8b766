/*
 * test_parse.c - the pure parsers (src/cli/parse.c) and JSON string
 * escaping (buf_json_str in src/base/buf.c).
 *
 * Covers parse_valid_name (first character, allowed characters, 63/64
 * length limit), parse_qualified (public default, case folding, quoted
 * parts, "" inside quotes, dots inside quotes, every error), parse_dbs
 * (explicit and implied roles, multi-source, every refusal), role_name,
 * parse_long (bounds, junk, overflow) and buf_json_str.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "parse.h"

#define assert_contains(hay, needle)                                                        \
	do {                                                                                \
		const char *h_ = (hay), *n_ = (needle);                                     \
		if (h_ == NULL || strstr(h_, n_) == NULL)                                   \
			fail_msg("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
	} while (0)

/* ---- parse_valid_name ---- */

static void
test_valid_name(void **state)
{
	static const char *const good[] = { "a", "A", "_", "node1", "cava_db", "my-node",
		"eu.west-1", "_x.y-z_9", "Z9" };
	static const char *const bad[] = { "", "1node", "-a", ".a", "a b", "a:b", "a,b", "a/b",
		"a\"b", "a'b", "a;b", "a=b", "\xc3\xa9t\xc3\xa9", "a\n", " a" };
	char name[80];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!parse_valid_name(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_valid_name(bad[i]))
			fail_msg("'%s' accepted", bad[i]);

	memset(name, 'a', sizeof(name));
	name[63] = '\0';
	assert_int_equal(parse_valid_name(name), 1);
	name[63] = 'a';
	name[64] = '\0';
	assert_int_equal(parse_valid_name(name), 0);
	name[0] = '_';
	name[63] = '\0';
	assert_int_equal(parse_valid_name(name), 1);
}

/* ---- parse_qualified ---- */

static void
expect_qualified(const char *in, const char *schema, const char *table)
{
	char err[256] = "", *s = (char *)1, *t = (char *)1;

	if (parse_qualified(in, &s, &t, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", in, err);
	assert_string_equal(s, schema);
	assert_string_equal(t, table);
	free(s);
	free(t);
}

static void
expect_qualified_error(const char *in, const char *msg)
{
	char err[256] = "", *s = (char *)1, *t = (char *)1;

	if (parse_qualified(in, &s, &t, err, sizeof(err)) != -1) {
		print_message("'%s' gave %s.%s\n", in, s ? s : "(null)", t ? t : "(null)");
		free(s);
		free(t);
		fail_msg("'%s' accepted", in);
	}
	assert_null(s);
	assert_null(t);
	assert_string_equal(err, msg);
}

static void
test_qualified(void **state)
{
	(void)state;
	expect_qualified("t", "public", "t");
	expect_qualified("s.t", "s", "t");
	expect_qualified("Sales.Orders", "sales", "orders");
	expect_qualified("ORDERS", "public", "orders");
	expect_qualified("\"Orders\"", "public", "Orders");
	expect_qualified("\"Sales\".\"Orders\"", "Sales", "Orders");
	expect_qualified("Sales.\"Orders\"", "sales", "Orders");
	expect_qualified("\"Weird \"\"name\"\"\"", "public", "Weird \"name\"");
	expect_qualified("schema.\"Quoted.Dot\"", "schema", "Quoted.Dot");
	expect_qualified("\"a.b\".c", "a.b", "c");
	expect_qualified("\"with space\"", "public", "with space");
	expect_qualified("t_1$x", "public", "t_1$x");
	expect_qualified("\"\"\"\"", "public", "\"");
}

static void
test_qualified_errors(void **state)
{
	(void)state;
	expect_qualified_error("", "empty name in ''; write SCHEMA.TABLE");
	expect_qualified_error(".t", "empty name in '.t'; write SCHEMA.TABLE");
	expect_qualified_error("s.", "empty name in 's.'; write SCHEMA.TABLE");
	expect_qualified_error("\"\"", "empty quoted name in '\"\"'");
	expect_qualified_error("s.\"\"", "empty quoted name in 's.\"\"'");
	expect_qualified_error("\"abc", "unterminated quoted name in '\"abc'");
	expect_qualified_error("s.\"abc\"\"", "unterminated quoted name in 's.\"abc\"\"'");
	expect_qualified_error("\"a\"x", "cannot read table name '\"a\"x'; write SCHEMA.TABLE");
	expect_qualified_error("a.b.c", "cannot read table name 'a.b.c'; write SCHEMA.TABLE");
	expect_qualified_error("a.\"b\" ", "cannot read table name 'a.\"b\" '; write SCHEMA.TABLE");
	expect_qualified_error("my table",
	    "bad character in name 'my table'; quote names with special characters as "
	    "\"Name\"");
	expect_qualified_error("s.my\ttable",
	    "bad character in name 's.my\ttable'; quote names with special characters as "
	    "\"Name\"");
	expect_qualified_error("a\"b\"",
	    "bad character in name 'a\"b\"'; quote names with special characters as "
	    "\"Name\"");
}

/* ---- parse_dbs ---- */

struct want_member {
	const char *node;
	enum role role;
};

static void
expect_dbs(const char *in, const struct want_member *want, int nwant)
{
	char err[256] = "";
	struct member *m = NULL;
	int n = -1, i;

	if (parse_dbs(in, &m, &n, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", in, err);
	assert_int_equal(n, nwant);
	assert_non_null(m);
	for (i = 0; i < n; i++) {
		assert_string_equal(m[i].node, want[i].node);
		assert_int_equal(m[i].role, want[i].role);
	}
	members_free(m, n);
}

/* Refused with msg, or (msg NULL) with some message containing part. */
static void
expect_dbs_refused(const char *in, const char *msg, const char *part)
{
	char err[256] = "";
	struct member *m = (struct member *)1;
	int n = -1;

	if (parse_dbs(in, &m, &n, err, sizeof(err)) != -1) {
		members_free(m, n);
		fail_msg("'%s' accepted", in);
	}
	assert_null(m);
	assert_int_equal(n, 0);
	if (msg)
		assert_string_equal(err, msg);
	else
		assert_contains(err, part);
}

static void
expect_dbs_error(const char *in, const char *msg)
{
	expect_dbs_refused(in, msg, "dbs=");
}

static void
test_dbs(void **state)
{
	static const struct want_member ab[] = { { "a", ROLE_SOURCE }, { "b", ROLE_TARGET } };
	static const struct want_member abc_bare[] = { { "a", ROLE_SOURCE }, { "b", ROLE_TARGET },
		{ "c", ROLE_TARGET } };
	static const struct want_member abc_src[] = { { "a", ROLE_SOURCE }, { "b", ROLE_SOURCE },
		{ "c", ROLE_SOURCE } };
	static const struct want_member ts[] = { { "a", ROLE_TARGET }, { "b", ROLE_SOURCE } };
	static const struct want_member mixed[] = { { "cava", ROLE_SOURCE },
		{ "juke.box", ROLE_SOURCE }, { "arch-1", ROLE_TARGET } };

	(void)state;
	expect_dbs("a:source,b:target", ab, 2);
	expect_dbs("a,b", ab, 2);
	expect_dbs("a:s,b:t", ab, 2);
	expect_dbs("a,b,c", abc_bare, 3);
	expect_dbs("a:source,b:source,c:source", abc_src, 3);
	expect_dbs("a:target,b:source", ts, 2);
	expect_dbs("cava:source,juke.box:source,arch-1", mixed, 3);

	assert_string_equal(role_name(ROLE_SOURCE), "source");
	assert_string_equal(role_name(ROLE_TARGET), "target");
	members_free(NULL, 0);
}

static void
test_dbs_errors(void **state)
{
	(void)state;
	expect_dbs_error("a:source",
	    "dbs=a:source: a sync needs at least two nodes, e.g. dbs=A:source,B:target");
	expect_dbs_error("a", "dbs=a: a sync needs at least two nodes, e.g. dbs=A:source,B:target");
	expect_dbs_error("", NULL);
	expect_dbs_error("a,a", "dbs=: node 'a' is listed twice");
	expect_dbs_error("a:source,b:target,a:target", "dbs=: node 'a' is listed twice");
	expect_dbs_error("a:master,b",
	    "dbs=: unknown role 'master' for node 'a'; use NODE:source or NODE:target");
	expect_dbs_error(
	    "a,b:", "dbs=: unknown role '' for node 'b'; use NODE:source or NODE:target");
	expect_dbs_error("a,b:Source",
	    "dbs=: unknown role 'Source' for node 'b'; use NODE:source or NODE:target");
	expect_dbs_error("1a,b", "dbs=: '1a' is not a node name; write dbs=A:source,B:target");
	expect_dbs_error("a,b c", "dbs=: 'b c' is not a node name; write dbs=A:source,B:target");
	expect_dbs_error(":source,b", "dbs=: '' is not a node name; write dbs=A:source,B:target");
	expect_dbs_error("a:target,b:target",
	    "dbs=a:target,b:target: no node is a source; mark one NODE:source");
	expect_dbs_error("a:target,b", "dbs=a:target,b: no node is a source; mark one NODE:source");
}

/*
 * parse.h: "Refuses empty names".  An empty item between, before or after
 * the commas is an empty name and must not be skipped silently.
 */
static void
test_dbs_empty_item(void **state)
{
	(void)state;
	expect_dbs_refused("a,,b", NULL, "empty");
	expect_dbs_refused(",a,b", NULL, "empty");
	expect_dbs_refused("a,b,", NULL, "empty");
	expect_dbs_refused("a:source,,b:target", NULL, "empty");
}

/* ---- parse_long ---- */

static void
expect_long(const char *s, long min, long max, long want)
{
	long v = -12345;

	if (parse_long(s, min, max, &v) != 0)
		fail_msg("'%s' refused in [%ld, %ld]", s, min, max);
	assert_int_equal(v, want);
}

static void
expect_long_error(const char *s, long min, long max)
{
	long v = -12345;

	if (parse_long(s, min, max, &v) != -1)
		fail_msg("'%s' accepted in [%ld, %ld]", s ? s : "(null)", min, max);
	assert_int_equal(v, -12345); /* untouched */
}

static void
test_long(void **state)
{
	(void)state;
	expect_long("0", 0, 10, 0);
	expect_long("10", 0, 10, 10);
	expect_long("5", 0, 10, 5);
	expect_long("-3", -5, 5, -3);
	expect_long("86400", 1, 86400, 86400);
	expect_long("007", 0, 10, 7);
	expect_long("9223372036854775807", 0, 9223372036854775807L, 9223372036854775807L);

	expect_long_error("11", 0, 10);
	expect_long_error("-1", 0, 10);
	expect_long_error("0", 1, 86400);
	expect_long_error("86401", 1, 86400);
	expect_long_error("", 0, 10);
	expect_long_error(NULL, 0, 10);
	expect_long_error("abc", 0, 10);
	expect_long_error("5x", 0, 10);
	expect_long_error("5 ", 0, 10);
	expect_long_error("1.5", 0, 10);
	expect_long_error("0x10", 0, 100);
	expect_long_error("9223372036854775808", 0, 9223372036854775807L);
	expect_long_error("99999999999999999999", 0, 10);
}

/* ---- buf_json_str ---- */

static void
expect_json(const char *in, const char *want)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "[");
	buf_json_str(&b, in);
	buf_puts(&b, "]");
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	buf_free(&b);
}

static void
test_json_str(void **state)
{
	(void)state;
	expect_json("plain", "[\"plain\"]");
	expect_json("", "[\"\"]");
	expect_json(NULL, "[null]");
	expect_json("say \"hi\"", "[\"say \\\"hi\\\"\"]");
	expect_json("C:\\dir", "[\"C:\\\\dir\"]");
	expect_json("a\nb", "[\"a\\nb\"]");
	expect_json("a\rb\tc", "[\"a\\rb\\tc\"]");
	expect_json("\x01", "[\"\\u0001\"]");
	expect_json("x\x1fy", "[\"x\\u001fy\"]");
	expect_json("\x7f", "[\"\x7f\"]");
	expect_json("/", "[\"/\"]");
	expect_json("caf\xc3\xa9", "[\"caf\xc3\xa9\"]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_name),
		cmocka_unit_test(test_qualified),
		cmocka_unit_test(test_qualified_errors),
		cmocka_unit_test(test_dbs),
		cmocka_unit_test(test_dbs_errors),
		cmocka_unit_test(test_dbs_empty_item),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_json_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

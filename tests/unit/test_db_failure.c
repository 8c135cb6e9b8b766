/*
 * test_db_failure.c - the one table that tells why a connection failed
 * (db_classify_failure in src/pg/db.c), which the generic hint, onboard's
 * diagnosis and the liveness probe of a silent server all read.
 *
 * Covers each class with libpq 15's own message texts (refused, timeout,
 * no route, network unreachable, unresolvable name, pg_hba, password wrong
 * or missing, unknown database, unknown role, SSL), the order that keeps
 * the more specific class ("no pg_hba.conf entry ... database \"x\"" is
 * pg_hba, not an unknown database; "role ... does not exist" is a role),
 * messages that mention a database or a role without "does not exist",
 * which are nothing special, and which classes mean "nothing answers there"
 * (the probe gives a silent server up only for those, or for no answer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"

static void
test_classes(void **state)
{
	static const struct {
		const char *msg;
		enum db_failure want;
	} cases[] = {
		{ "connection to server at \"10.8.0.2\", port 5432 failed: Connection refused\n"
		  "\tIs the server running on that host and accepting TCP/IP connections?",
		    DBF_REFUSED },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: timeout expired",
		    DBF_TIMEOUT },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: Connection timed out",
		    DBF_TIMEOUT },
		{ "connection to server at \"10.8.0.9\", port 5432 failed: No route to host",
		    DBF_NO_ROUTE },
		{ "connection to server at \"10.9.0.1\", port 5432 failed: Network is unreachable",
		    DBF_NO_ROUTE },
		{ "could not translate host name \"jukebox.vpn\" to address: Name or service not "
		  "known",
		    DBF_NO_RESOLVE },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: FATAL:  no pg_hba.conf "
		  "entry for host \"10.8.0.1\", user \"repctl\", database \"archive\", SSL off",
		    DBF_NO_HBA },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: FATAL:  password "
		  "authentication failed for user \"repctl\"",
		    DBF_AUTH },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: fe_sendauth: no password "
		  "supplied",
		    DBF_AUTH },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: FATAL:  database "
		  "\"archiv\" does not exist",
		    DBF_NO_DATABASE },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: FATAL:  role \"repctl\" "
		  "does not exist",
		    DBF_NO_ROLE },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: server does not support "
		  "SSL, but SSL was required",
		    DBF_SSL },
		{ "connection to server at \"10.8.0.2\", port 5432 failed: FATAL:  sorry, too many "
		  "clients already",
		    DBF_OTHER },
		{ "FATAL:  permission denied for database \"archive\"", DBF_OTHER },
		{ "FATAL:  role \"repctl\" is not permitted to log in", DBF_OTHER },
		{ "", DBF_OTHER },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum db_failure got = db_classify_failure(cases[i].msg);

		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d: %s", i, (int)got, (int)cases[i].want,
			    cases[i].msg);
	}
	assert_int_equal(db_classify_failure(NULL), DBF_OTHER);
}

static void
test_unreachable_and_hints(void **state)
{
	(void)state;
	assert_true(db_failure_unreachable(DBF_REFUSED));
	assert_true(db_failure_unreachable(DBF_TIMEOUT));
	assert_true(db_failure_unreachable(DBF_NO_ROUTE));
	/* the server answered these itself: it is alive */
	assert_false(db_failure_unreachable(DBF_NO_HBA));
	assert_false(db_failure_unreachable(DBF_AUTH));
	assert_false(db_failure_unreachable(DBF_OTHER));
	assert_false(db_failure_unreachable(DBF_NO_RESOLVE));

	assert_non_null(strstr(db_connect_hint("fe_sendauth: no password supplied"), "pass="));
	assert_non_null(
	    strstr(db_connect_hint("FATAL:  password authentication failed for user \"x\""),
		"check the password"));
	assert_non_null(strstr(db_connect_hint("failed: timeout expired"), "VPN"));
	assert_non_null(strstr(db_connect_hint("failed: No route to host"), "VPN"));
	assert_non_null(strstr(db_connect_hint("failed: Connection refused"), "listen_addresses"));
	assert_null(db_connect_hint("FATAL:  sorry, too many clients already"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_unreachable_and_hints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

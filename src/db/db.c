/*
 * db.c - every libpq call of repctl goes through here.
 *
 * Why one wrapper: the connection settings that make our SQL safe (empty
 * search_path, UTC) and the error reporting (the server's primary message,
 * detail and hint, without libpq's trailing newline) must be the same
 * everywhere, and every PGresult must be cleared on every path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "log.h"
#include "secrets.h"
#include "xmalloc.h"

void
db_set_error(char *err, size_t errlen, const char *prefix, const char *pqmsg)
{
	size_t n;

	if (err == NULL || errlen == 0)
		return;
	snprintf(err, errlen, "%s%s%s", prefix ? prefix : "", prefix ? ": " : "",
	    pqmsg ? pqmsg : "unknown error");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

/* SQLSTATE of the last failed statement (the process is single-threaded). */
static char last_sqlstate[6];

const char *
db_last_sqlstate(void)
{
	return last_sqlstate;
}

/* A result's message: primary text plus detail and hint. */
static void
result_error(const PGresult *res, PGconn *conn, char *err, size_t errlen)
{
	const char *code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;

	snprintf(last_sqlstate, sizeof(last_sqlstate), "%s", code ? code : "");
	if (primary == NULL) {
		db_set_error(err, errlen, NULL, PQerrorMessage(conn));
		return;
	}
	snprintf(err, errlen, "%s%s%s%s%s", primary, detail ? "\nDETAIL: " : "",
	    detail ? detail : "", hint ? "\nHINT: " : "", hint ? hint : "");
}

/* Server notices ("schema already exists, skipping") are debug output. */
static void
notice_to_debug(void *arg, const char *msg)
{
	(void)arg;
	log_debug("server: %.*s", (int)strcspn(msg, "\n"), msg);
}

PGconn *
db_connect(const char *conninfo, const char *appname, const char *passfile, const char *password,
    int timeout, char *err, size_t errlen)
{
	const char *keys[8], *vals[8];
	char tmo[16];
	int n = 0;
	PGconn *conn;
	PGresult *res;

	/* defaults first: values from the conninfo string override them */
	snprintf(tmo, sizeof(tmo), "%d", timeout > 0 ? timeout : 10);
	keys[n] = "connect_timeout", vals[n++] = tmo;
	keys[n] = "dbname", vals[n++] = conninfo;
	keys[n] = "fallback_application_name", vals[n++] = appname ? appname : "repctl";
	if (password)
		keys[n] = "password", vals[n++] = password;
	keys[n] = NULL, vals[n] = NULL;

	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		snprintf(err, errlen, "out of memory connecting");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK && password == NULL && passfile &&
	    PQconnectionNeedsPassword(conn)) {
		/* the secrets file may know it: match on the connection's real coordinates */
		struct secret_key k;
		char *pw;

		secret_key_from_conn(conn, &k);
		pw = secrets_lookup(passfile, &k);
		secret_key_clear(&k);
		if (pw) {
			keys[n] = "password", vals[n++] = pw;
			keys[n] = NULL, vals[n] = NULL;
			PQfinish(conn);
			conn = PQconnectdbParams(keys, vals, 1);
			memset(pw, 0, strlen(pw));
			free(pw);
			if (conn == NULL) {
				snprintf(err, errlen, "out of memory connecting");
				return NULL;
			}
		}
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		db_set_error(err, errlen, NULL, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_debug, NULL);
	res = PQexec(conn,
	    "SELECT pg_catalog.set_config('search_path', '', false), "
	    "pg_catalog.set_config('TimeZone', 'UTC', false)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		result_error(res, conn, err, errlen);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

void
db_close(PGconn *conn)
{
	if (conn)
		PQfinish(conn);
}

int
db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		result_error(res, conn, err, errlen);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

PGresult *
db_query(
    PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen)
{
	PGresult *res;
	ExecStatusType st;

	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		result_error(res, conn, err, errlen);
		PQclear(res);
		return NULL;
	}
	return res;
}

PGresult *
db_query_diag(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err,
    size_t errlen, char sqlstate[6], char *constraint, size_t conlen)
{
	PGresult *res;
	ExecStatusType st;

	sqlstate[0] = '\0';
	if (conlen)
		constraint[0] = '\0';
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *con = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

		snprintf(sqlstate, 6, "%s", code ? code : "");
		if (conlen)
			snprintf(constraint, conlen, "%s", con ? con : "");
		result_error(res, conn, err, errlen);
		PQclear(res);
		return NULL;
	}
	return res;
}

int
db_execp(
    PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen)
{
	PGresult *res = db_query(conn, sql, nparams, params, err, errlen);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

char *
db_value(
    PGconn *conn, const char *sql, int nparams, const char *const *params, char *err, size_t errlen)
{
	PGresult *res = db_query(conn, sql, nparams, params, err, errlen);
	char *v = NULL;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) >= 1 && PQnfields(res) >= 1 && !PQgetisnull(res, 0, 0))
		v = xstrdup(PQgetvalue(res, 0, 0));
	else
		snprintf(err, errlen, "query returned no value");
	PQclear(res);
	return v;
}

int
db_begin(PGconn *conn, char *err, size_t errlen)
{
	return db_exec(conn, "BEGIN", err, errlen);
}

int
db_commit(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, "COMMIT");
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		result_error(res, conn, err, errlen);
		rc = -1;
	} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		/* COMMIT of a failed transaction "succeeds" with tag ROLLBACK */
		snprintf(err, errlen, "the transaction was rolled back by an earlier error");
		rc = -1;
	}
	PQclear(res);
	return rc;
}

void
db_rollback(PGconn *conn)
{
	PGresult *res;

	if (conn == NULL || PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	res = PQexec(conn, "ROLLBACK");
	PQclear(res);
}

char *
db_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	char *r;

	if (q == NULL)
		fatalx("out of memory quoting a name");
	r = xstrdup(q);
	PQfreemem(q);
	return r;
}

char *
db_literal(PGconn *conn, const char *value)
{
	char *q = PQescapeLiteral(conn, value, strlen(value));
	char *r;

	if (q == NULL)
		fatalx("out of memory quoting a name");
	r = xstrdup(q);
	PQfreemem(q);
	return r;
}

char *
db_qualified(PGconn *conn, const char *schema, const char *table)
{
	char *s = db_ident(conn, schema), *t = db_ident(conn, table);
	char *r = xasprintf("%s.%s", s, t);

	free(s);
	free(t);
	return r;
}

int
db_conninfo_check(const char *conninfo, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);

	if (opts == NULL) {
		db_set_error(err, errlen, "invalid connection string", msg);
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

void
db_conninfo_append(struct buf *b, const char *key, const char *val)
{
	const char *p;
	int plain = *val != '\0';

	for (p = val; *p; p++)
		if (*p == ' ' || *p == '\'' || *p == '\\')
			plain = 0;
	if (b->len)
		buf_putc(b, ' ');
	buf_printf(b, "%s=", key);
	if (plain) {
		buf_puts(b, val);
		return;
	}
	buf_putc(b, '\'');
	for (p = val; *p; p++) {
		if (*p == '\'' || *p == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *p);
	}
	buf_putc(b, '\'');
}

char *
db_conninfo_redact(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
	struct buf b = BUF_INIT;

	if (opts == NULL)
		return xstrdup("(invalid connection string)");
	for (o = opts; o->keyword; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0)
			db_conninfo_append(&b, o->keyword, "********");
		else
			db_conninfo_append(&b, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return buf_steal(&b);
}

char *
db_conninfo_get(const char *conninfo, const char *keyword)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
	char *v = NULL;

	if (opts == NULL)
		return NULL;
	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0 && o->val)
			v = xstrdup(o->val);
	PQconninfoFree(opts);
	return v;
}

const char *
db_connect_hint(const char *msg)
{
	static const struct {
		const char *needle, *hint;
	} hints[] = {
		{ "password authentication failed",
		    "check the password (pass=) and the user name (user=)" },
		{ "no password supplied",
		    "give the password with pass=, or put it in a pgpass file or service" },
		{ "no pg_hba.conf entry",
		    "add a line for this client address, user and database to the node's "
		    "pg_hba.conf, then reload PostgreSQL" },
		{ "Connection refused",
		    "is PostgreSQL running on that host and port, and listening on that address "
		    "(listen_addresses)?" },
		{ "timeout expired",
		    "the host did not answer in time: check the address, the VPN and firewalls" },
		{ "could not translate host name", "check host=: the name does not resolve" },
		{ "No route to host", "the address is unreachable: check host= and the VPN" },
		{ "does not exist", "check dbname= and user=: the server does not know that name" },
		{ "SSL", "check sslmode= and the certificate settings" },
	};
	size_t i;

	for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strstr(msg, hints[i].needle))
			return hints[i].hint;
	return NULL;
}

/*
 * db.h - the only door to libpq.
 *
 * Connections get a fallback application_name, a connect timeout, an empty
 * search_path (every name in our SQL is schema-qualified, so a hostile
 * object in a user schema can never shadow ours) and UTC.  Query helpers
 * check the result status and shape and PQclear on every path; failures are
 * written into the caller's err buffer with the server's message.
 */
#ifndef REPCTL_DB_H
#define REPCTL_DB_H

#include <libpq-fe.h>
#include <stddef.h>

#define ERRLEN 2048

/*
 * Connect.  passfile: pgpass-format file or NULL; password: a password to
 * use for this attempt only (add database) or NULL.  Returns NULL with a
 * message in err.  Close with db_close().
 */
PGconn *db_connect(const char *conninfo, const char *appname, const char *passfile,
    const char *password, int timeout, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void db_close(PGconn *conn);

/* Run SQL that returns no rows (may hold several statements).  0 or -1. */
int db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same with $n parameters (text format, NULL entries are SQL NULLs). */
int db_execp(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/*
 * Run a query returning rows; NULL on failure.  The caller frees the result
 * with PQclear().
 */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/*
 * db_query, and on failure also the SQLSTATE (6 bytes with the NUL) and the
 * violated constraint's name (may be empty) of the error.
 */
PGresult *db_query_diag(PGconn *conn, const char *sql, int nparams, const char *const *params,
    char *err, size_t errlen, char sqlstate[6], char *constraint, size_t conlen)
    __attribute__((warn_unused_result));
/* SQLSTATE of the last statement that failed through this module ("" if none). */
const char *db_last_sqlstate(void);
/* One value of a one-row one-column query, xstrdup'ed (free()); NULL on error or no row. */
char *db_value(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err,
    size_t errlen) __attribute__((warn_unused_result));

int db_begin(PGconn *conn, char *err, size_t errlen) __attribute__((warn_unused_result));
int db_commit(PGconn *conn, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Roll back, ignoring errors (used on failure paths). */
void db_rollback(PGconn *conn);

/* Quoted identifier / literal; xstrdup'ed, free with free(). */
char *db_ident(PGconn *conn, const char *name);
char *db_literal(PGconn *conn, const char *value);
/* Quote "schema"."table". free(). */
char *db_qualified(PGconn *conn, const char *schema, const char *table);

/*
 * Check conninfo syntax without connecting; 0 or -1 with libpq's message.
 */
int db_conninfo_check(const char *conninfo, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* conninfo with any password removed, for display; free(). */
char *db_conninfo_redact(const char *conninfo);
struct buf;
/* Append key=value to a conninfo being built, quoting the value when needed. */
void db_conninfo_append(struct buf *b, const char *key, const char *val);
/* Value of one keyword in a conninfo string, or NULL; free(). */
char *db_conninfo_get(const char *conninfo, const char *keyword);

/* Strip a trailing newline from a libpq message copied into err. */
void db_set_error(char *err, size_t errlen, const char *prefix, const char *pqmsg);

#endif

#ifndef REPCTL_DB_HINT
#define REPCTL_DB_HINT
/* A "how to fix" line for a libpq connection error message, or NULL. */
const char *db_connect_hint(const char *msg);
#endif

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
#include <signal.h>
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

/*
 * Network and statement limits of the connections opened from now on
 * (config_load applies the configuration's).  keepalive_* and
 * tcp_user_timeout become conninfo defaults (a node's conninfo may set its
 * own); statement is the statement_timeout set on each connection unless
 * its options, role or database set one.  Every wait for a server is bounded
 * by that connection's statement_timeout plus a few seconds: a server that
 * stays silent longer is given up and the connection closed.
 */
struct db_timeouts {
	int keepalive_idle;     /* seconds before the first keepalive probe; 0: the system's */
	int keepalive_interval; /* seconds between probes */
	int keepalive_count;    /* probes lost before the connection is dead */
	int tcp_user_timeout;   /* seconds data may stay unacknowledged; 0: the system's */
	int statement;          /* statement_timeout, seconds; 0: none */
	int probe; /* seconds without an answer before the server is probed; 0: never */
};
void db_set_timeouts(const struct db_timeouts *t);
/*
 * The server's clock against this machine's, in ms (positive: the server is
 * ahead), taken at the midpoint of one round trip.  0, or -1 with err.
 */
int db_clock_offset_ms(PGconn *conn, double *offset_ms, char *err, size_t errlen);
/* The connections opened from now on follow cfg's limits (keepalives, statement_timeout, probe). */
struct config;
void db_use_config(const struct config *cfg);
/* Lower the liveness probe's delay (probe_after) to at most secs, for a quick look. */
void db_cap_probe(int secs);
/*
 * Connections opened from now on run each statement for at most secs
 * (statement_timeout lowered to it even when the role or conninfo set a
 * longer one), for a quick look that must not wait on a lock.
 */
void db_cap_statement(int secs);
/*
 * A flag a signal handler sets to stop the process (the daemon's workers):
 * once it is set, a wait in progress ends at once (its connection is
 * closed) and every later request fails without being sent.
 */
void db_set_stop_flag(volatile sig_atomic_t *flag);
int db_stopping(void);
/* Name a connection for messages about it ("node 'b'"); printf-style. */
void db_set_label(PGconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
/*
 * db_query through a statement prepared once per connection under name:
 * parsed once; planned once only where nothing empties the server's plan
 * cache (a SET of session_replication_role does, so inside an apply
 * transaction it is planned again on every run).  The same sql must always
 * go with the same name.  Not for connections through a transaction-mode
 * pooler.
 */
PGresult *db_query_prepared(PGconn *conn, const char *name, const char *sql, int nparams,
    const char *const *params, char *err, size_t errlen) __attribute__((warn_unused_result));
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/*
 * Several statements without parameters in one round trip (the simple
 * protocol, like db_exec): the result of the last one, which returns rows;
 * NULL on failure of any (the statements after a failed one do not run).
 */
PGresult *db_query_multi(PGconn *conn, const char *sql, char *err, size_t errlen)
    __attribute__((warn_unused_result));
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

/*
 * COPY with bounded waits.  db_copy_begin runs "COPY ... FROM STDIN" or
 * "COPY ... TO STDOUT".  db_copy_recv returns the length of the next row
 * (*buf to PQfreemem), 0 at the end once the command succeeded, -1 on
 * error.  db_copy_send queues and sends data of a COPY FROM STDIN;
 * db_copy_end ends it (errmsg non-NULL: aborts it with that message) and
 * reads its result.  db_copy_abandon leaves a COPY TO STDOUT before its end
 * (the other side failed): the connection is closed, never waited on.
 * All return 0 or -1 with err, like the rest.
 */
int db_copy_begin(PGconn *conn, const char *sql, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int db_copy_recv(PGconn *conn, char **buf, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int db_copy_send(PGconn *conn, const char *data, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int db_copy_end(PGconn *conn, const char *errmsg, char *err, size_t errlen);
void db_copy_abandon(PGconn *conn);

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
/*
 * Why a connection failed, from libpq's message: one table (db.c) that the
 * generic hint, onboard's diagnosis and the liveness probe all read.
 */
enum db_failure {
	DBF_OTHER = 0,
	DBF_REFUSED,     /* nothing listens on that host and port */
	DBF_TIMEOUT,     /* no answer in time: host down, packets dropped */
	DBF_NO_ROUTE,    /* no route to host, network unreachable */
	DBF_NO_RESOLVE,  /* the host name does not resolve */
	DBF_NO_HBA,      /* pg_hba.conf has no line for us */
	DBF_AUTH,        /* password wrong or missing */
	DBF_NO_DATABASE, /* database "x" does not exist */
	DBF_NO_ROLE,     /* role "x" does not exist */
	DBF_SSL,         /* TLS settings */
};
enum db_failure db_classify_failure(const char *msg);
/* 1 when the failure means that nothing answers at the server's address. */
int db_failure_unreachable(enum db_failure f);
/* A "how to fix" line for a libpq connection error message, or NULL. */
const char *db_connect_hint(const char *msg);
#endif

/*
 * db.c - every libpq call of repctl goes through here.
 *
 * Why one wrapper: the connection settings that make our SQL safe (empty
 * search_path, UTC) and the error reporting (the server's primary message,
 * detail and hint, without libpq's trailing newline) must be the same
 * everywhere, and every PGresult must be cleared on every path.
 *
 * Why nothing here can hang: connections run in libpq's non-blocking mode
 * and every wait for a server is a poll() with a deadline, woken every
 * 200 ms to see the stop flag (db_set_stop_flag).  A server that sends
 * nothing for its statement_timeout plus DB_ANSWER_GRACE seconds (a live one
 * ends the statement itself at statement_timeout) is given up: its socket is
 * shut down, so libpq marks the connection bad and every later use fails at
 * once (the caller drops it, the server's backend rolls back).  A peer that
 * vanished from the network is found by TCP keepalives and
 * tcp_user_timeout, set as conninfo defaults.  Connecting is bounded by
 * connect_timeout the same way.
 */
#include <errno.h>
#include <libpq-events.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
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

/* ---- bounded waits ---- */

/* seconds past a server's statement_timeout before a silent server is given up */
#define DB_ANSWER_GRACE 5

static struct db_timeouts tmo = { 10, 5, 3, 30, 1800 }; /* config.c's defaults */
static volatile sig_atomic_t *stop_flag;

/* What we know of each open connection: a name for messages, how long to wait. */
struct conn_info {
	PGconn *conn;
	char *label; /* "node 'b'", "the metadata database"; NULL: its host and port */
	int guard;   /* seconds without an answer before giving up; 0: never */
	char *dead;  /* why it was given up, for every later use of it */
};

static struct conn_info *infos;
static int ninfos;

int
db_clock_offset_ms(PGconn *conn, double *offset_ms, char *err, size_t errlen)
{
	double t0 = clock_wall(), t1;
	char *v = db_value(
	    conn, "SELECT extract(epoch FROM clock_timestamp())::float8", 0, NULL, err, errlen);

	t1 = clock_wall();
	if (v == NULL)
		return -1;
	*offset_ms = (strtod(v, NULL) - (t0 + t1) / 2) * 1000.0;
	free(v);
	return 0;
}

void
db_use_config(const struct config *cfg)
{
	struct db_timeouts t = { cfg->tcp_keepalives_idle, cfg->tcp_keepalives_interval,
		cfg->tcp_keepalives_count, cfg->tcp_user_timeout, cfg->statement_timeout,
		cfg->probe_after };

	db_set_timeouts(&t);
}

void
db_set_timeouts(const struct db_timeouts *t)
{
	tmo = *t;
}

void
db_cap_probe(int secs)
{
	if (secs > 0 && (tmo.probe == 0 || tmo.probe > secs))
		tmo.probe = secs;
}

/* connections opened from now on: statement_timeout at most this (0: no cap) */
static int stmt_cap;

void
db_cap_statement(int secs)
{
	if (secs > 0 && (stmt_cap == 0 || stmt_cap > secs))
		stmt_cap = secs;
}

void
db_set_stop_flag(volatile sig_atomic_t *flag)
{
	stop_flag = flag;
}

int
db_stopping(void)
{
	return stop_flag != NULL && *stop_flag != 0;
}

static struct conn_info *
info_of(PGconn *conn, int create)
{
	int i;

	for (i = 0; i < ninfos; i++)
		if (infos[i].conn == conn)
			return &infos[i];
	if (!create)
		return NULL;
	infos = xrealloc(infos, sizeof(*infos) * (size_t)(ninfos + 1));
	infos[ninfos].conn = conn;
	infos[ninfos].label = NULL;
	infos[ninfos].dead = NULL;
	infos[ninfos].guard = tmo.statement > 0 ? tmo.statement + DB_ANSWER_GRACE : 0;
	return &infos[ninfos++];
}

static void
info_forget(PGconn *conn)
{
	int i;

	for (i = 0; i < ninfos; i++)
		if (infos[i].conn == conn) {
			free(infos[i].label);
			free(infos[i].dead);
			infos[i] = infos[--ninfos];
			break;
		}
	if (ninfos == 0) {
		free(infos);
		infos = NULL;
	}
}

void
db_set_label(PGconn *conn, const char *fmt, ...)
{
	struct conn_info *ci;
	va_list ap;
	char tmp[256];

	if (conn == NULL)
		return;
	ci = info_of(conn, 1);
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	free(ci->label);
	ci->label = xstrdup(tmp);
}

/* The connection's name for messages: its label, or the server's address. */
static const char *
who(PGconn *conn, char *tmp, size_t n)
{
	struct conn_info *ci = info_of(conn, 0);
	const char *h = PQhost(conn), *p = PQport(conn);

	if (ci && ci->label)
		snprintf(tmp, n, "%s", ci->label);
	else
		snprintf(tmp, n, "the server at %s port %s", h && *h ? h : "(socket)",
		    p && *p ? p : "5432");
	return tmp;
}

/*
 * Give up on a connection whose state is unknown (a request is in flight):
 * shut its socket down, so that libpq sees the end of the stream, marks the
 * connection bad and fails every later use at once.  The server's backend
 * rolls back when it notices.
 */
static void
conn_kill(PGconn *conn, const char *why)
{
	struct conn_info *ci = info_of(conn, 0);
	int fd = PQsocket(conn);

	if (ci && ci->dead == NULL && why && *why)
		ci->dead = xstrdup(why);
	if (fd >= 0) {
		shutdown(fd, SHUT_RDWR);
		(void)PQconsumeInput(conn);
	}
}

/*
 * A connection-level failure: "<who>: <libpq's message>".  The connection
 * is in no known state any more (a request half done, the COPY protocol
 * left midway): it is closed, so that its user sees it bad and drops it.
 */
static void
conn_error(PGconn *conn, char *err, size_t errlen)
{
	struct conn_info *ci = info_of(conn, 0);
	char w[300];

	snprintf(last_sqlstate, sizeof(last_sqlstate), "08006");
	if (ci && ci->dead && PQstatus(conn) == CONNECTION_BAD) {
		/* given up on earlier: say why, not just "no connection to the server" */
		snprintf(err, errlen, "%s", ci->dead);
		return;
	}
	db_set_error(err, errlen, who(conn, w, sizeof(w)), PQerrorMessage(conn));
	conn_kill(conn, err);
}

#define PROBE_SECS 10

/*
 * Is the server behind conn still there?  A statement may legitimately run
 * for long without a byte coming back; a stopped or hung server looks just
 * the same from its connection (the kernel keeps the TCP connection alive,
 * and its own statement_timeout cannot fire).  A second connection tells
 * them apart: a live server answers a new connection and SELECT 1 at once,
 * however busy the first one is.  1: it answered (an error it sent, such
 * as too many clients, counts), 0: no answer within PROBE_SECS or nothing
 * listens any more (why says which), -1: the probe could not be made.
 */
static int
server_answers(PGconn *conn, char *why, size_t whylen)
{
	PQconninfoOption *opts = PQconninfo(conn), *o;
	const char *kw[72], *val[72];
	char ct[16];
	double deadline = clock_mono() + PROBE_SECS;
	PGconn *p;
	PostgresPollingStatusType st;
	int n = 0, rc = -1, sent = 0;

	if (opts == NULL)
		return -1;
	snprintf(ct, sizeof(ct), "%d", PROBE_SECS);
	for (o = opts; o->keyword && n < 60; o++) {
		if (o->val == NULL || *o->val == '\0' ||
		    strcmp(o->keyword, "connect_timeout") == 0 ||
		    strcmp(o->keyword, "application_name") == 0 ||
		    strcmp(o->keyword, "fallback_application_name") == 0 ||
		    strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
		    strcmp(o->keyword, "port") == 0 ||
		    strcmp(o->keyword, "target_session_attrs") == 0)
			continue;
		kw[n] = o->keyword;
		val[n++] = o->val;
	}
	/* the very server conn is on, not the first of a host list */
	if (PQhost(conn) && *PQhost(conn)) {
		kw[n] = "host";
		val[n++] = PQhost(conn);
	}
	if (PQhostaddr(conn) && *PQhostaddr(conn)) {
		kw[n] = "hostaddr";
		val[n++] = PQhostaddr(conn);
	}
	if (PQport(conn) && *PQport(conn)) {
		kw[n] = "port";
		val[n++] = PQport(conn);
	}
	kw[n] = "connect_timeout";
	val[n++] = ct;
	kw[n] = "application_name";
	val[n++] = "repctl probe";
	kw[n] = NULL;
	val[n] = NULL;
	p = PQconnectStartParams(kw, val, 0);
	PQconninfoFree(opts);
	if (p == NULL)
		return -1;
	/* as after PQconnectStart: wait for the socket to be writable first */
	st = PQstatus(p) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
	for (;;) {
		struct pollfd pf;
		double now = clock_mono();
		int r;

		if (!sent && st == PGRES_POLLING_OK) {
			if (!PQsendQuery(p, "SELECT 1"))
				break;
			sent = 1;
			st = PGRES_POLLING_READING;
			continue;
		}
		if (st == PGRES_POLLING_FAILED) {
			/* refused or unreachable: nothing answers; anything else came from it */
			if (db_failure_unreachable(db_classify_failure(PQerrorMessage(p)))) {
				snprintf(why, whylen, "nothing answers at its address any more");
				rc = 0;
			} else
				rc = 1;
			break;
		}
		if (db_stopping()) {
			rc = 1; /* not a verdict: the caller's wait sees the stop flag next */
			break;
		}
		if (now >= deadline) {
			snprintf(why, whylen,
			    "a second connection to the same server got no answer within %d s either "
			    "(the server is stopped or hangs)",
			    PROBE_SECS);
			rc = 0;
			break;
		}
		pf.fd = PQsocket(p);
		pf.events = st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN;
		pf.revents = 0;
		r = poll(&pf, 1, deadline - now < 0.2 ? (int)((deadline - now) * 1000) + 1 : 200);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		if (!sent) {
			st = PQconnectPoll(p);
		} else {
			if (PQconsumeInput(p) == 0) {
				rc = 1; /* it answered, if only by closing */
				break;
			}
			if (!PQisBusy(p)) {
				rc = 1;
				break;
			}
		}
	}
	/* PQfinish only queues a Terminate message: it does not wait for the server */
	PQfinish(p);
	return rc;
}

/*
 * Wait until conn's socket is readable (or writable, with for_write) or the
 * deadline (0: none) passes, seeing the stop flag at least every 200 ms.
 * 0 when ready; -1 with err when the deadline passed or the process is
 * stopping (the connection is then closed) or poll() failed.
 */
static int
wait_socket(PGconn *conn, int for_write, double deadline, char *err, size_t errlen)
{
	char w[300];
	double since = clock_mono(), next_probe = since + tmo.probe;

	for (;;) {
		struct pollfd pf;
		double now = clock_mono();
		int ms = 200, fd = PQsocket(conn), r;

		if (fd < 0) {
			conn_error(conn, err, errlen);
			return -1;
		}
		if (db_stopping()) {
			snprintf(err, errlen, "%s: interrupted: repctl is stopping",
			    who(conn, w, sizeof(w)));
			snprintf(last_sqlstate, sizeof(last_sqlstate), "57014");
			conn_kill(conn, err);
			return -1;
		}
		if (deadline > 0 && now >= deadline) {
			struct conn_info *ci = info_of(conn, 0);

			snprintf(err, errlen,
			    "%s did not answer within %d s (its statement_timeout + %d s): "
			    "connection closed",
			    who(conn, w, sizeof(w)), ci ? ci->guard : 0, DB_ANSWER_GRACE);
			snprintf(last_sqlstate, sizeof(last_sqlstate), "08006");
			conn_kill(conn, err);
			return -1;
		}
		if (tmo.probe > 0 && now >= next_probe) {
			char why[300];

			if (server_answers(conn, why, sizeof(why)) == 0) {
				snprintf(err, errlen,
				    "%s did not answer for %d s and %s: connection closed",
				    who(conn, w, sizeof(w)), (int)(now - since), why);
				snprintf(last_sqlstate, sizeof(last_sqlstate), "08006");
				conn_kill(conn, err);
				return -1;
			}
			next_probe = clock_mono() + tmo.probe;
		}
		if (deadline > 0 && (deadline - now) * 1000 < ms)
			ms = (int)((deadline - now) * 1000) + 1;
		pf.fd = fd;
		pf.events = POLLIN | (for_write ? POLLOUT : 0);
		pf.revents = 0;
		r = poll(&pf, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			snprintf(
			    err, errlen, "%s: poll: %s", who(conn, w, sizeof(w)), strerror(errno));
			return -1;
		}
	}
}

/* The deadline of a request on conn: now + its guard, or 0 (none). */
static double
answer_deadline(PGconn *conn)
{
	struct conn_info *ci = info_of(conn, 0);
	int g = ci ? ci->guard : (tmo.statement > 0 ? tmo.statement + DB_ANSWER_GRACE : 0);

	return g > 0 ? clock_mono() + g : 0;
}

/* Send everything queued.  0 or -1 with err. */
static int
flush_out(PGconn *conn, double deadline, char *err, size_t errlen)
{
	int r;

	while ((r = PQflush(conn)) == 1) {
		if (wait_socket(conn, 1, deadline, err, errlen) < 0)
			return -1;
		if (PQconsumeInput(conn) == 0) {
			conn_error(conn, err, errlen);
			return -1;
		}
	}
	if (r < 0) {
		conn_error(conn, err, errlen);
		return -1;
	}
	return 0;
}

/* Wait until PQgetResult() will not block.  0 or -1 with err. */
static int
await_result(PGconn *conn, double deadline, char *err, size_t errlen)
{
	if (flush_out(conn, deadline, err, errlen) < 0)
		return -1;
	while (PQisBusy(conn)) {
		if (wait_socket(conn, 0, deadline, err, errlen) < 0)
			return -1;
		if (PQconsumeInput(conn) == 0) {
			conn_error(conn, err, errlen);
			return -1;
		}
	}
	return 0;
}

/*
 * Send a query (simple: several statements allowed, no parameters) and
 * collect its results as PQexec does: the first error, else the last
 * result; a COPY result ends the collection.  NULL with err when the server
 * could not be reached, did not answer, or the process is stopping.
 */
static PGresult *
exec_send_wait(PGconn *conn, const char *stmt, const char *sql, int nparams,
    const char *const *params, int simple, char *err, size_t errlen)
{
	PGresult *r, *last = NULL, *bad = NULL;
	double deadline;
	int sent;
	char w[300];

	if (conn == NULL) {
		snprintf(err, errlen, "not connected");
		return NULL;
	}
	if (db_stopping()) {
		snprintf(err, errlen, "%s: not sent: repctl is stopping", who(conn, w, sizeof(w)));
		snprintf(last_sqlstate, sizeof(last_sqlstate), "57014");
		return NULL;
	}
	if (simple == 2)
		sent = PQsendPrepare(conn, stmt, sql, nparams, NULL);
	else if (simple == 3)
		sent = PQsendQueryPrepared(conn, stmt, nparams, params, NULL, NULL, 0);
	else
		sent = simple ? PQsendQuery(conn, sql)
			      : PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (!sent) {
		conn_error(conn, err, errlen);
		return NULL;
	}
	deadline = answer_deadline(conn);
	for (;;) {
		ExecStatusType st;

		if (await_result(conn, deadline, err, errlen) < 0) {
			PQclear(last);
			PQclear(bad);
			return NULL;
		}
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ||
		    st == PGRES_NONFATAL_ERROR) {
			if (bad == NULL)
				bad = r;
			else
				PQclear(r);
		} else {
			PQclear(last);
			last = r;
		}
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH ||
		    PQstatus(conn) == CONNECTION_BAD)
			break;
	}
	if (bad) {
		PQclear(last);
		return bad;
	}
	if (last == NULL)
		conn_error(conn, err, errlen);
	return last;
}

static void result_error(const PGresult *res, PGconn *conn, char *err, size_t errlen);

/* simple: 0 a query with parameters, 1 the simple protocol (several statements) */
static PGresult *
exec_wait(PGconn *conn, const char *sql, int nparams, const char *const *params, int simple,
    char *err, size_t errlen)
{
	return exec_send_wait(conn, NULL, sql, nparams, params, simple, err, errlen);
}

/*
 * The statements prepared on a connection, kept as libpq instance data so
 * that they go with it: forgotten when it is reset (the server forgot them
 * too), freed when it is finished.
 */
struct prepared {
	int n;
	char **names;
};

static void
prepared_clear(struct prepared *pl)
{
	int i;

	if (pl == NULL)
		return;
	for (i = 0; i < pl->n; i++)
		free(pl->names[i]);
	free(pl->names);
	pl->names = NULL;
	pl->n = 0;
}

static int
prepared_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_CONNRESET) {
		PGconn *c = ((PGEventConnReset *)info)->conn;

		prepared_clear(PQinstanceData(c, prepared_event));
	} else if (id == PGEVT_CONNDESTROY) {
		PGconn *c = ((PGEventConnDestroy *)info)->conn;
		struct prepared *pl = PQinstanceData(c, prepared_event);

		prepared_clear(pl);
		free(pl);
	}
	return 1;
}

PGresult *
db_query_prepared(PGconn *conn, const char *name, const char *sql, int nparams,
    const char *const *params, char *err, size_t errlen)
{
	struct prepared *pl;
	PGresult *res;
	ExecStatusType st;
	int i;

	if (conn == NULL)
		return db_query(conn, sql, nparams, params, err, errlen);
	pl = PQinstanceData(conn, prepared_event);
	if (pl == NULL) {
		pl = xcalloc(1, sizeof(*pl));
		if (!PQregisterEventProc(conn, prepared_event, "repctl prepared", NULL) ||
		    !PQsetInstanceData(conn, prepared_event, pl)) {
			/* no bookkeeping possible: plain queries then */
			free(pl);
			return db_query(conn, sql, nparams, params, err, errlen);
		}
	}
	for (i = 0; i < pl->n && strcmp(pl->names[i], name) != 0; i++)
		;
	if (i == pl->n) {
		res = exec_send_wait(conn, name, sql, nparams, NULL, 2, err, errlen);
		if (res == NULL)
			return NULL;
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			result_error(res, conn, err, errlen);
			PQclear(res);
			return NULL;
		}
		PQclear(res);
		pl->names = xrealloc(pl->names, (size_t)(pl->n + 1) * sizeof(*pl->names));
		pl->names[pl->n++] = xstrdup(name);
	}
	res = exec_send_wait(conn, name, NULL, nparams, params, 3, err, errlen);
	if (res == NULL)
		return NULL;
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		result_error(res, conn, err, errlen);
		PQclear(res);
		return NULL;
	}
	return res;
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
		/* no server message: the connection broke; say which one */
		conn_error(conn, err, errlen);
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

/* The connect_timeout in force for conn (the conninfo's, else our default), libpq's way. */
static int
connect_timeout_of(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn), *o;
	int t = 0;

	for (o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val)
			t = atoi(o->val);
	PQconninfoFree(opts);
	if (t <= 0)
		return 0;
	return t < 2 ? 2 : t;
}

/*
 * Connect without blocking: connect_timeout per host tried (as libpq
 * counts it), and the stop flag seen every 200 ms.  Returns the
 * connection (NULL only when out of memory); when *timedout is set, err
 * says why it was given up and the connection is not usable.
 */
static PGconn *
connect_bounded(
    const char *const *keys, const char *const *vals, int *timedout, char *err, size_t errlen)
{
	PGconn *conn = PQconnectStartParams(keys, vals, 1);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double deadline = 0;
	int timeout;
	char host[256] = "";

	*timedout = 0;
	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		return conn;
	timeout = connect_timeout_of(conn);
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pf;
		const char *h = PQhost(conn), *p = PQport(conn);
		char cur[256];
		double now = clock_mono();
		int ms = 200, r;

		snprintf(cur, sizeof(cur), "%s:%s", h ? h : "", p ? p : "");
		if (deadline == 0 || strcmp(cur, host) != 0) {
			/* a new host: its own connect_timeout */
			snprintf(host, sizeof(host), "%s", cur);
			deadline = timeout > 0 ? now + timeout : 0;
		}
		if (db_stopping() || (deadline > 0 && now >= deadline)) {
			if (db_stopping())
				snprintf(
				    err, errlen, "connecting: interrupted: repctl is stopping");
			else
				snprintf(err, errlen,
				    "connection to server at \"%s\", port %s failed: timeout expired "
				    "(connect_timeout %d s)",
				    h && *h ? h : "(socket)", p && *p ? p : "5432", timeout);
			*timedout = 1;
			return conn;
		}
		if (deadline > 0 && (deadline - now) * 1000 < ms)
			ms = (int)((deadline - now) * 1000) + 1;
		pf.fd = PQsocket(conn);
		pf.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		pf.revents = 0;
		if (pf.fd < 0) {
			st = PQconnectPoll(conn);
			continue;
		}
		r = poll(&pf, 1, ms);
		if (r > 0)
			st = PQconnectPoll(conn);
		else if (r < 0 && errno != EINTR) {
			snprintf(err, errlen, "connecting: poll: %s", strerror(errno));
			*timedout = 1;
			return conn;
		}
	}
	return conn;
}

PGconn *
db_connect(const char *conninfo, const char *appname, const char *passfile, const char *password,
    int timeout, char *err, size_t errlen)
{
	const char *keys[16], *vals[16];
	char tmo_s[16], ka_idle[16], ka_int[16], ka_cnt[16], tut[24], stmt[16];
	int n = 0, timedout = 0;
	PGconn *conn;
	PGresult *res;
	struct conn_info *ci;
	char cap[32];
	const char *sp[2] = { stmt, cap };

	/* defaults first: values from the conninfo string override them */
	snprintf(tmo_s, sizeof(tmo_s), "%d", timeout > 0 ? timeout : 10);
	keys[n] = "connect_timeout", vals[n++] = tmo_s;
	if (tmo.keepalive_idle > 0) {
		/* a peer gone from the network (a laptop closed, a VPN down) is noticed */
		snprintf(ka_idle, sizeof(ka_idle), "%d", tmo.keepalive_idle);
		snprintf(ka_int, sizeof(ka_int), "%d", tmo.keepalive_interval);
		snprintf(ka_cnt, sizeof(ka_cnt), "%d", tmo.keepalive_count);
		keys[n] = "keepalives", vals[n++] = "1";
		keys[n] = "keepalives_idle", vals[n++] = ka_idle;
		keys[n] = "keepalives_interval", vals[n++] = ka_int;
		keys[n] = "keepalives_count", vals[n++] = ka_cnt;
	}
	if (tmo.tcp_user_timeout > 0) {
		/* ... also while sending: unacknowledged data is given up on */
		snprintf(tut, sizeof(tut), "%ld", (long)tmo.tcp_user_timeout * 1000L);
		keys[n] = "tcp_user_timeout", vals[n++] = tut;
	}
	keys[n] = "dbname", vals[n++] = conninfo;
	keys[n] = "fallback_application_name", vals[n++] = appname ? appname : "repctl";
	if (password)
		keys[n] = "password", vals[n++] = password;
	keys[n] = NULL, vals[n] = NULL;

	conn = connect_bounded(keys, vals, &timedout, err, errlen);
	if (conn == NULL) {
		snprintf(err, errlen, "out of memory connecting");
		return NULL;
	}
	if (!timedout && PQstatus(conn) != CONNECTION_OK && password == NULL && passfile &&
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
			conn = connect_bounded(keys, vals, &timedout, err, errlen);
			memset(pw, 0, strlen(pw));
			free(pw);
			if (conn == NULL) {
				snprintf(err, errlen, "out of memory connecting");
				return NULL;
			}
		}
	}
	if (timedout || PQstatus(conn) != CONNECTION_OK) {
		if (!timedout)
			db_set_error(err, errlen, NULL, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_debug, NULL);
	PQsetnonblocking(conn, 1);
	ci = info_of(conn, 1);
	/*
	 * statement_timeout: ours unless the conninfo's options or the role or
	 * database already set one; the connection's answer guard follows
	 * whatever is in force.
	 */
	snprintf(stmt, sizeof(stmt), "%d", tmo.statement);
	snprintf(cap, sizeof(cap), "%d", stmt_cap);
	res = exec_wait(conn,
	    "SELECT pg_catalog.set_config('search_path', '', false), "
	    "pg_catalog.set_config('TimeZone', 'UTC', false), "
	    "CASE WHEN $2::int > 0 AND (pg_catalog.current_setting('statement_timeout') = '0' "
	    "OR extract(epoch FROM pg_catalog.current_setting('statement_timeout')::interval) > "
	    "$2::int) THEN pg_catalog.set_config('statement_timeout', $2 || 's', false) "
	    "WHEN $1::int > 0 AND pg_catalog.current_setting('statement_timeout') = '0' "
	    "THEN pg_catalog.set_config('statement_timeout', $1 || 's', false) END, "
	    "ceil(extract(epoch FROM "
	    "pg_catalog.current_setting('statement_timeout')::interval))::int",
	    2, sp, 0, err, errlen);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (res)
			result_error(res, conn, err, errlen);
		PQclear(res);
		db_close(conn);
		return NULL;
	}
	{
		int st = atoi(PQgetvalue(res, 0, 3));

		ci->guard = st > 0 ? st + DB_ANSWER_GRACE : 0;
	}
	PQclear(res);
	return conn;
}

void
db_close(PGconn *conn)
{
	if (conn) {
		info_forget(conn);
		PQfinish(conn);
	}
}

int
db_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = exec_wait(conn, sql, 0, NULL, 1, err, errlen);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (res == NULL)
		return -1;
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

	res = exec_wait(conn, sql, nparams, params, 0, err, errlen);
	if (res == NULL)
		return NULL;
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		result_error(res, conn, err, errlen);
		PQclear(res);
		return NULL;
	}
	return res;
}

PGresult *
db_query_multi(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = exec_wait(conn, sql, 0, NULL, 1, err, errlen);

	if (res == NULL)
		return NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			snprintf(err, errlen, "the last statement returned no rows");
		else
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
	res = exec_wait(conn, sql, nparams, params, 0, err, errlen);
	if (res == NULL) {
		snprintf(sqlstate, 6, "%s", last_sqlstate);
		return NULL;
	}
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
	PGresult *res = exec_wait(conn, "COMMIT", 0, NULL, 1, err, errlen);
	int rc = 0;

	if (res == NULL)
		return -1;
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
	char err[ERRLEN];
	PGresult *res;

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
	    PQtransactionStatus(conn) == PQTRANS_IDLE)
		return;
	res = exec_wait(conn, "ROLLBACK", 0, NULL, 1, err, sizeof(err));
	PQclear(res);
}

/* ---- COPY, bounded like everything else ---- */

int
db_copy_begin(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *res = exec_wait(conn, sql, 0, NULL, 1, err, errlen);
	ExecStatusType st = PQresultStatus(res);

	if (res == NULL)
		return -1;
	if (st != PGRES_COPY_IN && st != PGRES_COPY_OUT) {
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			snprintf(err, errlen, "not a COPY statement");
		else
			result_error(res, conn, err, errlen);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* The results that end a COPY (or a command): 0 when all were good. */
static int
finish_results(PGconn *conn, double deadline, char *err, size_t errlen)
{
	PGresult *r;
	int rc = 0;

	for (;;) {
		if (await_result(conn, deadline, err, errlen) < 0)
			return -1;
		r = PQgetResult(conn);
		if (r == NULL)
			break;
		if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
			result_error(r, conn, err, errlen);
			rc = -1;
		}
		PQclear(r);
		if (PQstatus(conn) == CONNECTION_BAD)
			break;
	}
	return rc;
}

int
db_copy_recv(PGconn *conn, char **buf, char *err, size_t errlen)
{
	double deadline = answer_deadline(conn);

	*buf = NULL;
	for (;;) {
		int n = PQgetCopyData(conn, buf, 1);

		if (n > 0)
			return n;
		if (n == -1)
			return finish_results(conn, deadline, err, errlen);
		if (n < -1) {
			conn_error(conn, err, errlen);
			return -1;
		}
		if (wait_socket(conn, 0, deadline, err, errlen) < 0)
			return -1;
		if (PQconsumeInput(conn) == 0) {
			conn_error(conn, err, errlen);
			return -1;
		}
	}
}

int
db_copy_send(PGconn *conn, const char *data, size_t len, char *err, size_t errlen)
{
	double deadline = answer_deadline(conn);

	while (len > 0) {
		int n = len > (1u << 20) ? (1 << 20) : (int)len, r;

		while ((r = PQputCopyData(conn, data, n)) == 0) {
			if (wait_socket(conn, 1, deadline, err, errlen) < 0)
				return -1;
			if (PQconsumeInput(conn) == 0) {
				conn_error(conn, err, errlen);
				return -1;
			}
		}
		if (r < 0) {
			conn_error(conn, err, errlen);
			return -1;
		}
		data += n;
		len -= (size_t)n;
		/* everything out before more is queued: memory stays bounded */
		if (flush_out(conn, deadline, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int
db_copy_end(PGconn *conn, const char *errmsg, char *err, size_t errlen)
{
	double deadline = answer_deadline(conn);
	int r;

	while ((r = PQputCopyEnd(conn, errmsg)) == 0) {
		if (wait_socket(conn, 1, deadline, err, errlen) < 0)
			return -1;
		if (PQconsumeInput(conn) == 0) {
			conn_error(conn, err, errlen);
			return -1;
		}
	}
	if (r < 0) {
		conn_error(conn, err, errlen);
		return -1;
	}
	return finish_results(conn, deadline, err, errlen);
}

void
db_copy_abandon(PGconn *conn)
{
	char w[300], why[400];

	if (conn && PQstatus(conn) == CONNECTION_OK) {
		snprintf(why, sizeof(why),
		    "%s: connection closed in the middle of a COPY (the other side failed)",
		    who(conn, w, sizeof(w)));
		conn_kill(conn, why);
	}
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

/* Most specific first: "role ... does not exist" before "does not exist". */
static const struct {
	const char *needle;
	enum db_failure f;
} failures[] = {
	{ "Connection refused", DBF_REFUSED },
	{ "timeout expired", DBF_TIMEOUT },
	{ "Connection timed out", DBF_TIMEOUT },
	{ "No route to host", DBF_NO_ROUTE },
	{ "Network is unreachable", DBF_NO_ROUTE },
	{ "could not translate host name", DBF_NO_RESOLVE },
	{ "no pg_hba.conf entry", DBF_NO_HBA },
	{ "password authentication failed", DBF_AUTH },
	{ "authentication failed", DBF_AUTH },
	{ "no password supplied", DBF_AUTH },
	{ "role \"", DBF_NO_ROLE }, /* with "does not exist", checked below */
	{ "database \"", DBF_NO_DATABASE },
	{ "SSL", DBF_SSL },
};

enum db_failure
db_classify_failure(const char *msg)
{
	size_t i;

	if (msg == NULL)
		return DBF_OTHER;
	for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		if (strstr(msg, failures[i].needle) == NULL)
			continue;
		if ((failures[i].f == DBF_NO_ROLE || failures[i].f == DBF_NO_DATABASE) &&
		    strstr(msg, "does not exist") == NULL)
			continue;
		return failures[i].f;
	}
	return DBF_OTHER;
}

int
db_failure_unreachable(enum db_failure f)
{
	return f == DBF_REFUSED || f == DBF_TIMEOUT || f == DBF_NO_ROUTE;
}

const char *
db_connect_hint(const char *msg)
{
	switch (db_classify_failure(msg)) {
	case DBF_AUTH:
		return strstr(msg, "no password supplied")
		    ? "give the password with pass=, or put it in a pgpass file or service"
		    : "check the password (pass=) and the user name (user=)";
	case DBF_NO_HBA:
		return "add a line for this client address, user and database to the node's "
		       "pg_hba.conf, then reload PostgreSQL";
	case DBF_REFUSED:
		return "is PostgreSQL running on that host and port, and listening on that address "
		       "(listen_addresses)?";
	case DBF_TIMEOUT:
		return "the host did not answer in time: check the address, the VPN and firewalls";
	case DBF_NO_RESOLVE: return "check host=: the name does not resolve";
	case DBF_NO_ROUTE: return "the address is unreachable: check host= and the VPN";
	case DBF_NO_DATABASE:
	case DBF_NO_ROLE: return "check dbname= and user=: the server does not know that name";
	case DBF_SSL: return "check sslmode= and the certificate settings";
	default: return NULL;
	}
}

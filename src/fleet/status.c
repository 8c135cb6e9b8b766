/*
 * status.c - is replication healthy?  The figures and the health rules
 * behind `repctl status` (table, --json, --health) and the web console's
 * /api/v1/status, /healthz and /metrics (actions.h): Bucardo's columns from
 * the run history, pending changes counted on the sources, lag, conflicts,
 * the circuit breaker, one health word per sync, folder and node, folded
 * into one verdict (worst wins).  Nothing here prints or exits.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "buf.h"
#include "config.h"
#include "coordlock.h"
#include "db.h"
#include "meta.h"
#include "sync.h"
#include "xmalloc.h"

#define STATUS_SQL                                                                                  \
	"WITH p AS (SELECT key AS sync, (value->>'pending')::bigint AS pending, "                   \
	"  value->>'error' AS pending_error FROM jsonb_each($3::jsonb)), "                          \
	"s AS (SELECT s.*, p.pending, p.pending_error, "                                            \
	"  (SELECT min(updated_at) FROM repctl.position x WHERE x.sync = s.name) AS pos_at, "       \
	"  EXISTS (SELECT 1 FROM repctl.sync_node n JOIN repctl.node_state ns USING (node) "        \
	"    WHERE n.sync = s.name AND ns.circuit_open_until > now()) AS circuit_open, "            \
	"  EXISTS (SELECT 1 FROM pg_catalog.pg_locks k WHERE k.locktype = 'advisory' "              \
	"    AND k.classid = " LOCK_WORKER " AND k.objid = pg_catalog.hashtext(s.name)::oid "       \
	"    AND k.objsubid = 2 AND k.granted) AS has_worker, "                                     \
	"  EXISTS (SELECT 1 FROM pg_catalog.pg_locks k WHERE k.locktype = 'advisory' "              \
	"    AND k.classid = " LOCK_SYNC_RUN " AND k.objid = pg_catalog.hashtext(s.name)::oid "     \
	"    AND k.objsubid = 2 AND k.granted) AS in_run, "                                         \
	"  coalesce((SELECT max(r.started_at) FROM repctl.run r WHERE r.sync = s.name), "           \
	"    s.created_at) < now() - make_interval(secs => "                                        \
	"    2 * coalesce(s.interval_s, $4::int) + 10) AS late "                                    \
	"  FROM repctl.sync s LEFT JOIN p ON p.sync = s.name "                                      \
	"  WHERE $1::text IS NULL OR s.name = $1) "                                                 \
	"SELECT s.name, "                                                                           \
	"CASE WHEN s.status <> 'active' THEN s.status WHEN NOT $2::bool THEN 'stopped' "            \
	"  WHEN NOT s.has_worker THEN 'no worker' WHEN s.in_run THEN 'running' "                    \
	"  WHEN s.late THEN 'stalled' ELSE 'running' END AS state, "                                \
	"to_char(g.ended_at, 'YYYY-MM-DD HH24:MI:SS') AS last_good, "                               \
	"round(extract(epoch FROM g.ended_at - g.started_at)::numeric, 3) AS time, "                \
	"CASE WHEN g.id IS NOT NULL THEN g.inserts || '/' || g.updates || '/' || g.deletes END "    \
	"  AS last_i_u_d, "                                                                         \
	"to_char(b.ended_at, 'YYYY-MM-DD HH24:MI:SS') AS last_bad, "                                \
	"round(extract(epoch FROM b.ended_at - b.started_at)::numeric, 3) AS bad_time, "            \
	"s.pending, "                                                                               \
	"CASE WHEN s.pending > 0 THEN round(extract(epoch FROM now() - "                            \
	"  coalesce(s.pos_at, s.created_at))::numeric, 1) WHEN s.pending = 0 THEN 0 END AS lag_s, " \
	"(SELECT count(*) FROM repctl.conflict c WHERE c.sync = s.name) AS conflicts, "             \
	"(SELECT count(*) FROM repctl.quarantine q WHERE q.sync = s.name "                          \
	"  AND q.resolved_at IS NULL) AS quarantined, "                                             \
	"CASE WHEN s.circuit_open THEN 'open' ELSE 'closed' END AS circuit, "                       \
	"CASE WHEN s.status = 'inactive' THEN 'gray' "                                              \
	"  WHEN s.circuit_open OR l.ok = false OR (s.pending_error IS NOT NULL AND $2::bool) "      \
	"  OR (s.status = 'active' AND $2::bool AND (NOT s.has_worker "                             \
	"    OR (s.late AND NOT s.in_run))) "                                                       \
	"  THEN 'red' "                                                                             \
	"  WHEN s.status = 'paused' OR l.ok IS NULL OR NOT $2::bool OR l.warning IS NOT NULL "      \
	"  OR EXISTS (SELECT 1 FROM repctl.quarantine q WHERE q.sync = s.name "                     \
	"    AND q.resolved_at IS NULL) "                                                           \
	"  THEN 'yellow' ELSE 'green' END AS health, "                                              \
	"l.warning AS paused_tables, b.error AS last_error "                                        \
	"FROM s "                                                                                   \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.run r WHERE r.sync = s.name AND r.ok "             \
	"  ORDER BY r.id DESC LIMIT 1) g ON true "                                                  \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.run r WHERE r.sync = s.name AND NOT r.ok "         \
	"  ORDER BY r.id DESC LIMIT 1) b ON true "                                                  \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.run r WHERE r.sync = s.name "                      \
	"  AND r.ok IS NOT NULL ORDER BY r.id DESC LIMIT 1) l ON true "                             \
	"ORDER BY s.name"

#define FOLDERS_SQL                                                                              \
	"SELECT f.name AS folder, f.status AS state, "                                           \
	"to_char(g.ended_at, 'YYYY-MM-DD HH24:MI:SS') AS last_good, "                            \
	"round(extract(epoch FROM g.ended_at - g.started_at)::numeric, 1) AS time, "             \
	"g.files || ' / ' || round(g.bytes / 1e6, 1) || ' MB' AS last_moved, "                   \
	"(SELECT coalesce(sum(conflicts), 0) FROM repctl.folder_run r WHERE r.folder = f.name) " \
	"  AS conflicts, "                                                                       \
	"to_char(b.ended_at, 'YYYY-MM-DD HH24:MI:SS') AS last_bad, "                             \
	"CASE WHEN f.status = 'inactive' THEN 'gray' WHEN l.ok = false THEN 'red' "              \
	"  WHEN l.ok IS NULL OR f.status = 'paused' THEN 'yellow' ELSE 'green' END AS health, "  \
	"b.error AS last_error "                                                                 \
	"FROM repctl.folder f "                                                                  \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.folder_run r WHERE r.folder = f.name AND r.ok " \
	"  ORDER BY r.id DESC LIMIT 1) g ON true "                                               \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.folder_run r WHERE r.folder = f.name "          \
	"  AND NOT r.ok ORDER BY r.id DESC LIMIT 1) b ON true "                                  \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.folder_run r WHERE r.folder = f.name "          \
	"  AND r.ok IS NOT NULL ORDER BY r.id DESC LIMIT 1) l ON true ORDER BY f.name"

#define NODES_SQL_BODY(P)                                                                            \
	"SELECT n.name AS node, to_char(ns.last_contact, 'YYYY-MM-DD HH24:MI:SS') AS last_contact, " \
	"coalesce(ns.failures, 0) AS failures, "                                                     \
	"CASE WHEN ns.circuit_open_until > now() THEN 'open until ' || "                             \
	"  to_char(ns.circuit_open_until, 'HH24:MI:SS') ELSE 'closed' END AS circuit, "              \
	"round(ns.clock_offset_ms::numeric, 1) AS clock_offset_ms, "                                 \
	"CASE WHEN abs(ns.clock_offset_ms) > " P "::float8 THEN 'clock offset exceeds ' || " P       \
	" || "                                                                                       \
	"  ' ms: latest/first may pick the wrong winner' END AS warning, ns.last_error "             \
	"FROM repctl.node n LEFT JOIN repctl.node_state ns ON ns.node = n.name ORDER BY n.name"
#define NODES_SQL NODES_SQL_BODY("$1")
#define NODES_SQL_J NODES_SQL_BODY("$5")

/* {"sync": {"pending": N|null}} for the syncs shown (actions.h). */
char *
status_pending_json(const struct config *cfg, PGconn *meta, const char *only)
{
	enum { QUICK_SECS = 3 };
	char err[ERRLEN];
	const char *p[1] = { only };
	struct buf b = BUF_INIT;
	/*
	 * A quick look: a node that does not answer (down, a dead VPN, a hung
	 * server) costs at most QUICK_SECS once, not connect_timeout per sync.
	 */
	struct config quick = *cfg;
	struct node_pool *pool;

	if (quick.connect_timeout > QUICK_SECS)
		quick.connect_timeout = QUICK_SECS;
	db_cap_probe(QUICK_SECS);
	/* a count that waits on a lock (DDL, VACUUM FULL on the source) gives up too */
	db_cap_statement(2 * QUICK_SECS);
	pool = pool_new(&quick, meta);
	pool_set_fail_fast(pool);
	PGresult *r = db_query(meta,
	    "SELECT name FROM repctl.sync WHERE ($1::text IS NULL OR name = $1) AND status <> "
	    "'inactive' ORDER BY name",
	    1, p, err, sizeof(err));
	int i;

	buf_putc(&b, '{');
	for (i = 0; r && i < PQntuples(r); i++) {
		struct sync_def s;
		long n = -1;

		err[0] = '\0';
		if (sync_load(meta, PQgetvalue(r, i, 0), &s, err, sizeof(err)) == 0) {
			n = sync_pending(pool, meta, &s, err, sizeof(err));
			sync_def_free(&s);
		}
		buf_printf(&b, "%s", i ? ", " : "");
		buf_json_str(&b, PQgetvalue(r, i, 0));
		if (n >= 0) {
			buf_printf(&b, ": {\"pending\": %ld}", n);
		} else {
			/* the error is for status --health's reason line */
			buf_puts(&b, ": {\"pending\": null, \"error\": ");
			buf_json_str(&b, err);
			buf_putc(&b, '}');
		}
	}
	buf_putc(&b, '}');
	PQclear(r);
	pool_free(pool);
	return buf_steal(&b);
}

/*
 * status --health: the health word of every sync (STATUS_SQL) and folder
 * (FOLDERS_SQL), with the reason behind each word that is not green.
 * $1 only this sync (then no folders), $2 coordinator running, $3 the
 * pending counts (status_health passes '{}': it contacts no node).
 */
#define HEALTH_SQL                                                                                 \
	"SELECT 'sync' AS kind, t.name, t.health, CASE t.health "                                  \
	"  WHEN 'red' THEN CASE "                                                                  \
	"    WHEN t.state = 'no worker' THEN 'no worker: the coordinator runs but this "           \
	"sync has no live worker process' "                                                        \
	"    WHEN t.state = 'stalled' THEN 'stalled: no run started in the last ' || "             \
	"      (2 * coalesce((SELECT interval_s FROM repctl.sync WHERE name = t.name), $4::int) "  \
	"      + 10) || ' s (2 x interval + 10 s)' "                                               \
	"    WHEN t.circuit = 'open' THEN 'circuit breaker open for ' || coalesce(("               \
	"      SELECT string_agg(n.node || coalesce(' (' || ns.last_error || ')', ''), ', ' "      \
	"        ORDER BY n.node) FROM repctl.sync_node n JOIN repctl.node_state ns USING (node) " \
	"      WHERE n.sync = t.name AND ns.circuit_open_until > now()), 'a node') "               \
	"    WHEN lr.ok = false THEN 'last run failed: ' || coalesce(lr.error, '(no message)') "   \
	"    ELSE 'cannot count pending changes: ' || "                                            \
	"      coalesce(nullif(p.value->>'error', ''), 'a source node is unreachable') END "       \
	"  WHEN 'yellow' THEN CASE "                                                               \
	"    WHEN t.state = 'paused' THEN 'paused' "                                               \
	"    WHEN lr.ok IS NULL THEN 'no run yet' "                                                \
	"    WHEN t.paused_tables IS NOT NULL THEN 'tables paused: ' || t.paused_tables "          \
	"    ELSE 'coordinator not running' END "                                                  \
	"  END AS reason "                                                                         \
	"FROM (" STATUS_SQL ") t "                                                                 \
	"LEFT JOIN LATERAL (SELECT r.ok, r.error FROM repctl.run r WHERE r.sync = t.name "         \
	"  AND r.ok IS NOT NULL ORDER BY r.id DESC LIMIT 1) lr ON true "                           \
	"LEFT JOIN jsonb_each($3::jsonb) p ON p.key = t.name "                                     \
	"UNION ALL "                                                                               \
	"SELECT 'folder', f.folder, f.health, CASE f.health "                                      \
	"  WHEN 'red' THEN 'last run failed: ' || coalesce(f.last_error, '(no message)') "         \
	"  WHEN 'yellow' THEN CASE WHEN f.state = 'paused' THEN 'paused' ELSE 'no run yet' END "   \
	"  END "                                                                                   \
	"FROM (" FOLDERS_SQL ") f WHERE $1::text IS NULL"

static const char *const health_word[] = { "green", "yellow", "red", "unknown" };

/*
 * Write "WORD: reason" into line as exactly one line, without the newline
 * (whitespace runs folded, capped); returns h.
 */
static int health_fmt(char *line, size_t linelen, enum health h, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
health_fmt(char *line, size_t linelen, enum health h, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	const char *p;
	int space = 0;
	size_t n = 0;
	struct buf b = BUF_INIT;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(&b, "%s: ", health_word[h]);
	for (p = msg; *p && n < 900; p++) {
		if (isspace((unsigned char)*p)) {
			space = 1;
			continue;
		}
		if (space && n > 0)
			buf_putc(&b, ' ');
		space = 0;
		buf_putc(&b, *p);
		n++;
	}
	if (*p)
		buf_puts(&b, "...");
	snprintf(line, linelen, "%s", b.data);
	buf_free(&b);
	return (int)h;
}

static void
count_words(struct buf *b, int n, const char *what)
{
	buf_printf(b, "%s%d %s%s", b->len ? ", " : "", n, what, n == 1 ? "" : "s");
}

int
status_health_eval(
    const struct config *cfg, PGconn *meta, const char *only, char *line, size_t linelen)
{
	char err[ERRLEN], ivl[16];
	const char *params[4];
	struct coord_info ci;
	PGresult *r;
	int i, nsync = 0, nfolder = 0, ngray = 0, nworst = 0;
	enum health worst = H_GREEN;
	const char *wkind = NULL, *wname = NULL, *wreason = NULL;
	struct buf b = BUF_INIT;
	int rc;

	if (only) {
		int e = meta_exists(
		    meta, "SELECT 1 FROM repctl.sync WHERE name = $1", only, err, sizeof(err));

		if (e != 1)
			return e < 0 ? health_fmt(line, linelen, H_UNKNOWN, "%s", err)
				     : health_fmt(line, linelen, H_UNKNOWN, "no sync '%s'", only);
	}
	if (coordinator_find(cfg, meta, &ci, err, sizeof(err)) < 0)
		return health_fmt(line, linelen, H_UNKNOWN, "%s", err);
	if (!ci.running)
		return health_fmt(line, linelen, H_RED,
		    "coordinator not running (no coordinator holds the metadata database's lock, no "
		    "live process in %s)",
		    cfg->pid_file);
	/*
	 * No node is contacted: what the coordinator last observed (the runs,
	 * the circuit breakers in repctl.node_state) is the answer, so it comes
	 * in milliseconds whatever the state of the fleet.  A source that cannot
	 * be reached fails its runs, which makes the sync red with the error.
	 */
	snprintf(ivl, sizeof(ivl), "%d", cfg->sync_interval);
	params[0] = only;
	params[1] = "true";
	params[2] = "{}";
	params[3] = ivl;
	r = db_query(meta, HEALTH_SQL, 4, params, err, sizeof(err));
	if (r == NULL)
		return health_fmt(line, linelen, H_UNKNOWN, "%s", err);
	for (i = 0; i < PQntuples(r); i++) {
		const char *kind = PQgetvalue(r, i, 0), *word = PQgetvalue(r, i, 2);
		enum health h;

		if (strcmp(word, "gray") == 0) {
			ngray++;
			continue;
		}
		if (strcmp(kind, "sync") == 0)
			nsync++;
		else
			nfolder++;
		h = strcmp(word, "green") == 0    ? H_GREEN
		    : strcmp(word, "yellow") == 0 ? H_YELLOW
		    : strcmp(word, "red") == 0    ? H_RED
						  : H_UNKNOWN;
		if (h > worst) {
			worst = h;
			nworst = 0;
			wkind = kind;
			wname = PQgetvalue(r, i, 1);
			wreason = PQgetisnull(r, i, 3) ? word : PQgetvalue(r, i, 3);
		}
		if (h == worst)
			nworst++;
	}
	if (worst == H_GREEN && nsync + nfolder == 0) {
		/* a fresh primary before its first sync: healthy, and says why it is idle */
		rc = health_fmt(line, linelen, H_GREEN,
		    "idle: coordinator running (%s), no active sync or folder yet%s; add one with "
		    "'repctl add sync' or 'repctl onboard'",
		    ci.where, ngray ? " (all inactive)" : "");
	} else if (worst == H_GREEN) {
		if (nsync)
			count_words(&b, nsync, "sync");
		if (nfolder)
			count_words(&b, nfolder, "folder");
		buf_printf(&b, " healthy");
		if (ngray)
			buf_printf(&b, ", %d inactive", ngray);
		rc = health_fmt(line, linelen, H_GREEN, "%s (coordinator %s)", b.data, ci.where);
	} else {
		if (nworst > 1)
			buf_printf(&b, " (and %d more %s)", nworst - 1, health_word[worst]);
		rc = health_fmt(line, linelen, worst, "%s %s: %s%s", wkind, wname, wreason,
		    b.len ? b.data : "");
	}
	buf_free(&b);
	PQclear(r);
	return rc;
}

int
status_json(const struct config *cfg, PGconn *meta, const char *only, const char *pending,
    char **out, char *err, size_t errlen)
{
	char warn[32], pidtxt[24], ivl[16];
	struct coord_info ci;
	PGresult *r;

	if (coordinator_find(cfg, meta, &ci, err, errlen) < 0)
		return ACT_ERROR;
	snprintf(ivl, sizeof(ivl), "%d", cfg->sync_interval);
	snprintf(warn, sizeof(warn), "%d", cfg->clock_skew_warn_ms);
	snprintf(pidtxt, sizeof(pidtxt), "%ld", ci.pid);
	{
		const char *jp[7] = { only, ci.running ? "true" : "false", pending, ivl, warn,
			pidtxt, ci.where };

		r = db_query(meta,
		    "SELECT jsonb_build_object('coordinator', jsonb_build_object('running', "
		    "$2::bool, 'pid', nullif($6::bigint, 0), 'where', nullif($7, '')),"
		    "'syncs', (SELECT coalesce(jsonb_agg(t), '[]') FROM (" STATUS_SQL ") t), "
		    "'nodes', (SELECT coalesce(jsonb_agg(n), '[]') FROM (" NODES_SQL_J ") n), "
		    "'folders', (SELECT coalesce(jsonb_agg(f), '[]') FROM (" FOLDERS_SQL ") f))",
		    7, jp, err, errlen);
	}
	if (r == NULL)
		return ACT_ERROR;
	*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return ACT_OK;
}

PGresult *
status_syncs_query(PGconn *meta, const char *const params[4], char *err, size_t errlen)
{
	return db_query(meta, STATUS_SQL, 4, params, err, errlen);
}

PGresult *
status_nodes_query(PGconn *meta, const char *warn_ms, char *err, size_t errlen)
{
	const char *p[1] = { warn_ms };

	return db_query(meta, NODES_SQL, 1, p, err, errlen);
}

PGresult *
status_folders_query(PGconn *meta, char *err, size_t errlen)
{
	return db_query(meta, FOLDERS_SQL, 0, NULL, err, errlen);
}

int
health_format(char *line, size_t linelen, enum health h, const char *msg)
{
	return health_fmt(line, linelen, h, "%s", msg);
}

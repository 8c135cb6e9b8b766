/*
 * cmd_status.c - status [SYNC]: is replication healthy?
 *
 * Bucardo's columns (name, state, last good, time, last I/U/D, last bad,
 * time) from the run history, plus what Bucardo lacks: pending (keys
 * changed on a source and not yet applied to a target, counted on the
 * sources now), lag (how long the oldest of those has waited), conflicts,
 * the circuit breaker, and one health word: green (all good), yellow
 * (paused, no run yet, or the coordinator is not running), red (the last
 * run failed, a node is unreachable or its circuit is open), gray
 * (inactive).  Then one line per node: last contact, failures, circuit and
 * clock offset, with a warning when the offset could distort `latest`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "meta.h"
#include "output.h"
#include "sync.h"

#define STATUS_SQL                                                                                  \
	"WITH p AS (SELECT key AS sync, (value->>'pending')::bigint AS pending "                    \
	"  FROM jsonb_each($3::jsonb)), "                                                           \
	"s AS (SELECT s.*, p.pending, "                                                             \
	"  (SELECT min(updated_at) FROM repctl.position x WHERE x.sync = s.name) AS pos_at, "       \
	"  EXISTS (SELECT 1 FROM repctl.sync_node n JOIN repctl.node_state ns USING (node) "        \
	"    WHERE n.sync = s.name AND ns.circuit_open_until > now()) AS circuit_open "             \
	"  FROM repctl.sync s LEFT JOIN p ON p.sync = s.name "                                      \
	"  WHERE $1::text IS NULL OR s.name = $1) "                                                 \
	"SELECT s.name, "                                                                           \
	"CASE WHEN s.status <> 'active' THEN s.status WHEN $2::bool THEN 'running' "                \
	"  ELSE 'stopped' END AS state, "                                                           \
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
	"CASE WHEN s.circuit_open THEN 'open' ELSE 'closed' END AS circuit, "                       \
	"CASE WHEN s.status = 'inactive' THEN 'gray' "                                              \
	"  WHEN s.circuit_open OR l.ok = false OR (s.pending IS NULL AND $2::bool) THEN 'red' "     \
	"  WHEN s.status = 'paused' OR l.ok IS NULL OR NOT $2::bool OR l.warning IS NOT NULL "      \
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

/* {"sync": {"pending": N|null}} for the syncs shown. */
static char *
pending_json(struct cli_ctx *ctx, const char *only)
{
	char err[ERRLEN];
	const char *p[1] = { only };
	struct buf b = BUF_INIT;
	struct node_pool *pool = pool_new(ctx->cfg, ctx->meta);
	PGresult *r = db_query(ctx->meta,
	    "SELECT name FROM repctl.sync WHERE ($1::text IS NULL OR name = $1) AND status <> "
	    "'inactive' ORDER BY name",
	    1, p, err, sizeof(err));
	int i;

	buf_putc(&b, '{');
	for (i = 0; r && i < PQntuples(r); i++) {
		struct sync_def s;
		long n = -1;

		if (sync_load(ctx->meta, PQgetvalue(r, i, 0), &s, err, sizeof(err)) == 0) {
			n = sync_pending(pool, ctx->meta, &s, err, sizeof(err));
			sync_def_free(&s);
		}
		buf_printf(&b, "%s", i ? ", " : "");
		buf_json_str(&b, PQgetvalue(r, i, 0));
		if (n >= 0)
			buf_printf(&b, ": {\"pending\": %ld}", n);
		else
			buf_puts(&b, ": {\"pending\": null}");
	}
	buf_putc(&b, '}');
	PQclear(r);
	pool_free(pool);
	return buf_steal(&b);
}

CMD_HANDLER(cmd_status)
{
	char err[ERRLEN], warn[32], pidtxt[24];
	const char *only = args->nwords ? args->words[0] : NULL;
	long pid = coordinator_pid(ctx->cfg);
	char *pend;
	const char *params[3];
	const char *np[1] = { warn };
	int e, rc = 1;
	PGresult *r = NULL, *nodes = NULL;

	if (only) {
		e = meta_exists(
		    ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", only, err, sizeof(err));
		if (e != 1) {
			if (e < 0)
				cmd_error("%s", err);
			else
				cmd_error(
				    "no sync '%s'\nhint: 'repctl list syncs' shows them", only);
			return 1;
		}
	}
	pend = pending_json(ctx, only);
	params[0] = only;
	params[1] = pid ? "true" : "false";
	params[2] = pend;
	snprintf(warn, sizeof(warn), "%d", ctx->cfg->clock_skew_warn_ms);
	snprintf(pidtxt, sizeof(pidtxt), "%ld", pid);
	if (ctx->json) {
		const char *jp[5] = { only, params[1], pend, pidtxt, warn };

		r = db_query(ctx->meta,
		    "SELECT jsonb_build_object('coordinator', jsonb_build_object('running', "
		    "$2::bool, 'pid', nullif($4::bigint, 0)), "
		    "'syncs', (SELECT coalesce(jsonb_agg(t), '[]') FROM (" STATUS_SQL ") t), "
		    "'nodes', (SELECT coalesce(jsonb_agg(n), '[]') FROM (" NODES_SQL_J ") n), "
		    "'folders', (SELECT coalesce(jsonb_agg(f), '[]') FROM (" FOLDERS_SQL ") f))",
		    5, jp, err, sizeof(err));
		if (r == NULL)
			goto fail;
		printf("%s\n", PQgetvalue(r, 0, 0));
		rc = 0;
		goto out;
	}
	printf("coordinator: %s", pid ? "running" : "not running");
	if (pid)
		printf(" (pid %ld)", pid);
	printf("\n");
	r = db_query(ctx->meta, STATUS_SQL, 3, params, err, sizeof(err));
	if (r == NULL)
		goto fail;
	if (only) {
		int f;

		for (f = 0; f < PQnfields(r); f++)
			if (PQntuples(r) && !PQgetisnull(r, 0, f))
				printf("%-12s %s\n", PQfname(r, f), PQgetvalue(r, 0, f));
	} else {
		output_table_n(stdout, r, PQnfields(r) - 2); /* paused, error: detail view */
	}
	nodes = db_query(ctx->meta, NODES_SQL, 1, np, err, sizeof(err));
	if (nodes == NULL)
		goto fail;
	printf("\n");
	output_table(stdout, nodes);
	if (!only) {
		PGresult *fr = db_query(ctx->meta, FOLDERS_SQL, 0, NULL, err, sizeof(err));

		if (fr == NULL)
			goto fail;
		if (PQntuples(fr) > 0) {
			printf("\n");
			output_table_n(stdout, fr, PQnfields(fr) - 1);
		}
		PQclear(fr);
	}
	rc = 0;
	goto out;
fail:
	cmd_error("%s", err);
out:
	PQclear(r);
	PQclear(nodes);
	free(pend);
	return rc;
}

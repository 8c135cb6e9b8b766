/*
 * cmd_control.c - start, stop, reload, kick, pause, resume: talking to the
 * coordinator through the metadata database (its lock says who runs, NOTIFY
 * repctl_control carries stop, reload, kicks and pauses), so they work from
 * any host, container or user; signals through the pid file only when the
 * metadata database cannot be reached.
 *
 * The doing of kick, pause, resume and `conflicts --json` is in ctl_kick,
 * ctl_set_status and conflicts_json (actions.h, src/fleet/control.c), with
 * ctl_folder_kick: the web console calls the same functions, so the two
 * never disagree.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "meta.h"
#include "output.h"
#include "parse.h"
#include "xmalloc.h"

CMD_HANDLER(cmd_start)
{
	return coordinator_start(ctx->cfg, ctx->config_path, args_has(args, "foreground"));
}

/* The metadata database for a control command, or NULL (the pid file is the fallback). */
static PGconn *
control_meta(struct cli_ctx *ctx)
{
	char err[ERRLEN];

	if (ctx->meta == NULL)
		ctx->meta = meta_connect(ctx->cfg, err, sizeof(err));
	return ctx->meta;
}

CMD_HANDLER(cmd_stop)
{
	char err[ERRLEN];
	struct coord_info ci, now;
	PGconn *meta = control_meta(ctx);
	int r = coordinator_tell(ctx->cfg, meta, "stop", &ci, err, sizeof(err)), i;

	(void)args;
	if (r == 0) {
		printf("the coordinator is not running\n");
		return 0;
	}
	if (r < 0) {
		cmd_error("%s", err);
		return 1;
	}
	/* gone when it released its lock (and its pid file) */
	for (i = 0; i < 600; i++) {
		usleep(100000);
		if (coordinator_find(ctx->cfg, meta, &now, err, sizeof(err)) < 0)
			meta = NULL;
		if (!now.running)
			break;
	}
	if (now.running) {
		cmd_error("the coordinator (%s) did not stop within 60s; see its log", ci.where);
		return 1;
	}
	printf("coordinator stopped (%s)\n", ci.where);
	return 0;
}

void
cmd_tell_reload(struct cli_ctx *ctx)
{
	char err[ERRLEN];
	struct coord_info ci;

	if (coordinator_tell(ctx->cfg, ctx->meta, "reload", &ci, err, sizeof(err)) == 1)
		printf("coordinator (%s) reloading to take it up\n", ci.where);
}

CMD_HANDLER(cmd_reload)
{
	char err[ERRLEN];
	struct coord_info ci;
	int r = coordinator_tell(ctx->cfg, control_meta(ctx), "reload", &ci, err, sizeof(err));

	(void)args;
	if (r == 0)
		cmd_error("the coordinator is not running (no coordinator holds the metadata "
			  "database's lock, no live pid in %s)\nhint: start it with 'repctl start'",
		    ctx->cfg->pid_file);
	else if (r < 0)
		cmd_error("%s", err);
	else
		printf("coordinator (%s) reloading its syncs\n", ci.where);
	return r == 1 ? 0 : 1;
}

static int
sync_must_exist(struct cli_ctx *ctx, const char *name)
{
	char err[ERRLEN];
	int e = meta_exists(
	    ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", name, err, sizeof(err));

	if (e != 1)
		cmd_lookup_error("sync", name, e < 0 ? err : NULL);
	return e == 1 ? 0 : -1;
}

CMD_HANDLER(cmd_kick)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *tmo = args_get(args, "timeout");
	long timeout = 300;
	char *since = NULL;
	int rc = 1;
	time_t end;

	if (tmo && parse_long(tmo, 1, 86400, &timeout) < 0) {
		cmd_error("--timeout=%s: give seconds from 1 to 86400", tmo);
		return 1;
	}
	if (ctl_kick(ctx->cfg, ctx->meta, name, &since, err, sizeof(err)) != ACT_OK) {
		cmd_error("%s", err);
		goto out;
	}
	if (!args_has(args, "wait")) {
		printf("kicked sync '%s'\n", name);
		rc = 0;
		goto out;
	}
	end = time(NULL) + timeout;
	while (time(NULL) < end) {
		const char *p[2] = { name, since };
		PGresult *r = db_query(ctx->meta,
		    "SELECT ok, inserts, updates, deletes, conflicts, coalesce(error, ''), "
		    "round(extract(epoch FROM ended_at - started_at)::numeric, 3) "
		    "FROM repctl.run WHERE sync = $1 AND started_at >= $2::timestamptz "
		    "AND ended_at IS NOT NULL ORDER BY id LIMIT 1",
		    2, p, err, sizeof(err));

		if (r == NULL) {
			cmd_error("%s", err);
			goto out;
		}
		if (PQntuples(r) == 1) {
			int ok = PQgetvalue(r, 0, 0)[0] == 't';

			printf("sync '%s': %s in %ss, I/U/D %s/%s/%s, %s conflict(s)%s%s\n", name,
			    ok ? "good" : "bad", PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 1),
			    PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4),
			    ok ? "" : ": ", PQgetvalue(r, 0, 5));
			rc = ok ? 0 : 1;
			PQclear(r);
			goto out;
		}
		PQclear(r);
		usleep(50000);
	}
	cmd_error("sync '%s' did not finish a run within %lds; see 'repctl status %s' and the log",
	    name, timeout, name);
out:
	free(since);
	return rc;
}

static int
set_status(struct cli_ctx *ctx, const char *name, const char *status)
{
	char err[ERRLEN];

	if (ctl_set_status(ctx->meta, name, status, err, sizeof(err)) != ACT_OK) {
		cmd_error("%s", err);
		return 1;
	}
	printf("sync '%s' %s\n", name, strcmp(status, "paused") == 0 ? "paused" : "resumed");
	return 0;
}

CMD_HANDLER(cmd_pause)
{
	(void)args;
	return set_status(ctx, args->words[0], "paused");
}

CMD_HANDLER(cmd_resume)
{
	(void)args;
	return set_status(ctx, args->words[0], "active");
}

CMD_HANDLER(cmd_conflicts)
{
	const char *only = args->nwords ? args->words[0] : NULL;
	const char *since = args_get(args, "since");
	const char *p[2] = { only, since };

	if (only && sync_must_exist(ctx, only) < 0)
		return 1;
	if (ctx->json) {
		char err[ERRLEN], *js = NULL;

		if (conflicts_json(ctx->meta, only, NULL, since, 0, &js, err, sizeof(err)) !=
		    ACT_OK) {
			cmd_error("%s", err);
			return 1;
		}
		printf("%s\n", js);
		free(js);
		return 0;
	}
	{
		char err[ERRLEN];
		PGresult *q = db_query(ctx->meta,
		    "SELECT id, to_char(last_at, 'YYYY-MM-DD HH24:MI:SS') AS last_try, sync, "
		    "source || ' -> ' || target AS edge, format('%I.%I', schema_name, table_name) AS "
		    "\"table\", pk::text AS key, attempts, coalesce(resolution, 'retried every run') "
		    "AS state, reason FROM repctl.quarantine WHERE resolved_at IS NULL "
		    "AND ($1::text IS NULL OR sync = $1) ORDER BY id",
		    1, p, err, sizeof(err));

		if (q == NULL) {
			cmd_error("%s", err);
			return 1;
		}
		if (PQntuples(q) > 0) {
			printf("quarantined rows (settle with 'repctl conflicts resolve ID "
			       "keep=incoming|existing'):\n");
			output_table(stdout, q);
			printf("\nresolved conflicts:\n");
		}
		PQclear(q);
	}
	return output_query(ctx->meta,
		   "SELECT to_char(resolved_at, 'YYYY-MM-DD HH24:MI:SS') AS at, sync, "
		   "format('%I.%I', schema_name, table_name) AS \"table\", pk::text AS key, "
		   "remote_node || ' -> ' || local_node AS edge, winner, rule "
		   "FROM repctl.conflict WHERE ($1::text IS NULL OR sync = $1) "
		   "AND ($2::timestamptz IS NULL OR resolved_at >= $2::timestamptz) ORDER BY id",
		   2, p, 0) < 0
	    ? 1
	    : 0;
}

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
 *
 * status --health is the check for monitors and Docker's HEALTHCHECK: one
 * line on stdout ("green: 2 syncs, 1 folder healthy", "red: sync x: last
 * run failed: ...") and the exit status 0 green, 1 yellow, 2 red, 3
 * unknown (configuration unreadable, metadata database unreachable, schema
 * not installed).  It folds the same health words (worst wins; gray does
 * not count), and a coordinator that is not running is red.  It contacts
 * no node: it reads what the coordinator last observed (repctl.run,
 * repctl.node_state), so it answers in milliseconds with nodes down.  The command
 * therefore loads the configuration and opens the metadata database here,
 * not in the dispatcher, so that those failures become "unknown".
 *
 * status_json, status_pending_json and status_health_eval (actions.h,
 * src/fleet/status.c) build the answers; the web console serves the same
 * ones (/api/v1/status, /healthz, /metrics).  This file parses and prints.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "meta.h"
#include "output.h"
#include "sync.h"
#include "xmalloc.h"

/* Print "WORD: reason" as exactly one line (status --health before the metadata is read). */
static int health_line(enum health h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
health_line(enum health h, const char *fmt, ...)
{
	char msg[1024], line[1100];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	health_format(line, sizeof(line), h, msg);
	printf("%s\n", line);
	fflush(stdout);
	return (int)h;
}

CMD_HANDLER(cmd_status)
{
	char err[ERRLEN], warn[32], ivl[16];
	const char *only = args->nwords ? args->words[0] : NULL;
	int health = args_has(args, "health");
	struct coord_info ci;
	char *pend;
	const char *params[4];
	const char *np[1] = { warn };
	int e, rc = 1;
	PGresult *r = NULL, *nodes = NULL;

	/*
	 * The grammar table gives status no CMD_CONFIG / CMD_META: --health
	 * must turn an unreadable configuration or an unreachable or
	 * uninstalled metadata database into "unknown" (exit 3), so both are
	 * set up here; ctx->cfg and ctx->meta are freed by main as usual.
	 */
	if (ctx->cfg == NULL) {
		ctx->cfg = config_load(ctx->config_path, getenv, err, sizeof(err));
		if (ctx->cfg == NULL) {
			if (health)
				return health_line(H_UNKNOWN, "%s", err);
			cmd_error("%s", err);
			return 1;
		}
		db_use_config(ctx->cfg);
	}
	if (ctx->meta == NULL) {
		ctx->meta = meta_connect(ctx->cfg, err, sizeof(err));
		if (ctx->meta == NULL ||
		    meta_check_installed(ctx->meta, ctx->cfg, err, sizeof(err)) < 0) {
			if (health)
				return health_line(H_UNKNOWN, "%s", err);
			cmd_error("%s", err);
			return 1;
		}
	}
	if (health) {
		char line[1100];

		rc = status_health_eval(ctx->cfg, ctx->meta, only, line, sizeof(line));
		printf("%s\n", line);
		fflush(stdout);
		return rc;
	}
	if (coordinator_find(ctx->cfg, ctx->meta, &ci, err, sizeof(err)) < 0) {
		cmd_error("%s", err);
		return 1;
	}

	if (only) {
		e = meta_exists(
		    ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", only, err, sizeof(err));
		if (e != 1) {
			cmd_lookup_error("sync", only, e < 0 ? err : NULL);
			return 1;
		}
	}
	pend = status_pending_json(ctx->cfg, ctx->meta, only);
	params[0] = only;
	params[1] = ci.running ? "true" : "false";
	params[2] = pend;
	snprintf(ivl, sizeof(ivl), "%d", ctx->cfg->sync_interval);
	params[3] = ivl;
	snprintf(warn, sizeof(warn), "%d", ctx->cfg->clock_skew_warn_ms);
	if (ctx->json) {
		char *js = NULL;

		if (status_json(ctx->cfg, ctx->meta, only, pend, &js, err, sizeof(err)) != ACT_OK)
			goto fail;
		printf("%s\n", js);
		free(js);
		rc = 0;
		goto out;
	}
	printf("coordinator: %s", ci.running ? "running" : "not running");
	if (ci.running)
		printf(" (%s)", ci.where);
	printf("\n");
	r = status_syncs_query(ctx->meta, params, err, sizeof(err));
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
	nodes = status_nodes_query(ctx->meta, np[0], err, sizeof(err));
	if (nodes == NULL)
		goto fail;
	printf("\n");
	output_table(stdout, nodes);
	if (!only) {
		PGresult *fr = status_folders_query(ctx->meta, err, sizeof(err));

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

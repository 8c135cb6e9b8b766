/*
 * cmd_status.c - status [SYNC]: Bucardo's columns from the run history.
 *
 * Columns: name, state, last good, time, last I/U/D, last bad, time, and a
 * health word (green: last run good; yellow: no run yet or paused; red: the
 * last run failed; gray: inactive).  The state also says whether a
 * coordinator is running, from the pid file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "meta.h"
#include "output.h"

#define STATUS_SQL                                                                        \
	"SELECT s.name, "                                                                     \
	"CASE WHEN s.status <> 'active' THEN s.status WHEN $2::bool THEN 'running' "          \
	"  ELSE 'stopped' END AS state, "                                                     \
	"to_char(g.ended_at, 'YYYY-MM-DD HH24:MI:SS') AS last_good, "                         \
	"CASE WHEN g.id IS NOT NULL THEN round(extract(epoch FROM g.ended_at - g.started_at)::numeric, 3) " \
	"  END AS time, "                                                                     \
	"CASE WHEN g.id IS NOT NULL THEN g.inserts || '/' || g.updates || '/' || g.deletes END " \
	"  AS last_i_u_d, "                                                                   \
	"to_char(b.ended_at, 'YYYY-MM-DD HH24:MI:SS') AS last_bad, "                          \
	"CASE WHEN b.id IS NOT NULL THEN round(extract(epoch FROM b.ended_at - b.started_at)::numeric, 3) " \
	"  END AS bad_time, "                                                                 \
	"(SELECT count(*) FROM repctl.conflict c WHERE c.sync = s.name) AS conflicts, "       \
	"CASE WHEN s.status = 'inactive' THEN 'gray' WHEN s.status = 'paused' THEN 'yellow' " \
	"  WHEN l.ok IS NULL THEN 'yellow' WHEN l.ok THEN 'green' ELSE 'red' END AS health "   \
	"FROM repctl.sync s "                                                                 \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.run r WHERE r.sync = s.name AND r.ok "      \
	"  ORDER BY r.id DESC LIMIT 1) g ON true "                                            \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.run r WHERE r.sync = s.name AND NOT r.ok "  \
	"  ORDER BY r.id DESC LIMIT 1) b ON true "                                            \
	"LEFT JOIN LATERAL (SELECT * FROM repctl.run r WHERE r.sync = s.name "                \
	"  AND r.ok IS NOT NULL ORDER BY r.id DESC LIMIT 1) l ON true "                       \
	"WHERE $1::text IS NULL OR s.name = $1 ORDER BY s.name"

CMD_HANDLER(cmd_status)
{
	char err[ERRLEN];
	const char *only = args->nwords ? args->words[0] : NULL;
	long pid = coordinator_pid(ctx->cfg);
	const char *params[2] = { only, pid ? "true" : "false" };
	int e;

	if (only) {
		e = meta_exists(ctx->meta, "SELECT 1 FROM repctl.sync WHERE name = $1", only, err,
		    sizeof(err));
		if (e != 1) {
			if (e < 0)
				cmd_error("%s", err);
			else
				cmd_error("no sync '%s'\nhint: 'repctl list syncs' shows them", only);
			return 1;
		}
	}
	if (!ctx->json)
		printf("coordinator: %s", pid ? "running" : "not running");
	if (!ctx->json && pid)
		printf(" (pid %ld)", pid);
	if (!ctx->json)
		printf("\n");
	return output_query(ctx->meta, STATUS_SQL, 2, params, ctx->json) < 0 ? 1 : 0;
}

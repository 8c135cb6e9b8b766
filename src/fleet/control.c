/*
 * control.c - kick, pause, resume, a folder's "sync now" and the conflict
 * log as JSON: what `repctl kick|pause|resume|conflicts --json` and the web
 * console both do (actions.h), through the metadata database (NOTIFY
 * repctl_control reaches the coordinator from any host or container).
 * Nothing here prints or exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "buf.h"
#include "config.h"
#include "coordlock.h"
#include "db.h"
#include "meta.h"
#include "xmalloc.h"

/* ACT_OK when sync (what: "sync" or "folder") exists, else ACT_NOTFOUND or ACT_ERROR. */
static int
act_exists(PGconn *meta, const char *what, const char *name, char *err, size_t errlen)
{
	int e = meta_exists(meta,
	    strcmp(what, "folder") == 0 ? "SELECT 1 FROM repctl.folder WHERE name = $1"
					: "SELECT 1 FROM repctl.sync WHERE name = $1",
	    name, err, errlen);

	if (e == 0)
		snprintf(err, errlen, "no %s '%s'\nhint: 'repctl list %ss' shows them", what, name,
		    what);
	return e == 1 ? ACT_OK : e == 0 ? ACT_NOTFOUND : ACT_ERROR;
}

/* ACT_OK when a coordinator runs, else ACT_REFUSED or ACT_ERROR (err). */
static int
act_running(const struct config *cfg, PGconn *meta, char *err, size_t errlen)
{
	struct coord_info ci;

	if (coordinator_find(cfg, meta, &ci, err, errlen) < 0)
		return ACT_ERROR;
	if (!ci.running) {
		snprintf(err, errlen,
		    "the coordinator is not running (no coordinator holds the metadata "
		    "database's lock, no live pid in %s)\nhint: start it with 'repctl start'",
		    cfg->pid_file);
		return ACT_REFUSED;
	}
	return ACT_OK;
}

static int
act_notify(PGconn *meta, const char *payload, char *err, size_t errlen)
{
	const char *p[1] = { payload };

	if (db_execp(meta, "SELECT pg_catalog.pg_notify('repctl_control', $1)", 1, p, err, errlen) <
	    0)
		return ACT_ERROR;
	return ACT_OK;
}

int
ctl_kick(const struct config *cfg, PGconn *meta, const char *sync, char **since, char *err,
    size_t errlen)
{
	char payload[128];
	int rc;

	if ((rc = act_exists(meta, "sync", sync, err, errlen)) != ACT_OK ||
	    (rc = act_running(cfg, meta, err, errlen)) != ACT_OK)
		return rc;
	if (since != NULL) {
		*since = db_value(meta, "SELECT now()::text", 0, NULL, err, errlen);
		if (*since == NULL)
			return ACT_ERROR;
	}
	snprintf(payload, sizeof(payload), "kick:%s", sync);
	return act_notify(meta, payload, err, errlen);
}

int
ctl_set_status(PGconn *meta, const char *sync, const char *status, char *err, size_t errlen)
{
	char payload[128];
	const char *p[2] = { sync, status };
	int rc = act_exists(meta, "sync", sync, err, errlen);

	if (rc != ACT_OK)
		return rc;
	if (db_execp(meta, "UPDATE repctl.sync SET status = $2, updated_at = now() WHERE name = $1",
		2, p, err, errlen) < 0)
		return ACT_ERROR;
	snprintf(payload, sizeof(payload), "sync:%s", sync);
	return act_notify(meta, payload, err, errlen);
}

int
ctl_folder_kick(
    const struct config *cfg, PGconn *meta, const char *folder, char *err, size_t errlen)
{
	char payload[128];
	int rc;

	if ((rc = act_exists(meta, "folder", folder, err, errlen)) != ACT_OK ||
	    (rc = act_running(cfg, meta, err, errlen)) != ACT_OK)
		return rc;
	snprintf(payload, sizeof(payload), "folder:%s", folder);
	return act_notify(meta, payload, err, errlen);
}

#define CONFLICTS_JSON_SQL                                                                    \
	"SELECT id, resolved_at, sync, schema_name, table_name, pk, local_node, "             \
	"local_row, remote_node, remote_row, winner, rule FROM repctl.conflict "              \
	"WHERE ($1::text IS NULL OR sync = $1) "                                              \
	"AND ($2::timestamptz IS NULL OR resolved_at >= $2::timestamptz) "                    \
	"AND ($3::text IS NULL OR table_name = $3 OR schema_name || '.' || table_name = $3) " \
	"ORDER BY id"

int
conflicts_json(PGconn *meta, const char *sync, const char *table, const char *since, long limit,
    char **out, char *err, size_t errlen)
{
	char lim[24];
	const char *p[4] = { sync, since, table, lim };
	PGresult *r;

	snprintf(lim, sizeof(lim), "%ld", limit);
	/* the same wrapping as output_query's --json, so the CLI prints the same bytes */
	r = db_query(meta,
	    limit > 0 ? "SELECT coalesce(json_agg(t), '[]') FROM (SELECT * FROM "
			"(" CONFLICTS_JSON_SQL " DESC LIMIT $4::bigint) x ORDER BY id) t"
		      : "SELECT coalesce(json_agg(t), '[]') FROM (" CONFLICTS_JSON_SQL
			") t WHERE $4::bigint IS NOT NULL",
	    4, p, err, errlen);
	if (r == NULL)
		return ACT_ERROR;
	*out = xstrdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return ACT_OK;
}

/*
 * meta.c - the metadata database of the coordinator.
 *
 * The schema is built by the migrations sql/meta_NNN.sql (compiled in), one
 * per version; `repctl install` applies those above the recorded version in
 * one transaction under an advisory lock, so two installs racing, or an
 * install failing half-way, leave the previous version intact.  Commands
 * refuse to run against a schema of another version and say what to do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "meta.h"
#include "sql_embed.h"
#include "xmalloc.h"

/* Arbitrary constant for pg_advisory_xact_lock: "repctl" in ASCII. */
#define INSTALL_LOCK "125780311700579"

static int
is_migration(const char *name, int *version)
{
	int v;

	if (sscanf(name, "meta_%3d.sql", &v) != 1)
		return 0;
	*version = v;
	return 1;
}

int
meta_schema_version(void)
{
	const struct sql_file *f;
	int v, max = 0;

	for (f = sql_files; f->name; f++)
		if (is_migration(f->name, &v) && v > max)
			max = v;
	return max;
}

PGconn *
meta_connect(const struct config *cfg, char *err, size_t errlen)
{
	char inner[ERRLEN];
	PGconn *c = db_connect(cfg->meta, "repctl", cfg->secrets_file, NULL, cfg->connect_timeout,
	    inner, sizeof(inner));

	if (c == NULL) {
		char *red = db_conninfo_redact(cfg->meta);

		snprintf(err, errlen,
		    "cannot connect to the metadata database (%s): %s\n"
		    "hint: set 'meta' in the configuration file or REPCTL_META to the "
		    "conninfo of the coordinator's database",
		    red, inner);
		free(red);
	}
	db_set_label(c, "the metadata database");
	return c;
}

/* Installed version, 0 when the schema is absent, -1 on error. */
static int
installed_version(PGconn *meta, char *err, size_t errlen)
{
	char *v = db_value(meta,
	    "SELECT CASE WHEN pg_catalog.to_regclass('repctl.schema_version') IS NULL "
	    "THEN 0 ELSE -1 END",
	    0, NULL, err, errlen);
	int ver;

	if (v == NULL)
		return -1;
	ver = atoi(v);
	free(v);
	if (ver == 0)
		return 0;
	v = db_value(meta, "SELECT coalesce(max(version), 0) FROM repctl.schema_version", 0, NULL,
	    err, errlen);
	if (v == NULL)
		return -1;
	ver = atoi(v);
	free(v);
	return ver;
}

int
meta_check_installed(PGconn *meta, const struct config *cfg, char *err, size_t errlen)
{
	int v = installed_version(meta, err, errlen);
	int want = meta_schema_version();
	char *red;

	if (v < 0)
		return -1;
	if (v == want)
		return 0;
	red = db_conninfo_redact(cfg->meta);
	if (v == 0)
		snprintf(err, errlen,
		    "the metadata schema is not installed in the metadata database (%s)\n"
		    "hint: run 'repctl install' first",
		    red);
	else if (v < want)
		snprintf(err, errlen,
		    "the metadata schema is at version %d, this repctl needs %d (%s)\n"
		    "hint: run 'repctl install' to upgrade it",
		    v, want, red);
	else
		snprintf(err, errlen,
		    "the metadata schema is at version %d, newer than this repctl knows (%d) (%s)\n"
		    "hint: use the repctl that installed it, or a newer one",
		    v, want, red);
	free(red);
	return -1;
}

int
meta_install(PGconn *meta, int *from, int *to, char *err, size_t errlen)
{
	const struct sql_file *f;
	int cur, v;
	char vbuf[16];
	const char *params[1];

	if (db_begin(meta, err, errlen) < 0)
		return -1;
	if (db_exec(meta,
		"SELECT pg_catalog.pg_advisory_xact_lock(" INSTALL_LOCK ");"
		"CREATE SCHEMA IF NOT EXISTS repctl;"
		"CREATE TABLE IF NOT EXISTS repctl.schema_version ("
		"  version integer PRIMARY KEY,"
		"  installed_at timestamptz NOT NULL DEFAULT now())",
		err, errlen) < 0)
		goto fail;
	cur = installed_version(meta, err, errlen);
	if (cur < 0)
		goto fail;
	*from = cur;
	if (cur > meta_schema_version()) {
		snprintf(err, errlen,
		    "the metadata schema is at version %d, newer than this repctl knows (%d); "
		    "nothing changed",
		    cur, meta_schema_version());
		goto fail;
	}
	for (f = sql_files; f->name; f++) {
		if (!is_migration(f->name, &v) || v <= cur)
			continue;
		if (db_exec(meta, f->text, err, errlen) < 0) {
			size_t n = strlen(err);

			snprintf(err + n, errlen - n, " (in %s; nothing was changed)", f->name);
			goto fail;
		}
		snprintf(vbuf, sizeof(vbuf), "%d", v);
		params[0] = vbuf;
		if (db_execp(meta, "INSERT INTO repctl.schema_version (version) VALUES ($1::int)",
			1, params, err, errlen) < 0)
			goto fail;
		cur = v;
	}
	if (db_commit(meta, err, errlen) < 0)
		goto fail;
	*to = cur;
	return 0;
fail:
	db_rollback(meta);
	return -1;
}

void
node_clear(struct node *n)
{
	free(n->name);
	free(n->conninfo);
	free(n->ssh);
	free(n->agent);
	free(n->status);
	memset(n, 0, sizeof(*n));
}

static char *
dup_or_null(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

int
meta_node_get(PGconn *meta, const char *name, struct node *out, char *err, size_t errlen)
{
	const char *params[1] = { name };
	PGresult *r = db_query(meta,
	    "SELECT name, conninfo, has_secret, ssh, agent, status, "
	    "coalesce(server_version, 0) FROM repctl.node WHERE name = $1",
	    1, params, err, errlen);

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	out->name = xstrdup(PQgetvalue(r, 0, 0));
	out->conninfo = xstrdup(PQgetvalue(r, 0, 1));
	out->has_secret = PQgetvalue(r, 0, 2)[0] == 't';
	out->ssh = dup_or_null(r, 0, 3);
	out->agent = dup_or_null(r, 0, 4);
	out->status = xstrdup(PQgetvalue(r, 0, 5));
	out->server_version = atoi(PQgetvalue(r, 0, 6));
	PQclear(r);
	return 0;
}

PGconn *
node_connect(const struct config *cfg, const struct node *n, char *err, size_t errlen)
{
	char inner[ERRLEN];
	PGconn *c = db_connect(n->conninfo, "repctl", cfg->secrets_file, NULL, cfg->connect_timeout,
	    inner, sizeof(inner));

	if (c == NULL)
		snprintf(err, errlen, "cannot connect to node '%s' (%s): %s", n->name, n->conninfo,
		    inner);
	db_set_label(c, "node '%s'", n->name); /* names it in a lost connection's message */
	return c;
}

int
meta_exists(PGconn *meta, const char *sql, const char *param, char *err, size_t errlen)
{
	const char *params[1] = { param };
	PGresult *r = db_query(meta, sql, param ? 1 : 0, params, err, errlen);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r) > 0;
	PQclear(r);
	return n;
}

/*
 * cmd_folder.c - folders of the file sync: add, remove, list, sync, and
 * `agent` (the node side, started over SSH or by the coordinator).
 *
 * `add folder` records the folder and creates the folder marker on every
 * node whose directory exists, so that later an unmounted disk (an empty
 * mount point without the marker) stops the sync instead of looking like
 * "every file was deleted".  `sync folder` runs one pass now, in this
 * process, holding an advisory lock so it never runs twice at once (the
 * coordinator's folder worker takes the same lock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "fs_agent.h"
#include "fs_sync.h"
#include "meta.h"
#include "output.h"
#include "parse.h"
#include "xmalloc.h"

CMD_HANDLER(cmd_agent)
{
	(void)ctx;
	return agent_serve(0, 1, args_get(args, "root"));
}

/* Parse "a:/path,b:/path" (nodes=) into members; types from "a:send-only,..." (type=). */
static int
parse_members(const char *nodes, const char *types, struct folder_def *f, char *err, size_t errlen)
{
	char *copy = xstrdup(nodes), *item, *rest = copy;

	while ((item = strsep(&rest, ",")) != NULL) {
		char *colon = strchr(item, ':');
		int i;

		if (colon == NULL || colon == item || colon[1] != '/') {
			snprintf(err, errlen, "nodes=: '%s' is not NODE:/absolute/path", item);
			goto fail;
		}
		*colon = '\0';
		if (!parse_valid_name(item)) {
			snprintf(err, errlen, "nodes=: '%s' is not a node name", item);
			goto fail;
		}
		for (i = 0; i < f->nm; i++)
			if (strcmp(f->m[i].node, item) == 0) {
				snprintf(err, errlen, "nodes=: node '%s' is listed twice", item);
				goto fail;
			}
		f->m = xrealloc(f->m, sizeof(*f->m) * (size_t)(f->nm + 1));
		f->m[f->nm].node = xstrdup(item);
		f->m[f->nm].path = xstrdup(colon + 1);
		f->m[f->nm].type = FT_SEND_RECEIVE;
		f->nm++;
	}
	free(copy);
	if (f->nm < 2) {
		snprintf(err, errlen, "nodes=%s: a folder needs at least two nodes", nodes);
		return -1;
	}
	if (types) {
		copy = xstrdup(types);
		rest = copy;
		while ((item = strsep(&rest, ",")) != NULL) {
			char *colon = strchr(item, ':');
			int i, t;

			if (colon == NULL) {
				snprintf(err, errlen, "type=: '%s' is not NODE:TYPE", item);
				goto fail;
			}
			*colon = '\0';
			t = (int)folder_type_parse(colon + 1);
			if (t < 0) {
				snprintf(err, errlen,
				    "type=: '%s' is not send-receive, send-only or "
				    "receive-only",
				    colon + 1);
				goto fail;
			}
			for (i = 0; i < f->nm && strcmp(f->m[i].node, item) != 0; i++)
				;
			if (i == f->nm) {
				snprintf(err, errlen, "type=: node '%s' is not in nodes=", item);
				goto fail;
			}
			f->m[i].type = (enum folder_type)t;
		}
		free(copy);
	}
	return 0;
fail:
	free(copy);
	return -1;
}

CMD_HANDLER(cmd_add_folder)
{
	char err[ERRLEN], ord[16];
	const char *name = args->words[0];
	struct folder_def f;
	const char *ign = args_get(args, "ignore"), *interval = args_get(args, "interval");
	int i, e, rc = 1;
	long iv;

	memset(&f, 0, sizeof(f));
	if (!parse_valid_name(name)) {
		cmd_error(
		    "'%s' is not a valid folder name: use letters, digits, '_', '.' or '-'", name);
		return 1;
	}
	if (interval && parse_long(interval, 1, 86400, &iv) < 0) {
		cmd_error("interval=%s: give seconds from 1 to 86400", interval);
		return 1;
	}
	if (parse_members(args_get(args, "nodes"), args_get(args, "type"), &f, err, sizeof(err)) <
	    0) {
		cmd_error(
		    "add folder %s: %s\nusage: repctl add folder NAME "
		    "nodes=NODE:/path,NODE:/path [ignore=...] [type=NODE:send-only]\nnothing was "
		    "changed",
		    name, err);
		goto out;
	}
	e = meta_exists(
	    ctx->meta, "SELECT 1 FROM repctl.folder WHERE name = $1", name, err, sizeof(err));
	if (e != 0) {
		cmd_error("%s", e < 0 ? err : "that folder exists already; 'repctl list folders'");
		goto out;
	}
	for (i = 0; i < f.nm; i++) {
		e = meta_exists(ctx->meta, "SELECT 1 FROM repctl.node WHERE name = $1", f.m[i].node,
		    err, sizeof(err));
		if (e != 1) {
			cmd_error(
			    "nodes=: no node '%s'\nhint: add it with 'repctl add database %s ...'; "
			    "nothing was changed",
			    f.m[i].node, f.m[i].node);
			goto out;
		}
	}
	{
		const char *p[3] = { name, ign ? ign : "", interval };

		if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
		    db_execp(ctx->meta,
			"INSERT INTO repctl.folder (name, ignore, interval_s) VALUES "
			"($1, $2, $3::int)",
			3, p, err, sizeof(err)) < 0)
			goto fail;
	}
	for (i = 0; i < f.nm; i++) {
		const char *p[5] = { name, f.m[i].node, f.m[i].path, folder_type_name(f.m[i].type),
			ord };

		snprintf(ord, sizeof(ord), "%d", i);
		if (db_execp(ctx->meta,
			"INSERT INTO repctl.folder_node (folder, node, path, type, ord) VALUES ($1, $2, "
			"$3, $4, $5::int)",
			5, p, err, sizeof(err)) < 0)
			goto fail;
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	f.name = xstrdup(name);
	f.ignore = xstrdup(ign ? ign : "");
	printf("folder '%s' added on %d node(s)\n", name, f.nm);
	i = folder_mark(ctx->cfg, ctx->meta, &f);
	printf("folder marker created on %d of %d node(s)%s\n", i, f.nm,
	    i < f.nm ? "; the others must have it before they sync (see the warnings)" : "");
	cmd_tell_reload(ctx);
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("add folder %s: %s\nnothing was changed", name, err);
out:
	folder_def_free(&f);
	return rc;
}

CMD_HANDLER(cmd_remove_folder)
{
	char err[ERRLEN];
	const char *p[1] = { args->words[0] };
	PGresult *r = db_query(ctx->meta, "DELETE FROM repctl.folder WHERE name = $1 RETURNING 1",
	    1, p, err, sizeof(err));

	if (r == NULL) {
		cmd_error("%s", err);
		return 1;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		cmd_lookup_error("folder", p[0], NULL);
		return 1;
	}
	PQclear(r);
	printf("folder '%s' removed (the files and the .repctl directories stay on the nodes)\n",
	    p[0]);
	cmd_tell_reload(ctx);
	return 0;
}

CMD_HANDLER(cmd_list_folders)
{
	(void)args;
	return output_query(ctx->meta,
		   "SELECT f.name, f.status, (SELECT string_agg(n.node || ':' || n.path || "
		   "CASE WHEN n.type <> 'send-receive' THEN ' (' || n.type || ')' ELSE '' END, ', ' "
		   "ORDER BY n.ord) FROM repctl.folder_node n WHERE n.folder = f.name) AS nodes, "
		   "nullif(f.ignore, '') AS ignore, f.interval_s AS interval "
		   "FROM repctl.folder f ORDER BY f.name",
		   0, NULL, ctx->json) < 0
	    ? 1
	    : 0;
}

CMD_HANDLER(cmd_sync_folder)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	struct folder_def f;
	struct folder_stats st;
	const char *p[1] = { name };
	char *got;
	int found, rc;

	found = folder_load(ctx->meta, name, &f, err, sizeof(err));
	if (found != 0) {
		cmd_lookup_error("folder", name, found < 0 ? err : NULL);
		return 1;
	}
	got = db_value(ctx->meta,
	    args_has(args, "wait")
		? "SELECT pg_catalog.pg_advisory_lock(hashtext('repctl folder ' || $1))::text || 't'"
		: "SELECT pg_catalog.pg_try_advisory_lock(hashtext('repctl folder ' || $1))",
	    1, p, err, sizeof(err));
	if (got == NULL || got[0] != 't') {
		cmd_error("folder '%s' is being synced right now (by the coordinator or another "
			  "command)\nhint: add --wait to wait for it",
		    name);
		free(got);
		folder_def_free(&f);
		return 1;
	}
	free(got);
	rc = folder_run(ctx->cfg, ctx->meta, &f, isatty(2), &st, err, sizeof(err));
	if (rc < 0)
		cmd_error("folder '%s': %s", name, err);
	printf("folder '%s': %s, %ld file(s) copied (%.1f MB of file data, %.1f MB reused "
	       "locally), %ld deleted, %ld conflict(s), %.1f MB on the wire\n",
	    name, rc == 0 ? "good" : "bad", st.files, (double)st.bytes / 1e6,
	    (double)st.reused / 1e6, st.deleted, st.conflicts, (double)st.wire / 1e6);
	folder_def_free(&f);
	return rc == 0 ? 0 : 1;
}

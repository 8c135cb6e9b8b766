/*
 * cmd_install.c - install, help, version, config: the commands that set up
 * or describe repctl itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "version.h"

CMD_HANDLER(cmd_help)
{
	(void)ctx;
	if (args->nwords > 0) {
		/* "help add database": the first word is in words, the rest positional */
		char *w[32];
		int n = 0, i;

		w[n++] = args->words[0];
		for (i = 0; i < args->npos && n < 32; i++)
			w[n++] = args->pos[i];
		return cli_help(n, w);
	}
	return cli_help(0, NULL);
}

CMD_HANDLER(cmd_version)
{
	(void)ctx;
	(void)args;
	printf("repctl %s\n", REPCTL_VERSION);
	return 0;
}

CMD_HANDLER(cmd_config)
{
	(void)args;
	config_print(ctx->cfg, db_conninfo_redact);
	printf("# configuration OK\n");
	return 0;
}

/*
 * After an upgrade, install the capture of every registered table again
 * (CREATE OR REPLACE of its trigger function), so the nodes run this
 * version's capture.  A node that cannot be reached is named with the
 * command that does it later; the upgrade itself stands.  Returns how many
 * nodes could not be refreshed.
 */
static int
refresh_capture(struct cli_ctx *ctx)
{
	char err[ERRLEN];
	PGresult *nodes, *tabs;
	int i, j, bad = 0;

	nodes = db_query(
	    ctx->meta, "SELECT name FROM repctl.node ORDER BY name", 0, NULL, err, sizeof(err));
	if (nodes == NULL) {
		cmd_error("refreshing the capture on the nodes: %s", err);
		return 1;
	}
	for (i = 0; i < PQntuples(nodes); i++) {
		const char *name = PQgetvalue(nodes, i, 0);
		const char *p[1] = { name };
		struct node n;
		PGconn *c = NULL;
		int found, ok = 1, count = 0;

		tabs = db_query(ctx->meta,
		    "SELECT DISTINCT schema_name, table_name, min(herd) FROM repctl.herd_table "
		    "WHERE node = $1 GROUP BY 1, 2 ORDER BY 1, 2",
		    1, p, err, sizeof(err));
		if (tabs == NULL || PQntuples(tabs) == 0) {
			PQclear(tabs);
			continue;
		}
		found = meta_node_get(ctx->meta, name, &n, err, sizeof(err));
		if (found == 0)
			c = node_connect(ctx->cfg, &n, err, sizeof(err));
		node_clear(&n);
		for (j = 0; c && j < PQntuples(tabs); j++) {
			if (capture_install(c, name, PQgetvalue(tabs, j, 0), PQgetvalue(tabs, j, 1),
				err, sizeof(err)) < 0) {
				ok = 0;
				break;
			}
			count++;
		}
		if (c == NULL || !ok) {
			cmd_error("node '%s': the capture was not refreshed: %s\n"
				  "hint: when the node is reachable, run 'repctl add all tables "
				  "--herd=%s --db=%s' (it keeps what is registered)",
			    name, err, PQgetvalue(tabs, 0, 2), name);
			bad++;
		} else {
			printf("node '%s': capture of %d table(s) refreshed\n", name, count);
		}
		db_close(c);
		PQclear(tabs);
	}
	PQclear(nodes);
	return bad;
}

CMD_HANDLER(cmd_install)
{
	char err[ERRLEN];
	int from = 0, to = 0;
	char *red;

	(void)args;
	if (meta_install(ctx->meta, &from, &to, err, sizeof(err)) < 0) {
		cmd_error("install failed: %s", err);
		return 1;
	}
	red = db_conninfo_redact(ctx->cfg->meta);
	if (from == to)
		printf("metadata schema already at version %d in %s: nothing to do\n", to, red);
	else if (from == 0)
		printf("installed metadata schema version %d in %s\n", to, red);
	else
		printf("upgraded metadata schema from version %d to %d in %s\n", from, to, red);
	free(red);
	if (from > 0 && from < to && refresh_capture(ctx) > 0)
		return 1;
	return 0;
}

/*
 * cmd_quarantine.c - conflicts resolve ID keep=incoming|existing [--dry-run]:
 * parse, call quarantine_resolve() (src/fleet/quarantine.c, which says what
 * resolving means), print.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "parse.h"
#include "xmalloc.h"

CMD_HANDLER(cmd_conflicts_resolve)
{
	char err[ERRLEN];

	if (quarantine_resolve(ctx->cfg, ctx->meta, args->words[0], args_get(args, "keep"),
		args_has(args, "dry-run"), stdout, NULL, err, sizeof(err)) != ACT_OK) {
		fflush(stdout);
		cmd_error("%s", err);
		return 1;
	}
	return 0;
}

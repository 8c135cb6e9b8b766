/*
 * cmd_install.c - install, help, version, config: the commands that set up
 * or describe repctl itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "version.h"

void
cmd_error(const char *fmt, ...)
{
	va_list ap;

	fputs("repctl: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

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
	config_print(ctx->cfg);
	printf("# configuration OK\n");
	return 0;
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
	return 0;
}

/*
 * main.c - repctl's entry point: global options, then the grammar.
 *
 * repctl [-c CONFIG] [-v|-q] COMMAND [ARGS...]
 * Everything after the global options is handed to cli_dispatch(); the
 * configuration is loaded there, only for the commands that need it, so
 * `repctl help` works with a broken configuration file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "version.h"

static void
usage_error(const char *what)
{
	fprintf(stderr,
	    "repctl: error: %s\nusage: repctl [-c CONFIG] [-v|-q] COMMAND [ARGS...]; "
	    "'repctl help' lists the commands\n",
	    what);
}

int
main(int argc, char **argv)
{
	struct cli_ctx ctx;
	int i, rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.argv0 = argv[0];
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				usage_error("-c needs a file name");
				return 2;
			}
			ctx.config_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			ctx.config_path = a + 9;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			log_set_level(LOG_LVL_DEBUG);
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			log_set_level(LOG_LVL_WARN);
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			return cli_help(0, NULL);
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("repctl %s\n", REPCTL_VERSION);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			char msg[256];

			snprintf(msg, sizeof(msg),
			    "unknown global option '%s' (valid: -c CONFIG, "
			    "-v, -q, --help, --version)",
			    a);
			usage_error(msg);
			return 2;
		} else {
			break;
		}
	}
	rc = cli_dispatch(&ctx, argc - i, argv + i);
	db_close(ctx.meta);
	config_free(ctx.cfg);
	log_close();
	return rc;
}

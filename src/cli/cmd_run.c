/*
 * cmd_run.c - run SYNC: one run of a sync in this process, now, without the
 * coordinator (for scripts, tests and debugging; `kick` asks a running
 * coordinator instead).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "meta.h"
#include "sync.h"

CMD_HANDLER(cmd_run)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	struct sync_def s;
	struct node_pool *pool;
	struct run_stats st;
	int found, rc;

	found = sync_load(ctx->meta, name, &s, err, sizeof(err));
	if (found != 0) {
		cmd_lookup_error("sync", name, found < 0 ? err : NULL);
		return 1;
	}
	/* a run of the coordinator's worker in progress: wait for it, never overlap */
	if (sync_lock(ctx->meta, name, 1, err, sizeof(err)) < 0) {
		cmd_error("sync '%s': %s", name, err);
		sync_def_free(&s);
		return 1;
	}
	pool = pool_new(ctx->cfg, ctx->meta);
	rc = sync_run(pool, ctx->meta, &s, ctx->cfg, &st, err, sizeof(err));
	pool_free(pool);
	sync_unlock(ctx->meta, name);
	if (rc < 0)
		cmd_error("sync '%s' failed: %s", name, err);
	printf("sync '%s': %s, I/U/D %ld/%ld/%ld, %ld conflict(s), %d edge(s) ok, %d failed\n",
	    name, rc == 0 ? "good" : "bad", st.inserts, st.updates, st.deletes, st.conflicts,
	    st.edges_ok, st.edges_failed);
	sync_def_free(&s);
	return rc == 0 ? 0 : 1;
}

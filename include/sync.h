/*
 * sync.h - one run of one sync: every edge source -> target, each applied
 * in one transaction on its target.
 */
#ifndef REPCTL_SYNC_H
#define REPCTL_SYNC_H

#include <libpq-fe.h>
#include <stddef.h>

struct config;

struct sync_member {
	char *node;
	int source; /* role source */
	int target; /* receives changes (targets, and sources of a multi-source sync) */
};

struct sync_def {
	char *name;
	char *herd;
	char *strategy;
	char *conflict_column;
	char *status;
	int interval;    /* seconds, 0 = the configured default */
	int onetimecopy; /* 0 never, 1 fill new targets, 2 only their empty tables */
	struct sync_member *m;
	int nm;
	/* each node's smallest dbs= position over the herd's syncs (source/target) */
	struct {
		char *node;
		int rank;
	} * rank;
	int nrank;
};

struct run_stats {
	long inserts, updates, deletes, conflicts;
	int edges_ok, edges_failed;
	int paused; /* tables paused (schema drift, capture missing): a bad run */
	int busy;   /* not run: another process holds the sync's run lock */
};

/*
 * The run lock of a sync (LOCK_SYNC_RUN on the metadata database, session
 * level, reentrant): no two runs of one sync ever overlap, whoever starts
 * them.  sync_run takes it without waiting (st->busy when another process
 * holds it); a command that should wait takes it first with wait=1, which
 * says on stderr whom it waits for.  1 locked, 0 busy (err names the
 * holder), -1 error.  sync_unlock releases one level.
 */
int sync_lock(PGconn *meta, const char *sync, int wait, char *err, size_t errlen);
void sync_unlock(PGconn *meta, const char *sync);

/* Connections to nodes, kept across runs; reconnects a broken one. */
struct node_pool;
struct node_pool *pool_new(const struct config *cfg, PGconn *meta);
void pool_free(struct node_pool *p);
/*
 * listen 0: connections do not LISTEN (the coordinator's runners, for
 * which the watcher listens); max > 0: keep at most max connections open,
 * closing the one used least recently.
 */
void pool_set_limits(struct node_pool *p, int listen, int max);
/*
 * A pool for a quick look (status): a node that failed to connect fails
 * again at once, with the same message, for the rest of the pool's life.
 */
void pool_set_fail_fast(struct node_pool *p);
/* The connection to node, (re)connecting when needed; NULL with err. */
PGconn *pool_get(struct node_pool *p, const char *node, char *err, size_t errlen);
/* Drop a node's connection (after an error). */
void pool_drop(struct node_pool *p, const char *node);
/*
 * A query on node's connection failed (why): drop the connection, and in a
 * fail-fast pool do not try the node again (a server that hung once would
 * cost every later sync of a status call its timeout again).
 */
void pool_failed(struct node_pool *p, const char *node, const char *why);

/* Load a sync; 0, 1 when it does not exist, -1 on error. */
int sync_load(PGconn *meta, const char *name, struct sync_def *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void sync_def_free(struct sync_def *s);

/*
 * Run the sync once over every edge.  Records the run in repctl.run and
 * the conflicts in repctl.conflict.  A failing edge does not stop the
 * others, and a paused table does not stop the other tables.  Returns 0
 * when every edge and table went through, -1 otherwise (err holds the
 * first error, or why tables were paused).
 */
int sync_run(struct node_pool *pool, PGconn *meta, const struct sync_def *s,
    const struct config *cfg, struct run_stats *st, char *err, size_t errlen);

/*
 * Keys changed on the sources and not yet applied to some target (summed
 * over edges); -1 with err when a source cannot be reached or a count
 * fails (never a partial sum).
 */
long sync_pending(
    struct node_pool *pool, PGconn *meta, const struct sync_def *s, char *err, size_t errlen);

#endif

/*
 * fs_sync.h - one run of a folder: the coordinator side of the file sync.
 */
#ifndef REPCTL_FS_SYNC_H
#define REPCTL_FS_SYNC_H

#include <libpq-fe.h>
#include <stddef.h>

#include "fs_reconcile.h"

struct config;

struct folder_member {
	char *node;
	char *path;
	enum folder_type type;
};

struct folder_def {
	char *name;
	char *ignore;
	char *status;
	int interval;
	struct folder_member *m;
	int nm;
};

struct folder_stats {
	long files, deleted, conflicts;
	long long bytes;  /* file bytes moved */
	long long wire;   /* bytes that crossed the transports */
	long long reused; /* bytes the receivers rebuilt from blocks they had */
};

/* 0, 1 when the folder does not exist, -1 on error. */
int folder_load(PGconn *meta, const char *name, struct folder_def *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void folder_def_free(struct folder_def *f);
enum folder_type folder_type_parse(const char *s);
const char *folder_type_name(enum folder_type t);

/*
 * Create the folder marker on every node whose folder exists; nodes that
 * cannot be reached or lack the directory are reported on stderr and
 * counted.  Returns the number of nodes marked, -1 on error.
 */
int folder_mark(const struct config *cfg, PGconn *meta, const struct folder_def *f);

/*
 * One run: scan every node, reconcile each other node with the first (the
 * hub: the coordinator's own node when it is a member), move what differs,
 * repeat until nothing is left (at most a few passes).  progress: print a
 * progress line on stderr.  Records the run in repctl.folder_run.  0 or -1
 * with err.
 */
int folder_run(const struct config *cfg, PGconn *meta, const struct folder_def *f, int progress,
    struct folder_stats *st, char *err, size_t errlen);

#endif

/*
 * daemon.h - the coordinator: a supervising parent and one worker process
 * per sync.
 */
#ifndef REPCTL_DAEMON_H
#define REPCTL_DAEMON_H

#include <libpq-fe.h>

struct config;

/*
 * Run the coordinator.  foreground: stay attached, log to stderr.
 * Otherwise detach; the calling process returns once the daemon reported
 * that it is up (0) or why it could not start (1, message on stderr).
 */
int coordinator_start(struct config *cfg, const char *config_path, int foreground);

/*
 * pid of a live coordinator of this state directory, in this pid namespace
 * (signals reach it), from the pid file the coordinator keeps locked; or 0.
 */
long coordinator_pid(const struct config *cfg);

/* Where the coordinator of this metadata database runs (coordinator_find). */
struct coord_info {
	int running;     /* it holds the metadata database's lock (or our pid file) */
	int locked;      /* found through the lock: NOTIFY reaches it */
	long pid;        /* its pid in this pid namespace (signals reach it), else 0 */
	char where[512]; /* "pid N on HOST, since T", for messages */
};

/*
 * Find the running coordinator: the holder of the coordinator lock on the
 * metadata database (meta may be NULL: the pid file only).  0, or -1 with
 * err when the metadata database could not be asked.
 */
int coordinator_find(
    const struct config *cfg, PGconn *meta, struct coord_info *ci, char *err, size_t errlen);

/*
 * Ask the running coordinator to "reload" or "stop": NOTIFY repctl_control
 * through the metadata database, which reaches it from any host, container
 * or user; a signal through the pid file when the metadata database cannot
 * be reached.  1 sent, 0 none is running, -1 error (err).
 */
int coordinator_tell(const struct config *cfg, PGconn *meta, const char *what,
    struct coord_info *ci, char *err, size_t errlen);

/* A worker's exit status that means "my sync or folder is gone: do not restart me". */
#define WORKER_EXIT_GONE 3

/*
 * In a freshly forked child of the coordinator: die with it (PR_SET_PDEATHSIG,
 * and the loops check worker_orphaned(), since the signal can be missed).
 */
void worker_child_init(long parent);
int worker_orphaned(void);

/*
 * A runner: runs the syncs the scheduler names on in_fd, one per line, and
 * answers each on out_fd with "SYNC<TAB>CODE<TAB>CHANGES<TAB>MESSAGE".
 */
enum run_code { RUN_GOOD, RUN_PAUSED, RUN_FAILED, RUN_BUSY, RUN_GONE, RUN_IDLE, RUN_ERROR };
int runner_main(struct config *cfg, int id, int in_fd, int out_fd);
/* The watcher: "N<TAB>NODE" (changes committed), "L<TAB>NODE" (lost), "B<TAB>NODE" (back). */
int watcher_main(struct config *cfg, int out_fd);
/* One folder's worker loop (file sync on an interval and on kicks). */
int folder_worker_main(struct config *cfg, const char *folder);

#endif

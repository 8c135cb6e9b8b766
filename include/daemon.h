/*
 * daemon.h - the coordinator: a supervising parent and one worker process
 * per sync.
 */
#ifndef REPCTL_DAEMON_H
#define REPCTL_DAEMON_H

#include <libpq-fe.h>

#include "coordlock.h"

struct config;

/*
 * Run the coordinator.  foreground: stay attached, log to stderr.
 * Otherwise detach; the calling process returns once the daemon reported
 * that it is up (0) or why it could not start (1, message on stderr).
 */
int coordinator_start(struct config *cfg, const char *config_path, int foreground);

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

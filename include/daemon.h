/*
 * daemon.h - the coordinator: a supervising parent and one worker process
 * per sync.
 */
#ifndef REPCTL_DAEMON_H
#define REPCTL_DAEMON_H

struct config;

/*
 * Run the coordinator.  foreground: stay attached, log to stderr.
 * Otherwise detach; the calling process returns once the daemon reported
 * that it is up (0) or why it could not start (1, message on stderr).
 */
int coordinator_start(struct config *cfg, const char *config_path, int foreground);

/* pid of a live coordinator from the pid file, or 0. */
long coordinator_pid(const struct config *cfg);

/* One sync's worker loop; returns when asked to stop.  Exit status. */
int worker_main(struct config *cfg, const char *sync);
/* One folder's worker loop (file sync on an interval and on kicks). */
int folder_worker_main(struct config *cfg, const char *folder);

#endif

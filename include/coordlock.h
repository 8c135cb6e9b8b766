/*
 * coordlock.h - find and reach the running coordinator (src/meta/coordlock.c).
 */
#ifndef REPCTL_COORDLOCK_H
#define REPCTL_COORDLOCK_H

#include <libpq-fe.h>
#include <stddef.h>

struct config;

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

/* ---- for the coordinator itself (src/daemon/coordinator.c) ---- */

/*
 * From /proc/PID/stat: the state letter into *state (when not NULL; '\0'
 * when there is no such process) and the start time (clock ticks since
 * boot) as the result, 0 when none.
 */
unsigned long long proc_stat(long pid, char *state);
unsigned long long proc_start(long pid);
/* This process's pid namespace (an inode number), 0 when unknown. */
unsigned long long pidns(void);

/* The pid file's companion <pid_file>.info: the coordinator and its children. */
struct pidinfo {
	long pid;                 /* the coordinator */
	unsigned long long start; /* its start time */
	unsigned long long ns;    /* its pid namespace */
	int nw;
	long wpid[512]; /* its children */
	unsigned long long wstart[512];
};
void pidinfo_read(const struct config *cfg, struct pidinfo *pi);
/* A process recorded in the info file is still that process, and alive. */
int same_process(long pid, unsigned long long start);
/* 1 and a description ("pid N on HOST, since T, from ADDR") when some session
 * holds the coordinator lock, 0 none, -1 error. */
int coord_lock_holder(PGconn *meta, char *where, size_t wlen, char *err, size_t errlen);
/*
 * A coordinator lock held by a coordinator of this host whose process is
 * gone: end that session so that a start right after a kill is not
 * refused.  1 when one was ended.
 */
int coord_lock_stale_end(PGconn *meta);

#endif

/*
 * coordlock.c - where the coordinator of a metadata database runs, and how
 * to reach it: the advisory lock it holds on the metadata database for its
 * whole life (found from any host, container or user) and the pid file of
 * its state directory (this pid namespace).  The coordinator takes both
 * (src/daemon/coordinator.c); the CLI, the web console and onboarding ask
 * here and send "reload"/"stop" through NOTIFY or a signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "coordlock.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "xmalloc.h"

/*
 * From /proc/PID/stat: the process's state letter (field 3) into *state
 * (when not NULL; '\0' when there is no such process) and its start time
 * (clock ticks since boot, field 22) as the result, 0 when none.
 */
unsigned long long
proc_stat(long pid, char *state)
{
	char path[64], buf[2048], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd, field;

	if (state)
		*state = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	if (p == NULL || p[1] != ' ')
		return 0;
	/* field 3 (state) follows ") "; field 22 is 19 fields further */
	p += 2;
	if (state)
		*state = *p;
	for (field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		v = strtoull(p, NULL, 10);
	return v;
}

unsigned long long
proc_start(long pid)
{
	return proc_stat(pid, NULL);
}

unsigned long long
pidns(void)
{
	struct stat sb;

	return stat("/proc/self/ns/pid", &sb) == 0 ? (unsigned long long)sb.st_ino : 0;
}

/* ---- the pid file and its companion <pid_file>.info ---- */

void
pidinfo_read(const struct config *cfg, struct pidinfo *pi)
{
	char *path = xasprintf("%s.info", cfg->pid_file);
	FILE *fp = fopen(path, "r");
	char kind[16];
	long pid;
	unsigned long long start, ns;

	memset(pi, 0, sizeof(*pi));
	free(path);
	if (fp == NULL)
		return;
	while (fscanf(fp, "%15s %ld %llu %llu", kind, &pid, &start, &ns) == 4) {
		if (strcmp(kind, "coordinator") == 0) {
			pi->pid = pid;
			pi->start = start;
			pi->ns = ns;
		} else if (strcmp(kind, "child") == 0 && pi->nw < 512) {
			pi->wpid[pi->nw] = pid;
			pi->wstart[pi->nw++] = start;
		}
	}
	fclose(fp);
}

/* A process recorded in the info file is still that process, and alive. */
int
same_process(long pid, unsigned long long start)
{
	char state;
	unsigned long long st;

	if (pid <= 0 || kill((pid_t)pid, 0) != 0)
		return 0;
	st = proc_stat(pid, &state);
	/* a zombie is dead: killed, not yet reaped by its parent */
	return state != 'Z' && state != 'X' && (start == 0 || st == start);
}

long
coordinator_pid(const struct config *cfg)
{
	int fd = open(cfg->pid_file, O_RDONLY | O_CLOEXEC);
	struct pidinfo pi;
	long pid = 0;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd); /* nobody holds it: stale, whatever it says */
		return 0;
	}
	close(fd);
	pidinfo_read(cfg, &pi);
	if (pi.ns == pidns() && same_process(pi.pid, pi.start))
		pid = pi.pid;
	return pid;
}

#define HOLDER_SQL                                                                             \
	"SELECT l.pid, coalesce(nullif(a.application_name, ''), 'a session'), "                \
	"coalesce(host(a.client_addr), 'the local socket'), "                                  \
	"coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?') "                 \
	"FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid " \
	"WHERE l.locktype = 'advisory' AND l.classid = " LOCK_COORDINATOR " AND l.objid = 0 "  \
	"AND l.objsubid = 2 AND l.granted AND l.database = (SELECT oid FROM "                  \
	"pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"

int
coord_lock_holder(PGconn *meta, char *where, size_t wlen, char *err, size_t errlen)
{
	PGresult *r = db_query(meta, HOLDER_SQL, 0, NULL, err, errlen);
	int n;

	if (r == NULL)
		return -1;
	n = PQntuples(r) > 0;
	if (n) {
		const char *app = PQgetvalue(r, 0, 1);

		if (strncmp(app, "repctl coordinator ", 19) == 0)
			app += 19; /* "pid N on HOST" */
		snprintf(where, wlen, "%s, since %s, from %s", app, PQgetvalue(r, 0, 3),
		    PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return n;
}

int
coordinator_find(
    const struct config *cfg, PGconn *meta, struct coord_info *ci, char *err, size_t errlen)
{
	int h = 0;

	memset(ci, 0, sizeof(*ci));
	ci->pid = coordinator_pid(cfg);
	if (meta != NULL) {
		h = coord_lock_holder(meta, ci->where, sizeof(ci->where), err, errlen);
		if (h < 0)
			return -1;
	}
	ci->locked = h;
	ci->running = h || ci->pid;
	if (!h && ci->pid)
		snprintf(
		    ci->where, sizeof(ci->where), "pid %ld (pid file %s)", ci->pid, cfg->pid_file);
	return 0;
}

int
coordinator_tell(const struct config *cfg, PGconn *meta, const char *what, struct coord_info *ci,
    char *err, size_t errlen)
{
	const char *p[1] = { what };
	if (coordinator_find(cfg, meta, ci, err, errlen) < 0)
		meta = NULL; /* fall back on the pid file */
	if (!ci->running)
		return 0;
	if (meta != NULL && ci->locked) {
		if (db_execp(meta, "SELECT pg_catalog.pg_notify('repctl_control', $1)", 1, p, err,
			errlen) < 0)
			return -1;
		return 1;
	}
	if (ci->pid == 0) {
		snprintf(err, errlen, "cannot reach the coordinator: %s", ci->where);
		return -1;
	}
	if (kill((pid_t)ci->pid, strcmp(what, "stop") == 0 ? SIGTERM : SIGHUP) != 0) {
		snprintf(err, errlen, "cannot signal the coordinator (pid %ld): %s", ci->pid,
		    strerror(errno));
		return -1;
	}
	return 1;
}

/*
 * A coordinator lock held by a coordinator of this host (same host name:
 * same machine, or same container) whose process is gone: its server
 * session has not noticed yet.  End that session (a role may end its own
 * sessions) so that a start right after a kill is not refused.  1 when one
 * was ended.
 */
int
coord_lock_stale_end(PGconn *meta)
{
	char err[ERRLEN], host[256];
	PGresult *r = db_query(meta, HOLDER_SQL, 0, NULL, err, sizeof(err));
	long pid = 0;
	int ended = 0;
	char *tail = NULL;

	if (r == NULL || PQntuples(r) == 0) {
		PQclear(r);
		return 0;
	}
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	if (sscanf(PQgetvalue(r, 0, 1), "repctl coordinator pid %ld on ", &pid) == 1 &&
	    (tail = strstr(PQgetvalue(r, 0, 1), " on ")) != NULL && strcmp(tail + 4, host) == 0 &&
	    pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
		const char *p[1] = { PQgetvalue(r, 0, 0) };
		char *v = db_value(meta, "SELECT pg_catalog.pg_terminate_backend($1::int, 5000)", 1,
		    p, err, sizeof(err));

		ended = v && v[0] == 't';
		if (ended)
			log_info("the coordinator lock was still held for pid %ld on this host, "
				 "which is gone: its session (server pid %s) ended",
			    pid, p[0]);
		free(v);
	}
	PQclear(r);
	return ended;
}

/*
 * coordinator.c - `repctl start`: the supervising parent.
 *
 * It locks the pid file, takes the coordinator lock on the metadata
 * database, starts its children (worker.c: a pool of runners that run the
 * syncs the scheduler below hands them, the watcher that listens to every
 * node, one worker per folder; console.c: the web console when http.listen
 * is set), and watches them: a child that exits or dies, whatever the
 * reason, is started again after retry.min seconds, unless its folder is
 * gone.  `repctl reload` (SIGHUP, or NOTIFY repctl_control
 * 'reload') restarts the workers so they see added, removed or changed syncs
 * and tables; `repctl stop` (SIGTERM, or NOTIFY 'stop') stops the workers
 * and then itself; SIGUSR1 reopens the log file (logrotate).  Without
 * --foreground the process detaches, and the invoking `repctl start`
 * returns only once the daemon reported, through a pipe, that it is up or
 * why it is not.
 *
 * Who runs: two locks, each held for the coordinator's whole life.
 *  - The pid file is flock()ed.  A pid file nobody holds is stale, whatever
 *    pid it names (a dead process, or a live unrelated one after pid
 *    reuse).  Workers inherit the lock: a pid file held while the
 *    coordinator it names is dead means leftover workers, which `start`
 *    waits for and then stops (they are listed, with their start times, in
 *    <pid_file>.info, so an unrelated process is never signalled).
 *  - An advisory lock on the metadata database (LOCK_COORDINATOR) makes
 *    the coordinator unique per metadata database across hosts and
 *    containers, where pid files and signals do not reach.  Its connection
 *    carries the application_name "repctl coordinator pid N on HOST" and
 *    LISTENs on repctl_control, so control commands find and reach it from
 *    anywhere (coordinator_find, coordinator_tell).
 * Every child dies with the coordinator (PR_SET_PDEATHSIG and a check of
 * its parent, worker_child_init), and each run of a sync holds its own lock
 * (LOCK_SYNC_RUN, sync.c), so no two runs of one sync ever overlap.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "fsutil.h"
#include "console.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "secrets.h"
#include "sync.h"
#include "xmalloc.h"

static volatile sig_atomic_t got_term, got_hup, got_usr1;

static void
on_signal(int sig)
{
	if (sig == SIGTERM || sig == SIGINT)
		got_term = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGUSR1)
		got_usr1 = 1;
}

/* A child process: a runner, the watcher or a folder's worker. */
struct worker {
	int kind;   /* W_RUNNER, W_WATCHER, W_FOLDER, W_CONSOLE */
	char *name; /* the folder's name; NULL for the others */
	int id;     /* runners: 1, 2, ... */
	pid_t pid;
	time_t restart_at; /* when to start it again after an exit; 0: not planned */
	int to_fd;         /* runners: their input (we write sync names) */
	int from_fd;       /* runners and the watcher: their reports */
	char buf[4096];    /* a partial report line */
	size_t have;
	int job; /* runners: the sync (index) being run, -1: idle */
};

enum { W_RUNNER, W_WATCHER, W_FOLDER, W_CONSOLE };

static const char *const kind_word[] = { "runner", "watcher", "folder", "console" };

/* A sync as the scheduler sees it. */
struct ssync {
	char *name;
	char **src; /* its source nodes: a change there wakes it */
	int nsrc;
	char **mem; /* all its nodes: one coming back wakes it */
	int nmem;
	char **tgt; /* the nodes that receive changes */
	int ntgt;
	int interval;   /* seconds between fallback runs */
	double next;    /* when it is due without a wake-up (interval, backoff) */
	double due_at;  /* woken at (0: not woken); the earliest runs first */
	double backoff; /* seconds; 0 after a good run */
	int runner;     /* the worker index running it, -1: none */
	int gone;       /* removed: not scheduled any more */
};

struct coord {
	struct config *cfg;
	struct worker *w;
	int nw;
	struct ssync *s;
	int ns;
	int pidfd;       /* the locked pid file */
	PGconn *cm;      /* control connection: holds the coordinator lock, LISTENs */
	time_t cm_retry; /* when to reconnect it */
	char appname[400];
};

/* Rewrite <pid_file>.info: this coordinator and its live children. */
static void
pidinfo_write(struct coord *c)
{
	char *path = xasprintf("%s.info", c->cfg->pid_file);
	struct buf b = BUF_INIT;
	char err[512];
	int i;

	buf_printf(
	    &b, "coordinator %ld %llu %llu\n", (long)getpid(), proc_start(getpid()), pidns());
	for (i = 0; i < c->nw; i++)
		if (c->w[i].pid > 0)
			buf_printf(
			    &b, "child %ld %llu 0\n", (long)c->w[i].pid, proc_start(c->w[i].pid));
	if (atomic_write(path, b.data, b.len, 0644, err, sizeof(err)) < 0)
		log_warnx("%s", err);
	buf_free(&b);
	free(path);
}

/* The pid file now names this process. */
static int
pidfile_write(int fd, const char *path, char *err, size_t errlen)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		snprintf(
		    err, errlen, "cannot write the pid file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Lock the pid file for a new coordinator: the descriptor, or -1 with err.
 * A coordinator that is alive here refuses; one in another pid namespace
 * (another container sharing the state directory) refuses; leftovers of a
 * dead coordinator (children that missed their parent's death) are given
 * 10 s to exit on their own and then stopped.
 */
static int
pidfile_acquire(const struct config *cfg, char *err, size_t errlen)
{
	int fd = open(cfg->pid_file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	struct pidinfo pi;
	int i, t, sent = 0;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the pid file \"%s\": %s", cfg->pid_file,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	pidinfo_read(cfg, &pi);
	if (pi.ns != 0 && pi.ns != pidns()) {
		snprintf(err, errlen,
		    "the pid file \"%s\" is held by a coordinator in another container or pid "
		    "namespace (pid %ld there)\nhint: 'repctl stop' stops it through the metadata "
		    "database, from here too",
		    cfg->pid_file, pi.pid);
		close(fd);
		return -1;
	}
	/* a coordinator killed a moment ago is still exiting (not yet a zombie) for a
	 * few milliseconds: give it 2 s to die before calling it running */
	for (i = 0; i < 20 && same_process(pi.pid, pi.start); i++) {
		usleep(100000);
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
	}
	if (same_process(pi.pid, pi.start)) {
		snprintf(err, errlen,
		    "the coordinator is already running (pid %ld, pid file %s)\nhint: 'repctl stop' "
		    "stops it, 'repctl reload' rereads the syncs",
		    pi.pid, cfg->pid_file);
		close(fd);
		return -1;
	}
	/* the coordinator is gone but its lock is held: leftover children, or one starting */
	log_info("the coordinator of this state directory (pid %ld) is gone, but processes it "
		 "started still hold \"%s\": waiting for them to exit",
	    pi.pid, cfg->pid_file);
	for (t = 0; t < 200; t++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (t == 100) { /* 10 s: stop those we can prove are its children */
			for (i = 0; i < pi.nw; i++)
				if (same_process(pi.wpid[i], pi.wstart[i])) {
					log_info("stopping leftover worker pid %ld", pi.wpid[i]);
					kill((pid_t)pi.wpid[i], SIGTERM);
					sent++;
				}
		}
		if (t == 170 && sent)
			for (i = 0; i < pi.nw; i++)
				if (same_process(pi.wpid[i], pi.wstart[i]))
					kill((pid_t)pi.wpid[i], SIGKILL);
		usleep(100000);
	}
	snprintf(err, errlen,
	    "the pid file \"%s\" is still locked by a process that is not a known coordinator "
	    "or worker (a coordinator starting or stopping right now?)\nhint: 'fuser -v %s' "
	    "shows the process; try again",
	    cfg->pid_file, cfg->pid_file);
	close(fd);
	return -1;
}

/* ---- the coordinator lock on the metadata database ---- */

/*
 * (Re)open the control connection and take the coordinator lock.  0; -1
 * when the database cannot be reached (retried later); -2 when another
 * coordinator holds the lock (err says which).
 */
static int
control_open(struct coord *c, char *err, size_t errlen)
{
	const char *p[1] = { c->appname };
	char where[512];
	char *got;

	db_close(c->cm);
	c->cm = meta_connect(c->cfg, err, errlen);
	if (c->cm == NULL)
		return -1;
	if (db_execp(c->cm, "SELECT pg_catalog.set_config('application_name', $1, false)", 1, p,
		err, errlen) < 0)
		goto fail;
	got = db_value(c->cm, "SELECT pg_catalog.pg_try_advisory_lock(" LOCK_COORDINATOR ", 0)", 0,
	    NULL, err, errlen);
	if (got == NULL)
		goto fail;
	if (got[0] != 't') {
		free(got);
		if (coord_lock_holder(c->cm, where, sizeof(where), err, errlen) <= 0)
			snprintf(where, sizeof(where), "a session that just ended");
		snprintf(err, errlen,
		    "another coordinator already runs the syncs of this metadata database: %s\n"
		    "hint: 'repctl stop' (from any host or container using this metadata "
		    "database) stops it",
		    where);
		db_close(c->cm);
		c->cm = NULL;
		return -2;
	}
	free(got);
	if (db_exec(c->cm, "LISTEN repctl_control", err, errlen) < 0)
		goto fail;
	return 0;
fail:
	db_close(c->cm);
	c->cm = NULL;
	return -1;
}

static void sched_wake(struct coord *c, const char *sync, const char *node, int how);
static pid_t spawn(struct coord *c, struct worker *w);
static void presence_take(struct coord *c);

/* Control notifications: "reload", "stop", "kick:SYNC", "sync:SYNC" (paused, resumed). */
static void
control_read(struct coord *c)
{
	PGnotify *nt;

	if (c->cm == NULL)
		return;
	if (PQconsumeInput(c->cm) == 0) {
		log_warnx("lost the metadata database connection (the coordinator lock with it); "
			  "reconnecting");
		db_close(c->cm);
		c->cm = NULL;
		c->cm_retry = time(NULL) + c->cfg->retry_min;
		return;
	}
	while ((nt = PQnotifies(c->cm)) != NULL) {
		const char *pl = nt->extra;

		if (strcmp(pl, "reload") == 0)
			got_hup = 1;
		else if (strcmp(pl, "stop") == 0)
			got_term = 1;
		else if (strncmp(pl, "kick:", 5) == 0 || strncmp(pl, "sync:", 5) == 0)
			sched_wake(c, pl + 5, NULL, 2);
		PQfreemem(nt);
	}
}

/* ---- the scheduler ---- */

static int
has_node(char **v, int n, const char *node)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], node) == 0)
			return 1;
	return 0;
}

/*
 * Wake syncs: sync (by name) or every sync of node (how 0: node committed
 * changes, wakes the syncs it is a source of unless they are backing off
 * after a failure; how 1: node is reachable again, wakes all its syncs and
 * forgets their backoff; how 2: a kick or a pause/resume of sync; how 3:
 * the watcher lost node, wakes all its syncs unless backing off, so that
 * status shows at once what its loss does to them).
 */
static void
wake_one(struct ssync *x, int how)
{
	if ((how == 0 || how == 3) && x->backoff > 0)
		return;
	if (how == 1)
		x->backoff = 0;
	if (x->due_at == 0)
		x->due_at = clock_mono();
}

static void
sched_wake(struct coord *c, const char *sync, const char *node, int how)
{
	int i;

	for (i = 0; i < c->ns; i++) {
		struct ssync *x = &c->s[i];

		if (x->gone)
			continue;
		if (sync && strcmp(x->name, sync) != 0)
			continue;
		if (node &&
		    !(how == 0 ? has_node(x->src, x->nsrc, node) : has_node(x->mem, x->nmem, node)))
			continue;
		wake_one(x, how);
	}
}

/*
 * "NODE" (its own changes: wake every sync it is a source of) or
 * "NODE<TAB>FROM<TAB>FROM2..." (only applies of changes that came from
 * those nodes): a sync whose targets, NODE aside, are all among them would
 * carry nothing but echoes back; it is not woken (its interval still runs
 * it).  This is what keeps a hub's fan-out from waking every client's sync
 * back to the hub.
 */
static void
sched_changes(struct coord *c, char *line)
{
	char *from = strchr(line, '\t'), *f[64];
	int nf = 0, i, j, k;

	if (from == NULL) {
		sched_wake(c, NULL, line, 0);
		return;
	}
	*from++ = '\0';
	while (from && nf < 64) {
		f[nf++] = from;
		from = strchr(from, '\t');
		if (from)
			*from++ = '\0';
	}
	for (i = 0; i < c->ns; i++) {
		struct ssync *x = &c->s[i];
		int echo = 1;

		if (x->gone || !has_node(x->src, x->nsrc, line))
			continue;
		for (j = 0; j < x->ntgt && echo; j++) {
			int in = strcmp(x->tgt[j], line) == 0;

			for (k = 0; k < nf && !in; k++)
				in = strcmp(x->tgt[j], f[k]) == 0;
			echo = in;
		}
		if (!echo)
			wake_one(x, 0);
	}
}

static void
sched_free(struct coord *c)
{
	int i, j;

	for (i = 0; i < c->ns; i++) {
		for (j = 0; j < c->s[i].nsrc; j++)
			free(c->s[i].src[j]);
		for (j = 0; j < c->s[i].nmem; j++)
			free(c->s[i].mem[j]);
		for (j = 0; j < c->s[i].ntgt; j++)
			free(c->s[i].tgt[j]);
		free(c->s[i].tgt);
		free(c->s[i].src);
		free(c->s[i].mem);
		free(c->s[i].name);
	}
	free(c->s);
	c->s = NULL;
	c->ns = 0;
}

/*
 * Presence: the coordinator holds LOCK_WORKER per scheduled sync on its
 * control connection, which `status` reads (a sync nobody schedules is
 * red); taken again whenever the connection is.
 */
static void
presence_take(struct coord *c)
{
	char err[ERRLEN];
	int i;

	for (i = 0; c->cm && i < c->ns; i++) {
		const char *p[1] = { c->s[i].name };

		if (!c->s[i].gone &&
		    db_execp(c->cm,
			"SELECT pg_catalog.pg_try_advisory_lock(" LOCK_WORKER
			", pg_catalog.hashtext($1))",
			1, p, err, sizeof(err)) < 0)
			log_warnx("%s", err);
	}
}

static void
presence_drop(struct coord *c, const char *sync)
{
	char err[ERRLEN];
	const char *p[1] = { sync };

	if (c->cm &&
	    db_execp(c->cm,
		"SELECT pg_catalog.pg_advisory_unlock(" LOCK_WORKER ", pg_catalog.hashtext($1))", 1,
		p, err, sizeof(err)) < 0)
		log_warnx("%s", err);
}

/* Load the syncs to schedule (every sync not inactive) with their nodes. */
static int
sched_load(struct coord *c, PGconn *meta, char *err, size_t errlen)
{
	PGresult *r =
	    db_query(meta, "SELECT name FROM repctl.sync WHERE status <> 'inactive' ORDER BY name",
		0, NULL, err, errlen);
	int i, j, n;

	if (r == NULL)
		return -1;
	n = PQntuples(r);
	c->s = xcalloc((size_t)n + 1, sizeof(*c->s));
	for (i = 0; i < n; i++) {
		struct sync_def d;
		struct ssync *x = &c->s[c->ns];

		if (sync_load(meta, PQgetvalue(r, i, 0), &d, err, errlen) != 0)
			continue; /* removed meanwhile, or an error: the next reload sees it */
		x->name = xstrdup(d.name);
		x->src = xcalloc((size_t)d.nm + 1, sizeof(char *));
		x->mem = xcalloc((size_t)d.nm + 1, sizeof(char *));
		x->tgt = xcalloc((size_t)d.nm + 1, sizeof(char *));
		for (j = 0; j < d.nm; j++) {
			x->mem[x->nmem++] = xstrdup(d.m[j].node);
			if (d.m[j].source)
				x->src[x->nsrc++] = xstrdup(d.m[j].node);
			if (d.m[j].target)
				x->tgt[x->ntgt++] = xstrdup(d.m[j].node);
		}
		x->interval = d.interval > 0 ? d.interval : c->cfg->sync_interval;
		x->due_at = clock_mono(); /* every sync runs once at start */
		x->runner = -1;
		c->ns++;
		sync_def_free(&d);
	}
	PQclear(r);
	return 0;
}

/* Hand due syncs to idle runners, the longest waiting first. */
static void
sched_dispatch(struct coord *c)
{
	double now = clock_mono();
	int i, j;

	for (i = 0; i < c->nw; i++) {
		struct worker *w = &c->w[i];
		int best = -1;
		double bt = 0;
		char *line;
		ssize_t len;

		if (w->kind != W_RUNNER || w->pid <= 0 || w->job >= 0)
			continue;
		for (j = 0; j < c->ns; j++) {
			struct ssync *x = &c->s[j];
			double t;

			if (x->gone || x->runner >= 0)
				continue;
			t = x->due_at > 0 ? x->due_at : x->next;
			if (t > now)
				continue;
			if (best < 0 || t < bt) {
				best = j;
				bt = t;
			}
		}
		if (best < 0)
			return;
		line = xasprintf("%s\n", c->s[best].name);
		len = (ssize_t)strlen(line);
		if (write(w->to_fd, line, (size_t)len) == len) {
			c->s[best].runner = i;
			c->s[best].due_at = 0;
			w->job = best;
		}
		free(line);
	}
}

/*
 * Every runner busy while a sync has waited more than 5 s (nodes that hang
 * hold their runners until statement_timeout): one more runner, up to
 * three times `workers`.
 */
static void
sched_grow(struct coord *c)
{
	double now = clock_mono();
	int i, runners = 0, idle = 0, late = 0, id = 0;

	for (i = 0; i < c->nw; i++)
		if (c->w[i].kind == W_RUNNER) {
			runners++;
			if (c->w[i].id > id)
				id = c->w[i].id;
			if (c->w[i].pid > 0 && c->w[i].job < 0)
				idle++;
		}
	if (idle || runners >= 3 * c->cfg->workers)
		return;
	for (i = 0; i < c->ns && !late; i++) {
		const struct ssync *x = &c->s[i];
		double t = x->due_at > 0 ? x->due_at : x->next;

		late = !x->gone && x->runner < 0 && t <= now - 5;
	}
	if (!late)
		return;
	c->w = xrealloc(c->w, sizeof(*c->w) * (size_t)(c->nw + 1));
	memset(&c->w[c->nw], 0, sizeof(c->w[c->nw]));
	c->w[c->nw].kind = W_RUNNER;
	c->w[c->nw].id = id + 1;
	c->w[c->nw].to_fd = c->w[c->nw].from_fd = -1;
	c->w[c->nw].job = -1;
	log_warnx("every runner is busy and syncs are waiting: runner %d added (at most %d)",
	    id + 1, 3 * c->cfg->workers);
	spawn(c, &c->w[c->nw++]);
	pidinfo_write(c);
}

/* A runner's answer for the sync it ran. */
static void
sched_done(struct coord *c, struct worker *w, char *line)
{
	char *f[4] = { line, NULL, NULL, NULL };
	struct ssync *x;
	double now = clock_mono();
	int k, code;

	for (k = 1; k < 4; k++) {
		f[k] = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
		if (f[k])
			*f[k]++ = '\0';
	}
	if (w->job < 0 || f[1] == NULL)
		return;
	x = &c->s[w->job];
	w->job = -1;
	x->runner = -1;
	if (strcmp(x->name, f[0]) != 0) {
		log_warnx("runner %d answered for sync %s while running %s", w->id, f[0], x->name);
		return;
	}
	code = atoi(f[1]);
	switch (code) {
	case RUN_GOOD:
	case RUN_PAUSED:
		x->backoff = 0;
		x->next = now + x->interval;
		break;
	case RUN_BUSY: /* someone else runs it (`repctl run`): again soon */
		x->next = now + 1;
		x->due_at = 0;
		break;
	case RUN_GONE:
		log_info("sync %s removed: no longer scheduled", x->name);
		x->gone = 1;
		presence_drop(c, x->name);
		break;
	case RUN_IDLE: /* paused: a resume wakes it */
		x->next = now + x->interval;
		x->due_at = 0;
		break;
	default:
		x->backoff = x->backoff == 0 ? c->cfg->retry_min : x->backoff * 2;
		if (x->backoff > c->cfg->retry_max)
			x->backoff = c->cfg->retry_max;
		x->next = now + x->backoff;
		x->due_at = 0; /* wake-ups during a failing run wait for the backoff */
		if (code == RUN_ERROR)
			log_warnx(
			    "sync %s: %s; retry in %.0fs", x->name, f[3] ? f[3] : "", x->backoff);
		else
			log_info("sync %s: retry in %.0fs", x->name, x->backoff);
		break;
	}
}

/* Read a runner's or the watcher's reports. */
static void
child_read(struct coord *c, struct worker *w)
{
	ssize_t n;
	char *nl;

	for (;;) {
		n = read(w->from_fd, w->buf + w->have, sizeof(w->buf) - 1 - w->have);
		if (n <= 0)
			break;
		w->have += (size_t)n;
		w->buf[w->have] = '\0';
		while ((nl = strchr(w->buf, '\n')) != NULL) {
			*nl = '\0';
			if (w->kind == W_RUNNER)
				sched_done(c, w, w->buf);
			else if (w->buf[0] == 'N' && w->buf[1] == '\t')
				sched_changes(c, w->buf + 2);
			else if (w->buf[0] == 'B' && w->buf[1] == '\t')
				sched_wake(c, NULL, w->buf + 2, 1);
			else if (w->buf[0] == 'L' && w->buf[1] == '\t')
				sched_wake(c, NULL, w->buf + 2, 3);
			w->have -= (size_t)(nl + 1 - w->buf);
			memmove(w->buf, nl + 1, w->have + 1);
		}
		if (w->have >= sizeof(w->buf) - 1)
			w->have = 0;
	}
}

/* ---- the children ---- */

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static pid_t
spawn(struct coord *c, struct worker *w)
{
	long parent = (long)getpid();
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, i;
	pid_t pid;

	if ((w->kind == W_RUNNER && pipe(in) < 0) ||
	    (w->kind != W_FOLDER && w->kind != W_CONSOLE && pipe(out) < 0)) {
		log_warn("cannot start the %s: pipe", kind_word[w->kind]);
		close_fd(&in[0]);
		close_fd(&in[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("cannot start the %s %s", kind_word[w->kind], w->name ? w->name : "");
		close_fd(&in[0]);
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&out[1]);
		return -1;
	}
	if (pid == 0) {
		int rc;

		signal(SIGCHLD, SIG_DFL);
		worker_child_init(parent);
		/* the parent's control connection and the other children's pipes are not
		 * ours: a child holding them would keep the lock or a pipe alive */
		if (c->cm)
			close(PQsocket(c->cm));
		for (i = 0; i < c->nw; i++) {
			if (&c->w[i] == w)
				continue;
			close_fd(&c->w[i].to_fd);
			close_fd(&c->w[i].from_fd);
		}
		close_fd(&in[1]);
		close_fd(&out[0]);
		rc = w->kind == W_FOLDER   ? folder_worker_main(c->cfg, w->name)
		    : w->kind == W_RUNNER  ? runner_main(c->cfg, w->id, in[0], out[1])
		    : w->kind == W_CONSOLE ? console_main(c->cfg)
					   : watcher_main(c->cfg, out[1]);
		_exit(rc);
	}
	close_fd(&in[0]);
	close_fd(&out[1]);
	w->to_fd = in[1];
	w->from_fd = out[0];
	if (w->from_fd >= 0)
		fcntl(w->from_fd, F_SETFL, fcntl(w->from_fd, F_GETFL) | O_NONBLOCK);
	w->have = 0;
	w->job = -1;
	w->pid = pid;
	if (w->kind == W_FOLDER)
		log_info("folder %s: worker started (pid %ld)", w->name, (long)pid);
	else if (w->kind == W_RUNNER)
		log_debug("runner %d started (pid %ld)", w->id, (long)pid);
	else if (w->kind == W_CONSOLE)
		log_info("console started (pid %ld)", (long)pid);
	else
		log_info("watcher started (pid %ld)", (long)pid);
	return pid;
}

/*
 * (Re)read the syncs and folders; start the runners (workers = N in the
 * configuration, no more than there are syncs), the watcher and one worker
 * per folder.
 */
static int
start_workers(struct coord *c, char *err, size_t errlen)
{
	PGconn *meta = meta_connect(c->cfg, err, errlen);
	PGresult *r;
	int i, nf, nr, console;

	if (meta == NULL)
		return -1;
	if (meta_check_installed(meta, c->cfg, err, errlen) < 0 ||
	    sched_load(c, meta, err, errlen) < 0) {
		db_close(meta);
		return -1;
	}
	r = db_query(meta, "SELECT name FROM repctl.folder WHERE status <> 'inactive' ORDER BY 1",
	    0, NULL, err, errlen);
	db_close(meta);
	if (r == NULL) {
		sched_free(c);
		return -1;
	}
	nf = PQntuples(r);
	nr = c->ns < c->cfg->workers ? c->ns : c->cfg->workers;
	if (nr < 1)
		nr = 1;
	console = c->cfg->http_listen[0] != '\0'; /* the web console (console.c) */
	c->w = xcalloc((size_t)(nf + nr + 1 + console), sizeof(*c->w));
	c->nw = nf + nr + 1 + console;
	for (i = 0; i < c->nw; i++) {
		c->w[i].to_fd = c->w[i].from_fd = -1;
		c->w[i].job = -1;
	}
	for (i = 0; i < nr; i++) {
		c->w[i].kind = W_RUNNER;
		c->w[i].id = i + 1;
	}
	c->w[nr].kind = W_WATCHER;
	for (i = 0; i < nf; i++) {
		c->w[nr + 1 + i].kind = W_FOLDER;
		c->w[nr + 1 + i].name = xstrdup(PQgetvalue(r, i, 0));
	}
	if (console)
		c->w[nr + 1 + nf].kind = W_CONSOLE;
	PQclear(r);
	for (i = 0; i < c->nw; i++)
		spawn(c, &c->w[i]);
	presence_take(c);
	pidinfo_write(c);
	log_info("coordinator running: %d sync(s) on %d runner(s), %d folder(s)", c->ns, nr, nf);
	return 0;
}

static void
stop_workers(struct coord *c)
{
	int i, alive, tries;

	for (i = 0; i < c->nw; i++) {
		close_fd(&c->w[i].to_fd); /* a runner between runs ends at once */
		if (c->w[i].pid > 0)
			kill(c->w[i].pid, SIGTERM);
	}
	for (tries = 0; tries < 300; tries++) {
		alive = 0;
		for (i = 0; i < c->nw; i++) {
			if (c->w[i].pid <= 0)
				continue;
			if (waitpid(c->w[i].pid, NULL, WNOHANG) == c->w[i].pid)
				c->w[i].pid = 0;
			else
				alive++;
		}
		if (!alive)
			break;
		usleep(100000);
	}
	for (i = 0; i < c->nw; i++) {
		if (c->w[i].pid > 0) {
			log_warnx("%s %s: did not stop in 30s, killing it", kind_word[c->w[i].kind],
			    c->w[i].name ? c->w[i].name : "");
			kill(c->w[i].pid, SIGKILL);
			waitpid(c->w[i].pid, NULL, 0);
		}
		close_fd(&c->w[i].from_fd);
		free(c->w[i].name);
	}
	free(c->w);
	c->w = NULL;
	c->nw = 0;
	for (i = 0; i < c->ns; i++)
		if (!c->s[i].gone)
			presence_drop(c, c->s[i].name);
	sched_free(c);
}

/* Collect exited children; plan a restart of each unless its folder is gone. */
static void
reap(struct coord *c)
{
	pid_t pid;
	int status, i, changed = 0;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < c->nw; i++) {
			struct worker *w = &c->w[i];
			const char *what = kind_word[w->kind];

			if (w->pid != pid)
				continue;
			w->pid = 0;
			changed = 1;
			if (w->from_fd >= 0)
				child_read(c, w); /* its last words */
			close_fd(&w->to_fd);
			close_fd(&w->from_fd);
			if (w->job >= 0) {
				/* the run it was making is made again soon */
				c->s[w->job].runner = -1;
				c->s[w->job].next = clock_mono() + c->cfg->retry_min;
				w->job = -1;
			}
			if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_GONE) {
				log_info("%s %s: worker exited (removed or made inactive)", what,
				    w->name ? w->name : "");
				w->restart_at = 0;
			} else {
				char how[64];

				if (WIFSIGNALED(status))
					snprintf(how, sizeof(how), "killed by signal %d",
					    WTERMSIG(status));
				else
					snprintf(how, sizeof(how), "exited with status %d",
					    WEXITSTATUS(status));
				if (w->kind == W_RUNNER)
					log_warnx("runner %d %s, restarting in %ds", w->id, how,
					    c->cfg->retry_min);
				else
					log_warnx("%s %s %s, restarting in %ds", what,
					    w->name ? w->name : "", how, c->cfg->retry_min);
				w->restart_at = time(NULL) + c->cfg->retry_min;
			}
		}
	}
	for (i = 0; i < c->nw; i++)
		if (c->w[i].pid == 0 && c->w[i].restart_at && time(NULL) >= c->w[i].restart_at) {
			c->w[i].restart_at = 0;
			spawn(c, &c->w[i]);
			changed = 1;
		}
	if (changed)
		pidinfo_write(c);
}

/* The supervising loop; ready_fd gets "OK" or the error (-1: none). */
static int
coordinator_main(struct config *cfg, int pidfd, int ready_fd)
{
	char err[ERRLEN], host[256];
	struct coord c;
	struct sigaction sa;
	struct pollfd *pfd = NULL;
	int rc = 0, i;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	c.pidfd = pidfd;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	snprintf(
	    c.appname, sizeof(c.appname), "repctl coordinator pid %ld on %s", (long)getpid(), host);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (pidfile_write(pidfd, cfg->pid_file, err, sizeof(err)) < 0 ||
	    (pidinfo_write(&c), control_open(&c, err, sizeof(err))) < 0 ||
	    start_workers(&c, err, sizeof(err)) < 0) {
		log_error("%s", err);
		if (ready_fd >= 0) {
			if (write(ready_fd, err, strlen(err)) < 0)
				(void)0;
			close(ready_fd);
		}
		stop_workers(&c);
		db_close(c.cm);
		return 1;
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "OK", 2) < 0)
			(void)0;
		close(ready_fd);
	}
	log_info("coordinator lock taken on the metadata database as \"%s\"", c.appname);
	while (!got_term) {
		int np = 0;

		reap(&c);
		if (c.cm == NULL && time(NULL) >= c.cm_retry) {
			int o = control_open(&c, err, sizeof(err));

			if (o == -2) {
				log_error("%s; stopping", err);
				rc = 1;
				break;
			}
			if (o < 0) {
				log_warnx("%s", err);
				c.cm_retry = time(NULL) + cfg->retry_min;
			} else {
				log_info("metadata database connection back, coordinator lock "
					 "taken again");
				presence_take(&c);
			}
		}
		sched_dispatch(&c);
		sched_grow(&c);
		pfd = xrealloc(pfd, sizeof(*pfd) * (size_t)(c.nw + 1));
		pfd[np].fd = c.cm ? PQsocket(c.cm) : -1;
		pfd[np].events = POLLIN;
		pfd[np++].revents = 0;
		for (i = 0; i < c.nw; i++) {
			pfd[np].fd = c.w[i].from_fd;
			pfd[np].events = POLLIN;
			pfd[np++].revents = 0;
		}
		if (poll(pfd, (nfds_t)np, 200) > 0) {
			for (i = 0; i < c.nw; i++)
				if (pfd[i + 1].revents && c.w[i].from_fd >= 0)
					child_read(&c, &c.w[i]);
		}
		/* every time, not only when the socket is readable: a notification that
		 * arrived while the connection ran a statement of ours (presence locks)
		 * already sits in libpq's queue, where poll() cannot see it */
		control_read(&c);
		if (got_usr1) {
			got_usr1 = 0;
			if (log_reopen() < 0)
				log_warn("cannot reopen the log file");
		}
		if (got_hup && !got_term) {
			struct config *ncfg;

			got_hup = 0;
			log_info("reload requested, rereading the syncs");
			ncfg = config_load(cfg->path, getenv, err, sizeof(err));
			if (ncfg == NULL)
				log_warnx(
				    "configuration not reloaded, keeping the old one: %s", err);
			stop_workers(&c);
			if (ncfg) {
				/* reloadable keys only; paths and meta stay (and the
				 * connection limits of the new file apply to new
				 * connections) */
				db_use_config(ncfg);
				cfg->sync_interval = ncfg->sync_interval;
				cfg->workers = ncfg->workers;
				cfg->retry_min = ncfg->retry_min;
				cfg->retry_max = ncfg->retry_max;
				cfg->circuit_failures = ncfg->circuit_failures;
				cfg->circuit_reset = ncfg->circuit_reset;
				cfg->future_limit = ncfg->future_limit;
				config_free(ncfg);
			}
			if (start_workers(&c, err, sizeof(err)) < 0)
				log_warnx("reload: %s; retrying on the next reload", err);
		}
	}
	log_info("stop requested, stopping");
	stop_workers(&c);
	free(pfd);
	db_close(c.cm);
	{
		char *info = xasprintf("%s.info", cfg->pid_file);

		unlink(info);
		free(info);
	}
	unlink(cfg->pid_file);
	close(pidfd);
	log_info("coordinator stopped");
	return rc;
}

int
coordinator_start(struct config *cfg, const char *config_path, int foreground)
{
	char err[ERRLEN];
	int pfd[2], pidfd;
	pid_t child;
	char buf[ERRLEN];
	ssize_t n;

	(void)config_path;
	if (console_check_config(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (mkdir_p(cfg->state_dir, 0700) < 0) {
		log_error("cannot create the state directory \"%s\": %s", cfg->state_dir,
		    strerror(errno));
		return 1;
	}
	pidfd = pidfile_acquire(cfg, err, sizeof(err));
	if (pidfd < 0) {
		log_error("%s", err);
		return 1;
	}
	{
		/* fail early, in the foreground, on what we can check here */
		PGconn *meta = meta_connect(cfg, err, sizeof(err));
		char where[512];
		int h = -1;

		if (meta != NULL && meta_check_installed(meta, cfg, err, sizeof(err)) == 0 &&
		    coord_lock_holder(meta, where, sizeof(where), err, sizeof(err)) == 1)
			coord_lock_stale_end(meta);
		if (meta == NULL || meta_check_installed(meta, cfg, err, sizeof(err)) < 0 ||
		    (h = coord_lock_holder(meta, where, sizeof(where), err, sizeof(err))) != 0) {
			if (h == 1)
				log_error(
				    "another coordinator already runs the syncs of "
				    "this metadata database: %s\nhint: 'repctl stop' (from any host "
				    "or container using this metadata database) stops it",
				    where);
			else
				log_error("%s", err);
			db_close(meta);
			close(pidfd);
			return 1;
		}
		db_close(meta);
	}
	if (foreground) {
		log_set_level((enum log_level)log_level_parse(cfg->log_level));
		if (cfg->log_syslog &&
		    log_init(NULL, (enum log_level)log_level_parse(cfg->log_level), 1) < 0)
			return 1;
		return coordinator_main(cfg, pidfd, -1);
	}
	if (pipe(pfd) < 0) {
		perror("repctl: pipe");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("repctl: fork");
		return 1;
	}
	if (child == 0) {
		int fd;

		close(pfd[0]);
		setsid();
		if (log_init(cfg->log_syslog ? NULL : cfg->log_file,
			(enum log_level)log_level_parse(cfg->log_level), cfg->log_syslog) < 0) {
			snprintf(err, sizeof(err), "cannot open the log file \"%s\": %s",
			    cfg->log_file, strerror(errno));
			if (write(pfd[1], err, strlen(err)) < 0)
				(void)0;
			_exit(1);
		}
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		_exit(coordinator_main(cfg, pidfd, pfd[1]));
	}
	close(pfd[1]);
	close(pidfd); /* the lock stays with the daemon's copy */
	n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	if (n == 2 && memcmp(buf, "OK", 2) == 0) {
		printf("coordinator started (pid %ld), log %s\n", (long)child,
		    cfg->log_syslog ? "syslog" : cfg->log_file);
		return 0;
	}
	buf[n > 0 ? n : 0] = '\0';
	log_error("the coordinator did not start: %s",
	    n > 0 ? buf : "it exited without saying why (see the log)");
	waitpid(child, NULL, WNOHANG);
	return 1;
}

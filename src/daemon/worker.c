/*
 * worker.c - the loop of one sync, in its own process.
 *
 * Wakes when a source commits a change (NOTIFY repctl on the source
 * connections; our own notifications, from applying, are ignored by
 * backend pid), when the coordinator is kicked for this sync (NOTIFY
 * repctl_control "kick:NAME" on the metadata database), or when the
 * interval runs out (the fallback for lost notifications).  A failed run
 * backs off (retry.min doubling up to retry.max); the node circuit breaker
 * lives in sync.c.  Because each sync has its own process, a slow or dead
 * node never blocks a sync that does not involve it.  Every wait for a
 * server is bounded (db.c) and ends at once on SIGTERM, so a run blocked
 * on a dead or hung node fails naming it, backs off and is retried, and
 * `repctl stop` never waits for a server.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "fs_sync.h"
#include "sync.h"
#include "xmalloc.h"

static volatile sig_atomic_t worker_stop;
static long worker_parent; /* the coordinator that started this process; 0: none */

void
worker_child_init(long parent)
{
	worker_parent = parent;
	/* SIGTERM when the coordinator dies, however it dies (SIGKILL, OOM killer) */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		log_warn("prctl(PR_SET_PDEATHSIG)");
}

/* 1 when the coordinator is gone (the death signal can be missed: it died before prctl). */
int
worker_orphaned(void)
{
	return worker_parent != 0 && (long)getppid() != worker_parent;
}

/* Stop: asked to, or the coordinator is gone. */
static int
worker_done(void)
{
	if (!worker_stop && worker_orphaned()) {
		log_warnx("the coordinator (pid %ld) is gone: worker exits", worker_parent);
		worker_stop = 1;
	}
	return worker_stop != 0;
}

static void
on_term(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/* A worker process: SIGTERM/SIGINT end its loop, SIGHUP belongs to the parent. */
static void
worker_setup(const char *kind, const char *name)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	/* a run blocked on a server ends at once on SIGTERM (db.c's waits see the flag) */
	db_set_stop_flag(&worker_stop);
	log_set_context("%s %s", kind, name);
}

/*
 * Connect to the metadata database and LISTEN for control notifications
 * (kicks, pauses).  NULL, after a pause of retry.min seconds, when it
 * cannot: the caller loops and tries again.
 */
static PGconn *
control_connect(const struct config *cfg, const char *kind, const char *name)
{
	char err[ERRLEN];
	PGconn *meta = meta_connect(cfg, err, sizeof(err));
	char *app = xasprintf("repctl worker %s:%s", kind, name);
	const char *p[1] = { app };

	if (meta == NULL ||
	    db_execp(meta, "SELECT pg_catalog.set_config('application_name', $1, false)", 1, p, err,
		sizeof(err)) < 0 ||
	    /* only folder workers read control notifications (the watcher would let
	     * them pile up in libpq's queue) */
	    (strcmp(kind, "folder") == 0 &&
		db_exec(meta, "LISTEN repctl_control", err, sizeof(err)) < 0)) {
		log_warnx("%s", err);
		db_close(meta);
		free(app);
		sleep((unsigned)cfg->retry_min);
		return NULL;
	}
	free(app);
	return meta;
}

/* Write all of a line to the coordinator's pipe (a short line: one write). */
static void pipe_say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
pipe_say(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;
	char *q;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	for (q = line; q < line + n; q++)
		if (*q == '\n')
			*q = ' ';
	line[n++] = '\n';
	if (write(fd, line, (size_t)n) != n)
		log_warn("cannot report to the coordinator");
}

/*
 * One run of a sync for the coordinator; the answer line is
 * "SYNC<TAB>CODE<TAB>CHANGES<TAB>MESSAGE" (RUN_* codes, daemon.h).
 */
static void
runner_run(const struct config *cfg, PGconn **metap, struct node_pool **poolp, const char *sync,
    int out_fd, const char *id)
{
	char err[ERRLEN];
	struct sync_def s;
	struct run_stats st;
	double t0;
	int rc, found;

	if (*metap == NULL || PQstatus(*metap) != CONNECTION_OK) {
		pool_free(*poolp);
		*poolp = NULL;
		db_close(*metap);
		*metap = meta_connect(cfg, err, sizeof(err));
		if (*metap == NULL) {
			pipe_say(out_fd, "%s\t%d\t0\t%s", sync, RUN_ERROR, err);
			return;
		}
		{
			char *app = xasprintf("repctl runner %s", id);
			const char *p[1] = { app };

			if (db_execp(*metap,
				"SELECT pg_catalog.set_config('application_name', $1, false)", 1, p,
				err, sizeof(err)) < 0)
				log_warnx("%s", err);
			free(app);
		}
	}
	if (*poolp == NULL) {
		*poolp = pool_new(cfg, *metap);
		pool_set_limits(*poolp, 0, 128); /* the watcher listens; connections kept */
	}
	found = sync_load(*metap, sync, &s, err, sizeof(err));
	if (found != 0) {
		if (found > 0)
			pipe_say(out_fd, "%s\t%d\t0\tremoved", sync, RUN_GONE);
		else
			pipe_say(out_fd, "%s\t%d\t0\t%s", sync, RUN_ERROR, err);
		if (found < 0) {
			pool_free(*poolp);
			*poolp = NULL;
			db_close(*metap);
			*metap = NULL;
		}
		return;
	}
	if (strcmp(s.status, "active") != 0) {
		pipe_say(out_fd, "%s\t%d\t0\t%s", sync, RUN_IDLE, s.status);
		sync_def_free(&s);
		return;
	}
	t0 = clock_mono();
	rc = sync_run(*poolp, *metap, &s, cfg, &st, err, sizeof(err));
	if (worker_stop) {
		/* interrupted: nothing was committed by the unfinished edges */
		sync_def_free(&s);
		return;
	}
	if (rc < 0 && st.busy) {
		log_debug("%s", err);
		pipe_say(out_fd, "%s\t%d\t0\t%s", sync, RUN_BUSY, err);
	} else if (rc == 0) {
		long n = st.inserts + st.updates + st.deletes + st.conflicts;

		if (n > 0)
			log_info("sync %s: run good in %.3fs: I/U/D %ld/%ld/%ld, %ld conflict(s)",
			    sync, clock_mono() - t0, st.inserts, st.updates, st.deletes,
			    st.conflicts);
		pipe_say(out_fd, "%s\t%d\t%ld\t", sync, RUN_GOOD, n);
	} else if (st.edges_failed == 0) {
		/* only paused tables: the rest flows, keep the normal pace */
		log_warnx("sync %s: run with paused table(s): %s", sync, err);
		pipe_say(out_fd, "%s\t%d\t0\t%s", sync, RUN_PAUSED, err);
	} else {
		log_warnx("sync %s: run bad (%d edge(s) failed): %s", sync, st.edges_failed, err);
		pipe_say(out_fd, "%s\t%d\t0\t%s", sync, RUN_FAILED, err);
	}
	sync_def_free(&s);
}

/*
 * A runner: the coordinator's scheduler sends it the name of a sync to run,
 * one per line on in_fd; it runs it (sync_run, under the sync's run lock)
 * and answers on out_fd.  It keeps its connections between runs: one to
 * the metadata database and a few to nodes (the least recently used closed
 * beyond eight), so a fleet of any size costs a bounded number of
 * connections per runner.  End of input (the coordinator is gone), SIGTERM
 * or an orphaned parent end it.
 */
int
runner_main(struct config *cfg, int id, int in_fd, int out_fd)
{
	char buf[4096], ids[16];
	size_t have = 0;
	PGconn *meta = NULL;
	struct node_pool *pool = NULL;

	snprintf(ids, sizeof(ids), "%d", id);
	worker_setup("runner", ids);
	while (!worker_done()) {
		struct pollfd pfd = { in_fd, POLLIN, 0 };
		ssize_t n;
		char *nl;

		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		n = read(in_fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break; /* the coordinator closed our input */
		}
		have += (size_t)n;
		buf[have] = '\0';
		while (!worker_stop && (nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (buf[0])
				runner_run(cfg, &meta, &pool, buf, out_fd, ids);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have >= sizeof(buf) - 1)
			have = 0; /* a line longer than any sync name: drop it */
	}
	pool_free(pool);
	db_close(meta);
	return 0;
}

/* Watch dir and every directory below it (but .repctl) for changes. */
static void
watch_tree(int ifd, const char *dir, int top)
{
	DIR *d;
	struct dirent *de;

	if (inotify_add_watch(ifd, dir,
		IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
		    IN_DELETE_SELF) < 0)
		return;
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL) {
		char *sub;
		struct stat sb;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    (top && strcmp(de->d_name, ".repctl") == 0))
			continue;
		sub = xasprintf("%s/%s", dir, de->d_name);
		if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
			watch_tree(ifd, sub, 0);
		free(sub);
	}
	if (d)
		closedir(d);
}

/* The path of the coordinator's own copy of the folder, or NULL. */
static const char *
local_path(const struct config *cfg, const struct folder_def *f)
{
	int i;

	for (i = 0; cfg->node && i < f->nm; i++)
		if (strcmp(f->m[i].node, cfg->node) == 0)
			return f->m[i].path;
	return NULL;
}

/*
 * A folder's loop: a run now, then every interval (the folder's, or
 * folders.scan_interval), and at once on `repctl kick folder:NAME`-style
 * notifications ("folder:NAME" on repctl_control).  The advisory lock keeps
 * it from running at the same time as a `repctl sync folder`.  The
 * coordinator's own copy of the folder is watched with inotify: a change
 * there starts a run two seconds after the last event (writes settle);
 * remote copies are covered by the interval.
 */
int
folder_worker_main(struct config *cfg, const char *folder)
{
	char err[ERRLEN];
	PGconn *meta = NULL;
	double next = 0, backoff = 0, settle = 0;
	int due = 1, ifd = -1, rc_exit = 0;
	char *watched = NULL;
	const char *p[1] = { folder };

	worker_setup("folder", folder);
	while (!worker_done()) {
		struct folder_def f;
		int found;

		if (meta == NULL || PQstatus(meta) != CONNECTION_OK) {
			db_close(meta);
			meta = control_connect(cfg, "folder", folder);
			if (meta == NULL)
				continue;
		}
		found = folder_load(meta, folder, &f, err, sizeof(err));
		if (found != 0) {
			if (found > 0) {
				log_info("folder removed: worker exits");
				rc_exit = WORKER_EXIT_GONE;
				break;
			}
			log_warnx("%s", err);
			db_close(meta);
			meta = NULL;
			continue;
		}
		{
			const char *lp = local_path(cfg, &f);

			if (lp && (watched == NULL || strcmp(watched, lp) != 0)) {
				if (ifd >= 0)
					close(ifd);
				ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
				if (ifd >= 0)
					watch_tree(ifd, lp, 1);
				free(watched);
				watched = xstrdup(lp);
			}
		}
		if (settle > 0 && clock_mono() >= settle) {
			due = 1;
			settle = 0;
		}
		if (strcmp(f.status, "active") == 0 && (due || clock_mono() >= next)) {
			char *got = db_value(meta,
			    "SELECT pg_catalog.pg_try_advisory_lock(hashtext('repctl folder ' || $1))",
			    1, p, err, sizeof(err));
			int interval = f.interval > 0 ? f.interval : cfg->folder_scan_interval;

			if (got && got[0] == 't') {
				struct folder_stats st;
				int rc = folder_run(cfg, meta, &f, 0, &st, err, sizeof(err));
				char *u = db_value(meta,
				    "SELECT pg_catalog.pg_advisory_unlock("
				    "hashtext('repctl folder ' || $1))",
				    1, p, err, sizeof(err));

				free(u);
				if (rc == 0) {
					backoff = 0;
					if (st.files + st.deleted + st.conflicts > 0)
						log_info(
						    "run good: %ld file(s), %.1f MB, %ld deleted, %ld "
						    "conflict(s)",
						    st.files, (double)st.bytes / 1e6, st.deleted,
						    st.conflicts);
					next = clock_mono() + interval;
				} else {
					backoff = backoff == 0 ? cfg->retry_min : backoff * 2;
					if (backoff > cfg->retry_max)
						backoff = cfg->retry_max;
					log_warnx("run bad, retry in %.0fs: %s", backoff, err);
					next = clock_mono() + backoff;
				}
			} else {
				next = clock_mono() + 1; /* someone else is running it */
			}
			free(got);
			due = 0;
		}
		folder_def_free(&f);
		{
			fd_set rfds;
			struct timeval tv = { 1, 0 };
			int fd = PQsocket(meta), n, maxfd = fd;
			PGnotify *nt;

			FD_ZERO(&rfds);
			FD_SET(fd, &rfds);
			if (ifd >= 0) {
				FD_SET(ifd, &rfds);
				if (ifd > maxfd)
					maxfd = ifd;
			}
			if (select(maxfd + 1, &rfds, NULL, NULL, &tv) < 0 && errno != EINTR)
				log_warn("select");
			if (ifd >= 0 && FD_ISSET(ifd, &rfds)) {
				char ev[8192];
				ssize_t got;
				int newdir = 0;

				while ((got = read(ifd, ev, sizeof(ev))) > 0) {
					char *q = ev;

					while (q < ev + got) {
						struct inotify_event *ie =
						    (struct inotify_event *)(void *)q;

						if ((ie->mask & IN_ISDIR) &&
						    (ie->mask & (IN_CREATE | IN_MOVED_TO)))
							newdir = 1;
						q += sizeof(*ie) + ie->len;
					}
				}
				/* our own writes land in .repctl (not watched) or are renames the
				 * next scan finds unchanged: a spurious run costs only a scan */
				settle = clock_mono() + 2;
				if (newdir) {
					close(ifd);
					ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
					if (ifd >= 0 && watched)
						watch_tree(ifd, watched, 1);
				}
			}
			if (PQconsumeInput(meta) == 0) {
				db_close(meta);
				meta = NULL;
				continue;
			}
			while ((nt = PQnotifies(meta)) != NULL) {
				n = strncmp(nt->extra, "folder:", 7) == 0 &&
				    strcmp(nt->extra + 7, folder) == 0;
				if (n)
					due = 1;
				PQfreemem(nt);
			}
		}
	}
	if (ifd >= 0)
		close(ifd);
	free(watched);
	db_close(meta);
	return rc_exit;
}

/* ---- the watcher: notifications and the circuit breaker's probes ---- */

struct watched {
	char *node;
	PGconn *conn; /* LISTEN repctl */
	double next;  /* when to (re)connect or probe */
	int tries;    /* failed attempts in a row */
	int seen;
};

/* Next attempt: 1, 2, 4... seconds up to circuit.reset, each jittered +-25%. */
static void
watch_backoff(const struct config *cfg, struct watched *w)
{
	double wait = 1.0;
	int i;

	for (i = 0; i < w->tries && wait < cfg->circuit_reset; i++)
		wait *= 2;
	if (wait > cfg->circuit_reset)
		wait = cfg->circuit_reset;
	wait *= 0.75 + 0.5 * ((double)rand() / RAND_MAX);
	w->tries++;
	w->next = clock_mono() + wait;
}

/* Connect and LISTEN: 0, or -1 with err. */
static int
watch_connect(const struct config *cfg, PGconn *meta, struct watched *w, char *err, size_t errlen)
{
	struct config pc = *cfg; /* shallow: only connect_timeout differs */
	struct node n;
	int found = meta_node_get(meta, w->node, &n, err, errlen);

	if (found != 0) {
		node_clear(&n);
		return -1;
	}
	if (pc.connect_timeout <= 0 || pc.connect_timeout > 5)
		pc.connect_timeout = 5; /* one probe never holds the others up long */
	w->conn = node_connect(&pc, &n, err, errlen);
	node_clear(&n);
	if (w->conn == NULL)
		return -1;
	if (db_exec(w->conn, "LISTEN repctl", err, errlen) < 0) {
		db_close(w->conn);
		w->conn = NULL;
		return -1;
	}
	return 0;
}

/*
 * The watcher, one process for the whole fleet: it holds one connection per
 * node that LISTENs for the capture's notifications and tells the
 * scheduler "N<TAB>NODE" when a node committed changes of its own,
 * "N<TAB>NODE<TAB>FROM..." when the changes were only applies of changes
 * that came from FROM (the runners' notifications say so), "L<TAB>NODE" when
 * it lost a node's connection and "B<TAB>NODE" when a node is reachable
 * again.  A node is "back" when its connection is
 * made again after it was lost, or when a probe (a new connection) connects
 * to a node whose circuit is open: its failures are cleared (its circuit
 * closes) before the scheduler wakes every sync of the node, its backoff
 * forgotten.  Connections and probes are retried 1, 2, 4...
 * seconds apart up to circuit.reset, jittered, so a laptop back on the VPN
 * is caught up within seconds and a fleet coming back does not connect in
 * step.  Changes committed while a node was not listened to are found by
 * the run its "back" starts.
 */
int
watcher_main(struct config *cfg, int out_fd)
{
	char err[ERRLEN];
	PGconn *meta = NULL;
	struct watched *w = NULL;
	struct pollfd *pfd = NULL;
	int nw = 0, i, j;
	double reread = 0;
	struct buf from = BUF_INIT;

	worker_setup("watcher", "nodes");
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	while (!worker_done()) {
		int np = 0;

		if (meta == NULL || PQstatus(meta) != CONNECTION_OK) {
			db_close(meta);
			meta = control_connect(cfg, "watcher", "nodes");
			if (meta == NULL)
				continue;
			reread = 0;
		}
		if (clock_mono() >= reread) {
			/* the nodes, and which of them failed their runs */
			PGresult *r = db_query(meta,
			    "SELECT n.name, coalesce(ns.circuit_open_until > now(), false) "
			    "FROM repctl.node n "
			    "LEFT JOIN repctl.node_state ns ON ns.node = n.name ORDER BY 1",
			    0, NULL, err, sizeof(err));

			if (r == NULL) {
				log_warnx("%s", err);
				db_close(meta);
				meta = NULL;
				continue;
			}
			for (i = 0; i < nw; i++)
				w[i].seen = 0;
			for (j = 0; j < PQntuples(r); j++) {
				const char *name = PQgetvalue(r, j, 0);
				struct watched *x = NULL;

				for (i = 0; i < nw && x == NULL; i++)
					if (strcmp(w[i].node, name) == 0)
						x = &w[i];
				if (x == NULL) {
					w = xrealloc(w, sizeof(*w) * (size_t)(nw + 1));
					x = &w[nw++];
					memset(x, 0, sizeof(*x));
					x->node = xstrdup(name);
				}
				x->seen = PQgetvalue(r, j, 1)[0] == 't' ? 2 : 1;
			}
			PQclear(r);
			for (i = 0; i < nw;) {
				if (w[i].seen) {
					i++;
					continue;
				}
				db_close(w[i].conn);
				free(w[i].node);
				w[i] = w[--nw];
			}
			reread = clock_mono() + 1;
		}
		for (i = 0; i < nw && !worker_stop; i++) {
			struct watched *x = &w[i];
			int back = 0;

			if (clock_mono() < x->next)
				continue;
			if (x->conn == NULL) {
				if (watch_connect(cfg, meta, x, err, sizeof(err)) < 0) {
					watch_backoff(cfg, x);
					log_debug("node %s unreachable (next try in %.1fs): %s",
					    x->node, x->next - clock_mono(), err);
					continue;
				}
				back = 1;
			} else if (x->seen == 2) {
				/* its circuit is open although we hear it: probe with a new
				 * connection (bounded by its connect timeout) */
				struct watched probe = *x;

				probe.conn = NULL;
				if (watch_connect(cfg, meta, &probe, err, sizeof(err)) < 0) {
					watch_backoff(cfg, x);
					continue;
				}
				db_close(probe.conn);
				back = 1;
			}
			if (back) {
				const char *pp[1] = { x->node };
				char *done = db_value(meta,
				    "WITH u AS (UPDATE repctl.node_state SET failures = 0, "
				    "circuit_open_until = NULL, last_error = NULL, last_contact = now(), "
				    "updated_at = now() WHERE node = $1 AND failures > 0 RETURNING 1) "
				    "SELECT count(*) FROM u",
				    1, pp, err, sizeof(err));

				if (done && atoi(done) > 0)
					log_info(
					    "node %s is reachable again: circuit closed, its syncs "
					    "woken",
					    x->node);
				free(done);
				x->tries = 0;
				x->seen = 1;
				x->next = clock_mono() + 1; /* probes at most every second */
				pipe_say(out_fd, "B\t%s", x->node);
			}
		}
		pfd = xrealloc(pfd, sizeof(*pfd) * (size_t)(nw + 1));
		for (i = 0; i < nw; i++) {
			pfd[i].fd = w[i].conn ? PQsocket(w[i].conn) : -1;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		np = nw;
		if (poll(pfd, (nfds_t)np, 500) <= 0)
			continue;
		for (i = 0; i < nw; i++) {
			PGnotify *nt;
			int hit = 0;

			if (w[i].conn == NULL || !(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			if (PQconsumeInput(w[i].conn) == 0) {
				log_info("lost the connection to node %s: reconnecting", w[i].node);
				db_close(w[i].conn);
				w[i].conn = NULL;
				w[i].tries = 0;
				watch_backoff(cfg, &w[i]);
				pipe_say(out_fd, "L\t%s", w[i].node);
				continue;
			}
			/* "from:NODE": an apply of changes that came from NODE; anything else
			 * (the capture trigger's ''): the node's own changes */
			buf_reset(&from);
			while ((nt = PQnotifies(w[i].conn)) != NULL) {
				if (strncmp(nt->extra, "from:", 5) != 0)
					hit = 2;
				else if (hit < 2) {
					hit = 1;
					buf_puts(&from, "\t");
					buf_puts(&from, nt->extra + 5);
				}
				PQfreemem(nt);
			}
			if (hit == 2)
				pipe_say(out_fd, "N\t%s", w[i].node);
			else if (hit == 1)
				pipe_say(out_fd, "N\t%s%s", w[i].node, from.data);
		}
	}
	for (i = 0; i < nw; i++) {
		db_close(w[i].conn);
		free(w[i].node);
	}
	free(w);
	free(pfd);
	buf_free(&from);
	db_close(meta);
	return 0;
}

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

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	const char *p[2] = { app, name };

	if (meta == NULL ||
	    db_execp(meta, "SELECT pg_catalog.set_config('application_name', $1, false)", 1, p, err,
		sizeof(err)) < 0 ||
	    db_exec(meta, "LISTEN repctl_control", err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		db_close(meta);
		free(app);
		sleep((unsigned)cfg->retry_min);
		return NULL;
	}
	if (strcmp(kind, "sync") == 0) {
		/* presence: status tells a sync whose worker is missing by this lock */
		char *got = db_value(meta,
		    "SELECT pg_catalog.pg_try_advisory_lock(" LOCK_WORKER
		    ", pg_catalog.hashtext($1))",
		    1, p + 1, err, sizeof(err));

		if (got == NULL)
			log_warnx("%s", err);
		else if (got[0] != 't')
			log_warnx("another worker of sync %s is alive (another coordinator's?); "
				  "the run lock keeps their runs apart",
			    name);
		free(got);
	}
	free(app);
	return meta;
}

/*
 * Read metadata notifications: 1 when one is for this sync (a kick, a
 * pause or resume) or for one of its nodes ("node:NAME": the prober found
 * it reachable again; nodes holds the sync's nodes, each followed by a
 * NUL, ending with an empty one).
 */
static int
control_notified(PGconn *meta, const char *sync, const char *nodes)
{
	PGnotify *nt;
	int hit = 0;
	const char *n;

	if (PQconsumeInput(meta) == 0)
		return -1;
	while ((nt = PQnotifies(meta)) != NULL) {
		const char *pl = nt->extra;

		if ((strncmp(pl, "kick:", 5) == 0 || strncmp(pl, "sync:", 5) == 0) &&
		    strcmp(pl + 5, sync) == 0)
			hit = 1;
		if (strncmp(pl, "node:", 5) == 0 && nodes)
			for (n = nodes; *n; n += strlen(n) + 1)
				if (strcmp(pl + 5, n) == 0)
					hit = 2;
		PQfreemem(nt);
	}
	return hit;
}

int
worker_main(struct config *cfg, const char *sync)
{
	char err[ERRLEN];
	PGconn *meta = NULL;
	struct node_pool *pool = NULL;
	double next = 0, backoff = 0;
	int due = 1, rc_exit = 0;
	struct buf nodes = BUF_INIT;

	worker_setup("sync", sync);

	while (!worker_done()) {
		struct sync_def s;
		int interval, found, k;

		if (meta == NULL || PQstatus(meta) != CONNECTION_OK) {
			db_close(meta);
			pool_free(pool);
			pool = NULL;
			meta = control_connect(cfg, "sync", sync);
			if (meta == NULL)
				continue;
			pool = pool_new(cfg, meta);
		}
		found = sync_load(meta, sync, &s, err, sizeof(err));
		if (found != 0) {
			if (found > 0) {
				log_info("sync removed: worker exits");
				rc_exit = WORKER_EXIT_GONE;
				break;
			}
			log_warnx("%s", err);
			db_close(meta);
			meta = NULL;
			continue;
		}
		buf_reset(&nodes);
		for (k = 0; k < s.nm; k++)
			buf_add(&nodes, s.m[k].node, strlen(s.m[k].node) + 1);
		buf_putc(&nodes, '\0');
		interval = s.interval > 0 ? s.interval : cfg->sync_interval;
		if (strcmp(s.status, "active") == 0 && (due || now_s() >= next)) {
			struct run_stats st;
			double t0 = now_s();
			int rc = sync_run(pool, meta, &s, cfg, &st, err, sizeof(err));

			if (worker_stop) {
				/* interrupted: nothing was committed by the unfinished edges */
				sync_def_free(&s);
				break;
			}
			if (rc < 0 && st.busy) {
				/* another process runs it right now (`repctl run`): try again soon */
				log_debug("%s", err);
				next = now_s() + 1;
			} else if (rc == 0) {
				backoff = 0;
				if (st.inserts + st.updates + st.deletes + st.conflicts > 0)
					log_info(
					    "run good in %.3fs: I/U/D %ld/%ld/%ld, %ld conflict(s)",
					    now_s() - t0, st.inserts, st.updates, st.deletes,
					    st.conflicts);
				next = now_s() + interval;
			} else if (st.edges_failed == 0) {
				/* only paused tables: the rest flows, keep the normal pace */
				backoff = 0;
				log_warnx("run with paused table(s): %s", err);
				next = now_s() + interval;
			} else {
				backoff = backoff == 0 ? cfg->retry_min : backoff * 2;
				if (backoff > cfg->retry_max)
					backoff = cfg->retry_max;
				log_warnx("run bad (%d edge(s) failed), retry in %.0fs: %s",
				    st.edges_failed, backoff, err);
				next = now_s() + backoff;
			}
			due = 0;
		} else if (strcmp(s.status, "active") != 0) {
			next = now_s() + interval;
		}
		sync_def_free(&s);

		/* wait for a notification, a kick or the deadline */
		{
			fd_set rfds;
			int fds[64], n, i, maxfd, sel;
			double wait = next - now_s();
			struct timeval tv;

			if (wait < 0)
				wait = 0;
			FD_ZERO(&rfds);
			maxfd = PQsocket(meta);
			FD_SET(maxfd, &rfds);
			n = pool_fds(pool, fds, 64);
			for (i = 0; i < n; i++) {
				FD_SET(fds[i], &rfds);
				if (fds[i] > maxfd)
					maxfd = fds[i];
			}
			/* wake at least every second to notice a stop request */
			if (wait > 1)
				wait = 1;
			/* notifications that arrived during the run sit in libpq's buffer
			 * already: select() would not see them */
			if (pool_notified(pool) && backoff == 0) {
				due = 1;
				wait = 0;
			}
			tv.tv_sec = (long)wait;
			tv.tv_usec = (long)((wait - (double)tv.tv_sec) * 1e6);
			sel = select(maxfd + 1, &rfds, NULL, NULL, &tv);
			if (sel < 0 && errno != EINTR)
				log_warn("select");
			if (pool_notified(pool) && backoff == 0)
				due = 1;
			i = control_notified(meta, sync, nodes.data);
			if (i < 0) {
				db_close(meta);
				meta = NULL;
			} else if (i > 0) {
				due = 1;
				if (i == 2) /* a node of ours is back: no more waiting */
					backoff = 0;
			}
		}
	}
	buf_free(&nodes);
	pool_free(pool);
	db_close(meta);
	return rc_exit;
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
		if (settle > 0 && now_s() >= settle) {
			due = 1;
			settle = 0;
		}
		if (strcmp(f.status, "active") == 0 && (due || now_s() >= next)) {
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
					next = now_s() + interval;
				} else {
					backoff = backoff == 0 ? cfg->retry_min : backoff * 2;
					if (backoff > cfg->retry_max)
						backoff = cfg->retry_max;
					log_warnx("run bad, retry in %.0fs: %s", backoff, err);
					next = now_s() + backoff;
				}
			} else {
				next = now_s() + 1; /* someone else is running it */
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
				settle = now_s() + 2;
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

/* ---- the prober: half-open probes of the circuit breaker ---- */

struct probe {
	char *node;
	double next; /* when to probe it */
	int tries;   /* failed probes so far */
	int seen;
};

/* One cheap connect to node: 1 reachable, 0 not (err), -1 not in the metadata. */
static int
probe_node(const struct config *cfg, PGconn *meta, const char *name, char *err, size_t errlen)
{
	struct config pc = *cfg; /* shallow: only connect_timeout differs */
	struct node n;
	PGconn *c;
	int found = meta_node_get(meta, name, &n, err, errlen);

	if (found != 0) {
		node_clear(&n);
		return -1;
	}
	if (pc.connect_timeout <= 0 || pc.connect_timeout > 5)
		pc.connect_timeout = 5;
	c = node_connect(&pc, &n, err, errlen);
	node_clear(&n);
	if (c == NULL)
		return 0;
	db_close(c);
	return 1;
}

/*
 * The prober: every node that failed (repctl.node_state.failures > 0, its
 * circuit open or not) is probed with one connect, first a second after it
 * failed, then after 2, 4, 8... seconds up to circuit.reset, each wait
 * jittered by +-25% so that a fleet coming back does not probe in step.
 * When a probe connects, the node's failures are cleared (its circuit
 * closes) and "node:NAME" is sent on repctl_control: every worker whose sync
 * includes the node runs at once, its backoff forgotten.  A laptop back on
 * the VPN is therefore caught up within seconds, not after retry.max or
 * circuit.reset.
 */
int
prober_main(struct config *cfg)
{
	char err[ERRLEN];
	PGconn *meta = NULL;
	struct probe *pr = NULL;
	int npr = 0, i, j;

	worker_setup("prober", "nodes");
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	while (!worker_done()) {
		PGresult *r;

		if (meta == NULL || PQstatus(meta) != CONNECTION_OK) {
			db_close(meta);
			meta = control_connect(cfg, "prober", "nodes");
			if (meta == NULL)
				continue;
		}
		r = db_query(meta,
		    "SELECT ns.node FROM repctl.node_state ns JOIN repctl.node n ON n.name = ns.node "
		    "WHERE ns.failures > 0 ORDER BY 1",
		    0, NULL, err, sizeof(err));
		if (r == NULL) {
			log_warnx("%s", err);
			db_close(meta);
			meta = NULL;
			continue;
		}
		for (i = 0; i < npr; i++)
			pr[i].seen = 0;
		for (j = 0; j < PQntuples(r) && !worker_done(); j++) {
			const char *name = PQgetvalue(r, j, 0);
			struct probe *p = NULL;
			int ok;

			for (i = 0; i < npr && p == NULL; i++)
				if (strcmp(pr[i].node, name) == 0)
					p = &pr[i];
			if (p == NULL) {
				pr = xrealloc(pr, sizeof(*pr) * (size_t)(npr + 1));
				p = &pr[npr++];
				p->node = xstrdup(name);
				p->next = now_s() + 1;
				p->tries = 0;
			}
			p->seen = 1;
			if (now_s() < p->next)
				continue;
			ok = probe_node(cfg, meta, name, err, sizeof(err));
			if (ok > 0) {
				const char *pp[1] = { name };
				char *payload = xasprintf("node:%s", name);
				const char *np[1] = { payload };

				if (db_execp(meta,
					"UPDATE repctl.node_state SET failures = 0, "
					"circuit_open_until = NULL, last_error = NULL, "
					"last_contact = now(), updated_at = now() "
					"WHERE node = $1 AND failures > 0",
					1, pp, err, sizeof(err)) < 0 ||
				    db_execp(meta,
					"SELECT pg_catalog.pg_notify('repctl_control', $1)", 1, np,
					err, sizeof(err)) < 0)
					log_warnx("%s", err);
				else
					log_info("node %s is reachable again: circuit closed, its "
						 "syncs woken",
					    name);
				free(payload);
				p->seen = 0; /* forgotten below */
			} else {
				double wait = 1.0;

				for (i = 0; i < p->tries && wait < cfg->circuit_reset; i++)
					wait *= 2;
				if (wait > cfg->circuit_reset)
					wait = cfg->circuit_reset;
				wait *= 0.75 + 0.5 * ((double)rand() / RAND_MAX);
				p->tries++;
				p->next = now_s() + wait;
				log_debug("probe of node %s failed (next in %.1fs): %s", name, wait,
				    ok < 0 ? "not in the metadata" : err);
			}
		}
		PQclear(r);
		for (i = 0; i < npr;) {
			if (pr[i].seen) {
				i++;
				continue;
			}
			free(pr[i].node);
			pr[i] = pr[--npr];
		}
		/* drain our LISTEN queue; wake every second */
		if (PQconsumeInput(meta) == 0) {
			db_close(meta);
			meta = NULL;
			continue;
		}
		{
			PGnotify *nt;

			while ((nt = PQnotifies(meta)) != NULL)
				PQfreemem(nt);
		}
		sleep(1);
	}
	for (i = 0; i < npr; i++)
		free(pr[i].node);
	free(pr);
	db_close(meta);
	return 0;
}

/*
 * coordinator.c - `repctl start`: the supervising parent.
 *
 * It writes the pid file, checks the metadata database, starts one worker
 * process per sync (worker.c) and watches them: a worker that dies is
 * restarted (after a pause, so a crash loop cannot spin), SIGHUP (`repctl
 * reload`) restarts the workers so they see added, removed or changed
 * syncs and tables, SIGTERM (`repctl stop`) stops the workers and then
 * itself, SIGUSR1 reopens the log file (logrotate).  Without --foreground
 * the process detaches, and the invoking `repctl start` returns only once
 * the daemon reported, through a pipe, that it is up or why it is not.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "db.h"
#include "log.h"
#include "meta.h"
#include "secrets.h"
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

long
coordinator_pid(const struct config *cfg)
{
	FILE *fp = fopen(cfg->pid_file, "r");
	long pid = 0;

	if (fp == NULL)
		return 0;
	if (fscanf(fp, "%ld", &pid) != 1 || pid <= 0 || kill((pid_t)pid, 0) != 0)
		pid = 0;
	fclose(fp);
	return pid;
}

struct worker {
	char *sync; /* the sync's or the folder's name */
	int folder; /* 1: a folder worker */
	pid_t pid;
	time_t restart_at; /* when to start it again after an exit */
};

struct coord {
	struct config *cfg;
	struct worker *w;
	int nw;
};

static pid_t
spawn(struct coord *c, struct worker *w)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_warn("cannot start the worker of sync %s", w->sync);
		return -1;
	}
	if (pid == 0) {
		signal(SIGCHLD, SIG_DFL);
		_exit(
		    w->folder ? folder_worker_main(c->cfg, w->sync) : worker_main(c->cfg, w->sync));
	}
	w->pid = pid;
	log_info(
	    "%s %s: worker started (pid %ld)", w->folder ? "folder" : "sync", w->sync, (long)pid);
	return pid;
}

/* (Re)read the active syncs and start a worker for each. */
static int
start_workers(struct coord *c, char *err, size_t errlen)
{
	PGconn *meta = meta_connect(c->cfg, err, errlen);
	PGresult *r;
	int i;

	if (meta == NULL)
		return -1;
	if (meta_check_installed(meta, c->cfg, err, errlen) < 0) {
		db_close(meta);
		return -1;
	}
	r = db_query(meta,
	    "SELECT name, false FROM repctl.sync WHERE status <> 'inactive' UNION ALL "
	    "SELECT name, true FROM repctl.folder WHERE status <> 'inactive' ORDER BY 2, 1",
	    0, NULL, err, errlen);
	db_close(meta);
	if (r == NULL)
		return -1;
	c->w = xcalloc((size_t)PQntuples(r) + 1, sizeof(*c->w));
	c->nw = PQntuples(r);
	for (i = 0; i < c->nw; i++) {
		c->w[i].sync = xstrdup(PQgetvalue(r, i, 0));
		c->w[i].folder = PQgetvalue(r, i, 1)[0] == 't';
		spawn(c, &c->w[i]);
	}
	PQclear(r);
	log_info("coordinator running with %d worker(s)", c->nw);
	return 0;
}

static void
stop_workers(struct coord *c)
{
	int i, alive, tries;

	for (i = 0; i < c->nw; i++)
		if (c->w[i].pid > 0)
			kill(c->w[i].pid, SIGTERM);
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
			log_warnx("sync %s: worker did not stop in 30s, killing it", c->w[i].sync);
			kill(c->w[i].pid, SIGKILL);
			waitpid(c->w[i].pid, NULL, 0);
		}
		free(c->w[i].sync);
	}
	free(c->w);
	c->w = NULL;
	c->nw = 0;
}

static int
write_pid_file(const char *path, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *fp = fopen(tmp, "w");
	int rc = -1;

	if (fp == NULL) {
		snprintf(err, errlen, "cannot write pid file \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write pid file \"%s\": %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

/* The supervising loop; ready_fd gets "OK" or the error (-1: none). */
static int
coordinator_main(struct config *cfg, int ready_fd)
{
	char err[ERRLEN];
	struct coord c;
	struct sigaction sa;
	int i;

	memset(&c, 0, sizeof(c));
	c.cfg = cfg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (write_pid_file(cfg->pid_file, err, sizeof(err)) < 0 ||
	    start_workers(&c, err, sizeof(err)) < 0) {
		log_error("%s", err);
		if (ready_fd >= 0) {
			if (write(ready_fd, err, strlen(err)) < 0)
				(void)0;
			close(ready_fd);
		}
		unlink(cfg->pid_file);
		stop_workers(&c);
		return 1;
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "OK", 2) < 0)
			(void)0;
		close(ready_fd);
	}
	while (!got_term) {
		pid_t pid;
		int status;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < c.nw; i++) {
				if (c.w[i].pid != pid)
					continue;
				c.w[i].pid = 0;
				if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
					log_info("%s %s: worker exited",
					    c.w[i].folder ? "folder" : "sync", c.w[i].sync);
					c.w[i].restart_at = 0;
				} else {
					log_warnx("%s %s: worker died (%s %d), restarting in %ds",
					    c.w[i].folder ? "folder" : "sync", c.w[i].sync,
					    WIFSIGNALED(status) ? "signal" : "status",
					    WIFSIGNALED(status) ? WTERMSIG(status)
								: WEXITSTATUS(status),
					    cfg->retry_min);
					c.w[i].restart_at = time(NULL) + cfg->retry_min;
				}
			}
		}
		for (i = 0; i < c.nw; i++)
			if (c.w[i].pid == 0 && c.w[i].restart_at &&
			    time(NULL) >= c.w[i].restart_at) {
				c.w[i].restart_at = 0;
				spawn(&c, &c.w[i]);
			}
		if (got_usr1) {
			got_usr1 = 0;
			if (log_reopen() < 0)
				log_warn("cannot reopen the log file");
		}
		if (got_hup) {
			struct config *ncfg;

			got_hup = 0;
			log_info("got SIGHUP, reloading syncs");
			ncfg = config_load(cfg->path, getenv, err, sizeof(err));
			if (ncfg == NULL)
				log_warnx(
				    "configuration not reloaded, keeping the old one: %s", err);
			stop_workers(&c);
			if (ncfg) {
				/* reloadable keys only; paths and meta stay */
				cfg->sync_interval = ncfg->sync_interval;
				cfg->retry_min = ncfg->retry_min;
				cfg->retry_max = ncfg->retry_max;
				cfg->circuit_failures = ncfg->circuit_failures;
				cfg->circuit_reset = ncfg->circuit_reset;
				cfg->future_limit = ncfg->future_limit;
				config_free(ncfg);
			}
			if (start_workers(&c, err, sizeof(err)) < 0)
				log_warnx("reload: %s; retrying on the next SIGHUP", err);
		}
		usleep(200000);
	}
	log_info("got SIGTERM, stopping");
	stop_workers(&c);
	unlink(cfg->pid_file);
	log_info("coordinator stopped");
	return 0;
}

int
coordinator_start(struct config *cfg, const char *config_path, int foreground)
{
	char err[ERRLEN];
	long pid = coordinator_pid(cfg);
	int pfd[2];
	pid_t child;
	char buf[ERRLEN];
	ssize_t n;

	(void)config_path;
	if (pid) {
		fprintf(stderr,
		    "repctl: error: the coordinator is already running (pid %ld, pid file "
		    "%s)\nhint: 'repctl stop' stops it, 'repctl reload' rereads the syncs\n",
		    pid, cfg->pid_file);
		return 1;
	}
	if (mkdir_p(cfg->state_dir, 0700) < 0) {
		fprintf(stderr, "repctl: error: cannot create the state directory \"%s\": %s\n",
		    cfg->state_dir, strerror(errno));
		return 1;
	}
	{
		/* fail early, in the foreground, on what we can check here */
		PGconn *meta = meta_connect(cfg, err, sizeof(err));

		if (meta == NULL || meta_check_installed(meta, cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "repctl: error: %s\n", err);
			db_close(meta);
			return 1;
		}
		db_close(meta);
	}
	if (foreground) {
		log_set_level((enum log_level)log_level_parse(cfg->log_level));
		if (cfg->log_syslog &&
		    log_init(NULL, (enum log_level)log_level_parse(cfg->log_level), 1) < 0)
			return 1;
		return coordinator_main(cfg, -1);
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
		_exit(coordinator_main(cfg, pfd[1]));
	}
	close(pfd[1]);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	if (n == 2 && memcmp(buf, "OK", 2) == 0) {
		printf("coordinator started (pid %ld), log %s\n", (long)child,
		    cfg->log_syslog ? "syslog" : cfg->log_file);
		return 0;
	}
	buf[n > 0 ? n : 0] = '\0';
	fprintf(stderr, "repctl: error: the coordinator did not start: %s\n",
	    n > 0 ? buf : "it exited without saying why (see the log)");
	waitpid(child, NULL, WNOHANG);
	return 1;
}

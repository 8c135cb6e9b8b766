/*
 * log.c - diagnostics for the CLI and the coordinator.
 *
 * The CLI writes its errors to stderr (program output goes to stdout); the
 * daemon writes to its log file, one line per message with a timestamp, the
 * pid and the context prefix of the sync/node/folder it is working on, so
 * `grep 'sync cava_to_juke'` follows one sync.  Every function preserves
 * errno so callers can log and then inspect it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static struct {
	FILE *fp; /* NULL: stderr */
	char *path;
	enum log_level level;
	int syslog;
	char context[128];
} logstate = { .level = LOG_LVL_INFO };

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

int
log_level_parse(const char *name)
{
	if (strcmp(name, "error") == 0)
		return LOG_LVL_ERROR;
	if (strcmp(name, "warn") == 0 || strcmp(name, "warning") == 0)
		return LOG_LVL_WARN;
	if (strcmp(name, "info") == 0)
		return LOG_LVL_INFO;
	if (strcmp(name, "debug") == 0)
		return LOG_LVL_DEBUG;
	return -1;
}

const char *
log_level_name(enum log_level lvl)
{
	return level_names[lvl];
}

int
log_init(const char *logfile, enum log_level level, int use_syslog)
{
	log_close();
	logstate.level = level;
	if (use_syslog) {
		openlog("repctl", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		logstate.syslog = 1;
		return 0;
	}
	if (logfile == NULL)
		return 0;
	logstate.fp = fopen(logfile, "a");
	if (logstate.fp == NULL)
		return -1;
	setvbuf(logstate.fp, NULL, _IOLBF, 0);
	logstate.path = strdup(logfile);
	return 0;
}

int
log_reopen(void)
{
	FILE *fp;

	if (logstate.path == NULL)
		return 0;
	fp = fopen(logstate.path, "a");
	if (fp == NULL)
		return -1;
	setvbuf(fp, NULL, _IOLBF, 0);
	fclose(logstate.fp);
	logstate.fp = fp;
	return 0;
}

void
log_close(void)
{
	if (logstate.fp != NULL)
		fclose(logstate.fp);
	logstate.fp = NULL;
	free(logstate.path);
	logstate.path = NULL;
	if (logstate.syslog)
		closelog();
	logstate.syslog = 0;
}

void
log_set_level(enum log_level level)
{
	logstate.level = level;
}

enum log_level
log_get_level(void)
{
	return logstate.level;
}

void
log_set_context(const char *fmt, ...)
{
	va_list ap;

	if (fmt == NULL) {
		logstate.context[0] = '\0';
		return;
	}
	va_start(ap, fmt);
	vsnprintf(logstate.context, sizeof(logstate.context), fmt, ap);
	va_end(ap);
}

/* Write one finished message to wherever logging goes. */
static void
emit(enum log_level lvl, const char *msg)
{
	const char *ctx = logstate.context;
	const char *sep = ctx[0] ? ": " : "";

	if (lvl > logstate.level)
		return;
	if (logstate.syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(prio[lvl], "%s%s%s", ctx, sep, msg);
	} else if (logstate.fp != NULL) {
		char ts[40];
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		localtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(logstate.fp, "%s.%03ld [%ld] %s: %s%s%s\n", ts, now.tv_nsec / 1000000,
		    (long)getpid(), level_names[lvl], ctx, sep, msg);
	} else if (lvl == LOG_LVL_INFO) {
		fprintf(stderr, "repctl: %s%s%s\n", ctx, sep, msg);
	} else {
		fprintf(stderr, "repctl: %s: %s%s%s\n", level_names[lvl], ctx, sep, msg);
	}
}

static void
vlog(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
{
	char msg[4096];
	int saved = errno;
	size_t len;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(saved));
	}
	emit(lvl, msg);
	errno = saved;
}

void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	vlog(lvl, 0, fmt, ap);
}

#define LOGFN(name, lvl, with_errno)            \
	void name(const char *fmt, ...)         \
	{                                       \
		va_list ap;                     \
		va_start(ap, fmt);              \
		vlog(lvl, with_errno, fmt, ap); \
		va_end(ap);                     \
	}

LOGFN(log_warn, LOG_LVL_WARN, 1)
LOGFN(log_warnx, LOG_LVL_WARN, 0)
LOGFN(log_error, LOG_LVL_ERROR, 0)
LOGFN(log_info, LOG_LVL_INFO, 0)
LOGFN(log_debug_, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

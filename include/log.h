/*
 * log.h - the logging module: one place that decides where diagnostics go.
 *
 * In the CLI and in `start --foreground` messages go to stderr; in the
 * daemon they go to the log file (or syslog).  Every line may carry a
 * context prefix (the sync, node or folder being worked on) set with
 * log_set_context().  Message style: lowercase, no final full stop, names
 * in quotes, error first; a detail or hint goes on its own line.
 */
#ifndef REPCTL_LOG_H
#define REPCTL_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level lvl);

/*
 * Where to write: to stderr when logfile is NULL, else append to logfile
 * (with timestamps and pid).  use_syslog sends to syslog instead of a file.
 * Returns 0, or -1 with errno set when the file cannot be opened (stderr is
 * kept then).
 */
int log_init(const char *logfile, enum log_level level, int use_syslog)
    __attribute__((warn_unused_result));
/* Reopen the log file (SIGUSR1, for logrotate).  */
int log_reopen(void) __attribute__((warn_unused_result));
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Context prefix ("sync cava_to_juke"); NULL clears it.  Copied. */
void log_set_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The same with a va_list (the CLI's cmd_error prints through it). */
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define log_debug(...)                                \
	do {                                          \
		if (log_get_level() >= LOG_LVL_DEBUG) \
			log_debug_(__VA_ARGS__);      \
	} while (0)

/* For the process that cannot go on: log, then exit(1).  */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

/*
 * config.h - repctl's configuration: one struct, filled from one key table.
 *
 * Sources, later ones winning: built-in defaults, the config file (libconfig
 * syntax), then the environment (REPCTL_META, REPCTL_STATE_DIR,
 * REPCTL_NODE).  The file is chosen by `-c`, else $REPCTL_CONFIG, else the
 * installed default (SYSCONFDIR/repctl.conf), which may be absent.
 */
#ifndef REPCTL_CONFIG_H
#define REPCTL_CONFIG_H

#include <stddef.h>

struct config {
	char *path;             /* file that was read, NULL when none */
	char *meta;             /* libpq conninfo of the metadata database */
	char *node;             /* this node's name (the coordinator's own) */
	char *state_dir;        /* pid file, log, secrets, ssh keys */
	char *log_file;         /* "" = <state_dir>/repctl.log */
	char *log_level;        /* error | warn | info | debug */
	int log_syslog;         /* 1: log to syslog instead of log_file */
	char *pid_file;         /* "" = <state_dir>/repctl.pid */
	char *secrets_file;     /* "" = <state_dir>/secrets (pgpass format, 0600) */
	int sync_interval;      /* seconds between fallback runs of a sync */
	int workers;            /* runner processes: sync runs at once */
	int connect_timeout;    /* seconds, libpq connect_timeout */
	int retry_min;          /* first backoff after a failure, seconds */
	int retry_max;          /* backoff ceiling, seconds */
	int circuit_failures;   /* consecutive failures that open a node's circuit */
	int circuit_reset;      /* seconds an open circuit waits before a trial */
	int clock_skew_warn_ms; /* warn when a node's clock is off by more */
	int future_limit;      /* seconds: conflict column values later than now+this are clamped */
	char *ssh_identity;    /* "" = <state_dir>/ssh/id_ed25519 */
	char *ssh_known_hosts; /* "" = <state_dir>/ssh/known_hosts */
	int ssh_timeout;       /* seconds */
	int ssh_io_timeout;    /* seconds a remote agent may stay silent; 0: no limit */
	int folder_scan_interval; /* seconds between full rescans */
	int folder_trash_days;    /* days deleted/replaced files stay in the trash */
	char *folder_ignore;      /* default ignore patterns, comma separated */
	int folder_bwlimit;       /* KiB/s, 0 = unlimited */

	/* connection limits, applied to db.c by config_load */
	int statement_timeout;       /* seconds a statement may run on a server; 0: none */
	int probe_after;             /* seconds of silence before a server is probed; 0: never */
	int tcp_keepalives_idle;     /* seconds before keepalive probes; 0: the system's */
	int tcp_keepalives_interval; /* seconds between probes */
	int tcp_keepalives_count;    /* probes lost before the connection is dead */
	int tcp_user_timeout;        /* seconds data may stay unacknowledged; 0: the system's */

	/* the web console and metrics (console.c); http_listen "" = off */
	char *http_listen;         /* "127.0.0.1:8675", "[::1]:8675", "0.0.0.0:8675" */
	char *http_token;          /* admin bearer token; "" = none (loopback only) */
	char *http_readonly_token; /* bearer token for GETs only; "" = none */
	char *http_tls_cert;       /* PEM certificate file; "" = plain HTTP */
	char *http_tls_key;        /* PEM private key file, with http_tls_cert */
};

/* Key types understood by the table. */
enum config_type {
	CFG_STRING,
	CFG_INT,
	CFG_BOOL,
};

struct config_key {
	const char *name; /* dotted path: "ssh.identity" */
	enum config_type type;
	size_t offset;    /* into struct config */
	const char *def;  /* default, as text */
	int min, max;     /* CFG_INT bounds */
	int reloadable;   /* 1: SIGHUP applies it */
	const char *help; /* one line, for `repctl help config` */
};

/* The key table, terminated by a NULL name. */
extern const struct config_key config_keys[];

/*
 * Load the configuration.  path: -c argument or NULL.  env_lookup is getenv
 * (a parameter so tests can fake it).  On success returns a new struct to be
 * freed with config_free(); on failure returns NULL and writes a message
 * ("FILE:LINE: what; how to fix") into err.
 */
struct config *config_load(const char *path, char *(*env_lookup)(const char *), char *err,
    size_t errlen) __attribute__((warn_unused_result));
void config_free(struct config *cfg);

/*
 * Print every key and its effective value (`repctl config`); the metadata
 * conninfo goes through redact (a new string, freed here: no password).
 */
void config_print(const struct config *cfg, char *(*redact)(const char *));

#endif

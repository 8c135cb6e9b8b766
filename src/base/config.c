/*
 * config.c - the key table and the loader.
 *
 * Every key is declared once in config_keys[]: its name, type, the field it
 * fills, its default and whether a reload (SIGHUP) applies it.  The loader
 * starts from the defaults, reads the file with libconfig, walks every
 * setting in the file so that an unknown key or a value of the wrong type
 * is an error with file:line, and only then applies the environment.  A
 * failed load returns NULL and builds nothing, so a daemon reload keeps its
 * old configuration.
 */
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "xmalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#ifndef STATEDIR
#define STATEDIR "/var/lib/repctl"
#endif

#define OFF(f) offsetof(struct config, f)

const struct config_key config_keys[] = {
	{ "meta", CFG_STRING, OFF(meta), "dbname=repctl", 0, 0, 0,
	    "libpq conninfo of the metadata database (env REPCTL_META overrides)" },
	{ "node", CFG_STRING, OFF(node), "", 0, 0, 0,
	    "this node's name, the coordinator's own (env REPCTL_NODE overrides)" },
	{ "state_dir", CFG_STRING, OFF(state_dir), STATEDIR, 0, 0, 0,
	    "pid file, log, secrets, ssh keys (env REPCTL_STATE_DIR overrides)" },
	{ "log_file", CFG_STRING, OFF(log_file), "", 0, 0, 1,
	    "daemon log file; empty: <state_dir>/repctl.log" },
	{ "log_level", CFG_STRING, OFF(log_level), "info", 0, 0, 1, "error, warn, info or debug" },
	{ "log_syslog", CFG_BOOL, OFF(log_syslog), "false", 0, 1, 1,
	    "log to syslog (facility daemon) instead of log_file" },
	{ "pid_file", CFG_STRING, OFF(pid_file), "", 0, 0, 0,
	    "daemon pid file; empty: <state_dir>/repctl.pid" },
	{ "secrets_file", CFG_STRING, OFF(secrets_file), "", 0, 0, 0,
	    "passwords given with pass=, pgpass format, mode 0600; empty: <state_dir>/secrets" },
	{ "sync_interval", CFG_INT, OFF(sync_interval), "60", 1, 86400, 1,
	    "default seconds between fallback runs of a sync (NOTIFY wakes it sooner)" },
	{ "connect_timeout", CFG_INT, OFF(connect_timeout), "10", 1, 3600, 1,
	    "seconds to wait for a node to accept a connection" },
	{ "probe_after", CFG_INT, OFF(probe_after), "15", 0, 86400, 1,
	    "seconds a statement may wait for its server's first answer before a second connection "
	    "checks that the server still answers; a server that does not within 10 s (stopped, "
	    "hung) is given up (0: never probe)" },
	{ "statement_timeout", CFG_INT, OFF(statement_timeout), "1800", 0, 86400, 1,
	    "seconds a statement (an apply, a COPY) may run on a node; a node silent 5 s longer is "
	    "given up (0: no limit)" },
	{ "tcp.keepalives_idle", CFG_INT, OFF(tcp_keepalives_idle), "10", 0, 86400, 1,
	    "seconds of silence before TCP keepalive probes start (0: the system's settings)" },
	{ "tcp.keepalives_interval", CFG_INT, OFF(tcp_keepalives_interval), "5", 1, 3600, 1,
	    "seconds between keepalive probes" },
	{ "tcp.keepalives_count", CFG_INT, OFF(tcp_keepalives_count), "3", 1, 100, 1,
	    "keepalive probes lost before a connection is declared dead" },
	{ "tcp.user_timeout", CFG_INT, OFF(tcp_user_timeout), "30", 0, 86400, 1,
	    "seconds sent data may stay unacknowledged before the connection is dropped (0: the "
	    "system's)" },
	{ "workers", CFG_INT, OFF(workers), "4", 1, 64, 1,
	    "sync runs the coordinator makes at once (runner processes shared by all syncs)" },
	{ "retry.min", CFG_INT, OFF(retry_min), "1", 1, 3600, 1,
	    "first backoff after a failed run, seconds (doubles each failure)" },
	{ "retry.max", CFG_INT, OFF(retry_max), "60", 1, 86400, 1, "backoff ceiling, seconds" },
	{ "circuit.failures", CFG_INT, OFF(circuit_failures), "5", 1, 1000, 1,
	    "consecutive failures that open a node's circuit breaker" },
	{ "circuit.reset", CFG_INT, OFF(circuit_reset), "15", 1, 86400, 1,
	    "longest wait, seconds, between two probes of a failed node (an open circuit "
	    "closes on the first probe that connects)" },
	{ "clock.skew_warn_ms", CFG_INT, OFF(clock_skew_warn_ms), "500", 1, 3600000, 1,
	    "warn in status when a node's clock is off by more than this" },
	{ "clock.future_limit", CFG_INT, OFF(future_limit), "300", 0, 31536000, 1,
	    "conflict column values later than their change time + this many seconds are clamped" },
	{ "ssh.identity", CFG_STRING, OFF(ssh_identity), "", 0, 0, 1,
	    "private key for file sync; empty: <state_dir>/ssh/id_ed25519" },
	{ "ssh.known_hosts", CFG_STRING, OFF(ssh_known_hosts), "", 0, 0, 1,
	    "known hosts file; empty: <state_dir>/ssh/known_hosts" },
	{ "ssh.timeout", CFG_INT, OFF(ssh_timeout), "15", 1, 3600, 1,
	    "seconds to wait for an SSH connection" },
	{ "ssh.io_timeout", CFG_INT, OFF(ssh_io_timeout), "60", 0, 86400, 1,
	    "seconds a remote agent may stay silent in a folder sync before the run gives it up "
	    "(an agent at work pings every 2 s; 0: no limit)" },
	{ "folders.scan_interval", CFG_INT, OFF(folder_scan_interval), "300", 1, 86400, 1,
	    "seconds between full rescans of a folder" },
	{ "folders.trash_days", CFG_INT, OFF(folder_trash_days), "30", 0, 3650, 1,
	    "days replaced or deleted files are kept in .repctl/trash (0: no trash)" },
	{ "folders.ignore", CFG_STRING, OFF(folder_ignore), "tmp/,log/,.git/", 0, 0, 1,
	    "default ignore patterns, comma separated" },
	{ "folders.bwlimit", CFG_INT, OFF(folder_bwlimit), "0", 0, 10000000, 1,
	    "KiB/s per transfer, 0 = unlimited" },
	{ "http.listen", CFG_STRING, OFF(http_listen), "", 0, 0, 0,
	    "web console and /metrics address, e.g. \"127.0.0.1:8675\"; empty: off (docs/CONSOLE.md)" },
	{ "http.token", CFG_STRING, OFF(http_token), "", 0, 0, 0,
	    "admin bearer token of the console (every POST); required off loopback" },
	{ "http.readonly_token", CFG_STRING, OFF(http_readonly_token), "", 0, 0, 0,
	    "bearer token that may only read (GET) the console and its API" },
	{ "http.tls_cert", CFG_STRING, OFF(http_tls_cert), "", 0, 0, 0,
	    "PEM certificate file: the console speaks HTTPS (with http.tls_key)" },
	{ "http.tls_key", CFG_STRING, OFF(http_tls_key), "", 0, 0, 0,
	    "PEM private key file of http.tls_cert" },
	{ NULL, 0, 0, NULL, 0, 0, 0, NULL },
};

static char **
field_str(struct config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->offset);
}

static int *
field_int(struct config *cfg, const struct config_key *k)
{
	return (int *)((char *)cfg + k->offset);
}

void
config_free(struct config *cfg)
{
	const struct config_key *k;

	if (cfg == NULL)
		return;
	for (k = config_keys; k->name; k++)
		if (k->type == CFG_STRING)
			free(*field_str(cfg, k));
	free(cfg->path);
	free(cfg);
}

static int
parse_int_text(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return (errno || end == s || *end) ? -1 : 0;
}

static void
set_default(struct config *cfg, const struct config_key *k)
{
	long v = 0;

	switch (k->type) {
	case CFG_STRING: *field_str(cfg, k) = xstrdup(k->def); break;
	case CFG_INT:
		(void)parse_int_text(k->def, &v);
		*field_int(cfg, k) = (int)v;
		break;
	case CFG_BOOL: *field_int(cfg, k) = strcmp(k->def, "true") == 0; break;
	}
}

static const struct config_key *
key_lookup(const char *name)
{
	const struct config_key *k;

	for (k = config_keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

/* Is name a group ("ssh") that some key lives under? */
static int
is_group(const char *name)
{
	const struct config_key *k;
	size_t n = strlen(name);

	for (k = config_keys; k->name; k++)
		if (strncmp(k->name, name, n) == 0 && k->name[n] == '.')
			return 1;
	return 0;
}

static void
valid_keys_under(struct buf *b, const char *group)
{
	const struct config_key *k;
	size_t n = group ? strlen(group) : 0;
	const char *sep = "";

	for (k = config_keys; k->name; k++) {
		const char *rest;

		if (group) {
			if (strncmp(k->name, group, n) != 0 || k->name[n] != '.')
				continue;
			rest = k->name + n + 1;
		} else {
			rest = k->name;
		}
		buf_printf(b, "%s%s", sep, rest);
		sep = ", ";
	}
}

static const char *
type_word(enum config_type t)
{
	switch (t) {
	case CFG_STRING: return "a string in double quotes";
	case CFG_INT: return "an integer";
	case CFG_BOOL: return "true or false";
	}
	return "?";
}

/*
 * Walk one group of the file: every member must be a known key of the right
 * type or a known group.  prefix is the dotted path of the group ("" at the
 * root).
 */
static int
apply_group(struct config *cfg, config_setting_t *group, const char *prefix, const char *file,
    char *err, size_t errlen)
{
	int i, n = config_setting_length(group);

	for (i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		int line = (int)config_setting_source_line(s);
		const struct config_key *k;
		char path[256];
		int t = config_setting_type(s);

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
		if (t == CONFIG_TYPE_GROUP) {
			if (!is_group(path))
				goto unknown;
			if (apply_group(cfg, s, path, file, err, errlen) < 0)
				return -1;
			continue;
		}
		k = key_lookup(path);
		if (k == NULL)
			goto unknown;
		switch (k->type) {
		case CFG_STRING:
			if (t != CONFIG_TYPE_STRING)
				goto badtype;
			free(*field_str(cfg, k));
			*field_str(cfg, k) = xstrdup(config_setting_get_string(s));
			break;
		case CFG_INT: {
			long long v;

			if (t == CONFIG_TYPE_INT)
				v = config_setting_get_int(s);
			else if (t == CONFIG_TYPE_INT64)
				v = config_setting_get_int64(s);
			else
				goto badtype;
			if (v < k->min || v > k->max) {
				snprintf(err, errlen,
				    "%s:%d: '%s' is %lld, out of range; use a value from %d to %d",
				    file, line, path, v, k->min, k->max);
				return -1;
			}
			*field_int(cfg, k) = (int)v;
			break;
		}
		case CFG_BOOL:
			if (t != CONFIG_TYPE_BOOL)
				goto badtype;
			*field_int(cfg, k) = config_setting_get_bool(s);
			break;
		}
		continue;
unknown : {
	struct buf b = BUF_INIT;

	valid_keys_under(&b, *prefix ? prefix : NULL);
	snprintf(err, errlen, "%s:%d: unknown key '%s'%s%s%s; valid keys here: %s", file, line,
	    path, *prefix ? " in group '" : "", prefix, *prefix ? "'" : "", b.data);
	buf_free(&b);
	return -1;
}
badtype:
		snprintf(err, errlen, "%s:%d: '%s' must be %s (see repctl.conf.example)", file,
		    line, path, type_word(k->type));
		return -1;
	}
	return 0;
}

static void
fill_default_path(char **field, const char *state_dir, const char *leaf)
{
	if (**field != '\0')
		return;
	free(*field);
	*field = xasprintf("%s/%s", state_dir, leaf);
}

static void
env_override(char **field, const char *value)
{
	if (value == NULL || *value == '\0')
		return;
	free(*field);
	*field = xstrdup(value);
}

struct config *
config_load(const char *path, char *(*env_lookup)(const char *), char *err, size_t errlen)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	const struct config_key *k;
	const char *file = path;
	int explicit = path != NULL;
	config_t lc;
	int lc_inited = 0;

	for (k = config_keys; k->name; k++)
		set_default(cfg, k);

	if (file == NULL) {
		file = env_lookup("REPCTL_CONFIG");
		explicit = file != NULL && *file;
		if (!explicit)
			file = SYSCONFDIR "/repctl.conf";
	}
	if (!explicit && access(file, F_OK) != 0)
		file = NULL; /* the installed default is optional */

	if (file != NULL) {
		FILE *fp = fopen(file, "r");

		if (fp == NULL) {
			snprintf(err, errlen,
			    "cannot open configuration file \"%s\": %s; pass an existing "
			    "file with -c or REPCTL_CONFIG, or unset them to use defaults",
			    file, strerror(errno));
			goto fail;
		}
		config_init(&lc);
		lc_inited = 1;
		if (config_read(&lc, fp) != CONFIG_TRUE) {
			snprintf(err, errlen, "%s:%d: %s", file, config_error_line(&lc),
			    config_error_text(&lc));
			fclose(fp);
			goto fail;
		}
		fclose(fp);
		if (apply_group(cfg, config_root_setting(&lc), "", file, err, errlen) < 0)
			goto fail;
		config_destroy(&lc);
		lc_inited = 0;
		cfg->path = xstrdup(file);
	}

	env_override(&cfg->meta, env_lookup("REPCTL_META"));
	env_override(&cfg->state_dir, env_lookup("REPCTL_STATE_DIR"));
	env_override(&cfg->node, env_lookup("REPCTL_NODE"));

	if (log_level_parse(cfg->log_level) < 0) {
		snprintf(err, errlen,
		    "%s: log_level \"%s\" is not known; use error, warn, info or debug",
		    cfg->path ? cfg->path : "configuration", cfg->log_level);
		goto fail;
	}
	if (cfg->retry_min > cfg->retry_max) {
		snprintf(err, errlen, "%s: retry.min (%d) is larger than retry.max (%d)",
		    cfg->path ? cfg->path : "configuration", cfg->retry_min, cfg->retry_max);
		goto fail;
	}
	fill_default_path(&cfg->log_file, cfg->state_dir, "repctl.log");
	fill_default_path(&cfg->pid_file, cfg->state_dir, "repctl.pid");
	fill_default_path(&cfg->secrets_file, cfg->state_dir, "secrets");
	fill_default_path(&cfg->ssh_identity, cfg->state_dir, "ssh/id_ed25519");
	fill_default_path(&cfg->ssh_known_hosts, cfg->state_dir, "ssh/known_hosts");
	return cfg;
fail:
	if (lc_inited)
		config_destroy(&lc);
	config_free(cfg);
	return NULL;
}

void
config_print(const struct config *cfg, char *(*redact)(const char *))
{
	const struct config_key *k;

	printf("# configuration file: %s\n", cfg->path ? cfg->path : "(none, defaults)");
	for (k = config_keys; k->name; k++) {
		const char *p = (const char *)cfg + k->offset;

		switch (k->type) {
		case CFG_STRING:
			if ((strcmp(k->name, "http.token") == 0 ||
				strcmp(k->name, "http.readonly_token") == 0) &&
			    **(char *const *)p) {
				/* a secret: say that it is set, never what it is */
				printf("%s = \"(set, %zu characters)\"\n", k->name,
				    strlen(*(char *const *)p));
			} else if (strcmp(k->name, "meta") == 0) {
				char *red = redact(*(char *const *)p);

				printf("%s = \"%s\"\n", k->name, red);
				free(red);
			} else {
				printf("%s = \"%s\"\n", k->name, *(char *const *)p);
			}
			break;
		case CFG_INT: printf("%s = %d\n", k->name, *(const int *)p); break;
		case CFG_BOOL:
			printf("%s = %s\n", k->name, *(const int *)p ? "true" : "false");
			break;
		}
	}
}

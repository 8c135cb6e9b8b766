/*
 * test_config.c - the configuration loader (src/base/config.c).
 *
 * Covers config_load() with a fake environment (a static table instead of
 * getenv) and temporary files under /tmp: built-in defaults and the paths
 * derived from state_dir, a file with nested groups, the environment
 * overriding the file, REPCTL_CONFIG naming the file, and every error
 * ("FILE:LINE: ..." for unknown keys, wrong types, out-of-range values and
 * libconfig syntax errors; missing files; a bad log_level; retry.min >
 * retry.max).  Also checks the key table itself: help text, defaults that
 * parse for their type, and a file spelling out every default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "log.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#ifndef STATEDIR
#define STATEDIR "/var/lib/repctl"
#endif

#define assert_contains(hay, needle)                                                        \
	do {                                                                                \
		const char *h_ = (hay), *n_ = (needle);                                     \
		if (h_ == NULL || strstr(h_, n_) == NULL)                                   \
			fail_msg("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
	} while (0)

#define assert_prefix(hay, pre)                                                                \
	do {                                                                                   \
		const char *h_ = (hay), *p_ = (pre);                                           \
		if (h_ == NULL || strncmp(h_, p_, strlen(p_)) != 0)                            \
			fail_msg("\"%s\" does not start with \"%s\"", h_ ? h_ : "(null)", p_); \
	} while (0)

/* ---- the fake environment ---- */

struct env {
	const char *name;
	char *value;
};

static const struct env *env_table;

static char *
fake_env(const char *name)
{
	const struct env *e;

	for (e = env_table; e && e->name; e++)
		if (strcmp(e->name, name) == 0)
			return e->value;
	return NULL;
}

static const struct env no_env[] = { { NULL, NULL } };

/* ---- temporary files, all removed by the group teardown ---- */

#define MAXTMP 64
static char tmp_paths[MAXTMP][64];
static int ntmp;

/* Write text to a new file under /tmp; returns its path. */
static const char *
tmp_conf(const char *text)
{
	char *path;
	int fd;
	size_t len = strlen(text);

	assert_true(ntmp < MAXTMP);
	path = tmp_paths[ntmp];
	snprintf(path, sizeof(tmp_paths[0]), "/tmp/repctl-test-cfg-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		fail_msg("mkstemp: %s", path);
	ntmp++;
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static int
remove_tmp(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < ntmp; i++)
		(void)unlink(tmp_paths[i]);
	ntmp = 0;
	return 0;
}

/* Load path with env; on failure the message is left in err. */
static struct config *
load(const char *path, const struct env *env, char *err, size_t errlen)
{
	struct config *cfg;

	env_table = env;
	err[0] = '\0';
	cfg = config_load(path, fake_env, err, errlen);
	env_table = NULL;
	return cfg;
}

/* Load text that must fail; err gets the message, whose prefix is checked. */
static void
expect_error(const char *text, int line, const char *rest, char *err, size_t errlen)
{
	const char *path = tmp_conf(text);
	struct config *cfg = load(path, no_env, err, errlen);
	char want[512];

	if (cfg != NULL) {
		config_free(cfg);
		fail_msg("loading \"%s\" succeeded", text);
	}
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
	else
		snprintf(want, sizeof(want), "%s: %s", path, rest);
	assert_prefix(err, want);
}

static void
assert_path(const char *got, const char *dir, const char *leaf)
{
	char want[512];

	snprintf(want, sizeof(want), "%s/%s", dir, leaf);
	assert_string_equal(got, want);
}

static int
have_installed_default(void)
{
	if (access(SYSCONFDIR "/repctl.conf", F_OK) == 0) {
		print_message("skipped: %s exists on this machine\n", SYSCONFDIR "/repctl.conf");
		return 1;
	}
	return 0;
}

static void
assert_defaults(const struct config *cfg, const char *state_dir)
{
	assert_string_equal(cfg->meta, "dbname=repctl");
	assert_string_equal(cfg->node, "");
	assert_string_equal(cfg->state_dir, state_dir);
	assert_path(cfg->log_file, state_dir, "repctl.log");
	assert_path(cfg->pid_file, state_dir, "repctl.pid");
	assert_path(cfg->secrets_file, state_dir, "secrets");
	assert_path(cfg->ssh_identity, state_dir, "ssh/id_ed25519");
	assert_path(cfg->ssh_known_hosts, state_dir, "ssh/known_hosts");
	assert_string_equal(cfg->log_level, "info");
	assert_int_equal(cfg->log_syslog, 0);
	assert_int_equal(cfg->sync_interval, 60);
	assert_int_equal(cfg->connect_timeout, 10);
	assert_int_equal(cfg->retry_min, 1);
	assert_int_equal(cfg->retry_max, 60);
	assert_int_equal(cfg->circuit_failures, 5);
	assert_int_equal(cfg->circuit_reset, 15);
	assert_int_equal(cfg->workers, 4);
	assert_int_equal(cfg->clock_skew_warn_ms, 500);
	assert_int_equal(cfg->future_limit, 300);
	assert_int_equal(cfg->ssh_timeout, 15);
	assert_int_equal(cfg->folder_scan_interval, 300);
	assert_int_equal(cfg->folder_trash_days, 30);
	assert_string_equal(cfg->folder_ignore, "tmp/,log/,.git/");
	assert_int_equal(cfg->folder_bwlimit, 0);
}

/* ---- loading ---- */

static void
test_defaults(void **state)
{
	char err[2048];
	struct config *cfg;
	static const struct env empty_config[] = { { "REPCTL_CONFIG", "" }, { NULL, NULL } };

	(void)state;
	if (have_installed_default()) {
		skip();
		return;
	}
	cfg = load(NULL, no_env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_null(cfg->path);
	assert_defaults(cfg, STATEDIR);
	config_free(cfg);

	/* an empty REPCTL_CONFIG is as good as none */
	cfg = load(NULL, empty_config, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_null(cfg->path);
	assert_defaults(cfg, STATEDIR);
	config_free(cfg);
}

static void
test_empty_file(void **state)
{
	char err[2048];
	const char *path = tmp_conf("# nothing but a comment\n");
	struct config *cfg;

	(void)state;
	cfg = load(path, no_env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_string_equal(cfg->path, path);
	assert_defaults(cfg, STATEDIR);
	config_free(cfg);
}

static void
test_file_applied(void **state)
{
	char err[2048];
	const char *path =
	    tmp_conf("# repctl test\n"
		     "meta = \"host=x\";\n"
		     "state_dir = \"/srv/rep\";\n"
		     "sync_interval = 30;\n"
		     "log_level = \"debug\";\n"
		     "log_syslog = true;\n"
		     "ssh = { identity = \"/k\"; timeout = 20; };\n"
		     "circuit = { failures = 3; };\n"
		     "retry = {\n"
		     "  min = 2;\n"
		     "  max = 10;\n"
		     "};\n"
		     "clock = { future_limit = 0; };\n"
		     "folders = { ignore = \"a/\"; bwlimit = 100; trash_days = 0; };\n"
		     "secrets_file = \"/etc/repctl/secrets\";\n");
	struct config *cfg;

	(void)state;
	cfg = load(path, no_env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->meta, "host=x");
	assert_string_equal(cfg->state_dir, "/srv/rep");
	assert_int_equal(cfg->sync_interval, 30);
	assert_string_equal(cfg->log_level, "debug");
	assert_int_equal(cfg->log_syslog, 1);
	assert_string_equal(cfg->ssh_identity, "/k");
	assert_int_equal(cfg->ssh_timeout, 20);
	assert_int_equal(cfg->circuit_failures, 3);
	assert_int_equal(cfg->circuit_reset, 15); /* untouched key of the group */
	assert_int_equal(cfg->retry_min, 2);
	assert_int_equal(cfg->retry_max, 10);
	assert_int_equal(cfg->future_limit, 0);
	assert_int_equal(cfg->clock_skew_warn_ms, 500);
	assert_string_equal(cfg->folder_ignore, "a/");
	assert_int_equal(cfg->folder_bwlimit, 100);
	assert_int_equal(cfg->folder_trash_days, 0);
	assert_string_equal(cfg->secrets_file, "/etc/repctl/secrets");
	/* derived from the file's state_dir */
	assert_path(cfg->log_file, "/srv/rep", "repctl.log");
	assert_path(cfg->pid_file, "/srv/rep", "repctl.pid");
	assert_path(cfg->ssh_known_hosts, "/srv/rep", "ssh/known_hosts");
	/* untouched */
	assert_string_equal(cfg->node, "");
	assert_int_equal(cfg->connect_timeout, 10);
	config_free(cfg);
}

static void
test_range_bounds_accepted(void **state)
{
	char err[2048];
	const char *path = tmp_conf("sync_interval = 1;\n"
				    "connect_timeout = 3600;\n"
				    "retry = { min = 3600; max = 86400; };\n"
				    "folders = { bwlimit = 10000000; scan_interval = 86400; };\n"
				    "clock = { skew_warn_ms = 3600000; };\n"
				    "circuit = { failures = 1000; reset = 1; };\n"
				    "log_syslog = false;\n");
	struct config *cfg;

	(void)state;
	cfg = load(path, no_env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_int_equal(cfg->sync_interval, 1);
	assert_int_equal(cfg->connect_timeout, 3600);
	assert_int_equal(cfg->retry_min, 3600);
	assert_int_equal(cfg->retry_max, 86400);
	assert_int_equal(cfg->folder_bwlimit, 10000000);
	assert_int_equal(cfg->folder_scan_interval, 86400);
	assert_int_equal(cfg->clock_skew_warn_ms, 3600000);
	assert_int_equal(cfg->circuit_failures, 1000);
	assert_int_equal(cfg->circuit_reset, 1);
	assert_int_equal(cfg->log_syslog, 0);
	config_free(cfg);
}

static void
test_env_overrides(void **state)
{
	char err[2048];
	const char *path = tmp_conf("meta = \"host=file\";\n"
				    "state_dir = \"/from/file\";\n"
				    "node = \"filenode\";\n"
				    "ssh = { identity = \"/k\"; };\n");
	static const struct env env[] = {
		{ "REPCTL_META", "host=env dbname=m" },
		{ "REPCTL_STATE_DIR", "/from/env" },
		{ "REPCTL_NODE", "envnode" },
		{ NULL, NULL },
	};
	static const struct env empty[] = {
		{ "REPCTL_META", "" },
		{ "REPCTL_STATE_DIR", "" },
		{ "REPCTL_NODE", "" },
		{ NULL, NULL },
	};
	struct config *cfg;

	(void)state;
	cfg = load(path, env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_string_equal(cfg->meta, "host=env dbname=m");
	assert_string_equal(cfg->state_dir, "/from/env");
	assert_string_equal(cfg->node, "envnode");
	assert_path(cfg->log_file, "/from/env", "repctl.log");
	assert_path(cfg->secrets_file, "/from/env", "secrets");
	assert_string_equal(cfg->ssh_identity, "/k");
	config_free(cfg);

	/* empty variables override nothing */
	cfg = load(path, empty, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_string_equal(cfg->meta, "host=file");
	assert_string_equal(cfg->state_dir, "/from/file");
	assert_string_equal(cfg->node, "filenode");
	assert_path(cfg->log_file, "/from/file", "repctl.log");
	config_free(cfg);
}

static void
test_env_without_file(void **state)
{
	char err[2048];
	static const struct env env[] = {
		{ "REPCTL_META", "service=meta" },
		{ "REPCTL_STATE_DIR", "/st" },
		{ NULL, NULL },
	};
	struct config *cfg;

	(void)state;
	if (have_installed_default()) {
		skip();
		return;
	}
	cfg = load(NULL, env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_null(cfg->path);
	assert_string_equal(cfg->meta, "service=meta");
	assert_string_equal(cfg->state_dir, "/st");
	assert_string_equal(cfg->log_file, "/st/repctl.log");
	assert_string_equal(cfg->secrets_file, "/st/secrets");
	assert_string_equal(cfg->ssh_identity, "/st/ssh/id_ed25519");
	config_free(cfg);
}

static void
test_repctl_config_env(void **state)
{
	char err[2048];
	const char *path = tmp_conf("meta = \"host=via-env\";\nsync_interval = 7;\n");
	const char *other = tmp_conf("meta = \"host=explicit\";\n");
	struct env env[] = {
		{ "REPCTL_CONFIG", (char *)(uintptr_t)path },
		{ NULL, NULL },
	};
	struct env missing[] = {
		{ "REPCTL_CONFIG", "/tmp/repctl-test-cfg-does-not-exist/repctl.conf" },
		{ NULL, NULL },
	};
	struct config *cfg;

	(void)state;
	cfg = load(NULL, env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->meta, "host=via-env");
	assert_int_equal(cfg->sync_interval, 7);
	config_free(cfg);

	/* -c wins over REPCTL_CONFIG */
	cfg = load(other, env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_string_equal(cfg->path, other);
	assert_string_equal(cfg->meta, "host=explicit");
	assert_int_equal(cfg->sync_interval, 60);
	config_free(cfg);

	/* a file named by REPCTL_CONFIG must exist */
	cfg = load(NULL, missing, err, sizeof(err));
	assert_null(cfg);
	assert_prefix(err,
	    "cannot open configuration file "
	    "\"/tmp/repctl-test-cfg-does-not-exist/repctl.conf\": "
	    "No such file or directory; ");
	assert_contains(err, "REPCTL_CONFIG");
}

/* ---- errors ---- */

static void
test_missing_file(void **state)
{
	char err[2048];
	struct config *cfg;

	(void)state;
	cfg = load("/tmp/repctl-test-cfg-does-not-exist.conf", no_env, err, sizeof(err));
	assert_null(cfg);
	assert_string_equal(err,
	    "cannot open configuration file \"/tmp/repctl-test-cfg-does-not-exist.conf\": "
	    "No such file or directory; pass an existing file with -c or REPCTL_CONFIG, "
	    "or unset them to use defaults");
}

static void
test_unknown_key(void **state)
{
	char err[2048];

	(void)state;
	expect_error("meta = \"a\";\nnode = \"n\";\nbogus = 1;\n", 3,
	    "unknown key 'bogus'; valid keys here: meta, node, state_dir, ", err, sizeof(err));
	assert_contains(err, "sync_interval");
	assert_contains(err, "ssh.identity");

	/* an unknown group */
	expect_error("\nbogus = { a = 1; };\n", 2, "unknown key 'bogus'; valid keys here: ", err,
	    sizeof(err));

	/* a group name used as a key */
	expect_error("ssh = \"x\";\n", 1, "unknown key 'ssh'; valid keys here: ", err, sizeof(err));

	/* a key used as a group */
	expect_error("meta = { host = \"x\"; };\n", 1, "unknown key 'meta'; ", err, sizeof(err));
}

static void
test_unknown_key_in_group(void **state)
{
	char err[2048];

	(void)state;
	expect_error("ssh = {\n  idenity = \"x\";\n};\n", 2,
	    "unknown key 'ssh.idenity' in group 'ssh'; valid keys here: identity, known_hosts, "
	    "timeout",
	    err, sizeof(err));
	/* only the group's own keys are offered */
	assert_true(strstr(err, "sync_interval") == NULL);
	assert_true(strstr(err, "ssh.identity") == NULL);

	expect_error("retry = { min = 1; maximum = 5; };\n", 1,
	    "unknown key 'retry.maximum' in group 'retry'; valid keys here: min, max", err,
	    sizeof(err));

	/* a group inside a group */
	expect_error("ssh = { x = { y = 1; }; };\n", 1,
	    "unknown key 'ssh.x' in group 'ssh'; valid keys here: identity", err, sizeof(err));
}

static void
test_wrong_type(void **state)
{
	char err[2048];

	(void)state;
	expect_error("meta = \"a\";\nsync_interval = \"60\";\n", 2,
	    "'sync_interval' must be an integer (see repctl.conf.example)", err, sizeof(err));

	expect_error(
	    "sync_interval = 1.5;\n", 1, "'sync_interval' must be an integer", err, sizeof(err));
	expect_error(
	    "meta = 5;\n", 1, "'meta' must be a string in double quotes", err, sizeof(err));
	expect_error(
	    "log_syslog = 1;\n", 1, "'log_syslog' must be true or false", err, sizeof(err));
	expect_error(
	    "log_syslog = \"yes\";\n", 1, "'log_syslog' must be true or false", err, sizeof(err));
	expect_error("ssh = {\n\n timeout = \"5\"; };\n", 3, "'ssh.timeout' must be an integer",
	    err, sizeof(err));
	expect_error("folders = { ignore = [\"a\", \"b\"]; };\n", 1,
	    "'folders.ignore' must be a string in double quotes", err, sizeof(err));
}

static void
test_out_of_range(void **state)
{
	char err[2048];

	(void)state;
	expect_error("sync_interval = 0;\n", 1,
	    "'sync_interval' is 0, out of range; use a value from 1 to 86400", err, sizeof(err));
	expect_error("\n\nsync_interval = 86401;\n", 3,
	    "'sync_interval' is 86401, out of range; use a value from 1 to 86400", err,
	    sizeof(err));
	expect_error("sync_interval = -5;\n", 1,
	    "'sync_interval' is -5, out of range; use a value from 1 to 86400", err, sizeof(err));
	expect_error("sync_interval = 10000000000L;\n", 1,
	    "'sync_interval' is 10000000000, out of range; use a value from 1 to 86400", err,
	    sizeof(err));
	expect_error("circuit = { failures = 0; };\n", 1,
	    "'circuit.failures' is 0, out of range; use a value from 1 to 1000", err, sizeof(err));
	expect_error("folders = { trash_days = -1; };\n", 1,
	    "'folders.trash_days' is -1, out of range; use a value from 0 to 3650", err,
	    sizeof(err));
}

static void
test_syntax_error(void **state)
{
	char err[2048];

	(void)state;
	/* missing '=' (libconfig itself allows a missing ';') */
	expect_error("meta = \"a\";\nsync_interval 5;\n", 2, "syntax error", err, sizeof(err));
	/* missing closing brace: noticed at the end of the file */
	expect_error("ssh = {\n  identity = \"x\";\n\n", 4, "syntax error", err, sizeof(err));
	/* unterminated string */
	expect_error("meta = \"a;\n", 2, "syntax error", err, sizeof(err));
	/* missing value */
	expect_error("meta = ;\n", 1, "syntax error", err, sizeof(err));
	/* the same key twice */
	expect_error("sync_interval = 1;\nsync_interval = 2;\n", 2, "duplicate setting name", err,
	    sizeof(err));
}

static void
test_bad_log_level(void **state)
{
	char err[2048];

	(void)state;
	expect_error("log_level = \"loud\";\n", 0,
	    "log_level \"loud\" is not known; use error, warn, info or debug", err, sizeof(err));
	expect_error("log_level = \"\";\n", 0, "log_level \"\" is not known; ", err, sizeof(err));
}

static void
test_retry_order(void **state)
{
	char err[2048];
	const char *path;
	struct config *cfg;

	(void)state;
	expect_error("retry = { min = 10; max = 5; };\n", 0,
	    "retry.min (10) is larger than retry.max (5)", err, sizeof(err));
	/* against the default max */
	expect_error("retry = { min = 100; };\n", 0,
	    "retry.min (100) is larger than retry.max (60)", err, sizeof(err));

	/* equal is fine */
	path = tmp_conf("retry = { min = 5; max = 5; };\n");
	cfg = load(path, no_env, err, sizeof(err));
	if (cfg == NULL)
		fail_msg("config_load: %s", err);
	assert_int_equal(cfg->retry_min, 5);
	assert_int_equal(cfg->retry_max, 5);
	config_free(cfg);
}

/* ---- the key table ---- */

static void
test_key_table(void **state)
{
	const struct config_key *k, *o;
	int n = 0;

	(void)state;
	for (k = config_keys; k->name; k++, n++) {
		if (*k->name == '\0')
			fail_msg("key %d has an empty name", n);
		if (k->help == NULL || *k->help == '\0')
			fail_msg("key '%s' has no help", k->name);
		if (k->def == NULL)
			fail_msg("key '%s' has no default", k->name);
		assert_true(k->offset < sizeof(struct config));
		for (o = config_keys; o != k; o++)
			if (strcmp(o->name, k->name) == 0)
				fail_msg("key '%s' is declared twice", k->name);
		switch (k->type) {
		case CFG_STRING: break;
		case CFG_INT: {
			char *end;
			long v = strtol(k->def, &end, 10);

			if (end == k->def || *end != '\0')
				fail_msg(
				    "key '%s': default \"%s\" is not an integer", k->name, k->def);
			if (k->min > k->max)
				fail_msg("key '%s': min %d > max %d", k->name, k->min, k->max);
			if (v < k->min || v > k->max)
				fail_msg("key '%s': default %ld is outside %d..%d", k->name, v,
				    k->min, k->max);
			break;
		}
		case CFG_BOOL:
			if (strcmp(k->def, "true") != 0 && strcmp(k->def, "false") != 0)
				fail_msg("key '%s': default \"%s\" is not true or false", k->name,
				    k->def);
			break;
		default: fail_msg("key '%s' has an unknown type %d", k->name, (int)k->type);
		}
		if (strcmp(k->name, "log_level") == 0 && log_level_parse(k->def) < 0)
			fail_msg("default log_level \"%s\" is not a level", k->def);
	}
	assert_true(n >= 20);
}

/* Every default, spelt out in a file (groups for dotted keys), loads to the defaults. */
static void
test_defaults_as_file(void **state)
{
	struct buf b = BUF_INIT;
	const struct config_key *k, *o;
	char err[2048];
	const char *path;
	struct config *cfg;

	(void)state;
	for (k = config_keys; k->name; k++) {
		const char *dot = strchr(k->name, '.');
		size_t glen = dot ? (size_t)(dot - k->name) : 0;
		int seen = 0;

		if (dot) {
			/* emit each group once, with all of its keys */
			for (o = config_keys; o != k; o++)
				if (strncmp(o->name, k->name, glen + 1) == 0)
					seen = 1;
			if (seen)
				continue;
			buf_printf(&b, "%.*s = {\n", (int)glen, k->name);
			for (o = k; o->name; o++) {
				if (strncmp(o->name, k->name, glen + 1) != 0)
					continue;
				buf_printf(&b,
				    o->type == CFG_STRING ? "  %s = \"%s\";\n" : "  %s = %s;\n",
				    o->name + glen + 1, o->def);
			}
			buf_puts(&b, "};\n");
		} else {
			buf_printf(&b, k->type == CFG_STRING ? "%s = \"%s\";\n" : "%s = %s;\n",
			    k->name, k->def);
		}
	}
	path = tmp_conf(b.data);
	cfg = load(path, no_env, err, sizeof(err));
	if (cfg == NULL) {
		print_message("%s", b.data);
		buf_free(&b);
		fail_msg("config_load: %s", err);
	}
	buf_free(&b);
	assert_string_equal(cfg->path, path);
	assert_defaults(cfg, STATEDIR);
	config_free(cfg);
	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_file_applied),
		cmocka_unit_test(test_range_bounds_accepted),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_env_without_file),
		cmocka_unit_test(test_repctl_config_env),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_key_in_group),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_bad_log_level),
		cmocka_unit_test(test_retry_order),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test(test_defaults_as_file),
	};

	return cmocka_run_group_tests(tests, NULL, remove_tmp);
}

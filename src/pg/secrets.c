/*
 * secrets.c - maintain the pgpass-format secrets file.
 *
 * The file is rewritten whole into a temporary file (0600) and renamed over
 * the old one, so a crash leaves either the old or the new file.  Fields
 * are escaped as libpq expects (backslash before ':' and '\').
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "db.h"
#include "secrets.h"
#include "xmalloc.h"

/* The operating system user, libpq's default user name. */
static char *
os_user(void)
{
	struct passwd *pw = getpwuid(geteuid());

	return xstrdup(pw ? pw->pw_name : "postgres");
}

static char *
or_env(char *v, const char *env)
{
	if (v == NULL && getenv(env) && *getenv(env))
		v = xstrdup(getenv(env));
	return v;
}

/* Fill the fields as libpq matches password-file lines. */
static void
key_fill(struct secret_key *k, char *host, char *port, char *db, char *user)
{
	/* libpq matches a socket connection against "localhost" */
	if (host == NULL || host[0] == '/' || host[0] == '\0') {
		free(host);
		host = xstrdup("localhost");
	}
	k->host = host;
	k->port = port && *port ? port : (free(port), xstrdup("5432"));
	k->user = user && *user ? user : (free(user), os_user());
	k->dbname = db && *db ? db : (free(db), xstrdup(k->user));
}

void
secret_key_from_conninfo(const char *conninfo, struct secret_key *k)
{
	key_fill(k, or_env(db_conninfo_get(conninfo, "host"), "PGHOST"),
	    or_env(db_conninfo_get(conninfo, "port"), "PGPORT"),
	    or_env(db_conninfo_get(conninfo, "dbname"), "PGDATABASE"),
	    or_env(db_conninfo_get(conninfo, "user"), "PGUSER"));
}

void
secret_key_from_conn(PGconn *conn, struct secret_key *k)
{
	const char *h = PQhost(conn), *p = PQport(conn), *d = PQdb(conn), *u = PQuser(conn);

	key_fill(k, h ? xstrdup(h) : NULL, p ? xstrdup(p) : NULL, d ? xstrdup(d) : NULL,
	    u ? xstrdup(u) : NULL);
}

/* Split one pgpass line into 5 unescaped fields; 0 or -1. */
static int
split_line(const char *line, char f[5][256])
{
	int i = 0;
	size_t n = 0;

	for (; *line && *line != '\n'; line++) {
		if (*line == '\\' && line[1] && line[1] != '\n') {
			line++;
		} else if (*line == ':' && i < 4) {
			f[i][n] = '\0';
			i++;
			n = 0;
			continue;
		}
		if (n < 255)
			f[i][n++] = *line;
	}
	f[i][n] = '\0';
	return i == 4 ? 0 : -1;
}

static int
field_match(const char *pattern, const char *value)
{
	return strcmp(pattern, "*") == 0 || strcmp(pattern, value) == 0;
}

char *
secrets_lookup(const char *path, const struct secret_key *k)
{
	FILE *fp = fopen(path, "r");
	char line[4096], f[5][256];
	char *pw = NULL;

	if (fp == NULL)
		return NULL;
	while (pw == NULL && fgets(line, sizeof(line), fp)) {
		if (line[0] == '#' || split_line(line, f) < 0)
			continue;
		if (field_match(f[0], k->host) && field_match(f[1], k->port) &&
		    field_match(f[2], k->dbname) && field_match(f[3], k->user))
			pw = xstrdup(f[4]);
	}
	fclose(fp);
	return pw;
}

void
secret_key_clear(struct secret_key *k)
{
	free(k->host);
	free(k->port);
	free(k->dbname);
	free(k->user);
	memset(k, 0, sizeof(*k));
}

static void
put_field(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == ':' || *s == '\\')
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
}

static void
key_prefix(struct buf *b, const struct secret_key *k)
{
	put_field(b, k->host);
	buf_putc(b, ':');
	put_field(b, k->port);
	buf_putc(b, ':');
	put_field(b, k->dbname);
	buf_putc(b, ':');
	put_field(b, k->user);
	buf_putc(b, ':');
}

/* Rewrite the file without k's line, plus newline (when not NULL). */
static int
rewrite(const char *path, const struct secret_key *k, const char *newline, char *err, size_t errlen)
{
	struct buf prefix = BUF_INIT, out = BUF_INIT;
	char *dir = xstrdup(path), *slash;
	FILE *fp;
	char line[4096];
	int rc = -1;

	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0700) < 0) {
			snprintf(err, errlen, "cannot create directory \"%s\": %s", dir,
			    strerror(errno));
			goto out;
		}
	}
	key_prefix(&prefix, k);
	fp = fopen(path, "r");
	if (fp) {
		while (fgets(line, sizeof(line), fp))
			if (strncmp(line, prefix.data, prefix.len) != 0)
				buf_puts(&out, line);
		fclose(fp);
	} else if (errno != ENOENT) {
		snprintf(err, errlen, "cannot read secrets file \"%s\": %s", path, strerror(errno));
		goto out;
	}
	if (newline)
		buf_puts(&out, newline);
	{
		char inner[512];

		if (atomic_write(
			path, out.data ? out.data : "", out.len, 0600, inner, sizeof(inner)) < 0) {
			snprintf(err, errlen, "cannot write secrets file \"%s\": %s", path, inner);
			goto out;
		}
	}
	rc = 0;
out:
	buf_free(&prefix);
	buf_free(&out);
	free(dir);
	return rc;
}

int
secrets_put(
    const char *path, const struct secret_key *k, const char *password, char *err, size_t errlen)
{
	struct buf line = BUF_INIT;
	int rc;

	key_prefix(&line, k);
	put_field(&line, password);
	buf_putc(&line, '\n');
	rc = rewrite(path, k, line.data, err, errlen);
	buf_free(&line);
	return rc;
}

int
secrets_drop(const char *path, const struct secret_key *k, char *err, size_t errlen)
{
	if (access(path, F_OK) != 0)
		return 0;
	return rewrite(path, k, NULL, err, errlen);
}

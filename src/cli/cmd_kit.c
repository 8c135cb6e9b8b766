/*
 * cmd_kit.c - client-kit NAME: the files a client's operator needs before
 * the primary can onboard it.
 *
 * The guide's Part 2 has the client's operator copy the primary's
 * docker-compose.yml, create a superuser, edit pg_hba.conf and set up
 * Syncthing by hand.  The kit replaces that: `docker compose up -d` in the
 * kit's directory starts PostgreSQL 15 (its first start lets the primary's
 * coordinator in through pg_hba.conf) and the SSH endpoint where the
 * coordinator runs `repctl agent` for the music folder, with the
 * primary's public key restricted to that command.  Then the primary runs
 * `repctl onboard` (README.txt in the kit has the command line).
 *
 * The kit is the project's docker/client/docker-compose.yml, compiled into
 * this binary with docker/agent-entrypoint.sh (the Makefile's kit_embed.c,
 * made like the SQL's sql_embed.c), so that it is the same from a checkout,
 * an installed binary or the image: the same services, variables and agent
 * (user repctl, agent-entrypoint.sh, port 2222, published on the VPN address
 * only), with the agent image built from the kit's own Dockerfile and repctl
 * binary instead of the source tree, and initdb/ added to the database
 * service.
 *
 * The coordinator's address in the pg_hba.conf line is how the client sees
 * it: from=ADDRESS, else asked from the client itself (inet_client_addr()
 * on a connection to the registered node), else the local address that
 * routes to host=.  Existing files are never overwritten without --force,
 * and nothing is written when one of them exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "fs_ssh.h"
#include "log.h"
#include "meta.h"
#include "onboard.h"
#include "parse.h"
#include "secrets.h"
#include "sql_embed.h"
#include "xmalloc.h"

/* What the agent in the kit serves (the music directory inside the container). */
#define KIT_ROOT "/music"
#define KIT_TEMPLATE "docker/client/docker-compose.yml"

/* docker/client/docker-compose.yml and docker/agent-entrypoint.sh, compiled in
 * (kit_embed.c, made by the Makefile with scripts/sql_embed.sh). */
extern const struct sql_file kit_files[];

/* The built-in text of the kit file NAME ("docker-compose.yml", "agent-entrypoint.sh"). */
static const char *
kit_embedded(const char *name)
{
	const struct sql_file *f;

	for (f = kit_files; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f->text;
	fatal("client-kit: %s is not compiled in", name);
	return NULL;
}

struct kit_file {
	const char *name; /* relative to the kit directory */
	int mode;
	char *text; /* contents, or NULL: copy from */
	char *from; /* a file to copy (the repctl binary, agent-entrypoint.sh) */
};

/* The whole file at path, or NULL.  *len gets its size.  free(). */
static char *
kit_slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;

	if (fp == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	fclose(fp);
	*len = b.len;
	return b.data ? buf_steal(&b) : xstrdup("");
}

/* A random password: 32 hex digits from /dev/urandom.  free(). */
static char *
kit_password(void)
{
	unsigned char raw[16];
	char *out = xmalloc(2 * sizeof(raw) + 1);
	int fd = open("/dev/urandom", O_RDONLY);
	size_t i;

	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw))
		fatal("cannot read /dev/urandom");
	close(fd);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return out;
}

/* s in single quotes for sh.  free(). */
static char *
sh_quote(const char *s)
{
	struct buf b = BUF_INIT;

	buf_putc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_puts(&b, "'\\''");
		else
			buf_putc(&b, *s);
	}
	buf_putc(&b, '\'');
	return buf_steal(&b);
}

/* ---- the project's client compose file, as the kit's base ---- */

struct lines {
	char **v;
	int n;
};

static void
lines_split(const char *text, struct lines *l)
{
	const char *p = text;

	memset(l, 0, sizeof(*l));
	while (*p) {
		size_t len = strcspn(p, "\n");

		l->v = xrealloc(l->v, sizeof(char *) * (size_t)(l->n + 1));
		l->v[l->n++] = xstrndup(p, len);
		p += len;
		if (*p == '\n')
			p++;
	}
}

static void
lines_free(struct lines *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The index of the one line whose content (indentation removed) is content; -1 none or several. */
static int
lines_find(const struct lines *l, const char *content, int prefix)
{
	int i, at = -1, hits = 0;

	for (i = 0; i < l->n; i++) {
		const char *c = l->v[i] + strspn(l->v[i], " ");

		if (prefix ? strncmp(c, content, strlen(content)) == 0 : strcmp(c, content) == 0) {
			at = i;
			hits++;
		}
	}
	return hits == 1 ? at : -1;
}

/* Replace line at (or insert after it) content, with the indentation of line at. */
static void
lines_put(struct lines *l, int at, int after, const char *content)
{
	char *line = xasprintf("%.*s%s", (int)strspn(l->v[at], " "), l->v[at], content);

	if (!after) {
		free(l->v[at]);
		l->v[at] = line;
		return;
	}
	l->v = xrealloc(l->v, sizeof(char *) * (size_t)(l->n + 1));
	memmove(&l->v[at + 2], &l->v[at + 1], sizeof(char *) * (size_t)(l->n - at - 1));
	l->v[at + 1] = line;
	l->n++;
}

/*
 * The project's client compose file adapted to the kit: its header comment
 * replaced by the kit's, the agent image built from the kit (its
 * Dockerfile and repctl binary) instead of the source tree, and the
 * database service given initdb/ (which creates the database and lets the
 * coordinator in).  NULL with err when the file lacks a line this needs.
 * free().
 */
static char *
compose_from_template(const char *text, const char *name, const char *primary, const char *dbname,
    const char *from, char *err, size_t errlen)
{
	struct lines l;
	struct buf b = BUF_INIT;
	int i, at;
	const char *need[4] = { "context: ../..", "dockerfile: docker/Dockerfile",
		"POSTGRES_PASSWORD_FILE:", "- pgdata:/var/lib/postgresql/data" };

	lines_split(text, &l);
	for (i = 0; i < 4; i++) {
		if (lines_find(&l, need[i], i == 2) < 0) {
			snprintf(err, errlen, "%s: no single line '%s'", from, need[i]);
			lines_free(&l);
			return NULL;
		}
	}
	lines_put(&l, lines_find(&l, need[0], 0), 0, "context: .");
	lines_put(&l, lines_find(&l, need[1], 0), 0, "dockerfile: Dockerfile");
	at = lines_find(&l, need[3], 0);
	lines_put(&l, at, 1, "- ./initdb:/docker-entrypoint-initdb.d:ro");
	at = lines_find(&l, need[2], 1);
	lines_put(&l, at, 1, "REPCTL_DB_PASSWORD: ${REPCTL_DB_PASSWORD:-}");
	lines_put(&l, at, 1, "REPCTL_DB_USER: ${REPCTL_DB_USER:-postgres}");
	{
		/* the primary's database, made when the cluster is created */
		char *db = xasprintf("POSTGRES_DB: \"%s\"", dbname);
		int dbat = lines_find(&l, "POSTGRES_DB:", 1);

		if (dbat < 0)
			lines_put(&l, at, 1, db);
		else
			lines_put(&l, dbat, 0, db);
		free(db);
	}
	buf_printf(&b,
	    "# repctl client kit for '%s', written by 'repctl client-kit %s' on %s:\n"
	    "# the project's %s, with the agent built from this directory\n"
	    "# (Dockerfile, the repctl binary, agent-entrypoint.sh) and initdb/ for the database.\n"
	    "# On the client, in this directory (settings in .env, the postgres password in\n"
	    "# secrets/postgres_password):\n"
	    "#   docker compose up -d --build\n"
	    "# Then the primary runs 'repctl onboard' (see README.txt).\n",
	    name, name, primary, KIT_TEMPLATE);
	for (i = 0; i < l.n && (l.v[i][0] == '#' || l.v[i][0] == '\0'); i++)
		; /* the template's own header speaks of the source tree */
	for (; i < l.n; i++)
		buf_printf(&b, "%s\n", l.v[i]);
	lines_free(&l);
	return buf_steal(&b);
}

/* The agent stage of the project's docker/Dockerfile, from the kit's binary. */
static char *
dockerfile_agent(void)
{
	return xstrdup(
	    "# Dockerfile - the agent of this repctl client kit: the stage \"agent\" of the\n"
	    "# project's docker/Dockerfile, built from the repctl binary in this directory\n"
	    "# instead of the sources.  An OpenSSH server on 2222 whose only command is\n"
	    "# 'repctl agent --root=/music' (agent-entrypoint.sh).\n"
	    "ARG DEBIAN_IMAGE=debian:12-slim\n"
	    "FROM ${DEBIAN_IMAGE} AS agent\n"
	    "RUN apt-get update \\\n"
	    " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
	    "      libpq5 libconfig9 libssh-4 libzstd1 libssl3 libmicrohttpd12 openssh-server \\\n"
	    " && rm -rf /var/lib/apt/lists/* \\\n"
	    " && rm -f /etc/ssh/ssh_host_*\n"
	    "ARG REPCTL_UID=1000\n"
	    "ARG REPCTL_GID=1000\n"
	    "RUN groupadd --gid \"$REPCTL_GID\" repctl \\\n"
	    " && useradd --uid \"$REPCTL_UID\" --gid repctl --home-dir /var/lib/repctl "
	    "--no-create-home \\\n"
	    "      --shell /bin/sh repctl \\\n"
	    " && usermod -p '*' repctl \\\n"
	    " && install -d -o repctl -g repctl -m 0755 /music \\\n"
	    " && install -d -m 0700 /var/lib/repctl-agent\n"
	    "COPY repctl /usr/local/bin/repctl\n"
	    "COPY agent-entrypoint.sh /usr/local/bin/agent-entrypoint.sh\n"
	    "RUN chmod 0755 /usr/local/bin/repctl /usr/local/bin/agent-entrypoint.sh \\\n"
	    " && /usr/local/bin/repctl --version\n"
	    "VOLUME [\"/var/lib/repctl-agent\"]\n"
	    "EXPOSE 2222\n"
	    "ENTRYPOINT [\"/usr/local/bin/agent-entrypoint.sh\"]\n");
}

/* ---- where the coordinator's address comes from ---- */

/* How the client sees the coordinator: from=, the node itself, or the route to host=. */
static char *
kit_coordinator_addr(struct cli_ctx *ctx, const char *name, const char *from, const char *host,
    const char *port, const char **how)
{
	char err[ERRLEN];
	struct node n;
	char *addr = NULL;

	if (from && *from) {
		*how = "from=";
		return xstrdup(from);
	}
	if (meta_node_get(ctx->meta, name, &n, err, sizeof(err)) == 0) {
		PGconn *c = node_connect(ctx->cfg, &n, err, sizeof(err));

		if (c) {
			addr = db_value(
			    c, "SELECT host(inet_client_addr())", 0, NULL, err, sizeof(err));
			db_close(c);
		}
		if (addr) {
			*how =
			    "as the client's PostgreSQL sees this coordinator (inet_client_addr())";
			node_clear(&n);
			return addr;
		}
		if (host == NULL) {
			char *h = db_conninfo_get(n.conninfo, "host");
			char *p = db_conninfo_get(n.conninfo, "port");

			addr = onboard_source_addr(h, p);
			free(h);
			free(p);
			if (addr) {
				*how = "the local address that routes to the node's host";
				node_clear(&n);
				return addr;
			}
		}
	}
	node_clear(&n);
	if (host) {
		addr = onboard_source_addr(host, port);
		*how = "the local address that routes to host=";
	}
	return addr;
}

/* initdb/10-repctl.sh: the database, the coordinator's pg_hba.conf line, the role. */
static char *
initdb_script(const char *name, const char *primary, const char *dbname, const char *hba)
{
	struct buf b = BUF_INIT;
	char *qh = sh_quote(hba), *qd = sh_quote(dbname);

	buf_printf(&b,
	    "#!/bin/sh\n"
	    "# initdb/10-repctl.sh - repctl client kit for '%s': run once by the postgres\n"
	    "# image when it creates the cluster.  Puts the line that lets the coordinator on\n"
	    "# %s in first in pg_hba.conf, creates the database when missing and, when\n"
	    "# the coordinator logs in as its own role (REPCTL_DB_USER), that role with what\n"
	    "# repctl needs: it owns the database, and may SET session_replication_role.\n"
	    "# The image points psql at its temporary server (outside it: PGHOST, PGPORT).\n"
	    "set -eu\n"
	    "db=%s\n"
	    "hba=\"$PGDATA/pg_hba.conf\"\n"
	    "{\n"
	    "\techo '# repctl: the coordinator on %s (repctl client-kit)'\n"
	    "\techo %s\n"
	    "\tcat \"$hba\"\n"
	    "} >\"$hba.repctl\"\n"
	    "mv \"$hba.repctl\" \"$hba\"\n"
	    "psql -X -v ON_ERROR_STOP=1 -v db=\"$db\" -v user=\"${REPCTL_DB_USER:-postgres}\" \\\n"
	    "\t-v pw=\"${REPCTL_DB_PASSWORD:-}\" --username \"${POSTGRES_USER:-postgres}\" "
	    "--dbname postgres <<'SQL'\n"
	    "SELECT format('CREATE DATABASE %%I', :'db')\n"
	    " WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \\gexec\n"
	    "SELECT format('CREATE ROLE %%I LOGIN PASSWORD %%L', :'user', :'pw')\n"
	    " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \\gexec\n"
	    "SELECT format('ALTER DATABASE %%I OWNER TO %%I', :'db', :'user')\n"
	    " WHERE :'user' <> current_user \\gexec\n"
	    "SELECT format('GRANT SET ON PARAMETER session_replication_role TO %%I', :'user')\n"
	    " WHERE :'user' <> current_user \\gexec\n"
	    "SQL\n"
	    "echo \"10-repctl.sh: database $db ready; the coordinator on %s may connect\"\n",
	    name, primary, qd, primary, qh, primary);
	free(qh);
	free(qd);
	return buf_steal(&b);
}

/* ---- the command ---- */

struct kit {
	struct kit_file f[16];
	int n;
};

static struct kit_file *
kit_add(struct kit *k, const char *name, int mode)
{
	struct kit_file *f = &k->f[k->n++];

	memset(f, 0, sizeof(*f));
	f->name = name;
	f->mode = mode;
	return f;
}

CMD_HANDLER(cmd_client_kit)
{
	char err[ERRLEN];
	const struct config *cfg = ctx->cfg;
	const char *name = args->words[0];
	const char *out = args_get(args, "out"), *from = args_get(args, "from");
	const char *host = args_get(args, "host"), *port = args_get(args, "port");
	const char *dbname_a = args_get(args, "dbname"), *user_a = args_get(args, "user");
	const char *pass = args_get(args, "pass");
	int force = args_has(args, "force");
	const char *primary = cfg->node && *cfg->node ? cfg->node : "the primary";
	const char *how = "", *sshuser = "repctl";
	char *dir = NULL, *addr = NULL, *dbname = NULL, *user = NULL, *hba = NULL, *pub = NULL;
	char *pgpw = NULL, *rpw = NULL, *folder = NULL, *compose = NULL;
	struct kit k;
	struct buf exist = BUF_INIT, b = BUF_INIT;
	struct node pn;
	int i, rc = 1, made, have_folder = 0;
	char self[4096];
	ssize_t sl;

	memset(&k, 0, sizeof(k));
	memset(&pn, 0, sizeof(pn));
	if (!parse_valid_name(name)) {
		cmd_error("'%s' is not a valid node name: use letters, digits, '_', '.' or '-', "
			  "starting with a letter (at most 63)",
		    name);
		return 2;
	}
	dir = out && *out ? xstrdup(out) : xasprintf("repctl-kit-%s", name);
	/* the database and role the primary uses: the client gets the same */
	if (cfg->node && *cfg->node &&
	    meta_node_get(ctx->meta, cfg->node, &pn, err, sizeof(err)) == 0) {
		dbname = db_conninfo_get(pn.conninfo, "dbname");
		user = db_conninfo_get(pn.conninfo, "user");
	}
	if (dbname_a) {
		free(dbname);
		dbname = xstrdup(dbname_a);
	}
	if (user_a) {
		free(user);
		user = xstrdup(user_a);
	}
	if (dbname == NULL)
		dbname = xstrdup("archive_production");
	if (user == NULL)
		user = xstrdup("postgres");
	addr = kit_coordinator_addr(ctx, name, from, host, port, &how);
	if (addr == NULL) {
		cmd_error(
		    "client-kit %s: cannot tell the coordinator's address as the client sees it "
		    "(for the client's pg_hba.conf)\nhint: give from=ADDRESS (this machine's VPN "
		    "address, e.g. from=10.8.0.1) or host=CLIENT_ADDRESS; nothing was written",
		    name);
		goto out;
	}
	hba = onboard_hba_line(dbname, user, addr);
	{
		PGresult *r =
		    db_query(ctx->meta, "SELECT name FROM repctl.folder ORDER BY name LIMIT 1", 0,
			NULL, err, sizeof(err));

		have_folder = r && PQntuples(r) == 1;
		folder = xstrdup(have_folder ? PQgetvalue(r, 0, 0) : "music");
		PQclear(r);
	}

	/* the compose file: the project's, compiled in, adapted to the kit */
	compose = compose_from_template(kit_embedded("docker-compose.yml"), name, primary, dbname,
	    KIT_TEMPLATE " (compiled in)", err, sizeof(err));
	if (compose == NULL) {
		cmd_error("client-kit %s: %s; nothing was written", name, err);
		goto out;
	}

	/* the files, and which exist */
	kit_add(&k, "docker-compose.yml", 0644)->text = compose;
	compose = NULL;
	kit_add(&k, "Dockerfile", 0644)->text = dockerfile_agent();
	kit_add(&k, ".dockerignore", 0644)->text = xstrdup(".env\nsecrets/\n");
	kit_add(&k, "agent-entrypoint.sh", 0755)->text =
	    xstrdup(kit_embedded("agent-entrypoint.sh"));
	/* read by postgres inside the container: 0644 in a 0700 directory */
	kit_add(&k, "secrets/postgres_password", 0644);
	kit_add(&k, ".env", 0600);
	kit_add(&k, "initdb/10-repctl.sh", 0755);
	kit_add(&k, "pg_hba.conf.add", 0644);
	kit_add(&k, "authorized_keys", 0600);
	kit_add(&k, "repctl.conf", 0644);
	kit_add(&k, "README.txt", 0644);
	kit_add(&k, "repctl", 0755);
	for (i = 0; i < k.n; i++) {
		char *path = xasprintf("%s/%s", dir, k.f[i].name);
		struct stat sb;

		if (lstat(path, &sb) == 0)
			buf_printf(&exist, "%s%s", exist.len ? ", " : "", path);
		free(path);
	}
	if (exist.len && !force) {
		cmd_error("client-kit %s: %s exist%s already; nothing was written\nhint: --force "
			  "overwrites them, or choose another directory with --out DIR",
		    name, exist.data, strchr(exist.data, ',') ? "" : "s");
		goto out;
	}

	/* the coordinator's key, restricted to the agent */
	ssh_key_owner(cfg->node);
	made = ssh_keygen(cfg->ssh_identity, err, sizeof(err));
	if (made < 0) {
		cmd_error("client-kit %s: %s", name, err);
		goto out;
	}
	pub = ssh_pubkey_line(cfg->ssh_identity, err, sizeof(err));
	if (pub == NULL) {
		cmd_error("client-kit %s: %s", name, err);
		goto out;
	}
	pgpw = strcmp(user, "postgres") == 0 && pass ? xstrdup(pass) : kit_password();
	rpw = strcmp(user, "postgres") == 0 ? NULL : (pass ? xstrdup(pass) : kit_password());
	for (i = 0; i < k.n; i++) {
		struct kit_file *f = &k.f[i];

		if (f->text || f->from)
			continue;
		if (strcmp(f->name, "secrets/postgres_password") == 0) {
			buf_printf(&b, "%s\n", pgpw);
		} else if (strcmp(f->name, ".env") == 0) {
			buf_printf(&b,
			    "# repctl client kit for '%s': settings of docker-compose.yml (keep this "
			    "file private)\n"
			    "# this client's VPN address: PostgreSQL 5432 and the agent's SSH 2222 "
			    "listen there\n"
			    "REPCTL_VPN_ADDRESS=%s\n"
			    "# the music folder on this host, and the uid/gid that owns it\n"
			    "REPCTL_MUSIC_DIR=/srv/music\n"
			    "REPCTL_UID=1000\n"
			    "REPCTL_GID=1000\n"
			    "# the role the coordinator logs in as (the postgres password is in "
			    "secrets/postgres_password)\n"
			    "REPCTL_DB_USER=%s\n"
			    "REPCTL_DB_PASSWORD=%s\n"
			    "# the ports published on REPCTL_VPN_ADDRESS (another pair for a second kit on\n"
			    "# one host)\n"
			    "REPCTL_DB_PUBLISH_PORT=5432\n"
			    "REPCTL_SSH_PUBLISH_PORT=2222\n",
			    name, host ? host : "", user, rpw ? rpw : "");
		} else if (strcmp(f->name, "initdb/10-repctl.sh") == 0) {
			f->text = initdb_script(name, primary, dbname, hba);
			continue;
		} else if (strcmp(f->name, "pg_hba.conf.add") == 0) {
			buf_printf(&b,
			    "# repctl: let the coordinator on %s into the client '%s' (%s is how\n"
			    "# the client sees it: %s).  Put it before the other host lines of "
			    "pg_hba.conf,\n"
			    "# then: SELECT pg_reload_conf();\n"
			    "%s\n",
			    primary, name, addr, how, hba);
		} else if (strcmp(f->name, "authorized_keys") == 0) {
			buf_printf(
			    &b, "restrict,command=\"repctl agent --root=" KIT_ROOT "\" %s\n", pub);
		} else if (strcmp(f->name, "repctl.conf") == 0) {
			buf_printf(&b,
			    "# repctl on the client '%s' (repctl client-kit, on %s).\n"
			    "# The client only runs 'repctl agent', started over SSH by the coordinator "
			    "on\n"
			    "# %s; it needs no metadata database of its own.\n"
			    "node = \"%s\";\n",
			    name, primary, primary, name);
		} else if (strcmp(f->name, "README.txt") == 0) {
			buf_printf(&b,
			    "repctl client kit for '%s', written by 'repctl client-kit %s' on %s.\n\n"
			    "On the client, in this directory:\n"
			    "  1. in .env: REPCTL_VPN_ADDRESS (this client's VPN address), "
			    "REPCTL_MUSIC_DIR\n"
			    "     and REPCTL_UID/REPCTL_GID (the owner of that folder; a missing folder is\n"
			    "     created and given to them)\n"
			    "  2. docker compose up -d --build\n"
			    "  3. docker compose logs agent | grep fingerprint\n"
			    "     the SSH host key fingerprint (SHA256:...) for the primary\n",
			    name, name, primary);
			buf_printf(&b,
			    "\nOn the primary (%s), with this client's VPN address, the password (%s)\n"
			    "and that fingerprint:\n"
			    "  repctl onboard %s host=CLIENT_ADDRESS port=5432 dbname=%s user=%s "
			    "pass=PASSWORD ssh=%s@CLIENT_ADDRESS:2222 --from %s",
			    primary,
			    strcmp(user, "postgres") != 0 ? "REPCTL_DB_PASSWORD in .env"
							  : "secrets/postgres_password",
			    name, dbname, user, sshuser,
			    cfg->node && *cfg->node ? cfg->node : "PRIMARY");
			if (have_folder)
				buf_printf(&b, " --folder=%s path=" KIT_ROOT, folder);
			buf_printf(&b, " --accept-host-key=SHA256:...\n");
			if (!have_folder)
				buf_printf(&b,
				    "  repctl add folder %s nodes=%s:" KIT_ROOT ",%s:" KIT_ROOT
				    "    # the first client: the folder\n"
				    "  repctl reload    # a running coordinator then syncs the folder too\n",
				    folder, cfg->node && *cfg->node ? cfg->node : "PRIMARY", name);
			buf_printf(&b,
			    "  repctl status\n\n"
			    "The coordinator connects from %s (%s); initdb/10-repctl.sh puts this line\n"
			    "first in pg_hba.conf when the database is created:\n  %s\n"
			    "(pg_hba.conf.add has it, for a PostgreSQL set up otherwise).\n",
			    addr, how, hba);
		}
		f->text = buf_steal(&b);
	}
	sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0) {
		cmd_error("client-kit %s: cannot find the repctl binary to copy: %s", name,
		    strerror(errno));
		goto out;
	}
	self[sl] = '\0';
	k.f[k.n - 1].from = xstrdup(self);

	/* write */
	for (i = 0; i < k.n; i++) {
		char *path = xasprintf("%s/%s", dir, k.f[i].name), *pdir = xstrdup(path);
		const char *parent = dirname(pdir); /* within pdir */
		int wrc;

		if (mkdir_p(parent, 0755) < 0) {
			cmd_error("client-kit %s: cannot create the directory of %s: %s", name,
			    path, strerror(errno));
			free(pdir);
			free(path);
			goto out;
		}
		if (strncmp(k.f[i].name, "secrets/", 8) == 0 && chmod(parent, 0700) < 0) {
			cmd_error("client-kit %s: cannot chmod the directory of %s: %s", name, path,
			    strerror(errno));
			free(pdir);
			free(path);
			goto out;
		}
		free(pdir);
		if (k.f[i].from) {
			size_t len = 0;
			char *data = kit_slurp(k.f[i].from, &len);

			if (data == NULL) {
				cmd_error("client-kit %s: cannot read %s: %s", name, k.f[i].from,
				    strerror(errno));
				free(path);
				goto out;
			}
			wrc = atomic_write(path, data, len, k.f[i].mode, err, sizeof(err));
			free(data);
		} else {
			wrc = atomic_write(
			    path, k.f[i].text, strlen(k.f[i].text), k.f[i].mode, err, sizeof(err));
		}
		free(path);
		if (wrc < 0) {
			cmd_error("client-kit %s: %s", name, err);
			goto out;
		}
	}
	printf("client kit for '%s' written to %s/ (based on the project's " KIT_TEMPLATE
	       ", compiled in):\n",
	    name, dir);
	for (i = 0; i < k.n; i++)
		printf("  %s\n", k.f[i].name);
	printf("pg_hba.conf line (the coordinator seen as %s: %s):\n  %s\n", addr, how, hba);
	if (made == 1)
		printf("created the coordinator's SSH key %s\n", cfg->ssh_identity);
	printf("next: on the client, 'docker compose up -d --build' in that directory; then on %s, "
	       "'repctl onboard %s ...' as %s/README.txt says\n",
	    primary, name, dir);
	rc = 0;
out:
	for (i = 0; i < k.n; i++) {
		free(k.f[i].text);
		free(k.f[i].from);
	}
	buf_free(&exist);
	buf_free(&b);
	node_clear(&pn);
	free(dir);
	free(addr);
	free(dbname);
	free(user);
	free(hba);
	free(pub);
	free(pgpw);
	free(rpw);
	free(folder);
	free(compose);
	return rc;
}

/*
 * cmd_onboard.c - onboard and offboard: a client joins the fleet, or
 * leaves it, in one command.
 *
 * onboard replaces the archive guide's manual steps for a new client
 * (Part 2: clone the schema and the data with pg_dump; Part 3: add
 * database, add all tables, add the pair of syncs; Syncthing: share the
 * folder).  It runs the logic of those commands (it calls their handlers)
 * in this order:
 *
 *   1. reach the client's database, with a diagnosis for each way it can
 *      fail (no route, port closed, timeout, authentication, no such
 *      database) and its fix;
 *   2. show the client's SSH host key, record it once accepted;
 *   3. create the herd tables the client lacks with the primary's schema
 *      (pg_dump --schema-only -t for exactly those tables, plus the enum
 *      and domain types they use, read from the catalog), in one
 *      transaction on the client;
 *   4. add database; 5. add table for every table the primary has in its
 *      herds;
 *   6. the syncs: a pair with the primary per herd, created inactive (the
 *      coordinator ignores them), or with --mesh a one-time fill sync;
 *   7. the initial copy: a run of the primary -> client sync with
 *      onetimecopy=2 (empty tables only, streamed with COPY, one
 *      transaction on the client), with a progress line on a terminal;
 *   8. activation of the pair, or membership of the primary's
 *      multi-source syncs (then the fill sync goes);
 *   9. the folder: the client's folder marker, its folder_node row and a
 *      first run;
 *  10. SIGHUP to a running coordinator.
 *
 * Every step looks first at what exists and skips what is done, so a run
 * interrupted anywhere (SIGKILL included) continues where it stopped and
 * doubles nothing: the copy is one transaction on the client, a sync is
 * inactive until its copy has committed, and a copy is done when its
 * positions exist.  --dry-run prints each step as done or to do and
 * changes nothing.
 *
 * offboard undoes it: the client's syncs (or its membership of shared
 * syncs), its folder memberships, then `remove database` (capture off the
 * client, table registrations and the node gone).  Its data stays.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "buf.h"
#include "clock.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "fs_ssh.h"
#include "fs_sync.h"
#include "log.h"
#include "meta.h"
#include "onboard.h"
#include "parse.h"
#include "secrets.h"
#include "sync.h"
#include "xmalloc.h"

#define NSTEPS 10
#define MIN_SERVER_VERSION 130000
#define HOSTKEY_HINT "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"

/* One table the primary has in one of its herds. */
struct onb_table {
	char *herd, *schema, *table;
	char *qname; /* format('%I.%I'), as add table takes it */
	char *ccol;  /* the primary's conflict column override, or NULL */
};

/* The syncs of one herd: the pair (or, with --mesh, the fill sync). */
struct onb_herd {
	char *herd;
	char *out;  /* primary -> client (onetimecopy=2); --mesh: the fill sync */
	char *back; /* client -> primary; NULL with --mesh */
	char *ccol; /* conflict column of the primary's existing syncs of the herd */
	char *interval;
	int filled; /* --mesh: the client is already in every multi-source sync of the herd */
};

struct onb {
	struct cli_ctx *ctx;
	const struct config *cfg;
	PGconn *meta;
	const char *name, *primary;
	int dry, mesh, tty;
	/* the client's connection */
	char *host, *port, *dbname, *user, *sslmode, *conninfo;
	const char *pass, *ssh, *agent;
	const char *accept, *folder, *path;
	char *path_kept;    /* path= from the metadata when the client is a member already */
	char *ssh_kept;     /* ssh= from the metadata when not given */
	struct node pn, cn; /* primary, client (when it exists) */
	int cexists;
	PGconn *pc, *cc;
	struct onb_table *t;
	int nt;
	struct onb_herd *h;
	int nh;
	char **msyncs; /* --mesh: the multi-source syncs the primary is in */
	int nmesh;
	int step, todo;
	/* for the summary */
	int created, registered;
	long long copied;
};

/* ---- small helpers ---- */

/* A struct args for calling another command's handler; cli_args_free() frees it. */
static void
fa_word(struct args *a, const char *w)
{
	a->words = xrealloc(a->words, sizeof(char *) * (size_t)(a->nwords + 2));
	a->words[a->nwords++] = xstrdup(w);
}

static void
fa_pos(struct args *a, const char *v)
{
	a->pos = xrealloc(a->pos, sizeof(char *) * (size_t)(a->npos + 2));
	a->pos[a->npos++] = xstrdup(v);
}

static void
fa_opt(struct args *a, const char *key, const char *value)
{
	if (value == NULL)
		return;
	a->opts = xrealloc(a->opts, sizeof(struct opt) * (size_t)(a->nopts + 1));
	a->opts[a->nopts].key = xstrdup(key);
	a->opts[a->nopts].value = xstrdup(value);
	a->opts[a->nopts].used = 0;
	a->nopts++;
}

/* A text[] literal of v ("{\"a\",\"b\"}") for a $n parameter.  free(). */
static char *
text_array(char *const *v, int n)
{
	struct buf b = BUF_INIT;
	int i;

	buf_putc(&b, '{');
	for (i = 0; i < n; i++) {
		const char *p;

		buf_puts(&b, i ? ",\"" : "\"");
		for (p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, *p);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, '}');
	return buf_steal(&b);
}

/* "[k/10] title: " then the text; one line on stdout. */
static void step_print(struct onb *o, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
step_print(struct onb *o, const char *title, const char *fmt, ...)
{
	va_list ap;

	printf("[%d/%d] %s: ", o->step, NSTEPS, title);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const char *
os_user(void)
{
	const char *u = getenv("PGUSER");
	struct passwd *pw;

	if (u && *u)
		return u;
	pw = getpwuid(geteuid());
	return pw ? pw->pw_name : "postgres";
}

static int
is_ipv6(const char *addr)
{
	return strchr(addr, ':') != NULL;
}

char *
onboard_source_addr(const char *host, const char *port)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char out[INET6_ADDRSTRLEN];
	char *found = NULL;

	if (host == NULL || *host == '\0' || *host == '/')
		return NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, port && *port ? port : "5432", &hints, &res) != 0)
		return NULL;
	for (ai = res; ai && found == NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_DGRAM, 0);

		if (fd < 0)
			continue;
		/* a UDP connect only asks the kernel for a route: nothing is sent */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			const void *a = ss.ss_family == AF_INET6
			    ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
			    : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;

			if (inet_ntop(ss.ss_family, a, out, sizeof(out)))
				found = xstrdup(out);
		}
		close(fd);
	}
	freeaddrinfo(res);
	return found;
}

/* A pg_hba.conf word: double-quoted unless plain. */
static void
hba_word(struct buf *b, const char *w)
{
	const char *p;
	int plain = *w != '\0';

	for (p = w; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
			*p == '-' || *p == '.'))
			plain = 0;
	if (plain && strcmp(w, "all") != 0 && strcmp(w, "sameuser") != 0 &&
	    strcmp(w, "samerole") != 0 && strcmp(w, "replication") != 0) {
		buf_puts(b, w);
		return;
	}
	buf_putc(b, '"');
	for (p = w; *p; p++) {
		if (*p == '"')
			buf_putc(b, '"');
		buf_putc(b, *p);
	}
	buf_putc(b, '"');
}

char *
onboard_hba_line(const char *dbname, const char *user, const char *addr)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "host ");
	hba_word(&b, dbname);
	buf_putc(&b, ' ');
	hba_word(&b, user);
	buf_printf(&b, " %s/%s scram-sha-256", addr, is_ipv6(addr) ? "128" : "32");
	return buf_steal(&b);
}

/* ---- 1. reaching the client's database ---- */

/* The quoted name in a libpq message after prefix ("database \"x\""), or NULL.  free(). */
static char *
quoted_after(const char *msg, const char *prefix)
{
	const char *p = strstr(msg, prefix), *e;

	if (p == NULL)
		return NULL;
	p += strlen(prefix);
	e = strchr(p, '"');
	return e ? xstrndup(p, (size_t)(e - p)) : NULL;
}

/*
 * Say precisely why the client's database could not be reached and how to
 * fix it.  msg is libpq's message.
 */
static void
diagnose(const struct onb *o, const char *msg)
{
	const char *host = o->host ? o->host : "localhost", *port = o->port ? o->port : "5432";
	const char *db = o->dbname ? o->dbname : "?", *user = o->user ? o->user : os_user();
	char *seen = NULL, *line = NULL, *name = NULL;

	enum db_failure why = db_classify_failure(msg);

	if (why == DBF_REFUSED) {
		cmd_error(
		    "cannot reach the database of '%s': port closed: nothing accepts "
		    "connections on %s port %s (connection refused)\n%s\n"
		    "hint: start PostgreSQL on the client (with the client kit: docker compose up "
		    "-d), check port=, and that it listens on that address (listen_addresses = "
		    "'*'; in Docker, the ports: mapping)\nnothing was changed",
		    o->name, host, port, msg);
	} else if (why == DBF_TIMEOUT) {
		cmd_error(
		    "cannot reach the database of '%s': timeout: %s port %s did not answer "
		    "within %d s\n%s\n"
		    "hint: the host is down, or a firewall drops the packets: check host=, that "
		    "the VPN is up on both ends (wg show) and the client's firewall\n"
		    "nothing was changed",
		    o->name, host, port, o->cfg->connect_timeout, msg);
	} else if (why == DBF_NO_ROUTE) {
		cmd_error(
		    "cannot reach the database of '%s': no route to %s\n%s\n"
		    "hint: check host= and that the VPN is up on both ends (ip route get %s)\n"
		    "nothing was changed",
		    o->name, host, msg, host);
	} else if (why == DBF_NO_RESOLVE) {
		cmd_error("cannot reach the database of '%s': the host name '%s' does not "
			  "resolve\n%s\nhint: give the client's VPN address as host=\n"
			  "nothing was changed",
		    o->name, host, msg);
	} else if (why == DBF_NO_HBA &&
	    (seen = quoted_after(msg, "no pg_hba.conf entry for host \"")) != NULL) {
		line = onboard_hba_line(db, user, seen);
		cmd_error(
		    "cannot log in to the database of '%s': authentication failed: the "
		    "client's pg_hba.conf has no line for this coordinator (it sees it as %s)\n"
		    "%s\nhint: add this line to pg_hba.conf on the client, then reload PostgreSQL "
		    "there (SELECT pg_reload_conf()):\n  %s\nnothing was changed",
		    o->name, seen, msg, line);
	} else if (why == DBF_AUTH) {
		seen = onboard_source_addr(host, port);
		line = onboard_hba_line(db, user, seen ? seen : "COORDINATOR_ADDRESS");
		cmd_error(
		    "cannot log in to the database of '%s': authentication failed for user "
		    "'%s' on %s port %s\n%s\n"
		    "hint: check pass= (and user=); the client's pg_hba.conf must let this "
		    "coordinator (seen there as %s) in with a password, with this line before "
		    "any other that matches, then SELECT pg_reload_conf():\n  %s\n"
		    "nothing was changed",
		    o->name, user, host, port, msg, seen ? seen : "its VPN address", line);
	} else if (why == DBF_NO_DATABASE &&
	    (name = quoted_after(msg, "FATAL:  database \"")) != NULL) {
		cmd_error(
		    "the database '%s' does not exist on %s port %s (client '%s')\n%s\n"
		    "hint: create it on the client, as postgres: createdb -h %s -p %s -U "
		    "postgres -O %s %s  (in SQL: CREATE DATABASE \"%s\" OWNER \"%s\"; with the "
		    "client kit: docker compose exec db createdb -U postgres -O %s %s), or give "
		    "the right dbname=\nnothing was changed",
		    name, host, port, o->name, msg, host, port, user, name, name, user, user, name);
	} else if (why == DBF_NO_ROLE && (name = quoted_after(msg, "role \"")) != NULL) {
		cmd_error(
		    "the role '%s' does not exist on %s port %s (client '%s')\n%s\n"
		    "hint: create it on the client, as postgres: CREATE ROLE \"%s\" LOGIN PASSWORD "
		    "'...'; (see the README's privileges), or give the right user=\n"
		    "nothing was changed",
		    name, host, port, o->name, msg, name);
	} else {
		const char *hint = db_connect_hint(msg);

		cmd_error(
		    "cannot connect to the database of '%s' (%s): %s%s%s\nnothing was changed",
		    o->name, o->conninfo, msg, hint ? "\nhint: " : "", hint ? hint : "");
	}
	free(seen);
	free(line);
	free(name);
}

static int
step_reach(struct onb *o)
{
	char err[ERRLEN];
	int v;

	o->step = 1;
	o->cc = db_connect(o->conninfo, "repctl", o->cfg->secrets_file, o->pass,
	    o->cfg->connect_timeout, err, sizeof(err));
	if (o->cc == NULL) {
		diagnose(o, err);
		return -1;
	}
	v = PQserverVersion(o->cc);
	if (v < MIN_SERVER_VERSION) {
		cmd_error("the client '%s' runs PostgreSQL %d; repctl needs 13 or later\n"
			  "nothing was changed",
		    o->name, v / 10000);
		return -1;
	}
	o->pc = node_connect(o->cfg, &o->pn, err, sizeof(err));
	if (o->pc == NULL) {
		const char *hint = db_connect_hint(err);

		cmd_error("the primary: %s%s%s\nnothing was changed", err, hint ? "\nhint: " : "",
		    hint ? hint : "");
		return -1;
	}
	step_print(o, "client database", "reachable, PostgreSQL %d.%d (%s)", v / 10000, v % 10000,
	    o->conninfo);
	return 0;
}

/* ---- 2. the SSH host key ---- */

static int
step_hostkey(struct onb *o)
{
	char err[ERRLEN];
	const char *kh = o->cfg->ssh_known_hosts;
	struct ssh_target t;
	char *fp = NULL, *rec = NULL;
	int state = 1, rc = -1;

	o->step = 2;
	memset(&t, 0, sizeof(t));
	if (o->ssh == NULL) {
		step_print(o, "SSH host key", "skipped (no ssh= given: no folder on this client)");
		return 0;
	}
	if (ssh_target_parse(o->ssh, &t, err, sizeof(err)) < 0) {
		cmd_error("ssh=%s: %s\nnothing was changed", o->ssh, err);
		return -1;
	}
	if (ssh_probe_hostkey(&t, kh, o->cfg->ssh_timeout, &fp, &state, err, sizeof(err)) < 0) {
		cmd_error("cannot reach the SSH server of '%s' (%s): %s\n"
			  "hint: check ssh=USER@HOST:PORT and that the client's SSH service runs "
			  "(with the client kit: the agent service of docker compose)\n"
			  "nothing was changed",
		    o->name, o->ssh, err);
		goto out;
	}
	if (state == 0) {
		step_print(o, "SSH host key", "done: %s (%s) is already trusted", fp, o->ssh);
		rc = 0;
		goto out;
	}
	if (state == 2) {
		cmd_error(
		    "HOST KEY CHANGED for '%s' (%s): it presents %s, not the key recorded in "
		    "%s\nthis is a possible man-in-the-middle attack, or the client's host key was "
		    "regenerated; nothing was changed\n"
		    "hint: check the key on the client (" HOSTKEY_HINT ") and, once checked, run "
		    "'repctl trust %s --replace' (after the node is added) or remove the old line "
		    "from %s",
		    o->name, o->ssh, fp, kh, o->name, kh);
		goto out;
	}
	if (o->accept && !ssh_fingerprint_match(o->accept, fp)) {
		cmd_error("the SSH host key of '%s' (%s) is %s, not %s as given with "
			  "--accept-host-key; nothing was written\n"
			  "hint: check the fingerprint on the client (" HOSTKEY_HINT
			  "); a mismatch can "
			  "mean a man-in-the-middle",
		    o->name, o->ssh, fp, o->accept);
		goto out;
	}
	if (o->dry) {
		o->todo++;
		step_print(o, "SSH host key", "to do: record %s (%s)%s", fp, o->ssh,
		    o->accept ? ", it matches --accept-host-key"
			      : "; it must be accepted: --accept-host-key=FINGERPRINT, or on a "
				"terminal");
		rc = 0;
		goto out;
	}
	if (o->accept == NULL) {
		if (!isatty(STDIN_FILENO)) {
			cmd_error(
			    "the SSH host key of '%s' (%s) is not known yet: %s\n"
			    "nothing was written or changed\n"
			    "hint: check it on the client (" HOSTKEY_HINT "), then run this again "
			    "with --accept-host-key=%s (stdin is not a terminal, so it cannot be "
			    "confirmed here)",
			    o->name, o->ssh, fp, fp);
			goto out;
		}
		printf("client '%s' (%s) presents SSH host key %s\n", o->name, o->ssh, fp);
		if (!cmd_confirm("accept? [y/N] ")) {
			cmd_error("host key not accepted; nothing was changed");
			goto out;
		}
	}
	if (ssh_trust_host(&t, kh, o->cfg->ssh_timeout, fp, 0, &rec, err, sizeof(err)) < 0) {
		cmd_error("recording the SSH host key of '%s': %s\nnothing else was changed",
		    o->name, err);
		goto out;
	}
	step_print(o, "SSH host key", "recorded %s of %s in %s", rec, o->ssh, kh);
	rc = 0;
out:
	free(fp);
	free(rec);
	ssh_target_clear(&t);
	return rc;
}

/* ---- 3. the tables the client lacks, with the primary's schema ---- */

/* The herds whose tables the client gets, and those tables (from the metadata). */
static int
load_herds(struct onb *o)
{
	char err[ERRLEN];
	const char *p1[1] = { o->primary };
	PGresult *r = NULL;
	int i, k;

	if (o->mesh) {
		const char *p2[2] = { o->primary, o->name };

		r = db_query(o->meta,
		    "SELECT s.name, s.herd, s.onetimecopy FROM repctl.sync s "
		    "WHERE EXISTS (SELECT 1 FROM repctl.sync_node n WHERE n.sync = s.name "
		    "  AND n.node = $1 AND n.role = 'source') "
		    "AND (SELECT count(*) FROM repctl.sync_node n WHERE n.sync = s.name "
		    "  AND n.role = 'source' AND n.node <> $2) >= 2 ORDER BY s.herd, s.name",
		    2, p2, err, sizeof(err));
		if (r == NULL)
			goto fail;
		if (PQntuples(r) == 0) {
			cmd_error(
			    "--mesh: '%s' is in no multi-source sync (dbs=a:source,b:source,...)\n"
			    "hint: without --mesh the client gets a pair of syncs with '%s'",
			    o->primary, o->primary);
			PQclear(r);
			return -1;
		}
		for (i = 0; i < PQntuples(r); i++) {
			if (atoi(PQgetvalue(r, i, 2)) == 1) {
				cmd_error(
				    "--mesh: sync '%s' has onetimecopy=1, which would empty the "
				    "tables of its nodes for the new edges\nhint: 'repctl update "
				    "sync %s onetimecopy=0' (or 2) first; nothing was changed",
				    PQgetvalue(r, i, 0), PQgetvalue(r, i, 0));
				PQclear(r);
				return -1;
			}
			o->msyncs = xrealloc(o->msyncs, sizeof(char *) * (size_t)(o->nmesh + 1));
			o->msyncs[o->nmesh++] = xstrdup(PQgetvalue(r, i, 0));
			for (k = 0; k < o->nh; k++)
				if (strcmp(o->h[k].herd, PQgetvalue(r, i, 1)) == 0)
					break;
			if (k == o->nh) {
				o->h = xrealloc(o->h, sizeof(*o->h) * (size_t)(o->nh + 1));
				memset(&o->h[o->nh], 0, sizeof(*o->h));
				o->h[o->nh++].herd = xstrdup(PQgetvalue(r, i, 1));
			}
		}
		PQclear(r);
	} else {
		r = db_query(o->meta,
		    "SELECT DISTINCT s.herd FROM repctl.sync s JOIN repctl.sync_node n "
		    "ON n.sync = s.name WHERE n.node = $1 ORDER BY 1",
		    1, p1, err, sizeof(err));
		if (r != NULL && PQntuples(r) == 0) {
			PQclear(r);
			r = db_query(o->meta,
			    "SELECT DISTINCT herd FROM repctl.herd_table WHERE node = $1 ORDER BY 1",
			    1, p1, err, sizeof(err));
		}
		if (r == NULL)
			goto fail;
		for (i = 0; i < PQntuples(r); i++) {
			o->h = xrealloc(o->h, sizeof(*o->h) * (size_t)(o->nh + 1));
			memset(&o->h[o->nh], 0, sizeof(*o->h));
			o->h[o->nh++].herd = xstrdup(PQgetvalue(r, i, 0));
		}
		PQclear(r);
	}
	if (o->nh == 0) {
		cmd_error("'%s' has no tables in any herd, so there is nothing to give the client\n"
			  "hint: 'repctl add all tables --herd=HERD --db=%s' first",
		    o->primary, o->primary);
		return -1;
	}
	for (k = 0; k < o->nh; k++) {
		const char *p[2] = { o->h[k].herd, o->primary };

		r = db_query(o->meta,
		    "SELECT schema_name, table_name, format('%I.%I', schema_name, table_name), "
		    "conflict_column FROM repctl.herd_table WHERE herd = $1 AND node = $2 "
		    "ORDER BY schema_name, table_name",
		    2, p, err, sizeof(err));
		if (r == NULL)
			goto fail;
		for (i = 0; i < PQntuples(r); i++) {
			struct onb_table *t;

			o->t = xrealloc(o->t, sizeof(*o->t) * (size_t)(o->nt + 1));
			t = &o->t[o->nt++];
			t->herd = xstrdup(o->h[k].herd);
			t->schema = xstrdup(PQgetvalue(r, i, 0));
			t->table = xstrdup(PQgetvalue(r, i, 1));
			t->qname = xstrdup(PQgetvalue(r, i, 2));
			t->ccol = PQgetisnull(r, i, 3) ? NULL : xstrdup(PQgetvalue(r, i, 3));
		}
		PQclear(r);
		/* the settings of the primary's own syncs of the herd, for the new ones */
		r = db_query(o->meta,
		    "SELECT s.conflict_column, s.interval_s::text FROM repctl.sync s "
		    "WHERE s.herd = $1 AND EXISTS (SELECT 1 FROM repctl.sync_node n "
		    "WHERE n.sync = s.name AND n.node = $2) ORDER BY s.name LIMIT 1",
		    2, p, err, sizeof(err));
		if (r == NULL)
			goto fail;
		if (PQntuples(r) == 1) {
			o->h[k].ccol = xstrdup(PQgetvalue(r, 0, 0));
			if (!PQgetisnull(r, 0, 1))
				o->h[k].interval = xstrdup(PQgetvalue(r, 0, 1));
		}
		PQclear(r);
	}
	return 0;
fail:
	cmd_error("%s", err);
	return -1;
}

/* Distinct (schema, table) of the herd tables the client lacks. */
static int
missing_tables(struct onb *o, char ***schemas, char ***tables, int *n)
{
	char err[ERRLEN];
	char **s = xcalloc((size_t)o->nt + 1, sizeof(char *));
	char **t = xcalloc((size_t)o->nt + 1, sizeof(char *));
	const char *p[2];
	PGresult *r;
	int i;

	for (i = 0; i < o->nt; i++) {
		s[i] = o->t[i].schema;
		t[i] = o->t[i].table;
	}
	p[0] = text_array(s, o->nt);
	p[1] = text_array(t, o->nt);
	free(s);
	free(t);
	r = db_query(o->cc,
	    "SELECT DISTINCT x.s, x.t FROM unnest($1::text[], $2::text[]) AS x(s, t) "
	    "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
	    "  ON n.oid = c.relnamespace WHERE n.nspname = x.s AND c.relname = x.t "
	    "  AND c.relkind IN ('r', 'p')) ORDER BY 1, 2",
	    2, p, err, sizeof(err));
	free((char *)p[0]);
	free((char *)p[1]);
	if (r == NULL) {
		cmd_error("client '%s': %s", o->name, err);
		return -1;
	}
	*n = PQntuples(r);
	*schemas = xcalloc((size_t)*n + 1, sizeof(char *));
	*tables = xcalloc((size_t)*n + 1, sizeof(char *));
	for (i = 0; i < *n; i++) {
		(*schemas)[i] = xstrdup(PQgetvalue(r, i, 0));
		(*tables)[i] = xstrdup(PQgetvalue(r, i, 1));
	}
	PQclear(r);
	return 0;
}

static void
strv_free(char **v, int n)
{
	int i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The pg_dump to use: the server's own version, PATH, then other versions.  free(). */
static char *
pg_dump_path(int server_major)
{
	static const int versions[] = { 17, 16, 15, 14, 13 };
	const char *path = getenv("PATH");
	char *cand;
	size_t i;

	cand = xasprintf("/usr/lib/postgresql/%d/bin/pg_dump", server_major);
	if (access(cand, X_OK) == 0)
		return cand;
	free(cand);
	if (path) {
		char *copy = xstrdup(path), *dir, *rest = copy;

		while ((dir = strsep(&rest, ":")) != NULL) {
			cand = xasprintf("%s/pg_dump", *dir ? dir : ".");
			if (access(cand, X_OK) == 0) {
				free(copy);
				return cand;
			}
			free(cand);
		}
		free(copy);
	}
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		cand = xasprintf("/usr/lib/postgresql/%d/bin/pg_dump", versions[i]);
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
	}
	return NULL;
}

/*
 * Run argv with PGPASSFILE=passfile (when not NULL) and collect its stdout
 * and stderr.  Returns its exit status (-1 when it could not run, with err).
 */
static int
run_collect(char *const argv[], const char *passfile, struct buf *out, struct buf *errout,
    char *err, size_t errlen)
{
	int po[2], pe[2], status = 0, open = 2;
	pid_t pid;

	if (pipe(po) < 0 || pipe(pe) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		if (passfile)
			setenv("PGPASSFILE", passfile, 1);
		execv(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (open > 0) {
		struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
		int i;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2; i++) {
			char chunk[8192];
			ssize_t n;

			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(fds[i].fd, chunk, sizeof(chunk));
			if (n > 0) {
				buf_add(i == 0 ? out : errout, chunk, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(i == 0 ? po[0] : pe[0]);
				if (i == 0)
					po[0] = -1;
				else
					pe[0] = -1;
				open--;
			}
		}
		if (po[0] < 0 && pe[0] < 0)
			break;
	}
	if (po[0] >= 0)
		close(po[0]);
	if (pe[0] >= 0)
		close(pe[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * The schema pg_dump printed, without psql meta-commands (\restrict ...)
 * and without repctl's own capture triggers on the primary (their
 * functions live in the primary's schema repctl; the client gets its own
 * capture when its tables are added).  free().
 */
static char *
dump_filter(const char *in)
{
	static const char entry[] = "\n--\n-- Name: ";
	struct buf b = BUF_INIT;
	const char *p = in;

	while (*p) {
		const char *next = strstr(p + 1, entry);
		size_t len = next ? (size_t)(next - p) + 1 : strlen(p);
		char *chunk = xstrndup(p, len);
		int drop = 0;

		if (strncmp(chunk, "--\n-- Name: ", 12) == 0) {
			size_t hl = strcspn(chunk + 3, "\n");
			char *head = xstrndup(chunk + 3, hl);

			drop = strstr(head, "; Type: TRIGGER;") != NULL &&
			    strstr(chunk, "EXECUTE FUNCTION repctl.") != NULL;
			free(head);
		}
		if (!drop) {
			char *line, *rest = chunk;

			while ((line = strsep(&rest, "\n")) != NULL) {
				if (line[0] == '\\')
					continue;
				buf_puts(&b, line);
				if (rest)
					buf_putc(&b, '\n');
			}
		}
		free(chunk);
		p += len;
	}
	return b.data ? buf_steal(&b) : xstrdup("");
}

/*
 * DDL for the enum and domain types the tables use that the client lacks
 * (pg_dump -t does not dump them), and the schemas they and the tables
 * live in, appended to sql.
 */
static int
types_ddl(struct onb *o, char **schemas, char **tables, int n, struct buf *sql)
{
	char err[ERRLEN];
	const char *p[2];
	PGresult *r;
	int i, rc = -1;

	p[0] = text_array(schemas, n);
	p[1] = text_array(tables, n);
	r = db_query(o->pc,
	    "WITH tabs AS (SELECT c.oid FROM pg_catalog.pg_class c "
	    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	    "  JOIN unnest($1::text[], $2::text[]) AS x(s, t) ON n.nspname = x.s AND c.relname = x.t), "
	    "typs AS (SELECT DISTINCT CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 "
	    "  THEN t.typelem ELSE t.oid END AS oid FROM pg_catalog.pg_attribute a "
	    "  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
	    "  WHERE a.attrelid IN (SELECT oid FROM tabs) AND a.attnum > 0 AND NOT a.attisdropped) "
	    "SELECT n.nspname::text, t.typname::text, CASE t.typtype "
	    "  WHEN 'e' THEN format('CREATE TYPE %I.%I AS ENUM (%s)', n.nspname, t.typname, "
	    "    (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) "
	    "     FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)) "
	    "  ELSE format('CREATE DOMAIN %I.%I AS %s%s%s%s', n.nspname, t.typname, "
	    "    pg_catalog.format_type(t.typbasetype, t.typtypmod), "
	    "    coalesce(' DEFAULT ' || t.typdefault, ''), "
	    "    CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END, "
	    "    coalesce((SELECT string_agg(format(' CONSTRAINT %I %s', c.conname, "
	    "      pg_catalog.pg_get_constraintdef(c.oid)), '' ORDER BY c.conname) "
	    "      FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), "
	    "    '')) END "
	    "FROM typs JOIN pg_catalog.pg_type t ON t.oid = typs.oid "
	    "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
	    "WHERE t.typtype IN ('e', 'd') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	    "ORDER BY t.typtype DESC, 1, 2",
	    2, p, err, sizeof(err));
	free((char *)p[0]);
	free((char *)p[1]);
	if (r == NULL) {
		cmd_error("reading the types of the tables on '%s': %s", o->primary, err);
		return -1;
	}
	/* schemas: of the tables, and of the types */
	{
		char **all = xcalloc((size_t)(n + PQntuples(r)) + 1, sizeof(char *));
		int na = 0, j;

		for (i = 0; i < n; i++)
			all[na++] = schemas[i];
		for (i = 0; i < PQntuples(r); i++)
			all[na++] = PQgetvalue(r, i, 0);
		for (i = 0; i < na; i++) {
			char *q;

			for (j = 0; j < i && strcmp(all[j], all[i]) != 0; j++)
				;
			if (j < i)
				continue;
			q = db_ident(o->cc, all[i]);
			buf_printf(sql, "CREATE SCHEMA IF NOT EXISTS %s;\n", q);
			free(q);
		}
		free(all);
	}
	for (i = 0; i < PQntuples(r); i++) {
		const char *tp[2] = { PQgetvalue(r, i, 0), PQgetvalue(r, i, 1) };
		PGresult *e = db_query(o->cc,
		    "SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n "
		    "ON n.oid = t.typnamespace WHERE n.nspname = $1 AND t.typname = $2",
		    2, tp, err, sizeof(err));

		if (e == NULL) {
			cmd_error("client '%s': %s", o->name, err);
			goto out;
		}
		if (PQntuples(e) == 0)
			buf_printf(sql, "%s;\n", PQgetvalue(r, i, 2));
		PQclear(e);
	}
	rc = 0;
out:
	PQclear(r);
	return rc;
}

/* pg_dump --schema-only of exactly these tables on the primary, filtered, appended to sql. */
static int
dump_schema(struct onb *o, char **schemas, char **tables, int n, struct buf *sql)
{
	char err[ERRLEN];
	char *bin = pg_dump_path(PQserverVersion(o->pc) / 10000);
	char **argv = xcalloc((size_t)(2 * n + 10), sizeof(char *));
	char *passfile = NULL, *filtered;
	struct buf out = BUF_INIT, eout = BUF_INIT;
	struct secret_key k;
	int i, a = 0, st, rc = -1;

	if (bin == NULL) {
		cmd_error(
		    "pg_dump not found (on PATH or in /usr/lib/postgresql/*/bin): it copies the "
		    "primary's schema to the client\nhint: install the PostgreSQL client "
		    "(apt-get install postgresql-client-15), or create the tables on the client "
		    "yourself (Rails: bin/rails db:schema:load) and run this again");
		free(argv);
		return -1;
	}
	/* the password of the primary, when repctl's secrets file has it */
	secret_key_from_conninfo(o->pn.conninfo, &k);
	{
		char *pw = secrets_lookup(o->cfg->secrets_file, &k);

		if (pw) {
			passfile = o->cfg->secrets_file;
			memset(pw, 0, strlen(pw));
			free(pw);
		}
	}
	secret_key_clear(&k);
	argv[a++] = bin;
	argv[a++] = xstrdup("--schema-only");
	argv[a++] = xstrdup("--no-owner");
	argv[a++] = xstrdup("--no-privileges");
	argv[a++] = xstrdup("--strict-names");
	for (i = 0; i < n; i++) {
		/* a pattern in double quotes matches the name exactly */
		struct buf pat = BUF_INIT;
		const char *parts[2] = { schemas[i], tables[i] };
		int j;

		for (j = 0; j < 2; j++) {
			const char *c;

			buf_puts(&pat, j ? ".\"" : "\"");
			for (c = parts[j]; *c; c++) {
				if (*c == '"')
					buf_putc(&pat, '"');
				buf_putc(&pat, *c);
			}
			buf_putc(&pat, '"');
		}
		argv[a++] = xstrdup("-t");
		argv[a++] = buf_steal(&pat);
	}
	argv[a++] = xstrdup("-d");
	argv[a++] = xstrdup(o->pn.conninfo);
	argv[a] = NULL;
	st = run_collect(argv, passfile, &out, &eout, err, sizeof(err));
	if (st != 0) {
		cmd_error("pg_dump of the schema on '%s' failed (%s, exit %d): %s\n"
			  "hint: pg_dump must be as new as the primary's PostgreSQL; nothing was "
			  "changed on the client",
		    o->primary, bin, st, st < 0 ? err : (eout.data ? eout.data : ""));
		goto out;
	}
	filtered = dump_filter(out.data ? out.data : "");
	buf_puts(sql, filtered);
	free(filtered);
	rc = 0;
out:
	for (i = 0; i < a; i++)
		free(argv[i]);
	free(argv);
	buf_free(&out);
	buf_free(&eout);
	return rc;
}

static int
step_tables(struct onb *o)
{
	char err[ERRLEN];
	char **s = NULL, **t = NULL;
	struct buf list = BUF_INIT, sql = BUF_INIT;
	int n = 0, i, rc = -1;

	o->step = 3;
	if (missing_tables(o, &s, &t, &n) < 0)
		return -1;
	if (n == 0) {
		step_print(
		    o, "tables", "done: the client has all %d table(s) of the herd(s)", o->nt);
		rc = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		char *q = db_qualified(o->cc, s[i], t[i]);

		buf_printf(&list, "%s%s", i ? ", " : "", q);
		free(q);
	}
	if (o->dry) {
		o->todo++;
		step_print(o, "tables",
		    "to do: create %d table(s) with the schema of '%s' "
		    "(pg_dump --schema-only): %s",
		    n, o->primary, list.data);
		rc = 0;
		goto out;
	}
	buf_puts(&sql, "BEGIN;\n");
	if (types_ddl(o, s, t, n, &sql) < 0 || dump_schema(o, s, t, n, &sql) < 0)
		goto out;
	buf_puts(&sql, "\nCOMMIT;\n");
	if (db_exec(o->cc, sql.data, err, sizeof(err)) < 0) {
		db_rollback(o->cc);
		cmd_error(
		    "creating the tables on '%s' failed: %s\n"
		    "hint: the schema comes from pg_dump of '%s'; a table that needs something "
		    "pg_dump -t does not carry (an extension, a table outside the herd it refers "
		    "to) needs it created on the client first; nothing was changed on the client",
		    o->name, err, o->primary);
		goto out;
	}
	/* the search_path the dump set is the empty one db_connect sets */
	o->created = n;
	step_print(o, "tables", "created %d table(s) on '%s' with the schema of '%s': %s", n,
	    o->name, o->primary, list.data);
	rc = 0;
out:
	strv_free(s, n);
	strv_free(t, n);
	buf_free(&list);
	buf_free(&sql);
	return rc;
}

/* ---- 4. the node ---- */

static int
step_node(struct onb *o)
{
	char err[ERRLEN];
	struct args a;
	int rc;

	o->step = 4;
	memset(&a, 0, sizeof(a));
	if (o->cexists) {
		int ssh_diff = o->ssh && (o->cn.ssh == NULL || strcmp(o->ssh, o->cn.ssh) != 0);
		int agent_diff =
		    o->agent && (o->cn.agent == NULL || strcmp(o->agent, o->cn.agent) != 0);
		int pass_diff = 0;

		if (o->pass) {
			/* a password given again is stored unless the secrets file has it */
			struct secret_key key;
			char *had;

			secret_key_from_conninfo(o->cn.conninfo, &key);
			had = secrets_lookup(o->cfg->secrets_file, &key);
			pass_diff = had == NULL || strcmp(had, o->pass) != 0;
			if (had)
				memset(had, 0, strlen(had));
			free(had);
			secret_key_clear(&key);
		}
		if (!ssh_diff && !agent_diff && !pass_diff) {
			step_print(
			    o, "node", "done: '%s' is registered (%s)", o->name, o->cn.conninfo);
			return 0;
		}
		if (o->dry) {
			o->todo++;
			step_print(o, "node", "to do: set%s%s%s%s%s on '%s'",
			    ssh_diff ? " ssh=" : "", ssh_diff ? o->ssh : "",
			    agent_diff ? " agent=" : "", agent_diff ? o->agent : "",
			    pass_diff ? " pass=..." : "", o->name);
			return 0;
		}
		fa_word(&a, o->name);
		if (ssh_diff)
			fa_opt(&a, "ssh", o->ssh);
		if (agent_diff)
			fa_opt(&a, "agent", o->agent);
		if (pass_diff)
			fa_opt(&a, "pass", o->pass);
		rc = cmd_update_database(o->ctx, &a);
	} else {
		if (o->dry) {
			o->todo++;
			step_print(o, "node", "to do: add database %s %s%s%s%s%s", o->name,
			    o->conninfo, o->pass ? " pass=..." : "", o->ssh ? " ssh=" : "",
			    o->ssh ? o->ssh : "", o->agent ? " agent=..." : "");
			return 0;
		}
		fa_word(&a, o->name);
		fa_opt(&a, "host", o->host);
		fa_opt(&a, "port", o->port);
		fa_opt(&a, "dbname", o->dbname);
		fa_opt(&a, "user", o->user);
		fa_opt(&a, "pass", o->pass);
		fa_opt(&a, "sslmode", o->sslmode);
		fa_opt(&a, "ssh", o->ssh);
		fa_opt(&a, "agent", o->agent);
		rc = cmd_add_database(o->ctx, &a);
	}
	cli_args_free(&a);
	if (rc != 0)
		return -1;
	node_clear(&o->cn);
	if (meta_node_get(o->meta, o->name, &o->cn, err, sizeof(err)) != 0) {
		cmd_error("node '%s' is not in the metadata after adding it: %s", o->name, err);
		return -1;
	}
	step_print(o, "node", "'%s' %s", o->name, o->cexists ? "updated" : "registered");
	o->cexists = 1;
	return 0;
}

/* ---- 5. the herd tables of the client ---- */

static int
step_register(struct onb *o)
{
	char err[ERRLEN];
	int k, total = 0, done = 0;

	o->step = 5;
	for (k = 0; k < o->nh; k++) {
		const char *p[3] = { o->h[k].herd, o->primary, o->name };
		PGresult *r = db_query(o->meta,
		    "SELECT format('%I.%I', p.schema_name, p.table_name), p.conflict_column "
		    "FROM repctl.herd_table p WHERE p.herd = $1 AND p.node = $2 AND NOT EXISTS "
		    "(SELECT 1 FROM repctl.herd_table c WHERE c.herd = p.herd AND c.node = $3 "
		    " AND c.schema_name = p.schema_name AND c.table_name = p.table_name) "
		    "ORDER BY coalesce(p.conflict_column, ''), p.schema_name, p.table_name",
		    3, p, err, sizeof(err));
		int i = 0, n;

		if (r == NULL) {
			cmd_error("%s", err);
			return -1;
		}
		n = PQntuples(r);
		total += n;
		if (n > 0 && o->dry) {
			o->todo++;
			step_print(o, "herd tables",
			    "to do: add %d table(s) of '%s' in herd '%s' for '%s', with their capture",
			    n, o->primary, o->h[k].herd, o->name);
		}
		/* one add table per conflict column override (NULL first) */
		while (!o->dry && i < n) {
			struct args a;
			int j = i, rc;
			const char *cc = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);

			memset(&a, 0, sizeof(a));
			fa_word(&a, PQgetvalue(r, i, 0));
			for (j = i + 1; j < n; j++) {
				const char *cj = PQgetisnull(r, j, 1) ? NULL : PQgetvalue(r, j, 1);

				if ((cc == NULL) != (cj == NULL) || (cc && strcmp(cc, cj) != 0))
					break;
				fa_pos(&a, PQgetvalue(r, j, 0));
			}
			fa_opt(&a, "herd", o->h[k].herd);
			fa_opt(&a, "db", o->name);
			fa_opt(&a, "conflict_column", cc);
			rc = cmd_add_table(o->ctx, &a);
			cli_args_free(&a);
			if (rc != 0) {
				PQclear(r);
				return -1;
			}
			done += j - i;
			i = j;
		}
		PQclear(r);
	}
	if (total == 0)
		step_print(o, "herd tables",
		    "done: '%s' has the %d table(s) of the herd(s) with "
		    "their capture",
		    o->name, o->nt);
	else if (!o->dry) {
		o->registered = done;
		step_print(o, "herd tables", "added %d table(s) for '%s' with their capture", done,
		    o->name);
	}
	return 0;
}

/* ---- 6. the syncs ---- */

/* 1 when the sync exists with exactly these members and roles, 0 when absent, -1 otherwise. */
static int
sync_is(struct onb *o, const char *name, const char *herd, const char *src, const char *dst)
{
	char err[ERRLEN];
	struct sync_def s;
	int found = sync_load(o->meta, name, &s, err, sizeof(err)), i, ok;

	if (found < 0) {
		cmd_error("%s", err);
		return -1;
	}
	if (found == 1)
		return 0;
	ok = strcmp(s.herd, herd) == 0 && s.nm == 2;
	for (i = 0; ok && i < s.nm; i++)
		ok = (strcmp(s.m[i].node, src) == 0 && s.m[i].source) ||
		    (strcmp(s.m[i].node, dst) == 0 && !s.m[i].source);
	sync_def_free(&s);
	if (!ok) {
		cmd_error("sync '%s' exists but is not herd '%s' from '%s' to '%s'\nhint: the "
			  "client's syncs are named after it; remove that sync or give the client "
			  "another name; nothing more was changed",
		    name, herd, src, dst);
		return -1;
	}
	return 1;
}

static int
add_sync(struct onb *o, struct onb_herd *h, const char *name, const char *src, const char *dst,
    const char *otc)
{
	struct args a;
	char *dbs = xasprintf("%s:source,%s:target", src, dst);
	int rc;

	memset(&a, 0, sizeof(a));
	fa_word(&a, name);
	fa_opt(&a, "herd", h->herd);
	fa_opt(&a, "dbs", dbs);
	fa_opt(&a, "conflict_strategy", "latest");
	fa_opt(&a, "conflict_column", h->ccol);
	fa_opt(&a, "interval", h->interval);
	fa_opt(&a, "onetimecopy", otc);
	/* the coordinator leaves it alone until its initial copy has committed */
	fa_opt(&a, "status", "inactive");
	rc = cmd_add_sync(o->ctx, &a);
	cli_args_free(&a);
	free(dbs);
	return rc == 0 ? 0 : -1;
}

static int
step_syncs(struct onb *o)
{
	char err[ERRLEN];
	struct buf made = BUF_INIT, have = BUF_INIT;
	int k, rc = -1;

	o->step = 6;
	for (k = 0; k < o->nh; k++) {
		struct onb_herd *h = &o->h[k];
		const char *sfx = o->nh > 1 ? "_" : "", *hs = o->nh > 1 ? h->herd : "";
		int e, i;

		if (o->mesh) {
			h->out = xasprintf("onboard_%s%s%s", o->name, sfx, hs);
			/* filled already when the client is in every multi-source sync of the herd */
			h->filled = 1;
			for (i = 0; i < o->nmesh; i++) {
				const char *p[3] = { o->msyncs[i], h->herd, o->name };
				PGresult *r = db_query(o->meta,
				    "SELECT 1 FROM repctl.sync s WHERE s.name = $1 AND s.herd = $2 AND "
				    "NOT EXISTS (SELECT 1 FROM repctl.sync_node n WHERE n.sync = s.name "
				    "AND n.node = $3)",
				    3, p, err, sizeof(err));

				if (r == NULL) {
					cmd_error("%s", err);
					goto out;
				}
				if (PQntuples(r) > 0)
					h->filled = 0;
				PQclear(r);
			}
		} else {
			h->out = xasprintf("%s_to_%s%s%s", o->primary, o->name, sfx, hs);
			h->back = xasprintf("%s_to_%s%s%s", o->name, o->primary, sfx, hs);
		}
		if (!parse_valid_name(h->out) || (h->back && !parse_valid_name(h->back))) {
			cmd_error("the sync name '%s' is too long (at most 63 characters)\n"
				  "hint: give the client a shorter name",
			    strlen(h->out) > 63 || h->back == NULL ? h->out : h->back);
			goto out;
		}
		if (h->filled) {
			buf_printf(&have, "%s%s", have.len ? ", " : "", h->out);
			continue;
		}
		e = sync_is(o, h->out, h->herd, o->primary, o->name);
		if (e < 0)
			goto out;
		if (e == 1)
			buf_printf(&have, "%s%s", have.len ? ", " : "", h->out);
		else if (o->dry)
			buf_printf(&made, "%s%s", made.len ? ", " : "", h->out);
		else if (add_sync(o, h, h->out, o->primary, o->name, "2") < 0)
			goto out;
		else
			buf_printf(&made, "%s%s", made.len ? ", " : "", h->out);
		if (h->back == NULL)
			continue;
		e = sync_is(o, h->back, h->herd, o->name, o->primary);
		if (e < 0)
			goto out;
		if (e == 1)
			buf_printf(&have, "%s%s", have.len ? ", " : "", h->back);
		else if (o->dry)
			buf_printf(&made, "%s%s", made.len ? ", " : "", h->back);
		else if (add_sync(o, h, h->back, o->name, o->primary, "0") < 0)
			goto out;
		else
			buf_printf(&made, "%s%s", made.len ? ", " : "", h->back);
	}
	if (o->mesh && made.len == 0 && have.len)
		step_print(o, "syncs", "done: %s", have.data);
	else if (made.len == 0)
		step_print(o, "syncs", "done: %s exist", have.data);
	else if (o->dry) {
		o->todo++;
		step_print(o, "syncs", "to do: add %s (conflict_strategy latest%s)%s%s", made.data,
		    o->mesh ? ", a one-time fill sync" : "", have.len ? "; exist: " : "",
		    have.len ? have.data : "");
	} else
		step_print(o, "syncs",
		    "added %s (inactive: the coordinator leaves %s alone until "
		    "the initial copy is done)%s%s",
		    made.data, o->mesh ? "it" : "them", have.len ? "; already there: " : "",
		    have.len ? have.data : "");
	rc = 0;
out:
	buf_free(&made);
	buf_free(&have);
	return rc;
}

/* ---- 7. the initial copy ---- */

/* Tables of edge src -> dst of sync that have no position yet; -1 on error. */
static long
edge_unpositioned(struct onb *o, const char *sync, const char *herd)
{
	char err[ERRLEN];
	const char *p[4] = { herd, o->primary, o->name, sync };
	char *v = db_value(o->meta,
	    "SELECT count(*) FROM repctl.herd_table x JOIN repctl.herd_table y "
	    "ON y.herd = x.herd AND y.schema_name = x.schema_name AND y.table_name = x.table_name "
	    "WHERE x.herd = $1 AND x.node = $2 AND y.node = $3 AND NOT EXISTS "
	    "(SELECT 1 FROM repctl.position p WHERE p.sync = $4 AND p.source = $2 "
	    " AND p.target = $3 AND p.schema_name = x.schema_name AND p.table_name = x.table_name)",
	    4, p, err, sizeof(err));
	long n;

	if (v == NULL) {
		cmd_error("%s", err);
		return -1;
	}
	n = atol(v);
	free(v);
	return n;
}

/* A table the initial copy fills: empty on the client, with the primary's estimate. */
struct fill {
	char *qname;        /* "schema"."table", for SQL */
	const char *shown;  /* schema.table (quoted only when needed), for people */
	long long estimate; /* rows on the primary */
};

/* The herd tables that are empty on the client (the copy fills only those). */
static int
fill_list(struct onb *o, const char *herd, struct fill **out, int *n, long long *total)
{
	char err[ERRLEN];
	int i;

	*out = NULL;
	*n = 0;
	*total = 0;
	for (i = 0; i < o->nt; i++) {
		char *q, *v, *ts;
		const char *p[2];

		if (strcmp(o->t[i].herd, herd) != 0)
			continue;
		q = db_qualified(o->cc, o->t[i].schema, o->t[i].table);
		p[0] = q;
		v = db_value(
		    o->cc, "SELECT pg_catalog.to_regclass($1) IS NULL", 1, p, err, sizeof(err));
		if (v && v[0] == 'f') {
			/* it exists: filled only when empty (a missing one is created empty) */
			free(v);
			ts = xasprintf("SELECT NOT EXISTS (SELECT 1 FROM %s)", q);
			v = db_value(o->cc, ts, 0, NULL, err, sizeof(err));
			free(ts);
		}
		if (v == NULL) {
			cmd_error("client '%s': %s", o->name, err);
			free(q);
			return -1;
		}
		if (v[0] != 't') {
			free(v);
			free(q);
			continue;
		}
		free(v);
		p[0] = o->t[i].schema;
		p[1] = o->t[i].table;
		v = db_value(o->pc,
		    "SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE -1 END "
		    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
		    "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
		    2, p, err, sizeof(err));
		*out = xrealloc(*out, sizeof(**out) * (size_t)(*n + 1));
		(*out)[*n].qname = q;
		(*out)[*n].shown = o->t[i].qname;
		(*out)[*n].estimate = v ? atoll(v) : -1;
		free(v);
		if ((*out)[*n].estimate < 0) {
			/* never analyzed: count */
			char *cs = xasprintf("SELECT count(*) FROM %s", q);

			v = db_value(o->pc, cs, 0, NULL, err, sizeof(err));
			free(cs);
			(*out)[*n].estimate = v ? atoll(v) : 0;
			free(v);
		}
		*total += (*out)[*n].estimate;
		(*n)++;
	}
	return 0;
}

static void
fill_free(struct fill *f, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(f[i].qname);
	free(f);
}

static volatile sig_atomic_t watch_stop;

static void
watch_on_term(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static void
fmt_eta(char *out, size_t len, double s)
{
	if (s < 0 || s > 359999)
		snprintf(out, len, "?");
	else
		snprintf(out, len, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
}

/*
 * The progress line of the initial copy, on a terminal: a child process
 * watches pg_stat_progress_copy on the client (the copy runs in this
 * process's sync_run, which has no progress hook) and rewrites one line on
 * stderr: table i/n, its rows and MB, the total, the rate and the ETA.
 * Returns its pid (0 when not on a terminal or it could not start); stop it
 * with watch_end().
 */
static pid_t
watch_begin(const struct onb *o, const struct fill *f, int nf, long long total)
{
	pid_t parent = getpid(), pid;
	struct sigaction sa;
	char err[ERRLEN];
	PGconn *c;
	char cur[512] = "";
	long long cur_rows = 0, cur_bytes = 0, done_bytes = 0, before = 0;
	int idx = 0, i;
	double t0;

	if (!o->tty || nf == 0)
		return 0;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid != 0)
		return pid < 0 ? 0 : pid;
	/* the child: never touches the parent's connections, ends with _exit */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	c = db_connect(o->conninfo, "repctl onboard progress", o->cfg->secrets_file, o->pass,
	    o->cfg->connect_timeout, err, sizeof(err));
	if (c == NULL)
		_exit(0);
	t0 = clock_mono();
	while (!watch_stop) {
		PGresult *r = db_query(c,
		    "SELECT p.relid::regclass::text, p.tuples_processed, p.bytes_processed "
		    "FROM pg_catalog.pg_stat_progress_copy p "
		    "WHERE p.datid = (SELECT oid FROM pg_catalog.pg_database "
		    "  WHERE datname = pg_catalog.current_database()) "
		    "AND p.command = 'COPY FROM' AND p.pid <> pg_catalog.pg_backend_pid() LIMIT 1",
		    0, NULL, err, sizeof(err));

		if (r && PQntuples(r) == 1) {
			const char *rel = PQgetvalue(r, 0, 0);
			long long rows = atoll(PQgetvalue(r, 0, 1)),
				  bytes = atoll(PQgetvalue(r, 0, 2));
			int shadow = strncmp(rel, "repctl.", 7) == 0;

			if (strcmp(rel, cur) != 0) {
				done_bytes += cur_bytes;
				snprintf(cur, sizeof(cur), "%s", rel);
				cur_rows = cur_bytes = 0;
				/* the tables are copied in this order: the rows of those before */
				for (i = 0; !shadow && i < nf && strcmp(f[i].shown, rel) != 0; i++)
					;
				if (!shadow && i < nf) {
					idx = i + 1;
					for (before = 0; i > 0; i--)
						before += f[i - 1].estimate;
				}
			}
			cur_rows = rows;
			cur_bytes = bytes;
			{
				double el = clock_mono() - t0;
				long long all_rows = before + (shadow ? 0 : cur_rows);
				long long all_bytes = done_bytes + cur_bytes;
				double rate = el > 0 ? (double)all_rows / el : 0;
				char eta[32];

				fmt_eta(eta, sizeof(eta),
				    rate > 0 && total > all_rows ? (double)(total - all_rows) / rate
								 : 0);
				fprintf(stderr,
				    "\r\033[Kinitial copy: table %d/%d %s%s: %lld rows, %.1f MB | total %lld/%lld "
				    "rows (%d%%), %.1f MB, %.1f MB/s, ETA %s",
				    idx, nf, shadow ? "version store " : "", rel, cur_rows,
				    (double)cur_bytes / 1e6, all_rows, total,
				    total > 0 ? (int)(100 * all_rows / total) : 100,
				    (double)all_bytes / 1e6,
				    el > 0 ? (double)all_bytes / 1e6 / el : 0, eta);
				fflush(stderr);
			}
		}
		PQclear(r);
		usleep(250000);
	}
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	db_close(c);
	_exit(0);
}

static void
watch_end(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int
run_fill(struct onb *o, struct onb_herd *h)
{
	char err[ERRLEN];
	struct sync_def s;
	struct node_pool *pool;
	struct run_stats st;
	struct fill *f = NULL;
	int nf = 0, i, rc = -1, found;
	long long total = 0;
	enum log_level lvl = log_get_level();
	pid_t watcher;
	double t0, el;

	if (fill_list(o, h->herd, &f, &nf, &total) < 0)
		return -1;
	found = sync_load(o->meta, h->out, &s, err, sizeof(err));
	if (found != 0) {
		cmd_error("%s", found < 0 ? err : "the fill sync vanished; run this again");
		fill_free(f, nf);
		return -1;
	}
	printf("initial copy '%s' -> '%s' (sync %s): %d empty table(s) to fill, about %lld "
	       "row(s)\n",
	    o->primary, o->name, h->out, nf, total);
	fflush(stdout);
	pool = pool_new(o->cfg, o->meta);
	watcher = watch_begin(o, f, nf, total);
	if (watcher > 0 && lvl >= LOG_LVL_INFO)
		log_set_level(
		    LOG_LVL_WARN); /* the progress line replaces the per-table log lines */
	t0 = clock_mono();
	memset(&st, 0, sizeof(st));
	if (sync_lock(o->meta, s.name, 1, err, sizeof(err)) < 0) {
		rc = -1;
	} else {
		rc = sync_run(pool, o->meta, &s, o->cfg, &st, err, sizeof(err));
		sync_unlock(o->meta, s.name);
	}
	el = clock_mono() - t0;
	watch_end(watcher);
	log_set_level(lvl);
	pool_free(pool);
	sync_def_free(&s);
	if (rc < 0) {
		cmd_error(
		    "initial copy '%s' -> '%s' (sync %s) failed: %s\n"
		    "hint: fix that and run the same onboard command again: what is done stays "
		    "done, and the copy starts over only for what did not commit",
		    o->primary, o->name, h->out, err);
		goto out;
	}
	o->copied += st.inserts;
	printf("initial copy '%s' -> '%s': %d table(s), %ld row(s) in %.1f s (%.0f rows/s)\n",
	    o->primary, o->name, nf, st.inserts, el, el > 0 ? (double)st.inserts / el : 0.0);
	for (i = 0; i < nf; i++) {
		char *q = xasprintf("SELECT count(*) FROM %s", f[i].qname);
		char *v = db_value(o->cc, q, 0, NULL, err, sizeof(err));

		printf("  %-40s %s row(s)\n", f[i].shown, v ? v : "?");
		free(v);
		free(q);
	}
	rc = 0;
out:
	fill_free(f, nf);
	return rc;
}

static int
step_fill(struct onb *o)
{
	int k;

	o->step = 7;
	for (k = 0; k < o->nh; k++) {
		struct onb_herd *h = &o->h[k];
		long n;

		if (h->filled) {
			step_print(o, "initial copy",
			    "done: '%s' is in the multi-source sync(s) of herd "
			    "'%s'",
			    o->name, h->herd);
			continue;
		}
		n = edge_unpositioned(o, h->out, h->herd);
		if (n < 0)
			return -1;
		if (n == 0 && !o->dry) {
			step_print(o, "initial copy", "done: sync %s has run", h->out);
			continue;
		}
		if (o->dry) {
			struct fill *f = NULL;
			int nf = 0;
			long long total = 0;

			if (o->cexists && n == 0) {
				step_print(o, "initial copy", "done: sync %s has run", h->out);
				continue;
			}
			if (fill_list(o, h->herd, &f, &nf, &total) < 0)
				return -1;
			o->todo++;
			step_print(o, "initial copy",
			    "to do: run %s once (onetimecopy=2): fill the empty tables of '%s' from "
			    "'%s' (%d empty now, about %lld row(s) on '%s')",
			    h->out, o->name, o->primary, nf, total, o->primary);
			fill_free(f, nf);
			continue;
		}
		step_print(o, "initial copy", "running sync %s once", h->out);
		if (run_fill(o, h) < 0)
			return -1;
	}
	return 0;
}

/* ---- 8. activation, or membership of the multi-source syncs ---- */

static int
step_activate(struct onb *o)
{
	char err[ERRLEN];
	struct buf did = BUF_INIT;
	int k, i, rc = -1;

	o->step = 8;
	if (!o->mesh) {
		for (k = 0; k < o->nh; k++) {
			const char *p[2] = { o->h[k].out, o->h[k].back };
			PGresult *r;

			if (o->dry) {
				r = db_query(o->meta,
				    "SELECT name FROM repctl.sync WHERE name IN ($1, $2) AND status = "
				    "'active' ORDER BY name",
				    2, p, err, sizeof(err));
				if (r == NULL)
					goto fail;
				if (PQntuples(r) < 2)
					buf_printf(
					    &did, "%s%s, %s", did.len ? ", " : "", p[0], p[1]);
				PQclear(r);
				continue;
			}
			r = db_query(o->meta,
			    "UPDATE repctl.sync SET status = 'active', updated_at = now() "
			    "WHERE name IN ($1, $2) AND status = 'inactive' RETURNING name",
			    2, p, err, sizeof(err));
			if (r == NULL)
				goto fail;
			for (i = 0; i < PQntuples(r); i++)
				buf_printf(&did, "%s%s", did.len ? ", " : "", PQgetvalue(r, i, 0));
			PQclear(r);
		}
		if (did.len == 0)
			step_print(o, "activation", "done: the syncs are active");
		else if (o->dry) {
			o->todo++;
			step_print(o, "activation", "to do: activate %s", did.data);
		} else
			step_print(o, "activation", "activated %s", did.data);
		rc = 0;
		goto out;
	}
	for (i = 0; i < o->nmesh; i++) {
		const char *p[2] = { o->msyncs[i], o->name };
		PGresult *r;

		if (o->dry) {
			r = db_query(o->meta,
			    "SELECT 1 FROM repctl.sync_node WHERE sync = $1 AND node = $2", 2, p,
			    err, sizeof(err));
			if (r == NULL)
				goto fail;
			if (PQntuples(r) == 0)
				buf_printf(&did, "%s%s", did.len ? ", " : "", o->msyncs[i]);
			PQclear(r);
			continue;
		}
		r = db_query(o->meta,
		    "INSERT INTO repctl.sync_node (sync, node, role, ord) SELECT $1, $2, 'source', "
		    "coalesce(max(ord), -1) + 1 FROM repctl.sync_node WHERE sync = $1 "
		    "ON CONFLICT (sync, node) DO NOTHING RETURNING sync",
		    2, p, err, sizeof(err));
		if (r == NULL)
			goto fail;
		if (PQntuples(r) == 1)
			buf_printf(&did, "%s%s", did.len ? ", " : "", o->msyncs[i]);
		PQclear(r);
	}
	if (!o->dry) {
		/* the fill syncs have done their work */
		for (k = 0; k < o->nh; k++) {
			const char *p[1] = { o->h[k].out };

			if (db_execp(o->meta, "DELETE FROM repctl.sync WHERE name = $1", 1, p, err,
				sizeof(err)) < 0)
				goto fail;
		}
	}
	if (did.len == 0)
		step_print(
		    o, "mesh", "done: '%s' is a source of the multi-source sync(s)", o->name);
	else if (o->dry) {
		o->todo++;
		step_print(o, "mesh", "to do: add '%s' as a source of %s", o->name, did.data);
	} else
		step_print(o, "mesh", "'%s' is now a source of %s", o->name, did.data);
	rc = 0;
	goto out;
fail:
	cmd_error("%s", err);
out:
	buf_free(&did);
	return rc;
}

/* ---- 9. the folder ---- */

static int
step_folder(struct onb *o)
{
	char err[ERRLEN];
	struct folder_def f, one;
	struct folder_stats st;
	const char *p[2] = { o->folder, o->name };
	PGresult *r = NULL;
	char *got = NULL;
	int found, member = 0, rc = -1, frc;

	o->step = 9;
	memset(&f, 0, sizeof(f));
	memset(&one, 0, sizeof(one));
	if (o->folder == NULL) {
		step_print(o, "folder", "skipped (no --folder given)");
		return 0;
	}
	found = folder_load(o->meta, o->folder, &f, err, sizeof(err));
	if (found != 0) {
		cmd_error("%s", found < 0 ? err : "the folder vanished");
		return -1;
	}
	r = db_query(o->meta, "SELECT path FROM repctl.folder_node WHERE folder = $1 AND node = $2",
	    2, p, err, sizeof(err));
	if (r == NULL) {
		cmd_error("%s", err);
		goto out;
	}
	member = PQntuples(r) == 1;
	PQclear(r);
	if (o->dry) {
		if (member) {
			step_print(o, "folder", "done: %s:%s is in folder '%s' (a run follows)",
			    o->name, o->path, o->folder);
		} else {
			o->todo++;
			step_print(o, "folder", "to do: add %s:%s to folder '%s', then a first run",
			    o->name, o->path, o->folder);
		}
		rc = 0;
		goto out;
	}
	if (!member) {
		/* the marker first: a node in a folder without it stops the folder's runs */
		int marked;

		one.name = xstrdup(f.name);
		one.ignore = xstrdup(f.ignore);
		one.status = xstrdup(f.status);
		one.nm = 1;
		one.m = xcalloc(2, sizeof(*one.m));
		one.m[0].node = xstrdup(o->name);
		one.m[0].path = xstrdup(o->path);
		one.m[0].type = FT_SEND_RECEIVE;
		marked = folder_mark(o->cfg, o->meta, &one);
		if (marked != 1) {
			cmd_error(
			    "cannot create the folder marker of '%s' in %s (see the warning above)\n"
			    "hint: the directory must exist on the client and the coordinator's "
			    "key must be in the client's authorized_keys ('repctl keygen' prints it; "
			    "the client kit has it); then run this again",
			    o->name, o->path);
			goto out;
		}
		{
			const char *ip[3] = { o->folder, o->name, o->path };

			if (db_execp(o->meta,
				"INSERT INTO repctl.folder_node (folder, node, path, type, ord) "
				"SELECT $1, $2, $3, 'send-receive', coalesce(max(ord), -1) + 1 "
				"FROM repctl.folder_node WHERE folder = $1",
				3, ip, err, sizeof(err)) < 0) {
				cmd_error("%s", err);
				goto out;
			}
		}
		folder_def_free(&f);
		if (folder_load(o->meta, o->folder, &f, err, sizeof(err)) != 0) {
			cmd_error("%s", err);
			goto out;
		}
		step_print(o, "folder", "added %s:%s to folder '%s'", o->name, o->path, o->folder);
	} else {
		step_print(o, "folder", "'%s' is in folder '%s' (%s)", o->name, o->folder, o->path);
	}
	/* the coordinator's folder worker takes the same lock: wait for its run */
	got = db_value(o->meta,
	    "SELECT pg_catalog.pg_advisory_lock(hashtext('repctl folder ' || $1))::text || 't'", 1,
	    p, err, sizeof(err));
	if (got == NULL) {
		cmd_error("%s", err);
		goto out;
	}
	frc = folder_run(o->cfg, o->meta, &f, o->tty, &st, err, sizeof(err));
	{
		char e2[ERRLEN];

		if (db_execp(o->meta,
			"SELECT pg_catalog.pg_advisory_unlock(hashtext('repctl folder ' || $1))", 1,
			p, e2, sizeof(e2)) < 0)
			log_warnx("%s", e2);
	}
	if (frc < 0) {
		cmd_error("first run of folder '%s': %s\nhint: fix that and run the same onboard "
			  "command again (or 'repctl sync folder %s')",
		    o->folder, err, o->folder);
		goto out;
	}
	step_print(o, "folder",
	    "first run of '%s': %ld file(s) copied (%.1f MB), %ld deleted, "
	    "%ld conflict(s)",
	    o->folder, st.files, (double)st.bytes / 1e6, st.deleted, st.conflicts);
	rc = 0;
out:
	free(got);
	folder_def_free(&f);
	folder_def_free(&one);
	return rc;
}

/* ---- 10. the coordinator ---- */

/* Reload the running coordinator (wherever it runs): 1 done, 0 not running, -1 failed. */
static int
reload_coordinator(const struct config *cfg, PGconn *meta, struct coord_info *ci)
{
	char err[ERRLEN];
	int r = coordinator_tell(cfg, meta, "reload", ci, err, sizeof(err));

	if (r < 0)
		cmd_error("cannot reload the coordinator: %s\nhint: run 'repctl reload'", err);
	return r;
}

static int
step_reload(struct onb *o)
{
	char err[ERRLEN];
	struct coord_info ci;
	int r;

	o->step = 10;
	if (o->dry) {
		if (coordinator_find(o->cfg, o->meta, &ci, err, sizeof(err)) == 0 && ci.running)
			step_print(o, "coordinator", "to do: reload the running coordinator (%s)",
			    ci.where);
		else
			step_print(o, "coordinator", "not running: 'repctl start' afterwards");
		return 0;
	}
	r = reload_coordinator(o->cfg, o->meta, &ci);
	if (r < 0)
		return -1;
	if (r == 1)
		step_print(
		    o, "coordinator", "reloaded (%s): it runs the client's syncs now", ci.where);
	else
		step_print(o, "coordinator",
		    "not running (no coordinator holds the metadata "
		    "database's lock)");
	return 0;
}

/* ---- the command ---- */

static void
onb_free(struct onb *o)
{
	int i;

	db_close(o->cc);
	db_close(o->pc);
	node_clear(&o->pn);
	node_clear(&o->cn);
	free(o->host);
	free(o->port);
	free(o->dbname);
	free(o->user);
	free(o->sslmode);
	free(o->conninfo);
	free(o->path_kept);
	free(o->ssh_kept);
	for (i = 0; i < o->nt; i++) {
		free(o->t[i].herd);
		free(o->t[i].schema);
		free(o->t[i].table);
		free(o->t[i].qname);
		free(o->t[i].ccol);
	}
	free(o->t);
	for (i = 0; i < o->nh; i++) {
		free(o->h[i].herd);
		free(o->h[i].out);
		free(o->h[i].back);
		free(o->h[i].ccol);
		free(o->h[i].interval);
	}
	free(o->h);
	strv_free(o->msyncs, o->nmesh);
}

static int
same_setting(const char *conninfo, const char *key, const char *given)
{
	char *v;
	int same;

	if (given == NULL)
		return 1;
	v = db_conninfo_get(conninfo, key);
	same = v && strcmp(v, given) == 0;
	free(v);
	return same;
}

/* Check the arguments and the metadata before anything is contacted. 0, -1 (1), -2 (usage, 2). */
static int
onb_setup(struct onb *o, struct args *args)
{
	char err[ERRLEN];
	const char *host = args_get(args, "host"), *port = args_get(args, "port");
	const char *dbname = args_get(args, "dbname"), *user = args_get(args, "user");
	const char *sslmode = args_get(args, "sslmode");
	long v;
	int found;

	o->pass = args_get(args, "pass");
	o->ssh = args_get(args, "ssh");
	o->agent = args_get(args, "agent");
	o->accept = args_get(args, "accept-host-key");
	o->folder = args_get(args, "folder");
	o->path = args_get(args, "path");
	o->dry = args_has(args, "dry-run");
	o->mesh = args_has(args, "mesh");
	o->primary = args_get(args, "from");
	if (o->primary == NULL || *o->primary == '\0')
		o->primary = o->cfg->node && *o->cfg->node ? o->cfg->node : NULL;
	if (!parse_valid_name(o->name)) {
		cmd_error("'%s' is not a valid node name: use letters, digits, '_', '.' or '-', "
			  "starting with a letter (at most 63)",
		    o->name);
		return -2;
	}
	if (o->primary == NULL) {
		cmd_error(
		    "onboard %s: which node is the primary? give --from PRIMARY (or set node= in "
		    "the configuration)",
		    o->name);
		return -2;
	}
	if (strcmp(o->primary, o->name) == 0) {
		cmd_error("onboard %s: the client cannot be the primary itself", o->name);
		return -2;
	}
	if (port && parse_long(port, 1, 65535, &v) < 0) {
		cmd_error("port=%s: give a TCP port from 1 to 65535", port);
		return -2;
	}
	if (o->accept && *o->accept == '\0') {
		cmd_error("--accept-host-key is empty; give the client's SSH host key fingerprint "
			  "(--accept-host-key=SHA256:...)\nhint: on the client: " HOSTKEY_HINT);
		return -2;
	}
	if (o->path && (o->folder == NULL || o->path[0] != '/')) {
		cmd_error(o->folder
			? "path=%s: give the folder's absolute path on the client"
			: "path=%s belongs with --folder=NAME (the folder the client joins)",
		    o->path);
		return -2;
	}
	if (o->ssh && *o->ssh) {
		struct ssh_target t;

		if (ssh_target_parse(o->ssh, &t, err, sizeof(err)) < 0) {
			cmd_error("ssh=%s: %s\nwrite ssh=USER@HOST:PORT (user and port optional)",
			    o->ssh, err);
			return -2;
		}
		ssh_target_clear(&t);
	} else {
		o->ssh = NULL;
	}
	if (o->agent && strpbrk(o->agent, " \t'\";&|$`<>")) {
		cmd_error("agent=%s: give the path of repctl on the client (no spaces or shell "
			  "characters)",
		    o->agent);
		return -2;
	}
	found = meta_node_get(o->meta, o->primary, &o->pn, err, sizeof(err));
	if (found != 0) {
		if (found < 0)
			cmd_error("%s", err);
		else
			cmd_error(
			    "no node '%s' (--from)\nhint: 'repctl list databases' shows the nodes",
			    o->primary);
		return -1;
	}
	found = meta_node_get(o->meta, o->name, &o->cn, err, sizeof(err));
	if (found < 0) {
		cmd_error("%s", err);
		return -1;
	}
	o->cexists = found == 0;
	if (o->cexists) {
		/* a second run: the node's settings are the ones that count */
		if (!same_setting(o->cn.conninfo, "host", host) ||
		    !same_setting(o->cn.conninfo, "port", port) ||
		    !same_setting(o->cn.conninfo, "dbname", dbname) ||
		    !same_setting(o->cn.conninfo, "user", user)) {
			cmd_error(
			    "node '%s' exists with other connection settings (%s)\nhint: to change "
			    "them, 'repctl update database %s key=value...'; to onboard another "
			    "client, give another name; nothing was changed",
			    o->name, o->cn.conninfo, o->name);
			return -1;
		}
		o->conninfo = xstrdup(o->cn.conninfo);
		o->host = db_conninfo_get(o->conninfo, "host");
		o->port = db_conninfo_get(o->conninfo, "port");
		o->dbname = db_conninfo_get(o->conninfo, "dbname");
		o->user = db_conninfo_get(o->conninfo, "user");
		if (o->ssh == NULL && o->cn.ssh) /* a copy: step_node reloads o->cn */
			o->ssh = o->ssh_kept = xstrdup(o->cn.ssh);
	} else {
		struct buf b = BUF_INIT;

		if (host == NULL || *host == '\0') {
			cmd_error(
			    "onboard %s: give the client's address with host=ADDRESS (its VPN "
			    "address)",
			    o->name);
			return -2;
		}
		o->host = xstrdup(host);
		o->port = xstrdup(port ? port : "5432");
		o->dbname = dbname ? xstrdup(dbname) : db_conninfo_get(o->pn.conninfo, "dbname");
		o->user = user ? xstrdup(user) : db_conninfo_get(o->pn.conninfo, "user");
		o->sslmode = sslmode ? xstrdup(sslmode) : NULL;
		if (o->dbname == NULL) {
			cmd_error("onboard %s: give the client's database with dbname=", o->name);
			return -2;
		}
		db_conninfo_append(&b, "host", o->host);
		db_conninfo_append(&b, "port", o->port);
		db_conninfo_append(&b, "dbname", o->dbname);
		if (o->user)
			db_conninfo_append(&b, "user", o->user);
		if (o->sslmode)
			db_conninfo_append(&b, "sslmode", o->sslmode);
		o->conninfo = buf_steal(&b);
		if (db_conninfo_check(o->conninfo, err, sizeof(err)) < 0) {
			cmd_error("onboard %s: %s", o->name, err);
			return -2;
		}
	}
	if (o->folder) {
		struct folder_def f;
		const char *p[2] = { o->folder, o->name };
		PGresult *r;

		found = folder_load(o->meta, o->folder, &f, err, sizeof(err));
		folder_def_free(&f);
		if (found != 0) {
			if (found < 0)
				cmd_error("%s", err);
			else
				cmd_error(
				    "no folder '%s'\nhint: 'repctl list folders' shows them; 'repctl "
				    "add folder %s nodes=%s:/path,...' creates one",
				    o->folder, o->folder, o->primary);
			return -1;
		}
		r = db_query(o->meta,
		    "SELECT path FROM repctl.folder_node WHERE folder = $1 AND node = $2", 2, p,
		    err, sizeof(err));
		if (r == NULL) {
			cmd_error("%s", err);
			return -1;
		}
		if (PQntuples(r) == 1) {
			if (o->path && strcmp(o->path, PQgetvalue(r, 0, 0)) != 0) {
				cmd_error(
				    "'%s' is in folder '%s' with path %s already, not %s\nhint: "
				    "remove and add the folder to change the path; nothing was "
				    "changed",
				    o->name, o->folder, PQgetvalue(r, 0, 0), o->path);
				PQclear(r);
				return -1;
			}
			if (o->path == NULL)
				o->path = o->path_kept = xstrdup(PQgetvalue(r, 0, 0));
		} else if (o->path == NULL) {
			cmd_error(
			    "--folder=%s: give the folder's path on the client with path=/...",
			    o->folder);
			PQclear(r);
			return -2;
		}
		PQclear(r);
		if (o->ssh == NULL && !(o->cfg->node && strcmp(o->cfg->node, o->name) == 0)) {
			cmd_error("--folder=%s: the client's folder is reached over SSH: give "
				  "ssh=USER@HOST:PORT (with the client kit: ssh=root@ADDRESS:2222)",
			    o->folder);
			return -2;
		}
	}
	return 0;
}

CMD_HANDLER(cmd_onboard)
{
	char err[ERRLEN];
	struct coord_info ci;
	struct onb o;
	int rc = 1, s;

	memset(&o, 0, sizeof(o));
	o.ctx = ctx;
	o.cfg = ctx->cfg;
	o.meta = ctx->meta;
	o.name = args->words[0];
	o.tty = isatty(STDERR_FILENO);
	s = onb_setup(&o, args);
	if (s < 0) {
		rc = s == -2 ? 2 : 1;
		goto out;
	}
	printf("onboarding '%s' from '%s'%s\n", o.name, o.primary,
	    o.dry ? " (dry run: nothing is changed)" : "");
	fflush(stdout);
	if (step_reach(&o) < 0 || step_hostkey(&o) < 0 || load_herds(&o) < 0 ||
	    step_tables(&o) < 0 || step_node(&o) < 0 || step_register(&o) < 0 ||
	    step_syncs(&o) < 0 || step_fill(&o) < 0 || step_activate(&o) < 0 ||
	    step_folder(&o) < 0 || step_reload(&o) < 0)
		goto out;
	if (o.dry) {
		printf("dry run: %d step(s) to do; nothing was changed\n", o.todo);
		rc = 0;
		goto out;
	}
	printf("\n'%s' is onboarded from '%s'%s%s (this run: %d table(s) created, %d registered, "
	       "%lld row(s) copied)\n",
	    o.name, o.primary, o.folder ? " with folder " : "", o.folder ? o.folder : "", o.created,
	    o.registered, o.copied);
	if (coordinator_find(o.cfg, o.meta, &ci, err, sizeof(err)) < 0 || !ci.running)
		printf("next step: 'repctl start' (the coordinator is not running), then 'repctl "
		       "status'\n");
	else
		printf("next step: 'repctl status' shows the client's syncs%s\n",
		    o.folder ? " and folder" : "");
	rc = 0;
out:
	onb_free(&o);
	return rc;
}

/* ---- offboard ---- */

CMD_HANDLER(cmd_offboard)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *p[1] = { name };
	struct node n;
	struct buf removed = BUF_INIT, left = BUF_INIT, folders = BUF_INIT;
	PGresult *r = NULL;
	struct args a;
	struct coord_info ci;
	int found, i, rc = 1, rr;

	memset(&a, 0, sizeof(a));
	found = meta_node_get(ctx->meta, name, &n, err, sizeof(err));
	node_clear(&n);
	if (found != 0) {
		cmd_lookup_error("node", name, found < 0 ? err : NULL);
		return 1;
	}
	if (ctx->cfg->node && strcmp(ctx->cfg->node, name) == 0) {
		cmd_error(
		    "'%s' is the coordinator's own node (node= in the configuration); offboard "
		    "a client instead",
		    name);
		return 1;
	}
	if (db_begin(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	/*
	 * Per sync with the node: what is left without it.  A pair (or any
	 * sync left with fewer than two nodes, or no source) goes; a
	 * multi-source sync only loses the node and its edges' positions.
	 */
	r = db_query(ctx->meta,
	    "SELECT s.name, (SELECT count(*) FROM repctl.sync_node o WHERE o.sync = s.name "
	    "  AND o.node <> $1) AS others, "
	    "(SELECT count(*) FROM repctl.sync_node o WHERE o.sync = s.name AND o.node <> $1 "
	    "  AND o.role = 'source') AS sources "
	    "FROM repctl.sync s WHERE EXISTS (SELECT 1 FROM repctl.sync_node n "
	    "  WHERE n.sync = s.name AND n.node = $1) ORDER BY s.name",
	    1, p, err, sizeof(err));
	if (r == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r); i++) {
		const char *sp[2] = { PQgetvalue(r, i, 0), name };
		int whole = atoi(PQgetvalue(r, i, 1)) < 2 || atoi(PQgetvalue(r, i, 2)) == 0;

		if (whole) {
			if (db_execp(ctx->meta, "DELETE FROM repctl.sync WHERE name = $1", 1, sp,
				err, sizeof(err)) < 0)
				goto fail;
			buf_printf(&removed, "%s%s", removed.len ? ", " : "", sp[0]);
		} else {
			if (db_execp(ctx->meta,
				"DELETE FROM repctl.sync_node WHERE sync = $1 AND node = $2", 2, sp,
				err, sizeof(err)) < 0 ||
			    db_execp(ctx->meta,
				"DELETE FROM repctl.position WHERE sync = $1 AND (source = $2 OR "
				"target = $2)",
				2, sp, err, sizeof(err)) < 0)
				goto fail;
			buf_printf(&left, "%s%s", left.len ? ", " : "", sp[0]);
		}
	}
	PQclear(r);
	r = db_query(ctx->meta,
	    "DELETE FROM repctl.folder_node WHERE node = $1 RETURNING folder || ':' || path", 1, p,
	    err, sizeof(err));
	if (r == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r); i++)
		buf_printf(&folders, "%s%s", folders.len ? ", " : "", PQgetvalue(r, i, 0));
	PQclear(r);
	r = NULL;
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	printf("offboarding '%s':\n", name);
	printf("  syncs removed: %s\n", removed.len ? removed.data : "none");
	if (left.len)
		printf("  left the multi-source sync(s): %s\n", left.data);
	printf("  folder memberships removed: %s (the files stay on the client)\n",
	    folders.len ? folders.data : "none");
	fflush(stdout);
	/* the workers of the removed syncs stop before the capture goes */
	rr = reload_coordinator(ctx->cfg, ctx->meta, &ci);
	if (rr == 1)
		printf("  coordinator (%s) reloaded\n", ci.where);
	fflush(stdout);
	fa_word(&a, name);
	rc = cmd_remove_database(ctx, &a);
	cli_args_free(&a);
	if (rc != 0) {
		cmd_error("offboard %s: the syncs and folder memberships are removed, the node is "
			  "not\nhint: fix the above and run 'repctl offboard %s' again",
		    name, name);
		goto out;
	}
	printf("'%s' is offboarded: its data stays in its database, without repctl's capture "
	       "(schema repctl and triggers removed)\n",
	    name);
	rc = 0;
	goto out;
fail:
	PQclear(r);
	db_rollback(ctx->meta);
	cmd_error("offboard %s: %s\nnothing was changed", name, err);
	rc = 1;
out:
	buf_free(&removed);
	buf_free(&left);
	buf_free(&folders);
	return rc;
}

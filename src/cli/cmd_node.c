/*
 * cmd_node.c - add, update, remove and list databases (nodes).
 *
 * A node is recorded only after repctl has connected to it with the given
 * settings and checked the server version, so a typo is caught at once and
 * not at the first sync.  The conninfo stored in the metadata never holds a
 * password: pass= (or Bucardo's password=) is written to the secrets file,
 * a pgpass-format file that libpq reads on every connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "capture.h"
#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "fs_ssh.h"
#include "meta.h"
#include "output.h"
#include "parse.h"
#include "secrets.h"
#include "xmalloc.h"

/* Connection keys a user may give, in the order they are written out. */
static const char *const conn_keys[] = {
	"service",
	"host",
	"port",
	"dbname",
	"user",
	"sslmode",
	"sslrootcert",
	"sslcert",
	"sslkey",
	NULL,
};

#define MIN_SERVER_VERSION 130000

/* ssh= must parse as the SSH layer reads it; agent= must be a plain path or command name. */
static int
check_ssh_agent(struct args *args)
{
	const char *ssh = args_get(args, "ssh"), *agent = args_get(args, "agent");

	if (ssh && *ssh) {
		struct ssh_target t;
		char err[256];

		if (ssh_target_parse(ssh, &t, err, sizeof(err)) < 0) {
			cmd_error("ssh=%s: %s\nwrite ssh=USER@HOST:PORT (user and port optional)\n"
				  "nothing was changed",
			    ssh, err);
			return -1;
		}
		ssh_target_clear(&t);
	}
	if (agent && *agent && strpbrk(agent, " \t'\";&|$`<>")) {
		cmd_error("agent=%s: give the path of repctl on the node (no spaces or shell "
			  "characters)\nnothing was changed",
		    agent);
		return -1;
	}
	return 0;
}

/*
 * Build the node's conninfo from a base (an existing node's, or conn=) and
 * the keys given.  *password gets pass= or a password found in conn=
 * (NULL when none).  Everything returned is malloc'ed.
 */
static int
build_conninfo(
    const char *base, struct args *args, char **conninfo, char **password, char *err, size_t errlen)
{
	PQconninfoOption *opts = NULL, *o;
	char *msg = NULL;
	struct buf b = BUF_INIT;
	const char *conn = args_get(args, "conn");
	const char *pass = args_get(args, "pass");
	int i;

	*conninfo = *password = NULL;
	if (conn && base) {
		/* update: conn= replaces the whole connection string */
		base = NULL;
	}
	opts = PQconninfoParse(conn ? conn : (base ? base : ""), &msg);
	if (opts == NULL) {
		db_set_error(err, errlen, "invalid connection string in conn=", msg);
		PQfreemem(msg);
		return -1;
	}
	for (o = opts; o->keyword; o++) {
		const char *given = NULL;

		for (i = 0; conn_keys[i]; i++)
			if (strcmp(conn_keys[i], o->keyword) == 0)
				given = args_get(args, o->keyword);
		if (strcmp(o->keyword, "password") == 0) {
			if (pass)
				*password = xstrdup(pass);
			else if (o->val && *o->val)
				*password = xstrdup(o->val);
			continue;
		}
		if (given) {
			if (*given)
				db_conninfo_append(&b, o->keyword, given);
			continue;
		}
		if (o->val && *o->val)
			db_conninfo_append(&b, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	if (b.len == 0 ||
	    (strstr(b.data, "dbname=") == NULL && strstr(b.data, "service=") == NULL)) {
		snprintf(err, errlen,
		    "no database given; add dbname=DATABASE (and host=, port=, user=) or "
		    "service=NAME");
		buf_free(&b);
		free(*password);
		*password = NULL;
		return -1;
	}
	*conninfo = buf_steal(&b);
	if (db_conninfo_check(*conninfo, err, errlen) < 0) {
		free(*conninfo);
		free(*password);
		*conninfo = *password = NULL;
		return -1;
	}
	return 0;
}

/*
 * Connect with the new settings and check the server; returns its version
 * or -1.  key (when not NULL) gets the coordinates libpq really used, under
 * which a password is stored (a service= resolves to its host and port).
 */
static int
check_node(const struct config *cfg, const char *name, const char *conninfo, const char *password,
    struct secret_key *key)
{
	char err[ERRLEN];
	PGconn *c = db_connect(conninfo, "repctl", cfg->secrets_file, password,
	    cfg->connect_timeout, err, sizeof(err));
	int v;

	if (c == NULL) {
		const char *hint = db_connect_hint(err);

		cmd_error("cannot connect to node '%s' (%s): %s%s%s\nnothing was changed", name,
		    conninfo, err, hint ? "\nhint: " : "", hint ? hint : "");
		return -1;
	}
	v = PQserverVersion(c);
	if (key)
		secret_key_from_conn(c, key);
	db_close(c);
	if (v < MIN_SERVER_VERSION) {
		cmd_error("node '%s' runs PostgreSQL %d; repctl needs 13 or later\n"
			  "nothing was changed",
		    name, v / 10000);
		return -1;
	}
	return v;
}

static int
store_password(const struct config *cfg, const struct secret_key *k, const char *password,
    char *err, size_t errlen)
{
	return secrets_put(cfg->secrets_file, k, password, err, errlen);
}

CMD_HANDLER(cmd_add_database)
{
	char err[ERRLEN], vbuf[16];
	const char *name = args->words[0];
	char *conninfo = NULL, *password = NULL;
	struct node existing;
	struct secret_key key;
	int v, rc = 1, found;

	memset(&key, 0, sizeof(key));
	if (!parse_valid_name(name)) {
		cmd_error("'%s' is not a valid node name: use letters, digits, '_', '.' or '-', "
			  "starting with a letter (at most 63)",
		    name);
		return 1;
	}
	found = meta_node_get(ctx->meta, name, &existing, err, sizeof(err));
	node_clear(&existing);
	if (found < 0) {
		cmd_error("%s", err);
		return 1;
	}
	if (found == 0) {
		cmd_error("node '%s' already exists\nhint: use 'repctl update database %s "
			  "key=value...' to change it, or pick another name",
		    name, name);
		return 1;
	}
	if (check_ssh_agent(args) < 0)
		return 1;
	if (build_conninfo(NULL, args, &conninfo, &password, err, sizeof(err)) < 0) {
		cmd_error("add database %s: %s\nnothing was changed", name, err);
		return 1;
	}
	v = check_node(ctx->cfg, name, conninfo, password, &key);
	if (v < 0)
		goto out;
	snprintf(vbuf, sizeof(vbuf), "%d", v);
	{
		const char *params[6] = { name, conninfo, password ? "true" : "false", vbuf,
			args_get(args, "ssh"), args_get(args, "agent") };

		if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
		    db_execp(ctx->meta,
			"INSERT INTO repctl.node (name, conninfo, has_secret, server_version, ssh, agent) "
			"VALUES ($1, $2, $3::boolean, $4::int, nullif($5, ''), nullif($6, ''))",
			6, params, err, sizeof(err)) < 0)
			goto fail;
		if (password && store_password(ctx->cfg, &key, password, err, sizeof(err)) < 0)
			goto fail;
		if (db_commit(ctx->meta, err, sizeof(err)) < 0)
			goto fail;
	}
	printf("node '%s' added: %s (PostgreSQL %d.%d)\n", name, conninfo, v / 10000, v % 10000);
	if (password)
		printf("password stored in the secrets file %s (mode 0600), not in the metadata\n",
		    ctx->cfg->secrets_file);
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("add database %s: %s\nnothing was changed", name, err);
out:
	secret_key_clear(&key);
	free(conninfo);
	free(password);
	return rc;
}

CMD_HANDLER(cmd_update_database)
{
	char err[ERRLEN], vbuf[16];
	const char *name = args->words[0];
	const char *status = args_get(args, "status");
	char *conninfo = NULL, *password = NULL;
	struct node n;
	struct secret_key key;
	int found, v = 0, rc = 1, i, conn_change = 0;

	memset(&key, 0, sizeof(key));
	if (args->nopts == 0) {
		cmd_error("update database %s: nothing to change; give key=value pairs, e.g. "
			  "host=10.8.0.5 or status=inactive",
		    name);
		return 1;
	}
	found = meta_node_get(ctx->meta, name, &n, err, sizeof(err));
	if (found != 0) {
		cmd_lookup_error("node", name, found < 0 ? err : NULL);
		node_clear(&n);
		return 1;
	}
	if (status && strcmp(status, "active") != 0 && strcmp(status, "inactive") != 0) {
		cmd_error("update database %s: status must be active or inactive, not '%s'", name,
		    status);
		goto out;
	}
	if (check_ssh_agent(args) < 0)
		goto out;
	for (i = 0; i < args->nopts; i++)
		if (strcmp(args->opts[i].key, "status") != 0 &&
		    strcmp(args->opts[i].key, "ssh") != 0 &&
		    strcmp(args->opts[i].key, "agent") != 0)
			conn_change = 1;
	if (conn_change) {
		if (build_conninfo(n.conninfo, args, &conninfo, &password, err, sizeof(err)) < 0) {
			cmd_error("update database %s: %s\nnothing was changed", name, err);
			goto out;
		}
		v = check_node(ctx->cfg, name, conninfo, password, &key);
		if (v < 0)
			goto out;
	}
	snprintf(vbuf, sizeof(vbuf), "%d", v);
	{
		const char *ssh = args_get(args, "ssh"), *agent = args_get(args, "agent");
		const char *params[9] = { name, conninfo, password ? "true" : NULL, vbuf, status,
			ssh, ssh ? "t" : "f", agent, agent ? "t" : "f" };

		if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
		    db_execp(ctx->meta,
			"UPDATE repctl.node SET conninfo = coalesce($2, conninfo), "
			"has_secret = coalesce($3::boolean, has_secret), "
			"server_version = CASE WHEN $4::int > 0 THEN $4::int ELSE server_version END, "
			"status = coalesce($5, status), "
			"ssh = CASE WHEN $7::bool THEN nullif($6, '') ELSE ssh END, "
			"agent = CASE WHEN $9::bool THEN nullif($8, '') ELSE agent END, "
			"updated_at = now() WHERE name = $1",
			9, params, err, sizeof(err)) < 0)
			goto fail;
		if (password && store_password(ctx->cfg, &key, password, err, sizeof(err)) < 0)
			goto fail;
		if (db_commit(ctx->meta, err, sizeof(err)) < 0)
			goto fail;
	}
	printf("node '%s' updated%s%s\n", name, conninfo ? ": " : "", conninfo ? conninfo : "");
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("update database %s: %s\nnothing was changed", name, err);
out:
	secret_key_clear(&key);
	node_clear(&n);
	free(conninfo);
	free(password);
	return rc;
}

CMD_HANDLER(cmd_remove_database)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *params[1] = { name };
	struct node n;
	PGresult *r;
	int found, rc = 1;

	found = meta_node_get(ctx->meta, name, &n, err, sizeof(err));
	if (found != 0) {
		cmd_lookup_error("node", name, found < 0 ? err : NULL);
		node_clear(&n);
		return 1;
	}
	r = db_query(ctx->meta,
	    "SELECT string_agg(sync, ', ' ORDER BY sync) FROM repctl.sync_node WHERE node = $1", 1,
	    params, err, sizeof(err));
	if (r == NULL)
		goto fail;
	if (!PQgetisnull(r, 0, 0)) {
		cmd_error("node '%s' is used by sync(s) %s\nhint: remove those syncs first "
			  "('repctl remove sync NAME'); nothing was changed",
		    name, PQgetvalue(r, 0, 0));
		PQclear(r);
		goto out;
	}
	PQclear(r);
	{
		/* take capture off the node; a node that cannot be reached keeps it */
		PGconn *c = node_connect(ctx->cfg, &n, err, sizeof(err));

		if (c == NULL)
			log_warnx(
			    "%s\nthe capture triggers and schema repctl stay on that "
			    "node; remove them there with: DROP SCHEMA repctl CASCADE (and the "
			    "repctl_capture_* triggers)",
			    err);
		else if (capture_remove_all(c, err, sizeof(err)) < 0) {
			db_close(c);
			cmd_error(
			    "removing capture from node '%s': %s\nnothing was changed", name, err);
			goto out;
		}
		db_close(c);
	}
	if (db_begin(ctx->meta, err, sizeof(err)) < 0 ||
	    db_execp(ctx->meta, "DELETE FROM repctl.node WHERE name = $1", 1, params, err,
		sizeof(err)) < 0)
		goto fail;
	if (n.has_secret) {
		/* drop the password unless another node connects the same way */
		int shared = meta_exists(ctx->meta,
		    "SELECT 1 FROM repctl.node WHERE conninfo = $1 AND has_secret", n.conninfo, err,
		    sizeof(err));

		if (shared < 0)
			goto fail;
		if (!shared) {
			struct secret_key k;
			int drc;

			secret_key_from_conninfo(n.conninfo, &k);
			drc = secrets_drop(ctx->cfg->secrets_file, &k, err, sizeof(err));
			secret_key_clear(&k);
			if (drc < 0)
				goto fail;
		}
	}
	if (db_commit(ctx->meta, err, sizeof(err)) < 0)
		goto fail;
	printf("node '%s' removed\n", name);
	rc = 0;
	goto out;
fail:
	db_rollback(ctx->meta);
	cmd_error("remove database %s: %s\nnothing was changed", name, err);
out:
	node_clear(&n);
	return rc;
}

CMD_HANDLER(cmd_list_databases)
{
	(void)args;
	return output_query(ctx->meta,
		   "SELECT n.name, n.status, n.conninfo, "
		   "CASE WHEN n.has_secret THEN 'secrets file' ELSE 'libpq default' END AS password, "
		   "CASE WHEN n.server_version > 0 THEN (n.server_version / 10000)::text || '.' || "
		   "(n.server_version % 10000)::text END AS version, "
		   "(SELECT count(*) FROM repctl.sync_node s WHERE s.node = n.name) AS syncs, "
		   "n.ssh FROM repctl.node n ORDER BY n.name",
		   0, NULL, ctx->json) < 0
	    ? 1
	    : 0;
}

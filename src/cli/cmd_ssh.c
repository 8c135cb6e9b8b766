/*
 * cmd_ssh.c - keygen and trust: the coordinator's SSH key and the nodes'
 * host keys, the two things the file sync needs before it can reach a
 * node's `repctl agent` (fs_ssh.c does the SSH work).
 *
 * trust never records a key the user has not seen: the fingerprint is
 * printed, and the key is recorded only when it matches --fingerprint or
 * the user confirms on a terminal.  The write connects again and checks the
 * key against that same fingerprint, so a key swapped between the look and
 * the write is refused.  A changed key is refused unless --replace is given
 * (and then it still has to be confirmed the same way).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "fs_ssh.h"
#include "meta.h"

/* What we recommend in front of the key in a node's authorized_keys. */
#define AUTHKEYS_RESTRICT "restrict,command=\"repctl agent\" "

#define HOSTKEY_HINT "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"

CMD_HANDLER(cmd_keygen)
{
	char err[ERRLEN];
	const char *path = ctx->cfg->ssh_identity;
	char *line = NULL;
	int made, rc = 1;

	(void)args;
	ssh_key_owner(ctx->cfg->node);
	made = ssh_keygen(path, err, sizeof(err));
	if (made < 0) {
		cmd_error("%s", err);
		goto out;
	}
	line = ssh_pubkey_line(path, err, sizeof(err));
	if (line == NULL) {
		cmd_error("%s", err);
		goto out;
	}
	printf("%s %s (public key: %s.pub)\n", made ? "created" : "exists", path, path);
	printf("\npublic key line, for the authorized_keys file of each node's ssh= user:\n%s\n",
	    line);
	printf("\nrecommended: restrict it to the file sync agent (use the agent's full path\n"
	       "if repctl is not on the node's PATH):\n" AUTHKEYS_RESTRICT "%s\n",
	    line);
	rc = 0;
out:
	free(line);
	return rc;
}

CMD_HANDLER(cmd_trust)
{
	char err[ERRLEN];
	const char *name = args->words[0];
	const char *given = args_get(args, "fingerprint");
	const char *kh = ctx->cfg->ssh_known_hosts;
	int replace = args_has(args, "replace");
	struct node n;
	struct ssh_target t;
	char *fp = NULL, *recorded = NULL;
	int found, state = 1, rc = 1;

	memset(&n, 0, sizeof(n));
	memset(&t, 0, sizeof(t));
	if (given && *given == '\0') {
		cmd_error("--fingerprint is empty; give the node's host key fingerprint "
			  "(--fingerprint=SHA256:...)\nhint: on the node: " HOSTKEY_HINT);
		return 2;
	}
	found = meta_node_get(ctx->meta, name, &n, err, sizeof(err));
	if (found < 0) {
		cmd_error("%s", err);
		goto out;
	}
	if (found == 1) {
		cmd_lookup_error("node", name, NULL);
		goto out;
	}
	if (n.ssh == NULL || *n.ssh == '\0') {
		cmd_error("node '%s' has no ssh= setting, so there is no host to trust\n"
			  "hint: run 'repctl update database %s ssh=user@host:port'",
		    name, name);
		goto out;
	}
	if (ssh_target_parse(n.ssh, &t, err, sizeof(err)) < 0) {
		cmd_error("node '%s': %s\nhint: fix it with 'repctl update database %s "
			  "ssh=user@host:port'",
		    name, err, name);
		goto out;
	}
	if (ssh_probe_hostkey(&t, kh, ctx->cfg->ssh_timeout, &fp, &state, err, sizeof(err)) < 0) {
		cmd_error("node '%s': %s", name, err);
		goto out;
	}
	printf("node '%s' (%s) presents host key %s\n", name, n.ssh, fp);
	fflush(stdout);
	if (given && !ssh_fingerprint_match(given, fp)) {
		cmd_error("node '%s' presents host key %s, not %s as given with --fingerprint; "
			  "nothing was written\n"
			  "hint: check the fingerprint on the node (" HOSTKEY_HINT "); a mismatch "
			  "can mean a man-in-the-middle",
		    name, fp, given);
		goto out;
	}
	if (state == 0) {
		printf("already known in %s; nothing to do\n", kh);
		rc = 0;
		goto out;
	}
	if (state == 2 && !replace) {
		cmd_error("HOST KEY CHANGED for node '%s' (%s): it now presents %s, not the key "
			  "recorded in %s\n"
			  "this is a possible man-in-the-middle attack, or the node's host key was "
			  "regenerated; nothing was written\n"
			  "hint: check the key on the node (" HOSTKEY_HINT ") and run "
			  "'repctl trust %s --replace' once you have checked it",
		    name, n.ssh, fp, kh, name);
		goto out;
	}
	if (given == NULL) {
		if (!isatty(STDIN_FILENO)) {
			cmd_error(
			    "the host key of node '%s' %s: %s; nothing was written\n"
			    "hint: check it on the node (" HOSTKEY_HINT ") and run "
			    "'repctl trust %s%s --fingerprint=%s' (stdin is not a terminal, so "
			    "it cannot be confirmed here)",
			    name, state == 2 ? "has changed" : "is not known", fp, name,
			    replace ? " --replace" : "", fp);
			goto out;
		}
		if (!cmd_confirm(state == 2 ? "replace the recorded key with this one? [y/N] "
					    : "accept? [y/N] ")) {
			cmd_error("not accepted; nothing was written");
			goto out;
		}
	}
	if (ssh_trust_host(
		&t, kh, ctx->cfg->ssh_timeout, fp, replace, &recorded, err, sizeof(err)) < 0) {
		cmd_error("node '%s': %s", name, err);
		goto out;
	}
	printf("%s host key %s of node '%s' in %s\n",
	    state == 2 ? "replaced: recorded" : "recorded", recorded, name, kh);
	rc = 0;
out:
	free(fp);
	free(recorded);
	ssh_target_clear(&t);
	node_clear(&n);
	return rc;
}

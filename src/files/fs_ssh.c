/*
 * fs_ssh.c - the SSH transport of the file sync (libssh).
 *
 * The coordinator reaches a node's `repctl agent` over an SSH exec channel.
 * A connection goes: TCP connect and key exchange (bounded by the caller's
 * timeout), host key check against repctl's own known-hosts file, public-key
 * authentication with repctl's own key, then one exec channel whose
 * stdin/stdout carry the file sync protocol.  `repctl keygen` and
 * `repctl trust` (cmd_ssh.c) prepare the two files this needs.
 *
 * Decisions:
 *  - Nothing of the user's OpenSSH setup is used: no ~/.ssh/config (it
 *    could switch StrictHostKeyChecking off or point the host elsewhere),
 *    no /etc/ssh/ssh_known_hosts (the "global" file is set to ours too), no
 *    agent, no default keys, never a password.  An unknown or changed host
 *    key is refused here, in the code, whatever libssh's options say.
 *  - Host keys are only added by ssh_trust_host(), after the user has seen
 *    the fingerprint; a connection never learns a key by itself.  The
 *    written line is the one libssh exports ("[host]:port type base64" when
 *    the port is not 22), which libssh and OpenSSH both read, and the write
 *    is checked by asking libssh to verify the key again.
 *  - Known-hosts and key files are written to a temporary file and then
 *    renamed (the private key is hard-linked, so an existing key is never
 *    overwritten), with mode 0600 in a 0700 directory.
 *  - Channel I/O blocks.  A read waits in one-second slices so that the
 *    remote stderr can be drained meanwhile (libssh shares one window between
 *    stdout and stderr; an undrained stderr could stall the channel); its
 *    last 4 KiB are kept for error messages ("repctl: command not found").
 *    TCP keepalive is switched on so that a node that vanishes is noticed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "buf.h"
#include "errors.h"
#include "fsutil.h"
#include "fs_ssh.h"
#include "secrets.h"
#include "xmalloc.h"

#define STDERR_KEEP 4096   /* bytes of remote stderr kept for messages */
#define READ_SLICE_MS 1000 /* a blocking read wakes up this often to drain stderr */
#define WRITE_CHUNK 65536
#define DEFAULT_TIMEOUT 15

struct ssh_conn {
	ssh_session session;
	ssh_channel channel;
	char *label;                 /* "user@host:port", for messages */
	int timeout;                 /* seconds, for the wait in ssh_conn_close */
	int idle;                    /* seconds a read may see no byte; 0: no limit */
	int hung;                    /* the peer stayed silent past idle: given up */
	long session_timeout;        /* SSH_OPTIONS_TIMEOUT of the session, seconds */
	unsigned long long sent;     /* bytes written to the channel */
	unsigned long long received; /* bytes read from it (stdout only) */
	char errtail[STDERR_KEEP];   /* last bytes of the remote stderr, NUL-terminated */
	size_t errlen;
};

/* ---- targets ---- */

/* A user or host name: not empty, no blanks or control characters, no '@' or '/', no leading '-'. */
static int
valid_name(const char *s)
{
	if (*s == '\0' || *s == '-')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '@' || *s == '/')
			return 0;
	return 1;
}

static int
parse_port(const char *s, int *port)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (*s - '0');
	}
	if (v < 1 || v > 65535)
		return 0;
	*port = (int)v;
	return 1;
}

int
ssh_target_parse(const char *spec, struct ssh_target *t, char *err, size_t errlen)
{
	char *copy = xstrdup(spec ? spec : ""), *host = copy, *port = NULL, *at;
	int rc = -1;

	memset(t, 0, sizeof(*t));
	t->port = 22;
	at = strchr(copy, '@');
	if (at) {
		*at = '\0';
		if (!valid_name(copy)) {
			set_err(err, errlen,
			    "invalid ssh target '%s': bad user name before '@'; "
			    "expected user@host[:port]",
			    spec);
			goto out;
		}
		t->user = xstrdup(copy);
		host = at + 1;
	}
	if (*host == '[') {
		/* [ipv6]:port */
		char *end = strchr(host, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
			set_err(err, errlen,
			    "invalid ssh target '%s': unbalanced '['; "
			    "expected user@host[:port] or user@[ipv6]:port",
			    spec);
			goto out;
		}
		*end = '\0';
		if (end[1] == ':')
			port = end + 2;
		host++;
	} else {
		char *colon = strchr(host, ':');

		/* one colon: host:port; several: a bare IPv6 address */
		if (colon && strchr(colon + 1, ':') == NULL) {
			*colon = '\0';
			port = colon + 1;
		}
	}
	if (!valid_name(host)) {
		set_err(err, errlen, "invalid ssh target '%s': %s; expected user@host[:port]", spec,
		    *host ? "bad host name" : "no host");
		goto out;
	}
	if (port && !parse_port(port, &t->port)) {
		set_err(err, errlen,
		    "invalid ssh target '%s': port '%s' is not a number from 1 to "
		    "65535",
		    spec, port);
		goto out;
	}
	t->host = xstrdup(host);
	rc = 0;
out:
	if (rc < 0)
		ssh_target_clear(t);
	free(copy);
	return rc;
}

void
ssh_target_clear(struct ssh_target *t)
{
	if (t == NULL)
		return;
	free(t->user);
	free(t->host);
	memset(t, 0, sizeof(*t));
}

/* "user@host:port" for messages; free(). */
static char *
target_label(const struct ssh_target *t)
{
	int v6 = strchr(t->host, ':') != NULL;

	return xasprintf("%s%s%s%s%s:%d", t->user ? t->user : "", t->user ? "@" : "", v6 ? "[" : "",
	    t->host, v6 ? "]" : "", t->port);
}

/* ---- sessions and host keys ---- */

/* Best effort: notice a node that disappeared within a few timeouts. */
static void
session_keepalive(ssh_session s, int secs)
{
	int fd = ssh_get_fd(s), on = 1, cnt = 3;

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
#ifdef TCP_KEEPIDLE
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof(secs));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
#else
	(void)cnt;
#endif
}

static void
session_end(ssh_session s)
{
	if (s == NULL)
		return;
	ssh_disconnect(s);
	ssh_free(s);
}

/*
 * A session connected to t, key exchange done, not authenticated, whose
 * host keys are checked against known_hosts only.  NULL with err.  The
 * caller ends it with session_end().
 */
static ssh_session
session_connect(
    const struct ssh_target *t, const char *known_hosts, int timeout, char *err, size_t errlen)
{
	ssh_session s = ssh_new(), ret = NULL;
	bool process_config = false;
	int strict = 1, port = t->port, nodelay = 1;
	long secs = timeout > 0 ? timeout : DEFAULT_TIMEOUT;
	char *label = target_label(t);

	if (s == NULL) {
		set_err(err, errlen, "cannot create an SSH session for %s", label);
		goto out;
	}
	if (ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &process_config) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_HOST, t->host) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_PORT, &port) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_USER, t->user) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, known_hosts) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, known_hosts) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict) < 0 ||
	    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs) < 0 ||
	    /* no Nagle: the end of each file (a small message after its data) would
	     * otherwise wait for the peer's delayed ACK, about 40 ms per file */
	    ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay) < 0) {
		set_err(err, errlen, "cannot set up the SSH session for %s: %s", label,
		    ssh_get_error(s));
		goto out;
	}
	if (ssh_connect(s) != SSH_OK) {
		set_err(err, errlen, "cannot connect to %s over SSH: %s", label, ssh_get_error(s));
		goto out;
	}
	session_keepalive(s, (int)secs);
	ret = s;
	s = NULL;
out:
	if (s)
		ssh_free(s);
	free(label);
	return ret;
}

/*
 * The connected server's host key fingerprint (malloc'ed) and its state in
 * the known-hosts file: 0 known, 1 unknown, 2 changed (or a key of another
 * type is recorded).  0 or -1 with err.
 */
static int
hostkey_check(ssh_session s, const char *label, const char *known_hosts, char **fingerprint,
    int *state, char *err, size_t errlen)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;
	int rc = -1;

	*fingerprint = NULL;
	if (ssh_get_server_publickey(s, &key) != SSH_OK) {
		set_err(err, errlen, "%s sent no host key: %s", label, ssh_get_error(s));
		goto out;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0 ||
	    (fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen)) == NULL) {
		set_err(err, errlen, "cannot compute the host key fingerprint of %s", label);
		goto out;
	}
	switch (ssh_session_is_known_server(s)) {
	case SSH_KNOWN_HOSTS_OK: *state = 0; break;
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND: *state = 1; break;
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER: *state = 2; break;
	default:
		set_err(err, errlen, "cannot check the host key of %s against \"%s\": %s", label,
		    known_hosts, ssh_get_error(s));
		goto out;
	}
	*fingerprint = xstrdup(fp);
	rc = 0;
out:
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return rc;
}

int
ssh_probe_hostkey(const struct ssh_target *t, const char *known_hosts, int timeout,
    char **fingerprint, int *state, char *err, size_t errlen)
{
	ssh_session s;
	char *label = target_label(t);
	int rc = -1;

	*fingerprint = NULL;
	s = session_connect(t, known_hosts, timeout, err, errlen);
	if (s == NULL)
		goto out;
	rc = hostkey_check(s, label, known_hosts, fingerprint, state, err, errlen);
out:
	session_end(s);
	free(label);
	return rc;
}

int
ssh_fingerprint_match(const char *given, const char *fp)
{
	size_t gl, fl;

	if (given == NULL || fp == NULL)
		return 0;
	if (strncasecmp(given, "SHA256:", 7) == 0)
		given += 7;
	if (strncmp(fp, "SHA256:", 7) == 0)
		fp += 7;
	gl = strlen(given);
	while (gl > 0 && given[gl - 1] == '=')
		gl--;
	fl = strlen(fp);
	while (fl > 0 && fp[fl - 1] == '=')
		fl--;
	return gl > 0 && gl == fl && memcmp(given, fp, gl) == 0;
}

/* ---- files ---- */

/* The directory part of path ("." when none); free(). */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* 1 when the known-hosts line names exactly host (a plain, unhashed name). */
static int
line_names_host(const char *line, const char *host)
{
	const char *p = line;
	size_t hl = strlen(host);

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '#' || *p == '@' || *p == '\n' || *p == '\0')
		return 0;
	while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
		size_t n = strcspn(p, ", \t\n");

		if (n == hl && strncasecmp(p, host, hl) == 0)
			return 1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/*
 * Add entry (one known-hosts line, '\n'-terminated) to the file at path;
 * with replace, drop the lines naming the same host first.  The directory
 * is created 0700, the file written 0600, under an flock on the directory
 * so that two `repctl trust` runs do not lose each other's line.
 */
static int
known_hosts_add(const char *path, const char *entry, int replace, char *err, size_t errlen)
{
	char *dir = dir_of(path), *host = xstrndup(entry, strcspn(entry, " \t"));
	char *line = NULL;
	size_t cap = 0;
	struct buf out = BUF_INIT;
	FILE *fp = NULL;
	int dfd = -1, rc = -1;

	if (mkdir_p(dir, 0700) < 0) {
		set_err(err, errlen, "cannot create directory \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		set_err(err, errlen, "cannot lock directory \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	fp = fopen(path, "re");
	if (fp) {
		ssize_t n;

		while ((n = getline(&line, &cap, fp)) > 0) {
			if (replace && line_names_host(line, host))
				continue;
			buf_add(&out, line, (size_t)n);
			if (line[n - 1] != '\n')
				buf_putc(&out, '\n');
		}
		if (ferror(fp)) {
			set_err(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
			goto out;
		}
	} else if (errno != ENOENT) {
		set_err(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
		goto out;
	}
	buf_puts(&out, entry);
	if (atomic_write(path, out.data, out.len, 0600, err, errlen) < 0)
		goto out;
	(void)fsync(dfd);
	rc = 0;
out:
	if (fp)
		fclose(fp);
	if (dfd >= 0)
		close(dfd); /* releases the lock */
	free(line);
	buf_free(&out);
	free(host);
	free(dir);
	return rc;
}

int
ssh_trust_host(const struct ssh_target *t, const char *known_hosts, int timeout,
    const char *expect_fp, int replace, char **fingerprint, char *err, size_t errlen)
{
	ssh_session s;
	char *label = target_label(t), *fp = NULL, *entry = NULL;
	int state = 1, rc = -1;

	if (fingerprint)
		*fingerprint = NULL;
	s = session_connect(t, known_hosts, timeout, err, errlen);
	if (s == NULL)
		goto out;
	if (hostkey_check(s, label, known_hosts, &fp, &state, err, errlen) < 0)
		goto out;
	if (expect_fp && !ssh_fingerprint_match(expect_fp, fp)) {
		set_err(err, errlen,
		    "%s presents host key %s, not the expected %s; nothing was "
		    "written",
		    label, fp, expect_fp);
		goto out;
	}
	if (state == 2 && !replace) {
		set_err(err, errlen,
		    "HOST KEY CHANGED for %s: it now presents %s, not the key "
		    "recorded in \"%s\" (possible man-in-the-middle); nothing was written",
		    label, fp, known_hosts);
		goto out;
	}
	if (state != 0) {
		if (ssh_session_export_known_hosts_entry(s, &entry) != SSH_OK) {
			set_err(err, errlen, "cannot format the known-hosts line for %s: %s", label,
			    ssh_get_error(s));
			goto out;
		}
		if (known_hosts_add(known_hosts, entry, state == 2, err, errlen) < 0)
			goto out;
		/* Prove that what we wrote is what libssh will accept. */
		if (ssh_session_is_known_server(s) != SSH_KNOWN_HOSTS_OK) {
			char *host = xstrndup(entry, strcspn(entry, " "));

			set_err(err, errlen,
			    "wrote the host key of %s to \"%s\", but it is still not "
			    "accepted: another line for that host (hashed or a wildcard) holds an "
			    "older key\nhint: remove it with ssh-keygen -R '%s' -f '%s' and run "
			    "trust again",
			    label, known_hosts, host, known_hosts);
			free(host);
			goto out;
		}
	}
	if (fingerprint) {
		*fingerprint = fp;
		fp = NULL;
	}
	rc = 0;
out:
	ssh_string_free_char(entry);
	free(fp);
	session_end(s);
	free(label);
	return rc;
}

/* ---- keys ---- */

/* Refuses to ask for a passphrase: repctl runs unattended (and OpenSSL would prompt on a tty). */
static int
no_passphrase(const char *prompt, char *buf, size_t len, int echo, int verify, void *userdata)
{
	(void)prompt;
	(void)buf;
	(void)len;
	(void)echo;
	(void)verify;
	(void)userdata;
	return -1;
}

/* Load the private key at path into *key (ssh_key_free).  0 or -1 with err. */
static int
load_private_key(const char *path, ssh_key *key, char *err, size_t errlen)
{
	struct stat st;

	*key = NULL;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			set_err(err, errlen,
			    "no SSH key at \"%s\"\nhint: run 'repctl keygen' to "
			    "create it (or set ssh.identity to an existing key)",
			    path);
		else
			set_err(err, errlen, "cannot read the SSH key \"%s\": %s", path,
			    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "the SSH key \"%s\" is not a regular file", path);
		return -1;
	}
	if (st.st_mode & 077) {
		set_err(err, errlen,
		    "the SSH key \"%s\" is accessible by others (mode %04o)\n"
		    "hint: chmod 600 '%s'",
		    path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	if (ssh_pki_import_privkey_file(path, NULL, no_passphrase, NULL, key) != SSH_OK) {
		*key = NULL;
		set_err(err, errlen,
		    "cannot load the SSH key \"%s\": not a private key, or "
		    "protected by a passphrase (repctl needs a key without one)\n"
		    "hint: move it away and run 'repctl keygen'",
		    path);
		return -1;
	}
	return 0;
}

static char key_owner[256]; /* the node's name, for the public key's comment */

void
ssh_key_owner(const char *node)
{
	snprintf(key_owner, sizeof(key_owner), "%s", node ? node : "");
}

/*
 * "ssh-ed25519 AAAA... repctl@NODE" for a private key (the host name when
 * no node name is configured: a container's changes on every recreate);
 * NULL with err.
 */
static char *
pubkey_line_of(ssh_key priv, const char *path, char *err, size_t errlen)
{
	ssh_key pub = NULL;
	char *b64 = NULL, *line = NULL, host[256];

	if (ssh_pki_export_privkey_to_pubkey(priv, &pub) != SSH_OK ||
	    ssh_pki_export_pubkey_base64(pub, &b64) != SSH_OK) {
		set_err(err, errlen, "cannot derive the public key of \"%s\"", path);
		goto out;
	}
	if (key_owner[0])
		snprintf(host, sizeof(host), "%s", key_owner);
	else if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	line = xasprintf("%s %s repctl@%s", ssh_key_type_to_char(ssh_key_type(pub)), b64, host);
out:
	ssh_string_free_char(b64);
	ssh_key_free(pub);
	return line;
}

char *
ssh_pubkey_line(const char *path, char *err, size_t errlen)
{
	ssh_key key = NULL;
	char *line = NULL;

	if (load_private_key(path, &key, err, errlen) < 0)
		goto out;
	line = pubkey_line_of(key, path, err, errlen);
out:
	ssh_key_free(key);
	return line;
}

/* Write path.pub for the private key priv (mode 0644). */
static int
write_pubkey(ssh_key priv, const char *path, char *err, size_t errlen)
{
	char *pubpath = xasprintf("%s.pub", path), *line, *text = NULL;
	int rc = -1;

	line = pubkey_line_of(priv, path, err, errlen);
	if (line == NULL)
		goto out;
	text = xasprintf("%s\n", line);
	rc = atomic_write(pubpath, text, strlen(text), 0644, err, errlen);
out:
	free(text);
	free(line);
	free(pubpath);
	return rc;
}

int
ssh_keygen(const char *path, char *err, size_t errlen)
{
	ssh_key key = NULL;
	char *b64 = NULL, *dir = dir_of(path), *tmp = NULL, *pubpath = xasprintf("%s.pub", path);
	struct stat st;
	int rc = -1;

	if (lstat(path, &st) == 0) {
		/* It exists: make sure the public half does too. */
		if (access(pubpath, F_OK) < 0) {
			if (load_private_key(path, &key, err, errlen) < 0 ||
			    write_pubkey(key, path, err, errlen) < 0)
				goto out;
		}
		rc = 0;
		goto out;
	} else if (errno != ENOENT) {
		set_err(err, errlen, "cannot check \"%s\": %s", path, strerror(errno));
		goto out;
	}
	if (mkdir_p(dir, 0700) < 0) {
		set_err(err, errlen, "cannot create directory \"%s\": %s", dir, strerror(errno));
		goto out;
	}
	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
		set_err(err, errlen, "cannot generate an ed25519 key");
		goto out;
	}
	if (ssh_pki_export_privkey_base64(key, NULL, NULL, NULL, &b64) != SSH_OK) {
		set_err(err, errlen, "cannot encode the new key");
		goto out;
	}
	{
		char *text =
		    xasprintf("%s%s", b64, b64[0] && b64[strlen(b64) - 1] == '\n' ? "" : "\n");

		tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
		(void)unlink(tmp);
		if (file_write_new(tmp, text, strlen(text), 0600) < 0) {
			set_err(err, errlen, "cannot write \"%s\": %s", tmp, strerror(errno));
			free(text);
			goto out;
		}
		free(text);
	}
	/* link, not rename: a key that appeared meanwhile is never overwritten */
	if (link(tmp, path) < 0) {
		int saved = errno;

		unlink(tmp);
		if (saved == EEXIST) {
			rc = 0;
			goto out;
		}
		set_err(err, errlen, "cannot create \"%s\": %s", path, strerror(saved));
		goto out;
	}
	unlink(tmp);
	if (write_pubkey(key, path, err, errlen) < 0)
		goto out;
	rc = 1;
out:
	if (b64) {
		explicit_bzero(b64, strlen(b64));
		ssh_string_free_char(b64);
	}
	ssh_key_free(key);
	free(tmp);
	free(pubpath);
	free(dir);
	return rc;
}

/* ---- the exec channel ---- */

static void
keep_stderr(struct ssh_conn *c, const char *p, size_t n)
{
	size_t room = sizeof(c->errtail) - 1;

	if (n > room) {
		p += n - room;
		n = room;
	}
	if (c->errlen + n > room) {
		size_t drop = c->errlen + n - room;

		memmove(c->errtail, c->errtail + drop, c->errlen - drop);
		c->errlen -= drop;
	}
	memcpy(c->errtail + c->errlen, p, n);
	c->errlen += n;
	c->errtail[c->errlen] = '\0';
}

/* Take whatever stderr has arrived, without blocking. */
static void
drain_stderr(struct ssh_conn *c)
{
	char tmp[1024];
	int n;

	while ((n = ssh_channel_read_nonblocking(c->channel, tmp, sizeof(tmp), 1)) > 0)
		keep_stderr(c, tmp, (size_t)n);
}

/* "; the remote command said: ..." when it wrote to stderr. */
static void
channel_error(struct ssh_conn *c, const char *what, char *err, size_t errlen)
{
	const char *e = ssh_get_error(c->session);

	drain_stderr(c);
	set_err(err, errlen, "%s %s: %s%s%s", what, c->label,
	    e && *e ? e : "the channel was closed", c->errlen ? "; the remote command said: " : "",
	    c->errtail);
}

struct ssh_conn *
ssh_exec_open(const struct ssh_target *t, const char *identity, const char *known_hosts,
    int timeout, const char *command, char *err, size_t errlen)
{
	struct ssh_conn *c = NULL;
	ssh_session s = NULL;
	ssh_channel ch = NULL;
	ssh_key key = NULL;
	char *label = target_label(t), *fp = NULL, *user = NULL;
	int state = 1, auth;

	/* the key first: no point connecting without it */
	if (load_private_key(identity, &key, err, errlen) < 0)
		goto out;
	s = session_connect(t, known_hosts, timeout, err, errlen);
	if (s == NULL)
		goto out;
	if (hostkey_check(s, label, known_hosts, &fp, &state, err, errlen) < 0)
		goto out;
	if (state == 1) {
		set_err(err, errlen,
		    "host key of %s is not known: %s; nothing was sent\n"
		    "hint: check it on the node (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) "
		    "and run 'repctl trust NODE' (or 'repctl trust NODE --fingerprint=%s')",
		    label, fp, fp);
		goto out;
	}
	if (state == 2) {
		set_err(err, errlen,
		    "HOST KEY CHANGED for %s: it now presents %s, not the key "
		    "recorded in \"%s\"; this is a possible man-in-the-middle attack (or the "
		    "node's host key was regenerated); nothing was sent\n"
		    "hint: check the key on the node and run 'repctl trust NODE --replace' once "
		    "you have checked it",
		    label, fp, known_hosts);
		goto out;
	}
	auth = ssh_userauth_publickey(s, NULL, key);
	if (auth != SSH_AUTH_SUCCESS) {
		if (ssh_options_get(s, SSH_OPTIONS_USER, &user) != SSH_OK)
			user = NULL;
		if (auth == SSH_AUTH_DENIED)
			set_err(err, errlen,
			    "%s refused the key \"%s\" for user '%s'\nhint: add the "
			    "line printed by 'repctl keygen' to ~%s/.ssh/authorized_keys on the node",
			    label, identity, user ? user : "?", user ? user : "");
		else if (auth == SSH_AUTH_PARTIAL)
			set_err(err, errlen,
			    "%s wants more than the public key \"%s\" "
			    "(AuthenticationMethods); repctl only authenticates with a key",
			    label, identity);
		else
			set_err(
			    err, errlen, "cannot authenticate to %s: %s", label, ssh_get_error(s));
		goto out;
	}
	ch = ssh_channel_new(s);
	if (ch == NULL || ssh_channel_open_session(ch) != SSH_OK ||
	    ssh_channel_request_exec(ch, command) != SSH_OK) {
		set_err(err, errlen, "cannot run '%s' on %s: %s", command, label, ssh_get_error(s));
		goto out;
	}
	c = xcalloc(1, sizeof(*c));
	c->session = s;
	c->channel = ch;
	c->label = label;
	c->timeout = timeout > 0 ? timeout : DEFAULT_TIMEOUT;
	c->session_timeout = c->timeout;
	s = NULL;
	ch = NULL;
	label = NULL;
out:
	if (ch)
		ssh_channel_free(ch);
	session_end(s);
	ssh_string_free_char(user);
	ssh_key_free(key);
	free(fp);
	free(label);
	return c;
}

/* The message for a peer given up after c->idle seconds without progress. */
static int
hung_error(struct ssh_conn *c, const char *what, char *err, size_t errlen)
{
	drain_stderr(c);
	set_err(err, errlen,
	    "%s %s for %d s (ssh.io_timeout): the agent or the network hangs; giving up this "
	    "run%s%s",
	    what, c->label, c->idle, c->errlen ? "; the remote command said: " : "", c->errtail);
	return -1;
}

ssize_t
ssh_conn_read(struct ssh_conn *c, void *buf, size_t len, char *err, size_t errlen)
{
	uint32_t want = len > INT_MAX ? INT_MAX : (uint32_t)len;
	time_t deadline = c->idle > 0 ? time(NULL) + c->idle : 0;
	int n;

	if (len == 0)
		return 0;
	if (c->hung)
		return hung_error(c, "no answer from", err, errlen);
	for (;;) {
		if (deadline && time(NULL) >= deadline) {
			/* an agent at work pings every few seconds (F_PING): this one hangs */
			c->hung = 1;
			return hung_error(c, "no answer from", err, errlen);
		}
		n = ssh_channel_read_timeout(c->channel, buf, want, 0, READ_SLICE_MS);
		drain_stderr(c);
		if (n > 0) {
			c->received += (unsigned long long)n;
			return n;
		}
		if (n < 0) {
			channel_error(c, "lost the SSH channel to", err, errlen);
			return -1;
		}
		/* 0: end of file, or only the slice ran out */
		if (ssh_channel_is_eof(c->channel))
			return 0;
		if (ssh_channel_is_closed(c->channel)) {
			channel_error(c, "lost the SSH channel to", err, errlen);
			return -1;
		}
	}
}

int
ssh_conn_write(struct ssh_conn *c, const void *buf, size_t len, char *err, size_t errlen)
{
	const char *p = buf;
	time_t deadline = c->idle > 0 ? time(NULL) + c->idle : 0;

	if (c->hung)
		return hung_error(c, "no progress writing to", err, errlen);
	while (len > 0) {
		uint32_t chunk = len > WRITE_CHUNK ? WRITE_CHUNK : (uint32_t)len;
		uint32_t window = ssh_channel_window_size(c->channel);
		int n;

		/*
		 * The peer's window is full when it reads no more.  A blocking write
		 * waits for it to open up to the session's timeout, processing the
		 * incoming packets (window adjustments) meanwhile, then returns 0;
		 * with a timeout of one slice, that wait is polled here against
		 * idle seconds without progress.
		 */
		if (window == 0 && deadline) {
			long slice = 1;

			if (time(NULL) >= deadline) {
				c->hung = 1;
				return hung_error(c, "no progress writing to", err, errlen);
			}
			(void)ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &slice);
			n = ssh_channel_write(c->channel, p, chunk);
			(void)ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &c->session_timeout);
			if (n == 0 && !ssh_channel_is_closed(c->channel) &&
			    ssh_get_status(c->session) != SSH_CLOSED_ERROR)
				continue;
		} else {
			if (deadline && chunk > window)
				chunk = window;
			n = ssh_channel_write(c->channel, p, chunk);
		}
		if (n <= 0) {
			channel_error(c, "cannot write to the SSH channel to", err, errlen);
			return -1;
		}
		c->sent += (unsigned long long)n;
		p += n;
		len -= (size_t)n;
		if (deadline)
			deadline = time(NULL) + c->idle;
	}
	drain_stderr(c);
	return 0;
}

void
ssh_conn_set_idle(struct ssh_conn *c, int secs)
{
	c->idle = secs > 0 ? secs : 0;
}

unsigned long long
ssh_conn_sent(const struct ssh_conn *c)
{
	return c->sent;
}

unsigned long long
ssh_conn_received(const struct ssh_conn *c)
{
	return c->received;
}

const char *
ssh_conn_stderr(const struct ssh_conn *c)
{
	return c->errtail;
}

int
ssh_conn_close(struct ssh_conn *c)
{
	char tmp[4096];
	time_t deadline;
	int status = -1;

	if (c == NULL)
		return -1;
	/* a peer given up as hung gets no time to finish: it would not */
	if (!c->hung && !ssh_channel_is_closed(c->channel)) {
		(void)ssh_channel_send_eof(c->channel);
		/* let the command finish its output (discarded) and exit */
		deadline = time(NULL) + c->timeout;
		while (!ssh_channel_is_eof(c->channel) && time(NULL) < deadline) {
			int n = ssh_channel_read_timeout(
			    c->channel, tmp, sizeof(tmp), 0, READ_SLICE_MS);

			drain_stderr(c);
			if (n < 0)
				break;
		}
	}
	/*
	 * libssh 0.10 waits without a limit for the exit status; it comes with
	 * or just after EOF, so only ask once EOF (or the close) was seen.
	 */
	if (ssh_channel_is_eof(c->channel) || ssh_channel_is_closed(c->channel))
		status = ssh_channel_get_exit_status(c->channel);
	(void)ssh_channel_close(c->channel);
	ssh_channel_free(c->channel);
	session_end(c->session);
	free(c->label);
	free(c);
	return status < 0 ? -1 : status;
}

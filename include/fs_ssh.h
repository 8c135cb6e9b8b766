/*
 * fs_ssh.h - SSH for the file sync (libssh): host key verification against
 * a known-hosts file, public-key authentication, an exec channel running
 * `repctl agent` on the node, and the key and trust commands.
 */
#ifndef REPCTL_FS_SSH_H
#define REPCTL_FS_SSH_H

#include <stddef.h>
#include <sys/types.h>

/* "user@host:port" (user and port optional; port 22). */
struct ssh_target {
	char *user; /* NULL: the local user name */
	char *host;
	int port;
};

int ssh_target_parse(const char *spec, struct ssh_target *t, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void ssh_target_clear(struct ssh_target *t);

/*
 * Connect without authenticating and return the server's host key
 * fingerprint ("SHA256:base64...", malloc'ed) and whether the known-hosts
 * file already holds it: *state 0 known and matching, 1 unknown, 2 CHANGED
 * (another key is recorded for that host).  0 or -1 with err.
 */
int ssh_probe_hostkey(const struct ssh_target *t, const char *known_hosts, int timeout,
    char **fingerprint, int *state, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Record the server's current host key in known_hosts (created 0600 with
 * its directory 0700).  When expect_fp is not NULL the key must have that
 * fingerprint, else nothing is written and -1 is returned.  A changed key
 * replaces the old line only when replace is set.  0 or -1 with err.
 */
int ssh_trust_host(const struct ssh_target *t, const char *known_hosts, int timeout,
    const char *expect_fp, int replace, char **fingerprint, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Create an ed25519 key pair at path (0600) and path.pub unless it exists. 1 created, 0 existed, -1 error. */
int ssh_keygen(const char *path, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The public key line ("ssh-ed25519 AAAA... repctl@HOST") of the key at path; malloc'ed or NULL. */
char *ssh_pubkey_line(const char *path, char *err, size_t errlen);
/* Name the public key's comment after this node (repctl@NODE); NULL: the host name. */
void ssh_key_owner(const char *node);

struct ssh_conn;

/*
 * Connect, verify the host key (unknown or changed: refused, with the
 * fingerprint and the `repctl trust` hint in err), authenticate with the
 * private key at identity, and run command on an exec channel.  NULL with
 * err on any failure.
 */
struct ssh_conn *ssh_exec_open(const struct ssh_target *t, const char *identity,
    const char *known_hosts, int timeout, const char *command, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Blocking I/O on the channel: bytes (0 at EOF) or -1 with err. */
ssize_t ssh_conn_read(struct ssh_conn *c, void *buf, size_t len, char *err, size_t errlen);
int ssh_conn_write(struct ssh_conn *c, const void *buf, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * A read that sees no byte for secs seconds fails, naming the peer (0: wait
 * for ever).  A remote agent at work pings every few seconds.
 */
void ssh_conn_set_idle(struct ssh_conn *c, int secs);
/* Bytes written and read on the channel since open. */
unsigned long long ssh_conn_sent(const struct ssh_conn *c);
unsigned long long ssh_conn_received(const struct ssh_conn *c);
/*
 * The last bytes (at most 4 KiB) the remote command wrote to its stderr,
 * NUL-terminated ("" when none); owned by c, valid until ssh_conn_close().
 */
const char *ssh_conn_stderr(const struct ssh_conn *c);
/*
 * Close the channel and the session (c is freed; NULL is accepted).  Waits
 * up to the open's timeout for the command to finish its output after
 * our EOF; returns the remote exit status, or -1 when there is none.
 */
int ssh_conn_close(struct ssh_conn *c);

/*
 * 1 when the fingerprint a user gave matches fp ("SHA256:base64"): the
 * "SHA256:" prefix and base64 '=' padding of given are optional.
 */
int ssh_fingerprint_match(const char *given, const char *fp);

#endif

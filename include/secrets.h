/*
 * secrets.h - the secrets file: passwords given on the command line.
 *
 * It is a libpq password file (pgpass format: host:port:dbname:user:pass),
 * mode 0600 in the state directory, and every connection repctl makes
 * passes it as `passfile`, so libpq finds the password and the metadata
 * tables never hold one.
 */
#ifndef REPCTL_SECRETS_H
#define REPCTL_SECRETS_H

#include <stddef.h>

/* Coordinates of a password entry, taken from a conninfo (defaults filled). */
struct secret_key {
	char *host, *port, *dbname, *user;
};

/* Fill key from conninfo the way libpq matches pgpass lines; free with secret_key_clear. */
void secret_key_from_conninfo(const char *conninfo, struct secret_key *k);
void secret_key_clear(struct secret_key *k);

/* Add or replace the entry for k.  Creates the file (0600) and directory (0700). */
int secrets_put(const char *path, const struct secret_key *k, const char *password, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Remove the entry for k if present. */
int secrets_drop(const char *path, const struct secret_key *k, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Make every directory of path (mode). 0 or -1 with errno. */
int mkdir_p(const char *dir, int mode) __attribute__((warn_unused_result));

#endif

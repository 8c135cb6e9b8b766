/*
 * secrets.h - the secrets file: passwords given on the command line.
 *
 * It is a libpq password file (pgpass format: host:port:dbname:user:pass),
 * mode 0600 in the state directory.  When a connection needs a password,
 * db_connect() looks it up there and hands it to libpq; it is not given as
 * libpq's `passfile`, so ~/.pgpass, PGPASSFILE and services keep working
 * for everything the secrets file does not list.  The metadata tables never
 * hold a password.
 */
#ifndef REPCTL_SECRETS_H
#define REPCTL_SECRETS_H

#include <libpq-fe.h>
#include <stddef.h>

/* Coordinates of a password entry, taken from a conninfo (defaults filled). */
struct secret_key {
	char *host, *port, *dbname, *user;
};

/* Fill key from conninfo the way libpq matches pgpass lines; free with secret_key_clear. */
void secret_key_from_conninfo(const char *conninfo, struct secret_key *k);
void secret_key_clear(struct secret_key *k);
/* The same from a connection (even a failed one): its real host, port, db, user. */
void secret_key_from_conn(PGconn *conn, struct secret_key *k);
/* Password of the first matching line (pgpass rules, '*' wildcards) or NULL; free(). */
char *secrets_lookup(const char *path, const struct secret_key *k);

/* Add or replace the entry for k.  Creates the file (0600) and directory (0700). */
int secrets_put(const char *path, const struct secret_key *k, const char *password, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Remove the entry for k if present. */
int secrets_drop(const char *path, const struct secret_key *k, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

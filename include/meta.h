/*
 * meta.h - the metadata database: schema install/upgrade, nodes, herds,
 * syncs.  Every change a command makes is one transaction.
 */
#ifndef REPCTL_META_H
#define REPCTL_META_H

#include <libpq-fe.h>
#include <stddef.h>

struct config;

struct node {
	char *name;
	char *conninfo; /* never holds a password */
	int has_secret;
	char *ssh; /* NULL when unset */
	char *agent;
	char *status;
	int server_version;
};

/* Highest schema version this binary knows (number of meta_NNN.sql files). */
/*
 * Advisory locks on the metadata database (the two-int4 form: pg_locks
 * shows the first key as classid, the second as objid, objsubid 2).  They
 * work across hosts and containers, where pid files do not.
 */
#define LOCK_COORDINATOR "1919968116" /* (key, 0): the coordinator, for its life */
#define LOCK_SYNC_RUN "1919968117"    /* (key, hashtext(sync)): one run of a sync */
#define LOCK_WORKER "1919968118"      /* (key, hashtext(sync)): its worker, for its life */

int meta_schema_version(void);

/* Connect to the metadata database named by the configuration. */
PGconn *meta_connect(const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* -1 with a message unless the schema is installed at this version. */
int meta_check_installed(PGconn *meta, const struct config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * Create or upgrade the schema in one transaction.  *from / *to receive the
 * versions before and after.  0 or -1.
 */
int meta_install(PGconn *meta, int *from, int *to, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 0 found, 1 not found, -1 error.  Free with node_clear(). */
int meta_node_get(PGconn *meta, const char *name, struct node *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void node_clear(struct node *n);
/* Connect to a node with the secrets file.  NULL with a message naming the node. */
PGconn *node_connect(const struct config *cfg, const struct node *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 1 if a row exists for the query with one text parameter, 0 if not, -1 error. */
int meta_exists(PGconn *meta, const char *sql, const char *param, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

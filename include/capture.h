/*
 * capture.h - change capture on a node: the repctl schema, one shadow table
 * and one set of statement-level triggers per captured table.
 */
#ifndef REPCTL_CAPTURE_H
#define REPCTL_CAPTURE_H

#include <libpq-fe.h>
#include <stddef.h>

/*
 * Install (or refresh) capture of schema.table on the node reached by conn,
 * whose repctl name is self.  Idempotent.  Runs in its own transaction.
 * 0, or -1 with a message in err.
 */
int capture_install(PGconn *conn, const char *self, const char *schema, const char *table,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Remove capture of schema.table (triggers, function, shadow table).
 * Nothing to do when it is not captured.  0 or -1.
 */
int capture_remove(PGconn *conn, const char *schema, const char *table, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Remove every capture and the schema repctl from the node.  0 or -1. */
int capture_remove_all(PGconn *conn, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Name of the shadow table of schema.table on the node, or NULL (not captured).  free(). */
char *capture_shadow(PGconn *conn, const char *schema, const char *table, char *err, size_t errlen);

/*
 * Primary key columns of a table (a regclass text such as "public"."t"), in
 * key order, one row each: name, type (format_type), whether it has a
 * collation ("t"/"f"); NULL with err.  PQclear() the result.
 */
PGresult *capture_pk_columns(PGconn *conn, const char *rel, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

/*
 * parse.h - pure parsers for what users type: object names, qualified
 * table names, dbs= member lists, integers.  No I/O; unit-tested.
 */
#ifndef REPCTL_PARSE_H
#define REPCTL_PARSE_H

#include <stddef.h>

enum role {
	ROLE_SOURCE = 1,
	ROLE_TARGET = 2,
};

struct member {
	char *node;
	enum role role;
};

/* repctl object names (node, herd, sync): ^[A-Za-z_][A-Za-z0-9_.-]{0,62}$ */
int parse_valid_name(const char *s);

/*
 * Split SCHEMA.TABLE following PostgreSQL's rules: unquoted parts are
 * folded to lower case, "quoted" parts keep case and "" stands for ".
 * Without a schema, "public" is assumed.  0, or -1 with a message.
 * *schema and *table are malloc'ed; free().
 */
int parse_qualified(const char *in, char **schema, char **table, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Parse Bucardo's dbs= list: "a:source,b:target", roles optional (a bare
 * name is a source when first, a target after).  Refuses empty names,
 * unknown roles, duplicates, fewer than two nodes, no source, and a list
 * with a single source and no target.  *out is malloc'ed: members_free().
 */
int parse_dbs(const char *in, struct member **out, int *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void members_free(struct member *m, int n);
const char *role_name(enum role r);

/* Decimal integer in [min, max]; 0 or -1. */
int parse_long(const char *s, long min, long max, long *out) __attribute__((warn_unused_result));

#endif

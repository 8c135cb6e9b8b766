/*
 * sql_embed.h - SQL files compiled into the binary (see scripts/sql_embed.sh).
 */
#ifndef REPCTL_SQL_EMBED_H
#define REPCTL_SQL_EMBED_H

struct sql_file {
	const char *name; /* "meta_001.sql" */
	const char *text;
};

/* Terminated by a NULL name; sorted by name. */
extern const struct sql_file sql_files[];

/* The text of sql/NAME, or NULL. */
const char *sql_get(const char *name);

#endif

/*
 * sql_lookup.c - find an embedded SQL file by name.
 */
#include <stddef.h>
#include <string.h>

#include "sql_embed.h"

const char *
sql_get(const char *name)
{
	const struct sql_file *f;

	for (f = sql_files; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f->text;
	return NULL;
}

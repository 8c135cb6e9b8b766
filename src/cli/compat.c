/*
 * compat.c - Bucardo's spellings, accepted in one place.
 *
 * A user following the archive guide types `relgroup=archive_herd`,
 * `password=...` or `conflict_strategy=bucardo_latest`; the handlers only
 * ever see the native names (herd, pass, latest).  Word aliases of the
 * grammar itself ("db" for "database", "relgroup" for "herd") are written
 * in the pattern table in cli.c, where the grammar can be read whole.
 */
#include <stddef.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *from, *to;
} option_aliases[] = {
	{ "relgroup", "herd" },
	{ "password", "pass" },
	{ "strategy", "conflict_strategy" },
	{ "standard_conflict", "conflict_strategy" },
	{ "database", "db" },
	{ "databases", "dbs" },
	{ NULL, NULL },
};

const char *
compat_option_key(const char *key)
{
	size_t i;

	for (i = 0; option_aliases[i].from; i++)
		if (strcmp(option_aliases[i].from, key) == 0)
			return option_aliases[i].to;
	return key;
}

static const struct {
	const char *name, *native;
} strategies[] = {
	{ "latest", "latest" },
	{ "first", "first" },
	{ "source", "source" },
	{ "target", "target" },
	{ "skip", "skip" },
	{ "abort", "abort" },
	{ "bucardo_latest", "latest" },
	{ "bucardo_latest_all_tables", "latest" },
	{ "bucardo_first", "first" },
	{ "bucardo_source", "source" },
	{ "bucardo_target", "target" },
	{ "bucardo_skip", "skip" },
	{ "bucardo_abort", "abort" },
	{ NULL, NULL },
};

const char *const compat_strategy_words =
    "latest, first, source, target, skip, abort (or Bucardo's bucardo_latest, "
    "bucardo_first, bucardo_source, bucardo_target, bucardo_skip, bucardo_abort)";

const char *
compat_strategy(const char *name)
{
	size_t i;

	for (i = 0; strategies[i].name; i++)
		if (strcmp(strategies[i].name, name) == 0)
			return strategies[i].native;
	return NULL;
}

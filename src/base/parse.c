/*
 * parse.c - parsers for names and lists typed on the command line.
 *
 * Kept free of I/O so that every bad-input path has a unit test.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "parse.h"
#include "xmalloc.h"

int
parse_valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63)
		return 0;
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

/* Parse one identifier starting at *p; advance *p.  NULL on error. */
static char *
ident_part(const char **p, char *err, size_t errlen, const char *whole)
{
	struct buf b = BUF_INIT;
	const char *s = *p;

	if (*s == '"') {
		s++;
		for (;;) {
			if (*s == '\0') {
				snprintf(err, errlen, "unterminated quoted name in '%s'", whole);
				buf_free(&b);
				return NULL;
			}
			if (*s == '"') {
				if (s[1] == '"') {
					buf_putc(&b, '"');
					s += 2;
					continue;
				}
				s++;
				break;
			}
			buf_putc(&b, *s++);
		}
		if (b.len == 0) {
			snprintf(err, errlen, "empty quoted name in '%s'", whole);
			buf_free(&b);
			return NULL;
		}
	} else {
		while (*s && *s != '.') {
			if (*s == '"' || isspace((unsigned char)*s)) {
				snprintf(err, errlen,
				    "bad character in name '%s'; quote names with special "
				    "characters as \"Name\"",
				    whole);
				buf_free(&b);
				return NULL;
			}
			buf_putc(&b, (char)tolower((unsigned char)*s));
			s++;
		}
		if (b.len == 0) {
			snprintf(err, errlen, "empty name in '%s'; write SCHEMA.TABLE", whole);
			buf_free(&b);
			return NULL;
		}
	}
	*p = s;
	return buf_steal(&b);
}

int
parse_qualified(const char *in, char **schema, char **table, char *err, size_t errlen)
{
	const char *p = in;
	char *a, *b = NULL;

	*schema = *table = NULL;
	a = ident_part(&p, err, errlen, in);
	if (a == NULL)
		return -1;
	if (*p == '.') {
		p++;
		b = ident_part(&p, err, errlen, in);
		if (b == NULL) {
			free(a);
			return -1;
		}
	}
	if (*p != '\0') {
		snprintf(err, errlen, "cannot read table name '%s'; write SCHEMA.TABLE", in);
		free(a);
		free(b);
		return -1;
	}
	if (b) {
		*schema = a;
		*table = b;
	} else {
		*schema = xstrdup("public");
		*table = a;
	}
	return 0;
}

const char *
role_name(enum role r)
{
	return r == ROLE_SOURCE ? "source" : "target";
}

void
members_free(struct member *m, int n)
{
	int i;

	if (m == NULL)
		return;
	for (i = 0; i < n; i++)
		free(m[i].node);
	free(m);
}

int
parse_dbs(const char *in, struct member **out, int *n, char *err, size_t errlen)
{
	char *copy = xstrdup(in), *item, *rest = copy;
	struct member *m = NULL;
	int cnt = 0, i, nsrc = 0, ntgt = 0;

	*out = NULL;
	*n = 0;
	while ((item = strsep(&rest, ",")) != NULL) {
		char *colon = strchr(item, ':');
		enum role role = cnt == 0 ? ROLE_SOURCE : ROLE_TARGET;

		if (*item == '\0') {
			snprintf(err, errlen,
			    "dbs=%s: item %d is empty; write dbs=A:source,B:target", in, cnt + 1);
			goto fail;
		}
		if (colon) {
			*colon = '\0';
			if (strcmp(colon + 1, "source") == 0 || strcmp(colon + 1, "s") == 0)
				role = ROLE_SOURCE;
			else if (strcmp(colon + 1, "target") == 0 || strcmp(colon + 1, "t") == 0)
				role = ROLE_TARGET;
			else {
				snprintf(err, errlen,
				    "dbs=: unknown role '%s' for node '%s'; use NODE:source or "
				    "NODE:target",
				    colon + 1, item);
				goto fail;
			}
		}
		if (!parse_valid_name(item)) {
			snprintf(err, errlen,
			    "dbs=: '%s' is not a node name; write "
			    "dbs=A:source,B:target",
			    item);
			goto fail;
		}
		for (i = 0; i < cnt; i++) {
			if (strcmp(m[i].node, item) == 0) {
				snprintf(err, errlen, "dbs=: node '%s' is listed twice", item);
				goto fail;
			}
		}
		m = xrealloc(m, sizeof(*m) * (size_t)(cnt + 1));
		m[cnt].node = xstrdup(item);
		m[cnt].role = role;
		cnt++;
		if (role == ROLE_SOURCE)
			nsrc++;
		else
			ntgt++;
	}
	if (cnt < 2) {
		snprintf(err, errlen,
		    "dbs=%s: a sync needs at least two nodes, e.g. "
		    "dbs=A:source,B:target",
		    in);
		goto fail;
	}
	if (nsrc == 0) {
		snprintf(err, errlen, "dbs=%s: no node is a source; mark one NODE:source", in);
		goto fail;
	}
	(void)ntgt;
	free(copy);
	*out = m;
	*n = cnt;
	return 0;
fail:
	free(copy);
	members_free(m, cnt);
	return -1;
}

int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

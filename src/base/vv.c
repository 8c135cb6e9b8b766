/*
 * vv.c - version vectors.
 *
 * A row's vector counts, per node, the local changes made to it there.  A
 * change made after a node received another's version carries that
 * version's counters too, so it dominates it: a sequential update always
 * wins, whatever the strategy.  Two versions neither of which dominates
 * were made without knowing each other: a true conflict.  The same rules
 * run in SQL on the nodes (repctl.vv_cmp, vv_merge in node_schema.sql) for
 * set-based classification; this C copy decides conflicts and is tested
 * case by case.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "vv.h"
#include "xmalloc.h"

void
vv_free(struct vv *v)
{
	int i;

	for (i = 0; i < v->n; i++)
		free(v->e[i].node);
	free(v->e);
	v->e = NULL;
	v->n = 0;
}

static void
vv_set(struct vv *v, const char *node, long long c)
{
	int i;

	for (i = 0; i < v->n; i++) {
		if (strcmp(v->e[i].node, node) == 0) {
			v->e[i].counter = c;
			return;
		}
	}
	v->e = xrealloc(v->e, sizeof(*v->e) * (size_t)(v->n + 1));
	v->e[v->n].node = xstrdup(node);
	v->e[v->n].counter = c;
	v->n++;
}

long long
vv_get(const struct vv *v, const char *node)
{
	int i;

	for (i = 0; i < v->n; i++)
		if (strcmp(v->e[i].node, node) == 0)
			return v->e[i].counter;
	return 0;
}

static const char *
skip_ws(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

int
vv_parse(const char *json, struct vv *out)
{
	const char *p;

	out->e = NULL;
	out->n = 0;
	if (json == NULL || *json == '\0')
		return 0;
	p = skip_ws(json);
	if (*p++ != '{')
		goto bad;
	p = skip_ws(p);
	if (*p == '}')
		return *skip_ws(p + 1) == '\0' ? 0 : (vv_free(out), -1);
	for (;;) {
		struct buf key = BUF_INIT;
		char *end;
		long long c;

		p = skip_ws(p);
		if (*p++ != '"')
			goto bad;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			buf_putc(&key, *p++);
		}
		if (*p++ != '"' || key.len == 0) {
			buf_free(&key);
			goto bad;
		}
		p = skip_ws(p);
		if (*p++ != ':') {
			buf_free(&key);
			goto bad;
		}
		c = strtoll(skip_ws(p), &end, 10);
		if (end == skip_ws(p) || c < 0) {
			buf_free(&key);
			goto bad;
		}
		vv_set(out, key.data, c);
		buf_free(&key);
		p = skip_ws(end);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '}' && *skip_ws(p + 1) == '\0')
			return 0;
		goto bad;
	}
bad:
	vv_free(out);
	return -1;
}

enum vv_order
vv_compare(const struct vv *a, const struct vv *b)
{
	int ge = 1, le = 1, i;

	for (i = 0; i < a->n; i++) {
		long long o = vv_get(b, a->e[i].node);

		if (a->e[i].counter > o)
			le = 0;
		if (a->e[i].counter < o)
			ge = 0;
	}
	for (i = 0; i < b->n; i++) {
		long long o = vv_get(a, b->e[i].node);

		if (b->e[i].counter > o)
			ge = 0;
		if (b->e[i].counter < o)
			le = 0;
	}
	if (ge && le)
		return VV_EQUAL;
	if (ge)
		return VV_DOMINATES;
	if (le)
		return VV_DOMINATED;
	return VV_CONCURRENT;
}

void
vv_merge(const struct vv *a, const struct vv *b, struct vv *out)
{
	int i;

	out->e = NULL;
	out->n = 0;
	for (i = 0; i < a->n; i++)
		vv_set(out, a->e[i].node, a->e[i].counter);
	for (i = 0; i < b->n; i++)
		if (b->e[i].counter > vv_get(out, b->e[i].node))
			vv_set(out, b->e[i].node, b->e[i].counter);
}

static int
entry_cmp(const void *x, const void *y)
{
	return strcmp(((const struct vv_entry *)x)->node, ((const struct vv_entry *)y)->node);
}

char *
vv_to_json(const struct vv *v)
{
	struct buf b = BUF_INIT;
	struct vv_entry *sorted = xcalloc((size_t)v->n + 1, sizeof(*sorted));
	int i;

	if (v->n > 0)
		memcpy(sorted, v->e, sizeof(*sorted) * (size_t)v->n);
	qsort(sorted, (size_t)v->n, sizeof(*sorted), entry_cmp);
	buf_putc(&b, '{');
	for (i = 0; i < v->n; i++) {
		buf_printf(&b, "%s", i ? ", " : "");
		buf_json_str(&b, sorted[i].node);
		buf_printf(&b, ": %lld", sorted[i].counter);
	}
	buf_putc(&b, '}');
	free(sorted);
	return buf_steal(&b);
}

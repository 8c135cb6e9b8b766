/*
 * output.c - aligned tables and JSON for list/status commands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "db.h"
#include "output.h"
#include "xmalloc.h"

/* Display width of a UTF-8 string (code points; good enough for names). */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

void
output_table(FILE *fp, const PGresult *res)
{
	output_table_n(fp, res, PQnfields(res));
}

void
output_table_n(FILE *fp, const PGresult *res, int nf)
{
	int nr = PQntuples(res), f, r;
	size_t *w = xcalloc((size_t)nf, sizeof(size_t));

	for (f = 0; f < nf; f++) {
		w[f] = width(PQfname(res, f));
		for (r = 0; r < nr; r++) {
			size_t x = PQgetisnull(res, r, f) ? 1 : width(PQgetvalue(res, r, f));

			if (x > w[f])
				w[f] = x;
		}
	}
	for (f = 0; f < nf; f++)
		fprintf(fp, "%s%-*s", f ? "  " : "", f == nf - 1 ? 0 : (int)w[f], PQfname(res, f));
	fputc('\n', fp);
	for (r = 0; r < nr; r++) {
		for (f = 0; f < nf; f++) {
			const char *v = PQgetisnull(res, r, f) ? "-" : PQgetvalue(res, r, f);
			int pad = f == nf - 1 ? 0 : (int)(w[f] - width(v));

			fprintf(fp, "%s%s%*s", f ? "  " : "", v, pad, "");
		}
		fputc('\n', fp);
	}
	free(w);
}

int
output_query(PGconn *conn, const char *sql, int nparams, const char *const *params, int json)
{
	char err[ERRLEN];
	PGresult *res;
	char *wrapped = NULL;

	if (json)
		wrapped = xasprintf("SELECT coalesce(json_agg(t), '[]') FROM (%s) t", sql);
	res = db_query(conn, json ? wrapped : sql, nparams, params, err, sizeof(err));
	free(wrapped);
	if (res == NULL) {
		cmd_error("%s", err);
		return -1;
	}
	if (json)
		printf("%s\n", PQgetvalue(res, 0, 0));
	else
		output_table(stdout, res);
	PQclear(res);
	return 0;
}

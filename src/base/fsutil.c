/*
 * fsutil.c - file system helpers every layer uses (the file sync, the
 * secrets file, the state directory, the client kit).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "xmalloc.h"

int
mkdir_p(const char *dir, int mode)
{
	char *p, *s;
	int rc = 0;
	struct stat sb;

	/* the common case (a file sync writing many files into one directory):
	 * it exists, one stat instead of a failing mkdir per component */
	if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	p = xstrdup(dir);
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
			rc = -1;
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
		rc = -1;
out:
	free(p);
	return rc;
}

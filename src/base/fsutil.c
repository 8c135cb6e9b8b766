/*
 * fsutil.c - file system helpers every layer uses (the file sync, the
 * secrets file, the state directory, the client kit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
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

int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
file_write_new(const char *tmp, const void *data, size_t len, int mode)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
	int saved;

	if (fd < 0)
		return -1;
	if (fchmod(fd, (mode_t)mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return 0;
}

int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? xstrdup(".")
	    : slash == path       ? xstrdup("/")
				  : xstrndup(path, (size_t)(slash - path));
	int rc = fsync_dir(dir);

	free(dir);
	return rc;
}

int
atomic_write(const char *path, const void *data, size_t len, int mode, char *err, size_t errlen)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int rc = -1;

	(void)unlink(tmp); /* a leftover of a crashed process with our pid */
	if (file_write_new(tmp, data, len, mode) < 0) {
		set_err(err, errlen, "cannot write \"%s\": %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		set_err(
		    err, errlen, "cannot rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	(void)fsync_dir_of(path); /* the new name survives a crash; best effort */
	rc = 0;
out:
	free(tmp);
	return rc;
}

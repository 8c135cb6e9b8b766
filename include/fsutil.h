/*
 * fsutil.h - file system helpers (src/base/fsutil.c).
 */
#ifndef REPCTL_FSUTIL_H
#define REPCTL_FSUTIL_H

/* Make every directory of path (mode). 0 or -1 with errno. */
int mkdir_p(const char *dir, int mode) __attribute__((warn_unused_result));

#include <stddef.h>

/* Write all of data to fd (short writes and EINTR retried).  0 or -1 with errno. */
int write_all(int fd, const void *data, size_t len);
/*
 * Write data to a new file tmp (mode; O_EXCL, O_NOFOLLOW: never through a
 * planted link) and fsync it.  0, or -1 with errno; tmp is removed on failure.
 */
int file_write_new(const char *tmp, const void *data, size_t len, int mode);
/* fsync a directory (its new or removed names), or the one that holds path.  0 or -1. */
int fsync_dir(const char *dir);
int fsync_dir_of(const char *path);
/*
 * Replace path with data, atomically and durably: a temporary file beside
 * it (PATH.tmp.PID) written in full, fsynced, renamed over path, and the
 * directory fsynced.  A reader sees the old or the new file, never a part;
 * after a crash, one of the two.  0, or -1 with err.
 */
int atomic_write(const char *path, const void *data, size_t len, int mode, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

/*
 * fsutil.h - file system helpers (src/base/fsutil.c).
 */
#ifndef REPCTL_FSUTIL_H
#define REPCTL_FSUTIL_H

/* Make every directory of path (mode). 0 or -1 with errno. */
int mkdir_p(const char *dir, int mode) __attribute__((warn_unused_result));

#endif

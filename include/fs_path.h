/*
 * fs_path.h - checks on every path a peer sends, and ignore patterns.
 *
 * A peer (a remote agent, or a coordinator talking to the agent) names
 * files by paths relative to the folder root.  Nothing it sends may reach
 * outside the folder: no absolute path, no "..", no empty or "." component,
 * no NUL or control character, nothing inside the folder's own ".repctl"
 * directory, and no symlink on the way that leaves the folder.
 */
#ifndef REPCTL_FS_PATH_H
#define REPCTL_FS_PATH_H

#include <stddef.h>

/* 0 when rel is an acceptable relative path, else -1 with the reason in err. */
int path_check(const char *rel, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * path_check(), then lstat every existing component under root: a symlink
 * is refused when it points outside root (absolute target, or a relative
 * one that climbs above root).  Components that do not exist yet are fine.
 * Stricter in practice: a symlink is allowed only as the last component,
 * and its target must pass the same checks (see fs_path.c).
 * On success *out is root "/" rel (malloc'ed).  0 or -1 with err.
 */
int path_resolve(const char *root, const char *rel, char **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Ignore patterns: a comma separated list such as "tmp/,log/,.git/,*.part".
 * A pattern ending in '/' matches a directory of that name anywhere and
 * everything below it; a pattern with a '/' elsewhere is anchored at the
 * folder root; otherwise it is a glob (fnmatch) on the last component.
 * A path is ignored when it or any directory above it matches, so the
 * answer is the same whether or not a scanner prunes ignored directories.
 */
struct ignore;
struct ignore *ignore_new(const char *patterns);
void ignore_free(struct ignore *ig);
/* 1 when rel (a file path, or a directory path when is_dir) is ignored. */
int ignore_match(const struct ignore *ig, const char *rel, int is_dir);

#endif

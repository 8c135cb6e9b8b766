/*
 * fs_path.c - the safety check on every path a peer names, and the ignore
 * patterns that keep scratch files out of the index.
 *
 * A peer's index, block request or write names a file by a path relative to
 * the folder root.  path_check() is purely lexical: it refuses what can never
 * be a file inside the folder (empty, absolute, ".", ".." or empty
 * components, control characters, backslashes that another platform would
 * read as separators, over-long names) and the folder's own state directory
 * ".repctl" at the root.  That last test ignores case, because on a
 * case-insensitive file system (macOS, a FAT-formatted disk) ".REPCTL" is
 * the same directory.
 *
 * path_resolve() then looks at the disk.  It lstat()s each existing
 * component under root and never follows a symlink in the middle of a path:
 * a symlinked directory inside the folder is refused, not just one that
 * leaves it, because checking where a directory link leads would mean
 * following chains of links and racing their changes.  A symlink as the last
 * component is allowed when its target stays inside: the target must be
 * relative, must not climb above root once applied to the link's directory,
 * and must itself pass path_check() and this same walk (so "a -> b/x" with
 * "b -> /etc" is refused, and a loop ends after SYMLINK_HOPS links).  The
 * walk ends at the first component that does not exist (the rest is to be
 * created) or that is not a directory (nothing can exist below it).
 *
 * These checks guard against what a peer sends; they cannot stop a local
 * user from swapping a directory for a symlink between the check and the
 * use, so the transfer code still opens with O_NOFOLLOW where it can.
 *
 * Error messages start with the path as given (control bytes escaped, long
 * paths shortened) and end with the reason.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "errors.h"
#include "fs_path.h"
#include "xmalloc.h"

#define PATH_MAX_LEN 4095   /* bytes in a relative path */
#define NAME_MAX_LEN 255    /* bytes in one component */
#define STATE_DIR ".repctl" /* the folder's own state, at its root */
#define SHOW_MAX 80         /* bytes of a path quoted in a message */
#define SYMLINK_HOPS 40     /* final-component links followed in a chain */

/* Append s for a message: control bytes and backslashes escaped, shortened. */
static void
path_show(struct buf *b, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == SHOW_MAX) {
			buf_puts(b, "...");
			return;
		}
		if (c < 0x20 || c == 0x7f || c == '\\')
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
}

/* err = "unsafe path 'rel': reason".  err may be NULL. */
static void __attribute__((format(printf, 4, 5)))
path_err(char *err, size_t errlen, const char *rel, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char reason[1024];

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	buf_puts(&b, "unsafe path '");
	path_show(&b, rel);
	buf_printf(&b, "': %s", reason);
	set_err(err, errlen, "%s", b.data);
	buf_free(&b);
}

/* A shown (escaped, shortened) copy of s for a message; free(). */
static char *
shown(const char *s)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "");
	path_show(&b, s);
	return buf_steal(&b);
}

int
path_check(const char *rel, char *err, size_t errlen)
{
	const char *comp, *end;
	size_t i, len, clen;
	int rc = -1;

	if (rel == NULL || *rel == '\0') {
		path_err(err, errlen, "", "empty path");
		goto out;
	}
	len = strlen(rel);
	if (len > PATH_MAX_LEN) {
		path_err(err, errlen, rel, "longer than %d bytes (%zu)", PATH_MAX_LEN, len);
		goto out;
	}
	if (rel[0] == '/') {
		path_err(err, errlen, rel, "absolute path");
		goto out;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)rel[i];

		if (c < 0x20 || c == 0x7f) {
			path_err(err, errlen, rel, "control character 0x%02x at byte %zu", c, i);
			goto out;
		}
		if (c == '\\') {
			path_err(err, errlen, rel, "backslash at byte %zu", i);
			goto out;
		}
	}
	for (comp = rel;; comp = end + 1) {
		end = strchrnul(comp, '/');
		clen = (size_t)(end - comp);
		if (clen == 0) {
			path_err(
			    err, errlen, rel, "empty component at byte %zu", (size_t)(comp - rel));
			goto out;
		}
		if (clen == 1 && comp[0] == '.') {
			path_err(err, errlen, rel, "'.' component");
			goto out;
		}
		if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
			path_err(err, errlen, rel, "'..' component");
			goto out;
		}
		if (clen > NAME_MAX_LEN) {
			path_err(err, errlen, rel, "component longer than %d bytes (%zu)",
			    NAME_MAX_LEN, clen);
			goto out;
		}
		if (comp == rel && clen == strlen(STATE_DIR) &&
		    strncasecmp(comp, STATE_DIR, clen) == 0) {
			path_err(err, errlen, rel, "inside the folder's own state directory '%s'",
			    STATE_DIR);
			goto out;
		}
		if (*end == '\0')
			break;
	}
	rc = 0;
out:
	return rc;
}

/*
 * The root-relative path that symlink "link" (root-relative) with the
 * relative target "target" names, into *next (malloc'ed, "" for the root
 * itself).  -1 when the target climbs above root.
 */
static int
link_target(const char *link, const char *target, char **next)
{
	struct buf b = BUF_INIT;
	const char *slash = strrchr(link, '/'), *comp, *end;
	int rc = -1;

	*next = NULL;
	buf_puts(&b, "");
	if (slash != NULL)
		buf_add(&b, link, (size_t)(slash - link));
	for (comp = target;; comp = end + 1) {
		size_t clen;

		end = strchrnul(comp, '/');
		clen = (size_t)(end - comp);
		if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
			char *up;

			if (b.len == 0)
				goto out;
			up = strrchr(b.data, '/');
			b.len = up != NULL ? (size_t)(up - b.data) : 0;
			b.data[b.len] = '\0';
		} else if (clen > 0 && !(clen == 1 && comp[0] == '.')) {
			if (b.len > 0)
				buf_putc(&b, '/');
			buf_add(&b, comp, clen);
		}
		if (*end == '\0')
			break;
	}
	*next = buf_steal(&b);
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

/*
 * lstat each component of rel (checked) under root, whose text (with the
 * separating '/') is full[0..base).  orig is the path the caller asked
 * about, and via "" or the link that led to rel ("symlink 'a' -> 'b': "),
 * both for messages.  Returns -1 with err on a refusal, 0 when the walk
 * ended without meeting a symlink, 1 when the last component is a symlink
 * whose relative target stays inside root: *next is then that target as a
 * root-relative path ("" means root itself) and *next_via describes the
 * link, both malloc'ed.
 */
static int
path_walk(struct buf *full, size_t base, const char *orig, const char *via, const char *rel,
    char **next, char **next_via, char *err, size_t errlen)
{
	char target[PATH_MAX_LEN + 2];
	char *s = NULL, *t = NULL;
	struct stat st;
	size_t pos;
	ssize_t n;
	int rc = -1;

	*next = NULL;
	*next_via = NULL;
	full->len = base;
	buf_puts(full, rel);
	for (pos = base;;) {
		char *end = strchrnul(full->data + pos, '/');
		int last = *end == '\0';

		*end = '\0';
		if (lstat(full->data, &st) != 0) {
			int e = errno;

			if (e == ENOENT) {
				rc = 0; /* the rest is to be created */
				goto out;
			}
			s = shown(full->data + base);
			path_err(err, errlen, orig, "%scannot lstat '%s': %s", via, s, strerror(e));
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			s = shown(full->data + base);
			if (!last) {
				path_err(err, errlen, orig,
				    "%ssymlink '%s' in the middle of the path", via, s);
				goto out;
			}
			n = readlink(full->data, target, sizeof(target));
			if (n < 0 || (size_t)n >= sizeof(target)) {
				path_err(err, errlen, orig, "%scannot read symlink '%s': %s", via,
				    s, n < 0 ? strerror(errno) : "target too long");
				goto out;
			}
			target[n] = '\0';
			t = shown(target);
			if (target[0] == '/') {
				path_err(err, errlen, orig,
				    "%ssymlink '%s' points to absolute path '%s'", via, s, t);
				goto out;
			}
			if (link_target(full->data + base, target, next) != 0) {
				path_err(err, errlen, orig,
				    "%ssymlink '%s' -> '%s' leaves the folder", via, s, t);
				goto out;
			}
			*next_via = xasprintf("symlink '%s' -> '%s': ", s, t);
			rc = 1;
			goto out;
		}
		if (last || !S_ISDIR(st.st_mode)) {
			rc = 0; /* nothing exists below a non-directory */
			goto out;
		}
		*end = '/';
		pos = (size_t)(end - full->data) + 1;
	}
out:
	free(s);
	free(t);
	return rc;
}

int
path_resolve(const char *root, const char *rel, char **out, char *err, size_t errlen)
{
	struct buf full = BUF_INIT;
	char why[1024];
	char *cur = NULL, *next = NULL, *via = NULL, *next_via = NULL;
	struct stat st;
	size_t rootlen, base;
	int hops, r, rc = -1;

	*out = NULL;
	if (path_check(rel, err, errlen) != 0)
		goto out;
	if (root == NULL || *root == '\0') {
		set_err(err, errlen, "empty folder root for '%s'", rel);
		goto out;
	}
	if (stat(root, &st) != 0) {
		set_err(err, errlen, "folder root '%s': %s", root, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "folder root '%s' is not a directory", root);
		goto out;
	}
	rootlen = strlen(root);
	while (rootlen > 1 && root[rootlen - 1] == '/')
		rootlen--;
	buf_add(&full, root, rootlen);
	if (root[rootlen - 1] != '/')
		buf_putc(&full, '/');
	base = full.len;

	cur = xstrdup(rel);
	via = xstrdup("");
	for (hops = 0;; hops++) {
		r = path_walk(&full, base, rel, via, cur, &next, &next_via, err, errlen);
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		free(cur);
		free(via);
		cur = next;
		via = next_via;
		next = next_via = NULL;
		if (*cur == '\0')
			break; /* a link to the root itself */
		if (hops + 1 > SYMLINK_HOPS) {
			path_err(
			    err, errlen, rel, "more than %d symlinks in a chain", SYMLINK_HOPS);
			goto out;
		}
		if (path_check(cur, why, sizeof(why)) != 0) {
			path_err(err, errlen, rel, "%s%s", via, why);
			goto out;
		}
	}
	full.len = base;
	buf_puts(&full, rel);
	*out = buf_steal(&full);
	rc = 0;
out:
	free(cur);
	free(next);
	free(via);
	free(next_via);
	buf_free(&full);
	return rc;
}

/* ---- ignore patterns ---- */

struct ignore_pat {
	char *glob;   /* without a trailing '/' or a leading '/' */
	int dir_only; /* the pattern ended in '/' */
	int anchored; /* the pattern has a '/' before its end: fnmatch the whole path */
};

struct ignore {
	struct ignore_pat *p;
	int n;
};

/*
 * Parse a comma separated list; blanks around each pattern are dropped,
 * empty patterns skipped, NULL is the empty list.  Never NULL; free with
 * ignore_free().
 */
struct ignore *
ignore_new(const char *patterns)
{
	struct ignore *ig = xcalloc(1, sizeof(*ig));
	const char *s, *e, *end;
	int dir_only, anchored;

	if (patterns == NULL)
		return ig;
	for (s = patterns;; s = end + 1) {
		end = strchrnul(s, ',');
		e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		dir_only = 0;
		while (e > s && e[-1] == '/') {
			e--;
			dir_only = 1;
		}
		anchored = memchr(s, '/', (size_t)(e - s)) != NULL;
		while (s < e && *s == '/')
			s++;
		if (s < e) {
			ig->p = xrealloc(ig->p, sizeof(*ig->p) * (size_t)(ig->n + 1));
			ig->p[ig->n].glob = xstrndup(s, (size_t)(e - s));
			ig->p[ig->n].dir_only = dir_only;
			ig->p[ig->n].anchored = anchored;
			ig->n++;
		}
		if (*end == '\0')
			break;
	}
	return ig;
}

/* Safe to call with NULL. */
void
ignore_free(struct ignore *ig)
{
	int i;

	if (ig == NULL)
		return;
	for (i = 0; i < ig->n; i++)
		free(ig->p[i].glob);
	free(ig->p);
	free(ig);
}

/*
 * A path is ignored when it, or any directory above it, matches a pattern:
 * the same answer whether or not the scanner prunes ignored directories.
 * Each prefix "a", "a/b", ... is tried: a directory pattern only against
 * prefixes that are directories (every one but the last, and the last when
 * is_dir), an anchored pattern with fnmatch(FNM_PATHNAME) against the whole
 * prefix, any other against the prefix's last component.
 */
int
ignore_match(const struct ignore *ig, const char *rel, int is_dir)
{
	char *s;
	size_t start = 0;
	int i, hit = 0;

	if (ig == NULL || ig->n == 0 || rel == NULL || *rel == '\0')
		return 0;
	s = xstrdup(rel);
	for (;;) {
		char *end = strchrnul(s + start, '/');
		int last = *end == '\0', dir = !last || is_dir;

		*end = '\0';
		for (i = 0; i < ig->n && !hit; i++) {
			const struct ignore_pat *p = &ig->p[i];

			if (p->dir_only && !dir)
				continue;
			if (p->anchored)
				hit = fnmatch(p->glob, s, FNM_PATHNAME) == 0;
			else
				hit = fnmatch(p->glob, s + start, 0) == 0;
		}
		if (hit || last)
			break;
		*end = '/';
		start = (size_t)(end - s) + 1;
	}
	free(s);
	return hit;
}

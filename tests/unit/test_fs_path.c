/*
 * test_fs_path.c - path safety and ignore patterns (src/files/fs_path.c).
 *
 * path_check(): every refusal (empty, absolute, "." / ".." / empty
 * components, control characters including DEL, backslashes, a component
 * over 255 bytes, a path over 4095 bytes, ".repctl" at the root in any case)
 * with the path and the reason in the message, a NULL err buffer, a short
 * err buffer, and acceptable paths (unicode, spaces, dot names that are not
 * "." or "..", ".repctl" below the root, the exact length limits).
 *
 * path_resolve() in a temporary directory: a symlink to /etc, a symlink to
 * "../outside", a symlink inside the folder as the final component, a
 * symlinked directory in the middle, a chain of links that leaves through
 * another link, a link into .repctl, a loop, a dangling link inside,
 * missing components, a regular file in the middle, a missing root.
 *
 * Ignore patterns: directory patterns ("tmp/" matches "tmp/a", "x/tmp/b"
 * and the directory "tmp", not "tmpfile" nor a file "tmp"), globs on the
 * last component ("*.part"), anchored patterns ("/build", "docs/draft"),
 * blanks and empty items in the list, and the empty list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs_path.h"

/* ---- path_check ---- */

/* rel is refused, and the message contains want (when not NULL). */
static void
check_refused(const char *rel, const char *want)
{
	char err[512];

	memset(err, 0, sizeof(err));
	if (path_check(rel, err, sizeof(err)) != -1)
		fail_msg("path_check accepted '%s'", rel);
	assert_true(err[0] != '\0');
	if (want != NULL && strstr(err, want) == NULL)
		fail_msg("message for '%s' is '%s', want it to contain '%s'", rel, err, want);
	/* the caller may pass no buffer */
	assert_int_equal(path_check(rel, NULL, 0), -1);
}

static void
check_ok(const char *rel)
{
	char err[512] = "";

	if (path_check(rel, err, sizeof(err)) != 0)
		fail_msg("path_check refused '%s': %s", rel, err);
}

static void
test_check_empty_absolute(void **state)
{
	(void)state;
	check_refused("", "empty path");
	check_refused(NULL, "empty path");
	check_refused("/", "absolute path");
	check_refused("/x", "'/x': absolute path");
	check_refused("/etc/passwd", "absolute path");
	check_refused("//x", "absolute path");
}

static void
test_check_dot_components(void **state)
{
	(void)state;
	check_refused("..", "'..': '..' component");
	check_refused("../etc/passwd", "'../etc/passwd': '..' component");
	check_refused("a/..", "'..' component");
	check_refused("a/../b", "'..' component");
	check_refused("a/b/../../..", "'..' component");
	check_refused(".", "'.' component");
	check_refused("./a", "'.' component");
	check_refused("a/.", "'.' component");
	check_refused("a/./b", "'.' component");
}

static void
test_check_empty_components(void **state)
{
	(void)state;
	check_refused("a//b", "'a//b': empty component at byte 2");
	check_refused("a/", "'a/': empty component at byte 2");
	check_refused("a/b/", "empty component");
	check_refused("a///", "empty component");
}

static void
test_check_control_chars(void **state)
{
	char s[8];
	int c;

	(void)state;
	check_refused("a\nb", "'a\\x0ab': control character 0x0a at byte 1");
	check_refused("a\tb", "control character 0x09");
	check_refused("\x1b[31m", "control character 0x1b at byte 0");
	check_refused("a/b\x7f", "control character 0x7f at byte 3");
	check_refused("a\rb", "control character 0x0d");
	for (c = 1; c < 0x20; c++) {
		snprintf(s, sizeof(s), "x%cy", c);
		check_refused(s, "control character");
	}
	/* a NUL cuts the string: what is left is checked as it is */
	check_ok("ab\0/../x");
}

static void
test_check_backslash(void **state)
{
	(void)state;
	check_refused("a\\b", "'a\\x5cb': backslash at byte 1");
	check_refused("..\\etc\\passwd", "backslash at byte 2");
	check_refused("\\", "backslash");
}

static void
test_check_lengths(void **state)
{
	char name[300], path[5000];
	size_t i;

	(void)state;
	/* a component of 255 bytes is fine, 256 is not */
	memset(name, 'n', 255);
	name[255] = '\0';
	check_ok(name);
	snprintf(path, sizeof(path), "dir/%s/x", name);
	check_ok(path);
	memset(name, 'n', 256);
	name[256] = '\0';
	check_refused(name, "component longer than 255 bytes (256)");
	snprintf(path, sizeof(path), "dir/%s", name);
	check_refused(path, "component longer than 255 bytes");

	/* 4095 bytes in components of 99 bytes and slashes is fine, 4096 is not */
	for (i = 0; i < 4095; i++)
		path[i] = i % 100 == 99 ? '/' : 'p';
	path[4095] = '\0';
	assert_true(path[4094] != '/');
	check_ok(path);
	path[4095] = 'q';
	path[4096] = '\0';
	check_refused(path, "longer than 4095 bytes (4096)");
	/* the message quotes a long path shortened */
	{
		char err[512];

		assert_int_equal(path_check(path, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "...': longer than"));
		assert_true(strlen(err) < 200);
	}
}

static void
test_check_state_dir(void **state)
{
	(void)state;
	check_refused(".repctl", "'.repctl': inside the folder's own state directory");
	check_refused(".repctl/state.db", "state directory '.repctl'");
	check_refused(".repctl/a/b/c", "state directory");
	check_refused(".REPCTL/x", "state directory");
	check_refused(".RepCtl", "state directory");
	/* only at the root, and only that exact name */
	check_ok("x/.repctl");
	check_ok("x/.repctl/state.db");
	check_ok(".repctl2");
	check_ok(".repctl.bak/x");
	check_ok("repctl");
	check_ok("_repctl/x");
}

static void
test_check_ok(void **state)
{
	static const char *const good[] = {
		"a",
		"a/b/c",
		"file.flac",
		"Artist/Album (2001)/01 - Track one.flac",
		"a b/c d",
		" leading and trailing space ",
		"Ünïcödé/Björk/Jóga.mp3",
		"日本語/アルバム/曲.flac",
		"emoji 🎵/x",
		"\xff\xfe bytes that are not UTF-8",
		".hidden",
		".git/config",
		"...",
		"..a",
		"a..",
		"a/..b/c",
		".../x",
		"~",
		"-rf",
		"a:b*c?d\"e<f>g|h",
		"#'$%&()+,;=@[]^`{}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		check_ok(good[i]);
}

/* A short err buffer gets a truncated, terminated message. */
static void
test_check_short_err(void **state)
{
	char err[8];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(path_check("/abs", err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(path_check("/abs", err, 0), -1);
}

/* ---- path_resolve ---- */

struct tree {
	char top[256];     /* the temporary directory */
	char root[300];    /* top/root: the folder */
	char outside[300]; /* top/outside: a directory beside it */
};

static void
make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0)
		fail_msg("mkdir '%s' failed", path);
}

static void
make_file(const char *root, const char *rel)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	if (f == NULL)
		fail_msg("cannot create '%s'", path);
	fputs("data\n", f);
	fclose(f);
}

static void
make_link(const char *root, const char *rel, const char *target)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (symlink(target, path) != 0)
		fail_msg("symlink '%s' failed", path);
}

static int
tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	const char *tmp = getenv("TMPDIR");
	char p[600];

	if (t == NULL)
		return -1;
	snprintf(t->top, sizeof(t->top), "%s/test_fs_path.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(t->top) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->root, sizeof(t->root), "%s/root", t->top);
	snprintf(t->outside, sizeof(t->outside), "%s/outside", t->top);
	make_dir(t->root);
	make_dir(t->outside);
	make_file(t->outside, "secret");
	snprintf(p, sizeof(p), "%s/dir", t->root);
	make_dir(p);
	snprintf(p, sizeof(p), "%s/dir/sub", t->root);
	make_dir(p);
	snprintf(p, sizeof(p), "%s/.repctl", t->root);
	make_dir(p);
	make_file(t->root, ".repctl/state");
	make_file(t->root, "dir/file");
	make_file(t->root, "plain");
	make_link(t->root, "etc", "/etc");
	make_link(t->root, "up", "../outside");
	make_link(t->root, "up2", "dir/../../outside/secret");
	make_link(t->root, "dir/ok", "../dir/file");
	make_link(t->root, "dir/sub/ok2", "../../plain");
	make_link(t->root, "dir/self", ".");
	make_link(t->root, "toroot", "dir/..");
	make_link(t->root, "linkdir", "dir");
	make_link(t->root, "chain", "etc/passwd");
	make_link(t->root, "chain2", "dir/ok");
	make_link(t->root, "state", ".repctl/state");
	make_link(t->root, "dangling", "not/yet");
	make_link(t->root, "loop1", "loop2");
	make_link(t->root, "loop2", "loop1");
	*state = t;
	return 0;
}

static int
tree_teardown(void **state)
{
	struct tree *t = *state;
	char cmd[600];
	int rc;

	/* the path comes from mkdtemp above and holds no quote */
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", t->top);
	rc = system(cmd);
	free(t);
	return rc == 0 ? 0 : -1;
}

/* rel resolves under root to root "/" rel. */
static void
resolve_ok(const char *root, const char *rel)
{
	char err[1024] = "", want[5000];
	char *out = (char *)"unset";

	if (path_resolve(root, rel, &out, err, sizeof(err)) != 0)
		fail_msg("path_resolve refused '%s': %s", rel, err);
	snprintf(want, sizeof(want), "%s/%s", root, rel);
	assert_string_equal(out, want);
	free(out);
}

/* rel is refused with a message containing want; *out is NULL. */
static void
resolve_refused(const char *root, const char *rel, const char *want)
{
	char err[1024] = "";
	char *out = (char *)"unset";

	if (path_resolve(root, rel, &out, err, sizeof(err)) != -1) {
		free(out);
		fail_msg("path_resolve accepted '%s'", rel);
	}
	assert_null(out);
	if (strstr(err, want) == NULL)
		fail_msg("message for '%s' is '%s', want it to contain '%s'", rel, err, want);
	assert_int_equal(path_resolve(root, rel, &out, NULL, 0), -1);
	assert_null(out);
}

static void
test_resolve_plain(void **state)
{
	struct tree *t = *state;

	resolve_ok(t->root, "plain");
	resolve_ok(t->root, "dir");
	resolve_ok(t->root, "dir/file");
	resolve_ok(t->root, "dir/sub");
}

static void
test_resolve_missing(void **state)
{
	struct tree *t = *state;

	resolve_ok(t->root, "new");
	resolve_ok(t->root, "new/sub/file.flac");
	resolve_ok(t->root, "dir/missing/x");
	resolve_ok(t->root, "dir/sub/new file");
	resolve_ok(t->root, "Ünïcödé/日本語.flac");
	/* nothing exists below a regular file: the walk ends there */
	resolve_ok(t->root, "plain/x/y");
}

static void
test_resolve_lexical(void **state)
{
	struct tree *t = *state;

	/* path_check runs first */
	resolve_refused(t->root, "../outside/secret", "'..' component");
	resolve_refused(t->root, "/etc/passwd", "absolute path");
	resolve_refused(t->root, ".repctl/state", "state directory");
	resolve_refused(t->root, "", "empty path");
}

static void
test_resolve_symlink_outside(void **state)
{
	struct tree *t = *state;

	resolve_refused(t->root, "etc", "'etc': symlink 'etc' points to absolute path '/etc'");
	resolve_refused(t->root, "up", "symlink 'up' -> '../outside' leaves the folder");
	resolve_refused(t->root, "up2", "symlink 'up2' -> 'dir/../../outside/secret' leaves");
	/* and nothing is reached through them */
	resolve_refused(t->root, "etc/passwd", "symlink 'etc' in the middle of the path");
	resolve_refused(t->root, "up/secret", "symlink 'up' in the middle");
	resolve_refused(t->root, "etc/new", "in the middle");
}

static void
test_resolve_symlink_inside(void **state)
{
	struct tree *t = *state;

	/* a final symlink staying inside is allowed, the path itself is returned */
	resolve_ok(t->root, "dir/ok");
	resolve_ok(t->root, "dir/sub/ok2");
	resolve_ok(t->root, "dir/self");
	resolve_ok(t->root, "toroot");
	resolve_ok(t->root, "chain2");
	/* a dangling link inside: its target does not exist yet */
	resolve_ok(t->root, "dangling");
}

static void
test_resolve_symlink_middle(void **state)
{
	struct tree *t = *state;

	/* a symlinked directory, even one inside the folder, is not followed */
	resolve_refused(t->root, "linkdir/file", "symlink 'linkdir' in the middle of the path");
	resolve_refused(t->root, "linkdir/new/x", "in the middle");
	resolve_refused(t->root, "dir/self/file", "symlink 'dir/self' in the middle");
	resolve_refused(t->root, "dangling/x", "in the middle");
	/* but the link itself, as a final component, stays inside */
	resolve_ok(t->root, "linkdir");
}

static void
test_resolve_symlink_chains(void **state)
{
	struct tree *t = *state;

	/* lexically inside, but through a link that leaves */
	resolve_refused(t->root, "chain",
	    "'chain': symlink 'chain' -> 'etc/passwd': symlink 'etc' in the middle of the path");
	/* into the folder's own state */
	resolve_refused(t->root, "state",
	    "'state': symlink 'state' -> '.repctl/state': unsafe path '.repctl/state': inside");
	resolve_refused(t->root, "loop1", "more than 40 symlinks");
}

static void
test_resolve_root(void **state)
{
	struct tree *t = *state;
	char root[600], err[1024];
	char *out = (char *)"unset";

	/* a trailing slash on root is not doubled */
	snprintf(root, sizeof(root), "%s/", t->root);
	assert_int_equal(path_resolve(root, "dir/file", &out, err, sizeof(err)), 0);
	snprintf(root, sizeof(root), "%s/dir/file", t->root);
	assert_string_equal(out, root);
	free(out);

	snprintf(root, sizeof(root), "%s/missing", t->top);
	assert_int_equal(path_resolve(root, "a", &out, err, sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "folder root '"));
	assert_non_null(strstr(err, "No such file or directory"));

	snprintf(root, sizeof(root), "%s/plain", t->root);
	assert_int_equal(path_resolve(root, "a", &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a directory"));

	assert_int_equal(path_resolve("", "a", &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty folder root"));
	assert_int_equal(path_resolve(NULL, "a", &out, err, sizeof(err)), -1);
	assert_null(out);
}

/* ---- ignore patterns ---- */

static void
expect_ignored(const struct ignore *ig, const char *rel, int is_dir, int want)
{
	if (ignore_match(ig, rel, is_dir) != want)
		fail_msg("ignore_match('%s', %s) = %d, want %d", rel, is_dir ? "dir" : "file",
		    !want, want);
}

static void
test_ignore_dir_pattern(void **state)
{
	struct ignore *ig = ignore_new("tmp/");

	(void)state;
	expect_ignored(ig, "tmp", 1, 1);
	expect_ignored(ig, "tmp/a", 0, 1);
	expect_ignored(ig, "tmp/a/b/c", 0, 1);
	expect_ignored(ig, "x/tmp/b", 0, 1);
	expect_ignored(ig, "x/tmp", 1, 1);
	expect_ignored(ig, "x/y/tmp/z", 1, 1);
	/* a file named tmp is not a directory */
	expect_ignored(ig, "tmp", 0, 0);
	expect_ignored(ig, "x/tmp", 0, 0);
	/* the whole name, not a prefix or a suffix */
	expect_ignored(ig, "tmpfile", 0, 0);
	expect_ignored(ig, "tmpdir", 1, 0);
	expect_ignored(ig, "tmpdir/a", 0, 0);
	expect_ignored(ig, "mytmp/a", 0, 0);
	expect_ignored(ig, "x/tmp.txt", 0, 0);
	ignore_free(ig);
}

static void
test_ignore_glob(void **state)
{
	struct ignore *ig = ignore_new("*.part");

	(void)state;
	expect_ignored(ig, "b.part", 0, 1);
	expect_ignored(ig, "a/b.part", 0, 1);
	expect_ignored(ig, "a/b/c d.part", 0, 1);
	expect_ignored(ig, ".part", 0, 1);
	/* a directory matching it takes everything below */
	expect_ignored(ig, "x.part", 1, 1);
	expect_ignored(ig, "x.part/y.flac", 0, 1);
	expect_ignored(ig, "a/b.partial", 0, 0);
	expect_ignored(ig, "part", 0, 0);
	expect_ignored(ig, "a/b.flac", 0, 0);
	ignore_free(ig);

	ig = ignore_new("~*,.DS_Store,?.tmp,[0-9][0-9].log");
	expect_ignored(ig, "a/~lock.flac", 0, 1);
	expect_ignored(ig, "Music/.DS_Store", 0, 1);
	expect_ignored(ig, "x/a.tmp", 0, 1);
	expect_ignored(ig, "x/ab.tmp", 0, 0);
	expect_ignored(ig, "12.log", 0, 1);
	expect_ignored(ig, "1a.log", 0, 0);
	expect_ignored(ig, "a~b", 0, 0);
	ignore_free(ig);
}

static void
test_ignore_anchored(void **state)
{
	struct ignore *ig = ignore_new("/build, docs/draft");

	(void)state;
	expect_ignored(ig, "build", 1, 1);
	expect_ignored(ig, "build", 0, 1);
	expect_ignored(ig, "build/x.o", 0, 1);
	expect_ignored(ig, "src/build", 1, 0);
	expect_ignored(ig, "src/build/x.o", 0, 0);
	expect_ignored(ig, "builds", 1, 0);
	expect_ignored(ig, "docs/draft", 0, 1);
	expect_ignored(ig, "docs/draft", 1, 1);
	expect_ignored(ig, "docs/draft/a.md", 0, 1);
	expect_ignored(ig, "x/docs/draft", 0, 0);
	expect_ignored(ig, "docs/drafts", 0, 0);
	expect_ignored(ig, "docs", 1, 0);
	expect_ignored(ig, "docs/final", 0, 0);
	ignore_free(ig);

	/* anchored globs do not cross '/', anchored directory patterns */
	ig = ignore_new("docs/*.tmp,/cache/,a/*/c");
	expect_ignored(ig, "docs/x.tmp", 0, 1);
	expect_ignored(ig, "docs/sub/x.tmp", 0, 0);
	expect_ignored(ig, "cache", 1, 1);
	expect_ignored(ig, "cache/x", 0, 1);
	expect_ignored(ig, "cache", 0, 0);
	expect_ignored(ig, "x/cache/y", 0, 0);
	expect_ignored(ig, "a/b/c", 0, 1);
	expect_ignored(ig, "a/b/c/d", 0, 1);
	expect_ignored(ig, "a/b/b/c", 0, 0);
	ignore_free(ig);
}

static void
test_ignore_list(void **state)
{
	struct ignore *ig;

	(void)state;
	/* the defaults the design names */
	ig = ignore_new("tmp/,log/,.git/,*.part");
	expect_ignored(ig, "log/x", 0, 1);
	expect_ignored(ig, "a/.git/HEAD", 0, 1);
	expect_ignored(ig, ".git", 1, 1);
	expect_ignored(ig, ".gitignore", 0, 0);
	expect_ignored(ig, "tmp/a.part", 0, 1);
	expect_ignored(ig, "Artist/Album/01.flac", 0, 0);
	expect_ignored(ig, "logs/x", 0, 0);
	ignore_free(ig);

	/* blanks and empty items, a lone "/" */
	ig = ignore_new(" tmp/ ,, ,\t*.part\t,/,");
	expect_ignored(ig, "tmp/a", 0, 1);
	expect_ignored(ig, "a.part", 0, 1);
	expect_ignored(ig, "a", 0, 0);
	expect_ignored(ig, "a", 1, 0);
	ignore_free(ig);
}

static void
test_ignore_empty(void **state)
{
	static const char *const lists[] = { NULL, "", ",", " , ,", "/", "//" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		struct ignore *ig = ignore_new(lists[i]);

		assert_non_null(ig);
		expect_ignored(ig, "a", 0, 0);
		expect_ignored(ig, "a", 1, 0);
		expect_ignored(ig, "tmp/a", 0, 0);
		expect_ignored(ig, "x/y/z.part", 0, 0);
		expect_ignored(ig, "", 0, 0);
		ignore_free(ig);
	}
	expect_ignored(NULL, "a", 0, 0);
	ignore_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_empty_absolute),
		cmocka_unit_test(test_check_dot_components),
		cmocka_unit_test(test_check_empty_components),
		cmocka_unit_test(test_check_control_chars),
		cmocka_unit_test(test_check_backslash),
		cmocka_unit_test(test_check_lengths),
		cmocka_unit_test(test_check_state_dir),
		cmocka_unit_test(test_check_ok),
		cmocka_unit_test(test_check_short_err),
		cmocka_unit_test_setup_teardown(test_resolve_plain, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_missing, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_lexical, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_symlink_outside, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_symlink_inside, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_symlink_middle, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(
		    test_resolve_symlink_chains, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_resolve_root, tree_setup, tree_teardown),
		cmocka_unit_test(test_ignore_dir_pattern),
		cmocka_unit_test(test_ignore_glob),
		cmocka_unit_test(test_ignore_anchored),
		cmocka_unit_test(test_ignore_list),
		cmocka_unit_test(test_ignore_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

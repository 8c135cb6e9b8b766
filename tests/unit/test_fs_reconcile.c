/*
 * test_fs_reconcile.c - the per-path decision and conflict copy names
 * (src/files/fs_reconcile.c).
 *
 * Every rule of reconcile() case by case: no entries, one side without an
 * entry (a file, a tombstone), equal vectors, one vector dominating (copy,
 * delete, undelete, tombstone over tombstone), concurrent vectors with the
 * same content (hash and size, or two tombstones), delete against edit, and
 * edit against edit (newer mtime, equal mtimes broken by node name, then by
 * size).  Each case runs under the folder types that matter, with send-only
 * and receive-only in both positions, and every check also runs with A and
 * B swapped, wanting the mirrored action.  A short history (create, copy,
 * edit, delete, recreate) checks that deletions do not come back.
 *
 * conflict_name(): with and without an extension, a dotfile, a double
 * extension, dots in a directory name, nested directories, an empty
 * extension, fixed timestamps (the epoch, before it, a leap day), an unsafe
 * or missing node name, and a long name shortened on a UTF-8 boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs_path.h"
#include "fs_reconcile.h"

#define SR FT_SEND_RECEIVE
#define SO FT_SEND_ONLY
#define RO FT_RECEIVE_ONLY

/* One side's version of the path, as the test writes it. */
struct ver {
	int present;
	int deleted;
	const char *vv; /* JSON */
	const char *hash;
	int64_t size;
	int64_t mtime_ns;
};

#define LIVE(v, h, sz, mt) (&(const struct ver){ 1, 0, (v), (h), (sz), (mt) })
#define TOMB(v) (&(const struct ver){ 1, 1, (v), NULL, 0, 0 })
#define ABSENT (&(const struct ver){ 0, 0, NULL, NULL, 0, 0 })

static const char *const type_names[] = {
	[FT_SEND_RECEIVE] = "send-receive",
	[FT_SEND_ONLY] = "send-only",
	[FT_RECEIVE_ONLY] = "receive-only",
};

static enum fs_action
mirror(enum fs_action x)
{
	switch (x) {
	case FA_CONFLICT_A: return FA_CONFLICT_B;
	case FA_CONFLICT_B: return FA_CONFLICT_A;
	case FA_COPY_A_TO_B: return FA_COPY_B_TO_A;
	case FA_COPY_B_TO_A: return FA_COPY_A_TO_B;
	case FA_DELETE_ON_B: return FA_DELETE_ON_A;
	case FA_DELETE_ON_A: return FA_DELETE_ON_B;
	case FA_NONE:
	case FA_MERGE_VV: break;
	}
	return x;
}

static void
entry_make(const struct ver *v, struct vv *vec, struct fs_entry *e)
{
	if (vv_parse(v->vv, vec) != 0)
		fail_msg("bad vector '%s' in the test", v->vv);
	memset(e, 0, sizeof(*e));
	e->path = "Artist/Album/01 Track.flac";
	e->present = v->present;
	e->deleted = v->deleted;
	e->size = v->size;
	e->mtime_ns = v->mtime_ns;
	e->mode = 0644;
	e->hash = v->hash;
	e->vv = vec;
}

/*
 * reconcile() between node na (type ta, version va) as A and nb (tb, vb) as
 * B is want, and with the sides swapped it is the mirror of want.
 */
static void
expect_nodes(const char *na, enum folder_type ta, const struct ver *va, const char *nb,
    enum folder_type tb, const struct ver *vb, enum fs_action want)
{
	struct fs_side a = { na, ta }, b = { nb, tb };
	struct fs_entry ea, eb;
	struct vv veca, vecb;
	enum fs_action got, swapped;

	entry_make(va, &veca, &ea);
	entry_make(vb, &vecb, &eb);
	got = reconcile(&a, &ea, &b, &eb);
	swapped = reconcile(&b, &eb, &a, &ea);
	vv_free(&veca);
	vv_free(&vecb);
	if (got != want)
		fail_msg("A %s %s %s, B %s %s %s: got %s, want %s", na, type_names[ta],
		    va->vv ? va->vv : "-", nb, type_names[tb], vb->vv ? vb->vv : "-",
		    fs_action_names[got], fs_action_names[want]);
	if (swapped != mirror(want))
		fail_msg("swapped, A %s %s, B %s %s: got %s, want %s", nb, type_names[tb], na,
		    type_names[ta], fs_action_names[swapped], fs_action_names[mirror(want)]);
}

static void
expect(enum folder_type ta, const struct ver *va, enum folder_type tb, const struct ver *vb,
    enum fs_action want)
{
	expect_nodes("alpha", ta, va, "beta", tb, vb, want);
}

/* The same want under every pair of folder types. */
static void
expect_all_types(const struct ver *va, const struct ver *vb, enum fs_action want)
{
	int ta, tb;

	for (ta = SR; ta <= RO; ta++)
		for (tb = SR; tb <= RO; tb++)
			expect(ta, va, tb, vb, want);
}

/* ---- names ---- */

static void
test_action_names(void **state)
{
	int i, j;

	(void)state;
	assert_string_equal(fs_action_names[FA_NONE], "none");
	assert_string_equal(fs_action_names[FA_CONFLICT_A], "conflict_a");
	assert_string_equal(fs_action_names[FA_CONFLICT_B], "conflict_b");
	assert_string_equal(fs_action_names[FA_COPY_A_TO_B], "copy_a_to_b");
	assert_string_equal(fs_action_names[FA_COPY_B_TO_A], "copy_b_to_a");
	assert_string_equal(fs_action_names[FA_DELETE_ON_B], "delete_on_b");
	assert_string_equal(fs_action_names[FA_DELETE_ON_A], "delete_on_a");
	assert_string_equal(fs_action_names[FA_MERGE_VV], "merge_vv");
	for (i = FA_NONE; i <= FA_MERGE_VV; i++)
		for (j = i + 1; j <= FA_MERGE_VV; j++)
			assert_true(strcmp(fs_action_names[i], fs_action_names[j]) != 0);
	/* execution order: conflict copies, then copies, then deletes */
	assert_true(FA_CONFLICT_A < FA_COPY_A_TO_B && FA_CONFLICT_B < FA_COPY_B_TO_A);
	assert_true(FA_COPY_A_TO_B < FA_DELETE_ON_B && FA_COPY_B_TO_A < FA_DELETE_ON_A);
}

/* ---- rule 1 and 2: missing entries ---- */

static void
test_both_absent(void **state)
{
	struct fs_side a = { "alpha", SR }, b = { "beta", SR };

	(void)state;
	expect_all_types(ABSENT, ABSENT, FA_NONE);
	assert_int_equal(reconcile(&a, NULL, &b, NULL), FA_NONE);
}

static void
test_one_absent(void **state)
{
	const struct ver *f = LIVE("{\"alpha\": 1}", "h1", 10, 100);

	(void)state;
	expect(SR, f, SR, ABSENT, FA_COPY_A_TO_B);
	expect(SR, ABSENT, SR, f, FA_COPY_B_TO_A);
	/* a tombstone for a path the other side never had: nothing to delete */
	expect_all_types(TOMB("{\"alpha\": 2}"), ABSENT, FA_NONE);
	/* a NULL entry is the same as one that is not present */
	{
		struct fs_side a = { "alpha", SR }, b = { "beta", SR };
		struct fs_entry ea;
		struct vv v;

		entry_make(f, &v, &ea);
		assert_int_equal(reconcile(&a, &ea, &b, NULL), FA_COPY_A_TO_B);
		assert_int_equal(reconcile(&b, NULL, &a, &ea), FA_COPY_B_TO_A);
		vv_free(&v);
	}
}

static void
test_one_absent_types(void **state)
{
	const struct ver *f = LIVE("{\"alpha\": 1}", "h1", 10, 100);

	(void)state;
	/* the receiver is send-only: it takes nothing in */
	expect(SR, f, SO, ABSENT, FA_NONE);
	expect(SO, f, SO, ABSENT, FA_NONE);
	expect(RO, f, SO, ABSENT, FA_NONE);
	/* the sender is receive-only: its local files are not sent */
	expect(RO, f, SR, ABSENT, FA_NONE);
	expect(RO, f, RO, ABSENT, FA_NONE);
	/* anything else flows */
	expect(SO, f, SR, ABSENT, FA_COPY_A_TO_B);
	expect(SO, f, RO, ABSENT, FA_COPY_A_TO_B);
	expect(SR, f, RO, ABSENT, FA_COPY_A_TO_B);
}

/* ---- rule 3: equal vectors ---- */

static void
test_equal(void **state)
{
	(void)state;
	expect_all_types(
	    LIVE("{\"alpha\": 1}", "h1", 10, 100), LIVE("{\"alpha\": 1}", "h1", 10, 100), FA_NONE);
	expect_all_types(
	    TOMB("{\"alpha\": 2, \"beta\": 1}"), TOMB("{\"beta\": 1, \"alpha\": 2}"), FA_NONE);
	/* the vector decides, not the metadata (a zero counter is no counter) */
	expect_all_types(LIVE("{\"alpha\": 1, \"beta\": 0}", "h1", 10, 100),
	    LIVE("{\"alpha\": 1}", "h1", 10, 999), FA_NONE);
	expect_all_types(LIVE(NULL, "h1", 10, 100), LIVE("{}", "h2", 20, 200), FA_NONE);
}

/* ---- rule 4: one vector dominates ---- */

static void
test_dominates(void **state)
{
	const struct ver *old = LIVE("{\"alpha\": 1}", "h1", 10, 100);
	const struct ver *edited = LIVE("{\"alpha\": 1, \"beta\": 1}", "h2", 12, 200);
	const struct ver *deleted = TOMB("{\"alpha\": 1, \"beta\": 1}");

	(void)state;
	expect(SR, edited, SR, old, FA_COPY_A_TO_B);
	expect(SR, old, SR, edited, FA_COPY_B_TO_A);
	expect(SR, deleted, SR, old, FA_DELETE_ON_B);
	expect(SR, old, SR, deleted, FA_DELETE_ON_A);
	/* a file recreated after a delete it has seen: copied over the tombstone */
	expect(SR, LIVE("{\"alpha\": 2, \"beta\": 1}", "h3", 5, 300), SR, deleted, FA_COPY_A_TO_B);
	/* the newer version wins even with an older mtime or the same content */
	expect(SR, LIVE("{\"alpha\": 2}", "h2", 12, 50), SR, old, FA_COPY_A_TO_B);
	expect(SR, LIVE("{\"alpha\": 2}", "h1", 10, 100), SR, old, FA_COPY_A_TO_B);
	/* a missing vector is the empty one, dominated by any other */
	expect(SR, old, SR, LIVE(NULL, "h0", 1, 1), FA_COPY_A_TO_B);
}

static void
test_dominates_tombstones(void **state)
{
	(void)state;
	/* nothing to delete: the older tombstone just takes the newer vector */
	expect_all_types(
	    TOMB("{\"alpha\": 2, \"beta\": 1}"), TOMB("{\"alpha\": 1, \"beta\": 1}"), FA_MERGE_VV);
	expect_all_types(TOMB("{\"alpha\": 1}"), TOMB("{\"alpha\": 1, \"beta\": 3}"), FA_MERGE_VV);
}

static void
test_dominates_types(void **state)
{
	const struct ver *old = LIVE("{\"alpha\": 1}", "h1", 10, 100);
	const struct ver *edited = LIVE("{\"alpha\": 1, \"beta\": 1}", "h2", 12, 200);
	const struct ver *deleted = TOMB("{\"alpha\": 1, \"beta\": 1}");
	int t;

	(void)state;
	for (t = SR; t <= RO; t++) {
		/* nothing flows into a send-only side */
		expect(t, edited, SO, old, FA_NONE);
		expect(t, deleted, SO, old, FA_NONE);
		/* nothing flows out of a receive-only side */
		expect(RO, edited, t, old, FA_NONE);
		expect(RO, deleted, t, old, FA_NONE);
	}
	/* everything else flows */
	expect(SO, edited, SR, old, FA_COPY_A_TO_B);
	expect(SO, deleted, SR, old, FA_DELETE_ON_B);
	expect(SO, edited, RO, old, FA_COPY_A_TO_B);
	expect(SO, deleted, RO, old, FA_DELETE_ON_B);
	expect(SR, edited, RO, old, FA_COPY_A_TO_B);
	expect(SR, deleted, RO, old, FA_DELETE_ON_B);
	/* the dominated side's type does not hold back the newer version */
	expect(SR, old, SO, edited, FA_COPY_B_TO_A);
	expect(RO, old, SR, edited, FA_COPY_B_TO_A);
	expect(RO, old, SO, deleted, FA_DELETE_ON_A);
}

/* ---- rule 5: concurrent, same content ---- */

static void
test_concurrent_same(void **state)
{
	(void)state;
	/* the same file made on both sides, at different times */
	expect_all_types(LIVE("{\"alpha\": 1}", "h1", 10, 100),
	    LIVE("{\"beta\": 1}", "h1", 10, 900), FA_MERGE_VV);
	/* both deleted it */
	expect_all_types(
	    TOMB("{\"alpha\": 2, \"beta\": 1}"), TOMB("{\"alpha\": 1, \"beta\": 2}"), FA_MERGE_VV);
	/* the same hash with another size is not the same content */
	expect(SR, LIVE("{\"alpha\": 1}", "h1", 10, 100), SR, LIVE("{\"beta\": 1}", "h1", 11, 90),
	    FA_CONFLICT_B);
	/* no hash is never the same content */
	expect(SR, LIVE("{\"alpha\": 1}", NULL, 10, 100), SR, LIVE("{\"beta\": 1}", NULL, 10, 90),
	    FA_CONFLICT_B);
}

/* ---- rule 6: concurrent, delete against edit ---- */

static void
test_delete_edit(void **state)
{
	const struct ver *deleted = TOMB("{\"alpha\": 2, \"beta\": 1}");
	const struct ver *edited = LIVE("{\"alpha\": 1, \"beta\": 2}", "h2", 12, 50);

	(void)state;
	/* the edit wins, whatever the times: nothing is lost */
	expect(SR, deleted, SR, edited, FA_COPY_B_TO_A);
	expect(SR, edited, SR, deleted, FA_COPY_A_TO_B);
	/* the deleting side is send-only: it takes nothing in */
	expect(SO, deleted, SR, edited, FA_NONE);
	expect(SO, deleted, SO, edited, FA_NONE);
	/* the editing side is receive-only: its edit is not sent */
	expect(SR, deleted, RO, edited, FA_NONE);
	expect(RO, deleted, RO, edited, FA_NONE);
	/* a send-only side's edit is sent */
	expect(SR, deleted, SO, edited, FA_COPY_B_TO_A);
	expect(RO, deleted, SO, edited, FA_COPY_B_TO_A);
	/* a receive-only side that deleted receives the edit */
	expect(RO, deleted, SR, edited, FA_COPY_B_TO_A);
	/* neither flows: a receive-only edit is not sent, a send-only side takes nothing */
	expect(SO, deleted, RO, edited, FA_NONE);
}

/* ---- rule 7: concurrent edits ---- */

static void
test_conflict_mtime(void **state)
{
	const struct ver *older = LIVE("{\"alpha\": 2, \"beta\": 1}", "h1", 10, 1000);
	const struct ver *newer = LIVE("{\"alpha\": 1, \"beta\": 2}", "h2", 10, 2000);

	(void)state;
	/* the newer mtime keeps the name; the other is moved aside */
	expect(SR, newer, SR, older, FA_CONFLICT_B);
	expect(SR, older, SR, newer, FA_CONFLICT_A);
	/* by a nanosecond, and whatever the node names */
	expect_nodes("zulu", SR, LIVE("{\"zulu\": 1}", "h1", 10, 1001), "alpha", SR,
	    LIVE("{\"alpha\": 1}", "h2", 10, 1000), FA_CONFLICT_B);
	/* whatever the sizes */
	expect(SR, LIVE("{\"alpha\": 1}", "h1", 1, 2000), SR, LIVE("{\"beta\": 1}", "h2", 99, 1000),
	    FA_CONFLICT_B);
	/* mtimes before the epoch compare as numbers */
	expect(SR, LIVE("{\"alpha\": 1}", "h1", 1, -5), SR, LIVE("{\"beta\": 1}", "h2", 1, -10),
	    FA_CONFLICT_B);
}

static void
test_conflict_tie(void **state)
{
	const struct ver *x = LIVE("{\"alpha\": 1}", "h1", 10, 1000);
	const struct ver *y = LIVE("{\"beta\": 1}", "h2", 10, 1000);

	(void)state;
	/* equal mtimes: the smaller node name keeps the name */
	expect_nodes("alpha", SR, x, "beta", SR, y, FA_CONFLICT_B);
	expect_nodes("beta", SR, x, "alpha", SR, y, FA_CONFLICT_A);
	expect_nodes("node10", SR, x, "node9", SR, y, FA_CONFLICT_B);
	expect_nodes("Zed", SR, x, "abe", SR, y, FA_CONFLICT_B);
	/* equal node names (a misconfiguration): still deterministic, by size */
	expect_nodes("same", SR, LIVE("{\"a\": 1}", "h1", 20, 1000), "same", SR,
	    LIVE("{\"b\": 1}", "h2", 10, 1000), FA_CONFLICT_B);
	/* then by hash */
	expect_nodes("same", SR, LIVE("{\"a\": 1}", "h2", 10, 1000), "same", SR,
	    LIVE("{\"b\": 1}", "h1", 10, 1000), FA_CONFLICT_B);
}

static void
test_conflict_types(void **state)
{
	const struct ver *older = LIVE("{\"alpha\": 2, \"beta\": 1}", "h1", 10, 1000);
	const struct ver *newer = LIVE("{\"alpha\": 1, \"beta\": 2}", "h2", 10, 2000);

	(void)state;
	/* a send-only side's version keeps the name, even the older one */
	expect(SO, older, SR, newer, FA_CONFLICT_B);
	expect(SO, newer, SR, older, FA_CONFLICT_B);
	expect(SR, newer, SO, older, FA_CONFLICT_A);
	expect(SO, older, RO, newer, FA_CONFLICT_B);
	/* a receive-only side's version is moved aside, even the newer one */
	expect(RO, newer, SR, older, FA_CONFLICT_A);
	expect(RO, older, SR, newer, FA_CONFLICT_A);
	expect(SR, older, RO, newer, FA_CONFLICT_B);
	expect(RO, newer, SO, older, FA_CONFLICT_A);
	/* nothing can flow either way: left as they are */
	expect(SO, newer, SO, older, FA_NONE);
	expect(RO, newer, RO, older, FA_NONE);
	/* send-receive on both sides: the newer mtime */
	expect(SR, older, SR, newer, FA_CONFLICT_A);
}

/* ---- a history ---- */

/*
 * One path through create, copy, edit, delete and recreate, each step's
 * vectors as the scanner and the transfer would leave them.  A delete
 * propagates and, once both sides hold it, nothing brings the file back.
 */
static void
test_history(void **state)
{
	(void)state;
	/* alpha creates the file; beta has never seen it */
	expect(SR, LIVE("{\"alpha\": 1}", "h1", 10, 100), SR, ABSENT, FA_COPY_A_TO_B);
	/* after the copy both hold the same version */
	expect(SR, LIVE("{\"alpha\": 1}", "h1", 10, 100), SR, LIVE("{\"alpha\": 1}", "h1", 10, 100),
	    FA_NONE);
	/* beta edits it */
	expect(SR, LIVE("{\"alpha\": 1}", "h1", 10, 100), SR,
	    LIVE("{\"alpha\": 1, \"beta\": 1}", "h2", 11, 200), FA_COPY_B_TO_A);
	/* alpha, having received the edit, deletes the file */
	expect(SR, TOMB("{\"alpha\": 2, \"beta\": 1}"), SR,
	    LIVE("{\"alpha\": 1, \"beta\": 1}", "h2", 11, 200), FA_DELETE_ON_B);
	/* after the delete both hold the tombstone: a rerun does nothing */
	expect(SR, TOMB("{\"alpha\": 2, \"beta\": 1}"), SR, TOMB("{\"alpha\": 2, \"beta\": 1}"),
	    FA_NONE);
	/* the old version turning up again (a stale index) does not undo the delete */
	expect(SR, TOMB("{\"alpha\": 2, \"beta\": 1}"), SR,
	    LIVE("{\"alpha\": 1, \"beta\": 1}", "h2", 11, 200), FA_DELETE_ON_B);
	/* beta recreates the file after seeing the delete: it comes back as new */
	expect(SR, TOMB("{\"alpha\": 2, \"beta\": 1}"), SR,
	    LIVE("{\"alpha\": 2, \"beta\": 2}", "h3", 5, 400), FA_COPY_B_TO_A);
}

/* ---- conflict_name ---- */

#define T0 1700000000 /* 2023-11-14 22:13:20 UTC */

static void
expect_name(const char *path, int64_t when, const char *node, const char *want)
{
	char *got = conflict_name(path, when, node);

	if (strcmp(got, want) != 0)
		fail_msg("conflict_name('%s', %lld, %s) = '%s', want '%s'", path, (long long)when,
		    node ? node : "NULL", got, want);
	free(got);
}

static void
test_conflict_name(void **state)
{
	(void)state;
	expect_name("song.flac", T0, "node1", "song.sync-conflict-20231114-221320-node1.flac");
	expect_name("README", T0, "node1", "README.sync-conflict-20231114-221320-node1");
	/* a dotfile has no extension; a dot later in it does */
	expect_name(".bashrc", T0, "laptop", ".bashrc.sync-conflict-20231114-221320-laptop");
	expect_name(
	    ".config.yml", T0, "laptop", ".config.sync-conflict-20231114-221320-laptop.yml");
	/* only the last extension */
	expect_name("a.tar.gz", T0, "n", "a.tar.sync-conflict-20231114-221320-n.gz");
	/* an empty extension after a final dot */
	expect_name("a.", T0, "n", "a.sync-conflict-20231114-221320-n.");
	/* nested directories are kept; their dots are not extensions */
	expect_name("Music/Artist/Album/01 Song.flac", T0, "primary",
	    "Music/Artist/Album/01 Song.sync-conflict-20231114-221320-primary.flac");
	expect_name(
	    "dir.d/sub.x/README", T0, "n", "dir.d/sub.x/README.sync-conflict-20231114-221320-n");
	expect_name("dir.d/.profile", T0, "n", "dir.d/.profile.sync-conflict-20231114-221320-n");
	expect_name(
	    "Ünïcödé/日本.mp3", T0, "n", "Ünïcödé/日本.sync-conflict-20231114-221320-n.mp3");
}

static void
test_conflict_name_time(void **state)
{
	(void)state;
	expect_name("f.txt", 0, "n", "f.sync-conflict-19700101-000000-n.txt");
	expect_name("f.txt", -1, "n", "f.sync-conflict-19691231-235959-n.txt");
	expect_name("f.txt", 951868799, "n", "f.sync-conflict-20000229-235959-n.txt");
	expect_name("f.txt", 4102444800LL, "n", "f.sync-conflict-21000101-000000-n.txt");
	/* an unrepresentable time still gives a name */
	expect_name("f.txt", INT64_MAX, "n", "f.sync-conflict-00000000-000000-n.txt");
}

static void
test_conflict_name_node(void **state)
{
	(void)state;
	expect_name(
	    "f.txt", T0, "eu-west.node_1", "f.sync-conflict-20231114-221320-eu-west.node_1.txt");
	/* a node name cannot add a directory or a control character */
	expect_name("f.txt", T0, "../x", "f.sync-conflict-20231114-221320-.._x.txt");
	expect_name("f.txt", T0, "a\\b\nc", "f.sync-conflict-20231114-221320-a_b_c.txt");
	expect_name("f.txt", T0, NULL, "f.sync-conflict-20231114-221320-unknown.txt");
	expect_name("f.txt", T0, "", "f.sync-conflict-20231114-221320-unknown.txt");
}

/* A name near 255 bytes is shortened so that the copy can be created. */
static void
test_conflict_name_long(void **state)
{
	const char *suffix = ".sync-conflict-20231114-221320-node1.flac";
	char path[600], err[512];
	char *got, *base, *tag;
	size_t i;

	(void)state;
	/* 250 ASCII bytes + ".flac" */
	snprintf(path, sizeof(path), "dir/");
	for (i = 0; i < 250; i++)
		strcat(path, "x");
	strcat(path, ".flac");
	assert_int_equal(path_check(path, err, sizeof(err)), 0);
	got = conflict_name(path, T0, "node1");
	base = strrchr(got, '/') + 1;
	assert_int_equal(strlen(base), 255);
	assert_true(strncmp(got, "dir/xxx", 7) == 0);
	assert_string_equal(base + 255 - strlen(suffix), suffix);
	if (path_check(got, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	free(got);

	/*
	 * 125 two-byte characters, and a node name that makes the cut fall
	 * inside one: the cut moves back to the character's start
	 */
	suffix = ".sync-conflict-20231114-221320-node12.flac";
	snprintf(path, sizeof(path), "dir/");
	for (i = 0; i < 125; i++)
		strcat(path, "é");
	strcat(path, ".flac");
	got = conflict_name(path, T0, "node12");
	base = strrchr(got, '/') + 1;
	tag = strstr(base, ".sync-conflict-");
	assert_non_null(tag);
	assert_true(strlen(base) <= 255);
	assert_int_equal(tag - base, 212);
	assert_true(((unsigned char)tag[-1] & 0xc0) == 0x80);
	assert_string_equal(tag, suffix);
	free(got);

	/* a short name is never shortened */
	expect_name("dir/x.flac", T0, "node1", "dir/x.sync-conflict-20231114-221320-node1.flac");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_action_names),
		cmocka_unit_test(test_both_absent),
		cmocka_unit_test(test_one_absent),
		cmocka_unit_test(test_one_absent_types),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_dominates),
		cmocka_unit_test(test_dominates_tombstones),
		cmocka_unit_test(test_dominates_types),
		cmocka_unit_test(test_concurrent_same),
		cmocka_unit_test(test_delete_edit),
		cmocka_unit_test(test_conflict_mtime),
		cmocka_unit_test(test_conflict_tie),
		cmocka_unit_test(test_conflict_types),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_conflict_name),
		cmocka_unit_test(test_conflict_name_time),
		cmocka_unit_test(test_conflict_name_node),
		cmocka_unit_test(test_conflict_name_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

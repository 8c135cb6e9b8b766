/*
 * fs_reconcile.c - decide what to do with one path, given the index entries
 * of side A and side B, and name conflict copies.
 *
 * The reconciler merges both indexes by relative path, calls reconcile()
 * per path, sorts the actions by their enum value (conflict copies, then
 * copies, then deletes) and only then transfers.  reconcile() is pure: no
 * I/O and no clock; every input is a property of the two versions and the
 * two folder types, so both nodes reach the same decision, and swapping A
 * and B gives the mirrored action.  The rules, in the order they are tried:
 *
 *  1. Neither side has an entry: FA_NONE.
 *  2. One side has no entry: the other's version is new to it and is
 *     copied over, unless it is a tombstone (nothing to delete): FA_NONE.
 *  3. Equal version vectors: FA_NONE (the same version on both sides).
 *  4. One vector dominates: its version is newer and replaces the other,
 *     a copy, or a delete when it is a tombstone.  When both are tombstones
 *     there is nothing to delete and the action is FA_MERGE_VV (the older
 *     tombstone takes the newer vector), so a rerun sends nothing.
 *  5. Concurrent vectors, same content (both tombstones, or the same hash
 *     and size): not a conflict, FA_MERGE_VV.
 *  6. Concurrent, delete against edit: the edit wins and is copied over
 *     the tombstone; nothing is lost.
 *  7. Concurrent edits: a conflict.  The version with the newer mtime keeps
 *     the name; on equal mtimes the smaller node name (strcmp) keeps it
 *     (then, for a misconfiguration with equal node names, the larger size,
 *     then the larger hash).  FA_CONFLICT_A moves A's version aside to
 *     conflict_name() and gives the name to B's; FA_CONFLICT_B the reverse.
 *     Both versions then exist on both nodes.
 *
 * Folder types restrict the directions a change may flow (may_flow()):
 *
 *  - Nothing flows into a send-only side: a copy or delete toward it is
 *    FA_NONE, and in a conflict its version keeps the name.
 *  - Nothing flows out of a receive-only side (its local changes are not
 *    sent): a copy or delete from it is FA_NONE, and in a conflict it
 *    loses: its version is moved aside locally and the other takes the
 *    name.  Its conflict copy then is a local addition, which rule 2 with
 *    this restriction keeps from being sent.  (Without a "changed locally"
 *    flag in the index every version a receive-only side holds counts as
 *    local; it never relays one node's files to another.)
 *  - When neither direction may flow (send-only against send-only, or
 *    receive-only against receive-only) a conflict is FA_NONE.
 *  - FA_MERGE_VV changes no file and is never restricted.
 *
 * conflict_name() follows Syncthing's form, so users who know it recognise
 * the files; it is pure too (the caller passes the time).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "fs_reconcile.h"

const char *const fs_action_names[] = {
	[FA_NONE] = "none",
	[FA_CONFLICT_A] = "conflict_a",
	[FA_CONFLICT_B] = "conflict_b",
	[FA_COPY_A_TO_B] = "copy_a_to_b",
	[FA_COPY_B_TO_A] = "copy_b_to_a",
	[FA_DELETE_ON_B] = "delete_on_b",
	[FA_DELETE_ON_A] = "delete_on_a",
	[FA_MERGE_VV] = "merge_vv",
};

#define CONFLICT_TAG ".sync-conflict-"
#define NAME_MAX_LEN 255

static const struct vv vv_empty;

static int
has_entry(const struct fs_entry *e)
{
	return e != NULL && e->present;
}

static const struct vv *
vector(const struct fs_entry *e)
{
	return e->vv != NULL ? e->vv : &vv_empty;
}

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* May a change flow from side "from" into side "to"? */
static int
may_flow(const struct fs_side *from, const struct fs_side *to)
{
	return from->type != FT_RECEIVE_ONLY && to->type != FT_SEND_ONLY;
}

/* The winner's version replaces the loser's: a copy, or a delete for a tombstone. */
static enum fs_action
replace(const struct fs_side *a, const struct fs_entry *ea, const struct fs_side *b,
    const struct fs_entry *eb, int a_wins)
{
	if (a_wins)
		return !may_flow(a, b) ? FA_NONE : ea->deleted ? FA_DELETE_ON_B : FA_COPY_A_TO_B;
	return !may_flow(b, a) ? FA_NONE : eb->deleted ? FA_DELETE_ON_A : FA_COPY_B_TO_A;
}

/* Both tombstones, or both files with the same whole-file hash and size. */
static int
same_content(const struct fs_entry *ea, const struct fs_entry *eb)
{
	if (ea->deleted || eb->deleted)
		return ea->deleted && eb->deleted;
	return ea->hash != NULL && eb->hash != NULL && ea->size == eb->size &&
	    strcmp(ea->hash, eb->hash) == 0;
}

/* 1 when A's version keeps the name in a conflict between two edits. */
static int
a_keeps_name(const struct fs_side *a, const struct fs_entry *ea, const struct fs_side *b,
    const struct fs_entry *eb)
{
	int c;

	if (ea->mtime_ns != eb->mtime_ns)
		return ea->mtime_ns > eb->mtime_ns;
	c = strcmp(str_or_empty(a->node), str_or_empty(b->node));
	if (c != 0)
		return c < 0;
	if (ea->size != eb->size)
		return ea->size > eb->size;
	return strcmp(str_or_empty(ea->hash), str_or_empty(eb->hash)) >= 0;
}

static enum fs_action
conflict(const struct fs_side *a, const struct fs_entry *ea, const struct fs_side *b,
    const struct fs_entry *eb)
{
	int into_a = may_flow(b, a), into_b = may_flow(a, b), a_keeps;

	if (!into_a && !into_b)
		return FA_NONE;
	if (!into_a)
		a_keeps = 1;
	else if (!into_b)
		a_keeps = 0;
	else
		a_keeps = a_keeps_name(a, ea, b, eb);
	return a_keeps ? FA_CONFLICT_B : FA_CONFLICT_A;
}

enum fs_action
reconcile(const struct fs_side *a, const struct fs_entry *ea, const struct fs_side *b,
    const struct fs_entry *eb)
{
	int pa = has_entry(ea), pb = has_entry(eb);

	if (!pa && !pb)
		return FA_NONE;
	if (!pb)
		return ea->deleted ? FA_NONE : replace(a, ea, b, eb, 1);
	if (!pa)
		return eb->deleted ? FA_NONE : replace(a, ea, b, eb, 0);

	switch (vv_compare(vector(ea), vector(eb))) {
	case VV_EQUAL: return FA_NONE;
	case VV_DOMINATES:
		return ea->deleted && eb->deleted ? FA_MERGE_VV : replace(a, ea, b, eb, 1);
	case VV_DOMINATED:
		return ea->deleted && eb->deleted ? FA_MERGE_VV : replace(a, ea, b, eb, 0);
	case VV_CONCURRENT: break;
	}
	if (same_content(ea, eb))
		return FA_MERGE_VV;
	if (ea->deleted)
		return replace(a, ea, b, eb, 0);
	if (eb->deleted)
		return replace(a, ea, b, eb, 1);
	return conflict(a, ea, b, eb);
}

/*
 * Bytes of a node name that could not stand in a file name ('/', '\', control
 * characters) become '_'; a missing name is "unknown".  When the new last
 * component would pass NAME_MAX_LEN bytes, NAME is shortened, never inside a
 * UTF-8 sequence, so the copy can still be created.  An mtime gmtime()
 * cannot represent gives the stamp 00000000-000000.
 */
char *
conflict_name(const char *path, int64_t when, const char *node)
{
	struct buf b = BUF_INIT;
	const char *base, *dot, *ext = NULL, *p;
	size_t namelen, extlen = 0, total;
	char stamp[64];
	struct tm tm;
	time_t t = (time_t)when;

	if (node == NULL || *node == '\0')
		node = "unknown";
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	dot = strrchr(base, '.');
	namelen = strlen(base);
	if (dot != NULL && dot != base) {
		namelen = (size_t)(dot - base);
		ext = dot + 1;
		extlen = strlen(ext);
	}
	if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "00000000-000000");

	total = namelen + strlen(CONFLICT_TAG) + strlen(stamp) + 1 + strlen(node) +
	    (ext != NULL ? 1 + extlen : 0);
	if (total > NAME_MAX_LEN && total - NAME_MAX_LEN < namelen) {
		namelen -= total - NAME_MAX_LEN;
		while (namelen > 0 && ((unsigned char)base[namelen] & 0xc0) == 0x80)
			namelen--;
	}

	buf_add(&b, path, (size_t)(base - path));
	buf_add(&b, base, namelen);
	buf_printf(&b, "%s%s-", CONFLICT_TAG, stamp);
	for (p = node; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		buf_putc(&b, c == '/' || c == '\\' || c < 0x20 || c == 0x7f ? '_' : (char)c);
	}
	if (ext != NULL) {
		buf_putc(&b, '.');
		buf_add(&b, ext, extlen);
	}
	return buf_steal(&b);
}

/*
 * fs_reconcile.h - what to do with one path, given both sides' index
 * entries.  Pure; unit-tested case by case.
 *
 * Version vectors decide (vv.h): equal -> nothing; one dominates -> copy or
 * delete toward the other side; concurrent -> a conflict: the version with
 * the newer mtime keeps the name (ties: the smaller node name), the other
 * is kept beside it as NAME.sync-conflict-YYYYMMDD-HHMMSS-NODE.EXT and
 * both propagate.  Folder types restrict the directions: a send-only side
 * never takes changes in (its version wins a conflict), a receive-only side
 * never sends its local changes out.
 */
#ifndef REPCTL_FS_RECONCILE_H
#define REPCTL_FS_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include "vv.h"

enum folder_type {
	FT_SEND_RECEIVE = 0,
	FT_SEND_ONLY = 1,
	FT_RECEIVE_ONLY = 2,
};

struct fs_entry {
	const char *path;
	int present; /* the side has an index entry for the path */
	int deleted; /* tombstone */
	int64_t size;
	int64_t mtime_ns;
	uint32_t mode;
	const char *hash; /* whole-file sha256 hex, NULL for tombstones */
	const struct vv *vv;
};

/* Ordered for execution: conflict copies first, then copies, then deletes. */
enum fs_action {
	FA_NONE = 0,
	FA_CONFLICT_A, /* keep B's version at the name; A's goes to the conflict name */
	FA_CONFLICT_B, /* keep A's version at the name; B's goes to the conflict name */
	FA_COPY_A_TO_B,
	FA_COPY_B_TO_A,
	FA_DELETE_ON_B,
	FA_DELETE_ON_A,
	FA_MERGE_VV, /* same content, different vectors: just record the merged vector */
};

struct fs_side {
	const char *node;
	enum folder_type type;
};

/*
 * Decide one path between side A and side B.  When one side has no entry
 * (present == 0) the other's version is new to it.  Equal content with
 * concurrent vectors is not a conflict (FA_MERGE_VV).
 */
enum fs_action reconcile(const struct fs_side *a, const struct fs_entry *ea,
    const struct fs_side *b, const struct fs_entry *eb);

extern const char *const fs_action_names[];

/*
 * The conflict name for path: "dir/NAME.sync-conflict-YYYYMMDD-HHMMSS-NODE.EXT"
 * (".EXT" only when the last component has an extension; a leading dot is
 * not an extension).  when is a UTC time in seconds.  malloc'ed; free().
 */
char *conflict_name(const char *path, int64_t when, const char *node);

#endif

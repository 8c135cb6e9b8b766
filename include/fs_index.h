/*
 * fs_index.h - a node's index of one folder: every file it has seen, with
 * size, times, mode, content-defined blocks, whole-file hash, version
 * vector and tombstones.  Kept by the agent in <folder>/.repctl/index.
 */
#ifndef REPCTL_FS_INDEX_H
#define REPCTL_FS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fs_hash.h"
#include "vv.h"

struct fs_block {
	int64_t off;
	uint32_t len;
	uint8_t hash[SHA256_LEN];
};

struct fs_file {
	char *path; /* relative to the folder root */
	int deleted;
	int64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t inode;
	uint32_t mode;
	char hash[SHA256_HEX_LEN]; /* "" for tombstones */
	struct vv vv;
	struct fs_block *blocks;
	int nblocks;
	int seen; /* scratch: found by the current scan */
};

struct fs_lut;
struct fs_blut;

struct fs_index {
	struct fs_file *f;
	int n, cap;
	struct fs_lut *lut;   /* path -> entry (fs_index.c), built on demand */
	struct fs_blut *blut; /* block hash -> entry and block, built on demand */
};

#define FS_STATE_DIR ".repctl"
#define FS_MARKER ".repctl/folder"
#define FS_INDEX_FILE ".repctl/index"
#define FS_JOURNAL_FILE ".repctl/index.journal"
#define FS_TRASH_DIR ".repctl/trash"
#define FS_PART_SUFFIX ".repctl-part"
/* A part file untouched (ctime) this long is a leftover: the scan removes it. */
#define FS_PART_MAX_AGE 86400

void index_init(struct fs_index *ix);
void index_free(struct fs_index *ix);
void file_clear(struct fs_file *f);
/*
 * Find by path (a hash table, kept up to date as entries are added);
 * NULL when absent.  The entries are in path order only after index_sort.
 */
struct fs_file *index_find(struct fs_index *ix, const char *path);
/*
 * Find a live entry holding a block of this hash and length: start with
 * *cursor = 0, call again with the same cursor for the next one; *block is
 * the block's position in the entry.  NULL when there is none (left).
 * The index must not change between the calls of one search.
 */
const struct fs_file *index_find_block(
    struct fs_index *ix, const uint8_t *hash, uint32_t len, size_t *cursor, int *block);
/* f's blocks were replaced in place: make them findable by index_find_block. */
void index_blocks_changed(struct fs_index *ix, const struct fs_file *f);
/* Add an empty entry for path (caller fills it); returns it. */
struct fs_file *index_add(struct fs_index *ix, const char *path);
void index_sort(struct fs_index *ix);

/* One entry as a text line (no newline) / parsed back.  0 or -1. */
void index_line(struct buf *b, const struct fs_file *f);
/* The same without the block list ("-"): what a scan sends; blocks are fetched per file. */
void index_line_brief(struct buf *b, const struct fs_file *f);
int index_parse_line(const char *line, struct fs_file *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Load / save <root>/.repctl/index (atomic replace).  Missing file: empty
 * index.  Load replays the journal after it; save empties the journal.
 */
int index_load(const char *root, struct fs_index *ix, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int index_save(const char *root, const struct fs_index *ix, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/*
 * Append these entries to the index journal (<root>/.repctl/index.journal)
 * and fsync it: they are in the durable index from then on (index_load
 * replays the journal; index_save empties it).  0 or -1 with err.
 */
int index_journal_append(const char *root, const struct fs_file *const *files, int n, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * Hash a file: content-defined blocks and the whole-file hash.  0 or -1.
 */
int file_hash(const char *path, struct fs_file *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));

struct ignore;
struct scan_stats {
	long files, hashed, changed, deleted;
	long parts_removed; /* stale part files removed (FS_PART_MAX_AGE) */
	long long bytes_hashed;
};

/*
 * Scan the folder at root against ix: files whose size, mtime, ctime or
 * inode changed are rehashed, and a content or mode change bumps self's
 * counter; files gone become tombstones (counter bumped).  Ignored paths,
 * the .repctl directory, partial transfers and symlinks are skipped; a
 * part file of ours untouched for FS_PART_MAX_AGE (the environment's
 * REPCTL_PART_MAX_AGE, in seconds, when set: for the tests) is removed.
 * 0 or -1 with err.
 */
int index_scan(const char *root, struct fs_index *ix, const char *self, const struct ignore *ig,
    struct scan_stats *st, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif

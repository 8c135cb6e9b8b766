/*
 * fs_index.c - a node's index of a folder, and the scanner that keeps it.
 *
 * Where it sits: the agent (fs_agent.c) loads the index from
 * <root>/.repctl/index, scans the folder against it, sends it to the
 * coordinator, and records what the coordinator applied.  The scanner
 * rehashes only files whose size, mtime, ctime or inode changed (ctime
 * catches two same-size rewrites within one mtime tick, and a restored
 * mtime), so a run over an unchanged folder reads no file data.  A content
 * or mode change bumps this node's counter in the file's version vector; a
 * file that disappeared becomes a tombstone with its counter bumped, so
 * the deletion propagates and cannot come back.
 *
 * The file format is one text line per entry, tab separated:
 *   path deleted size mtime_ns ctime_ns inode mode hash vv blocks
 * with tab, newline and backslash in paths escaped, and blocks as
 * "len:hexhash" separated by commas.  It is rewritten whole into a
 * temporary file, fsynced and renamed, so a crash leaves the old or the new
 * index, never half of one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fs_chunk.h"
#include "fs_hash.h"
#include "fs_index.h"
#include "fs_path.h"
#include "xmalloc.h"

/*
 * ---- lookups: hash tables from path, and from block hash, to entry ----
 *
 * Each index owns its tables (the coordinator looks up two indexes in
 * turn, so one table shared by all indexes would be rebuilt at every
 * switch: O(n) per lookup).  A table covers the entries [0, n) of the
 * array it was built for; entries appended since are added on the next
 * lookup, and it is rebuilt when the array moved (realloc) or shrank;
 * index_sort drops it.  The block table's slots are checked against the
 * entry at every lookup, so a slot whose entry changed since only misses.
 */

struct fs_lut {
	int *pos; /* entry position, -1 empty */
	size_t cap;
	int n; /* entries covered */
	const struct fs_file *base;
};

struct fs_blut {
	struct fs_bslot {
		int file, block; /* file -1: empty */
	} * s;
	size_t cap, used;
	int n;
	const struct fs_file *base;
};

static uint64_t
strhash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void
lut_insert(struct fs_index *ix, int pos)
{
	struct fs_lut *l = ix->lut;
	size_t i = (size_t)(strhash(ix->f[pos].path) & (l->cap - 1));

	while (l->pos[i] >= 0)
		i = (i + 1) & (l->cap - 1);
	l->pos[i] = pos;
}

/* Bring the path table up to date with ix (rebuilt when ix moved, shrank or filled it). */
static void
lut_sync(struct fs_index *ix)
{
	struct fs_lut *l = ix->lut;
	size_t i;

	if (l == NULL || l->base != ix->f || l->n > ix->n || (size_t)ix->n * 2 >= l->cap) {
		if (l == NULL)
			l = ix->lut = xcalloc(1, sizeof(*l));
		free(l->pos);
		l->base = ix->f;
		l->cap = 64;
		while (l->cap < (size_t)ix->n * 4)
			l->cap *= 2;
		l->pos = xmalloc(sizeof(*l->pos) * l->cap);
		for (i = 0; i < l->cap; i++)
			l->pos[i] = -1;
		l->n = 0;
	}
	for (; l->n < ix->n; l->n++)
		lut_insert(ix, l->n);
}

static uint64_t
blockhash(const uint8_t *hash, uint32_t len)
{
	uint64_t h;

	memcpy(&h, hash, sizeof(h)); /* SHA-256: uniform already */
	return h ^ ((uint64_t)len * 0x9E3779B97F4A7C15ULL);
}

static void
blut_insert(struct fs_blut *l, const struct fs_file *f, int file)
{
	int j;

	for (j = 0; j < f->nblocks; j++) {
		size_t i = (size_t)(blockhash(f->blocks[j].hash, f->blocks[j].len) & (l->cap - 1));

		while (l->s[i].file >= 0)
			i = (i + 1) & (l->cap - 1);
		l->s[i].file = file;
		l->s[i].block = j;
		l->used++;
	}
}

static void
blut_sync(struct fs_index *ix)
{
	struct fs_blut *l = ix->blut;
	size_t i, total = 0;
	int k;

	if (l == NULL || l->base != ix->f || l->n > ix->n || l->used * 2 >= l->cap) {
		if (l == NULL)
			l = ix->blut = xcalloc(1, sizeof(*l));
		free(l->s);
		for (k = 0; k < ix->n; k++)
			total += (size_t)ix->f[k].nblocks;
		l->base = ix->f;
		l->cap = 64;
		while (l->cap < total * 4)
			l->cap *= 2;
		l->s = xmalloc(sizeof(*l->s) * l->cap);
		for (i = 0; i < l->cap; i++)
			l->s[i].file = -1;
		l->used = 0;
		l->n = 0;
	}
	for (; l->n < ix->n; l->n++) {
		if (l->used + (size_t)ix->f[l->n].nblocks >= l->cap / 2) {
			/* full: built again for every entry (at most a quarter full then) */
			l->used = l->cap;
			blut_sync(ix);
			return;
		}
		blut_insert(l, &ix->f[l->n], l->n);
	}
}

static void
luts_forget(struct fs_index *ix)
{
	if (ix->lut) {
		free(ix->lut->pos);
		free(ix->lut);
		ix->lut = NULL;
	}
	if (ix->blut) {
		free(ix->blut->s);
		free(ix->blut);
		ix->blut = NULL;
	}
}

void
index_init(struct fs_index *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void
file_clear(struct fs_file *f)
{
	free(f->path);
	vv_free(&f->vv);
	free(f->blocks);
	memset(f, 0, sizeof(*f));
}

void
index_free(struct fs_index *ix)
{
	int i;

	luts_forget(ix);
	for (i = 0; i < ix->n; i++)
		file_clear(&ix->f[i]);
	free(ix->f);
	index_init(ix);
}

struct fs_file *
index_find(struct fs_index *ix, const char *path)
{
	struct fs_lut *l;
	size_t i;

	if (ix->n == 0)
		return NULL;
	lut_sync(ix);
	l = ix->lut;
	for (i = (size_t)(strhash(path) & (l->cap - 1)); l->pos[i] >= 0; i = (i + 1) & (l->cap - 1))
		if (strcmp(ix->f[l->pos[i]].path, path) == 0)
			return &ix->f[l->pos[i]];
	return NULL;
}

const struct fs_file *
index_find_block(struct fs_index *ix, const uint8_t *hash, uint32_t len, size_t *cursor, int *block)
{
	struct fs_blut *l;
	size_t i;

	if (ix->n == 0)
		return NULL;
	if (*cursor == 0)
		blut_sync(ix);
	l = ix->blut;
	i = *cursor ? *cursor - 1 : (size_t)(blockhash(hash, len) & (l->cap - 1));
	for (; l->s[i].file >= 0; i = (i + 1) & (l->cap - 1)) {
		const struct fs_file *f;
		int j = l->s[i].block;

		if (l->s[i].file >= ix->n)
			continue;
		f = &ix->f[l->s[i].file];
		if (f->deleted || j >= f->nblocks || f->blocks[j].len != len ||
		    memcmp(f->blocks[j].hash, hash, SHA256_LEN) != 0)
			continue;
		*cursor = ((i + 1) & (l->cap - 1)) + 1;
		*block = j;
		return f;
	}
	return NULL;
}

void
index_blocks_changed(struct fs_index *ix, const struct fs_file *f)
{
	struct fs_blut *l = ix->blut;
	int pos = (int)(f - ix->f);

	if (l == NULL || l->base != ix->f || pos < 0 || pos >= l->n)
		return; /* not covered yet: the next sync adds it */
	if (l->used + (size_t)f->nblocks >= l->cap / 2) {
		l->used = l->cap; /* rebuilt at the next lookup */
		return;
	}
	blut_insert(l, f, pos);
}

struct fs_file *
index_add(struct fs_index *ix, const char *path)
{
	struct fs_file *f;

	if (ix->n == ix->cap) {
		ix->cap = ix->cap ? ix->cap * 2 : 256;
		ix->f = xrealloc(ix->f, sizeof(*ix->f) * (size_t)ix->cap);
	}
	f = &ix->f[ix->n++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(path);
	return f;
}

static int
cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct fs_file *)a)->path, ((const struct fs_file *)b)->path);
}

void
index_sort(struct fs_index *ix)
{
	if (ix->n > 1)
		qsort(ix->f, (size_t)ix->n, sizeof(*ix->f), cmp_file);
	luts_forget(ix);
}

/* ---- text form ---- */

static void
put_escaped(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\t')
			buf_puts(b, "\\t");
		else if (*s == '\n')
			buf_puts(b, "\\n");
		else if (*s == '\\')
			buf_puts(b, "\\\\");
		else
			buf_putc(b, *s);
	}
}

void
index_line_brief(struct buf *b, const struct fs_file *f)
{
	struct fs_file copy = *f;

	copy.nblocks = 0;
	index_line(b, &copy);
}

void
index_line(struct buf *b, const struct fs_file *f)
{
	char *vv = vv_to_json(&f->vv);
	int i;

	put_escaped(b, f->path);
	buf_printf(b, "\t%d\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRIu64 "\t%o\t%s\t%s\t",
	    f->deleted, f->size, f->mtime_ns, f->ctime_ns, f->inode, f->mode,
	    f->hash[0] ? f->hash : "-", vv);
	for (i = 0; i < f->nblocks; i++) {
		char hex[SHA256_HEX_LEN];

		sha256_hex(f->blocks[i].hash, hex);
		buf_printf(b, "%s%u:%s", i ? "," : "", f->blocks[i].len, hex);
	}
	if (f->nblocks == 0)
		buf_putc(b, '-');
	free(vv);
}

static char *
unescape(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n) {
			i++;
			buf_putc(&b, s[i] == 't' ? '\t' : s[i] == 'n' ? '\n' : s[i]);
		} else {
			buf_putc(&b, s[i]);
		}
	}
	return buf_steal(&b);
}

int
index_parse_line(const char *line, struct fs_file *f, char *err, size_t errlen)
{
	const char *fld[10];
	size_t len[10];
	const char *p = line;
	int i;
	char *end;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < 10; i++) {
		const char *tab = strchr(p, '\t');

		fld[i] = p;
		len[i] = tab ? (size_t)(tab - p) : strlen(p);
		if (!tab && i < 9)
			goto bad;
		p = tab ? tab + 1 : p + len[i];
	}
	f->path = unescape(fld[0], len[0]);
	f->deleted = fld[1][0] == '1';
	f->size = strtoll(fld[2], NULL, 10);
	f->mtime_ns = strtoll(fld[3], NULL, 10);
	f->ctime_ns = strtoll(fld[4], NULL, 10);
	f->inode = strtoull(fld[5], NULL, 10);
	f->mode = (uint32_t)strtoul(fld[6], NULL, 8);
	if (len[7] == SHA256_HEX_LEN - 1) {
		memcpy(f->hash, fld[7], SHA256_HEX_LEN - 1);
		f->hash[SHA256_HEX_LEN - 1] = '\0';
	} else if (!(len[7] == 1 && fld[7][0] == '-')) {
		goto bad;
	}
	{
		char *vvtext = xstrndup(fld[8], len[8]);
		int r = vv_parse(vvtext, &f->vv);

		free(vvtext);
		if (r < 0)
			goto bad;
	}
	if (!(len[9] == 1 && fld[9][0] == '-')) {
		const char *q = fld[9], *qend = fld[9] + len[9];
		int64_t off = 0;

		while (q < qend) {
			unsigned long l = strtoul(q, &end, 10);
			char hex[SHA256_HEX_LEN];

			if (*end != ':' || qend - end < SHA256_HEX_LEN)
				goto bad;
			memcpy(hex, end + 1, SHA256_HEX_LEN - 1);
			hex[SHA256_HEX_LEN - 1] = '\0';
			f->blocks =
			    xrealloc(f->blocks, sizeof(*f->blocks) * (size_t)(f->nblocks + 1));
			f->blocks[f->nblocks].off = off;
			f->blocks[f->nblocks].len = (uint32_t)l;
			if (sha256_from_hex(hex, f->blocks[f->nblocks].hash) < 0)
				goto bad;
			off += (int64_t)l;
			f->nblocks++;
			q = end + SHA256_HEX_LEN;
			if (q < qend && *q == ',')
				q++;
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "malformed index entry: %.80s", line);
	file_clear(f);
	return -1;
}

static int64_t
ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/*
 * The journal (<root>/.repctl/index.journal): index lines appended, and
 * fsynced, by the agent each time it commits a batch of received files,
 * so that a file reported done is in the durable index at once, not only
 * at the next save (a save every two seconds at most: the whole index).
 * index_save empties it.  An entry is written before its file is renamed
 * into place, with the stat of the file (the part file: a rename keeps
 * the inode, size and mtime), so on load a line counts only when that very
 * file is under the name (a rename that never happened, or a file changed
 * since, leaves it out); it then replaces the entry of its path when its
 * vector is equal to or newer than the saved entry's (a journal left
 * behind by a crash between a save's rename and its unlink is harmless:
 * the save already holds those entries or newer ones).  A torn last line
 * (a crash in the middle of an append) ends the replay.
 */
static void
journal_replay(const char *root, struct fs_index *ix)
{
	char *path = xasprintf("%s/%s", root, FS_JOURNAL_FILE);
	FILE *fp = fopen(path, "r");
	char *line = NULL, err[256];
	size_t cap = 0;
	ssize_t n;

	int added = 0;

	free(path);
	if (fp == NULL)
		return;
	while ((n = getline(&line, &cap, fp)) > 0) {
		struct fs_file f, *cur;

		if (line[n - 1] != '\n')
			break; /* torn */
		line[--n] = '\0';
		if (n == 0)
			continue;
		if (index_parse_line(line, &f, err, sizeof(err)) < 0)
			break;
		{
			char *full = xasprintf("%s/%s", root, f.path);
			struct stat sb;
			int there = lstat(full, &sb) == 0 && S_ISREG(sb.st_mode) &&
			    (uint64_t)sb.st_ino == f.inode && sb.st_size == f.size &&
			    ts_ns(&sb.st_mtim) == f.mtime_ns;

			free(full);
			if (!there || f.deleted || path_check(f.path, err, sizeof(err)) < 0) {
				file_clear(&f);
				continue;
			}
		}
		cur = index_find(ix, f.path);
		if (cur == NULL) {
			cur = index_add(ix, f.path);
			free(cur->path);
			*cur = f;
			added = 1;
		} else if (vv_compare(&f.vv, &cur->vv) == VV_EQUAL ||
		    vv_compare(&f.vv, &cur->vv) == VV_DOMINATES) {
			file_clear(cur);
			*cur = f;
		} else {
			file_clear(&f);
		}
	}
	free(line);
	fclose(fp);
	if (added)
		index_sort(ix); /* once, not per line: a journal can hold thousands */
}

int
index_journal_append(
    const char *root, const struct fs_file *const *files, int n, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", root, FS_JOURNAL_FILE);
	struct buf b = BUF_INIT;
	int fd, i, rc = -1;

	for (i = 0; i < n; i++) {
		index_line(&b, files[i]);
		buf_putc(&b, '\n');
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || (b.len && write(fd, b.data, b.len) != (ssize_t)b.len) || fsync(fd) < 0)
		snprintf(
		    err, errlen, "cannot write the index journal %s: %s", path, strerror(errno));
	else
		rc = 0;
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	free(path);
	return rc;
}

int
index_load(const char *root, struct fs_index *ix, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", root, FS_INDEX_FILE);
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = -1;

	index_init(ix);
	if (fp == NULL) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc < 0)
			snprintf(
			    err, errlen, "cannot read the index %s: %s", path, strerror(errno));
		else
			journal_replay(root, ix);
		free(path);
		return rc;
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		struct fs_file f;

		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (index_parse_line(line, &f, err, errlen) < 0)
			goto out;
		if (ix->n == ix->cap) {
			ix->cap = ix->cap ? ix->cap * 2 : 256;
			ix->f = xrealloc(ix->f, sizeof(*ix->f) * (size_t)ix->cap);
		}
		ix->f[ix->n++] = f;
	}
	index_sort(ix);
	journal_replay(root, ix);
	rc = 0;
out:
	free(line);
	fclose(fp);
	free(path);
	return rc;
}

int
index_save(const char *root, const struct fs_index *ix, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", root, FS_INDEX_FILE);
	char *tmp = xasprintf("%s.tmp", path);
	struct buf b = BUF_INIT;
	int fd, i, rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write the index %s: %s", tmp, strerror(errno));
		goto out;
	}
	for (i = 0; i < ix->n; i++) {
		index_line(&b, &ix->f[i]);
		buf_putc(&b, '\n');
		if (b.len > (1 << 20) || i == ix->n - 1) {
			if (write(fd, b.data, b.len) != (ssize_t)b.len)
				goto werr;
			buf_reset(&b);
		}
	}
	if (fsync(fd) < 0)
		goto werr;
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0)
		goto werr;
	{
		/* the saved index holds what the journal held */
		char *jpath = xasprintf("%s/%s", root, FS_JOURNAL_FILE);

		(void)unlink(jpath);
		free(jpath);
	}
	rc = 0;
	goto out;
werr:
	snprintf(err, errlen, "cannot write the index %s: %s", tmp, strerror(errno));
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	buf_free(&b);
	free(tmp);
	free(path);
	return rc;
}

/* ---- hashing and scanning ---- */

int
file_hash(const char *path, struct fs_file *f, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	uint8_t *buf;
	size_t have = 0, cap = CDC_MAX * 4;
	struct sha256 whole;
	int64_t off = 0;
	int eof = 0, rc = -1;
	uint8_t digest[SHA256_LEN];

	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	buf = xmalloc(cap);
	sha256_init(&whole);
	free(f->blocks);
	f->blocks = NULL;
	f->nblocks = 0;
	for (;;) {
		size_t cut;

		while (!eof && have < cap) {
			ssize_t n = read(fd, buf + have, cap - have);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
				goto out;
			}
			if (n == 0)
				eof = 1;
			have += (size_t)n;
		}
		if (have == 0)
			break;
		cut = cdc_cut(buf, have, eof);
		if (cut == 0)
			cut = have; /* cannot happen with a full buffer; be safe */
		f->blocks = xrealloc(f->blocks, sizeof(*f->blocks) * (size_t)(f->nblocks + 1));
		f->blocks[f->nblocks].off = off;
		f->blocks[f->nblocks].len = (uint32_t)cut;
		sha256(buf, cut, f->blocks[f->nblocks].hash);
		sha256_update(&whole, buf, cut);
		f->nblocks++;
		off += (int64_t)cut;
		memmove(buf, buf + cut, have - cut);
		have -= cut;
	}
	sha256_final(&whole, digest);
	sha256_hex(digest, f->hash);
	f->size = off;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

static void
bump(struct fs_file *f, const char *self)
{
	struct vv one, merged;
	char *json = xasprintf("{\"%s\": %lld}", self, vv_get(&f->vv, self) + 1);

	if (vv_parse(json, &one) == 0) {
		vv_merge(&f->vv, &one, &merged);
		vv_free(&f->vv);
		f->vv = merged;
		vv_free(&one);
	}
	free(json);
}

static int
is_part(const char *name)
{
	size_t n = strlen(name), s = strlen(FS_PART_SUFFIX);

	return n > s && strcmp(name + n - s, FS_PART_SUFFIX) == 0;
}

/*
 * A part file this code names (".NAME.<16 hex>.repctl-part", fs_agent.c's
 * part_name) that nothing touched for part_max_age seconds: left by a
 * transfer that was killed and whose version never came again (changed
 * before a run finished it).  Its ctime, not its mtime: a verified part
 * carries the source file's mtime, which may be years old, while every
 * write to it (a resume) and its mtime being set change the ctime.
 */
static int
stale_part(const char *name, const struct stat *sb, time_t now)
{
	size_t n = strlen(name), s = strlen(FS_PART_SUFFIX), i;
	static long max_age = -1;

	if (max_age < 0) {
		const char *e = getenv("REPCTL_PART_MAX_AGE"); /* seconds; for the tests */

		max_age = e && *e ? atol(e) : FS_PART_MAX_AGE;
		if (max_age < 0)
			max_age = FS_PART_MAX_AGE;
	}
	if (name[0] != '.' || n < 1 + 1 + 1 + 16 + s || name[n - s - 17] != '.')
		return 0;
	for (i = n - s - 16; i < n - s; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return S_ISREG(sb->st_mode) && sb->st_ctime + max_age < now;
}

static int
scan_dir(const char *root, const char *rel, struct fs_index *ix, const char *self,
    const struct ignore *ig, struct scan_stats *st, char *err, size_t errlen)
{
	char *dirpath = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(dirpath);
	struct dirent *de;
	int rc = 0;

	if (d == NULL) {
		snprintf(err, errlen, "cannot read directory %s: %s", dirpath, strerror(errno));
		free(dirpath);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char *relpath, *full;
		struct stat sb;
		struct fs_file *f;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!*rel && strcmp(de->d_name, FS_STATE_DIR) == 0)
			continue;
		relpath = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		full = xasprintf("%s/%s", root, relpath);
		if (lstat(full, &sb) < 0) {
			/* vanished while scanning: the next scan sees it */
			free(relpath);
			free(full);
			continue;
		}
		if (S_ISDIR(sb.st_mode)) {
			if (!(ig && ignore_match(ig, relpath, 1)))
				rc = scan_dir(root, relpath, ix, self, ig, st, err, errlen);
		} else if (is_part(de->d_name)) {
			if (stale_part(de->d_name, &sb, time(NULL)) && unlink(full) == 0)
				st->parts_removed++;
		} else if (S_ISREG(sb.st_mode) && !(ig && ignore_match(ig, relpath, 0))) {
			char perr[256];

			if (path_check(relpath, perr, sizeof(perr)) < 0) {
				/* a name we could never send safely: leave it alone */
				free(relpath);
				free(full);
				continue;
			}
			st->files++;
			f = index_find(ix, relpath);
			if (f && !f->deleted && f->size == sb.st_size &&
			    f->mtime_ns == ts_ns(&sb.st_mtim) &&
			    f->ctime_ns == ts_ns(&sb.st_ctim) && f->inode == (uint64_t)sb.st_ino) {
				f->seen = 1;
			} else {
				struct fs_file h;
				char oldhash[SHA256_HEX_LEN];
				uint32_t oldmode = f ? f->mode : 0;
				int was_live = f && !f->deleted;

				memset(&h, 0, sizeof(h));
				if (file_hash(full, &h, err, errlen) < 0) {
					free(h.blocks);
					/* unreadable now (being written?): skip this round */
					free(relpath);
					free(full);
					continue;
				}
				st->hashed++;
				st->bytes_hashed += h.size;
				if (f == NULL)
					f = index_add(ix, relpath);
				snprintf(oldhash, sizeof(oldhash), "%s", f->hash);
				free(f->blocks);
				f->blocks = h.blocks;
				f->nblocks = h.nblocks;
				memcpy(f->hash, h.hash, sizeof(f->hash));
				f->size = h.size;
				f->mtime_ns = ts_ns(&sb.st_mtim);
				f->ctime_ns = ts_ns(&sb.st_ctim);
				f->inode = (uint64_t)sb.st_ino;
				f->mode = sb.st_mode & 07777;
				if (!was_live || strcmp(oldhash, f->hash) != 0 ||
				    oldmode != f->mode) {
					bump(f, self);
					st->changed++;
				}
				f->deleted = 0;
				f->seen = 1;
			}
		}
		free(relpath);
		free(full);
	}
	closedir(d);
	free(dirpath);
	return rc;
}

int
index_scan(const char *root, struct fs_index *ix, const char *self, const struct ignore *ig,
    struct scan_stats *st, char *err, size_t errlen)
{
	int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < ix->n; i++)
		ix->f[i].seen = 0;
	if (scan_dir(root, "", ix, self, ig, st, err, errlen) < 0)
		return -1;
	for (i = 0; i < ix->n; i++) {
		struct fs_file *f = &ix->f[i];

		if (f->seen || f->deleted)
			continue;
		if (ig && ignore_match(ig, f->path, 0))
			continue; /* ignored now: not a deletion */
		f->deleted = 1;
		f->hash[0] = '\0';
		free(f->blocks);
		f->blocks = NULL;
		f->nblocks = 0;
		f->size = 0;
		bump(f, self);
		st->deleted++;
	}
	index_sort(ix);
	return 0;
}

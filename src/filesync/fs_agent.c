/*
 * fs_agent.c - the agent: what a node does on the coordinator's behalf.
 *
 * Where it sits: the coordinator (fs_sync.c) starts `repctl agent` on each
 * node of a folder, over SSH for a remote node and through pipes for its
 * own, and drives it with requests.  The agent owns the node's index
 * (fs_index.c), scans, serves blocks, and builds files that arrive:
 *
 *   - every path it is sent goes through path_resolve(): nothing outside
 *     the folder is read or written, whatever the peer sends;
 *   - the folder marker (.repctl/folder) must exist, so that an unmounted
 *     disk (an empty mount point) is refused instead of read as "every file
 *     was deleted";
 *   - a file arrives as a temporary ".NAME.<hash>.repctl-part" in its own
 *     directory; blocks the node already has (in the old version, in any
 *     other file, in a part left by an interrupted transfer) are copied
 *     locally and only the missing ones are asked for; at the end the
 *     whole-file hash is checked, the data fsynced, mtime and mode set,
 *     the old version moved to the trash and the new one renamed into
 *     place: a reader sees the old file or the new one, never half;
 *   - a file changed locally since the scan is never overwritten or
 *     deleted: the request fails and the next run rescans and decides again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "fs_agent.h"
#include "fs_hash.h"
#include "fs_index.h"
#include "fs_path.h"
#include "fs_stream.h"
#include "secrets.h"
#include "xmalloc.h"

#define PROTO_VERSION "1"

void
field_put(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
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

int
fields_split(const char *p, size_t len, char **out, int max)
{
	int n = 0;
	size_t i = 0;

	while (n < max) {
		struct buf b = BUF_INIT;

		while (i < len && p[i] != '\t') {
			if (p[i] == '\\' && i + 1 < len) {
				i++;
				buf_putc(&b, p[i] == 't' ? '\t' : p[i] == 'n' ? '\n' : p[i]);
			} else {
				buf_putc(&b, p[i]);
			}
			i++;
		}
		out[n++] = buf_steal(&b);
		if (i >= len)
			break;
		i++;
	}
	return n;
}

void
fields_free(char **f, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(f[i]);
}

struct put {
	struct fs_file want; /* the version being built */
	char *final;         /* absolute target path */
	char *tmp;           /* absolute temp path */
	int fd;
	char *have;   /* per block: 1 when written */
	char *failed; /* first error while receiving data (reported at PUT_END) */
};

struct agent {
	struct fs_stream s;
	const char *root_limit;
	char *root;   /* folder path */
	char *folder; /* folder name */
	char *self;   /* this node's name */
	int trash_days;
	struct ignore *ig;
	struct fs_index ix;
	int loaded, dirty;
	time_t saved_at;
	struct put put;
	char err[1024];
};

/*
 * The heartbeat: while the agent works on one request (a scan that hashes a
 * large folder, the check of a large assembled file), a thread sends F_PING
 * whenever nothing was sent for PING_SECS, so that the coordinator's idle
 * timeout (ssh.io_timeout) tells a slow agent from a hung one.  It only
 * pings while a request is being handled: an idle agent is waiting for the
 * coordinator, not the other way round.
 */
#define PING_SECS 2.0

struct heartbeat {
	struct fs_stream *s;
	pthread_mutex_t send_lock, lock;
	pthread_cond_t cond;
	pthread_t thread;
	int busy, stop, started;
};

static void *
heartbeat_main(void *arg)
{
	struct heartbeat *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 500 * 1000 * 1000;
		if (ts.tv_nsec >= 1000 * 1000 * 1000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000 * 1000 * 1000;
		}
		(void)pthread_cond_timedwait(&h->cond, &h->lock, &ts);
		if (h->busy && !h->stop) {
			char e[256];

			/* a failed ping is the main thread's to notice, at its next send */
			(void)stream_ping_if_quiet(h->s, PING_SECS, e, sizeof(e));
		}
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void
heartbeat_start(struct heartbeat *h, struct fs_stream *s)
{
	memset(h, 0, sizeof(*h));
	h->s = s;
	pthread_mutex_init(&h->send_lock, NULL);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	s->send_lock = &h->send_lock;
	h->started = pthread_create(&h->thread, NULL, heartbeat_main, h) == 0;
}

static void
heartbeat_busy(struct heartbeat *h, int busy)
{
	pthread_mutex_lock(&h->lock);
	h->busy = busy;
	pthread_mutex_unlock(&h->lock);
}

static void
heartbeat_stop(struct heartbeat *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = 1;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->started)
		pthread_join(h->thread, NULL);
	h->s->send_lock = NULL;
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->send_lock);
}

static int
reply_error(struct agent *a, const char *msg)
{
	char e[256];

	return stream_send(&a->s, F_ERROR, msg, strlen(msg), e, sizeof(e));
}

static int
reply_ok(struct agent *a, const char *msg)
{
	char e[256];

	return stream_send(&a->s, F_ACK, msg, msg ? strlen(msg) : 0, e, sizeof(e));
}

static void
maybe_save(struct agent *a, int force)
{
	char e[512];

	if (!a->dirty || !a->loaded)
		return;
	if (!force && time(NULL) - a->saved_at < 2)
		return;
	if (index_save(a->root, &a->ix, e, sizeof(e)) == 0) {
		a->dirty = 0;
		a->saved_at = time(NULL);
	}
}

static void
put_reset(struct put *p)
{
	if (p->fd >= 0)
		close(p->fd);
	file_clear(&p->want);
	free(p->final);
	free(p->tmp);
	free(p->have);
	free(p->failed);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

/* Remove trash older than trash_days. */
static void
prune_trash(struct agent *a)
{
	char *dir = xasprintf("%s/%s", a->root, FS_TRASH_DIR);
	DIR *d = opendir(dir);
	struct dirent *de;
	char cutoff[16];
	time_t t = time(NULL) - (time_t)a->trash_days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(cutoff, sizeof(cutoff), "%Y%m%d", &tm);
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, cutoff) >= 0)
			continue;
		{
			char *cmd = xasprintf("%s/%s", dir, de->d_name);
			pid_t pid = fork();

			if (pid == 0) {
				execlp("rm", "rm", "-rf", "--", cmd, (char *)NULL);
				_exit(127);
			}
			if (pid > 0) {
				int st;

				(void)waitpid(pid, &st, 0);
			}
			free(cmd);
		}
	}
	if (d)
		closedir(d);
	free(dir);
}

static int
handle_hello(struct agent *a, const struct frame *f)
{
	char *fld[8];
	int n = fields_split(f->payload.data ? f->payload.data : "", f->payload.len, fld, 8);
	struct stat sb;
	char *marker = NULL;
	int rc = -1;

	if (n < 7 || strcmp(fld[0], PROTO_VERSION) != 0) {
		reply_error(a, "protocol mismatch: update repctl on both ends to the same version");
		goto out;
	}
	if (fld[2][0] != '/') {
		reply_error(a, "the folder path must be absolute");
		goto out;
	}
	if (a->root_limit) {
		size_t l = strlen(a->root_limit);

		if (strncmp(fld[2], a->root_limit, l) != 0 ||
		    (fld[2][l] != '\0' && fld[2][l] != '/')) {
			char *m =
			    xasprintf("folder %s is outside the directory this agent serves (%s)",
				fld[2], a->root_limit);

			reply_error(a, m);
			free(m);
			goto out;
		}
	}
	if (stat(fld[2], &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		char *m = xasprintf("folder %s does not exist on node '%s' (or is not a directory)",
		    fld[2], fld[3]);

		reply_error(a, m);
		free(m);
		goto out;
	}
	free(a->root);
	free(a->folder);
	free(a->self);
	a->root = xstrdup(fld[2]);
	a->folder = xstrdup(fld[1]);
	a->self = xstrdup(fld[3]);
	a->trash_days = atoi(fld[6]);
	ignore_free(a->ig);
	a->ig = ignore_new(fld[5]);
	marker = xasprintf("%s/%s", a->root, FS_MARKER);
	if (access(marker, F_OK) != 0) {
		if (fld[4][0] == '1') {
			char *dir = xasprintf("%s/%s", a->root, FS_STATE_DIR);
			FILE *fp;

			if (mkdir_p(dir, 0700) < 0 || (fp = fopen(marker, "w")) == NULL) {
				char *m = xasprintf("cannot create the folder marker %s: %s",
				    marker, strerror(errno));

				reply_error(a, m);
				free(m);
				free(dir);
				goto out;
			}
			fprintf(fp, "%s\n", a->folder);
			fclose(fp);
			free(dir);
		} else {
			char *m = xasprintf(
			    "folder marker %s is missing on node '%s': is the disk mounted?  Refusing "
			    "to sync (an empty folder would look like every file deleted).  If the "
			    "folder is right, recreate the marker with 'repctl add folder' or by hand",
			    marker, a->self);

			reply_error(a, m);
			free(m);
			goto out;
		}
	}
	{
		char *tmpdir = xasprintf("%s/%s", a->root, FS_STATE_DIR);

		if (mkdir_p(tmpdir, 0700) < 0) {
			char *m = xasprintf("cannot create %s: %s", tmpdir, strerror(errno));

			reply_error(a, m);
			free(m);
			free(tmpdir);
			goto out;
		}
		free(tmpdir);
	}
	index_free(&a->ix);
	if (index_load(a->root, &a->ix, a->err, sizeof(a->err)) < 0) {
		reply_error(a, a->err);
		goto out;
	}
	a->loaded = 1;
	if (a->trash_days > 0)
		prune_trash(a);
	rc = reply_ok(a, a->self);
out:
	fields_free(fld, n);
	free(marker);
	return rc;
}

static int
handle_index(struct agent *a)
{
	struct scan_stats st;
	struct buf b = BUF_INIT;
	char e[256];
	int i, rc = 0;

	if (index_scan(a->root, &a->ix, a->self, a->ig, &st, a->err, sizeof(a->err)) < 0)
		return reply_error(a, a->err);
	a->dirty = 1;
	maybe_save(a, 1);
	for (i = 0; i < a->ix.n && rc == 0; i++) {
		index_line_brief(&b, &a->ix.f[i]);
		buf_putc(&b, '\n');
		if (b.len > (512 << 10)) {
			rc = stream_send(&a->s, F_INDEX, b.data, b.len, e, sizeof(e));
			buf_reset(&b);
		}
	}
	if (rc == 0 && b.len)
		rc = stream_send(&a->s, F_INDEX, b.data, b.len, e, sizeof(e));
	buf_reset(&b);
	buf_printf(&b, "%ld\t%ld\t%ld\t%ld\t%lld", st.files, st.hashed, st.changed, st.deleted,
	    st.bytes_hashed);
	if (rc == 0)
		rc = stream_send(&a->s, F_INDEX_END, b.data, b.len, e, sizeof(e));
	buf_free(&b);
	return rc;
}

/* One full entry (with its blocks), for a transfer. */
static int
handle_entry(struct agent *a, const struct frame *f)
{
	char *fld[1];
	int n = fields_split(f->payload.data ? f->payload.data : "", f->payload.len, fld, 1);
	struct fs_file *e = n == 1 ? index_find(&a->ix, fld[0]) : NULL;
	struct buf b = BUF_INIT;
	int rc;

	if (e == NULL || e->deleted) {
		rc = reply_error(a, "no such file in the index (changed since the scan?)");
	} else {
		index_line(&b, e);
		rc = stream_send(&a->s, F_INDEX, b.data, b.len, a->err, sizeof(a->err));
	}
	buf_free(&b);
	fields_free(fld, n);
	return rc;
}

/* Read len bytes at off of a file under the folder, checking their hash. */
static int
handle_block(struct agent *a, const struct frame *f)
{
	char *fld[4];
	int n = fields_split(f->payload.data ? f->payload.data : "", f->payload.len, fld, 4);
	char *full = NULL;
	uint8_t *data = NULL, want[SHA256_LEN], got[SHA256_LEN];
	int fd = -1, rc;
	long long off;
	long len;
	ssize_t r;

	if (n < 4 || path_resolve(a->root, fld[0], &full, a->err, sizeof(a->err)) < 0) {
		rc = reply_error(a, n < 4 ? "malformed block request" : a->err);
		goto out;
	}
	off = atoll(fld[1]);
	len = atol(fld[2]);
	if (off < 0 || len <= 0 || len > FRAME_MAX - 64 || sha256_from_hex(fld[3], want) < 0) {
		rc = reply_error(a, "malformed block request");
		goto out;
	}
	fd = open(full, O_RDONLY | O_NOFOLLOW);
	data = xmalloc((size_t)len);
	r = fd < 0 ? -1 : pread(fd, data, (size_t)len, off);
	sha256(data, r > 0 ? (size_t)r : 0, got);
	if (r != len || memcmp(want, got, SHA256_LEN) != 0) {
		char *m = xasprintf("%s changed on node '%s' since it was scanned; the next run "
				    "picks up the new version",
		    fld[0], a->self);

		rc = reply_error(a, m);
		free(m);
		goto out;
	}
	rc = stream_send(&a->s, F_BLOCK, data, (size_t)len, a->err, sizeof(a->err));
out:
	if (fd >= 0)
		close(fd);
	free(data);
	free(full);
	fields_free(fld, n);
	return rc;
}

/* The temp name beside the target: dir/.NAME.<hash16>.repctl-part */
static char *
part_name(const char *final, const char *hash)
{
	const char *slash = strrchr(final, '/');
	size_t dl = (size_t)(slash - final);

	return xasprintf("%.*s/.%s.%.16s%s", (int)dl, final, slash + 1, hash, FS_PART_SUFFIX);
}

/* Does this local file still look as the index says (not changed since the scan)? */
static int
unchanged_since_scan(const char *full, const struct fs_file *e)
{
	struct stat sb;

	if (lstat(full, &sb) < 0)
		return e == NULL || e->deleted;
	if (e == NULL || e->deleted)
		return 0;
	return sb.st_size == e->size &&
	    (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec == e->mtime_ns &&
	    (uint64_t)sb.st_ino == e->inode;
}

/* Copy a block we already have somewhere (hash lookup over our index). */
static int
local_block(struct agent *a, const struct fs_block *want, int outfd)
{
	int i, j;
	uint8_t *data = xmalloc(want->len), got[SHA256_LEN];

	for (i = 0; i < a->ix.n; i++) {
		struct fs_file *f = &a->ix.f[i];

		if (f->deleted)
			continue;
		for (j = 0; j < f->nblocks; j++) {
			char *full;
			int fd;
			ssize_t r;

			if (f->blocks[j].len != want->len ||
			    memcmp(f->blocks[j].hash, want->hash, SHA256_LEN) != 0)
				continue;
			full = xasprintf("%s/%s", a->root, f->path);
			fd = open(full, O_RDONLY | O_NOFOLLOW);
			free(full);
			if (fd < 0)
				continue;
			r = pread(fd, data, want->len, f->blocks[j].off);
			close(fd);
			sha256(data, r > 0 ? (size_t)r : 0, got);
			if (r == (ssize_t)want->len && memcmp(got, want->hash, SHA256_LEN) == 0 &&
			    pwrite(outfd, data, want->len, want->off) == (ssize_t)want->len) {
				free(data);
				return 1;
			}
		}
	}
	free(data);
	return 0;
}

static int
handle_put_begin(struct agent *a, const struct frame *f)
{
	char *line = xstrndup(f->payload.data ? f->payload.data : "", f->payload.len);
	struct buf missing = BUF_INIT;
	struct fs_file *cur;
	int i, rc;
	uint8_t *tmpdata = NULL;

	put_reset(&a->put);
	if (index_parse_line(line, &a->put.want, a->err, sizeof(a->err)) < 0 ||
	    path_resolve(a->root, a->put.want.path, &a->put.final, a->err, sizeof(a->err)) < 0) {
		rc = reply_error(a, a->err);
		goto out;
	}
	cur = index_find(&a->ix, a->put.want.path);
	if (!unchanged_since_scan(a->put.final, cur)) {
		char *m = xasprintf("%s changed on node '%s' since it was scanned; not overwriting "
				    "it (the next run decides again)",
		    a->put.want.path, a->self);

		rc = reply_error(a, m);
		free(m);
		goto out;
	}
	{
		/* parent directories */
		char *dir = xstrdup(a->put.final);
		char *slash = strrchr(dir, '/');

		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0) {
			char *m = xasprintf("cannot create directory %s: %s", dir, strerror(errno));

			rc = reply_error(a, m);
			free(m);
			free(dir);
			goto out;
		}
		free(dir);
	}
	a->put.tmp = part_name(a->put.final, a->put.want.hash);
	a->put.fd = open(a->put.tmp, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
	if (a->put.fd < 0 || ftruncate(a->put.fd, a->put.want.size) < 0) {
		char *m = xasprintf("cannot write %s: %s", a->put.tmp, strerror(errno));

		rc = reply_error(a, m);
		free(m);
		goto out;
	}
	a->put.have = xcalloc((size_t)a->put.want.nblocks + 1, 1);
	for (i = 0; i < a->put.want.nblocks; i++) {
		const struct fs_block *b = &a->put.want.blocks[i];
		uint8_t got[SHA256_LEN];
		ssize_t r;

		/* already in the part file (a resumed transfer)? */
		tmpdata = xrealloc(tmpdata, b->len ? b->len : 1);
		r = pread(a->put.fd, tmpdata, b->len, b->off);
		sha256(tmpdata, r > 0 ? (size_t)r : 0, got);
		if (r == (ssize_t)b->len && memcmp(got, b->hash, SHA256_LEN) == 0)
			a->put.have[i] = 1;
		else if (local_block(a, b, a->put.fd))
			a->put.have[i] = 1;
		else
			buf_printf(&missing, "%s%d", missing.len ? "," : "", i);
	}
	rc = stream_send(
	    &a->s, F_HAVE, missing.data ? missing.data : "", missing.len, a->err, sizeof(a->err));
out:
	free(tmpdata);
	buf_free(&missing);
	free(line);
	return rc;
}

static int
handle_put_data(struct agent *a, const struct frame *f)
{
	const uint8_t *p = (const uint8_t *)f->payload.data;
	uint32_t i;
	const struct fs_block *b;
	uint8_t got[SHA256_LEN];

	/* no reply: data frames are streamed; a failure is reported at PUT_END */
	if (a->put.fd < 0 || a->put.failed)
		return 0;
	if (f->payload.len < 4) {
		a->put.failed = xstrdup("malformed block data");
		return 0;
	}
	i = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if ((int)i >= a->put.want.nblocks) {
		a->put.failed = xstrdup("block index out of range");
		return 0;
	}
	b = &a->put.want.blocks[i];
	sha256(p + 4, f->payload.len - 4, got);
	if (f->payload.len - 4 != b->len || memcmp(got, b->hash, SHA256_LEN) != 0) {
		a->put.failed = xstrdup("a block arrived damaged (hash mismatch)");
		return 0;
	}
	if (pwrite(a->put.fd, p + 4, b->len, b->off) != (ssize_t)b->len) {
		a->put.failed = xasprintf("cannot write %s: %s", a->put.tmp, strerror(errno));
		return 0;
	}
	a->put.have[i] = 1;
	return 0;
}

/* Move a file into the trash (or unlink it when there is no trash). */
static int
to_trash(struct agent *a, const char *rel, const char *full)
{
	char day[16], *dest, *dir, *slash;
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	if (a->trash_days <= 0)
		return unlink(full) < 0 && errno != ENOENT ? -1 : 0;
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	dest = xasprintf("%s/%s/%s/%s", a->root, FS_TRASH_DIR, day, rel);
	dir = xstrdup(dest);
	slash = strrchr(dir, '/');
	*slash = '\0';
	rc = mkdir_p(dir, 0700);
	if (rc == 0) {
		if (access(dest, F_OK) == 0) {
			/* a second version the same day: keep both */
			char *d2 = xasprintf("%s.%ld", dest, (long)t);

			free(dest);
			dest = d2;
		}
		rc = rename(full, dest);
	}
	free(dest);
	free(dir);
	return rc;
}

static void
fsync_dir_of(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd;

	*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

static int
handle_put_end(struct agent *a)
{
	struct fs_file check;
	struct fs_file *cur;
	struct timespec ts[2];
	struct stat sb;
	int i;

	if (a->put.fd < 0)
		return reply_error(a, "no file being put");
	if (a->put.failed) {
		char *m = xstrdup(a->put.failed);
		int rc;

		put_reset(&a->put); /* the part file stays: a retry resumes from it */
		rc = reply_error(a, m);
		free(m);
		return rc;
	}
	for (i = 0; i < a->put.want.nblocks; i++)
		if (!a->put.have[i])
			return reply_error(a, "the transfer ended with blocks missing");
	memset(&check, 0, sizeof(check));
	if (fsync(a->put.fd) < 0 || file_hash(a->put.tmp, &check, a->err, sizeof(a->err)) < 0 ||
	    strcmp(check.hash, a->put.want.hash) != 0) {
		free(check.blocks);
		unlink(a->put.tmp);
		put_reset(&a->put);
		return reply_error(a, "the assembled file does not match its hash; discarded");
	}
	free(check.blocks);
	ts[0].tv_sec = a->put.want.mtime_ns / 1000000000LL;
	ts[0].tv_nsec = a->put.want.mtime_ns % 1000000000LL;
	ts[1] = ts[0];
	if (fchmod(a->put.fd, a->put.want.mode & 07777) < 0 || futimens(a->put.fd, ts) < 0)
		return reply_error(a, "cannot set the mode or mtime of the new file");
	close(a->put.fd);
	a->put.fd = -1;
	cur = index_find(&a->ix, a->put.want.path);
	if (!unchanged_since_scan(a->put.final, cur)) {
		char *m =
		    xasprintf("%s changed on node '%s' during the transfer; not overwriting it",
			a->put.want.path, a->self);
		int rc = reply_error(a, m);

		free(m);
		return rc;
	}
	if (lstat(a->put.final, &sb) == 0 && to_trash(a, a->put.want.path, a->put.final) < 0) {
		char *m = xasprintf(
		    "cannot move the old %s to the trash: %s", a->put.final, strerror(errno));
		int rc = reply_error(a, m);

		free(m);
		return rc;
	}
	if (rename(a->put.tmp, a->put.final) < 0) {
		char *m = xasprintf("cannot rename into %s: %s", a->put.final, strerror(errno));
		int rc = reply_error(a, m);

		free(m);
		return rc;
	}
	fsync_dir_of(a->put.final);
	/* record the new version with its stat, so the next scan finds it unchanged */
	if (cur == NULL)
		cur = index_add(&a->ix, a->put.want.path);
	else {
		vv_free(&cur->vv);
		free(cur->blocks);
	}
	lstat(a->put.final, &sb);
	cur->deleted = 0;
	cur->size = a->put.want.size;
	cur->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
	cur->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;
	cur->inode = (uint64_t)sb.st_ino;
	cur->mode = sb.st_mode & 07777;
	memcpy(cur->hash, a->put.want.hash, sizeof(cur->hash));
	cur->vv = a->put.want.vv;
	a->put.want.vv.e = NULL;
	a->put.want.vv.n = 0;
	cur->blocks = a->put.want.blocks;
	cur->nblocks = a->put.want.nblocks;
	a->put.want.blocks = NULL;
	a->put.want.nblocks = 0;
	index_sort(&a->ix);
	a->dirty = 1;
	put_reset(&a->put);
	maybe_save(a, 0);
	return reply_ok(a, NULL);
}

/* path, expected hash ("-" for none), vv to record for the tombstone */
static int
handle_delete(struct agent *a, const struct frame *f)
{
	char *fld[3];
	int n = fields_split(f->payload.data ? f->payload.data : "", f->payload.len, fld, 3);
	char *full = NULL;
	struct fs_file *cur;
	struct vv v;
	int rc;

	if (n < 3 || path_resolve(a->root, fld[0], &full, a->err, sizeof(a->err)) < 0 ||
	    vv_parse(fld[2], &v) < 0) {
		rc = reply_error(a, n < 3 ? "malformed delete" : a->err);
		goto out;
	}
	cur = index_find(&a->ix, fld[0]);
	if (!unchanged_since_scan(full, cur) ||
	    (cur && !cur->deleted && strcmp(cur->hash, fld[1]) != 0)) {
		char *m = xasprintf("%s changed on node '%s' since it was scanned; not deleting it",
		    fld[0], a->self);

		rc = reply_error(a, m);
		free(m);
		vv_free(&v);
		goto out;
	}
	if (access(full, F_OK) == 0 && to_trash(a, fld[0], full) < 0) {
		char *m = xasprintf("cannot delete %s: %s", full, strerror(errno));

		rc = reply_error(a, m);
		free(m);
		vv_free(&v);
		goto out;
	}
	if (cur == NULL)
		cur = index_add(&a->ix, fld[0]);
	vv_free(&cur->vv);
	cur->vv = v;
	cur->deleted = 1;
	cur->hash[0] = '\0';
	free(cur->blocks);
	cur->blocks = NULL;
	cur->nblocks = 0;
	cur->size = 0;
	index_sort(&a->ix);
	a->dirty = 1;
	maybe_save(a, 0);
	rc = reply_ok(a, NULL);
out:
	free(full);
	fields_free(fld, n);
	return rc;
}

/* path, new name: move our version aside under the conflict name */
static int
handle_conflict_copy(struct agent *a, const struct frame *f)
{
	char *fld[2];
	int n = fields_split(f->payload.data ? f->payload.data : "", f->payload.len, fld, 2);
	char *full = NULL, *dest = NULL;
	struct fs_file *cur, *nf;
	int rc;

	if (n < 2 || path_resolve(a->root, fld[0], &full, a->err, sizeof(a->err)) < 0 ||
	    path_resolve(a->root, fld[1], &dest, a->err, sizeof(a->err)) < 0) {
		rc = reply_error(a, n < 2 ? "malformed conflict copy" : a->err);
		goto out;
	}
	cur = index_find(&a->ix, fld[0]);
	if (cur == NULL || cur->deleted || !unchanged_since_scan(full, cur)) {
		rc = reply_error(a, "the file changed since the scan; the next run decides again");
		goto out;
	}
	if (rename(full, dest) < 0) {
		char *m = xasprintf("cannot rename %s: %s", full, strerror(errno));

		rc = reply_error(a, m);
		free(m);
		goto out;
	}
	fsync_dir_of(dest);
	nf = index_add(&a->ix, fld[1]);
	cur = index_find(&a->ix, fld[0]); /* index_add may have moved entries */
	{
		struct stat sb;
		char *self_vv = xasprintf("{\"%s\": 1}", a->self);

		lstat(dest, &sb);
		nf->size = cur->size;
		nf->mtime_ns = cur->mtime_ns;
		nf->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;
		nf->inode = (uint64_t)sb.st_ino;
		nf->mode = cur->mode;
		memcpy(nf->hash, cur->hash, sizeof(nf->hash));
		nf->blocks = cur->blocks;
		nf->nblocks = cur->nblocks;
		if (vv_parse(self_vv, &nf->vv) < 0)
			nf->vv.n = 0;
		free(self_vv);
	}
	/* the name is free now; its old vector stays so the winner dominates it */
	cur->blocks = NULL;
	cur->nblocks = 0;
	cur->deleted = 1;
	cur->hash[0] = '\0';
	cur->size = 0;
	index_sort(&a->ix);
	a->dirty = 1;
	rc = reply_ok(a, NULL);
out:
	free(full);
	free(dest);
	fields_free(fld, n);
	return rc;
}

/* path, vv: merge into our entry (same content on both sides) */
static int
handle_index_update(struct agent *a, const struct frame *f)
{
	char *fld[2];
	int n = fields_split(f->payload.data ? f->payload.data : "", f->payload.len, fld, 2);
	struct fs_file *cur;
	struct vv v, m;
	char perr[256];
	int rc;

	if (n < 2 || path_check(fld[0], perr, sizeof(perr)) < 0 || vv_parse(fld[1], &v) < 0) {
		rc = reply_error(a, "malformed index update");
		goto out;
	}
	cur = index_find(&a->ix, fld[0]);
	if (cur) {
		vv_merge(&cur->vv, &v, &m);
		vv_free(&cur->vv);
		cur->vv = m;
		a->dirty = 1;
	}
	vv_free(&v);
	rc = reply_ok(a, NULL);
out:
	fields_free(fld, n);
	return rc;
}

int
agent_serve(int rfd, int wfd, const char *root_limit)
{
	struct agent a;
	struct heartbeat hb;
	struct frame f;
	int rc = 0;

	memset(&a, 0, sizeof(a));
	a.put.fd = -1;
	a.root_limit = root_limit;
	stream_init_fds(&a.s, rfd, wfd, 3);
	index_init(&a.ix);
	heartbeat_start(&hb, &a.s);
	for (;;) {
		char e[512];

		heartbeat_busy(&hb, 0);
		if (stream_recv(&a.s, &f, e, sizeof(e)) < 0)
			break; /* EOF: the coordinator went away */
		heartbeat_busy(&hb, 1);
		if (f.type != F_HELLO && f.type != F_BYE && !a.loaded) {
			rc = reply_error(&a, "send HELLO first");
		} else {
			switch (f.type) {
			case F_HELLO: rc = handle_hello(&a, &f); break;
			case F_INDEX_REQ: rc = handle_index(&a); break;
			case F_BLOCK_REQ: rc = handle_block(&a, &f); break;
			case F_ENTRY_REQ: rc = handle_entry(&a, &f); break;
			case F_PUT_BEGIN: rc = handle_put_begin(&a, &f); break;
			case F_PUT_DATA: rc = handle_put_data(&a, &f); break;
			case F_PUT_END: rc = handle_put_end(&a); break;
			case F_DELETE: rc = handle_delete(&a, &f); break;
			case F_CONFLICT_COPY: rc = handle_conflict_copy(&a, &f); break;
			case F_INDEX_UPDATE: rc = handle_index_update(&a, &f); break;
			case F_BYE:
				maybe_save(&a, 1);
				rc = reply_ok(&a, NULL);
				frame_free(&f);
				goto done;
			default: rc = reply_error(&a, "unknown request"); break;
			}
		}
		frame_free(&f);
		if (rc < 0)
			break;
	}
done:
	maybe_save(&a, 1);
	heartbeat_stop(&hb);
	put_reset(&a.put);
	index_free(&a.ix);
	ignore_free(a.ig);
	stream_free(&a.s);
	free(a.root);
	free(a.folder);
	free(a.self);
	return rc < 0 ? 1 : 0;
}

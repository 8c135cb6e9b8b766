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
 *     locally and only the missing ones are asked for; the whole-file
 *     hash is computed as the blocks land, in file order (a block that
 *     lands before the ones in front of it is read back from the part file
 *     once they are in), so PUT_END checks it without reading the file
 *     again; then mtime and mode are set, the old version kept in the
 *     trash (a hard link) and the new one renamed over it: a reader sees
 *     the old file or the new one, never half, and never no file;
 *   - durability is batched when the coordinator asks for it (PUT_END
 *     "defer", see fs_proto.h): the verified part file waits in the batch
 *     and F_COMMIT makes the whole batch durable together (fsync of each
 *     part, then per file the stat check, trash and rename, then one fsync
 *     per directory touched) and answers one line per file; only then is a
 *     file recorded in the index.  A plain PUT_END does all of that for the
 *     one file at once (a coordinator that does not batch);
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "fsutil.h"
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
	char *have;          /* per block: 1 when written */
	char *failed;        /* first error while receiving data (reported at PUT_END) */
	struct sha256 whole; /* the whole-file hash of blocks [0, fed) */
	int fed;
	uint8_t *scratch; /* read-back buffer of put_catch_up */
	size_t scratch_cap;
};

/*
 * A file that passed PUT_END "defer": its part file is complete and
 * verified (hash, mode, mtime) and waits for F_COMMIT.  Owned by the batch;
 * pending_clear frees it.  err: refused at PUT_END (reported at F_COMMIT,
 * nothing to commit).
 */
struct pending {
	struct fs_file want;
	char *final, *tmp;
	char *err;
};

/* the most files one batch holds; the coordinator commits far sooner (fs_sync.c) */
#define BATCH_MAX 1024

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
	int peer_pings; /* the coordinator skips F_PING (FS_FEATURE_PING in its HELLO) */
	double saved_at, save_cost; /* clock_mono seconds; how long the last save took */
	struct put put;
	struct pending *batch; /* waiting for F_COMMIT, in PUT_END order */
	int nbatch;
	char **newdirs; /* parents of directories created for puts: to fsync at the commit */
	int nnewdirs;
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

			/*
			 * Not under h->lock: a ping write can block (the peer's
			 * window is full while it is itself writing to us), and
			 * the main thread must still be able to mark itself idle
			 * and go on reading, or both ends would wait on each
			 * other.  A failed ping is the main thread's to notice,
			 * at its next send.
			 */
			pthread_mutex_unlock(&h->lock);
			(void)stream_ping_if_quiet(h->s, PING_SECS, e, sizeof(e));
			pthread_mutex_lock(&h->lock);
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

/*
 * Save the index when it changed: at once when forced, else at most every
 * two seconds, and never more often than ten times the last save took
 * (a save writes the whole index: at 100,000 files, a few tenths of a
 * second; saved every two seconds it would take a good part of a long
 * run).  Files committed in between are in the journal already.
 */
static void
maybe_save(struct agent *a, int force)
{
	char e[512];
	double t0;

	if (!a->dirty || !a->loaded)
		return;
	t0 = clock_mono();
	if (!force && t0 - a->saved_at < (a->save_cost * 10 > 2.0 ? a->save_cost * 10 : 2.0))
		return;
	if (index_save(a->root, &a->ix, e, sizeof(e)) == 0) {
		a->dirty = 0;
		a->saved_at = clock_mono();
		a->save_cost = a->saved_at - t0;
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
	free(p->scratch);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

static void
pending_clear(struct pending *pe)
{
	file_clear(&pe->want);
	free(pe->final);
	free(pe->tmp);
	free(pe->err);
	memset(pe, 0, sizeof(*pe));
}

/* Forget the batch (the coordinator went away): the part files stay, verified, for a resume. */
static void
batch_reset(struct agent *a)
{
	int i;

	for (i = 0; i < a->nbatch; i++)
		pending_clear(&a->batch[i]);
	free(a->batch);
	a->batch = NULL;
	a->nbatch = 0;
	for (i = 0; i < a->nnewdirs; i++)
		free(a->newdirs[i]);
	free(a->newdirs);
	a->newdirs = NULL;
	a->nnewdirs = 0;
}

/*
 * Create the directories of dir below the folder root that are missing, and
 * remember the parent of each one created: its new entry is made durable
 * (fsync of the parent) with the files of the commit.  0 or -1 (errno).
 */
static int
make_dirs(struct agent *a, const char *dir)
{
	size_t rl = strlen(a->root);
	struct stat sb;
	char *p, *s;
	int rc = 0;

	if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0; /* the common case: one stat */
	if (strncmp(dir, a->root, rl) != 0 || dir[rl] != '/')
		return mkdir_p(dir, 0755);
	p = xstrdup(dir);
	for (s = p + rl + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == 0) {
			char *slash = strrchr(p, '/');

			a->newdirs =
			    xrealloc(a->newdirs, sizeof(*a->newdirs) * (size_t)(a->nnewdirs + 1));
			a->newdirs[a->nnewdirs++] = xstrndup(p, (size_t)(slash - p));
		} else if (errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

/* Block i's bytes are at hand: hash them into the whole file when it is next in order. */
static void
put_feed(struct put *p, int i, const uint8_t *data)
{
	if (i != p->fed)
		return;
	sha256_update(&p->whole, data, p->want.blocks[i].len);
	p->fed++;
}

/*
 * Hash into the whole file the blocks that are already in the part file and
 * next in order (they landed before a block in front of them), reading them
 * back.  0, or -1 when the part file cannot be read.
 */
static int
put_catch_up(struct put *p)
{
	while (p->fed < p->want.nblocks && p->have[p->fed]) {
		const struct fs_block *b = &p->want.blocks[p->fed];
		ssize_t r;

		if (p->scratch_cap < b->len) {
			p->scratch = xrealloc(p->scratch, b->len);
			p->scratch_cap = b->len;
		}
		r = pread(p->fd, p->scratch, b->len, b->off);
		if (r != (ssize_t)b->len)
			return -1;
		sha256_update(&p->whole, p->scratch, b->len);
		p->fed++;
	}
	return 0;
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

/* 1 when the comma-separated list names feature */
static int
feature_listed(const char *list, const char *feature)
{
	size_t l = strlen(feature);

	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == l && strncmp(p, feature, l) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
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
	a->peer_pings = n >= 8 && feature_listed(fld[7], FS_FEATURE_PING);
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
	{
		/* a journal left behind (a killed agent): into the saved index, so appends start clean */
		char *j = xasprintf("%s/%s", a->root, FS_JOURNAL_FILE);

		if (access(j, F_OK) == 0) {
			a->dirty = 1;
			maybe_save(a, 1);
		}
		free(j);
	}
	if (a->trash_days > 0)
		prune_trash(a);
	batch_reset(a);
	{
		/* the node's name, then what this agent can do beyond protocol 1 */
		char *ack = xasprintf("%s\t%s", a->self, FS_FEATURE_COMMIT);

		rc = reply_ok(a, ack);
		free(ack);
	}
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

	{
		/*
		 * Fault injection for the heartbeat's tests (t_fs_ping.sh): a
		 * scan that takes this many more seconds, as on a slow disk.
		 */
		const char *d = getenv("REPCTL_TEST_SCAN_DELAY");

		if (d && atoi(d) > 0)
			sleep((unsigned)atoi(d));
	}
	if (index_scan(a->root, &a->ix, a->self, a->ig, &st, a->err, sizeof(a->err)) < 0)
		return reply_error(a, a->err);
	/*
	 * Saved now only when the scan changed an entry (a file hashed: new,
	 * changed, or only its stat moved; one deleted).  Otherwise the index
	 * is what was loaded (and a journal found at HELLO was saved then),
	 * and rewriting it would make every no-change run write and fsync the
	 * whole index (tens of MB at 100,000 files).
	 */
	if (st.hashed > 0 || st.deleted > 0)
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
	/*
	 * ctime too, as the scan does: an in-place edit of the same size whose
	 * writer put the mtime back (a tag editor keeping file times) changes
	 * only the ctime, and must not be overwritten.
	 */
	return sb.st_size == e->size &&
	    (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec == e->mtime_ns &&
	    (int64_t)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec == e->ctime_ns &&
	    (uint64_t)sb.st_ino == e->inode;
}

/* Read a candidate block at off of fd into data and check it against want. */
static int
block_matches(int fd, int64_t off, const struct fs_block *want, uint8_t *data)
{
	uint8_t got[SHA256_LEN];
	ssize_t r = pread(fd, data, want->len, off);

	if (r != (ssize_t)want->len)
		return 0;
	sha256(data, want->len, got);
	return memcmp(got, want->hash, SHA256_LEN) == 0;
}

/* Read block want from file path (at off) into data, check it, and write it to outfd. */
static int
copy_block_from(
    const char *path, int64_t off, const struct fs_block *want, int outfd, uint8_t *data)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW), ok;

	if (fd < 0)
		return 0;
	ok = block_matches(fd, off, want, data);
	close(fd);
	return ok && pwrite(outfd, data, want->len, want->off) == (ssize_t)want->len;
}

/*
 * Copy a block we already have somewhere into outfd: a hash lookup in our
 * index (a table by block hash: a linear search here made an initial sync
 * of n files cost n^2), then over the files of the batch (verified, not
 * yet committed).  On success its bytes are left in data (want->len bytes)
 * and 1 is returned.
 */
static int
local_block(struct agent *a, const struct fs_block *want, int outfd, uint8_t *data)
{
	const struct fs_file *f;
	size_t cursor = 0;
	int i, j;

	while ((f = index_find_block(&a->ix, want->hash, want->len, &cursor, &j)) != NULL) {
		char *full = xasprintf("%s/%s", a->root, f->path);
		int ok = copy_block_from(full, f->blocks[j].off, want, outfd, data);

		free(full);
		if (ok)
			return 1;
	}
	for (i = 0; i < a->nbatch; i++) {
		const struct pending *pe = &a->batch[i];

		if (pe->err)
			continue;
		for (j = 0; j < pe->want.nblocks; j++)
			if (pe->want.blocks[j].len == want->len &&
			    memcmp(pe->want.blocks[j].hash, want->hash, SHA256_LEN) == 0 &&
			    copy_block_from(pe->tmp, pe->want.blocks[j].off, want, outfd, data))
				return 1;
	}
	return 0;
}

/* Is block b of the part file entirely a hole (never written: no need to read it)? */
static int
part_hole(int fd, const struct fs_block *b)
{
	off_t d = lseek(fd, b->off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO; /* no data at or after off */
	return d >= b->off + (off_t)b->len;
}

static int
handle_put_begin(struct agent *a, const struct frame *f)
{
	char *line = xstrndup(f->payload.data ? f->payload.data : "", f->payload.len);
	struct buf missing = BUF_INIT;
	struct fs_file *cur;
	struct stat pst;
	int i, rc, resume;
	int64_t total = 0;
	uint8_t *tmpdata = NULL;

	put_reset(&a->put);
	if (index_parse_line(line, &a->put.want, a->err, sizeof(a->err)) < 0 ||
	    path_resolve(a->root, a->put.want.path, &a->put.final, a->err, sizeof(a->err)) < 0) {
		rc = reply_error(a, a->err);
		goto out;
	}
	for (i = 0; i < a->put.want.nblocks; i++)
		total += a->put.want.blocks[i].len;
	if (a->put.want.deleted || a->put.want.hash[0] == '\0' || total != a->put.want.size) {
		rc = reply_error(a, "malformed put: its blocks do not make up the file");
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
		if (make_dirs(a, dir) < 0) {
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
	/* a part file with data in it is an interrupted transfer: its verified blocks count */
	resume = a->put.fd >= 0 && fstat(a->put.fd, &pst) == 0 && pst.st_size > 0;
	if (a->put.fd < 0 || ftruncate(a->put.fd, a->put.want.size) < 0) {
		char *m = xasprintf("cannot write %s: %s", a->put.tmp, strerror(errno));

		rc = reply_error(a, m);
		free(m);
		goto out;
	}
	a->put.have = xcalloc((size_t)a->put.want.nblocks + 1, 1);
	sha256_init(&a->put.whole);
	a->put.fed = 0;
	for (i = 0; i < a->put.want.nblocks; i++) {
		const struct fs_block *b = &a->put.want.blocks[i];

		tmpdata = xrealloc(tmpdata, b->len ? b->len : 1);
		if (resume && !part_hole(a->put.fd, b) &&
		    block_matches(a->put.fd, b->off, b, tmpdata))
			a->put.have[i] = 1;
		else if (local_block(a, b, a->put.fd, tmpdata))
			a->put.have[i] = 1;
		else
			buf_printf(&missing, "%s%d", missing.len ? "," : "", i);
		if (a->put.have[i])
			put_feed(&a->put, i, tmpdata); /* in order up to the first missing block */
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

	/*
	 * No reply: data frames are streamed; a failure is reported at PUT_END.
	 * Data for a put that PUT_BEGIN refused (a pushed small file, whose
	 * data left before the refusal was read) is dropped.
	 */
	if (a->put.fd < 0 || a->put.have == NULL || a->put.failed)
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
	if (f->payload.len - 4 != b->len) {
		a->put.failed = xstrdup("a block arrived damaged (wrong length)");
		return 0;
	}
	sha256(p + 4, b->len, got);
	if (memcmp(got, b->hash, SHA256_LEN) != 0) {
		a->put.failed = xstrdup("a block arrived damaged (hash mismatch)");
		return 0;
	}
	if (pwrite(a->put.fd, p + 4, b->len, b->off) != (ssize_t)b->len) {
		a->put.failed = xasprintf("cannot write %s: %s", a->put.tmp, strerror(errno));
		return 0;
	}
	a->put.have[i] = 1;
	if ((int)i == a->put.fed) {
		put_feed(&a->put, (int)i, p + 4);
		if (put_catch_up(&a->put) < 0)
			a->put.failed =
			    xasprintf("cannot read back %s: %s", a->put.tmp, strerror(errno));
	}
	return 0;
}

/*
 * Where the old version of rel goes in the trash (directories created): a
 * second version the same day gets a suffix.  NULL when the trash cannot
 * be made (errno set).
 */
static char *
trash_dest(struct agent *a, const char *rel)
{
	char day[16], *dest, *dir, *slash;
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	dest = xasprintf("%s/%s/%s/%s", a->root, FS_TRASH_DIR, day, rel);
	dir = xstrdup(dest);
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (mkdir_p(dir, 0700) < 0) {
		int e = errno;

		free(dir);
		free(dest);
		errno = e;
		return NULL;
	}
	free(dir);
	if (access(dest, F_OK) == 0) {
		/* a second version the same day: keep both */
		char *d2 = xasprintf("%s.%ld", dest, (long)t);

		free(dest);
		dest = d2;
	}
	return dest;
}

/* Move a file into the trash (or unlink it when there is no trash). */
static int
to_trash(struct agent *a, const char *rel, const char *full)
{
	char *dest;
	int rc;

	if (a->trash_days <= 0)
		return unlink(full) < 0 && errno != ENOENT ? -1 : 0;
	if ((dest = trash_dest(a, rel)) == NULL)
		return -1;
	rc = rename(full, dest);
	free(dest);
	return rc;
}

/*
 * Keep the old version of a file that a new one is about to replace: a hard
 * link in the trash, so that the rename of the new version over the name
 * replaces it in one step (the name is never missing, not even after a
 * power cut between the two).  Where hard links are not supported (some
 * removable-disk file systems), the old file moves to the trash as before.
 * No trash: nothing to do, the rename replaces it.  0 or -1 (errno).
 */
static int
keep_old_version(struct agent *a, const char *rel, const char *full)
{
	char *dest;
	int rc;

	if (a->trash_days <= 0)
		return 0;
	if ((dest = trash_dest(a, rel)) == NULL)
		return -1;
	rc = link(full, dest);
	if (rc < 0 && errno != EEXIST)
		rc = rename(full, dest);
	free(dest);
	return rc;
}

/*
 * The end of a put, before any commit: every block in, the whole-file hash
 * (computed as the blocks landed) equal to the one announced, mode and
 * mtime set on the part file.  The part's fd stays open in a->put.  NULL,
 * or the refusal (malloc'ed; the put is reset: a part file with verified
 * blocks stays for a retry, one that does not match its hash is removed).
 */
static char *
put_verify(struct agent *a)
{
	uint8_t digest[SHA256_LEN];
	char hex[SHA256_HEX_LEN];
	struct timespec ts[2];
	char *m;
	int i;

	if (a->put.fd < 0)
		return xstrdup("no file being put");
	if (a->put.failed) {
		m = xstrdup(a->put.failed);
		put_reset(&a->put); /* the part file stays: a retry resumes from it */
		return m;
	}
	for (i = 0; i < a->put.want.nblocks; i++)
		if (!a->put.have[i]) {
			put_reset(&a->put);
			return xstrdup("the transfer ended with blocks missing");
		}
	if (put_catch_up(&a->put) < 0) {
		m = xasprintf("cannot read back %s: %s", a->put.tmp, strerror(errno));
		put_reset(&a->put);
		return m;
	}
	sha256_final(&a->put.whole, digest);
	sha256_hex(digest, hex);
	if (a->put.fed != a->put.want.nblocks || strcmp(hex, a->put.want.hash) != 0) {
		unlink(a->put.tmp);
		put_reset(&a->put);
		return xstrdup("the assembled file does not match its hash; discarded");
	}
	ts[0].tv_sec = a->put.want.mtime_ns / 1000000000LL;
	ts[0].tv_nsec = a->put.want.mtime_ns % 1000000000LL;
	ts[1] = ts[0];
	if (fchmod(a->put.fd, a->put.want.mode & 07777) < 0 || futimens(a->put.fd, ts) < 0) {
		put_reset(&a->put);
		return xstrdup("cannot set the mode or mtime of the new file");
	}
	return NULL;
}

/* Move the put's verified file into a pending entry (the fd is closed). */
static void
put_to_pending(struct put *p, struct pending *pe)
{
	memset(pe, 0, sizeof(*pe));
	pe->want = p->want;
	memset(&p->want, 0, sizeof(p->want));
	pe->final = p->final;
	pe->tmp = p->tmp;
	p->final = p->tmp = NULL;
	put_reset(p);
}

/*
 * Put a verified, durable part file in place: the stat check against the
 * index (a file changed locally since the scan is never overwritten), the
 * old version kept in the trash, the rename.  The directory is not synced
 * here.  NULL, or the refusal (malloc'ed).
 */
static char *
put_in_place(struct agent *a, const struct pending *pe)
{
	struct fs_file *cur = index_find(&a->ix, pe->want.path);
	struct stat sb;

	if (!unchanged_since_scan(pe->final, cur))
		return xasprintf("%s changed on node '%s' during the transfer; not overwriting it",
		    pe->want.path, a->self);
	if (lstat(pe->final, &sb) == 0 && keep_old_version(a, pe->want.path, pe->final) < 0)
		return xasprintf(
		    "cannot move the old %s to the trash: %s", pe->final, strerror(errno));
	if (rename(pe->tmp, pe->final) < 0)
		return xasprintf("cannot rename into %s: %s", pe->final, strerror(errno));
	return NULL;
}

/* Record a file put in place (and durable) in the index, with its stat, so the next scan finds it unchanged. */
static void
record_put(struct agent *a, struct pending *pe)
{
	struct fs_file *cur = index_find(&a->ix, pe->want.path);
	int existed = cur != NULL;
	struct stat sb;

	if (cur == NULL)
		cur = index_add(&a->ix, pe->want.path);
	else {
		vv_free(&cur->vv);
		free(cur->blocks);
	}
	memset(&sb, 0, sizeof(sb));
	(void)lstat(pe->final, &sb);
	cur->deleted = 0;
	cur->size = pe->want.size;
	cur->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
	cur->ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;
	cur->inode = (uint64_t)sb.st_ino;
	cur->mode = sb.st_mode & 07777;
	memcpy(cur->hash, pe->want.hash, sizeof(cur->hash));
	cur->vv = pe->want.vv;
	pe->want.vv.e = NULL;
	pe->want.vv.n = 0;
	cur->blocks = pe->want.blocks;
	cur->nblocks = pe->want.nblocks;
	pe->want.blocks = NULL;
	pe->want.nblocks = 0;
	/*
	 * Not sorted here (a sort per file made a sync of n files cost
	 * n^2 log n): the lookups are by hash table, and the next scan sorts.
	 */
	if (existed)
		index_blocks_changed(&a->ix, cur);
	a->dirty = 1;
}

static char **commit_all(struct agent *a);

/*
 * PUT_END.  Payload "defer" (FS_PUT_DEFER): the verified file joins the
 * batch, its write-back is started, and nothing is answered (the outcome is
 * a line of the F_COMMIT answer).  Empty payload: the file is made durable
 * and put in place at once, answered F_ACK or F_ERROR.
 */
static int
handle_put_end(struct agent *a, const struct frame *f)
{
	int defer = f->payload.len == strlen(FS_PUT_DEFER) &&
	    memcmp(f->payload.data, FS_PUT_DEFER, f->payload.len) == 0;
	struct pending pe;
	char *path = xstrdup(a->put.want.path ? a->put.want.path : "");
	char *m = put_verify(a);
	int i, rc;

	if (defer) {
		if (m == NULL && a->nbatch >= BATCH_MAX)
			m = xstrdup("too many files waiting for F_COMMIT");
		if (m == NULL) {
			/* start the write-back now: F_COMMIT's fsync then mostly waits for it */
			(void)sync_file_range(a->put.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
			put_to_pending(&a->put, &pe);
		} else {
			memset(&pe, 0, sizeof(pe));
			pe.want.path = path;
			path = NULL;
			pe.err = m;
			put_reset(&a->put);
		}
		free(path);
		a->batch = xrealloc(a->batch, sizeof(*a->batch) * (size_t)(a->nbatch + 1));
		a->batch[a->nbatch++] = pe;
		return 0;
	}
	free(path);
	if (m) {
		put_reset(&a->put);
		rc = reply_error(a, m);
		free(m);
		return rc;
	}
	{
		/* a batch of one, beside whatever the batch holds */
		struct pending *saved = a->batch;
		int nsaved = a->nbatch;
		char **why;

		put_to_pending(&a->put, &pe);
		a->batch = &pe;
		a->nbatch = 1;
		why = commit_all(a);
		a->batch = saved;
		a->nbatch = nsaved;
		m = why[0];
		free(why);
		for (i = 0; i < a->nnewdirs; i++)
			free(a->newdirs[i]);
		a->nnewdirs = 0;
		maybe_save(a, 0);
	}
	rc = m ? reply_error(a, m) : reply_ok(a, NULL);
	free(m);
	pending_clear(&pe);
	return rc;
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/*
 * fsync each of paths[0..n) (files or directories, opened with flags), up
 * to FSYNC_THREADS at a time; errs[i] is 0 or the errno of path i.  Each
 * file is still synced and checked on its own, but concurrent fsyncs share
 * the filesystem's journal commits (ext4, xfs: one commit for all that
 * wait together), where one after the other each paid a commit of its
 * own: at 64 small files a batch, that was most of a commit's time.
 */
#define FSYNC_THREADS 8

struct fsync_job {
	char *const *paths;
	int *errs;
	int n, next, flags;
	pthread_mutex_t lock;
};

static void
fsync_one(const char *path, int flags, int *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);

	*err = 0;
	if (fd < 0 || fsync(fd) < 0)
		*err = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
}

static void *
fsync_worker(void *arg)
{
	struct fsync_job *j = arg;

	for (;;) {
		int i;

		pthread_mutex_lock(&j->lock);
		i = j->next++;
		pthread_mutex_unlock(&j->lock);
		if (i >= j->n)
			return NULL;
		fsync_one(j->paths[i], j->flags, &j->errs[i]);
	}
}

/* flags: O_NOFOLLOW for part files, O_DIRECTORY for directories (the root may be a symlink) */
static void
fsync_paths(char *const *paths, int n, int flags, int *errs)
{
	struct fsync_job j = { paths, errs, n, 0, flags, PTHREAD_MUTEX_INITIALIZER };
	pthread_t t[FSYNC_THREADS];
	int i, started = 0;

	for (i = 0; i < FSYNC_THREADS - 1 && i < n - 1; i++)
		if (pthread_create(&t[started], NULL, fsync_worker, &j) == 0)
			started++;
	(void)fsync_worker(&j); /* this thread works too (and alone when none started) */
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

/*
 * Make the batch durable and put it in place; why[i] (malloc'ed) is the
 * reason file i was not, NULL when it is done.
 *   1. every verified part file fsynced (data, size, mode, mtime: their
 *      write-back was started at PUT_END);
 *   2. the stat check of each file against the index; the entries of
 *      those that pass go to the index journal, fsynced, each with the
 *      stat of its part file (the journal replay keeps an entry only when
 *      that very inode is under the name: one whose rename never happened
 *      is ignored);
 *   3. per file, in order: the stat check again (at the moment of the
 *      rename), the old version kept in the trash, the rename;
 *   4. one fsync per directory touched (the renames) and per parent of a
 *      directory created;
 *   5. the files recorded in the in-memory index (saved within two
 *      seconds; the journal holds them meanwhile).
 * A file is done only once both its data and its name are durable.
 */
static char **
commit_all(struct agent *a)
{
	char **dirs = xcalloc((size_t)(a->nbatch + a->nnewdirs) + 1, sizeof(*dirs));
	char **why = xcalloc((size_t)a->nbatch + 1, sizeof(*why));
	struct fs_file *jent = xcalloc((size_t)a->nbatch + 1, sizeof(*jent));
	const struct fs_file **jptr = xcalloc((size_t)a->nbatch + 1, sizeof(*jptr));
	char e[512];
	int i, j, ndirs = 0, nj = 0;

	{
		/* 1: the parts, fsynced together */
		char **paths = xcalloc((size_t)a->nbatch + 1, sizeof(*paths));
		int *errs = xcalloc((size_t)a->nbatch + 1, sizeof(*errs));
		int *which = xcalloc((size_t)a->nbatch + 1, sizeof(*which));
		int np = 0;

		for (i = 0; i < a->nbatch; i++) {
			if (a->batch[i].err) {
				why[i] = xstrdup(a->batch[i].err);
				continue;
			}
			which[np] = i;
			paths[np++] = a->batch[i].tmp;
		}
		fsync_paths(paths, np, O_NOFOLLOW, errs);
		for (j = 0; j < np; j++)
			if (errs[j])
				why[which[j]] = xasprintf("cannot make %s durable: %s",
				    a->batch[which[j]].tmp, strerror(errs[j]));
		free(paths);
		free(errs);
		free(which);
	}
	for (i = 0; i < a->nbatch; i++) {
		struct pending *pe = &a->batch[i];
		struct stat sb;

		if (why[i])
			continue;
		if (!unchanged_since_scan(pe->final, index_find(&a->ix, pe->want.path))) {
			why[i] = xasprintf("%s changed on node '%s' during the transfer; not "
					   "overwriting it",
			    pe->want.path, a->self);
			continue;
		}
		if (lstat(pe->tmp, &sb) < 0) {
			why[i] = xasprintf("cannot stat %s: %s", pe->tmp, strerror(errno));
			continue;
		}
		jent[nj] = pe->want; /* shallow: path, hash, vv and blocks stay the batch's */
		jent[nj].deleted = 0;
		jent[nj].mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
		jent[nj].ctime_ns = (int64_t)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;
		jent[nj].inode = (uint64_t)sb.st_ino;
		jent[nj].mode = sb.st_mode & 07777;
		jptr[nj] = &jent[nj];
		nj++;
	}
	/*
	 * No journal, no rename: a file answered "done" must be in the index
	 * after a crash (or a later scan takes it for a new local file).  The
	 * parts stay and the next run reuses their verified blocks.
	 */
	if (nj > 0 && index_journal_append(a->root, jptr, nj, e, sizeof(e)) < 0)
		for (i = 0; i < a->nbatch; i++)
			if (!why[i])
				why[i] = xasprintf(
				    "cannot write the index journal on node '%s': %s", a->self, e);
	for (i = 0; i < a->nbatch; i++) {
		struct pending *pe = &a->batch[i];
		char *slash;

		if (why[i] || (why[i] = put_in_place(a, pe)) != NULL)
			continue;
		dirs[ndirs] = xstrdup(pe->final);
		slash = strrchr(dirs[ndirs], '/');
		*slash = '\0';
		ndirs++;
	}
	for (j = 0; j < a->nnewdirs; j++)
		dirs[ndirs++] = xstrdup(a->newdirs[j]);
	if (ndirs > 1)
		qsort(dirs, (size_t)ndirs, sizeof(*dirs), cmp_str);
	{
		/* 4: each directory once, fsynced together */
		char **uniq = xcalloc((size_t)ndirs + 1, sizeof(*uniq));
		int *errs = xcalloc((size_t)ndirs + 1, sizeof(*errs));
		int nu = 0;

		for (j = 0; j < ndirs; j++)
			if (j == 0 || strcmp(dirs[j], dirs[j - 1]) != 0)
				uniq[nu++] = dirs[j];
		fsync_paths(uniq, nu, O_DIRECTORY, errs);
		for (j = 0; j < nu; j++) {
			if (!errs[j])
				continue;
			/*
			 * In place but not known durable: not "done".  Rare (an
			 * I/O error): every file of the batch is answered so.
			 */
			for (i = 0; i < a->nbatch; i++)
				if (!why[i])
					why[i] =
					    xasprintf("cannot make the directory %s durable: %s",
						uniq[j], strerror(errs[j]));
		}
		free(uniq);
		free(errs);
	}
	for (i = 0; i < a->nbatch; i++)
		if (why[i] == NULL)
			record_put(a, &a->batch[i]);
	for (j = 0; j < ndirs; j++)
		free(dirs[j]);
	free(dirs);
	free(jent);
	free(jptr);
	return why;
}

/*
 * F_COMMIT: commit_all, then one answer line per file, in PUT_END order:
 * PATH TAB "ok" TAB, or PATH TAB "error" TAB MESSAGE (fields escaped as
 * everywhere).  The heartbeat pings while this runs.
 */
static int
handle_commit(struct agent *a)
{
	char **why = commit_all(a);
	struct buf out = BUF_INIT;
	int i, rc;

	for (i = 0; i < a->nbatch; i++) {
		field_put(&out, a->batch[i].want.path);
		if (why[i] == NULL) {
			buf_puts(&out, "\tok\t\n");
		} else {
			buf_puts(&out, "\terror\t");
			field_put(&out, why[i]);
			buf_putc(&out, '\n');
		}
		free(why[i]);
	}
	free(why);
	batch_reset(a);
	maybe_save(a, 0);
	rc = stream_send(&a->s, F_ACK, out.data ? out.data : "", out.len, a->err, sizeof(a->err));
	buf_free(&out);
	return rc;
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
	(void)fsync_dir_of(dest);
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
		heartbeat_busy(&hb, a.peer_pings);
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
			case F_PUT_END: rc = handle_put_end(&a, &f); break;
			case F_COMMIT: rc = handle_commit(&a); break;
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
	batch_reset(&a);
	index_free(&a.ix);
	ignore_free(a.ig);
	stream_free(&a.s);
	free(a.root);
	free(a.folder);
	free(a.self);
	return rc < 0 ? 1 : 0;
}

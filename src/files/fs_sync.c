/*
 * fs_sync.c - one run of a folder, driven by the coordinator.
 *
 * Where it sits: `repctl sync folder` and the coordinator's folder worker
 * call folder_run().  For each node of the folder an agent is started
 * (fs_agent.c): through pipes for the coordinator's own node (REPCTL_NODE
 * or `node` in the configuration), over an SSH exec channel (fs_ssh.c) for
 * every other node.  Each agent scans and sends its index; the first node
 * (the hub) is reconciled with every other one, path by path
 * (fs_reconcile.c); the actions are sorted (conflict copies, copies,
 * deletes) and carried out, and the passes repeat until a pass finds
 * nothing to do, so a change on one client reaches the others through the
 * hub in the same run.
 *
 * A copy relays only the blocks the receiver lacks: the receiver answers
 * PUT_BEGIN with the indexes of the blocks it could not find locally (in
 * the old version, in other files, or in a part file left by an
 * interrupted run), and the coordinator asks the sender for just those.
 * Block bytes are zstd-compressed on the wire when they shrink.
 *
 * Durability is batched (an agent that announces FS_FEATURE_COMMIT): each
 * file ends with a PUT_END "defer" that is not answered, the receiver keeps
 * the verified part file, and every BATCH_FILES files or BATCH_BYTES bytes
 * per receiver (and at the end of each pair) an F_COMMIT makes the batch
 * durable and puts it in place.  Only a file the commit answered "ok" is
 * counted as done, and only then is the sender's vector updated: a run that
 * dies before the commit leaves verified part files, which the next run
 * reuses without sending their data again.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "fs_agent.h"
#include "fs_index.h"
#include "fs_path.h"
#include "fs_reconcile.h"
#include "fs_ssh.h"
#include "fs_stream.h"
#include "fs_sync.h"
#include "log.h"
#include "meta.h"
#include "xmalloc.h"

enum folder_type
folder_type_parse(const char *s)
{
	if (strcmp(s, "send-only") == 0)
		return FT_SEND_ONLY;
	if (strcmp(s, "receive-only") == 0)
		return FT_RECEIVE_ONLY;
	if (strcmp(s, "send-receive") == 0)
		return FT_SEND_RECEIVE;
	return (enum folder_type) - 1;
}

const char *
folder_type_name(enum folder_type t)
{
	return t == FT_SEND_ONLY   ? "send-only"
	    : t == FT_RECEIVE_ONLY ? "receive-only"
				   : "send-receive";
}

void
folder_def_free(struct folder_def *f)
{
	int i;

	free(f->name);
	free(f->ignore);
	free(f->status);
	for (i = 0; i < f->nm; i++) {
		free(f->m[i].node);
		free(f->m[i].path);
	}
	free(f->m);
	memset(f, 0, sizeof(*f));
}

int
folder_load(PGconn *meta, const char *name, struct folder_def *out, char *err, size_t errlen)
{
	const char *p[1] = { name };
	PGresult *r;
	int i;

	memset(out, 0, sizeof(*out));
	r = db_query(meta,
	    "SELECT ignore, status, coalesce(interval_s, 0) FROM repctl.folder "
	    "WHERE name = $1",
	    1, p, err, errlen);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return 1;
	}
	out->name = xstrdup(name);
	out->ignore = xstrdup(PQgetvalue(r, 0, 0));
	out->status = xstrdup(PQgetvalue(r, 0, 1));
	out->interval = atoi(PQgetvalue(r, 0, 2));
	PQclear(r);
	r = db_query(meta,
	    "SELECT node, path, type FROM repctl.folder_node WHERE folder = $1 "
	    "ORDER BY ord",
	    1, p, err, errlen);
	if (r == NULL) {
		folder_def_free(out);
		return -1;
	}
	out->nm = PQntuples(r);
	out->m = xcalloc((size_t)out->nm + 1, sizeof(*out->m));
	for (i = 0; i < out->nm; i++) {
		out->m[i].node = xstrdup(PQgetvalue(r, i, 0));
		out->m[i].path = xstrdup(PQgetvalue(r, i, 1));
		out->m[i].type = folder_type_parse(PQgetvalue(r, i, 2));
	}
	PQclear(r);
	return 0;
}

/* ---- peers: one agent per node ---- */

/*
 * A file sent to a batching receiver, waiting for its F_COMMIT answer.
 * Owned by the receiver's peer (pend_clear frees it).
 */
struct pend {
	char *path;
	struct peer *src; /* the sender */
	struct vv merged; /* the vector the file carries */
	int update_src;   /* the sender's own vector becomes merged once the file is done */
	int conflict;     /* the second half of a conflict: counted as one when done */
	long long size, sent;
	char *err; /* the coordinator's own reason (a transfer broken on the sender's side) */
};

struct peer {
	const struct folder_member *m;
	struct fs_stream s;
	pid_t pid;            /* local agent */
	struct ssh_conn *ssh; /* remote agent */
	struct fs_index ix;
	int open;
	int batching;      /* the agent can defer puts to an F_COMMIT */
	struct pend *pend; /* deferred puts to this node, in PUT_END order */
	int npend;
	long long pend_bytes;
};

/* A file up to this size, new to a batching receiver, is pushed without waiting for its answer (see transfer). */
#define PUSH_MAX (64 << 10)

/* Block requests in flight to a sender, per file (see transfer). */
#define BLOCK_WINDOW 16

/* A commit every this many files or bytes per receiver (and at the end of each pair). */
#define BATCH_FILES 64
#define BATCH_BYTES (64LL << 20)

static void
pend_clear(struct pend *pe)
{
	free(pe->path);
	vv_free(&pe->merged);
	free(pe->err);
	memset(pe, 0, sizeof(*pe));
}

static ssize_t
ssh_io_read(void *io, void *buf, size_t len, char *err, size_t errlen)
{
	return ssh_conn_read(io, buf, len, err, errlen);
}

static int
ssh_io_write(void *io, const void *buf, size_t len, char *err, size_t errlen)
{
	return ssh_conn_write(io, buf, len, err, errlen);
}

static int
peer_spawn_local(struct peer *p, char *err, size_t errlen)
{
	int in[2], out[2];
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0) {
		snprintf(err, errlen, "cannot find the repctl binary: %s", strerror(errno));
		return -1;
	}
	self[n] = '\0';
	if (pipe(in) < 0 || pipe(out) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	p->pid = fork();
	if (p->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		/*
		 * The running binary itself, through the magic link: after
		 * an upgrade replaced the file (apt, a rebuild), readlink
		 * names "... (deleted)" and the new file may be another
		 * version; the link still reaches the image this
		 * coordinator runs, so agent and coordinator always match.
		 */
		execl("/proc/self/exe", "repctl", "agent", (char *)NULL);
		execl(self, "repctl", "agent", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	stream_init_fds(&p->s, out[0], in[1], 0); /* local pipes: no compression */
	return 0;
}

static int
peer_connect_remote(
    const struct config *cfg, PGconn *meta, struct peer *p, char *err, size_t errlen)
{
	struct node n;
	struct ssh_target t;
	char *cmd;
	int found = meta_node_get(meta, p->m->node, &n, err, errlen);

	if (found != 0) {
		if (found > 0)
			snprintf(err, errlen, "node '%s' is not in the metadata", p->m->node);
		node_clear(&n);
		return -1;
	}
	if (n.ssh == NULL) {
		snprintf(err, errlen,
		    "node '%s' has no ssh= setting, so its folder cannot be reached; run 'repctl "
		    "update database %s ssh=USER@HOST:PORT' and 'repctl trust %s'",
		    p->m->node, p->m->node, p->m->node);
		node_clear(&n);
		return -1;
	}
	if (ssh_target_parse(n.ssh, &t, err, errlen) < 0) {
		node_clear(&n);
		return -1;
	}
	cmd = xasprintf("%s agent", n.agent ? n.agent : "repctl");
	p->ssh = ssh_exec_open(
	    &t, cfg->ssh_identity, cfg->ssh_known_hosts, cfg->ssh_timeout, cmd, err, errlen);
	free(cmd);
	ssh_target_clear(&t);
	node_clear(&n);
	if (p->ssh == NULL)
		return -1;
	ssh_conn_set_idle(p->ssh, cfg->ssh_io_timeout);
	stream_init_fds(&p->s, -1, -1, 3);
	p->s.io = p->ssh;
	p->s.io_read = ssh_io_read;
	p->s.io_write = ssh_io_write;
	p->s.bwlimit = (long)cfg->folder_bwlimit * 1024;
	return 0;
}

static int
peer_open(const struct config *cfg, PGconn *meta, const struct folder_def *f, struct peer *p,
    int create_marker, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	struct frame reply;
	char inner[ERRLEN];
	int rc;

	index_init(&p->ix);
	if (cfg->node && strcmp(cfg->node, p->m->node) == 0)
		rc = peer_spawn_local(p, inner, sizeof(inner));
	else
		rc = peer_connect_remote(cfg, meta, p, inner, sizeof(inner));
	if (rc < 0) {
		snprintf(err, errlen, "node '%s': %s", p->m->node, inner);
		return -1;
	}
	buf_puts(&b, "1\t");
	field_put(&b, f->name);
	buf_putc(&b, '\t');
	field_put(&b, p->m->path);
	buf_putc(&b, '\t');
	field_put(&b, p->m->node);
	buf_printf(&b, "\t%d\t", create_marker);
	field_put(&b, f->ignore[0] ? f->ignore : cfg->folder_ignore);
	buf_printf(&b, "\t%d\t%s", cfg->folder_trash_days, FS_FEATURE_PING);
	rc = stream_call(&p->s, F_HELLO, b.data, b.len, &reply, inner, sizeof(inner));
	buf_free(&b);
	if (rc < 0) {
		snprintf(err, errlen, "node '%s': %s", p->m->node, inner);
		return -1; /* an agent that refused HELLO has hung up: no BYE */
	}
	{
		/* "NODE" (an older agent) or "NODE\tcommit" */
		char *fld[2];
		int n = fields_split(
		    reply.payload.data ? reply.payload.data : "", reply.payload.len, fld, 2);

		p->batching = n == 2 && strcmp(fld[1], FS_FEATURE_COMMIT) == 0;
		fields_free(fld, n);
	}
	frame_free(&reply);
	p->open = 1;
	return 0;
}

static void
peer_close(struct peer *p)
{
	char e[256];
	struct frame reply;
	int i;

	if (p->open && !p->s.failed &&
	    stream_call(&p->s, F_BYE, NULL, 0, &reply, e, sizeof(e)) == 0)
		frame_free(&reply);
	for (i = 0; i < p->npend; i++)
		pend_clear(&p->pend[i]);
	free(p->pend);
	if (p->ssh)
		ssh_conn_close(p->ssh);
	if (p->pid > 0) {
		close(p->s.rfd);
		close(p->s.wfd);
		waitpid(p->pid, NULL, 0);
	}
	stream_free(&p->s);
	index_free(&p->ix);
	memset(p, 0, sizeof(*p));
}

/*
 * Ask for the index (the agent scans first); peer_index_read reads it.
 * Split so that both agents of a pair scan at the same time.
 */
static int
peer_index_ask(struct peer *p, char *err, size_t errlen)
{
	char inner[ERRLEN];

	if (stream_send(&p->s, F_INDEX_REQ, NULL, 0, inner, sizeof(inner)) < 0) {
		snprintf(err, errlen, "node '%s': %s", p->m->node, inner);
		return -1;
	}
	return 0;
}

/* Read the index asked for; every path is checked before anything is believed. */
static int
peer_index_read(struct peer *p, char *err, size_t errlen)
{
	struct frame f;
	char inner[ERRLEN];

	index_free(&p->ix);
	for (;;) {
		if (stream_recv(&p->s, &f, inner, sizeof(inner)) < 0)
			goto fail;
		if (f.type == F_INDEX_END) {
			frame_free(&f);
			break;
		}
		if (f.type == F_ERROR) {
			snprintf(inner, sizeof(inner), "%.*s", (int)f.payload.len, f.payload.data);
			frame_free(&f);
			goto fail;
		}
		if (f.type == F_INDEX && f.payload.len) {
			char *text = xstrndup(f.payload.data, f.payload.len), *line, *save = NULL;

			for (line = strtok_r(text, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save)) {
				struct fs_file e;
				struct fs_file *slot;
				char perr[512];

				if (index_parse_line(line, &e, inner, sizeof(inner)) < 0) {
					free(text);
					frame_free(&f);
					goto fail;
				}
				if (path_check(e.path, perr, sizeof(perr)) < 0) {
					snprintf(inner, sizeof(inner),
					    "its index holds an unsafe path, refused: %s", perr);
					file_clear(&e);
					free(text);
					frame_free(&f);
					goto fail;
				}
				slot = index_add(&p->ix, e.path);
				free(slot->path);
				*slot = e;
			}
			free(text);
		}
		frame_free(&f);
	}
	index_sort(&p->ix);
	return 0;
fail:
	snprintf(err, errlen, "node '%s': %s", p->m->node, inner);
	return -1;
}

/* ---- actions ---- */

struct action {
	enum fs_action act;
	char *path;
};

static int
cmp_action(const void *a, const void *b)
{
	const struct action *x = a, *y = b;

	if (x->act != y->act)
		return (int)x->act - (int)y->act;
	return strcmp(x->path, y->path);
}

static void
entry_of(const struct fs_file *f, struct fs_entry *e, const struct vv *empty)
{
	memset(e, 0, sizeof(*e));
	e->vv = empty;
	if (f == NULL)
		return;
	e->path = f->path;
	e->present = 1;
	e->deleted = f->deleted;
	e->size = f->size;
	e->mtime_ns = f->mtime_ns;
	e->mode = f->mode;
	e->hash = f->deleted ? NULL : f->hash;
	e->vv = &f->vv;
}

struct run_ctx {
	const struct config *cfg;
	struct folder_stats *st;
	int progress;
	long errors;
	char first_err[ERRLEN];
	double t0;
	long long planned;
};

static void
show_progress(struct run_ctx *rc, int final)
{
	double dt = clock_mono() - rc->t0, rate = dt > 0 ? (double)rc->st->bytes / dt : 0;
	double eta = rate > 0 && rc->planned > rc->st->bytes
	    ? (double)(rc->planned - rc->st->bytes) / rate
	    : 0;

	if (!rc->progress)
		return;
	fprintf(stderr, "\r%ld file(s), %.1f / %.1f MB, %.1f MB/s, ETA %.0fs   %s", rc->st->files,
	    (double)rc->st->bytes / 1e6, (double)rc->planned / 1e6, rate / 1e6, eta,
	    final ? "\n" : "");
}

static void note_error(struct run_ctx *rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note_error(struct run_ctx *rc, const char *fmt, ...)
{
	char msg[ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s", msg);
	if (rc->errors++ == 0)
		snprintf(rc->first_err, sizeof(rc->first_err), "%s", msg);
}

static int
send_index_update(struct peer *p, const char *path, const struct vv *v, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	char *json = vv_to_json(v);
	struct frame reply;
	int rc;

	field_put(&b, path);
	buf_putc(&b, '\t');
	buf_puts(&b, json);
	rc = stream_call(&p->s, F_INDEX_UPDATE, b.data, b.len, &reply, err, errlen);
	if (rc == 0)
		frame_free(&reply);
	free(json);
	buf_free(&b);
	return rc;
}

/* A broken transport ends the pair; a refused file does not. */
static int
transport_error(const char *err)
{
	return strstr(err, "closed the connection") || strstr(err, "write to peer") ||
	    strstr(err, "read from peer") || strstr(err, "ssh");
}

/*
 * The outcome of one put: done (failure NULL: counted, the sender's vector
 * updated when asked) or not (the error noted).  0, or -1 when the sender's
 * index update failed (err).
 */
static int
put_outcome(struct run_ctx *rc, struct peer *dst, struct pend *pe, const char *failure, char *err,
    size_t errlen)
{
	if (failure) {
		note_error(
		    rc, "%s: %s (%s <-> %s)", pe->path, failure, pe->src->m->node, dst->m->node);
		return 0;
	}
	log_debug("folder file done: %s on node '%s'", pe->path, dst->m->node);
	rc->st->files++;
	rc->st->reused += pe->size - pe->sent;
	if (pe->conflict)
		rc->st->conflicts++;
	if (pe->update_src && send_index_update(pe->src, pe->path, &pe->merged, err, errlen) < 0)
		return -1;
	return 0;
}

/*
 * F_COMMIT to a batching receiver: the files waiting there become durable
 * and are put in place; each answer line is the outcome of one.  0, or -1
 * when the transport broke (err; every waiting file is then not done: its
 * verified part file stays for the next run).
 */
static int
commit_batch(struct run_ctx *rc, struct peer *dst, char *err, size_t errlen)
{
	struct frame reply;
	char inner[ERRLEN];
	char *text = NULL, *line, *save = NULL;
	int i, ok = 0, broken = 0;

	if (dst->npend == 0)
		return 0;
	if (dst->s.failed) {
		snprintf(inner, sizeof(inner),
		    "the connection to node '%s' broke before the commit", dst->m->node);
		broken = 1;
	} else if (stream_call(&dst->s, F_COMMIT, NULL, 0, &reply, inner, sizeof(inner)) < 0) {
		broken = 1;
	} else {
		text = xstrndup(reply.payload.data ? reply.payload.data : "", reply.payload.len);
		frame_free(&reply);
	}
	line = text ? strtok_r(text, "\n", &save) : NULL;
	for (i = 0; i < dst->npend; i++) {
		struct pend *pe = &dst->pend[i];
		char *fld[3];
		int n = 0;
		const char *failure = NULL;
		char e2[ERRLEN];

		if (broken) {
			failure = inner;
		} else if (line == NULL || (n = fields_split(line, strlen(line), fld, 3)) < 2 ||
		    strcmp(fld[0], pe->path) != 0) {
			/* out of step: believe nothing more from this node */
			snprintf(inner, sizeof(inner), "node '%s' answered the commit out of step",
			    dst->m->node);
			dst->s.failed = 1;
			broken = 1;
			failure = inner;
		} else if (pe->err) {
			failure = pe->err;
		} else if (strcmp(fld[1], "ok") != 0) {
			failure = n == 3 ? fld[2] : "refused";
		}
		if (put_outcome(rc, dst, pe, failure, e2, sizeof(e2)) < 0) {
			note_error(
			    rc, "%s: %s (%s <-> %s)", pe->path, e2, pe->src->m->node, dst->m->node);
			if (ok == 0 && transport_error(e2)) {
				snprintf(err, errlen, "%s", e2);
				ok = -1;
			}
		}
		fields_free(fld, n);
		if (line)
			line = strtok_r(NULL, "\n", &save);
	}
	for (i = 0; i < dst->npend; i++)
		pend_clear(&dst->pend[i]);
	dst->npend = 0;
	dst->pend_bytes = 0;
	free(text);
	if (broken && ok == 0) {
		snprintf(err, errlen, "%s", inner);
		ok = -1;
	}
	return ok;
}

/* An F_INDEX answer to ENTRY_REQ (consumed) into full.  0, or -1 with err. */
static int
entry_parse(struct frame *reply, struct fs_file *full, char *err, size_t errlen)
{
	char *text = xstrndup(reply->payload.data ? reply->payload.data : "", reply->payload.len);
	int prc = reply->type == F_INDEX ? index_parse_line(text, full, err, errlen) : -1;

	if (reply->type != F_INDEX)
		snprintf(err, errlen, "unexpected answer to an entry request");
	free(text);
	frame_free(reply);
	return prc;
}

/*
 * The full entries (block lists) of the next files a run copies from one
 * sender, asked for ENTRY_WINDOW at a time: the requests are sent
 * together and the answers read in order (nothing else is in flight to the
 * sender then), so a run of n small files costs n/ENTRY_WINDOW round trips
 * to it instead of n.  Slot i holds the entry of action from + i (path
 * NULL: not fetched, or refused: transfer asks again and reports why).
 */
#define ENTRY_WINDOW 64

struct prefetch {
	int from, n;
	struct fs_file f[ENTRY_WINDOW];
};

static void
prefetch_clear(struct prefetch *pf)
{
	int i;

	for (i = 0; i < pf->n; i++)
		file_clear(&pf->f[i]);
	pf->from = pf->n = 0;
}

/* Fetch the entries of paths[0..n) from src.  0, or -1 when the transport broke (err). */
static int
prefetch_entries(struct peer *src, char *const *paths, int n, struct prefetch *pf, int from,
    char *err, size_t errlen)
{
	struct buf req = BUF_INIT;
	int i, sent = 0, rc = 0;

	prefetch_clear(pf);
	pf->from = from;
	for (i = 0; i < n && rc == 0; i++) {
		buf_reset(&req);
		field_put(&req, paths[i]);
		if (stream_send(&src->s, F_ENTRY_REQ, req.data, req.len, err, errlen) < 0)
			rc = -1;
		else
			sent++;
	}
	buf_free(&req);
	for (i = 0; i < sent; i++) {
		struct frame reply;
		char e2[ERRLEN];

		if (stream_recv(&src->s, &reply, err, errlen) < 0)
			return -1; /* the stream is out of step: the pair ends */
		if (reply.type == F_ERROR || entry_parse(&reply, &pf->f[i], e2, sizeof(e2)) < 0) {
			if (reply.type == F_ERROR)
				frame_free(&reply);
			memset(&pf->f[i], 0, sizeof(pf->f[i])); /* transfer asks again */
		}
		pf->n = i + 1;
	}
	return rc;
}

/*
 * Copy src's version of path (brief: its index entry without blocks) to
 * dst, recording vector v there; update_src / conflict: see struct pend.
 * To a batching receiver the file joins its batch (committed when the
 * batch is full, or by the caller at the end of the pair); to another it
 * is done or refused at once.  0; -1 with err: the file could not be sent
 * (nothing waits for a commit), or the transport broke; 1: a commit this
 * call made failed on a broken transport (its files are noted as not done,
 * err says why).
 */
static int
transfer(struct run_ctx *rc, struct peer *src, struct peer *dst, const struct fs_file *brief,
    struct fs_file *pre, const struct vv *v, int update_src, int conflict, char *err, size_t errlen)
{
	struct fs_file full, send;
	const struct fs_file *e = &full;
	struct buf line = BUF_INIT, req = BUF_INIT, data = BUF_INIT;
	struct frame reply, blk;
	struct pend pe;
	long long missing_bytes = 0;
	int ok = -1, broken = 0, *want = NULL, nwant = 0, asked = 0, got = 0, push;
	char *list, *tok, *save = NULL, drain[ERRLEN];

	/*
	 * A batch holds at most BATCH_BYTES: the files waiting are committed
	 * before a file that would overflow it (small files do not wait for
	 * the transfer of a large one to become durable).
	 */
	if (dst->batching && dst->npend > 0 && dst->pend_bytes + brief->size > BATCH_BYTES &&
	    commit_batch(rc, dst, err, errlen) < 0)
		return 1;
	/* the scan sent no block lists: this file's, fetched ahead (pre) or now */
	memset(&full, 0, sizeof(full));
	memset(&pe, 0, sizeof(pe));
	if (pre && pre->path) {
		full = *pre; /* taken over */
		memset(pre, 0, sizeof(*pre));
	} else {
		field_put(&req, brief->path);
		if (stream_call(&src->s, F_ENTRY_REQ, req.data, req.len, &reply, err, errlen) < 0 ||
		    entry_parse(&reply, &full, err, errlen) < 0) {
			buf_free(&req);
			return -1;
		}
	}
	if (strcmp(full.hash, brief->hash) != 0) {
		snprintf(err, errlen, "%s changed on node '%s' since the scan", brief->path,
		    src->m->node);
		file_clear(&full);
		buf_free(&req);
		return -1;
	}
	send = full;
	send.vv = *v;
	index_line(&line, &send);
	/*
	 * A small file new to the receiver is pushed: PUT_BEGIN, then every
	 * block at once, and the receiver's answer (which blocks it lacked, or
	 * its refusal) is read only after the data went out, so the round trip
	 * to the receiver overlaps with the one to the sender instead of
	 * following it.  What it may cost: the bytes of a small file whose
	 * blocks the receiver had elsewhere (a renamed or copied small file, a
	 * part file of it), at most PUSH_MAX each.
	 */
	push = dst->batching && e->size <= PUSH_MAX && index_find(&dst->ix, e->path) == NULL;
	if (push) {
		if (stream_send(&dst->s, F_PUT_BEGIN, line.data, line.len, err, errlen) < 0)
			goto out;
		list = xstrdup("");
		want = xmalloc(sizeof(*want) * ((size_t)e->nblocks + 1));
		for (nwant = 0; nwant < e->nblocks; nwant++)
			want[nwant] = nwant;
	} else {
		if (stream_call(&dst->s, F_PUT_BEGIN, line.data, line.len, &reply, err, errlen) < 0)
			goto out;
		list = xstrndup(reply.payload.data ? reply.payload.data : "", reply.payload.len);
		frame_free(&reply);
	}
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i = atoi(tok);

		if (i < 0 || i >= e->nblocks) {
			snprintf(err, errlen, "node '%s' asked for a block that does not exist",
			    dst->m->node);
			broken = 1;
			break;
		}
		want = xrealloc(want, sizeof(*want) * (size_t)(nwant + 1));
		want[nwant++] = i;
	}
	/*
	 * The missing blocks, with up to BLOCK_WINDOW requests in flight to the
	 * sender (it answers in order): no round trip per block.  The requests
	 * are small, so they never fill a pipe or an SSH window while the
	 * sender's answers wait to be read.
	 */
	while (!broken && got < nwant) {
		const struct fs_block *b;
		uint8_t hdr[4];
		int i;

		while (asked < nwant && asked - got < BLOCK_WINDOW) {
			char hex[SHA256_HEX_LEN];

			b = &e->blocks[want[asked]];
			sha256_hex(b->hash, hex);
			buf_reset(&req);
			field_put(&req, e->path);
			buf_printf(&req, "\t%lld\t%u\t%s", (long long)b->off, b->len, hex);
			if (stream_send(&src->s, F_BLOCK_REQ, req.data, req.len, err, errlen) < 0) {
				broken = 1;
				break;
			}
			asked++;
		}
		if (broken || stream_recv(&src->s, &blk, err, errlen) < 0) {
			broken = 1;
			break;
		}
		i = want[got++];
		if (blk.type == F_ERROR) {
			snprintf(err, errlen, "%.*s", (int)blk.payload.len,
			    blk.payload.data ? blk.payload.data : "");
			frame_free(&blk);
			/* the answers to the requests still in flight: read and dropped */
			while (
			    got < asked && stream_recv(&src->s, &blk, drain, sizeof(drain)) == 0) {
				frame_free(&blk);
				got++;
			}
			broken = 1;
			break;
		}
		b = &e->blocks[i];
		hdr[0] = (uint8_t)(i >> 24);
		hdr[1] = (uint8_t)(i >> 16);
		hdr[2] = (uint8_t)(i >> 8);
		hdr[3] = (uint8_t)i;
		buf_reset(&data);
		buf_add(&data, hdr, 4);
		buf_add(&data, blk.payload.data, blk.payload.len);
		frame_free(&blk);
		if (stream_send(&dst->s, F_PUT_DATA, data.data, data.len, err, errlen) < 0) {
			/*
			 * The receiver is gone, the sender is not: read and drop its
			 * answers to the requests still in flight, so that its stream
			 * stays in step for the rest of the run (a commit to it next).
			 */
			while (
			    got < asked && stream_recv(&src->s, &blk, drain, sizeof(drain)) == 0) {
				frame_free(&blk);
				got++;
			}
			free(list);
			goto out;
		}
		missing_bytes += b->len;
		rc->st->bytes += b->len;
		show_progress(rc, 0);
	}
	free(list);
	if (push) {
		/* the receiver's answer to PUT_BEGIN: nothing else of it is in flight */
		char e2[ERRLEN];

		if (stream_recv(&dst->s, &reply, e2, sizeof(e2)) < 0) {
			if (!broken)
				snprintf(err, errlen, "%s", e2);
			goto out;
		}
		if (reply.type == F_ERROR) {
			/* refused: no put is open there, so no PUT_END (its data was ignored) */
			if (!broken)
				snprintf(err, errlen, "%.*s", (int)reply.payload.len,
				    reply.payload.data ? reply.payload.data : "");
			frame_free(&reply);
			goto out;
		}
		frame_free(&reply);
	}
	pe.path = xstrdup(e->path);
	pe.src = src;
	{
		struct vv none = { NULL, 0 };

		vv_merge(v, &none, &pe.merged); /* a copy */
	}
	pe.update_src = update_src;
	pe.conflict = conflict;
	pe.size = e->size;
	pe.sent = missing_bytes;
	/* always end the put, so the agent's state and the stream stay in step */
	if (dst->batching) {
		char e2[ERRLEN];

		if (stream_send(&dst->s, F_PUT_END, FS_PUT_DEFER, strlen(FS_PUT_DEFER), e2,
			sizeof(e2)) < 0) {
			if (!broken)
				snprintf(err, errlen, "%s", e2);
			goto out;
		}
		if (broken)
			pe.err = xstrdup(err);
		dst->pend = xrealloc(dst->pend, sizeof(*dst->pend) * (size_t)(dst->npend + 1));
		dst->pend[dst->npend++] = pe;
		dst->pend_bytes += e->size;
		memset(&pe, 0, sizeof(pe));
		ok = 0;
		/* a commit that fails has noted its files: 1 tells the caller the transport broke */
		if ((dst->npend >= BATCH_FILES || dst->pend_bytes >= BATCH_BYTES) &&
		    commit_batch(rc, dst, err, errlen) < 0)
			ok = 1;
		goto out;
	}
	{
		char e2[ERRLEN];

		if (stream_call(&dst->s, F_PUT_END, NULL, 0, &reply, e2, sizeof(e2)) < 0) {
			if (!broken)
				snprintf(err, errlen, "%s", e2);
			goto out;
		}
		frame_free(&reply);
	}
	if (broken)
		goto out;
	/* done at once (an error in the sender's update is reported by the caller) */
	ok = put_outcome(rc, dst, &pe, NULL, err, errlen);
out:
	free(want);
	pend_clear(&pe);
	file_clear(&full);
	buf_free(&line);
	buf_free(&req);
	buf_free(&data);
	return ok;
}

static int
do_delete(struct peer *p, const struct fs_file *e, const struct vv *v, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	char *json = vv_to_json(v);
	struct frame reply;
	int rc;

	field_put(&b, e->path);
	buf_printf(&b, "\t%s\t%s", e->deleted ? "-" : e->hash, json);
	rc = stream_call(&p->s, F_DELETE, b.data, b.len, &reply, err, errlen);
	if (rc == 0)
		frame_free(&reply);
	free(json);
	buf_free(&b);
	return rc;
}

static int
do_conflict_copy(struct peer *p, const char *path, const char *newname, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	struct frame reply;
	int rc;

	field_put(&b, path);
	buf_putc(&b, '\t');
	field_put(&b, newname);
	rc = stream_call(&p->s, F_CONFLICT_COPY, b.data, b.len, &reply, err, errlen);
	if (rc == 0)
		frame_free(&reply);
	buf_free(&b);
	return rc;
}

/*
 * Reconcile peer a (hub) with b and carry out the actions.  Returns the
 * number of actions attempted, -1 when a transport failed.
 */
static int
reconcile_pair(struct run_ctx *rc, struct peer *a, struct peer *b)
{
	struct fs_side sa = { a->m->node, a->m->type }, sb = { b->m->node, b->m->type };
	struct action *acts = NULL;
	struct vv empty = { NULL, 0 };
	struct prefetch pf;
	int na = 0, cap = 0, i = 0, j = 0, k, transport = 0;

	/* merge-walk the two sorted indexes */
	while (i < a->ix.n || j < b->ix.n) {
		struct fs_file *fa = NULL, *fb = NULL;
		struct fs_entry ea, eb;
		enum fs_action act;
		int c;

		if (i >= a->ix.n)
			c = 1;
		else if (j >= b->ix.n)
			c = -1;
		else
			c = strcmp(a->ix.f[i].path, b->ix.f[j].path);
		if (c <= 0)
			fa = &a->ix.f[i++];
		if (c >= 0)
			fb = &b->ix.f[j++];
		entry_of(fa, &ea, &empty);
		entry_of(fb, &eb, &empty);
		act = reconcile(&sa, &ea, &sb, &eb);
		if (act == FA_NONE)
			continue;
		if (na == cap) {
			cap = cap ? cap * 2 : 64;
			acts = xrealloc(acts, sizeof(*acts) * (size_t)cap);
		}
		acts[na].act = act;
		acts[na].path = xstrdup(fa ? fa->path : fb->path);
		if ((act == FA_COPY_A_TO_B && fa) || (act == FA_CONFLICT_A && fb))
			rc->planned += act == FA_COPY_A_TO_B ? fa->size : fb->size;
		if ((act == FA_COPY_B_TO_A && fb) || (act == FA_CONFLICT_B && fa))
			rc->planned += act == FA_COPY_B_TO_A ? fb->size : fa->size;
		na++;
	}
	if (na > 1)
		qsort(acts, (size_t)na, sizeof(*acts), cmp_action);
	memset(&pf, 0, sizeof(pf));
	for (k = 0; k < na && !transport; k++) {
		struct fs_file *fa = index_find(&a->ix, acts[k].path);
		struct fs_file *fb = index_find(&b->ix, acts[k].path);
		struct fs_file *pre = NULL;
		struct vv merged;
		char err[ERRLEN];
		int r = 0;

		err[0] = '\0';
		if ((acts[k].act == FA_COPY_A_TO_B || acts[k].act == FA_COPY_B_TO_A) &&
		    (k < pf.from || k >= pf.from + pf.n)) {
			/* the block lists of this copy and the next ones from the same sender */
			char *paths[ENTRY_WINDOW];
			int m = 0;

			while (m < ENTRY_WINDOW && k + m < na && acts[k + m].act == acts[k].act) {
				paths[m] = acts[k + m].path;
				m++;
			}
			if (prefetch_entries(acts[k].act == FA_COPY_A_TO_B ? a : b, paths, m, &pf,
				k, err, sizeof(err)) < 0) {
				note_error(rc, "%s: %s (%s <-> %s)", acts[k].path, err, a->m->node,
				    b->m->node);
				transport = 1;
				break;
			}
		}
		if (k >= pf.from && k < pf.from + pf.n)
			pre = &pf.f[k - pf.from];
		vv_merge(fa ? &fa->vv : &empty, fb ? &fb->vv : &empty, &merged);
		switch (acts[k].act) {
		case FA_COPY_A_TO_B:
			r = transfer(rc, a, b, fa, pre, &merged,
			    vv_compare(&merged, &fa->vv) != VV_EQUAL, 0, err, sizeof(err));
			break;
		case FA_COPY_B_TO_A:
			r = transfer(rc, b, a, fb, pre, &merged,
			    vv_compare(&merged, &fb->vv) != VV_EQUAL, 0, err, sizeof(err));
			break;
		case FA_DELETE_ON_B:
			r = do_delete(b, fb, &merged, err, sizeof(err));
			if (r == 0) {
				rc->st->deleted++;
				if (vv_compare(&merged, &fa->vv) != VV_EQUAL)
					r = send_index_update(
					    a, fa->path, &merged, err, sizeof(err));
			}
			break;
		case FA_DELETE_ON_A:
			r = do_delete(a, fa, &merged, err, sizeof(err));
			if (r == 0) {
				rc->st->deleted++;
				if (vv_compare(&merged, &fb->vv) != VV_EQUAL)
					r = send_index_update(
					    b, fb->path, &merged, err, sizeof(err));
			}
			break;
		case FA_CONFLICT_A:
		case FA_CONFLICT_B: {
			/* the loser's version moves aside on its node, the winner takes the name */
			int a_loses = acts[k].act == FA_CONFLICT_A;
			struct peer *loser = a_loses ? a : b, *winner = a_loses ? b : a;
			struct fs_file *lf = a_loses ? fa : fb, *wf = a_loses ? fb : fa;
			char *cname =
			    conflict_name(acts[k].path, (int64_t)time(NULL), loser->m->node);

			log_info(
			    "folder conflict on %s: %s keeps the name, %s's version becomes %s",
			    acts[k].path, winner->m->node, loser->m->node, cname);
			r = do_conflict_copy(loser, lf->path, cname, err, sizeof(err));
			if (r == 0)
				r = transfer(
				    rc, winner, loser, wf, NULL, &merged, 1, 1, err, sizeof(err));
			free(cname);
			break;
		}
		case FA_MERGE_VV:
			r = send_index_update(a, acts[k].path, &merged, err, sizeof(err));
			if (r == 0)
				r = send_index_update(b, acts[k].path, &merged, err, sizeof(err));
			break;
		case FA_NONE: break;
		}
		if (r > 0) {
			transport = 1; /* noted by the commit */
		} else if (r < 0) {
			note_error(
			    rc, "%s: %s (%s <-> %s)", acts[k].path, err, a->m->node, b->m->node);
			/* a broken transport ends the pair; a refused file does not */
			if (transport_error(err))
				transport = 1;
		}
		vv_free(&merged);
	}
	prefetch_clear(&pf);
	/* what still waits in the batches is committed before the next pair or pass */
	for (k = 0; k < 2; k++) {
		char err[ERRLEN];

		if (commit_batch(rc, k == 0 ? a : b, err, sizeof(err)) < 0)
			transport = 1; /* its files are noted as not done */
	}
	for (k = 0; k < na; k++)
		free(acts[k].path);
	free(acts);
	return transport ? -1 : na;
}

int
folder_mark(const struct config *cfg, PGconn *meta, const struct folder_def *f)
{
	int i, marked = 0;

	signal(SIGPIPE, SIG_IGN); /* see folder_run */

	for (i = 0; i < f->nm; i++) {
		struct peer p;
		char err[ERRLEN];

		memset(&p, 0, sizeof(p));
		p.m = &f->m[i];
		if (peer_open(cfg, meta, f, &p, 1, err, sizeof(err)) < 0)
			log_warnx("no folder marker on %s: %s", p.m->node, err);
		else
			marked++;
		peer_close(&p);
	}
	return marked;
}

int
folder_run(const struct config *cfg, PGconn *meta, const struct folder_def *f, int progress,
    struct folder_stats *st, char *err, size_t errlen)
{
	struct peer *peers = xcalloc((size_t)f->nm + 1, sizeof(*peers));
	struct run_ctx rc;
	char *run_id = NULL;
	const char *p1[1] = { f->name };
	int i, pass, hub = 0, ok = -1;

	/*
	 * A local agent that exits (a refused HELLO, a crash) must not kill
	 * us with SIGPIPE on the next write to its pipe: the write fails with
	 * EPIPE and the error is reported.  (The daemon ignores SIGPIPE
	 * already; `repctl sync folder` and `add folder` did not.)
	 */
	signal(SIGPIPE, SIG_IGN);
	memset(st, 0, sizeof(*st));
	memset(&rc, 0, sizeof(rc));
	rc.cfg = cfg;
	rc.st = st;
	rc.progress = progress;
	rc.t0 = clock_mono();
	run_id = db_value(meta, "INSERT INTO repctl.folder_run (folder) VALUES ($1) RETURNING id",
	    1, p1, err, errlen);
	if (run_id == NULL)
		goto out;
	for (i = 0; i < f->nm; i++) {
		peers[i].m = &f->m[i];
		if (cfg->node && strcmp(cfg->node, f->m[i].node) == 0)
			hub = i;
	}
	for (i = 0; i < f->nm; i++)
		if (peer_open(cfg, meta, f, &peers[i], 0, err, errlen) < 0)
			goto out;
	for (pass = 0; pass < 4; pass++) {
		int acted = 0;
		long conflicts_before = st->conflicts;

		for (i = 0; i < f->nm; i++) {
			int n;

			if (i == hub)
				continue;
			/* both scan at once; the answers are read one after the other */
			if (peer_index_ask(&peers[hub], err, errlen) < 0 ||
			    peer_index_ask(&peers[i], err, errlen) < 0 ||
			    peer_index_read(&peers[hub], err, errlen) < 0 ||
			    peer_index_read(&peers[i], err, errlen) < 0)
				goto out;
			n = reconcile_pair(&rc, &peers[hub], &peers[i]);
			if (n < 0) {
				snprintf(err, errlen, "%s", rc.first_err);
				goto out;
			}
			acted += n;
		}
		if (acted == 0)
			break;
		/*
		 * Two nodes and no conflict: each side now has the other's
		 * changes, and another pass would only fetch both indexes again
		 * (for a big file that is its whole block list) to find nothing.
		 * A conflict copy still has to reach the winner, and with more
		 * nodes a change that reached the hub from a later node still
		 * has to reach the earlier ones: those need the next pass.
		 */
		if (f->nm == 2 && st->conflicts == conflicts_before)
			break;
	}
	ok = rc.errors ? -1 : 0;
	if (ok < 0)
		snprintf(err, errlen, "%ld file(s) not synced; first: %s", rc.errors, rc.first_err);
out:
	for (i = 0; i < f->nm; i++) {
		if (peers[i].ssh) /* the network: SSH channels, not the local pipe */
			st->wire += (long long)(peers[i].s.sent + peers[i].s.received);
		if (peers[i].open || peers[i].pid > 0 || peers[i].ssh)
			peer_close(&peers[i]);
	}
	show_progress(&rc, 1);
	free(peers);
	if (run_id) {
		char files[24], bytes[24], wire[24], del[24], con[24], e2[ERRLEN];
		const char *p[8] = { run_id, ok == 0 ? "true" : "false", files, bytes, wire, del,
			con, ok == 0 ? NULL : err };

		snprintf(files, sizeof(files), "%ld", st->files);
		snprintf(bytes, sizeof(bytes), "%lld", st->bytes);
		snprintf(wire, sizeof(wire), "%lld", st->wire);
		snprintf(del, sizeof(del), "%ld", st->deleted);
		snprintf(con, sizeof(con), "%ld", st->conflicts);
		if (db_execp(meta,
			"UPDATE repctl.folder_run SET ended_at = clock_timestamp(), ok = $2::bool, "
			"files = $3::bigint, bytes = $4::bigint, wire_bytes = $5::bigint, "
			"deleted = $6::bigint, conflicts = $7::bigint, error = $8 WHERE id = $1::bigint",
			8, p, e2, sizeof(e2)) < 0)
			log_warnx("cannot record the folder run: %s", e2);
		free(run_id);
	}
	return ok;
}

/*
 * fs_proto.h - the framed protocol between the coordinator and `repctl
 * agent` (over an SSH exec channel, or a pipe in tests).
 *
 * A frame: 4 bytes big-endian payload length (of what follows the header),
 * 1 byte type, 1 byte flags, then the payload.  Flag FRAME_ZSTD: the
 * payload is a zstd frame of the original bytes; it is set only when
 * compression made the payload smaller (audio does not shrink: it is sent
 * as it is).  Frames larger than FRAME_MAX are refused on both ends.
 */
#ifndef REPCTL_FS_PROTO_H
#define REPCTL_FS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define FRAME_HDR 6
#define FRAME_MAX (16 * 1024 * 1024)
#define FRAME_ZSTD 0x01

/* Frame types (requests from the coordinator, replies from the agent). */
enum frame_type {
	F_HELLO = 1, /* version, folder path; reply F_ACK with node info */
	F_ACK = 2,
	F_ERROR = 3,     /* payload: message text */
	F_INDEX_REQ = 4, /* scan and send the index */
	F_INDEX = 5,     /* index entries (text lines), possibly several frames */
	F_INDEX_END = 6,
	F_BLOCK_REQ = 7, /* path, offset, length: send these bytes */
	F_BLOCK = 8,     /* bytes */
	F_HAVE_REQ = 9,  /* list of block hashes: which do you have? */
	F_HAVE = 10,
	F_PUT_BEGIN = 11,     /* path, size, mtime, mode, hash, block list: start a file */
	F_PUT_DATA = 12,      /* block bytes for the file being put */
	F_PUT_COPY = 13,      /* reuse a local block: source path, offset, length */
	F_PUT_END = 14,       /* verify, fsync, rename; reply F_ACK or F_ERROR (see below) */
	F_DELETE = 15,        /* path, expected version: move to trash */
	F_CONFLICT_COPY = 16, /* path, new name: rename the local copy aside */
	F_INDEX_UPDATE = 17,  /* store entries in the agent's index */
	F_BYE = 18,
	F_ENTRY_REQ = 19,  /* path: send its full index line (with blocks) as F_INDEX */
	F_PING = 20,       /* agent: still working on the request (stream_recv skips it) */
	F_COMMIT = 21,     /* make the deferred puts durable, in place; reply F_ACK per file */
	F_LAST = F_COMMIT, /* the highest type: the decoder refuses anything above */
};

/*
 * Batched durability.  An agent that can batch says so in its HELLO answer
 * (F_ACK "NODE\tcommit"; an older agent answers "NODE" and is driven one
 * file at a time, as before).  To such an agent the coordinator sends
 * PUT_END with the payload FS_PUT_DEFER: the agent checks the file (every
 * block in, the whole-file hash computed as the blocks landed) and keeps
 * the verified part file in its batch, answering nothing.  F_COMMIT (empty
 * payload) then makes the whole batch durable and puts it in place; its
 * F_ACK holds one line per deferred PUT_END, in order: PATH TAB "ok" TAB,
 * or PATH TAB "error" TAB MESSAGE (fields escaped as in the other text
 * payloads).  A file answered "ok" is durable, data and name.  An agent
 * that does not know F_COMMIT refuses the frame (above F_LAST) and hangs up:
 * the run fails, nothing is half-done (its PUT_END committed each file).
 */
#define FS_FEATURE_COMMIT "commit"

/*
 * Heartbeat.  An agent pings (F_PING) while it works on a long request only
 * when the coordinator asked for it: the HELLO request's eighth field lists
 * what the coordinator accepts beyond protocol 1 (comma-separated), and
 * FS_FEATURE_PING there means "F_PING is skipped by my reader".  A
 * coordinator built before the heartbeat sends seven fields; it would take
 * an F_PING for an answer, so such a peer gets none.
 */
#define FS_FEATURE_PING "ping"
#define FS_PUT_DEFER "defer"

/*
 * Append one frame of type with payload to out, compressing the payload with
 * zstd at level when that makes it smaller (level 0: never compress).
 * 0, or -1 when the payload is larger than FRAME_MAX.
 */
int frame_encode(struct buf *out, enum frame_type type, const void *payload, size_t len, int level)
    __attribute__((warn_unused_result));

struct frame {
	enum frame_type type;
	uint8_t flags;      /* as received */
	struct buf payload; /* decompressed */
};

/*
 * Try to decode one frame from the start of in[0..len).  Returns the number
 * of bytes consumed (> 0) with *f filled (payload decompressed; free with
 * frame_free), 0 when more bytes are needed, or -1 on a malformed or
 * oversized frame (message in err).
 */
long frame_decode(const uint8_t *in, size_t len, struct frame *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void frame_free(struct frame *f);

#endif

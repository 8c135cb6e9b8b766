/*
 * fs_proto.c - framing of the protocol between the coordinator and `repctl
 * agent`: frame_encode() on the sending side, frame_decode() on the
 * receiving side, matched by the format described in fs_proto.h.
 *
 * Every request and reply of the file sync (index entries, block requests,
 * block bytes, put/delete commands) travels as one frame over the SSH exec
 * channel, or over a pipe in tests.  The transport reads whatever bytes
 * arrive into a buffer and calls frame_decode() on it until it returns 0
 * ("need more"), so decoding never blocks and never assumes a frame arrives
 * in one read.
 *
 * Decisions:
 *   - the payload is compressed with zstd's one-shot API only when the
 *     caller asks for a level > 0 and the result is strictly smaller;
 *     already compressed audio is sent as it is, so the receiver pays no
 *     decompression for it;
 *   - FRAME_MAX bounds both the bytes on the wire and the decompressed
 *     size, so a peer cannot make us allocate more than FRAME_MAX for one
 *     frame.  The length in the header is checked as soon as the 6 header
 *     bytes are there, before waiting for (or buffering) the payload.  A
 *     zstd payload must declare its content size in the zstd frame header
 *     (ZSTD_compress always writes it); an unknown size is refused rather
 *     than decompressed in a streaming loop;
 *   - an unknown type or an unknown flag bit is a malformed frame: the peer
 *     speaks another version of the protocol, and guessing would be worse
 *     than stopping.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "buf.h"
#include "errors.h"
#include "fs_proto.h"
#include "log.h"
#include "xmalloc.h"

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * Append one frame to out (which grows as needed and stays owned by the
 * caller).  A payload larger than FRAME_MAX is logged and refused with -1,
 * leaving out unchanged.  A compression failure (including "the result
 * would not be smaller") is not an error: the payload is then sent as it
 * is.
 */
int
frame_encode(struct buf *out, enum frame_type type, const void *payload, size_t len, int level)
{
	uint8_t hdr[FRAME_HDR];
	void *z = NULL;
	const void *body = payload;
	size_t blen = len;
	uint8_t flags = 0;
	int rc = -1;

	if (len > FRAME_MAX) {
		log_warnx(
		    "frame of type %d too large: %zu bytes (limit %d)", (int)type, len, FRAME_MAX);
		goto out;
	}
	if (level > 0 && len > 0) {
		size_t zlen;

		if (level > ZSTD_maxCLevel())
			level = ZSTD_maxCLevel();
		/*
		 * Room for len bytes only: a result that does not fit would not
		 * be sent anyway, and zstd then stops with dstSize_tooSmall
		 * instead of us allocating compressBound(len) for nothing.
		 */
		z = xmalloc(len);
		zlen = ZSTD_compress(z, len, payload, len, level);
		if (!ZSTD_isError(zlen) && zlen < len) {
			body = z;
			blen = zlen;
			flags |= FRAME_ZSTD;
		}
	}
	put_be32(hdr, (uint32_t)blen);
	hdr[4] = (uint8_t)type;
	hdr[5] = flags;
	buf_grow(out, FRAME_HDR + blen);
	buf_add(out, hdr, FRAME_HDR);
	buf_add(out, body, blen);
	rc = 0;
out:
	free(z);
	return rc;
}

/*
 * On success the decompressed (or copied) payload is in f->payload, always
 * allocated and NUL-terminated after its len bytes so a text payload can be
 * used as a string; the caller frees it with frame_free().  When 0 or -1 is
 * returned *f holds nothing to free (frame_free() on it is still safe).
 */
long
frame_decode(const uint8_t *in, size_t len, struct frame *f, char *err, size_t errlen)
{
	const uint8_t *body;
	uint32_t blen;
	uint8_t type, flags;
	unsigned long long csize;
	size_t got;
	long rc = -1;

	f->type = 0;
	f->flags = 0;
	buf_init(&f->payload);

	if (len < FRAME_HDR)
		return 0;
	blen = get_be32(in);
	type = in[4];
	flags = in[5];
	if (blen > FRAME_MAX) {
		set_err(err, errlen, "frame too large: %lu bytes (limit %d)", (unsigned long)blen,
		    FRAME_MAX);
		goto out;
	}
	if (type < F_HELLO || type > F_LAST) {
		set_err(err, errlen, "unknown frame type %u", (unsigned)type);
		goto out;
	}
	if (flags & ~FRAME_ZSTD) {
		set_err(err, errlen, "unknown frame flags 0x%02x (type %u)", (unsigned)flags,
		    (unsigned)type);
		goto out;
	}
	if (len - FRAME_HDR < blen)
		return 0;
	body = in + FRAME_HDR;

	if (flags & FRAME_ZSTD) {
		csize = ZSTD_getFrameContentSize(body, blen);
		if (csize == ZSTD_CONTENTSIZE_ERROR) {
			set_err(
			    err, errlen, "corrupt compressed payload (type %u)", (unsigned)type);
			goto out;
		}
		if (csize == ZSTD_CONTENTSIZE_UNKNOWN) {
			set_err(err, errlen, "compressed payload without a content size (type %u)",
			    (unsigned)type);
			goto out;
		}
		if (csize > FRAME_MAX) {
			set_err(err, errlen,
			    "compressed payload too large: %llu bytes (limit %d, type %u)", csize,
			    FRAME_MAX, (unsigned)type);
			goto out;
		}
		buf_grow(&f->payload, (size_t)csize);
		got = ZSTD_decompress(f->payload.data, (size_t)csize, body, blen);
		if (ZSTD_isError(got) || got != csize) {
			set_err(err, errlen, "corrupt compressed payload (type %u): %s",
			    (unsigned)type,
			    ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size mismatch");
			goto out;
		}
		f->payload.len = got;
		f->payload.data[got] = '\0';
	} else {
		buf_add(&f->payload, body, blen);
	}
	f->type = (enum frame_type)type;
	f->flags = flags;
	rc = (long)(FRAME_HDR + blen);
out:
	if (rc < 0)
		buf_free(&f->payload);
	return rc;
}

/* Release a decoded frame's payload; safe on a frame decode left empty. */
void
frame_free(struct frame *f)
{
	if (f == NULL)
		return;
	buf_free(&f->payload);
}

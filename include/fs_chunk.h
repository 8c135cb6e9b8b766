/*
 * fs_chunk.h - content-defined chunking (FastCDC with a gear hash).
 *
 * Boundaries depend only on the bytes around them, so inserting bytes in
 * the middle of a file changes only the chunks around the insertion and a
 * renamed or copied file yields the same chunks.  The parameters are fixed
 * (not scaled per file: a size-dependent choice would move every boundary
 * when a file grows).  Pure; unit-tested.
 */
#ifndef REPCTL_FS_CHUNK_H
#define REPCTL_FS_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define CDC_MIN (16 * 1024)
#define CDC_AVG (64 * 1024)
#define CDC_MAX (256 * 1024)

/*
 * Length of the next chunk at the start of buf[0..len).  When eof is 0 and
 * no boundary is found before len (and len < CDC_MAX), returns 0: the
 * caller must supply more bytes.  When eof is 1 the rest (at most CDC_MAX)
 * is a chunk.  Never returns more than CDC_MAX or more than len.
 */
size_t cdc_cut(const uint8_t *buf, size_t len, int eof);

/* The gear table (256 pseudo-random 64-bit values, fixed forever). */
extern const uint64_t cdc_gear[256];

#endif

/*
 * test_fs_proto.c - protocol framing (src/files/fs_proto.c).
 *
 * Covers frame_encode()/frame_decode() round trips of several frames of
 * every kind (empty, text, binary, compressible, incompressible, FRAME_MAX
 * exactly) concatenated in one buffer and decoded one by one; decoding from
 * a buffer that grows one byte at a time (0 until the frame is complete,
 * never reading past len: each prefix is a copy of exactly that size);
 * compression (text is flagged FRAME_ZSTD and smaller on the wire, random
 * bytes and level 0 are sent as they are, a tiny payload that zstd cannot
 * shrink is sent as it is); and every refusal with its message: a payload
 * over FRAME_MAX on either side (the length alone is enough to refuse), an
 * unknown type or flag, a corrupted or truncated zstd payload, a zstd frame
 * without a content size or declaring more than FRAME_MAX, and trailing
 * bytes after the zstd frame.  And the stream over a pipe: F_PING frames
 * (an agent's heartbeat) are skipped by stream_recv, and
 * stream_ping_if_quiet pings only after the given silence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zstd.h>

#include "buf.h"
#include "fs_proto.h"
#include "fs_stream.h"

static uint64_t
next_random(uint64_t *state)
{
	uint64_t z;

	*state += 0x9e3779b97f4a7c15ULL;
	z = *state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* len random bytes; free with free(). */
static uint8_t *
random_bytes(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = (uint8_t)next_random(&seed);
	return p;
}

/* About len bytes of index-like text, which compresses well. */
static void
text_payload(struct buf *b, size_t len)
{
	int i = 0;

	while (b->len < len) {
		buf_printf(b,
		    "music/artist %d/album %d/track %02d.flac\t%d\t1700000000%03d\t0644\n", i % 37,
		    i % 11, i % 20, 1000000 + i * 17, i % 1000);
		i++;
	}
}

/* Header fields of the frame at p. */
static uint32_t
wire_len(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A frame built by hand: header fields and body as given. */
static void
raw_frame(struct buf *out, uint32_t len, uint8_t type, uint8_t flags, const void *body, size_t blen)
{
	uint8_t hdr[FRAME_HDR] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		(uint8_t)len, type, flags };

	buf_add(out, hdr, sizeof(hdr));
	buf_add(out, body, blen);
}

/* Decoding in[0..len) must fail with a message containing want. */
static void
expect_refused(const void *in, size_t len, const char *want)
{
	struct frame f;
	char err[256] = "";
	long n;

	n = frame_decode(in, len, &f, err, sizeof(err));
	if (n != -1)
		fail_msg("decoded (%ld) where '%s' was expected", n, want);
	if (strstr(err, want) == NULL)
		fail_msg("message '%s', want '%s'", err, want);
	assert_null(f.payload.data);
	frame_free(&f);
}

/* ---- round trips ---- */

static void
test_round_trip_several(void **state)
{
	struct buf text = BUF_INIT, wire = BUF_INIT;
	uint8_t *rnd = random_bytes(200000, 1);
	struct {
		enum frame_type type;
		const void *p;
		size_t len;
		int level;
	} fr[] = {
		{ F_HELLO, "1 /srv/music", 12, 3 },
		{ F_ACK, "", 0, 3 },
		{ F_INDEX, NULL, 0, 3 },      /* text, set below */
		{ F_BLOCK, NULL, 200000, 3 }, /* random */
		{ F_INDEX_END, NULL, 0, 0 },
		{ F_ERROR, "no such file 'a b'", 18, 0 },
		{ F_PUT_DATA, NULL, 70000, 0 }, /* text, level 0 */
		{ F_BYE, "x", 1, 19 },
	};
	size_t nfr = sizeof(fr) / sizeof(fr[0]), i, off = 0;

	(void)state;
	text_payload(&text, 100000);
	fr[2].p = text.data;
	fr[2].len = text.len;
	fr[3].p = rnd;
	fr[6].p = text.data;
	for (i = 0; i < nfr; i++)
		assert_int_equal(
		    frame_encode(&wire, fr[i].type, fr[i].p, fr[i].len, fr[i].level), 0);

	for (i = 0; i < nfr; i++) {
		struct frame f;
		char err[128] = "";
		long n;

		n = frame_decode(
		    (const uint8_t *)wire.data + off, wire.len - off, &f, err, sizeof(err));
		if (n <= 0)
			fail_msg("frame %zu: decode returned %ld (%s)", i, n, err);
		assert_int_equal(f.type, fr[i].type);
		assert_int_equal(f.payload.len, fr[i].len);
		if (fr[i].len > 0)
			assert_memory_equal(f.payload.data, fr[i].p, fr[i].len);
		/* always allocated and NUL-terminated */
		assert_non_null(f.payload.data);
		assert_int_equal(f.payload.data[f.payload.len], '\0');
		/* compressed: only the text at a level > 0 */
		assert_int_equal(f.flags, i == 2 ? FRAME_ZSTD : 0);
		assert_int_equal((size_t)n, FRAME_HDR + wire_len((const uint8_t *)wire.data + off));
		off += (size_t)n;
		frame_free(&f);
	}
	assert_int_equal(off, wire.len);
	buf_free(&text);
	buf_free(&wire);
	free(rnd);
}

/* Fed one byte at a time, decode says "more" until the frame is whole. */
static void
test_byte_by_byte(void **state)
{
	struct buf text = BUF_INIT, wire = BUF_INIT;
	size_t first, len;
	int k;

	(void)state;
	text_payload(&text, 3000);
	assert_int_equal(frame_encode(&wire, F_INDEX, text.data, text.len, 3), 0);
	first = wire.len;
	assert_int_equal(frame_encode(&wire, F_BLOCK, "abcdefgh", 8, 0), 0);
	assert_int_equal(frame_encode(&wire, F_ACK, NULL, 0, 3), 0);

	for (k = 0; k < 3; k++) {
		size_t start = k == 0 ? 0 : k == 1 ? first : first + FRAME_HDR + 8;
		size_t end = k == 0 ? first : k == 1 ? first + FRAME_HDR + 8 : wire.len;

		for (len = 0; len <= end - start; len++) {
			/* an exact-size copy, so that ASan sees any read past len */
			uint8_t *in = malloc(len ? len : 1);
			struct frame f;
			char err[128] = "";
			long n;

			assert_non_null(in);
			memcpy(in, wire.data + start, len);
			n = frame_decode(in, len, &f, err, sizeof(err));
			if (len < end - start) {
				if (n != 0)
					fail_msg("frame %d: %ld with %zu of %zu bytes (%s)", k, n,
					    len, end - start, err);
				assert_null(f.payload.data);
			} else {
				assert_int_equal(n, (long)(end - start));
				assert_int_equal(f.type,
				    k == 0       ? F_INDEX
					: k == 1 ? F_BLOCK
						 : F_ACK);
				if (k == 0) {
					assert_int_equal(f.flags, FRAME_ZSTD);
					assert_int_equal(f.payload.len, text.len);
					assert_memory_equal(f.payload.data, text.data, text.len);
				} else if (k == 1) {
					assert_string_equal(f.payload.data, "abcdefgh");
				} else {
					assert_int_equal(f.payload.len, 0);
				}
			}
			frame_free(&f);
			free(in);
		}
	}
	buf_free(&text);
	buf_free(&wire);
}

/* ---- compression ---- */

static void
test_compressible_text(void **state)
{
	struct buf text = BUF_INIT, wire = BUF_INIT, plain = BUF_INIT;
	const uint8_t *w;

	(void)state;
	text_payload(&text, 64 * 1024);
	assert_int_equal(frame_encode(&wire, F_INDEX, text.data, text.len, 3), 0);
	w = (const uint8_t *)wire.data;
	assert_int_equal(w[4], F_INDEX);
	assert_int_equal(w[5], FRAME_ZSTD);
	assert_int_equal(wire_len(w) + FRAME_HDR, wire.len);
	print_message("%zu bytes of index text: %u on the wire\n", text.len, wire_len(w));
	assert_true(wire_len(w) < text.len / 4);

	/* level 0: never compressed */
	assert_int_equal(frame_encode(&plain, F_INDEX, text.data, text.len, 0), 0);
	w = (const uint8_t *)plain.data;
	assert_int_equal(w[5], 0);
	assert_int_equal(wire_len(w), text.len);
	assert_memory_equal(plain.data + FRAME_HDR, text.data, text.len);

	/* a negative level (zstd's fast levels) is "no compression" too */
	buf_reset(&plain);
	assert_int_equal(frame_encode(&plain, F_INDEX, text.data, text.len, -5), 0);
	assert_int_equal(((const uint8_t *)plain.data)[5], 0);

	/* a level above zstd's maximum is clamped, not an error */
	buf_reset(&wire);
	assert_int_equal(frame_encode(&wire, F_INDEX, text.data, text.len, 1000), 0);
	assert_int_equal(((const uint8_t *)wire.data)[5], FRAME_ZSTD);
	{
		struct frame f;
		char err[128];

		assert_int_equal(
		    frame_decode((const uint8_t *)wire.data, wire.len, &f, err, sizeof(err)),
		    (long)wire.len);
		assert_int_equal(f.payload.len, text.len);
		assert_memory_equal(f.payload.data, text.data, text.len);
		frame_free(&f);
	}
	buf_free(&text);
	buf_free(&wire);
	buf_free(&plain);
}

static void
test_random_not_compressed(void **state)
{
	static const size_t sizes[] = { 1, 2, 10, 100, 4096, 300000 };
	struct buf wire = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *rnd = random_bytes(sizes[i], 100 + i);
		const uint8_t *w;

		buf_reset(&wire);
		assert_int_equal(frame_encode(&wire, F_BLOCK, rnd, sizes[i], 19), 0);
		w = (const uint8_t *)wire.data;
		assert_int_equal(w[5], 0);
		assert_int_equal(wire_len(w), sizes[i]);
		assert_int_equal(wire.len, FRAME_HDR + sizes[i]);
		assert_memory_equal(w + FRAME_HDR, rnd, sizes[i]);
		free(rnd);
	}
	/* "aaaa": zstd's frame overhead makes it larger, so it goes as it is */
	buf_reset(&wire);
	assert_int_equal(frame_encode(&wire, F_BLOCK, "aaaa", 4, 3), 0);
	assert_int_equal(((const uint8_t *)wire.data)[5], 0);
	assert_int_equal(wire.len, FRAME_HDR + 4);
	buf_free(&wire);
}

/* ---- limits ---- */

static void
test_frame_max(void **state)
{
	struct buf wire = BUF_INIT;
	uint8_t *big = calloc(FRAME_MAX + 1, 1);
	struct frame f;
	char err[128] = "";
	long n;

	(void)state;
	assert_non_null(big);
	/* exactly FRAME_MAX is fine, compressed or not */
	assert_int_equal(frame_encode(&wire, F_BLOCK, big, FRAME_MAX, 0), 0);
	n = frame_decode((const uint8_t *)wire.data, wire.len, &f, err, sizeof(err));
	assert_int_equal(n, FRAME_HDR + FRAME_MAX);
	assert_int_equal(f.payload.len, FRAME_MAX);
	frame_free(&f);
	buf_reset(&wire);
	assert_int_equal(frame_encode(&wire, F_BLOCK, big, FRAME_MAX, 1), 0);
	assert_int_equal(((const uint8_t *)wire.data)[5], FRAME_ZSTD);
	n = frame_decode((const uint8_t *)wire.data, wire.len, &f, err, sizeof(err));
	assert_int_equal(n, (long)wire.len);
	assert_int_equal(f.payload.len, FRAME_MAX);
	frame_free(&f);

	/* one more byte is refused by the encoder, leaving out as it was */
	buf_reset(&wire);
	assert_int_equal(frame_encode(&wire, F_BLOCK, big, FRAME_MAX + 1, 0), -1);
	assert_int_equal(frame_encode(&wire, F_BLOCK, big, FRAME_MAX + 1, 3), -1);
	assert_int_equal(wire.len, 0);
	free(big);
	buf_free(&wire);
}

/* A header announcing more than FRAME_MAX is refused without the body. */
static void
test_oversized_length(void **state)
{
	static const uint32_t lens[] = { FRAME_MAX + 1, 0x7fffffff, 0xffffffff };
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		buf_reset(&b);
		raw_frame(&b, lens[i], F_BLOCK, 0, "xyz", 3);
		expect_refused(b.data, FRAME_HDR, "frame too large");
		expect_refused(b.data, b.len, "frame too large");
	}
	/* FRAME_MAX itself only waits for more bytes */
	{
		struct frame f;
		char err[64];

		buf_reset(&b);
		raw_frame(&b, FRAME_MAX, F_BLOCK, 0, "xyz", 3);
		assert_int_equal(
		    frame_decode((const uint8_t *)b.data, b.len, &f, err, sizeof(err)), 0);
		frame_free(&f);
	}
	buf_free(&b);
}

static void
test_unknown_type_or_flags(void **state)
{
	static const uint8_t types[] = { 0, F_LAST + 1, 100, 255 };
	struct buf b = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		buf_reset(&b);
		raw_frame(&b, 2, types[i], 0, "hi", 2);
		expect_refused(b.data, b.len, "unknown frame type");
		/* known as soon as the header is there */
		expect_refused(b.data, FRAME_HDR, "unknown frame type");
	}
	buf_reset(&b);
	raw_frame(&b, 2, F_ACK, 0x02, "hi", 2);
	expect_refused(b.data, b.len, "unknown frame flags 0x02");
	buf_reset(&b);
	raw_frame(&b, 2, F_ACK, 0x80 | FRAME_ZSTD, "hi", 2);
	expect_refused(b.data, b.len, "unknown frame flags 0x81");

	/* the error buffer is optional */
	{
		struct frame f;

		assert_int_equal(frame_decode((const uint8_t *)b.data, b.len, &f, NULL, 0), -1);
		frame_free(&f);
	}
	buf_free(&b);
}

/* ---- broken compressed payloads ---- */

static void
test_corrupt_zstd(void **state)
{
	struct buf text = BUF_INIT, wire = BUF_INIT, b = BUF_INIT;
	size_t zlen, i;
	uint8_t *z;
	int refused = 0;

	(void)state;
	text_payload(&text, 20000);
	assert_int_equal(frame_encode(&wire, F_INDEX, text.data, text.len, 3), 0);
	assert_int_equal(((const uint8_t *)wire.data)[5], FRAME_ZSTD);
	zlen = wire.len - FRAME_HDR;
	z = malloc(zlen);
	assert_non_null(z);

	/* not zstd at all */
	raw_frame(&b, 5, F_INDEX, FRAME_ZSTD, "hello", 5);
	expect_refused(b.data, b.len, "corrupt compressed payload");

	/* the magic number damaged */
	memcpy(z, wire.data + FRAME_HDR, zlen);
	z[0] ^= 0xff;
	buf_reset(&b);
	raw_frame(&b, (uint32_t)zlen, F_INDEX, FRAME_ZSTD, z, zlen);
	expect_refused(b.data, b.len, "corrupt compressed payload");

	/* truncated: the last bytes missing (the length in the header agrees) */
	memcpy(z, wire.data + FRAME_HDR, zlen);
	buf_reset(&b);
	raw_frame(&b, (uint32_t)zlen - 10, F_INDEX, FRAME_ZSTD, z, zlen - 10);
	expect_refused(b.data, b.len, "corrupt compressed payload");

	/* bytes after the zstd frame */
	buf_reset(&b);
	raw_frame(&b, (uint32_t)zlen + 3, F_INDEX, FRAME_ZSTD, z, zlen);
	buf_add(&b, "xyz", 3);
	expect_refused(b.data, b.len, "corrupt compressed payload");

	/*
	 * Flip each byte in the body in turn: every result is either refused
	 * or (where zstd cannot tell, e.g. in literals it does not checksum)
	 * decodes to the original size; none crashes or leaks.
	 */
	for (i = 4; i < zlen; i++) {
		struct frame f;
		char err[128] = "";
		long n;

		memcpy(z, wire.data + FRAME_HDR, zlen);
		z[i] ^= 0x55;
		buf_reset(&b);
		raw_frame(&b, (uint32_t)zlen, F_INDEX, FRAME_ZSTD, z, zlen);
		n = frame_decode((const uint8_t *)b.data, b.len, &f, err, sizeof(err));
		if (n == -1) {
			refused++;
			assert_non_null(strstr(err, "compressed payload"));
		} else {
			assert_int_equal(n, (long)b.len);
			assert_int_equal(f.payload.len, text.len);
		}
		frame_free(&f);
	}
	print_message("%d of %zu single-byte corruptions refused\n", refused, zlen - 4);
	assert_true(refused > 0);

	free(z);
	buf_free(&text);
	buf_free(&wire);
	buf_free(&b);
}

/* A zstd frame must say how large its content is, and at most FRAME_MAX. */
static void
test_zstd_content_size(void **state)
{
	struct buf b = BUF_INIT;
	ZSTD_CCtx *cctx;
	size_t cap, zlen;
	uint8_t *z;
	uint8_t *zeros;
	ZSTD_outBuffer ob;
	ZSTD_inBuffer ib;

	(void)state;
	/* a frame header without the content size (as a streaming writer makes) */
	cctx = ZSTD_createCCtx();
	assert_non_null(cctx);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
	cap = ZSTD_compressBound(1000) + 64;
	z = malloc(cap);
	assert_non_null(z);
	ob.dst = z;
	ob.size = cap;
	ob.pos = 0;
	ib.src = "abcabcabcabcabcabcabcabcabcabcabcabcabcabc";
	ib.size = 42;
	ib.pos = 0;
	assert_false(ZSTD_isError(ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end)));
	zlen = ob.pos;
	assert_true(ZSTD_getFrameContentSize(z, zlen) == ZSTD_CONTENTSIZE_UNKNOWN);
	raw_frame(&b, (uint32_t)zlen, F_INDEX, FRAME_ZSTD, z, zlen);
	expect_refused(b.data, b.len, "without a content size");
	free(z);
	ZSTD_freeCCtx(cctx);

	/* FRAME_MAX + 1 zeros compress to a few hundred bytes: a zip bomb */
	zeros = calloc(FRAME_MAX + 1, 1);
	assert_non_null(zeros);
	cap = ZSTD_compressBound(FRAME_MAX + 1);
	z = malloc(cap);
	assert_non_null(z);
	zlen = ZSTD_compress(z, cap, zeros, FRAME_MAX + 1, 1);
	assert_false(ZSTD_isError(zlen));
	buf_reset(&b);
	raw_frame(&b, (uint32_t)zlen, F_BLOCK, FRAME_ZSTD, z, zlen);
	expect_refused(b.data, b.len, "compressed payload too large");
	free(z);
	free(zeros);
	buf_free(&b);
}

/* An empty payload, and frames whose payload is zero bytes on the wire. */
static void
test_empty_payload(void **state)
{
	struct buf wire = BUF_INIT;
	struct frame f;
	char err[64] = "";
	long n;

	(void)state;
	assert_int_equal(frame_encode(&wire, F_INDEX_END, NULL, 0, 3), 0);
	assert_int_equal(wire.len, FRAME_HDR);
	assert_int_equal(((const uint8_t *)wire.data)[5], 0);
	n = frame_decode((const uint8_t *)wire.data, wire.len, &f, err, sizeof(err));
	assert_int_equal(n, FRAME_HDR);
	assert_int_equal(f.type, F_INDEX_END);
	assert_int_equal(f.flags, 0);
	assert_int_equal(f.payload.len, 0);
	assert_string_equal(f.payload.data, "");
	frame_free(&f);
	/* frame_free is idempotent */
	frame_free(&f);
	frame_free(NULL);
	buf_free(&wire);
}

/* Pings between replies are never seen by the reader; quiet pings only. */
static void
test_stream_ping(void **state)
{
	struct fs_stream w, r;
	struct frame f;
	char err[128] = "";
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	stream_init_fds(&w, -1, fds[1], 3);
	stream_init_fds(&r, fds[0], -1, 3);
	assert_int_equal(stream_send(&w, F_PING, NULL, 0, err, sizeof(err)), 0);
	/* just sent: no ping for an hour of silence yet */
	assert_int_equal(stream_ping_if_quiet(&w, 3600, err, sizeof(err)), 0);
	assert_int_equal(w.sent, FRAME_HDR);
	assert_int_equal(stream_ping_if_quiet(&w, 0, err, sizeof(err)), 0);
	assert_int_equal(w.sent, 2 * FRAME_HDR);
	assert_int_equal(stream_send(&w, F_ACK, "ok", 2, err, sizeof(err)), 0);
	assert_int_equal(stream_send(&w, F_PING, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(stream_send(&w, F_INDEX_END, "x", 1, err, sizeof(err)), 0);
	assert_int_equal(stream_recv(&r, &f, err, sizeof(err)), 0);
	assert_int_equal(f.type, F_ACK);
	assert_int_equal(f.payload.len, 2);
	frame_free(&f);
	assert_int_equal(stream_recv(&r, &f, err, sizeof(err)), 0);
	assert_int_equal(f.type, F_INDEX_END);
	frame_free(&f);
	/* only pings, then EOF: the reader reports the closed connection */
	assert_int_equal(stream_send(&w, F_PING, NULL, 0, err, sizeof(err)), 0);
	close(fds[1]);
	assert_int_equal(stream_recv(&r, &f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "closed"));
	close(fds[0]);
	stream_free(&w);
	stream_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_several),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_compressible_text),
		cmocka_unit_test(test_random_not_compressed),
		cmocka_unit_test(test_frame_max),
		cmocka_unit_test(test_oversized_length),
		cmocka_unit_test(test_unknown_type_or_flags),
		cmocka_unit_test(test_corrupt_zstd),
		cmocka_unit_test(test_zstd_content_size),
		cmocka_unit_test(test_empty_payload),
		cmocka_unit_test(test_stream_ping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

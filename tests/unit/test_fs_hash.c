/*
 * test_fs_hash.c - SHA-256 (src/files/fs_hash.c).
 *
 * Covers the NIST vectors from FIPS 180-4's examples ("", "abc", the 448-bit
 * two-block message, the 896-bit message, one million 'a' fed in odd-sized
 * pieces), messages of every length around the padding edges (55, 56, 63,
 * 64 bytes) checked against independent digests, streaming in pieces of
 * every size 1..130 against the one-shot digest, reuse of a context after
 * sha256_init, sha256_hex and sha256_from_hex round trip (either case), and
 * every refusal of sha256_from_hex (short, long, non-hex, NULL), which must
 * leave the output untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs_hash.h"

/* The digest of len bytes of msg, one-shot, is want (hex). */
static void
expect_digest(const void *msg, size_t len, const char *want)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN];

	sha256(msg, len, d);
	sha256_hex(d, hex);
	if (strcmp(hex, want) != 0)
		fail_msg("sha256 of %zu bytes = %s, want %s", len, hex, want);
}

static void
test_nist_vectors(void **state)
{
	(void)state;
	expect_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	expect_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	expect_digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	expect_digest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		      "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	    112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* One million 'a', fed in pieces of 1, 3, 7, ... bytes (odd, changing). */
static void
test_million_a(void **state)
{
	static const size_t pieces[] = { 1, 3, 7, 13, 63, 65, 127, 999, 4097 };
	uint8_t chunk[4097];
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX_LEN];
	struct sha256 s;
	size_t done = 0, k = 0;

	(void)state;
	memset(chunk, 'a', sizeof(chunk));
	sha256_init(&s);
	while (done < 1000000) {
		size_t n = pieces[k++ % (sizeof(pieces) / sizeof(pieces[0]))];

		if (n > 1000000 - done)
			n = 1000000 - done;
		sha256_update(&s, chunk, n);
		done += n;
	}
	sha256_final(&s, d);
	sha256_hex(d, hex);
	assert_string_equal(
	    hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* and one-shot */
	{
		uint8_t *big = malloc(1000000);

		assert_non_null(big);
		memset(big, 'a', 1000000);
		expect_digest(big, 1000000,
		    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
		free(big);
	}
}

/*
 * Lengths where the padding needs one block or spills into a second one.
 * The digests were computed with coreutils sha256sum on the same bytes
 * (len times 'x').
 */
static void
test_padding_edges(void **state)
{
	static const struct {
		size_t len;
		const char *hex;
	} cases[] = {
		{ 55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072" },
		{ 56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e" },
		{ 63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2" },
		{ 64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c" },
	};
	char msg[64];
	size_t i;

	(void)state;
	memset(msg, 'x', sizeof(msg));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_digest(msg, cases[i].len, cases[i].hex);
}

/* Streaming in pieces of every size 1..130 equals the one-shot digest. */
static void
test_streaming(void **state)
{
	uint8_t msg[1000];
	uint8_t want[SHA256_LEN], got[SHA256_LEN];
	struct sha256 s;
	size_t piece, off, i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 131 + 7);
	sha256(msg, sizeof(msg), want);
	for (piece = 1; piece <= 130; piece++) {
		sha256_init(&s);
		for (off = 0; off < sizeof(msg); off += piece) {
			size_t n = sizeof(msg) - off < piece ? sizeof(msg) - off : piece;

			sha256_update(&s, msg + off, n);
		}
		sha256_final(&s, got);
		if (memcmp(got, want, SHA256_LEN) != 0)
			fail_msg("pieces of %zu bytes give another digest", piece);
	}

	/* empty updates anywhere change nothing */
	sha256_init(&s);
	sha256_update(&s, msg, 0);
	sha256_update(&s, msg, 500);
	sha256_update(&s, NULL, 0);
	sha256_update(&s, msg + 500, 500);
	sha256_final(&s, got);
	assert_memory_equal(got, want, SHA256_LEN);

	/* a finished context is reusable after sha256_init */
	sha256_init(&s);
	sha256_update(&s, "abc", 3);
	sha256_final(&s, got);
	sha256_init(&s);
	sha256_final(&s, got);
	sha256(NULL, 0, want);
	assert_memory_equal(got, want, SHA256_LEN);
	expect_digest(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Every length 0..200 agrees with splitting at every point. */
static void
test_split_points(void **state)
{
	uint8_t msg[200];
	uint8_t want[SHA256_LEN], got[SHA256_LEN];
	struct sha256 s;
	size_t len, cut;

	(void)state;
	for (len = 0; len < sizeof(msg); len++)
		msg[len] = (uint8_t)(len ^ 0x5a);
	for (len = 0; len <= sizeof(msg); len++) {
		sha256(msg, len, want);
		for (cut = 0; cut <= len; cut++) {
			sha256_init(&s);
			sha256_update(&s, msg, cut);
			sha256_update(&s, msg + cut, len - cut);
			sha256_final(&s, got);
			if (memcmp(got, want, SHA256_LEN) != 0)
				fail_msg("length %zu split at %zu gives another digest", len, cut);
		}
	}
}

static void
test_hex_round_trip(void **state)
{
	uint8_t d[SHA256_LEN], back[SHA256_LEN];
	char hex[SHA256_HEX_LEN], upper[SHA256_HEX_LEN];
	int i, round;

	(void)state;
	for (round = 0; round < 3; round++) {
		for (i = 0; i < SHA256_LEN; i++)
			d[i] = (uint8_t)(round == 0 ? i * 37 + 11 : round == 1 ? 0x00 : 0xff);
		sha256_hex(d, hex);
		assert_int_equal(strlen(hex), 64);
		for (i = 0; i < 64; i++)
			assert_true(
			    (hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
		memset(back, 0, sizeof(back));
		assert_int_equal(sha256_from_hex(hex, back), 0);
		assert_memory_equal(back, d, SHA256_LEN);

		/* upper case is accepted too */
		for (i = 0; i < SHA256_HEX_LEN; i++)
			upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 32) : hex[i];
		memset(back, 0, sizeof(back));
		assert_int_equal(sha256_from_hex(upper, back), 0);
		assert_memory_equal(back, d, SHA256_LEN);
	}
	assert_int_equal(
	    sha256_from_hex(
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", back),
	    0);
	sha256("abc", 3, d);
	assert_memory_equal(back, d, SHA256_LEN);
}

static void
test_from_hex_refuses(void **state)
{
	static const char good[] =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char *const bad[] = {
		"",
		"ba",
		/* 63 digits */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
		/* 65 digits */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
		/* a non-hex digit at the start, the middle, the end */
		"ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"ba7816bf8f01cfea414140de5dae2223 00361a396177a9cb410ff61f20015ad",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015aG",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a:",
		"0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015",
		/* trailing junk after 64 good digits */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
		" ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"-a7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	};
	uint8_t out[SHA256_LEN], keep[SHA256_LEN];
	size_t i;

	(void)state;
	memset(keep, 0xa5, sizeof(keep));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(out, keep, sizeof(out));
		if (sha256_from_hex(bad[i], out) != -1)
			fail_msg("sha256_from_hex accepted '%s'", bad[i]);
		assert_memory_equal(out, keep, SHA256_LEN);
	}
	assert_int_equal(sha256_from_hex(NULL, out), -1);
	assert_int_equal(sha256_from_hex(good, out), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nist_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_padding_edges),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_split_points),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_from_hex_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fs_hash.c - SHA-256, written from FIPS 180-4 (sections 4.1.2, 4.2.2,
 * 5.1.1, 5.3.3 and 6.2).
 *
 * In the file sync every chunk found by fs_chunk.c is named by its SHA-256,
 * and every file carries the SHA-256 of its whole content: the index lists
 * them, the receiver asks only for hashes it does not hold, and a file put
 * together from reused and received chunks is checked against the whole-file
 * hash before it is renamed into place.  The hex form is what the index and
 * the protocol carry.
 *
 * Decisions: no dependency on OpenSSL for one hash (the project links none);
 * the code is plain portable C reading the message big-endian byte by byte,
 * so it does not care about the host's byte order or alignment.  Speed is
 * adequate (the disk is the bottleneck when hashing an archive) and the
 * unit test checks it against the NIST vectors.
 */
#include <string.h>

#include "fs_hash.h"

/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t sha256_k[64] = {
	0x428a2f98,
	0x71374491,
	0xb5c0fbcf,
	0xe9b5dba5,
	0x3956c25b,
	0x59f111f1,
	0x923f82a4,
	0xab1c5ed5,
	0xd807aa98,
	0x12835b01,
	0x243185be,
	0x550c7dc3,
	0x72be5d74,
	0x80deb1fe,
	0x9bdc06a7,
	0xc19bf174,
	0xe49b69c1,
	0xefbe4786,
	0x0fc19dc6,
	0x240ca1cc,
	0x2de92c6f,
	0x4a7484aa,
	0x5cb0a9dc,
	0x76f988da,
	0x983e5152,
	0xa831c66d,
	0xb00327c8,
	0xbf597fc7,
	0xc6e00bf3,
	0xd5a79147,
	0x06ca6351,
	0x14292967,
	0x27b70a85,
	0x2e1b2138,
	0x4d2c6dfc,
	0x53380d13,
	0x650a7354,
	0x766a0abb,
	0x81c2c92e,
	0x92722c85,
	0xa2bfe8a1,
	0xa81a664b,
	0xc24b8b70,
	0xc76c51a3,
	0xd192e819,
	0xd6990624,
	0xf40e3585,
	0x106aa070,
	0x19a4c116,
	0x1e376c08,
	0x2748774c,
	0x34b0bcb5,
	0x391c0cb3,
	0x4ed8aa4a,
	0x5b9cca4f,
	0x682e6ff3,
	0x748f82ee,
	0x78a5636f,
	0x84c87814,
	0x8cc70208,
	0x90befffa,
	0xa4506ceb,
	0xbef9a3f7,
	0xc67178f2,
};

/* FIPS 180-4 5.3.3: the first 32 bits of the fractional parts of the square
 * roots of the first 8 primes. */
static const uint32_t sha256_h0[8] = {
	0x6a09e667,
	0xbb67ae85,
	0x3c6ef372,
	0xa54ff53a,
	0x510e527f,
	0x9b05688c,
	0x1f83d9ab,
	0x5be0cd19,
};

/* 4.1.2: the six logical functions, on 32-bit words. */
static inline uint32_t
rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (rotr((x), 2) ^ rotr((x), 13) ^ rotr((x), 22))
#define BSIG1(x) (rotr((x), 6) ^ rotr((x), 11) ^ rotr((x), 25))
#define SSIG0(x) (rotr((x), 7) ^ rotr((x), 18) ^ ((x) >> 3))
#define SSIG1(x) (rotr((x), 17) ^ rotr((x), 19) ^ ((x) >> 10))

/* 6.2.2: process one 512-bit block into the hash value h. */
static void
sha256_block(uint32_t h[8], const uint8_t blk[64])
{
	uint32_t w[64];
	uint32_t a, b, c, d, e, f, g, hh, t1, t2;
	int t;

	for (t = 0; t < 16; t++)
		w[t] = (uint32_t)blk[4 * t] << 24 | (uint32_t)blk[4 * t + 1] << 16 |
		    (uint32_t)blk[4 * t + 2] << 8 | (uint32_t)blk[4 * t + 3];
	for (t = 16; t < 64; t++)
		w[t] = SSIG1(w[t - 2]) + w[t - 7] + SSIG0(w[t - 15]) + w[t - 16];

	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	f = h[5];
	g = h[6];
	hh = h[7];
	for (t = 0; t < 64; t++) {
		t1 = hh + BSIG1(e) + CH(e, f, g) + sha256_k[t] + w[t];
		t2 = BSIG0(a) + MAJ(a, b, c);
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
}

void
sha256_init(struct sha256 *s)
{
	memcpy(s->h, sha256_h0, sizeof(s->h));
	s->len = 0;
	s->nbuf = 0;
}

/*
 * Hash len more bytes; whole blocks are processed straight from data.  data
 * may be NULL when len is 0.
 */
void
sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (len == 0)
		return;
	s->len += len;
	if (s->nbuf > 0) {
		size_t take = 64 - s->nbuf;

		if (take > len)
			take = len;
		memcpy(s->buf + s->nbuf, p, take);
		s->nbuf += take;
		p += take;
		len -= take;
		if (s->nbuf < 64)
			return;
		sha256_block(s->h, s->buf);
		s->nbuf = 0;
	}
	while (len >= 64) {
		sha256_block(s->h, p);
		p += 64;
		len -= 64;
	}
	if (len > 0) {
		memcpy(s->buf, p, len);
		s->nbuf = len;
	}
}

/*
 * 5.1.1 padding: a 1 bit, zeros up to 448 mod 512 bits, then the message
 * length in bits as a 64-bit big-endian number.  *s is spent afterwards
 * (call sha256_init to reuse it).
 */
void
sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN])
{
	uint64_t bits = s->len * 8;
	int i;

	s->buf[s->nbuf++] = 0x80;
	if (s->nbuf > 56) {
		memset(s->buf + s->nbuf, 0, 64 - s->nbuf);
		sha256_block(s->h, s->buf);
		s->nbuf = 0;
	}
	memset(s->buf + s->nbuf, 0, 56 - s->nbuf);
	for (i = 0; i < 8; i++)
		s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_block(s->h, s->buf);
	s->nbuf = 0;

	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

void
sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, data, len);
	sha256_final(&s, out);
}

void
sha256_hex(const uint8_t d[SHA256_LEN], char out[SHA256_HEX_LEN])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < SHA256_LEN; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 0x0f];
	}
	out[2 * SHA256_LEN] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Exactly 64 hex digits (either case) followed by the end of the string;
 * anything else is -1 and out is left untouched.
 */
int
sha256_from_hex(const char *hex, uint8_t out[SHA256_LEN])
{
	uint8_t d[SHA256_LEN];
	int i, hi, lo;

	if (hex == NULL)
		return -1;
	for (i = 0; i < SHA256_LEN; i++) {
		/* a NUL within the 64 digits fails here before it is passed */
		hi = hexval(hex[2 * i]);
		if (hi < 0)
			return -1;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[2 * SHA256_LEN] != '\0')
		return -1;
	memcpy(out, d, SHA256_LEN);
	return 0;
}

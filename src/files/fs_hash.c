/*
 * fs_hash.c - SHA-256 through OpenSSL's libcrypto, and its hex form.
 *
 * In the file sync every chunk found by fs_chunk.c is named by its SHA-256,
 * and every file carries the SHA-256 of its whole content: the index lists
 * them, the receiver asks only for hashes it does not hold, and a file put
 * together from reused and received chunks is checked against the whole-file
 * hash before it is renamed into place.  The hex form is what the index and
 * the protocol carry.
 *
 * Decisions: libcrypto (already loaded through libssh) uses the CPU's SHA
 * instructions where it has them, about six times the speed of portable C
 * here, and hashing is on the critical path of every transfer.  The
 * low-level SHA256_* calls need no allocation, so struct sha256 stays a
 * plain value; OpenSSL 3 marks them deprecated in favour of EVP, which
 * would allocate per hash, hence the suppression below.  The unit test
 * checks the NIST vectors.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <string.h>

#include "fs_hash.h"

void
sha256_init(struct sha256 *s)
{
	SHA256_Init(&s->ctx);
}

void
sha256_update(struct sha256 *s, const void *data, size_t len)
{
	if (len > 0)
		SHA256_Update(&s->ctx, data, len);
}

/* *s is spent afterwards (call sha256_init to reuse it). */
void
sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN])
{
	SHA256_Final(out, &s->ctx);
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

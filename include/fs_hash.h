/*
 * fs_hash.h - SHA-256 (OpenSSL's libcrypto), for block and whole-file
 * hashes of the file sync.  No allocation.
 */
#ifndef REPCTL_FS_HASH_H
#define REPCTL_FS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED 1
#endif
#include <openssl/sha.h>

struct sha256 {
	SHA256_CTX ctx;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);
/* One-shot convenience. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
/* Lower-case hex of a digest into out (SHA256_HEX_LEN bytes). */
void sha256_hex(const uint8_t d[SHA256_LEN], char out[SHA256_HEX_LEN]);
/* Parse 64 hex digits; 0 or -1. */
int sha256_from_hex(const char *hex, uint8_t out[SHA256_LEN]);

#endif

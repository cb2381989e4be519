/*
 * sha256.h - SHA-256 (FIPS 180-4), for fingerprints of data that must not
 * be kept itself: the gateway keeps a request's digest, not the request
 * (its card token), to recognise a retried Idempotency-Key.
 */
#ifndef SHOP_CORE_SHA256_H
#define SHOP_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE 32                        /* bytes of a digest */
#define SHA256_HEX_SIZE (2 * SHA256_SIZE + 1) /* lowercase hex and a NUL */

void sha256(const void *data, size_t len, uint8_t out[SHA256_SIZE]);
/* The digest of DATA as lowercase hex. */
void sha256_hex(const void *data, size_t len, char out[SHA256_HEX_SIZE]);

#endif

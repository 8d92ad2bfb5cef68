/* jwt_mint.h -- mints HS256 JSON Web Tokens the way a game's web backend does with PyJWT
 * or jsonwebtoken: base64url (no padding) of a header and a payload, joined by a dot,
 * and the base64url HMAC-SHA-256 of that under the secret.
 *
 * Header-only, so that the unit tests, the integration tests, the fuzz target and the
 * load generator (bench/loadgen.c) share one minter without linking tests/support. It
 * is written apart from the node's decoder (src/node/auth.c): OpenSSL's base64 with the
 * alphabet swapped, and the unit tests check the node against the RFC 7515 vector, so
 * a mistake shared by minter and verifier would show there.
 */
#ifndef ATOLL_JWT_MINT_H
#define ATOLL_JWT_MINT_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* base64url of in[0..n) without padding into out (room for 4 * (n + 2) / 3 + 1 bytes),
 * NUL-terminated; returns its length. */
static inline size_t
jwt_b64url(const void *in, size_t n, char *out)
{
    int k = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
    size_t len = k > 0 ? (size_t)k : 0;
    while (len > 0 && out[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[len] = '\0';
    return len;
}

/* Mints a token of header and payload (any bytes, usually JSON) signed with
 * key[0..keylen) into out[0..cap), NUL-terminated; returns its length, or 0 when cap is
 * too small. */
static inline size_t
jwt_mint_raw(char *out, size_t cap, const void *key, size_t keylen, const char *header,
             const char *payload)
{
    size_t hl = strlen(header), pl = strlen(payload);
    size_t need = 4 * (hl + 2) / 3 + 4 * (pl + 2) / 3 + 4 * (32 + 2) / 3 + 8;
    char *tmp = malloc(need + 8);
    if (tmp == NULL)
        return 0;
    size_t n = jwt_b64url(header, hl, tmp);
    tmp[n++] = '.';
    n += jwt_b64url(payload, pl, tmp + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)tmp, n, mac, &maclen);
    tmp[n++] = '.';
    n += jwt_b64url(mac, maclen, tmp + n);
    if (n + 1 > cap) {
        free(tmp);
        return 0;
    }
    memcpy(out, tmp, n + 1);
    free(tmp);
    return n;
}

#define JWT_HEADER_HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* Mints a token of payload with the usual header, signed with the text secret. */
static inline size_t
jwt_mint(char *out, size_t cap, const char *secret, const char *payload)
{
    return jwt_mint_raw(out, cap, secret, strlen(secret), JWT_HEADER_HS256, payload);
}

#endif /* ATOLL_JWT_MINT_H */

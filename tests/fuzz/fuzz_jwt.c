/* fuzz_jwt.c -- libFuzzer target: the login token decoder (atoll__jwt_verify and
 * atoll__b64url_decode, src/node/auth.c), which reads what any client sends with
 * gate.entry on a node with auth.jwt_secret.
 *
 * Input: byte 0 chooses how the rest becomes a token and how the node is set up:
 *   bits 0-1  0: the rest is the token as sent;
 *             1: the rest is a token whose signature (after its last dot) the target
 *                replaces with the right one, so mutations get past the signature;
 *             2: the rest is header JSON, a NUL byte, payload JSON: the target encodes
 *                and signs them, so the fuzzer works on the JSON and the claims;
 *             3: the rest is payload JSON under the usual header, encoded and signed.
 *   bit 2     the node names the audience "game" (auth.jwt_audience);
 *   bits 3-4  the leeway: 0, 1, 60 or 3600 seconds.
 * The token is verified at a fixed "now" from an exact-size copy into an exact-size
 * uid buffer (a read or write past either is caught by ASan). Beyond "never crashes,
 * never leaks":
 *   - the contract: ATOLL_OK exactly when *why is NULL; only the documented errors;
 *     ATOLL_ELIMIT "token too long" exactly for tokens over ATOLL_JWT_TOKEN_MAX; a
 *     token signed here is never refused for its signature;
 *   - base64url differential: each segment (and the whole input) decodes with the
 *     node's decoder exactly when a reference built on OpenSSL's base64 (alphabet
 *     swapped, padding added, canonical re-encoding required) decodes it, to the same
 *     bytes;
 *   - an accepted token is what auth.h says: two dots, at most ATOLL_JWT_TOKEN_MAX
 *     bytes, its signature the HMAC-SHA-256 of "header.payload" under the key
 *     (computed here), a header whose alg is "HS256", a payload whose sub is the uid
 *     returned (1 to ATOLL_UID_MAX bytes, not starting with '~') and whose exp is a
 *     number later than now minus the leeway, read back with jansson.
 */
#define _GNU_SOURCE /* memrchr */
#include "node/auth.h"
#include "jwt_mint.h"

#include <atoll/atoll.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define SECRET "fuzz-jwt-secret-0123456789abcdef" /* make_corpus.py signs with it too */
#define NOW 1700000000

static const int leeways[4] = {0, 1, 60, 3600};

static bool
in_alphabet(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* The reference: OpenSSL's base64 of the standard alphabet, and only the canonical
 * encoding of its result counts. Returns the length, or -1. */
static ssize_t
ref_decode(const char *in, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++)
        if (!in_alphabet((unsigned char)in[i]))
            return -1;
    if (len % 4 == 1)
        return -1;
    size_t pads = (4 - len % 4) % 4;
    char *std = malloc(len + pads + 1);
    CHECK(std != NULL);
    for (size_t i = 0; i < len; i++)
        std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    memset(std + len, '=', pads);
    int n = EVP_DecodeBlock(out, (const unsigned char *)std, (int)(len + pads));
    free(std);
    if (n < 0)
        return -1;
    ssize_t got = n - (ssize_t)pads;
    char *again = malloc(4 * ((size_t)got + 2) / 3 + 2);
    CHECK(again != NULL);
    size_t k = jwt_b64url(out, (size_t)got, again);
    bool canonical = k == len && memcmp(again, in, len) == 0;
    free(again);
    return canonical ? got : -1;
}

/* The node's decoder and the reference agree on in[0..len). */
static void
check_b64(const char *in, size_t len)
{
    size_t cap = len / 4 * 3 + 3;
    uint8_t *a = malloc(cap), *b = malloc(cap + 3);
    CHECK(a != NULL && b != NULL);
    ssize_t na = atoll__b64url_decode(in, len, a, cap);
    ssize_t nb = ref_decode(in, len, b);
    if (na != nb)
        fprintf(stderr, "base64url of %zu bytes: node %zd, reference %zd\n", len, na, nb);
    CHECK(na == nb);
    CHECK(na < 0 || memcmp(a, b, (size_t)na) == 0);
    /* One byte less room than needed is refused, never overrun. */
    if (na > 0) {
        uint8_t *tight = malloc((size_t)na - 1 + 1);
        CHECK(tight != NULL);
        CHECK(atoll__b64url_decode(in, len, tight, (size_t)na - 1) == -1);
        free(tight);
    }
    free(a);
    free(b);
}

/* Builds the token of the input's mode into a malloc'd string; *len its length. */
static char *
make_token(int mode, const uint8_t *p, size_t n, size_t *len)
{
    char *t;
    if (mode == 0 || mode == 1) {
        t = malloc(n + 64);
        CHECK(t != NULL);
        memcpy(t, p, n);
        *len = n;
        const char *dot = n ? memrchr(t, '.', n) : NULL;
        if (mode == 1 && dot != NULL) {
            unsigned char mac[EVP_MAX_MD_SIZE];
            unsigned int maclen = 0;
            HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)t,
                 (size_t)(dot - t), mac, &maclen);
            *len = (size_t)(dot - t) + 1;
            *len += jwt_b64url(mac, maclen, t + *len);
        }
        return t;
    }
    /* Structured: header and payload as text (NUL-free by construction). */
    const uint8_t *nul = mode == 2 ? memchr(p, '\0', n) : NULL;
    char *header = mode == 3 || nul == NULL ? strdup(JWT_HEADER_HS256) : strndup((const char *)p, (size_t)(nul - p));
    const uint8_t *pp = nul ? nul + 1 : p;
    size_t pl = n - (size_t)(pp - p);
    char *payload = malloc(pl + 1);
    CHECK(header != NULL && payload != NULL);
    memcpy(payload, pp, pl);
    payload[pl] = '\0';
    size_t cap = 4 * (strlen(header) + strlen(payload) + 40) / 3 + 64;
    t = malloc(cap);
    CHECK(t != NULL);
    *len = jwt_mint_raw(t, cap, SECRET, strlen(SECRET), header, payload);
    CHECK(*len > 0);
    free(header);
    free(payload);
    return t;
}

/* Decodes segment [a, b) with the reference into a NUL-terminated string (malloc'd). */
static char *
segment_text(const char *a, const char *b)
{
    uint8_t *out = malloc((size_t)(b - a) / 4 * 3 + 8);
    CHECK(out != NULL);
    ssize_t n = ref_decode(a, (size_t)(b - a), out);
    CHECK(n >= 0);
    out[n] = '\0';
    return (char *)out;
}

/* An accepted token, checked against auth.h with the reference and jansson. */
static void
check_accepted(const char *t, size_t len, const char *uid, const atoll__jwt_key *key)
{
    CHECK(len <= ATOLL_JWT_TOKEN_MAX);
    const char *d1 = memchr(t, '.', len), *d2 = memrchr(t, '.', len);
    CHECK(d1 != NULL && d2 != NULL && d1 < d2 && memchr(d1 + 1, '.', (size_t)(d2 - d1 - 1)) == NULL);
    uint8_t sig[64], mac[EVP_MAX_MD_SIZE];
    CHECK(ref_decode(d2 + 1, (size_t)(t + len - d2 - 1), sig) == 32);
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key->secret, (int)key->secret_len, (const unsigned char *)t,
         (size_t)(d2 - t), mac, &maclen);
    CHECK(maclen == 32 && memcmp(mac, sig, 32) == 0);

    char *header = segment_text(t, d1), *payload = segment_text(d1 + 1, d2);
    json_error_t err;
    json_t *h = json_loads(header, JSON_DECODE_INT_AS_REAL, &err);
    json_t *p = json_loads(payload, JSON_DECODE_INT_AS_REAL, &err);
    CHECK(json_is_object(h) && json_is_object(p));
    CHECK(json_is_string(json_object_get(h, "alg")) &&
          strcmp(json_string_value(json_object_get(h, "alg")), "HS256") == 0);
    const json_t *sub = json_object_get(p, "sub"), *exp = json_object_get(p, "exp");
    CHECK(json_is_string(sub) && strcmp(json_string_value(sub), uid) == 0);
    size_t ul = strlen(uid);
    CHECK(ul >= 1 && ul <= ATOLL_UID_MAX && uid[0] != '~');
    CHECK(json_is_number(exp) && json_number_value(exp) + key->leeway_s > (double)NOW);
    json_decref(h);
    json_decref(p);
    free(header);
    free(payload);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    atoll__log_threshold = ATOLL_LOG_ERROR;
    int mode = data[0] & 3;
    atoll__jwt_key key = {.secret = (uint8_t *)SECRET, .secret_len = strlen(SECRET),
                          .audience = (data[0] & 4) ? "game" : NULL,
                          .leeway_s = leeways[(data[0] >> 3) & 3]};
    size_t len;
    char *token = make_token(mode, data + 1, size - 1, &len);
    /* Exact-size copies: the token, and room for the longest uid and its NUL. */
    char *copy = malloc(len ? len : 1);
    char *uid = malloc(ATOLL_UID_MAX + 1);
    CHECK(copy != NULL && uid != NULL);
    memcpy(copy, token, len);
    const char *why = "unset";
    int rc = atoll__jwt_verify(copy, len, &key, NOW, uid, ATOLL_UID_MAX + 1, &why);

    CHECK(rc == ATOLL_OK || rc == ATOLL_ELIMIT || rc == ATOLL_EPROTO || rc == ATOLL_EINVAL ||
          rc == ATOLL_ETIMEDOUT);
    CHECK((rc == ATOLL_OK) == (why == NULL));
    CHECK((len > ATOLL_JWT_TOKEN_MAX) == (rc == ATOLL_ELIMIT && strcmp(why, "token too long") == 0));
    if (mode != 0 && rc != ATOLL_OK)
        CHECK(strcmp(why, "bad token signature") != 0 &&
              strcmp(why, "token signature is not base64url") != 0);
    if (rc == ATOLL_OK)
        check_accepted(copy, len, uid, &key);
    else
        CHECK(uid[0] == '\0');

    /* The decoder on its own, against the reference: each segment and the whole. */
    if (len <= 2 * ATOLL_JWT_TOKEN_MAX) {
        const char *s = copy, *end = copy + len;
        for (const char *d; (d = memchr(s, '.', (size_t)(end - s))) != NULL; s = d + 1)
            check_b64(s, (size_t)(d - s));
        check_b64(s, (size_t)(end - s));
        check_b64(copy, len);
    }
    free(uid);
    free(copy);
    free(token);
    return 0;
}

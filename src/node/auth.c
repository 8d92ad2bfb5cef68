/* auth.c -- signed logins: the HS256 JSON Web Token decoder and verifier, and the
 * node's key (auth.h has the checks and their order).
 *
 * Written here rather than taken from libjwt (docs/design/dependencies.md): the HMAC
 * and the constant-time comparison are OpenSSL's, which the node links already; what
 * remains is a base64url decoder and a few claims, and doing them here keeps one
 * algorithm (no "alg" of the token's choosing), our own limits on every segment, and a
 * decoder that allocates nothing but jansson's trees of at most a few KiB.
 */
#include "auth.h"
#include "../core/text.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

/* ---- base64url ------------------------------------------------------------------------ */

static int
b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1; /* '=', '+', '/', whitespace: not in a JWS segment */
}

/* Characters of the encoding of n bytes, without padding. */
static size_t
b64url_len(size_t n)
{
    return (n * 4 + 2) / 3;
}

ssize_t
atoll__b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    /* One character left over carries 6 bits, less than a byte: no encoder makes it. */
    if (len % 4 == 1)
        return -1;
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The 2 or 4 bits past the last byte must be zero: otherwise several strings would
     * decode to the same bytes, and a signature could be rewritten and still pass. */
    if (acc != 0)
        return -1;
    return (ssize_t)o;
}

/* ---- the token ------------------------------------------------------------------------ */

static int
refuse(const char **why, const char *sentence, int rc)
{
    *why = sentence;
    return rc;
}

/* Whether v is the JSON string s exactly (a "\u0000" inside cannot sneak past). */
static bool
json_is(const json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_is_string(v) && json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
}

/* Decodes segment in[0..len) (base64url, at most max bytes) and parses it as a JSON
 * object (depth within ATOLL_JWT_JSON_DEPTH, no duplicate member names: a second "sub"
 * or "alg" must not mean one thing here and another to whoever minted the token).
 * Returns the object, or NULL with *rc and *why set. */
static json_t *
segment_object(const char *in, size_t len, size_t max, const char *what_long,
               const char *what_b64, const char *what_json, int *rc, const char **why)
{
    uint8_t buf[ATOLL_JWT_PAYLOAD_MAX > ATOLL_JWT_HEADER_MAX ? ATOLL_JWT_PAYLOAD_MAX
                                                            : ATOLL_JWT_HEADER_MAX];
    if (len > b64url_len(max)) {
        *rc = refuse(why, what_long, ATOLL_ELIMIT);
        return NULL;
    }
    ssize_t n = atoll__b64url_decode(in, len, buf, max);
    if (n < 0) {
        *rc = refuse(why, what_b64, ATOLL_EPROTO);
        return NULL;
    }
    json_t *o = NULL;
    if (atoll__json_valid(buf, (size_t)n, ATOLL_JWT_JSON_DEPTH)) {
        json_error_t err;
        /* Integers as reals: a time past int64 is a number like any other. */
        o = json_loadb((const char *)buf, (size_t)n,
                       JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
    }
    if (!json_is_object(o)) {
        json_decref(o);
        *rc = refuse(why, what_json, ATOLL_EPROTO);
        return NULL;
    }
    return o;
}

static int
check_header(const char *in, size_t len, const char **why)
{
    int rc = ATOLL_OK;
    json_t *h = segment_object(in, len, ATOLL_JWT_HEADER_MAX, "token header too long",
                               "token header is not base64url",
                               "token header is not a JSON object", &rc, why);
    if (h == NULL)
        return rc;
    const json_t *typ = json_object_get(h, "typ");
    if (!json_is(json_object_get(h, "alg"), "HS256"))
        rc = refuse(why, "token alg must be HS256", ATOLL_EPROTO);
    else if (typ != NULL && !json_is(typ, "JWT"))
        rc = refuse(why, "token typ must be JWT", ATOLL_EPROTO);
    else if (json_object_get(h, "crit") != NULL)
        /* RFC 7515 4.1.11: extensions named critical must be understood; none is. */
        rc = refuse(why, "token crit is not supported", ATOLL_EPROTO);
    json_decref(h);
    return rc;
}

static int
check_signature(const char *signed_part, size_t signed_len, const char *sig, size_t sig_len,
                const atoll__jwt_key *key, const char **why)
{
    uint8_t want[EVP_MAX_MD_SIZE], got[ATOLL_JWT_SIG_LEN];
    if (sig_len != b64url_len(ATOLL_JWT_SIG_LEN))
        return refuse(why, "bad token signature", ATOLL_EINVAL);
    if (atoll__b64url_decode(sig, sig_len, got, sizeof got) != ATOLL_JWT_SIG_LEN)
        return refuse(why, "token signature is not base64url", ATOLL_EPROTO);
    unsigned int n = 0;
    bool ok = HMAC(EVP_sha256(), key->secret, (int)key->secret_len, (const uint8_t *)signed_part,
                   signed_len, want, &n) != NULL &&
              n == ATOLL_JWT_SIG_LEN && CRYPTO_memcmp(want, got, ATOLL_JWT_SIG_LEN) == 0;
    /* The right signature of what the client sent is a forgery waiting to happen: it
     * does not stay on the stack. */
    OPENSSL_cleanse(want, sizeof want);
    return ok ? ATOLL_OK : refuse(why, "bad token signature", ATOLL_EINVAL);
}

/* "aud" against the node's audience (auth.h). */
static int
check_audience(const json_t *aud, const char *want, const char **why)
{
    if (want == NULL)
        return aud == NULL ? ATOLL_OK
                           : refuse(why, "token names an audience and this node has none "
                                         "(auth.jwt_audience)",
                                    ATOLL_EINVAL);
    if (aud == NULL)
        return refuse(why, "token has no aud", ATOLL_EINVAL);
    if (json_is_string(aud))
        return json_is(aud, want) ? ATOLL_OK
                                  : refuse(why, "token is for another audience", ATOLL_EINVAL);
    if (!json_is_array(aud))
        return refuse(why, "token aud must be a string or an array of strings", ATOLL_EPROTO);
    if (json_array_size(aud) > ATOLL_JWT_AUD_MAX)
        return refuse(why, "token aud has too many entries", ATOLL_ELIMIT);
    bool found = false;
    size_t i;
    const json_t *a;
    json_array_foreach(aud, i, a) {
        if (!json_is_string(a))
            return refuse(why, "token aud must be a string or an array of strings",
                          ATOLL_EPROTO);
        found = found || json_is(a, want);
    }
    return found ? ATOLL_OK : refuse(why, "token is for another audience", ATOLL_EINVAL);
}

static int
check_claims(const json_t *p, const atoll__jwt_key *key, int64_t now_s, char *uid_out,
             size_t uid_cap, const char **why)
{
    const json_t *sub = json_object_get(p, "sub");
    const json_t *exp = json_object_get(p, "exp");
    const json_t *nbf = json_object_get(p, "nbf");
    if (sub == NULL)
        return refuse(why, "token has no sub", ATOLL_EINVAL);
    if (!json_is_string(sub) || json_string_length(sub) == 0 ||
        json_string_length(sub) > ATOLL_UID_MAX ||
        memchr(json_string_value(sub), '\0', json_string_length(sub)) != NULL)
        return refuse(why, "token sub must be a string of 1 to 128 bytes", ATOLL_EINVAL);
    if (json_string_value(sub)[0] == '~')
        return refuse(why, "token sub starts with ~, which is reserved for guests",
                      ATOLL_EINVAL);
    if (exp == NULL)
        return refuse(why, "token has no exp", ATOLL_EINVAL);
    if (!json_is_number(exp) || (nbf != NULL && !json_is_number(nbf)))
        return refuse(why, "token exp and nbf must be numbers", ATOLL_EPROTO);
    double now = (double)now_s, leeway = (double)key->leeway_s;
    if (now >= json_number_value(exp) + leeway)
        return refuse(why, "token expired", ATOLL_ETIMEDOUT);
    if (nbf != NULL && now + leeway < json_number_value(nbf))
        return refuse(why, "token not valid yet (nbf)", ATOLL_ETIMEDOUT);
    int rc = check_audience(json_object_get(p, "aud"), key->audience, why);
    if (rc != ATOLL_OK)
        return rc;
    if (uid_cap <= json_string_length(sub))
        return refuse(why, "no room for the uid", ATOLL_ELIMIT); /* a caller's mistake */
    memcpy(uid_out, json_string_value(sub), json_string_length(sub) + 1);
    return ATOLL_OK;
}

int
atoll__jwt_verify(const char *token, size_t len, const atoll__jwt_key *key, int64_t now_s,
                  char *uid_out, size_t uid_cap, const char **why)
{
    const char *ignored;
    if (why == NULL)
        why = &ignored;
    *why = NULL;
    if (uid_cap > 0)
        uid_out[0] = '\0';
    if (token == NULL || key == NULL)
        return refuse(why, "no token", ATOLL_EINVAL);
    if (len > ATOLL_JWT_TOKEN_MAX)
        return refuse(why, "token too long", ATOLL_ELIMIT);
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL || d1 == token ||
        d2 == d1 + 1 || d2 + 1 == end)
        return refuse(why, "token is not header.payload.signature", ATOLL_EPROTO);

    int rc = check_header(token, (size_t)(d1 - token), why);
    if (rc != ATOLL_OK)
        return rc;
    rc = check_signature(token, (size_t)(d2 - token), d2 + 1, (size_t)(end - d2 - 1), key, why);
    if (rc != ATOLL_OK)
        return rc;
    /* Only now, signed by the key's holder, is the payload parsed. */
    json_t *p = segment_object(d1 + 1, (size_t)(d2 - d1 - 1), ATOLL_JWT_PAYLOAD_MAX,
                               "token payload too long", "token payload is not base64url",
                               "token payload is not a JSON object", &rc, why);
    if (p == NULL)
        return rc;
    rc = check_claims(p, key, now_s, uid_out, uid_cap, why);
    json_decref(p);
    return rc;
}

/* ---- the key -------------------------------------------------------------------------- */

int
atoll__jwt_key_load(const atoll__config *c, atoll__jwt_key **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *secret = atoll__config_get(c, "auth.jwt_secret", NULL);
    const char *file = atoll__config_get(c, "auth.jwt_secret_file", NULL);
    const char *audience = atoll__config_get(c, "auth.jwt_audience", NULL);
    if (secret != NULL && file != NULL) {
        snprintf(err, errlen, "auth.jwt_secret and auth.jwt_secret_file are both set: give one");
        return ATOLL_EINVAL;
    }
    if (secret == NULL && file == NULL) {
        if (audience != NULL) {
            snprintf(err, errlen, "auth.jwt_audience needs auth.jwt_secret or "
                                  "auth.jwt_secret_file: without one no token is checked");
            return ATOLL_EINVAL;
        }
        return ATOLL_OK;
    }
    uint8_t *bytes;
    size_t len;
    if (secret != NULL) {
        len = strlen(secret);
        if (len == 0 || len > ATOLL_JWT_SECRET_MAX) {
            snprintf(err, errlen, "auth.jwt_secret must be 1 to %d bytes", ATOLL_JWT_SECRET_MAX);
            return ATOLL_EINVAL;
        }
        bytes = atoll__malloc(len);
        memcpy(bytes, secret, len);
    } else {
        /* The same reader as the cluster's secret (config.c): one trailing newline is
         * not part of it, an empty or too long file is refused. */
        int rc = atoll__secret_read_file("auth.jwt_secret_file", file, 1, &bytes, &len, err,
                                         errlen);
        if (rc != ATOLL_OK)
            return rc;
    }
    if (len < ATOLL_JWT_SECRET_GOOD)
        ATOLL_LOG(ATOLL_LOG_WARN,
                  "msg=\"the auth secret is shorter than 32 bytes: HS256 wants 32 random "
                  "bytes or more\" setting=%s",
                  secret != NULL ? "auth.jwt_secret" : "auth.jwt_secret_file");
    atoll__jwt_key *k = atoll__calloc(1, sizeof *k);
    k->secret = bytes;
    k->secret_len = len;
    k->audience = audience ? atoll__strndup(audience, strlen(audience)) : NULL;
    k->leeway_s = c->jwt_leeway_s;
    *out = k;
    return ATOLL_OK;
}

void
atoll__jwt_key_free(atoll__jwt_key *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k->secret, k->secret_len);
    atoll__free(k->secret);
    atoll__free(k->audience);
    atoll__free(k);
}

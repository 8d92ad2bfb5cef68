/* auth.h -- signed logins (auth.c): the JSON Web Token (RFC 7519) a client sends with
 * gate.entry when the node has auth.jwt_secret (or auth.jwt_secret_file), its HS256
 * signature (RFC 7515) and its claims, and the key loaded once at the node's start.
 *
 * A token is three base64url segments, header.payload.signature. It is checked in this
 * order, so that only a header of at most ATOLL_JWT_HEADER_MAX bytes is parsed before
 * the signature is known to be good, and the payload only after:
 *   1. length (ATOLL_JWT_TOKEN_MAX), exactly two dots, every segment base64url without
 *      padding, canonical, within its limit;
 *   2. header: a JSON object with "alg":"HS256" exactly ("none" and every other
 *      algorithm refused, so a token cannot choose how it is checked), "typ" "JWT" if
 *      present, no "crit" (no extension is understood);
 *   3. signature: HMAC-SHA-256 of "header.payload" as sent, compared in constant time;
 *   4. payload: a JSON object; "sub" a string of 1 to ATOLL_UID_MAX bytes without NUL
 *      and not starting with '~' (guests' ids); "exp" a number, now < exp + leeway;
 *      "nbf", when present, a number with nbf - leeway <= now; "aud", when present or
 *      when the node has auth.jwt_audience, a string or an array of at most
 *      ATOLL_JWT_AUD_MAX strings, one of which is the node's audience (a token for
 *      some audience is refused by a node that names none, as RFC 7519 4.1.3 says).
 *
 * The uid a login enters as is "sub": never the body's "uid". The key is read-only
 * after the start, so every worker verifies with it without a lock.
 */
#ifndef ATOLL_NODE_AUTH_H
#define ATOLL_NODE_AUTH_H

#include "config.h"

#include <sys/types.h>

/* Limits of the token decoder, each with its reason. */
#define ATOLL_JWT_TOKEN_MAX 4096   /* whole token: far above any login's claims */
#define ATOLL_JWT_HEADER_MAX 512   /* decoded header: alg, typ, kid fit in a tenth */
#define ATOLL_JWT_PAYLOAD_MAX 3072 /* decoded payload: what 4096 base64url bytes hold */
#define ATOLL_JWT_SIG_LEN 32       /* HMAC-SHA-256, exactly */
#define ATOLL_JWT_AUD_MAX 32       /* audiences in an "aud" array */
#define ATOLL_JWT_JSON_DEPTH 16    /* nesting of header and payload (claims are flat) */
/* The secret: a setting or a file of at most this many bytes (the bound of every secret
 * setting, config.h); shorter than ATOLL_JWT_SECRET_GOOD (the hash's output, RFC 7518
 * 3.2) is warned about. */
#define ATOLL_JWT_SECRET_MAX ATOLL_SECRET_MAX
#define ATOLL_JWT_SECRET_GOOD 32

/* The node's key: built once at the start, read-only afterwards. */
typedef struct atoll__jwt_key {
    uint8_t *secret;
    size_t secret_len;
    char *audience;   /* auth.jwt_audience, or NULL: "aud" must then be absent */
    int leeway_s;     /* auth.jwt_leeway: clock skew allowed for exp and nbf */
} atoll__jwt_key;

/* Decodes base64url without padding (RFC 7515 section 2): in[0..len) of A-Z a-z 0-9 -
 * and _ only, len % 4 != 1, and the unused low bits of the last character zero, so a
 * byte string has one encoding. Returns the decoded length, or -1 for bad input or
 * when the result would be longer than cap. */
ssize_t atoll__b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Verifies token[0..len) (the header's algorithm, the signature, then the claims, as
 * above) at now_s (seconds since the epoch). ATOLL_OK with the NUL-terminated uid
 * ("sub") in uid_out[0..uid_cap), uid_cap > ATOLL_UID_MAX; otherwise an error and a
 * static sentence in *why (for the client and the log; never the token):
 * ATOLL_ELIMIT for a token or segment over its limit, ATOLL_EPROTO for a malformed or
 * unsupported token (segments, base64url, JSON, alg, typ, crit), ATOLL_EINVAL for a
 * bad signature or claims that do not fit (sub, aud), ATOLL_ETIMEDOUT for exp and
 * nbf. Pure: no allocation outlives the call, nothing is logged. */
int atoll__jwt_verify(const char *token, size_t len, const atoll__jwt_key *key, int64_t now_s,
                      char *uid_out, size_t uid_cap, const char **why);

/* The node's key from its settings: exactly one of auth.jwt_secret and
 * auth.jwt_secret_file (a file of 1 to ATOLL_JWT_SECRET_MAX bytes, one trailing
 * newline trimmed), auth.jwt_audience, auth.jwt_leeway. ATOLL_OK with *out NULL when
 * neither secret is set (logins are not authenticated), ATOLL_OK with a key, or
 * ATOLL_EINVAL with a sentence in err. A secret shorter than ATOLL_JWT_SECRET_GOOD
 * bytes is logged as a warning; the secret itself never is. */
int atoll__jwt_key_load(const atoll__config *c, atoll__jwt_key **out, char *err, size_t errlen);
/* Wipes the secret and frees the key (NULL is fine). */
void atoll__jwt_key_free(atoll__jwt_key *k);

#endif /* ATOLL_NODE_AUTH_H */

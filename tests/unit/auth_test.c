/* auth_test.c -- signed logins (src/node/auth.c): the base64url decoder, the HS256 token
 * verifier and the key's loading from settings.
 *
 * The verifier reads what clients send, so it is tested as a decoder of untrusted bytes:
 * the RFC 7515 appendix A.1 vector (its JWK key, its token, a fixed "now") shows that a
 * signature made elsewhere passes and that one changed byte anywhere does not; then each
 * check of auth.h on its own, with tokens minted by tests/support/jwt_mint.h (written
 * apart from the decoder, and itself checked against the RFC vector here): algorithms
 * other than HS256 and "none", tampered payloads and signatures, exp, nbf and the
 * leeway at their edges, aud as a string, an array and missing, sub missing, too long,
 * a guest's, segments that are not JSON or not base64url, and tokens over the limits.
 * Every refusal is checked for its error class and its sentence, so a token refused for
 * the wrong reason fails the test.
 */
#include "node/auth.h"
#include "jwt_mint.h"
#include "test.h"

#include <atoll/atoll.h>
#include <fcntl.h>

#define NOW 1700000000 /* a fixed "now" for every claim check */
#define SECRET "0123456789abcdef0123456789abcdef"

static atoll__jwt_key
key_of(const char *secret, const char *audience, int leeway_s)
{
    atoll__jwt_key k = {.secret = (uint8_t *)secret, .secret_len = strlen(secret),
                        .audience = (char *)audience, .leeway_s = leeway_s};
    return k;
}

/* Verifies token with k at now; returns the code, *why the sentence, uid the sub. */
static int
verify_at(const char *token, const atoll__jwt_key *k, int64_t now, char *uid, const char **why)
{
    return atoll__jwt_verify(token, strlen(token), k, now, uid, ATOLL_UID_MAX + 1, why);
}

/* The token must be refused with rc and exactly the sentence want. */
#define EXPECT_REFUSED(token, k, now, rc, want)                                            \
    do {                                                                                   \
        char uid_[ATOLL_UID_MAX + 1] = "unchanged";                                        \
        const char *why_ = NULL;                                                           \
        ASSERT_EQ(verify_at((token), (k), (now), uid_, &why_), (rc));                      \
        ASSERT_STR(why_, (want));                                                          \
        ASSERT_STR(uid_, "");                                                              \
    } while (0)

/* The token must pass with this uid. */
#define EXPECT_UID(token, k, now, want)                                                    \
    do {                                                                                   \
        char uid_[ATOLL_UID_MAX + 1];                                                      \
        const char *why_ = "not set";                                                      \
        int rc_ = verify_at((token), (k), (now), uid_, &why_);                             \
        if (rc_ != ATOLL_OK)                                                               \
            fprintf(stderr, "  refused: %s\n", why_ ? why_ : "(null)");                    \
        ASSERT_EQ(rc_, ATOLL_OK);                                                          \
        ASSERT(why_ == NULL);                                                              \
        ASSERT_STR(uid_, (want));                                                          \
    } while (0)

static char tok[16384];

/* A token of payload under SECRET (the usual header). */
static const char *
mint(const char *payload)
{
    ASSERT(jwt_mint(tok, sizeof tok, SECRET, payload) > 0);
    return tok;
}

/* A token of header and payload under SECRET. */
static const char *
mint_with(const char *header, const char *payload)
{
    ASSERT(jwt_mint_raw(tok, sizeof tok, SECRET, strlen(SECRET), header, payload) > 0);
    return tok;
}

/* ---- base64url ------------------------------------------------------------------------- */

static void
expect_b64(const char *in, const char *want)
{
    uint8_t out[64];
    ssize_t n = atoll__b64url_decode(in, strlen(in), out, sizeof out);
    ASSERT_EQ(n, (ssize_t)strlen(want));
    ASSERT_MEM(out, want, strlen(want));
}

TEST(base64url_decodes_the_rfc4648_vectors)
{
    /* RFC 4648 section 10, without the padding. */
    expect_b64("", "");
    expect_b64("Zg", "f");
    expect_b64("Zm8", "fo");
    expect_b64("Zm9v", "foo");
    expect_b64("Zm9vYg", "foob");
    expect_b64("Zm9vYmE", "fooba");
    expect_b64("Zm9vYmFy", "foobar");
    /* The URL alphabet's two characters, and the values at the ends of the table. */
    uint8_t out[8];
    ASSERT_EQ(atoll__b64url_decode("-_-_", 4, out, sizeof out), 3);
    ASSERT_MEM(out, "\xfb\xff\xbf", 3);
    ASSERT_EQ(atoll__b64url_decode("AAAA", 4, out, sizeof out), 3);
    ASSERT_MEM(out, "\0\0\0", 3);
    ASSERT_EQ(atoll__b64url_decode("____", 4, out, sizeof out), 3);
    ASSERT_MEM(out, "\xff\xff\xff", 3);
    ASSERT_EQ(atoll__b64url_decode("az09", 4, out, sizeof out), 3);
    ASSERT_MEM(out, "\x6b\x3d\x3d", 3);
}

TEST(base64url_refuses_what_a_jws_segment_cannot_hold)
{
    uint8_t out[64];
    const char *bad[] = {
        "Zg==",     /* padding */
        "Zm8=",     /* padding */
        "Zm+v",     /* the standard alphabet's + */
        "Zm/v",     /* and / */
        "Zm9v YQ",  /* whitespace */
        "Zm9v\nYQ", /* a line break */
        "Z",        /* one character: 6 bits, no byte */
        "Zm9vY",    /* the same after a whole group */
        "Zh",       /* "f" with a low bit set: a second encoding of one byte */
        "Zm9",      /* "fo" with low bits set */
        "Zm-_X",    /* length 5 */
        "Zm\x80v",  /* a byte outside ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (atoll__b64url_decode(bad[i], strlen(bad[i]), out, sizeof out) != -1) {
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
            ASSERT(0);
        }
    }
    /* A NUL inside is a bad character, not the end. */
    ASSERT_EQ(atoll__b64url_decode("Zm\0v", 4, out, sizeof out), -1);
    /* The output's room: exactly enough passes, one byte less does not. */
    ASSERT_EQ(atoll__b64url_decode("Zm9vYmFy", 8, out, 6), 6);
    ASSERT_EQ(atoll__b64url_decode("Zm9vYmFy", 8, out, 5), -1);
    ASSERT_EQ(atoll__b64url_decode("Zm9vYmE", 7, out, 4), -1);
}

/* ---- the RFC 7515 appendix A.1 vector --------------------------------------------------- */

#define A1_HEADER "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}"
#define A1_PAYLOAD "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
#define A1_TOKEN                                                                           \
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"                                             \
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" \
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define A1_JWK_K                                                                           \
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define A1_NOW 1300819379 /* a second before its exp */

TEST(rfc7515_a1_vector_signature_passes_and_nothing_else_does)
{
    uint8_t secret[64];
    ssize_t n = atoll__b64url_decode(A1_JWK_K, strlen(A1_JWK_K), secret, sizeof secret);
    ASSERT_EQ(n, 64);
    atoll__jwt_key k = {.secret = secret, .secret_len = (size_t)n};
    /* The vector's signature is good: what stops it is the claims, since its payload
     * has no "sub" (the check after the signature). */
    EXPECT_REFUSED(A1_TOKEN, &k, A1_NOW, ATOLL_EINVAL, "token has no sub");
    /* One byte changed anywhere in what is signed, or in the signature: refused. */
    char t[sizeof A1_TOKEN];
    for (size_t i = 0; i < strlen(A1_TOKEN); i++) {
        if (A1_TOKEN[i] == '.')
            continue;
        memcpy(t, A1_TOKEN, sizeof t);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        char uid[ATOLL_UID_MAX + 1];
        const char *why = NULL;
        int rc = verify_at(t, &k, A1_NOW, uid, &why);
        ASSERT(rc != ATOLL_OK);
        if (strcmp(why, "token has no sub") == 0) {
            fprintf(stderr, "  byte %zu changed and still signed\n", i);
            ASSERT(0);
        }
    }
    /* The minter makes the vector's very token from its header, payload and key. */
    char minted[512];
    ASSERT(jwt_mint_raw(minted, sizeof minted, secret, (size_t)n, A1_HEADER, A1_PAYLOAD) > 0);
    ASSERT_STR(minted, A1_TOKEN);
    /* The same header and key with a sub: a login. */
    ASSERT(jwt_mint_raw(tok, sizeof tok, secret, (size_t)n, A1_HEADER,
                        "{\"iss\":\"joe\",\"sub\":\"joe\",\"exp\":1300819380}") > 0);
    EXPECT_UID(tok, &k, A1_NOW, "joe");
    EXPECT_REFUSED(tok, &k, A1_NOW + 1, ATOLL_ETIMEDOUT, "token expired");
}

/* ---- the header -------------------------------------------------------------------------- */

TEST(a_good_token_gives_its_sub)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    EXPECT_UID(mint("{\"sub\":\"alice\",\"exp\":1700000060}"), &k, NOW, "alice");
    /* Other claims are allowed and ignored; typ may be left out; a kid is ignored. */
    EXPECT_UID(mint("{\"iss\":\"web\",\"iat\":1699999999,\"jti\":\"x\",\"sub\":\"bob\","
                    "\"exp\":1700000060,\"extra\":{\"a\":[1,2]}}"),
               &k, NOW, "bob");
    EXPECT_UID(mint_with("{\"alg\":\"HS256\"}", "{\"sub\":\"c\",\"exp\":1700000060}"), &k, NOW,
               "c");
    EXPECT_UID(mint_with("{\"kid\":\"2024-1\",\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                         "{\"sub\":\"d\",\"exp\":1700000060}"),
               &k, NOW, "d");
    /* UTF-8 in sub, and exactly 128 bytes. */
    EXPECT_UID(mint("{\"sub\":\"\xc3\xa9l\xc3\xa8ve\",\"exp\":1700000060}"), &k, NOW,
               "\xc3\xa9l\xc3\xa8ve");
    char long_sub[ATOLL_UID_MAX + 1], payload[512];
    memset(long_sub, 'u', ATOLL_UID_MAX);
    long_sub[ATOLL_UID_MAX] = '\0';
    snprintf(payload, sizeof payload, "{\"sub\":\"%s\",\"exp\":1700000060}", long_sub);
    EXPECT_UID(mint(payload), &k, NOW, long_sub);
    /* A real exp far away. */
    EXPECT_UID(mint("{\"sub\":\"e\",\"exp\":1e300}"), &k, NOW, "e");
    /* An integer exp past int64 reads as a number like any other. */
    EXPECT_UID(mint("{\"sub\":\"f\",\"exp\":99999999999999999999}"), &k, NOW, "f");
}

TEST(only_hs256_is_accepted)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    const char *payload = "{\"sub\":\"alice\",\"exp\":1700000060}";
    const char *headers[] = {
        "{\"alg\":\"HS384\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS512\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"ES256\"}",
        "{\"alg\":\"none\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":[\"HS256\"]}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"typ\":\"JWT\"}",
        "{}",
    };
    /* Signed with the right key, so only the algorithm is wrong. */
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        EXPECT_REFUSED(mint_with(headers[i], payload), &k, NOW, ATOLL_EPROTO,
                       "token alg must be HS256");
    /* The classic "none" token: no signature at all. */
    char none[300], h[128], p[128];
    jwt_b64url("{\"alg\":\"none\"}", 14, h);
    jwt_b64url(payload, strlen(payload), p);
    snprintf(none, sizeof none, "%s.%s.", h, p);
    EXPECT_REFUSED(none, &k, NOW, ATOLL_EPROTO, "token is not header.payload.signature");
    snprintf(none, sizeof none, "%s.%s", h, p);
    EXPECT_REFUSED(none, &k, NOW, ATOLL_EPROTO, "token is not header.payload.signature");
    /* typ, when given, is JWT; crit is never understood. */
    EXPECT_REFUSED(mint_with("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", payload), &k, NOW,
                   ATOLL_EPROTO, "token typ must be JWT");
    EXPECT_REFUSED(mint_with("{\"alg\":\"HS256\",\"typ\":1}", payload), &k, NOW, ATOLL_EPROTO,
                   "token typ must be JWT");
    EXPECT_REFUSED(mint_with("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", payload),
                   &k, NOW, ATOLL_EPROTO, "token crit is not supported");
    /* A NUL inside "HS256\u0000": jansson refuses the text before alg is read. */
    EXPECT_REFUSED(mint_with("{\"alg\":\"HS256\\u0000\"}", payload), &k, NOW, ATOLL_EPROTO,
                   "token header is not a JSON object");
    /* Two algs: which one would a minter have meant? */
    EXPECT_REFUSED(mint_with("{\"alg\":\"none\",\"alg\":\"HS256\"}", payload), &k, NOW,
                   ATOLL_EPROTO, "token header is not a JSON object");
}

/* ---- the signature ----------------------------------------------------------------------- */

TEST(tampered_tokens_are_refused)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    char good[512];
    const char *t = mint("{\"sub\":\"alice\",\"exp\":1700000060}");
    ASSERT(strlen(t) < sizeof good);
    memcpy(good, t, strlen(t) + 1);
    EXPECT_UID(good, &k, NOW, "alice");
    /* The payload swapped for another (sub "admin"), the signature kept. */
    char forged[512], p[128];
    const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    const char *admin = "{\"sub\":\"admin\",\"exp\":1700000060}";
    jwt_b64url(admin, strlen(admin), p);
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - good), good, p, d2);
    EXPECT_REFUSED(forged, &k, NOW, ATOLL_EINVAL, "bad token signature");
    /* Signed with another secret. */
    ASSERT(jwt_mint(forged, sizeof forged, "another secret, 32 bytes long...",
                    "{\"sub\":\"alice\",\"exp\":1700000060}") > 0);
    EXPECT_REFUSED(forged, &k, NOW, ATOLL_EINVAL, "bad token signature");
    /* A key one byte different. */
    atoll__jwt_key wrong = key_of("0123456789abcdef0123456789abcdeF", NULL, 0);
    EXPECT_REFUSED(good, &wrong, NOW, ATOLL_EINVAL, "bad token signature");
    /* Signature cut, lengthened, or with a character outside base64url. */
    size_t len = strlen(good);
    snprintf(forged, sizeof forged, "%.*s", (int)len - 1, good);
    EXPECT_REFUSED(forged, &k, NOW, ATOLL_EINVAL, "bad token signature");
    snprintf(forged, sizeof forged, "%sA", good);
    EXPECT_REFUSED(forged, &k, NOW, ATOLL_EINVAL, "bad token signature");
    snprintf(forged, sizeof forged, "%s", good);
    forged[len - 5] = '+';
    EXPECT_REFUSED(forged, &k, NOW, ATOLL_EPROTO, "token signature is not base64url");
    /* The last character of a 32-byte signature carries 2 unused bits: setting one
     * gives another encoding of the same bytes, which is refused, not accepted. */
    snprintf(forged, sizeof forged, "%s", good);
    char *last = &forged[len - 1];
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alphabet, *last) - alphabet);
    *last = alphabet[v | 1];
    ASSERT(*last != good[len - 1]);
    EXPECT_REFUSED(forged, &k, NOW, ATOLL_EPROTO, "token signature is not base64url");
    /* Every single-bit change of the signature's bytes. */
    for (size_t i = (size_t)(d2 - good) + 1; i < len - 1; i++) {
        snprintf(forged, sizeof forged, "%s", good);
        forged[i] = forged[i] == 'A' ? 'B' : 'A';
        EXPECT_REFUSED(forged, &k, NOW, ATOLL_EINVAL, "bad token signature");
    }
}

/* ---- claims ----------------------------------------------------------------------------- */

TEST(exp_nbf_and_the_leeway)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    EXPECT_REFUSED(mint("{\"sub\":\"a\"}"), &k, NOW, ATOLL_EINVAL, "token has no exp");
    /* exp is the first second the token is no longer good. */
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000001}"), &k, NOW, "a");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000000}"), &k, NOW, ATOLL_ETIMEDOUT,
                   "token expired");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":0}"), &k, NOW, ATOLL_ETIMEDOUT, "token expired");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":-1e300}"), &k, NOW, ATOLL_ETIMEDOUT,
                   "token expired");
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000000.5}"), &k, NOW, "a");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":\"1800000000\"}"), &k, NOW, ATOLL_EPROTO,
                   "token exp and nbf must be numbers");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":null}"), &k, NOW, ATOLL_EPROTO,
                   "token exp and nbf must be numbers");
    /* nbf: good from that second on. */
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000060,\"nbf\":1700000000}"), &k, NOW, "a");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"nbf\":1700000001}"), &k, NOW,
                   ATOLL_ETIMEDOUT, "token not valid yet (nbf)");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"nbf\":\"0\"}"), &k, NOW,
                   ATOLL_EPROTO, "token exp and nbf must be numbers");
    /* A leeway of 5 s, at both edges. */
    atoll__jwt_key l = key_of(SECRET, NULL, 5);
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1699999996}"), &l, NOW, "a");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1699999995}"), &l, NOW, ATOLL_ETIMEDOUT,
                   "token expired");
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000060,\"nbf\":1700000005}"), &l, NOW, "a");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"nbf\":1700000006}"), &l, NOW,
                   ATOLL_ETIMEDOUT, "token not valid yet (nbf)");
}

TEST(aud_as_a_string_an_array_or_missing)
{
    atoll__jwt_key k = key_of(SECRET, "game", 0);
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":\"game\"}"), &k, NOW, "a");
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":[\"web\",\"game\"]}"), &k, NOW,
               "a");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":\"web\"}"), &k, NOW,
                   ATOLL_EINVAL, "token is for another audience");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":\"Game\"}"), &k, NOW,
                   ATOLL_EINVAL, "token is for another audience");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":\"game\\u0000x\"}"), &k, NOW,
                   ATOLL_EPROTO, "token payload is not a JSON object");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":[\"web\"]}"), &k, NOW,
                   ATOLL_EINVAL, "token is for another audience");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":[]}"), &k, NOW, ATOLL_EINVAL,
                   "token is for another audience");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060}"), &k, NOW, ATOLL_EINVAL,
                   "token has no aud");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":[\"game\",1]}"), &k, NOW,
                   ATOLL_EPROTO, "token aud must be a string or an array of strings");
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":{\"game\":1}}"), &k, NOW,
                   ATOLL_EPROTO, "token aud must be a string or an array of strings");
    /* At most ATOLL_JWT_AUD_MAX audiences. */
    char payload[1024];
    int n = snprintf(payload, sizeof payload, "{\"sub\":\"a\",\"exp\":1700000060,\"aud\":[");
    for (int i = 0; i < ATOLL_JWT_AUD_MAX; i++)
        n += snprintf(payload + n, sizeof payload - (size_t)n, "%s\"a%d\"", i ? "," : "", i);
    snprintf(payload + n, sizeof payload - (size_t)n, ",\"game\"]}");
    EXPECT_REFUSED(mint(payload), &k, NOW, ATOLL_ELIMIT, "token aud has too many entries");
    snprintf(strstr(payload, ",\"a31\""), 32, ",\"game\"]}");
    EXPECT_UID(mint(payload), &k, NOW, "a");
    /* A node that names no audience refuses a token meant for one (RFC 7519 4.1.3). */
    atoll__jwt_key none = key_of(SECRET, NULL, 0);
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"exp\":1700000060,\"aud\":\"game\"}"), &none, NOW,
                   ATOLL_EINVAL,
                   "token names an audience and this node has none (auth.jwt_audience)");
}

TEST(sub_is_a_uid_and_never_a_guest)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    EXPECT_REFUSED(mint("{\"exp\":1700000060}"), &k, NOW, ATOLL_EINVAL, "token has no sub");
    const char *sub_bad = "token sub must be a string of 1 to 128 bytes";
    EXPECT_REFUSED(mint("{\"sub\":\"\",\"exp\":1700000060}"), &k, NOW, ATOLL_EINVAL, sub_bad);
    EXPECT_REFUSED(mint("{\"sub\":42,\"exp\":1700000060}"), &k, NOW, ATOLL_EINVAL, sub_bad);
    EXPECT_REFUSED(mint("{\"sub\":null,\"exp\":1700000060}"), &k, NOW, ATOLL_EINVAL, sub_bad);
    EXPECT_REFUSED(mint("{\"sub\":[\"a\"],\"exp\":1700000060}"), &k, NOW, ATOLL_EINVAL, sub_bad);
    /* A NUL inside never reaches the uid: jansson refuses "\u0000" in strings. */
    EXPECT_REFUSED(mint("{\"sub\":\"a\\u0000b\",\"exp\":1700000060}"), &k, NOW, ATOLL_EPROTO,
                   "token payload is not a JSON object");
    char long_sub[ATOLL_UID_MAX + 2], payload[512];
    memset(long_sub, 'u', ATOLL_UID_MAX + 1);
    long_sub[ATOLL_UID_MAX + 1] = '\0';
    snprintf(payload, sizeof payload, "{\"sub\":\"%s\",\"exp\":1700000060}", long_sub);
    EXPECT_REFUSED(mint(payload), &k, NOW, ATOLL_EINVAL, sub_bad);
    EXPECT_REFUSED(mint("{\"sub\":\"~0000000000000001\",\"exp\":1700000060}"), &k, NOW,
                   ATOLL_EINVAL, "token sub starts with ~, which is reserved for guests");
    /* Two subs: refused, whichever a minter meant. */
    EXPECT_REFUSED(mint("{\"sub\":\"a\",\"sub\":\"admin\",\"exp\":1700000060}"), &k, NOW,
                   ATOLL_EPROTO, "token payload is not a JSON object");
    /* No room for the uid: the caller's mistake, still no overflow. */
    char small[4] = "xyz";
    const char *why = NULL;
    const char *t = mint("{\"sub\":\"alice\",\"exp\":1700000060}");
    ASSERT_EQ(atoll__jwt_verify(t, strlen(t), &k, NOW, small, sizeof small, &why), ATOLL_ELIMIT);
    ASSERT_STR(small, "");
}

/* ---- shape and limits ------------------------------------------------------------------- */

/* A payload of sub "a" whose member "x" nests arrays so that the whole is depth deep. */
static const char *
nested(int depth)
{
    static char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"sub\":\"a\",\"exp\":1700000060,\"x\":");
    for (int i = 1; i < depth; i++)
        buf[n++] = '[';
    for (int i = 1; i < depth; i++)
        buf[n++] = ']';
    memcpy(buf + n, "}", 2);
    return buf;
}

TEST(malformed_tokens_are_refused_before_any_crypto)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    const char *shape = "token is not header.payload.signature";
    const char *shapes[] = {"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "..", "...",
                            "a.b.c."};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        EXPECT_REFUSED(shapes[i], &k, NOW, ATOLL_EPROTO, shape);
    EXPECT_REFUSED("Zg==.e30.AAAA", &k, NOW, ATOLL_EPROTO, "token header is not base64url");
    EXPECT_REFUSED("e30 .e30.AAAA", &k, NOW, ATOLL_EPROTO, "token header is not base64url");
    /* Headers that are not one JSON object. */
    char h[256], t[512];
    const char *not_objects[] = {"not json", "[1,2]", "\"HS256\"", "{\"alg\":\"HS256\"",
                                 "{\"alg\":\"HS256\"} x", "\xff\xfe", "{\"alg\":\"\xc3\"}"};
    for (size_t i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
        jwt_b64url(not_objects[i], strlen(not_objects[i]), h);
        snprintf(t, sizeof t, "%s.e30.AAAA", h);
        EXPECT_REFUSED(t, &k, NOW, ATOLL_EPROTO, "token header is not a JSON object");
    }
    /* Payloads that are not one JSON object, well signed. */
    const char *payloads[] = {"not json", "[1,2]", "null", "{\"sub\":\"a\",}",
                              "{\"sub\":\"a\",\"exp\":1700000060}{}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++)
        EXPECT_REFUSED(mint(payloads[i]), &k, NOW, ATOLL_EPROTO,
                       "token payload is not a JSON object");
    EXPECT_REFUSED(mint(""), &k, NOW, ATOLL_EPROTO, shape); /* an empty segment */
    /* Nesting past ATOLL_JWT_JSON_DEPTH, signed or not; the limit itself is fine. */
    EXPECT_REFUSED(mint(nested(ATOLL_JWT_JSON_DEPTH + 1)), &k, NOW, ATOLL_EPROTO,
                   "token payload is not a JSON object");
    EXPECT_UID(mint(nested(ATOLL_JWT_JSON_DEPTH)), &k, NOW, "a");
    char header[600];
    snprintf(header, sizeof header, "{\"alg\":\"HS256\",%s", nested(ATOLL_JWT_JSON_DEPTH + 1) + 1);
    EXPECT_REFUSED(mint_with(header, "{\"sub\":\"a\",\"exp\":1700000060}"), &k, NOW,
                   ATOLL_EPROTO, "token header is not a JSON object");
}

TEST(tokens_over_the_limits_are_refused)
{
    atoll__jwt_key k = key_of(SECRET, NULL, 0);
    /* The largest token: a payload padded to exactly ATOLL_JWT_TOKEN_MAX characters. */
    static char payload[ATOLL_JWT_TOKEN_MAX];
    char usual[64];
    size_t header_chars = jwt_b64url(JWT_HEADER_HS256, strlen(JWT_HEADER_HS256), usual);
    ASSERT_STR(usual, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"); /* what every library sends */
    size_t payload_chars = ATOLL_JWT_TOKEN_MAX - header_chars - 2 - 43;
    size_t payload_bytes = payload_chars / 4 * 3 + (payload_chars % 4 ? payload_chars % 4 - 1 : 0);
    int head = snprintf(payload, sizeof payload, "{\"sub\":\"big\",\"exp\":1700000060,\"pad\":\"");
    memset(payload + head, 'x', payload_bytes - (size_t)head - 2);
    memcpy(payload + payload_bytes - 2, "\"}", 3);
    const char *t = mint(payload);
    ASSERT_EQ(strlen(t), ATOLL_JWT_TOKEN_MAX);
    EXPECT_UID(t, &k, NOW, "big");
    /* One byte more. */
    memmove(payload + head + 1, payload + head, payload_bytes - (size_t)head + 1);
    t = mint(payload);
    ASSERT(strlen(t) > ATOLL_JWT_TOKEN_MAX);
    EXPECT_REFUSED(t, &k, NOW, ATOLL_ELIMIT, "token too long");
    /* Much more, and a length that would not fit an int. */
    static char huge[1 << 16];
    memset(huge, 'A', sizeof huge - 1);
    EXPECT_REFUSED(huge, &k, NOW, ATOLL_ELIMIT, "token too long");
    char uid[ATOLL_UID_MAX + 1];
    const char *why;
    ASSERT_EQ(atoll__jwt_verify(huge, (size_t)1 << 40, &k, NOW, uid, sizeof uid, &why),
              ATOLL_ELIMIT);
    /* A header over ATOLL_JWT_HEADER_MAX decoded bytes, in a token under the total. */
    char header[ATOLL_JWT_HEADER_MAX + 64];
    int n = snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"kid\":\"");
    memset(header + n, 'k', ATOLL_JWT_HEADER_MAX - (size_t)n - 1);
    memcpy(header + ATOLL_JWT_HEADER_MAX - 1, "\"}", 3);
    EXPECT_REFUSED(mint_with(header, "{\"sub\":\"a\",\"exp\":1700000060}"), &k, NOW, ATOLL_ELIMIT,
                   "token header too long");
    /* Exactly ATOLL_JWT_HEADER_MAX is fine. */
    memcpy(header + ATOLL_JWT_HEADER_MAX - 2, "\"}", 3);
    ASSERT_EQ(strlen(header), ATOLL_JWT_HEADER_MAX);
    EXPECT_UID(mint_with(header, "{\"sub\":\"a\",\"exp\":1700000060}"), &k, NOW, "a");
    /* NULLs. */
    ASSERT_EQ(atoll__jwt_verify(NULL, 0, &k, NOW, uid, sizeof uid, &why), ATOLL_EINVAL);
    ASSERT_EQ(atoll__jwt_verify("a.b.c", 5, NULL, NOW, uid, sizeof uid, NULL), ATOLL_EINVAL);
}

/* ---- the key ---------------------------------------------------------------------------- */

/* A config of these settings (NULL-terminated KEY=VALUE list). */
static void
config_of(atoll__config *c, const char *const *kv)
{
    atoll__config_defaults(c);
    char err[256];
    for (size_t i = 0; kv[i]; i++) {
        if (atoll__config_set(c, kv[i], err, sizeof err) != ATOLL_OK) {
            fprintf(stderr, "  %s: %s\n", kv[i], err);
            ASSERT(0);
        }
    }
}

/* A temporary file holding data[0..n); its path in path (64 bytes). */
static void
temp_file(char *path, const void *data, size_t n)
{
    snprintf(path, 64, "/tmp/atoll-auth-test-XXXXXX");
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* Loads the key of kv; returns the code, err the sentence. */
static int
load(const char *const *kv, atoll__jwt_key **k, char *err, size_t errlen)
{
    atoll__config c;
    config_of(&c, kv);
    err[0] = '\0';
    int rc = atoll__jwt_key_load(&c, k, err, errlen);
    atoll__config_fini(&c);
    return rc;
}

TEST(the_key_comes_from_one_setting_or_one_file)
{
    atoll__jwt_key *k = (atoll__jwt_key *)1;
    char err[256], kv[128], path[64];
    /* Nothing set: no key, no error. */
    ASSERT_EQ(load((const char *[]){NULL}, &k, err, sizeof err), ATOLL_OK);
    ASSERT(k == NULL);
    /* The setting, with the audience and leeway. */
    ASSERT_EQ(load((const char *[]){"auth.jwt_secret=" SECRET, "auth.jwt_audience=game",
                                    "auth.jwt_leeway=7", NULL},
                   &k, err, sizeof err),
              ATOLL_OK);
    ASSERT(k != NULL && k->secret_len == strlen(SECRET));
    ASSERT_MEM(k->secret, SECRET, strlen(SECRET));
    ASSERT_STR(k->audience, "game");
    ASSERT_EQ(k->leeway_s, 7);
    EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1699999995,\"aud\":\"game\"}"), k, NOW, "a");
    atoll__jwt_key_free(k);
    /* A file: its one trailing newline (LF or CRLF) is not part of the secret. */
    const char *files[] = {SECRET "\n", SECRET "\r\n", SECRET};
    for (size_t i = 0; i < 3; i++) {
        temp_file(path, files[i], strlen(files[i]));
        snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
        ASSERT_EQ(load((const char *[]){kv, NULL}, &k, err, sizeof err), ATOLL_OK);
        ASSERT_EQ(k->secret_len, strlen(SECRET));
        EXPECT_UID(mint("{\"sub\":\"a\",\"exp\":1700000060}"), k, NOW, "a");
        ASSERT(k->audience == NULL);
        atoll__jwt_key_free(k);
        unlink(path);
    }
    /* A second newline is part of it; so are bytes a text setting cannot hold. */
    temp_file(path, "ab\0cd\n\n", 7);
    snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
    ASSERT_EQ(load((const char *[]){kv, NULL}, &k, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(k->secret_len, 6);
    ASSERT_MEM(k->secret, "ab\0cd\n", 6);
    atoll__jwt_key_free(k);
    unlink(path);
    /* ATOLL_JWT_SECRET_MAX bytes and a newline: fine; one byte more: refused. */
    static char big[ATOLL_JWT_SECRET_MAX + 8];
    memset(big, 's', sizeof big);
    big[ATOLL_JWT_SECRET_MAX] = '\n';
    temp_file(path, big, ATOLL_JWT_SECRET_MAX + 1);
    snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
    ASSERT_EQ(load((const char *[]){kv, NULL}, &k, err, sizeof err), ATOLL_OK);
    ASSERT_EQ(k->secret_len, ATOLL_JWT_SECRET_MAX);
    atoll__jwt_key_free(k);
    unlink(path);
    /* MAX - 1 bytes and CRLF, MAX bytes and CRLF: fine. */
    for (size_t len = ATOLL_JWT_SECRET_MAX - 1; len <= ATOLL_JWT_SECRET_MAX; len++) {
        memset(big, 's', sizeof big);
        memcpy(big + len, "\r\n", 2);
        temp_file(path, big, len + 2);
        snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
        ASSERT_EQ(load((const char *[]){kv, NULL}, &k, err, sizeof err), ATOLL_OK);
        ASSERT_EQ(k->secret_len, len);
        atoll__jwt_key_free(k);
        unlink(path);
    }
    /* Anything longer is refused, never cut, even where a CRLF inside it would look
     * like the end of a secret of the right size to a reader that stopped early. */
    for (size_t len = ATOLL_JWT_SECRET_MAX + 1; len <= ATOLL_JWT_SECRET_MAX + 6; len++) {
        for (size_t at = ATOLL_JWT_SECRET_MAX - 2; at + 2 <= len; at++) {
            memset(big, 's', sizeof big);
            memcpy(big + at, "\r\n", 2);
            if (at + 2 == len && at <= ATOLL_JWT_SECRET_MAX)
                continue; /* a real trailing CRLF after at most MAX bytes: fine, above */
            temp_file(path, big, len);
            snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
            ASSERT_EQ(load((const char *[]){kv, NULL}, &k, err, sizeof err), ATOLL_EINVAL);
            ASSERT(strstr(err, "holds more than 4096 bytes") != NULL);
            unlink(path);
        }
    }
}

TEST(bad_key_settings_stop_the_start)
{
    atoll__jwt_key *k = NULL;
    char err[256], kv[128], path[64];
    ASSERT_EQ(load((const char *[]){"auth.jwt_secret=" SECRET,
                                    "auth.jwt_secret_file=/etc/hostname", NULL},
                   &k, err, sizeof err),
              ATOLL_EINVAL);
    ASSERT_STR(err, "auth.jwt_secret and auth.jwt_secret_file are both set: give one");
    ASSERT(k == NULL);
    /* config_check says the same before the node starts. */
    atoll__config c;
    config_of(&c, (const char *[]){"auth.jwt_secret=" SECRET, "auth.jwt_secret_file=/x", NULL});
    ASSERT_EQ(atoll__config_check(&c, err, sizeof err), ATOLL_EINVAL);
    ASSERT_STR(err, "auth.jwt_secret and auth.jwt_secret_file are both set: give one");
    atoll__config_fini(&c);
    ASSERT_EQ(load((const char *[]){"auth.jwt_audience=game", NULL}, &k, err, sizeof err),
              ATOLL_EINVAL);
    ASSERT(strstr(err, "auth.jwt_audience needs auth.jwt_secret") != NULL);
    ASSERT_EQ(load((const char *[]){"auth.jwt_secret_file=/nonexistent/secret", NULL}, &k, err,
                   sizeof err),
              ATOLL_EINVAL);
    ASSERT_STR(err, "cannot open auth.jwt_secret_file /nonexistent/secret: No such file or "
                    "directory");
    ASSERT_EQ(load((const char *[]){"auth.jwt_secret_file=/tmp", NULL}, &k, err, sizeof err),
              ATOLL_EINVAL);
    ASSERT(strstr(err, "cannot read auth.jwt_secret_file /tmp") != NULL);
    const char *empties[] = {"", "\n", "\r\n"};
    for (size_t i = 0; i < 3; i++) {
        temp_file(path, empties[i], strlen(empties[i]));
        snprintf(kv, sizeof kv, "auth.jwt_secret_file=%s", path);
        ASSERT_EQ(load((const char *[]){kv, NULL}, &k, err, sizeof err), ATOLL_EINVAL);
        ASSERT(strstr(err, "is empty") != NULL);
        unlink(path);
    }
    /* The settings themselves: empty values and a bad auth.guests. */
    atoll__config_defaults(&c);
    ASSERT_EQ(atoll__config_set(&c, "auth.jwt_secret=", err, sizeof err), ATOLL_EINVAL);
    ASSERT_EQ(atoll__config_set(&c, "auth.guests=maybe", err, sizeof err), ATOLL_EINVAL);
    ASSERT_EQ(atoll__config_set(&c, "auth.guests=true", err, sizeof err), ATOLL_OK);
    ASSERT_EQ(c.auth_guests, 1);
    ASSERT_EQ(atoll__config_set(&c, "auth.jwt_leeway=3601", err, sizeof err), ATOLL_EINVAL);
    atoll__config_fini(&c);
    atoll__jwt_key_free(NULL);
}

TEST_MAIN(base64url_decodes_the_rfc4648_vectors, base64url_refuses_what_a_jws_segment_cannot_hold,
          rfc7515_a1_vector_signature_passes_and_nothing_else_does, a_good_token_gives_its_sub,
          only_hs256_is_accepted, tampered_tokens_are_refused, exp_nbf_and_the_leeway,
          aud_as_a_string_an_array_or_missing, sub_is_a_uid_and_never_a_guest,
          malformed_tokens_are_refused_before_any_crypto, tokens_over_the_limits_are_refused,
          the_key_comes_from_one_setting_or_one_file, bad_key_settings_stop_the_start)

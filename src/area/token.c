/* token.c -- resume tokens (token.h): made by the area that answers an entry or a
 * resume, opened by the gate from a client's gate.resume. Apart from the rest of the
 * resume code so that its decoder of untrusted bytes is unit-tested and fuzzed alone.
 */
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

static void
put_hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
}

static int
hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool
get_hex(uint8_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void
token_mac(const uint8_t key[ATOLL__RESUME_KEY], const uint8_t nonce[ATOLL__RESUME_NONCE],
          const char *uid, size_t uid_len, uint8_t mac[ATOLL__RESUME_MAC])
{
    uint8_t msg[ATOLL__RESUME_NONCE + ATOLL_UID_MAX];
    memcpy(msg, nonce, ATOLL__RESUME_NONCE);
    memcpy(msg + ATOLL__RESUME_NONCE, uid, uid_len);
    uint8_t full[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, ATOLL__RESUME_KEY, msg, ATOLL__RESUME_NONCE + uid_len, full, &n);
    memcpy(mac, full, ATOLL__RESUME_MAC);
}

size_t
atoll__resume_token(const uint8_t key[ATOLL__RESUME_KEY], const char *uid,
                    const uint8_t nonce[ATOLL__RESUME_NONCE], char *out)
{
    size_t ulen = strlen(uid);
    if (ulen > ATOLL_UID_MAX)
        ulen = ATOLL_UID_MAX; /* never: uids are checked where they come in */
    uint8_t mac[ATOLL__RESUME_MAC];
    token_mac(key, nonce, uid, ulen, mac);
    out[0] = '1';
    put_hex(out + 1, nonce, ATOLL__RESUME_NONCE);
    put_hex(out + 1 + 2 * ATOLL__RESUME_NONCE, mac, ATOLL__RESUME_MAC);
    size_t head = 1 + 2 * ATOLL__RESUME_NONCE + 2 * ATOLL__RESUME_MAC;
    memcpy(out + head, uid, ulen);
    out[head + ulen] = '\0';
    return head + ulen;
}

int
atoll__resume_token_open(const uint8_t key[ATOLL__RESUME_KEY], const char *tok, size_t len,
                         char uid[ATOLL_UID_MAX + 1], uint8_t nonce[ATOLL__RESUME_NONCE])
{
    const size_t head = 1 + 2 * ATOLL__RESUME_NONCE + 2 * ATOLL__RESUME_MAC;
    if (tok == NULL || len <= head || len > ATOLL__RESUME_TOKEN_MAX || tok[0] != '1')
        return ATOLL_EPROTO;
    uint8_t mac[ATOLL__RESUME_MAC], want[ATOLL__RESUME_MAC];
    if (!get_hex(nonce, tok + 1, ATOLL__RESUME_NONCE) ||
        !get_hex(mac, tok + 1 + 2 * ATOLL__RESUME_NONCE, ATOLL__RESUME_MAC))
        return ATOLL_EPROTO;
    size_t ulen = len - head;
    const char *u = tok + head;
    if (memchr(u, '\0', ulen) != NULL || u[0] == '~')
        return ATOLL_EPROTO;
    token_mac(key, nonce, u, ulen, want);
    if (CRYPTO_memcmp(mac, want, ATOLL__RESUME_MAC) != 0)
        return ATOLL_EPROTO;
    memcpy(uid, u, ulen);
    uid[ulen] = '\0';
    return ATOLL_OK;
}


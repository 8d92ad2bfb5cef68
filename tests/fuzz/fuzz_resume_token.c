/* fuzz_resume_token.c -- libFuzzer target: the resume-token decoder (src/area/token.c),
 * which reads what a client sends in gate.resume.
 *
 * Input: the token's bytes. Checked beyond "never crashes, never reads past the input":
 *   - an accepted token is exactly the "1" + 64 hex digits + uid form, within
 *     ATOLL__RESUME_TOKEN_MAX bytes, its uid not empty, without NUL, not a guest's;
 *   - making the token again from the uid and nonce it opened to gives the very same
 *     bytes (one token per player and nonce: no other spelling is accepted);
 *   - a token made from the input (as a uid, when it is one) always opens back, and
 *     opens under no other key.
 * The key is fixed, so the corpus can hold valid tokens (tests/fuzz/make_corpus.py).
 *
 * token.c is built into this target alone (fuzz targets link the codec library, which
 * has OpenSSL but not the area runtime).
 */
#include "../../src/area/token.c"

#include <stdint.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[ATOLL__RESUME_KEY], other[ATOLL__RESUME_KEY];
    for (int i = 0; i < ATOLL__RESUME_KEY; i++) {
        key[i] = (uint8_t)i;
        other[i] = (uint8_t)(0xff - i);
    }
    /* An exact-size copy: a read past the token is a read past an allocation. */
    char *tok = malloc(size ? size : 1);
    memcpy(tok, data, size);
    char uid[ATOLL_UID_MAX + 1];
    uint8_t nonce[ATOLL__RESUME_NONCE];
    if (atoll__resume_token_open(key, tok, size, uid, nonce) == ATOLL_OK) {
        CHECK(size > ATOLL__RESUME_TOKEN_HEAD && size <= ATOLL__RESUME_TOKEN_MAX);
        CHECK(tok[0] == '1');
        size_t ulen = strlen(uid);
        CHECK(ulen == size - ATOLL__RESUME_TOKEN_HEAD && ulen > 0 && uid[0] != '~');
        char again[ATOLL__RESUME_TOKEN_MAX + 1];
        size_t n = atoll__resume_token(key, uid, nonce, again);
        CHECK(n == size && memcmp(again, tok, size) == 0);
        CHECK(atoll__resume_token_open(other, tok, size, uid, nonce) != ATOLL_OK);
    }
    /* The input as a uid: made and opened again. */
    if (size > 0 && size <= ATOLL_UID_MAX && memchr(data, '\0', size) == NULL && data[0] != '~') {
        char u[ATOLL_UID_MAX + 1];
        memcpy(u, data, size);
        u[size] = '\0';
        uint8_t n0[ATOLL__RESUME_NONCE] = {0};
        for (size_t i = 0; i < size && i < sizeof n0; i++)
            n0[i] = data[i];
        char made[ATOLL__RESUME_TOKEN_MAX + 1];
        size_t len = atoll__resume_token(key, u, n0, made);
        char got[ATOLL_UID_MAX + 1];
        uint8_t gn[ATOLL__RESUME_NONCE];
        CHECK(atoll__resume_token_open(key, made, len, got, gn) == ATOLL_OK);
        CHECK(strcmp(got, u) == 0 && memcmp(gn, n0, sizeof gn) == 0);
        CHECK(atoll__resume_token_open(other, made, len, got, gn) != ATOLL_OK);
    }
    free(tok);
    return 0;
}

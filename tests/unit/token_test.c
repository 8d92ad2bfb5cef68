/* token_test.c -- resume tokens (src/area/token.c): a token opens to the uid and nonce
 * it was made with, under the key it was made with only; every change of a byte, every
 * malformed form and every length past the limits is refused. */
#include "area/token.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static uint8_t key[ATOLL__RESUME_KEY], other_key[ATOLL__RESUME_KEY];
static const uint8_t nonce[ATOLL__RESUME_NONCE] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                                   0x08, 0x09, 0x0a, 0xab, 0xcd, 0xef, 0xf0, 0xff};

static void
keys(void)
{
    for (int i = 0; i < ATOLL__RESUME_KEY; i++) {
        key[i] = (uint8_t)i;
        other_key[i] = (uint8_t)(i + 1);
    }
}

static int
open_tok(const uint8_t *k, const char *tok, size_t len, char *uid, uint8_t *n)
{
    return atoll__resume_token_open(k, tok, len, uid, n);
}

TEST(a_token_opens_to_its_uid_and_nonce)
{
    keys();
    char tok[ATOLL__RESUME_TOKEN_MAX + 1], uid[ATOLL_UID_MAX + 1];
    uint8_t got[ATOLL__RESUME_NONCE];
    size_t len = atoll__resume_token(key, "alice", nonce, tok);
    ASSERT_EQ(len, (size_t)ATOLL__RESUME_TOKEN_HEAD + 5);
    ASSERT_EQ(strlen(tok), len);
    ASSERT_EQ(tok[0], '1');
    ASSERT(strncmp(tok + 1, "000102030405060708090aabcdeff0ff", 32) == 0);
    ASSERT_STR(tok + ATOLL__RESUME_TOKEN_HEAD, "alice");
    ASSERT_EQ(open_tok(key, tok, len, uid, got), ATOLL_OK);
    ASSERT_STR(uid, "alice");
    ASSERT(memcmp(got, nonce, sizeof nonce) == 0);
    /* Only under its key. */
    ASSERT_EQ(open_tok(other_key, tok, len, uid, got), ATOLL_EPROTO);
}

TEST(every_changed_byte_is_refused)
{
    keys();
    char tok[ATOLL__RESUME_TOKEN_MAX + 1], uid[ATOLL_UID_MAX + 1];
    uint8_t got[ATOLL__RESUME_NONCE];
    size_t len = atoll__resume_token(key, "player-7", nonce, tok);
    for (size_t i = 0; i < len; i++) {
        char saved = tok[i];
        tok[i] = saved == 'a' ? 'b' : saved == '1' && i == 0 ? '2' : 'a';
        if (tok[i] == saved)
            tok[i] = 'c';
        ASSERT_EQ(open_tok(key, tok, len, uid, got), ATOLL_EPROTO);
        tok[i] = saved;
    }
    /* Uppercase hex is not the form (a token is compared as made). */
    char up[ATOLL__RESUME_TOKEN_MAX + 1];
    memcpy(up, tok, len + 1);
    for (size_t i = 1; i < ATOLL__RESUME_TOKEN_HEAD; i++)
        if (up[i] >= 'a' && up[i] <= 'f')
            up[i] = (char)(up[i] - 'a' + 'A');
    ASSERT_EQ(open_tok(key, up, len, uid, got), ATOLL_EPROTO);
    /* Cut short, or one byte more. */
    ASSERT_EQ(open_tok(key, tok, len - 1, uid, got), ATOLL_EPROTO);
    tok[len] = 'x';
    ASSERT_EQ(open_tok(key, tok, len + 1, uid, got), ATOLL_EPROTO);
}

TEST(malformed_tokens_and_limits)
{
    keys();
    char tok[2 * ATOLL__RESUME_TOKEN_MAX], uid[ATOLL_UID_MAX + 1];
    uint8_t got[ATOLL__RESUME_NONCE];
    ASSERT_EQ(open_tok(key, NULL, 0, uid, got), ATOLL_EPROTO);
    ASSERT_EQ(open_tok(key, "", 0, uid, got), ATOLL_EPROTO);
    ASSERT_EQ(open_tok(key, "1", 1, uid, got), ATOLL_EPROTO);
    /* The head alone: no uid. */
    size_t len = atoll__resume_token(key, "u", nonce, tok);
    ASSERT_EQ(open_tok(key, tok, len - 1, uid, got), ATOLL_EPROTO);
    /* The longest uid opens; a longer token is refused before any MAC is computed. */
    char big[ATOLL_UID_MAX + 2];
    memset(big, 'u', sizeof big);
    big[ATOLL_UID_MAX] = '\0';
    len = atoll__resume_token(key, big, nonce, tok);
    ASSERT_EQ(len, (size_t)ATOLL__RESUME_TOKEN_MAX);
    ASSERT_EQ(open_tok(key, tok, len, uid, got), ATOLL_OK);
    ASSERT_EQ(strlen(uid), (size_t)ATOLL_UID_MAX);
    tok[len] = 'u';
    ASSERT_EQ(open_tok(key, tok, len + 1, uid, got), ATOLL_EPROTO);
    /* A NUL inside the uid, and a guest's id, are never a player's token. */
    len = atoll__resume_token(key, "ab", nonce, tok);
    tok[len - 1] = '\0';
    ASSERT_EQ(open_tok(key, tok, len, uid, got), ATOLL_EPROTO);
    len = atoll__resume_token(key, "~0123456789abcdef", nonce, tok);
    ASSERT_EQ(open_tok(key, tok, len, uid, got), ATOLL_EPROTO);
    /* Not hex where the nonce and MAC go. */
    len = atoll__resume_token(key, "bob", nonce, tok);
    tok[5] = 'g';
    ASSERT_EQ(open_tok(key, tok, len, uid, got), ATOLL_EPROTO);
}

TEST_MAIN(a_token_opens_to_its_uid_and_nonce, every_changed_byte_is_refused,
          malformed_tokens_and_limits)

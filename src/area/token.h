/* token.h -- resume tokens: what a client keeps to come back to its player after a
 * dropped connection (resume.c has the protocol).
 *
 * A token is text: "1" (the format), the player's nonce (16 random bytes) and a MAC
 * (the first 16 bytes of HMAC-SHA256 with the node's key over nonce and uid), both in
 * lowercase hex, then the uid. The MAC lets the gate refuse a forged token without
 * asking anyone; the nonce, which the player keeps and replaces at every entry and
 * resume, makes a token single-use.
 */
#ifndef ATOLL_AREA_TOKEN_H
#define ATOLL_AREA_TOKEN_H

#include "../core/core.h"

#include <stddef.h>
#include <stdint.h>

#define ATOLL__RESUME_KEY 32
#define ATOLL__RESUME_NONCE 16
#define ATOLL__RESUME_MAC 16
/* The fixed part before the uid, and the longest token (a uid of ATOLL_UID_MAX bytes). */
#define ATOLL__RESUME_TOKEN_HEAD (1 + 2 * ATOLL__RESUME_NONCE + 2 * ATOLL__RESUME_MAC)
#define ATOLL__RESUME_TOKEN_MAX (ATOLL__RESUME_TOKEN_HEAD + ATOLL_UID_MAX)

/* Writes the token of uid (1..ATOLL_UID_MAX bytes) with nonce at out (room for
 * ATOLL__RESUME_TOKEN_MAX + 1); returns its length. */
size_t atoll__resume_token(const uint8_t key[ATOLL__RESUME_KEY], const char *uid,
                           const uint8_t nonce[ATOLL__RESUME_NONCE], char *out);
/* Opens a token from a client: ATOLL_OK with its uid and nonce, or ATOLL_EPROTO when it
 * is not "1" + 64 lowercase hex digits + a uid of 1..ATOLL_UID_MAX bytes without NUL
 * that does not start with "~", or its MAC is not this key's (compared in constant
 * time). uid and nonce are written only on success. */
int atoll__resume_token_open(const uint8_t key[ATOLL__RESUME_KEY], const char *tok, size_t len,
                             char uid[ATOLL_UID_MAX + 1], uint8_t nonce[ATOLL__RESUME_NONCE]);

#endif /* ATOLL_AREA_TOKEN_H */

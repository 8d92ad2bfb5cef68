/* package.c -- the Pomelo package layer: type(1) | length(3, big-endian) | body.
 *
 *   +--------+----------------------------+-----------------+
 *   | type   | body length (24-bit, BE)   | body            |
 *   | 1 byte | 3 bytes                    | length bytes    |
 *   +--------+----------------------------+-----------------+
 *
 * The parser checks the header as soon as its 4 bytes are there: an unknown type or an
 * oversized length fails before a single body byte is buffered.
 */
#include "proto.h"

ssize_t
atoll__pkg_parse(const uint8_t *p, size_t n, uint32_t max_body, atoll__pkg *out)
{
    if (n < ATOLL_PKG_HEADER_LEN)
        return 0;
    int type = p[0];
    if (type < ATOLL_PKG_HANDSHAKE || type > ATOLL_PKG_KICK)
        return ATOLL_EPROTO;
    uint32_t len = ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    if (len > max_body)
        return ATOLL_ELIMIT;
    if (n - ATOLL_PKG_HEADER_LEN < len)
        return 0;
    out->type = type;
    out->len = len;
    out->body = len ? p + ATOLL_PKG_HEADER_LEN : NULL;
    return (ssize_t)(ATOLL_PKG_HEADER_LEN + len);
}

void
atoll__pkg_header(uint8_t out[4], int type, uint32_t len)
{
    out[0] = (uint8_t)type;
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
}

void
atoll__pkg_put(atoll__buf *b, int type, const void *body, size_t len)
{
    atoll__buf_reserve(b, ATOLL_PKG_HEADER_LEN + len);
    atoll__pkg_header(atoll__buf_data(b) + b->len, type, (uint32_t)len);
    b->len += ATOLL_PKG_HEADER_LEN;
    atoll__buf_append(b, body, len);
}

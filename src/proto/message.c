/* message.c -- the Pomelo message layer: the body of a DATA package.
 *
 *   +------+---------------------+-------------------------------+----------------+
 *   | flag | message id (varint) | route                         | body           |
 *   | 1 B  | 0 B or 1-5 B        | 0 B, 2 B code, or 1 B len + N | rest of package|
 *   +------+---------------------+-------------------------------+----------------+
 *
 *   flag bit0: route compressed; bits1-3: type (0 request, 1 notify, 2 response,
 *   3 push); bit4: "gzip" marker, tolerated on input and never written (libpomelo2
 *   drops the connection on any flag with bit 4 set).
 *   id: LEB128, least-significant group first, uint32, at most 5 bytes.
 *   route: request/notify/push only; a response carries none.
 *
 * Encoders write the DATA package header and the message in one pass into the output
 * buffer: the length is known up front, so nothing is encoded twice.
 */
#include "proto.h"

static size_t
varint_len(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t
atoll__varint_put(uint8_t out[5], uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

int
atoll__msg_decode(const uint8_t *p, size_t n, atoll__msg *out)
{
    if (n < 1)
        return ATOLL_EPROTO;
    uint8_t flag = p[0];
    int type = (flag >> 1) & 7;
    if (type > ATOLL_MSG_PUSH || (flag & 0xE0))
        return ATOLL_EPROTO;
    size_t off = 1;
    memset(out, 0, sizeof *out);
    out->type = type;
    out->compressed = flag & 1;

    if (type == ATOLL_MSG_REQUEST || type == ATOLL_MSG_RESPONSE) {
        uint64_t id = 0;
        int shift = 0;
        for (;;) {
            if (off >= n || shift >= 7 * ATOLL_MSG_ID_MAX_BYTES)
                return ATOLL_EPROTO;
            uint8_t b = p[off++];
            id |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
        if (id > UINT32_MAX)
            return ATOLL_EPROTO;
        out->id = (uint32_t)id;
    }

    if (type == ATOLL_MSG_RESPONSE) {
        if (out->compressed)
            return ATOLL_EPROTO;
    } else if (out->compressed) {
        if (n - off < 2)
            return ATOLL_EPROTO;
        out->route_code = (uint16_t)((p[off] << 8) | p[off + 1]);
        off += 2;
    } else {
        if (off >= n)
            return ATOLL_EPROTO;
        size_t rlen = p[off++];
        if (n - off < rlen)
            return ATOLL_EPROTO;
        if (!atoll__utf8_valid(p + off, rlen))
            return ATOLL_EUTF8;
        out->route = (const char *)(p + off);
        out->route_len = rlen;
        off += rlen;
    }
    out->body = p + off;
    out->body_len = n - off;
    return ATOLL_OK;
}

size_t
atoll__msg_size(int type, uint32_t id, size_t route_len, uint16_t route_code, size_t body_len)
{
    bool has_id = type == ATOLL_MSG_REQUEST || type == ATOLL_MSG_RESPONSE;
    bool has_route = type != ATOLL_MSG_RESPONSE;
    if (route_len > ATOLL_ROUTE_MAX)
        route_len = ATOLL_ROUTE_MAX;
    return 1 + (has_id ? varint_len(id) : 0) +
           (has_route ? (route_code != 0 ? 2 : 1 + route_len) : 0) + body_len;
}

/* One DATA package holding one message; the length is computed first so the whole
 * package is written with a single reserve. */
static void
put_message(atoll__buf *b, int type, uint32_t id, const char *route, size_t route_len,
            uint16_t route_code, const void *body, size_t len)
{
    bool has_id = type == ATOLL_MSG_REQUEST || type == ATOLL_MSG_RESPONSE;
    bool has_route = type != ATOLL_MSG_RESPONSE;
    bool compressed = has_route && route_code != 0;
    if (route_len > ATOLL_ROUTE_MAX)
        route_len = ATOLL_ROUTE_MAX; /* callers check; never write a lying length byte */
    size_t mlen = atoll__msg_size(type, id, route_len, route_code, len);
    atoll__buf_reserve(b, ATOLL_PKG_HEADER_LEN + mlen);
    uint8_t *w = atoll__buf_data(b) + b->len;
    atoll__pkg_header(w, ATOLL_PKG_DATA, (uint32_t)mlen);
    w += ATOLL_PKG_HEADER_LEN;
    *w++ = (uint8_t)((type << 1) | (compressed ? 1 : 0));
    if (has_id)
        w += atoll__varint_put(w, id);
    if (has_route) {
        if (compressed) {
            *w++ = (uint8_t)(route_code >> 8);
            *w++ = (uint8_t)route_code;
        } else {
            *w++ = (uint8_t)route_len;
            if (route_len) /* route may be NULL for an empty route: memcpy(w, NULL, 0) is UB */
                memcpy(w, route, route_len);
            w += route_len;
        }
    }
    if (len)
        memcpy(w, body, len);
    b->len += ATOLL_PKG_HEADER_LEN + mlen;
}

void
atoll__msg_put_response(atoll__buf *b, uint32_t id, const void *body, size_t len)
{
    put_message(b, ATOLL_MSG_RESPONSE, id, NULL, 0, 0, body, len);
}

void
atoll__msg_put_push(atoll__buf *b, const char *route, size_t route_len, uint16_t route_code,
                    const void *body, size_t len)
{
    put_message(b, ATOLL_MSG_PUSH, 0, route, route_len, route_code, body, len);
}

void
atoll__msg_put_request(atoll__buf *b, uint32_t id, const char *route, size_t route_len,
                       uint16_t route_code, const void *body, size_t len)
{
    put_message(b, ATOLL_MSG_REQUEST, id, route, route_len, route_code, body, len);
}

void
atoll__msg_put_notify(atoll__buf *b, const char *route, size_t route_len, uint16_t route_code,
                      const void *body, size_t len)
{
    put_message(b, ATOLL_MSG_NOTIFY, 0, route, route_len, route_code, body, len);
}

const void *
atoll__response_fit(uint32_t id, const void *body, size_t *len)
{
    size_t size = atoll__msg_size(ATOLL_MSG_RESPONSE, id, 0, 0, *len);
    if (size <= ATOLL_PKG_BODY_CEILING)
        return body;
    /* The 24-bit length cannot carry it: an error the client can read instead. */
    ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"response too large for a package\" size=%zu", size);
    static const char too_large[] = "{\"code\":500,\"message\":\"response too large\"}";
    *len = sizeof too_large - 1;
    return too_large;
}

size_t
atoll__push_pkg_size(const char *route, size_t rlen, uint16_t code, size_t len)
{
    size_t size = atoll__msg_size(ATOLL_MSG_PUSH, 0, rlen, code, len);
    if (size > ATOLL_PKG_BODY_CEILING || (code == 0 && rlen > ATOLL_ROUTE_MAX)) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"push dropped: too large for a package\" route=\"%.64s\" "
                  "size=%zu", route, size);
        return 0;
    }
    return ATOLL_PKG_HEADER_LEN + size;
}

/* ws_codec.c -- RFC 6455 frames: the reader (both sides) and the header writer.
 *
 * No I/O. The reader is a function of the bytes it is given plus a little message state
 * (in_message, nfragments, assembly): a partial frame returns 0 and consumes nothing, so
 * the caller appends what the socket brings and calls again. Every rule the header can
 * decide (reserved bits, opcode, mask bit, control-frame rules, sizes, fragment count)
 * is checked as soon as the bytes that carry it are there, in the order those bytes
 * arrive, so a hostile header costs only its own bytes and the verdict does not depend
 * on how the stream was cut into reads.
 *
 * A whole frame is unmasked in place. An unfragmented binary message is handed out as a
 * pointer into the caller's buffer (no copy: that is the common case on the hot path);
 * fragments are gathered into r->assembly, and the size check comes before any append,
 * so the assembly never grows past max_message.
 */
#include "ws.h"

/* An idle connection keeps its assembly allocation only while it is this small: one
 * large fragmented message must not pin memory for the connection's lifetime. */
#define ASSEMBLY_KEEP 4096

static ssize_t
fail(atoll__ws_reader *r, int close_code, int err)
{
    r->error_code = close_code;
    return err;
}

void
atoll__ws_reader_init(atoll__ws_reader *r, bool expect_masked, size_t max_message)
{
    memset(r, 0, sizeof *r);
    r->expect_masked = expect_masked;
    r->max_message = max_message;
}

void
atoll__ws_reader_fini(atoll__ws_reader *r)
{
    atoll__buf_fini(&r->assembly);
    r->in_message = false;
    r->nfragments = 0;
}

/* RFC 6455 7.4: 1004-1006 and 1015 are reserved and never sent; 1012-1014 were
 * registered with IANA after the RFC; 3000-4999 belong to libraries and applications. */
static bool
valid_close_code(int code)
{
    if (code >= 1000 && code <= 1014)
        return code != 1004 && code != 1005 && code != 1006;
    return code >= 3000 && code <= 4999;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF): RFC 6455 5.5.1
 * makes the close reason UTF-8, and an invalid one is answered with 1007. */
static bool
valid_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

static int
gather(atoll__buf *b, const uint8_t *p, size_t n)
{
    if (n == 0)
        return ATOLL_OK;
    int err = atoll__buf_try_reserve(b, n);
    if (err != ATOLL_OK)
        return err;
    memcpy(atoll__buf_data(b) + b->len, p, n);
    b->len += n;
    return ATOLL_OK;
}

ssize_t
atoll__ws_reader_next(atoll__ws_reader *r, uint8_t *p, size_t n, atoll__ws_event *ev)
{
    ev->type = ATOLL_WS_EV_NONE;
    ev->data = NULL;
    ev->len = 0;
    ev->close_code = 0;

    /* A message handed out of the assembly by the previous call is dead now. */
    if (!r->in_message && r->assembly.len != 0) {
        r->assembly.len = 0;
        atoll__buf_shrink(&r->assembly, ASSEMBLY_KEEP);
    }
    if (n < 2)
        return 0;

    bool fin = (p[0] & 0x80) != 0;
    int opcode = p[0] & 0x0F;
    bool masked = (p[1] & 0x80) != 0;
    uint64_t len = p[1] & 0x7F;

    if (p[0] & 0x70) /* RSV1-3: they belong to extensions, and we negotiate none */
        return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
    switch (opcode) {
    case ATOLL_WS_OP_CONT:
        if (!r->in_message)
            return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
        if (r->nfragments >= ATOLL_WS_MAX_FRAGMENTS)
            return fail(r, ATOLL_WS_CLOSE_TOO_BIG, ATOLL_ELIMIT);
        break;
    case ATOLL_WS_OP_TEXT:
    case ATOLL_WS_OP_BINARY:
        if (r->in_message) /* 5.4: fragments of two messages never interleave */
            return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
        if (opcode == ATOLL_WS_OP_TEXT) /* Pomelo packages are binary */
            return fail(r, ATOLL_WS_CLOSE_UNSUPPORTED, ATOLL_EPROTO);
        break;
    case ATOLL_WS_OP_CLOSE:
    case ATOLL_WS_OP_PING:
    case ATOLL_WS_OP_PONG:
        /* 5.5; a 1-byte close body cannot hold the 2-byte status (5.5.1) */
        if (!fin || len > ATOLL_WS_CONTROL_MAX || (opcode == ATOLL_WS_OP_CLOSE && len == 1))
            return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
        break;
    default:
        return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
    }
    if (masked != r->expect_masked) /* 5.1: clients always mask, servers never do */
        return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);

    size_t hlen = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        hlen = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63) /* 5.2: the most significant bit MUST be 0 */
            return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
        hlen = 10;
    }
    if (!(opcode & 0x8)) {
        /* The assembly holds at most max_message bytes, so this cannot wrap. This check
         * also bounds len to a size_t on 32-bit hosts. */
        size_t have = r->in_message ? r->assembly.len : 0;
        if (len > r->max_message - have)
            return fail(r, ATOLL_WS_CLOSE_TOO_BIG, ATOLL_ELIMIT);
    }

    uint8_t key[4];
    if (masked) {
        if (n - hlen < 4)
            return 0;
        memcpy(key, p + hlen, 4);
        hlen += 4;
    }
    if (n - hlen < len)
        return 0;
    uint8_t *payload = p + hlen;
    size_t plen = (size_t)len;
    if (masked)
        atoll__ws_mask(payload, plen, key, 0);

    switch (opcode) {
    case ATOLL_WS_OP_BINARY:
        if (fin) {
            ev->type = ATOLL_WS_EV_MESSAGE;
            ev->data = payload;
            ev->len = plen;
            break;
        }
        r->in_message = true;
        r->nfragments = 1;
        r->assembly.len = 0;
        /* Out of memory for a message within max_message: the peer is told it was too
         * big for us, the closest status 1000-1009 offer. */
        if (gather(&r->assembly, payload, plen) != ATOLL_OK)
            return fail(r, ATOLL_WS_CLOSE_TOO_BIG, ATOLL_ENOMEM);
        break;
    case ATOLL_WS_OP_CONT:
        if (gather(&r->assembly, payload, plen) != ATOLL_OK)
            return fail(r, ATOLL_WS_CLOSE_TOO_BIG, ATOLL_ENOMEM);
        r->nfragments++;
        if (fin) {
            r->in_message = false;
            r->nfragments = 0;
            ev->type = ATOLL_WS_EV_MESSAGE;
            /* Never NULL, even for an empty message, so callers may memcpy from it. */
            ev->data = r->assembly.len ? atoll__buf_data(&r->assembly) : payload;
            ev->len = r->assembly.len;
        }
        break;
    case ATOLL_WS_OP_PING:
    case ATOLL_WS_OP_PONG:
        ev->type = opcode == ATOLL_WS_OP_PING ? ATOLL_WS_EV_PING : ATOLL_WS_EV_PONG;
        ev->data = payload;
        ev->len = plen;
        break;
    case ATOLL_WS_OP_CLOSE:
        ev->type = ATOLL_WS_EV_CLOSE;
        ev->data = payload;
        if (plen == 0) {
            ev->close_code = ATOLL_WS_CLOSE_NO_STATUS;
            break;
        }
        ev->close_code = payload[0] << 8 | payload[1];
        if (!valid_close_code(ev->close_code))
            return fail(r, ATOLL_WS_CLOSE_PROTOCOL, ATOLL_EPROTO);
        if (!valid_utf8(payload + 2, plen - 2))
            return fail(r, ATOLL_WS_CLOSE_INVALID, ATOLL_EPROTO);
        ev->data = payload + 2;
        ev->len = plen - 2;
        break;
    }
    return (ssize_t)(hlen + plen);
}

size_t
atoll__ws_header_len(uint64_t len)
{
    return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}

size_t
atoll__ws_frame_header(uint8_t out[14], int opcode, bool fin, uint64_t len,
                       const uint8_t mask[4])
{
    size_t h = atoll__ws_header_len(len);
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (h == 2) {
        out[1] = (uint8_t)len;
    } else if (h == 4) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    }
    if (mask != NULL) {
        out[1] |= 0x80;
        memcpy(out + h, mask, 4);
        h += 4;
    }
    return h;
}

/* Eight bytes per step through memcpy (one unaligned load and store on the hosts we
 * run on, and no alignment rules to break): the key repeats every 4 bytes, so an
 * 8-byte word of it stays in phase for the whole run. */
void
atoll__ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset)
{
    uint8_t k[8];
    for (int i = 0; i < 8; i++)
        k[i] = mask[(offset + (size_t)i) & 3];
    size_t i = 0;
    if (n >= 8) {
        uint64_t k64, v;
        memcpy(&k64, k, 8);
        for (; n - i >= 8; i += 8) {
            memcpy(&v, p + i, 8);
            v ^= k64;
            memcpy(p + i, &v, 8);
        }
    }
    for (; i < n; i++)
        p[i] ^= k[i & 3];
}

/* 1005 means "no status" and must not be sent (7.4.1): it gives an empty close. A
 * reason longer than 123 bytes is cut at a UTF-8 character boundary. */
void
atoll__ws_put_close(atoll__buf *b, int code, const char *reason)
{
    uint8_t frame[2 + ATOLL_WS_CONTROL_MAX];
    size_t plen = 0;
    if (code > 0 && code <= 0xFFFF && code != ATOLL_WS_CLOSE_NO_STATUS) {
        size_t rlen = reason ? strlen(reason) : 0;
        if (rlen > ATOLL_WS_CONTROL_MAX - 2) {
            rlen = ATOLL_WS_CONTROL_MAX - 2;
            while (rlen > 0 && ((uint8_t)reason[rlen] & 0xC0) == 0x80)
                rlen--;
        }
        frame[2] = (uint8_t)(code >> 8);
        frame[3] = (uint8_t)code;
        if (rlen)
            memcpy(frame + 4, reason, rlen);
        plen = 2 + rlen;
    }
    frame[0] = 0x80 | ATOLL_WS_OP_CLOSE;
    frame[1] = (uint8_t)plen;
    atoll__buf_append(b, frame, 2 + plen);
}

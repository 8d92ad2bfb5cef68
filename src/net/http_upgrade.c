/* http_upgrade.c -- the HTTP/1.1 half of the WebSocket opening handshake (RFC 6455 4).
 *
 * Server side: tell an HTTP request from a raw Pomelo stream, parse the upgrade request
 * head, answer 101 (or an error). Client side: write the request, check the server's
 * 101. No I/O: heads are parsed from the caller's bytes, and a partial head returns 0.
 *
 * Every call first scans the head for its end, enforcing ATOLL_HTTP_HEAD_MAX and
 * ATOLL_HTTP_MAX_HEADERS on the bytes seen so far, so a peer that trickles an endless
 * head is cut off at the limit instead of being buffered. The grammar is strict where
 * it costs no real client anything (CRLF line ends, no control bytes, no obs-fold, no
 * space before the colon, "GET <target> HTTP/1.1") and tolerant where browsers and node
 * `ws` differ: header names in any case, optional whitespace around values, list
 * values ("Connection: keep-alive, Upgrade"), header order. permessage-deflate is noted
 * and declined: the 101 names no extension and no subprotocol.
 */
#include "ws.h"

#include <openssl/evp.h>
#include <stdio.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct span {
    const uint8_t *s, *e;
} span;

typedef struct field {
    const uint8_t *name, *value;
    size_t nlen, vlen;
} field;

bool
atoll__http_looks_like(const uint8_t *p, size_t n)
{
    /* Pomelo's switcher compares the first bytes with these method names; a prefix of
     * one of them may still become it, so a short read answers "maybe" as true. */
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};
    if (n == 0)
        return false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        size_t m = strlen(methods[i]);
        if (memcmp(p, methods[i], n < m ? n : m) == 0)
            return true;
    }
    return false;
}

/* Length of the head in p[0..n) through its blank line; 0 when more bytes are needed;
 * ATOLL_ELIMIT past the size or line limits; ATOLL_EPROTO for a bare CR or LF, a
 * control byte or an empty start line. */
static ssize_t
head_end(const uint8_t *p, size_t n)
{
    size_t lim = n < ATOLL_HTTP_HEAD_MAX ? n : ATOLL_HTTP_HEAD_MAX;
    size_t line = 0;
    int lines = 0;
    for (size_t i = 0; i < lim; i++) {
        uint8_t c = p[i];
        if (c == '\r') {
            if (i + 1 < n && p[i + 1] != '\n')
                return ATOLL_EPROTO;
        } else if (c == '\n') {
            if (i == 0 || p[i - 1] != '\r')
                return ATOLL_EPROTO;
            if (i - 1 == line)
                return lines == 0 ? ATOLL_EPROTO : (ssize_t)(i + 1);
            if (++lines > 1 + ATOLL_HTTP_MAX_HEADERS)
                return ATOLL_ELIMIT;
            line = i + 1;
        } else if ((c < 0x20 && c != '\t') || c == 0x7F) {
            return ATOLL_EPROTO;
        }
    }
    return n >= ATOLL_HTTP_HEAD_MAX ? ATOLL_ELIMIT : 0;
}

/* Cuts the next line off [*cur, end) into l (without its CRLF) and moves *cur past
 * it; false at the end. head_end has made sure every CR is followed by LF. */
static bool
next_line(const uint8_t **cur, const uint8_t *end, span *l)
{
    if (*cur >= end)
        return false;
    const uint8_t *cr = memchr(*cur, '\r', (size_t)(end - *cur));
    l->s = *cur;
    l->e = cr ? cr : end;
    *cur = cr ? cr + 2 : end;
    return true;
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool
ieq(const uint8_t *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower((uint8_t)b[i]))
            return false;
    return true;
}

static bool
is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 tchar: the bytes allowed in a header name. */
static bool
is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Splits "Name: value", trimming the value; false for a line that is no header field
 * (an empty or non-token name, a space before the colon, an obs-fold continuation). */
static bool
split_field(const uint8_t *s, const uint8_t *e, field *f)
{
    const uint8_t *colon = memchr(s, ':', (size_t)(e - s));
    if (colon == NULL || colon == s)
        return false;
    for (const uint8_t *q = s; q < colon; q++)
        if (!is_tchar(*q))
            return false;
    const uint8_t *v = colon + 1;
    while (v < e && is_ows(*v))
        v++;
    while (e > v && is_ows(e[-1]))
        e--;
    f->name = s;
    f->nlen = (size_t)(colon - s);
    f->value = v;
    f->vlen = (size_t)(e - v);
    return true;
}

/* True when the comma-separated value holds tok, compared case-insensitively; each
 * element is cut at ';' so extension parameters do not hide the name. */
static bool
list_has(const uint8_t *v, size_t n, const char *tok)
{
    const uint8_t *end = v + n;
    while (v < end) {
        const uint8_t *comma = memchr(v, ',', (size_t)(end - v));
        const uint8_t *ee = comma ? comma : end;
        const uint8_t *semi = memchr(v, ';', (size_t)(ee - v));
        const uint8_t *te = semi ? semi : ee;
        while (v < te && is_ows(*v))
            v++;
        while (te > v && is_ows(te[-1]))
            te--;
        if (ieq(v, (size_t)(te - v), tok))
            return true;
        v = comma ? comma + 1 : end;
    }
    return false;
}

/* The two fields both sides of an upgrade must carry: "Upgrade: websocket" and
 * "Connection: upgrade" (each may list other tokens too). Records what f says of them;
 * false when f is neither. */
static bool
upgrade_field(const field *f, bool *upgrade, bool *connection)
{
    if (ieq(f->name, f->nlen, "Upgrade"))
        *upgrade |= list_has(f->value, f->vlen, "websocket");
    else if (ieq(f->name, f->nlen, "Connection"))
        *connection |= list_has(f->value, f->vlen, "upgrade");
    else
        return false;
    return true;
}

static bool
is_b64(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* 4.1: the key is the base64 of 16 bytes, which is 22 symbols and "==". */
static bool
is_key16(const uint8_t *v, size_t n)
{
    if (n != 24 || v[22] != '=' || v[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(v[i]))
            return false;
    return true;
}

ssize_t
atoll__http_upgrade_parse(const uint8_t *p, size_t n, atoll__http_upgrade *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return 0;
    /* A non-GET fails at once rather than after a head we would refuse anyway. */
    if (memcmp(p, "GET ", n < 4 ? n : 4) != 0)
        return ATOLL_EPROTO;
    ssize_t h = head_end(p, n);
    if (h <= 0)
        return h;

    const uint8_t *cur = p, *end = p + h - 2;
    span l;
    if (!next_line(&cur, end, &l)) /* head_end saw a start line; for the compiler */
        return ATOLL_EPROTO;
    /* "GET " target " HTTP/1.1": the target is any non-empty run of visible bytes */
    static const char version[] = " HTTP/1.1";
    size_t vlen = sizeof version - 1;
    if ((size_t)(l.e - l.s) < 4 + 1 + vlen || memcmp(l.e - vlen, version, vlen) != 0)
        return ATOLL_EPROTO;
    for (const uint8_t *q = l.s + 4; q < l.e - vlen; q++)
        if (*q <= ' ')
            return ATOLL_EPROTO;

    bool upgrade = false, connection = false, version13 = false, other_version = false;
    int keys = 0;
    field f;
    while (next_line(&cur, end, &l)) {
        if (!split_field(l.s, l.e, &f))
            return ATOLL_EPROTO;
        if (upgrade_field(&f, &upgrade, &connection))
            continue;
        if (ieq(f.name, f.nlen, "Sec-WebSocket-Version")) {
            if (f.vlen == 2 && memcmp(f.value, "13", 2) == 0)
                version13 = true;
            else
                other_version = true;
        } else if (ieq(f.name, f.nlen, "Sec-WebSocket-Key")) {
            if (++keys > 1 || !is_key16(f.value, f.vlen))
                return ATOLL_EPROTO;
            memcpy(out->key, f.value, f.vlen);
            out->key[f.vlen] = '\0';
        } else if (ieq(f.name, f.nlen, "Sec-WebSocket-Extensions")) {
            out->deflate_offered |= list_has(f.value, f.vlen, "permessage-deflate");
        }
    }
    if (!upgrade || !connection || !version13 || other_version || keys != 1)
        return ATOLL_EPROTO;
    return h;
}

void
atoll__ws_accept_key(const char *key, char out[29])
{
    /* Keys are 24 characters; a longer one cannot be valid and gets an empty answer,
     * which matches no Sec-WebSocket-Accept. */
    uint8_t text[64 + sizeof WS_GUID];
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    size_t klen = strlen(key);
    out[0] = '\0';
    if (klen > 64)
        return;
    memcpy(text, key, klen);
    memcpy(text + klen, WS_GUID, sizeof WS_GUID - 1);
    if (!EVP_Digest(text, klen + sizeof WS_GUID - 1, md, &mdlen, EVP_sha1(), NULL) ||
        mdlen != 20)
        return;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
}

static void
put_str(atoll__buf *b, const char *s)
{
    atoll__buf_append(b, s, strlen(s));
}

void
atoll__http_put_101(atoll__buf *b, const atoll__http_upgrade *req)
{
    char accept[29];
    atoll__ws_accept_key(req->key, accept);
    put_str(b, "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: ");
    put_str(b, accept);
    put_str(b, "\r\n\r\n");
}

static const char *
reason_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Error";
}

void
atoll__http_put_error(atoll__buf *b, int status, const char *text)
{
    if (text == NULL)
        text = reason_phrase(status);
    char head[256];
    int len = snprintf(head, sizeof head,
                       "HTTP/1.1 %03d %s\r\n"
                       "Connection: close\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: %zu\r\n"
                       "%s"
                       "\r\n",
                       status, reason_phrase(status), strlen(text),
                       /* 4.2.2: tell the client which version we speak */
                       status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "");
    atoll__buf_append(b, head, (size_t)len);
    put_str(b, text);
}

/* host and path come from the application, not from a peer. */
void
atoll__http_put_upgrade_request(atoll__buf *b, const char *host, const char *path,
                                const char *key)
{
    put_str(b, "GET ");
    put_str(b, path && *path ? path : "/");
    put_str(b, " HTTP/1.1\r\nHost: ");
    put_str(b, host);
    put_str(b, "\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: ");
    put_str(b, key);
    put_str(b, "\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "\r\n");
}

ssize_t
atoll__http_response_parse(const uint8_t *p, size_t n, const char *key)
{
    static const char status[] = "HTTP/1.1 101";
    size_t slen = sizeof status - 1;
    if (n == 0)
        return 0;
    if (memcmp(p, status, n < slen ? n : slen) != 0)
        return ATOLL_EPROTO;
    ssize_t h = head_end(p, n);
    if (h <= 0)
        return h;

    const uint8_t *cur = p, *end = p + h - 2;
    span l;
    if (!next_line(&cur, end, &l)) /* head_end saw a start line; for the compiler */
        return ATOLL_EPROTO;
    if ((size_t)(l.e - l.s) < slen || ((size_t)(l.e - l.s) > slen && l.s[slen] != ' '))
        return ATOLL_EPROTO;

    char accept[29];
    atoll__ws_accept_key(key, accept);
    bool upgrade = false, connection = false;
    int accepts = 0;
    field f;
    while (next_line(&cur, end, &l)) {
        if (!split_field(l.s, l.e, &f))
            return ATOLL_EPROTO;
        if (upgrade_field(&f, &upgrade, &connection))
            continue;
        if (ieq(f.name, f.nlen, "Sec-WebSocket-Accept")) {
            if (++accepts > 1 || accept[0] == '\0' || f.vlen != 28 ||
                memcmp(f.value, accept, 28) != 0)
                return ATOLL_EPROTO;
        } else if (ieq(f.name, f.nlen, "Sec-WebSocket-Extensions") ||
                   ieq(f.name, f.nlen, "Sec-WebSocket-Protocol")) {
            /* 4.1: we asked for neither, so a server that picks one is not talking
             * to us */
            if (f.vlen != 0)
                return ATOLL_EPROTO;
        }
    }
    if (!upgrade || !connection || accepts != 1)
        return ATOLL_EPROTO;
    return h;
}

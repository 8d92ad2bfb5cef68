/* fuzz_package.c -- libFuzzer target: the package layer as the connection reads it.
 *
 * A TCP read can end anywhere, so the parser must give the same packages and the same
 * verdict whether the stream arrives whole or in pieces. The input is
 *   byte 0  the body limit: 0..239 as is (small, so ELIMIT is reached), 240.. the default
 *   byte 1  seed of the chunk sizes
 *   rest    the stream
 * The stream is parsed once whole and once fed in chunks, each chunk's unconsumed window
 * copied into an exact-size allocation so a read past the received bytes is caught;
 * both runs must agree package by package. DATA bodies go through atoll__msg_decode.
 */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

typedef struct {
    int type;
    uint32_t len;
} seen_pkg;

/* Checks one parsed package and decodes a DATA body, checking what the decoder claims. */
static void
check_package(const uint8_t *p, size_t n, ssize_t r, const atoll__pkg *pkg, uint32_t max_body)
{
    CHECK(r >= ATOLL_PKG_HEADER_LEN && (size_t)r <= n);
    CHECK(pkg->type >= ATOLL_PKG_HANDSHAKE && pkg->type <= ATOLL_PKG_KICK);
    CHECK(pkg->type == p[0]);
    CHECK(pkg->len <= max_body && (size_t)r == ATOLL_PKG_HEADER_LEN + pkg->len);
    CHECK(pkg->len == 0 ? pkg->body == NULL : pkg->body == p + ATOLL_PKG_HEADER_LEN);
    if (pkg->type != ATOLL_PKG_DATA)
        return;
    atoll__msg m;
    int rc = atoll__msg_decode(pkg->body, pkg->len, &m);
    CHECK(rc == ATOLL_OK || rc == ATOLL_EPROTO || rc == ATOLL_EUTF8);
    if (rc != ATOLL_OK)
        return;
    const uint8_t *end = pkg->body + pkg->len;
    CHECK(m.type >= ATOLL_MSG_REQUEST && m.type <= ATOLL_MSG_PUSH);
    CHECK(m.body >= pkg->body + 1 && m.body + m.body_len == end);
    if (m.type == ATOLL_MSG_NOTIFY || m.type == ATOLL_MSG_PUSH)
        CHECK(m.id == 0);
    if (m.type == ATOLL_MSG_RESPONSE)
        CHECK(!m.compressed && m.route_len == 0);
    if (m.type != ATOLL_MSG_RESPONSE && !m.compressed) {
        const uint8_t *route = (const uint8_t *)m.route;
        CHECK(route > pkg->body && route + m.route_len == m.body);
        CHECK(atoll__utf8_valid(route, m.route_len));
    }
}

static uint32_t
next_rand(uint32_t *s)
{
    /* xorshift32: deterministic, so a crash replays */
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max_body = data[0] < 240 ? data[0] : ATOLL_PKG_BODY_DEFAULT_MAX;
    uint32_t seed = 0x9e3779b9u ^ data[1] ^ ((uint32_t)size << 8);
    size_t max_chunk = 1 + (data[1] & 31);
    const uint8_t *stream = data + 2;
    size_t n = size - 2;

    /* whole */
    seen_pkg *seen = malloc((n / ATOLL_PKG_HEADER_LEN + 1) * sizeof *seen);
    size_t count = 0, off = 0;
    ssize_t r;
    atoll__pkg pkg;
    while ((r = atoll__pkg_parse(stream + off, n - off, max_body, &pkg)) > 0) {
        check_package(stream + off, n - off, r, &pkg, max_body);
        seen[count++] = (seen_pkg){pkg.type, pkg.len};
        off += (size_t)r;
    }
    CHECK(r == 0 || r == ATOLL_EPROTO || r == ATOLL_ELIMIT);
    ssize_t verdict = r;
    size_t end_off = off;
    if (r == 0)
        CHECK(n - off < ATOLL_PKG_HEADER_LEN ||
              n - off < ATOLL_PKG_HEADER_LEN + (((size_t)stream[off + 1] << 16) |
                                                ((size_t)stream[off + 2] << 8) | stream[off + 3]));

    /* in chunks: [start, avail) is what has been received and not consumed */
    size_t start = 0, avail = 0, k = 0;
    for (;;) {
        size_t chunk = 1 + next_rand(&seed) % max_chunk;
        avail = n - avail < chunk ? n : avail + chunk;
        size_t wlen = avail - start, woff = 0;
        uint8_t *win = malloc(wlen ? wlen : 1);
        memcpy(win, stream + start, wlen);
        while ((r = atoll__pkg_parse(win + woff, wlen - woff, max_body, &pkg)) > 0) {
            check_package(win + woff, wlen - woff, r, &pkg, max_body);
            CHECK(k < count && seen[k].type == pkg.type && seen[k].len == pkg.len);
            k++;
            woff += (size_t)r;
        }
        free(win);
        start += woff;
        if (r < 0 || avail == n)
            break;
    }
    CHECK(r == verdict);
    CHECK(k == count && start == end_off);
    free(seen);
    return 0;
}

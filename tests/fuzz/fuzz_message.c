/* fuzz_message.c -- libFuzzer target: the message layer (the body of a DATA package).
 *
 * The input is one message. When atoll__msg_decode accepts it, the fields are checked
 * against the input, re-encoded with the matching atoll__msg_put_* and decoded again:
 * every field must survive. The re-encoding is byte-identical to the input except where
 * the encoder is canonical and the input was not: the "gzip" flag bit 0x10 (tolerated,
 * never written), a varint id with redundant groups, a compressed route with code 0
 * (the encoder treats code 0 as "not compressed").
 */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

static bool
same_bytes(const void *a, size_t an, const void *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    atoll__msg m;
    int rc = atoll__msg_decode(data, size, &m);
    CHECK(rc == ATOLL_OK || rc == ATOLL_EPROTO || rc == ATOLL_EUTF8);
    if (rc != ATOLL_OK)
        return 0;

    /* what the decoder claims about the input */
    const uint8_t *end = data + size;
    int type = (data[0] >> 1) & 7;
    CHECK(m.type == type && type <= ATOLL_MSG_PUSH);
    CHECK(m.compressed == (data[0] & 1));
    CHECK(m.body >= data + 1 && m.body <= end && m.body + m.body_len == end);
    bool has_id = type == ATOLL_MSG_REQUEST || type == ATOLL_MSG_RESPONSE;
    if (!has_id)
        CHECK(m.id == 0);
    const uint8_t *id_end = data + 1; /* where the id ends and the route begins */
    if (type == ATOLL_MSG_RESPONSE) {
        CHECK(!m.compressed && m.route_len == 0 && m.route_code == 0);
        id_end = m.body;
    } else if (m.compressed) {
        CHECK(m.route_len == 0);
        id_end = m.body - 2;
        CHECK(m.route_code == ((id_end[0] << 8) | id_end[1]));
    } else {
        CHECK(m.route != NULL && (const uint8_t *)m.route + m.route_len == m.body);
        id_end = (const uint8_t *)m.route - 1;
        CHECK(*id_end == m.route_len);
        CHECK(atoll__utf8_valid((const uint8_t *)m.route, m.route_len));
    }
    size_t id_len = (size_t)(id_end - (data + 1));
    CHECK(has_id ? id_len >= 1 && id_len <= ATOLL_MSG_ID_MAX_BYTES : id_len == 0);

    /* re-encode */
    atoll__buf b = ATOLL__BUF_INIT;
    if (m.type == ATOLL_MSG_REQUEST)
        atoll__msg_put_request(&b, m.id, m.route, m.route_len, m.route_code, m.body, m.body_len);
    else if (m.type == ATOLL_MSG_NOTIFY)
        atoll__msg_put_notify(&b, m.route, m.route_len, m.route_code, m.body, m.body_len);
    else if (m.type == ATOLL_MSG_RESPONSE)
        atoll__msg_put_response(&b, m.id, m.body, m.body_len);
    else
        atoll__msg_put_push(&b, m.route, m.route_len, m.route_code, m.body, m.body_len);
    atoll__pkg pkg;
    ssize_t r = atoll__pkg_parse(atoll__buf_data(&b), b.len, ATOLL_PKG_BODY_CEILING, &pkg);
    CHECK(r > 0 && (size_t)r == b.len && pkg.type == ATOLL_PKG_DATA);
    CHECK((atoll__buf_data(&b)[ATOLL_PKG_HEADER_LEN] & 0x10) == 0); /* never written */

    atoll__msg m2;
    CHECK(atoll__msg_decode(pkg.body, pkg.len, &m2) == ATOLL_OK);
    bool code0 = m.compressed && m.route_code == 0;
    CHECK(m2.type == m.type && m2.id == m.id && m2.route_code == m.route_code);
    CHECK(m2.compressed == (m.compressed && !code0));
    CHECK(same_bytes(m2.route, m2.route_len, m.route, m.route_len));
    CHECK(same_bytes(m2.body, m2.body_len, m.body, m.body_len));

    /* byte-identical when the input was already canonical */
    uint8_t v[5];
    bool canonical_id = !has_id || id_len == atoll__varint_put(v, m.id);
    if (!(data[0] & 0x10) && canonical_id && !code0)
        CHECK(same_bytes(pkg.body, pkg.len, data, size));
    else
        CHECK(pkg.len <= size);
    atoll__buf_fini(&b);
    return 0;
}

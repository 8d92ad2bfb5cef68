/* fuzz_wire.c -- libFuzzer target: the wire decoder of mail between nodes
 * (atoll__wire_decode, src/node/wire.c), which reads what another node sends.
 *
 * The input is a link's byte stream: frames are decoded one after another, with the
 * limits of a node of 4 workers and 3 area types, until the input is used up or a frame
 * is incomplete or refused. Beyond "never crashes, never leaks":
 *   - the answer follows the contract: 0 only when the frame is not whole (fewer than 4
 *     bytes, or fewer than its length says), ATOLL_ELIMIT exactly when the length is
 *     over ATOLL_WIRE_FRAME_MAX, otherwise ATOLL_EPROTO, and no mail on any of these;
 *     a decoded frame uses exactly 4 + its length bytes;
 *   - a decoded mail is within the limits: a kind that crosses nodes (never STOP or
 *     LINK), worker and area type indexes below the node's, uid, reason and area id
 *     NUL-free and no longer than their maximums, a uid not empty;
 *   - canonical round trip: the mail encodes, that encoding decodes whole into a mail
 *     with the same fields, and that one encodes to the very same bytes.
 *
 * MOVE_IN carries a payload that a registered codec decodes (the area runtime's player
 * in a node). The target registers its own codec, a NUL-free string, so MOVE_IN frames
 * are exercised without the area runtime. wire.c belongs to the runtime library, so
 * this target links `atoll` as well (tests/CMakeLists.txt).
 */
#include "node/wire.h"
#include "wire_payload.h"

#include <atoll/atoll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const atoll__wire_limits LIM = {.nworkers = 4, .ntypes = 3};

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes the whole of b from an exact-size copy (a read past its end is caught). */
static atoll__mail *
decode_all(const atoll__buf *b)
{
    uint8_t *copy = malloc(b->len);
    CHECK(copy != NULL);
    memcpy(copy, atoll__buf_data(b), b->len);
    atoll__mail *m;
    ssize_t k = atoll__wire_decode(copy, b->len, &LIM, &m);
    if (k != (ssize_t)b->len)
        fprintf(stderr, "re-decode of %zu bytes gave %zd\n", b->len, k);
    CHECK(k == (ssize_t)b->len && m != NULL);
    free(copy);
    return m;
}

static void
check_limits(const atoll__mail *m)
{
    CHECK(m->type > ATOLL_MAIL_STOP && m->type < ATOLL_MAIL_KINDS && m->type != ATOLL_MAIL_LINK);
    /* A node's own notices never come from a peer. */
    CHECK(m->type != ATOLL_MAIL_DOC_LOADED && m->type != ATOLL_MAIL_DOC_COMMITTED &&
          m->type != ATOLL_MAIL_NODE_DOWN);
    /* A worker of this node exists; another node's is that node's to check. */
    CHECK(m->at.node != LIM.node_id || m->at.worker < LIM.nworkers);
    CHECK(m->at_old.node != LIM.node_id || m->at_old.worker < LIM.nworkers);
    CHECK(m->type_index >= 0 && m->type_index < LIM.ntypes);
    if (m->uid != NULL)
        CHECK(strlen(m->uid) >= 1 && strlen(m->uid) <= ATOLL_UID_MAX);
    CHECK(memchr(m->reason, '\0', ATOLL_WIRE_REASON_MAX + 1) != NULL);
    CHECK(memchr(m->from, '\0', ATOLL_AREA_ID_MAX + 1) != NULL);
    CHECK(m->nsessions <= ATOLL_WIRE_SESSIONS_MAX);
    CHECK(m->nsessions == 0 || m->sessions != NULL);
    CHECK(m->shared == NULL || atomic_load(&m->shared->refs) == 1);
    CHECK(m->payload == NULL || m->type == ATOLL_MAIL_AREA_MOVE_IN ||
          m->type == ATOLL_MAIL_AREA_MIGRATE);
}

/* b was decoded from the encoding of a: every field the encoding carries is the same
 * (worker_old travels only with area_old). */
static void
check_same(const atoll__mail *a, const atoll__mail *b)
{
    CHECK(a->type == b->type);
    CHECK(a->session.v == b->session.v);
    CHECK(a->request_id == b->request_id);
    CHECK(a->reply == b->reply && a->forwarded == b->forwarded);
    CHECK(a->msg_type == b->msg_type);
    CHECK(a->route == b->route);
    CHECK(a->status == b->status);
    CHECK(a->at.worker == b->at.worker && a->at.node == b->at.node);
    CHECK(a->area == b->area);
    CHECK(a->area_old == b->area_old);
    CHECK(a->area_old == 0 ||
          (a->at_old.worker == b->at_old.worker && a->at_old.node == b->at_old.node));
    CHECK(a->call_id == b->call_id);
    CHECK(a->type_index == b->type_index);
    CHECK((a->uid == NULL) == (b->uid == NULL));
    CHECK(a->uid == NULL || strcmp(a->uid, b->uid) == 0);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(strcmp(a->from, b->from) == 0);
    CHECK((a->value == NULL) == (b->value == NULL));
    CHECK(a->value == NULL || atoll_equal(a->value, b->value));
    CHECK((a->shared == NULL) == (b->shared == NULL));
    CHECK(a->shared == NULL || (a->shared->len == b->shared->len &&
                                memcmp(a->shared->data, b->shared->data, a->shared->len) == 0));
    CHECK(a->nsessions == b->nsessions);
    CHECK(a->nsessions == 0 ||
          memcmp(a->sessions, b->sessions, a->nsessions * sizeof *a->sessions) == 0);
    CHECK(a->len == b->len);
    CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
    CHECK((a->payload == NULL) == (b->payload == NULL));
    CHECK(a->payload == NULL || strcmp(a->payload, b->payload) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered) {
        atoll__log_threshold = ATOLL_LOG_ERROR;
        wire_payload_register();
        registered = 1;
    }
    size_t off = 0;
    while (off < size) {
        const uint8_t *p = data + off;
        size_t left = size - off;
        atoll__mail *m = (atoll__mail *)1; /* the decoder sets it on every path */
        ssize_t k = atoll__wire_decode(p, left, &LIM, &m);
        if (k <= 0) {
            CHECK(m == NULL);
            if (k == 0)
                CHECK(left < 4 || (le32(p) <= ATOLL_WIRE_FRAME_MAX && 4 + (size_t)le32(p) > left));
            else if (k == ATOLL_ELIMIT)
                CHECK(le32(p) > ATOLL_WIRE_FRAME_MAX);
            else
                CHECK(k == ATOLL_EPROTO && 4 + (size_t)le32(p) <= left);
            break;
        }
        CHECK(m != NULL && left >= 4 && (size_t)k == 4 + (size_t)le32(p) && k >= 10);
        check_limits(m);

        atoll__buf e1 = ATOLL__BUF_INIT, e2 = ATOLL__BUF_INIT;
        int rc = atoll__wire_encode(m, &e1);
        if (rc != ATOLL_OK)
            fprintf(stderr, "decoded kind %d does not encode: %s\n", (int)m->type,
                    atoll_err_name(rc));
        CHECK(rc == ATOLL_OK);
        atoll__mail *m2 = decode_all(&e1);
        check_same(m, m2);
        CHECK(atoll__wire_encode(m2, &e2) == ATOLL_OK);
        CHECK(e2.len == e1.len && memcmp(atoll__buf_data(&e1), atoll__buf_data(&e2), e1.len) == 0);
        /* Nothing longer than what came in, but for a value's JSON rewritten. */
        if (m->value == NULL)
            CHECK(e1.len <= (size_t)k);

        atoll__buf_fini(&e1);
        atoll__buf_fini(&e2);
        atoll__mail_free(m2);
        atoll__mail_free(m);
        off += (size_t)k;
    }
    return 0;
}

/* wire_payload.h -- a payload codec for the tests of the wire encoding (wire_test,
 * fuzz_wire): the payload is a NUL-free string, so MOVE_IN and MIGRATE frames are
 * exercised without the area runtime, whose codecs carry a player and an area.
 *
 * The kinds' table is the process's: a test (or the fuzz target) calls
 * wire_payload_register() before it decodes MOVE_IN frames.
 */
#ifndef ATOLL_TEST_WIRE_PAYLOAD_H
#define ATOLL_TEST_WIRE_PAYLOAD_H

#include "node/wire.h"

#include <string.h>

static int
wire_payload_encode(const atoll__mail *m, atoll__buf *out)
{
    const char *s = m->payload;
    atoll__buf_append(out, s, strlen(s));
    return ATOLL_OK;
}

static int
wire_payload_decode(atoll__mail *m, const uint8_t *p, size_t n)
{
    if (n > 0 && memchr(p, '\0', n) != NULL)
        return ATOLL_EPROTO;
    m->payload = atoll__strndup((const char *)p, n);
    return ATOLL_OK;
}

static void
wire_payload_fini(atoll__mail *m)
{
    atoll__free(m->payload);
    m->payload = NULL;
}

static inline void
wire_payload_register(void)
{
    atoll__mail_register(ATOLL_MAIL_AREA_MOVE_IN, NULL, wire_payload_fini);
    atoll__mail_register_codec(ATOLL_MAIL_AREA_MOVE_IN, wire_payload_encode, wire_payload_decode);
    atoll__mail_register(ATOLL_MAIL_AREA_MIGRATE, NULL, wire_payload_fini);
    atoll__mail_register_codec(ATOLL_MAIL_AREA_MIGRATE, wire_payload_encode, wire_payload_decode);
}

#endif /* ATOLL_TEST_WIRE_PAYLOAD_H */

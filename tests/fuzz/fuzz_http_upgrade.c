/* fuzz_http_upgrade.c -- libFuzzer target over the HTTP upgrade parsers
 * (atoll__http_upgrade_parse and atoll__http_response_parse, src/net/http_upgrade.c).
 *
 * Each input is parsed as a server's request head and as a client's 101 response.
 * Beyond "no crash, no undefined behaviour, no read past n", results must be
 * consistent with a stream that grows: a complete head parses the same when cut at its
 * end, any shorter cut of it asks for more, and a cut that already has a verdict has
 * the same verdict as the whole input. An accepted request must also round-trip: the
 * 101 we write for it passes the client's check with the request's key.
 */
#include "net/ws.h"

#include <stdlib.h>

#include "fuzz.h"

static const char KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

static ssize_t
request(const uint8_t *p, size_t n)
{
    atoll__http_upgrade u;
    return atoll__http_upgrade_parse(p, n, &u);
}

static ssize_t
response(const uint8_t *p, size_t n)
{
    return atoll__http_response_parse(p, n, KEY);
}

/* The stream properties, for one parser. */
static void
check_growth(ssize_t (*parse)(const uint8_t *, size_t), const uint8_t *p, size_t n,
             ssize_t whole)
{
    CHECK(whole == 0 || whole == ATOLL_EPROTO || whole == ATOLL_ELIMIT ||
          (whole > 0 && (size_t)whole <= n && whole <= (ssize_t)ATOLL_HTTP_HEAD_MAX));
    if (whole > 0) {
        CHECK(parse(p, (size_t)whole) == whole);
        CHECK(parse(p, (size_t)whole - 1) == 0);
        CHECK(parse(p, (size_t)whole / 2) == 0);
    }
    ssize_t half = parse(p, n / 2);
    CHECK(half == 0 || half == whole);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy of exactly size bytes, so ASan sees any read past the end */
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);

    atoll__http_upgrade u;
    ssize_t h = atoll__http_upgrade_parse(p, size, &u);
    check_growth(request, p, size, h);
    if (h > 0) {
        CHECK(atoll__http_looks_like(p, size));
        CHECK(strlen(u.key) == 24);
        atoll__buf b = ATOLL__BUF_INIT;
        atoll__http_put_101(&b, &u);
        CHECK(atoll__http_response_parse(atoll__buf_data(&b), b.len, u.key) == (ssize_t)b.len);
        atoll__buf_fini(&b);
    }
    check_growth(response, p, size, response(p, size));
    (void)atoll__http_looks_like(p, size);
    free(p);
    return 0;
}

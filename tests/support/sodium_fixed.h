/* sodium_fixed.h -- libsodium's randomness made repeatable, for link_test and fuzz_link.
 *
 * The link codec draws its X25519 keys and secretstream nonces from randombytes_buf.
 * Drawn from here instead, a fuzz input runs the same way every time (an input that
 * crashed once crashes again when replayed or minimized), and a test can find the
 * secret keys a handshake used, to check the session keys against the key schedule
 * written in link_codec.c's top comment. Each draw is ChaCha20 output
 * (randombytes_buf_deterministic) under a seed made from a counter; sodium_fixed_reset
 * sets the counter back to 0. The draws of exactly 32 bytes (secret keys) are kept, the
 * first SODIUM_FIXED_KEEP of them since the reset.
 *
 * Call sodium_fixed_use() before anything of libsodium runs in the process: libsodium
 * reads its implementation of randomness at sodium_init.
 */
#ifndef ATOLL_TEST_SODIUM_FIXED_H
#define ATOLL_TEST_SODIUM_FIXED_H

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SODIUM_FIXED_KEEP 16

static uint64_t sodium_fixed_draws;
static uint8_t sodium_fixed_kept[SODIUM_FIXED_KEEP][32];
static size_t sodium_fixed_nkept;

static void
sodium_fixed_buf(void *const buf, const size_t size)
{
    uint8_t seed[randombytes_SEEDBYTES] = {'f', 'i', 'x', 'e', 'd'};
    memcpy(seed + 8, &sodium_fixed_draws, sizeof sodium_fixed_draws);
    sodium_fixed_draws++;
    randombytes_buf_deterministic(buf, size, seed);
    if (size == 32 && sodium_fixed_nkept < SODIUM_FIXED_KEEP)
        memcpy(sodium_fixed_kept[sodium_fixed_nkept++], buf, 32);
}

static uint32_t
sodium_fixed_random(void)
{
    uint32_t v;
    sodium_fixed_buf(&v, sizeof v);
    return v;
}

static const char *
sodium_fixed_name(void)
{
    return "atoll-tests-fixed";
}

static inline void
sodium_fixed_reset(void)
{
    sodium_fixed_draws = 0;
    sodium_fixed_nkept = 0;
}

static inline void
sodium_fixed_use(void)
{
    static randombytes_implementation impl = {
        .implementation_name = sodium_fixed_name,
        .random = sodium_fixed_random,
        .buf = sodium_fixed_buf,
    };
    if (randombytes_set_implementation(&impl) != 0 || sodium_init() < 0)
        abort();
    sodium_fixed_reset();
}

#endif /* ATOLL_TEST_SODIUM_FIXED_H */

/* wheel.h -- a hashed timing wheel for many coarse deadlines (one per connection).
 *
 * N slots of `tick` milliseconds each; an entry due in k ticks goes into slot
 * (pos + k) % N. Adding, removing and moving an entry is O(1) with no allocation (the
 * entry is intrusive), which is why connections use it instead of a libuv timer each:
 * a uv_timer_t costs 152 bytes and a heap operation per re-arm, an entry 24 bytes and
 * a list splice. An entry due past the horizon (N - 1 ticks) is put in the last slot and
 * fires early; the owner sees the deadline has not passed and adds it again.
 *
 * Entries fire in slot order, at most one tick late. Entries added while a slot fires
 * go to a later slot, never the one being run.
 *
 * Invariants: an entry is in at most one slot (next == NULL when it is in none); only
 * the owning thread touches the wheel.
 */
#ifndef ATOLL_WHEEL_H
#define ATOLL_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct atoll__wheel_entry {
    struct atoll__wheel_entry *next, *prev;
    uint64_t slot_ms; /* when its slot fires */
} atoll__wheel_entry;

typedef struct atoll__wheel {
    atoll__wheel_entry *slots; /* sentinels of circular lists */
    uint32_t nslots;
    uint32_t pos;              /* slot of time now_ms */
    uint64_t tick_ms;
    uint64_t now_ms;           /* time of slot pos */
    size_t count;
} atoll__wheel;

typedef void (*atoll__wheel_cb)(atoll__wheel_entry *e, uint64_t now_ms, void *arg);

void atoll__wheel_init(atoll__wheel *w, uint32_t nslots, uint64_t tick_ms, uint64_t now_ms);
void atoll__wheel_fini(atoll__wheel *w);
/* Puts e (not in the wheel) in the slot that fires at or just after due_ms. */
void atoll__wheel_add(atoll__wheel *w, atoll__wheel_entry *e, uint64_t due_ms);
/* Takes e out of its slot; a no-op when it is in none. */
void atoll__wheel_remove(atoll__wheel *w, atoll__wheel_entry *e);
static inline bool
atoll__wheel_linked(const atoll__wheel_entry *e)
{
    return e->next != NULL;
}
/* Moves the wheel to now_ms, calling cb for each entry of every slot passed; the entry
 * is out of the wheel when cb runs and cb may add it again or free it. */
void atoll__wheel_advance(atoll__wheel *w, uint64_t now_ms, atoll__wheel_cb cb, void *arg);

#endif /* ATOLL_WHEEL_H */

/* wheel.c -- the hashed timing wheel of wheel.h. */
#include "wheel.h"
#include "core.h"

void
atoll__wheel_init(atoll__wheel *w, uint32_t nslots, uint64_t tick_ms, uint64_t now_ms)
{
    w->slots = atoll__calloc(nslots, sizeof *w->slots);
    for (uint32_t i = 0; i < nslots; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    w->nslots = nslots;
    w->pos = 0;
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->now_ms = now_ms;
    w->count = 0;
}

void
atoll__wheel_fini(atoll__wheel *w)
{
    atoll__free(w->slots);
    w->slots = NULL;
}

void
atoll__wheel_add(atoll__wheel *w, atoll__wheel_entry *e, uint64_t due_ms)
{
    uint64_t ticks = due_ms > w->now_ms ? (due_ms - w->now_ms + w->tick_ms - 1) / w->tick_ms : 1;
    if (ticks < 1)
        ticks = 1;
    if (ticks > w->nslots - 1)
        ticks = w->nslots - 1;
    atoll__wheel_entry *head = &w->slots[(w->pos + ticks) % w->nslots];
    e->slot_ms = w->now_ms + ticks * w->tick_ms;
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
    w->count++;
}

void
atoll__wheel_remove(atoll__wheel *w, atoll__wheel_entry *e)
{
    if (e->next == NULL)
        return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->next = e->prev = NULL;
    w->count--;
}

void
atoll__wheel_advance(atoll__wheel *w, uint64_t now_ms, atoll__wheel_cb cb, void *arg)
{
    while (w->now_ms + w->tick_ms <= now_ms) {
        w->pos = (w->pos + 1) % w->nslots;
        w->now_ms += w->tick_ms;
        atoll__wheel_entry *head = &w->slots[w->pos];
        /* Detach the whole slot first: entries added by the callbacks land in later
         * slots (at least one tick ahead), never in this list. */
        atoll__wheel_entry list = {head->next, head->prev, 0};
        if (list.next == head)
            continue;
        list.next->prev = &list;
        list.prev->next = &list;
        head->next = head->prev = head;
        while (list.next != &list) {
            atoll__wheel_entry *e = list.next;
            list.next = e->next;
            e->next->prev = &list;
            e->next = e->prev = NULL;
            w->count--;
            cb(e, w->now_ms, arg);
        }
    }
}

/* failover.c -- what a worker does when another node of its cluster dies (NODE_DOWN,
 * from the cluster's thread once the node's lease in the registry has ended).
 *
 * Three things can point at a dead node from here:
 *   - sessions of this gate whose player's area ran there: they enter that area again,
 *     by its id, without their client noticing ("rejoin"). The coordinator gives the
 *     dead node's areas new owners (src/cluster), which load their state from the
 *     store; the entry goes through the directory like any other, so it finds the area
 *     wherever it comes back, and is tried again every REJOIN_RETRY_MS while the
 *     directory still names the dead node (the coordinator has not reached that area
 *     yet), and at once when the directory says the area's entry changed (its
 *     invalidation), for at most REJOIN_GIVE_UP_MS. Messages the client sends meanwhile wait, as
 *     during any entry, and go to the area once it is back, in order.
 *   - players in this worker's areas whose sessions were on the dead node (a gate that
 *     died): they are dropped as if their connection had closed, so they wait for
 *     gate.resume on another gate (session.resume_ms) or leave.
 *   - entries of this worker's cache that name the dead node: forgotten, so that the
 *     next lookup asks the directory.
 * Requests that were on their way to the dead node when it died are sent again by the
 * session once the area is back, and run once there (exact.c).
 *
 * NODE_DOWN naming this node itself means it was declared dead while it was away: it
 * drops every area it runs (below) and rejoins empty.
 */
#include "area.h"

#include <stdio.h>

#define REJOIN_RETRY_MS 100
#define REJOIN_GIVE_UP_MS 30000

/* A rejoining session's entry may fail (answered: the directory still names the dead
 * node) or be lost (forwarded to the dead node before anybody knew it was dead): a
 * failure is tried again after REJOIN_RETRY_MS, an entry unanswered for REJOIN_SILENT_MS
 * is sent again (an entry that arrives twice takes the same session twice: nothing
 * changes). */
#define REJOIN_SILENT_MS 500

/* How long a node declared dead while away remembers the areas it dropped: requests its
 * gates sent before the failover and that reach it late are dropped without an answer
 * (their gates send them again to the new owners) for this long. Far more than a link's
 * backlog takes to drain. */
#define DROPPED_KEPT_MS 60000

/* The rejoining sessions of a worker, each once (w->areas->rejoins). */
typedef struct rejoin {
    atoll_session_id session;
} rejoin;

static void
rejoin_start(atoll__worker *w, atoll__session *s)
{
    ATOLL_LOG(ATOLL_LOG_DEBUG, "msg=\"entering an area again: its node died\" area=\"%s\"",
              s->area_id);
    if (!s->rejoining) {
        rejoin r = {s->id};
        atoll__buf_append(&w->areas->rejoins, &r, sizeof r);
    }
    s->rejoining = true;
    s->rejoin_since_ms = uv_now(&w->loop);
    s->rejoin_next_ms = 0;
    s->area = 0;
    s->entering = true; /* what the client sends now waits for the area */
    atoll__area_rejoin_tick(w);
}

void
atoll__area_rejoin(atoll__worker *w, atoll__session *s)
{
    if (s->area != 0 && s->area_id[0] != '\0' && s->conn.state != ATOLL_CONN_CLOSING)
        rejoin_start(w, s);
}

bool
atoll__area_rejoin_failed(atoll__worker *w, atoll__session *s)
{
    if (s == NULL || !s->rejoining)
        return false;
    if (uv_now(&w->loop) - s->rejoin_since_ms >= REJOIN_GIVE_UP_MS) {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"gave up entering an area again after its node died\" "
                  "area=\"%s\"", s->area_id);
        s->rejoining = false;
        return false; /* the entry fails as any other: the client is told */
    }
    s->rejoin_next_ms = uv_now(&w->loop) + REJOIN_RETRY_MS;
    return true;
}

void
atoll__area_rejoin_tick(atoll__worker *w)
{
    atoll__buf *b = &w->areas->rejoins;
    if (b->len == 0)
        return;
    uint64_t now = uv_now(&w->loop);
    rejoin *r = (rejoin *)atoll__buf_data(b);
    size_t n = b->len / sizeof *r, kept = 0;
    for (size_t i = 0; i < n; i++) {
        atoll__session *s = atoll__session_find(w, r[i].session);
        if (s == NULL || !s->rejoining || s->conn.state == ATOLL_CONN_CLOSING)
            continue; /* back in its area, or gone: dropped from the list */
        r[kept++] = r[i];
        if (now - s->rejoin_since_ms >= REJOIN_GIVE_UP_MS) {
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"gave up entering an area again after its node "
                      "died\" area=\"%s\"", s->area_id);
            s->rejoining = false;
            atoll__kick(s, "its area was lost with a node that failed");
            continue;
        }
        if (now >= s->rejoin_next_ms) {
            s->rejoin_next_ms = now + REJOIN_SILENT_MS;
            atoll__area_enter_again(s);
        }
    }
    /* An entry answered at once (a failure) may have changed nothing of the list: only
     * what was kept stays. */
    b->len = kept * sizeof *r;
}

void
atoll__area_rejoin_wake(atoll__worker *w, const char *id)
{
    atoll__buf *b = &w->areas->rejoins;
    rejoin *r = (rejoin *)atoll__buf_data(b);
    bool any = false;
    for (size_t i = 0; i < b->len / sizeof *r; i++) {
        atoll__session *s = atoll__session_find(w, r[i].session);
        if (s != NULL && s->rejoining && strcmp(s->area_id, id) == 0) {
            s->rejoin_next_ms = 0;
            any = true;
        }
    }
    if (any)
        atoll__area_rejoin_tick(w);
}

/* The players of this worker's areas whose sessions were on the dead node: dropped as
 * a closed connection drops them (a LEAVE that allows resuming), through the local
 * queue, so that each runs as that LEAVE would. */
static void
drop_players_of(atoll__worker *w, int dead)
{
    atoll__map *areas = &w->areas->by_num;
    for (size_t i = 0; i < areas->cap; i++) {
        if (areas->slots[i].key == 0)
            continue;
        atoll_area *a = areas->slots[i].value;
        for (atoll_player *p = a->first; p != NULL; p = p->next) {
            if (atoll__session_node(p->session) != dead || p->disconnected || p->leaving)
                continue;
            atoll__mail *l = atoll__mail_new(ATOLL_MAIL_AREA_LEAVE, 0);
            l->area = a->num;
            l->session = p->session;
            l->reply = true;
            atoll__send(w->node, w->index, l);
        }
    }
}

/* This node was declared dead while it was away (frozen past its lease, cut off): its
 * areas have new owners. It runs none of them any longer: each is closed as at a
 * shutdown (no player is kicked: they play on the new owners); what it writes on the
 * way out is refused by the store, the new owners having written with newer epochs. */
static void
drop_everything(atoll__worker *w)
{
    atoll__map *areas = &w->areas->by_num;
    size_t n = 0;
    atoll_area **list = atoll__calloc(areas->len + 1, sizeof *list);
    for (size_t i = 0; i < areas->cap; i++) {
        if (areas->slots[i].key != 0) {
            list[n++] = areas->slots[i].value;
            atoll__map_put(&w->areas->dropped_areas, areas->slots[i].key, (void *)1);
        }
    }
    w->areas->dropped_until_ms = uv_now(&w->loop) + DROPPED_KEPT_MS;
    for (size_t i = 0; i < n; i++)
        atoll__area_destroy_now(w, list[i], true);
    atoll__free(list);
}

void
atoll__area_node_down_mail(atoll__worker *w, atoll__mail *m)
{
    int dead = m->at.node;
    atoll__mail_free(m);
    if (dead == w->node->id) {
        drop_everything(w);
        atoll__send_remote_dropped(w);
        return;
    }
    atoll__where_forget_node(w, dead);
    drop_players_of(w, dead);
    atoll__migrate_node_down(w, dead);
    for (uint32_t slot = 0; slot < w->nslots; slot++) {
        atoll__session *s = w->slots[slot];
        /* Its area was there; or it moved from there (migrate.c) and what the session
         * sent there before the move's fence may have died with it. */
        if (s != NULL && s->area != 0 && (s->area_at.node == dead || s->fence_node == dead) &&
            s->area_id[0] != '\0' && s->conn.state != ATOLL_CONN_CLOSING) {
            s->fence_node = 0;
            rejoin_start(w, s);
        }
    }
}

bool
atoll__area_was_dropped(atoll__worker *w, uint64_t num)
{
    atoll__map *m = &w->areas->dropped_areas;
    if (m->len == 0)
        return false;
    if (uv_now(&w->loop) >= w->areas->dropped_until_ms) {
        atoll__map_fini(m);
        *m = (atoll__map){0};
        return false;
    }
    return atoll__map_get(m, num) != NULL;
}

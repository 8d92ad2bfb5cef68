/* cluster.c -- a node in a cluster: joining it, the cluster thread, the heartbeat that
 * keeps this node's lease and reads the registry of nodes, placement of new areas by
 * the nodes' measured load, and the coordinator (cluster_int.h has the design; the
 * links are link.c, Redis is redis.c).
 *
 * Load. Each heartbeat measures what this node carries: the CPU time its process used
 * over the last interval, in cores, plus its players (1 per 1000) and client messages
 * (1 per 10,000 a second), from the stats the area runtime publishes
 * (atoll_node_areas). Placement takes, among the area nodes whose loads are within
 * cluster.rebalance_min_load of the lowest (loads the coordinator calls even), the one
 * the area's id ranks first (remote_place).
 *
 * Coordinator. Nodes with the coordinator role race for a lease in Redis each
 * heartbeat; one holds it. The holder watches the registry: when a node it saw alive is
 * gone (its lease ran out: killed, frozen, cut off), it gives that node's areas new
 * owners, a bounded number per heartbeat (cluster.moves_per_cycle): each area's entry
 * is taken from the dead node by compare-and-set (its epoch must not have moved) and
 * the area is created on the least loaded live area node, which claims it with a new
 * epoch and loads its state from the store. A stale owner that comes back finds its
 * writes refused by the store (their epoch is older) and its entries gone.
 */
#include "cluster_int.h"

#include <atoll/atoll.h>
#include <jansson.h>
#include <stdio.h>
#include <time.h>

/* ---- the node's side (any thread) ------------------------------------------------------- */

static atoll__cluster *
cluster_of(atoll__node *n)
{
    return n->remote_data;
}

/* Queues pc for the cluster thread, and wakes it when the queue was empty. */
static void
inq_push(atoll__cluster *c, piece *pc)
{
    pthread_mutex_lock(&c->lock);
    bool was_empty = c->inq == NULL;
    if (c->inq_tail)
        c->inq_tail->next = pc;
    else
        c->inq = pc;
    c->inq_tail = pc;
    bool running = c->running;
    pthread_mutex_unlock(&c->lock);
    if (was_empty && running)
        uv_async_send(&c->wake);
}

static void
remote_post(atoll__node *n, int to, int from, const uint8_t *p, size_t len)
{
    atoll__cluster *c = cluster_of(n);
    if (to <= 0 || to > ATOLL_NODE_ID_MAX || to == c->id)
        return;
    piece *pc = atoll__malloc(sizeof *pc + len);
    pc->next = NULL;
    pc->to = to;
    pc->from = from;
    pc->deadline_ms = 0;
    pc->len = len;
    memcpy(pc->data, p, len);
    inq_push(c, pc);
}

static void
remote_bad_peer(atoll__node *n, int node)
{
    remote_post(n, node, ATOLL__PIECE_DROP, NULL, 0);
}

/* Behind everything the worker posted before: the cluster thread drops that, and sends
 * what comes after. */
static void
remote_dropped(atoll__node *n, int worker)
{
    atoll__cluster *c = cluster_of(n);
    piece *pc = atoll__calloc(1, sizeof *pc);
    pc->to = worker;
    pc->from = ATOLL__PIECE_DROPPED;
    inq_push(c, pc);
}

/* FNV-1a of the area's id, mixed with a node's id (0: the id alone). */
static uint32_t
id_hash(const char *id, int node)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ (uint32_t)node) * 16777619u;
    h ^= h >> 15;
    return h * 2246822519u;
}

static int
remote_place(atoll__node *n, const char *id, atoll__addr *out)
{
    atoll__cluster *c = cluster_of(n);
    pthread_mutex_lock(&c->lock);
    double least = 0;
    /* Loads closer than this are even (the rebalancer's rule too): an idle node's CPU
     * wanders by a tenth of a core, more while it starts, and a burst of new areas
     * would otherwise all go to whichever node read lowest at that beat. */
    double margin = c->cfg->rebalance_min_load;
    for (int i = 0; i < c->nplaceable; i++)
        if (i == 0 || c->placeable[i].load < least)
            least = c->placeable[i].load;
    /* Among the least loaded (within the margin), the one an id's hash with each node
     * ranks first (rendezvous hashing): every gate picks the same node for the same id
     * while the loads stay close, so a burst of entries into a new area sends them all
     * to one node, instead of each node claiming it and the fastest winning them all;
     * different ids spread by the hash. */
    int best = -1;
    uint32_t best_rank = 0;
    for (int i = 0; i < c->nplaceable; i++) {
        uint32_t rank = id_hash(id, c->placeable[i].node);
        if (c->placeable[i].load <= least + margin && (best < 0 || rank > best_rank)) {
            best = i;
            best_rank = rank;
        }
    }
    if (best >= 0) {
        struct place_entry *e = &c->placeable[best];
        uint32_t nw = (uint32_t)(e->nworkers > 0 ? e->nworkers : 1);
        *out = atoll__addr_make(e->node, (int)(id_hash(id, 0) % nw));
    }
    pthread_mutex_unlock(&c->lock);
    return best >= 0 ? ATOLL_OK : ATOLL_ENOENT;
}

static int
remote_worker_for(atoll__node *n, int node, const char *id, atoll__addr *out)
{
    atoll__cluster *c = cluster_of(n);
    int rc = ATOLL_ENOENT;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->nplaceable; i++) {
        if (c->placeable[i].node != node)
            continue;
        uint32_t nw = (uint32_t)(c->placeable[i].nworkers > 0 ? c->placeable[i].nworkers : 1);
        *out = atoll__addr_make(node, (int)(id_hash(id, 0) % nw));
        rc = ATOLL_OK;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static const atoll__remote_ops remote_ops = {
    .post = remote_post,
    .place = remote_place,
    .bad_peer = remote_bad_peer,
    .worker_for = remote_worker_for,
    .dropped = remote_dropped,
};

/* The directory's mail: DIR_ANSWER and DIR_INVALIDATE to workers of this node. */
static void
dir_post(void *ctx, atoll__addr to, atoll__mail *m)
{
    atoll__cluster *c = ctx;
    /* The thread that runs this ends (cluster_halt) before the workers are freed. */
    if (c->node == NULL) {
        atoll__mail_free(m);
        return;
    }
    atoll__send_to(c->node, to, m);
}

/* ---- load --------------------------------------------------------------------------------- */

atoll_area_stats *
atoll__areas_here(atoll_node *node, size_t *n)
{
    size_t cap = 256;
    atoll_area_stats *st = NULL;
    for (;;) {
        st = atoll__realloc(st, cap * sizeof *st);
        *n = atoll_node_areas(node, st, cap);
        if (*n <= cap)
            return st;
        cap = *n + *n / 4; /* more came meanwhile: room for them and some */
    }
}

static void
measure_load(atoll__cluster *c, uint32_t *players, double *msgs)
{
    size_t n;
    atoll_area_stats *st = atoll__areas_here(c->node, &n);
    *players = 0;
    *msgs = 0;
    for (size_t i = 0; i < n; i++) {
        *players += st[i].players;
        *msgs += st[i].messages_per_s;
    }
    atoll__free(st);
    /* The cores the process used since the last beat: all of its work (handlers, ticks,
     * encoding, links, commits), and only the time it ran. A sum of the areas' handler
     * times would read a handler preempted on a shared machine as busy, and would jump
     * when an area moves in or out with its total. */
    uint64_t now = uv_now(&c->loop), cpu = atoll__cpu_ns();
    double cores = 0;
    if (c->cpu_at_ms != 0 && now > c->cpu_at_ms && cpu >= c->cpu_ns_last)
        cores = (double)(cpu - c->cpu_ns_last) / 1e6 / (double)(now - c->cpu_at_ms);
    c->cpu_ns_last = cpu;
    c->cpu_at_ms = now;
    c->load = cores + *players / 1000.0 + *msgs / 10000.0;
}

/* ---- the registry and the coordinator ----------------------------------------------- */

static void failover(atoll__cluster *c);
static bool settled(atoll__cluster *c);

/* What a node's record says beyond what the registry parses: its workers, and
 * whether its key's fingerprint is this node's (1), another's (0), or not there yet
 * (-1: the placeholder a joining node holds its id with until its first heartbeat). */
static int
record_workers(const char *info, const char *fingerprint, int *same_key, bool *draining)
{
    json_t *j = json_loads(info, 0, NULL);
    int w = j ? (int)json_integer_value(json_object_get(j, "workers")) : 0;
    const char *fp = j ? json_string_value(json_object_get(j, "key")) : NULL;
    const char *state = j ? json_string_value(json_object_get(j, "state")) : NULL;
    *same_key = fp == NULL ? -1 : strcmp(fp, fingerprint) == 0;
    *draining = state != NULL && strcmp(state, "live") != 0;
    json_decref(j);
    return w;
}

static void
on_nodes(void *arg, const atoll__redis_node *nodes, size_t n)
{
    atoll__cluster *c = arg;
    if (nodes == NULL)
        return; /* Redis did not answer: nobody is declared dead for that */
    bool seen[ATOLL_NODE_ID_MAX + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        int id = nodes[i].id;
        if (id <= 0 || id > ATOLL_NODE_ID_MAX)
            continue;
        peer *pr = &c->peers[id];
        int same_key;
        bool draining;
        int workers = record_workers(nodes[i].info, c->fingerprint, &same_key, &draining);
        pr->draining = draining;
        if (same_key < 0)
            continue; /* joining: seen at its first heartbeat */
        if (same_key == 0) {
            /* Another secret: not of this cluster, whatever Redis it shares. */
            if (!pr->foreign)
                ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"a node with another cluster secret is ignored\" "
                          "node=%d name=%s", id, nodes[i].name);
            pr->foreign = true;
            continue;
        }
        pr->foreign = false;
        seen[id] = true;
        if (!pr->alive && id != c->id)
            ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"node joined\" node=%d name=%s advertise=%s", id,
                      nodes[i].name, nodes[i].advertise);
        pr->alive = pr->ever = true;
        if (strcmp(pr->name, nodes[i].name) != 0) {
            /* Workers read names under the lock (a move's answer names its nodes). */
            pthread_mutex_lock(&c->lock);
            snprintf(pr->name, sizeof pr->name, "%s", nodes[i].name);
            pthread_mutex_unlock(&c->lock);
        }
        snprintf(pr->advertise, sizeof pr->advertise, "%s", nodes[i].advertise);
        pr->roles = nodes[i].roles;
        pr->load = nodes[i].load;
        pr->nworkers = workers;
    }
    bool judge = settled(c);
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        peer *pr = &c->peers[id];
        if (pr->alive && !seen[id] && id != c->id && judge) {
            pr->alive = false;
            ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"node gone: its lease ended\" node=%d name=%s", id, pr->name);
            atoll__links_peer_dead(c, id);
            /* Sessions whose area was there enter it again; players whose session was
             * there are dropped (src/area/failover.c). */
            for (int w = 0; w < c->node->nworkers; w++) {
                atoll__mail *m = atoll__mail_new(ATOLL_MAIL_NODE_DOWN, 0);
                m->at = atoll__addr_make(id, 0);
                atoll__worker_post(c->node->workers[w], m);
            }
        }
    }
    /* The placement table: live area nodes (this one included) by load. */
    struct place_entry *pl = atoll__calloc((size_t)n + 1, sizeof *pl);
    int np = 0;
    for (size_t i = 0; i < n; i++) {
        int id = nodes[i].id;
        if (id <= 0 || id > ATOLL_NODE_ID_MAX || !seen[id] || !(nodes[i].roles & ATOLL_ROLE_AREA))
            continue;
        /* A node being drained takes no new area (control.c). */
        if (id == c->id ? c->draining || c->stopping_drained : c->peers[id].draining)
            continue;
        pl[np].node = id;
        pl[np].nworkers = id == c->id ? c->node->nworkers : c->peers[id].nworkers;
        pl[np].load = id == c->id ? c->load : nodes[i].load;
        np++;
    }
    pthread_mutex_lock(&c->lock);
    atoll__free(c->placeable);
    c->placeable = pl;
    c->nplaceable = np;
    c->registry_read = true;
    pthread_cond_broadcast(&c->read_cond);
    pthread_mutex_unlock(&c->lock);
    if (c->coordinator)
        failover(c);
}

/* The coordinator: areas of nodes that died get new owners. */
typedef struct takeover {
    atoll__cluster *c;
    int dead;
} takeover;

static void
on_dead_areas(void *arg, char **ids, const atoll__dir_entry *entries, size_t n)
{
    takeover *t = arg;
    atoll__cluster *c = t->c;
    atoll__dir *d = atoll__redis_dir(c->redis);
    size_t moved = 0;
    for (size_t i = 0; i < n && moved < c->cfg->moves_per_cycle; i++) {
        /* Out of the dead node's hands, only if nobody moved it meanwhile; the answer
         * goes to a worker of this node, which has it created anew on the least loaded
         * area node (src/area: atoll__area_takeover). */
        uint64_t cookie = ATOLL_DIR_COOKIE_TAKEOVER | (uint64_t)entries[i].type_index << 3;
        d->ops->cas_owner(d, ids[i], entries[i].epoch, NULL, atoll__addr_make(c->id, 0), cookie);
        moved++;
    }
    /* More than one cycle's worth: the rest next heartbeat (the dead node stays dead
     * for the coordinator until its set of areas is empty). */
    if (n > moved)
        c->alive_seen[t->dead] = true;
    else if (n > 0)
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"areas of a dead node given new owners\" dead=%d areas=%zu",
                  t->dead, n);
    atoll__free(t);
}

/* Deaths are judged only once Redis has answered for a lease and a beat without a
 * break: after an outage (or a restart that lost the leases) every node needs that long
 * to renew its record, and none of them is dead for missing it. */
static bool
settled(atoll__cluster *c)
{
    uint64_t now = uv_now(&c->loop);
    return c->redis_ok_since_ms != 0 &&
           now - c->redis_ok_since_ms >= (uint64_t)c->cfg->lease_ms + c->cfg->beat_ms;
}

static void
failover(atoll__cluster *c)
{
    bool judge = settled(c);
    for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++) {
        bool alive = c->peers[id].alive || id == c->id;
        if (!judge) {
            c->alive_seen[id] = c->alive_seen[id] || alive; /* seen alive, judged later */
            continue;
        }
        if (c->alive_seen[id] && !alive) {
            takeover *t = atoll__malloc(sizeof *t);
            t->c = c;
            t->dead = id;
            c->alive_seen[id] = false;
            atoll__redis_node_areas(c->redis, id, on_dead_areas, t);
        } else {
            c->alive_seen[id] = alive;
        }
    }
}

static void
on_lease(void *arg, bool held)
{
    atoll__cluster *c = arg;
    if (held != c->coordinator)
        ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"%s\" node=%d", held ? "coordinator: this node now"
                                                           : "coordinator: no longer this node",
                  c->id);
    if (held && !c->coordinator) {
        /* A new coordinator starts from the registry as it is: nodes dead before it took
         * over are found through the areas Redis still gives them (below). */
        for (int id = 1; id <= ATOLL_NODE_ID_MAX; id++)
            c->alive_seen[id] = c->peers[id].ever;
    }
    c->coordinator = held;
}

/* This node's areas, as the directory has them, against those it runs: an area it
 * runs that the directory gives to nobody else is still its own. */
static void
on_own_areas(void *arg, char **ids, const atoll__dir_entry *entries, size_t n)
{
    atoll__cluster *c = arg;
    c->checking_record = false;
    if (ids == NULL && n == 0 && !atoll__redis_up(c->redis))
        return; /* no answer: asked again at the next heartbeat */
    size_t nlocal;
    atoll_area_stats *st = atoll__areas_here(c->node, &nlocal);
    size_t taken = 0;
    for (size_t i = 0; i < nlocal; i++) {
        bool mine = false;
        for (size_t k = 0; k < n && !mine; k++)
            mine = strcmp(ids[k], st[i].id) == 0;
        taken += !mine;
    }
    atoll__free(st);
    if (taken > 0) {
        /* Declared dead while it was away (frozen, cut off): its areas have new owners,
         * whose epochs fence what it would still write. It keeps nothing and comes back
         * as an empty node (src/area/failover.c). */
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"this node was declared dead while it was away: its "
                  "areas have new owners; it drops all it runs and rejoins empty\" node=%d "
                  "areas_taken=%zu", c->id, taken);
        /* Whatever it answered or pushed for them since it froze is stale: the gates
         * sent those requests again to the new owners. It must not reach a client. */
        atoll__links_silence(c);
        for (int w = 0; w < c->node->nworkers; w++) {
            atoll__mail *m = atoll__mail_new(ATOLL_MAIL_NODE_DOWN, 0);
            m->at = atoll__addr_make(c->id, 0);
            atoll__worker_post(c->node->workers[w], m);
        }
    } else {
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"this node's record was gone from the registry (Redis "
                  "lost it, or an outage outlasted the lease); its areas are still its own: it "
                  "registers again\" node=%d", c->id);
    }
    c->claim_record = true; /* the next heartbeat writes the record again */
}

static void
on_beat_done(void *arg, int renewed)
{
    atoll__cluster *c = arg;
    uint64_t now = uv_now(&c->loop);
    if (renewed < 0) {
        c->redis_ok_since_ms = 0; /* nothing is decided while Redis does not answer */
        return;
    }
    if (c->redis_ok_since_ms == 0)
        c->redis_ok_since_ms = now;
    if (renewed == 1) {
        c->claim_record = false;
        return;
    }
    /* The record was gone: this node was declared dead, or Redis lost the record. Which
     * one the directory says (on_own_areas). */
    if (!c->checking_record) {
        c->checking_record = true;
        atoll__redis_node_areas(c->redis, c->id, on_own_areas, c);
    }
}

static void
on_beat(uv_timer_t *t)
{
    atoll__cluster *c = t->data;
    if (!atoll__redis_up(c->redis) && c->claim_record) {
        /* The first heartbeat waits for the connection (made on this loop after the
         * start): tried again in 10 ms rather than lost for a whole beat. */
        uv_timer_start(&c->beat, on_beat, 10, c->cfg->beat_ms);
        return;
    }
    uint32_t players;
    double msgs;
    measure_load(c, &players, &msgs);
    char info[512];
    snprintf(info, sizeof info,
             "{\"name\":\"%s\",\"advertise\":\"%s\",\"roles\":%u,\"load\":%.4f,\"workers\":%d,"
             "\"players\":%u,\"msgs_per_s\":%.1f,\"areas\":%zu,\"state\":\"%s\",\"key\":\"%s\"}",
             c->cfg->node_name, c->cfg->advertise, c->cfg->roles, c->load, c->node->nworkers,
             players, msgs, atoll_node_areas(c->node, NULL, 0),
             c->stopping_drained ? "stopping" : c->draining ? "draining" : "live", c->fingerprint);
    atoll__control_beat(c);
    atoll__redis_node_beat(c->redis, c->id, info, c->cfg->lease_ms, c->claim_record, on_beat_done,
                           c);
    if (c->cfg->roles & ATOLL_ROLE_COORD)
        atoll__redis_coord_lease(c->redis, c->id, c->cfg->lease_ms, on_lease, c);
    atoll__redis_nodes(c->redis, on_nodes, c);
}

/* ---- the thread ----------------------------------------------------------------------- */

static void
on_tick(uv_timer_t *t)
{
    atoll__cluster *c = t->data;
    atoll__links_tick(c);
    /* A peer's link closed: its lease is watched every tick, not every heartbeat (the
     * failover then starts within 100 ms of the lease's end). */
    if (c->suspect_until_ms != 0 && uv_now(&c->loop) < c->suspect_until_ms)
        atoll__redis_nodes(c->redis, on_nodes, c);
    else
        c->suspect_until_ms = 0;
}

static void
on_flush(uv_prepare_t *p)
{
    atoll__links_flush(p->data);
}

static void
on_stop_timer(uv_timer_t *t)
{
    atoll__cluster *c = t->data;
    atoll__links_close(c);
    atoll__redis_detach(c->redis);
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->flush, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_close((uv_handle_t *)t, NULL);
}

static uv_timer_t stop_timer_storage; /* one cluster per process */

static void
on_wake(uv_async_t *a)
{
    atoll__cluster *c = a->data;
    pthread_mutex_lock(&c->lock);
    piece *list = c->inq;
    c->inq = c->inq_tail = NULL;
    bool stop = c->stop;
    pthread_mutex_unlock(&c->lock);
    if (list != NULL)
        atoll__links_take(c, list);
    atoll__control_run(c);
    if (stop && uv_is_active((uv_handle_t *)&c->beat)) {
        /* Leave the registry now (other nodes stop placing here), give the links a
         * moment to write what they hold, then close everything. */
        uv_timer_stop(&c->beat);
        uv_close((uv_handle_t *)&c->beat, NULL);
        atoll__redis_node_leave(c->redis, c->id);
        atoll__links_flush(c);
        uv_timer_init(&c->loop, &stop_timer_storage);
        stop_timer_storage.data = c;
        uv_timer_start(&stop_timer_storage, on_stop_timer, 200, 0);
    }
}

static void *
cluster_main(void *arg)
{
    atoll__cluster *c = arg;
    atoll__log_set_thread("cluster");
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- the module ---------------------------------------------------------------------- */

static int
cluster_start(atoll__node *n)
{
    atoll__cluster *c = n->cfg->cluster;
    if (c == NULL)
        return ATOLL_OK; /* the embedded node */
    c->node = n;
    n->remote = &remote_ops;
    n->remote_data = c;
    n->dir = atoll__redis_dir(c->redis);
    memcpy(n->cluster_key, c->key.k, sizeof n->cluster_key < sizeof c->key.k
                                         ? sizeof n->cluster_key : sizeof c->key.k);
    n->cluster_key_set = true;
    return ATOLL_OK;
}

/* The workers exist (none runs yet): the thread starts, so that what comes for them
 * has somewhere to go. */
static int
cluster_ready(atoll__node *n)
{
    atoll__cluster *c = n->cfg->cluster;
    if (c == NULL)
        return ATOLL_OK;
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_prepare_init(&c->loop, &c->flush);
    c->flush.data = c;
    uv_prepare_start(&c->flush, on_flush);
    uv_timer_init(&c->loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, 100, 100);
    uv_timer_init(&c->loop, &c->beat);
    c->beat.data = c;
    atoll__redis_attach(c->redis, &c->loop);
    /* The first beat at once: this node is in the registry before it serves. */
    uv_timer_start(&c->beat, on_beat, 0, c->cfg->beat_ms);
    pthread_mutex_lock(&c->lock);
    c->running = true;
    pthread_mutex_unlock(&c->lock);
    if (pthread_create(&c->thread, NULL, cluster_main, c) != 0) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot start the cluster thread\"");
        c->running = false;
        return ATOLL_EIO;
    }
    /* A gate that serves before it has read the registry has nowhere to place its
     * first players: the start waits for the first reading (2 s at most). */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    pthread_mutex_lock(&c->lock);
    while (!c->registry_read)
        if (pthread_cond_timedwait(&c->read_cond, &c->lock, &until) != 0)
            break;
    bool read = c->registry_read;
    pthread_mutex_unlock(&c->lock);
    if (!read)
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"the registry of nodes was not read within 2 s: starting "
                  "without it\"");
    return ATOLL_OK;
}

static void
cluster_halt(atoll__node *n)
{
    atoll__cluster *c = n->cfg->cluster;
    if (c == NULL || !c->running)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_mutex_unlock(&c->lock);
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    c->running = false;
}

const atoll__module atoll__cluster_module = {
    .name = "cluster",
    .start = cluster_start,
    .ready = cluster_ready,
    .halt = cluster_halt,
};

/* ---- joining ------------------------------------------------------------------------- */

atoll__cluster *
atoll__cluster_open(atoll__config *cfg, char *err, size_t errlen)
{
    atoll__cluster *c = atoll__calloc(1, sizeof *c);
    c->cfg = cfg;
    /* The secret itself was read and checked with the settings (config.c). */
    int rc = atoll__link_key_derive((const char *)cfg->cluster_secret, cfg->cluster_secret_len,
                                    &c->key);
    if (rc != ATOLL_OK) {
        snprintf(err, errlen, "the cluster secret must be at least %d bytes", ATOLL_LINK_SECRET_MIN);
        atoll__free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->read_cond, NULL);
    uv_loop_init(&c->loop);
    /* A fingerprint of the key, never of the secret: nodes of one cluster recognise
     * each other's records by it, and learn nothing of the key. */
    uint8_t fp[8];
    static const char label[] = "atoll node record fingerprint";
    crypto_generichash(fp, sizeof fp, (const uint8_t *)label, sizeof label - 1, c->key.k,
                       sizeof c->key.k);
    for (int i = 0; i < 8; i++)
        snprintf(c->fingerprint + 2 * i, 3, "%02x", fp[i]);
    c->redis = atoll__redis_new(cfg->redis_url, dir_post, c, err, errlen);
    if (c->redis == NULL)
        goto fail;
    if (atoll__redis_node_join(c->redis, cfg->node_name, &c->id, err, errlen) != ATOLL_OK)
        goto fail;
    cfg->node_id = c->id;
    c->me.node = (uint16_t)c->id;
    c->claim_record = true; /* the first heartbeat replaces the join's placeholder */
    snprintf(c->me.name, sizeof c->me.name, "%s", cfg->node_name);
    if (atoll__links_listen(c, err, errlen) != ATOLL_OK)
        goto fail;
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"joined the cluster\" node=%d name=%s advertise=%s roles=%s%s%s",
              c->id, cfg->node_name, cfg->advertise, cfg->roles & ATOLL_ROLE_GATE ? "gate," : "",
              cfg->roles & ATOLL_ROLE_AREA ? "area," : "",
              cfg->roles & ATOLL_ROLE_COORD ? "coordinator" : "");
    return c;
fail:
    atoll__cluster_free(c);
    return NULL;
}

void
atoll__cluster_free(atoll__cluster *c)
{
    if (c == NULL)
        return;
    if (c->listener.data == c && !uv_is_closing((uv_handle_t *)&c->listener)) {
        /* Opened but never run (a start that failed later). */
        atoll__links_close(c);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    atoll__links_fini(c);
    atoll__control_fini(c);
    for (piece *p = c->inq, *next; p != NULL; p = next) {
        next = p->next;
        atoll__free(p);
    }
    if (c->redis)
        atoll__redis_free(c->redis);
    atoll__free(c->placeable);
    pthread_cond_destroy(&c->read_cond);
    pthread_mutex_destroy(&c->lock);
    sodium_memzero(&c->key, sizeof c->key);
    atoll__free(c);
}

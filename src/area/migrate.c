/* migrate.c -- a running area moves to another node while its clients play (live
 * migration): the hand-off between the old owner and the new one, the snapshot that
 * carries the area, and the forwards the old owner keeps for mail still on its way.
 *
 * The protocol (docs/design/migration.md has the why of each step):
 *   1. Whoever asks (an operator through the admin API, a drain, the coordinator's
 *      rebalance) sends HANDOFF {area, target node} to the area's owner.
 *   2. The owner waits until the area is still (no handler runs, no player is moving,
 *      no kept request waits), runs on_move_out, and freezes it: no handler, tick or
 *      timer of it runs; mail for it waits in order. It hands every changed document to
 *      the writer and, in durable mode, waits for that commit and for the output that
 *      waited on it, so that nothing the area said before is overtaken by what it says
 *      on the new node. Then it sends MIGRATE {snapshot} to a worker of the target.
 *   3. The target builds the area frozen and flips the directory entry by
 *      compare-and-set from the old epoch to itself with a new epoch.
 *   4. Won: it runs the area (timers and tick phase as they were), tells every connected
 *      player's gate the new route (SESS_ROUTE, with the old owner to fence, as a
 *      player's move does), and answers MIGRATED. Each player is unfenced: what its
 *      gate sends directly waits until the fence comes through the old owner.
 *   5. The old owner, on MIGRATED, forwards what waited (marked forwarded: it runs at
 *      once) and keeps a forward for the area's number and for the calls it made, for
 *      mail still on its way; then it forgets the area without a hook or a write.
 * Failure: the directory decides, always. A target that refuses before its CAS sends
 * the area back to running where it was. A target that does not answer (dead, link
 * cut) makes the old owner take the area back by its own CAS from the old epoch: won,
 * the area runs on where it was (the target's late CAS fails and drops its copy);
 * lost to the target, the target runs it; lost to anyone else (the coordinator gave
 * the area away because this node was thought dead), the copy here is dropped and the
 * new owner has the state committed before the snapshot left.
 */
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr */
#include "area.h"
#include "../core/hash.h"
#include "../node/metrics.h"
#include "../value/value.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>

#define SETTLE_MS 2000        /* a hand-off waits this long for its area to be still */
#define RETRY_MS 2            /* and looks again this often */
#define FLUSH_POLL_MS 1       /* durable: how often it looks whether its commit is in */
#define RECLAIM_RETRY_MS 100  /* an old owner's CAS that Redis did not answer */
#define FORWARD_KEEP_MS 30000 /* forwards of an area that left, and of its calls */

/* Snapshot limits: what a peer may ask this node to build. */
#define SNAP_VERSION 1
#define SNAP_PLAYERS_MAX (1u << 20)
#define SNAP_TIMERS_MAX (1u << 16)
#define SNAP_CMDS_MAX (1u << 16)
#define SNAP_CALLS_MAX (1u << 16)

enum phase { SETTLING, FLUSHING, SHIPPED, RECLAIMING, ARRIVING };

/* A hand-off, on either side (a->mig). */
struct atoll__migration {
    enum phase phase;
    atoll__worker *w;
    uint64_t num;
    uv_timer_t *timer;
    /* the old owner's side */
    atoll__addr asker;          /* HANDOFF_DONE goes there */
    uint64_t cookie;
    int target_node;
    atoll__addr target;
    uint64_t asked_ms, frozen_ns;
    uint64_t snapped_ns, shipped_ns; /* the pause's phases, for the "area moved" log */
    uint64_t ticket;            /* the writer's count its documents wait for */
    bool moved_out;             /* on_move_out ran: on_move_in runs if it stays */
    atoll__buf snap;            /* its snapshot, until shipped */
    uint64_t tick_due_ns;       /* its next tick, from the freeze */
    /* the new owner's side */
    atoll__addr source;
    uint64_t old_epoch;
    uint64_t got_ns, built_ns;  /* the snapshot came, the area was built from it */
    atoll__call_info *calls;    /* taken over when it runs */
    size_t ncalls;
};

/* A forward: an area number or a call id that left for `to`. */
typedef struct forward {
    atoll__addr to;
    uint64_t until_ms;
} forward;

/* Someone of this node asked for a move (MOVE_ASK's payload, then the pending ask). */
typedef struct ask {
    atoll__move_done_fn done;      /* a move's */
    atoll__info_done_fn info_done; /* a players list's */
    void *ctx;
    uint64_t until_ms;
    int from; /* the area's owner when the ask was resolved */
} ask;

/* The HANDOFF (and MOVE_ASK) of a players list, not a move. */
#define ASK_PLAYERS 1

static void
ask_done(ask *k, int status, const char *why, const atoll__mail *m)
{
    if (k->info_done != NULL) {
        if (status == ATOLL_OK && m != NULL)
            k->info_done(k->ctx, status, (const char *)m->data, m->len);
        else
            k->info_done(k->ctx, status, NULL, 0);
    } else {
        k->done(k->ctx, status, why, m ? m->epoch : 0, k->from, m ? m->at.node : -1,
                m ? m->request_id : 0);
    }
}

static atoll__addr
me(const atoll__worker *w)
{
    return atoll__addr_make(w->node->id, w->index);
}

static void
free_handle(uv_handle_t *h)
{
    atoll__free(h);
}

/* ---- code and data addresses across processes ---------------------------------------------- */

/* A timer's or a call's callback is a function of the game (or of the framework), and
 * its udata may point into the game's static data. Every node runs the same binaries,
 * but each process maps them elsewhere: an address crosses as {module, offset}, the
 * module named by its file's base name ("" for the program itself). */

typedef struct module_find {
    const char *name;       /* base name to find ("" the program) */
    uintptr_t base;         /* out: the module's dladdr base */
    uintptr_t lo, hi;       /* out: its mapped range */
    uintptr_t xlo, xhi;     /* out: its executable range */
    bool found;
} module_find;

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int
find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    module_find *f = arg;
    bool main_program = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
    if (main_program ? f->name[0] != '\0' : strcmp(base_name(info->dlpi_name), f->name) != 0)
        return 0;
    if (main_program && f->found)
        return 0; /* the vdso has no name either; the program comes first */
    uintptr_t lo = UINTPTR_MAX, hi = 0, xlo = UINTPTR_MAX, xhi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo)
            lo = s;
        if (e > hi)
            hi = e;
        if ((ph->p_flags & PF_X) && s < xlo)
            xlo = s;
        if ((ph->p_flags & PF_X) && e > xhi)
            xhi = e;
    }
    Dl_info di;
    if (lo == UINTPTR_MAX || !dladdr((void *)lo, &di) || di.dli_fbase == NULL)
        return 0;
    f->base = (uintptr_t)di.dli_fbase;
    f->lo = lo;
    f->hi = hi;
    f->xlo = xlo;
    f->xhi = xhi;
    f->found = true;
    return main_program ? 0 : 1;
}

/* Appends a reference to p: u8 0 (NULL), or u8 1, u8 n, n bytes of module name, u64
 * offset. ATOLL_EINVAL when p is in no module (heap or stack memory). */
static int
ref_put(atoll__buf *b, const void *p)
{
    if (p == NULL) {
        atoll__buf_push(b, 0);
        return ATOLL_OK;
    }
    Dl_info di;
    if (!dladdr(p, &di) || di.dli_fbase == NULL || di.dli_fname == NULL)
        return ATOLL_EINVAL;
    module_find prog = {.name = ""};
    dl_iterate_phdr(find_module, &prog);
    const char *name = prog.found && prog.base == (uintptr_t)di.dli_fbase ? ""
                                                                           : base_name(di.dli_fname);
    size_t n = strlen(name);
    if (n > 255)
        return ATOLL_EINVAL;
    module_find f = {.name = name};
    dl_iterate_phdr(find_module, &f);
    if (!f.found || (uintptr_t)p < f.lo || (uintptr_t)p >= f.hi)
        return ATOLL_EINVAL; /* dladdr found it, but not in a segment of the module */
    atoll__buf_push(b, 1);
    atoll__buf_push(b, (uint8_t)n);
    atoll__buf_append(b, name, n);
    atoll__wire_put_u64(b, (uint64_t)((uintptr_t)p - f.base));
    return ATOLL_OK;
}

/* Reads a reference; code: it must be in an executable segment. */
static bool
ref_get(atoll__wire_reader *r, bool code, void **out)
{
    uint8_t kind, n;
    *out = NULL;
    if (!atoll__wire_get_u8(r, &kind) || kind > 1)
        return false;
    if (kind == 0)
        return true;
    const uint8_t *name;
    uint64_t off;
    if (!atoll__wire_get_u8(r, &n) || !atoll__wire_get_bytes(r, n, &name) ||
        !atoll__wire_get_u64(r, &off) || memchr(name, '\0', n) != NULL)
        return false;
    char nm[256];
    memcpy(nm, name, n);
    nm[n] = '\0';
    module_find f = {.name = nm};
    dl_iterate_phdr(find_module, &f);
    if (!f.found || off > UINTPTR_MAX - f.base)
        return false;
    uintptr_t p = f.base + (uintptr_t)off;
    if (code ? (p < f.xlo || p >= f.xhi) : (p < f.lo || p >= f.hi))
        return false;
    *out = (void *)p;
    return true;
}

/* ---- the snapshot ------------------------------------------------------------------------ */

/* What a snapshot holds, parsed (before the area is built from it). */
typedef struct snapshot {
    uint64_t doc_hash, messages;
    atoll_value *state;
    uint64_t tick_count, tick_due_ns, tick_since_ns;
    atoll__timer_info *timers;
    size_t ntimers;
    atoll_player **players;
    uint64_t *resume_due;       /* per player: its window's rest (0: connected) */
    size_t nplayers;
    atoll__mail_list cmds;
    size_t ncmds;
    atoll__call_info *calls;
    size_t ncalls;
} snapshot;

static void
snap_free(snapshot *s)
{
    atoll_unref(s->state);
    atoll__free(s->timers);
    for (size_t i = 0; i < s->nplayers; i++)
        atoll__player_free(s->players[i]);
    atoll__free(s->players);
    atoll__free(s->resume_due);
    atoll__mail_free_list(atoll__mail_list_take(&s->cmds));
    atoll__free(s->calls);
    memset(s, 0, sizeof *s);
}

/* The due time of a's timer id (paused), or 0. */
static uint64_t
timer_due(const atoll__timer_info *t, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].id == id)
            return t[i].due_ms ? t[i].due_ms : 1;
    return 1;
}

/* Encodes frozen area a. ATOLL_OK, or an error and why (something of it cannot cross). */
static int
snap_encode(atoll__worker *w, atoll_area *a, atoll__buf *b, char *why, size_t wl)
{
    uint64_t now = uv_hrtime();
    atoll__buf_push(b, SNAP_VERSION);
    atoll__wire_put_u64(b, a->doc_hash);
    atoll__wire_put_u64(b, a->messages);
    atoll__wire_put_json(b, a->state);
    atoll__wire_put_u64(b, a->tick_count);
    atoll__wire_put_u64(b, a->mig->tick_due_ns);
    atoll__wire_put_u64(b, a->tick_last_ns && now > a->tick_last_ns ? now - a->tick_last_ns : 0);

    size_t nt = atoll__timers_list(a, NULL, 0);
    atoll__timer_info *ts = atoll__calloc(nt + 1, sizeof *ts);
    atoll__timers_list(a, ts, nt);
    size_t game_timers = 0;
    for (size_t i = 0; i < nt; i++)
        if (!atoll__resume_is_window(a, ts[i].id))
            game_timers++;
    atoll__wire_put_u32(b, (uint32_t)game_timers);
    int rc = ATOLL_OK;
    for (size_t i = 0; i < nt && rc == ATOLL_OK; i++) {
        if (atoll__resume_is_window(a, ts[i].id))
            continue;
        atoll__wire_put_u64(b, ts[i].id);
        atoll__wire_put_u64(b, ts[i].due_ms);
        atoll__wire_put_u64(b, ts[i].period_ms);
        if (ref_put(b, (const void *)(uintptr_t)ts[i].fn) != ATOLL_OK ||
            ref_put(b, ts[i].udata) != ATOLL_OK) {
            snprintf(why, wl, "a timer's udata points to memory of this process (keep it in "
                     "the area's state, or cancel it in on_move_out)");
            rc = ATOLL_EINVAL;
        }
    }

    atoll__wire_put_u32(b, a->nplayers);
    for (atoll_player *p = a->first; p != NULL && rc == ATOLL_OK; p = p->next) {
        size_t n = strlen(p->uid);
        atoll__wire_put_u64(b, p->session.v);
        atoll__wire_put_u32(b, (uint32_t)p->session_worker);
        atoll__wire_put_u16(b, (uint16_t)n);
        atoll__buf_append(b, p->uid, n);
        atoll__buf_append(b, p->resume_nonce, sizeof p->resume_nonce);
        atoll__buf_push(b, (uint8_t)((p->persisted ? 1 : 0) | (p->disconnected ? 2 : 0)));
        atoll__wire_put_u64(b, p->doc_hash);
        atoll__wire_put_u64(b, p->doc_epoch);
        atoll__wire_put_u64(b, p->disconnected ? timer_due(ts, nt, p->resume_timer) : 0);
        atoll__exact_put_data(b, p); /* with the requests it ran (exact.c) */
    }
    atoll__free(ts);

    atoll__wire_put_u32(b, a->ncmds);
    for (atoll__mail *m = a->cmds.head; m != NULL && rc == ATOLL_OK; m = m->next) {
        if (atoll__wire_encode(m, b) != ATOLL_OK) {
            snprintf(why, wl, "a queued command cannot be encoded");
            rc = ATOLL_EINVAL;
        }
    }

    size_t nc = atoll__proxy_list(a, NULL, 0);
    atoll__call_info *cs = atoll__calloc(nc + 1, sizeof *cs);
    atoll__proxy_list(a, cs, nc);
    atoll__wire_put_u32(b, (uint32_t)nc);
    for (size_t i = 0; i < nc && rc == ATOLL_OK; i++) {
        size_t n = strlen(cs[i].to);
        atoll__wire_put_u64(b, cs[i].id);
        atoll__wire_put_u64(b, cs[i].due_ms);
        atoll__wire_put_u16(b, cs[i].route);
        atoll__buf_push(b, cs[i].retried ? 1 : 0);
        atoll__buf_push(b, (uint8_t)n);
        atoll__buf_append(b, cs[i].to, n);
        if (ref_put(b, (const void *)(uintptr_t)cs[i].cb) != ATOLL_OK ||
            ref_put(b, cs[i].udata) != ATOLL_OK) {
            snprintf(why, wl, "a call's udata points to memory of this process (keep it in "
                     "the area's state)");
            rc = ATOLL_EINVAL;
        }
    }
    atoll__free(cs);
    (void)w;
    return rc;
}

static int
snapshot_parse(const uint8_t *p, size_t len, const atoll__wire_limits *lim, snapshot *s)
{
    atoll__wire_reader r = {p, len, false};
    memset(s, 0, sizeof *s);
    uint8_t version;
    uint32_t n, count;
    if (!atoll__wire_get_u8(&r, &version) || version != SNAP_VERSION ||
        !atoll__wire_get_u64(&r, &s->doc_hash) || !atoll__wire_get_u64(&r, &s->messages) ||
        !atoll__wire_get_u32(&r, &n) || !atoll__wire_get_json(&r, n, &s->state) ||
        s->state == NULL || atoll_typeof(s->state) != ATOLL_OBJECT ||
        !atoll__wire_get_u64(&r, &s->tick_count) || !atoll__wire_get_u64(&r, &s->tick_due_ns) ||
        !atoll__wire_get_u64(&r, &s->tick_since_ns) || s->tick_due_ns > 3600ull * 1000000000u ||
        !atoll__wire_get_u32(&r, &count) || count > SNAP_TIMERS_MAX)
        goto bad;
    s->timers = atoll__calloc(count + 1, sizeof *s->timers);
    for (uint32_t i = 0; i < count; i++) {
        atoll__timer_info *t = &s->timers[i];
        void *fn;
        if (!atoll__wire_get_u64(&r, &t->id) || !atoll__wire_get_u64(&r, &t->due_ms) ||
            !atoll__wire_get_u64(&r, &t->period_ms) || !ref_get(&r, true, &fn) || fn == NULL ||
            !ref_get(&r, false, &t->udata) || t->id == 0)
            goto bad;
        t->fn = (atoll_timer_fn)(uintptr_t)fn;
        s->ntimers++;
    }
    if (!atoll__wire_get_u32(&r, &count) || count > SNAP_PLAYERS_MAX || count > r.left / 32)
        goto bad;
    s->players = atoll__calloc(count + 1, sizeof *s->players);
    s->resume_due = atoll__calloc(count + 1, sizeof *s->resume_due);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t session, hash, doc_epoch, resume_due;
        uint32_t sw, dlen;
        uint16_t ulen;
        uint8_t flags;
        const uint8_t *uid, *nonce;
        atoll_value *data = NULL;
        if (!atoll__wire_get_u64(&r, &session) || !atoll__wire_get_u32(&r, &sw) ||
            (int)sw >= 256 || !atoll__wire_get_u16(&r, &ulen) || ulen == 0 ||
            ulen > ATOLL_UID_MAX || !atoll__wire_get_bytes(&r, ulen, &uid) ||
            memchr(uid, '\0', ulen) != NULL ||
            !atoll__wire_get_bytes(&r, ATOLL__RESUME_NONCE, &nonce) ||
            !atoll__wire_get_u8(&r, &flags) || flags > 3 || !atoll__wire_get_u64(&r, &hash) ||
            !atoll__wire_get_u64(&r, &doc_epoch) || !atoll__wire_get_u64(&r, &resume_due) ||
            !atoll__wire_get_u32(&r, &dlen) || !atoll__wire_get_json(&r, dlen, &data) ||
            atoll_typeof(data) != ATOLL_OBJECT) {
            atoll_unref(data);
            goto bad;
        }
        char id[ATOLL_UID_MAX + 1];
        memcpy(id, uid, ulen);
        id[ulen] = '\0';
        atoll_session_id sid = {session};
        atoll_player *pl = atoll__player_new(id, sid, (int)sw);
        atoll_unref(pl->data);
        pl->data = data;
        atoll__exact_take(pl, pl->data);
        memcpy(pl->resume_nonce, nonce, ATOLL__RESUME_NONCE);
        pl->persisted = (flags & 1) != 0;
        pl->disconnected = (flags & 2) != 0;
        pl->doc_hash = hash;
        /* One above the epoch it was written with where it came from (as a player that
         * moves across nodes): nothing the old node wrote can be newer. */
        pl->doc_epoch = doc_epoch < UINT64_MAX ? doc_epoch + 1 : doc_epoch;
        pl->fence_node = -1;
        s->players[s->nplayers] = pl;
        s->resume_due[s->nplayers++] = pl->disconnected ? (resume_due ? resume_due : 1) : 0;
    }
    if (!atoll__wire_get_u32(&r, &count) || count > SNAP_CMDS_MAX)
        goto bad;
    for (uint32_t i = 0; i < count; i++) {
        atoll__mail *m = NULL;
        ssize_t used = atoll__wire_decode(r.p, r.left, lim, &m);
        if (used <= 0 || m == NULL ||
            (m->type != ATOLL_MAIL_AREA_REQ && m->type != ATOLL_MAIL_AREA_CALL)) {
            if (m != NULL)
                atoll__mail_free(m);
            goto bad;
        }
        r.p += used;
        r.left -= (size_t)used;
        atoll__mail_list_push(&s->cmds, m);
        s->ncmds++;
    }
    if (!atoll__wire_get_u32(&r, &count) || count > SNAP_CALLS_MAX)
        goto bad;
    s->calls = atoll__calloc(count + 1, sizeof *s->calls);
    for (uint32_t i = 0; i < count; i++) {
        atoll__call_info *c = &s->calls[i];
        uint8_t retried, tlen;
        const uint8_t *to;
        void *cb;
        if (!atoll__wire_get_u64(&r, &c->id) || !atoll__wire_get_u64(&r, &c->due_ms) ||
            !atoll__wire_get_u16(&r, &c->route) || !atoll__wire_get_u8(&r, &retried) ||
            retried > 1 || !atoll__wire_get_u8(&r, &tlen) || tlen == 0 ||
            tlen > ATOLL_AREA_ID_MAX || !atoll__wire_get_bytes(&r, tlen, &to) ||
            memchr(to, '\0', tlen) != NULL || !ref_get(&r, true, &cb) || cb == NULL ||
            !ref_get(&r, false, &c->udata) || c->id == 0 || c->due_ms > 3600u * 1000u)
            goto bad;
        c->retried = retried != 0;
        c->cb = (atoll_call_fn)(uintptr_t)cb;
        memcpy(c->to, to, tlen);
        c->to[tlen] = '\0';
        s->ncalls++;
    }
    if (r.left != 0 || r.bad)
        goto bad;
    return ATOLL_OK;
bad:
    snap_free(s);
    return ATOLL_EPROTO;
}

int
atoll__snapshot_check(const uint8_t *p, size_t len, const atoll__wire_limits *lim)
{
    snapshot s;
    int rc = snapshot_parse(p, len, lim, &s);
    if (rc == ATOLL_OK)
        snap_free(&s);
    return rc;
}

/* ---- MIGRATE's payload: the snapshot's bytes, parsed by the worker that builds it ------ */

void
atoll__migrate_payload_fini(atoll__mail *m)
{
    if (m->type == ATOLL_MAIL_AREA_MIGRATE && m->payload != NULL) {
        atoll__buf_fini(m->payload);
        atoll__free(m->payload);
    } else {
        atoll__free(m->payload); /* MOVE_ASK's ask */
    }
    m->payload = NULL;
}

int
atoll__migrate_payload_encode(const atoll__mail *m, atoll__buf *out)
{
    const atoll__buf *b = m->payload;
    atoll__buf_append(out, atoll__buf_data(b), b->len);
    return ATOLL_OK;
}

int
atoll__migrate_payload_decode(atoll__mail *m, const uint8_t *p, size_t n)
{
    atoll__buf *b = atoll__calloc(1, sizeof *b);
    atoll__buf_append(b, p, n);
    m->payload = b;
    return ATOLL_OK;
}

/* ---- answers ---------------------------------------------------------------------------- */

static void
answer_asker(atoll__worker *w, atoll__addr asker, uint64_t cookie, const char *id, int status,
             const char *why, uint64_t epoch, atoll__addr to, uint32_t pause_us)
{
    size_t n = why ? strlen(why) : 0;
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_AREA_HANDOFF_DONE, n);
    if (n)
        memcpy(r->data, why, n);
    r->status = status;
    r->call_id = cookie;
    r->epoch = epoch;
    r->at = to;
    r->request_id = pause_us;
    snprintf(r->from, sizeof r->from, "%s", id);
    atoll__send_to(w->node, asker, r);
}

/* ---- the old owner --------------------------------------------------------------------------- */

static void mig_timer(atoll__migration *mig, uint64_t ms, uv_timer_cb cb);
static void answer_players(atoll__worker *w, atoll__mail *m, atoll_area *a);
static void on_settle_timer(uv_timer_t *t);

static void
mig_free(atoll_area *a)
{
    atoll__migration *mig = a->mig;
    if (mig == NULL)
        return;
    if (mig->timer != NULL)
        uv_close((uv_handle_t *)mig->timer, free_handle);
    atoll__buf_fini(&mig->snap);
    atoll__free(mig->calls);
    atoll__free(mig);
    a->mig = NULL;
}

static atoll_area *
mig_area(uv_timer_t *t)
{
    atoll__migration *mig = t->data;
    atoll_area *a = atoll__area_find(mig->w, mig->num);
    return a != NULL && a->mig == mig ? a : NULL;
}

static void
mig_timer(atoll__migration *mig, uint64_t ms, uv_timer_cb cb)
{
    if (mig->timer == NULL) {
        mig->timer = atoll__malloc(sizeof *mig->timer);
        uv_timer_init(&mig->w->loop, mig->timer);
        mig->timer->data = mig;
    }
    uv_timer_start(mig->timer, cb, ms, 0);
}

/* Runs what waited while frozen, in order (the area runs again, here or not at all). */
static void
deliver_frozen(atoll__worker *w, atoll__mail *list)
{
    for (atoll__mail *m = list, *next; m != NULL; m = next) {
        next = m->next;
        m->next = NULL;
        atoll__mail_dispatch(w, m);
    }
}

/* Why a is not still enough to leave now, or NULL. */
static const char *
busy(atoll__worker *w, atoll_area *a)
{
    if (a->kept != NULL)
        return "a request it kept (atoll_req_keep) is not answered yet";
    if (a->has_moves || a->depth != 0)
        return "players are moving";
    for (atoll_player *p = a->first; p != NULL; p = p->next)
        if (p->move_to != NULL || p->resolving != NULL || p->unfenced)
            return "players are moving";
    const atoll__map *loads = &w->areas->docs.loads;
    for (size_t i = 0; i < loads->cap; i++) {
        const atoll__mail *m = loads->slots[i].value;
        if (loads->slots[i].key != 0 && m != NULL && m->area == a->num)
            return "a player's document is loading";
    }
    return NULL;
}

/* The area runs again here (the move failed or was refused); the asker is told. */
static void
resume_here(atoll__worker *w, atoll_area *a, int status, const char *why)
{
    atoll__migration *mig = a->mig;
    bool was_frozen = a->frozen;
    a->frozen = false;
    if (was_frozen) {
        atoll__timers_resume(a);
        if (a->tick_period_ns != 0) {
            a->tick_next_ns = uv_hrtime() + mig->tick_due_ns;
            atoll__tick_add(a);
        }
        atoll__area_grace(a);
    }
    if (mig->moved_out && a->type->on_move_in != NULL) {
        atoll__area_begin(a);
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_move_in", NULL, NULL);
        a->type->on_move_in(a);
        atoll__game_end(&run, a);
        atoll__fx_end(w, true);
        atoll__area_end(a);
    }
    atoll__metric_add(ATOLL_CTR_MOVES_FAILED, 1);
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"area not moved, it runs here\" area=\"%s\" to=%d why=\"%s\"",
              a->id, mig->target_node, why);
    answer_asker(w, mig->asker, mig->cookie, a->id, status, why, a->epoch, me(w), 0);
    uint64_t num = a->num;
    mig_free(a);
    deliver_frozen(w, atoll__mail_list_take(&a->frozen_held));
    a = atoll__area_find(w, num);
    if (a != NULL && a->has_moves && a->depth == 0)
        atoll__do_moves(w, a);
}

static void
forward_put(atoll__map *map, uint64_t key, atoll__addr to, uint64_t now_ms)
{
    forward *f = atoll__map_get(map, key);
    if (f == NULL) {
        f = atoll__malloc(sizeof *f);
        atoll__map_put(map, key, f);
    }
    f->to = to;
    f->until_ms = now_ms + FORWARD_KEEP_MS;
}

/* The area runs at `to` now with epoch: what waited follows it, forwards stay for what
 * is still on its way, and it is forgotten here without a hook or a write. */
static void
release(atoll__worker *w, atoll_area *a, atoll__addr to, uint64_t epoch)
{
    atoll__migration *mig = a->mig;
    uint64_t now_ms = uv_now(&w->loop);
    uint32_t pause_us = (uint32_t)((uv_hrtime() - mig->frozen_ns) / 1000u);
    forward_put(&w->areas->area_forwards, a->num, to, now_ms);
    size_t nc = atoll__proxy_list(a, NULL, 0);
    atoll__call_info *cs = atoll__calloc(nc + 1, sizeof *cs);
    atoll__proxy_list(a, cs, nc);
    for (size_t i = 0; i < nc; i++)
        forward_put(&w->areas->call_forwards, cs[i].id, to, now_ms);
    atoll__free(cs);
    atoll__dir_entry e = {a->num, to, epoch, a->type_index};
    atoll__where_learn(w, a->id, &e);
    atoll__metric_add(ATOLL_CTR_MOVES_OUT, 1);
    atoll__metric_observe(ATOLL_HIST_MOVE_PAUSE, (uint64_t)pause_us * 1000u);
    /* The pause in its parts: the snapshot, the wait for the store to have every write
     * (a move never ships what the store has not seen), and the new node's side with the
     * link's round trip and the directory's compare-and-set. */
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"area moved\" area=\"%s\" to=%d players=%u pause_us=%u "
              "snapshot_us=%u flush_us=%u remote_us=%u epoch=%llu", a->id, to.node, a->nplayers,
              pause_us, (unsigned)((mig->snapped_ns - mig->frozen_ns) / 1000u),
              (unsigned)((mig->shipped_ns - mig->snapped_ns) / 1000u),
              (unsigned)((uv_hrtime() - mig->shipped_ns) / 1000u), (unsigned long long)epoch);
    answer_asker(w, mig->asker, mig->cookie, a->id, ATOLL_OK, NULL, epoch, to, pause_us);
    atoll__mail *held = atoll__mail_list_take(&a->frozen_held);
    mig_free(a);
    atoll__area_free_quiet(w, a);
    for (atoll__mail *m = held, *next; m != NULL; m = next) {
        next = m->next;
        m->next = NULL;
        if (m->type != ATOLL_MAIL_AREA_REPLY && m->type != ATOLL_MAIL_AREA_FENCE)
            m->forwarded = true;
        atoll__send_to(w->node, to, m);
    }
}

/* The copy here is not the area's any more (the directory gave it to another node):
 * dropped without a word. The new owner has what was committed. */
static void
drop_here(atoll__worker *w, atoll_area *a, const char *why)
{
    atoll__migration *mig = a->mig;
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"area given to another node while it moved: this copy is "
              "dropped\" area=\"%s\" why=\"%s\"", a->id, why);
    atoll__metric_add(ATOLL_CTR_MOVES_LOST, 1);
    answer_asker(w, mig->asker, mig->cookie, a->id, ATOLL_ESTATE, why, 0, me(w), 0);
    atoll__mail *held = atoll__mail_list_take(&a->frozen_held);
    mig_free(a);
    atoll__area_free_quiet(w, a);
    /* Its mail goes where the directory says now (answered "moved" or forwarded). */
    for (atoll__mail *m = held, *next; m != NULL; m = next) {
        next = m->next;
        m->next = NULL;
        atoll__mail_dispatch(w, m);
    }
}

static void
reclaim(atoll__worker *w, atoll_area *a)
{
    atoll__migration *mig = a->mig;
    mig->phase = RECLAIMING;
    uint64_t seq = ++w->areas->next_migration;
    atoll__map_put(&w->areas->migrations_in, seq, (void *)(uintptr_t)a->num);
    atoll__dir_entry e = {a->num, me(w), 0, a->type_index};
    atoll__dir *d = atoll__dir_of_worker(w);
    d->ops->cas_owner(d, a->id, a->epoch, &e, me(w), seq << 3 | ATOLL__DIR_COOKIE_RECLAIM);
}

static void
on_reclaim_retry(uv_timer_t *t)
{
    atoll_area *a = mig_area(t);
    if (a != NULL && a->mig->phase == RECLAIMING)
        reclaim(a->worker, a);
}

static void
on_shipped_timer(uv_timer_t *t)
{
    atoll_area *a = mig_area(t);
    if (a == NULL || a->mig->phase != SHIPPED)
        return;
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"the new node did not answer a move in time: the directory "
              "decides who runs the area\" area=\"%s\" to=%d", a->id, a->mig->target_node);
    reclaim(a->worker, a);
}

static void
ship(atoll__worker *w, atoll_area *a)
{
    atoll__migration *mig = a->mig;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_MIGRATE, 0);
    m->area = a->num;
    snprintf(m->from, sizeof m->from, "%s", a->id);
    m->type_index = a->type_index;
    m->epoch = a->epoch;
    m->at = me(w);
    atoll__buf *b = atoll__calloc(1, sizeof *b);
    *b = mig->snap;
    mig->snap = (atoll__buf)ATOLL__BUF_INIT;
    m->payload = b;
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"area shipped\" area=\"%s\" to=%d bytes=%zu", a->id,
              mig->target.node, b->len);
    mig->phase = SHIPPED;
    mig->shipped_ns = uv_hrtime();
    mig_timer(mig, w->node->cfg->call_timeout_ms, on_shipped_timer);
    atoll__send_to(w->node, mig->target, m);
}

static void
on_flush_timer(uv_timer_t *t)
{
    atoll_area *a = mig_area(t);
    if (a == NULL || a->mig->phase != FLUSHING)
        return;
    atoll__worker *w = a->worker;
    if (atoll__docs_flushed(w, a->mig->ticket)) {
        ship(w, a);
        return;
    }
    /* The store is down or far behind. Without a move the area would run on, and its
     * answers that wait for a commit would be refused after store.timeout_ms: the move
     * must not keep it frozen for the whole outage instead. It runs on here; its writes
     * stay with the writer, committed when the store is back. */
    if ((uv_hrtime() - a->mig->snapped_ns) / 1000000u >= w->node->cfg->store_timeout_ms) {
        resume_here(w, a, ATOLL_EIO, "the store did not commit the area's writes within "
                    "store.timeout_ms");
        return;
    }
    mig_timer(a->mig, FLUSH_POLL_MS, on_flush_timer);
}

/* a is still: it leaves (on_move_out, freeze, snapshot, documents, ship). */
static void
leave(atoll__worker *w, atoll_area *a)
{
    atoll__migration *mig = a->mig;
    if (a->udata != NULL && a->type->on_move_out == NULL) {
        resume_here(w, a, ATOLL_ESTATE, "the area keeps C state (udata) and its type has no "
                    "on_move_out");
        return;
    }
    if (a->type->on_move_out != NULL) {
        atoll__area_begin(a);
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_move_out", NULL, NULL);
        int rc = a->type->on_move_out(a);
        atoll__game_end(&run, a);
        atoll__fx_end(w, rc == ATOLL_OK);
        a->depth--; /* not atoll__area_end: nothing deferred may run now */
        if (rc != ATOLL_OK || a->destroy_requested || a->has_moves) {
            a->depth++;
            atoll__area_end(a);
            char why[96];
            snprintf(why, sizeof why, "on_move_out refused the move (%s)", atoll_err_name(rc));
            if (atoll__area_find(w, mig->num) == a)
                resume_here(w, a, ATOLL_ESTATE, why);
            return;
        }
        a->udata = NULL; /* the game put it into the state */
        mig->moved_out = true;
    }
    /* Frozen: from now on nothing of it runs and its mail waits. */
    a->frozen = true;
    mig->frozen_ns = uv_hrtime();
    atoll__timers_pause(a);
    mig->tick_due_ns = 0;
    if (a->tick_slot != 0) {
        uint64_t now = uv_hrtime();
        mig->tick_due_ns = a->tick_next_ns > now ? a->tick_next_ns - now : 0;
        atoll__tick_remove(a);
    }
    if (a->grace != NULL)
        uv_timer_stop(a->grace);
    char why[160];
    if (snap_encode(w, a, &mig->snap, why, sizeof why) != ATOLL_OK) {
        atoll__buf_fini(&mig->snap);
        resume_here(w, a, ATOLL_EINVAL, why);
        return;
    }
    mig->snapped_ns = uv_hrtime();
    mig->ticket = atoll__docs_flush(w);
    if (atoll__docs_flushed(w, mig->ticket)) {
        ship(w, a);
    } else {
        mig->phase = FLUSHING;
        mig_timer(mig, FLUSH_POLL_MS, on_flush_timer);
    }
}

static void
try_leave(atoll__worker *w, atoll_area *a)
{
    const char *why = busy(w, a);
    if (why == NULL) {
        leave(w, a);
        return;
    }
    if (uv_now(&w->loop) - a->mig->asked_ms >= SETTLE_MS) {
        char msg[160];
        snprintf(msg, sizeof msg, "the area is not still: %s", why);
        resume_here(w, a, ATOLL_EBUSY, msg);
        return;
    }
    mig_timer(a->mig, RETRY_MS, on_settle_timer);
}

static void
on_settle_timer(uv_timer_t *t)
{
    atoll_area *a = mig_area(t);
    if (a != NULL && a->mig->phase == SETTLING)
        try_leave(a->worker, a);
}

/* HANDOFF on the owner's worker. */
static void
on_handoff(atoll__worker *w, atoll__mail *m)
{
    atoll_area *a = atoll__area_find(w, m->area);
    if (a == NULL) {
        if (!atoll__migrate_forward(w, m)) {
            answer_asker(w, m->at, m->call_id, m->from, ATOLL_ENOENT,
                         "the area is not where the directory said (try again)", 0, me(w), 0);
            atoll__mail_free(m);
        }
        return;
    }
    if (m->msg_type == ASK_PLAYERS) {
        answer_players(w, m, a);
        atoll__mail_free(m);
        return;
    }
    const char *refuse = NULL;
    int status = ATOLL_ESTATE;
    atoll__addr target = {0};
    if (a->mig != NULL)
        refuse = "a move of this area is under way";
    else if (a->destroyed || a->destroy_requested)
        refuse = "the area is being destroyed", status = ATOLL_ENOENT;
    else if (m->status == w->node->id)
        refuse = "the area runs on that node already";
    else if (a->type->drain_waits)
        refuse = "its area type is never moved while it runs (drain_waits)";
    else if (w->node->remote == NULL || w->node->remote->worker_for == NULL ||
             w->node->remote->worker_for(w->node, m->status, a->id, &target) != ATOLL_OK)
        refuse = "no live area node with that id", status = ATOLL_ENOENT;
    if (refuse != NULL) {
        answer_asker(w, m->at, m->call_id, a->id, status, refuse, a->epoch, me(w), 0);
        atoll__mail_free(m);
        return;
    }
    atoll__migration *mig = atoll__calloc(1, sizeof *mig);
    mig->phase = SETTLING;
    mig->w = w;
    mig->num = a->num;
    mig->asker = m->at;
    mig->cookie = m->call_id;
    mig->target_node = m->status;
    mig->target = target;
    mig->asked_ms = uv_now(&w->loop);
    mig->snap = (atoll__buf)ATOLL__BUF_INIT;
    a->mig = mig;
    atoll__metric_add(ATOLL_CTR_MOVES_STARTED, 1);
    atoll__mail_free(m);
    try_leave(w, a);
}

/* MIGRATED on the old owner. */
static void
on_migrated(atoll__worker *w, atoll__mail *m)
{
    atoll_area *a = atoll__area_find(w, m->area);
    if (a == NULL || a->mig == NULL || a->mig->phase != SHIPPED) {
        atoll__mail_free(m); /* settled already (taken back, or the directory decided) */
        return;
    }
    if (m->status == ATOLL_OK) {
        release(w, a, m->at, m->epoch);
    } else if (m->call_id != 0) {
        /* Its compare-and-set lost: the entry had moved on from the epoch this node
         * had, so the area is not this node's any more. */
        drop_here(w, a, "the directory entry changed while the area moved");
    } else {
        char why[200];
        snprintf(why, sizeof why, "the new node refused it: %.*s", (int)(m->len < 150 ? m->len : 150),
                 (const char *)m->data);
        resume_here(w, a, m->status, why);
    }
    atoll__mail_free(m);
}

/* ---- the new owner ---------------------------------------------------------------------------- */

static void
refuse_migrate(atoll__worker *w, const atoll__mail *m, int status, const char *why, bool cas_lost,
               const atoll__dir_entry *e)
{
    size_t n = strlen(why);
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_AREA_MIGRATED, n);
    memcpy(r->data, why, n);
    r->area = m->area;
    r->status = status;
    r->call_id = cas_lost ? 1 : 0;
    if (e != NULL) {
        r->epoch = e->epoch;
        r->at = e->owner;
    }
    atoll__send_to(w->node, m->at, r);
}

static void
flip(atoll__worker *w, atoll_area *a)
{
    uint64_t seq = ++w->areas->next_migration;
    atoll__map_put(&w->areas->migrations_in, seq, (void *)(uintptr_t)a->num);
    atoll__dir_entry e = {a->num, me(w), 0, a->type_index};
    atoll__dir *d = atoll__dir_of_worker(w);
    d->ops->cas_owner(d, a->id, a->mig->old_epoch, &e, me(w), seq << 3 | ATOLL__DIR_COOKIE_MIGRATE_IN);
}

static void
on_flip_retry(uv_timer_t *t)
{
    atoll_area *a = mig_area(t);
    if (a != NULL && a->mig->phase == ARRIVING)
        flip(a->worker, a);
}

/* MIGRATE on a worker of the new owner. */
static void
on_migrate(atoll__worker *w, atoll__mail *m)
{
    const atoll__buf *b = m->payload;
    uint64_t got_ns = uv_hrtime();
    if (atoll__area_find(w, m->area) != NULL || m->type_index >= w->node->ntypes ||
        !atoll__area_id_valid(m->from) || b == NULL) {
        refuse_migrate(w, m, ATOLL_EEXIST, "an area with that number is here already", false, NULL);
        atoll__mail_free(m);
        return;
    }
    atoll__wire_limits lim = {w->node->nworkers, w->node->ntypes, w->node->id};
    snapshot s;
    if (snapshot_parse(atoll__buf_data(b), b->len, &lim, &s) != ATOLL_OK) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"a moving area's snapshot cannot be read: refused\" "
                  "area=\"%s\" from=%d bytes=%zu", m->from, m->at.node, b->len);
        refuse_migrate(w, m, ATOLL_EPROTO, "its snapshot cannot be read here", false, NULL);
        atoll__mail_free(m);
        return;
    }
    /* Leave the older forward of this number (the area was here before) behind. */
    atoll__free(atoll__map_del(&w->areas->area_forwards, m->area));
    atoll__dir_entry e = {m->area, me(w), m->epoch, m->type_index};
    atoll_area *a = atoll__area_arrive(w, m->from, &e, s.state, s.doc_hash);
    s.state = NULL;
    a->messages = s.messages;
    a->tick_count = s.tick_count;
    if (s.tick_since_ns != 0)
        a->tick_last_ns = uv_hrtime() - s.tick_since_ns;
    for (size_t i = 0; i < s.ntimers; i++)
        atoll__timer_adopt(a, &s.timers[i]);
    for (size_t i = 0; i < s.nplayers; i++) {
        atoll_player *p = s.players[i];
        s.players[i] = NULL;
        atoll__player_attach_quiet(a, p);
        if (s.resume_due[i] != 0)
            atoll__resume_adopt(a, p, s.resume_due[i]);
    }
    s.nplayers = 0;
    a->cmds = s.cmds;
    a->ncmds = (uint32_t)s.ncmds;
    s.cmds.head = s.cmds.tail = NULL;
    atoll__migration *mig = atoll__calloc(1, sizeof *mig);
    mig->phase = ARRIVING;
    mig->w = w;
    mig->num = a->num;
    mig->source = m->at;
    mig->old_epoch = m->epoch;
    mig->got_ns = got_ns;
    mig->built_ns = uv_hrtime();
    mig->tick_due_ns = s.tick_due_ns;
    mig->calls = s.calls;
    mig->ncalls = s.ncalls;
    mig->snap = (atoll__buf)ATOLL__BUF_INIT;
    s.calls = NULL;
    a->mig = mig;
    snap_free(&s);
    atoll__mail_free(m);
    flip(w, a);
}

static void
send_route(atoll__worker *w, atoll_area *a, atoll_player *p, atoll__addr old)
{
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_SESS_ROUTE, 0);
    r->session = p->session;
    r->area = a->num;
    r->at = me(w);
    r->type_index = a->type_index;
    snprintf(r->from, sizeof r->from, "%s", a->id);
    r->area_old = a->num;
    r->at_old = old;
    atoll__send_to(w->node, atoll__session_addr(p->session), r);
}

/* The flip won: the area runs here. */
static void
arrived(atoll__worker *w, atoll_area *a, const atoll__dir_entry *e)
{
    atoll__migration *mig = a->mig;
    a->epoch = e->epoch;
    atoll__where_learn(w, a->id, e);
    a->frozen = false;
    for (size_t i = 0; i < mig->ncalls; i++)
        atoll__proxy_adopt(w, a, &mig->calls[i]);
    atoll__timers_resume(a);
    if (a->tick_period_ns != 0) {
        a->tick_next_ns = uv_hrtime() + mig->tick_due_ns;
        atoll__tick_add(a);
    }
    atoll__area_grace(a);
    for (atoll_player *p = a->first; p != NULL; p = p->next) {
        if (p->disconnected)
            continue;
        /* Its gate sends to this node from now on; what it sent before comes through the
         * old owner, then its fence (a player's move, docs/design/areas.md). */
        p->unfenced = true;
        p->fence_node = mig->source.node;
        send_route(w, a, p, mig->source);
    }
    atoll__metric_add(ATOLL_CTR_MOVES_IN, 1);
    /* build_us: the snapshot read and the area made of it; flip_us: the directory's
     * compare-and-set (through the cluster thread and Redis) and the routes sent. */
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"area arrived\" area=\"%s\" from=%d players=%u epoch=%llu "
              "build_us=%u flip_us=%u", a->id, mig->source.node, a->nplayers,
              (unsigned long long)e->epoch, (unsigned)((mig->built_ns - mig->got_ns) / 1000u),
              (unsigned)((uv_hrtime() - mig->built_ns) / 1000u));
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_AREA_MIGRATED, 0);
    r->area = a->num;
    r->status = ATOLL_OK;
    r->epoch = e->epoch;
    r->at = me(w);
    atoll__send_to(w->node, mig->source, r);
    uint64_t num = a->num;
    mig_free(a);
    if (a->type->on_move_in != NULL) {
        atoll__area_begin(a);
        atoll__fx_begin(w);
        atoll__running run;
        atoll__game_begin(&run, a, "on_move_in", NULL, NULL);
        a->type->on_move_in(a);
        atoll__game_end(&run, a);
        atoll__fx_end(w, true);
        atoll__area_end(a);
    }
    if ((a = atoll__area_find(w, num)) != NULL)
        deliver_frozen(w, atoll__mail_list_take(&a->frozen_held));
}

/* The flip lost: this copy was never the area's. */
static void
not_arrived(atoll__worker *w, atoll_area *a, int status, const atoll__dir_entry *e)
{
    atoll__migration *mig = a->mig;
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"a moving area's directory entry changed on its way: not "
              "taken\" area=\"%s\" from=%d", a->id, mig->source.node);
    atoll__mail fake = {.area = a->num, .at = mig->source};
    refuse_migrate(w, &fake, status, "the directory entry changed", true, e);
    atoll__addr source = mig->source;
    atoll__mail *held = atoll__mail_list_take(&a->frozen_held);
    mig_free(a);
    atoll__area_free_quiet(w, a);
    for (atoll__mail *m = held, *next; m != NULL; m = next) {
        next = m->next;
        m->next = NULL;
        atoll__send_to(w->node, source, m);
    }
}

void
atoll__migrate_dir_answer(atoll__worker *w, atoll__mail *m)
{
    uint64_t seq = m->call_id >> 3;
    unsigned kind = (unsigned)(m->call_id & 7);
    void *v = atoll__map_del(&w->areas->migrations_in, seq);
    atoll_area *a = v ? atoll__area_find(w, (uint64_t)(uintptr_t)v) : NULL;
    if (a == NULL || a->mig == NULL) {
        atoll__mail_free(m);
        return;
    }
    atoll__dir_entry e = atoll__dir_answer_entry(m);
    bool found = m->status == ATOLL_OK || m->status == ATOLL_ESTATE;
    bool mine = found && e.num == a->num && e.owner.node == w->node->id &&
                e.owner.worker == w->index;
    int status = m->status;
    atoll__mail_free(m);
    if (kind == ATOLL__DIR_COOKIE_MIGRATE_IN) {
        if (a->mig->phase != ARRIVING)
            return;
        if (status == ATOLL_OK || mine) /* mine: an earlier try that Redis applied */
            arrived(w, a, &e);
        else if (status == ATOLL_EIO)
            mig_timer(a->mig, RECLAIM_RETRY_MS, on_flip_retry); /* applied or not: ask again */
        else
            not_arrived(w, a, status, found ? &e : NULL);
        return;
    }
    if (a->mig->phase != RECLAIMING)
        return;
    if (status == ATOLL_OK || mine) {
        a->epoch = e.epoch;
        atoll__where_learn(w, a->id, &e);
        resume_here(w, a, ATOLL_ETIMEDOUT, "the new node did not take it in time");
    } else if (status == ATOLL_EIO) {
        mig_timer(a->mig, RECLAIM_RETRY_MS, on_reclaim_retry);
    } else if (found && e.num == a->num && e.owner.node == a->mig->target_node) {
        release(w, a, e.owner, e.epoch); /* the new node won before it could answer */
    } else {
        drop_here(w, a, "the directory gave the area to another node");
    }
}

/* ---- asking for a move, from any thread ---------------------------------------------------- */

static void
ask_resolved(atoll__worker *w, int status, const atoll__dir_entry *e, const char *id,
             atoll__mail *m, uint64_t arg)
{
    (void)arg;
    ask *k = m->payload;
    if (status != ATOLL_OK) {
        ask_done(k, ATOLL_ENOENT, "no such area", NULL);
        atoll__mail_free(m);
        return;
    }
    uint64_t cookie = ++w->areas->next_migration;
    m->payload = NULL;
    k->from = e->owner.node;
    k->until_ms = uv_now(&w->loop) + SETTLE_MS + 2u * w->node->cfg->call_timeout_ms + 1000u;
    atoll__map_put(&w->areas->asks, cookie, k);
    atoll__mail *h = atoll__mail_new(ATOLL_MAIL_AREA_HANDOFF, 0);
    h->area = e->num;
    snprintf(h->from, sizeof h->from, "%s", id);
    h->status = m->status;
    h->msg_type = m->msg_type;
    h->at = me(w);
    h->call_id = cookie;
    atoll__mail_free(m);
    atoll__send_to(w->node, e->owner, h);
}

/* MOVE_ASK for area id to the worker its id hashes to (which finds its owner). */
static void
ask_post(atoll__node *n, const char *id, int node, uint32_t msg_type, ask *k)
{
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_AREA_MOVE_ASK, 0);
    snprintf(m->from, sizeof m->from, "%s", id);
    m->status = node;
    m->msg_type = msg_type;
    m->payload = k;
    atoll__send(n, (int)(atoll__hash_str(id) % (uint64_t)n->nworkers), m);
}

static int
move_ask(atoll__node *n, const char *id, int node, atoll__move_done_fn done, void *ctx)
{
    if (id == NULL || !atoll__area_id_valid(id) || node <= 0 || node > ATOLL_NODE_ID_MAX)
        return ATOLL_EINVAL;
    ask *k = atoll__calloc(1, sizeof *k);
    k->done = done;
    k->ctx = ctx;
    ask_post(n, id, node, 0, k);
    return ATOLL_OK;
}

static int
players_ask(atoll__node *n, const char *id, atoll__info_done_fn done, void *ctx)
{
    if (id == NULL || !atoll__area_id_valid(id))
        return ATOLL_EINVAL;
    ask *k = atoll__calloc(1, sizeof *k);
    k->info_done = done;
    k->ctx = ctx;
    ask_post(n, id, 0, ASK_PLAYERS, k);
    return ATOLL_OK;
}

/* HANDOFF asking for the players of area a: the answer carries their JSON. */
static void
answer_players(atoll__worker *w, atoll__mail *m, atoll_area *a)
{
    atoll__buf j = ATOLL__BUF_INIT;
    atoll__buf_append(&j, "{\"area\":", 8);
    atoll__json_put_string(&j, a->id, strlen(a->id));
    const char *name = w->node->cfg->node_name;
    atoll__buf_append(&j, ",\"node\":", 8);
    atoll__json_put_string(&j, name, strlen(name));
    atoll__buf_append(&j, ",\"players\":[", 12);
    for (atoll_player *p = a->first; p != NULL; p = p->next) {
        if (p != a->first)
            atoll__buf_push(&j, ',');
        atoll__buf_append(&j, "{\"uid\":", 7);
        atoll__json_put_string(&j, p->uid, strlen(p->uid));
        const char *c = p->disconnected ? ",\"connected\":false}" : ",\"connected\":true}";
        atoll__buf_append(&j, c, strlen(c));
    }
    atoll__buf_append(&j, "]}", 2);
    atoll__mail *r = atoll__mail_new(ATOLL_MAIL_AREA_HANDOFF_DONE, j.len);
    memcpy(r->data, atoll__buf_data(&j), j.len);
    atoll__buf_fini(&j);
    r->status = ATOLL_OK;
    r->call_id = m->call_id;
    r->at = me(w);
    snprintf(r->from, sizeof r->from, "%s", a->id);
    atoll__send_to(w->node, m->at, r);
}

const atoll__area_ops atoll__area_ops_impl = {.move = move_ask, .players = players_ask};

bool
atoll__migrate_forget(atoll__worker *w, atoll_area *a)
{
    atoll__migration *mig = a->mig;
    if (mig == NULL)
        return false;
    if (mig->phase == ARRIVING) {
        mig_free(a);
        atoll__area_free_quiet(w, a); /* never the area's here */
        return true;
    }
    answer_asker(w, mig->asker, mig->cookie, a->id, ATOLL_ECANCELED, "the node is stopping", 0,
                 me(w), 0);
    atoll__metric_add(ATOLL_CTR_MOVES_FAILED, 1); /* it stays here, and is saved as it stops */
    mig_free(a);
    atoll__mail_free_list(atoll__mail_list_take(&a->frozen_held));
    return false;
}

/* ---- mail ------------------------------------------------------------------------------------ */

void
atoll__migrate_mail(atoll__worker *w, atoll__mail *m)
{
    switch (m->type) {
    case ATOLL_MAIL_AREA_MOVE_ASK:
        atoll__where_forget(w, m->from, UINT64_MAX); /* the directory's word, not a cache */
        atoll__where_lookup(w, m->from, ask_resolved, m, 0);
        return;
    case ATOLL_MAIL_AREA_HANDOFF:
        on_handoff(w, m);
        return;
    case ATOLL_MAIL_AREA_MIGRATE:
        on_migrate(w, m);
        return;
    case ATOLL_MAIL_AREA_MIGRATED:
        on_migrated(w, m);
        return;
    case ATOLL_MAIL_AREA_HANDOFF_DONE: {
        ask *k = atoll__map_del(&w->areas->asks, m->call_id);
        if (k != NULL) {
            char why[256] = "";
            if (m->len && m->status != ATOLL_OK)
                snprintf(why, sizeof why, "%.*s", (int)(m->len < 255 ? m->len : 255),
                         (const char *)m->data);
            ask_done(k, m->status, why[0] ? why : NULL, m);
            atoll__free(k);
        }
        atoll__mail_free(m);
        return;
    }
    default:
        atoll__mail_free(m);
        return;
    }
}

bool
atoll__migrate_forward(atoll__worker *w, atoll__mail *m)
{
    forward *f = m->area ? atoll__map_get(&w->areas->area_forwards, m->area) : NULL;
    if (f == NULL)
        return false;
    if (m->type != ATOLL_MAIL_AREA_FENCE && m->type != ATOLL_MAIL_AREA_HANDOFF)
        m->forwarded = true;
    atoll__send_to(w->node, f->to, m);
    return true;
}

bool
atoll__migrate_forward_reply(atoll__worker *w, atoll__mail *m)
{
    forward *f = atoll__map_del(&w->areas->call_forwards, m->call_id);
    if (f == NULL)
        return false;
    atoll__send_to(w->node, f->to, m);
    atoll__free(f);
    return true;
}

void
atoll__migrate_undeliverable(atoll__worker *w, atoll__mail *m)
{
    atoll_area *a = atoll__area_find(w, m->area);
    if (a != NULL && a->mig != NULL && a->mig->phase == SHIPPED)
        reclaim(w, a);
    atoll__mail_free(m);
}

void
atoll__migrate_node_down(atoll__worker *w, int dead)
{
    atoll__map *areas = &w->areas->by_num;
    size_t n = 0;
    uint64_t *nums = atoll__calloc(areas->len + 1, sizeof *nums);
    for (size_t i = 0; i < areas->cap; i++)
        if (areas->slots[i].key != 0)
            nums[n++] = areas->slots[i].key;
    for (size_t i = 0; i < n; i++) {
        atoll_area *a = atoll__area_find(w, nums[i]);
        if (a == NULL)
            continue;
        if (a->mig != NULL && a->mig->phase == SHIPPED && a->mig->target_node == dead) {
            reclaim(w, a);
            continue;
        }
        /* Fences that would have come through the dead node never will: the players
         * run what they hold (their gates send again what the dead node lost). Running
         * it may change the list of players: it is looked through again each time. */
        bool again = true;
        while (again && (a = atoll__area_find(w, nums[i])) != NULL) {
            again = false;
            for (atoll_player *p = a->first; p != NULL; p = p->next) {
                if (p->unfenced && p->fence_node == dead) {
                    p->unfenced = false;
                    p->fence_node = -1;
                    atoll__deliver_held(w, a, p);
                    again = true;
                    break;
                }
            }
        }
    }
    atoll__free(nums);
    /* Forwards to the dead node lead nowhere. */
    atoll__map *maps[2] = {&w->areas->area_forwards, &w->areas->call_forwards};
    for (int k = 0; k < 2; k++) {
        atoll__map *fm = maps[k];
        for (size_t i = 0; i < fm->cap; i++) {
            forward *f = fm->slots[i].value;
            if (fm->slots[i].key != 0 && f != NULL && f->to.node == dead)
                f->until_ms = 0;
        }
    }
    atoll__migrate_tick(w);
}

/* Forgets what expired in map (entries of forward or ask). */
static void
expire(atoll__worker *w, atoll__map *map, bool asks)
{
    uint64_t now = uv_now(&w->loop);
    uint64_t *dead = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < map->cap; i++) {
        if (map->slots[i].key == 0 || map->slots[i].value == NULL)
            continue;
        uint64_t until = asks ? ((ask *)map->slots[i].value)->until_ms
                              : ((forward *)map->slots[i].value)->until_ms;
        if (until <= now) {
            dead = atoll__grow(dead, n, &cap, sizeof *dead, 16);
            dead[n++] = map->slots[i].key;
        }
    }
    for (size_t i = 0; i < n; i++) {
        void *v = atoll__map_del(map, dead[i]);
        if (asks)
            ask_done(v, ATOLL_ETIMEDOUT, "the area's node did not answer", NULL);
        atoll__free(v);
    }
    atoll__free(dead);
}

void
atoll__migrate_tick(atoll__worker *w)
{
    expire(w, &w->areas->area_forwards, false);
    expire(w, &w->areas->call_forwards, false);
    expire(w, &w->areas->asks, true);
}

void
atoll__migrate_fini(atoll__worker *w)
{
    atoll__map *maps[3] = {&w->areas->area_forwards, &w->areas->call_forwards, &w->areas->asks};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < maps[k]->cap; i++) {
            if (maps[k]->slots[i].key == 0)
                continue;
            if (k == 2)
                ask_done(maps[k]->slots[i].value, ATOLL_ECANCELED, "the node is stopping", NULL);
            atoll__free(maps[k]->slots[i].value);
        }
        atoll__map_fini(maps[k]);
    }
    atoll__map_fini(&w->areas->migrations_in);
}

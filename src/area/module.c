/* module.c -- the area runtime as a module of the node: what it registers before the
 * workers start (its mail kinds, the route handler of every area route, the session
 * hooks), what it keeps for the node (the directory, placement, stats), the game's
 * init, and its state on each worker from start to end.
 */
#include "area.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int
area_start(atoll__node *n)
{
    n->module_data = atoll__area_node_new(n);
    n->area_ops = &atoll__area_ops_impl;
    static const atoll__mail_type area_kinds[] = {
        ATOLL_MAIL_AREA_CREATE, ATOLL_MAIL_AREA_ENTER, ATOLL_MAIL_AREA_REQ,
        ATOLL_MAIL_AREA_LEAVE,  ATOLL_MAIL_AREA_FENCE, ATOLL_MAIL_AREA_CALL,
        ATOLL_MAIL_AREA_RESUME,
    };
    for (size_t i = 0; i < sizeof area_kinds / sizeof area_kinds[0]; i++)
        atoll__mail_register(area_kinds[i], atoll__area_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_AREA_MOVE_IN, atoll__area_mail, atoll__area_move_fini);
    atoll__mail_register_codec(ATOLL_MAIL_AREA_MOVE_IN, atoll__area_move_encode,
                               atoll__area_move_decode);
    atoll__mail_register(ATOLL_MAIL_AREA_REPLY, atoll__proxy_reply_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_SESS_ROUTE, atoll__area_route_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_DIR_ANSWER, atoll__where_answer_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_DIR_INVALIDATE, atoll__where_invalidate_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_NODE_DOWN, atoll__area_node_down_mail, NULL);
    static const atoll__mail_type migrate_kinds[] = {
        ATOLL_MAIL_AREA_HANDOFF, ATOLL_MAIL_AREA_MIGRATED, ATOLL_MAIL_AREA_HANDOFF_DONE,
    };
    for (size_t i = 0; i < sizeof migrate_kinds / sizeof migrate_kinds[0]; i++)
        atoll__mail_register(migrate_kinds[i], atoll__migrate_mail, NULL);
    atoll__mail_register(ATOLL_MAIL_AREA_MOVE_ASK, atoll__migrate_mail, atoll__migrate_payload_fini);
    atoll__mail_register(ATOLL_MAIL_AREA_MIGRATE, atoll__migrate_mail, atoll__migrate_payload_fini);
    atoll__mail_register_codec(ATOLL_MAIL_AREA_MIGRATE, atoll__migrate_payload_encode,
                               atoll__migrate_payload_decode);
    for (size_t code = 0; code <= atoll__dict_count(n->dict); code++)
        if (n->routes[code].handler != NULL)
            n->routes[code].gate = atoll__area_route;
    n->routes[atoll__dict_code(n->dict, "gate.resume", 11)].gate = atoll__gate_resume;
    n->hooks.admit = atoll__area_admit;
    n->hooks.enter = atoll__area_enter;
    n->hooks.closed = atoll__area_session_closed;
    return atoll__docs_open(n);
}

/* The game's init runs before any worker does: areas it creates are placed now and
 * built by their workers first thing. */
static int
area_ready(atoll__node *n)
{
    if (n->game->api->init == NULL)
        return ATOLL_OK;
    atoll__running run;
    atoll__game_begin(&run, NULL, "init", NULL, NULL);
    int rc = n->game->api->init(n);
    atoll__game_end(&run, NULL);
    if (rc != ATOLL_OK)
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"game init failed\" game=\"%s\" error=%s",
                  n->game->name, atoll_err_name(rc));
    return rc;
}

static void
area_worker_init(atoll__worker *w)
{
    w->areas = atoll__calloc(1, sizeof *w->areas);
    w->areas->tick_fd = -1;
    /* Call and timer ids unique in the cluster ({node:12 | worker:8 | count}): an area
     * that moves to another node keeps its timers' and calls' ids there (migrate.c). */
    uint64_t base = (uint64_t)w->node->id << 52 | (uint64_t)(w->index & 0xFF) << 44;
    w->areas->next_call_id = base;
    w->areas->next_timer_id = base;
    atoll__dir *d = atoll__dir_of_worker(w);
    d->ops->subscribe(d, atoll__addr_make(w->node->id, w->index));
    atoll__proxy_init(w);
    atoll__docs_worker_init(w);
    if (atoll__ticks_init(w) != ATOLL_OK) {
        /* Only when the process is out of file descriptors before it even started. */
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot create the tick timer\" error=\"%s\"",
                  strerror(errno));
        abort();
    }
}

static void
area_worker_fini(atoll__worker *w)
{
    struct atoll__area_worker *aw = w->areas;
    atoll__migrate_fini(w);
    atoll__docs_worker_fini(w);
    atoll__fx_fini(w);
    atoll__area_claims_fini(w);
    atoll__where_fini(w);
    atoll__proxy_fini(w);
    atoll__ticks_fini(w);
    atoll__map_fini(&aw->by_num);
    /* Forwards of players whose fence never came (the node stopped mid-move). */
    for (size_t i = 0; i < aw->forwards.cap; i++)
        if (aw->forwards.slots[i].key != 0)
            atoll__free(aw->forwards.slots[i].value);
    atoll__map_fini(&aw->forwards);
    /* gate.resume still waiting for the directory when the node stopped. */
    for (size_t i = 0; i < aw->resumes.cap; i++)
        if (aw->resumes.slots[i].key != 0)
            atoll__free(aw->resumes.slots[i].value);
    atoll__map_fini(&aw->resumes);
    atoll__map_fini(&aw->dropped_areas);
    atoll__buf_fini(&aw->scratch_out);
    atoll__buf_fini(&aw->rejoins);
    atoll__buf_fini(&aw->exact_answer);
    atoll__buf_fini(&aw->scratch_pkg);
    atoll__buf_fini(&aw->scratch_stats);
    atoll__free(aw);
    w->areas = NULL;
}

/* Every 100 ms on each worker. */
static void
area_worker_tick(atoll__worker *w)
{
    atoll__areas_publish(w);
    atoll__docs_tick(w);
    atoll__area_rejoin_tick(w);
    atoll__migrate_tick(w);
}

static void
area_stop(atoll__node *n)
{
    /* After every worker: their areas handed their last documents over on the way out,
     * and the writer commits them before the process goes. */
    atoll__docs_close(n);
    atoll__area_node_free(atoll__area_node_of(n));
    n->module_data = NULL;
}

const atoll__module atoll__area_module = {
    .name = "area",
    .start = area_start,
    .ready = area_ready,
    .worker_init = area_worker_init,
    .worker_tick = area_worker_tick,
    .worker_phase_end = atoll__docs_phase_end,
    .worker_hold_mail = atoll__docs_hold_mail,
    .worker_undeliverable = atoll__area_undeliverable,
    .worker_stopped = atoll__areas_shutdown,
    .worker_fini = area_worker_fini,
    .stop = area_stop,
};

/* effects.c -- the effects stage: what game code sends while it runs is held, and
 * released when it returns successfully or dropped when it fails.
 *
 * A handler's effects are its replies, its pushes (to a player, a list, the area), the
 * kicks, moves and calls it asks for. Each run of game code on a worker (a handler, a
 * hook, a tick, a timer or call callback) is a region: atoll__fx_begin ... atoll__fx_end.
 * Inside it, the bytes for clients (atoll__session_out) and the mail that game code
 * causes (atoll__area_send) are appended to the worker's journal in order; moves are
 * noted. At the end the journal is released in the order it was written (so a reply
 * still goes before a kick that follows it) or dropped: the staged mail is freed, a
 * call it held is settled with ATOLL_ECANCELED, noted moves are forgotten. The answer
 * of a failed request is then the error answer, sent after the region.
 *
 * The framework's own mail (routes, entries, forwards, fences) is never staged: it is
 * sent outside regions. In durable mode (docs.c) a region's journal that follows changes
 * not yet committed waits whole until they are. Values changed in a region are
 * journaled too (value.h): a region that fails undoes them. Regions do not nest in practice (game code never
 * runs inside other game code: local mail waits for the loop); a nested region joins
 * the outer one.
 */
#include "area.h"

/* Journal records: a tag, then for FX_OUT {session (8), worker (4), length (4), bytes};
 * FX_MAIL stands for the next mail of the staged list. */
enum { FX_OUT = 1, FX_MAIL = 2 };

void
atoll__fx_begin(atoll__worker *w)
{
    if (w->areas->fx.depth++ == 0)
        atoll__vj_use(&w->areas->fx.journal); /* changes to values are journaled (undo) */
}

bool
atoll__fx_active(const atoll__worker *w)
{
    return w->areas != NULL && w->areas->fx.depth > 0;
}

atoll__buf *
atoll__fx_out_begin(atoll__worker *w, atoll_session_id s, int sw, size_t *mark)
{
    return atoll__fx_put_out_begin(&w->areas->fx.log, s, sw, mark);
}

atoll__buf *
atoll__fx_put_out_begin(atoll__buf *log, atoll_session_id s, int sw, size_t *mark)
{
    uint32_t worker = (uint32_t)sw, len = 0;
    atoll__buf_push(log, FX_OUT);
    atoll__buf_append(log, &s.v, 8);
    atoll__buf_append(log, &worker, 4);
    *mark = log->len;
    atoll__buf_append(log, &len, 4); /* set by atoll__fx_out_end */
    return log;
}

void
atoll__fx_out_end(atoll__worker *w, size_t mark)
{
    atoll__fx_put_out_end(&w->areas->fx.log, mark);
}

void
atoll__fx_put_out_end(atoll__buf *log, size_t mark)
{
    uint32_t len = (uint32_t)(log->len - mark - 4);
    memcpy(atoll__buf_data(log) + mark, &len, 4);
}

void
atoll__fx_put_out(atoll__buf *log, atoll_session_id s, int sw, const uint8_t *p, size_t n)
{
    size_t mark;
    atoll__buf_append(atoll__fx_put_out_begin(log, s, sw, &mark), p, n);
    atoll__fx_put_out_end(log, mark);
}

void
atoll__fx_put_mail(atoll__buf *log, atoll__mail_list *staged, atoll__mail *m, atoll__addr to)
{
    m->fx_to = to;
    atoll__mail_list_push(staged, m);
    atoll__buf_push(log, FX_MAIL);
}

void
atoll__fx_out(atoll__worker *w, atoll_session_id s, int sw, const uint8_t *p, size_t n)
{
    atoll__fx_put_out(&w->areas->fx.log, s, sw, p, n);
}

void
atoll__area_send(atoll__worker *w, int to, atoll__mail *m)
{
    atoll__area_send_to(w, atoll__addr_make(w->node->id, to), m);
}

void
atoll__area_send_to(atoll__worker *w, atoll__addr to, atoll__mail *m)
{
    if (!atoll__fx_active(w)) {
        atoll__send_to(w->node, to, m);
        return;
    }
    atoll__fx *fx = &w->areas->fx;
    atoll__fx_put_mail(&fx->log, &fx->mail, m, to);
}

void
atoll__fx_moved(atoll__worker *w, atoll_player *p)
{
    if (!atoll__fx_active(w))
        return;
    atoll__fx *fx = &w->areas->fx;
    fx->moved = atoll__grow(fx->moved, fx->nmoved, &fx->cap_moved, sizeof *fx->moved, 8);
    fx->moved[fx->nmoved++] = p;
}

void
atoll__fx_release_journal(atoll__worker *w, atoll__buf *log, atoll__mail_list *mail)
{
    const uint8_t *p = atoll__buf_data(log), *end = p + log->len;
    atoll__mail *m = atoll__mail_list_take(mail);
    while (p < end) {
        if (*p++ == FX_MAIL) {
            atoll__mail *next = m->next;
            atoll__send_to(w->node, m->fx_to, m);
            m = next;
            continue;
        }
        atoll_session_id s;
        uint32_t worker, len;
        memcpy(&s.v, p, 8);
        memcpy(&worker, p + 8, 4);
        memcpy(&len, p + 12, 4);
        p += 16;
        atoll__session_out_now(w, s, (int)worker, p, len);
        p += len;
    }
}

void
atoll__fx_drop_mail(atoll__worker *w, atoll__mail *m)
{
    while (m != NULL) {
        atoll__mail *next = m->next;
        uint64_t call = m->type == ATOLL_MAIL_AREA_CALL ? m->call_id : 0;
        if (m->type == ATOLL_MAIL_AREA_CALL && m->area == 0 && m->len > 0 &&
            m->data[m->len - 1] == '\0')
            atoll__where_queue(w, (const char *)m->data, -1); /* by id: it never left */
        atoll__mail_free(m);
        if (call != 0)
            atoll__proxy_cancel_call(w, call);
        m = next;
    }
}

static void
drop(atoll__worker *w, atoll__fx *fx)
{
    /* The journal is emptied first: a call's callback, which learns below that its
     * call never left, is game code with a region of its own. */
    atoll__mail *m = atoll__mail_list_take(&fx->mail);
    fx->log.len = 0;
    for (size_t i = 0; i < fx->nmoved; i++) {
        atoll__free(fx->moved[i]->move_to);
        fx->moved[i]->move_to = NULL;
    }
    fx->nmoved = 0;
    atoll__fx_drop_mail(w, m);
}

void
atoll__fx_end(atoll__worker *w, bool keep)
{
    atoll__fx *fx = &w->areas->fx;
    if (--fx->depth > 0)
        return;
    atoll__vj_use(NULL);
    /* Values first: undone, or marked changed, before the output is released, held
     * for the commit of those changes, or dropped. */
    atoll__docs_region_end(w, keep);
    if (!keep)
        drop(w, fx);
    else if (fx->log.len > 0 && atoll__docs_holding(w))
        atoll__docs_hold_region(w, &fx->log, &fx->mail);
    else
        atoll__fx_release_journal(w, &fx->log, &fx->mail);
    fx->log.len = 0;
    fx->nmoved = 0;
    fx->query = NULL;
    fx->req_session.v = 0;
    /* A burst does not pin its memory. */
    atoll__buf_shrink(&fx->log, 64 * 1024);
}

void
atoll__fx_fini(atoll__worker *w)
{
    atoll__fx *fx = &w->areas->fx;
    atoll__mail_free_list(atoll__mail_list_take(&fx->mail));
    atoll__vj_fini(&fx->journal);
    atoll__buf_fini(&fx->log);
    atoll__free(fx->moved);
}

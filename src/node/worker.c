/* worker.c -- a worker thread: its loop and the phases of a loop turn, starting and
 * stopping, and the calls into the modules above the node (worker.h has the design).
 */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define STOP_GRACE_MS 3000

#define EACH_MODULE(n, mod)                                                                 \
    for (const atoll__module *const *mod##_it = (n)->modules, *mod;                          \
         mod##_it != NULL && (mod = *mod##_it) != NULL; mod##_it++)

atoll__worker *
atoll__worker_of(atoll__node *n, atoll_session_id id)
{
    int wi = atoll__session_worker(id);
    return atoll__session_node(id) == n->id && wi < n->nworkers ? n->workers[wi] : NULL;
}

/* ---- a loop turn --------------------------------------------------------------------------- */

static void
on_wake(uv_async_t *a)
{
    atoll__mail_receive(a->data);
}

/* Before the loop blocks (after timers ran) and after it polled (after reads and
 * mail): run local mail, post the outboxes, write what the connections gathered. */
static void
end_of_phase(atoll__worker *w)
{
    EACH_MODULE(w->node, mod)
        if (mod->worker_phase_end)
            mod->worker_phase_end(w);
    atoll__mail_pump(w);
    /* Local mail ran game code too: its changes go now, not after the loop sleeps. */
    EACH_MODULE(w->node, mod)
        if (mod->worker_phase_end)
            mod->worker_phase_end(w);
    atoll__net_flush(&w->net);
}

static void
on_check(uv_check_t *h)
{
    end_of_phase(h->data);
}

static void
on_prepare(uv_prepare_t *h)
{
    end_of_phase(h->data);
}

static void
on_wheel_tick(uv_timer_t *t)
{
    atoll__worker *w = t->data;
    atoll__net_deadlines(&w->net);
    EACH_MODULE(w->node, mod)
        if (mod->worker_tick)
            mod->worker_tick(w);
}

/* ---- stopping ------------------------------------------------------------------------------ */

static void
on_stop_timer(uv_timer_t *t)
{
    atoll__worker *w = t->data;
    ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"shutdown grace over, dropping connections\" open=%zu",
              w->net.nconns);
    uv_stop(&w->loop);
}

static void
on_drained(atoll__net *net)
{
    atoll__worker *w = net->data;
    uv_stop(&w->loop);
}

static void
on_stop_mail(atoll__worker *w, atoll__mail *m)
{
    atoll__mail_free(m);
    if (w->stopping)
        return;
    w->stopping = true;
    /* Flush and close every connection; WebSocket clients get 1001 "going away". */
    if (w->net.nconns > 0)
        uv_timer_start(&w->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
    atoll__net_stop(&w->net, ATOLL_WS_CLOSE_GOING_AWAY);
}

static void *
worker_main(void *arg)
{
    atoll__worker *w = arg;
    atoll__mail_set_thread(w);
    atoll__log_set_thread(w->name);
    atoll__crash_thread_start(&w->watch, w->node->cfg->slow_ms);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    w->stopped = true;
    /* Close what is left (connections past the grace period, the worker's handles). */
    atoll__net_sweep(&w->net);
    /* The modules go last: their hooks run, whatever they send is dropped. */
    EACH_MODULE(w->node, mod)
        if (mod->worker_stopped)
            mod->worker_stopped(w);
    atoll__crash_thread_end();
    atoll__mail_set_thread(NULL);
    return NULL;
}

/* ---- life ---------------------------------------------------------------------------------- */

atoll__worker *
atoll__worker_new(atoll__node *n, int index)
{
    static bool stop_registered;
    if (!stop_registered) {
        atoll__mail_register(ATOLL_MAIL_STOP, on_stop_mail, NULL);
        stop_registered = true;
    }
    atoll__worker *w = atoll__calloc(1, sizeof *w);
    w->node = n;
    w->index = index;
    snprintf(w->name, sizeof w->name, "w%d", index);
    uv_loop_init(&w->loop);
    atoll__net_init(&w->net, &w->loop, &atoll__session_ops, &n->net_limits, &n->nconns);
    w->net.data = w;
    w->net.drained = on_drained;
    atoll__mail_worker_init(w, n->nworkers);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_check_init(&w->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, on_check);
    uv_prepare_init(&w->loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, on_prepare);
    uv_idle_init(&w->loop, &w->local_idle);
    w->local_idle.data = w;
    uv_timer_init(&w->loop, &w->stop_timer);
    w->stop_timer.data = w;
    uv_timer_init(&w->loop, &w->wheel_timer);
    w->wheel_timer.data = w;
    uv_timer_start(&w->wheel_timer, on_wheel_tick, ATOLL_NET_WHEEL_TICK_MS,
                   ATOLL_NET_WHEEL_TICK_MS);
    EACH_MODULE(n, mod)
        if (mod->worker_init)
            mod->worker_init(w);
    return w;
}

int
atoll__worker_listen(atoll__worker *w, const char *host, int port, int *bound_port)
{
    return atoll__net_listen(&w->net, host, port, bound_port);
}

int
atoll__worker_start(atoll__worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? ATOLL_OK : ATOLL_EIO;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void
atoll__worker_free(atoll__worker *w, atoll__stats *out)
{
    /* The thread has been joined: this thread now owns the loop. */
    uv_walk(&w->loop, close_walk, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    atoll__net_fini(&w->net);
    uv_loop_close(&w->loop);
    atoll__mail_worker_fini(w);
    EACH_MODULE(w->node, mod)
        if (mod->worker_fini)
            mod->worker_fini(w);
    atoll__uids_fini(w);
    atoll__free(w->slots);
    atoll__free(w->generations);
    atoll__free(w->free_slots);
    if (out) {
        *out = w->stats;
        out->accepted = w->net.stats.accepted;
        out->rejected_full = w->net.stats.rejected_full;
        out->closed = w->net.stats.closed;
    }
    atoll__free(w);
}

/* worker.h -- one worker thread (worker.c): its loop and the phases of a loop turn,
 * its connections (through the net layer), its mail, and the per-worker state of the
 * modules above the node (areas), which the worker holds without knowing.
 *
 * DESIGN. A node runs W workers. Each owns a libuv loop, its own listening socket on
 * the shared port (SO_REUSEPORT: the kernel spreads accepts), the sessions it
 * accepted, one shard of the uid registry, and the areas placed on it. Workers share
 * nothing mutable: they talk through mail (mail.h). A loop turn: timers (deadlines,
 * ticks, the 100 ms wheel), then before blocking the prepare phase runs local mail,
 * posts the outboxes and writes the connections' output; after polling (reads, mail,
 * writes) the check phase does the same again. So each turn ends with one write per
 * connection and one post per destination worker.
 *
 * Invariants: everything of a worker is touched only by its thread, except its
 * mailbox (mail.c) and, before the thread starts and after it is joined, by the node.
 */
#ifndef ATOLL_NODE_WORKER_H
#define ATOLL_NODE_WORKER_H

#include "../net/conn.h"
#include "mail.h"
#include "node.h"

struct atoll__area_worker; /* src/area: the areas of one worker */
struct atoll__uid_shard;   /* uids.c */

struct atoll__worker {
    atoll__node *node;
    int index;
    pthread_t thread;
    uv_loop_t loop;
    atoll__net net;           /* its connections (net.data is the worker) */
    bool stopping;
    bool stopped;             /* the loop has ended: mail sent now is dropped */
    uv_check_t flush_check;   /* after polling: local mail, outboxes, output */
    uv_prepare_t prepare;     /* before blocking (after timers): the same */
    uv_idle_t local_idle;     /* keeps the loop from blocking while local mail waits */
    uv_timer_t stop_timer;    /* forces the remaining conns closed on shutdown */
    uv_timer_t wheel_timer;   /* deadlines and the modules' 100 ms work */

    /* mail (mail.c) */
    atoll__mailbox mailbox;
    uv_async_t wake;          /* wakes the worker when its mailbox was empty */
    atoll__mail_list *outbox; /* per destination: mail of this loop turn */
    atoll__buf *out_batch;    /* per destination: SESS_OUT records of this turn */
    atoll__mail_list local;   /* mail to itself */
    /* per other node this turn has mail for: its records (wire.h), handed to the
     * cluster's link at the end of the turn */
    struct atoll__remote_out {
        int node;
        atoll__buf records;
    } *remote_out;
    int nremote_out;
    /* A free list of mail with room for a small body (mail.c). Mail comes and goes in batches of hundreds per
     * loop turn, which overflow glibc's per-thread caches (7 entries a size); a list
     * of our own made calls 20 % cheaper. Bounded. */
    atoll__mail *mail_pool;
    size_t mail_pool_len;

    /* sessions (session.c): id = worker | slot | generation */
    struct atoll__session **slots;
    uint32_t *generations;
    uint32_t nslots;
    uint32_t *free_slots;
    uint32_t nfree;

    /* uid registry shard (uids.c) */
    struct atoll__uid_shard *uids;
    size_t nuids;

    struct atoll__area_worker *areas; /* src/area's state of this worker */

    atoll__stats stats;       /* this worker's counters; its thread only */
    atoll__watch_slot watch;  /* the game code it runs, for the watchdog (core/crash.h) */
    char name[16];
};

atoll__worker *atoll__worker_new(atoll__node *n, int index);
/* Opens the worker's listener on host:port; *bound_port gets the real port. */
int atoll__worker_listen(atoll__worker *w, const char *host, int port, int *bound_port);
int atoll__worker_start(atoll__worker *w);
/* After the thread is joined: closes what is left, frees; out (may be NULL) gets the
 * worker's counters. */
void atoll__worker_free(atoll__worker *w, atoll__stats *out);
/* The worker that runs session id (NULL when the id names none). */
atoll__worker *atoll__worker_of(atoll__node *n, atoll_session_id id);

#endif /* ATOLL_NODE_WORKER_H */

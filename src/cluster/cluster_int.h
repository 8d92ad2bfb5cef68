/* cluster_int.h -- what the parts of the cluster module share (cluster.c, link.c): the
 * cluster thread's state, its table of peers, and the links to them. Not for the rest
 * of the program, which sees cluster.h.
 *
 * DESIGN. One thread per node runs the cluster: a libuv loop of its own holding the
 * links to the other nodes (link.c), the connections to Redis (redis.c) and the timers
 * of the heartbeat, the registry and the coordinator (cluster.c). Workers never block
 * on it: mail for another node is encoded by the worker that sends it (a loop turn's
 * records for one node in one buffer, src/node/mail.c) and handed over as a piece,
 * under a mutex, with one uv_async wake-up; the cluster thread seals each piece as one
 * chunk of the link and writes each link once per loop turn. What a link receives is
 * posted to the workers it is for as LINK mail, which they decode themselves (the
 * decoder of a peer's mail runs on the worker, beside the handler that uses it).
 *
 * Peers: every node of the registry in Redis is a peer, by node id. The node with the
 * lower id opens the link (so a pair has one); the other waits for it. Mail for a peer
 * without a link waits in the peer's queue until the link is up, at most
 * cluster.call_timeout_ms; then, or at once for a node the registry does not know or
 * has seen die, it goes back to the worker that sent it, which fails what waits for it
 * (src/area: a request answered 500, a call ECANCELED, an entry refused).
 */
#ifndef ATOLL_CLUSTER_INT_H
#define ATOLL_CLUSTER_INT_H

#include "../node/node.h"
#include "../node/worker.h"
#include "cluster.h"
#include "link_codec.h"
#include "redis.h"

/* Mail for one peer from one worker (or another thread: from -1), in records. */
typedef struct piece {
    struct piece *next;
    int to;
    int from;
    uint64_t deadline_ms;   /* it goes back to its sender when not sent by then */
    size_t len;
    uint8_t data[];
} piece;

/* A piece with this sender asks for the link to its peer to be cut. */
#define ATOLL__PIECE_DROP (-2)
/* A piece with this sender says worker `to` dropped everything (the node was declared
 * dead while it was away): it speaks for the node's new life from now on. */
#define ATOLL__PIECE_DROPPED (-3)

typedef struct link link;

typedef struct peer {
    bool alive;             /* in the registry, its lease running */
    bool foreign;           /* its record has another secret's fingerprint (said once) */
    bool ever;              /* was seen alive once (so a node that is gone is known dead) */
    bool draining;          /* its record says it is being drained (or stops) */
    char name[64];
    char advertise[128];
    unsigned roles;
    double load;
    int nworkers;
    link *link;             /* the link that carries its mail (up or being made) */
    piece *pending, *pending_tail; /* waiting for a link */
    uint64_t next_try_ms;   /* the next connection attempt (we are the lower id) */
    uint32_t backoff_ms;
} peer;

struct atoll__cluster {
    atoll__config *cfg;
    atoll__node *node;      /* set by the module's start */
    int id;                 /* this node's id, taken from the registry */
    atoll__link_key key;
    atoll__link_peer me;
    atoll__redis *redis;

    uv_loop_t loop;
    pthread_t thread;
    bool running;
    uv_async_t wake;        /* pieces to send, or a stop */
    uv_prepare_t flush;     /* writes every link with output, once per loop turn */
    uv_timer_t tick;        /* links: pings, silence, deadlines, connections */
    uv_timer_t beat;        /* the lease, the registry, the coordinator */
    uv_tcp_t listener;      /* links from other nodes, on node.advertise */

    pthread_mutex_t lock;   /* inq, stop, the placement table, registry_read */
    pthread_cond_t read_cond; /* the registry was read once (the start waits for it) */
    bool registry_read;
    char fingerprint[17];   /* of the link key, in this node's record: a record with
                             * another one is a node of another secret, ignored */
    piece *inq, *inq_tail;
    bool stop;
    /* Declared dead while it was away (cluster thread): what these workers send is
     * stale until each says it dropped all it ran; it goes nowhere meanwhile. */
    bool stale_worker[256]; /* node.workers is at most 255 */

    peer peers[ATOLL_NODE_ID_MAX + 1];
    link *links;            /* every link, in any state */
    uint8_t readbuf[64 * 1024];

    /* Placement (any thread, under lock): the live area nodes and their loads. */
    struct place_entry {
        int node;
        int nworkers;
        double load;
    } *placeable;
    int nplaceable;

    /* Load measurement (cluster thread). */
    uint64_t cpu_ns_last, cpu_at_ms;
    double load;

    /* This node's record (cluster thread). */
    bool claim_record;      /* the next heartbeat writes it whatever is there */
    bool checking_record;   /* it was gone: the directory is asked what that means */
    uint64_t redis_ok_since_ms; /* Redis has answered every heartbeat since (0: it did not) */

    /* A link that was up closed: its peer may be dead. Until this time the registry is
     * read every tick (100 ms), not every heartbeat, so that its death is seen as soon
     * as its lease ends. */
    uint64_t suspect_until_ms;

    /* Coordinator (cluster thread). */
    bool coordinator;       /* holds the lease now */
    bool alive_seen[ATOLL_NODE_ID_MAX + 1];
    int beats;

    /* Operations (control.c). Requests of the admin API, any thread, under lock. */
    struct ctl_req *ctlq, *ctlq_tail;
    /* Moves the coordinator asked for and that have not ended (under lock: their
     * answers come on workers). */
    int moves_in_flight;
    char (*moving)[ATOLL_AREA_ID_MAX + 1];
    size_t nmoving, cap_moving;
    uint64_t rebalance_quiet_until_ms; /* no rebalancing before (cluster thread) */
    bool rebalancing; /* a rebalance is under way: it goes on until rebalance_stop */
    int rebalance_apart_beats; /* heartbeats in a row the loads were apart */
    /* This node is being drained (its record says so; placement avoids it). */
    bool draining, drain_stop, stopping_drained;
    uint64_t areastats_at_ms;          /* its areas' stats were last published then */
    struct area_busy *busy;            /* per area: handler time at the last publish */
    size_t nbusy;
};

/* link.c, cluster thread only */
int atoll__links_listen(atoll__cluster *c, char *err, size_t errlen);
/* Takes the queued pieces of the workers and sends or parks each. */
void atoll__links_take(atoll__cluster *c, piece *list);
/* Every 100 ms: pings, silent links, expired pieces, connection attempts. */
void atoll__links_tick(atoll__cluster *c);
/* Writes every link that has output. */
void atoll__links_flush(atoll__cluster *c);
/* This node was declared dead while it was away: every piece waiting for a link is
 * stale, and so is every piece from a worker until it says it dropped what it ran. */
void atoll__links_silence(atoll__cluster *c);
/* The registry says peer id is gone: its link is cut, its mail goes back. */
void atoll__links_peer_dead(atoll__cluster *c, int id);
/* A worker could not decode what peer id sent: its link is cut. */
void atoll__links_drop_peer(atoll__cluster *c, int id, const char *why);
/* control.c, cluster thread: the requests of the admin API that came; every heartbeat,
 * this node's drain and areas' stats, and (coordinator) drains and rebalancing. */
void atoll__control_run(atoll__cluster *c);
void atoll__control_beat(atoll__cluster *c);
void atoll__control_fini(atoll__cluster *c);
/* The id of a node by name or number ("a1", "3"); 0 when no live node has it. */
int atoll__control_node_id(const atoll__cluster *c, const char *name);

/* Closes every link and the listener (the loop then ends once they are closed). */
void atoll__links_close(atoll__cluster *c);
/* Mail still waiting at stop goes back to nobody: freed. */
void atoll__links_fini(atoll__cluster *c);

#endif /* ATOLL_CLUSTER_INT_H */

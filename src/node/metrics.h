/* metrics.h -- the node's counters and histograms, read by GET /metrics (the admin
 * server's thread) in the Prometheus text format.
 *
 * Any thread adds to them; nothing here takes a lock. Each thread writes a shard of
 * its own (a thread picks one of METRICS_SHARDS the first time it counts), in relaxed
 * atomics, so that workers counting at once never share a cache line; the reader sums
 * the shards. Counts are exact; a scrape sees each counter at some moment of its own,
 * which is all the text format promises.
 *
 * Requests and errors are counted by route. Routes are the game's (its area types and
 * their handlers), so their number is bounded by the game, but a table that grows with
 * what it is given must have a limit: past ATOLL_METRICS_ROUTES_MAX routes, the rest
 * are counted under route="other".
 */
#ifndef ATOLL_METRICS_H
#define ATOLL_METRICS_H

#include "../core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATOLL_METRICS_ROUTES_MAX 256 /* distinct route labels; more are "other" */
#define ATOLL_METRICS_ROUTE_MAX 96   /* bytes of one route label (longer: cut) */

typedef enum {
    ATOLL_CTR_CONNS_ACCEPTED,    /* client connections accepted */
    ATOLL_CTR_CONNS_CLOSED,      /* ... and closed */
    ATOLL_CTR_SESSIONS_TCP,      /* connections past the Pomelo handshake, raw TCP */
    ATOLL_CTR_SESSIONS_WS,       /* ... WebSocket */
    ATOLL_CTR_SESSIONS_TCP_CLOSED, /* ... and closed (the two just above) */
    ATOLL_CTR_SESSIONS_WS_CLOSED,
    ATOLL_CTR_COMMITS,           /* store commits that succeeded */
    ATOLL_CTR_COMMIT_FAILURES,   /* ... that failed (kept, tried again) */
    ATOLL_CTR_MOVES_STARTED,     /* moves of an area away from this node begun */
    ATOLL_CTR_MOVES_OUT,         /* areas this node handed to another */
    ATOLL_CTR_MOVES_IN,          /* areas another node handed to this one */
    ATOLL_CTR_MOVES_FAILED,      /* moves out that left the area here (or reclaimed) */
    ATOLL_CTR_MOVES_LOST,        /* moves out that ended with the area given elsewhere */
    ATOLL_CTR_LINK_CUTS,         /* node links cut (silence, overrun, bad input) */
    ATOLL_CTR_N
} atoll__ctr;

typedef enum {
    ATOLL_HIST_HANDLER,    /* seconds in one handler run (sampled runs) */
    ATOLL_HIST_TICK,       /* seconds of one area tick */
    ATOLL_HIST_COMMIT_LAG, /* seconds from a document's write to its commit */
    ATOLL_HIST_COMMIT_DOCS,/* documents in one store commit */
    ATOLL_HIST_MAIL,       /* mail a worker found waiting when it woke */
    ATOLL_HIST_MOVE_PAUSE, /* seconds a moved area stood still (frozen to running) */
    ATOLL_HIST_N
} atoll__hist;

typedef enum {
    ATOLL_GAUGE_LINK_QUEUED_BYTES,  /* bytes waiting in node links' output */
    ATOLL_GAUGE_LINK_PENDING_BYTES, /* bytes of mail waiting for a link to come up */
    ATOLL_GAUGE_N
} atoll__gauge;

/* The link to one other node, as the cluster thread saw it at its last tick. */
#define ATOLL_METRICS_PEERS_MAX 64 /* peers listed by name; the rest are only in the sums */
typedef struct {
    char name[64];    /* the peer's node name (its id in decimal until it is known) */
    bool up;          /* the link is up (handshake done) */
    uint64_t queued;  /* bytes waiting to be written on it */
    uint64_t pending; /* bytes of mail waiting for it to come up */
} atoll__metric_peer;

void atoll__metric_add(atoll__ctr c, uint64_t n);
/* v in nanoseconds for the time histograms, in units for the others. */
void atoll__metric_observe(atoll__hist h, uint64_t v);
void atoll__metric_set(atoll__gauge g, uint64_t v);
/* Replaces the table of peers (at most ATOLL_METRICS_PEERS_MAX of them are kept). */
void atoll__metric_peers(const atoll__metric_peer *peers, int n);
/* One request of a client ran (error false) or was answered with an error (true). */
void atoll__metric_route(const char *route, bool error);

/* Appends every metric in the text format, each sample labelled node="node". */
void atoll__metrics_write(atoll__buf *out, const char *node);
/* A label's value escaped as the text format wants it (\, " and newline). */
void atoll__metrics_put_label(atoll__buf *out, const char *v);

/* Tests only: back to zero (no other thread may count meanwhile). */
void atoll__metrics_reset(void);

#endif /* ATOLL_METRICS_H */

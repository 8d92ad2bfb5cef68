/* session.h -- sessions: the Pomelo protocol of one client connection on its gate
 * worker (session.c), the uid registry (uids.c), and the one way bytes reach a client
 * (atoll__session_deliver).
 *
 * A session is a connection of the net layer (its first member) plus the Pomelo state
 * machine, the rate limit, the bound uid and the cached route to the player's area.
 * Session ids carry the node, the worker, a slot and a generation (mail.h): a stale
 * id never matches, so mail that names a session is safe to deliver late.
 *
 * States and what each accepts (Pomelo's rules):
 *   INITED    HANDSHAKE -> answer, WAIT_ACK (or {"code":500} and close); the rest ignored
 *   WAIT_ACK  HANDSHAKE_ACK -> WORKING, one HEARTBEAT sent, heartbeat deadline started
 *   WORKING   HEARTBEAT (answered at once, deadline restarted), DATA (dispatched)
 * A KICK package from a client is a type the server has no handler for: close.
 *
 * DATA: rate limit (token bucket), decode, resolve the route (a compressed code not in
 * the dictionary, or a route without a dot, is dropped silently as Pomelo does), check
 * the body (not JSON: handled as {}), then the route's handler on this worker (the
 * node's route table). Requests to unknown routes get {"code":500,...}; notifies never
 * get a response.
 *
 * gate.entry {"uid":...} (with auth.jwt_secret, {"token":...} and the uid is the
 * token's: a bad token is answered 401 and closes the session, auth.h) first asks the
 * modules above whether the session may enter as that uid (the admit hook: the game's
 * entry hook), and only an admitted entry binds the session to the uid through the
 * uid's owner worker (uids.c): a second session with the same uid kicks the first. Then
 * the enter hook (node.h) enters the game. A refused entry touches nothing of the uid.
 */
#ifndef ATOLL_NODE_SESSION_H
#define ATOLL_NODE_SESSION_H

#include "worker.h"

typedef enum atoll__session_phase {
    ATOLL_SESSION_INITED,   /* waiting for the handshake */
    ATOLL_SESSION_WAIT_ACK, /* handshake answered, waiting for the ack */
    ATOLL_SESSION_WORKING,  /* requests, notifies, heartbeats */
} atoll__session_phase;

struct atoll__session {
    atoll__conn conn;         /* first: the net layer allocates the whole session */
    atoll__worker *worker;
    atoll_session_id id;
    atoll__session_phase phase;
    double tokens;            /* rate-limit bucket */
    uint64_t tokens_ms;
    char *uid;                /* bound user id, owned; NULL until gate.entry */
    bool binding;             /* a BIND is in flight */
    void *admitted;           /* the modules' choice for an admitted entry (hooks.admit) */
    struct atoll__admission *admitting; /* an entry waiting for an admission answer */
    bool kicked;              /* over the rate limit: its kick is queued, input ignored */
    bool no_resume;           /* closed by the server (a kick): its player leaves at once */
    /* The gate's cached route to the player's area (kept by src/area). */
    bool entering;            /* an AREA_ENTER is in flight */
    bool guest;               /* entered as a guest (no uid bound) */
    atoll__mail_list waiting; /* messages sent while entering, for the area once known */
    uint32_t nwaiting, waiting_bytes;
    uint64_t area;            /* 0: in none */
    atoll__addr area_at;      /* the worker that owns it */
    int area_type;
    char area_id[ATOLL_AREA_ID_MAX + 1]; /* its id: the area is entered again by id
                                          * when its node dies (a cluster's failover) */
    bool rejoining;           /* entering its area again after its node died */
    /* The node its last FENCE went to (a move's old owner, 0: none): if it dies, what
     * the session sent there is lost with it, and the session enters its area again. */
    uint16_t fence_node;
    uint64_t rejoin_since_ms;
    uint64_t rejoin_next_ms;  /* when its entry is sent (again) */
    /* Requests sent to an area on another node and not answered yet, oldest first,
     * numbered (mail's epoch) 1, 2, ... per session: sent again when that node dies
     * and the area comes back, where the numbers make each one run once (src/area:
     * exact.c). Kept by src/area, answered ones dropped here as their responses pass. */
    atoll__mail_list inflight;
    uint32_t ninflight;
    uint64_t rq_next;
};

/* True while the session can take output: past the handshake and not closing. */
static inline bool
atoll__session_live(const atoll__session *s)
{
    return s->phase == ATOLL_SESSION_WORKING && s->conn.state != ATOLL_CONN_CLOSING &&
           !s->conn.closed_handles;
}

/* The connection operations the net layer calls (session.c). */
extern const atoll__conn_ops atoll__session_ops;
/* Registers the session layer's mail kinds (KICK, BROADCAST, SESS_OUT, SESS_PUSH, and
 * uids.c's BIND, BOUND, UNBIND), and gate.entry in n->routes. */
void atoll__session_start(atoll__node *n);

/* The session with this id on worker w (only on w's thread), or NULL. */
atoll__session *atoll__session_find(atoll__worker *w, atoll_session_id id);

/* The one way bytes reach a client: appends encoded packages to session id's output
 * when it lives on w and can take them (else they are dropped: the client is gone, or
 * was dropped as a slow reader). Returns whether they were taken. */
bool atoll__session_deliver(atoll__worker *w, atoll_session_id id, const void *p, size_t n);

/* The most requests of one session kept for sending again (past it, a request is not
 * kept: after a failover nobody answers it, and the client's timeout applies). */
#define ATOLL_SESSION_INFLIGHT_MAX 1024

/* ---- answers of gate.entry (on the session's worker) -------------------------------------- */

/* The request that gate.entry's answer goes to (request_id 0 with reply false: a
 * notify, answered nothing). */
static inline atoll__req
atoll__entry_req(atoll__session *s, uint32_t request_id, bool reply)
{
    atoll__req req = {.session = s, .worker = s->worker, .id = request_id,
                      .type = reply ? ATOLL_MSG_REQUEST : ATOLL_MSG_NOTIFY, .route = "gate.entry"};
    return req;
}

/* Replies to a request (no-op for a notify). body must be JSON; NULL/0 sends "{}". */
void atoll__reply(atoll__req *req, const char *body, size_t len);
/* Replies {"code":<code>,"message":"<msg>"} (no-op for a notify). */
void atoll__reply_error(atoll__req *req, int code, const char *msg);
/* Answers {"code":code,"message":msg} and closes the connection once it is written
 * (a refused login or resume: 401). */
void atoll__reply_refuse(atoll__req *req, int code, const char *msg);
/* BIND's status for a binding that enters nothing (gate.resume: the player is found
 * already): BOUND then only records the uid on the session. */
#define ATOLL__BIND_ONLY 1
/* Sends a KICK {"reason":...} (WORKING only) and closes after the output is written. */
void atoll__kick(atoll__session *s, const char *reason);

/* ---- uids.c ------------------------------------------------------------------------------- */

/* Worker that owns a uid in the registry. */
atoll__worker *atoll__uid_owner(atoll__node *n, const char *uid);
/* gate.entry: binds the uid of the body (or of its token), then the enter hook. */
void atoll__gate_entry(atoll__req *req);
/* hooks.admit's return for "the answer comes later". */
#define ATOLL__ADMIT_LATER 1
/* The admission of session id's entry is decided (on its worker): code 200 binds the uid
 * and enters as an admitted entry does; any other code answers gate.entry
 * {"code":code,"message":msg} and touches nothing. A session that went is skipped. */
void atoll__gate_admitted(atoll__worker *w, atoll_session_id id, int code, const char *msg);
/* The session closed: releases its uid. */
void atoll__uid_release(atoll__session *s);
void atoll__uids_register(void);
void atoll__uids_fini(atoll__worker *w);

#endif /* ATOLL_NODE_SESSION_H */

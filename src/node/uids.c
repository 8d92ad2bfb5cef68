/* uids.c -- the uid registry of a node, and gate.entry, which binds a session to a uid
 * (with auth.jwt_secret, the uid of the signed token it carries: auth.h).
 *
 * The registry is sharded over the workers by hash(uid). A BIND goes to the shard
 * owner, which records uid -> session and, when another session held the uid, sends
 * that session's worker a KICK; it answers the binding session's worker with BOUND,
 * which carries the gate.entry body on to the enter hook (node.h). UNBIND removes the
 * entry only if it still names the closing session, so a late UNBIND of a kicked
 * session cannot remove its successor. A BOUND that finds its session gone turns into
 * the UNBIND that releases the uid again.
 */
#include "auth.h"
#include "session.h"
#include "../core/map.h"

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#define UID_MAX ATOLL_UID_MAX

/* One uid of a shard; entries whose uids share a hash are chained. */
typedef struct atoll__uid_entry {
    struct atoll__uid_entry *next;
    atoll_session_id session;
    char uid[];
} atoll__uid_entry;

/* A worker's shard: hash(uid) -> chain of entries. */
typedef struct atoll__uid_shard {
    atoll__map by_hash;
} uid_shard;

static uid_shard *
shard_of(atoll__worker *w)
{
    if (w->uids == NULL)
        w->uids = atoll__calloc(1, sizeof(uid_shard));
    return w->uids;
}

atoll__worker *
atoll__uid_owner(atoll__node *n, const char *uid)
{
    return n->workers[atoll__hash_str(uid) % (uint64_t)n->nworkers];
}

static atoll__uid_entry *
uid_find(uid_shard *sh, const char *uid, uint64_t h)
{
    for (atoll__uid_entry *e = atoll__map_get(&sh->by_hash, h); e != NULL; e = e->next)
        if (strcmp(e->uid, uid) == 0)
            return e;
    return NULL;
}

static void
uid_remove(uid_shard *sh, atoll__uid_entry *e, uint64_t h)
{
    atoll__uid_entry *head = atoll__map_get(&sh->by_hash, h);
    if (head == e) {
        if (e->next)
            atoll__map_put(&sh->by_hash, h, e->next);
        else
            atoll__map_del(&sh->by_hash, h);
    } else {
        atoll__uid_entry *p = head;
        while (p->next != e)
            p = p->next;
        p->next = e->next;
    }
    atoll__free(e);
}

void
atoll__uids_fini(atoll__worker *w)
{
    uid_shard *sh = w->uids;
    if (sh == NULL)
        return;
    for (size_t i = 0; i < sh->by_hash.cap; i++) {
        if (sh->by_hash.slots[i].key == 0)
            continue;
        for (atoll__uid_entry *e = sh->by_hash.slots[i].value, *next; e != NULL; e = next) {
            next = e->next;
            atoll__free(e);
        }
    }
    atoll__map_fini(&sh->by_hash);
    atoll__free(sh);
    w->uids = NULL;
}

/* ---- the mail of the registry ------------------------------------------------------------ */

static void
post_to_session(atoll__node *n, atoll_session_id id, atoll__mail *m)
{
    atoll__worker *w = atoll__worker_of(n, id);
    if (w == NULL) {
        atoll__mail_free(m);
        return;
    }
    m->session = id;
    atoll__worker_post(w, m);
}

static void
on_bind(atoll__worker *w, atoll__mail *m)
{
    uid_shard *sh = shard_of(w);
    uint64_t h = atoll__hash_str(m->uid);
    atoll__uid_entry *e = uid_find(sh, m->uid, h);
    if (e != NULL && e->session.v != m->session.v) {
        /* A resume takes the player over from a connection the server still holds
         * (half dead, most likely); a login replaces the other session. */
        const char *why = m->status == ATOLL__BIND_ONLY ? "resumed elsewhere" : "duplicate login";
        post_to_session(w->node, e->session, atoll__kick_new(e->session, why));
        e->session = m->session;
    } else if (e == NULL) {
        size_t len = strlen(m->uid);
        e = atoll__malloc(sizeof *e + len + 1);
        memcpy(e->uid, m->uid, len + 1);
        e->session = m->session;
        e->next = atoll__map_get(&sh->by_hash, h);
        atoll__map_put(&sh->by_hash, h, e);
        w->nuids++;
    }
    m->type = ATOLL_MAIL_BOUND;
    post_to_session(w->node, m->session, m);
}

static void
on_unbind(atoll__worker *w, atoll__mail *m)
{
    uid_shard *sh = shard_of(w);
    uint64_t h = atoll__hash_str(m->uid);
    atoll__uid_entry *e = uid_find(sh, m->uid, h);
    if (e != NULL && e->session.v == m->session.v) {
        uid_remove(sh, e, h);
        w->nuids--;
    }
    /* Whatever this mail was before (a BOUND whose session had gone carries the whole
     * gate.entry body), atoll__mail_free releases all of it. */
    atoll__mail_free(m);
}

/* The enter hook when no module above gives one (a node run without the area
 * runtime): the uid is bound, there is no area to enter. */
static void
enter_default(atoll__session *s, uint32_t request_id, bool reply, bool again)
{
    atoll__req req = atoll__entry_req(s, request_id, reply);
    if (again) {
        atoll__reply(&req, "{\"code\":200}", 12);
        return;
    }
    atoll__buf b = ATOLL__BUF_INIT;
    static const char head[] = "{\"code\":200,\"uid\":";
    atoll__buf_append(&b, head, sizeof head - 1);
    atoll__json_put_string(&b, s->uid, strlen(s->uid));
    atoll__buf_push(&b, '}');
    atoll__reply(&req, (const char *)atoll__buf_data(&b), b.len);
    atoll__buf_fini(&b);
}

static void
enter(atoll__session *s, uint32_t request_id, bool reply, const atoll_value *body, bool again)
{
    const atoll__session_hooks *hk = &s->worker->node->hooks;
    if (hk->enter != NULL)
        hk->enter(s, request_id, reply, body, again);
    else
        enter_default(s, request_id, reply, again);
}

static void
on_bound(atoll__worker *w, atoll__mail *m)
{
    atoll__session *s = atoll__session_find(w, m->session);
    if (s == NULL || !atoll__session_live(s)) {
        /* The session went away while binding: release the uid again. The entry body
         * is not needed for that; it need not cross to the uid's owner either. */
        m->type = ATOLL_MAIL_UNBIND;
        atoll_unref(m->value);
        m->value = NULL;
        atoll__worker_post(atoll__uid_owner(w->node, m->uid), m);
        return;
    }
    s->binding = false;
    atoll__free(s->uid); /* NULL: gate.entry and gate.resume bind only unbound sessions */
    s->uid = m->uid;
    m->uid = NULL;
    if (m->status != ATOLL__BIND_ONLY)
        enter(s, m->request_id, m->reply, m->value, false);
    atoll__mail_free(m);
}

void
atoll__uids_register(void)
{
    atoll__mail_register(ATOLL_MAIL_BIND, on_bind, NULL);
    atoll__mail_register(ATOLL_MAIL_BOUND, on_bound, NULL);
    atoll__mail_register(ATOLL_MAIL_UNBIND, on_unbind, NULL);
}

/* ---- gate.entry and the session's end -------------------------------------------------------- */

/* A login the token check refused: {"code":401,"message":why}, then the connection
 * closes once that answer is written (atoll__conn_close flushes first). Not a KICK: the
 * client asked and is answered; a client that retries with a good token reconnects. */
static void
refuse_login(atoll__req *req, const char *why)
{
    atoll__session *s = req->session;
    ATOLL_LOG_CLIENT(ATOLL_LOG_INFO, "msg=\"login refused, closing connection\" session=%llx "
                     "reason=\"%s\"", (unsigned long long)s->id.v, why);
    atoll__reply_refuse(req, 401, why);
}

/* The uid gate.entry enters as, in uid[0..UID_MAX]. With auth.jwt_secret it is the
 * "sub" of the body's "token" (auth.h), never the body's "uid": the body the game's
 * entry hook then sees has "uid" set to it and no "token" (a credential has no business
 * travelling further). Without, it is the body's "uid" as the client sent it. Returns
 * false when the entry was answered (and, for a bad token, the connection closed). */
static bool
entry_uid(atoll__req *req, json_t *root, char *uid)
{
    const atoll__jwt_key *key = req->session->worker->node->jwt;
    uid[0] = '\0';
    if (key != NULL) {
        const json_t *t = json_is_object(root) ? json_object_get(root, "token") : NULL;
        const char *why = "gate.entry needs a token";
        if (json_is_string(t) &&
            atoll__jwt_verify(json_string_value(t), json_string_length(t), key,
                              (int64_t)time(NULL), uid, UID_MAX + 1, &why) == ATOLL_OK) {
            json_object_del(root, "token");
            json_object_set_new(root, "uid", json_string(uid));
            return true;
        }
        refuse_login(req, why);
        return false;
    }
    const json_t *v = json_is_object(root) ? json_object_get(root, "uid") : NULL;
    if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= UID_MAX &&
        memchr(json_string_value(v), '\0', json_string_length(v)) == NULL)
        snprintf(uid, UID_MAX + 1, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(uid, UID_MAX + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (uid[0] == '\0') {
        atoll__reply_error(req, 500, "gate.entry needs a uid (string of 1 to 128 bytes)");
        return false;
    }
    return true;
}

/* An entry waiting for its admission (ATOLL__ADMIT_LATER). */
struct atoll__admission {
    uint32_t request_id;
    bool reply;
    json_t *body;              /* the gate.entry body, for the binding */
    char uid[UID_MAX + 1];
};
typedef struct atoll__admission atoll__admission;

/* An admitted entry: binds uid to s through the uid's owner worker (which kicks a
 * session holding it), then the enter hook. Takes body. */
static void
bind_uid(atoll__session *s, uint32_t request_id, bool reply, const char *uid, json_t *body)
{
    s->binding = true;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_BIND, 0);
    m->session = s->id;
    m->request_id = request_id;
    m->reply = reply;
    m->uid = atoll__strndup(uid, strlen(uid));
    /* The body travels with the binding: the game's entry hook reads it. */
    m->value = (atoll_value *)body;
    atoll__worker_post(atoll__uid_owner(s->worker->node, uid), m);
}

void
atoll__gate_entry(atoll__req *req)
{
    atoll__session *s = req->session;
    json_error_t err;
    json_t *root = json_loadb((const char *)req->body, req->body_len, 0, &err);
    char uid[UID_MAX + 1];
    if (!entry_uid(req, root, uid)) {
        json_decref(root);
        return;
    }
    if (uid[0] == '~') { /* guests' ids: nobody logs in as a guest of another session */
        json_decref(root);
        atoll__reply_error(req, 500, "uids that start with ~ are reserved for guests");
        return;
    }
    if (s->uid != NULL) {
        if (strcmp(s->uid, uid) != 0)
            atoll__reply_error(req, 500, "session already bound to another uid");
        else
            enter(s, req->id, req->type == ATOLL_MSG_REQUEST, (atoll_value *)root, true);
        json_decref(root);
        return;
    }
    if (s->binding || s->entering) {
        /* Also while a guest's entry or a gate.resume is on its way: binding a uid now
         * would kick that uid's session for an entry that is refused anyway. */
        json_decref(root);
        atoll__reply_error(req, 500, "entry already in progress");
        return;
    }
    /* Admission first: a refused entry must not kick the session that holds the uid,
     * nor bind this one to it. */
    const atoll__session_hooks *hk = &s->worker->node->hooks;
    char why[160] = "";
    int rc = hk->admit ? hk->admit(s, uid, (const atoll_value *)root, why, sizeof why) : 0;
    if (rc == ATOLL__ADMIT_LATER) {
        /* The game asks someone (an area) first: the entry waits on the session, which
         * takes no other entry meanwhile. */
        atoll__admission *a = atoll__calloc(1, sizeof *a);
        a->request_id = req->id;
        a->reply = req->type == ATOLL_MSG_REQUEST;
        a->body = root;
        snprintf(a->uid, sizeof a->uid, "%s", uid);
        s->admitting = a;
        s->binding = true;
        return;
    }
    if (rc != 0) {
        json_decref(root);
        atoll__reply_error(req, 500, why[0] ? why : "entry refused");
        return;
    }
    bind_uid(s, req->id, req->type == ATOLL_MSG_REQUEST, uid, root);
}

void
atoll__gate_admitted(atoll__worker *w, atoll_session_id id, int code, const char *msg)
{
    atoll__session *s = atoll__session_find(w, id);
    if (s == NULL || s->admitting == NULL)
        return; /* gone: its close freed the waiting entry */
    atoll__admission *a = s->admitting;
    s->admitting = NULL;
    if (code == 200 && atoll__session_live(s)) {
        bind_uid(s, a->request_id, a->reply, a->uid, a->body);
    } else {
        s->binding = false;
        atoll__free(s->admitted); /* the area the game chose for it */
        s->admitted = NULL;
        atoll__req req = atoll__entry_req(s, a->request_id, a->reply);
        atoll__reply_error(&req, code == 200 ? 500 : code, msg ? msg : "entry refused");
        json_decref(a->body);
    }
    atoll__free(a);
}

void
atoll__uid_release(atoll__session *s)
{
    if (s->admitting != NULL) { /* closed while its admission was asked */
        json_decref(s->admitting->body);
        atoll__free(s->admitting);
        s->admitting = NULL;
    }
    if (s->uid == NULL)
        return;
    atoll__mail *m = atoll__mail_new(ATOLL_MAIL_UNBIND, 0);
    m->session = s->id;
    m->uid = s->uid;
    s->uid = NULL;
    atoll__worker_post(atoll__uid_owner(s->worker->node, m->uid), m);
}

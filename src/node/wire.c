/* wire.c -- encoding mail to bytes and decoding it back (the format is in wire.h).
 *
 * Hand-written rather than a schema library: the records are flat, a handful of fixed
 * fields, and the decoder is on the path of every mail between nodes (and between
 * workers with node.loopback_links), where it must not allocate more than the mail it
 * builds. docs/design/dependencies.md says more.
 */
#include "wire.h"
#include "../value/value.h"

#include <stddef.h>
#include <stdio.h>

/* Fields each kind must carry to be handled at all. */
static const uint32_t required[ATOLL_MAIL_KINDS] = {
    [ATOLL_MAIL_BIND] = ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID,
    [ATOLL_MAIL_BOUND] = ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID,
    [ATOLL_MAIL_UNBIND] = ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID,
    [ATOLL_MAIL_KICK] = ATOLL_WIRE_F_SESSION,
    [ATOLL_MAIL_BROADCAST] = ATOLL_WIRE_F_SHARED,
    [ATOLL_MAIL_SESS_OUT] = 0,
    [ATOLL_MAIL_SESS_PUSH] = ATOLL_WIRE_F_SHARED,
    [ATOLL_MAIL_AREA_CREATE] = ATOLL_WIRE_F_FROM,
    [ATOLL_MAIL_AREA_ENTER] = ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID,
    [ATOLL_MAIL_AREA_REQ] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_SESSION,
    [ATOLL_MAIL_AREA_LEAVE] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_SESSION,
    [ATOLL_MAIL_AREA_FENCE] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_SESSION,
    [ATOLL_MAIL_AREA_MOVE_IN] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_PAYLOAD,
    [ATOLL_MAIL_AREA_CALL] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_WORKER,
    [ATOLL_MAIL_AREA_REPLY] = ATOLL_WIRE_F_CALL_ID,
    [ATOLL_MAIL_SESS_ROUTE] = ATOLL_WIRE_F_SESSION,
    [ATOLL_MAIL_DIR_ANSWER] = ATOLL_WIRE_F_CALL_ID,
    [ATOLL_MAIL_DIR_INVALIDATE] = ATOLL_WIRE_F_FROM | ATOLL_WIRE_F_EPOCH,
    [ATOLL_MAIL_AREA_RESUME] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_SESSION | ATOLL_WIRE_F_UID |
                               ATOLL_WIRE_F_DATA,
    [ATOLL_MAIL_AREA_EVICT] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_UID,
    /* No STATUS: a move's target node is there, but a players list's HANDOFF has none
     * (the owner refuses a move to node 0 as to no live node). */
    [ATOLL_MAIL_AREA_HANDOFF] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_FROM | ATOLL_WIRE_F_CALL_ID,
    [ATOLL_MAIL_AREA_MIGRATE] = ATOLL_WIRE_F_AREA | ATOLL_WIRE_F_FROM | ATOLL_WIRE_F_WORKER |
                                ATOLL_WIRE_F_EPOCH | ATOLL_WIRE_F_PAYLOAD,
    [ATOLL_MAIL_AREA_MIGRATED] = ATOLL_WIRE_F_AREA,
    [ATOLL_MAIL_AREA_HANDOFF_DONE] = ATOLL_WIRE_F_CALL_ID | ATOLL_WIRE_F_FROM,
};

/* ---- little-endian integers ------------------------------------------------------------- */

void
atoll__wire_put_u16(atoll__buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    atoll__buf_append(b, x, 2);
}

void
atoll__wire_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void
atoll__wire_store_u64(uint8_t *p, uint64_t v)
{
    atoll__wire_store_u32(p, (uint32_t)v);
    atoll__wire_store_u32(p + 4, (uint32_t)(v >> 32));
}

void
atoll__wire_put_u32(atoll__buf *b, uint32_t v)
{
    uint8_t x[4];
    atoll__wire_store_u32(x, v);
    atoll__buf_append(b, x, 4);
}

void
atoll__wire_put_u64(atoll__buf *b, uint64_t v)
{
    uint8_t x[8];
    atoll__wire_store_u64(x, v);
    atoll__buf_append(b, x, 8);
}

static bool
need(atoll__wire_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return false;
    }
    return true;
}

bool
atoll__wire_get_u8(atoll__wire_reader *r, uint8_t *v)
{
    if (!need(r, 1))
        return false;
    *v = r->p[0];
    r->p++;
    r->left--;
    return true;
}

bool
atoll__wire_get_u16(atoll__wire_reader *r, uint16_t *v)
{
    if (!need(r, 2))
        return false;
    *v = (uint16_t)(r->p[0] | r->p[1] << 8);
    r->p += 2;
    r->left -= 2;
    return true;
}

bool
atoll__wire_get_u32(atoll__wire_reader *r, uint32_t *v)
{
    if (!need(r, 4))
        return false;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return true;
}

bool
atoll__wire_get_u64(atoll__wire_reader *r, uint64_t *v)
{
    uint32_t lo, hi;
    if (!atoll__wire_get_u32(r, &lo) || !atoll__wire_get_u32(r, &hi))
        return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

bool
atoll__wire_get_bytes(atoll__wire_reader *r, size_t n, const uint8_t **p)
{
    if (!need(r, n))
        return false;
    *p = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

void
atoll__wire_put_json(atoll__buf *b, const atoll_value *v)
{
    size_t at = b->len;
    atoll__wire_put_u32(b, 0);
    if (v == NULL)
        atoll__buf_append(b, "null", 4);
    else
        atoll__value_write(b, v);
    atoll__wire_store_u32(atoll__buf_data(b) + at, (uint32_t)(b->len - at - 4));
}

bool
atoll__wire_get_json(atoll__wire_reader *r, size_t n, atoll_value **v)
{
    const uint8_t *p;
    *v = NULL;
    if (!atoll__wire_get_bytes(r, n, &p))
        return false;
    if (n == 0 || (n == 4 && memcmp(p, "null", 4) == 0))
        return true;
    *v = atoll_parse((const char *)p, n, NULL, 0);
    if (*v == NULL) {
        r->bad = true;
        return false;
    }
    if (atoll_typeof(*v) == ATOLL_NULL) {
        /* " null" too: a null value would be encoded as "null", then read as none. */
        atoll_unref(*v);
        *v = NULL;
    }
    return true;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static uint32_t
fields_of(const atoll__mail *m)
{
    uint32_t f = 0;
    if (m->session.v)
        f |= ATOLL_WIRE_F_SESSION;
    if (m->request_id)
        f |= ATOLL_WIRE_F_REQUEST;
    if (m->reply || m->forwarded || m->msg_type)
        f |= ATOLL_WIRE_F_FLAGS;
    if (m->route)
        f |= ATOLL_WIRE_F_ROUTE;
    if (m->status)
        f |= ATOLL_WIRE_F_STATUS;
    if (m->at.worker || m->at.node || m->type == ATOLL_MAIL_AREA_CALL)
        f |= ATOLL_WIRE_F_WORKER;
    if (m->area)
        f |= ATOLL_WIRE_F_AREA;
    if (m->area_old)
        f |= ATOLL_WIRE_F_AREA_OLD;
    if (m->call_id)
        f |= ATOLL_WIRE_F_CALL_ID;
    if (m->type_index)
        f |= ATOLL_WIRE_F_TYPE;
    if (m->uid)
        f |= ATOLL_WIRE_F_UID;
    if (m->reason[0])
        f |= ATOLL_WIRE_F_REASON;
    if (m->from[0])
        f |= ATOLL_WIRE_F_FROM;
    if (m->value)
        f |= ATOLL_WIRE_F_VALUE;
    if (m->shared)
        f |= ATOLL_WIRE_F_SHARED;
    if (m->nsessions)
        f |= ATOLL_WIRE_F_SESSIONS;
    if (m->len)
        f |= ATOLL_WIRE_F_DATA;
    if (m->payload)
        f |= ATOLL_WIRE_F_PAYLOAD;
    if (m->epoch)
        f |= ATOLL_WIRE_F_EPOCH;
    return f;
}

/* An address: u16 worker, then u16 node. */
static void
put_addr(atoll__buf *b, atoll__addr a)
{
    atoll__wire_put_u16(b, a.worker);
    atoll__wire_put_u16(b, a.node);
}

static void
put_str(atoll__buf *b, const char *s, int width)
{
    size_t n = strlen(s);
    if (width == 1)
        atoll__buf_push(b, (uint8_t)n);
    else
        atoll__wire_put_u16(b, (uint16_t)n);
    atoll__buf_append(b, s, n);
}

int
atoll__wire_encode(const atoll__mail *m, atoll__buf *out)
{
    /* A LINK holds frames: one inside a frame would let a peer nest them until the
     * worker that unpacks them runs out of stack. */
    /* DOC_* come from this node's writer thread and never cross a link. */
    /* NODE_DOWN comes from this node's cluster thread, about the cluster as it sees it;
     * MOVE_ASK from one of its threads, with a pointer to whoever asked. */
    if (m->type == ATOLL_MAIL_STOP || m->type == ATOLL_MAIL_LINK ||
        m->type == ATOLL_MAIL_DOC_LOADED || m->type == ATOLL_MAIL_DOC_COMMITTED ||
        m->type == ATOLL_MAIL_NODE_DOWN || m->type == ATOLL_MAIL_AREA_MOVE_ASK ||
        (unsigned)m->type >= ATOLL_MAIL_KINDS)
        return ATOLL_EINVAL;
    if ((m->uid && strlen(m->uid) > ATOLL_UID_MAX) || m->nsessions > ATOLL_WIRE_SESSIONS_MAX)
        return ATOLL_ELIMIT;
    size_t start = out->len;
    atoll__wire_put_u32(out, 0); /* the record's length, set below */
    uint32_t f = fields_of(m);
    atoll__buf_push(out, ATOLL_WIRE_VERSION);
    atoll__buf_push(out, (uint8_t)m->type);
    atoll__wire_put_u32(out, f);
    if (f & ATOLL_WIRE_F_SESSION)
        atoll__wire_put_u64(out, m->session.v);
    if (f & ATOLL_WIRE_F_REQUEST)
        atoll__wire_put_u32(out, m->request_id);
    if (f & ATOLL_WIRE_F_FLAGS) {
        atoll__buf_push(out, (uint8_t)((m->reply ? 1 : 0) | (m->forwarded ? 2 : 0)));
        atoll__buf_push(out, m->msg_type);
    }
    if (f & ATOLL_WIRE_F_ROUTE)
        atoll__wire_put_u16(out, m->route);
    if (f & ATOLL_WIRE_F_STATUS)
        atoll__wire_put_u32(out, (uint32_t)m->status);
    if (f & ATOLL_WIRE_F_WORKER)
        put_addr(out, m->at);
    if (f & ATOLL_WIRE_F_AREA)
        atoll__wire_put_u64(out, m->area);
    if (f & ATOLL_WIRE_F_AREA_OLD) {
        atoll__wire_put_u64(out, m->area_old);
        put_addr(out, m->at_old);
    }
    if (f & ATOLL_WIRE_F_CALL_ID)
        atoll__wire_put_u64(out, m->call_id);
    if (f & ATOLL_WIRE_F_TYPE)
        atoll__wire_put_u16(out, (uint16_t)m->type_index);
    if (f & ATOLL_WIRE_F_UID)
        put_str(out, m->uid, 2);
    if (f & ATOLL_WIRE_F_REASON)
        put_str(out, m->reason, 1);
    if (f & ATOLL_WIRE_F_FROM)
        put_str(out, m->from, 1);
    if (f & ATOLL_WIRE_F_VALUE)
        atoll__wire_put_json(out, m->value);
    if (f & ATOLL_WIRE_F_SHARED) {
        atoll__wire_put_u32(out, (uint32_t)m->shared->len);
        atoll__buf_append(out, m->shared->data, m->shared->len);
    }
    if (f & ATOLL_WIRE_F_SESSIONS) {
        atoll__wire_put_u32(out, (uint32_t)m->nsessions);
        for (size_t i = 0; i < m->nsessions; i++)
            atoll__wire_put_u64(out, m->sessions[i].v);
    }
    if (f & ATOLL_WIRE_F_DATA) {
        atoll__wire_put_u32(out, (uint32_t)m->len);
        atoll__buf_append(out, m->data, m->len);
    }
    if (f & ATOLL_WIRE_F_PAYLOAD) {
        size_t at = out->len;
        atoll__wire_put_u32(out, 0);
        if (atoll__mail_payload_encode(m, out) != ATOLL_OK) {
            out->len = start;
            return ATOLL_EINVAL;
        }
        atoll__wire_store_u32(atoll__buf_data(out) + at, (uint32_t)(out->len - at - 4));
    }
    if (f & ATOLL_WIRE_F_EPOCH)
        atoll__wire_put_u64(out, m->epoch);
    size_t rec = out->len - start - 4;
    if (rec > ATOLL_WIRE_FRAME_MAX) {
        out->len = start;
        return ATOLL_ELIMIT;
    }
    atoll__wire_store_u32(atoll__buf_data(out) + start, (uint32_t)rec);
    return ATOLL_OK;
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* A string of n bytes (NUL-free, at most max) into dst[max + 1]. */
static bool
get_str(atoll__wire_reader *r, size_t n, size_t max, char *dst)
{
    const uint8_t *p;
    if (n > max || !atoll__wire_get_bytes(r, n, &p) || memchr(p, '\0', n) != NULL) {
        r->bad = true;
        return false;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
    return true;
}

/* An address; a worker of this node must exist, another node's is checked there. */
static bool
get_addr(atoll__wire_reader *r, const atoll__wire_limits *lim, atoll__addr *a)
{
    uint16_t worker, node;
    if (!atoll__wire_get_u16(r, &worker) || !atoll__wire_get_u16(r, &node))
        return false;
    if (node > ATOLL_NODE_ID_MAX || (node == lim->node_id && worker >= lim->nworkers)) {
        r->bad = true;
        return false;
    }
    a->worker = worker;
    a->node = node;
    return true;
}

static ssize_t
fail(atoll__mail *m, atoll__mail **out, int rc)
{
    if (m != NULL)
        atoll__mail_free(m);
    *out = NULL;
    return rc;
}

/* m with n bytes of data: m itself when it has room (a small body), else its fields
 * moved into a new mail of the same kind with the room, and m freed (it owns nothing
 * any more). Every field before `pooled` moves. */
static atoll__mail *
with_data(atoll__mail *m, const uint8_t *data, size_t n)
{
    if (m->pooled && n <= ATOLL_MAIL_SMALL_DATA) {
        /* Made with room for a small body: no second mail (most bodies are small). */
        memcpy(m->data, data, n);
        m->len = n;
        return m;
    }
    atoll__mail *big = atoll__mail_new(m->type, n);
    memcpy(big, m, offsetof(atoll__mail, pooled));
    memcpy(big->data, data, n);
    m->uid = NULL;
    m->shared = NULL;
    m->sessions = NULL;
    m->nsessions = 0;
    m->value = NULL;
    m->payload = NULL;
    atoll__mail_free(m);
    return big;
}

int
atoll__wire_encode_for(const atoll__mail *m, uint16_t worker, atoll__buf *out)
{
    size_t start = out->len;
    atoll__buf_push(out, ATOLL_WIRE_REC_MAIL);
    atoll__wire_put_u16(out, worker);
    int rc = atoll__wire_encode(m, out);
    if (rc != ATOLL_OK)
        out->len = start;
    return rc;
}

ssize_t
atoll__wire_decode(const uint8_t *p, size_t n, const atoll__wire_limits *lim, atoll__mail **out)
{
    *out = NULL;
    atoll__wire_reader fr = {p, n, false};
    uint32_t rec;
    if (!atoll__wire_get_u32(&fr, &rec))
        return 0;
    if (rec > ATOLL_WIRE_FRAME_MAX)
        return ATOLL_ELIMIT;
    if (fr.left < rec)
        return 0;
    atoll__wire_reader r = {fr.p, rec, false};
    uint8_t version, kind;
    uint32_t f;
    if (!atoll__wire_get_u8(&r, &version) || !atoll__wire_get_u8(&r, &kind) ||
        !atoll__wire_get_u32(&r, &f))
        return ATOLL_EPROTO;
    if (version != ATOLL_WIRE_VERSION || kind >= ATOLL_MAIL_KINDS || kind == ATOLL_MAIL_STOP ||
        kind == ATOLL_MAIL_LINK || kind == ATOLL_MAIL_DOC_LOADED ||
        kind == ATOLL_MAIL_DOC_COMMITTED || kind == ATOLL_MAIL_NODE_DOWN ||
        kind == ATOLL_MAIL_AREA_MOVE_ASK ||
        (f & ~(uint32_t)ATOLL_WIRE_F_ALL) != 0 ||
        (f & required[kind]) != required[kind])
        return ATOLL_EPROTO;

    /* Made without room for DATA: the fields before it are read into it, and when DATA
     * comes (its length is known only there) they move into a mail with the room. */
    atoll__mail *m = atoll__mail_new((atoll__mail_type)kind, 0);

    uint64_t u64;
    uint32_t u32;
    uint16_t u16;
    uint8_t u8;
    if ((f & ATOLL_WIRE_F_SESSION) && atoll__wire_get_u64(&r, &u64))
        m->session.v = u64;
    if ((f & ATOLL_WIRE_F_REQUEST) && atoll__wire_get_u32(&r, &u32))
        m->request_id = u32;
    if (f & ATOLL_WIRE_F_FLAGS) {
        if (atoll__wire_get_u8(&r, &u8)) {
            m->reply = (u8 & 1) != 0;
            m->forwarded = (u8 & 2) != 0;
            if (u8 & ~3u)
                r.bad = true;
        }
        if (atoll__wire_get_u8(&r, &u8))
            m->msg_type = u8;
    }
    if ((f & ATOLL_WIRE_F_ROUTE) && atoll__wire_get_u16(&r, &u16))
        m->route = u16;
    if ((f & ATOLL_WIRE_F_STATUS) && atoll__wire_get_u32(&r, &u32))
        m->status = (int32_t)u32;
    if (f & ATOLL_WIRE_F_WORKER)
        get_addr(&r, lim, &m->at);
    if ((f & ATOLL_WIRE_F_AREA) && atoll__wire_get_u64(&r, &u64))
        m->area = u64;
    if (f & ATOLL_WIRE_F_AREA_OLD) {
        if (atoll__wire_get_u64(&r, &u64))
            m->area_old = u64;
        get_addr(&r, lim, &m->at_old);
    }
    if ((f & ATOLL_WIRE_F_CALL_ID) && atoll__wire_get_u64(&r, &u64))
        m->call_id = u64;
    if ((f & ATOLL_WIRE_F_TYPE) && atoll__wire_get_u16(&r, &u16)) {
        m->type_index = u16;
        if (u16 >= lim->ntypes)
            r.bad = true;
    }
    if ((f & ATOLL_WIRE_F_UID) && atoll__wire_get_u16(&r, &u16)) {
        char uid[ATOLL_UID_MAX + 1];
        if (u16 == 0 || !get_str(&r, u16, ATOLL_UID_MAX, uid))
            r.bad = true;
        else
            m->uid = atoll__strndup(uid, u16);
    }
    if ((f & ATOLL_WIRE_F_REASON) && atoll__wire_get_u8(&r, &u8))
        get_str(&r, u8, ATOLL_WIRE_REASON_MAX, m->reason);
    if ((f & ATOLL_WIRE_F_FROM) && atoll__wire_get_u8(&r, &u8))
        get_str(&r, u8, ATOLL_AREA_ID_MAX, m->from);
    if ((f & ATOLL_WIRE_F_VALUE) && atoll__wire_get_u32(&r, &u32))
        atoll__wire_get_json(&r, u32, &m->value);
    if ((f & ATOLL_WIRE_F_SHARED) && atoll__wire_get_u32(&r, &u32)) {
        const uint8_t *b;
        if (atoll__wire_get_bytes(&r, u32, &b)) {
            m->shared = atoll__shared_new(b, u32, 1);
        }
    }
    if ((f & ATOLL_WIRE_F_SESSIONS) && atoll__wire_get_u32(&r, &u32)) {
        /* The count is checked against what is left before anything is allocated. */
        if (u32 > ATOLL_WIRE_SESSIONS_MAX || (size_t)u32 * 8 > r.left) {
            r.bad = true;
        } else {
            m->sessions = atoll__malloc((u32 ? u32 : 1) * sizeof *m->sessions);
            for (uint32_t i = 0; i < u32 && atoll__wire_get_u64(&r, &u64); i++)
                m->sessions[m->nsessions++].v = u64;
        }
    }
    if ((f & ATOLL_WIRE_F_DATA) && atoll__wire_get_u32(&r, &u32)) {
        const uint8_t *b;
        if (!r.bad && atoll__wire_get_bytes(&r, u32, &b) && u32 > 0)
            m = with_data(m, b, u32);
    }
    if ((f & ATOLL_WIRE_F_PAYLOAD) && atoll__wire_get_u32(&r, &u32)) {
        const uint8_t *b;
        if (atoll__wire_get_bytes(&r, u32, &b) &&
            atoll__mail_payload_decode(m, b, u32) != ATOLL_OK)
            r.bad = true;
    }
    if ((f & ATOLL_WIRE_F_EPOCH) && atoll__wire_get_u64(&r, &u64))
        m->epoch = u64;
    /* A field is encoded only when it is set (fields_of): a required field sent as zero
     * would give mail whose encoding leaves it out, which the next decoder refuses. */
    if (r.bad || r.left != 0 || (fields_of(m) & required[kind]) != required[kind])
        return fail(m, out, ATOLL_EPROTO);
    *out = m;
    return (ssize_t)(4 + rec);
}

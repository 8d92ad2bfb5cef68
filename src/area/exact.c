/* exact.c -- each client request runs once, even when the node of its area dies after
 * running it and before its answer left.
 *
 * A gate keeps every request it sends to an area on another node until the response
 * passes, numbered per session (1, 2, ...: the mail's epoch, src/area/entry.c). When
 * that node dies, the area comes back on another node with its last committed state,
 * the session enters it again and sends what was in flight once more
 * (failover.c). So the area must know which of those it ran already: each player
 * records the session whose requests it numbers, the last number it ran, and the
 * answers of the last EXACT_KEEP ones, and that record is written in the player's
 * document, committed in the same transaction as what those requests changed. A
 * request whose number is not above the record is answered with its recorded answer
 * and not run; one above it runs. Each request also carries the number up to which its
 * gate has seen every answer: those answers are dropped from the record, so a client
 * with one request in flight costs its document one answer, not EXACT_KEEP.
 *
 * Why this is exact: in `durable` mode a response leaves only once the commit that
 * holds its changes and its record is in, so a request either ran and was committed
 * with its record (it is answered from the record) or its changes were lost with the
 * node (it runs again, once). In `fast` mode an answer may leave before its commit: a
 * crash in that window loses the change (the documented loss of fast mode) but the
 * client has its answer, so nothing is sent again.
 *
 * In the document the record is one member of the player's data object, "__atoll_rq":
 * {"s": session id, "n": last number, "a": [[number, answer JSON text], ...]}, taken
 * out when the document is loaded (game code never sees it) and put back when it is
 * written. A request kept by the game (atoll_req_keep) is recorded with no answer: a
 * copy of it sent again is answered 500 rather than run twice.
 */
#include "area.h"
#include "../value/value.h"

#include <jansson.h>
#include <stdio.h>

#define EXACT_KEY "__atoll_rq"
#define EXACT_KEEP 8 /* answers kept per player: requests in flight at once, at most */

struct atoll__exact {
    uint64_t session;
    uint64_t last;
    struct {
        uint64_t n;
        char *answer; /* JSON text, NULL: kept by the game, not known */
    } ring[EXACT_KEEP];
};

void
atoll__exact_free(atoll_player *p)
{
    if (p->exact == NULL)
        return;
    for (int i = 0; i < EXACT_KEEP; i++)
        atoll__free(p->exact->ring[i].answer);
    atoll__free(p->exact);
    p->exact = NULL;
}

bool
atoll__exact_replay(atoll__worker *w, atoll_player *p, const atoll__mail *m)
{
    const atoll__exact *x = p->exact;
    if (m->epoch == 0 || x == NULL || x->session != m->session.v || m->epoch > x->last)
        return false;
    const char *answer = NULL;
    bool found = false;
    for (int i = 0; i < EXACT_KEEP; i++) {
        if (x->ring[i].n == m->epoch) {
            answer = x->ring[i].answer;
            found = true;
        }
    }
    ATOLL_LOG(ATOLL_LOG_INFO, "msg=\"a request sent again after a failover was run already: "
              "answered from its record\" uid=\"%s\" n=%llu", p->uid, (unsigned long long)m->epoch);
    if (answer != NULL) {
        atoll__answer_client_json(w, m->session, p->session_worker, m->request_id,
                                  (const uint8_t *)answer, strlen(answer));
    } else {
        atoll__answer_client_error(w, m->session, p->session_worker, m->request_id, 500,
                                   found ? "this request ran already; its answer was lost with "
                                           "a node that failed"
                                         : "this request ran already; its answer is no longer "
                                           "kept");
    }
    return true;
}

void
atoll__exact_record(atoll__worker *w, atoll_player *p, atoll_session_id s, uint64_t n,
                    uint64_t acked, const uint8_t *answer, size_t len, bool known)
{
    if (n == 0 || !p->persisted)
        return;
    atoll__exact *x = p->exact;
    if (x == NULL)
        x = p->exact = atoll__calloc(1, sizeof *x);
    if (x->session != s.v) {
        /* Another session (the client came back through another gate): its numbers
         * start again, and the old ones can never be sent again. */
        for (int i = 0; i < EXACT_KEEP; i++) {
            atoll__free(x->ring[i].answer);
            x->ring[i].answer = NULL;
            x->ring[i].n = 0;
        }
        x->session = s.v;
        x->last = 0;
    }
    if (n <= x->last)
        return;
    x->last = n;
    /* Answers its gate saw pass can never be asked for again: not kept. */
    for (int i = 0; i < EXACT_KEEP; i++) {
        if (x->ring[i].n != 0 && x->ring[i].n <= acked) {
            atoll__free(x->ring[i].answer);
            x->ring[i].answer = NULL;
            x->ring[i].n = 0;
        }
    }
    int slot = (int)(n % EXACT_KEEP);
    atoll__free(x->ring[slot].answer);
    x->ring[slot].n = n;
    x->ring[slot].answer = known ? atoll__strndup((const char *)answer, len) : NULL;
    atoll__docs_mark_player(w, p);
}

void
atoll__exact_put(atoll__buf *doc, const atoll_player *p)
{
    const atoll__exact *x = p->exact;
    if (x == NULL || x->last == 0 || doc->len < 2)
        return;
    uint8_t *d = atoll__buf_data(doc);
    if (d[0] != '{' || d[doc->len - 1] != '}')
        return; /* data that is not an object has nowhere to keep it */
    doc->len--; /* the closing brace, put back below */
    if (doc->len > 1)
        atoll__buf_push(doc, ',');
    char head[96];
    int k = snprintf(head, sizeof head, "\"" EXACT_KEY "\":{\"s\":%llu,\"n\":%llu,\"a\":[",
                     (unsigned long long)x->session, (unsigned long long)x->last);
    atoll__buf_append(doc, head, (size_t)k);
    bool first = true;
    for (int i = 0; i < EXACT_KEEP; i++) {
        if (x->ring[i].n == 0)
            continue;
        if (!first)
            atoll__buf_push(doc, ',');
        first = false;
        k = snprintf(head, sizeof head, "[%llu,", (unsigned long long)x->ring[i].n);
        atoll__buf_append(doc, head, (size_t)k);
        if (x->ring[i].answer != NULL)
            atoll__json_put_string(doc, x->ring[i].answer, strlen(x->ring[i].answer));
        else
            atoll__buf_append(doc, "null", 4);
        atoll__buf_push(doc, ']');
    }
    atoll__buf_append(doc, "]}}", 3);
}

void
atoll__exact_take(atoll_player *p, atoll_value *data)
{
    atoll_value *rq = atoll_get(data, EXACT_KEY);
    if (rq == NULL)
        return;
    atoll__exact *x = atoll__calloc(1, sizeof *x);
    x->session = (uint64_t)atoll_get_int(rq, "s", 0);
    /* Numbers over 2^63 do not come from a gate: read as 0, nothing is replayed. */
    x->last = (uint64_t)atoll_get_int(rq, "n", 0);
    atoll_value *a = atoll_get(rq, "a");
    for (size_t i = 0; i < atoll_len(a); i++) {
        atoll_value *e = atoll_at(a, i);
        int64_t n = atoll_as_int(atoll_at(e, 0), 0);
        const char *answer = atoll_as_str(atoll_at(e, 1), NULL);
        if (n <= 0)
            continue;
        int slot = (int)((uint64_t)n % EXACT_KEEP);
        atoll__free(x->ring[slot].answer);
        x->ring[slot].n = (uint64_t)n;
        x->ring[slot].answer = answer ? atoll__strndup(answer, strlen(answer)) : NULL;
    }
    atoll__exact_free(p);
    p->exact = x;
    /* Not a change of the game's: out of any region's journal. */
    atoll__vjournal *j = atoll__vj_current();
    atoll__vj_use(NULL);
    atoll_del(data, EXACT_KEY);
    atoll__vj_use(j);
}

void
atoll__exact_put_data(atoll__buf *b, const atoll_player *p)
{
    size_t at = b->len;
    atoll__wire_put_u32(b, 0);
    size_t start = b->len;
    atoll__value_write(b, p->data);
    if (p->exact != NULL && p->exact->last != 0) {
        /* exact_put works on a buffer that holds the document alone. */
        atoll__buf doc = ATOLL__BUF_INIT;
        atoll__buf_append(&doc, atoll__buf_data(b) + start, b->len - start);
        atoll__exact_put(&doc, p);
        b->len = start;
        atoll__buf_append(b, atoll__buf_data(&doc), doc.len);
        atoll__buf_fini(&doc);
    }
    atoll__wire_store_u32(atoll__buf_data(b) + at, (uint32_t)(b->len - start));
}

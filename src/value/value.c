/* value.c -- atoll_value, the JSON-like values of message bodies and game state.
 *
 * atoll_value is jansson's json_t behind an opaque name: every atoll_value * in the
 * public API is a json_t * cast, and nothing else is stored. The public header does
 * not include jansson.h, so game code never depends on jansson's names or version,
 * while the runtime can hand a value to jansson with no conversion. jansson gives us
 * reference counting, insertion-ordered objects, UTF-8 checks on every string it
 * stores, and a parser with a depth limit; this file adds the header's rules on top:
 *
 *   - NULL is accepted wherever a value is, and gives the default or a failure, so a
 *     chain of calls needs one check at its end;
 *   - a function that takes a value to store (set, append, pack's 'o') consumes the
 *     caller's reference on every path, success or failure;
 *   - integers are int64_t and reals are finite doubles (JSON has no NaN or infinity,
 *     so atoll_real refuses them rather than building a value that cannot be sent).
 *
 * Invariants: atoll never calls json_set_alloc_funcs, so memory jansson returns
 * (atoll_dump's text) comes from malloc and atoll_free is free(). A value must not
 * contain itself: jansson refuses the direct case (atoll_set(o, k, o)); a deeper
 * cycle is not detected and would leak and recurse forever in dump and equal.
 */
#include "value.h"
#include "../core/text.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* atoll_pack's 'I' reads an int64_t where jansson reads a json_int_t (long long);
 * passing one for the other through varargs is only sound when they have one size. */
_Static_assert(sizeof(json_int_t) == sizeof(int64_t), "json_int_t must be 64 bits");

/* ---- casts ---------------------------------------------------------------------- */

static inline json_t *
J(atoll_value *v)
{
    return (json_t *)v;
}

/* jansson's read-only functions take const json_t * except the iterators; this keeps
 * the const of the public signature without a cast at every call. */
static inline const json_t *
CJ(const atoll_value *v)
{
    return (const json_t *)v;
}

static inline atoll_value *
V(json_t *j)
{
    return (atoll_value *)j;
}

/* ---- the undo journal (value.h) ------------------------------------------------------ */

enum { VJ_OBJ_SET = 1, VJ_INT_SET, VJ_ARR_APPEND, VJ_ARR_REMOVE };

static __thread atoll__vjournal *tl_journal;

void
atoll__vj_use(atoll__vjournal *j)
{
    tl_journal = j;
}

atoll__vjournal *
atoll__vj_current(void)
{
    return tl_journal;
}

static atoll__vj_rec *
vj_add(atoll__vjournal *j, int op, json_t *container)
{
    j->recs = atoll__grow(j->recs, j->n, &j->cap, sizeof *j->recs, 16);
    atoll__vj_rec *r = &j->recs[j->n++];
    memset(r, 0, sizeof *r);
    r->op = (uint8_t)op;
    r->container = (atoll_value *)json_incref(container);
    return r;
}

static void
vj_rec_free(atoll__vj_rec *r)
{
    json_decref((json_t *)r->container);
    json_decref((json_t *)r->old);
    atoll__free(r->key);
}

void
atoll__vj_clear(atoll__vjournal *j)
{
    for (size_t i = 0; i < j->n; i++)
        vj_rec_free(&j->recs[i]);
    j->n = 0;
    if (j->cap > 1024) { /* a burst does not pin its memory */
        atoll__free(j->recs);
        j->recs = NULL;
        j->cap = 0;
    }
}

void
atoll__vj_rollback(atoll__vjournal *j)
{
    for (size_t i = j->n; i-- > 0;) {
        atoll__vj_rec *r = &j->recs[i];
        json_t *c = (json_t *)r->container, *old = (json_t *)r->old;
        switch (r->op) {
        case VJ_OBJ_SET:
            if (old != NULL)
                json_object_set(c, r->key, old);
            else
                json_object_del(c, r->key);
            break;
        case VJ_INT_SET:
            json_integer_set(old, (json_int_t)r->old_int);
            break;
        case VJ_ARR_APPEND:
            while (json_array_size(c) > r->index)
                json_array_remove(c, json_array_size(c) - 1);
            break;
        case VJ_ARR_REMOVE:
            json_array_insert(c, r->index, old);
            break;
        }
    }
    atoll__vj_clear(j);
}

void
atoll__vj_fini(atoll__vjournal *j)
{
    atoll__vj_clear(j);
    atoll__free(j->recs);
    j->recs = NULL;
    j->cap = 0;
}

/* Records that obj[key] is about to change (what it holds now, or nothing). */
static void
vj_obj_set(json_t *obj, const char *key)
{
    atoll__vj_rec *r = vj_add(tl_journal, VJ_OBJ_SET, obj);
    r->old = (atoll_value *)json_incref(json_object_get(obj, key));
    r->key = atoll__strndup(key, strlen(key));
}

/* ---- construction ---------------------------------------------------------------- */

atoll_value *
atoll_null(void)
{
    return V(json_null());
}

atoll_value *
atoll_bool(int b)
{
    return V(json_boolean(b != 0));
}

atoll_value *
atoll_int(int64_t i)
{
    return V(json_integer((json_int_t)i));
}

/* NULL for NaN and the infinities: json_real refuses them, and so must we, because
 * JSON text cannot carry them and a value that cannot be dumped cannot be sent. */
atoll_value *
atoll_real(double d)
{
    return V(json_real(d));
}

atoll_value *
atoll_str(const char *s)
{
    return s ? V(json_stringn(s, strlen(s))) : NULL;
}

/* json_stringn checks the UTF-8 and copies. It accepts NUL bytes (U+0000 is valid
 * UTF-8): atoll_len counts them, atoll_as_str shows the part before the first one,
 * and atoll_dump writes them as \u0000, which atoll_parse refuses. */
atoll_value *
atoll_strn(const char *s, size_t n)
{
    return s ? V(json_stringn(s, n)) : NULL;
}

atoll_value *
atoll_array(void)
{
    return V(json_array());
}

atoll_value *
atoll_object(void)
{
    return V(json_object());
}

/* Copies src into a logfmt quoted field, turning the characters that would end or
 * break it into '?': jansson's message quotes format characters, and a format
 * string is the caller's text. */
static void
log_field(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c == '"' || c == '\\' || c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[i] = '\0';
}

/* jansson 2.12+ keeps reading the arguments after a NULL or bad one (a NULL string,
 * invalid UTF-8, a NULL 'o', a NaN 'f') and releases every 'o' value it is given, so
 * on those failures the references are taken as the header promises. A malformed
 * format ("{i}", "[s" ...) stops jansson at the fault, and the 'o' arguments after
 * it are not released: that is a bug in a literal in the caller's code, which the
 * warning below points at, not something input can cause. */
atoll_value *
atoll_pack(const char *fmt, ...)
{
    json_error_t error;
    va_list ap;
    va_start(ap, fmt);
    json_t *v = json_vpack_ex(&error, 0, fmt, ap);
    va_end(ap);
    if (v == NULL) {
        char text[sizeof error.text], f[64];
        log_field(text, sizeof text, error.text);
        log_field(f, sizeof f, fmt);
        ATOLL_LOG(ATOLL_LOG_WARN, "msg=\"atoll_pack failed\" error=\"%s\" fmt=\"%s\" column=%d",
                  text, f, error.column);
    }
    return V(v);
}

/* ---- text ------------------------------------------------------------------------- */

/* JSON_ALLOW_NUL stays off: a string with a NUL byte would reach game code as a
 * C string cut short, and a key with one cannot be stored at all, so such text is
 * refused as a whole rather than half-read. */
atoll_value *
atoll_parse(const char *json, size_t len, char *err, size_t errlen)
{
    if (json == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "no input (NULL)");
        return NULL;
    }
    json_error_t error;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY, &error);
    if (err && errlen) {
        if (v)
            err[0] = '\0';
        else
            snprintf(err, errlen, "%s (line %d, column %d)", error.text, error.line, error.column);
    }
    return V(v);
}

/* json_dumps allocates with jsonp_malloc, which is malloc while nobody installs other
 * functions with json_set_alloc_funcs (see the invariants at the top); that is what
 * lets atoll_free be free(). The text never holds a NUL byte before its end (a NUL in
 * a string is written as \u0000), so strlen gives its length. */
static void
write_int(atoll__buf *b, json_int_t i)
{
    char tmp[24];
    size_t n = 0;
    /* Through unsigned, so INT64_MIN negates without overflow. */
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (i < 0)
        tmp[sizeof tmp - 1 - n++] = '-';
    atoll__buf_append(b, tmp + sizeof tmp - n, n);
}

static void
write_real(atoll__buf *b, double d)
{
    /* jansson's format: 17 significant digits (every double reads back exactly), and a
     * ".0" when that looks like an integer, so it parses back as a real. */
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof tmp)
        n = snprintf(tmp, sizeof tmp, "0.0");
    atoll__buf_append(b, tmp, (size_t)n);
    if (strspn(tmp, "0123456789-") == (size_t)n)
        atoll__buf_append(b, ".0", 2);
}

void
atoll__value_write(atoll__buf *b, const atoll_value *v)
{
    const json_t *j = CJ(v);
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_OBJECT: {
        atoll__buf_push(b, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)j); it != NULL;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                atoll__buf_push(b, ',');
            first = false;
            const char *k = json_object_iter_key(it);
            atoll__json_put_string(b, k, strlen(k));
            atoll__buf_push(b, ':');
            atoll__value_write(b, V(json_object_iter_value(it)));
        }
        atoll__buf_push(b, '}');
        break;
    }
    case JSON_ARRAY: {
        atoll__buf_push(b, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i > 0)
                atoll__buf_push(b, ',');
            atoll__value_write(b, V(json_array_get(j, i)));
        }
        atoll__buf_push(b, ']');
        break;
    }
    case JSON_STRING:
        atoll__json_put_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        write_int(b, json_integer_value(j));
        break;
    case JSON_REAL:
        write_real(b, json_real_value(j));
        break;
    case JSON_TRUE:
        atoll__buf_append(b, "true", 4);
        break;
    case JSON_FALSE:
        atoll__buf_append(b, "false", 5);
        break;
    case JSON_NULL:
        atoll__buf_append(b, "null", 4);
        break;
    }
}

char *
atoll_dump(const atoll_value *v, size_t *len)
{
    if (v == NULL) {
        if (len)
            *len = 0;
        return NULL;
    }
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__value_write(&b, v);
    /* A plain malloc'ed string, so atoll_free (free) releases it. */
    char *s = malloc(b.len + 1);
    if (s != NULL) {
        memcpy(s, atoll__buf_data(&b), b.len);
        s[b.len] = '\0';
    }
    if (len)
        *len = s ? b.len : 0;
    atoll__buf_fini(&b);
    return s;
}

void
atoll_free(void *p)
{
    free(p);
}

/* ---- references ------------------------------------------------------------------- */

atoll_value *
atoll_ref(atoll_value *v)
{
    return V(json_incref(J(v)));
}

void
atoll_unref(atoll_value *v)
{
    json_decref(J(v));
}

atoll_value *
atoll_copy(const atoll_value *v)
{
    return V(json_deep_copy(CJ(v)));
}

/* json_equal compares integers and reals by type (1 is not 1.0) and objects without
 * regard to order; NULL equals nothing, not even NULL, so that two failed chains do
 * not compare equal. */
int
atoll_equal(const atoll_value *a, const atoll_value *b)
{
    return json_equal(CJ(a), CJ(b));
}

/* ---- reading ---------------------------------------------------------------------- */

atoll_type
atoll_typeof(const atoll_value *v)
{
    if (v == NULL)
        return ATOLL_NULL;
    switch (json_typeof(CJ(v))) {
    case JSON_OBJECT: return ATOLL_OBJECT;
    case JSON_ARRAY: return ATOLL_ARRAY;
    case JSON_STRING: return ATOLL_STRING;
    case JSON_INTEGER: return ATOLL_INT;
    case JSON_REAL: return ATOLL_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return ATOLL_BOOL;
    case JSON_NULL: break;
    }
    return ATOLL_NULL;
}

/* A real is truncated toward zero. One outside int64_t (|d| >= 2^63) has no int to
 * truncate to, and converting it would be undefined behaviour, so it reads as def,
 * like a value of another type. */
int64_t
atoll_as_int(const atoll_value *v, int64_t def)
{
    const json_t *j = CJ(v);
    if (json_is_integer(j))
        return (int64_t)json_integer_value(j);
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            return (int64_t)d;
    }
    return def;
}

/* An integer past 2^53 becomes the nearest double. */
double
atoll_as_real(const atoll_value *v, double def)
{
    const json_t *j = CJ(v);
    if (json_is_real(j))
        return json_real_value(j);
    if (json_is_integer(j))
        return (double)json_integer_value(j);
    return def;
}

/* Only true and false: 0, "" and null are values of other types, not false. */
int
atoll_as_bool(const atoll_value *v, int def)
{
    const json_t *j = CJ(v);
    return json_is_boolean(j) ? json_is_true(j) : def;
}

const char *
atoll_as_str(const atoll_value *v, const char *def)
{
    const json_t *j = CJ(v);
    return json_is_string(j) ? json_string_value(j) : def;
}

size_t
atoll_len(const atoll_value *v)
{
    const json_t *j = CJ(v);
    if (json_is_array(j))
        return json_array_size(j);
    if (json_is_object(j))
        return json_object_size(j);
    if (json_is_string(j))
        return json_string_length(j);
    return 0;
}

/* ---- objects ---------------------------------------------------------------------- */

atoll_value *
atoll_get(const atoll_value *obj, const char *key)
{
    return key ? V(json_object_get(CJ(obj), key)) : NULL;
}

/* The typed getters read the member as atoll_as_* does, so an integer member reads
 * as a real and a real one as an integer (truncated); other types give def. */
int64_t
atoll_get_int(const atoll_value *obj, const char *key, int64_t def)
{
    return atoll_as_int(atoll_get(obj, key), def);
}

double
atoll_get_real(const atoll_value *obj, const char *key, double def)
{
    return atoll_as_real(atoll_get(obj, key), def);
}

int
atoll_get_bool(const atoll_value *obj, const char *key, int def)
{
    return atoll_as_bool(atoll_get(obj, key), def);
}

const char *
atoll_get_str(const atoll_value *obj, const char *key, const char *def)
{
    return atoll_as_str(atoll_get(obj, key), def);
}

/* ATOLL_EINVAL as well for a NULL v (a failed atoll_str, say) and for a key that is
 * not UTF-8, which jansson refuses; v's reference is dropped on every failure. */
int
atoll_set(atoll_value *obj, const char *key, atoll_value *v)
{
    if (v == NULL)
        return ATOLL_EINVAL;
    if (!json_is_object(J(obj)) || key == NULL) {
        json_decref(J(v));
        return ATOLL_EINVAL;
    }
    if (tl_journal != NULL)
        vj_obj_set(J(obj), key);
    /* json_object_set_new drops v itself when it refuses (bad UTF-8 key, obj == v). */
    if (json_object_set_new(J(obj), key, J(v)) == 0)
        return ATOLL_OK;
    if (tl_journal != NULL) /* nothing changed: its record goes */
        vj_rec_free(&tl_journal->recs[--tl_journal->n]);
    return ATOLL_EINVAL;
}

/* The typed setters build the value only after the checks, so a call on a NULL
 * object allocates nothing. */
int
atoll_set_int(atoll_value *obj, const char *key, int64_t i)
{
    if (!json_is_object(J(obj)) || key == NULL)
        return ATOLL_EINVAL;
    return atoll_set(obj, key, atoll_int(i));
}

int
atoll_set_real(atoll_value *obj, const char *key, double d)
{
    if (!json_is_object(J(obj)) || key == NULL)
        return ATOLL_EINVAL;
    return atoll_set(obj, key, atoll_real(d));
}

int
atoll_set_bool(atoll_value *obj, const char *key, int b)
{
    if (!json_is_object(J(obj)) || key == NULL)
        return ATOLL_EINVAL;
    return atoll_set(obj, key, atoll_bool(b));
}

int
atoll_set_str(atoll_value *obj, const char *key, const char *s)
{
    if (!json_is_object(J(obj)) || key == NULL)
        return ATOLL_EINVAL;
    return atoll_set(obj, key, atoll_str(s));
}

/* A member that is missing or not an integer (a real, a string, null ...) counts as 0
 * and is replaced by the integer result: a counter is an integer, and leaving a wrong
 * value in place would make every later increment silently do nothing. The sum
 * saturates at INT64_MIN / INT64_MAX instead of wrapping, so a runaway counter sticks
 * at the edge rather than changing sign. Returns 0 and changes nothing when obj is
 * not an object or key is NULL or not UTF-8. */
int64_t
atoll_incr(atoll_value *obj, const char *key, int64_t by)
{
    if (!json_is_object(J(obj)) || key == NULL)
        return 0;
    json_t *cur = json_object_get(J(obj), key);
    int64_t base = json_is_integer(cur) ? (int64_t)json_integer_value(cur) : 0;
    int64_t sum;
    if (__builtin_add_overflow(base, by, &sum))
        sum = by > 0 ? INT64_MAX : INT64_MIN;
    /* Update in place when the object holds the only reference (refcount is a public
     * field of json_t): the common counter then costs no allocation. A member that is
     * shared with another holder gets a new integer, so the other holder's copy does
     * not change under it. */
    if (json_is_integer(cur) && cur->refcount == 1) {
        if (tl_journal != NULL) {
            atoll__vj_rec *r = vj_add(tl_journal, VJ_INT_SET, J(obj));
            r->old = (atoll_value *)json_incref(cur);
            r->old_int = base;
        }
        json_integer_set(cur, (json_int_t)sum);
        return sum;
    }
    if (tl_journal != NULL)
        vj_obj_set(J(obj), key);
    if (json_object_set_new(J(obj), key, json_integer((json_int_t)sum)) == 0)
        return sum;
    if (tl_journal != NULL)
        vj_rec_free(&tl_journal->recs[--tl_journal->n]);
    return 0;
}

int
atoll_del(atoll_value *obj, const char *key)
{
    if (!json_is_object(J(obj)) || key == NULL)
        return ATOLL_EINVAL;
    if (tl_journal != NULL && json_object_get(J(obj), key) != NULL)
        vj_obj_set(J(obj), key);
    return json_object_del(J(obj), key) == 0 ? ATOLL_OK : ATOLL_ENOENT;
}

/* The iterator is jansson's (a pointer to the member's hash entry); jansson objects
 * keep insertion order, and replacing a member's value keeps its place. */
void *
atoll_iter(const atoll_value *obj)
{
    /* json_object_iter takes a non-const object but does not change it. */
    return json_object_iter((json_t *)CJ(obj));
}

void *
atoll_iter_next(const atoll_value *obj, void *it)
{
    return json_object_iter_next((json_t *)CJ(obj), it);
}

/* At the end (it == NULL) the outputs are cleared as well, so a loop that breaks out
 * early and reads them afterwards sees NULL rather than the last member. */
int
atoll_iter_get(void *it, const char **key, atoll_value **v)
{
    if (key)
        *key = it ? json_object_iter_key(it) : NULL;
    if (v)
        *v = it ? V(json_object_iter_value(it)) : NULL;
    return it != NULL;
}

/* ---- arrays ----------------------------------------------------------------------- */

atoll_value *
atoll_at(const atoll_value *arr, size_t i)
{
    return V(json_array_get(CJ(arr), i));
}

/* ATOLL_EINVAL when arr is not an array or v is NULL; v's reference is dropped on
 * every failure. */
int
atoll_append(atoll_value *arr, atoll_value *v)
{
    if (v == NULL)
        return ATOLL_EINVAL;
    if (!json_is_array(J(arr))) {
        json_decref(J(v));
        return ATOLL_EINVAL;
    }
    size_t before = json_array_size(J(arr));
    /* json_array_append_new drops v itself when it refuses (arr == v). */
    if (json_array_append_new(J(arr), J(v)) != 0)
        return ATOLL_EINVAL;
    if (tl_journal != NULL)
        vj_add(tl_journal, VJ_ARR_APPEND, J(arr))->index = before;
    return ATOLL_OK;
}

/* ATOLL_EINVAL when arr is not an array; the items after i move down one place. */
int
atoll_remove_at(atoll_value *arr, size_t i)
{
    if (!json_is_array(J(arr)))
        return ATOLL_EINVAL;
    json_t *old = json_array_get(J(arr), i);
    if (old == NULL)
        return ATOLL_ENOENT;
    if (tl_journal != NULL) {
        atoll__vj_rec *r = vj_add(tl_journal, VJ_ARR_REMOVE, J(arr));
        r->old = (atoll_value *)json_incref(old);
        r->index = i;
    }
    return json_array_remove(J(arr), i) == 0 ? ATOLL_OK : ATOLL_ENOENT;
}

/* ---- documents (value.h) ------------------------------------------------------------- */

atoll_value *
atoll__value_doc_decode(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    if (n > ATOLL__VALUE_DOC_MAX) {
        snprintf(err, errlen, "document of %zu bytes is over the limit of %u", n,
                 ATOLL__VALUE_DOC_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        snprintf(err, errlen, "not a document: %s at byte %d", je.text, je.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "not a document: the stored value is not an object");
        json_decref(j);
        return NULL;
    }
    return V(j);
}

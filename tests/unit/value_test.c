/* value_test.c -- atoll_value (src/value/value.c): every function of the "values"
 * section of atoll.h, its NULL tolerance and its ownership rules.
 *
 * Ownership is checked by building values inline (atoll_set(o, k, atoll_int(1))) on
 * the paths that fail as well as those that succeed, and freeing what the test owns.
 * A reference that is neither taken nor dropped shows up as a leak: each test ends
 * with LEAK_CHECK(), which in an ASan build asks LeakSanitizer right there, because
 * the runner ends each forked test with _exit and so skips LSan's check at exit.
 */
#include <atoll/atoll.h>
#include "core/core.h"
#include "value/value.h"
#include "test.h"

#include <fcntl.h>
#include <math.h>

#if defined(__SANITIZE_ADDRESS__)
#define VALUE_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VALUE_TEST_LSAN 1
#endif
#endif

#ifdef VALUE_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ASSERT(__lsan_do_recoverable_leak_check() == 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

/* ---- helpers ------------------------------------------------------------------------ */

/* Dumps v, compares the text with want, and frees the text (v stays the caller's). */
#define ASSERT_DUMP(v, want)                                                                       \
    do {                                                                                           \
        size_t n_ = 12345;                                                                         \
        char *s_ = atoll_dump((v), &n_);                                                           \
        ASSERT(s_ != NULL);                                                                        \
        ASSERT_STR(s_, (want));                                                                    \
        ASSERT_EQ(n_, strlen(want));                                                               \
        atoll_free(s_);                                                                            \
    } while (0)

static atoll_value *
parse_str(const char *json)
{
    char err[160];
    atoll_value *v = atoll_parse(json, strlen(json), err, sizeof err);
    if (v == NULL)
        fprintf(stderr, "  parse of %s failed: %s\n", json, err);
    return v;
}

/* Parses want and checks that v equals it (both ways), so a test can state a whole
 * tree as JSON text. */
static void
assert_same_(const char *file, int line, const atoll_value *v, const char *want)
{
    atoll_value *w = parse_str(want);
    if (w == NULL || !atoll_equal(v, w) || !atoll_equal(w, v)) {
        char *got = atoll_dump(v, NULL);
        fprintf(stderr, "  got  %s\n  want %s\n", got ? got : "(null)", want);
        atoll_free(got);
        test_fail_(file, line, "value differs");
    }
    atoll_unref(w);
}
#define ASSERT_SAME(v, want) assert_same_(__FILE__, __LINE__, (v), (want))

/* ---- construction ------------------------------------------------------------------- */

TEST(constructors_and_types)
{
    atoll_value *v[] = {atoll_null(),    atoll_bool(1), atoll_int(-7), atoll_real(2.5),
                        atoll_str("hi"), atoll_array(), atoll_object()};
    atoll_type want[] = {ATOLL_NULL,   ATOLL_BOOL,  ATOLL_INT,   ATOLL_REAL,
                         ATOLL_STRING, ATOLL_ARRAY, ATOLL_OBJECT};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ASSERT(v[i] != NULL);
        ASSERT_EQ(atoll_typeof(v[i]), want[i]);
        atoll_unref(v[i]);
    }
    ASSERT_EQ(atoll_typeof(NULL), ATOLL_NULL);

    atoll_value *t = atoll_bool(-5), *f = atoll_bool(0);
    ASSERT_EQ(atoll_as_bool(t, 0), 1); /* any nonzero int is true */
    ASSERT_EQ(atoll_as_bool(f, 1), 0);
    ASSERT_DUMP(t, "true");
    ASSERT_DUMP(f, "false");
    atoll_unref(t);
    atoll_unref(f);

    /* null and the booleans may be shared singletons: unref must still balance. */
    atoll_value *n1 = atoll_null(), *n2 = atoll_null();
    atoll_unref(n1);
    ASSERT_EQ(atoll_typeof(n2), ATOLL_NULL);
    atoll_unref(n2);
    LEAK_CHECK();
}

TEST(bad_arguments_give_null)
{
    ASSERT(atoll_str(NULL) == NULL);
    ASSERT(atoll_strn(NULL, 3) == NULL);
    ASSERT(atoll_strn(NULL, 0) == NULL);
    /* JSON has no NaN or infinity, so such a real could never be sent. */
    ASSERT(atoll_real(NAN) == NULL);
    ASSERT(atoll_real(INFINITY) == NULL);
    ASSERT(atoll_real(-INFINITY) == NULL);
    LEAK_CHECK();
}

TEST(strings_reject_invalid_utf8)
{
    static const char *const bad[] = {
        "\xff",             /* never valid */
        "\xc0\x80",         /* overlong NUL */
        "\xe0\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xe2\x82",         /* truncated euro sign */
        "ok\x80",           /* stray continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT(atoll_str(bad[i]) == NULL);
        ASSERT(atoll_strn(bad[i], strlen(bad[i])) == NULL);
    }
    /* n bytes decide: a cut through a sequence is invalid, a cut before it is not. */
    ASSERT(atoll_strn("a\xe2\x82\xac", 3) == NULL);
    atoll_value *a = atoll_strn("a\xe2\x82\xac", 1);
    ASSERT_STR(atoll_as_str(a, NULL), "a");
    atoll_unref(a);

    const char *good = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e"; /* héllo € 𝄞 */
    atoll_value *g = atoll_str(good);
    ASSERT(g != NULL);
    ASSERT_STR(atoll_as_str(g, NULL), good);
    ASSERT_EQ(atoll_len(g), strlen(good)); /* bytes, not characters */
    atoll_unref(g);
    LEAK_CHECK();
}

TEST(strn_copies_exactly_n_bytes)
{
    char buf[] = "abcdef";
    atoll_value *s = atoll_strn(buf, 3);
    buf[0] = 'X'; /* copied, not borrowed */
    ASSERT_STR(atoll_as_str(s, NULL), "abc");
    ASSERT_EQ(atoll_len(s), 3);
    atoll_unref(s);

    atoll_value *e = atoll_strn("", 0);
    ASSERT(e != NULL);
    ASSERT_EQ(atoll_len(e), 0);
    ASSERT_DUMP(e, "\"\"");
    atoll_unref(e);

    /* U+0000 is valid UTF-8, so strn keeps it; C-string readers see the part before it,
     * and the JSON text escapes it (which atoll_parse then refuses, see parse_errors). */
    atoll_value *z = atoll_strn("a\0b", 3);
    ASSERT(z != NULL);
    ASSERT_EQ(atoll_len(z), 3);
    ASSERT_STR(atoll_as_str(z, NULL), "a");
    ASSERT_DUMP(z, "\"a\\u0000b\"");
    atoll_unref(z);
    LEAK_CHECK();
}

/* ---- NULL tolerance ----------------------------------------------------------------- */

TEST(every_function_tolerates_null)
{
    atoll_value *n = NULL;
    ASSERT(atoll_ref(n) == NULL);
    atoll_unref(n);
    atoll_free(NULL);
    ASSERT(atoll_copy(n) == NULL);
    ASSERT_EQ(atoll_equal(n, n), 0); /* two failed chains are not "equal" */
    ASSERT_EQ(atoll_typeof(n), ATOLL_NULL);
    ASSERT_EQ(atoll_as_int(n, 42), 42);
    ASSERT(atoll_as_real(n, 1.5) == 1.5);
    ASSERT_EQ(atoll_as_bool(n, 7), 7);
    ASSERT_STR(atoll_as_str(n, "def"), "def");
    ASSERT(atoll_as_str(n, NULL) == NULL);
    ASSERT_EQ(atoll_len(n), 0);

    size_t len = 99;
    ASSERT(atoll_dump(n, &len) == NULL);
    ASSERT_EQ(len, 0);
    ASSERT(atoll_dump(n, NULL) == NULL);

    ASSERT(atoll_get(n, "k") == NULL);
    ASSERT_EQ(atoll_get_int(n, "k", -1), -1);
    ASSERT(atoll_get_real(n, "k", 0.25) == 0.25);
    ASSERT_EQ(atoll_get_bool(n, "k", 3), 3);
    ASSERT_STR(atoll_get_str(n, "k", "d"), "d");
    ASSERT_EQ(atoll_set(n, "k", atoll_int(1)), ATOLL_EINVAL); /* the int is dropped */
    ASSERT_EQ(atoll_set(n, "k", atoll_pack("{s:[i]}", "a", 1)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set(n, "k", NULL), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_int(n, "k", 1), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_real(n, "k", 1.0), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_bool(n, "k", 1), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_str(n, "k", "v"), ATOLL_EINVAL);
    ASSERT_EQ(atoll_incr(n, "k", 5), 0);
    ASSERT_EQ(atoll_del(n, "k"), ATOLL_EINVAL);
    ASSERT(atoll_iter(n) == NULL);
    ASSERT(atoll_iter_next(n, NULL) == NULL);
    const char *k = "x";
    atoll_value *v = atoll_int(1), *keep = v;
    ASSERT_EQ(atoll_iter_get(NULL, &k, &v), 0);
    ASSERT(k == NULL && v == NULL);
    ASSERT_EQ(atoll_iter_get(NULL, NULL, NULL), 0);
    atoll_unref(keep);
    ASSERT(atoll_at(n, 0) == NULL);
    ASSERT_EQ(atoll_append(n, atoll_str("x")), ATOLL_EINVAL);
    ASSERT_EQ(atoll_append(n, NULL), ATOLL_EINVAL);
    ASSERT_EQ(atoll_remove_at(n, 0), ATOLL_EINVAL);

    /* NULL keys on a real object. */
    atoll_value *o = atoll_object();
    ASSERT(atoll_get(o, NULL) == NULL);
    ASSERT_EQ(atoll_get_int(o, NULL, 9), 9);
    ASSERT_EQ(atoll_set(o, NULL, atoll_int(1)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_str(o, NULL, "v"), ATOLL_EINVAL);
    ASSERT_EQ(atoll_incr(o, NULL, 1), 0);
    ASSERT_EQ(atoll_del(o, NULL), ATOLL_EINVAL);
    ASSERT_EQ(atoll_len(o), 0);
    atoll_unref(o);

    /* A chain of calls needs one check at its end. */
    atoll_value *root = atoll_parse("{\"a\":{\"b\":[10,20]}}", 19, NULL, 0);
    ASSERT_EQ(atoll_as_int(atoll_at(atoll_get(atoll_get(root, "a"), "b"), 1), -1), 20);
    ASSERT_EQ(atoll_as_int(atoll_at(atoll_get(atoll_get(root, "a"), "zz"), 1), -1), -1);
    ASSERT_EQ(atoll_as_int(atoll_at(atoll_get(atoll_get(root, "a"), "b"), 2), -1), -1);
    atoll_unref(root);
    LEAK_CHECK();
}

/* ---- references and ownership ------------------------------------------------------- */

TEST(ref_unref_and_sharing)
{
    atoll_value *s = atoll_str("shared");
    ASSERT(atoll_ref(s) == s); /* two references now */
    atoll_value *a = atoll_object(), *b = atoll_array();
    ASSERT_EQ(atoll_set(a, "s", s), ATOLL_OK); /* takes one */
    ASSERT_EQ(atoll_append(b, s), ATOLL_OK);   /* takes the other */
    ASSERT(atoll_get(a, "s") == s);
    ASSERT(atoll_at(b, 0) == s);
    atoll_unref(a);
    ASSERT_STR(atoll_as_str(atoll_at(b, 0), NULL), "shared"); /* b still holds it */
    atoll_unref(b);

    /* A value kept with atoll_ref outlives the container it was borrowed from. */
    atoll_value *o = atoll_pack("{s:s}", "k", "v");
    atoll_value *kept = atoll_ref(atoll_get(o, "k"));
    atoll_unref(o);
    ASSERT_STR(atoll_as_str(kept, NULL), "v");
    atoll_unref(kept);
    LEAK_CHECK();
}

TEST(setters_take_the_reference_even_on_failure)
{
    atoll_value *arr = atoll_array(), *obj = atoll_object();

    /* Each value below is built inline and must be freed by the failing call. */
    ASSERT_EQ(atoll_set(arr, "k", atoll_str("not stored")), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set(obj, NULL, atoll_pack("[i,i]", 1, 2)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set(obj, "bad\xff", atoll_object()), ATOLL_EINVAL); /* key not UTF-8 */
    ASSERT_EQ(atoll_append(obj, atoll_pack("{s:s}", "a", "b")), ATOLL_EINVAL);
    atoll_value *three = atoll_int(3); /* a receiver of the wrong type stays the caller's */
    ASSERT_EQ(atoll_set(three, "k", atoll_int(4)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_as_int(three, 0), 3);
    atoll_unref(three);
    ASSERT_EQ(atoll_len(obj), 0);
    ASSERT_EQ(atoll_len(arr), 0);

    /* A container cannot hold itself; the reference handed over is still dropped. */
    ASSERT_EQ(atoll_set(obj, "self", atoll_ref(obj)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_append(arr, atoll_ref(arr)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_len(obj), 0);

    /* A failed constructor inside a setter is a failure, not a stored null. */
    ASSERT_EQ(atoll_set(obj, "s", atoll_str("\xff")), ATOLL_EINVAL);
    ASSERT_EQ(atoll_append(arr, atoll_real(NAN)), ATOLL_EINVAL);
    ASSERT(atoll_get(obj, "s") == NULL);

    atoll_unref(arr);
    atoll_unref(obj);
    LEAK_CHECK();
}

/* ---- pack --------------------------------------------------------------------------- */

TEST(pack_builds_values)
{
    atoll_value *v = atoll_pack("{s:i, s:s, s:[i,i]}", "code", 200, "msg", "ok", "xy", 1, 2);
    ASSERT_SAME(v, "{\"code\":200,\"msg\":\"ok\",\"xy\":[1,2]}");
    ASSERT_DUMP(v, "{\"code\":200,\"msg\":\"ok\",\"xy\":[1,2]}"); /* in format order */
    atoll_unref(v);

    v = atoll_pack("[I,I,f,b,b,n]", (int64_t)INT64_MAX, (int64_t)INT64_MIN, 0.5, 1, 0);
    ASSERT_EQ(atoll_as_int(atoll_at(v, 0), 0), INT64_MAX);
    ASSERT_EQ(atoll_as_int(atoll_at(v, 1), 0), INT64_MIN);
    ASSERT(atoll_as_real(atoll_at(v, 2), 0) == 0.5);
    ASSERT_EQ(atoll_typeof(atoll_at(v, 3)), ATOLL_BOOL);
    ASSERT_EQ(atoll_as_bool(atoll_at(v, 3), 0), 1);
    ASSERT_EQ(atoll_as_bool(atoll_at(v, 4), 1), 0);
    ASSERT_EQ(atoll_typeof(atoll_at(v, 5)), ATOLL_NULL);
    ASSERT(atoll_at(v, 5) != NULL); /* a JSON null item, not a missing one */
    atoll_unref(v);

    /* Scalars at the top. */
    v = atoll_pack("i", 5);
    ASSERT_EQ(atoll_typeof(v), ATOLL_INT);
    atoll_unref(v);
    v = atoll_pack("s", "plain");
    ASSERT_STR(atoll_as_str(v, NULL), "plain");
    atoll_unref(v);

    /* 'o' takes the reference, 'O' adds one. */
    atoll_value *inner = atoll_pack("[i]", 7);
    atoll_value *held = atoll_str("held");
    v = atoll_pack("{s:o, s:O}", "taken", inner, "added", held);
    ASSERT(atoll_get(v, "taken") == inner);
    ASSERT(atoll_get(v, "added") == held);
    atoll_unref(v);
    ASSERT_STR(atoll_as_str(held, NULL), "held"); /* ours is still valid */
    atoll_unref(held);

    /* Built inline, as game code does: atoll_reply(req, atoll_pack(...)). */
    atoll_value *obj = atoll_object();
    ASSERT_EQ(atoll_set(obj, "pos", atoll_pack("{s:f,s:f}", "x", 1.5, "y", -2.0)), ATOLL_OK);
    ASSERT_SAME(obj, "{\"pos\":{\"x\":1.5,\"y\":-2.0}}");
    atoll_unref(obj);
    LEAK_CHECK();
    /* A NULL value: "o?" packs JSON null, "o" fails (see the next test). */
    atoll_value *q = atoll_pack("{s:o?}", "k", (atoll_value *)NULL);
    ASSERT(q != NULL && atoll_len(q) == 1 && atoll_get(q, "k") != NULL &&
           atoll_typeof(atoll_get(q, "k")) == ATOLL_NULL);
    atoll_unref(q);
}

/* Runs fn with stderr sent to a pipe and returns what was written (static buffer). */
static const char *
capture_stderr(void (*fn)(void))
{
    static char out[8192];
    int p[2];
    ASSERT(pipe(p) == 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    int saved = dup(2);
    dup2(p[1], 2);
    fn();
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof out - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static void
pack_with_null_string(void)
{
    ASSERT(atoll_pack("{s:s}", "name", (const char *)NULL) == NULL);
}

static void
pack_with_quote_in_format(void)
{
    ASSERT(atoll_pack("[\"]") == NULL);
}

TEST(pack_failures_return_null_and_log)
{
    atoll__log_threshold = ATOLL_LOG_ERROR; /* the warnings are checked once, below */
    ASSERT(atoll_pack(NULL) == NULL);
    ASSERT(atoll_pack("") == NULL);
    ASSERT(atoll_pack("{s:i", "a", 1) == NULL);           /* unterminated */
    ASSERT(atoll_pack("{i}", 1) == NULL);                 /* key must be s */
    ASSERT(atoll_pack("[i] x", 1) == NULL);               /* garbage after */
    ASSERT(atoll_pack("z") == NULL);                      /* unknown character */
    ASSERT(atoll_pack("s", "\xc3\x28") == NULL);          /* invalid UTF-8 */
    ASSERT(atoll_pack("{s:i}", "\xff", 1) == NULL);       /* invalid UTF-8 key */
    ASSERT(atoll_pack("[f]", NAN) == NULL);               /* no NaN in JSON */
    ASSERT(atoll_pack("o", (atoll_value *)NULL) == NULL); /* a failed chain */

    /* A bad argument next to 'o' values: jansson keeps reading the arguments and drops
     * every 'o' reference, before and after the bad one (LEAK_CHECK below). */
    ASSERT(atoll_pack("{s:o, s:s, s:o}", "a", atoll_pack("[i]", 1), "b", (const char *)NULL, "c",
                      atoll_str("after")) == NULL);
    ASSERT(atoll_pack("[o, o, o]", atoll_int(1), (atoll_value *)NULL, atoll_object()) == NULL);
    ASSERT(atoll_pack("[o, f]", atoll_str("x"), INFINITY) == NULL);
    /* 'O' failing does not touch the caller's reference. */
    atoll_value *mine = atoll_str("mine");
    ASSERT(atoll_pack("[O, s]", mine, (const char *)NULL) == NULL);
    ASSERT_STR(atoll_as_str(mine, NULL), "mine");
    atoll_unref(mine);

    /* The failure is logged as a warning with jansson's reason. */
    atoll__log_threshold = ATOLL_LOG_WARN;
    const char *log = capture_stderr(pack_with_null_string);
    ASSERT(strstr(log, "level=warn") != NULL);
    ASSERT(strstr(log, "msg=\"atoll_pack failed\" error=\"NULL string\"") != NULL);
    ASSERT(strstr(log, "fmt=\"{s:s}\"") != NULL);
    /* A quote in the format cannot break the logfmt line. */
    log = capture_stderr(pack_with_quote_in_format);
    ASSERT(strstr(log, "fmt=\"[?]\"") != NULL);
    LEAK_CHECK();
}

/* ---- parse -------------------------------------------------------------------------- */

TEST(parse_any_value)
{
    static const struct {
        const char *text;
        atoll_type type;
    } cases[] = {
        {"{}", ATOLL_OBJECT},
        {"[]", ATOLL_ARRAY},
        {"1", ATOLL_INT},
        {"-0", ATOLL_INT},
        {"1.0", ATOLL_REAL},
        {"1e2", ATOLL_REAL},
        {"\"s\"", ATOLL_STRING},
        {"true", ATOLL_BOOL},
        {"false", ATOLL_BOOL},
        {"null", ATOLL_NULL},
        {" \t\r\n[ 1 , 2 ]\n", ATOLL_ARRAY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[64] = "untouched";
        atoll_value *v = atoll_parse(cases[i].text, strlen(cases[i].text), err, sizeof err);
        ASSERT(v != NULL);
        ASSERT_EQ(atoll_typeof(v), cases[i].type);
        ASSERT_STR(err, ""); /* cleared on success */
        atoll_unref(v);
    }

    /* len bounds the text: no NUL needed, and what follows is not read. */
    const char text[] = {'[', '1', ',', '2', ']', 'x', 'y'};
    atoll_value *v = atoll_parse(text, 5, NULL, 0);
    ASSERT_SAME(v, "[1,2]");
    atoll_unref(v);

    /* Escapes decode to UTF-8; duplicate keys keep the last value. */
    v = parse_str("{\"e\":\"\\u00e9\\ud834\\udd1e\\n\\\"\\/\",\"d\":1,\"d\":2}");
    ASSERT_STR(atoll_get_str(v, "e", NULL), "\xc3\xa9\xf0\x9d\x84\x9e\n\"/");
    ASSERT_EQ(atoll_get_int(v, "d", 0), 2);
    ASSERT_EQ(atoll_len(v), 2);
    atoll_unref(v);
    LEAK_CHECK();
}

TEST(parse_errors)
{
    static const char *const bad[] = {
        "",                     /* nothing */
        "   ",                  /* only whitespace */
        "{",                    /* unterminated */
        "[1,]",                 /* trailing comma */
        "{\"a\":1,}",           /* trailing comma */
        "{a:1}",                /* bare key */
        "nul",                  /* truncated literal */
        "1 2",                  /* two values */
        "[1] x",                /* garbage after */
        "01",                   /* leading zero */
        "'s'",                  /* single quotes */
        "\"a\\u0000b\"",        /* NUL escape refused */
        "{\"a\\u0000\":1}",     /* NUL in a key */
        "\"\xff\"",             /* invalid UTF-8 */
        "\"\xed\xa0\x80\"",     /* encoded surrogate */
        "\"\\ud800\"",          /* lone surrogate escape */
        "\"tab\there\"",        /* raw control character */
        "9223372036854775808",  /* past INT64_MAX */
        "-9223372036854775809", /* past INT64_MIN */
        "1e400",                /* past DBL_MAX */
        "NaN",
        "[1,2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[160] = "";
        atoll_value *v = atoll_parse(bad[i], strlen(bad[i]), err, sizeof err);
        if (v != NULL)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        ASSERT(v == NULL);
        ASSERT(err[0] != '\0');
        ASSERT(strstr(err, "(line ") != NULL && strstr(err, ", column ") != NULL);
    }

    /* A raw NUL byte inside the text is refused too. */
    const char nul[] = {'"', 'a', '\0', 'b', '"'};
    ASSERT(atoll_parse(nul, sizeof nul, NULL, 0) == NULL);

    /* The sentence names the position, on later lines as well. */
    char err[160];
    ASSERT(atoll_parse("{\n  \"a\": tru\n}", 14, err, sizeof err) == NULL);
    ASSERT(strstr(err, "(line 2, column ") != NULL);

    /* err is optional, bounded by errlen and always NUL-terminated. */
    ASSERT(atoll_parse("[", 1, NULL, 100) == NULL);
    char small[8];
    memset(small, 'Z', sizeof small);
    ASSERT(atoll_parse("[", 1, small, sizeof small) == NULL);
    ASSERT_EQ(strlen(small), sizeof small - 1);
    char untouched[4] = "abc";
    ASSERT(atoll_parse("[", 1, untouched, 0) == NULL);
    ASSERT_STR(untouched, "abc");
    ASSERT(atoll_parse(NULL, 5, err, sizeof err) == NULL);
    ASSERT(err[0] != '\0');
    LEAK_CHECK();
}

/* ---- dump --------------------------------------------------------------------------- */

TEST(dump_is_compact_and_round_trips)
{
    atoll_value *v =
        atoll_pack("{s:i, s:[b,n,s], s:f, s:{}, s:[]}", "a", 1, "b", 1, "x", "c", 1.5, "d", "e");
    ASSERT_DUMP(v, "{\"a\":1,\"b\":[true,null,\"x\"],\"c\":1.5,\"d\":{},\"e\":[]}");

    size_t len = 0;
    char *text = atoll_dump(v, &len);
    atoll_value *back = atoll_parse(text, len, NULL, 0);
    ASSERT(atoll_equal(v, back));
    char *again = atoll_dump(back, NULL);
    ASSERT_STR(again, text);
    atoll_free(text);
    atoll_free(again);
    atoll_unref(back);
    atoll_unref(v);

    /* Any value, not only containers, at the top. */
    atoll_value *s[] = {atoll_int(-3), atoll_real(2.0), atoll_str("q\"\\\n\x01"), atoll_null()};
    const char *want[] = {"-3", "2.0", "\"q\\\"\\\\\\n\\u0001\"", "null"};
    for (size_t i = 0; i < 4; i++) {
        ASSERT_DUMP(s[i], want[i]);
        atoll_unref(s[i]);
    }

    /* UTF-8 stays raw (no \u escapes for non-ASCII), '/' is not escaped. */
    v = atoll_str("\xc3\xa9/\xf0\x9d\x84\x9e");
    ASSERT_DUMP(v, "\"\xc3\xa9/\xf0\x9d\x84\x9e\"");
    atoll_unref(v);

    /* Reals round-trip exactly (17 significant digits), even when that is long. */
    double reals[] = {0.1, -1.0 / 3.0, 1e300, 5e-324, -0.0, 123456789.125};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        atoll_value *r = atoll_real(reals[i]);
        char *t = atoll_dump(r, &len);
        atoll_value *b = atoll_parse(t, len, NULL, 0);
        ASSERT_EQ(atoll_typeof(b), ATOLL_REAL);
        ASSERT(memcmp(&reals[i], &(double){atoll_as_real(b, 1)}, sizeof(double)) == 0);
        atoll_free(t);
        atoll_unref(b);
        atoll_unref(r);
    }
    LEAK_CHECK();
}

/* ---- reading scalars ---------------------------------------------------------------- */

TEST(int_and_real_conversions)
{
    static const struct {
        double d;
        int64_t want;
    } trunc[] = {
        {2.9, 2},
        {-2.9, -2},
        {0.5, 0},
        {-0.5, 0},
        {1e15 + 0.5, 1000000000000000},
        {-9223372036854775808.0, INT64_MIN},
        {9223372036854774784.0, 9223372036854774784},
    };
    for (size_t i = 0; i < sizeof trunc / sizeof trunc[0]; i++) {
        atoll_value *r = atoll_real(trunc[i].d);
        ASSERT_EQ(atoll_as_int(r, 77), trunc[i].want);
        atoll_unref(r);
    }
    /* No int64 to truncate to: the default, as for another type. */
    double out[] = {9223372036854775808.0, -9223372036854777856.0, 1e300, -1e300};
    for (size_t i = 0; i < 4; i++) {
        atoll_value *r = atoll_real(out[i]);
        ASSERT_EQ(atoll_as_int(r, 77), 77);
        atoll_unref(r);
    }

    atoll_value *i3 = atoll_int(3);
    ASSERT(atoll_as_real(i3, 0) == 3.0);
    ASSERT_EQ(atoll_typeof(i3), ATOLL_INT); /* reading converts, the value stays */
    atoll_unref(i3);
    atoll_value *big = atoll_int(INT64_MAX);
    ASSERT(atoll_as_real(big, 0) == 9223372036854775808.0); /* nearest double */
    atoll_unref(big);

    /* Other types give the default: no string parsing, no truthiness. */
    atoll_value *s = atoll_str("12"), *one = atoll_int(1), *t = atoll_bool(1);
    ASSERT_EQ(atoll_as_int(s, -1), -1);
    ASSERT(atoll_as_real(s, -1.0) == -1.0);
    ASSERT_EQ(atoll_as_bool(one, 5), 5);
    ASSERT_EQ(atoll_as_int(t, -1), -1);
    ASSERT(atoll_as_str(one, NULL) == NULL);
    ASSERT_STR(atoll_as_str(t, "d"), "d");
    atoll_unref(s);
    atoll_unref(one);
    atoll_unref(t);
    LEAK_CHECK();
}

TEST(large_int64_values)
{
    atoll_value *v = parse_str("[9223372036854775807,-9223372036854775808,9007199254740993]");
    ASSERT_EQ(atoll_as_int(atoll_at(v, 0), 0), INT64_MAX);
    ASSERT_EQ(atoll_as_int(atoll_at(v, 1), 0), INT64_MIN);
    ASSERT_EQ(atoll_as_int(atoll_at(v, 2), 0), 9007199254740993); /* 2^53 + 1, exact */
    ASSERT_EQ(atoll_typeof(atoll_at(v, 2)), ATOLL_INT);
    ASSERT_DUMP(v, "[9223372036854775807,-9223372036854775808,9007199254740993]");
    atoll_unref(v);

    atoll_value *o = atoll_object();
    ASSERT_EQ(atoll_set_int(o, "max", INT64_MAX), ATOLL_OK);
    ASSERT_EQ(atoll_set_int(o, "min", INT64_MIN), ATOLL_OK);
    ASSERT_EQ(atoll_get_int(o, "max", 0), INT64_MAX);
    ASSERT_EQ(atoll_get_int(o, "min", 0), INT64_MIN);
    size_t len;
    char *text = atoll_dump(o, &len);
    atoll_value *back = atoll_parse(text, len, NULL, 0);
    ASSERT(atoll_equal(o, back));
    ASSERT_EQ(atoll_get_int(back, "min", 0), INT64_MIN);
    atoll_free(text);
    atoll_unref(back);
    atoll_unref(o);
    LEAK_CHECK();
}

TEST(len_of_each_type)
{
    atoll_value *a = parse_str("[1,[2,3],{}]"), *o = parse_str("{\"a\":1,\"b\":[1,2,3]}");
    atoll_value *s = atoll_str("\xc3\xa9t\xc3\xa9"), *i = atoll_int(12345), *r = atoll_real(1.5);
    atoll_value *b = atoll_bool(1), *n = atoll_null(), *e = atoll_str("");
    ASSERT_EQ(atoll_len(a), 3); /* items, not deep */
    ASSERT_EQ(atoll_len(o), 2);
    ASSERT_EQ(atoll_len(s), 5); /* bytes */
    ASSERT_EQ(atoll_len(e), 0);
    ASSERT_EQ(atoll_len(i), 0);
    ASSERT_EQ(atoll_len(r), 0);
    ASSERT_EQ(atoll_len(b), 0);
    ASSERT_EQ(atoll_len(n), 0);
    atoll_value *all[] = {a, o, s, i, r, b, n, e};
    for (size_t k = 0; k < 8; k++)
        atoll_unref(all[k]);
    LEAK_CHECK();
}

/* ---- objects ------------------------------------------------------------------------ */

TEST(object_get_and_typed_getters)
{
    atoll_value *o = parse_str("{\"i\":7,\"r\":2.75,\"b\":true,\"s\":\"str\",\"n\":null,"
                               "\"a\":[1],\"o\":{\"x\":1}}");
    ASSERT_EQ(atoll_typeof(atoll_get(o, "a")), ATOLL_ARRAY);
    ASSERT(atoll_get(o, "missing") == NULL);
    ASSERT(atoll_get(o, "n") != NULL); /* present, with a null value */
    ASSERT_EQ(atoll_typeof(atoll_get(o, "n")), ATOLL_NULL);
    ASSERT(atoll_get(o, "") == NULL);

    ASSERT_EQ(atoll_get_int(o, "i", -1), 7);
    ASSERT_EQ(atoll_get_int(o, "r", -1), 2); /* a real reads as an int, truncated */
    ASSERT(atoll_get_real(o, "r", -1) == 2.75);
    ASSERT(atoll_get_real(o, "i", -1) == 7.0); /* and an int as a real */
    ASSERT_EQ(atoll_get_bool(o, "b", 0), 1);
    ASSERT_STR(atoll_get_str(o, "s", NULL), "str");

    /* Missing or of another type: def. */
    const char *keys[] = {"missing", "s", "b", "n", "a", "o"};
    for (size_t k = 0; k < 6; k++) {
        ASSERT_EQ(atoll_get_int(o, keys[k], -5), -5);
        ASSERT(atoll_get_real(o, keys[k], -5.5) == -5.5);
    }
    const char *notbool[] = {"missing", "i", "r", "s", "n", "a", "o"};
    const char *notstr[] = {"missing", "i", "r", "b", "n", "a", "o"};
    for (size_t k = 0; k < 7; k++) {
        ASSERT_EQ(atoll_get_bool(o, notbool[k], 9), 9);
        ASSERT_STR(atoll_get_str(o, notstr[k], "def"), "def");
    }

    /* Getters on something that is not an object. */
    atoll_value *arr = parse_str("[{\"i\":1}]");
    ASSERT(atoll_get(arr, "i") == NULL);
    ASSERT_EQ(atoll_get_int(arr, "i", -1), -1);
    atoll_unref(arr);
    atoll_unref(o);
    LEAK_CHECK();
}

TEST(object_setters_replace)
{
    atoll_value *o = atoll_object();
    ASSERT_EQ(atoll_set_int(o, "i", 1), ATOLL_OK);
    ASSERT_EQ(atoll_set_real(o, "r", 0.25), ATOLL_OK);
    ASSERT_EQ(atoll_set_bool(o, "b", 7), ATOLL_OK);
    ASSERT_EQ(atoll_set_str(o, "s", "x"), ATOLL_OK);
    ASSERT_EQ(atoll_set(o, "v", atoll_pack("[s]", "in")), ATOLL_OK);
    ASSERT_EQ(atoll_set(o, "\xc3\xa9", atoll_null()), ATOLL_OK); /* UTF-8 keys are fine */
    ASSERT_SAME(o, "{\"i\":1,\"r\":0.25,\"b\":true,\"s\":\"x\",\"v\":[\"in\"],\"\xc3\xa9\":null}");

    /* Replacing changes the value (and type), not the member count or its place. */
    ASSERT_EQ(atoll_set_str(o, "i", "now a string"), ATOLL_OK);
    ASSERT_EQ(atoll_set_int(o, "v", 2), ATOLL_OK);
    ASSERT_EQ(atoll_len(o), 6);
    ASSERT_DUMP(o, "{\"i\":\"now a string\",\"r\":0.25,\"b\":true,\"s\":\"x\",\"v\":2,"
                   "\"\xc3\xa9\":null}");

    /* Refused values leave the old member in place. */
    ASSERT_EQ(atoll_set_str(o, "s", NULL), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_str(o, "s", "\xff"), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_real(o, "r", NAN), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_int(o, "\xff", 1), ATOLL_EINVAL);
    ASSERT_STR(atoll_get_str(o, "s", NULL), "x");
    ASSERT(atoll_get_real(o, "r", 0) == 0.25);
    ASSERT_EQ(atoll_len(o), 6);

    /* Setters on a non-object. */
    atoll_value *a = atoll_array();
    ASSERT_EQ(atoll_set_int(a, "k", 1), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_real(a, "k", 1), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_bool(a, "k", 1), ATOLL_EINVAL);
    ASSERT_EQ(atoll_set_str(a, "k", "v"), ATOLL_EINVAL);
    ASSERT_EQ(atoll_len(a), 0);
    atoll_unref(a);
    atoll_unref(o);
    LEAK_CHECK();
}

TEST(object_del)
{
    atoll_value *o = parse_str("{\"a\":1,\"b\":[1,2],\"c\":3}");
    ASSERT_EQ(atoll_del(o, "b"), ATOLL_OK);
    ASSERT_EQ(atoll_del(o, "b"), ATOLL_ENOENT);
    ASSERT_EQ(atoll_del(o, "zz"), ATOLL_ENOENT);
    ASSERT_EQ(atoll_del(o, NULL), ATOLL_EINVAL);
    ASSERT_SAME(o, "{\"a\":1,\"c\":3}");
    atoll_value *a = parse_str("[1]");
    ASSERT_EQ(atoll_del(a, "0"), ATOLL_EINVAL);
    atoll_unref(a);
    atoll_unref(o);
    LEAK_CHECK();
}

/* Collects "k=v," for every member, walking with the loop the header shows. */
static void
walk(const atoll_value *obj, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    const char *k;
    atoll_value *v;
    for (void *it = atoll_iter(obj); atoll_iter_get(it, &k, &v); it = atoll_iter_next(obj, it))
        n += (size_t)snprintf(out + n, cap - n, "%s=%lld,", k, (long long)atoll_as_int(v, -1));
}

TEST(iteration_in_insertion_order)
{
    /* Far from sorted and from any hash order, and enough to grow the table. */
    static const char *const keys[] = {"zeta", "alpha", "mu", "beta", "omega", "k1", "k10",
                                       "k2",   "a",     "zz", "m",    "q",     "e",  "x0",
                                       "x9",   "b",     "c2", "c1",   "y",     "d"};
    enum { N = sizeof keys / sizeof keys[0] };
    atoll_value *o = atoll_object();
    char want[512] = "";
    size_t wn = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(atoll_set_int(o, keys[i], i), ATOLL_OK);
        wn += (size_t)snprintf(want + wn, sizeof want - wn, "%s=%d,", keys[i], i);
    }
    char got[512];
    walk(o, got, sizeof got);
    ASSERT_STR(got, want);

    /* The dump follows the same order. */
    char *text = atoll_dump(o, NULL);
    ASSERT(strncmp(text, "{\"zeta\":0,\"alpha\":1,\"mu\":2,", 27) == 0);
    atoll_free(text);

    /* Replacing keeps the place; deleting and adding again moves to the end. */
    atoll_value *small = atoll_pack("{s:i,s:i,s:i}", "c", 1, "a", 2, "b", 3);
    ASSERT_EQ(atoll_set_int(small, "c", 10), ATOLL_OK);
    walk(small, got, sizeof got);
    ASSERT_STR(got, "c=10,a=2,b=3,");
    ASSERT_EQ(atoll_del(small, "c"), ATOLL_OK);
    ASSERT_EQ(atoll_set_int(small, "c", 11), ATOLL_OK);
    walk(small, got, sizeof got);
    ASSERT_STR(got, "a=2,b=3,c=11,");

    /* The walk hands out borrowed values that can be changed in place. */
    const char *k;
    atoll_value *v;
    for (void *it = atoll_iter(small); atoll_iter_get(it, &k, &v); it = atoll_iter_next(small, it))
        ASSERT_EQ(atoll_set_int(small, k, atoll_as_int(v, 0) * 2), ATOLL_OK);
    walk(small, got, sizeof got);
    ASSERT_STR(got, "a=4,b=6,c=22,");

    /* Nothing to walk: empty objects and other types. */
    atoll_value *empty = atoll_object(), *arr = parse_str("[1,2]");
    ASSERT(atoll_iter(empty) == NULL);
    ASSERT(atoll_iter(arr) == NULL);
    ASSERT(atoll_iter_next(arr, atoll_iter(o)) == NULL);
    walk(empty, got, sizeof got);
    ASSERT_STR(got, "");

    /* key and v may be NULL when only one of them is wanted. */
    int count = 0;
    for (void *it = atoll_iter(o); atoll_iter_get(it, NULL, NULL); it = atoll_iter_next(o, it))
        count++;
    ASSERT_EQ(count, N);

    atoll_unref(empty);
    atoll_unref(arr);
    atoll_unref(small);
    atoll_unref(o);
    LEAK_CHECK();
}

TEST(incr_counts)
{
    atoll_value *o = atoll_object();
    ASSERT_EQ(atoll_incr(o, "level", 1), 1); /* missing counts as 0 */
    ASSERT_EQ(atoll_incr(o, "level", 1), 2);
    ASSERT_EQ(atoll_incr(o, "level", -5), -3);
    ASSERT_EQ(atoll_incr(o, "level", 0), -3);
    ASSERT_EQ(atoll_get_int(o, "level", 0), -3);
    ASSERT_EQ(atoll_typeof(atoll_get(o, "level")), ATOLL_INT);

    /* A member that is not an integer counts as 0 and is replaced by the integer. */
    ASSERT_EQ(atoll_set_str(o, "s", "12"), ATOLL_OK);
    ASSERT_EQ(atoll_set_real(o, "r", 2.5), ATOLL_OK);
    ASSERT_EQ(atoll_set(o, "n", atoll_null()), ATOLL_OK);
    ASSERT_EQ(atoll_set(o, "a", atoll_pack("[i]", 1)), ATOLL_OK);
    ASSERT_EQ(atoll_incr(o, "s", 3), 3);
    ASSERT_EQ(atoll_incr(o, "r", 3), 3);
    ASSERT_EQ(atoll_incr(o, "n", 3), 3);
    ASSERT_EQ(atoll_incr(o, "a", 3), 3);
    ASSERT_DUMP(o, "{\"level\":-3,\"s\":3,\"r\":3,\"n\":3,\"a\":3}");

    /* Saturates instead of wrapping. */
    ASSERT_EQ(atoll_set_int(o, "big", INT64_MAX - 1), ATOLL_OK);
    ASSERT_EQ(atoll_incr(o, "big", 1), INT64_MAX);
    ASSERT_EQ(atoll_incr(o, "big", 1), INT64_MAX);
    ASSERT_EQ(atoll_incr(o, "big", INT64_MIN), -1);
    ASSERT_EQ(atoll_incr(o, "low", INT64_MIN), INT64_MIN);
    ASSERT_EQ(atoll_incr(o, "low", -1), INT64_MIN);
    ASSERT_EQ(atoll_incr(o, "low", INT64_MAX), -1);

    /* A counter shared with another holder is replaced, not changed under it. */
    atoll_value *seen = atoll_ref(atoll_get(o, "level"));
    ASSERT_EQ(atoll_incr(o, "level", 10), 7);
    ASSERT_EQ(atoll_as_int(seen, 0), -3);
    ASSERT_EQ(atoll_incr(o, "level", 1), 8); /* now the only holder: in place again */
    atoll_unref(seen);

    /* Nothing to count on: 0, and nothing changes. */
    atoll_value *arr = atoll_array();
    ASSERT_EQ(atoll_incr(arr, "k", 4), 0);
    ASSERT_EQ(atoll_len(arr), 0);
    ASSERT_EQ(atoll_incr(o, "\xff", 4), 0); /* a key jansson cannot store */
    ASSERT(atoll_get(o, "\xff") == NULL);
    atoll_unref(arr);
    atoll_unref(o);
    LEAK_CHECK();
}

/* ---- arrays ------------------------------------------------------------------------- */

TEST(arrays_append_at_remove)
{
    atoll_value *a = atoll_array();
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(atoll_append(a, atoll_int(i * 10)), ATOLL_OK);
    ASSERT_EQ(atoll_append(a, atoll_pack("{s:s}", "k", "v")), ATOLL_OK);
    ASSERT_EQ(atoll_len(a), 6);
    ASSERT_EQ(atoll_as_int(atoll_at(a, 0), -1), 0);
    ASSERT_EQ(atoll_as_int(atoll_at(a, 4), -1), 40);
    ASSERT_STR(atoll_get_str(atoll_at(a, 5), "k", NULL), "v");
    ASSERT(atoll_at(a, 6) == NULL);
    ASSERT(atoll_at(a, (size_t)-1) == NULL);

    /* Removing moves the later items down and frees the removed one. */
    ASSERT_EQ(atoll_remove_at(a, 1), ATOLL_OK);
    ASSERT_DUMP(a, "[0,20,30,40,{\"k\":\"v\"}]");
    ASSERT_EQ(atoll_remove_at(a, 4), ATOLL_OK); /* the last */
    ASSERT_EQ(atoll_remove_at(a, 0), ATOLL_OK); /* the first */
    ASSERT_DUMP(a, "[20,30,40]");
    ASSERT_EQ(atoll_remove_at(a, 3), ATOLL_ENOENT);
    ASSERT_EQ(atoll_remove_at(a, (size_t)-1), ATOLL_ENOENT);
    ASSERT_EQ(atoll_len(a), 3);
    while (atoll_len(a) > 0)
        ASSERT_EQ(atoll_remove_at(a, 0), ATOLL_OK);
    ASSERT_EQ(atoll_remove_at(a, 0), ATOLL_ENOENT);
    ASSERT_DUMP(a, "[]");

    /* A removed item someone kept survives its removal. */
    ASSERT_EQ(atoll_append(a, atoll_str("kept")), ATOLL_OK);
    atoll_value *kept = atoll_ref(atoll_at(a, 0));
    ASSERT_EQ(atoll_remove_at(a, 0), ATOLL_OK);
    ASSERT_STR(atoll_as_str(kept, NULL), "kept");
    atoll_unref(kept);

    /* Arrays only. */
    atoll_value *o = parse_str("{\"0\":1}");
    ASSERT(atoll_at(o, 0) == NULL);
    ASSERT_EQ(atoll_remove_at(o, 0), ATOLL_EINVAL);
    ASSERT_EQ(atoll_append(o, atoll_int(1)), ATOLL_EINVAL);
    ASSERT_EQ(atoll_len(o), 1);
    ASSERT_EQ(atoll_append(a, NULL), ATOLL_EINVAL);
    ASSERT_EQ(atoll_len(a), 0);
    atoll_unref(o);
    atoll_unref(a);
    LEAK_CHECK();
}

/* ---- copy and equal ----------------------------------------------------------------- */

TEST(copy_is_deep)
{
    atoll_value *v = parse_str("{\"p\":{\"hp\":10,\"items\":[\"sword\",{\"n\":1}]},\"t\":1.5}");
    atoll_value *c = atoll_copy(v);
    ASSERT(c != NULL && c != v);
    ASSERT(atoll_equal(v, c));
    ASSERT(atoll_get(c, "p") != atoll_get(v, "p")); /* not shared */

    /* Change the copy at every depth; the original does not move. */
    ASSERT_EQ(atoll_set_int(atoll_get(c, "p"), "hp", 0), ATOLL_OK);
    ASSERT_EQ(atoll_incr(atoll_at(atoll_get(atoll_get(c, "p"), "items"), 1), "n", 1), 2);
    ASSERT_EQ(atoll_append(atoll_get(atoll_get(c, "p"), "items"), atoll_null()), ATOLL_OK);
    ASSERT(!atoll_equal(v, c));
    ASSERT_SAME(v, "{\"p\":{\"hp\":10,\"items\":[\"sword\",{\"n\":1}]},\"t\":1.5}");
    ASSERT_SAME(c, "{\"p\":{\"hp\":0,\"items\":[\"sword\",{\"n\":2},null]},\"t\":1.5}");
    atoll_unref(c);
    atoll_unref(v);

    atoll_value *s = atoll_str("x"), *sc = atoll_copy(s);
    ASSERT(atoll_equal(s, sc));
    atoll_unref(s);
    ASSERT_STR(atoll_as_str(sc, NULL), "x");
    atoll_unref(sc);
    LEAK_CHECK();
}

TEST(equal_compares_by_value)
{
    static const struct {
        const char *a, *b;
        int eq;
    } cases[] = {
        {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", 1}, /* member order does not matter */
        {"[1,2]", "[2,1]", 0},                         /* item order does */
        {"1", "1.0", 0},                               /* int and real differ */
        {"1.0", "1.00", 1},
        {"0.0", "-0.0", 1},
        {"\"a\"", "\"a\"", 1},
        {"\"a\"", "\"a \"", 0},
        {"null", "null", 1},
        {"true", "false", 0},
        {"{}", "[]", 0},
        {"{\"a\":[1,{\"b\":null}]}", "{\"a\":[1,{\"b\":null}]}", 1},
        {"{\"a\":[1,{\"b\":null}]}", "{\"a\":[1,{\"b\":false}]}", 0},
        {"{\"a\":1}", "{\"a\":1,\"b\":1}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        atoll_value *a = parse_str(cases[i].a), *b = parse_str(cases[i].b);
        ASSERT_EQ(atoll_equal(a, b), cases[i].eq);
        ASSERT_EQ(atoll_equal(b, a), cases[i].eq);
        ASSERT_EQ(atoll_equal(a, a), 1);
        ASSERT_EQ(atoll_equal(a, NULL), 0);
        ASSERT_EQ(atoll_equal(NULL, a), 0);
        atoll_unref(a);
        atoll_unref(b);
    }
    LEAK_CHECK();
}

/* ---- the undo journal (value.h) ---------------------------------------------------------- */

static atoll_value *
doc(const char *json)
{
    atoll_value *v = atoll_parse(json, strlen(json), NULL, 0);
    ASSERT(v != NULL);
    return v;
}

static void
expect_json(const atoll_value *v, const char *want)
{
    char *got = atoll_dump(v, NULL);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "  got %s, want %s\n", got, want);
    ASSERT_STR(got, want);
    atoll_free(got);
}

TEST(journal_rolls_back_every_setter)
{
    atoll_value *v = doc("{\"level\":7,\"name\":\"a\",\"inv\":[1,2,3],\"pos\":{\"x\":1}}");
    atoll_value *shared = atoll_ref(atoll_get(v, "pos"));
    atoll__vjournal j = {0};
    atoll__vj_use(&j);
    atoll_incr(v, "level", 5);                  /* in place: the integer itself changes */
    atoll_set_str(v, "name", "b");              /* replaced */
    atoll_set_int(v, "gold", 10);               /* new member */
    atoll_del(v, "gold");                       /* ... removed again */
    atoll_append(atoll_get(v, "inv"), atoll_int(4));
    atoll_remove_at(atoll_get(v, "inv"), 0);
    atoll_set_int(atoll_get(v, "pos"), "x", 9); /* deep */
    atoll_del(v, "pos");
    ASSERT(j.n > 0);
    atoll__vj_use(NULL);
    atoll_set_int(v, "later", 1);               /* no journal current: not recorded */
    atoll_del(v, "later");
    atoll__vj_rollback(&j);
    expect_json(v, "{\"level\":7,\"name\":\"a\",\"inv\":[1,2,3],\"pos\":{\"x\":1}}");
    ASSERT(atoll_get(v, "pos") == shared);      /* the very same object is back */
    ASSERT_EQ(j.n, 0);
    atoll_unref(shared);
    atoll_unref(v);
    atoll__vj_fini(&j);
}

TEST(journal_clear_keeps_the_changes)
{
    atoll_value *v = doc("{\"n\":1}");
    atoll__vjournal j = {0};
    atoll__vj_use(&j);
    ASSERT_EQ(atoll_incr(v, "n", 1), 2);
    ASSERT_EQ(atoll_set(v, "k", NULL), ATOLL_EINVAL); /* refused: nothing recorded */
    ASSERT_EQ(j.n, 1);
    atoll__vj_use(NULL);
    atoll__vj_clear(&j);
    atoll__vj_rollback(&j);                     /* nothing left to undo */
    expect_json(v, "{\"n\":2}");
    atoll_unref(v);
    atoll__vj_fini(&j);
}

TEST(doc_decode_limits)
{
    char err[200] = "";
    atoll_value *v = atoll__value_doc_decode((const uint8_t *)"{\"a\":1}", 7, err, sizeof err);
    ASSERT(v != NULL);
    atoll_unref(v);
    ASSERT(atoll__value_doc_decode((const uint8_t *)"[1]", 3, err, sizeof err) == NULL);
    ASSERT(strstr(err, "not an object") != NULL);
    ASSERT(atoll__value_doc_decode((const uint8_t *)"{\"a\":1,\"a\":2}", 13, err, sizeof err) == NULL);
    ASSERT(strstr(err, "not a document") != NULL);
    ASSERT(atoll__value_doc_decode((const uint8_t *)"{", ATOLL__VALUE_DOC_MAX + 1, err,
                                   sizeof err) == NULL); /* refused before reading */
    ASSERT(strstr(err, "over the limit") != NULL);
}

TEST_MAIN(journal_rolls_back_every_setter, journal_clear_keeps_the_changes, doc_decode_limits,
          constructors_and_types, bad_arguments_give_null, strings_reject_invalid_utf8,
          strn_copies_exactly_n_bytes, every_function_tolerates_null, ref_unref_and_sharing,
          setters_take_the_reference_even_on_failure, pack_builds_values,
          pack_failures_return_null_and_log, parse_any_value, parse_errors,
          dump_is_compact_and_round_trips, int_and_real_conversions, large_int64_values,
          len_of_each_type, object_get_and_typed_getters, object_setters_replace, object_del,
          iteration_in_insertion_order, incr_counts, arrays_append_at_remove, copy_is_deep,
          equal_compares_by_value)

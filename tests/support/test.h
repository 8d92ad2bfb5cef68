/* test.h -- the project's small test harness: assertions, a test list, TAP output.
 *
 * Each test file is one program: it defines tests with TEST(name) and ends with
 * TEST_MAIN(name, name, ...). Every test runs in its own forked process with a
 * timeout (a hang or a crash fails that test alone and the next one still runs); a
 * failed assertion prints file:line and the values, and ends that test. The program
 * prints TAP lines and a closing "N passed, M failed" and exits non-zero on any
 * failure. `prog NAME` runs one test in the foreground (for gdb).
 */
#ifndef ATOLL_TEST_H
#define ATOLL_TEST_H

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void (*test_fn)(void);
typedef struct {
    const char *name;
    test_fn fn;
} test_entry;

#define TEST(name) static void name(void)

static inline void
test_fail_(const char *file, int line, const char *what)
{
    fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, what);
    fflush(stderr);
    _exit(1);
}

#define ASSERT(cond)                                                                       \
    do {                                                                                   \
        if (!(cond))                                                                       \
            test_fail_(__FILE__, __LINE__, "ASSERT(" #cond ")");                           \
    } while (0)

#define ASSERT_EQ(a, b)                                                                    \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ != b_) {                                                                    \
            char m_[512];                                                                  \
            snprintf(m_, sizeof m_, "%s == %s (%lld vs %lld)", #a, #b, a_, b_);            \
            test_fail_(__FILE__, __LINE__, m_);                                            \
        }                                                                                  \
    } while (0)

#define ASSERT_STR(a, b)                                                                   \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                             \
            char m_[1400];                                                                 \
            snprintf(m_, sizeof m_, "%s == %s (\"%.500s\" vs \"%.500s\")", #a, #b,         \
                     a_ ? a_ : "(null)", b_ ? b_ : "(null)");                              \
            test_fail_(__FILE__, __LINE__, m_);                                            \
        }                                                                                  \
    } while (0)

#define ASSERT_MEM(a, b, n)                                                                \
    do {                                                                                   \
        if (memcmp((a), (b), (n)) != 0)                                                    \
            test_fail_(__FILE__, __LINE__, "memcmp(" #a ", " #b ", " #n ") == 0");         \
    } while (0)

/* Parses "04 00 00 2b ..." hex text into out; returns the byte count. */
static inline size_t
test_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*hex) {
        while (*hex == ' ' || *hex == '\n' || *hex == '|')
            hex++;
        if (!*hex)
            break;
        unsigned v;
        if (sscanf(hex, "%2x", &v) != 1 || n >= cap)
            test_fail_(__FILE__, __LINE__, "bad hex in test vector");
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

#ifndef TEST_TIMEOUT_S
#define TEST_TIMEOUT_S 60
#endif

static inline int
test_run_all_(const test_entry *tests, size_t n, int argc, char **argv)
{
    if (argc > 1) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(tests[i].name, argv[1]) == 0) {
                tests[i].fn();
                printf("ok 1 - %s\n", tests[i].name);
                return 0;
            }
        fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("1..%zu\n", n);
    fflush(stdout);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(TEST_TIMEOUT_S);
            tests[i].fn();
            fflush(stdout);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) {
            failed++;
            if (WIFSIGNALED(status))
                fprintf(stderr, "  %s: killed by signal %d%s\n", tests[i].name,
                        WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
        }
        printf("%s %zu - %s\n", ok ? "ok" : "not ok", i + 1, tests[i].name);
        fflush(stdout);
    }
    printf("%zu passed, %d failed\n", n - (size_t)failed, failed);
    return failed ? 1 : 0;
}

#define TEST_ENTRY_(name) {#name, name},
#define TEST_MAIN(...)                                                                     \
    int main(int argc, char **argv)                                                        \
    {                                                                                      \
        static const test_entry tests_[] = {TEST_FOREACH_(TEST_ENTRY_, __VA_ARGS__)};      \
        return test_run_all_(tests_, sizeof tests_ / sizeof tests_[0], argc, argv);        \
    }

/* A FOREACH over up to 64 names. */
#define TEST_NARG_(...) TEST_NARG_I_(__VA_ARGS__, TEST_RSEQ_())
#define TEST_NARG_I_(...) TEST_ARG_N_(__VA_ARGS__)
#define TEST_ARG_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16,  \
                    _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30,   \
                    _31, _32, _33, _34, _35, _36, _37, _38, _39, _40, _41, _42, _43, _44,   \
                    _45, _46, _47, _48, _49, _50, _51, _52, _53, _54, _55, _56, _57, _58,   \
                    _59, _60, _61, _62, _63, _64, N, ...)                                   \
    N
#define TEST_RSEQ_()                                                                       \
    64, 63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, \
        42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, \
        21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0
#define TEST_CAT_(a, b) TEST_CAT_I_(a, b)
#define TEST_CAT_I_(a, b) a##b
#define TEST_FOREACH_(m, ...) TEST_CAT_(TEST_FE_, TEST_NARG_(__VA_ARGS__))(m, __VA_ARGS__)
#define TEST_FE_1(m, x) m(x)
#define TEST_FE_2(m, x, ...) m(x) TEST_FE_1(m, __VA_ARGS__)
#define TEST_FE_3(m, x, ...) m(x) TEST_FE_2(m, __VA_ARGS__)
#define TEST_FE_4(m, x, ...) m(x) TEST_FE_3(m, __VA_ARGS__)
#define TEST_FE_5(m, x, ...) m(x) TEST_FE_4(m, __VA_ARGS__)
#define TEST_FE_6(m, x, ...) m(x) TEST_FE_5(m, __VA_ARGS__)
#define TEST_FE_7(m, x, ...) m(x) TEST_FE_6(m, __VA_ARGS__)
#define TEST_FE_8(m, x, ...) m(x) TEST_FE_7(m, __VA_ARGS__)
#define TEST_FE_9(m, x, ...) m(x) TEST_FE_8(m, __VA_ARGS__)
#define TEST_FE_10(m, x, ...) m(x) TEST_FE_9(m, __VA_ARGS__)
#define TEST_FE_11(m, x, ...) m(x) TEST_FE_10(m, __VA_ARGS__)
#define TEST_FE_12(m, x, ...) m(x) TEST_FE_11(m, __VA_ARGS__)
#define TEST_FE_13(m, x, ...) m(x) TEST_FE_12(m, __VA_ARGS__)
#define TEST_FE_14(m, x, ...) m(x) TEST_FE_13(m, __VA_ARGS__)
#define TEST_FE_15(m, x, ...) m(x) TEST_FE_14(m, __VA_ARGS__)
#define TEST_FE_16(m, x, ...) m(x) TEST_FE_15(m, __VA_ARGS__)
#define TEST_FE_17(m, x, ...) m(x) TEST_FE_16(m, __VA_ARGS__)
#define TEST_FE_18(m, x, ...) m(x) TEST_FE_17(m, __VA_ARGS__)
#define TEST_FE_19(m, x, ...) m(x) TEST_FE_18(m, __VA_ARGS__)
#define TEST_FE_20(m, x, ...) m(x) TEST_FE_19(m, __VA_ARGS__)
#define TEST_FE_21(m, x, ...) m(x) TEST_FE_20(m, __VA_ARGS__)
#define TEST_FE_22(m, x, ...) m(x) TEST_FE_21(m, __VA_ARGS__)
#define TEST_FE_23(m, x, ...) m(x) TEST_FE_22(m, __VA_ARGS__)
#define TEST_FE_24(m, x, ...) m(x) TEST_FE_23(m, __VA_ARGS__)
#define TEST_FE_25(m, x, ...) m(x) TEST_FE_24(m, __VA_ARGS__)
#define TEST_FE_26(m, x, ...) m(x) TEST_FE_25(m, __VA_ARGS__)
#define TEST_FE_27(m, x, ...) m(x) TEST_FE_26(m, __VA_ARGS__)
#define TEST_FE_28(m, x, ...) m(x) TEST_FE_27(m, __VA_ARGS__)
#define TEST_FE_29(m, x, ...) m(x) TEST_FE_28(m, __VA_ARGS__)
#define TEST_FE_30(m, x, ...) m(x) TEST_FE_29(m, __VA_ARGS__)
#define TEST_FE_31(m, x, ...) m(x) TEST_FE_30(m, __VA_ARGS__)
#define TEST_FE_32(m, x, ...) m(x) TEST_FE_31(m, __VA_ARGS__)
#define TEST_FE_33(m, x, ...) m(x) TEST_FE_32(m, __VA_ARGS__)
#define TEST_FE_34(m, x, ...) m(x) TEST_FE_33(m, __VA_ARGS__)
#define TEST_FE_35(m, x, ...) m(x) TEST_FE_34(m, __VA_ARGS__)
#define TEST_FE_36(m, x, ...) m(x) TEST_FE_35(m, __VA_ARGS__)
#define TEST_FE_37(m, x, ...) m(x) TEST_FE_36(m, __VA_ARGS__)
#define TEST_FE_38(m, x, ...) m(x) TEST_FE_37(m, __VA_ARGS__)
#define TEST_FE_39(m, x, ...) m(x) TEST_FE_38(m, __VA_ARGS__)
#define TEST_FE_40(m, x, ...) m(x) TEST_FE_39(m, __VA_ARGS__)
#define TEST_FE_41(m, x, ...) m(x) TEST_FE_40(m, __VA_ARGS__)
#define TEST_FE_42(m, x, ...) m(x) TEST_FE_41(m, __VA_ARGS__)
#define TEST_FE_43(m, x, ...) m(x) TEST_FE_42(m, __VA_ARGS__)
#define TEST_FE_44(m, x, ...) m(x) TEST_FE_43(m, __VA_ARGS__)
#define TEST_FE_45(m, x, ...) m(x) TEST_FE_44(m, __VA_ARGS__)
#define TEST_FE_46(m, x, ...) m(x) TEST_FE_45(m, __VA_ARGS__)
#define TEST_FE_47(m, x, ...) m(x) TEST_FE_46(m, __VA_ARGS__)
#define TEST_FE_48(m, x, ...) m(x) TEST_FE_47(m, __VA_ARGS__)
#define TEST_FE_49(m, x, ...) m(x) TEST_FE_48(m, __VA_ARGS__)
#define TEST_FE_50(m, x, ...) m(x) TEST_FE_49(m, __VA_ARGS__)
#define TEST_FE_51(m, x, ...) m(x) TEST_FE_50(m, __VA_ARGS__)
#define TEST_FE_52(m, x, ...) m(x) TEST_FE_51(m, __VA_ARGS__)
#define TEST_FE_53(m, x, ...) m(x) TEST_FE_52(m, __VA_ARGS__)
#define TEST_FE_54(m, x, ...) m(x) TEST_FE_53(m, __VA_ARGS__)
#define TEST_FE_55(m, x, ...) m(x) TEST_FE_54(m, __VA_ARGS__)
#define TEST_FE_56(m, x, ...) m(x) TEST_FE_55(m, __VA_ARGS__)
#define TEST_FE_57(m, x, ...) m(x) TEST_FE_56(m, __VA_ARGS__)
#define TEST_FE_58(m, x, ...) m(x) TEST_FE_57(m, __VA_ARGS__)
#define TEST_FE_59(m, x, ...) m(x) TEST_FE_58(m, __VA_ARGS__)
#define TEST_FE_60(m, x, ...) m(x) TEST_FE_59(m, __VA_ARGS__)
#define TEST_FE_61(m, x, ...) m(x) TEST_FE_60(m, __VA_ARGS__)
#define TEST_FE_62(m, x, ...) m(x) TEST_FE_61(m, __VA_ARGS__)
#define TEST_FE_63(m, x, ...) m(x) TEST_FE_62(m, __VA_ARGS__)
#define TEST_FE_64(m, x, ...) m(x) TEST_FE_63(m, __VA_ARGS__)

#endif /* ATOLL_TEST_H */

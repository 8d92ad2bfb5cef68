/* atoll.h -- the one public header of atoll, the distributed game-server framework.
 *
 * Game code includes only this file. Everything named atoll_ / ATOLL_ here is the
 * supported API; anything under src/ (atoll__ names) is internal and may change.
 *
 * This first version holds the error codes and the embedding entry point. The game
 * API proper (areas, handlers, values, timers) is added on top without changing
 * what is here.
 */
#ifndef ATOLL_ATOLL_H
#define ATOLL_ATOLL_H

#ifdef __cplusplus
extern "C" {
#endif

#define ATOLL_VERSION_MAJOR 0
#define ATOLL_VERSION_MINOR 1
#define ATOLL_VERSION_PATCH 0
#define ATOLL_VERSION_STRING "0.1.0"

/* Error codes: 0 is success, every error is negative, so one int can carry a count or
 * an error (as libuv's nread does). This X-macro list is the only copy of the numbers:
 * the enum, atoll_strerror and atoll_err_name are all expanded from it. */
#define ATOLL_ERRNO_MAP(X)                                                               \
    X(EINVAL, -1, "invalid argument")                                                    \
    X(ENOMEM, -2, "out of memory")                                                       \
    X(EPROTO, -3, "protocol error")                                                      \
    X(ELIMIT, -4, "over a configured limit")                                             \
    X(EAGAIN, -5, "need more data")                                                      \
    X(ENOENT, -6, "no such object")                                                      \
    X(EEXIST, -7, "already exists")                                                      \
    X(ECANCELED, -8, "operation canceled")                                               \
    X(ETIMEDOUT, -9, "timed out")                                                        \
    X(EIO, -10, "input/output error")                                                    \
    X(ECLOSED, -11, "connection closed")                                                 \
    X(EJSON, -12, "malformed JSON")                                                      \
    X(EUTF8, -13, "malformed UTF-8")                                                     \
    X(EADDR, -14, "address cannot be used (malformed, or in use)")

typedef enum atoll_err {
    ATOLL_OK = 0,
#define ATOLL_ERR_ENUM_(name, val, text) ATOLL_##name = (val),
    ATOLL_ERRNO_MAP(ATOLL_ERR_ENUM_)
#undef ATOLL_ERR_ENUM_
} atoll_err;

/* atoll_strerror returns a static English sentence for err ("unknown error" for a value
 * that is not in the map). Any thread. */
const char *atoll_strerror(int err);

/* atoll_err_name returns the code's name without the prefix, e.g. "EPROTO". Any thread. */
const char *atoll_err_name(int err);

/* atoll_main runs the atoll command line (`atoll run --game echo ...`) as if argv were
 * given to the atoll binary. A game that links atoll as a library calls this from its
 * own main(). Blocks until the node has shut down (SIGINT/SIGTERM) and returns the
 * process exit status. Main thread only; call once. */
int atoll_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* ATOLL_ATOLL_H */

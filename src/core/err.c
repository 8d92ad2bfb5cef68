/* err.c -- names and sentences for atoll_err, expanded from the one list in atoll.h. */
#include <atoll/atoll.h>

const char *
atoll_strerror(int err)
{
    switch (err) {
    case ATOLL_OK: return "success";
#define X_(name, val, text) case ATOLL_##name: return text;
    ATOLL_ERRNO_MAP(X_)
#undef X_
    }
    return "unknown error";
}

const char *
atoll_err_name(int err)
{
    switch (err) {
    case ATOLL_OK: return "OK";
#define X_(name, val, text) case ATOLL_##name: return #name;
    ATOLL_ERRNO_MAP(X_)
#undef X_
    }
    return "EUNKNOWN";
}

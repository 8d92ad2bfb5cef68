/* games.c -- finding the game a node serves: the games built into the atoll binary by
 * name, or a game built as a shared object by path (dlopen), and the checks a game's
 * definition must pass before a node starts with it.
 */
#include "node.h"

#include <dlfcn.h>
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

/* The built-in games of the program, registered before the node starts (the atoll
 * binary's are in cli/builtins.c): the library itself names no game. */
#define BUILTIN_MAX 16
typedef struct builtin_entry {
    const char *name;
    const atoll_game *(*module)(void);
    int (*abi)(void);
} builtin_entry;
static builtin_entry builtin_api[BUILTIN_MAX];
static size_t napi;

void
atoll__games_add_entry(const char *name, const atoll_game *(*module)(void), int (*abi)(void))
{
    if (napi < BUILTIN_MAX)
        builtin_api[napi++] = (builtin_entry){name, module, abi};
}

/* Wraps a game of atoll.h for the node. */
static const atoll__game *
wrap(const atoll_game *g, atoll__game *storage)
{
    memset(storage, 0, sizeof *storage);
    storage->name = g->name;
    storage->api = g;
    storage->push_routes = g->push_routes;
    for (const char *const *r = g->push_routes; r && *r; r++)
        storage->npush++;
    return storage;
}

/* A game through its entry (ATOLL_GAME_ENTRY): built for this ABI, with a game. The
 * same checks for a shared object and a built-in game. */
static const atoll__game *
from_entry(const atoll_game *(*module)(void), int (*abi)(void), const char *name,
           atoll__game *storage)
{
    if (abi != NULL && abi() != ATOLL_ABI_VERSION) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"game built for another atoll ABI: rebuild it against "
                  "the atoll.h of this atoll, the one installed with this binary "
                  "(pkg-config --cflags atoll)\" game=\"%s\" game_abi=%d node_abi=%d", name,
                  abi(), ATOLL_ABI_VERSION);
        return NULL;
    }
    const atoll_game *g = abi && module ? module() : NULL;
    if (g == NULL) {
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"not an atoll game: no atoll_game_module (end the "
                  "game's file with ATOLL_GAME_MODULE(its atoll_game))\" game=\"%s\"", name);
        return NULL;
    }
    return wrap(g, storage);
}

/* The name of a file in the working directory: it is loaded from there. dlopen() itself
 * would search the library path for a name without a slash (and not find the game the
 * user just built, or find another one). */
static bool
in_working_dir(const char *s)
{
    struct stat st;
    return strchr(s, '/') == NULL && stat(s, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n > 3 && strcmp(s + n - 3, ".so") == 0) ||
           in_working_dir(s);
}

/* What to do about a game that does not load, from dlopen's reason. */
static const char *
load_hint(const char *name, const char *error)
{
    if (error != NULL && strstr(error, "undefined symbol") != NULL)
        return "the game uses a function this atoll does not have: rebuild it against the "
               "atoll.h installed with this binary (pkg-config --cflags atoll), and load it "
               "into a binary that exports the atoll API (atoll run, or a program linked "
               "with -rdynamic)";
    if (strchr(name, '/') == NULL)
        return "a name without a slash is looked for in the working directory, then in the "
               "library path (LD_LIBRARY_PATH, ld.so.conf); give a path to load another file";
    return "check the path";
}

const atoll__game *
atoll__game_load(const char *name_or_path, atoll__game *storage, void **dl)
{
    *dl = NULL;
    /* Built-in names come first, even when a file of that name is in the working
     * directory: `--game quick` means the same wherever it is run. */
    if (strchr(name_or_path, '/') == NULL)
        for (size_t i = 0; i < napi; i++)
            if (strcmp(builtin_api[i].name, name_or_path) == 0)
                return from_entry(builtin_api[i].module, builtin_api[i].abi, name_or_path,
                                  storage);
    if (!is_path(name_or_path)) {
        char names[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < napi; i++)
            len += (size_t)snprintf(names + len, len < sizeof names ? sizeof names - len : 0,
                                    "%s%s", i ? ", " : "", builtin_api[i].name);
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"unknown game (built-in games: %s; or give the path "
                  "of a shared object)\" game=\"%s\"", napi ? names : "none", name_or_path);
        return NULL;
    }
    char local[PATH_MAX];
    const char *path = name_or_path;
    if (in_working_dir(name_or_path)) {
        if ((size_t)snprintf(local, sizeof local, "./%s", name_or_path) >= sizeof local) {
            ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"game path too long\" path=\"%s\"", name_or_path);
            return NULL;
        }
        path = local;
    }
    /* RTLD_NOW: a missing symbol fails here, not in the middle of a handler. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *error = dlerror();
        ATOLL_LOG(ATOLL_LOG_ERROR, "msg=\"cannot load game (%s)\" path=\"%s\" error=\"%s\"",
                  load_hint(name_or_path, error), path, error ? error : "");
        return NULL;
    }
    int (*abi)(void);
    *(void **)&abi = dlsym(h, "atoll_game_abi");
    const atoll_game *(*module)(void);
    *(void **)&module = dlsym(h, "atoll_game_module");
    const atoll__game *g = from_entry(module, abi, path, storage);
    if (g == NULL) {
        dlclose(h);
        return NULL;
    }
    *dl = h;
    return g;
}

static bool
name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Checks one value against its declaration; a sentence in err when it does not fit. */
static int
setting_value_ok(const atoll_setting_decl *d, const char *v, char *err, size_t errlen)
{
    if (d->type == ATOLL_SETTING_INT) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0' || x < d->min || x > d->max) {
            snprintf(err, errlen, "%s must be an integer from %lld to %lld (%s), not \"%.40s\"",
                     d->key, (long long)d->min, (long long)d->max, d->help ? d->help : "",
                     v);
            return ATOLL_EINVAL;
        }
    } else if (d->type == ATOLL_SETTING_BOOL) {
        static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
        bool ok = false;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            ok = ok || strcasecmp(v, words[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "%s must be true or false (%s), not \"%.40s\"", d->key,
                     d->help ? d->help : "", v);
            return ATOLL_EINVAL;
        }
    } else if (d->type == ATOLL_SETTING_STRING) {
        if (d->max > 0 && strlen(v) > (size_t)d->max) {
            snprintf(err, errlen, "%s must be at most %lld bytes (%s)", d->key, (long long)d->max,
                     d->help ? d->help : "");
            return ATOLL_EINVAL;
        }
    } else {
        snprintf(err, errlen, "setting %s has an unknown type %d", d->key, (int)d->type);
        return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

const atoll_setting_decl *
atoll__game_setting(const atoll_game *g, const char *key)
{
    for (const atoll_setting_decl *d = g ? g->settings : NULL; d && d->key; d++)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

int
atoll__game_check_settings(const atoll_game *g, const atoll__config *c, char *err, size_t errlen)
{
    /* The declarations themselves: a default that does not fit is the game's bug. */
    for (const atoll_setting_decl *d = g->settings; d && d->key; d++) {
        if (atoll__config_framework_key(d->key) || strchr(d->key, '=') != NULL) {
            snprintf(err, errlen, "the game declares setting \"%.60s\" in the framework's "
                     "namespace or with a '='", d->key);
            return ATOLL_EINVAL;
        }
        if (d->def != NULL && setting_value_ok(d, d->def, err, errlen) != ATOLL_OK)
            return ATOLL_EINVAL;
    }
    for (size_t i = 0; i < c->nsettings; i++) {
        const char *key = c->settings[i].key;
        if (atoll__config_framework_key(key))
            continue;
        const atoll_setting_decl *d = atoll__game_setting(g, key);
        if (d == NULL) {
            size_t k = (size_t)snprintf(err, errlen, "unknown setting '%.60s'", key);
            const char *sep = " (the game's settings: ";
            for (const atoll_setting_decl *e = g->settings; e && e->key && k < errlen; e++) {
                k += (size_t)snprintf(err + k, errlen - k, "%s%s", sep, e->key);
                sep = ", ";
            }
            if (k < errlen)
                snprintf(err + k, errlen - k, "%s", g->settings && g->settings->key
                                                        ? ")" : " (the game declares none)");
            return ATOLL_EINVAL;
        }
        if (setting_value_ok(d, c->settings[i].value, err, errlen) != ATOLL_OK)
            return ATOLL_EINVAL;
    }
    return ATOLL_OK;
}

int
atoll__game_check(const atoll_game *g, int *ntypes, char *err, size_t errlen)
{
    int n = 0;
    for (const atoll_area_type *const *t = g->area_types; t && *t; t++, n++) {
        const atoll_area_type *at = *t;
        if (!name_ok(at->name, ATOLL_TYPE_NAME_MAX) || strcmp(at->name, "gate") == 0) {
            snprintf(err, errlen, "area type name \"%.40s\" must be 1-%d of [A-Za-z0-9_-], not gate",
                     at->name ? at->name : "(null)", ATOLL_TYPE_NAME_MAX);
            return ATOLL_EINVAL;
        }
        for (const atoll_area_type *const *u = g->area_types; u != t; u++)
            if (strcmp((*u)->name, at->name) == 0) {
                snprintf(err, errlen, "two area types are named %s", at->name);
                return ATOLL_EINVAL;
            }
        if (at->tick_hz < 0 || at->tick_hz > 1000 || (at->queue_commands && at->tick_hz == 0)) {
            snprintf(err, errlen, "area type %s: tick_hz must be 0-1000, and above 0 with "
                     "queue_commands", at->name);
            return ATOLL_EINVAL;
        }
        for (const atoll_handler *h = at->handlers; h && h->name; h++) {
            if (!name_ok(h->name, ATOLL_ROUTE_MAX - ATOLL_TYPE_NAME_MAX - 1) || h->fn == NULL) {
                snprintf(err, errlen, "area type %s: handler \"%.40s\" needs a name of "
                         "[A-Za-z0-9_-] and a function", at->name, h->name);
                return ATOLL_EINVAL;
            }
            for (const atoll_handler *g2 = at->handlers; g2 != h; g2++)
                if (strcmp(g2->name, h->name) == 0) {
                    snprintf(err, errlen, "area type %s has two handlers named %s", at->name,
                             h->name);
                    return ATOLL_EINVAL;
                }
        }
    }
    if (n == 0) {
        snprintf(err, errlen, "game %s has no area types", g->name ? g->name : "(null)");
        return ATOLL_EINVAL;
    }
    if (g->entry == NULL) {
        /* Said at start rather than to every client: gate.entry would refuse them all. */
        snprintf(err, errlen, "game %s has no entry hook (atoll_game.entry): nobody could "
                 "log in", g->name ? g->name : "(null)");
        return ATOLL_EINVAL;
    }
    *ntypes = n;
    return ATOLL_OK;
}

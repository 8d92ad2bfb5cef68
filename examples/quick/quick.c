/* quick.c -- the built-in `quick` game: the seed's sample, a level-up counter.
 *
 * Every player lives in an area of type "area" ("area-1" unless quick.areas spreads
 * them) and keeps a level and some money in its player data. The whole game is the
 * JavaScript of the seed, written in C:
 *
 *     area.handlers['levelup'] = function(opts) {
 *         var player = area.players[opts.id];
 *         player.level += 1; player.money += 10;
 *         area.notifyAll('levelup', {'playerId': opts.id});
 *         player.notify('money', player.money);
 *     };
 *
 *   gate.entry    {uid}  enter area-1 .. area-N (N = quick.areas, by a hash of uid)
 *   area.levelup  {}     level += 1, money += 10; push "levelup" {playerId} to the
 *                        area (unless quick.broadcast=false), push "money" {money} to
 *                        the player; reply {code, level, money}
 *   area.info     {}     reply {code, level, money}
 *
 * The handlers need no locks: the runtime runs one area's handlers one at a time on
 * the worker that owns it. Run it with `build/atoll run --game quick`; see README.md.
 */
#include <atoll/atoll.h>

#include <stdio.h>

/* ---- handlers ------------------------------------------------------------------- */

static int
area_levelup(atoll_req *req)
{
    atoll_area *area = atoll_req_area(req);
    atoll_player *player = atoll_req_player(req);
    atoll_value *data = atoll_player_data(player);

    int64_t level = atoll_incr(data, "level", 1);
    int64_t money = atoll_incr(data, "money", 10);

    /* Settings may be read from any thread at any time; reading this one here keeps
     * the game free of C state of its own. */
    atoll_node *node = atoll_area_node(area);
    if (atoll_setting_bool(node, "quick.broadcast", 1) && atoll_setting_bool(node, "quick.push_level", 0))
        atoll_push_area(area, "levelup", atoll_pack("{s:s, s:I}", "playerId",
                                                    atoll_player_id(player), "level", level));
    else if (atoll_setting_bool(node, "quick.broadcast", 1))
        atoll_push_area(area, "levelup",
                        atoll_pack("{s:s}", "playerId", atoll_player_id(player)));
    atoll_push(player, "money", atoll_pack("{s:I}", "money", money));

    return atoll_reply(req, atoll_pack("{s:i, s:I, s:I}", "code", 200, "level", level,
                                       "money", money));
}

static int
area_info(atoll_req *req)
{
    atoll_value *data = atoll_player_data(atoll_req_player(req));
    return atoll_reply(req, atoll_pack("{s:i, s:I, s:I}", "code", 200,
                                       "level", atoll_get_int(data, "level", 0),
                                       "money", atoll_get_int(data, "money", 0)));
}

/* ---- hooks ---------------------------------------------------------------------- */

/* ---- the game ------------------------------------------------------------------- */

/* FNV-1a, 32 bits: stable across runs and machines, so a uid always lands in the same
 * area (the tests compute it too). */
static uint32_t
uid_hash(const char *uid)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)uid; *c; c++)
        h = (h ^ *c) * 16777619u;
    return h;
}

/* Runs on the connection's worker before any area is involved: it only chooses the
 * area. A missing area is created with the type named here. */
static int
quick_entry(atoll_entry *e)
{
    int64_t areas = atoll_setting_int(e->node, "quick.areas", 1);
    snprintf(e->area_id, sizeof e->area_id, "area-%u",
             (unsigned)(uid_hash(e->uid) % (uint64_t)areas) + 1);
    e->area_type = "area";
    return ATOLL_OK;
}

/* The node checks these at start (a misspelt key or a value out of range stops it), so
 * entry can trust quick.areas. */
static const atoll_setting_decl quick_settings[] = {
    {"quick.areas", ATOLL_SETTING_INT, "1", 1, 100000, "areas the players are spread over"},
    {"quick.broadcast", ATOLL_SETTING_BOOL, "true", 0, 0,
     "push each level-up to the whole area"},
    {"quick.push_level", ATOLL_SETTING_BOOL, "false", 0, 0,
     "the level-up push carries the level too (tests check that none is lost or doubled)"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const atoll_handler area_handlers[] = {
    {"levelup", area_levelup, 0},
    {"info", area_info, ATOLL_QUERY},
    {NULL, NULL, 0},
};

static const atoll_area_type area_type = {
    .name = "area",
    .handlers = area_handlers,
    /* A new player starts at level 0 with no money; one that played before comes back
     * with what the store kept (atoll keeps it: the game has no database code). */
    .player_defaults = "{\"level\":0,\"money\":0}",
};

static const atoll_area_type *const quick_area_types[] = {&area_type, NULL};

static const char *const quick_push_routes[] = {"levelup", "money", NULL};

static const atoll_game quick_game = {
    .name = "quick",
    .area_types = quick_area_types,
    .entry = quick_entry,
    .push_routes = quick_push_routes,
    .settings = quick_settings,
};

/* Built into the atoll binary (cli/builtins.c) through the same entry a shared object
 * exports. */
ATOLL_GAME_ENTRY(quick, quick_game)

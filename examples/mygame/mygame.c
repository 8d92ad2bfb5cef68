/* mygame.c -- the smallest whole game, the starting point of a game of your own: it is
 * built outside atoll's source tree against an installed atoll (docs/api/game.md,
 * "A game of your own"), as a shared object for `atoll run --game libmygame.so` or
 * linked into a program of its own (main.c).
 *
 *   gate.entry   {uid}  enter the one room, "room-1"
 *   room.hello   {}     push "hello" {from: uid} to everyone in the room, and reply
 *                       {code: 200, hello: uid, count: N}, N the hellos the room heard
 */
#include <atoll/atoll.h>

#include <stdio.h>

static int
room_hello(atoll_req *req)
{
    const char *uid = atoll_player_id(atoll_req_player(req));
    /* The room's own state: no lock, its handlers run one at a time. */
    int64_t count = atoll_incr(atoll_area_state(atoll_req_area(req)), "hellos", 1);
    atoll_push_area(atoll_req_area(req), "hello", atoll_pack("{s:s}", "from", uid));
    return atoll_reply(req, atoll_pack("{s:i,s:s,s:I}", "code", 200, "hello", uid,
                                       "count", count));
}

static const atoll_area_type room = {
    .name = "room", /* clients send "room.<handler>" */
    .handlers = (const atoll_handler[]){
        {"hello", room_hello, 0},
        {NULL, NULL, 0},
    },
};

/* gate.entry: every player goes to room-1, created on the first entry. */
static int
entry(atoll_entry *e)
{
    snprintf(e->area_id, sizeof e->area_id, "room-1");
    e->area_type = "room";
    return ATOLL_OK;
}

/* Not static: main.c hands it to atoll_run when the game is linked into a program. */
const atoll_game mygame = {
    .name = "mygame",
    .area_types = (const atoll_area_type *const[]){&room, NULL},
    .entry = entry,
    .push_routes = (const char *const[]){"hello", NULL},
};

/* What `atoll run --game libmygame.so` looks for in the shared object. */
ATOLL_GAME_MODULE(mygame)

/* chat.c -- the built-in `chat` game: chat rooms that players enter, leave and talk in.
 *
 * Each room is an area of type "room" whose id is the room's name; the lobby is the
 * room named "lobby". A player is in one room at a time, and changing rooms moves the
 * player (atoll_player_move) while its connection stays where it is.
 *
 *   gate.entry    {uid, room?}  enter room (default "lobby"), created when missing
 *   room.join     {room}        move to room, created when missing; reply {code, room}
 *   room.leave    {}            move back to the lobby; reply {code, room}
 *   room.say      {text}        push "onChat" {from, room, text} to the whole room
 *   room.members  {}            reply {code, room, members: [uid, ...]}
 *
 * The others in a room are told with "onJoin" {uid, room} and "onLeave" {uid, room};
 * when a player's connection drops, "onAway" {uid, room} at once, then "onBack" when it
 * resumes (gate.resume) or "onLeave" when the node's resume window ends first.
 *
 * Rooms live as long as someone is in them: an empty room is destroyed after 30 s,
 * the lobby included. Every way into a room creates it when it is missing, so the
 * lobby needs no special case. Run it with `build/atoll run --game chat`; see
 * README.md.
 */
#include <atoll/atoll.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOBBY "lobby"
#define ROOM_NAME_MAX 32
#define TEXT_MAX 512

/* 1..32 characters of [A-Za-z0-9_-]: a room's name is also its area id. */
static int
valid_room(const char *name)
{
    if (name == NULL)
        return 0;
    size_t len = strlen(name);
    return len >= 1 && len <= ROOM_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
               len;
}

/* Pushes body to every player of the room but one, encoded once for all of them. */
static int
push_others(atoll_area *room, atoll_player *except, const char *route, atoll_value *body)
{
    size_t cap = atoll_area_player_count(room) + 1, n = 0;
    atoll_player **others = malloc(cap * sizeof *others);
    if (others == NULL) {
        atoll_unref(body);
        return ATOLL_ENOMEM;
    }
    for (atoll_player *p = atoll_area_first(room); p != NULL && n < cap; p = atoll_area_next(p))
        if (p != except)
            others[n++] = p;
    int rc = atoll_push_list(room, others, n, route, body);
    free(others);
    return rc;
}

/* Moves the player to a room, creating the room first when it does not exist yet
 * (an area that already exists is fine: another player made it). */
static int
move_to(atoll_player *player, const char *room)
{
    atoll_node *node = atoll_area_node(atoll_player_area(player));
    int rc = atoll_area_create(node, "room", room, NULL);
    if (rc != ATOLL_OK && rc != ATOLL_EEXIST)
        return rc;
    return atoll_player_move(player, room);
}

/* ---- handlers ------------------------------------------------------------------- */

static int
room_join(atoll_req *req)
{
    const char *room = atoll_get_str(atoll_req_body(req), "room", NULL);
    if (!valid_room(room))
        return atoll_reply_error(req, 500, "room must be 1 to 32 characters of [A-Za-z0-9_-]");

    /* Joining the room you are in changes nothing. */
    if (strcmp(room, atoll_area_id(atoll_req_area(req))) != 0) {
        int rc = move_to(atoll_req_player(req), room);
        if (rc != ATOLL_OK)
            return rc;
    }
    return atoll_reply(req, atoll_pack("{s:i, s:s}", "code", 200, "room", room));
}

static int
room_leave(atoll_req *req)
{
    if (strcmp(atoll_area_id(atoll_req_area(req)), LOBBY) == 0)
        return atoll_reply_error(req, 500, "already in the lobby");

    int rc = move_to(atoll_req_player(req), LOBBY);
    if (rc != ATOLL_OK)
        return rc;
    return atoll_reply(req, atoll_pack("{s:i, s:s}", "code", 200, "room", LOBBY));
}

static int
room_say(atoll_req *req)
{
    atoll_area *room = atoll_req_area(req);
    atoll_value *text = atoll_get(atoll_req_body(req), "text");
    if (atoll_typeof(text) != ATOLL_STRING || atoll_len(text) < 1 || atoll_len(text) > TEXT_MAX)
        return atoll_reply_error(req, 500, "text must be a string of 1 to 512 bytes");

    /* The sender gets its own line too: clients show what the room saw, in its order. */
    atoll_push_area(room, "onChat",
                    atoll_pack("{s:s, s:s, s:O}", "from", atoll_player_id(atoll_req_player(req)),
                               "room", atoll_area_id(room), "text", text));
    return atoll_reply(req, atoll_pack("{s:i}", "code", 200));
}

static int
room_members(atoll_req *req)
{
    atoll_area *room = atoll_req_area(req);
    atoll_value *members = atoll_array();
    for (atoll_player *p = atoll_area_first(room); p != NULL; p = atoll_area_next(p))
        atoll_append(members, atoll_str(atoll_player_id(p)));
    return atoll_reply(req, atoll_pack("{s:i, s:s, s:o}", "code", 200,
                                       "room", atoll_area_id(room), "members", members));
}

/* ---- hooks: tell the others who comes and goes ------------------------------------ */

static int
room_on_enter(atoll_area *room, atoll_player *player)
{
    push_others(room, player, "onJoin",
                atoll_pack("{s:s, s:s}", "uid", atoll_player_id(player),
                           "room", atoll_area_id(room)));
    return ATOLL_OK;
}

/* Also when the player disconnects or the room is destroyed, not only on a move. */
static void
room_on_leave(atoll_area *room, atoll_player *player, atoll_leave_reason why)
{
    (void)why;
    push_others(room, player, "onLeave",
                atoll_pack("{s:s, s:s}", "uid", atoll_player_id(player),
                           "room", atoll_area_id(room)));
}

/* A dropped connection: the player stays in the room for the resume window. */
static void
room_on_disconnect(atoll_area *room, atoll_player *player)
{
    push_others(room, player, "onAway",
                atoll_pack("{s:s, s:s}", "uid", atoll_player_id(player),
                           "room", atoll_area_id(room)));
}

static void
room_on_resume(atoll_area *room, atoll_player *player)
{
    push_others(room, player, "onBack",
                atoll_pack("{s:s, s:s}", "uid", atoll_player_id(player),
                           "room", atoll_area_id(room)));
}

/* ---- the game ------------------------------------------------------------------- */

/* Runs on the connection's worker before any room is involved: it only names the
 * room. area_type tells the runtime to create the room when it does not exist. */
static int
chat_entry(atoll_entry *e)
{
    const char *room = LOBBY;
    if (atoll_get(e->body, "room") != NULL)
        room = atoll_get_str(e->body, "room", NULL); /* NULL when not a string */
    if (!valid_room(room))
        return ATOLL_EINVAL;
    snprintf(e->area_id, sizeof e->area_id, "%s", room);
    e->area_type = "room";
    return ATOLL_OK;
}

static const atoll_handler room_handlers[] = {
    {"join", room_join, 0},
    {"leave", room_leave, 0},
    {"say", room_say, 0},
    {"members", room_members, ATOLL_QUERY},
    {NULL, NULL, 0},
};

/* empty_grace_ms is part of the (const) type, so it is fixed here rather than read
 * from a setting. 30 s keeps a room whose last player hops out and back in from being
 * destroyed and created again each time. */
static const atoll_area_type room_type = {
    .name = "room",
    .handlers = room_handlers,
    .empty_grace_ms = 30000,
    .on_enter = room_on_enter,
    .on_leave = room_on_leave,
    .on_disconnect = room_on_disconnect,
    .on_resume = room_on_resume,
};

static const atoll_area_type *const chat_area_types[] = {&room_type, NULL};

static const char *const chat_push_routes[] = {"onChat", "onJoin", "onLeave", "onAway",
                                               "onBack", NULL};

static const atoll_game chat_game = {
    .name = "chat",
    .area_types = chat_area_types,
    .entry = chat_entry,
    .push_routes = chat_push_routes,
};

/* Built into the atoll binary (cli/builtins.c) through the same entry a shared object
 * exports. */
ATOLL_GAME_ENTRY(chat, chat_game)

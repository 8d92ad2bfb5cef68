/* echo.c -- the built-in `echo` game: the smallest game that exercises every path of
 * the client protocol (request/response, push to one, push to all, kick), written
 * against atoll.h like any other game.
 *
 *   echo.echo       request: respond with the request's body, byte for byte
 *   echo.push       notify: push "onPush" with the body to the sender
 *   echo.broadcast  notify: push "onChat" with the body to every session of the node
 *   echo.kick       request: respond {"code":200}, then kick the session ("kick")
 *
 * echo.push and echo.broadcast sent as requests also answer {"code":200}, so a client
 * can wait for them. Clients need no gate.entry: a session that sends echo.* first
 * enters as a guest. Every player, guest or not, is in the area "echo-<worker>" of its
 * connection's worker, made there (entry's `local`), so a message never leaves the
 * worker that read it. Run it with `build/atoll run --game echo`.
 */
#include <atoll/atoll.h>

#include <stdio.h>

static int
echo_echo(atoll_req *req)
{
    size_t n;
    const char *body = atoll_req_json(req, &n);
    return atoll_reply_json(req, body, n);
}

/* The body as the client sent it, whatever JSON it is (atoll_req_body would make
 * anything but an object {}). */
static atoll_value *
body_as_sent(atoll_req *req)
{
    size_t n;
    const char *json = atoll_req_json(req, &n);
    return atoll_parse(json, n, NULL, 0);
}

static int
echo_push(atoll_req *req)
{
    atoll_push(atoll_req_player(req), "onPush", body_as_sent(req));
    return atoll_reply_json(req, "{\"code\":200}", 12);
}

static int
echo_broadcast(atoll_req *req)
{
    atoll_broadcast(atoll_area_node(atoll_req_area(req)), "onChat", body_as_sent(req));
    return atoll_reply_json(req, "{\"code\":200}", 12);
}

static int
echo_kick(atoll_req *req)
{
    atoll_reply_json(req, "{\"code\":200}", 12);
    atoll_player_kick(atoll_req_player(req), "kick");
    return ATOLL_OK;
}

/* Logged-in players and guests alike: the area of the connection's worker. */
static int
echo_entry(atoll_entry *e)
{
    snprintf(e->area_id, sizeof e->area_id, "echo-%d", e->worker);
    e->area_type = "echo";
    e->local = 1;
    return ATOLL_OK;
}

static const atoll_handler echo_handlers[] = {
    {"echo", echo_echo, ATOLL_QUERY},
    {"push", echo_push, ATOLL_QUERY},
    {"broadcast", echo_broadcast, ATOLL_QUERY},
    {"kick", echo_kick, ATOLL_QUERY},
    {NULL, NULL, 0},
};

static const atoll_area_type echo_area = {
    .name = "echo",
    .handlers = echo_handlers,
};

static const atoll_area_type *const echo_area_types[] = {&echo_area, NULL};
static const char *const echo_pushes[] = {"onPush", "onChat", NULL};

static const atoll_game echo_game = {
    .name = "echo",
    .area_types = echo_area_types,
    .entry = echo_entry,
    .guest = echo_entry,
    .push_routes = echo_pushes,
};

ATOLL_GAME_ENTRY(echo, echo_game)

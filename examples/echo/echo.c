/* echo.c -- the built-in `echo` game: the smallest game that exercises every path of
 * the client protocol (request/response, push to one, push to all, kick).
 *
 *   echo.echo       request: respond with the request's body
 *   echo.push       notify: push "onPush" with the body to the sender
 *   echo.broadcast  notify: push "onChat" with the body to every session of the node
 *   echo.kick       request: respond {"code":200}, then kick the session ("kick")
 *
 * echo.push and echo.broadcast sent as requests also answer {"code":200}, so a client
 * can wait for them. Run it with `build/atoll run --game echo`.
 */
#include "../../src/node/session.h"

static void
echo_echo(atoll__req *req)
{
    atoll__reply(req, (const char *)req->body, req->body_len);
}

static void
echo_push(atoll__req *req)
{
    atoll__push(req->session, "onPush", (const char *)req->body, req->body_len);
    atoll__reply(req, "{\"code\":200}", 12);
}

static void
echo_broadcast(atoll__req *req)
{
    atoll__broadcast(req->worker, "onChat", (const char *)req->body, req->body_len);
    atoll__reply(req, "{\"code\":200}", 12);
}

static void
echo_kick(atoll__req *req)
{
    atoll__reply(req, "{\"code\":200}", 12);
    atoll__kick(req->session, "kick");
}

static const atoll__route echo_routes[] = {
    {"echo.echo", echo_echo},
    {"echo.push", echo_push},
    {"echo.broadcast", echo_broadcast},
    {"echo.kick", echo_kick},
};

static const char *const echo_pushes[] = {"onPush", "onChat"};

const atoll__game atoll__game_echo = {
    .name = "echo",
    .routes = echo_routes,
    .nroutes = sizeof echo_routes / sizeof echo_routes[0],
    .push_routes = echo_pushes,
    .npush = sizeof echo_pushes / sizeof echo_pushes[0],
};

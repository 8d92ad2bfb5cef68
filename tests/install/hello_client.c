/* hello_client.c -- one player of examples/mygame, for install_test.sh: it is compiled
 * outside the tree against the installed client library (pkg-config atollc), so it
 * checks atollc.pc and the installed atollc.h too.
 *
 *   hello_client PORT UID
 *
 * Connects over TCP to 127.0.0.1:PORT, sends gate.entry {uid} and room.hello {}, and
 * prints what came back, one line each, for the script to compare:
 *   entry <reply>
 *   hello <reply>
 *   push <route> <body>
 * Exits 1 with a line on stderr when something does not come. */
#include <atollc/atollc.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int
request(atollc_sync *s, const char *label, const char *route, const char *body)
{
    char *resp = NULL;
    int rc = atollc_sync_request(s, route, body, &resp, 5000);
    if (rc != ATOLLC_OK) {
        fprintf(stderr, "hello_client: %s: %s\n", route, atoll_strerror(rc));
        return 1;
    }
    printf("%s %s\n", label, resp);
    free(resp);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hello_client PORT UID\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* atollc.h: libuv writes with write(2) */
    atollc_opts opts;
    atollc_opts_init(&opts);
    opts.host = "127.0.0.1";
    opts.port = atoi(argv[1]);
    int err = 0;
    atollc_sync *s = atollc_sync_connect(&opts, &err);
    if (s == NULL) {
        fprintf(stderr, "hello_client: connect: %s\n", atoll_strerror(err));
        return 1;
    }
    char entry[128];
    snprintf(entry, sizeof entry, "{\"uid\":\"%s\"}", argv[2]);
    int rc = request(s, "entry", "gate.entry", entry) || request(s, "hello", "room.hello", "{}");
    char *route = NULL, *body = NULL;
    if (rc == 0 && (err = atollc_sync_wait_push(s, &route, &body, 5000)) != ATOLLC_OK) {
        fprintf(stderr, "hello_client: no push: %s\n", atoll_strerror(err));
        rc = 1;
    }
    if (rc == 0)
        printf("push %s %s\n", route, body);
    free(route);
    free(body);
    atollc_sync_free(s);
    return rc;
}

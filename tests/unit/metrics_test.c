/* metrics_test.c -- the node's metrics (src/node/metrics.c): counters summed over the
 * threads that add to them, histogram buckets and their text, the limit of route
 * labels, label escaping, and text that parses as the Prometheus format. */
#include "node/metrics.h"
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The text of every metric, as a C string (the caller frees it). */
static char *
scrape(const char *node)
{
    atoll__buf b = ATOLL__BUF_INIT;
    atoll__metrics_write(&b, node);
    atoll__buf_push(&b, '\0');
    char *s = strdup((const char *)atoll__buf_data(&b));
    atoll__buf_fini(&b);
    return s;
}

#define HAS(text, part)                                                                       \
    do {                                                                                      \
        if (strstr((text), (part)) == NULL) {                                                 \
            fprintf(stderr, "  missing: %s\n", (part));                                       \
            ASSERT(0);                                                                        \
        }                                                                                     \
    } while (0)

TEST(counters_and_gauges_are_written_with_their_node)
{
    atoll__metrics_reset();
    atoll__metric_add(ATOLL_CTR_CONNS_ACCEPTED, 3);
    atoll__metric_add(ATOLL_CTR_CONNS_CLOSED, 1);
    atoll__metric_set(ATOLL_GAUGE_LINK_QUEUED_BYTES, 4096);
    char *t = scrape("a1");
    HAS(t, "# TYPE atoll_connections_accepted_total counter\n");
    HAS(t, "atoll_connections_accepted_total{node=\"a1\"} 3\n");
    HAS(t, "atoll_connections_closed_total{node=\"a1\"} 1\n");
    HAS(t, "# TYPE atoll_link_queued_bytes gauge\n");
    HAS(t, "atoll_link_queued_bytes{node=\"a1\"} 4096\n");
    free(t);
}

/* One name, two labels: one head, a sample each; the gauge of the open ones is the
 * difference, and never reads below zero. */
TEST(sessions_are_counted_by_transport)
{
    atoll__metrics_reset();
    atoll__metric_add(ATOLL_CTR_SESSIONS_TCP, 5);
    atoll__metric_add(ATOLL_CTR_SESSIONS_WS, 2);
    atoll__metric_add(ATOLL_CTR_SESSIONS_TCP_CLOSED, 1);
    atoll__metric_add(ATOLL_CTR_SESSIONS_WS_CLOSED, 3); /* a scrape between two sums */
    char *t = scrape("g");
    HAS(t, "atoll_sessions_opened_total{node=\"g\",transport=\"tcp\"} 5\n");
    HAS(t, "atoll_sessions_opened_total{node=\"g\",transport=\"websocket\"} 2\n");
    HAS(t, "atoll_sessions_closed_total{node=\"g\",transport=\"tcp\"} 1\n");
    HAS(t, "atoll_sessions_open{node=\"g\",transport=\"tcp\"} 4\n");
    HAS(t, "atoll_sessions_open{node=\"g\",transport=\"websocket\"} 0\n");
    const char *head = "# TYPE atoll_sessions_opened_total counter\n";
    char *first = strstr(t, head);
    ASSERT(first != NULL && strstr(first + 1, head) == NULL);
    free(t);
}

TEST(histograms_are_cumulative_in_seconds)
{
    atoll__metrics_reset();
    atoll__metric_observe(ATOLL_HIST_HANDLER, 30000);     /* 30 µs: the first bucket */
    atoll__metric_observe(ATOLL_HIST_HANDLER, 1000000);   /* 1 ms: on a bound, in it */
    atoll__metric_observe(ATOLL_HIST_HANDLER, 9000000000); /* 9 s: past every bound */
    atoll__metric_observe(ATOLL_HIST_COMMIT_DOCS, 7);
    char *t = scrape("n");
    HAS(t, "# TYPE atoll_handler_seconds histogram\n");
    HAS(t, "atoll_handler_seconds_bucket{node=\"n\",le=\"5e-05\"} 1\n");
    HAS(t, "atoll_handler_seconds_bucket{node=\"n\",le=\"0.0005\"} 1\n");
    HAS(t, "atoll_handler_seconds_bucket{node=\"n\",le=\"0.001\"} 2\n");
    HAS(t, "atoll_handler_seconds_bucket{node=\"n\",le=\"5\"} 2\n");
    HAS(t, "atoll_handler_seconds_bucket{node=\"n\",le=\"+Inf\"} 3\n");
    HAS(t, "atoll_handler_seconds_count{node=\"n\"} 3\n");
    HAS(t, "atoll_handler_seconds_sum{node=\"n\"} 9.00103"); /* %.17g: 9.0010300000000001 */
    HAS(t, "atoll_store_commit_documents_bucket{node=\"n\",le=\"5\"} 0\n");
    HAS(t, "atoll_store_commit_documents_bucket{node=\"n\",le=\"10\"} 1\n");
    HAS(t, "atoll_store_commit_documents_sum{node=\"n\"} 7\n");
    free(t);
}

TEST(routes_past_the_limit_are_other_and_labels_are_escaped)
{
    atoll__metrics_reset();
    atoll__metric_route("area.levelup", false);
    atoll__metric_route("area.levelup", false);
    atoll__metric_route("area.levelup", true);
    atoll__metric_route("we\"ird\\route\n", false);
    char name[32];
    for (int i = 0; i < ATOLL_METRICS_ROUTES_MAX + 10; i++) {
        snprintf(name, sizeof name, "t.r%d", i);
        atoll__metric_route(name, false);
    }
    char *t = scrape("n\"1");
    HAS(t, "atoll_requests_total{node=\"n\\\"1\",route=\"area.levelup\"} 2\n");
    HAS(t, "atoll_request_errors_total{node=\"n\\\"1\",route=\"area.levelup\"} 1\n");
    HAS(t, "route=\"we\\\"ird\\\\route\\n\"} 1\n");
    /* 256 labels in all: the two above and 254 of the t.r*; 12 counted as other. */
    HAS(t, "atoll_requests_total{node=\"n\\\"1\",route=\"other\"} 12\n");
    int labels = 0;
    for (const char *p = t; (p = strstr(p, "atoll_requests_total{")) != NULL; p++)
        labels++;
    ASSERT_EQ(labels, ATOLL_METRICS_ROUTES_MAX + 1);
    free(t);
}

enum { THREADS = 8, ADDS = 100000 };

static void *
adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < ADDS; i++) {
        atoll__metric_add(ATOLL_CTR_COMMITS, 1);
        atoll__metric_observe(ATOLL_HIST_MAIL, 3);
        if (i % 1000 == 0)
            atoll__metric_route("area.info", false);
    }
    return NULL;
}

TEST(threads_counting_at_once_lose_nothing)
{
    atoll__metrics_reset();
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, adder, NULL), 0);
    /* A scrape meanwhile reads what it reads, and must not trip on the writers. */
    free(scrape("n"));
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = scrape("n"), want[128];
    snprintf(want, sizeof want, "atoll_store_commits_total{node=\"n\"} %d\n", THREADS * ADDS);
    HAS(t, want);
    snprintf(want, sizeof want, "atoll_mail_backlog_count{node=\"n\"} %d\n", THREADS * ADDS);
    HAS(t, want);
    snprintf(want, sizeof want, "atoll_mail_backlog_sum{node=\"n\"} %d\n", 3 * THREADS * ADDS);
    HAS(t, want);
    snprintf(want, sizeof want, "route=\"area.info\"} %d\n", THREADS * ADDS / 1000);
    HAS(t, want);
    free(t);
}

/* Each link has its samples, labelled by peer; a new table replaces the old one whole;
 * past ATOLL_METRICS_PEERS_MAX peers the rest are left out (the sums still hold them). */
TEST(links_are_listed_by_peer)
{
    atoll__metrics_reset();
    atoll__metric_peer p[ATOLL_METRICS_PEERS_MAX + 3];
    memset(p, 0, sizeof p);
    snprintf(p[0].name, sizeof p[0].name, "a2");
    p[0].up = true;
    p[0].queued = 1234;
    snprintf(p[1].name, sizeof p[1].name, "g\"1");
    p[1].pending = 77;
    atoll__metric_peers(p, 2);
    char *t = scrape("a1");
    HAS(t, "# TYPE atoll_peer_link_up gauge\n");
    HAS(t, "atoll_peer_link_up{node=\"a1\",peer=\"a2\"} 1\n");
    HAS(t, "atoll_peer_link_up{node=\"a1\",peer=\"g\\\"1\"} 0\n");
    HAS(t, "atoll_peer_link_queued_bytes{node=\"a1\",peer=\"a2\"} 1234\n");
    HAS(t, "atoll_peer_link_pending_bytes{node=\"a1\",peer=\"g\\\"1\"} 77\n");
    free(t);
    atoll__metric_peers(p + 1, 1);
    t = scrape("a1");
    ASSERT(strstr(t, "peer=\"a2\"") == NULL);
    HAS(t, "atoll_peer_link_up{node=\"a1\",peer=\"g\\\"1\"} 0\n");
    free(t);
    for (int i = 0; i < ATOLL_METRICS_PEERS_MAX + 3; i++)
        snprintf(p[i].name, sizeof p[i].name, "n%d", i);
    atoll__metric_peers(p, ATOLL_METRICS_PEERS_MAX + 3);
    t = scrape("a1");
    char last[64], over[64];
    snprintf(last, sizeof last, "peer=\"n%d\"", ATOLL_METRICS_PEERS_MAX - 1);
    snprintf(over, sizeof over, "peer=\"n%d\"", ATOLL_METRICS_PEERS_MAX);
    HAS(t, last);
    ASSERT(strstr(t, over) == NULL);
    free(t);
}

/* Every line is a comment (# HELP / # TYPE) or `name{labels} value`, the value a number. */
TEST(the_text_is_prometheus_text)
{
    atoll__metrics_reset();
    atoll__metric_route("area.levelup", false);
    atoll__metric_observe(ATOLL_HIST_TICK, 123456);
    char *t = scrape("node");
    int samples = 0;
    for (char *line = strtok(t, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            ASSERT(strncmp(line, "# HELP atoll_", 13) == 0 || strncmp(line, "# TYPE atoll_", 13) == 0);
            continue;
        }
        char *brace = strchr(line, '{'), *close = strrchr(line, '}');
        ASSERT(brace != NULL && close != NULL && close > brace);
        ASSERT(strncmp(line, "atoll_", 6) == 0);
        for (char *p = line; p < brace; p++)
            ASSERT((*p >= 'a' && *p <= 'z') || *p == '_');
        ASSERT(close[1] == ' ');
        char *end;
        strtod(close + 2, &end);
        ASSERT(end != close + 2 && *end == '\0');
        samples++;
    }
    ASSERT(samples > 50);
    free(t);
}

TEST_MAIN(counters_and_gauges_are_written_with_their_node, sessions_are_counted_by_transport,
          histograms_are_cumulative_in_seconds,
          routes_past_the_limit_are_other_and_labels_are_escaped,
          threads_counting_at_once_lose_nothing, links_are_listed_by_peer,
          the_text_is_prometheus_text)

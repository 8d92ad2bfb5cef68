/* proc.h -- what the tests' private servers (pg.c, redis.c) share: a free loopback
 * port, a monotonic clock, stopping a server process with a deadline, and removing its
 * temporary directory. */
#ifndef ATOLL_TEST_PROC_H
#define ATOLL_TEST_PROC_H

#include <sys/types.h>

/* A TCP port free on 127.0.0.1 now (-1 when none could be had). */
int proc_free_port(void);
/* CLOCK_MONOTONIC in milliseconds. */
long proc_now_ms(void);
/* Sends sig to pid and waits for it at most timeout_ms, then SIGKILL and wait. */
void proc_stop(pid_t pid, int sig, long timeout_ms);
/* Copies a server's log file to stderr (a server that did not start). */
void proc_dump_file(const char *path);
/* Removes dir and everything under it (best effort). */
void proc_rm_tree(const char *dir);

#endif /* ATOLL_TEST_PROC_H */

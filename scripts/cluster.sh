#!/usr/bin/env bash
# cluster.sh -- a whole atoll cluster on this machine, to try it out: a PostgreSQL and a
# Redis of its own, two area nodes (each also a coordinator) and one gate.
#
# Usage: scripts/cluster.sh        (`make cluster` builds the binary, then runs this)
#
#   GAME=quick                the game the nodes serve (quick, chat, echo, or a .so)
#   LISTEN=127.0.0.1:3010     where the gate listens for clients
#   ATOLL_BIN=build/atoll     the binary
#   ARGS="..."                more flags for every node, like ARGS="--set net.rate_limit=0"
#                             for a load generator (it sends faster than the 200
#                             requests a second a client may send by default)
#   FOLLOW=1                  show every node's log on the terminal, prefixed with its
#                             name (0: only the summary; the logs are in files anyway)
#
# Why: a cluster needs more than one command (a Redis for the directory, a PostgreSQL
# for the state, a shared secret, nodes that each need a name and an address for their
# links), and failover is only seen with two area nodes and a gate. This script puts
# all of it in one temporary directory (mktemp -d) on free loopback ports, prints where
# to connect and how to kill an area node, and on Ctrl-C (or SIGTERM, or a failure
# while starting) stops every process it started, cleanly, and removes the directory:
# it leaves nothing behind, and can be run again at once. Nothing here is for
# production: docs/deploy.md is.
#
# PostgreSQL refuses to run as root: as root, its server runs as the `postgres` user
# (Debian's postgresql package creates it), in a subdirectory handed to that user.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

game=${GAME:-quick}
listen=${LISTEN:-127.0.0.1:3010}
bin=${ATOLL_BIN:-build/atoll}
follow=${FOLLOW:-1}
read -ra args <<<"${ARGS:-}"

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$bin" ] || die "no binary at $bin: build it first (make cluster does)"
{ command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 ||
    die "redis-server not found: scripts/install-deps.sh installs it"
# Debian installs each major version's server side by side: the newest one.
pgbin=$(for d in /usr/lib/postgresql/*/bin; do if [ -x "$d/initdb" ]; then echo "$d"; fi; done |
    sort -V | tail -n 1)
[ -n "$pgbin" ] || die "the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/initdb): scripts/install-deps.sh installs it"

# The gate's port, before anything is started: in use, it would stop the gate last.
lhost=${listen%:*}
lport=${listen##*:}
case "$lhost" in 0.0.0.0 | "") lhost=127.0.0.1 ;; esac
if [[ $lhost != \[* ]] && (exec 3<>"/dev/tcp/$lhost/$lport") 2>/dev/null; then
    die "something already listens on $listen: give another, like LISTEN=$lhost:$((lport + 1))"
fi

# Everything made from here on is this user's alone (the secret, the logs).
umask 077
tmp=$(mktemp -d -t atoll-cluster.XXXXXX)

# What is running, for cleanup: names and pids of the nodes, in the order started, and
# the pid of what shows each node's log (same index).
names=()
pids=()
tails=()
redis_pid=""
pg_started=""

# Runs a command as the user PostgreSQL runs as: postgres when we are root, else us.
as_pg() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

# Waits up to $2 tenths of a second for process $1 to end; true when it did.
wait_gone() {
    local pid=$1 n=$2
    while [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        n=$((n - 1))
    done
    ! kill -0 "$pid" 2>/dev/null
}

# Waits for node $1 (an index) to end, up to 30 s, then SIGKILL; tells how it ended.
# Called while the script runs too (a node killed for failover): nothing in here may
# fail the script (set -e).
reap() {
    local i=$1 st=0
    [ -n "${pids[$i]}" ] || return 0
    if ! wait_gone "${pids[$i]}" 300; then
        say "${names[$i]} did not stop within 30 s: SIGKILL"
        kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
    wait "${pids[$i]}" 2>/dev/null || st=$?
    # Its log's last lines first: its tail ends a moment after it (--pid).
    if [ -n "${tails[$i]:-}" ]; then
        wait_gone "${tails[$i]}" 30 || kill -TERM "${tails[$i]}" 2>/dev/null || true
        wait "${tails[$i]}" 2>/dev/null || true
        tails[i]=""
    fi
    if [ "$st" -gt 128 ]; then
        say "${names[$i]} (pid ${pids[$i]}) ended by signal $((st - 128))"
    else
        say "${names[$i]} (pid ${pids[$i]}) exited with status $st"
    fi
    pids[i]=""
}

# Stops what was started, in the reverse order: the nodes first (SIGTERM: each writes
# what it owes the store and exits 0; the gate before the area nodes, so that its
# players are not sent elsewhere while the area nodes stop), then Redis and PostgreSQL,
# which the stopping nodes still need; then removes the directory.
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    set +e
    if [ "${#pids[@]}" -gt 0 ]; then
        say "stopping the nodes (SIGTERM)"
        for i in "${!pids[@]}"; do
            [ "${names[$i]}" = gate-1 ] && [ -n "${pids[$i]}" ] && kill -TERM "${pids[$i]}" 2>/dev/null && reap "$i"
        done
        for i in "${!pids[@]}"; do
            [ -n "${pids[$i]}" ] && kill -TERM "${pids[$i]}" 2>/dev/null
        done
        for i in "${!pids[@]}"; do
            reap "$i"
        done
    fi
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null
        wait_gone "$redis_pid" 100 || kill -KILL "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
    fi
    if [ -n "$pg_started" ]; then
        (cd "$tmp/pg" && as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -m fast -w -t 30 stop) >/dev/null 2>&1
    fi
    rm -rf "$tmp"
    say "stopped; $tmp removed"
    exit "$rc"
}
trap cleanup EXIT
# Ctrl-C and SIGTERM are the way to end it: a clean stop, status 0.
trap 'exit 0' INT TERM

# A free TCP port on 127.0.0.1, below the kernel's range for outgoing connections (so
# that none takes it before the server binds it): nothing answers a connection there.
# The servers below still try another port when theirs was taken meanwhile.
free_port() {
    local lo _ base=15000 span p n
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    span=$((lo > base + 1000 ? lo - base : 10000))
    for n in $(seq 100); do
        p=$((base + (RANDOM * 32768 + RANDOM) % span))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found on 127.0.0.1"
}

# Shows the last lines of a log, for a start that failed.
show_log() {
    say "---- last lines of $1"
    tail -n 30 "$1" >&2 || true
}

# ---- Redis: the directory, not kept (no snapshot, no append-only file) ----------------
mkdir "$tmp/redis"
for attempt in 1 2 3 4 5; do
    redis_port=$(free_port)
    # Its own session: a Ctrl-C on the terminal reaches the script, which stops Redis
    # only once the nodes are done with it.
    setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$tmp/redis" \
        --save "" --appendonly no --daemonize no --logfile "$tmp/redis.log" &
    redis_pid=$!
    for n in $(seq 100); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; then
            break 2
        fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    [ "$attempt" -lt 5 ] || { show_log "$tmp/redis.log"; die "Redis did not start"; }
done
redis_url="redis://127.0.0.1:$redis_port"

# ---- PostgreSQL: the state; trust on loopback, a database named atoll ----------------
mkdir "$tmp/pg"
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 ||
        die "running as root and there is no postgres user to run PostgreSQL as (the postgresql package creates it)"
    chmod 711 "$tmp" # the postgres user may pass through, to its own subdirectory
    chown postgres: "$tmp/pg"
fi
(cd "$tmp/pg" && as_pg "$pgbin/initdb" -D "$tmp/pg/data" -U atoll -A trust -E UTF8 \
    --locale=C --no-sync >"$tmp/pg/initdb.log" 2>&1) ||
    { show_log "$tmp/pg/initdb.log"; die "initdb failed"; }
for attempt in 1 2 3 4 5; do
    pg_port=$(free_port)
    # fsync off: this database goes away with the directory anyway.
    if (cd "$tmp/pg" && as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/postgres.log" \
        -o "-h 127.0.0.1 -p $pg_port -k '$tmp/pg' -c fsync=off" -w -t 30 start) >/dev/null 2>&1; then
        pg_started=1
        break
    fi
    [ "$attempt" -lt 5 ] || { show_log "$tmp/pg/postgres.log"; die "PostgreSQL did not start"; }
done
"$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U atoll atoll ||
    die "cannot create the database"
pg_url="postgres://atoll@127.0.0.1:$pg_port/atoll"

# ---- the cluster's secret: random, in a file only this user reads ---------------------
od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp/cluster-secret"

# ---- the nodes ---------------------------------------------------------------------
common=(run --game "$game" --redis "$redis_url" --cluster-secret-file "$tmp/cluster-secret"
        --advertise 127.0.0.1:0 --durability fast)
# The quick game puts every player in area-1 by default: eight areas spread its players
# over both area nodes, so that killing one has something to take over.
[ "$game" = quick ] && common+=(--set quick.areas=8)
common+=("${args[@]+"${args[@]}"}")

# start NAME ARGS...: a node in its own session (a Ctrl-C reaches only this script,
# which then stops the nodes with one SIGTERM each: a second signal would end a node at
# once), its standard output and error in $tmp/NAME.log.
start() {
    local name=$1
    shift
    setsid "$bin" "${common[@]}" --node-id "$name" "$@" >"$tmp/$name.log" 2>&1 &
    names+=("$name")
    pids+=("$!")
    if [ "$follow" != 0 ]; then
        # Deaf to a Ctrl-C too, to show the node's last lines as it stops; tail ends a
        # moment after the node (--pid).
        (
            trap '' INT
            tail -n +1 -F --pid="${pids[-1]}" "$tmp/$name.log" | sed -u "s/^/$name | /" >&2
        ) &
        tails[${#pids[@]} - 1]=$!
    fi
}

# until_line NAME PATTERN: waits up to 30 s for a line of that node's log; prints it.
until_line() {
    local name=$1 pattern=$2 i n line
    for i in "${!names[@]}"; do [ "${names[$i]}" = "$name" ] && break; done
    for n in $(seq 300); do
        line=$(grep -m 1 -E "$pattern" "$tmp/$name.log" || true)
        [ -n "$line" ] && { echo "$line"; return 0; }
        kill -0 "${pids[$i]}" 2>/dev/null || { show_log "$tmp/$name.log"; die "$name exited at start"; }
        sleep 0.1
    done
    show_log "$tmp/$name.log"
    die "$name did not start within 30 s"
}

start area-1 --roles area,coordinator --store "$pg_url"
start area-2 --roles area,coordinator --store "$pg_url"
a1=$(until_line area-1 '^running node ')
a2=$(until_line area-2 '^running node ')
# A gate keeps no state of its own (the area nodes keep the players' and areas'): no
# store, rather than the default SQLite file in the working directory.
start gate-1 --roles gate --listen "$listen" --store memory
gate=$(until_line gate-1 '^listening ')
sleep 0.3 # the nodes' first lines before the summary

cat >&2 <<EOF

cluster: ready, serving the $game game (Ctrl-C stops everything and removes $tmp)
  gate-1   pid ${pids[2]}   ${gate}: connect any Pomelo client there (TCP or WebSocket)
  area-1   pid ${pids[0]}   ${a1}
  area-2   pid ${pids[1]}   ${a2}
  redis    $redis_url      postgres   $pg_url
  logs     $tmp/{gate-1,area-1,area-2}.log, redis.log, pg/postgres.log

  Failover: kill -9 ${pids[0]}   (area-1): within a few seconds area-2 logs "node gone" and
  "area of a dead node given a new owner" for each of its areas, and its players play on.
EOF
if [ "${#args[@]}" -eq 0 ]; then
    cat >&2 <<EOF
  A load generator sends faster than a client may (net.rate_limit, 200 requests a
  second): for one, start with ARGS="--set net.rate_limit=0".
EOF
fi
echo >&2

# Until Ctrl-C: tells of a node that ended (a kill -9 for failover, or a crash).
while :; do
    for i in "${!pids[@]}"; do
        if [ -n "${pids[$i]}" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
            reap "$i"
        fi
    done
    sleep 1
done

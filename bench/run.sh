#!/usr/bin/env bash
# run.sh -- the atoll benchmark: the atoll node against the baseline server, same
# scenarios, one table; then the game scenarios (areas, fan-out, calls, ticks).
#
# Usage: bench/run.sh [--quick] [--only LIST]
#   LIST: comma-separated sections: echo, idle, levelup, loopback, auth, fanout, calls,
#   persist, cluster, migrate; "areas" stands for levelup,fanout,calls (the game
#   scenarios); default: all of them.
#
# Builds nothing: it expects a configured and built tree in build/ (build/atoll,
# build/bench/atoll-loadgen, build/bench/atoll-baseline, build/bench/libatoll_benchgame.so;
# ATOLL_BUILD_DIR overrides the directory, ATOLL_BIN the node binary). Servers run on
# free 127.0.0.1 ports with 2 workers each. Every node runs with --store memory (no
# store at all, as before persistence existed, so that the numbers compare with the
# past; `atoll run` would otherwise keep its documents in ./data), except in the persist
# section, which gives each store its own temporary place:
#   baseline: build/bench/atoll-baseline --listen 127.0.0.1:PORT --workers 2
#   atoll:    build/atoll run --store memory --game echo --listen 127.0.0.1:PORT \
#                 --workers 2 --set net.rate_limit=0
#   quick:    build/atoll run --store memory --game quick ... --set quick.broadcast=false \
#                 --set net.rate_limit=0
#   quick-jwt: the same with --set auth.jwt_secret=<JWT_SECRET below> (signed logins)
#   chat:     build/atoll run --store memory --game chat ... --set net.rate_limit=0
#   bench:    build/atoll run --store memory --game build/bench/libatoll_benchgame.so ... \
#                 --set net.rate_limit=0
#   persist-*: the quick game (as quick) with --store memory (persist-memory), or
#             --data TMPDIR (SQLite, a fresh directory per node) or --store
#             postgres://atoll@127.0.0.1:PGPORT/DB (a database per node), each with
#             --durability fast and durable
#   cluster-single: build/atoll run --game quick --set quick.areas=8 ... \
#             --set quick.broadcast=false --set net.rate_limit=0 --durability fast \
#             --store postgres://atoll@127.0.0.1:PGPORT/atoll_single
#   cluster-gate, cluster-a1, cluster-a2: the same game and settings as cluster-single,
#             each with --redis redis://127.0.0.1:REDISPORT/0 --cluster-secret S
#             --advertise 127.0.0.1:0 --node-id NAME and --roles gate (--listen
#             127.0.0.1:PORT --store memory) or --roles area (no --listen; --store
#             postgres://atoll@127.0.0.1:PGPORT/atoll_cluster, one database for both)
# Sections:
#   echo: route echo.echo, body {"msg":"hello"}, identical for both servers: TCP and
#         WebSocket x (100 connections, depth 1) and (100, depth 16); 10 s measured after
#         2 s of warm-up, 5 pairs of runs (--quick: 3 s after 1 s, 3 pairs). A pair is one
#         run against each server back to back, the order alternating, so a noisy
#         neighbour on a shared machine hits both alike; the ratio reported is the median
#         of the per-pair ratios, and each server's rps and latencies are from its median
#         run.
#   idle: 10000 TCP connections that completed the handshake and only heartbeat; VmRSS
#         of the server (/proc/PID/status) on a fresh server before and after, divided by
#         the connections.
#   levelup: the quick game against the baseline, in pairs as above: 100 TCP connections,
#         each sends gate.entry {uid} (unique) and then area.levelup {} in a closed loop,
#         1 in flight. The baseline gets the very same client traffic and echoes it (its
#         echo.echo); the node answers {code,level,money} and pushes `money` to the
#         player. An answer with a code other than 200 counts as an error.
#   loopback: levelup (as above) against the quick game with node.loopback_links=true,
#         where every mail between the 2 workers is encoded as node-link frames and
#         decoded, in interleaved pairs with the same game without it: the ratio bounds
#         what a node link's encoding will cost (target >= 0.6).
#   auth: signed logins, in interleaved pairs of the quick game without and with
#         auth.jwt_secret (quick, quick-jwt), the same client traffic to both: each
#         gate.entry carries the uid and an HS256 token for it (atoll-loadgen --jwt-secret;
#         the node without the secret reads the uid, the other the token). First levelup
#         as above: tokens are checked at entry only, so the ratio should be 1 (target
#         >= 0.95). Then the entry rate: 100 TCP connections enter once, then each sends
#         its own gate.entry again in a closed loop, depth 1 (--repeat-entry); the node
#         answers {"code":200} without entering anew, so a request is a whole entry's
#         parsing plus, with the secret, the token's check (base64url, header, HMAC-SHA-256,
#         claims): entries per second with and without verification. (Not connect +
#         handshake + entry per connection: that would measure TCP setup, not the token.)
#   fanout: the chat game, 200 connections in the lobby, open loop: each says room.say
#         {"text":"<CLOCK_MONOTONIC ns>"} RATE times a second, spread evenly; every client
#         times every onChat push. First 2 says/s (80,000 pushes/s), REPEATS runs of
#         DURATION s, each on a fresh node; the run of median p99 is reported, with the
#         lowest delivery of all runs. Then the highest sustained rate: the rate doubles
#         from 4 until a run fails, then is bisected 3 times (runs of FO_STEP s); a run
#         fails when fewer than 99.9 % of the expected pushes arrive, the push p99 is over
#         50 ms, the generator itself is more than 50 ms behind (p99), or a say or a
#         connection fails. A failure is confirmed by a second run (noise), a success is
#         not.
#   calls: the bench game. ctl.areas tells the worker of each area; the pinger "ping"
#         calls the ponger on the other worker ("pong" or "pong2"), keeping 1, 16 and
#         256 calls in flight for DURATION s, REPEATS runs each, median calls/s; then,
#         last and without stopping the benchmark if it fails, 256 in flight to the
#         ponger on its own worker, if one is. Tick jitter: the 20 Hz ticker's lateness
#         (late_ns), one report over each series of runs: under the call load at each
#         depth, on an idle node (DURATION x REPEATS s) and under a client load (100 TCP
#         connections, gate.entry into the load areas, load.levelup, depth 1, REPEATS
#         runs). Then the cross-worker calls again at 1 and 256 in flight on a node with
#         node.loopback_links=true (rows marked "links"): what encoding a call's body and
#         reply as node-link frames costs.
#   persist: what keeping players' documents in a store costs. The quick game's levelup
#         (100 TCP connections, gate.entry then area.levelup {} in a closed loop, depth
#         1; every level-up changes the player's document) on 5 nodes side by side:
#         memory (no store: the baseline), sqlite-fast, sqlite-durable, pg-fast,
#         pg-durable. PS_DURATION s measured after PS_WARMUP s (5 after 1; --quick: 2
#         after 0.5); REPEATS rounds, each running the 5 once, the order rotated and
#         reversed every other round; per round the ratios fast/memory and
#         durable/fast of each store, reported as medians (targets: >= 0.9 and >= 0.8),
#         rps and latencies from each node's median run. PostgreSQL is a private
#         server of this run (initdb in TMP, a free loopback port, as the postgres user
#         when root, default settings: fsync on), stopped and removed at the end; its
#         rows are skipped with a warning when no initdb is found (PATH, then
#         /usr/lib/postgresql/*/bin). SQLite runs WAL with synchronous=FULL. From each
#         node's "store closed" log line at SIGTERM (counted over all its runs, warm-up
#         and entries included): documents per batch, bytes per document, commit ms
#         per batch. Then loading: a SQLite store is given 10,000 players' documents
#         (rows copied with the sqlite3 CLI from one a first run wrote), the node is
#         restarted, and 10,000 connections enter those players (--uid-prefix); the
#         loadgen times the first entry sent to the last answered, against the same on
#         a memory node (which loads nothing): entries per second of each, the faster
#         of 2 runs per node (1 with --quick), the order alternating; the node's loads=
#         count says how many documents it read.
#   cluster: the request path through a cluster against one node, then failover. A
#         private Redis (redis-server on a free loopback port, no persistence) and a
#         private PostgreSQL (as persist). First levelup (the quick game with
#         quick.areas=8, --durability fast, 100 TCP connections, gate.entry then
#         area.levelup {} in a closed loop, 1 in flight) in interleaved pairs as above:
#         one embedded node (all roles in one process) against a cluster of a gate and
#         two area nodes, every request going client -> gate -> area node -> gate ->
#         client over the encrypted links (target ratio >= 0.5). The single node has its
#         own database; the two area nodes share one, as a cluster's must, over all
#         their runs: the loadgen's uids carry its pid, so every run plays new players
#         from level 0 and reads no document of another run. atoll-loadgen --cpu-pids
#         reads the CPU time (utime + stime) of each node and of the Redis server at the
#         edges of the measured window: CPU microseconds per request answered, per
#         process, the median over the runs (the cluster's sum per run, then its
#         median). Before the runs the 8 areas are placed by players entering one at a
#         time (atoll-loadgen --once), which spreads them over both area nodes; a burst
#         of first entries puts them all on one (docs/performance.md). Areas per area
#         node are read from Redis after the runs. Then failover, with
#         build/bench/atoll-failover-bench (bench/failover.c): a gate and two area nodes
#         with the coordinator role, durable, 50 players leveling up through the gate
#         and checking that each answer is the level after the last; 10 times (--quick:
#         3) the area node that owns the most areas (on a tie the coordinator's) is
#         killed with SIGKILL and started again once every player has been answered,
#         and the next kill comes 2 to 3 s after the restart (random, so that kills fall
#         anywhere in the nodes' heartbeat periods): p50 and max over the kills of the
#         worst player's wait and of the median player's (target <= 2 s); first with the
#         default cluster.lease_ms and cluster.beat_ms (1500, 300), then with 800 and
#         150. Each run has its own Redis database number and PostgreSQL database. Every
#         node here, the load generator, Redis and PostgreSQL share the 2 cores: the
#         cluster's throughput is bounded by the machine, not by its design.
#   migrate: build/bench/atoll-migrate-bench (bench/migrate.c, its own Redis,
#         PostgreSQL and nodes): the extra latency a move of a running area costs its
#         players (10, 100, 1000 players; against control windows without a move), a
#         drain of a node of 100 areas, and the cluster's answers a second while areas
#         move one after another against the same load without moves; JSON in
#         build/bench/migrate.json.
# The load generator runs on the same machine with 2 threads and no CPU pinning: the
# servers' 2 workers and the generator's 2 threads share the 2 cores through the
# scheduler, so a server that spends more CPU per request leaves less to the generator
# and measures slower, which is what a comparison needs. (With 1 generator thread the
# generator itself was the limit and hid server differences; pinning server and
# generator to separate cores would leave one core for 2 workers, so taskset is not
# used.) Results: a table on stdout and JSON in build/bench/results.json. Every server
# and load generator started here is stopped on exit (trap EXIT).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${ATOLL_BUILD_DIR:-$ROOT/build}
ATOLL_BIN=${ATOLL_BIN:-$BUILD/atoll}
LOADGEN=$BUILD/bench/atoll-loadgen
LOADBENCH=$BUILD/bench/atoll-load-bench
BASELINE=$BUILD/bench/atoll-baseline
BENCHGAME=$BUILD/bench/libatoll_benchgame.so
FAILOVER=$BUILD/bench/atoll-failover-bench
MIGRATE=$BUILD/bench/atoll-migrate-bench
RESULTS=$BUILD/bench/results.json

usage() {
    echo "usage: bench/run.sh [--quick] [--only echo,idle,levelup,loopback,auth,fanout,calls,persist,cluster,migrate|areas]" >&2
    exit 2
}

QUICK=0
ONLY=echo,idle,levelup,loopback,auth,fanout,calls,persist,cluster,migrate
while (($#)); do
    case $1 in
    --quick) QUICK=1 ;;
    --only)
        (($# >= 2)) || usage
        ONLY=${2//areas/levelup,fanout,calls}
        shift
        ;;
    *) usage ;;
    esac
    shift
done
declare -A RUN_SECTION
IFS=, read -ra _sections <<<"$ONLY"
for s in "${_sections[@]}"; do
    case $s in
    echo | idle | levelup | loopback | auth | fanout | calls | persist | cluster | migrate) RUN_SECTION[$s]=1 ;;
    *) usage ;;
    esac
done
want() { [[ -n ${RUN_SECTION[$1]:-} ]]; }

if ((QUICK)); then
    DURATION=3 WARMUP=1 REPEATS=3 FO_STEP=3 PS_DURATION=2 PS_WARMUP=0.5 FAILOVER_KILLS=3
else
    DURATION=10 WARMUP=2 REPEATS=5 FO_STEP=5 PS_DURATION=5 PS_WARMUP=1 FAILOVER_KILLS=10
fi
IDLE_CONNS=10000
BODY='{"msg":"hello"}'
ROUTE=echo.echo
FO_CONNS=200
FO_RATE=2
FO_MAX_RATE=4096 # says per second per connection where the search gives up climbing
CALL_DEPTHS=(1 16 256)
LOAD_CONNS=100
JWT_SECRET=bench-jwt-secret-0123456789abcdef0123 # 37 bytes: no short-secret warning
CLUSTER_SECRET=bench-cluster-secret-0123456789abcdef # at least 16 bytes
FAILOVER_PLAYERS=50
FAILOVER_ALT_LEASE=800 FAILOVER_ALT_BEAT=150 # the failover's alternative: a shorter lease

need=("$ATOLL_BIN" "$LOADGEN")
if want echo || want idle || want levelup; then need+=("$BASELINE"); fi
for bin in "${need[@]}"; do
    if [[ ! -x $bin ]]; then
        echo "run.sh: $bin is missing: build first (cmake -S . -B build && cmake --build build)" >&2
        exit 1
    fi
done
if want persist && ! command -v sqlite3 >/dev/null; then
    echo "run.sh: the persist section needs the sqlite3 command-line tool" >&2
    exit 1
fi
if want cluster && [[ ! -x $FAILOVER ]]; then
    echo "run.sh: $FAILOVER is missing: build first" >&2
    exit 1
fi
if want migrate && [[ ! -x $MIGRATE ]]; then
    echo "run.sh: $MIGRATE is missing: build first" >&2
    exit 1
fi
if want calls && [[ ! -f $BENCHGAME ]]; then
    echo "run.sh: $BENCHGAME is missing: build first" >&2
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/atoll-bench.XXXXXX")
SERVER_PID=
LOADGEN_PID=
REDIS_PID=
FAILOVER_PID=
declare -A PID_OF PORT_OF

stop_pid() {
    local pid=$1
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$LOADGEN_PID"
    stop_pid "$FAILOVER_PID" # its nodes die with it (PR_SET_PDEATHSIG)
    stop_pid "$SERVER_PID"
    for k in "${!PID_OF[@]}"; do
        stop_pid "${PID_OF[$k]}"
    done
    stop_pid "$REDIS_PID"
    pg_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nobody listens on, below the ephemeral range so that 10000 client sockets
# cannot collide with it.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 10000))
        if ! port_open "$p"; then
            echo "$p"
            return 0
        fi
    done
    echo "run.sh: no free port found" >&2
    return 1
}

# start_server KIND: starts it on a fresh port (PORT) and waits until it accepts.
start_server() {
    PORT=$(free_port)
    case $1 in
    baseline) "$BASELINE" --listen "127.0.0.1:$PORT" --workers 2 >"$TMP/$1.log" 2>&1 & ;;
    atoll)
        "$ATOLL_BIN" run --store memory --game echo --listen "127.0.0.1:$PORT" --workers 2 \
            --set net.rate_limit=0 >"$TMP/$1.log" 2>&1 &
        ;;
    quick)
        "$ATOLL_BIN" run --store memory --game quick --listen "127.0.0.1:$PORT" --workers 2 \
            --set quick.broadcast=false --set net.rate_limit=0 >"$TMP/$1.log" 2>&1 &
        ;;
    quick-jwt)
        "$ATOLL_BIN" run --store memory --game quick --listen "127.0.0.1:$PORT" --workers 2 \
            --set quick.broadcast=false --set net.rate_limit=0 \
            --set "auth.jwt_secret=$JWT_SECRET" >"$TMP/$1.log" 2>&1 &
        ;;
    quick-loopback)
        "$ATOLL_BIN" run --store memory --game quick --listen "127.0.0.1:$PORT" --workers 2 \
            --set quick.broadcast=false --set net.rate_limit=0 \
            --set node.loopback_links=true >"$TMP/$1.log" 2>&1 &
        ;;
    chat)
        "$ATOLL_BIN" run --store memory --game chat --listen "127.0.0.1:$PORT" --workers 2 \
            --set net.rate_limit=0 >"$TMP/$1.log" 2>&1 &
        ;;
    persist-*)
        # PS_ARGS[KIND]: the store's options (paths and URLs without spaces).
        # shellcheck disable=SC2086
        "$ATOLL_BIN" run ${PS_ARGS[$1]} --game quick --listen "127.0.0.1:$PORT" \
            --workers 2 --set quick.broadcast=false --set net.rate_limit=0 \
            >"$TMP/$1.log" 2>&1 &
        ;;
    cluster-single)
        "$ATOLL_BIN" run --game quick --listen "127.0.0.1:$PORT" --workers 2 "${CL_GAME[@]}" \
            --store "$CL_SINGLE_STORE" >"$TMP/$1.log" 2>&1 &
        ;;
    bench)
        # BENCH_LINKS=1: every mail between the workers as node-link frames.
        "$ATOLL_BIN" run --store memory --game "$BENCHGAME" --listen "127.0.0.1:$PORT" \
            --workers 2 --set net.rate_limit=0 --set "node.loopback_links=${BENCH_LINKS:-false}" \
            >"$TMP/$1.log" 2>&1 &
        ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "run.sh: the $1 server exited at start:" >&2
            cat "$TMP/$1.log" >&2
            exit 1
        fi
        port_open "$PORT" && return 0
        sleep 0.1
    done
    echo "run.sh: the $1 server did not listen on 127.0.0.1:$PORT within 10 s" >&2
    exit 1
}

stop_server() {
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

# check_alive KIND PID: a server that died under load is a finding, not noise: say so
# with the end of its log and stop.
check_alive() {
    if ! kill -0 "$2" 2>/dev/null; then
        local rc=0
        wait "$2" 2>/dev/null || rc=$?
        echo "run.sh: the $1 server died under load (exit status $rc); its log ends:" >&2
        tail -20 "$TMP/$1.log" >&2
        exit 1
    fi
}

# field JSON KEY: a number from a flat JSON object.
field() {
    sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"
}

rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"
}

# one_run KIND TRANSPORT CONNS DEPTH [LOADGEN ARGS...]: one measured run against the
# running server of KIND; sets OUT to the load generator's JSON. (Not run in a subshell:
# errors must reach the EXIT trap of this shell.)
one_run() {
    local kind=$1 tr=$2 conns=$3 depth=$4
    shift 4
    OUT=$("$LOADGEN" --port "${PORT_OF[$kind]}" --transport "$tr" --conns "$conns" \
        --depth "$depth" --threads 2 --duration "$DURATION" --warmup "$WARMUP" \
        --route "$ROUTE" --body "$BODY" "$@" 2>>"$TMP/loadgen.log") || {
        echo "run.sh: load generator failed against $kind ($tr c$conns d$depth):" >&2
        tail -5 "$TMP/loadgen.log" >&2
        echo "$OUT" >&2
        check_alive "$kind" "${PID_OF[$kind]}"
        exit 1
    }
    check_alive "$kind" "${PID_OF[$kind]}"
}

# median VALUES...: the middle value (the lower middle for an even count).
median() {
    printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"
}

# median_run LINES...: of lines "KEY JSON", the JSON of the line with the median KEY.
median_run() {
    printf '%s\n' "$@" | sort -g -k1,1 | sed -n "$((($# + 1) / 2))p" | cut -d' ' -f2-
}

# json_str TEXT: TEXT escaped for a JSON string (backslashes, quotes, control bytes).
json_str() {
    local t=${1//\\/\\\\}
    t=${t//\"/\\\"}
    tr -d '\000-\037' <<<"$t"
}

join() {
    local IFS=,
    echo "$*"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "null" }'
}

# throughput KEY KIND TRANSPORT CONNS DEPTH [LOADGEN ARGS...]: REPEATS pairs of runs,
# the baseline and the node of KIND back to back (the order alternating), so that a
# noisy neighbour hits both alike. Sets RES[baseline,KEY] and RES[atoll,KEY] to each
# server's median run and RATIO[KEY] to the median of the per-pair throughput ratios,
# the number the targets are judged by.
throughput() {
    local key=$1 node=$2 tr=$3 conns=$4 depth=$5
    shift 5
    local ratios=() base_runs=() atoll_runs=() b a order base=${PAIR_BASE:-baseline}
    for i in $(seq 1 "$REPEATS"); do
        if ((i % 2)); then order="$base $node"; else order="$node $base"; fi
        for kind in $order; do
            one_run "$kind" "$tr" "$conns" "$depth" "$@"
            echo "  $kind $tr c$conns d$depth run $i: $(field "$OUT" throughput_rps) rps," \
                "p99 $(field "$OUT" p99_us) us, errors $(field "$OUT" errors)" >&2
            if [[ $kind == "$base" ]]; then b=$OUT; else a=$OUT; fi
        done
        base_runs+=("$(field "$b" throughput_rps) $b")
        atoll_runs+=("$(field "$a" throughput_rps) $a")
        ratios+=("$(ratio "$(field "$a" throughput_rps)" "$(field "$b" throughput_rps)")")
    done
    RES[baseline,$key]=$(median_run "${base_runs[@]}")
    RES[atoll,$key]=$(median_run "${atoll_runs[@]}")
    RATIO[$key]=$(median "${ratios[@]}")
    echo "  $key: per-pair ratios ${ratios[*]} -> median ${RATIO[$key]}" >&2
}

# start_pair KIND...: starts the servers side by side (only the one under load works).
start_pair() {
    for kind in "$@"; do
        start_server "$kind"
        PID_OF[$kind]=$SERVER_PID
        PORT_OF[$kind]=$PORT
        SERVER_PID=
    done
}

stop_pair() {
    for kind in "$@"; do
        stop_pid "${PID_OF[$kind]}"
        unset "PID_OF[$kind]"
    done
}

# idle KIND: bytes per idle connection on a fresh server; sets RESULT to a JSON object.
idle() {
    start_server "$1"
    sleep 0.5
    local before after ready=$TMP/ready.$1 connected
    before=$(rss_kb)
    rm -f "$ready"
    "$LOADGEN" --port "$PORT" --transport tcp --conns "$IDLE_CONNS" --idle --duration 3600 \
        --timeout 30000 --ready-file "$ready" >"$TMP/idle.$1.json" 2>>"$TMP/loadgen.log" &
    LOADGEN_PID=$!
    for _ in $(seq 1 1200); do
        [[ -s $ready ]] && break
        if ! kill -0 "$LOADGEN_PID" 2>/dev/null; then
            echo "run.sh: idle load generator exited early against $1" >&2
            tail -5 "$TMP/loadgen.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    [[ -s $ready ]] || {
        echo "run.sh: $IDLE_CONNS idle connections did not settle in 120 s" >&2
        exit 1
    }
    sleep 1 # let the server finish the last handshakes and heartbeats
    after=$(rss_kb)
    connected=$(field "$(cat "$ready")" connected)
    stop_pid "$LOADGEN_PID"
    LOADGEN_PID=
    stop_server
    echo "  $1 idle: $connected connections, VmRSS $before kB -> $after kB" >&2
    RESULT=$(awk -v b="$before" -v a="$after" -v n="$connected" 'BEGIN {
        per = 0
        if (n > 0)
            per = (a - b) * 1024 / n
        printf "{\"conns\":%d,\"rss_before_kb\":%d,\"rss_after_kb\":%d,", n, b, a
        printf "\"bytes_per_conn\":%.0f}", per }')
}

# ---- fan-out helpers ----------------------------------------------------------------

# fanout_run RATE SECONDS: one open-loop run on a fresh chat node; sets OUT.
fanout_run() {
    start_server chat
    local pid=$SERVER_PID
    OUT=$("$LOADGEN" --fanout --port "$PORT" --conns "$FO_CONNS" --rate "$1" --threads 2 \
        --duration "$2" --warmup "$WARMUP" --grace 2 --room lobby \
        2>>"$TMP/loadgen.log") || {
        echo "run.sh: fan-out load generator failed (rate $1):" >&2
        tail -5 "$TMP/loadgen.log" >&2
        check_alive chat "$pid"
        exit 1
    }
    check_alive chat "$pid"
    stop_server
    echo "  fanout rate $1/s/conn: $(field "$OUT" pushes) of $(field "$OUT" pushes_expected)" \
        "pushes ($(field "$OUT" pushes_per_s)/s), p50 $(field "$OUT" p50_us) us," \
        "p99 $(field "$OUT" p99_us) us, max $(field "$OUT" max_us) us," \
        "generator lag p99 $(field "$OUT" lag_p99_us) us, errors $(field "$OUT" errors)," \
        "say errors $(field "$OUT" say_errors)" >&2
}

# fanout_ok JSON: the run sustained its rate (see the header for the rule).
fanout_ok() {
    awk -v d="$(field "$1" delivered)" -v p="$(field "$1" p99_us)" \
        -v l="$(field "$1" lag_p99_us)" -v e="$(field "$1" errors)" \
        -v s="$(field "$1" say_errors)" \
        'BEGIN { exit !(d >= 0.999 && p <= 50000 && l <= 50000 && e == 0 && s == 0) }'
}

# fanout_step RATE: one search step, a failure confirmed by a second run; returns 0 when
# the rate is sustained; appends to FO_STEPS and sets STEP_OUT to the deciding run.
fanout_step() {
    fanout_run "$1" "$FO_STEP"
    if ! fanout_ok "$OUT"; then
        echo "  fanout rate $1: failed; again to confirm" >&2
        fanout_run "$1" "$FO_STEP"
    fi
    STEP_OUT=$OUT
    if fanout_ok "$OUT"; then
        FO_STEPS+=("{\"rate_per_conn\":$1,\"sustained\":true,\"run\":$OUT}")
        return 0
    fi
    FO_STEPS+=("{\"rate_per_conn\":$1,\"sustained\":false,\"run\":$OUT}")
    return 1
}

# ---- bench game helpers -------------------------------------------------------------

# ctl ROUTE BODY TIMEOUT_MS: one request to the bench game's ctl area; sets OUT. A
# failure stops the benchmark, unless SOFT is set: then it returns 1 with the symptom
# (and the end of the node's log, if the node died) in FAILURE.
ctl() {
    local pid=${PID_OF[bench]} err=
    OUT=$("$LOADGEN" --once --port "${PORT_OF[bench]}" --entry --route "$1" --body "$2" \
        --timeout "$3" 2>>"$TMP/loadgen.log") || err="$1 $2 failed: $(tail -1 "$TMP/loadgen.log")"
    if [[ -z $err && $(field "$OUT" code) != 200 ]]; then err="$1 $2 answered $OUT"; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        local rc=0
        wait "$pid" 2>/dev/null || rc=$?
        err="${err:-$1 $2}; the node died (exit status $rc), its log ends: $(tail -3 "$TMP/bench.log" | tr '\n' ' ')"
    fi
    [[ -z $err ]] && return 0
    echo "run.sh: $err" >&2
    if [[ -n ${SOFT:-} ]]; then
        FAILURE=$err
        return 1
    fi
    exit 1
}

# calls_series TO INFLIGHT [KEY]: REPEATS pinger runs of DURATION s each. CALLS[KEY]
# (default TO,INFLIGHT) gets the median run by calls/s, CALL_SPREAD[...] every run's
# rate, and TICKS[...] the ticker's report over the whole series (the record is started
# over before the first run and read after the last: at 20 Hz, 5 runs of 10 s give
# 1,000 ticks, so the p99 is the 10th latest tick, not one unlucky sample of a single
# run).
calls_series() {
    local runs=() rates=()
    ctl ctl.ticks '{}' 10000 || return 1
    for _ in $(seq 1 "$REPEATS"); do
        ctl ctl.calls "{\"inflight\":$2,\"ms\":$((DURATION * 1000)),\"to\":\"$1\"}" \
            $(((DURATION + 60) * 1000)) || return 1
        echo "  calls to $1, $2 in flight: $(field "$OUT" per_s)/s, errors $(field "$OUT" errors)" >&2
        runs+=("$(field "$OUT" per_s) $OUT")
        rates+=("$(printf '%.0f' "$(field "$OUT" per_s)")")
    done
    ctl ctl.ticks '{}' 10000 || return 1
    echo "  tick lateness over the series: p50 $(field "$OUT" p50_us) us," \
        "p99 $(field "$OUT" p99_us) us, max $(field "$OUT" max_us) us," \
        "$(field "$OUT" ticks) ticks" >&2
    local key=${3:-$1,$2}
    TICKS[$key]=$OUT
    CALLS[$key]=$(median_run "${runs[@]}")
    CALL_SPREAD[$key]=$(join "${rates[@]}")
}

# ---- persistence helpers ------------------------------------------------------------

# A private PostgreSQL server (as tests/support/pg.c makes one): PG_DIR, PG_PORT.
PG_DIR= PG_BIN=
as_pg() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start: initdb, pg_ctl start on a free loopback port; returns 1 (with a warning)
# when PostgreSQL is not installed or does not start.
pg_start() {
    local initdb
    initdb=$(command -v initdb || true)
    if [[ -z $initdb ]]; then
        initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)
    fi
    if [[ -z $initdb || ! -x $initdb ]]; then
        echo "  warning: no initdb (PATH, /usr/lib/postgresql/*/bin): PostgreSQL skipped" >&2
        return 1
    fi
    PG_BIN=$(dirname "$(readlink -f "$initdb")")
    if ((EUID == 0)) && ! id postgres >/dev/null 2>&1; then
        echo "  warning: root and no postgres user to run the server as: PostgreSQL skipped" >&2
        return 1
    fi
    # Its own directory under /tmp: TMP is private to root, the server runs as postgres.
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/atoll-bench-pg.XXXXXX")
    if ((EUID == 0)); then chown postgres: "$PG_DIR"; fi
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U atoll -A trust -E UTF8 --locale=C \
        --no-sync >"$TMP/initdb.log" 2>&1; then
        echo "  warning: initdb failed, PostgreSQL skipped:" >&2
        tail -5 "$TMP/initdb.log" >&2
        return 1
    fi
    for _ in 1 2 3; do
        PG_PORT=$(free_port)
        if as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
            -o "-k $PG_DIR -h 127.0.0.1 -p $PG_PORT -c max_connections=30" start \
            >>"$TMP/pg.log" 2>&1; then
            return 0
        fi
    done
    echo "  warning: PostgreSQL did not start, skipped:" >&2
    tail -5 "$PG_DIR/postgres.log" >&2
    return 1
}

pg_stop() {
    [[ -n $PG_DIR ]] || return 0
    if [[ -f $PG_DIR/data/postmaster.pid ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >>"$TMP/pg.log" 2>&1 || true
    fi
    rm -rf "$PG_DIR"
    PG_DIR=
}

# store_closed KIND: the node's "store closed" line (SIGTERM) as a JSON object: the
# writer's counts over the node's life, with docs per batch, bytes per doc and commit
# ms per batch; "null" for a node without a store.
store_closed() {
    local line
    line=$(grep 'msg="store closed"' "$TMP/$1.log" | tail -1)
    [[ -n $line ]] || {
        echo null
        return 0
    }
    awk -v l="$line" 'BEGIN {
        n = split(l, kv, " ")
        for (i = 1; i <= n; i++)
            if (split(kv[i], p, "=") == 2)
                v[p[1]] = p[2]
        b = v["batches"] + 0; d = v["docs"] + 0
        printf "{\"flushed\":\"%s\",\"batches\":%d,\"docs\":%d,\"bytes\":%d,", v["flushed"], b, d, v["bytes"]
        printf "\"coalesced\":%d,\"failures\":%d,\"lag_ms_max\":%s,", v["coalesced"], v["failures"], v["lag_ms_max"] + 0
        printf "\"commit_ms\":%s,\"loads\":%d,", v["commit_ms"] + 0, v["loads"]
        printf "\"docs_per_batch\":%.2f,\"bytes_per_doc\":%.1f,\"commit_ms_per_batch\":%.3f}",
            b ? d / b : 0, d ? v["bytes"] / d : 0, b ? v["commit_ms"] / b : 0 }'
}

declare -A RES RATIO CALLS TICKS CALL_SPREAD PS_ARGS PS_RUNS PS_RATES PS_STORE PS_LOAD PS_LOADB \
    PS_LOAD_STORE PS_LOAD_RUNS
SCENARIOS=("tcp 100 1" "tcp 100 16" "ws 100 1" "ws 100 16")

# ---- echo -------------------------------------------------------------------------------

if want echo; then
    start_pair baseline atoll
    for sc in "${SCENARIOS[@]}"; do
        read -r tr conns depth <<<"$sc"
        echo "== $tr c$conns d$depth" >&2
        throughput "$tr,$conns,$depth" atoll "$tr" "$conns" "$depth"
    done
    stop_pair baseline atoll
fi

# ---- idle memory: a fresh server of each kind, one at a time ------------------------------

if want idle; then
    for kind in baseline atoll; do
        idle "$kind"
        RES[$kind,idle]=$RESULT
    done
fi

# ---- levelup ----------------------------------------------------------------------------

if want levelup; then
    echo "== levelup (quick game) c100 d1" >&2
    start_pair baseline quick
    throughput levelup quick tcp 100 1 --entry --check-code --route area.levelup --body '{}'
    stop_pair baseline quick
fi

# ---- loopback links ---------------------------------------------------------------------

if want loopback; then
    echo "== levelup with node.loopback_links vs without, c100 d1" >&2
    start_pair quick quick-loopback
    PAIR_BASE=quick throughput loopback quick-loopback tcp 100 1 --entry --check-code \
        --route area.levelup --body '{}'
    stop_pair quick quick-loopback
fi

# ---- signed logins ----------------------------------------------------------------------

if want auth; then
    echo "== levelup with auth.jwt_secret vs without, c100 d1" >&2
    start_pair quick quick-jwt
    PAIR_BASE=quick throughput auth-levelup quick-jwt tcp 100 1 --entry \
        --jwt-secret "$JWT_SECRET" --check-code --route area.levelup --body '{}'
    echo "== gate.entry again and again, with token verification vs without, c100 d1" >&2
    PAIR_BASE=quick throughput auth-entry quick-jwt tcp 100 1 --entry \
        --jwt-secret "$JWT_SECRET" --repeat-entry --check-code
    stop_pair quick quick-jwt
fi

# ---- fan-out ----------------------------------------------------------------------------

FO_STEPS=()
if want fanout; then
    echo "== fanout (chat game) $FO_CONNS connections, $FO_RATE says/s each" >&2
    fo_runs=()
    fo_min_delivered=1
    for _ in $(seq 1 "$REPEATS"); do
        fanout_run "$FO_RATE" "$DURATION"
        fo_runs+=("$(field "$OUT" p99_us) $OUT")
        fo_min_delivered=$(awk -v a="$fo_min_delivered" -v b="$(field "$OUT" delivered)" \
            'BEGIN { print (b < a ? b : a) }')
    done
    FO_TARGET=$(median_run "${fo_runs[@]}")

    echo "== fanout: highest sustained rate" >&2
    good=$FO_RATE good_out=$FO_TARGET bad=
    rate=$((FO_RATE * 2))
    while ((rate <= FO_MAX_RATE)); do
        if fanout_step "$rate"; then
            good=$rate good_out=$STEP_OUT
            rate=$((rate * 2))
        else
            bad=$rate
            break
        fi
    done
    if [[ -n $bad ]]; then
        for _ in 1 2 3; do
            mid=$(awk -v g="$good" -v b="$bad" 'BEGIN { printf "%g", (g + b) / 2 }')
            if fanout_step "$mid"; then good=$mid good_out=$STEP_OUT; else bad=$mid; fi
        done
    fi
    FO_MAX_RATE_OK=$good
    FO_MAX_OUT=$good_out
    FO_FIRST_BAD=${bad:-null}
    # The loss/delay rule above is loose (50 ms); also the highest rate of any step that
    # met the latency target itself: everything delivered and p99 under 2 ms.
    FO_RATE_2MS=null FO_2MS_OUT=null
    for st in "{\"rate_per_conn\":$FO_RATE,\"run\":$FO_TARGET}" "${FO_STEPS[@]}"; do
        r=$(field "$st" rate_per_conn)
        if awk -v d="$(field "$st" delivered)" -v p="$(field "$st" p99_us)" -v r="$r" \
            -v best="$FO_RATE_2MS" \
            'BEGIN { exit !(d >= 1 && p < 2000 && (best == "null" || r > best + 0)) }'; then
            FO_RATE_2MS=$r FO_2MS_OUT=${st#*\"run\":}
            FO_2MS_OUT=${FO_2MS_OUT%\}}
        fi
    done
fi

# ---- calls and ticks --------------------------------------------------------------------

if want calls; then
    echo "== calls (bench game)" >&2
    start_pair bench
    sleep 0.5 # the area stats are published every 100 ms
    ctl ctl.areas '{}' 10000
    AREAS=$OUT
    echo "  areas and their workers: $AREAS" >&2
    w_ping=$(field "$AREAS" ping)
    CROSS='' LOCAL=''
    for p in pong pong2; do
        if [[ $(field "$AREAS" "$p") == "$w_ping" ]]; then LOCAL=${LOCAL:-$p}; else CROSS=${CROSS:-$p}; fi
    done
    if [[ -z $CROSS ]]; then
        echo "  warning: both pongers share ping's worker; the calls stay on one worker" >&2
        CROSS=pong
    fi
    ctl ctl.calls "{\"inflight\":16,\"ms\":1000,\"to\":\"$CROSS\"}" 61000 # warm-up
    for d in "${CALL_DEPTHS[@]}"; do
        calls_series "$CROSS" "$d"
    done
    echo "== tick jitter: idle node, then under a client load" >&2
    ctl ctl.ticks '{}' 10000
    sleep "$((DURATION * REPEATS))"
    ctl ctl.ticks '{}' 10000
    TICK_IDLE=$OUT
    echo "  idle: tick lateness p99 $(field "$OUT" p99_us) us, max $(field "$OUT" max_us) us" >&2
    # Pooled like the call series: one report over all the runs.
    ctl ctl.ticks '{}' 10000
    tl_runs=() tl_rates=()
    for _ in $(seq 1 "$REPEATS"); do
        one_run bench tcp "$LOAD_CONNS" 1 --entry --room load --check-code \
            --route load.levelup --body '{}'
        echo "  client load: $(field "$OUT" throughput_rps) rps, errors $(field "$OUT" errors)" >&2
        tl_runs+=("$(field "$OUT" throughput_rps) $OUT")
        tl_rates+=("$(printf '%.0f' "$(field "$OUT" throughput_rps)")")
    done
    ctl ctl.ticks '{}' 10000
    echo "  tick lateness under the client load: p99 $(field "$OUT" p99_us) us," \
        "max $(field "$OUT" max_us) us, $(field "$OUT" ticks) ticks" >&2
    TICK_LOAD="{\"load_median\":$(median_run "${tl_runs[@]}"),\"load_rps_runs\":[$(join "${tl_rates[@]}")],\"ticks\":$OUT}"
    ctl ctl.areas '{}' 10000
    AREAS_AFTER=$OUT
    # Last, because a failure here is reported and does not stop the benchmark: calls
    # between two areas of one worker.
    LOCAL_FAILURE=
    if [[ -n $LOCAL ]]; then
        echo "== calls to $LOCAL, on ping's own worker" >&2
        SOFT=1 calls_series "$LOCAL" 256 || LOCAL_FAILURE=$FAILURE
    fi
    stop_pair bench
    # The same calls between the two workers with node.loopback_links=true: what the
    # node link's encoding of a call (its body and reply as JSON) costs.
    echo "== calls with node.loopback_links=true" >&2
    BENCH_LINKS=true start_pair bench
    sleep 0.5
    ctl ctl.areas '{}' 10000
    AREAS_LINKS=$OUT
    CROSS_LINKS=pong
    for p in pong pong2; do
        if [[ $(field "$AREAS_LINKS" "$p") != "$(field "$AREAS_LINKS" ping)" ]]; then CROSS_LINKS=$p; break; fi
    done
    ctl ctl.calls "{\"inflight\":16,\"ms\":1000,\"to\":\"$CROSS_LINKS\"}" 61000 # warm-up
    for d in 1 256; do
        calls_series "$CROSS_LINKS" "$d" "links:$CROSS_LINKS,$d"
    done
    stop_pair bench
fi

# ---- persistence -------------------------------------------------------------------------

if want persist; then
    echo "== persist: levelup (quick game) c100 d1, memory vs SQLite vs PostgreSQL" >&2
    PS_KINDS=(memory sqlite-fast sqlite-durable)
    PS_ARGS[persist-memory]="--store memory"
    for dur in fast durable; do
        mkdir -p "$TMP/sqlite-$dur"
        PS_ARGS[persist-sqlite-$dur]="--data $TMP/sqlite-$dur --durability $dur"
    done
    PS_PG=0
    if pg_start; then
        PS_PG=1
        for dur in fast durable; do
            "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U atoll "atoll_$dur" >>"$TMP/pg.log" 2>&1
            PS_ARGS[persist-pg-$dur]="--store postgres://atoll@127.0.0.1:$PG_PORT/atoll_$dur --durability $dur"
        done
        PS_KINDS+=(pg-fast pg-durable)
        echo "  PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT" >&2
    fi
    for k in "${PS_KINDS[@]}"; do start_pair "persist-$k"; done
    declare -A PS_RATIOS
    nk=${#PS_KINDS[@]}
    for i in $(seq 1 "$REPEATS"); do
        # Rotated by one every round, and reversed every other round.
        order=()
        for j in $(seq 0 $((nk - 1))); do order+=("${PS_KINDS[$(((i - 1 + j) % nk))]}"); done
        if ((i % 2 == 0)); then
            mapfile -t order < <(printf '%s\n' "${order[@]}" | tac)
        fi
        declare -A rps=()
        for k in "${order[@]}"; do
            DURATION=$PS_DURATION WARMUP=$PS_WARMUP one_run "persist-$k" tcp 100 1 --entry \
                --check-code --route area.levelup --body '{}'
            rps[$k]=$(field "$OUT" throughput_rps)
            echo "  $k run $i: ${rps[$k]} rps, p50 $(field "$OUT" p50_us) us," \
                "p99 $(field "$OUT" p99_us) us, errors $(field "$OUT" errors)" >&2
            PS_RUNS[$k]+="${rps[$k]} $OUT"$'\n'
            PS_RATES[$k]+="$(printf '%.0f' "${rps[$k]}"),"
        done
        for st in sqlite pg; do
            [[ -n ${rps[$st-fast]:-} ]] || continue
            PS_RATIOS[$st,fm]+="$(ratio "${rps[$st-fast]}" "${rps[memory]}") "
            PS_RATIOS[$st,df]+="$(ratio "${rps[$st-durable]}" "${rps[$st-fast]}") "
        done
    done
    for k in "${PS_KINDS[@]}"; do
        mapfile -t lines < <(printf '%s' "${PS_RUNS[$k]}")
        RES[persist,$k]=$(median_run "${lines[@]}")
        stop_pair "persist-$k" # SIGTERM: the store's last flush and its "store closed" line
        PS_STORE[$k]=$(store_closed "persist-$k")
        echo "  $k store: ${PS_STORE[$k]}" >&2
    done
    for st in sqlite pg; do
        [[ -n ${PS_RATIOS[$st,fm]:-} ]] || continue
        # shellcheck disable=SC2086
        RATIO[persist,$st,fm]=$(median ${PS_RATIOS[$st,fm]})
        # shellcheck disable=SC2086
        RATIO[persist,$st,df]=$(median ${PS_RATIOS[$st,df]})
        echo "  $st: fast/memory ${PS_RATIOS[$st,fm]}-> ${RATIO[persist,$st,fm]};" \
            "durable/fast ${PS_RATIOS[$st,df]}-> ${RATIO[persist,$st,df]}" >&2
    done
    # The store alone: 10,000 players' documents asked of the writer at once, as after a
    # restart (bench/loads.c); SQLite in a temporary directory, and this PostgreSQL.
    PS_LOADB[sqlite]=$("$LOADBENCH" --docs 10000)
    if [[ -n ${PS_ARGS[persist-pg-fast]:-} ]]; then
        PS_LOADB[pg]=$("$LOADBENCH" --docs 10000 \
            --store "postgres://atoll@127.0.0.1:$PG_PORT/atoll_fast")
    fi
    for st in sqlite pg; do
        [[ -n ${PS_LOADB[$st]:-} ]] &&
            echo "  $st: 10000 documents loaded in $(field "${PS_LOADB[$st]}" load_s) s" >&2
    done
    pg_stop

    # Loading: 10,000 players' documents in SQLite, entered after a restart.
    PS_LOAD_N=10000
    echo "== persist: entering $PS_LOAD_N players whose documents SQLite holds" >&2
    mkdir -p "$TMP/sqlite-load"
    PS_ARGS[persist-load-seed]="--data $TMP/sqlite-load --durability fast"
    PS_ARGS[persist-load-sqlite]=${PS_ARGS[persist-load-seed]}
    PS_ARGS[persist-load-memory]="--store memory"
    start_server persist-load-seed
    "$LOADGEN" --port "$PORT" --entry --uid-prefix seed --conns 1 --route area.levelup \
        --body '{}' --check-code --duration 0.5 --warmup 0 >/dev/null 2>>"$TMP/loadgen.log"
    stop_server
    sqlite3 "$TMP/sqlite-load/atoll.db" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL
        SELECT i + 1 FROM n WHERE i < $PS_LOAD_N - 1)
        INSERT INTO atoll_docs(kind, key, epoch, doc) SELECT 1, 'pre-' || i, 0,
        (SELECT doc FROM atoll_docs WHERE kind = 1 AND key = 'seed-0') FROM n;"
    PS_LOAD_ROWS=$(sqlite3 "$TMP/sqlite-load/atoll.db" \
        "SELECT count(*) FROM atoll_docs WHERE kind = 1 AND key LIKE 'pre-%'")
    echo "  $PS_LOAD_ROWS players' documents in the store" >&2
    # Rounds of both nodes, the order alternating (2; 1 with --quick); each node's faster
    # run is reported (10,000 connects at once can cost a SYN retransmit, 1 s, which is
    # not the store's doing).
    PS_LOAD_ORDER=(sqlite memory)
    ((QUICK)) || PS_LOAD_ORDER+=(memory sqlite)
    for k in "${PS_LOAD_ORDER[@]}"; do
        start_server "persist-load-$k"
        OUT=$("$LOADGEN" --port "$PORT" --entry --uid-prefix pre --conns "$PS_LOAD_N" \
            --threads 2 --route area.info --body '{}' --check-code --duration 2 \
            --warmup 0 --timeout 30000 2>>"$TMP/loadgen.log") || {
            echo "run.sh: the load generator failed entering $PS_LOAD_N players ($k)" >&2
            tail -5 "$TMP/loadgen.log" >&2
            exit 1
        }
        stop_server
        st=$(store_closed "persist-load-$k")
        PS_LOAD_RUNS[$k]+="${PS_LOAD_RUNS[$k]:+,}{\"run\":$OUT,\"store\":$st}"
        if [[ -z ${PS_LOAD[$k]:-} ]] || awk -v a="$(field "$OUT" entry_s)" \
            -v b="$(field "${PS_LOAD[$k]}" entry_s)" 'BEGIN { exit !(a < b) }'; then
            PS_LOAD[$k]=$OUT
            PS_LOAD_STORE[$k]=$st
        fi
        echo "  $k: $(field "$OUT" entries) entries in $(field "$OUT" entry_s) s" \
            "($(awk -v n="$(field "$OUT" entries)" -v s="$(field "$OUT" entry_s)" \
                'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')/s), errors $(field "$OUT" errors)," \
            "store: ${PS_LOAD_STORE[$k]}" >&2
    done
fi

# ---- cluster ----------------------------------------------------------------------------

# A private Redis (as tests/support/redis.c makes one): REDIS_PID, REDIS_PORT; returns 1
# (with a warning) when redis-server is not installed or does not start.
redis_start() {
    local bin
    bin=$(command -v redis-server || echo /usr/bin/redis-server)
    if [[ ! -x $bin ]]; then
        echo "  warning: no redis-server (PATH, /usr/bin): the cluster section is skipped" >&2
        return 1
    fi
    mkdir -p "$TMP/redis"
    for _ in 1 2 3; do
        REDIS_PORT=$(free_port)
        # No snapshots, no append-only file: the directory lives as long as the run.
        "$bin" --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
            --dir "$TMP/redis" --daemonize no --logfile "$TMP/redis/redis.log" &
        REDIS_PID=$!
        for _ in $(seq 1 50); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            port_open "$REDIS_PORT" && return 0
            sleep 0.1
        done
        stop_pid "$REDIS_PID"
        REDIS_PID=
    done
    echo "  warning: redis-server did not start, the cluster section is skipped:" >&2
    tail -5 "$TMP/redis/redis.log" >&2
    return 1
}

# start_member KEY ROLES NAME [ARGS...]: a node of the cluster, logging to TMP/KEY.log.
# A gate listens for clients on a free port (PORT_OF[KEY]); a node without the gate
# role has no client port and says "running node N" on stdout, which is waited for.
start_member() {
    local key=$1 roles=$2 name=$3 listen=()
    shift 3
    if [[ $roles == *gate* ]]; then
        PORT_OF[$key]=$(free_port)
        listen=(--listen "127.0.0.1:${PORT_OF[$key]}")
    fi
    "$ATOLL_BIN" run --game quick --workers 2 "${CL_GAME[@]}" --roles "$roles" \
        --node-id "$name" --advertise 127.0.0.1:0 --redis "$CL_REDIS" \
        --cluster-secret "$CLUSTER_SECRET" "${listen[@]}" "$@" \
        >"$TMP/$key.out" 2>"$TMP/$key.log" &
    PID_OF[$key]=$!
    for _ in $(seq 1 100); do
        if ! kill -0 "${PID_OF[$key]}" 2>/dev/null; then
            echo "run.sh: the $key node exited at start:" >&2
            cat "$TMP/$key.log" >&2
            exit 1
        fi
        if [[ -n ${listen[*]} ]]; then
            port_open "${PORT_OF[$key]}" && return 0
        elif grep -q '^running node' "$TMP/$key.out"; then
            return 0
        fi
        sleep 0.1
    done
    echo "run.sh: the $key node did not start within 10 s" >&2
    exit 1
}

# redis_cmd ARGS...: one command to the private Redis, its answer on stdout (redis-cli
# when installed; only for reading what the nodes wrote, so its absence costs a column).
redis_cmd() {
    command -v redis-cli >/dev/null || return 1
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "${REDIS_DB:-0}" --raw "$@"
}

# cl_areas_placed: how many of area-1..8 have an owner in the directory (8 when Redis
# cannot be asked).
cl_areas_placed() {
    local n=0 a
    redis_cmd PING >/dev/null 2>&1 || {
        echo 8
        return 0
    }
    for a in $(seq 1 8); do
        [[ -n $(redis_cmd HGET "atoll:area:area-$a" node) ]] && n=$((n + 1))
    done
    echo "$n"
}

# failover_run KEY REDIS-DB [LEASE BEAT]: atoll-failover-bench on a PostgreSQL database
# and a Redis database number of its own (the default lease and beat without LEASE
# BEAT); sets FAILOVER[KEY] to its JSON. Progress goes to stderr as it comes.
failover_run() {
    local key=$1 db=$2 settings=()
    shift 2
    (($# == 2)) && settings=(--lease-ms "$1" --beat-ms "$2")
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U atoll "atoll_fo_$key" >>"$TMP/pg.log" 2>&1
    mkdir -p "$TMP/fo-$key"
    "$FAILOVER" --atoll "$ATOLL_BIN" --redis "redis://127.0.0.1:$REDIS_PORT/$db" \
        --store "postgres://atoll@127.0.0.1:$PG_PORT/atoll_fo_$key" --secret "$CLUSTER_SECRET" \
        --logs "$TMP/fo-$key" --players "$FAILOVER_PLAYERS" --kills "$FAILOVER_KILLS" \
        "${settings[@]}" >"$TMP/fo-$key.json" &
    FAILOVER_PID=$!
    local rc=0
    wait "$FAILOVER_PID" || rc=$?
    FAILOVER_PID=
    if ((rc != 0)); then
        echo "run.sh: atoll-failover-bench failed (exit status $rc); its nodes' logs end:" >&2
        for f in "$TMP/fo-$key"/*.log; do
            echo "-- $(basename "$f")" >&2
            tail -5 "$f" >&2
        done
        exit 1
    fi
    FAILOVER[$key]=$(cat "$TMP/fo-$key.json")
    local j=${FAILOVER[$key]}
    echo "  $key: worst player p50 $(field "$j" worst_p50_ms) ms, max $(field "$j" worst_max_ms) ms;" \
        "median player p50 $(field "$j" median_p50_ms) ms, max $(field "$j" median_max_ms) ms;" \
        "$(field "$j" levels) levels, violations $(field "$j" violations), errors $(field "$j" errors)," \
        "false deaths $(field "$j" false_deaths)" >&2
    # Errors in the nodes' logs are findings: shown, not judged here.
    if grep -h 'level=error' "$TMP/fo-$key"/*.log >"$TMP/fo-$key.errors"; then
        echo "  $key: $(wc -l <"$TMP/fo-$key.errors") error lines in the nodes' logs, first:" >&2
        head -3 "$TMP/fo-$key.errors" >&2
    fi
}

declare -A FAILOVER CL_CPU CL_STORE
if want cluster; then
    echo "== cluster: levelup (quick game, 8 areas) c100 d1, one node vs gate + 2 area nodes" >&2
    CL_OK=0
    if redis_start && { [[ -n $PG_DIR ]] || pg_start; }; then
        CL_OK=1
    else
        echo "  warning: the cluster section needs redis-server and PostgreSQL: skipped" >&2
    fi
fi
if want cluster && ((CL_OK)); then
    for db in atoll_single atoll_cluster; do
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U atoll "$db" >>"$TMP/pg.log" 2>&1
    done
    CL_GAME=(--set quick.areas=8 --set quick.broadcast=false --set net.rate_limit=0
        --durability fast)
    CL_SINGLE_STORE="postgres://atoll@127.0.0.1:$PG_PORT/atoll_single"
    CL_REDIS="redis://127.0.0.1:$REDIS_PORT/0"
    start_pair cluster-single
    cl_store="postgres://atoll@127.0.0.1:$PG_PORT/atoll_cluster"
    start_member cluster-a1 area cl-a1 --store "$cl_store"
    start_member cluster-a2 area cl-a2 --store "$cl_store"
    # A gate keeps no documents: memory (with no store given it would open SQLite in
    # ./data of the working directory).
    start_member cluster-gate gate cl-g1 --store memory
    # The 8 areas are placed before the runs by players entering one at a time, so that
    # both area nodes have some, as in a cluster whose areas came gradually. A burst of
    # entries into areas nobody has placed yet, as the first run's 100 connections
    # would make, put all 8 on one area node in 7 tries of 11: each entry has the gate
    # pick a node, each node picked claims the area in Redis, and the first claim wins,
    # so the node that gets to Redis first takes them (docs/performance.md).
    for n in $(seq 1 60); do
        "$LOADGEN" --once --port "${PORT_OF[cluster-gate]}" --entry --route area.info \
            --body '{}' --timeout 10000 >/dev/null 2>>"$TMP/loadgen.log" || {
            echo "run.sh: a player could not enter through the cluster's gate:" >&2
            tail -3 "$TMP/loadgen.log" >&2
            exit 1
        }
        (($(cl_areas_placed) == 8)) && break
    done
    CL_PIDS="${PID_OF[cluster-gate]},${PID_OF[cluster-a1]},${PID_OF[cluster-a2]},$REDIS_PID"
    CL_PROCS=(gate a1 a2 redis) # the order of CL_PIDS
    cl_ratios=() cl_single_runs=() cl_cluster_runs=()
    declare -A cl_cpu_runs=()
    for i in $(seq 1 "$REPEATS"); do
        if ((i % 2)); then cl_order="single cluster"; else cl_order="cluster single"; fi
        for kind in $cl_order; do
            if [[ $kind == single ]]; then
                one_run cluster-single tcp 100 1 --entry --check-code --route area.levelup \
                    --body '{}' --cpu-pids "${PID_OF[cluster-single]}"
                s_out=$OUT
                cl_cpu_runs[single]+="$(field "$OUT" cpu_us_per_req_0) "
                cpu="node $(field "$OUT" cpu_us_per_req_0)"
            else
                one_run cluster-gate tcp 100 1 --entry --check-code --route area.levelup \
                    --body '{}' --cpu-pids "$CL_PIDS"
                check_alive cluster-a1 "${PID_OF[cluster-a1]}"
                check_alive cluster-a2 "${PID_OF[cluster-a2]}"
                c_out=$OUT
                cpu="" sum=0
                for j in "${!CL_PROCS[@]}"; do
                    v=$(field "$OUT" "cpu_us_per_req_$j")
                    cl_cpu_runs[${CL_PROCS[$j]}]+="$v "
                    cpu+="${CL_PROCS[$j]} $v "
                    # The nodes' sum (Redis apart: it is not a node).
                    [[ ${CL_PROCS[$j]} == redis ]] || sum=$(awk -v a="$sum" -v b="$v" 'BEGIN { print a + b }')
                done
                cl_cpu_runs[sum]+="$sum "
                cpu+="(nodes' sum $sum)"
            fi
            echo "  $kind run $i: $(field "$OUT" throughput_rps) rps, p50 $(field "$OUT" p50_us) us," \
                "p99 $(field "$OUT" p99_us) us, errors $(field "$OUT" errors); CPU us/request: $cpu" >&2
        done
        cl_single_runs+=("$(field "$s_out" throughput_rps) $s_out")
        cl_cluster_runs+=("$(field "$c_out" throughput_rps) $c_out")
        cl_ratios+=("$(ratio "$(field "$c_out" throughput_rps)" "$(field "$s_out" throughput_rps)")")
    done
    RES[cluster,single]=$(median_run "${cl_single_runs[@]}")
    RES[cluster,cluster]=$(median_run "${cl_cluster_runs[@]}")
    RATIO[cluster]=$(median "${cl_ratios[@]}")
    CL_RATIOS="${cl_ratios[*]}"
    echo "  cluster/single: per-pair ratios $CL_RATIOS -> median ${RATIO[cluster]}" >&2
    for p in single "${CL_PROCS[@]}" sum; do
        # shellcheck disable=SC2086
        CL_CPU[$p]=$(median ${cl_cpu_runs[$p]})
    done
    # Where the 8 areas went: the node id in each area's entry, against the area nodes'.
    CL_PLACED=null
    if redis_cmd PING >/dev/null 2>&1; then
        id1=$(sed -n 's/^running node //p' "$TMP/cluster-a1.out")
        id2=$(sed -n 's/^running node //p' "$TMP/cluster-a2.out")
        n1=0 n2=0
        for a in $(seq 1 8); do
            o=$(redis_cmd HGET "atoll:area:area-$a" node)
            [[ $o == "$id1" ]] && n1=$((n1 + 1))
            [[ $o == "$id2" ]] && n2=$((n2 + 1))
        done
        CL_PLACED="{\"a1\":$n1,\"a2\":$n2}"
        echo "  areas per area node: a1 $n1, a2 $n2" >&2
    fi
    # SIGTERM: the stores' last flush and their "store closed" lines.
    stop_pair cluster-gate cluster-a1 cluster-a2 cluster-single
    for k in single a1 a2; do
        CL_STORE[$k]=$(store_closed "cluster-$k")
        echo "  $k store: ${CL_STORE[$k]}" >&2
    done

    echo "== cluster: failover, $FAILOVER_KILLS kills of an area node, $FAILOVER_PLAYERS players (durable)" >&2
    failover_run defaults 1
    failover_run "lease$FAILOVER_ALT_LEASE" 2 "$FAILOVER_ALT_LEASE" "$FAILOVER_ALT_BEAT"
    stop_pid "$REDIS_PID"
    REDIS_PID=
    pg_stop
fi

# Live migration: bench/migrate.c starts its own Redis, PostgreSQL and nodes, checks its
# players, prints its numbers as it goes (stderr) and its JSON at the end; --quick does
# not shorten it (about 2.5 minutes).
if want migrate; then
    echo "== migrate: the pause of a move (10, 100, 1000 players), a drain of 100 areas, throughput while areas move" >&2
    if ! ATOLL_BIN=$ATOLL_BIN "$MIGRATE" >"$BUILD/bench/migrate.json"; then
        echo "run.sh: atoll-migrate-bench failed" >&2
        exit 1
    fi
    echo "migrate: $BUILD/bench/migrate.json" >&2
fi

# ---- table ------------------------------------------------------------------------------

fmt0() { printf '%.0f' "$1"; }

if want echo; then
    printf '\natoll vs baseline (%s s runs, %d interleaved pairs, 2 workers each, loopback, %s cores)\n' \
        "$DURATION" "$REPEATS" "$(nproc)"
    printf '%-13s %12s %12s %7s %14s %14s %14s %14s\n' scenario "base rps" "atoll rps" ratio \
        "base p50/p99" "atoll p50/p99" "base p99.9" "atoll p99.9"
    for sc in "${SCENARIOS[@]}"; do
        read -r tr conns depth <<<"$sc"
        b=${RES[baseline,$tr,$conns,$depth]}
        a=${RES[atoll,$tr,$conns,$depth]}
        printf '%-13s %12.0f %12.0f %7s %14s %14s %14s %14s\n' "$tr c$conns d$depth" \
            "$(field "$b" throughput_rps)" "$(field "$a" throughput_rps)" \
            "${RATIO[$tr,$conns,$depth]}" \
            "$(printf '%.0f/%.0f' "$(field "$b" p50_us)" "$(field "$b" p99_us)")" \
            "$(printf '%.0f/%.0f' "$(field "$a" p50_us)" "$(field "$a" p99_us)")" \
            "$(fmt0 "$(field "$b" p999_us)")" "$(fmt0 "$(field "$a" p999_us)")"
    done
fi
if want idle; then
    bi=${RES[baseline,idle]}
    ai=${RES[atoll,idle]}
    printf '%-13s %12s %12s %7s   (bytes of server RSS per idle TCP connection, %s conns)\n' \
        "idle memory" "$(field "$bi" bytes_per_conn)" "$(field "$ai" bytes_per_conn)" \
        "$(ratio "$(field "$ai" bytes_per_conn)" "$(field "$bi" bytes_per_conn)")" "$IDLE_CONNS"
fi
if want echo || want idle; then
    echo "rps: each server's median run; ratio: median of the per-pair atoll/baseline ratios;"
    echo "latencies in microseconds, from the median runs"
fi
# pair_table KEY TITLE BASE-NAME NODE-NAME TARGET: the table of one paired scenario.
pair_table() {
    local b=${RES[baseline,$1]} a=${RES[atoll,$1]}
    printf '\n%s\n' "$2"
    printf '%-13s %12s %12s %7s %14s %14s %8s\n' scenario "$3 rps" "$4 rps" ratio \
        "$3 p50/p99" "$4 p50/p99" "errors"
    printf '%-13s %12.0f %12.0f %7s %14s %14s %8s   (target ratio >= %s)\n' "tcp c100 d1" \
        "$(field "$b" throughput_rps)" "$(field "$a" throughput_rps)" "${RATIO[$1]}" \
        "$(printf '%.0f/%.0f' "$(field "$b" p50_us)" "$(field "$b" p99_us)")" \
        "$(printf '%.0f/%.0f' "$(field "$a" p50_us)" "$(field "$a" p99_us)")" \
        "$(field "$a" errors)" "$5"
}
if want levelup; then
    pair_table levelup \
        "levelup: quick game (area.levelup, gate.entry first) vs baseline echo of the same traffic" \
        base atoll 0.8
fi
if want loopback; then
    pair_table loopback \
        "loopback: levelup with every mail between workers as node-link frames vs without" \
        plain links 0.6
fi
if want auth; then
    pair_table auth-levelup \
        "auth: levelup with auth.jwt_secret vs without (tokens are checked at gate.entry only)" \
        plain jwt 0.95
    b=${RES[baseline,auth-entry]} a=${RES[atoll,auth-entry]}
    printf '\nauth: entries per second, each connection repeating its own gate.entry (c100 d1)\n'
    printf '%-30s %12s %12s %7s %14s %14s %8s\n' scenario "plain /s" "jwt /s" ratio \
        "plain p50/p99" "jwt p50/p99" errors
    printf '%-30s %12.0f %12.0f %7s %14s %14s %8s\n' "gate.entry, HS256 token" \
        "$(field "$b" throughput_rps)" "$(field "$a" throughput_rps)" "${RATIO[auth-entry]}" \
        "$(printf '%.0f/%.0f' "$(field "$b" p50_us)" "$(field "$b" p99_us)")" \
        "$(printf '%.0f/%.0f' "$(field "$a" p50_us)" "$(field "$a" p99_us)")" \
        "$(field "$a" errors)"
fi
if want fanout; then
    t=$FO_TARGET
    printf '\nfanout: chat game, %d connections in one room, each pushed every say\n' "$FO_CONNS"
    printf '%-26s %10s %12s %10s %9s %9s %9s %9s\n' "rate" "pushes/s" "delivered" "min deliv" \
        "p50 us" "p99 us" "max us" "lag p99"
    printf '%-26s %10.0f %12s %10s %9.0f %9.0f %9.0f %9.0f   (target p99 < 2000 us, all delivered)\n' \
        "$FO_RATE says/s/conn (median)" "$(field "$t" pushes_per_s)" \
        "$(field "$t" pushes)/$(field "$t" pushes_expected)" "$fo_min_delivered" \
        "$(field "$t" p50_us)" "$(field "$t" p99_us)" "$(field "$t" max_us)" \
        "$(field "$t" lag_p99_us)"
    m=$FO_MAX_OUT
    printf '%-26s %10.0f %12s %10s %9.0f %9.0f %9.0f %9.0f   (highest sustained; %s failed)\n' \
        "$FO_MAX_RATE_OK says/s/conn (max)" "$(field "$m" pushes_per_s)" \
        "$(field "$m" pushes)/$(field "$m" pushes_expected)" "$(field "$m" delivered)" \
        "$(field "$m" p50_us)" "$(field "$m" p99_us)" "$(field "$m" max_us)" \
        "$(field "$m" lag_p99_us)" "$FO_FIRST_BAD"
    if [[ $FO_RATE_2MS != null ]]; then
        m=$FO_2MS_OUT
        printf '%-26s %10.0f %12s %10s %9.0f %9.0f %9.0f %9.0f   (highest with p99 < 2 ms)\n' \
            "$FO_RATE_2MS says/s/conn" "$(field "$m" pushes_per_s)" \
            "$(field "$m" pushes)/$(field "$m" pushes_expected)" "$(field "$m" delivered)" \
            "$(field "$m" p50_us)" "$(field "$m" p99_us)" "$(field "$m" max_us)" \
            "$(field "$m" lag_p99_us)"
    fi
fi
if want calls; then
    printf '\ncalls: bench game, pinger (worker %s) -> ponger, request/reply pairs per second\n' \
        "$w_ping"
    printf '%-22s %12s %40s %12s %12s\n' "target, in flight" "calls/s" "runs" "tick p99 us" \
        "tick max us"
    for key in "${!CALLS[@]}"; do echo "$key"; done | sort -t, -k1,1 -k2,2n | while IFS=, read -r to d; do
        c=${CALLS[$to,$d]}
        tk=${TICKS[$to,$d]}
        if [[ $to == links:* ]]; then
            label="${to#links:} (w$(field "$AREAS_LINKS" "${to#links:}")), $d, links"
        else
            label="$to (w$(field "$AREAS" "$to")), $d"
        fi
        printf '%-22s %12.0f %40s %12.0f %12.0f\n' "$label" \
            "$(field "$c" per_s)" "${CALL_SPREAD[$to,$d]}" "$(field "$tk" p99_us)" \
            "$(field "$tk" max_us)"
    done
    printf '("links": node.loopback_links=true, every mail between the workers encoded as node-link frames)\n'
    if [[ -n $LOCAL_FAILURE ]]; then
        printf '%-22s %s\n' "$LOCAL (w$(field "$AREAS" "$LOCAL")), 256" "FAILED: $LOCAL_FAILURE"
    fi
    printf '(target >= 1,000,000 calls/s at the best depth; ticker on worker %s)\n' \
        "$(field "$AREAS" tick)"
    printf '\ntick jitter: 20 Hz ticker, lateness of the tick start (target p99 < 2000 us)\n'
    printf '%-40s %10s %10s %10s %8s\n' load "p50 us" "p99 us" "max us" ticks
    printf '%-40s %10.0f %10.0f %10.0f %8s\n' "none (idle node)" "$(field "$TICK_IDLE" p50_us)" \
        "$(field "$TICK_IDLE" p99_us)" "$(field "$TICK_IDLE" max_us)" "$(field "$TICK_IDLE" ticks)"
    for d in "${CALL_DEPTHS[@]}"; do
        tk=${TICKS[$CROSS,$d]}
        printf '%-40s %10.0f %10.0f %10.0f %8s\n' "calls to $CROSS, $d in flight" \
            "$(field "$tk" p50_us)" "$(field "$tk" p99_us)" "$(field "$tk" max_us)" \
            "$(field "$tk" ticks)"
    done
    tk=${TICK_LOAD#*\"ticks\":} # the ticker's report, the last member
    lm=${TICK_LOAD#*\"load_median\":}
    printf '%-40s %10.0f %10.0f %10.0f %8s   (load: %.0f rps, median run)\n' \
        "clients: load.levelup c$LOAD_CONNS d1" "$(field "$tk" p50_us)" \
        "$(field "$tk" p99_us)" "$(field "$tk" max_us)" "$(field "$tk" ticks)" \
        "$(field "${lm%%\}*}" throughput_rps)"
    echo "each row: one report over all the runs of that load (idle: $((DURATION * REPEATS)) s)"
    echo "areas and workers at the end: $AREAS_AFTER"
fi

if want persist; then
    printf '\npersist: quick game levelup c100 d1, %s s runs after %s s, %d rounds of every node\n' \
        "$PS_DURATION" "$PS_WARMUP" "$REPEATS"
    printf '%-15s %10s %12s %9s %11s %10s %10s %12s\n' node rps "p50/p99 us" ratio "ratio of" \
        "docs/batch" "bytes/doc" "commit ms/b"
    for k in "${PS_KINDS[@]}"; do
        r=${RES[persist,$k]} st=${PS_STORE[$k]} rt="" of=""
        case $k in
        *-fast) rt=${RATIO[persist,${k%-fast},fm]} of="memory (>=0.9)" ;;
        *-durable) rt=${RATIO[persist,${k%-durable},df]} of="fast (>=0.8)" ;;
        esac
        printf '%-15s %10.0f %12s %9s %-15s %6s %10s %12s\n' "$k" "$(field "$r" throughput_rps)" \
            "$(printf '%.0f/%.0f' "$(field "$r" p50_us)" "$(field "$r" p99_us)")" "$rt" "$of" \
            "$(field "$st" docs_per_batch)" "$(field "$st" bytes_per_doc)" \
            "$(field "$st" commit_ms_per_batch)"
    done
    echo "rps and latencies: each node's median run; ratios: medians of the per-round ratios;"
    echo "store columns: the node's \"store closed\" line, over all its runs"
    for st in sqlite pg; do
        [[ -n ${PS_LOADB[$st]:-} ]] || continue
        printf 'loading 10000 players'"'"' documents from %s (atoll-load-bench): %s s = %s documents/s\n' \
            "$st" "$(field "${PS_LOADB[$st]}" load_s)" "$(field "${PS_LOADB[$st]}" loads_per_s)"
    done
    for k in memory sqlite; do
        printf 'entering %d players (%s node, faster run): %s entries in %s s = %.0f entries/s, %s documents loaded\n' \
            "$PS_LOAD_N" "$k" "$(field "${PS_LOAD[$k]}" entries)" "$(field "${PS_LOAD[$k]}" entry_s)" \
            "$(awk -v n="$(field "${PS_LOAD[$k]}" entries)" -v s="$(field "${PS_LOAD[$k]}" entry_s)" \
                'BEGIN { print (s > 0 ? n / s : 0) }')" "$(field "${PS_LOAD_STORE[$k]}" loads)"
    done
fi

if want cluster && ((CL_OK)); then
    printf '\ncluster: levelup c100 d1 (quick game, 8 areas, durability fast), one node vs a gate + 2 area nodes\n'
    printf '(%s s runs, %d interleaved pairs, 2 workers per node; %s cores shared by the load generator,\n' \
        "$DURATION" "$REPEATS" "$(nproc)"
    printf ' every node, Redis and PostgreSQL: the cluster'"'"'s throughput is bounded by the machine)\n'
    r_s=${RES[cluster,single]} r_c=${RES[cluster,cluster]}
    printf '%-13s %12s %12s %7s %14s %14s %8s\n' scenario "single rps" "cluster rps" ratio \
        "single p50/p99" "clust p50/p99" errors
    printf '%-13s %12.0f %12.0f %7s %14s %14s %8s   (target ratio >= 0.5)\n' "tcp c100 d1" \
        "$(field "$r_s" throughput_rps)" "$(field "$r_c" throughput_rps)" "${RATIO[cluster]}" \
        "$(printf '%.0f/%.0f' "$(field "$r_s" p50_us)" "$(field "$r_s" p99_us)")" \
        "$(printf '%.0f/%.0f' "$(field "$r_c" p50_us)" "$(field "$r_c" p99_us)")" \
        "$(field "$r_c" errors)"
    echo "per-pair ratios: $CL_RATIOS"
    printf 'CPU us per request (medians of the runs): single node %s; cluster: gate %s, area a1 %s, area a2 %s, nodes'"'"' sum %s (Redis %s)\n' \
        "${CL_CPU[single]}" "${CL_CPU[gate]}" "${CL_CPU[a1]}" "${CL_CPU[a2]}" "${CL_CPU[sum]}" \
        "${CL_CPU[redis]}"
    [[ $CL_PLACED == null ]] || echo "areas per area node: $CL_PLACED"
    for k in single a1 a2; do
        st=${CL_STORE[$k]}
        [[ $st == null ]] && continue
        printf 'store of %-6s %s documents/batch, %s bytes/document, %s commit ms/batch\n' "$k:" \
            "$(field "$st" docs_per_batch)" "$(field "$st" bytes_per_doc)" \
            "$(field "$st" commit_ms_per_batch)"
    done
    printf '\nfailover: a gate + 2 area nodes (area,coordinator), durable, %d players leveling up;\n' \
        "$FAILOVER_PLAYERS"
    printf '%d SIGKILLs of the area node owning the most areas; wait = a player'"'"'s longest time\n' \
        "$FAILOVER_KILLS"
    printf 'without an answer from the kill on; p50 and max over the kills (ms)\n'
    printf '%-32s %10s %10s %11s %11s %11s %11s %7s %12s\n' settings "worst p50" "worst max" \
        "median p50" "median max" "others max" violations errors "false deaths"
    for key in defaults "lease$FAILOVER_ALT_LEASE"; do
        j=${FAILOVER[$key]}
        if [[ $key == defaults ]]; then
            label="lease 1500, beat 300 (defaults)"
        else
            label="lease $FAILOVER_ALT_LEASE, beat $FAILOVER_ALT_BEAT"
        fi
        printf '%-32s %10.0f %10.0f %11.0f %11.0f %11.0f %11s %7s %12s\n' "$label" \
            "$(field "$j" worst_p50_ms)" "$(field "$j" worst_max_ms)" \
            "$(field "$j" median_p50_ms)" "$(field "$j" median_max_ms)" \
            "$(field "$j" others_worst_max_ms)" "$(field "$j" violations)" "$(field "$j" errors)" \
            "$(field "$j" false_deaths)"
    done
    echo "(target: worst player <= 2000 ms; others: players whose area was on the surviving node;"
    echo " violations: answers other than the previous level + 1; false deaths: nodes the gate"
    echo " declared dead that were not killed)"
fi

# ---- JSON -------------------------------------------------------------------------------

{
    printf '{"quick":%s,"duration_s":%s,"warmup_s":%s,"repeats":%d,"cores":%d,"sections":"%s"' \
        "$([[ $QUICK == 1 ]] && echo true || echo false)" "$DURATION" "$WARMUP" "$REPEATS" \
        "$(nproc)" "$ONLY"
    if want echo; then
        printf ',"route":"%s","body":%s,"scenarios":[' "$ROUTE" "$BODY"
        sep=
        for sc in "${SCENARIOS[@]}"; do
            read -r tr conns depth <<<"$sc"
            b=${RES[baseline,$tr,$conns,$depth]}
            a=${RES[atoll,$tr,$conns,$depth]}
            printf '%s{"transport":"%s","conns":%d,"depth":%d,"baseline":%s,"atoll":%s,' \
                "$sep" "$tr" "$conns" "$depth" "$b" "$a"
            printf '"ratio_rps":%s,"ratio_p99":%s}' "${RATIO[$tr,$conns,$depth]}" \
                "$(ratio "$(field "$a" p99_us)" "$(field "$b" p99_us)")"
            sep=,
        done
        printf ']'
    fi
    if want idle; then
        printf ',"idle":{"transport":"tcp","baseline":%s,"atoll":%s,"ratio_bytes":%s}' \
            "$bi" "$ai" "$(ratio "$(field "$ai" bytes_per_conn)" "$(field "$bi" bytes_per_conn)")"
    fi
    if want levelup; then
        printf ',"levelup":{"game":"quick","route":"area.levelup","conns":100,"depth":1,'
        printf '"baseline":%s,"atoll":%s,"ratio_rps":%s}' "${RES[baseline,levelup]}" \
            "${RES[atoll,levelup]}" "${RATIO[levelup]}"
    fi
    if want auth; then
        printf ',"auth":{"game":"quick","conns":100,"depth":1,"levelup":{"plain":%s,"jwt":%s,' \
            "${RES[baseline,auth-levelup]}" "${RES[atoll,auth-levelup]}"
        printf '"ratio_rps":%s},"entry":{"plain":%s,"jwt":%s,"ratio_rps":%s}}' \
            "${RATIO[auth-levelup]}" "${RES[baseline,auth-entry]}" "${RES[atoll,auth-entry]}" \
            "${RATIO[auth-entry]}"
    fi
    if want fanout; then
        printf ',"fanout":{"game":"chat","conns":%d,"rate_per_conn":%s,"median_run":%s,' \
            "$FO_CONNS" "$FO_RATE" "$FO_TARGET"
        printf '"min_delivered":%s,"max_sustained_rate_per_conn":%s,"max_sustained_run":%s,' \
            "$fo_min_delivered" "$FO_MAX_RATE_OK" "$FO_MAX_OUT"
        printf '"first_failed_rate_per_conn":%s,"max_rate_p99_under_2ms":%s,' "$FO_FIRST_BAD" \
            "$FO_RATE_2MS"
        printf '"steps":[%s]}' "$(join "${FO_STEPS[@]}")"
    fi
    if want calls; then
        printf ',"calls":{"areas":%s,"cross":"%s","local":"%s","runs":[' "$AREAS" "$CROSS" "$LOCAL"
        sep=
        for key in "${!CALLS[@]}"; do
            IFS=, read -r to d <<<"$key"
            printf '%s{"to":"%s","inflight":%d,"median":%s,"per_s_runs":[%s],"ticks_median":%s}' \
                "$sep" "$to" "$d" "${CALLS[$key]}" "${CALL_SPREAD[$key]}" "${TICKS[$key]}"
            sep=,
        done
        printf '],"local_failure":"%s"},"ticks":{' "$(json_str "$LOCAL_FAILURE")"
        printf '"hz":20,"idle":%s,"client_load_median":%s,"areas_after":%s}' \
            "$TICK_IDLE" "$TICK_LOAD" "$AREAS_AFTER"
    fi
    if want persist; then
        printf ',"persist":{"game":"quick","route":"area.levelup","conns":100,"depth":1,'
        printf '"duration_s":%s,"warmup_s":%s,"nodes":{' "$PS_DURATION" "$PS_WARMUP"
        sep=
        for k in "${PS_KINDS[@]}"; do
            printf '%s"%s":{"median":%s,"rps_runs":[%s],"store":%s}' "$sep" "$k" \
                "${RES[persist,$k]}" "${PS_RATES[$k]%,}" "${PS_STORE[$k]}"
            sep=,
        done
        printf '},"ratios":{'
        sep=
        for st in sqlite pg; do
            [[ -n ${RATIO[persist,$st,fm]:-} ]] || continue
            printf '%s"%s":{"fast_memory":%s,"durable_fast":%s,"fast_memory_runs":[%s],' \
                "$sep" "$st" "${RATIO[persist,$st,fm]}" "${RATIO[persist,$st,df]}" \
                "$(join ${PS_RATIOS[$st,fm]})"
            printf '"durable_fast_runs":[%s]}' "$(join ${PS_RATIOS[$st,df]})"
            sep=,
        done
        printf '},"load":{"players":%d,"rows":%s,"memory":%s,"sqlite":%s,' "$PS_LOAD_N" \
            "$PS_LOAD_ROWS" "${PS_LOAD[memory]}" "${PS_LOAD[sqlite]}"
        printf '"memory_store":%s,"sqlite_store":%s,' "${PS_LOAD_STORE[memory]}" \
            "${PS_LOAD_STORE[sqlite]}"
        printf '"memory_runs":[%s],"sqlite_runs":[%s]},' "${PS_LOAD_RUNS[memory]}" \
            "${PS_LOAD_RUNS[sqlite]}"
        printf '"store_loads":{"sqlite":%s,"pg":%s}}' "${PS_LOADB[sqlite]:-null}" \
            "${PS_LOADB[pg]:-null}"
    fi
    if want cluster && ((CL_OK)); then
        printf ',"cluster":{"game":"quick","areas":8,"route":"area.levelup","conns":100,"depth":1,'
        # shellcheck disable=SC2086 # the ratios, one word each
        printf '"durability":"fast","single":%s,"cluster":%s,"ratio_rps":%s,"ratios":[%s],' \
            "${RES[cluster,single]}" "${RES[cluster,cluster]}" "${RATIO[cluster]}" \
            "$(join $CL_RATIOS)"
        printf '"cpu_us_per_req":{"single":%s,"gate":%s,"a1":%s,"a2":%s,"nodes_sum":%s,"redis":%s},' \
            "${CL_CPU[single]}" "${CL_CPU[gate]}" "${CL_CPU[a1]}" "${CL_CPU[a2]}" \
            "${CL_CPU[sum]}" "${CL_CPU[redis]}"
        printf '"areas_placed":%s,"stores":{"single":%s,"a1":%s,"a2":%s},' "$CL_PLACED" \
            "${CL_STORE[single]}" "${CL_STORE[a1]}" "${CL_STORE[a2]}"
        printf '"failover":{"defaults":%s,"lease%s":%s}}' "${FAILOVER[defaults]}" \
            "$FAILOVER_ALT_LEASE" "${FAILOVER[lease$FAILOVER_ALT_LEASE]}"
    fi
    printf '}\n'
} >"$RESULTS"
echo "results: $RESULTS"

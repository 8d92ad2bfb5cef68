#!/usr/bin/env bash
# run.sh -- the atoll benchmark: the atoll node against the baseline server, same
# scenarios, one table.
#
# Usage: bench/run.sh [--quick]
#
# Builds nothing: it expects a configured and built tree in build/ (build/atoll,
# build/bench/atoll-loadgen, build/bench/atoll-baseline; ATOLL_BUILD_DIR overrides the
# directory, ATOLL_BIN the node binary). Both servers run side by side on free
# 127.0.0.1 ports with 2 workers each:
#   baseline: build/bench/atoll-baseline --listen 127.0.0.1:PORT --workers 2
#   atoll:    build/atoll run --game echo --listen 127.0.0.1:PORT --workers 2 \
#                 --set net.rate_limit=0
# Scenarios, identical for both servers (route echo.echo, body {"msg":"hello"}):
#   throughput: TCP and WebSocket x (100 connections, depth 1) and (100, depth 16);
#               10 s measured after 2 s of warm-up, 5 pairs of runs (--quick: 3 s after
#               1 s, 3 pairs). A pair is one run against each server back to back, the
#               order alternating, so a noisy neighbour on a shared machine hits both
#               alike; the ratio reported is the median of the per-pair ratios, and each
#               server's rps and latencies are from its median run.
#   idle memory: 10000 TCP connections that completed the handshake and only
#               heartbeat; VmRSS of the server (/proc/PID/status) on a fresh server
#               before and after, divided by the connections.
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
BASELINE=$BUILD/bench/atoll-baseline
RESULTS=$BUILD/bench/results.json

QUICK=0
case "${1:-}" in
"") ;;
--quick) QUICK=1 ;;
*)
    echo "usage: bench/run.sh [--quick]" >&2
    exit 2
    ;;
esac
if ((QUICK)); then
    DURATION=3 WARMUP=1 REPEATS=3
else
    DURATION=10 WARMUP=2 REPEATS=5
fi
IDLE_CONNS=10000
BODY='{"msg":"hello"}'
ROUTE=echo.echo

for bin in "$ATOLL_BIN" "$LOADGEN" "$BASELINE"; do
    if [[ ! -x $bin ]]; then
        echo "run.sh: $bin is missing: build first (cmake -S . -B build && cmake --build build)" >&2
        exit 1
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/atoll-bench.XXXXXX")
SERVER_PID=
LOADGEN_PID=
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
    stop_pid "$SERVER_PID"
    for k in "${!PID_OF[@]}"; do
        stop_pid "${PID_OF[$k]}"
    done
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
        "$ATOLL_BIN" run --game echo --listen "127.0.0.1:$PORT" --workers 2 \
            --set net.rate_limit=0 >"$TMP/$1.log" 2>&1 &
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

# field JSON KEY: a number from a flat JSON object.
field() {
    sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" <<<"$1"
}

rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"
}

# one_run KIND TRANSPORT CONNS DEPTH: one measured run against the running server of
# KIND; sets OUT to the load generator's JSON. (Not run in a subshell: errors must
# reach the EXIT trap of this shell.)
one_run() {
    OUT=$("$LOADGEN" --port "${PORT_OF[$1]}" --transport "$2" --conns "$3" --depth "$4" \
        --threads 2 --duration "$DURATION" --warmup "$WARMUP" --route "$ROUTE" --body "$BODY" \
        2>>"$TMP/loadgen.log") || {
        echo "run.sh: load generator failed against $1 ($2 c$3 d$4):" >&2
        tail -5 "$TMP/loadgen.log" >&2
        echo "$OUT" >&2
        exit 1
    }
}

# median VALUES...: the middle value (the lower middle for an even count).
median() {
    printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"
}

# throughput TRANSPORT CONNS DEPTH: REPEATS pairs of runs, baseline and atoll back to
# back (the order alternating), so that a noisy neighbour hits both alike. Sets
# RES[kind,...] to each server's median run and PAIR_RATIO to the median of the
# per-pair throughput ratios, the number the targets are judged by.
throughput() {
    local ratios=() base_runs=() atoll_runs=() b a order
    for i in $(seq 1 "$REPEATS"); do
        if ((i % 2)); then order="baseline atoll"; else order="atoll baseline"; fi
        for kind in $order; do
            one_run "$kind" "$1" "$2" "$3"
            echo "  $kind $1 c$2 d$3 run $i: $(field "$OUT" throughput_rps) rps," \
                "p99 $(field "$OUT" p99_us) us, errors $(field "$OUT" errors)" >&2
            if [[ $kind == baseline ]]; then b=$OUT; else a=$OUT; fi
        done
        base_runs+=("$(field "$b" throughput_rps) $b")
        atoll_runs+=("$(field "$a" throughput_rps) $a")
        ratios+=("$(ratio "$(field "$a" throughput_rps)" "$(field "$b" throughput_rps)")")
    done
    RES[baseline,$1,$2,$3]=$(printf '%s\n' "${base_runs[@]}" | sort -g -k1,1 |
        sed -n "$(((REPEATS + 1) / 2))p" | cut -d' ' -f2-)
    RES[atoll,$1,$2,$3]=$(printf '%s\n' "${atoll_runs[@]}" | sort -g -k1,1 |
        sed -n "$(((REPEATS + 1) / 2))p" | cut -d' ' -f2-)
    RATIO[$1,$2,$3]=$(median "${ratios[@]}")
    echo "  $1 c$2 d$3: per-pair ratios ${ratios[*]} -> median ${RATIO[$1,$2,$3]}" >&2
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

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "null" }'
}

SCENARIOS=("tcp 100 1" "tcp 100 16" "ws 100 1" "ws 100 16")
declare -A RES RATIO

# Both servers run side by side during the throughput runs; only the one under load
# does any work.
for kind in baseline atoll; do
    start_server "$kind"
    PID_OF[$kind]=$SERVER_PID
    PORT_OF[$kind]=$PORT
    SERVER_PID=
done
for sc in "${SCENARIOS[@]}"; do
    read -r tr conns depth <<<"$sc"
    echo "== $tr c$conns d$depth" >&2
    throughput "$tr" "$conns" "$depth"
done
for kind in baseline atoll; do
    stop_pid "${PID_OF[$kind]}"
    unset "PID_OF[$kind]"
done

# Idle memory on a fresh server of each kind, one at a time.
for kind in baseline atoll; do
    idle "$kind"
    RES[$kind,idle]=$RESULT
done

# ---- table ------------------------------------------------------------------------
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
        "$(printf '%.0f' "$(field "$b" p999_us)")" "$(printf '%.0f' "$(field "$a" p999_us)")"
done
bi=${RES[baseline,idle]}
ai=${RES[atoll,idle]}
printf '%-13s %12s %12s %7s   (bytes of server RSS per idle TCP connection, %s conns)\n' \
    "idle memory" "$(field "$bi" bytes_per_conn)" "$(field "$ai" bytes_per_conn)" \
    "$(ratio "$(field "$ai" bytes_per_conn)" "$(field "$bi" bytes_per_conn)")" "$IDLE_CONNS"
echo "rps: each server's median run; ratio: median of the per-pair atoll/baseline ratios;"
echo "latencies in microseconds, from the median runs"

# ---- JSON -------------------------------------------------------------------------
{
    printf '{"quick":%s,"duration_s":%s,"warmup_s":%s,"repeats":%d,"cores":%d,' \
        "$([[ $QUICK == 1 ]] && echo true || echo false)" "$DURATION" "$WARMUP" "$REPEATS" \
        "$(nproc)"
    printf '"route":"%s","body":%s,"scenarios":[' "$ROUTE" "$BODY"
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
    printf '],"idle":{"transport":"tcp","baseline":%s,"atoll":%s,"ratio_bytes":%s}}\n' \
        "$bi" "$ai" "$(ratio "$(field "$ai" bytes_per_conn)" "$(field "$bi" bytes_per_conn)")"
} >"$RESULTS"
echo "results: $RESULTS"

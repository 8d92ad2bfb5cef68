#!/usr/bin/env bash
# install-deps.sh -- install the Debian packages atoll needs to build, test and fuzz.
#
# Idempotent: it asks dpkg what is already there and calls apt-get only for what is
# missing, so `make run` and `make check` can call it every time at no cost.
# Uses sudo when not root. Node.js packages for the genuine-client test are installed
# by tests/js/setup.sh into the build tree, not here.
set -euo pipefail

# Build: compiler, cmake, pkg-config. Libraries: libuv (event loop), jansson (JSON trees
# for the handshake and game values), OpenSSL's libcrypto (SHA-1 for the WebSocket
# accept key, MD5 for Pomelo's dictVersion, HMAC-SHA-256 for login and resume
# tokens), SQLite (the embedded node's store). Tests and fuzzing: clang with its
# runtime (libFuzzer, sanitizers), nodejs + npm for the genuine Pomelo JS client.
# Stores: libpq (PostgreSQL's client library, 14+ for pipeline mode) and SQLite; the
# PostgreSQL server itself (postgresql), which store_pg_test starts a private copy of.
# Cluster: hiredis (the directory in Redis, with its libuv adapter), libsodium (node
# links: authentication and encryption), and the Redis server the cluster tests and
# `make cluster` start a private copy of (redis-server). The operator's API: libmicrohttpd
# (the node's admin HTTP server, src/admin) and libcurl (its client, `atoll ctl`).
packages=(
    build-essential cmake pkg-config
    libuv1-dev libjansson-dev libssl-dev
    libpq-dev libsqlite3-dev postgresql
    libhiredis-dev libsodium-dev redis-server
    libmicrohttpd-dev libcurl4-openssl-dev
    clang libclang-rt-14-dev
    nodejs npm
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# nodejs/npm may come from elsewhere than Debian (a newer Node on PATH): accept that.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    filtered=()
    for p in "${missing[@]}"; do
        case "$p" in nodejs|npm) ;; *) filtered+=("$p") ;; esac
    done
    missing=("${filtered[@]+"${filtered[@]}"}")
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

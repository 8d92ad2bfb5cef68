#!/bin/sh
# tests/js/setup.sh -- installs the pinned npm packages of tests/js (package-lock.json)
# into tests/js/node_modules. Idempotent: runs `npm ci` only when node_modules is
# missing, incomplete, or older than package-lock.json.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

needs_install() {
    [ -d node_modules ] || return 0
    for p in pomelo-jsclient-websocket pomelo-protocol ws; do
        [ -f "node_modules/$p/package.json" ] || return 0
    done
    [ package-lock.json -nt node_modules ] && return 0
    return 1
}

# Two build trees running ctest at once must not run npm ci over each other.
lock="${TMPDIR:-/tmp}/atoll-tests-js-npm.lock"
# (A bare `exec 2>/dev/null` would silence the rest of the script, hence the probe.)
if command -v flock >/dev/null 2>&1 && { : >>"$lock"; } 2>/dev/null; then
    exec 9>>"$lock"
    flock 9
fi

if ! needs_install; then
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "tests/js/setup.sh: npm not found; install nodejs and npm (scripts/install-deps.sh does)" >&2
    exit 1
fi

echo "tests/js/setup.sh: installing npm packages from package-lock.json into $here/node_modules"
if ! npm ci --no-audit --no-fund; then
    echo "tests/js/setup.sh: 'npm ci --no-audit --no-fund' failed in $here (is the npm registry reachable? see the npm output above)" >&2
    exit 1
fi
# npm ci recreates node_modules, but make sure it counts as newer than the lock file.
touch node_modules

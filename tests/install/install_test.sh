#!/bin/sh
# install_test.sh -- atoll installed and used the way docs/api/game.md says, outside the
# source tree: `cmake --install` into a temporary prefix, then, in a temporary directory
# with only that prefix to go by (PKG_CONFIG_PATH, PATH):
#   - examples/mygame/mygame.c built as libmygame.so with the documented compile line,
#     and served by the INSTALLED atoll binary as `atoll run --game libmygame.so` (a
#     relative name, no ./), which one player drives through a client compiled against
#     the installed atollc (hello_client.c, pkg-config atollc);
#   - the same game linked into a program of its own (main.c, pkg-config --libs atoll),
#     served and driven the same way;
#   - examples/mygame/CMakeLists.txt (the documented CMake snippet) building both;
#   - each node stops on SIGTERM with exit status 0.
#
#   install_test.sh BUILD_DIR SOURCE_DIR LIBDIR     (ctest runs it: label install)
#
# CC is the compiler (ctest passes the build's own, so a sanitized build's flags in the
# installed .pc files suit it). Output is TAP-like and ends with "N passed, M failed";
# the first failure ends the run, with what went wrong.
set -u

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
libdir=$3
cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atoll-install-test.XXXXXX")
prefix=$tmp/prefix
work=$tmp/mygame
node_pid=

# cmake --install rewrites the build tree's install_manifest.txt, the list of files a
# real `make install` left there (docs/api/game.md removes them with it): kept aside
# and put back.
manifest=$build/install_manifest.txt
if [ -f "$manifest" ]; then
    cp -p "$manifest" "$tmp/manifest"
fi
restore_manifest() {
    if [ -f "$tmp/manifest" ]; then
        cp -p "$tmp/manifest" "$manifest"
    else
        rm -f "$manifest"
    fi
}

cleanup() {
    restore_manifest
    if [ -n "$node_pid" ]; then
        kill -KILL "$node_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
fail() {
    n=$((n + 1))
    echo "not ok $n - $1"
    if [ -s "$tmp/log" ]; then
        sed 's/^/#   /' "$tmp/log"
    fi
    echo "$((n - 1)) passed, 1 failed"
    exit 1
}
pass() {
    n=$((n + 1))
    echo "ok $n - $1"
}
# step DESC CMD...: runs CMD with its output in $tmp/log; its failure ends the run.
step() {
    desc=$1
    shift
    if "$@" >"$tmp/log" 2>&1; then
        pass "$desc"
    else
        fail "$desc"
    fi
}

# ---- install ----

step "cmake --install into a temporary prefix" cmake --install "$build" --prefix "$prefix"
restore_manifest
for f in bin/atoll "$libdir/libatoll.a" "$libdir/libatollc.a" "$libdir/libatoll_codec.a" \
         include/atoll/atoll.h include/atollc/atollc.h \
         "$libdir/pkgconfig/atoll.pc" "$libdir/pkgconfig/atollc.pc" \
         "$libdir/pkgconfig/atoll-codec.pc"; do
    [ -f "$prefix/$f" ] || { echo "missing: $prefix/$f" >"$tmp/log"; fail "installed: $f"; }
done
pass "installed: bin/atoll, the three libraries, atoll.h, atollc.h, the .pc files"

PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
PATH=$prefix/bin:$PATH
export PKG_CONFIG_PATH PATH
got=$(pkg-config --variable=prefix atoll 2>"$tmp/log")
[ "$got" = "$prefix" ] || { echo "prefix=$got" >>"$tmp/log"; fail "atoll.pc names the prefix given to cmake --install"; }
pass "atoll.pc names the prefix given to cmake --install"

# ---- build out of tree, as the docs say ----

mkdir -p "$work"
cp "$src/examples/mygame/mygame.c" "$src/examples/mygame/main.c" \
   "$src/examples/mygame/CMakeLists.txt" "$src/tests/install/hello_client.c" "$work/"
cd "$work" || fail "cd $work"

# The docs give these lines; the test uses them as written there.
so_line='cc -shared -fPIC $(pkg-config --cflags atoll) -o libmygame.so mygame.c'
prog_line='cc -o mygame-server main.c mygame.c $(pkg-config --cflags --libs atoll)'
for line in "$so_line" "$prog_line" "atoll run --game libmygame.so"; do
    grep -qF -- "$line" "$src/docs/api/game.md" ||
        { echo "not in docs/api/game.md: $line" >"$tmp/log"; fail "docs/api/game.md gives: $line"; }
done
pass "docs/api/game.md gives the compile lines and the run command used here"
# Its CMake snippet is examples/mygame/CMakeLists.txt, line for line.
sed -n '/^```cmake$/,/^```$/p' "$src/docs/api/game.md" | sed '1d;$d' | grep -v '^$' >"$tmp/snippet"
[ -s "$tmp/snippet" ] || { echo "no cmake block in docs/api/game.md" >"$tmp/log"; fail "docs/api/game.md has a CMake snippet"; }
while IFS= read -r line; do
    grep -qxF -- "$line" CMakeLists.txt ||
        { echo "not in examples/mygame/CMakeLists.txt: $line" >"$tmp/log"; fail "the CMake snippet of docs/api/game.md is examples/mygame/CMakeLists.txt"; }
done <"$tmp/snippet"
pass "the CMake snippet of docs/api/game.md is examples/mygame/CMakeLists.txt"

# shellcheck disable=SC2046 # word splitting of pkg-config's output is what the docs do
step "$so_line" "$cc" -shared -fPIC $(pkg-config --cflags atoll) -o libmygame.so mygame.c
# shellcheck disable=SC2046
step "$prog_line" "$cc" -o mygame-server main.c mygame.c $(pkg-config --cflags --libs atoll)
# shellcheck disable=SC2046
step "the client compiled against the installed atollc (pkg-config --cflags --libs atollc)" \
    "$cc" -o hello_client hello_client.c $(pkg-config --cflags --libs atollc)
step "examples/mygame/CMakeLists.txt (pkg_check_modules) configures against the prefix" \
    env CC="$cc" cmake -S . -B cmake-build
step "... and builds libmygame.so and mygame-server" cmake --build cmake-build
[ -f cmake-build/libmygame.so ] && [ -x cmake-build/mygame-server ] ||
    { ls cmake-build >"$tmp/log"; fail "the CMake build made libmygame.so and mygame-server"; }
pass "the CMake build made libmygame.so and mygame-server"

# ---- serve, one request, stop ----

# serve DESC CMD...: starts the node, waits for "listening 127.0.0.1:PORT", has one
# player say hello, and stops the node with SIGTERM (exit status 0 expected).
serve() {
    desc=$1
    shift
    : >"$tmp/out"
    "$@" --listen 127.0.0.1:0 --workers 1 >"$tmp/out" 2>"$tmp/err" &
    node_pid=$!
    port=
    i=0
    while [ $i -lt 100 ]; do # 10 s
        port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out")
        [ -n "$port" ] && break
        kill -0 "$node_pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    if [ -z "$port" ]; then
        { echo "no \"listening 127.0.0.1:PORT\" line; stdout:"; cat "$tmp/out";
          echo "stderr:"; cat "$tmp/err"; } >"$tmp/log"
        fail "$desc: starts and prints listening 127.0.0.1:PORT"
    fi
    pass "$desc: starts and prints listening 127.0.0.1:$port"

    ./hello_client "$port" alice >"$tmp/reply" 2>"$tmp/log"
    rc=$?
    expected='entry {"code":200,"uid":"alice","area":"room-1"}
hello {"code":200,"hello":"alice","count":1}
push hello {"from":"alice"}'
    # The entry's resume token is random: its form is checked, then it is left out.
    got=$(sed -E 's/,"resume":"1[0-9a-f]{64}alice"//' "$tmp/reply")
    if [ $rc -ne 0 ] || [ "$got" != "$expected" ]; then
        { echo "hello_client exit $rc; expected:"; echo "$expected"; echo "got:";
          cat "$tmp/reply"; echo "node stderr:"; cat "$tmp/err"; } >>"$tmp/log"
        fail "$desc: gate.entry and room.hello answered, hello pushed"
    fi
    pass "$desc: gate.entry and room.hello answered, hello pushed"

    kill -TERM "$node_pid"
    wait "$node_pid"
    rc=$?
    node_pid=
    if [ $rc -ne 0 ]; then
        { echo "exit status $rc; node stderr:"; cat "$tmp/err"; } >"$tmp/log"
        fail "$desc: stops on SIGTERM with exit status 0"
    fi
    pass "$desc: stops on SIGTERM with exit status 0"
}

serve "installed atoll run --game libmygame.so (run from the game's directory)" \
    atoll run --game libmygame.so
# Its own data directory: the room's state of the run above is kept in ./data (the
# command's default store) and would greet this run with a count of 2.
serve "mygame-server run (the game linked with the installed libatoll)" \
    ./mygame-server run --data data-linked
[ -f data/atoll.db ] && [ -f data-linked/atoll.db ] ||
    fail "each run kept its state in its --data directory (data/atoll.db by default)"
pass "each run kept its state in its --data directory (data/atoll.db by default)"

echo "$n passed, 0 failed"

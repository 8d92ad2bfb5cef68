#!/usr/bin/env bash
# fuzz.sh -- build the libFuzzer targets with clang and run each for a while.
#
# Usage: scripts/fuzz.sh [SECONDS]      (default 60 seconds per target)
#
# Configures build-fuzz/ with -DATOLL_FUZZ=ON, then for every tests/fuzz/fuzz_NAME.c
# (found by file name, so new targets need no change here) builds fuzz_NAME and runs it
# for SECONDS with tests/fuzz/NAME.dict when that exists. libFuzzer writes the inputs it
# finds interesting into its corpus directory, so each target runs on a scratch copy,
# build-fuzz/corpus/NAME/, seeded from tests/fuzz/corpus/NAME/ (kept between runs, so
# coverage accumulates; the repository is never written). Crashes, leaks and timeouts
# go to build-fuzz/artifacts/; logs to build-fuzz/logs/NAME.log.
#
# Exit status: 0 when every target ran clean, 1 when a target found a crash (its file is
# printed; add it to tests/fuzz/corpus/NAME/ once fixed, see tests/fuzz/README.md),
# 2 when nothing crashed but a target failed to build.
set -uo pipefail

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 64
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build-fuzz

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang not found (scripts/install-deps.sh installs it)" >&2
    exit 2
fi

mkdir -p "$build/artifacts" "$build/logs" "$build/corpus"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DATOLL_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/logs/configure.log" 2>&1 || {
    cat "$build/logs/configure.log" >&2
    echo "fuzz.sh: cmake configure failed" >&2
    exit 2
}

# The fuzz build compiles UBSan in recover mode: make its reports fatal so that libFuzzer
# stops and saves the input, as it does for ASan's.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

jobs=$(nproc 2>/dev/null || echo 2)
names=()
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    n=$(basename "$src" .c)
    names+=("${n#fuzz_}")
done
if [ ${#names[@]} -eq 0 ]; then
    echo "fuzz.sh: no tests/fuzz/fuzz_*.c targets" >&2
    exit 2
fi

crashed=()
broken=()
summary=()
for name in "${names[@]}"; do
    target=fuzz_$name
    echo "== $target: build"
    # One target at a time: a target that does not build does not stop the others.
    blog=$build/logs/$target.build.log
    if ! cmake --build "$build" -j"$jobs" --target "$target" >"$blog" 2>&1; then
        tail -n 30 "$blog" >&2
        echo "== $target: BUILD FAILED (log: $blog)" >&2
        broken+=("$target")
        summary+=("$target: build failed")
        continue
    fi

    work=$build/corpus/$name
    mkdir -p "$work"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        cp -f tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
    fi
    args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1
          -artifact_prefix="$build/artifacts/$name-")
    if [ -f "tests/fuzz/$name.dict" ]; then
        args+=(-dict="tests/fuzz/$name.dict")
    fi

    echo "== $target: run ${secs}s"
    log=$build/logs/$target.log
    "$build/tests/$target" "${args[@]}" "$work" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $rc -ne 0 ]; then
        # libFuzzer names the reproducer in "Test unit written to FILE".
        found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        grep -E 'ERROR|runtime error|CHECK|SUMMARY' "$log" | head -n 20 >&2
        echo "== $target: FOUND A CRASH (exit $rc): ${found:-see $log}" >&2
        crashed+=("$target: ${found:-$log}")
        summary+=("$target: CRASH ${found:-(see $log)}")
    else
        summary+=("$target: ok, ${execs:-?} execs, ${cov:-cov ?}")
    fi
done

echo
echo "== summary (${secs}s per target)"
printf '   %s\n' "${summary[@]}"
if [ ${#crashed[@]} -ne 0 ]; then
    echo "crashes:" >&2
    printf '   %s\n' "${crashed[@]}" >&2
    exit 1
fi
if [ ${#broken[@]} -ne 0 ]; then
    exit 2
fi
exit 0

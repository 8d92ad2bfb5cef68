# Makefile -- the two commands of atoll, and a few more.
#
#   make run     install missing packages, build, start the embedded node with the quick
#                game (GAME=chat or GAME=echo for the others)
#   make cluster install missing packages, build, start a cluster on this machine: a
#                PostgreSQL and a Redis of its own, two area nodes and a gate on LISTEN
#                (scripts/cluster.sh; Ctrl-C stops it all and removes its directory;
#                ARGS="--set KEY=VALUE ..." adds flags to every node)
#   make check   install missing packages, build, run the whole suite, then again under
#                ASan+UBSan (and its integration tests once more with node.loopback_links,
#                every mail between workers encoded as node-link frames), then under TSan
#   make bench   release build + bench/run.sh (numbers for docs/performance.md)
#   make fuzz    run every libFuzzer target for FUZZ_SECONDS each (default 60)
#   make install build, then install the binary, libraries, headers and pkg-config
#                files into PREFIX (default /usr/local; DESTDIR stages them)
#
# CMake does the building; this file only names the build flavours.

JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN    ?= 127.0.0.1:3010
GAME      ?= quick
FUZZ_SECONDS ?= 60
PREFIX    ?= /usr/local
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build run cluster check check-release check-asan check-tsan bench fuzz install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)

# Builds only the binary it runs, quietly (the compiler's output is shown only when the
# build fails), so what follows on the terminal is the node's own lines.
run: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS) --target atoll_bin >build/make-run.log 2>&1 || \
		{ cat build/make-run.log; echo "make run: the build failed (above)"; exit 1; }
	@echo "make run: starting the $(GAME) game on $(LISTEN), state kept in data/atoll.db (Ctrl-C stops it)"
	@build/atoll run --game $(GAME) --listen $(LISTEN)

# The same quiet build, then scripts/cluster.sh: two area nodes (each also a coordinator)
# and a gate, over a Redis and a PostgreSQL of their own, everything in one temporary
# directory; it prints where to connect and how to try failover.
cluster: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS) --target atoll_bin >build/make-cluster.log 2>&1 || \
		{ cat build/make-cluster.log; echo "make cluster: the build failed (above)"; exit 1; }
	@ATOLL_BIN=build/atoll GAME="$(GAME)" LISTEN="$(LISTEN)" ARGS="$(ARGS)" scripts/cluster.sh

check: deps check-release check-asan check-tsan

check-release: build
	cd build && ctest $(CTEST_FLAGS)

check-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATOLL_SANITIZE=address,undefined -DATOLL_BENCH=OFF >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)
	@echo "== integration suite again, every mail between workers as node-link frames"
	@# Not the cluster and migration tests: their mail already crosses real node links
	@# between processes, and they are the longest (half the pass).
	cd build-asan && ATOLL_LOOPBACK_LINKS=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS) -L integration \
		-E 'cluster_test|migrate_test'

# ThreadSanitizer where threads meet: the node's workers and mailboxes (driven by the
# integration and JS tests, which start TSan-built nodes) and the client tests' server
# threads. The whole suite is cheap enough to run as it is.
check-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DATOLL_SANITIZE=thread -DATOLL_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest $(CTEST_FLAGS)

bench: build
	bench/run.sh

fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The release build, installed by CMake's install rules (see CMakeLists.txt); the
# pkg-config files name PREFIX, without DESTDIR. It configures only a tree never
# configured, so `sudo make install` after `make build` does not redo build/ as root
# (CMake still writes build/install_manifest.txt, the list of files installed).
install: deps
	@[ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j$(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install build --prefix "$(PREFIX)"

clean:
	rm -rf build build-asan build-tsan build-fuzz

#!/usr/bin/env bash
# check-layers.sh -- fails when an include in src/ crosses the layers the wrong way, or
# a public header names an internal symbol. Run by ctest (make check) as `layers`.
#
# The layers, lowest first (docs/design/layers.md):
#   core, value, proto  <-  net  <-  node  <-  area (and cluster, store, script, admin)
#   <-  app (the program: assembles the node with its modules)
# A part may include its own headers and those of the parts listed for it below;
# a lower part reaches a higher one only through what the higher one registers.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
    [core]=""
    [value]="core"
    [proto]="core"
    [net]="core proto"
    [node]="core value proto net"
    [area]="core value proto net node"
    [cluster]="core value proto net node"
    [store]="core value proto net node"
    [script]="core value proto net node"
    [admin]="core value proto net node"
    [app]="core value proto net node area cluster store script admin"
)

fail=0
for dir in src/*/; do
    part=$(basename "$dir")
    if [[ -z ${allowed[$part]+x} ]]; then
        echo "layers: src/$part is not a known part; add it to scripts/check-layers.sh" >&2
        fail=1
        continue
    fi
    while IFS=: read -r file line include; do
        target=$(sed -E 's|^#include "\.\./([a-z]+)/.*|\1|' <<<"$include")
        if [[ " ${allowed[$part]} " != *" $target "* ]]; then
            echo "layers: $file:$line: src/$part must not include src/$target ($include)" >&2
            fail=1
        fi
    done < <(grep -Hn '^#include "\.\./' "$dir"*.[ch] 2>/dev/null || true)
done

# Public headers: what game code and client code see. No internal names (atoll__*),
# no include of a file under src/ (comment lines may mention them).
for h in include/atoll/*.h include/atollc/*.h; do
    if grep -Hn 'atoll__\|#include "\.\.' "$h" | grep -Ev '^[^:]+:[0-9]+:\s*(/\*|\*|//)' >&2; then
        echo "layers: $h names an internal symbol or file" >&2
        fail=1
    fi
done

if [[ $fail -ne 0 ]]; then
    echo "layers: FAILED" >&2
    exit 1
fi
echo "layers: src/ includes follow the layers; public headers are clean"

#!/usr/bin/env bash
# check-doc-links.sh -- fails when a document of the project points outside it or at
# nothing: every relative link of README.md, docs/ and the READMEs of examples/, tests/
# and bench/ must name a file or directory inside the repository that exists, and no
# document names a directory of one machine (/home/..., /root/..., /tmp/...). Run by
# ctest (make check) as `doc_links`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

bad=0
docs=$(find README.md docs examples tests bench -name node_modules -prune -o -name '*.md' -print | sort)
for doc in $docs; do
    dir=$(dirname "$doc")
    # [text](target): the target up to ')' or a space; web links and anchors are not files.
    while IFS= read -r target; do
        case "$target" in
            '' | \#* | *://* | mailto:*) continue ;;
        esac
        path=${target%%#*}
        case "$path" in
            /*) echo "$doc: absolute link $target"; bad=1; continue ;;
        esac
        if [ ! -e "$dir/$path" ]; then
            echo "$doc: link to a missing file: $target"
            bad=1
            continue
        fi
        full=$(cd "$(dirname "$dir/$path")" && pwd -P)/$(basename "$path")
        case "$full" in
            "$root"/*) ;;
            *) echo "$doc: link outside the repository: $target"; bad=1 ;;
        esac
    done < <(grep -oE '\]\([^) ]*\)' "$doc" | sed -E 's/^\]\((.*)\)$/\1/')
    if grep -nE '(^|[ `(])/(home|root|tmp|Users)/' "$doc"; then
        echo "$doc: names a directory of one machine (above)"
        bad=1
    fi
done
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "doc links: $(echo "$docs" | wc -l) documents, every link inside the repository"

#!/usr/bin/env bash
# Fails when Go files are not gofmt-formatted, or when generated code or manifests differ from what
# `make generate manifests` produces from the sources in the working tree. Leaves the tree as it
# found it.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted (run gofmt -w on them):" >&2
  echo "$unformatted" >&2
  exit 1
fi
paths=(apis config internal/apiserver/openapi)
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
for p in "${paths[@]}"; do mkdir -p "$snapshot/$(dirname "$p")"; cp -a "$p" "$snapshot/$(dirname "$p")/"; done
make -s generate manifests >/dev/null
drift=0
for p in "${paths[@]}"; do
  if ! diff -r "$snapshot/$p" "$p" >"$snapshot/diff.txt" 2>&1; then
    drift=1
    echo "out of date: $p" >&2
    head -40 "$snapshot/diff.txt" >&2
    rm -rf "$p" && cp -a "$snapshot/$p" "$p"
  fi
done
if [ "$drift" = 1 ]; then
  echo "Generated files are out of date; run 'make generate manifests' and commit the result." >&2
  exit 1
fi
echo "generated code and manifests are up to date"

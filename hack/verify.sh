#!/usr/bin/env bash
# Fails when generated code or manifests differ from what `make generate manifests` produces.
set -euo pipefail
cd "$(dirname "$0")/.."
make generate manifests >/dev/null
if ! git diff --quiet -- apis config internal/apiserver/openapi || [ -n "$(git ls-files --others --exclude-standard -- apis config internal/apiserver/openapi)" ]; then
  echo "Generated files are out of date; run 'make generate manifests' and commit the result:" >&2
  git status --short -- apis config internal/apiserver/openapi >&2
  git diff --stat -- apis config internal/apiserver/openapi >&2
  exit 1
fi
echo "generated code and manifests are up to date"

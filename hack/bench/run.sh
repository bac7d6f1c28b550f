#!/usr/bin/env bash
# Runs Drover's benchmarks (the Go programs in hack/bench/*/) against ./bin/droverd and prints their
# figures as markdown. Build droverd first: make build (make bench does both).
#
#   hack/bench/run.sh                             every benchmark, controlplane first
#   hack/bench/run.sh controlplane placement      the named ones
#   hack/bench/run.sh controlplane --tasks 2000   the named ones, with these flags
#
# Each benchmark also runs alone: go run ./hack/bench/controlplane --droverd ./bin/droverd [flags].
# DROVERD overrides the binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

droverd=${DROVERD:-./bin/droverd}
if [[ ! -x "$droverd" ]]; then
	echo "run.sh: $droverd not found; run make build first" >&2
	exit 1
fi

all=(controlplane)
for dir in hack/bench/*/; do
	name=$(basename "$dir")
	if [[ "$name" != controlplane ]] && grep -qs '^package main' "$dir"main.go; then
		all+=("$name")
	fi
done

selected=()
while [[ $# -gt 0 && "$1" != -* ]]; do
	if [[ ! -f "hack/bench/$1/main.go" ]]; then
		echo "run.sh: no benchmark $1 (have: ${all[*]})" >&2
		exit 2
	fi
	selected+=("$1")
	shift
done
if [[ ${#selected[@]} -eq 0 ]]; then
	if [[ $# -gt 0 ]]; then
		echo "run.sh: name the benchmarks the flags are for (have: ${all[*]})" >&2
		exit 2
	fi
	selected=("${all[@]}")
fi

for name in "${selected[@]}"; do
	echo "run.sh: $name" >&2
	go run "./hack/bench/$name" --droverd "$droverd" "$@"
	echo
done

#!/usr/bin/env bash
# Runs Drover's benchmarks (the Go programs in hack/bench/*/) against ./bin/droverd and prints their
# figures as markdown. Build droverd first: make build (make bench does both).
#
#   hack/bench/run.sh                             the whole suite (below), controlplane first
#   hack/bench/run.sh controlplane placement      the named ones, with their defaults
#   hack/bench/run.sh controlplane --tasks 2000   the named ones, with these flags
#
# The whole suite runs every benchmark with its defaults, and the scale benchmark a second time at
# 5,000 instances connecting at 10 a second: their heartbeat load idle, then 1% of them dying
# while they run 500 service tasks. (50,000 tasks on 5,000 instances do not start on a 2-core
# machine that also runs the 5,000 agents; docs/benchmarks.md has the single runs that tried.)
# A benchmark that fails does not stop the others; the script exits non-zero at the end if any
# failed.
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

# The whole suite: one benchmark and its flags per line.
suite=("${all[@]}")
suite+=("scale --instances 5000 --start-rate 10 --scenarios heartbeat,failure --service-tasks 0.1")

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
	selected=("${suite[@]}")
fi

failed=()
for entry in "${selected[@]}"; do
	read -r -a words <<<"$entry"
	echo "run.sh: ${words[*]} $*" >&2
	if ! go run "./hack/bench/${words[0]}" --droverd "$droverd" "${words[@]:1}" "$@"; then
		failed+=("${words[*]}")
	fi
	echo
done
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "run.sh: ${#failed[@]} benchmark(s) failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi

#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz/fuzz_*.c, built by the Makefile into
# $FUZZ_BUILD/bin) and prints one TAP line per target. Used two ways:
#   make fuzz FUZZ_SECONDS=600   each target for that long, its corpus kept
#                                under $FUZZ_BUILD/corpus for the next run;
#   make check                   each target replays its regression inputs
#                                (tests/fuzz/regress/<target>/, every input
#                                that once failed) and then fuzzes for
#                                FUZZ_CHECK_SECONDS from the seeds.
# Two targets run at a time (-j2 machine). Any crash, leak, sanitizer report
# or timeout fails the target; its input is left in $FUZZ_BUILD/artifacts.
# Usage: tools/fuzz.sh SECONDS TARGET...
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=$1
shift
build=${FUZZ_BUILD:-build/fuzz}
jobs=${FUZZ_JOBS:-2}
mkdir -p "$build/artifacts" "$build/logs"

run_one() {
	local t=$1 seconds=$2 build=$3
	local bin=$build/bin/fuzz_$t log=$build/logs/$t.log
	local corpus=$build/corpus/$t regress=tests/fuzz/regress/$t
	mkdir -p "$corpus" "$build/artifacts/$t"
	local opts=(-artifact_prefix="$build/artifacts/$t/" -timeout=10 -rss_limit_mb=2048
		-max_len=8192 -print_final_stats=1)
	# Regressions first: each input once, a failure is a failure now.
	if [ -d "$regress" ] && [ -n "$(ls -A "$regress")" ]; then
		if ! "$bin" "${opts[@]}" "$regress"/* >"$log.regress" 2>&1; then
			echo "not ok - fuzz_$t replays its regression inputs"
			tail -30 "$log.regress" | sed 's/^/#   /'
			return 1
		fi
	fi
	local TIMEFORMAT='%U %S'
	if { time "$bin" "${opts[@]}" -dict="$build/inputs/$t.dict" -max_total_time="$seconds" \
		"$corpus" "$build/inputs/seeds/$t" >"$log" 2>&1; } 2>"$log.cpu"; then
		local runs cov ft cpu
		cpu=$(awk '{ printf "%.0f", $1 + $2 }' "$log.cpu")
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
		ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
		echo "ok - fuzz_$t finds nothing in ${seconds} s (${runs:-?} runs, ${cpu:-?} s CPU, cov ${cov:-?}, ft ${ft:-?})"
	else
		echo "not ok - fuzz_$t finds nothing in ${seconds} s"
		grep -E '^(==[0-9]+==|SUMMARY|.*runtime error|.*property failed|artifact_prefix|Test unit written)' "$log" |
			head -30 | sed 's/^/#   /'
		return 1
	fi
}
export -f run_one

printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1" "$2" "$3"' _ {} "$seconds" "$build"

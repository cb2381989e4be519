#!/usr/bin/env bash
# Checks the metrics library's output with Prometheus's own parser and
# linter: renders a registry that uses every kind of metric (the program
# given as $1, tests/metrics/metrics_sample.c) and pipes it to
# `promtool check metrics`, which exits 0 when clean, 1 on a parse error
# and 3 on lint advice. Lint advice counts as a failure: the library refuses
# the names promtool would lint, so advice means a bug. A malformed sample
# must be refused and a lint-worthy one linted, so a promtool that accepted
# anything could not pass.
# Prints TAP lines; run by `make check`.
set -uo pipefail
sample=${1:?usage: check_promtool.sh path/to/metrics_sample}
status=0

if ! command -v promtool >/dev/null; then
	echo "not ok - promtool is installed (Debian package prometheus)"
	exit 1
fi

if out=$(printf 'shop_bad{a="unterminated} 1\n' | promtool check metrics 2>&1); then
	echo "not ok - promtool refuses a malformed exposition"
	status=1
else
	echo "ok - promtool refuses a malformed exposition"
fi

printf '# HELP shop_x Lint bait.\n# TYPE shop_x counter\nshop_x 1\n' | promtool check metrics >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 3 ]; then
	echo "ok - promtool lints a counter without _total (exit 3)"
else
	echo "not ok - promtool lints a counter without _total (exit $rc, want 3)"
	status=1
fi

if ! text=$("$sample"); then
	echo "not ok - the sample registry renders"
	exit 1
fi
out=$(printf '%s\n' "$text" | promtool check metrics 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	echo "ok - promtool check metrics accepts the rendered registry without lint advice"
else
	echo "not ok - promtool check metrics accepts the rendered registry without lint advice (exit $rc)"
	printf '%s\n' "$out" | sed 's/^/#   /'
	status=1
fi
exit $status

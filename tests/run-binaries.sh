#!/usr/bin/env bash
# Runs cmocka test binaries with TAP output. A binary that exits non-zero
# without reporting a failing case (a crash, a sanitizer abort) is reported
# as a failing case of its own, so nothing broken is ever counted as passed.
set -uo pipefail
status=0
for bin in "$@"; do
	echo "# $bin"
	out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$bin" 2>&1)
	rc=$?
	printf '%s\n' "$out"
	if [ "$rc" -ne 0 ]; then
		status=1
		grep -q '^not ok' <<<"$out" || echo "not ok - $(basename "$bin") exited with status $rc"
	fi
done
exit $status

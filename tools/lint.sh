#!/usr/bin/env bash
# Static checks, run inside the dev image (`make lint`, and by `make check`):
#   1. a grep that bans unsafe libc calls from project C code;
#   2. cppcheck over libs/, services/ and tools/ (warnings are errors).
# Prints one TAP line per check.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
files=$(find libs services tools loadtest -name '*.c' -o -name '*.h' | sort)

banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|tmpnam)[[:space:]]*\('
if hits=$(grep -nE "$banned" $files); then
	echo "not ok - no banned libc calls"
	echo "$hits" | sed 's/^/#   /'
	status=1
else
	echo "ok - no banned libc calls (strcpy, strcat, sprintf, vsprintf, gets, strtok, atoi, atol, tmpnam)"
fi

gen=${BUILD:-build}/gen
if out=$(cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	--inline-suppr --suppress=missingIncludeSystem --suppress=normalCheckLevelMaxBranches -D_GNU_SOURCE -Ilibs -I"$gen" \
	libs services tools loadtest 2>&1); then
	echo "ok - cppcheck finds no warnings"
else
	echo "not ok - cppcheck finds no warnings"
	echo "$out" | sed 's/^/#   /'
	status=1
fi
exit $status

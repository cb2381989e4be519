#!/usr/bin/env bash
# Static checks, run inside the dev image (`make lint`, and by `make check`):
#   1. a grep that bans unsafe libc calls from project C code;
#   2. a grep that bans closing nats.c's library (nats_Close*) anywhere;
#   3. cppcheck over libs/, services/, tools/, loadtest/ and the generated
#      C in $BUILD/gen (warnings are errors);
#   4. clang-format: every C file is formatted as .clang-format says;
#   5. no subject literal in the services' C (subjects come from the index);
#   6. infra/nats/auth.conf is what tools/natsauth.py generates from the index.
# The generated files are C the compiler sees like any other, so the grep and
# cppcheck see them too (make generates them before it calls this).
# Prints one TAP line per check.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
gen=${BUILD:-build}/gen
if ! [ -f "$gen/contracts_gen.c" ]; then
	echo "not ok - the generated C exists ($gen: run make first)"
	exit 1
fi
sources=$(find libs services tools loadtest tests -name '*.c' -o -name '*.h' | sort)
files="$(find libs services tools loadtest -name '*.c' -o -name '*.h' | sort) $(find "$gen" -name '*.c' -o -name '*.h' | sort)"

banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|tmpnam)[[:space:]]*\('
if hits=$(grep -nE "$banned" $files); then
	echo "not ok - no banned libc calls"
	echo "$hits" | sed 's/^/#   /'
	status=1
else
	echo "ok - no banned libc calls (strcpy, strcat, sprintf, vsprintf, gets, strtok, atoi, atol, tmpnam)"
fi

# nats.c 3.10.1 loses (and LeakSanitizer reports) whatever a dispatcher
# thread frees after nats_Close stopped the library's collector thread; a
# process exits with the library open (see group_teardown in test_bus.c).
nats_close='\bnats_Close(AndWait)?[[:space:]]*\('
if hits=$(grep -nE "$nats_close" $files $(find tests -name '*.c' -o -name '*.h' | sort)); then
	echo "not ok - nats.c's library is never closed"
	echo "$hits" | sed 's/^/#   /'
	status=1
else
	echo "ok - nats.c's library is never closed (nats_Close, nats_CloseAndWait)"
fi

if out=$(cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	--inline-suppr --suppress=missingIncludeSystem --suppress=normalCheckLevelMaxBranches -D_GNU_SOURCE -Ilibs -I"$gen" \
	libs services tools loadtest "$gen" 2>&1); then
	echo "ok - cppcheck finds no warnings"
else
	echo "not ok - cppcheck finds no warnings"
	echo "$out" | sed 's/^/#   /'
	status=1
fi
# Subjects come from the contracts index through the generated tables
# (ct_messages, ct_consumers), never from a literal: a literal could name a
# subject the index does not have, which no contract check would see.
subject_re='"(gateway|cards|orders|inventory|payments|shipping|notifications)\.(event|command)\.'
if hits=$(grep -nE "$subject_re" $(find libs services -name '*.c' -o -name '*.h' | sort)); then
	echo "not ok - no subject literals in the services' C (they come from the contracts index)"
	echo "$hits" | sed 's/^/#   /'
	status=1
else
	echo "ok - no subject literals in the services' C (they come from the contracts index)"
fi
# The NATS users and permissions are generated from the contracts index
# and checked in (infra/nats/auth.conf): stale means the index changed
# without them.
if ! out=$(python3 tools/natsauth.py check contracts infra/nats/auth.conf); then
	status=1
fi
echo "$out"
# Project sources only: the generated files follow the generator's layout.
if ! command -v clang-format >/dev/null; then
	echo "not ok - clang-format is installed (the dev image has it)"
	status=1
elif out=$(clang-format --dry-run --Werror $sources 2>&1); then
	echo "ok - clang-format finds every C file formatted (.clang-format)"
else
	echo "not ok - clang-format finds every C file formatted (.clang-format)"
	echo "$out" | grep -E '^[^ ].*: (error|warning):' | cut -d: -f1 | sort -u | sed 's/^/#   needs clang-format -i: /'
	status=1
fi
exit $status

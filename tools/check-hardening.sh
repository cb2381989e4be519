#!/usr/bin/env bash
# Checks that ELF binaries carry the hardening the Makefile asks for (run by
# `make hardening`, and so by `make check`, on an unsanitized build):
#   - PIE (ELF type DYN), so ASLR moves the code too;
#   - full RELRO: a GNU_RELRO segment and BIND_NOW (or FLAGS_1 NOW), so the
#     GOT is read-only once the program runs;
#   - stack protector: the binary calls __stack_chk_fail;
#   - FORTIFY: it calls at least one checked libc variant (__*_chk);
#   - on x86-64, CET: the GNU property note marks both IBT and SHSTK.
# The linker keeps a CET mark only when every object it links has it, the C
# library's start files (Scrt1.o, crti.o) included. Debian's glibc ships
# those unmarked, so no executable built here can carry the marks; that
# line is then a TAP comment naming the start file, and what can be checked is
# checked instead: every object of ours, given as .a or .o arguments, must
# carry both marks (it was built with -fcf-protection).
# -fstack-clash-protection leaves no mark in the ELF file; the Makefile is
# its only witness. Prints one TAP line per binary (or archive) and
# property; exits non-zero when any check fails.
#
# usage: tools/check-hardening.sh BINARY... [ARCHIVE.a|OBJECT.o]...
set -uo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 BINARY..." >&2
	exit 2
fi
if ! command -v readelf >/dev/null; then
	echo "not ok - readelf is available (binutils)"
	exit 1
fi

# The first start file the toolchain links that lacks the CET marks, if any.
cc=${CC:-cc}
unmarked_start=
for f in Scrt1.o crti.o crtn.o; do
	path=$("$cc" -print-file-name="$f" 2>/dev/null) || continue
	[ -f "$path" ] || continue
	if ! readelf -nW "$path" | grep -qE 'x86 feature:.*IBT.*SHSTK'; then
		unmarked_start=$f
		break
	fi
done

status=0
check() { # check NAME CONDITION-EXIT-STATUS
	if [ "$2" -eq 0 ]; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		status=1
	fi
}

# Every member of an archive (or the object) has both CET marks.
check_objects() {
	local name missing
	name=$(basename "$1")
	case $("$cc" -dumpmachine) in
	x86_64* | i?86*) ;;
	*) return ;; # CET is x86 only
	esac
	# readelf -n prints "File: lib.a(member.o)" before each member's notes.
	missing=$(readelf -nW "$1" | awk '
		/^File: / { if (f != "" && !ok) print f; f = $2; ok = 0 }
		/x86 feature:.*IBT.*SHSTK/ { ok = 1 }
		END { if (f != "" && !ok) print f }')
	if [ -z "$(readelf -nW "$1" | grep '^File: ')" ]; then # a lone object
		readelf -nW "$1" | grep -qE 'x86 feature:.*IBT.*SHSTK' || missing=$1
	fi
	check "$name: every object has CET marks (IBT and SHSTK)${missing:+; not: $(echo $missing)}" \
		"$([ -z "$missing" ]; echo $?)"
}

for bin in "$@"; do
	name=$(basename "$bin")
	case $bin in
	*.a | *.o)
		check_objects "$bin"
		continue
		;;
	esac
	if ! header=$(readelf -hW "$bin" 2>&1); then
		check "$name: is an ELF file ($header)" 1
		continue
	fi
	dynamic=$(readelf -dW "$bin")
	segments=$(readelf -lW "$bin")
	symbols=$(readelf -sW --dyn-syms "$bin")

	grep -qE '^[[:space:]]*Type:[[:space:]]+DYN' <<<"$header"
	check "$name: position independent (PIE)" $?

	grep -qw GNU_RELRO <<<"$segments"
	relro=$?
	grep -qE '\(BIND_NOW\)|\(FLAGS_1\).*\bNOW\b|\(FLAGS\).*\bBIND_NOW\b' <<<"$dynamic"
	now=$?
	check "$name: full RELRO (GNU_RELRO and BIND_NOW)" $((relro | now))

	grep -qw __stack_chk_fail <<<"$symbols"
	check "$name: stack protector (__stack_chk_fail)" $?

	grep -qE '\b__[a-z0-9_]+_chk(@|\b)' <<<"$(grep -vw __stack_chk_fail <<<"$symbols")"
	check "$name: FORTIFY_SOURCE (__*_chk calls)" $?

	if grep -qE '^[[:space:]]*Machine:.*X86-64' <<<"$header"; then
		notes=$(readelf -nW "$bin")
		if grep -qE 'x86 feature:.*IBT' <<<"$notes" &&
			grep -qE 'x86 feature:.*SHSTK' <<<"$notes"; then
			check "$name: CET marks (IBT and SHSTK)" 0
		elif [ -n "$unmarked_start" ]; then
			# Not a case: nothing here can pass it (make test fails on skips).
			echo "# $name: no CET marks: the C library's $unmarked_start has none, so no executable can; our objects are checked instead"
		else
			check "$name: CET marks (IBT and SHSTK)" 1
		fi
	fi
done
exit $status

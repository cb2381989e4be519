# tap.sh - TAP lines for the system test scripts (sourced by cases.sh,
# recovery.sh and the others). The sourcing script sets n (cases so far) and failed.
pass() { n=$((n + 1)); echo "ok $n - $1"; }
# fail NAME [LINE...]: the case, then each LINE as a TAP comment.
fail() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do echo "#   $line"; done
}

# audit_case NAME ATTEMPTS DEAD_BEFORE: one case, `shopctl audit` passing.
# An order may be between two steps at any moment, so a violation gets
# ATTEMPTS looks, a second apart, before it counts. Dead letters that were
# there before (DEAD_BEFORE > 0) belong to the cases that injected them, so
# they are allowed then. The sourcing script sets compose.
audit_case() {
	local name=$1 attempts=$2 dead_before=$3 out= lines=()
	local args=(audit --details 20)
	[ "$dead_before" = 0 ] || args+=(--allow-dead-letters)
	for _ in $(seq 1 "$attempts"); do
		out=$("${compose[@]}" run --rm --no-deps -T shopctl "${args[@]}" 2>&1) && break
		sleep 1
	done
	if grep -qx PASSED <<<"$out"; then
		pass "$name"
	else
		mapfile -t lines <<<"$out"
		fail "$name" "${lines[@]}"
	fi
}

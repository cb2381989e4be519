# tap.sh - TAP lines for the system test scripts (sourced by cases.sh and
# recovery.sh). The sourcing script sets n (cases so far) and failed.
pass() { n=$((n + 1)); echo "ok $n - $1"; }
# fail NAME [LINE...]: the case, then each LINE as a TAP comment.
fail() {
	n=$((n + 1)); failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do echo "#   $line"; done
}

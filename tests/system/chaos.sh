#!/usr/bin/env bash
# The chaos case (issue 7, proof 1), run last by tests/system/run.sh on the
# host: `make chaos` (tools/chaos.sh) for CHAOS_TEST_DURATION seconds at
# CHAOS_TEST_RATE orders a second, SIGKILLing one container every
# CHAOS_TEST_INTERVAL seconds among all but the console (every service, the
# gateway included, every NATS node and PostgreSQL), the victims drawn from
# a fixed seed so a failure can be replayed. It passes when the tool says
# every order accepted with 202 completed and `shopctl audit` passed, and
# every container but the console was killed at least once (the tool deals
# them like cards: each dies once before any dies twice). Numbering
# continues from $1.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
. tests/system/tap.sh

CHAOS_TEST_DURATION=60
CHAOS_TEST_RATE=10
CHAOS_TEST_INTERVAL=5
CHAOS_TEST_SEED=7
CHAOS_TEST_DRAIN=180

# The victims the tool should have: every running service of the
# deployment but the console (ten with three NATS nodes, so the minute's
# eleven or twelve kills reach each of them).
mapfile -t want < <(docker compose -f docker-compose.yml ps --services --status running | grep -vx console | sort)

out=$(mktemp)
CHAOS_DURATION=$CHAOS_TEST_DURATION CHAOS_RATE=$CHAOS_TEST_RATE \
	CHAOS_INTERVAL=$CHAOS_TEST_INTERVAL CHAOS_SEED=$CHAOS_TEST_SEED \
	CHAOS_DRAIN=$CHAOS_TEST_DRAIN tools/chaos.sh >"$out" 2>&1
rc=$?
# What it did, as TAP comments: the kills and the last progress lines.
grep -E '^# [0-9]+s: SIGKILL' "$out" | sed 's/^/#   /'
kills=$(grep -cE '^# [0-9]+s: SIGKILL' "$out")
spared=$(comm -23 <(printf '%s\n' "${want[@]}") \
	<(sed -n 's/^# [0-9]*s: SIGKILL \([^ ]*\).*/\1/p' "$out" | sort -u) | tr '\n' ' ')
summary=$(grep -E '^# chaos: ' "$out" | tail -1)
if [ "$rc" -eq 0 ] && [ "${#want[@]}" -gt 0 ] && [ -z "$spared" ] &&
	grep -q 'all completed, audit passed' <<<"$summary"; then
	pass "chaos: $kills SIGKILLs under load reach all ${#want[@]} containers but the console (seed $CHAOS_TEST_SEED); ${summary#\# chaos: }"
else
	mapfile -t tail_lines < <(tail -30 "$out")
	fail "chaos: every accepted order completes and shopctl audit passes after $CHAOS_TEST_DURATION s of SIGKILLs" \
		"exit status $rc, $kills kills; never killed: ${spared:-none}" "${tail_lines[@]}"
fi
rm -f "$out"
echo "# chaos cases: $((n - ${1:-0} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

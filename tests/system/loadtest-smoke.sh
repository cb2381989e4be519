#!/usr/bin/env bash
# A short, bounded run of the load generator against the system tests'
# deployment (project $COMPOSE_PROJECT_NAME, already up): 10 s at 50 orders/s,
# then at most 60 s for every accepted order to reach SHIPPED or CANCELLED.
# Prints two TAP lines, numbered on from $1 (the cases run before). Runs
# shop-loadtest from the shop-build image that tests/system/run.sh builds.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
. tests/system/tap.sh
SMOKE_RATE=50
SMOKE_DURATION_S=10
SMOKE_DRAIN_S=60

# The generator watches the order events on NATS as the admin user.
[ -n "${SHOP_NATS_PASSWORD_ADMIN:-}" ] || eval "$(tools/nats-env.sh)"
out=$(docker run --rm --network "${COMPOSE_PROJECT_NAME:?}_default" \
	-e SHOP_NATS_USER=admin -e SHOP_NATS_PASSWORD="$SHOP_NATS_PASSWORD_ADMIN" "shop-build:${SHOP_TAG:-latest}" \
	/src/build/bin/shop-loadtest --rate $SMOKE_RATE --duration $SMOKE_DURATION_S \
	--drain $SMOKE_DRAIN_S 2>/dev/null)
result=$(grep '^result:' <<<"$out")
field() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$result"; }
errors=$(field errors) accepted=$(field accepted) never=$(field never_terminal)
dropped=$(field events_dropped)
summary() { grep -E '^(offered|terminal|  accept|  POST|errors|outcomes)' <<<"$out"; }

if [ -n "$result" ] && [ "$errors" = 0 ] && [ "${accepted:-0}" -gt 0 ]; then
	pass "load smoke: zero errors"
else
	mapfile -t lines < <(summary)
	fail "load smoke: zero errors" "${result:-the generator printed no result}" "${lines[@]}"
fi
if [ -n "$result" ] && [ "$never" = 0 ] && [ "$dropped" = 0 ] && [ "${accepted:-0}" -gt 0 ]; then
	pass "load smoke: every accepted order reached a terminal state"
else
	mapfile -t lines < <(summary)
	fail "load smoke: every accepted order reached a terminal state" \
		"${result:-the generator printed no result}" "${lines[@]}"
fi
[ "$failed" -eq 0 ]

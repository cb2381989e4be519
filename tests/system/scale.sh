#!/usr/bin/env bash
# The registry's scale case, run by tests/system/run.sh on the host (the
# test runner container has no compose): payments scaled to two replicas
# must show as two payments instances in `shopctl services`, both ready, each
# with its own instance id; then it is scaled back to one, and the extra
# instance leaves the registry. Numbering continues from $1.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
compose=(docker compose -f docker-compose.yml)
. tests/system/tap.sh
# Polls of the registry while a replica starts or stops (one per second).
SCALE_POLLS=60

# payments_count N: polls until the registry lists N payments instances,
# all ready, with N distinct ids; $listed keeps the last listing. shopctl
# and jq run in the test runner image (the host needs only Docker).
payments_count() {
	for _ in $(seq 1 "$SCALE_POLLS"); do
		listed=$(docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" \
			-e SHOP_NATS_URL=nats://nats:4222 -e N="$1" "shop-build:${SHOP_TAG:-latest}" bash -c \
			'/src/build/bin/shopctl services --json 2>/dev/null | jq -c "[.instances[] | select(.service == \"payments\")]
			 | {ok: (length == (env.N | tonumber) and all(.status == \"ready\") and ([.[].id] | unique | length) == length), payments: .}"')
		case $listed in '{"ok":true'*) return 0 ;; esac
		sleep 1
	done
	return 1
}

if "${compose[@]}" up -d --wait --wait-timeout 120 --no-recreate --scale payments=2 payments \
	>/dev/null 2>&1 && payments_count 2; then
	pass "with payments scaled to two replicas shopctl services lists two ready payments instances"
else
	fail "with payments scaled to two replicas shopctl services lists two ready payments instances" \
		"listed: ${listed:-nothing}"
fi
if "${compose[@]}" up -d --wait --wait-timeout 120 --no-recreate --scale payments=1 payments \
	>/dev/null 2>&1 && payments_count 1; then
	pass "scaled back to one replica, the stopped payments instance leaves the registry"
else
	fail "scaled back to one replica, the stopped payments instance leaves the registry" \
		"listed: ${listed:-nothing}"
fi
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The registry's scale case, run by tests/system/run.sh on the host (the
# test runner container has no compose): payments scaled to two replicas
# must show as two payments instances in `shopctl services`, both ready, each
# with its own instance id, and on the console's overview (its page) too;
# then it is scaled back to one, and the extra instance leaves the registry.
# Numbering continues from $1.
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
			-e SHOP_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 -e N="$1" "shop-build:${SHOP_TAG:-latest}" bash -c \
			'/src/build/bin/shopctl services --json 2>/dev/null | jq -c "[.instances[] | select(.service == \"payments\")]
			 | {ok: (length == (env.N | tonumber) and all(.status == \"ready\") and ([.[].id] | unique | length) == length), payments: .}"')
		case $listed in '{"ok":true'*) return 0 ;; esac
		sleep 1
	done
	return 1
}

# console_count N: polls until the console's overview (what its page draws)
# shows N ready payments instances: the registry's, found on its own.
console_count() {
	for _ in $(seq 1 "$SCALE_POLLS"); do
		drawn=$(docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" "shop-build:${SHOP_TAG:-latest}" \
			bash -c 'curl -s http://console:8080/api/overview | jq -c "[.services[] | select(.service == \"payments\") | .instances[] | select(.state == \"ready\") | .id]"')
		[ "$(echo "$drawn" | jq length 2>/dev/null)" = "$1" ] && return 0
		sleep 1
	done
	return 1
}

# scale_case N NAME: scales payments to N replicas, then expects N listed.
scale_case() {
	if "${compose[@]}" up -d --wait --wait-timeout 120 --no-recreate --scale "payments=$1" payments \
		>/dev/null 2>&1 && payments_count "$1" && console_count "$1"; then
		pass "$2"
	else
		fail "$2" "listed: ${listed:-nothing}" "on the console's overview: ${drawn:-nothing}"
	fi
}

scale_case 2 "with payments scaled to two replicas shopctl services and the console's overview list two ready payments instances"
scale_case 1 "scaled back to one replica, the stopped payments instance leaves the registry and the console's ready ones"
[ "$failed" -eq 0 ]

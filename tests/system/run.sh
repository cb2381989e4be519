#!/usr/bin/env bash
# System tests: bring the real compose deployment up (as project "shoptest",
# publishing no host ports), run tests/system/cases.sh in a container on its
# network, and take everything down again, volumes included.
set -uo pipefail
cd "$(dirname "$0")/../.."

# Another project name (COMPOSE_PROJECT_NAME) lets two checkouts test at once.
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-shoptest}
# Ephemeral loopback ports: never collide with a user's running stack.
export SHOP_HTTP_PUBLISH=127.0.0.1:0 SHOP_CONSOLE_PUBLISH=127.0.0.1:0 SHOP_NATS_MONITOR_PUBLISH=127.0.0.1:0
# The cancel test has shipping read OrderPaid and the cancel request back to
# back (it pauses shipping until both are on the stream): the request must
# come well within this delay of the first.
export SHOP_DISPATCH_DELAY_MS=${SHOP_DISPATCH_DELAY_MS:-4000}
export SHOP_ORDER_DEADLINE_MS=${SHOP_ORDER_DEADLINE_MS:-60000}
compose=(docker compose -f docker-compose.yml)
# The NATS passwords compose gives the nodes (SHOP_NATS_PASSWORD_<USER>):
# the cases' own clients connect as admin, the JavaScript ones as observer,
# the permission cases as each user (docs/security.md).
eval "$(tools/nats-env.sh)"
logs=build/system-logs
mkdir -p "$logs"
# What the cases publish themselves (cases.sh writes it, the bus check in
# contracts.sh reads it): a run's own list, never an older run's.
rm -f "$logs/injected"

down() { "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1; }
down
echo "# building images and starting the deployment"
if ! "${compose[@]}" build -q >"$logs/build.log" 2>&1; then
	tail -40 "$logs/build.log"
	echo "not ok - compose images build"
	exit 1
fi
docker build -q -t "shop-build:${SHOP_TAG:-latest}" --target build -f infra/docker/Dockerfile . >/dev/null || {
	echo "not ok - test runner image builds"; exit 1; }
if ! "${compose[@]}" up -d --wait --wait-timeout 180 >"$logs/up.log" 2>&1; then
	cat "$logs/up.log"
	"${compose[@]}" ps
	"${compose[@]}" logs --no-color --tail 50
	echo "not ok - compose deployment becomes healthy"
	down
	exit 1
fi
echo "ok - compose deployment becomes healthy"
# The C services of the compose file (those whose command is a shop-
# program): the registry case expects each of them to answer $SRV.PING.
SHOP_SERVICES=$("${compose[@]}" config --format json |
	docker run --rm -i "shop-build:${SHOP_TAG:-latest}" jq -r '[.services | to_entries[] | select((.value.command // [])[0] // "" | startswith("shop-")) | .key] | join(" ")')
export SHOP_SERVICES

docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" \
	-v "$PWD/tests/system:/tests:ro" -v "$PWD/$logs:/logs" -e SHOP_INJECTED=/logs/injected \
	-v /var/run/docker.sock:/var/run/docker.sock -e COMPOSE_PROJECT_NAME \
	-e GATEWAY=http://gateway:8080 -e CONSOLE=http://console:8080 -e SHOP_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 -e NATS_MONITOR=http://nats-1:8222 \
	-e SHOP_NATS_USER=admin -e SHOP_NATS_PASSWORD="$SHOP_NATS_PASSWORD_ADMIN" \
	-e SHOP_DISPATCH_DELAY_MS -e SHOP_SERVICES \
	"shop-build:${SHOP_TAG:-latest}" bash /tests/cases.sh | tee "$logs/cases.tap"
rc=${PIPESTATUS[0]}
# A short open-model load (loadtest/): zero errors, every order terminal.
tests/system/loadtest-smoke.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
tests/system/contracts.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"; [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# Then the cases that kill containers, numbered on from the ones above:
# NATS nodes one at a time and all together under load (before recovery.sh,
# whose audit then covers them too), then services and the database.
tests/system/cluster.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
tests/system/recovery.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# Scale-out: payments to three replicas, orders and inventory to two, under
# a bounded load; every replica works, the audit passes; then back to one.
tests/system/scale.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# Least privilege and the front door (issue 7): database roles, one
# instance per SQLite file, slowloris.
tests/system/guard.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# The durability modes' settings: JetStream's fsync as shipped and strict.
tests/system/durability.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# The console page in headless Chromium: an order followed live, a service
# stopped and started (screenshots in build/screenshots).
tests/system/browser.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# Last, as it leaves every container restarted: a minute of SIGKILLs among
# all of them under load, then every order completed and the audit.
tests/system/chaos.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
# NATS least privilege, after everything else: each user's permissions
# (generated from the contracts index), and no refusal of any client in the
# whole run above.
tests/system/authz.sh "$(grep -cE '^(not )?ok ' "$logs/cases.tap")" | tee -a "$logs/cases.tap"
[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
"${compose[@]}" logs --no-color >"$logs/services.log" 2>&1
if [ "$rc" -ne 0 ]; then
	echo "# service logs (last lines; all in $logs/services.log):"
	tail -60 "$logs/services.log" | sed 's/^/# /'
fi
down
exit $rc

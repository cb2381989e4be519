#!/usr/bin/env bash
# Recovery cases, run by tests/system/run.sh on the host against the running
# deployment: kill a service, the broker, the database; keep placing orders;
# start it again; every order accepted meanwhile must end SHIPPED, charged
# once, shipped once. Numbering continues from $1 (the cases run before).
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
compose=(docker compose -f docker-compose.yml)
# Orders per case: enough to have several in flight at the moment of the kill.
RECOVERY_ORDERS=6

client() {
	docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" -v "$PWD/tests/system:/tests:ro" \
		shop-build bash /tests/client.sh "$@"
}
. tests/system/tap.sh
# check_all_shipped NAME ID...: every order SHIPPED with exactly one
# OrderPlaced, PaymentAuthorized, ShipmentScheduled and ShipmentDispatched.
check_all_shipped() {
	local name=$1
	shift
	local report bad
	report=$(client final "$@")
	bad=$(echo "$report" | awk '$2 != "SHIPPED" || $3 != 1 || $4 != 1 || $5 != 1 || $6 != 1')
	if [ "$(echo "$report" | wc -l)" -eq $# ] && [ -z "$bad" ]; then
		pass "$name"
	else
		fail "$name" "id status placed authorized scheduled dispatched:" $report
	fi
}
wait_healthy() {
	"${compose[@]}" up -d --wait --wait-timeout 120 "$@" >/dev/null 2>&1
}

dead_before=$(client deadletters)

# --- a killed service catches up ---------------------------------------------------
"${compose[@]}" kill shipping >/dev/null 2>&1
ids=$(client place $RECOVERY_ORDERS SKU-CABLE)
# With shipping gone the orders get as far as PAID and stop there.
for _ in $(seq 1 100); do
	statuses=$(client status $ids | sort -u | tr '\n' ' ')
	[ "$statuses" = "PAID " ] && break
	sleep 0.2
done
if [ "$statuses" = "PAID " ]; then pass "orders wait at PAID while shipping is down"
else fail "orders wait at PAID while shipping is down" "statuses: $statuses"; fi
wait_healthy shipping
check_all_shipped "a restarted shipping service ships each waiting order once" $ids

# --- the broker killed mid-flow ------------------------------------------------------
before=$(client place $RECOVERY_ORDERS SKU-MOUSE)
"${compose[@]}" kill nats >/dev/null 2>&1
# The gateway keeps accepting: orders wait in its outbox.
during=$(client place $RECOVERY_ORDERS SKU-MOUSE)
if [ "$(echo "$during" | grep -c .)" -eq $RECOVERY_ORDERS ]; then
	pass "the gateway accepts orders while NATS is down"
else
	fail "the gateway accepts orders while NATS is down" "placed: $during"
fi
wait_healthy nats
check_all_shipped "orders in flight when NATS died and orders placed while it was down all ship once" \
	$before $during

# --- the database killed mid-flow ------------------------------------------------------
"${compose[@]}" kill postgres >/dev/null 2>&1
ids=$(client place $RECOVERY_ORDERS SKU-KEYBOARD)
sleep 3 # orders, inventory and payments fail and back off meanwhile
wait_healthy postgres
check_all_shipped "orders placed while PostgreSQL was down all ship once after it returns" $ids

# --- and through all of it --------------------------------------------------------------
dead=$(client deadletters)
if [ "$dead" = "$dead_before" ]; then pass "no message was dead-lettered through the kills"
else fail "no message was dead-lettered through the kills" "dead letters: $dead_before before, $dead after"; fi

echo "# recovery cases: $((n - ${1:-0} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

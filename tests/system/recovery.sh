#!/usr/bin/env bash
# Recovery cases, run by tests/system/run.sh on the host against the running
# deployment: kill a service, the whole NATS cluster, the database, payments; keep
# placing (and cancelling) orders; start it again; every order accepted
# meanwhile must end SHIPPED, charged once, shipped once, or CANCELLED with
# its money back. Money is checked on the simulated provider's own ledger
# (provider_charges, read with psql inside the postgres container), not on
# the gateway's timeline: the ledger is what was really taken, and a charge
# that payments never recorded shows up nowhere else. Numbering continues
# from $1 (the cases run before).
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
compose=(docker compose -f docker-compose.yml)
# Orders per case: enough to have several in flight at the moment of the kill.
RECOVERY_ORDERS=6

client() {
	docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" -v "$PWD/tests/system:/tests:ro" \
		"shop-build:${SHOP_TAG:-latest}" bash /tests/client.sh "$@"
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
# ledger_rows ID...: "id outcome refunded" for each ledger row of these
# orders. psql as the postgres superuser over the container's local socket
# (peer authentication): no password, no route into the service under test.
ledger_rows() {
	local list id
	list=""
	for id in "$@"; do
		# Order ids come from the gateway; inline only what is a UUID.
		[[ $id =~ ^[0-9a-f-]{36}$ ]] && list="$list${list:+,}'$id'"
	done
	[ -n "$list" ] || return 0
	"${compose[@]}" exec -T postgres psql -U postgres -d payments -AtF ' ' -c \
		"SELECT idempotency_key, COALESCE(outcome, 'NONE'), refunded FROM provider_charges
		 WHERE idempotency_key IN ($list)"
}
# ledger_violations "SHIPPED_IDS" "CANCELLED_IDS": one line per order whose
# ledger breaks the invariant: a shipped order holds exactly one approved
# charge, not refunded; a cancelled order holds no approved charge that was
# not refunded. Nothing printed: the ledger is right.
ledger_violations() {
	local rows id
	if ! rows=$(ledger_rows $1 $2); then
		echo "the ledger could not be read"
		return
	fi
	for id in $1; do
		[ "$(grep -c "^$id APPROVED 0$" <<<"$rows")" -eq 1 ] ||
			echo "shipped $id: $(grep "^$id " <<<"$rows" | tr '\n' ';')"
	done
	for id in $2; do
		! grep -q "^$id APPROVED 0$" <<<"$rows" ||
			echo "cancelled $id still charged: $(grep "^$id " <<<"$rows" | tr '\n' ';')"
	done
}
# check_ledger NAME "SHIPPED_IDS" "CANCELLED_IDS": refunds trail the
# cancelled status (the cancellation's own, or the reconciliation's a tick
# later), so the ledger gets a while to come right.
check_ledger() {
	local bad lines
	for _ in $(seq 1 60); do
		bad=$(ledger_violations "$2" "$3")
		[ -z "$bad" ] && break
		sleep 0.5
	done
	mapfile -t lines <<<"$bad" # one violation per TAP comment line
	if [ -z "$bad" ]; then pass "$1"; else fail "$1" "${lines[@]}"; fi
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
shipped_all="$ids"

# --- the whole broker killed mid-flow ------------------------------------------------
# All three cluster nodes at once (tests/system/cluster.sh kills them one at a
# time, and stops all three while posting).
before=$(client place $RECOVERY_ORDERS SKU-MOUSE)
"${compose[@]}" kill nats-1 nats-2 nats-3 >/dev/null 2>&1
# The gateway keeps accepting: orders wait in its outbox.
during=$(client place $RECOVERY_ORDERS SKU-MOUSE)
if [ "$(echo "$during" | grep -c .)" -eq $RECOVERY_ORDERS ]; then
	pass "the gateway accepts orders while NATS is down"
else
	fail "the gateway accepts orders while NATS is down" "placed: $during"
fi
wait_healthy nats-1 nats-2 nats-3
check_all_shipped "orders in flight when NATS died and orders placed while it was down all ship once" \
	$before $during
shipped_all="$shipped_all $before $during"

# --- the database killed mid-flow ------------------------------------------------------
"${compose[@]}" kill postgres >/dev/null 2>&1
ids=$(client place $RECOVERY_ORDERS SKU-KEYBOARD)
sleep 3 # orders, inventory and payments fail and back off meanwhile
wait_healthy postgres
check_all_shipped "orders placed while PostgreSQL was down all ship once after it returns" $ids
shipped_all="$shipped_all $ids"

# --- payments killed mid-flow, and orders cancelled while it is down -----------------
# payments may die between the provider's commit of a charge and its own
# commit of the payment; the order is then cancelled before the reservation
# is redelivered. Every other order (of those in flight at the kill and those
# placed after it) is cancelled while payments is down; the rest must ship.
before=$(client place $RECOVERY_ORDERS SKU-CABLE)
"${compose[@]}" kill payments >/dev/null 2>&1
during=$(client place $RECOVERY_ORDERS SKU-CABLE)
to_cancel="" kept=""
i=0
for id in $before $during; do
	if [ $((i % 2)) -eq 0 ]; then to_cancel="$to_cancel $id"; else kept="$kept $id"; fi
	i=$((i + 1))
done
cancelled="" refused=""
while read -r id code; do
	# 409: already final (shipped before the kill); it then counts as kept.
	case $code in
	202) cancelled="$cancelled $id" ;;
	409) kept="$kept $id" ;;
	*) refused="$refused $id:$code" ;;
	esac
done < <(client cancel $to_cancel)
if [ -z "$refused" ] && [ -n "$cancelled" ]; then
	pass "orders can be cancelled while payments is down"
else
	fail "orders can be cancelled while payments is down" "refused: $refused" "accepted: $cancelled"
fi
wait_healthy payments
check_all_shipped "with payments restarted, the orders not cancelled all ship once" $kept
report=$(client final $cancelled)
bad=$(echo "$report" | awk '$2 != "CANCELLED"')
if [ -z "$bad" ]; then pass "the orders cancelled while payments was down end CANCELLED"
else fail "the orders cancelled while payments was down end CANCELLED" $report; fi
check_ledger "the provider's ledger: every cancelled order's charge is refunded, every shipped order charged once" \
	"$kept" "$cancelled"
shipped_all="$shipped_all $kept"

# --- and through all of it --------------------------------------------------------------
check_ledger "the provider's ledger holds exactly one kept charge for each order shipped through the kills" \
	"$shipped_all" ""
dead=$(client deadletters)
if [ "$dead" = "$dead_before" ]; then pass "no message was dead-lettered through the kills"
else fail "no message was dead-lettered through the kills" "dead letters: $dead_before before, $dead after"; fi

# --- the audit, over everything the whole run did ------------------------------------
# shopctl audit checks every service's database, the ledger and the
# dead-letter stream. Compensations and e-mails trail the final status by a
# moment, so a violation gets AUDIT_ATTEMPTS looks before it counts. Dead
# letters that were there before the kills belong to the cases that injected
# them (the check above covers the kills), so they are allowed then.
AUDIT_ATTEMPTS=20
audit_args=(audit --details 20)
[ "$dead_before" = 0 ] || audit_args+=(--allow-dead-letters)
for _ in $(seq 1 $AUDIT_ATTEMPTS); do
	audit_out=$("${compose[@]}" run --rm --no-deps -T shopctl "${audit_args[@]}" 2>&1) && break
	sleep 1
done
if grep -qx PASSED <<<"$audit_out"; then
	pass "shopctl audit finds no violation after the whole run"
else
	mapfile -t lines <<<"$audit_out"
	fail "shopctl audit finds no violation after the whole run" "${lines[@]}"
fi

echo "# recovery cases: $((n - ${1:-0} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

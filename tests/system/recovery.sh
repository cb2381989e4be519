#!/usr/bin/env bash
# Recovery cases, run by tests/system/run.sh on the host against the running
# deployment: kill a service, the whole NATS cluster, the database, payments; keep
# placing (and cancelling) orders; start it again; every order accepted
# meanwhile must end SHIPPED, charged once, shipped once, or CANCELLED with
# its money back. Then the gateway is SIGKILLed mid-request while clients
# retry their Idempotency-Keys: one order per key. Money is checked on the simulated provider's own ledger
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

# --- the gateway SIGKILLed mid-request, clients retrying their keys ---------------------
# GWKILL_WORKERS clients each place GWKILL_KEYS orders, each under its own
# Idempotency-Key (also its customer id), and retry a key on any answer but
# 202. Twice while they post, the gateway's process is frozen (SIGSTOP) for
# GWKILL_HOLD_S, so that every client's next request is sent and waits, then
# SIGKILLed: those requests are cut without an answer, and one being
# committed at that moment may be on disk without its 202. The kill comes
# from outside Docker's API, as a crash or an OOM kill would (`docker compose
# kill` counts as a deliberate stop and would leave it down), so Docker's
# restart policy (unless-stopped) brings it back. Afterwards every key has
# exactly one order in the orders service, every 202 of a key (its retries,
# and one more POST of every key at the end) names that order, and every
# order ships once.
GWKILL_WORKERS=4
GWKILL_KEYS=25
GWKILL_KILLS=2
GWKILL_ACCEPTED_BEFORE_KILL=15 # 202s since the last kill before the next one
GWKILL_HOLD_S=1                 # far above a client's pause between requests (50 ms)
GWKILL_WAIT_S=120
gw_dir=$(mktemp -d)
gw_tag="gwkill-$(date +%s)"
gw_container="${COMPOSE_PROJECT_NAME}-gateway-1"
gw_accepted() { cat "$gw_dir"/first/* 2>/dev/null | awk '$3 == 202' | wc -l; }
# gw_signal SIG: signals the gateway's process by its host pid, from a
# container in the host's pid namespace (root there: no host root needed).
gw_signal() {
	docker run --rm --pid host --user 0 "shop-build:${SHOP_TAG:-latest}" \
		kill "-$1" "$(docker inspect -f '{{.State.Pid}}' "$gw_container")" >/dev/null 2>&1
}
# gw_restarted COUNT: waits for Docker to have restarted the gateway past
# COUNT and for its /readyz to answer 200.
gw_restarted() {
	for _ in $(seq 1 $((GWKILL_WAIT_S * 2))); do
		[ "$(docker inspect -f '{{.RestartCount}} {{.State.Running}}' "$gw_container")" = "$(($1 + 1)) true" ] &&
			docker exec "$gw_container" curl -sf http://127.0.0.1:8080/readyz >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
gw_keyed() {
	docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" --user "$(id -u):$(id -g)" \
		-v "$PWD/tests/system:/tests:ro" -v "$gw_dir:/out" "shop-build:${SHOP_TAG:-latest}" \
		bash /tests/client.sh keyed $GWKILL_WORKERS $GWKILL_KEYS "$gw_tag" "/out/$1"
}
gw_keyed first &
gw_clients=$!
gw_kills="" gw_restart_ok=1 mark=0
for k in $(seq 1 $GWKILL_KILLS); do
	for _ in $(seq 1 $((GWKILL_WAIT_S * 10))); do
		[ "$(gw_accepted)" -ge $((mark + GWKILL_ACCEPTED_BEFORE_KILL)) ] && break
		sleep 0.1
	done
	count=$(docker inspect -f '{{.RestartCount}}' "$gw_container")
	gw_signal STOP
	sleep $GWKILL_HOLD_S
	gw_signal KILL
	gw_kills="$gw_kills kill $k after $(gw_accepted) accepted;"
	gw_restarted "$count" || { gw_restart_ok=0; break; }
	mark=$(gw_accepted)
done
wait "$gw_clients"
if [ $gw_restart_ok = 1 ]; then
	pass "the gateway SIGKILLed $GWKILL_KILLS times under POSTs is brought back by its restart policy each time"
else
	fail "the gateway SIGKILLed $GWKILL_KILLS times under POSTs is brought back by its restart policy each time" \
		"$gw_kills" "$(docker inspect -f 'restarts {{.RestartCount}} running {{.State.Running}}' "$gw_container")"
	wait_healthy gateway
fi
# One more POST of every key, with the gateway up: each must replay its order.
gw_keyed again >/dev/null 2>&1
cat "$gw_dir"/first/* >"$gw_dir/first.all" 2>/dev/null
cat "$gw_dir"/again/* >"$gw_dir/again.all" 2>/dev/null
# Requests the kills cut: curl's "empty reply" (52) or "receive error" (56).
cut=$(awk '$5 == 52 || $5 == 56' "$gw_dir/first.all" | wc -l)
retried=$(awk '$2 > 1 { print $1 }' "$gw_dir/first.all" | sort -u | wc -l)
gw_ids=$(awk '$3 == 202 { print $4 }' "$gw_dir/first.all" | sort -u)
# Each key and the order ids its 202s named (it must be exactly one).
awk '$3 == 202 { print $1, $4 }' "$gw_dir/first.all" "$gw_dir/again.all" | sort -u >"$gw_dir/named"
named_keys=$(cut -d' ' -f1 "$gw_dir/named" | sort -u | wc -l)
named_twice=$(cut -d' ' -f1 "$gw_dir/named" | uniq -d | head -5 | tr '\n' ' ')
# The orders service's own rows: orders per key (its customer id).
"${compose[@]}" exec -T postgres psql -U postgres -d orders -AtF ' ' -c \
	"SELECT customer_id, count(*), min(order_id) FROM orders WHERE customer_id LIKE '$gw_tag-%' GROUP BY 1" |
	sort >"$gw_dir/orders"
want=$((GWKILL_WORKERS * GWKILL_KEYS))
dup_keys=$(awk '$2 != 1' "$gw_dir/orders" | head -5 | tr '\n' ';')
mismatch=$(join "$gw_dir/named" <(awk '{ print $1, $3 }' "$gw_dir/orders") | awk '$2 != $3' | head -5 | tr '\n' ';')
echo "# gateway kills:$gw_kills $cut requests cut without an answer, $retried keys retried"
if [ "$(grep -c . "$gw_dir/orders")" -eq $want ] && [ -z "$dup_keys" ] && [ -z "$mismatch" ] &&
	[ "$named_keys" -eq $want ] && [ -z "$named_twice" ] && [ "$cut" -gt 0 ]; then
	pass "with the gateway killed mid-request, each of $want retried Idempotency-Keys made exactly one order, and every 202 of a key names it"
else
	fail "with the gateway killed mid-request, each of $want retried Idempotency-Keys made exactly one order, and every 202 of a key names it" \
		"keys answered 202: $named_keys of $want; keys whose 202s named two order ids (first 5): ${named_twice:-none}" \
		"keys in the orders service: $(grep -c . "$gw_dir/orders"); with more than one order (first 5): ${dup_keys:-none}" \
		"202s naming another order than the orders service's (first 5): ${mismatch:-none}" \
		"requests cut without an answer: $cut (the kills must cut some)"
fi
check_all_shipped "the orders placed through the gateway kills all ship once" $gw_ids
shipped_all="$shipped_all $gw_ids"
rm -rf "$gw_dir"

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
audit_case "shopctl audit finds no violation after the whole run" "$AUDIT_ATTEMPTS" "$dead_before"

echo "# recovery cases: $((n - ${1:-0} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

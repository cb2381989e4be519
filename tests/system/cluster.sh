#!/usr/bin/env bash
# The NATS cluster cases (issue 7), run by tests/system/run.sh on the host
# against the running deployment (three nodes nats-1..3, every stream R3),
# each under a bounded open-model load of tok_visa orders (client.sh load,
# one attempt per POST, never retried):
#   - every stream is replicated on the three nodes;
#   - one node killed (SIGKILL), then, once it is back and caught up,
#     another: every POST meanwhile is answered 202, an order placed while a
#     node is down ships while it is still down, and every accepted order
#     ships;
#   - all three nodes stopped for CLUSTER_OUTAGE_S while posting: every POST
#     is answered 202 (the gateway's outbox holds them: its backlog is
#     checked), and every accepted order ships once NATS is back;
#   - shopctl audit passes afterwards.
# Each wait is on a condition with a deadline, never a fixed sleep as the
# check; the outage itself is the one timed sleep. Numbering continues
# from $1 (the cases run before).
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
compose=(docker compose -f docker-compose.yml)
. tests/system/tap.sh

CLUSTER_RATE=10           # orders per second offered by the load
CLUSTER_LOAD_MAX_S=300    # the load's own bound, should the script die
CLUSTER_PROGRESS=20       # POSTs answered in each phase (before, during, after)
CLUSTER_OUTAGE_S=10       # all three nodes stopped this long
CLUSTER_DEADLINE_S=120    # longest wait for any condition
CLUSTER_AUDIT_ATTEMPTS=20 # looks, a second apart, before a violation counts
NODES="nats-1 nats-2 nats-3"

tmp=$(mktemp -d)
load_name="${COMPOSE_PROJECT_NAME:?}-cluster-load"
load_pid=
cleanup() {
	docker rm -f "$load_name" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

client() {
	docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" -v "$PWD/tests/system:/tests:ro" \
		"shop-build:${SHOP_TAG:-latest}" bash /tests/client.sh "$@"
}
now_ms() { date +%s%3N; }
# wait_until DEADLINE_S COMMAND...: polls COMMAND every half second.
wait_until() {
	local deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}

# load_start FILE: the load runs in its own container, one line per POST
# into FILE ("epoch_ms code id"); load_stop ends it after its request in hand.
load_start() {
	load_out=$1
	docker rm -f "$load_name" >/dev/null 2>&1
	docker run --rm --name "$load_name" --network "${COMPOSE_PROJECT_NAME}_default" \
		-v "$PWD/tests/system:/tests:ro" "shop-build:${SHOP_TAG:-latest}" \
		bash /tests/client.sh load $CLUSTER_LOAD_MAX_S $CLUSTER_RATE >"$load_out" 2>"$load_out.err" &
	load_pid=$!
}
load_stop() {
	docker stop -t 15 "$load_name" >/dev/null 2>&1
	wait "$load_pid" 2>/dev/null
}
# posts_since MS: POSTs answered at or after MS.
posts_since() { awk -v t="$1" '$1 >= t' "$load_out" | wc -l; }
have_posts_since() { [ "$(posts_since "$1")" -ge "$2" ]; }
# leader_of STREAM: the node that leads STREAM now ("none" while electing).
leader_of() { client streams | awk -v s="$1" '$1 == s {print $3}'; }
caught_up() { client caughtup "$1"; }
# summary FILE: "N POSTs, M not 202 (codes...)".
summary() {
	awk '{n++; if ($2 != 202) {bad++; codes[$2]++}}
		END {printf "%d POSTs, %d not 202", n, bad; for (c in codes) printf " (%s: %d)", c, codes[c]; print ""}' "$1"
}
# check_all_shipped NAME FILE: every order FILE's load had accepted ends SHIPPED.
check_all_shipped() {
	local ids report bad total
	ids=$(awk '$2 == 202 {print $3}' "$2")
	total=$(echo "$ids" | grep -c .)
	report=$(client terminal $ids)
	bad=$(awk '$2 != "SHIPPED"' <<<"$report")
	echo "# $total accepted orders: $(awk '{print $2}' <<<"$report" | sort | uniq -c | tr '\n' ' ')"
	if [ "$total" -gt 0 ] && [ "$(grep -c . <<<"$report")" -eq "$total" ] && [ -z "$bad" ]; then
		pass "$1"
	else
		mapfile -t lines < <(head -20 <<<"$bad")
		fail "$1" "$total accepted; not shipped:" "${lines[@]}"
	fi
}
# check_all_202 NAME FILE
check_all_202() {
	local s
	s=$(summary "$2")
	echo "# load: $s"
	if [ "$(awk '$2 != 202' "$2" | wc -l)" -eq 0 ] && [ "$(grep -c . "$2")" -gt 0 ]; then
		pass "$1"
	else
		fail "$1" "$s"
	fi
}
# kill_and_return NODE: SIGKILL NODE under the load, see POSTs answered and an
# order placed meanwhile ship while it is down, start it again and wait until
# it has caught up. Prints what happened.
kill_and_return() {
	local node=$1 t0 t1 id status
	t0=$(now_ms)
	"${compose[@]}" kill "$node" >/dev/null 2>&1
	echo "# killed $node (SIGKILL) after $(posts_since 0) POSTs"
	wait_until $CLUSTER_DEADLINE_S have_posts_since "$t0" $CLUSTER_PROGRESS
	id=$(awk -v t="$t0" '$1 >= t && $2 == 202 {id = $3} END {print id}' "$load_out")
	status=$(client terminal "${id:-none}" | awk '{print $2}')
	if [ "$status" = SHIPPED ] && ! "${compose[@]}" ps --status running --services | grep -qx "$node"; then
		pass "with $node down, an order placed after the kill ships ($id)"
	else
		fail "with $node down, an order placed after the kill ships" "order ${id:-none}: $status"
	fi
	t1=$(date +%s)
	"${compose[@]}" up -d --wait --wait-timeout $CLUSTER_DEADLINE_S "$node" >/dev/null 2>&1
	if wait_until $CLUSTER_DEADLINE_S caught_up "$node"; then
		pass "$node restarted and caught up on every stream ($(($(date +%s) - t1)) s)"
	else
		fail "$node restarted and caught up on every stream" "$(client streams | tr '\n' ';')" \
			"$node /healthz: $(client health "$node")"
	fi
}

dead_before=$(client deadletters)

# --- every stream on three nodes ----------------------------------------------------
streams=$(client streams)
echo "# streams (name replicas leader nodes): $(tr '\n' ';' <<<"$streams")"
if [ -n "$streams" ] && [ -z "$(awk '$2 != 3 || $3 == "none" || $4 != 3' <<<"$streams")" ]; then
	pass "every stream is replicated on the three NATS nodes and has a leader"
else
	fail "every stream is replicated on the three NATS nodes and has a leader" "$streams"
fi

# --- one node killed, then another --------------------------------------------------------
load_start "$tmp/load-kill"
wait_until $CLUSTER_DEADLINE_S have_posts_since 0 $CLUSTER_PROGRESS
# The ORDERS stream's leader first: the node whose loss forces an election
# on the busiest stream; then the new leader, necessarily another node.
first=$(leader_of ORDERS)
case $first in nats-[123]) ;; *) first=nats-1 ;; esac
kill_and_return "$first"
second=$(leader_of ORDERS)
if [ "$second" = "$first" ] || [ -z "$second" ] || [ "$second" = none ]; then
	second=$(for x in $NODES; do [ "$x" != "$first" ] && echo "$x"; done | head -1)
fi
kill_and_return "$second"
t_back=$(now_ms)
wait_until $CLUSTER_DEADLINE_S have_posts_since "$t_back" $CLUSTER_PROGRESS
load_stop
check_all_202 "killing $first, then $second under load: every POST is answered 202" "$tmp/load-kill"
check_all_shipped "killing $first, then $second under load: every accepted order ships" "$tmp/load-kill"

# --- all three nodes stopped for a while ---------------------------------------------------
load_start "$tmp/load-stop"
wait_until $CLUSTER_DEADLINE_S have_posts_since 0 $CLUSTER_PROGRESS
"${compose[@]}" stop $NODES >/dev/null 2>&1
t0=$(now_ms)
echo "# stopped $NODES after $(posts_since 0) POSTs; NATS stays away ${CLUSTER_OUTAGE_S}s"
sleep $CLUSTER_OUTAGE_S
during=$(awk -v t="$t0" '$1 >= t && $2 == 202' "$tmp/load-stop" | wc -l)
backlog=$(client metrics gateway | awk '$1 ~ /^shop_outbox_backlog/ {print $2; exit}')
echo "# while NATS was away: $during orders accepted, gateway outbox backlog ${backlog:-unknown}"
if [ "$during" -ge $((CLUSTER_RATE * CLUSTER_OUTAGE_S / 2)) ] && [ "${backlog:-0}" -ge "$during" ]; then
	pass "with all NATS nodes stopped, the gateway accepts orders into its outbox"
else
	fail "with all NATS nodes stopped, the gateway accepts orders into its outbox" \
		"$during accepted in ${CLUSTER_OUTAGE_S}s, backlog ${backlog:-unknown}"
fi
t1=$(date +%s)
"${compose[@]}" up -d --wait --wait-timeout $CLUSTER_DEADLINE_S $NODES >/dev/null 2>&1
back=yes
for node in $NODES; do wait_until $CLUSTER_DEADLINE_S caught_up "$node" || back="no: $node"; done
if [ "$back" = yes ]; then pass "the three nodes restarted and are current ($(($(date +%s) - t1)) s)"
else fail "the three nodes restarted and are current" "$back" "$(client streams | tr '\n' ';')" \
	"$(for node in $NODES; do echo "$node /healthz: $(client health "$node")"; done)"; fi
t_back=$(now_ms)
wait_until $CLUSTER_DEADLINE_S have_posts_since "$t_back" $CLUSTER_PROGRESS
load_stop
check_all_202 "stopping all NATS nodes for ${CLUSTER_OUTAGE_S}s while posting: every POST is answered 202" \
	"$tmp/load-stop"
check_all_shipped "stopping all NATS nodes for ${CLUSTER_OUTAGE_S}s: every accepted order ships after NATS returns" \
	"$tmp/load-stop"

# --- nothing dead-lettered, and the audit -------------------------------------------------
dead=$(client deadletters)
if [ "$dead" = "$dead_before" ]; then pass "no message was dead-lettered through the NATS kills"
else fail "no message was dead-lettered through the NATS kills" "dead letters: $dead_before before, $dead after"; fi
audit_case "shopctl audit finds no violation after the NATS cluster cases" "$CLUSTER_AUDIT_ATTEMPTS" "$dead_before"

echo "# cluster cases: $((n - ${1:-0} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

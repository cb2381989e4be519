#!/usr/bin/env bash
# The scale-out cases, run by tests/system/run.sh on the host (the test
# runner container has no compose). The PostgreSQL-backed services scaled
# out (payments to three replicas, orders and inventory to two):
#   - `shopctl services` lists three payments instances, all ready, each
#     with its own instance id, and so does the console's overview;
#   - under a short bounded load (shop-loadtest) every replica of the three
#     services handles some of the messages of their shared durables (each
#     instance's own /metrics), the outbox relays of each service's
#     replicas publish each outbox row once between them, every accepted
#     order ends, and `shopctl audit` passes;
# then they are scaled back to one, and the extra instances leave the
# registry. Numbering continues from $1.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
compose=(docker compose -f docker-compose.yml)
. tests/system/tap.sh
# Polls of the registry while a replica starts or stops (one per second).
SCALE_POLLS=60

# The bounded load: SCALE_RATE orders/s for SCALE_LOAD_S s, at most
# SCALE_DRAIN_S s for every order to end; audit looks a second apart.
SCALE_RATE=40
SCALE_LOAD_S=10
SCALE_DRAIN_S=90
SCALE_AUDIT_ATTEMPTS=20
runner="shop-build:${SHOP_TAG:-latest}"
[ -n "${SHOP_NATS_PASSWORD_ADMIN:-}" ] || eval "$(tools/nats-env.sh)"
project=${COMPOSE_PROJECT_NAME:-shoptest}

# payments_count N: polls until the registry lists N payments instances,
# all ready, with N distinct ids; $listed keeps the last listing. shopctl
# and jq run in the test runner image (the host needs only Docker).
payments_count() {
	for _ in $(seq 1 "$SCALE_POLLS"); do
		listed=$(docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" \
			-e SHOP_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222 -e N="$1" \
			-e SHOP_NATS_USER=admin -e SHOP_NATS_PASSWORD="$SHOP_NATS_PASSWORD_ADMIN" "shop-build:${SHOP_TAG:-latest}" bash -c \
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

# consumed SVC: one line per running replica of SVC: its container name and
# the messages its consumers settled "ok" and its relay published (its own
# /metrics: counters of that process since it started).
consumed() {
	local c
	for c in $(docker ps --filter "label=com.docker.compose.project=$project" \
		--filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | sort); do
		docker run --rm --network "${project}_default" "$runner" bash -c "curl -sf http://$c:8080/metrics |
			awk -v c=$c '/^shop_messages_consumed_total\{/ && /outcome=\"ok\"/ { ok += \$NF }
			/^shop_messages_published_total\{/ { pub += \$NF } END { print c, ok + 0, pub + 0 }'"
	done
}
# outbox_state SVC: the highest id in SVC's outbox, and its rows not yet
# published (psql as the superuser inside the postgres container).
outbox_state() {
	"${compose[@]}" exec -T postgres psql -U postgres -d "$1" -At -c \
		"SELECT COALESCE(max(id), 0) || ' ' || count(*) FILTER (WHERE published_at_ms IS NULL) FROM outbox"
}
# outbox_settled SVC: waits until SVC's relays have published every row;
# prints outbox_state.
outbox_settled() {
	local top waiting
	for _ in $(seq 1 60); do
		read -r top waiting <<<"$(outbox_state "$1")"
		[ "${waiting:-1}" = 0 ] && break
		sleep 0.5
	done
	echo "${top:-0} ${waiting:-?}"
}
# The dead letters before the load (other cases inject poison on purpose).
deadletters() {
	docker run --rm --network "${project}_default" "$runner" bash -c \
		'curl -s http://nats-1:8222/jsz?streams=true | jq "[.account_details[].stream_detail[] | select(.name | startswith(\"DEADLETTER\")) | .state.messages] | add // 0"'
}

# scale_out P N: payments to P replicas, orders and inventory to N each.
scale_out() {
	"${compose[@]}" up -d --wait --wait-timeout 120 --no-recreate \
		--scale "payments=$1" --scale "orders=$2" --scale "inventory=$2" payments orders inventory >/dev/null 2>&1
}

if scale_out 3 2 && payments_count 3 && console_count 3; then
	pass "with payments scaled to three replicas (orders and inventory to two) shopctl services and the console's overview list three ready payments instances"
else
	fail "with payments scaled to three replicas (orders and inventory to two) shopctl services and the console's overview list three ready payments instances" \
		"listed: ${listed:-nothing}" "on the console's overview: ${drawn:-nothing}"
fi

# --- the bounded load on the scaled-out services -------------------------------------
dead_before=$(deadletters)
declare -A outbox_top
for svc in payments orders inventory; do
	read -r top _ <<<"$(outbox_settled $svc)"
	outbox_top[$svc]=$top
done
declare -A before
for svc in payments orders inventory; do
	while read -r c ok pub; do before[$c]="$ok $pub"; done < <(consumed $svc)
done
load=$(docker run --rm --network "${project}_default" -e SHOP_NATS_USER=admin \
	-e SHOP_NATS_PASSWORD="$SHOP_NATS_PASSWORD_ADMIN" "$runner" /src/build/bin/shop-loadtest \
	--rate $SCALE_RATE --duration $SCALE_LOAD_S --drain $SCALE_DRAIN_S 2>/dev/null)
result=$(grep '^result:' <<<"$load")
echo "# scaled-out load: ${result:-no result}"
case $result in
*" errors=0 "*" never_terminal=0 events_dropped=0") load_ok=1 ;;
*) load_ok=0 ;;
esac
[ "$(sed -n 's/.* accepted=\([0-9]*\).*/\1/p' <<<"$result")" -gt 0 ] 2>/dev/null || load_ok=0
if [ $load_ok = 1 ]; then
	pass "under $SCALE_RATE orders/s for $SCALE_LOAD_S s on the scaled-out services every request is accepted and every order ends"
else
	mapfile -t lines < <(grep -E '^(offered|terminal|errors|outcomes|consumer lag)' <<<"$load")
	fail "under $SCALE_RATE orders/s for $SCALE_LOAD_S s on the scaled-out services every request is accepted and every order ends" \
		"${result:-the generator printed no result}" "${lines[@]}"
fi
# Each replica's share: messages settled ok, and rows its relay published.
idle="" replicas=0
declare -A published
for svc in payments orders inventory; do
	published[$svc]=0
	while read -r c ok pub; do
		read -r ok0 pub0 <<<"${before[$c]:-0 0}"
		echo "# $c: $((ok - ok0)) messages handled, $((pub - pub0)) events published"
		replicas=$((replicas + 1))
		[ $((ok - ok0)) -gt 0 ] || idle="$idle $c"
		published[$svc]=$((published[$svc] + pub - pub0))
	done < <(consumed $svc)
done
if [ "$replicas" -eq 7 ] && [ -z "$idle" ]; then
	pass "every replica (three payments, two orders, two inventory) handled some of the load from its service's shared durables"
else
	fail "every replica (three payments, two orders, two inventory) handled some of the load from its service's shared durables" \
		"replicas found: $replicas of 7; idle:${idle:- none}"
fi
# A service's relays share its outbox (FOR UPDATE SKIP LOCKED): between them
# they publish each row written during the load exactly once.
relay_report="" relay_ok=1
for svc in payments orders inventory; do
	read -r _ waiting <<<"$(outbox_settled $svc)"
	rows=$("${compose[@]}" exec -T postgres psql -U postgres -d $svc -At -c \
		"SELECT count(*) FROM outbox WHERE id > ${outbox_top[$svc]:-0}")
	relay_report="$relay_report $svc: $rows rows, ${published[$svc]} publishes, $waiting unpublished;"
	[ "${rows:-0}" -gt 0 ] && [ "${published[$svc]}" -eq "$rows" ] && [ "$waiting" = 0 ] || relay_ok=0
done
echo "# relays:$relay_report"
if [ $relay_ok = 1 ]; then
	pass "the relays of each scaled-out service published each outbox row written during the load exactly once between them"
else
	fail "the relays of each scaled-out service published each outbox row written during the load exactly once between them" \
		"$relay_report"
fi
audit_case "shopctl audit passes after the load on the scaled-out services" "$SCALE_AUDIT_ATTEMPTS" "$dead_before"

if scale_out 1 1 && payments_count 1 && console_count 1; then
	pass "scaled back to one replica each, the stopped payments instances leave the registry and the console's ready ones"
else
	fail "scaled back to one replica each, the stopped payments instances leave the registry and the console's ready ones" \
		"listed: ${listed:-nothing}" "on the console's overview: ${drawn:-nothing}"
fi
[ "$failed" -eq 0 ]

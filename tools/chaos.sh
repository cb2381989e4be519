#!/usr/bin/env bash
# tools/chaos.sh - `make chaos` on the host: watch the shop recover.
#
# Against a running compose deployment (`docker compose up -d --wait`), it
# places tok_visa orders at CHAOS_RATE a second for CHAOS_DURATION seconds
# (tests/system/client.sh load, in the shop-build image: one attempt per
# POST, never retried), and every CHAOS_INTERVAL seconds SIGKILLs one
# container (any service, any NATS node, PostgreSQL) after starting the one
# it killed before: one container is down at a time. Victims come in a
# random order in which every container dies once before any dies twice.
# `docker compose kill` counts as a deliberate stop for Docker's restart
# policy, so the script starts each victim again itself.
#
# One line a second: seconds since the start, orders accepted (202) and
# refused (anything else: the gateway itself may be the one down), orders
# completed (SHIPPED or CANCELLED, read from the orders database), in
# flight (accepted, not completed), the consumers with a backlog
# (STREAM/durable:undelivered+unacknowledged, from NATS monitoring; a
# message whose ack was lost with a node stays unacknowledged for the 30 s
# ack wait) and the container down.
# After the load it starts everything, waits up to CHAOS_DRAIN seconds for
# every accepted order to complete, and ends with `shopctl audit`. It exits
# 0 when every accepted order completed and the audit passed, 1 when either
# did not, 2 when it could not run.
#
# Settings (environment; `make chaos` passes them on):
#   CHAOS_DURATION=60 CHAOS_RATE=10 CHAOS_INTERVAL=5 CHAOS_DRAIN=180
#   CHAOS_SEED=<n>        the same victims in the same order for the same seed
#   COMPOSE_PROJECT_NAME  the deployment's project (default: this directory's)
set -uo pipefail
cd "$(dirname "$0")/.."

CHAOS_DURATION=${CHAOS_DURATION:-60}
CHAOS_RATE=${CHAOS_RATE:-10}
CHAOS_INTERVAL=${CHAOS_INTERVAL:-5}
CHAOS_DRAIN=${CHAOS_DRAIN:-180}
# Containers never killed: the tools run on demand, and the console carries
# no order.
CHAOS_SPARED="console shopctl follow"
CHAOS_AUDIT_ATTEMPTS=20 # looks, a second apart, before a violation counts

project=${COMPOSE_PROJECT_NAME:-$(docker compose config 2>/dev/null | sed -n 's/^name: //p' | head -1)}
network=${project}_default
compose=(docker compose -p "$project" -f docker-compose.yml)
if ! docker network inspect "$network" >/dev/null 2>&1; then
	echo "chaos: no compose deployment '$project' is running (network $network);" \
		"start it with 'docker compose up -d --wait' first" >&2
	exit 2
fi
[ -n "${CHAOS_SEED:-}" ] && RANDOM=$CHAOS_SEED

echo "# building the load client image (shop-build)" >&2
docker build -q -t "shop-build:${SHOP_TAG:-latest}" --target build -f infra/docker/Dockerfile . >/dev/null ||
	{ echo "chaos: the shop-build image does not build" >&2; exit 2; }

customer="chaos-$(date -u +%Y%m%dT%H%M%S)"
tmp=$(mktemp -d)
load_name="${project}-chaos-load"
watch_name="${project}-chaos-watch"
down=""
cleanup() {
	docker rm -f "$load_name" "$watch_name" >/dev/null 2>&1
	[ -n "$down" ] && "${compose[@]}" start "$down" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

victims=()
for s in $("${compose[@]}" ps --services --status running); do
	[[ " $CHAOS_SPARED " == *" $s "* ]] || victims+=("$s")
done
echo "# chaos on '$project': ${CHAOS_RATE} orders/s for ${CHAOS_DURATION}s (customer $customer)," \
	"a SIGKILL every ${CHAOS_INTERVAL}s among: ${victims[*]}"

docker run --rm --name "$load_name" --network "$network" -v "$PWD/tests/system:/tests:ro" \
	"shop-build:${SHOP_TAG:-latest}" bash /tests/client.sh load "$CHAOS_DURATION" "$CHAOS_RATE" "$customer" \
	>"$tmp/load" 2>"$tmp/load.err" &
load_pid=$!

# The progress is read from a helper container on the compose network
# (curl, jq and psql; the host needs none of them), one exec a second.
docker run -d --rm --name "$watch_name" --network "$network" \
	-e PGPASSWORD="${SHOP_PG_PASSWORD_ORDERS:-orders-dev-password}" \
	"shop-build:${SHOP_TAG:-latest}" sleep infinity >/dev/null ||
	{ echo "chaos: the watch container does not start" >&2; exit 2; }
# progress: "completed lag": this run's finished orders in the orders
# database ("?" while PostgreSQL is the one down), and "STREAM/durable:n" for each
# durable with undelivered or unacknowledged messages, from the NATS
# node that leads it ("none" when no durable has any).
read -r -d '' progress_script <<'INNER'
customer=$1
counts=$(psql -h postgres -U orders -d orders -AtF ' ' -c "SELECT
	count(*) FILTER (WHERE status IN ('SHIPPED', 'CANCELLED')),
	count(*) FILTER (WHERE status NOT IN ('SHIPPED', 'CANCELLED'))
	FROM orders WHERE customer_id = '$customer'" 2>/dev/null) || counts="? ?"
# Every node's view, each consumer taken from its leader's (a follower's
# numbers can be stale). Durables only: the console's watches' consumers are
# ephemeral, and one left behind on a killed node (its watch made again on
# another) would count its stream's whole tail as lag.
lag=$(for node in nats-1 nats-2 nats-3; do
	curl -s --max-time 1 "http://$node:8222/jsz?consumers=true&config=true" |
		jq --arg from "$node" '[.account_details[]?.stream_detail[]?.consumer_detail[]? | . + {from: $from}]' 2>/dev/null
done | jq -rs 'add // [] | map(select((.config.durable_name // "") != ""))
	| map(select(.cluster.leader == .from or .cluster == null))
	| map(select(.num_pending + .num_ack_pending > 0)
		| "\(.stream_name)/\(.name):\(.num_pending + .num_ack_pending)")
	| if length == 0 then "none" else join(" ") end' 2>/dev/null)
echo "${counts:-? ?} ${lag:-?}"
INNER
progress() { docker exec "$watch_name" bash -c "$progress_script" progress "$customer"; }

# line T: one progress line.
line() {
	local acc ref done_n lagv p
	acc=$(awk '$2 == 202' "$tmp/load" | wc -l)
	ref=$(awk '$2 != 202' "$tmp/load" | wc -l)
	p=$(progress)
	read -r done_n pending lagv <<<"$p"
	# In flight: accepted and not finished. A POST cut by a killed gateway
	# may still have placed its order, so orders can finish more than were
	# accepted; the drain below waits on orders' own unfinished count too.
	inflight="?"
	[ "$done_n" != "?" ] && inflight=$((acc > done_n ? acc - done_n : 0))
	printf '%4ss  accepted %5d  refused %3d  completed %5s  in flight %4s  lag %s  down %s\n' \
		"$1" "$acc" "$ref" "$done_n" "$inflight" "$lagv" "${down:-none}"
}

# deal [LAST]: deck becomes the victims in a random order (Fisher-Yates on
# $RANDOM, so CHAOS_SEED replays it), LAST moved to the end.
deck=()
deal() {
	local i j t
	deck=("${victims[@]}")
	for ((i = ${#deck[@]} - 1; i > 0; i--)); do
		j=$((RANDOM % (i + 1)))
		t=${deck[i]} deck[i]=${deck[j]} deck[j]=$t
	done
	if [ -n "${1:-}" ] && [ "${#deck[@]}" -gt 1 ] && [ "${deck[0]}" = "$1" ]; then
		deck=("${deck[@]:1}" "$1")
	fi
}

start=$(date +%s)
next_kill=$((start + CHAOS_INTERVAL))
while kill -0 "$load_pid" 2>/dev/null; do
	tick=$(date +%s)
	if [ "$tick" -ge "$next_kill" ]; then
		[ -n "$down" ] && "${compose[@]}" start "$down" >/dev/null 2>&1
		prev=$down
		# The next card of a shuffled deck of every victim, so that each
		# container dies once before any dies twice; a new deck whose first
		# card is the one just started (still starting) puts it last.
		[ "${#deck[@]}" -gt 0 ] || deal "$prev"
		down=${deck[0]}
		deck=("${deck[@]:1}")
		"${compose[@]}" kill -s SIGKILL "$down" >/dev/null 2>&1
		echo "# $((tick - start))s: SIGKILL $down${prev:+ (started $prev again)}"
		next_kill=$((tick + CHAOS_INTERVAL))
	fi
	line $((tick - start))
	sleep_s=$((tick + 1 - $(date +%s)))
	[ "$sleep_s" -gt 0 ] && sleep "$sleep_s"
done
wait "$load_pid"

echo "# load over: starting $down again, waiting for every accepted order to complete"
"${compose[@]}" start "$down" >/dev/null 2>&1
down=""
"${compose[@]}" up -d --wait --wait-timeout 180 >/dev/null 2>&1
accepted=$(awk '$2 == 202' "$tmp/load" | wc -l)
deadline=$(($(date +%s) + CHAOS_DRAIN))
drained=1
while :; do
	tick=$(date +%s)
	line $((tick - start))
	[ "$inflight" = 0 ] && [ "$pending" = 0 ] && break
	[ "$tick" -lt "$deadline" ] || {
		echo "# ${CHAOS_DRAIN}s after the load, $inflight orders still in flight"
		drained=0
		break
	}
	sleep 1
done

echo "# shopctl audit"
for _ in $(seq 1 $CHAOS_AUDIT_ATTEMPTS); do
	out=$("${compose[@]}" run --rm --no-deps -T shopctl audit --details 20 2>&1) && break
	sleep 1
done
printf '%s\n' "$out"
grep -qx PASSED <<<"$out" || exit 1
if [ "$drained" = 0 ]; then
	echo "# chaos: $accepted orders accepted, $inflight not completed within ${CHAOS_DRAIN}s; audit passed"
	exit 1
fi
echo "# chaos: $accepted orders accepted, all completed, audit passed"

#!/usr/bin/env bash
# A small HTTP client for tests/system/recovery.sh, run in a container on the
# compose network (the host may have neither curl nor jq):
#   client.sh place N SKU     places N orders with tok_visa; prints their ids
#   client.sh final ID...     waits for each to end; prints one line per order:
#                             id status OrderPlaced PaymentAuthorized
#                             ShipmentScheduled ShipmentDispatched (counts)
#   client.sh status ID...    prints each order's current status
#   client.sh cancel ID...    asks to cancel each order; prints "id httpcode"
#   client.sh deadletters     prints how many messages the dead-letter streams hold
#   client.sh load SECONDS RATE [CUSTOMER]  places tok_visa orders (customer_id
#                             CUSTOMER, default "cluster"), RATE a second, for
#                             at most SECONDS or until SIGTERM, one attempt each;
#                             prints "epoch_ms httpcode order_id|-" per POST
#   client.sh terminal ID...  waits (long-poll) for each order; prints "id status"
#   client.sh streams         prints each stream "name replicas leader nodes",
#                             nodes: how many nodes report holding it
#   client.sh metrics HOST    prints HOST:8080/metrics (a service's)
#   client.sh caughtup NODE   succeeds when the restarted NODE is current:
#                             JetStream runs on it, and each stream's and
#                             each durable's leader sees it current
#   client.sh health NODE     prints NODE's /healthz?details=true (what it
#                             says is not current yet)
#   client.sh keyed W K TAG OUT  W workers each place K orders, each under its
#                             own Idempotency-Key TAG-w-k and customer id, and
#                             retry that key on any answer but 202 (a gateway
#                             killed mid-request); one line per attempt in
#                             OUT/w: key attempt httpcode order_id curl-exit
set -uo pipefail
G=${GATEWAY:-http://gateway:8080}
# The cluster's nodes, each with its monitoring port.
NATS_NODES="nats-1 nats-2 nats-3"
MON=${NATS_MONITOR:-http://nats-1:8222}
# Placing an order is refused only by bad input; retry transport errors
# (a gateway restarting) a few times rather than fail the whole case.
CLIENT_ATTEMPTS=20

place() {
	local n=$1 sku=$2 body out
	body=$(jq -cn --arg sku "$sku" '{customer_id: "recovery", email: "r@example.com",
		items: [{sku: $sku, quantity: 1}], payment: {card_token: "tok_visa"},
		shipping_address: {name: "R", line1: "1 Way", city: "Paris", postal_code: "75001", country: "FR"}}')
	for i in $(seq 1 "$n"); do
		# One key per order: a retried request can never create a second one.
		local key="recovery-$(cat /proc/sys/kernel/random/uuid)" code=000
		for _ in $(seq 1 $CLIENT_ATTEMPTS); do
			code=$(curl -s -o /tmp/place.out -w '%{http_code}' -H 'Content-Type: application/json' \
				-H "Idempotency-Key: $key" --data-binary "$body" "$G/orders")
			[ "$code" = 202 ] && break
			sleep 0.5
		done
		if [ "$code" != 202 ]; then
			echo "order $i: HTTP $code $(cat /tmp/place.out 2>/dev/null)" >&2
			return 1
		fi
		jq -r .order_id /tmp/place.out
	done
}

# How many times (a quarter second apart) final re-reads a SHIPPED order
# whose timeline lacks one of its four events: 40 s, longer than
# BUS_ACK_WAIT_MS (30 s), since an event a killed gateway had fetched and not
# acknowledged comes back only then, while later ones (fetched after its
# restart) are already projected (seen once in the gateway-kill case: a
# SHIPPED order without its ShipmentScheduled 20 s on).
FINAL_SETTLE_TRIES=160

final() {
	local whole='.status != "SHIPPED" or ([.timeline[]?.type] as $t
		| all("OrderPlaced", "PaymentAuthorized", "ShipmentScheduled", "ShipmentDispatched";
			. as $x | $t | index($x) != null))'
	for id in "$@"; do
		curl -s "$G/orders/$id?wait=30" >/tmp/final.out
		# The gateway reads each stream with a durable of its own, so the
		# terminal status (ORDERS stream) can be projected before events of
		# the PAYMENTS and SHIPPING streams that came earlier: a SHIPPED
		# order is read again until all four are there (a missing one stays
		# 0 after the wait and fails the case; a second copy shows as 2).
		for _ in $(seq 1 $FINAL_SETTLE_TRIES); do
			jq -e "$whole" /tmp/final.out >/dev/null && break
			sleep 0.25
			curl -s "$G/orders/$id" >/tmp/final.out
		done
		jq -r --arg id "$id" '[$id, (.status // "MISSING"),
			([.timeline[]? | select(.type == "OrderPlaced")] | length),
			([.timeline[]? | select(.type == "PaymentAuthorized")] | length),
			([.timeline[]? | select(.type == "ShipmentScheduled")] | length),
			([.timeline[]? | select(.type == "ShipmentDispatched")] | length)] | join(" ")' /tmp/final.out
	done
}

status() {
	for id in "$@"; do
		curl -s "$G/orders/$id" | jq -r '.status // "MISSING"'
	done
}

cancel() {
	local code
	for id in "$@"; do
		code=000
		for _ in $(seq 1 $CLIENT_ATTEMPTS); do
			code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$G/orders/$id/cancel")
			[ "$code" = 202 ] || [ "$code" = 409 ] && break
			sleep 0.5
		done
		echo "$id $code"
	done
}

deadletters() {
	curl -s "$MON/jsz?streams=true" |
		jq '[.account_details[].stream_detail[] | select(.name | startswith("DEADLETTER")) | .state.messages] | add // 0'
}

# One load POST gives up after this long (it counts as not accepted).
LOAD_TIMEOUT_S=10

load() {
	local seconds=$1 rate=$2 customer=${3:-cluster} body start now due i=0 code id
	body=$(jq -cn --arg c "$customer" '{customer_id: $c, email: "c@example.com",
		items: [{sku: "SKU-CABLE", quantity: 1}], payment: {card_token: "tok_visa"},
		shipping_address: {name: "C", line1: "1 Way", city: "Paris", postal_code: "75001", country: "FR"}}')
	# Stopped from outside (docker stop): finish the request in hand, then end.
	trap 'exit 0' TERM
	start=${EPOCHREALTIME/./}
	while :; do
		now=${EPOCHREALTIME/./}
		[ $((now - start)) -lt $((seconds * 1000000)) ] || break
		# Open model: request i is due at start + i/rate, whatever the
		# previous one took (a late one goes at once).
		due=$((start + i * 1000000 / rate))
		[ "$due" -gt "$now" ] && sleep "$(printf '%d.%06d' $(((due - now) / 1000000)) $(((due - now) % 1000000)))"
		code=$(curl -s --max-time $LOAD_TIMEOUT_S -o /tmp/load.out -w '%{http_code}' \
			-H 'Content-Type: application/json' -H "Idempotency-Key: cluster-$(cat /proc/sys/kernel/random/uuid)" \
			--data-binary "$body" "$G/orders")
		id=-
		[ "$code" = 202 ] && id=$(jq -r '.order_id // "-"' /tmp/load.out)
		now=${EPOCHREALTIME/./}
		echo "$((now / 1000)) $code $id"
		i=$((i + 1))
	done
}

terminal() {
	for id in "$@"; do
		curl -s "$G/orders/$id?wait=30" | jq -r --arg id "$id" '"\($id) \(.status // "MISSING")"'
	done
}

# Every node's /jsz stream details, each tagged with the node that answered
# ("from"), as one JSON array; a node that is down adds nothing. Every node
# reports a stream's peers, but only the leader's report is current.
jsz_all() {
	for node in $NATS_NODES; do
		curl -s --max-time 2 "http://$node:8222/jsz?streams=true&config=true" |
			jq --arg from "$node" '[.account_details[]?.stream_detail[]? | . + {from: $from}]'
	done | jq -s 'add // []'
}

streams() {
	jsz_all | jq -r 'group_by(.name)[] | .[0] as $s
		| "\($s.name) \($s.config.num_replicas) \($s.cluster.leader // "none") \(map(.from) | unique | length)"'
}

metrics() {
	curl -s --max-time 5 "http://$1:8080/metrics"
}

# Each stream and each durable (with consumers=true: its details and
# cluster view ride along), every node's report tagged with the node
# ("from").
jsz_consumers_all() {
	for node in $NATS_NODES; do
		curl -s --max-time 2 "http://$node:8222/jsz?consumers=true&config=true" |
			jq --arg from "$node" '[.account_details[]?.stream_detail[]? | (. + {from: $from}),
				(.consumer_detail[]? | select((.config.durable_name // "") != "") | . + {from: $from, name: "\(.stream_name)/\(.name)"})]'
	done | jq -s 'add // []'
}

# Not the node's own /healthz: that one also waits for every ephemeral
# consumer on the node (the console's and the load generator's ordered
# consumers, one replica each), and after the whole cluster was stopped a
# node was seen retrying the clean-up of a gone one ("Consumer assignment
# ... not cleaned up, retrying") for minutes while every stream and durable
# on it was current. The streams and durables are what the shop keeps.
caughtup() {
	local node=$1
	curl -sf --max-time 2 "http://$node:8222/healthz?js-enabled-only=true" >/dev/null || return 1
	# Each stream and durable, in its leader's own report: the node is the
	# leader, or a current, online peer.
	jsz_consumers_all | jq -e --arg n "$node" 'group_by(.name) | length > 0 and all(
		(map(select(.from == .cluster.leader)) | .[0]) as $l
		| $l != null and ($l.cluster.leader == $n
			or any($l.cluster.replicas[]?; .name == $n and .current and (.offline | not))))' >/dev/null
}

health() {
	curl -s --max-time 2 "http://$1:8222/healthz?details=true"
}

# keyed: how long one key may be retried, and the pause between tries.
KEYED_DEADLINE_S=90
KEYED_RETRY_PAUSE_S=0.2
KEYED_PACE_S=0.05 # between two keys of a worker: keeps them posting for seconds

keyed_worker() {
	local w=$1 k=$2 tag=$3 out=$4 key body code rc id start attempt
	for i in $(seq 1 "$k"); do
		key="$tag-$w-$i"
		# The key is the customer id too, so the orders service's own rows
		# tell how many orders each key made.
		body=$(jq -cn --arg c "$key" '{customer_id: $c, email: "k@example.com",
			items: [{sku: "SKU-CABLE", quantity: 1}], payment: {card_token: "tok_visa"},
			shipping_address: {name: "K", line1: "1 Way", city: "Paris", postal_code: "75001", country: "FR"}}')
		start=$SECONDS attempt=0
		while :; do
			attempt=$((attempt + 1))
			code=$(curl -s -m 10 -o "/tmp/keyed.$w" -w '%{http_code}' -H 'Content-Type: application/json' \
				-H "Idempotency-Key: $key" --data-binary "$body" "$G/orders")
			rc=$? id=-
			[ "$code" = 202 ] && id=$(jq -r '.order_id // "-"' "/tmp/keyed.$w" 2>/dev/null)
			echo "$key $attempt $code $id $rc" >>"$out/$w"
			[ "$code" = 202 ] && break
			[ $((SECONDS - start)) -ge $KEYED_DEADLINE_S ] && break
			sleep $KEYED_RETRY_PAUSE_S
		done
		sleep $KEYED_PACE_S
	done
}

keyed() {
	local workers=$1 k=$2 tag=$3 out=$4
	mkdir -p "$out"
	for w in $(seq 1 "$workers"); do keyed_worker "$w" "$k" "$tag" "$out" & done
	wait
}

cmd=$1
shift
"$cmd" "$@"

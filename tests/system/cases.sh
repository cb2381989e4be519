#!/usr/bin/env bash
# System test cases, run by tests/system/run.sh in a container on the compose
# network: they drive the real deployment with curl, read JSON with jq,
# inject raw events with shopctl and pause a service through the Docker
# socket. One TAP line per case.
set -uo pipefail

G=${GATEWAY:-http://gateway:8080}
MON=${NATS_MONITOR:-http://nats-1:8222}
# Every node's monitoring endpoint (the cluster nats-1..3).
NATS_MONITORS=${NATS_MONITORS:-http://nats-1:8222 http://nats-2:8222 http://nats-3:8222}
SHOPCTL=${SHOPCTL:-/src/build/bin/shopctl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

. "$(dirname "$0")/tap.sh"
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "failed: $*" "last body: $(head -c 600 "$tmp/body" 2>/dev/null)"; fi
}

# http METHOD PATH [BODY] [extra curl args...]: status in $code, body in $tmp/body, headers in $tmp/headers
http() {
	local method=$1 path=$2 body=${3-}
	shift 3 2>/dev/null || shift $#
	if [ -n "$body" ]; then
		code=$(curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" \
			-H "Content-Type: ${content_type:-application/json}" --data-binary "$body" "$@" "$G$path")
	else
		code=$(curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$method" "$@" "$G$path")
	fi
}
body() { jq -r "$1" "$tmp/body"; }
header() { grep -i "^$1:" "$tmp/headers" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# order JSON with the given items JSON and card token
order_json() {
	local items=$1 card=${2:-tok_visa}
	cat <<EOF
{"customer_id":"cust-42","email":"ada@example.com","items":$items,
 "payment":{"card_token":"$card"},
 "shipping_address":{"name":"Ada Lovelace","line1":"12 Analytical St","city":"London","postal_code":"N1 7AA","country":"GB"}}
EOF
}

place() { http POST /orders "$(order_json "$@")"; order_id=$(body .order_id); }
wait_final() { http GET "/orders/$1?wait=30"; }
status_of() { http GET "/orders/$1"; body .status; }
available() { curl -s "$G/products" | jq -r --arg s "$1" '.products[] | select(.sku == $s) | .available'; }
count_type() { jq --arg t "$1" '[.timeline[] | select(.type == $t)] | length' "$tmp/body"; }
# The read model is eventually consistent: poll (up to ~20 s) until the
# order shows STATUS, its timeline holds an event of TYPE, or the catalogue
# shows SKU at N.
eventually() {
	for _ in $(seq 1 200); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
has_status() { [ "$(status_of "$1")" = "$2" ]; }
has_event() { http GET "/orders/$1"; [ "$(count_type "$2")" -ge 1 ]; }
has_available() { [ "$(available "$1")" = "$2" ]; }
wait_status() { eventually has_status "$@"; }       # ORDER STATUS
wait_event() { eventually has_event "$@"; }         # ORDER TYPE
wait_available() { eventually has_available "$@"; } # SKU N
# service_ctl ACTION SERVICE: pauses or unpauses one of the deployment's
# containers through the Docker Engine API, whose socket run.sh lends the
# cases (curl speaks to it; the runner image has no docker client).
service_ctl() {
	local code
	code=$(curl -s -o "$tmp/ctl" -w '%{http_code}' --unix-socket /var/run/docker.sock -X POST \
		"http://docker/containers/${COMPOSE_PROJECT_NAME:-shoptest}-$2-1/$1")
	[ "$code" = 204 ] || { echo "# $1 $2: HTTP $code $(cat "$tmp/ctl")"; return 1; }
}
gateway_stream_msgs() {
	curl -s "$MON/jsz?streams=true" | jq '[.account_details[].stream_detail[] | select(.name == "GATEWAY") | .state.messages] | add // 0'
}

# --- probes ------------------------------------------------------------------
for s in gateway orders inventory payments shipping notifications console; do
	c=$(curl -s -o "$tmp/body" -w '%{http_code}' "http://$s:8080/readyz")
	check "$s answers /readyz with 200 and names itself" test "$c" = 200 -a "$(body .service)" = "$s"
done

# --- service registry -----------------------------------------------------------
# Every instance registers with the NATS service API ($SRV.PING/INFO/STATS);
# shopctl services finds them without a list. SHOP_SERVICES is every C service
# of docker-compose.yml (run.sh reads it from the compose file).
"$SHOPCTL" services --json >"$tmp/services.json" 2>"$tmp/services.err"
listed=$(jq -r '[.instances[].service] | sort | join(" ")' "$tmp/services.json")
want=$(echo "${SHOP_SERVICES:-}" | tr ' ' '\n' | grep . | sort | tr '\n' ' ' | sed 's/ $//')
check "shopctl services lists one instance of every service in docker-compose.yml" \
	test -n "$want" -a "$listed" = "$want"
check "every listed instance has a version, a status endpoint, and says ready" test "$(jq \
	'[.instances[] | (.version | length > 0) and (.endpoints | index("status") != null) and .status == "ready"] | all' \
	"$tmp/services.json")" = true
"$SHOPCTL" services >"$tmp/services.txt" 2>>"$tmp/services.err"
check "shopctl services prints one line per instance, sorted" \
	test "$(wc -l <"$tmp/services.txt")" = "$(jq '.instances | length' "$tmp/services.json")" -a \
	"$(cut -d' ' -f1 "$tmp/services.txt" | tr '\n' ' ' | sed 's/ $//')" = "$listed"

# --- catalogue ---------------------------------------------------------------
http GET /products
check "products lists the seeded catalogue" test "$code" = 200 -a "$(body '.products | length')" -ge 6
check "the catalogue has a product with zero stock" test "$(body '[.products[] | select(.available == 0)] | length')" -ge 1
check "products carry sku, name, price_cents, currency and available" \
	test "$(body '[.products[] | has("sku") and has("name") and has("price_cents") and has("currency") and has("available")] | all')" = true

# --- happy path ----------------------------------------------------------------
before=$(available SKU-KEYBOARD)
place '[{"sku":"SKU-KEYBOARD","quantity":2},{"sku":"SKU-MOUSE","quantity":1}]'
check "POST /orders answers 202 with order_id and PENDING" test "$code" = 202 -a "$(body .status)" = PENDING -a -n "$order_id"
check "POST /orders sets Location to the order" test "$(header Location)" = "/orders/$order_id"
happy=$order_id
wait_final "$happy"
check "a paid order reaches SHIPPED" test "$(body .status)" = SHIPPED
check "the shipped order is priced by inventory (2 x 8900 + 2900)" test "$(body .total_cents)" = 20700 -a "$(body .currency)" = EUR
sources=$(jq -r '[.timeline[].source] | unique | join(",")' "$tmp/body")
check "the timeline shows events from all five back-end services" \
	test "$sources" = "inventory,notifications,orders,payments,shipping"
check "the timeline runs from OrderPlaced to OrderShipped in order" \
	test "$(jq -r '.timeline[0].type' "$tmp/body")" = OrderPlaced -a "$(jq -r '[.timeline[].type] | index("OrderShipped") > index("PaymentAuthorized")' "$tmp/body")" = true
check "stock for the shipped order stays taken" wait_available SKU-KEYBOARD $((before - 2))

# --- declined card ---------------------------------------------------------------
before=$(available SKU-MOUSE)
place '[{"sku":"SKU-MOUSE","quantity":3}]' tok_declined
declined=$order_id
wait_final "$order_id"
check "a declined card cancels the order with payment_declined" test "$(body .status)" = CANCELLED -a "$(body .reason)" = payment_declined
wait_event "$order_id" StockReleased
check "a declined order's timeline shows PaymentDeclined and StockReleased" \
	test "$(count_type PaymentDeclined)" = 1 -a "$(count_type StockReleased)" = 1
check "stock of a declined order is released" wait_available SKU-MOUSE "$before"

# --- out of stock / unknown sku ------------------------------------------------
place '[{"sku":"SKU-VINTAGE","quantity":1}]'
wait_final "$order_id"
check "an order for a product with no stock is CANCELLED out_of_stock" test "$(body .status)" = CANCELLED -a "$(body .reason)" = out_of_stock
check "an out-of-stock order is never charged" test "$(count_type PaymentAuthorized)" = 0

before=$(available SKU-CABLE)
place '[{"sku":"SKU-CABLE","quantity":1},{"sku":"SKU-DOES-NOT-EXIST","quantity":1}]'
wait_final "$order_id"
check "an order with an unknown SKU is CANCELLED unknown_sku" test "$(body .status)" = CANCELLED -a "$(body .reason)" = unknown_sku
check "an unknown-SKU order reserves and charges nothing" \
	test "$(count_type StockReserved)" = 0 -a "$(count_type PaymentAuthorized)" = 0 -a "$(available SKU-CABLE)" = "$before"

# --- never oversell: five concurrent orders for the last three lamps -------------
limited=$(available SKU-LIMITED)
for i in 1 2 3 4 5; do
	curl -s -H 'Content-Type: application/json' --data-binary "$(order_json '[{"sku":"SKU-LIMITED","quantity":1}]')" \
		"$G/orders" >"$tmp/lamp.$i" &
done
wait
for i in 1 2 3 4 5; do
	curl -s "$G/orders/$(jq -r .order_id "$tmp/lamp.$i")?wait=30" | jq -r '"\(.status) \(.reason // "")"'
done | sort | uniq -c | awk '{$1 = $1; print}' >"$tmp/lamps"
check "five concurrent orders for three lamps: three ship, two are out_of_stock" \
	test "$limited" = 3 -a "$(cat "$tmp/lamps" | tr '\n' ,)" = "2 CANCELLED out_of_stock,3 SHIPPED,"
check "the lamps are sold out, never oversold" wait_available SKU-LIMITED 0

# --- flaky card ----------------------------------------------------------------
place '[{"sku":"SKU-CABLE","quantity":1}]' tok_flaky
wait_final "$order_id"
check "a flaky card is retried with backoff and the order ships" test "$(body .status)" = SHIPPED
check "a flaky card is charged exactly once" test "$(count_type PaymentAuthorized)" = 1

# --- cancellation -----------------------------------------------------------------
before=$(available SKU-HEADSET)
# Shipping is paused before the order exists and resumed once the cancel
# request is on the ORDERS stream behind OrderPaid. It then reads the two
# back to back: the request finds the shipment just scheduled, its dispatch
# seconds away. Cancelling while shipping runs would race that delay
# through the gateway, orders and the relay, and lose on a busy machine.
service_ctl pause shipping
paused=$?
place '[{"sku":"SKU-HEADSET","quantity":1}]'
cancel_id=$order_id
if [ "$paused" -eq 0 ] && wait_status "$cancel_id" PAID; then
	http POST "/orders/$cancel_id/cancel" ""
	check "cancelling a PAID order is accepted with 202" test "$code" = 202
	wait_event "$cancel_id" OrderCancellationRequested
	service_ctl unpause shipping
	wait_final "$cancel_id"
	check "a cancelled order ends CANCELLED customer_cancelled" test "$(body .status)" = CANCELLED -a "$(body .reason)" = customer_cancelled
	wait_event "$cancel_id" ShipmentCancelled
	wait_event "$cancel_id" PaymentRefunded
	wait_event "$cancel_id" StockReleased
	check "cancelling after payment refunds and releases stock" \
		test "$(count_type PaymentRefunded)" = 1 -a "$(count_type StockReleased)" = 1
	# A paid order is cancelled only once shipping, the owner of the
	# dispatch, has stopped the shipment.
	check "a paid order's cancel is requested from shipping, which stops the shipment before the order is cancelled" \
		test "$(count_type OrderCancellationRequested)" = 1 -a "$(count_type ShipmentCancelled)" = 1 -a \
		"$(jq -r '[.timeline[].type] | index("OrderCancellationRequested") < index("ShipmentCancelled") and index("ShipmentCancelled") < index("OrderCancelled")' "$tmp/body")" = true
	check "the cancelled order's stock is available again" wait_available SKU-HEADSET "$before"
	check "a cancelled order is never shipped" test "$(count_type ShipmentDispatched)" = 0
else
	service_ctl unpause shipping
	fail "cancelling a PAID order is accepted with 202" "shipping paused: $paused; order never reached PAID: $(cat "$tmp/body")"
fi
http POST "/orders/$happy/cancel" ""
check "cancelling a SHIPPED order is refused with 409" test "$code" = 409 -a "$(body .error.code)" = conflict
http POST "/orders/$cancel_id/cancel" ""
check "cancelling a CANCELLED order is refused with 409" test "$code" = 409
http POST "/orders/00000000-0000-7000-8000-000000000000/cancel" ""
check "cancelling an unknown order is 404" test "$code" = 404

# --- long-polls hold no thread ------------------------------------------------------
# 200 GETs wait at once (?wait=30), each on an order of its own that cannot
# finish while shipping is paused (it stops at PAID). Meanwhile POST /orders
# and /readyz still answer promptly: the gateway serves HTTP on 8 threads,
# so were a waiting GET to hold one, they would queue behind the waits.
# Then shipping resumes, and each GET is answered SHIPPED once its order
# ships, well before its deadline.
LP_N=200 LP_PROMPT_S=2 LP_WAIT_S=30
lp_ok=1 lp_why=()
mkdir -p "$tmp/lp"
service_ctl pause shipping || { lp_ok=0; lp_why+=("shipping could not be paused"); }
for i in $(seq 1 $LP_N); do
	curl -s -m 10 -H 'Content-Type: application/json' \
		--data-binary "$(order_json '[{"sku":"SKU-CABLE","quantity":1}]')" "$G/orders" | jq -r '.order_id // empty'
done >"$tmp/lp.ids"
[ "$(grep -c . "$tmp/lp.ids")" -eq $LP_N ] || { lp_ok=0; lp_why+=("only $(grep -c . "$tmp/lp.ids") of $LP_N orders placed"); }
lp_pids=()
i=0
while read -r id; do
	i=$((i + 1))
	curl -s -m $((LP_WAIT_S + 10)) -o "$tmp/lp/$i.body" -w '%{http_code} %{time_total}\n' \
		"$G/orders/$id?wait=$LP_WAIT_S" >"$tmp/lp/$i.code" &
	lp_pids+=($!)
done <"$tmp/lp.ids"
sleep 3 # every GET connected and waiting
lp_answered() { cat "$tmp"/lp/*.code 2>/dev/null | grep -c . ; }
early=$(lp_answered)
: >"$tmp/lp.probes"
for _ in $(seq 1 5); do
	curl -s -o /dev/null -m 10 -w "readyz %{http_code} %{time_total}\n" "$G/readyz" >>"$tmp/lp.probes"
	curl -s -o /dev/null -m 10 -w "post %{http_code} %{time_total}\n" -H 'Content-Type: application/json' \
		--data-binary "$(order_json '[{"sku":"SKU-CABLE","quantity":1}]')" "$G/orders" >>"$tmp/lp.probes"
	sleep 0.2
done
held=$((LP_N - $(lp_answered)))
service_ctl unpause shipping
resumed=$(date +%s%N)
wait "${lp_pids[@]}"
last_ms=$((($(date +%s%N) - resumed) / 1000000))
bad_probes=$(awk -v max=$LP_PROMPT_S '($1 == "readyz" && $2 != 200) || ($1 == "post" && $2 != 202) || $3 > max' "$tmp/lp.probes" | wc -l)
slowest_probe=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$tmp/lp.probes")
[ "$early" -eq 0 ] && [ "$held" -eq $LP_N ] || { lp_ok=0; lp_why+=("answered before the probes: $early; still waiting after them: $held of $LP_N"); }
if [ $lp_ok = 1 ] && [ "$bad_probes" -eq 0 ] && [ "$(grep -c . "$tmp/lp.probes")" -eq 10 ]; then
	pass "with $LP_N GETs waiting at once, 5 POST /orders and 5 /readyz answer promptly (slowest ${slowest_probe} s)"
else
	fail "with $LP_N GETs waiting at once, 5 POST /orders and 5 /readyz answer promptly (slowest ${slowest_probe} s)" \
		"${lp_why[@]}" "probes: $(tr '\n' ';' <"$tmp/lp.probes")"
fi
codes=$(cat "$tmp"/lp/*.code | awk '{ print $1 }' | sort | uniq -c | tr -s ' \n' ' ')
statuses=$(jq -rs 'map(.status // "none") | group_by(.) | map("\(.[0]) \(length)") | join(", ")' "$tmp"/lp/*.body 2>/dev/null)
late=$(awk -v max=$((LP_WAIT_S - 1)) '$2 > max' "$tmp"/lp/*.code | wc -l)
if [ "$statuses" = "SHIPPED $LP_N" ] && [ "$late" -eq 0 ] && [ "$held" -eq $LP_N ]; then
	pass "each of the $LP_N waiting GETs is answered SHIPPED when its order ships, before its deadline (the last ${last_ms} ms after shipping resumed)"
else
	fail "each of the $LP_N waiting GETs is answered SHIPPED when its order ships, before its deadline (the last ${last_ms} ms after shipping resumed)" \
		"HTTP codes: $codes" "statuses: $statuses" "answered at or after the deadline: $late"
fi

# --- idempotency -----------------------------------------------------------------
key="key-$(date +%s%N)"
body1=$(order_json '[{"sku":"SKU-CABLE","quantity":2}]')
http POST /orders "$body1" -H "Idempotency-Key: $key"
first=$(body .order_id); first_code=$code
http POST /orders "$body1" -H "Idempotency-Key: $key"
check "the same Idempotency-Key and body replay the original response" \
	test "$first_code" = 202 -a "$code" = 202 -a "$(body .order_id)" = "$first" -a "$(header Idempotent-Replayed)" = true
http POST /orders "$(echo "$body1" | jq '{shipping_address, payment, items, email, customer_id}')" -H "Idempotency-Key: $key"
check "the same body with other spacing and key order is the same request" \
	test "$code" = 202 -a "$(body .order_id)" = "$first"
http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":3}]')" -H "Idempotency-Key: $key"
check "the same Idempotency-Key with another body is refused with 422" test "$code" = 422 -a "$(body .error.code)" = idempotency_key_reused
key="race-$(date +%s%N)"
for i in $(seq 1 8); do
	curl -s -o "$tmp/race.$i" -w '%{http_code}\n' -H 'Content-Type: application/json' -H "Idempotency-Key: $key" \
		--data-binary "$body1" "$G/orders" >"$tmp/race-code.$i" &
done
wait
# Eight failures would also leave "one order id" among the answers (or
# none): each of the eight must be a 202 naming an order, and all the same.
check "eight concurrent requests with one Idempotency-Key all answer 202 with one order id" \
	test "$(cat "$tmp"/race-code.* | sort | uniq -c | awk '{print $1, $2}')" = "8 202" -a \
	"$(cat "$tmp"/race.* | jq -r '.order_id // empty' | grep -c .)" = 8 -a \
	"$(cat "$tmp"/race.* | jq -r '.order_id // empty' | sort -u | wc -l)" = 1

# --- bad input ---------------------------------------------------------------------
# fence: places a valid order and waits until orders has read its command.
# The gateway's relay publishes its outbox in order, so every command
# written before the fence is on the GATEWAY stream by then: a positive
# marker, where a sleep would pass whether or not a command was on its way.
fence() {
	place '[{"sku":"SKU-CABLE","quantity":1}]'
	wait_event "$order_id" OrderPlaced
}
fence
fenced=$?
msgs_before=$(gateway_stream_msgs)
http POST /orders '{"customer_id": "x", "items": [' ; check "malformed JSON is 400" test "$code" = 400 -a "$(body .error.code)" = malformed_json
http POST /orders '{}'
check "an empty order is 422 naming every missing field" \
	test "$code" = 422 -a "$(body '[.error.details[].field] | sort | join(",")')" = "/customer_id,/email,/items,/payment,/shipping_address"
http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":0}]')"
check "quantity 0 is 422 at /items/0/quantity" test "$code" = 422 -a "$(body '.error.details[0].field')" = /items/0/quantity
http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":1001}]')"
check "quantity 1001 is 422" test "$code" = 422 -a "$(body '.error.details[0].field')" = /items/0/quantity
many=$(jq -cn '[range(51) | {sku: "SKU-CABLE", quantity: 1}]')
http POST /orders "$(order_json "$many")"
check "51 items is 422 at /items" test "$code" = 422 -a "$(body '.error.details[0].field')" = /items
http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":1}]' | jq -c '.email = "not-an-email"')"
check "a bad email is 422 at /email" test "$code" = 422 -a "$(body '.error.details[0].field')" = /email
http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":1}]' | jq -c --arg n "$(head -c 300 /dev/zero | tr '\0' a)" '.shipping_address.name = $n')"
check "an oversized string is 422 at its path" test "$code" = 422 -a "$(body '.error.details[0].field')" = /shipping_address/name
http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":"2"}]')"
check "a quantity given as a string is 422" test "$code" = 422
head -c 70000 /dev/zero | tr '\0' ' ' >"$tmp/big"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$tmp/big" "$G/orders")
check "a body over 64 KiB is 413" test "$code" = 413 -a "$(body .error.code)" = payload_too_large
content_type=text/plain http POST /orders "$(order_json '[{"sku":"SKU-CABLE","quantity":1}]')"
check "a wrong Content-Type is 415" test "$code" = 415 -a "$(body .error.code)" = unsupported_media_type
http GET /orders/00000000-0000-7000-8000-000000000000
check "an unknown order is 404" test "$code" = 404 -a "$(body .error.code)" = not_found
http GET /orders/not-a-uuid
check "a malformed order id is 404" test "$code" = 404
http GET /nowhere
check "an unknown route is 404" test "$code" = 404
http DELETE /orders
check "a wrong method is 405 with Allow" test "$code" = 405 -a "$(header Allow)" = POST
http GET "/orders/$happy?wait=31"
check "wait above 30 seconds is 400" test "$code" = 400
check "errors share one shape with a details array" test "$(body '.error | has("code") and has("message") and (.details | type == "array")')" = true
# One valid order after the bad ones: once its command is in, any command
# the bad input had written would be too.
if [ "$fenced" -eq 0 ] && fence; then
	check "bad input publishes no command" test "$(gateway_stream_msgs)" = $((msgs_before + 1))
else
	fail "bad input publishes no command" "a valid order around it was never read: $(cat "$tmp/body")"
fi

# --- long poll -----------------------------------------------------------------
place '[{"sku":"SKU-CABLE","quantity":1}]'
start=$(date +%s%N)
http GET "/orders/$order_id?wait=1"
elapsed=$((($(date +%s%N) - start) / 1000000))
check "wait=1 on an order in flight answers within about a second" test "$code" = 200 -a "$elapsed" -ge 900 -a "$elapsed" -lt 5000

# --- duplicated and out-of-order events ------------------------------------------
# envelope TYPE SUBJECT DATA [ID] [SOURCE]: an event as its producer sends
# it: the source is the producer's ("/shop/<domain>", the domain of its type
# being its producer's, as contracts/index.json has it), which consumers
# check; SOURCE forges another.
envelope() {
	local id=${4:-$(cat /proc/sys/kernel/random/uuid)}
	local source=${5:-/shop/$(cut -d. -f2 <<<"$1")}
	jq -cn --arg id "$id" --arg type "$1" --arg subject "$2" --argjson data "$3" --arg source "$source" '{
		specversion: "1.0", id: $id, source: $source, type: $type,
		time: (now | todate), subject: $subject, datacontenttype: "application/json",
		correlationid: $id, causationid: $id,
		traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", data: $data}'
}
uuid() { cat /proc/sys/kernel/random/uuid; }
# inject KIND SUBJECT MSG_ID < PAYLOAD: publishes with shopctl and lists the
# stored message in $INJECTED as "STREAM SEQ KIND SUBJECT MSG_ID" for the bus
# check (js/bus-check.mjs), which holds every other message to every rule.
# KIND: injected (valid, but its Nats-Msg-Id is not its event id or it is
# not its producer's own) or bad (deliberately broken, to be dead-lettered:
# the bus check skips it and says so).
INJECTED=${SHOP_INJECTED:-$tmp/injected}
inject() {
	local out
	if ! out=$("$SHOPCTL" publish "$2" "$3"); then
		echo "# shopctl publish $2 $3: not stored anew: $out"
		return 1
	fi
	read -r _ stream seq <<<"$out" # "stored STREAM SEQ"
	echo "$stream $seq $1 $2 $3" >>"$INJECTED"
}
addr='{"name":"Ada Lovelace","line1":"12 Analytical St","city":"London","postal_code":"N1 7AA","country":"GB"}'
# place_order_data ORDER SKU: a PlaceOrder (v2: no card) command's data for one item.
place_order_data() {
	echo "{\"order_id\":\"$1\",\"customer_id\":\"c\",\"email\":\"a@example.com\",\"items\":[{\"sku\":\"$2\",\"quantity\":1}],\"shipping_address\":$addr}"
}
# submit_card ORDER [TOKEN]: the order's card, as the gateway sends it with
# the PlaceOrder above (SubmitCard on CARDS, which only payments reads). Not
# listed for the bus check: it may not read CARDS, a work queue whose
# messages are gone once payments took them.
submit_card() {
	envelope shop.cards.submit_card.v1 "$1" \
		"{\"order_id\":\"$1\",\"customer_id\":\"c\",\"payment\":{\"card_token\":\"${2:-tok_visa}\"}}" "" /shop/gateway |
		"$SHOPCTL" publish cards.command.submit_card.v1 "card-$1" >/dev/null
}
# A copy that repeated the first message word for word would also be stopped
# by the orders table (insert if absent), the state machines and the
# timeline (ON CONFLICT on the event id): it would pass without the inbox.
# So each copy below keeps a CloudEvents id already handled (and, with a new
# Nats-Msg-Id, is stored again by JetStream) but names another order, one
# that no other guard has seen. The inbox, keyed by (consumer, event id)
# alone, is all that stands between it and a second effect.
dup_order=$(uuid)
dup_copy=$(uuid)
before=$(available SKU-MONITOR)
cmd=$(envelope shop.gateway.place_order.v2 "$dup_order" "$(place_order_data "$dup_order" SKU-MONITOR)")
echo "$cmd" | inject injected gateway.command.place_order.v2 "dup-a-$dup_order"
submit_card "$dup_order"
wait_event "$dup_order" OrderPlaced # the gateway knows it only from then on
wait_final "$dup_order"
# The copy goes out once the first is handled: orders takes its commands on
# several threads, so two published together could be handled either way
# round. The marker that it was handled: orders counts, in /metrics, every
# command it found in its inbox; without the inbox the copy would count as
# "ok", place a second order and take a second monitor, and the wait fails.
place_order_duplicates() {
	curl -s http://orders:8080/metrics | awk '
		/^shop_messages_consumed_total[{]service="orders",durable="orders",subject="gateway.command.place_order.v2",outcome="duplicate"[}]/ { n = $2 }
		END { print n + 0 }'
}
dups_before=$(place_order_duplicates)
more_duplicates() { [ "$(place_order_duplicates)" -gt "$dups_before" ]; }
envelope shop.gateway.place_order.v2 "$dup_copy" "$(place_order_data "$dup_copy" SKU-MONITOR)" "$(jq -r .id <<<"$cmd")" |
	inject injected gateway.command.place_order.v2 "dup-b-$dup_order"
if eventually more_duplicates; then
	http GET "/orders/$dup_order"
	check "a command published twice with one CloudEvents id places one order" \
		test "$(body .status)" = SHIPPED -a "$(count_type OrderPlaced)" = 1 -a "$(count_type StockReserved)" = 1 -a "$(count_type PaymentAuthorized)" = 1
	wait_available SKU-MONITOR $((before - 1))
	check "a duplicated command takes stock once" test "$(available SKU-MONITOR)" = $((before - 1))
	http GET "/orders/$dup_copy"
	check "a duplicated command places no second order" test "$code" = 404
else
	for name in "a command published twice with one CloudEvents id places one order" \
		"a duplicated command takes stock once" "a duplicated command places no second order"; do
		fail "$name" "orders never settled the copy as a duplicate (metrics: $(place_order_duplicates), before: $dups_before)"
	done
fi

# An event published again with its CloudEvents id (as a relay that lost its
# ack would): the happy order's OrderShipped, naming the declined order, which
# has an address on file and no "shipped" e-mail. Without notifications' inbox
# it would record one and announce it with NotificationSent.
http GET "/orders/$happy"
shipped_id=$(jq -r '.timeline[] | select(.type == "OrderShipped") | .event_id' "$tmp/body")
envelope shop.orders.order_shipped.v1 "$declined" "{\"order_id\":\"$declined\",\"shipment_id\":\"$(uuid)\"}" "$shipped_id" |
	inject injected orders.event.order_shipped.v1 "dup-event-$shipped_id"
# The marker: notifications reads the ORDERS stream and the gateway the
# NOTIFICATIONS stream in order, so once a later order's "shipped" e-mail is
# in its timeline, any e-mail the copy caused is in the declined order's.
place '[{"sku":"SKU-CABLE","quantity":1}]'
shipped_mails='[.timeline[] | select(.type == "NotificationSent" and .detail == "order_shipped")] | length'
has_shipped_mail() { http GET "/orders/$1"; [ "$(body "$shipped_mails")" -ge 1 ]; }
if eventually has_shipped_mail "$order_id"; then
	http GET "/orders/$declined"
	check "an event published again with its CloudEvents id sends no second e-mail" \
		test "$(body .status)" = CANCELLED -a "$(body "$shipped_mails")" = 0 -a "$(count_type OrderShipped)" = 0
else
	fail "an event published again with its CloudEvents id sends no second e-mail" "the marker order's e-mail never came: $(cat "$tmp/body")"
fi

ooo=$(uuid)
fake_pay=$(uuid)
fake_ship=$(uuid)
# The order's last events first, then the command that starts it. Orders
# defers both until the order reaches the state they follow (they travel on
# other streams than its own events). Shipping no longer reads the PAYMENTS
# stream: it schedules on the OrderPaid that orders emits once the order is
# PAID, whichever PaymentAuthorized (the fake or the real one) got it there.
envelope shop.shipping.shipment_dispatched.v1 "$ooo" "{\"order_id\":\"$ooo\",\"shipment_id\":\"$fake_ship\"}" |
	inject injected shipping.event.shipment_dispatched.v1 "ooo-1-$ooo"
envelope shop.payments.payment_authorized.v1 "$ooo" "{\"order_id\":\"$ooo\",\"payment_id\":\"$fake_pay\",\"amount_cents\":2900,\"currency\":\"EUR\",\"attempts\":1}" |
	inject injected payments.event.payment_authorized.v1 "ooo-2-$ooo"
envelope shop.gateway.place_order.v2 "$ooo" "$(place_order_data "$ooo" SKU-MOUSE)" |
	inject injected gateway.command.place_order.v2 "ooo-3-$ooo"
submit_card "$ooo"
# The command went to the bus, not through the gateway, which knows the order
# only once OrderPlaced reaches it (until then it answers 404 at once, long-poll
# or not): wait for that, then for the end.
wait_event "$ooo" OrderPlaced
wait_final "$ooo"
check "events delivered before the ones they follow still end in a legal final state" \
	test "$(body .status)" = SHIPPED
check "an out-of-order order passed through its states in order" \
	test "$(jq -r '[.timeline[] | select(.source == "orders") | .type] | join(",")' "$tmp/body")" = "OrderPlaced,OrderReserved,OrderPaid,OrderShipped"

# --- the card token goes only to payments (issue 7) ------------------------------
# An order placed with curl is paid with the card it carried: the gateway
# sent the order to orders without it (PlaceOrder v2) and the card to
# payments alone (SubmitCard on CARDS); payments charged once it had both the
# card and the reservation. contracts.sh then reads every message of every
# stream but CARDS and finds no card token in any (js/bus-check.mjs).
place '[{"sku":"SKU-CABLE","quantity":1}]'
card_order=$order_id
wait_final "$card_order"
check "an order placed with curl is paid with its card (SubmitCard to payments) and ships" \
	test "$(body .status)" = SHIPPED -a "$(count_type PaymentAuthorized)" = 1 -a "$(count_type OrderPaid)" = 1
check "its OrderPlaced is v2: the timeline's OrderPlaced came from orders, with no card in the read model" \
	test "$(count_type OrderPlaced)" = 1 -a "$(grep -c card_token "$tmp/body")" = 0
# A PlaceOrder v1, as one stored on the gateway stream before the upgrade
# (with its card token): orders still places the order, but emits OrderPlaced
# v2 without the token; no SubmitCard ever comes for it, so payments never
# charges it and the deadline cancels it (checked at the end of the cases).
v1_order=$(uuid)
v1_token="tok_v1_$(uuid | cut -c1-8)"
envelope shop.gateway.place_order.v1 "$v1_order" \
	"$(place_order_data "$v1_order" SKU-CABLE | jq -c --arg t "$v1_token" '.payment = {card_token: $t}')" |
	inject injected gateway.command.place_order.v1 "v1-$v1_order"
if wait_event "$v1_order" OrderPlaced; then
	check "a stored PlaceOrder v1 is still placed, as OrderPlaced v2" test "$(count_type OrderPlaced)" = 1
else
	fail "a stored PlaceOrder v1 is still placed, as OrderPlaced v2" "no OrderPlaced: $(cat "$tmp/body")"
fi

# --- the console: GET /stream -------------------------------------------------
# An order's events read live with curl from the console's SSE stream, while
# the order is placed, against the gateway's timeline of the same order.
# Orders is paused from before the POST until the stream is open, so no
# event of the saga can precede the stream (only the gateway's PlaceOrder
# command may, and commands are left out of the comparison).
C=${CONSOLE:-http://console:8080}
sse_json() { sed -n 's/^data: //p' "$1"; } # the events of an SSE capture, one JSON a line
stream_opened() { grep -q '^: connected' "$1"; }
stream_events_count() { sse_json "$1" | jq -s '[.[] | select(.type | startswith("shop.gateway.") | not)] | length'; }
timeline_count() { http GET "/orders/$1"; jq '.timeline | length' "$tmp/body"; }
stream_caught_up() { [ "$(stream_events_count "$1")" -ge "$(timeline_count "$2")" ]; }
notifications_done() { http GET "/orders/$1"; [ "$(count_type NotificationSent)" -ge 2 ]; }

# Ephemeral consumers on the cluster (the console's): every other is a
# durable. A durable is on all three nodes, like its stream, but a watch's
# consumer has one replica, on one node: every node is asked, and each
# consumer counted once.
ephemeral_consumers() {
	local m
	for m in $NATS_MONITORS; do
		curl -s --max-time 5 "$m/jsz?consumers=true&config=true" |
			jq -c '[.account_details[]?.stream_detail[]? | .name as $s | .consumer_detail[]?
				| select((.config.durable_name // "") == "") | "\($s)/\(.name)"]'
	done | jq -s 'add // [] | unique | length'
}
ephemeral_consumers_are() { [ "$(ephemeral_consumers)" = "$1" ]; }
console_baseline=$(ephemeral_consumers)
t0=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
service_ctl pause orders
place '[{"sku":"SKU-MOUSE","quantity":1}]'
live=$order_id
curl -sN --max-time 60 -D "$tmp/stream.headers" "$C/stream?order=$live" >"$tmp/stream.live" &
stream_pid=$!
eventually stream_opened "$tmp/stream.live"
service_ctl unpause orders
check "the console's stream answers text/event-stream" \
	grep -qi '^content-type: text/event-stream' "$tmp/stream.headers"
wait_final "$live"
eventually notifications_done "$live"
eventually stream_caught_up "$tmp/stream.live" "$live"
sleep 1 # anything extra (a duplicate) would come now
kill "$stream_pid" 2>/dev/null; wait "$stream_pid" 2>/dev/null
http GET "/orders/$live"
cp "$tmp/body" "$tmp/stream.timeline"
sse_json "$tmp/stream.live" | jq -s '[.[] | select(.type | startswith("shop.gateway.") | not)]' >"$tmp/stream.events"
check "the console streams a SHIPPED order's saga: every event of its timeline, each once" \
	test "$(jq -c '[.[].id] | sort' "$tmp/stream.events")" = "$(jq -c '[.timeline[].event_id] | sort' "$tmp/stream.timeline")" \
	-a "$(jq 'length' "$tmp/stream.events")" -ge 9
check "the console's order stream holds nothing but that order's messages" \
	test "$(sse_json "$tmp/stream.live" | jq -s --arg id "$live" '[.[] | select(.subject != $id)] | length')" = 0
# In order: every event after the one that caused it (within the order), and
# the order's own state changes (one stream) as in the timeline.
# Streams are read side by side (one consumer each), so the order
# holds within a stream: an event and its cause of another stream can come
# either way round when they were stored milliseconds apart.
check "the console streams every event after the event of its stream that caused it" \
	test "$(jq '[.[].id] as $ids | [.[].type | split(".")[1]] as $streams | [to_entries[]
		| .key as $i | .value.causationid as $c | ($ids | index($c)) as $j
		| select($j != null and $j >= $i and $streams[$j] == $streams[$i])] | length' "$tmp/stream.events")" = 0 \
	-a "$(jq '[.[].id] as $ids | [.[] | select(.causationid as $c | $ids | index($c))] | length' "$tmp/stream.events")" -ge 7
check "the console streams the order's state changes in the timeline's order" \
	test "$(jq -c '[.[] | select(.source == "/shop/orders") | .id]' "$tmp/stream.events")" = \
	"$(jq -c '[.timeline[] | select(.source == "orders") | .event_id]' "$tmp/stream.timeline")"

# From a time: the same order replayed, its PlaceOrder command included.
curl -sN --max-time 4 "$C/stream?order=$live&since=$t0" >"$tmp/stream.since"
check "a stream from a time before the order replays its command and every event" \
	test "$(sse_json "$tmp/stream.since" | jq -s -c '[.[] | select(.type | startswith("shop.gateway.") | not) | .id] | sort')" = \
	"$(jq -c '[.timeline[].event_id] | sort' "$tmp/stream.timeline")" \
	-a "$(sse_json "$tmp/stream.since" | jq -s '[.[] | select(.type == "shop.gateway.place_order.v2")] | length')" = 1
# Logs on the bus: every instance publishes its log lines on
# logs.<service>.<level>. The console logs a line per stream client; the
# tails run until they have their lines, while clients come and go.
"$SHOPCTL" logs --max 1 --seconds 20 'logs.console.info' >"$tmp/logs.txt" 2>"$tmp/logs.err" &
logs_pid=$!
"$SHOPCTL" logs --json --max 2 --seconds 20 'logs.console.*' >"$tmp/logs.json" 2>>"$tmp/logs.err" &
logs_json_pid=$!
for _ in $(seq 1 40); do
	kill -0 "$logs_pid" 2>/dev/null || kill -0 "$logs_json_pid" 2>/dev/null || break
	curl -sN --max-time 0.5 "$C/stream" >/dev/null
done
wait "$logs_pid" "$logs_json_pid"
console_id=$(jq -r '.instances[] | select(.service == "console") | .id' "$tmp/services.json")
check "shopctl logs tails the console's lines on logs.console.info, one line each, with its instance" \
	grep -qE "^[0-9T:.Z-]+ info  console/$console_id stream client (joined|left)" "$tmp/logs.txt"
check "a log line on the bus is JSON with time, level, service, instance and message" \
	test "$(jq -s --arg id "$console_id" '[.[] | (.ts | length > 0) and .service == "console" and .level == "info" and .instance == $id and (.msg | length > 0)] | length == 2 and all' "$tmp/logs.json")" = true
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$C/stream?since=yesterday")
check "the console refuses a malformed since with 400" test "$code" = 400 -a "$(body .error.code)" = invalid_since
# With no stream client left, the console holds only its overview's
# consumers (one per stream of the contracts but the confidential
# CARDS, which it may not read, and one for the stock): the count it had
# before the stream cases.
check "with no stream client left the console holds only its overview's consumers" \
	eventually ephemeral_consumers_are "$console_baseline"
check "the console's overview holds one consumer per stream and one for the stock" \
	test "$console_baseline" = "$(($(curl -s "$MON/jsz?streams=true" | jq '[.account_details[].stream_detail[] | select(.name != "DEADLETTER" and .name != "CARDS")] | length') + 1))"
via_code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "$(order_json '[{"sku":"SKU-CABLE","quantity":1}]')" "$C/orders")
via_console=$(body .order_id)
wait_final "$via_console"
check "an order placed through the console is the gateway's, and ships" \
	test "$via_code" = 202 -a "$(body .order_id)" = "$via_console" -a "$(body .status)" = SHIPPED

# --- the console's overview: what the page draws, as JSON -------------------
# Everything comes from NATS: the registry, the monitoring endpoint, consumer
# info, the streams and the logs subjects.
overview() { curl -s -o "$tmp/overview" -w '%{http_code}' "$C/api/overview"; }
ov() { jq -r "$1" "$tmp/overview"; }
all_up() { overview >/dev/null && [ "$(ov '[.services[] | select(.state == "up") | .service] | sort | join(" ")')" = "$want" ]; }
check "the console's overview lists every service of docker-compose.yml up, from the registry" eventually all_up
check "each service's instances on the overview are the registry's, each ready" \
	test "$(ov '[.services[].instances[] | select(.state == "ready") | .id] | sort | join(" ")')" = \
	"$(jq -r '[.instances[].id] | sort | join(" ")' "$tmp/services.json")"
check "the overview shows the three NATS nodes up with their server names, and PostgreSQL up" \
	test "$(ov '[.nats[] | select(.state == "up" and (.name | length > 0))] | length')" = 3 -a "$(ov .postgres.state)" = up
check "the overview has a pending and an in-flight series for every durable of the contracts" \
	test "$(ov '[.consumers[] | (.pending | length > 0) and (.ack_pending | length > 0) and (.pending[-1] | type == "number")] | (length >= 10 and all)')" = true
check "the overview has an outbox backlog series for each of the six services" \
	test "$(ov '[.services[] | select(.outbox_backlog[-1] | type == "number")] | length')" = 6
check "the overview counts the orders accepted and shipped in the last two minutes" \
	test "$(ov '.orders.accepted_per_s | add')" -ge 1 -a "$(ov '.orders.shipped_per_s | add')" -ge 1 -a \
	"$(ov '.orders.accepted_per_s | length')" = 120
stock_matches() {
	overview >/dev/null
	[ "$(ov '[.stock[] | {sku, available}] | sort_by(.sku)')" = \
		"$(curl -s "$G/products" | jq '[.products[] | {sku, available}] | sort_by(.sku)')" ]
}
check "the overview's stock per SKU is the gateway's catalogue, from StockLevelChanged events" eventually stock_matches
code=$(curl -s -o "$tmp/console.order" -w '%{http_code}' "$C/api/orders/$live")
check "the console's order endpoint gives a SHIPPED order's saga: the gateway's timeline and its command" \
	test "$code" = 200 -a "$(jq -r .status "$tmp/console.order")" = SHIPPED -a \
	"$(jq -c '[.timeline[] | select(.type != "PlaceOrder") | .event_id] | sort' "$tmp/console.order")" = \
	"$(jq -c '[.timeline[].event_id] | sort' "$tmp/stream.timeline")" -a \
	"$(jq '[.timeline[] | select(.type == "PlaceOrder" and .source == "gateway")] | length' "$tmp/console.order")" = 1
check "the console's order timeline is in time order" \
	test "$(jq '[.timeline[].time] | . == sort' "$tmp/console.order")" = true
code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$C/api/orders/no-such-order")
check "the console answers 404 for an order it has not seen" test "$code" = 404 -a "$(body .error.code)" = not_found
place '[{"sku":"SKU-MOUSE","quantity":1}]' tok_flaky
flaky=$order_id
warned() {
	overview >/dev/null && [ "$(jq --arg id "$flaky" '[.logs[] | select(.level == "warn" and .service == "payments" and .order_id == $id)] | length' "$tmp/overview")" -ge 1 ]
}
check "a service's warning reaches the overview's latest warnings over logs.*.warn" eventually warned
wait_final "$flaky"

# --- dead letters: poison and forged events, shopctl dlq -------------------------
# Everything here is published by hand on payments.event.payment_authorized.v1
# (consumed by orders and the gateway) and listed in $INJECTED:
#   - poison: data the schema refuses, and a payload that is not JSON;
#   - forged: a PaymentAuthorized for a waiting order from another source
#     than payments (both consumers refuse it), and one from payments' source
#     for another amount than the order's total (orders refuses it; the
#     gateway, which does not judge amounts, puts it in the timeline).
# Payments is paused meanwhile, so nothing but a forgery could pay the order.
# Each lands in the dead-letter stream with its reason; the order stays
# RESERVED; replaying the amount forgery twice changes nothing (the gateway's
# inbox has it, orders refuses it again); orders keep completing; the real
# payment pays the order once payments is back; then the case purges the
# payments dead letters it made.
dlq_t0=$(date +%s%N)
payauth=payments.event.payment_authorized.v1
dlq_list() { "$SHOPCTL" dlq list PAYMENTS >"$tmp/dlq" 2>"$tmp/dlq.err"; }
# dead_seen PATTERN N: at least N dead letters of PAYMENTS match PATTERN.
dead_seen() { dlq_list && [ "$(grep -cE -- "$1" "$tmp/dlq")" -ge "$2" ]; }
# dead_check NAME PATTERN N: waits for N dead letters matching PATTERN.
dead_check() {
	if eventually dead_seen "$2" "$3"; then pass "$1"
	else fail "$1" "want $3 lines matching: $2" "listed: $(cat "$tmp/dlq" "$tmp/dlq.err")"; fi
}
# consumed SVC OUTCOME: SVC's count of PaymentAuthorized settled as OUTCOME.
consumed() {
	curl -s "http://$1:8080/metrics" | awk -v svc="$1" -v outcome="$2" -v subj="$payauth" '
		$1 ~ /^shop_messages_consumed_total[{]/ && index($1, "service=\"" svc "\"") &&
		index($1, "subject=\"" subj "\"") && index($1, "outcome=\"" outcome "\"") { n += $2 }
		END { print n + 0 }'
}
line_start='^[0-9]+ payments[.]event[.]payment_authorized[.]v1 PAYMENTS'
if dlq_list && [ ! -s "$tmp/dlq" ]; then pass "no payments event is dead-lettered before the injections"
else fail "no payments event is dead-lettered before the injections" "listed: $(cat "$tmp/dlq" "$tmp/dlq.err")"; fi

poison=$(uuid)
envelope shop.payments.payment_authorized.v1 "$poison" \
	"{\"order_id\":\"$poison\",\"payment_id\":\"$(uuid)\",\"amount_cents\":\"lots\",\"currency\":\"EUR\",\"attempts\":1}" |
	inject bad "$payauth" "poison-$poison"
printf '{"specversion": "1.0", "id": "%s", ' "$poison" | inject bad "$payauth" "poison-raw-$poison"
for who in orders gateway; do
	dead_check "a poison event (data against its schema) is dead-lettered by $who with the path that is wrong" \
		"$line_start[.]$who deliveries=1 order=$poison reason: data violates the contract: /amount_cents " 1
	dead_check "a payload that is not JSON is dead-lettered by $who as a malformed envelope" \
		"$line_start[.]$who deliveries=1 order=- reason: malformed envelope" 1
done
place '[{"sku":"SKU-CABLE","quantity":1}]'
wait_final "$order_id"
check "orders keep completing past the dead-lettered poison" test "$(body .status)" = SHIPPED

service_ctl pause payments
place '[{"sku":"SKU-CABLE","quantity":1}]'
held=$order_id
priced() { http GET "/orders/$1"; [ "$(body .status)" = RESERVED ] && [ "$(body .total_cents)" != null ]; }
eventually priced "$held"
total=$(body .total_cents) currency=$(body .currency)
paid_before=$(consumed orders ok)
payment() { # payment CENTS: a PaymentAuthorized's data for the held order
	echo "{\"order_id\":\"$held\",\"payment_id\":\"$(uuid)\",\"amount_cents\":$1,\"currency\":\"$currency\",\"attempts\":1}"
}
envelope shop.payments.payment_authorized.v1 "$held" "$(payment "$total")" "" /shop/inventory |
	inject bad "$payauth" "forged-source-$held"
wrong=$(envelope shop.payments.payment_authorized.v1 "$held" "$(payment 1)")
wrong_id=$(jq -r .id <<<"$wrong")
echo "$wrong" | inject injected "$payauth" "$wrong_id"
for who in orders gateway; do
	dead_check "a PaymentAuthorized from another source than payments is dead-lettered by $who, saying whose it is" \
		"$line_start[.]$who deliveries=1 order=$held reason: source /shop/inventory is not the producer of shop[.]payments[.]payment_authorized[.]v1 [(]/shop/payments[)]$" 1
done
amount_reason="payment_authorized for 1 $currency does not match the order's total of $total $currency"
dead_check "a PaymentAuthorized for another amount than the order's total is dead-lettered by orders with both amounts" \
	"$line_start[.]orders deliveries=1 order=$held reason: $amount_reason" 1
wrong_seq=$(grep -E "$line_start[.]orders .*order=$held reason: $amount_reason" "$tmp/dlq" | cut -d' ' -f1 | head -1)
"$SHOPCTL" dlq show "$wrong_seq" >"$tmp/dlq.show" 2>&1
check "shopctl dlq show prints the dead letter's line and the forged envelope unchanged" \
	test "$(head -1 "$tmp/dlq.show" | cut -d' ' -f1)" = "$wrong_seq" -a "$(sed -n 2p "$tmp/dlq.show" | jq -c .)" = "$(jq -c . <<<"$wrong")"
# Orders settled both forgeries (their dead letters are there) and applied
# no payment: with payments paused none is real, and a forged one applied
# would have counted as "ok" and paid the order.
http GET "/orders/$held"
check "no forged PaymentAuthorized was applied: the order stays RESERVED, unpaid" \
	test "$(consumed orders ok)" = "$paid_before" -a "$(body .status)" = RESERVED -a "$(count_type OrderPaid)" = 0
timeline_before=$(jq '.timeline | length' "$tmp/body")

# Replaying goes through the inboxes: the gateway has the event (a
# duplicate), orders refuses it again under a new dead letter. Twice.
# replay SEQ: shopctl dlq replay; its copy on PAYMENTS listed as injected.
replay() {
	local out subject stream seq
	if ! out=$("$SHOPCTL" dlq replay "$1" 2>&1); then
		echo "# shopctl dlq replay $1: $out"
		return 1
	fi
	read -r _ _ _ subject _ stream seq _ <<<"$out" # "SEQ replayed on SUBJECT as STREAM SEQ"
	echo "$stream $seq injected $subject replay-of-$1" >>"$INJECTED"
}
for round in 1 2; do
	dups_before=$(consumed gateway duplicate)
	old_seq=$wrong_seq
	replay "$old_seq"
	refused_again() {
		dead_seen "$line_start[.]orders deliveries=1 order=$held reason: $amount_reason" 1 &&
			! grep -qE "^$old_seq " "$tmp/dlq" && [ "$(consumed gateway duplicate)" -gt "$dups_before" ]
	}
	if eventually refused_again; then
		wrong_seq=$(grep -E "$line_start[.]orders .*order=$held reason: $amount_reason" "$tmp/dlq" | cut -d' ' -f1 | head -1)
		http GET "/orders/$held"
		check "shopctl dlq replay (round $round) goes through the inboxes and changes nothing: a duplicate for the gateway, refused again by orders" \
			test "$wrong_seq" != "$old_seq" -a "$(body .status)" = RESERVED -a "$(jq '.timeline | length' "$tmp/body")" = "$timeline_before" \
			-a "$(consumed orders ok)" = "$paid_before"
	else
		fail "shopctl dlq replay (round $round) goes through the inboxes and changes nothing" \
			"replayed $old_seq; gateway duplicates $dups_before -> $(consumed gateway duplicate)" "listed: $(cat "$tmp/dlq")"
	fi
done
service_ctl unpause payments
wait_final "$held"
check "the real PaymentAuthorized still pays the order once payments is back: SHIPPED, paid once" \
	test "$(body .status)" = SHIPPED -a "$(count_type OrderPaid)" = 1
"$SHOPCTL" dlq purge PAYMENTS >/dev/null 2>&1
if dlq_list && [ ! -s "$tmp/dlq" ]; then pass "shopctl dlq purge removes the dead letters the case made"
else fail "shopctl dlq purge removes the dead letters the case made" "listed: $(cat "$tmp/dlq" "$tmp/dlq.err")"; fi
echo "# dead-letter cases: $((($(date +%s%N) - dlq_t0) / 1000000)) ms"

# --- the stored PlaceOrder v1, a deadline later -----------------------------------
# SHOP_ORDER_DEADLINE_MS (60 s in compose) after it was placed: cancelled as
# timeout, its stock given back, never charged.
v1_done() { http GET "/orders/$v1_order"; [ "$(body .status)" = CANCELLED ]; }
for _ in 1 2 3 4; do v1_done && break; wait_final "$v1_order"; done
check "the order of a stored PlaceOrder v1 (its card never sent to payments) is cancelled at the deadline, never charged" \
	test "$(body .status)" = CANCELLED -a "$(body .reason)" = timeout -a "$(count_type PaymentAuthorized)" = 0

# --- /metrics on every service -----------------------------------------------
# Prometheus's own checker reads each page (parse errors and lint advice both
# fail), and the counters say what the cases above made the services do.
metrics_bad=""
for svc in gateway orders inventory payments shipping notifications console; do
	if ! curl -sf "http://$svc:8080/metrics" >"$tmp/metrics.$svc" ||
		! promtool check metrics <"$tmp/metrics.$svc" >"$tmp/promtool.$svc" 2>&1; then
		metrics_bad="$metrics_bad $svc: $(head -c 300 "$tmp/promtool.$svc" 2>/dev/null)"
	fi
done
check "every service serves /metrics that promtool accepts without advice" test -z "$metrics_bad"
# sum_metric FILE NAME LABEL_MATCH: the sum of NAME's samples whose labels contain LABEL_MATCH.
sum_metric() {
	awk -v name="$2" -v want="$3" '$1 ~ "^" name "\\{" && index($1, want) { s += $2 } END { print s + 0 }' "$1"
}
check "orders counts the commands it handled and inventory the events it published" \
	test "$(sum_metric "$tmp/metrics.orders" shop_messages_consumed_total 'outcome="ok"')" -gt 0 -a \
	"$(sum_metric "$tmp/metrics.inventory" shop_messages_published_total 'subject="inventory.event.stock_reserved.v1"')" -gt 0
check "the gateway counts the orders it accepted" \
	test "$(sum_metric "$tmp/metrics.gateway" shop_http_requests_total 'status="202"')" -gt 0

echo "# system cases: $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

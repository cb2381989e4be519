#!/usr/bin/env bash
# The live contract checks, after the other system cases, against the same
# deployment (run.sh calls it with the number of TAP lines so far):
#   1. js/bus-check.mjs reads every message the cases left on the streams and
#      validates it (CloudEvents 1.0, envelope, data schema, index; the
#      poison and forged events the cases list in $logs/injected are
#      skipped, and counted), checks
#      every index message was produced and consumed, and that the durables
#      are exactly the index's;
#   2. the JavaScript follower (js/follow.mjs) follows an order placed now
#      until it is SHIPPED or CANCELLED, and must print its whole journey.
# Both run in the node image (infra/docker/Dockerfile, target node).
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
net="${COMPOSE_PROJECT_NAME:-shoptest}_default"
# The messages the cases injected themselves, listed by them (cases.sh):
# the bus check skips the deliberately bad ones and says how many.
logs=${SYSTEM_LOGS:-build/system-logs}
mkdir -p "$logs"
# The JavaScript clients connect as the read-only observer (docs/security.md).
[ -n "${SHOP_NATS_PASSWORD_OBSERVER:-}" ] || eval "$(tools/nats-env.sh)"
node=(docker run --rm --network "$net" -e SHOP_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222
	-e SHOP_NATS_USER=observer -e SHOP_NATS_PASSWORD="$SHOP_NATS_PASSWORD_OBSERVER"
	-v "$PWD/$logs:/logs:ro" -e SHOP_INJECTED=/logs/injected "shop-node:${SHOP_TAG:-latest}")

if ! docker build -q -t "shop-node:${SHOP_TAG:-latest}" --target node -f infra/docker/Dockerfile . >/dev/null; then
	echo "not ok $((n + 1)) - node image builds"
	exit 1
fi
rc=0
out=$("${node[@]}" bus-check.mjs "$n")
[ $? -eq 0 ] || rc=1
printf '%s\n' "$out"
n=$(grep -cE '^(not )?ok ' <<<"$out" | awk -v n="$n" '{print n + $1}')

# The contract example's shape, with SKUs the seeded catalogue has and the
# provider's approving test card (it declines cards it does not know).
body=$(sed 's/"KB-MX-BROWN"/"SKU-CABLE"/; s/"CABLE-USBC-2M"/"SKU-KEYBOARD"/; s/"tok_visa_4242"/"tok_visa"/' \
	contracts/examples/place_order_request/valid/two_lines.json)
order=$(docker run --rm --network "$net" "shop-build:${SHOP_TAG:-latest}" curl -s -X POST -H 'Content-Type: application/json' \
	--data "$body" http://gateway:8080/orders | sed -n 's/.*"order_id":"\([^"]*\)".*/\1/p')
journey=$("${node[@]}" follow.mjs "$order" --until-done 2>&1)
frc=$?
want=(PlaceOrder OrderPlaced StockReserved OrderReserved PaymentAuthorized OrderPaid ShipmentScheduled
	ShipmentDispatched OrderShipped NotificationSent)
missing=()
for t in "${want[@]}"; do grep -q " $t " <<<"$journey" || missing+=("$t"); done
n=$((n + 1))
if [ -n "$order" ] && [ $frc -eq 0 ] && [ ${#missing[@]} -eq 0 ]; then
	echo "ok $n - follower (JavaScript) prints order $order's journey to SHIPPED, every message valid"
else
	rc=1
	echo "not ok $n - follower (JavaScript) prints an order's journey to SHIPPED (order '${order}', status $frc)"
	[ ${#missing[@]} -eq 0 ] || echo "#   missing: ${missing[*]}"
	sed 's/^/#   /' <<<"$journey" | tail -30
fi
exit $rc

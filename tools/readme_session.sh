#!/usr/bin/env bash
# Prints the README's "A session" section, run for real against a running
# `docker compose up` on localhost:8080 (needs curl and jq on the host):
#   tools/readme_session.sh > /tmp/session.md
# then paste it into README.md in place of the old one. Run it on a fresh
# deployment (`docker compose down -v && docker compose up -d --wait`), so the
# stock figures are the seeded ones.
set -uo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
cat >order.json <<'EOF_ORDER'
{"customer_id": "cust-42", "email": "ada@example.com",
 "items": [{"sku": "SKU-KEYBOARD", "quantity": 1}, {"sku": "SKU-CABLE", "quantity": 2}],
 "payment": {"card_token": "tok_visa"},
 "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
                      "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}}
EOF_ORDER
block() { echo '```console'; printf '$ %s\n' "$1"; bash -c "$1" 2>&1; echo '```'; echo; }
echo "The catalogue, as the gateway sees it:"; echo
block "curl -s localhost:8080/products | jq -c '.products[]'"
echo "An order (the body used throughout; \`jq\` edits it below):"; echo
block "cat order.json"
echo "Place it. The answer comes once the order and its \`PlaceOrder\` command are stored in one transaction:"; echo
block "curl -si localhost:8080/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: ada-1' -d @order.json; echo"
ID=$(curl -s localhost:8080/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: ada-1' -d @order.json | jq -r .order_id)
echo "Follow it: \`?wait=10\` returns as soon as it is SHIPPED (here after the 2 s dispatch delay). Every hop of the saga takes milliseconds:"; echo
block "curl -s 'localhost:8080/orders/$ID?wait=10' | jq ."
echo "The same \`Idempotency-Key\` and body again: the original answer, nothing new is created:"; echo
block "curl -si localhost:8080/orders -H 'Content-Type: application/json' -H 'Idempotency-Key: ada-1' -d @order.json | grep -E '^HTTP|^Idempotent|^\{'"
echo "A declined card: the reservation is compensated (the \`detail\` column is the reason or the kind of e-mail):"; echo
block "ID=\$(jq '.payment.card_token = \"tok_declined\"' order.json | curl -s localhost:8080/orders -H 'Content-Type: application/json' -d @- | jq -r .order_id)
curl -s \"localhost:8080/orders/\$ID?wait=10\" >/dev/null; sleep 1   # compensations follow the CANCELLED
curl -s \"localhost:8080/orders/\$ID\" | jq -c '{status, reason}, (.timeline[] | [.source, .type, .detail])'"
echo "A product with no stock:"; echo
block "jq '.items = [{\"sku\": \"SKU-VINTAGE\", \"quantity\": 1}]' order.json | curl -s localhost:8080/orders -H 'Content-Type: application/json' -d @- | jq -r .order_id | xargs -I{} curl -s 'localhost:8080/orders/{}?wait=10' | jq -c '{status, reason, timeline: [.timeline[] | .type]}'"
echo "Cancel a paid order before it ships. Orders asks shipping, which owns the dispatch (\`OrderCancellationRequested\`; the order stays PAID meanwhile); shipping cancels the shipment, and only then is the order cancelled, the stock released and the payment refunded:"; echo
block "ID=\$(jq '.items = [{\"sku\": \"SKU-HEADSET\", \"quantity\": 1}]' order.json | curl -s localhost:8080/orders -H 'Content-Type: application/json' -d @- | jq -r .order_id)
sleep 0.5; curl -s -X POST localhost:8080/orders/\$ID/cancel; echo
curl -s \"localhost:8080/orders/\$ID?wait=10\" >/dev/null; sleep 1
curl -s \"localhost:8080/orders/\$ID\" | jq -c '{status, reason}, (.timeline[] | [.source, .type, .detail])'"
echo "Cancelling the shipped order is refused:"; echo
block "curl -s -X POST localhost:8080/orders/$ID/cancel | jq -c ."
echo "Bad input gets every problem at once, and creates nothing:"; echo
block "curl -s localhost:8080/orders -H 'Content-Type: application/json' -d '{\"customer_id\": \"cust-42\", \"email\": \"not-an-email\", \"items\": [{\"sku\": \"SKU-MOUSE\", \"quantity\": 0}]}' | jq ."
block "curl -s localhost:8080/orders -H 'Content-Type: application/json' -d '{\"customer_id\": ' | jq -c ."

#!/usr/bin/env bash
# The least-privilege and front-door cases (issue 7), run by
# tests/system/run.sh on the host against the running deployment (they need
# compose: psql inside the postgres container, scaling, a second client
# container). Numbering continues from $1.
#   - each PostgreSQL runtime role reads its own rows but cannot change the
#     schema or reach another service's database, and the owner roles own
#     every table (the services migrated as them);
#   - a second shipping replica on the same SQLite volume refuses to start
#     with a clear error, and shipping starts again after a SIGKILL;
#   - slowloris: many slow connections from one client; /readyz and POSTs
#     from another client still answer in time; then the slow connections
#     are cut at their deadlines.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
compose=(docker compose -f docker-compose.yml)
project=${COMPOSE_PROJECT_NAME:-shoptest}
runner="shop-build:${SHOP_TAG:-latest}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/system/tap.sh

# --- PostgreSQL least privilege ----------------------------------------------------------
# psql_as ROLE DB SQL: runs SQL as ROLE (password from the compose defaults
# or the environment) over TCP inside the postgres container, as a service
# would; output and errors in $tmp/psql.
psql_as() {
	local role=$1 db=$2 sql=$3 var pw
	var="SHOP_PG_PASSWORD_$(echo "${role%_owner}" | tr a-z A-Z)"
	case $role in *_owner) var="${var}_OWNER"; pw=${!var:-${role%_owner}-owner-dev-password} ;;
	*) pw=${!var:-$role-dev-password} ;; esac
	"${compose[@]}" exec -T -e PGPASSWORD="$pw" postgres \
		psql -h 127.0.0.1 -U "$role" -d "$db" -v ON_ERROR_STOP=1 -Atc "$sql" >"$tmp/psql" 2>&1
}
# refused ROLE SQL: true when ROLE may not run SQL in its own database.
refused() {
	psql_as "$1" "$1" "$2" && { echo "# $1 was allowed: $2"; return 1; }
	grep -qE 'permission denied|must be owner' "$tmp/psql" || { echo "# $1: $2: $(cat "$tmp/psql")"; return 1; }
}
runtime_role_case() {
	local svc=$1 ok=1 sql
	psql_as "$svc" "$svc" "SELECT count(*) FROM outbox" || { ok=0; echo "# $svc cannot read its outbox: $(cat "$tmp/psql")"; }
	for sql in "CREATE TABLE intruder (v TEXT)" "ALTER TABLE outbox ADD COLUMN intruder TEXT" \
		"DROP TABLE inbox" "TRUNCATE outbox" "CREATE INDEX intruder ON inbox (event_id)" \
		"DELETE FROM schema_migrations"; do
		refused "$svc" "$sql" || ok=0
	done
	# The tables, the ledger included on payments, belong to the owner.
	psql_as "${svc}_owner" "$svc" \
		"SELECT count(*) FILTER (WHERE tableowner <> '${svc}_owner') || ' ' || count(*) FROM pg_tables WHERE schemaname = 'public'" ||
		ok=0
	local owned; owned=$(cat "$tmp/psql")
	case $owned in "0 "[1-9]*) ;; *) ok=0; echo "# ${svc}_owner: tables not its own / total: $owned" ;; esac
	if [ "$svc" = payments ]; then
		psql_as payments payments "SELECT count(*) FROM provider_charges" || { ok=0; echo "# payments cannot read the ledger"; }
	fi
	if [ $ok = 1 ]; then pass "the $svc runtime role reads its rows but cannot CREATE, ALTER, DROP or TRUNCATE; ${svc}_owner owns every table"
	else fail "the $svc runtime role reads its rows but cannot CREATE, ALTER, DROP or TRUNCATE; ${svc}_owner owns every table"; fi
}
for svc in orders inventory payments; do runtime_role_case "$svc"; done
cross_ok=1
for pair in "orders payments" "payments orders" "inventory orders" "orders_owner payments"; do
	set -- $pair
	if psql_as "$1" "$2" "SELECT 1"; then cross_ok=0; echo "# $1 reached database $2"; fi
done
if [ $cross_ok = 1 ]; then pass "no service role can connect to another service's database"
else fail "no service role can connect to another service's database"; fi

# --- SQLite: one instance per file --------------------------------------------------------
second="${project}-shipping-2"
"${compose[@]}" up -d --no-recreate --scale shipping=2 shipping >/dev/null 2>&1
refusal=""
for _ in $(seq 1 60); do
	refusal=$(docker logs "$second" 2>&1 | grep -m1 'refusing to start' || true)
	[ -n "$refusal" ] && break
	sleep 0.5
done
first_state=$(docker inspect -f '{{.State.Health.Status}}' "${project}-shipping-1" 2>/dev/null)
second_exit=$(docker inspect -f '{{.State.ExitCode}} {{.RestartCount}}' "$second" 2>/dev/null)
"${compose[@]}" up -d --no-recreate --scale shipping=1 shipping >/dev/null 2>&1
if [ -n "$refusal" ] && [ "$first_state" = healthy ] && case $refusal in *'is in use by another instance'*) true ;; *) false ;; esac; then
	pass "a second shipping replica on the same SQLite volume refuses to start with a clear error; the first stays healthy"
else
	fail "a second shipping replica on the same SQLite volume refuses to start with a clear error; the first stays healthy" \
		"refusal: ${refusal:-none}" "first: $first_state; second (exit code, restarts): $second_exit"
fi
"${compose[@]}" kill -s KILL shipping >/dev/null 2>&1
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if "${compose[@]}" up -d --wait --wait-timeout 60 shipping >/dev/null 2>&1 &&
	! docker logs --since "$since" "${project}-shipping-1" 2>&1 | grep -q 'refusing to start'; then
	pass "after a SIGKILL shipping starts again on its file (the dead holder's claim is gone)"
else
	fail "after a SIGKILL shipping starts again on its file (the dead holder's claim is gone)" \
		"$(docker logs --since "$since" "${project}-shipping-1" 2>&1 | tail -3)"
fi

# --- slowloris -----------------------------------------------------------------------------
# 400 slow connections from one container: 200 trickling a request head,
# 200 a body. The gateway holds at most 320 from one address (web.h).
SLOW_HEADS=200 SLOW_BODIES=200 SLOW_SECONDS=25 PER_IP=320
HEAD_DEADLINE_S=10 BODY_DEADLINE_S=15 CUT_SLACK_S=2
ANSWER_MAX_S=2 # what "in time" means for the other client
docker run --rm --network "${project}_default" -v "$PWD/tests/system:/tests:ro" "$runner" \
	python3 /tests/slowloris.py gateway 8080 $SLOW_HEADS $SLOW_BODIES $SLOW_SECONDS >"$tmp/slow" 2>&1 &
slow_pid=$!
for _ in $(seq 1 100); do grep -q '"opened"' "$tmp/slow" && break; sleep 0.1; done
# Another client (another container, another address): /readyz and POSTs,
# every half second for 8 s, while the slow connections are held.
docker run --rm --network "${project}_default" "$runner" bash -c '
	order="{\"customer_id\":\"cust-slow\",\"email\":\"ada@example.com\",\"items\":[{\"sku\":\"SKU-CABLE\",\"quantity\":1}],\"payment\":{\"card_token\":\"tok_visa\"},\"shipping_address\":{\"name\":\"Ada\",\"line1\":\"1 St\",\"city\":\"London\",\"postal_code\":\"N1\",\"country\":\"GB\"}}"
	for _ in $(seq 1 16); do
		curl -s -o /dev/null -m 5 -w "readyz %{http_code} %{time_total}\n" http://gateway:8080/readyz
		curl -s -o /dev/null -m 5 -w "post %{http_code} %{time_total}\n" -H "Content-Type: application/json" \
			--data-binary "$order" http://gateway:8080/orders
		sleep 0.5
	done' >"$tmp/other" 2>&1
wait "$slow_pid"
opened=$(grep -c . "$tmp/other")
bad=$(awk -v max=$ANSWER_MAX_S '($1 == "readyz" && $2 != 200) || ($1 == "post" && $2 != 202) || $3 > max' "$tmp/other" | wc -l)
slowest=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$tmp/other")
summary=$(grep '"done"' "$tmp/slow")
if [ "$opened" -eq 32 ] && [ "$bad" -eq 0 ] && grep -q '"opened"' "$tmp/slow"; then
	pass "with $((SLOW_HEADS + SLOW_BODIES)) slow connections from one client, 16 /readyz and 16 POSTs from another answer in time (slowest ${slowest} s)"
else
	fail "with $((SLOW_HEADS + SLOW_BODIES)) slow connections from one client, 16 /readyz and 16 POSTs from another answer in time (slowest ${slowest} s)" \
		"answers: $(tr '\n' ';' <"$tmp/other")" "slow client: $(tr '\n' ' ' <"$tmp/slow")"
fi
check_slow() {
	[ -n "$summary" ] && docker run --rm -i "$runner" jq -e --argjson refused $((SLOW_HEADS + SLOW_BODIES - PER_IP)) \
		--argjson hd $HEAD_DEADLINE_S --argjson bd $BODY_DEADLINE_S --argjson slack $CUT_SLACK_S '
		.refused == $refused and .answered == 0 and .open_at_end == 0
		and .cut.head.n + .cut.body.n + .refused == .connections
		and (.cut.head.n == 0 or (.cut.head.min_s >= $hd - 0.5 and .cut.head.max_s <= $hd + $slack))
		and (.cut.body.n == 0 or (.cut.body.min_s >= $bd - 0.5 and .cut.body.max_s <= $bd + $slack))' \
		<<<"$summary" >/dev/null
}
echo "# slow client: $summary"
if check_slow; then
	pass "the slow client got $PER_IP connections (the rest closed at once) and each was cut at its deadline (head ${HEAD_DEADLINE_S} s, body ${BODY_DEADLINE_S} s)"
else
	fail "the slow client got $PER_IP connections (the rest closed at once) and each was cut at its deadline (head ${HEAD_DEADLINE_S} s, body ${BODY_DEADLINE_S} s)" \
		"slow client: $(tr '\n' ' ' <"$tmp/slow")"
fi
[ "$failed" -eq 0 ]

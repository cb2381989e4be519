#!/usr/bin/env bash
# Starts the real servers the component tests talk to, inside the dev image,
# runs the given test binaries, and stops the servers by PID:
#   nats-server with JetStream on 127.0.0.1:$SHOP_TEST_NATS_PORT
#   PostgreSQL 17 on 127.0.0.1:$SHOP_TEST_PG_PORT (trust auth, database "shoptest")
# Tests read SHOP_TEST_NATS_URL and SHOP_TEST_PG_URL; each test makes its own
# streams, tables or databases with unique names so tests do not share state.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${SHOP_TEST_NATS_PORT:=54222}"
: "${SHOP_TEST_PG_PORT:=55432}"
work=$(mktemp -d)
chmod 755 "$work"
nats_pid=""
pg_started=""

stop_servers() {
	[ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
	[ -n "$pg_started" ] && runuser -u postgres -- pg_ctl -D "$work/pg" -m fast -w stop >/dev/null 2>&1
	rm -rf "$work"
}
trap stop_servers EXIT

nats-server -js -sd "$work/js" -a 127.0.0.1 -p "$SHOP_TEST_NATS_PORT" >"$work/nats.log" 2>&1 &
nats_pid=$!

mkdir -p "$work/pg" && chown postgres "$work/pg"
runuser -u postgres -- initdb -D "$work/pg" -A trust -U postgres >/dev/null 2>&1 || {
	echo "not ok - component harness: initdb failed"; exit 1; }
runuser -u postgres -- pg_ctl -D "$work/pg" -w -l "$work/pg/pg.log" \
	-o "-c listen_addresses=127.0.0.1 -p $SHOP_TEST_PG_PORT -k $work/pg -c fsync=off" start >/dev/null || {
	cat "$work/pg/pg.log"; echo "not ok - component harness: PostgreSQL did not start"; exit 1; }
pg_started=1
psql -h 127.0.0.1 -p "$SHOP_TEST_PG_PORT" -U postgres -qc 'CREATE DATABASE shoptest' >/dev/null

for _ in $(seq 1 50); do
	curl -sf "http://127.0.0.1:8222/healthz" >/dev/null 2>&1 && break
	(exec 3<>"/dev/tcp/127.0.0.1/$SHOP_TEST_NATS_PORT") 2>/dev/null && break
	sleep 0.1
done

export SHOP_TEST_NATS_URL="nats://127.0.0.1:$SHOP_TEST_NATS_PORT"
export SHOP_TEST_PG_URL="postgresql://postgres@127.0.0.1:$SHOP_TEST_PG_PORT/shoptest"
export SHOP_TEST_WORKDIR="$work"
"$here/../run-binaries.sh" "$@"

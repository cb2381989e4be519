#!/bin/sh
# Entry point of the PostgreSQL container. On an empty data directory it
# creates the cluster and, for each service in SHOP_PG_SERVICES, a role and a
# database of the same name owned by it. pg_hba allows a role to connect only
# to the database named after it ("sameuser", over TCP or the Unix socket in
# /run/postgresql), and PUBLIC loses CONNECT, so
# no service can read another's data. Then it runs the server in the
# foreground (so `docker compose kill postgres` kills the real server), with
# any arguments given appended (`-c name=value`: infra/compose.relaxed.yml).
# Passwords come from SHOP_PG_PASSWORD_<SERVICE> (development defaults in
# docker-compose.yml).
# The load test's ceilings (loadtest/README.md) get the same treatment under
# the name "loadtest" when SHOP_PG_PASSWORD_LOADTEST is set: an ordinary
# role, no superuser, owning a scratch database of its own and reaching no
# service's data. Without the password it is not created.
set -eu
: "${SHOP_PG_SERVICES:=orders inventory payments}"
[ -z "${SHOP_PG_PASSWORD_LOADTEST:-}" ] || SHOP_PG_SERVICES="$SHOP_PG_SERVICES loadtest"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null
	cat > "$PGDATA/pg_hba.conf" <<HBA
local all postgres peer
host sameuser all 0.0.0.0/0 scram-sha-256
host sameuser all ::/0 scram-sha-256
HBA
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	for svc in $SHOP_PG_SERVICES; do
		var="SHOP_PG_PASSWORD_$(echo "$svc" | tr a-z A-Z)"
		pw=$(printenv "$var" || true)
		[ -n "$pw" ] || { echo "init: $var is not set" >&2; exit 1; }
		psql -v ON_ERROR_STOP=1 -q -U postgres -d postgres \
			-v svc="$svc" -v pw="$pw" <<'SQL'
CREATE ROLE :"svc" LOGIN PASSWORD :'pw';
CREATE DATABASE :"svc" OWNER :"svc";
REVOKE ALL ON DATABASE :"svc" FROM PUBLIC;
SQL
		psql -v ON_ERROR_STOP=1 -q -U postgres -d "$svc" -v svc="$svc" \
			-c 'REVOKE ALL ON SCHEMA public FROM PUBLIC' -c "ALTER SCHEMA public OWNER TO \"$svc\""
	done
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "init: created databases and roles: $SHOP_PG_SERVICES"
fi
# The services connect over the Unix socket (a volume they share with this
# container): the same rule as over TCP, a role to its own database with its
# password. Added on every start, so a data directory made before the rule
# existed gets it too.
grep -q '^local sameuser all scram-sha-256$' "$PGDATA/pg_hba.conf" ||
	echo 'local sameuser all scram-sha-256' >> "$PGDATA/pg_hba.conf"
exec postgres -D "$PGDATA" -c listen_addresses='*' -c max_connections=200 "$@"

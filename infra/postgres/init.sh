#!/bin/sh
# Entry point of the PostgreSQL container. On an empty data directory it
# creates the cluster; then, once per data directory (the marker file
# $PGDATA/shop-roles names the layout done), it gives each service in
# SHOP_PG_SERVICES two roles and a database:
#   <svc>_owner  owns the database, its schema public and every table in it:
#                the services' migrations run as this role (SHOP_DB_OWNER_URL);
#   <svc>        the role the service runs as (SHOP_DB_URL): CONNECT to its
#                own database and USAGE on its schema, nothing else here;
#                the service grants it SELECT, INSERT, UPDATE and DELETE on
#                the tables after each migration (libs/svc), so it can never
#                create, alter or drop anything.
# pg_hba lets <svc> connect only to the database named after it
# ("sameuser") and <svc>_owner only to <svc>, over TCP or the Unix socket in
# /run/postgresql, and PUBLIC loses CONNECT: no role reaches another
# service's data. Then it runs the server in the foreground (so
# `docker compose kill postgres` kills the real server), with any arguments
# given appended (`-c name=value`: infra/compose.relaxed.yml).
#
# Passwords come from SHOP_PG_PASSWORD_<SERVICE> and
# SHOP_PG_PASSWORD_<SERVICE>_OWNER (development defaults in
# docker-compose.yml).
#
# Upgrading: a data directory made before the owner roles existed (one role
# per service owning everything) has no marker, so the same steps run on it
# at the next start: the owner role is created and takes over the database,
# the schema and every object the old role owned (REASSIGN OWNED), and the
# old role keeps its name and password as the runtime role. Nothing else is
# needed but setting the _OWNER passwords (the defaults work as they are).
#
# The load test's ceilings (loadtest/README.md) get the old treatment under
# the name "loadtest" when SHOP_PG_PASSWORD_LOADTEST is set: an ordinary
# role, no superuser, owning a scratch database of its own (it creates
# tables there) and reaching no service's data. Without the password it is
# not created.
set -eu
: "${SHOP_PG_SERVICES:=orders inventory payments}"
marker="$PGDATA/shop-roles"
layout="owner-and-runtime-roles-1"

password_of() {
	var="SHOP_PG_PASSWORD_$(echo "$1" | tr a-z A-Z)"
	pw=$(printenv "$var" || true)
	[ -n "$pw" ] || { echo "init: $var is not set" >&2; exit 1; }
	printf '%s' "$pw"
}

# psql as the superuser over the local socket (peer authentication).
su_psql() {
	psql -v ON_ERROR_STOP=1 -q -U postgres "$@"
}

# Both roles, the database and its privileges; every step is idempotent, so
# it serves a fresh cluster and an upgrade alike.
setup_service() {
	svc=$1
	su_psql -d postgres -v svc="$svc" -v owner="${svc}_owner" \
		-v pw="$(password_of "$svc")" -v opw="$(password_of "${svc}_owner")" <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'svc') AS need_runtime,
       NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') AS need_owner,
       NOT EXISTS (SELECT FROM pg_database WHERE datname = :'svc') AS need_db \gset
\if :need_runtime
CREATE ROLE :"svc" LOGIN PASSWORD :'pw';
\endif
\if :need_owner
CREATE ROLE :"owner" LOGIN PASSWORD :'opw';
\endif
\if :need_db
CREATE DATABASE :"svc" OWNER :"owner";
\endif
ALTER DATABASE :"svc" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"svc" FROM PUBLIC;
REVOKE ALL ON DATABASE :"svc" FROM :"svc";
GRANT CONNECT ON DATABASE :"svc" TO :"svc";
SQL
	su_psql -d "$svc" -v svc="$svc" -v owner="${svc}_owner" <<'SQL'
REASSIGN OWNED BY :"svc" TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM :"svc";
GRANT USAGE ON SCHEMA public TO :"svc";
SQL
}

setup_loadtest() {
	su_psql -d postgres -v pw="$(password_of loadtest)" <<'SQL'
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'loadtest') AS need \gset
\if :need
CREATE ROLE loadtest LOGIN PASSWORD :'pw';
CREATE DATABASE loadtest OWNER loadtest;
REVOKE ALL ON DATABASE loadtest FROM PUBLIC;
\endif
SQL
	su_psql -d loadtest -c 'REVOKE ALL ON SCHEMA public FROM PUBLIC' \
		-c 'ALTER SCHEMA public OWNER TO loadtest'
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 >/dev/null
	cat > "$PGDATA/pg_hba.conf" <<HBA
local all postgres peer
host sameuser all 0.0.0.0/0 scram-sha-256
host sameuser all ::/0 scram-sha-256
HBA
fi
# The services connect over the Unix socket (a volume they share with this
# container): the same rules as over TCP. Each rule is added when missing,
# on every start, so a data directory made before it existed gets it too.
hba_rule() {
	grep -qxF "$1" "$PGDATA/pg_hba.conf" || echo "$1" >> "$PGDATA/pg_hba.conf"
}
hba_rule 'local sameuser all scram-sha-256'
for svc in $SHOP_PG_SERVICES; do
	for where in "local $svc" "host $svc"; do
		addrs=""
		[ "$where" = "local $svc" ] || addrs="0.0.0.0/0 ::/0"
		if [ -z "$addrs" ]; then
			hba_rule "$where ${svc}_owner scram-sha-256"
		else
			for a in $addrs; do hba_rule "$where ${svc}_owner $a scram-sha-256"; done
		fi
	done
done

want="$layout $SHOP_PG_SERVICES"
[ -z "${SHOP_PG_PASSWORD_LOADTEST:-}" ] || want="$want loadtest"
if [ "$(cat "$marker" 2>/dev/null || true)" != "$want" ]; then
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	for svc in $SHOP_PG_SERVICES; do setup_service "$svc"; done
	[ -z "${SHOP_PG_PASSWORD_LOADTEST:-}" ] || setup_loadtest
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "$want" > "$marker"
	echo "init: roles and databases ready ($want)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c max_connections=200 "$@"

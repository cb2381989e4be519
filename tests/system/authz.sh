#!/usr/bin/env bash
# The NATS least-privilege cases (issue 7), run by tests/system/run.sh on the
# host against the running deployment; numbering continues from $1.
# js/authz-check.mjs connects with each service's own NATS user (and the
# observer's, and none) and proves what infra/nats/auth.conf, generated
# from contracts/index.json, allows and refuses: a service publishes its own
# events but not another domain's (which never reach the stream), cannot
# fetch from or read another service's durable, cannot delete, purge or
# create a stream; the observer only reads; the console creates only
# consumers it names (never on the create subject without a name, whose
# body could replace a durable); a connection without
# credentials or with a wrong password is refused. The passwords are those
# compose gives the NATS nodes (tools/nats-env.sh). Then the services'
# own connections: no NATS node logged a permissions violation by them in
# the whole run (what the services do is all allowed), the checks' own
# refusals aside.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
net="${COMPOSE_PROJECT_NAME:-shoptest}_default"
compose=(docker compose -f docker-compose.yml)
eval "$(tools/nats-env.sh)"
env=(-e SHOP_NATS_URL=nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222)
for v in $(compgen -e | grep '^SHOP_NATS_PASSWORD_'); do env+=(-e "$v"); done

if ! docker build -q -t "shop-node:${SHOP_TAG:-latest}" --target node -f infra/docker/Dockerfile . >/dev/null; then
	echo "not ok $((n + 1)) - node image builds"
	exit 1
fi
# What the clients were refused before the checks ran: the nodes log every
# violation with the user's name, and every connection refused (a client
# without credentials, a wrong password: "authentication error"). One kind is no fault of the permissions:
# a reply (to an _INBOX subject) that a service sends after a reconnect to
# a request it received before it (nats.c sends what it buffered while
# reconnecting). The server grants a reply only on the connection the
# request came on, so it refuses that one, and the requester times out as
# for any lost reply (the console counts one status round missed). Those
# are counted, not failed.
violations() {
	"${compose[@]}" logs --no-color nats-1 nats-2 nats-3 2>/dev/null |
		grep -E 'Violation|authentication error' || true
}
all=$(violations)
replies=$(grep -cE 'Publish Violation - User "[a-z_-]+", Subject "_INBOX\.' <<<"$all")
before=$(grep -vE 'Publish Violation - User "[a-z_-]+", Subject "_INBOX\.' <<<"$all")
rc=0
out=$(docker run --rm --network "$net" "${env[@]}" "shop-node:${SHOP_TAG:-latest}" authz-check.mjs "$n")
[ $? -eq 0 ] || rc=1
printf '%s\n' "$out"
n=$(grep -cE '^(not )?ok ' <<<"$out" | awk -v n="$n" '{print n + $1}')
n=$((n + 1))
echo "# replies refused after a reconnect in the run: $replies"
if [ -z "$before" ]; then
	echo "ok $n - nats authz: no service, console or tool was refused a connection or anything else by a NATS node in the whole run"
else
	echo "not ok $n - nats authz: no service, console or tool was refused a connection or anything else by a NATS node in the whole run"
	sed 's/^/#   /' <<<"$before" | head -20
	rc=1
fi
exit $rc

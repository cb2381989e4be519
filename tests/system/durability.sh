#!/usr/bin/env bash
# The durability modes' settings (docs/durability.md), run by
# tests/system/run.sh on the host. For the deployment as shipped and with
# infra/compose.strict.yml, the NATS environment compose would give each
# NATS container is read from `docker compose config`, a throwaway server
# of the deployment's NATS image is started with it (on no network, its
# store in the container), and JetStream's own account of its settings
# (/jsz?config=1) must say: as shipped, an fsync every 120 s; strict, an
# fsync before every acknowledgement. Numbering continues from $1.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
failed=0
. tests/system/tap.sh
# Polls of a throwaway server's monitoring port (a tenth of a second each).
DURABILITY_POLLS=100
runner=("docker" "run" "--rm" "-i" "shop-build:${SHOP_TAG:-latest}")
# The NATS passwords (the image refuses to start without them), unless
# run.sh exported them.
[ -n "${SHOP_NATS_PASSWORD_ADMIN:-}" ] || eval "$(tools/nats-env.sh)"

# nats_envs FILE...: one line per NATS service of that compose file set
# (the cluster's three nodes), "name SHOP_NATS_SYNC_INTERVAL-or-empty".
nats_envs() {
	local files=()
	for f in "$@"; do files+=(-f "$f"); done
	docker compose "${files[@]}" config --format json |
		"${runner[@]}" jq -r '.services | to_entries[] | select(.value.image | startswith("shop-nats"))
			| "\(.key) \(.value.environment.SHOP_NATS_SYNC_INTERVAL // "")"'
}

# jsz_config NAME SYNC: what a server of the NATS image started as node
# NAME with SHOP_NATS_SYNC_INTERVAL=SYNC (empty: the image's own) reports.
# Alone on no network, it cannot reach its routes (it keeps trying), but
# it reads its configuration and answers on its monitoring port.
jsz_config() {
	local id out=
	local env=(-e "SHOP_NATS_NAME=$1")
	# The node refuses to start without its users' passwords (auth.conf).
	for v in $(compgen -e | grep '^SHOP_NATS_PASSWORD_'); do env+=(-e "$v"); done
	[ -n "$2" ] && env+=(-e "SHOP_NATS_SYNC_INTERVAL=$2")
	id=$(docker run -d --rm --network none "${env[@]}" "shop-nats:${SHOP_TAG:-latest}") || return 1
	for _ in $(seq 1 "$DURABILITY_POLLS"); do
		out=$(docker exec "$id" curl -sf 'http://127.0.0.1:8222/jsz?config=1' 2>/dev/null) && break
		sleep 0.1
	done
	docker rm -f "$id" >/dev/null 2>&1
	echo "$out" | "${runner[@]}" jq -c '{sync_interval: (.config.sync_interval // 0), sync_always: (.config.sync_always // false)}'
}

# check NAME WANT FILE...: every NATS service of FILE... runs with WANT.
check() {
	local name=$1 want=$2 lines=() bad=() svc sync got
	shift 2
	mapfile -t lines < <(nats_envs "$@")
	[ "${#lines[@]}" -gt 0 ] || bad+=("no NATS service in: $*")
	for line in "${lines[@]}"; do
		read -r svc sync <<<"$line"
		got=$(jsz_config "$svc" "$sync")
		[ "$got" = "$want" ] || bad+=("$svc (SHOP_NATS_SYNC_INTERVAL='$sync'): $got, want $want")
	done
	if [ "${#bad[@]}" -eq 0 ]; then pass "$name"; else fail "$name" "${bad[@]}"; fi
}

check "as shipped, JetStream fsyncs its files every 120 s (the server's default)" \
	'{"sync_interval":120000000000,"sync_always":false}' docker-compose.yml
check "strict (infra/compose.strict.yml), JetStream fsyncs before every acknowledgement" \
	'{"sync_interval":120000000000,"sync_always":true}' docker-compose.yml infra/compose.strict.yml
echo "# durability mode cases: $((n - ${1:-0} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

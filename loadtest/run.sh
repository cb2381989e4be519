#!/usr/bin/env bash
# loadtest/run.sh - `make loadtest` on the host: runs shop-loadtest in a
# container on the network of a running compose deployment, so it reaches
# http://gateway:8080, the NATS nodes nats-1..3:4222 and their monitoring (:8222) by
# name, and writes its report into loadtest/results/<UTC stamp>/ here.
#
# Settings (environment; `make loadtest` passes RATE, DURATION, MODE):
#   RATE=1000 DURATION=60      constant arrival rate and seconds of load
#   MODE=run|saturate          saturate steps the rate up (SAT_START, SAT_FACTOR,
#                              SAT_MAX, SAT_STEP) until a step misses the targets
#   MIX, MAX_INFLIGHT, DRAIN, TIMEOUT_MS, P99_ACCEPT_MS, P99_PAID_MS
#   LOADTEST_ARGS              further shop-loadtest options, verbatim
#   CEILINGS=1|0               measure the building blocks' ceilings first (1)
#   CEIL_SECONDS=3             seconds per ceiling
#   DURABILITY=                (empty) the running deployment as it is;
#                              durable | relaxed | strict: (re)start it first
#                              with the defaults, with infra/compose.relaxed.yml
#                              (fsync off) or with infra/compose.strict.yml
#                              (JetStream fsyncs every write too), then run;
#                              compare: durable, then
#                              relaxed, then durable/relaxed throughput, and
#                              the deployment is put back to durable
#   SHOP_PG_PASSWORD_LOADTEST  the loadtest role's password, if not the
#                              compose default
#   COMPOSE_PROJECT_NAME       the deployment's project (default: this
#                              directory's, as `docker compose up` chose it)
# The generator image is built from infra/docker/Dockerfile (the runtime
# stage, tagged shop-loadtest so the deployment's own images are untouched).
set -euo pipefail
cd "$(dirname "$0")/.."

project=${COMPOSE_PROJECT_NAME:-$(docker compose config 2>/dev/null | sed -n 's/^name: //p' | head -1)}
network=${project}_default
compose=(docker compose -p "$project" -f docker-compose.yml)
# The generator connects to NATS as the admin user (it makes a scratch
# stream for the ceilings): its password as compose gives it the nodes.
[ -n "${SHOP_NATS_PASSWORD_ADMIN:-}" ] || eval "$(tools/nats-env.sh)"
durability=${DURABILITY:-}
case "$durability" in
"" | durable | relaxed | strict | compare) ;;
*) echo "loadtest: DURABILITY must be durable, relaxed, strict or compare" >&2; exit 2 ;;
esac
if [ -z "$durability" ] && ! docker network inspect "$network" >/dev/null 2>&1; then
	echo "loadtest: no compose deployment '$project' is running (network $network);" \
		"start it with 'docker compose up -d --wait' first, or set DURABILITY" >&2
	exit 2
fi

echo "# building the generator image (shop-loadtest)" >&2
docker build -q -t "shop-loadtest:${SHOP_TAG:-latest}" --target runtime -f infra/docker/Dockerfile . >/dev/null

args=(--rate "${RATE:-1000}" --duration "${DURATION:-60}" --results /results)
[ "${MODE:-run}" = saturate ] && args+=(--saturate)
[ "${MODE:-run}" = run ] || [ "${MODE:-run}" = saturate ] || {
	echo "loadtest: MODE must be run or saturate" >&2; exit 2; }
[ -n "${MIX:-}" ] && args+=(--mix "$MIX")
[ -n "${MAX_INFLIGHT:-}" ] && args+=(--max-inflight "$MAX_INFLIGHT")
[ -n "${DRAIN:-}" ] && args+=(--drain "$DRAIN")
[ -n "${TIMEOUT_MS:-}" ] && args+=(--timeout-ms "$TIMEOUT_MS")
[ -n "${P99_ACCEPT_MS:-}" ] && args+=(--p99-accept-ms "$P99_ACCEPT_MS")
[ -n "${P99_PAID_MS:-}" ] && args+=(--p99-paid-ms "$P99_PAID_MS")
[ -n "${SAT_START:-}" ] && args+=(--sat-start "$SAT_START")
[ -n "${SAT_FACTOR:-}" ] && args+=(--sat-factor "$SAT_FACTOR")
[ -n "${SAT_MAX:-}" ] && args+=(--sat-max "$SAT_MAX")
[ -n "${SAT_STEP:-}" ] && args+=(--sat-step "$SAT_STEP")
# shellcheck disable=SC2206 # LOADTEST_ARGS is split on purpose
[ -n "${LOADTEST_ARGS:-}" ] && args+=($LOADTEST_ARGS)

# The SQLite ceiling writes on a docker volume of its own: the disk where
# the services' SQLite volumes live. Created for the run, removed after.
scratch=${project}_loadtest-scratch
cleanup() { docker volume rm -f "$scratch" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [ "${CEILINGS:-1}" = 1 ]; then
	pg_pw=${SHOP_PG_PASSWORD_LOADTEST-loadtest-dev-password}
	args+=(--ceilings --ceil-sqlite /scratch/ceilings.db)
	[ -n "$pg_pw" ] && args+=(--ceil-pg "postgresql://loadtest:$pg_pw@postgres:5432/loadtest")
	[ -n "${CEIL_SECONDS:-}" ] && args+=(--ceil-seconds "$CEIL_SECONDS")
fi

# (Re)starts the deployment in durability $1; compose recreates only the
# containers whose settings change (postgres and the SQLite services).
deploy() {
	local files=("${compose[@]}")
	[ "$1" = relaxed ] && files+=(-f infra/compose.relaxed.yml)
	[ "$1" = strict ] && files+=(-f infra/compose.strict.yml)
	echo "# deployment '$project': $1 durability" >&2
	# The PostgreSQL image from this tree: its init script creates the
	# loadtest role and passes the relaxed override's -c on to the server;
	# an older shop-postgres:latest (the tag is shared) does neither.
	"${files[@]}" build -q postgres >&2
	"${files[@]}" up -d --wait >&2
}

# What the running deployment was started with, from its containers'
# environment: relaxed when the gateway's SQLite runs synchronous=NORMAL,
# strict when NATS fsyncs every write.
detect() {
	local id nats
	id=$("${compose[@]}" ps -q gateway 2>/dev/null | head -1)
	if [ -z "$id" ]; then echo unknown; return; fi
	nats=$("${compose[@]}" ps -q nats-1 2>/dev/null | head -1)
	if docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$id" |
		grep -qx 'SHOP_SQLITE_SYNCHRONOUS=NORMAL'; then
		echo relaxed
	elif [ -n "$nats" ] && docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$nats" |
		grep -qx 'SHOP_NATS_SYNC_INTERVAL=always'; then
		echo strict
	else
		echo durable
	fi
}

# Runs the generator once; the report directory's host path goes to $last.
last=
run_once() {
	local mode=$1 out rc=0
	mkdir -p loadtest/results
	docker volume create "$scratch" >/dev/null
	# The volume is root's when new; hand it to the user the tool runs as.
	docker run --rm --user 0 -v "$scratch:/scratch" "shop-loadtest:${SHOP_TAG:-latest}" \
		chown "$(id -u):$(id -g)" /scratch
	# The container stops with the run (the generator bounds its own time);
	# the host user owns the results.
	out=$(mktemp)
	docker run --rm --network "$network" --user "$(id -u):$(id -g)" \
		-v "$PWD/loadtest/results:/results" -v "$scratch:/scratch" \
		-e SHOP_NATS_USER=admin -e SHOP_NATS_PASSWORD="$SHOP_NATS_PASSWORD_ADMIN" \
		-e SHOP_SQLITE_SYNCHRONOUS="$([ "$mode" = relaxed ] && echo NORMAL || echo FULL)" \
		"shop-loadtest:${SHOP_TAG:-latest}" shop-loadtest --durability "$mode" "${args[@]}" | tee "$out" || rc=$?
	last=$(sed -n 's|^report: /results/\([^/]*\)/.*|loadtest/results/\1|p' "$out")
	rm -f "$out"
	docker volume rm -f "$scratch" >/dev/null
	return $rc
}

case "$durability" in
"")
	run_once "$(detect)"
	;;
durable | relaxed | strict)
	deploy "$durability"
	run_once "$durability"
	;;
compare)
	rc=0
	deploy durable
	run_once durable || rc=$?
	d=$last
	deploy relaxed
	run_once relaxed || rc=$?
	r=$last
	deploy durable
	if [ -z "$d" ] || [ -z "$r" ]; then
		echo "loadtest: a run wrote no report; nothing to compare" >&2
		exit 2
	fi
	echo "== durable vs relaxed ($d vs $r)"
	docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/loadtest/results:/results" \
		"shop-loadtest:${SHOP_TAG:-latest}" shop-loadtest --compare "/results/${d##*/}/report.json" \
		"/results/${r##*/}/report.json" || rc=$?
	exit $rc
	;;
esac

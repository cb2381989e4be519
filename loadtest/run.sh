#!/usr/bin/env bash
# loadtest/run.sh - `make loadtest` on the host: runs shop-loadtest in a
# container on the network of a running compose deployment, so it reaches
# http://gateway:8080, nats://nats:4222 and http://nats:8222 by name, and
# writes its report into loadtest/results/<UTC stamp>/ here.
#
# Settings (environment; `make loadtest` passes RATE, DURATION, MODE):
#   RATE=1000 DURATION=60      constant arrival rate and seconds of load
#   MODE=run|saturate          saturate steps the rate up (SAT_START, SAT_FACTOR,
#                              SAT_MAX, SAT_STEP) until a step misses the targets
#   MIX, MAX_INFLIGHT, DRAIN, TIMEOUT_MS, P99_ACCEPT_MS, P99_PAID_MS
#   LOADTEST_ARGS              further shop-loadtest options, verbatim
#   COMPOSE_PROJECT_NAME       the deployment's project (default: this
#                              directory's, as `docker compose up` chose it)
# The generator image is built from infra/docker/Dockerfile (the runtime
# stage, tagged shop-loadtest so the deployment's own images are untouched).
set -euo pipefail
cd "$(dirname "$0")/.."

project=${COMPOSE_PROJECT_NAME:-$(docker compose config 2>/dev/null | sed -n 's/^name: //p' | head -1)}
network=${project}_default
if ! docker network inspect "$network" >/dev/null 2>&1; then
	echo "loadtest: no compose deployment '$project' is running (network $network);" \
		"start it with 'docker compose up -d --wait' first" >&2
	exit 2
fi

echo "# building the generator image (shop-loadtest)" >&2
docker build -q -t shop-loadtest --target runtime -f infra/docker/Dockerfile . >/dev/null

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

mkdir -p loadtest/results
# The container stops with the run (the generator bounds its own time); the
# host user owns the results.
exec docker run --rm --network "$network" --user "$(id -u):$(id -g)" \
	-v "$PWD/loadtest/results:/results" shop-loadtest shop-loadtest "${args[@]}"

#!/usr/bin/env bash
# The project's test command (`make test`), run on the host. Needs Docker with
# Compose v2 and nothing else:
#   1. builds the trixie dev image,
#   2. runs unit, contract and component tests inside it (the component tests
#      start their own nats-server and PostgreSQL there; the catalog check
#      gets the history of contracts/, read with git here: a full clone),
#   3. brings the compose deployment up and runs the system tests against it.
# Every stage prints TAP lines; the last line counts them:
# "N passed, M failed, K skipped". A stage that fails without a failing case
# (a build error) counts as one failure. A skipped case (TAP "ok N # SKIP",
# what cmocka prints when a suite finds no server) is counted apart, never as
# passed: make test starts every server a suite needs, so here a skip means a
# suite that must run did not, and it fails the run.
#
# Two checkouts can test at once on one Docker: give each its own
# COMPOSE_PROJECT_NAME (the deployment) and SHOP_TAG (the tag of every image
# it builds, "latest" by default), so neither runs the other's code.
set -uo pipefail
export SHOP_TAG=${SHOP_TAG:-latest}
cd "$(dirname "$0")/.."

log=$(mktemp)
hist=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$hist"' EXIT

stage() {
	local name=$1
	shift
	echo "== $name"
	local before
	before=$(grep -c '^not ok' "$log")
	"$@" 2>&1 | tee -a "$log"
	local rc=${PIPESTATUS[0]}
	local after
	after=$(grep -c '^not ok' "$log")
	if [ "$rc" -ne 0 ] && [ "$after" -eq "$before" ]; then
		echo "not ok - stage '$name' failed with status $rc" | tee -a "$log"
	fi
}

stage "dev image" docker build -q -t "shop-dev:${SHOP_TAG:-latest}" --target dev -f infra/docker/Dockerfile .
# The history of contracts/, read with git here (the image has no git): the
# catalog's version history, which make check compares (tools/catalog.py).
# A shallow clone is deepened from its origin here, or fails and says so.
stage "contracts history" tools/contract-history.sh "$hist"
# The checkout is mounted read-only and copied, so nothing is written into it.
stage "unit, contract and component tests" docker run --rm -v "$PWD":/src:ro \
	-v "$hist":/history:ro -e SHOP_CONTRACT_HISTORY=/history "shop-dev:${SHOP_TAG:-latest}" bash -c \
	'mkdir -p /tmp/w && tar -C /src --exclude=./build --exclude=./.git -cf - . | tar -C /tmp/w -xf - \
	 && cd /tmp/w && make -j2 WERROR=1 SANITIZE=address,undefined check'
stage "schema compatibility" tests/contracts/compat.sh
# The event catalog's AsyncAPI documents, parsed by @asyncapi/parser in the
# node image (npm ci from js/package-lock.json; nothing of it in the C build).
stage "asyncapi" bash -c 'docker build -q -t "shop-node:$SHOP_TAG" --target node -f infra/docker/Dockerfile . >/dev/null &&
	docker run --rm -v "$PWD/docs/catalog/asyncapi:/asyncapi:ro" "shop-node:$SHOP_TAG" validate-asyncapi.mjs $(cd docs/catalog/asyncapi && printf "/asyncapi/%s " *.json)'
stage "system tests" tests/system/run.sh

# A TAP directive is case-insensitive and follows the description.
skip_re='^ok .*# *skip'
skipped=$(grep -ciE "$skip_re" "$log")
if [ "$skipped" -gt 0 ]; then
	echo "not ok - $skipped case(s) skipped, but make test runs every suite; skipped:" | tee -a "$log"
	grep -iE "$skip_re" "$log" | sed 's/^/#   /'
fi
passed=$(grep '^ok ' "$log" | grep -cviE "$skip_re")
failed=$(grep -c '^not ok' "$log")
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

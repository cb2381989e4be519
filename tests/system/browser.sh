#!/usr/bin/env bash
# The console page in headless Chromium (tests/system/browser.py), run by
# tests/system/run.sh on the host against the running deployment: builds
# the browser image (infra/docker/Dockerfile, target browser), runs the
# script on the compose network with the Docker socket (to stop and start a
# service) and build/screenshots/ for its screenshots. Numbering continues
# from $1.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-0}
out=build/screenshots
mkdir -p "$out" && chmod 777 "$out"
if ! docker build -q -t "shop-browser:${SHOP_TAG:-latest}" --target browser -f infra/docker/Dockerfile . >/dev/null; then
	echo "not ok $((n + 1)) - the browser image builds"
	exit 1
fi
docker run --rm --network "${COMPOSE_PROJECT_NAME}_default" \
	--group-add "$(stat -c %g /var/run/docker.sock)" -v /var/run/docker.sock:/var/run/docker.sock \
	-v "$PWD/tests/system:/tests:ro" -v "$PWD/$out:/out" \
	-e COMPOSE_PROJECT_NAME -e SHOP_SERVICES -e CONSOLE=http://console:8080 -e GATEWAY=http://gateway:8080 \
	"shop-browser:${SHOP_TAG:-latest}" python3 /tests/browser.py "$n"

#!/usr/bin/env bash
# Extracts the previous committed version of every contracts/ file with git
# (on the host: the tests' image has no git and no .git) and runs
# check_compat.py against the working tree in the dev image. The previous
# version is the one at the merge base with COMPAT_BASE (default main: what
# a branch must not break), or HEAD's when that is the merge base itself
# (then uncommitted changes are checked).
set -uo pipefail
cd "$(dirname "$0")/../.."
prev=$(mktemp -d)
trap 'rm -rf "$prev"' EXIT
base=$(git merge-base HEAD "${COMPAT_BASE:-main}" 2>/dev/null || git rev-parse HEAD)
for f in $(git ls-tree -r --name-only "$base" contracts | grep '\.json$'); do
	rel=${f#contracts/}
	mkdir -p "$prev/$(dirname "$rel")"
	git show "$base:$f" >"$prev/$rel"
done
echo "# compat: previous versions from $(git log -1 --format='%h %s' "$base" | cut -c1-60)"
docker run --rm -v "$PWD/contracts:/contracts:ro" -v "$prev:/prev:ro" -v "$PWD/tests/contracts:/t:ro" "shop-dev:${SHOP_TAG:-latest}" \
	python3 /t/check_compat.py /prev /contracts

#!/usr/bin/env bash
# The schema compatibility check (make test): every committed version of
# every schema in contracts/ against the version before it, over the whole
# history (and the working tree's against HEAD's when they differ), with the
# breaks contracts/compat-exceptions.json excuses; then the checker's own
# cases on fixture schemas (test_check_compat.py).
#
# tools/contract-history.sh extracts the versions with git on the host (the
# image has no git, and make test copies the checkout without .git);
# check_compat.py compares them in the dev image. A shallow clone is deepened
# from its origin first; where that fails, or in a checkout without .git,
# this fails and says so.
set -uo pipefail
cd "$(dirname "$0")/../.."
hist=$(mktemp -d)
trap 'rm -rf "$hist"' EXIT
if ! tools/contract-history.sh "$hist"; then
	echo "not ok 1 - compat: the history of contracts/ is readable (see above)"
	exit 1
fi
echo "# compat: $(wc -l <"$hist/commits") commits changed contracts/ up to $(cut -c1-10 "$hist/HEAD")"
docker run --rm -v "$PWD:/src:ro" -v "$hist:/history:ro" -w /src "shop-dev:${SHOP_TAG:-latest}" bash -c \
	'python3 tests/contracts/check_compat.py history /history contracts/compat-exceptions.json; a=$?
	 python3 tests/contracts/test_check_compat.py; b=$?
	 exit $((a | b))'

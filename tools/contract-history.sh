#!/usr/bin/env bash
# contract-history.sh OUT_DIR - every committed version of contracts/, for the
# schema compatibility check (tests/contracts/compat.sh) and the catalog's
# version history (tools/catalog.py, make docs). Runs on the host: it needs
# git and the repository's whole history; the images have neither.
#
# Writes OUT_DIR/trees/<tree id>/ (contracts/ as of each distinct tree, by
# `git archive`), OUT_DIR/HEAD (the full hash of HEAD) and OUT_DIR/commits,
# one line per commit, oldest first, whose contracts/ differs from one of its
# parents' (and the root commits that have one), tab-separated:
#   full hash, committer date (YYYY-MM-DD), tree id, parents, subject
# where parents is a space-separated list of <parent hash>=<its tree id>, and
# a tree id is "-" where there is no contracts/. When the working tree's
# contracts/ differs from HEAD's (uncommitted or untracked files), a last line
# with hash "worktree", no date and tree "worktree" (a copy of contracts/)
# stands for the change about to be committed.
#
# A shallow clone lacks the history: this deepens it from its origin once
# (`git fetch --unshallow`; the origin of a CI checkout is usually a local
# path) and fails, saying so, when that cannot be done. A checkout without
# .git (an export) fails.
set -euo pipefail
out=${1:?usage: contract-history.sh OUT_DIR}
cd "$(dirname "$0")/.."
if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "contract-history: $PWD is not a git checkout with commits; the schema history needs one (a full clone)" >&2
	exit 1
fi
if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
	echo "contract-history: this clone is shallow; fetching the earlier versions of contracts/ from its origin" >&2
	if ! git fetch -q --unshallow 2>&1 | sed 's/^/contract-history: /' >&2 ||
		[ "$(git rev-parse --is-shallow-repository)" = true ]; then
		echo "contract-history: the clone is still shallow, so the earlier versions of contracts/" \
			"are missing; clone it whole (or run 'git fetch --unshallow' where the origin is reachable)" >&2
		exit 1
	fi
fi
mkdir -p "$out/trees"
git rev-parse HEAD >"$out/HEAD"
: >"$out/commits"

tree_of() { git rev-parse -q --verify "$1:contracts" 2>/dev/null || echo -; }

extract() {
	local t=$1
	if [ "$t" != - ] && [ ! -d "$out/trees/$t" ]; then
		mkdir -p "$out/trees/$t"
		git archive --format=tar "$t" | tar -C "$out/trees/$t" -xf -
	fi
}

git rev-list --topo-order --reverse --parents HEAD | while read -r c parents; do
	t=$(tree_of "$c")
	changed=0
	plist=
	if [ -z "$parents" ] && [ "$t" != - ]; then
		changed=1
	fi
	for p in $parents; do
		pt=$(tree_of "$p")
		[ "$pt" != "$t" ] && changed=1
		plist="$plist${plist:+ }$p=$pt"
	done
	[ "$changed" = 1 ] || continue
	extract "$t"
	for p in $parents; do extract "$(tree_of "$p")"; done
	printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$(git log -1 --format=%cs "$c")" "$t" "$plist" \
		"$(git log -1 --format=%s "$c" | tr '\t' ' ')" >>"$out/commits"
done

if [ -n "$(git status --porcelain --untracked-files=all -- contracts)" ]; then
	h=$(git rev-parse HEAD)
	ht=$(tree_of HEAD)
	extract "$ht"
	mkdir -p "$out/trees/worktree"
	cp -R contracts/. "$out/trees/worktree/"
	printf 'worktree\t\tworktree\t%s=%s\t%s\n' "$h" "$ht" "(uncommitted)" >>"$out/commits"
fi

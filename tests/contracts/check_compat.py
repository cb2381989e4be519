#!/usr/bin/env python3
"""check_compat.py - each schema is backward compatible with its previous
committed version.

Usage: check_compat.py PREV_DIR CUR_DIR
  PREV_DIR holds the previous committed version of every contracts/ file
  (tests/contracts/compat.sh extracts it with git); CUR_DIR is contracts/.

The rule (docs/contracts.md): within one major version, a schema may only
loosen. Everything the previous version accepted, the new one must accept,
so readers built from the new schema still read every stored message and
producers of the old one are still understood. Checked structurally, with
$refs resolved in each tree: a type change, a new required property, a
removed property (additionalProperties is false), a tighter bound (length,
items, minimum/maximum), a changed pattern or format, a const, or an enum
losing a value is a breaking change and needs a new major version (a new
type, subject and schema file). A new major version's file has no previous
version and is not compared. Prints TAP; exits 1 on a break.
"""
import json
import os
import sys

BOUNDS_UP = ("minLength", "minItems", "minimum")      # raising these tightens
BOUNDS_DOWN = ("maxLength", "maxItems", "maximum")    # lowering these tightens


def load(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return json.load(f)


def resolve(root, rel, node):
    while isinstance(node, dict) and "$ref" in node:
        path, _, frag = node["$ref"].partition("#")
        if path:
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), path))
        doc = load(root, rel)
        for part in frag.strip("/").split("/") if frag else []:
            doc = doc[part]
        node = doc
    return rel, node


def breaks(prev_root, prev_rel, old, cur_root, cur_rel, new, where=""):
    prev_rel, old = resolve(prev_root, prev_rel, old)
    cur_rel, new = resolve(cur_root, cur_rel, new)
    out = []
    at = where or "(root)"
    if old.get("type") != new.get("type"):
        return [f"{at}: type {old.get('type')} -> {new.get('type')}"]
    for k in BOUNDS_UP:
        if k in new and new[k] > old.get(k, float("-inf")):
            out.append(f"{at}: {k} raised to {new[k]}")
    for k in BOUNDS_DOWN:
        if k in new and new[k] < old.get(k, float("inf")):
            out.append(f"{at}: {k} lowered to {new[k]}")
    for k in ("pattern", "format", "const"):
        if k in new and new.get(k) != old.get(k):
            out.append(f"{at}: {k} changed to {new[k]!r}")
    if "enum" in new:
        lost = [v for v in old.get("enum", [None]) if v not in new["enum"]]
        if lost or "enum" not in old:
            out.append(f"{at}: enum no longer accepts {lost or 'every value'}")
    if new.get("type") == "object":
        oprops, nprops = old.get("properties", {}), new.get("properties", {})
        for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
            out.append(f"{where}/{name}: newly required")
        if new.get("additionalProperties") is False:
            for name in sorted(set(oprops) - set(nprops)):
                out.append(f"{where}/{name}: removed (the old version allowed it)")
        for name in sorted(set(oprops) & set(nprops)):
            out += breaks(prev_root, prev_rel, oprops[name], cur_root, cur_rel, nprops[name], f"{where}/{name}")
    if new.get("type") == "array" and "items" in new and "items" in old:
        out += breaks(prev_root, prev_rel, old["items"], cur_root, cur_rel, new["items"], f"{where}/items")
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    prev, cur = argv[1], argv[2]
    index = load(cur, "index.json")
    rels = sorted({m["schema"] for m in index["messages"]} | {t["schema"] for t in index.get("types", [])}
                  | {index["envelope"]["schema"]})
    n = failed = 0
    for rel in rels:
        n += 1
        if not os.path.exists(os.path.join(prev, rel)):
            print(f"ok {n} - compat: {rel} is new (no previous version)")
            continue
        problems = breaks(prev, rel, load(prev, rel), cur, rel, load(cur, rel))
        print(f"{'not ok' if problems else 'ok'} {n} - compat: {rel} is backward compatible with its previous version")
        for p in problems:
            print(f"#   {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

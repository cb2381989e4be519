#!/usr/bin/env python3
"""check_compat.py - each schema is backward compatible with its previous
committed version, at every step of its history.

Usage:
  check_compat.py history HISTORY_DIR EXCEPTIONS
      every commit that changed contracts/, against its parents; HISTORY_DIR
      is what tools/contract-history.sh writes (tests/contracts/compat.sh
      runs both), EXCEPTIONS is contracts/compat-exceptions.json
  check_compat.py PREV_DIR CUR_DIR [EXCEPTIONS COMMIT]
      one step: the schemas of contracts/ tree CUR_DIR against PREV_DIR

The rule (docs/contracts.md): within one major version, a schema may only
loosen. Everything the previous version accepted, the new one must accept,
so readers built from the new schema still read every stored message and
producers of the old one are still understood. Checked structurally, with
$refs resolved in each tree. Each break has a rule name:
  type                  a type that accepted a value no longer does
  required              a property newly required
  removed               a property removed where others are refused
  additionalProperties  additionalProperties: false added
  minLength, minItems, minimum, exclusiveMinimum   raised or added
  maxLength, maxItems, maximum, exclusiveMaximum   lowered or added
  pattern, format, const, multipleOf               added or changed
  uniqueItems           added
  enum                  added, or a value no longer accepted
A breaking change needs a new major version: a new type, subject and schema
file (<name>.v<N+1>.json), which has no previous version and is classed
"new major version" (version 1 included). An intentional, reviewed break is
excused only by an entry of EXCEPTIONS naming its schema file, full commit
hash, rule and pointers, with the reason; an entry that excuses nothing
fails too, so the file lists exactly the breaks history holds.

A merge commit is charged only with what it changes against every parent
(a resolution of its own); what a parent brought was checked on its side.
Prints TAP; exits 1 on an unexcused break or an unused exception.
"""
import json
import os
import sys

BOUNDS_UP = ("minLength", "minItems", "minimum", "exclusiveMinimum")    # raising these tightens
BOUNDS_DOWN = ("maxLength", "maxItems", "maximum", "exclusiveMaximum")  # lowering these tightens
EXACT = ("pattern", "format", "const", "multipleOf")                    # any new value tightens
# Files of contracts/ that are not schemas (check_examples.py's DESCRIPTIONS,
# and this check's own exceptions).
DESCRIPTIONS = {"index.json", "saga.json", "services.json", "compat-exceptions.json"}


class Break:
    """One breaking change: where (a pointer into the schema's data, "" for
    the root), the rule it breaks, and a sentence."""

    def __init__(self, at, rule, text):
        self.at, self.rule, self.text = at, rule, text

    def key(self):
        return (self.at, self.rule, self.text)

    def __str__(self):
        return f"{self.at or '(root)'}: {self.text} [{self.rule}]"


def load(root, rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return json.load(f)


def resolve(root, rel, node):
    while isinstance(node, dict) and "$ref" in node:
        path, _, frag = node["$ref"].partition("#")
        if path:
            rel = os.path.normpath(os.path.join(os.path.dirname(rel), path)).replace(os.sep, "/")
        doc = load(root, rel)
        for part in frag.strip("/").split("/") if frag else []:
            doc = doc[part]
        node = doc
    return rel, node


def inline(root, rel, node):
    """node with every $ref replaced by its target: equal for two versions
    exactly when the schema, and everything it refers to, is unchanged."""
    if isinstance(node, dict):
        if "$ref" in node:
            target_rel, target = resolve(root, rel, {"$ref": node["$ref"]})
            rest = {k: inline(root, rel, v) for k, v in node.items() if k != "$ref"}
            return {"$ref": inline(root, target_rel, target), **rest}
        return {k: inline(root, rel, v) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [inline(root, rel, v) for v in node]
    return node


def types(node):
    t = node.get("type")
    if t is None:
        return None  # any type
    return {t} if isinstance(t, str) else set(t)


def breaks(prev_root, prev_rel, old, cur_root, cur_rel, new, where=""):
    """The Breaks of new against old (a list, in a stable order)."""
    prev_rel, old = resolve(prev_root, prev_rel, old)
    cur_rel, new = resolve(cur_root, cur_rel, new)
    out = []
    ot, nt = types(old), types(new)
    if nt is not None:
        lost = sorted(t for t in (ot or {"any"}) if t not in nt and not (t == "integer" and "number" in nt))
        if lost:
            return [Break(where, "type", f"type {old.get('type', 'any')} -> {new.get('type')}")]
    for k in BOUNDS_UP:
        if k in new and new[k] > old.get(k, float("-inf")):
            out.append(Break(where, k, f"{k} raised to {new[k]}"))
    for k in BOUNDS_DOWN:
        if k in new and new[k] < old.get(k, float("inf")):
            out.append(Break(where, k, f"{k} lowered to {new[k]}"))
    for k in EXACT:
        if k in new and new.get(k) != old.get(k):
            out.append(Break(where, k, f"{k} changed to {new[k]!r}"))
    if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
        out.append(Break(where, "uniqueItems", "uniqueItems added"))
    if "enum" in new:
        lost = [v for v in old.get("enum", []) if v not in new["enum"]]
        if lost or "enum" not in old:
            out.append(Break(where, "enum", f"enum no longer accepts {lost or 'every other value'}"))
    if "object" in (nt or set()):
        oprops, nprops = old.get("properties", {}), new.get("properties", {})
        for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
            out.append(Break(f"{where}/{name}", "required", "newly required"))
        if new.get("additionalProperties") is False:
            if old.get("additionalProperties") is not False:
                out.append(Break(where, "additionalProperties",
                                 "additionalProperties: false added (unknown properties were accepted)"))
            else:
                for name in sorted(set(oprops) - set(nprops)):
                    out.append(Break(f"{where}/{name}", "removed", "removed (the old version allowed it)"))
        for name in sorted(set(oprops) & set(nprops)):
            out += breaks(prev_root, prev_rel, oprops[name], cur_root, cur_rel, nprops[name], f"{where}/{name}")
    if "array" in (nt or set()) and "items" in new:
        out += breaks(prev_root, prev_rel, old.get("items", {}), cur_root, cur_rel, new["items"], f"{where}/items")
    return out


def schema_files(root):
    """Every schema of a contracts/ tree: its JSON files outside examples/,
    but the descriptions."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "examples")
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if name.endswith(".json") and rel not in DESCRIPTIONS:
                out.append(rel)
    return sorted(out)


def compare_file(prev_roots, cur_root, rel):
    """(status, [Break]) of schema file rel in tree cur_root against the
    trees of its parents: status is "new" (no parent has the file),
    "unchanged" (it, and what it refers to, equals some parent's), or
    "changed"; the breaks are those against every parent that has it."""
    cur_doc = load(cur_root, rel)
    cur_inline = inline(cur_root, rel, cur_doc)
    found = []
    for root in prev_roots:
        if root is None or not os.path.exists(os.path.join(root, rel)):
            continue
        doc = load(root, rel)
        if inline(root, rel, doc) == cur_inline:
            return "unchanged", []
        found.append(breaks(root, rel, doc, cur_root, rel, cur_doc))
    if not found:
        return "new", []
    common = {b.key() for b in found[0]}
    for f in found[1:]:
        common &= {b.key() for b in f}
    return "changed", [b for b in found[0] if b.key() in common]


class Exceptions:
    """contracts/compat-exceptions.json: {"exceptions": [{"schema", "commit"
    (full hash), "rule", "at" (pointers), "reason"}]}. Remembers which
    (entry, pointer) excused something."""

    def __init__(self, path):
        self.entries = []
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.entries = json.load(f)["exceptions"]
        self.problems = []
        for i, e in enumerate(self.entries):
            for k in ("schema", "commit", "rule", "at", "reason"):
                if k not in e:
                    self.problems.append(f"exception {i + 1} has no {k!r}")
            if not isinstance(e.get("at"), list) or not e.get("reason"):
                self.problems.append(f"exception {i + 1}: 'at' must be a list of pointers and 'reason' a sentence")
        self.used = set()

    def excuse(self, rel, commit, b):
        for i, e in enumerate(self.entries):
            if (e.get("schema") == rel and e.get("commit") == commit and e.get("rule") == b.rule
                    and b.at in e.get("at", [])):
                self.used.add((i, b.at))
                return e
        return None

    def unused(self):
        return [f"{e.get('schema')} at {e.get('commit')} ({e.get('rule')}): {at} excuses no break"
                for i, e in enumerate(self.entries) for at in e.get("at", []) if (i, at) not in self.used]


def classify(prev_roots, cur_root, commit, exceptions):
    """{schema file: (class, [(Break, exception or None)])} for the files a
    step changed; class is "new major version", "compatible", "breaking,
    excepted" or "breaking"."""
    out = {}
    for rel in schema_files(cur_root):
        status, bs = compare_file(prev_roots, cur_root, rel)
        if status == "unchanged":
            continue
        if status == "new":
            out[rel] = ("new major version", [])
            continue
        judged = [(b, exceptions.excuse(rel, commit, b)) for b in bs]
        if not judged:
            cls = "compatible"
        elif all(e is not None for _, e in judged):
            cls = "breaking, excepted"
        else:
            cls = "breaking"
        out[rel] = (cls, judged)
    return out


def read_history(hdir):
    """[(commit, date, tree dir, [parent tree dirs or None], subject)],
    oldest first, from tools/contract-history.sh's output."""
    steps = []
    with open(os.path.join(hdir, "commits"), encoding="utf-8") as f:
        for line in f:
            commit, date, tree, parents, subject = line.rstrip("\n").split("\t", 4)
            roots = [None if pt == "-" else os.path.join(hdir, "trees", pt)
                     for pt in (p.partition("=")[2] for p in parents.split())]
            steps.append((commit, date, None if tree == "-" else os.path.join(hdir, "trees", tree), roots, subject))
    return steps


def history(hdir, exceptions):
    """[(commit, date, subject, classify() of the step)] of every step."""
    return [(c, d, s, classify(prev, tree, c, exceptions) if tree else {})
            for c, d, tree, prev, s in read_history(hdir)]


def suggestion(rel, commit, judged):
    """The exceptions entry that would excuse a step's unexcused breaks."""
    by_rule = {}
    for b, e in judged:
        if e is None:
            by_rule.setdefault(b.rule, []).append(b.at)
    return [json.dumps({"schema": rel, "commit": commit, "rule": r, "at": ats, "reason": "..."})
            for r, ats in sorted(by_rule.items())]


def report(steps, exceptions, whole_history=True):
    """TAP over the steps; whole_history: the steps are all of history, so
    an exception that excused nothing is stale."""
    n = failed = 0

    def tap(ok, desc, diag=()):
        nonlocal n, failed
        n += 1
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {n} - compat: {desc}")
        for d in diag:
            print(f"#   {d}")

    tap(not exceptions.problems, f"the exceptions file is well formed ({len(exceptions.entries)} entries)",
        exceptions.problems)
    for commit, date, subject, files in steps:
        diag = []
        for rel, (cls, judged) in sorted(files.items()):
            diag.append(f"{rel}: {cls}")
            for b, e in judged:
                diag.append(f"  {b}" + (f" -- excepted: {e['reason']}" if e else " -- NOT EXCEPTED"))
            if cls == "breaking":
                diag += [f"  to excuse it, add to the exceptions: {s}" for s in suggestion(rel, commit, judged)]
        bad = any(cls == "breaking" for cls, _ in files.values())
        counts = {}
        for cls, _ in files.values():
            counts[cls] = counts.get(cls, 0) + 1
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no schema changed"
        label = f"{commit[:10]} {subject[:50]}" if commit != "worktree" else "uncommitted changes against HEAD"
        # Diagnostics only when something broke: TAP stays short otherwise.
        tap(not bad, f"{label}: {summary}", diag if bad else ())
    if whole_history:
        tap(not exceptions.unused(), "every exception excuses a break in history", exceptions.unused())
    return 1 if failed else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "history":
        hdir = argv[2]
        if not os.path.exists(os.path.join(hdir, "commits")):
            print(f"check_compat: {hdir} has no contracts history (tools/contract-history.sh writes it)",
                  file=sys.stderr)
            return 2
        exceptions = Exceptions(argv[3])
        return report(history(hdir, exceptions), exceptions)
    if len(argv) in (3, 5) and argv[1] != "history":
        exceptions = Exceptions(argv[3] if len(argv) == 5 else None)
        commit = argv[4] if len(argv) == 5 else "worktree"
        files = classify([argv[1]], argv[2], commit, exceptions)
        return report([(commit, "", f"{argv[1]} -> {argv[2]}", files)], exceptions, whole_history=False)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""test_check_compat.py - the compatibility checker's own cases, on tiny
fixture schemas written to a temporary directory.

Each breaking rule of check_compat.py has a case that must report exactly
that rule at the right pointer (so removing a rule fails its case), and a
loosening that must report nothing; then the history: an excepted break, a
break at another commit that the same exception must not excuse, a stale
exception, a merge, a $ref into a shared file and a new major version.
Prints TAP; exits 1 on a failure. Run by tests/contracts/compat.sh.
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_compat as cc  # noqa: E402

STR = {"type": "string", "maxLength": 10}
INT = {"type": "integer", "minimum": 0, "maximum": 100}
ARR = {"type": "array", "items": STR, "maxItems": 5}


def obj(props, required=(), closed=True, **kw):
    o = {"type": "object", "properties": props, "required": list(required)}
    if closed:
        o["additionalProperties"] = False
    o.update(kw)
    return o


def with_(base, **kw):
    d = dict(base)
    for k, v in kw.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


# (name, old, new, the breaks expected as (pointer, rule), sorted)
RULES = [
    ("a type narrowed", obj({"a": {"type": ["string", "null"], "maxLength": 10}}), obj({"a": STR}),
     [("/a", "type")]),
    ("a type changed", obj({"a": STR}), obj({"a": INT}), [("/a", "type")]),
    ("a type given where any was accepted", obj({"a": {}}), obj({"a": STR}), [("/a", "type")]),
    ("a new required property", obj({"a": STR}), obj({"a": STR, "b": STR}, ["b"]), [("/b", "required")]),
    ("an optional property made required", obj({"a": STR}), obj({"a": STR}, ["a"]), [("/a", "required")]),
    ("a property removed", obj({"a": STR, "b": STR}), obj({"a": STR}), [("/b", "removed")]),
    ("additionalProperties false added", obj({"a": STR}, closed=False), obj({"a": STR}),
     [("", "additionalProperties")]),
    ("minLength raised", obj({"a": STR}), obj({"a": with_(STR, minLength=2)}), [("/a", "minLength")]),
    ("maxLength lowered", obj({"a": STR}), obj({"a": with_(STR, maxLength=9)}), [("/a", "maxLength")]),
    ("maxLength added", obj({"a": {"type": "string"}}), obj({"a": STR}), [("/a", "maxLength")]),
    ("minimum raised", obj({"n": INT}), obj({"n": with_(INT, minimum=1)}), [("/n", "minimum")]),
    ("maximum lowered", obj({"n": INT}), obj({"n": with_(INT, maximum=99)}), [("/n", "maximum")]),
    ("exclusiveMinimum added", obj({"n": INT}), obj({"n": with_(INT, exclusiveMinimum=0)}),
     [("/n", "exclusiveMinimum")]),
    ("exclusiveMaximum added", obj({"n": INT}), obj({"n": with_(INT, exclusiveMaximum=100)}),
     [("/n", "exclusiveMaximum")]),
    ("multipleOf added", obj({"n": INT}), obj({"n": with_(INT, multipleOf=5)}), [("/n", "multipleOf")]),
    ("minItems raised", obj({"l": ARR}), obj({"l": with_(ARR, minItems=1)}), [("/l", "minItems")]),
    ("maxItems lowered", obj({"l": ARR}), obj({"l": with_(ARR, maxItems=4)}), [("/l", "maxItems")]),
    ("uniqueItems added", obj({"l": ARR}), obj({"l": with_(ARR, uniqueItems=True)}), [("/l", "uniqueItems")]),
    ("a pattern added", obj({"a": STR}), obj({"a": with_(STR, pattern="^[a-z]*$")}), [("/a", "pattern")]),
    ("a pattern changed", obj({"a": with_(STR, pattern="^[a-z]*$")}), obj({"a": with_(STR, pattern="^[a-y]*$")}),
     [("/a", "pattern")]),
    ("a format added", obj({"a": STR}), obj({"a": with_(STR, format="uuid")}), [("/a", "format")]),
    ("a const added", obj({"a": STR}), obj({"a": with_(STR, const="x")}), [("/a", "const")]),
    ("an enum shrunk", obj({"a": with_(STR, enum=["x", "y"])}), obj({"a": with_(STR, enum=["x"])}),
     [("/a", "enum")]),
    ("an enum added", obj({"a": STR}), obj({"a": with_(STR, enum=["x"])}), [("/a", "enum")]),
    ("inside an array's items", obj({"l": ARR}), obj({"l": with_(ARR, items=with_(STR, maxLength=3))}),
     [("/l/items", "maxLength")]),
    ("inside a nested object", obj({"o": obj({"a": STR})}), obj({"o": obj({"a": STR, "b": STR}, ["b"])}),
     [("/o/b", "required")]),
]

# Loosenings and annotations: nothing to report.
COMPATIBLE = [
    ("an optional property added", obj({"a": STR}), obj({"a": STR, "b": STR})),
    ("a required property made optional", obj({"a": STR}, ["a"]), obj({"a": STR})),
    ("additionalProperties false dropped", obj({"a": STR}), obj({"a": STR}, closed=False)),
    ("bounds loosened", obj({"a": with_(STR, minLength=2), "n": INT, "l": with_(ARR, minItems=1)}),
     obj({"a": with_(STR, maxLength=11), "n": with_(INT, minimum=-1, maximum=101), "l": with_(ARR, maxItems=6)})),
    ("a pattern, enum and const dropped", obj({"a": with_(STR, pattern="^a$", enum=["a"], const="a")}),
     obj({"a": STR})),
    ("an enum value added", obj({"a": with_(STR, enum=["x"])}), obj({"a": with_(STR, enum=["x", "y"])})),
    ("a type widened", obj({"n": INT}), obj({"n": with_(INT, type=["integer", "null"])})),
    ("integer to number", obj({"n": INT}), obj({"n": with_(INT, type="number")})),
    ("a description changed", obj({"a": STR}, description="old"), obj({"a": STR}, description="new")),
]


class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def check(self, ok, desc, diag=()):
        self.n += 1
        self.failed += not ok
        print(f"{'ok' if ok else 'not ok'} {self.n} - compat self-test: {desc}")
        if not ok:
            for d in diag:
                print(f"#   {d}")


def write(root, files):
    for rel, doc in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)


def pair(tmp, old, new):
    prev, cur = tempfile.mkdtemp(dir=tmp), tempfile.mkdtemp(dir=tmp)
    write(prev, {"schemas/m.v1.json": old})
    write(cur, {"schemas/m.v1.json": new})
    return cc.breaks(prev, "schemas/m.v1.json", old, cur, "schemas/m.v1.json", new)


def rules(tap, tmp):
    for name, old, new, want in RULES:
        got = sorted((b.at, b.rule) for b in pair(tmp, old, new))
        tap.check(got == want, f"breaking: {name} is {want}", [f"got {got}"])
    for name, old, new in COMPATIBLE:
        got = [str(b) for b in pair(tmp, old, new)]
        tap.check(not got, f"compatible: {name}", got)


def history_dir(tmp, commits):
    """A tools/contract-history.sh output: commits is [(hash, tree name,
    {file: schema}, [(parent hash, parent tree name)])], oldest first."""
    h = tempfile.mkdtemp(dir=tmp)
    lines = []
    for commit, tree, files, parents in commits:
        write(os.path.join(h, "trees", tree), files)
        ps = " ".join(f"{p}={t}" for p, t in parents)
        lines.append(f"{commit}\t2026-01-0{len(lines) + 1}\t{tree}\t{ps}\tcommit {commit}\n")
    with open(os.path.join(h, "commits"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    return h


def exceptions(tmp, entries):
    path = os.path.join(tempfile.mkdtemp(dir=tmp), "compat-exceptions.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"exceptions": entries}, f)
    return cc.Exceptions(path)


def history(tap, tmp):
    common0 = {"$defs": {"name": STR}}
    common1 = {"$defs": {"name": with_(STR, pattern="^[^\\u0000-\\u001f]*$")}}
    m = obj({"name": {"$ref": "common.v1.json#/$defs/name"}, "n": INT})
    m_tight = obj({"name": {"$ref": "common.v1.json#/$defs/name"}, "n": with_(INT, maximum=50)})
    m2 = obj({"name": {"$ref": "common.v1.json#/$defs/name"}, "n": INT, "k": STR}, ["k"])
    a, b, c, d, e = "a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40
    h = history_dir(tmp, [
        (a, "t0", {"schemas/common.v1.json": common0, "schemas/m.v1.json": m, "index.json": {}}, []),
        # b: the shared definition tightens (through $ref); excepted below.
        (b, "t1", {"schemas/common.v1.json": common1, "schemas/m.v1.json": m}, [(a, "t0")]),
        # c: a side branch from a tightens the same way, and lowers a maximum.
        (c, "t2", {"schemas/common.v1.json": common1, "schemas/m.v1.json": m_tight}, [(a, "t0")]),
        # d: merges b and c, taking c's side: nothing of its own.
        (d, "t2", {}, [(b, "t1"), (c, "t2")]),
        # e: a new major version with a required field, beside v1.
        (e, "t3", {"schemas/common.v1.json": common1, "schemas/m.v1.json": m_tight, "schemas/m.v2.json": m2},
         [(d, "t2")]),
    ])
    excepted = {"schema": "schemas/m.v1.json", "commit": b, "rule": "pattern", "at": ["/name"], "reason": "fixture"}
    ex = exceptions(tmp, [excepted])
    steps = {s[0]: s[3] for s in cc.history(h, ex)}
    tap.check(steps[a] == {"schemas/common.v1.json": ("new major version", []),
                           "schemas/m.v1.json": ("new major version", [])},
              "history: a schema's first version is a new major version, index.json is no schema",
              [repr(steps[a])])
    cls, judged = steps[b]["schemas/m.v1.json"]
    tap.check(cls == "breaking, excepted" and [(x.at, x.rule) for x, _ in judged] == [("/name", "pattern")]
              and judged[0][1] is not None,
              "history: a change through a $ref is found, and its exception excuses it", [cls, repr(judged)])
    cls, judged = steps[c]["schemas/m.v1.json"]
    tap.check(cls == "breaking" and sorted((x.at, x.rule, e is None) for x, e in judged)
              == [("/n", "maximum", True), ("/name", "pattern", True)],
              "history: the same change at another commit is not excused by that commit's exception",
              [cls] + [f"{x} {e}" for x, e in judged])
    tap.check(steps[d] == {}, "history: a merge that takes one side's schemas changes nothing", [repr(steps[d])])
    wrong_at = exceptions(tmp, [dict(excepted, commit=c, at=["/elsewhere"]),
                                dict(excepted, commit=c, rule="maximum", at=["/name"])])
    cls, judged = cc.history(h, wrong_at)[2][3]["schemas/m.v1.json"]
    tap.check(cls == "breaking" and all(e is None for _, e in judged),
              "history: an exception for another pointer or rule does not excuse a break", [cls, repr(judged)])
    merges(tap, tmp, m, m_tight, common0, common1)
    tap.check(steps[e] == {"schemas/m.v2.json": ("new major version", [])},
              "history: a new major version (v2) is not compared, v1 unchanged", [repr(steps[e])])
    tap.check(not ex.unused(), "history: a used exception is not stale", ex.unused())
    stale = exceptions(tmp, [dict(excepted, at=["/name", "/n"]), dict(excepted, commit=c)])
    cc.history(h, stale)
    tap.check(stale.unused() == [f"schemas/m.v1.json at {b} (pattern): /n excuses no break"],
              "history: an exception pointer that excuses nothing is reported",
              stale.unused())
    bad = exceptions(tmp, [{"schema": "schemas/m.v1.json", "commit": b, "rule": "pattern", "at": "/name"}])
    tap.check(len(bad.problems) >= 1, "history: an exception without a reason or a list of pointers is refused",
              bad.problems)
    # The whole report: fails on c's unexcused break, passes once c has its own.
    with open(os.devnull, "w") as null:
        saved, sys.stdout = sys.stdout, null
        try:
            rc_bad = cc.report(cc.history(h, exceptions(tmp, [excepted])), exceptions(tmp, [excepted]))
            both = [excepted, {"schema": "schemas/m.v1.json", "commit": c, "rule": "pattern", "at": ["/name"],
                               "reason": "fixture"},
                    {"schema": "schemas/m.v1.json", "commit": c, "rule": "maximum", "at": ["/n"], "reason": "fixture"}]
            ex2 = exceptions(tmp, both)
            rc_good = cc.report(cc.history(h, ex2), ex2)
            ex3 = exceptions(tmp, both + [dict(excepted, commit=e)])
            rc_stale = cc.report(cc.history(h, ex3), ex3)
        finally:
            sys.stdout = saved
    tap.check(rc_bad == 1 and rc_good == 0 and rc_stale == 1,
              "history: the report fails on an unexcused break and on a stale exception, passes when exact",
              [f"unexcused {rc_bad}, exact {rc_good}, stale {rc_stale}"])


def merges(tap, tmp, m, m_tight, common0, common1):
    """A merge of a branch that tightened a pattern (b) and one that lowered
    a maximum (c): a resolution that only edits a description is compatible
    (each side's break was checked on that side); one that lowers the
    maximum further is breaking on its own."""
    a, b, c, d, e = "1" * 40, "2" * 40, "3" * 40, "4" * 40, "5" * 40
    h = history_dir(tmp, [
        (a, "t0", {"schemas/common.v1.json": common0, "schemas/m.v1.json": m}, []),
        (b, "t1", {"schemas/common.v1.json": common1, "schemas/m.v1.json": m}, [(a, "t0")]),
        (c, "t2", {"schemas/common.v1.json": common0, "schemas/m.v1.json": m_tight}, [(a, "t0")]),
        (d, "t3", {"schemas/common.v1.json": common1, "schemas/m.v1.json": dict(m_tight, description="merged")},
         [(b, "t1"), (c, "t2")]),
        (e, "t4", {"schemas/common.v1.json": common1,
                   "schemas/m.v1.json": obj({"name": {"$ref": "common.v1.json#/$defs/name"},
                                             "n": with_(INT, maximum=40)})},
         [(b, "t1"), (c, "t2")]),
    ])
    steps = {s[0]: s[3] for s in cc.history(h, exceptions(tmp, []))}
    tap.check(steps[d] == {"schemas/m.v1.json": ("compatible", [])},
              "history: a merge is not charged with what one parent brought", [repr(steps[d])])
    cls, judged = steps[e]["schemas/m.v1.json"]
    tap.check(cls == "breaking" and [(x.at, x.rule) for x, _ in judged] == [("/n", "maximum")],
              "history: a merge's own break (against every parent) is charged to it", [cls, repr(judged)])


def main():
    tap = Tap()
    with tempfile.TemporaryDirectory() as tmp:
        rules(tap, tmp)
        history(tap, tmp)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())

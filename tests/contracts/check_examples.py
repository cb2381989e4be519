#!/usr/bin/env python3
"""check_examples.py - checks contracts/ with a reference JSON Schema validator.

Usage: check_examples.py CONTRACTS_DIR

The C codecs are generated from the schemas; this script is the independent
opinion. It checks that
  - every schema file is a valid draft 2020-12 schema, carries $schema, an $id
    that mirrors its path, a title and a description, gives every string a
    maxLength, and is used by the index;
  - the index follows the naming rules: subjects start with the stream's
    domain and read <domain>.<event|command>.<name>.v<major>, types read
    shop.<domain>.<name>.v<major>;
  - every message and HTTP type (and the envelope) has at least one valid and
    one invalid example;
  - every valid example passes and every invalid one fails with an error at
    its expect_error_at (JSON pointer, "" for the root; a missing or unknown
    property is reported at the property's own pointer, as the C side does);
  - tools/contractgen.py, when present, refuses the schema features it does
    not implement instead of generating a codec that ignores them.

$refs resolve from the local files only (a referencing.Registry keyed by each
file's $id; nothing is fetched). Formats are asserted with a FormatChecker;
date-time uses the RFC 3339 checker below, because jsonschema's own needs a
package the image does not have and would otherwise pass everything.

Prints one TAP line per check and exits 1 if any failed.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, ok, description, diagnostics=()):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {description}")
        if not ok:
            self.failed += 1
            for line in diagnostics:
                print(f"#   {line}")
        return ok

    def finish(self):
        print(f"1..{self.n}")
        print(f"# {self.n - self.failed} passed, {self.failed} failed")
        return 1 if self.failed else 0


# RFC 3339 section 5.6 date-time; T and Z in either case; real calendar days;
# second 60 for leap seconds. The generated C applies the same rules.
DATE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                       r"(?:\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))")


def is_date_time(value):
    if not isinstance(value, str):
        return True  # formats constrain strings only
    m = DATE_TIME.fullmatch(value)
    if not m:
        return False
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    oh, om = (int(g) if g else 0 for g in m.groups()[6:])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= mo <= 12 and 1 <= d <= days[mo - 1] and h <= 23 and mi <= 59 and s <= 60 and oh <= 23 and om <= 59


def format_checker():
    checker = FormatChecker()
    checker.checks("date-time")(is_date_time)
    return checker


def pointer(parts):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def error_pointers(error):
    """Where an error is, as the C side reports it: a missing or unknown
    property at its own pointer, everything else at the failing value."""
    base = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        return [pointer(base + [p]) for p in error.validator_value if p not in error.instance]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        return [pointer(base + [p]) for p in error.instance if p not in known]
    return [pointer(base)]


def all_errors(validator, data):
    """(pointers, messages) of every error; a failed $ref counts as one."""
    pointers, messages = [], []
    try:
        for e in validator.iter_errors(data):
            pointers.extend(error_pointers(e))
            messages.append(f"{pointer(e.absolute_path) or '(root)'}: {e.message}")
    except Unresolvable as e:
        pointers.append(None)
        messages.append(f"unresolvable $ref: {e}")
    return pointers, messages


def walk(schema, where=""):
    """Yields (where, subschema) for every schema object inside schema."""
    if isinstance(schema, dict):
        yield where, schema
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for name, sub in value.items():
                    yield from walk(sub, f"{where}/{key}/{name}")
            elif key in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
                yield from walk(value, f"{where}/{key}")
            elif key in ("allOf", "anyOf", "oneOf", "prefixItems"):
                for i, sub in enumerate(value):
                    yield from walk(sub, f"{where}/{key}/{i}")


def message_key(m):
    return m["name"] if m["version"] == 1 else f"{m['name']}_v{m['version']}"


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def list_json(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(f for f in os.listdir(directory) if f.endswith(".json"))


# Files of contracts/ that describe the system rather than a message: the
# index, the saga's transition table and the services' descriptions (read
# by tools/catalog.py), and the compatibility check's exceptions
# (tests/contracts/check_compat.py). Every other JSON file outside examples/
# is a schema.
DESCRIPTIONS = {"index.json", "saga.json", "services.json", "compat-exceptions.json"}


class Contracts:
    def __init__(self, root):
        self.root = root
        self.index = load_json(os.path.join(root, "index.json"))
        self.base = self.index["base_uri"]
        self.docs = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "examples")
            for name in sorted(filenames):
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                if name.endswith(".json") and rel not in DESCRIPTIONS:
                    self.docs[rel] = load_json(os.path.join(dirpath, name))
        self.registry = Registry().with_resources(
            (doc.get("$id", self.base + rel), Resource.from_contents(doc, default_specification=DRAFT202012))
            for rel, doc in self.docs.items())
        self.formats = format_checker()
        # Example directory name -> schema file.
        # A message's key is its name for v1 and <name>_v<N> for later
        # majors, as tools/contractgen.py names its C type.
        self.subjects = {message_key(m): m["schema"] for m in self.index["messages"]}
        self.subjects.update({t["name"]: t["schema"] for t in self.index.get("types", [])})
        if "envelope" in self.index:
            self.subjects["envelope"] = self.index["envelope"]["schema"]

    def validator(self, rel):
        return Draft202012Validator(self.docs[rel], registry=self.registry, format_checker=self.formats)


def check_schema_files(tap, c):
    referenced = set(c.subjects.values())
    for rel, doc in c.docs.items():
        for _, sub in walk(doc):
            ref = sub.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                target = os.path.normpath(os.path.join(os.path.dirname(rel), ref.partition("#")[0]))
                referenced.add(target.replace(os.sep, "/"))
    for rel, doc in c.docs.items():
        try:
            Draft202012Validator.check_schema(doc)
            tap.check(True, f"{rel} is a valid draft 2020-12 schema")
        except SchemaError as e:
            tap.check(False, f"{rel} is a valid draft 2020-12 schema", [e.message])
        problems = []
        if doc.get("$schema") != DIALECT:
            problems.append(f'$schema is not "{DIALECT}"')
        if doc.get("$id") != c.base + rel:
            problems.append(f'$id is not "{c.base + rel}"')
        for key in ("title", "description"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                problems.append(f"no {key}")
        tap.check(not problems, f"{rel} has $schema, an $id matching its path, a title and a description", problems)
        unbounded = [where or "(root)" for where, sub in walk(doc)
                     if sub.get("type") == "string" and "maxLength" not in sub]
        tap.check(not unbounded, f"{rel} gives every string a maxLength",
                  [f"no maxLength at {w}" for w in unbounded])
        tap.check(rel in referenced, f"{rel} is used by the index or by a $ref")
    used = sorted({sub["format"] for doc in c.docs.values() for _, sub in walk(doc) if "format" in sub})
    missing = [f for f in used if f not in c.formats.checkers]
    tap.check(not missing, f"every format the contracts use is asserted ({', '.join(used)})",
              [f"no checker for format {f}" for f in missing])


def check_index(tap, c):
    streams = {s["name"]: s for s in c.index["streams"]}
    for m in c.index["messages"]:
        name, v = m["name"], m["version"]
        stream = streams.get(m["stream"])
        prefixes = [s[:-1] for s in stream["subjects"]] if stream else []  # "orders.>" -> "orders."
        domain = m["subject"].split(".")[0]
        problems = []
        if not any(m["subject"].startswith(p) for p in prefixes):
            problems.append(f"subject {m['subject']} does not start with a domain of stream {m['stream']} {prefixes}")
        expect = {"subject": f"{domain}.{m['kind']}.{name}.v{v}", "type": f"shop.{domain}.{name}.v{v}",
                  "schema": f"schemas/{name}.v{v}.json"}
        for key, value in expect.items():
            if m[key] != value:
                problems.append(f"{key} is {m[key]}, the naming rules say {value}")
        if stream and m["producer"] != stream["owner"]:
            problems.append(f"producer {m['producer']} does not own stream {stream['name']}")
        doc = c.docs.get(m["schema"])
        if doc is None:
            problems.append(f"schema {m['schema']} does not exist")
        elif doc.get("title") != m["title"]:
            problems.append(f"schema title {doc.get('title')} is not the index title {m['title']}")
        tap.check(not problems, f"message {message_key(m)} follows the naming rules of stream {m['stream']}", problems)
    for t in c.index.get("types", []):
        tap.check(t["schema"] in c.docs, f"type {t['name']} names an existing schema ({t['schema']})")


def check_coverage(tap, c):
    examples = os.path.join(c.root, "examples")
    for name in c.subjects:
        counts = {kind: len(list_json(os.path.join(examples, name, kind))) for kind in ("valid", "invalid")}
        tap.check(counts["valid"] >= 1 and counts["invalid"] >= 1,
                  f"{name} has valid and invalid examples ({counts['valid']} valid, {counts['invalid']} invalid)")
    strays = sorted(d for d in os.listdir(examples) if d not in c.subjects) if os.path.isdir(examples) else []
    tap.check(not strays, "every example directory names a message, a type or the envelope",
              [f"examples/{d} matches nothing in the index" for d in strays])


def check_examples(tap, c):
    examples = os.path.join(c.root, "examples")
    types = {m["type"]: m["schema"] for m in c.index["messages"]}
    for name, rel in c.subjects.items():
        if rel not in c.docs:
            continue
        validator = c.validator(rel)
        for f in list_json(os.path.join(examples, name, "valid")):
            label = f"examples/{name}/valid/{f}"
            data = load_json(os.path.join(examples, name, "valid", f))
            _, messages = all_errors(validator, data)
            tap.check(not messages, f"{label} is valid", messages)
            if name == "envelope" and isinstance(data, dict) and not messages:
                data_rel = types.get(data.get("type"))
                if data_rel is None:
                    tap.check(False, f"{label} has the type of a message in the index", [str(data.get("type"))])
                else:
                    _, messages = all_errors(c.validator(data_rel), data.get("data"))
                    tap.check(not messages, f"{label} carries data valid for {data['type']}", messages)
        for f in list_json(os.path.join(examples, name, "invalid")):
            label = f"examples/{name}/invalid/{f}"
            doc = load_json(os.path.join(examples, name, "invalid", f))
            if not (isinstance(doc, dict) and set(doc) == {"description", "expect_error_at", "data"}
                    and isinstance(doc["description"], str) and isinstance(doc["expect_error_at"], str)):
                tap.check(False, f"{label} is rejected",
                          ['invalid examples are {"description", "expect_error_at", "data"}'])
                continue
            pointers, messages = all_errors(validator, doc["data"])
            at = doc["expect_error_at"]
            tap.check(at in pointers, f"{label} is rejected at {at or '(root)'} ({doc['description']})",
                      messages or ["the reference validator accepts it"])


# ---------------------------------------------------------------------------
# The generator must refuse what it cannot implement. Each case copies the
# contracts, breaks one thing, and expects exit status 1 with a message that
# names the problem, and no output.

def generator_cases():
    def schema(rel, fn):
        return ("schema", rel, fn)

    def index(fn):
        return ("index", "index.json", fn)

    def prop(name, **changes):
        def fn(doc):
            doc["properties"][name].update(changes)
        return fn

    def drop(name, key):
        def fn(doc):
            del doc["properties"][name][key]
        return fn

    def set_key(key, value):
        def fn(doc):
            doc[key] = value
        return fn

    name = "schemas/stock_level_changed.v1.json"
    items = "schemas/stock_rejected.v1.json"

    def common(defname, **changes):
        def fn(doc):
            doc["$defs"][defname].update(changes)
        return fn

    def first_message(**changes):
        def fn(doc):
            doc["messages"][0].update(changes)
        return fn

    return [
        ("a string without maxLength", "maxLength", schema(name, drop("name", "maxLength"))),
        ("an array without maxItems", "maxItems", schema(items, drop("skus", "maxItems"))),
        ("an object without additionalProperties false", "additionalProperties",
         schema(name, set_key("additionalProperties", True))),
        ("an unsupported keyword (uniqueItems)", "uniqueItems", schema(items, prop("skus", uniqueItems=True))),
        ("a combinator (oneOf)", "oneOf", schema(name, prop("name", oneOf=[{"maxLength": 5}]))),
        ("a type list (nullable)", "type", schema(name, prop("name", type=["string", "null"]))),
        ("the number type", "type", schema(name, prop("available", type="number"))),
        ("an unsupported format (email)", "format", schema(name, prop("name", format="email"))),
        ("a \\d pattern, which POSIX ERE lacks", "escape", schema(name, prop("name", pattern="^\\d+$"))),
        ("a lazy quantifier", "quantifier", schema(name, prop("name", pattern="^a+?$"))),
        ("a backslash in a bracket expression", "bracket", schema(name, prop("name", pattern="^[\\w-]+$"))),
        ("an integer bound beyond 2^53 - 1", "2^53", schema(name, prop("revision", maximum=2**53))),
        ("exclusiveMaximum", "exclusiveMaximum", schema(name, prop("available", exclusiveMaximum=5))),
        ("a constraint beside $ref", "beside $ref",
         schema("schemas/common.v1.json", lambda d: d["$defs"]["order_id"].update(maxLength=10))),
        ("an enum value its own pattern rejects", "breaks", schema("schemas/common.v1.json",
                                                                 common("currency", enum=["EUR", "eur"]))),
        ("a recursive $ref", "recursive", schema("schemas/common.v1.json", lambda d: d["$defs"]["address"]
                                                 ["properties"].update(next={"$ref": "#/$defs/address"}))),
        ("a subject off the naming rules", "naming rules", index(first_message(subject="gateway.command.order.v1"))),
        ("a consumer that is not a service", "not a service", index(first_message(consumers=["ordres"]))),
        ("a producer that does not own the stream", "owner", index(first_message(producer="orders"))),
        ("one message name and major version twice", "used twice",
         index(lambda d: d["messages"].append(copy.deepcopy(d["messages"][0])))),
        ("a stream retention the bus layer does not declare", "retention",
         index(lambda d: d["streams"][0].update(retention="interest"))),
        ("a property that is not a C identifier", "identifier", schema(name, lambda d: d["properties"].update(
            {"default": d["properties"]["name"]}))),
    ]


def run_generator(generator, contracts, out):
    return subprocess.run([sys.executable, generator, contracts, out], capture_output=True, text=True)


def check_generator(tap, c, generator):
    work = tempfile.mkdtemp(prefix="contractgen-check-")
    try:
        out1, out2 = os.path.join(work, "a"), os.path.join(work, "b")
        r1 = run_generator(generator, c.root, out1)
        r2 = run_generator(generator, c.root, out2)
        same = r1.returncode == 0 and r2.returncode == 0 and all(
            open(os.path.join(out1, f), "rb").read() == open(os.path.join(out2, f), "rb").read()
            for f in ("contracts_gen.h", "contracts_gen.c"))
        tap.check(same, "contractgen accepts the contracts and its output is deterministic",
                  (r1.stderr + r2.stderr).splitlines())

        for description, needle, (_, rel, mutate) in generator_cases():
            tree = os.path.join(work, "case")
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(c.root, tree)
            doc = load_json(os.path.join(tree, rel))
            mutate(doc)
            with open(os.path.join(tree, rel), "w", encoding="utf-8") as f:
                json.dump(doc, f)
            out = os.path.join(work, "case-out")
            shutil.rmtree(out, ignore_errors=True)
            r = run_generator(generator, tree, out)
            ok = r.returncode == 1 and needle in r.stderr and not os.path.exists(out)
            tap.check(ok, f"contractgen refuses {description}",
                      [f"exit status {r.returncode}", *r.stderr.splitlines()])

        # Optional fields are not used by today's contracts; make one so the
        # has_ member, its reader and its encoder are generated, and compile
        # them with the project's warnings when a compiler is at hand.
        tree = os.path.join(work, "optional")
        shutil.copytree(c.root, tree)
        rel = "http/place_order_request.v1.json"
        doc = load_json(os.path.join(tree, rel))
        doc["required"].remove("email")
        with open(os.path.join(tree, rel), "w", encoding="utf-8") as f:
            json.dump(doc, f)
        out = os.path.join(work, "optional-out")
        r = run_generator(generator, tree, out)
        header = open(os.path.join(out, "contracts_gen.h")).read() if r.returncode == 0 else ""
        source = open(os.path.join(out, "contracts_gen.c")).read() if r.returncode == 0 else ""
        tap.check("bool has_email;" in header and "if (in->has_email)" in source
                  and "out->has_email = seen[1];" in source,
                  "contractgen gives an optional field a has_ flag that parse sets and encode honours",
                  r.stderr.splitlines())
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc:
            libs = os.path.join(os.path.dirname(os.path.abspath(c.root)), "libs")
            r = subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-I" + libs, "-I" + out, "-Wall", "-Wextra",
                                "-Wshadow", "-Wformat=2", "-Wstrict-prototypes", "-Wmissing-prototypes",
                                "-Wvla", "-Werror", "-fsyntax-only", os.path.join(out, "contracts_gen.c")],
                               capture_output=True, text=True)
            tap.check(r.returncode == 0, "generated C with an optional field compiles without warnings",
                      r.stderr.splitlines())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv):
    if len(argv) != 2:
        print("usage: check_examples.py CONTRACTS_DIR", file=sys.stderr)
        return 2
    tap = Tap()
    c = Contracts(argv[1])
    check_schema_files(tap, c)
    check_index(tap, c)
    check_coverage(tap, c)
    check_examples(tap, c)
    generator = os.path.join(os.path.dirname(os.path.abspath(argv[1])), "tools", "contractgen.py")
    if os.path.exists(generator):
        check_generator(tap, c, generator)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))

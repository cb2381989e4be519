#!/usr/bin/env python3
"""contractgen.py - C types and codecs for every contract in contracts/.

Usage: contractgen.py CONTRACTS_DIR OUT_DIR

Reads CONTRACTS_DIR/index.json and the JSON Schemas it names, resolves their
$refs, and writes OUT_DIR/contracts_gen.h and OUT_DIR/contracts_gen.c: one C
struct with a strict parser and an encoder per object type, named limits, the
message table, and the stream and durable-consumer tables the bus layer
declares. What the generated readers and encoders call (the parse context,
the string, integer, object and array checks, the encoding helpers) is a real
source file, libs/evt/ct_runtime.c: this script writes no C of its own
beyond types, rule tables, readers, encoders and the message tables.

The generator understands a deliberately small subset of JSON Schema (draft
2020-12) and refuses everything else with a message naming the file and the
keyword: a keyword it skipped would be a rule the C side silently does not
enforce. The subset is:

  object   properties, required, additionalProperties (must be false)
  string   minLength, maxLength (mandatory: it sizes the C buffer), pattern
           (the part of ECMA-262 that means the same in POSIX ERE; control
           characters only inside a bracket expression, NUL only as the
           start of a range), enum,
           const, format date-time | uuid
  integer  minimum, maximum (within +-(2^53 - 1), where doubles are exact)
  array    items, minItems, maxItems (mandatory: it sizes the C array)
  $ref     to "<file>#/$defs/<name>", with only annotations beside it
  annotations: title, description, $comment, examples

Output depends only on the input (no dates, no dict-order surprises), so a
rebuild from the same contracts produces identical files. Standard library
only.
"""

import json
import os
import posixpath
import re
import sys
import tempfile

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SAFE_INT = 2**53 - 1  # largest integer a double represents exactly, neighbours included
ANNOTATIONS = {"title", "description", "$comment", "examples"}
ROOT_ONLY = {"$schema", "$id", "$defs"}
KEYWORDS = {
    "object": {"type", "properties", "required", "additionalProperties"},
    "string": {"type", "minLength", "maxLength", "pattern", "enum", "const", "format"},
    "integer": {"type", "minimum", "maximum"},
    "array": {"type", "items", "minItems", "maxItems"},
}
FORMATS = {"date-time": "CT_FORMAT_DATE_TIME", "uuid": "CT_FORMAT_UUID"}
C_KEYWORDS = set("""auto break case char const continue default do double else enum
    extern float for goto if inline int long register restrict return short signed
    sizeof static struct switch typedef union unsigned void volatile while _Bool
    _Complex _Imaginary bool true false errno""".split())
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# A message's CloudEvents source is its producer's, "/shop/<service>"
# (contracts/envelope.v1.json): the generated table carries it, so the
# services stamp it on what they emit and check it on what they consume
# from this one place.
SOURCE_PREFIX = "/shop/"


class ContractError(Exception):
    """A contract the generator cannot turn into a correct codec."""


def fail(where, message):
    raise ContractError(f"{where}: {message}")


def is_int(v):
    # bool is an int in Python; true is not a JSON integer.
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------
# The schema model: what the C side needs to know about each value.


class Str:
    def __init__(self, where, min_len, max_len, pattern, enum, const, fmt):
        self.where = where
        self.min_len = min_len
        self.max_len = max_len
        self.pattern = pattern
        self.enum = enum
        self.const = const
        self.fmt = fmt


class Int:
    def __init__(self, where, minimum, maximum):
        self.where = where
        self.minimum = minimum
        self.maximum = maximum


class Arr:
    def __init__(self, where, items, items_ref, min_items, max_items):
        self.where = where
        self.items = items
        self.items_ref = items_ref  # $def name the items came from, for messages
        self.min_items = min_items
        self.max_items = max_items


class Field:
    def __init__(self, name, node, required):
        self.name = name
        self.node = node
        self.required = required


class Obj:
    def __init__(self, name, where):
        self.name = name  # C type is struct ct_<name>
        self.where = where
        self.fields = []


# ---------------------------------------------------------------------------
# Patterns. JSON Schema patterns are ECMA-262; the C side uses POSIX extended
# regular expressions. Both search (neither anchors implicitly), and they agree
# on literals, bracket expressions without escapes, groups, alternation, the
# anchors and the quantifiers * + ? {n} {n,} {n,m}. Everything else is refused:
# \d \w \s mean nothing in ERE, a backslash inside brackets is an escape in one
# and a literal in the other, "." differs on newlines, and (?...) or lazy
# quantifiers do not exist in ERE.

PATTERN_ESCAPES = set(".\\-^$*+?()[]{}|/")


def check_pattern(pattern, where):
    if not isinstance(pattern, str) or not pattern:
        fail(where, "pattern must be a non-empty string")
    if not pattern.isascii():
        fail(where, "pattern must be ASCII")
    i, depth, can_repeat = 0, 0, False
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n or pattern[i + 1] not in PATTERN_ESCAPES:
                esc = pattern[i : i + 2]
                fail(where, f"pattern escape '{esc}' is not in the ECMA-262/POSIX ERE common subset")
            i += 2
            can_repeat = True
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] in "\\[":
                    fail(where, f"'{pattern[j]}' inside a bracket expression means different things in ECMA-262 and POSIX ERE")
                # A C string cannot hold NUL, so it may only start a range,
                # which c_pattern starts at U+0001 instead (ct_json_parse
                # already refuses strings holding a NUL).
                if pattern[j] == "\0" and pattern[j + 1 : j + 2] != "-":
                    fail(where, "NUL in a pattern may only start a range (\\u0000-...)")
                j += 1
            if j >= n:
                fail(where, "pattern has an unterminated bracket expression")
            i = j + 1
            can_repeat = True
        elif c in "*+?":
            if not can_repeat:
                fail(where, f"pattern quantifier '{c}' at offset {i} has nothing to repeat (lazy and possessive quantifiers are not ERE)")
            i += 1
            can_repeat = False
        elif c == "{":
            m = re.match(r"\{(\d+)(?:(,)(\d*))?\}", pattern[i:])
            if not m or not can_repeat:
                fail(where, f"pattern brace at offset {i} is not a quantifier {{n}}, {{n,}} or {{n,m}} after an atom")
            if m.group(3) and int(m.group(3)) < int(m.group(1)):
                fail(where, f"pattern quantifier {m.group(0)} has max below min")
            i += len(m.group(0))
            can_repeat = False
        elif c == "(":
            if pattern[i + 1 : i + 2] == "?":
                fail(where, "pattern groups '(?...)' are not in POSIX ERE")
            depth += 1
            i += 1
            can_repeat = False
        elif c == ")":
            depth -= 1
            if depth < 0:
                fail(where, "pattern has an unbalanced ')'")
            i += 1
            can_repeat = True
        elif c == ".":
            fail(where, "unescaped '.' differs between ECMA-262 and POSIX ERE on newlines; use a bracket expression")
        elif c in "]}":
            fail(where, f"escape the literal '{c}' in the pattern")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            fail(where, "control characters in a pattern belong in a bracket expression")
        else:  # literal, ^, $ or |
            i += 1
            can_repeat = c not in "^$|"
    if depth:
        fail(where, "pattern has an unbalanced '('")
    try:
        re.compile(pattern)
    except re.error as e:
        fail(where, f"pattern does not compile: {e}")


# ---------------------------------------------------------------------------
# Loading: schema documents, $ref resolution, keyword checks.


class Loader:
    def __init__(self, root, base_uri):
        self.root = root
        self.base_uri = base_uri
        self.docs = {}  # relative path -> parsed document
        self.def_nodes = {}  # (path, def name) -> node
        self.def_busy = set()  # defs being resolved, to catch cycles
        self.objects = []  # every Obj, dependencies before their users
        self.object_names = {}  # struct name -> where it came from
        self.scalar_defs = []  # (def name, node) of every scalar $def used

    def doc(self, rel):
        if rel in self.docs:
            return self.docs[rel]
        path = os.path.join(self.root, rel)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as e:
            fail(rel, f"cannot read: {e.strerror}")
        except ValueError as e:
            fail(rel, f"is not valid JSON: {e}")
        if not isinstance(doc, dict):
            fail(rel, "a schema document must be a JSON object")
        if doc.get("$schema") != SCHEMA_DIALECT:
            fail(rel, f'"$schema" must be "{SCHEMA_DIALECT}"')
        # $id mirrors the file's place, so resolving a relative $ref against
        # the $id (what a JSON Schema validator does) and against the file
        # path (what this generator does) reach the same document.
        if doc.get("$id") != self.base_uri + rel:
            fail(rel, f'"$id" must be "{self.base_uri + rel}"')
        for key in ("title", "description"):
            if not isinstance(doc.get(key), str) or not doc[key]:
                fail(rel, f'needs a "{key}"')
        defs = doc.get("$defs", {})
        if not isinstance(defs, dict):
            fail(rel, '"$defs" must be an object')
        self.docs[rel] = doc
        return doc

    def resolve(self, ref, rel, where):
        """Node for a "$ref"; object defs become shared struct types."""
        if not isinstance(ref, str):
            fail(where, "$ref must be a string")
        target, _, fragment = ref.partition("#")
        m = re.match(r"^/\$defs/([a-z][a-z0-9_]*)$", fragment)
        if not m:
            fail(where, f'$ref "{ref}" must point at "<file>#/$defs/<name>"')
        name = m.group(1)
        target_rel = rel
        if target:
            if "://" in target or target.startswith("/"):
                fail(where, f'$ref "{ref}" must be relative to this file')
            target_rel = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
            if target_rel.startswith("../"):
                fail(where, f'$ref "{ref}" leaves the contracts directory')
        key = (target_rel, name)
        if key in self.def_nodes:
            return self.def_nodes[key]
        if key in self.def_busy:
            fail(where, f'$ref "{ref}" is recursive; recursive types are not supported')
        defs = self.doc(target_rel).get("$defs", {})
        if name not in defs:
            fail(where, f'$ref "{ref}": {target_rel} has no $defs/{name}')
        self.def_busy.add(key)
        node = self.node(defs[name], target_rel, f"{target_rel}#/$defs/{name}", name)
        self.def_busy.discard(key)
        self.def_nodes[key] = node
        if not isinstance(node, (Obj, Arr)):
            self.scalar_defs.append((name, node))
        return node

    def node(self, schema, rel, where, name, root=False):
        """Model of one schema; name is the struct name an object would get."""
        if not isinstance(schema, dict):
            fail(where, "a schema must be a JSON object (boolean schemas are not supported)")
        allowed_extra = ANNOTATIONS | (ROOT_ONLY if root else set())
        if "$ref" in schema:
            extra = sorted(set(schema) - {"$ref"} - allowed_extra)
            if extra:
                fail(where, f"keywords beside $ref are not supported: {', '.join(extra)}")
            return self.resolve(schema["$ref"], rel, where)
        kind = schema.get("type")
        if not isinstance(kind, str) or kind not in KEYWORDS:
            fail(where, f'"type" must be one of {", ".join(sorted(KEYWORDS))} '
                        f"(type lists, null, number and boolean are not supported), not {json.dumps(kind)}")
        unknown = sorted(set(schema) - KEYWORDS[kind] - allowed_extra)
        if unknown:
            fail(where, f"unsupported keyword(s) for a {kind}: {', '.join(unknown)}")
        return getattr(self, "node_" + kind)(schema, rel, where, name)

    def node_object(self, schema, rel, where, name):
        if schema.get("additionalProperties") is not False:
            fail(where, 'objects must say "additionalProperties": false')
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            fail(where, '"properties" must be a non-empty object')
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            fail(where, '"required" must be a list of property names')
        if len(set(required)) != len(required):
            fail(where, '"required" lists a property twice')
        for r in required:
            if r not in props:
                fail(where, f'"required" names "{r}", which is not in "properties"')
        if name in self.object_names:
            fail(where, f"struct ct_{name} is already generated from {self.object_names[name]}")
        self.object_names[name] = where
        obj = Obj(name, where)
        members = set()
        for prop, sub in props.items():
            pwhere = f"{where}/properties/{prop}"
            if not NAME_RE.match(prop) or prop in C_KEYWORDS or len(prop) > 48:
                fail(pwhere, "property names must be lower_snake_case C identifiers")
            node = self.node(sub, rel, pwhere, f"{name}_{prop}")
            field = Field(prop, node, prop in required)
            for member in member_names(field):
                if member in members:
                    fail(pwhere, f"C member name {member} is used twice in struct ct_{name}")
                members.add(member)
            obj.fields.append(field)
        self.objects.append(obj)  # after its fields: dependencies come first
        return obj

    def node_string(self, schema, rel, where, name):
        max_len = schema.get("maxLength")
        if not is_int(max_len) or max_len < 1:
            fail(where, 'every string needs "maxLength" (a positive integer): the C buffer is sized from it')
        if max_len > 65536:
            fail(where, "maxLength above 65536 would make unreasonably large C structs")
        min_len = schema.get("minLength", 0)
        if not is_int(min_len) or not 0 <= min_len <= max_len:
            fail(where, '"minLength" must be an integer between 0 and maxLength')
        pattern = schema.get("pattern")
        if pattern is not None:
            check_pattern(pattern, where)
        fmt = schema.get("format")
        if fmt is not None and fmt not in FORMATS:
            fail(where, f'format "{fmt}" is not supported (only {", ".join(sorted(FORMATS))})')
        enum = schema.get("enum")
        if enum is not None:
            if (not isinstance(enum, list) or not enum or not all(isinstance(v, str) for v in enum)
                    or len(set(enum)) != len(enum)):
                fail(where, '"enum" must be a non-empty list of distinct strings')
        const = schema.get("const")
        if const is not None and not isinstance(const, str):
            fail(where, '"const" must be a string')
        # A value the schema lists must pass the schema's own checks, or the
        # C side (which checks everything) and a reader of the schema disagree.
        for v in (enum or []) + ([const] if const is not None else []):
            if not min_len <= len(v) <= max_len or (pattern and not re.search(pattern, v)):
                fail(where, f'listed value "{v}" breaks the string\'s own length or pattern')
            if "\0" in v:
                fail(where, "listed values cannot contain NUL")
        return Str(where, min_len, max_len, pattern, enum, const, fmt)

    def node_integer(self, schema, rel, where, name):
        lo = schema.get("minimum", -SAFE_INT)
        hi = schema.get("maximum", SAFE_INT)
        for key, v in (("minimum", lo), ("maximum", hi)):
            if not is_int(v) or not -SAFE_INT <= v <= SAFE_INT:
                fail(where, f'"{key}" must be an integer within +-(2^53 - 1)')
        if lo > hi:
            fail(where, '"minimum" is above "maximum"')
        return Int(where, lo, hi)

    def node_array(self, schema, rel, where, name):
        max_items = schema.get("maxItems")
        if not is_int(max_items) or max_items < 1:
            fail(where, 'every array needs "maxItems" (a positive integer): the C array is sized from it')
        if max_items > 10000:
            fail(where, "maxItems above 10000 would make unreasonably large C structs")
        min_items = schema.get("minItems", 0)
        if not is_int(min_items) or not 0 <= min_items <= max_items:
            fail(where, '"minItems" must be an integer between 0 and maxItems')
        if "items" not in schema:
            fail(where, 'arrays need "items"')
        items = self.node(schema["items"], rel, where + "/items", name + "_item")
        if isinstance(items, Arr):
            fail(where, "arrays of arrays are not supported")
        return Arr(where, items, ref_name(schema["items"]), min_items, max_items)


def ref_name(schema):
    """The $def name a schema refers to, or None."""
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return ref.rpartition("/")[2] if isinstance(ref, str) else None


def member_names(field):
    names = [field.name]
    if isinstance(field.node, Arr):
        names.append(field.name + "_len")
    if not field.required:
        names.append("has_" + field.name)
    return names


# ---------------------------------------------------------------------------
# The index.


# Stream retention policies the bus layer declares (bus_ensure_stream):
# limits keeps messages for their age; workqueue deletes each one once its
# (single) consumer acknowledges it.
RETENTIONS = {"limits", "workqueue"}


def message_key(m):
    """The C name of a message (struct ct_<key>, CT_MSG_<KEY>) and its
    examples directory: its name for v1, <name>_v<N> for later majors, so
    adding v2 changes nothing that was written for v1."""
    return m["name"] if m["version"] == 1 else f"{m['name']}_v{m['version']}"


def stream_owners(streams):
    """The services, in stream order, each once (a service may own several
    streams: the gateway owns GATEWAY and CARDS)."""
    return list(dict.fromkeys(s["owner"] for s in streams))


def pascal(name):
    return "".join(part.capitalize() for part in name.split("_"))


def check_keys(obj, where, required, optional=()):
    if not isinstance(obj, dict):
        fail(where, "must be a JSON object")
    missing = [k for k in required if k not in obj]
    if missing:
        fail(where, f"missing {', '.join(missing)}")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        fail(where, f"unknown key(s) {', '.join(unknown)}")


def load_index(root):
    rel = "index.json"
    try:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            index = json.load(f)
    except OSError as e:
        fail(rel, f"cannot read: {e.strerror}")
    except ValueError as e:
        fail(rel, f"is not valid JSON: {e}")
    check_keys(index, rel, ("base_uri", "streams", "messages"), ("description", "envelope", "types"))
    if not isinstance(index["base_uri"], str) or not index["base_uri"].endswith("/"):
        fail(rel, '"base_uri" must be a string ending in "/"')

    streams = index["streams"]
    if not isinstance(streams, list) or not streams:
        fail(rel, '"streams" must be a non-empty list')
    by_stream, domains = {}, {}
    for i, s in enumerate(streams):
        where = f"{rel}#/streams/{i}"
        check_keys(s, where, ("name", "subjects", "owner"), ("description", "retention", "confidential"))
        if not isinstance(s["name"], str) or not re.match(r"^[A-Z][A-Z0-9_]*$", s["name"]):
            fail(where, "stream names are UPPER_CASE")
        if s["name"] in by_stream:
            fail(where, f"stream {s['name']} is declared twice")
        if not isinstance(s["owner"], str) or not NAME_RE.match(s["owner"]):
            fail(where, "owner must be a service name")
        if s.get("retention", "limits") not in RETENTIONS:
            fail(where, f'retention must be one of {", ".join(sorted(RETENTIONS))}')
        if not isinstance(s.get("confidential", False), bool):
            fail(where, "confidential must be true or false")
        subjects = s["subjects"]
        if not isinstance(subjects, list) or not subjects:
            fail(where, '"subjects" must be a non-empty list')
        for subj in subjects:
            m = re.match(r"^([a-z][a-z0-9_]*)\.>$", subj) if isinstance(subj, str) else None
            if not m:
                fail(where, f'stream subjects are "<domain>.>", not {json.dumps(subj)}')
            if m.group(1) in domains:
                fail(where, f"domain {m.group(1)} is already captured by stream {domains[m.group(1)]}")
            domains[m.group(1)] = s["name"]
        by_stream[s["name"]] = s
    services = stream_owners(streams)

    messages = index["messages"]
    if not isinstance(messages, list) or not messages:
        fail(rel, '"messages" must be a non-empty list')
    seen = {"key": set(), "subject": set(), "type": set()}
    for i, m in enumerate(messages):
        where = f"{rel}#/messages/{i}"
        check_keys(m, where, ("name", "title", "kind", "version", "type", "subject", "stream",
                              "producer", "consumers", "schema"), ("description",))
        name = m["name"]
        if not isinstance(name, str) or not NAME_RE.match(name):
            fail(where, "message names are lower_snake_case")
        where = f"{rel} message {name}"
        if m["title"] != pascal(name):
            fail(where, f'title must be "{pascal(name)}"')
        if m["kind"] not in ("event", "command"):
            fail(where, 'kind must be "event" or "command"')
        if not is_int(m["version"]) or m["version"] < 1:
            fail(where, "version must be a positive integer")
        stream = by_stream.get(m["stream"])
        if stream is None:
            fail(where, f"stream {m['stream']} is not declared")
        domain = m["subject"].split(".")[0] if isinstance(m["subject"], str) else None
        if domains.get(domain) != m["stream"]:
            fail(where, f"subject {m['subject']} is not captured by stream {m['stream']}")
        v = m["version"]
        expect = {
            "subject": f"{domain}.{m['kind']}.{name}.v{v}",
            "type": f"shop.{domain}.{name}.v{v}",
            "schema": f"schemas/{name}.v{v}.json",
        }
        for key, value in expect.items():
            if m[key] != value:
                fail(where, f'{key} must be "{value}" by the naming rules, not {json.dumps(m[key])}')
        if m["producer"] != stream["owner"]:
            fail(where, f"producer must be {stream['owner']}, the owner of stream {stream['name']}")
        consumers = m["consumers"]
        if not isinstance(consumers, list) or not consumers or len(set(consumers)) != len(consumers):
            fail(where, "consumers must be a non-empty list of distinct services")
        for c in consumers:
            if c not in services:
                fail(where, f"consumer {json.dumps(c)} is not a service (services are the stream owners)")
        # A name may come in several major versions; name and version
        # together (the key) name one message.
        values = {"key": message_key(m), "subject": m["subject"], "type": m["type"]}
        for key in seen:
            if values[key] in seen[key]:
                what = f"{name} v{v}" if key == "key" else values[key]
                fail(where, f"{key.replace('key', 'message')} {what} is used twice")
            seen[key].add(values[key])

    types = index.get("types", [])
    if not isinstance(types, list):
        fail(rel, '"types" must be a list')
    for i, t in enumerate(types):
        where = f"{rel}#/types/{i}"
        check_keys(t, where, ("name", "schema"), ("description", "title"))
        if not isinstance(t["name"], str) or not NAME_RE.match(t["name"]):
            fail(where, "type names are lower_snake_case")
        if not isinstance(t["schema"], str) or not t["schema"].endswith(".json"):
            fail(where, "schema must be a path to a .json file")
    return index


# ---------------------------------------------------------------------------
# C emission.


def c_pattern(pattern):
    """The POSIX ERE for a checked pattern: the same characters, but a range
    from NUL starts at U+0001 (check_pattern allows NUL nowhere else)."""
    return pattern.replace("\0-", "\x01-")


def c_string(s):
    """A C string literal for s (UTF-8), safe from trigraphs and hex runs."""
    out = ['"']
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


def macro_name(*parts):
    return "CT_" + "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p).upper() for p in parts)


def int_literal(v):
    return str(v) if -2**31 < v < 2**31 else f"INT64_C({v})"


def plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Emitter:
    def __init__(self, index, loader, message_objs, type_objs):
        self.index = index
        self.loader = loader
        self.message_objs = message_objs  # (message entry, Obj) in index order
        self.type_objs = type_objs  # (types entry, Obj) in index order
        self.macros = []  # (name, value, comment)
        self.macro_seen = {}
        self.patterns = []  # unique patterns, in order of first use
        self.rules = []  # C definitions of string/int rules
        self.rule_names = set()

    # -- limits -------------------------------------------------------------

    def macro(self, name, value, comment, where):
        if name in self.macro_seen:
            fail(where, f"generated constant {name} clashes with one from {self.macro_seen[name]}")
        self.macro_seen[name] = where
        self.macros.append((name, value, comment))

    def scalar_limits(self, prefix, node, what):
        """Named bounds of a scalar; returns the C expression of its max."""
        if isinstance(node, Str):
            if node.min_len:
                self.macro(macro_name(*prefix, "MIN"), str(node.min_len),
                           f"{what}: fewest characters", node.where)
            self.macro(macro_name(*prefix, "MAX"), str(node.max_len),
                       f"{what}: most characters (code points)", node.where)
            for v in node.enum or []:
                if re.match(r"^[a-z0-9_]+$", v):
                    self.macro(macro_name(*prefix, v), c_string(v), f"{what}: allowed value", node.where)
        elif isinstance(node, Int):
            self.macro(macro_name(*prefix, "MIN"), int_literal(node.minimum), f"{what}: smallest value", node.where)
            self.macro(macro_name(*prefix, "MAX"), int_literal(node.maximum), f"{what}: largest value", node.where)
        return macro_name(*prefix, "MAX")

    def collect_limits(self):
        for name, node in self.loader.scalar_defs:
            self.scalar_limits((name,), node, f"$defs/{name}")
        for obj in self.loader.objects:
            for f in obj.fields:
                what = f"{obj.name}.{f.name}"
                if isinstance(f.node, Arr):
                    if f.node.min_items:
                        self.macro(macro_name(obj.name, f.name, "MIN"), str(f.node.min_items),
                                   f"{what}: fewest items", f.node.where)
                    self.macro(macro_name(obj.name, f.name, "MAX"), str(f.node.max_items),
                               f"{what}: most items", f.node.where)
                    self.scalar_limits((obj.name, f.name, "ITEM"), f.node.items, what + " item")
                else:
                    self.scalar_limits((obj.name, f.name), f.node, what)

    # -- header ---------------------------------------------------------------

    def member_decl(self, obj, f):
        node, lines = f.node, []
        if not f.required:
            lines.append(f"\tbool has_{f.name};")
        if isinstance(node, Arr):
            count = macro_name(obj.name, f.name, "MAX")
            item = node.items
            if isinstance(item, Str):
                size = f"4 * {macro_name(obj.name, f.name, 'ITEM', 'MAX')} + 1"
                lines.append(f"\tchar {f.name}[{count}][{size}];")
            elif isinstance(item, Int):
                lines.append(f"\tint64_t {f.name}[{count}];")
            else:
                lines.append(f"\tstruct ct_{item.name} {f.name}[{count}];")
            lines.append(f"\tsize_t {f.name}_len;")
        elif isinstance(node, Str):
            lines.append(f"\tchar {f.name}[4 * {macro_name(obj.name, f.name, 'MAX')} + 1];")
        elif isinstance(node, Int):
            lines.append(f"\tint64_t {f.name};")
        else:
            lines.append(f"\tstruct ct_{node.name} {f.name};")
        return lines

    def header(self):
        out = [HEADER_TOP.strip("\n"), ""]
        out.append("/* Limits: the bounds of every field, as the schemas state them. Strings")
        out.append(" * count characters (Unicode code points); their buffers hold 4 bytes per")
        out.append(" * character and the NUL. */")
        width = max(len(n) for n, _, _ in self.macros)
        for name, value, comment in self.macros:
            out.append(f"#define {name.ljust(width)} {value} /* {comment} */")
        out.append("")
        out.append("/* Types. Parsing writes *out only when it returns SHOP_OK; encoding emits")
        out.append(" * exactly the schema's fields (optional ones only when has_<field>). */")
        for obj in self.loader.objects:
            out.append("")
            out.append(f"/* {obj.where} */")
            out.append(f"struct ct_{obj.name} {{")
            for f in obj.fields:
                out.extend(self.member_decl(obj, f))
            out.append("};")
            out.append(f"shop_status ct_{obj.name}_parse(const cJSON *json, struct ct_{obj.name} *out, struct ct_errors *errs);")
            out.append(f"cJSON *ct_{obj.name}_encode(const struct ct_{obj.name} *in);")
        out.append("")
        out.append("/* Messages, in index order. */")
        out.append("enum ct_message_id {")
        for m, _ in self.message_objs:
            out.append(f"\t{macro_name('MSG', message_key(m))},")
        out.append("\tCT_MSG__COUNT")
        out.append("};")
        out.append(HEADER_BOTTOM.rstrip("\n"))
        return "\n".join(out) + "\n"

    # -- source: rules and readers -------------------------------------------

    def pattern_index(self, pattern):
        if pattern not in self.patterns:
            self.patterns.append(pattern)
        return self.patterns.index(pattern)

    def string_rule(self, rule, node, max_macro, label):
        if rule in self.rule_names:
            fail(node.where, f"generated rule {rule} clashes")
        self.rule_names.add(rule)
        lines = []
        if node.enum:
            lines.append(f"static const char *const {rule}_values[] = {{ "
                         + ", ".join(c_string(v) for v in node.enum) + " };")
        lines.append(f"static const struct ct_string_rule {rule} = {{")
        lines.append(f"\t.min_len = {node.min_len},")
        lines.append(f"\t.max_len = {max_macro},")
        lines.append(f"\t.pattern = {self.pattern_index(node.pattern) if node.pattern else -1},")
        lines.append(f"\t.label = {c_string(label)},")
        if node.enum:
            lines.append(f"\t.values = {rule}_values,")
            lines.append(f"\t.n_values = {len(node.enum)},")
            lines.append(f"\t.values_text = {c_string(', '.join(node.enum))},")
        if node.const is not None:
            lines.append(f"\t.const_value = {c_string(node.const)},")
        lines.append(f"\t.format = {FORMATS.get(node.fmt, 'CT_FORMAT_NONE')},")
        lines.append("};")
        self.rules.append("\n".join(lines))

    def int_rule(self, rule, prefix):
        if rule in self.rule_names:
            fail(rule, "generated rule clashes")
        self.rule_names.add(rule)
        self.rules.append(f"static const struct ct_int_rule {rule} = {{ {macro_name(*prefix, 'MIN')}, "
                          f"{macro_name(*prefix, 'MAX')} }};")

    def read_scalar(self, node, dst, rule_prefix, macro_prefix, label, indent):
        """C statement reading one scalar or object from `el`/`it` into dst."""
        rule = "ct_rule_" + "_".join(rule_prefix)
        if isinstance(node, Str):
            self.string_rule(rule, node, macro_name(*macro_prefix, "MAX"), label)
            return f"{indent}ct_read_string(SRC, {dst}, sizeof {dst}, &{rule}, cx);"
        if isinstance(node, Int):
            self.int_rule(rule, macro_prefix)
            return f"{indent}ct_read_int(SRC, &{dst}, &{rule}, cx);"
        return f"{indent}ct_{node.name}_read(SRC, &{dst}, cx);"

    def reader(self, obj):
        n = len(obj.fields)
        out = [f"static void ct_{obj.name}_read(const cJSON *json, struct ct_{obj.name} *out, struct ct_ctx *cx)", "{"]
        out.append(f"\tbool seen[{n}] = {{ false }};")
        out.append("")
        out.append("\tif (!ct_object_begin(json, cx))")
        out.append("\t\treturn;")
        out.append("\tfor (const cJSON *it = json->child; it; it = it->next) {")
        out.append("\t\tsize_t mark = ct_push_key(cx, it->string);")
        for i, f in enumerate(obj.fields):
            kw = "if" if i == 0 else "} else if"
            out.append(f"\t\t{kw} (ct_key_is(it, {c_string(f.name)})) {{")
            node = f.node
            if isinstance(node, Arr):
                count = macro_name(obj.name, f.name, "MAX")
                lo = macro_name(obj.name, f.name, "MIN") if node.min_items else "0"
                out.append("\t\t\tsize_t n = 0;")
                out.append(f"\t\t\tif (ct_key_once(&seen[{i}], cx) && ct_array_begin(it, {lo}, {count}, &n, cx)) {{")
                out.append("\t\t\t\tsize_t i = 0;")
                out.append("\t\t\t\tfor (const cJSON *el = it->child; el; el = el->next, i++) {")
                out.append("\t\t\t\t\tsize_t mark_i = ct_push_index(cx, i);")
                item = node.items
                if isinstance(item, Obj) or not node.items_ref:
                    label = f.name.replace("_", " ") + " item"
                else:
                    label = node.items_ref.replace("_", " ")
                stmt = self.read_scalar(item, f"out->{f.name}[i]", (obj.name, f.name, "item"),
                                        (obj.name, f.name, "ITEM"), label, "\t\t\t\t\t")
                out.append(stmt.replace("SRC", "el"))
                out.append("\t\t\t\t\tct_pop(cx, mark_i);")
                out.append("\t\t\t\t}")
                out.append(f"\t\t\t\tout->{f.name}_len = n;")
                out.append("\t\t\t}")
            else:
                out.append(f"\t\t\tif (ct_key_once(&seen[{i}], cx))")
                stmt = self.read_scalar(node, f"out->{f.name}", (obj.name, f.name), (obj.name, f.name),
                                        f.name.replace("_", " "), "\t\t\t\t")
                out.append(stmt.replace("SRC", "it"))
        out.append("\t\t} else {")
        out.append('\t\t\tct_fail(cx, "is not allowed");')
        out.append("\t\t}")
        out.append("\t\tct_pop(cx, mark);")
        out.append("\t}")
        for i, f in enumerate(obj.fields):
            if f.required:
                out.append(f"\tct_require(seen[{i}], {c_string(f.name)}, cx);")
            else:
                out.append(f"\tout->has_{f.name} = seen[{i}];")
        out.append("}")
        return "\n".join(out)

    def encoder(self, obj):
        out = [f"cJSON *ct_{obj.name}_encode(const struct ct_{obj.name} *in)", "{"]
        out.append("\tcJSON *obj = cJSON_CreateObject();")
        out.append("")
        out.append("\tif (!in || !obj)")
        out.append("\t\tgoto fail;")
        for f in obj.fields:
            ind = "\t"
            if not f.required:
                out.append(f"\tif (in->has_{f.name}) {{")
                ind = "\t\t"
            node = f.node
            if isinstance(node, Arr):
                count = macro_name(obj.name, f.name, "MAX")
                out.append(f"{ind}cJSON *arr_{f.name} = cJSON_CreateArray();")
                out.append(f"{ind}if (!ct_put(obj, {c_string(f.name)}, arr_{f.name}))")
                out.append(f"{ind}\tgoto fail;")
                out.append(f"{ind}for (size_t i = 0; i < in->{f.name}_len && i < {count}; i++) {{")
                item_expr = self.new_value(node.items, f"in->{f.name}[i]")
                out.append(f"{ind}\tif (!ct_append(arr_{f.name}, {item_expr}))")
                out.append(f"{ind}\t\tgoto fail;")
                out.append(f"{ind}}}")
            else:
                out.append(f"{ind}if (!ct_put(obj, {c_string(f.name)}, {self.new_value(node, 'in->' + f.name)}))")
                out.append(f"{ind}\tgoto fail;")
            if not f.required:
                out.append("\t}")
        out.append("\treturn obj;")
        out.append("fail:")
        out.append("\tcJSON_Delete(obj);")
        out.append("\treturn NULL;")
        out.append("}")
        return "\n".join(out)

    @staticmethod
    def new_value(node, expr):
        if isinstance(node, Str):
            return f"ct_new_string({expr}, sizeof {expr})"
        if isinstance(node, Int):
            return f"ct_new_int({expr})"
        return f"ct_{node.name}_encode(&{expr})"

    @staticmethod
    def parser(obj):
        t = obj.name
        return "\n".join([
            f"shop_status ct_{t}_parse(const cJSON *json, struct ct_{t} *out, struct ct_errors *errs)",
            "{",
            "\tstruct ct_ctx cx;",
            f"\tstruct ct_{t} *tmp = xcalloc(1, sizeof *tmp);",
            "",
            "\tct_ctx_init(&cx, errs);",
            f"\tct_{t}_read(json, tmp, &cx);",
            "\tif (!cx.failed && out)",
            "\t\t*out = *tmp;",
            "\tfree(tmp);",
            "\treturn cx.failed ? SHOP_E_INVALID : SHOP_OK;",
            "}",
        ])

    # -- source: tables -------------------------------------------------------

    def tables(self):
        out = []
        for m, obj in self.message_objs:
            t = obj.name
            out.append(f"static shop_status ct_{t}_parse_any(const cJSON *json, void *out, struct ct_errors *errs)")
            out.append("{")
            out.append(f"\treturn ct_{t}_parse(json, out, errs);")
            out.append("}")
            out.append("")
            out.append(f"static cJSON *ct_{t}_encode_any(const void *in)")
            out.append("{")
            out.append(f"\treturn ct_{t}_encode(in);")
            out.append("}")
            out.append("")
            out.append(f"static const char *const ct_{t}_consumers[] = {{ "
                       + ", ".join(c_string(c) for c in m["consumers"]) + " };")
            out.append("")
        out.append("const struct ct_message ct_messages[CT_MSG__COUNT] = {")
        for m, obj in self.message_objs:
            out.append("\t{")
            out.append(f"\t\t.id = {macro_name('MSG', message_key(m))},")
            for key in ("name", "title"):
                out.append(f"\t\t.{key} = {c_string(m[key])},")
            out.append(f"\t\t.key = {c_string(message_key(m))},")
            out.append(f"\t\t.kind = {'CT_KIND_EVENT' if m['kind'] == 'event' else 'CT_KIND_COMMAND'},")
            out.append(f"\t\t.version = {m['version']},")
            for key in ("type", "subject", "stream", "producer"):
                out.append(f"\t\t.{key} = {c_string(m[key])},")
            out.append(f"\t\t.source = {c_string(SOURCE_PREFIX + m['producer'])},")
            out.append(f"\t\t.consumers = ct_{obj.name}_consumers,")
            out.append(f"\t\t.n_consumers = {len(m['consumers'])},")
            out.append(f"\t\t.data_size = sizeof(struct ct_{obj.name}),")
            out.append(f"\t\t.parse = ct_{obj.name}_parse_any,")
            out.append(f"\t\t.encode = ct_{obj.name}_encode_any,")
            out.append("\t},")
        out.append("};")
        out.append("")

        streams = self.index["streams"]
        for s in streams:
            out.append(f"static const char *const ct_stream_{s['name'].lower()}_subjects[] = {{ "
                       + ", ".join(c_string(x) for x in s["subjects"]) + " };")
        out.append("")
        out.append("const struct ct_stream ct_streams[] = {")
        for s in streams:
            out.append(f"\t{{ {c_string(s['name'])}, ct_stream_{s['name'].lower()}_subjects, "
                       f"{len(s['subjects'])}, {c_string(s['owner'])}, "
                       f"{'true' if s.get('retention') == 'workqueue' else 'false'}, "
                       f"{'true' if s.get('confidential') else 'false'} }},")
        out.append("};")
        out.append("const size_t ct_n_streams = sizeof ct_streams / sizeof ct_streams[0];")
        out.append("")

        # One durable per (consuming service, stream), named after the service
        # and filtered to exactly the subjects that service consumes there.
        # Services in stream-owner order, streams in index order.
        consumers = []
        for service in stream_owners(streams):
            for s in streams:
                subjects = [m["subject"] for m, _ in self.message_objs
                            if m["stream"] == s["name"] and service in m["consumers"]]
                if subjects:
                    consumers.append((service, s["name"], subjects))
        for service, stream, subjects in consumers:
            out.append(f"static const char *const ct_consumer_{service}_{stream.lower()}_filters[] = {{")
            for subj in subjects:
                out.append(f"\t{c_string(subj)},")
            out.append("};")
        out.append("")
        out.append("const struct ct_consumer ct_consumers[] = {")
        for service, stream, subjects in consumers:
            out.append(f"\t{{ {c_string(service)}, {c_string(stream)}, {c_string(service)}, "
                       f"ct_consumer_{service}_{stream.lower()}_filters, {len(subjects)} }},")
        out.append("};")
        out.append("const size_t ct_n_consumers = sizeof ct_consumers / sizeof ct_consumers[0];")
        return "\n".join(out)

    def source(self):
        readers, codecs = [], []
        for obj in self.loader.objects:
            readers.append(self.reader(obj))
            codecs.append(self.parser(obj))
            codecs.append(self.encoder(obj))
        out = [SOURCE_TOP.strip("\n"), ""]
        out.append(f"const size_t ct_n_patterns = {len(self.patterns)};")
        out.append("const char *const ct_patterns[] = {")
        for p in self.patterns:
            out.append(f"\t{c_string(c_pattern(p))},")
        out.append("\tNULL,")
        out.append("};")
        out.append("")
        out.append("/* ---- Rules: the checks of every scalar field. ---- */")
        out.append("")
        out.append("\n\n".join(self.rules))
        out.append("")
        out.append("/* ---- Readers: one per object type, dependencies first. ---- */")
        out.append("")
        out.append("\n\n".join(readers))
        out.append("")
        out.append("/* ---- Public parse and encode functions. ---- */")
        out.append("")
        out.append("\n\n".join(codecs))
        out.append("")
        out.append("/* ---- Tables. ---- */")
        out.append("")
        out.append(self.tables())
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Fixed parts of the output.

HEADER_TOP = r"""
/*
 * contracts_gen.h - C types and codecs of every message in contracts/.
 *
 * GENERATED by tools/contractgen.py from contracts/index.json and the
 * schemas it names. Do not edit; change the contracts (docs/contracts.md).
 *
 * Each object type T of the schemas becomes struct ct_T with
 * ct_T_parse() (strict: every schema rule is checked, every error is collected
 * with its JSON pointer, up to CT_ERRORS_MAX) and ct_T_encode() (exactly the
 * schema's fields). Strings are NUL-terminated UTF-8 whose buffers hold the
 * schema's maxLength in code points; integers are int64_t within +-(2^53 - 1);
 * arrays are fixed arrays of maxItems with a _len. The message, stream and
 * consumer tables are what the bus layer declares and routes by.
 *
 * cJSON ends strings at an embedded NUL ("\u0000") and ignores whatever
 * follows the first JSON value, so a document is read with ct_json_parse,
 * which refuses both, before a codec sees it.
 */
#ifndef SHOP_CONTRACTS_GEN_H
#define SHOP_CONTRACTS_GEN_H

#include "core/status.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CT_ERRORS_MAX 16   /* errors one parse keeps; further ones are counted in dropped */
#define CT_PATH_MAX 128    /* bytes of a kept JSON pointer, with the NUL; longer ones are cut */
#define CT_PROBLEM_MAX 160 /* bytes of a kept problem text, with the NUL */

struct ct_error {
	char path[CT_PATH_MAX];       /* JSON pointer: "/items/0/quantity"; "" for the root */
	char problem[CT_PROBLEM_MAX]; /* human text: "is required", "must be at most 254 characters" */
};

struct ct_errors {
	size_t len;     /* entries of item[] in use */
	size_t dropped; /* errors that did not fit */
	struct ct_error item[CT_ERRORS_MAX];
};

/* Appends one error, or counts it in dropped when item[] is full. errs may be
 * NULL (nothing happens). For callers' own checks too, so every rejection of a
 * request or message reads the same. */
void ct_errors_add(struct ct_errors *errs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parses TEXT[LEN] as exactly one JSON value with only whitespace around it,
 * and no string holding a NUL: cJSON would stop the string there, and a
 * codec would check a prefix of what another reader of the same text sees.
 * On success *ret_root owns the document; otherwise one error at "" says
 * why and SHOP_E_INVALID is returned. */
shop_status ct_json_parse(const char *text, size_t len, cJSON **ret_root, struct ct_errors *errs);
"""

HEADER_BOTTOM = r"""
enum ct_kind { CT_KIND_EVENT, CT_KIND_COMMAND };

/* out and in point to the message's struct (data_size bytes). */
typedef shop_status (*ct_parse_fn)(const cJSON *json, void *out, struct ct_errors *errs);
typedef cJSON *(*ct_encode_fn)(const void *in);

struct ct_message {
	enum ct_message_id id;
	const char *name;     /* "order_placed" */
	const char *title;    /* "OrderPlaced" */
	const char *key;      /* name and major: "order_placed" (v1), "order_placed_v2" */
	enum ct_kind kind;
	int version;          /* major version, part of subject and type */
	const char *type;     /* CloudEvents type: "shop.orders.order_placed.v1" */
	const char *subject;  /* NATS subject: "orders.event.order_placed.v1" */
	const char *stream;   /* JetStream stream that stores it */
	const char *producer; /* the one service that publishes it */
	const char *source;   /* its CloudEvents source, the producer's: "/shop/orders" */
	const char *const *consumers;
	size_t n_consumers;
	size_t data_size;     /* sizeof the struct parse fills and encode reads */
	ct_parse_fn parse;
	ct_encode_fn encode;
};

extern const struct ct_message ct_messages[CT_MSG__COUNT]; /* indexed by enum ct_message_id */

/* The message with this subject or CloudEvents type; NULL if none (or NULL given). */
const struct ct_message *ct_message_by_subject(const char *subject);
const struct ct_message *ct_message_by_type(const char *type);

struct ct_stream {
	const char *name;
	const char *const *subjects;
	size_t n_subjects;
	const char *owner; /* the service that publishes into it */
	bool workqueue;    /* retention: each message is deleted once acknowledged */
	bool confidential; /* only its producer and consumers may read it; its
			    * dead letters keep no body (docs/security.md) */
};

extern const struct ct_stream ct_streams[];
extern const size_t ct_n_streams;

/* One durable pull consumer per (consuming service, stream): the durable is
 * named after the service and filtered to the subjects of the messages that
 * service consumes from that stream. */
struct ct_consumer {
	const char *service;
	const char *stream;
	const char *durable;
	const char *const *filter_subjects;
	size_t n_filter_subjects;
};

extern const struct ct_consumer ct_consumers[];
extern const size_t ct_n_consumers;

#endif
"""

SOURCE_TOP = r"""
/*
 * contracts_gen.c - codecs and tables of contracts_gen.h.
 *
 * GENERATED by tools/contractgen.py; do not edit.
 *
 * Only types, rules, readers, encoders and tables: what they call (the
 * parse context, the string, integer, object and array checks, the
 * encoding helpers) is libs/evt/ct_runtime.c, a real source file. A parse
 * fills a zeroed scratch struct and copies it out only on success.
 */
#include "evt/ct_runtime.h"

#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
"""

# ---------------------------------------------------------------------------


def generate(root):
    """(header text, source text) for the contracts under root."""
    index = load_index(root)
    loader = Loader(root, index["base_uri"])
    message_objs, type_objs = [], []
    for entry, out in [(m, message_objs) for m in index["messages"]] + \
                      [(t, type_objs) for t in index.get("types", [])]:
        rel = entry["schema"]
        doc = loader.doc(rel)
        if "title" in entry and doc["title"] != entry["title"]:
            fail(rel, f'title "{doc["title"]}" differs from the index ("{entry["title"]}")')
        key = message_key(entry) if out is message_objs else entry["name"]
        node = loader.node(doc, rel, rel, key, root=True)
        if not isinstance(node, Obj) or node.name != key:
            fail(rel, "a message or type schema must be an object written in place, not a $ref")
        out.append((entry, node))
    # Check every $def of every document read, used or not: an unsupported
    # one is a trap for the next schema that refers to it.
    checked = set()
    while set(loader.docs) - checked:
        rel = sorted(set(loader.docs) - checked)[0]
        checked.add(rel)
        for name in loader.docs[rel].get("$defs", {}):
            loader.resolve(f"#/$defs/{name}", rel, f"{rel}#/$defs/{name}")
    # Only defs some message or type uses become C types and limits.
    used = set()

    def mark(node):
        if isinstance(node, Obj):
            if node.name not in used:
                used.add(node.name)
                for f in node.fields:
                    mark(f.node)
        elif isinstance(node, Arr):
            mark(node.items)

    for _, obj in message_objs + type_objs:
        mark(obj)
    loader.objects = [o for o in loader.objects if o.name in used]
    used_scalars = set()

    def mark_scalar(schema_node):
        used_scalars.add(id(schema_node))

    for obj in loader.objects:
        for f in obj.fields:
            mark_scalar(f.node.items if isinstance(f.node, Arr) else f.node)
    loader.scalar_defs = [(n, s) for n, s in loader.scalar_defs if id(s) in used_scalars]

    em = Emitter(index, loader, message_objs, type_objs)
    em.collect_limits()
    source = em.source()  # before the header: collects patterns and rules
    return em.header(), source


def write_atomically(path, text):
    # Make may run this rule for the .h and the .c at once: a rename never
    # leaves a half-written file behind.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".contractgen-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3:
        print("usage: contractgen.py CONTRACTS_DIR OUT_DIR", file=sys.stderr)
        return 2
    root, out_dir = argv[1], argv[2]
    try:
        header, source = generate(root)
    except ContractError as e:
        print(f"contractgen: error: {e}", file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    write_atomically(os.path.join(out_dir, "contracts_gen.h"), header)
    write_atomically(os.path.join(out_dir, "contracts_gen.c"), source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

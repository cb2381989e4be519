#!/usr/bin/env python3
"""catalog.py - the event catalog, generated from contracts/.

Usage:
  catalog.py generate OUT_DIR   write the catalog (Markdown, Mermaid, AsyncAPI)
  catalog.py check OUT_DIR      TAP: OUT_DIR equals what generate writes, and
                                the C sources send and handle exactly the
                                messages the index gives each service
Both need $SHOP_CONTRACT_HISTORY: the directory tools/contract-history.sh
writes from git (make docs and tests/run-all.sh make it on the host), the
source of each message's version history; without it they fail and say so.

Reads contracts/index.json, the schemas and examples, contracts/saga.json
(the orders state machine, checked against the C by
tests/unit/test_saga_table.c), contracts/services.json, the services'
migrations (tables), docker-compose.yml (databases), the gateway's route
comment, the bus and consumer constants in libs/bus/bus.h and
libs/svc/svc.h, and the history of contracts/ with each change classed by
tests/contracts/check_compat.py against contracts/compat-exceptions.json.
Output is deterministic: no timestamps but commit dates, hashes cut to a
fixed length, stable order; the same commits give the same pages in any
full clone. Run from the repository root.

A commit cannot name its own hash: pages generated before committing show
that commit's schema changes as "uncommitted", and `check` accepts them so
for HEAD's own changes only; `make docs` after the commit fills in the hash
and date (commit it with the next change).
"""

import difflib
import json
import os
import re
import sys
import tempfile

ROOT = "."
CONTRACTS = "contracts"
HASH_LEN = 10  # fixed, not git's --short (which grows with the repository)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "contracts"))
import check_compat  # noqa: E402
PARTICIPANTS = ["client", "gateway", "orders", "inventory", "payments", "shipping", "notifications"]


def load(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return json.load(f)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


class Model:
    def __init__(self):
        self.index = load(f"{CONTRACTS}/index.json")
        self.saga = load(f"{CONTRACTS}/saga.json")
        self.services = load(f"{CONTRACTS}/services.json")["services"]
        self.messages = self.index["messages"]
        self.by_name = {m["name"]: m for m in self.messages}
        self.streams = {s["name"]: s for s in self.index["streams"]}
        self.schemas = {}
        for sub in ("schemas", "http"):
            d = os.path.join(ROOT, CONTRACTS, sub)
            for f in sorted(os.listdir(d)):
                if f.endswith(".json"):
                    self.schemas[f"{sub}/{f}"] = load(f"{CONTRACTS}/{sub}/{f}")
        self.schemas["envelope.v1.json"] = load(f"{CONTRACTS}/envelope.v1.json")
        self.history = {}  # schema file -> [(commit, date, subject, class, [(Break, exception)])]
        self.head = None
        self.constants = {}
        for h in ("libs/bus/bus.h", "libs/svc/svc.h"):
            for m in re.finditer(r"^#define (\w+)[ \t]+((?:(?!/\*)[^\n])+?)[ \t]*(?:/\*\s*(.*?)\s*\*/)?$", read(h), re.M):
                self.constants[m.group(1)] = (m.group(2).strip(), m.group(3) or "")

    def load_history(self, hdir):
        """Every step of tools/contract-history.sh's output, classed by the
        compatibility check, by schema file, oldest first."""
        exceptions = check_compat.Exceptions(os.path.join(ROOT, CONTRACTS, "compat-exceptions.json"))
        for commit, date, subject, files in check_compat.history(hdir, exceptions):
            for rel, (cls, judged) in files.items():
                self.history.setdefault(rel, []).append((commit, date, subject, cls, judged))
        with open(os.path.join(hdir, "HEAD"), encoding="utf-8") as f:
            self.head = f.read().strip()

    def pending_head(self):
        """The history as it read before HEAD was committed: HEAD's own
        changes as uncommitted ones (see the module's docstring)."""
        if any(c == "worktree" for steps in self.history.values() for c, *_ in steps):
            return None
        return {rel: [("worktree", "", "(uncommitted)", *rest) if c == self.head else (c, d, subj, *rest)
                      for c, d, subj, *rest in steps]
                for rel, steps in self.history.items()}

    def const(self, name):
        return self.constants[name][0]

    def service_names(self):
        return [s["name"] for s in self.services]

    def consumers_of(self, service):
        """(stream, durable, [messages]) for each durable of service, as
        contractgen derives them: one per stream it reads, named after it."""
        out = []
        for s in self.index["streams"]:
            ms = [m for m in self.messages if m["stream"] == s["name"] and service in m["consumers"]]
            if ms:
                out.append((s["name"], service, ms))
        return out

    def resolve(self, rel, node):
        """Follows a $ref from schema file rel; returns (file, node)."""
        ref = node.get("$ref")
        if not ref:
            return rel, node
        path, _, frag = ref.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(rel), path)).replace(os.sep, "/") if path else rel
        doc = self.schemas[target]
        for part in frag.strip("/").split("/") if frag else []:
            doc = doc[part]
        return self.resolve(target, doc)

    def inline(self, rel, node):
        """The schema with every $ref replaced by its target (for AsyncAPI)."""
        if isinstance(node, dict):
            if "$ref" in node:
                target_rel, target = self.resolve(rel, node)
                merged = dict(self.inline(target_rel, target))
                for k, v in node.items():
                    if k != "$ref":
                        merged[k] = v
                return merged
            return {k: self.inline(rel, v) for k, v in node.items() if k not in ("$schema", "$id", "$defs")}
        if isinstance(node, list):
            return [self.inline(rel, v) for v in node]
        return node


# ---------------------------------------------------------------------------
# Fields

def printable(value):
    """A schema value as text for a page: control characters (a pattern may
    name them, decoded from the schema's \\u escapes) written back as \\uXXXX,
    never as raw bytes in the Markdown."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: "\\u%04x" % ord(m.group()), str(value))


def constraints(node):
    out = []
    for key in ("const", "enum", "pattern", "format", "minLength", "maxLength", "minimum", "maximum",
                "minItems", "maxItems"):
        if key in node:
            v = node[key]
            if key == "enum":
                v = ", ".join(f"`{x}`" for x in v)
            elif key in ("pattern", "const", "format"):
                v = f"`{printable(v)}`"
            out.append(f"{key} {v}")
    return "; ".join(out)


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def fields(model, rel, node, prefix="", required=True):
    """Rows (path, type, required, constraints, description) of a schema."""
    rows = []
    desc_here = node.get("description", "")
    rel2, node2 = model.resolve(rel, node)
    desc = desc_here or node2.get("description", "") or node2.get("title", "")
    typ = node2.get("type", "")
    if prefix:
        shown = typ
        if typ == "array":
            _, item = model.resolve(rel2, node2.get("items", {}))
            shown = f"array of {item.get('type', '')}"
        rows.append((prefix, shown, "yes" if required else "no", constraints(node2), desc))
    if typ == "object":
        req = set(node2.get("required", []))
        for name, sub in node2.get("properties", {}).items():
            rows += fields(model, rel2, sub, f"{prefix}.{name}" if prefix else name, name in req)
    elif typ == "array":
        item_rel, item = model.resolve(rel2, node2.get("items", {}))
        if item.get("type") == "object":
            for name, sub in item.get("properties", {}).items():
                rows += fields(model, item_rel, sub, f"{prefix}[].{name}", name in set(item.get("required", [])))
    return rows


def field_table(model, rel):
    rows = fields(model, rel, model.schemas[rel])
    out = ["| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join([f"`{r[0]}`"] + [md_cell(x) for x in r[1:]]) + " |")
    return out


def message_key(m):
    """A message's page, example directory and C name: its name for v1,
    <name>_v<N> for later majors (tools/contractgen.py's rule)."""
    return m["name"] if m["version"] == 1 else f"{m['name']}_v{m['version']}"


def message_label(m):
    """A message's name in tables and diagrams: its title, and its major
    version when it is not the first."""
    return m["title"] if m["version"] == 1 else f"{m['title']} v{m['version']}"


def message_id(m):
    """A message's id among AsyncAPI components and operations."""
    return m["title"] if m["version"] == 1 else f"{m['title']}V{m['version']}"


def first_example(name):
    d = os.path.join(ROOT, CONTRACTS, "examples", name, "valid")
    files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    return files[0], load(f"{CONTRACTS}/examples/{name}/valid/{files[0]}")


# ---------------------------------------------------------------------------
# Flows: simulate the saga's scenarios

class Step:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)


def simulate(model, scenario):
    """Steps of one scenario: messages in causal (FIFO) order, each sent by
    its producer to its consumers, orders moving by the saga's transitions
    and the others by their reactions whose `when` the scenario gives."""
    given = set(scenario.get("given", []))
    saga = model.saga
    status, requested, reason = None, False, None
    steps = []
    queue = []

    def emit(name, note=None, cause=None):
        queue.append((name, note))

    def orders_input(inp, with_reason=None):
        nonlocal status, requested, reason
        for t in saga["transitions"]:
            if (t["from"] == status and t.get("requested", False) == requested and t["on"] == inp
                    and t.get("with_reason") in (None, with_reason)):
                before = status + (" (cancellation requested)" if requested else "")
                status = t["to"]
                note = f"{before} → {status}"
                if "request" in t:
                    requested = True
                    note += " (cancellation requested" + (f": {t['request']})" if t["request"] != "again" else ", again)")
                    reason = reason or t["request"]
                    steps.append(Step("note", who="orders", text=note))
                    emit(saga["emits"]["request"])
                else:
                    if status == "CANCELLED":
                        why = reason if t.get("reason") == "the request's" else t["reason"]
                        note += f" ({why})"
                    steps.append(Step("note", who="orders", text=note))
                    emit(saga["emits"][status])
                return
        steps.append(Step("note", who="orders", text=f"{inp}: ignored, order is {status}"))

    reactions = saga["reactions"]

    def react(service, on):
        for r in reactions:
            if r["service"] == service and r["on"] == on and r.get("when", None) in given | {None}:
                if r.get("when") is None and any(x["service"] == service and x["on"] == on and x.get("when")
                                                 for x in reactions) and not r["emits"]:
                    continue
                if r.get("note"):
                    steps.append(Step("note", who=service, text=r["note"]))
                for e in r["emits"]:
                    emit(e)

    steps.append(Step("http", text="POST /orders"))
    react("gateway", "POST /orders")
    cancel_after = scenario.get("cancel_after")
    timer_fired = False
    while queue or (scenario.get("timer") and not timer_fired):
        if not queue:
            timer_fired = True
            inp = next(i for i in saga["inputs"] if i["name"] == scenario["timer"])
            steps.append(Step("note", who="orders", text=f"{inp['timer']} passed (sweeper)"))
            orders_input(inp["name"])
            continue
        name, _ = queue.pop(0)
        m = model.by_name[name]
        drawn = [c for c in m["consumers"] if c != "gateway"] or ["gateway"]
        steps.append(Step("msg", message=m, to=drawn))
        if cancel_after == name:
            cancel_after = None
            steps.append(Step("http", text="POST /orders/{id}/cancel"))
            queue.insert(0, ("cancel_order", None))
        for c in m["consumers"]:
            if c == "orders":
                if name == "place_order":
                    status = "PENDING"
                    steps.append(Step("note", who="orders", text="→ PENDING"))
                    emit("order_placed")
                    continue
                inp = next(i["name"] for i in saga["inputs"] if i.get("message") == name)
                with_reason = None
                if name == "stock_rejected":
                    with_reason = "out_of_stock" if "out_of_stock" in given else "unknown_sku"
                orders_input(inp, with_reason)
            elif c != "gateway":
                react(c, name)
    return steps, status


def mermaid_flow(model, scenario):
    steps, final = simulate(model, scenario)
    out = ["```mermaid", "sequenceDiagram", "    autonumber"]
    for p in PARTICIPANTS:
        out.append(f"    participant {p}")
    for s in steps:
        if s.kind == "http":
            out.append(f"    client->>gateway: {s.text}")
        elif s.kind == "note":
            # ; and # end a statement or start an entity in Mermaid.
            out.append(f"    Note over {s.who}: {s.text.replace(';', ',').replace('#', '')}")
        else:
            m = s.message
            for c in s.to:
                out.append(f"    {m['producer']}-){c}: {m['title']} ({m['subject']})")
    out.append("```")
    return out, final


# ---------------------------------------------------------------------------
# Pages

def link_msg(m, rel=""):
    return f"[{message_label(m)}]({rel}messages/{message_key(m)}.md)"


def page_index(model):
    out = ["# Event catalog", "",
           "Generated by `make docs` (tools/catalog.py) from `contracts/`; do not edit. "
           "`make test` fails when this directory differs from what it generates.", "",
           "Start with the [flows](flows.md) (one order's messages, drawn for the happy path and every "
           "compensation), then a [service](#services), then the [messages](#messages) it sends and receives. "
           "Each service also has an AsyncAPI 3.0 document under [asyncapi/](asyncapi/).", "",
           "## Messages", "",
           "| message | kind | version | subject | stream | producer | consumers | purpose |",
           "|---|---|---|---|---|---|---|---|"]
    for m in model.messages:
        purpose = m["description"].split(". ")[0].rstrip(".") + "."
        out.append(f"| {link_msg(m)} | {m['kind']} | v{m['version']} | `{m['subject']}` | {m['stream']} | "
                   f"[{m['producer']}](services/{m['producer']}.md) | "
                   + ", ".join(f"[{c}](services/{c}.md)" for c in m["consumers"]) + f" | {md_cell(purpose)} |")
    out += ["", "## Services", "", "| service | owns | sends | receives |", "|---|---|---|---|"]
    for s in model.services:
        sends = [m for m in model.messages if m["producer"] == s["name"]]
        recv = [m for m in model.messages if s["name"] in m["consumers"]]
        out.append(f"| [{s['name']}](services/{s['name']}.md) | {s['owns']} | {len(sends)} | {len(recv)} |")
    out += ["", "## Streams", "", "| stream | subjects | owner | holds |", "|---|---|---|---|"]
    for s in model.index["streams"]:
        out.append(f"| {s['name']} | " + ", ".join(f"`{x}`" for x in s["subjects"])
                   + f" | {s['owner']} | {s['description']} |")
    out.append(f"| {model.const('BUS_DEADLETTER_STREAM').strip(chr(34))} | "
               f"`{model.const('BUS_DEADLETTER_PREFIX').strip(chr(34))}.>` | the bus layer | "
               "Messages a consumer gave up on, with the reason in headers. |")
    out += ["", retention(model), ""]
    return out


def retention(model):
    days = int(eval(model.const("BUS_STREAM_MAX_AGE_MS").replace("LL", ""))) // (24 * 3600 * 1000)
    dup = int(model.const("BUS_DUPLICATE_WINDOW_MS")) // 1000
    queues = [s["name"] for s in model.index["streams"] if s.get("retention") == "workqueue"]
    secret = [s["name"] for s in model.index["streams"] if s.get("confidential")]
    text = (f"Every stream keeps messages for {days} days (`BUS_STREAM_MAX_AGE_MS`), with a {dup} s "
            "`Nats-Msg-Id` duplicate window (`BUS_DUPLICATE_WINDOW_MS`), so a republished event is "
            "stored once. They keep them by limits, so every durable reads them")
    if queues:
        text += (f", except {', '.join(queues)}: a work queue, which deletes each message once its "
                 "one consumer acknowledges it")
    text += "."
    if secret:
        text += (f" Confidential: {', '.join(secret)}. Only its producer and its consumers' "
                 "durables can touch it (the console and the observer are denied every way of reading "
                 "it, docs/security.md), and its dead letters keep their headers but no body.")
    return text


def page_message(model, m):
    rel = m["schema"]
    out = [f"# {m['title']} (v{m['version']})", "", f"[← catalog](../README.md)", "",
           m["description"], "",
           "| | |", "|---|---|",
           f"| kind | {m['kind']} |",
           f"| CloudEvents `type` | `{m['type']}` |",
           f"| subject | `{m['subject']}` |",
           f"| stream | {m['stream']} |",
           f"| producer | [{m['producer']}](../services/{m['producer']}.md) (`source` `/shop/{m['producer']}`) |",
           f"| schema | [`contracts/{rel}`](../../../contracts/{rel}) |", "",
           "## Consumers", "",
           "| service | durable (on the stream) |", "|---|---|"]
    for c in m["consumers"]:
        out.append(f"| [{c}](../services/{c}.md) | `{c}` on {m['stream']} |")
    saga_notes = [t for t in model.saga["transitions"]
                  if any(i["name"] == t["on"] and i.get("message") == m["name"] for i in model.saga["inputs"])]
    emitted_on = [k for k, v in model.saga["emits"].items() if v == m["name"]]
    reactions = [r for r in model.saga["reactions"] if m["name"] in r["emits"]]
    out += ["", "## When", ""]
    if model.by_name[m["name"]] is not m:
        # The saga names messages, not versions: it is about the newest.
        newest = model.by_name[m["name"]]
        out.append(f"- Never sent any more: {m['producer']} sends {link_msg(newest, '../')} instead. "
                   f"Those stored before the change are still delivered, and each consumer reads them as "
                   f"v{newest['version']} (libs/evt/ct_versions.c).")
        emitted_on, reactions = [], []
    for r in reactions:
        when = f" (when {r['when'].replace('_', ' ')})" if r.get("when") else ""
        note = f": {r['note']}" if r.get("note") else ""
        out.append(f"- {r['service']} sends it on {r['on']}{when}{note}.")
    for k in emitted_on:
        if k == "request":
            out.append("- orders sends it when a PAID order's cancellation is requested (or asked again).")
        else:
            out.append(f"- orders sends it when an order enters {k}.")
    if saga_notes:
        out += ["", "Orders, on receiving it:", "", "| from | to |", "|---|---|"]
        for t in saga_notes:
            frm = t["from"] + (" (cancellation requested)" if t.get("requested") else "")
            frm += f", reason {t['with_reason']}" if t.get("with_reason") else ""
            to = t["to"] + (f" ({t['reason']})" if t.get("reason") else "")
            to += f", cancellation requested ({t['request']})" if t.get("request") else ""
            out.append(f"| {frm} | {to} |")
    out += ["", "## Fields (`data`)", ""] + field_table(model, rel)
    key = message_key(m)
    fname, ex = first_example(key)
    out += ["", "## Example", "",
            f"`data` of [`contracts/examples/{key}/valid/{fname}`](../../../contracts/examples/{key}/valid/{fname}),"
            " inside the [CloudEvents envelope](../envelope.md):", "",
            "```json", json.dumps(ex, indent=2, ensure_ascii=False), "```", "",
            "## Versions", "", "| version | type | status |", "|---|---|---|"]
    versions = sorted((x for x in model.messages if x["name"] == m["name"]), key=lambda x: x["version"])
    for v in versions:
        status = ("current" if v is versions[-1] else
                  f"superseded by v{versions[-1]['version']}: no longer sent; stored ones are still read")
        out.append(f"| [v{v['version']}]({message_key(v)}.md) | `{v['type']}` | {status} |")
    out += ["", "A compatible change keeps the version; a breaking one is a new major version "
            "(new `type` and subject), and the old one stays listed here until it is retired "
            "(checked by `tests/contracts/check_compat.py`).", ""]
    out += version_history(model, rel, "../../..")
    return out


def version_history(model, rel, up):
    """Each commit that changed schema file rel or a definition it refers to,
    with what the compatibility check made of it."""
    out = ["## Version history", "",
           f"Every commit that changed [`contracts/{rel}`]({up}/contracts/{rel}) or a definition it refers to, "
           "oldest first, as `tests/contracts/check_compat.py` classes it against the version before.", "",
           "| date | commit | change | compatibility |", "|---|---|---|---|"]
    for commit, date, subject, cls, judged in model.history.get(rel, []):
        if cls in ("breaking, excepted", "breaking"):
            rules = {}
            for b, _ in judged:
                rules.setdefault(b.rule, []).append(f"`{b.at or '/'}`")
            detail = "; ".join(f"{r} at {', '.join(ats)}" for r, ats in sorted(rules.items()))
            if cls == "breaking, excepted":
                cls = f"breaking, [excepted]({up}/contracts/compat-exceptions.json) ({detail})"
            else:
                cls = f"breaking, not excepted ({detail}): the compatibility check fails"
        if cls == "new major version":
            major = re.search(r"\.v(\d+)\.json$", rel)
            cls = f"new major version (v{major.group(1)})" if major else "new"
        shown = "uncommitted" if commit == "worktree" else f"`{commit[:HASH_LEN]}`"
        out.append(f"| {date or '—'} | {shown} | {md_cell(subject)} | {cls} |")
    return out + [""]


def page_envelope(model):
    rel = "envelope.v1.json"
    out = ["# The envelope", "", "[← catalog](README.md)", "", model.schemas[rel]["description"], "",
           "Published with headers `Nats-Msg-Id` (the event `id`) and "
           f"`Content-Type: {model.const('BUS_CONTENT_TYPE').strip(chr(34))}`.", "",
           "## Attributes", ""] + field_table(model, rel)
    fname = sorted(os.listdir(os.path.join(ROOT, CONTRACTS, "examples", "envelope", "valid")))[0]
    out += ["", "## Example", "", "```json",
            json.dumps(load(f"{CONTRACTS}/examples/envelope/valid/{fname}"), indent=2, ensure_ascii=False),
            "```", ""]
    return out + version_history(model, rel, "../..")


def tables_of(service):
    d = os.path.join(ROOT, "services", service, "migrations")
    tables = []
    for f in sorted(os.listdir(d)):
        for t in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", read(f"services/{service}/migrations/{f}")):
            tables.append((t, f))
    return tables


def database_of(service):
    m = re.search(rf"^  {service}:\n(?:    .*\n|      .*\n)*?      SHOP_DB_URL: (\w+):", read("docker-compose.yml"), re.M)
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(m.group(1), m.group(1)) if m else "?"


def http_routes(service):
    routes = []
    for f in sorted(os.listdir(os.path.join(ROOT, "services", service))):
        if f.endswith(".c"):
            for m in re.finditer(r"^ \*   (GET|POST|PUT|DELETE) +(\S+) +(.*)$", read(f"services/{service}/{f}"), re.M):
                routes.append(m.groups())
    return routes


def page_service(model, s):
    name = s["name"]
    c = model.constants
    out = [f"# {name}", "", "[← catalog](../README.md) · AsyncAPI: [asyncapi/{0}.json](../asyncapi/{0}.json)".format(name), "",
           s["description"], "",
           f"- **Owns:** {s['owns']}.",
           f"- **Database (compose):** {database_of(name)}; its own, no other service can read it.",
           "- **Tables:** " + ", ".join(f"`{t}` ({f})" for t, f in tables_of(name)) + ".", "",
           "## Sends", "", "| message | subject | stream | consumers |", "|---|---|---|---|"]
    for m in model.messages:
        if m["producer"] == name:
            out.append(f"| {link_msg(m, '../')} | `{m['subject']}` | {m['stream']} | {', '.join(m['consumers'])} |")
    out += ["", "Every message is written to the service's outbox in the transaction of the change that "
            "causes it; a relay publishes it with `Nats-Msg-Id` = event id and marks it after the JetStream ack.",
            "", "## Receives", "", "| durable | stream | messages (filter subjects) |", "|---|---|---|"]
    for stream, durable, ms in model.consumers_of(name):
        out.append(f"| `{durable}` | {stream} | " + ", ".join(f"{link_msg(m, '../')} `{m['subject']}`" for m in ms) + " |")
    routes = http_routes(name)
    out += ["", "## HTTP", ""]
    if routes:
        out += ["| method | path | does |", "|---|---|---|"]
        out += [f"| {a} | `{b}` | {md_cell(d)} |" for a, b, d in routes]
        out.append("")
    out.append("Every service also serves `/healthz`, `/readyz` and `/metrics` (Prometheus text) on port 8080.")
    out += ["", "## Failure behaviour", "",
            "| setting | value | meaning |", "|---|---|---|"]
    for k in ("BUS_ACK_WAIT_MS", "BUS_MAX_DELIVER", "BUS_MAX_ACK_PENDING", "SVC_RETRY_BASE_MS", "SVC_RETRY_MAX_MS",
              "SVC_DEAD_LETTER_SPARE", "SVC_GIVE_UP_DELIVERY"):
        if k in c:
            out.append(f"| `{k}` | `{c[k][0]}` | {md_cell(c[k][1])} |")
    out += ["", "Each message is settled by a decision table: success or duplicate (the inbox already holds "
            "its id) → ack; a dependency down → nak with a delay doubling from `SVC_RETRY_BASE_MS` up to "
            "`SVC_RETRY_MAX_MS`; malformed or contract-violating, or still failing at delivery "
            "`SVC_GIVE_UP_DELIVERY` → a copy to the dead-letter stream (subject "
            f"`{model.const('BUS_DEADLETTER_PREFIX').strip(chr(34))}.<stream>.<durable>`, reason in "
            "`Shop-Dead-Letter-*` headers), then term."]
    if name == "orders":
        out += ["", "Deadlines: " + "; ".join(f"`{i['timer']}`: {i['description']}"
                                               for i in model.saga["inputs"] if "timer" in i)]
    out.append("")
    return out


def page_flows(model):
    out = ["# Flows", "", "[← catalog](README.md)", "",
           "Generated from the index (who produces and consumes each message) and "
           "[`contracts/saga.json`](../../contracts/saga.json) (the orders state machine, checked against "
           "`orders_decide()` by `tests/unit/test_saga_table.c`, and the other services' reactions): each "
           "scenario is simulated message by message. The gateway consumes every event for its read model; "
           "those arrows are left out unless the gateway is the only consumer.", "",
           "## Who sends what to whom", "", "```mermaid", "flowchart LR"]
    for s in model.service_names():
        out.append(f"    {s}[{s}]")
    edges = {}
    for m in model.messages:
        for c in m["consumers"]:
            edges.setdefault((m["producer"], c), []).append(message_label(m))
    for (p, c), titles in sorted(edges.items()):
        out.append(f"    {p} -- \"{', '.join(titles)}\" --> {c}")
    out += ["```", ""]
    for sc in model.saga["scenarios"]:
        diagram, final = mermaid_flow(model, sc)
        out += [f"## {sc['title']}", "", f"Ends {final}. Scenario `{sc['name']}`: "
                + ", ".join(f"`{g}`" for g in sc.get("given", []))
                + (f"; cancel after {sc['cancel_after']}" if sc.get("cancel_after") else "")
                + (f"; timer {sc['timer']}" if sc.get("timer") else "") + ".", ""] + diagram + [""]
    out += ["## The orders state machine", "", "```mermaid", "stateDiagram-v2", "    [*] --> PENDING: PlaceOrder"]
    for t in model.saga["transitions"]:
        frm = t["from"] + ("_requested" if t.get("requested") else "")
        to = t["to"] + ("_requested" if t.get("request") or (t.get("requested") and t["to"] == "PAID") else "")
        label = t["on"] + (f" ({t['with_reason']})" if t.get("with_reason") else "")
        out.append(f"    {frm} --> {to}: {label}")
    out += ["    SHIPPED --> [*]", "    CANCELLED --> [*]", "```", ""]
    return out


# ---------------------------------------------------------------------------
# AsyncAPI 3.0, one document per service

def asyncapi(model, service):
    c = model.constants
    env = model.inline("envelope.v1.json", model.schemas["envelope.v1.json"])
    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"shop {service}",
            "version": "1.0.0",
            "description": next(s["description"] for s in model.services if s["name"] == service)
            + " Generated from contracts/ by tools/catalog.py.",
        },
        "defaultContentType": model.const("BUS_CONTENT_TYPE").strip('"'),
        "servers": {node: {"host": f"{node}:4222", "protocol": "nats",
                           "description": "A node of the three-node NATS JetStream cluster (docker compose)."}
                    for node in ("nats-1", "nats-2", "nats-3")},
        "channels": {}, "operations": {}, "components": {"messages": {}},
    }
    used = [m for m in model.messages if m["producer"] == service or service in m["consumers"]]
    for m in used:
        cid = m["subject"].replace(".", "_")
        payload = dict(env)
        payload["properties"] = dict(env["properties"])
        payload["properties"]["data"] = model.inline(m["schema"], model.schemas[m["schema"]])
        payload["properties"]["type"] = dict(env["properties"]["type"], const=m["type"])
        _, ex = first_example(message_key(m))
        mid = message_id(m)
        doc["components"]["messages"][mid] = {
            "name": m["title"], "title": m["title"], "summary": m["description"],
            "contentType": model.const("BUS_CONTENT_TYPE").strip('"'),
            "headers": {"type": "object", "properties": {
                "Nats-Msg-Id": {"type": "string", "description": "The event id: JetStream deduplicates on it."},
                "Content-Type": {"type": "string", "const": model.const("BUS_CONTENT_TYPE").strip('"')}}},
            "payload": payload,
            "examples": [{"name": "example", "payload": {"data": ex, "type": m["type"]}}],
        }
        doc["channels"][cid] = {
            "address": m["subject"],
            "description": f"{m['kind'].capitalize()} {m['title']} v{m['version']} on stream {m['stream']}.",
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"}},
            "x-stream": m["stream"],
        }
        ref = {"$ref": f"#/channels/{cid}"}
        msg_ref = [{"$ref": f"#/channels/{cid}/messages/{mid}"}]
        if m["producer"] == service:
            doc["operations"][f"send{mid}"] = {
                "action": "send", "channel": ref, "messages": msg_ref,
                "summary": f"Published through the outbox relay to stream {m['stream']}.",
                "x-outbox": True}
        if service in m["consumers"]:
            doc["operations"][f"receive{mid}"] = {
                "action": "receive", "channel": ref, "messages": msg_ref,
                "summary": f"Pulled by durable {service} on stream {m['stream']}.",
                "bindings": {"nats": {"queue": service, "bindingVersion": "0.1.0"}},
                "x-jetstream": {
                    "stream": m["stream"], "durable": service, "deliverPolicy": "all", "ackPolicy": "explicit",
                    "ackWaitMs": int(c["BUS_ACK_WAIT_MS"][0]), "maxDeliver": int(c["BUS_MAX_DELIVER"][0]),
                    "maxAckPending": int(c["BUS_MAX_ACK_PENDING"][0]),
                    "retryBackoffMs": {"base": int(c["SVC_RETRY_BASE_MS"][0]), "max": int(c["SVC_RETRY_MAX_MS"][0]),
                                       "factor": 2},
                    "deadLetterSubject": f"{c['BUS_DEADLETTER_PREFIX'][0].strip(chr(34))}.{m['stream']}.{service}",
                    "deadLetterStream": c["BUS_DEADLETTER_STREAM"][0].strip('"')}}
    return doc


# ---------------------------------------------------------------------------

def generate(model):
    files = {"README.md": page_index(model), "flows.md": page_flows(model), "envelope.md": page_envelope(model)}
    for m in model.messages:
        files[f"messages/{message_key(m)}.md"] = page_message(model, m)
    for s in model.services:
        files[f"services/{s['name']}.md"] = page_service(model, s)
        files[f"asyncapi/{s['name']}.json"] = json.dumps(asyncapi(model, s["name"]), indent=2,
                                                         ensure_ascii=False).splitlines()
    return {k: "\n".join(v).rstrip("\n") + "\n" for k, v in files.items()}


def write(out, files):
    for rel, text in sorted(files.items()):
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def existing(out):
    found = {}
    for dirpath, _, names in os.walk(out):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, encoding="utf-8") as f:
                found[os.path.relpath(p, out)] = f.read()
    return found


def code_check(model):
    """(ok, description, diagnostics) for each service: the messages its C
    emits and handles are exactly those the index gives it."""
    results = []
    for s in model.service_names():
        srcs = "".join(read(f"services/{s}/{f}") for f in sorted(os.listdir(os.path.join(ROOT, "services", s)))
                       if f.endswith(".c"))
        emitted = {x.lower() for x in re.findall(r"svc_emit\(\s*\w+,\s*CT_MSG_(\w+)", srcs)}
        handled = {x.lower() for x in re.findall(r"\{\s*CT_MSG_(\w+),\s*\w+\s*\}", srcs)}
        # Only the newest major of a message is sent; an older one a
        # service also consumes reaches the handler of the newest
        # (libs/evt/ct_versions.c), so only the newest has a route.
        newest = {}
        for m in model.messages:
            newest[m["name"]] = max(newest.get(m["name"], 0), m["version"])
        current = [m for m in model.messages if m["version"] == newest[m["name"]]]
        want_e = {message_key(m) for m in current if m["producer"] == s}
        want_h = {message_key(m) for m in current if s in m["consumers"]}
        for what, got, want in (("sends", emitted, want_e), ("handles", handled, want_h)):
            diag = [f"the code {what} {x}, the index does not say so" for x in sorted(got - want)]
            if what == "handles" and not handled:
                # No handler table (the gateway projects every event it reads
                # through one function): each message its code names must be
                # one it sends or receives.
                named = {x.lower() for x in re.findall(r"CT_MSG_([A-Z0-9_]+)", srcs)}
                diag = [f"the code names {x}, which the index neither sends nor delivers to {s}"
                        for x in sorted(named - want_h - want_e)]
                results.append((not diag, f"{s} names only messages the index gives it ({len(named)})", diag))
                continue
            diag += [f"the index says {s} {what} {x}, the code does not" for x in sorted(want - got)]
            results.append((not diag, f"{s} {what} exactly the messages the index gives it ({len(want)})", diag))
    return results


def main(argv):
    if len(argv) != 3 or argv[1] not in ("generate", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    model = Model()
    hdir = os.environ.get("SHOP_CONTRACT_HISTORY", "")
    if not hdir or not os.path.exists(os.path.join(hdir, "commits")):
        why = (f"catalog: no contracts history in SHOP_CONTRACT_HISTORY={hdir!r}: the version history comes "
               "from git; run tools/contract-history.sh DIR on the host (a full clone) and set "
               "SHOP_CONTRACT_HISTORY=DIR, as make docs and tests/run-all.sh do")
        if argv[1] == "check":
            print(f"not ok 1 - {why}")
            return 1
        print(why, file=sys.stderr)
        return 2
    model.load_history(hdir)
    files = generate(model)
    if argv[1] == "generate":
        if os.path.isdir(argv[2]):
            for rel in existing(argv[2]):
                if rel not in files:
                    os.remove(os.path.join(argv[2], rel))
        write(argv[2], files)
        return 0
    n, failed = 0, 0
    have = existing(argv[2]) if os.path.isdir(argv[2]) else {}
    diag = []
    note = ""
    pending = model.pending_head()
    if pending is not None and any(have.get(rel) != text for rel, text in files.items()):
        model.history = pending
        before = generate(model)
        if all(have.get(rel) == text for rel, text in before.items()) and set(have) == set(before):
            files = before
            note = f"; HEAD {model.head[:HASH_LEN]}'s own schema changes still read uncommitted: make docs fills them in"
    for rel in sorted(set(files) | set(have)):
        if rel not in have:
            diag.append(f"missing: {rel}")
        elif rel not in files:
            diag.append(f"not generated (stale): {rel}")
        elif have[rel] != files[rel]:
            diag.append(f"differs: {rel}")
            diag += list(difflib.unified_diff(have[rel].splitlines(), files[rel].splitlines(),
                                              "committed", "generated", lineterm="", n=1))[:20]
    checks = [(not diag, f"{argv[2]} is what `make docs` generates ({len(files)} files){note}", diag)]
    checks += code_check(model)
    for ok, desc, d in checks:
        n += 1
        print(f"{'ok' if ok else 'not ok'} {n} - catalog: {desc}")
        if not ok:
            failed += 1
            for line in d:
                print(f"#   {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

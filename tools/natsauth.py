#!/usr/bin/env python3
"""natsauth.py - the NATS users and their permissions, from contracts/index.json.

Usage: natsauth.py generate CONTRACTS_DIR OUT_FILE
       natsauth.py check CONTRACTS_DIR FILE      (exit 1 when FILE is stale)

Writes the `authorization` block that infra/nats/nats.conf includes: one user
per service, allowed to publish only the subjects the index says it
produces and to use only the JetStream API of its own durables; a `console`
and an `observer` user that may read every stream through ephemeral
consumers they name, but never touch a durable or a stream, and may not read a
stream the index marks confidential (CARDS) in any way; and `admin`,
which may do everything (it declares the streams and durables: `shopctl
declare`, the compose service nats-init). docs/security.md says why each
permission is there.

Each password is an environment variable of the NATS node,
SHOP_NATS_PASSWORD_<USER>, which nats-server substitutes when it reads the
file (docker-compose.yml gives every node all of them, each service only its
own). The file is checked in (infra/nats/auth.conf) so a reviewer reads the
permissions in the diff; `make check` fails when it differs from what this
script generates, so the index stays the one source.

What the services do on the bus besides their events is fixed by libs/bus
and libs/svc, and named once here with the C constant it mirrors:
  dead letters  deadletter.<STREAM>.<durable>   BUS_DEADLETTER_PREFIX
  log lines     logs.<service>.<level>          BUS_LOG_SUBJECT_PREFIX
  registry      $SRV.PING|INFO|STATS[.<service>[.<id>]], and the status
                endpoint shop.<service>.<id>.status    libs/bus/bus_registry.c
  replies       _INBOX.<user>.>: each user's own inbox prefix, which
                bus_connect sets from SHOP_NATS_USER (BUS_INBOX_PREFIX), so
                no user can subscribe to another's replies.
Standard library only; the output depends only on the index.
"""

import json
import os
import sys

DEADLETTER_STREAM = "DEADLETTER"   # BUS_DEADLETTER_STREAM
DEADLETTER_PREFIX = "deadletter"   # BUS_DEADLETTER_PREFIX
LOG_PREFIX = "logs"                # BUS_LOG_SUBJECT_PREFIX
INBOX_PREFIX = "_INBOX"            # BUS_INBOX_PREFIX
STATUS_PREFIX = "shop"             # the registry's status endpoint
ADMIN = "admin"
CONSOLE = "console"
OBSERVER = "observer"


def password_var(user):
    return "SHOP_NATS_PASSWORD_" + user.upper()


def load(contracts_dir):
    with open(os.path.join(contracts_dir, "index.json"), encoding="utf-8") as f:
        return json.load(f)


def services(index):
    """The services, each once, in stream order (the gateway owns two)."""
    return list(dict.fromkeys(s["owner"] for s in index["streams"]))


def durables(index):
    """(service, stream) for each durable, as contractgen.py derives them:
    one per consuming service and stream, named after the service."""
    streams = [s["name"] for s in index["streams"]]
    out = []
    for service in services(index):
        for stream in streams:
            if any(m["stream"] == stream and service in m["consumers"] for m in index["messages"]):
                out.append((service, stream))
    return out


def registry_subscribe(service):
    """What the NATS service API (micro) subscribes to for one service."""
    subs = []
    for verb in ("PING", "INFO", "STATS"):
        subs += [f"$SRV.{verb}", f"$SRV.{verb}.{service}", f"$SRV.{verb}.{service}.*"]
    return subs + [f"{STATUS_PREFIX}.{service}.>"]


def superseded(index, message):
    """Whether the index holds a newer major version of MESSAGE: it stays
    listed so that what is stored of it can be read, but its producer has
    moved on (libs/evt/ct_versions.h) and may no longer publish it; the
    runtime refuses to emit it too (svc_emit)."""
    return any(m["name"] == message["name"] and m["version"] > message["version"]
               for m in index["messages"])


def service_user(index, service, all_durables):
    mine = [stream for s, stream in all_durables if s == service]
    owned = [s["name"] for s in index["streams"] if s["owner"] == service]
    produced = [m["subject"] for m in index["messages"]
                if m["producer"] == service and not superseded(index, m)]
    info = sorted(set([DEADLETTER_STREAM] + owned + mine))
    publish = list(produced)
    publish += [f"{DEADLETTER_PREFIX}.{stream}.{service}" for stream in mine]
    publish += [f"{LOG_PREFIX}.{service}.*"]
    publish += [f"$JS.API.STREAM.INFO.{stream}" for stream in info]
    for stream in mine:
        publish += [f"$JS.API.CONSUMER.INFO.{stream}.{service}",
                    f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{service}",
                    f"$JS.ACK.{stream}.{service}.>"]
    subscribe = [f"{INBOX_PREFIX}.{service}.>"] + registry_subscribe(service)
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe},
            "allow_responses": True}


def confidential_streams(index):
    """The streams the index marks confidential (CARDS): only their
    producer and their consumers' durables may touch what they hold."""
    return [s for s in index["streams"] if s.get("confidential")]


def reader_denials(index):
    """(publish deny, subscribe deny) that keep a reader (the console, the
    observer) out of every confidential stream, whatever the allow list
    grants: no consumer of any kind on it (named, unnamed, durable), no
    fetch, no direct or stored-message read, and no subscription to its
    subjects. Stream and consumer info stay allowed: they hold counts, not
    messages."""
    publish, subscribe = [], []
    for s in confidential_streams(index):
        n = s["name"]
        publish += [f"$JS.API.CONSUMER.CREATE.{n}", f"$JS.API.CONSUMER.CREATE.{n}.>",
                    f"$JS.API.CONSUMER.DURABLE.CREATE.{n}.>", f"$JS.API.CONSUMER.MSG.NEXT.{n}.>",
                    f"$JS.API.DIRECT.GET.{n}", f"$JS.API.DIRECT.GET.{n}.>",
                    f"$JS.API.STREAM.MSG.GET.{n}"]
        subscribe += list(s["subjects"])
    return publish, subscribe


def reader_publish(durable_names):
    """Read-only JetStream: stream and consumer info, direct reads, and
    ephemeral consumers (the console's watches and the JavaScript clients'
    ordered consumers), which it may create, pull from and delete; never a
    durable of a service (denied by name), never a stream."""
    allow = ["$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST",
             "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.>",
             "$JS.API.CONSUMER.NAMES.*", "$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.INFO.*.*",
             "$JS.API.CONSUMER.CREATE.>", "$JS.API.CONSUMER.DELETE.*.*",
             "$JS.API.CONSUMER.MSG.NEXT.*.*", "$JS.FC.>"]
    # The create subject without a consumer name, $JS.API.CONSUMER.CREATE.<stream>,
    # is denied: a name in the request body would replace the consumer of
    # that name, a durable included (nats-server 2.10 turns it into an
    # ephemeral one), and the permissions cannot see the body. The named
    # form, .CREATE.<stream>.<name>[.<filter>], is what the denials below
    # can see; the console's watches (libs/bus/bus_watch.c) and nats.js's
    # ordered consumers use only that one.
    deny = ["$JS.API.CONSUMER.DURABLE.CREATE.>", "$JS.API.CONSUMER.CREATE.*"]
    for d in durable_names:
        deny += [f"$JS.API.CONSUMER.CREATE.*.{d}", f"$JS.API.CONSUMER.CREATE.*.{d}.>",
                 f"$JS.API.CONSUMER.DELETE.*.{d}", f"$JS.API.CONSUMER.MSG.NEXT.*.{d}"]
    return allow, deny


def users(index):
    all_durables = durables(index)
    durable_names = sorted(set(s for s, _ in all_durables))
    out = [(ADMIN, "declares the streams and durables (shopctl declare, nats-init), shopctl, "
                   "the load test and the test harness: everything",
            {"publish": ">", "subscribe": ">"})]
    secret_publish, secret_subscribe = reader_denials(index)
    allow, deny = reader_publish(durable_names)
    out.append((CONSOLE, "the console: reads every stream but the confidential ones through "
                         "named ephemeral consumers, the registry and the warnings; registers and "
                         "logs as itself",
                {"publish": {"allow": allow + ["$SRV.PING", "$SRV.INFO.>", f"{STATUS_PREFIX}.*.*.status",
                                               f"{LOG_PREFIX}.{CONSOLE}.*"], "deny": deny + secret_publish},
                 "subscribe": {"allow": [f"{INBOX_PREFIX}.{CONSOLE}.>", f"{LOG_PREFIX}.>"]
                               + registry_subscribe(CONSOLE), "deny": secret_subscribe},
                 "allow_responses": True}))
    allow, deny = reader_publish(durable_names)
    out.append((OBSERVER, "read-only, and never a confidential stream: the JavaScript follower "
                          "and the live contract check",
                {"publish": {"allow": allow, "deny": deny + secret_publish},
                 "subscribe": {"allow": [f"{INBOX_PREFIX}.{OBSERVER}.>"], "deny": secret_subscribe}}))
    for service in services(index):
        out.append((service, f"the {service} service: publishes what the index says it produces, "
                             "fetches from its own durables only",
                    service_user(index, service, all_durables)))
    return out


def conf_string(s):
    return json.dumps(s)  # nats-server reads JSON strings; "$..." stays a literal


def render_perm(p, indent):
    pad = "  " * indent
    if isinstance(p, str):
        return conf_string(p)
    lines = ["{"]
    for k, v in p.items():
        if isinstance(v, bool):
            lines.append(f"{pad}  {k}: {'true' if v else 'false'}")
        elif isinstance(v, list):
            lines.append(f"{pad}  {k}: [")
            lines += [f"{pad}    {conf_string(x)}" for x in v]
            lines.append(f"{pad}  ]")
        else:
            lines.append(f"{pad}  {k}: {render_perm(v, indent + 1)}")
    lines.append(pad + "}")
    return "\n".join(lines)


def render(index):
    out = ["# GENERATED by tools/natsauth.py from contracts/index.json: do not edit.",
           "# `make check` fails when this file differs from what the script writes.",
           "# The NATS users of the shop and what each may publish and subscribe to",
           "# (docs/security.md). Passwords come from the node's environment",
           "# (SHOP_NATS_PASSWORD_<USER>, docs/configuration.md).",
           "authorization {",
           "  users: ["]
    for user, why, perms in users(index):
        out.append(f"    # {why}")
        out.append("    {")
        out.append(f"      user: {conf_string(user)}")
        out.append(f"      password: ${password_var(user)}")
        out.append(f"      permissions: {render_perm(perms, 3)}")
        out.append("    }")
    out += ["  ]", "}", ""]
    return "\n".join(out)


def main(argv):
    if len(argv) != 4 or argv[1] not in ("generate", "check"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    text = render(load(argv[2]))
    if argv[1] == "generate":
        with open(argv[3], "w", encoding="utf-8") as f:
            f.write(text)
        return 0
    try:
        with open(argv[3], encoding="utf-8") as f:
            have = f.read()
    except OSError as e:
        print(f"not ok - {argv[3]} is what tools/natsauth.py generates ({e})")
        return 1
    if have != text:
        print(f"not ok - {argv[3]} is what tools/natsauth.py generates from contracts/index.json "
              f"(run: python3 tools/natsauth.py generate contracts {argv[3]})")
        return 1
    print(f"ok - {argv[3]} is what tools/natsauth.py generates from contracts/index.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

// bus-check.mjs START - the live contract check, run by the system tests
// after their cases against the deployment they used (SHOP_NATS_URL).
//
// Every message in every stream (limits retention: everything the cases sent
// is still there) is validated: the envelope strictly as CloudEvents 1.0 and
// as contracts/envelope.v1.json, the data against its schema, type, subject
// and source against the index. Then coverage: every index message was
// produced by its producer, and every consumer listed for it acked at least
// one (its durable's ack floor passed one); the durables on the streams are
// exactly those the index derives, with exactly its filter subjects; no
// stream or subject outside the index holds anything. TAP numbered from START.
//
// A confidential stream (CARDS: the card tokens) is not read: this user may
// not, and the check proves only what its counts say (stream and durable
// info): cards were sent, and its one consumer took every one. A message
// superseded by a newer major version must not have been sent at all.
//
// The cases publish some messages themselves, and list each one, as
// "STREAM SEQ KIND SUBJECT MSG_ID", in the file SHOP_INJECTED names
// (tests/system/cases.sh; run.sh keeps it in build/system-logs/injected):
//   injected  a duplicate or an early event, valid but for its Nats-Msg-Id:
//             held to every other rule, and not counted as produced;
//   bad       deliberately broken (poison, a forged source) to be
//             dead-lettered: skipped, and the skip is counted and said.
// Exactly those stream sequences are treated so, and each one listed must
// be found: any other message is held to every rule.
import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { natsOptions } from "./lib/connect.mjs";
import { loadContracts, messageProblems } from "./lib/contracts.mjs";

const c = loadContracts();
let n = Number(process.argv[2] || 0), failed = 0;
const check = (ok, desc, diag = []) => {
  n++;
  console.log(`${ok ? "ok" : "not ok"} ${n} - bus: ${desc}`);
  if (!ok) { failed++; for (const d of diag.slice(0, 20)) console.log(`#   ${d}`); if (diag.length > 20) console.log(`#   (${diag.length - 20} more)`); }
};

const nc = await connect(natsOptions("bus-check"));
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const DLQ = "DEADLETTER";
const injections = new Map(); // "STREAM SEQ" -> kind
const listing = process.env.SHOP_INJECTED;
const listProblems = [];
if (listing) {
  let text = "";
  try { text = readFileSync(listing, "utf8"); } catch (e) { if (e.code !== "ENOENT") listProblems.push(`${listing}: ${e.message}`); }
  for (const line of text.split("\n").filter((l) => l.trim())) {
    const [stream, seq, kind] = line.trim().split(/\s+/);
    if (!/^[0-9]+$/.test(seq || "") || !["injected", "bad"].includes(kind)) listProblems.push(`${listing}: cannot read "${line}"`);
    else injections.set(`${stream} ${seq}`, kind);
  }
}
const known = new Set([...c.index.streams.map((s) => s.name), DLQ]);
const streams = [];
for await (const si of jsm.streams.list()) streams.push(si);
check(streams.every((s) => known.has(s.config.name)), "every stream is an index stream or the dead-letter stream",
  streams.filter((s) => !known.has(s.config.name)).map((s) => `unknown stream ${s.config.name}`));

// Issue 7: no message outside a confidential stream carries a card token.
// The only ones allowed are the PlaceOrder v1 commands the cases inject as
// stored before the upgrade (listed as injected, on GATEWAY).
const tokenHolders = [];
const cardRe = /card_token|tok_visa|tok_flaky|tok_declined/;
const seen = new Map();     // subject -> [stream seqs]
const producedBy = new Map(); // type -> set of sources
let total = 0;
const bad = [], strays = [];
const found = new Set();
let skipped = 0;
for (const s of c.index.streams) {
  const si = streams.find((x) => x.config.name === s.name);
  if (!si) { check(false, `stream ${s.name} exists`); continue; }
  if (s.confidential) continue; // not ours to read: counted below
  if (si.state.messages === 0) continue;
  const oc = await js.consumers.get(s.name); // ordered, ephemeral: reads without a durable
  const it = await oc.consume();
  for await (const m of it) {
    total++;
    const kind = injections.get(`${s.name} ${m.seq}`);
    if (kind) found.add(`${s.name} ${m.seq}`);
    if (kind === "bad") {
      skipped++;
      if (m.info.pending === 0) break;
      continue;
    }
    if (cardRe.test(m.string()) && !(kind === "injected" && s.name === "GATEWAY" && m.subject.endsWith(".v1")))
      tokenHolders.push(`${s.name} #${m.seq} ${m.subject}`);
    const ev = (() => { try { return JSON.parse(m.string()); } catch { return undefined; } })();
    if (!c.bySubject.has(m.subject)) strays.push(`${s.name} #${m.seq}: subject ${m.subject}`);
    const injected = kind === "injected";
    const problems = ev === undefined ? ["payload is not JSON"] : messageProblems(c, m.subject, ev);
    if (!injected && m.headers?.get("Nats-Msg-Id") !== ev?.id) problems.push("Nats-Msg-Id is not the event id");
    if (problems.length) bad.push(`${s.name} #${m.seq} ${m.subject}: ${problems.join("; ")}`);
    if (!seen.has(m.subject)) seen.set(m.subject, []);
    seen.get(m.subject).push(m.seq);
    if (ev && typeof ev.type === "string" && !injected) {
      if (!producedBy.has(ev.type)) producedBy.set(ev.type, new Set());
      producedBy.get(ev.type).add(ev.source);
    }
    if (m.info.pending === 0) break;
  }
}
for (const k of injections.keys()) if (!found.has(k)) listProblems.push(`listed as injected but not on the stream: ${k}`);
const said = skipped ? ` (${skipped} deliberately bad ones the cases injected skipped)` : "";
if (skipped) console.log(`# skipped, listed as bad by the cases: ${[...injections].filter(([q, k]) => k === "bad" && found.has(q)).map(([q]) => q.replace(" ", " #")).join(", ")}`);
check(total > 0 && bad.length === 0, `all ${total - skipped} messages on the streams are CloudEvents 1.0 and valid against the contracts${said}`, bad);
check(listProblems.length === 0, `every message the cases list as injected (${injections.size}) is on its stream`, listProblems);
check(strays.length === 0, "every stored message's subject is in the index", strays);
// The dead letters too: a confidential stream's keep no body.
let dead = 0;
const dlqInfo = streams.find((x) => x.config.name === DLQ);
if (dlqInfo && dlqInfo.state.messages > 0) {
  const oc = await js.consumers.get(DLQ);
  for await (const m of await oc.consume()) {
    dead++;
    if (cardRe.test(m.string()) && !m.headers?.get("Shop-Dead-Letter-Subject")?.startsWith("gateway.command.place_order.v1"))
      tokenHolders.push(`${DLQ} #${m.seq} ${m.subject}`);
    if (m.info.pending === 0) break;
  }
}
const readStreams = c.index.streams.filter((s) => !s.confidential).map((s) => s.name).join(", ");
check(tokenHolders.length === 0 && total > 0,
  `no card token in any of the ${total} messages on ${readStreams} nor in the ${dead} dead letters (the cards travel only on CARDS)`,
  tokenHolders);

// The durables, as contractgen derives them: one per (service, stream).
const want = new Map();
for (const m of c.index.messages)
  for (const svc of m.consumers) {
    const k = `${m.stream}/${svc}`;
    if (!want.has(k)) want.set(k, []);
    want.get(k).push(m.subject);
  }
const have = new Map();
for (const s of c.index.streams)
  for await (const ci of jsm.consumers.list(s.name))
    if (ci.config.durable_name && !ci.config.durable_name.startsWith("follow-")) have.set(`${s.name}/${ci.config.durable_name}`, ci);
const sameSet = (a, b) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);
const durableDiag = [];
for (const [k, subjects] of want) {
  const ci = have.get(k);
  if (!ci) durableDiag.push(`missing durable ${k}`);
  else {
    const f = ci.config.filter_subjects || (ci.config.filter_subject ? [ci.config.filter_subject] : []);
    if (!sameSet(f, subjects)) durableDiag.push(`${k} filters ${f.join(",")}, the index says ${subjects.join(",")}`);
  }
}
for (const k of have.keys()) if (!want.has(k)) durableDiag.push(`durable ${k} is not derived from the index`);
check(durableDiag.length === 0, `the ${want.size} durables are exactly the index's, with its filter subjects`, durableDiag);

const newest = new Map();
for (const m of c.index.messages) if (m.version > (newest.get(m.name)?.version ?? 0)) newest.set(m.name, m);
for (const m of c.index.messages) {
  const stream = c.index.streams.find((s) => s.name === m.stream);
  if (newest.get(m.name) !== m) {
    const sources = producedBy.get(m.type) || new Set();
    check(sources.size === 0, `${m.title} v${m.version} was never sent (superseded by v${newest.get(m.name).version}; stored ones are still read)`,
      [`sources: ${[...sources].join(", ")}`]);
    continue;
  }
  if (stream.confidential) {
    const si = streams.find((x) => x.config.name === stream.name);
    const sent = si ? si.state.last_seq : 0;
    const lagging = m.consumers.filter((svc) => {
      const ci = have.get(`${m.stream}/${svc}`);
      return !ci || ci.ack_floor.stream_seq === 0 || ci.num_pending > 0;
    });
    check(sent > 0 && lagging.length === 0 && si.state.messages === 0,
      `${m.title} was sent on confidential ${stream.name} (${sent} in all, unread here) and ${m.consumers.join(", ")} took every one (the work queue holds ${si?.state.messages})`,
      [`last seq ${sent}`, ...lagging.map((svc) => `${svc} has not consumed them all`)]);
    continue;
  }
  const sources = producedBy.get(m.type) || new Set();
  check(sources.size === 1 && sources.has(`/shop/${m.producer}`), `${m.title} was produced by ${m.producer} in the system tests`,
    [sources.size ? `sources: ${[...sources].join(", ")}` : "never produced"]);
  const seqs = seen.get(m.subject) || [];
  const lagging = m.consumers.filter((svc) => {
    const ci = have.get(`${m.stream}/${svc}`);
    return !ci || !seqs.some((q) => q <= ci.ack_floor.stream_seq);
  });
  check(seqs.length > 0 && lagging.length === 0, `${m.title} was consumed by ${m.consumers.join(", ")}`,
    lagging.map((svc) => `${svc} acked none of the ${seqs.length} stored`));
}
await nc.close();
process.exit(failed ? 1 : 0);

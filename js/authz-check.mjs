// authz-check.mjs START - the NATS permission cases (least privilege, issue 7),
// run by tests/system/authz.sh against the compose deployment.
//
// For every service of the contracts index it connects with that service's
// own credentials and proves what infra/nats/auth.conf (generated from the
// index by tools/natsauth.py) allows and refuses:
//   - its own event subject IS accepted by the server: published with
//     Nats-Expected-Stream naming no stream, so the stream answers "wrong
//     expected stream" and stores nothing, which it can only do if the
//     publish got past the permissions (so the other cases can fail);
//   - another domain's event is refused (a permissions violation) and never
//     lands in that stream (the last message on the subject is not ours);
//   - another service's durable can be neither fetched from nor read
//     (CONSUMER.MSG.NEXT, CONSUMER.INFO), while its own can be read;
//   - no stream can be deleted or purged (its own and ORDERS), nor created,
//     and the streams are still there with their messages afterwards;
//   - it cannot subscribe to every inbox (other users' replies).
// Then the read-only observer (the JavaScript clients) may read a stream
// but not publish an event, fetch from or delete a durable; the console may
// create a consumer it names, but not send a create request without a name
// in the subject (its body could replace a durable); neither it nor the
// observer may read a confidential stream (CARDS, the card tokens) in any
// way: subscribe to its subjects, create a consumer of any kind on it, fetch
// from its durable, read a message directly or by sequence; while the same
// requests on ORDERS are answered, so the refusals are the permissions'.
// Only the gateway may send SubmitCard. And a connection without
// credentials, or with a wrong password, is refused.
// Passwords: SHOP_NATS_PASSWORD_<USER>, which tests/system/authz.sh takes
// from the compose configuration. TAP, numbered from START.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { natsOptions } from "./lib/connect.mjs";
import { loadContracts } from "./lib/contracts.mjs";

const WAIT_MS = 2000; // a refused request gets no answer: how long to wait for one
// The cases run right after the chaos case, whose last SIGKILL may have hit
// a NATS node: JetStream may answer "no responders" until its leaders are
// elected again. Every stream must answer to the admin first, and the
// observer's read is retried, for at most this long.
const SETTLE_MAX_MS = 60000;
const SETTLE_MS = 500; // for a message that got through to be stored
const c = loadContracts();
// The cases of each user run side by side; their results are printed
// grouped by user, in the order the users are listed.
let n = Number(process.argv[2] || 0), failed = 0;
const groups = new Map();
const group = (name) => { if (!groups.has(name)) groups.set(name, []); return groups.get(name); };
const checkIn = (g, ok, desc, diag = []) => group(g).push({ ok, desc, diag });
const check = (ok, desc, diag = []) => checkIn("", ok, desc, diag);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const run = `authz-${process.pid}-${Date.now()}`;

function credsOf(user) {
  const pass = process.env[`SHOP_NATS_PASSWORD_${user.toUpperCase()}`];
  if (!pass) throw new Error(`SHOP_NATS_PASSWORD_${user.toUpperCase()} is not set`);
  return { ...process.env, SHOP_NATS_USER: user, SHOP_NATS_PASSWORD: pass };
}

// A connection that records every asynchronous error the server sends it
// (nats.js reports a permissions violation there, and may also reject the
// request it belongs to).
async function open(user) {
  const nc = await connect({ ...natsOptions(`authz-check-${user}`, credsOf(user)), maxReconnectAttempts: 0 });
  const errors = [];
  (async () => { for await (const s of nc.status()) if (s.type === "error") errors.push(String(s.error?.message ?? s.data ?? s.error)); })();
  return { nc, errors, user };
}

// Runs fn and says whether the server refused `subject` for `op`
// ("Publish" or "Subscription"): the violation either rejected the call or
// came as an asynchronous error.
async function refused(conn, op, subject, fn) {
  const text = `Permissions Violation for ${op} to "${subject}"`;
  let err = null, answer = null;
  try { answer = await fn(); } catch (e) { err = e; }
  for (let i = 0; i < 10 && !conn.errors.some((e) => e.includes(text)); i++) await sleep(50);
  const violation = conn.errors.some((e) => e.includes(text)) || String(err?.message ?? "").includes(text);
  return { violation, err, answer, text };
}

const api = (conn, subject, body = "") => conn.nc.request(subject, body, { timeout: WAIT_MS });

const admin = await open("admin");
const jsm = await jetstreamManager(admin.nc);
{
  const until = Date.now() + SETTLE_MAX_MS;
  for (const name of [...c.index.streams.map((s) => s.name), "DEADLETTER"]) {
    for (;;) {
      try { await jsm.streams.info(name); break; } catch (e) {
        if (Date.now() > until) throw new Error(`stream ${name} does not answer: ${e.message}`);
        await sleep(500);
      }
    }
  }
}
const durables = []; // [service, stream], as contractgen.py derives them
const services = [...new Set(c.index.streams.map((s) => s.owner))]; // the gateway owns two
for (const svc of services)
  for (const s of c.index.streams)
    if (c.index.messages.some((m) => m.stream === s.name && m.consumers.includes(svc))) durables.push([svc, s.name]);

async function lastOn(stream, subject) {
  try { return await jsm.streams.getMessage(stream, { last_by_subj: subject }); } catch { return null; }
}

// A message the index also holds in a newer major version: kept to read
// what is stored of it, no longer sent (tools/natsauth.py, superseded).
const superseded = (m) => c.index.messages.some((x) => x.name === m.name && x.version > m.version);

async function serviceCases(svc) {
  const conn = await open(svc);
  const js = jetstream(conn.nc);
  const own = c.index.messages.find((m) => m.producer === svc && !superseded(m));
  const other = c.index.messages.find((m) => m.producer !== svc && m.stream !== own.stream);

  // 1. Its own subject passes the permissions: the stream itself answers.
  let ownErr = null;
  try {
    await js.publish(own.subject, "{}", { msgID: `${run}-${svc}-own`, expect: { streamName: `${run}-no-such-stream` }, timeout: WAIT_MS });
  } catch (e) { ownErr = e; }
  const ownViolation = conn.errors.some((e) => e.includes(`Publish to "${own.subject}"`));
  const streamAnswered = /expected stream/i.test(String(ownErr?.message ?? ""));
  checkIn(svc, streamAnswered && !ownViolation, `${svc} may publish its own ${own.title} (${own.subject}): the stream answers, and stores nothing`,
    [`publish error: ${ownErr?.message ?? "none (it was stored?)"}`, ...conn.errors]);

  // 2. Another domain's event: refused, and never stored.
  const id = `${run}-${svc}-forged`;
  const before = (await jsm.streams.info(other.stream)).state.last_seq;
  const r = await refused(conn, "Publish", other.subject, () => js.publish(other.subject, "{}", { msgID: id, timeout: WAIT_MS }));
  await sleep(SETTLE_MS);
  const last = await lastOn(other.stream, other.subject);
  const landed = last && last.header?.get("Nats-Msg-Id") === id;
  const after = (await jsm.streams.info(other.stream)).state.last_seq;
  checkIn(svc, r.violation && !r.answer && !landed, `${svc} may not publish ${other.title} (${other.subject}): permissions violation, not stored in ${other.stream} (last seq ${before} before, ${after} after, none of them ours)`,
    [`violation seen: ${r.violation}`, `answer: ${JSON.stringify(r.answer?.seq ?? r.answer)}`, `stored: ${landed}`, `error: ${r.err?.message}`]);

  // 3. Another service's durable: no fetch, no info; its own: info.
  const [oSvc, oStream] = durables.find(([s, st]) => s !== svc && (st === own.stream || st === "ORDERS"));
  const next = `$JS.API.CONSUMER.MSG.NEXT.${oStream}.${oSvc}`;
  const fetch = await refused(conn, "Publish", next, () => api(conn, next, JSON.stringify({ batch: 1, expires: 1e9 })));
  const info = `$JS.API.CONSUMER.INFO.${oStream}.${oSvc}`;
  const peek = await refused(conn, "Publish", info, () => api(conn, info));
  const [, mine] = durables.find(([s]) => s === svc);
  let ownInfo = null;
  try { ownInfo = JSON.parse(new TextDecoder().decode((await api(conn, `$JS.API.CONSUMER.INFO.${mine}.${svc}`)).data)); } catch (e) { ownInfo = { error: e.message }; }
  checkIn(svc, fetch.violation && !fetch.answer && peek.violation && ownInfo?.name === svc,
    `${svc} may not fetch from or read ${oSvc}'s durable on ${oStream}, and may read its own on ${mine}`,
    [`fetch refused: ${fetch.violation} (${fetch.err?.message})`, `info refused: ${peek.violation}`, `own info: ${JSON.stringify(ownInfo).slice(0, 200)}`]);

  // 4. No stream may be deleted, purged or created.
  const targets = [...new Set([own.stream, "ORDERS"])];
  const counts = {};
  for (const s of targets) counts[s] = (await jsm.streams.info(s)).state.messages;
  const denied = [];
  for (const s of targets)
    for (const verb of ["DELETE", "PURGE"]) {
      const subj = `$JS.API.STREAM.${verb}.${s}`;
      const x = await refused(conn, "Publish", subj, () => api(conn, subj));
      if (!x.violation || x.answer) denied.push(`${subj}: violation ${x.violation}, answer ${x.answer ? new TextDecoder().decode(x.answer.data) : "none"}`);
    }
  const create = `$JS.API.STREAM.CREATE.${run.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
  const cr = await refused(conn, "Publish", create, () => api(conn, create, JSON.stringify({ name: create.split(".").pop(), subjects: [`${svc}.forged.>`] })));
  if (!cr.violation || cr.answer) denied.push(`${create}: violation ${cr.violation}`);
  for (const s of targets) {
    let now = null;
    try { now = (await jsm.streams.info(s)).state.messages; } catch (e) { now = `gone (${e.message})`; }
    if (!(typeof now === "number" && now >= counts[s])) denied.push(`${s}: ${counts[s]} messages before, ${now} after`);
  }
  checkIn(svc, denied.length === 0, `${svc} may not delete or purge ${targets.join(" or ")}, nor create a stream; they still hold their messages`, denied);

  // 5. Every inbox (other users' replies, fetched messages) is off limits.
  const sub = await refused(conn, "Subscription", "_INBOX.>", async () => { conn.nc.subscribe("_INBOX.>"); await conn.nc.flush(); });
  checkIn(svc, sub.violation, `${svc} may not subscribe to every inbox (_INBOX.>)`, conn.errors);
  await conn.nc.close();
}

async function observerCases() {
  const conn = await open("observer");
  const js = jetstream(conn.nc);
  const ev = c.index.messages.find((m) => m.producer === "orders");
  const pub = await refused(conn, "Publish", ev.subject, () => js.publish(ev.subject, "{}", { msgID: `${run}-observer`, timeout: WAIT_MS }));
  const del = `$JS.API.CONSUMER.DELETE.ORDERS.payments`;
  const d = await refused(conn, "Publish", del, () => api(conn, del));
  const next = `$JS.API.CONSUMER.MSG.NEXT.ORDERS.payments`;
  const f = await refused(conn, "Publish", next, () => api(conn, next, JSON.stringify({ batch: 1, expires: 1e9 })));
  // The create subject without a name would let a name in the body
  // replace the durable of that name (docs/security.md).
  const legacy = "$JS.API.CONSUMER.CREATE.ORDERS";
  const l = await refused(conn, "Publish", legacy, () => api(conn, legacy, JSON.stringify({ stream_name: "ORDERS", config: { name: "payments", ack_policy: "explicit", filter_subject: "orders.>" } })));
  const purge = `$JS.API.STREAM.PURGE.ORDERS`;
  const p = await refused(conn, "Publish", purge, () => api(conn, purge));
  // Reading: an ordered consumer on ORDERS gives its first message ("nothing"
  // on an empty stream, still a read the server allowed).
  let read = null;
  for (const until = Date.now() + SETTLE_MAX_MS; ;) {
    try {
      const oc = await js.consumers.get("ORDERS");
      const m = await oc.next({ expires: WAIT_MS });
      read = m ? m.subject : "nothing";
      await oc.delete().catch(() => {});
    } catch (e) { read = `error: ${e.message}`; }
    if (!read.startsWith("error") || Date.now() > until) break;
    await sleep(500);
  }
  let durable = null;
  try {
    const ci = await jsm.consumers.info("ORDERS", "payments");
    durable = ci.config.durable_name === "payments" && ci.config.filter_subject !== "orders.>" ? "payments" : JSON.stringify(ci.config);
  } catch (e) { durable = `gone: ${e.message}`; }
  check(pub.violation && d.violation && f.violation && l.violation && p.violation && /^(orders\.|nothing$)/.test(read ?? "") && durable === "payments",
    "the observer reads ORDERS through an ordered consumer, but may not publish an event, delete, fetch from or replace a durable, or purge a stream",
    [`publish refused ${pub.violation}, delete ${d.violation}, fetch ${f.violation}, unnamed create ${l.violation}, purge ${p.violation}`, `read: ${read}`, `durable payments: ${durable}`]);
  await conn.nc.close();
}

// Every way a reader could get at what a confidential stream holds.
async function confidentialCases(user) {
  const conn = await open(user);
  const js = jetstream(conn.nc);
  const problems = [];
  for (const s of c.index.streams.filter((x) => x.confidential)) {
    const subject = c.index.messages.find((m) => m.stream === s.name).subject;
    const [durable] = c.index.messages.find((m) => m.stream === s.name).consumers;
    const requests = [
      [`$JS.API.CONSUMER.CREATE.${s.name}`, { stream_name: s.name, config: { ack_policy: "none", deliver_policy: "all" } }],
      [`$JS.API.CONSUMER.CREATE.${s.name}.${run}-peek`, { stream_name: s.name, config: { name: `${run}-peek`, ack_policy: "none", deliver_policy: "all" } }],
      [`$JS.API.CONSUMER.CREATE.${s.name}.${run}-peek.${subject}`, { stream_name: s.name, config: { name: `${run}-peek`, ack_policy: "none", filter_subject: subject } }],
      [`$JS.API.CONSUMER.DURABLE.CREATE.${s.name}.${run}-peek`, { stream_name: s.name, config: { durable_name: `${run}-peek`, ack_policy: "explicit" } }],
      [`$JS.API.CONSUMER.MSG.NEXT.${s.name}.${durable}`, { batch: 1, expires: 1e9 }],
      [`$JS.API.DIRECT.GET.${s.name}`, { seq: 1 }],
      [`$JS.API.DIRECT.GET.${s.name}.${subject}`, ""],
      [`$JS.API.STREAM.MSG.GET.${s.name}`, { last_by_subj: subject }],
    ];
    for (const [subj, body] of requests) {
      const x = await refused(conn, "Publish", subj, () => api(conn, subj, typeof body === "string" ? body : JSON.stringify(body)));
      if (!x.violation || x.answer) problems.push(`${subj}: violation ${x.violation}, answer ${x.answer ? new TextDecoder().decode(x.answer.data).slice(0, 120) : "none"}`);
    }
    for (const subj of [subject, `${s.subjects[0]}`]) {
      const x = await refused(conn, "Subscription", subj, async () => { conn.nc.subscribe(subj); await conn.nc.flush(); });
      if (!x.violation) problems.push(`subscribe ${subj}: not refused`);
    }
    // The client library's own ordered consumer: refused too.
    let got = null;
    try {
      const attempt = (async () => {
        const oc = await js.consumers.get(s.name);
        const m = await oc.next({ expires: WAIT_MS });
        await oc.delete().catch(() => {});
        return m ? `read ${m.subject}` : null;
      })();
      got = await Promise.race([attempt, sleep(3 * WAIT_MS).then(() => null)]);
    } catch (e) { got = null; }
    if (got) problems.push(`ordered consumer on ${s.name}: ${got}`);
  }
  // The control: the same kinds of request on ORDERS get an answer (a
  // message, or "no message found"), not a violation.
  const control = [];
  for (const subj of ["$JS.API.STREAM.MSG.GET.ORDERS", "$JS.API.DIRECT.GET.ORDERS"]) {
    const x = await refused(conn, "Publish", subj, () => api(conn, subj, JSON.stringify(subj.includes("DIRECT") ? { seq: 1 } : { seq: 1 })));
    if (x.violation) control.push(`${subj} refused: the denials are not specific to the confidential stream`);
  }
  const names = c.index.streams.filter((x) => x.confidential).map((x) => x.name).join(", ");
  check(problems.length === 0 && control.length === 0,
    `${user} may not read confidential ${names} in any way (subscribe, any consumer create, fetch, direct get, msg get), while ORDERS answers the same reads`,
    [...problems, ...control]);
  await conn.nc.close();
}

// The producer of a superseded version may no longer publish it (the card
// token must not travel on ORDERS or GATEWAY again); only the newest.
async function supersededCases() {
  for (const m of c.index.messages.filter(superseded)) {
    const conn = await open(m.producer);
    const r = await refused(conn, "Publish", m.subject, () => jetstream(conn.nc).publish(m.subject, "{}", { msgID: `${run}-${m.key ?? m.name}-old`, timeout: WAIT_MS }));
    await conn.nc.close();
    check(r.violation && !r.answer,
      `${m.producer} may no longer publish ${m.title} v${m.version} (${m.subject}), which a newer version replaces`,
      [`violation seen: ${r.violation}`, `answer: ${JSON.stringify(r.answer?.seq ?? r.answer)}`, `error: ${r.err?.message}`]);
  }
}

// Only the producer named in the index may send to a confidential stream.
async function confidentialProducerCases() {
  for (const m of c.index.messages.filter((x) => c.index.streams.find((s) => s.name === x.stream).confidential)) {
    const conn = await open(m.producer);
    let err = null;
    try { await jetstream(conn.nc).publish(m.subject, "{}", { msgID: `${run}-card`, expect: { streamName: `${run}-no-such-stream` }, timeout: WAIT_MS }); } catch (e) { err = e; }
    const passed = /expected stream/i.test(String(err?.message ?? "")) && !conn.errors.some((e) => e.includes(m.subject));
    await conn.nc.close();
    const other = services.find((svc) => svc !== m.producer && !m.consumers.includes(svc));
    const oc = await open(other);
    const r = await refused(oc, "Publish", m.subject, () => jetstream(oc.nc).publish(m.subject, "{}", { msgID: `${run}-forged-card`, timeout: WAIT_MS }));
    await oc.nc.close();
    const reader = await open(m.consumers[0]);
    const r2 = await refused(reader, "Publish", m.subject, () => jetstream(reader.nc).publish(m.subject, "{}", { msgID: `${run}-forged-card-2`, timeout: WAIT_MS }));
    await reader.nc.close();
    check(passed && r.violation && r2.violation,
      `only ${m.producer} may send ${m.title} (${m.subject}): ${other} and ${m.consumers[0]} are refused`,
      [`${m.producer}: ${err?.message}`, `${other} refused: ${r.violation}`, `${m.consumers[0]} refused: ${r2.violation}`]);
  }
}

// The console creates its watches' consumers itself, each named in the
// create subject (libs/bus/bus_watch.c); the subject without a name, whose
// body could name a durable and replace it, is refused to it as to the
// observer (docs/security.md).
async function consoleCases() {
  const conn = await open("console");
  const legacy = "$JS.API.CONSUMER.CREATE.ORDERS";
  const l = await refused(conn, "Publish", legacy, () => api(conn, legacy, JSON.stringify({ stream_name: "ORDERS", config: { name: "payments", ack_policy: "none", deliver_policy: "new", filter_subject: "orders.>" } })));
  // A consumer it names: created (the answer has no error), then deleted.
  const name = `watch_authz${process.pid}`;
  const named = `$JS.API.CONSUMER.CREATE.ORDERS.${name}`;
  let made = null;
  for (const until = Date.now() + SETTLE_MAX_MS; ;) {
    try {
      const r = JSON.parse(new TextDecoder().decode((await api(conn, named, JSON.stringify({ stream_name: "ORDERS", config: { name, ack_policy: "none", deliver_policy: "new", mem_storage: true, num_replicas: 1, inactive_threshold: 30e9 } }))).data));
      made = r.error ? `error: ${JSON.stringify(r.error)}` : r.name;
    } catch (e) { made = `error: ${e.message}`; }
    if (!made.startsWith("error") || Date.now() > until) break;
    await sleep(500);
  }
  if (made === name) await api(conn, `$JS.API.CONSUMER.DELETE.ORDERS.${name}`).catch(() => {});
  let durable = null;
  try {
    const ci = await jsm.consumers.info("ORDERS", "payments");
    durable = ci.config.durable_name === "payments" && ci.config.ack_policy === "explicit" ? "payments" : JSON.stringify(ci.config);
  } catch (e) { durable = `gone: ${e.message}`; }
  check(l.violation && !l.answer && made === name && durable === "payments",
    "the console may create a consumer it names in the subject, but not one on the create subject without a name ($JS.API.CONSUMER.CREATE.ORDERS), which leaves the durable it names as it was",
    [`unnamed create refused ${l.violation}, answer ${l.answer ? new TextDecoder().decode(l.answer.data) : "none"}`, `named create: ${made}`, `durable payments: ${durable}`, ...conn.errors]);
  await conn.nc.close();
}

async function refusedConnection(desc, env) {
  let nc = null, err = null;
  try { nc = await connect({ ...natsOptions("authz-check-anonymous", env), maxReconnectAttempts: 0, reconnect: false, timeout: WAIT_MS }); } catch (e) { err = e; }
  check(!nc && /authoriz/i.test(String(err?.message ?? "")), desc, [`connected: ${!!nc}`, `error: ${err?.message}`]);
  if (nc) await nc.close();
}

for (const svc of services) group(svc);
await Promise.all(services.map((svc) => serviceCases(svc).catch((e) => checkIn(svc, false, `${svc}: the cases ran`, [e.stack]))));
await observerCases().catch((e) => check(false, "observer: the cases ran", [e.stack]));
for (const user of ["console", "observer"])
  await confidentialCases(user).catch((e) => check(false, `${user}: the confidential-stream cases ran`, [e.stack]));
await confidentialProducerCases().catch((e) => check(false, "the confidential producer cases ran", [e.stack]));
await supersededCases().catch((e) => check(false, "the superseded-version cases ran", [e.stack]));
await consoleCases().catch((e) => check(false, "console: the cases ran", [e.stack]));
const anon = { ...process.env };
delete anon.SHOP_NATS_USER;
delete anon.SHOP_NATS_PASSWORD;
await refusedConnection("a connection without credentials is refused (Authorization Violation)", anon);
await refusedConnection("a connection with a wrong password is refused", { ...credsOf("payments"), SHOP_NATS_PASSWORD: "not-the-password" });
await admin.nc.close();
for (const results of groups.values())
  for (const r of results) {
    n++;
    console.log(`${r.ok ? "ok" : "not ok"} ${n} - nats authz: ${r.desc}`);
    if (!r.ok) { failed++; for (const d of r.diag) console.log(`#   ${d}`); }
  }
process.exit(failed ? 1 : 0);

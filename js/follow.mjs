// follow.mjs ORDER_ID [--until-done] - one order's journey, live.
//
// The shop's inter-language demo: a consumer written from contracts/ alone
// (no C). It reads each stream of the index from its start through an
// ordered consumer (ephemeral: the server deletes it when the follower
// goes; the follower's NATS user, observer, may read but not create a
// durable), validates every message against the same schemas
// the C services use, and prints those about ORDER_ID as they arrive:
//   time  producer  Title  subject  (the data's interesting fields)
// With --until-done it exits 0 once the order is SHIPPED or CANCELLED and
// the bus has been quiet for QUIET_MS, or 1 after TIMEOUT_MS.
//
//   make follow ORDER=<id>
//   docker compose run --rm follow <id>
import { connect } from "@nats-io/transport-node";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import { natsOptions } from "./lib/connect.mjs";
import { loadContracts, messageProblems } from "./lib/contracts.mjs";

const QUIET_MS = 1500, TIMEOUT_MS = Number(process.env.FOLLOW_TIMEOUT_MS || 60000);
const order = process.argv[2];
const untilDone = process.argv.includes("--until-done");
if (!order || !/^[0-9a-f-]{36}$/.test(order)) {
  console.error("usage: follow.mjs ORDER_ID [--until-done]");
  process.exit(2);
}
const c = loadContracts();
const nc = await connect(natsOptions(`follow-${order}`));
const js = jetstream(nc);
let done = false, last = Date.now(), invalid = 0;
const SHOW = ["reason", "total_cents", "currency", "status", "kind", "payment_id", "shipment_id"];

function show(m, ev) {
  const msg = c.byType.get(ev.type);
  const d = ev.data || {};
  const extra = SHOW.filter((k) => k in d).map((k) => `${k}=${d[k]}`).join(" ");
  console.log(`${ev.time}  ${msg.producer.padEnd(13)} ${msg.title.padEnd(26)} ${m.subject}${extra ? "  " + extra : ""}`);
  if (msg.name === "order_shipped" || msg.name === "order_cancelled") done = true;
}

async function follow(stream) {
  // An ordered consumer: ephemeral, no acks, recreated by the client after a
  // gap; the follower's NATS user (observer) may create no durable.
  const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const it = await consumer.consume();
  for await (const m of it) {
    let ev;
    try { ev = JSON.parse(m.string()); } catch { ev = null; }
    const problems = ev ? messageProblems(c, m.subject, ev) : ["not JSON"];
    const about = ev && (ev.subject === order || ev.data?.order_id === order);
    if (about) {
      last = Date.now();
      if (problems.length) { invalid++; console.log(`INVALID ${m.subject}: ${problems.join("; ")}`); }
      else show(m, ev);
    }
  }
}

console.log(`following order ${order} (ordered consumers; Ctrl-C to stop)`);
// A confidential stream (CARDS) is not the observer's to read, and holds
// nothing the journey needs.
const loops = c.index.streams.filter((s) => !s.confidential).map((s) => follow(s.name).catch((e) => { console.error(`${s.name}: ${e.message}`); process.exit(1); }));
if (untilDone) {
  const start = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    if (done && Date.now() - last >= QUIET_MS) break;
    if (Date.now() - start > TIMEOUT_MS) { console.log("timed out before the order was SHIPPED or CANCELLED"); process.exit(1); }
  }
  await nc.close();
  process.exit(invalid ? 1 : 0);
}
await Promise.all(loops);

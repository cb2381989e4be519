// contracts.mjs - contracts/ for JavaScript: the index, and validators for
// the envelope and every message's data, from the same JSON Schema files the
// C codecs are generated from (draft 2020-12, $refs resolved by $id).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export function loadContracts(dir = process.env.SHOP_CONTRACTS || "contracts") {
  const read = (rel) => JSON.parse(readFileSync(join(dir, rel), "utf8"));
  const index = read("index.json");
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv, ["date-time", "uuid"]);
  ajv.addSchema(read("envelope.v1.json"));
  for (const sub of ["schemas", "http"])
    for (const f of readdirSync(join(dir, sub)).sort())
      if (f.endsWith(".json")) ajv.addSchema(read(`${sub}/${f}`));
  const byType = new Map(index.messages.map((m) => [m.type, m]));
  const bySubject = new Map(index.messages.map((m) => [m.subject, m]));
  const validators = new Map(
    index.messages.map((m) => [m.type, ajv.getSchema(index.base_uri + m.schema)]));
  const envelope = ajv.getSchema(index.base_uri + index.envelope.schema);
  return { index, byType, bySubject, validators, envelope };
}

// CloudEvents 1.0 (structured JSON), checked on the raw object: nothing is
// filled in. Returns a list of problems, empty when the event conforms.
const CONTEXT = new Set(["specversion", "id", "source", "type", "datacontenttype", "dataschema",
  "subject", "time", "data", "data_base64"]);
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
export function cloudEventProblems(ev) {
  const p = [];
  if (ev === null || typeof ev !== "object" || Array.isArray(ev)) return ["not a JSON object"];
  if (ev.specversion !== "1.0") p.push(`specversion is ${JSON.stringify(ev.specversion)}, not "1.0"`);
  for (const a of ["id", "source", "type"])
    if (typeof ev[a] !== "string" || ev[a] === "") p.push(`${a} is required and must be a non-empty string`);
  for (const a of ["subject", "datacontenttype", "dataschema", "time"])
    if (a in ev && (typeof ev[a] !== "string" || ev[a] === "")) p.push(`${a} must be a non-empty string`);
  if ("time" in ev && !RFC3339.test(String(ev.time))) p.push(`time ${ev.time} is not RFC 3339`);
  if ("source" in ev && /\s/.test(String(ev.source))) p.push("source is not a URI-reference");
  if ("data" in ev && "data_base64" in ev) p.push("both data and data_base64");
  for (const [k, v] of Object.entries(ev)) {
    if (CONTEXT.has(k)) continue;
    if (!/^[a-z0-9]{1,20}$/.test(k)) p.push(`extension name ${k} is not 1-20 lowercase letters or digits`);
    if (v === null || !["string", "number", "boolean"].includes(typeof v))
      p.push(`extension ${k} is not a scalar`);
    else if (typeof v === "number" && !Number.isInteger(v)) p.push(`extension ${k} is not an integer`);
  }
  return p;
}

const fmt = (errors) => (errors || []).map((e) => `${e.instancePath || "(root)"} ${e.message}`);

// Every problem of one bus message: CloudEvents 1.0, our envelope profile,
// the index (type and subject agree, the producer is the source), the data.
export function messageProblems(c, natsSubject, ev) {
  const p = cloudEventProblems(ev).map((x) => `CloudEvents: ${x}`);
  if (p.length) return p;
  if (!c.envelope(ev)) p.push(...fmt(c.envelope.errors).map((x) => `envelope: ${x}`));
  const m = c.byType.get(ev.type);
  if (!m) return [...p, `type ${ev.type} is not in the index`];
  if (m.subject !== natsSubject) p.push(`type ${ev.type} published on ${natsSubject}, the index says ${m.subject}`);
  if (ev.source !== `/shop/${m.producer}`) p.push(`source ${ev.source}, the producer is ${m.producer}`);
  const v = c.validators.get(ev.type);
  if (!v(ev.data)) p.push(...fmt(v.errors).map((x) => `data: ${x}`));
  return p;
}

// validate-asyncapi.mjs FILE... - each AsyncAPI document must parse with
// @asyncapi/parser with no error diagnostics (severity 0). TAP output.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
let n = 0, failed = 0;
for (const f of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(readFileSync(f, "utf8"),
    { source: pathToFileURL(resolve(f)).href });
  const errors = diagnostics.filter((d) => d.severity === 0);
  const ok = document && errors.length === 0 && document.version() === "3.0.0";
  n++;
  console.log(`${ok ? "ok" : "not ok"} ${n} - asyncapi: ${f} is a valid AsyncAPI 3.0.0 document`
    + (ok ? ` (${document.channels().length} channels, ${document.operations().length} operations)` : ""));
  if (!ok) { failed++; for (const d of errors) console.log(`#   ${d.path.join("/")}: ${d.message}`); }
}
process.exit(failed || n === 0 ? 1 : 0);

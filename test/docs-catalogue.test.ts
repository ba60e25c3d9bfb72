/*
 * Docs kept true by tests (issue 9 item 9): each catalogue in the docs is
 * compared with the code both ways, so a route, command, option, audit action
 * or reason code added, removed or renamed on one side only fails here:
 * - cloud/README.md's HTTP table vs the admin API's route table (cloud/http-api.ts);
 * - cloud/README.md's command table vs cloud/cli.ts, docs/manufacturing.md's
 *   option table vs make-lot's options;
 * - cloud/README.md's audit table vs every action the code writes;
 * - wire reason codes (modules/wire.ts) vs docs/protocol.md 7.4 and cloud/README.md,
 *   login failures (cloud/auth/failures.ts) vs cloud/README.md, the RADIUS server's
 *   own reasons vs docs/radius.md.
 * (The error catalogue is test/cloud-admin.test.ts errorCatalogue_….)
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { adminRouteList } from "../cloud/http-api";
import { CLI_COMMANDS } from "../cloud/cli";
import { MAKE_LOT_OPTIONS } from "../tools/manufacturing/make-lot";
import { REASON_CODES } from "../modules/wire";
import { AUTH_FAILURES } from "../cloud/auth/failures";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

/** The text of a markdown section: from its heading line to the next heading of the same or a higher level. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  assert.ok(start >= 0, `heading ${heading} not found`);
  const level = /^#+/.exec(heading)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

/** The cells of a markdown table's body rows (header and rule skipped), `\|` kept as `|`. */
function tableRows(text: string): string[][] {
  return text.split("\n").filter((l) => l.startsWith("|") && !/^\|[-| ]+\|$/.test(l))
    .map((l) => l.replace(/\\\|/g, "\u0000").split("|").slice(1, -1).map((c) => c.trim().replace(/\u0000/g, "|")));
}

/** Both-way difference, as a message listing what each side lacks. */
function sameSet(code: Iterable<string>, doc: Iterable<string>, what: string, docName: string): void {
  const a = new Set(code);
  const b = new Set(doc);
  const undocumented = [...a].filter((x) => !b.has(x)).sort();
  const stale = [...b].filter((x) => !a.has(x)).sort();
  assert.deepEqual({ undocumented, stale }, { undocumented: [], stale: [] }, `${what}: in the code but not in ${docName}: ${undocumented.join(", ") || "-"}; in ${docName} but not in the code: ${stale.join(", ") || "-"}`);
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/**
 * Every audit action the code writes: the string literals given as the action of an
 * `audit(actor, action, ...)` call (both arms of a `?:`), the action in a raw
 * `INSERT INTO audit` statement, and `network.${action}` with its two actions.
 */
export function auditActionsInCode(): Set<string> {
  const actions = new Set<string>();
  for (const file of tsFiles("cloud")) {
    const text = read(file);
    // the second argument: up to the next comma or closing parenthesis (a literal, a template, or a ?: of literals)
    for (const m of text.matchAll(/\baudit\(\s*[^,()]+,\s*([^,;()]*?)\s*[,)]/g)) {
      for (const literal of m[1].matchAll(/"([a-z][a-z-]*\.[a-z][a-z-]*)"/g)) actions.add(literal[1]);
      // `network.${action}`: storeSealedChange's action is "set" | "forget" (network-registry.ts)
      if (m[1].includes("`network.${action}`")) for (const a of ["set", "forget"]) actions.add(`network.${a}`);
    }
    for (const m of text.matchAll(/INSERT INTO audit \([^)]*\) VALUES \([^)]*'([a-z][a-z-]*\.[a-z][a-z-]*)'/g)) actions.add(m[1]);
  }
  return actions;
}

describe("docs catalogues match the code (issue 9 item 9)", function () {
  const readme = read("cloud/README.md");

  it("httpRoutes_ReadmeTable_SameAsTheRouteTable", () => {
    const rows = tableRows(section(readme, "## HTTP API")).filter((r) => r.length === 4 && /^[A-Z]+$/.test(r[0]));
    const documented = rows.map(([method, path]) => `${method} ${path.replace(/`/g, "").split("?")[0].replace(/<[^>]+>/g, "<>")}`);
    assert.ok(documented.length > 20, "the HTTP table was found");
    sameSet(adminRouteList(), documented, "HTTP routes", "cloud/README.md's HTTP table");
  });

  it("cliCommands_ReadmeTable_SameAsCliTs", () => {
    const rows = tableRows(section(readme, "## CLI")).filter((r) => r.length === 2 && r[0].startsWith("`"));
    const documented = rows.map(([cell]) => cell.replace(/`/g, "").split(" ").filter((w, i, all) => all.slice(0, i + 1).every((x) => !/^[<[]/.test(x))).join(" "));
    assert.ok(documented.length > 30, "the command table was found");
    sameSet(CLI_COMMANDS, documented, "CLI commands", "cloud/README.md's command table");
  });

  it("cliCommands_EveryExampleInTheDocs_IsACommand", () => {
    const commands = new Set(CLI_COMMANDS);
    const docs = ["cloud/README.md", "README.md", ...readdirSync(join(ROOT, "docs")).filter((n) => n.endsWith(".md")).map((n) => `docs/${n}`)];
    const unknown: string[] = [];
    for (const doc of docs) {
      for (const m of read(doc).matchAll(/npm run cloud -- ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
        if (!commands.has(m[1]) && !(m[2] && commands.has(`${m[1]} ${m[2]}`))) unknown.push(`${doc}: ${m[0]}`);
      }
    }
    assert.deepEqual(unknown, [], `documented commands that cloud/cli.ts does not have: ${unknown.join("; ")}`);
  });

  it("makeLotOptions_ManufacturingTable_SameAsMakeLot", () => {
    const rows = tableRows(section(read("docs/manufacturing.md"), "## `make-lot` options")).filter((r) => r.length === 2);
    const documented = rows.flatMap(([cell]) => [...cell.matchAll(/`--([a-z][a-z-]*)/g)].map((m) => m[1]));
    sameSet(Object.keys(MAKE_LOT_OPTIONS), documented, "make-lot options", "docs/manufacturing.md's option table");
  });

  it("auditActions_ReadmeTable_SameAsEveryActionWritten", () => {
    const rows = tableRows(section(readme, "### Audit log")).filter((r) => r.length === 3);
    const documented = rows.flatMap(([cell]) => [...cell.matchAll(/`([a-z][a-z.-]*)`/g)].map((m) => m[1]));
    const inCode = auditActionsInCode();
    assert.ok(inCode.size > 30, `the audit calls were found (${inCode.size})`);
    sameSet(inCode, documented, "audit actions", "cloud/README.md's audit table");
  });

  it("wireReasonCodes_Protocol74AndReadme_SameAsWireTs", () => {
    const protocol = read("docs/protocol.md");
    const table = tableRows(section(protocol, "### 7.4 Reason codes")).filter((r) => r.length === 3).map(([cell]) => cell.replace(/`/g, ""));
    sameSet(REASON_CODES, table.filter((c) => /^[A-Z_]+$/.test(c)), "wire reason codes", "docs/protocol.md 7.4");
    const sentence = /Reason codes on the wire[^]*?answered with rid/.exec(readme)?.[0] ?? "";
    sameSet(REASON_CODES, [...sentence.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]), "wire reason codes", "cloud/README.md's wire reason list");
  });

  it("loginFailures_Readme_SameAsFailuresTs", () => {
    const sentence = /Login failures recorded in `lastFailure`[^]*?\(throttled/.exec(readme)?.[0] ?? "";
    sameSet(AUTH_FAILURES, [...sentence.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]), "login failures", "cloud/README.md's login failure list");
  });

  it("radiusReasons_RadiusMd_SameAsTheServer", () => {
    const type = /export type RadiusReason = AuthFailure((?: \| "[A-Z_]+")+);/.exec(read("cloud/radius/session.ts"));
    assert.ok(type, "RadiusReason found in cloud/radius/session.ts");
    const own = [...type[1].matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]);
    const documented = tableRows(read("docs/radius.md")).filter((r) => r.length === 2).map(([cell]) => cell.replace(/`/g, "")).filter((c) => /^[A-Z_]+$/.test(c));
    // REPLAY is the MQTT login counter's (a hotspot password carries no counter): never sent over RADIUS
    sameSet([...AUTH_FAILURES.filter((f) => f !== "REPLAY"), ...own], documented, "RADIUS reject reasons", "docs/radius.md's reason table");
  });
});

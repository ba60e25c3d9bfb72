/*
 * The portable core on Moddable's XS engine (xsnap-worker from @agoric/xsnap,
 * XS 13, ES2022): the derivation vectors and every device scenario run inside
 * XS with @noble/hashes, and a failure there (a Node-only API, a post-ES2022
 * built-in, a thrown exception) fails this test with XS's message. Also checks
 * that the bundled core references no Node API (require, process, Buffer).
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { bundleForXs } from "./xs/bundle";
import type { XsReport } from "./xs/entry";
import { runInXs } from "./xs/xsnap";
import { SCENARIOS } from "./support/scenarios";
import { ONBOARDING_SCENARIOS } from "./support/onboarding-scenarios";
import { VECTORS } from "./support/vectors";
import { nobleDigest } from "../modules/noble-digest";
import { encode, recordFirstBoot, type Recording } from "./support/recording";

/** Splits a non-minified esbuild bundle into its per-source-file sections. */
function sections(bundle: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const marker = /^ {2}\/\/ ((?:node_modules\/)?[\w@./-]+\.[cm]?[jt]s)$/gm;
  const hits = [...bundle.matchAll(marker)];
  hits.forEach((hit, i) => out.push({ file: hit[1], text: bundle.slice(hit.index, hits[i + 1]?.index ?? bundle.length) }));
  return out;
}

/** An entry that pulls in every module of modules/. */
export function allModulesEntry(): string {
  return readdirSync(new URL("../modules/", import.meta.url))
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file, i) => `export * as m${i} from "./modules/${file.slice(0, -3)}";`)
    .join("\n");
}

describe("core on XS (xsnap)", function () {
  this.timeout(120_000);
  const reports = new Map<string, XsReport>();
  let failure: Error | undefined;
  let recordings: Recording[] = [];

  before(async () => {
    // recorded on Node; XS steps the same events and its effects must be the same bytes
    recordings = [recordFirstBoot(nobleDigest)];
    const code = `globalThis.WCM_RECORDINGS = ${JSON.stringify(encode(recordings))};\n${await bundleForXs("test/xs/entry.ts")}`;
    try {
      const run = await runInXs(code);
      for (const line of run.commands) {
        const report = JSON.parse(line) as XsReport;
        reports.set(`${report.kind}:${report.name}`, report);
      }
    } catch (error) {
      failure = error as Error;
    }
  });

  function expectOk(key: string): void {
    if (failure) throw failure;
    const report = reports.get(key);
    assert.ok(report, `${key}: no report from XS (did the run stop early?)`);
    assert.ok(report.ok, `${key} failed in XS: ${report.detail ?? ""}`);
  }

  it("runs to the end", () => expectOk("done:all"));

  it("vectors_AllMatchInXs", () => {
    if (failure) throw failure;
    const vectors = [...reports.values()].filter((report) => report.kind === "vector");
    assert.ok(vectors.length >= VECTORS.length, `only ${vectors.length} vector reports`);
    assert.deepEqual(vectors.filter((report) => !report.ok), []);
  });

  for (const name of [...Object.keys(SCENARIOS), ...Object.keys(ONBOARDING_SCENARIOS)]) {
    it(`${name}_OnXs`, () => expectOk(`scenario:${name}`));
  }

  it("replay_FirstBootRecordedOnNode_SameEffectsByteForByteOnXs", () => {
    expectOk("replay:firstBoot");
    const xs = reports.get("replay:firstBoot")?.detail ?? "";
    const node = encode(recordings[0].steps.map((s) => s.effects));
    assert.ok(node.length > 1000, "the recording has effects");
    assert.equal(xs.length, node.length, "XS effects differ in length from Node's");
    assert.ok(xs === node, `XS effects differ from Node's at character ${[...node].findIndex((c, i) => c !== xs[i])}`);
  });

  it("bundle_NoNodeApi", async () => {
    const bundle = await bundleForXs({ source: allModulesEntry() });
    const parts = sections(bundle);
    assert.ok(parts.some((part) => part.file === "modules/manager.ts"), "the bundle has per-file markers");
    const offences: string[] = [];
    for (const part of parts) {
      for (const match of part.text.matchAll(/\brequire\s*\(|\bprocess\s*\.|\bBuffer\b|\bglobalThis\.process\b/g)) {
        offences.push(`${part.file}: ${part.text.slice(Math.max(0, match.index - 40), match.index + 30).replace(/\s+/g, " ")}`);
      }
    }
    assert.deepEqual(offences, []);
  });
});

describe("XS harness catches what a device would", function () {
  this.timeout(60_000);
  const cases: [string, string, RegExp][] = [
    ["NodeOnlyApi_Buffer", `Buffer.from("x");`, /Buffer/],
    ["PostEs2022Builtin_toSorted", `[3, 1, 2].toSorted();`, /TypeError/],
    ["ThrownException", `throw new Error("deliberate failure");`, /deliberate failure/],
    ["NoSetTimeout", `setTimeout(() => {}, 1);`, /setTimeout/],
  ];
  for (const [name, code, message] of cases) {
    it(`runInXs_${name}_Rejects`, async () => {
      await assert.rejects(runInXs(code), (error: Error) => message.test(error.message) && /Uncaught exception in XS/.test(error.message));
    });
  }
});

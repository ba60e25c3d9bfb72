/*
 * The short fuzz run of `npm test`: every decoder harness (support/harnesses.ts)
 * on a fixed seed, mutating the recorded corpus (support/corpus.ts), in a
 * worker under a hang watchdog. The build fails on any finding: an exception
 * that is not the decoder's typed error, a broken property, an input over the
 * per-input time bound, a hang, heap growth after GC, or a recorded seed its
 * decoder refuses. The long run is `npm run fuzz` (docs/fuzzing.md).
 * The last tests show that the machinery does fail on each kind of finding.
 */
import { strict as assert } from "node:assert";
import { loadCorpus } from "./support/corpus";
import { runHarness, type HarnessReport } from "./support/engine";
import { HARNESSES, type Harness } from "./support/harnesses";
import { runPooled } from "./support/pool";

/** Inputs per harness in npm test (fixed seed): about 6300 inputs in all. */
const SHORT_COUNT = 300;
const SHORT_SEED = 0x5eed;

function describeFindings(reports: HarnessReport[]): string {
  return reports.flatMap((r) => r.findings.map((f) => `${f.harness} ${f.kind}: ${f.detail} input=${f.inputHex.slice(0, 400)}`)).join("\n");
}

describe("fuzz: every decoder, short run (fixed seed)", function () {
  this.timeout(120_000);

  it("corpus_HasSeedsForEveryHarness", () => {
    const corpus = loadCorpus();
    for (const h of HARNESSES) assert.ok(h.seeds(corpus).length > 0, `${h.name} has no recorded seeds`);
  });

  it("allHarnesses_MutatedRecordedSeeds_NoFinding; a decoder that never returns is caught by the watchdog", async () => {
    // one worker for everything; "hang-probe" (a harness that loops forever on inputs over 60 bytes) runs last, so the watchdog ends the run
    const reports = await runPooled({ harnesses: [...HARNESSES.map((h) => h.name), "hang-probe"], count: SHORT_COUNT, seed: SHORT_SEED, hangMs: 3000 });
    assert.equal(reports.length, HARNESSES.length + 1);
    const probe = reports.pop()!;
    assert.equal(describeFindings(reports), "");
    for (const r of reports) {
      assert.equal(r.inputs, Math.max(1, Math.round(SHORT_COUNT * (HARNESSES.find((h) => h.name === r.harness)!.weight ?? 1))), r.harness);
      // a harness whose every mutation is refused by a first check, or accepted whatever it is, tests little
      if (!["peekRequestId", "topic", "sealed", "bytes", "recordSlot", "credentialRecord", "networkRecord", "cloudLogin", "hotspotLogin", "mqttGuard", "onboardService"].includes(r.harness)) {
        assert.ok(r.accepted > 0 && r.refused > 0, `${r.harness}: accepted ${r.accepted}, refused ${r.refused}`);
      }
    }
    assert.equal(probe.harness, "hang-probe");
    assert.equal(probe.findings[0]?.kind, "hang");
    assert.ok(Buffer.from(probe.findings[0].inputHex, "hex").length > 60, "the input that hung is reported");
  });

  it("sameSeed_SameInputs_Deterministic", async () => {
    const corpus = loadCorpus();
    const h = HARNESSES.find((x) => x.name === "request")!;
    const seen: string[][] = [[], []];
    for (const k of [0, 1]) await runHarness(h, corpus, 50, 42, undefined, (input) => seen[k].push(Buffer.from(input).toString("hex")));
    assert.deepEqual(seen[0], seen[1]);
  });

  // ---- the machinery fails the build on each kind of finding

  const base = HARNESSES.find((h) => h.name === "request")!;
  const variant = (name: string, run: (input: Uint8Array) => void | Promise<void>): Harness => ({ ...base, name, setup: () => ({ run }) });

  it("runHarness_DecoderThrowsAnUntypedError_CrashFindingWithAMinimisedInput", async () => {
    const corpus = loadCorpus();
    const crashing = variant("crashing", (input) => {
      if (input.includes(0x00)) throw new TypeError("cannot read properties of undefined");
      return base.setup(corpus).run(input);
    });
    const report = await runHarness(crashing, corpus, 400, 1);
    const crash = report.findings.find((f) => f.kind === "crash");
    assert.ok(crash, "no crash finding");
    assert.match(crash.detail, /^TypeError/);
    assert.equal(crash.inputHex, "00", "minimised to the one byte that matters");
  });

  it("runHarness_SlowInput_SlowFinding", async () => {
    const corpus = loadCorpus();
    const slow = variant("slow", (input) => {
      if (input.length > 200) for (const end = performance.now() + 30; performance.now() < end;);
    });
    const report = await runHarness(slow, corpus, 200, 1, { slowMs: 20, heapBytes: 64 << 20, maxFindings: 2 });
    assert.ok(report.findings.some((f) => f.kind === "slow"), "no slow finding");
  });

  it("runHarness_StateGrowsAcrossInputs_HeapFinding", async () => {
    const corpus = loadCorpus();
    const kept: Uint8Array[] = [];
    const leaking = variant("leaking", () => void kept.push(new Uint8Array(32 * 1024).fill(1)));
    const report = await runHarness(leaking, corpus, 400, 1);
    assert.ok(report.findings.some((f) => f.kind === "heap"), `no heap finding (grew ${report.heapGrowthBytes})`);
  });
});

/*
 * The device-side decoders fuzzed on XS, the engine the firmware runs on
 * (support/core-fuzz.ts bundled for @agoric/xsnap as test/xs-core.test.ts does):
 * the same recorded seeds and mutations as on Node, fixed seed. Any exception
 * that is not a WcmError fails the build. Skipped, with a message, when the
 * xsnap-worker binary was not built.
 */
import { strict as assert } from "node:assert";
import { loadCorpus } from "./support/corpus";
import { fuzzOnXs, xsAvailable } from "./support/xs-fuzz";

/** Inputs per core harness on XS (XS interprets: about 10x slower than Node's JIT). */
const XS_COUNT = 150;

describe("fuzz: device decoders on XS (xsnap), short run (fixed seed)", function () {
  this.timeout(180_000);

  it("coreHarnesses_OnXs_MutatedRecordedSeeds_OnlyWcmErrors", async function () {
    if (!xsAvailable()) {
      console.log("    skipped: xsnap-worker is not built (npm install builds it)");
      this.skip();
    }
    const corpus = loadCorpus();
    const { reports } = await fuzzOnXs(corpus, XS_COUNT, 0x5eed);
    assert.equal(reports.length, 18, reports.map((r) => r.harness).join(","));
    const crashes = reports.flatMap((r) => r.crashes.map((c) => `${r.harness}: ${c.detail} input=${c.inputHex.slice(0, 300)}`));
    assert.deepEqual(crashes, []);
    for (const r of reports) assert.equal(r.inputs, XS_COUNT, r.harness);
    for (const name of ["request", "response", "cloudMessage", "status", "loginPassword", "config"]) {
      const r = reports.find((x) => x.harness === name)!;
      assert.ok(r.accepted > 0 && r.refused > 0, `${name} on XS: accepted ${r.accepted}, refused ${r.refused}`);
    }
  });
});

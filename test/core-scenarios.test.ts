/*
 * The connection manager against the in-memory fake cloud: every option online,
 * issuance with lost messages, a power cut at every flash write, a cloud that
 * lost its pending secret, and back-off classes. The same scenarios run on XS
 * (test/xs-core.test.ts).
 */
import assert from "node:assert/strict";
import { nobleDigest } from "../modules/noble-digest";
import { SCENARIOS, scenarioPowerCutSweep } from "./support/scenarios";

describe("ConnectionManager scenarios (fake cloud)", () => {
  for (const [name, run] of Object.entries(SCENARIOS)) {
    it(name, () => {
      run(nobleDigest);
    });
  }

  it("scenarioPowerCutSweep_CoversEveryIssuanceWrite", () => {
    // counter reservation, issued secret, confirmation: at least three writes to cut
    assert.ok(scenarioPowerCutSweep(nobleDigest) >= 3);
  });
});

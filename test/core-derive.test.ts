/*
 * The derivation test vectors (test/support/vectors.ts) on Node, with the
 * @noble/hashes digest the core ships and with an independent node:crypto
 * digest, so a vector is never just "what noble said". The same vectors run
 * inside XS in test/xs-core.test.ts.
 */
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { nobleDigest } from "../modules/noble-digest";
import type { DigestPort } from "../modules/ports";
import { checkVectors, VECTORS, type VectorFunction } from "./support/vectors";

const nodeDigest: DigestPort = {
  sha256: (data) => new Uint8Array(createHash("sha256").update(data).digest()),
  hmacSha256: (key, data) => new Uint8Array(createHmac("sha256", key).update(data).digest()),
};

describe("derive.ts test vectors", () => {
  for (const [label, digest] of [["noble", nobleDigest], ["node:crypto", nodeDigest]] as const) {
    it(`checkVectors_AllMatch_${label}`, () => {
      const failed = checkVectors(digest).filter((result) => !result.ok);
      assert.deepEqual(failed, []);
    });
  }

  it("VECTORS_CoverEveryDerivation", () => {
    const covered = new Set(VECTORS.map((vector) => vector.fn));
    const all: VectorFunction[] = [
      "deriveTemporarySecret", "deriveCloudLoginKey", "deriveLoginProof", "deriveHotspotPassword", "deriveWrapKey", "wrapSecret", "deriveCommitProof",
      "hkdfSha256", "sealPublicKey", "p256SharedSecret", "aesGcmSeal", "sealTo",
    ];
    assert.deepEqual(all.filter((fn) => !covered.has(fn)), []);
  });

  it("checkVectors_WrongDigest_ReportsMismatch", () => {
    const broken: DigestPort = { ...nobleDigest, hmacSha256: (key, data) => { const out = nobleDigest.hmacSha256(key, data); out[0] ^= 1; return out; } };
    const results = checkVectors(broken);
    const digestFree: VectorFunction[] = ["sealPublicKey", "p256SharedSecret", "aesGcmSeal"];
    const failed = new Set(results.filter((result) => !result.ok).map((result) => result.name));
    for (const vector of VECTORS) assert.equal(failed.has(vector.name), !digestFree.includes(vector.fn), vector.name);
  });
});

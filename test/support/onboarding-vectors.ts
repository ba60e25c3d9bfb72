/*
 * Test vectors of local onboarding (docs/protocol.md 15.6), as plain data, and a
 * portable checker (no Node API): test/onboarding-core.test.ts runs it on Node
 * with node:crypto and the pure-JS SealPort and recomputes it from @noble/curves
 * and node:crypto alone; test/xs-core.test.ts runs it inside XS.
 * encode_to_curve vectors are RFC 9380 J.1.2 (P256_XMD:SHA-256_SSWU_NU_); the
 * scalars are RFC 5903 8.1's i and r. A change here is a protocol change.
 */
import { fromHex, toHex, utf8Encode } from "../../modules/bytes";
import { cpaceGenerator, cpaceKeys, openCall, sealCall } from "../../modules/onboarding/cpace";
import { newLabelCode, parseLabelCode } from "../../modules/onboarding/label-code";
import { encodeToP256 } from "../../modules/onboarding/p256-map";
import type { DigestPort, SealPort } from "../../modules/ports";

export const ONBOARDING_VECTOR = {
  labelRandom: "0123456789abcdef01",
  printedCode: "1RVV-WN6H-7BH6-J2",
  code: "1RVVWN6H7BH6J",
  deviceId: "lamp-0001",
  sid: "000102030405060708090a0b0c0d0e0f",
  clientScalar: "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
  deviceScalar: "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
  generator: "04c64f20e7940a34f0c42df83409501482bfd3958037c343afef183c7a382fbbf151719c3bd9dd03b764e3184f05e8dd9e2e9b411138efa112b88a81da994cbc23",
  clientShare: "14666a802085b4fe8360b7e523b20a721f7807a37d76f64da13fb17c3e4bbbad",
  deviceShare: "f48ffaae79e5d66f41bdd6339761d95d19ba4f32be98a224a73cef9f03405eeb",
  deviceTag: "ddca40877ed795dbbb817fe251e05c0054f114519e124d6256305db960f93648",
  clientTag: "405fa5eca1d61796bbcb42d63f1737e0e2274da60afe71c41dfdb0b4477db9c0",
  c2s: "00566b497943f78cf354e4a0d5d856d5",
  s2c: "0bfd81968068c70478b5ea5fc625eb27",
  call1Plaintext: '{"op":"status"}',
  call1Sealed: "a976fea00d141db01cbc8fe44ae95134d3a038650550b9a5e0b5eab5692d2e",
} as const;

/** RFC 9380 J.1.2, suite P256_XMD:SHA-256_SSWU_NU_. */
export const ENCODE_TO_CURVE_VECTORS = [
  { msg: "", point: "04f871caad25ea3b59c16cf87c1894902f7e7b2c822c3d3f73596c5ace8ddd14d187b9ae23335bee057b99bac1e68588b18b5691af476234b8971bc4f011ddc99b" },
  { msg: "abc", point: "04fc3f5d734e8dce41ddac49f47dd2b8a57257522a865c124ed02b92b5237befa4fe4d197ecf5a62645b9690599e1d80e82c500b22ac705a0b421fac7b47157866" },
] as const;
export const RFC9380_DST = "QUUX-V01-CS02-with-P256_XMD:SHA-256_SSWU_NU_";

/** Checks every onboarding vector; one result per check. */
export function checkOnboardingVectors(digest: DigestPort, seal: SealPort): { name: string; ok: boolean; got?: string }[] {
  const v = ONBOARDING_VECTOR;
  const out: { name: string; ok: boolean; got?: string }[] = [];
  const check = (name: string, compute: () => string, expected: string) => {
    let got: string;
    try {
      got = compute();
    } catch (error) {
      got = `threw ${error instanceof Error ? error.message : String(error)}`;
    }
    out.push(got === expected ? { name, ok: true } : { name, ok: false, got });
  };
  for (const e of ENCODE_TO_CURVE_VECTORS) check(`onboard/encode_to_curve "${e.msg}"`, () => toHex(encodeToP256(digest, utf8Encode(e.msg), RFC9380_DST)), e.point);
  check("onboard/label code", () => newLabelCode(() => fromHex(v.labelRandom)), v.printedCode);
  check("onboard/label code typed loosely", () => parseLabelCode(v.printedCode.toLowerCase().replace(/-/g, " ")), v.code);
  const sid = fromHex(v.sid);
  const generator = () => cpaceGenerator(digest, v.code, v.deviceId, sid);
  check("onboard/generator", () => toHex(generator()), v.generator);
  check("onboard/client share", () => toHex(seal.p256SharedSecret(fromHex(v.clientScalar), generator())), v.clientShare);
  check("onboard/device share", () => toHex(seal.p256SharedSecret(fromHex(v.deviceScalar), generator())), v.deviceShare);
  const keysOf = (side: "client" | "device") => {
    const a = fromHex(v.clientShare), b = fromHex(v.deviceShare);
    const keys = side === "client"
      ? cpaceKeys(digest, seal, v.deviceId, sid, fromHex(v.clientScalar), a, b, b)
      : cpaceKeys(digest, seal, v.deviceId, sid, fromHex(v.deviceScalar), a, b, a);
    if (!keys) throw new Error("no keys");
    return keys;
  };
  for (const side of ["client", "device"] as const) {
    check(`onboard/keys (${side} side)`, () => {
      const k = keysOf(side);
      return [k.deviceTag, k.clientTag, k.c2s, k.s2c].map(toHex).join(" ");
    }, [v.deviceTag, v.clientTag, v.c2s, v.s2c].join(" "));
  }
  check("onboard/call 1 sealed", () => toHex(sealCall(seal, keysOf("client"), "c2s", sid, 1, utf8Encode(v.call1Plaintext))), v.call1Sealed);
  check("onboard/call 1 refused as call 2 or the other way", () => {
    const keys = keysOf("device");
    const sealed = fromHex(v.call1Sealed);
    return [openCall(seal, keys, "c2s", sid, 2, sealed), openCall(seal, keys, "s2c", sid, 1, sealed)].map((x) => (x ? "opened" : "refused")).join(" ");
  }, "refused refused");
  return out;
}

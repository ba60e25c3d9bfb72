/*
 * Test vectors for every derivation in modules/derive.ts, as plain data, and a
 * portable checker (no Node API: test/core-derive.test.ts runs it on Node with
 * two digests, test/xs-core.test.ts runs it inside XS).
 *
 * Inputs: byte fields are lower-case hex, text fields (deviceId, kind) are text,
 * counters and generations are numbers. Expected: hex of the result, except
 * deriveHotspotPassword (its base64url text) and wrapSecret (hex of
 * ciphertext || tag). The derive.ts and seal vectors were computed once with
 * @noble/hashes on Node and checked against node:crypto; HKDF and X25519 are
 * the RFC 5869 and RFC 7748 vectors. A change here is a protocol change
 * (docs/protocol.md).
 */
import { fromHex, toHex } from "../../modules/bytes";
import {
  deriveCloudLoginKey,
  deriveCommitProof,
  deriveHotspotPassword,
  deriveLoginProof,
  deriveTemporarySecret,
  deriveWrapKey,
  unwrapSecret,
  wrapSecret,
  type LoginKind,
} from "../../modules/derive";
import type { DigestPort } from "../../modules/ports";
import { utf8Encode } from "../../modules/bytes";
import { hkdfSha256, openSealed, sealPublicKey, sealTo } from "../../modules/seal";
import { x25519, x25519SharedSecret } from "../../modules/x25519";

/** The derivations the vectors cover. */
export type VectorFunction =
  | "deriveTemporarySecret"
  | "deriveCloudLoginKey"
  | "deriveLoginProof"
  | "deriveHotspotPassword"
  | "deriveWrapKey"
  | "wrapSecret"
  | "deriveCommitProof"
  | "hkdfSha256"
  | "x25519"
  | "x25519Iterated"
  | "x25519SharedSecret"
  | "sealPublicKey"
  | "sealTo";

/** One vector: the function, its inputs, and the expected result. */
export interface DeriveVector {
  name: string;
  fn: VectorFunction;
  inputs: Record<string, string | number>;
  expected: string;
}

export const VECTORS: readonly DeriveVector[] = [
  { name: "temporary-secret/32-byte key", fn: "deriveTemporarySecret", inputs: { provisioningKey: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff", deviceId: "lamp-0001" }, expected: "4a3263d17f02b1416b7a4da091a2c09a4b9b62c1935b3cf198e8627d96ea2de2" },
  { name: "temporary-secret/16-byte key, 64-character id", fn: "deriveTemporarySecret", inputs: { provisioningKey: "00112233445566778899aabbccddeeff", deviceId: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, expected: "c68e8ce40956f25dbc8d66d1c5c36382b2eacae8b5de61b65422aebfb0bb49bb" },
  { name: "cloud-login-key/secret 1", fn: "deriveCloudLoginKey", inputs: { secret: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" }, expected: "8df03d0ced7ac081aa0efc1c711ef446382f83ecbe5d7787c1452ff9beb4ae2e" },
  { name: "cloud-login-key/secret 2", fn: "deriveCloudLoginKey", inputs: { secret: "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c" }, expected: "ef59b86ec7857f59b05f2ab8c5decc25c62c28a3eaeb48c1a04238b09fb3e002" },
  { name: "login-proof/shared, counter 1", fn: "deriveLoginProof", inputs: { loginKey: "8df03d0ced7ac081aa0efc1c711ef446382f83ecbe5d7787c1452ff9beb4ae2e", deviceId: "lamp-0001", kind: "s", counter: 1 }, expected: "2610cd10720acadbf4ff552048b5d927f182062867026320bf142c3f36bcc544" },
  { name: "login-proof/temporary, counter 2^32", fn: "deriveLoginProof", inputs: { loginKey: "8df03d0ced7ac081aa0efc1c711ef446382f83ecbe5d7787c1452ff9beb4ae2e", deviceId: "lamp-0001", kind: "t", counter: 4294967296 }, expected: "1d6a821f455975664224be0831cc09b111c7e5b1e9922c8b05625c5813918cc3" },
  { name: "hotspot-password/secret 1", fn: "deriveHotspotPassword", inputs: { secret: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", deviceId: "lamp-0001" }, expected: "VlLg6Y1zE07bYADUCJGakWEelUWsPAh3-si0yU_m-po" },
  { name: "hotspot-password/secret 2", fn: "deriveHotspotPassword", inputs: { secret: "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c", deviceId: "sensor_7.b" }, expected: "bmEzIWlA7U5NOeHY-UDvw4D0Z68hnfh7GgUYyvf-AGg" },
  { name: "wrap-key/secret 1", fn: "deriveWrapKey", inputs: { secret: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" }, expected: "fb4a1e34b1fcb43260b60999518ea52570fadad7047fe43c75954bd6a02eb8c1" },
  { name: "wrap-secret/secret 2 under wrap key 1", fn: "wrapSecret", inputs: { wrapKey: "fb4a1e34b1fcb43260b60999518ea52570fadad7047fe43c75954bd6a02eb8c1", deviceId: "lamp-0001", nonce: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", secret: "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c" }, expected: "91b4be1fc6e53f200a823ffc33e12510b57ee9e2ac28409ea501ee08a25f860dac1b8a91fc11c76419a6277b178bb3a87b8c1fb60adecf09660098f7d516c49f" },
  { name: "commit-proof/generation 1", fn: "deriveCommitProof", inputs: { newSecret: "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c", deviceId: "lamp-0001", generation: 1 }, expected: "e55344d199b09a424923030628069d7c4318f225998ad11db5f695f3b5dd9ab0" },
  { name: "commit-proof/generation 7", fn: "deriveCommitProof", inputs: { newSecret: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", deviceId: "lamp-0001", generation: 7 }, expected: "0ebe0243f2e0460b8401178e7830a843115f1a6579a7d4f4346e23e973dbd031" },
  // RFC 5869 A.1-A.3 (HKDF-SHA256 over the DigestPort)
  { name: "hkdf/RFC 5869 A.1", fn: "hkdfSha256", inputs: { ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", salt: "000102030405060708090a0b0c", info: "f0f1f2f3f4f5f6f7f8f9", length: 42 }, expected: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865" },
  { name: "hkdf/RFC 5869 A.2 (long inputs)", fn: "hkdfSha256", inputs: { ikm: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", salt: "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf", info: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", length: 82 }, expected: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87" },
  { name: "hkdf/RFC 5869 A.3 (no salt, no info)", fn: "hkdfSha256", inputs: { ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", salt: "", info: "", length: 42 }, expected: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8" },
  // RFC 7748 5.2 (X25519 function; the second u-coordinate has its top bit set and is masked)
  { name: "x25519/RFC 7748 5.2 vector 1", fn: "x25519", inputs: { scalar: "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", u: "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c" }, expected: "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
  { name: "x25519/RFC 7748 5.2 vector 2", fn: "x25519", inputs: { scalar: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", u: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493" }, expected: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
  // RFC 7748 5.2 iterated, 1 iteration (the 1,000-iteration vector: X25519_ITERATED_1000, Node only)
  { name: "x25519/RFC 7748 5.2 iterated, 1", fn: "x25519Iterated", inputs: { iterations: 1 }, expected: "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079" },
  // RFC 7748 6.1 (Alice's and Bob's key pairs and their shared secret)
  { name: "seal-public-key/RFC 7748 6.1 Alice", fn: "sealPublicKey", inputs: { secretKey: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a" }, expected: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" },
  { name: "seal-public-key/RFC 7748 6.1 Bob", fn: "sealPublicKey", inputs: { secretKey: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb" }, expected: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" },
  { name: "x25519-shared/RFC 7748 6.1 Alice", fn: "x25519SharedSecret", inputs: { secretKey: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", publicKey: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" }, expected: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" },
  { name: "x25519-shared/RFC 7748 6.1 Bob", fn: "x25519SharedSecret", inputs: { secretKey: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", publicKey: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" }, expected: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" },
  // format 2 (HMAC-SHA256 stream + HMAC-SHA256 tag); the ephemeral key is Bob's of RFC 7748 6.1,
  // so the ciphertext is keyed by the 6.1 shared secret. Checked against node:crypto (test/core-network.test.ts)
  { name: "seal/network change to lamp-0001", fn: "sealTo", inputs: { publicKey: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", deviceId: "lamp-0001", ephemeralSecret: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", plaintext: '{"v":1,"seq":1,"action":"set","ssid":"Home","password":"correct horse","priority":10}', deviceSecretKey: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a" }, expected: "02de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f26b1402069aab97ecd9110e492c0bb6959224709b53809af66dc22213ca91fd6820f1f21bd3473410950ffadb1b9e01fb51159053f7b8c06b265a995df08a5da23c0713e2d2c176cd19ff74eab6093ac09e9ce07773cdae6c286fc10509d3942c8bbcac20f41c4d95a10250b714913450767a5da8a" },
];

function bytes(vector: DeriveVector, field: string): Uint8Array {
  const value = vector.inputs[field];
  if (typeof value !== "string") throw new Error(`${vector.name}: input ${field} is not hex`);
  return fromHex(value);
}

function text(vector: DeriveVector, field: string): string {
  const value = vector.inputs[field];
  if (typeof value !== "string") throw new Error(`${vector.name}: input ${field} is not text`);
  return value;
}

function integer(vector: DeriveVector, field: string): number {
  const value = vector.inputs[field];
  if (typeof value !== "number") throw new Error(`${vector.name}: input ${field} is not a number`);
  return value;
}

/** RFC 7748 5.2 iterated X25519 after `iterations` rounds (k = u = 9 at first), hex. */
export function x25519Iterated(iterations: number): string {
  let k: Uint8Array = new Uint8Array(32);
  k[0] = 9;
  let u: Uint8Array = k.slice();
  for (let i = 0; i < iterations; i++) {
    const next = x25519(k, u);
    u = k;
    k = next;
  }
  return toHex(k);
}

/** RFC 7748 5.2: the result after 1,000 iterations (about 2.5 s on Node and in xsnap, so Node only). */
export const X25519_ITERATED_1000 = "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51";

/** Computes what `vector` describes with `digest`, in the vector's expected format. */
export function computeVector(digest: DigestPort, vector: DeriveVector): string {
  switch (vector.fn) {
    case "deriveTemporarySecret":
      return toHex(deriveTemporarySecret(digest, bytes(vector, "provisioningKey"), text(vector, "deviceId")));
    case "deriveCloudLoginKey":
      return toHex(deriveCloudLoginKey(digest, bytes(vector, "secret")));
    case "deriveLoginProof":
      return toHex(deriveLoginProof(digest, bytes(vector, "loginKey"), text(vector, "deviceId"), text(vector, "kind") as LoginKind, integer(vector, "counter")));
    case "deriveHotspotPassword":
      return deriveHotspotPassword(digest, bytes(vector, "secret"), text(vector, "deviceId"));
    case "deriveWrapKey":
      return toHex(deriveWrapKey(digest, bytes(vector, "secret")));
    case "wrapSecret": {
      const wrapped = wrapSecret(digest, bytes(vector, "wrapKey"), text(vector, "deviceId"), bytes(vector, "nonce"), bytes(vector, "secret"));
      return toHex(wrapped.ciphertext) + toHex(wrapped.tag);
    }
    case "deriveCommitProof":
      return toHex(deriveCommitProof(digest, bytes(vector, "newSecret"), text(vector, "deviceId"), integer(vector, "generation")));
    case "hkdfSha256":
      return toHex(hkdfSha256(digest, bytes(vector, "ikm"), bytes(vector, "salt"), bytes(vector, "info"), integer(vector, "length")));
    case "x25519":
      return toHex(x25519(bytes(vector, "scalar"), bytes(vector, "u")));
    case "x25519Iterated":
      return x25519Iterated(integer(vector, "iterations"));
    case "x25519SharedSecret":
      return toHex(x25519SharedSecret(bytes(vector, "secretKey"), bytes(vector, "publicKey")));
    case "sealPublicKey":
      return toHex(sealPublicKey(bytes(vector, "secretKey")));
    case "sealTo":
      return toHex(sealTo(digest, bytes(vector, "publicKey"), text(vector, "deviceId"), utf8Encode(text(vector, "plaintext")), bytes(vector, "ephemeralSecret")));
  }
}

/** The outcome of one vector. */
export interface VectorResult {
  name: string;
  ok: boolean;
  /** what was computed, when it differs from the expected value */
  got?: string;
}

/**
 * Checks every vector, plus unwrapSecret as the inverse of each wrapSecret vector
 * (and its refusal of a tampered tag). Never throws for a mismatch: each result says.
 */
export function checkVectors(digest: DigestPort): VectorResult[] {
  const results: VectorResult[] = [];
  for (const vector of VECTORS) {
    let got: string;
    try {
      got = computeVector(digest, vector);
    } catch (error) {
      got = `threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
    }
    results.push(got === vector.expected ? { name: vector.name, ok: true } : { name: vector.name, ok: false, got });
    if (vector.fn === "wrapSecret") {
      const wrapped = fromHex(vector.expected);
      const args = [digest, bytes(vector, "wrapKey"), text(vector, "deviceId"), bytes(vector, "nonce")] as const;
      const unwrapped = unwrapSecret(...args, { ciphertext: wrapped.subarray(0, 32), tag: wrapped.subarray(32) });
      const secretOk = unwrapped !== undefined && toHex(unwrapped) === vector.inputs.secret;
      results.push(secretOk ? { name: `${vector.name}/unwrap`, ok: true } : { name: `${vector.name}/unwrap`, ok: false, got: unwrapped ? toHex(unwrapped) : "refused" });
      const tampered = wrapped.slice();
      tampered[63] ^= 1;
      const refused = unwrapSecret(...args, { ciphertext: tampered.subarray(0, 32), tag: tampered.subarray(32) }) === undefined;
      results.push(refused ? { name: `${vector.name}/tampered tag refused`, ok: true } : { name: `${vector.name}/tampered tag refused`, ok: false, got: "accepted" });
    }
    if (vector.fn === "sealTo") {
      const sealed = fromHex(vector.expected);
      const key = bytes(vector, "deviceSecretKey");
      const opened = openSealed(digest, key, text(vector, "deviceId"), sealed);
      const openOk = opened !== undefined && toHex(opened) === toHex(utf8Encode(text(vector, "plaintext")));
      results.push(openOk ? { name: `${vector.name}/open`, ok: true } : { name: `${vector.name}/open`, ok: false, got: opened ? toHex(opened) : "refused" });
      const tampered = sealed.slice();
      tampered[40] ^= 1;
      const refused = openSealed(digest, key, text(vector, "deviceId"), tampered) === undefined;
      results.push(refused ? { name: `${vector.name}/tampered refused`, ok: true } : { name: `${vector.name}/tampered refused`, ok: false, got: "opened" });
    }
  }
  return results;
}

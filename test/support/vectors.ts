/*
 * Test vectors for every derivation in modules/derive.ts, as plain data, and a
 * portable checker (no Node API: test/core-derive.test.ts runs it on Node with
 * two digests, test/xs-core.test.ts runs it inside XS).
 *
 * Inputs: byte fields are lower-case hex, text fields (deviceId, kind) are text,
 * counters and generations are numbers. Expected: hex of the result, except
 * deriveHotspotPassword (its base64url text) and wrapSecret (hex of
 * ciphertext || tag). Computed once with @noble/hashes on Node and checked
 * against node:crypto; a change here is a protocol change (docs/protocol.md).
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
  // RFC 5869 A.1 (HKDF-SHA256 over the DigestPort)
  { name: "hkdf/RFC 5869 A.1", fn: "hkdfSha256", inputs: { ikm: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", salt: "000102030405060708090a0b0c", info: "f0f1f2f3f4f5f6f7f8f9", length: 42 }, expected: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865" },
  // RFC 7748 6.1 (Alice)
  { name: "seal-public-key/RFC 7748 6.1", fn: "sealPublicKey", inputs: { secretKey: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a" }, expected: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" },
  // checked against node:crypto (X25519, HKDF, ChaCha20-Poly1305)
  { name: "seal/network change to lamp-0001", fn: "sealTo", inputs: { publicKey: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", deviceId: "lamp-0001", ephemeralSecret: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", plaintext: '{"v":1,"seq":1,"action":"set","ssid":"Home","password":"correct horse","priority":10}', deviceSecretKey: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a" }, expected: "01de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f927da77117cf4d0e6136aea1a55aa435239c942e18568fb89e8096a01b0c13ed76bb9bfd8f58d627ba8d9aba1b5e3baaf50cd704f78dab186cb03eb3505381aacb2c9519475c4981e378e166fc60565e780c46055d838dccb83658a4cc05634712bb6adcb8" },
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

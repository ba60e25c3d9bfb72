/*
 * Test vectors for every derivation in modules/derive.ts, as plain data, and a
 * portable checker (no Node API: test/core-derive.test.ts runs it on Node with
 * two digests, test/xs-core.test.ts runs it inside XS).
 *
 * Inputs: byte fields are lower-case hex, text fields (deviceId, kind) are text,
 * counters and generations are numbers. Expected: hex of the result, except
 * deriveHotspotPassword (its base64url text) and wrapSecret (hex of
 * ciphertext || tag). The derive.ts and seal vectors were computed once with
 * @noble/hashes on Node and checked against node:crypto; HKDF, P-256 and AES-GCM are
 * the RFC 5869, RFC 5903 and GCM-specification vectors. A change here is a protocol change
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
import { jsSeal } from "../../modules/js-seal";
import type { DigestPort, SealPort } from "../../modules/ports";
import { utf8Encode } from "../../modules/bytes";
import { hkdfSha256, openSealed, sealPublicKey, type SealPurpose } from "../../modules/seal";
import { sealTo } from "../../modules/seal-to";

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
  | "p256SharedSecret"
  | "aesGcmSeal"
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
  // RFC 5903 8.1 (P-256 ECDH, the IKEv2 ECP 256 group): key pairs i and r and their shared secret
  { name: "seal-public-key/RFC 5903 8.1 i", fn: "sealPublicKey", inputs: { secretKey: "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433" }, expected: "04dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c37725811805271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3" },
  { name: "seal-public-key/RFC 5903 8.1 r", fn: "sealPublicKey", inputs: { secretKey: "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53" }, expected: "04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab" },
  { name: "p256-shared/RFC 5903 8.1", fn: "p256SharedSecret", inputs: { secretKey: "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433", publicKey: "04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab" }, expected: "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de" },
  // The GCM specification (McGrew and Viega), AES-128 test case 4: ciphertext || tag
  { name: "aes-128-gcm/GCM spec test case 4", fn: "aesGcmSeal", inputs: { key: "feffe9928665731c6d6a8f9467308308", iv: "cafebabefacedbaddecaf888", aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2", plaintext: "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39" }, expected: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e0915bc94fbc3221a5db94fae95ae7121a47" },
  // format 3 (P-256 + HKDF + AES-128-GCM); the ephemeral key is r of RFC 5903 8.1, the device's i,
  // so the keys come from the 8.1 shared secret. Recomputed from node:crypto alone in test/core-network.test.ts
  { name: "seal/network change to lamp-0001", fn: "sealTo", inputs: { publicKey: "04dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c37725811805271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3", deviceId: "lamp-0001", purpose: "network", ephemeralSecret: "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53", plaintext: '{"v":1,"seq":1,"action":"set","ssid":"Home","password":"correct horse","priority":10}', deviceSecretKey: "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433" }, expected: "0304d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab5af1b5e30f0f34b4051eefff49223158340b3a2c8f375d5c2a0359428d4e1a833e9ff9f28e8222230cf2fa7b5c4c043483a0257848b87b434ad28dd0571a6092aea0f5bc4af769f49af3294f57cacc806804b1234e00be9d0d712c9a6d62fdc095c8816306" },
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

/** Computes what `vector` describes with `digest` (and `seal`), in the vector's expected format. */
export function computeVector(digest: DigestPort, vector: DeriveVector, seal: SealPort = jsSeal): string {
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
      return toHex(sealPublicKey(seal, bytes(vector, "secretKey")));
    case "p256SharedSecret":
      return toHex(seal.p256SharedSecret(bytes(vector, "secretKey"), bytes(vector, "publicKey")));
    case "aesGcmSeal":
      return toHex(seal.aesGcmSeal(bytes(vector, "key"), bytes(vector, "iv"), bytes(vector, "aad"), bytes(vector, "plaintext")));
    case "sealTo":
      return toHex(sealTo(digest, seal, bytes(vector, "publicKey"), text(vector, "deviceId"), utf8Encode(text(vector, "plaintext")), bytes(vector, "ephemeralSecret"), text(vector, "purpose") as SealPurpose));
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
export function checkVectors(digest: DigestPort, seal: SealPort = jsSeal): VectorResult[] {
  const results: VectorResult[] = [];
  for (const vector of VECTORS) {
    let got: string;
    try {
      got = computeVector(digest, vector, seal);
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
      const purpose = text(vector, "purpose") as SealPurpose;
      const open = (blob: Uint8Array, id = text(vector, "deviceId"), as = purpose) => openSealed(digest, seal, key, bytes(vector, "publicKey"), id, blob, as);
      const opened = open(sealed);
      const openOk = opened !== undefined && toHex(opened) === toHex(utf8Encode(text(vector, "plaintext")));
      results.push(openOk ? { name: `${vector.name}/open`, ok: true } : { name: `${vector.name}/open`, ok: false, got: opened ? toHex(opened) : "refused" });
      const tampered = sealed.slice();
      tampered[100] ^= 1;
      const refused = open(tampered) === undefined && open(sealed, "lamp-0002") === undefined && open(sealed, undefined, "rotation") === undefined;
      results.push(refused ? { name: `${vector.name}/tampered, other device or purpose refused`, ok: true } : { name: `${vector.name}/tampered, other device or purpose refused`, ok: false, got: "opened" });
    }
    if (vector.fn === "aesGcmSeal") {
      const opened = seal.aesGcmOpen(bytes(vector, "key"), bytes(vector, "iv"), bytes(vector, "aad"), fromHex(vector.expected));
      const openOk = opened !== undefined && toHex(opened) === vector.inputs.plaintext;
      results.push(openOk ? { name: `${vector.name}/open`, ok: true } : { name: `${vector.name}/open`, ok: false, got: opened ? toHex(opened) : "refused" });
    }
  }
  return results;
}

/*
 * End-to-end sealing to a key only the device holds (format 3): ECIES over
 * P-256 with AES-128-GCM, the key agreement and the cipher behind the host's
 * SealPort (native on Moddable), the key derivation over its DigestPort.
 *
 * The device makes a P-256 key pair at its first hello and keeps the secret key
 * in flash (network-store.ts); the cloud stores the public key. For each sealed
 * message the cloud makes an ephemeral key pair:
 *
 *   shared  = P-256 ECDH(ephemeral secret, device public)       (X coordinate, 32 bytes)
 *   key||iv = HKDF-SHA256(ikm = shared, salt = ephemeral public || device public,
 *                         info = "wcm-v1 seal-3" 0x00 purpose 0x00 deviceId, L = 28)
 *   header  = 0x03 || ephemeral public (65, uncompressed)
 *   sealed  = header || AES-128-GCM(key, iv, aad = header, plaintext)     (ciphertext || 16-byte tag)
 *
 * `purpose` keeps the uses apart: "network" (a private network change, 14.4)
 * and "rotation" (a rotated secret, docs/protocol.md 9.5). Keys and IV are
 * fresh for every message (fresh ephemeral key), so an IV never repeats under a
 * key. The core, not the host, checks what it is given: a public key must be
 * an uncompressed point on the curve (SEC1 3.2.2; Moddable's curve.js does not
 * check, and an invalid-curve point would leak bits of the device's key), a
 * secret key a scalar in [1, n-1].
 *
 * Why P-256 and AES-GCM (format 2 was X25519 as a BigInt ladder in the core,
 * with HMAC-SHA256 as keystream and tag): Moddable has native P-256 ECDH and
 * native AES and GHASH, and ships them already for TLS (crypt/tls.json), but
 * has no X25519. The ladder cost 631,578 XS meter steps per key agreement, two
 * thirds of the device's compute in a whole first boot (bench:xs); behind the
 * port it is native. Format 2 blobs are still made by the cloud for devices in
 * the field that registered a 32-byte X25519 key (cloud/legacy-seal.ts); this
 * firmware neither makes nor opens them.
 * Vectors: docs/protocol.md 14.4, test/support/vectors.ts. The sealing half
 * (sealTo, the cloud's) is in seal-to.ts: the firmware only opens.
 */
import { concatBytes, toHex } from "./bytes";
import { labelled } from "./derive";
import { WcmError } from "./errors";
import type { DigestPort, SealPort } from "./ports";

/** HKDF info label of sealing (format 3). */
export const SEAL_LABEL = "wcm-v1 seal-3";
/** Format byte of a sealed blob. */
export const SEAL_VERSION = 3;
/** Bytes of an uncompressed P-256 public key. */
export const SEAL_PUBLIC_KEY_BYTES = 65;
/** Bytes a sealed blob adds to its plaintext: version, ephemeral key, tag. */
export const SEAL_OVERHEAD = 1 + SEAL_PUBLIC_KEY_BYTES + 16;
/** What a sealed blob is for (bound into its keys). */
export type SealPurpose = "network" | "rotation";

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** The big-endian integer of `bytes` (never empty). */
const toBigInt = (bytes: Uint8Array): bigint => BigInt("0x" + toHex(bytes));

/** True for a P-256 secret scalar: 32 bytes big-endian, 1 <= k < n. */
export const isSealSecretKey = (secretKey: Uint8Array): boolean => {
  if (secretKey.length !== 32) return false;
  const k = toBigInt(secretKey);
  return k > 0n && k < N;
};

/** True for an uncompressed P-256 point on the curve (y^2 = x^3 - 3x + b mod p, 0 <= x, y < p). */
export const isSealPublicKey = (publicKey: Uint8Array): boolean => {
  if (publicKey.length !== SEAL_PUBLIC_KEY_BYTES || publicKey[0] !== 4) return false;
  const x = toBigInt(publicKey.subarray(1, 33));
  const y = toBigInt(publicKey.subarray(33, 65));
  if (x >= P || y >= P) return false;
  return (x * x * x - 3n * x + B - y * y) % P === 0n;
};

/**
 * A new sealing secret key from a random source (draws again in the rare case,
 * about 2^-32, that 32 random bytes are not a scalar below n).
 */
export const newSealSecretKey = (random: (length: number) => Uint8Array): Uint8Array => {
  for (;;) {
    const key = random(32);
    if (isSealSecretKey(key)) return key;
  }
};

/**
 * HKDF-SHA256 (RFC 5869) over a DigestPort.
 * @param length - output bytes, at most 255 * 32
 */
export const hkdfSha256 = (digest: DigestPort, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array => {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new WcmError("STATE_INVALID", "HKDF length out of range", "length");
  const prk = digest.hmacSha256(salt.length ? salt : new Uint8Array(32), ikm);
  // T(i) = HMAC(prk, T(i-1) || info || i), okm = T(1) || T(2) ...
  let okm: Uint8Array = new Uint8Array(0);
  for (let block = okm, i = 1; okm.length < length; i++) okm = concatBytes(okm, block = digest.hmacSha256(prk, concatBytes(block, info, Uint8Array.of(i))));
  return okm.slice(0, length);
};

/**
 * The public key of a device's sealing secret key.
 * @throws WcmError CREDENTIAL_INVALID when the secret key is not a P-256 scalar
 */
export const sealPublicKey = (seal: SealPort, secretKey: Uint8Array): Uint8Array => {
  if (!isSealSecretKey(secretKey)) throw new WcmError("CREDENTIAL_INVALID", "not a P-256 secret key", "secretKey");
  return seal.p256PublicKey(secretKey);
};

/** The AES-128-GCM key and IV of one sealed blob (HKDF over the ECDH secret; also seal-to.ts). */
export const sealKeys = (digest: DigestPort, shared: Uint8Array, ephemeralPublic: Uint8Array, recipient: Uint8Array, deviceId: string, purpose: SealPurpose) => {
  const okm = hkdfSha256(digest, shared, concatBytes(ephemeralPublic, recipient), labelled(SEAL_LABEL, purpose, deviceId), 28);
  return { key: okm.subarray(0, 16), iv: okm.subarray(16, 28) };
};

/**
 * Opens a blob made by sealTo with the device's secret key.
 * @param publicKey - the device's own public key (sealPublicKey of secretKey), passed in so it is computed once
 * @returns the plaintext, or undefined when the blob is malformed, for another
 *   key, device or purpose, or was changed in any bit
 */
export const openSealed = (
  digest: DigestPort,
  seal: SealPort,
  secretKey: Uint8Array,
  publicKey: Uint8Array,
  deviceId: string,
  sealed: Uint8Array,
  purpose: SealPurpose = "network",
): Uint8Array | undefined => {
  const header = sealed.subarray(0, 1 + SEAL_PUBLIC_KEY_BYTES);
  const ephemeralPublic = header.subarray(1);
  if (sealed.length < SEAL_OVERHEAD || sealed[0] !== SEAL_VERSION || !isSealSecretKey(secretKey) || !isSealPublicKey(ephemeralPublic)) return undefined;
  try {
    const shared = seal.p256SharedSecret(secretKey, ephemeralPublic);
    const keys = sealKeys(digest, shared, ephemeralPublic, publicKey, deviceId, purpose);
    return seal.aesGcmOpen(keys.key, keys.iv, header, sealed.subarray(header.length));
  } catch {
    return undefined;
  }
};

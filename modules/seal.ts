/*
 * End-to-end sealing of private network credentials to a key only the device
 * holds: ECIES over X25519, with every symmetric step over the DigestPort.
 *
 * The device makes an X25519 key pair at first boot and keeps the secret key in
 * flash (network-store.ts); the cloud stores its public key. To send a network
 * change, the cloud makes an ephemeral key pair per message:
 *
 *   shared        = X25519(ephemeral secret, device public key)      (32 bytes; all-zero refused)
 *   encKey||macKey = HKDF-SHA256(ikm = shared, salt = ephemeral public || device public,
 *                                info = "wcm-v1 network-seal-2" 0x00 deviceId, L = 64)
 *   stream        = S(0) || S(1) || ...,  S(i) = HMAC(encKey, "wcm-v1 seal-stream" 0x00 u32be(i))
 *   ciphertext    = plaintext XOR stream (truncated to the plaintext)
 *   tag           = HMAC(macKey, "wcm-v1 seal-tag" 0x00 deviceId 0x00 ephemeral public
 *                        0x00 u32be(ciphertext length) 0x00 ciphertext)       (32 bytes)
 *   sealed        = 0x02 || ephemeral public (32) || ciphertext || tag (32)
 *
 * That is HMAC-SHA256 as a PRF in counter mode for the keystream and
 * encrypt-then-MAC with the full 32-byte tag, checked in constant time before
 * anything is decrypted. Keys are fresh for every message (fresh ephemeral key),
 * so no nonce is needed: the stream never repeats under one key, and the tag
 * binds the blob to its device (deviceId also in `info`) and to its ephemeral
 * key. encKey and macKey are independent HKDF outputs.
 *
 * Why HMAC rather than an AEAD cipher: format 0x01 (label "wcm-v1 network-seal")
 * used ChaCha20-Poly1305 from @noble/ciphers and X25519 from @noble/curves,
 * 57 KB of XS bytecode whose only gain was speed on long messages, and a network
 * change is about 100 bytes (4 HMACs of stream and tag, 3 of HKDF). The device
 * has native SHA-256/HMAC behind its DigestPort (Moddable's crypt Digest), so
 * this construction puts no JavaScript cipher or hash in flash; with the
 * self-contained X25519 (x25519.ts) the core needs no @noble module at all
 * (64.7 KB less XS release bytecode, for 1.4 KB more of core; docs/moddable.md).
 * Any host's native or hardware HMAC serves; pure-JS hosts use noble-digest.ts.
 * HKDF is RFC 5869 over digest.hmacSha256. Test vectors: docs/protocol.md 14.4,
 * test/support/vectors.ts (checked against node:crypto in test/core-network.test.ts).
 */
import { concatBytes, constantTimeEqual } from "./bytes";
import { labelled } from "./derive";
import { WcmError } from "./errors";
import type { DigestPort } from "./ports";
import { x25519PublicKey, x25519SharedSecret } from "./x25519";

/** HKDF info label of network sealing (format 2). */
export const SEAL_LABEL = "wcm-v1 network-seal-2";
/** Label of the keystream blocks. */
export const SEAL_STREAM_LABEL = "wcm-v1 seal-stream";
/** Label of the tag. */
export const SEAL_TAG_LABEL = "wcm-v1 seal-tag";
/** Format byte of a sealed blob. */
export const SEAL_VERSION = 2;
/** Bytes a sealed blob adds to its plaintext: version, ephemeral key, tag. */
export const SEAL_OVERHEAD = 1 + 32 + 32;

/**
 * HKDF-SHA256 (RFC 5869) over a DigestPort.
 * @param length - output bytes, at most 255 * 32
 */
export function hkdfSha256(digest: DigestPort, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new WcmError("STATE_INVALID", "HKDF length out of range", "length");
  const prk = digest.hmacSha256(salt.length ? salt : new Uint8Array(32), ikm);
  const out = new Uint8Array(length);
  let block: Uint8Array = new Uint8Array(0);
  for (let i = 0, filled = 0; filled < length; i++) {
    block = digest.hmacSha256(prk, concatBytes(block, info, Uint8Array.of(i + 1)));
    out.set(block.subarray(0, Math.min(32, length - filled)), filled);
    filled += 32;
  }
  return out;
}

/** The public key of a device's sealing secret key. */
export function sealPublicKey(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw new WcmError("CREDENTIAL_INVALID", "must be 32 bytes", "secretKey");
  return x25519PublicKey(secretKey);
}

function keys(digest: DigestPort, shared: Uint8Array, ephemeralPublic: Uint8Array, recipient: Uint8Array, deviceId: string) {
  const okm = hkdfSha256(digest, shared, concatBytes(ephemeralPublic, recipient), labelled(SEAL_LABEL, deviceId), 64);
  return { encKey: okm.subarray(0, 32), macKey: okm.subarray(32, 64) };
}

/** `data` XOR the HMAC counter-mode keystream under `encKey` (encrypts and decrypts). */
function xorStream(digest: DigestPort, encKey: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  const message = labelled(SEAL_STREAM_LABEL, new Uint8Array(4));
  const counter = new DataView(message.buffer, message.length - 4);
  for (let offset = 0, i = 0; offset < data.length; offset += 32, i++) {
    counter.setUint32(0, i);
    const block = digest.hmacSha256(encKey, message);
    for (let j = 0; j < 32 && offset + j < data.length; j++) out[offset + j] = data[offset + j] ^ block[j];
  }
  return out;
}

function tag(digest: DigestPort, macKey: Uint8Array, deviceId: string, ephemeralPublic: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, ciphertext.length);
  return digest.hmacSha256(macKey, labelled(SEAL_TAG_LABEL, deviceId, ephemeralPublic, length, ciphertext));
}

/**
 * Seals `plaintext` to a device's public key.
 * @param ephemeralSecret - 32 fresh random bytes (never reuse one)
 * @throws WcmError CREDENTIAL_INVALID for a malformed or low-order public key
 */
export function sealTo(
  digest: DigestPort,
  recipientPublicKey: Uint8Array,
  deviceId: string,
  plaintext: Uint8Array,
  ephemeralSecret: Uint8Array,
): Uint8Array {
  if (recipientPublicKey.length !== 32) throw new WcmError("CREDENTIAL_INVALID", "must be 32 bytes", "publicKey");
  if (ephemeralSecret.length !== 32) throw new WcmError("CREDENTIAL_INVALID", "must be 32 bytes", "ephemeralSecret");
  const ephemeralPublic = x25519PublicKey(ephemeralSecret);
  let shared: Uint8Array;
  try {
    shared = x25519SharedSecret(ephemeralSecret, recipientPublicKey);
  } catch {
    throw new WcmError("CREDENTIAL_INVALID", "low-order public key", "publicKey");
  }
  const { encKey, macKey } = keys(digest, shared, ephemeralPublic, recipientPublicKey, deviceId);
  const ciphertext = xorStream(digest, encKey, plaintext);
  return concatBytes(Uint8Array.of(SEAL_VERSION), ephemeralPublic, ciphertext, tag(digest, macKey, deviceId, ephemeralPublic, ciphertext));
}

/**
 * Opens a blob made by sealTo with the device's secret key.
 * @returns the plaintext, or undefined when the blob is malformed, for another
 *   key or device, or was changed in any bit
 */
export function openSealed(digest: DigestPort, secretKey: Uint8Array, deviceId: string, sealed: Uint8Array): Uint8Array | undefined {
  if (secretKey.length !== 32 || sealed.length < SEAL_OVERHEAD || sealed[0] !== SEAL_VERSION) return undefined;
  const ephemeralPublic = sealed.subarray(1, 33);
  const ciphertext = sealed.subarray(33, sealed.length - 32);
  try {
    const shared = x25519SharedSecret(secretKey, ephemeralPublic);
    const { encKey, macKey } = keys(digest, shared, ephemeralPublic, x25519PublicKey(secretKey), deviceId);
    if (!constantTimeEqual(tag(digest, macKey, deviceId, ephemeralPublic, ciphertext), sealed.subarray(sealed.length - 32))) return undefined;
    return xorStream(digest, encKey, ciphertext);
  } catch {
    return undefined;
  }
}

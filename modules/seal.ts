/*
 * End-to-end sealing of private network credentials to a key only the device
 * holds (ECIES over X25519).
 *
 * The device makes an X25519 key pair at first boot and keeps the secret key in
 * flash (network-store.ts); the cloud stores its public key. To send a network
 * change, the cloud makes an ephemeral key pair per message:
 *
 *   shared      = X25519(ephemeral secret, device public key)        (32 bytes; all-zero refused)
 *   key||nonce  = HKDF-SHA256(ikm = shared, salt = ephemeral public || device public,
 *                             info = "wcm-v1 network-seal" 0x00 deviceId, L = 44)
 *   sealed      = 0x01 || ephemeral public (32) || ChaCha20-Poly1305(key, nonce, plaintext, aad = none)
 *
 * The key is fresh for every message (fresh ephemeral key), so the derived
 * nonce is never reused under one key. The device id in `info` binds a blob to
 * its device. HKDF runs over the DigestPort's HMAC (RFC 5869), so a host's
 * native or hardware HMAC serves; X25519 and ChaCha20-Poly1305 come from
 * @noble/curves and @noble/ciphers (pure JS, checked on XS by test/xs-core.test.ts).
 * Test vectors: docs/protocol.md 5.7, test/support/vectors.ts.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { concatBytes } from "./bytes";
import { labelled } from "./derive";
import { WcmError } from "./errors";
import type { DigestPort } from "./ports";
import { x25519PublicKey, x25519SharedSecret } from "./x25519";

/** HKDF info label of network sealing. */
export const SEAL_LABEL = "wcm-v1 network-seal";
/** Format byte of a sealed blob. */
export const SEAL_VERSION = 1;
/** Bytes a sealed blob adds to its plaintext: version, ephemeral key, tag. */
export const SEAL_OVERHEAD = 1 + 32 + 16;

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

function keyAndNonce(digest: DigestPort, shared: Uint8Array, ephemeralPublic: Uint8Array, recipient: Uint8Array, deviceId: string) {
  const okm = hkdfSha256(digest, shared, concatBytes(ephemeralPublic, recipient), labelled(SEAL_LABEL, deviceId), 44);
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32, 44) };
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
  const { key, nonce } = keyAndNonce(digest, shared, ephemeralPublic, recipientPublicKey, deviceId);
  const body = chacha20poly1305(key, nonce).encrypt(plaintext);
  return concatBytes(Uint8Array.of(SEAL_VERSION), ephemeralPublic, body);
}

/**
 * Opens a blob made by sealTo with the device's secret key.
 * @returns the plaintext, or undefined when the blob is malformed, for another
 *   key or device, or was changed in any bit
 */
export function openSealed(digest: DigestPort, secretKey: Uint8Array, deviceId: string, sealed: Uint8Array): Uint8Array | undefined {
  if (secretKey.length !== 32 || sealed.length < SEAL_OVERHEAD || sealed[0] !== SEAL_VERSION) return undefined;
  const ephemeralPublic = sealed.subarray(1, 33);
  try {
    const shared = x25519SharedSecret(secretKey, ephemeralPublic);
    const { key, nonce } = keyAndNonce(digest, shared, ephemeralPublic, x25519PublicKey(secretKey), deviceId);
    return chacha20poly1305(key, nonce).decrypt(sealed.subarray(33));
  } catch {
    return undefined;
  }
}

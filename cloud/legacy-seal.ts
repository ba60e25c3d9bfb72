/*
 * Sealing format 2, for devices in the field whose firmware registered a 32-byte
 * X25519 key (hello without `seal`): ECIES over X25519 (node:crypto) with
 * HMAC-SHA256 as keystream and tag, exactly as docs/protocol.md 14.4.1 gives it.
 * The cloud only seals; current firmware uses format 3 (modules/seal.ts) and
 * no longer carries this code.
 *
 *   shared         = X25519(ephemeral secret, device public)      (all-zero refused)
 *   encKey||macKey = HKDF-SHA256(shared, salt = ephemeral public || device public,
 *                                info = "wcm-v1 network-seal-2" 0x00 deviceId, L = 64)
 *   S(i)           = HMAC(encKey, "wcm-v1 seal-stream" 0x00 u32be(i))
 *   ciphertext     = plaintext XOR S(0) || S(1) || ...
 *   tag            = HMAC(macKey, "wcm-v1 seal-tag" 0x00 deviceId 0x00 ephemeral public 0x00 u32be(len) 0x00 ciphertext)
 *   sealed         = 0x02 || ephemeral public (32) || ciphertext || tag (32)
 */
import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import { concatBytes } from "../modules/bytes";
import { labelled } from "../modules/derive";
import { WcmError } from "../modules/errors";
import { hkdfSha256 } from "../modules/seal";
import { nodeDigest } from "./node-digest";

/** Format byte of a format-2 blob. */
export const LEGACY_SEAL_VERSION = 2;
/** Bytes of an X25519 public key. */
export const LEGACY_KEY_BYTES = 32;

const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

function x25519(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secret]), format: "der", type: "pkcs8" });
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peerPublic]), format: "der", type: "spki" });
  return Uint8Array.from(diffieHellman({ privateKey, publicKey }));
}

/** The X25519 public key of a secret key (node:crypto). */
export function legacyPublicKey(secret: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secret]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return Uint8Array.from(spki.subarray(spki.length - 32));
}

/**
 * Seals `plaintext` in format 2 to a device's X25519 public key.
 * @param ephemeralSecret - 32 fresh random bytes
 * @throws WcmError CREDENTIAL_INVALID for a malformed or low-order public key
 */
export function legacySealTo(recipientPublicKey: Uint8Array, deviceId: string, plaintext: Uint8Array, ephemeralSecret: Uint8Array): Uint8Array {
  if (recipientPublicKey.length !== LEGACY_KEY_BYTES) throw new WcmError("CREDENTIAL_INVALID", "must be 32 bytes", "publicKey");
  if (ephemeralSecret.length !== 32) throw new WcmError("CREDENTIAL_INVALID", "must be 32 bytes", "ephemeralSecret");
  const ephemeralPublic = legacyPublicKey(ephemeralSecret);
  let shared: Uint8Array;
  try {
    shared = x25519(ephemeralSecret, recipientPublicKey);
  } catch {
    throw new WcmError("CREDENTIAL_INVALID", "low-order public key", "publicKey");
  }
  if (shared.every((b) => b === 0)) throw new WcmError("CREDENTIAL_INVALID", "low-order public key", "publicKey");
  const okm = hkdfSha256(nodeDigest, shared, concatBytes(ephemeralPublic, recipientPublicKey), labelled("wcm-v1 network-seal-2", deviceId), 64);
  const encKey = okm.subarray(0, 32);
  const macKey = okm.subarray(32, 64);
  const ciphertext = new Uint8Array(plaintext.length);
  for (let offset = 0, i = 0; offset < plaintext.length; offset += 32, i++) {
    const counter = new Uint8Array(4);
    new DataView(counter.buffer).setUint32(0, i);
    const block = nodeDigest.hmacSha256(encKey, labelled("wcm-v1 seal-stream", counter));
    for (let j = 0; j < 32 && offset + j < plaintext.length; j++) ciphertext[offset + j] = plaintext[offset + j] ^ block[j];
  }
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, ciphertext.length);
  const tag = nodeDigest.hmacSha256(macKey, labelled("wcm-v1 seal-tag", deviceId, ephemeralPublic, length, ciphertext));
  return concatBytes(Uint8Array.of(LEGACY_SEAL_VERSION), ephemeralPublic, ciphertext, tag);
}

/*
 * Seals a message to a device's registered sealing key in the format that
 * device opens: format 3 (P-256 + AES-128-GCM, modules/seal.ts) for a 65-byte
 * key, format 2 (X25519, cloud/legacy-seal.ts) for the 32-byte key of older
 * firmware in the field. Network changes and rotated secrets both come here.
 */
import { randomBytes } from "node:crypto";
import { nodeSeal } from "../hosts/node/node-seal";
import { newSealSecretKey, SEAL_PUBLIC_KEY_BYTES, type SealPurpose } from "../modules/seal";
import { sealTo } from "../modules/seal-to";
import { LEGACY_KEY_BYTES, legacySealTo } from "./legacy-seal";
import { WcmError } from "../modules/errors";
import { nodeDigest } from "./node-digest";

const fresh = (length: number) => new Uint8Array(randomBytes(length));

/** True when the key is format 3's (a device that opens sealed rotations too). */
export function isCurrentSealKey(key: Uint8Array): boolean {
  return key.length === SEAL_PUBLIC_KEY_BYTES;
}

/**
 * Seals `plaintext` to `key` for device `deviceId`.
 * @param purpose - bound into format 3's keys; format 2 exists for network changes only
 * @throws WcmError CREDENTIAL_INVALID for a key of neither format (or a purpose format 2 cannot carry)
 */
export function sealForDevice(key: Uint8Array, deviceId: string, plaintext: Uint8Array, purpose: SealPurpose): Uint8Array {
  if (key.length === SEAL_PUBLIC_KEY_BYTES) return sealTo(nodeDigest, nodeSeal, key, deviceId, plaintext, newSealSecretKey(fresh), purpose);
  if (key.length === LEGACY_KEY_BYTES && purpose === "network") return legacySealTo(key, deviceId, plaintext, fresh(32));
  throw new WcmError("CREDENTIAL_INVALID", "no sealing format for this key", "publicKey");
}

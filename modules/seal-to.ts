/*
 * Sealing to a device's public key (format 3, modules/seal.ts has the format):
 * the cloud's half, and the tests' and the Moddable seal check's. Not in the
 * firmware manifest: the device only opens (each function the firmware ships
 * is release bytecode).
 */
import { concatBytes } from "./bytes";
import { WcmError } from "./errors";
import type { DigestPort, SealPort } from "./ports";
import { isSealPublicKey, isSealSecretKey, sealKeys, SEAL_VERSION, type SealPurpose } from "./seal";

/**
 * Seals `plaintext` to a device's public key.
 * @param ephemeralSecret - a fresh secret key (newSealSecretKey; never reuse one)
 * @throws WcmError CREDENTIAL_INVALID for a public key that is not a P-256 point, or a bad ephemeral key
 * @example sealTo(digest, seal, devicePublic, "lamp-1", change, newSealSecretKey(random), "network")
 */
export function sealTo(
  digest: DigestPort,
  seal: SealPort,
  recipientPublicKey: Uint8Array,
  deviceId: string,
  plaintext: Uint8Array,
  ephemeralSecret: Uint8Array,
  purpose: SealPurpose = "network",
): Uint8Array {
  if (!isSealPublicKey(recipientPublicKey)) throw new WcmError("CREDENTIAL_INVALID", "not a P-256 public key", "publicKey");
  if (!isSealSecretKey(ephemeralSecret)) throw new WcmError("CREDENTIAL_INVALID", "not a P-256 secret key", "ephemeralSecret");
  const ephemeralPublic = seal.p256PublicKey(ephemeralSecret);
  const shared = seal.p256SharedSecret(ephemeralSecret, recipientPublicKey);
  const { key, iv } = sealKeys(digest, shared, ephemeralPublic, recipientPublicKey, deviceId, purpose);
  const header = concatBytes(Uint8Array.of(SEAL_VERSION), ephemeralPublic);
  return concatBytes(header, seal.aesGcmSeal(key, iv, header, plaintext));
}

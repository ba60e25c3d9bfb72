/*
 * Key derivation for every credential wcm puts on a wire.
 *
 * All derivations are HMAC-SHA256 with a domain-separation label, so a key made
 * for one purpose (cloud login, hotspot, secret wrapping) is useless for another
 * and the long-term secret itself never crosses a wire. The input encoding is
 * `label 0x00 field1 0x00 field2 ...`; text fields are UTF-8 and never contain
 * 0x00 (device ids are validated), binary fields have fixed lengths.
 * Test vectors: docs/protocol.md, "Derivations".
 */
import { concatBytes, utf8Encode, toBase64Url } from "./bytes";
import type { DigestPort } from "./ports";

/** Domain-separation labels, one per purpose. Never reuse one for another purpose. */
export const LABELS = {
  temporarySecret: "wcm-v1 temporary-secret",
  cloudLoginKey: "wcm-v1 cloud-login-key",
  loginProof: "wcm-v1 login",
  hotspotPassword: "wcm-v1 hotspot-password",
  wrapKey: "wcm-v1 secret-wrap-key",
  wrapPad: "wcm-v1 secret-wrap-pad",
  wrapTag: "wcm-v1 secret-wrap-tag",
  commitProof: "wcm-v1 commit",
} as const;

/** Encodes `label 0x00 f1 0x00 f2 ...` (strings as UTF-8). */
export function labelled(label: string, ...fields: (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [utf8Encode(label)];
  for (const field of fields) {
    parts.push(Uint8Array.of(0), typeof field === "string" ? utf8Encode(field) : field);
  }
  return concatBytes(...parts);
}

/**
 * The temporary secret of a device: HMAC(provisioningKey, "wcm-v1 temporary-secret" 0 deviceId).
 * Both the device (from its provisioning key) and the cloud compute it; it is
 * used until the cloud issues a permanent secret.
 */
export function deriveTemporarySecret(digest: DigestPort, provisioningKey: Uint8Array, deviceId: string): Uint8Array {
  return digest.hmacSha256(provisioningKey, temporarySecretMessage(deviceId));
}

/**
 * The message of the temporary-secret HMAC: "wcm-v1 temporary-secret" 0 deviceId.
 * One HMAC with the lot key as its key, so hardware that holds the key and
 * computes HMAC-SHA256 (the ESP32 HMAC peripheral) can compute the temporary secret.
 */
export function temporarySecretMessage(deviceId: string): Uint8Array {
  return labelled(LABELS.temporarySecret, deviceId);
}

/** The key that signs cloud logins: HMAC(secret, "wcm-v1 cloud-login-key"). */
export function deriveCloudLoginKey(digest: DigestPort, secret: Uint8Array): Uint8Array {
  return digest.hmacSha256(secret, labelled(LABELS.cloudLoginKey));
}

/** Credential kinds as they appear in a login: s = shared/permanent secret, t = temporary. */
export type LoginKind = "s" | "t";

/**
 * The proof in an MQTT CONNECT password:
 * HMAC(loginKey, "wcm-v1 login" 0 deviceId 0 kind 0 decimal(counter)).
 */
export function deriveLoginProof(
  digest: DigestPort,
  loginKey: Uint8Array,
  deviceId: string,
  kind: LoginKind,
  counter: number,
): Uint8Array {
  return digest.hmacSha256(loginKey, labelled(LABELS.loginProof, deviceId, kind, String(counter)));
}

/**
 * The WPA2-Enterprise (EAP-TTLS/PAP) password a device presents at a partner
 * hotspot: base64url(HMAC(secret, "wcm-v1 hotspot-password" 0 deviceId)).
 */
export function deriveHotspotPassword(digest: DigestPort, secret: Uint8Array, deviceId: string): string {
  return toBase64Url(digest.hmacSha256(secret, labelled(LABELS.hotspotPassword, deviceId)));
}

/** The key that wraps a newly issued secret for the device: HMAC(secret, "wcm-v1 secret-wrap-key"). */
export function deriveWrapKey(digest: DigestPort, secret: Uint8Array): Uint8Array {
  return digest.hmacSha256(secret, labelled(LABELS.wrapKey));
}

/** A wrapped 32-byte secret: ciphertext and tag, both 32 bytes. */
export interface WrappedSecret {
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/**
 * Wraps a 32-byte secret under `wrapKey` for `deviceId` with a 16-byte nonce:
 * pad = HMAC(wrapKey, "wcm-v1 secret-wrap-pad" 0 deviceId 0 nonce),
 * ciphertext = secret XOR pad,
 * tag = HMAC(wrapKey, "wcm-v1 secret-wrap-tag" 0 deviceId 0 nonce 0 ciphertext).
 */
export function wrapSecret(
  digest: DigestPort,
  wrapKey: Uint8Array,
  deviceId: string,
  nonce: Uint8Array,
  secret: Uint8Array,
): WrappedSecret {
  const pad = digest.hmacSha256(wrapKey, labelled(LABELS.wrapPad, deviceId, nonce));
  const ciphertext = new Uint8Array(32);
  for (let i = 0; i < 32; i++) ciphertext[i] = secret[i] ^ pad[i];
  const tag = digest.hmacSha256(wrapKey, labelled(LABELS.wrapTag, deviceId, nonce, ciphertext));
  return { ciphertext, tag };
}

/**
 * Unwraps what wrapSecret made; returns undefined when the tag does not verify
 * (wrong key, wrong device, tampered message).
 */
export function unwrapSecret(
  digest: DigestPort,
  wrapKey: Uint8Array,
  deviceId: string,
  nonce: Uint8Array,
  wrapped: WrappedSecret,
): Uint8Array | undefined {
  if (wrapped.ciphertext.length !== 32 || wrapped.tag.length !== 32) return undefined;
  const expected = digest.hmacSha256(wrapKey, labelled(LABELS.wrapTag, deviceId, nonce, wrapped.ciphertext));
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= expected[i] ^ wrapped.tag[i];
  if (diff !== 0) return undefined;
  const pad = digest.hmacSha256(wrapKey, labelled(LABELS.wrapPad, deviceId, nonce));
  const secret = new Uint8Array(32);
  for (let i = 0; i < 32; i++) secret[i] = wrapped.ciphertext[i] ^ pad[i];
  return secret;
}

/**
 * Proof that the device holds an issued secret of generation `generation`:
 * HMAC(cloudLoginKey(newSecret), "wcm-v1 commit" 0 deviceId 0 decimal(generation)).
 */
export function deriveCommitProof(
  digest: DigestPort,
  newSecret: Uint8Array,
  deviceId: string,
  generation: number,
): Uint8Array {
  return digest.hmacSha256(deriveCloudLoginKey(digest, newSecret), labelled(LABELS.commitProof, deviceId, String(generation)));
}

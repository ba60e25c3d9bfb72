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
import { concatBytes, constantTimeEqual, utf8Encode, toBase64Url } from "./bytes";
import type { DigestPort } from "./ports";

/** Encodes `label 0x00 f1 0x00 f2 ...` (strings as UTF-8). */
export const labelled = (label: string, ...fields: (string | Uint8Array)[]): Uint8Array => fields.reduce(append, utf8Encode(label));

/** `out` 0x00 `field` (a string as UTF-8). */
const append = (out: Uint8Array, field: string | Uint8Array): Uint8Array => concatBytes(out, Uint8Array.of(0), typeof field === "string" ? utf8Encode(field) : field);

/**
 * HMAC(key, "wcm-v1 <purpose>" 0 field1 0 ...): every derivation below. The purposes
 * (domain separation: never reuse one for another purpose) are temporary-secret,
 * cloud-login-key, login, hotspot-password, secret-wrap-key, secret-wrap-pad,
 * secret-wrap-tag and commit.
 */
const mac = (digest: DigestPort, key: Uint8Array, purpose: string, ...fields: (string | Uint8Array)[]): Uint8Array =>
  digest.hmacSha256(key, fields.reduce(append, utf8Encode("wcm-v1 " + purpose)));

/**
 * The temporary secret of a device: HMAC(provisioningKey, "wcm-v1 temporary-secret" 0 deviceId).
 * Both the device (from its provisioning key) and the cloud compute it; it is
 * used until the cloud issues a permanent secret.
 */
export const deriveTemporarySecret = (digest: DigestPort, provisioningKey: Uint8Array, deviceId: string): Uint8Array => {
  return digest.hmacSha256(provisioningKey, temporarySecretMessage(deviceId));
};

/**
 * The message of the temporary-secret HMAC: "wcm-v1 temporary-secret" 0 deviceId.
 * One HMAC with the lot key as its key, so hardware that holds the key and
 * computes HMAC-SHA256 (the ESP32 HMAC peripheral) can compute the temporary secret.
 */
export const temporarySecretMessage = (deviceId: string): Uint8Array => {
  return labelled("wcm-v1 temporary-secret", deviceId);
};

/** The key that signs cloud logins: HMAC(secret, "wcm-v1 cloud-login-key"). */
export const deriveCloudLoginKey = (digest: DigestPort, secret: Uint8Array): Uint8Array => {
  return mac(digest, secret, "cloud-login-key");
};

/** Credential kinds as they appear in a login: s = shared/permanent secret, t = temporary. */
export type LoginKind = "s" | "t";

/**
 * The proof in an MQTT CONNECT password:
 * HMAC(loginKey, "wcm-v1 login" 0 deviceId 0 kind 0 decimal(counter)).
 */
export const deriveLoginProof = (
  digest: DigestPort,
  loginKey: Uint8Array,
  deviceId: string,
  kind: LoginKind,
  counter: number,
): Uint8Array => {
  return mac(digest, loginKey, "login", deviceId, kind, String(counter));
};

/**
 * The WPA2-Enterprise (EAP-TTLS/PAP) password a device presents at a partner
 * hotspot: base64url(HMAC(secret, "wcm-v1 hotspot-password" 0 deviceId)).
 */
export const deriveHotspotPassword = (digest: DigestPort, secret: Uint8Array, deviceId: string): string => {
  return toBase64Url(mac(digest, secret, "hotspot-password", deviceId));
};

/** The key that wraps a newly issued secret for the device: HMAC(secret, "wcm-v1 secret-wrap-key"). */
export const deriveWrapKey = (digest: DigestPort, secret: Uint8Array): Uint8Array => {
  return mac(digest, secret, "secret-wrap-key");
};

/** A wrapped 32-byte secret: ciphertext and tag, both 32 bytes. */
export interface WrappedSecret {
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

/** 32 bytes of `data` XOR HMAC(wrapKey, "wcm-v1 secret-wrap-pad" 0 deviceId 0 nonce). */
const pad = (digest: DigestPort, wrapKey: Uint8Array, deviceId: string, nonce: Uint8Array, data: Uint8Array): Uint8Array => {
  return mac(digest, wrapKey, "secret-wrap-pad", deviceId, nonce).map((byte, i) => byte ^ data[i]);
};

/**
 * Wraps a 32-byte secret under `wrapKey` for `deviceId` with a 16-byte nonce:
 * pad = HMAC(wrapKey, "wcm-v1 secret-wrap-pad" 0 deviceId 0 nonce),
 * ciphertext = secret XOR pad,
 * tag = HMAC(wrapKey, "wcm-v1 secret-wrap-tag" 0 deviceId 0 nonce 0 ciphertext).
 */
export const wrapSecret = (
  digest: DigestPort,
  wrapKey: Uint8Array,
  deviceId: string,
  nonce: Uint8Array,
  secret: Uint8Array,
): WrappedSecret => {
  const ciphertext = pad(digest, wrapKey, deviceId, nonce, secret);
  return { ciphertext, tag: mac(digest, wrapKey, "secret-wrap-tag", deviceId, nonce, ciphertext) };
};

/**
 * Unwraps what wrapSecret made; returns undefined when the tag does not verify
 * (wrong key, wrong device, tampered message).
 */
export const unwrapSecret = (
  digest: DigestPort,
  wrapKey: Uint8Array,
  deviceId: string,
  nonce: Uint8Array,
  wrapped: WrappedSecret,
): Uint8Array | undefined => {
  const ciphertext = wrapped.ciphertext;
  return ciphertext.length === 32 && wrapped.tag.length === 32 && constantTimeEqual(mac(digest, wrapKey, "secret-wrap-tag", deviceId, nonce, ciphertext), wrapped.tag)
    ? pad(digest, wrapKey, deviceId, nonce, ciphertext)
    : undefined;
};

/**
 * Proof that the device holds an issued secret of generation `generation`:
 * HMAC(cloudLoginKey(newSecret), "wcm-v1 commit" 0 deviceId 0 decimal(generation)).
 */
export const deriveCommitProof = (
  digest: DigestPort,
  newSecret: Uint8Array,
  deviceId: string,
  generation: number,
): Uint8Array => {
  return mac(digest, deriveCloudLoginKey(digest, newSecret), "commit", deviceId, String(generation));
};

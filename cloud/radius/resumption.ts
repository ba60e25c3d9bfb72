/*
 * What a resumed EAP-TTLS session is bound to. A TLS 1.2 resumption (by
 * session id or by ticket) keeps the full handshake's master secret, so the
 * server keys the binding (device id, credential, generation, lot: what the
 * inner login proved, never a password) by a hash of it, in the same
 * TlsSessionStore as the sessions and with the same lifetime. Tickets stay
 * stateless for OpenSSL; the binding is what lets the cloud decide a resumed
 * TTLS session whose peer skips the inner login (wpa_supplicant does).
 */
import { createHash } from "node:crypto";
import type { ResumedBinding } from "../auth/resumed";
import { tlv } from "../tls-sessions";

/** Largest encoded binding. */
const MAX_BINDING = 512;

/**
 * The store key of a session's binding: SHA-256("wcm-radius-binding" || master
 * secret) of an SSL_SESSION DER (OpenSSL's SSL_SESSION_ASN1: SEQUENCE {
 * version, sslVersion, cipher, sessionID, masterKey, ... }). 32 bytes, like a session id.
 * @returns undefined when `der` is not one
 */
export function bindingKey(der: Uint8Array): Uint8Array | undefined {
  const outer = tlv(der, 0);
  if (!outer || outer.tag !== 0x30) return undefined;
  let at = outer.start;
  const tags = [0x02, 0x02, 0x04, 0x04];
  for (const tag of tags) {
    const field = tlv(der, at);
    if (!field || field.tag !== tag) return undefined;
    at = field.end;
  }
  const master = tlv(der, at);
  if (!master || master.tag !== 0x04 || master.end - master.start < 16) return undefined;
  return createHash("sha256").update("wcm-radius-binding").update(der.subarray(master.start, master.end)).digest();
}

/** The binding as stored. */
export function encodeBinding(binding: ResumedBinding): Uint8Array {
  return Buffer.from(JSON.stringify({ v: 1, ...binding }), "utf8");
}

/** A stored binding back; undefined when it is not one (bounded, every field checked). */
export function decodeBinding(bytes: Uint8Array): ResumedBinding | undefined {
  if (bytes.length > MAX_BINDING) return undefined;
  try {
    const value = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
    if (value.v !== 1 || typeof value.deviceId !== "string" || value.deviceId.length > 128) return undefined;
    if (value.used !== "secret" && value.used !== "pending" && value.used !== "temporary") return undefined;
    if (!Number.isSafeInteger(value.generation) || (value.lot !== undefined && (typeof value.lot !== "string" || value.lot.length > 128))) return undefined;
    return { deviceId: value.deviceId, used: value.used, generation: value.generation as number, ...(typeof value.lot === "string" ? { lot: value.lot } : {}) };
  } catch {
    return undefined;
  }
}

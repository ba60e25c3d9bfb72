/*
 * Who may join a hotspot: the credential checks of the RADIUS server, sans I/O,
 * mirroring the MQTT login rules of cloud/login.ts.
 *
 * - TTLS/PAP: the inner User-Password is the hotspot password derived
 *   (derive.deriveHotspotPassword) from the device's active secret, its pending
 *   issued secret (accepted without committing: the device may have stored it
 *   while its commit was lost), or its temporary secret while the temporary
 *   credential may still be used (allowlisted, lot not retired, not retired for
 *   the device, device not revoked).
 * - EAP-TLS: the client certificate by cloud/auth/certificate.ts, the same
 *   check as the MQTT login (CA, signature, dates, end-entity and clientAuth,
 *   revoked certificates, CN/SAN = device id, pinned fingerprint).
 * Nothing is written here; the server records failures.
 */
import { X509Certificate } from "node:crypto";
import { constantTimeEqual, utf8Encode } from "../../modules/bytes";
import { deriveHotspotPassword, deriveTemporarySecret } from "../../modules/derive";
import type { DigestPort } from "../../modules/ports";
import { DEVICE_ID_PATTERN } from "../../modules/protocol";
import { caCertificate, checkDeviceCertificate as checkCertificate, type CertificateFailure } from "../auth/certificate";
import { certificateNames, issuedBy } from "../pki";
import type { Registry } from "../registry";

/** Reasons an authentication is refused; sent as the Reply-Message of the Access-Reject. Catalogue: docs/radius.md. */
export type RadiusReason =
  | "UNKNOWN_DEVICE" | "BAD_PASSWORD" | "REVOKED" | "TEMP_RETIRED" | "LOT_RETIRED" | "NOT_ALLOWED"
  | CertificateFailure
  | "RATE_LIMITED" | "TOO_LARGE" | "BAD_EAP" | "TLS_FAILED" | "METHOD_UNSUPPORTED" | "TIMEOUT" | "INTERNAL";

/** Which credential an accepted device used. */
export type HotspotCredential = "secret" | "pending" | "temporary" | "certificate";

/** The outcome of a credential check. */
export type Decision =
  | { ok: true; deviceId: string; credential: HotspotCredential }
  | { ok: false; deviceId: string | undefined; reason: RadiusReason; detail: string };

function refuse(deviceId: string | undefined, reason: RadiusReason, detail: string): Decision {
  return { ok: false, deviceId, reason, detail };
}

function matches(digest: DigestPort, secret: Uint8Array | undefined, id: string, password: Uint8Array): boolean {
  if (!secret) return false;
  return constantTimeEqual(utf8Encode(deriveHotspotPassword(digest, secret, id)), password);
}

/**
 * Checks an EAP-TTLS/PAP inner login.
 * @param userName - the inner User-Name (the device id)
 * @param password - the inner User-Password with its zero padding removed
 * @returns ok with the credential used, or a reason
 * @example checkHotspotPassword(registry, nodeDigest, "lamp-0001", Buffer.from(password))
 */
export function checkHotspotPassword(registry: Registry, digest: DigestPort, userName: string, password: Uint8Array): Decision {
  if (!DEVICE_ID_PATTERN.test(userName)) return refuse(undefined, "UNKNOWN_DEVICE", "inner User-Name is not a device id");
  const id = userName;
  const row = registry.device(id);
  if (!row) {
    const lots = registry.lotsAllowing(id);
    if (lots.length === 0) return refuse(id, "UNKNOWN_DEVICE", "no such device and no provisioning key allows the id");
    for (const lot of lots) {
      if (matches(digest, deriveTemporarySecret(digest, registry.lotKey(lot), id), id, password)) return { ok: true, deviceId: id, credential: "temporary" };
    }
    return refuse(id, "BAD_PASSWORD", "wrong temporary hotspot password");
  }
  if (row.revoked) return refuse(id, "REVOKED", "device revoked");
  if (row.kind === "certificate") return refuse(id, "NOT_ALLOWED", "certificate device: use EAP-TLS");
  if (matches(digest, registry.activeSecret(row), id, password)) return { ok: true, deviceId: id, credential: "secret" };
  if (matches(digest, registry.pendingSecret(row), id, password)) return { ok: true, deviceId: id, credential: "pending" };
  const lot = row.lot === null ? undefined : registry.lot(row.lot);
  if (row.kind === "temporary") {
    if (!lot || lot.retired) return refuse(id, "LOT_RETIRED", "provisioning key retired");
    if (!registry.lotAllows(lot, id)) return refuse(id, "NOT_ALLOWED", "id not allowed for the provisioning key");
    if (matches(digest, deriveTemporarySecret(digest, registry.lotKey(lot), id), id, password)) return { ok: true, deviceId: id, credential: "temporary" };
    return refuse(id, "BAD_PASSWORD", "wrong temporary hotspot password");
  }
  if (row.temp_retired && lot && matches(digest, deriveTemporarySecret(digest, registry.lotKey(lot), id), id, password)) {
    return refuse(id, "TEMP_RETIRED", "temporary credential retired: the device holds a permanent secret");
  }
  return refuse(id, "BAD_PASSWORD", "wrong hotspot password");
}

/**
 * Checks an EAP-TLS client certificate. The device id is the EAP identity when
 * it names a registered device, else the certificate's CN.
 * @param identity - the EAP Identity the peer sent
 * @param leaf - the client certificate (undefined when none was sent)
 */
export function checkDeviceCertificate(registry: Registry, identity: string, leaf: X509Certificate | undefined): Decision {
  if (!leaf) return refuse(undefined, "CERT_REQUIRED", "no client certificate");
  let id = DEVICE_ID_PATTERN.test(identity) && registry.device(identity) ? identity : certificateNames(leaf).commonName ?? "";
  if (!DEVICE_ID_PATTERN.test(id)) id = "";
  const row = id === "" ? undefined : registry.device(id);
  if (!row) {
    const known = registry.cas().some((ca) => !ca.revoked && issuedBy(leaf, caCertificate(ca.cert_pem)));
    return known
      ? refuse(id || undefined, "UNKNOWN_DEVICE", "certificate device not registered")
      : refuse(id || undefined, "UNKNOWN_CA", "certificate not issued by a registered CA");
  }
  if (row.revoked) return refuse(id, "REVOKED", "device revoked");
  if (row.kind !== "certificate") return refuse(id, "NOT_ALLOWED", "not a certificate device: use EAP-TTLS");
  const decision = checkCertificate(registry, row, leaf);
  if (!decision.ok) return refuse(id, decision.failure, decision.detail);
  return { ok: true, deviceId: id, credential: "certificate" };
}

/*
 * The one check of a device certificate, asked by every front end (the MQTT
 * login in cloud/login.ts and EAP-TLS in cloud/radius/decide.ts), so a
 * certificate is good or bad for the same reason everywhere.
 *
 * A registered certificate device's client certificate is accepted when, in
 * this order: its product CA is registered and not revoked, the CA signed it,
 * it and the CA are within their validity periods, it is an end-entity
 * certificate (basicConstraints absent or cA false) whose extended key usage,
 * when present, includes clientAuth, it is not revoked (by the CA's serial or
 * by its SHA-256 fingerprint: `cert revoke`, `ca import-crl`), its CN or a
 * SAN is the device id, and it is the pinned certificate when one is pinned.
 * Reads the registry (asynchronously); nothing is written here.
 */
import { X509Certificate } from "node:crypto";
import { fingerprint, issuedBy, normalizeSerial, withinValidity, certificateNamesId } from "../pki";
import type { DeviceRow, Registry } from "../registry";

/** Why a device certificate is refused (the same code on MQTT and RADIUS). */
export type CertificateFailure =
  | "CERT_REQUIRED" | "UNKNOWN_CA" | "CA_REVOKED" | "CERT_EXPIRED" | "CERT_USAGE" | "CERT_REVOKED" | "CERT_MISMATCH";

/** The outcome of checkDeviceCertificate. */
export type CertificateDecision =
  | { ok: true; fingerprint: string; serial: string }
  | { ok: false; failure: CertificateFailure; detail: string };

/** OID of the clientAuth extended key usage (RFC 5280 4.2.1.12). */
export const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
/** OID of anyExtendedKeyUsage. */
const EKU_ANY = "2.5.29.37.0";

/** Parsed product CA certificates by PEM (parsing one per login costs more than the check). */
const parsedCas = new Map<string, X509Certificate>();

/** The parsed CA certificate of `pem`, from a bounded cache. */
export function caCertificate(pem: string): X509Certificate {
  let cert = parsedCas.get(pem);
  if (!cert) {
    if (parsedCas.size >= 1024) parsedCas.clear();
    cert = new X509Certificate(pem);
    parsedCas.set(pem, cert);
  }
  return cert;
}

/**
 * The end-entity rule of a device certificate: undefined when `cert` may
 * identify a device, else why not. A CA certificate (basicConstraints
 * cA:TRUE) never does, whatever its names; an extended key usage, when
 * present, must allow clientAuth (anyExtendedKeyUsage does).
 * @example deviceCertificateUsage(new X509Certificate(pem)) // undefined, or "a CA certificate (basicConstraints cA:TRUE)"
 */
export function deviceCertificateUsage(cert: X509Certificate): string | undefined {
  if (cert.ca) return "a CA certificate (basicConstraints cA:TRUE) is not a device certificate";
  // node names the extended key usage OIDs `keyUsage` (undefined when the extension is absent)
  const eku: string[] | undefined = cert.keyUsage;
  if (eku && !eku.includes(EKU_CLIENT_AUTH) && !eku.includes(EKU_ANY)) return "extended key usage without clientAuth";
  return undefined;
}

function refuse(failure: CertificateFailure, detail: string): CertificateDecision {
  return { ok: false, failure, detail };
}

/**
 * Decides whether `leaf` identifies the registered certificate device `device`.
 * @param registry - product CAs and revoked certificates are read here
 * @param device - the device row (id, CA, pinned fingerprint)
 * @param leaf - the client certificate of the TLS handshake (undefined: none was sent)
 * @returns ok with the certificate's fingerprint and serial, or the failure code and a detail
 * @example await checkDeviceCertificate(registry, (await registry.device("lamp-1"))!, socket.getPeerX509Certificate())
 */
export async function checkDeviceCertificate(
  registry: Registry, device: Pick<DeviceRow, "id" | "ca_name" | "cert_fingerprint">, leaf: X509Certificate | undefined,
): Promise<CertificateDecision> {
  if (!leaf) return refuse("CERT_REQUIRED", "certificate device sent no client certificate");
  const ca = device.ca_name === null ? undefined : (await registry.ca(device.ca_name));
  if (!ca) return refuse("UNKNOWN_CA", "the device's CA is not registered");
  if (ca.revoked) return refuse("CA_REVOKED", `CA ${ca.name} is revoked`);
  const caCert = caCertificate(ca.cert_pem);
  if (!issuedBy(leaf, caCert)) return refuse("UNKNOWN_CA", "certificate not issued by the device's CA");
  const now = registry.now();
  if (!withinValidity(leaf, now) || !withinValidity(caCert, now)) return refuse("CERT_EXPIRED", "certificate outside its validity period");
  const usage = deviceCertificateUsage(leaf);
  if (usage) return refuse("CERT_USAGE", usage);
  const fp = fingerprint(leaf);
  const serial = normalizeSerial(leaf.serialNumber);
  const revoked = await registry.certificateRevocation(ca.name, serial, fp);
  if (revoked) return refuse("CERT_REVOKED", `certificate revoked (${revoked.source}${revoked.serial ? ` serial ${revoked.serial}` : " sha256"})`);
  if (!certificateNamesId(leaf, device.id)) return refuse("CERT_MISMATCH", "certificate CN/SAN is not the device id");
  if (device.cert_fingerprint !== null && fp !== device.cert_fingerprint) return refuse("CERT_MISMATCH", "not the registered certificate");
  return { ok: true, fingerprint: fp, serial };
}

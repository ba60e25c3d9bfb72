/*
 * X.509 for the cloud: the server CA and TLS certificate, product CAs, device
 * certificates, and checks on certificates that devices present.
 *
 * Generation uses @peculiar/x509 over node's WebCrypto: RSA-2048 with
 * SHA-256 PKCS#1 v1.5 signatures everywhere (what Moddable's TLS verifies), EC
 * P-256 device keys on request. Checks use node:crypto's X509Certificate.
 * Private keys leave this module as PKCS#8 DER for the caller to seal.
 */
import { X509Certificate as NodeX509, createHash, webcrypto } from "node:crypto";
import "./reflect-metadata";
import * as x509 from "@peculiar/x509";
import { CloudError } from "./errors";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
// @peculiar/x509 is typed against the DOM's Crypto; node's webcrypto implements it.
x509.cryptoProvider.set(crypto as never);

const RSA_ALG = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
const EC_ALG = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
const DAY_MS = 86_400_000;
/** Largest certificate PEM the cloud accepts from any input. */
export const MAX_CERT_PEM = 16_384;

/** A certificate and its private key (PKCS#8 DER). */
export interface CertificateAndKey {
  certPem: string;
  keyDer: Uint8Array;
}

/** PEM of PKCS#8 DER. */
export function privateKeyPem(keyDer: Uint8Array): string {
  const b64 = Buffer.from(keyDer).toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f; // positive INTEGER
  bytes[0] |= 0x01; // no leading zero byte
  return Buffer.from(bytes).toString("hex");
}

async function rsaKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(RSA_ALG, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

async function exportKey(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
}

async function importSigningKey(keyDer: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("pkcs8", keyDer, SIGNING, false, ["sign"]);
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  // an hour of slack for device clocks that run a little behind
  return { notBefore: new Date(now - 3_600_000), notAfter: new Date(now + days * DAY_MS) };
}

/**
 * Creates a self-signed RSA-2048 CA certificate.
 * @param commonName - subject CN (already validated by the caller)
 * @param days - validity in days
 */
export async function createCa(commonName: string, days = 3650): Promise<CertificateAndKey> {
  const keys = await rsaKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: [commonName] }],
    ...validity(days),
    signingAlgorithm: SIGNING,
    keys: keys as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
      // Moddable's TLS (ssl_cert.js, SDK 8.2.3) reads the AKI of the last
      // certificate of a chain and throws without one: a root carries its own.
      await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  return { certPem: cert.toString("pem"), keyDer: await exportKey(keys.privateKey) };
}

/** What certificate to issue under a CA. */
export interface IssueOptions {
  caCertPem: string;
  caKeyDer: Uint8Array;
  commonName: string;
  /** "server": serverAuth with SANs; "client": clientAuth, SAN dns = CN */
  usage: "server" | "client";
  /** DNS names and IP addresses for the SAN */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** "rsa" (RSA-2048, the default) or "ec" (P-256) */
  keyType?: "rsa" | "ec";
  days?: number;
  /** the public key of a certificate request: certify it instead of making a key pair (keyDer is then empty) */
  publicKey?: x509.PublicKey;
}

/** Issues a certificate and a fresh key pair (or for `publicKey`) under a CA whose key we hold. */
export async function issueCertificate(options: IssueOptions): Promise<CertificateAndKey> {
  const keys = (options.publicKey ? { publicKey: options.publicKey, privateKey: undefined } : options.keyType === "ec"
    ? await crypto.subtle.generateKey(EC_ALG, true, ["sign", "verify"])
    : await rsaKeys()) as unknown as { publicKey: CryptoKey; privateKey: CryptoKey | undefined };
  const ca = new x509.X509Certificate(options.caCertPem);
  const names: x509.JsonGeneralName[] = [
    ...(options.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  // keyEncipherment only for RSA keys (plain-RSA key transport); EC keys only sign
  const usage = x509.KeyUsageFlags.digitalSignature | (options.keyType === "ec" ? 0 : x509.KeyUsageFlags.keyEncipherment);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: [{ CN: [options.commonName] }],
    issuer: ca.subject,
    ...validity(options.days ?? 825),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey as never,
    signingKey: (await importSigningKey(options.caKeyDer)) as never,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usage, true),
      new x509.ExtendedKeyUsageExtension([options.usage === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyDer: keys.privateKey ? await exportKey(keys.privateKey) : new Uint8Array(0) };
}

/**
 * Parses and verifies a PKCS#10 certificate request (PEM, self-signed by its key).
 * @returns its public key, key type and subject CN
 * @throws CloudError CERT_INVALID
 */
export async function parseCertificateRequest(pem: unknown): Promise<{ publicKey: x509.PublicKey; keyType: "rsa" | "ec"; commonName: string | undefined }> {
  if (typeof pem !== "string" || pem.length > MAX_CERT_PEM || !pem.includes("-----BEGIN CERTIFICATE REQUEST-----")) {
    throw new CloudError("CERT_INVALID", `must be one PEM certificate request of at most ${MAX_CERT_PEM} characters`, { field: "csrPem" });
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw new CloudError("CERT_INVALID", "not a parsable PKCS#10 request", { field: "csrPem" });
  }
  if (!(await csr.verify().catch(() => false))) throw new CloudError("CERT_INVALID", "the request's signature does not verify", { field: "csrPem" });
  const algorithm = csr.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  let keyType: "rsa" | "ec";
  if (algorithm.name === "ECDSA" && algorithm.namedCurve === "P-256") keyType = "ec";
  else if (algorithm.name.startsWith("RSA") && (algorithm.modulusLength ?? 0) >= 2048) keyType = "rsa";
  else throw new CloudError("CERT_INVALID", "the key must be RSA (2048 bits or more) or EC P-256", { field: "csrPem" });
  const commonName = csr.subjectName.getField("CN")[0];
  return { publicKey: csr.publicKey, keyType, commonName };
}

/** The cloud's own TLS identity: a server CA and a server certificate for localhost / 127.0.0.1. */
export interface ServerIdentity {
  caCertPem: string;
  caKeyDer: Uint8Array;
  certPem: string;
  keyDer: Uint8Array;
}

/**
 * Creates the server CA and an RSA-2048 server certificate (SAN localhost,
 * 127.0.0.1, ::1); `certPem` is the chain to serve (leaf, then CA).
 */
export async function createServerIdentity(): Promise<ServerIdentity> {
  const ca = await createCa("wcm cloud server CA");
  const server = await issueCertificate({
    caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: "localhost", usage: "server",
    dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"], days: 825,
  });
  // Served as leaf + CA: Moddable's TLS checks the server name only while it
  // walks a chain of two or more certificates.
  return { caCertPem: ca.certPem, caKeyDer: ca.keyDer, certPem: `${server.certPem.trim()}\n${ca.certPem.trim()}\n`, keyDer: server.keyDer };
}

/**
 * Parses one PEM certificate (at most MAX_CERT_PEM characters).
 * @throws CloudError CERT_INVALID
 */
export function parseCertificate(pem: unknown, field = "certificate"): NodeX509 {
  if (typeof pem !== "string" || pem.length > MAX_CERT_PEM || !pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new CloudError("CERT_INVALID", `must be one PEM certificate of at most ${MAX_CERT_PEM} characters`, { field });
  }
  try {
    return new NodeX509(pem);
  } catch {
    throw new CloudError("CERT_INVALID", "not a parsable X.509 certificate", { field });
  }
}

/** SHA-256 fingerprint of a certificate's DER, lower-case hex. */
export function fingerprint(cert: NodeX509): string {
  return createHash("sha256").update(cert.raw).digest("hex");
}

/** The subject CN and the DNS/URI subject alternative names of a certificate. */
export function certificateNames(cert: NodeX509): { commonName: string | undefined; altNames: string[] } {
  let commonName: string | undefined;
  for (const line of cert.subject.split("\n")) {
    if (line.startsWith("CN=")) commonName = line.slice(3);
  }
  const altNames: string[] = [];
  for (const entry of (cert.subjectAltName ?? "").split(", ")) {
    const match = /^(DNS|URI):(.*)$/.exec(entry);
    if (match) altNames.push(match[2]);
  }
  return { commonName, altNames };
}

/** True when the certificate names `id` as its CN or one of its SANs. */
export function certificateNamesId(cert: NodeX509, id: string): boolean {
  const { commonName, altNames } = certificateNames(cert);
  return commonName === id || altNames.includes(id);
}

/** True when `cert` was issued and signed by `ca`, and `ca` is a CA certificate. */
export function issuedBy(cert: NodeX509, ca: NodeX509): boolean {
  try {
    return ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** True when `now` lies within the certificate's validity period. */
export function withinValidity(cert: NodeX509, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

/** True when the certificate is a CA (basic constraints CA:TRUE). */
export function isCa(cert: NodeX509): boolean {
  return cert.ca;
}

/** A certificate serial number as the revocation list keys it: lower-case hex without leading zeros or colons. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/:/g, "").toLowerCase().replace(/^0+/, "");
  return hex === "" ? "0" : hex;
}

/** Largest CRL (DER bytes) the cloud imports. */
export const MAX_CRL_BYTES = 8 * 1024 * 1024;
/** Most entries of one imported CRL. */
export const MAX_CRL_ENTRIES = 200_000;

/** What an imported CRL says, once verified. */
export interface VerifiedCrl {
  /** normalized serials of the revoked certificates */
  serials: string[];
  /** the CRL number extension, as decimal, if present */
  crlNumber: string | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

/**
 * Parses a CRL (PEM `X509 CRL` or DER) and verifies it was issued and signed by `caPem`.
 * @param crl - PEM text (`X509 CRL`, as OpenSSL writes it, or `CRL`) or DER bytes (at most MAX_CRL_BYTES)
 * @param caPem - the product CA certificate
 * @param now - ms clock: a CRL whose thisUpdate lies more than an hour ahead is refused
 * @throws CloudError CERT_INVALID (field `crl`) when it does not parse, names another issuer, does not verify, or is too large
 */
export async function verifyCrl(crl: string | Uint8Array, caPem: string, now: number): Promise<VerifiedCrl> {
  const invalid = (message: string): never => {
    throw new CloudError("CERT_INVALID", message, { field: "crl" });
  };
  let der: Uint8Array;
  if (typeof crl === "string") {
    const match = /^\s*-----BEGIN (X509 )?CRL-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1CRL-----\s*$/.exec(crl);
    if (!match) invalid("must be one PEM X509 CRL or DER");
    der = Buffer.from(match![2].replace(/\s+/g, ""), "base64");
  } else der = crl;
  if (der.length === 0 || der.length > MAX_CRL_BYTES) invalid(`must be 1 to ${MAX_CRL_BYTES} bytes of DER`);
  let parsed: x509.X509Crl;
  try {
    parsed = new x509.X509Crl(der);
  } catch {
    return invalid("not a parsable X.509 CRL");
  }
  const ca = new x509.X509Certificate(caPem);
  if (parsed.issuerName.toString() !== ca.subjectName.toString()) invalid("the CRL's issuer is not the CA");
  if (!(await parsed.verify({ publicKey: ca.publicKey }).catch(() => false))) invalid("the CRL's signature does not verify against the CA's key");
  if (parsed.thisUpdate.getTime() > now + 3_600_000) invalid("the CRL's thisUpdate lies in the future");
  if (parsed.entries.length > MAX_CRL_ENTRIES) invalid(`more than ${MAX_CRL_ENTRIES} entries`);
  const number = parsed.getExtension("2.5.29.20");
  let crlNumber: string | undefined;
  if (number) {
    // CRLNumber ::= INTEGER, the extension value is its DER
    const value = new Uint8Array(number.value);
    if (value[0] === 0x02 && value[1] === value.length - 2 && value.length <= 23) crlNumber = BigInt(`0x${Buffer.from(value.subarray(2)).toString("hex") || "0"}`).toString();
  }
  return { serials: parsed.entries.map((entry) => normalizeSerial(entry.serialNumber)), crlNumber, thisUpdate: parsed.thisUpdate, nextUpdate: parsed.nextUpdate };
}

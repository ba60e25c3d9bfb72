/*
 * The MQTT endpoint's TLS identity: which certificate devices verify.
 *
 * Either the cloud's own server CA (made on first start, kept sealed in the
 * registry) issues the server certificate for the names the operator
 * configures (`mqtt.names`: DNS names and IP addresses; default localhost,
 * 127.0.0.1, ::1), re-issued at start when the names differ or fewer than
 * RENEW_BEFORE_DAYS remain, and on `server-cert renew`; or the operator gives
 * a PEM chain and key (`mqtt.tlsCertFile`, `mqtt.tlsKeyFile`), read at start
 * and again on SIGHUP (Cloud.reloadTls: new handshakes use the new files,
 * sessions already open are not touched). Devices pin the CA that signed the
 * chain: `<data>/server-ca.pem` for the cloud's own CA (docs/deploy.md).
 *
 * Offline CA: `server-ca export` writes the CA's key to an owner-only file and
 * `server-ca remove-key` then drops it from the registry (only when the file
 * given holds that key). The cloud keeps serving the certificates it already
 * issued; issuing a new one (names changed, `server-cert renew`, an expiring
 * leaf) then needs the offline key (`--ca-key`), and an expiring leaf without
 * it is served on with a warning rather than stopping the cloud.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { CloudError } from "./errors";
import { readInputFile } from "./cli-kit";
import { assertOwnerOnly, createOwnerOnlyFile } from "./owner-files";
import { createServerIdentity, issueCertificate, privateKeyPem } from "./pki";
import type { Registry } from "./registry";

/** The names of a server certificate made without configuration. */
export const DEFAULT_SERVER_NAMES = ["localhost", "127.0.0.1", "::1"];

/** The cloud re-issues its own server certificate when fewer days than this remain. */
export const RENEW_BEFORE_DAYS = 30;

/** What the MQTT listener serves. */
export interface ServerTls {
  /** the trust anchor devices pin (PEM; the operator's chain's last certificate when given files) */
  caPem: string;
  /** the chain to serve (leaf first) and its key, PEM */
  certPem: string;
  keyPem: string;
  /** the names in the leaf (DNS and IP SANs) */
  names: string[];
  /** "issued" by the cloud's CA, or "files" (the operator's) */
  source: "issued" | "files";
}

/** Checks and normalizes configured names: DNS names (RFC 1123, `*.` allowed in front) and IP addresses. */
export function checkServerNames(names: string[]): string[] {
  if (names.length === 0 || names.length > 100) throw new CloudError("INVALID_INPUT", "give 1 to 100 server names", { field: "mqtt.names" });
  return names.map((name) => {
    const n = name.trim().toLowerCase();
    if (isIP(n)) return n;
    if (!/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(n) || n.length > 253) {
      throw new CloudError("INVALID_INPUT", `${name.slice(0, 80)} is neither a DNS name nor an IP address`, { field: "mqtt.names" });
    }
    return n;
  });
}

/** The DNS and IP names of a certificate, IPs as node prints them normalized (`::1`). */
export function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? "").split(",").map((e) => e.trim()).flatMap((entry) => {
    if (entry.startsWith("DNS:")) return [entry.slice(4).toLowerCase()];
    if (entry.startsWith("IP Address:")) return [normalizeIp(entry.slice(11))];
    return [];
  });
}

function normalizeIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  // node prints ::1 as 0:0:0:0:0:0:0:1
  return ip.split(":").map((part) => part.replace(/^0+(?=.)/, "")).join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::");
}

/** Whether two name lists hold the same names (any order; IPv6 normalized). */
export const sameNames = (a: string[], b: string[]): boolean => a.length === b.length && [...a].map(normalizeIp).sort().join(",") === [...b].map(normalizeIp).sort().join(",");

/**
 * The server identity from the cloud's CA, made or re-issued as needed.
 * @param force - re-issue now (`server-cert renew`)
 * @param offlineKey - the CA's key (PKCS#8 DER) when the registry no longer holds it (`--ca-key`)
 * @returns `renewalBlocked` when the leaf is expiring but the CA's key is offline (served on; renew with the key)
 * @throws CloudError CA_HAS_NO_KEY when a new certificate is needed (names changed, or forced) and no key is at hand
 */
export async function issuedServerTls(
  registry: Registry, names: string[] = DEFAULT_SERVER_NAMES, force = false, now = Date.now(), offlineKey?: Uint8Array,
): Promise<ServerTls & { reissued: boolean; renewalBlocked: boolean }> {
  const wanted = checkServerNames(names);
  let ca = await registry.serverTls("ca");
  let server = await registry.serverTls("server");
  let reissued = false;
  if (!ca || !server) {
    const identity = await createServerIdentity();
    // nodes starting together on one PostgreSQL: the first identity stored wins, the others read it
    await registry.tx(async () => {
      await registry.storeServerTls("ca", identity.caCertPem, identity.caKeyDer);
      await registry.storeServerTls("server", identity.certPem, identity.keyDer);
      await registry.audit("cloud", "server-tls.create");
    });
    ca = (await registry.serverTls("ca"))!;
    server = (await registry.serverTls("server"))!;
  }
  const leaf = new X509Certificate(server.certPem);
  const expiring = Date.parse(leaf.validTo) - now < RENEW_BEFORE_DAYS * 86_400_000;
  const namesChanged = !sameNames(sanNames(leaf), wanted);
  const caKeyDer = offlineKey ?? ca.keyDer;
  if ((force || namesChanged) && caKeyDer.length === 0) {
    throw new CloudError("CA_HAS_NO_KEY", `the server CA's key is offline: ${namesChanged ? `mqtt.names changed to ${wanted.join(",")}, ` : ""}issue with it: server-cert renew --ca-key <file>`);
  }
  if (expiring && !force && !namesChanged && caKeyDer.length === 0) {
    const keyPem = privateKeyPem(server.keyDer);
    return { caPem: ca.certPem, certPem: server.certPem, keyPem, names: sanNames(leaf), source: "issued", reissued: false, renewalBlocked: true };
  }
  if (force || expiring || namesChanged) {
    const dnsNames = wanted.filter((n) => !isIP(n));
    const ipAddresses = wanted.filter((n) => isIP(n));
    const issued = await issueCertificate({
      caCertPem: ca.certPem, caKeyDer, commonName: dnsNames[0] ?? ipAddresses[0], usage: "server", dnsNames, ipAddresses, days: 825,
    });
    // served as leaf + CA: Moddable's TLS checks the server name only while it walks a chain of two or more
    const chain = `${issued.certPem.trim()}\n${ca.certPem.trim()}\n`;
    await registry.tx(async () => {
      await registry.replaceServerTls("server", chain, issued.keyDer);
      await registry.audit("cloud", "server-tls.reissue", undefined, `names ${wanted.join(",")}${force ? " (renew)" : expiring ? " (expiring)" : ""}`);
    });
    server = (await registry.serverTls("server"))!;
    reissued = true;
  }
  return { caPem: ca.certPem, certPem: server.certPem, keyPem: privateKeyPem(server.keyDer), names: sanNames(new X509Certificate(server.certPem)), source: "issued", reissued, renewalBlocked: false };
}

/** Whether the registry holds the server CA's key (false once `server-ca remove-key` ran). */
export async function serverCaKeyOnline(registry: Registry): Promise<boolean> {
  const ca = await registry.serverTls("ca");
  return ca !== undefined && ca.keyDer.length > 0;
}

/**
 * Writes the server CA's certificate and key (PKCS#8 PEM) to a new owner-only
 * file (`server-ca export`); the registry keeps its copy until remove-key.
 * @throws CloudError NOT_FOUND (no CA yet), CA_HAS_NO_KEY (already offline), FILE_EXISTS-style INVALID_INPUT when `file` exists
 */
export async function exportServerCa(registry: Registry, file: string): Promise<{ file: string; subject: string; fingerprint256: string }> {
  const ca = await registry.serverTls("ca");
  if (!ca) throw new CloudError("NOT_FOUND", "no server CA yet: serve makes one on first start");
  if (ca.keyDer.length === 0) throw new CloudError("CA_HAS_NO_KEY", "the server CA's key is already offline");
  try {
    createOwnerOnlyFile(file, `${ca.certPem.trim()}\n${privateKeyPem(ca.keyDer).trim()}\n`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CloudError("INVALID_INPUT", code === "EEXIST" ? `${file} exists: export writes a new file only` : `${file} cannot be written (${code ?? "error"})`, { field: "out" });
  }
  await registry.audit("cloud", "server-tls.ca-export");
  const cert = new X509Certificate(ca.certPem);
  return { file, subject: cert.subject, fingerprint256: cert.fingerprint256 };
}

/**
 * The server CA's key from an offline file (`--ca-key`, `--exported`): owner-only,
 * and it must be the key of the CA the registry holds.
 * @throws CloudError FILE_UNREADABLE, FILE_INSECURE, CERT_INVALID (no key, or another CA's)
 */
export async function offlineServerCaKey(registry: Registry, file: string): Promise<Uint8Array> {
  const ca = await registry.serverTls("ca");
  if (!ca) throw new CloudError("NOT_FOUND", "no server CA yet: serve makes one on first start");
  assertOwnerOnly(file, "the CA key file");
  const pem = readInputFile(file, 64 * 1024, "the CA key file").toString("utf8");
  const block = pem.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/)?.[0];
  let key: KeyObject | undefined;
  try {
    key = block === undefined ? undefined : createPrivateKey(block);
  } catch {
    key = undefined;
  }
  if (!key || !new X509Certificate(ca.certPem).checkPrivateKey(key)) {
    throw new CloudError("CERT_INVALID", `${file} does not hold the server CA's private key (PKCS#8 PEM, as server-ca export writes it)`, { field: "caKey" });
  }
  return new Uint8Array(key.export({ type: "pkcs8", format: "der" }));
}

/**
 * Drops the server CA's key from the registry (`server-ca remove-key`), once
 * `exportedFile` (owner-only, checked by offlineServerCaKey) proves the operator
 * holds it. Every certificate the cloud serves from that CA must exist first
 * (`issueMissing` makes them while the key is at hand).
 */
export async function removeServerCaKey(registry: Registry, exportedFile: string, issueMissing: () => Promise<void>): Promise<void> {
  if (!(await serverCaKeyOnline(registry))) throw new CloudError("CA_HAS_NO_KEY", "the server CA's key is already offline");
  (await offlineServerCaKey(registry, exportedFile)).fill(0);
  await issueMissing();
  const ca = (await registry.serverTls("ca"))!;
  await registry.tx(async () => {
    await registry.replaceServerTls("ca", ca.certPem, new Uint8Array(0));
    await registry.audit("cloud", "server-tls.ca-key-remove");
  });
}

/**
 * The operator's chain and key (PEM files; the key file owner-only), for the MQTT or the RADIUS listener.
 * @throws CloudError FILE_UNREADABLE, FILE_INSECURE, CERT_INVALID (not a chain, key does not match, expired)
 */
export function fileServerTls(certFile: string, keyFile: string, now = Date.now(), section: "mqtt" | "radius" = "mqtt"): ServerTls {
  const certPem = readInputFile(certFile, 256 * 1024, "the server certificate file").toString("utf8");
  assertOwnerOnly(keyFile, "the server key file");
  const keyPem = readInputFile(keyFile, 64 * 1024, "the server key file").toString("utf8");
  const blocks = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CloudError("CERT_INVALID", `${certFile} holds no PEM certificate`, { field: `${section}.tlsCertFile` });
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]!);
  } catch {
    throw new CloudError("CERT_INVALID", `${certFile}: the first certificate does not parse`, { field: `${section}.tlsCertFile` });
  }
  let matches = false;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    matches = false;
  }
  if (!matches) throw new CloudError("CERT_INVALID", `${keyFile} is not the key of ${certFile}'s first certificate`, { field: `${section}.tlsKeyFile` });
  if (Date.parse(leaf.validTo) < now) throw new CloudError("CERT_INVALID", `${certFile} expired on ${new Date(leaf.validTo).toISOString()}`, { field: `${section}.tlsCertFile` });
  return { caPem: `${blocks[blocks.length - 1]!}\n`, certPem, keyPem, names: sanNames(leaf), source: "files" };
}

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
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { CloudError } from "./errors";
import { readInputFile } from "./cli-kit";
import { assertOwnerOnly } from "./owner-files";
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

const sameNames = (a: string[], b: string[]) => a.length === b.length && [...a].map(normalizeIp).sort().join(",") === [...b].map(normalizeIp).sort().join(",");

/**
 * The server identity from the cloud's CA, made or re-issued as needed.
 * @param force - re-issue now (`server-cert renew`)
 */
export async function issuedServerTls(registry: Registry, names: string[] = DEFAULT_SERVER_NAMES, force = false, now = Date.now()): Promise<ServerTls & { reissued: boolean }> {
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
  if (force || expiring || !sameNames(sanNames(leaf), wanted)) {
    if (ca.keyDer.length === 0) throw new CloudError("CA_HAS_NO_KEY", "the server CA's key was removed (offline CA): renew with the offline key");
    const dnsNames = wanted.filter((n) => !isIP(n));
    const ipAddresses = wanted.filter((n) => isIP(n));
    const issued = await issueCertificate({
      caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: dnsNames[0] ?? ipAddresses[0], usage: "server", dnsNames, ipAddresses, days: 825,
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
  return { caPem: ca.certPem, certPem: server.certPem, keyPem: privateKeyPem(server.keyDer), names: sanNames(new X509Certificate(server.certPem)), source: "issued", reissued };
}

/**
 * The operator's chain and key (PEM files; the key file owner-only).
 * @throws CloudError FILE_UNREADABLE, FILE_INSECURE, CERT_INVALID (not a chain, key does not match, expired)
 */
export function fileServerTls(certFile: string, keyFile: string, now = Date.now()): ServerTls {
  const certPem = readInputFile(certFile, 256 * 1024, "the server certificate file").toString("utf8");
  assertOwnerOnly(keyFile, "the server key file");
  const keyPem = readInputFile(keyFile, 64 * 1024, "the server key file").toString("utf8");
  const blocks = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CloudError("CERT_INVALID", `${certFile} holds no PEM certificate`, { field: "mqtt.tlsCertFile" });
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]!);
  } catch {
    throw new CloudError("CERT_INVALID", `${certFile}: the first certificate does not parse`, { field: "mqtt.tlsCertFile" });
  }
  let matches = false;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    matches = false;
  }
  if (!matches) throw new CloudError("CERT_INVALID", `${keyFile} is not the key of ${certFile}'s first certificate`, { field: "mqtt.tlsKeyFile" });
  if (Date.parse(leaf.validTo) < now) throw new CloudError("CERT_INVALID", `${certFile} expired on ${new Date(leaf.validTo).toISOString()}`, { field: "mqtt.tlsCertFile" });
  return { caPem: `${blocks[blocks.length - 1]!}\n`, certPem, keyPem, names: sanNames(leaf), source: "files" };
}

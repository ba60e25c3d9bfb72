/*
 * Where the admin API listens and whether it needs TLS.
 *
 * adminTlsPlan() decides before anything opens: on a loopback bind the API
 * answers to localhost / 127.0.0.1 / [::1] (and `adminName` if given) and
 * may run plain HTTP; on any other bind it needs `adminName` (the one name
 * it answers to) and TLS, else start-up stops (INVALID_INPUT field adminName,
 * ADMIN_TLS_REQUIRED). adminTlsMaterial() then gives the certificate: issued
 * for the name from the cloud's server CA at each start (key only in memory),
 * or the operator's PEM chain and key (key file owner-only; the chain must
 * name adminName and match the key).
 */
import { readFileSync, existsSync } from "node:fs";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { isIP } from "node:net";
import { CloudError } from "./errors";
import { hostHeaderName, isLoopbackHost, LOOPBACK_NAMES } from "./admin-guard";
import { assertOwnerOnly } from "./owner-files";
import { issueCertificate, privateKeyPem } from "./pki";
import type { Registry } from "./registry";
import { RENEW_BEFORE_DAYS, sameNames, sanNames } from "./server-identity";

/** Name of the issued admin certificate in the registry's server_tls table. */
const ADMIN_STORE_NAME = "admin";

/** "issue" (from the server CA), the operator's PEM files, or false (plain HTTP, loopback only). */
export type AdminTlsOption = false | "issue" | { certFile: string; keyFile: string };

/** The admin listener's decided names and TLS. */
export interface AdminTlsPlan {
  /** the name clients use (URL, certificate) */
  name: string;
  /** every Host name accepted */
  names: string[];
  loopback: boolean;
  tls: AdminTlsOption;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * Decides the admin API's names and TLS for a bind address.
 * @throws CloudError INVALID_INPUT (adminName missing or malformed), ADMIN_TLS_REQUIRED
 */
export function adminTlsPlan(adminHost: string, adminName: string | undefined, tls: AdminTlsOption | undefined): AdminTlsPlan {
  const loopback = isLoopbackHost(adminHost);
  if (adminName !== undefined) {
    const bare = adminName.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
    if (!(isIP(bare) !== 0 || HOSTNAME.test(bare))) throw new CloudError("INVALID_INPUT", "must be a DNS name or an IP address", { field: "adminName" });
  }
  if (!loopback && adminName === undefined) {
    throw new CloudError("INVALID_INPUT", `the admin API bound to ${adminHost} (not loopback) needs the name clients reach it by (--admin-name)`, { field: "adminName" });
  }
  const chosen = tls ?? (loopback ? false : "issue");
  if (!loopback && chosen === false) {
    throw new CloudError("ADMIN_TLS_REQUIRED", `the admin API bound to ${adminHost} (not loopback) must use TLS: drop --admin-tls off, or give --admin-tls-cert and --admin-tls-key`);
  }
  const own = adminName === undefined ? undefined : hostHeaderName(adminName.replace(/^\[(.*)\]$/, "$1"));
  const names = [...new Set([...(own ? [own] : []), ...(loopback ? LOOPBACK_NAMES : [])])];
  return { name: own ?? "127.0.0.1", names, loopback, tls: chosen };
}

function readBounded(path: string, what: string): string {
  if (!existsSync(path)) throw new CloudError("CERT_INVALID", `${what} ${path} does not exist`);
  const text = readFileSync(path, "utf8");
  if (text.length > 64 * 1024) throw new CloudError("TOO_LARGE", `${what} ${path} is larger than 64 KiB`);
  return text;
}

function namesHost(cert: X509Certificate, name: string): boolean {
  const bare = name.replace(/^\[(.*)\]$/, "$1");
  return isIP(bare) !== 0 ? cert.checkIP(bare) !== undefined : cert.checkHost(bare) !== undefined;
}

/**
 * The admin API's TLS certificate and key for `plan` (false for plain HTTP).
 * @throws CloudError CERT_INVALID / FILE_INSECURE for operator files that are unusable
 */
export async function adminTlsMaterial(registry: Registry, plan: AdminTlsPlan): Promise<false | { certPem: string; keyPem: string; caPem: string | undefined }> {
  if (plan.tls === false) return false;
  if (plan.tls === "issue") {
    const ca = await registry.serverTls("ca");
    if (!ca) throw new Error("the server CA must exist before the admin certificate");
    const bare = plan.name.replace(/^\[(.*)\]$/, "$1");
    const loopbackNames = plan.loopback ? { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] } : { dnsNames: [], ipAddresses: [] };
    const dnsNames = [...new Set([...(isIP(bare) ? [] : [bare]), ...loopbackNames.dnsNames])];
    const ipAddresses = [...new Set([...(isIP(bare) ? [bare] : []), ...loopbackNames.ipAddresses])];
    // kept in the registry and served again while it names the same host and is not expiring,
    // so it outlives the CA's key going offline (server-ca remove-key)
    const stored = await registry.serverTls(ADMIN_STORE_NAME);
    const storedLeaf = stored && new X509Certificate(stored.certPem);
    const usable = storedLeaf !== undefined && sameNames(sanNames(storedLeaf), [...dnsNames, ...ipAddresses]) && Date.parse(storedLeaf.validTo) > Date.now();
    const fresh = usable && Date.parse(storedLeaf.validTo) - Date.now() > RENEW_BEFORE_DAYS * 86_400_000;
    if (stored && usable && (fresh || ca.keyDer.length === 0)) return { certPem: stored.certPem, keyPem: privateKeyPem(stored.keyDer), caPem: ca.certPem };
    if (ca.keyDer.length === 0) {
      throw new CloudError("CA_HAS_NO_KEY", `the admin API's certificate for ${plan.name} needs the server CA's key, which is offline: give --admin-tls-cert and --admin-tls-key, or serve once with this name before server-ca remove-key`);
    }
    const issued = await issueCertificate({
      caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: bare, usage: "server", dnsNames, ipAddresses, days: 825, keyType: "ec",
    });
    const chain = `${issued.certPem.trim()}\n${ca.certPem.trim()}\n`;
    await registry.replaceServerTls(ADMIN_STORE_NAME, chain, issued.keyDer);
    return { certPem: chain, keyPem: privateKeyPem(issued.keyDer), caPem: ca.certPem };
  }
  const certPem = readBounded(plan.tls.certFile, "the admin certificate file");
  assertOwnerOnly(plan.tls.keyFile, "the admin key file");
  const keyPem = readBounded(plan.tls.keyFile, "the admin key file");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new Error("mismatch");
  } catch {
    throw new CloudError("CERT_INVALID", "the admin certificate chain and key do not parse or do not match", { field: "adminTls" });
  }
  if (!namesHost(leaf, plan.name)) throw new CloudError("CERT_INVALID", `the admin certificate does not name ${plan.name}`, { field: "adminTls" });
  return { certPem, keyPem, caPem: undefined };
}

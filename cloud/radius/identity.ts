/*
 * The RADIUS server's TLS identity: an ECDSA P-256 certificate for the names
 * the operator configures (`radius.names`, default RADIUS_SERVER_NAME), signed
 * by the cloud's server CA (the same trust anchor devices already hold for the
 * MQTT endpoint), made on first start and kept in the registry with its key
 * sealed; or the operator's chain and key files, read at start and on SIGHUP. ECDSA because every authentication
 * costs the server one signature (a P-256 signature is about twenty times
 * cheaper than an RSA-2048 one) and the supplicants that talk to it
 * (wpa_supplicant, ESP-IDF's port of it over mbedTLS) verify ECDSA; the MQTT
 * endpoint stays RSA for Moddable's TLS.
 */
import { isIP } from "node:net";
import { X509Certificate } from "node:crypto";
import { CloudError } from "../errors";
import type { Registry } from "../registry";
import { issueCertificate, privateKeyPem } from "../pki";
import { checkServerNames, fileServerTls, RENEW_BEFORE_DAYS, sameNames, sanNames } from "../server-identity";

/** The name devices validate in the RADIUS server's certificate (SAN DNS) unless the operator names it (`radius.names`). */
export const RADIUS_SERVER_NAME = "radius.localhost";

/** Name of the identity in the registry's server_tls table. */
const STORE_NAME = "radius";

/** The RADIUS server certificate and key (PEM). */
export interface RadiusIdentity {
  certPem: string;
  keyPem: string;
  /** the DNS and IP names in the leaf (the first is what hotspot profiles give devices as radius.serverName) */
  names: string[];
}

/**
 * Returns the RADIUS server identity from the server CA: made on first use,
 * re-issued when `names` differ from the stored leaf's or fewer than
 * RENEW_BEFORE_DAYS remain. With the CA's key offline (server-cert's
 * `server-ca remove-key`) the stored leaf is served while its names match.
 * @param names - DNS names and IP addresses for the leaf (`radius.names`)
 * @throws CloudError CA_HAS_NO_KEY when a new leaf is needed and the CA's key is offline
 * @throws Error when the server CA does not exist yet (startCloud makes it first)
 */
export async function radiusIdentity(registry: Registry, names: string[] = [RADIUS_SERVER_NAME], now = Date.now()): Promise<RadiusIdentity> {
  const wanted = checkServerNames(names);
  let stored = await registry.serverTls(STORE_NAME);
  const leaf = stored && new X509Certificate(stored.certPem);
  const namesMatch = leaf !== undefined && sameNames(sanNames(leaf), wanted);
  const expiring = leaf !== undefined && Date.parse(leaf.validTo) - now < RENEW_BEFORE_DAYS * 86_400_000;
  if (!stored || !namesMatch || expiring) {
    const ca = await registry.serverTls("ca");
    if (!ca) throw new Error("the server CA must exist before the RADIUS identity");
    if (ca.keyDer.length === 0) {
      if (stored && namesMatch && Date.parse(leaf!.validTo) > now) return { certPem: stored.certPem, keyPem: privateKeyPem(stored.keyDer), names: wanted };
      throw new CloudError("CA_HAS_NO_KEY", `the RADIUS certificate for ${wanted.join(",")} needs the server CA's key, which is offline: give radius.tlsCertFile and radius.tlsKeyFile, or serve once with these names before server-ca remove-key`);
    }
    const dnsNames = wanted.filter((n) => !isIP(n));
    const ipAddresses = wanted.filter((n) => isIP(n));
    const issued = await issueCertificate({
      caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: dnsNames[0] ?? ipAddresses[0]!, usage: "server",
      dnsNames, ipAddresses, days: 825, keyType: "ec",
    });
    const first = !stored;
    await registry.tx(async () => {
      await registry.replaceServerTls(STORE_NAME, issued.certPem, issued.keyDer);
      await registry.audit("cloud", first ? "radius-tls.create" : "radius-tls.reissue", undefined, `names ${wanted.join(",")}`);
    });
    stored = (await registry.serverTls(STORE_NAME))!;
  }
  return { certPem: stored.certPem, keyPem: privateKeyPem(stored.keyDer), names: sanNames(new X509Certificate(stored.certPem)) };
}

/**
 * The operator's RADIUS chain and key (`radius.tlsCertFile`, `radius.tlsKeyFile`),
 * checked as the MQTT ones are (key matches the leaf, leaf unexpired, key file owner-only).
 */
export function fileRadiusIdentity(certFile: string, keyFile: string, now = Date.now()): RadiusIdentity {
  const files = fileServerTls(certFile, keyFile, now, "radius");
  return { certPem: files.certPem, keyPem: files.keyPem, names: files.names };
}

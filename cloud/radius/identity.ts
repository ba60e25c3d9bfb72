/*
 * The RADIUS server's TLS identity: an ECDSA P-256 certificate for
 * RADIUS_SERVER_NAME, signed by the cloud's server CA (the same trust anchor
 * devices already hold for the MQTT endpoint), made on first start and kept
 * in the registry with its key sealed. ECDSA because every authentication
 * costs the server one signature (a P-256 signature is about twenty times
 * cheaper than an RSA-2048 one) and the supplicants that talk to it
 * (wpa_supplicant, ESP-IDF's port of it over mbedTLS) verify ECDSA; the MQTT
 * endpoint stays RSA for Moddable's TLS.
 */
import type { Registry } from "../registry";
import { issueCertificate, privateKeyPem } from "../pki";

/** The name devices validate in the RADIUS server's certificate (SAN DNS). */
export const RADIUS_SERVER_NAME = "radius.localhost";

/** Name of the identity in the registry's server_tls table. */
const STORE_NAME = "radius";

/** The RADIUS server certificate and key (PEM). */
export interface RadiusIdentity {
  certPem: string;
  keyPem: string;
}

/**
 * Returns the RADIUS server identity, creating it under the server CA on first use.
 * @throws Error when the server CA does not exist yet (startCloud makes it first)
 */
export async function radiusIdentity(registry: Registry): Promise<RadiusIdentity> {
  let stored = await registry.serverTls(STORE_NAME);
  if (!stored) {
    const ca = await registry.serverTls("ca");
    if (!ca) throw new Error("the server CA must exist before the RADIUS identity");
    const issued = await issueCertificate({
      caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: RADIUS_SERVER_NAME, usage: "server",
      dnsNames: [RADIUS_SERVER_NAME], days: 825, keyType: "ec",
    });
    await registry.tx(async () => {
      await registry.storeServerTls(STORE_NAME, issued.certPem, issued.keyDer);
      await registry.audit("cloud", "radius-tls.create");
    });
    stored = (await registry.serverTls(STORE_NAME))!;
  }
  return { certPem: stored.certPem, keyPem: privateKeyPem(stored.keyDer) };
}

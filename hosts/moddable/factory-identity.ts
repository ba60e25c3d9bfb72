/*
 * The device identity the manufacturing line writes into the NVS partition
 * (tools/manufacturing/make-lot.ts writes <id>.nvs.csv for nvs_partition_gen:
 * namespace "wcm", keys deviceId and option as strings; secret, tempSecret,
 * provKey, cert and key as blobs; tempFrom and hmacKeyBlock as strings: a
 * temporary device holds tempSecret (its own derived secret, the default),
 * tempFrom "hardware" with hmacKeyBlock (the lot key is in that eFuse key block),
 * or provKey (the lot key itself, the weaker mode)), and labelCode (a string:
 * the label code of local onboarding). Moddable's Preference maps NVS strings to strings and
 * blobs to ArrayBuffers, so it reads them as they are. When present, this
 * identity takes the place of the one in config.wcm: one firmware image, built
 * with the lot's cloud settings, serves every device of the lot.
 * Nothing here validates: validateConfig() does, with its bounds and errors.
 */
import Preference from "preference";
import { toHex } from "wcm/bytes";

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < bytes.length ? B64[(n >> 6) & 63] : "=") + (i + 2 < bytes.length ? B64[n & 63] : "=");
  }
  return out;
}

/** DER as PEM text with `label` ("CERTIFICATE", "PRIVATE KEY"), 64 characters a line. */
export function derToPem(der: Uint8Array, label: string): string {
  const body = base64(der).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function blob(domain: string, key: string): Uint8Array | undefined {
  const value = Preference.get(domain, key);
  return value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
}

/**
 * The identity fields from NVS (deviceId, option, secret / temporarySecret /
 * temporarySecretFrom + hmacKeyBlock / provisioningKey / certificate +
 * privateKey), or undefined when the partition has no deviceId.
 */
export function factoryIdentity(domain = "wcm"): Record<string, string> | undefined {
  const deviceId = Preference.get(domain, "deviceId");
  const option = Preference.get(domain, "option");
  if (typeof deviceId !== "string" || typeof option !== "string") return undefined;
  const identity: Record<string, string> = { deviceId, option };
  const secret = blob(domain, "secret");
  if (secret) identity.secret = toHex(secret);
  const temporarySecret = blob(domain, "tempSecret");
  if (temporarySecret) identity.temporarySecret = toHex(temporarySecret);
  const temporarySecretFrom = Preference.get(domain, "tempFrom");
  if (typeof temporarySecretFrom === "string") identity.temporarySecretFrom = temporarySecretFrom;
  const hmacKeyBlock = Preference.get(domain, "hmacKeyBlock");
  if (typeof hmacKeyBlock === "string") identity.hmacKeyBlock = hmacKeyBlock;
  const provisioningKey = blob(domain, "provKey");
  if (provisioningKey) identity.provisioningKey = toHex(provisioningKey);
  const certificate = blob(domain, "cert");
  if (certificate) identity.certificate = derToPem(certificate, "CERTIFICATE");
  const privateKey = blob(domain, "key");
  if (privateKey) identity.privateKey = derToPem(privateKey, "PRIVATE KEY");
  const labelCode = Preference.get(domain, "labelCode");
  if (typeof labelCode === "string") identity.labelCode = labelCode;
  return identity;
}

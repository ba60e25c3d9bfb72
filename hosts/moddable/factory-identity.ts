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

/** DER as PEM text with `label` ("CERTIFICATE", "PRIVATE KEY"), 64 characters a line (XS's Uint8Array toBase64: padded base64). */
function derToPem(der: Uint8Array, label: string): string {
  return `-----BEGIN ${label}-----\n${der.toBase64().replace(/(.{64})(?!$)/g, "$1\n")}\n-----END ${label}-----\n`;
}

/** NVS key, config field (empty: the same name) and how it is stored, three items each: "s" a string, "h" a blob as hex (XS's Uint8Array toHex: lower case), else a DER blob as PEM of that label. */
const FIELDS = "deviceId,,s,option,,s,secret,,h,tempSecret,temporarySecret,h,tempFrom,temporarySecretFrom,s,hmacKeyBlock,,s,provKey,provisioningKey,h,cert,certificate,CERTIFICATE,key,privateKey,PRIVATE KEY,labelCode,,s".split(",");

/**
 * The identity fields from NVS (deviceId, option, secret / temporarySecret /
 * temporarySecretFrom + hmacKeyBlock / provisioningKey / certificate +
 * privateKey, labelCode), or undefined when the partition has no deviceId or no option.
 */
export function factoryIdentity(domain = "wcm"): Record<string, string> | undefined {
  const identity: Record<string, string> = {};
  for (let i = 0; i < FIELDS.length; i += 3) {
    const value = Preference.get(domain, FIELDS[i]);
    const field = FIELDS[i + 1] || FIELDS[i];
    const kind = FIELDS[i + 2];
    if (kind === "s") {
      if (typeof value === "string") identity[field] = value;
    } else if (value instanceof ArrayBuffer) {
      const bytes = new Uint8Array(value);
      identity[field] = kind === "h" ? bytes.toHex() : derToPem(bytes, kind);
    }
  }
  return "deviceId" in identity && "option" in identity ? identity : undefined;
}

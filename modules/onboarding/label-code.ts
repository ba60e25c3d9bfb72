/*
 * The label code (docs/protocol.md 15.2), all of it: the device's half
 * (device-label-code.ts, re-exported: parsing a typed code, the SoftAP name)
 * and the manufacturing line's and the owner's client's: a new code from random
 * bytes, its printed form, and the label's QR payload (`WCM1:<id>:<code>:<softAP>`).
 */
import { checkChar, CODE_ALPHABET, CODE_DATA_CHARS, softApName } from "./device-label-code";

export * from "./device-label-code";

/** The QR payload's scheme and version. */
export const QR_PREFIX = "WCM1:";

function group(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8, 12)}-${code.slice(12)}`;
}

/**
 * A new label code from 9 random bytes (65 of their bits are used).
 * @returns the printed form, e.g. `7KQ2-M9XD-4RTB-WH`
 */
export function newLabelCode(random: (length: number) => Uint8Array): string {
  const bytes = random(9);
  let bits = 0n;
  for (let i = 0; i < 9; i++) bits = (bits << 8n) | BigInt(bytes[i]);
  let data = "";
  for (let i = 0; i < CODE_DATA_CHARS; i++, bits >>= 5n) data += CODE_ALPHABET[Number(bits & 31n)];
  return group(data + checkChar(data));
}

/** The printed form of 13 data characters. */
export function formatLabelCode(data: string): string {
  return group(data + checkChar(data));
}

/**
 * The label's QR payload: `WCM1:<deviceId>:<code>:<softAP>` (ids and codes
 * never contain `:`), e.g. `WCM1:lamp-0001:7KQ2-M9XD-4RTB-WH:wcm-lamp-0001`.
 */
export function labelQrPayload(deviceId: string, printedCode: string): string {
  return `${QR_PREFIX}${deviceId}:${printedCode}:${softApName(deviceId)}`;
}

/** Reads a QR payload back (the owner's client); undefined when it is not one. */
export function parseLabelQr(text: string): { deviceId: string; code: string; softAp: string } | undefined {
  if (text.length > 160 || !text.startsWith(QR_PREFIX)) return undefined;
  const parts = text.slice(QR_PREFIX.length).split(":");
  if (parts.length !== 3 || !parts.every((p) => p.length > 0)) return undefined;
  return { deviceId: parts[0], code: parts[1], softAp: parts[2] };
}

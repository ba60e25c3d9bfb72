/*
 * The label code: the proof-of-possession secret printed on each device's label
 * (docs/protocol.md 15.2), and the QR payload and SoftAP name that go with it.
 *
 * 13 characters of Crockford base32 (65 random bits) and one check character,
 * shown as four groups: `7KQ2-M9XD-4RTB-WH`. Typing is forgiving (case, spaces
 * and dashes ignored; O reads as 0, I and L as 1) and the check character
 * (Luhn mod 32) catches typos before they cost one of the device's bounded attempts.
 * The PAKE uses the 13 data characters; the check character is derived.
 */
import { WcmError } from "../errors";

/** Crockford's base32 alphabet (no I, L, O, U). */
export const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Data characters of a label code (13 x 5 = 65 bits). */
export const CODE_DATA_CHARS = 13;
/** The QR payload's scheme and version. */
export const QR_PREFIX = "WCM1:";

/** The Luhn mod 32 check character: catches every single-character typo and most swaps of neighbours. */
function checkChar(data: string): string {
  let sum = 0;
  let factor = 2;
  for (let i = data.length - 1; i >= 0; i--) {
    const addend = factor * CODE_ALPHABET.indexOf(data[i]);
    sum += Math.floor(addend / 32) + (addend % 32);
    factor = factor === 2 ? 1 : 2;
  }
  return CODE_ALPHABET[(32 - (sum % 32)) % 32];
}

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

/**
 * The 13 data characters of a typed or printed code.
 * @throws WcmError CONFIG_INVALID (or `code`) naming `field` for a code that is not
 *   14 characters of the alphabet (after normalising) or whose check character is wrong
 * @example parseLabelCode("7kq2 m9xd 4rtb wh") === "7KQ2M9XD4RTBW"
 */
export function parseLabelCode(text: unknown, field = "labelCode", code: "CONFIG_INVALID" | "MESSAGE_INVALID" = "CONFIG_INVALID"): string {
  if (typeof text !== "string" || text.length > 40) throw new WcmError(code, "must be the 14-character label code", field);
  const clean = text.toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
  if (clean.length !== CODE_DATA_CHARS + 1 || [...clean].some((c) => !CODE_ALPHABET.includes(c))) {
    throw new WcmError(code, "must be the 14-character label code (0-9 and A-Z without U)", field);
  }
  const data = clean.slice(0, CODE_DATA_CHARS);
  if (checkChar(data) !== clean[CODE_DATA_CHARS]) throw new WcmError(code, "check character does not match: a typo", field);
  return data;
}

/** The printed form of 13 data characters. */
export function formatLabelCode(data: string): string {
  return group(data + checkChar(data));
}

/** The SoftAP name of a device: `wcm-` and the last 28 characters of its id (an SSID holds 32 bytes). */
export function softApName(deviceId: string): string {
  return `wcm-${deviceId.slice(-28)}`;
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

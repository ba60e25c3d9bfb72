/*
 * The label code as the device reads it (docs/protocol.md 15.2): the typed or
 * configured code checked and normalised, and the device's SoftAP name. The
 * firmware ships this half only; label-code.ts re-exports it and adds the
 * manufacturing line's and the owner's client's half (a new code, the QR payload).
 *
 * 13 characters of Crockford base32 (65 random bits) and one check character,
 * shown as four groups: `7KQ2-M9XD-4RTB-WH`. Typing is forgiving (case, spaces
 * and dashes ignored; O reads as 0, I and L as 1) and the check character
 * (Luhn mod 32) catches typos before they cost one of the device's bounded attempts.
 * The PAKE uses the 13 data characters; the check character is derived.
 */
import { fail } from "../check";
import type { WcmErrorCode } from "../errors";

/** Crockford's base32 alphabet (no I, L, O, U). */
export const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Data characters of a label code (13 x 5 = 65 bits). */
export const CODE_DATA_CHARS = 13;

/** @internal The Luhn mod 32 check character: catches every single-character typo and most swaps of neighbours. */
export function checkChar(data: string): string {
  // `data` is of the alphabet: every addend is 0..62
  let sum = 0;
  for (let i = data.length - 1, factor = 2; i >= 0; i--, factor = 3 - factor) {
    const addend = factor * CODE_ALPHABET.indexOf(data[i]);
    sum += (addend >> 5) + (addend & 31);
  }
  return CODE_ALPHABET[-sum & 31];
}

/**
 * The 13 data characters of a typed or printed code.
 * @throws WcmError CONFIG_INVALID (or `code`) naming `field` for a code that is not
 *   14 characters of the alphabet (after normalising) or whose check character is wrong
 * @example parseLabelCode("7kq2 m9xd 4rtb wh") === "7KQ2M9XD4RTBW"
 */
export function parseLabelCode(text: unknown, field = "labelCode", code: WcmErrorCode = "CONFIG_INVALID"): string {
  // at most 40 characters typed; after normalising, 14 of the alphabet
  const clean = typeof text === "string" && text.length <= 40 ? text.toUpperCase().replace(/[\s-]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1") : "";
  if (!/^[0-9A-HJKMNP-TV-Z]{14}$/.test(clean)) fail(code, "must be the 14-character label code", field);
  const data = clean.slice(0, CODE_DATA_CHARS);
  return checkChar(data) === clean[CODE_DATA_CHARS] ? data : fail(code, "check character does not match: a typo", field);
}

/** The SoftAP name of a device: `wcm-` and the last 28 characters of its id (an SSID holds 32 bytes). */
export function softApName(deviceId: string): string {
  return `wcm-${deviceId.slice(-28)}`;
}

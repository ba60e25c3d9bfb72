/*
 * Byte helpers for the portable core: UTF-8, hex, base64url, JSON, concatenation
 * and constant-time comparison.
 *
 * Written out by hand because the core must run on XS (Moddable) where
 * TextEncoder, Buffer and atob are not guaranteed (and XS's decodeURIComponent
 * takes overlong forms and surrogates); hex and base64url share one radix codec. Decoders
 * validate their input and throw WcmError("MESSAGE_INVALID") on anything malformed.
 */
import { WcmError } from "./errors";

const invalid = (what: string): never => {
  throw new WcmError("MESSAGE_INVALID", "not " + what);
};

/** Encodes a string as UTF-8. Lone surrogates become U+FFFD. */
export const utf8Encode = (text: string): Uint8Array => {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let code = text.codePointAt(i) as number;
    if (code > 0xffff) i++;
    else if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
    // n continuation bytes of 6 bits after a lead byte 0xxxxxxx, 110xxxxx, 1110xxxx or 11110xxx
    // (the lead bits are byte n of 0xf0e0c000)
    let n = code < 0x80 ? 0 : code < 0x800 ? 1 : code < 0x10000 ? 2 : 3;
    out.push(((0xf0e0c000 >> (8 * n)) & 0xff) | (code >> (6 * n)));
    while (n--) out.push(0x80 | ((code >> (6 * n)) & 63));
  }
  return Uint8Array.from(out);
};

/** The smallest code point of a sequence with n continuation bytes (a smaller one is an overlong form). */
const MIN_CODE = Uint32Array.of(0, 0x80, 0x800, 0x10000);

/** Decodes strict UTF-8 (no overlongs, no surrogates); throws MESSAGE_INVALID otherwise. */
export const utf8Decode = (bytes: Uint8Array): string => {
  let text = "";
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i++];
    // n continuation bytes (4: not a lead byte)
    const n = lead < 0x80 ? 0 : lead < 0xc0 ? 4 : lead < 0xe0 ? 1 : lead < 0xf0 ? 2 : lead < 0xf8 ? 3 : 4;
    let code = lead & (0x7f >> n);
    for (let k = 0; k < n; k++) {
      const next = bytes[i++];
      if ((next & 0xc0) !== 0x80) invalid("UTF-8");
      code = (code << 6) | (next & 63);
    }
    // the shortest form only, no surrogates, at most U+10FFFF
    if (n > 3 || code < MIN_CODE[n] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) invalid("UTF-8");
    text += String.fromCodePoint(code);
  }
  return text;
};

const HEX = "0123456789abcdef";
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** `bytes` in an alphabet of 2^bits characters, most significant bits first, the last character zero-filled. */
const encode = (bytes: Uint8Array, alphabet: string, bits: number): string => {
  let out = "";
  let acc = 0;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    acc = ((acc << 8) | bytes[i]) & 0xffff;
    for (n += 8; n >= bits; ) out += alphabet[(acc >> (n -= bits)) & ((1 << bits) - 1)];
  }
  return n ? out + alphabet[(acc << (bits - n)) & ((1 << bits) - 1)] : out;
};

/** The inverse of encode(): throws MESSAGE_INVALID ("not `what`") on a character outside the alphabet, a dangling character or a set unused bit. */
const decode = (text: string, alphabet: string, bits: number, what: string): Uint8Array => {
  const out = new Uint8Array((text.length * bits) >> 3);
  let acc = 0;
  let n = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = alphabet.indexOf(text[i]);
    if (digit < 0) invalid(what);
    acc = ((acc << bits) | digit) & 0xffff;
    n += bits;
    if (n >= 8) out[o++] = acc >> (n -= 8);
  }
  return n >= bits || acc & ((1 << n) - 1) ? invalid(what) : out;
};

/** Lower-case hex of `bytes`. */
export const toHex = (bytes: Uint8Array): string => encode(bytes, HEX, 4);

/** Parses hex (either case, even length); throws MESSAGE_INVALID otherwise. */
export const fromHex = (text: string): Uint8Array => decode(text.toLowerCase(), HEX, 4, "hex");

/** Unpadded base64url (RFC 4648 section 5) of `bytes`. */
export const toBase64Url = (bytes: Uint8Array): string => encode(bytes, B64URL, 6);

/** Parses unpadded base64url; rejects padding, other alphabets and non-canonical tails. */
export const fromBase64Url = (text: string): Uint8Array => decode(text, B64URL, 6, "base64url");

/** Concatenates byte arrays. */
export const concatBytes = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((length, part) => length + part.length, 0));
  parts.reduce((offset, part) => (out.set(part, offset), offset + part.length), 0);
  return out;
};

/** Compares two byte arrays in time that depends only on their lengths. */
export const constantTimeEqual = (a: Uint8Array, b: Uint8Array): boolean => {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return !diff;
};

/** UTF-8 JSON of `value` (fields whose value is undefined are left out). */
export const jsonBytes = (value: unknown): Uint8Array => utf8Encode(JSON.stringify(value));

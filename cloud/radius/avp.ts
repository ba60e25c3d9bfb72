/*
 * The Diameter-style AVPs carried inside the EAP-TTLS tunnel (RFC 5281
 * section 10): code (4), flags V/M (1), length (3, header included, padding
 * excluded), vendor id when V, data, zero padding to 4 bytes. The server reads
 * User-Name (1) and User-Password (2) for PAP (section 11.2.5).
 */

/** AVP codes (the RADIUS attribute numbers). */
export const AVP_CODE = { userName: 1, userPassword: 2 } as const;
/** AVP flags. */
export const AVP_FLAG = { vendor: 0x80, mandatory: 0x40 } as const;
/** Most AVPs accepted in one tunnel message. */
export const MAX_AVPS = 32;

/** One AVP. */
export interface Avp {
  code: number;
  flags: number;
  vendorId?: number;
  data: Buffer;
}

/** A malformed AVP sequence. */
export class AvpError extends Error {
  constructor(message: string) {
    super(`BAD_EAP: ${message}`);
    this.name = "AvpError";
  }
}

/**
 * Decodes a sequence of AVPs.
 * @throws AvpError on a truncated header, a length that runs past the data, or more than MAX_AVPS
 */
export function decodeAvps(bytes: Buffer): Avp[] {
  const out: Avp[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (out.length >= MAX_AVPS) throw new AvpError(`more than ${MAX_AVPS} AVPs`);
    if (offset + 8 > bytes.length) throw new AvpError("truncated AVP header");
    const code = bytes.readUInt32BE(offset);
    const flags = bytes[offset + 4];
    const length = bytes.readUIntBE(offset + 5, 3);
    const header = flags & AVP_FLAG.vendor ? 12 : 8;
    if (length < header || offset + length > bytes.length) throw new AvpError(`AVP ${code} length ${length} invalid`);
    const vendorId = flags & AVP_FLAG.vendor ? bytes.readUInt32BE(offset + 8) : undefined;
    out.push({ code, flags, vendorId, data: Buffer.from(bytes.subarray(offset + header, offset + length)) });
    offset += (length + 3) & ~3;
  }
  return out;
}

/** Encodes AVPs (no vendor ids), each padded to 4 bytes. */
export function encodeAvps(avps: { code: number; data: Buffer; mandatory?: boolean }[]): Buffer {
  const parts: Buffer[] = [];
  for (const avp of avps) {
    const length = 8 + avp.data.length;
    const out = Buffer.alloc((length + 3) & ~3);
    out.writeUInt32BE(avp.code, 0);
    out[4] = avp.mandatory === false ? 0 : AVP_FLAG.mandatory;
    out.writeUIntBE(length, 5, 3);
    avp.data.copy(out, 8);
    parts.push(out);
  }
  return Buffer.concat(parts);
}

/** Inner methods the server recognises but does not serve (RFC 5281 section 11.2: CHAP, MS-CHAP, MS-CHAP-V2, EAP). */
export class InnerMethodUnsupported extends Error {
  constructor(readonly method: string) {
    super(`METHOD_UNSUPPORTED: inner ${method} (only PAP is served inside EAP-TTLS)`);
    this.name = "InnerMethodUnsupported";
  }
}

/** Microsoft's vendor id (RFC 2548) and its MS-CHAP AVP types. */
const MS_VENDOR = 311;
const MS_CHAP_RESPONSE = 1;
const MS_CHAP2_RESPONSE = 25;
/** RADIUS attribute numbers of the other inner methods (RFC 2865, RFC 3579). */
const CHAP_PASSWORD = 3;
const EAP_MESSAGE = 79;

function innerMethod(avps: Avp[]): string | undefined {
  for (const avp of avps) {
    if (avp.vendorId === undefined && avp.code === EAP_MESSAGE) return "EAP";
    if (avp.vendorId === undefined && avp.code === CHAP_PASSWORD) return "CHAP";
    if (avp.vendorId === MS_VENDOR && avp.code === MS_CHAP2_RESPONSE) return "MS-CHAP-V2";
    if (avp.vendorId === MS_VENDOR && avp.code === MS_CHAP_RESPONSE) return "MS-CHAP";
  }
  return undefined;
}

/** PAP credentials from a TTLS phase-2 message. */
export interface PapCredentials {
  userName: string;
  /** the password with the trailing zero padding removed */
  password: Buffer;
}

/**
 * Reads User-Name and User-Password from the inner AVPs. An AVP with M set whose
 * code the server does not know, or a vendor AVP with M set, fails (RFC 5281 section 10.1).
 * @throws AvpError when malformed or when either attribute is missing or over 253 bytes
 * @throws InnerMethodUnsupported when the AVPs are another inner method's (EAP, CHAP, MS-CHAP, MS-CHAP-V2) and carry no User-Password
 */
export function readPap(bytes: Buffer): PapCredentials {
  let userName: string | undefined;
  let password: Buffer | undefined;
  const avps = decodeAvps(bytes);
  if (!avps.some((avp) => avp.vendorId === undefined && avp.code === AVP_CODE.userPassword)) {
    const other = innerMethod(avps);
    if (other) throw new InnerMethodUnsupported(other);
  }
  for (const avp of avps) {
    if (avp.vendorId === undefined && avp.code === AVP_CODE.userName) userName = avp.data.toString("utf8");
    else if (avp.vendorId === undefined && avp.code === AVP_CODE.userPassword) password = avp.data;
    else if (avp.flags & AVP_FLAG.mandatory) throw new AvpError(`unsupported mandatory AVP ${avp.code}`);
  }
  if (userName === undefined || password === undefined) throw new AvpError("User-Name and User-Password required (PAP)");
  if (userName.length > 253 || password.length > 253) throw new AvpError("User-Name or User-Password over 253 bytes");
  let end = password.length;
  while (end > 0 && password[end - 1] === 0) end--;
  return { userName, password: password.subarray(0, end) };
}

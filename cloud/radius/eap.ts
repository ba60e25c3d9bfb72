/*
 * EAP packets (RFC 3748) and the EAP-TLS / EAP-TTLS framing (RFC 5216
 * section 3, RFC 5281 section 9.1): flags L (length included), M (more
 * fragments), S (start), the TTLS version bits, and the 4-byte TLS message length.
 * Decoders throw EapCodecError; nothing here keeps state (fragments.ts does).
 */

/** EAP codes. */
export const EAP_CODE = { request: 1, response: 2, success: 3, failure: 4 } as const;
/** EAP method types the server speaks. */
export const EAP_TYPE = { identity: 1, notification: 2, nak: 3, tls: 13, ttls: 21 } as const;
/** EAP-TLS / EAP-TTLS flag bits. */
export const TLS_FLAG = { length: 0x80, more: 0x40, start: 0x20 } as const;
/** Largest EAP packet accepted (an EAP packet has a 16-bit length; RADIUS bounds it further). */
export const MAX_EAP = 4096;

/** A decoded EAP packet. `type` and `data` exist for requests and responses. */
export interface EapPacket {
  code: number;
  identifier: number;
  type?: number;
  data: Buffer;
}

/** A bad EAP packet. */
export class EapCodecError extends Error {
  constructor(message: string) {
    super(`BAD_EAP: ${message}`);
    this.name = "EapCodecError";
  }
}

/**
 * Decodes one EAP packet; its length field must equal the bytes given (RFC 3579 section 3.1).
 * @throws EapCodecError
 */
export function decodeEap(bytes: Uint8Array): EapPacket {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4) throw new EapCodecError(`${buf.length} bytes, fewer than 4`);
  if (buf.length > MAX_EAP) throw new EapCodecError(`${buf.length} bytes, more than ${MAX_EAP}`);
  const code = buf[0];
  const length = buf.readUInt16BE(2);
  if (length !== buf.length) throw new EapCodecError(`length field ${length} but ${buf.length} bytes`);
  if (code === EAP_CODE.success || code === EAP_CODE.failure) {
    if (length !== 4) throw new EapCodecError("success/failure with data");
    return { code, identifier: buf[1], data: Buffer.alloc(0) };
  }
  if (code !== EAP_CODE.request && code !== EAP_CODE.response) throw new EapCodecError(`unknown code ${code}`);
  if (length < 5) throw new EapCodecError("request/response without a type");
  return { code, identifier: buf[1], type: buf[4], data: Buffer.from(buf.subarray(5)) };
}

/** Encodes an EAP packet (type and data only for requests and responses). */
export function encodeEap(packet: EapPacket): Buffer {
  const hasType = packet.type !== undefined;
  const length = 4 + (hasType ? 1 + packet.data.length : 0);
  if (length > 0xffff) throw new EapCodecError("packet longer than 65535 bytes");
  const out = Buffer.alloc(length);
  out[0] = packet.code;
  out[1] = packet.identifier & 0xff;
  out.writeUInt16BE(length, 2);
  if (hasType) {
    out[4] = packet.type!;
    packet.data.copy(out, 5);
  }
  return out;
}

/** The payload of one EAP-TLS / EAP-TTLS message. */
export interface TlsFrame {
  /** flag byte with the version bits cleared */
  flags: number;
  /** TTLS version (low 3 bits; 0 for EAP-TLS) */
  version: number;
  /** total TLS message length when L is set */
  totalLength?: number;
  /** this fragment's TLS bytes */
  fragment: Buffer;
}

/**
 * Decodes the data of an EAP-TLS/TTLS message.
 * @throws EapCodecError when empty or when L is set without 4 length bytes
 */
export function decodeTlsFrame(data: Buffer): TlsFrame {
  if (data.length < 1) throw new EapCodecError("TLS frame without flags");
  const flags = data[0] & 0xf8;
  const version = data[0] & 0x07;
  if (flags & TLS_FLAG.length) {
    if (data.length < 5) throw new EapCodecError("L flag without the 4-byte length");
    return { flags, version, totalLength: data.readUInt32BE(1), fragment: Buffer.from(data.subarray(5)) };
  }
  return { flags, version, fragment: Buffer.from(data.subarray(1)) };
}

/** Encodes the data of an EAP-TLS/TTLS message. */
export function encodeTlsFrame(frame: TlsFrame): Buffer {
  const header = Buffer.alloc(frame.totalLength !== undefined ? 5 : 1);
  header[0] = (frame.flags & 0xf8) | (frame.totalLength !== undefined ? TLS_FLAG.length : 0) | (frame.version & 0x07);
  if (frame.totalLength !== undefined) header.writeUInt32BE(frame.totalLength, 1);
  return Buffer.concat([header, frame.fragment]);
}

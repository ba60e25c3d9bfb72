/*
 * RADIUS packet codec (RFC 2865) with the RFC 3579 / RFC 2869 pieces EAP needs.
 *
 * - decodePacket / encodePacket: header and attributes, with bounds (packet
 *   length 20..4096, every attribute length 2..255 inside the packet); a bad
 *   packet throws RadiusCodecError with a stable code.
 * - Request / Response Authenticator and Message-Authenticator (HMAC-MD5 over
 *   the packet with the field zeroed) computed and checked here and nowhere else.
 * - EAP-Message split into 253-byte attributes and joined on receipt.
 * No I/O: server.ts owns the socket.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** RADIUS codes used by the server. */
export const RADIUS_CODE = {
  accessRequest: 1,
  accessAccept: 2,
  accessReject: 3,
  accountingRequest: 4,
  accountingResponse: 5,
  accessChallenge: 11,
  statusServer: 12,
  disconnectRequest: 40,
  disconnectAck: 41,
  disconnectNak: 42,
  coaRequest: 43,
  coaAck: 44,
  coaNak: 45,
} as const;

/** RADIUS attribute types used by the server. */
export const ATTR = {
  userName: 1,
  userPassword: 2,
  nasIpAddress: 4,
  framedMtu: 12,
  replyMessage: 18,
  state: 24,
  vendorSpecific: 26,
  sessionTimeout: 27,
  calledStationId: 30,
  callingStationId: 31,
  nasIdentifier: 32,
  acctStatusType: 40,
  acctDelayTime: 41,
  acctInputOctets: 42,
  acctOutputOctets: 43,
  acctSessionId: 44,
  acctSessionTime: 46,
  acctTerminateCause: 49,
  framedIpAddress: 8,
  filterId: 11,
  eventTimestamp: 55,
  acctInterimInterval: 85,
  errorCause: 101,
  eapMessage: 79,
  messageAuthenticator: 80,
  eapKeyName: 102,
  nasIpv6Address: 95,
} as const;

/** Smallest and largest RADIUS packet (RFC 2865 section 3). */
export const MIN_PACKET = 20;
export const MAX_PACKET = 4096;
/** Largest value of one attribute. */
export const MAX_ATTRIBUTE_VALUE = 253;

/** One attribute as it appears on the wire. */
export interface RadiusAttribute {
  type: number;
  value: Buffer;
}

/** A decoded packet. `raw` is the packet's bytes (up to its declared length). */
export interface RadiusPacket {
  code: number;
  identifier: number;
  authenticator: Buffer;
  attributes: RadiusAttribute[];
  raw: Buffer;
}

/** Why a packet could not be decoded. */
export type RadiusCodecErrorCode = "TOO_SHORT" | "TOO_LONG" | "BAD_LENGTH" | "BAD_ATTRIBUTE" | "BAD_VALUE";

/** A packet that breaks the codec's rules. */
export class RadiusCodecError extends Error {
  constructor(readonly code: RadiusCodecErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = "RadiusCodecError";
  }
}

/**
 * Decodes one RADIUS packet. Bytes after the declared length are ignored (RFC 2865 section 3).
 * @throws RadiusCodecError TOO_SHORT, TOO_LONG, BAD_LENGTH, BAD_ATTRIBUTE
 * @example const packet = decodePacket(datagram);
 */
export function decodePacket(bytes: Uint8Array): RadiusPacket {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MIN_PACKET) throw new RadiusCodecError("TOO_SHORT", `${buf.length} bytes, fewer than ${MIN_PACKET}`);
  if (buf.length > MAX_PACKET) throw new RadiusCodecError("TOO_LONG", `${buf.length} bytes, more than ${MAX_PACKET}`);
  const length = buf.readUInt16BE(2);
  if (length < MIN_PACKET || length > MAX_PACKET) throw new RadiusCodecError("BAD_LENGTH", `declared length ${length} outside ${MIN_PACKET}..${MAX_PACKET}`);
  if (length > buf.length) throw new RadiusCodecError("BAD_LENGTH", `declared length ${length} exceeds the ${buf.length} bytes received`);
  const raw = Buffer.from(buf.subarray(0, length));
  const attributes: RadiusAttribute[] = [];
  let offset = MIN_PACKET;
  while (offset < length) {
    if (offset + 2 > length) throw new RadiusCodecError("BAD_ATTRIBUTE", `truncated attribute header at ${offset}`);
    const type = raw[offset];
    const attrLength = raw[offset + 1];
    if (attrLength < 2) throw new RadiusCodecError("BAD_ATTRIBUTE", `attribute ${type} length ${attrLength} below 2`);
    if (offset + attrLength > length) throw new RadiusCodecError("BAD_ATTRIBUTE", `attribute ${type} runs past the packet`);
    attributes.push({ type, value: raw.subarray(offset + 2, offset + attrLength) });
    offset += attrLength;
  }
  return { code: raw[0], identifier: raw[1], authenticator: raw.subarray(4, 20), attributes, raw };
}

/**
 * Encodes a packet with the given authenticator field (callers compute it with
 * signResponse / signRequest).
 * @throws RadiusCodecError BAD_VALUE (attribute value over 253 bytes) or TOO_LONG (over 4096 bytes)
 */
export function encodePacket(code: number, identifier: number, authenticator: Uint8Array, attributes: RadiusAttribute[]): Buffer {
  let length = MIN_PACKET;
  for (const attr of attributes) {
    if (attr.value.length > MAX_ATTRIBUTE_VALUE) throw new RadiusCodecError("BAD_VALUE", `attribute ${attr.type} value of ${attr.value.length} bytes`);
    length += 2 + attr.value.length;
  }
  if (length > MAX_PACKET) throw new RadiusCodecError("TOO_LONG", `packet of ${length} bytes`);
  const out = Buffer.alloc(length);
  out[0] = code;
  out[1] = identifier & 0xff;
  out.writeUInt16BE(length, 2);
  Buffer.from(authenticator).copy(out, 4, 0, 16);
  let offset = MIN_PACKET;
  for (const attr of attributes) {
    out[offset] = attr.type;
    out[offset + 1] = attr.value.length + 2;
    attr.value.copy(out, offset + 2);
    offset += 2 + attr.value.length;
  }
  return out;
}

/** The first attribute of `type`, if any. */
export function attribute(packet: RadiusPacket, type: number): Buffer | undefined {
  return packet.attributes.find((a) => a.type === type)?.value;
}

/** EAP-Message attributes joined in order (RFC 3579 section 3.1); undefined when none. */
export function joinEapMessage(packet: RadiusPacket): Buffer | undefined {
  const parts = packet.attributes.filter((a) => a.type === ATTR.eapMessage).map((a) => a.value);
  return parts.length === 0 ? undefined : Buffer.concat(parts);
}

/** Splits an EAP packet into EAP-Message attributes of at most 253 bytes. */
export function splitEapMessage(eap: Uint8Array): RadiusAttribute[] {
  const out: RadiusAttribute[] = [];
  const buf = Buffer.from(eap);
  for (let i = 0; i < buf.length; i += MAX_ATTRIBUTE_VALUE) out.push({ type: ATTR.eapMessage, value: buf.subarray(i, i + MAX_ATTRIBUTE_VALUE) });
  return out;
}

/** Where the Message-Authenticator attribute of a raw packet starts, or -1. */
export function messageAuthenticatorOffset(raw: Buffer): number {
  let offset = MIN_PACKET;
  while (offset + 2 <= raw.length) {
    if (raw[offset] === ATTR.messageAuthenticator) return offset;
    offset += Math.max(2, raw[offset + 1]);
  }
  return -1;
}

function hmacWithZeroedField(raw: Buffer, fieldOffset: number, secret: Buffer, authenticator?: Uint8Array): Buffer {
  const copy = Buffer.from(raw);
  copy.fill(0, fieldOffset + 2, fieldOffset + 18);
  if (authenticator) Buffer.from(authenticator).copy(copy, 4, 0, 16);
  return createHmac("md5", secret).update(copy).digest();
}

/**
 * Checks the Message-Authenticator of a received Access-Request (RFC 3579 section 3.2):
 * HMAC-MD5(secret, packet with the field zeroed). False when absent, not 16 bytes, repeated, or wrong.
 */
export function verifyMessageAuthenticator(packet: RadiusPacket, secret: Buffer): boolean {
  const all = packet.attributes.filter((a) => a.type === ATTR.messageAuthenticator);
  if (all.length !== 1 || all[0].value.length !== 16) return false;
  const offset = messageAuthenticatorOffset(packet.raw);
  if (offset < 0) return false;
  const expected = hmacWithZeroedField(packet.raw, offset, secret);
  return timingSafeEqual(expected, all[0].value);
}

/** Response Authenticator: MD5(Code + ID + Length + RequestAuth + Attributes + Secret) (RFC 2865 section 3). */
export function responseAuthenticator(raw: Buffer, requestAuthenticator: Uint8Array, secret: Buffer): Buffer {
  const copy = Buffer.from(raw);
  Buffer.from(requestAuthenticator).copy(copy, 4, 0, 16);
  return createHash("md5").update(copy).update(secret).digest();
}

/**
 * Builds a signed response: Message-Authenticator first (computed with the
 * Request Authenticator in place, RFC 3579 section 3.2), then the Response Authenticator.
 * @example signResponse(RADIUS_CODE.accessChallenge, request, secret, [...splitEapMessage(eap), { type: ATTR.state, value: state }])
 */
export function signResponse(code: number, request: RadiusPacket, secret: Buffer, attributes: RadiusAttribute[]): Buffer {
  const withMa = [{ type: ATTR.messageAuthenticator, value: Buffer.alloc(16) }, ...attributes.filter((a) => a.type !== ATTR.messageAuthenticator)];
  const packet = encodePacket(code, request.identifier, request.authenticator, withMa);
  const mac = createHmac("md5", secret).update(packet).digest();
  mac.copy(packet, MIN_PACKET + 2);
  responseAuthenticator(packet, request.authenticator, secret).copy(packet, 4);
  return packet;
}

/**
 * Builds a signed Access-Request (the client side: bench and tests): a random
 * Request Authenticator and a Message-Authenticator.
 */
export function signRequest(identifier: number, requestAuthenticator: Uint8Array, secret: Buffer, attributes: RadiusAttribute[]): Buffer {
  const withMa = [...attributes.filter((a) => a.type !== ATTR.messageAuthenticator), { type: ATTR.messageAuthenticator, value: Buffer.alloc(16) }];
  const packet = encodePacket(RADIUS_CODE.accessRequest, identifier, requestAuthenticator, withMa);
  createHmac("md5", secret).update(packet).digest().copy(packet, packet.length - 16);
  return packet;
}

/**
 * Checks a response received for `requestAuthenticator` (client side): the
 * Response Authenticator, and the Message-Authenticator when present.
 */
export function verifyResponse(response: RadiusPacket, requestAuthenticator: Uint8Array, secret: Buffer): boolean {
  const expected = responseAuthenticator(response.raw, requestAuthenticator, secret);
  if (!timingSafeEqual(expected, response.authenticator)) return false;
  const offset = messageAuthenticatorOffset(response.raw);
  if (offset < 0) return true;
  const mac = hmacWithZeroedField(response.raw, offset, secret, requestAuthenticator);
  return timingSafeEqual(mac, response.raw.subarray(offset + 2, offset + 18));
}

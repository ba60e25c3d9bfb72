/*
 * A small RADIUS client codec for the simulated access points (the NAS side):
 * RFC 2865 packets and attributes, RFC 3579 EAP-Message / Message-Authenticator
 * (HMAC-MD5), the Response Authenticator check, and RFC 2548 MS-MPPE key
 * decryption. Independent of cloud/radius on purpose: the access point and the
 * server must meet on the wire, not share code.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const RADIUS_CODE = {
  accessRequest: 1,
  accessAccept: 2,
  accessReject: 3,
  accessChallenge: 11,
} as const;

export const RADIUS_ATTR = {
  userName: 1,
  serviceType: 6,
  filterId: 11,
  framedMtu: 12,
  replyMessage: 18,
  state: 24,
  vendorSpecific: 26,
  sessionTimeout: 27,
  calledStationId: 30,
  callingStationId: 31,
  nasIdentifier: 32,
  nasPortType: 61,
  connectInfo: 77,
  eapMessage: 79,
  messageAuthenticator: 80,
} as const;

/** NAS-Port-Type Wireless - IEEE 802.11 (RFC 2865 §5.41, RFC 3580). */
export const NAS_PORT_TYPE_WIRELESS_80211 = 19;
const MICROSOFT_VENDOR = 311;
const MS_MPPE_SEND_KEY = 16;
const MS_MPPE_RECV_KEY = 17;
/** RFC 2865 §3: packets are 20..4096 bytes. */
export const RADIUS_MAX_PACKET = 4096;

export interface RadiusAttribute {
  type: number;
  value: Uint8Array;
}

export interface RadiusPacket {
  code: number;
  identifier: number;
  authenticator: Uint8Array;
  attributes: RadiusAttribute[];
}

/** A typed refusal of a malformed RADIUS packet. */
export class RadiusCodecError extends Error {
  override name = "RadiusCodecError";
}

function md5(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("md5");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

function hmacMd5(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("md5", key).update(data).digest());
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Serialises a packet as is (the caller fills the authenticator and any Message-Authenticator). */
export function encodeRadius(packet: RadiusPacket): Uint8Array {
  let length = 20;
  for (const attribute of packet.attributes) {
    if (attribute.value.length > 253) throw new RadiusCodecError(`attribute ${attribute.type} longer than 253 bytes`);
    length += 2 + attribute.value.length;
  }
  if (length > RADIUS_MAX_PACKET) throw new RadiusCodecError(`packet of ${length} bytes exceeds ${RADIUS_MAX_PACKET}`);
  const out = new Uint8Array(length);
  out[0] = packet.code;
  out[1] = packet.identifier;
  out[2] = length >> 8;
  out[3] = length & 0xff;
  out.set(packet.authenticator, 4);
  let at = 20;
  for (const attribute of packet.attributes) {
    out[at] = attribute.type;
    out[at + 1] = attribute.value.length + 2;
    out.set(attribute.value, at + 2);
    at += 2 + attribute.value.length;
  }
  return out;
}

/**
 * Parses a packet; bytes after the Length field are ignored (RFC 2865 §3).
 * @throws RadiusCodecError for a short, oversized or badly framed packet
 */
export function decodeRadius(bytes: Uint8Array): RadiusPacket {
  if (bytes.length < 20) throw new RadiusCodecError("packet shorter than 20 bytes");
  const length = (bytes[2] << 8) | bytes[3];
  if (length < 20 || length > RADIUS_MAX_PACKET || length > bytes.length) throw new RadiusCodecError(`bad length ${length}`);
  const attributes: RadiusAttribute[] = [];
  for (let at = 20; at < length;) {
    if (at + 2 > length) throw new RadiusCodecError("truncated attribute header");
    const attrLength = bytes[at + 1];
    if (attrLength < 2 || at + attrLength > length) throw new RadiusCodecError(`bad attribute length ${attrLength}`);
    attributes.push({ type: bytes[at], value: bytes.slice(at + 2, at + attrLength) });
    at += attrLength;
  }
  return { code: bytes[0], identifier: bytes[1], authenticator: bytes.slice(4, 20), attributes };
}

export function attribute(type: number, value: Uint8Array | string | number): RadiusAttribute {
  if (typeof value === "string") return { type, value: new TextEncoder().encode(value) };
  if (typeof value === "number") {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, value);
    return { type, value: bytes };
  }
  return { type, value };
}

/** WISPr (vendor 14122) WISPr-Bandwidth-Max-Up / -Max-Down, bit/s (FreeRADIUS dictionary.wispr). */
const WISPR_VENDOR = 14122;
const WISPR_BANDWIDTH_MAX_UP = 7;
const WISPR_BANDWIDTH_MAX_DOWN = 8;

/** What an Access-Accept asks the NAS to enforce for the session (RFC 2865 Filter-Id and Session-Timeout, WISPr bandwidth). */
export interface AcceptPolicy {
  filterId?: string;
  sessionTimeoutS?: number;
  maxUpBps?: number;
  maxDownBps?: number;
}

/** Reads the session policy attributes of an Access-Accept (malformed ones are ignored, as hostapd does). */
export function acceptPolicy(packet: RadiusPacket): AcceptPolicy {
  const out: AcceptPolicy = {};
  const filter = firstAttribute(packet, RADIUS_ATTR.filterId);
  if (filter && filter.length > 0) out.filterId = new TextDecoder().decode(filter);
  const timeout = firstAttribute(packet, RADIUS_ATTR.sessionTimeout);
  if (timeout && timeout.length === 4) out.sessionTimeoutS = new DataView(timeout.buffer, timeout.byteOffset, 4).getUint32(0);
  for (const a of packet.attributes) {
    if (a.type !== RADIUS_ATTR.vendorSpecific || a.value.length !== 10) continue;
    const view = new DataView(a.value.buffer, a.value.byteOffset, a.value.length);
    if (view.getUint32(0) !== WISPR_VENDOR || a.value[5] !== 6) continue;
    if (a.value[4] === WISPR_BANDWIDTH_MAX_UP) out.maxUpBps = view.getUint32(6);
    if (a.value[4] === WISPR_BANDWIDTH_MAX_DOWN) out.maxDownBps = view.getUint32(6);
  }
  return out;
}

/** Splits an EAP packet into EAP-Message attributes of at most 253 bytes (RFC 3579 §3.1). */
export function eapMessageAttributes(eap: Uint8Array): RadiusAttribute[] {
  const out: RadiusAttribute[] = [];
  for (let at = 0; at < eap.length; at += 253) out.push({ type: RADIUS_ATTR.eapMessage, value: eap.slice(at, at + 253) });
  return out;
}

/** The concatenated EAP-Message attributes, or undefined when there are none. */
export function joinEapMessage(packet: RadiusPacket): Uint8Array | undefined {
  const parts = packet.attributes.filter((a) => a.type === RADIUS_ATTR.eapMessage).map((a) => a.value);
  if (parts.length === 0) return undefined;
  return new Uint8Array(Buffer.concat(parts));
}

export function firstAttribute(packet: RadiusPacket, type: number): Uint8Array | undefined {
  return packet.attributes.find((a) => a.type === type)?.value;
}

/**
 * Encodes an Access-Request with a Message-Authenticator (RFC 3579 §3.2):
 * HMAC-MD5(secret, packet with the Message-Authenticator zeroed), the Request
 * Authenticator being the 16 random bytes given.
 */
export function encodeAccessRequest(identifier: number, requestAuthenticator: Uint8Array, attributes: RadiusAttribute[], secret: Uint8Array): Uint8Array {
  const withMa = [...attributes.filter((a) => a.type !== RADIUS_ATTR.messageAuthenticator), { type: RADIUS_ATTR.messageAuthenticator, value: new Uint8Array(16) }];
  const bytes = encodeRadius({ code: RADIUS_CODE.accessRequest, identifier, authenticator: requestAuthenticator, attributes: withMa });
  bytes.set(hmacMd5(secret, bytes), bytes.length - 16);
  return bytes;
}

/** Offset of the (first) Message-Authenticator value in an encoded packet, or -1. */
function messageAuthenticatorOffset(bytes: Uint8Array): number {
  const length = (bytes[2] << 8) | bytes[3];
  for (let at = 20; at + 2 <= length;) {
    if (bytes[at] === RADIUS_ATTR.messageAuthenticator && bytes[at + 1] === 18) return at + 2;
    if (bytes[at + 1] < 2) return -1;
    at += bytes[at + 1];
  }
  return -1;
}

/** Why an answer was discarded, or undefined when it verifies. */
export function verifyResponse(bytes: Uint8Array, requestAuthenticator: Uint8Array, secret: Uint8Array): string | undefined {
  const length = (bytes[2] << 8) | bytes[3];
  const packet = bytes.slice(0, length);
  // Response Authenticator = MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2865 §3)
  const expected = md5(packet.subarray(0, 4), requestAuthenticator, packet.subarray(20), secret);
  if (!equal(expected, packet.subarray(4, 20))) return "bad Response Authenticator";
  const maAt = messageAuthenticatorOffset(packet);
  if (maAt < 0) return "no Message-Authenticator";
  const copy = packet.slice();
  copy.set(requestAuthenticator, 4);
  copy.fill(0, maAt, maAt + 16);
  if (!equal(hmacMd5(secret, copy), packet.subarray(maAt, maAt + 16))) return "bad Message-Authenticator";
  return undefined;
}

/**
 * Decrypts an MS-MPPE-Send/Recv-Key value (RFC 2548 §2.4.2-3): Salt(2) then
 * the key-length-prefixed key, XORed with MD5(secret + RequestAuth + Salt),
 * MD5(secret + c1), ...
 */
export function decryptMppeKey(value: Uint8Array, secret: Uint8Array, requestAuthenticator: Uint8Array): Uint8Array | undefined {
  if (value.length < 2 + 16 || (value.length - 2) % 16 !== 0 || (value[0] & 0x80) === 0) return undefined;
  const salt = value.subarray(0, 2);
  const cipher = value.subarray(2);
  const plain = new Uint8Array(cipher.length);
  let previous: Uint8Array = Buffer.concat([requestAuthenticator, salt]);
  for (let at = 0; at < cipher.length; at += 16) {
    const b = md5(secret, previous);
    for (let i = 0; i < 16; i++) plain[at + i] = cipher[at + i] ^ b[i];
    previous = cipher.subarray(at, at + 16);
  }
  const keyLength = plain[0];
  if (keyLength + 1 > plain.length) return undefined;
  return plain.slice(1, 1 + keyLength);
}

/** Encrypts an MS-MPPE key (test servers; the inverse of decryptMppeKey). */
export function encryptMppeKey(key: Uint8Array, secret: Uint8Array, requestAuthenticator: Uint8Array, salt: Uint8Array): Uint8Array {
  const plainLength = Math.ceil((key.length + 1) / 16) * 16;
  const plain = new Uint8Array(plainLength);
  plain[0] = key.length;
  plain.set(key, 1);
  const cipher = new Uint8Array(plainLength);
  let previous: Uint8Array = Buffer.concat([requestAuthenticator, salt]);
  for (let at = 0; at < plainLength; at += 16) {
    const b = md5(secret, previous);
    for (let i = 0; i < 16; i++) cipher[at + i] = plain[at + i] ^ b[i];
    previous = cipher.subarray(at, at + 16);
  }
  return new Uint8Array(Buffer.concat([salt, cipher]));
}

/** The MS-MPPE-Recv-Key and -Send-Key of an Access-Accept, decrypted. */
export function mppeKeys(packet: RadiusPacket, secret: Uint8Array, requestAuthenticator: Uint8Array): { recv?: Uint8Array; send?: Uint8Array } {
  const keys: { recv?: Uint8Array; send?: Uint8Array } = {};
  for (const vsa of packet.attributes.filter((a) => a.type === RADIUS_ATTR.vendorSpecific)) {
    if (vsa.value.length < 6) continue;
    const vendor = new DataView(vsa.value.buffer, vsa.value.byteOffset).getUint32(0);
    if (vendor !== MICROSOFT_VENDOR) continue;
    // one or more sub-attributes: type(1) length(1) value
    for (let at = 4; at + 2 <= vsa.value.length;) {
      const type = vsa.value[at];
      const length = vsa.value[at + 1];
      if (length < 2 || at + length > vsa.value.length) break;
      const value = vsa.value.subarray(at + 2, at + length);
      if (type === MS_MPPE_RECV_KEY) keys.recv = decryptMppeKey(value, secret, requestAuthenticator);
      if (type === MS_MPPE_SEND_KEY) keys.send = decryptMppeKey(value, secret, requestAuthenticator);
      at += length;
    }
  }
  return keys;
}

/** A Microsoft VSA carrying an encrypted MPPE key (test servers). */
export function mppeKeyAttribute(kind: "recv" | "send", encrypted: Uint8Array): RadiusAttribute {
  const value = new Uint8Array(6 + encrypted.length);
  new DataView(value.buffer).setUint32(0, MICROSOFT_VENDOR);
  value[4] = kind === "recv" ? MS_MPPE_RECV_KEY : MS_MPPE_SEND_KEY;
  value[5] = 2 + encrypted.length;
  value.set(encrypted, 6);
  return { type: RADIUS_ATTR.vendorSpecific, value };
}

/**
 * Encodes a server answer with Message-Authenticator and Response Authenticator
 * (test servers; the AP only verifies these).
 */
export function encodeResponse(code: number, identifier: number, requestAuthenticator: Uint8Array, attributes: RadiusAttribute[], secret: Uint8Array): Uint8Array {
  const withMa = [...attributes, { type: RADIUS_ATTR.messageAuthenticator, value: new Uint8Array(16) }];
  const bytes = encodeRadius({ code, identifier, authenticator: requestAuthenticator, attributes: withMa });
  bytes.set(hmacMd5(secret, bytes), bytes.length - 16);
  bytes.set(md5(bytes.subarray(0, 4), requestAuthenticator, bytes.subarray(20), secret), 4);
  return bytes;
}

/** Checks the Message-Authenticator of an Access-Request (test servers). */
export function verifyRequest(bytes: Uint8Array, secret: Uint8Array): boolean {
  const maAt = messageAuthenticatorOffset(bytes);
  if (maAt < 0) return false;
  const copy = bytes.slice(0, (bytes[2] << 8) | bytes[3]);
  const given = copy.slice(maAt, maAt + 16);
  copy.fill(0, maAt, maAt + 16);
  return equal(hmacMd5(secret, copy), given);
}

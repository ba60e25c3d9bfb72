/*
 * MS-MPPE-Recv-Key / MS-MPPE-Send-Key (RFC 2548 section 2.4.2, vendor 311,
 * types 17 and 16): how the access point gets the MSK it needs for the 4-way
 * handshake. Each key is salt-encrypted with the NAS shared secret and the
 * Request Authenticator of the Access-Request being answered.
 * RFC 3748 / RFC 5216: Recv-Key = MSK[0..32], Send-Key = MSK[32..64].
 */
import { createHash, randomBytes } from "node:crypto";
import { ATTR, type RadiusAttribute } from "./packet";

/** Microsoft's vendor id. */
export const MICROSOFT_VENDOR_ID = 311;
/** Vendor types of the MPPE keys. */
export const MS_MPPE_SEND_KEY = 16;
export const MS_MPPE_RECV_KEY = 17;

function md5(...parts: Uint8Array[]): Buffer {
  const hash = createHash("md5");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/**
 * Encrypts one key (RFC 2548 section 2.4.2): salt (high bit set), then
 * (length byte + key + zero padding) XOR the MD5 chain seeded with secret, Request Authenticator and salt.
 */
export function encryptMppeKey(key: Uint8Array, secret: Buffer, requestAuthenticator: Uint8Array, salt: Uint8Array): Buffer {
  const plainLength = Math.ceil((key.length + 1) / 16) * 16;
  const plain = Buffer.alloc(plainLength);
  plain[0] = key.length;
  Buffer.from(key).copy(plain, 1);
  const out = Buffer.alloc(2 + plainLength);
  out[0] = salt[0] | 0x80;
  out[1] = salt[1];
  let previous: Uint8Array = Buffer.concat([Buffer.from(requestAuthenticator), out.subarray(0, 2)]);
  for (let i = 0; i < plainLength; i += 16) {
    const b = md5(secret, previous);
    for (let j = 0; j < 16; j++) out[2 + i + j] = plain[i + j] ^ b[j];
    previous = out.subarray(2 + i, 2 + i + 16);
  }
  return out;
}

/** Decrypts what encryptMppeKey made (the access point's side; tests and the bench). Undefined when malformed. */
export function decryptMppeKey(value: Uint8Array, secret: Buffer, requestAuthenticator: Uint8Array): Buffer | undefined {
  if (value.length < 18 || (value.length - 2) % 16 !== 0) return undefined;
  const cipher = Buffer.from(value.subarray(2));
  const plain = Buffer.alloc(cipher.length);
  let previous: Uint8Array = Buffer.concat([Buffer.from(requestAuthenticator), Buffer.from(value.subarray(0, 2))]);
  for (let i = 0; i < cipher.length; i += 16) {
    const b = md5(secret, previous);
    for (let j = 0; j < 16; j++) plain[i + j] = cipher[i + j] ^ b[j];
    previous = cipher.subarray(i, i + 16);
  }
  const length = plain[0];
  return length + 1 > plain.length ? undefined : plain.subarray(1, 1 + length);
}

function vendorAttribute(vendorType: number, data: Buffer): RadiusAttribute {
  const value = Buffer.alloc(6 + data.length);
  value.writeUInt32BE(MICROSOFT_VENDOR_ID, 0);
  value[4] = vendorType;
  value[5] = 2 + data.length;
  data.copy(value, 6);
  return { type: ATTR.vendorSpecific, value };
}

/**
 * The two Vendor-Specific attributes that carry a 64-byte MSK to the access point.
 * @param msk - the EAP method's MSK (64 bytes)
 * @example attrs.push(...mppeKeyAttributes(msk, nasSecret, request.authenticator))
 */
export function mppeKeyAttributes(msk: Uint8Array, secret: Buffer, requestAuthenticator: Uint8Array): RadiusAttribute[] {
  const salts = randomBytes(4);
  salts[2] = (salts[0] ^ 0x01) | 0x80; // the two salts must differ
  salts[0] |= 0x80;
  if ((salts[2] & 0x7f) === (salts[0] & 0x7f) && salts[3] === salts[1]) salts[3] ^= 1;
  return [
    vendorAttribute(MS_MPPE_RECV_KEY, encryptMppeKey(msk.subarray(0, 32), secret, requestAuthenticator, salts.subarray(0, 2))),
    vendorAttribute(MS_MPPE_SEND_KEY, encryptMppeKey(msk.subarray(32, 64), secret, requestAuthenticator, salts.subarray(2, 4))),
  ];
}

/** Reads and decrypts the MPPE keys of an Access-Accept (client side). */
export function readMppeKeys(attributes: RadiusAttribute[], secret: Buffer, requestAuthenticator: Uint8Array): { recv?: Buffer; send?: Buffer } {
  const out: { recv?: Buffer; send?: Buffer } = {};
  for (const attr of attributes) {
    if (attr.type !== ATTR.vendorSpecific || attr.value.length < 8 || attr.value.readUInt32BE(0) !== MICROSOFT_VENDOR_ID) continue;
    const type = attr.value[4];
    const data = attr.value.subarray(6, 4 + attr.value[5]);
    if (type === MS_MPPE_RECV_KEY) out.recv = decryptMppeKey(data, secret, requestAuthenticator);
    if (type === MS_MPPE_SEND_KEY) out.send = decryptMppeKey(data, secret, requestAuthenticator);
  }
  return out;
}

/*
 * The onboarding PAKE: CPace (draft-irtf-cfrg-cpace) over P-256 with x-only
 * shares, and the encrypted channel keyed by it (docs/protocol.md 15.3).
 *
 *   G      = encode_to_curve(lv("wcm-v1 cpace-p256") lv(code) lv(deviceId) lv(sid),
 *                            DST "wcm-v1-onboard-P256_XMD:SHA-256_SSWU_NU_")     (RFC 9380)
 *   Ya     = x(ya * G), Yb = x(yb * G)                          (32 bytes each; ya, yb fresh)
 *   K      = x(yb * lift(Ya)) = x(ya * lift(Yb))                (lift: the even-y point, on-curve check)
 *   keys   = HKDF-SHA256(ikm = K, salt = sid,
 *                        info = "wcm-v1 onboard-keys" 0x00 deviceId 0x00 Ya Yb, L = 64)
 *          = kDevice(16) kClient(16) c2s(16) s2c(16)
 *   tagB   = HMAC-SHA256(kDevice, "wcm-v1 onboard-confirm" 0x00 "device")
 *   tagA   = HMAC-SHA256(kClient, "wcm-v1 onboard-confirm" 0x00 "client")
 *   call n = AES-128-GCM(key = c2s | s2c, iv = dir || 0^7 || u32be(n), aad = "wcm-v1 onboard-call" 0x00 sid)
 *
 * The scalar multiplications go through the host's SealPort (native on
 * Moddable); the core checks every share is on the curve before it is used.
 * Nothing here depends on which side calls it: device and owner's client share it.
 *
 * The P-256 field arithmetic beside the SealPort (which only multiplies points):
 * RFC 9380 encode_to_curve for the suite P256_XMD:SHA-256_SSWU_NU_
 * (expand_message_xmd over the DigestPort for the 48 bytes of one field
 * element, the simplified SWU map, cofactor 1), and the lift of an x coordinate
 * to a point (the even y), which checks that a peer's x is on the curve before
 * any scalar multiplication. BigInt, not constant-time: the inputs are public
 * (the generator is derived from the label code, but each handshake leaks at
 * most one timing trace of a hash of it, and the code is already bounded by the
 * attempt limit). Three field exponentiations per encode, one per lift.
 */
import { concatBytes, constantTimeEqual, fromHex, toHex, utf8Encode } from "../bytes";
import { labelled } from "../derive";
import type { DigestPort, SealPort } from "../ports";
import { hkdfSha256, newSealSecretKey } from "../seal";

/** The PAKE's name in `GET /v1/info`. */
export const ONBOARD_PAKE = "cpace-p256-v1";
/** Domain separation tag of the generator. */
export const ONBOARD_DST = "wcm-v1-onboard-P256_XMD:SHA-256_SSWU_NU_";
/** Bytes of a session id (chosen by the client). */
export const SID_BYTES = 16;

/** The keys one handshake gives both sides. */
export interface OnboardKeys {
  /** the device's confirmation (sent with its share) */
  deviceTag: Uint8Array;
  /** the client's confirmation */
  clientTag: Uint8Array;
  /** AES-128 key, client to device */
  c2s: Uint8Array;
  /** AES-128 key, device to client */
  s2c: Uint8Array;
}

/** Which way a call travels (the first byte of its IV). */
export type CallDirection = "c2s" | "s2c";

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
/** a = -3; RFC 9380 8.2: Z = -10 for P-256. */
const A = P - 3n;
const Z = P - 10n;

const mod = (a: bigint) => ((a % P) + P) % P;

const pow = (base: bigint, exponent: bigint) => {
  let result = 1n;
  for (let b = mod(base), e = exponent; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) result = (result * b) % P;
  return result;
};

const inv0 = (a: bigint) => pow(a, P - 2n);
const rhs = (x: bigint) => mod(x * x * x + A * x + B);

/** A square root mod p (p = 3 mod 4), or undefined when `a` is not a square. */
const sqrt = (a: bigint) => {
  const r = pow(a, (P + 1n) >> 2n);
  return (r * r) % P === mod(a) ? r : undefined;
};

const hex32 = (n: bigint) => n.toString(16).padStart(64, "0");

/** The uncompressed point (x, y), 65 bytes. */
const point = (x: bigint, y: bigint) => fromHex(`04${hex32(x)}${hex32(y)}`);

/**
 * RFC 9380 encode_to_curve, suite P256_XMD:SHA-256_SSWU_NU_: an uncompressed
 * point (65 bytes) that nobody knows the discrete logarithm of.
 * @param dst - the domain separation tag (at most 255 bytes)
 */
export function encodeToP256(digest: DigestPort, msg: Uint8Array, dst: string): Uint8Array {
  // 5.3.1 expand_message_xmd, 48 bytes (ell = 2): b1 || b2[0:16]
  const tag = utf8Encode(dst);
  if (tag.length > 255) throw new RangeError("DST over 255 bytes");
  const dstPrime = concatBytes(tag, Uint8Array.of(tag.length));
  const b0 = digest.sha256(concatBytes(new Uint8Array(64), msg, Uint8Array.of(0, 48, 0), dstPrime));
  const b1 = digest.sha256(concatBytes(b0, Uint8Array.of(1), dstPrime));
  const b2 = digest.sha256(concatBytes(b0.map((v, i) => v ^ b1[i]), Uint8Array.of(2), dstPrime));
  // 5.2 hash_to_field (one element), then 6.6.2 simplified SWU
  const u = BigInt(`0x${toHex(b1)}${toHex(b2.subarray(0, 16))}`) % P;
  const zu2 = (Z * u * u) % P;
  const tv1 = inv0(zu2 * zu2 + zu2);
  const x1 = tv1 ? mod((P - B) * inv0(A) * (1n + tv1)) : (B * inv0(Z * A)) % P;
  let x = x1;
  let y = sqrt(rhs(x1));
  if (y === undefined) {
    x = (zu2 * x1) % P;
    y = sqrt(rhs(x)) as bigint;
  }
  return point(x, (u & 1n) === (y & 1n) ? y : mod(-y));
}

/**
 * The point with x coordinate `x` (32 bytes big-endian) and an even y, as an
 * uncompressed key (65 bytes); undefined when x >= p or x is not on the curve.
 * (x, y) and (x, -y) give the same x coordinate after any scalar
 * multiplication, so x alone identifies a share.
 */
export function liftX(x: Uint8Array): Uint8Array | undefined {
  if (x.length !== 32) return undefined;
  const n = BigInt(`0x${toHex(x)}`);
  const y = n < P ? sqrt(rhs(n)) : undefined;
  return y === undefined ? undefined : point(n, y & 1n ? P - y : y);
}

const lv = (bytes: Uint8Array) => concatBytes(Uint8Array.of(bytes.length), bytes);

/** The password-derived generator of one handshake (65-byte point). */
export function cpaceGenerator(digest: DigestPort, code: string, deviceId: string, sid: Uint8Array): Uint8Array {
  return encodeToP256(digest, concatBytes(lv(utf8Encode("wcm-v1 cpace-p256")), lv(utf8Encode(code)), lv(utf8Encode(deviceId)), lv(sid)), ONBOARD_DST);
}

/** A fresh secret scalar and its share x(y * G). */
export function cpaceShare(seal: SealPort, generator: Uint8Array, random: (length: number) => Uint8Array): { scalar: Uint8Array; share: Uint8Array } {
  const scalar = newSealSecretKey(random);
  return { scalar, share: seal.p256SharedSecret(scalar, generator) };
}

/**
 * Both sides' keys from one's scalar and the other's share.
 * @returns undefined when the peer's share is not the x of a curve point or equals ours (a reflection)
 */
export function cpaceKeys(
  digest: DigestPort,
  seal: SealPort,
  deviceId: string,
  sid: Uint8Array,
  scalar: Uint8Array,
  clientShare: Uint8Array,
  deviceShare: Uint8Array,
  peerShare: Uint8Array,
): OnboardKeys | undefined {
  const peer = liftX(peerShare);
  if (!peer || constantTimeEqual(clientShare, deviceShare)) return undefined;
  let k: Uint8Array;
  try {
    k = seal.p256SharedSecret(scalar, peer);
  } catch {
    return undefined;
  }
  const okm = hkdfSha256(digest, k, sid, labelled("wcm-v1 onboard-keys", deviceId, concatBytes(clientShare, deviceShare)), 64);
  const tag = (from: number, who: string) => digest.hmacSha256(okm.slice(from, from + 16), labelled("wcm-v1 onboard-confirm", who));
  return { deviceTag: tag(0, "device"), clientTag: tag(16, "client"), c2s: okm.slice(32, 48), s2c: okm.slice(48, 64) };
}

/**
 * AES-128-GCM of call number `n` (1..2^31-1) of a session: seals (`open` false)
 * or opens it; an opened call is undefined when it was changed, is for another
 * session, direction or number.
 */
function callCipher(seal: SealPort, keys: OnboardKeys, direction: CallDirection, sid: Uint8Array, n: number, data: Uint8Array, open: boolean): Uint8Array | undefined {
  const iv = new Uint8Array(12);
  iv[0] = direction === "c2s" ? 1 : 2;
  new DataView(iv.buffer).setUint32(8, n);
  const key = keys[direction];
  const aad = labelled("wcm-v1 onboard-call", sid);
  return open ? seal.aesGcmOpen(key, iv, aad, data) : seal.aesGcmSeal(key, iv, aad, data);
}

/** Encrypts call number `n` (1..2^31-1) of a session. */
export function sealCall(seal: SealPort, keys: OnboardKeys, direction: CallDirection, sid: Uint8Array, n: number, plaintext: Uint8Array): Uint8Array {
  return callCipher(seal, keys, direction, sid, n, plaintext, false)!;
}

/** Decrypts call number `n`; undefined when it was changed, is for another session, direction or number. */
export function openCall(seal: SealPort, keys: OnboardKeys, direction: CallDirection, sid: Uint8Array, n: number, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < 16) return undefined;
  try {
    return callCipher(seal, keys, direction, sid, n, sealed, true);
  } catch {
    return undefined;
  }
}

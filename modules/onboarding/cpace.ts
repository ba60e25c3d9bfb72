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
 */
import { concatBytes, constantTimeEqual, utf8Encode } from "../bytes";
import { labelled } from "../derive";
import type { DigestPort, SealPort } from "../ports";
import { hkdfSha256, newSealSecretKey } from "../seal";
import { encodeToP256, liftX } from "./p256-map";

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

const lv = (bytes: Uint8Array) => concatBytes(Uint8Array.of(bytes.length), bytes);

/** The password-derived generator of one handshake (65-byte point). */
export function cpaceGenerator(digest: DigestPort, code: string, deviceId: string, sid: Uint8Array): Uint8Array {
  const msg = concatBytes(lv(utf8Encode("wcm-v1 cpace-p256")), lv(utf8Encode(code)), lv(utf8Encode(deviceId)), lv(sid));
  return encodeToP256(digest, msg, ONBOARD_DST);
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
  if (constantTimeEqual(clientShare, deviceShare)) return undefined;
  const peer = liftX(peerShare);
  if (!peer) return undefined;
  let k: Uint8Array;
  try {
    k = seal.p256SharedSecret(scalar, peer);
  } catch {
    return undefined;
  }
  const okm = hkdfSha256(digest, k, sid, concatBytes(labelled("wcm-v1 onboard-keys", deviceId), Uint8Array.of(0), clientShare, deviceShare), 64);
  const kDevice = okm.slice(0, 16);
  const kClient = okm.slice(16, 32);
  return {
    deviceTag: digest.hmacSha256(kDevice, labelled("wcm-v1 onboard-confirm", "device")),
    clientTag: digest.hmacSha256(kClient, labelled("wcm-v1 onboard-confirm", "client")),
    c2s: okm.slice(32, 48),
    s2c: okm.slice(48, 64),
  };
}

function callIv(direction: CallDirection, n: number): Uint8Array {
  const iv = new Uint8Array(12);
  iv[0] = direction === "c2s" ? 1 : 2;
  iv[8] = (n >>> 24) & 255;
  iv[9] = (n >>> 16) & 255;
  iv[10] = (n >>> 8) & 255;
  iv[11] = n & 255;
  return iv;
}

/** Encrypts call number `n` (1..2^31-1) of a session. */
export function sealCall(seal: SealPort, keys: OnboardKeys, direction: CallDirection, sid: Uint8Array, n: number, plaintext: Uint8Array): Uint8Array {
  return seal.aesGcmSeal(direction === "c2s" ? keys.c2s : keys.s2c, callIv(direction, n), labelled("wcm-v1 onboard-call", sid), plaintext);
}

/** Decrypts call number `n`; undefined when it was changed, is for another session, direction or number. */
export function openCall(seal: SealPort, keys: OnboardKeys, direction: CallDirection, sid: Uint8Array, n: number, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < 16) return undefined;
  try {
    return seal.aesGcmOpen(direction === "c2s" ? keys.c2s : keys.s2c, callIv(direction, n), labelled("wcm-v1 onboard-call", sid), sealed);
  } catch {
    return undefined;
  }
}

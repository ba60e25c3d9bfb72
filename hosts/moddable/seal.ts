/*
 * The core's SealPort on the Moddable SDK (lin simulator and ESP32 alike), all
 * native work the firmware already ships for TLS (crypt/tls.json):
 * - P-256 ECDH: etc/curve.js over arith/ec.c (the core checked the peer's
 *   point is on the curve: curve.js does not);
 * - AES-128-GCM: etc/gcm.js over the native AES block cipher, CTR mode and GHASH.
 */
import { BlockCipher } from "crypt";
import Curve from "curve";
import GCM from "gcm";
import type { SealPort } from "wcm/ports";

const p256 = new Curve("secp256r1");

const buffer = (bytes: Uint8Array) => bytes.slice().buffer as ArrayBuffer;

const gcm = (key: Uint8Array) => new GCM(new BlockCipher("AES", buffer(key)));

/** P-256 ECDH and AES-128-GCM on the SDK's native crypto. */
export const nativeSeal: SealPort = {
  p256PublicKey: (secretKey) => new Uint8Array(p256.dh(buffer(secretKey))),
  p256SharedSecret: (secretKey, publicKey) => new Uint8Array(p256.Z(p256.dh(buffer(secretKey), buffer(publicKey)))),
  aesGcmSeal: (key, iv, aad, plaintext) => new Uint8Array(gcm(key).process(buffer(plaintext), null, buffer(iv), buffer(aad), true) as ArrayBuffer),
  aesGcmOpen(key, iv, aad, sealed) {
    if (sealed.length < 16) return undefined;
    const data = sealed.slice();
    const opened = gcm(key).process(data, data, buffer(iv), buffer(aad), false);
    // opened is a view of `data` (gcm.js decrypts in place): new Uint8Array copies it out
    return opened && new Uint8Array(opened as Uint8Array);
  },
};

/*
 * SealPort on node:crypto (OpenSSL): P-256 ECDH and AES-128-GCM, for the cloud
 * and the Node device host. Same bytes as modules/js-seal.ts.
 */
import { createCipheriv, createDecipheriv, createECDH } from "node:crypto";
import type { SealPort } from "../../modules/ports";

/** The node:crypto implementation of SealPort. */
export const nodeSeal: SealPort = {
  p256PublicKey(secretKey) {
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(secretKey);
    return Uint8Array.from(ecdh.getPublicKey());
  },
  p256SharedSecret(secretKey, publicKey) {
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(secretKey);
    return Uint8Array.from(ecdh.computeSecret(publicKey));
  },
  aesGcmSeal(key, iv, aad, plaintext) {
    const cipher = createCipheriv("aes-128-gcm", key, iv);
    cipher.setAAD(aad);
    const out = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return Uint8Array.from(out);
  },
  aesGcmOpen(key, iv, aad, sealed) {
    if (sealed.length < 16) return undefined;
    try {
      const decipher = createDecipheriv("aes-128-gcm", key, iv);
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      return Uint8Array.from(Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]));
    } catch {
      return undefined;
    }
  },
};

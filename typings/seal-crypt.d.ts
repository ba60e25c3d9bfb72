/*
 * Typings for the parts of the Moddable SDK's crypt modules that
 * hosts/moddable/seal.ts uses (SDK 8.2.3 ships typings for Digest only):
 * etc/curve.js (ECDH over arith/ec.c), etc/gcm.js (AES-GCM over the native
 * CTR mode and GHASH) and the native BlockCipher. Written from the sources.
 */
declare module "crypt" {
  /** A native block cipher: "AES" (16, 24 or 32-byte key), "DES", "TDES". */
  export class BlockCipher {
    constructor(name: "AES" | "DES" | "TDES", key: ArrayBuffer);
    get blockSize(): number;
    encrypt(data: ArrayBuffer, out?: ArrayBuffer): ArrayBuffer;
  }
}

declare module "curve" {
  /** ECDH on a named curve: dh(x) = x * G, dh(x, P) = x * P, points uncompressed (0x04 || X || Y). */
  export default class Curve {
    constructor(name: "secp256r1" | "secp384r1");
    /** x: the secret scalar, big-endian; P: the peer's point. Does not check that P is on the curve. */
    dh(x: ArrayBuffer, P?: ArrayBuffer): ArrayBuffer;
    /** the X coordinate of a point made by dh() */
    Z(P: ArrayBuffer): ArrayBuffer;
  }
}

declare module "gcm" {
  import type { BlockCipher } from "crypt";
  /** AES-GCM (NIST SP 800-38D) over a block cipher, with a `tagLength`-byte tag. */
  export default class GCM {
    constructor(cipher: BlockCipher, tagLength?: number);
    /**
     * encFlag true: returns ciphertext || tag (data and iv as ArrayBuffers);
     * false: data is ciphertext || tag (a Uint8Array), returns the plaintext, or undefined when the tag does not verify.
     */
    process(data: ArrayBuffer | Uint8Array, buf: ArrayBuffer | Uint8Array | null | undefined, iv: ArrayBuffer, aad: ArrayBuffer, encFlag: boolean): ArrayBuffer | Uint8Array | undefined;
  }
}

/*
 * Encryption at rest: AES-256-GCM under the master key.
 *
 * A sealed blob is `0x01 | iv (12) | ciphertext | tag (16)`. The additional data
 * names the row and the purpose (for example `device:lamp-1:secret`), so a
 * ciphertext copied to another row or column does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { CloudError } from "./errors";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Seals and opens secrets under one master key. */
export class SecretBox {
  readonly #key: Buffer;

  /** @param masterKey - 32 bytes */
  constructor(masterKey: Uint8Array) {
    if (masterKey.length !== 32) throw new CloudError("MASTER_KEY_INVALID", "master key must be 32 bytes");
    this.#key = Buffer.from(masterKey);
  }

  /** Encrypts `plaintext` bound to `aad`. */
  seal(plaintext: Uint8Array, aad: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(Buffer.from(aad, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]);
  }

  /**
   * Decrypts a blob made by seal() with the same `aad`.
   * @throws CloudError MASTER_KEY_WRONG when it does not authenticate (wrong key, moved or tampered blob)
   */
  open(blob: Uint8Array, aad: string): Uint8Array {
    if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== VERSION) {
      throw new CloudError("MASTER_KEY_WRONG", `sealed value for ${aad} is malformed`);
    }
    const iv = blob.subarray(1, 1 + IV_BYTES);
    const tag = blob.subarray(blob.length - TAG_BYTES);
    const body = blob.subarray(1 + IV_BYTES, blob.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, iv);
      decipher.setAAD(Buffer.from(aad, "utf8"));
      decipher.setAuthTag(tag);
      return Uint8Array.from(Buffer.concat([decipher.update(body), decipher.final()]));
    } catch {
      throw new CloudError("MASTER_KEY_WRONG", `sealed value for ${aad} does not open under this master key`);
    }
  }
}

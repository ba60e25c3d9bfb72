/*
 * Loading the 32-byte master key that encrypts every secret the cloud stores.
 *
 * Sources, first match wins: an explicit key (tests, embedding), a key file
 * (`masterKeyFile`, `--master-key-file`), the environment variable
 * WCM_MASTER_KEY. Text sources hold exactly 64 hex digits (surrounding
 * whitespace allowed). A missing or malformed key is a CloudError at start-up;
 * so is a key file that group or others may read or write (FILE_INSECURE).
 */
import { readFileSync } from "node:fs";
import { createHmac, randomBytes } from "node:crypto";
import { CloudError } from "./errors";
import { assertOwnerOnly } from "./owner-files";

/** Where the master key may come from. */
export interface MasterKeySource {
  masterKey?: Uint8Array;
  masterKeyFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** Parses 64 hex digits into a key; throws MASTER_KEY_INVALID otherwise. */
export function parseMasterKey(text: string, origin: string): Uint8Array {
  const trimmed = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    throw new CloudError("MASTER_KEY_INVALID", `${origin} must hold exactly 64 hex digits (32 bytes)`);
  }
  return Uint8Array.from(Buffer.from(trimmed, "hex"));
}

/**
 * Returns the master key.
 * @throws CloudError MASTER_KEY_MISSING when no source gives one, MASTER_KEY_INVALID when it is malformed
 * @example loadMasterKey({ env: process.env })
 */
export function loadMasterKey(source: MasterKeySource): Uint8Array {
  if (source.masterKey !== undefined) {
    if (!(source.masterKey instanceof Uint8Array) || source.masterKey.length !== 32) {
      throw new CloudError("MASTER_KEY_INVALID", "masterKey must be 32 bytes");
    }
    return Uint8Array.from(source.masterKey);
  }
  if (source.masterKeyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.masterKeyFile, "utf8");
    } catch {
      throw new CloudError("MASTER_KEY_MISSING", `cannot read the master key file ${source.masterKeyFile}`);
    }
    assertOwnerOnly(source.masterKeyFile, "the master key file");
    if (text.length > 1024) throw new CloudError("MASTER_KEY_INVALID", "the master key file is too large");
    return parseMasterKey(text, "the master key file");
  }
  const fromEnv = (source.env ?? process.env).WCM_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== "") return parseMasterKey(fromEnv, "WCM_MASTER_KEY");
  throw new CloudError("MASTER_KEY_MISSING", "set WCM_MASTER_KEY (64 hex digits) or pass a master key file");
}

/** A fresh random master key as 64 hex digits (for `cli.ts gen-master-key`). */
export function generateMasterKeyHex(): string {
  return randomBytes(32).toString("hex");
}

/** A short public name of a master key (HMAC-SHA256 under the key, 8 bytes as hex): tells two keys apart, reveals nothing of either. */
export function keyFingerprint(key: Uint8Array): string {
  return createHmac("sha256", key).update("wcm master key fingerprint v1").digest("hex").slice(0, 16);
}

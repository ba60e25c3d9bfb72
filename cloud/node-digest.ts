/*
 * DigestPort backed by node:crypto (OpenSSL), for the cloud's derivations.
 * Gives the same bytes as modules/noble-digest.ts; faster under login load.
 */
import { createHash, createHmac } from "node:crypto";
import type { DigestPort } from "../modules/ports";

/** The node:crypto implementation of DigestPort. */
export const nodeDigest: DigestPort = {
  sha256: (data) => Uint8Array.from(createHash("sha256").update(data).digest()),
  hmacSha256: (key, data) => Uint8Array.from(createHmac("sha256", key).update(data).digest()),
};

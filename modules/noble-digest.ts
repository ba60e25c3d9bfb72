/*
 * DigestPort backed by @noble/hashes (pure JavaScript, runs on XS and Node).
 *
 * Hosts with native SHA-256 (Moddable's crypt Digest) may supply their own port;
 * the derivation test vectors in docs/protocol.md hold for both.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hmac } from "@noble/hashes/hmac.js";
import type { DigestPort } from "./ports";

/** The @noble/hashes implementation of DigestPort. */
export const nobleDigest: DigestPort = {
  sha256: (data) => sha256(data),
  hmacSha256: (key, data) => hmac(sha256, key, data),
};

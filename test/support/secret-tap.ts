/*
 * The secret tap of test/logs-no-secrets.test.ts: loaded with `--import` into
 * a process (the demo, a mocha run of part of the suite) when env
 * WCM_SECRET_TAP_FILE names a file. It records every random value of 12 bytes
 * or more that the process draws (node:crypto randomBytes, randomFillSync,
 * webcrypto getRandomValues: device secrets, lot provisioning keys, master
 * keys, admin tokens, ticket keys, seal keys), and whatever the test helpers
 * hand to recordSecret() (temporary secrets they derive), and appends them as
 * hex lines to that file when the process exits. The test then searches the
 * logs for each, and for the keys derived from each.
 *
 * Test-only: nothing under cloud/ or modules/ imports it.
 */
import { appendFileSync } from "node:fs";
import crypto from "node:crypto";
import { syncBuiltinESMExports } from "node:module";

/** Smallest random draw recorded (shorter ones are nonces and counters, and would match by chance). */
const MIN_BYTES = 12;
const file = process.env.WCM_SECRET_TAP_FILE;
const seen = new Set<string>();

/** Records one secret value (no-op unless the tap is on). */
export function recordSecret(bytes: Uint8Array | string): void {
  if (!file) return;
  const hex = typeof bytes === "string" ? Buffer.from(bytes, "utf8").toString("hex") : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
  if (hex.length >= MIN_BYTES * 2 || typeof bytes === "string") seen.add(`${typeof bytes === "string" ? "text" : "bytes"} ${hex}`);
}

function view(value: unknown): Uint8Array | undefined {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

if (file) {
  const randomBytes = crypto.randomBytes;
  const randomFillSync = crypto.randomFillSync;
  const patched = ((size: number, callback?: (error: Error | null, buf: Buffer) => void) => {
    if (callback) return randomBytes(size, (error, buf) => {
      if (!error && buf.length >= MIN_BYTES) recordSecret(buf);
      callback(error, buf);
    });
    const buf = randomBytes(size);
    if (buf.length >= MIN_BYTES) recordSecret(buf);
    return buf;
  }) as typeof crypto.randomBytes;
  crypto.randomBytes = patched;
  crypto.randomFillSync = (<T extends NodeJS.ArrayBufferView>(buffer: T, offset?: number, size?: number): T => {
    const out = randomFillSync(buffer, offset, size);
    const bytes = view(out);
    if (bytes && bytes.length >= MIN_BYTES) recordSecret(bytes);
    return out;
  }) as typeof crypto.randomFillSync;
  const web = globalThis.crypto;
  const getRandomValues = web.getRandomValues.bind(web);
  web.getRandomValues = (<T extends ArrayBufferView | null>(array: T): T => {
    const out = getRandomValues(array as never) as T;
    const bytes = view(out);
    if (bytes && bytes.length >= MIN_BYTES) recordSecret(bytes);
    return out;
  }) as typeof web.getRandomValues;
  syncBuiltinESMExports();
  process.on("exit", () => {
    if (seen.size > 0) appendFileSync(file, `${[...seen].join("\n")}\n`);
  });
}

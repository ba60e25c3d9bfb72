/*
 * The secret tap of the log scan (test/support/log-scan.ts): once installed in
 * a process it records every random value of 12 bytes or more that the
 * process draws (node:crypto randomBytes, randomFillSync, webcrypto
 * getRandomValues: device secrets, lot provisioning keys, master keys, admin
 * tokens, ticket keys, seal keys), each with the code that drew it (its call
 * site: file and function), and whatever the test helpers hand to
 * recordSecret() (temporary secrets they derive).
 *
 * Installed two ways: by the suite's root hook (test/support/log-scan-hooks.ts,
 * loaded by .mocharc.json for every `npm test` run) in the mocha process, read
 * in memory with tapRecords(); or by `--import` into a child process (the demo)
 * when env WCM_SECRET_TAP_FILE names a file, which gets the records as lines
 * `<kind> <hex> <site>` when the process exits.
 *
 * Test-only: nothing under cloud/ or modules/ imports it.
 */
import { appendFileSync } from "node:fs";
import crypto from "node:crypto";
import { syncBuiltinESMExports } from "node:module";
import { fileURLToPath } from "node:url";

/** Smallest random draw recorded (shorter ones are nonces and counters, and would match by chance). */
const MIN_BYTES = 12;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);

/** One recorded value: random bytes the process drew, or a text secret a helper handed over. */
export interface TapRecord {
  kind: "bytes" | "text";
  hex: string;
  /** where it was drawn: `path/in/repo.ts:function` (or `?` when the stack says nothing) */
  site: string;
}

const seen = new Map<string, TapRecord>();
let installed = false;

/** The caller of the random source: the first stack frame outside this file and node's own modules. */
function callSite(): string {
  const stack = new Error().stack?.split("\n").slice(1) ?? [];
  for (const frame of stack) {
    const m = /at (?:(.*?) \()?(?:file:\/\/)?([^()]+?):\d+:\d+\)?$/.exec(frame.trim());
    if (!m) continue;
    const file = m[2];
    if (file === THIS_FILE || file.startsWith("node:") || !file.startsWith("/")) continue;
    const where = file.startsWith(ROOT) ? file.slice(ROOT.length) : file;
    return `${where}:${(m[1] ?? "<anonymous>").replace(/^async /, "").replace(/\s+/g, "")}`;
  }
  return "?";
}

/** Records one secret value (no-op unless the tap is installed). */
export function recordSecret(bytes: Uint8Array | string, site = callSite()): void {
  if (!installed) return;
  const kind = typeof bytes === "string" ? "text" : "bytes";
  const hex = typeof bytes === "string" ? Buffer.from(bytes, "utf8").toString("hex") : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
  if (kind === "bytes" && hex.length < MIN_BYTES * 2) return;
  const key = `${kind} ${hex}`;
  if (!seen.has(key)) seen.set(key, { kind, hex, site });
}

/** Everything recorded so far. */
export function tapRecords(): TapRecord[] {
  return [...seen.values()];
}

/** Whether the tap is installed in this process. */
export function tapInstalled(): boolean {
  return installed;
}

function view(value: unknown): Uint8Array | undefined {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return undefined;
}

/** Wraps the process's random sources so each draw of MIN_BYTES or more is recorded (idempotent). */
export function installSecretTap(): void {
  if (installed) return;
  installed = true;
  const randomBytes = crypto.randomBytes;
  const randomFillSync = crypto.randomFillSync;
  const patched = ((size: number, callback?: (error: Error | null, buf: Buffer) => void) => {
    if (callback) {
      const site = callSite();
      return randomBytes(size, (error, buf) => {
        if (!error && buf.length >= MIN_BYTES) recordSecret(buf, site);
        callback(error, buf);
      });
    }
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
}

const file = process.env.WCM_SECRET_TAP_FILE;
if (file) {
  installSecretTap();
  process.on("exit", () => {
    if (seen.size > 0) appendFileSync(file, `${tapRecords().map((r) => `${r.kind} ${r.hex} ${r.site}`).join("\n")}\n`);
  });
}

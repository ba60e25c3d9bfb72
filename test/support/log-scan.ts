/*
 * The log scan of issue 9 item 5: no secret material in any log line. From the
 * secret tap's records (test/support/secret-tap.ts) it builds the secrets to
 * look for: each random value the process drew, and for a 32-byte one the keys
 * derived from it (cloud login key, wrap key, resumption key; with device ids
 * given, the devices' temporary secrets, their login keys and their hotspot
 * passwords), plus the text secrets the helpers recorded and the Wi-Fi
 * password literals of the test files. findSecrets() then searches a log for
 * each in hex (both cases), base64 and base64url at the three alignments, so a
 * value inside a longer encoded blob is found too.
 *
 * Random values that are public by construction are not secrets and are left
 * out by the code that drew them (PUBLIC_DRAWS: a call site and why), never by
 * value: a secret drawn anywhere else is still searched for.
 *
 * Used by the suite's root hook (test/support/log-scan-hooks.ts) and by
 * test/logs-no-secrets.test.ts (the demo, planted values).
 */
import { readFileSync } from "node:fs";
import { deriveCloudLoginKey, deriveHotspotPassword, deriveTemporarySecret, deriveWrapKey } from "../../modules/derive";
import { nobleDigest } from "../../modules/noble-digest";
import { resumptionKey } from "../../cloud/tls-store-sqlite";
import type { TapRecord } from "./secret-tap";

/** shortest needle: 12 base64 characters (72 bits) cannot match by chance */
const WINDOW = 12;

/**
 * Random draws that are not secret material, by the code that draws them. Each entry names one
 * function; everything else any code draws stays a secret.
 */
export const PUBLIC_DRAWS: readonly { site: string; why: string }[] = [
  // 16 random bytes per certificate (cloud/pki.ts serial()): the serial is in the certificate every
  // TLS peer receives, and revocation lines name it (CERT_REVOKED ... crl serial <hex>) so an operator can act on it
  { site: "cloud/pki.ts:serial", why: "X.509 serial number: public, in the certificate itself" },
];

/** A secret and what it is, for the failure message (never the value). */
export interface Secret { what: string; bytes: Uint8Array; text?: string }

/** Every string a secret may be logged as: hex (both cases), base64 and base64url at the three alignments, and the text itself. */
export function needles(secret: Secret): string[] {
  const b = Buffer.from(secret.bytes);
  const out = new Set<string>([b.toString("hex"), b.toString("hex").toUpperCase()]);
  for (let shift = 0; shift < 3; shift++) {
    const whole = b.subarray(shift, shift + Math.floor((b.length - shift) / 3) * 3);
    if (whole.length * 4 / 3 < WINDOW) continue;
    out.add(whole.toString("base64"));
    out.add(whole.toString("base64url"));
  }
  if (secret.text !== undefined) out.add(secret.text);
  return [...out].filter((n) => n.length >= WINDOW);
}

/**
 * The secrets found in `text`: every needle indexed by its first WINDOW characters, each
 * WINDOW-long piece of the text's encoded runs looked up there, a hit then confirmed whole
 * (memory grows with the secrets, not with the text: the whole suite logs megabytes).
 */
export function findSecrets(text: string, secrets: Secret[]): string[] {
  const byPrefix = new Map<string, { secret: Secret; needle: string }[]>();
  const found = new Set<Secret>();
  for (const secret of secrets) {
    for (const needle of needles(secret)) {
      if (!/^[A-Za-z0-9+/=_-]+$/.test(needle)) {
        if (text.includes(needle)) found.add(secret);
        continue;
      }
      const prefix = needle.slice(0, WINDOW);
      const list = byPrefix.get(prefix) ?? [];
      list.push({ secret, needle });
      byPrefix.set(prefix, list);
    }
  }
  for (const run of text.match(/[A-Za-z0-9+/=_-]{12,}/g) ?? []) {
    for (let i = 0; i + WINDOW <= run.length; i++) {
      for (const hit of byPrefix.get(run.slice(i, i + WINDOW)) ?? []) {
        if (run.startsWith(hit.needle, i)) found.add(hit.secret);
      }
    }
  }
  return secrets.filter((secret) => found.has(secret)).map((secret) => `${secret.what} (as ${needles(secret)[0]!.length}+ characters)`);
}

/** Whether a record was drawn by a PUBLIC_DRAWS site. */
export function isPublicDraw(record: TapRecord): boolean {
  return record.kind === "bytes" && PUBLIC_DRAWS.some((p) => record.site === p.site);
}

/** The secrets of the tap's records (public draws left out), and the keys derived from each (with `deviceIds`' when given). */
export function secretsOf(records: TapRecord[], deviceIds: string[] = []): Secret[] {
  const out: Secret[] = [];
  for (const record of records) {
    if (isPublicDraw(record)) continue;
    const bytes = Uint8Array.from(Buffer.from(record.hex, "hex"));
    if (record.kind === "text") {
      out.push({ what: `a text secret recorded at ${record.site}`, bytes, text: Buffer.from(bytes).toString("utf8") });
      continue;
    }
    out.push({ what: `a random ${bytes.length}-byte value drawn at ${record.site}`, bytes });
    if (bytes.length !== 32) continue;
    out.push({ what: `the cloud login key derived from a value drawn at ${record.site}`, bytes: deriveCloudLoginKey(nobleDigest, bytes) });
    out.push({ what: `the wrap key derived from a value drawn at ${record.site}`, bytes: deriveWrapKey(nobleDigest, bytes) });
    out.push({ what: `the resumption key derived from a value drawn at ${record.site}`, bytes: resumptionKey(bytes) });
    for (const id of deviceIds) {
      const temporary = deriveTemporarySecret(nobleDigest, bytes, id);
      out.push({ what: `a temporary secret of ${id}`, bytes: temporary });
      out.push({ what: `the login key of a temporary secret of ${id}`, bytes: deriveCloudLoginKey(nobleDigest, temporary) });
      const hotspot = deriveHotspotPassword(nobleDigest, bytes, id);
      out.push({ what: `a hotspot password of ${id}`, bytes: Buffer.from(hotspot), text: hotspot });
    }
  }
  return out;
}

/** The records a child process's tap wrote (WCM_SECRET_TAP_FILE): lines `<kind> <hex> <site>`. */
export function readTapFile(file: string): TapRecord[] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((line) => {
    const [kind, hex, site] = line.split(" ");
    return { kind: kind === "text" ? "text" : "bytes", hex: hex!, site: site ?? "?" };
  });
}

/** Wi-Fi passwords and passphrases written as literals in `files` (absolute paths). */
export function literalPasswords(files: string[]): Secret[] {
  const out: Secret[] = [];
  for (const file of files) {
    for (const m of readFileSync(file, "utf8").matchAll(/(?:password|passphrase|psk)\s*:\s*"([^"\\]{8,})"/gi)) {
      out.push({ what: `a password literal in ${file}`, bytes: Buffer.from(m[1]!), text: m[1] });
    }
  }
  return out;
}

/** The `event` fields of a log's JSON lines. */
export function events(logText: string): Set<string> {
  const out = new Set<string>();
  for (const line of logText.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const event = (JSON.parse(line) as { event?: string }).event;
      if (event) out.add(event);
    } catch {
      // a line cut by a killed child: not an event
    }
  }
  return out;
}

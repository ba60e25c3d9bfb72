/*
 * No secret material in any log line (issue 9 item 5): the demo (`npm start`)
 * and a slice of the suite (run again in a child mocha) with debug logs on, each under the secret
 * tap (test/support/secret-tap.ts), which records every random value of 12
 * bytes or more the process drew (device secrets, lot provisioning keys,
 * master keys, admin tokens, NAS secrets, Wi-Fi passwords, TLS ticket keys)
 * and the temporary secrets the helpers derived. Each value, and the keys
 * derived from it (cloud login key, wrap key, resumption key, temporary
 * secrets and hotspot passwords of the demo's devices), is searched in every
 * log line (and the demo's output) in hex, base64 and base64url, at each of
 * the three base64 alignments, so a value inside a longer encoded blob is
 * found too. The first test checks the search itself on planted values.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deriveCloudLoginKey, deriveHotspotPassword, deriveTemporarySecret, deriveWrapKey } from "../modules/derive";
import { nobleDigest } from "../modules/noble-digest";
import { resumptionKey } from "../cloud/tls-store-sqlite";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** shortest needle: 12 base64 characters (72 bits) cannot match by chance */
const WINDOW = 12;
const DEMO_DEVICES = ["demo-cert-0001", "demo-secret-0001", "demo-temp-0001", "demo-radio-0001", "demo-home-0001"];
/**
 * What runs again with debug logs: a slice of the suite (logins, issuance and rotation,
 * networks, admin, RADIUS, fleet, metrics), or the files WCM_LOG_SCAN_FILES names
 * (comma-separated, e.g. cloud-login,radius-server; `all` = every test file but this one).
 * The whole suite is not the default: it also logs random values drawn as test device ids
 * and nonces, which the tap cannot tell from secrets (2 such 16-byte values in its first run).
 */
const SLICE_DEFAULT = ["cloud-login", "cloud-issuance", "cloud-network", "cloud-admin", "radius-server", "cloud-fleet", "cloud-metrics"];
const SLICE = process.env.WCM_LOG_SCAN_FILES === "all"
  ? wholeSuite()
  : (process.env.WCM_LOG_SCAN_FILES?.split(",") ?? SLICE_DEFAULT).map((n) => `test/${n.trim()}.test.ts`);

function wholeSuite(): string[] {
  const walk = (dir: string): string[] => readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return walk(path);
    return entry.name.endsWith(".test.ts") && entry.name !== "logs-no-secrets.test.ts" ? [path] : [];
  });
  return walk("test").sort();
}

/** A secret and what it is, for the failure message (never the value). */
interface Secret { what: string; bytes: Uint8Array; text?: string }

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

/** The tap's values, and the keys derived from each (with the demo's device ids when given). */
function tapped(file: string, deviceIds: string[]): Secret[] {
  if (!existsSync(file)) return [];
  const out: Secret[] = [];
  for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean)) {
    const [kind, hex] = line.split(" ");
    const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
    if (kind === "text") {
      out.push({ what: "a text secret", bytes, text: Buffer.from(bytes).toString("utf8") });
      continue;
    }
    out.push({ what: `a random ${bytes.length}-byte value`, bytes });
    if (bytes.length !== 32) continue;
    out.push({ what: "a derived cloud login key", bytes: deriveCloudLoginKey(nobleDigest, bytes) });
    out.push({ what: "a derived wrap key", bytes: deriveWrapKey(nobleDigest, bytes) });
    out.push({ what: "a derived resumption key", bytes: resumptionKey(bytes) });
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

/** Wi-Fi passwords and passphrases written as literals in the slice's test files. */
function literalPasswords(files: string[]): Secret[] {
  const out: Secret[] = [];
  for (const file of files) {
    for (const m of readFileSync(join(ROOT, file), "utf8").matchAll(/(?:password|passphrase|psk)\s*:\s*"([^"\\]{8,})"/gi)) {
      out.push({ what: `a password literal in ${file}`, bytes: Buffer.from(m[1]), text: m[1] });
    }
  }
  return out;
}

function events(logText: string): Set<string> {
  const out = new Set<string>();
  for (const line of logText.split("\n")) {
    if (!line.startsWith("{")) continue;
    const event = (JSON.parse(line) as { event?: string }).event;
    if (event) out.add(event);
  }
  return out;
}

describe("logs: no secret material in any log line (issue 9 item 5)", function () {
  this.timeout(900_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "wcm-log-secrets-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("findSecrets_PlantedInEachEncoding_Found", () => {
    const bytes = Uint8Array.from(Buffer.from("8c1f0e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100", "hex"));
    const secret: Secret = { what: "planted", bytes };
    const b = Buffer.from(bytes);
    const planted = [
      `{"msg":"x","k":"${b.toString("hex")}"}`, `{"msg":"${b.toString("hex").toUpperCase()}"}`,
      `{"v":"${b.toString("base64")}"}`, `{"v":"${b.toString("base64url")}"}`,
      // inside a longer blob at each alignment
      ...[1, 2, 3].map((pad) => `{"v":"${Buffer.concat([Buffer.alloc(pad, 7), b, Buffer.alloc(5, 9)]).toString("base64")}"}`),
      ...[1, 2].map((pad) => `{"v":"${Buffer.concat([Buffer.alloc(pad, 7), b]).toString("base64url")}"}`),
    ];
    for (const line of planted) assert.equal(findSecrets(line, [secret]).length, 1, line);
    assert.equal(findSecrets(`{"msg":"${Buffer.from(bytes.slice(0, 8)).toString("hex")}"}`, [secret]).length, 0, "8 bytes of it is not it");
    assert.equal(findSecrets('{"msg":"wifi hunter2hunter2"}', [{ what: "text", bytes: Buffer.from("hunter2hunter2"), text: "hunter2hunter2" }]).length, 1);
  });

  it("demo_DebugLogs_NoSecretInAnyLineOrOutput", () => {
    const logFile = join(dir, "demo.log");
    const tapFile = join(dir, "demo.tap");
    const run = spawnSync(process.execPath, ["--import", "tsx", "--import", "./test/support/secret-tap.ts", "demo/run-demo.ts"], {
      cwd: ROOT, encoding: "utf8", timeout: 170_000,
      env: { ...process.env, CI: "1", WCM_LOG_FILE: logFile, WCM_LOG_LEVEL: "debug", WCM_SECRET_TAP_FILE: tapFile },
    });
    assert.equal(run.status, 0, `demo exit ${run.status}\n${run.stdout}\n${run.stderr}`);
    const logText = readFileSync(logFile, "utf8");
    const seen = events(logText);
    for (const event of ["mqtt.login", "issuance", "radius.accept"]) assert.ok(seen.has(event), `the demo logged ${event} (saw ${[...seen].join(", ")})`);
    const secrets = tapped(tapFile, DEMO_DEVICES);
    assert.ok(secrets.length > 20, `the tap recorded the demo's secrets (${secrets.length})`);
    const found = findSecrets(`${logText}\n${run.stdout}\n${run.stderr}`, secrets);
    assert.deepEqual(found, [], `secret material in the demo's logs or output: ${found.join("; ")}`);
  });

  it("suiteSlice_DebugLogs_NoSecretInAnyLine", function () {
    this.timeout(1_800_000);
    const logFile = join(dir, "suite.log");
    const tapFile = join(dir, "suite.tap");
    const run = spawnSync(process.execPath, [
      // the tap is switched on by test/cloud-helpers.ts, which imports it (and the slice's files import the helpers)
      "--import", "tsx", join(ROOT, "node_modules/mocha/lib/cli/cli.js"), "--no-config", "--exit", "--timeout", "120000", "--reporter", "dot", ...SLICE,
    ], { cwd: ROOT, encoding: "utf8", timeout: 1_700_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, WCM_TEST_LOG_FILE: logFile, WCM_TEST_LOG_LEVEL: "debug", WCM_SECRET_TAP_FILE: tapFile } });
    // the suite's own failures are the main run's to report; here only what it logged matters
    assert.ok(existsSync(logFile), `the suite wrote logs\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`);
    const logText = readFileSync(logFile, "utf8");
    const lines = logText.split("\n").filter(Boolean).length;
    const seen = events(logText);
    for (const event of ["mqtt.login", "mqtt.refused", "issuance", "rotation", "radius.accept", "radius.reject", "admin.request", "device.revoked"]) {
      assert.ok(seen.has(event), `the suite logged ${event} (saw ${[...seen].join(", ")})`);
    }
    const secrets = [...tapped(tapFile, []), ...literalPasswords(SLICE)];
    assert.ok(secrets.length > 100, `the tap recorded the suite's secrets (${secrets.length})`);
    const found = findSecrets(logText, secrets);
    assert.deepEqual(found, [], `secret material in ${lines} log lines: ${found.join("; ")}`);
  });
});

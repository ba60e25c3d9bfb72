/*
 * No secret material in any log line (issue 9 item 5). The whole suite is
 * scanned by its root hook (test/support/log-scan-hooks.ts, loaded by
 * .mocharc.json): every `npm test` runs with debug logs on under the secret
 * tap and fails at the end if any line holds a secret it drew or a key derived
 * from one. This file checks that scan itself, and runs the demo (`npm start`)
 * under the tap too:
 * - findSecrets finds a planted value in hex, base64 and base64url, inside a
 *   longer blob at each alignment, and not a part of it;
 * - a child mocha with the root hook, on a fixture test file that logs secrets
 *   it drew (hex, base64, base64url, a derived key), fails and names each one
 *   by where it was drawn; the same file logging nothing secret passes;
 * - a certificate serial (public: PUBLIC_DRAWS) is recorded at its call site
 *   and left out of the secrets, and nothing else is;
 * - the demo with debug logs: no secret in any log line or in its output.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCa, normalizeSerial, parseCertificate } from "../cloud/pki";
import { events, findSecrets, isPublicDraw, PUBLIC_DRAWS, readTapFile, secretsOf, type Secret } from "./support/log-scan";
import { installSecretTap, tapRecords } from "./support/secret-tap";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEMO_DEVICES = ["demo-cert-0001", "demo-secret-0001", "demo-temp-0001", "demo-radio-0001", "demo-home-0001"];

/** A child mocha on the leak fixture with the suite's root hook; `mode` = what the fixture logs. */
function fixtureRun(mode: "leak" | "clean") {
  const env: NodeJS.ProcessEnv = { ...process.env, WCM_LEAK_FIXTURE: mode };
  delete env.WCM_LOG_SCAN;
  return spawnSync(process.execPath, [
    "--import", "tsx", join(ROOT, "node_modules/mocha/lib/cli/cli.js"), "--no-config", "--exit", "--timeout", "60000", "--reporter", "dot",
    "--require", "test/support/log-scan-hooks.ts", "test/fixtures/log-scan/leak.fixture.ts",
  ], { cwd: ROOT, encoding: "utf8", timeout: 120_000, env });
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
    const secrets = secretsOf(readTapFile(tapFile), DEMO_DEVICES);
    assert.ok(secrets.length > 20, `the tap recorded the demo's secrets (${secrets.length})`);
    const found = findSecrets(`${logText}\n${run.stdout}\n${run.stderr}`, secrets);
    assert.deepEqual(found, [], `secret material in the demo's logs or output: ${found.join("; ")}`);
  });

  it("rootHook_SecretsLoggedInEachEncoding_RunFailsNamingEach", function () {
    this.timeout(150_000);
    const run = fixtureRun("leak");
    const out = `${run.stdout}\n${run.stderr}`;
    assert.notEqual(run.status, 0, `the run with secrets in its log failed\n${out}`);
    assert.match(out, /log scan: secret material in \d+ debug log lines/, out);
    for (const site of ["drawHex", "drawBase64", "drawBase64url"]) {
      assert.match(out, new RegExp(`a random \\d+-byte value drawn at test/fixtures/log-scan/leak\\.fixture\\.ts:${site}\\b`), `the ${site} secret is named\n${out}`);
    }
    assert.match(out, /the cloud login key derived from a value drawn at test\/fixtures\/log-scan\/leak\.fixture\.ts:drawDerived/, `the derived key is named\n${out}`);
    const kept = /log kept: (\S+)\)/.exec(out)?.[1];
    if (kept) rmSync(join(kept, ".."), { recursive: true, force: true });
  });

  it("rootHook_OnlyPublicValuesLogged_RunPasses", function () {
    this.timeout(150_000);
    const run = fixtureRun("clean");
    assert.equal(run.status, 0, `the run without secrets in its log passed\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /log scan: \d+ log lines, \d+ secrets, 1 files: none found \(\d+ ms\)/);
  });

  it("publicDraws_CertificateSerial_RecordedAtItsSiteAndLeftOut", async () => {
    installSecretTap(); // already on under .mocharc.json's root hook
    const before = new Set(tapRecords().map((r) => r.hex));
    const serial = normalizeSerial(parseCertificate((await createCa("log-scan-serial")).certPem).serialNumber);
    const drawn = tapRecords().filter((r) => !before.has(r.hex) && r.hex.slice(2) === serial.slice(-30));
    assert.equal(drawn.length, 1, "the serial's draw was recorded");
    assert.equal(drawn[0]!.site, "cloud/pki.ts:serial", "at the site PUBLIC_DRAWS names");
    assert.ok(isPublicDraw(drawn[0]!));
    assert.deepEqual(secretsOf(drawn), [], "a public draw is no secret");
    // every other draw stays a secret: PUBLIC_DRAWS names functions, one per entry
    assert.equal(secretsOf([{ ...drawn[0]!, site: "cloud/pki.ts:createCa" }]).length, 1);
    assert.ok(PUBLIC_DRAWS.every((p) => /^[\w/.-]+\.ts:\w+$/.test(p.site)), "each entry is one file and function");
  });
});

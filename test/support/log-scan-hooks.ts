/*
 * Root hook plugin (mocha `require`, .mocharc.json): every mocha run with the
 * project's config, `npm test` included, runs with debug logs on and is
 * scanned for secret material at the end (issue 9 item 5), in the same run,
 * so the whole suite is scanned without running it twice.
 *
 * On load, before any test file: the secret tap (test/support/secret-tap.ts)
 * is installed in this process, and env WCM_TEST_LOG_FILE / WCM_TEST_LOG_LEVEL
 * point every test cloud's log (test/cloud-helpers.ts suiteLog) at a fresh
 * file at debug. After the last test (root afterAll): every line of that file
 * is searched for every secret the tap recorded and the keys derived from them,
 * and for the Wi-Fi password literals of the test files that ran
 * (test/support/log-scan.ts); a hit fails the run, naming what was found and
 * where it was drawn (never the value), and keeps the log for inspection. When
 * every test file ran, the log must also show the events of logins, refusals,
 * issuance, rotation, RADIUS and admin work (else the scan would pass on a
 * silent log).
 *
 * WCM_LOG_SCAN=off turns it off (a local run that needs its own logs).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { installSecretTap, tapRecords } from "./secret-tap";
import { events, findSecrets, literalPasswords, secretsOf } from "./log-scan";

const TEST_DIR = fileURLToPath(new URL("..", import.meta.url));
/** what the whole suite's log must show */
const SUITE_EVENTS = ["mqtt.login", "mqtt.refused", "issuance", "rotation", "radius.accept", "radius.reject", "admin.request", "device.revoked"];

const on = process.env.WCM_LOG_SCAN !== "off";
let dir: string | undefined;
let logFile: string | undefined;
if (on) {
  installSecretTap();
  dir = mkdtempSync(join(tmpdir(), "wcm-log-scan-"));
  logFile = join(dir, "suite.log");
  // a child mocha started by a test gets its own file (this hook runs there too and sets its own)
  process.env.WCM_TEST_LOG_FILE = logFile;
  process.env.WCM_TEST_LOG_LEVEL = "debug";
}

function testFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

interface SuiteLike { file?: string; suites: SuiteLike[]; tests: { file?: string }[] }

function filesRun(root: SuiteLike): Set<string> {
  const out = new Set<string>();
  for (const suite of root.suites) if (suite.file) out.add(suite.file);
  for (const test of root.tests) if (test.file) out.add(test.file);
  return out;
}

/** Mocha root hooks. */
export const mochaHooks = {
  afterAll(this: Mocha.Context) {
    if (!on || !logFile || !dir) return;
    this.timeout(120_000);
    const started = performance.now();
    const ran = filesRun(this.test!.parent! as unknown as SuiteLike);
    const logText = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    const lines = logText.split("\n").filter(Boolean).length;
    const secrets = [...secretsOf(tapRecords()), ...literalPasswords([...ran])];
    const found = findSecrets(logText, secrets);
    if (found.length > 0) {
      assert.fail(`log scan: secret material in ${lines} debug log lines of this run (log kept: ${logFile}): ${found.join("; ")}`);
    }
    const whole = testFiles(TEST_DIR).every((file) => ran.has(file));
    if (whole) {
      const seen = events(logText);
      const missing = SUITE_EVENTS.filter((event) => !seen.has(event));
      assert.deepEqual(missing, [], `log scan: the whole suite ran but its log lacks these events (is suiteLog wired?), log kept: ${logFile}`);
      assert.ok(secrets.length > 100, `log scan: the tap recorded the suite's secrets (${secrets.length})`);
    }
    rmSync(dir, { recursive: true, force: true });
    console.log(`log scan: ${lines} log lines, ${secrets.length} secrets, ${ran.size} files${whole ? " (the whole suite)" : ""}: none found (${Math.round(performance.now() - started)} ms)`);
  },
};

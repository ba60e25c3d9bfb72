/*
 * `npm run onboard` (tools/onboard/cli.ts) against a simulated device's real
 * HTTP service on loopback: JOINED exits 0, a wrong password FAILED with its
 * reason exits 1, a wrong code AUTH_FAILED exits 1, bad arguments exit 2; the
 * password never appears in what it prints.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runOnboard } from "../tools/onboard/cli";
import { onboardingDevice, TEST_CODE } from "./support/onboarding-device";

describe("onboarding: npm run onboard", function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "wcm-onboard-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("cli_CodeSsidPasswordFile_Joined_Exit0_PasswordNotPrinted", async () => {
    const device = await onboardingDevice();
    try {
      const file = join(dir, "wifi.txt");
      writeFileSync(file, "correct horse battery\n", { mode: 0o600 });
      const lines: string[] = [];
      const code = await runOnboard(["--code", TEST_CODE, "--ssid", "Home-5G", "--password-file", file, "--url", device.url], {}, (l) => lines.push(l));
      assert.equal(code, 0, lines.join("\n"));
      assert.equal(lines.at(-1), "JOINED Home-5G");
      assert.ok(lines.some((l) => /heard: Home-5G \(psk, -50 dBm\), Cafe \(open, -78 dBm\)/.test(l)), lines.join("\n"));
      assert.ok(!lines.join("\n").includes("correct horse"));
      assert.equal(device.store.loadNetworks().networks[0].ssid, "Home-5G");
    } finally {
      device.stop();
    }
  });

  it("cli_QrPayloadWrongPasswordFromEnv_FailedWithReason_Exit1", async () => {
    const device = await onboardingDevice();
    try {
      const lines: string[] = [];
      const code = await runOnboard(["--qr", `WCM1:lamp-0005:${TEST_CODE}:wcm-lamp-0005`, "--ssid", "Home-5G", "--url", device.url], { WCM_WIFI_PASSWORD: "not the password" }, (l) => lines.push(l));
      assert.equal(code, 1);
      assert.equal(lines.at(-1), "FAILED Home-5G: INCORRECT-PASSWORD");
      assert.ok(!lines.join("\n").includes("not the password"));
    } finally {
      device.stop();
    }
  });

  it("cli_WrongCode_AuthFailed_Exit1; bad arguments exit 2", async () => {
    const device = await onboardingDevice();
    try {
      const lines: string[] = [];
      assert.equal(await runOnboard(["--code", "0000-0000-0000-00", "--scan", "--url", device.url], {}, (l) => lines.push(l)), 1);
      assert.match(lines.at(-1)!, /^AUTH_FAILED: wrong label code/);
      assert.equal(await runOnboard(["--code", "1RVV-WN6H-7BH6-J3", "--scan", "--url", device.url], {}, (l) => lines.push(l)), 1);
      assert.match(lines.at(-1)!, /^CODE_INVALID: .*check character/, "a typo is caught before it costs an attempt");
      assert.equal(device.runner.state.failures, 1);
      assert.equal(await runOnboard(["--ssid", "x"], {}, (l) => lines.push(l)), 2);
      assert.equal(await runOnboard(["--code", TEST_CODE], {}, (l) => lines.push(l)), 2);
      assert.equal(await runOnboard(["--code", TEST_CODE, "--scan", "--bogus"], {}, (l) => lines.push(l)), 2);
    } finally {
      device.stop();
    }
  });
});

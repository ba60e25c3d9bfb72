/*
 * The reference owner's page (tools/onboard/page) in a real headless Chromium
 * (Debian's chromium, driven by playwright-core), against a simulated device's
 * real HTTP service on loopback: enter the label code, pick the network from
 * the scan list, type its password, see JOINED; a wrong code shows the refusal.
 * Skipped, with a message, when /usr/bin/chromium (or CHROMIUM) is missing:
 * `apt-get install -y chromium` (.ci/run does it). Waits are generous deadlines
 * on what the page shows, never timing assertions.
 */
import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import type { Server } from "node:http";
import { chromium, type Browser } from "playwright-core";
import { servePage } from "../tools/onboard/page-server";
import { onboardingDevice, TEST_CODE } from "./support/onboarding-device";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

describe("onboarding: the reference page in headless Chromium", function () {
  this.timeout(180_000);
  let browser: Browser | undefined;
  let page: { url: string; server: Server } | undefined;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
      this.skip();
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"], headless: true, timeout: 120_000 });
    page = await servePage();
  });

  after(async () => {
    await browser?.close();
    page?.server.close();
  });

  it("page_CodeNetworkPassword_ShowsJoined_DeviceStoredTheNetwork", async () => {
    const device = await onboardingDevice();
    try {
      const tab = await browser!.newPage({ viewport: { width: 420, height: 640 } });
      await tab.goto(`${page!.url}?device=${encodeURIComponent(device.url)}&softap=wcm-lamp-0005`);
      await tab.fill("#code", TEST_CODE.toLowerCase());
      await tab.click("#connect");
      await tab.waitForSelector("#step-network:not([hidden])", { timeout: 90_000 });
      const listed = await tab.$$eval("input[name=ssid]", (inputs) => inputs.map((i) => (i as unknown as { value: string }).value));
      assert.deepEqual(listed, ["Home-5G", "Cafe"], "the device's scan, its own SoftAP left out");
      await tab.check("input[value='Home-5G']");
      await tab.fill("#password", "correct horse battery");
      await tab.click("#join");
      await tab.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById("status").textContent === "JOINED", undefined, { timeout: 90_000 });
      assert.match(await tab.textContent("#detail") ?? "", /Home-5G/);
      assert.deepEqual(device.store.loadNetworks().networks, [{ ssid: "Home-5G", password: "correct horse battery", priority: 50 }]);
      assert.equal(device.radio.joined?.ssid, "Home-5G");
      if (process.env.WCM_SCREENSHOT) await tab.screenshot({ path: process.env.WCM_SCREENSHOT });
      await tab.close();
    } finally {
      device.stop();
    }
  });

  it("page_WrongCode_Refused_NothingStored", async () => {
    const device = await onboardingDevice();
    try {
      const tab = await browser!.newPage();
      await tab.goto(`${page!.url}?device=${encodeURIComponent(device.url)}`);
      await tab.fill("#code", "0000-0000-0000-00");
      await tab.click("#connect");
      await tab.waitForFunction(() => /Wrong setup code/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById("detail").textContent), undefined, { timeout: 90_000 });
      assert.equal(device.runner.state.failures, 1);
      assert.deepEqual(device.store.loadNetworks().networks, []);
      await tab.close();
    } finally {
      device.stop();
    }
  });
});

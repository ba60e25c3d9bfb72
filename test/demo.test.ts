/*
 * `npm start` as a person runs it: the demo exits 0 with every device ONLINE,
 * the temporary ones PERMANENT, and the radio device moved from the partner
 * hotspot to its owner's network; the fifth device (no hotspot in range)
 * onboarded locally by the demo's owner client with its label code, on Home-5G.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

describe("demo (npm start)", function () {
  this.timeout(120_000);

  it("runDemo_FiveDevicesOnline_RadioDeviceHandedOff_HomeDeviceOnboardedLocally_Exit0", () => {
    const root = fileURLToPath(new URL("..", import.meta.url));
    const run = spawnSync(process.execPath, ["--import", "tsx", "demo/run-demo.ts"], {
      cwd: root, encoding: "utf8", timeout: 110_000, env: { ...process.env, CI: "1" },
    });
    assert.equal(run.status, 0, `exit ${run.status}\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /all devices ONLINE in [\d.]+ s/);
    assert.match(run.stdout, /demo-temp-0001 +permanent +ONLINE +generation 1/);
    assert.match(run.stdout, /demo-radio-0001 +permanent +ONLINE +generation 1 +on private Home-5G/);
    assert.match(run.stdout, /demo-radio-0001 .*JOINING .*\[hotspot ZipKey\]/);
    assert.match(run.stdout, /cloud: demo-radio-0001 reported JOINED Home-5G/);
    assert.match(run.stdout, /demo-home-0001 +secret +ONLINE +generation 0 +on private Home-5G/);
    assert.match(run.stdout, /owner: code accepted \(CPace\); the device hears Home-5G/);
    assert.match(run.stdout, /owner: the device says JOINED Home-5G/);
    assert.equal((run.stdout.match(/^ {2}demo-\S+ +\S+ +ONLINE/gm) ?? []).length, 5, "five devices in the registry, all ONLINE");
  });
});

/*
 * A whole simulated device: createNodeDevice({ radio }) scans the simulated
 * air, joins a WPA2-Enterprise hotspot through the AP's RADIUS client and the
 * cloud's RADIUS server, and reaches the cloud through the radio's gate; an
 * AP without internet makes the cloud unreachable (INTERNET-NOT-REACHABLE).
 * Skipped when the manager in this checkout does not use ManagerPorts.network.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedAir, SimulatedRadio } from "../hosts/node/radio/index";
import type { ConnectionManager, ManagerStatus } from "../modules/manager";
import { startTestCloud, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "lobby-nas-shared-secret";

function waitFor(manager: ConnectionManager, done: (status: ManagerStatus) => boolean, ms: number): Promise<ManagerStatus | undefined> {
  return new Promise((resolve) => {
    if (done(manager.status)) return resolve(manager.status);
    const timer = setTimeout(() => { stop(); resolve(undefined); }, ms);
    const stop = manager.onStatus((status) => {
      if (!done(status)) return;
      clearTimeout(timer);
      stop();
      resolve(status);
    });
  });
}

describe("radio: createNodeDevice({ radio }) against the cloud", function () {
  this.timeout(30_000);
  let t: TestCloud;
  const secret = randomBytes(32).toString("hex");
  before(async () => {
    t = await startTestCloud({ radiusPort: 0 });
    await t.cloud.services.addNasClient({ name: "lobby-ap", address: "127.0.0.1", secret: NAS_SECRET });
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-1", secretHex: secret });
  });
  after(async () => { await t?.stop(); });

  function device(radio: SimulatedRadio) {
    return createNodeDevice({
      deviceId: "lamp-1", option: "secret", secret,
      cloud: { host: "127.0.0.1", port: t.cloud.mqttPort, ca: t.cloud.serverCaPem, serverName: t.cloud.serverName },
      hotspots: [{ name: "zipkey", ssid: "ZipKey", radius: { serverName: t.cloud.radiusServerName, ca: t.cloud.serverCaPem } }],
    }, {
      radio,
      manager: { retry: { networkBaseMs: 20, networkMaxMs: 200, authBaseMs: 50, authMaxMs: 500 }, requestTimeoutMs: 1000 },
    });
  }

  it("joins the enterprise hotspot (walled garden: the cloud only) and goes ONLINE", async function () {
    const air = new SimulatedAir();
    const ap = air.addAccessPoint({
      ssid: "ZipKey", security: "enterprise", internet: "walled-garden", walledGarden: [{ host: "127.0.0.1", port: t.cloud.mqttPort }],
      radius: { host: "127.0.0.1", port: t.cloud.radiusPort!, secret: NAS_SECRET },
    });
    const radio = new SimulatedRadio(air);
    const { manager } = device(radio);
    manager.start();
    try {
      const online = await waitFor(manager, (s) => s.state === "ONLINE", 10_000);
      assert.equal(online?.state, "ONLINE", JSON.stringify(manager.status));
      assert.equal(radio.joined?.ssid, "ZipKey");
      assert.equal(ap.eventsOf("4way-ok").length, 1);
      assert.ok(radio.events.some((e) => e.kind === "gate" && e.detail.endsWith("reachable")));
    } finally {
      manager.stop();
    }
  });

  it("behind an AP without internet: joined, but the cloud is INTERNET-NOT-REACHABLE", async function () {
    const air = new SimulatedAir();
    air.addAccessPoint({
      ssid: "ZipKey", security: "enterprise", internet: "none",
      radius: { host: "127.0.0.1", port: t.cloud.radiusPort!, secret: NAS_SECRET },
    });
    const radio = new SimulatedRadio(air);
    const { manager } = device(radio);
    manager.start();
    try {
      await waitFor(manager, () => radio.events.some((e) => e.kind === "gate"), 10_000);
      assert.ok(radio.events.some((e) => e.kind === "join"), "the manager joined through the radio");
      assert.ok(radio.events.some((e) => e.kind === "joined"));
      assert.ok(radio.events.some((e) => e.kind === "gate" && e.detail.includes("unreachable: no internet behind ZipKey")));
      await new Promise((r) => setTimeout(r, 300));
      assert.notEqual(manager.status.state, "ONLINE");
      assert.match(JSON.stringify(manager.status), /INTERNET-NOT-REACHABLE/);
    } finally {
      manager.stop();
    }
  });
});

/*
 * Policy in the Access-Accept (issue 14 item 4). A hotspot profile's
 * walled-garden policy (allowed domains, bandwidth, session timeout):
 * validated with bounds (service, HTTP API, CLI: INVALID_INPUT naming the
 * field, nothing stored), stored with the profile on both backends, never sent
 * to devices; then in the simulated air: the Access-Accept for a device on the
 * profile's SSID carries Filter-Id, WISPr-Bandwidth-Max-Up/-Down and
 * Session-Timeout, the simulated enterprise AP lets the device reach the
 * cloud's host and nothing else, caps its rate, and ends its session at the
 * timeout (Accounting-Stop Session-Timeout), after which it authenticates again.
 * The session timer of the air is compressed (a minute lasts 600 ms): the
 * behaviour is asserted, not the time.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createMqttLink } from "../hosts/node/mqtt-link";
import { SimulatedAir, SimulatedRadio } from "../hosts/node/radio/index";
import { systemScheduler } from "../hosts/node/sim-ports";
import { deriveHotspotPassword } from "../modules/derive";
import type { JoinRequest, SchedulerPort } from "../modules/ports";
import { runCli } from "../cloud/cli";
import { isCloudError } from "../cloud/errors";
import { MAX_POLICY_DOMAINS, validateHotspotPolicy } from "../cloud/radius/policy";
import { digest, loginPassword, newSecret, startTestCloud, testAdminApi, type TestCloud } from "./cloud-helpers";
import { joinOnce } from "./radio-helpers";
import { backendEnv, forEachBackend } from "./support/backends";

const NAS_SECRET = "policy-test-nas-secret";
const CA = "-----BEGIN CERTIFICATE-----\nMIIBradius\n-----END CERTIFICATE-----";
const POLICY = { domains: ["mqtt.wcm.test", "*.updates.wcm.test"], bandwidth: { upKbps: 128, downKbps: 1024 }, sessionTimeoutS: 3600 };
const PROFILE = { name: "zipkey", ssid: "ZipKey", radius: { serverName: "radius.localhost", ca: CA }, policy: POLICY };

/** Polls `check` until it holds (a generous bound: behaviour, not timing). */
async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

forEachBackend("radius: hotspot profile policy (validation, storage)", function () {
  let t: TestCloud;
  before(async () => { t = await startTestCloud(); });
  after(async () => t?.stop());

  it("setHotspotProfiles_WithPolicy_StoredForTheAdmin_NeverInTheDevicesSet", async () => {
    const set = await t.cloud.network.setHotspotProfiles({ profiles: [PROFILE] });
    assert.deepEqual(set.profiles[0].policy, POLICY);
    assert.deepEqual((await t.cloud.network.listHotspotProfiles()).profiles, [PROFILE]);
    // what devices get (`config`): the profile without its policy
    const { NetworkRegistry } = await import("../cloud/network-registry");
    const devices = await new NetworkRegistry(t.cloud.registry).hotspotSet();
    assert.equal("policy" in devices.profiles[0], false);
    assert.deepEqual(await new NetworkRegistry(t.cloud.registry).hotspotPolicies(), [{ name: "zipkey", ssid: "ZipKey", policy: POLICY }]);
  });

  it("setHotspotProfiles_BadPolicy_InvalidInputNamingTheField_NothingStored", async () => {
    const before = await t.cloud.network.listHotspotProfiles();
    const long = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}`;
    const cases: [unknown, string][] = [
      ["nope", "profiles[0].policy"],
      [{}, "profiles[0].policy.domains"],
      [{ domains: [] }, "profiles[0].policy.domains"],
      [{ domains: Array.from({ length: MAX_POLICY_DOMAINS + 1 }, (_, i) => `h${i}.example.com`) }, "profiles[0].policy.domains"],
      [{ domains: ["localhost"] }, "profiles[0].policy.domains[0]"],
      [{ domains: ["bad_name.example.com"] }, "profiles[0].policy.domains[0]"],
      [{ domains: [long] }, "profiles[0].policy.domains[0]"],
      [{ domains: [42] }, "profiles[0].policy.domains[0]"],
      [{ domains: ["a.example.com"], filterId: "has space" }, "profiles[0].policy.filterId"],
      [{ domains: ["a.example.com"], bandwidth: { upKbps: 0, downKbps: 100 } }, "profiles[0].policy.bandwidth.upKbps"],
      [{ domains: ["a.example.com"], bandwidth: { upKbps: 100, downKbps: 4_000_001 } }, "profiles[0].policy.bandwidth.downKbps"],
      [{ domains: ["a.example.com"], bandwidth: { upKbps: 100 } }, "profiles[0].policy.bandwidth.downKbps"],
      [{ domains: ["a.example.com"], bandwidth: { upKbps: 100, downKbps: 100, burst: 1 } }, "profiles[0].policy.bandwidth.burst"],
      [{ domains: ["a.example.com"], sessionTimeoutS: 59 }, "profiles[0].policy.sessionTimeoutS"],
      [{ domains: ["a.example.com"], sessionTimeoutS: 604_801 }, "profiles[0].policy.sessionTimeoutS"],
      [{ domains: ["a.example.com"], sessionTimeoutS: 1.5 }, "profiles[0].policy.sessionTimeoutS"],
      [{ domains: ["a.example.com"], walled: true }, "profiles[0].policy.walled"],
    ];
    for (const [policy, field] of cases) {
      await assert.rejects(t.cloud.network.setHotspotProfiles({ profiles: [{ ...PROFILE, policy } as never] }), (error: unknown) => {
        assert.ok(isCloudError(error, "INVALID_INPUT"), String(error));
        assert.equal(error.field, field, JSON.stringify(policy));
        return true;
      });
    }
    assert.deepEqual(await t.cloud.network.listHotspotProfiles(), before, "nothing stored");
    // a bad profile next to a good policy: nothing stored either
    await assert.rejects(t.cloud.network.setHotspotProfiles({ profiles: [{ ...PROFILE, ssid: "" } as never] }), (e: unknown) => isCloudError(e, "INVALID_INPUT"));
    assert.deepEqual(await t.cloud.network.listHotspotProfiles(), before);
  });

  it("http_PutHotspots_BadPolicy_400_GoodPolicy_Shown", async () => {
    const api = testAdminApi(t.cloud.services, { network: t.cloud.network });
    const json = { "content-type": "application/json" };
    const bad = await api.inject({ method: "PUT", url: "/v1/hotspots", headers: json, body: JSON.stringify({ profiles: [{ ...PROFILE, policy: { domains: ["x"] } }] }) });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /profiles\[0\]\.policy\.domains\[0\]/);
    const good = await api.inject({ method: "PUT", url: "/v1/hotspots", headers: json, body: JSON.stringify({ profiles: [{ ...PROFILE, policy: { domains: ["mqtt.wcm.test"], sessionTimeoutS: 120 } }] }) });
    assert.equal(good.status, 200, JSON.stringify(good.body));
    const get = await api.inject({ method: "GET", url: "/v1/hotspots" });
    assert.deepEqual((get.body as { profiles: { policy: unknown }[] }).profiles[0].policy, { domains: ["mqtt.wcm.test"], sessionTimeoutS: 120 });
  });

  it("cli_HotspotSet_WithPolicy_AndABadOne", async () => {
    const file = join(t.dataDir, "profiles.json");
    const env = { WCM_DATA: t.dataDir, WCM_MASTER_KEY: Buffer.from(t.masterKey).toString("hex"), ...(await backendEnv(t.dataDir)) };
    const run = async (args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(args, env, { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) });
      return { code, out: out.join("\n"), err: err.join("\n") };
    };
    writeFileSync(file, JSON.stringify([{ ...PROFILE, policy: { domains: ["mqtt.wcm.test"], bandwidth: { upKbps: 64, downKbps: 64 } } }]));
    const ok = await run(["hotspot", "set", file]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /"upKbps": ?64/);
    const before = await t.cloud.network.listHotspotProfiles();
    writeFileSync(file, JSON.stringify([{ ...PROFILE, policy: { domains: ["mqtt.wcm.test"], sessionTimeoutS: 10 } }]));
    const bad = await run(["hotspot", "set", file]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /INVALID_INPUT: profiles\[0\]\.policy\.sessionTimeoutS/);
    assert.deepEqual(await t.cloud.network.listHotspotProfiles(), before);
  });

  it("validateHotspotPolicy_NormalizesDomains", () => {
    assert.deepEqual(validateHotspotPolicy({ domains: ["MQTT.wcm.test", "mqtt.wcm.test"] }, "p"), { domains: ["mqtt.wcm.test"] });
  });
});

describe("radius: the simulated enterprise AP enforces the Accept's policy", function () {
  this.timeout(90_000);
  let t: TestCloud;
  const secret = newSecret();
  /** the air's scheduler: delays of a minute or more (session timers) run 100 times faster */
  const compressed: SchedulerPort = { after: (ms, fn) => systemScheduler.after(ms >= 60_000 ? ms / 100 : ms, fn) };

  before(async () => {
    t = await startTestCloud({ radiusPort: 0, radius: { accountingPort: 0 } });
    await t.cloud.services.addNasClient({ name: "sim-ap", address: "127.0.0.1", secret: NAS_SECRET });
    for (const id of ["lamp-p1", "lamp-p2"]) await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: secret.hex });
    const ca = t.cloud.serverCaPem;
    const radius = { serverName: t.cloud.radiusServerName, ca };
    await t.cloud.network.setHotspotProfiles({ profiles: [
      { name: "garden", ssid: "ZipKey", radius, policy: { domains: ["mqtt.wcm.test"], bandwidth: { upKbps: 64, downKbps: 512 }, sessionTimeoutS: 604_800 } },
      { name: "short", ssid: "ZipKey-Short", radius, policy: { domains: ["mqtt.wcm.test"], sessionTimeoutS: 60 } },
    ] });
  });
  after(async () => t?.stop());

  const request = (id: string, ssid: string): JoinRequest => ({
    security: "enterprise", method: "ttls-pap", ssid, identity: id, anonymousIdentity: "anonymous@wcm",
    password: deriveHotspotPassword(digest, secret.bytes, id), server: { ca: t.cloud.serverCaPem, serverName: t.cloud.radiusServerName },
  });

  /** An AP whose filters are what the operator copied from the cloud's profiles (Filter-Id "wcm-<name>" -> domains). */
  async function hotspot(ssid: string) {
    const air = new SimulatedAir({ scheduler: compressed });
    const profiles = (await t.cloud.network.listHotspotProfiles()).profiles;
    const filters = Object.fromEntries(profiles.map((p) => [`wcm-${p.name}`, p.policy!.domains]));
    const ap = air.addAccessPoint({
      ssid, security: "enterprise", internet: "full", filters, dns: { "mqtt.wcm.test": "127.0.0.1", "example.com": "93.184.215.14" },
      radius: { host: "127.0.0.1", port: t.cloud.radiusPort!, secret: NAS_SECRET, timeoutMs: 1000, retries: 3, accountingPort: t.cloud.radius!.accountingPort! },
    });
    return { air, ap, radio: new SimulatedRadio(air) };
  }

  it("walled garden: the device reaches the cloud's host (by name and by its address) and nothing else; its rate is capped", async () => {
    const { ap, radio } = await hotspot("ZipKey");
    const outcome = await joinOnce(radio, request("lamp-p1", "ZipKey"));
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
    try {
      assert.deepEqual(ap.stationPolicy(radio.mac), { filterId: "wcm-garden", sessionTimeoutS: 604_800, maxUpBps: 64_000, maxDownBps: 512_000 });
      assert.deepEqual(radio.gate("mqtt.wcm.test", 8883), { reachable: true });
      assert.equal(radio.gate("example.com", 443).reachable, false);
      assert.equal(radio.gate("93.184.215.14", 443).reachable, false);
      assert.equal(radio.gate("mqtt.wcm.test.evil.example", 8883).reachable, false);
      // 64 kbit/s up: 8,000 bytes take a second; 512 kbit/s down: 125 ms
      assert.equal(ap.shapedMs(radio.mac, 8000, "up"), 1000);
      assert.equal(ap.shapedMs(radio.mac, 8000, "down"), 125);
      // the MQTT link to the cloud's address (what the AP's resolver answers for mqtt.wcm.test) logs in; another destination does not
      const connect = (host: string, port: number) => new Promise<{ ready: boolean; detail?: string }>((resolve) => {
        const link = createMqttLink({ gate: radio.gate, connectTimeoutMs: 10_000 });
        let ready = false;
        link.connect({
          host, port, clientId: "lamp-p1", username: "lamp-p1", password: loginPassword("lamp-p1", secret.bytes, "s", Date.now()), keepAliveSeconds: 30,
          tls: { ca: t.cloud.serverCaPem, serverName: t.cloud.serverName },
        }, { onReady: () => { ready = true; link.close(); }, onMessage: () => {}, onClose: (info) => resolve({ ready, detail: info.detail }) });
      });
      assert.equal((await connect("127.0.0.1", t.cloud.mqttPort)).ready, true);
      const refused = await connect("93.184.215.14", 8883);
      assert.equal(refused.ready, false);
      assert.match(refused.detail ?? "", /INTERNET-NOT-REACHABLE: .*outside the walled garden wcm-garden/);
    } finally {
      radio.leave();
      ap.close();
    }
  });

  it("an AP that does not define the Filter-Id lets nothing through (fails closed); a device on another SSID gets no filter", async () => {
    const { ap, radio } = await hotspot("ZipKey");
    ap.filters = {};
    assert.equal((await joinOnce(radio, request("lamp-p1", "ZipKey"))).kind, "joined");
    const gate = radio.gate("mqtt.wcm.test", 8883);
    assert.equal(gate.reachable, false);
    assert.match(gate.reachable ? "" : gate.detail, /Filter-Id wcm-garden is not defined/);
    radio.leave();
    ap.close();
    const other = await hotspot("Elsewhere");
    assert.equal((await joinOnce(other.radio, request("lamp-p1", "Elsewhere"))).kind, "joined");
    assert.deepEqual(other.ap.stationPolicy(other.radio.mac), { sessionTimeoutS: 3600 });
    assert.deepEqual(other.radio.gate("example.com", 443), { reachable: true });
    other.radio.leave();
    other.ap.close();
  });

  it("Session-Timeout: the AP ends the session (Accounting-Stop Session-Timeout), the device authenticates again and is back in the garden", async () => {
    const { ap, radio } = await hotspot("ZipKey-Short");
    const accepts = t.cloud.radius!.stats.accepts;
    const starts = t.cloud.radius!.stats.accounting.start;
    const first = await joinOnce(radio, request("lamp-p2", "ZipKey-Short"));
    assert.equal(first.kind, "joined", JSON.stringify(first));
    try {
      assert.equal(ap.stationPolicy(radio.mac)?.sessionTimeoutS, 60);
      const lost = await (first as Extract<typeof first, { kind: "joined" }>).lost;
      assert.equal(lost.reason, "CONNECTION-LOST");
      assert.equal(ap.eventsOf("session-timeout").length, 1);
      await eventually("the cloud records the Stop with its cause", async () => {
        const session = (await t.cloud.radius!.hotspots.status("lamp-p2"))?.session;
        return session?.terminateCause === "Session-Timeout";
      });
      // what the device's manager does after CONNECTION-LOST: join again, a new 802.1X authentication
      const again = await joinOnce(radio, request("lamp-p2", "ZipKey-Short"));
      assert.equal(again.kind, "joined", JSON.stringify(again));
      assert.ok(t.cloud.radius!.stats.accepts >= accepts + 2, "authenticated twice");
      assert.ok(ap.eventsOf("4way-ok").length >= 2);
      // the new session got the same policy (it may already have timed out again: the timer is compressed)
      assert.ok(ap.eventsOf("policy").filter((e) => e.station === radio.mac && /"filterId":"wcm-short"/.test(e.detail)).length >= 2);
      await eventually("a new accounting session after the re-authentication", () => t.cloud.radius!.stats.accounting.start >= starts + 2);
    } finally {
      radio.leave();
      ap.close();
    }
  });
});

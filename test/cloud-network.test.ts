/*
 * Networks in the cloud: the schema migration, the hotspot profile set
 * (service, HTTP, CLI, revision, `config` notice), and private network
 * hand-off over MQTT (hello with the sealing key, sealed change, `network`
 * notice, fetch, open with the device key, `network-result` stored and shown),
 * with the plaintext never in the registry; refusals; the packet bound.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MqttClient } from "mqtt";
import { utf8Encode } from "../modules/bytes";
import type { HotspotProfile } from "../modules/hotspots";
import {
  decodeCloudMessage, decodeNetworkChange, encodeNetworkChange, deviceTopics, MAX_CONFIG_BYTES, type CloudNotice, type CloudResponse,
} from "../modules/protocol";
import { legacyPublicKey } from "../cloud/legacy-seal";
import { nodeSeal } from "../hosts/node/node-seal";
import { openSealed, sealPublicKey } from "../modules/seal";
import { DEFAULT_MAX_PACKET_BYTES } from "../cloud/mqtt-server";
import { NETWORK_DEVICE_COLUMNS } from "../cloud/network-registry";
import { runCli } from "../cloud/cli";
import { isCloudError } from "../cloud/errors";
import { digest, end, exchange, loginPassword, mustConnect, newSecret, startTestCloud, testAdminApi, type TestCloud } from "./cloud-helpers";
import { backendEnv, forEachBackend } from "./support/backends";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBradius\n-----END CERTIFICATE-----";
const ZIPKEY: HotspotProfile = { name: "zipkey", roamingConsortium: ["5a03ba"], radius: { serverName: "radius.localhost", ca: CA } };

function nextNotice(client: MqttClient, id: string, timeoutMs = 3000): Promise<CloudNotice> {
  const topic = deviceTopics(id).response;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("message", on);
      reject(new Error("no notice"));
    }, timeoutMs);
    const on = (t: string, message: Buffer) => {
      if (t !== topic) return;
      const decoded = decodeCloudMessage(new Uint8Array(message));
      if (!("notice" in decoded)) return;
      clearTimeout(timer);
      client.off("message", on);
      resolve(decoded);
    };
    client.on("message", on);
  });
}

forEachBackend("cloud networks (hotspot profiles, private network hand-off)", function () {
  let t: TestCloud;
  let counter = 0;
  const clients: MqttClient[] = [];
  const sealKey = new Uint8Array(32).fill(0x42);
  const sealPublic = sealPublicKey(nodeSeal, sealKey);

  async function secretDevice(id: string): Promise<MqttClient> {
    const secret = newSecret();
    if (!(await t.cloud.registry.device(id))) await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: secret.hex });
    const client = await mustConnect(t.cloud, { id, password: loginPassword(id, secret.bytes, "s", ++counter) });
    clients.push(client);
    await client.subscribeAsync(deviceTopics(id).response, { qos: 0 });
    return client;
  }

  before(async () => {
    t = await startTestCloud();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await end(c);
  });
  after(async () => t?.stop());

  it("schema_EveryNetworkColumn_InTheRegistry", async () => {
    // every backend's schema has the network columns (schema step 4 adds them to older registries)
    for (const [name] of NETWORK_DEVICE_COLUMNS) {
      await t.cloud.registry.storage.get(`SELECT ${name} FROM devices LIMIT 1`);
    }
  });

  it("setHotspotProfiles_BumpsRevision_NoticeToLiveDevices_ConfigServesTheSet", async () => {
    const client = await secretDevice("net-1");
    const before = (await t.cloud.network.listHotspotProfiles()).rev;
    const notice = nextNotice(client, "net-1");
    const set = await t.cloud.network.setHotspotProfiles({ profiles: [ZIPKEY] });
    assert.equal(set.rev, before + 1);
    assert.deepEqual(await notice, { v: 1, notice: "config" });
    const config = await exchange(client, "net-1", { v: 1, rid: "c1", op: "config" });
    assert.deepEqual(config, { v: 1, rid: "c1", op: "config", ok: true, rev: set.rev, hotspots: [ZIPKEY] });
    const hello = await exchange(client, "net-1", { v: 1, rid: "h1", op: "hello", rev: 0, seal: 3, key: sealPublic });
    assert.equal(hello.ok, true);
    const h = hello as Extract<CloudResponse, { op: "hello"; ok: true }>;
    assert.equal(h.rev, set.rev);
    assert.equal(h.network, false);
    assert.ok(Math.abs(h.time - Date.now() / 1000) < 5, "time is the cloud's wall clock");
  });

  it("setHotspotProfiles_Invalid_InvalidInputNamingTheField_NothingChanged", async () => {
    const before = await t.cloud.network.listHotspotProfiles();
    const cases: [unknown, string][] = [
      [[{ ...ZIPKEY, name: "" }], "profiles[0].name"],
      [[{ name: "x", radius: ZIPKEY.radius }], "profiles[0].ssid"],
      [[{ ...ZIPKEY, roamingConsortium: ["5A03BA"] }], "profiles[0].roamingConsortium[0]"],
      [[{ ...ZIPKEY, radius: { serverName: "radius.localhost", ca: "not a pem" } }], "profiles[0].radius.ca"],
      [[ZIPKEY, ZIPKEY], "profiles.name"],
      [Array(5).fill(ZIPKEY), "profiles"],
      ["nope", "profiles"],
    ];
    for (const [profiles, field] of cases) {
      await assert.rejects(t.cloud.network.setHotspotProfiles({ profiles: profiles as HotspotProfile[] }),
        (error: unknown) => isCloudError(error, "INVALID_INPUT") && error.field === field, `field ${field}`);
    }
    assert.deepEqual(await t.cloud.network.listHotspotProfiles(), before);
  });

  it("handoff_SealedEndToEnd_NoticeFetchOpenResult_StoredOnDeviceRow", async () => {
    const id = "net-2";
    const client = await secretDevice(id);
    await assert.rejects(t.cloud.network.setDeviceNetwork({ deviceId: id, ssid: "Home", password: "correct horse" }),
      (error: unknown) => isCloudError(error, "INVALID_INPUT") && error.field === "deviceId", "no key yet");
    const hello = await exchange(client, id, {
      v: 1, rid: "h1", op: "hello", rev: 1, seal: 3, key: sealPublic, net: { kind: "hotspot", ssid: "ZipKey" },
      failures: [{ kind: "hotspot", ssid: "Partner", reason: "EAP-REJECTED", detail: "not here", n: 2 }],
    });
    assert.equal(hello.ok, true);
    const notice = nextNotice(client, id);
    const view = await t.cloud.network.setDeviceNetwork({ deviceId: id, ssid: "Home", password: "correct horse", priority: 10 });
    assert.deepEqual(await notice, { v: 1, notice: "network" });
    assert.deepEqual(view.network.pendingChange, { seq: 1, action: "set" });
    assert.deepEqual(view.network.on, { kind: "hotspot", ssid: "ZipKey" });
    assert.equal(view.network.failures[0].detail, "not here");
    // the registry file never holds the password
    const db = t.cloud.registry.db;
    if (db) {
      db.pragma("wal_checkpoint(TRUNCATE)");
      const file = readFileSync(t.cloud.registry.path);
      assert.equal(file.includes(Buffer.from("correct horse")), false, "password not in the registry");
    }
    const stored = JSON.stringify(await t.cloud.registry.storage.all("SELECT * FROM devices"), (_key, value) =>
      value && value.type === "Buffer" ? Buffer.from(value.data).toString("latin1") : value);
    assert.equal(stored.includes("correct horse"), false, "password not in any device column");
    const again = await exchange(client, id, { v: 1, rid: "h2", op: "hello", rev: 1, seal: 3, key: sealPublic });
    assert.equal((again as Extract<CloudResponse, { op: "hello"; ok: true }>).network, true);
    const fetched = await exchange(client, id, { v: 1, rid: "n1", op: "network" });
    assert.equal(fetched.ok, true);
    const sealed = fetched as Extract<CloudResponse, { op: "network"; ok: true }>;
    const plaintext = openSealed(digest, nodeSeal, sealKey, sealPublic, id, sealed.sealed);
    assert.ok(plaintext, "opens with the device's key");
    assert.deepEqual(decodeNetworkChange(plaintext), { seq: 1, action: "set", ssid: "Home", password: "correct horse", priority: 10 });
    assert.equal(openSealed(digest, nodeSeal, new Uint8Array(32).fill(1), sealPublicKey(nodeSeal, new Uint8Array(32).fill(1)), id, sealed.sealed), undefined, "not with another key");
    assert.equal(openSealed(digest, nodeSeal, sealKey, sealPublic, "net-other", sealed.sealed), undefined, "not for another device");
    const result = await exchange(client, id, { v: 1, rid: "r1", op: "network-result", seq: 1, result: "FAILED", reason: "INCORRECT-PASSWORD" });
    assert.deepEqual(result, { v: 1, rid: "r1", op: "network-result", ok: true, seq: 1 });
    const shown = await t.cloud.services.getDevice({ deviceId: id });
    assert.equal(shown.network.pendingChange, null, "delivered change dropped");
    assert.equal(shown.network.lastResult?.result, "FAILED");
    assert.equal(shown.network.lastResult?.reason, "INCORRECT-PASSWORD");
    const nothing = await exchange(client, id, { v: 1, rid: "n2", op: "network" });
    assert.deepEqual(nothing, { v: 1, rid: "n2", op: "network", ok: false, reason: "NOTHING_PENDING" });
    // forget, then a hello with another key: the registered P-256 key is pinned, the change stays
    await t.cloud.network.forgetDeviceNetwork({ deviceId: id, ssid: "Home" });
    await exchange(client, id, { v: 1, rid: "h3", op: "hello", rev: 1, seal: 3, key: sealPublicKey(nodeSeal, new Uint8Array(32).fill(7)) });
    assert.deepEqual((await t.cloud.services.getDevice({ deviceId: id })).network.pendingChange, { seq: 2, action: "forget" }, "pinned key kept");
    // the operator resets the key (the device really lost it): the change sealed to the old key is void
    await t.cloud.network.resetSealingKey({ deviceId: id });
    const voided = await t.cloud.services.getDevice({ deviceId: id });
    assert.equal(voided.network.pendingChange, null);
    assert.equal(voided.network.lastResult?.result, "UNREADABLE");
    // and the device's next hello registers its new key
    await exchange(client, id, { v: 1, rid: "h4", op: "hello", rev: 1, seal: 3, key: sealPublicKey(nodeSeal, new Uint8Array(32).fill(7)) });
    assert.equal((await t.cloud.services.getDevice({ deviceId: id })).network.sealingKey, true);
    assert.ok((await t.cloud.registry.auditLog(20, id)).some((r) => r.action === "network.set" && !r.detail?.includes("Home")), "audited without the SSID");
  });

  it("setDeviceNetwork_Format2KeyOfOlderFirmware_SealedInFormat2", async () => {
    // a device in the field says hello without `seal` and a 32-byte X25519 key
    const id = "net-legacy";
    const client = await secretDevice(id);
    const hello = await exchange(client, id, { v: 1, rid: "h1", op: "hello", rev: 0, key: legacyPublicKey(new Uint8Array(32).fill(9)) });
    assert.equal(hello.ok, true);
    await t.cloud.network.setDeviceNetwork({ deviceId: id, ssid: "Home", password: "correct horse" });
    const fetched = await exchange(client, id, { v: 1, rid: "n1", op: "network" }) as Extract<CloudResponse, { op: "network"; ok: true }>;
    assert.equal(fetched.sealed[0], 2, "format 2");
    assert.equal(fetched.sealed.length, 1 + 32 + encodeNetworkChange({ seq: 1, action: "set", ssid: "Home", password: "correct horse", priority: 50 }).length + 32);
    // and after a firmware update, format 3 to the new P-256 key
    await exchange(client, id, { v: 1, rid: "h2", op: "hello", rev: 0, seal: 3, key: sealPublic });
    await t.cloud.network.setDeviceNetwork({ deviceId: id, ssid: "Home", password: "correct horse" });
    const again = await exchange(client, id, { v: 1, rid: "n2", op: "network" }) as Extract<CloudResponse, { op: "network"; ok: true }>;
    assert.equal(again.sealed[0], 3, "format 3");
    assert.ok(openSealed(digest, nodeSeal, sealKey, sealPublic, id, again.sealed), "opens with the new key");
  });

  it("setDeviceNetwork_Refusals", async () => {
    const refusals: [Record<string, unknown>, string, string][] = [
      [{ deviceId: "nobody", ssid: "Home", password: "" }, "DEVICE_NOT_FOUND", "deviceId"],
      [{ deviceId: "net-2", ssid: "", password: "" }, "INVALID_INPUT", "ssid"],
      [{ deviceId: "net-2", ssid: "x".repeat(33), password: "" }, "INVALID_INPUT", "ssid"],
      [{ deviceId: "net-2", ssid: "Home", password: "short" }, "INVALID_INPUT", "password"],
      [{ deviceId: "net-2", ssid: "Home", password: "correct horse", priority: 101 }, "INVALID_INPUT", "priority"],
    ];
    for (const [input, code, field] of refusals) {
      await assert.rejects(t.cloud.network.setDeviceNetwork(input as never),
        (error: unknown) => isCloudError(error) && error.code === code && error.field === field, JSON.stringify(input));
    }
  });

  it("malformedNetworkRequests_RefusedWithReason", async () => {
    const client = await secretDevice("net-3");
    const cases: [string, string][] = [
      [`{"v":1,"rid":"m1","op":"hello","rev":0}`, "BAD_REQUEST"],
      [`{"v":1,"rid":"m2","op":"hello","rev":-1,"key":"${"A".repeat(43)}"}`, "BAD_REQUEST"],
      [`{"v":1,"rid":"m3","op":"network-result","seq":1,"result":"FAILED"}`, "BAD_REQUEST"],
      [`{"v":1,"rid":"m4","op":"network-result","seq":1,"result":"MAYBE"}`, "BAD_REQUEST"],
      [`{"v":1,"rid":"m5","op":"config","x":1}`, "BAD_REQUEST"],
    ];
    for (const [payload, reason] of cases) {
      const response = await exchange(client, "net-3", utf8Encode(payload));
      assert.equal(response.ok, false, payload);
      assert.equal((response as Extract<CloudResponse, { ok: false }>).reason, reason, payload);
    }
  });

  it("http_HotspotsAndDeviceNetwork_Routes", async () => {
    const api = testAdminApi(t.cloud.services, { network: t.cloud.network });
    const json = { "content-type": "application/json" };
    const put = await api.inject({ method: "PUT", url: "/v1/hotspots", headers: json, body: JSON.stringify({ profiles: [ZIPKEY, { ...ZIPKEY, name: "cafe", roamingConsortium: undefined, ssid: "Cafe" }] }) });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const get = await api.inject({ method: "GET", url: "/v1/hotspots" });
    assert.equal((get.body as { profiles: unknown[] }).profiles.length, 2);
    const bad = await api.inject({ method: "PUT", url: "/v1/hotspots", headers: json, body: JSON.stringify({ profiles: [{}] }) });
    assert.equal(bad.status, 400);
    const set = await api.inject({ method: "PUT", url: "/v1/devices/net-2/network", headers: json, body: JSON.stringify({ ssid: "Home2", password: "another secret", priority: 5 }) });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const forget = await api.inject({ method: "POST", url: "/v1/devices/net-2/network/forget", headers: json, body: JSON.stringify({ ssid: "Home2" }) });
    assert.equal(forget.status, 200);
    const missing = await api.inject({ method: "PUT", url: "/v1/devices/nobody/network", headers: json, body: JSON.stringify({ ssid: "a", password: "" }) });
    assert.equal(missing.status, 404);
  });

  it("cli_HotspotSetListAndDeviceNetwork", async () => {
    const io = { lines: [] as string[], errors: [] as string[] };
    const cliIo = { out: (text: string) => void io.lines.push(text), err: (text: string) => void io.errors.push(text) };
    const file = join(t.dataDir, "profiles.json");
    writeFileSync(file, JSON.stringify([ZIPKEY]));
    const env = { WCM_DATA: t.dataDir, WCM_MASTER_KEY: Buffer.from(t.masterKey).toString("hex"), ...(await backendEnv(t.dataDir)) };
    assert.equal(await runCli(["hotspot", "set", file], env, cliIo), 0, io.errors.join("\n"));
    assert.equal(await runCli(["hotspot", "list"], env, cliIo), 0);
    assert.match(io.lines[io.lines.length - 1], /"zipkey"/);
    const pw = join(t.dataDir, "pw.txt");
    writeFileSync(pw, "cli secret pass\n");
    assert.equal(await runCli(["device", "network", "net-2", "--ssid", "Lab", "--password-file", pw, "--priority", "7"], env, cliIo), 0, io.errors.join("\n"));
    assert.match(io.lines[io.lines.length - 1], /"pendingChange"/);
    assert.equal(await runCli(["device", "forget-network", "net-2", "--ssid", "Lab"], env, cliIo), 0);
    assert.equal(await runCli(["device", "network", "net-2", "--ssid", "Lab"], env, cliIo), 2, "password required");
    assert.equal(await runCli(["device", "network", "net-2", "--ssid", "Lab", "--password", "x"], env, cliIo), 2, "no password on the command line");
    assert.equal(await runCli(["device", "network", "net-2", "--ssid", "Open", "--open"], env, cliIo), 0, io.errors.join("\n"));
  });

  it("packetGuard_AllowsTheLargestConfigResponse_AndItReachesTheDevice", async () => {
    assert.ok(DEFAULT_MAX_PACKET_BYTES >= MAX_CONFIG_BYTES + 2 + "wcm/v1/".length + 64 + "/res".length);
    const big = "-----BEGIN CERTIFICATE-----\n" + "A".repeat(1700) + "\n-----END CERTIFICATE-----";
    const profiles = [{ ...ZIPKEY, radius: { serverName: "radius.localhost", ca: big } }, { name: "cafe", ssid: "Cafe", radius: { serverName: "radius.localhost", ca: big } }];
    await t.cloud.network.setHotspotProfiles({ profiles });
    const client = await secretDevice("net-4");
    const config = await exchange(client, "net-4", { v: 1, rid: "big", op: "config" });
    assert.equal(config.ok, true);
    assert.equal((config as Extract<CloudResponse, { op: "config"; ok: true }>).hotspots[1].radius.ca, big);
  });
});

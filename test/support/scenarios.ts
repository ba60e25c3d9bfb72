/*
 * Device scenarios over the fake cloud, written without Node APIs so the same
 * code runs under mocha on Node and inside XS (test/xs-core.test.ts bundles it).
 * Each scenario throws an Error describing the first expectation that failed.
 */
import { fromHex, toHex } from "../../modules/bytes";
import { validateConfig, type DeviceConfig } from "../../modules/config";
import { CredentialStore } from "../../modules/credential-store";
import type { HotspotProfile } from "../../modules/hotspots";
import { ConnectionManager, type ManagerPorts, type ManagerStatus } from "../../modules/manager";
import { NetworkStore } from "../../modules/network-store";
import { jsSeal } from "../../modules/js-seal";
import type { DigestPort, JoinRequest, KeyValuePort, RandomPort, ScheduledTask, SchedulerPort } from "../../modules/ports";
import { FakeCloud } from "./fake-cloud";
import { FakeRadio, type FakeAccessPoint } from "./fake-radio";

/** A portable in-memory flash with erase-then-write semantics and a power-cut switch. */
export class MemoryFlash implements KeyValuePort {
  readonly entries = new Map<string, Uint8Array>();
  writes = 0;
  /** true from a simulated power cut on: every access throws, like a CPU that stopped */
  dead = false;
  #cutAt = 0;

  cutPowerAtWrite(n: number): void {
    this.#cutAt = n;
  }

  get(key: string): Uint8Array | undefined {
    if (this.dead) throw new PowerCutSignal();
    return this.entries.get(key)?.slice();
  }

  set(key: string, value: Uint8Array): void {
    if (key.length > 15 || value.length > 4000) throw new Error("ESP32 preference limits");
    if (this.dead) throw new PowerCutSignal();
    this.writes++;
    this.entries.delete(key);
    if (this.#cutAt > 0 && --this.#cutAt === 0) {
      this.dead = true;
      throw new PowerCutSignal();
    }
    this.entries.set(key, value.slice());
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

/** Thrown by MemoryFlash at a simulated power cut. */
export class PowerCutSignal extends Error {
  constructor() {
    super("power cut");
  }
}

/** Manual clock and timers, portable (no setTimeout). */
export class TestTime implements SchedulerPort {
  now = 0;
  #tasks: { at: number; seq: number; run: () => void; cancelled: boolean }[] = [];
  #seq = 0;

  after(delayMs: number, run: () => void): ScheduledTask {
    const task = { at: this.now + Math.max(0, delayMs), seq: this.#seq++, run, cancelled: false };
    this.#tasks.push(task);
    return { cancel: () => { task.cancelled = true; } };
  }

  /** Runs due timers up to now + ms; stops early once `halted()` is true (power lost). */
  advance(ms: number, halted: () => boolean = () => false): void {
    const end = this.now + ms;
    while (!halted()) {
      this.#tasks = this.#tasks.filter((task) => !task.cancelled);
      this.#tasks.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#tasks[0];
      if (!next || next.at > end) break;
      this.#tasks.shift();
      this.now = next.at;
      next.run();
    }
    this.now = end;
  }

  /** Forgets every timer (the device lost power). */
  reset(): void {
    this.#tasks = [];
  }
}

/** A deterministic RandomPort: SHA-256 in counter mode over a seed. */
export function testRandom(digest: DigestPort, seed: string): RandomPort {
  let counter = 0;
  return {
    bytes(length) {
      const out = new Uint8Array(length);
      for (let filled = 0; filled < length; filled += 32) {
        const block = digest.sha256(new Uint8Array([...seed].map((c) => c.charCodeAt(0) & 0xff).concat([counter >> 8 & 255, counter++ & 255])));
        out.set(block.subarray(0, Math.min(32, length - filled)), filled);
      }
      return out;
    },
  };
}

const CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIBfake\n-----END PRIVATE KEY-----";

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** A test bed: one fake cloud, manual time, and helpers to make devices. */
export class TestBed {
  readonly time = new TestTime();
  readonly cloud: FakeCloud;

  constructor(readonly digest: DigestPort, seed = "wcm") {
    this.cloud = new FakeCloud(digest, testRandom(digest, `${seed}/cloud`), this.time);
  }

  config(deviceId: string, option: "secret" | "temporary" | "certificate", key?: Uint8Array, extra: Record<string, unknown> = {}): DeviceConfig {
    const cloud = { host: "localhost", port: 8883, ca: CA };
    if (option === "secret") return validateConfig({ deviceId, option, secret: toHex(key as Uint8Array), cloud, ...extra });
    if (option === "temporary") return validateConfig({ deviceId, option, provisioningKey: toHex(key as Uint8Array), cloud, ...extra });
    return validateConfig({ deviceId, option, certificate: CA, privateKey: KEY, cloud, ...extra });
  }

  /** A fake radio whose enterprise access points ask this cloud (hotspotPasswordOk / certificateOk). */
  radio(): FakeRadio {
    return new FakeRadio(this.time);
  }

  /** A partner hotspot access point backed by this cloud's fake RADIUS server. */
  hotspotAp(ssid: string, bssid: string, rssi: number, extra: Partial<FakeAccessPoint> = {}): FakeAccessPoint {
    return {
      ssid, bssid, rssi, security: "enterprise",
      radius: {
        serverName: RADIUS_NAME, ca: RADIUS_CA,
        check: (request) => {
          const ok = request.method === "tls" ? this.cloud.certificateOk(request.identity) : this.cloud.hotspotPasswordOk(request.identity, request.password);
          return ok ? { ok: true } : { ok: false, replyMessage: "unknown device or wrong password" };
        },
      },
      ...extra,
    };
  }

  device(config: DeviceConfig, flash: KeyValuePort = new MemoryFlash(), seed = config.deviceId, radio?: FakeRadio, recorder?: ManagerPorts["recorder"]): { manager: ConnectionManager; flash: KeyValuePort; states: ManagerStatus[] } {
    const manager = new ConnectionManager(config, {
      digest: this.digest,
      seal: jsSeal,
      random: testRandom(this.digest, `${seed}/device`),
      clock: { now: () => this.time.now },
      scheduler: this.time,
      kv: flash,
      link: radio ? radio.gate(this.cloud.linkFactory()) : this.cloud.linkFactory(),
      ...(radio ? { network: radio } : {}),
      ...(recorder ? { recorder } : {}),
    }, { requestTimeoutMs: 2000 });
    const states: ManagerStatus[] = [];
    manager.onStatus((status) => states.push(status));
    return { manager, flash, states };
  }
}

const SECRET = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const PROVISIONING_KEY = fromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff");

/** Each of the three options reaches ONLINE; the temporary one ends PERMANENT. */
export function scenarioAllOptionsOnline(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.registerSecret("dev-secret", SECRET);
  bed.cloud.registerCertificate("dev-cert");
  bed.cloud.addProvisioningKey(PROVISIONING_KEY);
  const devices = [
    bed.device(bed.config("dev-secret", "secret", SECRET)),
    bed.device(bed.config("dev-cert", "certificate")),
    bed.device(bed.config("dev-temp", "temporary", PROVISIONING_KEY)),
  ];
  for (const device of devices) device.manager.start();
  bed.time.advance(1000);
  const [secret, cert, temp] = devices.map((device) => device.manager.status);
  check(secret.state === "ONLINE" && secret.credential === "secret", `secret device: ${secret.state}/${secret.credential}`);
  check(cert.state === "ONLINE" && cert.credential === "certificate", `certificate device: ${cert.state}`);
  check(temp.state === "ONLINE" && temp.credential === "permanent", `temporary device: ${temp.state}/${temp.credential}`);
  check(bed.cloud.activeSecretCount("dev-temp") === 1, "temporary device has one active secret");
  check(devices[2].states.some((s) => s.state === "ISSUING"), "temporary device went through ISSUING");
}

/** A temporary device keeps its permanent secret across a restart and never uses the temporary one again. */
export function scenarioPermanentSurvivesRestart(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.addProvisioningKey(PROVISIONING_KEY);
  const config = bed.config("dev-temp", "temporary", PROVISIONING_KEY);
  const first = bed.device(config);
  first.manager.start();
  bed.time.advance(1000);
  check(first.manager.status.credential === "permanent", "first boot ends permanent");
  first.manager.stop();
  const second = bed.device(config, first.flash, "second-boot");
  second.manager.start();
  bed.time.advance(1000);
  check(second.manager.status.state === "ONLINE", `second boot ONLINE, got ${second.manager.status.state}`);
  check(second.manager.status.credential === "permanent", "second boot uses the permanent secret");
  check(bed.cloud.requests.filter((op) => op === "issue").length === 1, "issued once");
}

/** Lost messages in both directions: the device resends with the same request id and ends PERMANENT. */
export function scenarioDroppedMessages(digest: DigestPort): void {
  for (const [direction, count] of [["toCloud", 1], ["toDevice", 1], ["toCloud", 2], ["toDevice", 2], ["toDevice", 3]] as const) {
    const bed = new TestBed(digest, `${direction}${count}`);
    bed.cloud.addProvisioningKey(PROVISIONING_KEY);
    const device = bed.device(bed.config("dev-temp", "temporary", PROVISIONING_KEY));
    device.manager.start();
    bed.time.advance(50);
    bed.cloud.drop(direction, count);
    bed.time.advance(120_000);
    const status = device.manager.status;
    check(status.state === "ONLINE" && status.credential === "permanent", `drop ${count} ${direction}: ${status.state}/${status.credential}`);
    check(bed.cloud.activeSecretCount("dev-temp") === 1, `drop ${count} ${direction}: one active secret`);
  }
}

/**
 * A power cut at every flash write of a temporary device's first boot, then a
 * reboot: the device always ends ONLINE and PERMANENT, the cloud never holds two
 * active secrets. Returns how many cut points were exercised.
 */
export function scenarioPowerCutSweep(digest: DigestPort): number {
  let cutPoints = 0;
  for (let cut = 1; ; cut++) {
    const bed = new TestBed(digest, `cut${cut}`);
    bed.cloud.addProvisioningKey(PROVISIONING_KEY);
    const config = bed.config("dev-temp", "temporary", PROVISIONING_KEY);
    const flash = new MemoryFlash();
    flash.cutPowerAtWrite(cut);
    const first = bed.device(config, flash, `boot1-${cut}`);
    first.manager.start();
    bed.time.advance(5000, () => flash.dead);
    if (!flash.dead) {
      check(first.manager.status.credential === "permanent", "uncut boot ends permanent");
      return cutPoints;
    }
    cutPoints++;
    bed.time.reset();
    bed.cloud.dropAllSessions();
    check(bed.cloud.activeSecretCount("dev-temp") <= 1, `cut ${cut}: at most one active secret`);
    flash.dead = false;
    const second = bed.device(config, flash, `boot2-${cut}`);
    second.manager.start();
    bed.time.advance(10 * 60_000);
    const status = second.manager.status;
    check(status.state === "ONLINE" && status.credential === "permanent", `cut at write ${cut}: ${status.state}/${status.credential}`);
    check(bed.cloud.activeSecretCount("dev-temp") === 1, `cut ${cut}: one active secret at the end`);
    if (cut > 50) throw new Error("sweep did not terminate");
  }
}

/** The cloud lost its pending secret after the device stored it: the device falls back to its temporary credential once and still ends PERMANENT. */
export function scenarioCloudLostPending(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.addProvisioningKey(PROVISIONING_KEY);
  const config = bed.config("dev-temp", "temporary", PROVISIONING_KEY);
  const flash = new MemoryFlash();
  const first = bed.device(config, flash, "boot1");
  first.manager.start();
  bed.time.advance(25); // CONNACK and issue request
  bed.cloud.drop("toCloud", 5); // the commit never arrives
  bed.time.advance(35);
  first.manager.stop();
  const stored = new CredentialStore(flash, digest, "dev-temp").loadSecret();
  check(stored !== undefined && !stored.confirmed, "device stored an unconfirmed secret");
  bed.cloud.losePending("dev-temp");
  bed.cloud.drop("toCloud", 0);
  const second = bed.device(config, flash, "boot2");
  second.manager.start();
  bed.time.advance(60_000);
  const status = second.manager.status;
  check(status.state === "ONLINE" && status.credential === "permanent", `after lost pending: ${status.state}/${status.credential}`);
  check(bed.cloud.activeSecretCount("dev-temp") === 1, "one active secret");
}

/** Refused credentials back off from minutes; network failures from seconds. */
export function scenarioBackoffClasses(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.registerSecret("dev-secret", SECRET);
  const wrong = bed.device(bed.config("dev-secret", "secret", PROVISIONING_KEY));
  wrong.manager.start();
  bed.time.advance(100);
  const refused = wrong.manager.status;
  check(refused.state === "AUTH_FAILED", `wrong secret: ${refused.state}`);
  check((refused.retryInMs ?? 0) >= 30_000, `auth failure waits at least 30 s, got ${refused.retryInMs}`);
  check(refused.lastFailure?.reason === "BAD_CREDENTIALS", `reason ${refused.lastFailure?.reason}`);
  wrong.manager.stop();

  bed.cloud.failNetwork(3);
  const flaky = bed.device(bed.config("dev-secret", "secret", SECRET));
  flaky.manager.start();
  bed.time.advance(100);
  check(flaky.manager.status.state === "RETRY_WAIT", `network failure: ${flaky.manager.status.state}`);
  check((flaky.manager.status.retryInMs ?? 1e9) <= 1000, "first network retry within a second");
  bed.time.advance(30_000);
  check(flaky.manager.status.state === "ONLINE", `recovers after network failures: ${flaky.manager.status.state}`);
}

/**
 * A session lost while ONLINE (a cloud restart) is retried within the short "lost" window for 15 attempts, then
 * on the network's exponential back-off from its 4th step; a first boot's network failures back off exponentially.
 */
export function scenarioLostSessionRetriesFast(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.registerSecret("dev-secret", SECRET);
  const device = bed.device(bed.config("dev-secret", "secret", SECRET));
  const waits: number[] = [];
  device.manager.onStatus((s) => {
    if (s.state === "RETRY_WAIT" && s.retryInMs !== undefined) waits.push(s.retryInMs);
  });
  device.manager.start();
  bed.time.advance(1000);
  check(device.manager.status.state === "ONLINE", `online before the restart: ${device.manager.status.state}`);
  bed.cloud.failNetwork(20);
  bed.cloud.dropAllSessions();
  bed.time.advance(10 * 60_000);
  check(device.manager.status.state === "ONLINE", `back online after the restart: ${device.manager.status.state}`);
  check(waits.length === 21, `one wait per failure (the lost session and 20 failed connects): ${waits.length}`);
  for (let i = 0; i < 15; i++) check(waits[i] >= 250 && waits[i] < 250 + Math.min(8000, 1000 * (i + 1)), `lost attempt ${i + 1} waits within its window: ${waits[i]}`);
  check(waits[15] >= 4000 && waits[15] < 8000, `the 16th attempt is the network's 4th step: ${waits[15]}`);
  check(waits[20] >= 60_000, `then the network's back-off grows: ${waits[20]}`);
  device.manager.stop();

  bed.cloud.registerSecret("dev-fresh", SECRET);
  bed.cloud.failNetwork(5);
  const fresh = bed.device(bed.config("dev-fresh", "secret", SECRET));
  const freshWaits: number[] = [];
  fresh.manager.onStatus((s) => {
    if (s.state === "RETRY_WAIT" && s.retryInMs !== undefined) freshWaits.push(s.retryInMs);
  });
  fresh.manager.start();
  bed.time.advance(10 * 60_000);
  check(fresh.manager.status.state === "ONLINE", `first boot online: ${fresh.manager.status.state}`);
  check(freshWaits.length === 5 && freshWaits[4] >= 8000, `a first boot's network failures back off exponentially: ${freshWaits.join(",")}`);
}

// ---------------------------------------------------------------- networks

const RADIUS_NAME = "radius.localhost";
const RADIUS_CA = "-----BEGIN CERTIFICATE-----\nMIIBradiusCA\n-----END CERTIFICATE-----";
const ZIPKEY: HotspotProfile = { name: "zipkey", roamingConsortium: ["5a03ba"], radius: { serverName: RADIUS_NAME, ca: RADIUS_CA } };
const PARTNER: HotspotProfile = { name: "partner", ssid: "Partner", anonymousIdentity: "anon@partner", radius: { serverName: RADIUS_NAME, ca: RADIUS_CA } };
const CAFE: HotspotProfile = { name: "cafe", ssid: "Cafe", radius: { serverName: RADIUS_NAME, ca: RADIUS_CA } };
/** 2026-01-01, the firmware's build time in these scenarios */
const BUILD_TIME = 1_767_225_600;

function hotspotConfig(bed: TestBed, deviceId: string, option: "secret" | "temporary" | "certificate", key?: Uint8Array): DeviceConfig {
  return bed.config(deviceId, option, key, { hotspots: [ZIPKEY], buildTime: BUILD_TIME });
}

function joinsTo(radio: FakeRadio, ssid: string): JoinRequest[] {
  return radio.joins.filter((join) => join.ssid === ssid);
}

/**
 * Each option joins a partner hotspot (matched by roaming-consortium OI, never
 * the stronger neighbour's PSK network) with its own credential (TTLS/PAP with
 * the derived password; EAP-TLS for certificates), then reaches ONLINE; the
 * hello brings the cloud's time and a newer profile set (fetched with config).
 */
export function scenarioHotspotJoinEachOption(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.registerSecret("dev-secret", SECRET);
  bed.cloud.registerCertificate("dev-cert");
  bed.cloud.addProvisioningKey(PROVISIONING_KEY);
  const rev = bed.cloud.setHotspots([ZIPKEY, PARTNER]);
  const setups = [
    { config: hotspotConfig(bed, "dev-secret", "secret", SECRET), method: "ttls-pap", credential: "secret" },
    { config: hotspotConfig(bed, "dev-cert", "certificate"), method: "tls", credential: "certificate" },
    { config: hotspotConfig(bed, "dev-temp", "temporary", PROVISIONING_KEY), method: "ttls-pap", credential: "permanent" },
  ];
  const devices = setups.map((setup) => {
    const radio = bed.radio();
    radio.add({ ssid: "Neighbour", bssid: "02:00:00:00:00:01", rssi: -30, security: "psk", psk: "not-ours-12" });
    radio.add(bed.hotspotAp("ZipKey", "02:00:00:00:00:02", -60, { roamingConsortium: ["5A03BA"] }));
    const flash = new MemoryFlash();
    return { setup, radio, ...bed.device(setup.config, flash, undefined, radio) };
  });
  for (const device of devices) device.manager.start();
  bed.time.advance(5000);
  for (const { setup, radio, manager, states, flash } of devices) {
    const id = setup.config.deviceId;
    const status = manager.status;
    check(status.state === "ONLINE" && status.credential === setup.credential, `${id}: ${status.state}/${status.credential} (${status.lastFailure?.reason ?? ""} ${status.lastFailure?.detail ?? ""})`);
    check(status.network?.kind === "hotspot" && status.network.ssid === "ZipKey" && status.network.profile === "zipkey", `${id}: on ${JSON.stringify(status.network)}`);
    check(states.some((s) => s.state === "SCANNING") && states.some((s) => s.state === "JOINING"), `${id}: scanned and joined`);
    check(joinsTo(radio, "Neighbour").length === 0, `${id}: never tried the neighbour's network`);
    const join = radio.joins[0];
    check(join.security === "enterprise" && join.method === setup.method && join.identity === id, `${id}: joined with ${JSON.stringify(join).slice(0, 80)}`);
    if (join.security === "enterprise" && join.method === "ttls-pap") check(join.anonymousIdentity === "anonymous@wcm", `${id}: outer identity`);
    const clock = manager.wallClock();
    check(clock.synced && clock.unixSeconds >= bed.cloud.timeSeconds, `${id}: wall clock ${clock.unixSeconds}`);
    check(manager.hotspots.rev === rev && manager.hotspots.profiles.length === 2, `${id}: profiles rev ${manager.hotspots.rev}`);
    const store = new NetworkStore(flash, digest, id);
    check(store.loadHotspots()?.rev === rev, `${id}: profile set stored`);
    check(store.loadTimeFloor() >= bed.cloud.timeSeconds, `${id}: time floor stored`);
    check(bed.cloud.devices.get(id)?.sealKey?.length === 65, `${id}: cloud holds the sealing key`);
    check(bed.cloud.devices.get(id)?.net?.ssid === "ZipKey", `${id}: cloud knows the network`);
  }
  // After issuance the temporary device's hotspot password is derived from its permanent secret.
  const temp = devices[2];
  temp.manager.stop();
  const again = bed.device(temp.setup.config, temp.flash, "temp-boot2", temp.radio);
  again.manager.start();
  bed.time.advance(5000);
  check(again.manager.status.state === "ONLINE", `temporary device after restart: ${again.manager.status.state}`);
  const last = temp.radio.joins[temp.radio.joins.length - 1];
  const first = temp.radio.joins[0];
  check(last.security === "enterprise" && last.method === "ttls-pap" && first.security === "enterprise" && first.method === "ttls-pap"
    && last.password !== first.password, "the permanent secret's hotspot password replaces the temporary one");
}

/** A device online on a hotspot, for the hand-off scenarios. */
function onHotspot(bed: TestBed, digest: DigestPort, homePsk: string) {
  bed.cloud.registerSecret("dev-secret", SECRET);
  const radio = bed.radio();
  radio.add(bed.hotspotAp("ZipKey", "02:00:00:00:00:02", -70, { roamingConsortium: ["5a03ba"] }));
  radio.add({ ssid: "Home", bssid: "02:00:00:00:00:03", rssi: -50, security: "psk", psk: homePsk });
  const flash = new MemoryFlash();
  const config = hotspotConfig(bed, "dev-secret", "secret", SECRET);
  const device = bed.device(config, flash, undefined, radio);
  device.manager.start();
  bed.time.advance(3000);
  check(device.manager.status.state === "ONLINE" && device.manager.status.network?.kind === "hotspot", `online on the hotspot: ${device.manager.status.state}`);
  return { radio, config, ...device, store: new NetworkStore(flash, digest, "dev-secret") };
}

/**
 * Hand-off with a wrong password: the device stores the network, leaves the
 * hotspot, fails INCORRECT-PASSWORD, falls back to the hotspot and reports
 * FAILED with the reason (and the failure in its next hello); it keeps trying
 * the private network with back-off.
 */
export function scenarioHandoffWrongPassword(digest: DigestPort): void {
  const bed = new TestBed(digest);
  const { radio, manager, store } = onHotspot(bed, digest, "right-password");
  const seq = bed.cloud.setNetwork("dev-secret", { ssid: "Home", password: "wrong-password", priority: 10 });
  bed.time.advance(5000);
  const status = manager.status;
  check(status.state === "ONLINE" && status.network?.kind === "hotspot", `fell back to the hotspot: ${status.state} ${JSON.stringify(status.network)}`);
  check(joinsTo(radio, "Home").length === 1, "tried the private network once");
  check(store.loadNetworks().networks[0]?.password === "wrong-password" && store.loadNetworks().seq === seq, "network stored");
  const results = bed.cloud.devices.get("dev-secret")?.networkResults ?? [];
  check(results.some((r) => r.seq === seq && r.result === "FAILED" && r.reason === "INCORRECT-PASSWORD"), `cloud got FAILED INCORRECT-PASSWORD: ${JSON.stringify(results)}`);
  const failures = bed.cloud.devices.get("dev-secret")?.networkFailures ?? [];
  check(failures.some((f) => f.kind === "private" && f.ssid === "Home" && f.reason === "INCORRECT-PASSWORD"), `failure reported in hello: ${JSON.stringify(failures)}`);
  check(bed.cloud.devices.get("dev-secret")?.sealed === undefined, "the cloud dropped the delivered change");
  bed.time.advance(15 * 60_000);
  check(joinsTo(radio, "Home").length >= 2, `kept trying the private network (${joinsTo(radio, "Home").length} joins)`);
  check(manager.status.state === "ONLINE" && manager.status.network?.kind === "hotspot", `back on the hotspot: ${manager.status.state}`);
}

/** Hand-off success: JOINED, reported over the private network; a restart goes straight to it; forget returns to the hotspot. */
export function scenarioHandoffJoinedThenForget(digest: DigestPort): void {
  const bed = new TestBed(digest);
  const { radio, manager, store, flash, config } = onHotspot(bed, digest, "right-password");
  const seq = bed.cloud.setNetwork("dev-secret", { ssid: "Home", password: "right-password", priority: 10 });
  bed.time.advance(5000);
  let status = manager.status;
  check(status.state === "ONLINE" && status.network?.kind === "private" && status.network.ssid === "Home", `on the private network: ${status.state} ${JSON.stringify(status.network)}`);
  const cloudRecord = bed.cloud.devices.get("dev-secret");
  check(cloudRecord?.networkResults?.some((r) => r.seq === seq && r.result === "JOINED") === true, "cloud got JOINED");
  check(cloudRecord?.net?.kind === "private", "hello says private");

  manager.stop();
  const before = radio.joins.length;
  const second = bed.device(config, flash, "boot2", radio);
  second.manager.start();
  bed.time.advance(3000);
  check(second.manager.status.network?.ssid === "Home" && radio.joins.length === before + 1, "restart joins the private network first");

  const forget = bed.cloud.forgetNetwork("dev-secret", "Home");
  bed.time.advance(5000);
  status = second.manager.status;
  check(status.state === "ONLINE" && status.network?.kind === "hotspot", `after forget, on the hotspot: ${status.state} ${JSON.stringify(status.network)}`);
  check(store.loadNetworks().networks.length === 0 && store.loadNetworks().seq === forget, "forgotten in flash");
  check(cloudRecord?.networkResults?.some((r) => r.seq === forget && r.result === "FORGOTTEN") === true, "cloud got FORGOTTEN");
}

/**
 * Faults in order of preference: a hotspot without internet
 * (INTERNET-NOT-REACHABLE), one whose RADIUS rejects (EAP-REJECTED with the
 * Reply-Message), then one that works; nothing in range first (NETWORK-NOT-FOUND,
 * rescans). Every failure reaches the cloud with its reason.
 */
export function scenarioNetworkFaults(digest: DigestPort): void {
  const bed = new TestBed(digest);
  bed.cloud.registerSecret("dev-secret", SECRET);
  const radio = bed.radio();
  const noInternet = radio.add(bed.hotspotAp("Zip-1", "02:00:00:00:01:01", -40, { roamingConsortium: ["5a03ba"], internet: false, inRange: false }));
  const rejecting = radio.add(bed.hotspotAp("Partner", "02:00:00:00:01:02", -50, { inRange: false }));
  rejecting.radius = { ...rejecting.radius!, check: () => ({ ok: false, replyMessage: "device not allowed at this venue" }) };
  const working = radio.add(bed.hotspotAp("Cafe", "02:00:00:00:01:03", -80, { inRange: false }));
  const config = bed.config("dev-secret", "secret", SECRET, { hotspots: [ZIPKEY, PARTNER, CAFE] });
  const device = bed.device(config, new MemoryFlash(), undefined, radio);
  device.manager.start();
  bed.time.advance(2000);
  check(device.manager.status.state === "RETRY_WAIT" && device.manager.status.lastFailure?.reason === "NETWORK-NOT-FOUND", `nothing in range: ${device.manager.status.state} ${device.manager.status.lastFailure?.reason}`);
  const scans = radio.scans;
  for (const ap of [noInternet, rejecting, working]) ap.inRange = true;
  bed.time.advance(60_000);
  check(radio.scans > scans, "rescanned");
  const status = device.manager.status;
  check(status.state === "ONLINE" && status.network?.ssid === "Cafe", `online on the working hotspot: ${status.state} ${JSON.stringify(status.network)}`);
  check(radio.joins.map((j) => j.ssid).join(",").startsWith("Zip-1,Partner,Cafe"), `tried in order: ${radio.joins.map((j) => j.ssid).join(",")}`);
  const partnerJoin = radio.joins.find((j) => j.ssid === "Partner");
  check(partnerJoin?.security === "enterprise" && partnerJoin.method === "ttls-pap" && partnerJoin.anonymousIdentity === "anon@partner", "profile's outer identity used");
  const failures = bed.cloud.devices.get("dev-secret")?.networkFailures ?? [];
  check(failures.some((f) => f.ssid === "Zip-1" && f.reason === "INTERNET-NOT-REACHABLE"), `no-internet reported: ${JSON.stringify(failures)}`);
  check(failures.some((f) => f.ssid === "Partner" && f.reason === "EAP-REJECTED" && f.detail === "device not allowed at this venue"), "EAP reject reported with the Reply-Message");
  // Losing the network: the device rescans and comes back.
  radio.outOfRange("Cafe");
  bed.time.advance(100);
  check(device.manager.status.state !== "ONLINE", "lost the network");
  working.inRange = true;
  bed.time.advance(5 * 60_000);
  check(device.manager.status.state === "ONLINE", `back online after the loss: ${device.manager.status.state}`);
}

/** Every scenario, by name (the XS runner iterates this). */
export const SCENARIOS: Record<string, (digest: DigestPort) => unknown> = {
  scenarioAllOptionsOnline,
  scenarioPermanentSurvivesRestart,
  scenarioDroppedMessages,
  scenarioPowerCutSweep,
  scenarioCloudLostPending,
  scenarioBackoffClasses,
  scenarioLostSessionRetriesFast,
  scenarioHotspotJoinEachOption,
  scenarioHandoffWrongPassword,
  scenarioHandoffJoinedThenForget,
  scenarioNetworkFaults,
};

/*
 * Device scenarios over the fake cloud, written without Node APIs so the same
 * code runs under mocha on Node and inside XS (test/xs-core.test.ts bundles it).
 * Each scenario throws an Error describing the first expectation that failed.
 */
import { fromHex, toHex } from "../../modules/bytes";
import { validateConfig, type DeviceConfig } from "../../modules/config";
import { CredentialStore } from "../../modules/credential-store";
import { ConnectionManager, type ManagerStatus } from "../../modules/manager";
import type { DigestPort, KeyValuePort, RandomPort, ScheduledTask, SchedulerPort } from "../../modules/ports";
import { FakeCloud } from "./fake-cloud";

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

  config(deviceId: string, option: "secret" | "temporary" | "certificate", key?: Uint8Array): DeviceConfig {
    const cloud = { host: "localhost", port: 8883, ca: CA };
    if (option === "secret") return validateConfig({ deviceId, option, secret: toHex(key as Uint8Array), cloud });
    if (option === "temporary") return validateConfig({ deviceId, option, provisioningKey: toHex(key as Uint8Array), cloud });
    return validateConfig({ deviceId, option, certificate: CA, privateKey: KEY, cloud });
  }

  device(config: DeviceConfig, flash: KeyValuePort = new MemoryFlash(), seed = config.deviceId): { manager: ConnectionManager; flash: KeyValuePort; states: ManagerStatus[] } {
    const manager = new ConnectionManager(config, {
      digest: this.digest,
      random: testRandom(this.digest, `${seed}/device`),
      clock: { now: () => this.time.now },
      scheduler: this.time,
      kv: flash,
      link: this.cloud.linkFactory(),
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

/** Every scenario, by name (the XS runner iterates this). */
export const SCENARIOS: Record<string, (digest: DigestPort) => unknown> = {
  scenarioAllOptionsOnline,
  scenarioPermanentSurvivesRestart,
  scenarioDroppedMessages,
  scenarioPowerCutSweep,
  scenarioCloudLostPending,
  scenarioBackoffClasses,
};

/*
 * The cloud sync: what the device and the cloud exchange once logged in.
 *
 * - holds what is persisted for networks (network-store.ts): the hotspot
 *   profile set, the private networks with their change sequence, the sealing
 *   key pair, and the time floor behind the wall clock (wall-clock.ts);
 * - after a login says `hello` (hotspot revision, sealing public key, the
 *   network it is on, network failures since the last hello), takes the
 *   cloud's time, fetches a newer hotspot profile set (`config`) and sealed
 *   private network changes (`network`), stores them crash-safely, starts a
 *   hand-off to a new private network and reports its outcome
 *   (`network-result`);
 * - queues these background requests and the cloud's notices (including
 *   `rotate`) and sends them one at a time when the session is free.
 * It sends through the host's request channel; the radio side is the NetworkDriver.
 */
import type { DeviceConfig } from "./config";
import { isWcmError } from "./errors";
import type { HotspotSet } from "./hotspots";
import type { NetworkDriver, PendingResult } from "./network-driver";
import type { PrivateNetwork } from "./network-selection";
import { applyNetworkChange, NetworkStore } from "./network-store";
import type { ClockPort, DigestPort, KeyValuePort, RandomPort, SealPort } from "./ports";
import {
  decodeNetworkChange,
  MAX_FAILURE_REPORTS,
  type CloudNotice,
  type CloudResponse,
  type DeviceRequest,
} from "./protocol";
import type { FailureClass } from "./retry";
import { newSealSecretKey, openSealed, sealPublicKey, SEAL_VERSION } from "./seal";
import { WallClock } from "./wall-clock";

type Want = "hello" | "config" | "network" | "rotate" | "result";

/** The background operations the sync sends; a refusal of one leaves the session as it is. */
export type SyncOp = "hello" | "config" | "network" | "network-result";

/** What the sync needs from the manager. */
export interface CloudSyncHost {
  /** true when ONLINE, with a link and no request outstanding */
  canSend(): boolean;
  /** sends a request on the session's request channel */
  send(request: DeviceRequest): void;
  newRequestId(): string;
  /** the cloud holds a rotated secret: fetch it with request id `rid` */
  rotate(rid: string): void;
  /** a failure that ends the session (the manager retries) */
  fail(cls: FailureClass, reason: string, detail?: string): void;
  /** leaves the current network and selects again from a fresh scan */
  moveNetwork(): void;
  log(level: "debug" | "info" | "warn" | "error", message: string): void;
}

/**
 * Synchronises hotspot profiles, private networks and time with the cloud.
 * @example
 *   const sync = new CloudSync(config, ports, true, driver, host);
 *   // at ONLINE:  sync.reset(); …; sync.online(); sync.pump();
 */
export class CloudSync {
  readonly #config: DeviceConfig;
  readonly #digest: DigestPort;
  readonly #random: RandomPort;
  readonly #seal: SealPort;
  readonly #enabled: boolean;
  readonly #driver: NetworkDriver;
  readonly #host: CloudSyncHost;
  readonly #net: NetworkStore;
  readonly #wall: WallClock;
  #hotspots: HotspotSet;
  #networks: PrivateNetwork[];
  #networkSeq: number;
  #sealKey: { secret: Uint8Array; public: Uint8Array } | undefined;
  #results: PendingResult[] = [];
  #wants: Want[] = [];

  /**
   * Loads the stored hotspot profiles (or the firmware's, when newer), private networks and time floor.
   * @param enabled say `hello` after each login and follow the cloud's notices (else only `rotate`)
   */
  constructor(
    config: DeviceConfig,
    ports: { digest: DigestPort; random: RandomPort; seal: SealPort; clock: ClockPort; kv: KeyValuePort },
    enabled: boolean,
    driver: NetworkDriver,
    host: CloudSyncHost,
  ) {
    this.#config = config;
    this.#digest = ports.digest;
    this.#random = ports.random;
    this.#seal = ports.seal;
    this.#enabled = enabled;
    this.#driver = driver;
    this.#host = host;
    this.#net = new NetworkStore(ports.kv, ports.digest, config.deviceId);
    const stored = this.#net.loadHotspots();
    const built = config.hotspots;
    this.#hotspots = stored && (!built || stored.rev >= built.rev) ? stored : built ?? { rev: 0, profiles: [] };
    const networks = this.#net.loadNetworks();
    this.#networks = networks.networks;
    this.#networkSeq = networks.seq;
    this.#wall = new WallClock(ports.clock, Math.max(config.buildTime ?? 0, this.#net.loadTimeFloor()));
  }

  /** The wall-clock estimate (see WallClock). */
  get wall(): WallClock {
    return this.#wall;
  }

  /** The hotspot profile set in use. */
  get hotspots(): HotspotSet {
    return this.#hotspots;
  }

  /** The private networks stored. */
  get networks(): PrivateNetwork[] {
    return this.#networks;
  }

  /**
   * Networks handed over by local onboarding: stored like a cloud `set` (same
   * record and rules, the change sequence kept), their failures forgotten.
   * @throws WcmError STORE_FAILED / STORE_LIMIT (nothing changed)
   */
  storeLocal(list: readonly { ssid: string; password: string; priority: number }[]): void {
    let networks = this.#networks;
    for (const n of list) networks = applyNetworkChange(networks, { action: "set", ssid: n.ssid, password: n.password, priority: n.priority });
    this.#net.saveNetworks({ networks, seq: this.#networkSeq });
    this.#networks = networks;
    for (const n of list) this.#driver.forgetFailures(n.ssid);
  }

  /** Forgets what was wanted from the previous session. */
  reset(): void {
    this.#wants = [];
  }

  /** Now ONLINE: say `hello` and report what is pending (when enabled). */
  online(): void {
    if (this.#enabled) {
      this.#want("hello");
      if (this.#results.length) this.#want("result");
    }
  }

  /** Queues a hand-off result for the cloud. */
  queueResult(result: PendingResult): void {
    this.#results = [...this.#results.filter((r) => r.seq !== result.seq), result].slice(-4);
    this.#want("result");
  }

  /** A notice from the cloud: `rotate` always; the others when enabled. Sends what it asks for. */
  onNotice(notice: CloudNotice): void {
    if (notice.notice === "rotate") this.#want("rotate");
    else if (!this.#enabled) return;
    else this.#want(notice.notice);
    this.pump();
  }

  /** True for the operations the sync sends (`op` of a request). */
  owns(op: DeviceRequest["op"]): op is SyncOp {
    return op === "hello" || op === "config" || op === "network" || op === "network-result";
  }

  /** The cloud refused one of the sync's requests: log it; a refused result is not reported again. */
  onRefused(request: DeviceRequest, reason: string): void {
    this.#host.log(reason === "NOTHING_PENDING" ? "debug" : "warn", `${request.op} refused: ${reason}`);
    if (request.op === "network-result") {
      const seq = request.seq;
      this.#results = this.#results.filter((r) => r.seq !== seq);
    }
  }

  /** The response to one of the sync's requests (`request`, matched by the request channel). */
  onResponse(response: Extract<CloudResponse, { ok: true }>, request: DeviceRequest): void {
    switch (response.op) {
      case "hello": this.#onHello(response, request as Extract<DeviceRequest, { op: "hello" }>); break;
      case "config": this.#onConfig(response); break;
      case "network": this.#onNetworkChange(response); break;
      case "network-result": this.#results = this.#results.filter((r) => r.seq !== response.seq); break;
    }
  }

  #want(what: Want): void {
    if (!this.#wants.includes(what)) this.#wants.push(what);
  }

  /** Sends the next wanted background request, when ONLINE and none is outstanding. */
  pump(): void {
    while (this.#host.canSend() && this.#wants.length) {
      const what = this.#wants.shift() as Want;
      const rid = this.#host.newRequestId();
      switch (what) {
        case "rotate":
          // The cloud holds a rotated secret for this device: fetch it.
          this.#host.rotate(rid);
          break;
        case "hello": {
          let key: Uint8Array;
          try {
            key = this.sealKey().public;
          } catch (error) {
            this.#host.fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
            return;
          }
          const joined = this.#driver.joined;
          const reports = this.#driver.reports.slice(0, MAX_FAILURE_REPORTS);
          this.#host.send({
            v: 1, rid, op: "hello", rev: this.#hotspots.rev, key, seal: SEAL_VERSION,
            ...(joined ? { net: { kind: joined.kind, ssid: joined.ssid } } : {}),
            ...(reports.length ? { failures: reports } : {}),
          });
          break;
        }
        case "config":
        case "network":
          this.#host.send({ v: 1, rid, op: what });
          break;
        case "result": {
          const next = this.#results[0];
          if (!next) break;
          if (this.#results.length > 1) this.#want("result");
          this.#host.send({
            v: 1, rid, op: "network-result", seq: next.seq, result: next.result,
            ...(next.failure ? { reason: next.failure.reason, ...(next.failure.detail ? { detail: next.failure.detail } : {}) } : {}),
          });
          break;
        }
      }
    }
  }

  /**
   * The device's sealing key pair, loaded or made (and stored) at first use.
   * @throws WcmError STORE_FAILED when a new key cannot be stored
   */
  sealKey(): { secret: Uint8Array; public: Uint8Array } {
    if (this.#sealKey) return this.#sealKey;
    let secret = this.#net.loadSealKey();
    if (!secret) {
      secret = newSealSecretKey((length) => this.#random.bytes(length));
      // Stored before its public half is ever sent: a cut write just makes a new pair next time.
      this.#net.saveSealKey(secret);
    }
    this.#sealKey = { secret, public: sealPublicKey(this.#seal, secret) };
    return this.#sealKey;
  }

  /** The device's sealing key pair if it has one stored (never makes one). */
  storedSealKey(): { secret: Uint8Array; public: Uint8Array } | undefined {
    if (this.#sealKey) return this.#sealKey;
    try {
      return this.#net.loadSealKey() ? this.sealKey() : undefined;
    } catch {
      return undefined;
    }
  }

  #onHello(response: Extract<CloudResponse, { op: "hello"; ok: true }>, request: Extract<DeviceRequest, { op: "hello" }>): void {
    // The cloud has them: drop the reports it acknowledged (new ones may have been added since).
    this.#driver.acknowledge(request.failures ?? []);
    const floor = this.#wall.observe(response.time);
    if (floor !== undefined) {
      try {
        this.#net.saveTimeFloor(floor);
        this.#wall.saved(floor);
      } catch {
        this.#host.log("warn", "could not persist the time floor");
      }
    }
    if (response.rev > 0 && response.rev !== this.#hotspots.rev) this.#want("config");
    if (response.network) this.#want("network");
  }

  #onConfig(response: Extract<CloudResponse, { op: "config"; ok: true }>): void {
    if (response.rev === this.#hotspots.rev) return;
    const set: HotspotSet = { rev: response.rev, profiles: response.hotspots };
    try {
      this.#net.saveHotspots(set);
    } catch (error) {
      this.#host.log("warn", `could not store hotspot profiles rev ${response.rev} (${isWcmError(error) ? error.code : "store"})`);
    }
    this.#hotspots = set;
    this.#host.log("info", `hotspot profiles rev ${set.rev}: ${set.profiles.length} profile(s)`);
  }

  #onNetworkChange(response: Extract<CloudResponse, { op: "network"; ok: true }>): void {
    const key = this.#sealKey;
    const plaintext = key ? openSealed(this.#digest, this.#seal, key.secret, key.public, this.#config.deviceId, response.sealed, "network") : undefined;
    let change;
    try {
      change = plaintext ? decodeNetworkChange(plaintext) : undefined;
    } catch {
      change = undefined;
    }
    if (!change || change.seq !== response.seq) {
      this.#host.log("warn", `network change ${response.seq} does not open with this device's key`);
      this.queueResult({ seq: response.seq, result: "UNREADABLE" });
      return;
    }
    const joined = this.#driver.joined;
    const onIt = joined?.kind === "private" && joined.ssid === change.ssid;
    if (change.seq <= this.#networkSeq) {
      // Applied before (its result was lost): report again, or try it again.
      if (change.action === "forget") this.queueResult({ seq: change.seq, result: "FORGOTTEN" });
      else if (onIt) this.queueResult({ seq: change.seq, result: "JOINED" });
      else {
        this.#driver.handOff(change.seq, change.ssid);
        this.#host.moveNetwork();
      }
      return;
    }
    const networks = applyNetworkChange(this.#networks, change);
    try {
      this.#net.saveNetworks({ networks, seq: change.seq });
    } catch (error) {
      // Nothing applied, nothing reported: the cloud keeps the change and the next session fetches it again.
      this.#host.fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
      return;
    }
    this.#networks = networks;
    this.#networkSeq = change.seq;
    this.#driver.forgetFailures(change.ssid);
    this.#host.log("info", `network change ${change.seq}: ${change.action} a private network`);
    if (change.action === "forget") {
      this.queueResult({ seq: change.seq, result: "FORGOTTEN" });
      if (onIt) this.#host.moveNetwork();
      return;
    }
    this.#driver.handOff(change.seq, change.ssid);
    if (!this.#driver.hasRadio) {
      this.#driver.cancelHandoff();
      this.queueResult({ seq: change.seq, result: "FAILED", failure: { reason: "NETWORK-NOT-FOUND", detail: "no radio" } });
      return;
    }
    this.#host.moveNetwork();
  }
}

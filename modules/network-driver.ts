/*
 * The network driver: gets the device onto a Wi-Fi network (with a NetworkPort).
 *
 * - scans (with a timeout), picks a network (network-selection.ts: stored
 *   private networks, then hotspot profiles) and joins it with the device's
 *   credential (EAP-TTLS/PAP with the derived hotspot password, or EAP-TLS),
 *   or waits and rescans when nothing can be joined;
 * - records each network's failures: the back-off, the reports for the cloud's
 *   next `hello` (repeats folded), the outcome of a private-network hand-off;
 * - once ONLINE on a network: clears its back-off, settles a hand-off
 *   (JOINED or FAILED), and on a hotspot checks now and then whether a stored
 *   private network is in range again;
 * - leaves the network on demand, and reports a lost network.
 * It does no I/O itself: the radio is the NetworkPort, everything else goes
 * through the host (the connection manager).
 */
import type { DeviceConfig } from "./config";
import { deriveHotspotPassword } from "./derive";
import { isWcmError } from "./errors";
import { DEFAULT_ANONYMOUS_IDENTITY, type HotspotSet } from "./hotspots";
import {
  clearNetworkBackoff,
  recordNetworkFailure,
  rescanDelay,
  selectNetwork,
  candidateKey,
  type BackoffTable,
  type Candidate,
  type PrivateNetwork,
} from "./network-selection";
import type { ClockPort, DigestPort, JoinRequest, NetworkFailure, NetworkPort, ScanResult, ScheduledTask, SchedulerPort } from "./ports";
import { MAX_FAILURE_REPORTS, type NetworkFailureReport, type NetworkResult } from "./protocol";
import type { FailureClass } from "./retry";

/** The network the manager is on (with a NetworkPort). */
export interface JoinedNetwork {
  kind: "private" | "hotspot";
  ssid: string;
  bssid: string;
  /** the hotspot profile's name */
  profile?: string;
}

/** The outcome of a private-network change, to be reported to the cloud (`network-result`). */
export interface PendingResult {
  seq: number;
  result: NetworkResult;
  failure?: NetworkFailure;
}

/** Timeouts of the driver, in milliseconds. */
export interface NetworkDriverOptions {
  /** how long a scan may take before it counts as empty */
  scanTimeoutMs: number;
  /** how long a join may take before it counts as ASSOCIATION-FAILED */
  joinTimeoutMs: number;
  /** while ONLINE on a hotspot with private networks stored: least time between checks for them */
  upgradeCheckMs: number;
}

/** What the driver needs from the manager. */
export interface NetworkDriverHost {
  /** the hotspot profiles in use */
  hotspots(): HotspotSet;
  /** the private networks stored */
  networks(): PrivateNetwork[];
  running(): boolean;
  /** true while the manager is ONLINE */
  online(): boolean;
  /** a status change (state, retryInMs, network), as the manager's setStatus */
  setStatus(change: { state?: "SCANNING" | "JOINING"; retryInMs?: undefined; network?: JoinedNetwork | undefined }): void;
  /** the network was left: clear it from the status (when shown) */
  clearNetwork(): void;
  /** joined: connect to the cloud */
  connect(): void;
  /** closes the cloud session, if any */
  dropLink(): void;
  /** a failure that ends the attempt (the manager retries) */
  fail(cls: FailureClass, reason: string, detail?: string): void;
  /** notes a failure in the status and the log, without ending anything */
  recordFailure(reason: string, detail?: string): void;
  /** nothing to join now: count a network failure and scan again after `delayMs` */
  rescanLater(delayMs: number): void;
  /** the joined network was lost: back off and try again */
  lost(): void;
  /** a hand-off result for the cloud */
  result(result: PendingResult): void;
  /** the secret the hotspot password is derived from (the login credential's) */
  hotspotSecret(): Uint8Array;
  /** a random number in [0, 1) */
  random01(): number;
  log(level: "debug" | "info" | "warn" | "error", message: string): void;
}

/**
 * Scans, selects and joins networks; tracks their failures.
 * @example
 *   const driver = new NetworkDriver(config, ports, { scanTimeoutMs: 15_000, joinTimeoutMs: 45_000, upgradeCheckMs: 60_000 }, host);
 *   if (driver.hasRadio && !driver.joined) driver.scan();  // joins, then host.connect()
 */
export class NetworkDriver {
  readonly #config: DeviceConfig;
  readonly #radio: NetworkPort | undefined;
  readonly #digest: DigestPort;
  readonly #scheduler: SchedulerPort;
  readonly #clock: ClockPort;
  readonly #options: NetworkDriverOptions;
  readonly #host: NetworkDriverHost;
  #backoff: BackoffTable = {};
  #lastScan: ScanResult[] = [];
  #emptyScans = 0;
  #joined: Candidate | undefined;
  #radioId = 0;
  #radioTimer: ScheduledTask | undefined;
  #upgradeTimer: ScheduledTask | undefined;
  #reports: NetworkFailureReport[] = [];
  #handoff: { seq: number; ssid: string; failure?: NetworkFailure } | undefined;

  /** @param ports.network the Wi-Fi radio; without one, only the hand-off bookkeeping is used */
  constructor(
    config: DeviceConfig,
    ports: { digest: DigestPort; scheduler: SchedulerPort; clock: ClockPort; network?: NetworkPort },
    options: NetworkDriverOptions,
    host: NetworkDriverHost,
  ) {
    this.#config = config;
    this.#radio = ports.network;
    this.#digest = ports.digest;
    this.#scheduler = ports.scheduler;
    this.#clock = ports.clock;
    this.#options = options;
    this.#host = host;
  }

  /** True when there is a radio. */
  get hasRadio(): boolean {
    return this.#radio !== undefined;
  }

  /** The network joined, or undefined. */
  get joined(): Candidate | undefined {
    return this.#joined;
  }

  /** The failure reports not yet acknowledged by the cloud, oldest first (at most MAX_FAILURE_REPORTS). */
  get reports(): NetworkFailureReport[] {
    return this.#reports;
  }

  /** The cloud acknowledged these reports (the very objects sent): drop them. */
  acknowledge(sent: NetworkFailureReport[]): void {
    this.#reports = this.#reports.filter((report) => !sent.includes(report));
  }

  /** A private network was added, changed or forgotten: clear its back-off and its reports. */
  forgetFailures(ssid: string): void {
    this.#backoff = clearNetworkBackoff(this.#backoff, candidateKey("private", ssid));
    this.#reports = this.#reports.filter((r) => !(r.kind === "private" && r.ssid === ssid));
  }

  /** The cloud handed off to the private network `ssid` (change `seq`): its outcome is reported once known. */
  handOff(seq: number, ssid: string): void {
    this.#handoff = { seq, ssid };
  }

  /** Drops the hand-off (no radio to carry it out). */
  cancelHandoff(): void {
    this.#handoff = undefined;
  }

  /** Scans, then joins the best network (or waits and rescans). */
  scan(): void {
    const radio = this.#radio as NetworkPort;
    const id = ++this.#radioId;
    this.#host.setStatus({ state: "SCANNING", retryInMs: undefined, network: undefined });
    this.#radioTimer?.cancel();
    this.#radioTimer = this.#scheduler.after(this.#options.scanTimeoutMs, () => {
      if (id === this.#radioId) this.#onScan([]);
    });
    try {
      radio.scan((results) => {
        if (id === this.#radioId && this.#host.running()) this.#onScan(results);
      });
    } catch (error) {
      this.#host.log("warn", `scan failed: ${error instanceof Error ? error.message : "error"}`);
      if (id === this.#radioId) this.#onScan([]);
    }
  }

  #onScan(results: ScanResult[]): void {
    this.#radioId++;
    this.#radioTimer?.cancel();
    this.#radioTimer = undefined;
    this.#lastScan = results.slice(0, 64);
    this.choose();
  }

  /** Joins the best candidate of the last scan, or waits and rescans. */
  choose(): void {
    if (!this.#host.running()) return;
    const now = this.#clock.now();
    const networks = this.#host.networks();
    const hotspots = this.#host.hotspots();
    const selection = selectNetwork(this.#lastScan, networks, hotspots.profiles, this.#backoff, now);
    const handoff = this.#handoff;
    if (handoff && !handoff.failure && !selection.ranked.some((c) => c.kind === "private" && c.ssid === handoff.ssid)) {
      const target: Candidate | undefined = networks.filter((n) => n.ssid === handoff.ssid)
        .map((network) => ({ kind: "private" as const, key: candidateKey("private", network.ssid), ssid: network.ssid, bssid: "", rssi: -127, network }))[0];
      if (target) this.failure(target, { reason: "NETWORK-NOT-FOUND" });
    }
    if (selection.candidate) {
      this.#emptyScans = 0;
      this.#join(selection.candidate);
      return;
    }
    let delay: number;
    if (selection.ranked.length === 0) {
      this.#emptyScans++;
      this.#host.recordFailure("NETWORK-NOT-FOUND", networks.length + hotspots.profiles.length === 0 ? "no network configured" : "no known network in range");
      delay = rescanDelay(this.#emptyScans, this.#host.random01());
    } else {
      delay = Math.max(1000, selection.waitMs ?? 0);
    }
    this.#host.rescanLater(delay);
  }

  #join(candidate: Candidate): void {
    const radio = this.#radio as NetworkPort;
    const id = ++this.#radioId;
    this.#host.setStatus({ state: "JOINING", retryInMs: undefined, network: undefined });
    let request: JoinRequest;
    try {
      request = this.#joinRequest(candidate);
    } catch (error) {
      if (isWcmError(error, "KEY_UNAVAILABLE")) this.#host.fail("auth", "KEY_UNAVAILABLE", error.message);
      else this.#host.fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "join");
      return;
    }
    this.#radioTimer?.cancel();
    this.#radioTimer = this.#scheduler.after(this.#options.joinTimeoutMs, () => {
      if (id !== this.#radioId) return;
      this.#radioId++;
      radio.leave();
      this.failure(candidate, { reason: "ASSOCIATION-FAILED", detail: "join timed out" });
      this.choose();
    });
    radio.join(request, {
      onJoined: (info) => {
        if (id !== this.#radioId || !this.#host.running()) return;
        this.#radioTimer?.cancel();
        this.#radioTimer = undefined;
        this.#joined = { ...candidate, bssid: info.bssid || candidate.bssid };
        this.#host.log("info", `joined ${candidate.kind} network ${candidate.ssid} (${info.ip})`);
        this.#host.setStatus({ network: this.view(this.#joined) });
        this.#host.connect();
      },
      onFailed: (failure) => {
        if (id !== this.#radioId || !this.#host.running()) return;
        this.#radioId++;
        this.#radioTimer?.cancel();
        this.#radioTimer = undefined;
        this.failure(candidate, failure);
        this.choose();
      },
      onLost: (failure) => {
        if (id !== this.#radioId || !this.#host.running() || !this.#joined) return;
        const joined = this.#joined;
        this.#joined = undefined;
        this.#radioId++;
        this.#upgradeTimer?.cancel();
        this.#host.dropLink();
        this.failure(joined, { reason: failure.reason || "CONNECTION-LOST", ...(failure.detail ? { detail: failure.detail } : {}) });
        this.#host.setStatus({ network: undefined });
        this.#host.lost();
      },
    });
  }

  /** How a candidate shows in the manager's status. */
  view(candidate: Candidate): JoinedNetwork {
    return candidate.kind === "hotspot"
      ? { kind: "hotspot", ssid: candidate.ssid, bssid: candidate.bssid, profile: candidate.profile.name }
      : { kind: "private", ssid: candidate.ssid, bssid: candidate.bssid };
  }

  /** What to ask the radio for: the private network's password, or the device's own credential at a hotspot. */
  #joinRequest(candidate: Candidate): JoinRequest {
    const base = { ssid: candidate.ssid, ...(candidate.bssid ? { bssid: candidate.bssid } : {}) };
    if (candidate.kind === "private") {
      return candidate.network.password === ""
        ? { security: "open", ...base }
        : { security: "psk", ...base, password: candidate.network.password };
    }
    const config = this.#config;
    const server = { ca: candidate.profile.radius.ca, serverName: candidate.profile.radius.serverName };
    if (config.option === "certificate") {
      return { security: "enterprise", ...base, method: "tls", identity: config.deviceId, certificate: config.certificate, privateKey: config.privateKey, server };
    }
    const secret = this.#host.hotspotSecret();
    return {
      security: "enterprise", ...base, method: "ttls-pap", identity: config.deviceId,
      anonymousIdentity: candidate.profile.anonymousIdentity ?? DEFAULT_ANONYMOUS_IDENTITY,
      password: deriveHotspotPassword(this.#digest, secret, config.deviceId),
      server,
    };
  }

  /** Records a failure of a network: back-off, the report for the cloud, the hand-off outcome, the status. */
  failure(candidate: Candidate, failure: NetworkFailure): void {
    const detail = failure.detail?.slice(0, 64);
    this.#backoff = recordNetworkFailure(this.#backoff, candidate.key, failure, this.#clock.now(), this.#host.random01());
    const last = this.#reports[this.#reports.length - 1];
    if (last && last.kind === candidate.kind && last.ssid === candidate.ssid && last.reason === failure.reason && last.detail === detail) {
      this.#reports[this.#reports.length - 1] = { ...last, n: Math.min(last.n + 1, 9999) };
    } else {
      this.#reports = [...this.#reports, { kind: candidate.kind, ssid: candidate.ssid, reason: failure.reason, ...(detail ? { detail } : {}), n: 1 }]
        .slice(-MAX_FAILURE_REPORTS);
    }
    if (this.#handoff && candidate.kind === "private" && candidate.ssid === this.#handoff.ssid) {
      this.#handoff = { ...this.#handoff, failure: detail ? { reason: failure.reason, detail } : { reason: failure.reason } };
    }
    this.#host.recordFailure(failure.reason, `${candidate.kind} ${candidate.ssid}${detail ? `: ${detail}` : ""}`);
  }

  /** ONLINE over a joined network: it works; settle a hand-off; look for a better network later. */
  online(): void {
    const joined = this.#joined;
    if (!joined) return;
    this.#backoff = clearNetworkBackoff(this.#backoff, joined.key);
    const handoff = this.#handoff;
    if (handoff) {
      if (joined.kind === "private" && joined.ssid === handoff.ssid) {
        this.#host.result({ seq: handoff.seq, result: "JOINED" });
        this.#handoff = undefined;
      } else if (handoff.failure) {
        this.#host.result({ seq: handoff.seq, result: "FAILED", failure: handoff.failure });
        this.#handoff = undefined;
      }
    }
    this.#scheduleUpgradeCheck();
  }

  /** While on a hotspot with private networks stored, checks now and then whether one can be joined again. */
  #scheduleUpgradeCheck(): void {
    this.#upgradeTimer?.cancel();
    this.#upgradeTimer = undefined;
    const joined = this.#joined;
    const networks = this.#host.networks();
    if (!joined || joined.kind !== "hotspot" || networks.length === 0) return;
    const now = this.#clock.now();
    const untils = networks.map((n) => this.#backoff[candidateKey("private", n.ssid)]?.until ?? now);
    const delay = Math.max(this.#options.upgradeCheckMs, Math.min(...untils) - now);
    this.#upgradeTimer = this.#scheduler.after(delay, () => {
      this.#upgradeTimer = undefined;
      if (!this.#host.online() || this.#joined !== joined) return;
      const id = this.#radioId;
      (this.#radio as NetworkPort).scan((results) => {
        if (id !== this.#radioId || !this.#host.online() || this.#joined !== joined) return;
        const selection = selectNetwork(results, this.#host.networks(), [], this.#backoff, this.#clock.now());
        if (!selection.candidate) {
          this.#scheduleUpgradeCheck();
          return;
        }
        this.#host.log("info", `private network ${selection.candidate.ssid} in range: leaving the hotspot`);
        this.#host.dropLink();
        this.leave();
        this.#lastScan = results.slice(0, 64);
        this.#join(selection.candidate);
      });
    });
  }

  /** Leaves the current network (if any), stops the driver's timers and clears the status's network. */
  leave(): void {
    this.#radioId++;
    this.cancelTimers();
    if (!this.#radio) return;
    this.#joined = undefined;
    try {
      this.#radio.leave();
    } catch {
      // leaving a network that is gone is fine
    }
    this.#host.clearNetwork();
  }

  /** Stops the driver's timers (scan, join, upgrade check). */
  cancelTimers(): void {
    this.#radioTimer?.cancel();
    this.#radioTimer = undefined;
    this.#upgradeTimer?.cancel();
    this.#upgradeTimer = undefined;
  }
}

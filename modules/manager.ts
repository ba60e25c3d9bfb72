/*
 * The connection manager: the state machine that takes a device from start() to
 * an authenticated cloud session, and keeps it there.
 *
 * - picks the credential: certificate, the stored issued secret, the configured
 *   shared secret, or the temporary secret derived from the provisioning key;
 * - logs in over the CloudLink port with a counter-based proof (no clock needed);
 * - with temporary credentials, runs issuance in the same session: request,
 *   store crash-safely, prove possession (commit), then ONLINE as PERMANENT;
 * - retries requests (same request id: every operation is idempotent) and
 *   reconnects with back-off, treating refused credentials apart from network
 *   failures;
 * - offers the product's code publish/subscribe on the device's own app topics;
 * - with a NetworkPort (ManagerPorts.network): scans, picks a network
 *   (network-selection.ts: stored private networks, then hotspot profiles),
 *   joins it with the device's credential (EAP-TTLS/PAP with the derived
 *   hotspot password, or EAP-TLS), and only then connects to the cloud; a
 *   cloud that cannot be reached over a joined network counts as
 *   INTERNET-NOT-REACHABLE for that network and the next one is tried;
 * - when synchronising (default with a NetworkPort): after every login it says
 *   `hello` (hotspot revision, sealing public key, network failures since the
 *   last hello), takes the cloud's time (wall-clock.ts), fetches a newer
 *   hotspot profile set (`config`) and sealed private network changes
 *   (`network`), stores them crash-safely, moves to a handed-off network and
 *   reports JOINED or FAILED with the reason (`network-result`).
 * Without a NetworkPort and without `sync`, it behaves exactly as before those
 * features: no scan, no extra request, no extra flash write.
 * It does no I/O itself: every effect goes through the ports.
 */
import { toBase64Url } from "./bytes";
import type { DeviceConfig } from "./config";
import { CredentialStore, type StoredSecret } from "./credential-store";
import {
  deriveCloudLoginKey,
  deriveCommitProof,
  deriveLoginProof,
  deriveTemporarySecret,
  deriveWrapKey,
  unwrapSecret,
  type LoginKind,
} from "./derive";
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
import { applyNetworkChange, NetworkStore } from "./network-store";
import type {
  ClockPort,
  CloudLink,
  CloudLinkFactory,
  DigestPort,
  JoinRequest,
  KeyValuePort,
  LinkCloseInfo,
  LogPort,
  NetworkFailure,
  NetworkPort,
  RandomPort,
  ScanResult,
  ScheduledTask,
  SchedulerPort,
} from "./ports";
import { openSealed, sealPublicKey } from "./seal";
import { WallClock } from "./wall-clock";
import {
  appTopic,
  CONNACK,
  decodeCloudMessage,
  deviceTopics,
  encodeRequest,
  encodeStatus,
  formatLoginPassword,
  MAX_APP_PAYLOAD_BYTES,
  MAX_FAILURE_REPORTS,
  decodeNetworkChange,
  type NetworkFailureReport,
  type NetworkResult,
  type CloudNotice,
  type CloudResponse,
  type CredentialLabel,
  type DeviceRequest,
  type DeviceState,
  type DeviceTopics,
} from "./protocol";
import { DEFAULT_RETRY_POLICY, nextRetryDelay, type FailureClass, type RetryPolicy } from "./retry";

/** Everything the manager needs from its host. */
export interface ManagerPorts {
  digest: DigestPort;
  random: RandomPort;
  clock: ClockPort;
  scheduler: SchedulerPort;
  kv: KeyValuePort;
  link: CloudLinkFactory;
  log?: LogPort;
  /** the Wi-Fi radio; when given, the manager joins a network before it connects to the cloud */
  network?: NetworkPort;
}

/** Tuning; every field has a default. */
export interface ManagerOptions {
  retry?: RetryPolicy;
  /** how long to wait for a response before resending the request (default 5 s) */
  requestTimeoutMs?: number;
  /** sends of one request before the session is restarted (default 3) */
  requestAttempts?: number;
  /** how long a connect may take before it is abandoned (default 30 s) */
  connectTimeoutMs?: number;
  /**
   * say `hello` after each login and fetch hotspot profiles, network changes and
   * the time (default: true when ports.network is given, else false)
   */
  sync?: boolean;
  /** how long a scan may take before it counts as empty (default 15 s) */
  scanTimeoutMs?: number;
  /** how long a join may take before it counts as ASSOCIATION-FAILED (default 45 s) */
  joinTimeoutMs?: number;
  /** while ONLINE on a hotspot with private networks stored: least time between checks for them (default 60 s) */
  upgradeCheckMs?: number;
}

/** The network the manager is on (with a NetworkPort). */
export interface JoinedNetwork {
  kind: "private" | "hotspot";
  ssid: string;
  bssid: string;
  /** the hotspot profile's name */
  profile?: string;
}

/** A failure the manager saw, as reported to the app and the cloud. */
export interface Failure {
  /** a stable upper-case code, e.g. NETWORK, BAD_CREDENTIALS, NOT_AUTHORIZED, SERVER_UNAVAILABLE, STORE_FAILED */
  reason: string;
  detail?: string;
  /** clock time of the failure */
  at: number;
}

/** A snapshot of the manager's state, delivered on every change. */
export interface ManagerStatus {
  state: DeviceState;
  credential: CredentialLabel;
  lastFailure?: Failure;
  /** consecutive failed attempts */
  attempt: number;
  /** when RETRY_WAIT or AUTH_FAILED: the delay before the next attempt */
  retryInMs?: number;
  /** with a NetworkPort: the network joined (from JOINING's success until it is left or lost) */
  network?: JoinedNetwork;
}

type Want = "hello" | "config" | "network" | "rotate" | "result";

interface PendingResult {
  seq: number;
  result: NetworkResult;
  failure?: NetworkFailure;
}

/** Receives the product's messages on one app topic. */
export type AppHandler = (payload: Uint8Array, suffix: string) => void;

interface ActiveCredential {
  label: CredentialLabel;
  kind?: LoginKind;
  secret?: Uint8Array;
}

interface PendingRequest {
  request: DeviceRequest;
  sends: number;
  timer?: ScheduledTask;
}

/**
 * Connects a device to the wcm cloud and keeps it connected.
 * @example
 *   const manager = new ConnectionManager(validateConfig(config), ports);
 *   manager.onStatus((s) => trace(`${s.state}\n`));
 *   manager.subscribe("led", (payload) => setLed(payload[0]));
 *   manager.start();
 */
export class ConnectionManager {
  readonly #config: DeviceConfig;
  readonly #ports: ManagerPorts;
  readonly #options: Required<ManagerOptions>;
  readonly #store: CredentialStore;
  readonly #topics: DeviceTopics;
  readonly #listeners: ((status: ManagerStatus) => void)[] = [];
  readonly #appHandlers = new Map<string, AppHandler>();
  #status: ManagerStatus;
  #running = false;
  #link: CloudLink | undefined;
  #linkId = 0;
  #credential: ActiveCredential | undefined;
  #stored: StoredSecret | undefined;
  #pending: PendingRequest | undefined;
  #retryTimer: ScheduledTask | undefined;
  #connectTimer: ScheduledTask | undefined;
  #failures: { cls: FailureClass; count: number } = { cls: "network", count: 0 };
  #useFallbackOnce = false;
  // ---- networks and sync
  readonly #net: NetworkStore;
  readonly #wall: WallClock;
  #hotspots: HotspotSet;
  #networks: PrivateNetwork[];
  #networkSeq: number;
  #sealKey: Uint8Array | undefined;
  #backoff: BackoffTable = {};
  #lastScan: ScanResult[] = [];
  #emptyScans = 0;
  #joined: Candidate | undefined;
  #radioId = 0;
  #radioTimer: ScheduledTask | undefined;
  #upgradeTimer: ScheduledTask | undefined;
  #reports: NetworkFailureReport[] = [];
  #handoff: { seq: number; ssid: string; failure?: NetworkFailure } | undefined;
  #results: PendingResult[] = [];
  #wants: Want[] = [];

  constructor(config: DeviceConfig, ports: ManagerPorts, options: ManagerOptions = {}) {
    this.#config = config;
    this.#ports = ports;
    this.#options = {
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      requestAttempts: options.requestAttempts ?? 3,
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      sync: options.sync ?? ports.network !== undefined,
      scanTimeoutMs: options.scanTimeoutMs ?? 15_000,
      joinTimeoutMs: options.joinTimeoutMs ?? 45_000,
      upgradeCheckMs: options.upgradeCheckMs ?? 60_000,
    };
    this.#store = new CredentialStore(ports.kv, ports.digest, config.deviceId);
    this.#net = new NetworkStore(ports.kv, ports.digest, config.deviceId);
    this.#topics = deviceTopics(config.deviceId);
    this.#status = { state: "STOPPED", credential: this.#initialLabel(), attempt: 0 };
    const stored = this.#net.loadHotspots();
    const built = config.hotspots;
    this.#hotspots = stored && (!built || stored.rev >= built.rev) ? stored : built ?? { rev: 0, profiles: [] };
    const networks = this.#net.loadNetworks();
    this.#networks = networks.networks;
    this.#networkSeq = networks.seq;
    this.#wall = new WallClock(ports.clock, Math.max(config.buildTime ?? 0, this.#net.loadTimeFloor()));
  }

  /**
   * The wall-clock estimate for certificate checks: never below the firmware's
   * build time or the newest time the cloud told (persisted), and the cloud's
   * time plus monotonic time since once it told it in this boot.
   */
  wallClock(): { unixSeconds: number; synced: boolean } {
    return { unixSeconds: this.#wall.now(), synced: this.#wall.synced };
  }

  /** The hotspot profile set in use (firmware's or the newest from the cloud). */
  get hotspots(): HotspotSet {
    return { rev: this.#hotspots.rev, profiles: this.#hotspots.profiles.slice() };
  }

  /** The private networks the device holds (passwords included: never log them). */
  get privateNetworks(): PrivateNetwork[] {
    return this.#networks.map((n) => ({ ...n }));
  }

  /** The current status. */
  get status(): ManagerStatus {
    return { ...this.#status };
  }

  /** The device id this manager serves. */
  get deviceId(): string {
    return this.#config.deviceId;
  }

  /** Calls `listener` on every status change; returns a function that removes it. */
  onStatus(listener: (status: ManagerStatus) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const index = this.#listeners.indexOf(listener);
      if (index >= 0) this.#listeners.splice(index, 1);
    };
  }

  /** Starts connecting. Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#failures = { cls: "network", count: 0 };
    this.#attempt();
  }

  /** Closes the session and stops all timers. Idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#cancelTimers();
    this.#dropLink();
    this.#leaveNetwork();
    this.#setStatus({ state: "STOPPED", retryInMs: undefined });
  }

  /**
   * Publishes a product message on `wcm/v1/<deviceId>/app/<suffix>` (QoS 0).
   * @returns false when not ONLINE (nothing is queued) or the payload is too large
   * @throws WcmError MESSAGE_INVALID for a malformed suffix
   */
  publish(suffix: string, payload: Uint8Array): boolean {
    const topic = appTopic(this.#config.deviceId, suffix);
    if (payload.length > MAX_APP_PAYLOAD_BYTES || this.#status.state !== "ONLINE" || !this.#link) return false;
    this.#link.publish(topic, payload);
    return true;
  }

  /**
   * Delivers product messages arriving on `wcm/v1/<deviceId>/app/<suffix>` to `handler`;
   * kept across reconnects.
   * @throws WcmError MESSAGE_INVALID for a malformed suffix
   */
  subscribe(suffix: string, handler: AppHandler): void {
    const topic = appTopic(this.#config.deviceId, suffix);
    this.#appHandlers.set(topic, handler);
    if (this.#status.state === "ONLINE" && this.#link) this.#link.subscribe(topic);
  }

  // ------------------------------------------------------------ connecting

  #initialLabel(): CredentialLabel {
    if (this.#config.option === "certificate") return "certificate";
    const stored = this.#store.loadSecret();
    if (stored) return "permanent";
    return this.#config.option;
  }

  #chooseCredential(): ActiveCredential {
    const config = this.#config;
    if (config.option === "certificate") return { label: "certificate" };
    this.#stored = this.#store.loadSecret();
    if (this.#stored && !this.#useFallbackOnce) {
      return { label: "permanent", kind: "s", secret: this.#stored.secret };
    }
    if (this.#stored?.previous) return { label: "permanent", kind: "s", secret: this.#stored.previous.secret };
    if (config.option === "secret") return { label: "secret", kind: "s", secret: config.secret };
    return {
      label: "temporary",
      kind: "t",
      secret: deriveTemporarySecret(this.#ports.digest, config.provisioningKey, config.deviceId),
    };
  }

  #connect(): void {
    if (!this.#running) return;
    this.#retryTimer = undefined;
    const credential = this.#chooseCredential();
    this.#useFallbackOnce = false;
    this.#credential = credential;
    const config = this.#config;
    let password: string | undefined;
    if (credential.kind && credential.secret) {
      let counter: number;
      try {
        counter = this.#store.nextLoginCounter();
      } catch (error) {
        this.#fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
        return;
      }
      const loginKey = deriveCloudLoginKey(this.#ports.digest, credential.secret);
      const proof = deriveLoginProof(this.#ports.digest, loginKey, config.deviceId, credential.kind, counter);
      password = formatLoginPassword({ kind: credential.kind, counter, proof });
    }
    this.#setStatus({ state: "CONNECTING", credential: credential.label, retryInMs: undefined });
    const link = this.#ports.link();
    const linkId = ++this.#linkId;
    this.#link = link;
    this.#connectTimer = this.#ports.scheduler.after(this.#options.connectTimeoutMs, () => {
      if (linkId !== this.#linkId) return;
      this.#connectTimer = undefined;
      this.#fail("network", "CONNECT_TIMEOUT");
    });
    const tls = config.option === "certificate"
      ? { ca: config.cloud.ca, serverName: config.cloud.serverName, certificate: config.certificate, privateKey: config.privateKey }
      : { ca: config.cloud.ca, serverName: config.cloud.serverName };
    link.connect(
      {
        host: config.cloud.host,
        port: config.cloud.port,
        clientId: config.deviceId,
        username: config.deviceId,
        ...(password !== undefined ? { password } : {}),
        keepAliveSeconds: config.cloud.keepAliveSeconds,
        tls,
      },
      {
        onReady: () => linkId === this.#linkId && this.#onReady(),
        onMessage: (topic, payload) => linkId === this.#linkId && this.#onMessage(topic, payload),
        onClose: (info) => linkId === this.#linkId && this.#onClose(info),
      },
    );
  }

  #onReady(): void {
    this.#connectTimer?.cancel();
    this.#connectTimer = undefined;
    const link = this.#link as CloudLink;
    link.subscribe(this.#topics.response);
    for (const topic of this.#appHandlers.keys()) link.subscribe(topic);
    const credential = this.#credential as ActiveCredential;
    if (credential.label === "permanent" && this.#stored && !this.#stored.confirmed && credential.secret === this.#stored.secret) {
      // The cloud accepted the issued secret, so it has committed it.
      this.#saveConfirmed(this.#stored);
    }
    if (credential.label === "temporary") {
      this.#setStatus({ state: "ISSUING" });
      this.#send({ v: 1, rid: this.#newRequestId(), op: "issue" });
      return;
    }
    this.#goOnline();
  }

  #goOnline(): void {
    this.#failures = { cls: "network", count: 0 };
    this.#wants = [];
    this.#setStatus({ state: "ONLINE", attempt: 0, retryInMs: undefined });
    this.#onlineOnNetwork();
    const failure = this.#status.lastFailure;
    this.#link?.publish(
      this.#topics.status,
      encodeStatus({
        v: 1,
        state: "ONLINE",
        credential: this.#status.credential,
        ...(failure ? { lastFailure: failure.detail ? { reason: failure.reason, detail: failure.detail } : { reason: failure.reason } } : {}),
      }),
    );
    if (this.#options.sync) {
      this.#want("hello");
      if (this.#results.length) this.#want("result");
    }
    this.#pump();
  }

  // ------------------------------------------------------------ requests

  #newRequestId(): string {
    return toBase64Url(this.#ports.random.bytes(9));
  }

  #send(request: DeviceRequest): void {
    this.#pending?.timer?.cancel();
    this.#pending = { request, sends: 0 };
    this.#resend();
  }

  #resend(): void {
    const pending = this.#pending;
    if (!pending || !this.#link) return;
    if (pending.sends >= this.#options.requestAttempts) {
      this.#pending = undefined;
      this.#fail("network", "REQUEST_TIMEOUT", pending.request.op);
      return;
    }
    pending.sends++;
    this.#link.publish(this.#topics.request, encodeRequest(pending.request));
    pending.timer = this.#ports.scheduler.after(this.#options.requestTimeoutMs, () => {
      if (this.#pending === pending) this.#resend();
    });
  }

  #onMessage(topic: string, payload: Uint8Array): void {
    if (topic === this.#topics.response) {
      let message: CloudResponse | CloudNotice;
      try {
        message = decodeCloudMessage(payload);
      } catch (error) {
        this.#log("warn", `ignored a malformed response (${isWcmError(error) ? error.message : "error"})`);
        return;
      }
      if ("notice" in message) this.#onNotice(message);
      else this.#onResponse(message);
      return;
    }
    const handler = this.#appHandlers.get(topic);
    if (handler) {
      try {
        handler(payload, topic.slice(this.#topics.app.length + 1));
      } catch (error) {
        this.#log("error", `app handler failed: ${error instanceof Error ? error.message : "error"}`);
      }
    }
  }

  #onResponse(response: CloudResponse): void {
    const pending = this.#pending;
    if (!pending || pending.request.rid !== response.rid) return; // stale or duplicate: ignore
    pending.timer?.cancel();
    this.#pending = undefined;
    const op = pending.request.op;
    if (!response.ok) {
      if (op === "hello" || op === "config" || op === "network" || op === "network-result") {
        // Background requests: a refusal leaves the session as it is.
        this.#log(response.reason === "NOTHING_PENDING" ? "debug" : "warn", `${op} refused: ${response.reason}`);
        if (op === "network-result") {
          const seq = (pending.request as Extract<DeviceRequest, { op: "network-result" }>).seq;
          this.#results = this.#results.filter((r) => r.seq !== seq);
        }
        this.#pump();
        return;
      }
      this.#fail("server", `REFUSED_${response.reason}`, response.detail);
      return;
    }
    if (response.op !== op) {
      this.#fail("server", "PROTOCOL_VIOLATION", "response does not match request");
      return;
    }
    switch (response.op) {
      case "issue": this.#onIssued(response); return;
      case "commit": this.#onCommitted(response.gen); return;
      case "hello": this.#onHello(response, pending.request as Extract<DeviceRequest, { op: "hello" }>); break;
      case "config": this.#onConfig(response); break;
      case "network": this.#onNetworkChange(response); break;
      case "network-result": this.#results = this.#results.filter((r) => r.seq !== response.seq); break;
    }
    this.#pump();
  }

  #onNotice(notice: CloudNotice): void {
    if (notice.notice === "rotate") this.#want("rotate");
    else if (!this.#options.sync) return;
    else this.#want(notice.notice);
    this.#pump();
  }

  #want(what: Want): void {
    if (!this.#wants.includes(what)) this.#wants.push(what);
  }

  /** Sends the next wanted background request, when ONLINE and none is outstanding. */
  #pump(): void {
    while (this.#status.state === "ONLINE" && this.#link && !this.#pending && this.#wants.length) {
      const what = this.#wants.shift() as Want;
      const rid = this.#newRequestId();
      switch (what) {
        case "rotate":
          // The cloud holds a rotated secret for this device: fetch it.
          if (this.#credential?.kind === "s") this.#send({ v: 1, rid, op: "issue" });
          break;
        case "hello": {
          let key: Uint8Array;
          try {
            key = sealPublicKey(this.#loadOrMakeSealKey());
          } catch (error) {
            this.#fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
            return;
          }
          const joined = this.#joined;
          const reports = this.#reports.slice(0, MAX_FAILURE_REPORTS);
          this.#send({
            v: 1, rid, op: "hello", rev: this.#hotspots.rev, key,
            ...(joined ? { net: { kind: joined.kind, ssid: joined.ssid } } : {}),
            ...(reports.length ? { failures: reports } : {}),
          });
          break;
        }
        case "config":
        case "network":
          this.#send({ v: 1, rid, op: what });
          break;
        case "result": {
          const next = this.#results[0];
          if (!next) break;
          if (this.#results.length > 1) this.#want("result");
          this.#send({
            v: 1, rid, op: "network-result", seq: next.seq, result: next.result,
            ...(next.failure ? { reason: next.failure.reason, ...(next.failure.detail ? { detail: next.failure.detail } : {}) } : {}),
          });
          break;
        }
      }
    }
  }

  #loadOrMakeSealKey(): Uint8Array {
    if (this.#sealKey) return this.#sealKey;
    let key = this.#net.loadSealKey();
    if (!key) {
      key = this.#ports.random.bytes(32);
      // Stored before its public half is ever sent: a cut write just makes a new pair next time.
      this.#net.saveSealKey(key);
    }
    this.#sealKey = key;
    return key;
  }

  #onHello(response: Extract<CloudResponse, { op: "hello"; ok: true }>, request: Extract<DeviceRequest, { op: "hello" }>): void {
    const sent = request.failures ?? [];
    // The cloud has them: drop the reports it acknowledged (new ones may have been added since).
    this.#reports = this.#reports.filter((report) => !sent.includes(report));
    const floor = this.#wall.observe(response.time);
    if (floor !== undefined) {
      try {
        this.#net.saveTimeFloor(floor);
        this.#wall.saved(floor);
      } catch {
        this.#log("warn", "could not persist the time floor");
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
      this.#log("warn", `could not store hotspot profiles rev ${response.rev} (${isWcmError(error) ? error.code : "store"})`);
    }
    this.#hotspots = set;
    this.#log("info", `hotspot profiles rev ${set.rev}: ${set.profiles.length} profile(s)`);
  }

  #queueResult(result: PendingResult): void {
    this.#results = [...this.#results.filter((r) => r.seq !== result.seq), result].slice(-4);
    this.#want("result");
  }

  #onNetworkChange(response: Extract<CloudResponse, { op: "network"; ok: true }>): void {
    const plaintext = this.#sealKey ? openSealed(this.#ports.digest, this.#sealKey, this.#config.deviceId, response.sealed) : undefined;
    let change;
    try {
      change = plaintext ? decodeNetworkChange(plaintext) : undefined;
    } catch {
      change = undefined;
    }
    if (!change || change.seq !== response.seq) {
      this.#log("warn", `network change ${response.seq} does not open with this device's key`);
      this.#queueResult({ seq: response.seq, result: "UNREADABLE" });
      return;
    }
    const onIt = this.#joined?.kind === "private" && this.#joined.ssid === change.ssid;
    if (change.seq <= this.#networkSeq) {
      // Applied before (its result was lost): report again, or try it again.
      if (change.action === "forget") this.#queueResult({ seq: change.seq, result: "FORGOTTEN" });
      else if (onIt) this.#queueResult({ seq: change.seq, result: "JOINED" });
      else {
        this.#handoff = { seq: change.seq, ssid: change.ssid };
        this.#moveNetwork();
      }
      return;
    }
    const networks = applyNetworkChange(this.#networks, change);
    try {
      this.#net.saveNetworks({ networks, seq: change.seq });
    } catch (error) {
      // Nothing applied, nothing reported: the cloud keeps the change and the next session fetches it again.
      this.#fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
      return;
    }
    this.#networks = networks;
    this.#networkSeq = change.seq;
    const key = candidateKey("private", change.ssid);
    this.#backoff = clearNetworkBackoff(this.#backoff, key);
    this.#reports = this.#reports.filter((r) => !(r.kind === "private" && r.ssid === change.ssid));
    this.#log("info", `network change ${change.seq}: ${change.action} a private network`);
    if (change.action === "forget") {
      this.#queueResult({ seq: change.seq, result: "FORGOTTEN" });
      if (onIt) this.#moveNetwork();
      return;
    }
    this.#handoff = { seq: change.seq, ssid: change.ssid };
    if (!this.#ports.network) {
      this.#handoff = undefined;
      this.#queueResult({ seq: change.seq, result: "FAILED", failure: { reason: "NETWORK-NOT-FOUND", detail: "no radio" } });
      return;
    }
    this.#moveNetwork();
  }

  #onIssued(response: Extract<CloudResponse, { op: "issue"; ok: true }>): void {
    const credential = this.#credential as ActiveCredential;
    const wrapKey = deriveWrapKey(this.#ports.digest, credential.secret as Uint8Array);
    const secret = unwrapSecret(this.#ports.digest, wrapKey, this.#config.deviceId, response.nonce, {
      ciphertext: response.secret,
      tag: response.tag,
    });
    if (!secret) {
      this.#fail("server", "BAD_WRAP", "issued secret failed its integrity check");
      return;
    }
    const stored: StoredSecret = { deviceId: this.#config.deviceId, secret, generation: response.gen, confirmed: false };
    if (credential.label === "permanent" && this.#stored) {
      // a rotation of an issued secret: keep the one it replaces until the commit is confirmed
      stored.previous = { secret: credential.secret as Uint8Array, generation: this.#stored.generation };
    }
    try {
      // Stored before the proof is sent: the cloud retires the temporary secret
      // only after the proof, and accepts a login with this one from now on.
      this.#store.saveSecret(stored);
    } catch (error) {
      this.#fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
      return;
    }
    this.#stored = stored;
    const proof = deriveCommitProof(this.#ports.digest, secret, this.#config.deviceId, response.gen);
    this.#send({ v: 1, rid: this.#newRequestId(), op: "commit", gen: response.gen, proof });
  }

  #onCommitted(generation: number): void {
    const stored = this.#stored;
    if (!stored || stored.generation !== generation) {
      this.#fail("server", "PROTOCOL_VIOLATION", "commit of an unknown generation");
      return;
    }
    this.#saveConfirmed(stored);
    this.#credential = { label: "permanent", kind: "s", secret: stored.secret };
    this.#setStatus({ credential: "permanent" });
    this.#goOnline();
    this.#log("info", `secret generation ${generation} committed`);
  }

  #saveConfirmed(stored: StoredSecret): void {
    const confirmed: StoredSecret = { deviceId: stored.deviceId, secret: stored.secret, generation: stored.generation, confirmed: true };
    try {
      this.#store.saveSecret(confirmed);
      this.#stored = confirmed;
    } catch {
      // Not fatal: an unconfirmed secret is confirmed again at the next login.
      this.#log("warn", "could not mark the issued secret confirmed; will retry at next login");
    }
  }

  // ------------------------------------------------------------ failures

  #onClose(info: LinkCloseInfo): void {
    this.#link = undefined;
    const code = info.connackCode;
    if (code === CONNACK.badCredentials || code === CONNACK.notAuthorized) {
      const reason = code === CONNACK.badCredentials ? "BAD_CREDENTIALS" : "NOT_AUTHORIZED";
      const credential = this.#credential;
      if (credential?.label === "permanent" && this.#stored && !this.#stored.confirmed
        && credential.secret === this.#stored.secret && this.#config.option !== "certificate") {
        // The cloud never saw the proof for this secret (it lost the pending one):
        // the credential it replaces (the previous secret, the configured secret
        // or the temporary one) is still the live one. Try it once, now.
        this.#useFallbackOnce = true;
        this.#recordFailure(reason, "unconfirmed issued secret refused; falling back to the credential it replaces");
        this.#scheduleRetry(0, "RETRY_WAIT");
        return;
      }
      this.#fail("auth", reason, info.detail);
      return;
    }
    if (code === CONNACK.serverUnavailable) {
      this.#fail("server", "SERVER_UNAVAILABLE", info.detail);
      return;
    }
    this.#fail("network", this.#status.state === "ONLINE" ? "CONNECTION_LOST" : "NETWORK", info.detail);
  }

  #fail(cls: FailureClass, reason: string, detail?: string): void {
    if (!this.#running) return;
    const wasOnline = this.#status.state === "ONLINE";
    this.#dropLink();
    const joined = this.#joined;
    if (joined && !wasOnline && (reason === "NETWORK" || reason === "CONNECT_TIMEOUT")) {
      // The network is up but the cloud is not reachable over it: try the next network.
      this.#recordFailure(reason, detail);
      this.#leaveNetwork();
      this.#networkFailure(joined, { reason: "INTERNET-NOT-REACHABLE", detail: `${reason}${detail ? `: ${detail}` : ""}` });
      this.#chooseNetwork();
      return;
    }
    this.#recordFailure(reason, detail);
    if (this.#failures.cls !== cls) this.#failures = { cls, count: 0 };
    this.#failures.count = wasOnline ? 1 : this.#failures.count + 1;
    const delay = nextRetryDelay(cls, this.#failures.count, this.#random01(), this.#options.retry);
    this.#scheduleRetry(delay, cls === "auth" ? "AUTH_FAILED" : "RETRY_WAIT");
  }

  #recordFailure(reason: string, detail?: string): void {
    const lastFailure: Failure = { reason, at: this.#ports.clock.now(), ...(detail ? { detail: detail.slice(0, 200) } : {}) };
    this.#status = { ...this.#status, lastFailure };
    this.#log("warn", `${reason}${detail ? `: ${detail}` : ""}`);
  }

  #scheduleRetry(delay: number, state: "RETRY_WAIT" | "AUTH_FAILED"): void {
    this.#retryTimer?.cancel();
    this.#setStatus({ state, attempt: this.#failures.count, retryInMs: delay });
    this.#retryTimer = this.#ports.scheduler.after(delay, () => this.#attempt());
  }

  /** The next attempt: join a network first when there is a radio and none is joined. */
  #attempt(): void {
    if (!this.#running) return;
    this.#retryTimer = undefined;
    if (this.#ports.network && !this.#joined) this.#scan();
    else this.#connect();
  }

  // ------------------------------------------------------------ networks

  #scan(): void {
    const radio = this.#ports.network as NetworkPort;
    const id = ++this.#radioId;
    this.#setStatus({ state: "SCANNING", retryInMs: undefined, network: undefined });
    this.#radioTimer?.cancel();
    this.#radioTimer = this.#ports.scheduler.after(this.#options.scanTimeoutMs, () => {
      if (id === this.#radioId) this.#onScan([]);
    });
    try {
      radio.scan((results) => {
        if (id === this.#radioId && this.#running) this.#onScan(results);
      });
    } catch (error) {
      this.#log("warn", `scan failed: ${error instanceof Error ? error.message : "error"}`);
      if (id === this.#radioId) this.#onScan([]);
    }
  }

  #onScan(results: ScanResult[]): void {
    this.#radioId++;
    this.#radioTimer?.cancel();
    this.#radioTimer = undefined;
    this.#lastScan = results.slice(0, 64);
    this.#chooseNetwork();
  }

  /** Joins the best candidate of the last scan, or waits and rescans. */
  #chooseNetwork(): void {
    if (!this.#running) return;
    const now = this.#ports.clock.now();
    const selection = selectNetwork(this.#lastScan, this.#networks, this.#hotspots.profiles, this.#backoff, now);
    const handoff = this.#handoff;
    if (handoff && !handoff.failure && !selection.ranked.some((c) => c.kind === "private" && c.ssid === handoff.ssid)) {
      const target: Candidate | undefined = this.#networks.filter((n) => n.ssid === handoff.ssid)
        .map((network) => ({ kind: "private" as const, key: candidateKey("private", network.ssid), ssid: network.ssid, bssid: "", rssi: -127, network }))[0];
      if (target) this.#networkFailure(target, { reason: "NETWORK-NOT-FOUND" });
    }
    if (selection.candidate) {
      this.#emptyScans = 0;
      this.#join(selection.candidate);
      return;
    }
    let delay: number;
    if (selection.ranked.length === 0) {
      this.#emptyScans++;
      this.#recordFailure("NETWORK-NOT-FOUND", this.#networks.length + this.#hotspots.profiles.length === 0 ? "no network configured" : "no known network in range");
      delay = rescanDelay(this.#emptyScans, this.#random01());
    } else {
      delay = Math.max(1000, selection.waitMs ?? 0);
    }
    this.#failures = { cls: "network", count: this.#failures.cls === "network" ? this.#failures.count + 1 : 1 };
    this.#scheduleRetry(delay, "RETRY_WAIT");
  }

  #join(candidate: Candidate): void {
    const radio = this.#ports.network as NetworkPort;
    const id = ++this.#radioId;
    this.#setStatus({ state: "JOINING", retryInMs: undefined, network: undefined });
    let request: JoinRequest;
    try {
      request = this.#joinRequest(candidate);
    } catch (error) {
      this.#fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "join");
      return;
    }
    this.#radioTimer?.cancel();
    this.#radioTimer = this.#ports.scheduler.after(this.#options.joinTimeoutMs, () => {
      if (id !== this.#radioId) return;
      this.#radioId++;
      radio.leave();
      this.#networkFailure(candidate, { reason: "ASSOCIATION-FAILED", detail: "join timed out" });
      this.#chooseNetwork();
    });
    radio.join(request, {
      onJoined: (info) => {
        if (id !== this.#radioId || !this.#running) return;
        this.#radioTimer?.cancel();
        this.#radioTimer = undefined;
        this.#joined = { ...candidate, bssid: info.bssid || candidate.bssid };
        this.#log("info", `joined ${candidate.kind} network ${candidate.ssid} (${info.ip})`);
        this.#setStatus({ network: this.#networkView(this.#joined) });
        this.#connect();
      },
      onFailed: (failure) => {
        if (id !== this.#radioId || !this.#running) return;
        this.#radioId++;
        this.#radioTimer?.cancel();
        this.#radioTimer = undefined;
        this.#networkFailure(candidate, failure);
        this.#chooseNetwork();
      },
      onLost: (failure) => {
        if (id !== this.#radioId || !this.#running || !this.#joined) return;
        const joined = this.#joined;
        this.#joined = undefined;
        this.#radioId++;
        this.#upgradeTimer?.cancel();
        this.#dropLink();
        this.#networkFailure(joined, { reason: failure.reason || "CONNECTION-LOST", ...(failure.detail ? { detail: failure.detail } : {}) });
        this.#setStatus({ network: undefined });
        this.#failures = { cls: "network", count: 1 };
        this.#scheduleRetry(nextRetryDelay("network", 1, this.#random01(), this.#options.retry), "RETRY_WAIT");
      },
    });
  }

  #networkView(candidate: Candidate): JoinedNetwork {
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
    const credential = this.#chooseCredential();
    return {
      security: "enterprise", ...base, method: "ttls-pap", identity: config.deviceId,
      anonymousIdentity: candidate.profile.anonymousIdentity ?? DEFAULT_ANONYMOUS_IDENTITY,
      password: deriveHotspotPassword(this.#ports.digest, credential.secret as Uint8Array, config.deviceId),
      server,
    };
  }

  /** Records a failure of a network: back-off, the report for the cloud, the hand-off outcome, the status. */
  #networkFailure(candidate: Candidate, failure: NetworkFailure): void {
    const detail = failure.detail?.slice(0, 64);
    this.#backoff = recordNetworkFailure(this.#backoff, candidate.key, failure, this.#ports.clock.now(), this.#random01());
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
    this.#recordFailure(failure.reason, `${candidate.kind} ${candidate.ssid}${detail ? `: ${detail}` : ""}`);
  }

  /** ONLINE over a joined network: it works; settle a hand-off; look for a better network later. */
  #onlineOnNetwork(): void {
    const joined = this.#joined;
    if (!joined) return;
    this.#backoff = clearNetworkBackoff(this.#backoff, joined.key);
    const handoff = this.#handoff;
    if (handoff) {
      if (joined.kind === "private" && joined.ssid === handoff.ssid) {
        this.#queueResult({ seq: handoff.seq, result: "JOINED" });
        this.#handoff = undefined;
      } else if (handoff.failure) {
        this.#queueResult({ seq: handoff.seq, result: "FAILED", failure: handoff.failure });
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
    if (!joined || joined.kind !== "hotspot" || this.#networks.length === 0) return;
    const now = this.#ports.clock.now();
    const untils = this.#networks.map((n) => this.#backoff[candidateKey("private", n.ssid)]?.until ?? now);
    const delay = Math.max(this.#options.upgradeCheckMs, Math.min(...untils) - now);
    this.#upgradeTimer = this.#ports.scheduler.after(delay, () => {
      this.#upgradeTimer = undefined;
      if (this.#status.state !== "ONLINE" || this.#joined !== joined) return;
      const id = this.#radioId;
      (this.#ports.network as NetworkPort).scan((results) => {
        if (id !== this.#radioId || this.#status.state !== "ONLINE" || this.#joined !== joined) return;
        const selection = selectNetwork(results, this.#networks, [], this.#backoff, this.#ports.clock.now());
        if (!selection.candidate) {
          this.#scheduleUpgradeCheck();
          return;
        }
        this.#log("info", `private network ${selection.candidate.ssid} in range: leaving the hotspot`);
        this.#dropLink();
        this.#leaveNetwork();
        this.#lastScan = results.slice(0, 64);
        this.#join(selection.candidate);
      });
    });
  }

  /** Leaves the current network (hand-off, forget) and selects again from a fresh scan. */
  #moveNetwork(): void {
    this.#dropLink();
    this.#leaveNetwork();
    this.#failures = { cls: "network", count: 0 };
    this.#scan();
  }

  #leaveNetwork(): void {
    this.#radioId++;
    this.#radioTimer?.cancel();
    this.#radioTimer = undefined;
    this.#upgradeTimer?.cancel();
    this.#upgradeTimer = undefined;
    if (!this.#ports.network) return;
    this.#joined = undefined;
    try {
      this.#ports.network.leave();
    } catch {
      // leaving a network that is gone is fine
    }
    if (this.#status.network) this.#setStatus({ network: undefined });
  }

  #dropLink(): void {
    this.#pending?.timer?.cancel();
    this.#pending = undefined;
    this.#connectTimer?.cancel();
    this.#connectTimer = undefined;
    const link = this.#link;
    this.#link = undefined;
    this.#linkId++;
    if (link) {
      try {
        link.close();
      } catch {
        // closing a dead link is fine
      }
    }
  }

  #cancelTimers(): void {
    this.#retryTimer?.cancel();
    this.#retryTimer = undefined;
    this.#radioTimer?.cancel();
    this.#radioTimer = undefined;
    this.#upgradeTimer?.cancel();
    this.#upgradeTimer = undefined;
    this.#connectTimer?.cancel();
    this.#connectTimer = undefined;
  }

  #random01(): number {
    const bytes = this.#ports.random.bytes(4);
    return (((bytes[0] << 24) >>> 0) + (bytes[1] << 16) + (bytes[2] << 8) + bytes[3]) / 2 ** 32;
  }

  #setStatus(change: Partial<ManagerStatus>): void {
    const next = { ...this.#status, ...change };
    if (change.retryInMs === undefined && "retryInMs" in change) delete next.retryInMs;
    if (change.network === undefined && "network" in change) delete next.network;
    this.#status = next;
    for (const listener of this.#listeners.slice()) {
      try {
        listener({ ...next });
      } catch {
        // a listener's failure is not the manager's
      }
    }
  }

  #log(level: "debug" | "info" | "warn" | "error", message: string): void {
    this.#ports.log?.(level, `[${this.#config.deviceId}] ${message}`);
  }
}

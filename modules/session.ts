/*
 * The session: the connection manager's state machine, behind ConnectionManager.
 *
 * - STOPPED -> (SCANNING -> JOINING, with a radio) -> CONNECTING -> (ISSUING,
 *   with temporary credentials) -> ONLINE; on failure RETRY_WAIT or
 *   AUTH_FAILED, then the next attempt;
 * - connects the CloudLink with the credential flow's login, subscribes,
 *   publishes the ONLINE status report, routes the cloud's responses and
 *   notices and the product's app messages;
 * - classifies failures (refused credentials apart from network failures, a
 *   cloud unreachable over a joined network as that network's failure) and
 *   schedules the retry with back-off (retry.ts);
 * - is the host of its parts: credential-flow.ts, request-channel.ts,
 *   network-driver.ts and cloud-sync.ts call back into its public methods
 *   (prototype methods, so a manager keeps no closures on the heap).
 * It does no I/O itself: every effect goes through the ports.
 */
import type { DeviceConfig } from "./config";
import { CloudSync, type CloudSyncHost } from "./cloud-sync";
import { CredentialFlow, type CredentialFlowHost } from "./credential-flow";
import { openSealed } from "./seal";
import { isWcmError } from "./errors";
import type { HotspotSet } from "./hotspots";
import type { AppHandler, Failure, ManagerOptions, ManagerPorts, ManagerStatus } from "./manager";
import { NetworkDriver, type NetworkDriverHost, type PendingResult } from "./network-driver";
import type { PrivateNetwork } from "./network-selection";
import type { CloudLink, LinkCloseInfo, ScheduledTask } from "./ports";
import {
  appTopic,
  CONNACK,
  decodeCloudMessage,
  deviceTopics,
  encodeStatus,
  MAX_APP_PAYLOAD_BYTES,
  type CloudNotice,
  type CloudResponse,
  type DeviceRequest,
  type DeviceTopics,
} from "./protocol";
import { RequestChannel, type RequestChannelHost } from "./request-channel";
import { DEFAULT_RETRY_POLICY, nextRetryDelay, type FailureClass } from "./retry";

/**
 * One ConnectionManager's state machine: STOPPED, SCANNING, JOINING, CONNECTING,
 * ISSUING, ONLINE, RETRY_WAIT, AUTH_FAILED. It is the host of its parts; its
 * public methods are for ConnectionManager and for those parts, not for apps.
 * @example
 *   const session = new Session(config, ports, {});
 *   session.start();
 */
export class Session implements RequestChannelHost, CredentialFlowHost, NetworkDriverHost, CloudSyncHost {
  readonly #config: DeviceConfig;
  readonly #ports: ManagerPorts;
  readonly #options: Required<ManagerOptions>;
  readonly #topics: DeviceTopics;
  readonly #listeners: ((status: ManagerStatus) => void)[] = [];
  readonly #appHandlers = new Map<string, AppHandler>();
  readonly #credentials: CredentialFlow;
  readonly #channel: RequestChannel;
  readonly #driver: NetworkDriver;
  readonly #sync: CloudSync;
  #status: ManagerStatus;
  #running = false;
  #link: CloudLink | undefined;
  #linkId = 0;
  #retryTimer: ScheduledTask | undefined;
  #connectTimer: ScheduledTask | undefined;
  #failures: { cls: FailureClass; count: number } = { cls: "network", count: 0 };

  constructor(config: DeviceConfig, ports: ManagerPorts, options: ManagerOptions) {
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
      onboardAfterMs: options.onboardAfterMs ?? 0, // read by modules/onboarding/attach.ts, not here
    };
    // The parts call back into this session (it is their host): no closures to keep per manager.
    this.#topics = deviceTopics(config.deviceId);
    this.#channel = new RequestChannel(ports.scheduler, ports.random, this.#topics.request, this.#options.requestTimeoutMs, this.#options.requestAttempts, this);
    this.#credentials = new CredentialFlow(config, ports.kv, ports.digest, this, ports.temporarySecret);
    this.#driver = new NetworkDriver(config, ports, this.#options, this);
    this.#status = { state: "STOPPED", credential: this.#credentials.initialLabel(), attempt: 0 };
    this.#sync = new CloudSync(config, ports, this.#options.sync, this.#driver, this);
  }

  // ------------------------------------------------------------ for ConnectionManager

  /** The wall-clock estimate (see ConnectionManager.wallClock). */
  wallClock(): { unixSeconds: number; synced: boolean } {
    const wall = this.#sync.wall;
    return { unixSeconds: wall.now(), synced: wall.synced };
  }

  /** The current status (the session's own object: copy it before handing it out). */
  get status(): ManagerStatus {
    return this.#status;
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
    this.dropLink();
    this.#driver.leave();
    this.setStatus({ state: "STOPPED", retryInMs: undefined });
  }

  /** See ConnectionManager.publish. */
  publish(suffix: string, payload: Uint8Array): boolean {
    const topic = appTopic(this.#config.deviceId, suffix);
    if (payload.length > MAX_APP_PAYLOAD_BYTES || this.#status.state !== "ONLINE" || !this.#link) return false;
    this.#link.publish(topic, payload);
    return true;
  }

  /** See ConnectionManager.subscribe. */
  subscribe(suffix: string, handler: AppHandler): void {
    const topic = appTopic(this.#config.deviceId, suffix);
    this.#appHandlers.set(topic, handler);
    if (this.#status.state === "ONLINE" && this.#link) this.#link.subscribe(topic);
  }

  // ------------------------------------------------------------ for the parts (host methods)

  /** RequestChannelHost: the session's link. */
  link(): CloudLink | undefined {
    return this.#link;
  }

  /** RequestChannelHost: a request went unanswered. */
  exhausted(op: DeviceRequest["op"]): void {
    this.fail("network", "REQUEST_TIMEOUT", op);
  }

  /** CredentialFlowHost, CloudSyncHost: sends on the request channel. */
  send(request: DeviceRequest): void {
    this.#channel.send(request);
  }

  /** CredentialFlowHost, CloudSyncHost: a fresh request id. */
  newRequestId(): string {
    return this.#channel.newRequestId();
  }

  /** CredentialFlowHost: opens a rotation sealed to the device's key (made at its first hello). */
  openRotation(sealed: Uint8Array): Uint8Array | undefined {
    const key = this.#sync.storedSealKey();
    return key ? openSealed(this.#ports.digest, this.#ports.seal, key.secret, key.public, this.#config.deviceId, sealed, "rotation") : undefined;
  }

  /** CredentialFlowHost: the issued secret is committed: ONLINE as PERMANENT. */
  committed(): void {
    this.setStatus({ credential: "permanent" });
    this.#goOnline();
  }

  /** NetworkDriverHost: the hotspot profiles in use. */
  hotspots(): HotspotSet {
    return this.#sync.hotspots;
  }

  /** NetworkDriverHost: the private networks stored. */
  networks(): PrivateNetwork[] {
    return this.#sync.networks;
  }

  /** NetworkDriverHost: true between start() and stop(). */
  running(): boolean {
    return this.#running;
  }

  /** NetworkDriverHost: true while ONLINE. */
  online(): boolean {
    return this.#status.state === "ONLINE";
  }

  /** NetworkDriverHost: the network was left. */
  clearNetwork(): void {
    if (this.#status.network) this.setStatus({ network: undefined });
  }

  /** NetworkDriverHost: nothing to join now; scan again after `delay`. */
  rescanLater(delay: number): void {
    this.#failures = { cls: "network", count: this.#failures.cls === "network" ? this.#failures.count + 1 : 1 };
    this.#scheduleRetry(delay, "RETRY_WAIT");
  }

  /** NetworkDriverHost: the joined network was lost. */
  lost(): void {
    this.#failures = { cls: "network", count: 1 };
    this.#scheduleRetry(nextRetryDelay("network", 1, this.random01(), this.#options.retry), "RETRY_WAIT");
  }

  /** NetworkDriverHost: a hand-off result for the cloud. */
  result(result: PendingResult): void {
    this.#sync.queueResult(result);
  }

  /** NetworkDriverHost: the login credential's secret, for the hotspot password. */
  hotspotSecret(): Uint8Array {
    return this.#credentials.choose().secret as Uint8Array;
  }

  /** CloudSyncHost: ONLINE, with a link and no request outstanding. */
  canSend(): boolean {
    return this.#status.state === "ONLINE" && this.#link !== undefined && !this.#channel.busy;
  }

  /** CloudSyncHost: fetch a rotated secret. */
  rotate(rid: string): void {
    this.#credentials.rotate(rid);
  }

  // ------------------------------------------------------------ connecting

  /** The next attempt: join a network first when there is a radio and none is joined. */
  #attempt(): void {
    if (!this.#running) return;
    this.#retryTimer = undefined;
    if (this.#driver.hasRadio && !this.#driver.joined) this.#driver.scan();
    else this.connect();
  }

  /** NetworkDriverHost: joined (or no radio): log in to the cloud. */
  connect(): void {
    if (!this.#running) return;
    this.#retryTimer = undefined;
    const login = this.#credentials.login();
    if (!login) return;
    const config = this.#config;
    const password = login.password;
    this.setStatus({ state: "CONNECTING", credential: login.label, retryInMs: undefined });
    const link = this.#ports.link();
    const linkId = ++this.#linkId;
    this.#link = link;
    this.#connectTimer = this.#ports.scheduler.after(this.#options.connectTimeoutMs, () => {
      if (linkId !== this.#linkId) return;
      this.#connectTimer = undefined;
      this.fail("network", "CONNECT_TIMEOUT");
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
    if (this.#credentials.accepted() === "temporary") {
      this.setStatus({ state: "ISSUING" });
      this.#credentials.issue();
      return;
    }
    this.#goOnline();
  }

  #goOnline(): void {
    this.#failures = { cls: "network", count: 0 };
    this.#sync.reset();
    this.setStatus({ state: "ONLINE", attempt: 0, retryInMs: undefined });
    this.#driver.online();
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
    this.#sync.online();
    this.#sync.pump();
  }

  // ------------------------------------------------------------ messages

  #onMessage(topic: string, payload: Uint8Array): void {
    if (topic === this.#topics.response) {
      let message: CloudResponse | CloudNotice;
      try {
        message = decodeCloudMessage(payload);
      } catch (error) {
        this.log("warn", `ignored a malformed response (${isWcmError(error) ? error.message : "error"})`);
        return;
      }
      if ("notice" in message) this.#sync.onNotice(message);
      else this.#onResponse(message);
      return;
    }
    const handler = this.#appHandlers.get(topic);
    if (handler) {
      try {
        handler(payload, topic.slice(this.#topics.app.length + 1));
      } catch (error) {
        this.log("error", `app handler failed: ${error instanceof Error ? error.message : "error"}`);
      }
    }
  }

  #onResponse(response: CloudResponse): void {
    const request = this.#channel.take(response);
    if (!request) return; // stale or duplicate: ignore
    const op = request.op;
    if (!response.ok) {
      if (this.#sync.owns(op)) {
        // Background requests: a refusal leaves the session as it is.
        this.#sync.onRefused(request, response.reason);
        this.#sync.pump();
        return;
      }
      this.fail("server", `REFUSED_${response.reason}`, response.detail);
      return;
    }
    if (response.op !== op) {
      this.fail("server", "PROTOCOL_VIOLATION", "response does not match request");
      return;
    }
    switch (response.op) {
      case "issue": this.#credentials.onIssued(response); return;
      case "commit": this.#credentials.onCommitted(response.gen); return;
      default: this.#sync.onResponse(response, request);
    }
    this.#sync.pump();
  }

  // ------------------------------------------------------------ failures

  #onClose(info: LinkCloseInfo): void {
    this.#link = undefined;
    const code = info.connackCode;
    if (code === CONNACK.badCredentials || code === CONNACK.notAuthorized) {
      const reason = code === CONNACK.badCredentials ? "BAD_CREDENTIALS" : "NOT_AUTHORIZED";
      if (this.#credentials.fallBackAfterRefusal()) {
        this.recordFailure(reason, "unconfirmed issued secret refused; falling back to the credential it replaces");
        this.#scheduleRetry(0, "RETRY_WAIT");
        return;
      }
      this.fail("auth", reason, info.detail);
      return;
    }
    if (code === CONNACK.serverUnavailable) {
      // "cloud busy" (docs/protocol.md section 10): a short jittered window, not the network's exponential back-off
      this.fail("busy", "SERVER_UNAVAILABLE", info.detail);
      return;
    }
    this.fail("network", this.#status.state === "ONLINE" ? "CONNECTION_LOST" : "NETWORK", info.detail);
  }

  /** A failure that ends the attempt: back off and retry (or, unreachable over a joined network, try the next one). */
  fail(cls: FailureClass, reason: string, detail?: string): void {
    if (!this.#running) return;
    const wasOnline = this.#status.state === "ONLINE";
    this.dropLink();
    const joined = this.#driver.joined;
    if (joined && !wasOnline && (reason === "NETWORK" || reason === "CONNECT_TIMEOUT")) {
      // The network is up but the cloud is not reachable over it: try the next network.
      this.recordFailure(reason, detail);
      this.#driver.leave();
      this.#driver.failure(joined, { reason: "INTERNET-NOT-REACHABLE", detail: `${reason}${detail ? `: ${detail}` : ""}` });
      this.#driver.choose();
      return;
    }
    this.recordFailure(reason, detail);
    if (this.#failures.cls !== cls) this.#failures = { cls, count: 0 };
    this.#failures.count = wasOnline ? 1 : this.#failures.count + 1;
    const delay = nextRetryDelay(cls, this.#failures.count, this.random01(), this.#options.retry);
    this.#scheduleRetry(delay, cls === "auth" ? "AUTH_FAILED" : "RETRY_WAIT");
  }

  /** Notes a failure in the status and the log, without ending anything. */
  recordFailure(reason: string, detail?: string): void {
    const lastFailure: Failure = { reason, at: this.#ports.clock.now(), ...(detail ? { detail: detail.slice(0, 200) } : {}) };
    this.#status = { ...this.#status, lastFailure };
    this.log("warn", `${reason}${detail ? `: ${detail}` : ""}`);
  }

  #scheduleRetry(delay: number, state: "RETRY_WAIT" | "AUTH_FAILED"): void {
    this.#retryTimer?.cancel();
    this.setStatus({ state, attempt: this.#failures.count, retryInMs: delay });
    this.#retryTimer = this.#ports.scheduler.after(delay, () => this.#attempt());
  }

  // ------------------------------------------------------------ teardown

  /** CloudSyncHost: leaves the current network (hand-off, forget) and selects again from a fresh scan. */
  /** Local onboarding handed over networks: store them as a cloud change is stored, then move (throws on a store failure). */
  storeLocalNetworks(networks: readonly { ssid: string; password: string; priority: number }[]): void {
    this.#sync.storeLocal(networks);
    if (this.#running) this.moveNetwork();
  }

  moveNetwork(): void {
    this.dropLink();
    this.#driver.leave();
    this.#failures = { cls: "network", count: 0 };
    this.#driver.scan();
  }

  /** Closes the cloud session, if any, and forgets its outstanding request. */
  dropLink(): void {
    this.#channel.clear();
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
    this.#driver.cancelTimers();
    this.#connectTimer?.cancel();
    this.#connectTimer = undefined;
  }

  /** A random number in [0, 1) from the RandomPort. */
  random01(): number {
    const bytes = this.#ports.random.bytes(4);
    return (((bytes[0] << 24) >>> 0) + (bytes[1] << 16) + (bytes[2] << 8) + bytes[3]) / 2 ** 32;
  }

  /** Applies a status change and tells the listeners. */
  setStatus(change: Partial<ManagerStatus>): void {
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

  /** Logs through the LogPort, prefixed with the device id. */
  log(level: "debug" | "info" | "warn" | "error", message: string): void {
    this.#ports.log?.(level, `[${this.#config.deviceId}] ${message}`);
  }
}

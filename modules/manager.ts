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
 * - offers the product's code publish/subscribe on the device's own app topics.
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
import { isWcmError } from "./errors";
import type {
  ClockPort,
  CloudLink,
  CloudLinkFactory,
  DigestPort,
  KeyValuePort,
  LinkCloseInfo,
  LogPort,
  RandomPort,
  ScheduledTask,
  SchedulerPort,
} from "./ports";
import {
  appTopic,
  CONNACK,
  decodeCloudMessage,
  deviceTopics,
  encodeRequest,
  encodeStatus,
  formatLoginPassword,
  MAX_APP_PAYLOAD_BYTES,
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

  constructor(config: DeviceConfig, ports: ManagerPorts, options: ManagerOptions = {}) {
    this.#config = config;
    this.#ports = ports;
    this.#options = {
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      requestAttempts: options.requestAttempts ?? 3,
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
    };
    this.#store = new CredentialStore(ports.kv, ports.digest, config.deviceId);
    this.#topics = deviceTopics(config.deviceId);
    this.#status = { state: "STOPPED", credential: this.#initialLabel(), attempt: 0 };
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
    this.#connect();
  }

  /** Closes the session and stops all timers. Idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#cancelTimers();
    this.#dropLink();
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
    this.#setStatus({ state: "ONLINE", attempt: 0, retryInMs: undefined });
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
      if ("notice" in message) this.#onRotateNotice();
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
    if (!response.ok) {
      this.#fail("server", `REFUSED_${response.reason}`, response.detail);
      return;
    }
    if (response.op === "issue" && pending.request.op === "issue") this.#onIssued(response);
    else if (response.op === "commit" && pending.request.op === "commit") this.#onCommitted(response.gen);
    else this.#fail("server", "PROTOCOL_VIOLATION", "response does not match request");
  }

  /** The cloud holds a rotated secret for this device: fetch it (idempotent if already fetching). */
  #onRotateNotice(): void {
    const credential = this.#credential;
    if (this.#status.state !== "ONLINE" || credential?.kind !== "s" || this.#pending) return;
    this.#send({ v: 1, rid: this.#newRequestId(), op: "issue" });
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
    this.#retryTimer = this.#ports.scheduler.after(delay, () => this.#connect());
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

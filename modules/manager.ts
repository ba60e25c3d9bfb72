/*
 * The connection manager: the state machine that takes a device from start() to
 * an authenticated cloud session, and keeps it there.
 *
 * - picks the credential: certificate, the stored issued secret, the configured
 *   shared secret, or the temporary secret (stored, from hardware, or derived
 *   from the provisioning key: temporary-secret.ts);
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
 *
 * This file is the app API and its types. The state machine is session.ts,
 * which composes the parts: credential-flow.ts (credential, login, issuance
 * and rotation), request-channel.ts (request ids, resends, response matching),
 * network-driver.ts (scan, select, join, network failures) and cloud-sync.ts
 * (hello, config, network changes and results, time).
 */
import type { DeviceConfig } from "./config";
import type { HotspotSet } from "./hotspots";
import type { JoinedNetwork } from "./network-driver";
import type { PrivateNetwork } from "./network-selection";
import type {
  ClockPort,
  CloudLinkFactory,
  DigestPort,
  KeyValuePort,
  LogPort,
  NetworkPort,
  RandomPort,
  SchedulerPort,
  SealPort,
  TemporarySecretPort,
} from "./ports";
import type { CredentialLabel, DeviceState } from "./protocol";
import type { RetryPolicy } from "./retry";
import { OnboardingAttachment } from "./onboarding/attach";
import type { OnboardingPort } from "./onboarding/runner";
import { Session } from "./session";

export type { JoinedNetwork } from "./network-driver";

/** Everything the manager needs from its host. */
export interface ManagerPorts {
  digest: DigestPort;
  random: RandomPort;
  clock: ClockPort;
  scheduler: SchedulerPort;
  kv: KeyValuePort;
  link: CloudLinkFactory;
  /** P-256 ECDH and AES-128-GCM for the sealing key (native on Moddable) */
  seal: SealPort;
  log?: LogPort;
  /** the Wi-Fi radio; when given, the manager joins a network before it connects to the cloud */
  network?: NetworkPort;
  /** computes the temporary secret in hardware (config temporarySecretFrom "hardware"; ESP32: hosts/esp32/hmac) */
  temporarySecret?: TemporarySecretPort;
  /** SoftAP + local HTTP service for local onboarding (with `network` and config.labelCode; docs/protocol.md 15) */
  onboarding?: OnboardingPort;
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
  /** with ports.onboarding: start onboarding after this long without ONLINE and with no private network stored (default 2 min) */
  onboardAfterMs?: number;
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

/** Receives the product's messages on one app topic. */
export type AppHandler = (payload: Uint8Array, suffix: string) => void;


/**
 * Connects a device to the wcm cloud and keeps it connected.
 * @example
 *   const manager = new ConnectionManager(validateConfig(config), ports);
 *   manager.onStatus((s) => trace(`${s.state}\n`));
 *   manager.subscribe("led", (payload) => setLed(payload[0]));
 *   manager.start();
 */
export class ConnectionManager {
  readonly #deviceId: string;
  readonly #session: Session;
  readonly #onboarding: OnboardingAttachment | undefined;

  constructor(config: DeviceConfig, ports: ManagerPorts, options: ManagerOptions = {}) {
    this.#deviceId = config.deviceId;
    const { network, onboarding: softAp } = ports;
    // local onboarding (modules/onboarding/attach.ts) watches the radio and the status; the session does not know it
    const onboarding = network && softAp && config.labelCode
      ? new OnboardingAttachment({ ...ports, network, onboarding: softAp }, { deviceId: config.deviceId, code: config.labelCode, afterMs: options.onboardAfterMs })
      : undefined;
    this.#onboarding = onboarding;
    this.#session = new Session(config, onboarding ? { ...ports, network: onboarding.network } : ports, options);
    if (onboarding) {
      onboarding.bind({ storeNetworks: (networks) => this.#session.storeLocalNetworks(networks), networks: () => this.#session.networks() });
      this.#session.onStatus((status) => onboarding.status(status));
    }
  }

  /**
   * Opens local onboarding now (a button): the SoftAP named from the label and
   * the local service, for the onboarding window; clears a lockout after failed
   * attempts; runs even while ONLINE (docs/protocol.md 15.5).
   * @returns false when the device has no onboarding (no OnboardingPort, radio or label code)
   */
  startOnboarding(): boolean {
    this.#onboarding?.start();
    return this.#onboarding !== undefined;
  }

  /**
   * The wall-clock estimate for certificate checks: never below the firmware's
   * build time or the newest time the cloud told (persisted), and the cloud's
   * time plus monotonic time since once it told it in this boot.
   */
  wallClock(): { unixSeconds: number; synced: boolean } {
    return this.#session.wallClock();
  }

  /** The hotspot profile set in use (firmware's or the newest from the cloud). */
  get hotspots(): HotspotSet {
    const hotspots = this.#session.hotspots();
    return { rev: hotspots.rev, profiles: hotspots.profiles.slice() };
  }

  /** The private networks the device holds (passwords included: never log them). */
  get privateNetworks(): PrivateNetwork[] {
    return this.#session.networks().map((n) => ({ ...n }));
  }

  /** The current status. */
  get status(): ManagerStatus {
    return { ...this.#session.status };
  }

  /** The device id this manager serves. */
  get deviceId(): string {
    return this.#deviceId;
  }

  /** Calls `listener` on every status change; returns a function that removes it. */
  onStatus(listener: (status: ManagerStatus) => void): () => void {
    return this.#session.onStatus(listener);
  }

  /** Starts connecting. Idempotent. */
  start(): void {
    this.#session.start();
  }

  /** Closes the session and stops all timers. Idempotent. */
  stop(): void {
    this.#session.stop();
  }

  /**
   * Publishes a product message on `wcm/v1/<deviceId>/app/<suffix>` (QoS 0).
   * @returns false when not ONLINE (nothing is queued) or the payload is too large
   * @throws WcmError MESSAGE_INVALID for a malformed suffix
   */
  publish(suffix: string, payload: Uint8Array): boolean {
    return this.#session.publish(suffix, payload);
  }

  /**
   * Delivers product messages arriving on `wcm/v1/<deviceId>/app/<suffix>` to `handler`;
   * kept across reconnects.
   * @throws WcmError MESSAGE_INVALID for a malformed suffix
   */
  subscribe(suffix: string, handler: AppHandler): void {
    this.#session.subscribe(suffix, handler);
  }
}

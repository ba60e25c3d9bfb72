/*
 * The connection manager: the app API, and the driver of the state machine.
 *
 * Its behaviour is machine.ts's `step(state, event) -> { state, effects }`:
 * credential choice and login, issuance and rotation, requests with resends,
 * scan / select / join with a NetworkPort, the cloud sync of hotspot profiles,
 * private networks and time, retries with back-off.
 * This file only drives it:
 * - reads the stored records once at boot (credential-store.ts, network-store.ts);
 * - turns every port callback (timer, link, radio) and app call into an event
 *   with the clock and fresh random bytes, one at a time (run to completion:
 *   an event raised while effects run waits its turn; link and radio callbacks
 *   are stepped from a 0 ms timer, never on top of the TLS stack, and a link is
 *   connected from one too);
 * - runs each step's effects through the ports: stores first (a failed `must`
 *   store drops the step and is stepped as `storeFailed` instead), then the rest
 *   in order.
 * Without a NetworkPort and without `sync` it behaves as the manager always did:
 * no scan, no extra request, no extra flash write.
 */
import { appTopic, deviceTopics, MAX_APP_PAYLOAD_BYTES } from "./wire";
import type { DeviceConfig, TemporaryConfig } from "./config";
import { deriveTemporarySecret } from "./derive";
import { CredentialStore } from "./credential-store";
import { fail } from "./check";
import { isWcmError } from "./errors";
import type { HotspotSet } from "./hotspots";
import { boot, ENTROPY_BYTES, step, wallNow, type Context, type Effect, type Event, type Input, type Machine, type ManagerOptions, type ManagerStatus, type Stored, type TimerName } from "./machine";
import type { PrivateNetwork } from "./network-selection";
import { NetworkStore } from "./network-store";
import type {
  ClockPort,
  CloudLink,
  CloudLinkFactory,
  DigestPort,
  KeyValuePort,
  LogPort,
  NetworkPort,
  RandomPort,
  ScheduledTask,
  SchedulerPort,
  SealPort,
  TemporarySecretPort,
} from "./ports";
import { DEFAULT_RETRY_POLICY } from "./retry";
import { OnboardingAttachment } from "./onboarding/attach";
import type { OnboardingPort } from "./onboarding/runner";

export type { JoinedNetwork } from "./machine";
export type { Failure, ManagerOptions, ManagerStatus } from "./machine";

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
  /** sees the records read at boot and every step (event in, effects out; `kept` false when a failed store dropped it): for recording and replay */
  recorder?: { boot(stored: Stored, nowMs: number): void; step(event: Event, effects: readonly Effect[], kept: boolean): void };
}

/**
 * What the state machine computes with, from the configuration, the deterministic ports and the options (defaults filled in).
 * @param ports.radio - true when the manager has a NetworkPort
 */
export function managerContext(
  config: DeviceConfig,
  ports: { digest: DigestPort; seal: SealPort; radio: boolean; temporarySecret?: TemporarySecretPort },
  options: ManagerOptions = {},
): Context {
  const digest = ports.digest;
  return {
    config, digest, seal: ports.seal, radio: ports.radio, topics: deviceTopics(config.deviceId),
    temporary: config.option === "temporary" ? temporarySecretPort(config, digest, ports.temporarySecret) : undefined,
    options: {
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      requestAttempts: options.requestAttempts ?? 3,
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      sync: options.sync ?? ports.radio,
      scanTimeoutMs: options.scanTimeoutMs ?? 15_000,
      joinTimeoutMs: options.joinTimeoutMs ?? 45_000,
      upgradeCheckMs: options.upgradeCheckMs ?? 60_000,
      onboardAfterMs: options.onboardAfterMs ?? 0, // read by modules/onboarding/attach.ts, not by the machine
    },
  };
}

/** Receives the product's messages on one app topic. */
export type AppHandler = (payload: Uint8Array, suffix: string) => void;

/** An error's message for a log line, never anything else of it. */
const messageOf = (error: unknown) => error instanceof Error ? error.message : "error";

/**
 * Connects a device to the wcm cloud and keeps it connected.
 * @example
 *   const manager = new ConnectionManager(validateConfig(config), ports);
 *   manager.onStatus((s) => trace(`${s.state}\n`));
 *   manager.subscribe("led", (payload) => setLed(payload[0]));
 *   manager.start();
 */
export class ConnectionManager {
  // plain private fields (not #private), set in the constructor: each # name and field initializer costs XS bytecode
  declare private readonly ports: ManagerPorts;
  declare private readonly creds: CredentialStore;
  declare private readonly nets: NetworkStore;
  declare private readonly onboarding: OnboardingAttachment | undefined;
  declare private m: Machine;
  declare private link: CloudLink | undefined;
  declare private readonly listeners: ((status: ManagerStatus) => void)[];
  declare private readonly handlers: Map<string, AppHandler>;
  declare private readonly timers: Partial<Record<TimerName, ScheduledTask>>;
  declare private readonly queue: Input[];
  declare private running: boolean;
  declare private drainArmed: boolean;
  /** set when a `must` store of the last step failed */
  declare private storeFailed: string;

  constructor(config: DeviceConfig, ports: ManagerPorts, options: ManagerOptions = {}) {
    // fields set here, not as initializers: cheaper in XS bytecode
    this.listeners = [];
    this.handlers = new Map();
    this.timers = {};
    this.queue = [];
    this.running = this.drainArmed = false;
    this.storeFailed = "";
    const network = ports.network;
    // local onboarding (modules/onboarding/attach.ts) watches the radio and the status; the state machine does not know it
    const onboarding = network && ports.onboarding && config.labelCode
      ? new OnboardingAttachment(ports as ConstructorParameters<typeof OnboardingAttachment>[0], { deviceId: config.deviceId, code: config.labelCode, afterMs: options.onboardAfterMs })
      : undefined;
    this.onboarding = onboarding;
    if (onboarding) ports = { ...ports, network: onboarding.network };
    this.ports = ports;
    const id = config.deviceId;
    const creds = this.creds = new CredentialStore(ports.kv, ports.digest, id);
    const nets = this.nets = new NetworkStore(ports.kv, ports.digest, id);
    const stored: Stored = {
      secret: creds.loadSecret(),
      counter: creds.loadReservation(),
      hotspots: nets.loadHotspots(),
      networks: nets.loadNetworks(),
      sealKey: nets.loadSealKey(),
      floor: nets.loadTimeFloor(),
    };
    const now = ports.clock.now();
    ports.recorder?.boot(stored, now);
    this.m = boot(managerContext(config, { digest: ports.digest, seal: ports.seal, radio: !!network, temporarySecret: ports.temporarySecret }, options), stored, now);
    if (onboarding) {
      onboarding.bind({ storeNetworks: (networks) => this.storeNetworks(networks), networks: () => this.m.sync.networks });
      this.onStatus((status) => onboarding.status(status));
    }
  }

  /**
   * Opens local onboarding now (a button): the SoftAP named from the label and
   * the local service, for the onboarding window; clears a lockout after failed
   * attempts; runs even while ONLINE (docs/protocol.md 15.5).
   * @returns false when the device has no onboarding (no OnboardingPort, radio or label code)
   */
  startOnboarding(): boolean {
    this.onboarding?.start();
    return !!this.onboarding;
  }

  /** Local onboarding handed over networks: stored (a `networks` event), then moved to. @throws WcmError STORE_FAILED when the record could not be written */
  private storeNetworks(networks: readonly PrivateNetwork[]): void {
    this.storeFailed = "";
    this.dispatch({ t: "networks", networks: networks.map((n) => ({ ssid: n.ssid, password: n.password, priority: n.priority })) });
    const code = this.storeFailed;
    if (code) fail(code === "STORE_LIMIT" ? code : "STORE_FAILED", "could not store the networks", "networks");
  }

  /**
   * The wall-clock estimate for certificate checks: never below the firmware's
   * build time or the newest time the cloud told (persisted), and the cloud's
   * time plus monotonic time since once it told it in this boot.
   */
  wallClock(): { unixSeconds: number; synced: boolean } {
    const wall = this.m.sync.wall;
    return { unixSeconds: wallNow(wall, this.ports.clock.now()), synced: wall.sync !== undefined };
  }

  /** The hotspot profile set in use (firmware's or the newest from the cloud). */
  get hotspots(): HotspotSet {
    const hotspots = this.m.sync.hotspots;
    return { rev: hotspots.rev, profiles: hotspots.profiles.slice() };
  }

  /** The private networks the device holds (passwords included: never log them). */
  get privateNetworks(): PrivateNetwork[] {
    return this.m.sync.networks.map((n) => ({ ...n }));
  }

  /** The current status. */
  get status(): ManagerStatus {
    return { ...this.m.status };
  }

  /** The device id this manager serves. */
  get deviceId(): string {
    return this.m.ctx.config.deviceId;
  }

  /** Calls `listener` on every status change; returns a function that removes it. */
  onStatus(listener: (status: ManagerStatus) => void): () => void {
    const listeners = this.listeners;
    listeners.push(listener);
    return () => {
      const index = listeners.indexOf(listener);
      if (index >= 0) listeners.splice(index, 1);
    };
  }

  /** Starts connecting. Idempotent. */
  start(): void {
    this.dispatch({ t: "start" });
  }

  /** Closes the session and stops all timers. Idempotent. */
  stop(): void {
    this.dispatch({ t: "stop" });
  }

  /**
   * Publishes a product message on `wcm/v1/<deviceId>/app/<suffix>` (QoS 0).
   * @returns false when not ONLINE (nothing is queued) or the payload is too large
   * @throws WcmError MESSAGE_INVALID for a malformed suffix
   */
  publish(suffix: string, payload: Uint8Array): boolean {
    const topic = appTopic(this.deviceId, suffix);
    const m = this.m;
    if (payload.length > MAX_APP_PAYLOAD_BYTES || m.status.state !== "ONLINE" || !m.link) return false;
    this.dispatch({ t: "publish", topic, payload });
    return true;
  }

  /**
   * Delivers product messages arriving on `wcm/v1/<deviceId>/app/<suffix>` to `handler`;
   * kept across reconnects.
   * @throws WcmError MESSAGE_INVALID for a malformed suffix
   */
  subscribe(suffix: string, handler: AppHandler): void {
    const topic = appTopic(this.deviceId, suffix);
    this.handlers.set(topic, handler);
    this.dispatch({ t: "subscribe", topic });
  }

  // ------------------------------------------------------------ the driver

  /**
   * A port's callback (link, radio): queued, and stepped from a fresh stack (a 0 ms
   * timer) unless a step is running. Callbacks can come from deep inside the TLS and
   * MQTT code (Moddable's JS stack is 384 slots), so the machine never runs on top of them.
   */
  private later(input: Input): void {
    this.queue.push(input);
    if (this.running || this.drainArmed) return;
    this.drainArmed = true;
    this.ports.scheduler.after(0, () => {
      this.drainArmed = false;
      this.dispatch();
    });
  }

  /** Steps `input` (and whatever is queued or its effects raise, in turn). */
  private dispatch(input?: Input): void {
    const queue = this.queue;
    if (input) queue.push(input);
    if (this.running) return;
    this.running = true;
    try {
      for (let next = queue.shift(); next; next = queue.shift()) this.step(next);
    } finally {
      this.running = false;
    }
  }

  /** One step: its stores first (a failed `must` store drops the step), then its other effects in order. */
  private step(input: Input): void {
    const ports = this.ports;
    const event = { ...input, now: ports.clock.now(), rnd: ports.random.bytes(ENTROPY_BYTES) } as Event;
    const next = step(this.m, event);
    const effects = next.effects;
    const soft: Input[] = [];
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i];
      if (effect.t !== "store") continue;
      try {
        this.store(effect);
      } catch (error) {
        const code = isWcmError(error) ? error.code : "STORE_FAILED";
        const must = !!effect.must;
        const failed: Input = { t: "storeFailed", rec: effect.rec, must, code };
        if (must) {
          this.storeFailed = code;
          ports.recorder?.step(event, effects, false);
          this.queue.unshift(failed);
          return;
        }
        soft.push(failed);
      }
    }
    ports.recorder?.step(event, effects, true);
    this.m = next.state;
    for (let i = 0; i < effects.length; i++) this.run(effects[i]);
    for (let i = 0; i < soft.length; i++) this.queue.push(soft[i]);
  }

  private store(effect: Extract<Effect, { t: "store" }>): void {
    const creds = this.creds;
    const nets = this.nets;
    switch (effect.rec) {
      case "ctr": creds.saveReservation(effect.end); break;
      case "cred": creds.saveSecret(effect.secret); break;
      case "nets": nets.saveNetworks(effect.networks); break;
      case "hot": nets.saveHotspots(effect.set); break;
      case "seal": nets.saveSealKey(effect.key); break;
      case "floor": nets.saveTimeFloor(effect.seconds);
    }
  }

  /** A log line through the LogPort, prefixed with the device id. */
  private log(level: Parameters<LogPort>[0], message: string): void {
    this.ports.log?.(level, `[${this.deviceId}] ${message}`);
  }

  private run(effect: Effect): void {
    const ports = this.ports;
    const radio = ports.network as NetworkPort;
    const later = (input: Input) => this.later(input);
    switch (effect.t) {
      case "status":
        // a listener's failure is not the manager's
        this.listeners.slice().forEach((listener) => quietly(() => listener({ ...effect.status })));
        break;
      case "log":
        this.log(effect.level, effect.msg);
        break;
      case "arm":
      case "cancel": {
        const name = effect.timer;
        const timers = this.timers;
        timers[name]?.cancel();
        delete timers[name];
        if (effect.t === "cancel") break;
        const task = ports.scheduler.after(effect.ms, () => {
          if (timers[name] !== task) return;
          delete timers[name];
          this.dispatch({ t: "timer", timer: name });
        });
        timers[name] = task;
        break;
      }
      case "connect": {
        const id = effect.link;
        const link = this.link = ports.link();
        // from a fresh stack: a TLS client's setup is deep (Moddable: certificate parsing
        // under a 384-slot JS stack), and start() may be called from anywhere
        ports.scheduler.after(0, () => this.link === link && link.connect(effect.options, {
          onReady: () => later({ t: "ready", link: id }),
          onMessage: (topic, payload) => later({ t: "message", link: id, topic, payload }),
          onClose: (info) => {
            if (this.link === link) this.link = undefined;
            later({ t: "closed", link: id, info });
          },
        }));
        break;
      }
      case "close": {
        const link = this.link;
        this.link = undefined;
        // closing a dead link is fine
        if (link) quietly(() => link.close());
        break;
      }
      case "publish":
        this.link?.publish(effect.topic, effect.payload);
        break;
      case "subscribe":
        this.link?.subscribe(effect.topic);
        break;
      case "deliver":
        try {
          this.handlers.get(effect.topic)?.(effect.payload, effect.suffix);
        } catch (error) {
          this.log("error", `app handler failed: ${messageOf(error)}`);
        }
        break;
      case "scan": {
        const gen = effect.gen;
        try {
          radio.scan((results) => later({ t: "scanned", gen, results }));
        } catch (error) {
          later({ t: "scanned", gen, results: [], error: messageOf(error) });
        }
        break;
      }
      case "join": {
        const gen = effect.gen;
        radio.join(effect.request, {
          onJoined: (info) => later({ t: "joined", gen, ip: info.ip, bssid: info.bssid }),
          onFailed: (failure) => later({ t: "joinFailed", gen, failure }),
          onLost: (failure) => later({ t: "lost", gen, failure }),
        });
        break;
      }
      case "leave":
        // leaving a network that is gone is fine
        quietly(() => radio.leave());
    }
  }
}

/** Runs `f`, ignoring what it throws. */
function quietly(f: () => void): void {
  try {
    f();
  } catch {
    // ignored
  }
}

// ------------------------------------------------------------ the temporary secret (also modules/temporary-secret.ts for the Node side)

/*
 * Where a temporary device's temporary secret (docs/protocol.md 5.1) comes
 * from: the TemporarySecretPort for its configuration.
 *
 * - derived mode (config.temporarySecret): the line wrote the device's own
 *   derived secret; there is no lot key on the device, so a dump of it logs in
 *   as that one device and no other;
 * - hardware mode (config.temporarySecretFrom = "hardware"): the host's port
 *   (ESP32: the HMAC peripheral over an eFuse key block) computes it;
 * - lot-key mode (config.provisioningKey): computed in software from the lot
 *   key, which the device then holds (weaker: see docs/manufacturing.md).
 */
/**
 * The port that computes the temporary secret for a temporary configuration.
 * @param config - a validated temporary configuration
 * @param digest - HMAC-SHA256 for the lot-key mode
 * @param hardware - the host's hardware port (hardware mode only)
 * @returns a port; its temporarySecret() throws WcmError KEY_UNAVAILABLE when the
 *   secret cannot be had (hardware mode on a host without a port, a derived secret
 *   asked for another device id, or the hardware's own faults)
 * @example temporarySecretPort(config, nobleDigest).temporarySecret(config.deviceId)
 */
export function temporarySecretPort(config: TemporaryConfig, digest: DigestPort, hardware?: TemporarySecretPort): TemporarySecretPort {
  return hardware && "temporarySecretFrom" in config ? hardware : {
    temporarySecret(deviceId) {
      if ("provisioningKey" in config) return deriveTemporarySecret(digest, config.provisioningKey, deviceId);
      if (!("temporarySecret" in config)) return fail("KEY_UNAVAILABLE", "temporarySecretFrom is hardware but this host has no hardware key port (ManagerPorts.temporarySecret)");
      if (deviceId !== config.deviceId) fail("KEY_UNAVAILABLE", "the stored temporary secret is this device's only", "deviceId");
      return config.temporarySecret.slice();
    },
  };
}

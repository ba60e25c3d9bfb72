/*
 * Runs the onboarding machine (machine.ts) on a device: feeds it events from
 * the host's OnboardingPort (SoftAP + local HTTP service), the scheduler and
 * the connection manager, and carries out its effects (SoftAP up and down,
 * answers, storing handed-over networks through the manager).
 * The only state is the machine's; this file has no decisions of its own.
 */
import type { ClockPort, DigestPort, LogPort, NetworkFailureReason, RandomPort, ScanResult, ScheduledTask, SchedulerPort, SealPort } from "../ports";
import {
  DEFAULT_ONBOARDING_TIMES, INITIAL_ONBOARDING, onboardingStep,
  type LocalRequest, type OnboardingEvent, type OnboardingState, type OnboardingTimes,
} from "./machine";
import { softApName } from "./device-label-code";
import type { OnboardNetwork } from "./device-messages";

/**
 * The host's SoftAP and local HTTP service (Node: hosts/node/onboarding-softap.ts;
 * Moddable: hosts/moddable/onboarding-softap.ts). The host bounds each body to
 * MAX_LOCAL_BODY bytes (answering 413 itself beyond) before calling `handler`.
 */
export interface OnboardingPort {
  /** Brings up the SoftAP `ssid` (open: the PAKE, not WPA2, protects it) and the service. */
  open(ssid: string, handler: (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void): void;
  /** Takes both down; idempotent. */
  close(): void;
}

/** What the runner needs from the connection manager. */
export interface OnboardingHost {
  /**
   * Stores the handed-over networks in the device's network store (the same
   * crash-safe record as a cloud hand-off) and lets the manager join them.
   * @throws on a store failure (nothing is then changed)
   */
  storeNetworks(networks: OnboardNetwork[]): void;
}

/** Device-side onboarding. */
export class OnboardingRunner {
  #state: OnboardingState = INITIAL_ONBOARDING;
  readonly #ports: { digest: DigestPort; seal: SealPort; random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; log?: LogPort };
  readonly #port: OnboardingPort;
  readonly #host: OnboardingHost;
  readonly #deviceId: string;
  readonly #code: string;
  readonly #times: OnboardingTimes;
  readonly #replies = new Map<number, (status: number, body: Uint8Array) => void>();
  #nextId = 1;
  #timer: ScheduledTask | undefined;
  #listeners: ((state: OnboardingState) => void)[] = [];

  /** @param code the label code's 13 data characters (parseLabelCode) */
  constructor(
    ports: { digest: DigestPort; seal: SealPort; random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; log?: LogPort },
    port: OnboardingPort,
    host: OnboardingHost,
    setup: { deviceId: string; code: string; times?: Partial<OnboardingTimes> },
  ) {
    this.#ports = ports;
    this.#port = port;
    this.#host = host;
    this.#deviceId = setup.deviceId;
    this.#code = setup.code;
    this.#times = { ...DEFAULT_ONBOARDING_TIMES, ...setup.times };
  }

  /** The machine's state (read-only). */
  get state(): OnboardingState {
    return this.#state;
  }

  /** True while the SoftAP is up. */
  get active(): boolean {
    return this.#state.phase !== "off";
  }

  /** Calls `listener` after every step. */
  onChange(listener: (state: OnboardingState) => void): void {
    this.#listeners.push(listener);
  }

  /** Opens onboarding; `asked` (a button, the product) clears a lockout and may run while ONLINE. */
  start(asked: boolean): void {
    this.#feed({ type: "start", asked });
  }

  stop(): void {
    this.#feed({ type: "stop" });
  }

  /** The manager's latest scan (the device's own SoftAP left out). */
  scan(results: readonly ScanResult[]): void {
    const own = softApName(this.#deviceId);
    this.#feed({ type: "scan", results: results.filter((r) => r.ssid !== own) });
  }

  joined(ssid: string): void {
    this.#feed({ type: "joined", ssid });
  }

  joinFailed(ssid: string, reason: NetworkFailureReason): void {
    this.#feed({ type: "join-failed", ssid, reason });
  }

  online(online: boolean): void {
    if (online !== this.#state.online) this.#feed({ type: "online", online });
  }

  #queue: OnboardingEvent[] = [];
  #feeding = false;

  /** One event at a time: an event raised while an effect runs (a synchronous join, a store) waits its turn. */
  #feed(event: OnboardingEvent): void {
    this.#queue.push(event);
    if (this.#feeding) return;
    this.#feeding = true;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) this.#step(next);
    } finally {
      this.#feeding = false;
      this.#queue = [];
    }
  }

  #step(event: OnboardingEvent): void {
    const ports = this.#ports;
    const step = onboardingStep(this.#state, event, {
      digest: ports.digest, seal: ports.seal, random: (n) => ports.random.bytes(n), now: ports.clock.now(),
      deviceId: this.#deviceId, code: this.#code, times: this.#times,
    });
    this.#state = step.state;
    this.#timer?.cancel();
    this.#timer = undefined;
    if (step.wakeAt !== undefined) {
      this.#timer = ports.scheduler.after(Math.max(0, step.wakeAt - ports.clock.now()), () => {
        this.#timer = undefined;
        this.#feed({ type: "tick" });
      });
    }
    for (const effect of step.effects) {
      switch (effect.type) {
        case "ap-open":
          this.#port.open(effect.ssid, (request, respond) => {
            const id = this.#nextId++;
            this.#replies.set(id, respond);
            this.#feed({ type: "request", id, request });
          });
          break;
        case "ap-close":
          this.#port.close();
          for (const respond of this.#replies.values()) respond(410, new Uint8Array(0));
          this.#replies.clear();
          break;
        case "respond": {
          const respond = this.#replies.get(effect.id);
          this.#replies.delete(effect.id);
          respond?.(effect.status, effect.body);
          break;
        }
        case "store": {
          let ok = true;
          try {
            this.#host.storeNetworks(effect.networks);
          } catch (error) {
            ok = false;
            ports.log?.("warn", `onboarding: storing networks failed: ${error instanceof Error ? error.message : "error"}`);
          }
          this.#feed({ type: "stored", id: effect.id, ok });
          break;
        }
        case "log":
          ports.log?.(effect.level, effect.message);
          break;
      }
    }
    for (const listener of this.#listeners) listener(this.#state);
  }
}

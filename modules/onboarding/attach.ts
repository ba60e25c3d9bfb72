/*
 * Device-side onboarding: OnboardingAttachment runs the onboarding machine
 * (machine.ts) for the connection manager. It feeds the machine events from the
 * host's OnboardingPort (SoftAP + local HTTP service), the scheduler, the radio
 * and the manager, one at a time, and carries out the effects (SoftAP up and
 * down, answers, storing handed-over networks); the machine makes every decision.
 * The manager only constructs it, passes its radio through `network`, and binds
 * two functions; the attachment:
 * - watches the radio (a NetworkPort that forwards every call): each scan goes
 *   to the owner's scan list, each join outcome to the machine (JOINED / FAILED
 *   of a handed-over network; a join the manager abandons by leave() counts as
 *   ASSOCIATION-FAILED);
 * - watches the manager's status: ONLINE is told to the machine (an onboarding
 *   it started itself then ends), STOPPED stops it;
 * - starts onboarding by itself when the device holds no private network and
 *   has not been ONLINE for `onboardAfterMs` since it started (or since it was
 *   last ONLINE, or since the last window ended), never while ONLINE;
 * - `start()` is manager.startOnboarding(): the product's button (clears a lockout).
 * Handed-over networks are stored by the manager's own `storeNetworks` (the
 * same record, rules and move as a cloud hand-off).
 */
import type {
  ClockPort, DigestPort, JoinRequest, LogPort, NetworkFailureReason, NetworkPort, RandomPort, ScheduledTask, SchedulerPort, SealPort,
} from "../ports";
import type { OnboardNetwork } from "./device-messages";
import {
  DEFAULT_ONBOARDING_TIMES, INITIAL_ONBOARDING, onboardingStep,
  type LocalRequest, type OnboardingContext, type OnboardingEvent, type OnboardingState, type OnboardingTimes,
} from "./machine";

/** Default wait before the manager starts onboarding by itself (2 min without ONLINE and with no private network). */
export const DEFAULT_ONBOARD_AFTER_MS = 120_000;

/**
 * The host's SoftAP and local HTTP service (Node: hosts/node/onboarding-softap.ts;
 * Moddable: hosts/lin/network.ts, hosts/esp32/onboarding.ts). The host bounds
 * each body to MAX_LOCAL_BODY bytes (answering 413 itself beyond) before calling `handler`.
 */
export interface OnboardingPort {
  /** Brings up the SoftAP `ssid` (open: the PAKE, not WPA2, protects it) and the service. */
  open(ssid: string, handler: (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void): void;
  /** Takes both down; idempotent. */
  close(): void;
}

/** What onboarding needs from its owner (the connection manager). */
export interface OnboardingHost {
  /**
   * Stores the handed-over networks in the device's network store (the same
   * crash-safe record as a cloud hand-off) and lets the manager join them.
   * @throws on a store failure (nothing is then changed)
   */
  storeNetworks(networks: OnboardNetwork[]): void;
}

/** What the attachment needs from the manager, bound after the manager is built. */
export interface OnboardingBinding extends OnboardingHost {
  /** the private networks stored */
  networks(): readonly { ssid: string }[];
}

/** The status fields the attachment reads. */
export interface StatusView { state: string }

/** The ports the attachment runs with. */
export type RunnerPorts = { digest: DigestPort; seal: SealPort; random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; log?: LogPort };

/** Device-side onboarding for one manager: the machine's runner, fed by the manager's radio and status. */
export class OnboardingAttachment {
  // fields are `declare`d and set in the constructor, TypeScript-private: on XS a class field
  // definition or a #private name costs ~40 B of bytecode each, a constructor assignment ~8
  /** the manager's radio, watched */
  declare readonly network: NetworkPort;
  /** the machine's state */
  protected declare current: OnboardingState;
  /** who stores handed-over networks (bound to the manager) */
  protected declare host: OnboardingBinding | undefined;
  private declare readonly ports: RunnerPorts;
  private declare readonly port: OnboardingPort;
  private declare readonly ctx: OnboardingContext;
  private declare readonly replies: Map<number, (status: number, body: Uint8Array) => void>;
  private declare readonly afterMs: number;
  private declare nextId: number;
  private declare timer: ScheduledTask | undefined;
  private declare trigger: ScheduledTask | undefined;
  private declare queue: OnboardingEvent[];
  /** the manager's last state */
  private declare seen: string;

  /** @param setup.code the label code's 13 data characters (parseLabelCode) */
  constructor(
    ports: RunnerPorts & { network: NetworkPort; onboarding: OnboardingPort },
    setup: { deviceId: string; code: string; afterMs?: number; times?: Partial<OnboardingTimes> },
  ) {
    this.current = INITIAL_ONBOARDING;
    this.ports = ports;
    this.port = ports.onboarding;
    this.replies = new Map();
    this.nextId = 1;
    this.queue = [];
    this.afterMs = setup.afterMs ?? DEFAULT_ONBOARD_AFTER_MS;
    this.seen = "STOPPED";
    this.ctx = {
      digest: ports.digest, seal: ports.seal, random: (n) => ports.random.bytes(n), now: 0,
      deviceId: setup.deviceId, code: setup.code, times: { ...DEFAULT_ONBOARDING_TIMES, ...setup.times },
    };
    const radio = ports.network;
    let pending: string | undefined;
    // forwards everything and tells the machine what it sees
    const outcome = (ssid: string, reason?: NetworkFailureReason) => {
      if (pending === ssid) pending = undefined;
      this.feed(reason ? { type: "join-failed", ssid, reason } : { type: "joined", ssid });
    };
    this.network = {
      scan: (done) => radio.scan((results) => {
        this.feed({ type: "scan", results });
        done(results);
      }),
      join: (request: JoinRequest, events) => {
        const ssid = (pending = request.ssid);
        // (the manager's callbacks are arrow functions: onLost goes through as it is)
        radio.join(request, {
          ...events,
          onJoined: (info) => (outcome(ssid), events.onJoined(info)),
          onFailed: (failure) => (outcome(ssid, failure.reason), events.onFailed(failure)),
        });
      },
      leave: () => {
        const abandoned = pending;
        pending = undefined;
        radio.leave();
        if (abandoned !== undefined) outcome(abandoned, "ASSOCIATION-FAILED");
      },
    };
  }

  /** Binds the manager's functions (once, right after the manager is built). */
  bind(binding: OnboardingBinding): void {
    this.host = binding;
  }

  /** manager.startOnboarding(): opens onboarding now (even while ONLINE); `asked` (a button, the product) clears a lockout. */
  start(asked = true): void {
    this.disarm();
    this.feed({ type: "start", asked });
  }

  /** Every status change of the manager. */
  status(status: StatusView): void {
    const was = this.seen;
    const state = (this.seen = status.state);
    const online = state === "ONLINE";
    if (state === "STOPPED") {
      this.disarm();
      return this.feed({ type: "stop" });
    }
    if (online !== this.current.online) this.feed({ type: "online", online });
    if (online) this.disarm();
    else if (was === "STOPPED" || was === "ONLINE") this.arm();
  }

  /** One event at a time: an event raised while an effect runs (a synchronous join, a store) waits its turn. */
  protected feed(event: OnboardingEvent): void {
    const queue = this.queue;
    if (queue.push(event) > 1) return;
    try {
      for (let next: OnboardingEvent | undefined = event; next; queue.shift(), next = queue[0]) this.step(next);
    } finally {
      this.queue = [];
    }
  }

  private step(event: OnboardingEvent): void {
    const ports = this.ports;
    const clock = ports.clock;
    const ctx = this.ctx;
    const replies = this.replies;
    const log = ports.log ?? (() => {});
    ctx.now = clock.now();
    const step = onboardingStep(this.current, event, ctx);
    const wakeAt = step.wakeAt;
    const effects = step.effects;
    this.current = step.state;
    this.timer?.cancel();
    this.timer = wakeAt === undefined ? undefined : ports.scheduler.after(Math.max(0, wakeAt - clock.now()), () => {
      this.timer = undefined;
      this.feed({ type: "tick" });
    });
    for (let i = 0; i < effects.length; i++) {
      const effect = effects[i];
      const type = effect.type;
      if (type === "ap-open") {
        this.port.open(effect.ssid, (request, respond) => {
          const id = this.nextId++;
          replies.set(id, respond);
          this.feed({ type: "request", id, request });
        });
      } else if (type === "ap-close") {
        this.port.close();
        replies.forEach((respond) => respond(410, new Uint8Array(0)));
        replies.clear();
      } else if (type === "respond") {
        const respond = replies.get(effect.id);
        replies.delete(effect.id);
        if (respond) respond(effect.status, effect.body);
      } else if (type === "store") {
        let ok = true;
        try {
          this.host!.storeNetworks(effect.networks);
        } catch (error) {
          ok = false;
          log("warn", `onboarding: storing networks failed: ${error instanceof Error ? error.message : "error"}`);
        }
        this.feed({ type: "stored", id: effect.id, ok });
      } else {
        log(effect.level, effect.message);
      }
    }
    // not running: arm the automatic start
    if (this.current.phase === "off") this.arm();
  }

  private disarm(): void {
    this.trigger?.cancel();
    this.trigger = undefined;
  }

  /** Starts the wait before an automatic onboarding (when none waits and none runs). */
  private arm(): void {
    const idle = () => this.current.phase === "off" && this.seen !== "STOPPED" && this.seen !== "ONLINE";
    if (this.trigger || !idle()) return;
    this.trigger = this.ports.scheduler.after(this.afterMs, () => {
      this.trigger = undefined;
      if (!idle()) return;
      if (this.host?.networks().length) this.arm();
      else this.start(false);
    });
  }
}

/*
 * Device-side onboarding: the runner of the onboarding machine (machine.ts)
 * and its attachment to the connection manager.
 *
 * OnboardingRunner feeds the machine events from the host's OnboardingPort
 * (SoftAP + local HTTP service), the scheduler and its owner, one at a time,
 * and carries out the effects (SoftAP up and down, answers, storing handed-over
 * networks). Its only state is the machine's: it has no decisions of its own.
 *
 * OnboardingAttachment is the runner as the manager uses it (the manager only
 * constructs it, passes its radio through `network`, and binds two functions):
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
  ClockPort, DigestPort, JoinRequest, LogPort, NetworkFailureReason, NetworkPort, RandomPort, ScanResult, ScheduledTask, SchedulerPort, SealPort,
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

/** What the runner needs from its owner (the connection manager). */
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

type RunnerPorts = { digest: DigestPort; seal: SealPort; random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; log?: LogPort };

/** Device-side onboarding. */
export class OnboardingRunner {
  // fields are `declare`d and set in the constructor, TypeScript-private: on XS a class field
  // definition or a #private name costs ~40 B of bytecode each, a constructor assignment ~8
  private declare current: OnboardingState;
  private declare readonly ports: RunnerPorts;
  private declare readonly port: OnboardingPort;
  private declare readonly ctx: OnboardingContext;
  private declare readonly replies: Map<number, (status: number, body: Uint8Array) => void>;
  private declare nextId: number;
  private declare timer: ScheduledTask | undefined;
  private declare queue: OnboardingEvent[];
  /** who stores handed-over networks (the attachment binds the manager here) */
  protected declare host: OnboardingHost;

  /** @param setup.code the label code's 13 data characters (parseLabelCode) */
  constructor(ports: RunnerPorts, port: OnboardingPort, host: OnboardingHost, setup: { deviceId: string; code: string; times?: Partial<OnboardingTimes> }) {
    this.current = INITIAL_ONBOARDING;
    this.ports = ports;
    this.port = port;
    this.host = host;
    this.replies = new Map();
    this.nextId = 1;
    this.queue = [];
    this.ctx = {
      digest: ports.digest, seal: ports.seal, random: (n) => ports.random.bytes(n), now: 0,
      deviceId: setup.deviceId, code: setup.code, times: { ...DEFAULT_ONBOARDING_TIMES, ...setup.times },
    };
  }

  /** The machine's state (read-only). */
  get state(): OnboardingState {
    return this.current;
  }

  /** True while the SoftAP is up. */
  get active(): boolean {
    return this.current.phase !== "off";
  }

  /** Opens onboarding; `asked` (a button, the product) clears a lockout and may run while ONLINE. */
  start(asked: boolean): void {
    this.feed({ type: "start", asked });
  }

  stop(): void {
    this.feed({ type: "stop" });
  }

  /** The manager's latest scan (the machine leaves the device's own SoftAP out). */
  scan(results: readonly ScanResult[]): void {
    this.feed({ type: "scan", results });
  }

  joined(ssid: string): void {
    this.feed({ type: "joined", ssid });
  }

  joinFailed(ssid: string, reason: NetworkFailureReason): void {
    this.feed({ type: "join-failed", ssid, reason });
  }

  online(online: boolean): void {
    if (online !== this.current.online) this.feed({ type: "online", online });
  }

  /** Called after every step (the attachment arms its automatic start here). */
  protected changed(): void {}

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
    ctx.now = clock.now();
    const step = onboardingStep(this.current, event, ctx);
    const wakeAt = step.wakeAt;
    this.current = step.state;
    this.timer?.cancel();
    this.timer = wakeAt === undefined ? undefined : ports.scheduler.after(Math.max(0, wakeAt - clock.now()), () => {
      this.timer = undefined;
      this.feed({ type: "tick" });
    });
    for (const effect of step.effects) {
      const type = effect.type;
      if (type === "ap-open") {
        this.port.open(effect.ssid, (request, respond) => {
          const id = this.nextId++;
          replies.set(id, respond);
          this.feed({ type: "request", id, request });
        });
      } else if (type === "ap-close") {
        this.port.close();
        for (const respond of replies.values()) respond(410, new Uint8Array(0));
        replies.clear();
      } else if (type === "respond") {
        const respond = replies.get(effect.id);
        replies.delete(effect.id);
        respond?.(effect.status, effect.body);
      } else if (type === "store") {
        let ok = true;
        try {
          this.host.storeNetworks(effect.networks);
        } catch (error) {
          ok = false;
          ports.log?.("warn", `onboarding: storing networks failed: ${error instanceof Error ? error.message : "error"}`);
        }
        this.feed({ type: "stored", id: effect.id, ok });
      } else {
        ports.log?.(effect.level, effect.message);
      }
    }
    this.changed();
  }
}

const UNBOUND: OnboardingHost = {
  storeNetworks() {
    throw new Error("onboarding is not bound to a manager");
  },
};

/** Onboarding for one manager: the runner, fed by the manager's radio and status. */
export class OnboardingAttachment extends OnboardingRunner {
  /** the manager's radio, watched */
  declare readonly network: NetworkPort;
  private declare readonly scheduler: SchedulerPort;
  private declare readonly afterMs: number;
  private declare binding: OnboardingBinding | undefined;
  private declare trigger: ScheduledTask | undefined;
  /** the manager's last state */
  private declare seen: string;

  constructor(
    ports: RunnerPorts & { network: NetworkPort; onboarding: OnboardingPort },
    setup: { deviceId: string; code: string; afterMs?: number; times?: Partial<OnboardingTimes> },
  ) {
    super(ports, ports.onboarding, UNBOUND, setup);
    this.scheduler = ports.scheduler;
    this.afterMs = setup.afterMs ?? DEFAULT_ONBOARD_AFTER_MS;
    this.seen = "STOPPED";
    const radio = ports.network;
    let pending: string | undefined;
    // forwards everything and tells the machine what it sees
    this.network = {
      scan: (done) => radio.scan((results) => {
        this.scan(results);
        done(results);
      }),
      join: (request: JoinRequest, events) => {
        const ssid = request.ssid;
        const outcome = (reason?: NetworkFailureReason) => {
          if (pending === ssid) pending = undefined;
          if (reason) this.joinFailed(ssid, reason);
          else this.joined(ssid);
        };
        pending = ssid;
        radio.join(request, {
          onJoined: (info) => (outcome(), events.onJoined(info)),
          onFailed: (failure) => (outcome(failure.reason), events.onFailed(failure)),
          onLost: (failure) => events.onLost(failure),
        });
      },
      leave: () => {
        const abandoned = pending;
        pending = undefined;
        radio.leave();
        if (abandoned !== undefined) this.joinFailed(abandoned, "ASSOCIATION-FAILED");
      },
    };
  }

  /** Binds the manager's functions (once, right after the manager is built). */
  bind(binding: OnboardingBinding): void {
    this.host = this.binding = binding;
  }

  /** manager.startOnboarding(): opens onboarding now (even while ONLINE) and clears a lockout. */
  override start(asked = true): void {
    this.disarm();
    super.start(asked);
  }

  /** Every status change of the manager. */
  status(status: StatusView): void {
    const was = this.seen;
    const state = (this.seen = status.state);
    if (state === "STOPPED") {
      this.disarm();
      this.stop();
      return;
    }
    this.online(state === "ONLINE");
    if (state === "ONLINE") this.disarm();
    else if (was === "STOPPED" || was === "ONLINE") this.arm();
  }

  protected override changed(): void {
    if (!this.active) this.arm();
  }

  private disarm(): void {
    this.trigger?.cancel();
    this.trigger = undefined;
  }

  /** Starts the wait before an automatic onboarding (when none waits and none runs). */
  private arm(): void {
    const idle = () => !this.active && this.seen !== "STOPPED" && this.seen !== "ONLINE";
    if (this.trigger || !idle()) return;
    this.trigger = this.scheduler.after(this.afterMs, () => {
      this.trigger = undefined;
      if (!idle()) return;
      if (this.binding?.networks().length) this.arm();
      else this.start(false);
    });
  }
}

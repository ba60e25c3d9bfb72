/*
 * Onboarding attached to the connection manager, kept apart from the manager's
 * own state machine (the manager only constructs this, passes its radio
 * through `network`, and binds three functions):
 * - watches the radio (a NetworkPort that forwards every call): each scan goes
 *   to the owner's scan list, each join outcome to the onboarding machine
 *   (JOINED / FAILED of a handed-over network; a join the manager abandons
 *   by leave() counts as ASSOCIATION-FAILED);
 * - watches the manager's status: ONLINE is told to the machine (an
 *   onboarding it started itself then ends), STOPPED stops it;
 * - starts onboarding by itself when the device holds no private network and
 *   has not been ONLINE for `onboardAfterMs` since it started (or since it was
 *   last ONLINE, or since the last window ended), never while ONLINE;
 * - `start()` is manager.startOnboarding(): the product's button (clears a lockout).
 * Handed-over networks are stored by the manager's own `storeNetworks` (the
 * same record, rules and move as a cloud hand-off).
 */
import type { JoinEvents, JoinRequest, NetworkPort, ScanResult, ScheduledTask } from "../ports";
import type { ClockPort, DigestPort, LogPort, RandomPort, SchedulerPort, SealPort } from "../ports";
import type { OnboardNetwork } from "./device-messages";
import { OnboardingRunner, type OnboardingPort } from "./runner";
import type { OnboardingTimes } from "./machine";

/** Default wait before the manager starts onboarding by itself (2 min without ONLINE and with no private network). */
export const DEFAULT_ONBOARD_AFTER_MS = 120_000;

/** What the attachment needs from the manager, bound after the manager is built. */
export interface OnboardingBinding {
  /** stores handed-over networks (the cloud hand-off's record and rules) and moves to them; throws on a store failure */
  storeNetworks(networks: OnboardNetwork[]): void;
  /** the private networks stored */
  networks(): readonly { ssid: string }[];
}

/** The status fields the attachment reads. */
export interface StatusView { state: string }

/** Onboarding for one manager. */
export class OnboardingAttachment {
  readonly network: NetworkPort;
  readonly runner: OnboardingRunner;
  readonly #scheduler: SchedulerPort;
  readonly #afterMs: number;
  #binding: OnboardingBinding | undefined;
  #trigger: ScheduledTask | undefined;
  #state = "STOPPED";

  constructor(
    ports: { digest: DigestPort; seal: SealPort; random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; log?: LogPort; network: NetworkPort; onboarding: OnboardingPort },
    setup: { deviceId: string; code: string; afterMs?: number; times?: Partial<OnboardingTimes> },
  ) {
    this.#scheduler = ports.scheduler;
    this.#afterMs = setup.afterMs ?? DEFAULT_ONBOARD_AFTER_MS;
    this.runner = new OnboardingRunner(ports, ports.onboarding, {
      storeNetworks: (networks) => {
        if (!this.#binding) throw new Error("onboarding is not bound to a manager");
        this.#binding.storeNetworks(networks);
      },
    }, setup);
    this.runner.onChange((state) => {
      if (state.phase === "off") this.#arm();
    });
    this.network = watch(ports.network, this.runner);
  }

  /** Binds the manager's functions (once, right after the manager is built). */
  bind(binding: OnboardingBinding): void {
    this.#binding = binding;
  }

  /** manager.startOnboarding(): opens onboarding now (even while ONLINE) and clears a lockout. */
  start(): void {
    this.#disarm();
    this.runner.start(true);
  }

  /** Every status change of the manager. */
  status(status: StatusView): void {
    const was = this.#state;
    this.#state = status.state;
    if (status.state === "STOPPED") {
      this.#disarm();
      this.runner.stop();
      return;
    }
    this.runner.online(status.state === "ONLINE");
    if (status.state === "ONLINE") this.#disarm();
    else if (was === "STOPPED" || was === "ONLINE") this.#arm();
  }

  #disarm(): void {
    this.#trigger?.cancel();
    this.#trigger = undefined;
  }

  /** Starts the wait before an automatic onboarding (when none waits and none runs). */
  #arm(): void {
    if (this.#trigger || this.runner.active || this.#state === "STOPPED" || this.#state === "ONLINE") return;
    this.#trigger = this.#scheduler.after(this.#afterMs, () => {
      this.#trigger = undefined;
      if (this.#state === "STOPPED" || this.#state === "ONLINE" || this.runner.active) return;
      if ((this.#binding?.networks().length ?? 0) > 0) return this.#arm();
      this.runner.start(false);
    });
  }
}

/** A NetworkPort that forwards everything and tells the onboarding runner what it sees. */
function watch(radio: NetworkPort, runner: OnboardingRunner): NetworkPort {
  let pending: string | undefined;
  return {
    scan(done: (results: ScanResult[]) => void): void {
      radio.scan((results) => {
        runner.scan(results);
        done(results);
      });
    },
    join(request: JoinRequest, events: JoinEvents): void {
      const ssid = request.ssid;
      pending = ssid;
      radio.join(request, {
        onJoined: (info) => {
          if (pending === ssid) pending = undefined;
          runner.joined(ssid);
          events.onJoined(info);
        },
        onFailed: (failure) => {
          if (pending === ssid) pending = undefined;
          runner.joinFailed(ssid, failure.reason);
          events.onFailed(failure);
        },
        onLost: (failure) => events.onLost(failure),
      });
    },
    leave(): void {
      const abandoned = pending;
      pending = undefined;
      radio.leave();
      if (abandoned !== undefined) runner.joinFailed(abandoned, "ASSOCIATION-FAILED");
    },
  };
}

/*
 * The onboarding runner without a connection manager (Node side: tests, the
 * simulated device): OnboardingAttachment (attach.ts, what the firmware ships)
 * with its own host to store networks, no radio to watch, and the machine's
 * events as methods. Not in the firmware manifest.
 */
import type { NetworkFailureReason, NetworkPort, ScanResult } from "../ports";
import { OnboardingAttachment, type OnboardingHost, type OnboardingPort, type RunnerPorts } from "./attach";
import type { OnboardingState, OnboardingTimes } from "./attach";

export type { OnboardingHost, OnboardingPort } from "./attach";

/** Never used: the runner is told of scans and joins by its methods. */
const NO_RADIO: NetworkPort = {
  scan: () => {},
  join: () => {},
  leave: () => {},
};

/** Device-side onboarding driven by hand. */
export class OnboardingRunner extends OnboardingAttachment {
  /** @param setup.code the label code's 13 data characters (parseLabelCode) */
  constructor(ports: RunnerPorts, port: OnboardingPort, host: OnboardingHost, setup: { deviceId: string; code: string; times?: Partial<OnboardingTimes> }) {
    super({ ...ports, network: NO_RADIO, onboarding: port }, setup);
    // the automatic start never arms: no status from a manager
    this.bind({ storeNetworks: (networks) => host.storeNetworks(networks), networks: () => [] });
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
  override start(asked: boolean): void {
    super.start(asked);
  }

  stop(): void {
    this.feed({ type: "stop" });
  }

  /** The latest scan (the machine leaves the device's own SoftAP out). */
  scan(results: readonly ScanResult[]): void {
    this.feed({ type: "scan", results });
  }

  joined(ssid: string): void {
    this.feed({ type: "join", ssid });
  }

  joinFailed(ssid: string, reason: NetworkFailureReason): void {
    this.feed({ type: "join", ssid, reason });
  }

  online(online: boolean): void {
    if (online !== this.current.online) this.feed({ type: "online", online });
  }
}

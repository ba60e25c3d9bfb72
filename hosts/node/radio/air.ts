/*
 * The simulated environment: the access points a radio can hear, a scheduler
 * for every delay and scripted fault, and a clock for the event logs.
 */
import type { SchedulerPort } from "../../../modules/ports";
import { systemScheduler } from "../sim-ports";
import { SimulatedAccessPoint, type AccessPointConfig } from "./access-point";

export interface SimulatedAirOptions {
  /** timers for delays and scheduled faults (default: setTimeout) */
  scheduler?: SchedulerPort;
  /** ms clock for event logs (default: ms since the air was made) */
  now?: () => number;
}

export class SimulatedAir {
  readonly scheduler: SchedulerPort;
  readonly now: () => number;
  #aps: SimulatedAccessPoint[] = [];

  constructor(options: SimulatedAirOptions = {}) {
    this.scheduler = options.scheduler ?? systemScheduler;
    const start = performance.now();
    this.now = options.now ?? (() => Math.round(performance.now() - start));
  }

  /**
   * Adds an access point.
   * @example air.addAccessPoint({ ssid: "Home", security: "psk", password: "correct horse" })
   * @throws TypeError when the security settings are incomplete
   */
  addAccessPoint(config: AccessPointConfig): SimulatedAccessPoint {
    const ap = new SimulatedAccessPoint(config, { scheduler: this.scheduler, now: this.now });
    if (this.#aps.some((other) => other.bssid === ap.bssid)) throw new TypeError(`bssid ${ap.bssid} already on the air`);
    this.#aps.push(ap);
    return ap;
  }

  /** Removes an AP for good (stations on it lose it, as out of range). */
  removeAccessPoint(ap: SimulatedAccessPoint): void {
    ap.goOutOfRange();
    this.#aps = this.#aps.filter((other) => other !== ap);
  }

  /** Every AP, in range or not. */
  get accessPoints(): readonly SimulatedAccessPoint[] {
    return this.#aps;
  }

  /** APs a radio hears now. */
  inRange(): SimulatedAccessPoint[] {
    return this.#aps.filter((ap) => ap.inRange);
  }
}

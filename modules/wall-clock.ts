/*
 * A wall-clock estimate that does not trust the host's clock.
 *
 * Devices have no battery-backed clock and hotspots may block NTP, yet TLS
 * checks certificate dates. The estimate is a lower bound built from a time
 * floor (the firmware's build time, raised to the newest time the cloud ever
 * told the device, persisted in flash) plus the monotonic time since boot,
 * and, once the cloud told the time in this boot (`hello`), that time plus the
 * monotonic time since. It never goes backwards and never uses ClockPort as
 * wall time (ClockPort stays an arbitrary-origin monotonic clock).
 */
import type { ClockPort } from "./ports";

/** Persist the floor again only when the cloud's time moved it by at least this much (flash wear). */
export const FLOOR_SAVE_STEP_SECONDS = 3600;

/** A wall-clock estimate in Unix seconds. */
export class WallClock {
  readonly #clock: ClockPort;
  readonly #bootMs: number;
  /** the floor at boot: a lower bound of the wall time at #bootMs */
  readonly #bootFloor: number;
  #floor: number;
  #savedFloor: number;
  #sync: { seconds: number; atMs: number } | undefined;

  /**
   * @param clock - the monotonic clock
   * @param floorSeconds - max(build time, persisted floor), Unix seconds
   */
  constructor(clock: ClockPort, floorSeconds: number) {
    this.#clock = clock;
    this.#bootMs = clock.now();
    this.#bootFloor = Math.max(0, Math.floor(floorSeconds));
    this.#floor = this.#bootFloor;
    this.#savedFloor = this.#floor;
  }

  /** The estimate, Unix seconds (integer). */
  now(): number {
    const elapsed = (this.#clock.now() - this.#bootMs) / 1000;
    const fromFloor = this.#bootFloor + elapsed;
    const fromSync = this.#sync ? this.#sync.seconds + (this.#clock.now() - this.#sync.atMs) / 1000 : 0;
    return Math.floor(Math.max(fromFloor, fromSync));
  }

  /** True once the cloud told the time in this boot. */
  get synced(): boolean {
    return this.#sync !== undefined;
  }

  /** The floor to persist (Unix seconds): the newest time the cloud told, or the boot floor. */
  get floor(): number {
    return this.#floor;
  }

  /**
   * Takes the time the cloud sent. A time below the estimate only counts as a
   * sync point for the future (the estimate never goes back).
   * @returns the floor to persist now, or undefined when no flash write is due
   */
  observe(cloudSeconds: number): number | undefined {
    if (!Number.isFinite(cloudSeconds) || cloudSeconds < 0) return undefined;
    const current = this.now();
    const seconds = Math.max(Math.floor(cloudSeconds), current);
    this.#sync = { seconds, atMs: this.#clock.now() };
    if (cloudSeconds > this.#floor) this.#floor = Math.floor(cloudSeconds);
    if (this.#floor >= this.#savedFloor + FLOOR_SAVE_STEP_SECONDS || (this.#savedFloor === 0 && this.#floor > 0)) return this.#floor;
    return undefined;
  }

  /** Tells the clock the floor was persisted. */
  saved(floorSeconds: number): void {
    this.#savedFloor = Math.max(this.#savedFloor, floorSeconds);
  }
}

/*
 * A wall-clock estimate that does not trust the host's clock, as pure functions
 * over plain data (the state machine holds a WallState).
 *
 * Devices have no battery-backed clock and hotspots may block NTP, yet TLS
 * checks certificate dates. The estimate is a lower bound built from a time
 * floor (the firmware's build time, raised to the newest time the cloud ever
 * told the device, persisted in flash) plus the monotonic time since boot,
 * and, once the cloud told the time in this boot (`hello`), that time plus the
 * monotonic time since. It never goes backwards and never uses the ClockPort
 * as wall time (the caller passes its monotonic milliseconds in).
 */

/** Persist the floor again only when the cloud's time moved it by at least this much (flash wear). */
export const FLOOR_SAVE_STEP_SECONDS = 3600;

/** The estimate's data. */
export interface WallState {
  /** monotonic ms at boot */
  readonly bootMs: number;
  /** the floor at boot: a lower bound of the wall time at bootMs */
  readonly bootFloor: number;
  /** the newest floor (Unix seconds) */
  readonly floor: number;
  /** the newest floor persisted */
  readonly saved: number;
  /** the cloud's time and the monotonic ms when it was told, once told in this boot */
  readonly sync?: { readonly seconds: number; readonly atMs: number };
}

/**
 * @param nowMs - the monotonic clock at boot
 * @param floorSeconds - max(build time, persisted floor), Unix seconds
 */
export function wallStart(nowMs: number, floorSeconds: number): WallState {
  const floor = Math.max(0, Math.floor(floorSeconds));
  return { bootMs: nowMs, bootFloor: floor, floor, saved: floor };
}

/** The estimate at monotonic `nowMs`, Unix seconds (integer). */
export function wallNow(wall: WallState, nowMs: number): number {
  const fromFloor = wall.bootFloor + (nowMs - wall.bootMs) / 1000;
  const fromSync = wall.sync ? wall.sync.seconds + (nowMs - wall.sync.atMs) / 1000 : 0;
  return Math.floor(Math.max(fromFloor, fromSync));
}

/**
 * Takes the time the cloud sent. A time below the estimate only counts as a
 * sync point for the future (the estimate never goes back).
 * @returns the new state, and `save`: the floor to persist now (absent when no flash write is due)
 */
export function wallObserve(wall: WallState, cloudSeconds: number, nowMs: number): { wall: WallState; save?: number } {
  if (!Number.isFinite(cloudSeconds) || cloudSeconds < 0) return { wall };
  const seconds = Math.max(Math.floor(cloudSeconds), wallNow(wall, nowMs));
  const floor = cloudSeconds > wall.floor ? Math.floor(cloudSeconds) : wall.floor;
  const next = { ...wall, floor, sync: { seconds, atMs: nowMs } };
  const due = floor >= wall.saved + FLOOR_SAVE_STEP_SECONDS || (wall.saved === 0 && floor > 0);
  return due ? { wall: { ...next, saved: floor }, save: floor } : { wall: next };
}

/*
 * Wall time for certificate checks. Moddable TLS verifies certificate dates,
 * and an ESP32 boots at 1970 with no battery-backed clock; hotspots may block
 * NTP. So the system clock (Time.set) is only ever raised, from:
 * - a persisted host floor (Preference "wcm"/"timeFloor", seconds), saved again
 *   every hour while running, and config.wcm.timeFloor / buildTime, at boot;
 * - the core's wall clock (ConnectionManager.wallClock(), modules/wall-clock.ts):
 *   the build time, the newest time the cloud told in `hello` (which the core
 *   persists itself), plus monotonic time; main.ts raises the clock to it at
 *   boot and after every status change (raiseClock);
 * - SNTP when reachable (syncTime).
 * A floor is never moved backwards, so a wrong answer in the past cannot undo it.
 */
import Preference from "preference";
import SNTP from "sntp";
import Time from "time";
import Timer from "timer";

const savedFloor = () => {
  const value = Preference.get("wcm", "timeFloor");
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
};

const save = (seconds: number) => {
  if (seconds > savedFloor()) Preference.set("wcm", "timeFloor", Math.floor(seconds));
};

const nowSeconds = () => Date.now() / 1000;

/**
 * Raises the clock to max(now, saved floor, build floor), then saves the floor hourly.
 * @param buildFloorSeconds - a floor from the build (e.g. the build date)
 * @returns the wall time in seconds after the raise
 */
export function applyTimeFloor(buildFloorSeconds = 0): number {
  const now = Math.floor(nowSeconds());
  const floor = Math.max(savedFloor(), buildFloorSeconds);
  if (floor > now) Time.set(floor);
  Timer.repeat(() => save(nowSeconds()), 3_600_000);
  return Math.max(now, floor);
}

/**
 * Raises the system clock to `seconds` when it is behind (never lowers it), and
 * the persisted floor with it.
 * @returns true when the clock was set
 */
export function raiseClock(seconds: number): boolean {
  if (!Number.isFinite(seconds) || seconds <= nowSeconds() + 1) return false;
  Time.set(Math.floor(seconds));
  save(seconds);
  return true;
}

/**
 * Asks SNTP `host` once (with SNTP's own retries); on success sets the clock if
 * it moves forward by more than a second and saves the floor. `done` is called once either way: SNTP
 * (modules/network/sntp/sntp.js) closes itself before it reports the time and
 * after it reports an error (our callback asks for no other host), so neither
 * comes twice, and a constructor that throws has reported nothing.
 */
export function syncTime(host: string, done: (ok: boolean) => void): void {
  try {
    new SNTP({ host }, (message, value) => {
      if (message === SNTP.time && typeof value === "number") {
        // the clock as raiseClock() moves it; the floor saved even when the clock was already there
        if (!raiseClock(value)) save(value);
        done(true);
      } else if (message === SNTP.error) {
        done(false);
      }
    });
  } catch {
    done(false);
  }
}
